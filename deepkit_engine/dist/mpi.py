"""The MPI communicator: initialisation, ranks, and collectives with a deadline.

See the package docstring (:mod:`deepkit_engine.dist`) for the model. All
collectives run on a private duplicate of ``COMM_WORLD``, so they never
mix with the user's own MPI messages, and are started non-blocking then
polled, so a rank that died or hangs turns into a :class:`DistributedError`
after :func:`timeout` seconds instead of a hang.
"""
import atexit
import json
import math
import os
import sys
import threading
import time
import zlib

import numpy as np

from .. import engine as _engine
from ..base import DeepkitError

__all__ = ["DistributedError", "DistUnavailableError", "ReduceHandle", "init", "is_initialized",
           "collective_var", "launched_under_mpi", "rank", "size", "local_rank", "timeout",
           "barrier", "allreduce_", "allreduce_many", "broadcast_", "check_same_structure",
           "average_logs", "push_allreduce"]

_INSTALL_HINT = ("install the dist extra: pip install 'deepkit[dist]' (it brings mpi4py and the "
                 "mpich MPI library), then start the processes with mpirun")

#: Default bucket size of :func:`allreduce_many`, in MiB (``DEEPKIT_DIST_BUCKET_MB``).
DEFAULT_BUCKET_MB = 25.0

# (rank, size, local rank) variables set by the common launchers.
_LAUNCHER_ENV = (
    ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),   # Open MPI
    ("PMI_RANK", "PMI_SIZE"),                           # MPICH (hydra), Intel MPI
    ("PMIX_RANK", "PMIX_SIZE"),
)
_LOCAL_RANK_ENV = ("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "PMI_LOCAL_RANK",
                   "SLURM_LOCALID")


class DistributedError(DeepkitError, RuntimeError):
    """A collective that failed or did not complete in time, or ranks that disagree.

    Attributes:
        op: The operation (``'allreduce'``, ``'barrier'``, ...).
        ranks: The ranks at fault where known (for a timeout: the ranks that
            may not have joined).
    """

    def __init__(self, message, op=None, ranks=None):
        super().__init__(message)
        self.op = op
        self.ranks = list(ranks) if ranks is not None else None


class DistUnavailableError(DeepkitError, ImportError):
    """mpi4py (or the MPI library under it) is not installed."""


_MPI = None             # the mpi4py.MPI module once initialised
_comm = None            # the private duplicate of COMM_WORLD
_local_comm = None
_timeout = None
_abort_on_error = True
_seq = 0                # collectives started by this process
_lock = threading.RLock()  # one MPI call at a time (also valid at MPI_THREAD_SERIALIZED)
_COLLECTIVE_VAR = _engine.Var()


def collective_var():
    """The engine variable that every collective run as engine work must write.

    MPI needs the same collectives in the same order on every rank. Work
    pushed to the engine runs on worker threads, so two collectives pushed
    one after the other could start in either order; writing this one
    variable makes them run one at a time, in push order, which is the same
    on every rank. The KVStore's collectives write it; so must any other
    code that pushes collectives to the engine::

        engine.push(lambda: dist.allreduce_(buf), (), (var, dist.collective_var()))
    """
    return _COLLECTIVE_VAR


def _env_rank_size():
    """``(rank, size)`` from the launcher's environment variables, or None."""
    for rank_var, size_var in _LAUNCHER_ENV:
        if rank_var in os.environ and size_var in os.environ:
            try:
                return int(os.environ[rank_var]), int(os.environ[size_var])
            except ValueError:
                continue
    return None


def launched_under_mpi():
    """Whether an MPI launcher (mpirun, mpiexec, srun --mpi) started this process."""
    return _comm is not None or _env_rank_size() is not None


