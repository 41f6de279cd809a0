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

Gradients are compositions of differentiable ops, so they can be differentiated
again. Sign and rounding ops have a zero gradient; ``relu``'s passes where the
output is positive and ``clip``'s where ``a_min <= x <= a_max`` (MXNet);
``cast`` casts the gradient back to the input's dtype (``_backward_cast``).
``gamma`` and ``gammaln`` differentiate through ``_psi`` (polygamma, itself
differentiable to any order), with the same scipy-or-stdlib fallback.
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


def _unary(name, forward, aliases=(), differentiable=True, doc="", gradient=None,
           **declaration):
    """An elementwise one-input op; ``declaration`` holds ``fluent``/``operator``."""
    if isinstance(forward, str):
        forward = unary_forward(forward)
    return register(OpDef(name, forward, aliases=aliases, inplace=_INPLACE,
                          differentiable=differentiable, doc=doc, gradient=gradient,
                          **declaration))


# -- gradients ------------------------------------------------------------------
#
# Each ``gradient(F, node, ograds)`` composes differentiable ops, so gradients can
# be differentiated again; where the derivative is a function of the output
# (exp, sqrt, tanh, sigmoid, ...) it uses the output, so the input can be freed.

def _dx(fn):
    """A gradient ``ograd * fn(F, x)`` (derivative from the input)."""
    def gradient(F, node, ograds):
        return [ograds[0] * fn(F, node.inputs[0])]
    return gradient


def _dy(fn):
    """A gradient ``ograd * fn(F, y)`` (derivative from the output)."""
    def gradient(F, node, ograds):
        return [ograds[0] * fn(F, node.outputs[0])]
    return gradient


def _zero_gradient(F, node, ograds):
    """Piecewise-constant ops (sign, rounding): the gradient is zero (shaped like ograd,
    which is x's shape, so that x itself need not be kept)."""
    return [F.zeros_like(ograds[0])]


def _pass_gradient(F, node, ograds):
    return [ograds[0]]


def _negative_gradient(F, node, ograds):
    return [-ograds[0]]


def _scaled_gradient(factor):
    def gradient(F, node, ograds):
        return [ograds[0] * factor]
    return gradient


def _quotient(fn):
    """A gradient ``ograd / fn(F, x)``."""
    def gradient(F, node, ograds):
        return [ograds[0] / fn(F, node.inputs[0])]
    return gradient


_LN2, _LN10 = math.log(2.0), math.log(10.0)

_GRADIENTS = {
    "abs": _dx(lambda F, x: F.sign(x)),
    "sign": _zero_gradient,
    "negative": _negative_gradient,
    "exp": _dy(lambda F, y: y),
    "expm1": _dy(lambda F, y: y + 1.0),
    "log": _quotient(lambda F, x: x),
    "log1p": _quotient(lambda F, x: x + 1.0),
    "log2": _quotient(lambda F, x: x * _LN2),
    "log10": _quotient(lambda F, x: x * _LN10),
    "sqrt": lambda F, node, ograds: [ograds[0] * 0.5 / node.outputs[0]],
    "cbrt": lambda F, node, ograds: [ograds[0] / (F.square(node.outputs[0]) * 3.0)],
    "square": _dx(lambda F, x: x * 2.0),
    "reciprocal": lambda F, node, ograds: [-(ograds[0] * F.square(node.outputs[0]))],
    "sin": _dx(lambda F, x: F.cos(x)),
    "cos": _dx(lambda F, x: -F.sin(x)),
    "tan": _dy(lambda F, y: F.square(y) + 1.0),
    "arcsin": _dx(lambda F, x: F.rsqrt(1.0 - F.square(x))),
    "arccos": _dx(lambda F, x: -F.rsqrt(1.0 - F.square(x))),
    "arctan": _quotient(lambda F, x: F.square(x) + 1.0),
    "sinh": _dx(lambda F, x: F.cosh(x)),
    "cosh": _dx(lambda F, x: F.sinh(x)),
    "tanh": _dy(lambda F, y: 1.0 - F.square(y)),
    "arcsinh": _dx(lambda F, x: F.rsqrt(F.square(x) + 1.0)),
    "arccosh": _dx(lambda F, x: F.rsqrt(F.square(x) - 1.0)),
    "arctanh": _quotient(lambda F, x: 1.0 - F.square(x)),
    "floor": _zero_gradient,
    "ceil": _zero_gradient,
    "trunc": _zero_gradient,
    "fix": _zero_gradient,
    "degrees": _scaled_gradient(180.0 / math.pi),
    "radians": _scaled_gradient(math.pi / 180.0),
}


# -- plain ufuncs -------------------------------------------------------------

_UNARY_OPERATORS = {"negative": "neg", "abs": "abs"}  # -x, abs(x)

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
    _unary(_name, _ufunc, doc=_doc, gradient=_GRADIENTS[_name],
           fluent=_name != "negative", operator=_UNARY_OPERATORS.get(_name))

