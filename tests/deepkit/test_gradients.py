"""Hand-written gradients in Keras-style models: ``deepkit.custom_gradient`` in Lambda
layers and operators written in Python inside custom layers, trained with ``Model.fit``
and reloaded from a model file."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import deepkit
from deepkit import layers
from deepkit_engine import symbol as sym
from deepkit_engine.custom import define_op, remove_op


def _blobs(n=300, d=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x @ rng.normal(size=(d, classes))).argmax(1)
    return x, y


@deepkit.custom_gradient
def _stop_below(x):
    def grad(upstream):
        return upstream * 0
    return sym.identity(x), grad


@deepkit.custom_gradient
def _scaled_gradient(x):
    def grad(upstream):
        return upstream * 3
    return sym.identity(x), grad


def _model(middle):
    deepkit.set_seed(0)
    middle = middle if isinstance(middle, layers.Layer) else layers.Lambda(middle)
    model = deepkit.Sequential([layers.Dense(8, input_shape=(6,), name="below"),
                                middle, layers.Dense(3, activation="softmax", name="above")])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_lambda_with_custom_gradient_controls_what_fit_updates():
    x, y = _blobs()
    model = _model(_stop_below)
    below, above = model.get_layer("below").get_weights(), model.get_layer("above").get_weights()
    model.fit(x, y, batch_size=30, epochs=2, verbose=0)
    for before, after in zip(below, model.get_layer("below").get_weights()):
        np.testing.assert_array_equal(before, after)
    assert not np.allclose(above[0], model.get_layer("above").get_weights()[0])


def test_custom_gradient_scales_the_gradient_of_the_layers_below():
    x, y = _blobs()
    plain, scaled = _model(lambda t: sym.identity(t)), _model(_scaled_gradient)
    scaled.set_weights(plain.get_weights())
    start = plain.get_layer("below").get_weights()[0]
    plain.train_on_batch(x[:30], y[:30])
    scaled.train_on_batch(x[:30], y[:30])
    step_plain = plain.get_layer("below").get_weights()[0] - start
    step_scaled = scaled.get_layer("below").get_weights()[0] - start
    np.testing.assert_allclose(step_scaled, 3 * step_plain, rtol=1e-4, atol=1e-7)


@pytest.fixture
def py_swish():
    def forward(xp, x):
        return x / (1 + xp.exp(-x))

    def backward(xp, out_grads, inputs, outputs):
        x = inputs[0]
        s = 1 / (1 + xp.exp(-x))
        return [out_grads[0] * (s + x * s * (1 - s))]

    define_op("test_py_swish", forward, backward, backward_needs=("data",))
    yield
    remove_op("test_py_swish")


class _Swish(layers.Layer):
    def call(self, inputs):
        return sym.test_py_swish(inputs)


def test_custom_layer_with_a_python_op_trains_with_fit(py_swish):
    x, y = _blobs(600)
    deepkit.set_seed(0)
    model = deepkit.Sequential([layers.Dense(16, input_shape=(6,)), _Swish(),
                                layers.Dense(3, activation="softmax")])
    model.compile(deepkit.optimizers.Adam(learning_rate=0.01), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, batch_size=32, epochs=8, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert model.evaluate(x, y, verbose=0)[1] > 0.9


class _ScaledGradientLayer(layers.Layer):
    """Identity whose gradient is tripled: a custom layer built on ``custom_gradient``."""

    def call(self, inputs):
        return _scaled_gradient(inputs)


_RELOAD = '''
import sys
import numpy as np
import deepkit
from tests.deepkit.test_gradients import _ScaledGradientLayer, _blobs

model = deepkit.models.load_model(sys.argv[1],
                                  custom_objects={"_ScaledGradientLayer": _ScaledGradientLayer})
x, y = _blobs()
start = model.get_layer("below").get_weights()[0]
model.train_on_batch(x[:30], y[:30])
np.save(sys.argv[2], model.get_layer("below").get_weights()[0] - start)
'''


def test_model_with_a_custom_gradient_layer_reloads_from_its_config(tmp_path):
    x, y = _blobs()
    plain, scaled = _model(lambda t: sym.identity(t)), _model(_ScaledGradientLayer())
    scaled.set_weights(plain.get_weights())
    scaled.save(tmp_path / "scaled.h5", include_optimizer=False)
    objects = {"_ScaledGradientLayer": _ScaledGradientLayer}
    again = deepkit.models.load_model(tmp_path / "scaled.h5", custom_objects=objects)
    start = plain.get_layer("below").get_weights()[0]
    steps = []
    for model in (plain, scaled, again):
        model.train_on_batch(x[:30], y[:30])
        steps.append(model.get_layer("below").get_weights()[0] - start)
    # in a fresh process, which has the layer (and so the gradient function) by import
    script = tmp_path / "reload.py"
    script.write_text(_RELOAD)
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "scaled.h5"),
                           str(tmp_path / "step.npy")], cwd=root, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr
    steps.append(np.load(tmp_path / "step.npy"))
    np.testing.assert_allclose(steps[1], 3 * steps[0], rtol=1e-4, atol=1e-7)
    for step in steps[2:]:
        np.testing.assert_allclose(step, steps[1], rtol=1e-5, atol=1e-7)
