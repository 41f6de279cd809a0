"""Creation functions: ``array``, ``zeros``, ``ones``, ``full``, ``empty``,
``arange``, the ``*_like`` forms, ``from_dlpack`` and ``waitall``.

They take ``ctx`` and ``dtype`` (float32 by default, as in MXNet).
"""
import numpy as np

from .. import engine as _engine
from ..base import ContextError, ShapeError
from ..context import Context, current_context
from .ndarray import NDArray

__all__ = ["array", "zeros", "ones", "full", "eye", "empty", "arange", "empty_like", "full_like",
           "waitall", "from_dlpack"]

_DEFAULT_DTYPE = np.float32


def _ctx(ctx):
    if ctx is None:
        return current_context()
    ctx = ctx if isinstance(ctx, Context) else Context(ctx)
    ctx.check_available()
    return ctx


def _shape(shape):
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"shape {shape} has a negative dimension")
    return shape


def array(source_array, ctx=None, dtype=None):
    """An NDArray holding a copy of ``source_array``.

    Args:
        source_array: An NDArray, numpy/cupy array, or nested sequence.
        ctx: Device (default: the current context).
        dtype: Element type; default float32 unless the source is an NDArray.
    """
    if isinstance(source_array, NDArray):
        result = source_array.copyto(_ctx(ctx) if ctx is not None else source_array.ctx)
        return result if dtype is None or np.dtype(dtype) == result.dtype else result.astype(dtype)
    ctx = _ctx(ctx)
    dtype = np.dtype(_DEFAULT_DTYPE if dtype is None else dtype)
    if ctx.is_gpu:
        xp = ctx.xp
        with ctx.device_scope():
            data = xp.array(source_array, dtype=dtype)
    else:
        if hasattr(source_array, "get") and not isinstance(source_array, np.ndarray):
            source_array = source_array.get()
        data = np.array(source_array, dtype=dtype)
    return NDArray(data, ctx)


def _filled(shape, ctx, dtype, fill):
    ctx = _ctx(ctx)
    dtype = np.dtype(_DEFAULT_DTYPE if dtype is None else dtype)
    xp = ctx.xp
    with ctx.device_scope():
        if fill is None:
            data = xp.empty(_shape(shape), dtype)
        elif fill == 0:
            data = xp.zeros(_shape(shape), dtype)
        else:
            data = xp.full(_shape(shape), fill, dtype)
    return NDArray(data, ctx)


def _into(out, result):
    """``result`` written into ``out`` (MXNet's ``out=``), or ``result`` itself."""
    if out is None:
        return result
    if not isinstance(out, NDArray):
        raise TypeError(f"out must be an NDArray, got {type(out).__name__}")
    if out.shape != result.shape:
        raise ShapeError(f"out has shape {out.shape} but the result has shape {result.shape}",
                         argument="out", expected=result.shape, actual=out.shape)
    out[:] = result.as_in_context(out.ctx)
    return out


def zeros(shape, ctx=None, dtype=None, out=None):
    """An array of zeros (written into ``out`` when given)."""
    return _into(out, _filled(shape, ctx, dtype, 0))


def ones(shape, ctx=None, dtype=None, out=None):
    """An array of ones (written into ``out`` when given)."""
    return _into(out, _filled(shape, ctx, dtype, 1))


def full(shape, val, ctx=None, dtype=None, out=None):
    """An array filled with ``val`` (written into ``out`` when given)."""
    return _into(out, _filled(shape, ctx, dtype, val))


def eye(N, M=0, k=0, ctx=None, dtype=None, out=None):
    """A 2-D array with ones on the ``k``-th diagonal (``M=0``: square), as MXNet's ``eye``."""
    values = np.eye(int(N), int(M) or int(N), int(k))
    return _into(out, array(values, ctx=ctx, dtype=dtype))


def empty(shape, ctx=None, dtype=None):
    """An array with unspecified values (allocation only)."""
    return _filled(shape, ctx, dtype, None)


def empty_like(data):
    """An uninitialised array with the shape, dtype and context of ``data``."""
    return empty(data.shape, data.ctx, data.dtype)


def full_like(data, val):
    """An array like ``data`` filled with ``val``."""
    return full(data.shape, val, data.ctx, data.dtype)


def arange(start, stop=None, step=1.0, repeat=1, ctx=None, dtype=None, out=None):
    """Evenly spaced values in [start, stop), each repeated ``repeat`` times (MXNet)."""
    if stop is None:
        start, stop = 0, start
    values = np.arange(start, stop, step, dtype=np.float64)
    if repeat != 1:
        values = np.repeat(values, repeat)
    return _into(out, array(values, ctx=ctx, dtype=dtype))


def waitall():
    """Wait for all pushed work; raise the first error from it."""
    _engine.wait_all()


def from_dlpack(obj):
    """Wrap a DLPack-capable array (numpy, cupy, torch) without copying."""
    device_type, device_id = obj.__dlpack_device__()
    if int(device_type) == 1:
        data = np.from_dlpack(obj)
        ctx = Context("cpu", 0)
    elif int(device_type) == 2:
        ctx = Context("gpu", int(device_id))
        data = ctx.xp.from_dlpack(obj)
    else:
        raise ContextError(f"from_dlpack: unsupported DLPack device type {device_type}")
    return NDArray(data, ctx)
