"""Saving and loading models: one HDF5 file, no pickle, every write atomic.

A model file holds the architecture (JSON, as ``get_config``), the weights
(``weights/<layer>/<param>``), the optimizer's state and the training
configuration. Weights files hold only the weights. Files are written under
a temporary name and renamed into place, so a failed save never damages an
existing file.
"""
import json

import h5py


from deepkit_engine.base import DeepkitError
from deepkit_engine.fileio import atomic_path

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "model_config",
           "model_from_config", "atomic_write", "register_serializable"]

_REGISTERED = {}


def register_serializable(cls):
    """Make a custom layer class loadable by ``load_model`` without ``custom_objects``."""
    _REGISTERED[cls.__name__] = cls
    return cls

FORMAT = "deepkit.model"
VERSION = 1

atomic_write = atomic_path


# -- architecture ----------------------------------------------------------------------

def _layer_entry(layer):
    from .models import Model  # noqa: PLC0415
    if isinstance(layer, Model):
        config = model_config(layer)
        return {"class_name": config["class_name"], "config": config["config"]}
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def model_config(model):
    """The architecture as JSON-ready data (Keras's layout)."""
    from .models import Sequential  # noqa: PLC0415
    model._require_built("be saved")
    if isinstance(model, Sequential):
        first = model._stack[0] if model._stack else None
        layers = [_layer_entry(layer) for layer in model._stack]
        return {"class_name": "Sequential",
                "config": {"name": model.name, "layers": layers,
                           "input_shape": list(model.inputs[0].shape[1:]),
                           "input_name": model.input_names[0] if first is None
                           or type(first).__name__ != "InputLayer" else None}}
    # functional: each layer with the calls made inside this model
    calls = {}
    for layer, node in model._calls:
        calls.setdefault(id(layer), []).append(node)
    tensor_ref = {}
    for t in model.inputs:
        tensor_ref[id(t)] = [t.layer.name, 0, 0]
    for layer, node in model._calls:
        k = calls[id(layer)].index(node)
        for i, t in enumerate(node.outputs):
            tensor_ref[id(t)] = [layer.name, k, i]
    layers = []
    for layer in model.layers:
        entry = _layer_entry(layer)
        entry["name"] = layer.name
        entry["inbound_nodes"] = [
            {"inputs": [tensor_ref[id(t)] for t in node.inputs], "list": node.list_input}
            for node in calls.get(id(layer), [])]
        layers.append(entry)
    return {"class_name": "Model",
            "config": {"name": model.name, "layers": layers,
                       "input_layers": [tensor_ref[id(t)] for t in model.inputs],
                       "output_layers": [tensor_ref[id(t)] for t in model.outputs]}}


def _layer_class(name, custom_objects):
    from . import layers as layers_mod  # noqa: PLC0415
    from . import models  # noqa: PLC0415
    for space in (custom_objects or {}, vars(layers_mod), vars(models), _REGISTERED):
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
    """Rebuild a model (without weights) from :func:`model_config`'s output."""
    from .layers.base import InputLayer  # noqa: PLC0415
    from .models import Model, Sequential  # noqa: PLC0415
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


# -- weights ---------------------------------------------------------------------------

def _write_weights(group, model):
    model._ensure_initialized()
    for layer in _weight_layers(model):
        g = group.create_group(layer.name)
        g.attrs["param_names"] = json.dumps(list(layer.params))
        for short, p in layer.params.items():
            g.create_dataset(short, data=p.data.asnumpy())


def _weight_layers(model):
    from .models import Model  # noqa: PLC0415
    out = []
    for layer in model.layers:
        if isinstance(layer, Model):
            out.extend(_weight_layers(layer))
        elif layer.params:
            out.append(layer)
    return out


def _read_weights(group, model, skip_mismatch, source):
    model._ensure_initialized()
    layers = {layer.name: layer for layer in _weight_layers(model)}
    problems, loaded = [], 0
    for name, layer in layers.items():
        if name not in group:
            problems.append(f"layer '{name}' is not in the file")
            continue
        g = group[name]
        for short, p in layer.params.items():
            if short not in g:
                problems.append(f"'{name}/{short}' is not in the file")
                continue
            value = g[short][()]
            if value.shape != p.shape:
                problems.append(f"'{name}/{short}': file has shape {value.shape}, the model "
                                f"{p.shape}")
                continue
            p.data[:] = value.astype(p.dtype)
            loaded += 1
    extra = [n for n in group if n not in layers]
    if extra:
        problems.append(f"layers in the file but not in the model: {extra}")
    if problems and not skip_mismatch:
        raise DeepkitError(f"weights in {source} do not match the model "
                           f"(pass skip_mismatch=True to load what matches):\n  "
                           + "\n  ".join(problems))
    if problems:
        import warnings  # noqa: PLC0415
        warnings.warn(f"load_weights({source}): skipped:\n  " + "\n  ".join(problems),
                      stacklevel=3)
    return loaded


