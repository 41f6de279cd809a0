"""The one-file model format ``deepkit.symbol_model``: a symbol, its weights and metadata.

One HDF5 file, written atomically:

- attributes ``format`` (:data:`FORMAT`), ``version`` (:data:`VERSION`),
  ``symbol_json`` (the symbol as JSON) and ``metadata`` (a JSON object);
- groups ``arg_params`` and ``aux_params``: one float32 dataset per
  parameter, keyed by :func:`escape_name` of its name, with the name itself in
  the dataset's ``name`` attribute (and any further per-parameter attributes);
- an optional dataset ``preprocessing/mean``: the mean image, which
  :func:`read_symbol_file` returns as ``metadata['preprocessing']['mean_array']``.

Converted Caffe models are written in this format, and ``deepkit.load_model``
reads it back as a model.
"""
import json
import os

import h5py
import numpy as np

from deepkit_engine import symbol as sym
from deepkit_engine.base import DeepkitError, FileFormatError
from deepkit_engine.fileio import atomic_path

__all__ = ["FORMAT", "VERSION", "escape_name", "unescape_name", "write_symbol_file",
           "read_symbol_file"]

FORMAT = "deepkit.symbol_model"
VERSION = 1

_GROUPS = ("arg_params", "aux_params")
_MEAN = "preprocessing/mean"


def escape_name(name):
    """A parameter name as an HDF5 key: '%' -> '%25', '/' -> '%2F' (reversible, no collisions).

    Args:
        name: The parameter name.

    Returns:
        The key: no '/', never '.' or empty.
    """
    text = name.replace("%", "%25").replace("/", "%2F")
    if text in (".", ""):
        text = text.replace(".", "%2E") or "%00"
    return text


def unescape_name(key):
    """The parameter name of an HDF5 key made by :func:`escape_name`.

    Args:
        key: The HDF5 key.

    Returns:
        The parameter name.
    """
    if key == "%00":
        return ""
    return key.replace("%2F", "/").replace("%2E", ".").replace("%25", "%")


def write_symbol_file(path, symbol, arg_params, aux_params, metadata, *, param_attrs=None):
    """Write a symbol with its weights and metadata as one HDF5 file, atomically.

    A failure while writing leaves any previous file at ``path`` as it was.

    Args:
        path: The file to write.
        symbol: The ``deepkit_engine`` Symbol.
        arg_params: ``{name: array}`` of argument values (stored as float32).
        aux_params: ``{name: array}`` of auxiliary-state values (stored as float32).
        metadata: A JSON-ready dict. ``metadata['preprocessing']['mean_array']``,
            if present, is stored as the dataset ``preprocessing/mean`` rather
            than in the JSON.
        param_attrs: Optional ``{name: {attribute: value}}``: extra HDF5
            attributes of parameter datasets (for example where a value came from).

    Returns:
        ``path``.
    """
    path = os.fspath(path)
    metadata = dict(metadata or {})
    mean = None
    pre = metadata.get("preprocessing")
    if isinstance(pre, dict) and "mean_array" in pre:
        pre = dict(pre)
        mean = pre.pop("mean_array")
        metadata["preprocessing"] = pre
    param_attrs = param_attrs or {}
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["version"] = VERSION
            f.attrs["symbol_json"] = symbol.tojson()
            f.attrs["metadata"] = json.dumps(metadata)
            for group_name, params in zip(_GROUPS, (arg_params, aux_params)):
                group = f.create_group(group_name)
                for name, array in params.items():
                    data = np.asarray(array)
                    if data.dtype != np.float32:
                        data = data.astype(np.float32)
                    ds = group.create_dataset(escape_name(name), data=data)
                    ds.attrs["name"] = name
                    for key, value in param_attrs.get(name, {}).items():
                        ds.attrs[key] = value
            if mean is not None:
                f.create_dataset(_MEAN, data=np.asarray(mean, np.float32))
    return path


def read_symbol_file(path):
    """Read a file written by :func:`write_symbol_file`.

    Args:
        path: The file to read.

    Returns:
        ``(symbol, arg_params, aux_params, metadata)``: the Symbol, two
        ``{name: numpy array}`` dicts, and the metadata dict (with
        ``metadata['preprocessing']['mean_array']`` when the file holds a mean).

    Raises:
        FileNotFoundError: There is no file at ``path``.
        FileFormatError: The file is not in this format, is of a newer version,
            or is damaged; the message names the file.
    """
    path = os.fspath(path)
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None
    except OSError as e:
        raise FileFormatError(path, None, f"not an HDF5 file written by deepkit ({e})") from None
    with f:
        _check_format(f, path)
        try:
            return _read_contents(f)
        except DeepkitError as e:
            raise FileFormatError(path, None, f"the file is damaged: {e}") from None
        except (KeyError, ValueError, TypeError, OSError) as e:
            raise FileFormatError(path, None,
                                  f"the file is damaged: {type(e).__name__}: {e}") from None


def _check_format(f, path):
    fmt = f.attrs.get("format")
    if isinstance(fmt, bytes):
        fmt = fmt.decode()
    if fmt != FORMAT:
        raise FileFormatError(path, "attribute 'format'", f"not a converted model: the format "
                              f"is {fmt!r}, expected {FORMAT!r}")
    try:
        version = int(f.attrs.get("version", 0))
    except (TypeError, ValueError):
        raise FileFormatError(path, "attribute 'version'", f"the file is damaged: the version "
                              f"is {f.attrs.get('version')!r}") from None
    if version > VERSION:
        raise FileFormatError(path, "attribute 'version'", f"format version {version}; this "
                              f"deepkit reads up to {VERSION}: upgrade deepkit")


def _read_contents(f):
    symbol = sym.load_json(_text(f.attrs["symbol_json"]))
    metadata = json.loads(_text(f.attrs["metadata"]))
    if not isinstance(metadata, dict):
        raise ValueError(f"the metadata is a JSON {type(metadata).__name__}, not an object")
    params = []
    for group_name in _GROUPS:
        out = {}
        for key, ds in f[group_name].items():
            name = ds.attrs.get("name")
            name = unescape_name(key) if name is None else _text(name)
            out[name] = ds[()]
        params.append(out)
    if _MEAN in f:
        pre = metadata.get("preprocessing")
        if not isinstance(pre, dict):
            pre = metadata["preprocessing"] = {}
        pre["mean_array"] = f[_MEAN][()]
    return symbol, params[0], params[1], metadata


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)
