"""Recurrent layers (Keras): RNN(cell), SimpleRNN, LSTM, GRU, Bidirectional, TimeDistributed.

Inputs are (batch, timesteps, features) (``time_major=True``: timesteps
first). Each layer runs one of two programs, which give the same numbers:

* the engine's fused ``RNN`` op (one op for the whole sequence, MXNet's
  layout), when the configuration allows: built-in cell with the standard
  activations (tanh/relu for SimpleRNN; tanh and sigmoid for LSTM and GRU),
  GRU with ``reset_after=True``, no recurrent dropout, not ``unroll``
  (a mask becomes the op's step mask);
* otherwise the cell's step in the engine's ``foreach`` loop, or, with
  ``unroll=True``, unrolled into the graph over the (known) time steps.

Masked steps (a mask from ``Masking`` or ``Embedding(mask_zero=True)``)
leave the state unchanged and give a zero output, as Keras's cuDNN-compatible
layers do. Weights use deepkit's layout (see
:mod:`deepkit.layers.recurrent_cells`); :mod:`deepkit.layers.recurrent_convert`
converts from Keras's and PyTorch's.
"""
import numpy as np

from deepkit_engine import contrib
from deepkit_engine import symbol as sym

from .. import saving
from . import (
    activation_layers,
    convolutional,
    core,
    embedding,
    merge,
    normalization,
    pooling,
    reshaping,
)
from .base import Layer, as_list, get_mask, set_mask
from .recurrent_cells import (
    GRUCell,
    LSTMCell,
    SimpleRNNCell,
    StackedRNNCells,
    state_sizes,
)

__all__ = ["RNN", "SimpleRNN", "LSTM", "GRU", "Bidirectional", "TimeDistributed",
           "serialize_layer", "deserialize_layer"]

_FUSED_MODES = {SimpleRNNCell: None, LSTMCell: "lstm", GRUCell: "gru"}


def _catalog():
    names = {}
    for module in (activation_layers, convolutional, core, embedding, merge, normalization,
                   pooling, reshaping):
        names.update({n: getattr(module, n) for n in module.__all__})
    names.update({c.__name__: c for c in (SimpleRNNCell, LSTMCell, GRUCell, StackedRNNCells,
                                          RNN, SimpleRNN, LSTM, GRU, Bidirectional,
                                          TimeDistributed)})
    names.update(saving.registered_objects())
    return names


def serialize_layer(layer):
    """A wrapped layer or cell as ``{'class_name', 'config'}``."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize_layer(entry, custom_objects=None):
    """The layer or cell that :func:`serialize_layer` described."""
    name = entry["class_name"]
    cls = (custom_objects or {}).get(name) or _catalog().get(name)
    if cls is None:
        raise ValueError(f"unknown layer or cell class '{name}' in a recurrent layer's config; "
                         "register it with deepkit.saving.register_serializable")
    config = dict(entry["config"])
    if "cells" in config:
        config["cells"] = [deserialize_layer(c, custom_objects) for c in config["cells"]]
    return cls.from_config(config)


def _zero_state(x, units, time_axis):
    """(batch, units) zeros whose batch size follows ``x``'s."""
    first = sym.slice_axis(x, axis=time_axis, begin=0, end=1)
    column = sym.sum(sym.zeros_like(first), axis=(time_axis, 2), keepdims=False)
    return sym.broadcast_axis(sym.expand_dims(column, axis=1), axis=1, size=units)


