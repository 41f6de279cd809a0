"""Keras model files in: Keras 3 ``.keras`` archives, and the HDF5 files of Keras 3 and Keras 2.

``load_keras_model(path)`` rebuilds the model with deepkit's own layers,
keeping the file's layout (``data_format='channels_last'`` images stay
channels-last), and loads the weights into deepkit's conventions: a Dense
kernel ``(in, units)`` becomes ``(units, in)``, a convolution kernel
``(kh, kw, in, out)`` becomes ``(out, in, kh, kw)``, and the recurrent
layers' weights go through :func:`deepkit.layers.recurrent_convert.from_keras`
(kernels transposed, GRU gates z, r, h reordered to r, z, n, a reset-after
GRU's ``(2, 3*units)`` bias split into ``bias`` and ``recurrent_bias``).
The three flavours differ as follows:

* ``.keras`` (Keras 3): a zip of ``config.json`` and ``model.weights.h5``
  (``layers/<key>/vars/0, 1, ...`` in each layer's own order, where the
  ``vars`` group names the layer; a recurrent layer's weights sit in its
  ``cell`` group, a wrapper's in ``forward_layer``/``backward_layer`` or
  ``layer``);
* ``.h5`` written by Keras 3: ``model_config`` with Keras 3's layer configs,
  weights under ``model_weights/<layer>`` ordered by ``weight_names``;
* ``.h5`` written by Keras 2 / ``tf.keras``: the same groups, but
  ``batch_input_shape``, dtypes as strings, nested-list ``inbound_nodes`` and
  weight names ending in ``:0``.

Masked steps: deepkit's recurrent layers output zeros there, a Keras
recurrent layer repeats its last output unless ``zero_output_for_mask``
(which ``Bidirectional`` sets); models with masks get a
:class:`RepeatMaskedOutputs` layer after each layer that repeats, so that
they predict what Keras predicts at every step.

Only the architecture and weights are read; the optimizer state is not.
"""
import io
import json
import os
import re
import zipfile

import h5py
import numpy as np

from deepkit_engine import contrib
from deepkit_engine import symbol as sym
from deepkit_engine.base import DeepkitError

from .. import layers as L
from .. import saving
from ..layers import recurrent_convert
from ..layers.base import Layer, get_mask, set_mask
from .functional import Model
from .sequential import Sequential

__all__ = ["is_keras_file", "load_keras_model", "SUPPORTED_LAYERS", "RepeatMaskedOutputs"]


def is_keras_file(path):
    """Whether ``path`` is a Keras archive or an HDF5 model file written by Keras."""
    path = os.fspath(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return "config.json" in archive.namelist()
    if not h5py.is_hdf5(path):
        return False
    with h5py.File(path, "r") as f:
        return "keras_version" in f.attrs or ("model_config" in f.attrs
                                              and "format" not in f.attrs)


# -- layer configs ---------------------------------------------------------------------------

def _shape(config):
    shape = config.get("batch_shape") or config.get("batch_input_shape")
    if shape is None:
        raise DeepkitError(f"Keras InputLayer '{config.get('name')}' has no batch_shape")
    return tuple(shape[1:])


def _pick(config, *keys):
    return {k: config[k] for k in keys if k in config}


def _activation(config):
    value = config.get("activation", "linear")
    return None if value in (None, "linear") else value


def _dense(c):
    return L.Dense(c["units"], activation=_activation(c), use_bias=c.get("use_bias", True),
                   name=c["name"])


def _conv2d(c):
    return L.Conv2D(c["filters"], tuple(c["kernel_size"]), strides=tuple(c.get("strides", (1, 1))),
                    padding=c.get("padding", "valid"),
                    data_format=c.get("data_format", "channels_last"),
                    dilation_rate=tuple(c.get("dilation_rate", (1, 1))),
                    activation=_activation(c), use_bias=c.get("use_bias", True), name=c["name"])


def _pooling(cls):
    def make(c):
        strides = c.get("strides")
        return cls(tuple(c.get("pool_size", (2, 2))),
                   strides=tuple(strides) if strides is not None else None,
                   padding=c.get("padding", "valid"),
                   data_format=c.get("data_format", "channels_last"), name=c["name"])
    return make


def _global_pooling(cls):
    def make(c):
        return cls(data_format=c.get("data_format", "channels_last"),
                   keepdims=c.get("keepdims", False), name=c["name"])
    return make


def _batch_norm(c):
    axis = c.get("axis", -1)
    axis = axis[0] if isinstance(axis, (list, tuple)) else axis
    return L.BatchNormalization(axis=axis, momentum=c.get("momentum", 0.99),
                                epsilon=c.get("epsilon", 1e-3), center=c.get("center", True),
                                scale=c.get("scale", True),
                                synchronized=c.get("synchronized", False), name=c["name"])


_CELL_KEYS = ("units", "activation", "recurrent_activation", "use_bias", "dropout",
              "recurrent_dropout", "unit_forget_bias", "reset_after")
_RNN_KEYS = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll",
             "time_major")
