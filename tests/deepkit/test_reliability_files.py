"""Damaged and hostile model/array files: every failure a FileFormatError naming file and object."""
import json
import pathlib
import time

import h5py
import numpy as np
import pytest

import deepkit
from deepkit import layers as L
from deepkit_engine.base import DeepkitError, FileFormatError

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def _model():
    model = deepkit.Sequential([L.Dense(8, activation="relu", input_shape=(4,), name="h"),
                                L.Dense(3, activation="softmax", name="out")], name="net")
    model.compile(deepkit.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    model.fit(x, np.arange(32) % 3, batch_size=8, verbose=0)
    return model


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "m.h5"
    _model().save(path)
    return path


def test_file_format_error_is_public_and_a_deepkit_error():
    assert deepkit.FileFormatError is FileFormatError
    assert issubclass(FileFormatError, DeepkitError) and issubclass(FileFormatError, ValueError)


def _data_offset(path, name):
    with h5py.File(path, "r") as f:
        return f[name].id.get_offset()


@pytest.mark.parametrize("bit", range(0, 32 * 8, 37))
def test_a_flipped_bit_in_weight_data_is_reported(saved, bit):
    offset = _data_offset(saved, "weights/h/weight")
    data = bytearray(saved.read_bytes())
    data[offset + bit // 8] ^= 1 << (bit % 8)
    saved.write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match=r"weights/h/weight.*checksum mismatch") as err:
        deepkit.load_model(saved)
    assert str(saved) in str(err.value)


def test_declared_shape_is_checked_before_any_data_is_read(saved):
    with h5py.File(saved, "a") as f:
        del f["weights/h/weight"]
        f.create_dataset("weights/h/weight", shape=(1 << 28, 2), dtype="f4", chunks=(1024, 2))
    assert saved.stat().st_size < 1 << 20  # the file declares 2 GiB but holds almost nothing
    start = time.perf_counter()
    with pytest.raises(DeepkitError, match=r"'h/weight': file has shape \(268435456, 2\)"):
        deepkit.load_model(saved)
    assert time.perf_counter() - start < 5


def test_negative_optimizer_iterations_are_refused(saved):
    with h5py.File(saved, "a") as f:
        f["optimizer"].attrs["iterations"] = -1
    with pytest.raises(FileFormatError, match=r"optimizer@iterations.*>= 0, found -1"):
        deepkit.load_model(saved)


def test_missing_optimizer_state_is_an_error_unless_compile_false(saved):
    with h5py.File(saved, "a") as f:
        del f["optimizer/states/h_weight"]
    with pytest.raises(FileFormatError, match=r"optimizer/states/h_weight.*is missing"):
        deepkit.load_model(saved)
    assert deepkit.load_model(saved, compile=False).optimizer is None
    with h5py.File(saved, "a") as f:
        del f["optimizer"]
    with pytest.raises(FileFormatError, match=r"\(optimizer\).*compile=False"):
        deepkit.load_model(saved)


def test_a_model_saved_without_optimizer_loads(tmp_path):
    path = tmp_path / "m.h5"
    _model().save(path, include_optimizer=False)
    assert deepkit.load_model(path).optimizer is not None


def test_external_links_are_refused(saved, tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["w"] = np.zeros((8, 4), np.float32)
    with h5py.File(saved, "a") as f:
        del f["weights/h/weight"]
        f["weights/h/weight"] = h5py.ExternalLink(str(other), "w")
    with pytest.raises(FileFormatError, match=r"weights/h/weight.*ExternalLink"):
        deepkit.load_model(saved)


def test_bad_json_and_deep_nesting_are_file_format_errors(saved):
    with h5py.File(saved, "a") as f:
        f.attrs["model_config"] = "[" * 100000
    with pytest.raises(FileFormatError, match="model_config.*deeper"):
        deepkit.load_model(saved)
    with h5py.File(saved, "a") as f:
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential"})
    with pytest.raises(FileFormatError, match="model_config.*does not describe a model"):
        deepkit.load_model(saved)


def test_truncated_file_is_a_file_format_error(saved):
    data = saved.read_bytes()
    for size in (len(data) // 2, len(data) - 100, 600):
        saved.write_bytes(data[:size])
        with pytest.raises(FileFormatError, match=str(saved.name)):
            deepkit.load_model(saved)


def test_random_corruption_gives_only_clean_errors(saved):
    data = saved.read_bytes()
    rng = np.random.default_rng(0)
    outcomes = set()
    for _ in range(40):
        damaged = bytearray(data)
        for pos in rng.integers(0, len(data), 8):
            damaged[pos] = rng.integers(0, 256)
        saved.write_bytes(bytes(damaged))
        try:
            deepkit.load_model(saved)
            outcomes.add("loaded")
        except (FileFormatError, FileNotFoundError) as err:
            assert str(saved) in str(err)
            outcomes.add("error")
        except DeepkitError as err:  # e.g. a damaged config naming a layer that does not exist
            outcomes.add("deepkit")
            assert str(err)
    assert "error" in outcomes


def test_legacy_file_without_checksums_loads_with_a_note():
    with pytest.warns(UserWarning, match="without verifying"):
        model = deepkit.load_model(FIXTURES / "legacy_model_v0_1.h5")
    assert model.name == "legacy_cnn"


def test_weights_file_has_checksums_and_load_weights_verifies_them(tmp_path):
    model = _model()
    path = tmp_path / "w.h5"
    model.save_weights(path)
    with h5py.File(path, "a") as f:
        assert "crc32" in f["weights/out/bias"].attrs
        f["weights/out/bias"][0] += 1.0
    with pytest.raises(FileFormatError, match="weights/out/bias.*checksum"):
        model.load_weights(path)
