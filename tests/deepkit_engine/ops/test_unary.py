"""Forward and gradient checks of the unary elementwise ops, clip, cast, identity, *_like
and add_n."""
import math
import warnings

import numpy as np
import pytest

import deepkit_engine as dk
from deepkit_engine import autograd
from deepkit_engine import symbol as sym
from deepkit_engine.base import DTypeError, ParamError, ShapeError
from deepkit_engine.ops import get_op, unary
from deepkit_engine.ops.registry import Attrs
from deepkit_engine.testing import assert_almost_equal, check_symbolic_backward

from .op_cases import (ELEMWISE_SHAPES, Const, Int, OpCase, forward_params, gradient_params,
                       run_forward, run_gradient)

nd = dk.nd


def _vec(fn):
    """A float64 reference applying the scalar function ``fn`` to every element."""
    return lambda x, **_: np.vectorize(fn, otypes=[np.float64])(x)


def _erfinv_bisect(v):
    """erfinv by bisection on math.erf: slow but independent of the kernels."""
    if v == 1.0 or v == -1.0:
        return math.copysign(math.inf, v)
    lo, hi = -6.0, 6.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if math.erf(mid) < v:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-17 * max(1.0, abs(mid)):
            break
    return 0.5 * (lo + hi)


def _round_away(v):
    t = math.trunc(v)  # v - t is exact, unlike floor(|v| + 0.5)
    return math.copysign(t + (math.copysign(1, v) if abs(v - t) >= 0.5 else 0), v)


def _rint_mxnet(v):
    f, c = math.floor(v), math.ceil(v)
    return float(f) if v - f <= c - v else float(c)


def _small_ints(shape, low=-1, high=2):
    """Integer-valued floats (so that zeros occur)."""
    def make(rng, dtype):
        return np.asarray(rng.integers(low, high, size=shape)).astype(dtype)
    return make


