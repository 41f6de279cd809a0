"""Reading HDF5 files that may be damaged or hostile: every failure a :class:`FileFormatError`.

Model and array files are read through :class:`SafeFile`: it opens the file,
follows only hard links inside it (external and soft links are refused),
reads only numeric datasets stored in the file itself, checks a dataset's
shape and dtype before reading its data, refuses a dataset that declares more
data than the file stores, and verifies the checksum that writers store next
to each dataset (``crc32`` attribute; files written before checksums load
without the check). Whatever h5py, the OS or a decoder raises on a damaged
file becomes a :class:`FileFormatError` naming the file and the object.
"""
import contextlib
import json
import os
import zlib

import h5py
import numpy as np

from .base import FileFormatError

__all__ = ["SafeFile", "checksum", "write_dataset", "CHECKSUM_ATTR", "MAX_JSON_DEPTH",
           "DAMAGE_ERRORS"]

#: The attribute of a dataset holding the CRC-32 of its C-ordered bytes.
CHECKSUM_ATTR = "crc32"

#: JSON attributes nested deeper than this are refused (Python's parser would recurse).
MAX_JSON_DEPTH = 200

#: What a damaged file can make h5py, numpy or a decoder raise.
DAMAGE_ERRORS = (OSError, KeyError, ValueError, TypeError, IndexError, RuntimeError,
                 RecursionError, MemoryError, UnicodeDecodeError, OverflowError, AttributeError)


def checksum(array):
    """The CRC-32 of ``array``'s C-ordered bytes (an int)."""
    return zlib.crc32(np.ascontiguousarray(array).view(np.uint8).reshape(-1)) & 0xFFFFFFFF


def write_dataset(group, name, array):
    """Create dataset ``name`` in ``group`` with ``array`` and its checksum."""
    array = np.asarray(array)
    dataset = group.create_dataset(name, data=array)
    dataset.attrs[CHECKSUM_ATTR] = np.uint32(checksum(array))
    return dataset


