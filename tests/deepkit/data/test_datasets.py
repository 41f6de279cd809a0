"""Dataset loaders: MNIST (bundled and shared copies), look-up order, checksums, corrupt
files, downloads, and Fashion-MNIST/CIFAR parsing on small generated files."""
import dataclasses
import gzip
import hashlib
import io
import pickle
import shutil
import tarfile

import numpy as np
import pytest

from deepkit.data import datasets as ds
from deepkit.data.datasets import ChecksumError, DatasetError, DatasetNotFoundError

pytestmark = pytest.mark.timeout(120)

MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
MNIST_MD5 = {f.name: f.md5 for f in ds._DATASETS["mnist"].layouts[0].files}
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """A fresh ~ (for ~/.deepkit), no $DEEPKIT_DATA and no network."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("DEEPKIT_DATA", raising=False)
    monkeypatch.setenv("DEEPKIT_OFFLINE", "1")
    return home


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def _check_mnist(result):
    (x_train, y_train), (x_test, y_test) = result
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert all(a.dtype == np.uint8 for a in (x_train, y_train, x_test, y_test))
    assert np.bincount(y_train).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test).tolist() == TEST_COUNTS
    assert abs(x_train.mean() / 255 - 0.1307) < 1e-4


# -- MNIST ---------------------------------------------------------------------
def test_bundled_mnist_is_the_original(shared_data):
    for name in MNIST_FILES:
        bundled = ds.bundled_dir() / name
        assert bundled.read_bytes() == (shared_data / "mnist" / name).read_bytes()
        assert _md5(bundled) == MNIST_MD5[name]


def test_without_other_copies_the_bundled_one_is_used():
    reader, paths = ds._locate("mnist", None, None)
    assert all(p.parent == ds.bundled_dir() for p in paths.values())


def test_mnist_from_an_explicit_path(shared_data):
    _check_mnist(ds.mnist(path=shared_data / "mnist"))
    _check_mnist(ds.mnist(path=shared_data))  # the parent of a mnist/ folder works too


def test_lookup_order(tmp_path, monkeypatch):
    def link_into(folder):
        folder.mkdir(parents=True)
        for name in MNIST_FILES:
            (folder / name).symlink_to(ds.bundled_dir() / name)
        return folder

    home_copy = link_into(tmp_path / "home" / ".deepkit" / "datasets" / "mnist")
    assert ds._locate("mnist", None, None)[1][MNIST_FILES[0]].parent == home_copy
    env_copy = link_into(tmp_path / "env" / "mnist")
    monkeypatch.setenv("DEEPKIT_DATA", str(tmp_path / "env"))
    assert ds._locate("mnist", None, None)[1][MNIST_FILES[0]].parent == env_copy
    explicit = link_into(tmp_path / "explicit")
    assert ds._locate("mnist", explicit, None)[1][MNIST_FILES[0]].parent == explicit
    dirs = [str(d) for d, _ in ds.data_dirs("mnist")]
    assert dirs == [str(env_copy), str(home_copy), str(ds.bundled_dir())]


def test_corrupted_copy_is_refused(tmp_path):
    copy = tmp_path / "corrupt"
    copy.mkdir()
    for name in MNIST_FILES:
        shutil.copyfile(ds.bundled_dir() / name, copy / name)
    target = copy / "train-images-idx3-ubyte.gz"
    raw = bytearray(target.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # one flipped bit
    target.write_bytes(bytes(raw))
    with pytest.raises(ChecksumError, match=r"train-images-idx3-ubyte\.gz: MD5 is [0-9a-f]{32} "
                                            r"but the published checksum is f68b3c2d"):
        ds.mnist(path=copy)


def test_checksum_is_verified_once(tmp_path, monkeypatch):
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in MNIST_FILES:
        shutil.copyfile(ds.bundled_dir() / name, copy / name)
    hashed = []
    real = ds._md5_of
    monkeypatch.setattr(ds, "_md5_of", lambda p: hashed.append(p) or real(p))
    ds.mnist(path=copy)
    assert len(hashed) == 4
    ds.mnist(path=copy)
    assert len(hashed) == 4  # markers: nothing hashed again
    labels = copy / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(labels.read_bytes())
    raw[100] ^= 0xFF
    labels.write_bytes(bytes(raw))  # a change after verification is caught
    with pytest.raises(ChecksumError, match="t10k-labels"):
        ds.mnist(path=copy)


def _idx_bytes(array, type_code=0x08):
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(">u1" if type_code == 0x08 else ">i4").tobytes()


def test_idx_header_errors(tmp_path):
    good = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(_idx_bytes(good)))
    np.testing.assert_array_equal(ds.read_idx(path, 3, (28, 28)), good)
    path.write_bytes(gzip.compress(b"\x12\x34" + _idx_bytes(good)[2:]))
    with pytest.raises(DatasetError, match=r"x\.gz: not an IDX file \(magic bytes 1234"):
        ds.read_idx(path)
    path.write_bytes(gzip.compress(_idx_bytes(good)[:-5]))
    with pytest.raises(DatasetError, match=r"x\.gz: 1579 bytes .* needs 1584; the file is "
                                           "truncated"):
        ds.read_idx(path)
    path.write_bytes(gzip.compress(_idx_bytes(good.reshape(2, 784))))
    with pytest.raises(DatasetError, match="2 dimensions, expected 3"):
        ds.read_idx(path, 3, (28, 28))
    path.write_bytes(gzip.compress(_idx_bytes(good))[:40])
    with pytest.raises(DatasetError, match=r"x\.gz: cannot decompress"):
        ds.read_idx(path)
    ints = np.array([1, -2, 300], dtype=np.int64)
    plain = tmp_path / "ints-idx1-int"  # uncompressed, big-endian int32
    plain.write_bytes(_idx_bytes(ints, 0x0C))
    assert ds.read_idx(plain).tolist() == [1, -2, 300]


# -- Fashion-MNIST (generated files, checksums patched) --------------------------
def _write_fake_idx_set(folder, n_train=6, n_test=4, bad_label=False):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = (np.arange(n) % 10).astype(np.uint8)
        if bad_label:
            y[-1] = 12
        (folder / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(x)))
        (folder / f"{split}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(y)))
        arrays[split] = (x, y)
    return arrays


def _patch_spec(monkeypatch, name, folder=None, mirrors=None):
    """Replace the published MD5s of ``name`` by those of the files in ``folder``."""
    spec = ds._DATASETS[name]
    layouts = []
    for layout in spec.layouts:
        files = tuple(dataclasses.replace(f, md5=_md5(folder / f.name))
                      if folder is not None and (folder / f.name).is_file() else f
                      for f in layout.files)
        layouts.append(dataclasses.replace(layout, files=files))
    new = dataclasses.replace(spec, layouts=tuple(layouts),
                              mirrors=spec.mirrors if mirrors is None else tuple(mirrors))
    monkeypatch.setitem(ds._DATASETS, name, new)


def test_fashion_mnist_reads_idx_files(tmp_path, monkeypatch):
    folder = tmp_path / "fm"
    arrays = _write_fake_idx_set(folder)
    _patch_spec(monkeypatch, "fashion_mnist", folder)
    (x_train, y_train), (x_test, y_test) = ds.fashion_mnist(path=folder)
    np.testing.assert_array_equal(x_train, arrays["train"][0])
    np.testing.assert_array_equal(y_test, arrays["t10k"][1])
    assert x_test.shape == (4, 28, 28) and y_train.dtype == np.uint8


def test_labels_outside_the_class_range(tmp_path, monkeypatch):
    folder = tmp_path / "fm"
    _write_fake_idx_set(folder, bad_label=True)
    _patch_spec(monkeypatch, "fashion_mnist", folder)
    with pytest.raises(DatasetError, match=r"train-labels-idx1-ubyte\.gz: label 12 is outside "
                                           r"the class range 0\.\.9"):
        ds.fashion_mnist(path=folder)


def test_missing_and_offline_names_files_and_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPKIT_DATA", str(tmp_path / "data"))
    with pytest.raises(DatasetNotFoundError) as info:
        ds.fashion_mnist()
    message = str(info.value)
    assert "DEEPKIT_OFFLINE=1" in message
    for name in MNIST_FILES:
        assert name in message
    assert str(tmp_path / "data" / "fashion_mnist") in message
    assert str(tmp_path / "home" / ".deepkit" / "datasets" / "fashion_mnist") in message
    with pytest.raises(DatasetNotFoundError, match="cifar-10-binary.tar.gz"):
        ds.cifar10(download=False)


def test_download_is_checked_and_atomic(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    arrays = _write_fake_idx_set(mirror)
    _patch_spec(monkeypatch, "fashion_mnist", mirror, mirrors=[mirror.as_uri() + "/"])
    monkeypatch.setenv("DEEPKIT_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("DEEPKIT_OFFLINE")
    (x_train, _), _ = ds.fashion_mnist()
    np.testing.assert_array_equal(x_train, arrays["train"][0])
    target = tmp_path / "data" / "fashion_mnist"
    assert sorted(p.name for p in target.iterdir()) == sorted(MNIST_FILES)  # no .part files
    # a mirror serving a corrupt file: nothing is kept
    other = tmp_path / "mirror2"
    _write_fake_idx_set(other, n_train=7)  # not the files whose checksums are published
    _patch_spec(monkeypatch, "fashion_mnist", mirror, mirrors=[other.as_uri() + "/"])
    with pytest.raises(DatasetNotFoundError, match="differs from the published checksum"):
        ds.fashion_mnist(path=tmp_path / "fresh", download=True)
    assert not (tmp_path / "fresh").exists() or not any((tmp_path / "fresh").iterdir())


# -- CIFAR (generated archives, checksums patched) -------------------------------
def _cifar_images(n, offset):
    return (np.arange(n * 3072, dtype=np.int64).reshape(n, 3072) * 7 + offset) % 256


def _expected_hwc(flat):
    return flat.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.uint8)


def _add(tar, name, payload):
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def _cifar10_archives(folder):
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    batches = {n: (_cifar_images(2, k), np.array([k % 10, (k + 3) % 10]))
               for k, n in enumerate(names)}
    with tarfile.open(folder / "cifar-10-binary.tar.gz", "w:gz") as tar:
        for n, (x, y) in batches.items():
            records = np.concatenate([y[:, None], x], axis=1).astype(np.uint8)
            _add(tar, f"cifar-10-batches-bin/{n}.bin", records.tobytes())
    with tarfile.open(folder / "cifar-10-python.tar.gz", "w:gz") as tar:
        for n, (x, y) in batches.items():
            entry = {b"data": x.astype(np.uint8), b"labels": y.tolist(),
                     b"batch_label": n.encode()}
            _add(tar, f"cifar-10-batches-py/{n}", pickle.dumps(entry, protocol=2))
    return batches


@pytest.mark.parametrize("archive", ["cifar-10-binary.tar.gz", "cifar-10-python.tar.gz",
                                     "cifar-10-batches-py"])
def test_cifar10_archives(tmp_path, monkeypatch, archive):
    source = tmp_path / "src"
    batches = _cifar10_archives(source)
    folder = tmp_path / "cifar"
    folder.mkdir()
    if archive == "cifar-10-batches-py":  # the folder Keras extracts
        with tarfile.open(source / "cifar-10-python.tar.gz") as tar:
            tar.extractall(folder, filter="data")
    else:
        shutil.copyfile(source / archive, folder / archive)
    _patch_spec(monkeypatch, "cifar10", folder)
    (x_train, y_train), (x_test, y_test) = ds.cifar10(path=folder)
    assert x_train.shape == (10, 32, 32, 3) and x_train.dtype == np.uint8
    assert y_train.shape == (10, 1) and y_test.shape == (2, 1)
    train_flat = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)])
    np.testing.assert_array_equal(x_train, _expected_hwc(train_flat))
    np.testing.assert_array_equal(x_test, _expected_hwc(batches["test_batch"][0]))
    np.testing.assert_array_equal(y_train[:, 0], np.concatenate(
        [batches[f"data_batch_{i}"][1] for i in range(1, 6)]))
    (x_cf, _), _ = ds.cifar10(path=folder, data_format="channels_first")
    np.testing.assert_array_equal(x_cf, x_train.transpose(0, 3, 1, 2))


def test_cifar_python_pickles_are_restricted(tmp_path, monkeypatch):
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    folder = tmp_path / "cifar"
    folder.mkdir()
    with tarfile.open(folder / "cifar-10-python.tar.gz", "w:gz") as tar:
        for n in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            _add(tar, f"cifar-10-batches-py/{n}", pickle.dumps({b"data": Evil()}))
    _patch_spec(monkeypatch, "cifar10", folder)
    with pytest.raises(DatasetError, match=r"builtins\.print is not allowed"):
        ds.cifar10(path=folder)


def test_cifar_truncated_archive(tmp_path, monkeypatch):
    source = tmp_path / "src"
    _cifar10_archives(source)
    folder = tmp_path / "cifar"
    folder.mkdir()
    raw = (source / "cifar-10-binary.tar.gz").read_bytes()
    (folder / "cifar-10-binary.tar.gz").write_bytes(raw[: len(raw) // 2])
    _patch_spec(monkeypatch, "cifar10", folder)
    with pytest.raises(DatasetError, match=r"cifar-10-binary\.tar\.gz: cannot read the archive"):
        ds.cifar10(path=folder)


def test_cifar100_label_modes(tmp_path, monkeypatch):
    folder = tmp_path / "c100"
    folder.mkdir()
    x = _cifar_images(3, 1)
    coarse, fine = np.array([1, 19, 0]), np.array([5, 99, 42])
    with tarfile.open(folder / "cifar-100-binary.tar.gz", "w:gz") as tar:
        for n in ("train", "test"):
            records = np.concatenate([coarse[:, None], fine[:, None], x], axis=1)
            _add(tar, f"cifar-100-binary/{n}.bin", records.astype(np.uint8).tobytes())
    _patch_spec(monkeypatch, "cifar100", folder)
    (x_train, y_fine), _ = ds.cifar100(path=folder)
    (_, y_coarse), _ = ds.cifar100(path=folder, label_mode="coarse")
    np.testing.assert_array_equal(x_train, _expected_hwc(x))
    assert y_fine[:, 0].tolist() == fine.tolist() and y_coarse[:, 0].tolist() == coarse.tolist()
    with pytest.raises(ValueError, match="label_mode"):
        ds.cifar100(path=folder, label_mode="medium")
