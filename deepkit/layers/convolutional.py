"""Convolution layers: Conv1D/2D/3D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D.

Every layer is one engine ``Convolution`` (or ``Deconvolution``) node named
after the layer, so its parameters are ``<layer>_weight`` and ``<layer>_bias``.
Weights keep the engine's (MXNet's, Caffe's) layout whatever the data format:

* ``Conv*D``: ``(filters, in_channels / groups, *kernel)``;
* ``Conv2DTranspose``: ``(in_channels, filters, kh, kw)`` (the weight of the
  convolution it transposes);
* ``DepthwiseConv2D``: ``(in_channels * depth_multiplier, 1, kh, kw)``.

Images are ``channels_first`` (NCHW) by default, like the engine.
``data_format='channels_last'`` is accepted: the layer transposes the data to
channels-first around the engine op, and back.

``padding='same'`` gives ``ceil(size / stride)`` outputs per axis with the
padding split as Keras (and TensorFlow) split it: the smaller half before, the
larger after. When the two halves are equal the engine op pads; when they are
not, an explicit ``Pad`` node (named ``<layer>_pad``) pads first, since the
engine's ``Convolution`` only pads symmetrically.
"""

import numpy as np

from deepkit_engine import symbol as sym

from .. import activations, backend, constraints, initializers, regularizers
from .base import Layer
from .core import _ser

__all__ = ["Conv1D", "Conv2D", "Conv3D", "Conv2DTranspose", "DepthwiseConv2D",
           "SeparableConv2D"]

_LAYOUTS = {1: ("NCW", "NWC"), 2: ("NCHW", "NHWC"), 3: ("NCDHW", "NDHWC")}


# -- argument helpers (shared with pooling and reshaping) ---------------------------------

def is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def standardize_tuple(value, n, name, owner, allow_zero=False):
    """An int or ``n`` ints as a tuple of ``n`` ints (Keras's ``standardize_tuple``).

    Args:
        value: The argument received.
        n: How many entries it must have (the number of spatial axes).
        name: The argument's name, for the error message.
        owner: The class name, for the error message.
        allow_zero: Accept 0 entries (paddings, croppings); otherwise they
            must be positive.

    Returns:
        A tuple of ``n`` Python ints.

    Raises:
        ValueError: ``value`` is not an int or a tuple/list of ``n`` ints in range.
    """
    low = 0 if allow_zero else 1
    kind = "non-negative" if allow_zero else "positive"
    items = (value,) * n if is_int(value) else value
    if (not isinstance(items, (tuple, list)) or len(items) != n
            or not all(is_int(v) and v >= low for v in items)):
        plural = "an int or a tuple of " + (f"{n} {kind} ints" if n > 1 else f"1 {kind} int")
        raise ValueError(f"{owner}: '{name}' must be {plural}. Received: {name}={value!r}")
    return tuple(int(v) for v in items)


def standardize_data_format(value, owner):
    """``'channels_first'`` or ``'channels_last'``; None takes the global setting."""
    if value is None:
        return backend.image_data_format()
    if value not in ("channels_first", "channels_last"):
        raise ValueError(f"{owner}: 'data_format' must be 'channels_first' or 'channels_last'. "
                         f"Received: data_format={value!r}")
    return value


def standardize_padding(value, owner, allowed=("valid", "same")):
    padding = value.lower() if isinstance(value, str) else value
    if padding not in allowed:
        choices = " or ".join(repr(a) for a in allowed)
        raise ValueError(f"{owner}: 'padding' must be {choices}. Received: padding={value!r}")
    return padding


