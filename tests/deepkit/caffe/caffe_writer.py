"""A small Caffe protobuf writer for tests and benchmarks (not part of the package).

Messages are plain dicts keyed by caffe.proto field names (nested dicts for
sub-messages, lists for repeated fields, enum NAMES or numbers, numpy arrays
for blob data); ``Message`` objects are accepted too.  Field numbers and types
come from the compiled schema (``deepkit.caffe.schema``), fields are written
in field-number order like protobuf's C++ serializer, and only the fields
present in the dict are written (proto2 presence).

Control over the encoding, for parser tests:

- ``packed_floats=False`` writes ``BlobProto.data/diff/double_data/double_diff``
  unpacked (one tag per value), as odd writers do;
- ``Packed(values)`` / ``Unpacked(values)`` force either encoding of any
  repeated scalar field;
- the key ``"_unknown"`` holds ``[(number, wire_type, value), ...]`` written
  after the known fields (value: int for wire types 0/1/5, bytes for 2);
- negative int32/int64 values become 10-byte varints, as protobuf writes them.

Large files are streamed: array data is converted to little-endian float32
one blob at a time while writing, so a 550 MB caffemodel of broadcast or
memory-mapped arrays needs little memory.

Helpers: ``blob`` (BlobProto dict, new or legacy 4-D shape, float or double),
``v2_layer``, ``v1_layer``, ``v0_layer``, ``encode``, ``write``,
``write_caffemodel``, ``write_binaryproto``, ``to_prototxt``.
"""
import os
import struct

import numpy as np

from deepkit.caffe.message import Message, descriptor
from deepkit.caffe.text_format import format_message

__all__ = ["Packed", "Unpacked", "blob", "v2_layer", "v1_layer", "v0_layer", "encode",
           "encode_varint", "tag", "write", "write_caffemodel", "write_binaryproto",
           "to_prototxt", "caffemodel_bytes"]

_MASK64 = (1 << 64) - 1
_FIXED = {"float": ("<f", 5), "double": ("<d", 1), "fixed32": ("<I", 5), "sfixed32": ("<i", 5),
          "fixed64": ("<Q", 1), "sfixed64": ("<q", 1)}
_NP = {"float": "<f4", "double": "<f8"}


class Packed(list):
    """Force the packed encoding of a repeated scalar field."""


class Unpacked(list):
    """Force the unpacked encoding (one tag per value) of a repeated scalar field."""


def encode_varint(n):
    """Protobuf varint of ``n``; negative numbers as 64-bit two's complement (10 bytes)."""
    n &= _MASK64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def tag(number, wire_type):
    return encode_varint((number << 3) | wire_type)


class _ArrayChunk:
    """Array data written lazily (converted to little-endian at write time)."""

    def __init__(self, values, np_dtype, unpacked_tag=None):
        self.values = values
        self.dtype = np.dtype(np_dtype)
        self.tag = unpacked_tag
        n = int(np.size(values))
        self.count = n
        self.nbytes = n * (self.dtype.itemsize + (len(unpacked_tag) if unpacked_tag else 0))

    def materialize(self):
        arr = np.ascontiguousarray(np.asarray(self.values).reshape(-1), dtype=self.dtype)
        if self.tag is None:
            return memoryview(arr).cast("B")
        ntag = len(self.tag)
        out = np.empty((self.count, ntag + self.dtype.itemsize), dtype=np.uint8)
        out[:, :ntag] = np.frombuffer(self.tag, dtype=np.uint8)
        out[:, ntag:] = arr.view(np.uint8).reshape(self.count, self.dtype.itemsize)
        return memoryview(out).cast("B")


def _scalar_bytes(fd, v):
    t = fd.type
    if fd.kind == "enum":
        if isinstance(v, str):
            v = fd.enum_by_name[v]
        return encode_varint(int(v))
    if t in ("int32", "int64", "uint32", "uint64"):
        return encode_varint(int(v))
    if t == "bool":
        return encode_varint(1 if v else 0)
    if t in ("sint32", "sint64"):
        v = int(v)
        return encode_varint((v << 1) ^ (v >> 63) if v < 0 else v << 1)
    if t in _FIXED:
        return struct.pack(_FIXED[t][0], v)
    raise AssertionError(t)


