"""Shared pieces of the architectures: argument checks, Caffe-exact conv and pooling, heads.

The zoo's networks come from Caffe (AlexNet, GoogLeNet, NIN, SqueezeNet, the
ResNets, the CIFAR-10 examples), so these helpers reproduce Caffe's geometry
with the stock deepkit layers where they can, which keeps the models savable
and loadable without custom objects (``cifar10_full``'s
:class:`WithinChannelLRN` and the rare :class:`CaffePooling2D` need
``custom_objects=CUSTOM_OBJECTS``):

* :func:`conv`: Caffe pads symmetrically. Where Keras's ``'same'`` pads the
  same way (stride 1, ``kernel = 2 * pad + 1``) the layer uses it; elsewhere a
  ``ZeroPadding2D`` named ``<conv>_pad`` pads first, so converted Caffe (or
  torchvision) weights see exactly the pixels they were trained on.
* :func:`pool`: Caffe rounds pooling output sizes up (``ceil``). For the
  windows used here on square inputs that is either Keras's ``'valid'``
  (when the windows tile the input exactly) or ``'same'`` (one extra window
  over the bottom/right edge, which Keras pads after, never before); the
  helper picks the one that gives Caffe's windows, from the input size, and
  falls back to :class:`CaffePooling2D` (the engine's ``'full'`` convention)
  where neither does (rows and columns of different parity).

Layer names follow the source network, with Caffe's ``/`` replaced by ``_``
(``inception_3a/1x1`` -> ``inception_3a_1x1``): ``/`` would nest groups in
HDF5 weight files.
"""
import math
import numbers

from deepkit_engine import symbol as sym

from deepkit import Input, Model, layers
from deepkit.saving import register_serializable

__all__ = ["check_args", "conv", "conv_bn", "pool", "lrn", "CaffePooling2D", "WithinChannelLRN",
           "top", "features", "finish", "model", "image_input"]

#: Every layer is pinned to NCHW, whatever `deepkit.backend.image_data_format()` says.
CF = "channels_first"
POOLINGS = (None, "avg", "max")


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_args(builder, num_classes, input_shape, include_top, pooling, default_shape,
               min_size=1):
    """Validate a builder's common arguments; return the input shape as a tuple.

    Args:
        builder: The builder's name, for the messages.
        num_classes: Must be a positive int.
        input_shape: ``(channels, rows, cols)``, or None for ``default_shape``.
        include_top: A bool.
        pooling: None, ``'avg'`` or ``'max'``.
        default_shape: The architecture's standard input shape.
        min_size: The smallest rows/cols the architecture can reduce to at
            least one output pixel.

    Returns:
        The input shape as a tuple of ints.

    Raises:
        ValueError: an argument is out of range, with the value received.
    """
    if not _is_int(num_classes) or num_classes < 1:
        raise ValueError(f"{builder}: 'num_classes' must be a positive int. Received: "
                         f"num_classes={num_classes!r}")
    if not isinstance(include_top, bool):
        raise ValueError(f"{builder}: 'include_top' must be True or False. Received: "
                         f"include_top={include_top!r}")
    if pooling not in POOLINGS:
        raise ValueError(f"{builder}: 'pooling' must be None, 'avg' or 'max'. Received: "
                         f"pooling={pooling!r}")
    shape = default_shape if input_shape is None else input_shape
    rank = len(default_shape)
    if (not isinstance(shape, (tuple, list)) or len(shape) != rank
            or not all(_is_int(s) and s > 0 for s in shape)):
        what = "(channels, rows, cols)" if rank == 3 else f"{rank} positive ints"
        raise ValueError(f"{builder}: 'input_shape' must be {what} (channels first, without "
                         f"the batch axis), e.g. {tuple(default_shape)}. Received: "
                         f"input_shape={input_shape!r}")
    shape = tuple(int(s) for s in shape)
    if rank == 3 and min(shape[1:]) < min_size:
        raise ValueError(f"{builder}: input images must be at least {min_size}x{min_size} "
                         f"(rows x cols) for this architecture. Received: "
                         f"input_shape={input_shape!r}")
    return shape


def _spatial(x):
    return tuple(x.shape[2:])


