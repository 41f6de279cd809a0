"""A Model made of one engine symbol: converted Caffe nets and MXNet-style networks.

Both the Caffe converter's models and the MXNet wing's ``FeedForward`` are a
symbol plus named parameters rather than a graph of layers. This module
gives them one neutral :class:`SymbolModel`: ``predict`` (and ``evaluate``,
``fit``) through the same training loop as every other model, the symbol
file format (:mod:`deepkit.symbol_file`) to save and load, and the
preprocessing a converted net was trained with.

Training follows MXNet's convention: the symbol's loss heads
(``SoftmaxOutput``, ``LinearRegressionOutput``, ...) give the gradients, and
a monitoring loss (the cross-entropy or error of those heads, cut off from
the gradient) gives the ``loss`` that callbacks and History see.
"""
import json

import numpy as np

import deepkit_engine as dk
from deepkit_engine import io as dk_io
from deepkit_engine import symbol as sym

from deepkit_engine.base import ShapeError

from ..layers.base import Parameter
from ..symbol_file import FORMAT as SYMBOL_MODEL_FORMAT
from ..symbol_file import read_symbol_file, write_symbol_file
from ..trainer.data import is_iterator, named, sample_count
from .functional import Model

__all__ = ["SymbolModel", "SymbolParameter", "load_symbol_model", "SYMBOL_MODEL_FORMAT",
           "LOSS_HEADS"]

#: Ops whose gradient is their own loss's (MXNet's loss heads).
LOSS_HEADS = ("SoftmaxOutput", "Softmax", "LinearRegressionOutput", "MAERegressionOutput",
              "LogisticRegressionOutput")


class SymbolParameter(Parameter):
    """A parameter named by the symbol (``fc1_weight``) instead of ``<layer>_<short name>``.

    Args:
        owner: The SymbolModel (may be set later as ``layer``); ``trainable`` asks it.
        name: The symbol's argument or auxiliary-state name.
        shape: The array shape.
        initializer: ``initializer(shape, dtype, rng) -> array`` or a name.
        lr_mult, wd_mult: Learning-rate and weight-decay multipliers.
        aux: An auxiliary state (updated by the forward pass, not the optimizer).
    """

    def __init__(self, owner, name, shape, initializer, lr_mult=1.0, wd_mult=1.0, aux=False):
        self._full_name = name
        super().__init__(owner, name, shape, np.float32, initializer, lr_mult=lr_mult,
                         wd_mult=wd_mult, aux=aux, regularizable=wd_mult > 0)

    @property
    def name(self):
        return self._full_name


def _truthy(text):
    return str(text).lower() in ("true", "1")


def loss_heads(symbol):
    """``[(op name, attrs, label variable name or None)]`` for each output of ``symbol``."""
    graph = json.loads(symbol.tojson())
    nodes = graph["nodes"]
    heads = []
    for node_id, _, _ in graph["heads"]:
        node = nodes[node_id]
        label = None
        if node["op"] in LOSS_HEADS and len(node["inputs"]) > 1:
            source = nodes[node["inputs"][1][0]]
            if source["op"] == "null":
                label = source["name"]
        heads.append((node["op"], node.get("attrs", {}), label))
    return heads


def head_loss(op, attrs, out, label):
    """Per-sample loss of a loss head (for monitoring; no gradient flows), or None."""
    p = sym.BlockGrad(out)
    eps = 1e-12
    if op in ("SoftmaxOutput", "Softmax"):
        if any(_truthy(attrs.get(k, False)) for k in ("multi_output", "preserve_shape",
                                                      "use_ignore")):
            return None  # per-position or masked losses: not monitored
        return -sym.log(sym.pick(p, label, axis=-1) + eps)
    y = sym.reshape_like(label, p)
    if op == "LinearRegressionOutput":
        err = sym.square(p - y)
    elif op == "MAERegressionOutput":
        err = sym.abs(p - y)
    elif op == "LogisticRegressionOutput":
        err = -(y * sym.log(p + eps) + (1 - y) * sym.log(1 - p + eps))
    else:
        return None
    return sym.mean(sym.flatten(err), axis=1)


