"""The result of a conversion: :class:`CaffeConversion` and its per-layer and per-parameter
records, saved in deepkit's one-file symbol format (:mod:`deepkit.symbol_file`)."""
import collections

import numpy as np

from deepkit.symbol_file import read_symbol_file, write_symbol_file
from deepkit_engine.base import DeepkitError

from .problems import CaffeConversionError, Problem

__all__ = ["ParamRecord", "LayerRecord", "CaffeConversion", "load_converted", "fmt_shape"]


class ParamRecord:
    """One engine parameter: its name, where it came from, and its shapes."""

    __slots__ = ("name", "role", "layer", "blob", "caffe_shape", "shape", "aux", "transform",
                 "source")

    def __init__(self, name, role, layer, blob, caffe_shape, shape, aux, transform=None,
                 source=None):
        self.name, self.role, self.layer, self.blob = name, role, layer, blob
        self.caffe_shape = None if caffe_shape is None else tuple(caffe_shape)
        self.shape = tuple(shape)
        self.aux, self.transform, self.source = aux, transform, source

    def to_dict(self):
        return {"name": self.name, "role": self.role, "caffe_layer": self.layer,
                "caffe_blob": self.blob,
                "caffe_shape": None if self.caffe_shape is None else list(self.caffe_shape),
                "shape": list(self.shape), "aux": self.aux, "transform": self.transform,
                "source": self.source}


class LayerRecord:
    """One Caffe layer of the (phase-filtered) net and what it became.

    ``status``: ``'converted'``, ``'input'``, ``'alias'`` (Split),
    ``'dropped'`` (with ``note`` saying why), ``'fused'`` (into
    ``note``'s layer), ``'failed'`` (a problem names it) or ``'skipped'``
    (an input of it failed).
    """

    __slots__ = ("index", "name", "type", "node", "bottoms", "tops", "params", "top_shapes",
                 "outputs", "status", "note", "bottom_versions", "top_versions", "blob_shapes",
                 "caffe_blobs")

    def __init__(self, index, name, type_, node, bottoms, tops):
        self.index, self.name, self.type, self.node = index, name, type_, node
        self.bottoms, self.tops = list(bottoms), list(tops)
        self.params = []
        self.top_shapes = [None] * len(tops)
        self.outputs = [None] * len(tops)
        self.status, self.note = "pending", None
        self.bottom_versions, self.top_versions = [], []
        self.blob_shapes = []
        self.caffe_blobs = []

    @property
    def param_shapes(self):
        """The shapes of this layer's Caffe blobs (as the prototxt implies them)."""
        return list(self.caffe_blobs)

    def to_dict(self):
        return {"caffe_name": self.name, "type": self.type, "node": self.node,
                "bottoms": self.bottoms, "tops": self.tops,
                "top_shapes": [None if s is None else list(s) for s in self.top_shapes],
                "caffe_blobs": [list(s) for s in self.caffe_blobs],
                "outputs": self.outputs, "status": self.status, "note": self.note,
                "params": [p.name for p in self.params]}


