"""Caffe models into the zoo: convert, then map the weights onto zoo architectures.

``import_caffe`` converts any Caffe model into a converted-model file in the
local cache and registers it (``get_model(name)`` then loads it). For the
architectures the zoo builds itself (``cifar10_full``, ``lenet`` ...), whose
layer names are Caffe's, ``weights_from_conversion`` gives a weights file for
the layer-based model, so it can be fine-tuned like any other zoo model.
"""
import json

import numpy as np

from deepkit import caffe
from deepkit_engine.fileio import atomic_path

from . import registry, weights_store

__all__ = ["import_caffe", "weights_from_conversion", "load_local_entries"]


def import_caffe(name, prototxt, caffemodel, mean=None):
    """Convert and register ``name`` in ``$DEEPKIT_HOME/models``; returns the file path."""
    conversion = caffe.convert(prototxt, caffemodel, mean=mean)
    folder = weights_store.cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.h5"
    conversion.save(path)
    record = {"name": name, "file": path.name, "sha256": weights_store.sha256_of(path),
              "source": f"converted from {caffemodel} with {prototxt} by deepkit.caffe",
              "inputs": conversion.metadata.get("inputs"),
              "preprocessing": conversion.metadata.get("preprocessing")}
    with atomic_path(folder / f"{name}.zoo.json") as tmp:
        with open(tmp, "w") as f:
            json.dump(record, f, indent=2, default=str)
    load_local_entries()
    return path


def load_local_entries():
    """Register the converted models found in the local cache (``*.zoo.json``)."""
    folder = weights_store.cache_dir()
    if not folder.is_dir():
        return
    for meta in folder.glob("*.zoo.json"):
        record = json.loads(meta.read_text())
        if record["name"] in registry.REGISTRY:
            continue
        shape = (record.get("inputs") or [{}])[0].get("shape")
        registry.register(registry.ModelInfo(
            record["name"], "converted", None, tuple(shape[1:]) if shape else None, head=(),
            weights=record["file"], sha256=record["sha256"], source=record["source"],
            preprocessing={}, license="as the original Caffe model's"))


def weights_from_conversion(conversion, model, path):
    """Write the converted Caffe weights as a weights file for a layer-based zoo model.

    Layers are matched by name (the zoo keeps Caffe's layer names, with '/' and
    '-' as '_'); every weight of the model must be found, with the same shape.
    """
    params = dict(conversion.arg_params)
    params.update(conversion.aux_params)
    model.initialize_weights()
    missing = []
    for layer in model.layers:
        for short, p in layer.params.items():
            key = f"{layer.name}_{short}"
            value = params.get(key)
            if value is None:
                missing.append(key)
                continue
            value = np.asarray(value)
            if value.shape != p.shape:
                raise ValueError(f"'{key}': converted shape {value.shape}, model {p.shape}")
            p.data[:] = value.astype(p.dtype)
    if missing:
        raise ValueError(f"the conversion has no values for {missing}")
    model.save_weights(path)
    return path
