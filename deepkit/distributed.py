"""Training on several processes and machines with MPI (as ChainerMN and Horovod do).

Launch the same script once per process::

    mpirun -np 4 python train.py            # one machine, or a hostfile: -hostfile hosts
    srun -n 8 python train.py               # a Slurm cluster

and call :func:`init` once before training; nothing else changes::

    import deepkit
    deepkit.distributed.init()
    model.fit(x, y, batch_size=256, epochs=5)

With more than one process, ``fit`` (and ``evaluate``) then do by themselves
what data parallelism needs: every process checks that all have the same
model (names and shapes), starts from rank 0's weights, draws the same
shuffling order, takes its part of each batch of ``batch_size`` rows (the
batch size stays the global one, so results match one process with the same
batch size), averages its gradients with the others' in buckets overlapped
with the backward pass, and averages the epoch's logs. Only rank 0 prints
progress and writes checkpoints, logs and backups.

The overlap: the gradients are cut into buckets of about
:data:`BUCKET_BYTES`, last layers first (their gradients are computed
first). ``fit`` pushes the backward pass as one engine operation per bucket
(``Executor.set_backward_segments``), and each bucket's all-reduce runs on
the engine's communication thread as soon as the piece of backward that
completes it is done, beside the rest of the backward pass
(:data:`overlap_backward` and :func:`overlaps_backward` say when).

A process that dies makes the others fail with
:class:`~deepkit_engine.dist.DistributedError` within
``DEEPKIT_DIST_TIMEOUT`` seconds (60 by default) instead of hanging.
MPI comes from the ``dist`` extra (``pip install deepkit[dist]``: mpi4py and
the MPICH wheel) or from the system's MPI.
"""
import json

import numpy as np

import deepkit_engine as dk
from deepkit_engine import dist as _dist
from deepkit_engine import threads

__all__ = ["init", "is_initialized", "active", "rank", "size", "local_rank", "is_chief",
           "barrier", "allreduce_arrays", "broadcast_arrays", "check_same_structure",
           "broadcast_json", "average_floats", "gradient_buckets", "overlaps_backward",
           "BUCKET_BYTES"]

#: Gradients are exchanged in buckets of about this many bytes: one collective
#: per bucket, each queued as soon as the gradients in it are computed.
BUCKET_BYTES = 1 << 20

#: Whether ``fit`` overlaps the gradient exchange with the backward pass (it pushes
#: the backward pass in pieces, one per bucket); False: one piece, and the buckets
#: start once the whole backward pass is done. None (the default) decides by the
#: cores: overlap when this process has at least two of its own (see
#: :func:`overlaps_backward`).
overlap_backward = None


def overlaps_backward():
    """Whether ``fit`` overlaps the gradient exchange with backward in this process.

    :data:`overlap_backward` when set; else only when the process has at
    least two cores of its own. MPI waits by spinning: on a process's only
    core, an exchange started early spins beside the backward pass and takes
    CPU from it (measured with LeNet, one core per process: 1.47x one
    process with the overlap against 2.01x without), while with a spare core
    it runs for free.
    """
    if overlap_backward is not None:
        return bool(overlap_backward)
    return threads.cpu_cores() // threads.local_processes() >= 2

#: Time spent inside gradient exchanges, and their count (for benchmarks and logs).
stats = {"allreduce_seconds": 0.0, "allreduce_buckets": 0}


def init():
    """Join the distributed run this process was launched in (once); returns its rank.

    A process started without an MPI launcher is a run of its own: nothing
    is initialised and MPI is not needed, so the same script also runs
    alone.

    Raises:
        ImportError: Launched by ``mpirun``/``srun`` but mpi4py is not
            installed (``pip install deepkit[dist]``).
    """
    if not _dist.launched_under_mpi():
        return 0
    _dist.init()
    return _dist.rank()


def is_initialized():
    """Whether :func:`init` has run in this process."""
    return _dist.is_initialized()


def active():
    """True in a distributed run: :func:`init` was called and more than one process runs."""
    return _dist.is_initialized() and _dist.size() > 1


def rank():
    """This process's number, 0 to ``size() - 1`` (0 when not distributed)."""
    return _dist.rank() if _dist.is_initialized() else 0


