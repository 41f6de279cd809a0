"""MobileNet v1 (Howard et al. 2017): depthwise separable convolutions, width multiplier."""
from deepkit import layers

from .blocks import CF, check_args, features, finish, image_input, model

__all__ = ["mobilenet"]

#: (pointwise filters, depthwise stride) of the 13 depthwise separable blocks.
BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
          (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


def _bn_relu6(x, name):
    x = layers.BatchNormalization(axis=1, epsilon=1e-3, momentum=0.99, name=f"{name}_bn")(x)
    return layers.ReLU(max_value=6.0, name=f"{name}_relu")(x)


def separable_block(x, index, filters, strides):
    """``conv_dw_<i>`` (3x3 depthwise) and ``conv_pw_<i>`` (1x1), each with BN and ReLU6."""
    x = layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False,
                               name=f"conv_dw_{index}", data_format=CF)(x)
    x = _bn_relu6(x, f"conv_dw_{index}")
    x = layers.Conv2D(filters, 1, use_bias=False, data_format=CF, name=f"conv_pw_{index}")(x)
    return _bn_relu6(x, f"conv_pw_{index}")


def mobilenet(num_classes=1000, input_shape=None, include_top=True, pooling=None, name=None,
              alpha=1.0, dropout=1e-3, classifier_activation="softmax"):
    """MobileNet v1 with Keras's layer names and structure.

    Layers: ``conv1`` (32@3x3, stride 2, no bias), ``conv1_bn``, ``conv1_relu``
    (ReLU6), the 13 blocks of :func:`separable_block` (``conv_dw_1`` ...
    ``conv_pw_13``), then ``global_pool`` (global average, kept as 1x1 maps),
    ``dropout``, ``conv_preds`` (the classifier: ``num_classes`` 1x1 filters
    with bias), ``flatten`` and ``prob``. Padding is ``'same'`` throughout
    (Keras's, TensorFlow's split). BatchNorm uses Keras's epsilon 1e-3. With
    ``alpha=1`` and 1000 classes: 4,231,976 parameters (gamma and beta
    counted, not the moving statistics).

    Args:
        num_classes: Filters of the classifier ``conv_preds``.
        input_shape: ``(channels, rows, cols)``, default ``(3, 224, 224)``.
        include_top: Keep the pooling, dropout and classifier; False ends at
            ``conv_pw_13_relu``.
        pooling: With ``include_top=False``: None (the feature map), ``'avg'``
            or ``'max'`` (global pooling to a vector).
        name: Model name (default ``'mobilenet'``, or ``'mobilenet_<alpha>'``
            when ``alpha`` is not 1).
        alpha: Width multiplier: every layer has ``int(filters * alpha)``
            filters (0.25, 0.5, 0.75 and 1.0 are the published ones).
        dropout: Dropout rate before the classifier.
        classifier_activation: Activation of ``prob``; None returns logits.

    Returns:
        A :class:`deepkit.Model`.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0 \
            or int(32 * alpha) < 1:
        raise ValueError(f"mobilenet: 'alpha' must be a positive number (at least 1/32). "
                         f"Received: alpha={alpha!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) \
            or not 0 <= dropout < 1:
        raise ValueError(f"mobilenet: 'dropout' must be a rate in [0, 1). Received: "
                         f"dropout={dropout!r}")
    builder = "mobilenet" if alpha == 1 else f"mobilenet_{alpha:g}"
    shape = check_args("mobilenet", num_classes, input_shape, include_top, pooling,
                       (3, 224, 224))
    inputs = image_input(shape)
    x = layers.Conv2D(int(32 * alpha), 3, strides=2, padding="same", use_bias=False,
                      name="conv1", data_format=CF)(inputs)
    x = _bn_relu6(x, "conv1")
    for i, (filters, strides) in enumerate(BLOCKS, 1):
        x = separable_block(x, i, int(filters * alpha), strides)
    if not include_top:
        return model(inputs, features(x, pooling), name or builder)
    x = layers.GlobalAveragePooling2D(keepdims=True, data_format=CF, name="global_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Conv2D(num_classes, 1, name="conv_preds", data_format=CF)(x)
    x = layers.Flatten(name="flatten", data_format=CF)(x)
    return model(inputs, finish(x, classifier_activation), name or builder)
