"""The converter proper: a phase-filtered Caffe net, layer by layer, to one engine symbol.

:class:`Converter` checks every layer type and parameter value before building
anything, treats blob names as SSA (each write, in-place layers included, is a
new version; each layer reads the latest version at its position in the file),
builds each layer with its converter in :mod:`deepkit.caffe.layers` (seeing a
:class:`LayerBuild`), hands the caffemodel's blobs to the layers by name, and
finally cross-checks Caffe's shape rules against the engine's shape inference.
Every problem is recorded (:class:`~deepkit.caffe.problems.Problem`), none
raised, so that a net's problems are all listed at once.
"""
import collections

import numpy as np

from deepkit_engine import symbol as sym
from deepkit_engine.base import DeepkitError, did_you_mean

from . import activation_layers  # noqa: F401  (registers OpenCV's extra elementwise types)
from . import custom
from . import detection_layers  # noqa: F401  (registers the SSD layer converters)
from . import fork_layers  # noqa: F401  (registers Reorg, Region, BN, SPP, Im2col, RNN, ...)
from . import resize_layers  # noqa: F401  (registers Interp, Resize, Upsample)
from . import layers as L
from .inputs import build_input, check_input_names
from .layers import Unsupported
from .owned import OwnedCopier
from .phases import layer_included
from .problems import Problem
from .records import CaffeConversion, LayerRecord, ParamRecord, fmt_shape
from .shapes import CaffeRuleError
from .sources import parse_input_shapes
from .weights import check_blob, declared_shape

__all__ = ["Converter", "LayerBuild"]


class _Version:
    """One SSA version of a Caffe blob."""

    __slots__ = ("name", "index", "symbol", "shape", "producer", "state", "note", "consumers")

    def __init__(self, name, index, producer):
        self.name, self.index, self.producer = name, index, producer
        self.symbol = self.shape = self.note = None
        self.state = "pending"
        self.consumers = []


class LayerBuild:
    """What a converter in :mod:`deepkit.caffe.layers` sees of the layer it converts.

    Attributes:
        layer: The LayerParameter message.
        name, type: The Caffe layer's name and type.
        node: The engine node name the layer's output gets.
        bottoms, bottom_shapes: The input symbols and their Caffe shapes.
        ntops: How many tops the prototxt names.
        attr: The node attributes (``caffe_name``, ``caffe_type``).
        has_weights: Whether a caffemodel was given.
        fused_scale, fused_scale_name: ``(gamma, beta)`` and the name of a
            Scale layer folded into this BatchNorm, else ``None``.
        phase: ``'TEST'`` or ``'TRAIN'``.
    """

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
        """Record a warning that does not stop the conversion."""
        self._conv.warnings.append(message)

    def sub(self, suffix):
        """A unique node name for a helper op of this layer."""
        return self._conv.unique(f"{self.node}_{suffix}")

    def weights(self, shapes, alternatives=()):
        """The caffemodel's blobs of this layer, checked against ``shapes``.

        Args:
            shapes: The blob shapes the prototxt implies.
            alternatives: Other acceptable lists of shapes (another blob count).

        Returns:
            One array per blob (``None`` each where there are no weights or
            they do not fit; the problem is recorded).
        """
        return self._conv.layer_weights(self._rec, self.layer, shapes, alternatives)

    def blob_shapes(self):
        """The declared shapes of this layer's caffemodel blobs, without taking them.

        For layers whose blob shapes vary between forks. Returns ``None``
        where there is no caffemodel or it has no blobs for this layer; a
        blob without a declared shape gives ``None`` in the list.
        """
        return self._conv.peek_blob_shapes(self.layer)

    def param(self, suffix, shape, blob, array, aux=False, caffe_shape=None, transform=None,
              source=None):
        """Declare an engine parameter of this layer.

        Args:
            suffix: The name suffix (the parameter is ``<node>_<suffix>``).
            shape: Its engine shape.
            blob: The index of the Caffe blob it comes from (``None``: none).
            array: Its value in the engine shape (or ``None``).
            aux: Whether it is an auxiliary state.
            caffe_shape: The Caffe blob's shape, where it differs.
            transform: How the Caffe blob was transformed (recorded).
            source: Where the value came from, where not a blob (recorded).

        Returns:
            The parameter's Variable (shared with other layers by ParamSpec name).
        """
        return self._conv.param(self._rec, self.layer, suffix, shape, blob, array, aux,
                                caffe_shape, transform, source)


