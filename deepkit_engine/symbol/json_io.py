"""Symbol JSON in MXNet 1.x's layout, read and written.

Written: ``{"nodes": [{"op", "name", "attrs", "inputs"}], "arg_nodes", "node_row_ptr",
"heads", "attrs"}``, with every attribute as a string. Read: the same, plus
older MXNet files that keep op params in ``param`` and user attributes in
``attr``. Op names resolve through the registry's aliases, so graphs saved by
MXNet load when their ops exist here.
"""
import json

import numpy as np

from ..base import DeepkitError, ParamError
from ..graph.node import Node, topo_order
from ..ops import registry as _registry

__all__ = ["to_json", "from_json"]

FORMAT_VERSION = 10901  # the MXNet version whose JSON layout this follows


def _to_str(value):
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, tuple):
        return "(" + ", ".join(str(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return str(value)


def _is_default(value, default):
    if default is _registry.REQUIRED:
        return False
    if default is None or value is None:
        return value is None and default is None
    return type(value) is type(default) and value == default


def to_json(outputs):
    """MXNet-compatible JSON text of the graph behind ``outputs`` (``(node, index)`` entries)."""
    nodes = topo_order(outputs)
    index = {id(n): i for i, n in enumerate(nodes)}
    out_nodes = []
    row_ptr = [0]
    for n in nodes:
        entry = {"op": "null" if n.op is None else n.op.name, "name": n.name,
                 "inputs": [[index[id(src)], i, 0] for src, i in n.inputs]}
        attrs = {}
        if n.op is not None:
            defaults = n.op.params
            for k, v in n.attrs.items():
                p = defaults.get(k)
                if p is not None and k != "num_args" and _is_default(v, p.default):
                    continue
                attrs[k] = _to_str(v)
        attrs.update(n.user_attrs)
        if attrs:
            entry["attrs"] = attrs
        out_nodes.append(entry)
        row_ptr.append(row_ptr[-1] + n.num_outputs())
    doc = {
        "nodes": out_nodes,
        "arg_nodes": [i for i, n in enumerate(nodes) if n.op is None],
        "node_row_ptr": row_ptr,
        "heads": [[index[id(n)], i, 0] for n, i in outputs],
        "attrs": {"mxnet_version": ["int", FORMAT_VERSION], "deepkit": ["int", 1]},
    }
    return json.dumps(doc, indent=2)


def from_json(text, source="JSON"):
    """The output entries ``(node, index)`` of the graph in JSON ``text``.

    Args:
        text: What :func:`to_json` (or MXNet 1.x) wrote.
        source: Named in errors (a file name).
    """
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, TypeError) as err:
        raise DeepkitError(f"load_json: {source} is not valid JSON ({err})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), list) \
            or not isinstance(doc.get("heads"), list):
        raise DeepkitError(f"load_json: {source} is JSON but not a symbol graph (expected an "
                           "object with 'nodes' and 'heads' lists)")
    nodes = []
    for i, spec in enumerate(doc["nodes"]):
        if not isinstance(spec, dict) or "op" not in spec or "name" not in spec:
            raise DeepkitError(f"load_json: {source}: node {i} lacks 'op' or 'name'")
        raw = {}
        for key in ("param", "attr", "attrs"):
            if isinstance(spec.get(key), dict):
                raw.update(spec[key])
        inputs = []
        for ref in spec.get("inputs", []):
            if not isinstance(ref, list) or len(ref) < 2:
                raise DeepkitError(f"load_json: {source}: node {i} ('{spec['name']}') has a "
                                   f"malformed input {ref!r}")
            src, idx = int(ref[0]), int(ref[1])
            if not 0 <= src < i:
                raise DeepkitError(
                    f"load_json: {source}: node {i} ('{spec['name']}') reads node {src}, which "
                    "is not an earlier node: the graph has a cycle or a dangling reference")
            if idx >= nodes[src].num_outputs():
                raise DeepkitError(f"load_json: {source}: node {i} ('{spec['name']}') reads "
                                   f"output {idx} of '{nodes[src].name}', which has "
                                   f"{nodes[src].num_outputs()}")
            inputs.append((nodes[src], idx))
        if spec["op"] == "null":
            if inputs:
                raise DeepkitError(f"load_json: {source}: variable '{spec['name']}' has inputs")
            nodes.append(Node(None, spec["name"], user_attrs={k: str(v) for k, v in raw.items()}))
            continue
        try:
            op = _registry.get_op(spec["op"])
        except ParamError as err:
            raise DeepkitError(f"load_json: {source}: node '{spec['name']}': {err}") from None
        params = {k: v for k, v in raw.items() if k in op.params}
        user = {k: str(v) for k, v in raw.items() if k not in op.params}
        if op.variadic:
            params.setdefault("num_args", len(inputs))
        try:
            attrs = op.parse_attrs(params)
        except ParamError as err:
            raise DeepkitError(f"load_json: {source}: node '{spec['name']}': {err}") from None
        expected = len(op.input_names(attrs))
        if expected != len(inputs):
            raise DeepkitError(f"load_json: {source}: node '{spec['name']}' ({op.name}) has "
                               f"{len(inputs)} inputs but the op takes {expected}")
        nodes.append(Node(op, spec["name"], attrs, inputs, user))
    heads = []
    for ref in doc["heads"]:
        src, idx = int(ref[0]), int(ref[1])
        if not 0 <= src < len(nodes):
            raise DeepkitError(f"load_json: {source}: head refers to missing node {src}")
        heads.append((nodes[src], idx))
    for node, _ in heads:
        node.variables()
    return heads
