"""Binary elementwise ops: broadcasting forms, scalar forms and MXNet's names.

Each op is registered under its numpy name with MXNet's ``broadcast_*``,
``elemwise_*`` and internal names as aliases (MXNet's ``elemwise_*`` forms
require equal shapes; here they broadcast too). Comparisons and logical ops
return 1/0 in the input dtype, as MXNet does, not bool.

``mod`` gives the remainder with the sign of the divisor (Python's ``%`` and
numpy's ``mod``; MXNet computes the same), and 0 where the divisor is 0 (MXNet;
numpy would give NaN for floats). Integer ``power`` is computed in float64 and
truncated, so negative exponents give 0 or +-1 instead of numpy's error.

Gradients follow MXNet: ``maximum``/``minimum`` give the gradient to lhs on ties,
``mod``'s are 1 for lhs and ``-floor(lhs / rhs)`` for rhs, and ``where``'s
condition gets none. Broadcasting ops return output-shaped gradients that the
gradient pass sums down to each input (``unbroadcast``).
"""
import math

import numpy as np

from ..base import DTypeError, ShapeError
from .elementwise import apply_ufunc, broadcast_shape, scalar_param
from .registry import OpDef, register


def _binary(name, ufunc_name, aliases=(), doc="", forward=None, differentiable=True,
            gradient=None, **declaration):
    """A broadcasting binary op. ``gradient`` returns output-shaped gradients; the
    gradient pass sums them down to each input's shape (``unbroadcast``).
    ``declaration`` holds the scalar forms and the Python operator (see OpDef)."""
    if forward is None:
        def forward(xp, attrs, inputs, outputs, req):
            apply_ufunc(getattr(xp, ufunc_name), inputs, outputs[0], req[0])
    return register(OpDef(name, forward, inputs=("lhs", "rhs"), infer_shape=broadcast_shape,
                          aliases=aliases, inplace=((0, 0), (1, 0)),
                          differentiable=differentiable, unbroadcast=differentiable,
                          gradient=gradient, doc=doc, **declaration))


def _scalar(name, ufunc_name, reverse=False, aliases=(), doc="", forward=None,
            differentiable=True, gradient=None, operator_alias=None):
    """A ``data <op> scalar`` op; symbol operators name its nodes after
    ``operator_alias``, by default the first alias (MXNet's ``_PlusScalar``)."""
    if forward is None and reverse:
        def forward(xp, attrs, inputs, outputs, req):
            apply_ufunc(getattr(xp, ufunc_name), (attrs.scalar, inputs[0]), outputs[0], req[0])
    elif forward is None:
        def forward(xp, attrs, inputs, outputs, req):
            apply_ufunc(getattr(xp, ufunc_name), (inputs[0], attrs.scalar), outputs[0], req[0])
    return register(OpDef(name, forward, params=scalar_param(), aliases=aliases,
                          inplace=((0, 0),), differentiable=differentiable, gradient=gradient,
                          doc=doc,
                          operator_alias=operator_alias or (aliases[0] if aliases else None)))


# -- gradients ----------------------------------------------------------------------
#
# Compositions of differentiable ops, so they can be differentiated again. Binary
# gradients have the output's shape (ograd broadcast against the operands).

def _add_gradient(F, node, ograds):
    return [ograds[0], ograds[0]]


def _subtract_gradient(F, node, ograds):
    return [ograds[0], -ograds[0]]


def _multiply_gradient(F, node, ograds):
    g = ograds[0]
    lhs, rhs = node.inputs
    return [g * rhs, g * lhs]


def _divide_gradient(F, node, ograds):
    # d/dlhs = 1 / rhs; d/drhs = -lhs / rhs^2 = -out / rhs.
    g, rhs = ograds[0], node.inputs[1]
    return [g / rhs, -(g * node.outputs[0] / rhs)]


def _mod_gradient(F, node, ograds):
    # MXNet: d/dlhs = 1, d/drhs = -floor(lhs / rhs).
    g = ograds[0]
    lhs, rhs = node.inputs
    return [g, -(g * F.floor(lhs / rhs))]


