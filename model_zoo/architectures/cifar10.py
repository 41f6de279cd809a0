"""Caffe's CIFAR-10 examples: ``cifar10_quick`` and ``cifar10_full`` (3x32x32 inputs)."""
from deepkit import layers

from .blocks import (CF, WithinChannelLRN, check_args, conv, features, image_input, model,
                     pool, top)

__all__ = ["cifar10_quick", "cifar10_full"]


def _stem(inputs, full):
    """conv1 / pool1 (max) / relu1 [/ norm1], conv2 / relu2 / pool2 (avg) [/ norm2], conv3 ..."""
    x = conv(inputs, 32, 5, "conv1", pad=2, activation=None)
    x = pool(x, "max", 3, 2, "pool1")
    x = layers.Activation("relu", name="relu1")(x)
    if full:
        x = WithinChannelLRN(3, alpha=5e-5, beta=0.75, name="norm1")(x)
    x = conv(x, 32, 5, "conv2", pad=2)
    x = pool(x, "avg", 3, 2, "pool2")
    if full:
        x = WithinChannelLRN(3, alpha=5e-5, beta=0.75, name="norm2")(x)
    x = conv(x, 64, 5, "conv3", pad=2)
    return pool(x, "avg", 3, 2, "pool3")


def _doc(builder):
    if builder.__doc__ is None:  # python -OO
        return builder
    builder.__doc__ += """
    Args:
        num_classes: Width of the classifier.
        input_shape: ``(channels, rows, cols)``, default ``(3, 32, 32)``; at
            least 8x8.
        include_top: Keep the fully connected layers; False ends at ``pool3``.
        pooling: With ``include_top=False``: None (the feature map), ``'avg'``
            or ``'max'`` (global pooling to a vector).
        name: Model name (default: the builder's name).
        classifier_activation: Activation of ``prob``; None returns logits.

    Returns:
        A :class:`deepkit.Model`.
    """
    return builder


@_doc
def cifar10_quick(num_classes=10, input_shape=None, include_top=True, pooling=None, name=None,
                  classifier_activation="softmax"):
    """Caffe's ``cifar10_quick``: three 5x5 convolutions, then fc 64 and the classifier.

    Layers (Caffe's names): ``conv1``, ``pool1`` (max), ``relu1``, ``conv2``
    (ReLU), ``pool2`` (avg), ``conv3`` (ReLU), ``pool3`` (avg), ``flatten``,
    ``ip1`` (64, linear as in Caffe), ``ip2`` (the classifier), ``prob``.
    Pooling rounds up as Caffe does (32 -> 16 -> 8 -> 4). 145,578 parameters.
    """
    shape = check_args("cifar10_quick", num_classes, input_shape, include_top, pooling,
                       (3, 32, 32), min_size=8)
    inputs = image_input(shape)
    x = _stem(inputs, full=False)
    if not include_top:
        return model(inputs, features(x, pooling), name or "cifar10_quick")
    x = layers.Dense(64, name="ip1")(layers.Flatten(name="flatten", data_format=CF)(x))
    return model(inputs, top(x, num_classes, "ip2", classifier_activation),
                 name or "cifar10_quick")


@_doc
def cifar10_full(num_classes=10, input_shape=None, include_top=True, pooling=None, name=None,
                 classifier_activation="softmax"):
    """Caffe's ``cifar10_full``: ``cifar10_quick`` with within-channel LRN and one fc layer.

    Layers (Caffe's names): ``conv1``, ``pool1`` (max), ``relu1``, ``norm1``,
    ``conv2`` (ReLU), ``pool2`` (avg), ``norm2``, ``conv3`` (ReLU), ``pool3``
    (avg), ``flatten``, ``ip1`` (the classifier), ``prob``. ``norm1`` and
    ``norm2`` are :class:`~model_zoo.architectures.blocks.WithinChannelLRN`
    (Caffe's ``WITHIN_CHANNEL``, local size 3, alpha 5e-5, beta 0.75).
    89,578 parameters.
    """
    shape = check_args("cifar10_full", num_classes, input_shape, include_top, pooling,
                       (3, 32, 32), min_size=8)
    inputs = image_input(shape)
    x = _stem(inputs, full=True)
    if not include_top:
        return model(inputs, features(x, pooling), name or "cifar10_full")
    return model(inputs, top(x, num_classes, "ip1", classifier_activation, flatten=True),
                 name or "cifar10_full")