def size():
    """The number of processes (1 when not distributed)."""
    return _dist.size() if _dist.is_initialized() else 1


def local_rank():
    """This process's number among those on the same machine (pick a GPU with it)."""
    return _dist.local_rank() if _dist.is_initialized() else 0


def is_chief():
    """True in the process that prints and writes files: rank 0, or the only one."""
    return rank() == 0


def barrier():
    """Wait until every process gets here (nothing to do when not distributed)."""
    if active():
        _dist.barrier()


def gradient_buckets(sizes):
    """How :func:`allreduce_arrays` cuts arrays into buckets: lists of indices.

    Args:
        sizes: The arrays' sizes in bytes, in exchange order.

    Returns:
        Consecutive index lists; each bucket closes once it holds at least
        :data:`BUCKET_BYTES` (the last one may hold less).
    """
    buckets, bucket, size_bytes = [], [], 0
    for i, nbytes in enumerate(sizes):
        bucket.append(i)
        size_bytes += int(nbytes)
        if size_bytes >= BUCKET_BYTES:
            buckets.append(bucket)
            bucket, size_bytes = [], 0
    if bucket:
        buckets.append(bucket)
    return buckets


def allreduce_arrays(arrays, average=False, scale=None):
    """Sum ``arrays`` (NDArrays) over all processes, in place, without waiting.

    The exchange is queued on the engine in buckets (:func:`gradient_buckets`),
    in the order given, on the engine's communication thread; each bucket
    starts once its arrays are computed, so the first buckets overlap the
    work still running (the rest of a segmented backward pass). All
    processes must call this with the same arrays (names, shapes, order).

    Args:
        arrays: NDArrays, summed in place.
        average: Divide the sums by :func:`size`.
        scale: Multiply each array by this factor before the sum (this
            process's share of the global batch), or None.
    """
    if not active():
        return
    arrays = list(arrays)
    for bucket in gradient_buckets([a.size * a.dtype.itemsize for a in arrays]):
        _dist.push_allreduce([arrays[i] for i in bucket], average=average, scale=scale,
                             on_done=_count_exchange)


def _count_exchange(start, end):
    stats["allreduce_seconds"] += end - start
    stats["allreduce_buckets"] += 1


def broadcast_arrays(arrays, root=0):
    """Give every process ``root``'s values of ``arrays`` (NDArrays); waits until done."""
    if not active():
        return
    for array in arrays:
        value = np.ascontiguousarray(array.asnumpy())
        _dist.broadcast_(value, root=root)
        array[:] = value


def check_same_structure(shapes):
    """Raise when the processes have different models.

    Args:
        shapes: ``{parameter name: shape}`` of this process's model.

    Raises:
        DistributedError: Listing the names whose presence or shape differs.
    """
    if active():
        _dist.check_same_structure({k: tuple(v) for k, v in shapes.items()})


def broadcast_json(value, root=0):
    """``root``'s ``value`` (anything JSON can write) in every process."""
    if not active():
        return value
    _wait_engine()
    text = np.frombuffer(json.dumps(value).encode(), dtype=np.uint8) if rank() == root \
        else np.zeros(0, np.uint8)
    length = np.array([text.size], dtype=np.int64)
    _dist.broadcast_(length, root=root)
    buffer = np.zeros(int(length[0]), np.uint8)
    if rank() == root:
        buffer[:] = text
    _dist.broadcast_(buffer, root=root)
    return json.loads(buffer.tobytes().decode())


def average_floats(values, weight):
    """``{name: number}`` averaged over the processes, each weighted by ``weight``.

    Non-numeric entries are kept as this process has them.
    """
    if not active():
        return values
    _wait_engine()
    names = sorted(k for k, v in values.items() if _is_number(v))
    buffer = np.array([float(values[k]) * weight for k in names] + [float(weight)],
                      dtype=np.float64)
    _dist.allreduce_many([buffer]).wait()
    total = buffer[-1] or 1.0
    averaged = dict(values)
    averaged.update({k: float(buffer[i] / total) for i, k in enumerate(names)})
    return averaged


def _is_number(value):
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, str)


def _wait_engine():
    """Collectives from this thread must not run while queued ones are in flight."""
    dk.waitall()
