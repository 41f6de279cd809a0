"""RNN: MXNet 1.x's fused multi-layer recurrent op (vanilla RNN, LSTM, GRU).

Layout and packing follow MXNet (and cuDNN) exactly, so MXNet parameter
vectors load unchanged:

* ``data`` is (seq_length T, batch N, input_size I) (layout TNC); ``state``
  (and ``state_cell`` for LSTM) are (num_layers * D, N, H) with D = 2 when
  bidirectional, ordered layer by layer, forward direction first.
* ``parameters`` is one flat vector: for each layer, for each direction, the
  input-to-hidden weights (G*H, in) then the hidden-to-hidden weights
  (G*H, H); after ALL the weights, ALL the biases in the same layer/direction
  order, i2h bias (G*H) then h2h bias (G*H). ``in`` is I for layer 0 and D*H
  above. G is 1 (rnn_relu, rnn_tanh), 4 (lstm: gates i, f, g, o) or 3 (gru:
  gates r, z, n). See :func:`rnn_param_size` (MXNet's ``GetRnnParamSize``).
* GRU uses MXNet's (cuDNN's) formula ``n = tanh(W_in x + b_in + r * (W_hn h +
  b_hn))``, ``h' = (1 - z) * n + z * h``.
* The reverse direction reads the sequence from the end; its final state
  (``state_output``) is the state after reaching t = 0. The output
  concatenates the directions on the last axis.
* ``p`` is the dropout rate on the outputs of every layer except the last
  (training mode only, inverted scaling by 1/(1-p)).

Kernels: both directions of a layer run together, the direction being a
batch axis of every array (the reverse direction's sequence is stored time
reversed, "step order"). The input projections of all time steps are one
GEMM per layer; the time loop does one small batched GEMM and a few
vectorised elementwise ops per step.

Float32 LSTMs and GRUs on the CPU, with or without a step mask, run fused
kernels (:mod:`.fused_cpu`, with numba: ``pip install 'deepkit[fast]'``): per
step one GEMM and one elementwise kernel. A training forward then keeps every
step's gate activations (and LSTM's cell state, GRU's ``h W_hn + b_hn``) in
the hidden output ``kept_states`` (5H or 4H values per layer, direction, step
and sample, and a flag saying whether they were kept), and backward reads
them instead of recomputing anything: per step one kernel and one GEMM.
After a forward that kept nothing (``is_train=False``, as MXNet allows), the
layers run forward again, keeping.

Otherwise backward (``_backward_RNN``) keeps nothing hidden from forward
except the dropout masks (a hidden output, only when ``p > 0`` and there are
several layers, since random draws cannot be recomputed). It reads the
forward's ``output`` for the last layer's hidden states; the layers below (if
any) are re-run once with the plain forward loop. Given a layer's
hidden-state sequence, all its gate activations are recomputed at once with
one GEMM (no time loop, except the LSTM cell recurrence, which is
elementwise), and the time loop of backprop-through-time then needs one small
GEMM per step. The weight gradients are one GEMM each over all time steps.
"""
import numpy as np

from .. import threads
from ..base import ParamError, ShapeError
from . import fused_cpu
from .random_ops import uniform01
from .registry import OpDef, Param, register, same_dtype, write_result

__all__ = ["rnn_param_size"]

_MODES = ("rnn_relu", "rnn_tanh", "lstm", "gru")
_GATES = {"rnn_relu": 1, "rnn_tanh": 1, "lstm": 4, "gru": 3}


def rnn_param_size(mode, input_size, state_size, num_layers=1, bidirectional=False):
    """Length of RNN's packed ``parameters`` vector (MXNet's ``GetRnnParamSize``).

    Args:
        mode: 'rnn_relu', 'rnn_tanh', 'lstm' or 'gru'.
        input_size: Features per time step of the data.
        state_size: Hidden units H per layer and direction.
        num_layers: Stacked layers.
        bidirectional: Two directions per layer.

    Returns:
        ``D*G*H*(I + H + 2) + (num_layers - 1) * D*G*H*(D*H + H + 2)``.
    """
    d = 2 if bidirectional else 1
    gh = _GATES[mode] * state_size
    first = d * gh * (input_size + state_size + 2)
    other = d * gh * (d * state_size + state_size + 2)
    return first + (num_layers - 1) * other


# -- declaration helpers ------------------------------------------------------------

def _dirs(attrs):
    return 2 if attrs.bidirectional else 1


def _is_lstm(attrs):
    return attrs.mode == "lstm"


#: Values per unit, step and sample that a training forward keeps for backward: LSTM's
#: gates i, f, g, o and cell state; GRU's gates r, z, n and ``h W_hn + b_hn``.
_KEPT_PER_UNIT = {"lstm": 5, "gru": 4}


def _keeps_states(attrs):
    """Whether the op has the hidden ``kept_states`` output (LSTM and GRU)."""
    return attrs.mode in _KEPT_PER_UNIT and attrs.keep_states


def _has_mask(attrs):
    return attrs.p > 0 and attrs.num_layers > 1


def _num_state_outputs(attrs):
    if not attrs.state_outputs:
        return 0
    return 2 if _is_lstm(attrs) else 1


def _inputs(attrs):
    names = ("data", "parameters", "state") + (("state_cell",) if _is_lstm(attrs) else ())
    return names + ("step_mask",) if attrs.use_step_mask else names


def _outputs(attrs):
    names = ("output", "state_output", "statecell_output")[:1 + _num_state_outputs(attrs)]
    if _has_mask(attrs):
        names += ("dropout_mask",)
    return names + ("kept_states",) if _keeps_states(attrs) else names


def _kept_size(attrs, t, n):
    """Length of the hidden ``kept_states`` output: ``_KEPT_PER_UNIT`` values per unit,
    layer, direction, step and sample, then a flag."""
    return (attrs.num_layers * _dirs(attrs) * t * n * _KEPT_PER_UNIT[attrs.mode]
            * attrs.state_size + 1)


def _visible_outputs(attrs):
    return 1 + _num_state_outputs(attrs)


def _check_params(attrs):
    if not attrs.p < 1:
        raise ParamError(f"param p={attrs.p!r} must be < 1 (the dropout rate between layers)",
                         param="p", value=attrs.p)
    for name in ("projection_size", "lstm_state_clip_min", "lstm_state_clip_max"):
        if attrs[name] is not None:
            raise ParamError(f"param {name}={attrs[name]!r} is not supported (only the default "
                             "None)", param=name, value=attrs[name])
    if attrs.use_sequence_length:
        raise ParamError("param use_sequence_length=True is not supported (only False)",
                         param="use_sequence_length", value=True)


