"""MXNet's RecordIO files (``mx.recordio``): ``.rec`` records, ``.idx`` indexes, packed headers.

A record is ``uint32 0xced7230a`` (the magic), ``uint32`` length word (the top
3 bits a continuation flag, the low 29 bits the length) and the bytes, padded
to 4 bytes. A payload that holds the magic at a 4-byte boundary is written in
parts (flags 1, 2, 3) with the magic cut out, and joined again on reading, as
dmlc's writer and reader do. An ``.idx`` file has one ``key\\tposition`` line
per record.

``pack``/``unpack`` put an ``IRHeader(flag, label, id, id2)`` (struct ``IfQQ``)
in front of the payload; a label array is stored after the header with its
length in ``flag``. ``pack_img``/``unpack_img`` encode images with OpenCV.
"""
import collections
import numbers
import os
import struct

import numpy as np

from deepkit_engine.fileio import atomic_path

__all__ = ["MXRecordIO", "MXIndexedRecordIO", "IRHeader", "pack", "unpack", "pack_img",
           "unpack_img"]

_MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", _MAGIC)
_LENGTH_MASK = (1 << 29) - 1
_HEADER = struct.Struct("IfQQ")

#: The header in front of each packed record.
IRHeader = collections.namedtuple("HEADER", ["flag", "label", "id", "id2"])


def _padded(length):
    return (length + 3) & ~3


class MXRecordIO:
    """Sequential reading or writing of a ``.rec`` file.

    Args:
        uri: The file path.
        flag: ``'r'`` to read, ``'w'`` to write (the file appears when closed).

    Raises:
        ValueError: ``flag`` is neither.
    """

    def __init__(self, uri, flag):
        if flag not in ("r", "w"):
            raise ValueError(f"MXRecordIO: flag must be 'r' or 'w', got {flag!r}")
        self.uri = os.fspath(uri)
        self.flag = flag
        self.is_open = False
        self._atomic = None
        self.open()

    def open(self):
        """(Re)open the file: reading from the start, or writing anew."""
        if self.flag == "w":
            self._atomic = atomic_path(self.uri)
            self.handle = open(self._atomic.__enter__(), "wb")
        else:
            if not os.path.isfile(self.uri):
                raise FileNotFoundError(f"MXRecordIO: no such file: {self.uri}")
            self.handle = open(self.uri, "rb")
        self.is_open = True

    def close(self):
        """Close the file (a written file replaces its target now)."""
        if not self.is_open:
            return
        self.handle.close()
        if self._atomic is not None:
            self._atomic.__exit__(None, None, None)
            self._atomic = None
        self.is_open = False

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()

    def reset(self):
        """Back to the first record (reading) or an empty file (writing)."""
        self.close()
        self.open()

    def tell(self):
        """The current byte position (where the next record starts)."""
        return self.handle.tell()

    def write(self, buf):
        """Append one record."""
        if self.flag != "w":
            raise ValueError(f"MXRecordIO: {self.uri} is open for reading, not writing")
        data = bytes(buf)
        start = 0
        aligned = len(data) & ~3
        for i in range(0, aligned, 4):
            if data[i:i + 4] == _MAGIC_BYTES:
                self._part(1 if start == 0 else 2, data[start:i])
                start = i + 4
        self._part(3 if start else 0, data[start:])
        tail = _padded(len(data)) - len(data)
        if tail:
            self.handle.write(b"\0" * tail)

    def _part(self, flag, chunk):
        self.handle.write(struct.pack("<II", _MAGIC, (flag << 29) | len(chunk)))
        self.handle.write(chunk)

    def read(self):
        """The next record's bytes, or None at the end of the file."""
        if self.flag != "r":
            raise ValueError(f"MXRecordIO: {self.uri} is open for writing, not reading")
        parts = []
        while True:
            head = self.handle.read(8)
            if not head:
                if parts:
                    raise ValueError(f"MXRecordIO: {self.uri} ends inside a multi-part record")
                return None
            if len(head) < 8:
                raise ValueError(f"MXRecordIO: {self.uri} is truncated at byte "
                                 f"{self.handle.tell() - len(head)}")
            magic, word = struct.unpack("<II", head)
            if magic != _MAGIC:
                raise ValueError(f"MXRecordIO: {self.uri} has no record at byte "
                                 f"{self.handle.tell() - 8} (magic 0x{magic:08x}, expected "
                                 f"0x{_MAGIC:08x})")
            flag, length = word >> 29, word & _LENGTH_MASK
            chunk = self.handle.read(length if flag in (1, 2) else _padded(length))[:length]
            if len(chunk) < length:
                raise ValueError(f"MXRecordIO: {self.uri} is truncated inside a record")
            parts.append(chunk)
            if flag in (0, 3):
                return _MAGIC_BYTES.join(parts)


