"""Fused float32 CPU kernels, compiled with numba when it is installed (``deepkit[fast]``).

numpy runs an LSTM or GRU time step as a dozen separate passes over small
arrays, and its float32 ``tanh`` is a scalar loop (about 2.7 ns per value on
an AVX2 core). The kernels here do a whole step's elementwise work in one pass, with
``tanh`` as a rational approximation that the compiler vectorises (about
0.35 ns per value), accurate to 4e-7 in absolute terms (float32 rounding is
6e-8 near 1), never above 1 in magnitude, and NaN for NaN.

Only float32 arrays on the CPU take these kernels; float64 (the reference
and gradient checks) keeps numpy's exact ``tanh``. Without numba, or with
``DEEPKIT_NUMBA=0``, :func:`kernels` returns None and callers run their numpy
code. The functions below are plain Python as written (so they can be read
and tested on tiny arrays without numba); :func:`kernels` compiles them once
per process, with numba's on-disk cache, so later processes start at once.
Compiled kernels release the GIL, so the kernel pool's threads run them side
by side.
"""
import os
import threading

import numpy as np

#: The compiled kernels, in the order they are compiled (step kernels before the step loops).
_KERNEL_NAMES = ("gru_backward_step", "gru_hidden", "gru_step", "lstm_backward_step",
                 "lstm_hidden", "lstm_step", "tanh_", "gru_steps", "lstm_steps")

__all__ = ["compiled_once", "enabled", "kernels", "numba_module", *_KERNEL_NAMES]

_F32 = np.float32
_HALF = _F32(0.5)
_ONE = _F32(1.0)
_CLIP = _F32(7.90531110763549805)  # where the approximation reaches exactly 1
# tanh(x) ~ x * P(x^2) / Q(x^2) on [-9, 9] (the minimax fit Eigen uses for float32)
_P13, _P11, _P9, _P7, _P5, _P3, _P1 = (_F32(v) for v in (
    -2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-08,
    1.48572235717979e-05, 6.37261928875436e-04, 4.89352455891786e-03))
_Q6, _Q4, _Q2, _Q0 = (_F32(v) for v in (
    1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03))


def _tanh(x):
    """tanh of one float32 value by the rational approximation."""
    x = _CLIP if x > _CLIP else x
    x = -_CLIP if x < -_CLIP else x
    x2 = x * x
    p = ((((((_P13 * x2 + _P11) * x2 + _P9) * x2 + _P7) * x2 + _P5) * x2 + _P3) * x2 + _P1) * x
    q = ((_Q6 * x2 + _Q4) * x2 + _Q2) * x2 + _Q0
    return p / q


def _sigmoid(x):
    """The logistic function of one float32 value, as 0.5 * tanh(0.5 x) + 0.5 (no overflow)."""
    return _HALF * _tanh(_HALF * x) + _HALF


def tanh_(x, out):
    """``out[...] = tanh(x)`` for C-contiguous float32 arrays of one size (may be the same)."""
    xf = x.reshape(-1)
    of = out.reshape(-1)
    for i in range(xf.size):
        of[i] = _tanh(xf[i])


def _lstm_cell(pre_i, pre_f, pre_g, pre_o, prev):
    """One LSTM unit: gate activations, new cell state and hidden state from pre-activations.

    (Scalars in, scalars out: the loops that call it stay vectorised; indexing
    the rows in here measured 6x slower.)
    """
    ig = _sigmoid(pre_i)
    fg = _sigmoid(pre_f)
    gg = _tanh(pre_g)
    og = _sigmoid(pre_o)
    cell = fg * prev + ig * gg
    return ig, fg, gg, og, cell, og * _tanh(cell)


def _lstm_masked_step(hs, kept, k, t, row, col0, first, cells, keep):
    """A masked step of one sample's units ``col0:col0 + len(cells)``: the hidden state
    repeated, zero gates, the cell kept (``keep`` only with every unit)."""
    end = col0 + cells.shape[0]
    hs[k, t, row, col0:end] = hs[k, t - 1, row, col0:end] if t > 0 else first[col0:end]
    if keep:
        h = cells.shape[0]
        kept[k, t, row][:4 * h] = 0
        kept[k, t, row][4 * h:] = cells