def _rnn_shape(attrs, in_shapes):
    _check_params(attrs)
    names = _inputs(attrs)
    n_out = len(_outputs(attrs))
    data = in_shapes[0]
    if data is None:
        return list(in_shapes), [None] * n_out
    data = tuple(data)
    if len(data) != 3:
        raise ShapeError(f"input 'data' has shape {data}; RNN needs a 3-D (seq_length, "
                         "batch_size, input_size) array (layout TNC)", argument="data",
                         expected="(seq_length, batch_size, input_size)", actual=data)
    t, n, i = data
    d, h, layers = _dirs(attrs), attrs.state_size, attrs.num_layers
    size = rnn_param_size(attrs.mode, i, h, layers, attrs.bidirectional)
    state = (layers * d, n, h)
    want = [data, (size,), state] + ([state] if _is_lstm(attrs) else [])
    if attrs.use_step_mask:
        want.append((t, n))
    for name, given, expected in zip(names[1:], in_shapes[1:], want[1:]):
        if given is None or _fits(given, expected):
            continue
        if name == "step_mask":
            why = "one value per (step, sample): (seq_length, batch_size)"
        elif name == "parameters":
            why = (f"mode={attrs.mode!r} with input_size={i}, state_size={h}, "
                   f"num_layers={layers}, bidirectional={attrs.bidirectional} packs {size} "
                   "values")
        else:
            why = (f"(num_layers * directions, batch_size, state_size) = ({layers} * {d}, "
                   f"{n}, {h})")
        raise ShapeError(f"input '{name}' has shape {tuple(given)} but {expected} was "
                         f"expected: {why}", argument=name, expected=expected,
                         actual=tuple(given))
    outs = [(t, n, d * h)] + [state] * _num_state_outputs(attrs)
    if _has_mask(attrs):
        outs.append((layers - 1, t, n, d * h))
    if _keeps_states(attrs):
        outs.append((_kept_size(attrs, t, n),))
    return want, outs


_rnn_shape.partial = True


def _fits(given, expected):
    """Whether a given input shape is ``expected``, dimensions 0 (unknown) matching any."""
    return len(given) == len(expected) and all(g in (0, e) for g, e in zip(given, expected))


def _rnn_partial_shapes(attrs, ins, outs):
    """Shapes when the data is known and the states only partly (MXNet's ``begin_state``
    of a symbol: ``zeros(shape=(layers, 0, state_size))``, the batch size from the data)."""
    data = ins[0]
    if data is None or 0 in tuple(data):
        return None
    return _rnn_shape(attrs, ins)


_rnn_shape.partial_shapes = _rnn_partial_shapes


def _rnn_type(attrs, in_dtypes):
    ins, outs = same_dtype(attrs, in_dtypes)
    return ins, outs * len(_outputs(attrs))


# -- kernels: shared pieces -----------------------------------------------------------

def _unpack(params, mode, layers, d, input_size, h):
    """Per layer ``[w_ih (D, GH, in), w_hh (D, GH, H), b_ih (D, GH), b_hh (D, GH)]``.

    All are views into ``params`` (so the same call on a gradient buffer gives
    views to write the gradients into).
    """
    gh = _GATES[mode] * h
    result, off = [], 0
    for layer in range(layers):
        in_size = input_size if layer == 0 else d * h
        per_dir = gh * (in_size + h)
        block = params[off:off + d * per_dir].reshape(d, per_dir)
        result.append([block[:, :gh * in_size].reshape(d, gh, in_size),
                       block[:, gh * in_size:].reshape(d, gh, h)])
        off += d * per_dir
    for layer in range(layers):
        bias = params[off:off + d * 2 * gh].reshape(d, 2, gh)
        result[layer] += [bias[:, 0], bias[:, 1]]
        off += d * 2 * gh
    return result


def _step_order(xp, y, d, h=None):
    """(T, N, d*h) or (T, N, I) -> (d, T, N, ·) with direction 1 time reversed.

    With ``h`` given, direction k takes features [k*h, (k+1)*h) (an output or its
    gradient); without, every direction sees all features (a layer input).
    Always a fresh contiguous array.
    """
    t, n = y.shape[:2]
    width = y.shape[2] if h is None else h
    out = xp.empty((d, t, n, width), y.dtype)
    for k in range(d):
        part = y if h is None else y[:, :, k * h:(k + 1) * h]
        out[k] = part if k == 0 else part[::-1]
    return out


def _time_order(xp, hs, out=None):
    """(d, T, N, H) step-ordered states -> (T, N, d*H) output (directions side by side)."""
    d, t, n, h = hs.shape
    if out is None:
        out = xp.empty((t, n, d * h), hs.dtype)
    for k in range(d):
        out[:, :, k * h:(k + 1) * h] = hs[k] if k == 0 else hs[k, ::-1]
    return out


