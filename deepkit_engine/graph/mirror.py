"""Recompute (mirror): drop cheap activations after forward, redo them in backward.

Backward nodes that read the output of a cheap forward op read a copy of that
op instead (``<name>_mirror``), computed during backward from the inputs it
needs (recursively through chains of cheap ops). The forward outputs then die
as soon as forward is done with them, which the memory planner turns into
saved bytes. Ops that draw random numbers are never mirrored (a redraw would
change the result), nor ops with auxiliary states.
"""
from .node import Node, topo_order

__all__ = ["apply_mirror", "is_mirrorable"]

#: Ops that are costly to recompute; kept from forward (MXNet's rule).
HEAVY_OPS = frozenset({
    "dot", "batch_dot", "linalg_gemm2", "FullyConnected", "Convolution", "Deconvolution",
    "concat", "SoftmaxOutput", "BatchNorm", "RNN", "Embedding",
})


def is_mirrorable(node):
    if node.op is None:
        return False
    forced = node.user_attrs.get("__force_mirroring__")
    if forced is not None:
        return forced.lower() in ("1", "true")
    op = node.op
    if op.resources or op.aux:
        return False
    if op.mirror is not None:
        return bool(op.mirror)
    return op.name not in HEAVY_OPS


def apply_mirror(heads, grad_entries):
    """Rewrite the gradient entries so that backward recomputes cheap activations.

    Returns:
        ``(entries, rebuilt)``: the new gradient entries (``None`` kept as is)
        and ``{id(old node): new node}`` for every rebuilt backward node.
    """
    forward_ids = {id(n) for n in topo_order(heads)}
    live = [e for e in grad_entries if e is not None]
    clones = {}
    rebuilt = {}

    def mirrored(entry):
        node, idx = entry
        if id(node) not in forward_ids or not is_mirrorable(node):
            return entry
        clone = clones.get(id(node))
        if clone is None:
            clone = Node(node.op, f"{node.name}_mirror", node.attrs,
                         [mirrored(e) for e in node.inputs], node.user_attrs)
            clones[id(node)] = clone
        return (clone, idx)

    for node in topo_order(live):
        if id(node) in forward_ids or node.op is None:
            continue
        new_inputs = []
        for src, idx in node.inputs:
            if id(src) in forward_ids:
                new_inputs.append(mirrored((src, idx)))
            else:
                new_inputs.append((rebuilt.get(id(src), src), idx))
        rebuilt[id(node)] = Node(node.op, node.name, node.attrs, new_inputs, node.user_attrs)
    entries = [None if e is None else (rebuilt.get(id(e[0]), e[0]), e[1]) for e in grad_entries]
    return entries, rebuilt
