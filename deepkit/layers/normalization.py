"""Normalization layers: BatchNormalization, LayerNormalization, LRN.

``BatchNormalization`` normalises with the batch statistics while training
and with its moving statistics otherwise (``predict``, ``evaluate``). Its
moving statistics are auxiliary states of the engine's ``BatchNorm`` op,
updated in place by the training forward pass and never by the optimizer.
A frozen layer (``layer.trainable = False``) runs in inference mode even
inside ``fit`` (Keras's fine-tuning rule), so neither its moving statistics
nor its ``gamma``/``beta`` change.
"""
import numpy as np

from deepkit_engine import symbol as sym

from .. import backend, constraints, initializers, regularizers
from .base import Layer

__all__ = ["BatchNormalization", "LayerNormalization", "LRN"]


def _ser(obj):
    """A regularizer or constraint as config data (None, a name, or class and config)."""
    if obj is None or isinstance(obj, str):
        return obj
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_number(layer, arg, value, low=None, high=None, low_open=False):
    """Raise ``ValueError`` echoing the value unless ``low <= value <= high``."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        if low is not None and high is not None:
            want = f"a number in [{low}, {high}]"
        elif low is not None:
            want = f"a number {'>' if low_open else '>='} {low}"
        else:
            want = "a number"
        raise ValueError(f"{layer}: '{arg}' must be {want}. Received: {arg}={value!r}")
    return float(value)


def _normalize_axis(layer_name, axis, ndim, input_shape):
    if not -ndim <= axis < ndim:
        raise ValueError(f"{layer_name}: axis {axis} is out of range for inputs of rank {ndim} "
                         f"(shape {input_shape})")
    axis %= ndim
    if axis == 0:
        raise ValueError(f"{layer_name}: axis {axis} is the batch axis; normalise over a "
                         f"feature axis of the input shape {input_shape}")
    if input_shape[axis] is None:
        raise ValueError(f"{layer_name}: axis {axis} of the input shape {input_shape} must be "
                         "known")
    return axis


class BatchNormalization(Layer):
    """Normalises each channel with batch statistics in training, moving ones otherwise.

    ``y = gamma * (x - mean) / sqrt(var + epsilon) + beta`` per channel. In
    training (``fit``, ``train_on_batch``) mean and (biased) variance come from
    the batch and the moving statistics are updated in place:
    ``moving = moving * momentum + batch * (1 - momentum)``, Keras's formula and
    the engine's, so ``momentum`` passes to the engine unchanged. In inference
    (``predict``, ``evaluate``) the moving statistics are used and left alone.

    Fine-tuning: when the layer is frozen (``layer.trainable = False``) it runs
    in inference mode also during ``fit`` (as in Keras): the moving statistics,
    ``gamma`` and ``beta`` all stay as they are. No recompile is needed; the
    model rebuilds its graph when ``trainable`` changes.

    Parameters: ``gamma`` (if ``scale``) and ``beta`` (if ``center``), trainable;
    ``moving_mean`` and ``moving_var``, auxiliary states (non-trainable). Each
    has shape ``(channels,)``; variables are named ``<layer>_gamma`` etc., as
    MXNet's and Caffe's BatchNorm.

    Args:
        axis: The channel axis (int). Default None: 1 with the
            ``'channels_first'`` image format (NCHW, the default; also the
            feature axis of ``(batch, features)`` inputs), -1 with
            ``'channels_last'``. Keras's default is -1 (it is channels-last).
        momentum: Decay of the moving averages, in [0, 1].
        epsilon: Added to the variance before the square root (>= 0).
        center: Whether to add the learned offset ``beta``.
        scale: Whether to multiply by the learned ``gamma`` (off: gamma is 1).
        beta_initializer, gamma_initializer: For ``beta`` and ``gamma``.
        moving_mean_initializer, moving_variance_initializer: For the moving
            statistics.
        beta_regularizer, gamma_regularizer: Penalties added to the loss.
        beta_constraint, gamma_constraint: Applied after each update.
        lr_mult, wd_mult: Learning-rate and weight-decay multipliers of
            ``gamma`` and ``beta``.
        synchronized: In data-parallel training (several devices, MPI ranks),
            take the batch statistics over the global batch instead of each
            device's part (Keras 3's argument; the engine's ``SyncBatchNorm``).
            Training then equals one device running the whole batch, at the
            cost of two small exchanges per layer in forward and one in
            backward. Without data parallelism it changes nothing.

    Input shape: any, with a known channel axis. Output shape: the input shape.
    """

    def __init__(self, axis=None, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, lr_mult=1.0, wd_mult=1.0, synchronized=False,
                 **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            axis = 1 if backend.image_data_format() == "channels_first" else -1
        if not _is_int(axis):
            raise ValueError(f"BatchNormalization: 'axis' must be an int (one channel axis). "
                             f"Received: axis={axis!r}")
        self.axis = int(axis)
        self.momentum = _check_number("BatchNormalization", "momentum", momentum, 0.0, 1.0)
        self.epsilon = _check_number("BatchNormalization", "epsilon", epsilon, 0.0)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.lr_mult, self.wd_mult = float(lr_mult), float(wd_mult)
        self.synchronized = bool(synchronized)

    def build(self, input_shape):
        ndim = len(input_shape)
        if ndim < 2:
            raise ValueError(f"BatchNormalization needs inputs of rank >= 2 (batch, channels, "
                             f"...), got shape {input_shape}")
        self._axis = _normalize_axis("BatchNormalization", self.axis, ndim, input_shape)
        shape = (input_shape[self._axis],)
        if self.scale:
            self.gamma = self.add_weight("gamma", shape, self.gamma_initializer,
                                         self.gamma_regularizer, self.gamma_constraint,
                                         regularizable=False, lr_mult=self.lr_mult,
                                         wd_mult=self.wd_mult)
        if self.center:
            self.beta = self.add_weight("beta", shape, self.beta_initializer,
                                        self.beta_regularizer, self.beta_constraint,
                                        regularizable=False, lr_mult=self.lr_mult,
                                        wd_mult=self.wd_mult)
        self.moving_mean = self.add_weight("moving_mean", shape, self.moving_mean_initializer,
                                           trainable=False, regularizable=False, aux=True)
        self.moving_var = self.add_weight("moving_var", shape, self.moving_variance_initializer,
                                          trainable=False, regularizable=False, aux=True)

    def call(self, inputs):
        # The op always takes gamma and beta; a missing one is a constant zero
        # (gamma is then ignored: fix_gamma treats it as 1).
        zeros = None
        if not (self.scale and self.center):
            zeros = sym.zeros_like(self.moving_mean.var, name=f"{self.name}_zeros")
        gamma = self.gamma.var if self.scale else zeros
        beta = self.beta.var if self.center else zeros
        op = sym.SyncBatchNorm if self.synchronized else sym.BatchNorm
        return op(inputs, gamma, beta, self.moving_mean.var, self.moving_var.var,
                  eps=self.epsilon, momentum=self.momentum, fix_gamma=not self.scale,
                  use_global_stats=not self.trainable, axis=self._axis, name=self.name)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            axis=self.axis, momentum=self.momentum, epsilon=self.epsilon, center=self.center,
            scale=self.scale, beta_initializer=initializers.serialize(self.beta_initializer),
            gamma_initializer=initializers.serialize(self.gamma_initializer),
            moving_mean_initializer=initializers.serialize(self.moving_mean_initializer),
            moving_variance_initializer=initializers.serialize(
                self.moving_variance_initializer),
            beta_regularizer=_ser(self.beta_regularizer),
            gamma_regularizer=_ser(self.gamma_regularizer),
            beta_constraint=_ser(self.beta_constraint),
            gamma_constraint=_ser(self.gamma_constraint), lr_mult=self.lr_mult,
            wd_mult=self.wd_mult, synchronized=self.synchronized)
        return config


class LayerNormalization(Layer):
    """Normalises each sample over ``axis`` (all channels of one position), then scales.

    ``y = gamma * (x - mean) / sqrt(var + epsilon) + beta`` with mean and biased
    variance over ``axis`` per sample: no batch statistics, so training and
    inference behave the same. With one axis and both ``center`` and ``scale``
    it is the engine's ``LayerNorm`` op; other settings are composed of
    elementwise ops.

    Args:
        axis: Int or list of ints (not the batch axis 0): the axes to normalise
            over. Default -1 (Keras).
        epsilon: Added to the variance before the square root (> 0).
        center: Whether to add the learned offset ``beta``.
        scale: Whether to multiply by the learned ``gamma``.
        rms_scaling: RMS normalisation (Keras): ``y = gamma * x / sqrt(mean(x**2)
            + epsilon)``, no centring; ``center`` and ``scale`` are ignored.
        beta_initializer, gamma_initializer: For ``beta`` and ``gamma``, whose
            shape is the input's size along ``axis`` (one entry per axis).
        beta_regularizer, gamma_regularizer: Penalties added to the loss.
        beta_constraint, gamma_constraint: Applied after each update.
        lr_mult, wd_mult: Learning-rate and weight-decay multipliers.

    Input shape: any. Output shape: the input shape.
    """

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, rms_scaling=False,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 lr_mult=1.0, wd_mult=1.0, **kwargs):
        super().__init__(**kwargs)
        axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
        if not axes or not all(_is_int(a) for a in axes):
            raise ValueError(f"LayerNormalization: 'axis' must be an int or a non-empty list "
                             f"of ints. Received: axis={axis!r}")
        self.axis = [int(a) for a in axes] if isinstance(axis, (list, tuple)) else int(axis)
        self.epsilon = _check_number("LayerNormalization", "epsilon", epsilon, 0.0,
                                     low_open=True)
        self.center, self.scale = bool(center), bool(scale)
        self.rms_scaling = bool(rms_scaling)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.lr_mult, self.wd_mult = float(lr_mult), float(wd_mult)

    def build(self, input_shape):
        ndim = len(input_shape)
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        self._axes = sorted({_normalize_axis("LayerNormalization", a, ndim, input_shape)
                             for a in axes})
        if len(self._axes) != len(axes):
            raise ValueError(f"LayerNormalization: 'axis' repeats an axis: {self.axis}")
        shape = tuple(input_shape[a] for a in self._axes)
        # gamma/beta broadcast against the input: the size on the normalised axes, 1 elsewhere
        self._param_view = tuple(input_shape[a] if a in self._axes else 1
                                 for a in range(ndim))
        self._use_gamma = self.scale or self.rms_scaling
        self._use_beta = self.center and not self.rms_scaling
        if self._use_gamma:
            self.gamma = self.add_weight("gamma", shape, self.gamma_initializer,
                                         self.gamma_regularizer, self.gamma_constraint,
                                         regularizable=False, lr_mult=self.lr_mult,
                                         wd_mult=self.wd_mult)
        if self._use_beta:
            self.beta = self.add_weight("beta", shape, self.beta_initializer,
                                        self.beta_regularizer, self.beta_constraint,
                                        regularizable=False, lr_mult=self.lr_mult,
                                        wd_mult=self.wd_mult)

    def call(self, inputs):
        axes = tuple(self._axes)
        if len(axes) == 1 and self._use_gamma and self._use_beta:
            return sym.LayerNorm(inputs, self.gamma.var, self.beta.var, axis=axes[0],
                                 eps=self.epsilon, name=self.name)
        if self.rms_scaling:
            y = inputs * sym.rsqrt(sym.mean(sym.square(inputs), axis=axes, keepdims=True)
                                   + self.epsilon)
        else:
            centered = inputs - sym.mean(inputs, axis=axes, keepdims=True)
            var = sym.mean(sym.square(centered), axis=axes, keepdims=True)
            y = centered * sym.rsqrt(var + self.epsilon)
        if self._use_gamma:
            y = y * sym.reshape(self.gamma.var, shape=self._param_view)
        if self._use_beta:
            y = y + sym.reshape(self.beta.var, shape=self._param_view)
        return sym.identity(y, name=self.name)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            axis=self.axis, epsilon=self.epsilon, center=self.center, scale=self.scale,
            rms_scaling=self.rms_scaling,
            beta_initializer=initializers.serialize(self.beta_initializer),
            gamma_initializer=initializers.serialize(self.gamma_initializer),
            beta_regularizer=_ser(self.beta_regularizer),
            gamma_regularizer=_ser(self.gamma_regularizer),
            beta_constraint=_ser(self.beta_constraint),
            gamma_constraint=_ser(self.gamma_constraint), lr_mult=self.lr_mult,
            wd_mult=self.wd_mult)
        return config


class LRN(Layer):
    """Local response normalization across channels (AlexNet; Caffe's ACROSS_CHANNELS).

    ``y = x / (k + alpha / n * sum(x**2 over n neighbouring channels)) ** beta``,
    the window centred on each channel and cut at the edges. The parameters
    are Caffe's and MXNet's (``local_size``/``nsize`` = ``n``, ``k``/``knorm``
    = ``k``): note that ``alpha`` is divided by ``n``, as in Caffe and MXNet,
    whereas TensorFlow's ``depth_radius``/``bias``/``alpha`` form (and
    Lasagne's) does not divide it, with ``n = 2 * depth_radius + 1``. Caffe
    weights and prototxt values therefore carry over unchanged. The layer has
    no parameters.

    Args:
        n: Window width in channels: a positive odd int.
        k: Additive constant (MXNet's default 2; Caffe's is 1).
        alpha: Scale of the sum of squares (divided by ``n``).
        beta: Exponent.
        data_format: ``'channels_first'`` (default: the global setting) or
            ``'channels_last'``: where the channel axis is.

    Input shape: ``(batch, channels, ...)`` (channels first) or ``(batch, ...,
    channels)``, rank >= 3. Output shape: the input shape.
    """

    def __init__(self, n=5, k=2.0, alpha=1e-4, beta=0.75, data_format=None, **kwargs):
        super().__init__(**kwargs)
        if not _is_int(n) or n < 1 or n % 2 == 0:
            raise ValueError(f"LRN: 'n' must be a positive odd int. Received: n={n!r}")
        self.n = int(n)
        self.k = _check_number("LRN", "k", k)
        self.alpha = _check_number("LRN", "alpha", alpha)
        self.beta = _check_number("LRN", "beta", beta)
        data_format = data_format or backend.image_data_format()
        if data_format not in ("channels_first", "channels_last"):
            raise ValueError(f"LRN: 'data_format' must be 'channels_first' or 'channels_last'. "
                             f"Received: data_format={data_format!r}")
        self.data_format = data_format

    def build(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError(f"LRN needs inputs of rank >= 3 (batch, channels, spatial...), got "
                             f"shape {input_shape}")
        self._ndim = len(input_shape)

    def call(self, inputs):
        kwargs = {"nsize": self.n, "knorm": self.k, "alpha": self.alpha, "beta": self.beta}
        if self.data_format == "channels_first":
            return sym.LRN(inputs, name=self.name, **kwargs)
        ndim = self._ndim
        to_first = (0, ndim - 1) + tuple(range(1, ndim - 1))
        to_last = (0,) + tuple(range(2, ndim)) + (1,)
        y = sym.LRN(sym.transpose(inputs, axes=to_first), **kwargs)
        return sym.transpose(y, axes=to_last, name=self.name)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(n=self.n, k=self.k, alpha=self.alpha, beta=self.beta,
                      data_format=self.data_format)
        return config