def _read_timeout():
    text = os.environ.get("DEEPKIT_DIST_TIMEOUT", "60").strip() or "60"
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"DEEPKIT_DIST_TIMEOUT must be a number of seconds (0: no limit), got "
                         f"{text!r}") from None
    if value < 0 or math.isnan(value):
        raise ValueError(f"DEEPKIT_DIST_TIMEOUT must be >= 0 seconds (0: no limit), got {text!r}")
    return value


def init(timeout=None, abort_on_error=None):
    """Initialise MPI for deepkit (idempotent): later calls only update the settings.

    Args:
        timeout: Seconds a collective may wait for the other ranks before it
            fails (0: no limit). Default: ``DEEPKIT_DIST_TIMEOUT``, else 60.
        abort_on_error: When a collective fails or times out, write the
            :class:`DistributedError` to stderr and abort the whole job
            (``MPI_Abort``), which is what a training job wants: its
            communicator is unusable afterwards. With False the error is
            raised instead, for callers that handle it themselves. Default:
            unchanged (True until set).

    Returns:
        ``(rank, size)`` of this process.

    Raises:
        DistUnavailableError: mpi4py is not installed.
    """
    global _MPI, _comm, _timeout, _abort_on_error
    if timeout is not None:
        if timeout < 0:
            raise ValueError(f"dist.init: timeout must be >= 0 seconds (0: no limit), got "
                             f"{timeout}")
        _timeout = float(timeout)
    elif _timeout is None:
        _timeout = _read_timeout()
    if abort_on_error is not None:
        _abort_on_error = bool(abort_on_error)
    with _lock:
        if _comm is not None:
            return _comm.Get_rank(), _comm.Get_size()
        try:
            from mpi4py import MPI  # optional dependency (the dist extra); initialises MPI
        except ImportError as err:
            raise DistUnavailableError(f"dist.init: mpi4py could not be imported ({err}); "
                                       + _INSTALL_HINT) from err
        if not MPI.Is_initialized():
            MPI.Init_thread(MPI.THREAD_MULTIPLE)
        world = MPI.COMM_WORLD
        world.Set_errhandler(MPI.ERRORS_RETURN)
        _MPI = MPI
        comm, request = world.Idup()
        _wait_requests([request], "init (duplicating COMM_WORLD)", None, world)
        comm.Set_errhandler(MPI.ERRORS_RETURN)
        _comm = comm
        # Runs before mpi4py finalises MPI: collectives still queued on the engine finish first.
        atexit.register(_drain_engine)
        return comm.Get_rank(), comm.Get_size()


def _drain_engine():
    try:
        _engine.get_engine().wait_all()
    except Exception:  # noqa: BLE001 - errors were reported at their waits; exit anyway
        pass


def is_initialized():
    """Whether :func:`init` has run in this process."""
    return _comm is not None


def rank():
    """This process's rank: from MPI once initialised, else the launcher's, else 0."""
    if _comm is not None:
        return _comm.Get_rank()
    env = _env_rank_size()
    return env[0] if env else 0


def size():
    """The number of processes: from MPI once initialised, else the launcher's, else 1."""
    if _comm is not None:
        return _comm.Get_size()
    env = _env_rank_size()
    return env[1] if env else 1


def local_rank():
    """This process's rank among the processes on its machine (to pick its GPU).

    From the launcher's variables (``OMPI_COMM_WORLD_LOCAL_RANK``,
    ``MPI_LOCALRANKID``, ``PMI_LOCAL_RANK``, ``SLURM_LOCALID``); else, once
    initialised, from a shared-memory split of the communicator; else 0.
    """
    global _local_comm
    for name in _LOCAL_RANK_ENV:
        value = os.environ.get(name)
        if value is not None and value.strip().isdigit():
            return int(value)
    if _comm is None:
        return 0
    with _lock:
        if _local_comm is None:
            _local_comm = _comm.Split_type(_MPI.COMM_TYPE_SHARED)
        return _local_comm.Get_rank()


def timeout():
    """Seconds a collective waits for the other ranks (0: no limit)."""
    return _timeout if _timeout is not None else _read_timeout()


