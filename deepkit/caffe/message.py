"""``Message``: a protobuf (proto2) message driven by the compiled Caffe schema.

Reading a field gives its value, or the schema default when it is unset
(``pooling_param.pool`` -> ``'MAX'``, ``convolution_param.bias_term`` ->
``True``); ``msg.has(name)`` tells the two apart, like ``HasField``.

- Repeated fields are Python lists (``conv.kernel_size`` -> ``[5]``), except
  the packed float/double arrays of ``BlobProto`` (``data``, ``diff``,
  ``double_data``, ``double_diff``), which are 1-D numpy arrays; arrays read
  from a caffemodel are read-only views of the memory-mapped file.
- Enum fields hold value NAMES (``'MAX'``, ``'TEST'``); a number that the
  schema does not know (a fork's enum value in a binary file) stays an ``int``.
- An unset message field reads as a shared, read-only default instance, so
  ``layer.convolution_param.num_output`` works on any layer; to build nested
  messages use ``msg.mutable(name)`` or ``msg.add(name)``.
- ``unknown_fields`` lists what the decoder or the text parser skipped
  (``UnknownField`` records), ``type_name`` is the message's schema name and
  ``meta`` is a dict of reader notes on top-level results (else ``None``).
"""
import difflib
import math

import numpy as np

from deepkit_engine.base import DeepkitError

from . import schema as _schema

__all__ = ["CaffeFormatError", "Message", "UnknownField", "FieldDescriptor", "MessageDescriptor",
           "descriptor", "enum_values", "walk_unknown_fields", "ARRAY_DTYPES"]


class CaffeFormatError(DeepkitError, ValueError):
    """A Caffe file that cannot be read: what is wrong and where.

    Attributes: ``filename`` (or ``None`` for in-memory input), ``offset``
    (byte offset in a binary file), ``line`` and ``column`` (1-based, text
    files) and ``reason`` (the message without the location).
    """

    def __init__(self, reason, *, filename=None, offset=None, line=None, column=None,
                 excerpt=None):
        where = str(filename) if filename is not None else "<input>"
        if line is not None:
            where += f":{line}:{column}"
        elif offset is not None:
            where += f": byte offset {offset}"
        text = f"{where}: {reason}"
        if excerpt:
            text += "\n" + excerpt
        super().__init__(text)
        self.reason, self.filename, self.offset = reason, filename, offset
        self.line, self.column = line, column


class UnknownField:
    """A field that was skipped while reading, so that it can be reported.

    Binary input sets ``number``, ``wire_type`` and ``offset`` (of the tag);
    text input sets ``name``, ``line`` and ``column``.  ``value`` is the raw
    value (an int for varint and fixed-size fields, a read-only memoryview for
    length-delimited ones; the parsed token(s) in text) and ``reason`` says why
    it was skipped (``'unknown field'`` or a wire-type mismatch).
    """

    __slots__ = ("number", "name", "wire_type", "offset", "line", "column", "value", "reason")

    def __init__(self, number=None, name=None, wire_type=None, offset=None, line=None,
                 column=None, value=None, reason="unknown field"):
        self.number, self.name, self.wire_type, self.offset = number, name, wire_type, offset
        self.line, self.column, self.value, self.reason = line, column, value, reason

    def where(self):
        if self.line is not None:
            return f"line {self.line}:{self.column}"
        if self.offset is not None:
            return f"byte offset {self.offset}"
        return "?"

    def __str__(self):
        what = f"field {self.name!r}" if self.name is not None else f"field #{self.number}"
        if self.wire_type is not None:
            what += f" (wire type {self.wire_type})"
        return f"{what} at {self.where()}: {self.reason}"

    def __repr__(self):
        return f"UnknownField({self})"


# numpy dtypes of the repeated packed float/double fields kept as arrays
ARRAY_DTYPES = {"float": np.dtype("<f4"), "double": np.dtype("<f8")}

_WIRE_TYPES = {"double": 1, "fixed64": 1, "sfixed64": 1, "float": 5, "fixed32": 5,
               "sfixed32": 5, "string": 2, "bytes": 2}
_INT_RANGES = {
    "int32": (-2 ** 31, 2 ** 31 - 1), "sint32": (-2 ** 31, 2 ** 31 - 1),
    "sfixed32": (-2 ** 31, 2 ** 31 - 1), "uint32": (0, 2 ** 32 - 1), "fixed32": (0, 2 ** 32 - 1),
    "int64": (-2 ** 63, 2 ** 63 - 1), "sint64": (-2 ** 63, 2 ** 63 - 1),
    "sfixed64": (-2 ** 63, 2 ** 63 - 1), "uint64": (0, 2 ** 64 - 1), "fixed64": (0, 2 ** 64 - 1),
}


