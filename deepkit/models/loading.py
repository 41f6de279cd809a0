"""Rebuilding models from files and configs: ``load_model``, ``model_from_config``/``_json``.

``load_model`` reads a whole-model file (architecture, weights, optimizer
state) or a symbol-model file (converted Caffe nets): the ``format``
attribute of the file says which.
"""
import json
import os

from deepkit_engine.base import DeepkitError, FileFormatError
from deepkit_engine.hdf5_reading import DAMAGE_ERRORS, SafeFile

from .. import layers as layers_mod
from .. import saving
from ..layers.base import InputLayer
from .functional import Model
from .keras_format import is_keras_file, load_keras_model
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
    if isinstance(cls, type) and issubclass(cls, layers_mod.Lambda):  # it names a function
        return cls.from_config(dict(entry["config"]), custom_objects)
    return cls.from_config(dict(entry["config"]))


def model_from_config(config, custom_objects=None):
    """Rebuild a model (without weights) from what ``model.get_config()`` returned."""
    body = config["config"]
    if config["class_name"] == "Sequential":
        model = Sequential(name=body["name"])
        entries = body["layers"]
        implicit = f"{body['name']}_input"
        input_name = body.get("input_name") or implicit
        if entries and entries[0]["class_name"] != "InputLayer" and input_name != implicit:
            model.add(InputLayer(shape=tuple(body["input_shape"]), name=input_name))
        for entry in entries:
            model.add(_deserialize_layer(entry, custom_objects))
        if not model.built and body.get("input_shape") is not None:
            model.build((None,) + tuple(body["input_shape"]))  # as it was: an implicit input
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
        path: A file written by ``model.save`` or by the Caffe converter, or a
            Keras model file (``.keras``, or ``.h5`` from Keras 3 or Keras 2).
        custom_objects: ``{name: class or function}`` for custom layers,
            losses and metrics.
        compile: Compile the model as it was saved (with its optimizer state).

    Returns:
        The model.
    """
    if _is_keras_file(path):
        return load_keras_model(path)
    fmt = saving.file_format(path)
    if fmt == SYMBOL_MODEL_FORMAT:
        return load_symbol_model(path)
    with SafeFile(path, "load_model") as f:
        if fmt != saving.FORMAT:
            raise f.error("/@format", f"load_model: {path} is not a deepkit model file (it "
                                      "may be a weights-only file: use model.load_weights)")
        model = _rebuild(f, "model_config", lambda config: model_from_config(config,
                                                                             custom_objects))
        saving.read_weights(f, model, False, path)
        if compile and f.attr("training_config") is not None:
            _rebuild(f, "training_config",
                     lambda config: model.compile_from_config(config, custom_objects))
            _restore_optimizer(f, model)
    saving.warn_unchecked(f)
    return model


def _is_keras_file(path):
    """:func:`is_keras_file`, with a damaged file reported as one."""
    try:
        return is_keras_file(path)
    except FileNotFoundError:
        raise
    except DAMAGE_ERRORS as err:
        raise FileFormatError(os.fspath(path), None, f"the file is damaged "
                                                     f"({type(err).__name__}: {err})") from err


def _rebuild(f, key, build):
    """``build(config)`` on the JSON attribute ``key``; a config that cannot be built is damage."""
    config = f.json_attr(key)
    try:
        return build(config)
    except FileFormatError:
        raise
    except DeepkitError as err:  # an unknown layer class, a wiring that cannot be rebuilt
        raise f.error(f"/@{key}", str(err)) from err
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError) as err:
        raise f.error(f"/@{key}", f"does not describe a model ({type(err).__name__}: {err})") \
            from err


def _restore_optimizer(f, model):
    """Load the saved optimizer state into ``model.optimizer``, every slot checked."""
    state = saving.read_optimizer_state(f, model)
    if state is None:
        return
    model.initialize_weights()
    optimizer = model.optimizer
    if state["iterations"] > 0:
        for p in model.weights:
            if not p.trainable or p.name in state["states"]:
                continue
            if optimizer.create_state(p.data):
                raise f.error(f"optimizer/states/{p.name}",
                              f"is missing: {type(optimizer).__name__} keeps state for every "
                              f"trained parameter and the file says it ran "
                              f"{state['iterations']} steps; load with compile=False to skip "
                              "the optimizer")
    try:
        optimizer.set_state(state, model.weights)
    except ValueError as err:
        raise f.error("optimizer", str(err)) from err
