"""Caffe nets to deepkit_engine symbols with weights: ``convert(prototxt, caffemodel)``.

The structure comes from the prototxt, the weights from the caffemodel,
matched by layer name (the first caffemodel layer of that name with blobs,
as Caffe and OpenCV do). The steps:

1. Caffe's phase rules (``include``/``exclude`` with phase, level and stage;
   TEST by default) pick the layers.
2. Every layer type and every parameter value is checked before anything is
   built; everything that cannot be converted exactly is listed at once, with
   what to do (:class:`CaffeConversionError`).
3. Blob names are treated as SSA: each write (in-place layers included) is a
   new version, and each layer reads the latest version at its position in
   the file.
4. Each layer becomes one engine op where one suffices (``layers.py``), with
   its output shape computed by Caffe's own formulas (``shapes.py``); the
   caffemodel's blob counts and shapes are checked against those (Caffe's
   right-aligned rule for legacy 4-D blobs), and every output shape against
   the engine's shape inference. Mismatches are errors naming the layer.
5. Split, Silence, Accuracy and loss layers are dropped (SoftmaxWithLoss
   becomes softmax); the net outputs are the blobs nothing consumes, in
   Caffe's order (sorted by name).

The result, :class:`CaffeConversion`, holds the symbol, ``arg_params`` and
``aux_params`` (numpy arrays in the engine's layouts, zero-copy views of the
memory-mapped caffemodel where no transform is needed), the inputs, the
preprocessing metadata and a per-layer table, and ``save(path)`` writes it as
one HDF5 file (atomically) that :func:`load_converted` reads back.
"""
import collections
import json
import os
import re

import numpy as np

from deepkit_engine import symbol as sym
from deepkit_engine.base import DeepkitError
from deepkit_engine.fileio import atomic_path

from . import layers as L
from . import shapes as S
from .layers import Unsupported
from .shapes import CaffeRuleError

__all__ = ["convert", "CaffeConversion", "CaffeConversionError", "Problem", "LayerRecord",
           "ParamRecord", "load_converted", "escape_name", "unescape_name", "FORMAT", "VERSION"]

FORMAT = "deepkit.symbol_model"
VERSION = 1


# -- errors -------------------------------------------------------------------------------

class Problem:
    """One thing that stops the conversion, with where and what to do.

    ``kind`` is one of ``'unsupported_type'``, ``'unsupported_param'``,
    ``'caffe_rule'`` (the prototxt breaks a rule Caffe checks), ``'graph'``
    (undefined bottoms, phase rules, duplicate tops), ``'input'`` (missing or
    bad input shapes), ``'missing_weights'``, ``'weight_count'``,
    ``'weight_shape'``, ``'shape_mismatch'`` (Caffe's shape rules and the
    engine disagree), ``'rgb'`` and ``'mean'``.
    """

    __slots__ = ("kind", "layer", "type", "message", "hint")

    UNSUPPORTED = ("unsupported_type", "unsupported_param")

    def __init__(self, kind, layer, type_, message, hint=None):
        self.kind, self.layer, self.type, self.message, self.hint = kind, layer, type_, message, hint

    def __str__(self):
        where = f"layer '{self.layer}' ({self.type}): " if self.layer is not None else ""
        text = where + self.message
        if self.hint:
            text += f" -> {self.hint}"
        return text

    def __repr__(self):
        return f"Problem({self.kind!r}, {str(self)!r})"

    def to_dict(self):
        return {"kind": self.kind, "layer": self.layer, "type": self.type,
                "message": self.message, "hint": self.hint}


