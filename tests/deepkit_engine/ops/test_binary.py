"""Forward and gradient checks of the binary elementwise ops against numpy (float64)."""
import math

import numpy as np
import pytest

import deepkit_engine as dk
from deepkit_engine import autograd
from deepkit_engine import symbol as sym
from deepkit_engine.base import DTypeError, ParamError, ShapeError
from deepkit_engine.ops import canonical_ops, get_op
from deepkit_engine.testing import assert_almost_equal, check_symbolic_backward

from .op_cases import (BROADCAST_SHAPES, Const, Int, OpCase, forward_params, gradient_params,
                       run_forward, run_gradient)

nd = dk.nd

CASES = [OpCase("add", [a, b], np.add) for a, b in BROADCAST_SHAPES]
CASES += [OpCase("_plus_scalar", [s], lambda x, scalar: x + scalar, {"scalar": 2.5})
          for s in [(3, 4), (), (0, 2)]]


def _nonzero(shape, low=0.5, high=2.0):
    """Values of either sign with low <= |x| <= high (divisors)."""
    def make(rng, dtype):
        size = rng.uniform(low, high, size=shape)
        return np.asarray(size * rng.choice([-1.0, 1.0], size=shape)).astype(dtype)
    return make


def _small_ints(shape, low=-2, high=3):
    """Integer-valued floats, so that equal values and zeros occur."""
    def make(rng, dtype):
        return np.asarray(rng.integers(low, high, size=shape)).astype(dtype)
    return make


def _banded(shape, offset):
    """Floats in [k + offset, k + offset + 0.3] for integers k: values made with offsets 0
    and 0.5 are at least 0.2 apart (no ties of maximum/minimum)."""
    def make(rng, dtype):
        k = rng.integers(-2, 2, size=shape)
        return np.asarray(k + offset + rng.uniform(0, 0.3, size=shape)).astype(dtype)
    return make


def _mod_operands(lhs_shape, rhs_shape, seed=11):
    """``(lhs, rhs)`` makers with lhs / rhs at least 0.2 from an integer (mod's jumps)."""
    rhs = _nonzero(rhs_shape)(np.random.default_rng(seed), np.float64)

    def make_lhs(rng, dtype):
        shape = np.broadcast_shapes(lhs_shape, rhs_shape)
        k = rng.integers(-2, 2, size=shape)
        value = rhs * (k + rng.uniform(0.2, 0.8, size=shape))
        assert value.shape == tuple(lhs_shape)
        return value.astype(dtype)
    return make_lhs, lambda rng, dtype: rhs.astype(dtype)


def _magnitudes_avoiding(shape, points, low, high, margin=0.05):
    """Floats of either sign with |x| in [low, high], |x| at least ``margin`` from
    ``points``."""
    points = np.asarray(points, dtype=np.float64).reshape(-1)

    def make(rng, dtype):
        size = rng.uniform(low, high, size=shape)
        for _ in range(1000):
            bad = np.abs(np.reshape(size, (-1, 1)) - points).min(axis=1).reshape(shape) < margin
            if not bad.any():
                break
            size = np.where(bad, rng.uniform(low, high, size=shape), size)
        return np.asarray(size * rng.choice([-1.0, 1.0], size=shape)).astype(dtype)
    return make


