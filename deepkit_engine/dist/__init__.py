"""Several processes as one: MPI collectives for data-parallel training.

A thin layer over mpi4py's ``COMM_WORLD`` (the optional ``dist`` extra:
``pip install 'deepkit[dist]'``). Start the processes with an MPI launcher::

    mpirun -np 4 python train.py

and every process sees its :func:`rank` among :func:`size` processes. Single
process code needs no change: without a launcher :func:`size` is 1,
:func:`rank` 0 and the collectives return their input.

Collectives never hang on a dead or stuck rank: each one is started
non-blocking and polled against a deadline (``DEEPKIT_DIST_TIMEOUT`` seconds,
default 60; 0 waits forever). Past it, a :class:`DistributedError` naming the
operation and the ranks is written to stderr and the job is aborted
(``MPI_Abort``), so every rank ends with an error instead of waiting forever.

Every rank must call the same collectives in the same order (MPI's rule).
Collectives run as engine work must write :func:`collective_var`, which
keeps them in push order (the KVStore's do); do not start collectives
directly from Python while such work is pending (call ``nd.waitall()``
first, or push them too).

Buffers are numpy arrays (cupy arrays are staged through host memory, since
the MPI libraries installed from PyPI are not CUDA-aware); they are reduced
in place. Nothing here pickles: texts travel as encoded bytes in buffers.
"""
from .mpi import (DistributedError, DistUnavailableError, ReduceHandle, allreduce_,
                  allreduce_many, average_logs, barrier, broadcast_, check_same_structure,
                  collective_var, init, is_initialized, launched_under_mpi, local_rank,
                  push_allreduce, rank, size, timeout)

__all__ = ["DistributedError", "DistUnavailableError", "ReduceHandle", "init", "is_initialized",
           "collective_var", "launched_under_mpi", "rank", "size", "local_rank", "timeout",
           "barrier", "allreduce_", "allreduce_many", "broadcast_", "check_same_structure",
           "average_logs", "push_allreduce"]