class FieldDescriptor:
    """One field of a message type, from the compiled schema."""

    __slots__ = ("name", "number", "label", "repeated", "type", "kind", "default", "packed",
                 "wire_type", "array", "packable", "enum_by_name", "enum_by_number",
                 "containing_type", "int_range")

    def __init__(self, containing_type, name, spec):
        self.containing_type = containing_type
        self.name = name
        self.number = spec["number"]
        self.label = spec["label"]
        self.repeated = spec["label"] == "repeated"
        self.type = spec["type"]
        self.kind = spec["kind"]
        self.default = spec["default"]
        self.packed = spec["packed"]
        if self.kind == "message":
            self.wire_type = 2
        elif self.kind == "enum":
            self.wire_type = 0
        else:
            self.wire_type = _WIRE_TYPES.get(self.type, 0)
        self.packable = self.repeated and self.kind != "message" and self.type not in (
            "string", "bytes")
        self.array = self.repeated and self.packed and self.type in ARRAY_DTYPES
        self.int_range = _INT_RANGES.get(self.type)
        if self.kind == "enum":
            self.enum_by_name = _schema.ENUMS[self.type]
            self.enum_by_number = {v: k for k, v in self.enum_by_name.items()}
        else:
            self.enum_by_name = self.enum_by_number = None

    @property
    def message_type(self):
        return descriptor(self.type) if self.kind == "message" else None

    def __repr__(self):
        return (f"<field {self.containing_type}.{self.name} = {self.number} "
                f"({self.label} {self.type})>")


class MessageDescriptor:
    """A message type: its fields by name (declaration order) and by number."""

    __slots__ = ("name", "fields", "by_number", "_default")

    def __init__(self, name):
        self.name = name
        specs = _schema.MESSAGES[name]
        self.fields = {fname: FieldDescriptor(name, fname, spec) for fname, spec in specs.items()}
        self.by_number = {fd.number: fd for fd in self.fields.values()}
        self._default = None

    def default_instance(self):
        if self._default is None:
            msg = Message(self.name)
            object.__setattr__(msg, "_frozen", True)
            self._default = msg
        return self._default

    def __repr__(self):
        return f"<message type {self.name}>"


_DESCRIPTORS = {}


def descriptor(type_name):
    """The ``MessageDescriptor`` of a schema message name (e.g. ``'LayerParameter'``)."""
    desc = _DESCRIPTORS.get(type_name)
    if desc is None:
        if type_name not in _schema.MESSAGES:
            close = difflib.get_close_matches(type_name, list(_schema.MESSAGES), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise KeyError(f"the Caffe schema has no message {type_name!r}{hint}")
        desc = _DESCRIPTORS[type_name] = MessageDescriptor(type_name)
    return desc


def enum_values(enum_name):
    """``{value name: number}`` of a schema enum (e.g. ``'PoolingParameter.PoolMethod'``)."""
    return dict(_schema.ENUMS[enum_name])


def _empty_array(fd):
    arr = np.empty(0, dtype=ARRAY_DTYPES[fd.type])
    arr.flags.writeable = False
    return arr


def _no_field(desc, name):
    close = difflib.get_close_matches(name, list(desc.fields), n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return AttributeError(f"Caffe message {desc.name} has no field {name!r}{hint}")


def _coerce_scalar(fd, value):
    """Check and convert one (non-repeated) value for ``fd``."""
    if fd.kind == "message":
        if isinstance(value, Message):
            if value.type_name != fd.type:
                raise TypeError(f"{fd.containing_type}.{fd.name} needs a {fd.type} message, "
                                f"got a {value.type_name}")
            return value
        if isinstance(value, dict):
            return Message.from_dict(fd.type, value)
        raise TypeError(f"{fd.containing_type}.{fd.name} needs a {fd.type} message or a dict, "
                        f"got {type(value).__name__}")
    if fd.kind == "enum":
        if isinstance(value, str):
            if value not in fd.enum_by_name:
                raise ValueError(f"{value!r} is not a value of {fd.type} (expected one of "
                                 f"{', '.join(fd.enum_by_name)})")
            return value
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{fd.containing_type}.{fd.name} needs an enum name of {fd.type}, "
                            f"got {value!r}")
        return fd.enum_by_number.get(int(value), int(value))
    t = fd.type
    if t == "bool":
        if isinstance(value, (bool, np.bool_)) or (isinstance(value, (int, np.integer))
                                                   and value in (0, 1)):
            return bool(value)
        raise TypeError(f"{fd.containing_type}.{fd.name} needs a bool, got {value!r}")
    if t in ("float", "double"):
        if isinstance(value, (bool, np.bool_)) or not isinstance(
                value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{fd.containing_type}.{fd.name} needs a number, got {value!r}")
        return float(value)
    if t == "string":
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value).decode("utf-8", "surrogateescape")
        if not isinstance(value, str):
            raise TypeError(f"{fd.containing_type}.{fd.name} needs a string, got {value!r}")
        return value
    if t == "bytes":
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, (bytes, bytearray, memoryview)):
            return value if isinstance(value, (bytes, memoryview)) else bytes(value)
        raise TypeError(f"{fd.containing_type}.{fd.name} needs bytes, got {value!r}")
    # integer types
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and math.isfinite(value) \
                and float(value).is_integer():
            value = int(value)
        else:
            raise TypeError(f"{fd.containing_type}.{fd.name} needs an integer ({t}), "
                            f"got {value!r}")
    value = int(value)
    lo, hi = fd.int_range
    if not lo <= value <= hi:
        raise ValueError(f"{value} is out of range for {fd.containing_type}.{fd.name} ({t})")
    return value


