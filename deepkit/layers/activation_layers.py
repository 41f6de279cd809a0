"""Advanced activations as layers: LeakyReLU, PReLU, ELU, ReLU, Softmax, ThresholdedReLU, GELU.

All keep the input shape. Only PReLU has a parameter (its learned slopes).
"""
import math

import numpy as np

from deepkit_engine import symbol as sym

from .. import backend, constraints, initializers, regularizers
from .base import Layer

__all__ = ["LeakyReLU", "PReLU", "ELU", "ReLU", "Softmax", "ThresholdedReLU", "GELU"]


def _ser(obj):
    """A regularizer or constraint as config data (None, a name, or class and config)."""
    if obj is None or isinstance(obj, str):
        return obj
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


def _number(layer, arg, value, minimum=None, allow_none=False):
    """``value`` as float; ``ValueError`` echoing it unless a number (``>= minimum``)."""
    if value is None and allow_none:
        return None
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or (minimum is not None and not value >= minimum):
        want = "a number" if minimum is None else f"a number >= {minimum}"
        raise ValueError(f"{layer}: '{arg}' must be {want}. Received: {arg}={value!r}")
    return float(value)


class _Elementwise(Layer):
    """An activation layer without parameters: the output shape is the input shape."""

    def compute_output_shape(self, input_shape):
        return input_shape


class LeakyReLU(_Elementwise):
    """``x`` for ``x >= 0``, ``negative_slope * x`` otherwise.

    Args:
        negative_slope: Slope for negative inputs (>= 0; Keras 3's name and
            default 0.3).
        alpha: Keras 2's name of ``negative_slope``; accepted for old code.
    """

    def __init__(self, negative_slope=0.3, alpha=None, **kwargs):
        super().__init__(**kwargs)
        if alpha is not None:
            if negative_slope not in (0.3, alpha):
                raise ValueError(f"LeakyReLU: give 'negative_slope' or its old name 'alpha', "
                                 f"not both. Received: negative_slope={negative_slope!r}, "
                                 f"alpha={alpha!r}")
            negative_slope = alpha
        self.negative_slope = _number("LeakyReLU", "negative_slope", negative_slope, 0.0)

    def call(self, inputs):
        return sym.LeakyReLU(inputs, act_type="leaky", slope=self.negative_slope,
                             name=self.name)

    def get_config(self):
        config = super().get_config()
        config["negative_slope"] = self.negative_slope
        return config


class PReLU(Layer):
    """Leaky ReLU with learned slopes: ``x`` for ``x >= 0``, ``gamma * x`` otherwise.

    By default one slope per channel, as MXNet's and Caffe's PReLU: the
    channel axis is 1 with ``'channels_first'`` (the default; also the
    feature axis of ``(batch, features)`` inputs) and -1 with
    ``'channels_last'``. On axis 1 it is the engine's ``LeakyReLU(act_type=
    'prelu')`` op. Keras's ``shared_axes`` gives Keras's layout instead: one
    slope per element of a sample, shared along the listed axes (``shared_axes=
    ()`` is Keras's default of one slope per element).

    The slopes are the parameter ``gamma`` (variable ``<layer>_gamma``, the
    engine's and MXNet's name; Keras calls it ``alpha``).

    Args:
        alpha_initializer: For the slopes (Keras's default ``'zeros'``: the
            layer starts as a ReLU; Caffe uses 0.25).
        alpha_regularizer: Penalty added to the loss.
        alpha_constraint: Applied after each update.
        shared_axes: None (per channel) or a list of axes, counted with the
            batch axis as 0, along which the slopes are shared.
        data_format: ``'channels_first'`` or ``'channels_last'`` (default: the
            global setting): where the channel axis is, without ``shared_axes``.
        lr_mult, wd_mult: Learning-rate and weight-decay multipliers.

    Input shape: ``(batch, channels, ...)`` (rank >= 2). Output shape: the same.
    """

    def __init__(self, alpha_initializer="zeros", alpha_regularizer=None, alpha_constraint=None,
                 shared_axes=None, data_format=None, lr_mult=1.0, wd_mult=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        if shared_axes is not None:
            axes = list(shared_axes) if isinstance(shared_axes, (list, tuple)) \
                else [shared_axes]
            if not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) and a >= 1
                       for a in axes):
                raise ValueError(f"PReLU: 'shared_axes' must be None or a list of axes >= 1 "
                                 f"(0 is the batch axis). Received: shared_axes={shared_axes!r}")
            shared_axes = [int(a) for a in axes]
        self.shared_axes = shared_axes
        data_format = data_format or backend.image_data_format()
        if data_format not in ("channels_first", "channels_last"):
            raise ValueError(f"PReLU: 'data_format' must be 'channels_first' or "
                             f"'channels_last'. Received: data_format={data_format!r}")
        self.data_format = data_format
        self.lr_mult, self.wd_mult = float(lr_mult), float(wd_mult)

    def build(self, input_shape):
        ndim = len(input_shape)
        if ndim < 2:
            raise ValueError(f"PReLU needs inputs of rank >= 2 (batch, channels, ...), got "
                             f"shape {input_shape}")
        sample = tuple(input_shape[1:])
        if self.shared_axes is None:
            axis = 1 if self.data_format == "channels_first" else ndim - 1
            shape = (input_shape[axis],)
            self._engine_op = axis == 1
        else:
            bad = [a for a in self.shared_axes if a >= ndim]
            if bad:
                raise ValueError(f"PReLU: shared_axes {self.shared_axes} name axes beyond the "
                                 f"input's rank {ndim} (shape {input_shape})")
            shape = tuple(1 if i + 1 in self.shared_axes else d for i, d in enumerate(sample))
            self._engine_op = False
        if any(d is None for d in shape):
            raise ValueError(f"PReLU: the slope axes of the input shape {input_shape} must be "
                             "known")
        self.gamma = self.add_weight("gamma", shape, self.alpha_initializer,
                                     self.alpha_regularizer, self.alpha_constraint,
                                     regularizable=False, lr_mult=self.lr_mult,
                                     wd_mult=self.wd_mult)

    def call(self, inputs):
        if self._engine_op:
            return sym.LeakyReLU(inputs, self.gamma.var, act_type="prelu", name=self.name)
        # gamma's shape is right-aligned with the sample's, so it broadcasts
        positive = sym.relu(inputs)
        return sym.subtract(positive, self.gamma.var * sym.relu(-inputs), name=self.name)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(alpha_initializer=initializers.serialize(self.alpha_initializer),
                      alpha_regularizer=_ser(self.alpha_regularizer),
                      alpha_constraint=_ser(self.alpha_constraint),
                      shared_axes=self.shared_axes, data_format=self.data_format,
                      lr_mult=self.lr_mult, wd_mult=self.wd_mult)
        return config


