"""ConvLSTM2D (Shi 2015, Keras): an LSTM whose gates are convolutions over image sequences.

Inputs are (batch, timesteps, channels, rows, cols): deepkit's channels-first
images over time. The input convolution uses the layer's ``padding`` and
``dilation_rate``; the recurrent convolution keeps the state's size
(``'same'``, stride 1), as Keras does. Weights in deepkit's convolution
layout: ``kernel`` (4*filters, channels, kh, kw), ``recurrent_kernel``
(4*filters, filters, kh, kw), ``bias`` (4*filters,); gates i, f, c, o.
"""
import numpy as np

from deepkit_engine import symbol as sym

from .. import activations, constraints, initializers, regularizers
from .base import Layer, get_mask, set_mask
from .core import _ser
from .recurrent_cells import _ForgetBiasOne

__all__ = ["ConvLSTM2D"]


def _pair(cls, arg, value):
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or any(int(v) < 1 for v in pair):
        raise ValueError(f"{cls}: '{arg}' must be a positive int or a pair of them. Received: "
                         f"{arg}={value!r}")
    return tuple(int(v) for v in pair)


class ConvLSTM2D(Layer):
    """Convolutional LSTM over (batch, timesteps, channels, rows, cols) sequences.

    Args:
        filters: Channels of the state and the output.
        kernel_size: Odd int or pair (both convolutions).
        padding: ``'valid'`` or ``'same'`` (of the input convolution).
        dilation_rate: Of the input convolution.
        activation, recurrent_activation, use_bias, unit_forget_bias,
        kernel/recurrent/bias initializer, regularizer, constraint: As
            :class:`~deepkit.layers.LSTM`.
        dropout, recurrent_dropout: Rates of the per-sequence dropout masks
            on the input and on the state.
        return_sequences, return_state, go_backwards: As ``LSTM``.

    Output: (batch, [timesteps,] filters, rows', cols').
    """

    supports_masking = True

    def __init__(self, filters, kernel_size, padding="valid", dilation_rate=1,
                 activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, return_sequences=False, return_state=False,
                 go_backwards=False, **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        if not isinstance(filters, (int, np.integer)) or filters < 1:
            raise ValueError(f"{cls}: 'filters' must be a positive int. Received: "
                             f"filters={filters!r}")
        self.filters = int(filters)
        self.kernel_size = _pair(cls, "kernel_size", kernel_size)
        if any(k % 2 == 0 for k in self.kernel_size):
            raise ValueError(f"{cls}: 'kernel_size' must be odd (the recurrent convolution "
                             f"keeps the state's size). Received: kernel_size={kernel_size!r}")
        if padding not in ("valid", "same"):
            raise ValueError(f"{cls}: 'padding' must be 'valid' or 'same'. Received: "
                             f"padding={padding!r}")
        self.padding = padding
        self.dilation_rate = _pair(cls, "dilation_rate", dilation_rate)
        self.activation, self.recurrent_activation = activation, recurrent_activation
        self._act, self._rec_act = activations.get(activation), activations.get(
            recurrent_activation)
        self.use_bias, self.unit_forget_bias = bool(use_bias), bool(unit_forget_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        for arg, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= float(rate) < 1.0:
                raise ValueError(f"{cls}: '{arg}' must be in [0, 1). Received: {arg}={rate!r}")
        self.dropout, self.recurrent_dropout = float(dropout), float(recurrent_dropout)
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)
        self.go_backwards = bool(go_backwards)

    def build(self, input_shape):
        if len(input_shape) != 5 or input_shape[2] is None:
            raise ValueError(f"ConvLSTM2D '{self.name}': input must be 5-D (batch, timesteps, "
                             f"channels, rows, cols) with known channels; got shape "
                             f"{tuple(input_shape)}")
        if input_shape[1] is None:
            raise ValueError(f"ConvLSTM2D '{self.name}': the number of time steps must be "
                             f"known; got shape {tuple(input_shape)}")
        self.timesteps, channels = int(input_shape[1]), int(input_shape[2])
        g = 4 * self.filters
        self.kernel = self.add_weight("kernel", (g, channels) + self.kernel_size,
                                      self.kernel_initializer, self.kernel_regularizer,
                                      self.kernel_constraint)
        self.recurrent_kernel = self.add_weight(
            "recurrent_kernel", (g, self.filters) + self.kernel_size, self.recurrent_initializer,
            self.recurrent_regularizer, self.recurrent_constraint)
        if self.use_bias:
            init = _ForgetBiasOne(self.bias_initializer, self.filters) \
                if self.unit_forget_bias else self.bias_initializer
            self.bias = self.add_weight("bias", (g,), init, self.bias_regularizer,
                                        self.bias_constraint, regularizable=False)
        self._spatial = tuple(input_shape[3:])

    def _out_spatial(self):
        if self.padding == "same":
            return self._spatial
        return tuple(None if s is None else s - d * (k - 1)
                     for s, k, d in zip(self._spatial, self.kernel_size, self.dilation_rate))

    def compute_output_shape(self, input_shape):
        state = (None, self.filters) + self._out_spatial()
        out = (None, input_shape[1]) + state[1:] if self.return_sequences else state
        return [out, state, state] if self.return_state else out

    def compute_mask(self, inputs, mask=None):
        return mask if self.return_sequences else None

    def _same_pad(self, dilate):
        return tuple(d * (k - 1) // 2 for k, d in zip(self.kernel_size, dilate))

    def call(self, inputs):
        mask = get_mask(inputs)
        x = sym.reverse(inputs, axis=1) if self.go_backwards else inputs
        if mask is not None and self.go_backwards:
            mask = sym.reverse(mask, axis=1)
        if self.dropout:
            x = sym.Dropout(x, p=self.dropout, axes=(1,))
        g, steps = 4 * self.filters, self.timesteps
        pad = self._same_pad(self.dilation_rate) if self.padding == "same" else (0, 0)
        kwargs = {"num_filter": g, "kernel": self.kernel_size, "dilate": self.dilation_rate,
                  "pad": pad, "no_bias": not self.use_bias}
        if self.use_bias:
            kwargs["bias"] = self.bias.var
        folded = sym.reshape(x, shape=(-3, -2))
        proj = sym.Convolution(folded, self.kernel.var, **kwargs)
        proj = sym.reshape(proj, shape=(-4, -1, steps, -2))
        xs = list(sym.split(proj, num_outputs=steps, axis=1, squeeze_axis=True)) \
            if steps > 1 else [sym.squeeze(proj, axis=1)]
        ms = None
        if mask is not None:
            ms = [sym.reshape(m, shape=(0, 1, 1, 1)) for m in
                  (list(sym.split(mask, num_outputs=steps, axis=1)) if steps > 1 else [mask])]
        h = c = sym.zeros_like(sym.slice_axis(xs[0], axis=1, begin=0, end=self.filters))
        h_mask = sym.Dropout(sym.ones_like(h), p=self.recurrent_dropout) \
            if self.recurrent_dropout else None
        outs = []
        for t in range(steps):
            hm = h if h_mask is None else h * h_mask
            z = xs[t] + sym.Convolution(hm, self.recurrent_kernel.var, num_filter=g,
                                        kernel=self.kernel_size,
                                        pad=self._same_pad((1, 1)), no_bias=True)
            i, f, cand, o = sym.split(z, num_outputs=4, axis=1)
            c_new = self._rec_act(f) * c + self._rec_act(i) * self._act(cand)
            h_new = self._rec_act(o) * self._act(c_new)
            if ms is not None:
                keep = ms[t]
                out = sym.broadcast_mul(h_new, keep)
                h_new = out + sym.broadcast_mul(h, 1 - keep)
                c_new = sym.broadcast_mul(c_new, keep) + sym.broadcast_mul(c, 1 - keep)
            else:
                out = h_new
            h, c = h_new, c_new
            outs.append(out)
        result = sym.stack(*outs, axis=1) if self.return_sequences else h
        if self.return_sequences and mask is not None:
            set_mask(result, get_mask(inputs))
        return [result, h, c] if self.return_state else result

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters, kernel_size=list(self.kernel_size), padding=self.padding,
            dilation_rate=list(self.dilation_rate),
            activation=activations.serialize(self.activation),
            recurrent_activation=activations.serialize(self.recurrent_activation),
            use_bias=self.use_bias, unit_forget_bias=self.unit_forget_bias,
            kernel_initializer=initializers.serialize(self.kernel_initializer),
            recurrent_initializer=initializers.serialize(self.recurrent_initializer),
            bias_initializer=initializers.serialize(self.bias_initializer),
            kernel_regularizer=_ser(self.kernel_regularizer, regularizers),
            recurrent_regularizer=_ser(self.recurrent_regularizer, regularizers),
            bias_regularizer=_ser(self.bias_regularizer, regularizers),
            kernel_constraint=_ser(self.kernel_constraint, constraints),
            recurrent_constraint=_ser(self.recurrent_constraint, constraints),
            bias_constraint=_ser(self.bias_constraint, constraints), dropout=self.dropout,
            recurrent_dropout=self.recurrent_dropout, return_sequences=self.return_sequences,
            return_state=self.return_state, go_backwards=self.go_backwards)
        return config
