"""MXNet 1.x's symbolic RNN cells, ``mx.rnn``: cells built from ``sym`` ops, unrolled in Python.

    cell = mx.rnn.LSTMCell(num_hidden=64, prefix='lstm_')
    outputs, states = cell.unroll(length=28, inputs=mx.sym.var('data'), layout='NTC',
                                  merge_outputs=True)

Cells: :class:`RNNCell`, :class:`LSTMCell`, :class:`GRUCell`,
:class:`FusedRNNCell` (the engine's fused ``RNN`` op), and the modifiers
:class:`SequentialRNNCell`, :class:`BidirectionalCell`, :class:`DropoutCell`,
:class:`ZoneoutCell`, :class:`ResidualCell`. Parameter names, gate order
(LSTM i, f, c, o; GRU r, z, n) and ``pack_weights``/``unpack_weights``
follow MXNet, so MXNet checkpoints of these cells load by name.

One difference: MXNet's default ``begin_state`` is ``sym.zeros`` with an
unknown batch size, which this engine cannot infer. Here ``unroll`` without
``begin_state`` makes zero states shaped after the first step's input, and
``begin_state()`` without ``func`` returns variables named
``<prefix>begin_state_<i>`` to be fed.
"""
import bisect
import warnings

import numpy as np

from deepkit_engine import io as dk_io
from deepkit_engine import nd
from deepkit_engine import symbol as sym

from .. import backend
from . import mx_init

__all__ = ["RNNParams", "BaseRNNCell", "RNNCell", "LSTMCell", "GRUCell", "FusedRNNCell",
           "FusedRNN",
           "SequentialRNNCell", "BidirectionalCell", "DropoutCell", "ZoneoutCell",
           "ResidualCell", "ModifierCell", "BucketSentenceIter"]


class RNNParams:
    """The variables of a cell, created once per name (MXNet's ``RNNParams``).

    Args:
        prefix: Put in front of every name.
    """

    def __init__(self, prefix=""):
        self._prefix = prefix
        self._params = {}

    def get(self, name, **kwargs):
        """The variable ``prefix + name`` (made on first use)."""
        name = self._prefix + name
        if name not in self._params:
            self._params[name] = sym.Variable(name, **kwargs)
        return self._params[name]


def _split_time(inputs, length, layout, in_layout=None):
    """``inputs`` (a symbol or a list of per-step symbols) as ``length`` (batch, ...) steps."""
    axis = layout.find("T")
    if isinstance(inputs, (list, tuple)):
        if len(inputs) != length:
            raise ValueError(f"unroll: {len(inputs)} inputs given for length={length}")
        return list(inputs), axis
    if length == 1:
        return [sym.squeeze(inputs, axis=axis)], axis
    return list(sym.split(inputs, num_outputs=length, axis=axis, squeeze_axis=True)), axis


def _merge(outputs, axis, merge_outputs):
    if merge_outputs:
        return sym.stack(*outputs, axis=axis)
    return outputs


def _zeros_like_state(step_input, size):
    """(batch, size) zeros whose batch follows a (batch, features) step input."""
    column = sym.sum(sym.zeros_like(step_input), axis=1, keepdims=True)
    return sym.broadcast_axis(column, axis=1, size=size)


