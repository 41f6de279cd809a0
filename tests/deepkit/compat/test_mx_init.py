"""``mx.init``: MXNet's initializers as adapters over :mod:`deepkit.initializers`.

Each weight rule is checked against a numpy reference of MXNet's formula drawn
from a generator with the same seed, so the values must match exactly.
"""
import json
import math

import numpy as np
import pytest

import deepkit
from deepkit import initializers
from deepkit.compat import mx_init
from deepkit.compat import mxnet as mx
from deepkit_engine import nd

CONV = (8, 4, 3, 3)
FAN_IN, FAN_OUT = 4 * 9, 8 * 9


def _gen(seed=0):
    return np.random.default_rng(seed)


def _factor(factor_type):
    return {"avg": (FAN_IN + FAN_OUT) / 2.0, "in": FAN_IN, "out": FAN_OUT}[factor_type]


@pytest.mark.parametrize("factor_type", ["avg", "in", "out"])
@pytest.mark.parametrize("magnitude", [3, 2, 0.5])
def test_xavier_matches_mxnet_formula_exactly(factor_type, magnitude):
    scale = math.sqrt(magnitude / _factor(factor_type))
    got = mx.init.Xavier("uniform", factor_type, magnitude).generate("c_weight", CONV,
                                                                    rng=_gen())
    want = _gen().uniform(-scale, scale, CONV).astype(np.float32)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)
    got = mx.init.Xavier("gaussian", factor_type, magnitude).generate("c_weight", CONV,
                                                                     rng=_gen())
    want = _gen().normal(0.0, scale, CONV).astype(np.float32)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)


def test_default_xavier_and_msra_are_bit_exact():
    scale = math.sqrt(3.0 / _factor("avg"))
    got = mx.init.Xavier().generate("c_weight", CONV, rng=_gen(1))
    np.testing.assert_array_equal(got, _gen(1).uniform(-scale, scale, CONV).astype(np.float32))
    got = mx.init.MSRAPrelu("in", 0.0).generate("c_weight", CONV, rng=_gen(2))
    want = _gen(2).normal(0.0, math.sqrt(2.0 / FAN_IN), CONV).astype(np.float32)
    np.testing.assert_array_equal(got, want)


def test_xavier_is_core_variance_scaling():
    for rnd, factor, scale, dist in [("uniform", "avg", 1.0, "uniform"),
                                     ("gaussian", "out", 3.0, "untruncated_normal")]:
        mode = {"avg": "fan_avg", "out": "fan_out"}[factor]
        got = mx.init.Xavier(rnd, factor, 3).generate("fc_weight", (5, 7), rng=_gen(3))
        want = initializers.VarianceScaling(scale, mode, dist)((5, 7), np.float32, _gen(3))
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="cannot be applied to vector 'b_weight'"):
        mx.init.Xavier().generate("b_weight", (5,))
    with pytest.raises(ValueError, match="rnd_type"):
        mx.init.Xavier("normal")


def test_uniform_normal_constant_zero_one():
    np.testing.assert_array_equal(mx.init.Uniform(0.2).generate("w_weight", (3, 4), rng=_gen()),
                                  _gen().uniform(-0.2, 0.2, (3, 4)).astype(np.float32))
    np.testing.assert_array_equal(mx.init.Normal(0.3).generate("w_weight", (3, 4), rng=_gen()),
                                  _gen().normal(0.0, 0.3, (3, 4)).astype(np.float32))
    assert np.all(mx.init.Constant(1.5).generate("w_weight", (2, 3)) == 1.5)
    row = mx.init.Constant([1.0, 2.0, 3.0]).generate("w_weight", (2, 3))
    np.testing.assert_array_equal(row, [[1, 2, 3], [1, 2, 3]])
    assert np.all(mx.init.Zero().generate("w_weight", (2, 2)) == 0)
    assert np.all(mx.init.One().generate("w_weight", (2, 2)) == 1)


@pytest.mark.parametrize("rand_type", ["uniform", "normal"])
def test_orthogonal_matches_mxnet_svd(rand_type):
    shape = (6, 2, 2)
    src = _gen(4).uniform(-1.0, 1.0, (6, 4)) if rand_type == "uniform" \
        else _gen(4).normal(0.0, 1.0, (6, 4))
    u, _, v = np.linalg.svd(src, full_matrices=False)
    want = (1.414 * (u if u.shape == (6, 4) else v)).reshape(shape).astype(np.float32)
    got = mx.init.Orthogonal(rand_type=rand_type).generate("w_weight", shape, rng=_gen(4))
    np.testing.assert_array_equal(got, want)
    flat = got.reshape(6, 4).astype(np.float64) / 1.414
    np.testing.assert_allclose(flat.T @ flat, np.eye(4), atol=1e-5)


