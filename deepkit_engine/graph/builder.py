"""Adding op nodes to a graph from inside a pass (the gradient pass, the executor).

:class:`GraphOps` is the ``F`` that gradient functions receive:
``F.<op>(*inputs, **params)`` makes a :class:`Node` of a registered op and
returns an :class:`Expr`, a handle on node outputs that supports the Python
operators and fluent methods the ops declare (``g * y``, ``1 - y``, ``-g``,
``x.sum(axis=1)``). Nodes are named ``<prefix><hint><count>`` (the hint is the
lower-cased name the op was called by), as the symbol front-end names them.
"""
import numbers

from ..base import OpBugError
from ..ops import registry as _registry
from ..ops.fluent import attach_fluent_methods, attach_operators, fluent_methods
from .node import Node

__all__ = ["Expr", "GraphOps"]


class Expr:
    """One or more node outputs ``(node, index)``, made by a :class:`GraphOps`."""

    __slots__ = ("_outputs", "_ops")
    __hash__ = object.__hash__

    def __init__(self, outputs, ops):
        self._outputs = list(outputs)
        self._ops = ops

    def __len__(self):
        return len(self._outputs)

    def __iter__(self):
        return (Expr([e], self._ops) for e in self._outputs)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Expr(self._outputs[index], self._ops)
        return Expr([self._outputs[index]], self._ops)

    def __repr__(self):
        return f"<Expr {', '.join(n.output_names()[i] for n, i in self._outputs)}>"


class GraphOps:
    """Builds op nodes named with ``prefix``; ``ops.<name>(...)`` for any registered op.

    Args:
        prefix: Put in front of every node name, given or automatic.
    """

    def __init__(self, prefix=""):
        self._prefix = prefix
        self._counter = {}

    def wrap(self, entries):
        """An :class:`Expr` for existing entries ``(node, index)``."""
        return Expr(entries, self)

    def __getattr__(self, call_name):
        if call_name.startswith("__"):
            raise AttributeError(call_name)
        op = _registry.get_op(call_name)

        def function(*args, name=None, **kwargs):
            return self.call(op, call_name, args, kwargs, name)
        function.__name__ = call_name
        return function

    def _name(self, name, hint):
        if name is None:
            count = self._counter.get(hint, 0)
            self._counter[hint] = count + 1
            name = f"{hint}{count}"
        return self._prefix + name

    def call(self, op, call_name, args, kwargs, name=None):
        """A node applying ``op`` to ``args`` (Exprs; a number selects the scalar form).

        Args:
            op: The :class:`OpDef`.
            call_name: The name it was called by (the naming hint).
            args: Inputs, then parameters in declaration order.
            kwargs: Parameters, and inputs by name.
            name: The node name (prefixed); default ``<hint><count>``.

        Returns:
            An :class:`Expr` of the node's visible outputs.
        """
        if op.scalar_form is not None and len(args) == 2 and not kwargs \
                and not (isinstance(args[0], Expr) and isinstance(args[1], Expr)):
            result = self.binary(op, args[0], args[1], name)
            if result is not NotImplemented:
                return result
        args, exprs, attrs = op.split_call(args, kwargs, lambda v: isinstance(v, Expr))
        inputs = args
        if not op.variadic:
            names = op.input_names(attrs)
            slots = dict(zip(names, args))
            slots.update(exprs)
            missing = [n for n in names if n not in slots]
            if len(args) > len(names) or missing or set(exprs) - set(names):
                raise OpBugError(f"{op.name}: a graph pass called it with inputs "
                                 f"{list(slots)}; it takes {', '.join(names)}")
            inputs = [slots[n] for n in names]
        entries = []
        for i, x in enumerate(inputs):
            if not isinstance(x, Expr) or len(x._outputs) != 1:
                raise OpBugError(f"{op.name}: input {i} of a node made by a graph pass is "
                                 f"{x!r}, not a single node output")
            entries.append(x._outputs[0])
        node = Node(op, self._name(name, call_name.lower()), attrs, entries)
        return Expr([(node, i) for i in range(node.num_visible_outputs())], self)

    def binary(self, op, lhs, rhs, name=None):
        """``lhs <op> rhs`` where one side may be a Python number (the scalar forms)."""
        if isinstance(lhs, Expr):
            if isinstance(rhs, Expr):
                return self.call(op, op.operator_alias, (lhs, rhs), {}, name)
            if isinstance(rhs, numbers.Number) and op.scalar_form is not None:
                scalar_op = _registry.get_op(op.scalar_form)
                return self.call(scalar_op, scalar_op.operator_alias, (lhs,),
                                 {"scalar": float(rhs)}, name)
        elif isinstance(rhs, Expr):
            if isinstance(lhs, numbers.Number) and op.reflected_scalar_form is not None:
                scalar_op = _registry.get_op(op.reflected_scalar_form)
                return self.call(scalar_op, scalar_op.operator_alias, (rhs,),
                                 {"scalar": float(lhs)}, name)
        return NotImplemented


def _binary(op, lhs, rhs, out):
    ops = lhs._ops if isinstance(lhs, Expr) else rhs._ops
    return ops.binary(op, lhs, rhs)


def _unary(op, x):
    return x._ops.call(op, op.operator_alias, (x,), {})


def _fluent(name, op):
    def method(self, *args, **kwargs):
        return self._ops.call(op, name, (self,) + args, kwargs)
    method.__doc__ = op.docstring()
    return method


attach_operators(Expr, _binary, _unary, inplace=False)
attach_fluent_methods(Expr, {name: _fluent(name, op) for name, op in fluent_methods().items()})
