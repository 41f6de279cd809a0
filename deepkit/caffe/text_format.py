"""Parser (and printer) for the protobuf text format of Caffe's .prototxt files.

Accepted syntax, as protobuf's own ``TextFormat`` accepts it:

- ``field: value`` and ``field { ... }``, ``field: { ... }``, ``field < ... >``;
- repeated fields by repetition, or as a list ``field: [a, b, c]``;
- enum values as identifiers (``pool: MAX``, ``type: CONVOLUTION``) or numbers;
- strings in ``"`` or ``'`` with C escapes (``\\n \\t \\\\ \\" \\' \\xHH \\ooo \\uXXXX``);
  adjacent strings are concatenated;
- integers (decimal, ``0x`` hex, ``0`` octal; range-checked per type), floats
  (``1e-5``, ``.999``, ``1.``, ``2f``, ``inf``, ``-inf``, ``nan``), booleans
  (``true false True False t f 1 0``);
- ``#`` comments; ``,`` or ``;`` after a field.

Errors raise ``CaffeFormatError`` with ``file:line:column``, the source line
and a caret.  Hostile input is bounded: blocks nest at most
:data:`MAX_DEPTH` levels, a number has at most :data:`MAX_NUMBER_CHARS`
characters, and the parser's memory stays a small multiple of the input
(strings are scanned without backtracking, line starts kept in a compact
array, and at most :data:`MAX_UNKNOWN_RECORDED` skipped fields are kept in
detail; the rest are counted in ``msg.meta['unknown_dropped']``).

Fields the schema does not know (forks: ``bn_param``, ``region_param``, ...)
are skipped and recorded in the enclosing message's
``unknown_fields`` with their line and column (``strict=True`` makes them
errors).  The fork spelling ``ceil_mode: true|false`` of
``PoolingParameter.round_mode`` is read as ``round_mode: CEIL|FLOOR``.
"""
import array
import bisect
import collections
import difflib
import math
import re

import numpy as np

from .message import CaffeFormatError, Message, UnknownField, descriptor

__all__ = ["parse", "format_message", "MAX_DEPTH", "MAX_NUMBER_CHARS", "MAX_UNKNOWN_RECORDED"]

#: Deepest nesting of blocks (Caffe's own schema needs fewer than 10).
MAX_DEPTH = 100

#: Longest number literal (a 64-bit integer needs 20 digits, a double ~25 characters).
MAX_NUMBER_CHARS = 64

#: Skipped (unknown) fields kept in detail per file; the rest are only counted.
MAX_UNKNOWN_RECORDED = 1000

_WS_RE = re.compile(r"(?:[ \t\r\n\f\v]+|#[^\n]*)*")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_RE = re.compile(
    r"(?:0[xX][0-9a-fA-F]+|[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?)"
    r"[fF]?")
# the plain runs of a string; escapes are stepped over one by one (a regex with a
# repeated group would keep backtracking state per escape: memory ~ 100x the input)
_STRING_RUN_RE = {q: re.compile(rf"[^{q}\\\n]*") for q in "\"'"}
_SYMBOLS = "{}[]<>:,;-/"
_DIGITS = "0123456789"
_OCTAL_RE = re.compile(r"[0-7]{1,3}")
_HEX_RE = re.compile(r"[0-9a-fA-F]{1,2}")

_INT_RANGES = {
    "int32": (-2 ** 31, 2 ** 31 - 1), "sint32": (-2 ** 31, 2 ** 31 - 1),
    "sfixed32": (-2 ** 31, 2 ** 31 - 1), "uint32": (0, 2 ** 32 - 1), "fixed32": (0, 2 ** 32 - 1),
    "int64": (-2 ** 63, 2 ** 63 - 1), "sint64": (-2 ** 63, 2 ** 63 - 1),
    "sfixed64": (-2 ** 63, 2 ** 63 - 1), "uint64": (0, 2 ** 64 - 1), "fixed64": (0, 2 ** 64 - 1),
}
_TRUE = ("true", "True", "t")
_FALSE = ("false", "False", "f")
_SIMPLE_ESCAPES = {"n": b"\n", "r": b"\r", "t": b"\t", "\\": b"\\", "'": b"'", '"': b'"',
                   "a": b"\a", "b": b"\b", "f": b"\f", "v": b"\v", "?": b"?"}