_CELLS = {"SimpleRNNCell": L.SimpleRNNCell, "LSTMCell": L.LSTMCell, "GRUCell": L.GRUCell}
_RECURRENT = {"SimpleRNN": L.SimpleRNN, "LSTM": L.LSTM, "GRU": L.GRU}


def _cell_args(c, cls):
    """The cell arguments of a Keras recurrent layer or cell config, as deepkit's."""
    args = _pick(c, *_CELL_KEYS)
    if args.get("activation") in (None, "linear"):
        args["activation"] = "linear" if "activation" in c else "tanh"
    if cls is L.SimpleRNNCell or cls is L.SimpleRNN:
        args.pop("recurrent_activation", None)
    if cls not in (L.LSTM, L.LSTMCell):
        args.pop("unit_forget_bias", None)
    if cls not in (L.GRU, L.GRUCell):
        args.pop("reset_after", None)
    elif "reset_after" not in args:
        args["reset_after"] = False  # Keras 2 before 2.3 had no reset_after: the original GRU
    return args


def _cell(entry):
    cls, c = entry["class_name"], entry["config"]
    if cls == "StackedRNNCells":
        return L.StackedRNNCells([_cell(e) for e in c["cells"]], name=c.get("name"))
    if cls not in _CELLS:
        raise ValueError(f"cell '{c.get('name')}' is a {cls}; the cells deepkit rebuilds are "
                         f"{', '.join(sorted(_CELLS))} and StackedRNNCells")
    return _CELLS[cls](**_cell_args(c, _CELLS[cls]), name=c.get("name"))


def _rnn_args(c):
    args = _pick(c, *_RNN_KEYS)
    shape = c.get("batch_input_shape") or c.get("batch_shape")
    if args.get("stateful") and shape and shape[0]:
        args["batch_size"] = shape[0]
    return args


def _recurrent(cls):
    def make(c):
        return cls(**_cell_args(c, cls), **_rnn_args(c), name=c["name"])
    return make


def _rnn(c):
    return L.RNN(_cell(c["cell"]), **_rnn_args(c), name=c["name"])


def _nested(c, key):
    """The deepkit layer for the Keras layer a wrapper's config holds under ``key``."""
    entry = c[key]
    builder = _BUILDERS.get(entry["class_name"])
    if builder is None:
        raise ValueError(f"its wrapped layer '{entry['config'].get('name')}' is a "
                         f"{entry['class_name']}, which deepkit cannot rebuild yet")
    return builder(entry["config"])


def _bidirectional(c):
    backward = _nested(c, "backward_layer") if c.get("backward_layer") else None
    return L.Bidirectional(_nested(c, "layer"), merge_mode=c.get("merge_mode", "concat"),
                           backward_layer=backward, name=c["name"])


def _embedding(c):
    return L.Embedding(c["input_dim"], c["output_dim"], mask_zero=c.get("mask_zero", False),
                       name=c["name"])


