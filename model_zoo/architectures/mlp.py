"""The classic multilayer perceptron for MNIST: 784-128-10 by default."""
from deepkit import layers

from .blocks import CF, check_args, finish, image_input, model

__all__ = ["mlp"]


def mlp(num_classes=10, input_shape=None, include_top=True, pooling=None, name=None,
        hidden=(128,), classifier_activation="softmax"):
    """A multilayer perceptron: ``Flatten``, ReLU ``Dense`` layers, a ``Dense`` classifier.

    Layers: ``flatten``, ``fc1`` ... ``fcN`` (the ``hidden`` widths, ReLU),
    ``classifier`` (``num_classes`` units), ``prob`` (the activation).

    Args:
        num_classes: Width of the classifier.
        input_shape: Shape of one sample (flattened first), default ``(1, 28, 28)``.
        include_top: Keep the classifier; False ends at the last hidden layer.
        pooling: Ignored (there is no feature map to pool); accepted for a
            uniform builder signature.
        name: Model name (default ``'mlp'``).
        hidden: Widths of the hidden layers: an int or a sequence of ints.
        classifier_activation: Activation of the ``prob`` layer; None returns logits.

    Returns:
        A :class:`deepkit.Model`.
    """
    hidden = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    if not all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hidden):
        raise ValueError(f"mlp: 'hidden' must be a positive int or a sequence of positive ints. "
                         f"Received: hidden={hidden!r}")
    if not include_top and not hidden:
        raise ValueError("mlp: include_top=False needs at least one hidden layer "
                         "(hidden=() leaves nothing but the classifier)")
    # any rank is fine (the input is flattened): the default only fixes the rank checked
    default = tuple(input_shape) if isinstance(input_shape, (tuple, list)) and input_shape \
        else (1, 28, 28)
    shape = check_args("mlp", num_classes, input_shape, include_top, pooling, default)
    inputs = image_input(shape)
    x = layers.Flatten(name="flatten", data_format=CF)(inputs)
    for i, units in enumerate(hidden, 1):
        x = layers.Dense(units, activation="relu", name=f"fc{i}")(x)
    if include_top:
        x = finish(layers.Dense(num_classes, name="classifier")(x), classifier_activation)
    return model(inputs, x, name or "mlp")