def padding_pairs(spatial, kernel, strides, dilation, padding):
    """Per-axis ``(before, after)`` zero padding of ``'valid'``, ``'same'`` or ``'causal'``.

    ``'same'`` gives ``ceil(size / stride)`` outputs: the total padding is
    ``max((out - 1) * stride + dilated_kernel - size, 0)``, split with the
    smaller half before (Keras's and TensorFlow's rule). ``'causal'`` pads only
    before, by ``dilated_kernel - 1``.
    """
    pairs = []
    for n, k, s, d in zip(spatial, kernel, strides, dilation):
        eff = (k - 1) * d + 1
        if padding == "same":
            out = -(-n // s)
            total = max((out - 1) * s + eff - n, 0)
            pairs.append((total // 2, total - total // 2))
        elif padding == "causal":
            pairs.append((eff - 1, 0))
        else:
            pairs.append((0, 0))
    return tuple(pairs)


def to_channels_first(x, rank, data_format, name):
    """``x`` transposed from channels-last to channels-first (unchanged if already so)."""
    if data_format == "channels_first":
        return x
    return sym.transpose(x, axes=(0, rank + 1) + tuple(range(1, rank + 1)), name=name)


def from_channels_first(x, rank, data_format, name):
    """The inverse of :func:`to_channels_first`."""
    if data_format == "channels_first":
        return x
    return sym.transpose(x, axes=(0,) + tuple(range(2, rank + 2)) + (1,), name=name)


def check_input_rank(layer, input_shape, rank):
    """Raise a ValueError unless ``input_shape`` is (batch, channels, *spatial) of ``rank``."""
    if len(input_shape) != rank + 2 or any(s is None for s in input_shape[1:]):
        layout = _LAYOUTS[rank][0 if layer.data_format == "channels_first" else 1]
        raise ValueError(f"{type(layer).__name__} '{layer.name}' expects inputs of rank "
                         f"{rank + 2} ({layout}, data_format='{layer.data_format}') with known "
                         f"non-batch axes, got shape {tuple(input_shape)}")


_LAYOUT_FIXES = (
    "Fix it in one of three ways: pass data_format='{other}' to the image layers; or set it "
    "for the whole program before building the model (deepkit.backend.set_image_data_format("
    "'{other}'), the environment variable DEEPKIT_IMAGE_DATA_FORMAT={other}, or "
    "\"image_data_format\": \"{other}\" in ~/.deepkit/deepkit.json); or transpose the data "
    "to {mine} ({how}) and give Input the shape {swapped}")


def check_layout(layer, input_shape, kernel_size):
    """Refuse an input that looks like the other image layout (NHWC under NCHW or the reverse).

    It looks so when the would-be channel axis and the middle axes are large
    (at least 8), the last (or first spatial) axis holds 1 or 3 values (gray
    or RGB channels), and the kernel does not fit along it.
    """
    sample = tuple(input_shape[1:])
    if any(s is None for s in sample):
        return
    if layer.data_format == "channels_first":
        channels, suspect, extent = sample[0], sample[-1], kernel_size[-1]
        other, mine, how = "channels_last", "NCHW", "x.transpose(0, 3, 1, 2) for images"
        swapped = (sample[-1],) + sample[:-1]
    else:
        channels, suspect, extent = sample[-1], sample[0], kernel_size[0]
        other, mine, how = "channels_first", "NHWC", "x.transpose(0, 2, 3, 1) for images"
        swapped = sample[1:] + (sample[0],)
    middle = sample[1:-1]
    if suspect in (1, 3) and channels >= 8 and all(m >= 8 for m in middle) \
            and extent > suspect:
        looks = "channels-last (NHWC)" if other == "channels_last" else "channels-first (NCHW)"
        raise ValueError(
            f"{type(layer).__name__} '{layer.name}': the input shape {tuple(input_shape)} looks "
            f"{looks}, but the layer is data_format='{layer.data_format}' ({mine}; deepkit's "
            f"default is channels_first, as in MXNet and Caffe). "
            + _LAYOUT_FIXES.format(other=other, mine=mine, how=how, swapped=swapped))


def split_shape(input_shape, data_format):
    """``(channels, spatial sizes)`` of a (batch, ...) shape in ``data_format``."""
    if data_format == "channels_first":
        return input_shape[1], tuple(input_shape[2:])
    return input_shape[-1], tuple(input_shape[1:-1])


def _flat_pad_width(pairs):
    return (0, 0, 0, 0) + tuple(v for pair in pairs for v in pair)


# -- convolutions ----------------------------------------------------------------------

class _Conv(Layer):
    """The shared machinery of the convolution layers (not used directly).

    Subclasses set ``rank`` and call :meth:`_init_conv`; :meth:`_conv_groups`
    gives the engine's ``(num_filter, num_group)`` once the input channels
    are known.
    """

    rank = None
    padding_modes = ("valid", "same")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    def _init_conv(self, kernel_size, strides, padding, data_format, dilation_rate, activation,
                   use_bias, bias_initializer, bias_regularizer, bias_constraint, lr_mult,
                   wd_mult):
        cls = type(self).__name__
        self.kernel_size = standardize_tuple(kernel_size, self.rank, "kernel_size", cls)
        self.strides = standardize_tuple(strides, self.rank, "strides", cls)
        self.dilation_rate = standardize_tuple(dilation_rate, self.rank, "dilation_rate", cls)
        self.padding = standardize_padding(padding, cls, self.padding_modes)
        self.data_format = standardize_data_format(data_format, cls)
        self.activation = activation
        self._activation_fn = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.bias_initializer = initializers.get(bias_initializer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.bias_constraint = constraints.get(bias_constraint)
        self.lr_mult, self.wd_mult = float(lr_mult), float(wd_mult)

    @staticmethod
    def _check_positive(cls, name, value):
        if not is_int(value) or value < 1:
            raise ValueError(f"{cls}: '{name}' must be a positive int. Received: "
                             f"{name}={value!r}")
        return int(value)

    def _conv_groups(self, channels):
        """``(num_filter, num_group)`` of the engine op for ``channels`` inputs."""
        raise NotImplementedError

    def _plan_padding(self, input_shape):
        """Check the input and decide how to pad; returns ``(channels, spatial)``."""
        check_input_rank(self, input_shape, self.rank)
        check_layout(self, input_shape, self.kernel_size)
        channels, spatial = split_shape(input_shape, self.data_format)
        pairs = padding_pairs(spatial, self.kernel_size, self.strides, self.dilation_rate,
                              self.padding)
        eff = tuple((k - 1) * d + 1 for k, d in zip(self.kernel_size, self.dilation_rate))
        padded = tuple(n + a + b for n, (a, b) in zip(spatial, pairs))
        if any(p < e for p, e in zip(padded, eff)):
            raise ValueError(
                f"{type(self).__name__} '{self.name}': the kernel {self.kernel_size} (size "
                f"{eff} with dilation_rate {self.dilation_rate}) is larger than the input's "
                f"spatial size {spatial} with padding='{self.padding}'; use padding='same', a "
                "smaller kernel or a larger input")
        if all(a == b for a, b in pairs):
            self._engine_pad, self._explicit_pad = tuple(a for a, _ in pairs), None
        else:
            self._engine_pad, self._explicit_pad = (0,) * self.rank, pairs
        return channels, spatial

    def _add_bias(self, filters):
        if self.use_bias:
            self.bias = self.add_weight("bias", (filters,), self.bias_initializer,
                                        self.bias_regularizer, self.bias_constraint,
                                        regularizable=False, lr_mult=self.lr_mult,
                                        wd_mult=self.wd_mult)
        else:
            self.bias = None

    def build(self, input_shape):
        channels, _ = self._plan_padding(input_shape)
        filters, groups = self._conv_groups(channels)
        self.weight = self.add_weight(
            "weight", (filters, channels // groups) + self.kernel_size, self.kernel_initializer,
            self.kernel_regularizer, self.kernel_constraint, lr_mult=self.lr_mult,
            wd_mult=self.wd_mult)
        self._add_bias(filters)
        self._num_filter, self._num_group = filters, groups

    def _pad(self, x):
        if self._explicit_pad is None:
            return x
        return sym.Pad(x, mode="constant", pad_width=_flat_pad_width(self._explicit_pad),
                       name=f"{self.name}_pad")

    def _finish(self, y):
        y = from_channels_first(y, self.rank, self.data_format, f"{self.name}_to_last")
        return self._activation_fn(y)

    def call(self, inputs):
        x = to_channels_first(inputs, self.rank, self.data_format, f"{self.name}_to_first")
        x = self._pad(x)
        kwargs = {"weight": self.weight.var, "kernel": self.kernel_size, "stride": self.strides,
                  "dilate": self.dilation_rate, "pad": self._engine_pad,
                  "num_filter": self._num_filter, "num_group": self._num_group,
                  "no_bias": not self.use_bias, "name": self.name}
        if self.use_bias:
            kwargs["bias"] = self.bias.var
        return self._finish(sym.Convolution(x, **kwargs))

    def _base_config(self):
        config = Layer.get_config(self)
        config.update(kernel_size=list(self.kernel_size), strides=list(self.strides),
                      padding=self.padding, data_format=self.data_format,
                      dilation_rate=list(self.dilation_rate),
                      activation=activations.serialize(self.activation), use_bias=self.use_bias)
        return config

    def _bias_config(self):
        return {"bias_initializer": initializers.serialize(self.bias_initializer),
                "bias_regularizer": _ser(self.bias_regularizer, regularizers),
                "bias_constraint": _ser(self.bias_constraint, constraints),
                "lr_mult": self.lr_mult, "wd_mult": self.wd_mult}


class _BaseConv(_Conv):
    """``Conv1D``, ``Conv2D`` and ``Conv3D``: they differ only in ``rank``."""

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, lr_mult=1.0, wd_mult=1.0, **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.filters = self._check_positive(cls, "filters", filters)
        self.groups = self._check_positive(cls, "groups", groups)
        if self.filters % self.groups:
            raise ValueError(f"{cls}: 'filters' must be divisible by 'groups'. Received: "
                             f"filters={filters!r}, groups={groups!r}")
        self._init_conv(kernel_size, strides, padding, data_format, dilation_rate, activation,
                        use_bias, bias_initializer, bias_regularizer, bias_constraint, lr_mult,
                        wd_mult)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)

    def _conv_groups(self, channels):
        if channels % self.groups:
            raise ValueError(f"{type(self).__name__} '{self.name}': the input has {channels} "
                             f"channels, which is not divisible by groups={self.groups}")
        return self.filters, self.groups

    def get_config(self):
        config = self._base_config()
        config.update(filters=self.filters, groups=self.groups,
                      kernel_initializer=initializers.serialize(self.kernel_initializer),
                      kernel_regularizer=_ser(self.kernel_regularizer, regularizers),
                      kernel_constraint=_ser(self.kernel_constraint, constraints),
                      **self._bias_config())
        return config


class Conv1D(_BaseConv):
    """1-D convolution (cross-correlation) over sequences: ``activation(conv(x, W) + b)``.

    The weight has shape ``(filters, in_channels / groups, kernel_size)``, the
    engine's layout; the bias ``(filters,)``.

    Args:
        filters: Number of output channels (positive int).
        kernel_size: Window length: an int or a tuple of 1 int.
        strides: Step of the window (int or tuple of 1 int).
        padding: ``'valid'`` (no padding), ``'same'`` (``ceil(steps / strides)``
            outputs) or ``'causal'`` (padded before only, so output ``t`` sees
            inputs up to ``t``; Keras's causal convolution).
        data_format: ``'channels_first'`` (``(batch, channels, steps)``, the
            default) or ``'channels_last'`` (``(batch, steps, channels)``);
            None takes :func:`deepkit.backend.image_data_format`.
        dilation_rate: Spacing between kernel taps (int or tuple of 1 int).
        groups: Split the input channels into this many independent
            convolutions (``filters`` and the input channels must divide).
        activation: Name, callable or None (linear).
        use_bias: Whether to add a bias vector.
        kernel_initializer, bias_initializer: For ``weight`` and ``bias``.
        kernel_regularizer, bias_regularizer: Penalties added to the loss.
        kernel_constraint, bias_constraint: Applied after each update.
        lr_mult, wd_mult: Learning-rate and weight-decay multipliers of both
            parameters.

    Input shape: ``(batch, channels, steps)`` (or ``(batch, steps, channels)``).
    Output shape: ``(batch, filters, new_steps)`` (or ``(batch, new_steps, filters)``).
    """

    rank = 1
    padding_modes = ("valid", "same", "causal")


class Conv2D(_BaseConv):
    """2-D convolution (cross-correlation) over images: ``activation(conv(x, W) + b)``.

    The weight has shape ``(filters, in_channels / groups, kh, kw)``: the
    engine's, MXNet's and Caffe's layout (Keras stores ``(kh, kw, in, out)``),
    so weights move between them without transposes, whatever ``data_format``.

    Args:
        filters: Number of output channels (positive int).
        kernel_size: Window size: an int or a tuple of 2 ints.
        strides: Step of the window: an int or a tuple of 2 ints.
        padding: ``'valid'`` (no padding) or ``'same'`` (``ceil(size / strides)``
            outputs, padding split as Keras does, the larger half after).
        data_format: ``'channels_first'`` (NCHW, the default) or
            ``'channels_last'`` (NHWC); None takes
            :func:`deepkit.backend.image_data_format`.
        dilation_rate: Spacing between kernel taps (int or tuple of 2 ints).
        groups: Split the input channels into this many independent
            convolutions (``filters`` and the input channels must divide).
        activation: Name, callable or None (linear).
        use_bias: Whether to add a bias vector.
        kernel_initializer, bias_initializer: For ``weight`` and ``bias``.
        kernel_regularizer, bias_regularizer: Penalties added to the loss.
        kernel_constraint, bias_constraint: Applied after each update.
        lr_mult, wd_mult: Learning-rate and weight-decay multipliers of both
            parameters.

    Input shape: ``(batch, channels, rows, cols)`` (or ``(batch, rows, cols, channels)``).
    Output shape: ``(batch, filters, new_rows, new_cols)`` (or channels last).
    """

    rank = 2


class Conv3D(_BaseConv):
    """3-D convolution (cross-correlation) over volumes: ``activation(conv(x, W) + b)``.

    The weight has shape ``(filters, in_channels / groups, kd, kh, kw)``.
    Arguments as :class:`Conv2D`, with tuples of 3 ints.

    Input shape: ``(batch, channels, depth, rows, cols)`` (or channels last).
    Output shape: ``(batch, filters, new_depth, new_rows, new_cols)`` (or channels last).
    """

    rank = 3


class Conv2DTranspose(_Conv):
    """Transposed 2-D convolution (a "deconvolution"): the gradient of a Conv2D.

    Upsamples by ``strides``. Output sizes follow Keras: with
    ``output_padding=None``, ``'same'`` gives ``size * strides`` and ``'valid'``
    ``size * strides + max(kernel - strides, 0)``; otherwise
    ``(size - 1) * strides + kernel - 2 * (kernel // 2 if 'same' else 0) +
    output_padding`` (``kernel`` dilated). The output is cropped at the same
    places as in Keras.

    The weight has shape ``(in_channels, filters, kh, kw)``: the engine's and
    MXNet's ``Deconvolution`` layout, the weight of the convolution it
    transposes.

    Args:
        filters: Number of output channels (positive int).
        kernel_size: Window size: an int or a tuple of 2 ints.
        strides: Upsampling factor: an int or a tuple of 2 ints.
        padding: ``'valid'`` or ``'same'``.
        output_padding: None, or an int or a tuple of 2 ints, each smaller
            than its stride: extra rows/columns added to one side of the output.
        data_format: ``'channels_first'`` (default) or ``'channels_last'``.
        dilation_rate: Spacing between kernel taps (int or tuple of 2 ints).
        activation, use_bias, kernel_initializer, bias_initializer,
        kernel_regularizer, bias_regularizer, kernel_constraint,
        bias_constraint, lr_mult, wd_mult: As in :class:`Conv2D`.

    Input shape: ``(batch, channels, rows, cols)`` (or channels last).
    Output shape: ``(batch, filters, new_rows, new_cols)`` (or channels last).
    """

    rank = 2

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid",
                 output_padding=None, data_format=None, dilation_rate=(1, 1), activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, lr_mult=1.0, wd_mult=1.0, **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.filters = self._check_positive(cls, "filters", filters)
        self._init_conv(kernel_size, strides, padding, data_format, dilation_rate, activation,
                        use_bias, bias_initializer, bias_regularizer, bias_constraint, lr_mult,
                        wd_mult)
        if output_padding is None:
            self.output_padding = None
        else:
            self.output_padding = standardize_tuple(output_padding, self.rank, "output_padding",
                                                    cls, allow_zero=True)
            if any(p >= s for p, s in zip(self.output_padding, self.strides)):
                raise ValueError(f"{cls}: each 'output_padding' entry must be smaller than its "
                                 f"stride. Received: output_padding={output_padding!r}, "
                                 f"strides={strides!r}")
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)

    def _crops(self):
        """Per axis ``(crop_before, crop_after)`` of the full transposed convolution.

        The full output has ``(size - 1) * stride + dilated_kernel`` entries; a
        negative crop means extra zeros (plus bias) appended. These are Keras's
        (its jax backend's) paddings, rewritten as crops.
        """
        crops = []
        for i, (k, s, d) in enumerate(zip(self.kernel_size, self.strides, self.dilation_rate)):
            eff = (k - 1) * d + 1
            out_pad = None if self.output_padding is None else self.output_padding[i]
            if self.padding == "valid":
                extra = max(eff, s) - eff if out_pad is None else out_pad
                left, right = eff - 1, eff - 1 + extra
            else:
                pad_len = s + eff - 2 if out_pad is None else eff + eff % 2 - 2 + out_pad
                left = min(pad_len // 2 + pad_len % 2, eff - 1)
                right = pad_len - left
            crops.append((eff - 1 - left, eff - 1 - right))
        return tuple(crops)

    def build(self, input_shape):
        check_input_rank(self, input_shape, self.rank)
        channels, spatial = split_shape(input_shape, self.data_format)
        pads, adjs, trims, out = [], [], [], []
        for n, (before, after), k, s, d in zip(spatial, self._crops(), self.kernel_size,
                                               self.strides, self.dilation_rate):
            full = (n - 1) * s + (k - 1) * d + 1
            adj = before - after
            if adj >= 0:  # the engine crops `before` at the start and `before - adj` at the end
                pads.append(before)
                adjs.append(adj)
                trims.append(0)
            else:  # crop more at the end than at the start: slice the rest off
                pads.append(before)
                adjs.append(0)
                trims.append(-adj)
            out.append(full - before - after)
        if any(o < 1 for o in out):
            raise ValueError(f"{type(self).__name__} '{self.name}': the output size {tuple(out)} "
                             f"for input size {spatial} is not positive")
        self._engine_pad, self._adj, self._trim = tuple(pads), tuple(adjs), tuple(trims)
        self.weight = self.add_weight(
            "weight", (channels, self.filters) + self.kernel_size, self.kernel_initializer,
            self.kernel_regularizer, self.kernel_constraint, lr_mult=self.lr_mult,
            wd_mult=self.wd_mult)
        self._add_bias(self.filters)

    def call(self, inputs):
        x = to_channels_first(inputs, self.rank, self.data_format, f"{self.name}_to_first")
        kwargs = {"weight": self.weight.var, "kernel": self.kernel_size, "stride": self.strides,
                  "dilate": self.dilation_rate, "pad": self._engine_pad, "adj": self._adj,
                  "num_filter": self.filters, "no_bias": not self.use_bias, "name": self.name}
        if self.use_bias:
            kwargs["bias"] = self.bias.var
        y = sym.Deconvolution(x, **kwargs)
        if any(self._trim):
            y = sym.slice(y, begin=(None, None) + (0,) * self.rank,
                          end=(None, None) + tuple(-t if t else None for t in self._trim),
                          name=f"{self.name}_crop")
        return self._finish(y)

    def get_config(self):
        config = self._base_config()
        config.update(filters=self.filters,
                      output_padding=None if self.output_padding is None
                      else list(self.output_padding),
                      kernel_initializer=initializers.serialize(self.kernel_initializer),
                      kernel_regularizer=_ser(self.kernel_regularizer, regularizers),
                      kernel_constraint=_ser(self.kernel_constraint, constraints),
                      **self._bias_config())
        return config


class DepthwiseConv2D(_Conv):
    """Depthwise 2-D convolution: each input channel convolved with its own filters.

    An engine ``Convolution`` with ``num_group`` equal to the input channels.
    Output channel ``c * depth_multiplier + m`` is filter ``m`` of input
    channel ``c`` (Keras's order). The weight has shape
    ``(in_channels * depth_multiplier, 1, kh, kw)``, the engine's grouped
    layout; its Glorot/He fans are therefore computed from that shape.

    Args:
        kernel_size: Window size: an int or a tuple of 2 ints.
        strides: Step of the window: an int or a tuple of 2 ints.
        padding: ``'valid'`` or ``'same'``.
        depth_multiplier: Output channels per input channel (positive int).
        data_format: ``'channels_first'`` (default) or ``'channels_last'``.
        dilation_rate: Spacing between kernel taps (int or tuple of 2 ints).
        activation: Name, callable or None (linear).
        use_bias: Whether to add a bias vector.
        depthwise_initializer, bias_initializer: For ``weight`` and ``bias``.
        depthwise_regularizer, bias_regularizer: Penalties added to the loss.
        depthwise_constraint, bias_constraint: Applied after each update.
        lr_mult, wd_mult: Learning-rate and weight-decay multipliers.

    Input shape: ``(batch, channels, rows, cols)`` (or channels last).
    Output shape: ``(batch, channels * depth_multiplier, new_rows, new_cols)``.
    """

    rank = 2

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1,
                 data_format=None, dilation_rate=(1, 1), activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, bias_regularizer=None, depthwise_constraint=None,
                 bias_constraint=None, lr_mult=1.0, wd_mult=1.0, **kwargs):
        super().__init__(**kwargs)
        self.depth_multiplier = self._check_positive(type(self).__name__, "depth_multiplier",
                                                     depth_multiplier)
        self._init_conv(kernel_size, strides, padding, data_format, dilation_rate, activation,
                        use_bias, bias_initializer, bias_regularizer, bias_constraint, lr_mult,
                        wd_mult)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)
        # _Conv.build reads the kernel_* names
        self.kernel_initializer = self.depthwise_initializer
        self.kernel_regularizer = self.depthwise_regularizer
        self.kernel_constraint = self.depthwise_constraint

    def _conv_groups(self, channels):
        return channels * self.depth_multiplier, channels

    def get_config(self):
        config = self._base_config()
        config.update(depth_multiplier=self.depth_multiplier,
                      depthwise_initializer=initializers.serialize(self.depthwise_initializer),
                      depthwise_regularizer=_ser(self.depthwise_regularizer, regularizers),
                      depthwise_constraint=_ser(self.depthwise_constraint, constraints),
                      **self._bias_config())
        return config


class SeparableConv2D(_Conv):
    """Depthwise separable 2-D convolution: a depthwise convolution, then a 1x1 one.

    The depthwise step (``strides``, ``padding``, ``dilation_rate`` apply
    there) has weight ``depthwise_weight`` of shape ``(in_channels *
    depth_multiplier, 1, kh, kw)`` and no bias; the pointwise step has
    ``pointwise_weight`` of shape ``(filters, in_channels * depth_multiplier,
    1, 1)`` and the ``bias``. So the variables are
    ``<layer>_depthwise_weight``, ``<layer>_pointwise_weight`` and
    ``<layer>_bias``; the engine nodes ``<layer>_depthwise`` and ``<layer>``.

    Args:
        filters: Number of output channels (positive int).
        kernel_size, strides, padding, data_format, dilation_rate: As in
            :class:`DepthwiseConv2D`.
        depth_multiplier: Depthwise output channels per input channel.
        activation, use_bias: As in :class:`Conv2D`.
        depthwise_initializer, pointwise_initializer, bias_initializer: For the
            three parameters.
        depthwise_regularizer, pointwise_regularizer, bias_regularizer:
            Penalties added to the loss.
        depthwise_constraint, pointwise_constraint, bias_constraint: Applied
            after each update.
        lr_mult, wd_mult: Learning-rate and weight-decay multipliers.

    Input shape: ``(batch, channels, rows, cols)`` (or channels last).
    Output shape: ``(batch, filters, new_rows, new_cols)`` (or channels last).
    """

    rank = 2

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), depth_multiplier=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None,
                 pointwise_regularizer=None, bias_regularizer=None, depthwise_constraint=None,
                 pointwise_constraint=None, bias_constraint=None, lr_mult=1.0, wd_mult=1.0,
                 **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.filters = self._check_positive(cls, "filters", filters)
        self.depth_multiplier = self._check_positive(cls, "depth_multiplier", depth_multiplier)
        self._init_conv(kernel_size, strides, padding, data_format, dilation_rate, activation,
                        use_bias, bias_initializer, bias_regularizer, bias_constraint, lr_mult,
                        wd_mult)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)
        self.pointwise_constraint = constraints.get(pointwise_constraint)

    def build(self, input_shape):
        channels, _ = self._plan_padding(input_shape)
        mid = channels * self.depth_multiplier
        self.depthwise_weight = self.add_weight(
            "depthwise_weight", (mid, 1) + self.kernel_size, self.depthwise_initializer,
            self.depthwise_regularizer, self.depthwise_constraint, lr_mult=self.lr_mult,
            wd_mult=self.wd_mult)
        self.pointwise_weight = self.add_weight(
            "pointwise_weight", (self.filters, mid, 1, 1), self.pointwise_initializer,
            self.pointwise_regularizer, self.pointwise_constraint, lr_mult=self.lr_mult,
            wd_mult=self.wd_mult)
        self._add_bias(self.filters)
        self._channels = channels

    def call(self, inputs):
        x = to_channels_first(inputs, self.rank, self.data_format, f"{self.name}_to_first")
        x = self._pad(x)
        mid = self._channels * self.depth_multiplier
        x = sym.Convolution(x, weight=self.depthwise_weight.var, kernel=self.kernel_size,
                            stride=self.strides, dilate=self.dilation_rate, pad=self._engine_pad,
                            num_filter=mid, num_group=self._channels, no_bias=True,
                            name=f"{self.name}_depthwise")
        kwargs = {"weight": self.pointwise_weight.var, "kernel": (1, 1),
                  "num_filter": self.filters, "no_bias": not self.use_bias, "name": self.name}
        if self.use_bias:
            kwargs["bias"] = self.bias.var
        return self._finish(sym.Convolution(x, **kwargs))

    def get_config(self):
        config = self._base_config()
        config.update(
            filters=self.filters, depth_multiplier=self.depth_multiplier,
            depthwise_initializer=initializers.serialize(self.depthwise_initializer),
            pointwise_initializer=initializers.serialize(self.pointwise_initializer),
            depthwise_regularizer=_ser(self.depthwise_regularizer, regularizers),
            pointwise_regularizer=_ser(self.pointwise_regularizer, regularizers),
            depthwise_constraint=_ser(self.depthwise_constraint, constraints),
            pointwise_constraint=_ser(self.pointwise_constraint, constraints),
            **self._bias_config())
        return config