class BaseRNNCell:
    """A cell: ``cell(inputs, states) -> (output, new_states)`` for one step (MXNet).

    Args:
        prefix: Prefix of the cell's parameter and node names.
        params: An :class:`RNNParams` to share parameters with another cell.
    """

    def __init__(self, prefix="", params=None):
        if params is None:
            params = RNNParams(prefix)
            self._own_params = True
        else:
            self._own_params = False
        self._prefix = prefix
        self._params = params
        self._modified = False
        self.reset()

    def reset(self):
        """Restart the step counter that names the nodes (before a new unroll)."""
        self._init_counter = -1
        self._counter = -1

    @property
    def params(self):
        self._own_params = False
        return self._params

    @property
    def state_info(self):
        """One ``{'shape': (0, size), '__layout__': 'NC'}`` per state."""
        raise NotImplementedError

    @property
    def state_shape(self):
        return [info["shape"] for info in self.state_info]

    @property
    def _gate_names(self):
        return ("",)

    def begin_state(self, func=None, **kwargs):
        """The initial states: ``func(name=..., **kwargs)`` each, or fed variables by default."""
        if self._modified:
            raise RuntimeError("after applying a modifier cell, use the modifier's begin_state")
        states = []
        for info in self.state_info:
            self._init_counter += 1
            name = f"{self._prefix}begin_state_{self._init_counter}"
            if func is None:
                states.append(sym.Variable(name))
            else:
                states.append(func(name=name, **dict(info or {}, **kwargs)))
        return states

    def unpack_weights(self, args):
        """Split each ``i2h``/``h2h`` weight and bias into one array per gate (MXNet names)."""
        args = dict(args)
        if not self._gate_names or self._gate_names == ("",):
            return args
        h = self._num_hidden
        for group in ("i2h", "h2h"):
            weight = args.pop(f"{self._prefix}{group}_weight")
            bias = args.pop(f"{self._prefix}{group}_bias")
            for j, gate in enumerate(self._gate_names):
                args[f"{self._prefix}{group}{gate}_weight"] = weight[j * h:(j + 1) * h].copy()
                args[f"{self._prefix}{group}{gate}_bias"] = bias[j * h:(j + 1) * h].copy()
        return args

    def pack_weights(self, args):
        """The inverse of :meth:`unpack_weights`."""
        args = dict(args)
        if not self._gate_names or self._gate_names == ("",):
            return args
        for group in ("i2h", "h2h"):
            weights = [args.pop(f"{self._prefix}{group}{g}_weight") for g in self._gate_names]
            biases = [args.pop(f"{self._prefix}{group}{g}_bias") for g in self._gate_names]
            args[f"{self._prefix}{group}_weight"] = np.concatenate(weights)
            args[f"{self._prefix}{group}_bias"] = np.concatenate(biases)
        return args

    def __call__(self, inputs, states):
        raise NotImplementedError

    def unroll(self, length, inputs, begin_state=None, layout="NTC", merge_outputs=None):
        """Run the cell over ``length`` steps.

        Args:
            length: Number of steps.
            inputs: One symbol laid out as ``layout``, or a list of ``length``
                (batch, features) symbols.
            begin_state: Initial states (default: zeros).
            layout: ``'NTC'`` or ``'TNC'``.
            merge_outputs: Stack the outputs into one symbol (True), give a
                list (False), or whichever the inputs were (None).

        Returns:
            ``(outputs, states)``.
        """
        self.reset()
        steps, axis = _split_time(inputs, length, layout)
        if begin_state is None:
            begin_state = [_zeros_like_state(steps[0], shape[1]) for shape in self.state_shape]
        states = list(begin_state)
        outputs = []
        for t in range(length):
            out, states = self(steps[t], states)
            outputs.append(out)
        if merge_outputs is None:
            merge_outputs = not isinstance(inputs, (list, tuple))
        return _merge(outputs, axis, merge_outputs), states

    def _next_name(self):
        self._counter += 1
        return f"{self._prefix}t{self._counter}_"


class RNNCell(BaseRNNCell):
    """Elman RNN step: ``h' = activation(i2h(x) + h2h(h))``.

    Args:
        num_hidden: State width.
        activation: ``act_type`` of ``Activation`` (default tanh).
        prefix, params: See :class:`BaseRNNCell`.
    """

    def __init__(self, num_hidden, activation="tanh", prefix="rnn_", params=None):
        super().__init__(prefix=prefix, params=params)
        self._num_hidden = num_hidden
        self._activation = activation
        self._iW, self._iB = self.params.get("i2h_weight"), self.params.get("i2h_bias")
        self._hW, self._hB = self.params.get("h2h_weight"), self.params.get("h2h_bias")

    @property
    def state_info(self):
        return [{"shape": (0, self._num_hidden), "__layout__": "NC"}]

    def __call__(self, inputs, states):
        name = self._next_name()
        i2h = sym.FullyConnected(inputs, self._iW, self._iB, num_hidden=self._num_hidden,
                                 name=f"{name}i2h")
        h2h = sym.FullyConnected(states[0], self._hW, self._hB, num_hidden=self._num_hidden,
                                 name=f"{name}h2h")
        output = sym.Activation(i2h + h2h, act_type=self._activation, name=f"{name}out")
        return output, [output]