def _ref_mod(a, b):
    """MXNet's mod: fmod, moved to the divisor's sign; 0 where b == 0."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    out = np.zeros(a.shape)
    for i in np.ndindex(a.shape):
        if b[i] != 0:
            r = np.fmod(a[i], b[i])
            out[i] = r + b[i] if r != 0 and (r < 0) != (b[i] < 0) else r
    return out


def _as01(fn):
    return lambda a, b: fn(a, b).astype(np.float64)


#: (op, reference, lhs maker, rhs maker); None means uniform in [low, high].
BINARY = [
    ("subtract", lambda a, b: a - b, None, None),
    ("multiply", lambda a, b: a * b, None, None),
    ("divide", lambda a, b: a / b, None, _nonzero),
    ("mod", _ref_mod, None, _nonzero),
    ("maximum", lambda a, b: np.where(a >= b, a, b), None, None),
    ("minimum", lambda a, b: np.where(a <= b, a, b), None, None),
    ("hypot", lambda a, b: np.sqrt(a * a + b * b), None, None),
    ("arctan2", np.arctan2, None, None),
    ("equal", _as01(lambda a, b: a == b), _small_ints, _small_ints),
    ("not_equal", _as01(lambda a, b: a != b), _small_ints, _small_ints),
    ("greater", _as01(lambda a, b: a > b), _small_ints, _small_ints),
    ("greater_equal", _as01(lambda a, b: a >= b), _small_ints, _small_ints),
    ("lesser", _as01(lambda a, b: a < b), _small_ints, _small_ints),
    ("lesser_equal", _as01(lambda a, b: a <= b), _small_ints, _small_ints),
    ("logical_and", _as01(lambda a, b: (a != 0) & (b != 0)), _small_ints, _small_ints),
    ("logical_or", _as01(lambda a, b: (a != 0) | (b != 0)), _small_ints, _small_ints),
    ("logical_xor", _as01(lambda a, b: (a != 0) ^ (b != 0)), _small_ints, _small_ints),
]

#: Ops whose gradients jump (ties, mod's wrap-around): checked on the "grad" cases below.
_JUMPS = {"mod", "maximum", "minimum"}
CASES += [OpCase(op, [lm(a) if lm else a, rm(b) if rm else b], ref, low=-3, high=3,
                 grad=op not in _JUMPS)
          for op, ref, lm, rm in BINARY for a, b in BROADCAST_SHAPES]
CASES += [OpCase(op, [_banded(a, 0.0), _banded(b, 0.5)], ref, name="grad")
          for op, ref in [("maximum", np.maximum), ("minimum", np.minimum)]
          for a, b in [((2, 3), (2, 3)), ((2, 3), (3,)), ((3, 1), (1, 4))]]
CASES += [OpCase(op, [_banded((2, 3), 0.5), _banded((2, 1), 0.0)], ref, name="grad-rhs")
          for op, ref in [("maximum", np.maximum), ("minimum", np.minimum)]]
CASES += [OpCase("mod", list(_mod_operands(a, b)), _ref_mod, name="grad")
          for a, b in [((2, 3), (2, 3)), ((2, 3), (1, 3)), ((3, 2), (2,))]]
CASES += [OpCase("power", [a, b], lambda x, y: np.exp(y * np.log(x)), low=0.1, high=2)
          for a, b in BROADCAST_SHAPES]
CASES += [OpCase("power", [Const([-2.0, -1.5, 3.0]), Const([2.0, 3.0, -1.0])],
                 lambda x, y: np.array([4.0, -3.375, 1 / 3]), name="negative-base", grad=False)]
CASES += [OpCase("mod", [Const([7.0, -7.0, 7.0, -7.0, 5.0, 0.0, -2.5]),
                         Const([3.0, 3.0, -3.0, -3.0, 0.0, 2.0, 1.0])],
                 lambda a, b: np.array([1.0, 2.0, -2.0, -1.0, 0.0, 0.0, 0.5]), name="signs",
                 grad=False)]
# Integer inputs: results in the input dtype, as MXNet.
CASES += [OpCase(op, [Int((3, 4), -6, 7, "int32"), Int((1, 4), 1, 4, "int32")], ref,
                 dtypes=("float32",), name="int", grad=False)
          for op, ref in [("subtract", np.subtract), ("multiply", np.multiply),
                          ("divide", lambda a, b: np.trunc(a / b)), ("mod", _ref_mod),
                          ("maximum", np.maximum), ("greater", np.greater),
                          ("power", lambda a, b: np.trunc(np.float64(a) ** b)),
                          ("logical_and", lambda a, b: (a != 0) & (b != 0))]]
CASES += [OpCase("power", [Const(np.array([2, -2, 3, 1, -1], "int64")),
                           Const(np.array([-1, -1, 0, -3, -3], "int64"))],
                 lambda a, b: np.array([0, 0, 1, 1, -1]), dtypes=("float32",),
                 name="int-negative-exponent", grad=False)]


def _cond(shape):
    return _small_ints(shape, 0, 3)


def _ref_where(c, a, b):
    return np.where(c.reshape(c.shape + (1,) * (a.ndim - c.ndim)) != 0, a, b)


# A float condition has no gradient but finite differences would step it across 0: the
# gradients are checked with integer conditions.
CASES += [OpCase("where", [_cond(c), x, x], _ref_where, grad=False)
          for c, x in [((3, 4), (3, 4)), ((3,), (3, 4)), ((), ()), ((0, 4), (0, 4)), ((0,), (0, 4)),
                       ((1,), (1,)), ((2,), (2, 1, 3)), ((2, 1, 3), (2, 1, 3))]]
CASES += [OpCase("where", [Int(c, 0, 3, "int32"), x, x], _ref_where, name="grad")
          for c, x in [((2, 3), (2, 3)), ((2,), (2, 1, 3)), ((0,), (0, 4)), ((3,), (3, 2))]]
CASES += [OpCase("where", [Int((3, 4), 0, 2, "int32"), (3, 4), (3, 4)],
                 lambda c, a, b: np.where(c != 0, a, b), name="int-condition", grad=False),
          OpCase("where", [Const(np.array([True, False])), (2, 3), (2, 3)],
                 lambda c, a, b: np.where(c[:, None], a, b), name="bool-condition")]

SCALAR_SHAPES = [(3, 4), (), (0, 2)]
#: (op, reference(x, s), scalars, data maker, low, high)
SCALAR = [
    ("_minus_scalar", lambda x, s: x - s, (2.5, -1.5), None, -2, 2),
    ("_rminus_scalar", lambda x, s: s - x, (2.5, -1.5), None, -2, 2),
    ("_mul_scalar", lambda x, s: x * s, (2.5, -1.5), None, -2, 2),
    ("_div_scalar", lambda x, s: x / s, (2.5, -1.5), None, -2, 2),
    ("_rdiv_scalar", lambda x, s: s / x, (2.5, -1.5), _nonzero, -2, 2),
    ("_mod_scalar", lambda x, s: _ref_mod(x, s), (2.5, -1.5, 0.0), None, -4, 4),
    ("_rmod_scalar", lambda x, s: _ref_mod(s, x), (2.5, -1.5), _nonzero, -4, 4),
    ("_power_scalar", lambda x, s: np.exp(s * np.log(x)), (2.5, -1.5), None, 0.1, 2),
    ("_rpower_scalar", lambda x, s: np.exp(x * np.log(s)), (2.5, 0.5), None, -2, 2),
    ("_maximum_scalar", lambda x, s: np.where(x > s, x, s), (0.5, -0.5), None, -2, 2),
    ("_minimum_scalar", lambda x, s: np.where(x < s, x, s), (0.5, -0.5), None, -2, 2),
    ("_hypot_scalar", lambda x, s: np.sqrt(x * x + s * s), (2.5, -1.5), None, -2, 2),
    ("_equal_scalar", lambda x, s: (x == s) * 1.0, (1.0, -1.0), _small_ints, 0, 0),
    ("_not_equal_scalar", lambda x, s: (x != s) * 1.0, (1.0, -1.0), _small_ints, 0, 0),
    ("_greater_scalar", lambda x, s: (x > s) * 1.0, (1.0, -1.0), _small_ints, 0, 0),
    ("_greater_equal_scalar", lambda x, s: (x >= s) * 1.0, (1.0, -1.0), _small_ints, 0, 0),
    ("_lesser_scalar", lambda x, s: (x < s) * 1.0, (1.0, -1.0), _small_ints, 0, 0),
    ("_lesser_equal_scalar", lambda x, s: (x <= s) * 1.0, (1.0, -1.0), _small_ints, 0, 0),
    ("_logical_and_scalar", lambda x, s: ((x != 0) & (s != 0)) * 1.0, (0.0, -1.5), _small_ints,
     0, 0),
    ("_logical_or_scalar", lambda x, s: ((x != 0) | (s != 0)) * 1.0, (0.0, -1.5), _small_ints,
     0, 0),
    ("_logical_xor_scalar", lambda x, s: ((x != 0) ^ (s != 0)) * 1.0, (0.0, -1.5), _small_ints,
     0, 0),
]
_SCALAR_JUMPS = {"_mod_scalar", "_rmod_scalar", "_maximum_scalar", "_minimum_scalar"}
CASES += [OpCase(op, [maker(s) if maker else s], lambda x, scalar, ref=ref: ref(x, scalar),
                 {"scalar": v}, low=lo, high=hi, grad=op not in _SCALAR_JUMPS)
          for op, ref, values, maker, lo, hi in SCALAR for v in values for s in SCALAR_SHAPES]
# Gradient cases away from the jumps: ties with the scalar, x / s or s / x integral.
_SCALAR_REFS = {op: ref for op, ref, *_ in SCALAR}
CASES += [OpCase(op, [_magnitudes_avoiding((2, 3), [abs(v)], 0, 2, margin=0.1)],
                 lambda x, scalar, ref=_SCALAR_REFS[op]: ref(x, scalar), {"scalar": v},
                 name="grad")
          for op in ("_maximum_scalar", "_minimum_scalar") for v in (0.5, -0.5, 0.0)]
CASES += [OpCase("_mod_scalar", [_magnitudes_avoiding((2, 3), [abs(v) * k for k in range(4)],
                                                      0, 4, margin=0.1)],
                 lambda x, scalar: _ref_mod(x, scalar), {"scalar": v}, name="grad")
          for v in (2.5, -1.5, 0.0)]
CASES += [OpCase("_rmod_scalar", [_magnitudes_avoiding((2, 3), [abs(v) / k for k in range(1, 7)],
                                                       0.4, 2, margin=0.03)],
                 lambda x, scalar: _ref_mod(scalar, x), {"scalar": v}, name="grad")
          for v in (2.5, -1.5)]
CASES += [OpCase("_power_scalar", [(2, 3)], lambda x, scalar: x ** scalar, {"scalar": v},
                 low=0.1, high=2, name="grad") for v in (0.0, 1.0, 3.0)]
CASES += [OpCase("_power_scalar", [(2, 3)], lambda x, scalar: x ** scalar, {"scalar": 2.0},
                 low=-2, high=2, name="negative-base")]


@pytest.mark.parametrize("case,dtype", forward_params(CASES))
def test_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)


@pytest.mark.parametrize("case", gradient_params(CASES))
def test_gradient(case, ctx):
    run_gradient(case, ctx)


ALIASES = {
    "subtract": ["broadcast_sub", "broadcast_minus", "elemwise_sub", "_sub", "_minus", "_Minus"],
    "multiply": ["broadcast_mul", "elemwise_mul", "_mul", "_Mul"],
    "divide": ["broadcast_div", "elemwise_div", "_div", "_Div"],
    "mod": ["broadcast_mod", "_mod", "_Mod"],
    "power": ["broadcast_power", "_power", "_Power"],
    "maximum": ["broadcast_maximum", "_maximum", "_Maximum"],
    "minimum": ["broadcast_minimum", "_minimum", "_Minimum"],
    "hypot": ["broadcast_hypot", "_hypot", "_Hypot"],
    "arctan2": ["_npi_arctan2"],
    "equal": ["broadcast_equal", "_equal", "_Equal"],
    "not_equal": ["broadcast_not_equal", "_not_equal", "_Not_Equal"],
    "greater": ["broadcast_greater", "_greater", "_Greater"],
    "greater_equal": ["broadcast_greater_equal", "_greater_equal", "_Greater_Equal"],
    "lesser": ["broadcast_lesser", "_lesser", "_Lesser"],
    "lesser_equal": ["broadcast_lesser_equal", "_lesser_equal", "_Lesser_Equal"],
    "logical_and": ["broadcast_logical_and", "_logical_and", "_Logical_And"],
    "logical_or": ["broadcast_logical_or", "_logical_or", "_Logical_Or"],
    "logical_xor": ["broadcast_logical_xor", "_logical_xor", "_Logical_Xor"],
    "_minus_scalar": ["_MinusScalar"], "_rminus_scalar": ["_RMinusScalar"],
    "_mul_scalar": ["_MulScalar"], "_div_scalar": ["_DivScalar"], "_rdiv_scalar": ["_RDivScalar"],
    "_mod_scalar": ["_ModScalar"], "_rmod_scalar": ["_RModScalar"],
    "_power_scalar": ["_PowerScalar"], "_rpower_scalar": ["_RPowerScalar"],
    "_maximum_scalar": ["_MaximumScalar"], "_minimum_scalar": ["_MinimumScalar"],
    "_hypot_scalar": ["_HypotScalar"], "_equal_scalar": ["_EqualScalar"],
    "_not_equal_scalar": ["_NotEqualScalar"], "_greater_scalar": ["_GreaterScalar"],
    "_greater_equal_scalar": ["_GreaterEqualScalar"], "_lesser_scalar": ["_LesserScalar"],
    "_lesser_equal_scalar": ["_LesserEqualScalar"], "_logical_and_scalar": ["_LogicalAndScalar"],
    "_logical_or_scalar": ["_LogicalOrScalar"], "_logical_xor_scalar": ["_LogicalXorScalar"],
}


def test_aliases_resolve_to_the_canonical_op():
    for name, aliases in ALIASES.items():
        assert get_op(name).name == name
        for alias in aliases:
            assert get_op(alias) is get_op(name), alias


def test_declared_scalar_forms_exist():
    declared = {name: (op.scalar_form, op.reflected_scalar_form)
                for name, op in canonical_ops().items() if op.scalar_form is not None}
    assert set(declared) >= {"add", "subtract", "multiply", "divide", "mod", "power", "maximum",
                             "minimum", "hypot", "equal", "not_equal", "greater",
                             "greater_equal", "lesser", "lesser_equal", "logical_and",
                             "logical_or", "logical_xor"}
    assert declared["subtract"] == ("_minus_scalar", "_rminus_scalar")
    assert declared["greater"] == ("_greater_scalar", "_lesser_scalar")
    for forward, reverse in declared.values():
        assert get_op(forward).params.keys() == {"scalar"}
        assert get_op(reverse).params.keys() == {"scalar"}


def test_differentiable_flags():
    for name in ("equal", "not_equal", "greater", "greater_equal", "lesser", "lesser_equal",
                 "logical_and", "logical_or", "logical_xor", "_equal_scalar", "_lesser_scalar",
                 "_logical_xor_scalar"):
        assert not get_op(name).differentiable, name
    for name in ("subtract", "mod", "power", "where", "_rpower_scalar", "_mod_scalar"):
        assert get_op(name).differentiable, name


# -- gradients ---------------------------------------------------------------------------

def _grads(fn, *values, create=True):
    """Per input: ``d/dv sum(d fn/d values[0])``, by autograd (second order)."""
    xs = [nd.array(v, dtype="float64") for v in values]
    for x in xs:
        x.attach_grad()
    with autograd.record():
        y = fn(*xs)
        g = autograd.grad(y, xs[0], create_graph=create)
    g.backward()
    return g.asnumpy(), [x.grad.asnumpy() for x in xs]


_V = np.array([[0.5, 1.25, 2.0], [0.75, 1.5, 0.3]])
_C = np.array([[1.5, -0.5, 2.5], [0.8, 3.0, -1.2]])

#: (name, function of (x, c NDArray), analytic d2/dx2 at (x, c))
SECOND_ORDER = [
    ("multiply-x*x", lambda x, c: x * x, lambda x, c: np.full_like(x, 2.0)),
    ("divide-c/x", lambda x, c: c / x, lambda x, c: 2 * c / x ** 3),
    ("divide-x/(x+c)", lambda x, c: x / (x + nd.abs(c)),
     lambda x, c: -2 * np.abs(c) / (x + np.abs(c)) ** 3),
    ("power-x**c", lambda x, c: nd.power(x, c), lambda x, c: c * (c - 1) * x ** (c - 2)),
    ("power-c**x", lambda x, c: nd.power(nd.abs(c), x),
     lambda x, c: np.abs(c) ** x * np.log(np.abs(c)) ** 2),
    ("power-x**x", lambda x, c: nd.power(x, x),
     lambda x, c: x ** x * ((np.log(x) + 1) ** 2 + 1 / x)),
    ("subtract", lambda x, c: nd.square(c - x) - x, lambda x, c: np.full_like(x, 2.0)),
    ("add", lambda x, c: nd.exp(x + c), lambda x, c: np.exp(x + c)),
    ("hypot", lambda x, c: nd.hypot(x, c), lambda x, c: c * c / (x * x + c * c) ** 1.5),
    ("arctan2", lambda x, c: nd.arctan2(x, c), lambda x, c: -2 * x * c / (x * x + c * c) ** 2),
    ("arctan2-rhs", lambda x, c: nd.arctan2(c, x), lambda x, c: 2 * x * c / (x * x + c * c) ** 2),
    ("maximum", lambda x, c: nd.maximum(x * x, c), lambda x, c: np.where(x * x >= c, 2.0, 0.0)),
    ("minimum", lambda x, c: nd.minimum(c, x * x), lambda x, c: np.where(c <= x * x, 0.0, 2.0)),
    ("mod", lambda x, c: nd.mod(x * x, nd.abs(c)), lambda x, c: np.full_like(x, 2.0)),
    ("where", lambda x, c: nd.where(c > 0, x * x * x, x),
     lambda x, c: np.where(c > 0, 6 * x, 0.0)),
    ("_power_scalar", lambda x, c: x ** 3, lambda x, c: 6 * x),
    ("_power_scalar-0", lambda x, c: x ** 0 + x * x, lambda x, c: np.full_like(x, 2.0)),
    ("_rpower_scalar", lambda x, c: 2 ** x, lambda x, c: 2 ** x * np.log(2) ** 2),
    ("_rdiv_scalar", lambda x, c: 3 / x, lambda x, c: 6 / x ** 3),
    ("_div_scalar", lambda x, c: nd.square(x) / 4, lambda x, c: np.full_like(x, 0.5)),
    ("_mul_scalar", lambda x, c: nd.square(x * 3), lambda x, c: np.full_like(x, 18.0)),
    ("_plus_minus_scalar", lambda x, c: nd.square(2 - (x + 1) - 0.5),
     lambda x, c: np.full_like(x, 2.0)),
    ("_hypot_scalar", lambda x, c: nd._hypot_scalar(x, scalar=1.5),
     lambda x, c: 2.25 / (x * x + 2.25) ** 1.5),
    ("_maximum_scalar", lambda x, c: nd.maximum(x * x, 1.0),
     lambda x, c: np.where(x * x >= 1, 2.0, 0.0)),
    ("_minimum_scalar", lambda x, c: nd.minimum(x * x, 1.0),
     lambda x, c: np.where(x * x <= 1, 2.0, 0.0)),
    ("_mod_scalar", lambda x, c: (x * x) % 0.7, lambda x, c: np.full_like(x, 2.0)),
    ("_rmod_scalar", lambda x, c: 7.0 % (x * x),
     lambda x, c: -2 * np.floor(7 / (x * x))),
]


@pytest.mark.parametrize("name,fn,expected", SECOND_ORDER, ids=[t[0] for t in SECOND_ORDER])
def test_second_order(name, fn, expected):
    c = nd.array(_C, dtype="float64")
    _, (second,) = _grads(lambda x: fn(x, c), _V)
    assert_almost_equal(second, expected(_V, _C), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("shape", [
    (1, 3),
    (3,),
])
def test_second_order_through_broadcasting(shape):
    """x broadcast against c (2, 3): the un-broadcast sum is differentiated too."""
    x = np.array([0.5, -1.0, 2.0]).reshape(shape)
    c = nd.array(_C, dtype="float64")
    first, (second,) = _grads(lambda x: nd.square(x) * c, x)
    assert_almost_equal(first, (2 * x * _C).sum(axis=0).reshape(shape))
    assert_almost_equal(second, 2 * _C.sum(axis=0).reshape(shape))
    first, (second,) = _grads(lambda x: nd.exp(c + x), x)
    assert_almost_equal(first, np.exp(_C + x).sum(axis=0).reshape(shape))
    assert_almost_equal(second, np.exp(_C + x).sum(axis=0).reshape(shape))


def test_mixed_second_order():
    """d/dy (d/dx f) for f = x * y, x / y, x ** y, with y broadcast along axis 0."""
    y = np.array([0.5, 1.5, 2.5])
    cases = [
        (nd.multiply, lambda x, y: np.ones_like(x)),
        (nd.divide, lambda x, y: -1 / np.broadcast_to(y, x.shape) ** 2),
        (nd.power, lambda x, y: x ** (y - 1) * (1 + y * np.log(x))),
    ]
    for fn, mixed in cases:
        first, (gx, gy) = _grads(fn, _V, y)
        assert_almost_equal(gy, mixed(_V, y).sum(axis=0), rtol=1e-6)
        assert gx.shape == _V.shape


def test_unbroadcast_gradients(ctx):
    """Gradients of broadcasting ops are summed down to each input's shape."""
    a, b = sym.Variable("a"), sym.Variable("b")
    av = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    bv = np.array([[0.5], [2.0]])
    og = np.array([[1.0, -1.0, 2.0], [0.5, 3.0, -2.0]])
    checks = [
        (a + b, og, og.sum(axis=1, keepdims=True)),
        (a - b, og, -og.sum(axis=1, keepdims=True)),
        (a * b, og * bv, (og * av).sum(axis=1, keepdims=True)),
        (a / b, og / bv, (-og * av / bv ** 2).sum(axis=1, keepdims=True)),
        (sym.maximum(a, b * 4), og * (av >= bv * 4), np.zeros((2, 1))),
    ]
    for net, ga, gb in checks:
        if net is checks[-1][0]:
            gb = (og * (av < bv * 4) * 4).sum(axis=1, keepdims=True)
        check_symbolic_backward(net, {"a": av, "b": bv}, [og], {"a": ga, "b": gb}, ctx=ctx,
                                dtype=np.float64)
    scalar = sym.Variable("s")
    check_symbolic_backward(a * scalar, {"a": av, "s": np.array(2.0)}, [og],
                            {"a": og * 2.0, "s": np.array((og * av).sum())}, ctx=ctx,
                            dtype=np.float64)