# -- waiting with a deadline ---------------------------------------------------------------------

#: How long a waiting collective keeps testing without sleeping (seconds).
_SPIN_SECONDS = 0.1

#: Pause between writing a fatal error and aborting (seconds): the launcher forwards a rank's
#: stderr from a pipe, and an abort that comes first can kill it before the message is read.
_ABORT_GRACE_SECONDS = 1.0


def _others(comm):
    me, n = comm.Get_rank(), comm.Get_size()
    return [r for r in range(n) if r != me]


def _fail(message, op, ranks, comm):
    """Report a broken collective: abort the job (default) or raise."""
    error = DistributedError(message, op=op, ranks=ranks)
    if _abort_on_error:
        sys.stderr.write(f"\nDistributedError on rank {comm.Get_rank()}: {message}\n"
                         "Aborting all ranks (MPI_Abort).\n")
        sys.stderr.flush()
        time.sleep(_ABORT_GRACE_SECONDS)
        _MPI.COMM_WORLD.Abort(1)
    raise error


def _late_message(label, limit, comm):
    others = _others(comm)
    shown = others if len(others) <= 16 else others[:16] + ["..."]
    return (f"{label} did not complete within {limit:g} s on rank {comm.Get_rank()} of "
            f"{comm.Get_size()}: at least one of the ranks {shown} did not join it (it "
            "died, hangs, or called another collective). Raise DEEPKIT_DIST_TIMEOUT if "
            "a rank legitimately works longer between collectives."), others


_watched = [None]  # (label, deadline, limit, comm) of the blocking wait in progress
_watchdog = [None]


def _watch_loop():
    while True:
        time.sleep(0.2)
        entry = _watched[0]
        if entry is not None and time.monotonic() > entry[1]:
            label, _, limit, comm = entry
            message, others = _late_message(label, limit, comm)
            _fail(message, label, others, comm)  # aborts the job: the waiting call never returns


def _wait_blocking(requests, label, limit, comm):
    """Wait inside MPI (its own fast progress), a watchdog thread enforcing the deadline."""
    if limit and _watchdog[0] is None:
        _watchdog[0] = threading.Thread(target=_watch_loop, name="deepkit-dist-watchdog",
                                        daemon=True)
        _watchdog[0].start()
    _watched[0] = (label, time.monotonic() + limit, limit, comm) if limit else None
    try:
        with _lock:
            _MPI.Request.Waitall(requests)
    except _MPI.Exception as err:
        _fail(f"{label} failed on rank {comm.Get_rank()} of {comm.Get_size()}: "
              f"{err.Get_error_string().strip()}", label, _others(comm), comm)
    finally:
        _watched[0] = None


def _wait_requests(requests, op, seq, comm=None):
    """Wait until ``requests`` all complete, failing past the deadline.

    When a failure aborts the job (the default), the wait blocks inside MPI,
    whose own progress engine finishes a large collective several times
    faster than repeated tests from Python, and a watchdog thread aborts the
    job past the deadline. Otherwise the requests are polled, so that the
    error can be raised in this thread.
    """
    comm = comm if comm is not None else _comm
    limit = timeout()
    label = op if seq is None else f"{op} (collective #{seq} of this rank)"
    if _abort_on_error:
        _wait_blocking(requests, label, limit, comm)
        return
    start = time.monotonic()
    pause = 0.0
    while True:
        try:
            with _lock:
                done = _MPI.Request.Testall(requests)
        except _MPI.Exception as err:
            _fail(f"{label} failed on rank {comm.Get_rank()} of {comm.Get_size()}: "
                  f"{err.Get_error_string().strip()}", op, _others(comm), comm)
        if done:
            return
        waited = time.monotonic() - start
        if limit and waited > limit:
            message, others = _late_message(label, limit, comm)
            _fail(message, op, others, comm)
        # MPI moves a non-blocking collective on only inside Test calls, and a large one
        # needs many rounds: keep testing (yielding the GIL) while a peer is likely just
        # finishing its own work, and back off only after that
        if waited > _SPIN_SECONDS:
            pause = min(max(pause * 2, 5e-5), 2e-3)
            time.sleep(pause)
        else:
            time.sleep(0)


