"""BatchNormalization (training vs inference, freezing), LayerNormalization and LRN."""
import numpy as np
import pytest

import deepkit
from deepkit import layers as L
from deepkit.layers.normalization import LRN, BatchNormalization, LayerNormalization

EPS = 1e-3


def _model(layer, shape, before=None):
    inp = deepkit.Input(shape=shape, name="x")
    h = before(inp) if before is not None else inp
    return deepkit.Model(inp, layer(h))


def _bn_ref(x, gamma, beta, mean, var, axis, eps=EPS):
    view = [1] * x.ndim
    view[axis] = -1
    r = lambda a: np.asarray(a, np.float64).reshape(view)  # noqa: E731
    return (x - r(mean)) / np.sqrt(r(var) + eps) * r(gamma) + r(beta)


# -- BatchNormalization ----------------------------------------------------------------

@pytest.mark.parametrize("shape, axis, param_axis", [((3, 4, 5), None, 1), ((4, 5, 3), -1, 3),
                                                     ((6,), None, 1)])
def test_batchnorm_inference_uses_the_moving_statistics(rng, shape, axis, param_axis):
    bn = BatchNormalization(axis=axis, name="bn")
    model = _model(bn, shape)
    c = ((1,) + shape)[param_axis]
    assert [p.name for p in bn.weights] == ["bn_gamma", "bn_beta", "bn_moving_mean",
                                            "bn_moving_var"]
    assert all(p.shape == (c,) for p in bn.weights)
    assert [p.name for p in bn.trainable_weights] == ["bn_gamma", "bn_beta"]
    x = rng.normal(size=(3,) + shape).astype(np.float32)
    weights = [rng.uniform(0.5, 2, c), rng.normal(size=c), rng.normal(size=c),
               rng.uniform(0.5, 2, c)]
    model.initialize_weights()
    bn.set_weights(weights)
    np.testing.assert_allclose(model.predict(x), _bn_ref(x, *weights, param_axis),
                               rtol=1e-5, atol=1e-5)