class CaffeConversion:
    """A converted Caffe net.

    Attributes:
        symbol: The ``deepkit_engine`` Symbol (outputs: the blobs nothing
            consumes, sorted by Caffe blob name).
        arg_params, aux_params: ``{name: numpy array}`` in engine layouts.
        inputs: ``[(name, shape), ...]`` of the net's inputs.
        outputs: ``[(caffe_blob, engine_output_name), ...]``.
        metadata: JSON-ready dict: inputs, outputs, preprocessing (channel
            order, pixel range, mean, scale, crop size), the per-layer table,
            parameter provenance, names, warnings.
        layers: The :class:`LayerRecord` list, in file order.
        unsupported: The problems about unsupported layer types or values.
        problems: Every problem (empty for a successful conversion).
        warnings: Things worth knowing that do not stop the conversion.
        mean: The mean image/values array (``None`` if none was given).
    """

    def __init__(self):
        self.symbol = None
        self.arg_params, self.aux_params = {}, {}
        self.inputs, self.outputs = [], []
        self.metadata = {}
        self.layers = []
        self.problems, self.warnings = [], []
        self.params = {}
        self.mean = None

    @property
    def unsupported(self):
        return [p for p in self.problems if p.kind in Problem.UNSUPPORTED]

    @property
    def ok(self):
        return not self.problems

    def layer(self, name):
        """The :class:`LayerRecord` of a Caffe layer name (or engine node name)."""
        for rec in self.layers:
            if rec.name == name:
                return rec
        for rec in self.layers:
            if rec.node == name:
                return rec
        raise KeyError(f"no layer named '{name}'")

    # -- reporting ----------------------------------------------------------------------------
    def summary(self):
        """One line: layer counts, parameter count and size, inputs and outputs."""
        counts = collections.Counter(rec.status for rec in self.layers)
        nparams = sum(int(np.prod(a.shape)) for a in self.arg_params.values())
        nparams += sum(int(np.prod(a.shape)) for a in self.aux_params.values())
        nbytes = sum(a.nbytes for a in self.arg_params.values()) + \
            sum(a.nbytes for a in self.aux_params.values())
        parts = [f"{len(self.layers)} layers ({counts.get('converted', 0)} converted"]
        for key in ("input", "fused", "alias", "dropped", "failed", "skipped"):
            if counts.get(key):
                parts.append(f"{counts[key]} {key}")
        text = ", ".join(parts) + ")"
        text += f"; {nparams:,} parameters ({nbytes / 2 ** 20:.1f} MiB)"
        text += "; inputs " + ", ".join(f"{n} {tuple(s)}" for n, s in self.inputs)
        outs = []
        for blob, name in self.outputs:
            shape = self.output_shape(name)
            outs.append(f"{blob} {shape}" if shape is not None else blob)
        text += "; outputs " + (", ".join(outs) or "none")
        if self.problems:
            text += f"; {len(self.problems)} problem(s)"
        return text

    def output_shape(self, name):
        """The Caffe shape of an engine output name (``None`` if unknown)."""
        for rec in self.layers:
            for out, shape in zip(rec.outputs, rec.top_shapes):
                if out == name:
                    return None if shape is None else tuple(shape)
        return None

    def layer_table(self):
        """The printable per-layer table (type, name, parameter shapes, output shape) + summary."""
        rows = [("Type", "Name", "Parameters", "Output shape", "Note")]
        for rec in self.layers:
            params = " ".join(fmt_shape(s) for s in rec.param_shapes) or "-"
            outs = ", ".join(fmt_shape(s) if s is not None else "?" for s in rec.top_shapes) \
                or "-"
            note = rec.status if rec.status != "converted" else ""
            if rec.note:
                note = f"{note}: {rec.note}" if note else rec.note
            rows.append((rec.type, rec.name, params, outs, note))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = []
        for i, r in enumerate(rows):
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
        lines.append("")
        lines.append(self.summary())
        for p in self.problems:
            lines.append(f"problem: {p}")
        for w in self.warnings:
            lines.append(f"warning: {w}")
        return "\n".join(lines)

    def __repr__(self):
        return f"<CaffeConversion {self.summary()}>"

    # -- output ---------------------------------------------------------------------------------
    def save(self, path):
        """Write the model as one HDF5 file, atomically (see :func:`load_converted`).

        The format is :mod:`deepkit.symbol_file`'s; each parameter dataset
        also records its Caffe origin in the attributes ``caffe_layer`` and
        ``caffe_blob`` (-1 when it does not come from one blob), and the mean
        (when one was given) is the dataset ``preprocessing/mean``.

        Args:
            path: The file to write.

        Returns:
            ``path``.

        Raises:
            CaffeConversionError: The conversion has problems.
            DeepkitError: There is nothing to save, or parameter values are missing.
        """
        if self.problems:
            raise CaffeConversionError(self.problems, self)
        if self.symbol is None:
            raise DeepkitError("nothing to save: the conversion has no symbol")
        missing = [n for n in self.symbol.list_arguments()
                   if n not in self.arg_params and n not in dict(self.inputs)]
        missing += [n for n in self.symbol.list_auxiliary_states() if n not in self.aux_params]
        if missing:
            raise DeepkitError(f"cannot save: no values for {', '.join(missing)} (convert with a "
                               "caffemodel to get the weights)")
        metadata = self.metadata
        if self.mean is not None:
            metadata = dict(metadata)
            metadata["preprocessing"] = dict(metadata.get("preprocessing") or {},
                                             mean_array=self.mean)
        origins = {name: {"caffe_layer": rec.layer,
                          "caffe_blob": -1 if rec.blob is None else int(rec.blob)}
                   for name, rec in self.params.items()}
        return write_symbol_file(path, self.symbol, self.arg_params, self.aux_params, metadata,
                                 param_attrs=origins)


def fmt_shape(shape):
    """A shape as ``(1,3,224,224)``; ``'?'`` for ``None``."""
    if shape is None:
        return "?"
    return "(" + ",".join(str(d) for d in shape) + ")"


def load_converted(path):
    """Read a file written by :meth:`CaffeConversion.save`.

    Args:
        path: The file to read.

    Returns:
        ``(symbol, arg_params, aux_params, metadata)`` with numpy arrays; the
        mean image, if saved, is ``metadata['preprocessing']['mean_array']``.

    Raises:
        FileNotFoundError: There is no file at ``path``.
        DeepkitError: The file is not a converted model, or is damaged.
    """
    return read_symbol_file(path)
