"""Rebuilding models from files and configs: ``load_model``, ``model_from_config``/``_json``.

``load_model`` reads a whole-model file (architecture, weights, optimizer
state) or a symbol-model file (converted Caffe nets): the ``format``
attribute of the file says which.
"""
import json

from deepkit_engine.base import DeepkitError

from .. import layers as layers_mod
from .. import saving
from ..layers.base import InputLayer
from .functional import Model
from .sequential import Sequential
from .symbol_model import SYMBOL_MODEL_FORMAT, load_symbol_model

__all__ = ["load_model", "model_from_config", "model_from_json"]


def _layer_class(name, custom_objects):
    for space in (custom_objects or {}, vars(layers_mod), {"Model": Model, "Sequential": Sequential},
                  saving.registered_objects()):
        cls = space.get(name)
        if cls is not None:
            return cls
    raise DeepkitError(f"unknown layer class '{name}' in the model file; pass it in "
                       "custom_objects={'" + name + "': TheClass}")


def _deserialize_layer(entry, custom_objects):
    if entry["class_name"] in ("Model", "Sequential"):
        return model_from_config(entry, custom_objects)
    cls = _layer_class(entry["class_name"], custom_objects)
    return cls.from_config(dict(entry["config"]))


def model_from_config(config, custom_objects=None):
    """Rebuild a model (without weights) from what ``model.get_config()`` returned."""
    body = config["config"]
    if config["class_name"] == "Sequential":
        model = Sequential(name=body["name"])
        entries = body["layers"]
        if entries and entries[0]["class_name"] != "InputLayer":
            model.add(InputLayer(shape=tuple(body["input_shape"]),
                                 name=body.get("input_name") or f"{body['name']}_input"))
        for entry in entries:
            model.add(_deserialize_layer(entry, custom_objects))
        return model
    created, produced = {}, {}
    for entry in body["layers"]:
        layer = _deserialize_layer(entry, custom_objects)
        created[entry["name"]] = (layer, entry.get("inbound_nodes", []))
        if isinstance(layer, InputLayer):
            produced[(entry["name"], 0, 0)] = layer.output
    pending = [(name, k) for name, (_, nodes) in created.items() for k in range(len(nodes))]
    progress = True
    while pending and progress:
        progress = False
        for name, k in list(pending):
            layer, nodes = created[name]
            if k > 0 and (name, k - 1) in pending:
                continue
            refs = nodes[k]["inputs"]
            if not all(tuple(r) in produced for r in refs):
                continue
            tensors = [produced[tuple(r)] for r in refs]
            out = layer(tensors if nodes[k].get("list") else tensors[0])
            outs = out if isinstance(out, list) else [out]
            for i, t in enumerate(outs):
                produced[(name, k, i)] = t
            pending.remove((name, k))
            progress = True
    if pending:
        raise DeepkitError(f"model file: cannot reconnect layers {sorted(set(n for n, _ in pending))}"
                           " (their inputs are missing)")
    inputs = [produced[tuple(r)] for r in body["input_layers"]]
    outputs = [produced[tuple(r)] for r in body["output_layers"]]
    return Model(inputs if len(inputs) > 1 else inputs[0],
                 outputs if len(outputs) > 1 else outputs[0], name=body["name"])


def model_from_json(json_string, custom_objects=None):
    """Rebuild a model (without weights) from ``model.to_json()``."""
    return model_from_config(json.loads(json_string), custom_objects)


def load_model(path, custom_objects=None, compile=True):
    """Rebuild a model saved by ``model.save``: architecture, weights, optimizer.

    Args:
        path: A file written by ``model.save`` or by the Caffe converter.
        custom_objects: ``{name: class or function}`` for custom layers,
            losses and metrics.
        compile: Compile the model as it was saved (with its optimizer state).

    Returns:
        The model.
    """
    fmt = saving.file_format(path)
    if fmt == SYMBOL_MODEL_FORMAT:
        return load_symbol_model(path)
    with saving.open_hdf5(path, "load_model") as f:
        if fmt != saving.FORMAT:
            raise DeepkitError(f"load_model: {path} is not a deepkit model file (it may be a "
                               "weights-only file: use model.load_weights)")
        model = model_from_config(json.loads(f.attrs["model_config"]), custom_objects)
        saving.read_weights(f["weights"], model, False, path)
        training = f.attrs.get("training_config")
        if training is not None and compile:
            model.compile_from_config(json.loads(training), custom_objects)
            state = saving.read_optimizer_state(f)
            if state is not None:
                model.initialize_weights()
                model.optimizer.set_state(state, model.weights)
    return model
