"""``nd.<Op>`` functions generated from the operator registry."""
from ..base import ParamError
from ..context import Context
from ..ops import registry as _registry
from .creation import array
from .ndarray import NDArray, binary_dispatch, invoke

__all__ = ["PARSED_KEPT", "make_function", "generate_functions"]


def _to_nd(value, ctx):
    if isinstance(value, NDArray):
        return value
    return array(value, ctx=ctx, dtype=getattr(value, "dtype", None))


def _without_graph_attrs(kwargs):
    """``kwargs`` less MXNet's ``__name__`` graph attributes.

    MXNet's imperative ops accept the attributes a symbol would carry
    (``nd.Convolution(..., __layout__='NCHW')``) and ignore them: an NDArray
    op has no graph node to hold them.
    """
    return {k: v for k, v in kwargs.items() if not _registry.is_graph_attr(k)}


#: Keyword values whose parsed params a function keeps for the next call with the same ones.
_SCALARS = (str, int, float, bool, type(None))

#: Parsed keyword sets kept per function (a loop whose learning rate changes every
#: step would add one per step: past this many, the kept ones are dropped).
PARSED_KEPT = 64


def _params_key(kwargs):
    """A key for keyword params given as plain scalars (their types included), or None."""
    key = []
    for k, v in kwargs.items():
        kind = type(v)
        if kind not in _SCALARS:
            return None
        key.append((k, kind, v))
    return tuple(key)


def make_function(op, public_name=None):
    """Build the imperative function for ``op``: inputs first, params as keywords.

    A call with all of the op's inputs as NDArrays, positionally, and its
    params as plain keyword scalars (``nd.sgd_update(w, g, lr=0.1, out=w)``,
    the shape of a hand-written training loop's calls) reuses the params
    parsed for the previous call with the same keywords.
    """
    has_scalar_form = op.scalar_form is not None
    inputs_given = None if op.variadic or callable(op.inputs) else len(op.inputs)
    parsed = {}

    def function(*args, out=None, name=None, ctx=None, **kwargs):
        key = None
        if len(args) == inputs_given and all(type(a) is NDArray for a in args):
            key = _params_key(kwargs)
            attrs = parsed.get(key) if key is not None else None
            if attrs is not None:
                return invoke(op, list(args), attrs, out, ctx)
        if has_scalar_form and len(args) == 2 and not kwargs:
            if not (isinstance(args[0], NDArray) and isinstance(args[1], NDArray)):
                result = binary_dispatch(op, args[0], args[1], out)
                if result is not NotImplemented:
                    return result
        if kwargs:
            kwargs = _without_graph_attrs(kwargs)
        args, arrays, attrs = op.split_call(args, kwargs, lambda v: isinstance(v, NDArray))
        if key is not None:
            if len(parsed) >= PARSED_KEPT:
                parsed.clear()
            parsed[key] = attrs
        inputs = args
        if not op.variadic:
            names = op.input_names(attrs)
            if len(args) > len(names):
                raise ParamError(f"{op.name}: takes {len(names)} input(s) ({', '.join(names)}) "
                                 f"but {len(args)} were given", op=op.name)
            slots = dict(zip(names, args))
            for k, v in arrays.items():
                if k not in names:
                    raise ParamError(f"{op.name}: unknown input '{k}'"
                                     f"{_registry.did_you_mean(k, names)}; inputs are "
                                     f"{', '.join(names) or 'none'}", op=op.name, param=k)
                if k in slots:
                    raise ParamError(f"{op.name}: input '{k}' given twice", op=op.name, param=k)
                slots[k] = v
            missing = [n for n in names if n not in slots]
            if missing:
                raise ParamError(f"{op.name}: missing input(s) {', '.join(missing)}",
                                 op=op.name, param=missing[0])
            inputs = [slots[n] for n in names]
        if inputs:
            place = next((x._ctx for x in inputs if isinstance(x, NDArray)), ctx)
            inputs = [_to_nd(x, place) for x in inputs]
        elif ctx is not None and not isinstance(ctx, Context):
            ctx = Context(ctx)
        return invoke(op, inputs, attrs, out, ctx)

    function.__name__ = public_name or op.name
    function.__qualname__ = function.__name__
    function.__doc__ = op.docstring()
    return function


def generate_functions(namespace):
    """Add one function per registered name (aliases included) to ``namespace``."""
    made = {}
    for name in _registry.list_ops():
        op = _registry.get_op(name)
        fn = made.get(op.name)
        if fn is None:
            fn = made[op.name] = make_function(op)
        if name not in namespace:
            namespace[name] = fn
    return made


