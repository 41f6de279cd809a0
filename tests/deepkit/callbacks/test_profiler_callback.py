"""callbacks.Profiler and fit(profile_batches=...): a window of batches, profiled to files."""
import json

import numpy as np
import pytest

import deepkit
from deepkit import callbacks as cbs
from deepkit import layers as L
from deepkit_engine import engine as engine_mod

pytestmark = pytest.mark.timeout(120)


class BatchTimes(cbs.Callback):
    """Records, per batch, whether the profiler was running as the batch began."""

    def __init__(self):
        super().__init__()
        self.running = []

    def on_train_batch_begin(self, batch, logs=None):
        self.running.append(engine_mod._profiler is not None)


def _model():
    model = deepkit.Sequential([L.Dense(8, activation="relu", input_shape=(4,), name="hidden"),
                                L.Dense(2, name="out")])
    model.compile("sgd", "mse")
    return model


def _data(n=40):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4)).astype(np.float32), rng.normal(size=(n, 2)).astype(np.float32)


def test_profiles_exactly_the_window_across_epochs(tmp_path):
    x, y = _data()  # 5 batches of 8 per epoch
    path = tmp_path / "logs" / "trace.json"
    prof = cbs.Profiler(batches=(4, 7), filename=str(path))
    probe = BatchTimes()
    _model().fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[prof, probe])
    assert probe.running == [False] * 3 + [True] * 4 + [False] * 3
    assert engine_mod._profiler is None
    doc = json.loads(path.read_text())
    batches = sorted(e["args"]["batch"] for e in doc["traceEvents"]
                     if e.get("cat") == "user")
    assert batches == [4, 5, 6, 7]
    stats = prof.profile.stats()
    passes = {r["name"]: r["count"] for r in stats["executor_passes"]}
    assert passes["executor forward"] == 4 and passes["executor backward"] == 4
    layers = {r["name"] for r in stats["layers"]}
    assert {"hidden", "out"} <= layers
    table = (tmp_path / "logs" / "trace.txt").read_text()
    assert "operator: forward" in table and "FullyConnected" in table
    assert prof.trace_path == str(path) and prof.table_path.endswith("trace.txt")


def test_nothing_is_written_when_training_ends_before_the_window(tmp_path):
    x, y = _data(16)
    path = tmp_path / "trace.json"
    prof = cbs.Profiler(batches=(10, 12), filename=str(path))
    _model().fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[prof])
    assert not path.exists() and prof.profile is None
    assert engine_mod._profiler is None


def test_a_window_cut_short_by_the_end_of_training_is_written(tmp_path):
    x, y = _data(16)
    path = tmp_path / "trace.json"
    prof = cbs.Profiler(batches=(2, 9), filename=str(path))
    _model().fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[prof])
    assert path.exists() and engine_mod._profiler is None
    passes = {r["name"]: r["count"] for r in prof.profile.stats()["executor_passes"]}
    assert passes["executor forward"] == 1


def test_fit_profile_batches_appends_the_callback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    x, y = _data(24)
    _model().fit(x, y, batch_size=8, epochs=1, verbose=0, profile_batches=2)
    doc = json.loads((tmp_path / "profile.json").read_text())
    assert [e["args"]["batch"] for e in doc["traceEvents"] if e.get("cat") == "user"] == [2]
    assert "FullyConnected" in (tmp_path / "profile.txt").read_text()


@pytest.mark.parametrize("bad", [(0, 3), (5, 2), "10,20", (1.0, 2), True])
def test_bad_windows_name_the_argument(bad):
    with pytest.raises(ValueError, match="'batches'"):
        cbs.Profiler(batches=bad)
    x, y = _data(8)
    with pytest.raises(ValueError, match="'profile_batches'"):
        _model().fit(x, y, batch_size=8, verbose=0, profile_batches=bad)
