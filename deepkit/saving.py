"""Model files: one HDF5 file, no pickle, every write atomic.

A model file holds the architecture (JSON, as ``get_config``), the weights
(``weights/<layer>/<param>``), the optimizer's state and the training
configuration. Weights files hold only the weights. Files are written under
a temporary name and renamed into place, so a failed save never damages an
existing file.

This module reads and writes the files; rebuilding a model from one is
:func:`deepkit.models.load_model`'s job.
"""
import json
import os
import warnings

import h5py

from deepkit_engine.base import DeepkitError
from deepkit_engine.fileio import atomic_path

__all__ = ["save_model", "save_weights", "load_weights", "read_weights", "read_optimizer_state",
           "open_hdf5", "file_format", "register_serializable", "registered_objects",
           "atomic_write", "FORMAT", "VERSION"]

FORMAT = "deepkit.model"
VERSION = 1

#: ``atomic_write(path)``: a temporary path renamed onto ``path`` when the block succeeds.
atomic_write = atomic_path

_REGISTERED = {}


def register_serializable(cls):
    """Make a custom layer class loadable by ``load_model`` without ``custom_objects``."""
    _REGISTERED[cls.__name__] = cls
    return cls


def registered_objects():
    """``{class name: class}`` of what :func:`register_serializable` registered."""
    return dict(_REGISTERED)


# -- weights ---------------------------------------------------------------------------

def _write_weights(group, model):
    model.initialize_weights()
    for layer in model.weight_layers():
        g = group.create_group(layer.name)
        g.attrs["param_names"] = json.dumps(list(layer.params))
        for short, p in layer.params.items():
            g.create_dataset(short, data=p.data.asnumpy())


def read_weights(group, model, skip_mismatch, source):
    """Assign the weights stored in ``group`` to ``model``'s parameters, by layer name."""
    model.initialize_weights()
    layers = {layer.name: layer for layer in model.weight_layers()}
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
        warnings.warn(f"load_weights({source}): skipped:\n  " + "\n  ".join(problems),
                      stacklevel=3)
    return loaded


def save_weights(model, path):
    """Write the model's weights to ``path`` (HDF5), grouped by layer name."""
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = "deepkit.weights"
            f.attrs["version"] = VERSION
            _write_weights(f.create_group("weights"), model)


def open_hdf5(path, what):
    """Open an existing HDF5 file for reading; clear errors naming ``what`` and the path."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what}: no such file: {path}")
    if not h5py.is_hdf5(path):
        raise DeepkitError(f"{what}: {path} is not an HDF5 file")
    return h5py.File(path, "r")


def load_weights(model, path, skip_mismatch=False):
    """Load weights by layer name from a weights or model file."""
    with open_hdf5(path, "load_weights") as f:
        if "weights" not in f:
            raise DeepkitError(f"load_weights: {path} holds no deepkit weights")
        read_weights(f["weights"], model, skip_mismatch, path)


# -- whole models ----------------------------------------------------------------------

def save_model(model, path, include_optimizer=True):
    """Architecture, weights, optimizer state and training config in one HDF5 file."""
    config = model.get_config()
    training = model.get_compile_config()
    with atomic_path(path) as tmp:
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


def file_format(path, what="load_model"):
    """The ``format`` attribute of a deepkit HDF5 file (``'deepkit.model'``, ...), or None."""
    with open_hdf5(path, what) as f:
        fmt = f.attrs.get("format")
    return fmt.decode() if isinstance(fmt, bytes) else fmt


def read_optimizer_state(f):
    """The optimizer state saved in the open model file ``f``, or None."""
    if "optimizer" not in f:
        return None
    g = f["optimizer"]
    return {"iterations": int(g.attrs["iterations"]),
            "micro_step": int(g.attrs.get("micro_step", 0)),
            "states": {k: [g[f"states/{k}/{i}"][()] for i in range(len(g[f"states/{k}"]))]
                       for k in g.get("states", {})},
            "accumulators": {k: g[f"accumulators/{k}"][()] for k in g.get("accumulators", {})}}
