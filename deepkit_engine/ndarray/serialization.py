"""``nd.save``/``nd.load``: a dict or list of NDArrays in one HDF5 file.

Writes are atomic: the file is written under a temporary name in the same
folder and renamed over the target only when complete, so an interrupted
save never leaves a half-written file where a good one was. Each array
carries a checksum; loading verifies it, reads only numeric arrays stored in
the file itself, and raises :class:`~deepkit_engine.base.FileFormatError`
(naming the file and the array) for anything damaged or inconsistent.
"""
import h5py
import numpy as np

from ..base import FileFormatError
from ..fileio import atomic_path
from ..hdf5_reading import SafeFile, write_dataset
from .creation import array
from .ndarray import NDArray

__all__ = ["save", "load"]

_FORMAT = "deepkit.ndarray"
_VERSION = 1


def save(fname, data):
    """Save an NDArray, a list of NDArrays or a ``{str: NDArray}`` dict to HDF5.

    Args:
        fname: Target path; replaced atomically.
        data: What to save.
    """
    if isinstance(data, NDArray):
        data = [data]
    if isinstance(data, dict):
        kind, items = "dict", list(data.items())
        for k, _ in items:
            if not isinstance(k, str):
                raise TypeError(f"nd.save: dict keys must be str, got {k!r}")
    elif isinstance(data, (list, tuple)):
        kind, items = "list", [(str(i), v) for i, v in enumerate(data)]
    else:
        raise TypeError(f"nd.save: data must be an NDArray, a list or a dict of NDArrays, "
                        f"got {type(data).__name__}")
    for k, v in items:
        if not isinstance(v, NDArray):
            raise TypeError(f"nd.save: entry {k!r} is a {type(v).__name__}, not an NDArray")
    values = [(k, v.asnumpy()) for k, v in items]
    with atomic_path(fname) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = _FORMAT
            f.attrs["version"] = _VERSION
            f.attrs["kind"] = kind
            f.attrs["keys"] = np.array([k for k, _ in values], dtype=h5py.string_dtype())
            grp = f.create_group("arrays")
            for i, (k, v) in enumerate(values):
                write_dataset(grp, str(i), v)


def load(fname, ctx=None):
    """Load what :func:`save` wrote: a list or a dict of NDArrays.

    Raises:
        FileNotFoundError: ``fname`` does not exist.
        FileFormatError: the file is not HDF5, was not written by ``nd.save``,
            or is damaged (naming the array at fault).
    """
    with SafeFile(fname, "nd.load") as f:
        if f.attr("format") != _FORMAT:
            raise FileFormatError(f.path, None, f"nd.load: the file is an HDF5 file but was "
                                                f"not written by nd.save (no '{_FORMAT}' "
                                                "format attribute)")
        kind = f.attr("kind", required=True)
        if kind not in ("dict", "list"):
            raise f.error("/@kind", f"must be 'dict' or 'list', found {kind!r}")
        keys = _keys(f)
        stored = f.keys("arrays")
        if sorted(stored) != sorted(str(i) for i in range(len(keys))):
            raise f.error("arrays", f"holds {len(stored)} arrays for {len(keys)} keys; the "
                                    "keys and the arrays do not match")
        values = [f.read(f"arrays/{i}") for i in range(len(keys))]
    arrays = [array(v, ctx=ctx, dtype=v.dtype) for v in values]
    if kind == "dict":
        if len(set(keys)) != len(keys):
            raise FileFormatError(f.path, "/@keys", "repeats a key")
        return dict(zip(keys, arrays))
    return arrays


def _keys(f):
    raw = f.attr("keys", required=True)
    if not isinstance(raw, np.ndarray) or raw.ndim != 1:
        raise f.error("/@keys", f"must be a list of names, found {type(raw).__name__}")
    keys = []
    for k in raw:
        if isinstance(k, bytes):
            try:
                k = k.decode("utf-8")
            except UnicodeDecodeError:
                raise f.error("/@keys", "holds a name that is not UTF-8") from None
        if not isinstance(k, str):
            raise f.error("/@keys", f"holds {k!r}, not a name")
        keys.append(k)
    return keys

