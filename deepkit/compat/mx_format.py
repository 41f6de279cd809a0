"""MXNet's binary NDArray file format: the ``.params`` files of ``mx.nd.save``/``load``.

A file is ``uint64 0x112`` (the list magic), ``uint64 0`` (reserved), the
arrays (``uint64`` count, then each array) and the names (``uint64`` count,
then per name ``uint64`` length and UTF-8 bytes; zero names for a list). One
dense array (version 2, what MXNet 1.x writes) is ``uint32 0xF993FAC9``,
``int32`` storage type (0, dense), the shape (``int32`` ndim, ``ndim x
int64``), the context (``int32`` device type, ``int32`` device id), ``int32``
type flag and the raw little-endian data. An array of ndim 0 is MXNet's empty
(``None``) array and ends after its shape.

Reading also accepts version 3 (``0xF993FACA``, NumPy shape semantics),
version 1 (``0xF993FAC8``) and the legacy layout without a magic (``uint32``
ndim and dims). Sparse arrays (row-sparse, CSR) are refused with a clear
error: deepkit has only dense arrays. Writing always produces version 2 with
the CPU context, which every MXNet 1.x reads; 0-d arrays, which MXNet 1.x
cannot hold, are written with shape ``(1,)``.
"""
import struct

import numpy as np

from deepkit_engine import nd
from deepkit_engine.base import DeepkitError
from deepkit_engine.fileio import atomic_path

__all__ = ["LIST_MAGIC", "V2_MAGIC", "save", "load", "dumps", "loads", "is_mxnet_file"]

LIST_MAGIC = 0x112
V1_MAGIC = 0xF993FAC8
V2_MAGIC = 0xF993FAC9
V3_MAGIC = 0xF993FACA

#: MXNet's type flags (mshadow) and the numpy dtypes they stand for.
TYPE_FLAGS = {0: np.float32, 1: np.float64, 2: np.float16, 3: np.uint8, 4: np.int32,
              5: np.int8, 6: np.int64, 7: np.bool_, 8: np.int16, 9: np.uint16, 10: np.uint32,
              11: np.uint64}
_FLAG_OF = {np.dtype(t): f for f, t in TYPE_FLAGS.items()}
_STORAGE = {0: "dense", 1: "row_sparse", 2: "csr"}


class _Reader:
    """Little-endian reads from a byte buffer, with errors that name the file and offset."""

    def __init__(self, data, source):
        self.data, self.pos, self.source = memoryview(data), 0, source

    def take(self, size, what):
        if self.pos + size > len(self.data):
            raise DeepkitError(f"mx.nd.load: {self.source} is truncated: reading {what} needs "
                               f"{size} bytes at offset {self.pos}, the file has "
                               f"{len(self.data)} bytes")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def unpack(self, fmt, what):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


def is_mxnet_file(path):
    """Whether the file at ``path`` starts with MXNet's NDArray-list magic."""
    with open(path, "rb") as f:
        head = f.read(8)
    return len(head) == 8 and struct.unpack("<Q", head)[0] == LIST_MAGIC


def _read_shape(reader, index, ndim_format="i", dim_format="q"):
    (ndim,) = reader.unpack(ndim_format, f"the ndim of array {index}")
    if ndim < 0:
        return None
    return tuple(int(d) for d in reader.unpack(f"{ndim}{dim_format}", f"the shape of array "
                                               f"{index}"))