def test_maximum_minimum_ties_go_to_lhs(ctx):
    """As MXNet: on ties maximum and minimum give the whole gradient to lhs."""
    a, b = sym.Variable("a"), sym.Variable("b")
    av = np.array([1.0, 2.0, 3.0])
    bv = np.array([1.0, 0.0, 5.0])
    og = np.array([2.0, 3.0, 4.0])
    check_symbolic_backward(sym.maximum(a, b), {"a": av, "b": bv}, [og],
                            {"a": [2.0, 3.0, 0.0], "b": [0.0, 0.0, 4.0]}, ctx=ctx,
                            dtype=np.float64)
    check_symbolic_backward(sym.minimum(a, b), {"a": av, "b": bv}, [og],
                            {"a": [2.0, 0.0, 4.0], "b": [0.0, 3.0, 0.0]}, ctx=ctx,
                            dtype=np.float64)
    check_symbolic_backward(sym._maximum_scalar(a, scalar=2.0), {"a": av}, [og],
                            {"a": [0.0, 3.0, 4.0]}, ctx=ctx, dtype=np.float64)
    check_symbolic_backward(sym._minimum_scalar(a, scalar=2.0), {"a": av}, [og],
                            {"a": [2.0, 3.0, 0.0]}, ctx=ctx, dtype=np.float64)


