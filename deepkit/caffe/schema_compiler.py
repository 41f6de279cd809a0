"""Compile ``caffe_subset.proto`` into ``schema.py``, a plain Python declaration.

The wire decoder and the text parser are driven by that declaration, so no
``protoc``, no generated protobuf classes and no protobuf runtime are needed.
The compiler understands the proto2 subset Caffe's schema uses: ``syntax``,
``package``, top-level and nested ``message`` and ``enum`` definitions,
``optional``/``required``/``repeated`` fields of scalar, enum and message types
(resolved with protobuf's scoping rules) and the ``default`` and ``packed``
field options.  Anything else (``oneof``, ``map``, ``extend``, groups, services)
is rejected with the line and column, so the schema cannot silently drift.

Run ``python -m deepkit.caffe.schema_compiler`` after editing the ``.proto`` to
rewrite ``schema.py``; ``--check`` exits non-zero when ``schema.py`` is stale.
"""
import math
import os
import re
import sys

__all__ = ["ProtoSyntaxError", "compile_proto", "render_schema", "compile_file", "main"]

PROTO_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "caffe_subset.proto")
SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schema.py")

SCALAR_TYPES = ("double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
                "fixed32", "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes")
_INT_TYPES = ("int32", "int64", "uint32", "uint64", "sint32", "sint64",
              "fixed32", "fixed64", "sfixed32", "sfixed64")
_INT_RANGES = {
    "int32": (-2 ** 31, 2 ** 31 - 1), "sint32": (-2 ** 31, 2 ** 31 - 1),
    "sfixed32": (-2 ** 31, 2 ** 31 - 1), "uint32": (0, 2 ** 32 - 1), "fixed32": (0, 2 ** 32 - 1),
    "int64": (-2 ** 63, 2 ** 63 - 1), "sint64": (-2 ** 63, 2 ** 63 - 1),
    "sfixed64": (-2 ** 63, 2 ** 63 - 1), "uint64": (0, 2 ** 64 - 1), "fixed64": (0, 2 ** 64 - 1),
}
_MAX_FIELD_NUMBER = 2 ** 29 - 1
_RESERVED_NUMBERS = range(19000, 20000)


class ProtoSyntaxError(ValueError):
    """A construct in the .proto file that the compiler does not accept."""

    def __init__(self, message, filename, line, column):
        super().__init__(f"{filename}:{line}:{column}: {message}")
        self.filename, self.line, self.column = filename, line, column


