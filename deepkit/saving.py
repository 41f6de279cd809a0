"""Model files: one HDF5 file, no pickle, every write atomic.

A model file holds the architecture (JSON, as ``get_config``), the weights
(``weights/<layer>/<param>``), the optimizer's state and the training
configuration. Weights files hold only the weights. Files are written under
a temporary name and renamed into place, so a failed save never damages an
existing file.

Every dataset carries a CRC-32 checksum (``crc32`` attribute) that loading
verifies, so a flipped bit is reported instead of loaded. Loading reads
through :class:`deepkit_engine.hdf5_reading.SafeFile`: shapes and dtypes are
checked against the model before any data is read, links out of the file and
non-numeric datasets are refused, and every failure on a damaged file is a
:class:`FileFormatError` naming the file and the object inside it. Files
written before checksums existed load without that check.

A save killed before its rename leaves a ``.tmp-<pid>-...`` file next to the
target; the next save to that path removes those of dead processes, and
:func:`remove_leftovers` does it on demand.

This module reads and writes the files; rebuilding a model from one is
:func:`deepkit.models.load_model`'s job.
"""
import json
import os
import warnings

import h5py

from deepkit_engine.base import DeepkitError, FileFormatError
from deepkit_engine.fileio import atomic_path, remove_leftovers
from deepkit_engine.hdf5_reading import SafeFile, write_dataset

__all__ = ["check_model_path", "MODEL_EXTENSIONS", "save_model", "save_weights", "load_weights", "read_weights", "read_optimizer_state",
           "open_hdf5", "file_format", "register_serializable", "registered_objects",
           "atomic_write", "FORMAT", "VERSION",
           "FileFormatError", "DeepkitError", "warn_unchecked",
           "remove_leftovers"]

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
            write_dataset(g, short, p.data.asnumpy())


def read_weights(group, model, skip_mismatch, source):
    """Assign the weights stored in the file to ``model``'s parameters, by layer name.

    Args:
        group: The open file (a :class:`SafeFile`; its ``weights`` group is read).
        model: The model to fill.
        skip_mismatch: Load what matches and warn about the rest.
        source: The file's path, for messages.

    Returns:
        The number of arrays loaded.
    """
    reader = group
    model.initialize_weights()
    layers = {layer.name: layer for layer in model.weight_layers()}
    stored = set(reader.keys("weights"))
    problems, loaded = [], 0
    for name, layer in layers.items():
        if name not in stored:
            problems.append(f"layer '{name}' is not in the file")
            continue
        members = set(reader.keys(f"weights/{name}"))
        for short, p in layer.params.items():
            if short not in members:
                problems.append(f"'{name}/{short}' is not in the file")
                continue
            dataset = reader.node(f"weights/{name}/{short}", h5py.Dataset)
            if tuple(dataset.shape or ()) != tuple(p.shape):
                problems.append(f"'{name}/{short}': file has shape {tuple(dataset.shape or ())}"
                                f", the model {p.shape}")
                continue
            value = reader.read(f"weights/{name}/{short}", p.shape)
            p.data[:] = value.astype(p.dtype)
            loaded += 1
    extra = [n for n in stored if n not in layers]
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


def warn_unchecked(reader):
    """Warn once when ``reader`` loaded arrays from a file written without checksums."""
    if reader.unchecked:
        warnings.warn(f"{reader.path} was written before model files carried checksums: "
                      f"{reader.unchecked} arrays were loaded without verifying them (save the "
                      "model again to add checksums)", stacklevel=3)


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
    with SafeFile(path, "load_weights") as f:
        if f.node("weights", h5py.Group, required=False) is None:
            raise FileFormatError(f.path, "weights", "load_weights: the file holds no deepkit "
                                                     "weights")
        read_weights(f, model, skip_mismatch, path)
    warn_unchecked(f)


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
                f.attrs["optimizer_saved"] = bool(include_optimizer)
                if include_optimizer:
                    state = model.optimizer.get_state()
                    g = f.create_group("optimizer")
                    g.attrs["iterations"] = state["iterations"]
                    g.attrs["micro_step"] = state["micro_step"]
                    for pname, arrays in state["states"].items():
                        sg = g.create_group(f"states/{pname}")
                        for i, a in enumerate(arrays):
                            write_dataset(sg, str(i), a)
                    accumulators = g.create_group("accumulators")
                    for pname, a in state["accumulators"].items():
                        write_dataset(accumulators, pname, a)


#: File extensions ``Model.save`` writes, and what it says about the others.
MODEL_EXTENSIONS = (".h5", ".hdf5")
_OTHER_FORMATS = {
    ".keras": "Keras 3 archives (.keras) are read by deepkit.models.load_model but not written",
    ".onnx": "ONNX export is not part of deepkit yet",
}


def check_model_path(path):
    """Refuse a model path whose extension is not one ``Model.save`` writes (naming why)."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix in MODEL_EXTENSIONS:
        return
    reason = _OTHER_FORMATS.get(suffix, f"'{suffix}' is not a model format deepkit knows"
                                if suffix else "the path has no extension")
    raise ValueError(f"Model.save({os.fspath(path)!r}): {reason}; save as .h5 or .hdf5 "
                     "(deepkit's HDF5 model file: architecture, weights, optimizer state), or "
                     "use save_weights() for the weights alone")


def file_format(path, what="load_model"):
    """The ``format`` attribute of a deepkit HDF5 file (``'deepkit.model'``, ...), or None."""
    with SafeFile(path, what) as f:
        fmt = f.attr("format")
    return fmt if isinstance(fmt, str) else None


def read_optimizer_state(f, model=None):
    """The optimizer state saved in the open model file ``f`` (a :class:`SafeFile`), or None.

    Counts must be non-negative integers and each state array must have its
    parameter's shape (checked before it is read); with ``model`` given,
    arrays of parameters the model does not have are skipped unread.
    """
    saved = f.attr("optimizer_saved")
    if f.node("optimizer", h5py.Group, required=False) is None:
        if saved is not None and bool(saved):
            raise f.error("optimizer", "is missing although the model was saved with its "
                                       "optimizer; load with compile=False to skip it")
        return None
    params = {p.name: p for p in model.weights} if model is not None else {}
    states = {}
    names = f.keys("optimizer/states") if f.node("optimizer/states", required=False) else []
    for name in names:
        param = params.get(name)
        if model is not None and param is None:
            continue
        slots = f.keys(f"optimizer/states/{name}")
        if sorted(slots) != [str(i) for i in range(len(slots))]:
            raise f.error(f"optimizer/states/{name}", f"has members {sorted(slots)}, expected "
                                                      "0, 1, ...")
        shape = param.shape if param is not None else None
        states[name] = [f.read(f"optimizer/states/{name}/{i}", shape)
                        for i in range(len(slots))]
    accumulators = {}
    names = f.keys("optimizer/accumulators") \
        if f.node("optimizer/accumulators", required=False) else []
    for name in names:
        param = params.get(name)
        if model is not None and param is None:
            continue
        accumulators[name] = f.read(f"optimizer/accumulators/{name}",
                                    param.shape if param is not None else None)
    return {"iterations": f.int_attr("optimizer", "iterations", minimum=0),
            "micro_step": f.int_attr("optimizer", "micro_step", default=0, minimum=0),
            "states": states, "accumulators": accumulators}
