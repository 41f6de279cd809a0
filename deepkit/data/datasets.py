"""Dataset loaders: MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100.

Each loader returns ``(x_train, y_train), (x_test, y_test)`` as uint8 numpy
arrays shaped like Keras's, read from the datasets' standard distribution
files, whose published MD5 sums are checked.

Where the files are looked for, in order:

1. ``path=`` when given (the folder holding the files, or its parent with a
   ``<name>/`` sub-folder). An explicit path is the only place looked at, and
   the download destination.
2. ``$DEEPKIT_DATA/<name>/``.
3. ``~/.deepkit/datasets/<name>/``.
4. The copy bundled with the package (MNIST only).
5. A download from the canonical mirrors into the first writable folder of
   2 or 3 (of 1 with ``path=``), unless ``download=False`` or
   ``DEEPKIT_OFFLINE=1``. Downloads are written to a temporary file, checked
   and then renamed, so an interrupted download never leaves a partial file.

When nothing is found and nothing can be downloaded, the error names the
files expected and the folders where they can be put.

Checksums are verified once per file: a marker (path, size, modification
time, digest) is kept under ``~/.deepkit/datasets/.verified`` so later loads
skip the hashing unless the file changed.

Files and checksums (the canonical published MD5s, also used by torchvision):

* MNIST / Fashion-MNIST: ``train-images-idx3-ubyte.gz``,
  ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``,
  ``t10k-labels-idx1-ubyte.gz`` (IDX files, gzip).
* CIFAR-10: ``cifar-10-binary.tar.gz`` (downloaded), or
  ``cifar-10-python.tar.gz`` (Keras's and torchvision's download), or its
  extracted ``cifar-10-batches-py/`` folder.
* CIFAR-100: ``cifar-100-binary.tar.gz``, ``cifar-100-python.tar.gz`` or
  ``cifar-100-python/``.

Archives are read in place, without extracting them. The Python-version
CIFAR batches are pickles: they are only read after their checksum matched,
and with an unpickler that accepts nothing but plain containers and numpy
arrays.
"""
import codecs
import gzip
import hashlib
import io
import json
import os
import pathlib
import pickle
import sys
import tarfile
import urllib.error
import urllib.request
import uuid
import zlib
from dataclasses import dataclass

import numpy as np

try:  # numpy >= 2 keeps the helpers its pickles name in numpy._core
    from numpy._core import multiarray as _np_multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _np_multiarray

from deepkit_engine.base import DeepkitError

__all__ = [
    "DatasetError", "DatasetNotFoundError", "ChecksumError", "mnist", "fashion_mnist",
    "cifar10", "cifar100", "load_mnist", "load_fashion_mnist", "load_cifar10",
    "load_cifar100", "read_idx", "verify_file", "data_dirs", "bundled_dir",
]


class DatasetError(DeepkitError, ValueError):
    """A dataset file that is corrupt, truncated or has an unexpected layout."""


class ChecksumError(DatasetError):
    """A dataset file whose checksum differs from the published one."""


class DatasetNotFoundError(DeepkitError, FileNotFoundError):
    """The dataset files are nowhere to be found and could not be downloaded."""


# -- specs ---------------------------------------------------------------------
@dataclass(frozen=True)
class _File:
    name: str
    md5: str


@dataclass(frozen=True)
class _Layout:
    """One way a dataset can be stored: its files and how to read them."""
    files: tuple
    reader: str          # name of the reader function
    downloadable: bool = False


@dataclass(frozen=True)
class _Dataset:
    name: str
    title: str
    layouts: tuple
    mirrors: tuple
    bundled: bool = False


def _idx_files(md5s):
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    return tuple(_File(n, m) for n, m in zip(names, md5s))


