"""Initializers: fans, statistics on large samples (Keras 3 formulas), seeding, lookup, errors.

Statistical checks use bounds derived from the sample size: the sample mean of
``n`` draws lies within ``SIGMAS * sd / sqrt(n)`` of the true mean, and the
sample standard deviation within ``SIGMAS * sd * sqrt((kurtosis - 1) / (4n))``
of the true one (kurtosis 3 bounds every distribution used here).
"""
import json
import math

import numpy as np
import pytest

import deepkit
from deepkit import backend, initializers
from deepkit import layers as L

SIGMAS = 6.0
# Standard deviation of N(0, 1) truncated to [-2, 2] (the constant Keras divides by).
TRUNC_STD = 0.87962566103423978

DENSE = (300, 500)            # (units, in): fan_in 500, fan_out 300
CONV = (128, 64, 3, 3)        # (out, in, kh, kw): fan_in 576, fan_out 1152
CONV1D = (96, 40, 5)          # (out, in, k): fan_in 200, fan_out 480
FANS = {DENSE: (500, 300), CONV: (576, 1152), CONV1D: (200, 480)}

PUBLIC = [name for name in initializers.__all__
          if isinstance(getattr(initializers, name), type)
          and name != "Initializer"]


def _gen(seed=0):
    return np.random.default_rng(seed)


def _mean_tol(sd, n):
    return SIGMAS * sd / math.sqrt(n)


def _std_tol(sd, n):
    return SIGMAS * sd * math.sqrt(2.0 / (4 * n))


def assert_moments(x, mean, sd):
    """The sample mean and std of ``x`` match ``mean`` and ``sd`` within the sample error."""
    n = x.size
    got_mean, got_sd = float(x.astype(np.float64).mean()), float(x.astype(np.float64).std())
    assert abs(got_mean - mean) <= _mean_tol(sd, n), (got_mean, mean, n)
    assert abs(got_sd - sd) <= _std_tol(sd, n), (got_sd, sd, n)


def assert_uniform(x, low, high):
    """Every value in [low, high], both ends reached, flat moments."""
    assert x.min() >= low and x.max() <= high, (x.min(), x.max(), low, high)
    width = high - low
    slack = 20.0 / x.size * width  # P(no draw in the last slack) = exp(-20)
    assert x.min() <= low + slack and x.max() >= high - slack
    assert_moments(x, (low + high) / 2, width / math.sqrt(12.0))


def assert_truncated_normal(x, mean, stddev):
    """N(mean, stddev**2) cut at two stddevs: bounds reached but never passed, std shrunk."""
    assert np.abs(x - mean).max() <= 2 * stddev * (1 + 1e-6)
    assert np.abs(x - mean).max() >= 1.95 * stddev
    assert_moments(x, mean, stddev * TRUNC_STD)


def assert_untruncated_normal(x, sd):
    assert_moments(x, 0.0, sd)
    tail = float((np.abs(x) > 2 * sd).mean())  # 4.55 % for a normal, 0 when truncated
    assert abs(tail - 0.0455) <= SIGMAS * math.sqrt(0.0455 * 0.9545 / x.size), tail


# -- fans ---------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,fans", [
    ((), (1, 1)), ((7,), (7, 7)), ((3, 5), (5, 3)), ((8, 4, 3, 3), (36, 72)),
    ((6, 2, 5), (10, 30)), ((4, 3, 2, 2, 2), (24, 32)),
])
def test_compute_fans_reads_the_out_in_kernel_layout(shape, fans):
    assert initializers.compute_fans(shape) == fans


def test_conv_layer_kernel_is_out_in_kh_kw_so_fans_come_from_in_channels():
    conv = L.Conv2D(6, (3, 5))
    conv(deepkit.Input(shape=(4, 10, 10)))
    shape = conv.params["weight"].shape
    assert shape == (6, 4, 3, 5)
    assert initializers.compute_fans(shape) == (4 * 15, 6 * 15)


# -- constant initializers ----------------------------------------------------------------