class LSTMCell(BaseRNNCell):
    """LSTM step with gates i, f, c, o; states ``[h, c]`` (MXNet's ``LSTMCell``).

    Args:
        num_hidden: State width.
        prefix, params: See :class:`BaseRNNCell`.
        forget_bias: The forget gate's initial bias: ``i2h_bias`` is declared
            with ``init=mx.init.LSTMBias(forget_bias)``, which initializers
            honour (as in MXNet).
    """

    def __init__(self, num_hidden, prefix="lstm_", params=None, forget_bias=1.0):
        super().__init__(prefix=prefix, params=params)
        self._num_hidden = num_hidden
        self.forget_bias = forget_bias
        self._iW = self.params.get("i2h_weight")
        self._iB = self.params.get("i2h_bias", init=mx_init.LSTMBias(forget_bias=forget_bias))
        self._hW, self._hB = self.params.get("h2h_weight"), self.params.get("h2h_bias")

    @property
    def state_info(self):
        return [{"shape": (0, self._num_hidden), "__layout__": "NC"},
                {"shape": (0, self._num_hidden), "__layout__": "NC"}]

    @property
    def _gate_names(self):
        return ("_i", "_f", "_c", "_o")

    def __call__(self, inputs, states):
        name = self._next_name()
        h = self._num_hidden
        i2h = sym.FullyConnected(inputs, self._iW, self._iB, num_hidden=4 * h, name=f"{name}i2h")
        h2h = sym.FullyConnected(states[0], self._hW, self._hB, num_hidden=4 * h,
                                 name=f"{name}h2h")
        gates = sym.SliceChannel(i2h + h2h, num_outputs=4, name=f"{name}slice")
        in_gate = sym.Activation(gates[0], act_type="sigmoid", name=f"{name}i")
        forget_gate = sym.Activation(gates[1], act_type="sigmoid", name=f"{name}f")
        in_transform = sym.Activation(gates[2], act_type="tanh", name=f"{name}c")
        out_gate = sym.Activation(gates[3], act_type="sigmoid", name=f"{name}o")
        next_c = forget_gate * states[1] + in_gate * in_transform
        next_h = out_gate * sym.Activation(next_c, act_type="tanh")
        return next_h, [next_h, next_c]


class GRUCell(BaseRNNCell):
    """GRU step with gates r, z and candidate n (MXNet's ``GRUCell``, reset after h2h).

    Args:
        num_hidden: State width.
        prefix, params: See :class:`BaseRNNCell`.
    """

    def __init__(self, num_hidden, prefix="gru_", params=None):
        super().__init__(prefix=prefix, params=params)
        self._num_hidden = num_hidden
        self._iW, self._iB = self.params.get("i2h_weight"), self.params.get("i2h_bias")
        self._hW, self._hB = self.params.get("h2h_weight"), self.params.get("h2h_bias")

    @property
    def state_info(self):
        return [{"shape": (0, self._num_hidden), "__layout__": "NC"}]

    @property
    def _gate_names(self):
        return ("_r", "_z", "_o")

    def __call__(self, inputs, states):
        name = self._next_name()
        h = self._num_hidden
        prev = states[0]
        i2h = sym.FullyConnected(inputs, self._iW, self._iB, num_hidden=3 * h, name=f"{name}i2h")
        h2h = sym.FullyConnected(prev, self._hW, self._hB, num_hidden=3 * h, name=f"{name}h2h")
        i_r, i_z, i_n = sym.SliceChannel(i2h, num_outputs=3, name=f"{name}i2h_slice")
        h_r, h_z, h_n = sym.SliceChannel(h2h, num_outputs=3, name=f"{name}h2h_slice")
        reset = sym.Activation(i_r + h_r, act_type="sigmoid", name=f"{name}r_act")
        update = sym.Activation(i_z + h_z, act_type="sigmoid", name=f"{name}z_act")
        candidate = sym.Activation(i_n + reset * h_n, act_type="tanh", name=f"{name}h_act")
        next_h = (1.0 - update) * candidate + update * prev
        return next_h, [next_h]