def _avoiding(shape, points, low, high, margin=0.1):
    """Uniform floats in [low, high] at least ``margin`` away from every one of ``points``
    (kinks and jumps, where finite differences are meaningless)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1)

    def make(rng, dtype):
        x = rng.uniform(low, high, size=shape)
        for _ in range(1000):
            bad = np.abs(np.reshape(x, (-1, 1)) - points).min(axis=1).reshape(np.shape(x)) < margin
            if not bad.any():
                return np.asarray(x).astype(dtype)
            x = np.where(bad, rng.uniform(low, high, size=shape), x)
        raise AssertionError("no values away from the kinks")
    return make


def _polygamma(x, n=0):
    special = pytest.importorskip("scipy.special")
    return special.polygamma(n, x)


#: (op, reference, low, high): every plain elementwise unary op.
UNARY = [
    ("abs", np.abs, -2, 2),
    ("sign", np.sign, -2, 2),
    ("negative", lambda x: -x, -2, 2),
    ("exp", np.exp, -2, 2),
    ("expm1", lambda x: np.exp(x) - 1, -1, 1),
    ("log", np.log, 0.1, 2),
    ("log1p", lambda x: np.log(1 + x), -0.5, 2),
    ("log2", lambda x: np.log(x) / np.log(2), 0.1, 2),
    ("log10", lambda x: np.log(x) / np.log(10), 0.1, 2),
    ("sqrt", np.sqrt, 0.0, 2),
    ("rsqrt", lambda x: 1 / np.sqrt(x), 0.1, 2),
    ("cbrt", lambda x: np.sign(x) * np.abs(x) ** (1 / 3), -2, 2),
    ("rcbrt", lambda x: 1 / (np.sign(x) * np.abs(x) ** (1 / 3)), 0.2, 2),
    ("square", lambda x: x * x, -2, 2),
    ("reciprocal", lambda x: 1 / x, 0.2, 2),
    ("sin", np.sin, -3, 3),
    ("cos", np.cos, -3, 3),
    ("tan", np.tan, -1.2, 1.2),
    ("arcsin", np.arcsin, -0.9, 0.9),
    ("arccos", np.arccos, -0.9, 0.9),
    ("arctan", np.arctan, -3, 3),
    ("sinh", np.sinh, -2, 2),
    ("cosh", np.cosh, -2, 2),
    ("tanh", np.tanh, -2, 2),
    ("arcsinh", lambda x: np.log(x + np.sqrt(x * x + 1)), -2, 2),
    ("arccosh", lambda x: np.log(x + np.sqrt(x * x - 1)), 1.1, 3),
    ("arctanh", lambda x: 0.5 * np.log((1 + x) / (1 - x)), -0.9, 0.9),
    ("sigmoid", lambda x: 1 / (1 + np.exp(-x)), -6, 6),
    ("relu", lambda x: np.where(x > 0, x, 0.0), -2, 2),
    ("softsign", lambda x: x / (1 + np.abs(x)), -3, 3),
    ("erf", _vec(math.erf), -2, 2),
    ("erfinv", _vec(_erfinv_bisect), -0.95, 0.95),
    ("gamma", _vec(math.gamma), 0.1, 4),
    ("gammaln", _vec(math.lgamma), 0.1, 6),
    ("floor", np.floor, -3, 3),
    ("ceil", np.ceil, -3, 3),
    ("round", _vec(_round_away), -3, 3),
    ("rint", _vec(_rint_mxnet), -3, 3),
    ("trunc", lambda x: np.sign(x) * np.floor(np.abs(x)), -3, 3),
    ("fix", lambda x: np.sign(x) * np.floor(np.abs(x)), -3, 3),
    ("degrees", lambda x: x * 180 / np.pi, -3, 3),
    ("radians", lambda x: x * np.pi / 180, -200, 200),
]

# The gradients are checked by the dedicated small cases below (GRAD_INPUTS).
CASES = [OpCase(op, [s], ref, low=lo, high=hi, grad=False) for op, ref, lo, hi in UNARY
         for s in ELEMWISE_SHAPES]
#: Gradient-check inputs away from kinks, jumps and singular derivatives; other ops use
#: their forward range.
_HALVES = np.arange(-4, 4.5, 0.5)
GRAD_INPUTS = {
    "abs": _avoiding((2, 3), [0], -2, 2),
    "sign": _avoiding((2, 3), [0], -2, 2),
    "relu": _avoiding((2, 3), [0], -2, 2),
    "softsign": _avoiding((2, 3), [0], -3, 3),
    "cbrt": _avoiding((2, 3), [0], -2, 2, margin=0.2),
    "sqrt": _avoiding((2, 3), [0], 0, 2, margin=0.2),
    "floor": _avoiding((2, 3), _HALVES, -3, 3),
    "ceil": _avoiding((2, 3), _HALVES, -3, 3),
    "round": _avoiding((2, 3), _HALVES, -3, 3),
    "rint": _avoiding((2, 3), _HALVES, -3, 3),
    "trunc": _avoiding((2, 3), _HALVES, -3, 3),
    "fix": _avoiding((2, 3), _HALVES, -3, 3),
}
CASES += [OpCase(op, [GRAD_INPUTS.get(op, (2, 3))], ref, low=lo, high=hi, name="grad")
          for op, ref, lo, hi in UNARY]
# gamma and gammaln on the negative axis, between the poles.
CASES += [OpCase(op, [(2, 2)], _vec(ref), low=-2.9, high=-2.1, name="negative")
          for op, ref in [("gamma", math.gamma), ("gammaln", math.lgamma)]]
# _psi: polygamma, for the gradients of gamma and gammaln (and of itself).
CASES += [OpCase("_psi", [(2, 3)], _polygamma, {"n": n}, low=0.2, high=5) for n in (0, 1, 2)]
CASES += [OpCase("_psi", [s], _polygamma, low=-2.9, high=-2.1, grad=False)
          for s in [(), (0, 3)]]
CASES += [OpCase("logical_not", [_small_ints(s)], lambda x: (x == 0).astype(np.float64))
          for s in ELEMWISE_SHAPES]
# MXNet's rounding of halves, and values where floor(|x| + 0.5) would be wrong.
TIES = [-3.5, -2.5, -1.5, -0.5, -0.0, 0.5, 1.5, 2.5, 3.5, 0.49999997, 1.4999999]
CASES += [OpCase(op, [Const(TIES)], _vec(ref), name="ties", grad=False)
          for op, ref in [("round", _round_away), ("rint", _rint_mxnet)]]
CASES += [OpCase(op, [Const([0.49999999999999994, 2.0 ** 52 + 1, -(2.0 ** 52 + 1), 1e300])],
                 _vec(ref), dtypes=("float64",), name="exact", grad=False)
          for op, ref in [("round", _round_away), ("rint", _rint_mxnet)]]
CASES += [OpCase(op, [Const([16777217.0 - 2, 8388609.0, -8388609.0, 0.49999997])], _vec(ref),
                 dtypes=("float32",), name="exact", grad=False)
          for op, ref in [("round", _round_away), ("rint", _rint_mxnet)]]
# Integer inputs keep their dtype (float functions are truncated back, as MXNet does).
CASES += [OpCase(op, [Int((3, 4), -4, 5, "int32")], ref, dtypes=("float32",), name="int",
                 grad=False)
          for op, ref in [("abs", np.abs), ("sign", np.sign), ("negative", np.negative),
                          ("square", np.square), ("relu", lambda x: np.maximum(x, 0)),
                          ("floor", np.floor), ("round", np.asarray), ("rint", np.asarray),
                          ("fix", np.asarray), ("logical_not", lambda x: x == 0),
                          ("sigmoid", lambda x: 1 / (1 + np.exp(-x.astype(np.float64)))),
                          ("erf", _vec(math.erf))]]
CASES += [OpCase(op, [Int((3, 4), 1, 9, "int64")], ref, dtypes=("float32",), name="int",
                 grad=False)
          for op, ref in [("sqrt", np.sqrt), ("rsqrt", lambda x: 1 / np.sqrt(x)),
                          ("log", np.log), ("softsign", lambda x: x / (1 + x))]]

# clip, cast, identity, zeros_like, ones_like, add_n.
def _clip_ref(x, a_min, a_max):
    return np.minimum(np.maximum(x, a_min), a_max)


CASES += [OpCase("clip", [s], _clip_ref, {"a_min": -0.5, "a_max": 0.25}, grad=False)
          for s in ELEMWISE_SHAPES]
CASES += [OpCase("clip", [_avoiding((2, 3), [-0.5, 0.25], -1, 1)], _clip_ref,
                 {"a_min": -0.5, "a_max": 0.25}, name="grad"),
          OpCase("clip", [_avoiding((2, 3), [0.5, 0.75], 0, 1)], _clip_ref,
                 {"a_min": 0.75, "a_max": 0.5}, name="grad-empty"),
          OpCase("clip", [(3, 4)], _clip_ref, {"a_min": 0.5, "a_max": 0.75}, low=0, high=1,
                 grad=False),
          OpCase("clip", [Int((3, 4), -5, 5)], lambda x, a_min, a_max: np.clip(x, -2, 3),
                 {"a_min": -2, "a_max": 3}, dtypes=("float32",), name="int", grad=False)]
# Gradients: only the float64 -> float64 cast is precise enough for finite differences;
# test_cast_gradient_dtype checks the others.
CASES += [OpCase("cast", [s], lambda x, dtype: x.astype(dtype), {"dtype": dt}, low=-50, high=50,
                 grad=dt == "float64")
          for s in ELEMWISE_SHAPES for dt in ("float16", "float32", "float64", "int32")]
CASES += [OpCase("cast", [Int((2, 3), -9, 9, "int32")], lambda x, dtype: x.astype(dtype),
                 {"dtype": "float64"}, dtypes=("float32",), name="int", grad=False),
          OpCase("cast", [Int((2, 3), 0, 3, "int64")], lambda x, dtype: x.astype(dtype),
                 {"dtype": "bool"}, dtypes=("float32",), name="bool", grad=False)]
CASES += [OpCase("cast", [(3, 4)], lambda x, dtype: x.astype(dtype), {"dtype": "uint8"}, low=0,
                 high=200, grad=False)]
CASES += [OpCase("_backward_cast", [s, Int(s, -5, 5, "int32")],
                 lambda g, like: g.astype(np.int32), low=-50, high=50, grad=False)
          for s in [(2, 3), (), (0, 2)]]
CASES += [OpCase("_backward_cast", [(2, 3), (2, 3)], lambda g, like: g.copy())]
CASES += [OpCase("identity", [s], lambda x: x) for s in ELEMWISE_SHAPES]
CASES += [OpCase("zeros_like", [s], np.zeros_like) for s in ELEMWISE_SHAPES]
CASES += [OpCase("ones_like", [s], np.ones_like) for s in ELEMWISE_SHAPES]
CASES += [OpCase("add_n", [s] * n, lambda *xs: sum(xs[1:], xs[0]), name=f"n{n}",
                 grad=n * int(np.prod(s)) <= 30)
          for s in ELEMWISE_SHAPES for n in (1, 2, 4)]
CASES += [OpCase("add_n", [Int((3,), 0, 5), Int((3,), 0, 5)], lambda a, b: a + b,
                 dtypes=("float32",), name="int", grad=False)]


@pytest.mark.parametrize("case,dtype", forward_params(CASES))
def test_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)


@pytest.mark.parametrize("case", gradient_params(CASES))
def test_gradient(case, ctx):
    run_gradient(case, ctx)


ALIASES = {"cast": ["Cast"], "identity": ["_copy"], "add_n": ["ElementWiseSum"]}


def test_aliases_resolve_to_the_canonical_op():
    for name, aliases in ALIASES.items():
        for alias in aliases:
            assert get_op(alias) is get_op(name)
            assert getattr(nd, alias) is not None


def test_declarations():
    for op, *_ in UNARY + [("logical_not",), ("clip",), ("identity",), ("add_n",)]:
        assert get_op(op).inplace == ((0, 0),), op
    for op in ("logical_not", "zeros_like", "ones_like"):
        assert not get_op(op).differentiable
    for op in ("sign", "round", "rint", "floor", "ceil", "trunc", "fix", "exp", "cast"):
        assert get_op(op).differentiable
    assert get_op("cast").inplace == ()


@pytest.mark.parametrize("op,low,high", [(u[0], u[2], u[3]) for u in UNARY] + [
    ("logical_not", -1, 1), ("identity", -1, 1), ("zeros_like", -1, 1), ("ones_like", -1, 1)])
@pytest.mark.parametrize("req", ["inplace", "add", "null"])
def test_kernel_requests(op, low, high, req):
    """Each kernel honours req: in-place (output is the input), add, null."""
    opdef = get_op(op)
    rng = np.random.default_rng(3)
    x = rng.uniform(low, high, size=(4, 5))
    x[0, :4] = [0.0, 0.5, -0.5, 0.25] if low < 0 else x[0, :4]  # zeros and ties
    expected = np.empty_like(x)
    opdef.forward_cpu(np, opdef.default_attrs, [x.copy()], [expected], ["write"])
    if req == "inplace":
        buf = x.copy()
        opdef.forward_cpu(np, opdef.default_attrs, [buf], [buf], ["inplace"])
        assert_almost_equal(buf, expected)
    else:
        out = np.full_like(x, 0.25)
        opdef.forward_cpu(np, opdef.default_attrs, [x], [out], [req])
        assert_almost_equal(out, expected + 0.25 if req == "add" else np.full_like(x, 0.25))


@pytest.mark.parametrize("req", ["inplace", "add"])
def test_clip_and_add_n_requests(req):
    x = np.linspace(-1, 1, 7)
    clip = get_op("clip")
    attrs = clip.parse_attrs({"a_min": -0.5, "a_max": 0.3})
    if req == "inplace":
        buf = x.copy()
        clip.forward_cpu(np, attrs, [buf], [buf], [req])
        assert_almost_equal(buf, np.clip(x, -0.5, 0.3))
    else:
        out = np.ones_like(x)
        clip.forward_cpu(np, attrs, [x], [out], [req])
        assert_almost_equal(out, np.clip(x, -0.5, 0.3) + 1)
    add_n = get_op("add_n")
    a, b, c = x.copy(), 2 * x, 3 * x
    attrs = Attrs(num_args=3)
    if req == "inplace":
        add_n.forward_cpu(np, attrs, [a, b, c], [a], [req])
        assert_almost_equal(a, 6 * x)
    else:
        out = np.ones_like(x)
        add_n.forward_cpu(np, attrs, [a, b, c], [out], [req])
        assert_almost_equal(out, 6 * x + 1)


def test_add_n_output_aliasing_inputs(ctx):
    a = nd.array([1.0, 2.0], ctx=ctx)
    b = nd.array([10.0, 20.0], ctx=ctx)
    assert nd.add_n(a, b, a, out=a) is a
    assert_almost_equal(a, [12.0, 24.0])
    assert nd.add_n(b, a, out=a) is a
    assert_almost_equal(a, [22.0, 44.0])
    assert_almost_equal(nd.add_n([a, b]), [32.0, 64.0])


def test_mxnet_rounding_semantics(ctx):
    x = nd.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -2.1, 1.9], ctx=ctx)
    assert nd.round(x).asnumpy().tolist() == [-3, -2, -1, 1, 2, 3, -2, 2]
    assert nd.rint(x).asnumpy().tolist() == [-3, -2, -1, 0, 1, 2, -2, 2]
    assert nd.fix(x).asnumpy().tolist() == [-2, -1, 0, 0, 1, 2, -2, 1]


def test_non_finite_values(ctx):
    special = nd.array([np.inf, -np.inf, np.nan], ctx=ctx, dtype="float64")
    for op in ("round", "rint", "floor", "ceil", "trunc", "fix"):
        got = getattr(nd, op)(special).asnumpy()
        assert got[0] == np.inf and got[1] == -np.inf and np.isnan(got[2]), op
    assert np.isnan(nd.relu(special).asnumpy()[2])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_is_stable(dtype, ctx):
    x = np.array([-1e4, -800, -100, -30, 0, 30, 100, 800, 1e4, np.inf, -np.inf], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = nd.sigmoid(nd.array(x, ctx=ctx, dtype=dtype)).asnumpy()
    with np.errstate(over="ignore"):
        expected = 1 / (1 + np.exp(-x.astype(np.float64)))
    assert np.all(np.isfinite(got))
    # relative accuracy in the tails, down to the dtype's smallest normal number
    assert_almost_equal(got, expected, rtol=1e-5, atol=np.finfo(dtype).tiny)
    assert_almost_equal(nd.softsign(nd.array([-1e30, 1e30], ctx=ctx)), [-1.0, 1.0])


def test_logical_not_and_cast_dtypes(ctx):
    x = nd.array([0, 2, -1], ctx=ctx, dtype="int32")
    y = nd.logical_not(x)
    assert y.dtype == np.int32 and y.asnumpy().tolist() == [1, 0, 0]
    assert (~nd.array([0.0, 3.0], ctx=ctx)).asnumpy().tolist() == [1.0, 0.0]
    z = nd.cast(nd.array([1.7, -1.7, 300.0], ctx=ctx), dtype="int32")
    assert z.dtype == np.int32 and z.asnumpy().tolist() == [1, -1, 300]
    assert nd.Cast(z, dtype="float16").dtype == np.float16
    assert nd.array([1, 2], ctx=ctx).astype("float64").dtype == np.float64


@pytest.fixture
def no_scipy(monkeypatch):
    """Make the special functions take the standard-library fallback."""
    monkeypatch.setattr(unary, "_import_special", lambda gpu: None)
    monkeypatch.setattr(unary, "_SPECIAL", {})


def test_import_special(monkeypatch):
    scipy_special = pytest.importorskip("scipy.special")
    assert unary._import_special(False) is scipy_special

    def missing(name):
        raise ImportError(name)
    monkeypatch.setattr(unary.importlib, "import_module", missing)
    assert unary._import_special(False) is None
    assert unary._import_special(True) is None


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_special_fallback_matches_scipy(no_scipy, dtype, ctx):
    special = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(5)
    cases = {
        "erf": np.concatenate([rng.uniform(-3, 3, 20), [0.0, 1e-12, -1e-12]]),
        "erfinv": np.concatenate([rng.uniform(-0.999, 0.999, 20),
                                  [0.0, 1e-12, -3e-9, 1e-4, 0.4999, 0.5, -0.7, 0.9999999,
                                   -1 + 1e-15]]),
        "gamma": np.concatenate([rng.uniform(0.05, 8, 20), [-0.5, -2.5, 1.0, 5.0]]),
        "gammaln": np.concatenate([rng.uniform(0.05, 30, 20), [-0.5, -2.5, 1.0, 1e5]]),
    }
    for name, values in cases.items():
        values = values.astype(dtype)
        got = getattr(nd, name)(nd.array(values, ctx=ctx, dtype=dtype))
        expected = getattr(special, name)(values.astype(np.float64))
        rtol = 1e-4 if dtype == "float32" else 1e-12
        if name == "erfinv" and dtype == "float32":
            rtol = 1e-3  # float32 inputs near +-1
        assert_almost_equal(got, expected, rtol=rtol, atol=1e-30, names=(name, "scipy"))
    assert unary._SPECIAL == {ctx.device_type == "gpu": None}


def test_special_fallback_edge_values(no_scipy, ctx):
    x = nd.array([0.0, -0.0, -1.0, -2.0, 200.0, np.inf, np.nan], ctx=ctx, dtype="float64")
    gamma = nd.gamma(x).asnumpy()
    assert gamma[0] == np.inf and gamma[1] == -np.inf and gamma[4] == np.inf
    assert np.isnan(gamma[2]) and np.isnan(gamma[3]) and gamma[5] == np.inf
    assert np.isnan(gamma[6])
    assert nd.gammaln(x).asnumpy()[:5].tolist() == [np.inf] * 4 + [math.lgamma(200.0)]
    assert nd.gammaln(nd.array([1e308], ctx=ctx, dtype="float64")).asnumpy()[0] == np.inf
    e = nd.erfinv(nd.array([1.0, -1.0, 1.5, 0.0, 1e-300], ctx=ctx, dtype="float64")).asnumpy()
    assert e[0] == np.inf and e[1] == -np.inf and np.isnan(e[2]) and e[3] == 0.0
    assert e[4] == pytest.approx(1e-300 * math.sqrt(math.pi) / 2, rel=1e-12)
    ints = nd.erf(nd.array([0, 1, 3], ctx=ctx, dtype="int32"))
    assert ints.dtype == np.int32 and ints.asnumpy().tolist() == [0, 0, 0]
    assert nd.erf(nd.zeros((0, 3), ctx=ctx)).shape == (0, 3)
    assert nd.erf(nd.array(0.5, ctx=ctx)).asnumpy() == pytest.approx(math.erf(0.5))


def test_special_fallback_requests(no_scipy):
    op = get_op("gammaln")
    x = np.array([1.5, 2.5, 3.5])
    out = np.ones(3)
    op.forward_cpu(np, op.default_attrs, [x], [out], ["add"])
    assert_almost_equal(out, [1 + math.lgamma(v) for v in x])
    op.forward_cpu(np, op.default_attrs, [x], [out], ["null"])
    assert_almost_equal(out, [1 + math.lgamma(v) for v in x])
    op.forward_cpu(np, op.default_attrs, [x], [x], ["inplace"])
    assert_almost_equal(x, [math.lgamma(v) for v in (1.5, 2.5, 3.5)])


# -- gradients ---------------------------------------------------------------------------

def _second_derivative(fn, values):
    """``(dy/dx, d2y/dx2)`` of the elementwise ``fn`` at float64 ``values``, by autograd."""
    x = nd.array(values, dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = fn(x)
        g = autograd.grad(y, x, create_graph=True)
    g.backward()
    return g.asnumpy(), x.grad.asnumpy()


def _trigamma(x):
    return _polygamma(x, 1)


def _erfinv_second(x):
    y = np.vectorize(_erfinv_bisect)(x)
    return y * np.pi / 2 * np.exp(2 * y * y)


#: (op, analytic second derivative, low, high)
SECOND_ORDER = [
    ("exp", np.exp, -1, 1),
    ("expm1", np.exp, -1, 1),
    ("log", lambda x: -1 / x ** 2, 0.5, 2),
    ("log1p", lambda x: -1 / (1 + x) ** 2, -0.5, 2),
    ("log2", lambda x: -1 / (x ** 2 * np.log(2)), 0.5, 2),
    ("log10", lambda x: -1 / (x ** 2 * np.log(10)), 0.5, 2),
    ("sqrt", lambda x: -0.25 * x ** -1.5, 0.5, 2),
    ("rsqrt", lambda x: 0.75 * x ** -2.5, 0.5, 2),
    ("cbrt", lambda x: -2 / 9 * x ** (-5 / 3), 0.5, 2),
    ("rcbrt", lambda x: 4 / 9 * x ** (-7 / 3), 0.5, 2),
    ("square", lambda x: np.full_like(x, 2.0), -2, 2),
    ("reciprocal", lambda x: 2 / x ** 3, 0.5, 2),
    ("sin", lambda x: -np.sin(x), -3, 3),
    ("cos", lambda x: -np.cos(x), -3, 3),
    ("tan", lambda x: 2 * np.tan(x) * (1 + np.tan(x) ** 2), -1, 1),
    ("arcsin", lambda x: x / (1 - x * x) ** 1.5, -0.8, 0.8),
    ("arccos", lambda x: -x / (1 - x * x) ** 1.5, -0.8, 0.8),
    ("arctan", lambda x: -2 * x / (1 + x * x) ** 2, -2, 2),
    ("sinh", np.sinh, -2, 2),
    ("cosh", np.cosh, -2, 2),
    ("tanh", lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2), -2, 2),
    ("arcsinh", lambda x: -x / (x * x + 1) ** 1.5, -2, 2),
    ("arccosh", lambda x: -x / (x * x - 1) ** 1.5, 1.2, 3),
    ("arctanh", lambda x: 2 * x / (1 - x * x) ** 2, -0.8, 0.8),
    ("sigmoid", lambda x: (lambda s: s * (1 - s) * (1 - 2 * s))(1 / (1 + np.exp(-x))), -3, 3),
    ("softsign", lambda x: -2 * np.sign(x) / (1 + np.abs(x)) ** 3, 0.2, 2),
    ("relu", np.zeros_like, 0.2, 2),
    ("abs", np.zeros_like, -2, -0.2),
    ("erf", lambda x: -4 * x / np.sqrt(np.pi) * np.exp(-x * x), -2, 2),
    ("erfinv", _erfinv_second, -0.8, 0.8),
    ("gammaln", _trigamma, 0.5, 4),
    ("gamma", lambda x: np.vectorize(math.gamma)(x) * (_polygamma(x) ** 2 + _trigamma(x)),
     0.5, 4),
]


@pytest.mark.parametrize("op,expected,low,high", SECOND_ORDER, ids=[t[0] for t in SECOND_ORDER])
def test_second_order(op, expected, low, high):
    v = np.random.default_rng(7).uniform(low, high, size=(2, 3))
    _, second = _second_derivative(getattr(nd, op), v)
    assert_almost_equal(second, expected(v), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("op,third", [("sin", lambda x: -np.cos(x)), ("exp", np.exp),
                                      ("log", lambda x: 2 / x ** 3),
                                      ("gammaln", lambda x: _polygamma(x, 2))])
def test_third_order(op, third):
    v = np.array([0.5, 1.25, 2.0])
    x = nd.array(v, dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = getattr(nd, op)(x)
        g1 = autograd.grad(y, x, create_graph=True)
        g2 = autograd.grad(g1, x, create_graph=True)
    g2.backward()
    assert_almost_equal(x.grad, third(v), rtol=1e-6)


def test_second_order_of_clip_cast_identity_add_n():
    v = np.array([-0.75, -0.25, 0.1, 0.6])
    first, second = _second_derivative(lambda x: nd.square(nd.clip(x, -0.5, 0.5)), v)
    assert_almost_equal(first, [0.0, -0.5, 0.2, 0.0])
    assert_almost_equal(second, [0.0, 2.0, 2.0, 0.0])
    first, second = _second_derivative(
        lambda x: nd.cast(nd.square(nd.cast(x, dtype="float32")), dtype="float64"), v)
    assert_almost_equal(first, 2 * v, rtol=1e-6)
    assert_almost_equal(second, np.full(4, 2.0))
    first, second = _second_derivative(lambda x: nd.add_n(nd.identity(x) * x, x, nd.exp(x)), v)
    assert_almost_equal(first, 2 * v + 1 + np.exp(v))
    assert_almost_equal(second, 2 + np.exp(v))
    first, second = _second_derivative(lambda x: nd.floor(x) * x, v)
    assert_almost_equal(first, np.floor(v))
    assert_almost_equal(second, np.zeros(4))


def test_clip_gradient_boundaries_pass(ctx):
    """MXNet: the gradient passes where a_min <= x <= a_max, boundaries included."""
    x = sym.Variable("x")
    net = sym.clip(x, a_min=-0.5, a_max=0.5)
    v = np.array([-1.0, -0.5, 0.0, 0.5, 0.75])
    og = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    check_symbolic_backward(net, {"x": v}, [og], {"x": [0.0, 2.0, 3.0, 4.0, 0.0]}, ctx=ctx,
                            dtype=np.float64)
    inverted = sym.clip(x, a_min=1.0, a_max=-1.0)
    check_symbolic_backward(inverted, {"x": v}, [og], {"x": np.zeros(5)}, ctx=ctx,
                            dtype=np.float64)


@pytest.mark.parametrize("to", ["float32", "float16", "int32"])
def test_cast_gradient_executor(to, ctx):
    """cast's gradient (a _backward_cast node) comes back in the input's dtype."""
    x = sym.Variable("x")
    net = sym.cast(sym.square(x), dtype=to) * 3
    v = np.array([[0.5, -1.25, 2.0], [1.5, -0.75, 0.25]])
    args = {"x": nd.array(v, ctx=ctx, dtype="float64")}
    grads = {"x": nd.zeros(v.shape, ctx=ctx, dtype="float64")}
    exe = net.bind(ctx, args, args_grad=grads)
    out = exe.forward(is_train=True)[0]
    assert out.dtype == np.dtype(to)
    og = np.array([[1.0, 2.0, -1.0], [0.5, 4.0, -3.0]])
    exe.backward([nd.array(og, ctx=ctx, dtype=to)])
    grad = exe.grad_dict["x"]
    assert grad.dtype == np.float64
    assert_almost_equal(grad, 2 * v * (og.astype(to) * 3).astype(to), rtol=1e-6)
    assert "_backward_cast" in [n.op.name for n in exe._graph.nodes if n.op is not None]


def test_backward_cast_declaration():
    op = get_op("_backward_cast")
    assert op.infer_type(None, [np.dtype("float32"), np.dtype("int64")])[1] == [np.dtype("int64")]
    assert op.infer_type(None, [np.dtype("float32"), None])[1] == [None]
    assert op.infer_shape(None, [(2, 3), None]) == ([(2, 3), (2, 3)], [(2, 3)])
    out = np.ones((2, 2), dtype=np.int64)
    op.forward_cpu(np, op.default_attrs, [np.full((2, 2), 2.7), out], [out], ["add"])
    assert out.tolist() == [[3, 3], [3, 3]]


def test_zero_gradients_keep_no_input(ctx):
    """Rounding ops give zero gradients, built from ograd (x itself is not needed)."""
    x = sym.Variable("x")
    v = np.array([-1.3, 0.4, 2.6])
    for op in ("sign", "floor", "ceil", "round", "rint", "trunc", "fix"):
        check_symbolic_backward(getattr(sym, op)(x) + x, {"x": v}, [np.ones(3)],
                                {"x": np.ones(3)}, ctx=ctx, dtype=np.float64)


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_psi_fallback_matches_scipy(no_scipy, n, ctx):
    special = pytest.importorskip("scipy.special")
    values = np.array([0.05, 0.5, 1.0, 2.5, 7.0, 40.0, 1e6, -0.5, -2.5, -3.7, 0.0, -1.0])
    got = nd._psi(nd.array(values, ctx=ctx, dtype="float64"), n=n).asnumpy()
    expected = special.polygamma(n, values)
    assert_almost_equal(got, expected, rtol=1e-11, atol=1e-300)
    assert unary._SPECIAL == {ctx.device_type == "gpu": None}


def test_psi_fallback_edge_values():
    psi = unary._std_polygamma
    assert psi(0, 0.0) == -math.inf and psi(0, -0.0) == math.inf
    assert math.isnan(psi(0, -2.0)) and math.isnan(psi(0, math.nan))
    assert psi(1, -2.0) == math.inf and psi(2, 0.0) == -math.inf
    assert psi(0, math.inf) == math.inf and psi(1, math.inf) == 0.0
    assert math.isnan(psi(0, -math.inf)) and psi(1, -math.inf) == math.inf
    assert psi(0, 1e-320) == -math.inf and psi(1, -1e-320) == math.inf
    assert psi(2, -1e-320) == math.inf and psi(2, 1e-320) == -math.inf
    assert math.isnan(psi(2, -1e6 - 0.5))
    assert psi(0, 1.0) == pytest.approx(-0.5772156649015329, rel=1e-14)


def test_gamma_gradient_without_scipy(no_scipy, ctx):
    x = sym.Variable("x")
    v = np.array([0.5, 1.5, 3.0, -2.5])
    digamma = np.array([unary._std_polygamma(0, t) for t in v])
    gamma = np.array([math.gamma(t) for t in v])
    check_symbolic_backward(sym.gammaln(x), {"x": v}, [np.ones(4)], {"x": digamma}, ctx=ctx,
                            dtype=np.float64, rtol=1e-12)
    check_symbolic_backward(sym.gamma(x), {"x": v}, [np.ones(4)], {"x": gamma * digamma},
                            ctx=ctx, dtype=np.float64, rtol=1e-12)


def test_gradient_declarations():
    differentiable = [op for op, *_ in UNARY] + ["clip", "cast", "identity", "add_n", "_psi",
                                                  "_backward_cast"]
    for name in differentiable:
        assert get_op(name).differentiable and get_op(name).gradient is not None, name
        assert not get_op(name).unbroadcast, name


# -- errors --------------------------------------------------------------------------

def test_clip_param_errors():
    x = nd.ones((2, 3))
    with pytest.raises(ParamError, match=r"clip: param a_min='low' is not a valid float") as err:
        nd.clip(x, a_min="low", a_max=1)
    assert err.value.param == "a_min" and err.value.op == "clip"
    with pytest.raises(ParamError, match=r"clip: missing required param 'a_max'"):
        nd.clip(x, a_min=0)
    with pytest.raises(ParamError, match=r"clip: unknown param 'a_mx'.*did you mean 'a_max'"):
        nd.clip(x, a_min=0, a_mx=1)
    assert_almost_equal(nd.clip(x, a_min="0", a_max="0.5"), np.full((2, 3), 0.5))


def test_cast_param_errors():
    with pytest.raises(ParamError, match=r"cast: param dtype='floaty32'"):
        nd.cast(nd.ones(2), dtype="floaty32")
    with pytest.raises(ParamError, match=r"cast: missing required param 'dtype'"):
        nd.cast(nd.ones(2))


def test_add_n_errors():
    a, b = nd.ones((2, 3)), nd.ones((3, 2))
    with pytest.raises(ShapeError, match=r"add_n: input 1 has shape \(3, 2\) but input 0 has "
                                         r"\(2, 3\)") as err:
        nd.add_n(a, b)
    assert "arg0=(2, 3)" in str(err.value) and "arg1=(3, 2)" in str(err.value)
    with pytest.raises(DTypeError, match=r"add_n: input 1 has dtype float64 but input 0 has "
                                         r"float32"):
        nd.add_n(a, nd.ones((2, 3), dtype="float64"))
    with pytest.raises(ParamError, match=r"add_n: param num_args=0 must be >= 1"):
        nd.add_n()


def test_unary_errors():
    with pytest.raises(ParamError, match=r"exp: unknown param 'axis'"):
        nd.exp(nd.ones(2), axis=0)
    with pytest.raises(ParamError, match=r"exp: takes 1 input\(s\) \(data\) but 2 were "
                                         r"given"):
        nd.exp(nd.ones(2), nd.ones(2))