def _wire_type(fd):
    if fd.kind == "message" or fd.type in ("string", "bytes"):
        return 2
    if fd.type in _FIXED:
        return _FIXED[fd.type][1]
    return 0


def _as_items(value):
    if isinstance(value, Message):
        return dict(value.fields())
    return value


def _chunks(type_name, value, packed_floats):
    """(list of bytes / _ArrayChunk, total length) for one message."""
    desc = descriptor(type_name)
    value = _as_items(value)
    chunks = []
    total = 0
    unknown = value.get("_unknown", ())
    for key in value:
        if key != "_unknown" and key not in desc.fields:
            raise KeyError(f"{type_name} has no field {key!r}")
    for fd in sorted(desc.fields.values(), key=lambda f: f.number):
        if fd.name not in value:
            continue
        v = value[fd.name]
        if v is None:
            continue
        wt = _wire_type(fd)
        if fd.kind == "message":
            items = v if fd.repeated else [v]
            for item in items:
                sub, n = _chunks(fd.type, item, packed_floats)
                head = tag(fd.number, 2) + encode_varint(n)
                chunks.append(head)
                chunks.extend(sub)
                total += len(head) + n
            continue
        if fd.type in ("string", "bytes"):
            items = v if fd.repeated else [v]
            for item in items:
                data = item.encode("utf-8", "surrogateescape") if isinstance(item, str) \
                    else bytes(item)
                head = tag(fd.number, 2) + encode_varint(len(data))
                chunks += [head, data]
                total += len(head) + len(data)
            continue
        if not fd.repeated:
            data = tag(fd.number, wt) + _scalar_bytes(fd, v)
            chunks.append(data)
            total += len(data)
            continue
        # repeated scalars
        if isinstance(v, Packed):
            packed = True
        elif isinstance(v, Unpacked):
            packed = False
        elif fd.type in _NP and fd.packed:
            packed = packed_floats
        else:
            packed = fd.packed
        if fd.type in _NP:
            n = int(np.size(v))
            if n == 0 and not isinstance(v, Packed):
                continue
            if packed:
                arr = _ArrayChunk(v, _NP[fd.type])
                head = tag(fd.number, 2) + encode_varint(arr.nbytes)
                chunks += [head, arr]
                total += len(head) + arr.nbytes
            else:
                arr = _ArrayChunk(v, _NP[fd.type], unpacked_tag=tag(fd.number, wt))
                chunks.append(arr)
                total += arr.nbytes
            continue
        items = list(v)
        if packed:
            body = b"".join(_scalar_bytes(fd, item) for item in items)
            if not body and not isinstance(v, Packed):
                continue
            data = tag(fd.number, 2) + encode_varint(len(body)) + body
        else:
            data = b"".join(tag(fd.number, wt) + _scalar_bytes(fd, item) for item in items)
        chunks.append(data)
        total += len(data)
    for number, wt, raw in unknown:
        if wt == 0:
            data = tag(number, 0) + encode_varint(raw)
        elif wt == 1:
            data = tag(number, 1) + struct.pack("<Q", raw & _MASK64)
        elif wt == 5:
            data = tag(number, 5) + struct.pack("<I", raw & 0xFFFFFFFF)
        elif wt == 2:
            raw = bytes(raw)
            data = tag(number, 2) + encode_varint(len(raw)) + raw
        else:
            raise ValueError(f"wire type {wt} not supported for unknown fields")
        chunks.append(data)
        total += len(data)
    return chunks, total


def encode(type_name, value, *, packed_floats=True):
    """The wire-format bytes of ``value`` as message ``type_name``."""
    chunks, total = _chunks(type_name, value, packed_floats)
    out = b"".join(c if isinstance(c, bytes) else bytes(c.materialize()) for c in chunks)
    assert len(out) == total
    return out


