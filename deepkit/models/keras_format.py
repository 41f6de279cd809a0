"""Keras model files in: Keras 3 ``.keras`` archives, and the HDF5 files of Keras 3 and Keras 2.

``load_keras_model(path)`` rebuilds the model with deepkit's own layers,
keeping the file's layout (``data_format='channels_last'`` images stay
channels-last), and loads the weights into deepkit's conventions: a Dense
kernel ``(in, units)`` becomes ``(units, in)``, a convolution kernel
``(kh, kw, in, out)`` becomes ``(out, in, kh, kw)``. The three flavours
differ as follows:

* ``.keras`` (Keras 3): a zip of ``config.json`` and ``model.weights.h5``
  (``layers/<name>/vars/0, 1, ...`` in each layer's own order);
* ``.h5`` written by Keras 3: ``model_config`` with Keras 3's layer configs,
  weights under ``model_weights/<layer>`` ordered by ``weight_names``;
* ``.h5`` written by Keras 2 / ``tf.keras``: the same groups, but
  ``batch_input_shape``, dtypes as strings, nested-list ``inbound_nodes`` and
  weight names ending in ``:0``.

Only the architecture and weights are read; the optimizer state is not.
"""
import io
import json
import os
import zipfile

import h5py
import numpy as np

from deepkit_engine.base import DeepkitError

from .. import layers as L
from .functional import Model
from .sequential import Sequential

__all__ = ["is_keras_file", "load_keras_model", "SUPPORTED_LAYERS"]


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
                                scale=c.get("scale", True), name=c["name"])


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
    except (KeyError, TypeError, ValueError) as err:
        raise DeepkitError(f"{path}: Keras {cls} '{entry['config'].get('name')}': its config "
                           f"cannot be read ({type(err).__name__}: {err})") from None


# -- weights -------------------------------------------------------------------------------

def _converted(layer, arrays):
    """Keras's weight arrays for ``layer`` in deepkit's order and layouts."""
    if isinstance(layer, L.Dense):
        return [arrays[0].T] + arrays[1:]
    if isinstance(layer, L.Conv2D):
        return [arrays[0].transpose(3, 2, 0, 1)] + arrays[1:]
    if isinstance(layer, L.BatchNormalization):
        names = (["gamma"] if layer.scale else []) + (["beta"] if layer.center else []) \
            + ["moving_mean", "moving_var"]
        by_name = dict(zip(names, arrays))
        return [by_name[short] for short in layer.params if short in by_name] \
            if set(layer.params) <= set(by_name) else arrays
    return arrays


def _assign(model, weights, path):
    """Put ``{layer name: [arrays in Keras's order]}`` into ``model``'s layers."""
    model.initialize_weights()
    for layer in model.weight_layers():
        arrays = weights.get(layer.name)
        if arrays is None:
            raise DeepkitError(f"{path}: no weights for layer '{layer.name}'")
        values = _converted(layer, [np.asarray(a, np.float32) for a in arrays])
        params = list(layer.params.values())
        if len(values) != len(params):
            raise DeepkitError(f"{path}: layer '{layer.name}' has {len(values)} weight arrays "
                               f"in the file and {len(params)} in deepkit")
        for p, value in zip(params, values):
            if value.shape != p.shape:
                raise DeepkitError(f"{path}: weight '{p.name}' has shape {value.shape} in the "
                                   f"file (after conversion), deepkit needs {p.shape}")
            p.data[:] = value


def _archive_weights(weights_file):
    out = {}
    group = weights_file.get("layers", {})
    for name in group:
        variables = group[name].get("vars", {})
        out[name] = [variables[str(i)][()] for i in range(len(variables))]
    return out


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
    for i, entry in enumerate(body["layers"]):
        config = entry["config"]
        if entry["class_name"] == "InputLayer":
            model.add(L.Input(shape=_shape(config), name=config.get("name")))
            continue
        if i == 0 and ("batch_input_shape" in config or "batch_shape" in config):
            model.add(L.Input(shape=_shape(config), name=f"{config['name']}_input"))
        model.add(_layer(entry, path))
    return model


def _inbound(node):
    """``[(layer, node index, tensor index)]`` and whether the call took a list."""
    if isinstance(node, dict):  # Keras 3: {"args": [tensor or [tensors]], "kwargs": {}}
        first = node["args"][0]
        tensors = first if isinstance(first, list) else [first]
        refs = [tuple(t["config"]["keras_history"]) for t in tensors]
        return refs, isinstance(first, list)
    refs = [tuple(ref[:3]) for ref in node]  # Keras 2: [["layer", 0, 0, {}], ...]
    return refs, len(refs) > 1


def _refs(value):
    """Input/output layer references: ``[name, node, tensor]`` or a list of them."""
    return [tuple(value)] if value and isinstance(value[0], str) else [tuple(v) for v in value]


def _functional(body, path):
    produced, pending = {}, []
    for entry in body["layers"]:
        config = entry["config"]
        name = config.get("name", entry.get("name"))
        if entry["class_name"] == "InputLayer":
            produced[(name, 0, 0)] = L.Input(shape=_shape(config), name=name)
            continue
        layer = _layer(entry, path)
        for k, node in enumerate(entry.get("inbound_nodes", [])):
            pending.append((name, layer, k, node))
    while pending:
        progress = False
        for item in list(pending):
            name, layer, k, node = item
            refs, as_list = _inbound(node)
            if not all(ref in produced for ref in refs):
                continue
            tensors = [produced[ref] for ref in refs]
            out = layer(tensors if as_list else tensors[0])
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


def _model(config, path):
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
            model = _model(config, path)
            with h5py.File(io.BytesIO(data), "r") as weights_file:
                _assign(model, _archive_weights(weights_file), path)
            return model
        with h5py.File(path, "r") as f:
            config = f.attrs["model_config"]
            config = json.loads(config.decode() if isinstance(config, bytes) else config)
            model = _model(config, path)
            _assign(model, _h5_weights(f), path)
        return model
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as err:
        raise DeepkitError(f"{path}: not a Keras model file deepkit can read "
                           f"({type(err).__name__}: {err})") from None
