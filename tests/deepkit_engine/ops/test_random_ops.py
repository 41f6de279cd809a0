"""Checks of the random sampling ops: ranges, moments, and reproducibility by seed.

Samples have no deterministic reference, so every op is listed in
``OTHER_COVERED_OPS`` with the test that checks it: values in range, sample
mean and variance within a few standard errors of the distribution's, and
the same numbers after re-seeding, on the threaded and the naive engine.
"""
import numpy as np
import pytest

from deepkit_engine import autograd, engine, nd, random
from deepkit_engine.base import DTypeError, ParamError, ShapeError
from deepkit_engine.ops import get_op

OTHER_COVERED_OPS = {
    "random_uniform": "test_uniform",
    "random_normal": "test_normal",
    "random_randint": "test_randint",
    "random_bernoulli": "test_bernoulli",
    "sample_multinomial": "test_sample_multinomial",
    "shuffle": "test_shuffle",
    "random_exponential": "test_exponential_gamma_poisson_negative_binomial",
    "random_gamma": "test_exponential_gamma_poisson_negative_binomial",
    "random_poisson": "test_exponential_gamma_poisson_negative_binomial",
    "random_negative_binomial": "test_exponential_gamma_poisson_negative_binomial",
    "random_generalized_negative_binomial": "test_exponential_gamma_poisson_negative_binomial",
}

N = 200_000
#: Allowed distance of a sample statistic from its expectation, in standard errors.
Z = 5.0


@pytest.fixture(params=["threaded", "naive"])
def engine_kind(request):
    """Runs the test on both engines; restores the previous one afterwards."""
    old = engine.set_engine(request.param)
    try:
        yield request.param
    finally:
        engine.set_engine(old)


def assert_moments(x, mean, var, mu4):
    """Sample mean and variance within Z standard errors (``mu4``: 4th central moment)."""
    n = x.size
    assert abs(x.mean() - mean) <= Z * np.sqrt(var / n), (x.mean(), mean)
    assert abs(x.var() - var) <= Z * np.sqrt((mu4 - var ** 2) / n), (x.var(), var)


def draws(ctx, seed_value):
    """One seeded sequence of draws of every op (pushed without waiting in between).

    Some are large enough to run on engine workers rather than inline, so the
    order comes from the generator's engine variable alone.
    """
    random.seed(seed_value)
    data = nd.array(np.arange(20).reshape(10, 2), ctx=ctx)
    probs = nd.array([[0.2, 0.3, 0.5], [0.6, 0.4, 0.0]], ctx=ctx)
    out = [nd.random_uniform(shape=(50,), ctx=ctx), nd.random_normal(shape=(300, 200), ctx=ctx),
           nd.random_uniform(shape=(5,), ctx=ctx), nd.random_uniform(shape=(40_000,), ctx=ctx),
           nd.random_randint(low=-5, high=5, shape=(50,), ctx=ctx),
           nd.random_bernoulli(prob=0.3, shape=(50,), ctx=ctx),
           nd.sample_multinomial(probs, shape=(25,)), nd.shuffle(data),
           random.uniform(-1, 1, shape=(7,), ctx=ctx), random.normal(shape=(7,), ctx=ctx),
           random.randint(0, 100, shape=(7,), ctx=ctx)]
    return [o.asnumpy() for o in out]


def check_reproducible(ctx):
    first, again, other = draws(ctx, 7), draws(ctx, 7), draws(ctx, 8)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    differ = [not np.array_equal(a, b) for a, b in zip(first, other)]
    assert all(differ), differ
    return first


def test_reproducible_by_seed(ctx, engine_kind):
    check_reproducible(ctx)


def test_same_draws_on_both_engines(ctx):
    """Random work is ordered through the generator's variable, so the engines agree."""
    old = engine.set_engine("threaded")
    try:
        threaded = draws(ctx, 11)
        engine.set_engine("naive")
        naive = draws(ctx, 11)
    finally:
        engine.set_engine(old)
    for a, b in zip(threaded, naive):
        np.testing.assert_array_equal(a, b)