def test_mod_gradients(ctx):
    """MXNet: d/dlhs = 1, d/drhs = -floor(lhs / rhs); x % 0 is constant 0."""
    a, b = sym.Variable("a"), sym.Variable("b")
    av = np.array([7.0, -7.0, 7.5, 1.0])
    bv = np.array([3.0, 3.0, -2.0, 4.0])
    og = np.array([1.0, 2.0, 3.0, 4.0])
    check_symbolic_backward(sym.mod(a, b), {"a": av, "b": bv}, [og],
                            {"a": og, "b": -og * np.floor(av / bv)}, ctx=ctx, dtype=np.float64)
    check_symbolic_backward(a % 0, {"a": av}, [og], {"a": np.zeros(4)}, ctx=ctx,
                            dtype=np.float64)
    check_symbolic_backward(a % 2.5, {"a": av}, [og], {"a": og}, ctx=ctx, dtype=np.float64)
    check_symbolic_backward(10.0 % b, {"b": bv}, [og], {"b": -og * np.floor(10.0 / bv)},
                            ctx=ctx, dtype=np.float64)


def test_power_gradient_at_zero_base(ctx):
    """d/dx x**2 is finite (0) at x = 0: rhs * x**(rhs - 1), not rhs * out / x."""
    a, b = sym.Variable("a"), sym.Variable("b")
    av = np.array([0.0, 1.5, 2.0])
    check_symbolic_backward(sym.power(a, b), {"a": av, "b": np.array([2.0, 3.0, 1.0])},
                            [np.ones(3)], {"a": [0.0, 6.75, 1.0]}, grad_nodes=["a"], ctx=ctx,
                            dtype=np.float64)
    check_symbolic_backward(a ** 2, {"a": av}, [np.ones(3)], {"a": 2 * av}, ctx=ctx,
                            dtype=np.float64)
    check_symbolic_backward(a ** 0, {"a": av}, [np.ones(3)], {"a": np.zeros(3)}, ctx=ctx,
                            dtype=np.float64)
    check_symbolic_backward(2.0 ** a, {"a": av}, [np.ones(3)],
                            {"a": 2.0 ** av * math.log(2.0)}, ctx=ctx, dtype=np.float64)


