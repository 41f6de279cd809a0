"""AlexNet and CaffeNet as in Caffe's ``bvlc_alexnet`` and ``bvlc_reference_caffenet``."""
from deepkit import layers

from .blocks import CF, check_args, conv, features, image_input, lrn, model, pool, top

__all__ = ["alexnet", "caffenet"]

_ARGS = """
    Args:
        num_classes: Width of the classifier ``fc8``.
        input_shape: ``(channels, rows, cols)``, default Caffe's ``(3, 227,
            227)``; at least 39x39.
        include_top: Keep ``fc6`` ... ``fc8``; False ends at ``pool5``.
        pooling: With ``include_top=False``: None (the feature map), ``'avg'``
            or ``'max'`` (global pooling to a vector).
        name: Model name (default: the builder's name).
        classifier_activation: Activation of ``prob``; None returns logits.

    Returns:
        A :class:`deepkit.Model`.
    """


def _alexnet(builder, norm_first, num_classes, input_shape, include_top, pooling, name,
             classifier_activation):
    shape = check_args(builder, num_classes, input_shape, include_top, pooling, (3, 227, 227),
                       min_size=39)
    inputs = image_input(shape)
    x = inputs
    for i, (filters, kernel, stride, pad, groups) in enumerate(
            [(96, 11, 4, 0, 1), (256, 5, 1, 2, 2)], 1):
        x = conv(x, filters, kernel, f"conv{i}", strides=stride, pad=pad, groups=groups)
        if norm_first:  # AlexNet: norm, then pool
            x = pool(lrn(x, f"norm{i}"), "max", 3, 2, f"pool{i}")
        else:  # CaffeNet: pool, then norm
            x = lrn(pool(x, "max", 3, 2, f"pool{i}"), f"norm{i}")
    x = conv(x, 384, 3, "conv3", pad=1)
    x = conv(x, 384, 3, "conv4", pad=1, groups=2)
    x = conv(x, 256, 3, "conv5", pad=1, groups=2)
    x = pool(x, "max", 3, 2, "pool5")
    if not include_top:
        return model(inputs, features(x, pooling), name or builder)
    x = layers.Flatten(name="flatten", data_format=CF)(x)
    for i in (6, 7):
        x = layers.Dense(4096, activation="relu", name=f"fc{i}")(x)
        x = layers.Dropout(0.5, name=f"drop{i}")(x)
    return model(inputs, top(x, num_classes, "fc8", classifier_activation), name or builder)


def alexnet(num_classes=1000, input_shape=None, include_top=True, pooling=None, name=None,
            classifier_activation="softmax"):
    """AlexNet as Caffe's ``bvlc_alexnet``: five convolutions (two grouped), three fc.

    Layers (Caffe's names): ``conv1`` (96@11x11, stride 4), ``norm1`` (LRN 5,
    alpha 1e-4, beta 0.75, k 1), ``pool1``, ``conv2`` (256@5x5, groups 2),
    ``norm2``, ``pool2``, ``conv3`` (384@3x3), ``conv4`` (384@3x3, groups 2),
    ``conv5`` (256@3x3, groups 2), ``pool5``, ``flatten``, ``fc6``, ``drop6``,
    ``fc7``, ``drop7`` (4096, ReLU, dropout 0.5), ``fc8`` (the classifier),
    ``prob``. Convolutions have ReLU; pooling is 3x3 stride 2 with Caffe's
    rounding up. 60,965,224 parameters with 1000 classes.
    """
    return _alexnet("alexnet", True, num_classes, input_shape, include_top, pooling, name,
                    classifier_activation)


def caffenet(num_classes=1000, input_shape=None, include_top=True, pooling=None, name=None,
             classifier_activation="softmax"):
    """CaffeNet (``bvlc_reference_caffenet``): AlexNet with pooling before LRN.

    The same layers and parameters as :func:`alexnet` (60,965,224), but
    ``pool1``/``pool2`` come before ``norm1``/``norm2``, as in Caffe's
    reference network.
    """
    return _alexnet("caffenet", False, num_classes, input_shape, include_top, pooling, name,
                    classifier_activation)


for _builder in (alexnet, caffenet):
    if _builder.__doc__:  # None under python -OO
        _builder.__doc__ += _ARGS
