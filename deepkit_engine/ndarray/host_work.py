"""Host work on NDArray buffers, ordered by the dependency engine like any op.

Communication libraries (MPI) and other host code need the raw buffers of
arrays, at the right moment: after the pending work that writes them and
before the work that reads them next. :func:`push_buffer_work` queues such a
function on the engine with the arrays' variables, so callers never wait.
"""
from .. import engine as _engine_mod

__all__ = ["push_buffer_work"]


def push_buffer_work(fn, arrays, reads=(), order=None, name="host work", read_buffers=False):
    """Queue ``fn(buffers)``, which may read and write the raw buffers of ``arrays``.

    Args:
        fn: Called on an engine worker with the list of raw buffers (numpy
            or cupy arrays) of ``arrays``, once the earlier work on them is done.
        arrays: NDArrays that ``fn`` writes (and may read).
        reads: NDArrays that ``fn`` only reads.
        order: An engine variable that this work also writes, so that all
            work pushed with it runs one piece at a time, in push order
            (``deepkit_engine.dist.collective_var()`` for MPI collectives),
            or None.
        name: Names the work in errors and profiles.
        read_buffers: Call ``fn(buffers, read_buffers)`` with the raw buffers
            of ``reads`` too (host code that only reads arrays, e.g. metrics).
    """
    buffers = [a._data for a in arrays]
    writes = [a._var for a in arrays]
    if order is not None:
        writes.append(order)
    first = arrays[0] if arrays else (reads[0] if reads else None)
    ctx = first._ctx if first is not None else None
    if read_buffers:
        inputs = [a._data for a in reads]
        work = lambda: fn(buffers, inputs)  # noqa: E731
    else:
        work = lambda: fn(buffers)  # noqa: E731
    _engine_mod._engine.push(work, [a._var for a in reads], writes, ctx, name)
