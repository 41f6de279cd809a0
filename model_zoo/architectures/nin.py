"""Network in Network (Lin et al. 2013), the ImageNet model of the Caffe model zoo."""
from deepkit import layers

from .blocks import CF, check_args, conv, features, finish, image_input, model, pool

__all__ = ["nin"]


def mlpconv(x, filters, kernel, names, strides=1, pad=0):
    """A spatial convolution then two 1x1 convolutions (the "micro network"), all ReLU."""
    x = conv(x, filters, kernel, names[0], strides=strides, pad=pad)
    for cccp in names[1:]:
        x = conv(x, filters, 1, cccp)
    return x


def nin(num_classes=1000, input_shape=None, include_top=True, pooling=None, name=None,
        classifier_activation="softmax"):
    """NIN for ImageNet: four mlpconv blocks and global average pooling instead of fc layers.

    Layers (the Caffe model's names, ``-`` as ``_``): ``conv1`` (96@11x11,
    stride 4), ``cccp1``, ``cccp2``, ``pool1``; ``conv2`` (256@5x5, pad 2),
    ``cccp3``, ``cccp4``, ``pool2``; ``conv3`` (384@3x3, pad 1), ``cccp5``,
    ``cccp6``, ``pool3``, ``drop`` (dropout 0.5); ``conv4_1024`` (1024@3x3, pad
    1), ``cccp7_1024``; then the classifier ``cccp8_1024`` (``num_classes`` 1x1
    filters, ReLU as in Caffe), ``pool4`` (global average: Caffe's 6x6 average
    at 224x224) and ``prob``. All convolutions have ReLU; pools are 3x3 max,
    stride 2, rounding up as Caffe does. 7,595,176 parameters with 1000
    classes.

    Args:
        num_classes: Filters of the classifier ``cccp8_1024``.
        input_shape: ``(channels, rows, cols)``, default ``(3, 224, 224)``; at
            least 39x39.
        include_top: Keep ``cccp8_1024`` and ``pool4``; False ends at
            ``cccp7_1024``.
        pooling: With ``include_top=False``: None (the feature map), ``'avg'``
            or ``'max'`` (global pooling to a vector).
        name: Model name (default ``'nin'``).
        classifier_activation: Activation of ``prob``; None returns logits.

    Returns:
        A :class:`deepkit.Model`.
    """
    shape = check_args("nin", num_classes, input_shape, include_top, pooling, (3, 224, 224),
                       min_size=39)
    inputs = image_input(shape)
    x = mlpconv(inputs, 96, 11, ("conv1", "cccp1", "cccp2"), strides=4)
    x = pool(x, "max", 3, 2, "pool1")
    x = pool(mlpconv(x, 256, 5, ("conv2", "cccp3", "cccp4"), pad=2), "max", 3, 2, "pool2")
    x = pool(mlpconv(x, 384, 3, ("conv3", "cccp5", "cccp6"), pad=1), "max", 3, 2, "pool3")
    x = layers.Dropout(0.5, name="drop")(x)
    x = mlpconv(x, 1024, 3, ("conv4_1024", "cccp7_1024"), pad=1)
    if not include_top:
        return model(inputs, features(x, pooling), name or "nin")
    x = conv(x, num_classes, 1, "cccp8_1024")
    x = layers.GlobalAveragePooling2D(name="pool4", data_format=CF)(x)
    return model(inputs, finish(x, classifier_activation), name or "nin")