def _power_gradient(F, node, ograds):
    # d/dlhs = rhs * lhs^(rhs - 1) (finite at lhs = 0); d/drhs = out * log(lhs).
    g = ograds[0]
    lhs, rhs = node.inputs
    return [g * (rhs * F.power(lhs, rhs - 1.0)), g * node.outputs[0] * F.log(lhs)]


def _maximum_gradient(F, node, ograds):
    # Ties go to lhs, as MXNet.
    g = ograds[0]
    lhs, rhs = node.inputs
    return [g * (lhs >= rhs), g * (lhs < rhs)]


def _minimum_gradient(F, node, ograds):
    g = ograds[0]
    lhs, rhs = node.inputs
    return [g * (lhs <= rhs), g * (lhs > rhs)]


def _hypot_gradient(F, node, ograds):
    g_over = ograds[0] / node.outputs[0]
    lhs, rhs = node.inputs
    return [g_over * lhs, g_over * rhs]


def _arctan2_gradient(F, node, ograds):
    # d/dlhs = rhs / (lhs^2 + rhs^2), d/drhs = -lhs / (lhs^2 + rhs^2).
    lhs, rhs = node.inputs
    g_over = ograds[0] / (F.square(lhs) + F.square(rhs))
    return [g_over * rhs, -(g_over * lhs)]


def _scalar_gradient(fn):
    """A scalar-op gradient from ``fn(F, ograd, data, scalar)``."""
    def gradient(F, node, ograds):
        return [fn(F, ograds[0], node.inputs[0], node.attrs.scalar)]
    gradient.__name__ = fn.__name__
    return gradient


def _output_gradient(fn):
    """A scalar-op gradient from ``fn(F, ograd, output, scalar)`` (the input can be freed)."""
    def gradient(F, node, ograds):
        return [fn(F, ograds[0], node.outputs[0], node.attrs.scalar)]
    gradient.__name__ = fn.__name__
    return gradient


@_scalar_gradient
def _plus_scalar_gradient(F, g, x, s):
    return g


@_scalar_gradient
def _rminus_scalar_gradient(F, g, x, s):
    return -g


@_scalar_gradient
def _mul_scalar_gradient(F, g, x, s):
    return g * s


@_scalar_gradient
def _div_scalar_gradient(F, g, x, s):
    return g / s


@_scalar_gradient
def _rdiv_scalar_gradient(F, g, x, s):
    # d(s / x)/dx = -s / x^2
    return g / F.square(x) * -s


@_scalar_gradient
def _maximum_scalar_gradient(F, g, x, s):
    return g * (x >= s)  # ties go to data, as MXNet


@_scalar_gradient
def _minimum_scalar_gradient(F, g, x, s):
    return g * (x <= s)


def _hypot_scalar_gradient(F, node, ograds):
    return [ograds[0] * node.inputs[0] / node.outputs[0]]


@_scalar_gradient
def _mod_scalar_gradient(F, g, x, s):
    # d(x mod s)/dx = 1, except for s = 0, where the output is constant 0
    return F.zeros_like(g) if s == 0 else g


@_scalar_gradient
def _rmod_scalar_gradient(F, g, x, s):
    # MXNet: d(s mod x)/dx = -floor(s / x)
    return -(g * F.floor(s / x))


@_scalar_gradient
def _power_scalar_gradient(F, g, x, s):
    if s == 0:
        return F.zeros_like(g)
    return g * (F._power_scalar(x, scalar=s - 1.0) * s)


@_output_gradient
def _rpower_scalar_gradient(F, g, y, s):
    # d(s^x)/dx = s^x log(s) (NaN for s <= 0, as log)
    return g * y * (math.log(s) if s > 0 else (-math.inf if s == 0 else math.nan))

_binary("add", "add", aliases=("broadcast_add", "broadcast_plus", "elemwise_add", "_add", "_plus",
                               "_Plus"),
        doc="Elementwise sum ``lhs + rhs`` with numpy broadcasting.", gradient=_add_gradient,
        scalar_form="_plus_scalar", operator="add", operator_alias="_Plus")