def _read_array(reader, index):
    (magic,) = reader.unpack("I", f"the header of array {index}")
    if magic in (V2_MAGIC, V3_MAGIC):
        (stype,) = reader.unpack("i", f"the storage type of array {index}")
        if stype != 0:
            raise DeepkitError(f"mx.nd.load: {reader.source}: array {index} has storage type "
                               f"{_STORAGE.get(stype, stype)!r}; deepkit reads only dense "
                               "arrays (convert it with tostype('default') in MXNet)")
        shape = _read_shape(reader, index)
        if shape is None or (magic == V2_MAGIC and not shape):
            return None
    elif magic == V1_MAGIC:
        shape = _read_shape(reader, index)
        if not shape:
            return None
    else:
        ndim = magic  # the legacy layout: no magic, uint32 ndim and dims
        if ndim > 32:
            raise DeepkitError(f"mx.nd.load: {reader.source}: array {index} starts with "
                               f"0x{magic:08X}, which is no NDArray header (expected "
                               f"0x{V2_MAGIC:08X})")
        shape = tuple(int(d) for d in reader.unpack(f"{ndim}I", f"the shape of array {index}"))
        if not shape:
            return None
    reader.unpack("ii", f"the context of array {index}")
    (flag,) = reader.unpack("i", f"the type flag of array {index}")
    dtype = TYPE_FLAGS.get(flag)
    if dtype is None:
        raise DeepkitError(f"mx.nd.load: {reader.source}: array {index} has the type flag "
                           f"{flag}; known flags: {sorted(TYPE_FLAGS)}")
    dtype = np.dtype(dtype).newbyteorder("<")
    count = int(np.prod(shape))
    raw = reader.take(count * dtype.itemsize, f"the data of array {index} {shape}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def loads(data, source="<bytes>"):
    """Parse MXNet NDArray-file bytes.

    Args:
        data: The file's bytes.
        source: A name for error messages (the path).

    Returns:
        A list of numpy arrays (None for MXNet's empty arrays), or a dict
        ``{name: array}`` when the file has names.

    Raises:
        DeepkitError: The bytes are not an MXNet NDArray file or are damaged.
    """
    reader = _Reader(data, source)
    if len(data) < 16:
        raise DeepkitError(f"mx.nd.load: {source} has {len(data)} bytes; an MXNet NDArray file "
                           "has at least a 16-byte header")
    magic, _ = reader.unpack("QQ", "the file header")
    if magic != LIST_MAGIC:
        raise DeepkitError(f"mx.nd.load: {source} is not an MXNet NDArray file: it starts "
                           f"with 0x{magic:X}, expected the magic 0x{LIST_MAGIC:X}")
    (count,) = reader.unpack("Q", "the number of arrays")
    arrays = [_read_array(reader, i) for i in range(count)]
    (n_names,) = reader.unpack("Q", "the number of names")
    names = []
    for i in range(n_names):
        (length,) = reader.unpack("Q", f"the length of name {i}")
        names.append(bytes(reader.take(length, f"name {i}")).decode("utf-8"))
    if names and len(names) != len(arrays):
        raise DeepkitError(f"mx.nd.load: {source} has {len(arrays)} arrays but {len(names)} "
                           "names")
    return dict(zip(names, arrays)) if names else arrays


def _host(value, name):
    if value is None:
        return None
    array = value.asnumpy() if hasattr(value, "asnumpy") else np.asarray(value)
    if np.dtype(array.dtype) not in _FLAG_OF:
        raise DeepkitError(f"mx.nd.save: array {name} has dtype {array.dtype}, which MXNet's "
                           f"format cannot hold; use one of "
                           f"{sorted(str(np.dtype(t)) for t in TYPE_FLAGS.values())}")
    return array.reshape(1) if array.ndim == 0 else array


def _array_bytes(array):
    if array is None:
        return struct.pack("<Iii", V2_MAGIC, 0, 0)
    array = np.ascontiguousarray(array)
    head = struct.pack(f"<Iii{array.ndim}q", V2_MAGIC, 0, array.ndim, *array.shape)
    tail = struct.pack("<iii", 1, 0, _FLAG_OF[np.dtype(array.dtype)])
    return head + tail + array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()


def dumps(data):
    """The MXNet NDArray-file bytes of a list or a ``{name: array}`` dict.

    Args:
        data: An NDArray/numpy array, a list of them, or a dict of them.

    Returns:
        bytes: Version-2 arrays on CPU, as MXNet 1.x writes them.
    """
    if isinstance(data, dict):
        for key in data:
            if not isinstance(key, str):
                raise DeepkitError(f"mx.nd.save: dict keys must be str, got {key!r}")
        names = list(data)
        arrays = [_host(v, repr(k)) for k, v in data.items()]
    elif isinstance(data, (list, tuple)):
        names = []
        arrays = [_host(v, str(i)) for i, v in enumerate(data)]
    else:
        names, arrays = [], [_host(data, "0")]
    parts = [struct.pack("<QQQ", LIST_MAGIC, 0, len(arrays))]
    parts += [_array_bytes(a) for a in arrays]
    parts.append(struct.pack("<Q", len(names)))
    for name in names:
        encoded = name.encode("utf-8")
        parts.append(struct.pack("<Q", len(encoded)) + encoded)
    return b"".join(parts)


def save(fname, data):
    """Write arrays in MXNet's format (``mx.nd.save``), atomically.

    Args:
        fname: The file path.
        data: An NDArray, a list of NDArrays or a ``{name: NDArray}`` dict.
    """
    payload = dumps(data)
    with atomic_path(fname) as tmp:
        with open(tmp, "wb") as f:
            f.write(payload)


def load(fname, ctx=None):
    """Read an MXNet NDArray file (``mx.nd.load``) into NDArrays.

    Args:
        fname: The file path.
        ctx: The context of the arrays (default: the current one).

    Returns:
        A list of NDArrays, or a ``{name: NDArray}`` dict for files with names.
    """
    with open(fname, "rb") as f:
        raw = f.read()
    parsed = loads(raw, source=str(fname))

    def as_nd(array):
        return None if array is None else nd.array(array, ctx=ctx, dtype=array.dtype)

    if isinstance(parsed, dict):
        return {k: as_nd(v) for k, v in parsed.items()}
    return [as_nd(v) for v in parsed]