def lstm_step(gates, proj, bias, t, c, hs, row0, col0, kept, keep, mask, h_first):
    """One LSTM time step of some batch rows and units: gates, new cell states, new hidden states.

    The rows are ``row0:row0 + N`` of the batch and the units ``col0:col0 + U``
    of the layer's ``H`` (a thread takes either some rows of every unit or
    every row of some units).

    Args:
        gates: (D, N, 4U) ``h_prev @ W_hh^T`` of these rows and units for this
            step (gates i, f, g, o, each ``U`` wide).
        proj: (D, T, N, 4U) input projections of every step, these rows and
            units (``x_t @ W_ih^T``; gates as in ``gates``).
        bias: (D, 4U) both biases of these units, summed.
        t: The step (index into ``proj``, ``hs`` and ``kept``).
        c: (D, N, U) cell states of these rows and units, updated in place.
        hs: (D, T, N_all, H) hidden states of the whole batch; rows
            ``row0:row0 + N``, units ``col0:col0 + U`` of ``hs[:, t]`` are written.
        row0: The first of these rows in ``hs``, ``kept`` and ``mask``.
        col0: The first of these units.
        kept: (D, T, N_all, 5H): with ``keep``, receives the gate activations
            (i, f, g, o) and the new cell state, which backward reads instead
            of recomputing them.
        keep: Whether to write ``kept`` (only with every unit: ``U == H``).
        mask: (D, T, N_all) step mask (Keras's masking), or an empty array for
            none: where it is 0 the sample's states stay as they were (the
            cell state, and the hidden state copied from step t - 1; ``kept``
            then holds zero gates and the unchanged cell state).
        h_first: (D, N, H) the initial hidden state of these rows (read at a
            masked step 0).
    """
    if c.shape[2] == hs.shape[3]:
        _lstm_all_units(gates, proj, bias, t, c, hs, row0, kept, keep, mask, h_first)
    else:
        _lstm_some_units(gates, proj, bias, t, c, hs, row0, col0, mask, h_first)


def _lstm_all_units(gates, proj, bias, t, c, hs, row0, kept, keep, mask, h_first):
    """:func:`lstm_step` for rows of every unit.

    Its own function, and not the units case with ``col0 = 0``: here every
    offset is a multiple of the loop's length, which lets the compiler prove
    the five kept streams apart and vectorise the loop; with a unit offset the
    same loop ran 1.6 times slower.
    """
    d, n, h = c.shape
    for k in range(d):
        added = bias[k]
        for b in range(n):
            pre = gates[k, b]
            inputs = proj[k, t, b]
            cells = c[k, b]
            out = hs[k, t, row0 + b]
            if mask.size and mask[k, t, row0 + b] == 0:
                _lstm_masked_step(hs, kept, k, t, row0 + b, 0, h_first[k, b], cells, keep)
            elif keep:  # two loops, not one with a branch inside: each stays vectorised
                states = kept[k, t, row0 + b]
                for j in range(h):
                    ig, fg, gg, og, cell, hidden = _lstm_cell(
                        pre[j] + inputs[j] + added[j], pre[h + j] + inputs[h + j] + added[h + j],
                        pre[2 * h + j] + inputs[2 * h + j] + added[2 * h + j],
                        pre[3 * h + j] + inputs[3 * h + j] + added[3 * h + j], cells[j])
                    states[j] = ig
                    states[h + j] = fg
                    states[2 * h + j] = gg
                    states[3 * h + j] = og
                    states[4 * h + j] = cell
                    cells[j] = cell
                    out[j] = hidden
            else:
                for j in range(h):
                    _, _, _, _, cell, hidden = _lstm_cell(
                        pre[j] + inputs[j] + added[j], pre[h + j] + inputs[h + j] + added[h + j],
                        pre[2 * h + j] + inputs[2 * h + j] + added[2 * h + j],
                        pre[3 * h + j] + inputs[3 * h + j] + added[3 * h + j], cells[j])
                    cells[j] = cell
                    out[j] = hidden