_FUSED_GATES = {"rnn_relu": ("",), "rnn_tanh": ("",), "lstm": ("_i", "_f", "_c", "_o"),
                "gru": ("_r", "_z", "_o")}


@mx_init.register
class FusedRNN(mx_init.Initializer):
    """MXNet's ``mx.init.FusedRNN``: initializes a fused RNN's packed ``parameters`` vector.

    The vector is split into its per-gate arrays (as :meth:`FusedRNNCell.unpack_weights`
    names them); each is initialized by ``init`` or, when None, by the initializer given
    to ``init_params`` (by its name: ``_weight``, ``_bias``), except the LSTM forget
    gate's biases, which are ``forget_bias``.

    Args:
        init: An initializer (or its ``dumps()`` string), or None.
        num_hidden, num_layers, mode, bidirectional, forget_bias: As the cell's.
    """

    def __init__(self, init, num_hidden, num_layers, mode, bidirectional=False,
                 forget_bias=1.0):
        init = mx_init.create(init) if isinstance(init, str) else init
        super().__init__(init=init.dumps() if init is not None else None,
                         num_hidden=num_hidden, num_layers=num_layers, mode=mode,
                         bidirectional=bidirectional, forget_bias=forget_bias)
        self._init, self._forget_bias, self._mode = init, forget_bias, mode
        self._layout = (num_hidden, num_layers, mode, bidirectional)

    def _init_declared(self, name, shape, rng, global_init):
        cell = FusedRNNCell(*self._layout, forget_bias=self._forget_bias, prefix="")
        args = cell.unpack_weights({"parameters": np.zeros(shape)})
        for part, value in args.items():
            if self._mode == "lstm" and part.endswith("_f_bias"):
                value[...] = self._forget_bias
            else:
                init = self._init if self._init is not None else global_init
                value[...] = init.generate(part, value.shape, value.dtype, rng)
        return cell.pack_weights(args)["parameters"].reshape(shape)

    def _init_weight(self, name, shape, rng):
        return self._init_declared(name, shape, rng, mx_init.Uniform())


