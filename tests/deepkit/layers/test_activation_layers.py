"""Advanced activation layers against numpy; PReLU's slopes; configs and errors."""
import math

import numpy as np
import pytest

import deepkit
from deepkit.layers.activation_layers import (ELU, GELU, LeakyReLU, PReLU, ReLU, Softmax,
                                              ThresholdedReLU)

_erf = np.vectorize(math.erf)


def _predict(layer, x):
    inp = deepkit.Input(shape=x.shape[1:])
    model = deepkit.Model(inp, layer(inp))
    assert layer.output_shape == (None,) + x.shape[1:]
    return model.predict(x)


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _keras_relu(x, max_value, slope, threshold):
    y = np.where(x >= threshold, x, slope * (x - threshold))
    return y if max_value is None else np.minimum(y, max_value)


CASES = [
    (LeakyReLU, {}, lambda x: np.where(x >= 0, x, 0.3 * x)),
    (LeakyReLU, {"negative_slope": 0.1}, lambda x: np.where(x >= 0, x, 0.1 * x)),
    (LeakyReLU, {"alpha": 0.2}, lambda x: np.where(x >= 0, x, 0.2 * x)),
    (ELU, {}, lambda x: np.where(x > 0, x, np.exp(x) - 1)),
    (ELU, {"alpha": 0.5}, lambda x: np.where(x > 0, x, 0.5 * (np.exp(x) - 1))),
    (ReLU, {}, lambda x: np.maximum(x, 0)),
    (ReLU, {"max_value": 1.0}, lambda x: np.clip(x, 0, 1.0)),
    (ReLU, {"negative_slope": 0.1, "threshold": 0.5},
     lambda x: _keras_relu(x, None, 0.1, 0.5)),
    (ReLU, {"max_value": 1.2, "negative_slope": 0.2, "threshold": 0.3},
     lambda x: _keras_relu(x, 1.2, 0.2, 0.3)),
    (ReLU, {"max_value": 1.0, "threshold": 0.5}, lambda x: _keras_relu(x, 1.0, 0.0, 0.5)),
    (Softmax, {}, lambda x: _softmax(x, -1)),
    (Softmax, {"axis": 1}, lambda x: _softmax(x, 1)),
    (ThresholdedReLU, {}, lambda x: np.where(x > 1.0, x, 0)),
    (ThresholdedReLU, {"theta": 0.2}, lambda x: np.where(x > 0.2, x, 0)),
    (GELU, {}, lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2)))),
    (GELU, {"approximate": True},
     lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
]


@pytest.mark.parametrize("cls, kwargs, reference", CASES,
                         ids=[f"{c.__name__}-{k}" for c, k, _ in CASES])
def test_activation_matches_numpy_and_round_trips_config(rng, cls, kwargs, reference):
    x = (rng.normal(size=(3, 4, 5)) * 2).astype(np.float32)
    layer = cls(**kwargs)
    np.testing.assert_allclose(_predict(layer, x), reference(x.astype(np.float64)),
                               rtol=1e-5, atol=1e-6)
    assert layer.count_params() == 0
    config = layer.get_config()
    assert cls.from_config(config).get_config() == config


def test_leaky_relu_config_uses_the_keras3_name():
    config = LeakyReLU(alpha=0.25).get_config()
    assert config["negative_slope"] == 0.25 and "alpha" not in config


def test_prelu_learns_one_slope_per_channel(rng):
    layer = PReLU(name="prelu")
    inp = deepkit.Input(shape=(3, 2, 2))
    model = deepkit.Model(inp, layer(inp))
    assert [(p.name, p.shape) for p in layer.weights] == [("prelu_gamma", (3,))]
    x = rng.normal(size=(4, 3, 2, 2)).astype(np.float32)
    model.initialize_weights()
    np.testing.assert_array_equal(layer.get_weights()[0], 0)  # Keras's 'zeros': a ReLU
    slopes = np.array([0.1, 0.5, 2.0])
    layer.set_weights([slopes])
    expected = np.where(x >= 0, x, slopes.reshape(1, 3, 1, 1) * x)
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-6)
    model.compile("sgd", "mse")
    model.fit(x, np.zeros_like(x), batch_size=4, verbose=0)
    learned = layer.get_weights()[0]
    # d(mean(y^2))/d(slope_c) = mean over the negatives of channel c of 2 * slope_c * x^2 > 0
    assert np.all(learned < slopes)


@pytest.mark.parametrize("kwargs, shape, param_shape, view", [
    ({"data_format": "channels_last"}, (2, 3, 4), (4,), (1, 1, 1, 4)),
    ({"shared_axes": [1, 2]}, (2, 3, 4), (1, 1, 4), (1, 1, 1, 4)),
    ({"shared_axes": []}, (2, 3), (2, 3), (1, 2, 3)),
    ({}, (5,), (5,), (1, 5)),
])
def test_prelu_layouts(rng, kwargs, shape, param_shape, view):
    layer = PReLU(**kwargs)
    inp = deepkit.Input(shape=shape)
    model = deepkit.Model(inp, layer(inp))
    assert layer.params["gamma"].shape == param_shape
    model.initialize_weights()
    slopes = rng.uniform(0.1, 1, param_shape)
    layer.set_weights([slopes])
    x = rng.normal(size=(3,) + shape).astype(np.float32)
    expected = np.where(x >= 0, x, slopes.reshape(view) * x)
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5, atol=1e-7)
    model.compile("sgd", "mse")
    model.fit(x, np.zeros_like(x), batch_size=3, verbose=0)
    assert not np.array_equal(layer.get_weights()[0], slopes)
    config = layer.get_config()
    assert PReLU.from_config(config).get_config() == config


def test_activation_layer_errors():
    with pytest.raises(ValueError, match="LeakyReLU: 'negative_slope' must be a number >= "
                                         "0.0. Received: negative_slope=-0.1"):
        LeakyReLU(negative_slope=-0.1)
    with pytest.raises(ValueError, match="not both"):
        LeakyReLU(negative_slope=0.1, alpha=0.2)
    with pytest.raises(ValueError, match="ReLU: 'max_value' must be a number >= 0.0. "
                                         "Received: max_value=-1"):
        ReLU(max_value=-1)
    with pytest.raises(ValueError, match="'threshold' must be a number >= 0.0"):
        ReLU(threshold=-0.5)
    with pytest.raises(ValueError, match="ThresholdedReLU: 'theta' must be a number >= 0.0"):
        ThresholdedReLU(theta=-1)
    with pytest.raises(ValueError, match="'axis' must be an int. Received: axis='last'"):
        Softmax(axis="last")
    inp = deepkit.Input(shape=(3,))
    with pytest.raises(ValueError, match=r"axis 0 must be a non-batch axis.*\(None, 3\)"):
        Softmax(axis=0)(inp)
    with pytest.raises(ValueError, match="'shared_axes' must be None or a list of axes >= 1"):
        PReLU(shared_axes=[0])
    with pytest.raises(ValueError, match=r"beyond the input's rank 2"):
        PReLU(shared_axes=[2])(inp)
    with pytest.raises(ValueError, match="ELU: 'alpha' must be a number"):
        ELU(alpha="one")