_scalar("_plus_scalar", "add", aliases=("_PlusScalar",), doc="``data + scalar``.",
        gradient=_plus_scalar_gradient)


# -- arithmetic -------------------------------------------------------------------

_binary("subtract", "subtract", aliases=("broadcast_sub", "broadcast_minus", "elemwise_sub", "_sub",
                                         "_minus", "_Minus"),
        doc="Elementwise difference ``lhs - rhs`` with numpy broadcasting.",
        gradient=_subtract_gradient, scalar_form="_minus_scalar",
        reflected_scalar_form="_rminus_scalar", operator="sub", operator_alias="_Minus")
_binary("multiply", "multiply", aliases=("broadcast_mul", "elemwise_mul", "_mul", "_Mul"),
        doc="Elementwise product ``lhs * rhs`` with numpy broadcasting.",
        gradient=_multiply_gradient, scalar_form="_mul_scalar", operator="mul",
        operator_alias="_Mul")
_binary("divide", "divide", aliases=("broadcast_div", "elemwise_div", "_div", "_Div"),
        doc="Elementwise quotient ``lhs / rhs`` with numpy broadcasting (integers truncate "
            "towards zero).", gradient=_divide_gradient, scalar_form="_div_scalar",
        reflected_scalar_form="_rdiv_scalar", operator="truediv", operator_alias="_Div")
_binary("maximum", "maximum", aliases=("broadcast_maximum", "_maximum", "_Maximum"),
        doc="Elementwise maximum with numpy broadcasting (NaN propagates); on ties the "
            "gradient goes to lhs (MXNet).", gradient=_maximum_gradient,
        scalar_form="_maximum_scalar")
_binary("minimum", "minimum", aliases=("broadcast_minimum", "_minimum", "_Minimum"),
        doc="Elementwise minimum with numpy broadcasting (NaN propagates); on ties the "
            "gradient goes to lhs (MXNet).", gradient=_minimum_gradient,
        scalar_form="_minimum_scalar")
_binary("hypot", "hypot", aliases=("broadcast_hypot", "_hypot", "_Hypot"),
        doc="``sqrt(lhs**2 + rhs**2)`` without overflow, with numpy broadcasting.",
        gradient=_hypot_gradient, scalar_form="_hypot_scalar")
_binary("arctan2", "arctan2", aliases=("_npi_arctan2",),
        doc="Elementwise ``arctan(lhs / rhs)`` in the quadrant of (rhs, lhs), in [-pi, pi].",
        gradient=_arctan2_gradient)

_scalar("_minus_scalar", "subtract", aliases=("_MinusScalar",), doc="``data - scalar``.",
        gradient=_plus_scalar_gradient)
_scalar("_rminus_scalar", "subtract", reverse=True, aliases=("_RMinusScalar",),
        doc="``scalar - data``.",
        gradient=_rminus_scalar_gradient)
_scalar("_mul_scalar", "multiply", aliases=("_MulScalar",), doc="``data * scalar``.",
        gradient=_mul_scalar_gradient)
_scalar("_div_scalar", "divide", aliases=("_DivScalar",), doc="``data / scalar``.",
        gradient=_div_scalar_gradient)
_scalar("_rdiv_scalar", "divide", reverse=True, aliases=("_RDivScalar",),
        doc="``scalar / data``.",
        gradient=_rdiv_scalar_gradient)
_scalar("_maximum_scalar", "maximum", aliases=("_MaximumScalar",),
        doc="``maximum(data, scalar)``.",
        gradient=_maximum_scalar_gradient)
_scalar("_minimum_scalar", "minimum", aliases=("_MinimumScalar",),
        doc="``minimum(data, scalar)``.",
        gradient=_minimum_scalar_gradient)
_scalar("_hypot_scalar", "hypot", aliases=("_HypotScalar",), doc="``hypot(data, scalar)``.",
        gradient=_hypot_scalar_gradient)


# -- mod: sign of the divisor, 0 where the divisor is 0 (MXNet) ---------------------