def save_weights(model, path):
    """Write the model's weights to ``path`` (HDF5), grouped by layer name."""
    with atomic_write(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = "deepkit.weights"
            f.attrs["version"] = VERSION
            _write_weights(f.create_group("weights"), model)


def _open(path, what):
    import os  # noqa: PLC0415
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what}: no such file: {path}")
    if not h5py.is_hdf5(path):
        raise DeepkitError(f"{what}: {path} is not an HDF5 file")
    return h5py.File(path, "r")


def load_weights(model, path, skip_mismatch=False):
    """Load weights by layer name from a weights or model file."""
    with _open(path, "load_weights") as f:
        if "weights" not in f:
            raise DeepkitError(f"load_weights: {path} holds no deepkit weights")
        _read_weights(f["weights"], model, skip_mismatch, path)


# -- whole models ----------------------------------------------------------------------

def _training_config(model):
    from . import losses, metrics, optimizers  # noqa: PLC0415
    if model.optimizer is None:
        return None
    return {"optimizer": optimizers.serialize(model.optimizer),
            "loss": {name: (losses.serialize(l) if l is not None else None)
                     for name, l in zip(model.output_names, model._losses)},
            "metrics": {name: [metrics.serialize(m) for m in ms]
                        for name, ms in zip(model.output_names, model._metrics)},
            "loss_weights": dict(zip(model.output_names, model._loss_weights))}


def save_model(model, path, include_optimizer=True):
    """Architecture, weights, optimizer state and training config in one HDF5 file."""
    config = model_config(model)
    training = _training_config(model)
    with atomic_write(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["version"] = VERSION
            f.attrs["model_config"] = json.dumps(config)
            _write_weights(f.create_group("weights"), model)
            if training is not None:
                f.attrs["training_config"] = json.dumps(training)
                if include_optimizer:
                    state = model.optimizer.get_state()
                    g = f.create_group("optimizer")
                    g.attrs["iterations"] = state["iterations"]
                    g.attrs["micro_step"] = state["micro_step"]
                    for pname, arrays in state["states"].items():
                        sg = g.create_group(f"states/{pname}")
                        for i, a in enumerate(arrays):
                            sg.create_dataset(str(i), data=a)
                    for pname, a in state["accumulators"].items():
                        g.create_dataset(f"accumulators/{pname}", data=a)


def load_model(path, custom_objects=None, compile=True):
    """Rebuild a model saved by ``model.save``: architecture, weights, optimizer."""
    with _open(path, "load_model") as f:
        fmt = f.attrs.get("format")
    if fmt == "deepkit.symbol_model":
        from .symbol_model import load_symbol_model  # noqa: PLC0415
        return load_symbol_model(path)
    with _open(path, "load_model") as f:
        if f.attrs.get("format") != FORMAT:
            raise DeepkitError(f"load_model: {path} is not a deepkit model file (it may be a "
                               "weights-only file: use model.load_weights)")
        model = model_from_config(json.loads(f.attrs["model_config"]), custom_objects)
        _read_weights(f["weights"], model, False, path)
        training = f.attrs.get("training_config")
        if training is not None and compile:
            from . import losses, metrics, optimizers  # noqa: PLC0415
            training = json.loads(training)
            model.compile(
                optimizer=optimizers.get(training["optimizer"]),
                loss={k: (losses.get(v, custom_objects) if v is not None else None)
                      for k, v in training["loss"].items()},
                metrics={k: [metrics.get(m, custom_objects) if isinstance(m, dict) else m
                             for m in ms] for k, ms in training["metrics"].items()},
                loss_weights=training["loss_weights"])
            if "optimizer" in f:
                g = f["optimizer"]
                state = {"iterations": int(g.attrs["iterations"]),
                         "micro_step": int(g.attrs.get("micro_step", 0)),
                         "states": {k: [g[f"states/{k}/{i}"][()]
                                        for i in range(len(g[f"states/{k}"]))]
                                    for k in g.get("states", {})},
                         "accumulators": {k: g[f"accumulators/{k}"][()]
                                          for k in g.get("accumulators", {})}}
                model._ensure_initialized()
                model.optimizer.set_state(state, model._all_params())
    return model


