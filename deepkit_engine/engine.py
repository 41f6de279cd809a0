"""The dependency engine: work is pushed with the variables it reads and writes.

Every array owns an engine :class:`Var`. ``push(fn, reads, writes)`` queues
``fn`` behind the earlier work on those variables: reads of one variable run
together, a write runs alone, and each variable sees its operations in push
order. The threaded engine runs ready work on worker threads (one pool per
device) so that Python returns at once; the naive engine runs everything at
push time, which is the mode for debugging.

An exception raised by pushed work is stored on the variables the work
writes. Work that reads such a variable (including work that updates it in
place) is skipped and inherits the exception, so the failure travels down the
dependency chain without running anything on garbage. It is raised (as
:class:`EngineError`, chained to the original traceback) at every wait on an
affected variable until work that only writes the variable (an overwrite:
``x[:] = value``, a copy into it) succeeds, and once by :func:`wait_all`;
the engine keeps working afterwards.

Threads: the threaded engine may be used from any number of threads. The
naive engine runs each pushed piece of work under one lock, so work pushed
from several threads never interleaves inside an op (no lost updates); a
read from one thread while another thread writes the same array is ordered
by that lock as well.

Tiny work that is ready at push time runs inline on the pushing thread: a
thread hand-off costs far more than adding ten numbers.

Run-ahead is bounded: a thread that has pushed :data:`RUN_AHEAD` operations
more than the workers have finished waits (briefly, without holding the
GIL) until half of them are done. A Python loop that runs far ahead takes the
GIL from the workers at every numpy call they return from, which made small
training steps slow and uneven; the bound keeps the queue full without that.

Bulk execution (:func:`bulk`, MXNet's ``engine.bulk``): inside ``with
bulk():`` the work one thread pushes for one device is gathered and pushed as
a single engine operation when the block ends, when it holds ``size``
pieces, when work for another device comes, or when the thread waits. A
training step's dozen small metric and update ops then cost one hand-off
instead of a dozen. Order is kept (the pieces run one after another, in push
order); a failing piece stops the rest, and its error reaches every variable
the bulk writes. Work pushed with ``gather=False`` (an executor's backward
segments) or to the communication worker is never gathered: the thread's
bulk is pushed first, then that work as an operation of its own.

Communication (:data:`COMM_WORKER`): work pushed with ``worker=COMM_WORKER``
runs on one dedicated thread of its own instead of the device's workers, so
a collective that waits for other processes (MPI releases the GIL while it
waits) never holds a compute worker, and runs beside the next compute work
(a gradient bucket's all-reduce beside the rest of the backward pass). Its
order against other work is the variables' as for any op. MPI libraries
wait by spinning, so on Linux the thread runs at a lower scheduling priority
(:data:`COMM_NICENESS`): where it shares a core with a compute worker (one
core per process), the compute keeps most of the core while it runs.
"""
import atexit
import collections
import os
import queue
import sys
import threading
import time

from . import threads
from .base import EngineError

__all__ = [
    "Var", "NaiveEngine", "ThreadedEngine", "get_engine", "set_engine", "push",
    "new_var", "wait_for_var", "wait_all", "engine_type", "bulk", "set_bulk_size",
    "COMM_WORKER",
]


#: The running profiler's recorder (deepkit_engine.profiler), or None: every op
#: checks it once, so profiling costs nothing while it is off.
_profiler = None
_clock = time.perf_counter

#: The ``worker`` of :func:`push` that names the communication thread.
COMM_WORKER = "comm"
#: How much the communication thread's scheduling priority is lowered (Linux ``nice``
#: steps, ``DEEPKIT_COMM_NICENESS``; 0 keeps it).
COMM_NICENESS = max(0, int(os.environ.get("DEEPKIT_COMM_NICENESS", "10")))