class CaffeConversionError(DeepkitError, ValueError):
    """Everything that stops a conversion, listed at once.

    Attributes:
        problems: The :class:`Problem` list.
        conversion: The partial :class:`CaffeConversion` (its layer table
            shows how far each layer got); it cannot be saved.
    """

    def __init__(self, problems, conversion=None, source=None):
        self.problems = list(problems)
        self.conversion = conversion
        head = f"cannot convert {source}" if source else "cannot convert the Caffe net"
        n = len(self.problems)
        lines = [f"{head}: {n} problem{'s' if n != 1 else ''} (nothing was written)"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


# -- records --------------------------------------------------------------------------------

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
        return {"name": self.name, "role": self.role, "caffe_layer": self.layer, "caffe_blob": self.blob,
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


class _Version:
    """One SSA version of a Caffe blob."""

    __slots__ = ("name", "index", "symbol", "shape", "producer", "state", "note", "consumers")

    def __init__(self, name, index, producer):
        self.name, self.index, self.producer = name, index, producer
        self.symbol = self.shape = self.note = None
        self.state = "pending"
        self.consumers = []


# -- names ------------------------------------------------------------------------------------

def escape_name(name):
    """A parameter name as an HDF5 key: '%' -> '%25', '/' -> '%2F' (reversible, no collisions)."""
    text = name.replace("%", "%25").replace("/", "%2F")
    if text in (".", ""):
        text = text.replace(".", "%2E") or "%00"
    return text


def unescape_name(key):
    if key == "%00":
        return ""
    return key.replace("%2F", "/").replace("%2E", ".").replace("%25", "%")


# -- the result ---------------------------------------------------------------------------

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
        self._keepalive = []

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
            shape = self._shape_of_output(name)
            outs.append(f"{blob} {shape}" if shape is not None else blob)
        text += "; outputs " + (", ".join(outs) or "none")
        if self.problems:
            text += f"; {len(self.problems)} problem(s)"
        return text

    def _shape_of_output(self, name):
        for rec in self.layers:
            for out, shape in zip(rec.outputs, rec.top_shapes):
                if out == name:
                    return None if shape is None else tuple(shape)
        return None

    def layer_table(self):
        """The printable per-layer table (type, name, parameter shapes, output shape) + summary."""
        rows = [("Type", "Name", "Parameters", "Output shape", "Note")]
        for rec in self.layers:
            params = " ".join(_fmt_shape(s) for s in rec.param_shapes) or "-"
            outs = ", ".join(_fmt_shape(s) if s is not None else "?" for s in rec.top_shapes) \
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

        Layout: attributes ``format`` ('deepkit.symbol_model'), ``version``
        (1), ``symbol_json`` and ``metadata`` (JSON); groups ``arg_params``
        and ``aux_params`` with one float32 dataset per parameter, keyed by
        :func:`escape_name` of the engine name, with attributes ``name``,
        ``caffe_layer`` and ``caffe_blob``; ``preprocessing/mean`` when a mean
        was given.
        """
        import h5py  # noqa: PLC0415
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
        path = os.fspath(path)
        with atomic_path(path) as tmp:
            with h5py.File(tmp, "w") as f:
                f.attrs["format"] = FORMAT
                f.attrs["version"] = VERSION
                f.attrs["symbol_json"] = self.symbol.tojson()
                f.attrs["metadata"] = json.dumps(self.metadata)
                for group_name, params in (("arg_params", self.arg_params),
                                           ("aux_params", self.aux_params)):
                    group = f.create_group(group_name)
                    for name, array in params.items():
                        data = np.asarray(array)
                        if data.dtype != np.float32:
                            data = data.astype(np.float32)
                        ds = group.create_dataset(escape_name(name), data=data)
                        ds.attrs["name"] = name
                        rec = self.params.get(name)
                        if rec is not None:
                            ds.attrs["caffe_layer"] = rec.layer
                            ds.attrs["caffe_blob"] = -1 if rec.blob is None else int(rec.blob)
                if self.mean is not None:
                    f.create_dataset("preprocessing/mean", data=np.asarray(self.mean, np.float32))
        return path


def _fmt_shape(shape):
    if shape is None:
        return "?"
    return "(" + ",".join(str(d) for d in shape) + ")"


def load_converted(path):
    """Read a file written by :meth:`CaffeConversion.save`.

    Returns:
        ``(symbol, arg_params, aux_params, metadata)`` with numpy arrays.
    """
    import h5py  # noqa: PLC0415
    path = os.fspath(path)
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None
    except OSError as e:
        raise DeepkitError(f"{path} is not an HDF5 file written by deepkit ({e})") from None
    with f:
        fmt = f.attrs.get("format")
        if isinstance(fmt, bytes):
            fmt = fmt.decode()
        if fmt != FORMAT:
            raise DeepkitError(f"{path} is not a converted model: its format attribute is "
                               f"{fmt!r}, expected {FORMAT!r}")
        version = int(f.attrs.get("version", 0))
        if version > VERSION:
            raise DeepkitError(f"{path} has format version {version}; this deepkit reads up to "
                               f"{VERSION}: upgrade deepkit")
        symbol = sym.load_json(_text(f.attrs["symbol_json"]))
        metadata = json.loads(_text(f.attrs["metadata"]))
        params = []
        for group_name in ("arg_params", "aux_params"):
            out = {}
            for key, ds in f[group_name].items():
                name = ds.attrs.get("name")
                name = unescape_name(key) if name is None else _text(name)
                out[name] = ds[()]
            params.append(out)
        if "preprocessing" in f and "mean" in f["preprocessing"]:
            metadata.setdefault("preprocessing", {})["mean_array"] = f["preprocessing/mean"][()]
    return symbol, params[0], params[1], metadata


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


# -- inputs ---------------------------------------------------------------------------------

def _parse_shape(value, what="input_shape"):
    if isinstance(value, str):
        parts = re.split(r"\s*[,x]\s*|\s+", value.strip().strip("()[]"))
        if not all(p.isdigit() for p in parts):
            raise DeepkitError(f"{what} {value!r} is not a list of integers such as "
                               "'1,3,224,224'")
        return tuple(int(p) for p in parts)
    try:
        shape = tuple(int(d) for d in value)
    except TypeError:
        raise DeepkitError(f"{what} must be a shape such as (1, 3, 224, 224), got "
                           f"{value!r}") from None
    return shape


def _parse_input_shapes(input_shape):
    """``None``, one shape (for the only image input) or ``{name: shape}``."""
    if input_shape is None:
        return None, {}
    if isinstance(input_shape, dict):
        return None, {str(k): _parse_shape(v) for k, v in input_shape.items()}
    return _parse_shape(input_shape), {}


# -- phase rules ----------------------------------------------------------------------------

def _state_meets_rule(phase, level, stages, rule):
    """Caffe's ``Net::StateMeetsRule``."""
    if rule.has("phase") and rule.phase != phase:
        return False
    if rule.has("min_level") and level < int(rule.min_level):
        return False
    if rule.has("max_level") and level > int(rule.max_level):
        return False
    for st in rule.stage:
        if st not in stages:
            return False
    for st in rule.not_stage:
        if st in stages:
            return False
    return True


def _layer_included(layer, phase, level, stages):
    include, exclude = list(layer.include), list(layer.exclude)
    if include and exclude:
        raise CaffeRuleError("specify either include rules or exclude rules; not both")
    included = not include
    for rule in exclude:
        if _state_meets_rule(phase, level, stages, rule):
            included = False
    for rule in include:
        if _state_meets_rule(phase, level, stages, rule):
            included = True
    return included


# -- the driver --------------------------------------------------------------------------------

class _LayerBuild:
    """What a converter in ``layers.py`` sees of the layer it converts."""

    def __init__(self, conv, rec, layer, bottoms, bottom_shapes):
        self._conv, self._rec, self.layer = conv, rec, layer
        self.name, self.type, self.node = rec.name, rec.type, rec.node
        self.bottoms, self.bottom_shapes = bottoms, [tuple(s) for s in bottom_shapes]
        self.ntops = len(rec.tops)
        self.attr = {"caffe_name": rec.name, "caffe_type": rec.type}
        self.has_weights = conv.model is not None
        self.fused_scale = None
        self.fused_scale_name = None
        self.phase = conv.phase

    def warn(self, message):
        self._conv.warnings.append(message)

    def sub(self, suffix):
        """A unique node name for a helper op of this layer."""
        return self._conv.unique(f"{self.node}_{suffix}")

    def weights(self, shapes, alternatives=()):
        return self._conv.layer_weights(self._rec, self.layer, shapes, alternatives)

    def param(self, suffix, shape, blob, array, aux=False, caffe_shape=None, transform=None,
              source=None):
        return self._conv.param(self._rec, self.layer, suffix, shape, blob, array, aux,
                                caffe_shape, transform, source)


class _Converter:
    def __init__(self, net, model, phase, level, stages, input_shape, fuse_bn_scale,
                 allow_missing_weights, source):
        self.net, self.model = net, model
        self.phase, self.level, self.stages = phase, level, stages
        self.default_shape, self.named_shapes = _parse_input_shapes(input_shape)
        self.fuse = fuse_bn_scale
        self.allow_missing = allow_missing_weights
        self.source = source
        self.problems, self.warnings = [], []
        self.used = set()
        self.result = CaffeConversion()
        self.records = []
        self.versions = {}      # blob name -> current _Version
        self.shared = {}        # ParamSpec name -> engine parameter name
        self.shared_vars = {}   # engine parameter name -> its Variable
        self.inputs = []        # (name, shape)
        self.input_layers = []  # (record, layer) of input/data layers
        self.weight_index = collections.OrderedDict()
        self.unused_weights = []
        self.fused_scale_blobs = {}
        self.structure_from_model = False
        self.label_drops = []
        if model is not None:
            for ml in model.layer:
                if len(ml.blobs):
                    self.weight_index.setdefault(ml.name, collections.deque()).append(ml)
            for name, queue in self.weight_index.items():
                if len(queue) > 1:
                    self.warnings.append(f"the caffemodel has {len(queue)} layers named '{name}' "
                                         "with weights; they go to the prototxt's layers of that "
                                         "name in order")

    # -- bookkeeping ----------------------------------------------------------------------------
    def problem(self, kind, rec_or_layer, message, hint=None):
        if rec_or_layer is None:
            self.problems.append(Problem(kind, None, None, message, hint))
        else:
            self.problems.append(Problem(kind, rec_or_layer.name, rec_or_layer.type, message,
                                         hint))

    def unique(self, name):
        base, k = name, 0
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name

    # -- weights ----------------------------------------------------------------------------------
    def layer_weights(self, rec, layer, shapes, alternatives=()):
        shapes = [tuple(s) for s in shapes]
        rec.caffe_blobs = list(shapes)
        if self.model is None:
            return [None] * len(shapes)
        queue = self.weight_index.get(layer.name)
        src = queue.popleft() if queue else None
        if src is None:
            if not shapes:
                return []
            if not self.allow_missing:
                self.problem("missing_weights", rec,
                             f"the caffemodel has no weights for this layer (it needs "
                             f"{len(shapes)} blob(s): {' '.join(_fmt_shape(s) for s in shapes)})",
                             "check that the caffemodel was trained with this prototxt (weights "
                             "are matched by layer name)")
            else:
                self.warnings.append(f"layer '{layer.name}' has no weights in the caffemodel; "
                                     "its parameters are left out")
            return [None] * len(shapes)
        if src.type and layer.type and src.type != layer.type and \
                not {src.type, layer.type} <= {"Convolution", "ConvolutionDepthwise",
                                               "DepthwiseConvolution"}:
            self.warnings.append(f"layer '{layer.name}' is {layer.type} in the prototxt but "
                                 f"{src.type} in the caffemodel")
        blobs = list(src.blobs)
        options = [shapes] + [[tuple(s) for s in alt] for alt in alternatives]
        chosen = next((opt for opt in options if len(opt) == len(blobs)), None)
        if chosen is None:
            want = " or ".join(str(len(o)) for o in options)
            self.problem("weight_count", rec,
                         f"the caffemodel has {len(blobs)} blob(s) for this layer, the prototxt "
                         f"needs {want} ({' '.join(_fmt_shape(s) for s in shapes)})",
                         "check that the caffemodel was trained with this prototxt (bias_term, "
                         "layer types)")
            return [None] * len(shapes)
        rec.caffe_blobs = list(chosen)
        arrays, bad = [], []
        for i, (blob, expected) in enumerate(zip(blobs, chosen)):
            declared, legacy = _declared_shape(blob)
            rec.blob_shapes.append(declared)
            try:
                array = _blob_data(blob)
            except DeepkitError as e:
                bad.append(f"blob {i}: {e}")
                arrays.append(None)
                continue
            size = int(np.prod(expected)) if expected else 1
            if not _shape_matches(declared, legacy, expected) or array.size != size:
                shown = _fmt_shape(declared) if declared is not None else f"{array.size} values"
                if declared is not None and array.size != int(np.prod(declared or (1,))):
                    shown += f" holding {array.size} values"
                bad.append(f"blob {i}: caffemodel {shown}, prototxt needs {_fmt_shape(expected)}")
                arrays.append(None)
                continue
            if declared is None:
                self.warnings.append(f"layer '{layer.name}' blob {i} has no shape in the "
                                     f"caffemodel; taken as {_fmt_shape(expected)}")
            arrays.append(array.reshape(expected))
        if bad:
            self.problem("weight_shape", rec, "weight shapes do not match: " + "; ".join(bad),
                         "check that the caffemodel was trained with this prototxt "
                         "(num_output, kernel size, group, input shape)")
            return [None] * len(chosen)
        return arrays

    def param(self, rec, layer, suffix, shape, blob, array, aux=False, caffe_shape=None,
              transform=None, source=None):
        shape = tuple(int(d) for d in shape)
        spec_name = None
        if blob is not None and blob < len(layer.param) and layer.param[blob].has("name") and \
                layer.param[blob].name:
            spec_name = layer.param[blob].name
        if spec_name is not None and spec_name in self.shared:
            name = self.shared[spec_name]
            prev = self.result.params[name]
            if prev.shape != shape:
                self.problem("caffe_rule", rec,
                             f"shared parameter '{spec_name}' has shape {_fmt_shape(shape)} here "
                             f"but {_fmt_shape(prev.shape)} in layer '{prev.layer}'")
            return self.shared_vars[name]
        name = self.unique(f"{rec.node}_{suffix}")
        prec = ParamRecord(name, suffix, rec.name, blob,
                           caffe_shape if caffe_shape is not None else shape, shape, aux,
                           transform, source)
        rec.params.append(prec)
        self.result.params[name] = prec
        if array is not None:
            array = np.asarray(array)
            if array.dtype != np.float32:
                array = array.astype(np.float32)
            if array.shape != shape:
                array = array.reshape(shape)
            (self.result.aux_params if aux else self.result.arg_params)[name] = array
        var = sym.Variable(name, shape=shape)
        if spec_name is not None:
            self.shared[spec_name] = name
            self.shared_vars[name] = var
        return var

    # -- graph ----------------------------------------------------------------------------------
    def select_layers(self):
        net = self.net
        if len(getattr(net, "layers", [])) and not len(net.layer):
            raise DeepkitError("the prototxt is still in the V1 'layers' form after upgrading; "
                               "this is a reader bug")
        stages = set(self.stages) | set(net.state.stage if net.has("state") else [])
        if self.structure_from_model:
            # a caffemodel stores the net Caffe built for training, already filtered
            return list(net.layer)
        chosen = []
        for layer in net.layer:
            try:
                if _layer_included(layer, self.phase, self.level, stages):
                    chosen.append(layer)
            except CaffeRuleError as e:
                self.problem("graph", layer, str(e))
        if not chosen:
            self.problem("graph", None, f"no layer is left in phase {self.phase} (level "
                                        f"{self.level}, stages {sorted(stages)})")
        return chosen

    def check_layers(self, layers):
        """Pass 1: every unknown type and unsupported parameter value, before building."""
        for layer in layers:
            spec = L.REGISTRY.get(layer.type)
            if spec is None:
                self.problem("unsupported_type", layer, *_unknown_type(layer))
                continue
            if spec.check is not None:
                try:
                    spec.check(layer)
                except Unsupported as e:
                    self.problem("unsupported_param", layer, e.message, e.hint)
                except CaffeRuleError as e:
                    self.problem("caffe_rule", layer, str(e))

    def plan_fusions(self, layers):
        """BatchNorm -> Scale pairs to fold (graph topology, not names): {bn index: scale index}."""
        producer, consumers = {}, collections.defaultdict(list)
        current = {}
        for i, layer in enumerate(layers):
            for b in layer.bottom:
                if b in current:
                    consumers[current[b]].append(i)
            for t in layer.top:
                current[t] = (t, i)
                producer[(t, i)] = i
        fusions = {}
        for i, layer in enumerate(layers):
            if layer.type != "Scale" or len(layer.bottom) != 1:
                continue
            p = layer.scale_param
            if int(p.axis) != 1 or int(p.num_axes) != 1:
                continue
            # the version this Scale reads
            src = None
            for j in range(i - 1, -1, -1):
                if layer.bottom[0] in layers[j].top:
                    src = (layer.bottom[0], j)
                    break
            if src is None:
                continue
            j = src[1]
            if layers[j].type != "BatchNorm" or len(layers[j].top) != 1:
                continue
            if consumers.get(src) != [i] or j in fusions:
                continue
            fusions[j] = i
        return fusions

    def bottoms_of(self, rec, layer):
        """The current versions of the layer's bottoms, or None after reporting a problem."""
        versions = []
        for b in layer.bottom:
            v = self.versions.get(b)
            if v is None:
                self.problem("graph", rec, f"bottom blob '{b}' is not produced by any earlier "
                                           "layer (in this phase)",
                             "check the layer order and the include/exclude rules")
                return None
            versions.append(v)
        for v in versions:
            v.consumers.append(rec)
        rec.bottom_versions = versions
        return versions

    def new_tops(self, rec, layer):
        tops = []
        for i, t in enumerate(layer.top):
            if t in self.versions and not (i < len(layer.bottom) and layer.bottom[i] == t):
                self.problem("graph", rec, f"top blob '{t}' is produced by multiple sources "
                                           "(only in-place layers may rewrite a blob: top i == "
                                           "bottom i)")
            v = _Version(t, len(tops), rec)
            self.versions[t] = v
            tops.append(v)
        rec.top_versions = tops
        return tops

    def build_layer(self, index, layer, fusions):
        rec = LayerRecord(index, layer.name, layer.type, None, layer.bottom, layer.top)
        self.records.append(rec)
        spec = L.REGISTRY.get(layer.type)
        kind = spec.kind if spec is not None else None
        if kind in ("input", "data"):
            rec.node = layer.name
            bottoms = self.bottoms_of(rec, layer) if len(layer.bottom) else []
            tops = self.new_tops(rec, layer)
            if bottoms is None:
                return self._fail(rec, tops, "skipped")
            return self.build_input(rec, layer, tops, kind)
        bottoms = self.bottoms_of(rec, layer)
        tops = self.new_tops(rec, layer)
        if bottoms is None:
            return self._fail(rec, tops, "failed")
        if spec is None:
            return self._fail(rec, tops, "failed")
        if kind == "drop":
            rec.status, rec.note = "dropped", _drop_reason(layer.type)
            for t in tops:
                t.state, t.note = "dropped", f"dropped with {layer.type} layer '{layer.name}'"
            return
        needed = bottoms[:1] if layer.type == "SoftmaxWithLoss" else bottoms  # label unused
        bad = [v for v in needed if v.state != "ok"]
        if bad:
            v = bad[0]
            if v.state in ("dropped", "label"):
                # training-only data (labels, losses): this layer is training-only too
                rec.status = "dropped"
                rec.note = f"reads '{v.name}', which is {v.note}"
                for t in tops:
                    t.state, t.note = "dropped", f"computed from '{v.name}' ({v.note})"
                self.label_drops.append(rec)
                return None
            return self._fail(rec, tops, "skipped")
        if kind == "alias":
            if len(bottoms) != 1:
                self.problem("caffe_rule", rec, "Split takes exactly one bottom")
                return self._fail(rec, tops, "failed")
            rec.status, rec.note = "alias", f"same as '{bottoms[0].name}'"
            for i, t in enumerate(tops):
                t.symbol, t.shape, t.state = bottoms[0].symbol, bottoms[0].shape, "ok"
                rec.top_shapes[i] = t.shape
                rec.outputs[i] = _output_name(t.symbol)
            return
        # an op
        if index in fusions.values():
            bn_index = next(k for k, v in fusions.items() if v == index)
            bn_rec = self.records[bn_index]
            if bn_rec.status == "converted":
                rec.node = bn_rec.node
                rec.status, rec.note = "fused", f"into BatchNorm '{bn_rec.name}'"
                rec.caffe_blobs = self.fused_scale_blobs.get(index, [])
                src = bottoms[0]
                for i, t in enumerate(tops):
                    t.symbol, t.shape, t.state = src.symbol, src.shape, "ok"
                    rec.top_shapes[i] = t.shape
                    rec.outputs[i] = _output_name(t.symbol)
                bn_rec.outputs = [None]
                return
        rec.node = self.unique(layer.name)
        cx = _LayerBuild(self, rec, layer, [v.symbol for v in needed],
                         [v.shape for v in needed])
        if index in fusions:
            self.prepare_fusion(cx, rec, layer, fusions[index])
        try:
            outs = spec.build(cx)
        except Unsupported as e:
            self.problem("unsupported_param", rec, e.message, e.hint)
            return self._fail(rec, tops, "failed")
        except CaffeRuleError as e:
            self.problem("caffe_rule", rec, str(e))
            return self._fail(rec, tops, "failed")
        except DeepkitError as e:
            self.problem("shape_mismatch", rec, f"the engine refused the layer: {e}")
            return self._fail(rec, tops, "failed")
        if len(outs) != len(tops):
            self.problem("caffe_rule", rec, f"{layer.type} produces {len(outs)} top(s) but the "
                                            f"prototxt names {len(tops)}")
            return self._fail(rec, tops, "failed")
        rec.status = "converted"
        for i, (t, (s, shape)) in enumerate(zip(tops, outs)):
            t.symbol, t.shape, t.state = s, tuple(shape), "ok"
            rec.top_shapes[i] = t.shape
            rec.outputs[i] = _output_name(s)

    def prepare_fusion(self, cx, rec, layer, scale_index):
        """Give the BatchNorm converter the weights of the Scale layer folded into it."""
        scale_layer = self._layers[scale_index]
        shape = cx.bottom_shapes[0]
        c = (shape[1] if len(shape) > 1 else 1,)
        expected = [c, c] if scale_layer.scale_param.bias_term else [c]
        scale_rec = LayerRecord(scale_index, scale_layer.name, scale_layer.type, None, [], [])
        arrays = self.layer_weights(scale_rec, scale_layer, expected)
        self.fused_scale_blobs[scale_index] = scale_rec.caffe_blobs
        gamma = arrays[0]
        beta = arrays[1] if len(arrays) > 1 else (None if gamma is None and self.model is not None
                                                  else np.zeros(c, np.float32))
        if self.model is None:
            gamma = beta = None
        cx.fused_scale = (gamma, beta)
        cx.fused_scale_name = scale_layer.name
        rec.note = f"Scale '{scale_layer.name}' folded in"

    def _fail(self, rec, tops, status):
        rec.status = status
        for t in tops:
            t.state = "failed"
        return None

    def build_input(self, rec, layer, tops, kind):
        rec.status = "input"
        shapes = [None] * len(tops)
        image_tops = list(range(len(tops)))
        try:
            if layer.type == "Input":
                given = [s.dim for s in layer.input_param.shape]
                if given:
                    shapes = S.input_layer_shapes(given, len(tops))
                elif not self.named_shapes and self.default_shape is None:
                    raise CaffeRuleError("input_param gives no shape")
            elif layer.type == "MemoryData":
                p = layer.memory_data_param
                shapes[0] = (int(p.batch_size), int(p.channels), int(p.height), int(p.width))
                if len(tops) > 1:
                    shapes[1] = (int(p.batch_size), 1, 1, 1)
                image_tops = [0]
            elif layer.type == "DummyData":
                shapes = S.dummy_data_shapes(layer.dummy_data_param, len(tops))
            else:  # Data, ImageData, ...: shape only from input_shape
                named = [i for i, t in enumerate(tops) if t.name in self.named_shapes]
                image_tops = named if layer.type == "HDF5Data" and named else [0]
        except CaffeRuleError as e:
            self.problem("caffe_rule", rec, str(e))
            return self._fail(rec, tops, "failed")
        for i, t in enumerate(tops):
            given = self.named_shapes.get(t.name)
            if given is None and self.default_shape is not None and i in image_tops:
                given = self.default_shape
            if given is not None:
                shapes[i] = given
            if i not in image_tops and given is None:
                t.state, t.note = "label", f"the label output of data layer '{layer.name}' " \
                                           "(only available in training)"
                rec.outputs[i] = None
                continue
            if shapes[i] is None:
                crop = layer.transform_param.crop_size if layer.has("transform_param") else 0
                hint = "pass input_shape=(N, C, H, W) (CLI: --input-shape N,C,H,W)"
                if crop:
                    hint += f"; its transform_param.crop_size {crop} gives H = W = {crop}"
                self.problem("input", rec, f"the shape of input '{t.name}' is not in the net "
                                           f"definition (layer type {layer.type} reads it from "
                                           "files)", hint)
                t.state = "failed"
                continue
            shape = tuple(int(d) for d in shapes[i])
            if any(d <= 0 for d in shape):
                self.problem("input", rec, f"input '{t.name}' has shape {shape}: every "
                                           "dimension must be positive")
                t.state = "failed"
                continue
            name = t.name
            if name in self.used:
                self.problem("graph", rec, f"input '{name}' collides with an earlier name")
            self.used.add(name)
            t.symbol = sym.Variable(name, shape=shape)
            t.shape, t.state = shape, "ok"
            rec.top_shapes[i] = shape
            rec.outputs[i] = name
            self.inputs.append((name, shape))
        self.input_layers.append((rec, layer))
        if any(t.state == "failed" for t in tops):
            rec.status = "failed"

    # -- the end --------------------------------------------------------------------------------
    def finish(self):
        res = self.result
        missing = [p for p in self.problems if p.kind == "missing_weights"]
        wanted = sum(1 for rec in self.records if rec.caffe_blobs)
        if len(missing) >= 2 and len(missing) == wanted and self.model is not None:
            held = list(self.weight_index)
            self.problems.insert(0, Problem(
                "missing_weights", None, None,
                f"the caffemodel has weights for none of the net's {wanted} layers with "
                f"parameters; it holds weights for: {', '.join(held[:12]) or 'no layer'}"
                f"{', ...' if len(held) > 12 else ''}",
                "is it the caffemodel of another net?"))
        res.layers = self.records
        outputs = []
        seen = set()
        for name in sorted(self.versions):
            v = self.versions[name]
            # every unconsumed version (only the latest of a name can be unconsumed)
            if v.state == "ok" and not v.consumers and id(v.symbol) not in seen:
                seen.add(id(v.symbol))
                outputs.append(v)
        for rec in self.records:  # an overwritten version never consumed (not in-place)
            for v in rec.top_versions:
                if v.state == "ok" and not v.consumers and id(v.symbol) not in seen and \
                        self.versions.get(v.name) is not v:
                    seen.add(id(v.symbol))
                    outputs.append(v)
        res.inputs = list(self.inputs)
        if not self.problems:
            if not outputs:
                hint = None
                if self.label_drops:
                    hint = "dropped because they read training-only blobs: " + ", ".join(
                        f"'{r.name}' ({r.note})" for r in self.label_drops)
                self.problem("graph", None, "the net has no output (every blob is consumed or "
                                            "dropped)", hint)
            else:
                res.symbol = sym.Group([v.symbol for v in outputs]) if len(outputs) > 1 \
                    else outputs[0].symbol
                res.outputs = [(v.name, _output_name(v.symbol)) for v in outputs]
                self.cross_check(res)
        res.problems = list(self.problems)
        res.warnings = list(self.warnings)
        if self.unused_weights:
            res.warnings.append("caffemodel layers with weights that are not in the converted "
                                "net (ignored, as Caffe does): " + ", ".join(self.unused_weights))

    def cross_check(self, res):
        """The engine's shape inference must agree with Caffe's rules on every layer."""
        internals = res.symbol.get_internals()
        args_in_graph = set(internals.list_arguments())
        known = {n: s for n, s in self.inputs if n in args_in_graph}
        try:
            arg_shapes, out_shapes, aux_shapes = internals.infer_shape_partial(**known)
        except DeepkitError as e:
            self.problem("shape_mismatch", None, f"the engine's shape inference failed: {e}")
            return
        engine = dict(zip(internals.list_outputs(), out_shapes))
        for rec in self.records:
            if rec.status != "converted":
                continue
            for out, shape, top in zip(rec.outputs, rec.top_shapes, rec.tops):
                if out is None:
                    continue
                if out not in engine:
                    rec.note = "not in the converted graph: only dropped layers read it"
                    continue
                got = engine.get(out)
                if got is None or _norm(got) != _norm(shape):
                    self.problem("shape_mismatch", rec,
                                 f"top '{top}': Caffe's rules give {_fmt_shape(shape)} but the "
                                 f"engine infers {_fmt_shape(got)}",
                                 "this is a converter bug; please report it with the prototxt")
        args = dict(zip(internals.list_arguments(), arg_shapes))
        args.update(zip(internals.list_auxiliary_states(), aux_shapes))
        for name, rec in res.params.items():
            got = args.get(name)
            if got is not None and tuple(got) != rec.shape:
                self.problems.append(Problem("shape_mismatch", rec.layer, None,
                                             f"parameter '{name}' has shape "
                                             f"{_fmt_shape(rec.shape)} but the engine expects "
                                             f"{_fmt_shape(got)}"))


def _norm(shape):
    shape = tuple(shape) if shape is not None else None
    return (1,) if shape == () else shape


def _output_name(symbol):
    return symbol.list_outputs()[0]


def _declared_shape(blob):
    """``(shape, legacy)`` a BlobProto declares: legacy 4-D (checked first, as Caffe does), or
    BlobShape dims, or ``(None, False)``."""
    if any(blob.has(f) for f in ("num", "channels", "height", "width")):
        return (int(blob.num), int(blob.channels), int(blob.height), int(blob.width)), True
    if blob.has("shape"):
        return tuple(int(d) for d in blob.shape.dim), False
    return None, False


def _blob_data(blob):
    from . import reader  # noqa: PLC0415
    return np.asarray(reader.blob_array(blob)).reshape(-1)


def _shape_matches(declared, legacy, expected):
    """Caffe's ``Blob::ShapeEquals``: legacy 4-D shapes compare right-aligned."""
    if declared is None:
        return True
    expected = tuple(expected)
    if legacy:
        if len(expected) > 4:
            return False
        return (1,) * (4 - len(expected)) + expected == tuple(declared)
    if declared == expected:
        return True
    return {declared, expected} == {(), (1,)}


def _unknown_type(layer):
    t = layer.type
    if t == "Python":
        p = layer.python_param
        module, cls = p.module or "?", p.layer or "?"
        return (f"Python layer (module '{module}', class '{cls}') cannot be converted",
                L.UNSUPPORTED_HINTS["Python"])
    if t in L.UNSUPPORTED_HINTS:
        return f"layer type '{t}' is not supported", L.UNSUPPORTED_HINTS[t]
    if not t:
        return "the layer has no type", "give it a type"
    from deepkit_engine.base import did_you_mean  # noqa: PLC0415
    return (f"unknown layer type '{t}'{did_you_mean(t, L.supported_types())}",
            "it may come from a Caffe fork; supported types: " + ", ".join(L.supported_types()))


def _drop_reason(t):
    if t == "Silence":
        return "Silence has no output"
    if t == "Accuracy":
        return "Accuracy needs labels (training only)"
    return "loss layer (training only)"


# -- preprocessing metadata --------------------------------------------------------------------

def _load_mean(mean):
    """``(array, source)``: the mean image or per-channel values as float32."""
    if mean is None:
        return None, None
    if isinstance(mean, (str, os.PathLike)):
        path = os.fspath(mean)
        if path.endswith(".npy"):
            return np.load(path, allow_pickle=False).astype(np.float32), os.path.basename(path)
        from . import reader  # noqa: PLC0415
        blob = reader.read_binaryproto(path)
        return np.asarray(reader.blob_array(blob), np.float32), os.path.basename(path)
    array = np.asarray(mean, dtype=np.float32)
    return array, "mean_value" if array.ndim <= 1 else "array"


def _preprocessing(conv, res, mean, scale, rgb_swapped):
    image = next(((n, s) for n, s in res.inputs if len(s) == 4), None)
    channels = image[1][1] if image else None
    order = None
    if channels == 3:
        order = "RGB" if rgb_swapped else "BGR"
    elif channels == 1:
        order = "GRAY"
    pre = {"input": image[0] if image else None, "channel_order": order,
           "pixel_range": [0, 255], "scale": None, "crop_size": None, "mirror": False,
           "mean_value": None, "mean_file": None, "mean_shape": None, "mean_per_channel": None,
           "rgb_swapped": bool(rgb_swapped),
           "formula": "x = (pixels[channel_order] - mean) * scale, as Caffe's DataTransformer"}
    for rec, layer in conv.input_layers:
        if layer.has("transform_param"):
            tp = layer.transform_param
            if tp.has("scale"):
                pre["scale"] = float(np.float32(tp.scale))
            if tp.crop_size:
                pre["crop_size"] = int(tp.crop_size)
            if tp.mirror:
                pre["mirror"] = True
            if tp.mean_value:
                pre["mean_value"] = [float(np.float32(v)) for v in tp.mean_value]
            if tp.has("mean_file"):
                pre["mean_file"] = tp.mean_file
    if scale is not None:
        pre["scale"] = float(scale)
    array, source = mean
    if array is not None:
        if array.ndim <= 1:
            pre["mean_value"] = [float(v) for v in array.reshape(-1)]
            pre["mean_file"] = None
        else:
            while array.ndim > 3 and array.shape[0] == 1:
                array = array[0]
            pre["mean_file"] = source
            pre["mean_shape"] = list(array.shape)
            pre["mean_per_channel"] = [float(v) for v in array.reshape(array.shape[0], -1)
                                       .mean(axis=1)]
            res.mean = array
        n_mean = array.shape[0] if array.ndim > 1 else array.size
        if channels is not None and n_mean not in (1, channels):
            conv.problem("mean", None, f"the mean has {n_mean} channels but input "
                                       f"'{image[0]}' has {channels}")
        if array.ndim == 3 and image is not None and tuple(array.shape[1:]) != image[1][2:]:
            pre["mean_crop"] = ("the mean image is " + "x".join(map(str, array.shape[1:])) +
                                "; crop its centre to the input size, as Caffe does at TEST")
    if pre["mean_value"] is not None and len(pre["mean_value"]) not in (1, channels or 1):
        conv.problem("mean", None, f"{len(pre['mean_value'])} mean values for "
                                   f"{channels} channels")
    return pre


# -- --rgb -------------------------------------------------------------------------------------

_RGB_PASS = {"ReLU", "Sigmoid", "TanH", "AbsVal", "ELU", "BNLL", "Power", "Exp", "Log",
             "Threshold", "Clip", "Swish", "Dropout", "ReLU6", "Pooling"}


def _apply_rgb(conv, res):
    """Fold a BGR -> RGB swap into the layers that read the image input; refuse if inexact."""
    targets = [v for rec, _ in conv.input_layers for v in rec.top_versions
               if v.state == "ok" and len(v.shape) == 4 and v.shape[1] == 3]
    if not targets:
        conv.problem("rgb", None, "rgb=True needs an input with 3 channels; there is none")
        return []
    perm = np.array([2, 1, 0])
    changed, swaps = [], {}
    queue = list(targets)
    seen = set()
    while queue:
        v = queue.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        if not v.consumers and conv.versions.get(v.name) is v:
            conv.problem("rgb", None, f"blob '{v.name}' reaches the output with its channels "
                                      "still in input order; the swap cannot be folded in")
            return []
        for rec in v.consumers:
            why = _rgb_step(conv, res, rec, v, perm, swaps)
            if why is not None:
                conv.problem("rgb", rec, f"cannot fold the BGR->RGB swap exactly: {why}",
                             "convert without rgb and swap the channels of the input instead")
                return []
            if rec.type != "Convolution" and rec.type != "InnerProduct":
                queue.extend(rec.top_versions)
            elif rec.params:
                rec.note = "input channels reordered: takes RGB"
            changed.append(rec.name)
    for name, array in swaps.items():
        target = res.aux_params if name in res.aux_params else res.arg_params
        target[name] = array
    return changed


def _rgb_step(conv, res, rec, v, perm, swaps):
    def swap(name, axis):
        arr = swaps.get(name)
        if arr is None:
            arr = res.arg_params.get(name, res.aux_params.get(name))
        if arr is None:
            return
        swaps[name] = np.ascontiguousarray(np.take(arr, perm, axis=axis))

    shared = [p.name for p in rec.params if sum(p.name in (q.name for q in r.params)
                                                 for r in conv.records) > 1]
    if shared:
        return f"its parameters are shared with other layers ({', '.join(shared)})"
    params = {p.role: p for p in rec.params}
    if rec.status != "converted":
        return f"it is {rec.status}"
    t = rec.type
    if t == "Convolution":
        w = params.get("weight")
        if w is None or w.shape[1] != 3:
            return "a grouped convolution mixes the swapped channels with its groups"
        swap(w.name, 1)
        return None
    if t == "InnerProduct":
        w = params.get("weight")
        if w is None or v.shape is None or len(v.shape) not in (2, 4) or w.shape[1] != \
                int(np.prod(v.shape[1:])):
            return "it does not read the channels as its first flattened axis"
        arr = swaps.get(w.name, res.arg_params.get(w.name))
        if arr is not None:
            n = arr.shape[0]
            swaps[w.name] = np.ascontiguousarray(
                arr.reshape(n, 3, -1)[:, perm, :].reshape(arr.shape))
        return None
    if t in _RGB_PASS:
        return None
    if t == "LRN":
        return None if rec.type == "LRN" and _lrn_is_within(conv, rec) else \
            "across-channel LRN mixes the channels"
    if t == "BatchNorm":
        for p in rec.params:
            swap(p.name, 0)
        return None
    if t in ("Scale", "Bias"):
        if len(rec.bottoms) != 1:
            return "its scale comes from a second input"
        for p in rec.params:  # engine layout: the data's rank, per-channel means (1, 3, 1, ...)
            if all(d == 1 for d in p.shape):
                continue
            if len(p.shape) < 2 or p.shape[1] != 3 or any(d != 1 for i, d in
                                                          enumerate(p.shape) if i != 1):
                return f"its parameter {p.name} {p.shape} is not one value per channel"
            swap(p.name, 1)
        return None
    if t == "PReLU":
        for p in rec.params:
            swap(p.name, 0)
        return None
    return f"layer type {t} reads the input channels directly"


def _lrn_is_within(conv, rec):
    for layer in conv._layers:
        if layer.name == rec.name and layer.type == "LRN":
            return layer.lrn_param.norm_region == "WITHIN_CHANNEL"
    return False


# -- entry point ------------------------------------------------------------------------------

def _read_net(prototxt):
    from . import reader  # noqa: PLC0415
    if prototxt is None:
        return None
    if hasattr(prototxt, "layer"):  # an already-parsed NetParameter
        net = prototxt
    else:
        net = reader.read_prototxt(prototxt)
    if len(getattr(net, "layers", [])) and hasattr(reader, "upgrade_net"):
        net = reader.upgrade_net(net)
    return net


def _read_model(caffemodel):
    from . import reader  # noqa: PLC0415
    if caffemodel is None:
        return None
    if hasattr(caffemodel, "layer"):
        model = caffemodel
    else:
        model = reader.read_caffemodel(caffemodel)
    if len(getattr(model, "layers", [])) and not len(model.layer):
        model = reader.upgrade_net(model)
    return model


def convert(prototxt, caffemodel=None, mean=None, rgb=False, input_shape=None, phase="TEST",
            fuse_bn_scale=False, *, level=0, stages=(), scale=None, strict=True,
            allow_missing_weights=False):
    """Convert a Caffe net (deploy prototxt + caffemodel) to a deepkit_engine symbol + weights.

    Args:
        prototxt: Path or text of the net definition (or a parsed NetParameter).
            ``None`` takes the structure stored in the caffemodel.
        caffemodel: Path of the trained weights (or a parsed NetParameter);
            ``None`` converts the structure only (no weights).
        mean: The training mean: a ``.binaryproto`` or ``.npy`` path, an
            array (C, H, W), or per-channel values (BGR order, like Caffe's
            ``mean_value``). Recorded as preprocessing metadata.
        rgb: Fold a BGR->RGB input channel swap into the first layers'
            weights (and the mean), so the model takes RGB input. Refused
            (with the reason) where that is not exact.
        input_shape: The shape of the image input (``(N, C, H, W)`` or
            ``"N,C,H,W"``), required for Data/ImageData layers and overriding
            declared input shapes; or ``{input_name: shape}``.
        phase: ``'TEST'`` (default) or ``'TRAIN'``: Caffe's include/exclude
            phase rules; ``level`` and ``stages`` complete the NetState.
        fuse_bn_scale: Fold each BatchNorm -> Scale pair (found by graph
            topology) into one BatchNorm op. Off by default: one engine op
            per Caffe layer, so every layer can be verified.
        scale: The input scale factor to record (Caffe's
            ``transform_param.scale``), when the deploy prototxt lacks it.
        strict: Raise :class:`CaffeConversionError` listing every problem
            (default). ``False`` returns the partial conversion with
            ``problems``/``unsupported`` filled in instead (it cannot be saved).
        allow_missing_weights: Leave out the parameters of layers that have no
            weights in the caffemodel instead of failing.

    Returns:
        :class:`CaffeConversion`.

    Raises:
        CaffeConversionError: Unsupported layers or values, missing or
            mismatched weights, missing input shapes, ... all listed at once.
        CaffeFormatError: An unreadable prototxt or caffemodel (from the reader).
    """
    phase = str(phase).upper()
    if phase not in ("TEST", "TRAIN"):
        raise DeepkitError(f"phase must be 'TEST' or 'TRAIN', got {phase!r}")
    source = None
    if isinstance(prototxt, (str, os.PathLike)) and os.path.exists(os.fspath(prototxt)):
        source = os.fspath(prototxt)
    model = _read_model(caffemodel)
    if prototxt is None:
        if model is None:
            raise DeepkitError("convert: give a prototxt, a caffemodel, or both")
        net = model
        warn_structure = True
    else:
        net = _read_net(prototxt)
        warn_structure = False
    mean_loaded = _load_mean(mean)
    conv = _Converter(net, model, phase, int(level), tuple(stages), input_shape, fuse_bn_scale,
                      allow_missing_weights, source)
    conv.structure_from_model = warn_structure
    for label, msg in (("prototxt", net), ("caffemodel", model)):
        if label == "prototxt" and msg is model:
            continue
        meta = getattr(msg, "meta", None) or {}
        for line in meta.get("unknown_fields", []) or []:
            conv.warnings.append(f"{label}: unknown field skipped: {line}")
        for line in meta.get("warnings", []) or []:
            conv.warnings.append(f"{label}: {line}")
    if warn_structure:
        conv.warnings.append("no prototxt: the structure and hyper-parameters come from the "
                             "caffemodel, which stores the net as Caffe built it for training "
                             "(phase rules already applied; forks may store different fields)")
    layers = conv.select_layers()
    conv._layers = layers
    conv.check_layers(layers)
    fusions = conv.plan_fusions(layers) if fuse_bn_scale else {}
    for index, layer in enumerate(layers):
        conv.build_layer(index, layer, fusions)
    if model is not None:
        names = {layer.name for layer in layers}
        for name, queue in conv.weight_index.items():
            if name in names and conv.problems:
                continue  # left over because its layer failed: already reported
            for ml in queue:
                conv.unused_weights.append(f"{name} ({ml.type})")
    _check_input_names(conv)
    conv.finish()
    res = conv.result
    swapped = []
    if rgb and not conv.problems:
        swapped = _apply_rgb(conv, res)
    pre = _preprocessing(conv, res, mean_loaded, scale, bool(rgb) and not conv.problems)
    if rgb and res.mean is not None and not conv.problems:
        res.mean = np.ascontiguousarray(res.mean[::-1])
        pre["mean_per_channel"] = pre["mean_per_channel"][::-1]
    if rgb and pre.get("mean_value") and len(pre["mean_value"]) == 3:
        pre["mean_value"] = pre["mean_value"][::-1]
    res.problems = list(conv.problems)
    res._keepalive = [model]
    res.metadata = _metadata(conv, res, pre, phase, swapped, fuse_bn_scale)
    if res.problems and strict:
        raise CaffeConversionError(res.problems, res, source)
    return res


def _check_input_names(conv):
    names = {n for n, _ in conv.inputs}
    for name in conv.named_shapes:
        if name not in names and not any(v.name == name for rec, _ in conv.input_layers
                                         for v in rec.top_versions):
            conv.problem("input", None, f"input_shape names '{name}', which is not an input of "
                                        f"the net (inputs: {', '.join(sorted(names)) or 'none'})")
    if conv.default_shape is not None:
        image = [v for rec, _ in conv.input_layers for v in rec.top_versions
                 if v.state != "label"]
        if len(image) > 1:
            conv.problem("input", None, "input_shape is ambiguous: the net has several inputs ("
                                        + ", ".join(v.name for v in image) + ")",
                         "pass a dict {input_name: shape}")


def _metadata(conv, res, pre, phase, swapped, fused):
    names = {}
    for group in (res.arg_params, res.aux_params):
        for name in group:
            names[escape_name(name)] = name
    return {
        "format": FORMAT,
        "converter": "deepkit.caffe",
        "source": {"prototxt": conv.source, "phase": phase, "level": conv.level,
                   "stages": sorted(conv.stages)},
        "inputs": [{"name": n, "shape": list(s)} for n, s in res.inputs],
        "outputs": [{"caffe_blob": b, "name": o, "shape": _list(res._shape_of_output(o))}
                    for b, o in res.outputs],
        "preprocessing": pre,
        "layers": [rec.to_dict() for rec in res.layers],
        "params": {name: p.to_dict() for name, p in res.params.items()},
        "names": names,
        "rgb_swapped_layers": swapped,
        "fuse_bn_scale": bool(fused),
        "warnings": list(res.warnings),
    }


def _list(shape):
    return None if shape is None else list(shape)
