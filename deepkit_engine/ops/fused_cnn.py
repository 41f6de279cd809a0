"""Fused float32 CPU kernels for BatchNorm, compiled with numba when it is installed.

numpy runs a training BatchNorm as five or six passes over the activation
(mean, centring, variance, scale, shift) and its backward as seven. The
kernels here take two reading passes and one writing pass each way (measured
on ResNet-18's first BatchNorm, one thread: forward 9.5 -> 3.3 ms).

Results match numpy's code closely, not bit for bit: each row of the
statistics is summed in float32 in any order (vectorised) and the rows in
float64, where numpy sums in float32 pairwise. One thing is exact by
construction: an output is ``(x - mean) * scale + shift`` with float32
rounding after each operation and no fused multiply-add, as numpy computes
it, so recomputing an output from the saved statistics
(``_batch_norm_apply``, numpy or this kernel) gives the same bits.

As in :mod:`.fused_cpu`, the functions are plain Python as written and
:func:`kernels` compiles them (on first call, cached on disk); without numba,
or with ``DEEPKIT_NUMBA=0``, it returns None and callers run numpy's code.
"""
import math

import numpy as np

from . import fused_cpu

__all__ = ["kernels", "batch_norm_backward", "batch_norm_forward", "batch_norm_write"]


def _row_sum(row):
    """Sum of a float32 row, in any order (compiled with reassociation: vectorised)."""
    total = np.float32(0.0)
    for i in range(row.size):
        total += row[i]
    return total


def _row_centered_squares(row, mean):
    """Sum of ``(v - mean)**2`` over a float32 row, in any order."""
    total = np.float32(0.0)
    for i in range(row.size):
        d = row[i] - mean
        total += d * d
    return total


def _row_centered_dot(g, x, mean):
    """Sum of ``g * (x - mean)`` over two float32 rows, in any order."""
    total = np.float32(0.0)
    for i in range(g.size):
        total += g[i] * (x[i] - mean)
    return total


def batch_norm_write(x, mean, scale, shift, c0, c1, out):
    """``out[:, c] = (x[:, c] - mean[c]) * scale[c] + shift[c]`` for channels ``c0:c1``.

    ``x`` and ``out`` are (P, C, Q) float32 arrays (``out`` may be ``x``);
    float32 rounding after each operation, as numpy's three in-place passes.
    """
    for p in range(x.shape[0]):
        for c in range(c0, c1):
            m = mean[c]
            s = scale[c]
            b = shift[c]
            src = x[p, c]
            dst = out[p, c]
            for q in range(src.size):
                dst[q] = (src[q] - m) * s + b


def batch_norm_forward(x, gamma, beta, eps, c0, c1, out, mean, var, invstd):
    """Training BatchNorm of channels ``c0:c1`` of the (P, C, Q) float32 view ``x``.

    Writes the batch mean, the biased variance and ``1 / sqrt(var + eps)``
    (float32, per channel) and ``out = (x - mean) * (invstd * gamma) + beta``
    (``out`` may be ``x``).
    """
    count = x.shape[0] * x.shape[2]
    scale = np.empty(c1, np.float32)
    for c in range(c0, c1):
        total = 0.0
        for p in range(x.shape[0]):
            total += _row_sum(x[p, c])
        mu = np.float32(total / max(count, 1))
        squares = 0.0
        for p in range(x.shape[0]):
            squares += _row_centered_squares(x[p, c], mu)
        v = np.float32(squares / max(count, 1))
        inv = np.float32(1.0) / np.float32(math.sqrt(v + eps))
        mean[c] = mu
        var[c] = v
        invstd[c] = inv
        scale[c] = inv * gamma[c]
    batch_norm_write(x, mean, scale, beta, c0, c1, out)


def batch_norm_backward(g, x, mean, invstd, gamma, c0, c1, need_dx, dx, sum_g, sum_gx):
    """BatchNorm's training gradients for channels ``c0:c1`` of (P, C, Q) float32 views.

    Writes ``sum_g[c] = sum(g)`` (beta's gradient) and ``sum_gx[c] =
    sum(g * (x - mean))`` (gamma's gradient divided by invstd), and with
    ``need_dx`` the data gradient ``gamma * invstd * (g - mean(g) - (x - mean)
    * invstd**2 * mean(g * (x - mean)))`` into ``dx`` (which may be ``g``).
    """
    count = max(x.shape[0] * x.shape[2], 1)
    for c in range(c0, c1):
        mu = mean[c]
        total = 0.0
        dot = 0.0
        for p in range(x.shape[0]):
            total += _row_sum(g[p, c])
            dot += _row_centered_dot(g[p, c], x[p, c], mu)
        sum_g[c] = total
        sum_gx[c] = dot
        if need_dx:
            inv = invstd[c]
            k_mean = np.float32(total / count)
            k_hat = np.float32(dot * inv * inv / count)
            s = gamma[c] * inv
            for p in range(x.shape[0]):
                gr = g[p, c]
                xr = x[p, c]
                out = dx[p, c]
                for q in range(gr.size):
                    out[q] = s * (gr[q] - k_mean - (xr[q] - mu) * k_hat)


class _Kernels:
    """The compiled kernels (attributes named as the module's functions)."""

    def __init__(self, numba):
        global _row_sum, _row_centered_squares, _row_centered_dot, batch_norm_write
        exact = {"nogil": True, "error_model": "numpy", "cache": True}
        # the row sums only: any summation order (vectorised); no NaN/inf assumptions
        summing = dict(exact, fastmath={"reassoc", "nsz", "arcp"})
        _row_sum = numba.njit(**summing)(_row_sum)
        _row_centered_squares = numba.njit(**summing)(_row_centered_squares)
        _row_centered_dot = numba.njit(**summing)(_row_centered_dot)
        batch_norm_write = numba.njit(**exact)(batch_norm_write)
        self.batch_norm_write = batch_norm_write
        for name in ("batch_norm_forward", "batch_norm_backward"):
            setattr(self, name, numba.njit(**exact)(globals()[name]))


def kernels(dtype=np.float32):
    """The compiled kernels for arrays of ``dtype``, or None (numpy code runs instead).

    None when ``dtype`` is not float32, when numba is not installed, or when
    ``DEEPKIT_NUMBA`` is ``0``.
    """
    return fused_cpu.compiled_once(_Kernels, dtype)