#: Keras layer class -> ``config -> deepkit layer``.
_BUILDERS = {
    "Dense": _dense,
    "Conv2D": _conv2d,
    "MaxPooling2D": _pooling(L.MaxPooling2D),
    "AveragePooling2D": _pooling(L.AveragePooling2D),
    "GlobalAveragePooling2D": _global_pooling(L.GlobalAveragePooling2D),
    "GlobalMaxPooling2D": _global_pooling(L.GlobalMaxPooling2D),
    "Flatten": lambda c: L.Flatten(data_format=c.get("data_format", "channels_last"),
                                   name=c["name"]),
    "Dropout": lambda c: L.Dropout(c["rate"], name=c["name"]),
    "Activation": lambda c: L.Activation(c["activation"], name=c["name"]),
    "ReLU": lambda c: L.ReLU(name=c["name"]),
    "Softmax": lambda c: L.Softmax(axis=c.get("axis", -1), name=c["name"]),
    "BatchNormalization": _batch_norm,
    "Reshape": lambda c: L.Reshape(tuple(c["target_shape"]), name=c["name"]),
    "Add": lambda c: L.Add(name=c["name"]),
    "Concatenate": lambda c: L.Concatenate(axis=c.get("axis", -1), name=c["name"]),
    "SimpleRNN": _recurrent(L.SimpleRNN),
    "LSTM": _recurrent(L.LSTM),
    "GRU": _recurrent(L.GRU),
    "RNN": _rnn,
    "Bidirectional": _bidirectional,
    "TimeDistributed": lambda c: L.TimeDistributed(_nested(c, "layer"), name=c["name"]),
    "Embedding": _embedding,
    "Masking": lambda c: L.Masking(c.get("mask_value", 0.0), name=c["name"]),
}
#: The Keras layer classes this reader rebuilds.
SUPPORTED_LAYERS = tuple(sorted(_BUILDERS)) + ("InputLayer",)


def _layer(entry, path):
    cls = entry["class_name"]
    builder = _BUILDERS.get(cls)
    if builder is None:
        raise DeepkitError(f"{path}: Keras layer '{entry['config'].get('name')}' is a {cls}, "
                           f"which deepkit cannot rebuild yet; supported: "
                           f"{', '.join(SUPPORTED_LAYERS)}")
    try:
        return builder(entry["config"])
    except ValueError as err:
        raise DeepkitError(f"{path}: Keras {cls} '{entry['config'].get('name')}' cannot be "
                           f"rebuilt: {err}") from None
    except (KeyError, TypeError) as err:
        raise DeepkitError(f"{path}: Keras {cls} '{entry['config'].get('name')}': its config "
                           f"cannot be read ({type(err).__name__}: {err})") from None


@saving.register_serializable
class RepeatMaskedOutputs(Layer):
    """Gives the masked steps of a recurrent layer's sequence output Keras's values.

    deepkit's recurrent layers output zeros at masked steps; a Keras recurrent
    layer with ``zero_output_for_mask=False`` (its default everywhere but
    inside ``Bidirectional``) repeats the output of the last unmasked step
    instead (zeros before the first one). The loader puts this layer after
    such a layer in models that have masks; it passes inputs without a mask
    through unchanged.

    Args:
        go_backwards: The recurrent layer reads the sequence from its end, so
            its outputs and its steps' mask run in reversed order.
        time_major: The sequence is (timesteps, batch, features).
    """

    supports_masking = True

    def __init__(self, go_backwards=False, time_major=False, **kwargs):
        super().__init__(**kwargs)
        self.go_backwards = bool(go_backwards)
        self.time_major = bool(time_major)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def call(self, inputs):
        mask = get_mask(inputs)
        if mask is None:
            return inputs
        keep = sym.reverse(mask, axis=1) if self.go_backwards else mask
        keep = sym.expand_dims(sym.swapaxes(keep, dim1=0, dim2=1), axis=2)
        data = inputs if self.time_major else sym.swapaxes(inputs, dim1=0, dim2=1)
        first = sym.zeros_like(sym.slice_axis(data, axis=0, begin=0, end=1))

        def body(steps, states):
            out = sym.broadcast_mul(steps[0], steps[1]) \
                + sym.broadcast_mul(states[0], 1 - steps[1])
            return [out], [out]

        start = sym.reshape(first, shape=(-3, -2))
        outs, _ = contrib.symbol.foreach(body, [data, keep], [start], name=f"{self.name}_loop")
        out = outs[0] if self.time_major else sym.swapaxes(outs[0], dim1=0, dim2=1)
        return set_mask(out, mask)

    def get_config(self):
        config = super().get_config()
        config.update(go_backwards=self.go_backwards, time_major=self.time_major)
        return config


def _has_masks(entries):
    """Whether a Keras model's layers make masks (Masking, Embedding(mask_zero=True))."""
    return any(e["class_name"] == "Masking"
               or (e["class_name"] == "Embedding" and e["config"].get("mask_zero"))
               for e in entries)