def _communicator(op):
    """The communicator, initialising MPI when launched under it; None for one process."""
    if _comm is not None:
        return _comm
    if _env_rank_size() is None:
        return None
    init()
    return _comm


def _start(op, start_fn):
    """Start one non-blocking collective under the lock; return ``(request(s), seq)``."""
    global _seq
    with _lock:
        _seq += 1
        try:
            return start_fn(), _seq
        except _MPI.Exception as err:
            _fail(f"{op} (collective #{_seq} of this rank) could not start on rank "
                  f"{_comm.Get_rank()}: {err.Get_error_string().strip()}", op, None, _comm)


# -- buffers ----------------------------------------------------------------------------------

def _is_cupy(array):
    return not isinstance(array, np.ndarray) and hasattr(array, "__cuda_array_interface__")


def _check_array(array, op, i=None):
    where = "array" if i is None else f"arrays[{i}]"
    if not isinstance(array, np.ndarray) and not _is_cupy(array):
        raise TypeError(f"dist.{op}: {where} must be a numpy (or cupy) array, got "
                        f"{type(array).__name__}; for NDArrays use a 'dist_sync' KVStore, which "
                        "orders the collective on the engine")
    kind = np.dtype(array.dtype).kind
    if kind not in "fiuc":
        raise TypeError(f"dist.{op}: {where} has dtype {array.dtype}; only numeric arrays can be "
                        "summed")
    if isinstance(array, np.ndarray) and not array.flags.writeable:
        raise ValueError(f"dist.{op}: {where} is read-only; the result is written into it")


