"""Small nets with fork layers (SSD and others) whose fields BVLC's schema lacks.

The test writer is schema-driven, so prototxt text with fork fields is
written here by a plain formatter (:func:`prototxt`); the caffemodel only
needs names, types and blobs, which the schema has.
"""
import numpy as np

from . import caffe_writer as cw


class Enum(str):
    """An enum value: written without quotes."""


def _value(v):
    if isinstance(v, Enum):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace('"', '\\"') + '"'
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    return str(int(v))


def _fields(d, indent):
    pad = "  " * indent
    lines = []
    for key, value in d.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, dict):
                lines.append(f"{pad}{key} {{")
                lines.extend(_fields(item, indent + 1))
                lines.append(f"{pad}}}")
            else:
                lines.append(f"{pad}{key}: {_value(item)}")
    return lines


def prototxt(layers, name="net"):
    """Prototxt text of ``layers`` (dicts; fork fields welcome; ``blobs`` left out)."""
    lines = [f'name: "{name}"']
    for lyr in layers:
        lines.append("layer {")
        lines.extend(_fields({k: v for k, v in lyr.items() if k != "blobs"}, 1))
        lines.append("}")
    return "\n".join(lines) + "\n"


def fork_layer(name, type_, bottom=(), top=None, blobs=(), **fields):
    """A layer dict: name, type, bottoms, tops (default: the name), blobs and fields."""
    top = [name] if top is None else ([top] if isinstance(top, str) else list(top))
    bottom = [bottom] if isinstance(bottom, str) else list(bottom)
    out = {"name": name, "type": type_}
    if bottom:
        out["bottom"] = bottom
    out["top"] = top
    out.update(fields)
    if blobs:
        out["blobs"] = [np.asarray(b, np.float32) for b in blobs]
    return out


def inputs(**shapes):
    """One Input layer per ``name=shape``."""
    return [fork_layer(f"input_{n}", "Input", top=n,
                       input_param={"shape": {"dim": list(s)}}) for n, s in shapes.items()]


def write_fork_net(tmp_path, layers, name="net"):
    """Write ``name.prototxt`` (our formatter) and ``name.caffemodel`` (the test writer).

    Returns:
        ``(prototxt path, caffemodel path)``; the caffemodel is ``None`` when
        no layer has blobs.
    """
    proto = tmp_path / f"{name}.prototxt"
    proto.write_text(prototxt(layers, name))
    model = tmp_path / f"{name}.caffemodel"
    with_blobs = [cw.v2_layer(lyr["name"], lyr["type"], lyr.get("bottom", ()), lyr["top"],
                              [cw.blob(b) for b in lyr["blobs"]])
                  for lyr in layers if lyr.get("blobs")]
    if not with_blobs:
        return proto, None
    cw.write_caffemodel(str(model), {"name": name, "layer": with_blobs})
    return proto, model
