"""The gradient pass: new graph nodes that compute input gradients.

Each op declares its gradient as ``gradient(F, node, ograds)`` returning one
expression (or ``None``) per input, built from registered ops through ``F`` (a
:class:`~deepkit_engine.graph.builder.GraphOps`, which makes plain graph nodes
named ``<node>_backward_<op><n>``): usually compositions of differentiable ops (so gradients
can be differentiated again), or one ``_backward_<Op>`` node that names exactly
the forward inputs and outputs it needs. The pass walks the graph backwards,
sums fan-out with one ``add_n`` node, un-broadcasts gradients of broadcasting
ops, and stops at ops that are not differentiable.
"""
from ..base import DeepkitError, OpBugError
from .builder import Expr, GraphOps
from .node import topo_order

__all__ = ["GradNode", "build_gradient"]


class GradNode:
    """What a gradient function sees of a forward node.

    Attributes:
        op: The OpDef.
        name: The node's name.
        attrs: Its parsed parameters.
        inputs: One single-output :class:`Expr` per input.
        outputs: One :class:`Expr` per output.
    """

    __slots__ = ("op", "name", "attrs", "inputs", "outputs", "node")

    def __init__(self, node, ops):
        self.node = node
        self.op = node.op
        self.name = node.name
        self.attrs = node.attrs
        self.inputs = [ops.wrap([e]) for e in node.inputs]
        self.outputs = [ops.wrap([(node, i)]) for i in range(node.num_outputs())]


def build_gradient(heads, head_grads, wrt):
    """Gradient entries of ``wrt`` variables.

    Args:
        heads: Output entries ``(node, index)`` to differentiate.
        head_grads: One entry per head holding its incoming gradient, or
            ``None`` (loss heads ignore it).
        wrt: Variable nodes to differentiate with respect to.

    Returns:
        ``(grads, checks)``: one entry (or ``None`` when no path leads there)
        per ``wrt`` variable, and ``(grad_entry, forward_entry, node, index)``
        tuples whose shapes must agree once inferred (see ``check_gradients``).
    """
    nodes = topo_order(heads)
    targets = {id(v) for v in wrt}
    needed = set()
    for node in nodes:
        if id(node) in targets or any(id(src) in needed for src, _ in node.inputs):
            needed.add(id(node))

    pending = {}
    for (node, idx), hg in zip(heads, head_grads):
        if hg is not None:
            pending.setdefault((id(node), idx), []).append(hg)
    checks = []
    for node in reversed(nodes):
        if node.op is None or id(node) not in needed:
            continue
        op = node.op
        n_out = node.num_outputs()
        incoming = [pending.get((id(node), i)) for i in range(n_out)]
        if all(g is None for g in incoming) and not (op.loss_head and _is_head(node, heads)):
            continue
        if not op.differentiable:
            if op.name.startswith("_backward_"):
                raise DeepkitError(
                    f"{op.name} '{node.name}': differentiating a gradient of "
                    f"{op.name[len('_backward_'):]} again is not supported (it has no "
                    "second-order gradient); use create_graph only through ops that do")
            continue
        if op.gradient is None:
            raise DeepkitError(f"{op.name} '{node.name}': no gradient is declared for this op, "
                               "so the graph cannot be differentiated through it (wrap it in "
                               "BlockGrad, or set grad_req='null' for what depends on it)")
        F = GraphOps(f"{node.name}_backward_")
        view = GradNode(node, F)
        ograds = [F.wrap([_sum(F, g, node, i)]) if g else F.zeros_like(view.outputs[i])
                  for i, g in enumerate(incoming)]
        result = op.gradient(F, view, ograds)
        if result is None or len(result) != len(node.inputs):
            raise OpBugError(f"gradient of {op.name} '{node.name}' returned "
                             f"{0 if result is None else len(result)} values for "
                             f"{len(node.inputs)} inputs")
        for k, ((src, idx), g) in enumerate(zip(node.inputs, result)):
            if g is None or id(src) not in needed:
                continue
            if not isinstance(g, Expr) or len(g._outputs) != 1:
                raise OpBugError(f"gradient of {op.name} '{node.name}' for input {k} is not "
                                 "a single-output expression")
            if op.unbroadcast:
                g = F._reduce_to_like(g, view.inputs[k])
            entry = g._outputs[0]
            checks.append((entry, (src, idx), node, k))
            pending.setdefault((id(src), idx), []).append(entry)
    grads = []
    for v in wrt:
        g = pending.get((id(v), 0))
        if not g:
            grads.append(None)
        else:
            grads.append(_sum(GraphOps(f"{v.name}_grad_"), g, v, 0))
    return grads, checks


def _is_head(node, heads):
    return any(n is node for n, _ in heads)


def _sum(F, entries, node, index):
    if len(entries) == 1:
        return entries[0]
    total = F.add_n(*[F.wrap([e]) for e in entries], name=f"{node.name}_{index}_gradsum")
    return total._outputs[0]


def check_gradients(graph, shapes, checks):
    """Raise :class:`OpBugError` where a declared gradient has the wrong shape."""
    for grad_entry, fwd_entry, node, k in checks:
        if id(grad_entry[0]) not in graph.node_id:
            continue  # a contribution that no bound gradient uses (cut by BlockGrad & co.)
        gs = shapes[graph.entry_id(*grad_entry)]
        fs = shapes[graph.entry_id(*fwd_entry)]
        if gs is not None and fs is not None and tuple(gs) != tuple(fs):
            names = node.input_names()
            raise OpBugError(f"gradient of {node.op.name} '{node.name}' for input "
                             f"'{names[k] if k < len(names) else k}' has shape {tuple(gs)}, "
                             f"expected {tuple(fs)}")