class Var:
    """An engine variable: the unit of dependency tracking (one per buffer)."""

    __slots__ = ("queue", "readers", "writing", "exc", "__weakref__")

    def __init__(self):
        self.queue = None      # deque of (opr, is_write) waiting for a grant
        self.readers = 0       # granted reads not yet completed
        self.writing = False   # a granted write not yet completed
        self.exc = None        # EngineError left by failed work that wrote here


class _Opr:
    __slots__ = ("fn", "reads", "writes", "ctx", "name", "wait", "exc", "no_skip", "inline",
                 "inputs", "pushed", "worker")

    def __init__(self, fn, reads, writes, ctx, name, no_skip, inline, inputs=None):
        self.fn = fn
        self.reads = reads
        self.inputs = reads if inputs is None else inputs  # reads before dropping the written
        self.writes = writes
        self.ctx = ctx
        self.name = name
        self.wait = 0
        self.exc = None
        self.no_skip = no_skip
        self.inline = inline
        self.pushed = _clock() if _profiler is not None else 0.0  # for the queue wait
        self.worker = None  # COMM_WORKER: runs on the communication thread


_in_work = threading.local()


#: Pending operations a pushing thread may run ahead of the workers
#: (``DEEPKIT_ENGINE_RUN_AHEAD``); past it, the thread waits until half are done.
RUN_AHEAD = max(2, int(os.environ.get("DEEPKIT_ENGINE_RUN_AHEAD", "64")))
#: The longest such a wait lasts, in seconds.
RUN_AHEAD_WAIT = 0.05


def _check_not_in_work(what):
    if getattr(_in_work, "depth", 0):
        raise EngineError(
            f"{what} was called from inside work pushed to the engine; waiting there "
            "would deadlock. Push the dependent work instead.")


def _dedupe(reads, writes):
    """Drop duplicate writes, and reads of variables that are also written."""
    if len(writes) == 1:
        w = writes[0]
        if w in reads:  # Var has no __eq__: this is an identity test
            reads = [v for v in reads if v is not w]
        return reads, writes
    written, unique = set(), []
    for v in writes:
        if v not in written:
            written.add(v)
            unique.append(v)
    return [v for v in reads if v not in written], unique


class _EngineBase:
    """What both engines share: exception bookkeeping and the run step."""

    kind = "base"

    def __init__(self):
        self._errors = []
        self._lock = threading.Lock()
        self._poisoned = 0  # variables that carry an exception right now

    def new_var(self):
        return Var()

    def _run(self, opr):
        """Run one granted op, or skip it if a variable it reads carries an exception."""
        if self._poisoned and not opr.no_skip:
            for v in opr.inputs:
                if v.exc is not None:
                    opr.exc = v.exc
                    return
        profiler = _profiler
        start = _clock() if profiler is not None else 0.0
        try:
            opr.fn()
        except BaseException as err:  # noqa: BLE001 - every failure must reach a wait
            opr.exc = _wrap(err, opr)
            with self._lock:
                self._errors.append(opr.exc)
        if profiler is not None:
            profiler.engine_op(opr, start, _clock())

    def _poison(self, var, exc):
        """Mark ``var`` as carrying ``exc`` (called with the lock held)."""
        if var.exc is None:
            self._poisoned += 1
        var.exc = exc

    def _settle(self, opr):
        """After ``opr``: poison its writes if it failed, else clear what it overwrote.

        Called with the lock held.
        """
        if opr.exc is not None:
            for v in opr.writes:
                self._poison(v, opr.exc)
            return
        if self._poisoned:
            for v in opr.writes:
                if v.exc is not None:
                    v.exc = None
                    self._poisoned -= 1

    def _raise_var_error(self, var):
        """Raise the exception ``var`` carries (every time, until it is overwritten)."""
        exc = var.exc
        if exc is not None:
            with self._lock:
                if self._errors:
                    self._errors = [e for e in self._errors if e is not exc]
            raise exc

    def _raise_global_errors(self):
        with self._lock:
            errors, self._errors = self._errors, []
        if errors:
            raise errors[0]


