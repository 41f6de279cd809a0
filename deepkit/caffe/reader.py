"""Reading Caffe files without Caffe, protoc or the protobuf package.

Public API::

    read_prototxt(path_or_text, *, upgrade=True, strict=False) -> Message   # NetParameter
    read_caffemodel(path_or_bytes, *, upgrade=True) -> Message              # NetParameter
    read_binaryproto(path_or_bytes) -> Message                              # BlobProto
    blob_array(blob, ndim=None) -> numpy.ndarray
    blob_shape(blob, ndim=None) -> tuple
    blob_shape_matches(blob, shape) -> bool
    upgrade_net(net, *, filename=None, copy=True) -> Message
    unknown_field_report(msg) -> list[str]
    CaffeFormatError, Message

Both net readers upgrade V0/V1 nets and net-level inputs to the V2 form
(``net.layer``: LayerParameters with string ``type``; inputs as an ``Input``
layer named ``"input"``), each file independently, and leave notes in
``net.meta``: ``source``, ``format`` (the original generation), ``upgrades``,
``warnings``, ``notes`` (text only) and ``unknown_fields`` (one line per
skipped field, with its location).

``read_caffemodel`` memory-maps the file: the float arrays of the blobs are
read-only numpy views of the mapping, so reading a 550 MB VGG16 takes well
under a second and no extra memory; the mapping lives as long as any array
(or message) that uses it.
"""
import collections
import mmap
import os
import re

import numpy as np

from . import text_format, wire
from .message import CaffeFormatError, Message, walk_unknown_fields
from .upgrade import detect_format, upgrade_net

__all__ = ["read_prototxt", "read_caffemodel", "read_binaryproto", "blob_array", "blob_shape",
           "blob_shape_matches", "upgrade_net", "unknown_field_report", "CaffeFormatError",
           "Message"]

_SOLVER_FIELDS = {"base_lr", "lr_policy", "max_iter", "solver_mode", "train_net", "test_net",
                  "net", "snapshot_prefix", "test_iter", "momentum", "weight_decay", "stepsize",
                  "solver_type", "type", "display", "snapshot"}


#: Skipped fields of one name listed one by one; the rest get one summarising line.
REPORT_PER_FIELD = 10


def unknown_field_report(msg, dropped=None):
    """One line per field skipped anywhere in ``msg``'s tree: where, which, why.

    A field skipped many times is listed :data:`REPORT_PER_FIELD` times and
    then summarised in one line, so a hostile file cannot flood the report.

    Args:
        msg: The message tree.
        dropped: ``{'Message.field': count}`` of skipped fields the parser
            only counted (``meta['unknown_dropped']`` of the text parser).
    """
    counts = collections.Counter()
    lines = []
    for path, uf in walk_unknown_fields(msg):
        if uf.reason == wire.UNRECORDED:
            lines.append(f"{path}: {uf.value} more skipped fields after byte offset "
                         f"{uf.offset} (not recorded one by one)")
            continue
        key = uf.name if uf.name is not None else uf.number
        counts[key] += 1
        if counts[key] <= REPORT_PER_FIELD:
            lines.append(f"{path}: {uf}")
    for key, count in counts.items():
        if count > REPORT_PER_FIELD:
            what = f"field {key!r}" if isinstance(key, str) else f"field #{key}"
            lines.append(f"{what}: skipped {count} times in all; "
                         f"{count - REPORT_PER_FIELD} more not listed")
    for key, count in sorted((dropped or {}).items()):
        name = key.rsplit(".", 1)[-1]
        lines.append(f"field {name!r} ({key}): {count} more skipped fields not recorded")
    return lines


# -- file sniffing ---------------------------------------------------------------
_CONTROL_RE = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")


def _text_kind(head):
    """None if ``head`` looks binary, else ``'text'``, ``'lfs'`` or ``'html'``.

    Binary protobuf data has control bytes (tags and lengths) within its
    first few bytes; text has none.  Bytes >= 0x80 are allowed in text:
    prototxt comments are often in GBK or Latin-1.
    """
    if not head or _CONTROL_RE.search(head):
        return None
    text = head.decode("utf-8", "replace")
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("version https://git-lfs"):
        return "lfs"
    low = stripped[:200].lower()
    if low.startswith("<!doctype html") or low.startswith("<html"):
        return "html"
    return "text"