class FusedRNNCell(BaseRNNCell):
    """Several layers (optionally bidirectional) in one fused ``RNN`` op (MXNet).

    The parameters are one vector ``<prefix>parameters`` in MXNet's packing;
    :meth:`unpack_weights` splits it into per-layer, per-direction, per-gate
    arrays named as MXNet names them (``lstm_l0_i2h_i_weight``, ``lstm_r0_...``).

    Args:
        num_hidden: State width per layer and direction.
        num_layers: Stacked layers.
        mode: ``'rnn_relu'``, ``'rnn_tanh'``, ``'lstm'`` or ``'gru'``.
        bidirectional: Two directions per layer.
        dropout: Dropout between layers (training).
        get_next_state: Also return the final states from ``unroll``.
        forget_bias: Kept for MXNet's signature.
        prefix, params: See :class:`BaseRNNCell` (default prefix ``'<mode>_'``).
    """

    def __init__(self, num_hidden, num_layers=1, mode="lstm", bidirectional=False, dropout=0.0,
                 get_next_state=False, forget_bias=1.0, prefix=None, params=None):
        if mode not in _FUSED_GATES:
            raise ValueError(f"FusedRNNCell: mode must be one of {sorted(_FUSED_GATES)}; got "
                             f"{mode!r}")
        super().__init__(prefix=f"{mode}_" if prefix is None else prefix, params=params)
        self._num_hidden = num_hidden
        self._num_layers = num_layers
        self._mode = mode
        self._bidirectional = bidirectional
        self._dropout = dropout
        self._get_next_state = get_next_state
        self.forget_bias = forget_bias
        self._directions = ["l", "r"] if bidirectional else ["l"]
        self._parameter = self.params.get(
            "parameters", init=FusedRNN(None, num_hidden, num_layers, mode, bidirectional,
                                        forget_bias))

    @property
    def state_info(self):
        b = len(self._directions) * self._num_layers
        n = 2 if self._mode == "lstm" else 1
        return [{"shape": (b, 0, self._num_hidden), "__layout__": "LNC"} for _ in range(n)]

    @property
    def _gate_names(self):
        return _FUSED_GATES[self._mode]

    def _slices(self, input_size):
        """``[(name, start, shape)]`` of every array in the packed vector, in order."""
        h, gates = self._num_hidden, self._gate_names
        out, off = [], 0
        for layer in range(self._num_layers):
            width = input_size if layer == 0 else len(self._directions) * h
            for d in self._directions:
                for group, cols in (("i2h", width), ("h2h", h)):
                    for gate in gates:
                        out.append((f"{self._prefix}{d}{layer}_{group}{gate}_weight", off,
                                    (h, cols)))
                        off += h * cols
        for layer in range(self._num_layers):
            for d in self._directions:
                for group in ("i2h", "h2h"):
                    for gate in gates:
                        out.append((f"{self._prefix}{d}{layer}_{group}{gate}_bias", off, (h,)))
                        off += h
        return out, off

    def unpack_weights(self, args):
        """Split ``<prefix>parameters`` into MXNet's per-gate arrays."""
        args = dict(args)
        flat = np.asarray(args.pop(self._prefix + "parameters"))
        h, g = self._num_hidden, len(self._gate_names)
        d = len(self._directions)
        # total = g*h*d*(I + h + 2) + (L-1)*g*h*d*(d*h + h + 2)  ->  solve for I
        rest = (self._num_layers - 1) * g * h * d * (d * h + h + 2)
        input_size = (flat.size - rest) // (g * h * d) - h - 2
        slices, total = self._slices(input_size)
        if total != flat.size:
            raise ValueError(f"FusedRNNCell '{self._prefix}': parameters has {flat.size} values, "
                             f"which fits no input size")
        for name, start, shape in slices:
            args[name] = flat[start:start + int(np.prod(shape))].reshape(shape).copy()
        return args

    def pack_weights(self, args):
        """Concatenate MXNet's per-gate arrays back into ``<prefix>parameters``."""
        args = dict(args)
        first = args[f"{self._prefix}l0_i2h{self._gate_names[0]}_weight"]
        slices, _ = self._slices(np.asarray(first).shape[1])
        args[self._prefix + "parameters"] = np.concatenate(
            [np.asarray(args.pop(name)).ravel() for name, _, _ in slices])
        return args

    def __call__(self, inputs, states):
        raise NotImplementedError("FusedRNNCell cannot be stepped; use unroll() (or unfuse())")

    def unroll(self, length, inputs, begin_state=None, layout="NTC", merge_outputs=None):
        self.reset()
        axis = layout.find("T")
        if isinstance(inputs, (list, tuple)):
            inputs = sym.stack(*inputs, axis=0)
            axis_in = 0
        else:
            axis_in = axis
        data = inputs if axis_in == 0 else sym.swapaxes(inputs, dim1=0, dim2=1)
        if begin_state is None:
            first = sym.slice_axis(data, axis=0, begin=0, end=1)
            column = sym.sum(sym.zeros_like(first), axis=2, keepdims=True)
            rows = len(self._directions) * self._num_layers
            zero = sym.broadcast_axis(sym.broadcast_axis(column, axis=2, size=self._num_hidden),
                                      axis=0, size=rows)
            begin_state = [zero] * len(self.state_info)
        outs = sym.RNN(data, self._parameter, *begin_state, state_size=self._num_hidden,
                       num_layers=self._num_layers, bidirectional=self._bidirectional,
                       p=self._dropout, state_outputs=self._get_next_state, mode=self._mode,
                       name=f"{self._prefix}rnn")
        output = outs[0] if self._get_next_state else outs
        states = [outs[k] for k in range(1, 1 + len(self.state_info))] \
            if self._get_next_state else []
        if axis == 1:
            output = sym.swapaxes(output, dim1=0, dim2=1)
        if merge_outputs is False:
            output = list(sym.split(output, num_outputs=length, axis=axis, squeeze_axis=True)) \
                if length > 1 else [sym.squeeze(output, axis=axis)]
        return output, states

    def unfuse(self):
        """The same network as a :class:`SequentialRNNCell` of plain cells (same names)."""
        def make(prefix):
            if self._mode == "lstm":
                return LSTMCell(self._num_hidden, prefix=prefix)
            if self._mode == "gru":
                return GRUCell(self._num_hidden, prefix=prefix)
            return RNNCell(self._num_hidden, activation=self._mode[4:], prefix=prefix)

        stack = SequentialRNNCell()
        for layer in range(self._num_layers):
            if self._bidirectional:
                stack.add(BidirectionalCell(make(f"{self._prefix}l{layer}_"),
                                            make(f"{self._prefix}r{layer}_"),
                                            output_prefix=f"{self._prefix}bi_l{layer}_"))
            else:
                stack.add(make(f"{self._prefix}l{layer}_"))
            if self._dropout > 0 and layer != self._num_layers - 1:
                stack.add(DropoutCell(self._dropout, prefix=f"{self._prefix}_dropout{layer}_"))
        return stack