def test_where_gradient_rows(ctx):
    cond, x, y = sym.Variable("c"), sym.Variable("x"), sym.Variable("y")
    xv = np.arange(6.0).reshape(2, 3)
    og = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    check_symbolic_backward(sym.where(cond, x, y), {"c": np.array([0.0, 2.0]), "x": xv,
                                                    "y": -xv},
                            [og], {"x": og * [[0], [1]], "y": og * [[1], [0]]},
                            grad_nodes=["x", "y"], ctx=ctx, dtype=np.float64)


def test_gradient_declarations():
    for name in ("add", "subtract", "multiply", "divide", "mod", "power", "maximum", "minimum",
                 "hypot", "arctan2"):
        op = get_op(name)
        assert op.unbroadcast and op.gradient is not None, name
    for name in ("_plus_scalar", "_minus_scalar", "_rminus_scalar", "_mul_scalar", "_div_scalar",
                 "_rdiv_scalar", "_mod_scalar", "_rmod_scalar", "_power_scalar",
                 "_rpower_scalar", "_maximum_scalar", "_minimum_scalar", "_hypot_scalar",
                 "where"):
        op = get_op(name)
        assert not op.unbroadcast and op.gradient is not None, name
    for name in ("equal", "lesser", "logical_xor", "_greater_scalar"):
        assert get_op(name).gradient is None and not get_op(name).unbroadcast