def _repeats_masked_outputs(entry):
    """Whether a Keras layer repeats its last output at masked steps of its sequence output."""
    c = entry["config"]
    return (entry["class_name"] in _RECURRENT or entry["class_name"] == "RNN") \
        and c.get("return_sequences") and not c.get("zero_output_for_mask", False)


def _repeater(entry):
    c = entry["config"]
    return RepeatMaskedOutputs(go_backwards=c.get("go_backwards", False),
                               time_major=c.get("time_major", False),
                               name=f"{c['name']}_masked_steps")


# -- weights -------------------------------------------------------------------------------

_KINDS = {L.SimpleRNNCell: "SimpleRNN", L.LSTMCell: "LSTM", L.GRUCell: "GRU"}


def _take(arrays, n, what):
    if len(arrays) < n:
        raise ValueError(f"{what} needs {n} weight arrays, the file has {len(arrays)} left")
    taken = arrays[:n]
    del arrays[:n]
    return taken


def _converted(layer, arrays):
    """deepkit's weights of ``layer`` taken from the front of ``arrays`` (Keras's order).

    ``arrays`` is Keras's ``get_weights()`` list of the layer (or of the
    wrapper around it); what ``layer`` uses is removed from it.
    """
    what = f"{type(layer).__name__} '{layer.name}'"
    if isinstance(layer, L.Bidirectional):
        return _converted(layer.forward_layer, arrays) + _converted(layer.backward_layer, arrays)
    if isinstance(layer, L.TimeDistributed):
        return _converted(layer.layer, arrays)
    if isinstance(layer, L.RNN):
        return _converted(layer.cell, arrays)
    if isinstance(layer, L.StackedRNNCells):
        return [w for cell in layer.cells for w in _converted(cell, arrays)]
    kind = _KINDS.get(type(layer))
    if kind is not None:
        return recurrent_convert.from_keras(kind, _take(arrays, 2 + layer.use_bias, what),
                                            reset_after=getattr(layer, "reset_after", True))
    if isinstance(layer, L.Dense):
        taken = _take(arrays, 1 + layer.use_bias, what)
        return [taken[0].T] + taken[1:]
    if isinstance(layer, L.Conv2D):
        taken = _take(arrays, len(layer.params), what)
        return [taken[0].transpose(3, 2, 0, 1)] + taken[1:]
    if isinstance(layer, L.BatchNormalization):
        names = (["gamma"] if layer.scale else []) + (["beta"] if layer.center else []) \
            + ["moving_mean", "moving_var"]
        by_name = dict(zip(names, _take(arrays, len(names), what)))
        return [by_name[short] for short in layer.params if short in by_name] \
            if set(layer.params) <= set(by_name) else [by_name[n] for n in names]
    return _take(arrays, len(_weights_of(layer)), what)


def _weights_of(layer):
    """The parameters a Keras file fills (a stateful layer's carried states are not)."""
    carried = {id(p) for p in getattr(layer, "carried", [])}
    for inner in (getattr(layer, "forward_layer", None), getattr(layer, "backward_layer", None)):
        carried |= {id(p) for p in getattr(inner, "carried", [])}
    return [p for p in layer.params.values() if id(p) not in carried]


def _assign(model, weights, path):
    """Put ``{layer name: [arrays in Keras's order]}`` into ``model``'s layers."""
    model.initialize_weights()
    for layer in model.weight_layers():
        arrays = weights.get(layer.name)
        if arrays is None:
            raise DeepkitError(f"{path}: no weights for layer '{layer.name}'")
        arrays = [np.asarray(a, np.float32) for a in arrays]
        count = len(arrays)
        params = _weights_of(layer)
        try:
            values = _converted(layer, arrays)
        except ValueError as err:
            raise DeepkitError(f"{path}: the weights of layer '{layer.name}' do not fit "
                               f"deepkit's {type(layer).__name__}: {err}") from None
        if arrays or len(values) != len(params):
            raise DeepkitError(f"{path}: layer '{layer.name}' has {count} weight arrays "
                               f"in the file and {len(params)} in deepkit")
        for p, value in zip(params, values):
            if value.shape != p.shape:
                raise DeepkitError(f"{path}: weight '{p.name}' has shape {value.shape} in the "
                                   f"file (after conversion), deepkit needs {p.shape}")
            p.data[:] = value


