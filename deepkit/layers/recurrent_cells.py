"""Recurrent cells: one time step of SimpleRNN, LSTM and GRU, and cell stacks (Keras).

A cell is a :class:`~deepkit.layers.Layer` with ``state_size`` (an int or a
list of ints, one per state) and ``call(inputs, states)`` returning
``(output, new_states)`` for one step: ``inputs`` is a (batch, features)
symbol and ``states`` a list of (batch, state) symbols. User cells follow the
same contract and run in :class:`~deepkit.layers.RNN`.

Weights follow deepkit's layout (output dimension first, as ``Dense``):
``kernel`` (G*units, input), ``recurrent_kernel`` (G*units, units), ``bias``
(G*units,), and for ``GRUCell(reset_after=True)`` a ``recurrent_bias``
(G*units,). Gate order is MXNet's and PyTorch's: LSTM i, f, c, o; GRU r, z, n.

The built-in cells split a step into :meth:`project` (the input
projection, which the layer computes for all steps at once) and
:meth:`step` (the recurrence).
"""
import numpy as np

from deepkit_engine import symbol as sym

from .. import activations, constraints, initializers, regularizers
from .base import Layer
from .core import _ser

__all__ = ["SimpleRNNCell", "LSTMCell", "GRUCell", "StackedRNNCells", "state_sizes"]


def state_sizes(cell):
    """The cell's ``state_size`` as a list of ints."""
    size = cell.state_size
    return [int(s) for s in size] if isinstance(size, (list, tuple)) else [int(size)]


def _positive_int(cls, arg, value):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{cls}: '{arg}' must be a positive int. Received: {arg}={value!r}")
    return int(value)


def _rate(cls, arg, value):
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{cls}: '{arg}' must be in [0, 1). Received: {arg}={value!r}")
    return value


class _ForgetBiasOne(initializers.Initializer):
    """The bias initializer of an LSTM with ``unit_forget_bias``: the forget gate's part is 1."""

    def __init__(self, base, units):
        self.base, self.units = base, units

    def __call__(self, shape, dtype, rng):
        value = np.array(self.base(shape, dtype, rng), dtype=dtype)
        value[self.units:2 * self.units] = 1.0
        return value


def _dropout_mask(like, rate):
    """A (batch, features) dropout mask, fixed over the time steps (training only)."""
    return sym.Dropout(sym.ones_like(like), p=rate)