def _coerce(fd, value):
    if not fd.repeated:
        return _coerce_scalar(fd, value)
    if fd.array:
        arr = np.asarray(value, dtype=ARRAY_DTYPES[fd.type])
        if arr.ndim != 1:
            arr = arr.reshape(-1)
        return arr
    if isinstance(value, (str, bytes, dict, Message)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{fd.containing_type}.{fd.name} is repeated: give a list")
    return [_coerce_scalar(fd, v) for v in value]


class Message:
    """A Caffe protobuf message (see the module docstring)."""

    __slots__ = ("_desc", "_values", "unknown_fields", "meta", "_frozen")

    def __init__(self, type_name, **fields):
        desc = type_name if isinstance(type_name, MessageDescriptor) else descriptor(type_name)
        object.__setattr__(self, "_desc", desc)
        object.__setattr__(self, "_values", {})
        object.__setattr__(self, "unknown_fields", [])
        object.__setattr__(self, "meta", None)
        object.__setattr__(self, "_frozen", False)
        for name, value in fields.items():
            setattr(self, name, value)

    # -- construction helpers -------------------------------------------------
    @classmethod
    def from_dict(cls, type_name, values):
        """Build a message from ``{field: value}`` (nested dicts for messages).

        The key ``'_unknown'`` (as used by the test writer) may hold
        ``[(number, wire_type, value)]``; they become ``unknown_fields`` entries.
        """
        msg = cls(type_name)
        for name, value in values.items():
            if name == "_unknown":
                msg.unknown_fields.extend(UnknownField(number=n, wire_type=wt, value=v)
                                          for n, wt, v in value)
                continue
            setattr(msg, name, value)
        return msg

    @property
    def type_name(self):
        return self._desc.name

    @property
    def descriptor(self):
        return self._desc

    # -- field access ---------------------------------------------------------
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        desc = object.__getattribute__(self, "_desc")
        fd = desc.fields.get(name)
        if fd is None:
            raise _no_field(desc, name)
        values = object.__getattribute__(self, "_values")
        try:
            return values[name]
        except KeyError:
            pass
        if fd.repeated:
            if fd.array:
                return _empty_array(fd)
            if object.__getattribute__(self, "_frozen"):
                return []
            lst = values[name] = []
            return lst
        if fd.kind == "message":
            return descriptor(fd.type).default_instance()
        return fd.default

    def __setattr__(self, name, value):
        if name in ("unknown_fields", "meta"):
            object.__setattr__(self, name, value)
            return
        desc = self._desc
        fd = desc.fields.get(name)
        if fd is None:
            raise _no_field(desc, name)
        if self._frozen:
            raise AttributeError(f"this {desc.name} is a read-only default instance (its parent "
                                 f"field is unset); use parent.mutable('<field>') to create it")
        self._values[name] = _coerce(fd, value)

    def __delattr__(self, name):
        self.clear(name)

    def has(self, name):
        """True when ``name`` is set (a repeated field: when it is non-empty)."""
        fd = self._desc.fields.get(name)
        if fd is None:
            raise _no_field(self._desc, name)
        value = self._values.get(name)
        if value is None:
            return False
        if fd.repeated:
            return len(value) > 0
        return True

    def clear(self, name):
        """Unset a field (it reads as its default again)."""
        if name not in self._desc.fields:
            raise _no_field(self._desc, name)
        if self._frozen:
            raise AttributeError(f"this {self._desc.name} is a read-only default instance")
        self._values.pop(name, None)

    def mutable(self, name):
        """The message in field ``name``, created (and so set) when absent."""
        fd = self._desc.fields.get(name)
        if fd is None:
            raise _no_field(self._desc, name)
        if fd.kind != "message" or fd.repeated:
            raise TypeError(f"{self._desc.name}.{name} is not a singular message field")
        if self._frozen:
            raise AttributeError(f"this {self._desc.name} is a read-only default instance")
        value = self._values.get(name)
        if value is None:
            value = self._values[name] = Message(fd.type)
        return value

    def add(self, name, **fields):
        """Append a new message to the repeated message field ``name`` and return it."""
        fd = self._desc.fields.get(name)
        if fd is None:
            raise _no_field(self._desc, name)
        if fd.kind != "message" or not fd.repeated:
            raise TypeError(f"{self._desc.name}.{name} is not a repeated message field")
        if self._frozen:
            raise AttributeError(f"this {self._desc.name} is a read-only default instance")
        msg = Message(fd.type, **fields)
        self._values.setdefault(name, []).append(msg)
        return msg

    def fields(self):
        """``[(name, value)]`` of the set fields, in declaration order."""
        out = []
        values = self._values
        for name, fd in self._desc.fields.items():
            if name in values:
                value = values[name]
                if fd.repeated and len(value) == 0:
                    continue
                out.append((name, value))
        return out

    def to_dict(self):
        """Set fields as plain Python data (nested dicts; arrays stay numpy arrays)."""
        out = {}
        for name, value in self.fields():
            fd = self._desc.fields[name]
            if fd.kind == "message":
                out[name] = [m.to_dict() for m in value] if fd.repeated else value.to_dict()
            elif fd.repeated and not fd.array:
                out[name] = list(value)
            else:
                out[name] = value
        return out

    def copy(self):
        """A deep copy of the message tree (numpy arrays are shared, not copied)."""
        new = Message(self._desc)
        for name, value in self.fields():
            fd = self._desc.fields[name]
            if fd.kind == "message":
                value = [m.copy() for m in value] if fd.repeated else value.copy()
            elif fd.repeated and not fd.array:
                value = list(value)
            new._values[name] = value
        object.__setattr__(new, "unknown_fields", list(self.unknown_fields))
        if self.meta is not None:
            object.__setattr__(new, "meta", dict(self.meta))
        return new

    def __eq__(self, other):
        if not isinstance(other, Message) or other._desc is not self._desc:
            return NotImplemented
        mine, theirs = dict(self.fields()), dict(other.fields())
        if mine.keys() != theirs.keys():
            return False
        for name, value in mine.items():
            fd = self._desc.fields[name]
            if fd.array:
                if not np.array_equal(value, theirs[name]):
                    return False
            elif fd.type == "bytes" and not fd.repeated:
                if bytes(value) != bytes(theirs[name]):
                    return False
            elif value != theirs[name]:
                return False
        return True

    __hash__ = None

    def __repr__(self):
        parts = []
        for name, value in self.fields():
            fd = self._desc.fields[name]
            if fd.array:
                parts.append(f"{name}=<{len(value)} x {fd.type}>")
            elif fd.kind == "message" and fd.repeated:
                parts.append(f"{name}=[{len(value)} {fd.type}]")
            elif isinstance(value, memoryview):
                parts.append(f"{name}=<{value.nbytes} bytes>")
            else:
                r = repr(value)
                parts.append(f"{name}={r if len(r) <= 60 else r[:57] + '...'}")
        return f"{self._desc.name}({', '.join(parts)})"

    def __dir__(self):
        return sorted(set(object.__dir__(self)) | set(self._desc.fields))


def walk_unknown_fields(msg, path=""):
    """Yield ``(path, UnknownField)`` for every skipped field in a message tree.

    Paths name fields and indices, with layer names where known, e.g.
    ``layer[3]('pool1').pooling_param``.
    """
    for uf in msg.unknown_fields:
        yield path or msg.type_name, uf
    for name, value in msg.fields():
        fd = msg.descriptor.fields[name]
        if fd.kind != "message":
            continue
        prefix = f"{path}.{name}" if path else name
        if fd.repeated:
            for i, sub in enumerate(value):
                label = f"{prefix}[{i}]"
                sub_name = sub._values.get("name")
                if isinstance(sub_name, str) and sub_name:
                    label += f"({sub_name!r})"
                yield from walk_unknown_fields(sub, label)
        else:
            yield from walk_unknown_fields(value, prefix)
