"""Schema-driven decoder for the protobuf binary wire format (caffemodels, binaryprotos).

``decode(buffer, 'NetParameter')`` turns bytes, or the memoryview of a
memory-mapped file, into a ``Message`` tree:

- varints up to 10 bytes, negative ``int32``/``int64`` as 64-bit two's
  complement (``axis: -1`` is a 10-byte varint), ``sint*`` zigzag, ``bool``,
  enums (as value names), fixed 32/64-bit integers, ``float`` and ``double``;
- strings, bytes (read-only memoryviews of the buffer) and nested messages
  (a message field seen twice is merged, as protobuf does);
- repeated scalars packed or unpacked, in any mix;
- ``BlobProto.data``/``diff`` (float32) and ``double_data``/``double_diff``
  (float64): a packed run becomes a numpy array that views the buffer
  (``numpy.frombuffer``, no copy: a 500 MB caffemodel costs no extra memory);
  an unpacked run is gathered in one vectorised pass;
- fields the schema does not know, or whose wire type does not match the
  schema (a fork's field at a BVLC number), are skipped by wire type and
  recorded in ``msg.unknown_fields`` with their byte offsets (the first
  :data:`MAX_UNKNOWN_RECORDED` per message; the rest are counted in one last
  entry, so a hostile file cannot make memory grow far beyond its size);
- every length and every read is bounds-checked against the enclosing
  message: truncated or corrupt input raises ``CaffeFormatError`` with the
  byte offset, the field path and what is wrong, never another exception.
"""
import struct

import numpy as np

from .message import ARRAY_DTYPES, CaffeFormatError, Message, UnknownField, descriptor

__all__ = ["decode", "WIRE_TYPE_NAMES", "MAX_UNKNOWN_RECORDED", "UNRECORDED"]

#: Unknown fields recorded one by one per message; more are only counted.
MAX_UNKNOWN_RECORDED = 1000

#: The ``reason`` of the last entry that counts (in ``value``) the unrecorded fields.
UNRECORDED = "unrecorded"

WIRE_TYPE_NAMES = {0: "varint", 1: "64-bit", 2: "length-delimited", 3: "start-group",
                   4: "end-group", 5: "32-bit"}

_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF
_MAX_DEPTH = 100

_FIXED = {
    "float": (struct.Struct("<f"), 4), "double": (struct.Struct("<d"), 8),
    "fixed32": (struct.Struct("<I"), 4), "sfixed32": (struct.Struct("<i"), 4),
    "fixed64": (struct.Struct("<Q"), 8), "sfixed64": (struct.Struct("<q"), 8),
}
_FIXED_NP = {"float": "<f4", "double": "<f8", "fixed32": "<u4", "sfixed32": "<i4",
             "fixed64": "<u8", "sfixed64": "<i8"}


class _WireError(Exception):
    """Internal: a decoding failure at ``offset``; ``path`` grows while unwinding."""

    def __init__(self, offset, reason):
        super().__init__(reason)
        self.offset, self.reason, self.path = offset, reason, []


