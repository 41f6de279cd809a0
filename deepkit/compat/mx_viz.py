"""MXNet 1.x's ``mx.viz.print_summary``: a layer table of a symbol, with parameter counts.

One row per op node (variables are folded into the node that uses them; labels
are not counted as parameters):
``Layer (type)``, ``Output Shape``, ``Param #`` and ``Previous Layer``, then
the total number of parameters, as MXNet prints it.
"""
import json

import numpy as np

from ..visualization import plot_symbol, symbol_to_dot

__all__ = ["print_summary"]


def _count(shape):
    return int(np.prod(shape)) if shape else 0


def print_summary(symbol, shape=None, line_length=120, positions=(.44, .64, .74, 1.),
                  print_fn=print):
    """Print the layers of ``symbol`` with their output shapes and parameter counts.

    Args:
        symbol: The network.
        shape: ``{input name: shape}`` to show output shapes and count parameters
            (None: no shapes, parameter counts from the shapes the symbol declares).
        line_length: Width of the table.
        positions: Right edges of the columns, as fractions of ``line_length``.
        print_fn: Where the lines go.

    Returns:
        int: The total number of parameters.

    Raises:
        ValueError: ``shape`` does not determine every shape.
    """
    internals = symbol.get_internals()
    shapes = {}
    arg_shapes = {}
    if shape is not None:
        args, outs, aux = internals.infer_shape_known(**shape)
        shapes = dict(zip(internals.list_outputs(), outs))
        arg_shapes = dict(zip(symbol.list_arguments(), args))
        arg_shapes.update(zip(symbol.list_auxiliary_states(), aux))
    graph = json.loads(symbol.tojson())
    nodes = graph["nodes"]
    heads = {h[0] for h in graph["heads"]}
    inputs = set(shape or {})
    stops = [int(line_length * p) for p in positions]
    columns = ["Layer (type)", "Output Shape", "Param #", "Previous Layer"]

    def row(fields):
        line = ""
        for field, stop in zip(fields, stops):
            line = (line + str(field))[:stop].ljust(stop)
        print_fn(line.rstrip())

    print_fn("_" * line_length)
    row(columns)
    print_fn("=" * line_length)
    total = 0
    shown = [i for i, n in enumerate(nodes) if n["op"] != "null" or n["name"] in inputs]
    for k, i in enumerate(shown):
        node = nodes[i]
        params = 0
        previous = []
        for source, _, *_ in node.get("inputs", []):
            src = nodes[source]
            if src["op"] == "null" and src["name"] not in inputs:
                if not src["name"].endswith("label"):  # labels are inputs, not parameters
                    params += _count(arg_shapes.get(src["name"]))
            else:
                previous.append(src["name"])
        out = shapes.get(f"{node['name']}_output", shapes.get(node["name"]))
        out_text = "x".join(str(d) for d in out[1:]) if out else ""
        total += params
        kind = "Variable" if node["op"] == "null" else node["op"]
        row([f"{node['name']}({kind})", out_text, params, previous[0] if previous else ""])
        for name in previous[1:]:
            row(["", "", "", name])
        print_fn(("=" if k == len(shown) - 1 or i in heads else "_") * line_length)
    print_fn(f"Total params: {total}")
    print_fn("_" * line_length)
    return total


class _Digraph:
    """What ``mx.viz.plot_network`` returns: the DOT source, rendered on request.

    MXNet returns a ``graphviz.Digraph``; this object offers the parts scripts
    use: ``source``, ``render(filename, format=...)`` and ``save(filename)``.
    """

    def __init__(self, symbol, shape, hide_weights, save_format):
        self.symbol, self.shape, self.hide_weights = symbol, shape, hide_weights
        self.format = save_format
        self.source = symbol_to_dot(symbol, shape, hide_weights=hide_weights)

    def render(self, filename="plot", format=None, **_):  # noqa: A002 - graphviz's name
        """Write ``filename.<format>`` (png, svg, pdf) and return its path."""
        path = f"{filename}.{format or self.format}"
        return plot_symbol(self.symbol, path, shape=self.shape, hide_weights=self.hide_weights)

    def save(self, filename="plot.gv"):
        """Write the DOT source."""
        with open(filename, "w") as f:
            f.write(self.source)
        return filename


def plot_network(symbol, title="plot", save_format="pdf", shape=None, dtype=None,
                 node_attrs=None, hide_weights=True):
    """The network's graph (MXNet's ``mx.viz.plot_network``): ``.render()`` draws it."""
    return _Digraph(symbol, shape, hide_weights, save_format)