class Converter:
    """One conversion in progress; :meth:`build` runs it.

    Args:
        net: The net definition (a NetParameter in the V2 form).
        model: The trained weights (a NetParameter) or ``None``.
        phase, level, stages: Caffe's NetState for the phase rules.
        input_shape: The ``input_shape`` argument of ``convert``.
        fuse_bn_scale: Fold BatchNorm -> Scale pairs into one op.
        allow_missing_weights: Leave out parameters that have no weights.
        source: The prototxt's path, for messages (or ``None``).
        structure_from_model: ``net`` is the caffemodel itself (already
            phase-filtered by Caffe).
        custom_layers: ``{caffe type key: function}`` (see :mod:`deepkit.caffe.custom`).
    """

    def __init__(self, net, model, phase, level, stages, input_shape, fuse_bn_scale,
                 allow_missing_weights, source, structure_from_model=False, custom_layers=None):
        self.net, self.model = net, model
        self.phase, self.level, self.stages = phase, level, stages
        self.default_shape, self.named_shapes = parse_input_shapes(input_shape)
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
        self.structure_from_model = structure_from_model
        self.layers = []        # the selected LayerParameters, in file order
        self.label_drops = []
        self.copier = OwnedCopier()
        self.free_axes = {}     # input name -> axes input_shape left free (0 / None)
        self.custom = dict(custom.REGISTERED)
        self.custom.update(custom_layers or {})
        if model is not None:
            for ml in model.layer:
                if len(ml.blobs):
                    self.weight_index.setdefault(ml.name, collections.deque()).append(ml)
            for name, queue in self.weight_index.items():
                if len(queue) > 1:
                    self.warnings.append(f"the caffemodel has {len(queue)} layers named '{name}' "
                                         "with weights; they go to the prototxt's layers of that "
                                         "name in order")

    def build(self):
        """Select, check and build every layer, then collect the outputs and cross-check.

        Returns:
            The :class:`~deepkit.caffe.records.CaffeConversion` (problems in
            :attr:`problems`, not raised).
        """
        self.layers = self.select_layers()
        self.check_layers(self.layers)
        fusions = self.plan_fusions(self.layers) if self.fuse else {}
        for index, layer in enumerate(self.layers):
            self.build_layer(index, layer, fusions)
        if self.model is not None:
            names = {layer.name for layer in self.layers}
            for name, queue in self.weight_index.items():
                if name in names and self.problems:
                    continue  # left over because its layer failed: already reported
                for ml in queue:
                    self.unused_weights.append(f"{name} ({ml.type})")
        check_input_names(self)
        self.finish()
        return self.result

    # -- bookkeeping ----------------------------------------------------------------------------
    def problem(self, kind, rec_or_layer, message, hint=None):
        """Record a :class:`~deepkit.caffe.problems.Problem` (about a layer, or the net: None)."""
        if rec_or_layer is None:
            self.problems.append(Problem(kind, None, None, message, hint))
        else:
            self.problems.append(Problem(kind, rec_or_layer.name, rec_or_layer.type, message,
                                         hint))

    def unique(self, name):
        """``name``, or ``name_1``, ``name_2``, ... if taken; the result is taken."""
        base, k = name, 0
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name

    # -- weights ----------------------------------------------------------------------------------
    def peek_blob_shapes(self, layer):
        """The declared shapes of the next caffemodel blobs of ``layer`` (``None``: none)."""
        queue = self.weight_index.get(layer.name) if self.model is not None else None
        if not queue:
            return None
        return [declared_shape(b)[0] for b in queue[0].blobs]

    def layer_weights(self, rec, layer, shapes, alternatives=()):
        """The caffemodel blobs of ``layer`` (see :meth:`LayerBuild.weights`)."""
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
                             f"{len(shapes)} blob(s): {' '.join(fmt_shape(s) for s in shapes)})",
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
                         f"needs {want} ({' '.join(fmt_shape(s) for s in shapes)})",
                         "check that the caffemodel was trained with this prototxt (bias_term, "
                         "layer types)")
            return [None] * len(shapes)
        rec.caffe_blobs = list(chosen)
        arrays, bad = [], []
        for i, (blob, expected) in enumerate(zip(blobs, chosen)):
            declared, array, error = check_blob(blob, expected)
            rec.blob_shapes.append(declared)
            if error is not None:
                bad.append(f"blob {i}: {error}")
                arrays.append(None)
                continue
            if declared is None:
                self.warnings.append(f"layer '{layer.name}' blob {i} has no shape in the "
                                     f"caffemodel; taken as {fmt_shape(expected)}")
            arrays.append(array)
        if bad:
            self.problem("weight_shape", rec, "weight shapes do not match: " + "; ".join(bad),
                         "check that the caffemodel was trained with this prototxt "
                         "(num_output, kernel size, group, input shape)")
            return [None] * len(chosen)
        return arrays

    def param(self, rec, layer, suffix, shape, blob, array, aux=False, caffe_shape=None,
              transform=None, source=None):
        """Declare an engine parameter of ``rec`` (see :meth:`LayerBuild.param`)."""
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
                             f"shared parameter '{spec_name}' has shape {fmt_shape(shape)} here "
                             f"but {fmt_shape(prev.shape)} in layer '{prev.layer}'")
            return self.shared_vars[name]
        name = self.unique(f"{rec.node}_{suffix}")
        prec = ParamRecord(name, suffix, rec.name, blob,
                           caffe_shape if caffe_shape is not None else shape, shape, aux,
                           transform, source)
        rec.params.append(prec)
        self.result.params[name] = prec
        if array is not None:
            array = self.copier.owned(np.asarray(array).reshape(shape))
            (self.result.aux_params if aux else self.result.arg_params)[name] = array
        var = sym.Variable(name, shape=shape)
        if spec_name is not None:
            self.shared[spec_name] = name
            self.shared_vars[name] = var
        return var

    # -- graph ----------------------------------------------------------------------------------
    def select_layers(self):
        """The layers of the net in this phase (Caffe's include/exclude rules), in file order."""
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
                if layer_included(layer, self.phase, self.level, stages):
                    chosen.append(layer)
            except CaffeRuleError as e:
                self.problem("graph", layer, str(e))
        if not chosen:
            self.problem("graph", None, f"no layer is left in phase {self.phase} (level "
                                        f"{self.level}, stages {sorted(stages)})")
        return chosen

    def spec_for(self, layer):
        """The :class:`~deepkit.caffe.layers.LayerSpec` converting ``layer`` (custom ones first)."""
        for key in custom.lookup_key(layer):
            fn = self.custom.get(key)
            if fn is not None:
                return L.LayerSpec((layer.type,), "custom", _custom_build(fn, key))
        return L.REGISTRY.get(layer.type)

    def check_layers(self, layers):
        """Pass 1: every unknown type and unsupported parameter value, before building."""
        for layer in layers:
            spec = self.spec_for(layer)
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
        """New versions of the layer's tops (only in-place layers may rewrite a blob)."""
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
        """Build one layer: an input, a dropped or aliased layer, or engine ops."""
        rec = LayerRecord(index, layer.name, layer.type, None, layer.bottom, layer.top)
        self.records.append(rec)
        spec = self.spec_for(layer)
        kind = spec.kind if spec is not None else None
        if kind in ("input", "data"):
            rec.node = layer.name
            bottoms = self.bottoms_of(rec, layer) if len(layer.bottom) else []
            tops = self.new_tops(rec, layer)
            if bottoms is None:
                return self.fail(rec, tops, "skipped")
            return build_input(self, rec, layer, tops)
        bottoms = self.bottoms_of(rec, layer)
        tops = self.new_tops(rec, layer)
        if bottoms is None:
            return self.fail(rec, tops, "failed")
        if spec is None:
            return self.fail(rec, tops, "failed")
        if kind == "drop":
            rec.status, rec.note = "dropped", _drop_reason(layer.type)
            if layer.type == "HDF5Output":
                # a file sink: what it would write stays an output of the converted net
                for v in bottoms:
                    v.consumers.remove(rec)
                self.warnings.append(f"HDF5Output layer '{layer.name}' dropped: it writes its "
                                     f"bottoms ({', '.join(layer.bottom)}) to an HDF5 file "
                                     "during a forward pass; they stay outputs of the "
                                     "converted net")
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
            return self.fail(rec, tops, "skipped")
        if kind == "alias":
            if len(bottoms) != 1:
                self.problem("caffe_rule", rec, "Split takes exactly one bottom")
                return self.fail(rec, tops, "failed")
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
        cx = LayerBuild(self, rec, layer, [v.symbol for v in needed],
                         [v.shape for v in needed])
        if index in fusions:
            self.prepare_fusion(cx, rec, layer, fusions[index])
        try:
            outs = spec.build(cx)
        except Unsupported as e:
            self.problem("unsupported_param", rec, e.message, e.hint)
            return self.fail(rec, tops, "failed")
        except CaffeRuleError as e:
            self.problem("caffe_rule", rec, str(e))
            return self.fail(rec, tops, "failed")
        except DeepkitError as e:
            self.problem("shape_mismatch", rec, f"the engine refused the layer: {e}")
            return self.fail(rec, tops, "failed")
        except Exception as e:  # a user's converter function: report, do not crash
            if spec.kind != "custom":
                raise
            self.problem("custom_layer", rec, f"the registered converter failed: "
                                              f"{type(e).__name__}: {e}")
            return self.fail(rec, tops, "failed")
        if spec.kind == "custom":
            try:
                outs = _custom_shapes(self, outs)
            except DeepkitError as e:
                self.problem("custom_layer", rec, f"the engine cannot infer the shape of the "
                                                  f"registered converter's output: {e}")
                return self.fail(rec, tops, "failed")
        if len(outs) != len(tops):
            self.problem("caffe_rule", rec, f"{layer.type} produces {len(outs)} top(s) but the "
                                            f"prototxt names {len(tops)}")
            return self.fail(rec, tops, "failed")
        rec.status = "converted"
        for i, (t, (s, shape)) in enumerate(zip(tops, outs)):
            t.symbol, t.shape, t.state = s, tuple(shape), "ok"
            rec.top_shapes[i] = t.shape
            rec.outputs[i] = _output_name(s)

    def prepare_fusion(self, cx, rec, layer, scale_index):
        """Give the BatchNorm converter the weights of the Scale layer folded into it."""
        scale_layer = self.layers[scale_index]
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

    def fail(self, rec, tops, status):
        """Mark a layer ``status`` (``'failed'`` or ``'skipped'``) and its tops failed."""
        rec.status = status
        for t in tops:
            t.state = "failed"
        return None

    # -- the end --------------------------------------------------------------------------------
    def finish(self):
        """Collect the outputs (the blobs nothing consumes), group them, cross-check shapes."""
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
            arg_shapes, out_shapes, aux_shapes = internals.infer_shape_known(**known)
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
                                 f"top '{top}': Caffe's rules give {fmt_shape(shape)} but the "
                                 f"engine infers {fmt_shape(got)}",
                                 "this is a converter bug; please report it with the prototxt")
        args = dict(zip(internals.list_arguments(), arg_shapes))
        args.update(zip(internals.list_auxiliary_states(), aux_shapes))
        for name, rec in res.params.items():
            got = args.get(name)
            if got is not None and tuple(got) != rec.shape:
                self.problems.append(Problem("shape_mismatch", rec.layer, None,
                                             f"parameter '{name}' has shape "
                                             f"{fmt_shape(rec.shape)} but the engine expects "
                                             f"{fmt_shape(got)}"))