def _reduce_dtype(dtype):
    """The dtype a bucket of ``dtype`` travels in (float16 as float32: not every MPI sums it)."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def _host(array):
    """A host view (numpy) or copy (cupy) of ``array``."""
    return array.get() if _is_cupy(array) else array


def _write_back(array, values, average_by):
    """``array[...] = values`` (divided by ``average_by`` when given), device or host."""
    if average_by:
        if np.dtype(array.dtype).kind in "iu":
            values = values // average_by
        else:
            values = values / average_by
    if _is_cupy(array):
        array.set(np.ascontiguousarray(values, dtype=array.dtype).reshape(array.shape))
    elif values is not array:
        np.copyto(array, values.reshape(array.shape), casting="unsafe")


class ReduceHandle:
    """The pending result of :func:`allreduce_many`: :meth:`wait` writes it into the arrays.

    The collectives are started by the call and finished by :meth:`wait`, so
    the caller can do other work in between (e.g. compute the next
    gradients). MPI moves them on while :meth:`done` or :meth:`wait` runs,
    and meanwhile only where the library has a progress thread (MPICH:
    ``MPIR_CVAR_ASYNC_PROGRESS=1``). The arrays must not be modified before
    :meth:`wait` returns.
    """

    def __init__(self, arrays, buckets, requests, seqs, average_by, op):
        self._arrays = arrays
        self._buckets = buckets      # [(flat buffer, [(array index, offset, size)] or None)]
        self._requests = requests
        self._seqs = seqs
        self._average_by = average_by
        self._op = op
        self._done = not requests

    def done(self):
        """Whether the collectives have finished (never waits; :meth:`wait` still must run)."""
        if self._done or not self._requests:
            return True
        with _lock:
            return _MPI.Request.Testall(self._requests)

    def wait(self):
        """Wait for the collectives and write the sums (or means) into the arrays.

        Returns:
            The list of arrays, reduced in place.

        Raises:
            DistributedError: A rank did not join within :func:`timeout`
                (when :func:`init` was called with ``abort_on_error=False``;
                else the job is aborted with that message).
        """
        if self._done:
            return self._arrays
        first = self._seqs[0] if self._seqs else None
        _wait_requests(self._requests, self._op, first)
        n = self._average_by
        for buffer, parts in self._buckets:
            if parts is None:  # the array itself travelled: only the mean is left to take
                if n and buffer.dtype.kind in "iu":
                    buffer //= n
                elif n:
                    buffer /= n
                continue
            for index, offset, count in parts:
                _write_back(self._arrays[index], buffer[offset:offset + count], n)
        self._done = True
        return self._arrays


def allreduce_many(arrays, average=False, bucket_mb=None):
    """Sum (or average) many arrays over all ranks, in few collectives.

    The arrays are packed into flat buffers of about ``bucket_mb`` MiB (one
    per dtype run; an array larger than a bucket gets its own), one
    non-blocking all-reduce each. All ranks must pass arrays of the same
    shapes and dtypes in the same order (see :func:`check_same_structure`).

    Args:
        arrays: numpy or cupy arrays, reduced in place. cupy arrays are
            staged through host memory.
        average: Divide by :func:`size` (integer arrays: floor division).
        bucket_mb: Bucket size in MiB (default ``DEEPKIT_DIST_BUCKET_MB``, else 25).

    Returns:
        A :class:`ReduceHandle`; ``handle.wait()`` completes the reduction and
        returns the arrays. With one process the sums are the arrays
        themselves and ``wait()`` returns at once.
    """
    arrays = list(arrays)
    for i, array in enumerate(arrays):
        _check_array(array, "allreduce_many", i)
    comm = _communicator("allreduce_many")
    n = comm.Get_size() if comm is not None else 1
    if n == 1:
        return ReduceHandle(arrays, [], [], [], None, "allreduce_many")
    if bucket_mb is None:
        bucket_mb = float(os.environ.get("DEEPKIT_DIST_BUCKET_MB", DEFAULT_BUCKET_MB))
    if not bucket_mb > 0:
        raise ValueError(f"dist.allreduce_many: bucket_mb must be > 0, got {bucket_mb}")
    limit = int(bucket_mb * (1 << 20))
    # group consecutive arrays by the dtype they travel in, cut at the byte limit
    groups, current, current_bytes, current_dtype = [], [], 0, None
    for i, array in enumerate(arrays):
        if array.size == 0:
            continue
        dtype = _reduce_dtype(array.dtype)
        nbytes = array.size * dtype.itemsize
        if current and (dtype != current_dtype or current_bytes + nbytes > limit):
            groups.append((current_dtype, current))
            current, current_bytes = [], 0
        current.append(i)
        current_bytes += nbytes
        current_dtype = dtype
    if current:
        groups.append((current_dtype, current))
    buckets, requests, seqs = [], [], []
    for dtype, members in groups:
        single = arrays[members[0]] if len(members) == 1 else None
        if single is not None and isinstance(single, np.ndarray) and single.dtype == dtype \
                and single.flags.c_contiguous:
            buffer, parts = single.reshape(-1), None   # reduced in place: nothing to copy back
        else:
            total = sum(arrays[i].size for i in members)
            buffer = np.empty(total, dtype)
            parts, offset = [], 0
            for i in members:
                count = arrays[i].size
                buffer[offset:offset + count] = _host(arrays[i]).reshape(-1)
                parts.append((i, offset, count))
                offset += count
        request, seq = _start("allreduce_many",
                              lambda b=buffer: comm.Iallreduce(_MPI.IN_PLACE, b, op=_MPI.SUM))
        buckets.append((buffer, parts))
        requests.append(request)
        seqs.append(seq)
    return ReduceHandle(arrays, buckets, requests, seqs, n if average else None,
                        "allreduce_many")


def push_allreduce(arrays, average=False, scale=None, on_done=None, name="allreduce"):
    """Queue the all-reduce of NDArrays ``arrays`` on the engine, in place, without waiting.

    It starts once the work queued earlier that writes the arrays is done,
    and work queued later that reads them waits for it. On a CPU it runs on
    the engine's communication thread (:data:`~deepkit_engine.engine.COMM_WORKER`),
    so a compute worker never waits for the other ranks: while it waits for
    them (MPI releases the GIL), the next work (the rest of a backward pass)
    runs. It writes :func:`collective_var`, so the collectives keep the push
    order on every rank. All ranks must push the same arrays (shapes, dtypes)
    in the same order.

    Args:
        arrays: NDArrays of one context, reduced in place (one collective for
            them together when they fit one bucket of :func:`allreduce_many`).
        average: Divide the sums by :func:`size`.
        scale: Multiply each array by this factor before the sum (e.g. its
            share of the global batch), or None.
        on_done: Called as ``on_done(start, end)`` (``time.perf_counter()``
            seconds) on the engine thread after each exchange, or None.
        name: The engine operation's name (errors, profiles).
    """
    arrays = list(arrays)
    if not arrays:
        return
    buffers = [a._data for a in arrays]
    ctx = arrays[0]._ctx

    def exchange():
        start = time.perf_counter()
        if scale is not None and scale != 1.0:
            for buffer in buffers:
                buffer *= scale
        allreduce_many(buffers, average=average).wait()
        if on_done is not None:
            on_done(start, time.perf_counter())
    # GPU buffers stay with their device's workers (stream and device scope)
    worker = None if ctx.is_gpu else _engine.COMM_WORKER
    _engine.push(exchange, (), [a._var for a in arrays] + [_COLLECTIVE_VAR], ctx, name,
                 worker=worker)


def allreduce_(array, average=False):
    """Sum (or average) ``array`` over all ranks, in place; returns it.

    Args:
        array: A numpy (or cupy) array of the same shape and dtype on every rank.
        average: Divide the sum by :func:`size` (integer arrays: floor division).
    """
    _check_array(array, "allreduce_")
    return allreduce_many([array], average=average).wait()[0]


def broadcast_(array, root=0):
    """Overwrite ``array`` on every rank with ``root``'s values, in place; returns it."""
    _check_array(array, "broadcast_")
    comm = _communicator("broadcast_")
    n = comm.Get_size() if comm is not None else 1
    if not isinstance(root, (int, np.integer)) or not 0 <= root < n:
        raise ValueError(f"dist.broadcast_: root must be a rank in [0, {n}), got {root!r}")
    if n == 1 or array.size == 0:
        return array
    direct = isinstance(array, np.ndarray) and array.flags.c_contiguous
    buffer = array if direct else np.ascontiguousarray(_host(array))
    request, seq = _start("broadcast_", lambda: comm.Ibcast(buffer, root=int(root)))
    _wait_requests([request], f"broadcast_ from rank {root}", seq)
    if not direct:
        _write_back(array, buffer, None)
    return array