def write(path, type_name, value, *, packed_floats=True):
    """Stream ``value`` to ``path`` (atomically); returns the number of bytes written."""
    chunks, total = _chunks(type_name, value, packed_floats)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        for c in chunks:
            f.write(c if isinstance(c, bytes) else c.materialize())
    os.replace(tmp, path)
    return total


def caffemodel_bytes(net, *, packed_floats=True):
    return encode("NetParameter", net, packed_floats=packed_floats)


def write_caffemodel(path, net, *, packed_floats=True):
    """Write a NetParameter dict as a binary .caffemodel; returns its size in bytes."""
    return write(path, "NetParameter", net, packed_floats=packed_floats)


def write_binaryproto(path, blob_dict, *, packed_floats=True):
    """Write a BlobProto dict (e.g. ``blob(mean, legacy=True)``) as a .binaryproto."""
    return write(path, "BlobProto", blob_dict, packed_floats=packed_floats)


def to_prototxt(net, type_name="NetParameter"):
    """Prototxt text of a message dict (or Message)."""
    msg = net if isinstance(net, Message) else Message.from_dict(type_name, net)
    return format_message(msg) + "\n"


# -- builders --------------------------------------------------------------------
def blob(values, shape=None, *, legacy=False, double=False):
    """A BlobProto dict holding ``values`` (an array; ``shape`` defaults to its shape).

    ``legacy=True`` writes the deprecated ``num/channels/height/width`` fields,
    right-aligned and padded with 1 as old Caffe did (so a bias ``(N,)`` is
    stored as ``1, 1, 1, N``); ``double=True`` stores ``double_data``.
    """
    arr = values if hasattr(values, "shape") else np.asarray(values, dtype=np.float32)
    shape = tuple(arr.shape) if shape is None else tuple(shape)
    out = {}
    if legacy:
        if len(shape) > 4:
            raise ValueError(f"a legacy blob has at most 4 dims, not {shape}")
        num, channels, height, width = (1,) * (4 - len(shape)) + shape
        out.update(num=num, channels=channels, height=height, width=width)
    else:
        out["shape"] = {"dim": list(shape)}
    out["double_data" if double else "data"] = arr
    return out


def v2_layer(name, type, bottom=(), top=(), blobs=(), **fields):
    """A LayerParameter dict (``type`` is the V2 string type)."""
    layer = {"name": name, "type": type}
    if bottom:
        layer["bottom"] = list(bottom)
    if top:
        layer["top"] = list(top)
    if blobs:
        layer["blobs"] = [b if isinstance(b, dict) else blob(b) for b in blobs]
    layer.update(fields)
    return layer


def v1_layer(name, type, bottom=(), top=(), blobs=(), **fields):
    """A V1LayerParameter dict (``type`` is the enum name, e.g. ``'CONVOLUTION'``).

    Blobs given as arrays are written with legacy 4-D shapes, as V1 Caffe did.
    """
    layer = {"name": name, "type": type}
    if bottom:
        layer["bottom"] = list(bottom)
    if top:
        layer["top"] = list(top)
    if blobs:
        layer["blobs"] = [b if isinstance(b, dict) else blob(b, legacy=True) for b in blobs]
    layer.update(fields)
    return layer


def v0_layer(name, type, bottom=(), top=(), blobs=(), **v0_fields):
    """A V1LayerParameter dict wrapping a V0 ``layer`` (``type``: V0 string like ``'conv'``)."""
    inner = {"name": name, "type": type}
    if blobs:
        inner["blobs"] = [b if isinstance(b, dict) else blob(b, legacy=True) for b in blobs]
    inner.update(v0_fields)
    conn = {"layer": inner}
    if bottom:
        conn["bottom"] = list(bottom)
    if top:
        conn["top"] = list(top)
    return conn