class _GatedCell(Layer):
    """What SimpleRNNCell, LSTMCell and GRUCell share: arguments, weights and config."""

    gates = 1
    default_activation = "tanh"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
                 bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.units = _positive_int(cls, "units", units)
        self.activation = activation
        self.recurrent_activation = recurrent_activation
        self._act = activations.get(activation)
        self._rec_act = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout = _rate(cls, "dropout", dropout)
        self.recurrent_dropout = _rate(cls, "recurrent_dropout", recurrent_dropout)

    @property
    def state_size(self):
        return self.units

    @property
    def output_size(self):
        return self.units

    def _bias_initializer(self):
        return self.bias_initializer

    def build(self, input_shape):
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(f"{type(self).__name__} '{self.name}' needs step inputs of shape "
                             f"(batch, features) with known features, got {tuple(input_shape)}")
        gu = self.gates * self.units
        self.kernel = self.add_weight("kernel", (gu, input_shape[-1]), self.kernel_initializer,
                                      self.kernel_regularizer, self.kernel_constraint)
        self.recurrent_kernel = self.add_weight(
            "recurrent_kernel", (gu, self.units), self.recurrent_initializer,
            self.recurrent_regularizer, self.recurrent_constraint)
        if self.use_bias:
            self.bias = self.add_weight("bias", (gu,), self._bias_initializer(),
                                        self.bias_regularizer, self.bias_constraint,
                                        regularizable=False)
        self.input_size = int(input_shape[-1])

    def project(self, inputs):
        """The input part of every gate, for any leading axes: ``inputs @ kernel.T + bias``."""
        kwargs = {"num_hidden": self.gates * self.units, "flatten": False,
                  "no_bias": not self.use_bias}
        if self.use_bias:
            kwargs["bias"] = self.bias.var
        return sym.FullyConnected(inputs, self.kernel.var, **kwargs)

    def _recurrent(self, h, rows=None, bias=None):
        weight = self.recurrent_kernel.var
        n = self.gates * self.units
        if rows is not None:
            weight = sym.slice_axis(weight, axis=0, begin=rows[0], end=rows[1])
            n = rows[1] - rows[0]
        if bias is None:
            return sym.FullyConnected(h, weight, num_hidden=n, no_bias=True)
        return sym.FullyConnected(h, weight, bias, num_hidden=n)

    def step_masks(self, inputs, states):
        """The per-sequence dropout masks of one use: ``(input mask, recurrent mask)``."""
        x_mask = _dropout_mask(inputs, self.dropout) if self.dropout else None
        h_mask = _dropout_mask(states[0], self.recurrent_dropout) \
            if self.recurrent_dropout else None
        return x_mask, h_mask

    def call(self, inputs, states):
        """One step on (batch, features) inputs: ``(output, new_states)``."""
        states = list(states)
        x_mask, h_mask = self.step_masks(inputs, states)
        if x_mask is not None:
            inputs = inputs * x_mask
        return self.step(self.project(inputs), states, h_mask)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units, activation=activations.serialize(self.activation),
            use_bias=self.use_bias,
            kernel_initializer=initializers.serialize(self.kernel_initializer),
            recurrent_initializer=initializers.serialize(self.recurrent_initializer),
            bias_initializer=initializers.serialize(self.bias_initializer),
            kernel_regularizer=_ser(self.kernel_regularizer, regularizers),
            recurrent_regularizer=_ser(self.recurrent_regularizer, regularizers),
            bias_regularizer=_ser(self.bias_regularizer, regularizers),
            kernel_constraint=_ser(self.kernel_constraint, constraints),
            recurrent_constraint=_ser(self.recurrent_constraint, constraints),
            bias_constraint=_ser(self.bias_constraint, constraints),
            dropout=self.dropout, recurrent_dropout=self.recurrent_dropout)
        if self.gates > 1:
            config["recurrent_activation"] = activations.serialize(self.recurrent_activation)
        return config


class SimpleRNNCell(_GatedCell):
    """One step of a fully connected RNN: ``h' = activation(W x + b + U h)``.

    Args:
        units: Output and state width.
        activation: Default tanh.
        use_bias, kernel/recurrent/bias initializer, regularizer, constraint:
            As ``Dense`` (recurrent kernel default: orthogonal).
        dropout: Fraction of the inputs dropped (one mask per sequence).
        recurrent_dropout: Fraction of the state dropped before the recurrence.
    """

    gates = 1

    def __init__(self, units, activation="tanh", **kwargs):
        kwargs.pop("recurrent_activation", None)
        super().__init__(units, activation=activation, **kwargs)

    def step(self, proj, states, h_mask=None):
        """The recurrence given the projected input: ``(output, [h'])``."""
        h = states[0]
        hm = h if h_mask is None else h * h_mask
        out = self._act(proj + self._recurrent(hm))
        return out, [out]