def test_draws_advance_the_generator(ctx):
    random.seed(3)
    a = nd.random_uniform(shape=(100,), ctx=ctx)
    b = nd.random_uniform(shape=(100,), ctx=ctx)
    assert not np.array_equal(a.asnumpy(), b.asnumpy())


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_uniform(ctx, engine_kind, dtype):
    random.seed(1)
    low, high = -2.0, 3.0
    x = nd.random_uniform(low=low, high=high, shape=(N,), dtype=dtype, ctx=ctx)
    assert (x.shape, x.dtype, x.ctx) == ((N,), np.dtype(dtype), ctx)
    v = x.asnumpy().astype(np.float64)
    assert v.min() >= low and v.max() <= high
    w = high - low
    assert_moments(v, (low + high) / 2, w ** 2 / 12, w ** 4 / 80)
    # Default params: U[0, 1), float32, shape (1,) (as MXNet's nd.random.uniform()).
    d = nd.random_uniform(ctx=ctx)
    assert (d.shape, d.dtype) == ((1,), np.float32)
    assert 0.0 <= d.asscalar() < 1.0
    # Reproducible, and the aliases are the same op.
    random.seed(5)
    a = nd.uniform(shape=(3, 4), ctx=ctx).asnumpy()
    random.seed(5)
    b = nd._random_uniform(shape=(3, 4), ctx=ctx).asnumpy()
    np.testing.assert_array_equal(a, b)
    assert get_op("uniform") is get_op("_random_uniform") is get_op("random_uniform")
    assert nd.random_uniform(shape=(0, 3), ctx=ctx).asnumpy().shape == (0, 3)
    assert nd.random_uniform(low=2, high=2, shape=(4,), ctx=ctx).asnumpy().tolist() == [2.0] * 4


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_normal(ctx, engine_kind, dtype):
    random.seed(2)
    loc, scale = 1.5, 2.0
    x = nd.random_normal(loc=loc, scale=scale, shape=(N // 2, 2), dtype=dtype, ctx=ctx)
    assert (x.shape, x.dtype) == ((N // 2, 2), np.dtype(dtype))
    v = x.asnumpy().astype(np.float64).ravel()
    assert_moments(v, loc, scale ** 2, 3 * scale ** 4)
    # About 68.3% within one standard deviation.
    inside = np.mean(np.abs(v - loc) < scale)
    assert abs(inside - 0.6827) < Z * np.sqrt(0.6827 * 0.3173 / v.size)
    assert get_op("normal") is get_op("_random_normal") is get_op("random_normal")
    np.testing.assert_array_equal(nd.random_normal(loc=3, scale=0, shape=(3,), ctx=ctx)
                                  .asnumpy(), [3, 3, 3])


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_randint(ctx, engine_kind, dtype):
    random.seed(3)
    low, high = -3, 7
    x = nd.random_randint(low=low, high=high, shape=(N,), dtype=dtype, ctx=ctx)
    assert (x.shape, x.dtype) == ((N,), np.dtype(dtype))
    v = x.asnumpy()
    assert set(np.unique(v).tolist()) == set(range(low, high))
    m = high - low
    var = (m ** 2 - 1) / 12
    mu4 = np.mean((np.arange(low, high) - (low + high - 1) / 2) ** 4)
    assert_moments(v.astype(np.float64), (low + high - 1) / 2, var, mu4)
    assert nd.random_randint(low=0, high=1, shape=(5,), ctx=ctx).asnumpy().tolist() == [0] * 5
    assert get_op("_random_randint") is get_op("random_randint")
    assert random.randint(0, 4, ctx=ctx).dtype == np.int32


@pytest.mark.parametrize("dtype", ["float32", "int32", "bool"])
def test_bernoulli(ctx, engine_kind, dtype):
    random.seed(4)
    p = 0.3
    x = nd.random_bernoulli(prob=p, shape=(N,), dtype=dtype, ctx=ctx)
    assert (x.shape, x.dtype) == ((N,), np.dtype(dtype))
    v = x.asnumpy().astype(np.float64)
    assert set(np.unique(v).tolist()) == {0.0, 1.0}
    assert_moments(v, p, p * (1 - p), p * (1 - p) * (1 - 3 * p * (1 - p)))
    assert nd.random_bernoulli(prob=0.0, shape=(100,), ctx=ctx).asnumpy().sum() == 0
    assert nd.random_bernoulli(prob=1.0, shape=(100,), ctx=ctx).asnumpy().sum() == 100


def test_sample_multinomial(ctx, engine_kind):
    random.seed(5)
    probs = np.array([[0.1, 0.2, 0.0, 0.7], [0.25, 0.25, 0.25, 0.25], [0.0, 0.0, 1.0, 0.0]])
    samples, logp = nd.sample_multinomial(nd.array(probs, ctx=ctx), shape=(N // 4,),
                                          get_prob=True)
    assert (samples.shape, samples.dtype) == ((3, N // 4), np.int32)
    assert (logp.shape, logp.dtype) == ((3, N // 4), np.float32)
    s = samples.asnumpy()
    assert s.min() >= 0 and s.max() <= 3
    for row, p in zip(s, probs):
        freq = np.bincount(row, minlength=4) / row.size
        se = np.sqrt(p * (1 - p) / row.size)
        assert np.all(np.abs(freq - p) <= Z * se + 1e-12), (freq, p)
    assert np.all(s[0] != 2) and np.all(s[2] == 2)  # zero-probability categories never drawn
    with np.errstate(divide="ignore"):
        expected_logp = np.log(probs)[np.arange(3)[:, None], s]
    np.testing.assert_allclose(logp.asnumpy(), expected_logp, rtol=1e-6)

    # Unnormalized weights, float64 data, batch dims, sample shape and dtype.
    weights = nd.array(np.tile([1.0, 3.0], (2, 3, 1)), ctx=ctx, dtype="float64")
    out = nd.sample_multinomial(weights, shape=(50, 2), dtype="float32")
    assert (out.shape, out.dtype) == ((2, 3, 50, 2), np.float32)
    frac = out.asnumpy().mean()
    assert abs(frac - 0.75) < Z * np.sqrt(0.75 * 0.25 / out.size)
    # One 1-d distribution and no shape: one sample of shape (1,), as in MXNet 1.x.
    one = nd.sample_multinomial(nd.array([0.0, 1.0], ctx=ctx))
    assert one.shape == (1,) and one.asnumpy().tolist() == [1]
    assert nd.sample_multinomial(nd.array([0.5, 0.5], ctx=ctx), shape=(3,)).shape == (3,)
    assert nd.sample_multinomial(nd.zeros((0, 3), ctx=ctx), shape=(2,)).shape == (0, 2)
    assert get_op("_sample_multinomial") is get_op("sample_multinomial")


def test_shuffle(ctx, engine_kind):
    random.seed(6)
    n = 1000
    data = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    out = nd.shuffle(nd.array(data, ctx=ctx)).asnumpy()
    assert out.shape == data.shape
    # Rows move whole and each row appears once.
    np.testing.assert_array_equal(out[:, 1] - out[:, 0], np.ones(n))
    np.testing.assert_array_equal(np.sort(out[:, 0]), data[:, 0])
    assert not np.array_equal(out, data)
    # Each position is equally likely to hold each row: the first column's mean
    # row index over many shuffles of a short array is (n - 1) / 2.
    firsts = np.array([nd._shuffle(nd.array(np.arange(10), ctx=ctx)).asnumpy()[0]
                       for _ in range(2000)])
    assert abs(firsts.mean() - 4.5) < Z * np.sqrt(99 / 12 / firsts.size)
    assert nd.shuffle(nd.array([[1.0, 2.0]], ctx=ctx)).asnumpy().tolist() == [[1.0, 2.0]]
    assert nd.shuffle(nd.zeros((0, 2), ctx=ctx)).shape == (0, 2)
    assert get_op("_shuffle") is get_op("shuffle")


def test_not_differentiable():
    for name in OTHER_COVERED_OPS:
        op = get_op(name)
        assert not op.differentiable
        assert op.resources == ("rng",)


def test_gradient_stops_at_random_ops(ctx):
    """shuffle and sample_multinomial pass no gradient on; other paths still do."""
    x = nd.array([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]], ctx=ctx, dtype="float64")
    x.attach_grad()
    with autograd.record():
        shuffled = nd.shuffle(x)
        sampled = nd.sample_multinomial(x, shape=(4,), get_prob=True)
        taken = nd.take(x, nd.array([2, 2], ctx=ctx))
    autograd.backward([shuffled, sampled[1], taken])
    np.testing.assert_array_equal(x.grad.asnumpy(), [[0, 0], [0, 0], [2, 2]])
    with autograd.record():
        shuffled = nd.shuffle(x)
    shuffled.backward()
    np.testing.assert_array_equal(x.grad.asnumpy(), np.zeros((3, 2)))


def test_param_errors():
    with pytest.raises(ParamError, match=r"random_uniform.*low=2.0.*<= high=1.0"):
        nd.random_uniform(low=2, high=1)
    with pytest.raises(ParamError, match=r"random_normal.*scale=-1.*>= 0"):
        nd.random_normal(scale=-1)
    with pytest.raises(ParamError, match=r"random_randint.*low=3 must be < high=3"):
        nd.random_randint(low=3, high=3)
    with pytest.raises(ParamError, match=r"random_randint.*missing.*high"):
        nd.random_randint(low=3)
    with pytest.raises(ParamError, match=r"random_randint.*does not fit dtype int32"):
        nd.random_randint(low=0, high=2 ** 40)
    with pytest.raises(ParamError, match=r"random_bernoulli.*prob=1.5.*<= 1.0"):
        nd.random_bernoulli(prob=1.5)
    with pytest.raises(ParamError, match=r"random_uniform.*shape=\(2, -1\).*>= 0"):
        nd.random_uniform(shape=(2, -1))
    with pytest.raises(ParamError, match=r"sample_multinomial.*dtype"):
        nd.sample_multinomial(nd.ones((2,)), dtype="int64")


def test_dtype_and_shape_errors():
    with pytest.raises(DTypeError, match=r"random_uniform.*dtype=int32.*float"):
        nd.random_uniform(dtype="int32")
    with pytest.raises(DTypeError, match=r"random_normal.*dtype=int64"):
        nd.random_normal(dtype="int64")
    with pytest.raises(DTypeError, match=r"random_randint.*dtype=float32.*integer"):
        nd.random_randint(low=0, high=3, dtype="float32")
    with pytest.raises(DTypeError, match=r"sample_multinomial.*float probabilities.*int32"):
        nd.sample_multinomial(nd.array([1, 2], dtype="int32"))
    with pytest.raises(DTypeError, match=r"sample_multinomial.*uint8.*299"):
        nd.sample_multinomial(nd.ones((300,)), dtype="uint8")
    with pytest.raises(ShapeError, match=r"sample_multinomial.*0-d"):
        nd.sample_multinomial(nd.ones(()))
    with pytest.raises(ShapeError, match=r"sample_multinomial.*0 categories"):
        nd.sample_multinomial(nd.ones((2, 0)))


@pytest.mark.parametrize("op,inputs,params", [
    ("random_uniform", [], {"low": -1, "high": 2, "shape": (3, 4)}),
    ("random_uniform", [], {"shape": (5,), "dtype": "float16"}),
    ("random_normal", [], {"loc": 1, "scale": 2, "shape": (3, 4), "dtype": "float64"}),
    ("random_randint", [], {"low": 0, "high": 9, "shape": (6,)}),
    ("random_bernoulli", [], {"prob": 0.4, "shape": (6,)}),
    ("sample_multinomial", [np.array([[0.3, 0.7], [0.9, 0.1]])], {"shape": (4,),
                                                                    "get_prob": True}),
    ("shuffle", [np.arange(8.0).reshape(4, 2)], {}),
])
@pytest.mark.parametrize("req", ["add", "null"])
def test_kernel_requests(op, inputs, params, req):
    """With the same generator state, 'add' adds the 'write' draws; 'null' writes nothing."""
    opdef = get_op(op)
    attrs = opdef.parse_attrs(params)
    _, shapes = opdef.infer_shape(attrs, [x.shape for x in inputs])
    _, dtypes = opdef.infer_type(attrs, [x.dtype for x in inputs])
    expected = [np.empty(s, d) for s, d in zip(shapes, dtypes)]
    opdef.forward_cpu(np, attrs, inputs, expected, ["write"] * len(expected),
                      rng=np.random.default_rng(0))
    outs = [np.ones(s, d) for s, d in zip(shapes, dtypes)]
    opdef.forward_cpu(np, attrs, inputs, outs, [req] * len(outs), rng=np.random.default_rng(0))
    for o, e in zip(outs, expected):
        np.testing.assert_array_equal(o, e + 1 if req == "add" else np.ones_like(o))


@pytest.mark.parametrize("name,params,mean,var", [
    ("random_exponential", {"lam": 4.0}, 0.25, 1 / 16),
    ("random_gamma", {"alpha": 2.0, "beta": 3.0}, 6.0, 18.0),
    ("random_poisson", {"lam": 3.0}, 3.0, 3.0),
    ("random_negative_binomial", {"k": 3, "p": 0.4}, 4.5, 3 * 0.6 / 0.16),
    ("random_generalized_negative_binomial", {"mu": 2.0, "alpha": 0.5}, 2.0, 2.0 + 0.5 * 4),
])
def test_exponential_gamma_poisson_negative_binomial(ctx, name, params, mean, var):
    random.seed(9)
    x = getattr(nd, name)(shape=(N,), ctx=ctx, **params).asnumpy().astype(np.float64)
    assert x.dtype == np.float64 and x.min() >= 0
    # the mean within Z standard errors; the variance within 5% (heavy tails)
    assert abs(x.mean() - mean) <= Z * np.sqrt(var / N), (x.mean(), mean)
    assert abs(x.var() / var - 1) < 0.05, (x.var(), var)
    if name != "random_exponential" and name != "random_gamma":
        np.testing.assert_array_equal(x, np.round(x))  # counts
    again = getattr(nd, name)(shape=(3, 4), dtype="float64", ctx=ctx, **params)
    assert again.shape == (3, 4) and again.dtype == np.float64


def test_sampler_params_are_checked():
    with pytest.raises(ParamError, match="random_exponential: param lam=0.0 must be > 0"):
        nd.random_exponential(lam=0.0)
    with pytest.raises(ParamError, match="random_gamma: param beta=-1.0 must be > 0"):
        nd.random_gamma(beta=-1.0)
    with pytest.raises(ParamError, match="p"):
        nd.random_negative_binomial(k=2, p=1.5)
    assert nd.random_generalized_negative_binomial(mu=3.0, alpha=0.0, shape=(5,)).shape == (5,)
