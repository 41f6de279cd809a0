"""Rewrites of inference graphs that give the same outputs with less work.

:func:`pool_before_activation`: a monotone activation followed by max
pooling computes ``max(f(x))`` over each window, which equals ``f(max(x))``
for a non-decreasing ``f``; pooling first applies ``f`` to a quarter of the
values (2x2 windows), or fewer. LeNet's and VGG's ``tanh``/``relu`` before
their max pools are the usual case. The executor applies it to executors
that compute no gradient (the backward pass of the original order reads the
activation's full output).

:func:`without_kept_states`: ops that keep values for their backward pass in
a hidden output (LSTM's gates and cell states) stop keeping them, so the
executor plans no memory for them.
"""
from .node import Node, topo_order

__all__ = ["pool_before_activation", "without_kept_states"]

#: Params that turn off a hidden output whose only reader is the op's gradient.
_KEEPING_PARAMS = {"RNN": "keep_states"}

#: Activation types that are non-decreasing functions.
_MONOTONE = ("relu", "tanh", "sigmoid", "softrelu", "softsign")


def _is_max_pool(node):
    if node.op is None or node.op.name != "Pooling" or node.num_outputs() != 1:
        return False
    attrs = node.attrs
    if attrs.pool_type != "max":
        return False
    # every window must hold at least one value of the input (not only padding)
    pads, kernels = tuple(attrs.pad or ()), tuple(attrs.kernel or ())
    if not any(pads) or attrs.global_pool:
        return True
    return attrs.pooling_convention == "valid" and len(pads) == len(kernels) and all(
        p < k for p, k in zip(pads, kernels))


def _is_monotone_activation(node):
    return (node.op is not None and node.op.name == "Activation"
            and node.attrs.act_type in _MONOTONE)


def pool_before_activation(heads):
    """``heads`` of a graph where each ``max_pool(activation(x))`` runs as ``activation(max_pool(x))``.

    Only where the activation's output is read by the pooling alone (not by
    other nodes, not a head). The given nodes are left untouched: rewritten
    nodes and those downstream of them are new, under the same names (the
    pooling node keeps its name, the activation after it keeps its own).

    Args:
        heads: Output entries ``(node, index)``.

    Returns:
        The new heads (the same list when nothing matched).
    """
    nodes = topo_order(heads)
    readers = {}
    for node in nodes:
        for src, idx in node.inputs:
            readers[(id(src), idx)] = readers.get((id(src), idx), 0) + 1
    for node, idx in heads:
        readers[(id(node), idx)] = readers.get((id(node), idx), 0) + 1
    swap = {id(n) for n in nodes
            if _is_max_pool(n) and _is_monotone_activation(n.inputs[0][0])
            and n.inputs[0][1] == 0 and readers.get((id(n.inputs[0][0]), 0)) == 1}
    if not swap:
        return heads

    def rebuild(node, entry):
        if id(node) not in swap:
            return None
        act = node.inputs[0][0]
        pooled = Node(node.op, node.name, node.attrs, [entry(*act.inputs[0])], node.user_attrs)
        return Node(act.op, act.name, act.attrs, [(pooled, 0)], act.user_attrs)
    return _rewrite(nodes, heads, rebuild)


def _rewrite(nodes, heads, rebuild):
    """New heads after replacing nodes: ``rebuild(node, entry)`` gives a node's replacement
    (built from ``entry(src, idx)``, which maps its inputs to the new graph) or None;
    nodes downstream of a replaced one are rebuilt as they were on the new inputs."""
    replaced = {}  # id(old node) -> the node whose outputs stand for the old node's

    def entry(src, idx):
        new = replaced.get(id(src))
        return (src, idx) if new is None else (new, idx)

    for node in nodes:
        if node.op is None:
            continue
        new = rebuild(node, entry)
        if new is not None:
            replaced[id(node)] = new
            continue
        inputs = [entry(src, idx) for src, idx in node.inputs]
        if any(a is not b for (a, _), (b, _) in zip(inputs, node.inputs)):
            replaced[id(node)] = Node(node.op, node.name, node.attrs, inputs, node.user_attrs)
    return [entry(node, idx) for node, idx in heads]


def without_kept_states(heads):
    """``heads`` of a graph whose ops keep nothing for backward (see ``_KEEPING_PARAMS``).

    Such an op's hidden output is its last one and is read by its gradient
    alone, so an executor without gradients drops it: the nodes are rebuilt
    with the param off (and those downstream of them, under the same names).

    Args:
        heads: Output entries ``(node, index)``.

    Returns:
        The new heads (the same list when nothing matched).
    """
    nodes = topo_order(heads)
    keeping = {}  # id(node) -> its attrs with the param off, where that drops an output
    for node in nodes:
        param = _KEEPING_PARAMS.get(node.op.name) if node.op is not None else None
        if param is None or node.attrs.get(param) is not True:
            continue
        attrs = type(node.attrs)(node.attrs)
        attrs[param] = False
        if len(node.op.output_names(attrs)) < node.num_outputs():
            keeping[id(node)] = attrs
    if not keeping:
        return heads

    def rebuild(node, entry):
        attrs = keeping.get(id(node))
        if attrs is None:
            return None
        return Node(node.op, node.name, attrs, [entry(src, idx) for src, idx in node.inputs],
                    node.user_attrs)
    return _rewrite(nodes, heads, rebuild)
