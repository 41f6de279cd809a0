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

The node records the name the function is registered under (its
``module.qualname``, or the ``name`` given to the decorator), the way a
``Custom`` node records its ``op_type``: a graph saved as symbol JSON and
loaded in another process gets its gradient rebuilt from the function
registered there under that name, and loading is refused with an error
naming the function and how to register it when there is none.
"""
import functools
import itertools
import uuid

from ..base import DeepkitError, ParamError
from ..graph.node import Node
from ..ndarray.ndarray import NDArray
from ..ops.registry import OpDef, Param, register_runtime, write_result
from ..symbol.naming import current_name_manager
from ..symbol.symbol import Symbol, Variable
from .function import Function

__all__ = ["custom_gradient", "registered_gradients", "unregister_gradient"]

_overrides = {}
_counter = itertools.count()
#: Keys name one call in one process: a graph loaded elsewhere never finds another's.
_PROCESS = uuid.uuid4().hex[:12]
#: ``{registered name: fn}``: the functions a loaded graph's nodes can be rebuilt from.
_registry = {}


def _default_name(fn):
    """``module.qualname`` of a function importable by that name, else None."""
    qualname = getattr(fn, "__qualname__", "")
    module = getattr(fn, "__module__", None)
    if not module or not qualname or "<" in qualname:  # lambdas, functions in functions
        return None
    return f"{module}.{qualname}"


def _where(fn):
    return getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)


def _register(name, fn):
    old = _registry.get(name)
    # the same definition run again (a module reloaded, a factory called twice) replaces it
    if old is not None and old is not fn and _where(old) != _where(fn):
        raise ValueError(f"custom_gradient: the name '{name}' is already registered for "
                         f"{_default_name(old) or old!r}; pick another name")
    _registry[name] = fn


def registered_gradients():
    """The names of the registered ``custom_gradient`` functions, sorted."""
    return sorted(_registry)


def unregister_gradient(name):
    """Forget the ``custom_gradient`` function registered as ``name``."""
    _registry.pop(name, None)


class _Override:
    """The ``grad`` graph of one ``custom_gradient`` call and its placeholders."""

    __slots__ = ("upstream", "grads", "inputs")

    def __init__(self, upstream, grads, inputs=()):
        self.upstream, self.grads, self.inputs = upstream, grads, tuple(inputs)


def _identity_forward(xp, attrs, inputs, outputs, req):
    if req[0] != "inplace":
        write_result(xp, outputs[0], inputs[0], req[0])


def _first_input(attrs, in_values):
    return in_values, [in_values[0]]


def _copy_depending(entry, replace, prefix, memo):
    """``entry`` with placeholders replaced (``replace``: ``{id(node): entry}``).

    Nodes that depend on no placeholder are shared, not copied.
    """
    node, index = entry
    got = replace.get(id(node))
    if got is not None:
        return got
    got = memo.get(id(node))
    if got is None:
        inputs = [_copy_depending(e, replace, prefix, memo) for e in node.inputs]
        if all(new is old for new, old in zip(inputs, node.inputs)):
            got = node
        else:
            got = Node(node.op, prefix + node.name, node.attrs, inputs, node.user_attrs)
        memo[id(node)] = got
    return (got, index) if got is not node else entry


def _missing(attrs):
    """Why the gradient of a node with these attrs cannot be built here (None: it can)."""
    if attrs.key in _overrides or attrs.function in _registry:
        return None
    if attrs.function:
        module = attrs.function.rpartition(".")[0]
        where = f"import the module that defines it ({module}) or " if module else ""
        return (f"its gradient function '{attrs.function}' is not registered in this process: "
                f"{where}run @custom_gradient(name='{attrs.function}') on the same function "
                "before loading the graph")
    return ("its gradient function has no registered name (a lambda or a function defined "
            "inside another function) and belongs to the process that built the graph: "
            "define the function at module level or decorate it with "
            "@custom_gradient(name='...'), and save the graph again")


def _rebuild(attrs, node_name):
    """The grad graph of a node loaded from JSON, from its registered function."""
    fn = _registry[attrs.function]
    tag = f"_custom_gradient_{node_name}"
    inputs = [Variable(f"{tag}_input{i}") for i in range(attrs.num_inputs)]
    upstream = Variable(f"{tag}_upstream")
    result = fn(*inputs)
    if not (isinstance(result, tuple) and len(result) == 2 and callable(result[1])):
        raise TypeError(f"custom_gradient '{attrs.function}': the function must return "
                        "(result, grad_function)")
    grads = _as_entries(result[1](upstream), "gradient")
    if len(grads) != attrs.num_inputs:
        raise DeepkitError(f"_custom_gradient '{node_name}': the registered function "
                           f"'{attrs.function}' gives {len(grads)} gradient(s), but the node "
                           f"has {attrs.num_inputs} input(s)")
    return _Override(upstream._outputs[0][0], grads, [v._outputs[0][0] for v in inputs])


def _override_gradient(F, node, ograds):
    record = _overrides.get(node.attrs.key)
    if record is None:
        why = _missing(node.attrs)
        if why is not None:
            raise DeepkitError(f"_custom_gradient '{node.name}': {why}")
        record = _overrides[node.attrs.key] = _rebuild(node.attrs, node.name)
    replace = {id(record.upstream): ograds[0]._outputs[0]}
    for placeholder, entry in zip(record.inputs, node.inputs[1:]):
        replace[id(placeholder)] = entry._outputs[0]
    memo = {}
    grads = [F.wrap([_copy_depending(e, replace, f"{node.name}_backward_", memo)])
             for e in record.grads]
    return [None] + grads


class _OverrideOpDef(OpDef):
    """``OpDef`` that refuses, when parsed (built or loaded), a node whose gradient is lost."""

    def parse_attrs(self, kwargs):
        attrs = super().parse_attrs(kwargs)
        why = _missing(attrs)
        if why is not None:
            raise ParamError(f"{self.name}: {why}", op=self.name, param="function",
                             value=attrs.function)
        return attrs


OVERRIDE = register_runtime(_OverrideOpDef(
    "_custom_gradient", _identity_forward,
    inputs=lambda a: ("data",) + tuple(f"input{i}" for i in range(a.num_inputs)),
    params={"key": Param(str, doc="Which call of a gradient function, in the process that "
                         "built the graph."),
            "num_inputs": Param(int, doc="How many inputs the function took.", min=0),
            "function": Param(str, "", doc="The registered name of the function: a graph "
                              "loaded in another process rebuilds the gradient from it.")},
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


def _symbolic(fn, inputs, registered):
    result = fn(*inputs)
    if not (isinstance(result, tuple) and len(result) == 2 and callable(result[1])):
        raise TypeError(f"custom_gradient {fn.__name__}: the function must return "
                        "(result, grad_function)")
    value, grad_fn = result
    key = f"{_PROCESS}-{next(_counter)}"
    upstream = Variable(f"_custom_gradient_{key}_upstream")
    grads = _as_entries(grad_fn(upstream), "gradient")
    if len(grads) != len(inputs):
        raise DeepkitError(f"custom_gradient {fn.__name__}: grad returned {len(grads)} "
                           f"gradient(s) for {len(inputs)} input(s)")
    _overrides[key] = _Override(upstream._outputs[0][0], grads)
    entries = _as_entries(value, "result") + _as_entries(list(inputs), "input")
    attrs = OVERRIDE.parse_attrs({"key": key, "num_inputs": len(inputs),
                                  "function": registered or ""})
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


def custom_gradient(fn=None, *, name=None):
    """Decorate ``fn(*inputs) -> (result, grad)`` so that ``grad(upstream)`` is its gradient.

    The function is registered by name, as MXNet's ``mx.operator.register``
    does for custom operators: a graph saved as symbol JSON records the name
    in its ``_custom_gradient`` nodes, and a process that loads the graph
    rebuilds the gradient from the function registered under that name there
    (decorating it, at module level, registers it when its module is
    imported). The default name is the function's ``module.qualname``;
    lambdas and functions defined inside other functions get none unless
    ``name`` is given, so their graphs train only in the process that built
    them (loading one elsewhere is refused with an error saying so).

    Args:
        fn: Takes Symbols (in a layer's ``call``) or NDArrays (eagerly) and
            returns ``(result, grad)``; ``grad(upstream)`` returns one gradient
            (a Symbol or an NDArray like the inputs) per input.
        name: The registered name (``@custom_gradient(name="clip_grad")``),
            stable across renames and moves of the function.

    Returns:
        The decorated function, with one single-output result (or, with only
        ``name``, the decorator).

    Raises:
        ValueError: ``name`` is already registered for another function.
    """
    if fn is None or isinstance(fn, str):
        name = fn if isinstance(fn, str) else name
        return functools.partial(custom_gradient, name=name)
    if name is not None and (not isinstance(name, str) or not name):
        raise ParamError(f"custom_gradient {getattr(fn, '__name__', fn)}: name must be a "
                         f"non-empty str, got {name!r}", op="_custom_gradient", param="name")
    registered = name or _default_name(fn)
    if registered:
        _register(registered, fn)

    @functools.wraps(fn)
    def wrapper(*inputs):
        if inputs and all(isinstance(x, Symbol) for x in inputs):
            return _symbolic(fn, inputs, registered)
        if inputs and all(isinstance(x, NDArray) for x in inputs):
            return _EagerCall(fn)(*inputs)
        raise TypeError(f"custom_gradient {fn.__name__}: inputs must be all Symbols or all "
                        f"NDArrays, got {[type(x).__name__ for x in inputs]}")
    wrapper.registered_name = registered
    return wrapper