_unary("logical_not", "logical_not", differentiable=False, operator="invert",
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


_unary("rsqrt", _composite(_rsqrt), doc="``1 / sqrt(x)``.",
       gradient=_dy(lambda F, y: y * F.square(y) * -0.5), fluent=True)


def _rcbrt(xp, x, out):
    xp.cbrt(x, out=out)
    xp.reciprocal(out, out=out)


# d/dx x**(-1/3) = -x**(-4/3) / 3 = -y**4 / 3
_unary("rcbrt", _composite(_rcbrt), doc="``1 / cbrt(x)``, the reciprocal cube root.",
       gradient=_dy(lambda F, y: F.square(F.square(y)) * (-1.0 / 3.0)), fluent=True)
# relu's gradient passes where the output is positive (as MXNet), so x can be freed.
_unary("relu", _composite(_relu), doc="Rectified linear unit ``max(x, 0)`` (NaN stays NaN).",
       gradient=_dy(lambda F, y: y > 0), fluent=True)
_unary("sigmoid", _composite(_sigmoid),
       doc="Logistic sigmoid ``1 / (1 + exp(-x))``, accurate and overflow-free for any x.",
       gradient=_dy(lambda F, y: y * (1.0 - y)), fluent=True)
_unary("softsign", _composite(_softsign), doc="``x / (1 + |x|)``.",
       gradient=_quotient(lambda F, x: F.square(F.abs(x) + 1.0)))
_unary("round", _rounding(_round),
       doc="Rounds to the nearest integer, halves away from zero (MXNet; numpy rounds "
           "halves to even).", gradient=_zero_gradient, fluent=True)
_unary("rint", _rounding(_rint),
       doc="Rounds to the nearest integer, halves towards -inf as in MXNet: "
           "``rint(1.5) == 1``, ``rint(-1.5) == -2``.", gradient=_zero_gradient, fluent=True)


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


_SQRT_PI = math.sqrt(math.pi)

_unary("erf", _special_forward("erf"), doc="Gauss error function.",
       gradient=_dx(lambda F, x: F.exp(-F.square(x)) * _TWO_OVER_SQRT_PI))
_unary("erfinv", _special_forward("erfinv"),
       doc="Inverse error function: ``erf(erfinv(x)) == x`` for -1 < x < 1 (+-inf at +-1).",
       gradient=_dy(lambda F, y: F.exp(F.square(y)) * (_SQRT_PI / 2.0)))
_unary("gamma", _special_forward("gamma"), doc="Gamma function.",
       gradient=lambda F, node, ograds: [ograds[0] * node.outputs[0] * F._psi(node.inputs[0])])
_unary("gammaln", _special_forward("gammaln"), doc="``log(|gamma(x)|)``.",
       gradient=_dx(lambda F, x: F._psi(x)))


# -- polygamma: the derivatives of gamma and gammaln -------------------------------------

#: Bernoulli numbers B2, B4, ..., B16 for the asymptotic series.
_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510)


def _std_polygamma(n, x):
    """The n-th derivative of digamma at the float ``x`` (scipy's values at the poles)."""
    sign = 1.0 if n % 2 else -1.0  # (-1) ** (n + 1)
    if math.isnan(x):
        return math.nan
    if math.isinf(x):
        if x > 0:
            return math.inf if n == 0 else sign * 0.0
        return math.nan if n == 0 else sign * math.inf
    if x <= 0 and x == math.floor(x):  # poles
        if n == 0:
            return -math.copysign(math.inf, x) if x == 0 else math.nan
        return sign * math.inf
    try:
        if x < 0 and n == 0:  # reflection: psi(x) = psi(1 - x) - pi / tan(pi x)
            return _std_polygamma(0, 1.0 - x) - math.pi / math.tan(math.pi * x)
        if x < 0 and n == 1:  # psi1(x) = pi^2 / sin(pi x)^2 - psi1(1 - x)
            return (math.pi / math.sin(math.pi * x)) ** 2 - _std_polygamma(1, 1.0 - x)
        if x < -1e5:  # n >= 2 far left of zero: the recurrence below would take too long
            return math.nan
        fact = math.factorial(n)
        shift = 0.0
        while x < 16.0:  # psi_n(x) = psi_n(x + 1) + (-1)^(n+1) n! / x^(n+1)
            shift += fact / x ** (n + 1)
            x += 1.0
        if n == 0:
            series = math.log(x) - 0.5 / x
            for k, b in enumerate(_BERNOULLI, 1):
                series -= b / (2 * k * x ** (2 * k))
            return series + sign * shift
        series = math.factorial(n - 1) / x ** n + fact / (2.0 * x ** (n + 1))
        for k, b in enumerate(_BERNOULLI, 1):
            series += b * math.factorial(2 * k + n - 1) / (math.factorial(2 * k) *
                                                           x ** (2 * k + n))
        return sign * (series + shift)
    except (OverflowError, ZeroDivisionError):  # next to the pole at 0
        return sign * (math.inf if n % 2 or x > 0 else -math.inf)