# -- MXNet semantics ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
def test_comparisons_return_the_input_dtype(dtype, ctx):
    a = nd.array([1, 2, 3], ctx=ctx, dtype=dtype)
    b = nd.array([3, 2, 1], ctx=ctx, dtype=dtype)
    for result, expected in [(a == b, [0, 1, 0]), (a != b, [1, 0, 1]), (a > b, [0, 0, 1]),
                             (a >= b, [0, 1, 1]), (a < b, [1, 0, 0]), (a <= b, [1, 1, 0]),
                             (a == 2, [0, 1, 0]), (2 < a, [0, 0, 1]), (2 >= a, [1, 1, 0]),
                             (nd.logical_xor(a > 1, b > 1), [1, 0, 1]),
                             (nd._logical_and_scalar(a - 1, scalar=1), [0, 1, 1])]:
        assert result.dtype == np.dtype(dtype)
        assert result.asnumpy().tolist() == expected


def test_mod_by_zero_is_zero(ctx):
    a = nd.array([5.0, -3.0, 0.0], ctx=ctx)
    assert (a % 0).asnumpy().tolist() == [0, 0, 0]
    assert (7 % nd.array([0.0, 2.0, -2.0], ctx=ctx)).asnumpy().tolist() == [0, 1, -1]
    b = nd.array([0.0, 2.0, -2.0], ctx=ctx)
    assert nd.mod(nd.array([[5.0], [-5.0]], ctx=ctx), b).asnumpy().tolist() == [[0, 1, -1],
                                                                                 [0, 1, -1]]
    i = nd.array([7, -7, 7], ctx=ctx, dtype="int32")
    assert nd.mod(i, nd.array([0, 3, -3], ctx=ctx, dtype="int32")).asnumpy().tolist() == [0, 2, -2]