# fork spellings accepted in text: (message, name) -> (schema field, converter)
_ALIASES = {
    ("PoolingParameter", "ceil_mode"): ("round_mode", "bool",
                                        lambda v: "CEIL" if v else "FLOOR"),
}


class _Tok:
    __slots__ = ("kind", "text", "pos")

    def __init__(self, kind, text, pos):
        self.kind, self.text, self.pos = kind, text, pos

    def __repr__(self):
        return f"{self.kind}:{self.text!r}@{self.pos}"


def _describe(tok):
    if tok.kind == "eof":
        return "end of file"
    if tok.kind == "string":
        return f"string {tok.text if len(tok.text) < 40 else tok.text[:37] + '...'}"
    return repr(tok.text)


class _Parser:
    def __init__(self, text, filename, strict):
        self.text = text
        self.filename = filename
        self.strict = strict
        self.pos = 0
        self.line_starts = array.array("q", [0])
        self.line_starts.extend(m.end() for m in re.finditer("\n", text))
        self._peeked = None
        self.notes = []
        self.depth = 0
        self.unknown_recorded = 0
        self.unknown_dropped = collections.Counter()

    # -- positions and errors --------------------------------------------------
    def location(self, pos):
        line = bisect.bisect_right(self.line_starts, pos)
        return line, pos - self.line_starts[line - 1] + 1

    def error(self, message, pos):
        line, column = self.location(pos)
        start = self.line_starts[line - 1]
        stop = self.text.find("\n", start)
        src = self.text[start:stop if stop >= 0 else len(self.text)].rstrip("\r")
        # undecodable bytes (kept as surrogates) must not make the message unprintable
        src = src.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        excerpt = None
        if src.strip() and len(src) <= 200:
            caret = "".join("\t" if c == "\t" else " " for c in src[:column - 1]) + "^"
            excerpt = f"    {src}\n    {caret}"
        return CaffeFormatError(message, filename=self.filename, line=line, column=column,
                                excerpt=excerpt)

    # -- tokens -----------------------------------------------------------------
    def _scan(self):
        text = self.text
        pos = _WS_RE.match(text, self.pos).end()
        if pos >= len(text):
            self.pos = pos
            return _Tok("eof", "", pos)
        c = text[pos]
        if c.isascii() and (c.isalpha() or c == "_"):
            m = _IDENT_RE.match(text, pos)
            kind = "ident"
        elif c in _DIGITS or (c == "." and pos + 1 < len(text) and text[pos + 1] in _DIGITS):
            m = _NUMBER_RE.match(text, pos)
            after = m.end()
            if after < len(text) and (text[after].isalnum() or text[after] in "_."):
                tail = re.match(r"[A-Za-z0-9_.]*", text[after:]).group()
                raise self.error(f"invalid number {text[pos:after] + tail!r}", pos)
            if after - pos > MAX_NUMBER_CHARS:
                raise self.error(f"number of {after - pos} characters: numbers are at most "
                                 f"{MAX_NUMBER_CHARS} characters long", pos)
            kind = "number"
        elif c in "\"'":
            end = self._string_end(pos)
            self.pos = end
            return _Tok("string", text[pos:end], pos)
        elif c in _SYMBOLS:
            self.pos = pos + 1
            return _Tok("symbol", c, pos)
        else:
            if c == "\x00" or not c.isprintable():
                raise self.error(f"unexpected byte {c!r}: this is not a text prototxt (binary "
                                 "data?)", pos)
            raise self.error(f"unexpected character {c!r}", pos)
        self.pos = m.end()
        return _Tok(kind, m.group(), pos)

    def _string_end(self, pos):
        """The position after the string literal that starts at ``pos``."""
        text, quote = self.text, self.text[pos]
        run = _STRING_RUN_RE[quote]
        i = pos + 1
        while True:
            i = run.match(text, i).end()
            if i < len(text) and text[i] == quote:
                return i + 1
            if i + 1 < len(text) and text[i] == "\\" and text[i + 1] != "\n":
                i += 2
                continue
            raise self.error("unterminated string (strings cannot span lines)", pos)

    def peek(self):
        if self._peeked is None:
            self._peeked = self._scan()
        return self._peeked

    def next(self):
        tok = self.peek()
        self._peeked = None
        return tok

    def accept(self, symbol):
        tok = self.peek()
        if tok.kind == "symbol" and tok.text == symbol:
            self._peeked = None
            return tok
        return None

    def expect(self, symbol, context=""):
        tok = self.next()
        if tok.kind != "symbol" or tok.text != symbol:
            raise self.error(f"expected {symbol!r}{context}, found {_describe(tok)}", tok.pos)
        return tok

    # -- values ---------------------------------------------------------------
    def _unescape(self, tok):
        body = tok.text[1:-1]
        if "\\" not in body:
            return body.encode("utf-8", "surrogateescape")
        out = bytearray()
        i = 0
        n = len(body)
        while i < n:
            c = body[i]
            if c != "\\":
                j = body.find("\\", i)
                j = n if j < 0 else j
                out += body[i:j].encode("utf-8", "surrogateescape")
                i = j
                continue
            i += 1
            e = body[i]
            if e in _SIMPLE_ESCAPES:
                out += _SIMPLE_ESCAPES[e]
                i += 1
            elif e in "01234567":
                m = _OCTAL_RE.match(body, i)
                out.append(int(m.group(), 8) & 0xFF)
                i = m.end()
            elif e in "xX":
                m = _HEX_RE.match(body, i + 1)
                if not m:
                    raise self.error("\\x escape without hex digits", tok.pos + 1 + i)
                out.append(int(m.group(), 16))
                i = m.end()
            elif e in "uU":
                width = 4 if e == "u" else 8
                digits = body[i + 1:i + 1 + width]
                if len(digits) != width or not re.fullmatch(r"[0-9a-fA-F]+", digits):
                    raise self.error(f"\\{e} escape needs {width} hex digits", tok.pos + 1 + i)
                out += chr(int(digits, 16)).encode("utf-8", "surrogatepass")
                i += 1 + width
            else:
                raise self.error(f"invalid escape sequence '\\{e}' in string", tok.pos + i)
        return bytes(out)

    def _strings(self):
        tok = self.next()
        data = self._unescape(tok)
        while self.peek().kind == "string":
            data += self._unescape(self.next())
        return tok, data

    def _signed_token(self):
        """A number or identifier, with an optional leading '-'; (neg, token, start)."""
        tok = self.next()
        if tok.kind == "symbol" and tok.text == "-":
            nxt = self.next()
            if nxt.kind not in ("number", "ident"):
                raise self.error(f"expected a number after '-', found {_describe(nxt)}", nxt.pos)
            return True, nxt, tok.pos
        return False, tok, tok.pos

    def _scalar(self, fd):
        """Parse one value for scalar/enum field ``fd``."""
        t = fd.type
        if fd.kind == "scalar" and t in ("string", "bytes"):
            tok = self.peek()
            if tok.kind != "string":
                raise self.error(f"field '{fd.name}' ({t}) needs a quoted string, found "
                                 f"{_describe(tok)}", tok.pos)
            tok, data = self._strings()
            if t == "bytes":
                return data
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                return data.decode("utf-8", "surrogateescape")
        neg, tok, start = self._signed_token()
        if fd.kind == "enum":
            if tok.kind == "ident" and not neg:
                if tok.text in fd.enum_by_name:
                    return tok.text
                close = difflib.get_close_matches(tok.text, list(fd.enum_by_name), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise self.error(
                    f"unknown value {tok.text!r} for field '{fd.name}' ({fd.type}){hint}; "
                    f"expected one of {', '.join(fd.enum_by_name)}", tok.pos)
            if tok.kind == "number":
                value = self._int_literal(tok, neg, start, "int32", fd)
                if value not in fd.enum_by_number:
                    known = ", ".join(f"{k}={v}" for k, v in fd.enum_by_name.items())
                    raise self.error(f"{value} is not a value of {fd.type} (expected one of "
                                     f"{known})", start)
                return fd.enum_by_number[value]
            raise self.error(f"field '{fd.name}' needs a value of {fd.type}, found "
                             f"{_describe(tok)}", start)
        if t == "bool":
            if not neg and tok.kind == "ident":
                if tok.text in _TRUE:
                    return True
                if tok.text in _FALSE:
                    return False
            if not neg and tok.kind == "number" and tok.text in ("0", "1"):
                return tok.text == "1"
            raise self.error(f"field '{fd.name}' needs true or false, found "
                             f"{'-' if neg else ''}{_describe(tok)}", start)
        if t in ("float", "double"):
            if tok.kind == "ident":
                low = tok.text.lower()
                if low in ("inf", "infinity", "inff", "infinityf"):
                    return -math.inf if neg else math.inf
                if low in ("nan", "nanf"):
                    return math.nan
                raise self.error(f"field '{fd.name}' needs a number, found {_describe(tok)}",
                                 start)
            if tok.kind != "number":
                raise self.error(f"field '{fd.name}' needs a number, found {_describe(tok)}",
                                 start)
            text = tok.text
            if text[:2] in ("0x", "0X"):
                value = float(int(text, 16))
            else:
                value = float(text.rstrip("fF"))
            return -value if neg else value
        if tok.kind != "number":
            raise self.error(f"field '{fd.name}' needs an integer ({t}), found "
                             f"{_describe(tok)}", start)
        return self._int_literal(tok, neg, start, t, fd)

    def _int_literal(self, tok, neg, start, t, fd):
        text = tok.text
        if text[:2] in ("0x", "0X"):
            value = int(text, 16)
        elif re.fullmatch(r"0[0-7]+", text):
            value = int(text, 8)
        elif re.fullmatch(r"[0-9]+", text):
            value = int(text)
        else:
            raise self.error(f"field '{fd.name}' needs an integer ({t}), found {text!r}", start)
        if neg:
            value = -value
        lo, hi = _INT_RANGES[t]
        if not lo <= value <= hi:
            raise self.error(f"{value} is out of range for field '{fd.name}' ({t}: {lo}..{hi})",
                             start)
        return value

    # -- messages -------------------------------------------------------------
    def parse(self, type_name):
        msg = Message(type_name)
        self._fields(msg, None, None)
        return msg

    def _fields(self, msg, close, open_tok):
        desc = msg.descriptor
        seen = {}
        arrays = {}
        while True:
            tok = self.peek()
            if tok.kind == "eof":
                if close is not None:
                    line, col = self.location(open_tok.pos)
                    raise self.error(f"expected {close!r} to close the block opened at line "
                                     f"{line}:{col}, found end of file", tok.pos)
                break
            if tok.kind == "symbol" and close is not None and tok.text == close:
                self.next()
                break
            if tok.kind != "ident":
                if tok.kind == "symbol" and tok.text == "[":
                    raise self.error("extension and Any fields ('[...]') are not supported",
                                     tok.pos)
                if tok.kind == "symbol" and tok.text in "}>":
                    raise self.error(f"unexpected {tok.text!r}: no block is open here", tok.pos)
                raise self.error(f"expected a field name, found {_describe(tok)}", tok.pos)
            self.next()
            name = tok.text
            fd = desc.fields.get(name)
            alias = None
            if fd is None:
                alias = _ALIASES.get((desc.name, name))
                if alias is None:
                    self._unknown(msg, tok)
                    continue
                fd = desc.fields[alias[0]]
            self._field(msg, fd, tok, seen, arrays, alias)
            if not self.accept(","):
                self.accept(";")
        for name, values in arrays.items():
            setattr(msg, name, values)  # Message converts to a float32/float64 array

    def _field(self, msg, fd, name_tok, seen, arrays, alias):
        name = fd.name
        values = msg._values
        colon = self.accept(":") is not None
        if fd.kind == "message":
            tok = self.peek()
            if tok.kind == "symbol" and tok.text == "[" and colon:
                if not fd.repeated:
                    raise self.error(f"field '{name}' is not repeated; a [list] is not allowed",
                                     tok.pos)
                self.next()
                if not self.accept("]"):
                    while True:
                        self._message_value(msg, fd, name_tok, seen)
                        if self.accept("]"):
                            break
                        self.expect(",", " or ']' in the list")
                return
            self._message_value(msg, fd, name_tok, seen)
            return
        if not colon:
            tok = self.peek()
            raise self.error(f"expected ':' after field name '{name_tok.text}', found "
                             f"{_describe(tok)}", tok.pos)
        if alias is not None:
            tgt = fd
            if tgt.name in seen or msg.has(tgt.name):
                raise self.error(f"'{name_tok.text}' and '{tgt.name}' both given (they are the "
                                 "same field)", name_tok.pos)
            bool_fd = _BoolField(name_tok.text)
            value = self._scalar(bool_fd)
            values[tgt.name] = alias[2](value)
            seen[tgt.name] = name_tok
            line, col = self.location(name_tok.pos)
            self.notes.append(f"line {line}:{col}: fork field '{name_tok.text}: "
                              f"{'true' if value else 'false'}' read as "
                              f"'{tgt.name}: {values[tgt.name]}'")
            return
        tok = self.peek()
        if tok.kind == "symbol" and tok.text == "[":
            if not fd.repeated:
                raise self.error(f"field '{name}' is not repeated; a [list] is not allowed",
                                 tok.pos)
            self.next()
            items = []
            if not self.accept("]"):
                while True:
                    items.append(self._scalar(fd))
                    if self.accept("]"):
                        break
                    self.expect(",", " or ']' in the list")
        else:
            items = [self._scalar(fd)]
        if fd.repeated:
            if fd.array:
                arrays.setdefault(name, []).extend(items)
            else:
                values.setdefault(name, []).extend(items)
            return
        if name in seen:
            line, col = self.location(seen[name].pos)
            raise self.error(f"non-repeated field '{name}' is given twice (first at line "
                             f"{line}:{col})", name_tok.pos)
        seen[name] = name_tok
        values[name] = items[0]

    def _message_value(self, msg, fd, name_tok, seen):
        tok = self.next()
        if tok.kind != "symbol" or tok.text not in "{<":
            raise self.error(f"expected '{{' after message field '{fd.name}', found "
                             f"{_describe(tok)}", tok.pos)
        close = "}" if tok.text == "{" else ">"
        self._enter(tok)
        if fd.repeated:
            sub = msg.add(fd.name)
        else:
            if fd.name in seen:
                line, col = self.location(seen[fd.name].pos)
                raise self.error(f"non-repeated field '{fd.name}' is given twice (first at line "
                                 f"{line}:{col})", name_tok.pos)
            seen[fd.name] = name_tok
            sub = msg.mutable(fd.name)
        self._fields(sub, close, tok)
        self.depth -= 1

    def _enter(self, tok):
        """Count one more open block; too deep a nesting is refused (not a RecursionError)."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"blocks nested more than {MAX_DEPTH} levels deep", tok.pos)

    def _unknown(self, msg, name_tok):
        desc = msg.descriptor
        if self.strict:
            close = difflib.get_close_matches(name_tok.text, list(desc.fields), n=3)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise self.error(f"{desc.name} has no field named '{name_tok.text}'{hint}",
                             name_tok.pos)
        value = self._skip_field_value(name_tok.text)
        if self.unknown_recorded >= MAX_UNKNOWN_RECORDED:
            self.unknown_dropped[f"{desc.name}.{name_tok.text}"] += 1
            if not self.accept(","):
                self.accept(";")
            return
        self.unknown_recorded += 1
        line, col = self.location(name_tok.pos)
        msg.unknown_fields.append(UnknownField(
            name=name_tok.text, line=line, column=col, value=value,
            reason=f"{desc.name} has no field named '{name_tok.text}' (a fork's field?); skipped"))
        if not self.accept(","):
            self.accept(";")

    def _skip_field_value(self, name):
        """The value after an unknown field's name: ``: value``, ``: [list]`` or a block."""
        colon = self.accept(":") is not None
        tok = self.peek()
        if tok.kind == "symbol" and tok.text in "{<":
            return self._skip_block()
        if not colon:
            raise self.error(f"expected ':' or '{{' after field name '{name}', found "
                             f"{_describe(tok)}", tok.pos)
        if tok.kind == "symbol" and tok.text == "[":
            self.next()
            values = []
            if not self.accept("]"):
                while True:
                    values.append(self._skip_value())
                    if self.accept("]"):
                        break
                    self.expect(",", " or ']' in the list")
            return values
        return self._skip_value()

    def _skip_value(self):
        tok = self.peek()
        if tok.kind == "string":
            return self._strings()[1].decode("utf-8", "surrogateescape")
        if tok.kind == "symbol" and tok.text in "{<":
            return self._skip_block()
        neg, tok, start = self._signed_token()
        if tok.kind == "number":
            text = tok.text.rstrip("fF") if tok.text[:2] not in ("0x", "0X") else tok.text
            try:
                value = int(text, 0) if re.fullmatch(r"0[xX][0-9a-fA-F]+|[0-9]+", text) \
                    else float(text)
            except ValueError:
                value = float(text)
            return -value if neg else value
        if tok.kind == "ident":
            low = tok.text.lower()
            if low in ("inf", "infinity"):
                return -math.inf if neg else math.inf
            if low == "nan":
                return math.nan
            if not neg and tok.text in _TRUE:
                return True
            if not neg and tok.text in _FALSE:
                return False
            return ("-" if neg else "") + tok.text
        raise self.error(f"expected a value, found {_describe(tok)}", start)

    def _skip_block(self):
        open_tok = self.next()
        close = "}" if open_tok.text == "{" else ">"
        self._enter(open_tok)
        out = {}
        while True:
            tok = self.peek()
            if tok.kind == "eof":
                line, col = self.location(open_tok.pos)
                raise self.error(f"expected {close!r} to close the block opened at line "
                                 f"{line}:{col}, found end of file", tok.pos)
            if tok.kind == "symbol" and tok.text == close:
                self.next()
                self.depth -= 1
                return out
            if tok.kind != "ident":
                raise self.error(f"expected a field name, found {_describe(tok)}", tok.pos)
            self.next()
            value = self._skip_field_value(tok.text)
            out.setdefault(tok.text, []).append(value)
            if not self.accept(","):
                self.accept(";")


class _BoolField:
    """Stand-in descriptor to parse an alias's value as a bool."""
    kind = "scalar"
    type = "bool"
    repeated = False

    def __init__(self, name):
        self.name = name


def parse(text, type_name="NetParameter", *, filename=None, strict=False):
    """Parse prototxt ``text`` (str) into a ``Message`` of ``type_name``.

    ``strict=True`` turns unknown field names into errors (with suggestions);
    otherwise they are skipped and recorded in ``unknown_fields``.  Notes on
    accepted fork spellings go to ``msg.meta['notes']``.
    """
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("utf-8", "surrogateescape")
    if text.startswith("\ufeff"):
        text = text[1:]
    descriptor(type_name)
    parser = _Parser(text, filename, strict)
    msg = parser.parse(type_name)
    msg.meta = {"notes": parser.notes, "unknown_dropped": dict(parser.unknown_dropped)}
    return msg


# -- printing -------------------------------------------------------------------
def _escape(data):
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    out = []
    for b in bytes(data):
        c = chr(b)
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif 0x20 <= b < 0x7F:
            out.append(c)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def _format_scalar(fd, value):
    if fd.kind == "enum":
        return str(value)
    t = fd.type
    if t == "bool":
        return "true" if value else "false"
    if t in ("string", "bytes"):
        return _escape(value)
    if t in ("float", "double"):
        v = float(value)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return str(np.float32(v)) if t == "float" else repr(v)
    return str(int(value))


def format_message(msg, indent=0, *, max_array=None):
    """The prototxt text of ``msg`` (set fields only, declaration order).

    ``max_array`` limits how many values of a float array are printed (the
    rest are summarised in a comment; the result then no longer round-trips).
    """
    pad = "  " * indent
    lines = []
    for name, value in msg.fields():
        fd = msg.descriptor.fields[name]
        if fd.kind == "message":
            for sub in (value if fd.repeated else [value]):
                body = format_message(sub, indent + 1, max_array=max_array)
                if body:
                    lines.append(f"{pad}{name} {{\n{body}\n{pad}}}")
                else:
                    lines.append(f"{pad}{name} {{\n{pad}}}")
        elif fd.repeated:
            items = list(value)
            extra = 0
            if max_array is not None and fd.array and len(items) > max_array:
                extra = len(items) - max_array
                items = items[:max_array]
            for item in items:
                lines.append(f"{pad}{name}: {_format_scalar(fd, item)}")
            if extra:
                lines.append(f"{pad}# ... {extra} more values of '{name}'")
        else:
            lines.append(f"{pad}{name}: {_format_scalar(fd, value)}")
    return "\n".join(lines)
