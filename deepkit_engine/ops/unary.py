"""Elementwise unary ops, ``clip``, ``cast``, ``identity``, ``*_like`` and ``add_n``.

Names and semantics follow MXNet 1.x. Every op keeps its input's dtype
(integer inputs of float functions are computed in floating point and cast
back, as MXNet does), except ``cast``. The special functions (``erf``,
``erfinv``, ``gamma``, ``gammaln``) use ``scipy.special`` (``cupyx.scipy.special``
on GPU) when it imports and fall back to the standard library otherwise,
because scipy is not a core dependency.

Rounding follows MXNet, which differs from numpy in two places: ``round``
rounds halves away from zero (numpy rounds them to even) and ``rint`` rounds
halves down, towards -inf (``rint(1.5) == 1``, ``rint(-1.5) == -2``).
"""
import importlib
import math
import statistics

import numpy as np

from ..base import ShapeError
from .elementwise import apply_ufunc, unary_forward
from .registry import REQUIRED, DType, OpDef, Param, register, same_shape

_INPLACE = ((0, 0),)


def _store(xp, out, value, req):
    """Write ``value`` (any dtype, broadcastable) into ``out`` honouring ``req``."""
    if req == "add":
        xp.add(out, value, out=out, casting="unsafe")
    elif req != "null":
        xp.copyto(out, value, casting="unsafe")


def _composite(compute):
    """A kernel from ``compute(xp, x, out)``, which writes f(x) into ``out``.

    ``compute`` gets a floating-point ``out`` of x's shape that may be ``x``
    itself (in-place), so it must read ``x`` before overwriting ``out``. For
    integer outputs and ``req='add'`` it writes into a temporary instead.
    """
    def forward(xp, attrs, inputs, outputs, req):
        r, out = req[0], outputs[0]
        if r == "null":
            return
        if r != "add" and out.dtype.kind == "f":
            compute(xp, inputs[0], out)
        else:
            tmp = xp.empty(out.shape, out.dtype if out.dtype.kind == "f" else np.float64)
            compute(xp, inputs[0], tmp)
            _store(xp, out, tmp, r)
    forward.__name__ = f"forward_{compute.__name__.lstrip('_')}"
    return forward


def _rounding(compute):
    """Like :func:`_composite`, but integer inputs are already integral: copied."""
    float_kernel = _composite(compute)

    def forward(xp, attrs, inputs, outputs, req):
        if inputs[0].dtype.kind in "fc":
            float_kernel(xp, attrs, inputs, outputs, req)
        elif req[0] != "inplace":
            _store(xp, outputs[0], inputs[0], req[0])
    forward.__name__ = float_kernel.__name__
    return forward


def _unary(name, forward, aliases=(), differentiable=True, doc=""):
    if isinstance(forward, str):
        forward = unary_forward(forward)
    return register(OpDef(name, forward, aliases=aliases, inplace=_INPLACE,
                          differentiable=differentiable, doc=doc))


# -- plain ufuncs -------------------------------------------------------------

for _name, _ufunc, _doc in [
        ("abs", "abs", "Absolute value ``|x|``."),
        ("sign", "sign", "Sign of each element: -1, 0 or 1 (zero gradient)."),
        ("negative", "negative", "Numerical negative ``-x``."),
        ("exp", "exp", "Exponential ``e**x``."),
        ("expm1", "expm1", "``exp(x) - 1``, accurate for small ``x``."),
        ("log", "log", "Natural logarithm."),
        ("log1p", "log1p", "``log(1 + x)``, accurate for small ``x``."),
        ("log2", "log2", "Base-2 logarithm."),
        ("log10", "log10", "Base-10 logarithm."),
        ("sqrt", "sqrt", "Square root."),
        ("cbrt", "cbrt", "Cube root."),
        ("square", "square", "``x * x``."),
        ("reciprocal", "reciprocal", "``1 / x``."),
        ("sin", "sin", "Sine (radians)."),
        ("cos", "cos", "Cosine (radians)."),
        ("tan", "tan", "Tangent (radians)."),
        ("arcsin", "arcsin", "Inverse sine, in [-pi/2, pi/2]."),
        ("arccos", "arccos", "Inverse cosine, in [0, pi]."),
        ("arctan", "arctan", "Inverse tangent, in (-pi/2, pi/2)."),
        ("sinh", "sinh", "Hyperbolic sine."),
        ("cosh", "cosh", "Hyperbolic cosine."),
        ("tanh", "tanh", "Hyperbolic tangent."),
        ("arcsinh", "arcsinh", "Inverse hyperbolic sine."),
        ("arccosh", "arccosh", "Inverse hyperbolic cosine (x >= 1)."),
        ("arctanh", "arctanh", "Inverse hyperbolic tangent (-1 < x < 1)."),
        ("floor", "floor", "Largest integer <= x (zero gradient)."),
        ("ceil", "ceil", "Smallest integer >= x (zero gradient)."),
        ("trunc", "trunc", "Rounds towards zero, dropping the fraction (zero gradient)."),
        ("fix", "trunc", "Rounds towards zero, like ``trunc`` (zero gradient)."),
        ("degrees", "degrees", "Converts radians to degrees."),
        ("radians", "radians", "Converts degrees to radians."),
]:
    _unary(_name, _ufunc, doc=_doc)