_DATASETS = {
    "mnist": _Dataset(
        "mnist", "MNIST",
        (_Layout(_idx_files(("f68b3c2dcbeaaa9fbdd348bbdeb94873",
                             "d53e105ee54ea40749a09fcbcd1e9432",
                             "9fb629c4189551a2d022fa330f9573f3",
                             "ec29112dd5afa0611ce80d1b7f02629c")),
                 "idx", downloadable=True),),
        ("https://ossci-datasets.s3.amazonaws.com/mnist/",
         "https://storage.googleapis.com/cvdf-datasets/mnist/",
         "http://yann.lecun.com/exdb/mnist/"),
        bundled=True),
    "fashion_mnist": _Dataset(
        "fashion_mnist", "Fashion-MNIST",
        (_Layout(_idx_files(("8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                             "25c81989df183df01b3e8a0aad5dffbe",
                             "bef4ecab320f06d8554ea6380940ec79",
                             "bb300cfdad3c16e7a12a480ee83cd310")),
                 "idx", downloadable=True),),
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)),
    "cifar10": _Dataset(
        "cifar10", "CIFAR-10",
        (_Layout((_File("cifar-10-batches-py/data_batch_1", "c99cafc152244af753f735de768cd75f"),
                  _File("cifar-10-batches-py/data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
                  _File("cifar-10-batches-py/data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
                  _File("cifar-10-batches-py/data_batch_4", "634d18415352ddfa80567beed471001a"),
                  _File("cifar-10-batches-py/data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
                  _File("cifar-10-batches-py/test_batch", "40351d587109b95175f43aff81a1287e")),
                 "cifar10_py_dir"),
         _Layout((_File("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),),
                 "cifar10_py_tar"),
         _Layout((_File("cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530"),),
                 "cifar10_bin_tar", downloadable=True)),
        ("https://www.cs.toronto.edu/~kriz/",)),
    "cifar100": _Dataset(
        "cifar100", "CIFAR-100",
        (_Layout((_File("cifar-100-python/train", "16019d7e3df5f24257cddd939b257f8d"),
                  _File("cifar-100-python/test", "f0ef6b0ae62326f3e7ffdfab6717acfc")),
                 "cifar100_py_dir"),
         _Layout((_File("cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85"),),
                 "cifar100_py_tar"),
         _Layout((_File("cifar-100-binary.tar.gz", "03b5dce01913d631647c71ecec9e9cb8"),),
                 "cifar100_bin_tar", downloadable=True)),
        ("https://www.cs.toronto.edu/~kriz/",)),
}


# -- folders -------------------------------------------------------------------
def bundled_dir():
    """The folder of the MNIST files shipped inside the package."""
    return pathlib.Path(__file__).resolve().parent.parent / "datasets" / "data" / "mnist"


def _home_root():
    return pathlib.Path(os.path.expanduser("~")) / ".deepkit" / "datasets"


def data_dirs(name, path=None):
    """The folders searched for dataset ``name``, in look-up order.

    Args:
        name: ``'mnist'``, ``'fashion_mnist'``, ``'cifar10'`` or ``'cifar100'``.
        path: An explicit folder; when given it is the only one.

    Returns:
        list of (pathlib.Path, str): Each folder with a short description.
    """
    spec = _spec(name)
    if path is not None:
        path = pathlib.Path(os.path.expanduser(os.fspath(path)))
        return [(path, "path="), (path / spec.name, "path=")]
    dirs = []
    env = os.environ.get("DEEPKIT_DATA")
    if env:
        dirs.append((pathlib.Path(os.path.expanduser(env)) / spec.name, "$DEEPKIT_DATA"))
    dirs.append((_home_root() / spec.name, "~/.deepkit/datasets"))
    if spec.bundled:
        dirs.append((bundled_dir(), "bundled with deepkit"))
    return dirs


def _spec(name):
    try:
        return _DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(_DATASETS)}") from None


# -- checksums -----------------------------------------------------------------
def _md5_of(path):
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _marker_path(path, md5):
    key = hashlib.sha1(os.fsencode(os.path.realpath(path)), usedforsecurity=False).hexdigest()
    return _home_root() / ".verified" / f"{key}-{md5}.json"


def _stat_key(path):
    st = os.stat(path)
    return {"path": os.path.realpath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "inode": st.st_ino}


def _write_marker(marker, content):
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp = marker.with_name(f"{marker.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_text(json.dumps(content))
        os.replace(tmp, marker)
    except OSError:
        pass  # a read-only home only costs a re-hash next time


def verify_file(path, md5):
    """Check ``path`` against its published MD5, once.

    A marker is written after a successful check; later calls return at once
    while the file's size, modification time and inode are unchanged.

    Args:
        path: The file.
        md5: The expected hex digest.

    Raises:
        ChecksumError: The digest differs (the message names the file and both
            digests).
    """
    path = os.fspath(path)
    marker = _marker_path(path, md5)
    key = _stat_key(path)
    try:
        if json.loads(marker.read_text()) == key:
            return
    except (OSError, ValueError):
        pass
    actual = _md5_of(path)
    if actual != md5:
        raise ChecksumError(
            f"{path}: MD5 is {actual} but the published checksum is {md5}; the file is corrupt "
            "or truncated. Delete it (it is downloaded again when the network allows) or "
            "replace it with the original file.")
    _write_marker(marker, key)


# -- downloads -----------------------------------------------------------------
def _offline(download):
    if download is not None:
        return not download
    return os.environ.get("DEEPKIT_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def _download(url, dest, md5, timeout=60.0):
    """Fetch ``url`` to ``dest`` atomically; raise ChecksumError on a bad digest."""
    dest = pathlib.Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
    try:
        digest = hashlib.md5(usedforsecurity=False)
        print(f"deepkit: downloading {url} -> {dest}", file=sys.stderr)
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                out.write(chunk)
                digest.update(chunk)
        actual = digest.hexdigest()
        if actual != md5:
            raise ChecksumError(f"{url}: downloaded MD5 {actual} differs from the published "
                                f"checksum {md5}; the file was not kept")
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    _write_marker(_marker_path(dest, md5), _stat_key(dest))


def _download_layout(spec, layout, folder, missing):
    errors = []
    for f in layout.files:
        if f.name not in missing:
            continue
        for mirror in spec.mirrors:
            try:
                _download(mirror + f.name, folder / f.name, f.md5)
                break
            except (urllib.error.URLError, OSError, ChecksumError, ValueError) as err:
                errors.append(f"{mirror + f.name}: {err}")
        else:
            return errors
    return None


def _writable_target(dirs):
    for folder, _ in dirs:
        if folder.exists() and os.access(folder, os.W_OK):
            return folder
        parent = folder
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if os.access(parent, os.W_OK):
            return folder
    return None


def _not_found(spec, dirs, reason):
    layouts = "\n".join(
        "  - " + ", ".join(f.name for f in layout.files) for layout in spec.layouts)
    where = "\n".join(f"  - {folder} ({what})" for folder, what in dirs
                      if what != "bundled with deepkit")
    download_layout = next(layout for layout in spec.layouts if layout.downloadable)
    urls = "\n".join(f"  - {spec.mirrors[0]}{f.name}" for f in download_layout.files)
    return DatasetNotFoundError(
        f"{spec.title}: the dataset files were not found and {reason}.\n"
        f"Expected (any one of these sets):\n{layouts}\n"
        f"Put them in one of these folders:\n{where}\n"
        f"(or set $DEEPKIT_DATA, or pass path=). They can be downloaded from:\n{urls}")


def _locate(name, path, download):
    """(reader name, {file name: path}) of the first complete copy, downloading if needed."""
    spec = _spec(name)
    dirs = data_dirs(name, path)
    for folder, _ in dirs:
        for layout in spec.layouts:
            paths = {f.name: folder / f.name for f in layout.files}
            if all(p.is_file() for p in paths.values()):
                for f in layout.files:
                    verify_file(paths[f.name], f.md5)
                return layout.reader, paths
    if _offline(download):
        reason = ("downloading is disabled (download=False)" if download is False
                  else "downloading is disabled (DEEPKIT_OFFLINE=1)")
        raise _not_found(spec, dirs, reason)
    target = _writable_target([d for d in dirs if d[1] != "bundled with deepkit"])
    if target is None:
        raise _not_found(spec, dirs, "none of the folders is writable for a download")
    layout = next(layout for layout in spec.layouts if layout.downloadable)
    missing = {f.name for f in layout.files if not (target / f.name).is_file()}
    errors = _download_layout(spec, layout, target, missing)
    if errors:
        raise _not_found(spec, dirs, "the download failed:\n  " + "\n  ".join(errors))
    paths = {f.name: target / f.name for f in layout.files}
    for f in layout.files:
        verify_file(paths[f.name], f.md5)
    return layout.reader, paths


# -- IDX -----------------------------------------------------------------------
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _read_bytes(path):
    path = os.fspath(path)
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        with open(path, "rb") as f:
            return f.read()
    except (EOFError, OSError, zlib.error) as err:
        raise DatasetError(f"{path}: cannot decompress ({err}); the file is truncated or "
                           "corrupt") from None


def read_idx(path, expected_ndim=None, expected_dims=None):
    """Read an IDX file (MNIST's format), gzip-compressed or not.

    Args:
        path: The file (``.gz`` is decompressed).
        expected_ndim: The number of dimensions it must have, or None.
        expected_dims: Required sizes of the trailing dimensions, e.g.
            ``(28, 28)``, or None.

    Returns:
        numpy.ndarray: The array in native byte order.

    Raises:
        DatasetError: Bad magic number, dimensions or length (naming the file
            and the expected and actual values).
    """
    raw = _read_bytes(path)
    path = os.fspath(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DatasetError(f"{path}: not an IDX file (magic bytes {raw[:4].hex() or 'none'}, "
                           "expected 0000 followed by a type code and the number of dimensions)")
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    ndim = raw[3]
    if expected_ndim is not None and ndim != expected_ndim:
        raise DatasetError(f"{path}: IDX header says {ndim} dimensions, expected {expected_ndim}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path}: truncated IDX header ({len(raw)} bytes, need {header})")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    if expected_dims is not None and dims[1:] != tuple(expected_dims):
        raise DatasetError(f"{path}: IDX sample shape is {dims[1:]}, expected "
                           f"{tuple(expected_dims)}")
    need = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) != need:
        raise DatasetError(f"{path}: {len(raw)} bytes after decompression but the IDX header "
                           f"(shape {dims}) needs {need}; the file is truncated or corrupt")
    array = np.frombuffer(raw, dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=True) if dtype.itemsize > 1 \
        else array.copy()


def _check_labels(labels, num_classes, path):
    if labels.size and int(labels.max()) >= num_classes:
        raise DatasetError(f"{path}: label {int(labels.max())} is outside the class range "
                           f"0..{num_classes - 1}")


def _read_idx_dataset(paths):
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    out = []
    for images_name, labels_name in (names[:2], names[2:]):
        x = read_idx(paths[images_name], 3, (28, 28))
        y = read_idx(paths[labels_name], 1)
        if x.shape[0] != y.shape[0]:
            raise DatasetError(f"{paths[labels_name]} has {y.shape[0]} labels but "
                               f"{paths[images_name]} has {x.shape[0]} images")
        _check_labels(y, 10, paths[labels_name])
        out.append((x.astype(np.uint8, copy=False), y.astype(np.uint8, copy=False)))
    return tuple(out)


# -- CIFAR ---------------------------------------------------------------------
class _SafeUnpickler(pickle.Unpickler):
    """Accepts plain containers and numpy arrays; any other global is refused."""

    def find_class(self, module, name):
        if (module, name) == ("_codecs", "encode"):  # bytes pickled by Python 3, protocol < 3
            return codecs.encode
        if name == "_reconstruct" and module in ("numpy.core.multiarray",
                                                 "numpy._core.multiarray"):
            return _np_multiarray._reconstruct
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "scalar":
            return _np_multiarray.scalar
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")


def _unpickle(raw, where):
    try:
        entry = _SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as err:  # noqa: BLE001 - any failure means a bad file
        raise DatasetError(f"{where}: cannot read the CIFAR batch ({err})") from None
    if not isinstance(entry, dict):
        raise DatasetError(f"{where}: a CIFAR batch must hold a dict, got {type(entry).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}


def _py_batch(raw, where, label_keys):
    entry = _unpickle(raw, where)
    try:
        data = np.asarray(entry["data"], dtype=np.uint8)
        labels = [np.asarray(entry[k], dtype=np.int64) for k in label_keys]
    except KeyError as err:
        raise DatasetError(f"{where}: the CIFAR batch has no {err} entry") from None
    if data.ndim != 2 or data.shape[1] != 3072:
        raise DatasetError(f"{where}: CIFAR data has shape {data.shape}, expected (N, 3072)")
    for key, lab in zip(label_keys, labels):
        if lab.shape != (data.shape[0],):
            raise DatasetError(f"{where}: {lab.shape[0]} {key} for {data.shape[0]} images")
    return data, labels


def _bin_batch(raw, where, label_bytes):
    record = label_bytes + 3072
    if len(raw) == 0 or len(raw) % record:
        raise DatasetError(f"{where}: {len(raw)} bytes is not a multiple of the {record}-byte "
                           "CIFAR record; the file is truncated or corrupt")
    rows = np.frombuffer(raw, np.uint8).reshape(-1, record)
    return rows[:, label_bytes:], [rows[:, i].astype(np.int64) for i in range(label_bytes)]


def _tar_members(path, names):
    path = os.fspath(path)
    out = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for name in names:
                try:
                    member = tar.getmember(name)
                except KeyError:
                    raise DatasetError(f"{path}: the archive has no member {name!r}") from None
                out[name] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise DatasetError(f"{path}: cannot read the archive ({err}); the file is truncated "
                           "or corrupt") from None
    return out


def _finish_cifar(parts, num_classes, where):
    data = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    _check_labels(labels, num_classes, where)
    x = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return x, labels.astype(np.uint8).reshape(-1, 1)


def _cifar10_parts(reader, paths):
    train = [f"data_batch_{i}" for i in range(1, 6)]
    if reader == "cifar10_py_dir":
        raws = {n: pathlib.Path(paths[f"cifar-10-batches-py/{n}"]).read_bytes()
                for n in train + ["test_batch"]}
        where = {n: paths[f"cifar-10-batches-py/{n}"] for n in raws}
        decode = lambda n: _py_batch(raws[n], where[n], ("labels",))  # noqa: E731
    elif reader == "cifar10_py_tar":
        tar = paths["cifar-10-python.tar.gz"]
        raws = _tar_members(tar, [f"cifar-10-batches-py/{n}" for n in train + ["test_batch"]])
        decode = lambda n: _py_batch(raws[f"cifar-10-batches-py/{n}"],  # noqa: E731
                                     f"{tar}:{n}", ("labels",))
    else:
        tar = paths["cifar-10-binary.tar.gz"]
        raws = _tar_members(tar, [f"cifar-10-batches-bin/{n}.bin" for n in train + ["test_batch"]])
        decode = lambda n: _bin_batch(raws[f"cifar-10-batches-bin/{n}.bin"],  # noqa: E731
                                      f"{tar}:{n}.bin", 1)
    origin = pathlib.Path(next(iter(paths.values())))
    origin = origin.parent if reader == "cifar10_py_dir" else origin
    out = []
    for names in (train, ["test_batch"]):
        parts = []
        for n in names:
            data, labels = decode(n)
            parts.append((data, labels[0]))
        out.append(_finish_cifar(parts, 10, f"{origin} ({', '.join(names)})"))
    return tuple(out)


def _cifar100_parts(reader, paths, label_mode):
    fine = label_mode == "fine"
    if reader in ("cifar100_py_dir", "cifar100_py_tar"):
        if reader == "cifar100_py_dir":
            raws = {n: pathlib.Path(paths[f"cifar-100-python/{n}"]).read_bytes()
                    for n in ("train", "test")}
            where = {n: paths[f"cifar-100-python/{n}"] for n in raws}
        else:
            tar = paths["cifar-100-python.tar.gz"]
            members = _tar_members(tar, ["cifar-100-python/train", "cifar-100-python/test"])
            raws = {n: members[f"cifar-100-python/{n}"] for n in ("train", "test")}
            where = {n: f"{tar}:{n}" for n in raws}
        key = "fine_labels" if fine else "coarse_labels"
        decoded = {n: _py_batch(raws[n], where[n], (key,)) for n in raws}
        picks = {n: (d, labels[0]) for n, (d, labels) in decoded.items()}
    else:
        tar = paths["cifar-100-binary.tar.gz"]
        members = _tar_members(tar, ["cifar-100-binary/train.bin", "cifar-100-binary/test.bin"])
        picks = {}
        for n in ("train", "test"):
            data, labels = _bin_batch(members[f"cifar-100-binary/{n}.bin"], f"{tar}:{n}.bin", 2)
            picks[n] = (data, labels[1] if fine else labels[0])
        where = {n: f"{tar}:{n}.bin" for n in picks}
    classes = 100 if fine else 20
    return tuple(_finish_cifar([picks[n]], classes, where[n]) for n in ("train", "test"))


def _channels(result, data_format):
    if data_format == "channels_last":
        return result
    if data_format != "channels_first":
        raise ValueError(f"data_format must be 'channels_last' or 'channels_first', got "
                         f"{data_format!r}")
    return tuple((np.ascontiguousarray(x.transpose(0, 3, 1, 2)), y) for x, y in result)


# -- public loaders -----------------------------------------------------------
def mnist(path=None, download=None):
    """Load MNIST: ``(x_train, y_train), (x_test, y_test)``.

    Args:
        path: Folder with the four ``.gz`` files (see the module docstring for
            the look-up order when None).
        download: True/False to allow/forbid a download; None follows
            ``$DEEPKIT_OFFLINE``.

    Returns:
        tuple: ``x_train`` uint8 (60000, 28, 28), ``y_train`` uint8 (60000,),
        ``x_test`` uint8 (10000, 28, 28), ``y_test`` uint8 (10000,).

    Raises:
        ChecksumError: A file differs from the published original.
        DatasetError: A file is truncated or malformed.
        DatasetNotFoundError: No copy found and none could be downloaded.
    """
    _, paths = _locate("mnist", path, download)
    return _read_idx_dataset(paths)


def fashion_mnist(path=None, download=None):
    """Load Fashion-MNIST (same files and shapes as :func:`mnist`).

    Args:
        path: Folder with the four ``.gz`` files, or None for the look-up order.
        download: True/False to allow/forbid a download; None follows
            ``$DEEPKIT_OFFLINE``.

    Returns:
        tuple: ``(x_train, y_train), (x_test, y_test)``, uint8.
    """
    _, paths = _locate("fashion_mnist", path, download)
    return _read_idx_dataset(paths)


def cifar10(path=None, download=None, data_format="channels_last"):
    """Load CIFAR-10: ``(x_train, y_train), (x_test, y_test)`` as in Keras.

    Args:
        path: Folder with one of the distribution files, or None.
        download: True/False to allow/forbid a download; None follows
            ``$DEEPKIT_OFFLINE``.
        data_format: ``'channels_last'`` (N, 32, 32, 3) or
            ``'channels_first'`` (N, 3, 32, 32).

    Returns:
        tuple: uint8 images (50000 / 10000 of them) and uint8 labels shaped
        (N, 1), as Keras returns them.
    """
    reader, paths = _locate("cifar10", path, download)
    return _channels(_cifar10_parts(reader, paths), data_format)


def cifar100(path=None, download=None, label_mode="fine", data_format="channels_last"):
    """Load CIFAR-100: ``(x_train, y_train), (x_test, y_test)`` as in Keras.

    Args:
        path: Folder with one of the distribution files, or None.
        download: True/False to allow/forbid a download; None follows
            ``$DEEPKIT_OFFLINE``.
        label_mode: ``'fine'`` (100 classes) or ``'coarse'`` (20 super-classes).
        data_format: ``'channels_last'`` or ``'channels_first'``.

    Returns:
        tuple: uint8 images and uint8 labels shaped (N, 1).
    """
    if label_mode not in ("fine", "coarse"):
        raise ValueError(f"cifar100: label_mode must be 'fine' or 'coarse', got {label_mode!r}")
    reader, paths = _locate("cifar100", path, download)
    return _channels(_cifar100_parts(reader, paths, label_mode), data_format)


load_mnist = mnist
load_fashion_mnist = fashion_mnist
load_cifar10 = cifar10
load_cifar100 = cifar100
