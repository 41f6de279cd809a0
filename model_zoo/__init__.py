"""The model zoo: classic architectures, their registry, pre-trained weights, fine-tuning.

``get_model(name, pretrained=True, num_classes=K, freeze='features')`` gives a
model ready to fine-tune in one call: the old classifier replaced by a new one
(truly gone: its weights are neither in the model nor in anything it saves),
the features frozen (BatchNormalization in them runs in inference mode), and
the new head learning faster (``head_lr_mult``). Preprocessing travels with the
model: ``model.preprocess(images)``.
"""
import warnings

import h5py
import numpy as np

from deepkit.models import load_model
from deepkit_engine.base import DeepkitError, did_you_mean

from . import registry, weights_store
from .architectures import BUILDERS, HEAD_LAYERS
from .registry import REGISTRY, ModelInfo, info, names

__all__ = ["get_model", "list_models", "info", "ModelInfo", "REGISTRY", "BUILDERS",
           "UnfreezeAt", "Preprocessing", "cli"]


def list_models():
    """Zoo names (pre-trained entries) and bare architectures."""
    return {"pretrained": names(), "architectures": sorted(BUILDERS)}


class Preprocessing:
    """Turn raw images into what a model expects: channel order, range, mean/std.

    Args:
        channel_order: ``'RGB'``, ``'BGR'`` (Caffe models) or ``'gray'``.
        range: 255.0 (the model takes 0-255 pixels) or 1.0 (0-1).
        mean, std: Per-channel values in the model's range, or None.
    """

    def __init__(self, channel_order="RGB", range=1.0, mean=None, std=None):
        self.channel_order, self.range = channel_order, float(range)
        self.mean = None if mean is None else np.asarray(mean, np.float32)
        self.std = None if std is None else np.asarray(std, np.float32)
        self._warned = False

    def __call__(self, images, input_order="RGB"):
        """NCHW float32 from uint8 (0-255) or float images in ``input_order``."""
        x = np.asarray(images)
        scale = self.range / 255.0 if x.dtype == np.uint8 or x.max(initial=0) > 1.5 \
            else self.range
        x = x.astype(np.float32) * scale
        if x.ndim == 3 and self.channel_order == "gray":
            x = x[:, None]
        if self.channel_order in ("RGB", "BGR") and input_order != self.channel_order \
                and x.shape[1] == 3:
            x = x[:, ::-1]
        if self.mean is not None:
            x = x - self.mean.reshape(1, -1, *([1] * (x.ndim - 2)))
        if self.std is not None:
            x = x / self.std.reshape(1, -1, *([1] * (x.ndim - 2)))
        return np.ascontiguousarray(x)

    def check(self, x):
        """Warn once when the input's range looks wrong for the model."""
        if self._warned or not hasattr(x, "max"):
            return
        top = float(np.max(x)) if np.size(x) else 0.0
        if self.range == 255.0 and self.mean is None and 0 < top <= 1.0:
            self._warned = True
            warnings.warn("inputs are in [0, 1] but this model expects 0-255 pixels; use "
                          "model.preprocess(images)", UserWarning, stacklevel=3)
        elif self.range == 1.0 and self.mean is None and top > 1.5:
            self._warned = True
            warnings.warn(f"inputs reach {top:g} but this model expects values in [0, 1]; use "
                          "model.preprocess(images)", UserWarning, stacklevel=3)

    def as_dict(self):
        return {"channel_order": self.channel_order, "range": self.range,
                "mean": None if self.mean is None else self.mean.tolist(),
                "std": None if self.std is None else self.std.tolist()}


def _attach_preprocessing(model, prep):
    model.preprocessing = prep
    model.preprocess = prep
    original = model.predict

    def predict(x, *args, **kwargs):
        prep.check(x)
        return original(x, *args, **kwargs)
    predict.__doc__ = original.__doc__
    model.predict = predict


def _weight_layers(model):
    return [layer for layer in model.layers if layer.params]


def _freeze(model, freeze, head, entry_name):
    if freeze is None or freeze is False:
        return
    layers = _weight_layers(model)
    names_ = [layer.name for layer in model.layers]
    if freeze == "features":
        targets = [layer for layer in layers if layer.name not in head]
    elif isinstance(freeze, int) and not isinstance(freeze, bool):
        if freeze < 0 or freeze > len(layers):
            raise ValueError(f"freeze={freeze}: '{entry_name}' has {len(layers)} layers with "
                             "weights")
        targets = layers[:freeze]
    elif isinstance(freeze, (list, tuple)):
        unknown = [n for n in freeze if n not in names_]
        if unknown:
            hint = did_you_mean(unknown[0], names_)
            raise ValueError(f"freeze: no layer named {unknown}{hint} in '{entry_name}'; its "
                             f"layers are: {', '.join(names_)}")
        targets = [model.get_layer(n) for n in freeze]
    else:
        raise ValueError(f"freeze must be 'features', a list of layer names or a number of "
                         f"layers; got {freeze!r}")
    for layer in targets:
        layer.trainable = False