def _wrap(err, opr):
    if isinstance(err, EngineError):
        return err
    where = f" on {opr.ctx}" if opr.ctx is not None else ""
    wrapped = EngineError(f"{opr.name} failed{where}: {type(err).__name__}: {err}",
                          op_name=opr.name, original=err)
    wrapped.__cause__ = err
    return wrapped


class NaiveEngine(_EngineBase):
    """Runs every push at once on the calling thread (for debugging).

    Each push runs under one re-entrant lock, so several threads may push:
    their ops run one at a time, whole.
    """

    kind = "naive"

    def __init__(self):
        super().__init__()
        self._exec_lock = threading.RLock()

    def push(self, fn, reads=(), writes=(), ctx=None, name="op", inline=True, no_skip=False,
             gather=True, worker=None):
        inputs = reads
        reads, writes = _dedupe(reads, writes)
        opr = _Opr(fn, reads, writes, ctx, name, no_skip, True, inputs)
        with self._exec_lock:
            if ctx is not None and ctx.device_type == "gpu":
                with ctx.device_scope():
                    self._run(opr)
            else:
                self._run(opr)
            with self._lock:
                self._settle(opr)

    def wait_for_var(self, var):
        _check_not_in_work("wait_for_var")
        with self._exec_lock:  # a push from another thread finishes first
            pass
        self._raise_var_error(var)

    def wait_all(self):
        _check_not_in_work("wait_all")
        self._raise_global_errors()

    def shutdown(self):
        pass