_std_polygamma_vec = np.vectorize(_std_polygamma, otypes=[np.float64])


def _psi(xp, attrs, inputs, outputs, req):
    r, n, x = req[0], attrs.n, inputs[0]
    if r == "null":
        return
    module = _special_module(xp)
    if module is not None:
        if n == 0:
            apply_ufunc(module.digamma, inputs, outputs[0], r)
            return
        # scipy's own polygamma: (-1)^(n+1) n! zeta(n + 1, x)
        value = module.zeta(float(n + 1), x) * ((-1.0) ** (n + 1) * math.factorial(n))
    else:
        with np.errstate(all="ignore"):
            value = _std_polygamma_vec(n, x if isinstance(x, np.ndarray) else x.get())
        value = value if xp is np else xp.asarray(value)
    _store(xp, outputs[0], value, r)


def _psi_gradient(F, node, ograds):
    return [ograds[0] * F._psi(node.inputs[0], n=node.attrs.n + 1)]


register(OpDef(
    "_psi", _psi, params={"n": Param(int, 0, "Order of the derivative of digamma.", min=0)},
    inplace=_INPLACE, gradient=_psi_gradient,
    doc="Polygamma: the n-th derivative of digamma ``psi = d/dx log(gamma(x))`` (n=0: "
        "digamma itself), for the gradients of ``gamma`` and ``gammaln``."))


# -- clip, cast, copies, constants ------------------------------------------------

def _clip(xp, attrs, inputs, outputs, req):
    r, out = req[0], outputs[0]
    if r == "write" or r == "inplace":
        xp.maximum(inputs[0], attrs.a_min, out=out, casting="unsafe")
        xp.minimum(out, attrs.a_max, out=out, casting="unsafe")
    elif r == "add":
        _store(xp, out, xp.minimum(xp.maximum(inputs[0], attrs.a_min), attrs.a_max), r)


def _clip_gradient(F, node, ograds):
    # MXNet: the gradient passes where a_min <= x <= a_max (none when a_min > a_max).
    x, attrs = node.inputs[0], node.attrs
    return [ograds[0] * ((x >= attrs.a_min) * (x <= attrs.a_max))]


register(OpDef(
    "clip", _clip, params={"a_min": Param(float, REQUIRED, "Minimum value."),
                           "a_max": Param(float, REQUIRED, "Maximum value.")},
    inplace=_INPLACE, gradient=_clip_gradient,
    doc="Limits each element to [a_min, a_max]; NaN stays NaN. As numpy.clip, "
        "every element becomes a_max when a_min > a_max. The gradient passes where "
        "a_min <= x <= a_max (MXNet).", fluent=True))


def _cast(xp, attrs, inputs, outputs, req):
    _store(xp, outputs[0], inputs[0], req[0])


def _cast_type(attrs, in_dtypes):
    return in_dtypes, [attrs.dtype]


def _cast_gradient(F, node, ograds):
    return [F._backward_cast(ograds[0], node.inputs[0])]


register(OpDef("cast", _cast, params={"dtype": Param(DType, REQUIRED, "Output data type.")},
               infer_type=_cast_type, aliases=("Cast",), gradient=_cast_gradient,
               doc="Converts the elements to ``dtype`` (float to int truncates towards zero); "
                   "the gradient is cast back to the input's dtype."))


def _backward_cast_type(attrs, in_dtypes):
    return in_dtypes, [in_dtypes[1]]


def _backward_cast_gradient(F, node, ograds):
    # Linear in ograd: cast the incoming gradient back to ograd's dtype.
    return [F._backward_cast(ograds[0], node.inputs[0]), None]


register(OpDef(
    "_backward_cast", _cast, inputs=("ograd", "like"), infer_type=_backward_cast_type,
    gradient=_backward_cast_gradient,
    doc="``ograd`` converted to ``like``'s dtype (``like`` gives only its dtype): the "
        "gradient of ``cast``."))


def _identity(xp, attrs, inputs, outputs, req):
    if req[0] != "inplace":
        _store(xp, outputs[0], inputs[0], req[0])


_unary("identity", _identity, aliases=("_copy",), doc="Returns a copy of the input.",
       gradient=_pass_gradient)


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
       doc="An array of zeros with the input's shape and dtype.", fluent=True)
_unary("ones_like", _fill_forward(1), differentiable=False,
       doc="An array of ones with the input's shape and dtype.", fluent=True)


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
    gradient=lambda F, node, ograds: [ograds[0]] * len(node.inputs),
    doc="Elementwise sum of all inputs, which must share one shape and dtype (no "
        "broadcasting)."))