def _lstm_some_units(gates, proj, bias, t, c, hs, row0, col0, mask, h_first):
    """:func:`lstm_step` for units ``col0:col0 + U`` of the layer's ``H``, keeping nothing.

    (Kept gates written from a unit offset measured slower than the products
    that the split over units saves, so a training forward splits rows.)
    """
    d, n, u = c.shape
    for k in range(d):
        added = bias[k]
        for b in range(n):
            pre = gates[k, b]
            inputs = proj[k, t, b]
            cells = c[k, b]
            out = hs[k, t, row0 + b]  # whole rows: a row's slice has no fixed layout
            if mask.size and mask[k, t, row0 + b] == 0:
                # nothing kept: hs stands in for the kept array the helper does not touch
                _lstm_masked_step(hs, hs, k, t, row0 + b, col0, h_first[k, b], cells, False)
                continue
            for j in range(u):
                _, _, _, _, cell, hidden = _lstm_cell(
                    pre[j] + inputs[j] + added[j],
                    pre[u + j] + inputs[u + j] + added[u + j],
                    pre[2 * u + j] + inputs[2 * u + j] + added[2 * u + j],
                    pre[3 * u + j] + inputs[3 * u + j] + added[3 * u + j], cells[j])
                cells[j] = cell
                out[col0 + j] = hidden


def _gemm_rows(gemm, a, lda, w_t, gates):
    """``gates = a @ w_t`` through BLAS: ``a`` (rows, K) with row stride ``lda``, ``w_t`` (K, G)."""
    rows, cols = gates.shape
    gemm(101, 111, 111, rows, cols, w_t.shape[0], np.float32(1.0), a.ctypes.data, lda,
         w_t.ctypes.data, cols, np.float32(0.0), gates.ctypes.data, cols)


def _barrier(pause, flags, me, step):
    """Wait until every part of a group has finished ``step`` steps; False when one failed.

    ``flags`` is (parts + 1, 16) int64, one cache line per part: row ``p`` holds
    how many steps part ``p`` has finished, the last row is non-zero when a
    part gave up. ``pause`` (``sched_yield``) is called while waiting; being
    opaque to the compiler, the call before the flag is raised also keeps
    this step's stores ahead of it.
    """
    pause()
    flags[me, 0] = step
    failed = flags.shape[0] - 1
    for p in range(failed):
        while flags[p, 0] < step:
            if flags[failed, 0] != 0:
                return False
            pause()
    return True


def lstm_steps(gemm, pause, w_t, gates, proj, bias, c, hs, row0, col0, kept, keep, mask,
               h_first, flags, me):
    """Every time step of some batch rows and units: per step and direction the recurrent
    product ``h_prev @ W_hh^T`` through ``gemm`` (``cblas_sgemm``, a ctypes function), then
    :func:`lstm_step`. One call for the whole sequence: no return to Python (and the
    GIL) between steps.

    A part that owns some units (``col0``) needs every unit of the previous
    step, which the other parts write: with ``flags`` of a group (see
    :func:`_barrier`) each step ends at a barrier. Parts owning rows are
    independent and pass an empty ``flags``.

    Args:
        gemm: ``cblas_sgemm`` of the process's BLAS (integer arguments of its width).
        pause: ``sched_yield`` (a ctypes function), called while waiting at a barrier.
        w_t: (D, H, 4U) C-contiguous ``W_hh^T`` of these units' gates.
        gates: (D, N, 4U) C-contiguous work buffer.
        flags: (parts + 1, 16) int64 barrier flags, or (0, 16) for none.
        me: This part's row in ``flags``.
        Others: as for :func:`lstm_step`; ``h_first`` is also the state before step 0.
    """
    d, n, _ = c.shape
    width = hs.shape[3]
    for t in range(proj.shape[1]):
        for k in range(d):
            if t == 0:
                _gemm_rows(gemm, h_first[k], width, w_t[k], gates[k])
            else:
                _gemm_rows(gemm, hs[k, t - 1, row0:row0 + n], width, w_t[k], gates[k])
        lstm_step(gates, proj, bias, t, c, hs, row0, col0, kept, keep, mask, h_first)
        if flags.shape[0] and not _barrier(pause, flags, me, t + 1):
            return


