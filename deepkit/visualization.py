"""Pictures of networks and of training: ``plot_model``, ``plot_symbol``, ``plot_history``.

``plot_model`` writes the layer graph of a model as PNG, SVG or PDF (by the
file's extension), or its DOT source for ``.dot``. With Graphviz's ``dot``
program installed (and the ``graphviz`` package: ``pip install
'deepkit[viz]'``) the picture comes from Graphviz; without it, from a
layered layout drawn with matplotlib, so a picture is always produced.
Every file is written atomically.
"""
import collections
import io
import json
import os
import shutil
import sys

from deepkit_engine.fileio import atomic_path

__all__ = ["model_to_dot", "plot_model", "symbol_to_dot", "plot_symbol", "plot_history"]

_FORMATS = ("png", "svg", "pdf", "dot")
_NOTE_SHOWN = []


def _quote(text):
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _shape_text(shape):
    if isinstance(shape, list):
        return ", ".join(_shape_text(s) for s in shape)
    return "(" + ", ".join("None" if s is None else str(s) for s in shape) + ")"


def _layer_graph(model, expand_nested):
    """``(nodes, edges)``: ``nodes`` is ``[(id, label lines, cluster or None)]``."""
    nodes, edges, ids = [], [], {}

    def node_id(layer):
        return ids.setdefault(id(layer), f"n{len(ids)}")

    def visit(m, cluster):
        shapes = {id(t.layer): t.shape for t in m.inputs}
        for layer, node in m.calls():
            outs = [t.shape for t in node.outputs]
            shapes[id(layer)] = outs[0] if len(outs) == 1 else outs
        for layer in m.layers:
            nested = expand_nested and hasattr(layer, "calls") and hasattr(layer, "inputs")
            if nested:
                visit(layer, layer.name)
                continue
            nodes.append((node_id(layer), layer, shapes.get(id(layer)), cluster))
        for layer, node in m.calls():
            target = layer
            if expand_nested and hasattr(layer, "calls"):
                target = layer.inputs[0].layer
            for t in node.inputs:
                source = t.layer
                if expand_nested and hasattr(source, "calls"):
                    source = source.outputs[0].layer
                edges.append((node_id(source), node_id(target)))
    visit(model, None)
    return nodes, list(dict.fromkeys(edges))


def _labels(nodes, show_shapes, show_dtype, show_layer_names, show_layer_activations):
    out = []
    for nid, layer, shape, cluster in nodes:
        title = type(layer).__name__
        if show_layer_names:
            title = f"{layer.name} ({title})"
        lines = [title]
        activation = getattr(layer, "activation", None)
        if show_layer_activations and activation is not None:
            lines.append(f"activation: {getattr(activation, '__name__', activation)}")
        if show_shapes and shape is not None:
            lines.append(f"output: {_shape_text(shape)}")
        if show_dtype:
            lines.append(f"dtype: {getattr(layer, 'dtype', 'float32')}")
        out.append((nid, lines, cluster))
    return out


def _dot_source(name, labelled, edges, rankdir):
    lines = [f"digraph {_quote(name)} {{", f"  rankdir={rankdir};",
             '  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", '
             'fontname="Helvetica"];']
    clusters = collections.defaultdict(list)
    for nid, text, cluster in labelled:
        clusters[cluster].append(f"  {nid} [label={_quote(chr(10).join(text))}];")
    for cluster, entries in clusters.items():
        if cluster is None:
            lines.extend(entries)
            continue
        lines.append(f"  subgraph {_quote('cluster_' + cluster)} {{")
        lines.append(f"    label={_quote(cluster)};")
        lines.extend("  " + e for e in entries)
        lines.append("  }")
    lines.extend(f"  {a} -> {b};" for a, b in edges)
    lines.append("}")
    return "\n".join(lines) + "\n"


def model_to_dot(model, show_shapes=False, show_dtype=False, show_layer_names=True,
                 rankdir="TB", expand_nested=False, show_layer_activations=False):
    """The DOT source (Graphviz's language) of a model's layer graph."""
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"plot_model: 'rankdir' must be 'TB', 'LR', 'BT' or 'RL'. Received: "
                         f"rankdir={rankdir!r}")
    if not getattr(model, "built", False):
        raise ValueError(f"plot_model: model '{model.name}' is not built; give it an input "
                         "shape first")
    nodes, edges = _layer_graph(model, expand_nested)
    labelled = _labels(nodes, show_shapes, show_dtype, show_layer_names, show_layer_activations)
    return _dot_source(model.name, labelled, edges, rankdir)


