"""Forward checks of the unary elementwise ops, clip, cast, identity, *_like and add_n."""
import math
import warnings

import numpy as np
import pytest

import deepkit_engine as dk
from deepkit_engine.base import DTypeError, ParamError, ShapeError
from deepkit_engine.ops import get_op, unary
from deepkit_engine.ops.registry import Attrs
from deepkit_engine.testing import assert_almost_equal

from .op_cases import ELEMWISE_SHAPES, Const, Int, OpCase, forward_params, run_forward

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

CASES = [OpCase(op, [s], ref, low=lo, high=hi) for op, ref, lo, hi in UNARY
         for s in ELEMWISE_SHAPES]
CASES += [OpCase("logical_not", [_small_ints(s)], lambda x: (x == 0).astype(np.float64))
          for s in ELEMWISE_SHAPES]
# MXNet's rounding of halves, and values where floor(|x| + 0.5) would be wrong.
TIES = [-3.5, -2.5, -1.5, -0.5, -0.0, 0.5, 1.5, 2.5, 3.5, 0.49999997, 1.4999999]
CASES += [OpCase(op, [Const(TIES)], _vec(ref), name="ties")
          for op, ref in [("round", _round_away), ("rint", _rint_mxnet)]]
CASES += [OpCase(op, [Const([0.49999999999999994, 2.0 ** 52 + 1, -(2.0 ** 52 + 1), 1e300])],
                 _vec(ref), dtypes=("float64",), name="exact")
          for op, ref in [("round", _round_away), ("rint", _rint_mxnet)]]
CASES += [OpCase(op, [Const([16777217.0 - 2, 8388609.0, -8388609.0, 0.49999997])], _vec(ref),
                 dtypes=("float32",), name="exact")
          for op, ref in [("round", _round_away), ("rint", _rint_mxnet)]]
# Integer inputs keep their dtype (float functions are truncated back, as MXNet does).
CASES += [OpCase(op, [Int((3, 4), -4, 5, "int32")], ref, dtypes=("float32",), name="int")
          for op, ref in [("abs", np.abs), ("sign", np.sign), ("negative", np.negative),
                          ("square", np.square), ("relu", lambda x: np.maximum(x, 0)),
                          ("floor", np.floor), ("round", np.asarray), ("rint", np.asarray),
                          ("fix", np.asarray), ("logical_not", lambda x: x == 0),
                          ("sigmoid", lambda x: 1 / (1 + np.exp(-x.astype(np.float64)))),
                          ("erf", _vec(math.erf))]]
CASES += [OpCase(op, [Int((3, 4), 1, 9, "int64")], ref, dtypes=("float32",), name="int")
          for op, ref in [("sqrt", np.sqrt), ("rsqrt", lambda x: 1 / np.sqrt(x)),
                          ("log", np.log), ("softsign", lambda x: x / (1 + x))]]

# clip, cast, identity, zeros_like, ones_like, add_n.
CASES += [OpCase("clip", [s], lambda x, a_min, a_max: np.minimum(np.maximum(x, a_min), a_max),
                 {"a_min": -0.5, "a_max": 0.25}) for s in ELEMWISE_SHAPES]
CASES += [OpCase("clip", [(3, 4)], lambda x, a_min, a_max: np.minimum(np.maximum(x, a_min), a_max),
                 {"a_min": 0.5, "a_max": 0.75}, low=0, high=1),
          OpCase("clip", [Int((3, 4), -5, 5)], lambda x, a_min, a_max: np.clip(x, -2, 3),
                 {"a_min": -2, "a_max": 3}, dtypes=("float32",), name="int")]
CASES += [OpCase("cast", [s], lambda x, dtype: x.astype(dtype), {"dtype": dt}, low=-50, high=50)
          for s in ELEMWISE_SHAPES for dt in ("float16", "float32", "float64", "int32")]
CASES += [OpCase("cast", [(3, 4)], lambda x, dtype: x.astype(dtype), {"dtype": "uint8"}, low=0,
                 high=200),
          OpCase("cast", [Int((2, 3), -9, 9, "int32")], lambda x, dtype: x.astype(dtype),
                 {"dtype": "float64"}, dtypes=("float32",), name="int"),
          OpCase("cast", [Int((2, 3), 0, 3, "int64")], lambda x, dtype: x.astype(dtype),
                 {"dtype": "bool"}, dtypes=("float32",), name="bool")]
CASES += [OpCase("identity", [s], lambda x: x) for s in ELEMWISE_SHAPES]
CASES += [OpCase("zeros_like", [s], np.zeros_like) for s in ELEMWISE_SHAPES]
CASES += [OpCase("ones_like", [s], np.ones_like) for s in ELEMWISE_SHAPES]
CASES += [OpCase("add_n", [s] * n, lambda *xs: sum(xs[1:], xs[0]), name=f"n{n}")
          for s in ELEMWISE_SHAPES for n in (1, 2, 4)]
CASES += [OpCase("add_n", [Int((3,), 0, 5), Int((3,), 0, 5)], lambda a, b: a + b,
                 dtypes=("float32",), name="int")]


@pytest.mark.parametrize("case,dtype", forward_params(CASES))
def test_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)


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