class _CellGroup(BaseRNNCell):
    """A cell made of child cells (``self._cells``): their states and weights, in order."""

    @property
    def state_info(self):
        return [info for cell in self._cells for info in cell.state_info]

    def begin_state(self, **kwargs):
        return [s for cell in self._cells for s in cell.begin_state(**kwargs)]

    def unpack_weights(self, args):
        for cell in self._cells:
            args = cell.unpack_weights(args)
        return args

    def pack_weights(self, args):
        for cell in self._cells:
            args = cell.pack_weights(args)
        return args


class SequentialRNNCell(_CellGroup):
    """Cells stacked: each step runs them in order (MXNet)."""

    def __init__(self, params=None):
        super().__init__(prefix="", params=params)
        self._cells = []

    def add(self, cell):
        """Append a cell."""
        self._cells.append(cell)

    def __call__(self, inputs, states):
        self._counter += 1
        next_states, pos = [], 0
        for cell in self._cells:
            n = len(cell.state_info)
            inputs, new = cell(inputs, states[pos:pos + n])
            pos += n
            next_states += list(new)
        return inputs, next_states

    def unroll(self, length, inputs, begin_state=None, layout="NTC", merge_outputs=None):
        self.reset()
        states_out, pos = [], 0
        for k, cell in enumerate(self._cells):
            n = len(cell.state_info)
            state = None if begin_state is None else begin_state[pos:pos + n]
            pos += n
            last = k == len(self._cells) - 1
            inputs, new = cell.unroll(length, inputs, begin_state=state, layout=layout,
                                      merge_outputs=merge_outputs if last else None)
            states_out += list(new)
        return inputs, states_out


class BidirectionalCell(_CellGroup):
    """A left-to-right and a right-to-left cell; outputs concatenated per step (MXNet).

    Args:
        l_cell, r_cell: The two cells.
        params: Shared parameters.
        output_prefix: Prefix of the concatenation nodes.
    """

    def __init__(self, l_cell, r_cell, params=None, output_prefix="bi_"):
        super().__init__(prefix="", params=params)
        self._cells = [l_cell, r_cell]
        self._output_prefix = output_prefix

    def __call__(self, inputs, states):
        raise NotImplementedError("BidirectionalCell cannot be stepped; use unroll()")

    def unroll(self, length, inputs, begin_state=None, layout="NTC", merge_outputs=None):
        self.reset()
        steps, axis = _split_time(inputs, length, layout)
        l_cell, r_cell = self._cells
        n = len(l_cell.state_info)
        l_state = None if begin_state is None else begin_state[:n]
        r_state = None if begin_state is None else begin_state[n:]
        l_out, l_states = l_cell.unroll(length, steps, l_state, layout, merge_outputs=False)
        r_out, r_states = r_cell.unroll(length, steps[::-1], r_state, layout,
                                        merge_outputs=False)
        r_out = list(r_out)[::-1]
        outputs = [sym.concat(a, b, dim=1, name=f"{self._output_prefix}t{t}")
                   for t, (a, b) in enumerate(zip(l_out, r_out))]
        if merge_outputs is None:
            merge_outputs = not isinstance(inputs, (list, tuple))
        return _merge(outputs, axis, merge_outputs), list(l_states) + list(r_states)


