"""Ops that NDArray and Symbol also offer as methods (``x.sum(axis=1)``), as in MXNet."""

FLUENT_METHODS = (
    "sum", "mean", "prod", "max", "min", "nansum", "nanprod", "norm", "argmax", "argmin",
    "abs", "sign", "exp", "expm1", "log", "log1p", "log2", "log10", "sqrt", "rsqrt", "cbrt",
    "square", "reciprocal", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh",
    "tanh", "arcsinh", "arccosh", "arctanh", "sigmoid", "relu", "softmax", "log_softmax",
    "round", "rint", "floor", "ceil", "trunc", "fix", "clip", "transpose", "swapaxes",
    "flatten", "expand_dims", "squeeze", "broadcast_to", "broadcast_axes", "broadcast_like",
    "reshape_like", "tile", "repeat", "flip", "take", "pick", "one_hot", "sort", "argsort",
    "topk", "split", "slice", "slice_axis", "slice_like", "zeros_like", "ones_like",
    "degrees", "radians",
)


def attach_fluent_methods(cls, functions, skip=()):
    """Give ``cls`` a method per fluent op found in ``functions`` (``x.op(...)``)."""
    for name in FLUENT_METHODS:
        fn = functions.get(name)
        if fn is None or name in skip or name in cls.__dict__:
            continue

        def method(self, *args, _fn=fn, **kwargs):
            return _fn(self, *args, **kwargs)
        method.__name__ = name
        method.__qualname__ = f"{cls.__name__}.{name}"
        method.__doc__ = f"Method form of ``{name}(self, ...)``.\n\n{fn.__doc__}"
        setattr(cls, name, method)