def _binary_hint(kind, filename, head):
    first = head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n").splitlines()
    first = first[0][:60] if first else ""
    if kind == "lfs":
        return ("is a Git LFS pointer file, not the model itself: fetch the real file "
                "(git lfs pull)")
    if kind == "html":
        return "is an HTML page, not a caffemodel (a failed download?)"
    return (f"is a text file (it starts with {first!r}), not a binary .caffemodel: pass it as "
            "the network definition (prototxt) and give the trained .caffemodel as the weights")


def _display_name(path):
    return os.fspath(path) if path is not None else None


def _open_buffer(path):
    """(buffer, size): a read-only mmap of the file (bytes for empty/unmappable files)."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise CaffeFormatError("no such file", filename=_display_name(path)) from None
    except IsADirectoryError:
        raise CaffeFormatError("is a directory, not a file", filename=_display_name(path)) \
            from None
    except OSError as err:
        raise CaffeFormatError(f"cannot open: {err.strerror or err}",
                               filename=_display_name(path)) from None
    with f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return b"", 0
        try:
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), size
        except (OSError, ValueError):
            return f.read(), size


def _read_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise CaffeFormatError("no such file", filename=_display_name(path)) from None
    except IsADirectoryError:
        raise CaffeFormatError("is a directory, not a file", filename=_display_name(path)) \
            from None
    except OSError as err:
        raise CaffeFormatError(f"cannot read: {err.strerror or err}",
                               filename=_display_name(path)) from None


def _as_source(path_or_bytes):
    """(buffer, size, filename) for a path or an in-memory bytes-like object."""
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview, mmap.mmap)):
        buf = path_or_bytes
        return buf, len(memoryview(buf).cast("B")) if not isinstance(buf, mmap.mmap) \
            else len(buf), None
    buf, size = _open_buffer(path_or_bytes)
    return buf, size, _display_name(path_or_bytes)


# -- prototxt --------------------------------------------------------------------
def _looks_like_path(s):
    if "\n" in s or "{" in s:
        return False
    if os.path.exists(s):
        return True
    if re.search(r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*:\s*\S", s) and not re.match(
            r"^[A-Za-z]:[\\/]", s):
        return False  # 'name: "x"' is text
    return True


def read_prototxt(path_or_text, *, upgrade=True, strict=False):
    """Parse a network definition (.prototxt) into a NetParameter ``Message``.

    ``path_or_text``: a path (str or os.PathLike), prototxt text (a str with a
    newline, a brace or ``field: value``) or bytes.  ``upgrade`` applies
    ``upgrade_net`` (V0/V1 -> V2, net inputs -> Input layer); ``strict=True``
    makes fields the schema does not know an error instead of a recorded,
    skipped ``unknown_fields`` entry.
    """
    filename = None
    if isinstance(path_or_text, (bytes, bytearray, memoryview)):
        data = bytes(path_or_text)
    elif isinstance(path_or_text, str) and not _looks_like_path(path_or_text):
        data = None
        text = path_or_text
    else:
        filename = _display_name(path_or_text)
        data = _read_bytes(path_or_text)
    if data is not None:
        kind = _text_kind(data[:65536]) if data else "text"
        if kind is None:
            raise CaffeFormatError(_prototxt_binary_reason(data), filename=filename)
        if kind == "lfs":
            raise CaffeFormatError("is a Git LFS pointer file, not the prototxt itself: fetch "
                                   "the real file (git lfs pull)", filename=filename)
        text = data.decode("utf-8", "surrogateescape")
    net = text_format.parse(text, "NetParameter", filename=filename, strict=strict)
    notes = net.meta.get("notes", [])
    dropped = net.meta.get("unknown_dropped", {})
    if not net.layer and not net.layers and not net.input:
        tops = {uf.name for uf in net.unknown_fields}
        if tops & _SOLVER_FIELDS:
            raise CaffeFormatError("is a solver definition (it has "
                                   f"{', '.join(sorted(tops & _SOLVER_FIELDS))}), not a network: "
                                   "pass the network prototxt (the file its 'net:' names)",
                                   filename=filename)
        raise CaffeFormatError("defines no layers (no 'layer', 'layers' or 'input' entries): "
                               "not a Caffe network definition?", filename=filename)
    meta = {"source": filename, "format": detect_format(net), "notes": notes}
    net.meta = meta
    if upgrade:
        net = upgrade_net(net, filename=filename, copy=False)
    else:
        net.meta.update(upgrades=[], warnings=[])
    net.meta["unknown_fields"] = unknown_field_report(net, dropped)
    return net


def _prototxt_binary_reason(data):
    reason = "is binary data, not a text prototxt"
    try:
        net = wire.decode(data, "NetParameter")
        n = len(net.layer) or len(net.layers)
        if n:
            names = [layer.name for layer in (net.layer or net.layers)][:3]
            reason += (f": it decodes as a binary caffemodel with {n} layers ({', '.join(names)}"
                       f"{', ...' if n > 3 else ''}); pass it as the weights (.caffemodel) and "
                       "give the deploy prototxt as the network definition")
            return reason
    except CaffeFormatError:
        pass
    return reason + " (a .caffemodel or another binary file?)"


# -- caffemodel ------------------------------------------------------------------
def read_caffemodel(path_or_bytes, *, upgrade=True):
    """Decode a trained model (.caffemodel, binary NetParameter) without copying its weights.

    ``path_or_bytes``: a path, or bytes-like data.  Files are memory-mapped
    and blob arrays view the mapping.  ``upgrade`` applies ``upgrade_net``.
    """
    buf, size, filename = _as_source(path_or_bytes)
    if size == 0:
        raise CaffeFormatError("is empty (0 bytes): not a caffemodel", filename=filename)
    head = bytes(memoryview(buf)[:4096]) if not isinstance(buf, mmap.mmap) else buf[:4096]
    kind = _text_kind(head)
    if kind is not None:
        raise CaffeFormatError(_binary_hint(kind, filename, head), filename=filename)
    try:
        net = wire.decode(buf, "NetParameter", filename=filename)
    except CaffeFormatError as err:
        raise CaffeFormatError(f"{err.reason} [file size {size} bytes; is it a complete "
                               ".caffemodel?]", filename=filename, offset=err.offset) from None
    if not net.layer and not net.layers:
        numbers = sorted({uf.number for uf in net.unknown_fields if uf.number is not None})
        hint = ""
        if numbers and set(numbers) <= {1, 2, 3, 4, 5, 6, 7, 8, 9}:
            hint = " (its fields look like a BlobProto: a mean .binaryproto file?)"
        raise CaffeFormatError(f"contains no layers{hint}: not a caffemodel "
                               f"(fields found: {numbers or 'none'})", filename=filename)
    net.meta = {"source": filename, "format": detect_format(net), "size": size}
    if upgrade:
        net = upgrade_net(net, filename=filename, copy=False)
    else:
        net.meta.update(upgrades=[], warnings=[])
    pooled = [layer.name for layer in (net.layer or net.layers)
              if layer.has("pooling_param") and layer.pooling_param.has("round_mode")]
    if pooled:
        net.meta["warnings"].append(
            f"pooling layer(s) {', '.join(repr(n) for n in pooled[:5])}"
            f"{' ...' if len(pooled) > 5 else ''} store field 13 of PoolingParameter, which is "
            "BVLC's round_mode (0 = CEIL) but OpenCV-style forks' ceil_mode (1 = ceil): take "
            "pooling parameters from the prototxt, not the caffemodel")
    net.meta["unknown_fields"] = unknown_field_report(net)
    return net


def read_binaryproto(path_or_bytes):
    """Read a BlobProto file (a mean image ``.binaryproto``)."""
    buf, size, filename = _as_source(path_or_bytes)
    if size == 0:
        raise CaffeFormatError("is empty (0 bytes): not a .binaryproto", filename=filename)
    head = bytes(memoryview(buf)[:4096]) if not isinstance(buf, mmap.mmap) else buf[:4096]
    kind = _text_kind(head)
    if kind is not None:
        raise CaffeFormatError("is a text file, not a binary BlobProto (.binaryproto)",
                               filename=filename)
    blob = wire.decode(buf, "BlobProto", filename=filename)
    if not len(blob.data) and not len(blob.double_data) and not blob.has("raw_data"):
        numbers = sorted({uf.number for uf in blob.unknown_fields if uf.number is not None})
        hint = " (it looks like a caffemodel)" if 100 in numbers or 2 in numbers else ""
        raise CaffeFormatError(f"holds no blob data{hint}: not a BlobProto mean file",
                               filename=filename)
    blob.meta = {"source": filename, "size": size,
                 "unknown_fields": unknown_field_report(blob)}
    return blob


# -- blobs -----------------------------------------------------------------------
def _is_legacy(blob):
    return not blob.has("shape") and any(blob.has(f) for f in ("num", "channels", "height",
                                                                 "width"))


def _blob_values(blob):
    if len(blob.double_data):
        return blob.double_data
    if len(blob.data):
        return blob.data
    if blob.has("raw_data"):
        kind = blob.raw_data_type
        dtypes = {"FLOAT": "<f4", "DOUBLE": "<f8", "FLOAT16": "<f2"}
        if kind not in dtypes:
            raise CaffeFormatError(f"blob raw_data of type {kind} is not supported (only FLOAT, "
                                   "DOUBLE, FLOAT16)", filename=_source(blob))
        dt = np.dtype(dtypes[kind])
        raw = blob.raw_data
        if len(raw) % dt.itemsize:
            raise CaffeFormatError(f"blob raw_data has {len(raw)} bytes, not a multiple of "
                                   f"{dt.itemsize} ({kind})", filename=_source(blob))
        arr = np.frombuffer(raw, dtype=dt)
        if kind == "FLOAT16":
            arr = arr.astype(np.float32)
            arr.flags.writeable = False
        return arr
    return blob.data  # empty float32


def _source(blob):
    return (blob.meta or {}).get("source")


def blob_shape(blob, ndim=None):
    """The shape of a BlobProto, as Caffe reads it.

    ``shape.dim`` when set.  Otherwise the legacy 4-D ``(num, channels,
    height, width)``; with ``ndim`` (the rank the layer expects, e.g. 2 for
    InnerProduct weights, 1 for biases) the legacy shape is right-aligned the
    way Caffe compares it, so ``(1, 1, N, K)`` -> ``(N, K)`` and ``(1, 1, 1, N)``
    -> ``(N,)``; the dropped leading dims must be 1.  A blob with neither is
    1-D with its value count.  ``ndim`` never changes a ``shape.dim`` shape.
    """
    if blob.has("shape"):
        shape = tuple(int(d) for d in blob.shape.dim)
        if any(d < 0 for d in shape):
            raise CaffeFormatError(f"blob has a negative dimension in shape {shape}",
                                   filename=_source(blob))
        return shape
    if _is_legacy(blob):
        shape = (blob.num, blob.channels, blob.height, blob.width)
        if any(d < 0 for d in shape):
            raise CaffeFormatError(f"blob has a negative legacy dimension {shape}",
                                   filename=_source(blob))
        if ndim is None:
            return shape
        if not 0 <= ndim <= 4:
            raise ValueError(f"a legacy 4-D blob {shape} cannot have {ndim} dimensions")
        lead = shape[:4 - ndim]
        if any(d != 1 for d in lead):
            raise CaffeFormatError(f"legacy blob shape {shape} cannot be read as a "
                                   f"{ndim}-D blob: its leading dims {lead} are not all 1",
                                   filename=_source(blob))
        return shape[4 - ndim:]
    return (len(_blob_values(blob)),)


def blob_shape_matches(blob, shape):
    """Caffe's ``Blob::ShapeEquals``: legacy 4-D fields compare right-aligned.

    A legacy blob ``(1, 1, N, K)`` matches ``(N, K)``; a ``shape.dim`` blob must
    match exactly.
    """
    shape = tuple(int(d) for d in shape)
    if _is_legacy(blob):
        if len(shape) > 4:
            return False
        padded = (1,) * (4 - len(shape)) + shape
        return padded == (blob.num, blob.channels, blob.height, blob.width)
    return blob_shape(blob) == shape


def blob_array(blob, ndim=None):
    """The values of a BlobProto as a numpy array shaped like the blob.

    float32 from ``data`` (float64 when ``double_data`` is present, as Caffe
    prefers it; NVCaffe fp16 ``raw_data`` is widened to float32).  Arrays from
    a caffemodel are read-only views of the file: copy before modifying.
    ``ndim`` right-aligns legacy 4-D shapes (see ``blob_shape``).
    """
    values = _blob_values(blob)
    shape = blob_shape(blob, ndim)
    count = 1
    for d in shape:
        count *= d
    if values.size != count:
        raise CaffeFormatError(f"blob has shape {shape} ({count} values) but holds "
                               f"{values.size} values", filename=_source(blob))
    return values.reshape(shape)