class ThreadedEngine(_EngineBase):
    """Dependency-tracked execution on worker threads, one pool per device.

    Args:
        cpu_workers: Worker threads for ``cpu(0)`` (and work pushed without a
            context). Numpy releases the GIL in its kernels, so independent
            large ops overlap.
        gpu_workers: Worker threads per GPU, each with its own CUDA stream.
        cpu_device_workers: Worker threads for each other CPU device
            (``cpu(1)``, ``cpu(2)``, ...). Every CPU device has its own pool, so
            work on ``cpu(0)`` and ``cpu(1)`` runs in parallel as on two
            devices; one worker each keeps a few simulated devices from
            oversubscribing the cores.
    """

    kind = "threaded"

    def __init__(self, cpu_workers=2, gpu_workers=2, cpu_device_workers=1):
        super().__init__()
        self._cpu_workers = cpu_workers
        self._gpu_workers = gpu_workers
        self._cpu_device_workers = cpu_device_workers
        self._pending = 0
        self._waiters = 0  # threads blocked in wait_all/shutdown
        self._idle = threading.Condition(self._lock)
        self._queues = {}
        self._threads = []
        self._closed = False

    # -- pushing ---------------------------------------------------------
    def push(self, fn, reads=(), writes=(), ctx=None, name="op", inline=False, no_skip=False,
             gather=True, worker=None):
        """Queue ``fn()`` behind earlier work on ``reads`` and ``writes`` (or gather it in a bulk).

        Args:
            fn: Callable with no arguments.
            reads: Variables ``fn`` reads.
            writes: Variables ``fn`` writes (or reads and writes).
            ctx: The device whose workers run ``fn`` (CPU when ``None``).
            name: Shown in errors raised from ``fn``.
            inline: Allow running on the calling thread when ready at once
                (for tiny CPU work).
            no_skip: Run even when an input carries an exception.
            gather: Whether an enclosing :func:`bulk` may gather ``fn``; with
                False the thread's bulk is pushed first and ``fn`` as an
                operation of its own (so that later work can start as soon as
                ``fn`` is done).
            worker: None (the device's workers), or :data:`COMM_WORKER`: the
                communication thread (never gathered, never inline).
        """
        if worker is not None and worker != COMM_WORKER:
            raise ValueError(f"engine.push: worker must be None or {COMM_WORKER!r}, got "
                             f"{worker!r}")
        gathered = getattr(_bulk_state, "pieces", None)
        if gathered is not None:
            owner = _bulk_state.owner
            if owner is not None and owner is not self:
                owner.flush_bulk()
                gathered = _bulk_state.pieces
            if gather and worker is None and not no_skip and _profiler is None:
                if gathered and gathered[0][3] is not ctx and _device_key(gathered[0][3]) \
                        != _device_key(ctx):
                    self.flush_bulk()
                    gathered = _bulk_state.pieces
                _bulk_state.owner = self
                gathered.append((fn, reads, writes, ctx, name))
                if len(gathered) >= _bulk_state.size:
                    self.flush_bulk()
                return
            self.flush_bulk()
        self._push(fn, reads, writes, ctx, name, inline and worker is None, no_skip, worker)

    def flush_bulk(self):
        """Push what this thread's :func:`bulk` gathered, as one operation."""
        pieces = getattr(_bulk_state, "pieces", None)
        if not pieces or _bulk_state.owner is not self:
            return
        _bulk_state.pieces, _bulk_state.owner = [], None
        if len(pieces) == 1:
            fn, reads, writes, ctx, name = pieces[0]
            self._push(fn, reads, writes, ctx, name, False, False)
            return
        reads = [v for _, r, _, _, _ in pieces for v in r]
        writes = [v for _, _, w, _, _ in pieces for v in w]

        def run_all():
            for fn, _, _, ctx, name in pieces:
                try:
                    fn()
                except BaseException as err:  # noqa: BLE001 - name the piece that failed
                    raise _wrap(err, _Opr(fn, (), (), ctx, name, False, False)) from err
        names = ", ".join(dict.fromkeys(p[4] for p in pieces))
        self._push(run_all, reads, writes, pieces[0][3], f"bulk of {len(pieces)} ({names})",
                   False, False)

    def _push(self, fn, reads, writes, ctx, name, inline, no_skip, worker=None):
        if self._pending > RUN_AHEAD and not getattr(_in_work, "depth", 0):
            self._throttle()
        inputs = reads
        if writes and reads or len(writes) > 1:
            reads, writes = _dedupe(reads, writes)
        opr = _Opr(fn, reads, writes, ctx, name, no_skip, inline, inputs)
        opr.worker = worker
        wait = 0
        with self._lock:
            self._pending += 1
            for v in reads:
                if v.writing or v.queue:
                    if v.queue is None:
                        v.queue = collections.deque()
                    v.queue.append((opr, False))
                    wait += 1
                else:
                    v.readers += 1
            for v in writes:
                if v.writing or v.readers or v.queue:
                    if v.queue is None:
                        v.queue = collections.deque()
                    v.queue.append((opr, True))
                    wait += 1
                else:
                    v.writing = True
            opr.wait = wait
        if wait == 0:
            if inline and (ctx is None or ctx.device_type != "gpu"):
                self._run(opr)
                self._complete(opr)
            else:
                self._dispatch(opr)

    def _throttle(self):
        """Let the workers catch up: wait until half of :data:`RUN_AHEAD` is left.

        The wait is bounded (:data:`RUN_AHEAD_WAIT` seconds), so work that can
        only finish after later pushes (a collective between devices) is
        slowed, never deadlocked.
        """
        deadline = time.monotonic() + RUN_AHEAD_WAIT
        with self._lock:
            self._waiters += 1
            try:
                while self._pending > RUN_AHEAD // 2:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._idle.wait(left)
            finally:
                self._waiters -= 1

    def _dispatch(self, opr):
        ctx = opr.ctx
        if opr.worker is not None:
            key = (opr.worker, 0)
        elif ctx is None:
            key = ("cpu", 0)
        else:
            key = ("gpu" if ctx.device_type == "gpu" else "cpu", ctx.device_id)
        q = self._queues.get(key)
        if q is None:
            q = self._start_workers(key, ctx)
        q.put(opr)

    def _start_workers(self, key, ctx):
        with self._lock:
            q = self._queues.get(key)
            if q is not None:
                return q
            q = queue.SimpleQueue()
            if key[0] == COMM_WORKER:
                count, ctx = 1, None
            elif key[0] == "gpu":
                count = self._gpu_workers
            else:
                count = self._cpu_workers if key[1] == 0 else self._cpu_device_workers
            target = self._comm_worker if key[0] == COMM_WORKER else self._worker
            for i in range(count):
                t = threading.Thread(target=target, args=(q, ctx if key[0] == "gpu" else None),
                                     name=f"deepkit-engine-{key[0]}{key[1]}-{i}", daemon=True)
                t.start()
                self._threads.append(t)
            self._queues[key] = q
            return q

    def _comm_worker(self, q, gpu_ctx):
        """The communication thread: a worker at a lower priority (see :data:`COMM_NICENESS`)."""
        if COMM_NICENESS and sys.platform.startswith("linux"):
            try:  # on Linux the "process" of setpriority is this thread
                tid = threading.get_native_id()
                os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid)
                               + COMM_NICENESS)
            except OSError:
                pass
        self._worker(q, gpu_ctx)

    def _worker(self, q, gpu_ctx):
        _in_work.depth = 1  # waiting from inside pushed work would deadlock
        stream = None
        if gpu_ctx is not None:
            cupy = gpu_ctx.xp
            with gpu_ctx.device_scope():
                stream = cupy.cuda.Stream(non_blocking=True)
        while True:
            opr = q.get()
            if opr is None:
                return
            if stream is None:
                self._run(opr)
            else:
                with gpu_ctx.device_scope(), stream:
                    self._run(opr)
                    stream.synchronize()
            self._complete(opr)

    def _complete(self, opr):
        ready = None
        with self._lock:
            for v in opr.reads:
                v.readers -= 1
                if v.readers == 0 and v.queue:
                    ready = _grant(v, ready)
            self._settle(opr)
            for v in opr.writes:
                v.writing = False
                if v.queue:
                    ready = _grant(v, ready)
            self._pending -= 1
            if self._waiters and (self._pending == 0 or self._pending == RUN_AHEAD // 2):
                self._idle.notify_all()
        if ready:
            for o in ready:
                self._dispatch(o)

    # -- waiting -----------------------------------------------------------
    def wait_for_var(self, var):
        """Block until all work that writes ``var`` is done; raise its error once."""
        _check_not_in_work("wait_for_var")
        self.flush_bulk()
        if var.writing or var.queue:
            done = threading.Event()
            self.push(done.set, reads=(var,), writes=(), name="wait_for_var", no_skip=True)
            done.wait()
        self._raise_var_error(var)

    def wait_for_write(self, var):
        """Block until all work that reads or writes ``var`` is done."""
        _check_not_in_work("wait_for_write")
        self.flush_bulk()
        if var.writing or var.readers or var.queue:
            done = threading.Event()
            self.push(done.set, reads=(), writes=(var,), name="wait_for_write", no_skip=True)
            done.wait()
        self._raise_var_error(var)

    def wait_all(self):
        """Block until every pushed op has finished; raise the first error once."""
        _check_not_in_work("wait_all")
        self.flush_bulk()
        self._wait_idle()
        self._raise_global_errors()

    def _wait_idle(self):
        with self._lock:
            self._waiters += 1
            try:
                while self._pending:
                    self._idle.wait()
            finally:
                self._waiters -= 1

    def shutdown(self):
        """Finish pending work and stop the workers (used at exit and on switch)."""
        self._wait_idle()
        with self._lock:
            queues = list(self._queues.values())
            self._queues = {}
        for q in queues:
            for _ in range(max(self._cpu_workers, self._gpu_workers, self._cpu_device_workers)):
                q.put(None)


def _grant(var, ready):
    """Grant queued ops on ``var`` in order; collect those that became ready."""
    q = var.queue
    while q:
        opr, is_write = q[0]
        if is_write:
            if var.readers == 0 and not var.writing:
                q.popleft()
                var.writing = True
                opr.wait -= 1
                if opr.wait == 0:
                    ready = ready or []
                    ready.append(opr)
            break
        q.popleft()
        var.readers += 1
        opr.wait -= 1
        if opr.wait == 0:
            ready = ready or []
            ready.append(opr)
    return ready


def _make_engine(kind):
    if kind == "naive":
        threads.configure(1)
        return NaiveEngine()
    if kind == "threaded":
        workers = max(1, int(os.environ.get("DEEPKIT_CPU_WORKERS", "2")))
        threads.configure(workers)  # BLAS threads and kernel pool for this many workers
        return ThreadedEngine(cpu_workers=workers)
    raise ValueError(f"DEEPKIT_ENGINE must be 'threaded' or 'naive', got {kind!r}")


_engine = _make_engine(os.environ.get("DEEPKIT_ENGINE", "threaded").strip().lower() or "threaded")


def get_engine():
    """The engine in use."""
    return _engine


def engine_type():
    """``'threaded'`` or ``'naive'``."""
    return _engine.kind


def set_engine(kind):
    """Switch engines ('threaded' or 'naive'); pending work finishes first.

    Returns the previous kind, so tests can restore it.
    """
    global _engine
    old = _engine
    new = _make_engine(kind)
    try:
        old.wait_all()
    finally:
        old.shutdown()
        _engine = new
    return old.kind


def new_var():
    return _engine.new_var()


_bulk_state = threading.local()
_default_bulk_size = [64]


def _device_key(ctx):
    if ctx is None:
        return ("cpu", 0)
    return ("gpu" if ctx.device_type == "gpu" else "cpu", ctx.device_id)


class bulk:  # noqa: N801 - a context manager named as MXNet's engine.bulk
    """Gather the work this thread pushes into few engine operations (MXNet's ``engine.bulk``).

    Inside the block, work for one device is gathered and pushed as one
    operation when the block ends, every ``size`` pieces, when work for
    another device comes, or before any wait (``asnumpy``, ``wait_all``), so
    nothing waits on work that was never pushed. Blocks nest; the outermost
    one pushes. The naive engine runs work at once and ignores it.

    Args:
        size: The most pieces per gathered operation (default 64, see
            :func:`set_bulk_size`); 0 or 1 gathers nothing (an enclosing bulk
            still does).
    """

    def __init__(self, size=None):
        self.size = _default_bulk_size[0] if size is None else int(size)
        self._outer = None

    def __enter__(self):
        state = _bulk_state
        self._outer = (getattr(state, "pieces", None), getattr(state, "size", None))
        if self.size > 1:
            if state.__dict__.get("pieces") is None:
                state.pieces, state.owner = [], None
            state.size = self.size if self._outer[1] is None else min(self.size, self._outer[1])
        return self

    def __exit__(self, *exc):
        state = _bulk_state
        outer_pieces, outer_size = self._outer
        if outer_pieces is None and getattr(state, "pieces", None) is not None:
            try:
                if state.owner is not None:
                    state.owner.flush_bulk()
            finally:
                state.pieces = state.owner = state.size = None
        elif outer_size is not None:
            state.size = outer_size
        return False


def set_bulk_size(size):
    """Set the default number of pieces per bulk; returns the previous one (as MXNet)."""
    previous = _default_bulk_size[0]
    _default_bulk_size[0] = int(size)
    return previous


def push(fn, reads=(), writes=(), ctx=None, name="op", inline=False, no_skip=False,
         gather=True, worker=None):
    """Push ``fn`` to the current engine; see :meth:`ThreadedEngine.push`."""
    _engine.push(fn, reads, writes, ctx, name, inline, no_skip, gather, worker)


def wait_for_var(var):
    _engine.wait_for_var(var)


def wait_for_write(var):
    """Wait until nothing reads or writes ``var`` any more (before mutating it in place)."""
    if isinstance(_engine, ThreadedEngine):
        _engine.wait_for_write(var)
    else:
        _engine.wait_for_var(var)


def wait_all():
    _engine.wait_all()


@atexit.register
def _finish_at_exit():
    try:
        _engine.shutdown()
    except Exception:  # noqa: BLE001 - never block interpreter exit
        pass