def lstm_hidden(kept, hs, mask, h_first):
    """``hs = o * tanh(c)`` for every step, from what :func:`lstm_step` kept.

    Args:
        kept: (D, T, N, 5H) gate activations and cell states.
        hs: (D, T, N, H) receives the hidden states.
        mask: (D, T, N) step mask, or an empty array for none: a masked step
            repeats the previous hidden state.
        h_first: (D, N, H) the initial hidden state.
    """
    d, steps, n, h = hs.shape
    for k in range(d):
        for t in range(steps):
            for b in range(n):
                if mask.size and mask[k, t, b] == 0:
                    first = h_first[k, b]
                    _lstm_masked_step(hs, kept, k, t, b, 0, first, first, False)  # keeps nothing
                    continue
                out = hs[k, t, b]
                states = kept[k, t, b]
                for j in range(h):
                    out[j] = states[3 * h + j] * _tanh(states[4 * h + j])


def _lstm_unit_backward(states, j, h, prev, dh, dc):
    """Backward through one LSTM unit at step t.

    Args:
        states: The step's kept row (gates i, f, g, o, then the cell state).
        j: The unit.
        h: Units per gate.
        prev: The unit's cell state at step t - 1.
        dh, dc: Gradients of its hidden and cell states at step t (``dh``
            from above and from step t + 1; ``dc`` from step t + 1).

    Returns:
        The gradients of the four gate pre-activations and of ``c_{t-1}``.
    """
    ig = states[j]
    fg = states[h + j]
    gg = states[2 * h + j]
    og = states[3 * h + j]
    tc = _tanh(states[4 * h + j])
    dcell = dc + dh * og * (_ONE - tc * tc)
    return (dcell * gg * ig * (_ONE - ig), dcell * prev * fg * (_ONE - fg),
            dcell * ig * (_ONE - gg * gg), dh * tc * og * (_ONE - og), dcell * fg)


def _pass_on(grad_h, grad_next, carried, out):
    """A masked step: its whole hidden-state gradient goes to step t - 1 (``carried``),
    its gates (rows of ``out``) get none."""
    h = carried.shape[0]
    for j in range(h):
        carried[j] = grad_h[j] + grad_next[j]
    for g in range(out.shape[0]):
        for j in range(h):
            out[g, j] = 0


def _lstm_masked_backward(mask, grad_h, grad_next, carried, out):
    """The gradient a sample's step passes straight to step t - 1: all of it where the step
    is masked (its gate gradients ``out`` are then zero: returns True), else none."""
    if mask != 0:
        for j in range(carried.shape[0]):
            carried[j] = 0
        return False
    _pass_on(grad_h, grad_next, carried, out)
    return True


