"""Graph nodes and the indexed view that passes work on.

A :class:`Node` is a variable (``op is None``) or an op applied to input
*entries*: ``(node, output_index)`` pairs. Nodes are immutable once made, so
graphs are acyclic by construction and can be shared between symbols.
"""

from ..base import DeepkitError

__all__ = ["Node", "Graph", "topo_order"]


class Node:
    """A variable or an operator application.

    Attributes:
        op: The :class:`OpDef`, or ``None`` for a variable.
        name: Unique name within a graph (variables are looked up by it).
        attrs: Parsed op parameters (:class:`Attrs`); empty for variables.
        inputs: Tuple of ``(Node, output_index)`` entries.
        user_attrs: String attributes (``lr_mult``, ``__shape__``,
            ``ctx_group``, ...) that travel with the node into JSON.
        value: For autograd leaves and recorded outputs, the NDArray(s)
            holding the node's value.
    """

    __slots__ = ("op", "name", "attrs", "inputs", "user_attrs", "value", "_vars", "__weakref__")

    def __init__(self, op, name, attrs=None, inputs=(), user_attrs=None):
        self.op = op
        self.name = name
        self.attrs = attrs if attrs is not None else {}
        self.inputs = tuple(inputs)
        self.user_attrs = dict(user_attrs or {})
        self.value = None
        self._vars = None

    @property
    def is_variable(self):
        return self.op is None

    def num_outputs(self):
        return 1 if self.op is None else self.op.num_outputs(self.attrs)

    def num_visible_outputs(self):
        return 1 if self.op is None else self.op.num_visible_outputs(self.attrs)

    def output_names(self):
        if self.op is None:
            return [self.name]
        return [f"{self.name}_{o}" for o in self.op.output_names(self.attrs)]

    def input_names(self):
        return list(self.op.input_names(self.attrs)) if self.op is not None else []

    def variables(self):
        """``{name: variable Node}`` of the variables this node depends on (cached).

        Raises:
            DeepkitError: two different variables in the graph share a name.
        """
        if self._vars is None:
            if self.op is None:
                self._vars = {self.name: self}
            else:
                merged = {}
                for node, _ in self.inputs:
                    merged = merge_variables(merged, node.variables(), self.name)
                self._vars = merged
        return self._vars

    def __repr__(self):
        kind = "Variable" if self.op is None else self.op.name
        return f"<Node {kind} '{self.name}'>"


def merge_variables(left, right, where):
    """Union of two ``{name: Node}`` maps, sharing ``left`` when nothing is new."""
    if not left:
        return right
    if right is left or not right:
        return left
    if len(left) < len(right):
        left, right = right, left
    added = None
    for k, v in right.items():
        mine = left.get(k)
        if mine is None:
            if added is None:
                added = {}
            added[k] = v
        elif mine is not v:
            raise DeepkitError(
                f"'{where}': two different variables are both named '{k}'; variable names "
                "must be unique within a graph (reuse the Variable object to share it)")
    if added is None:
        return left
    merged = dict(left)
    merged.update(added)
    return merged


def topo_order(entries):
    """Nodes reachable from ``entries`` in depth-first post-order.

    Inputs are visited in order, so variables come out in the order MXNet's
    ``list_arguments`` gives them.
    """
    order = []
    seen = set()
    for head, _ in entries:
        if id(head) in seen:
            continue
        stack = [(head, 0)]
        seen.add(id(head))
        while stack:
            node, i = stack[-1]
            if i < len(node.inputs):
                stack[-1] = (node, i + 1)
                child = node.inputs[i][0]
                if id(child) not in seen:
                    seen.add(id(child))
                    stack.append((child, 0))
            else:
                stack.pop()
                order.append(node)
    return order


class Graph:
    """An indexed, topologically ordered view of the graph behind some outputs.

    Nodes get ids ``0..n-1`` in topological order and every output of every
    node an *entry id*, so passes can keep per-entry facts in flat lists.
    """

    def __init__(self, outputs, nodes=None):
        self.outputs = list(outputs)
        self.nodes = nodes if nodes is not None else topo_order(self.outputs)
        self.node_id = {id(n): i for i, n in enumerate(self.nodes)}
        offsets = []
        total = 0
        for n in self.nodes:
            offsets.append(total)
            total += n.num_outputs()
        self.entry_offset = offsets
        self.num_entries = total

    def entry_id(self, node, index=0):
        return self.entry_offset[self.node_id[id(node)]] + index

    def input_entry_ids(self, node):
        return [self.entry_id(n, i) for n, i in node.inputs]

    def output_entry_ids(self, node):
        base = self.entry_id(node, 0)
        return list(range(base, base + node.num_outputs()))

    def entry_name(self, eid):
        """``node_output`` name of an entry, for messages and reports."""
        for nid in range(len(self.nodes) - 1, -1, -1):
            if self.entry_offset[nid] <= eid:
                node = self.nodes[nid]
                return node.output_names()[eid - self.entry_offset[nid]]
        raise KeyError(eid)

    def consumers(self):
        """Number of node inputs reading each entry."""
        counts = [0] * self.num_entries
        for n in self.nodes:
            for src, i in n.inputs:
                counts[self.entry_id(src, i)] += 1
        return counts
