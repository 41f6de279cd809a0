"""Fused float32 SGD updates, compiled with numba when it is installed.

numpy runs an SGD step with momentum as five passes over the parameter
(rescale, learning rate, momentum, step, weight) and a temporary the size of
the gradient; on a small network that is most of an update's time. The
kernels here read the weight, gradient and momentum once and write the new
weight and momentum once.

They compute what numpy's code computes, in the same order and with float32
rounding after each operation (no fused multiply-add, no reassociation), so
the results are the same bits: ``g = grad * rescale_grad``, then ``g += wd *
weight`` when ``wd`` is not 0, ``g *= lr``; with momentum ``mom = mom *
momentum - g`` and ``weight + mom``, else ``weight - g``. Gradient clipping
is left to numpy (:func:`applies` says when the kernels apply).

As in :mod:`.fused_cpu`, the functions are plain Python as written;
:func:`kernels` compiles them once (cached on disk), or returns None without
numba or with ``DEEPKIT_NUMBA=0``.
"""
import numpy as np

from . import fused_cpu

__all__ = ["applies", "kernels", "sgd_mom_step", "sgd_step"]


def sgd_mom_step(weight, grad, mom, rescale, wd, lr, momentum):
    """One SGD step with momentum over flat float32 arrays, ``weight`` and ``mom`` in place.

    In place, not into separate outputs: an output that may alias an input
    keeps the compiler from vectorising the loop.
    """
    if wd != 0:
        for i in range(weight.size):
            g = (grad[i] * rescale + wd * weight[i]) * lr
            step = mom[i] * momentum - g
            mom[i] = step
            weight[i] = weight[i] + step
    else:
        for i in range(weight.size):
            g = grad[i] * rescale * lr
            step = mom[i] * momentum - g
            mom[i] = step
            weight[i] = weight[i] + step


def sgd_step(weight, grad, rescale, wd, lr):
    """One plain SGD step over flat float32 arrays, ``weight`` in place."""
    if wd != 0:
        for i in range(weight.size):
            weight[i] = weight[i] - (grad[i] * rescale + wd * weight[i]) * lr
    else:
        for i in range(weight.size):
            weight[i] = weight[i] - grad[i] * rescale * lr


def applies(clip_gradient, arrays):
    """Whether the kernels can run on ``arrays``: no clipping, numpy float32, C-contiguous.

    The caller also checks that the outputs are the weight and momentum arrays themselves.
    """
    return clip_gradient < 0 and all(
        type(a) is np.ndarray and a.dtype == np.float32 and a.flags.c_contiguous
        for a in arrays)


class _Kernels:
    """The compiled kernels (attributes named as the module's functions)."""

    def __init__(self, numba):
        exact = {"nogil": True, "error_model": "numpy", "cache": True}
        for name in ("sgd_mom_step", "sgd_step"):
            setattr(self, name, numba.njit(**exact)(globals()[name]))


def kernels(dtype=np.float32):
    """The compiled kernels for arrays of ``dtype``, or None (numpy code runs instead).

    None when ``dtype`` is not float32, when numba is not installed, or when
    ``DEEPKIT_NUMBA`` is ``0``.
    """
    return fused_cpu.compiled_once(_Kernels, dtype)