def lstm_backward_step(dhs, t, row0, dh_next, dc, kept, c_first, dpre, mask, passed):
    """One step of LSTM backprop through time for some batch rows, before the product with W_hh.

    Args:
        dhs: (D, T, N_all, H) gradient of the hidden states from above.
        t: The step.
        row0: The first of these rows in ``dhs`` and ``kept``.
        dh_next: (D, N, H) gradient reaching ``h_t`` through step t + 1.
        dc: (D, N, H) gradient of the cell state ``c_t``; left as that of
            ``c_{t-1}`` (through the forget gate).
        kept: (D, T, N_all, 5H) gate activations and cell states (:func:`lstm_step`).
        c_first: (D, N, H) the initial cell state of these rows (``c_{-1}``).
        dpre: (D, T, N, 4, H) receives the gradients of step t's gate pre-activations.
        mask: (D, T, N_all) step mask, or an empty array for none.
        passed: (D, N, H): with a mask, receives the hidden-state gradient
            that a masked step passes to step t - 1 unchanged (zero where the
            step is not masked), to add after the product with ``W_hh``; the
            cell-state gradient passes through ``dc`` as it is.
    """
    d, n, h = dc.shape
    for k in range(d):
        for b in range(n):
            if mask.size and _lstm_masked_backward(mask[k, t, row0 + b], dhs[k, t, row0 + b],
                                                   dh_next[k, b], passed[k, b], dpre[k, t, b]):
                continue
            states = kept[k, t, row0 + b]
            grad_h = dhs[k, t, row0 + b]
            grad_next = dh_next[k, b]
            grad_c = dc[k, b]
            out = dpre[k, t, b]
            # two loops, so that each reads the previous cell state from one array
            if t > 0:
                prev = kept[k, t - 1, row0 + b]
                for j in range(h):
                    out[0, j], out[1, j], out[2, j], out[3, j], grad_c[j] = _lstm_unit_backward(
                        states, j, h, prev[4 * h + j], grad_h[j] + grad_next[j], grad_c[j])
            else:
                first = c_first[k, b]
                for j in range(h):
                    out[0, j], out[1, j], out[2, j], out[3, j], grad_c[j] = _lstm_unit_backward(
                        states, j, h, first[j], grad_h[j] + grad_next[j], grad_c[j])


def _gru_masked_step(hs, kept, k, t, row, state, keep):
    """A masked GRU step of one sample: the hidden state repeated, zero gates kept."""
    hs[k, t, row][:] = state
    if keep:
        kept[k, t, row][:] = 0


def gru_steps(gemm, w_t, gates, proj, bias, b_hn, state, hs, row0, kept, keep, mask):
    """Every time step of some batch rows: per step ``state @ W_hh^T`` through ``gemm``,
    then :func:`gru_step` (see :func:`lstm_steps`); ``state`` (D, N, H) is C-contiguous."""
    d, n, h = state.shape
    for t in range(proj.shape[1]):
        for k in range(d):
            _gemm_rows(gemm, state[k], h, w_t[k], gates[k])
        gru_step(gates, proj, bias, b_hn, t, state, hs, row0, kept, keep, mask)


def gru_step(gates, proj, bias, b_hn, t, state, hs, row0, kept, keep, mask):
    """One GRU time step of some batch rows (MXNet's and cuDNN's formula).

    ``r = sigmoid(.)``, ``z = sigmoid(.)``, ``n = tanh(x W_in + b_in + r * (h W_hn +
    b_hn))``, ``h' = (1 - z) * n + z * h``.

    Args:
        gates: (D, N, 3H) ``h_prev @ W_hh^T`` for this step (gates r, z, n).
        proj: (D, T, N, 3H) input projections of every step (``x_t @ W_ih^T``).
        bias: (D, 3H) the biases added outside the reset gate: both biases of
            r and z summed, and ``b_in``.
        b_hn: (D, H) the bias inside the reset gate.
        t: The step.
        state: (D, N, H) hidden state of these rows, updated in place.
        hs: (D, T, N_all, H) hidden states of the whole batch; rows
            ``row0:row0 + N`` of ``hs[:, t]`` are written.
        row0: The first of these rows in ``hs``, ``kept`` and ``mask``.
        kept: (D, T, N_all, 4H): with ``keep``, receives r, z, n and ``h W_hn + b_hn``.
        keep: Whether to write ``kept``.
        mask: (D, T, N_all) step mask, or an empty array for none.
    """
    d, n, h = state.shape
    for k in range(d):
        added = bias[k]
        inside = b_hn[k]
        for b in range(n):
            cur = state[k, b]
            if mask.size and mask[k, t, row0 + b] == 0:
                _gru_masked_step(hs, kept, k, t, row0 + b, cur, keep)
                continue
            pre = gates[k, b]
            inputs = proj[k, t, b]
            out = hs[k, t, row0 + b]
            states = kept[k, t, row0 + b] if keep else out
            for j in range(h):
                rg = _sigmoid(pre[j] + inputs[j] + added[j])
                zg = _sigmoid(pre[h + j] + inputs[h + j] + added[h + j])
                hn = pre[2 * h + j] + inside[j]
                ng = _tanh(inputs[2 * h + j] + added[2 * h + j] + rg * hn)
                new = ng + zg * (cur[j] - ng)
                if keep:
                    states[j] = rg
                    states[h + j] = zg
                    states[2 * h + j] = ng
                    states[3 * h + j] = hn
                cur[j] = new
                out[j] = new


