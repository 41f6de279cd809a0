"""Methods generated from op declarations: fluent methods (``x.sum(axis=1)``, as in
MXNet) and Python operators (``x + y``), for NDArray, Symbol and gradient graphs.

An op offers a method with ``OpDef(fluent=True)`` and an operator with
``OpDef(operator='add', scalar_form=...)``; nothing here names an op.
"""
from .registry import OPERATORS, canonical_ops

__all__ = ["fluent_methods", "attach_fluent_methods", "attach_operators"]


def fluent_methods():
    """``{method name: OpDef}`` of every op declared ``fluent``."""
    return {name: op for op in canonical_ops().values() for name in op.fluent}


def attach_fluent_methods(cls, functions, skip=()):
    """Give ``cls`` a method per fluent op found in ``functions`` (``x.op(...)``).

    Args:
        cls: The class to extend; methods it defines itself are kept.
        functions: ``{name: function}`` taking the array or symbol first.
        skip: Method names to leave out.
    """
    for name, op in sorted(fluent_methods().items()):
        fn = functions.get(name) or functions.get(op.name)
        if fn is None or name in skip or name in cls.__dict__:
            continue

        def method(self, *args, _fn=fn, **kwargs):
            return _fn(self, *args, **kwargs)
        method.__name__ = name
        method.__qualname__ = f"{cls.__name__}.{name}"
        method.__doc__ = f"Method form of ``{name}(self, ...)``.\n\n{fn.__doc__}"
        setattr(cls, name, method)


def attach_operators(cls, binary, unary, inplace=True):
    """Give ``cls`` the Python operators that ops declare.

    Args:
        cls: The class to extend; operators it defines itself are kept.
        binary: ``binary(op, lhs, rhs, out)`` computing ``lhs <op> rhs``, either
            side possibly a Python number (``out`` is the in-place target or
            ``None``); returns ``NotImplemented`` for operands it does not take.
        unary: ``unary(op, x)``.
        inplace: Also add the in-place forms (``__iadd__``) that write into self.
    """
    for op in canonical_ops().values():
        if op.operator is None:
            continue
        kind, reflected, has_inplace = OPERATORS[op.operator]
        stem = op.operator
        if kind == "unary":
            _set(cls, f"__{stem}__", lambda self, _op=op: unary(_op, self))
            continue
        _set(cls, f"__{stem}__", lambda self, other, _op=op: binary(_op, self, other, None))
        if reflected:
            _set(cls, f"__r{stem}__",
                 lambda self, other, _op=op: binary(_op, other, self, None))
        if inplace and has_inplace:
            _set(cls, f"__i{stem}__",
                 lambda self, other, _op=op: binary(_op, self, other, self))


def _set(cls, name, fn):
    if name in cls.__dict__:
        return
    fn.__name__ = name
    fn.__qualname__ = f"{cls.__name__}.{name}"
    setattr(cls, name, fn)