class ModifierCell(BaseRNNCell):
    """Wraps a cell and changes what a step does (MXNet's base of Dropout/Zoneout/Residual)."""

    def __init__(self, base_cell):
        base_cell._modified = True
        super().__init__(prefix="", params=None)
        self.base_cell = base_cell

    @property
    def params(self):
        return self.base_cell.params

    @property
    def state_info(self):
        return self.base_cell.state_info

    def begin_state(self, func=None, **kwargs):
        self.base_cell._modified = False
        states = self.base_cell.begin_state(func=func, **kwargs)
        self.base_cell._modified = True
        return states

    def unpack_weights(self, args):
        return self.base_cell.unpack_weights(args)

    def pack_weights(self, args):
        return self.base_cell.pack_weights(args)

    def reset(self):
        super().reset()
        if hasattr(self, "base_cell"):
            self.base_cell.reset()


class DropoutCell(BaseRNNCell):
    """Dropout on the step's input, as a cell with no state (MXNet).

    Args:
        dropout: Rate.
        prefix, params: See :class:`BaseRNNCell`.
    """

    def __init__(self, dropout, prefix="dropout_", params=None):
        super().__init__(prefix=prefix, params=params)
        self.dropout = float(dropout)

    @property
    def state_info(self):
        return []

    def __call__(self, inputs, states):
        if self.dropout > 0:
            inputs = sym.Dropout(inputs, p=self.dropout)
        return inputs, states


class ZoneoutCell(ModifierCell):
    """Zoneout (Krueger 2016): in training, keep each output/state unit's previous value
    with probability ``zoneout_outputs``/``zoneout_states`` (MXNet).
    """

    def __init__(self, base_cell, zoneout_outputs=0.0, zoneout_states=0.0):
        if isinstance(base_cell, (FusedRNNCell, BidirectionalCell)):
            raise ValueError("ZoneoutCell cannot wrap a FusedRNNCell or a BidirectionalCell")
        super().__init__(base_cell)
        self.zoneout_outputs = float(zoneout_outputs)
        self.zoneout_states = float(zoneout_states)
        self.prev_output = None

    def reset(self):
        super().reset()
        self.prev_output = None

    def __call__(self, inputs, states):
        cell = self.base_cell
        next_output, next_states = cell(inputs, states)

        def mask(p, like):
            return sym.Dropout(sym.ones_like(like), p=p)

        prev = self.prev_output if self.prev_output is not None else sym.zeros_like(next_output)
        if self.zoneout_outputs > 0:
            keep = mask(self.zoneout_outputs, next_output)
            output = sym.where(keep, next_output, prev)
        else:
            output = next_output
        if self.zoneout_states > 0:
            next_states = [sym.where(mask(self.zoneout_states, new), new, old)
                           for new, old in zip(next_states, states)]
        self.prev_output = output
        return output, list(next_states)


class ResidualCell(ModifierCell):
    """Adds the step's input to the base cell's output (MXNet)."""

    def __call__(self, inputs, states):
        output, states = self.base_cell(inputs, states)
        return output + inputs, states

    def unroll(self, length, inputs, begin_state=None, layout="NTC", merge_outputs=None):
        self.reset()
        self.base_cell._modified = False
        outputs, states = self.base_cell.unroll(length, inputs, begin_state, layout,
                                                merge_outputs=merge_outputs)
        self.base_cell._modified = True
        if isinstance(outputs, (list, tuple)):
            steps, _ = _split_time(inputs, length, layout)
            return [o + i for o, i in zip(outputs, steps)], states
        if isinstance(inputs, (list, tuple)):
            inputs = sym.stack(*inputs, axis=layout.find("T"))
        return outputs + inputs, states


