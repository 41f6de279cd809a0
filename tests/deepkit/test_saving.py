"""Saving: whole models and weights, exact round trips, resumption, clear errors."""
import h5py
import numpy as np
import pytest

import deepkit
from deepkit import layers as L
from deepkit_engine.base import DeepkitError


def _data(n=128, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    return x, (x.sum(1) > 0).astype(np.int64)


def _functional():
    inp = deepkit.Input(shape=(6,), name="features")
    h = L.Dense(8, activation="tanh", name="h")(inp)
    out = L.Dense(2, activation="softmax", name="probs")(h)
    model = deepkit.Model(inp, out, name="net")
    model.compile(deepkit.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


@pytest.mark.parametrize("kind", ["functional", "sequential"])
def test_round_trip_reproduces_predictions_exactly(kind, tmp_path):
    x, y = _data()
    if kind == "functional":
        model = _functional()
    else:
        model = deepkit.Sequential([L.Dense(8, activation="relu", input_shape=(6,)),
                                    L.Dense(2, activation="softmax")])
        model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    path = tmp_path / "model.h5"
    model.save(path)
    loaded = deepkit.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
    with h5py.File(path) as f:  # no pickle anywhere: JSON attributes and arrays only
        assert "model_config" in f.attrs and "weights" in f


def test_resumed_training_is_bit_identical(tmp_path):
    x, y = _data()
    deepkit.set_seed(5)
    straight = _functional()
    straight.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)
    deepkit.set_seed(5)
    first = _functional()
    first.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    first.save(tmp_path / "ckpt.h5")
    resumed = deepkit.load_model(tmp_path / "ckpt.h5")
    assert resumed.optimizer.iterations == 4
    resumed.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_weights_by_layer_name_and_mismatches_listed(tmp_path):
    model = _functional()
    model.save_weights(tmp_path / "w.h5")
    twin = _functional()
    twin.load_weights(tmp_path / "w.h5")
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(a, b)
    inp = deepkit.Input(shape=(6,), name="features")
    other = deepkit.Model(inp, L.Dense(3, name="probs")(L.Dense(8, name="h")(inp)))
    with pytest.raises(DeepkitError, match=r"'probs/weight': file has shape \(2, 8\), the model "
                                           r"\(3, 8\)"):
        other.load_weights(tmp_path / "w.h5")
    with pytest.warns(UserWarning, match="skipped"):
        other.load_weights(tmp_path / "w.h5", skip_mismatch=True)
    np.testing.assert_array_equal(other.get_layer("h").get_weights()[0],
                                  model.get_layer("h").get_weights()[0])


def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    model = _functional()
    path = tmp_path / "keep.h5"
    model.save(path)
    before = path.read_bytes()
    import deepkit.saving as saving  # noqa: PLC0415

    def broken(group, m):
        raise RuntimeError("disk full")
    monkeypatch.setattr(saving, "_write_weights", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.h5"]


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.h5"):
        deepkit.load_model(tmp_path / "nothing.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(DeepkitError, match="text.h5 is not an HDF5 file"):
        deepkit.load_model(tmp_path / "text.h5")
    model = _functional()
    model.save_weights(tmp_path / "weights_only.h5")
    with pytest.raises(DeepkitError, match="not a deepkit model file"):
        deepkit.load_model(tmp_path / "weights_only.h5")
