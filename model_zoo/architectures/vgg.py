"""VGG 11/13/16/19 (configurations A, B, D, E), with and without BatchNorm."""
from deepkit import layers

from .blocks import CF, check_args, conv, features, image_input, model, pool, top

__all__ = ["vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"]

#: Convolutions per block (64, 128, 256, 512, 512 filters) of each depth.
CONFIGS = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
WIDTHS = (64, 128, 256, 512, 512)


def vgg(depth, batch_norm=False, num_classes=1000, input_shape=None, include_top=True,
        pooling=None, name=None, classifier_activation="softmax"):
    """VGG of ``depth`` 11, 13, 16 or 19 (Simonyan and Zisserman), optionally with BatchNorm.

    Layers (Caffe's ``VGG_ILSVRC_*_layers`` names): ``conv<b>_<i>`` (3x3,
    ReLU) in five blocks ``b``, each ending with ``pool<b>`` (2x2 max); with
    ``batch_norm`` each convolution is followed by ``conv<b>_<i>_bn`` and
    ``conv<b>_<i>_relu`` (torchvision's ``vgg*_bn``: the convolutions keep
    their bias). Then ``flatten``, ``fc6``, ``drop6``, ``fc7``, ``drop7``
    (4096, ReLU, dropout 0.5), ``fc8`` (the classifier), ``prob``. ``fc6``'s
    input size follows the input (7x7x512 at 224x224). VGG16 has 138,357,544
    parameters (vgg16_bn: 138,365,992, counting gamma and beta, not the moving
    statistics).

    Args:
        depth: 11, 13, 16 or 19.
        batch_norm: Add BatchNormalization after each convolution.
        num_classes: Width of the classifier ``fc8``.
        input_shape: ``(channels, rows, cols)``, default ``(3, 224, 224)``.
        include_top: Keep ``fc6`` ... ``fc8``; False ends at ``pool5``.
        pooling: With ``include_top=False``: None (the feature map), ``'avg'``
            or ``'max'`` (global pooling to a vector).
        name: Model name (default ``'vgg<depth>'`` or ``'vgg<depth>_bn'``).
        classifier_activation: Activation of ``prob``; None returns logits.

    Returns:
        A :class:`deepkit.Model`.
    """
    builder = f"vgg{depth}" + ("_bn" if batch_norm else "")
    if depth not in CONFIGS:
        raise ValueError(f"vgg: 'depth' must be one of {sorted(CONFIGS)}. Received: "
                         f"depth={depth!r}")
    shape = check_args(builder, num_classes, input_shape, include_top, pooling, (3, 224, 224))
    inputs = image_input(shape)
    x = inputs
    for b, (count, width) in enumerate(zip(CONFIGS[depth], WIDTHS), 1):
        for i in range(1, count + 1):
            cname = f"conv{b}_{i}"
            x = conv(x, width, 3, cname, pad=1, activation=None if batch_norm else "relu")
            if batch_norm:
                x = layers.BatchNormalization(axis=1, epsilon=1e-5, momentum=0.9,
                                              name=f"{cname}_bn")(x)
                x = layers.Activation("relu", name=f"{cname}_relu")(x)
        x = pool(x, "max", 2, 2, f"pool{b}")
    if not include_top:
        return model(inputs, features(x, pooling), name or builder)
    x = layers.Flatten(name="flatten", data_format=CF)(x)
    for i in (6, 7):
        x = layers.Dense(4096, activation="relu", name=f"fc{i}")(x)
        x = layers.Dropout(0.5, name=f"drop{i}")(x)
    return model(inputs, top(x, num_classes, "fc8", classifier_activation), name or builder)


def _variant(depth, batch_norm):
    def builder(num_classes=1000, input_shape=None, include_top=True, pooling=None, name=None,
                classifier_activation="softmax"):
        return vgg(depth, batch_norm, num_classes, input_shape, include_top, pooling, name,
                   classifier_activation)
    builder.__name__ = builder.__qualname__ = f"vgg{depth}" + ("_bn" if batch_norm else "")
    builder.__doc__ = (f"VGG{depth}{' with BatchNorm' if batch_norm else ''}: "
                       f":func:`vgg` with ``depth={depth}, batch_norm={batch_norm}``.")
    return builder


vgg11, vgg13, vgg16, vgg19 = (_variant(d, False) for d in (11, 13, 16, 19))
vgg11_bn, vgg13_bn, vgg16_bn, vgg19_bn = (_variant(d, True) for d in (11, 13, 16, 19))