def _read_varint(mv, pos, end, what):
    start = pos
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise _WireError(start, f"truncated varint ({what}): the data ends inside it")
        b = mv[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result & _MASK64, pos
        shift += 7
        if shift >= 70:
            raise _WireError(start, f"varint longer than 10 bytes ({what}): corrupt data")


def _varint_value(t, v):
    """Interpret a raw 64-bit varint as protobuf scalar type ``t``."""
    if t == "int32":
        v &= _MASK32
        return v - (1 << 32) if v >= (1 << 31) else v
    if t == "int64":
        return v - (1 << 64) if v >= (1 << 63) else v
    if t == "uint32":
        return v & _MASK32
    if t == "uint64":
        return v
    if t == "bool":
        return v != 0
    if t == "sint32":
        v &= _MASK32
        return (v >> 1) ^ -(v & 1)
    if t == "sint64":
        return (v >> 1) ^ -(v & 1)
    raise AssertionError(t)


def _skip(mv, pos, end, wire_type, number, depth):
    """Skip one field value of ``wire_type`` starting at ``pos``; return (value, new pos)."""
    if wire_type == 0:
        return _read_varint(mv, pos, end, f"field #{number}")
    if wire_type == 1:
        if end - pos < 8:
            raise _WireError(pos, f"truncated 64-bit value of field #{number}")
        return struct.unpack_from("<Q", mv, pos)[0], pos + 8
    if wire_type == 5:
        if end - pos < 4:
            raise _WireError(pos, f"truncated 32-bit value of field #{number}")
        return struct.unpack_from("<I", mv, pos)[0], pos + 4
    if wire_type == 2:
        start = pos
        length, pos = _read_varint(mv, pos, end, f"length of field #{number}")
        if length > end - pos:
            raise _WireError(start, _overrun(number, length, end - pos))
        return mv[pos:pos + length], pos + length
    if wire_type == 3:
        if depth > _MAX_DEPTH:
            raise _WireError(pos, "groups nested too deeply: corrupt data")
        while True:
            tag_start = pos
            if pos >= end:
                raise _WireError(pos, f"truncated group (field #{number}): no end-group tag")
            tag, pos = _read_varint(mv, pos, end, "field tag")
            wt, num = tag & 7, tag >> 3
            if wt == 4:
                if num != number:
                    raise _WireError(tag_start, f"end-group tag #{num} does not match the "
                                                f"start-group #{number}: corrupt data")
                return None, pos
            if num == 0 or wt in (6, 7):
                raise _WireError(tag_start, _bad_tag(tag))
            _, pos = _skip(mv, pos, end, wt, num, depth + 1)
    if wire_type == 4:
        raise _WireError(pos, f"unexpected end-group tag for field #{number}: corrupt data")
    raise _WireError(pos, f"invalid wire type {wire_type}")


def _overrun(number, length, remaining, name=None):
    what = f"field '{name}' (#{number})" if name else f"field #{number}"
    return (f"{what} declares {length} bytes but only {remaining} remain in the "
            f"enclosing message: the file is truncated or corrupt")


def _bad_tag(tag):
    wt, num = tag & 7, tag >> 3
    if num == 0:
        return (f"invalid field number 0 (tag byte 0x{tag:02x}): corrupt data, or not a "
                "protobuf file")
    return (f"invalid wire type {wt} for field #{num}: corrupt data, or not a binary protobuf "
            f"file")


def _fixed_run(mv, tag_start, end, tag_bytes, size, dtype):
    """Gather a run of unpacked fixed-size repeated values (tag, payload, tag, ...)."""
    ntag = len(tag_bytes)
    stride = ntag + size
    n_max = (end - tag_start) // stride
    if n_max == 0:
        raise _WireError(tag_start + ntag, f"truncated {size}-byte value")
    raw = np.frombuffer(mv, dtype=np.uint8, count=n_max * stride, offset=tag_start)
    raw = raw.reshape(n_max, stride)
    want = np.frombuffer(tag_bytes, dtype=np.uint8)
    n = 0
    chunk = 4096
    while n < n_max:
        stop = min(n_max, n + chunk)
        block = raw[n:stop, :ntag]
        ok = block[:, 0] == want[0] if ntag == 1 else (block == want).all(axis=1)
        bad = np.flatnonzero(~ok)
        if bad.size:
            n += int(bad[0])
            break
        n = stop
        chunk *= 4
    values = np.ascontiguousarray(raw[:n, ntag:]).view(dtype).reshape(n)
    return values, tag_start + n * stride


def _new(desc):
    msg = Message.__new__(Message)
    object.__setattr__(msg, "_desc", desc)
    object.__setattr__(msg, "_values", {})
    object.__setattr__(msg, "unknown_fields", [])
    object.__setattr__(msg, "meta", None)
    object.__setattr__(msg, "_frozen", False)
    return msg


def _count_unrecorded(unknown, offset):
    """Count one more skipped field in the last entry of a full ``unknown`` list."""
    last = unknown[-1]
    if last.reason == UNRECORDED:
        last.value += 1
        return
    unknown.append(UnknownField(offset=offset, value=1, reason=UNRECORDED))


def _decode_into(msg, mv, pos, end, depth):
    desc = msg._desc
    values = msg._values
    by_number = desc.by_number
    unknown = msg.unknown_fields
    arrays = None
    while pos < end:
        tag_start = pos
        b = mv[pos]
        if b < 0x80:
            tag = b
            pos += 1
        else:
            tag, pos = _read_varint(mv, pos, end, "field tag")
        wt = tag & 7
        number = tag >> 3
        if number == 0 or wt in (6, 7) or number > 0x1FFFFFFF:
            raise _WireError(tag_start, _bad_tag(tag))
        if wt == 4:
            raise _WireError(tag_start, f"unexpected end-group tag for field #{number}: "
                                        "corrupt data")
        fd = by_number.get(number)
        if fd is None:
            value, pos = _skip(mv, pos, end, wt, number, depth)
            if len(unknown) >= MAX_UNKNOWN_RECORDED:
                _count_unrecorded(unknown, tag_start)
                continue
            unknown.append(UnknownField(number=number, wire_type=wt, offset=tag_start,
                                        value=value))
            continue
        name = fd.name
        index = None
        try:
            if wt == fd.wire_type:
                if fd.kind == "message":
                    if fd.repeated:
                        index = len(values.get(name, ()))
                    length, pos = _read_varint(mv, pos, end, f"length of {name}")
                    if length > end - pos:
                        raise _WireError(tag_start, _overrun(number, length, end - pos, name))
                    if depth > _MAX_DEPTH:
                        raise _WireError(tag_start, "messages nested too deeply: corrupt data")
                    if fd.repeated:
                        sub = _new(descriptor(fd.type))
                        lst = values.get(name)
                        if lst is None:
                            lst = values[name] = []
                        lst.append(sub)
                    else:
                        sub = values.get(name)
                        if sub is None:
                            sub = values[name] = _new(descriptor(fd.type))
                    _decode_into(sub, mv, pos, pos + length, depth + 1)
                    pos += length
                    continue
                if fd.array:  # unpacked float/double run
                    size = 4 if fd.type == "float" else 8
                    arr, pos = _fixed_run(mv, tag_start, end, bytes(mv[tag_start:pos]), size,
                                          ARRAY_DTYPES[fd.type])
                    if arrays is None:
                        arrays = {}
                    arrays.setdefault(name, []).append(arr)
                    continue
                if wt == 0:
                    v, pos = _read_varint(mv, pos, end, name)
                    if fd.kind == "enum":
                        v = _varint_value("int32", v)
                        value = fd.enum_by_number.get(v, v)
                    else:
                        value = _varint_value(fd.type, v)
                elif wt == 2:
                    length, pos = _read_varint(mv, pos, end, f"length of {name}")
                    if length > end - pos:
                        raise _WireError(tag_start, _overrun(number, length, end - pos, name))
                    raw = mv[pos:pos + length]
                    pos += length
                    if fd.type == "string":
                        value = bytes(raw).decode("utf-8", "surrogateescape")
                    else:
                        value = raw.toreadonly()
                else:  # fixed 32/64
                    st, size = _FIXED[fd.type]
                    if end - pos < size:
                        raise _WireError(pos, f"truncated {size * 8}-bit value of {name}")
                    value = st.unpack_from(mv, pos)[0]
                    pos += size
                if fd.repeated:
                    lst = values.get(name)
                    if lst is None:
                        lst = values[name] = []
                    lst.append(value)
                else:
                    values[name] = value
                continue
            if wt == 2 and fd.packable:  # packed repeated scalars
                length, pos = _read_varint(mv, pos, end, f"length of packed {name}")
                if length > end - pos:
                    raise _WireError(tag_start, _overrun(number, length, end - pos, name))
                stop = pos + length
                if fd.array:
                    size = ARRAY_DTYPES[fd.type].itemsize
                    if length % size:
                        raise _WireError(pos, f"packed {name} is {length} bytes, not a multiple "
                                              f"of {size}: corrupt data")
                    arr = np.frombuffer(mv, dtype=ARRAY_DTYPES[fd.type], count=length // size,
                                        offset=pos)
                    if arrays is None:
                        arrays = {}
                    arrays.setdefault(name, []).append(arr)
                    pos = stop
                    continue
                lst = values.get(name)
                if lst is None:
                    lst = values[name] = []
                if fd.wire_type == 0:
                    while pos < stop:
                        v, pos = _read_varint(mv, pos, stop, f"packed {name}")
                        if fd.kind == "enum":
                            v = _varint_value("int32", v)
                            lst.append(fd.enum_by_number.get(v, v))
                        else:
                            lst.append(_varint_value(fd.type, v))
                else:
                    size = _FIXED[fd.type][1]
                    if length % size:
                        raise _WireError(pos, f"packed {name} is {length} bytes, not a multiple "
                                              f"of {size}: corrupt data")
                    lst.extend(np.frombuffer(mv, dtype=_FIXED_NP[fd.type], count=length // size,
                                             offset=pos).tolist())
                    pos = stop
                continue
            # wire type does not match the schema: skip, keep, report
            value, pos = _skip(mv, pos, end, wt, number, depth)
            if len(unknown) >= MAX_UNKNOWN_RECORDED:
                _count_unrecorded(unknown, tag_start)
                continue
            unknown.append(UnknownField(
                number=number, wire_type=wt, offset=tag_start, value=value,
                reason=(f"wire type {wt} ({WIRE_TYPE_NAMES.get(wt)}) does not match "
                        f"{desc.name}.{name} ({fd.label} {fd.type}); a fork's field at this "
                        "number? skipped")))
        except _WireError as err:
            if fd.repeated and fd.kind == "message" and index is not None:
                err.path.append(f"{name}[{index}]")
            else:
                err.path.append(name)
            raise
    if pos != end:  # only reachable if a length overran inside a nested read
        raise _WireError(pos, "message extends past its declared length: corrupt data")
    if arrays:
        for name, parts in arrays.items():
            prev = values.get(name)
            if prev is not None and len(prev):
                parts.insert(0, prev)
            if len(parts) == 1:
                arr = parts[0]
            else:
                arr = np.concatenate(parts)
                arr.flags.writeable = False
            values[name] = arr
    return msg


def decode(buffer, type_name, *, filename=None, into=None):
    """Decode ``buffer`` (bytes, bytearray, memoryview or mmap) as message ``type_name``.

    Float arrays view ``buffer`` without copying, so keep it alive and
    unchanged as long as they are used (an mmap opened read-only makes them
    read-only).  ``into`` merges into an existing message of that type.
    Raises ``CaffeFormatError`` for truncated or corrupt input.
    """
    mv = buffer if isinstance(buffer, memoryview) else memoryview(buffer)
    if mv.ndim != 1 or mv.itemsize != 1:
        mv = mv.cast("B")
    desc = descriptor(type_name)
    msg = into if into is not None else _new(desc)
    try:
        return _decode_into(msg, mv, 0, len(mv), 0)
    except _WireError as err:
        where = ".".join(reversed(err.path))
        reason = err.reason
        if where:
            reason += f" (in {type_name}.{where})"
        raise CaffeFormatError(reason, filename=filename, offset=err.offset) from None