_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<number>-?(?:0[xX][0-9A-Fa-f]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?))
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<symbol>[{}\[\]=;,<>()-])
""", re.VERBOSE | re.DOTALL)


class _Tokens:
    def __init__(self, text, filename):
        self.filename = filename
        self.tokens = []  # (kind, value, offset)
        self.text = text
        pos = 0
        while pos < len(text):
            m = _TOKEN_RE.match(text, pos)
            if m is None:
                if text.startswith("/*", pos):
                    self.error("unterminated /* comment", pos)
                self.error(f"unexpected character {text[pos]!r}", pos)
            kind = m.lastgroup
            if kind != "ws":
                self.tokens.append((kind, m.group(), pos))
            pos = m.end()
        self.i = 0

    def position(self, offset):
        line = self.text.count("\n", 0, offset) + 1
        column = offset - (self.text.rfind("\n", 0, offset) + 1) + 1
        return line, column

    def error(self, message, offset=None):
        if offset is None:
            offset = self.tokens[self.i][2] if self.i < len(self.tokens) else len(self.text)
        line, column = self.position(offset)
        raise ProtoSyntaxError(message, self.filename, line, column)

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else ("eof", "", len(self.text))

    def next(self):
        tok = self.peek()
        if tok[0] == "eof":
            self.error("unexpected end of file")
        self.i += 1
        return tok

    def expect(self, value):
        tok = self.next()
        if tok[1] != value:
            self.i -= 1
            self.error(f"expected {value!r}, found {tok[1]!r}")
        return tok

    def ident(self, what):
        tok = self.next()
        if tok[0] != "ident":
            self.i -= 1
            self.error(f"expected {what}, found {tok[1]!r}")
        return tok


def _unquote(token):
    body = token[1:-1]
    return bytes(body, "utf-8").decode("unicode_escape")


def _parse_constant(tokens):
    kind, value, offset = tokens.next()
    if kind == "string":
        return ("string", _unquote(value), offset)
    if kind == "number":
        return ("number", value, offset)
    if kind == "symbol" and value == "-":
        kind2, value2, _ = tokens.next()
        if kind2 == "ident" and value2 in ("inf", "nan"):
            return ("number", "-" + value2, offset)
        tokens.i -= 1
        tokens.error("expected a number after '-'")
    if kind == "ident":
        return ("ident", value, offset)
    tokens.i -= 1
    tokens.error(f"expected a constant, found {value!r}")
    return None


def _parse_enum(tokens, full_name, enums):
    tokens.expect("{")
    values = {}
    numbers = set()
    while True:
        kind, value, offset = tokens.peek()
        if value == "}":
            tokens.next()
            break
        if value == ";":
            tokens.next()
            continue
        if value == "option":
            tokens.error("enum options are not supported by this compiler")
        if value == "reserved":
            tokens.error("'reserved' is not supported by this compiler")
        name = tokens.ident("an enum value name")[1]
        tokens.expect("=")
        kind, number, noff = tokens.next()
        if kind != "number" or not re.fullmatch(r"-?(0[xX][0-9A-Fa-f]+|[0-9]+)", number):
            tokens.error("expected an integer enum value", noff)
        number = int(number, 0)
        if name in values:
            tokens.error(f"enum value {name!r} is defined twice in {full_name}", offset)
        if number in numbers:
            tokens.error(f"enum number {number} is used twice in {full_name} (aliases are not "
                         "supported)", noff)
        if tokens.peek()[1] == "[":
            tokens.error("enum value options are not supported by this compiler")
        tokens.expect(";")
        values[name] = number
        numbers.add(number)
    if not values:
        tokens.error(f"enum {full_name} has no values")
    if full_name in enums:
        tokens.error(f"enum {full_name} is defined twice")
    enums[full_name] = values


def _parse_message(tokens, full_name, messages, enums, raw_fields):
    tokens.expect("{")
    if full_name in messages:
        tokens.error(f"message {full_name} is defined twice")
    messages[full_name] = None  # placeholder keeps declaration order
    fields = []
    while True:
        kind, value, offset = tokens.peek()
        if value == "}":
            tokens.next()
            break
        if value == ";":
            tokens.next()
            continue
        if value == "message":
            tokens.next()
            name = tokens.ident("a message name")[1]
            _parse_message(tokens, f"{full_name}.{name}", messages, enums, raw_fields)
            continue
        if value == "enum":
            tokens.next()
            name = tokens.ident("an enum name")[1]
            _parse_enum(tokens, f"{full_name}.{name}", enums)
            continue
        if value in ("optional", "required", "repeated"):
            tokens.next()
            label = value
            type_tok = tokens.ident("a field type")
            if type_tok[1] == "group":
                tokens.error("groups are not supported by this compiler", type_tok[2])
            name_tok = tokens.ident("a field name")
            tokens.expect("=")
            kind, number, noff = tokens.next()
            if kind != "number" or not re.fullmatch(r"[0-9]+|0[xX][0-9A-Fa-f]+", number):
                tokens.error("expected a positive field number", noff)
            number = int(number, 0)
            if not 1 <= number <= _MAX_FIELD_NUMBER or number in _RESERVED_NUMBERS:
                tokens.error(f"field number {number} is out of range", noff)
            options = {}
            if tokens.peek()[1] == "[":
                tokens.next()
                while True:
                    opt_name, opt_off = tokens.ident("an option name")[1:]
                    if opt_name not in ("default", "packed"):
                        tokens.error(f"field option {opt_name!r} is not supported", opt_off)
                    if opt_name in options:
                        tokens.error(f"option {opt_name!r} given twice", opt_off)
                    tokens.expect("=")
                    options[opt_name] = _parse_constant(tokens)
                    if tokens.peek()[1] == ",":
                        tokens.next()
                        continue
                    tokens.expect("]")
                    break
            tokens.expect(";")
            fields.append({"name": name_tok[1], "name_offset": name_tok[2], "number": number,
                           "number_offset": noff, "label": label, "type": type_tok[1],
                           "type_offset": type_tok[2], "options": options})
            continue
        if value in ("oneof", "map", "extend", "extensions", "reserved", "option", "service"):
            tokens.error(f"'{value}' is not supported by this compiler")
        if kind == "ident":
            tokens.error(f"a field needs a label (optional, required or repeated), found {value!r}")
        tokens.error(f"unexpected {value!r} in message {full_name}")
    names, numbers = {}, {}
    for f in fields:
        if f["name"] in names:
            tokens.error(f"field {f['name']!r} is defined twice in {full_name}", f["name_offset"])
        if f["number"] in numbers:
            tokens.error(f"field number {f['number']} is used by both {numbers[f['number']]!r} "
                         f"and {f['name']!r} in {full_name}", f["number_offset"])
        names[f["name"]] = f
        numbers[f["number"]] = f["name"]
    raw_fields[full_name] = fields


def _resolve(type_name, scope, messages, enums):
    """Protobuf scoping: innermost enclosing scope first, then outwards."""
    if type_name.startswith("."):
        candidates = [type_name[1:]]
    else:
        parts = scope.split(".") if scope else []
        candidates = [".".join(parts[:i] + [type_name]) for i in range(len(parts), -1, -1)]
    first, _, rest = type_name.lstrip(".").partition(".")
    for cand in candidates:
        # the first component must resolve in this scope; the rest is then fixed
        head = cand[: len(cand) - len(type_name.lstrip("."))] + first
        if head in messages or head in enums:
            full = head + ("." + rest if rest else "")
            if full in messages:
                return "message", full
            if full in enums:
                return "enum", full
            return None
    return None


def _float_default(tok, tokens):
    kind, value, offset = tok
    if kind == "number" or (kind == "ident" and value in ("inf", "nan")):
        text = value.lower()
        if text.lstrip("-") in ("inf", "nan"):
            return float(text)
        if re.fullmatch(r"-?0[xX][0-9a-fA-F]+", text):
            return float(int(text, 16))
        return float(text)
    tokens.error("expected a number as the default of a floating-point field", offset)
    return None


def compile_proto(text, filename="<proto>"):
    """Parse the proto2 subset in ``text`` and return ``{'package', 'enums', 'messages'}``.

    ``messages`` maps each fully qualified message name (without the package)
    to an ordered dict ``field name -> {number, label, type, kind, default,
    packed}``; ``kind`` is ``'scalar'``, ``'enum'`` or ``'message'``; ``type``
    is the scalar type name or the fully qualified enum/message name;
    ``default`` is the proto2 default a reader sees for an unset optional
    field (the explicit ``[default = ...]``, else zero, ``False``, ``''``,
    ``b''`` or the enum's first value; enum defaults are value names), and
    ``None`` for repeated and message fields.
    """
    tokens = _Tokens(text, filename)
    package = ""
    messages, enums, raw_fields = {}, {}, {}
    seen_syntax = False
    while tokens.peek()[0] != "eof":
        kind, value, offset = tokens.next()
        if value == "syntax":
            tokens.expect("=")
            kind, syn, soff = tokens.next()
            if kind != "string" or _unquote(syn) != "proto2":
                tokens.error("only syntax = \"proto2\" is supported", soff)
            tokens.expect(";")
            seen_syntax = True
        elif value == "package":
            package = tokens.ident("a package name")[1]
            tokens.expect(";")
        elif value == "message":
            name = tokens.ident("a message name")[1]
            _parse_message(tokens, name, messages, enums, raw_fields)
        elif value == "enum":
            name = tokens.ident("an enum name")[1]
            _parse_enum(tokens, name, enums)
        elif value == ";":
            continue
        else:
            tokens.error(f"'{value}' is not supported at file level", offset)
    if not seen_syntax:
        tokens.error("missing syntax = \"proto2\";", 0)
    for name in messages:
        if name in enums:
            tokens.error(f"{name} is both a message and an enum", 0)

    compiled = {}
    for msg_name, fields in raw_fields.items():
        out = {}
        for f in fields:
            type_name, label, options = f["type"], f["label"], f["options"]
            if type_name in SCALAR_TYPES:
                kind, full_type = "scalar", type_name
            else:
                resolved = _resolve(type_name, msg_name, messages, enums)
                if resolved is None:
                    tokens.error(f"unknown type {type_name!r} for field {msg_name}.{f['name']}",
                                 f["type_offset"])
                kind, full_type = resolved
            packed = False
            if "packed" in options:
                pk = options["packed"]
                if pk[0] != "ident" or pk[1] not in ("true", "false"):
                    tokens.error("packed must be true or false", pk[2])
                packed = pk[1] == "true"
                if packed and (label != "repeated" or kind == "message"
                               or full_type in ("string", "bytes")):
                    tokens.error("[packed = true] needs a repeated numeric, bool or enum field",
                                 pk[2])
            default = None
            if "default" in options:
                tok = options["default"]
                if label == "repeated" or kind == "message":
                    tokens.error("only singular scalar and enum fields can have a default", tok[2])
                if kind == "enum":
                    if tok[0] != "ident" or tok[1] not in enums[full_type]:
                        tokens.error(f"default {tok[1]!r} is not a value of enum {full_type}",
                                     tok[2])
                    default = tok[1]
                elif full_type in ("float", "double"):
                    default = _float_default(tok, tokens)
                elif full_type in _INT_TYPES:
                    if tok[0] != "number" or not re.fullmatch(r"-?(0[xX][0-9A-Fa-f]+|[0-9]+)",
                                                              tok[1]):
                        tokens.error("expected an integer default", tok[2])
                    default = int(tok[1], 0)
                    lo, hi = _INT_RANGES[full_type]
                    if not lo <= default <= hi:
                        tokens.error(f"default {default} is out of range for {full_type}", tok[2])
                elif full_type == "bool":
                    if tok[0] != "ident" or tok[1] not in ("true", "false"):
                        tokens.error("expected true or false", tok[2])
                    default = tok[1] == "true"
                elif full_type in ("string", "bytes"):
                    if tok[0] != "string":
                        tokens.error("expected a quoted string default", tok[2])
                    default = tok[1] if full_type == "string" else tok[1].encode("latin-1")
            elif label != "repeated" and kind != "message":
                if kind == "enum":
                    default = next(iter(enums[full_type]))
                elif full_type in ("float", "double"):
                    default = 0.0
                elif full_type == "bool":
                    default = False
                elif full_type == "string":
                    default = ""
                elif full_type == "bytes":
                    default = b""
                else:
                    default = 0
            out[f["name"]] = {"number": f["number"], "label": label, "type": full_type,
                              "kind": kind, "default": default, "packed": packed}
        compiled[msg_name] = out
    return {"package": package, "enums": enums, "messages": compiled}


def _literal(value):
    if isinstance(value, float):
        if math.isnan(value):
            return "float('nan')"
        if math.isinf(value):
            return "float('inf')" if value > 0 else "-float('inf')"
        return repr(value)
    return repr(value)


def render_schema(schema, source_name="caffe_subset.proto"):
    """The text of ``schema.py`` for a compiled schema (deterministic)."""
    lines = [
        f'"""Caffe schema compiled from {source_name} by deepkit/caffe/schema_compiler.py.',
        "",
        "Generated file: edit the .proto and run ``python -m deepkit.caffe.schema_compiler``.",
        "MESSAGES maps a message name to its fields in declaration order; each field is",
        "{number, label, type, kind, default, packed} (see schema_compiler.compile_proto).",
        '"""',
        "",
        f"PACKAGE = {schema['package']!r}",
        "",
        "ENUMS = {",
    ]
    for name, values in schema["enums"].items():
        lines.append(f"    {name!r}: {{")
        for vname, number in values.items():
            lines.append(f"        {vname!r}: {number},")
        lines.append("    },")
    lines.append("}")
    lines.append("")
    lines.append("MESSAGES = {")
    for name, fields in schema["messages"].items():
        lines.append(f"    {name!r}: {{")
        for fname, f in fields.items():
            lines.append(
                f"        {fname!r}: {{'number': {f['number']}, 'label': {f['label']!r}, "
                f"'type': {f['type']!r}, 'kind': {f['kind']!r}, "
                f"'default': {_literal(f['default'])}, 'packed': {f['packed']!r}}},")
        lines.append("    },")
    lines.append("}")
    return "\n".join(lines) + "\n"


def compile_file(proto_path=PROTO_PATH):
    """Compile a .proto file and return the text of the schema module."""
    with open(proto_path, encoding="utf-8") as f:
        text = f.read()
    return render_schema(compile_proto(text, proto_path), os.path.basename(proto_path))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    check = "--check" in argv
    rendered = compile_file(PROTO_PATH)
    if check:
        with open(SCHEMA_PATH, encoding="utf-8") as f:
            if f.read() != rendered:
                print(f"{SCHEMA_PATH} is stale: run python -m deepkit.caffe.schema_compiler",
                      file=sys.stderr)
                return 1
        return 0
    tmp = SCHEMA_PATH + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(rendered)
    os.replace(tmp, SCHEMA_PATH)
    print(f"wrote {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