class RNN(Layer):
    """Runs a cell over a sequence (Keras's ``RNN``).

    Args:
        cell: A cell (``state_size`` and ``call(inputs, states)``), or a list
            of cells (stacked with :class:`StackedRNNCells`).
        return_sequences: Output every step (batch, timesteps, units), not
            only the last (batch, units).
        return_state: Also return the final states (after the output).
        go_backwards: Read the sequence from the end (the sequence output is
            then in that reversed order, as Keras).
        stateful: Carry the final states of each batch over as the initial
            states of the next (sample i continues sample i); needs a fixed
            batch size (``batch_input_shape`` or ``batch_size``). The states
            are non-trainable weights ``states_<k>`` (saved with the model);
            :meth:`reset_states` zeroes them.
        unroll: Unroll the steps into the graph (needs known timesteps; never
            the fused op). Otherwise configurations the fused op cannot run
            use the engine's ``foreach`` loop.
        time_major: Inputs and sequence outputs are (timesteps, batch, ...).

    Call on ``x`` or on ``[x, *initial_states]``.
    """

    supports_masking = True

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, time_major=False, batch_size=None, **kwargs):
        batch_shape = kwargs.get("batch_input_shape")
        super().__init__(**kwargs)
        self.batch_size = batch_size if batch_size is not None else (
            batch_shape[0] if batch_shape is not None else None)
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(list(cell))
        if not hasattr(cell, "state_size") or not hasattr(cell, "call"):
            raise ValueError(f"{type(self).__name__} '{self.name}': 'cell' must have a "
                             f"state_size and call(inputs, states); got {cell!r}")
        if stateful and not self.batch_size:
            raise ValueError(f"{type(self).__name__} '{self.name}': stateful=True needs a fixed "
                             "batch size: pass batch_input_shape=(batch, timesteps, features) "
                             "or batch_size=")
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)
        self.time_major = bool(time_major)

    # -- shapes and weights -------------------------------------------------------------
    def _split_shapes(self, input_shape):
        if isinstance(input_shape, list) and input_shape and isinstance(input_shape[0],
                                                                         (list, tuple)):
            return tuple(input_shape[0]), [tuple(s) for s in input_shape[1:]]
        return tuple(input_shape), []

    def _output_size(self):
        return int(getattr(self.cell, "output_size", state_sizes(self.cell)[0]))

    def build(self, input_shape):
        shape, state_shapes = self._split_shapes(input_shape)
        if len(shape) != 3:
            raise ValueError(f"{type(self).__name__} '{self.name}': input must be 3-D "
                             f"({'timesteps, batch' if self.time_major else 'batch, timesteps'}"
                             f", features); got shape {shape}")
        if shape[-1] is None:
            raise ValueError(f"{type(self).__name__} '{self.name}': the feature axis of the "
                             f"input must be known; got shape {shape}")
        sizes = state_sizes(self.cell)
        if state_shapes and len(state_shapes) != len(sizes):
            raise ValueError(f"{type(self).__name__} '{self.name}': {len(sizes)} initial states "
                             f"expected (state_size={sizes}), got {len(state_shapes)}")
        for k, (s, n) in enumerate(zip(state_shapes, sizes)):
            if len(s) != 2 or s[1] != n:
                raise ValueError(f"{type(self).__name__} '{self.name}': initial state {k} must "
                                 f"have shape (batch, {n}); got {s}")
        self.timesteps = shape[0] if self.time_major else shape[1]
        if not self.cell.built:
            self.cell.build((None, shape[-1]))
            self.cell.built = True
        for short, p in self.cell.params.items():
            self.params[short] = p
        if self.stateful:
            self.carried = [self.add_weight(f"states_{k}", (self.batch_size, n), "zeros",
                                            trainable=False, regularizable=False, aux=True)
                            for k, n in enumerate(sizes)]

    def reset_states(self, states=None):
        """Zero the carried states of a stateful layer, or set them to ``states`` (arrays)."""
        if not self.stateful:
            raise AttributeError(f"{type(self).__name__} '{self.name}' is not stateful; "
                                 "reset_states() needs stateful=True")
        self._require_initialized()
        values = states if states is not None else [None] * len(self.carried)
        if len(values) != len(self.carried):
            raise ValueError(f"{type(self).__name__} '{self.name}': {len(self.carried)} states "
                             f"expected, got {len(values)}")
        for p, value in zip(self.carried, values):
            if value is None:
                p.data[:] = 0.0
                continue
            value = np.asarray(value)
            if value.shape != p.shape:
                raise ValueError(f"{type(self).__name__} '{self.name}': state '{p.short_name}' "
                                 f"has shape {p.shape}, got {value.shape}")
            p.data[:] = value.astype(p.dtype)

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        Layer.trainable.fset(self, value)
        if hasattr(self, "cell"):
            self.cell.trainable = value

    def compute_output_shape(self, input_shape):
        shape, _ = self._split_shapes(input_shape)
        units = self._output_size()
        if self.return_sequences:
            out = (shape[0], shape[1], units)
        else:
            out = (None, units)
        if not self.return_state:
            return out
        return [out] + [(None, n) for n in state_sizes(self.cell)]

    def compute_mask(self, inputs, mask):
        """The output's mask: the input's for sequence outputs, else none."""
        return mask if self.return_sequences else None

    # -- the two programs ---------------------------------------------------------------
    def _fused_mode(self):
        """The fused op's ``mode`` for this configuration, or None when it cannot run it."""
        cell = self.cell
        kind = type(cell)
        if self.unroll or kind not in _FUSED_MODES or cell.recurrent_dropout:
            return None
        if kind is SimpleRNNCell:
            return {"tanh": "rnn_tanh", "relu": "rnn_relu"}.get(cell.activation)
        if cell.activation != "tanh" or cell.recurrent_activation != "sigmoid":
            return None
        if kind is GRUCell and not cell.reset_after:
            return None
        return _FUSED_MODES[kind]

    def uses_fused_op(self, masked=False):
        """Whether a call runs the engine's fused ``RNN`` op (``masked``: with an input mask).

        The fused op takes the mask as its step mask (states kept and outputs
        zero at masked steps), so masked sequences run fused too.
        """
        return self._fused_mode() is not None

    def call(self, inputs):
        if isinstance(inputs, (list, tuple)):
            x, initial = inputs[0], list(inputs[1:])
        else:
            x, initial = inputs, []
        input_mask = mask = get_mask(x)
        time_axis = 0 if self.time_major else 1
        if self.go_backwards:
            x = sym.reverse(x, axis=time_axis)
            if mask is not None:
                mask = sym.reverse(mask, axis=1)
        if not initial and self.stateful:
            initial = [sym.ReadState(x, p.var, batch_axis=1 if self.time_major else 0,
                                     name=f"{self.name}_read_{p.short_name}")
                       for p in self.carried]
        if self.uses_fused_op(mask is not None):
            seq, last, states = self._fused(x, initial, time_axis, mask)
        else:
            if not initial:
                initial = [_zero_state(x, n, time_axis) for n in state_sizes(self.cell)]
            if self.unroll:
                seq, last, states = self._unrolled(x, initial, mask, time_axis)
            else:
                seq, last, states = self._looped(x, initial, mask, time_axis)
        out = seq if self.return_sequences else last
        if self.stateful:
            for p, final in zip(self.carried, states):
                out = sym.WriteState(out, final, p.var, name=f"{self.name}_write_{p.short_name}")
        if self.return_sequences and input_mask is not None:
            set_mask(out, input_mask)  # Keras: the input's mask, even with go_backwards
        return [out] + states if self.return_state else out

    def _fused(self, x, initial, time_axis, mask=None):
        cell = self.cell
        mode = self._fused_mode()
        u = cell.units
        if cell.dropout:
            x = sym.Dropout(x, p=cell.dropout, axes=(time_axis,))
        kernel, rec = cell.kernel.var, cell.recurrent_kernel.var
        if cell.use_bias:
            bias = cell.bias.var
            rec_bias = cell.recurrent_bias.var if mode == "gru" else sym.zeros_like(bias)
        else:
            bias = rec_bias = sym.sum(sym.zeros_like(rec), axis=1)
        params = sym.concat(sym.reshape(kernel, shape=(-1,)), sym.reshape(rec, shape=(-1,)),
                            bias, rec_bias, dim=0)
        data = x if self.time_major else sym.swapaxes(x, dim1=0, dim2=1)
        if initial:
            states = [sym.expand_dims(s, axis=0) for s in initial]
        else:  # zeros: their batch size (0) and dtype are inferred from the op's data
            states = [sym.zeros(shape=(1, 0, n), name=f"{self.name}_zero_state{k}")
                      for k, n in enumerate(state_sizes(cell))]
        count = len(states)
        if mask is not None:  # (batch, steps) -> the op's (steps, batch) step mask
            states.append(sym.swapaxes(mask, dim1=0, dim2=1))
        outs = sym.RNN(data, params, *states, state_size=u, num_layers=1,
                       mode=mode or "rnn_tanh", state_outputs=True, use_step_mask=mask is not None,
                       name=f"{self.name}_rnn")
        seq = outs[0] if self.time_major else sym.swapaxes(outs[0], dim1=0, dim2=1)
        finals = [sym.reshape(outs[k], shape=(-3, -2)) for k in range(1, 1 + count)]
        return seq, finals[0], finals

    def _looped(self, x, initial, mask, time_axis):
        """The cell's step in the engine's ``foreach`` loop (any number of time steps)."""
        cell = self.cell
        builtin = type(cell) in _FUSED_MODES
        data = x if self.time_major else sym.swapaxes(x, dim1=0, dim2=1)
        if builtin:
            if cell.dropout:
                data = sym.Dropout(data, p=cell.dropout, axes=(0,))
            data = cell.project(data)
        sequences = [data]
        if mask is not None:
            sequences.append(sym.expand_dims(sym.swapaxes(mask, dim1=0, dim2=1), axis=2))
        n = len(initial)
        carried = list(initial)
        h_mask = _rec_mask(cell, initial[0]) if builtin else None
        if h_mask is not None:
            carried.append(h_mask)  # carried unchanged: one dropout mask per sequence
        track_last = mask is not None and not builtin
        if track_last:
            carried.append(_zero_state(x, self._output_size(), time_axis))

        def body(steps, states):
            old = states[:n]
            if builtin:
                out, new = cell.step(steps[0], old, states[n] if h_mask is not None else None)
            else:
                out, new = cell.call(steps[0], old)
            new = as_list(new)
            extra = []
            if h_mask is not None:
                extra.append(states[n])
            if mask is not None:
                keep = steps[1]
                out = sym.broadcast_mul(out, keep)
                new = [sym.broadcast_mul(a, keep) + sym.broadcast_mul(b, 1 - keep)
                       for a, b in zip(new, old)]
                if track_last:
                    extra.append(out + sym.broadcast_mul(states[-1], 1 - keep))
            return [out], list(new) + extra

        outs, finals = contrib.symbol.foreach(body, sequences, carried,
                                              name=f"{self.name}_loop")
        seq = outs[0] if self.time_major else sym.swapaxes(outs[0], dim1=0, dim2=1)
        states = list(finals[:n])
        if track_last:
            last = finals[-1]
        elif mask is not None and builtin:
            last = states[0]  # a built-in cell's output is its first state
        else:
            last = sym.SequenceLast(outs[0])
        return seq, last, states

    def _unrolled(self, x, initial, mask, time_axis):
        cell = self.cell
        steps = self.timesteps
        if steps is None:
            raise ValueError(f"{type(self).__name__} '{self.name}': this configuration runs the "
                             "cell step by step, which needs a known number of time steps; "
                             "give the input shape with its timesteps")
        builtin = type(cell) in _FUSED_MODES
        if builtin:
            if cell.dropout:
                x = sym.Dropout(x, p=cell.dropout, axes=(time_axis,))
            h_mask = _rec_mask(cell, initial[0])
            inputs = cell.project(x)
        else:
            inputs = x
        xs = list(sym.split(inputs, num_outputs=steps, axis=time_axis, squeeze_axis=True)) \
            if steps > 1 else [sym.squeeze(inputs, axis=time_axis)]
        ms = None
        if mask is not None:
            ms = list(sym.split(mask, num_outputs=steps, axis=1)) if steps > 1 else [mask]
        states, outs = list(initial), []
        for t in range(steps):
            if builtin:
                out, new_states = cell.step(xs[t], states, h_mask)
            else:
                out, new_states = cell.call(xs[t], states)
            new_states = as_list(new_states)
            if ms is not None:
                keep = ms[t]
                out = sym.broadcast_mul(out, keep)
                new_states = [sym.broadcast_mul(n, keep) + sym.broadcast_mul(s, 1 - keep)
                              for n, s in zip(new_states, states)]
            states = new_states
            outs.append(out)
        seq = sym.stack(*outs, axis=time_axis) if self.return_sequences else None
        if ms is None:
            last = outs[-1]
        elif builtin:
            last = states[0]  # a built-in cell's output is its first state
        else:
            last = _last_kept(outs, ms)
        return seq, last, states

    # -- configuration ------------------------------------------------------------------
    def get_config(self):
        config = super().get_config()
        config.update(cell=serialize_layer(self.cell), return_sequences=self.return_sequences,
                      return_state=self.return_state, go_backwards=self.go_backwards,
                      unroll=self.unroll, time_major=self.time_major)
        if self.stateful:
            config.update(stateful=True, batch_size=self.batch_size)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["cell"] = deserialize_layer(config["cell"])
        return cls(**config)