class SymbolModel(Model):
    """A Model whose graph is one symbol, with its parameters by name.

    Args:
        symbol: The network; its outputs are the model's outputs.
        data_descs: One ``DataDesc`` (``name``, ``shape`` with the batch
            axis first) per input.
        params: The :class:`SymbolParameter` s (every argument other than the
            inputs and labels, and every auxiliary state).
        name: The model's name.

    Attributes:
        symbol: The network.
        label_names: The label variable of each output (see :meth:`set_labels`).
        metadata: What the producer recorded (a converted net: inputs,
            outputs, layer table, preprocessing).
    """

    def __init__(self, symbol, data_descs, params, name="symbol_model"):
        super().__init__(name=name)
        self.symbol = symbol
        self.input_names = [d.name for d in data_descs]
        self._sample_shapes = [tuple(d.shape[1:]) for d in data_descs]
        self._params = list(params)
        for p in self._params:
            if p.layer is None:
                p.layer = self
        self.layers = []
        self.outputs = list(symbol)  # one entry per output (predict counts them)
        self.output_names = list(symbol.list_outputs())
        self._label_names = [None] * len(self.output_names)
        self._single_output = len(self.output_names) == 1
        self.metadata = {}
        self.built = True

    @classmethod
    def from_arrays(cls, symbol, arg_params, aux_params, metadata=None):
        """A SymbolModel holding the given parameter values (a converted net)."""
        metadata = dict(metadata or {})
        inputs = metadata.get("inputs") or [{"name": "data", "shape": None}]
        descs = [dk_io.DataDesc(i["name"], tuple(i["shape"] or ())) for i in inputs]
        input_names = {d.name for d in descs}
        aux_names = set(symbol.list_auxiliary_states())
        names = set(symbol.list_arguments()) | aux_names
        params = []
        for name in sorted(names - input_names):
            value = (aux_params if name in aux_names else arg_params).get(name)
            if value is None:
                continue
            value = np.asarray(value, dtype=np.float32)
            params.append(SymbolParameter(None, name, value.shape, _constant(value), 1.0, 1.0,
                                          name in aux_names))
        model = cls(symbol, descs, params, name=metadata.get("name", "converted"))
        model.metadata = metadata
        model.output_names = [o.get("name", f"output{i}")
                              for i, o in enumerate(metadata.get("outputs", []))] \
            or list(symbol.list_outputs())
        model._label_names = [None] * len(model.output_names)
        return model

    # -- what Trainer asks for ---------------------------------------------------------
    def output_symbols(self):
        return list(self.symbol)

    def input_sample_shapes(self):
        return self._sample_shapes

    def _all_params(self):
        return self._params

    @property
    def label_names(self):
        return [n if n is not None else f"{o}_label"
                for n, o in zip(self._label_names, self.output_names)]

    def set_labels(self, names):
        """Feed labels into these symbol variables (one per labelled output, in order)."""
        names = list(names)
        if names == [n for n in self._label_names if n is not None]:
            return
        args = self.symbol.list_arguments()
        unknown = [n for n in names if n not in args]
        if unknown:
            raise ValueError(f"{self.name}: the data provides the label(s) {unknown} but the "
                             f"symbol has no such argument; its arguments are {args}")
        self._label_names = list(names)
        self.output_names = [n[:-len("_label")] if n.endswith("_label") else n for n in names]
        self._caches = {}

    def program_key(self):
        return ("symbol", tuple(self._label_names), self._compile_version)

    @property
    def gradient_reduction(self):
        """``'sum'``: the loss heads give gradients summed over the rows (MXNet's default,
        normalization ``'null'``, scaled by the optimizer's ``rescale_grad``); ``'mean'`` when
        every head divides by the batch (``normalization='batch'`` or ``'valid'``)."""
        heads = [attrs for op, attrs, label in loss_heads(self.symbol) if label is not None]
        if heads and all(attrs.get("normalization", "null") in ("batch", "valid")
                         for attrs in heads):
            return "mean"
        return "sum"

    def build_programs(self):
        """The symbol, and the training program: the monitoring loss, then the symbol."""
        return self.symbol, sym.Group([self.monitor_loss()] + list(self.symbol))

    def _build_from_data(self, x):
        return None

    def weight_layers(self):
        return []

    def calls(self):
        """No layer calls: the graph is one symbol."""
        return []

    def initialize_weights(self, ctx=None):
        ctx = dk.Context(ctx) if ctx is not None else self.device
        for p in self._params:
            p.initialize(ctx)

    def monitor_loss(self):
        """The mean per-sample loss of the labelled heads, cut off from the gradient.

        It also holds the ``<output>_sample_weight`` inputs that the trainer binds.
        """
        heads = loss_heads(self.symbol)
        outputs = list(self.symbol)
        internals = self.symbol.get_internals()
        terms = []
        for out_name, label in zip(self.output_names, self._label_names):
            if label is None:
                continue
            weight = sym.Variable(f"{out_name}_sample_weight")
            per_sample = None
            for (op, attrs, head_label), out in zip(heads, outputs):
                if head_label == label:
                    per_sample = head_loss(op, attrs, out, internals[label])
                    break
            terms.append(sym.mean(weight * 0.0 if per_sample is None else per_sample * weight))
        if not terms:
            terms.append(sym.mean(sym.BlockGrad(outputs[0])) * 0.0)
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return sym.BlockGrad(total)

    # -- inputs of other sizes -----------------------------------------------------------
    def _data_shapes(self, x):
        """``{input name: full shape}`` of a batch (or of all the data)."""
        return {name: tuple(np.shape(value))
                for name, value in named(x, self.input_names, "x").items()}

    def _differs(self, shapes):
        return any(shapes[n][1:] != tuple(s) for n, s in zip(self.input_names,
                                                             self._sample_shapes))

    def check_input_shapes(self, shapes):
        """Check that the symbol runs on inputs of these shapes.

        Args:
            shapes: ``{input name: full shape}`` (batch axis first).

        Raises:
            ValueError: A layer needs the input size the model was built for
                (the message names it and the engine's complaint).
        """
        for name, declared in zip(self.input_names, self._sample_shapes):
            got = shapes[name]
            if len(got) != len(declared) + 1:
                raise ValueError(f"Input '{name}' expects samples of shape {tuple(declared)} "
                                 f"({len(declared)} axes), got data of shape {got}")
        known = set(self.symbol.list_arguments())
        try:
            self.symbol.infer_shape(**{k: v for k, v in shapes.items() if k in known})
        except ShapeError as e:
            built = ", ".join(f"{n} {(None,) + tuple(s)}" for n, s in
                              zip(self.input_names, self._sample_shapes))
            given = ", ".join(f"{n} {s}" for n, s in shapes.items())
            raise ValueError(f"model '{self.name}' cannot run on inputs {given} (it was built "
                             f"for {built}): {self.describe_node(e.node)} needs a fixed input "
                             f"size; the engine says: {e}") from None

    def describe_node(self, node):
        """How to name an engine node in messages: the producer's layer name and type."""
        for layer in self.metadata.get("layers", []):
            if layer.get("node") == node:
                return f"layer '{layer.get('caffe_name', node)}' ({layer.get('type')})"
        return f"node '{node}'" if node else "a node"

    def _check_data(self, x, *args, **kwargs):
        try:
            shapes = None if x is None or is_iterator(x) else self._data_shapes(x)
        except (TypeError, ValueError, KeyError):
            shapes = None  # the base check reports malformed data
        if shapes is None or set(shapes) != set(self.input_names) or not self._differs(shapes):
            return super()._check_data(x, *args, **kwargs)
        self.check_input_shapes(shapes)
        declared = self._sample_shapes
        self._sample_shapes = [shapes[n][1:] for n in self.input_names]
        try:  # the remaining checks (labels, sample weights) against this data's shapes
            return super()._check_data(x, *args, **kwargs)
        finally:
            self._sample_shapes = declared

    def bind_step(self, purpose, x, y=None, sample_weight=None):
        """The cached executor for ``purpose`` and this batch's input shapes, with the batch fed.

        Each distinct input shape (a net that runs on any image size) binds
        its own executor, cached like the batch sizes.
        """
        shapes = self._data_shapes(x)
        if self.parallel is not None and not self._differs(shapes):
            return super().bind_step(purpose, x, y, sample_weight)  # split over devices
        cache = self.executors()
        if self._differs(shapes):
            self.check_input_shapes(shapes)
            exe = cache.executor(purpose, sample_count(x), input_shapes=shapes)
        else:
            exe = cache.executor(purpose, sample_count(x))
        cache.feed(exe, x, y, sample_weight)
        return exe

    def summary(self, print_fn=print, line_length=80):
        """The symbol's structure (there are no layers)."""
        text = self.symbol.debug_str()
        if print_fn is not None:
            print_fn(text)
        return text

    def get_config(self):
        """The symbol (MXNet JSON) and the inputs; the weights are saved with :meth:`save`."""
        return {"class_name": "SymbolModel",
                "config": {"name": self.name, "symbol": json.loads(self.symbol.tojson()),
                           "inputs": [{"name": n, "shape": [None] + list(s)}
                                      for n, s in zip(self.input_names, self._sample_shapes)]}}

    def save(self, path, include_optimizer=False):
        """Write the symbol, the weights and the metadata as one symbol-model file."""
        self.initialize_weights()
        aux = {p.name: p.data.asnumpy() for p in self._params if p.aux}
        args = {p.name: p.data.asnumpy() for p in self._params if not p.aux}
        metadata = dict(self.metadata)
        metadata.setdefault("name", self.name)
        metadata.setdefault("inputs", [{"name": n, "shape": [1] + list(s)}
                                       for n, s in zip(self.input_names, self._sample_shapes)])
        write_symbol_file(path, self.symbol, args, aux, metadata)

    def preprocess(self, images, input_order="RGB"):
        """Apply the recorded preprocessing to NCHW (or NHW for gray) images.

        ``images`` in ``input_order`` ('RGB' or 'BGR'), uint8 0-255 or float 0-1.
        Applies Caffe's DataTransformer: channel order, 0-255 range, mean, scale.
        """
        prep = self.metadata.get("preprocessing", {})
        x = np.asarray(images)
        if x.dtype != np.uint8 and x.max(initial=0) <= 1.0:
            x = x * 255.0
        x = x.astype(np.float32)
        if prep.get("channel_order") == "BGR" and input_order == "RGB" and x.shape[1] == 3:
            x = x[:, ::-1]
        mean = prep.get("mean_array")
        if mean is None and prep.get("mean_value"):
            mean = np.asarray(prep["mean_value"], np.float32).reshape(1, -1, 1, 1)
        if mean is not None:
            x = x - np.asarray(mean, np.float32)
        if prep.get("scale"):
            x = x * float(prep["scale"])
        return np.ascontiguousarray(x)




def _constant(value):
    def init(shape, dtype, rng):
        return value.astype(dtype, copy=False)
    return init


def load_symbol_model(path):
    """Read a symbol-model file (written by the Caffe converter or :meth:`SymbolModel.save`)."""
    symbol, arg_params, aux_params, metadata = read_symbol_file(path)
    return SymbolModel.from_arrays(symbol, arg_params, aux_params, metadata)
