"""Small hand-built graphs on the plain IR (graph/node.py) and a numpy evaluator for them,
so the graph passes can be tested without symbols, NDArrays or executors."""
import numpy as np

from deepkit_engine.graph.infer import infer_shapes, infer_types
from deepkit_engine.graph.node import Graph, Node, topo_order
from deepkit_engine.graph.plan_memory import plan_memory
from deepkit_engine.ops.registry import get_op


def var(name):
    """A variable node."""
    return Node(None, name)


def apply(op_name, *inputs, name=None, **params):
    """A node applying the registered op to inputs (Nodes, or ``(node, index)`` entries)."""
    op = get_op(op_name)
    entries = [(x, 0) if isinstance(x, Node) else x for x in inputs]
    return Node(op, name or op_name, op.parse_attrs(params), entries)


def evaluate(entries, values):
    """Values of ``entries`` given ``{variable name: numpy array}`` (float64 kernels on numpy).

    Every op node reachable from ``entries`` runs once, in topological order.
    """
    graph = Graph(entries)
    known_s, known_t = {}, {}
    for node in graph.nodes:
        if node.op is None:
            value = np.asarray(values[node.name])
            known_s[graph.entry_id(node)] = value.shape
            known_t[graph.entry_id(node)] = value.dtype
    shapes = infer_shapes(graph, known_s)
    dtypes = infer_types(graph, known_t)
    data = [None] * graph.num_entries
    for node in graph.nodes:
        out_ids = graph.output_entry_ids(node)
        if node.op is None:
            data[out_ids[0]] = np.asarray(values[node.name])
            continue
        outs = [np.empty(shapes[e], dtypes[e]) for e in out_ids]
        ins = [data[e] for e in graph.input_entry_ids(node)]
        resources = {r: None if r == "rng" else False for r in node.op.resources}
        node.op.kernel(np)(np, node.attrs, ins, outs, ["write"] * len(outs), **resources)
        for e, o in zip(out_ids, outs):
            data[e] = o
    return [data[graph.entry_id(n, i)] for n, i in entries]


def plan(outputs, values, external_entries=(), **kwargs):
    """The memory plan of the graph behind ``outputs`` (op nodes in topological order).

    Variables and ``outputs`` are external (they have arrays of their own), as
    are ``external_entries``.
    """
    graph = Graph(outputs)
    known_s, known_t = {}, {}
    for node in graph.nodes:
        if node.op is None:
            known_s[graph.entry_id(node)] = np.shape(values[node.name])
            known_t[graph.entry_id(node)] = np.asarray(values[node.name]).dtype
    shapes = infer_shapes(graph, known_s)
    dtypes = infer_types(graph, known_t)
    external = {graph.entry_id(n) for n in graph.nodes if n.op is None}
    external |= {graph.entry_id(n, i) for n, i in list(outputs) + list(external_entries)}
    order = [n for n in graph.nodes if n.op is not None]
    return graph, order, plan_memory(graph, order, shapes, dtypes, external, **kwargs)


def lifetimes(graph, order):
    """``{entry id: (step written, last step read)}`` of every op output (steps index ``order``)."""
    life = {}
    for step, node in enumerate(order):
        for eid in graph.output_entry_ids(node):
            life[eid] = (step, step)
        for eid in graph.input_entry_ids(node):
            if eid in life:
                life[eid] = (life[eid][0], step)
    return life


__all__ = ["var", "apply", "evaluate", "plan", "lifetimes", "topo_order"]
