"""ResNet v1 (He et al. 2015) 18/34/50/101/152 with BatchNorm, named as in the Caffe models."""
import string

from deepkit import layers

from .blocks import CF, check_args, conv_bn, features, image_input, model, pool, top

__all__ = ["resnet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]

#: Residual blocks per stage (res2 ... res5) and whether they are bottlenecks.
CONFIGS = {18: ((2, 2, 2, 2), False), 34: ((3, 4, 6, 3), False), 50: ((3, 4, 6, 3), True),
           101: ((3, 4, 23, 3), True), 152: ((3, 8, 36, 3), True)}


def _block_names(depth, blocks):
    """Caffe's block suffixes: ``a, b, c, ...``, or ``a, b1, b2, ...`` for long stages of
    ResNet-101/152 (``res4b22``)."""
    if depth >= 101 and blocks > 3:
        return ["a"] + [f"b{i}" for i in range(1, blocks)]
    return list(string.ascii_lowercase[:blocks])


def residual_block(x, name, filters, strides, bottleneck, projection):
    """One residual block ``res<name>``: ``branch2`` convolutions plus a shortcut, then ReLU.

    The basic block has ``branch2a`` and ``branch2b`` (3x3, ``filters``); the
    bottleneck ``branch2a`` (1x1), ``branch2b`` (3x3) and ``branch2c`` (1x1, 4
    x ``filters``). As in ResNet v1 (Caffe), the stride is on the first
    convolution of the branch. ``projection`` adds the 1x1 ``branch1``
    convolution on the shortcut (where the shape changes). Every convolution
    ``res<name>_branch*`` has no bias and is followed by its BatchNorm
    ``bn<name>_branch*``; ReLUs are ``res<name>_branch*_relu`` and the block's
    output is ``res<name>`` (the sum) then ``res<name>_relu``.
    """
    out = filters * 4 if bottleneck else filters
    shortcut = x
    if projection:
        shortcut = conv_bn(x, out, 1, f"res{name}_branch1", f"bn{name}_branch1",
                           strides=strides, activation=None)
    if bottleneck:
        specs = [("2a", filters, 1, strides, 0), ("2b", filters, 3, 1, 1), ("2c", out, 1, 1, 0)]
    else:
        specs = [("2a", filters, 3, strides, 1), ("2b", filters, 3, 1, 1)]
    for i, (branch, width, kernel, stride, pad) in enumerate(specs):
        last = i == len(specs) - 1
        x = conv_bn(x, width, kernel, f"res{name}_branch{branch}", f"bn{name}_branch{branch}",
                    strides=stride, pad=pad, activation=None if last else "relu")
    x = layers.Add(name=f"res{name}")([shortcut, x])
    return layers.Activation("relu", name=f"res{name}_relu")(x)


def resnet(depth, num_classes=1000, input_shape=None, include_top=True, pooling=None,
           name=None, classifier_activation="softmax"):
    """ResNet v1 of ``depth`` 18, 34, 50, 101 or 152.

    Layers (the names of Kaiming He's Caffe ResNet-50/101/152, applied to all
    depths): ``conv1`` (64@7x7, stride 2, pad 3, no bias), ``bn_conv1``,
    ``conv1_relu``, ``pool1`` (3x3 max, stride 2, Caffe's rounding up), the
    stages ``res2*`` ... ``res5*`` of :func:`residual_block` (64, 128, 256,
    512 filters; stride 2 at the first block of res3, res4, res5), then
    ``pool5`` (global average: Caffe's 7x7 average at 224x224), ``fc1000``
    (the classifier, whatever ``num_classes``) and ``prob``. BatchNorm uses
    epsilon 1e-5. Parameter counts with 1000 classes (gamma and beta counted,
    not the moving statistics): ResNet-18 11,689,512; 34 21,797,672; 50
    25,557,032; 101 44,549,160; 152 60,192,808 (torchvision's; Caffe's
    ``conv1`` also has a bias).

    Args:
        depth: 18, 34, 50, 101 or 152.
        num_classes: Width of the classifier ``fc1000``.
        input_shape: ``(channels, rows, cols)``, default ``(3, 224, 224)``;
            at least 3x3.
        include_top: Keep ``pool5`` and the classifier; False ends at the last
            block's ``res5*_relu``.
        pooling: With ``include_top=False``: None (the feature map), ``'avg'``
            or ``'max'`` (global pooling to a vector).
        name: Model name (default ``'resnet<depth>'``).
        classifier_activation: Activation of ``prob``; None returns logits.

    Returns:
        A :class:`deepkit.Model`.
    """
    if depth not in CONFIGS:
        raise ValueError(f"resnet: 'depth' must be one of {sorted(CONFIGS)}. Received: "
                         f"depth={depth!r}")
    builder = f"resnet{depth}"
    shape = check_args(builder, num_classes, input_shape, include_top, pooling, (3, 224, 224),
                       min_size=3)
    stages, bottleneck = CONFIGS[depth]
    inputs = image_input(shape)
    x = conv_bn(inputs, 64, 7, "conv1", "bn_conv1", strides=2, pad=3)
    x = pool(x, "max", 3, 2, "pool1")
    for stage, (blocks, filters) in enumerate(zip(stages, (64, 128, 256, 512)), 2):
        for i, suffix in enumerate(_block_names(depth, blocks)):
            strides = 2 if i == 0 and stage > 2 else 1
            projection = i == 0 and (stage > 2 or bottleneck)
            x = residual_block(x, f"{stage}{suffix}", filters, strides, bottleneck, projection)
    if not include_top:
        return model(inputs, features(x, pooling), name or builder)
    x = layers.GlobalAveragePooling2D(name="pool5", data_format=CF)(x)
    return model(inputs, top(x, num_classes, "fc1000", classifier_activation), name or builder)


def _variant(depth):
    def builder(num_classes=1000, input_shape=None, include_top=True, pooling=None, name=None,
                classifier_activation="softmax"):
        return resnet(depth, num_classes, input_shape, include_top, pooling, name,
                      classifier_activation)
    builder.__name__ = builder.__qualname__ = f"resnet{depth}"
    builder.__doc__ = f"ResNet-{depth} v1: :func:`resnet` with ``depth={depth}``."
    return builder


resnet18, resnet34, resnet50, resnet101, resnet152 = (_variant(d) for d in sorted(CONFIGS))