@pytest.mark.parametrize("op,args", [
    ("mod", [np.array([[5.0, -5.0], [7.5, 1.0]]), np.array([0.0, -2.0])]),
    ("power", [np.array([[2.0, 3.0]]), np.array([[2.0], [0.5]])]),
    ("subtract", [np.array([1.0, 2.0]), np.array([[3.0], [4.0]])]),
    ("lesser", [np.array([1.0, 2.0]), np.array([2.0, 2.0])]),
])
@pytest.mark.parametrize("req", ["add", "null", "inplace"])
def test_binary_kernel_requests(op, args, req):
    opdef = get_op(op)
    shape = np.broadcast_shapes(*(a.shape for a in args))
    expected = np.empty(shape)
    opdef.forward_cpu(np, opdef.default_attrs, [a.copy() for a in args], [expected], ["write"])
    if req == "inplace":
        for i, a in enumerate(args):
            if a.shape == shape:
                ins = [x.copy() for x in args]
                opdef.forward_cpu(np, opdef.default_attrs, ins, [ins[i]], ["inplace"])
                assert_almost_equal(ins[i], expected)
    else:
        out = np.full(shape, 0.5)
        opdef.forward_cpu(np, opdef.default_attrs, args, [out], [req])
        assert_almost_equal(out, expected + 0.5 if req == "add" else np.full(shape, 0.5))


@pytest.mark.parametrize("op,scalar", [("_mod_scalar", 0.0), ("_mod_scalar", 2.0),
                                       ("_rmod_scalar", 3.0), ("_rpower_scalar", 2.0),
                                       ("_greater_scalar", 0.0)])
@pytest.mark.parametrize("req", ["add", "inplace"])
def test_scalar_kernel_requests(op, scalar, req):
    opdef = get_op(op)
    attrs = opdef.parse_attrs({"scalar": scalar})
    x = np.array([[-2.5, 0.0, 1.0], [3.0, -1.0, 2.0]])
    expected = np.empty_like(x)
    opdef.forward_cpu(np, attrs, [x.copy()], [expected], ["write"])
    if req == "inplace":
        buf = x.copy()
        opdef.forward_cpu(np, attrs, [buf], [buf], ["inplace"])
        assert_almost_equal(buf, expected)
    else:
        out = np.ones_like(x)
        opdef.forward_cpu(np, attrs, [x], [out], ["add"])
        assert_almost_equal(out, expected + 1)


@pytest.mark.parametrize("req", ["add", "null", "inplace"])
def test_where_requests(req):
    op = get_op("where")
    cond, x, y = np.array([1.0, 0.0, 2.0]), np.array([1.0, 2.0, 3.0]), np.array([7.0, 8.0, 9.0])
    if req == "inplace":  # output buffer shared with x, then with y
        for i in (1, 2):
            ins = [cond, x.copy(), y.copy()]
            op.forward_cpu(np, op.default_attrs, ins, [ins[i]], ["write"])
            assert ins[i].tolist() == [1.0, 8.0, 3.0]
    else:
        out = np.full(3, 0.5)
        op.forward_cpu(np, op.default_attrs, [cond, x, y], [out], [req])
        assert out.tolist() == ([1.5, 8.5, 3.5] if req == "add" else [0.5] * 3)


# -- NDArray operators -------------------------------------------------------------------

def test_ndarray_operators(ctx):
    an = np.array([[0.5, -1.5, 2.0], [3.0, 1.0, -0.25]])
    bn = np.array([1.0, -1.5, 0.5])
    a = nd.array(an, ctx=ctx, dtype="float64")
    b = nd.array(bn, ctx=ctx, dtype="float64")
    checks = [
        (a + b, an + bn), (a - b, an - bn), (a * b, an * bn), (a / b, an / bn),
        (a - 2, an - 2), (2 - a, 2 - an), (a * 2, an * 2), (2 * a, 2 * an), (a + 1, an + 1),
        (1 + a, 1 + an), (a / 4, an / 4), (2 / a, 2 / an), (a ** 2, an ** 2),
        (2 ** a, 2 ** an), (abs(a) ** 0.5, np.abs(an) ** 0.5), (a % 3, an % 3),
        (a % b, an % bn), (3 % b, 3 % bn), (abs(a) ** b, np.abs(an) ** bn),
        ((a == b), (an == bn) * 1.0), ((a != b), (an != bn) * 1.0), ((a < 1), (an < 1) * 1.0),
        ((a <= 1), (an <= 1) * 1.0), ((a > b), (an > bn) * 1.0), ((a >= 2), (an >= 2) * 1.0),
        (-a, -an), (abs(a), np.abs(an)), (a + bn, an + bn), (bn - a, bn - an),
    ]
    for got, expected in checks:
        assert got.dtype == np.float64
        assert_almost_equal(got, expected)


