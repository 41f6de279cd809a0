"""MXNet's ``mx.nd``: the engine's ``nd`` with MXNet's own file format for ``save``/``load``.

Every name of :mod:`deepkit_engine.nd` is reachable here (``mx.nd.array``,
``mx.nd.FullyConnected``, ``mx.nd.NDArray`` ...). ``save`` writes MXNet's
binary NDArray format (:mod:`deepkit.compat.mx_format`), so MXNet reads
the files; ``load`` reads MXNet's files and, for convenience, deepkit's own
HDF5 files too. deepkit's ``deepkit.nd.save`` keeps writing HDF5.
"""
import os
import types

import numpy as _np

from deepkit_engine import contrib as _engine_contrib
from deepkit_engine import nd as _engine_nd

from . import mx_format

__all__ = ["save", "load", "load_frombuffer", "contrib"]


class _ContribNamespace(types.ModuleType):
    """``mx.nd.contrib``: the control-flow functions (``foreach``, ``while_loop``, ``cond``)
    and every contrib op of ``nd.contrib``."""

    @staticmethod
    def isinf(data):
        """1 where ``data`` is +inf or -inf, else 0 (MXNet's ``contrib.isinf``), in its dtype."""
        return data.abs() == _np.inf

    @staticmethod
    def isfinite(data):
        """1 where ``data`` is neither infinite nor NaN, else 0 (``contrib.isfinite``)."""
        return (data == data) * (data.abs() != _np.inf)

    @staticmethod
    def isnan(data):
        """1 where ``data`` is NaN, else 0 (MXNet's ``contrib.isnan``), in its dtype."""
        return data != data

    def __getattr__(self, name):
        if hasattr(_engine_contrib.ndarray, name) and not name.startswith("_"):
            return getattr(_engine_contrib.ndarray, name)
        return getattr(_engine_nd.contrib, name)


contrib = _ContribNamespace(f"{__name__}.contrib", _ContribNamespace.__doc__)


def save(fname, data):
    """Save an NDArray, a list or a ``{name: NDArray}`` dict in MXNet's binary format.

    As in MXNet 1.x, only NDArrays are saved: numpy arrays or numbers inside
    a list or dict raise ``TypeError``, and anything that is not an NDArray,
    a list or a dict (a tuple, None) raises ``ValueError``.

    Args:
        fname: The file path (replaced atomically).
        data: What to save.

    Raises:
        TypeError: A dict key that is not a str, or a value that is not an NDArray.
        ValueError: ``data`` is not an NDArray, a list or a dict.
    """
    if isinstance(data, _engine_nd.NDArray):
        data = [data]
    if isinstance(data, dict):
        bad = [(k, v) for k, v in data.items()
               if not isinstance(k, str) or not isinstance(v, _engine_nd.NDArray)]
    elif isinstance(data, list):
        bad = [(i, v) for i, v in enumerate(data) if not isinstance(v, _engine_nd.NDArray)]
    else:
        raise ValueError(f"mx.nd.save: data needs to either be a NDArray, dict of str, NDArray "
                         f"pairs or a list of NDArrays, got {type(data).__name__}")
    if bad:
        key, value = bad[0]
        raise TypeError(f"mx.nd.save: save only accepts a dict str->NDArray or a list of "
                        f"NDArray; entry {key!r} is a {type(value).__name__}")
    mx_format.save(fname, data)


def load(fname, ctx=None):
    """Load an MXNet NDArray file (or a deepkit HDF5 array file).

    Args:
        fname: The file path.
        ctx: The context of the loaded arrays.

    Returns:
        A list of NDArrays, or a dict for files saved from a dict.

    Raises:
        FileNotFoundError: No such file.
    """
    fname = os.fspath(fname)
    if not os.path.exists(fname):
        raise FileNotFoundError(f"mx.nd.load: no such file: {fname}")
    if mx_format.is_mxnet_file(fname):
        return mx_format.load(fname, ctx=ctx)
    return _engine_nd.load(fname, ctx=ctx)


def load_frombuffer(buf):
    """Load NDArrays from the bytes of an MXNet NDArray file (what ``save`` writes).

    Args:
        buf: ``bytes`` (or a bytearray / memoryview).

    Returns:
        A list of NDArrays, or a dict for data saved from a dict.

    Raises:
        MXNetError: The bytes are not an MXNet NDArray file or are cut short.
    """
    if not isinstance(buf, (bytes, bytearray, memoryview)):
        raise TypeError(f"mx.nd.load_frombuffer: buf must be bytes, got {type(buf).__name__}")
    data = mx_format.loads(bytes(buf), "the buffer")

    def wrap(array):
        return None if array is None else _engine_nd.array(array, dtype=array.dtype)

    if isinstance(data, dict):
        return {k: wrap(v) for k, v in data.items()}
    return [wrap(v) for v in data]


def __getattr__(name):
    return getattr(_engine_nd, name)


def __dir__():
    return sorted(set(dir(_engine_nd)) | set(__all__))
