"""How the CPU's cores are shared between engine workers, BLAS and kernels.

Three kinds of threads can run numpy work at once: the engine's CPU workers
(independent ops run side by side), the BLAS library's own threads (inside
one matrix product) and the kernel pool (a heavy kernel, such as a
convolution, splitting its batch into chunks that run in parallel, each chunk
calling single-threaded BLAS). Left alone, 2 workers each starting a
multi-threaded BLAS call put 4 busy threads on 2 cores; OpenBLAS threads spin
while they wait, so oversubscription costs far more than the idle time it
tries to fill. This module decides the split once, when the engine starts:

- ``DEEPKIT_CPU_WORKERS`` (read by the engine, default 2): engine worker threads.
- ``DEEPKIT_BLAS_THREADS``: BLAS threads per call. Default
  ``cores // (2 * workers)``, at least 1: on a small machine every BLAS call is
  single-threaded and the cores go to the kernel pool, which splits work in
  large independent pieces (measured on a shared 2-core machine: ResNet-18 and
  LeNet training steps 1.5-4x faster than with 2 BLAS threads per call, whose
  spinning threads collapse when other processes load the machine). Set it to
  ``0`` to leave the BLAS library's own setting (``OPENBLAS_NUM_THREADS`` and
  the like) untouched.
- The kernel pool has ``cores // blas_threads`` threads (kernels run inline
  when that is 1). Kernels from several workers share the one pool, so the
  number of busy kernel threads never exceeds it.

``cores`` counts the cores this process may run on (its CPU affinity),
divided by the number of processes an MPI launcher started on this machine
(``mpirun -np 2`` on 2 cores: one core each).
The BLAS thread count is set by calling ``*_set_num_threads`` of each
OpenBLAS library loaded in the process (numpy's wheels ship OpenBLAS);
another BLAS library is left alone.
"""
import concurrent.futures
import ctypes
import math
import os
import threading

import numpy as np

__all__ = ["blas_threads", "cblas_gemm", "configure", "cpu_cores", "describe", "even_slices",
           "gemm_nt",
           "local_processes", "matmul", "parallel_map", "pause_function", "pool_size",
           "run_together", "set_blas_threads", "unary"]

_state = {"blas": None, "pool_size": 1, "pool": None}
_lock = threading.Lock()
_in_pool = threading.local()


