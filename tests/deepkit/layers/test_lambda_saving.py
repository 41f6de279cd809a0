"""Lambda layers in model files: the function is found by name, never stored as code."""
import numpy as np
import pytest

import deepkit
from deepkit import layers
from deepkit.models import load_model
from deepkit_engine import symbol as sym
from deepkit_engine.base import DeepkitError


def scaled_square(x, factor=1.0):
    return sym.square(x) * factor


def _model(function, **kwargs):
    deepkit.set_seed(0)
    model = deepkit.Sequential([layers.Dense(4, input_shape=(3,)),
                                layers.Lambda(function, name="fn", **kwargs),
                                layers.Dense(2)])
    model.compile("sgd", "mse")
    return model


def test_a_named_function_with_arguments_round_trips(tmp_path):
    model = _model(scaled_square, arguments={"factor": 0.5}, output_shape=(4,))
    x = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
    model.save(tmp_path / "m.h5")
    back = load_model(tmp_path / "m.h5")  # this test module is imported: found there
    assert back.get_layer("fn").arguments == {"factor": 0.5}
    np.testing.assert_allclose(back.predict(x), model.predict(x), rtol=1e-6)
    by_name = load_model(tmp_path / "m.h5", custom_objects={"scaled_square": scaled_square})
    np.testing.assert_allclose(by_name.predict(x), model.predict(x), rtol=1e-6)


def test_a_lambda_needs_custom_objects_and_the_error_says_so(tmp_path):
    function = lambda x: sym.relu(x) * 2.0  # noqa: E731
    model = _model(function)
    x = np.random.default_rng(2).normal(size=(5, 3)).astype(np.float32)
    model.save(tmp_path / "m.h5")
    with pytest.raises(DeepkitError, match=r"Lambda 'fn'.*lambda.*custom_objects"):
        load_model(tmp_path / "m.h5")
    back = load_model(tmp_path / "m.h5", custom_objects={"<lambda>": function})
    np.testing.assert_allclose(back.predict(x), model.predict(x), rtol=1e-6)


def test_a_function_must_be_callable():
    with pytest.raises(TypeError, match="Lambda .*must be callable.*str"):
        layers.Lambda("sym.relu")