_unary("logical_not", "logical_not", differentiable=False,
       doc="1 where ``x == 0``, else 0, in the input's dtype (as MXNet).")


# -- composite kernels ----------------------------------------------------------

def _rsqrt(xp, x, out):
    xp.sqrt(x, out=out)
    xp.reciprocal(out, out=out)


def _relu(xp, x, out):
    # maximum propagates NaN, as MXNet's relu does.
    xp.maximum(x, 0, out=out)


def _sigmoid(xp, x, out):
    # 1 / (1 + exp(-x)) keeps full relative accuracy in both tails; exp(-x)
    # overflows to inf for x < -709 (-88 in float32), giving the correct 0.
    with np.errstate(over="ignore"):
        xp.negative(x, out=out)
        xp.exp(out, out=out)
    out += 1
    xp.reciprocal(out, out=out)


def _softsign(xp, x, out):
    denom = xp.abs(x)
    denom += 1
    xp.divide(x, denom, out=out)


def _round(xp, x, out):
    # Halves away from zero without the ``floor(|x| + 0.5)`` rounding errors
    # (0.49999999999999994, odd values above 2**52): x - trunc(x) is exact,
    # and trunc(2 * frac) is sign(x) where |frac| >= 0.5, else 0.
    t = xp.trunc(x)
    with np.errstate(invalid="ignore"):
        xp.subtract(x, t, out=out)  # NaN for +-inf
    out *= 2
    xp.trunc(out, out=out)
    xp.fmax(out, -1, out=out)  # NaN (from +-inf) -> -1, which t = +-inf absorbs
    out += t


def _rint(xp, x, out):
    # MXNet's rint: the nearer of floor and ceil, floor on ties.
    f = xp.floor(x)
    with np.errstate(invalid="ignore"):
        xp.subtract(x, f, out=out)  # exact fraction in [0, 1); NaN for +-inf
    xp.greater(out, 0.5, out=out, casting="unsafe")  # NaN -> 0
    out += f


_unary("rsqrt", _composite(_rsqrt), doc="``1 / sqrt(x)``.")
_unary("relu", _composite(_relu), doc="Rectified linear unit ``max(x, 0)`` (NaN stays NaN).")
_unary("sigmoid", _composite(_sigmoid),
       doc="Logistic sigmoid ``1 / (1 + exp(-x))``, accurate and overflow-free for any x.")
_unary("softsign", _composite(_softsign), doc="``x / (1 + |x|)``.")
_unary("round", _rounding(_round),
       doc="Rounds to the nearest integer, halves away from zero (MXNet; numpy rounds "
           "halves to even).")
_unary("rint", _rounding(_rint),
       doc="Rounds to the nearest integer, halves towards -inf as in MXNet: "
           "``rint(1.5) == 1``, ``rint(-1.5) == -2``.")


# -- special functions ------------------------------------------------------------

#: ``{on_gpu: module or None}``: the special-function module found for a backend.
_SPECIAL = {}


def _import_special(gpu):
    """``scipy.special`` (``cupyx.scipy.special`` for GPU), or None if missing."""
    try:
        return importlib.import_module("cupyx.scipy.special" if gpu else "scipy.special")
    except ImportError:
        return None


def _special_module(xp):
    gpu = xp is not np
    try:
        return _SPECIAL[gpu]
    except KeyError:
        module = _SPECIAL[gpu] = _import_special(gpu)
        return module


def _std_gamma(v):
    try:
        return math.gamma(v)
    except ValueError:  # poles: +-0 (-> +-inf, as scipy) and negative integers (NaN)
        return math.copysign(math.inf, v) if v == 0 else math.nan
    except OverflowError:
        return math.inf


def _std_gammaln(v):
    try:
        return math.lgamma(v)
    except (ValueError, OverflowError):  # poles and overflow
        return math.inf


_NORMAL = statistics.NormalDist()
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _std_erfinv(v):
    if not -1.0 < v < 1.0:
        return math.copysign(math.inf, v) if abs(v) == 1.0 else math.nan
    # erfinv(v) = -inv_cdf((1 - |v|) / 2) / sqrt(2) * sign(v): 1 - |v| is exact
    # for |v| >= 0.5, so the tail keeps its accuracy.
    y = math.copysign(_NORMAL.inv_cdf((1.0 - abs(v)) / 2.0), v) / math.sqrt(2.0)
    if abs(v) < 0.5:
        # 1 - |v| drops the low bits of small v; a Newton step on erf restores them.
        y -= (math.erf(y) - v) / (_TWO_OVER_SQRT_PI * math.exp(-y * y))
    return y


