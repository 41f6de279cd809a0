"""GoogLeNet (Inception v1) as Caffe's ``bvlc_googlenet``, without the auxiliary heads."""
from deepkit import layers

from .blocks import CF, check_args, conv, features, image_input, lrn, model, pool, top

__all__ = ["googlenet", "inception"]

#: Per module: 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection filters.
MODULES = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64), "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


def inception(x, name, filters):
    """One Inception module: four ReLU branches concatenated along the channels.

    Branches (Caffe's names, ``/`` as ``_``): ``<name>_1x1``;
    ``<name>_3x3_reduce`` then ``<name>_3x3``; ``<name>_5x5_reduce`` then
    ``<name>_5x5``; ``<name>_pool`` (3x3 max, stride 1) then
    ``<name>_pool_proj``. Joined by ``<name>_output``.
    """
    f1, r3, f3, r5, f5, fp = filters
    b1 = conv(x, f1, 1, f"{name}_1x1")
    b3 = conv(conv(x, r3, 1, f"{name}_3x3_reduce"), f3, 3, f"{name}_3x3", pad=1)
    b5 = conv(conv(x, r5, 1, f"{name}_5x5_reduce"), f5, 5, f"{name}_5x5", pad=2)
    bp = conv(pool(x, "max", 3, 1, f"{name}_pool", pad=1), fp, 1, f"{name}_pool_proj")
    return layers.Concatenate(axis=1, name=f"{name}_output")([b1, b3, b5, bp])


def googlenet(num_classes=1000, input_shape=None, include_top=True, pooling=None, name=None,
              classifier_activation="softmax"):
    """GoogLeNet (Szegedy et al. 2014) as Caffe's ``bvlc_googlenet`` deploy network.

    Layers (Caffe's names, ``/`` as ``_``): ``conv1_7x7_s2`` (64@7x7, stride
    2, pad 3), ``pool1_3x3_s2``, ``pool1_norm1`` (LRN), ``conv2_3x3_reduce``,
    ``conv2_3x3``, ``conv2_norm2``, ``pool2_3x3_s2``, Inception modules
    ``inception_3a``, ``inception_3b``, ``pool3_3x3_s2``, ``inception_4a`` ...
    ``inception_4e``, ``pool4_3x3_s2``, ``inception_5a``, ``inception_5b``
    (see :func:`inception`), then ``pool5_7x7_s1`` (global average: Caffe's
    7x7 average at 224x224), ``pool5_drop_7x7_s1`` (dropout 0.4),
    ``loss3_classifier`` and ``prob``. The two auxiliary classifiers of the
    training network are left out. 6,998,552 parameters with 1000 classes.

    Args:
        num_classes: Width of the classifier ``loss3_classifier``.
        input_shape: ``(channels, rows, cols)``, default ``(3, 224, 224)``; at
            least 31x31.
        include_top: Keep the pooling, dropout and classifier; False ends at
            ``inception_5b_output``.
        pooling: With ``include_top=False``: None (the feature map), ``'avg'``
            or ``'max'`` (global pooling to a vector).
        name: Model name (default ``'googlenet'``).
        classifier_activation: Activation of ``prob``; None returns logits.

    Returns:
        A :class:`deepkit.Model`.
    """
    shape = check_args("googlenet", num_classes, input_shape, include_top, pooling,
                       (3, 224, 224), min_size=31)
    inputs = image_input(shape)
    x = conv(inputs, 64, 7, "conv1_7x7_s2", strides=2, pad=3)
    x = lrn(pool(x, "max", 3, 2, "pool1_3x3_s2"), "pool1_norm1")
    x = conv(x, 64, 1, "conv2_3x3_reduce")
    x = lrn(conv(x, 192, 3, "conv2_3x3", pad=1), "conv2_norm2")
    x = pool(x, "max", 3, 2, "pool2_3x3_s2")
    for stage, modules in (("3", "ab"), ("4", "abcde"), ("5", "ab")):
        for m in modules:
            x = inception(x, f"inception_{stage}{m}", MODULES[stage + m])
        if stage != "5":
            x = pool(x, "max", 3, 2, f"pool{stage}_3x3_s2")
    if not include_top:
        return model(inputs, features(x, pooling), name or "googlenet")
    x = layers.GlobalAveragePooling2D(name="pool5_7x7_s1", data_format=CF)(x)
    x = layers.Dropout(0.4, name="pool5_drop_7x7_s1")(x)
    return model(inputs, top(x, num_classes, "loss3_classifier", classifier_activation),
                 name or "googlenet")