def _norm(shape):
    shape = tuple(shape) if shape is not None else None
    return (1,) if shape == () else shape


def _output_name(symbol):
    return symbol.list_outputs()[0]


_EXTEND_HINT = ("map the type to your own function building its symbols: "
                "deepkit.caffe.register_layer({key!r}, fn) or convert(..., "
                "custom_layers={{{key!r}: fn}}) (see deepkit.caffe.custom and docs/caffe.md)")


def _unknown_type(layer):
    t = layer.type
    if t == "Python":
        p = layer.python_param
        module, cls = p.module or "?", p.layer or "?"
        return (f"Python layer (module '{module}', class '{cls}') runs arbitrary Python code "
                "and cannot be converted by itself",
                _EXTEND_HINT.format(key=f"Python:{module}.{cls}") +
                "; or remove the layer from the prototxt")
    if t in L.UNSUPPORTED_HINTS:
        return (f"layer type '{t}' is not supported",
                L.UNSUPPORTED_HINTS[t] + "; or " + _EXTEND_HINT.format(key=t))
    if not t:
        return "the layer has no type", "give it a type"
    return (f"unknown layer type '{t}'{did_you_mean(t, L.supported_types())}",
            "it may come from a Caffe fork: " + _EXTEND_HINT.format(key=t) +
            "; the supported types are listed by deepkit.caffe.supported_layers()")