def symbol_to_dot(symbol, shape=None, rankdir="TB", hide_weights=True):
    """The DOT source of an engine symbol's graph (MXNet's ``plot_network``).

    Args:
        symbol: The symbol.
        shape: ``{input name: shape}``; when given, edges carry the shapes.
        rankdir: Graphviz's direction.
        hide_weights: Leave out weight and bias variables (as MXNet does).
    """
    graph = json.loads(symbol.tojson())
    shapes = {}
    if shape:
        internals = symbol.get_internals()
        _, out_shapes, _ = internals.infer_shape_known(**shape)
        shapes = dict(zip(internals.list_outputs(), out_shapes or []))
    nodes, edges, hidden = [], [], set()
    args = set(symbol.list_arguments()) - set(shape or {})
    for i, node in enumerate(graph["nodes"]):
        if node["op"] == "null" and hide_weights and node["name"] in args \
                and not node["name"].endswith(("data", "label")):
            hidden.add(i)
            continue
        title = node["name"] if node["op"] == "null" else f"{node['name']} ({node['op']})"
        nodes.append((f"n{i}", [title], None))
        for src, idx, *_ in node["inputs"]:
            if src in hidden:
                continue
            src_node = graph["nodes"][src]
            out_name = src_node["name"] if src_node["op"] == "null" else \
                f"{src_node['name']}_output"
            label = shapes.get(out_name)
            edges.append((f"n{src}", f"n{i}", label))
    lines = ["digraph plot {", f"  rankdir={rankdir};",
             '  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", '
             'fontname="Helvetica"];']
    lines.extend(f"  {nid} [label={_quote(text[0])}];" for nid, text, _ in nodes)
    for a, b, label in edges:
        extra = f" [label={_quote(_shape_text(label[1:]))}]" if label else ""
        lines.append(f"  {a} -> {b}{extra};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _format_of(path):
    ext = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    if ext not in _FORMATS:
        raise ValueError(f"plot_model: cannot tell the picture format of {os.fspath(path)!r}; "
                         f"use one of the extensions {', '.join('.' + f for f in _FORMATS)}")
    return ext


def _render_with_graphviz(source, fmt):
    try:
        import graphviz  # noqa: PLC0415 - optional (viz extra), only for pictures
    except ImportError:
        return None
    if shutil.which("dot") is None:
        return None
    return graphviz.Source(source).pipe(format=fmt)


def _render_with_matplotlib(labelled, edges, fmt, rankdir):
    try:
        import matplotlib  # noqa: PLC0415 - optional (viz extra), the fallback renderer
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415 - after choosing the backend
    except ImportError as err:
        raise ImportError("plot_model needs Graphviz (the 'dot' program and pip install "
                          "graphviz) or matplotlib: pip install 'deepkit[viz]'") from err
    depth = {nid: 0 for nid, _, _ in labelled}
    for _ in range(len(labelled)):
        for a, b in edges:
            depth[b] = max(depth[b], depth[a] + 1)
    rows = collections.defaultdict(list)
    for nid, _, _ in labelled:
        rows[depth[nid]].append(nid)
    text = {nid: "\n".join(lines) for nid, lines, _ in labelled}
    pos = {}
    for level, ids in rows.items():
        for k, nid in enumerate(ids):
            across = k - (len(ids) - 1) / 2
            pos[nid] = (across * 3.0, -level * 1.2) if rankdir in ("TB", "BT") \
                else (level * 3.0, -across * 1.2)
    width = max(4.0, 3.0 * max(len(ids) for ids in rows.values()))
    height = max(3.0, 1.2 * (len(rows) + 1))
    fig, ax = plt.subplots(figsize=(width, height) if rankdir in ("TB", "BT") else (height * 2,
                                                                                     width / 2))
    for a, b in edges:
        ax.annotate("", xy=pos[b], xytext=pos[a],
                    arrowprops={"arrowstyle": "->", "color": "#555555"})
    for nid, (x, y) in pos.items():
        ax.text(x, y, text[nid], ha="center", va="center", fontsize=8,
                bbox={"boxstyle": "round", "facecolor": "#eef3fb", "edgecolor": "#555555"})
    xs, ys = [p[0] for p in pos.values()], [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - 2, max(xs) + 2)
    ax.set_ylim(min(ys) - 1, max(ys) + 1)
    ax.axis("off")
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _write(to_file, source, labelled, edges, rankdir):
    fmt = _format_of(to_file)
    if fmt == "dot":
        data = source.encode()
    else:
        data = _render_with_graphviz(source, fmt)
        if data is None:
            if not _NOTE_SHOWN:
                _NOTE_SHOWN.append(True)
                print("plot_model: Graphviz not found, drawing with matplotlib (install the "
                      "'dot' program and pip install graphviz for nicer pictures)",
                      file=sys.stderr)
            data = _render_with_matplotlib(labelled, edges, fmt, rankdir)
    with atomic_path(to_file) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return to_file


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False,
               show_layer_names=True, rankdir="TB", expand_nested=False,
               show_layer_activations=False):
    """Write a picture of the model's layer graph (Keras's ``plot_model``).

    Args:
        model: A built functional or Sequential model.
        to_file: The output file; ``.png``, ``.svg``, ``.pdf`` or ``.dot``.
        show_shapes: Show each layer's output shape.
        show_dtype: Show each layer's dtype.
        show_layer_names: Show layer names beside the class names.
        rankdir: ``'TB'`` (top to bottom) or ``'LR'`` (left to right), ...
        expand_nested: Draw nested models' layers (inside a box) instead of one node.
        show_layer_activations: Show the activation of layers that have one.

    Returns:
        ``to_file``.
    """
    source = model_to_dot(model, show_shapes, show_dtype, show_layer_names, rankdir,
                          expand_nested, show_layer_activations)
    nodes, edges = _layer_graph(model, expand_nested)
    labelled = _labels(nodes, show_shapes, show_dtype, show_layer_names, show_layer_activations)
    return _write(to_file, source, labelled, edges, rankdir)


