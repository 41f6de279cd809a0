"""nd.save / nd.load: round trips, atomic writes, clear errors for bad files."""
import h5py
import numpy as np
import pytest

import deepkit_engine as dk
from deepkit_engine.base import DeepkitError
from deepkit_engine.testing import assert_almost_equal

nd = dk.nd


def test_dict_roundtrip_keeps_keys_dtypes_and_values(tmp_path):
    data = {"fc1_weight": nd.array(np.random.rand(3, 4)),
            "conv/1": nd.array([1, 2, 3], dtype="int32"),
            "empty": nd.zeros((0, 2), dtype="float64")}
    path = tmp_path / "params.h5"
    nd.save(path, data)
    loaded = nd.load(path)
    assert set(loaded) == set(data)
    for k in data:
        assert loaded[k].dtype == data[k].dtype and loaded[k].shape == data[k].shape
        assert_almost_equal(loaded[k], data[k])


def test_list_roundtrip(tmp_path):
    arrays = [nd.ones((2, 2)), nd.arange(3)]
    nd.save(tmp_path / "a.h5", arrays)
    loaded = nd.load(tmp_path / "a.h5")
    assert isinstance(loaded, list) and len(loaded) == 2
    assert_almost_equal(loaded[1], np.arange(3.0))


def test_failed_save_leaves_the_old_file_intact(tmp_path):
    path = tmp_path / "keep.h5"
    nd.save(path, {"w": nd.ones(3)})
    with pytest.raises(TypeError, match="not an NDArray"):
        nd.save(path, {"w": nd.zeros(3), "bad": np.zeros(3)})
    assert_almost_equal(nd.load(path)["w"], np.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.h5"]  # no temp files left


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        nd.load(tmp_path / "missing.h5")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(DeepkitError, match="notes.txt is not an HDF5 file"):
        nd.load(text)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(DeepkitError, match="foreign.h5.*not written by nd.save"):
        nd.load(foreign)
    truncated = tmp_path / "truncated.h5"
    nd.save(truncated, [nd.ones((100, 100))])
    truncated.write_bytes(truncated.read_bytes()[:3000])
    with pytest.raises(DeepkitError, match="truncated.h5"):
        nd.load(truncated)