def test_inplace_operators_keep_the_object(ctx):
    an = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float32)
    a = nd.array(an, ctx=ctx)
    b = nd.array([10.0, 20.0, 30.0], ctx=ctx)
    original = a
    a += b
    assert a is original
    assert_almost_equal(a, an + [10.0, 20.0, 30.0])
    a *= 2
    assert a is original
    assert_almost_equal(a, (an + [10.0, 20.0, 30.0]) * 2)
    a -= 1
    a /= b
    assert a is original
    assert_almost_equal(a, ((an + [10.0, 20.0, 30.0]) * 2 - 1) / [10.0, 20.0, 30.0])
    c = nd.array([5.0, 7.0], ctx=ctx)
    c %= 3
    c **= 2
    assert c.asnumpy().tolist() == [4.0, 1.0]
    with pytest.raises(ShapeError, match=r"add: output 0 has shape \(2, 3\) but out= has shape "
                                         r"\(3,\)"):
        b += a  # the result would not fit in b
    assert b.asnumpy().tolist() == [10.0, 20.0, 30.0]


def test_generated_functions_accept_scalars(ctx):
    a = nd.array([1.0, 2.0], ctx=ctx)
    assert nd.subtract(a, 1).asnumpy().tolist() == [0.0, 1.0]
    assert nd.subtract(3, a).asnumpy().tolist() == [2.0, 1.0]
    assert nd.power(2, a).asnumpy().tolist() == [2.0, 4.0]
    assert nd.broadcast_maximum(a, 1.5).asnumpy().tolist() == [1.5, 2.0]
    assert nd._rminus_scalar(a, scalar=5).asnumpy().tolist() == [4.0, 3.0]
    assert nd._RDivScalar(a, scalar=4).asnumpy().tolist() == [4.0, 2.0]


# -- errors ------------------------------------------------------------------------------

def test_non_broadcastable_shapes():
    a, b = nd.ones((3, 4)), nd.ones((2, 4))
    for call, name in [(lambda: nd.subtract(a, b), "subtract"), (lambda: a * b, "multiply"),
                       (lambda: nd.broadcast_div(a, b), "divide"), (lambda: a == b, "equal"),
                       (lambda: nd.mod(a, b), "mod"), (lambda: nd.hypot(a, b), "hypot"),
                       (lambda: nd.logical_or(a, b), "logical_or")]:
        with pytest.raises(ShapeError) as err:
            call()
        message = str(err.value)
        assert message.startswith(f"{name}: operand shapes (3, 4) and (2, 4) cannot be "
                                  "broadcast together"), message
        assert "lhs=(3, 4) float32, rhs=(2, 4) float32" in message
        assert err.value.op == name


def test_mixed_dtypes():
    a, b = nd.ones((2, 2)), nd.ones((2, 2), dtype="float64")
    with pytest.raises(DTypeError, match=r"^multiply: input 1 has dtype float64 but input 0 has "
                                         r"float32; cast one with astype\(\)") as err:
        nd.multiply(a, b)
    assert "lhs=(2, 2) float32, rhs=(2, 2) float64" in str(err.value)
    with pytest.raises(DTypeError, match=r"^greater: input 1 has dtype float64"):
        a > b
    with pytest.raises(DTypeError, match=r"^power: "):
        nd.power(nd.ones(2, dtype="int32"), nd.ones(2))


def test_scalar_param_errors():
    with pytest.raises(ParamError, match=r"_mul_scalar: param scalar='two' is not a valid float"):
        nd._mul_scalar(nd.ones(2), scalar="two")
    with pytest.raises(ParamError, match=r"_minus_scalar: unknown param 'scalr'"):
        nd._minus_scalar(nd.ones(2), scalr=1)


def test_where_errors():
    x = nd.ones((3, 4))
    with pytest.raises(ShapeError, match=r"^where: condition has shape \(4,\) but must equal x's "
                                         r"shape \(3, 4\) or be 1-D of length x.shape\[0\] = 3"):
        nd.where(nd.ones(4), x, x)
    with pytest.raises(ShapeError, match=r"^where: condition has shape \(4, 3\)"):
        nd.where(nd.ones((4, 3)), x, x)
    with pytest.raises(ShapeError, match=r"^where: x has shape \(3, 4\) but y has \(3, 1\)"):
        nd.where(nd.ones((3, 4)), x, nd.ones((3, 1)))
    with pytest.raises(ShapeError, match=r"x is 0-d"):
        nd.where(nd.ones(1), nd.ones(()), nd.ones(()))
    with pytest.raises(DTypeError, match=r"^where: x has dtype float32 but y has float64"):
        nd.where(nd.ones((3, 4)), x, nd.ones((3, 4), dtype="float64"))


def test_where_shape_inference_with_unknowns():
    infer = get_op("where").infer_shape
    assert infer(None, [None, (2, 3), None]) == ([None, (2, 3), (2, 3)], [(2, 3)])
    assert infer(None, [(2, 3), None, None]) == ([(2, 3), (2, 3), (2, 3)], [(2, 3)])
    assert infer(None, [(2,), None, None]) == ([(2,), None, None], [None])
    assert infer(None, [(2,), None, (2, 5)]) == ([(2,), (2, 5), (2, 5)], [(2, 5)])