def _project(xp, mode, xs, w_ih, b_ih, b_hh):
    """Input projections of every step, with the biases: (d, T, N, GH), one GEMM."""
    d, t, n, i = xs.shape
    gh = w_ih.shape[1]
    proj = threads.matmul(xp, xs.reshape(d, t * n, i), w_ih.transpose(0, 2, 1))
    if mode == "gru":  # b_hn stays inside r * (W_hn h + b_hn)
        h2 = 2 * (gh // 3)
        bias = b_ih.copy()
        bias[:, :h2] += b_hh[:, :h2]
    else:
        bias = b_ih + b_hh
    proj += bias[:, None, :]
    return proj.reshape(d, t, n, gh)


def _lstm_scale(xp, h, dtype):
    """sigmoid(x) = 0.5 * tanh(0.5 x) + 0.5: with the i, f, o pre-activations
    scaled by 0.5 one tanh serves all four gates, then ``* scale + shift``."""
    scale = np.full(4 * h, 0.5, dtype)
    scale[2 * h:3 * h] = 1.0
    shift = np.full(4 * h, 0.5, dtype)
    shift[2 * h:3 * h] = 0.0
    return xp.asarray(scale), xp.asarray(shift)


def _sigmoid_(xp, x):
    """In-place logistic sigmoid through tanh (no overflow for large |x|)."""
    x *= 0.5
    xp.tanh(x, out=x)
    x *= 0.5
    x += 0.5
    return x


def _keep(xp, new, old, m):
    """``new = old + m * (new - old)`` in place: masked samples (m = 0) keep ``old``."""
    new -= old
    new *= m
    new += old
    return new


#: Each part of a batch split over the kernel pool has at least this many rows.
MIN_ROWS_PER_PART = 8


def _row_parts(xp, n):
    """Slices of the batch for the kernel pool's threads, or None to run whole.

    Samples are independent in a recurrent layer, so each thread can run the
    whole time loop for its rows: one hand-off per layer, where splitting
    every step's small products would pay one per step.
    """
    parts = min(threads.pool_size(), n // MIN_ROWS_PER_PART)
    if xp is not np or parts < 2:
        return None
    step = -(-n // parts)
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def _rows(a, r, axis):
    """``a`` restricted to batch rows ``r`` on ``axis`` (None stays None)."""
    if a is None:
        return None
    return a[(slice(None),) * axis + (r,)]


def _layer_forward(xp, mode, xs, w, h0, c0, hs, m=None, kept=None):
    """One layer over the whole sequence; the batch split over the kernel pool.

    Same arguments and result as :func:`_layer_forward_rows`; ``kept``: see
    :func:`_lstm_forward_fused`.
    """
    fused = _fused_kernels(xp, mode, hs.dtype)
    if fused is not None:
        if mode == "gru":
            _gru_forward_fused(fused, xs, w, h0, hs, kept, m)
            return None
        return _lstm_forward_fused(fused, xs, w, h0, c0, hs, kept, m)
    parts = _row_parts(xp, xs.shape[2])
    if parts is None:
        return _layer_forward_rows(xp, mode, xs, w, h0, c0, hs, m)
    c_last = xp.empty_like(c0) if c0 is not None else None

    def part(r):
        c = _layer_forward_rows(xp, mode, _rows(xs, r, 2), w, _rows(h0, r, 1),
                                _rows(c0, r, 1), _rows(hs, r, 2), _rows(m, r, 2))
        if c is not None:
            c_last[:, r] = c
    threads.parallel_map(part, parts)
    return c_last


def _layer_forward_rows(xp, mode, xs, w, h0, c0, hs, m=None):
    """One layer, both directions at once, over the whole sequence (some batch rows).

    Args:
        xs: (d, T, N, I) step-ordered layer input.
        w: ``[w_ih, w_hh, b_ih, b_hh]`` of the layer.
        h0, c0: (d, N, H) initial states (c0 None unless LSTM).
        hs: (d, T, N, H) buffer that receives the hidden state of every step.
        m: None, or the (d, T, N, 1) step-ordered step mask: where it is 0 a
            sample's states stay as they were (Keras's masking).

    Returns:
        The last cell state (d, N, H) for LSTM, else None.
    """
    w_ih, w_hh, b_ih, b_hh = w
    d, t, n, _ = xs.shape
    h = w_hh.shape[2]
    dtype = hs.dtype
    proj = _project(xp, mode, xs, w_ih, b_ih, b_hh)
    prev = h0
    if mode == "lstm":
        scale, shift = _lstm_scale(xp, h, dtype)
        proj *= scale
        w_t = xp.ascontiguousarray((w_hh * scale[:, None]).transpose(0, 2, 1))
        gates = xp.empty((d, n, 4 * h), dtype)
        tmp = xp.empty((d, n, h), dtype)
        c = c0.copy()
        ig, fg, gg, og = (gates[..., k * h:(k + 1) * h] for k in range(4))
        c_new = xp.empty_like(c) if m is not None else None
        for i in range(t):
            threads.matmul(xp, prev, w_t, gates)
            gates += proj[:, i]
            xp.tanh(gates, out=gates)
            gates *= scale
            gates += shift
            if m is None:
                c *= fg
                xp.multiply(ig, gg, out=tmp)
                c += tmp
            else:
                xp.multiply(c, fg, out=c_new)
                xp.multiply(ig, gg, out=tmp)
                c_new += tmp
                _keep(xp, c_new, c, m[:, i])
                c, c_new = c_new, c
            xp.tanh(c, out=tmp)
            out = hs[:, i]
            xp.multiply(og, tmp, out=out)
            if m is not None:
                _keep(xp, out, prev, m[:, i])
            prev = out
        return c
    if mode == "gru":
        proj[..., :2 * h] *= 0.5
        w_t = w_hh.copy()
        w_t[:, :2 * h] *= 0.5
        w_t = xp.ascontiguousarray(w_t.transpose(0, 2, 1))
        b_hn = b_hh[:, None, 2 * h:]
        hh = xp.empty((d, n, 3 * h), dtype)
        rz, r, z, hn = hh[..., :2 * h], hh[..., :h], hh[..., h:2 * h], hh[..., 2 * h:]
        for i in range(t):
            threads.matmul(xp, prev, w_t, hh)
            rz += proj[:, i, :, :2 * h]
            xp.tanh(rz, out=rz)
            rz *= 0.5
            rz += 0.5
            hn += b_hn
            hn *= r
            hn += proj[:, i, :, 2 * h:]
            xp.tanh(hn, out=hn)
            out = hs[:, i]
            xp.subtract(prev, hn, out=out)
            out *= z
            out += hn
            if m is not None:
                _keep(xp, out, prev, m[:, i])
            prev = out
        return None
    w_t = xp.ascontiguousarray(w_hh.transpose(0, 2, 1))
    tmp = xp.empty((d, n, h), dtype)
    for i in range(t):
        threads.matmul(xp, prev, w_t, tmp)
        out = hs[:, i]
        xp.add(tmp, proj[:, i], out=out)
        if mode == "rnn_tanh":
            xp.tanh(out, out=out)
        else:
            xp.maximum(out, 0, out=out)
        if m is not None:
            _keep(xp, out, prev, m[:, i])
        prev = out
    return None


def _fused_kernels(xp, mode, dtype):
    """The fused CPU kernels (:mod:`.fused_cpu`) for a float32 LSTM or GRU on numpy, else None."""
    if xp is not np or mode not in _KEPT_PER_UNIT:
        return None
    return fused_cpu.kernels(dtype)


#: ``mask`` argument of the fused kernels when there is no step mask.
_NO_MASK = np.empty((0, 0, 0), np.float32)


def _fused_mask(m):
    """The (d, T, N) step mask the fused kernels read, from the (d, T, N, 1) one, or empty."""
    return _NO_MASK if m is None else np.ascontiguousarray(m[..., 0], dtype=np.float32)


#: ``kept`` argument of the fused LSTM step when nothing is kept.
_NOTHING_KEPT = np.empty((1, 1, 1, 1), np.float32)


def _projections(xs, r, w_ih):
    """``(x W_ih^T of every step, a buffer for one step's h W_hh^T)`` of batch rows ``r``.

    Shapes (d, T, rows, G*H) and (d, rows, G*H), with no bias.
    """
    d, t, _, in_size = xs.shape
    rows = r.stop - r.start
    gh = w_ih.shape[1]
    proj = threads.matmul(np, xs[:, :, r].reshape(d, t * rows, in_size), w_ih.transpose(0, 2, 1))
    return proj.reshape(d, t, rows, gh), np.empty((d, rows, gh), proj.dtype)


def _lstm_forward_fused(fused, xs, w, h0, c0, hs, kept=None, m=None):
    """One LSTM layer with the fused kernels: per step, one product and one kernel.

    With several kernel threads an inference forward is split over the units
    when the layer is wide enough (:func:`_unit_parts`); otherwise, and when
    the gates are kept for backward, over the batch rows.

    Args:
        xs, w, h0, c0: As for :func:`_layer_forward_rows`.
        hs: (d, T, N, H) C-contiguous buffer for the hidden states.
        kept: None, or a (d, T, N, 5H) C-contiguous buffer that receives the
            gate activations and cell states of every step (a training
            forward keeps them for backward: see :func:`_lstm_backward_kept`).
        m: None, or the (d, T, N, 1) step-ordered step mask.

    Returns:
        The last cell state (d, N, H).
    """
    w_ih, w_hh, b_ih, b_hh = w
    d, t, n, _ = xs.shape
    h = w_hh.shape[2]
    c_last = np.empty(c0.shape, hs.dtype)
    keep = kept is not None
    target = kept if keep else _NOTHING_KEPT
    mask = _fused_mask(m)
    bias = np.ascontiguousarray(b_ih + b_hh)
    gemm, pause = threads.cblas_gemm(hs.dtype), threads.pause_function()
    # kept gates written from a unit offset measured slower than the products saved
    units = _unit_parts(h) if gemm is not None and pause is not None and not keep else None
    if units is not None:
        _lstm_units_fused(fused, gemm, pause, xs, w, h0, c0, hs, bias, mask, units, c_last)
        return c_last
    w_t = np.ascontiguousarray(w_hh.transpose(0, 2, 1))

    def part(r):
        proj, gates = _projections(xs, r, w_ih)
        c = np.array(c0[:, r], dtype=hs.dtype, order="C")
        h_first = np.array(h0[:, r], dtype=hs.dtype, order="C")
        if gemm is not None and pause is not None:  # the whole sequence in one compiled call
            fused.lstm_steps(gemm, pause, w_t, gates, proj, bias, c, hs, r.start, 0, target,
                             keep, mask, h_first, _NO_BARRIER, 0)
        else:
            prev = h_first
            for i in range(t):
                threads.matmul(np, prev, w_t, gates)
                fused.lstm_step(gates, proj, bias, i, c, hs, r.start, 0, target, keep, mask,
                                h_first)
                prev = hs[:, i, r]
        c_last[:, r] = c
    threads.parallel_map(part, _row_parts(np, n) or [slice(0, n)])
    return c_last


#: ``flags`` of :func:`.fused_cpu.lstm_steps` for parts that wait for no other.
_NO_BARRIER = np.zeros((0, 16), np.int64)

#: Fewest units per thread for a layer's steps to be split over its units.
MIN_UNITS_PER_PART = 64


def _unit_parts(h):
    """Ranges of the units for the kernel pool's threads, or None to split by rows.

    Split over units, every thread multiplies the whole batch by its share of
    ``W_hh``'s columns per step (with two threads: all rows against half the
    columns), which BLAS runs faster than the row split's half of the rows
    against all the columns: it packs its right operand again on every call,
    and half the columns are half the packing. The price is a barrier per
    step, as every unit of a step reads every unit of the step before.
    """
    parts = min(threads.pool_size(), h // MIN_UNITS_PER_PART)
    if parts < 2:
        return None
    step = -(-h // parts)
    return [slice(i, min(i + step, h)) for i in range(0, h, step)]


def _gate_columns(h, gates, units):
    """Columns of ``units`` in each of ``gates`` blocks ``h`` wide, side by side."""
    return np.concatenate([np.arange(g * h + units.start, g * h + units.stop)
                           for g in range(gates)])


def _lstm_units_fused(fused, gemm, pause, xs, w, h0, c0, hs, bias, mask, units, c_last):
    """The steps of :func:`_lstm_forward_fused` split over ``units``, one thread per range
    (an inference forward: no gates kept)."""
    w_ih, w_hh = w[0], w[1]
    d, t, n, in_size = xs.shape
    h = w_hh.shape[2]
    x = xs.reshape(d, t * n, in_size)
    h_first = np.ascontiguousarray(h0, dtype=hs.dtype)
    flags = np.zeros((len(units) + 1, 16), np.int64)

    def part(p):
        r = units[p]
        try:
            columns = _gate_columns(h, 4, r)
            proj = np.matmul(x, w_ih[:, columns].transpose(0, 2, 1)).reshape(d, t, n, -1)
            w_t = np.ascontiguousarray(w_hh[:, columns].transpose(0, 2, 1))
            gates = np.empty((d, n, w_t.shape[2]), hs.dtype)
            c = np.array(c0[:, :, r], dtype=hs.dtype, order="C")
        except BaseException:
            flags[-1, 0] = 1  # the other parts stop waiting for this one
            raise
        fused.lstm_steps(gemm, pause, w_t, gates, proj, np.ascontiguousarray(bias[:, columns]),
                         c, hs, 0, r.start, _NOTHING_KEPT, False, mask, h_first, flags, p)
        c_last[:, :, r] = c
    threads.run_together(part, range(len(units)))


def _gru_forward_fused(fused, xs, w, h0, hs, kept=None, m=None):
    """One GRU layer with the fused kernels: per step, one product and one kernel.

    Arguments as for :func:`_lstm_forward_fused` (no cell state).
    """
    w_ih, w_hh, b_ih, b_hh = w
    d, t, n, _ = xs.shape
    h = w_hh.shape[2]
    w_t = np.ascontiguousarray(w_hh.transpose(0, 2, 1))
    keep = kept is not None
    target = kept if keep else _NOTHING_KEPT
    mask = _fused_mask(m)
    bias = np.array(b_ih, hs.dtype, order="C")
    bias[:, :2 * h] += b_hh[:, :2 * h]
    b_hn = np.ascontiguousarray(b_hh[:, 2 * h:])
    gemm = threads.cblas_gemm(hs.dtype)

    def part(r):
        proj, gates = _projections(xs, r, w_ih)
        state = np.array(h0[:, r], dtype=hs.dtype, order="C")
        if gemm is not None:  # the whole sequence in one compiled call
            fused.gru_steps(gemm, w_t, gates, proj, bias, b_hn, state, hs, r.start, target,
                            keep, mask)
            return
        for i in range(t):
            threads.matmul(np, state, w_t, gates)
            fused.gru_step(gates, proj, bias, b_hn, i, state, hs, r.start, target, keep, mask)
    threads.parallel_map(part, _row_parts(np, n) or [slice(0, n)])


def _backward_kept(fused, mode, xs, hs, h0, c0, dhs, dhy, dcy, w, gw, need_dx, kept, m=None):
    """Backprop through time of one LSTM or GRU layer from its kept gates (and cell states).

    Nothing is recomputed: each step is one fused kernel and one product with
    ``W_hh``; the batch is split over the kernel pool. Arguments as for
    :func:`_layer_backward_rows`, with ``dhs`` (d, T, N, H) and ``kept``
    (d, T, N, 5H for LSTM, 4H for GRU) C-contiguous; returns the same. At a
    masked step (``m`` 0) the states passed through, and so do their gradients.
    """
    w_ih, w_hh = w[0], w[1]
    d, t, n, h = hs.shape
    gh, in_size = w_hh.shape[1], xs.shape[3]
    gates = gh // h
    dtype = hs.dtype
    lstm = mode == "lstm"
    parts = _row_parts(np, n) or [slice(0, n)]
    dxs = np.empty((d, t, n, in_size), dtype) if need_dx else None
    dh0 = np.empty((d, n, h), dtype)
    dc0 = np.empty((d, n, h), dtype) if lstm else None
    partial_grads = [None] * len(parts)
    mask = _fused_mask(m)

    def part(k):
        r = parts[k]
        rows = r.stop - r.start
        dh = np.zeros((d, rows, h), dtype) if dhy is None else np.array(dhy[:, r], dtype,
                                                                         order="C")
        hprev = np.empty((d, t, rows, h), dtype)
        if t:
            hprev[:, 0] = h0[:, r]
            hprev[:, 1:] = hs[:, :-1, r]
        dpre = np.empty((d, t, rows, gates, h), dtype)
        if lstm:
            dc = np.zeros((d, rows, h), dtype) if dcy is None else np.array(dcy[:, r], dtype,
                                                                             order="C")
            c_first = np.array(c0[:, r], dtype, order="C")
            passed = np.empty((d, rows, h), dtype) if m is not None else dh
            dpre_x = dpre
        else:
            passed = np.empty((d, rows, h), dtype)
            dpre_x = np.empty_like(dpre)
        for i in range(t - 1, -1, -1):
            if lstm:
                fused.lstm_backward_step(dhs, i, r.start, dh, dc, kept, c_first, dpre, mask,
                                         passed)
            else:
                fused.gru_backward_step(dhs, i, r.start, dh, kept, hprev[:, i], dpre, dpre_x,
                                        mask, passed)
            threads.matmul(np, dpre[:, i].reshape(d, rows, gh), w_hh, dh)
            if passed is not dh:
                dh += passed
        dh0[:, r] = dh
        if lstm:
            dc0[:, r] = dc
        flat_h = dpre.reshape(d, t * rows, gh)
        flat_x = dpre_x.reshape(d, t * rows, gh)
        partial_grads[k] = (
            np.matmul(flat_x.transpose(0, 2, 1), xs[:, :, r].reshape(d, t * rows, in_size)),
            np.matmul(flat_h.transpose(0, 2, 1), hprev.reshape(d, t * rows, h)),
            flat_x.sum(axis=1), flat_h.sum(axis=1) if dpre_x is not dpre else None)
        if need_dx:
            dxs[:, :, r] = np.matmul(flat_x, w_ih).reshape(d, t, rows, in_size)
    threads.parallel_map(part, range(len(parts)))
    for j, g in enumerate(gw):  # w_ih, w_hh, b_ih, b_hh
        values = [p[j] if p[j] is not None else p[2] for p in partial_grads]
        np.copyto(g, values[0])
        for v in values[1:]:
            g += v
    return (None if dxs is None else dxs.reshape(d, t * n, in_size)), dh0, dc0


def _target(xp, out, req):
    """Where to compute an output: itself for write/inplace, else a zeroed scratch."""
    if req in ("write", "inplace"):
        return out
    return xp.zeros(out.shape, out.dtype)


def _finish(xp, out, buf, req):
    if req == "add":
        out += buf


# -- forward --------------------------------------------------------------------------

def _step_masks(xp, attrs, step_mask, d, dtype):
    """``(time-ordered (T, N, 1) mask, step-ordered (d, T, N, 1) mask)``, or Nones."""
    if not attrs.use_step_mask:
        return None, None
    steps = (step_mask != 0).astype(dtype)[:, :, None]
    return steps, _step_order(xp, steps, d)


def _rnn_forward(xp, attrs, inputs, outputs, req, rng=None, is_train=False):
    mode, layers, d, h = attrs.mode, attrs.num_layers, _dirs(attrs), attrs.state_size
    lstm = mode == "lstm"
    data, params, state = inputs[0], inputs[1], inputs[2]
    cell = inputs[3] if lstm else None
    t, n, in_size = data.shape
    dtype = data.dtype
    steps, m = _step_masks(xp, attrs, inputs[-1], d, dtype)
    n_state = _num_state_outputs(attrs)
    out = _target(xp, outputs[0], req[0])
    hy = _target(xp, outputs[1], req[1]) if n_state else None
    cy = _target(xp, outputs[2], req[2]) if n_state == 2 else None
    mask = None
    names = _outputs(attrs)
    if _has_mask(attrs):
        k = names.index("dropout_mask")
        mask = _target(xp, outputs[k], req[k])
        if is_train:
            keep = uniform01(rng, mask.shape, dtype) >= attrs.p
            xp.multiply(keep, dtype.type(1.0 / (1.0 - attrs.p)), out=mask)
        else:
            mask.fill(1)
    kept = None
    if _keeps_states(attrs):
        k = names.index("kept_states")
        if req[k] in ("write", "inplace"):
            # kept for backward only where the fused kernels run (they read them back)
            keep = is_train and _fused_kernels(xp, mode, dtype) is not None
            outputs[k][-1] = 1 if keep else 0
            if keep:
                kept = outputs[k][:-1].reshape(layers, d, t, n, _KEPT_PER_UNIT[mode] * h)
    weights = _unpack(params, mode, layers, d, in_size, h)
    x = data
    for layer in range(layers):
        rows = slice(layer * d, (layer + 1) * d)
        # one direction: the last layer writes the output itself, and reads its input as is
        in_place = d == 1 and layer == layers - 1 and out.flags.c_contiguous
        hs = out.reshape(1, t, n, h) if in_place else xp.empty((d, t, n, h), dtype)
        xs = x[None] if d == 1 and x.flags.c_contiguous else _step_order(xp, x, d)
        c_last = _layer_forward(xp, mode, xs, weights[layer], state[rows],
                                cell[rows] if lstm else None, hs, m,
                                None if kept is None else kept[layer])
        if hy is not None:
            hy[rows] = hs[:, t - 1] if t else state[rows]
        if cy is not None:
            cy[rows] = c_last
        if layer < layers - 1:
            x = _time_order(xp, hs)
            if steps is not None:
                x *= steps  # masked steps output zeros, as Keras's recurrent layers
            if mask is not None and is_train:
                x *= mask[layer]
        else:
            if not in_place:
                _time_order(xp, hs, out)
            if steps is not None:
                out *= steps
    for k, (o, buf) in enumerate(zip(outputs, [out, hy, cy][:1 + n_state])):
        _finish(xp, o, buf, req[k])
    if mask is not None:
        k = names.index("dropout_mask")
        _finish(xp, outputs[k], mask, req[k])


# -- backward -------------------------------------------------------------------------

def _layer_backward(xp, mode, xs, hs, h0, c0, dhs, dhy, dcy, w, gw, need_dx, m=None):
    """Backprop through time of one layer; the batch split over the kernel pool.

    Same arguments and results as :func:`_layer_backward_rows`; each part
    computes the weight gradients of its rows, summed at the end.
    """
    d, t, n, _ = hs.shape
    parts = _row_parts(xp, n)
    if parts is None:
        return _layer_backward_rows(xp, mode, xs, hs, h0, c0, dhs, dhy, dcy, w, gw, need_dx, m)
    results = [None] * len(parts)

    def part(k):
        r = parts[k]
        local = [xp.empty_like(g) for g in gw]
        results[k] = (local,) + _layer_backward_rows(
            xp, mode, _rows(xs, r, 2), _rows(hs, r, 2), _rows(h0, r, 1), _rows(c0, r, 1),
            _rows(dhs, r, 2), _rows(dhy, r, 1), _rows(dcy, r, 1), w, local, need_dx,
            _rows(m, r, 2))
    threads.parallel_map(part, range(len(parts)))
    for j, g in enumerate(gw):
        xp.add(results[0][0][j], results[1][0][j], out=g)
        for res in results[2:]:
            g += res[0][j]
    dxs = None
    if need_dx:
        dxs = xp.empty((d, t, n, xs.shape[3]), hs.dtype)
    dh0 = xp.empty((d, n, hs.shape[3]), hs.dtype)
    dc0 = xp.empty_like(dh0) if mode == "lstm" else None
    for r, (_, part_dxs, part_dh0, part_dc0) in zip(parts, results):
        if dxs is not None:
            dxs[:, :, r] = part_dxs.reshape(d, t, r.stop - r.start, -1)
        dh0[:, r] = part_dh0
        if dc0 is not None:
            dc0[:, r] = part_dc0
    return (None if dxs is None else dxs.reshape(d, t * n, -1)), dh0, dc0


def _layer_backward_rows(xp, mode, xs, hs, h0, c0, dhs, dhy, dcy, w, gw, need_dx, m=None):
    """Backprop through time of one layer (both directions at once; some batch rows).

    Args:
        xs: (d, T, N, I) step-ordered layer input; hs: (d, T, N, H) its hidden
            states; h0, c0: initial states.
        dhs: (d, T, N, H) step-ordered gradient of hs from above (overwritten).
        dhy, dcy: (d, N, H) gradients of the final states, or None.
        w: the layer's weight views; gw: the matching gradient views (written).
        need_dx: Whether to compute the input gradient.
        m: None, or the (d, T, N, 1) step-ordered step mask: at a masked step
            the states pass through unchanged, so their gradients do too.

    Returns:
        ``(dxs, dh0, dc0)``: dxs (d, T*N, I) step-ordered or None.
    """
    w_ih, w_hh, b_ih, b_hh = w
    gw_ih, gw_hh, gb_ih, gb_hh = gw
    d, t, n, h = hs.shape
    in_size = xs.shape[3]
    dtype = hs.dtype
    gh = w_hh.shape[1]
    hprev = xp.empty((d, t, n, h), dtype)
    if t:
        hprev[:, 0] = h0
        hprev[:, 1:] = hs[:, :-1]
    hprev2 = hprev.reshape(d, t * n, h)
    buf = xp.zeros((d, n, h), dtype) if dhy is None else dhy.astype(dtype, copy=True)
    dc0 = None
    if mode == "lstm":
        scale, shift = _lstm_scale(xp, h, dtype)
        acts = threads.matmul(xp, hprev2, w_hh.transpose(0, 2, 1)).reshape(d, t, n, gh)
        acts += _project(xp, mode, xs, w_ih, b_ih, b_hh)
        acts *= scale
        xp.tanh(acts, out=acts)
        acts *= scale
        acts += shift
        ig, fg, gg, og = (acts[..., k * h:(k + 1) * h] for k in range(4))
        cs = ig * gg  # becomes the cell states c_t
        c = c0
        for i in range(t):
            cur = cs[:, i]
            cur += fg[:, i] * c
            if m is not None:
                _keep(xp, cur, c, m[:, i])
            c = cur
        cprev = xp.empty_like(cs)
        if t:
            cprev[:, 0] = c0
            cprev[:, 1:] = cs[:, :-1]
        tc = xp.tanh(cs)
        # dpre_i = [dc*F0, dc*F1, dc*F2, dh*F3]; dc_t += dh_t * A_t
        fac = xp.empty((d, t, n, 4, h), dtype)
        xp.multiply(gg, ig * (1 - ig), out=fac[..., 0, :])
        xp.multiply(cprev, fg * (1 - fg), out=fac[..., 1, :])
        xp.multiply(ig, 1 - gg * gg, out=fac[..., 2, :])
        xp.multiply(tc, og * (1 - og), out=fac[..., 3, :])
        a = og * (1 - tc * tc)
        del cprev, cs
        dpre = xp.empty((d, t, n, 4, h), dtype)
        dc = xp.zeros((d, n, h), dtype) if dcy is None else dcy.astype(dtype, copy=True)
        tmp = xp.empty((d, n, h), dtype)
        for i in range(t - 1, -1, -1):
            dh = dhs[:, i]
            dh += buf
            xp.multiply(dh, a[:, i], out=tmp)
            if m is not None:
                mi = m[:, i]
                tmp *= mi
            dc += tmp
            xp.multiply(dc[:, :, None, :], fac[:, i, :, :3], out=dpre[:, i, :, :3])
            xp.multiply(dh, fac[:, i, :, 3], out=dpre[:, i, :, 3])
            if m is not None:
                dpre[:, i] *= mi[:, :, None, :]
            threads.matmul(xp, dpre[:, i].reshape(d, n, gh), w_hh, buf)
            if m is None:
                dc *= fg[:, i]
            else:  # masked steps: h and c passed through, and so do their gradients
                xp.multiply(dh, 1 - mi, out=tmp)
                buf += tmp
                dc *= 1 - mi + mi * fg[:, i]
        dc0 = dc
        dx_pre = dh_pre = dpre.reshape(d, t * n, gh)
    elif mode == "gru":
        hh = threads.matmul(xp, hprev2, w_hh.transpose(0, 2, 1)).reshape(d, t, n, gh)
        hh[..., 2 * h:] += b_hh[:, None, None, 2 * h:]
        proj = _project(xp, mode, xs, w_ih, b_ih, b_hh)
        rz = proj[..., :2 * h]
        rz += hh[..., :2 * h]
        _sigmoid_(xp, rz)
        r, z, hn = rz[..., :h], rz[..., h:], hh[..., 2 * h:]
        nn_ = proj[..., 2 * h:]
        nn_ += r * hn
        xp.tanh(nn_, out=nn_)
        a = (1 - z) * (1 - nn_ * nn_)
        # per step: d(pre_r, pre_z, hh_n) = dh * fac; d(pre_n) = dh * a
        fac = xp.empty((d, t, n, 3, h), dtype)
        xp.multiply(a * hn, r * (1 - r), out=fac[..., 0, :])
        xp.multiply(hprev - nn_, z * (1 - z), out=fac[..., 1, :])
        xp.multiply(a, r, out=fac[..., 2, :])
        del hh
        dh_pre = xp.empty((d, t, n, 3, h), dtype)
        tmp = xp.empty((d, n, h), dtype)
        for i in range(t - 1, -1, -1):
            dh = dhs[:, i]
            dh += buf
            xp.multiply(dh[:, :, None, :], fac[:, i], out=dh_pre[:, i])
            xp.multiply(dh, z[:, i], out=tmp)
            if m is not None:  # masked steps: h passed through, and so does its gradient
                mi = m[:, i]
                dh_pre[:, i] *= mi[:, :, None, :]
                tmp *= mi
                tmp += dh * (1 - mi)
            threads.matmul(xp, dh_pre[:, i].reshape(d, n, gh), w_hh, buf)
            buf += tmp
        dx_pre = dh_pre.copy()
        xp.multiply(dhs, a, out=dx_pre[..., 2, :])
        if m is not None:
            dx_pre[..., 2, :] *= m
        dx_pre = dx_pre.reshape(d, t * n, gh)
        dh_pre = dh_pre.reshape(d, t * n, gh)
    else:
        if mode == "rnn_tanh":
            fac = 1 - hs * hs
        else:
            fac = (hs > 0).astype(dtype)
        for i in range(t - 1, -1, -1):
            dh = dhs[:, i]
            dh += buf
            if m is None:
                dh *= fac[:, i]
                threads.matmul(xp, dh, w_hh, buf)
                continue
            mi = m[:, i]
            passed = dh * (1 - mi)  # masked steps: h passed through, and so does its gradient
            dh *= fac[:, i]
            dh *= mi
            threads.matmul(xp, dh, w_hh, buf)
            buf += passed
        dx_pre = dh_pre = dhs.reshape(d, t * n, gh)
    gw_ih[...] = threads.matmul(xp, dx_pre.transpose(0, 2, 1), xs.reshape(d, t * n, in_size))
    gw_hh[...] = threads.matmul(xp, dh_pre.transpose(0, 2, 1), hprev2)
    gb_ih[...] = dx_pre.sum(axis=1)
    gb_hh[...] = gb_ih if dh_pre is dx_pre else dh_pre.sum(axis=1)
    dxs = threads.matmul(xp, dx_pre, w_ih) if need_dx else None
    return dxs, buf, dc0


def _backward_inputs(attrs):
    names = list(_inputs(attrs))
    names.append("output")
    if _has_mask(attrs):
        names.append("dropout_mask")
    if _keeps_states(attrs):
        names.append("kept_states")
    names.append("ograd_output")
    names += ["ograd_state_output", "ograd_statecell_output"][:_num_state_outputs(attrs)]
    return tuple(names)


def _backward_outputs(attrs):
    return tuple(f"{name}_grad" for name in _inputs(attrs))


def _backward_shape(attrs, in_shapes):
    k = len(_backward_outputs(attrs))
    return in_shapes, [None if s is None else tuple(s) for s in in_shapes[:k]]


_backward_shape.partial = True


def _backward_type(attrs, in_dtypes):
    ins, outs = same_dtype(attrs, in_dtypes)
    return ins, outs * len(_backward_outputs(attrs))


def _rnn_backward(xp, attrs, inputs, outputs, req):
    mode, layers, d, h = attrs.mode, attrs.num_layers, _dirs(attrs), attrs.state_size
    lstm = mode == "lstm"
    values = dict(zip(_backward_inputs(attrs), inputs))
    data, params, state, cell = (values["data"], values["parameters"], values["state"],
                                 values.get("state_cell"))
    mask = values.get("dropout_mask")
    dhy, dcy = values.get("ograd_state_output"), values.get("ograd_statecell_output")
    t, n, in_size = data.shape
    dtype = data.dtype
    steps, m = _step_masks(xp, attrs, values.get("step_mask"), d, dtype)
    weights = _unpack(params, mode, layers, d, in_size, h)
    ddata = _target(xp, outputs[0], req[0])
    dparams = _target(xp, outputs[1], req[1])
    dstate = _target(xp, outputs[2], req[2])
    dcell = _target(xp, outputs[3], req[3]) if lstm else None
    gweights = _unpack(dparams, mode, layers, d, in_size, h)
    fused = _fused_kernels(xp, mode, dtype)
    kept_all = [None] * layers
    kept_in = values.get("kept_states")
    if fused is not None and kept_in is not None and kept_in[-1] == 1:
        kept_all = list(kept_in[:-1].reshape(layers, d, t, n, _KEPT_PER_UNIT[mode] * h))
    # The layers below the last one: their inputs and hidden states (from what forward
    # kept, else re-run).
    xs_all, hs_all = [], []
    x = data
    for layer in range(layers):
        rows = slice(layer * d, (layer + 1) * d)
        xs = _step_order(xp, x, d)
        if layer == layers - 1 and steps is None:
            hs = _step_order(xp, values["output"], d, h)
            if fused is not None and kept_all[layer] is None:
                # the forward again, keeping (its hidden states are hs again)
                kept_all[layer] = np.empty((d, t, n, _KEPT_PER_UNIT[mode] * h), dtype)
                _layer_forward(xp, mode, xs, weights[layer], state[rows],
                               cell[rows] if lstm else None, np.empty_like(hs), m,
                               kept_all[layer])
        else:  # (with a step mask the output is zero where the states were kept)
            hs = xp.empty((d, t, n, h), dtype)
            if kept_all[layer] is not None:
                hidden = fused.lstm_hidden if lstm else fused.gru_hidden
                hidden(kept_all[layer], hs, _fused_mask(m), np.ascontiguousarray(state[rows]))
            else:
                if fused is not None:
                    kept_all[layer] = np.empty((d, t, n, _KEPT_PER_UNIT[mode] * h), dtype)
                _layer_forward(xp, mode, xs, weights[layer], state[rows],
                               cell[rows] if lstm else None, hs, m, kept_all[layer])
            x = _time_order(xp, hs)
            if steps is not None:
                x *= steps
            if mask is not None and layer < layers - 1:
                x *= mask[layer]
        xs_all.append(xs)
        hs_all.append(hs)
    grad = values["ograd_output"]
    for layer in range(layers - 1, -1, -1):
        rows = slice(layer * d, (layer + 1) * d)
        need_dx = layer > 0 or req[0] != "null"
        if steps is not None:
            grad = grad * steps  # the output is zero at masked steps
        args = (xs_all[layer], hs_all[layer], state[rows], cell[rows] if lstm else None,
                _step_order(xp, grad, d, h), None if dhy is None else dhy[rows],
                None if dcy is None else dcy[rows], weights[layer], gweights[layer], need_dx)
        if fused is not None:
            dxs, dh0, dc0 = _backward_kept(fused, mode, *args, kept_all[layer], m)
            kept_all[layer] = None
        else:
            dxs, dh0, dc0 = _layer_backward(xp, mode, *args, m)
        dstate[rows] = dh0
        if lstm:
            dcell[rows] = dc0
        xs_all[layer] = hs_all[layer] = None
        if not need_dx:
            break
        dxs = dxs.reshape(d, t, n, dxs.shape[-1])
        target = ddata if layer == 0 else xp.empty((t, n, d * h), dtype)
        if d == 1:
            target[...] = dxs[0]
        else:
            xp.add(dxs[0], dxs[1, ::-1], out=target)
        grad = target
        if layer > 0 and mask is not None:
            grad *= mask[layer - 1]
    buffers = [ddata, dparams, dstate] + ([dcell] if lstm else [])
    if steps is not None:  # the mask selects steps: no gradient flows into it
        zeros = _target(xp, outputs[-1], req[-1])
        zeros.fill(0)
        buffers.append(zeros)
    for k, buf in enumerate(buffers):
        _finish(xp, outputs[k], buf, req[k])


def _rnn_gradient(F, node, ograds):
    attrs = node.attrs
    n_state = _num_state_outputs(attrs)
    names = _outputs(attrs)
    args = list(node.inputs) + [node.outputs[0]]
    if _has_mask(attrs):
        args.append(node.outputs[names.index("dropout_mask")])
    if _keeps_states(attrs):
        args.append(node.outputs[names.index("kept_states")])
    args += ograds[:1 + n_state]
    grads = F._backward_RNN(*args, **dict(attrs))
    return [grads[k] for k in range(len(node.inputs))]


_PARAMS = {
    "state_size": Param(int, doc="Hidden units H of each layer (and direction).", min=1),
    "num_layers": Param(int, 1, "Number of stacked recurrent layers.", min=1),
    "mode": Param(str, doc="The recurrence: vanilla RNN with ReLU or tanh, LSTM, or GRU.",
                  choices=_MODES),
    "bidirectional": Param(bool, False, "Run each layer in both directions and concatenate "
                                        "them on the feature axis."),
    "state_outputs": Param(bool, False, "Also output the final states (state_output, and "
                                        "statecell_output for LSTM)."),
    "p": Param(float, 0.0, "Dropout rate on the outputs of each layer except the last "
                           "(training only); 0 <= p < 1.", min=0.0),
    "projection_size": Param(int, None, "LSTM projection size; only None is supported."),
    "lstm_state_clip_min": Param(float, None, "LSTM cell clipping; only None is supported."),
    "lstm_state_clip_max": Param(float, None, "LSTM cell clipping; only None is supported."),
    "lstm_state_clip_nan": Param(bool, False, "Clip NaN cell states (ignored without a "
                                              "clipping range)."),
    "use_sequence_length": Param(bool, False, "Per-sample sequence lengths; only False is "
                                              "supported (use use_step_mask)."),
    "keep_states": Param(bool, True, "LSTM, GRU: the hidden output kept_states, where a "
                                     "training forward keeps the gates (and LSTM's cell "
                                     "states) for backward (fused float32 CPU kernels); "
                                     "executors without gradients turn it off."),
    "use_step_mask": Param(bool, False, "An extra input step_mask (seq_length, batch_size): "
                                        "where it is 0 a sample's states stay as they were and "
                                        "its output is 0 (Keras's masking; any mask, not only "
                                        "trailing padding)."),
}

register(OpDef(
    "_backward_RNN", _rnn_backward, inputs=_backward_inputs, outputs=_backward_outputs,
    pool_parallel=True,
    params=dict(_PARAMS), infer_shape=_backward_shape, infer_type=_backward_type,
    partial_infer=True, differentiable=False,
    doc="Gradient of RNN by backpropagation through time: gradients of data, parameters, "
        "state (and state_cell), from the forward inputs, output and output gradients."))

register(OpDef(
    "RNN", _rnn_forward, inputs=_inputs, outputs=_outputs, visible_outputs=_visible_outputs,
    pool_parallel=True,
    params=dict(_PARAMS), infer_shape=_rnn_shape, infer_type=_rnn_type, partial_infer=True,
    resources=("rng", "is_train"), gradient=_rnn_gradient,
    doc="Fused multi-layer (optionally bidirectional) vanilla RNN, LSTM or GRU over a "
        "(seq_length, batch, input_size) sequence, with MXNet's packed parameter vector and "
        "gate order (LSTM i, f, g, o; GRU r, z, n)."))


# -- state carried across batches (stateful recurrent layers) -------------------------------

def _read_state_shape(attrs, in_shapes):
    data, state = in_shapes
    if data is not None and state is not None:
        axis = attrs.batch_axis
        if not -len(data) <= axis < len(data):
            raise ShapeError(f"param batch_axis={axis} is out of range for input 'data' of "
                             f"shape {tuple(data)}", argument="data", actual=tuple(data))
        if data[axis] != state[0]:
            raise ShapeError(f"input 'data' has batch size {data[axis]} (shape {tuple(data)}) "
                             f"but the carried state has shape {tuple(state)}: a stateful "
                             "layer needs the same batch size in every batch", argument="data",
                             expected=state[0], actual=data[axis])
    return [data, state], [state]


_read_state_shape.partial = True


def _read_state_forward(xp, attrs, inputs, outputs, req):
    write_result(xp, outputs[0], inputs[1], req[0])


def _write_state_shape(attrs, in_shapes):
    data, value, state = in_shapes
    if value is not None and state is not None and tuple(value) != tuple(state):
        raise ShapeError(f"input 'value' has shape {tuple(value)} but the carried state has "
                         f"shape {tuple(state)}: a stateful layer needs the same batch size in "
                         "every batch", argument="value", expected=tuple(state),
                         actual=tuple(value))
    shared = value if value is not None else state
    return [data, shared, shared], [data]


_write_state_shape.partial = True


def _write_state_forward(xp, attrs, inputs, outputs, req):
    data, value, state = inputs
    state[...] = value
    write_result(xp, outputs[0], data, req[0])


def _write_state_gradient(F, node, ograds):
    return [ograds[0], None, None]


register(OpDef(
    "ReadState", _read_state_forward, inputs=("data", "state"), aux=("state",),
    params={"batch_axis": Param(int, 0, "The batch axis of data, checked against the state's "
                                        "first axis.")},
    infer_shape=_read_state_shape, infer_type=lambda attrs, dts: (list(dts), [dts[1]]),
    partial_infer=True, differentiable=False,
    doc="A copy of a state carried across batches (an auxiliary state), read before "
        "WriteState updates it in the same pass; ``data`` (the layer's input) only fixes the "
        "batch size. No gradient flows through it."))

register(OpDef(
    "WriteState", _write_state_forward, inputs=("data", "value", "state"), aux=("state",),
    infer_shape=_write_state_shape, infer_type=lambda attrs, dts: (
        [dts[0], dts[1] or dts[2], dts[2] or dts[1]], [dts[0]]),
    partial_infer=True, gradient=_write_state_gradient,
    doc="Passes data through unchanged and stores value into the carried state (an "
        "auxiliary state) for the next batch, as stateful recurrent layers do; the gradient "
        "flows to data only."))