def conv(x, filters, kernel, name, strides=1, pad=0, groups=1, use_bias=True,
         activation="relu", **kwargs):
    """A ``Conv2D`` named ``name`` with Caffe's symmetric padding ``pad`` (an int)."""
    if pad == 0:
        padding = "valid"
    elif strides == 1 and kernel == 2 * pad + 1:
        padding = "same"
    else:
        x = layers.ZeroPadding2D(pad, name=f"{name}_pad", data_format=CF)(x)
        padding = "valid"
    return layers.Conv2D(filters, kernel, strides=strides, padding=padding, groups=groups,
                         use_bias=use_bias, activation=activation, data_format=CF, name=name,
                         **kwargs)(x)


def conv_bn(x, filters, kernel, name, bn_name, strides=1, pad=0, activation="relu",
            epsilon=1e-5, momentum=0.9):
    """Convolution ``name`` without bias, BatchNormalization ``bn_name``, then (unless
    ``activation`` is None) the activation ``<name>_relu``."""
    x = conv(x, filters, kernel, name, strides=strides, pad=pad, use_bias=False,
             activation=None)
    x = layers.BatchNormalization(axis=1, epsilon=epsilon, momentum=momentum, name=bn_name)(x)
    if activation is not None:
        x = layers.Activation(activation, name=f"{name}_relu")(x)
    return x


def _caffe_pool_size(n, k, s, p):
    """Caffe's pooled size: rounded up, dropping a window that starts in the padding."""
    out = int(math.ceil((n + 2 * p - k) / s)) + 1
    if p and (out - 1) * s >= n + p:
        out -= 1
    return out