def test_batchnorm_training_step_uses_batch_statistics_and_updates_moving_ones(rng):
    bn = BatchNormalization(momentum=0.9, name="bn")
    model = _model(bn, (3, 4))
    model.compile("sgd", "mse")
    x = (rng.normal(size=(8, 3, 4)) * 2 + 1).astype(np.float32)
    mean, var = x.mean(axis=(0, 2)), x.var(axis=(0, 2))
    loss = model.train_on_batch(x, np.zeros_like(x))
    # gamma=1, beta=0 before the step: the output is x normalised with the batch stats
    expected = _bn_ref(x, np.ones(3), np.zeros(3), mean, var, 1)
    np.testing.assert_allclose(loss, np.mean(expected ** 2), rtol=1e-5)
    _, _, moving_mean, moving_var = bn.get_weights()
    np.testing.assert_allclose(moving_mean, 0.1 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(moving_var, 0.9 + 0.1 * var, rtol=1e-5)


def test_batchnorm_moving_stats_change_in_fit_but_not_in_predict_or_evaluate(rng):
    bn = BatchNormalization(name="bn")
    model = _model(bn, (2, 3, 3))
    model.compile("sgd", "mse")
    x = (rng.normal(size=(16, 2, 3, 3)) + 3).astype(np.float32)
    y = rng.normal(size=x.shape).astype(np.float32)
    model.initialize_weights()
    before = bn.get_weights()
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    after_fit = bn.get_weights()
    for b, a in zip(before, after_fit):
        assert not np.array_equal(a, b)  # gamma, beta, moving mean and var all moved
    # moving_mean after two steps of momentum 0.99 from zero (exact for the mean,
    # which does not depend on gamma/beta)
    m1, m2 = x[:8].mean(axis=(0, 2, 3)), x[8:].mean(axis=(0, 2, 3))
    np.testing.assert_allclose(after_fit[2], 0.99 * 0.01 * m1 + 0.01 * m2, rtol=1e-5)
    out = model.predict(x, batch_size=5)
    model.evaluate(x, y, batch_size=16)
    for a, b in zip(after_fit, bn.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(out, _bn_ref(x, *after_fit, 1), rtol=1e-4, atol=1e-5)


def test_frozen_batchnorm_runs_in_inference_mode_and_changes_nothing(rng):
    dense = L.Dense(4, name="dense")
    bn = BatchNormalization(name="bn")
    model = _model(bn, (3, 4), before=dense)
    model.compile("sgd", "mse")
    x = rng.normal(size=(12, 3, 4)).astype(np.float32)
    y = rng.normal(size=(12, 3, 4)).astype(np.float32)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)  # training mode: stats move
    bn.trainable = False  # no recompile
    assert bn.trainable_weights == [] and not bn.params["gamma"].trainable
    frozen = bn.get_weights()
    dense_before = dense.get_weights()
    # a training step in a frozen layer computes what inference computes
    inference_loss = model.evaluate(x, y, batch_size=12)
    np.testing.assert_allclose(model.train_on_batch(x, y), inference_loss, rtol=1e-5)
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    for a, b in zip(frozen, bn.get_weights()):
        np.testing.assert_array_equal(a, b)  # bit for bit: gamma, beta and moving stats
    assert not np.array_equal(dense.get_weights()[0], dense_before[0])  # the rest trains
    bn.trainable = True
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert not np.array_equal(bn.get_weights()[2], frozen[2])


def test_batchnorm_without_center_or_scale(rng):
    x = rng.normal(size=(4, 3, 2)).astype(np.float32)
    for center, scale, names in [(False, True, ["gamma"]), (True, False, ["beta"]),
                                 (False, False, [])]:
        bn = BatchNormalization(center=center, scale=scale)
        model = _model(bn, (3, 2))
        assert [p.short_name for p in bn.trainable_weights] == names
        model.initialize_weights()
        values = {"gamma": np.array([2.0, 3.0, 4.0]), "beta": np.array([1.0, -1.0, 0.5]),
                  "moving_mean": np.array([0.1, 0.2, 0.3]),
                  "moving_var": np.array([1.5, 0.5, 2.0])}
        bn.set_weights([values[k] for k in bn.params])
        gamma = values["gamma"] if scale else np.ones(3)
        beta = values["beta"] if center else np.zeros(3)
        np.testing.assert_allclose(
            model.predict(x), _bn_ref(x, gamma, beta, values["moving_mean"],
                                      values["moving_var"], 1), rtol=1e-5, atol=1e-6)
        if names:  # the learned parameters train
            model.compile("sgd", "mse")
            model.fit(x, rng.normal(size=x.shape), batch_size=4, verbose=0)
            assert not np.array_equal(bn.params[names[0]].data.asnumpy(), values[names[0]])


def test_batchnorm_channels_last_setting_and_config_round_trip():
    deepkit.backend.set_image_data_format("channels_last")
    try:
        bn = BatchNormalization(momentum=0.9, epsilon=1e-5, gamma_regularizer="l2",
                                beta_constraint="non_neg", name="bn")
    finally:
        deepkit.backend.set_image_data_format("channels_first")
    assert bn.axis == -1
    config = bn.get_config()
    clone = BatchNormalization.from_config(config)
    assert clone.get_config() == config and clone.axis == -1
    assert config["momentum"] == 0.9 and config["epsilon"] == 1e-5


def test_batchnorm_save_and_load_keeps_the_moving_statistics(rng, tmp_path):
    model = _model(BatchNormalization(name="bn"), (3,))
    model.compile("sgd", "mse")
    x = rng.normal(size=(8, 3)).astype(np.float32) + 2
    model.fit(x, x, batch_size=4, verbose=0)
    path = tmp_path / "bn.h5"
    model.save(path)
    loaded = deepkit.load_model(path, custom_objects={"BatchNormalization":
                                                      BatchNormalization})
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_batchnorm_errors():
    with pytest.raises(ValueError, match=r"'momentum' must be a number in \[0.0, 1.0\]. "
                                         r"Received: momentum=1.5"):
        BatchNormalization(momentum=1.5)
    with pytest.raises(ValueError, match=r"'axis' must be an int.*Received: axis=\[1, 2\]"):
        BatchNormalization(axis=[1, 2])
    with pytest.raises(ValueError, match="'bn'.*axis 0 is the batch axis"):
        _model(BatchNormalization(axis=0, name="bn"), (3,))
    with pytest.raises(ValueError, match=r"axis 3 is out of range.*\(None, 3, 4\)"):
        _model(BatchNormalization(axis=3), (3, 4))
    with pytest.raises(TypeError, match="unknown argument 'momentun'"):
        BatchNormalization(momentun=0.9)


# -- LayerNormalization ----------------------------------------------------------------

def _ln_ref(x, axes, gamma=1.0, beta=0.0, eps=EPS):
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def test_layernorm_last_axis_matches_numpy(rng):
    ln = LayerNormalization(name="ln")
    model = _model(ln, (3, 5))
    assert [p.name for p in ln.weights] == ["ln_gamma", "ln_beta"]
    x = rng.normal(size=(4, 3, 5)).astype(np.float32) * 3 + 1
    model.initialize_weights()
    gamma, beta = rng.normal(size=5), rng.normal(size=5)
    ln.set_weights([gamma, beta])
    np.testing.assert_allclose(model.predict(x), _ln_ref(x, -1, gamma, beta), rtol=1e-4,
                               atol=1e-5)


def test_layernorm_several_axes_rms_and_no_center(rng):
    x = rng.normal(size=(4, 3, 5)).astype(np.float32) + 0.5
    ln = LayerNormalization(axis=[1, 2])
    model = _model(ln, (3, 5))
    assert ln.params["gamma"].shape == (3, 5)
    model.initialize_weights()
    gamma, beta = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    ln.set_weights([gamma, beta])
    np.testing.assert_allclose(model.predict(x), _ln_ref(x, (1, 2), gamma, beta), rtol=1e-4,
                               atol=1e-5)

    rms = LayerNormalization(rms_scaling=True, epsilon=1e-5)
    model = _model(rms, (3, 5))
    assert list(rms.params) == ["gamma"]
    expected = x / np.sqrt((x ** 2).mean(axis=-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-4, atol=1e-5)

    plain = LayerNormalization(axis=1, center=False, scale=False)
    model = _model(plain, (3, 5))
    assert plain.params == {}
    np.testing.assert_allclose(model.predict(x), _ln_ref(x, 1), rtol=1e-4, atol=1e-5)


def test_layernorm_trains_and_round_trips_config(rng):
    ln = LayerNormalization(axis=[1, 2], epsilon=1e-4, gamma_regularizer="l2")
    model = _model(ln, (2, 3), before=L.Dense(3))
    model.compile("sgd", "mse")
    x = rng.normal(size=(8, 2, 3)).astype(np.float32)
    model.initialize_weights()
    before = ln.get_weights()
    model.fit(x, x, batch_size=4, verbose=0)
    assert not np.array_equal(before[0], ln.get_weights()[0])
    config = ln.get_config()
    assert LayerNormalization.from_config(config).get_config() == config


def test_layernorm_errors():
    with pytest.raises(ValueError, match="'epsilon' must be a number > 0.0. Received: "
                                         "epsilon=0"):
        LayerNormalization(epsilon=0)
    with pytest.raises(ValueError, match="'axis' must be an int or a non-empty list"):
        LayerNormalization(axis="last")
    with pytest.raises(ValueError, match="batch axis"):
        _model(LayerNormalization(axis=[0, 1]), (3,))


# -- LRN -------------------------------------------------------------------------------

def _lrn_ref(x, n, k, alpha, beta):
    half = n // 2
    sq = np.pad(x.astype(np.float64) ** 2, [(0, 0), (half, half)] + [(0, 0)] * (x.ndim - 2))
    window = sum(sq[:, i:i + x.shape[1]] for i in range(n))
    return x / (k + alpha / n * window) ** beta


def test_lrn_matches_the_caffe_formula(rng):
    lrn = LRN(n=3, k=1.0, alpha=0.5, beta=0.75, name="lrn")
    model = _model(lrn, (5, 2, 3))
    assert lrn.count_params() == 0
    x = rng.normal(size=(2, 5, 2, 3)).astype(np.float32) * 2
    np.testing.assert_allclose(model.predict(x), _lrn_ref(x, 3, 1.0, 0.5, 0.75), rtol=1e-5,
                               atol=1e-6)


def test_lrn_channels_last_and_config(rng):
    lrn = LRN(n=5, data_format="channels_last")
    model = _model(lrn, (2, 3, 6))
    x = rng.normal(size=(2, 2, 3, 6)).astype(np.float32)
    expected = _lrn_ref(x.transpose(0, 3, 1, 2), 5, 2.0, 1e-4, 0.75).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5, atol=1e-6)
    config = lrn.get_config()
    assert config["n"] == 5 and config["k"] == 2.0 and config["data_format"] == "channels_last"
    assert LRN.from_config(config).get_config() == config


def test_lrn_errors():
    with pytest.raises(ValueError, match="'n' must be a positive odd int. Received: n=4"):
        LRN(n=4)
    with pytest.raises(ValueError, match="rank >= 3"):
        _model(LRN(), (3,))
    with pytest.raises(ValueError, match="data_format"):
        LRN(data_format="NCHW")