def gru_hidden(kept, hs, mask, h_first):
    """The hidden states of every step from what :func:`gru_step` kept (``h' = n + z (h - n)``).

    Args:
        kept: (D, T, N, 4H) gates r, z, n and ``h W_hn + b_hn``.
        hs: (D, T, N, H) receives the hidden states.
        mask: (D, T, N) step mask, or an empty array for none.
        h_first: (D, N, H) the initial hidden state.
    """
    d, steps, n, h = hs.shape
    for k in range(d):
        for t in range(steps):
            for b in range(n):
                prev = hs[k, t - 1, b] if t > 0 else h_first[k, b]
                if mask.size and mask[k, t, b] == 0:
                    _gru_masked_step(hs, kept, k, t, b, prev, False)
                    continue
                states = kept[k, t, b]
                out = hs[k, t, b]
                for j in range(h):
                    ng = states[2 * h + j]
                    out[j] = ng + states[h + j] * (prev[j] - ng)


def gru_backward_step(dhs, t, row0, dh_next, kept, prev, dpre_h, dpre_x, mask, passed):
    """One step of GRU backprop through time for some batch rows, before the product with W_hh.

    Args:
        dhs: (D, T, N_all, H) gradient of the hidden states from above.
        t: The step.
        row0: The first of these rows in ``dhs``, ``kept`` and ``mask``.
        dh_next: (D, N, H) gradient reaching ``h_t`` through step t + 1.
        kept: (D, T, N_all, 4H) from :func:`gru_step`.
        prev: (D, N, H) the hidden state of these rows at step t - 1.
        dpre_h: (D, T, N, 3, H) receives the gradients of the hidden-side
            pre-activations (r, z, and ``h W_hn + b_hn``).
        dpre_x: (D, T, N, 3, H) receives those of the input side (r, z, n).
        mask: (D, T, N_all) step mask, or an empty array for none.
        passed: (D, N, H) receives the gradient that reaches ``h_{t-1}``
            directly (through ``z``, or all of it at a masked step), to add
            after the product with ``W_hh``.
    """
    d, n, h = passed.shape
    for k in range(d):
        for b in range(n):
            grad_h = dhs[k, t, row0 + b]
            grad_next = dh_next[k, b]
            carried = passed[k, b]
            out_h = dpre_h[k, t, b]
            out_x = dpre_x[k, t, b]
            if mask.size and mask[k, t, row0 + b] == 0:
                _gru_masked_backward(grad_h, grad_next, carried, out_h, out_x)
                continue
            states = kept[k, t, row0 + b]
            before = prev[k, b]
            for j in range(h):
                rg = states[j]
                zg = states[h + j]
                ng = states[2 * h + j]
                hn = states[3 * h + j]
                dh = grad_h[j] + grad_next[j]
                dn = dh * (_ONE - zg) * (_ONE - ng * ng)
                dr = dn * hn * rg * (_ONE - rg)
                dz = dh * (before[j] - ng) * zg * (_ONE - zg)
                out_h[0, j] = dr
                out_h[1, j] = dz
                out_h[2, j] = dn * rg
                out_x[0, j] = dr
                out_x[1, j] = dz
                out_x[2, j] = dn
                carried[j] = dh * zg