def _json_depth(text):
    """The deepest bracket nesting of a JSON text (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


class SafeFile:
    """An HDF5 file opened for reading with every access checked.

    Use as a context manager: ``with SafeFile(path, 'load_model') as f:``.
    Exceptions raised by h5py inside the block become :class:`FileFormatError`.

    Args:
        path: The file.
        what: The caller, for messages (``'load_model'``, ``'nd.load'``...).
    """

    def __init__(self, path, what):
        self.path = os.fspath(path)
        self.what = what
        self.file = None
        self.unchecked = 0  # datasets read without a stored checksum

    def error(self, obj, problem):
        """A :class:`FileFormatError` about ``obj`` in this file."""
        return FileFormatError(self.path, obj, problem)

    def __enter__(self):
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"{self.what}: no such file: {self.path}")
        if not h5py.is_hdf5(self.path):
            raise FileFormatError(self.path, None, f"{self.what}: {self.path} is not an HDF5 "
                                                   "file")
        try:
            self.file = h5py.File(self.path, "r")
        except DAMAGE_ERRORS as err:
            raise self.error(None, f"the HDF5 file is damaged ({type(err).__name__}: {err})") \
                from None
        return self

    def __exit__(self, exc_type, exc, tb):
        with contextlib.suppress(Exception):
            self.file.close()
        if exc_type is not None and not isinstance(exc, FileFormatError) \
                and issubclass(exc_type, DAMAGE_ERRORS) and self._is_file_damage(exc):
            raise self.error(None, f"the file is damaged ({exc_type.__name__}: {exc})") from exc
        return False

    @staticmethod
    def _is_file_damage(exc):
        """Whether ``exc`` came from reading the file (h5py, numpy, json), not from the caller."""
        tb = exc.__traceback__
        while tb is not None:
            module = tb.tb_frame.f_globals.get("__name__", "")
            if module.startswith(("h5py", "json", "numpy")) or module == __name__:
                return True
            tb = tb.tb_next
        return isinstance(exc, (RecursionError, MemoryError, UnicodeDecodeError))

    # -- objects ------------------------------------------------------------------------
    def node(self, name, kind=None, required=True):
        """The group or dataset at ``name`` (hard links only), or None if absent and optional.

        Args:
            name: Path inside the file (``'weights/dense/weight'``).
            kind: ``h5py.Group``, ``h5py.Dataset`` or None (either).
            required: Raise when absent.
        """
        current = self.file
        walked = []
        for part in [p for p in name.split("/") if p]:
            walked.append(part)
            try:
                link = current.get(part, getlink=True)
            except DAMAGE_ERRORS as err:
                raise self.error("/".join(walked), f"cannot be read ({err})") from None
            if link is None:
                if required:
                    raise self.error("/".join(walked), "is missing")
                return None
            if not isinstance(link, h5py.HardLink):
                raise self.error("/".join(walked), f"is a {type(link).__name__}; links "
                                                   "out of the object tree are refused")
            if not isinstance(current, h5py.Group):
                raise self.error("/".join(walked[:-1]), "is not a group")
            try:
                current = current[part]
            except DAMAGE_ERRORS as err:
                raise self.error("/".join(walked), f"cannot be read ({err})") from None
        if kind is not None and not isinstance(current, kind):
            raise self.error(name or "/", f"is a {type(current).__name__}, expected a "
                                          f"{kind.__name__}")
        return current

    def keys(self, name):
        """The member names of group ``name``."""
        group = self.node(name, h5py.Group)
        try:
            return list(group.keys())
        except DAMAGE_ERRORS as err:
            raise self.error(name, f"its member list cannot be read ({err})") from None

    def attr(self, key, default=None, required=False, obj=""):
        """Attribute ``key`` of the object ``obj`` (default the root); str for strings."""
        target = self.node(obj) if obj else self.file
        try:
            if key not in target.attrs:
                if required:
                    raise self.error(f"{obj or '/'}@{key}", "is missing")
                return default
            value = target.attrs[key]
        except FileFormatError:
            raise
        except DAMAGE_ERRORS as err:
            raise self.error(f"{obj or '/'}@{key}", f"cannot be read ({err})") from None
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise self.error(f"{obj or '/'}@{key}", "is not UTF-8 text") from None
        return value

    def json_attr(self, key, required=True):
        """Root attribute ``key`` parsed as JSON (depth and type checked)."""
        text = self.attr(key, required=required)
        if text is None:
            return None
        if not isinstance(text, str):
            raise self.error(f"/@{key}", f"must be JSON text, found {type(text).__name__}")
        if _json_depth(text) > MAX_JSON_DEPTH:
            raise self.error(f"/@{key}", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as err:
            raise self.error(f"/@{key}", f"is not valid JSON ({err})") from None

    def int_attr(self, obj, key, default=None, minimum=None):
        """An integer attribute of ``obj``, checked against ``minimum``."""
        value = self.attr(key, default, required=default is None, obj=obj)
        if isinstance(value, np.ndarray) and value.shape == ():
            value = value[()]
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise self.error(f"{obj}@{key}", f"must be an integer, found {value!r}")
        value = int(value)
        if minimum is not None and value < minimum:
            raise self.error(f"{obj}@{key}", f"must be >= {minimum}, found {value}")
        return value

    # -- data -----------------------------------------------------------------------------
    def read(self, name, shape=None, dtype_kinds="biuf"):
        """The data of dataset ``name`` as numpy, checked before and after reading.

        Args:
            name: Path of the dataset.
            shape: The expected shape (checked before any data is read), or None.
            dtype_kinds: numpy dtype kinds accepted (numeric by default).

        Returns:
            The array.
        """
        ds = self.node(name, h5py.Dataset)
        try:
            dtype, actual = ds.dtype, tuple(ds.shape) if ds.shape is not None else None
            external = ds.external
            virtual = ds.is_virtual
            compressed = ds.compression is not None or ds.chunks is not None
            stored = ds.id.get_storage_size()
        except DAMAGE_ERRORS as err:
            raise self.error(name, f"its header cannot be read ({err})") from None
        if external or virtual:
            raise self.error(name, "keeps its data outside the file (external or virtual "
                                   "storage is refused)")
        if dtype.fields is not None or dtype.kind not in dtype_kinds or dtype.subdtype:
            raise self.error(name, f"has dtype {dtype}, expected a numeric array")
        if actual is None:
            raise self.error(name, "is an empty (null) dataset")
        if shape is not None and actual != tuple(shape):
            raise self.error(name, f"has shape {actual}, the model expects {tuple(shape)}")
        nbytes = int(np.prod(actual, dtype=np.float64) * dtype.itemsize)
        if not compressed and nbytes and stored < nbytes:
            raise self.error(name, f"declares {nbytes} bytes of data but the file stores "
                                   f"{stored}: the file is truncated or damaged")
        try:
            value = np.asarray(ds[()])
            stored_sum = ds.attrs.get(CHECKSUM_ATTR)
        except DAMAGE_ERRORS as err:
            raise self.error(name, f"its data cannot be read ({type(err).__name__}: {err})") \
                from None
        if stored_sum is None:
            self.unchecked += 1
        elif int(stored_sum) != checksum(value):
            raise self.error(name, f"checksum mismatch (stored {int(stored_sum):#010x}, data "
                                   f"{checksum(value):#010x}): the data is damaged")
        return value