def _custom_build(fn, key):
    """A LayerSpec build function calling a user's converter ``fn``."""
    def custom_layer(cx):
        outs = fn(cx)
        if not isinstance(outs, (list, tuple)):
            outs = [outs]
        result = []
        for out in outs:
            if isinstance(out, tuple) and len(out) == 2:
                result.append((out[0], None if out[1] is None else tuple(out[1])))
            else:
                result.append((out, None))
        return result
    custom_layer.key = key
    return custom_layer


def _custom_shapes(conv, outs):
    """Fill in the output shapes a user's converter left out, by the engine's inference."""
    if all(shape is not None for _, shape in outs):
        return outs
    known = dict(conv.inputs)
    filled = []
    for symbol, shape in outs:
        if shape is None:
            args = set(symbol.list_arguments())
            _, out_shapes, _ = symbol.infer_shape(**{k: v for k, v in known.items()
                                                     if k in args})
            shape = tuple(out_shapes[0])
        filled.append((symbol, shape))
    return filled


def _drop_reason(t):
    if t == "Silence":
        return "Silence has no output"
    if t == "Accuracy":
        return "Accuracy needs labels (training only)"
    if t == "HDF5Output":
        return "HDF5Output writes its bottoms to a file (they stay outputs)"
    return "loss layer (training only)"

