"""Host work on NDArray buffers, ordered by the dependency engine like any op.

Communication libraries (MPI) and other host code need the raw buffers of
arrays, at the right moment: after the pending work that writes them and
before the work that reads them next. :func:`push_buffer_work` queues such a
function on the engine with the arrays' variables, so callers never wait;
:func:`prepare_buffer_work` gathers them once for work repeated every step.
"""
from .. import engine as _engine_mod

__all__ = ["prepare_buffer_work", "push_buffer_work"]


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
    prepare_buffer_work(fn, arrays, reads, order, name, read_buffers)()


def prepare_buffer_work(fn, arrays, reads=(), order=None, name="host work", read_buffers=False):
    """:func:`push_buffer_work` as a function that queues the same work again at each call.

    For work repeated every step on the same arrays (a metric reading a bound
    executor's outputs): the buffers and variables are gathered once.

    Args:
        fn, arrays, reads, order, name, read_buffers: As for :func:`push_buffer_work`.

    Returns:
        A function of no arguments.
    """
    buffers = [a._data for a in arrays]
    writes = [a._var for a in arrays]
    if order is not None:
        writes.append(order)
    read_vars = [a._var for a in reads]
    first = arrays[0] if arrays else (reads[0] if reads else None)
    ctx = first._ctx if first is not None else None
    if read_buffers:
        inputs = [a._data for a in reads]
        work = lambda: fn(buffers, inputs)  # noqa: E731
    else:
        work = lambda: fn(buffers)  # noqa: E731
    return lambda: _engine_mod._engine.push(work, read_vars, writes, ctx, name)