def get_model(name, pretrained=True, num_classes=None, freeze=None, head_lr_mult=1.0,
              include_top=True, pooling=None, input_shape=None, download=None):
    """A zoo model, pre-trained and ready to fine-tune, in one call.

    Args:
        name: A zoo entry (``lenet_mnist``) or a bare architecture (``resnet50``,
            random weights only).
        pretrained: Load the entry's weights (looked up in ``$DEEPKIT_HOME/models``,
            then the package, then downloaded).
        num_classes: Replace the classifier by a new one with this many classes.
        freeze: ``'features'`` (everything but the new head), a list of layer
            names, or N (the first N layers with weights).
        head_lr_mult: Learning-rate multiplier of the (new) head's parameters.
        include_top: False gives the feature extractor (no classifier).
        pooling: With ``include_top=False``: ``'avg'`` or ``'max'`` pools the features.
        input_shape: Another input size, where the architecture allows it.
    """
    if name in REGISTRY:
        entry = REGISTRY[name]
    elif name in BUILDERS:
        if pretrained:
            raise DeepkitError(f"'{name}' is an architecture without pre-trained weights in "
                               f"the zoo; use pretrained=False, or one of: {', '.join(names())}")
        entry = ModelInfo(name, name, None, None, head=HEAD_LAYERS.get(name, ()))
    else:
        info(name)  # raises with the did-you-mean
    if num_classes is not None and not include_top:
        raise ValueError("num_classes replaces the classifier, but include_top=False removes it: "
                         "give one or the other (include_top=False, pooling='avg' for features; "
                         "num_classes=K for a new classifier)")
    if entry.architecture == "converted":  # imported with `deepkit zoo import-caffe`
        if num_classes is not None or freeze or not include_top:
            raise DeepkitError(f"'{name}' is a converted Caffe graph: it can be used as is "
                               "(predict); to fine-tune, build its architecture from layers and "
                               "load the weights with model_zoo.caffe_import")
        return load_model(weights_store.find_weights(entry, download))
    builder = BUILDERS[entry.architecture]
    kwargs = dict(entry.builder_kwargs)
    if input_shape is not None or entry.input_shape is not None:
        kwargs["input_shape"] = tuple(input_shape or entry.input_shape)
    classes = num_classes if num_classes is not None else entry.num_classes
    if classes is not None:
        kwargs["num_classes"] = classes
    model = builder(include_top=include_top, pooling=pooling, **kwargs)
    head = tuple(entry.head)
    if pretrained:
        path = weights_store.find_weights(entry, download)
        replaced = num_classes is not None and num_classes != entry.num_classes
        _load_backbone(model, path, skip=head if replaced or not include_top else ())
    if head_lr_mult != 1.0 and include_top:
        for layer_name in head:
            for p in model.get_layer(layer_name).params.values():
                p.lr_mult = float(head_lr_mult)
    _freeze(model, freeze, head if include_top else (), name)
    prep = entry.preprocessing or {}
    _attach_preprocessing(model, Preprocessing(**prep) if prep else Preprocessing())
    model.zoo_entry = entry
    return model


def _load_backbone(model, path, skip):
    """Load weights by layer name, leaving out the layers in ``skip`` (a replaced head)."""
    with h5py.File(path, "r") as f:
        group = f["weights"]
        model.initialize_weights()
        missing = []
        for layer in _weight_layers(model):
            if layer.name in skip:
                continue
            if layer.name not in group:
                missing.append(layer.name)
                continue
            for short, p in layer.params.items():
                value = group[layer.name][short][()]
                if value.shape != p.shape:
                    raise DeepkitError(f"zoo weights {path}: '{layer.name}/{short}' has shape "
                                       f"{value.shape}, the model {p.shape}")
                p.data[:] = value.astype(p.dtype)
        if missing:
            raise DeepkitError(f"zoo weights {path} lack layers {missing}")


from .finetune import UnfreezeAt  # noqa: E402
from .cli import cli  # noqa: E402
from .caffe_import import load_local_entries as _load_local_entries  # noqa: E402

_load_local_entries()

