"""The loss and built-in accuracies of a CPU batch, computed in one queued numpy function."""
import numpy as np
import pytest

import deepkit
from deepkit import layers, metrics
from deepkit_engine.base import DeepkitError


def _fit(loss, y, metric_names, monkeypatch=None, host=True):
    if not host:
        monkeypatch.setattr(metrics, "HOST_METRICS", ())
    deepkit.set_seed(5)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 6)).astype(np.float32)
    model = deepkit.Sequential([layers.Dense(8, activation="relu", input_shape=(6,)),
                                layers.Dense(3, activation="softmax")])
    model.compile(deepkit.optimizers.SGD(0.1, momentum=0.9), loss, metrics=metric_names)
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0, validation_data=(x, y))
    return model, history.history


@pytest.mark.parametrize("loss,sparse", [("sparse_categorical_crossentropy", True),
                                         ("categorical_crossentropy", False)])
def test_host_metrics_equal_the_engine_ops(monkeypatch, loss, sparse):
    labels = np.random.default_rng(1).integers(0, 3, 90)
    y = labels if sparse else np.eye(3, dtype=np.float32)[labels]
    calls = []
    real = metrics.SparseCategoricalAccuracy.host_sums if sparse else \
        metrics.CategoricalAccuracy.host_sums

    def counting(self, y_true, y_pred):
        calls.append(len(y_pred))
        return real(self, y_true, y_pred)
    cls = metrics.SparseCategoricalAccuracy if sparse else metrics.CategoricalAccuracy
    monkeypatch.setattr(cls, "host_sums", counting)
    model, fast = _fit(loss, y, ["accuracy"])
    assert calls and sum(calls) == 2 * 3 * 90  # every training and validation row, 3 epochs
    _, slow = _fit(loss, y, ["accuracy"], monkeypatch, host=False)
    assert fast.keys() == slow.keys()
    for key in fast:
        np.testing.assert_allclose(fast[key], slow[key], rtol=1e-6, err_msg=key)
    # a running read in the middle of an epoch waits for the queued update
    logs = model.train_on_batch(np.zeros((4, 6), np.float32), y[:4], return_dict=True)
    assert 0.0 <= logs["accuracy"] <= 1.0 and np.isfinite(logs["loss"])


def test_other_metrics_keep_the_engine_ops(monkeypatch):
    labels = np.random.default_rng(1).integers(0, 3, 90)
    called = []
    monkeypatch.setattr(metrics.SparseCategoricalAccuracy, "host_sums",
                        lambda self, a, b: called.append(1))
    _, history = _fit("sparse_categorical_crossentropy", labels,
                      ["accuracy", "sparse_top_k_categorical_accuracy"])
    assert not called and len(history["sparse_top_k_categorical_accuracy"]) == 3


def test_label_shape_errors_are_raised_at_the_batch():
    model = deepkit.Sequential([layers.Dense(3, activation="softmax", input_shape=(6,))])
    model.compile("sgd", "mse", metrics=["categorical_accuracy"])
    with pytest.raises((ValueError, DeepkitError), match="categorical_accuracy|shape"):
        model.fit(np.zeros((8, 6), np.float32), np.zeros((8, 4), np.float32), verbose=0)
