"""LeNet as in Caffe's ``examples/mnist/lenet.prototxt``."""
from deepkit import layers

from .blocks import CF, check_args, conv, features, image_input, model, pool, top

__all__ = ["lenet"]


def lenet(num_classes=10, input_shape=None, include_top=True, pooling=None, name=None,
          classifier_activation="softmax"):
    """Caffe's LeNet: conv 20@5x5, max pool, conv 50@5x5, max pool, fc 500 ReLU, fc.

    Layers (Caffe's names): ``conv1``, ``pool1``, ``conv2``, ``pool2``,
    ``flatten``, ``ip1`` (ReLU), ``ip2`` (the classifier), ``prob``. As in
    Caffe, the convolutions have no activation. 431,080 parameters for MNIST.

    Args:
        num_classes: Width of the classifier ``ip2``.
        input_shape: ``(channels, rows, cols)``, default ``(1, 28, 28)``; at
            least 13x13.
        include_top: Keep ``ip1`` and ``ip2``; False ends at ``pool2``.
        pooling: With ``include_top=False``: None (the feature map), ``'avg'``
            or ``'max'`` (global pooling to a vector).
        name: Model name (default ``'lenet'``).
        classifier_activation: Activation of ``prob``; None returns logits.

    Returns:
        A :class:`deepkit.Model`.
    """
    shape = check_args("lenet", num_classes, input_shape, include_top, pooling, (1, 28, 28),
                       min_size=13)
    inputs = image_input(shape)
    x = conv(inputs, 20, 5, "conv1", activation=None)
    x = pool(x, "max", 2, 2, "pool1")
    x = conv(x, 50, 5, "conv2", activation=None)
    x = pool(x, "max", 2, 2, "pool2")
    if not include_top:
        return model(inputs, features(x, pooling), name or "lenet")
    x = layers.Flatten(name="flatten", data_format=CF)(x)
    x = layers.Dense(500, activation="relu", name="ip1")(x)
    return model(inputs, top(x, num_classes, "ip2", classifier_activation), name or "lenet")