class BucketSentenceIter(dk_io.DataIter):
    """Batches of token sentences grouped by length into buckets (MXNet's iterator).

    Each sentence goes to the smallest bucket that holds it, padded with
    ``invalid_label``; longer ones are dropped (with a warning). The label of
    a sentence is the sentence shifted left by one step (next-token
    prediction), ending in ``invalid_label``. Every batch comes from one
    bucket and carries its length as ``bucket_key``.

    Args:
        sentences: Lists of token ids.
        batch_size: Sentences per batch.
        buckets: Bucket lengths (default: every length that at least
            ``batch_size`` sentences have).
        invalid_label: The padding value.
        data_name, label_name: Names in ``provide_data``/``provide_label``.
        dtype: Of the arrays.
        layout: ``'NT'`` (batch first) or ``'TN'``.
    """

    def __init__(self, sentences, batch_size, buckets=None, invalid_label=-1, data_name="data",
                 label_name="softmax_label", dtype="float32", layout="NT"):
        super().__init__(batch_size)
        if layout not in ("NT", "TN"):
            raise ValueError(f"BucketSentenceIter: layout must be 'NT' or 'TN'; got {layout!r}")
        if not buckets:
            counts = np.bincount([len(s) for s in sentences])
            buckets = [length for length, n in enumerate(counts) if n >= batch_size]
        if not buckets:
            raise ValueError(f"BucketSentenceIter: no sentence length occurs batch_size="
                             f"{batch_size} times; pass buckets=")
        buckets = sorted(int(b) for b in buckets)
        rows = [[] for _ in buckets]
        discarded = 0
        for sentence in sentences:
            k = bisect.bisect_left(buckets, len(sentence))
            if k == len(buckets):
                discarded += 1
                continue
            row = np.full((buckets[k],), invalid_label, dtype=dtype)
            row[:len(sentence)] = sentence
            rows[k].append(row)
        if discarded:
            warnings.warn(f"BucketSentenceIter: discarded {discarded} sentences longer than the "
                          f"largest bucket ({buckets[-1]})", stacklevel=2)
        self.data = [np.asarray(r, dtype=dtype).reshape(len(r), b)
                     for r, b in zip(rows, buckets)]
        self.buckets = buckets
        self.invalid_label = invalid_label
        self.data_name, self.label_name = data_name, label_name
        self.dtype = np.dtype(dtype)
        self.layout = layout
        self.major_axis = layout.find("N")
        self.default_bucket_key = max(buckets)
        shape = (batch_size, self.default_bucket_key) if self.major_axis == 0 else \
            (self.default_bucket_key, batch_size)
        self.provide_data = [dk_io.DataDesc(data_name, shape, self.dtype, layout)]
        self.provide_label = [dk_io.DataDesc(label_name, shape, self.dtype, layout)]
        self.idx = [(k, start) for k, bucket in enumerate(self.data)
                    for start in range(0, len(bucket) - batch_size + 1, batch_size)]
        self.curr_idx = 0
        self.reset()

    def reset(self):
        """Shuffle the batches and the sentences within each bucket; start over."""
        rng = backend.rng()
        self.curr_idx = 0
        rng.shuffle(self.idx)
        self.nddata, self.ndlabel = [], []
        for bucket in self.data:
            rng.shuffle(bucket)
            label = np.empty_like(bucket)
            label[:, :-1] = bucket[:, 1:]
            label[:, -1] = self.invalid_label
            self.nddata.append(bucket)
            self.ndlabel.append(label)

    def next(self):
        """The next :class:`~deepkit_engine.io.DataBatch` (raises StopIteration at the end)."""
        if self.curr_idx == len(self.idx):
            raise StopIteration
        k, start = self.idx[self.curr_idx]
        self.curr_idx += 1
        data = self.nddata[k][start:start + self.batch_size]
        label = self.ndlabel[k][start:start + self.batch_size]
        if self.major_axis == 1:
            data, label = data.T, label.T
        return dk_io.DataBatch(
            [nd.array(data, dtype=self.dtype)], [nd.array(label, dtype=self.dtype)], pad=0,
            bucket_key=self.buckets[k],
            provide_data=[dk_io.DataDesc(self.data_name, data.shape, self.dtype, self.layout)],
            provide_label=[dk_io.DataDesc(self.label_name, label.shape, self.dtype,
                                          self.layout)])