def _rec_mask(cell, h0):
    return sym.Dropout(sym.ones_like(h0), p=cell.recurrent_dropout) \
        if cell.recurrent_dropout else None


def _last_kept(outs, ms):
    """The output of the last unmasked step of each sequence (a user cell's outputs)."""
    last = outs[0]
    for out, keep in zip(outs[1:], ms[1:]):
        last = sym.broadcast_mul(out, keep) + sym.broadcast_mul(last, 1 - keep)
    return last


_CELL_ARGS = ("units", "activation", "recurrent_activation", "use_bias", "kernel_initializer",
              "recurrent_initializer", "bias_initializer", "kernel_regularizer",
              "recurrent_regularizer", "bias_regularizer", "kernel_constraint",
              "recurrent_constraint", "bias_constraint", "dropout", "recurrent_dropout",
              "unit_forget_bias", "reset_after")
_RNN_ARGS = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll",
             "time_major", "batch_size")


class _BuiltinRNN(RNN):
    """A recurrent layer over one built-in cell, with the cell's arguments on the layer."""

    cell_class = None

    def __init__(self, units, **kwargs):
        cell_kwargs = {k: kwargs.pop(k) for k in _CELL_ARGS if k in kwargs}
        rnn_kwargs = {k: kwargs.pop(k) for k in _RNN_ARGS if k in kwargs}
        kwargs.pop("cell", None)
        name = kwargs.get("name")
        super().__init__(self.cell_class(units, **cell_kwargs, name=name or "cell", trainable=kwargs.get(
            "trainable", True), dtype=kwargs.get("dtype")), **rnn_kwargs, **kwargs)
        self.cell.name = self.name

    def __getattr__(self, name):
        if name in _CELL_ARGS and "cell" in self.__dict__:
            return getattr(self.__dict__["cell"], name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def get_config(self):
        config = super().get_config()
        cell_config = config.pop("cell")["config"]
        for key in ("name", "trainable", "dtype"):
            cell_config.pop(key, None)
        config.update(cell_config)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class SimpleRNN(_BuiltinRNN):
    """Fully connected RNN (Keras): ``h' = activation(W x + b + U h)``.

    Args: ``units`` and the options of :class:`SimpleRNNCell` and :class:`RNN`.
    Weights: ``kernel`` (units, input), ``recurrent_kernel`` (units, units),
    ``bias`` (units,).
    """

    cell_class = SimpleRNNCell


class LSTM(_BuiltinRNN):
    """Long short-term memory (Keras), gates i, f, c, o.

    Args: ``units`` and the options of :class:`LSTMCell` and :class:`RNN`.
    Weights: ``kernel`` (4*units, input), ``recurrent_kernel`` (4*units,
    units), ``bias`` (4*units,).
    """

    cell_class = LSTMCell


class GRU(_BuiltinRNN):
    """Gated recurrent unit (Keras), gates r, z, n; ``reset_after`` both ways.

    Args: ``units`` and the options of :class:`GRUCell` and :class:`RNN`.
    Weights: ``kernel`` (3*units, input), ``recurrent_kernel`` (3*units,
    units), ``bias`` (3*units,) and, with ``reset_after=True``,
    ``recurrent_bias`` (3*units,).
    """

    cell_class = GRUCell


_MERGES = ("concat", "sum", "mul", "ave", None)


class Bidirectional(Layer):
    """Runs a recurrent layer forwards and a copy of it backwards, and merges them (Keras).

    Args:
        layer: The forward recurrent layer (an :class:`RNN`).
        merge_mode: ``'concat'`` (default), ``'sum'``, ``'mul'``, ``'ave'``, or
            None (a list of both outputs).
        backward_layer: The backward layer (default: a copy of ``layer``'s
            config with ``go_backwards`` flipped).

    The backward layer's sequence output is put back in time order before
    merging. With ``return_state`` the forward states follow the output,
    then the backward states.
    """

    supports_masking = True

    def __init__(self, layer, merge_mode="concat", backward_layer=None, **kwargs):
        if not isinstance(layer, RNN):
            raise ValueError(f"Bidirectional: 'layer' must be a recurrent layer (RNN, LSTM, "
                             f"GRU, SimpleRNN); got {layer!r}")
        if merge_mode not in _MERGES:
            raise ValueError(f"Bidirectional: 'merge_mode' must be one of {_MERGES}. Received: "
                             f"merge_mode={merge_mode!r}")
        kwargs.setdefault("name", f"bidirectional_{layer.name}")
        super().__init__(**kwargs)
        self.forward_layer = layer
        if backward_layer is None:
            config = layer.get_config()
            config["name"] = f"backward_{layer.name}"
            config["go_backwards"] = not layer.go_backwards
            backward_layer = type(layer).from_config(config)
        if backward_layer.go_backwards == layer.go_backwards:
            raise ValueError(f"Bidirectional '{self.name}': backward_layer must have "
                             f"go_backwards={not layer.go_backwards}")
        self.backward_layer = backward_layer
        self.merge_mode = merge_mode
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state

    def build(self, input_shape):
        for layer in (self.forward_layer, self.backward_layer):
            if not layer.built:
                layer.build(input_shape)
                layer.built = True
                layer._build_input_shape = input_shape
        for prefix, layer in (("forward", self.forward_layer),
                              ("backward", self.backward_layer)):
            for short, p in layer.params.items():
                self.params[f"{prefix}_{short}"] = p

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        Layer.trainable.fset(self, value)
        for layer in (getattr(self, "forward_layer", None), getattr(self, "backward_layer", None)):
            if layer is not None:
                layer.trainable = value

    def compute_output_shape(self, input_shape):
        shapes = as_list(self.forward_layer.compute_output_shape(input_shape)) \
            if self.return_state else [self.forward_layer.compute_output_shape(input_shape)]
        out = shapes[0]
        if self.merge_mode == "concat":
            out = tuple(out[:-1]) + (2 * out[-1],)
        outs = [tuple(out), tuple(out)] if self.merge_mode is None else [tuple(out)]
        if self.return_state:
            return outs + shapes[1:] + shapes[1:]
        return outs if self.merge_mode is None else outs[0]

    def compute_mask(self, inputs, mask):
        return mask if self.return_sequences else None

    def call(self, inputs):
        fwd = as_list(self.forward_layer.call(inputs))
        bwd = as_list(self.backward_layer.call(inputs))
        y_f, y_b = fwd[0], bwd[0]
        mask = get_mask(inputs[0] if isinstance(inputs, (list, tuple)) else inputs)
        if self.return_sequences:
            time_axis = 0 if self.forward_layer.time_major else 1
            y_b = sym.reverse(y_b, axis=time_axis)
        if self.merge_mode == "concat":
            out = sym.concat(y_f, y_b, dim=-1)
        elif self.merge_mode == "sum":
            out = y_f + y_b
        elif self.merge_mode == "mul":
            out = y_f * y_b
        elif self.merge_mode == "ave":
            out = (y_f + y_b) * 0.5
        else:
            out = None
        outs = [y_f, y_b] if out is None else [out]
        if mask is not None and self.return_sequences:
            outs = [set_mask(o, mask) for o in outs]
        if self.return_state:
            return outs + fwd[1:] + bwd[1:]
        return outs if out is None else out

    def get_config(self):
        config = super().get_config()
        config.update(layer=serialize_layer(self.forward_layer), merge_mode=self.merge_mode,
                      backward_layer=serialize_layer(self.backward_layer))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = deserialize_layer(config["layer"])
        config["backward_layer"] = deserialize_layer(config["backward_layer"])
        return cls(**config)


class TimeDistributed(Layer):
    """Applies a layer to every time step of a (batch, timesteps, ...) input (Keras).

    The steps are folded into the batch axis, the layer runs once, and the
    result is unfolded; so the wrapped layer's weights are shared by all
    steps. A mask on the input passes to the output.

    Args:
        layer: The layer to apply (its input is one step: (batch, ...)).
    """

    supports_masking = True

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(f"TimeDistributed: 'layer' must be a Layer; got {layer!r}")
        kwargs.setdefault("name", f"time_distributed_{layer.name}")
        super().__init__(**kwargs)
        self.layer = layer

    def build(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError(f"TimeDistributed '{self.name}': input must be at least 3-D "
                             f"(batch, timesteps, ...); got shape {tuple(input_shape)}")
        self.timesteps = input_shape[1]
        step_shape = (None,) + tuple(input_shape[2:])
        if not self.layer.built:
            self.layer.build(step_shape)
            self.layer.built = True
            self.layer._build_input_shape = step_shape
        for short, p in self.layer.params.items():
            self.params[short] = p
        self._step_out = self.layer.compute_output_shape(step_shape)

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        Layer.trainable.fset(self, value)
        if hasattr(self, "layer"):
            self.layer.trainable = value

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1]) + tuple(self._step_out[1:])

    def compute_mask(self, inputs, mask):
        return mask

    def call(self, inputs):
        folded = sym.reshape(inputs, shape=(-3, -2))
        out = self.layer.call(folded)
        steps = self.timesteps if self.timesteps is not None else -1
        unfolded = sym.reshape(out, shape=(-4, -1, steps, -2))
        return set_mask(unfolded, get_mask(inputs))

    def get_config(self):
        config = super().get_config()
        config["layer"] = serialize_layer(self.layer)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = deserialize_layer(config["layer"])
        return cls(**config)
