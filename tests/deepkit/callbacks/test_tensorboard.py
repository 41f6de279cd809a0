"""TensorBoard: event files that tensorboard's own reader reads back."""
import numpy as np
import pytest

import deepkit
from deepkit import callbacks as cbs
from deepkit import layers as L

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator",
    reason="tensorboard is in the test extra; install deepkit[test]")


def _fit(log_dir, epochs=3, **kwargs):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = deepkit.Sequential([L.Dense(4, activation="relu", input_shape=(5,), name="hidden"),
                                L.Dense(2, activation="softmax", name="out")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    board = cbs.TensorBoard(log_dir, **kwargs)
    history = model.fit(x, y, batch_size=16, epochs=epochs, verbose=0, callbacks=[board],
                        validation_split=0.25)
    return history


def _read(folder):
    acc = event_accumulator.EventAccumulator(str(folder), size_guidance={"histograms": 0})
    acc.Reload()
    return acc


def test_epoch_scalars_read_back_equal_the_history(tmp_path):
    history = _fit(tmp_path, histogram_freq=1)
    train, val = _read(tmp_path / "train"), _read(tmp_path / "validation")
    assert {"epoch_loss", "epoch_accuracy"} <= set(train.Tags()["scalars"])
    losses = [e.value for e in train.Scalars("epoch_loss")]
    np.testing.assert_allclose(losses, history.history["loss"], rtol=1e-6)
    val_acc = [e.value for e in val.Scalars("epoch_accuracy")]
    np.testing.assert_allclose(val_acc, history.history["val_accuracy"], rtol=1e-6)
    assert [e.step for e in train.Scalars("epoch_loss")] == [0, 1, 2]


def test_histograms_and_the_graph_are_written(tmp_path):
    _fit(tmp_path, epochs=2, histogram_freq=1)
    train = _read(tmp_path / "train")
    assert "hidden_weight" in train.Tags()["histograms"]
    histo = train.Histograms("hidden_weight")[0].histogram_value
    assert histo.num == 20 and histo.min <= histo.max
    graph = train.Graph()
    names = {node.name for node in graph.node}
    assert "hidden_weight" in names and any(node.op == "FullyConnected" for node in graph.node)


def test_batch_scalars_with_update_freq(tmp_path):
    _fit(tmp_path, epochs=1, update_freq=2)
    train = _read(tmp_path / "train")
    steps = [e.step for e in train.Scalars("batch_loss")]
    assert steps == [2]  # 48 training samples, batch 16: 3 batches, every 2nd logged


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="update_freq"):
        cbs.TensorBoard(update_freq="often")
    with pytest.raises(ValueError, match="histogram_freq"):
        cbs.TensorBoard(histogram_freq=-1)
