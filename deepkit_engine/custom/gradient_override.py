"""``custom_gradient``: a function that computes its value one way and its gradient another.

As Keras's ``ops.custom_gradient``: the decorated function returns its result
and a ``grad(upstream)`` function giving one gradient per input::

    @custom_gradient
    def log1pexp(x):
        e = sym.exp(x)

        def grad(upstream):
            return upstream * (1 - 1 / (1 + e))
        return sym.log(1 + e), grad

With Symbols (inside a layer's ``call``), the result passes through one
``_custom_gradient`` node whose inputs are the result and the function's
inputs; the gradient pass differentiates that node with ``grad`` (built once,
with a placeholder for ``upstream``), not through the result's own graph.
With NDArrays (eager), it becomes an :class:`~.function.Function` call.
"""
import functools
import itertools

from ..base import DeepkitError
from ..graph.node import Node
from ..ndarray.ndarray import NDArray
from ..ops.registry import OpDef, Param, register_runtime, write_result
from ..symbol.naming import current_name_manager
from ..symbol.symbol import Symbol, Variable
from .function import Function

__all__ = ["custom_gradient"]

_overrides = {}
_keys = itertools.count()


class _Override:
    """The ``grad`` graph of one ``custom_gradient`` call and its placeholder."""

    __slots__ = ("upstream", "grads")

    def __init__(self, upstream, grads):
        self.upstream, self.grads = upstream, grads


def _identity_forward(xp, attrs, inputs, outputs, req):
    if req[0] != "inplace":
        write_result(xp, outputs[0], inputs[0], req[0])


def _first_input(attrs, in_values):
    return in_values, [in_values[0]]


def _copy_depending(entry, upstream, replacement, prefix, memo):
    """``entry`` with the placeholder replaced; nodes that do not depend on it are shared."""
    node, index = entry
    if node is upstream:
        return replacement
    got = memo.get(id(node))
    if got is None:
        inputs = [_copy_depending(e, upstream, replacement, prefix, memo) for e in node.inputs]
        if all(new is old for new, old in zip(inputs, node.inputs)):
            got = node
        else:
            got = Node(node.op, prefix + node.name, node.attrs, inputs, node.user_attrs)
        memo[id(node)] = got
    return (got, index) if got is not node else entry


def _override_gradient(F, node, ograds):
    record = _overrides.get(node.attrs.key)
    if record is None:
        raise DeepkitError(f"_custom_gradient '{node.name}': its gradient function belongs to "
                           "the process that built the graph; rebuild the model from its "
                           "code (or its config) to train it here")
    memo = {}
    replacement = ograds[0]._outputs[0]
    grads = [F.wrap([_copy_depending(e, record.upstream, replacement,
                                     f"{node.name}_backward_", memo)])
             for e in record.grads]
    return [None] + grads


OVERRIDE = register_runtime(OpDef(
    "_custom_gradient", _identity_forward,
    inputs=lambda a: ("data",) + tuple(f"input{i}" for i in range(a.num_inputs)),
    params={"key": Param(int, doc="Which gradient function."),
            "num_inputs": Param(int, doc="How many inputs the function took.", min=0)},
    infer_shape=_first_input, infer_type=_first_input, partial_infer=True,
    inplace=((0, 0),), gradient=_override_gradient,
    doc="Passes ``data`` through; its gradient with respect to the other inputs is the one "
        "a ``custom_gradient`` function declared."))


def _as_entries(result, what):
    items = list(result) if isinstance(result, (list, tuple)) else [result]
    entries = []
    for i, s in enumerate(items):
        if not isinstance(s, Symbol) or len(s) != 1:
            raise TypeError(f"custom_gradient: {what} {i} must be a single-output Symbol, got "
                            f"{type(s).__name__}")
        entries.append(s._outputs[0])
    return entries


def _symbolic(fn, inputs):
    result = fn(*inputs)
    if not (isinstance(result, tuple) and len(result) == 2 and callable(result[1])):
        raise TypeError(f"custom_gradient {fn.__name__}: the function must return "
                        "(result, grad_function)")
    value, grad_fn = result
    key = next(_keys)
    upstream = Variable(f"_custom_gradient{key}_upstream")
    grads = _as_entries(grad_fn(upstream), "gradient")
    if len(grads) != len(inputs):
        raise DeepkitError(f"custom_gradient {fn.__name__}: grad returned {len(grads)} "
                           f"gradient(s) for {len(inputs)} input(s)")
    _overrides[key] = _Override(upstream._outputs[0][0], grads)
    entries = _as_entries(value, "result") + _as_entries(list(inputs), "input")
    attrs = OVERRIDE.parse_attrs({"key": key, "num_inputs": len(inputs)})
    name = current_name_manager().get(None, fn.__name__.lower())
    return Symbol([(Node(OVERRIDE, name, attrs, entries), 0)])


class _EagerCall(Function):
    def __init__(self, fn):
        super().__init__()
        self._fn = fn
        self._grad_fn = None

    def forward(self, *inputs):
        value, self._grad_fn = self._fn(*inputs)
        return value

    def backward(self, upstream):
        return self._grad_fn(upstream)


def custom_gradient(fn):
    """Decorate ``fn(*inputs) -> (result, grad)`` so that ``grad(upstream)`` is its gradient.

    Args:
        fn: Takes Symbols (in a layer's ``call``) or NDArrays (eagerly) and
            returns ``(result, grad)``; ``grad(upstream)`` returns one gradient
            (a Symbol or an NDArray like the inputs) per input.

    Returns:
        The decorated function, with one single-output result.
    """
    @functools.wraps(fn)
    def wrapper(*inputs):
        if inputs and all(isinstance(x, Symbol) for x in inputs):
            return _symbolic(fn, inputs)
        if inputs and all(isinstance(x, NDArray) for x in inputs):
            return _EagerCall(fn)(*inputs)
        raise TypeError(f"custom_gradient {fn.__name__}: inputs must be all Symbols or all "
                        f"NDArrays, got {[type(x).__name__ for x in inputs]}")
    return wrapper