class ELU(_Elementwise):
    """``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise.

    Args:
        alpha: Scale of the negative part (Keras's default 1.0).
    """

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = _number("ELU", "alpha", alpha)

    def call(self, inputs):
        return sym.LeakyReLU(inputs, act_type="elu", slope=self.alpha, name=self.name)

    def get_config(self):
        config = super().get_config()
        config["alpha"] = self.alpha
        return config


class ReLU(_Elementwise):
    """Rectifier with Keras's options: a cap, a leak below a threshold.

    ``max_value`` for ``x >= max_value``; ``x`` for ``threshold <= x <
    max_value``; ``negative_slope * (x - threshold)`` otherwise. With the
    defaults it is the plain ``max(x, 0)``; ``ReLU(max_value=6)`` is ReLU6.

    Args:
        max_value: Upper cap (>= 0), or None for none.
        negative_slope: Slope below the threshold (>= 0).
        threshold: Where the rectifier bends (>= 0).
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        self.max_value = _number("ReLU", "max_value", max_value, 0.0, allow_none=True)
        self.negative_slope = _number("ReLU", "negative_slope", negative_slope, 0.0)
        self.threshold = _number("ReLU", "threshold", threshold, 0.0)

    def call(self, inputs):
        plain = self.negative_slope == 0.0 and self.threshold == 0.0
        if plain and self.max_value is None:
            return sym.relu(inputs, name=self.name)
        if plain:
            return sym.clip(inputs, a_min=0.0, a_max=self.max_value, name=self.name)
        t = self.threshold
        below = (inputs - t) * self.negative_slope if self.negative_slope else \
            sym.zeros_like(inputs)
        y = sym.where(inputs >= t, inputs, below)
        if self.max_value is not None:
            y = sym.minimum(y, self.max_value)
        return sym.identity(y, name=self.name)

    def get_config(self):
        config = super().get_config()
        config.update(max_value=self.max_value, negative_slope=self.negative_slope,
                      threshold=self.threshold)
        return config


class Softmax(_Elementwise):
    """``exp(x) / sum(exp(x))`` along ``axis`` (computed stably).

    Args:
        axis: The axis to normalise over (Keras's default -1).
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
            raise ValueError(f"Softmax: 'axis' must be an int. Received: axis={axis!r}")
        self.axis = int(axis)

    def build(self, input_shape):
        ndim = len(input_shape)
        if not -ndim <= self.axis < ndim or self.axis % ndim == 0:
            raise ValueError(f"Softmax: axis {self.axis} must be a non-batch axis of the input "
                             f"shape {input_shape}")

    def call(self, inputs):
        return sym.softmax(inputs, axis=self.axis, name=self.name)

    def get_config(self):
        config = super().get_config()
        config["axis"] = self.axis
        return config


class ThresholdedReLU(_Elementwise):
    """``x`` for ``x > theta``, 0 otherwise (Keras 2).

    Args:
        theta: The threshold (>= 0).
    """

    def __init__(self, theta=1.0, **kwargs):
        super().__init__(**kwargs)
        self.theta = _number("ThresholdedReLU", "theta", theta, 0.0)

    def call(self, inputs):
        return sym.multiply(inputs, inputs > self.theta, name=self.name)

    def get_config(self):
        config = super().get_config()
        config["theta"] = self.theta
        return config


class GELU(_Elementwise):
    """Gaussian error linear unit: ``x * Phi(x)`` (Phi: the standard normal CDF).

    Args:
        approximate: Use the tanh approximation ``0.5 * x * (1 + tanh(sqrt(2/pi)
            * (x + 0.044715 * x**3)))`` instead of the exact erf form.
    """

    def __init__(self, approximate=False, **kwargs):
        super().__init__(**kwargs)
        self.approximate = bool(approximate)

    def call(self, inputs):
        if not self.approximate:
            return sym.LeakyReLU(inputs, act_type="gelu", name=self.name)
        inner = (inputs + 0.044715 * inputs * inputs * inputs) * math.sqrt(2.0 / math.pi)
        return sym.multiply(inputs * 0.5, sym.tanh(inner) + 1.0, name=self.name)

    def get_config(self):
        config = super().get_config()
        config["approximate"] = self.approximate
        return config