def _mod_into(xp, a, b, out, req):
    """``a mod b`` into ``out``; ``b`` is an array (a scalar divisor is handled by callers)."""
    if req == "null":
        return
    zero = b == 0
    safe = xp.where(zero, 1, b)  # no division by zero (and no warning) in remainder
    if req == "add":
        value = xp.remainder(a, safe)
        xp.copyto(value, 0, where=zero)
        xp.add(out, value, out=out, casting="unsafe")
    else:
        xp.remainder(a, safe, out=out, casting="unsafe")
        xp.copyto(out, 0, where=zero)


def _mod(xp, attrs, inputs, outputs, req):
    _mod_into(xp, inputs[0], inputs[1], outputs[0], req[0])


def _mod_scalar(xp, attrs, inputs, outputs, req):
    r, out = req[0], outputs[0]
    if attrs.scalar == 0:
        if r != "add" and r != "null":
            out.fill(0)
    else:
        apply_ufunc(xp.remainder, (inputs[0], attrs.scalar), out, r)


def _rmod_scalar(xp, attrs, inputs, outputs, req):
    _mod_into(xp, attrs.scalar, inputs[0], outputs[0], req[0])


_binary("mod", None, aliases=("broadcast_mod", "_mod", "_Mod", "modulo"), forward=_mod,
        gradient=_mod_gradient, scalar_form="_mod_scalar", reflected_scalar_form="_rmod_scalar",
        operator="mod", operator_alias="_Mod",
        doc="Elementwise remainder of ``lhs / rhs`` with the sign of ``rhs`` (Python's %), "
            "0 where ``rhs`` is 0 (MXNet), with numpy broadcasting.")
_scalar("_mod_scalar", None, aliases=("_ModScalar",), forward=_mod_scalar,
        doc="``data % scalar`` (0 when scalar is 0).", gradient=_mod_scalar_gradient)
_scalar("_rmod_scalar", None, aliases=("_RModScalar",), forward=_rmod_scalar,
        doc="``scalar % data`` (0 where data is 0).",
        gradient=_rmod_scalar_gradient)


# -- power: integers computed in float64, as MXNet does -----------------------------

def _power(xp, attrs, inputs, outputs, req):
    a, b = inputs
    if outputs[0].dtype.kind in "iub":
        a = a.astype(np.float64)
    apply_ufunc(xp.power, (a, b), outputs[0], req[0])


_binary("power", None, aliases=("broadcast_power", "_power", "_Power", "pow"), forward=_power,
        gradient=_power_gradient, scalar_form="_power_scalar",
        reflected_scalar_form="_rpower_scalar", operator="pow", operator_alias="_Power",
        doc="Elementwise ``lhs ** rhs`` with numpy broadcasting.")
_scalar("_power_scalar", "power", aliases=("_PowerScalar",), doc="``data ** scalar``.",
        gradient=_power_scalar_gradient)
_scalar("_rpower_scalar", "power", reverse=True, aliases=("_RPowerScalar",),
        doc="``scalar ** data``.",
        gradient=_rpower_scalar_gradient)


# -- comparisons and logic: 1/0 in the input dtype, no gradient --------------------

for _name, _ufunc, _camel, _symbol, _operator, _mirrored in [
        ("equal", "equal", "_Equal", "==", "eq", "equal"),
        ("not_equal", "not_equal", "_Not_Equal", "!=", "ne", "not_equal"),
        ("greater", "greater", "_Greater", ">", "gt", "lesser"),
        ("greater_equal", "greater_equal", "_Greater_Equal", ">=", "ge", "lesser_equal"),
        ("lesser", "less", "_Lesser", "<", "lt", "greater"),
        ("lesser_equal", "less_equal", "_Lesser_Equal", "<=", "le", "greater_equal"),
]:
    # ``scalar > x`` is ``x < scalar``: the reflected form is the mirrored comparison
    _binary(_name, _ufunc, aliases=(f"broadcast_{_name}", f"_{_name}", _camel),
            differentiable=False, scalar_form=f"_{_name}_scalar",
            reflected_scalar_form=f"_{_mirrored}_scalar", operator=_operator,
            operator_alias=f"_{_name}",
            doc=f"1 where ``lhs {_symbol} rhs`` else 0, in the input dtype, with numpy "
                "broadcasting.")