def _snake(name):
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _archive_keys(entries):
    """The group names Keras 3 gives a list of objects in an archive: ``dense, dense_1, ...``."""
    used, keys = {}, []
    for entry in entries:
        key = _snake(entry["class_name"])
        if key in used:
            used[key] += 1
            key = f"{key}_{used[key]}"
        else:
            used[key] = 0
        keys.append(key)
    return keys


def _vars(group):
    variables = group.get("vars") if group is not None else None
    if variables is None:
        return []
    return [variables[str(i)][()] for i in range(len(variables))]


def _archive_layer_weights(group, entry):
    """Keras's ``get_weights()`` list of one layer from its group in an archive."""
    if group is None:
        return []
    cls, c = entry["class_name"], entry["config"]
    out = _vars(group)
    if cls == "Bidirectional":
        backward = c.get("backward_layer") or c["layer"]
        return out + _archive_layer_weights(group.get("forward_layer"), c["layer"]) \
            + _archive_layer_weights(group.get("backward_layer"), backward)
    if cls == "TimeDistributed":
        return out + _archive_layer_weights(group.get("layer"), c["layer"])
    if cls == "StackedRNNCells":
        cells = group.get("cells")
        return out + [w for key, cell in zip(_archive_keys(c["cells"]), c["cells"])
                      for w in _archive_layer_weights(cells.get(key) if cells else None, cell)]
    if "cell" in group:  # RNN, LSTM, GRU, SimpleRNN: the weights live in the cell
        cell = c.get("cell") or {"class_name": cls + "Cell", "config": {}}
        return out + _archive_layer_weights(group["cell"], cell)
    return out


def _archive_weights(weights_file, config):
    """``{layer name: [arrays in Keras's order]}`` from a ``.keras`` archive's weights."""
    group = weights_file.get("layers", {})
    entries = config["config"]["layers"]
    by_name = {}
    for key in group:
        variables = group[key].get("vars")
        name = variables.attrs.get("name") if variables is not None else None
        if name is not None:
            by_name[name.decode() if isinstance(name, bytes) else str(name)] = group[key]
    listed = entries if config["class_name"] != "Sequential" else \
        [e for e in entries if e["class_name"] != "InputLayer"]
    for entry, key in zip(listed, _archive_keys(listed)):  # archives without names
        by_name.setdefault(entry["config"]["name"], group.get(key))
    return {e["config"]["name"]: _archive_layer_weights(by_name.get(e["config"]["name"]), e)
            for e in entries}


def _h5_weights(f):
    group = f["model_weights"] if "model_weights" in f else f
    out = {}
    for name in group:
        names = group[name].attrs.get("weight_names", [])
        out[name] = [group[name][n.decode() if isinstance(n, bytes) else n][()] for n in names]
    return out


# -- the model -----------------------------------------------------------------------------

def _sequential(body, path):
    model = Sequential(name=body.get("name"))
    masks = _has_masks(body["layers"])
    for i, entry in enumerate(body["layers"]):
        config = entry["config"]
        if entry["class_name"] == "InputLayer":
            model.add(L.Input(shape=_shape(config), name=config.get("name")))
            continue
        if i == 0 and ("batch_input_shape" in config or "batch_shape" in config):
            model.add(L.Input(shape=_shape(config), name=f"{config['name']}_input"))
        model.add(_layer(entry, path))
        if masks and _repeats_masked_outputs(entry):
            model.add(_repeater(entry))
    return model


def _inbound(node):
    """``[(layer, node index, tensor index)]`` and whether the call took a list."""
    if isinstance(node, dict):  # Keras 3: {"args": [tensor or [tensors]], "kwargs": {}}
        first = node["args"][0]
        tensors = first if isinstance(first, list) else [first]
        states = node.get("kwargs", {}).get("initial_state") or []
        states = states if isinstance(states, list) else [states]
        refs = [tuple(t["config"]["keras_history"]) for t in tensors + states]
        return refs, isinstance(first, list) or bool(states)
    refs = [tuple(ref[:3]) for ref in node]  # Keras 2: [["layer", 0, 0, {}], ...]
    return refs, len(refs) > 1


def _refs(value):
    """Input/output layer references: ``[name, node, tensor]`` or a list of them."""
    return [tuple(value)] if value and isinstance(value[0], str) else [tuple(v) for v in value]


