"""SqueezeNet 1.0 and 1.1 as DeepScale's Caffe models (and torchvision's)."""
from deepkit import layers

from .blocks import CF, check_args, conv, features, finish, image_input, model, pool

__all__ = ["fire", "squeezenet1_0", "squeezenet1_1"]


def fire(x, name, squeeze, expand):
    """A Fire module: ``<name>_squeeze1x1``, then ``<name>_expand1x1`` and
    ``<name>_expand3x3`` (``expand`` filters each, ReLU) joined by ``<name>_concat``."""
    x = conv(x, squeeze, 1, f"{name}_squeeze1x1")
    e1 = conv(x, expand, 1, f"{name}_expand1x1")
    e3 = conv(x, expand, 3, f"{name}_expand3x3", pad=1)
    return layers.Concatenate(axis=1, name=f"{name}_concat")([e1, e3])


#: Per version: conv1 (filters, kernel), then the sequence of fire modules
#: (name, squeeze, expand) and max pools (name).
VERSIONS = {
    "1_0": ((96, 7), [("fire2", 16, 64), ("fire3", 16, 64), ("fire4", 32, 128), "pool4",
                      ("fire5", 32, 128), ("fire6", 48, 192), ("fire7", 48, 192),
                      ("fire8", 64, 256), "pool8", ("fire9", 64, 256)]),
    "1_1": ((64, 3), [("fire2", 16, 64), ("fire3", 16, 64), "pool3", ("fire4", 32, 128),
                      ("fire5", 32, 128), "pool5", ("fire6", 48, 192), ("fire7", 48, 192),
                      ("fire8", 64, 256), ("fire9", 64, 256)]),
}


def squeezenet(version, num_classes=1000, input_shape=None, include_top=True, pooling=None,
               name=None, classifier_activation="softmax"):
    """SqueezeNet (Iandola et al. 2016), version ``'1_0'`` or ``'1_1'``.

    Layers (the Caffe models' names, ``/`` as ``_``): ``conv1`` (96@7x7 in
    1.0, 64@3x3 in 1.1, stride 2, ReLU), ``pool1`` (3x3 max, stride 2, Caffe's
    rounding up), the :func:`fire` modules ``fire2`` ... ``fire9`` with max
    pools between them (``pool4``, ``pool8`` in 1.0; ``pool3``, ``pool5`` in
    1.1), ``drop9`` (dropout 0.5), ``conv10`` (the classifier: ``num_classes``
    1x1 filters, ReLU), ``pool10`` (global average) and ``prob``. 1,248,424
    parameters (1.0) and 1,235,496 (1.1) with 1000 classes.

    Args:
        version: ``'1_0'`` or ``'1_1'``.
        num_classes: Filters of the classifier ``conv10``.
        input_shape: ``(channels, rows, cols)``, default ``(3, 224, 224)``; at
            least 21x21 (1.0) or 17x17 (1.1).
        include_top: Keep ``drop9``, ``conv10`` and ``pool10``; False ends at
            ``fire9_concat``.
        pooling: With ``include_top=False``: None (the feature map), ``'avg'``
            or ``'max'`` (global pooling to a vector).
        name: Model name (default ``'squeezenet<version>'``).
        classifier_activation: Activation of ``prob``; None returns logits.

    Returns:
        A :class:`deepkit.Model`.
    """
    if version not in VERSIONS:
        raise ValueError(f"squeezenet: 'version' must be '1_0' or '1_1'. Received: "
                         f"version={version!r}")
    builder = f"squeezenet{version}"
    (filters, kernel), body = VERSIONS[version]
    shape = check_args(builder, num_classes, input_shape, include_top, pooling, (3, 224, 224),
                       min_size=21 if version == "1_0" else 17)
    inputs = image_input(shape)
    x = pool(conv(inputs, filters, kernel, "conv1", strides=2), "max", 3, 2, "pool1")
    for item in body:
        x = pool(x, "max", 3, 2, item) if isinstance(item, str) else fire(x, *item)
    if not include_top:
        return model(inputs, features(x, pooling), name or builder)
    x = layers.Dropout(0.5, name="drop9")(x)
    x = conv(x, num_classes, 1, "conv10")
    x = layers.GlobalAveragePooling2D(name="pool10", data_format=CF)(x)
    return model(inputs, finish(x, classifier_activation), name or builder)


def squeezenet1_0(num_classes=1000, input_shape=None, include_top=True, pooling=None,
                  name=None, classifier_activation="softmax"):
    """SqueezeNet 1.0: :func:`squeezenet` with ``version='1_0'`` (1,248,424 parameters)."""
    return squeezenet("1_0", num_classes, input_shape, include_top, pooling, name,
                      classifier_activation)


def squeezenet1_1(num_classes=1000, input_shape=None, include_top=True, pooling=None,
                  name=None, classifier_activation="softmax"):
    """SqueezeNet 1.1: :func:`squeezenet` with ``version='1_1'`` (1,235,496 parameters)."""
    return squeezenet("1_1", num_classes, input_shape, include_top, pooling, name,
                      classifier_activation)
