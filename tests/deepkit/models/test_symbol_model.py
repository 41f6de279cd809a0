"""SymbolModel: a model made of one engine symbol, its file format, and training by loss heads."""
import numpy as np
import pytest

import deepkit
from deepkit.models import SymbolModel, load_model
from deepkit_engine import symbol as sym


def _net():
    data = sym.Variable("data")
    fc = sym.FullyConnected(data, num_hidden=3, name="fc")
    return sym.SoftmaxOutput(fc, name="softmax")


def _arrays(seed=0):
    rng = np.random.default_rng(seed)
    return {"fc_weight": rng.normal(size=(3, 4)).astype(np.float32),
            "fc_bias": rng.normal(size=(3,)).astype(np.float32)}


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _model(seed=0):
    metadata = {"name": "tiny", "inputs": [{"name": "data", "shape": [1, 4]}],
                "preprocessing": {"scale": 0.5}}
    return SymbolModel.from_arrays(_net(), _arrays(seed), {}, metadata)


def test_predict_matches_numpy():
    model = _model()
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    w = _arrays()
    np.testing.assert_allclose(model.predict(x, batch_size=2),
                               _softmax(x @ w["fc_weight"].T + w["fc_bias"]), rtol=1e-5)
    assert [p.name for p in model.weights] == ["fc_bias", "fc_weight"]


def test_save_and_load_model_round_trip(tmp_path):
    model = _model()
    path = tmp_path / "tiny.h5"
    model.save(path)
    loaded = load_model(path)
    assert isinstance(loaded, SymbolModel) and loaded.name == "tiny"
    assert loaded.metadata["preprocessing"] == {"scale": 0.5}
    x = np.ones((2, 4), np.float32)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_training_follows_the_loss_heads_through_the_common_loop():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(120, 4)).astype(np.float32)
    y = (x @ rng.normal(size=(4, 3))).argmax(1).astype(np.float32)
    model = _model(seed=3)
    model.set_labels(["softmax_label"])
    model.compile(deepkit.optimizers.SGD(0.5 / 20))  # SoftmaxOutput's gradient is summed
    history = model.fit(x, y, batch_size=20, epochs=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0] * 0.7
    assert (model.predict(x).argmax(1) == y).mean() > 0.8


def test_labels_must_be_symbol_arguments():
    with pytest.raises(ValueError, match="no such argument.*softmax_label"):
        _model().set_labels(["labels"])
