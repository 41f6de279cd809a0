"""``nd.save``/``nd.load``: a dict or list of NDArrays in one HDF5 file.

Writes are atomic: the file is written under a temporary name in the same
folder and renamed over the target only when complete, so an interrupted
save never leaves a half-written file where a good one was.
"""
import os

import h5py
import numpy as np

from ..base import DeepkitError
from ..fileio import atomic_path
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
                grp.create_dataset(str(i), data=v)


def load(fname, ctx=None):
    """Load what :func:`save` wrote: a list or a dict of NDArrays.

    Raises:
        FileNotFoundError: ``fname`` does not exist.
        DeepkitError: the file is not HDF5 or was not written by ``nd.save``.
    """
    fname = os.fspath(fname)
    if not os.path.exists(fname):
        raise FileNotFoundError(f"nd.load: no such file: {fname}")
    if not h5py.is_hdf5(fname):
        raise DeepkitError(f"nd.load: {fname} is not an HDF5 file (nd.save writes HDF5)")
    try:
        with h5py.File(fname, "r") as f:
            if f.attrs.get("format") != _FORMAT:
                raise DeepkitError(f"nd.load: {fname} is an HDF5 file but was not written by "
                                   f"nd.save (no '{_FORMAT}' format attribute)")
            kind = f.attrs["kind"]
            keys = [k.decode() if isinstance(k, bytes) else str(k) for k in f.attrs["keys"]]
            grp = f["arrays"]
            arrays = [array(grp[str(i)][()], ctx=ctx, dtype=grp[str(i)].dtype)
                      for i in range(len(keys))]
    except (OSError, KeyError) as err:
        raise DeepkitError(f"nd.load: {fname} is damaged or incomplete ({err})") from None
    if kind == "dict":
        return dict(zip(keys, arrays))
    return arrays