@pytest.mark.parametrize("init,value", [
    (initializers.Zeros(), 0.0), (initializers.Ones(), 1.0),
    (initializers.Constant(-2.5), -2.5), (initializers.Constant(), 0.0),
], ids=["zeros", "ones", "constant", "constant_default"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_constant_initializers_fill_the_shape_with_their_value(init, value, dtype):
    out = init((3, 2, 4), dtype, _gen())
    assert out.shape == (3, 2, 4) and out.dtype == dtype
    np.testing.assert_array_equal(out, np.full((3, 2, 4), value, dtype))


def test_identity_is_gain_times_eye_also_when_not_square():
    np.testing.assert_array_equal(initializers.Identity()((4, 4), np.float32, _gen()),
                                  np.eye(4, dtype=np.float32))
    np.testing.assert_allclose(initializers.Identity(gain=0.5)((3, 5), np.float32, _gen()),
                               0.5 * np.eye(3, 5), rtol=0)


@pytest.mark.parametrize("shape", [(4, 4), (3, 7), (7, 3), (8, 2, 3, 3), (4, 3, 3, 3)],
                         ids=["square", "wide", "tall", "conv_tall", "conv_wide"])
@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_orthogonal_rows_or_columns_are_orthonormal_times_gain(shape, gain):
    w = initializers.Orthogonal(gain)(shape, np.float64, _gen(3))
    assert w.shape == shape
    m = w.reshape(shape[0], -1)
    gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(gram, gain ** 2 * np.eye(len(gram)), atol=1e-10)


def test_orthogonal_is_not_always_the_same_matrix():
    a = initializers.Orthogonal()((5, 5), np.float64, _gen(1))
    b = initializers.Orthogonal()((5, 5), np.float64, _gen(2))
    assert not np.allclose(a, b)
    assert not np.allclose(np.abs(a), np.eye(5))


def test_bilinear_matches_the_mxnet_upsampling_kernel():
    shape = (2, 1, 4, 4)
    w = initializers.Bilinear()(shape, np.float32, _gen())
    f = math.ceil(shape[3] / 2.0)
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    ref = np.zeros(int(np.prod(shape)))
    for i in range(ref.size):  # MXNet's element-wise definition
        x, y = i % shape[3], (i // shape[3]) % shape[2]
        ref[i] = (1 - abs(x / f - c)) * (1 - abs(y / f - c))
    np.testing.assert_allclose(w, ref.reshape(shape), rtol=1e-6)
    np.testing.assert_allclose(w[0, 0, :2, :2], [[0.0625, 0.1875], [0.1875, 0.5625]])


# -- random initializers ------------------------------------------------------------------

def test_random_normal_moments():
    x = initializers.RandomNormal(mean=0.3, stddev=0.2)((1000, 500), np.float32, _gen())
    assert x.dtype == np.float32
    assert_moments(x, 0.3, 0.2)
    tail = float((np.abs(x - 0.3) > 0.4).mean())
    assert tail > 0.04  # not truncated


def test_random_normal_keras_defaults():
    x = initializers.RandomNormal()((400_000,), np.float64, _gen())
    assert_moments(x, 0.0, 0.05)


@pytest.mark.parametrize("init,low,high", [
    (initializers.RandomUniform(), -0.05, 0.05),
    (initializers.RandomUniform(minval=1.0, maxval=3.0), 1.0, 3.0),
], ids=["default", "shifted"])
def test_random_uniform_bounds_and_moments(init, low, high):
    assert_uniform(init((500, 800), np.float32, _gen()), low, high)


@pytest.mark.parametrize("init,mean,stddev", [
    (initializers.TruncatedNormal(), 0.0, 0.05),
    (initializers.TruncatedNormal(mean=1.0, stddev=0.5), 1.0, 0.5),
], ids=["default", "shifted"])
def test_truncated_normal_redraws_beyond_two_stddevs(init, mean, stddev):
    assert_truncated_normal(init((1000, 400), np.float64, _gen()), mean, stddev)


def _fan(shape, mode):
    fan_in, fan_out = FANS[shape]
    return {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]


@pytest.mark.parametrize("shape", [DENSE, CONV, CONV1D], ids=["dense", "conv2d", "conv1d"])
@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("distribution", ["truncated_normal", "untruncated_normal", "uniform"])
@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_variance_scaling_every_mode_and_distribution(shape, mode, distribution, scale):
    x = initializers.VarianceScaling(scale, mode, distribution)(shape, np.float32, _gen(7))
    assert x.shape == shape and x.dtype == np.float32
    var = scale / _fan(shape, mode)
    if distribution == "uniform":
        limit = math.sqrt(3 * var)
        assert_uniform(x, -limit, limit)
    elif distribution == "truncated_normal":
        assert_truncated_normal(x, 0.0, math.sqrt(var) / TRUNC_STD)
        # the correction restores the requested variance
        assert abs(x.std() - math.sqrt(var)) <= _std_tol(math.sqrt(var), x.size)
    else:
        assert_untruncated_normal(x, math.sqrt(var))


def test_variance_scaling_normal_is_the_truncated_normal():
    """``'normal'`` (Keras 2's spelling) draws exactly what ``'truncated_normal'`` draws."""
    a = initializers.VarianceScaling(2.0, "fan_in", "normal")(CONV, np.float32, _gen(4))
    b = initializers.VarianceScaling(2.0, "fan_in", "truncated_normal")(CONV, np.float32, _gen(4))
    np.testing.assert_array_equal(a, b)


def test_variance_scaling_modes_give_different_scales():
    stds = {mode: initializers.VarianceScaling(1.0, mode, "untruncated_normal")(
        DENSE, np.float64, _gen()).std() for mode in ("fan_in", "fan_out", "fan_avg")}
    assert stds["fan_in"] < stds["fan_avg"] < stds["fan_out"]


def test_variance_scaling_on_empty_and_single_element_weights():
    # fan_out 0 is taken as 1 (Keras's max(1, fan)) rather than dividing by zero
    x = initializers.VarianceScaling(0.25, "fan_out", "uniform")((0, 5), np.float32, _gen())
    assert x.shape == (0, 5)
    y = initializers.VarianceScaling(0.25, "fan_in", "uniform")((1,), np.float32, _gen())
    assert y.shape == (1,) and 0 < abs(float(y[0])) <= math.sqrt(3 * 0.25)
    z = initializers.VarianceScaling(1.0, "fan_in", "truncated_normal")((), np.float64, _gen())
    assert z.shape == () and abs(float(z)) <= 2 / TRUNC_STD


NAMED = [
    # (class, Keras limit or stddev as a function of (fan_in, fan_out), distribution)
    (initializers.GlorotUniform, lambda i, o: math.sqrt(6 / (i + o)), "uniform"),
    (initializers.GlorotNormal, lambda i, o: math.sqrt(2 / (i + o)), "truncated_normal"),
    (initializers.HeUniform, lambda i, o: math.sqrt(6 / i), "uniform"),
    (initializers.HeNormal, lambda i, o: math.sqrt(2 / i), "truncated_normal"),
    (initializers.LecunUniform, lambda i, o: math.sqrt(3 / i), "uniform"),
    (initializers.LecunNormal, lambda i, o: math.sqrt(1 / i), "truncated_normal"),
]


@pytest.mark.parametrize("shape", [DENSE, CONV], ids=["dense", "conv2d"])
@pytest.mark.parametrize("cls,formula,distribution", NAMED, ids=[c[0].__name__ for c in NAMED])
def test_named_variance_scaling_initializers_follow_keras(cls, formula, distribution, shape):
    x = cls()(shape, np.float32, _gen(11))
    value = formula(*FANS[shape])
    if distribution == "uniform":
        assert_uniform(x, -value, value)
    else:
        # Keras: the target stddev divided by 0.8796 before cutting at two stddevs
        assert_truncated_normal(x, 0.0, value / TRUNC_STD)
        assert abs(x.std() - value) <= _std_tol(value, x.size)


# -- seeding ------------------------------------------------------------------------------

RANDOM = [initializers.RandomNormal(), initializers.RandomUniform(),
          initializers.TruncatedNormal(), initializers.GlorotUniform(),
          initializers.GlorotNormal(), initializers.HeUniform(), initializers.HeNormal(),
          initializers.LecunUniform(), initializers.LecunNormal(), initializers.Orthogonal(),
          initializers.VarianceScaling(2.0, "fan_avg", "untruncated_normal")]


@pytest.mark.parametrize("init", RANDOM, ids=[repr(i) for i in RANDOM])
def test_same_seed_same_values_other_seed_other_values(init):
    a = init((16, 8, 3, 3), np.float32, _gen(42))
    b = init((16, 8, 3, 3), np.float32, _gen(42))
    c = init((16, 8, 3, 3), np.float32, _gen(43))
    np.testing.assert_array_equal(a, b)
    assert np.mean(a == c) < 0.01


@pytest.mark.parametrize("init", RANDOM, ids=[repr(i) for i in RANDOM])
def test_set_seed_makes_the_global_generator_reproducible(init):
    deepkit.set_seed(2024)
    a = init((12, 10), np.float32, backend.rng())
    a_next = init((12, 10), np.float32, backend.rng())
    deepkit.set_seed(2024)
    b = init((12, 10), np.float32, backend.rng())
    deepkit.set_seed(2025)
    c = init((12, 10), np.float32, backend.rng())
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, a_next)  # the generator advances between draws
    assert not np.array_equal(a, c)


def _dense_kernels(seed, initializer):
    deepkit.set_seed(seed)
    model = deepkit.Sequential([L.Dense(20, input_shape=(30,), kernel_initializer=initializer),
                                L.Dense(5, kernel_initializer=initializer)])
    return [w for w in model.get_weights() if w.ndim == 2]


@pytest.mark.parametrize("initializer", ["glorot_uniform", "he_normal", "orthogonal"])
def test_layer_weights_follow_set_seed(initializer):
    a, b, c = _dense_kernels(9, initializer), _dense_kernels(9, initializer), \
        _dense_kernels(10, initializer)
    for wa, wb, wc in zip(a, b, c):
        np.testing.assert_array_equal(wa, wb)
        assert not np.array_equal(wa, wc)
    assert not np.array_equal(a[0][:5, :5], a[1][:5, :5])


def test_layer_draws_its_kernel_from_the_seeded_generator():
    deepkit.set_seed(77)
    kernel = deepkit.Sequential([L.Dense(6, input_shape=(9,),
                                         kernel_initializer="he_uniform")]).get_weights()[0]
    deepkit.set_seed(77)
    np.testing.assert_array_equal(
        kernel, initializers.HeUniform()((6, 9), np.float32, backend.rng()))


# -- lookup and serialization ---------------------------------------------------------------

@pytest.mark.parametrize("name,cls", [
    ("zeros", initializers.Zeros), ("ones", initializers.Ones),
    ("constant", initializers.Constant), ("random_normal", initializers.RandomNormal),
    ("random_uniform", initializers.RandomUniform),
    ("truncated_normal", initializers.TruncatedNormal),
    ("variance_scaling", initializers.VarianceScaling),
    ("glorot_uniform", initializers.GlorotUniform), ("glorot_normal", initializers.GlorotNormal),
    ("he_uniform", initializers.HeUniform), ("he_normal", initializers.HeNormal),
    ("lecun_uniform", initializers.LecunUniform), ("lecun_normal", initializers.LecunNormal),
    ("orthogonal", initializers.Orthogonal), ("identity", initializers.Identity),
    ("xavier", initializers.GlorotUniform), ("msra", initializers.HeNormal),
    ("bilinear", initializers.Bilinear), ("GlorotUniform", initializers.GlorotUniform),
    ("HeNormal", initializers.HeNormal), ("Orthogonal", initializers.Orthogonal),
])
def test_get_by_name(name, cls):
    assert type(initializers.get(name)) is cls


def test_get_passes_objects_and_callables_through():
    init = initializers.Constant(3.0)
    assert initializers.get(init) is init

    def fn(shape, dtype, rng):
        return np.zeros(shape, dtype)
    assert initializers.get(fn) is fn


def test_public_list_is_complete():
    assert set(PUBLIC) == {
        "Zeros", "Ones", "Constant", "RandomNormal", "RandomUniform", "TruncatedNormal",
        "VarianceScaling", "GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal",
        "LecunUniform", "LecunNormal", "Orthogonal", "Identity", "Bilinear"}


CONFIGURED = [
    initializers.Zeros(), initializers.Ones(), initializers.Constant(0.7),
    initializers.RandomNormal(0.1, 0.3), initializers.RandomUniform(-2.0, 1.0),
    initializers.TruncatedNormal(0.5, 0.01),
    initializers.VarianceScaling(0.5, "fan_out", "untruncated_normal"),
    initializers.GlorotUniform(), initializers.GlorotNormal(), initializers.HeUniform(),
    initializers.HeNormal(), initializers.LecunUniform(), initializers.LecunNormal(),
    initializers.Orthogonal(gain=1.5), initializers.Identity(gain=2.0), initializers.Bilinear(),
]


def test_configured_list_covers_every_public_initializer():
    assert {type(i).__name__ for i in CONFIGURED} == set(PUBLIC)


@pytest.mark.parametrize("init", CONFIGURED, ids=[type(i).__name__ for i in CONFIGURED])
def test_serialize_round_trip_through_json(init):
    data = json.loads(json.dumps(initializers.serialize(init)))
    assert data["class_name"] == type(init).__name__
    back = initializers.get(data)
    assert type(back) is type(init)
    assert back.get_config() == init.get_config()
    shape = (4, 1, 4, 4) if isinstance(init, initializers.Bilinear) else (6, 6)
    np.testing.assert_array_equal(back(shape, np.float32, _gen(5)),
                                  init(shape, np.float32, _gen(5)))


def test_config_holds_the_arguments():
    assert initializers.VarianceScaling(2.0, "fan_avg", "uniform").get_config() == {
        "scale": 2.0, "mode": "fan_avg", "distribution": "uniform"}
    assert initializers.RandomNormal(0.1, 0.2).get_config() == {"mean": 0.1, "stddev": 0.2}
    assert initializers.Constant(4).get_config() == {"value": 4.0}
    assert repr(initializers.Orthogonal(2.0)) == "Orthogonal(gain=2.0)"


def test_layer_config_keeps_its_initializer():
    dense = L.Dense(3, kernel_initializer=initializers.VarianceScaling(2.0, "fan_out"))
    clone = L.Dense.from_config(json.loads(json.dumps(dense.get_config())))
    assert type(clone.kernel_initializer) is initializers.VarianceScaling
    assert clone.kernel_initializer.get_config() == dense.kernel_initializer.get_config()


# -- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("make,message", [
    (lambda: initializers.VarianceScaling(scale=0.0), r"scale must be positive.*scale=0"),
    (lambda: initializers.VarianceScaling(scale=-1), r"Received: scale=-1"),
    (lambda: initializers.VarianceScaling(mode="fan"), r"Received: mode='fan'"),
    (lambda: initializers.VarianceScaling(distribution="gauss"),
     r"Received: distribution='gauss'"),
    (lambda: initializers.get("glorot_unifrom"),
     r"unknown initializer 'glorot_unifrom'.*did you mean 'glorot_uniform'"),
    (lambda: initializers.get({"class_name": "Nope", "config": {}}),
     r"unknown initializer class 'Nope'"),
    (lambda: initializers.get(3), r"cannot interpret 3 as an initializer"),
    (lambda: initializers.Orthogonal()((5,), np.float32, _gen()),
     r"Orthogonal needs a weight of rank >= 2, got shape \(5,\)"),
    (lambda: initializers.Identity()((2, 2, 2), np.float32, _gen()),
     r"Identity needs a 2-D weight, got shape \(2, 2, 2\)"),
    (lambda: initializers.Bilinear()((3, 3), np.float32, _gen()),
     r"Bilinear needs a 4-D weight, got shape \(3, 3\)"),
    (lambda: initializers.Constant("big"), r"Constant.*\bvalue\b"),
    (lambda: initializers.RandomNormal(stddev="wide"), r"RandomNormal.*\bstddev\b"),
], ids=["scale_zero", "scale_negative", "mode", "distribution", "misspelt_name",
        "unknown_class", "not_an_initializer", "orthogonal_rank", "identity_rank",
        "bilinear_rank", "constant_value", "normal_stddev"])
def test_bad_arguments_are_named(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_layer_reports_an_unknown_initializer_name():
    with pytest.raises(ValueError, match="unknown initializer 'he_norml'"):
        L.Dense(3, kernel_initializer="he_norml")(deepkit.Input(shape=(2,)))