def plot_symbol(symbol, to_file="network.png", shape=None, rankdir="TB", hide_weights=True):
    """Write a picture of an engine symbol's graph (see :func:`symbol_to_dot`)."""
    source = symbol_to_dot(symbol, shape, rankdir, hide_weights)
    labelled, edges = [], []
    for line in source.splitlines():
        line = line.strip()
        if " -> " in line:
            a, b = line.rstrip(";").split(" [")[0].split(" -> ")
            edges.append((a, b))
        elif line.startswith("n") and "[label=" in line:
            nid, label = line.split(" [label=", 1)
            labelled.append((nid, [label.rstrip("];").strip('"')], None))
    return _write(to_file, source, labelled, edges, rankdir)


def plot_history(history, metrics=None, to_file="history.png"):
    """Train and validation curves side by side, one panel per metric.

    Args:
        history: A History (``model.fit``'s return value) or its ``history`` dict.
        metrics: The quantities to draw (default: every one without ``val_``).
        to_file: Output picture (PNG, SVG or PDF by extension), written atomically.

    Returns:
        ``to_file``.
    """
    try:
        import matplotlib  # noqa: PLC0415 - optional (viz extra), only for pictures
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415 - after choosing the backend
    except ImportError as err:
        raise ImportError("plot_history needs matplotlib: pip install 'deepkit[viz]'") from err
    logs = getattr(history, "history", history)
    metrics = list(metrics or [k for k in logs if not k.startswith("val_")])
    unknown = [m for m in metrics if m not in logs]
    if unknown:
        raise ValueError(f"plot_history: {unknown} were not logged; the history has "
                         f"{sorted(logs)}")
    fmt = _format_of(to_file)
    if fmt == "dot":
        raise ValueError("plot_history: use .png, .svg or .pdf")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.2), squeeze=False)
    for ax, name in zip(axes[0], metrics):
        epochs = range(1, len(logs[name]) + 1)
        ax.plot(epochs, logs[name], marker="o", label="train")
        if f"val_{name}" in logs:
            ax.plot(epochs, logs[f"val_{name}"], marker="o", label="validation")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    with atomic_path(to_file) as tmp:
        fig.savefig(tmp, format=fmt)
    plt.close(fig)
    return to_file