def pool(x, kind, size, strides, name, pad=0):
    """Caffe pooling (``kind`` ``'max'`` or ``'avg'``) with its ``ceil`` output size.

    A stock ``MaxPooling2D``/``AveragePooling2D`` (``'valid'`` or ``'same'``)
    where it gives Caffe's windows, which is the case for square inputs;
    otherwise (e.g. rows and columns of different parity) a
    :class:`CaffePooling2D`.
    """
    cls = layers.MaxPooling2D if kind == "max" else layers.AveragePooling2D
    spatial = _spatial(x)
    if pad and strides == 1 and size == 2 * pad + 1 and kind == "max":
        return cls(size, strides, padding="same", name=name, data_format=CF)(x)
    if not pad:
        want = tuple(_caffe_pool_size(n, size, strides, 0) for n in spatial)
        if all(n >= size for n in spatial) and \
                want == tuple((n - size) // strides + 1 for n in spatial):
            return cls(size, strides, padding="valid", name=name, data_format=CF)(x)
        same = tuple(-(-n // strides) for n in spatial)
        before = tuple(max((o - 1) * strides + size - n, 0) // 2 for o, n in zip(same, spatial))
        if want == same and not any(before):
            return cls(size, strides, padding="same", name=name, data_format=CF)(x)
    return CaffePooling2D(kind, size, strides, pad, name=name)(x)


@register_serializable
class CaffePooling2D(layers.Layer):
    """Caffe's 2-D pooling: symmetric ``pad``, output size rounded up (``ceil``).

    The engine's ``Pooling`` with ``pooling_convention='full'``: max ignores
    padded cells; average divides by the window clipped to the padded border,
    as Caffe does. :func:`pool` uses it only where Keras's ``'valid'`` or
    ``'same'`` cannot give Caffe's windows; load a saved model holding it with
    ``custom_objects=model_zoo.architectures.CUSTOM_OBJECTS``.

    Args:
        pool_type: ``'max'`` or ``'avg'``.
        pool_size: Window side (positive int).
        strides: Step (positive int).
        pad: Zero padding on each side (int >= 0).
        name: Layer name.

    Input shape: ``(batch, channels, rows, cols)``.
    Output shape: ``(batch, channels, ceil((rows + 2 pad - pool_size) / strides) + 1, ...)``.
    """

    def __init__(self, pool_type="max", pool_size=3, strides=2, pad=0, **kwargs):
        super().__init__(**kwargs)
        if pool_type not in ("max", "avg"):
            raise ValueError(f"CaffePooling2D: 'pool_type' must be 'max' or 'avg'. Received: "
                             f"pool_type={pool_type!r}")
        for arg, value, low in (("pool_size", pool_size, 1), ("strides", strides, 1),
                                ("pad", pad, 0)):
            if not _is_int(value) or value < low:
                kind = "positive" if low else "non-negative"
                raise ValueError(f"CaffePooling2D: '{arg}' must be a {kind} int. Received: "
                                 f"{arg}={value!r}")
        self.pool_type, self.pool_size = pool_type, pool_size
        self.strides, self.pad = strides, pad

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"CaffePooling2D '{self.name}' needs NCHW images, got shape "
                             f"{input_shape}")
        if any(_caffe_pool_size(n, self.pool_size, self.strides, self.pad) < 1
               for n in input_shape[2:]):
            raise ValueError(f"CaffePooling2D '{self.name}': pool_size {self.pool_size} is "
                             f"larger than the padded input {tuple(input_shape[2:])}")

    def call(self, inputs):
        k, s, p = self.pool_size, self.strides, self.pad
        return sym.Pooling(inputs, kernel=(k, k), stride=(s, s), pad=(p, p),
                           pool_type=self.pool_type, pooling_convention="full",
                           name=self.name)

    def get_config(self):
        config = super().get_config()
        config.update(pool_type=self.pool_type, pool_size=self.pool_size,
                      strides=self.strides, pad=self.pad)
        return config


@register_serializable
class WithinChannelLRN(layers.LRN):
    """Caffe's ``WITHIN_CHANNEL`` local response normalization (cifar10_full).

    ``y = x / (1 + alpha / n**2 * sum(x**2 over an n x n window))**beta`` per
    channel, the window zero-padded at the borders (Caffe's formula: the engine
    op with ``region='within'``). :class:`deepkit.layers.LRN` has only the
    across-channels region, so this subclass adds the other; load a saved
    model holding it with ``custom_objects={'WithinChannelLRN':
    WithinChannelLRN}`` (see ``model_zoo.architectures.CUSTOM_OBJECTS``).

    Args:
        n: Window side in pixels (positive odd int).
        alpha: Scale of the sum of squares (divided by ``n**2``).
        beta: Exponent.
        name: Layer name.
    """

    def __init__(self, n=3, alpha=5e-5, beta=0.75, **kwargs):
        kwargs.pop("k", None)
        kwargs.pop("data_format", None)
        super().__init__(n=n, k=1.0, alpha=alpha, beta=beta, data_format="channels_first",
                         **kwargs)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"WithinChannelLRN '{self.name}' needs NCHW images, got shape "
                             f"{input_shape}")
        super().build(input_shape)

    def call(self, inputs):
        return sym.LRN(inputs, nsize=self.n, alpha=self.alpha, beta=self.beta,
                       region="within", name=self.name)

    def get_config(self):
        config = super().get_config()
        for key in ("k", "data_format"):
            config.pop(key, None)
        return config


def lrn(x, name, n=5, alpha=1e-4, beta=0.75):
    """Caffe's default ``ACROSS_CHANNELS`` LRN (additive constant ``k = 1``)."""
    return layers.LRN(n=n, k=1.0, alpha=alpha, beta=beta, data_format="channels_first",
                      name=name)(x)


def features(x, pooling):
    """The end of ``include_top=False``: the feature map, or it pooled to a vector."""
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool", data_format=CF)(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool", data_format=CF)(x)
    return x


def top(x, num_classes, name, classifier_activation, flatten=False):
    """A ``Dense`` classifier named ``name`` (after ``Flatten`` if asked), then ``prob``."""
    if flatten:
        x = layers.Flatten(name="flatten", data_format=CF)(x)
    x = layers.Dense(num_classes, name=name)(x)
    return finish(x, classifier_activation)


def finish(x, classifier_activation):
    """The classifier's activation as a layer named ``prob`` (Caffe's), or logits."""
    if classifier_activation is None:
        return x
    return layers.Activation(classifier_activation, name="prob")(x)


def model(inputs, outputs, name):
    """The :class:`deepkit.Model` from ``inputs`` to ``outputs``."""
    return Model(inputs, outputs, name=name)


def image_input(shape):
    """The model input, named ``data`` as in Caffe's deploy files."""
    return Input(shape=shape, name="data")
