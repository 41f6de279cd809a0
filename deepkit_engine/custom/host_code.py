"""Running NDArray code written by users from inside engine work.

MXNet-style operators (``CustomOp.forward``) and ``autograd.Function.backward``
are written with NDArrays and may read values (``asnumpy``). Their kernels run
inside pushed engine work, where waiting is refused because it could
deadlock. :func:`ndarray_code` lets such code run: the kernel's raw buffers are
wrapped in fresh NDArrays (nothing else is pending on them), and while the
block runs, NDArray work pushed from this thread that is ready runs at once on
it, so reads never wait on another worker.
"""
import contextlib
import threading

from .. import engine as _engine_mod
from ..ndarray import ndarray as _ndarray_mod
from ..ndarray.ndarray import NDArray

__all__ = ["ndarray_code", "wrap"]

_lock = threading.Lock()
_active = [0, None]  # blocks running now, the inline bound saved by the first


def wrap(raw_arrays, ctx):
    """Fresh NDArrays over raw buffers (``None`` stays ``None``)."""
    return [None if a is None else NDArray(a, ctx) for a in raw_arrays]


@contextlib.contextmanager
def ndarray_code():
    """Let user NDArray code run (and read values) inside a kernel."""
    depth = getattr(_engine_mod._in_work, "depth", 0)
    _engine_mod._in_work.depth = 0
    with _lock:
        if _active[0] == 0:
            _active[1] = _ndarray_mod.INLINE_MAX_SIZE
            _ndarray_mod.INLINE_MAX_SIZE = 1 << 62
        _active[0] += 1
    try:
        yield
    finally:
        with _lock:
            _active[0] -= 1
            if _active[0] == 0:
                _ndarray_mod.INLINE_MAX_SIZE = _active[1]
        _engine_mod._in_work.depth = depth