def _gru_masked_backward(grad_h, grad_next, carried, out_h, out_x):
    """A masked GRU step passes its whole hidden-state gradient on; its gates get none."""
    _pass_on(grad_h, grad_next, carried, out_h)
    out_x[:, :] = 0


class _Kernels:
    """The compiled kernels (attributes named as the module's functions)."""

    def __init__(self, numba):
        global _tanh, _sigmoid, _lstm_cell, _lstm_unit_backward, _lstm_masked_step
        global _lstm_masked_backward, _gru_masked_step, _gru_masked_backward, _pass_on
        global _gemm_rows, _barrier, _lstm_all_units, _lstm_some_units, lstm_step, gru_step
        # fast math without 'nnan'/'ninf': a NaN must stay NaN (divergence is detected by it)
        options = {"nogil": True, "fastmath": {"contract", "arcp", "nsz", "afn", "reassoc"},
                   "error_model": "numpy", "cache": True}
        # the kernels call these: compiled first, they are inlined where called
        _tanh = numba.njit(inline="always", **options)(_tanh)
        _sigmoid = numba.njit(inline="always", **options)(_sigmoid)
        _lstm_cell = numba.njit(inline="always", **options)(_lstm_cell)
        _lstm_unit_backward = numba.njit(inline="always", **options)(_lstm_unit_backward)
        # called once per masked sample and step: not inlined, so that it leaves the
        # vectorised loops of the kernels as they are
        _pass_on = numba.njit(**options)(_pass_on)
        _lstm_masked_step = numba.njit(**options)(_lstm_masked_step)
        _lstm_masked_backward = numba.njit(**options)(_lstm_masked_backward)
        _gru_masked_step = numba.njit(**options)(_gru_masked_step)
        _gru_masked_backward = numba.njit(**options)(_gru_masked_backward)
        _gemm_rows = numba.njit(**options)(_gemm_rows)
        _barrier = numba.njit(**options)(_barrier)
        _lstm_all_units = numba.njit(**options)(_lstm_all_units)
        _lstm_some_units = numba.njit(**options)(_lstm_some_units)
        for name in _KERNEL_NAMES:
            setattr(self, name, numba.njit(**options)(globals()[name]))
            if name in ("lstm_step", "gru_step"):
                globals()[name] = getattr(self, name)


_compiled = {}
_compile_lock = threading.Lock()


def enabled():
    """Whether compiled kernels may run: not turned off with ``DEEPKIT_NUMBA=0``."""
    return os.environ.get("DEEPKIT_NUMBA", "1").strip() != "0"


def numba_module():
    """The numba module, or None when it is not installed."""
    try:
        import numba  # noqa: PLC0415 - optional: the 'fast' extra; slow to import
    except ImportError:
        return None
    return numba


def compiled_once(build, dtype=np.float32):
    """``build(numba)``, made once per process and kept: the kernels of one module, or None.

    The one place the kernel modules (this one, :mod:`.fused_cnn`,
    :mod:`.fused_update`) decide whether compiled code runs: None when
    ``dtype`` is not float32, when numba is not installed, or when
    ``DEEPKIT_NUMBA`` is ``0``.

    Args:
        build: A class (or function) taking the numba module and returning
            the compiled kernels as attributes.
        dtype: The dtype of the arrays the caller has.
    """
    if np.dtype(dtype) != np.float32 or not enabled():
        return None
    if build not in _compiled:
        with _compile_lock:
            if build not in _compiled:
                numba = numba_module()
                _compiled[build] = build(numba) if numba is not None else None
    return _compiled[build]


def kernels(dtype=np.float32):
    """The compiled kernels for arrays of ``dtype``, or None (numpy code runs instead).

    None when ``dtype`` is not float32, when numba is not installed, or when
    ``DEEPKIT_NUMBA`` is ``0``.
    """
    return compiled_once(_Kernels, dtype)
