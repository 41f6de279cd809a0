"""nd.load on damaged and hostile files: every failure a FileFormatError naming file and array."""
import h5py
import numpy as np
import pytest

from deepkit_engine import nd
from deepkit_engine.base import FileFormatError


def _data_offset(path, name):
    with h5py.File(path, "r") as f:
        return f[name].id.get_offset()


@pytest.fixture
def arrays_file(tmp_path):
    path = tmp_path / "a.h5"
    nd.save(path, {"a": nd.array(np.arange(6.0).reshape(2, 3)), "b": nd.ones((4,))})
    return path


def test_nd_round_trip_still_works(arrays_file):
    loaded = nd.load(arrays_file)
    np.testing.assert_array_equal(loaded["a"].asnumpy(), np.arange(6.0).reshape(2, 3))


@pytest.mark.parametrize("dtype", [h5py.string_dtype(), np.dtype([("x", "f4"), ("y", "i4")]),
                                   "S5"])
def test_nd_load_refuses_non_numeric_datasets(arrays_file, dtype):
    with h5py.File(arrays_file, "a") as f:
        del f["arrays/1"]
        f.create_dataset("arrays/1", shape=(2,), dtype=dtype)
    with pytest.raises(FileFormatError, match=r"arrays/1.*has dtype"):
        nd.load(arrays_file)


def test_nd_load_refuses_keys_that_do_not_match_arrays(arrays_file):
    with h5py.File(arrays_file, "a") as f:
        f.attrs["keys"] = np.array(["a", "b", "c"], dtype=h5py.string_dtype())
    with pytest.raises(FileFormatError, match="2 arrays for 3 keys"):
        nd.load(arrays_file)


def test_nd_load_refuses_data_the_file_does_not_hold(arrays_file):
    with h5py.File(arrays_file, "a") as f:
        del f["arrays/0"]
        f.create_dataset("arrays/0", shape=(1 << 29,), dtype="f4")  # contiguous, never written
    with pytest.raises(FileFormatError, match=r"arrays/0.*declares 2147483648 bytes"):
        nd.load(arrays_file)


def test_nd_load_flipped_bit_and_external_link(arrays_file, tmp_path):
    offset = _data_offset(arrays_file, "arrays/0")
    data = bytearray(arrays_file.read_bytes())
    data[offset + 3] ^= 0x10
    arrays_file.write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match="arrays/0.*checksum"):
        nd.load(arrays_file)
    with h5py.File(arrays_file, "a") as f:
        del f["arrays/0"]
        f["arrays/0"] = h5py.ExternalLink(str(tmp_path / "x.h5"), "y")
    with pytest.raises(FileFormatError, match="ExternalLink"):
        nd.load(arrays_file)