class LSTMCell(_GatedCell):
    """One step of an LSTM (Hochreiter 1997), gates i, f, c, o.

    ``i, f, o = recurrent_activation(...)``, ``c' = f*c + i*activation(...)``,
    ``h' = o*activation(c')``; the state is ``[h, c]``.

    Args:
        units: Output and state width.
        activation: Of the candidate and the output (default tanh).
        recurrent_activation: Of the gates (default sigmoid).
        unit_forget_bias: Start the forget gate's bias at 1 (default True).
        Other arguments: as :class:`SimpleRNNCell`.
    """

    gates = 4

    def __init__(self, units, unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    @property
    def state_size(self):
        return [self.units, self.units]

    def _bias_initializer(self):
        if self.unit_forget_bias:
            return _ForgetBiasOne(self.bias_initializer, self.units)
        return self.bias_initializer

    def step(self, proj, states, h_mask=None):
        """The recurrence given the projected input: ``(h', [h', c'])``."""
        h, c = states[0], states[1]
        hm = h if h_mask is None else h * h_mask
        z = proj + self._recurrent(hm)
        i, f, g, o = sym.split(z, num_outputs=4, axis=-1)
        i, f, o = self._rec_act(i), self._rec_act(f), self._rec_act(o)
        c_new = f * c + i * self._act(g)
        h_new = o * self._act(c_new)
        return h_new, [h_new, c_new]

    def get_config(self):
        config = super().get_config()
        config["unit_forget_bias"] = self.unit_forget_bias
        return config


class GRUCell(_GatedCell):
    """One step of a GRU (Cho 2014), gates r, z, n.

    ``r, z = recurrent_activation(...)``, ``h' = z*h + (1 - z)*n`` with
    ``reset_after=True`` (Keras 3's default, cuDNN's and PyTorch's):
    ``n = activation(W_n x + b_n + r*(U_n h + b'_n))`` using a separate
    ``recurrent_bias``; with ``reset_after=False`` (the original paper):
    ``n = activation(W_n x + b_n + U_n (r*h))``.

    Args:
        units: Output and state width.
        reset_after: Where the reset gate applies (see above).
        Other arguments: as :class:`LSTMCell` (without unit_forget_bias).
    """

    gates = 3

    def __init__(self, units, reset_after=True, **kwargs):
        super().__init__(units, **kwargs)
        self.reset_after = bool(reset_after)

    def build(self, input_shape):
        super().build(input_shape)
        if self.use_bias and self.reset_after:
            self.recurrent_bias = self.add_weight(
                "recurrent_bias", (3 * self.units,), self.bias_initializer,
                self.bias_regularizer, self.bias_constraint, regularizable=False)

    def step(self, proj, states, h_mask=None):
        """The recurrence given the projected input: ``(h', [h'])``."""
        h = states[0]
        u = self.units
        hm = h if h_mask is None else h * h_mask
        x_r, x_z, x_n = sym.split(proj, num_outputs=3, axis=-1)
        if self.reset_after:
            rec_bias = self.recurrent_bias.var if self.use_bias else None
            h_r, h_z, h_n = sym.split(self._recurrent(hm, bias=rec_bias), num_outputs=3, axis=-1)
            r = self._rec_act(x_r + h_r)
            z = self._rec_act(x_z + h_z)
            n = self._act(x_n + r * h_n)
        else:
            h_r, h_z = sym.split(self._recurrent(hm, rows=(0, 2 * u)), num_outputs=2, axis=-1)
            r = self._rec_act(x_r + h_r)
            z = self._rec_act(x_z + h_z)
            n = self._act(x_n + self._recurrent(r * hm, rows=(2 * u, 3 * u)))
        h_new = z * h + (1 - z) * n
        return h_new, [h_new]

    def get_config(self):
        config = super().get_config()
        config["reset_after"] = self.reset_after
        return config


class StackedRNNCells(Layer):
    """Cells run one after the other within each step (Keras).

    The states are the cells' states concatenated, first cell first.

    Args:
        cells: A list of cells.
    """

    def __init__(self, cells, **kwargs):
        super().__init__(**kwargs)
        if not cells:
            raise ValueError("StackedRNNCells: 'cells' must be a non-empty list of cells")
        for cell in cells:
            if not hasattr(cell, "state_size"):
                raise ValueError(f"StackedRNNCells: {cell!r} is not a cell (it has no "
                                 "state_size)")
        self.cells = list(cells)

    @property
    def state_size(self):
        return [s for cell in self.cells for s in state_sizes(cell)]

    @property
    def output_size(self):
        last = self.cells[-1]
        return int(getattr(last, "output_size", state_sizes(last)[0]))

    def build(self, input_shape):
        shape = tuple(input_shape)
        for k, cell in enumerate(self.cells):
            if not cell.built:
                cell.build(shape)
                cell.built = True
            for short, p in cell.params.items():
                self.params[f"cell{k}_{short}"] = p
            shape = (shape[0], int(getattr(cell, "output_size", state_sizes(cell)[0])))

    def get_config(self):
        config = super().get_config()
        config["cells"] = [{"class_name": type(c).__name__, "config": c.get_config()}
                           for c in self.cells]
        return config

    def call(self, inputs, states):
        states = list(states)
        new_states = []
        out = inputs
        for cell in self.cells:
            n = len(state_sizes(cell))
            out, cell_states = cell.call(out, states[:n])
            states = states[n:]
            new_states += list(cell_states)
        return out, new_states

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)
        for cell in self.cells:
            cell.trainable = value