class MXIndexedRecordIO(MXRecordIO):
    """A ``.rec`` file with an ``.idx`` index: records by key.

    Args:
        idx_path: The index file (``key\\tposition`` lines).
        uri: The record file.
        flag: ``'r'`` or ``'w'``.
        key_type: The type of the keys (int by default).
    """

    def __init__(self, idx_path, uri, flag, key_type=int):
        self.idx_path = os.fspath(idx_path)
        self.key_type = key_type
        self.idx = {}
        self.keys = []
        super().__init__(uri, flag)

    def open(self):
        super().open()
        self.idx, self.keys = {}, []
        if self.flag == "r":
            with open(self.idx_path) as f:
                for number, line in enumerate(f, 1):
                    fields = line.strip().split("\t")
                    if not line.strip():
                        continue
                    if len(fields) != 2:
                        raise ValueError(f"MXIndexedRecordIO: {self.idx_path} line {number} is "
                                         f"{line.strip()!r}; expected 'key<TAB>position'")
                    key = self.key_type(fields[0])
                    self.idx[key] = int(fields[1])
                    self.keys.append(key)

    def close(self):
        if self.is_open and self.flag == "w":
            with atomic_path(self.idx_path) as tmp, open(tmp, "w") as f:
                for key in self.keys:
                    f.write(f"{key}\t{self.idx[key]}\n")
        super().close()

    def seek(self, idx):
        """Move to the record of key ``idx``."""
        if idx not in self.idx:
            raise KeyError(f"MXIndexedRecordIO: {self.uri} has no record with key {idx!r}")
        self.handle.seek(self.idx[idx])

    def read_idx(self, idx):
        """The record of key ``idx``."""
        self.seek(idx)
        return self.read()

    def write_idx(self, idx, buf):
        """Append a record under key ``idx``."""
        key = self.key_type(idx)
        self.idx[key] = self.tell()
        self.keys.append(key)
        self.write(buf)


def pack(header, s):
    """``header`` (an IRHeader; an array label is stored after it) followed by bytes ``s``."""
    header = IRHeader(*header)
    if isinstance(header.label, numbers.Number):
        head = _HEADER.pack(0, float(header.label), int(header.id), int(header.id2))
        return head + bytes(s)
    label = np.asarray(header.label, dtype=np.float32)
    head = _HEADER.pack(label.size, 0.0, int(header.id), int(header.id2))
    return head + label.tobytes() + bytes(s)


def unpack(s):
    """``(IRHeader, payload bytes)`` of a packed record (an array label when ``flag > 0``)."""
    if len(s) < _HEADER.size:
        raise ValueError(f"unpack: the record has {len(s)} bytes, fewer than the "
                         f"{_HEADER.size}-byte header")
    header = IRHeader(*_HEADER.unpack(s[:_HEADER.size]))
    s = s[_HEADER.size:]
    if header.flag > 0:
        label = np.frombuffer(s, np.float32, header.flag).copy()
        header = header._replace(label=label)
        s = s[header.flag * 4:]
    return header, s


def pack_img(header, img, quality=95, img_fmt=".jpg"):
    """Encode ``img`` (HxW or HxWxC uint8, OpenCV's BGR order) and pack it with ``header``."""
    import cv2  # noqa: PLC0415 - optional dependency: image encoding
    if img_fmt.lower() in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    elif img_fmt.lower() == ".png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, min(int(quality), 9)]  # PNG levels are 0-9
    else:
        params = []
    ok, buf = cv2.imencode(img_fmt, np.asarray(img), params)
    if not ok:
        raise ValueError(f"pack_img: OpenCV could not encode an image of shape "
                         f"{np.shape(img)} as {img_fmt}")
    return pack(header, buf.tobytes())


def unpack_img(s, iscolor=-1):
    """``(IRHeader, image)``: the decoded image (BGR, as OpenCV reads it)."""
    import cv2  # noqa: PLC0415 - optional dependency: image decoding
    header, payload = unpack(s)
    img = cv2.imdecode(np.frombuffer(payload, np.uint8), iscolor)
    if img is None:
        raise ValueError("unpack_img: the record's payload is not an image OpenCV can decode")
    return header, img