def cpu_cores():
    """Cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def local_processes():
    """How many processes of an MPI launch share this machine (1 without a launcher).

    Read from the launcher's environment: MPICH's ``MPI_LOCALNRANKS``, Open
    MPI's ``OMPI_COMM_WORLD_LOCAL_SIZE``, Slurm's ``SLURM_NTASKS_PER_NODE``.
    """
    for name in ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE"):
        value = os.environ.get(name, "").split("(")[0].split(",")[0].strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def _own_cores():
    """The cores this process's threads should use: its share of the machine's."""
    return max(1, cpu_cores() // local_processes())


def _openblas_libraries():
    """The OpenBLAS shared libraries loaded in this process (ctypes handles), by path."""
    paths = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if "openblas" in os.path.basename(path).lower() and ".so" in path:
                    paths.add(path)
    except OSError:
        return []
    libraries = []
    for path in sorted(paths):
        try:
            libraries.append(ctypes.CDLL(path))
        except OSError:
            continue
    return libraries


def _openblas_setters():
    """``set_num_threads`` functions of the OpenBLAS libraries loaded in this process."""
    setters = []
    names = ("openblas_set_num_threads", "openblas_set_num_threads64_",
             "scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads")
    for lib in _openblas_libraries():
        for name in names:
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.argtypes, fn.restype = [ctypes.c_int], None
                setters.append(fn)
                break
    return setters


def _openblas_local_setter():
    """OpenBLAS's ``openblas_set_num_threads_local`` (OpenBLAS 0.3.27 on), or None.

    It sets the BLAS thread count of the calling thread only and returns the
    previous one, so one product can run wide while others stay single-threaded.
    """
    for lib in _openblas_libraries():
        fn = getattr(lib, "openblas_set_num_threads_local", None)
        if fn is not None:
            fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
            return fn
    return None


def set_blas_threads(n):
    """Set the OpenBLAS thread count to ``n``; returns whether a library took it."""
    setters = _openblas_setters()
    for fn in setters:
        fn(int(n))
    return bool(setters)


def configure(workers):
    """Split the cores between ``workers`` engine workers, BLAS and the kernel pool.

    Called when the engine starts; see the module docstring for the knobs.

    Args:
        workers: The number of engine CPU worker threads.

    Returns:
        ``(blas_threads, pool_size)``; ``blas_threads`` is None when left untouched.
    """
    cores = _own_cores()
    raw = os.environ.get("DEEPKIT_BLAS_THREADS", "").strip()
    blas = int(raw) if raw else max(1, cores // (2 * max(1, workers)))
    with _lock:
        _state["workers"] = workers
        if blas > 0:
            set_blas_threads(blas)
            _state["blas"] = blas
            size = max(1, cores // blas)
        else:
            _state["blas"] = None
            size = 1
        if size != _state["pool_size"]:
            old = _state["pool"]
            _state["pool"], _state["pool_size"] = None, size
            if old is not None:
                old.shutdown(wait=False)
    return _state["blas"], size


def describe():
    """The split in words, for benchmark and bug reports."""
    blas = _state["blas"]
    return (f"{cpu_cores()} cores: {_state.get('workers', '?')} engine workers, "
            f"{'BLAS default' if blas is None else f'{blas} BLAS threads'}, "
            f"kernel pool of {_state['pool_size']}")


def blas_threads():
    """The BLAS thread count set by :func:`configure`, or None when left untouched."""
    return _state["blas"]


def pool_size():
    """How many chunks a kernel may run at once (1: kernels run inline)."""
    if getattr(_in_pool, "active", False):
        return 1
    return _state["pool_size"]


def _pool():
    with _lock:
        if _state["pool"] is None:
            _state["pool"] = concurrent.futures.ThreadPoolExecutor(
                _state["pool_size"], thread_name_prefix="deepkit-kernel",
                initializer=_mark_pool_thread)
        return _state["pool"]


def _mark_pool_thread():
    _in_pool.active = True


def _forget_pool_in_child():
    """A forked child has none of the parent's pool threads: it starts its own when needed."""
    global _lock, _together_lock
    _lock = threading.Lock()
    _together_lock = threading.Lock()  # a parent's group may have held it at the fork
    _state["pool"] = None
    _wide["lock"] = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def even_slices(n, parts):
    """``range(n)`` as up to ``parts`` contiguous slices of near-equal length (one per
    pool thread, typically), none empty."""
    step = max(1, -(-n // max(1, min(parts, n))))
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def parallel_map(fn, items):
    """``[fn(item) for item in items]``, run on the kernel pool when it has several threads.

    ``fn`` must release the GIL for most of its time (numpy's large array ops
    and BLAS calls do) and may not itself wait for other pool work; calls from
    inside the pool run inline.
    """
    items = list(items)
    if len(items) < 2 or pool_size() < 2:
        return [fn(item) for item in items]
    return list(_pool().map(fn, items))


_together_lock = threading.Lock()


def run_together(fn, items):
    """``[fn(item) for item in items]`` with every call running at the same time.

    For kernels whose parts wait for each other (a barrier per time step):
    the caller runs the first item and the kernel pool the others, each on
    a thread of its own. One such group runs at a time, because two groups
    sharing the pool could each hold the threads that the other's waiting
    parts need. ``fn`` must not itself use the pool (the threads it would
    wait for may be the ones waiting for it), and a part that fails before
    it reaches its first barrier must tell the others (see
    :func:`deepkit_engine.ops.fused_cpu.lstm_steps`).

    Raises:
        ValueError: More items than :func:`pool_size` can run at once.
    """
    items = list(items)
    if len(items) > pool_size():
        raise ValueError(f"run_together: {len(items)} parts need as many threads, the kernel "
                         f"pool runs {pool_size()} here")
    with _together_lock:
        others = [_pool().submit(fn, item) for item in items[1:]]
        try:
            first = fn(items[0])
        finally:
            rest = [future.result() for future in others]
    return [first] + rest


_pause = {"function": None, "looked": False}


def pause_function():
    """The C library's ``sched_yield`` as a ctypes function (for compiled spin waits), or None."""
    if not _pause["looked"]:
        try:
            function = ctypes.CDLL(None).sched_yield
            function.restype, function.argtypes = ctypes.c_int, []
            _pause["function"] = function
        except (AttributeError, OSError, TypeError):
            _pause["function"] = None
        _pause["looked"] = True
    return _pause["function"]


#: Elementwise work on fewer elements than this runs inline (a hand-off costs more).
UNARY_MIN_SIZE = 1 << 17


def unary(xp, fn, x, out):
    """``fn(x, out=out)``, split into flat ranges on the kernel pool for large numpy arrays.

    For slow elementwise functions (``tanh``, ``exp``...); ``x`` and ``out`` must
    have the same shape. Non-contiguous or small arrays are done in one call.
    """
    workers = pool_size()
    if (xp is not np or workers < 2 or x.size < UNARY_MIN_SIZE or x.shape != out.shape
            or not (x.flags.c_contiguous and out.flags.c_contiguous)):
        fn(x, out=out)
        return
    xf, of = x.reshape(-1), out.reshape(-1)
    step = -(-x.size // workers)
    parallel_map(lambda i: fn(xf[i:i + step], out=of[i:i + step]), range(0, x.size, step))


#: Matrix products of at least this many multiply-adds split their rows over the pool.
MATMUL_MIN_WORK = 1 << 24

#: Products from this many multiply-adds up to :data:`MATMUL_MIN_WORK` run with
#: one BLAS thread per pool thread when no other such product is running and the
#: caller allows it (``matmul(..., wide=False)`` does not: executors running kernels
#: that use the pool themselves, see the ``blas_wide`` resource).
MATMUL_WIDE_MIN_WORK = 1 << 20

_wide = {"setter": None, "looked": False, "lock": threading.Lock()}


def _wide_matmul(a, b, out, threads_wanted):
    """``np.matmul`` with ``threads_wanted`` BLAS threads for this call, or False.

    The BLAS library's own threads hand work over in microseconds, where the
    kernel pool's Python threads take tens (a thread wake-up, then the GIL):
    for a product of a few million multiply-adds, the pool's hand-off costs
    what splitting saves, OpenBLAS's does not. One wide product runs at a
    time (a second one, from another worker, stays single-threaded), so the
    cores are never asked for more threads than they have.
    """
    if not _wide["looked"]:
        _wide["setter"], _wide["looked"] = _openblas_local_setter(), True
    setter = _wide["setter"]
    lock = _wide["lock"]
    if setter is None or not lock.acquire(blocking=False):
        return False
    try:
        previous = setter(threads_wanted)
        try:
            np.matmul(a, b, out=out)
        finally:
            setter(previous)
    finally:
        lock.release()
    return True


def matmul(xp, a, b, out=None, wide=True):
    """``xp.matmul(a, b, out=out)``, the rows of ``a`` split over the kernel pool.

    A product big enough to pay for the hand-off (:data:`MATMUL_MIN_WORK`
    multiply-adds) on numpy runs as blocks of rows (axis -2 of ``a`` and
    ``out``; leading axes broadcast as in ``matmul``), one single-threaded
    BLAS call per pool thread: the cores BLAS does not get (see the module
    docstring) still work on one large product. ``out`` None: a new array.
    ``wide`` False keeps medium products on one BLAS thread (see
    :func:`_wide_matmul` and the ``blas_wide`` resource).
    """
    workers = pool_size()
    if xp is not np or workers < 2 or a.ndim < 2 or b.ndim < 2:
        return xp.matmul(a, b, out=out)
    m = a.shape[-2]
    if a.ndim == 2 and b.ndim == 2:  # the common case, without broadcast_shapes' cost
        shape = (m, b.shape[1])
        work = m * b.shape[1] * a.shape[1]
    else:
        shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (m, b.shape[-1])
        work = math.prod(shape) * a.shape[-1]
    if work < MATMUL_MIN_WORK or m < 2 * workers or (
            out is not None and out.strides[-1] != out.itemsize):
        if wide and work >= MATMUL_WIDE_MIN_WORK and _state["blas"] == 1:
            if out is None:
                out = np.empty(shape, np.result_type(a, b))
            if _wide_matmul(a, b, out, workers):
                return out
        return xp.matmul(a, b, out=out)
    if out is None:
        out = np.empty(shape, np.result_type(a, b))
    step = -(-m // workers)
    parallel_map(lambda i: np.matmul(a[..., i:i + step, :], b, out=out[..., i:i + step, :]),
                 range(0, m, step))
    return out


# -- C (+)= A @ B.T straight through BLAS ----------------------------------------------------

_CBLAS_ROW_MAJOR, _CBLAS_NO_TRANS, _CBLAS_TRANS = 101, 111, 112
_gemm = {"looked": False, "functions": {}}


def _cblas_gemms():
    """``{dtype: (cblas_?gemm, int type)}`` from the OpenBLAS that numpy loaded, or ``{}``.

    numpy's wheels ship OpenBLAS with 64-bit integers and prefixed names
    (``scipy_cblas_sgemm64_``); a plain OpenBLAS has ``cblas_sgemm``.
    """
    for lib in _openblas_libraries():
        for suffix, int_type in (("64_", ctypes.c_int64), ("", ctypes.c_int)):
            for prefix in ("scipy_", ""):
                pair = [getattr(lib, f"{prefix}cblas_{kind}gemm{suffix}", None) for kind in "sd"]
                if all(fn is not None for fn in pair):
                    for fn, real in zip(pair, (ctypes.c_float, ctypes.c_double)):
                        fn.restype = None
                        fn.argtypes = ([ctypes.c_int] * 3 + [int_type] * 3
                                       + [real, ctypes.c_void_p, int_type, ctypes.c_void_p,
                                          int_type, real, ctypes.c_void_p, int_type])
                    return {np.dtype(np.float32): (pair[0], ctypes.c_float),
                            np.dtype(np.float64): (pair[1], ctypes.c_double)}
    return {}


def _gemm_entry(dtype):
    """``(cblas_?gemm, ctypes real type)`` for ``dtype``, looked up once, or None."""
    if not _gemm["looked"]:
        _gemm["functions"], _gemm["looked"] = _cblas_gemms(), True
    return _gemm["functions"].get(np.dtype(dtype))


def cblas_gemm(dtype):
    """``cblas_?gemm`` of the OpenBLAS numpy loaded, for ``dtype``, as a ctypes function.

    Its integer arguments have the library's width (64-bit in numpy's wheels).
    None when no such library or dtype is found: callers use numpy's matmul.
    """
    entry = _gemm_entry(dtype)
    return None if entry is None else entry[0]


def _row_stride(a):
    """Elements between rows of a 2-D array whose rows are contiguous, else None."""
    if a.ndim != 2 or (a.shape[1] > 1 and a.strides[1] != a.itemsize):
        return None
    if a.shape[0] > 1 and a.strides[0] % a.itemsize:
        return None
    return max(a.strides[0] // a.itemsize, a.shape[1], 1)


def gemm_nt(a, b, c, accumulate):
    """``c += a @ b.T`` (``accumulate``) or ``c[...] = a @ b.T``, with no temporary.

    BLAS's own ``C = A B^T + beta C`` through ctypes for float32/float64 arrays
    whose rows are contiguous; otherwise numpy with a temporary. Adding a
    product in place is what numpy's ``matmul`` cannot do, and what keeps
    sums of large partial products (a convolution's weight gradient over
    batch chunks) from allocating one partial per chunk.

    Args:
        a: (m, k) array.
        b: (n, k) array.
        c: (m, n) array, written.
        accumulate: Whether to add to ``c`` instead of overwriting it.
    """
    entry = _gemm_entry(c.dtype)
    strides = [_row_stride(x) for x in (a, b, c)]
    m, k = a.shape
    n = b.shape[0]
    if (entry is None or a.dtype != c.dtype or b.dtype != c.dtype or None in strides
            or not c.flags.writeable or min(m, n, k) == 0):
        if accumulate:
            c += a @ b.T
        else:
            np.matmul(a, b.T, out=c)
        return
    fn, real = entry
    fn(_CBLAS_ROW_MAJOR, _CBLAS_NO_TRANS, _CBLAS_TRANS, m, n, k, real(1.0),
       a.ctypes.data, strides[0], b.ctypes.data, strides[1], real(1.0 if accumulate else 0.0),
       c.ctypes.data, strides[2])