def _functional(body, path):
    produced, pending, repeaters = {}, [], {}
    masks = _has_masks(body["layers"])
    for entry in body["layers"]:
        config = entry["config"]
        name = config.get("name", entry.get("name"))
        if entry["class_name"] == "InputLayer":
            produced[(name, 0, 0)] = L.Input(shape=_shape(config), name=name)
            continue
        layer = _layer(entry, path)
        for k, node in enumerate(entry.get("inbound_nodes", [])):
            pending.append((name, layer, k, node))
        if masks and _repeats_masked_outputs(entry):
            repeaters[name] = _repeater(entry)
    while pending:
        progress = False
        for item in list(pending):
            name, layer, k, node = item
            refs, as_list = _inbound(node)
            if not all(ref in produced for ref in refs):
                continue
            tensors = [produced[ref] for ref in refs]
            out = layer(tensors if as_list else tensors[0])
            repeater = repeaters.get(name)
            if repeater is not None:
                out = [repeater(out[0])] + out[1:] if isinstance(out, list) else repeater(out)
            for i, t in enumerate(out if isinstance(out, list) else [out]):
                produced[(name, k, i)] = t
            pending.remove(item)
            progress = True
        if not progress:
            raise DeepkitError(f"{path}: cannot connect Keras layers "
                               f"{sorted({p[0] for p in pending})}: their inputs are missing")
    inputs = [produced[r] for r in _refs(body["input_layers"])]
    outputs = [produced[r] for r in _refs(body["output_layers"])]
    return Model(inputs if len(inputs) > 1 else inputs[0],
                 outputs if len(outputs) > 1 else outputs[0], name=body.get("name"))


def _keras3_hard_sigmoid(config):
    """The name of the first layer of a Keras 3 config that uses ``hard_sigmoid``, or None."""
    if isinstance(config, list):
        return next((n for n in map(_keras3_hard_sigmoid, config) if n), None)
    if not isinstance(config, dict):
        return None
    inner = config.get("config")
    if isinstance(inner, dict) and "hard_sigmoid" in (inner.get("activation"),
                                                      inner.get("recurrent_activation")):
        return inner.get("name", "?")
    return next((n for n in map(_keras3_hard_sigmoid, config.values()) if n), None)


def _model(config, path, keras3=False):
    layer = _keras3_hard_sigmoid(config) if keras3 else None
    if layer is not None:
        raise DeepkitError(f"{path}: Keras layer '{layer}' uses hard_sigmoid, which Keras 3 "
                           "computes as relu6(x + 3) / 6 and deepkit as Keras 2 did, "
                           "clip(0.2 * x + 0.5, 0, 1); such a model is not converted")
    body = config["config"]
    if config["class_name"] == "Sequential":
        return _sequential(body, path)
    if config["class_name"] in ("Functional", "Model"):
        return _functional(body, path)
    raise DeepkitError(f"{path}: a Keras {config['class_name']} model cannot be rebuilt "
                       "(subclassed models have no config to rebuild from)")


def load_keras_model(path):
    """A deepkit model with the architecture and weights of a Keras model file.

    Args:
        path: A ``.keras`` archive (Keras 3) or an ``.h5`` file written by
            Keras 3 or Keras 2 / ``tf.keras``.

    Returns:
        The model (uncompiled: compile it to train).

    Raises:
        DeepkitError: A layer deepkit cannot rebuild, or weights that do not
            fit; the message names the file and the layer.
    """
    path = os.fspath(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                config = json.loads(archive.read("config.json"))
                data = archive.read("model.weights.h5")
            model = _model(config, path, keras3=True)
            with h5py.File(io.BytesIO(data), "r") as weights_file:
                _assign(model, _archive_weights(weights_file, config), path)
            return model
        with h5py.File(path, "r") as f:
            config = f.attrs["model_config"]
            config = json.loads(config.decode() if isinstance(config, bytes) else config)
            version = f.attrs.get("keras_version", "")
            version = version.decode() if isinstance(version, bytes) else str(version)
            model = _model(config, path, keras3=version.startswith("3"))
            _assign(model, _h5_weights(f), path)
        return model
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as err:
        raise DeepkitError(f"{path}: not a Keras model file deepkit can read "
                           f"({type(err).__name__}: {err})") from None
