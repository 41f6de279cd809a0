"""Converters for the elementwise layer types OpenCV's Caffe importer accepts beyond BVLC's.

OpenCV reads any layer type it implements from a prototxt (``Mish``,
``HardSigmoid``, ``Gelu``, ...), with its parameters taken from whatever
parameter block the layer carries. These become compositions of engine ops
with OpenCV's formulas; ``alpha``/``beta`` parameters are read from the
layer's (fork) parameter blocks, with OpenCV's defaults.
"""
import math

from deepkit_engine import symbol as sym

from .layers import register
from .shapes import CaffeRuleError

__all__ = ["FORMULAS", "fork_value"]

#: type -> what it computes (OpenCV's definition), for the supported-layer list.
FORMULAS = {
    "Mish": "x * tanh(softplus(x))",
    "HardSigmoid": "clip(alpha * x + beta, 0, 1) (alpha 0.2, beta 0.5)",
    "HardSwish": "x * clip(x / 6 + 0.5, 0, 1)",
    "Gelu": "0.5 * x * (1 + erf(x / sqrt(2)))",
    "Softplus": "log(1 + exp(x))",
    "Celu": "max(0, x) + min(0, alpha * (exp(x / alpha) - 1)) (alpha 1)",
    "Selu": "gamma * (x if x > 0 else alpha * (exp(x) - 1)) (SELU's constants)",
    "Sqrt": "sqrt", "Floor": "floor", "Ceil": "ceil", "Sin": "sin", "Cos": "cos",
    "Tan": "tan", "Sinh": "sinh", "Cosh": "cosh", "Erf": "erf", "Round": "round half to even",
    "Sign": "sign", "Reciprocal": "1 / x", "Softsign": "x / (1 + |x|)",
}

#: SELU's constants (OpenCV's defaults).
SELU_ALPHA = 1.67326319217681884765625
SELU_GAMMA = 1.05070102214813232421875


def fork_value(layer, key, default):
    """A parameter ``key`` from any of the layer's parameter blocks the reader skipped."""
    for uf in getattr(layer, "unknown_fields", []):
        if isinstance(uf.value, dict) and uf.value.get(key):
            return float(uf.value[key][-1])
    return default


def _x(cx):
    if len(cx.bottoms) != 1:
        raise CaffeRuleError(f"{cx.type} takes 1 bottom, got {len(cx.bottoms)}")
    return cx.bottoms[0], tuple(cx.bottom_shapes[0])


def _named(cx, fn):
    """A converter applying ``fn(x, cx)``; the last op must carry ``name=cx.node``."""
    def convert(cx):
        x, shape = _x(cx)
        return [(fn(x, cx), shape)]
    return convert


def _mish(x, cx):
    soft = sym.Activation(x, act_type="softrelu", name=cx.sub("softplus"))
    return sym.elemwise_mul(x, sym.tanh(soft, name=cx.sub("tanh")), name=cx.node, attr=cx.attr)


def _hard_sigmoid(x, cx):
    alpha = fork_value(cx.layer, "alpha", 0.2)
    beta = fork_value(cx.layer, "beta", 0.5)
    lin = sym.add(sym.multiply(x, alpha, name=cx.sub("scale")), beta, name=cx.sub("shift"))
    return sym.clip(lin, a_min=0.0, a_max=1.0, name=cx.node, attr=cx.attr)


def _hard_swish(x, cx):
    gate = sym.clip(sym.add(sym.multiply(x, 1.0 / 6.0, name=cx.sub("scale")), 0.5,
                            name=cx.sub("shift")), a_min=0.0, a_max=1.0, name=cx.sub("gate"))
    return sym.elemwise_mul(x, gate, name=cx.node, attr=cx.attr)


def _gelu(x, cx):
    e = sym.erf(sym.multiply(x, math.sqrt(0.5), name=cx.sub("scaled")), name=cx.sub("erf"))
    half = sym.multiply(sym.add(e, 1.0, name=cx.sub("one_plus")), 0.5, name=cx.sub("half"))
    return sym.elemwise_mul(x, half, name=cx.node, attr=cx.attr)


def _celu(x, cx):
    alpha = fork_value(cx.layer, "alpha", 1.0)
    if alpha == 0:
        raise CaffeRuleError("Celu's alpha must not be 0")
    pos = sym.relu(x, name=cx.sub("pos"))
    inner = sym.multiply(sym.expm1(sym.multiply(x, 1.0 / alpha, name=cx.sub("scaled")),
                                   name=cx.sub("expm1")), alpha, name=cx.sub("neg_all"))
    neg = sym.minimum(inner, 0.0, name=cx.sub("neg"))
    return sym.elemwise_add(pos, neg, name=cx.node, attr=cx.attr)


def _selu(x, cx):
    alpha = fork_value(cx.layer, "alpha", SELU_ALPHA)
    gamma = fork_value(cx.layer, "gamma", SELU_GAMMA)
    neg = sym.multiply(sym.expm1(sym.minimum(x, 0.0, name=cx.sub("clamped")),
                                 name=cx.sub("expm1")), alpha, name=cx.sub("neg"))
    both = sym.elemwise_add(sym.relu(x, name=cx.sub("pos")), neg, name=cx.sub("both"))
    return sym.multiply(both, gamma, name=cx.node, attr=cx.attr)


def _unary(op_name):
    def apply(x, cx):
        return getattr(sym, op_name)(x, name=cx.node, attr=cx.attr)
    return apply


_BUILDERS = {
    "Mish": _mish, "HardSigmoid": _hard_sigmoid, "HardSwish": _hard_swish, "Gelu": _gelu,
    "Softplus": lambda x, cx: sym.Activation(x, act_type="softrelu", name=cx.node, attr=cx.attr),
    "Celu": _celu, "Selu": _selu, "Sqrt": _unary("sqrt"), "Floor": _unary("floor"),
    "Ceil": _unary("ceil"), "Sin": _unary("sin"), "Cos": _unary("cos"), "Tan": _unary("tan"),
    "Sinh": _unary("sinh"), "Cosh": _unary("cosh"), "Erf": _unary("erf"),
    "Round": _unary("round"), "Sign": _unary("sign"), "Reciprocal": _unary("reciprocal"),
    "Softsign": _unary("softsign"),
}

for _type, _fn in _BUILDERS.items():
    register(_type, doc=FORMULAS[_type])(_named(None, _fn))