def barrier():
    """Wait until every rank has reached this call (with the deadline of :func:`timeout`)."""
    comm = _communicator("barrier")
    if comm is None or comm.Get_size() == 1:
        return
    request, seq = _start("barrier", comm.Ibarrier)
    _wait_requests([request], "barrier", seq)


def _allgather_bytes(data, op):
    """Every rank's ``data`` (bytes), in rank order."""
    comm = _comm
    n = comm.Get_size()
    send = np.frombuffer(data, np.uint8) if data else np.zeros(0, np.uint8)
    lengths = np.zeros(n, np.int64)
    own = np.array([send.size], np.int64)
    request, seq = _start(op, lambda: comm.Iallgather(own, lengths))
    _wait_requests([request], op, seq)
    displacements = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    received = np.zeros(int(lengths.sum()), np.uint8)
    counts = [int(c) for c in lengths]
    offsets = [int(d) for d in displacements]
    request, seq = _start(op, lambda: comm.Iallgatherv(
        [send, _MPI.BYTE], [received, counts, offsets, _MPI.BYTE]))
    _wait_requests([request], op, seq)
    return [received[o:o + c].tobytes() for o, c in zip(offsets, counts)]


def _plain(value):
    """JSON-comparable form of a structure entry (tuples as lists, numpy scalars as numbers)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.dtype):
        return str(value)
    return value


def check_same_structure(structure, what="parameters"):
    """Check that every rank holds the same names with the same shapes.

    Call it once before training: ranks that built different models would
    otherwise sum unrelated buffers. Texts travel as JSON bytes (no pickle).

    Args:
        structure: ``{name: shape}`` (a shape, or any JSON value such as
            ``[shape, dtype]``).
        what: What the names are, for the message.

    Raises:
        DistributedError: On every rank when any rank differs from rank 0;
            the message lists, per differing rank, the missing and extra names
            and the names whose shapes differ.
    """
    if not isinstance(structure, dict):
        raise TypeError(f"dist.check_same_structure: structure must be a dict name -> shape, "
                        f"got {type(structure).__name__}")
    comm = _communicator("check_same_structure")
    if comm is None or comm.Get_size() == 1:
        return
    plain = {str(k): _plain(v) for k, v in structure.items()}
    text = json.dumps(sorted(plain.items()), separators=(",", ":")).encode("utf-8")
    gathered = _allgather_bytes(text, "check_same_structure")
    tables = [dict(json.loads(b.decode("utf-8"))) for b in gathered]
    reference = tables[0]
    problems, bad_ranks = [], []
    for r, table in enumerate(tables[1:], start=1):
        missing = sorted(set(reference) - set(table))
        extra = sorted(set(table) - set(reference))
        changed = sorted(k for k in set(reference) & set(table) if reference[k] != table[k])
        if not (missing or extra or changed):
            continue
        bad_ranks.append(r)
        parts = []
        if missing:
            parts.append(f"missing {_listing(missing)}")
        if extra:
            parts.append(f"extra {_listing(extra)}")
        if changed:
            parts.append("different: " + ", ".join(
                f"'{k}' is {table[k]} (rank 0: {reference[k]})" for k in changed[:10])
                + (f" and {len(changed) - 10} more" if len(changed) > 10 else ""))
        problems.append(f"rank {r}: " + "; ".join(parts))
    if problems:
        raise DistributedError(f"check_same_structure: the ranks hold different {what} (compared "
                               "with rank 0): " + " | ".join(problems),
                               op="check_same_structure", ranks=bad_ranks)


def _listing(names):
    shown = ", ".join(repr(n) for n in names[:10])
    return f"[{shown}{f', ... {len(names) - 10} more' if len(names) > 10 else ''}]"


def average_logs(logs):
    """The mean over all ranks of each value of ``logs`` (``{name: float}``).

    For metrics and losses that each rank computed on its share of the data.
    Every rank must pass the same names; otherwise a :class:`DistributedError`
    lists the names that differ.

    Returns:
        A new dict ``{name: float}`` with the same names.
    """
    comm = _communicator("average_logs")
    names = sorted(logs)
    if comm is None or comm.Get_size() == 1:
        return {name: float(logs[name]) for name in names}
    digest = zlib.crc32(json.dumps(names).encode("utf-8"))
    check = np.array([len(names), digest, -len(names), -digest], np.int64)
    request, seq = _start("average_logs", lambda: comm.Iallreduce(_MPI.IN_PLACE, check,
                                                                   op=_MPI.MIN))
    _wait_requests([request], "average_logs", seq)
    if check[0] != -check[2] or check[1] != -check[3]:
        check_same_structure({name: None for name in names}, what="log names")
    values = np.array([float(logs[name]) for name in names], np.float64)
    allreduce_(values)
    values /= comm.Get_size()
    return {name: float(v) for name, v in zip(names, values)}