def test_bilinear_matches_mxnet_loop():
    shape = (2, 1, 4, 4)
    want = np.zeros(int(np.prod(shape)), np.float32)
    f = np.ceil(shape[3] / 2.0)
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    for i in range(want.size):
        x, y = i % shape[3], (i // shape[3]) % shape[2]
        want[i] = (1 - abs(x / f - c)) * (1 - abs(y / f - c))
    np.testing.assert_allclose(mx.init.Bilinear().generate("d_weight", shape),
                               want.reshape(shape), rtol=1e-6)
    # upsampling layers get bilinear kernels whatever the initializer
    np.testing.assert_allclose(mx.init.Zero().generate("upsampling0_weight", shape),
                               want.reshape(shape), rtol=1e-6)


def test_name_rules():
    init = mx.init.Uniform(0.5)
    for name in ("fc_bias", "bn_beta", "bn_moving_mean", "bn_moving_inv_var", "x_moving_avg",
                 "q_min"):
        assert np.all(init.generate(name, (3,)) == 0), name
    for name in ("bn_gamma", "bn_moving_var", "q_max"):
        assert np.all(init.generate(name, (3,)) == 1), name
    with pytest.raises(ValueError, match="Unknown initialization pattern for 'mystery'"):
        init.generate("mystery", (3,))
    desc = mx.init.InitDesc("mystery", {"__init__": mx.init.Normal(0.1).dumps()})
    np.testing.assert_array_equal(init.generate(desc, (2, 2), rng=_gen()),
                                  _gen().normal(0.0, 0.1, (2, 2)).astype(np.float32))


def test_seeded_generator_gives_the_same_values():
    arrays = []
    for _ in range(2):
        deepkit.set_seed(7)
        arr = nd.zeros((5, 6))
        mx.init.Xavier()("fc_weight", arr)
        arrays.append(arr.asnumpy())
    np.testing.assert_array_equal(*arrays)
    mx.random.seed(11)
    a = mx.init.Normal(1.0).generate("fc_weight", (4, 4))
    mx.random.seed(11)
    np.testing.assert_array_equal(a, mx.init.Normal(1.0).generate("fc_weight", (4, 4)))
    deepkit.set_seed(5)
    want = np.random.default_rng(5).uniform(-0.07, 0.07, (4, 4)).astype(np.float32)
    np.testing.assert_array_equal(mx.init.Uniform().generate("fc_weight", (4, 4)), want)


def test_dumps_create_register_and_deepkit_protocol():
    for init in (mx.init.Xavier("gaussian", "in", 2), mx.init.MSRAPrelu("out", 0.1),
                 mx.init.Uniform(0.3), mx.init.Normal(0.2), mx.init.Constant(4.0),
                 mx.init.Orthogonal(1.0, "normal")):
        name, kwargs = json.loads(init.dumps())
        assert name == type(init).__name__.lower() and isinstance(kwargs, dict)
        again = mx.init.create(init.dumps())
        np.testing.assert_array_equal(again.generate("w_weight", (4, 5), rng=_gen()),
                                      init.generate("w_weight", (4, 5), rng=_gen()))
    assert isinstance(mx.init.create("zeros"), mx.init.Zero)

    @mx.init.register
    class Twos(mx.init.Initializer):
        def _init_weight(self, name, shape, rng):
            return np.full(shape, 2.0)
    assert np.all(mx.init.create("twos").generate("w_weight", (2,)) == 2)
    # a core initializer becomes the weight rule; the name rules still apply
    wrapped = mx.init.create(initializers.Constant(3.0))
    assert np.all(wrapped.generate("w_weight", (2, 2)) == 3)
    assert np.all(wrapped.generate("w_bias", (2,)) == 0)
    # and MXNet initializers follow the core protocol init(shape, dtype, rng)
    out = mx.init.Uniform(0.1)((3, 2), np.float32, _gen())
    np.testing.assert_array_equal(out, _gen().uniform(-0.1, 0.1, (3, 2)).astype(np.float32))


def test_mixed_and_load(tmp_path):
    mixed = mx.init.Mixed(["fc1.*", ".*"], [mx.init.One(), mx.init.Zero()])
    assert np.all(mixed.generate("fc1_weight", (2, 2)) == 1)
    assert np.all(mixed.generate("fc2_weight", (2, 2)) == 0)
    with pytest.raises(ValueError, match="one initializer per pattern"):
        mx.init.Mixed([".*"], [])
    path = str(tmp_path / "p.params")
    nd.save(path, {"arg:fc_weight": nd.array(np.full((2, 2), 5.0)),
                   "aux:bn_moving_var": nd.array(np.full((2,), 6.0))})
    load = mx.init.Load(path, default_init=mx.init.One())
    assert np.all(load.generate("fc_weight", (2, 2)) == 5)
    assert np.all(load.generate("bn_moving_var", (2,)) == 6)
    assert np.all(load.generate("other_weight", (2,)) == 1)
    with pytest.raises(ValueError, match="has shape"):
        load.generate("fc_weight", (3, 3))
    with pytest.raises(ValueError, match="no default_init"):
        mx.init.Load({}).generate("x_weight", (1,))


def test_mx_init_has_no_function_local_imports():
    with open(mx_init.__file__) as f:
        assert "PLC0415" not in f.read()