_FALLBACKS = {
    "erf": np.vectorize(math.erf, otypes=[np.float64]),
    "erfinv": np.vectorize(_std_erfinv, otypes=[np.float64]),
    "gamma": np.vectorize(_std_gamma, otypes=[np.float64]),
    "gammaln": np.vectorize(_std_gammaln, otypes=[np.float64]),
}


def _special_forward(name):
    fallback = _FALLBACKS[name]

    def forward(xp, attrs, inputs, outputs, req):
        module = _special_module(xp)
        if module is not None:
            apply_ufunc(getattr(module, name), inputs, outputs[0], req[0])
            return
        if req[0] == "null":
            return
        x = inputs[0]
        with np.errstate(all="ignore"):  # math sets FPE flags before raising OverflowError
            value = fallback(x if isinstance(x, np.ndarray) else x.get())
        _store(xp, outputs[0], value if xp is np else xp.asarray(value), req[0])
    forward.__name__ = f"forward_{name}"
    return forward


_unary("erf", _special_forward("erf"), doc="Gauss error function.")
_unary("erfinv", _special_forward("erfinv"),
       doc="Inverse error function: ``erf(erfinv(x)) == x`` for -1 < x < 1 (+-inf at +-1).")
_unary("gamma", _special_forward("gamma"), doc="Gamma function.")
_unary("gammaln", _special_forward("gammaln"), doc="``log(|gamma(x)|)``.")


# -- clip, cast, copies, constants ------------------------------------------------

def _clip(xp, attrs, inputs, outputs, req):
    r, out = req[0], outputs[0]
    if r == "write" or r == "inplace":
        xp.maximum(inputs[0], attrs.a_min, out=out, casting="unsafe")
        xp.minimum(out, attrs.a_max, out=out, casting="unsafe")
    elif r == "add":
        _store(xp, out, xp.minimum(xp.maximum(inputs[0], attrs.a_min), attrs.a_max), r)


register(OpDef(
    "clip", _clip, params={"a_min": Param(float, REQUIRED, "Minimum value."),
                           "a_max": Param(float, REQUIRED, "Maximum value.")},
    inplace=_INPLACE,
    doc="Limits each element to [a_min, a_max]; NaN stays NaN. As numpy.clip, "
        "every element becomes a_max when a_min > a_max."))


def _cast(xp, attrs, inputs, outputs, req):
    _store(xp, outputs[0], inputs[0], req[0])


def _cast_type(attrs, in_dtypes):
    return in_dtypes, [attrs.dtype]


register(OpDef("cast", _cast, params={"dtype": Param(DType, REQUIRED, "Output data type.")},
               infer_type=_cast_type, aliases=("Cast",),
               doc="Converts the elements to ``dtype`` (float to int truncates towards zero)."))


def _identity(xp, attrs, inputs, outputs, req):
    if req[0] != "inplace":
        _store(xp, outputs[0], inputs[0], req[0])


_unary("identity", _identity, aliases=("_copy",), doc="Returns a copy of the input.")


def _fill_forward(value):
    def forward(xp, attrs, inputs, outputs, req):
        r, out = req[0], outputs[0]
        if r == "add":
            if value:
                out += value
        elif r != "null":
            out.fill(value)
    forward.__name__ = f"forward_fill_{value}"
    return forward


_unary("zeros_like", _fill_forward(0), differentiable=False,
       doc="An array of zeros with the input's shape and dtype.")
_unary("ones_like", _fill_forward(1), differentiable=False,
       doc="An array of ones with the input's shape and dtype.")


# -- add_n ---------------------------------------------------------------------------

def _add_n(xp, attrs, inputs, outputs, req):
    r, out = req[0], outputs[0]
    if r == "null":
        return
    if r == "add":
        for x in inputs:
            out += x
        return
    if len(inputs) == 1:
        if r != "inplace":
            xp.copyto(out, inputs[0])
        return
    hits = [i for i, x in enumerate(inputs) if x is out]
    if len(hits) == 1:  # out is one of the inputs (in-place): add the others into it
        for i, x in enumerate(inputs):
            if i != hits[0]:
                xp.add(out, x, out=out)
        return
    if hits:  # out is several of the inputs: sum into a temporary first
        total = inputs[0] + inputs[1]
        for x in inputs[2:]:
            total += x
        xp.copyto(out, total)
        return
    xp.add(inputs[0], inputs[1], out=out)
    for x in inputs[2:]:
        xp.add(out, x, out=out)


def _add_n_shape(attrs, in_shapes):
    if not in_shapes:
        raise ShapeError("add_n needs at least one input", argument="num_args", expected=">= 1",
                         actual=0)
    return same_shape(attrs, in_shapes)


register(OpDef(
    "add_n", _add_n, params={"num_args": Param(int, None, "Number of inputs (set automatically).",
                                               min=1)},
    infer_shape=_add_n_shape, variadic=True, inplace=_INPLACE, aliases=("ElementWiseSum",),
    doc="Elementwise sum of all inputs, which must share one shape and dtype (no "
        "broadcasting)."))