for _name, _what in [("and", "both are"), ("or", "either is"), ("xor", "exactly one is")]:
    _binary(f"logical_{_name}", f"logical_{_name}",
            aliases=(f"broadcast_logical_{_name}", f"_logical_{_name}",
                     f"_Logical_{_name.capitalize()}"),
            differentiable=False, scalar_form=f"_logical_{_name}_scalar",
            doc=f"1 where {_what} nonzero else 0, in the input dtype, with numpy broadcasting.")

for _name, _ufunc, _camel, _symbol in [
        ("equal", "equal", "Equal", "=="), ("not_equal", "not_equal", "NotEqual", "!="),
        ("greater", "greater", "Greater", ">"),
        ("greater_equal", "greater_equal", "GreaterEqual", ">="),
        ("lesser", "less", "Lesser", "<"), ("lesser_equal", "less_equal", "LesserEqual", "<="),
        ("logical_and", "logical_and", "LogicalAnd", "and"),
        ("logical_or", "logical_or", "LogicalOr", "or"),
        ("logical_xor", "logical_xor", "LogicalXor", "xor"),
]:
    _scalar(f"_{_name}_scalar", _ufunc, aliases=(f"_{_camel}Scalar",), differentiable=False,
            operator_alias=f"_{_name}_scalar",
            doc=f"1 where ``data {_symbol} scalar`` else 0, in the input dtype.")


# -- where ------------------------------------------------------------------------------

def _where_shape(attrs, in_shapes):
    cond, x, y = in_shapes
    if x is not None and y is not None and tuple(x) != tuple(y):
        raise ShapeError(f"x has shape {tuple(x)} but y has {tuple(y)}; they must be equal",
                         argument="y", expected=tuple(x), actual=tuple(y))
    shape = x if x is not None else y
    if shape is None:
        if cond is None or len(cond) == 1:  # a 1-D condition does not fix x's rank
            return in_shapes, [None]
        shape = cond
    shape = tuple(shape)
    if cond is not None:
        cond = tuple(cond)
        if cond != shape and not (len(cond) == 1 and len(shape) >= 1 and cond[0] == shape[0]):
            raise ShapeError(f"condition has shape {cond} but must equal x's shape {shape} or be "
                             f"1-D of length x.shape[0]" +
                             (f" = {shape[0]}" if shape else " (x is 0-d)"),
                             argument="condition", expected=shape, actual=cond)
    return [cond, shape, shape], [shape]


def _where_type(attrs, in_dtypes):
    cond, x, y = in_dtypes
    if x is not None and y is not None and x != y:
        raise DTypeError(f"x has dtype {np.dtype(x).name} but y has {np.dtype(y).name}; "
                         "cast one with astype()", argument="y", expected=x, actual=y)
    dtype = x if x is not None else y
    return [cond, dtype, dtype], [dtype]


def _where(xp, attrs, inputs, outputs, req):
    cond, x, y = inputs
    r, out = req[0], outputs[0]
    if r == "null":
        return
    mask = cond if cond.dtype == np.bool_ else cond != 0
    if mask.ndim != x.ndim:  # 1-D condition selects whole rows
        mask = mask.reshape(mask.shape + (1,) * (x.ndim - 1))
    if r == "add":
        out += xp.where(mask, x, y)
    elif out is x:
        xp.copyto(out, y, where=~mask)
    else:
        if out is not y:
            xp.copyto(out, y)
        xp.copyto(out, x, where=mask)


def _where_gradient(F, node, ograds):
    g, cond = ograds[0], node.inputs[0]
    zeros = F.zeros_like(g)
    return [None, F.where(cond, g, zeros), F.where(cond, zeros, g)]


register(OpDef(
    "where", _where, inputs=("condition", "x", "y"), infer_shape=_where_shape,
    infer_type=_where_type, gradient=_where_gradient,
    doc="Elements of x where condition is nonzero, else of y. condition has x's shape, or is "
        "1-D of length x.shape[0] to choose whole rows (MXNet)."))
