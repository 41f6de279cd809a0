"""MXNet's KVStore: sum values pushed from several devices (and processes), keep the result.

``create('local')`` gives a store that data-parallel training uses like
MXNet's: each parameter is a key; every device pushes its gradient, the store
sums them (and, with an optimizer set, updates the stored weight with the
sum); every device pulls the result::

    kv = create('device')
    kv.init(3, nd.zeros((2, 3)))
    kv.push(3, [grad_on_cpu0, grad_on_cpu1])       # summed
    kv.pull(3, out=[w_on_cpu0, w_on_cpu1])         # the sum (or updated weight) on each

Types:

* ``'local'``: values are summed on the CPU (device values are copied to
  ``cpu(0)`` first); the stored value lives on ``cpu(0)``.
* ``'device'`` (alias ``'nccl'``): values are summed on the device of the
  first value; with an optimizer the stored weight moves to that device, as
  in MXNet. Values on several GPUs are summed by one NCCL reduce
  (``cupy.cuda.nccl``, one communicator per set of GPUs) where cupy has
  NCCL; otherwise, and for CPU devices, by device-to-device copies into a
  staging buffer and sums.
* ``'dist_sync'`` / ``'dist_sync_device'`` (alias ``'dist_device_sync'``):
  as ``'local'`` / ``'device'``, then the per-process sum is all-reduced
  (summed) over all MPI ranks (:mod:`deepkit_engine.dist`), so every rank
  ends with the same value. ``init`` takes rank 0's value on every rank.
  An optimizer set with :meth:`KVStore.set_optimizer` runs on every rank
  with the same summed gradient and the same state, which gives what
  MXNet's parameter server gives for synchronous training.
* ``'dist_async'``: MXNet's asynchronous parameter server. The server runs
  as a thread of rank 0 (:mod:`deepkit_engine.dist.param_server`) and holds
  the values; ``init`` stores rank 0's value there, then waits for every
  rank. ``push`` sums the process's values (as ``'local'``) and sends the
  sum; the server applies the optimizer to it at once, without waiting for
  the other ranks, so an optimizer must be set (:meth:`KVStore.set_optimizer`,
  on every rank; rank 0's is applied) before the first push. ``pull`` gives
  the server's current value, which includes this rank's earlier pushes (and
  whatever the other ranks pushed so far). The optimizer states live on the
  server: only rank 0 saves and loads them. Each rank closes the store at
  exit (or with :meth:`KVStore.close`); the server serves until all have.
  It needs MPI at ``THREAD_MULTIPLE`` and the threaded engine.

Everything is pushed to the dependency engine: ``push`` and ``pull`` return
at once and the engine's read/write variables order the sums, the updates,
the copies and the MPI collectives (which run in push order, one at a time,
so every rank issues them in the same order). ``priority`` is accepted and
ignored. Keys are ints or strings, all of one kind per store (MXNet's rule).
"""
import atexit
import contextlib
import json
import numbers

import numpy as np

from . import dist
from . import engine as _engine
from . import ndarray as nd
from .base import DeepkitError, DTypeError, FileFormatError, ShapeError, did_you_mean
from .context import cpu
from .fileio import atomic_path
from .dist import param_server
from .ndarray import NDArray
from .ndarray.ndarray import INLINE_MAX_SIZE

__all__ = ["KVStore", "create", "KVSTORE_TYPES"]

#: The type names :func:`create` knows.
KVSTORE_TYPES = ("local", "device", "nccl", "dist_sync", "dist_sync_device", "dist_device_sync",
                 "dist_async")

_STATES_FORMAT = "deepkit-kvstore-optimizer-states"



def create(name="local"):
    """A new :class:`KVStore` of type ``name`` (see the module docstring for the types).

    Raises:
        ValueError: An unknown type.
        deepkit_engine.dist.DistUnavailableError: A ``dist_*`` type without
            mpi4py (``pip install 'deepkit[dist]'``).
        deepkit_engine.dist.DistributedError: ``'dist_async'`` where MPI does
            not run at ``THREAD_MULTIPLE`` (the server is a thread).
    """
    if not isinstance(name, str):
        raise TypeError(f"kvstore.create: name must be a string such as 'local', got "
                        f"{type(name).__name__}")
    return KVStore(name)


class KVStore:
    """A key-value store that sums pushed values over devices (and MPI ranks).

    Args:
        kv_type: ``'local'``, ``'device'``, ``'nccl'``, ``'dist_sync'``,
            ``'dist_sync_device'`` or ``'dist_async'`` (see the module docstring).
    """

    def __init__(self, kv_type="local"):
        if kv_type not in KVSTORE_TYPES:
            raise ValueError(f"kvstore.create: unknown type {kv_type!r}"
                             f"{did_you_mean(kv_type, KVSTORE_TYPES)}; expected one of "
                             f"{', '.join(repr(t) for t in KVSTORE_TYPES)}")
        self._type = kv_type
        self._dist = kv_type.startswith("dist")
        self._async = kv_type == "dist_async"
        self._on_device = kv_type in ("device", "nccl", "dist_sync_device", "dist_device_sync")
        if self._dist:
            try:
                dist.init()
            except dist.DistUnavailableError as err:
                raise dist.DistUnavailableError(
                    f"kvstore.create({kv_type!r}) needs MPI: {err}") from err
        self._store = {}     # key -> NDArray holding the stored value
        self._merge = {}     # key -> NDArray where pushed values are summed
        self._staging = {}   # key -> raw buffer on the merge device for values from elsewhere
        self._key_type = None
        self._updater = None
        self._server = None  # dist_async: the server thread (rank 0)
        self._client = None  # dist_async: this rank's link to the server
        self._pulled = {}    # dist_async: key -> NDArray on cpu(0) that a pull receives into
        self._closed = False
        if self._async:
            self._start_async()

    def _start_async(self):
        """dist_async: a communicator of the store's own, the server thread on rank 0, a client."""
        what = "kvstore.create('dist_async')"
        if _engine.engine_type() == "naive":
            raise DeepkitError(f"{what}: needs the threaded engine (DEEPKIT_ENGINE=threaded, the "
                               "default): the parameter server thread of rank 0 runs its updates "
                               "on the engine while this rank waits for them, and the naive "
                               "engine runs all work under one lock")
        param_server.require_thread_multiple(what)
        # duplicating the communicator is a collective: after the ones already queued
        _engine.wait_for_var(dist.collective_var())
        comm = param_server.duplicate_communicator(what)
        label = "kvstore 'dist_async'"
        if comm.Get_rank() == param_server.SERVER_RANK:
            self._server = param_server.ParamServer(comm, label)
        self._client = param_server.ServerClient(comm, label)
        self._comm = comm
        atexit.register(self.close)

    # -- properties ----------------------------------------------------------------------------
    @property
    def type(self):
        """The type this store was created with (``'local'``, ``'dist_sync'``, ...)."""
        return self._type

    @property
    def rank(self):
        """This process's rank among the workers (0 unless ``dist_*``)."""
        return dist.rank() if self._dist else 0

    @property
    def num_workers(self):
        """The number of worker processes (1 unless ``dist_*``)."""
        return dist.size() if self._dist else 1

    def is_capable(self, capability):
        """MXNet's capability query: only ``'optimizer'`` is known (and supported)."""
        if str(capability).lower() == "optimizer":
            return True
        raise ValueError(f"kvstore.is_capable: unknown capability {capability!r}; "
                         "known: 'optimizer'")

    # -- keys and values -------------------------------------------------------------------------
    def _pairs(self, op, key, value, arg="value"):
        """``[(key, [NDArray, ...])]`` from MXNet's key/value forms, keys checked."""
        if isinstance(key, (list, tuple)):
            if not isinstance(value, (list, tuple)) or len(value) != len(key):
                got = f"{len(value)} values" if isinstance(value, (list, tuple)) \
                    else type(value).__name__
                raise ValueError(f"kvstore.{op}: {len(key)} keys need a list of {len(key)} "
                                 f"{arg}s (one NDArray or one list of NDArrays per key), got {got}")
            pairs = [(self._check_key(op, k), self._values(op, k, v, arg))
                     for k, v in zip(key, value)]
        else:
            pairs = [(self._check_key(op, key), self._values(op, key, value, arg))]
        kinds = {type(k) for k, _ in pairs}
        if len(kinds) > 1:
            raise TypeError(f"kvstore.{op}: keys must be all int or all str within a store "
                            f"(MXNet's rule), got {_describe_keys(pairs)}")
        kind = kinds.pop() if kinds else None
        if kind is not None and self._key_type is not None and kind is not self._key_type:
            raise TypeError(f"kvstore.{op}: this store holds {self._key_type.__name__} keys; keys "
                            f"must be all int or all str within a store (MXNet's rule), got "
                            f"{_describe_keys(pairs)}")
        grouped = {}
        for k, values in pairs:  # a key given twice: its values are summed together
            grouped.setdefault(k, []).extend(values)
        return list(grouped.items())

    @staticmethod
    def _check_key(op, key):
        if isinstance(key, (bool, np.bool_)) or not isinstance(key, (numbers.Integral, str)):
            raise TypeError(f"kvstore.{op}: a key must be an int or a str, got "
                            f"{type(key).__name__} {key!r}")
        return key if isinstance(key, str) else int(key)

    @staticmethod
    def _values(op, key, value, arg):
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if not values:
            raise ValueError(f"kvstore.{op}: key {key!r} got an empty list of {arg}s")
        for v in values:
            if not isinstance(v, NDArray):
                raise TypeError(f"kvstore.{op}: the {arg} for key {key!r} must be an NDArray or "
                                f"a list of NDArrays, got {type(v).__name__}")
        return values

    def _stored(self, op, key):
        stored = self._store.get(key)
        if stored is None:
            raise KeyError(f"kvstore.{op}: key {key!r} was not initialised; call "
                           f"init({key!r}, value) first{did_you_mean(key, list(self._store))}")
        return stored

    @staticmethod
    def _check_shape(op, key, stored, arrays, arg):
        for a in arrays:
            if a.shape != stored.shape:
                raise ShapeError(f"kvstore.{op}: the {arg} for key {key!r} has shape {a.shape}, "
                                 f"expected {stored.shape} (the shape given to init)",
                                 op=f"kvstore.{op}", argument=str(key), expected=stored.shape,
                                 actual=a.shape)

    # -- init, push, pull ----------------------------------------------------------------------
    def init(self, key, value):
        """Initialise one key or a list of keys with their values (once per key).

        With a list of values for one key the first is used. Under ``dist_*``
        every rank must call ``init`` for the same keys in the same order, and
        all ranks get rank 0's value.
        """
        pairs = self._pairs("init", key, value)
        for k, _ in pairs:
            if k in self._store:
                raise ValueError(f"kvstore.init: duplicate init of key {k!r}")
        for k, values in pairs:
            source = values[0]
            ctx = source.ctx if self._on_device else cpu(0)
            stored = source.copyto(ctx)
            if self._dist and not self._async:
                self._push_collective("broadcast", [stored])
            self._store[k] = stored
            if self._key_type is None:
                self._key_type = type(k)
        if self._async:
            # rank 0's values go to the server; then every rank waits for the others
            if self._server is not None:
                inits = [(k, self._store[k]) for k, _ in pairs]
                client = self._client

                def send():
                    for k, stored in inits:
                        client.init(k, stored._data)
                self._push_async(send, [s for _, s in inits], [],
                                 f"kvstore 'dist_async' init of {_describe_keys(pairs)}")
            self._push_async(dist.barrier, [], [], "kvstore 'dist_async' barrier after init")

    def push(self, key, value, priority=0):
        """Push values: those of one key are summed (over devices, and ranks for ``dist_*``).

        Without an updater the stored value becomes the sum; with one
        (:meth:`set_optimizer`, :meth:`set_updater`) the updater updates the
        stored value with the sum. Returns at once. ``dist_async``: this
        process's sum goes to the parameter server, which applies the
        updater to it at once (an updater is required).

        Args:
            key: A key or a list of keys.
            value: An NDArray or a list of NDArrays (one per device) per key.
            priority: Accepted for compatibility; ignored.
        """
        pairs = self._pairs("push", key, value)
        for k, values in pairs:
            stored = self._stored("push", k)
            self._check_shape("push", k, stored, values, "value")
            for v in values:
                if v.dtype != stored.dtype:
                    raise DTypeError(f"kvstore.push: the value for key {k!r} has dtype {v.dtype}, "
                                     f"expected {stored.dtype} (the dtype given to init)",
                                     op="kvstore.push", argument=str(k), expected=stored.dtype,
                                     actual=v.dtype)
        if self._async:
            self._push_async_values(pairs)
            return
        merged = [(k, self._reduce(k, values)) for k, values in pairs]
        if self._dist:
            self._push_collective("allreduce", [m for _, m in merged])
        for k, m in merged:
            stored = self._store[k]
            if self._updater is None:
                m.copyto(stored)
                continue
            if self._on_device and stored.ctx != m.ctx:
                stored = self._store[k] = stored.copyto(m.ctx)
            self._updater(k, m, stored)

    def pull(self, key, out=None, priority=0, ignore_sparse=True):
        """Copy the stored values into ``out`` (an NDArray or a list per key). Returns at once.

        Args:
            key: A key or a list of keys.
            out: An NDArray or a list of NDArrays (e.g. one per device) per key.
            priority: Accepted for compatibility; ignored.
            ignore_sparse: Accepted for compatibility (arrays here are dense).
        """
        if out is None:
            raise ValueError("kvstore.pull: out is required (the NDArrays to copy the values into)")
        pairs = self._pairs("pull", key, out, arg="out")
        for k, outs in pairs:
            self._check_shape("pull", k, self._stored("pull", k), outs, "out")
        if self._async:
            self._pull_async(pairs)
            return
        for k, outs in pairs:
            stored = self._store[k]
            for o in outs:
                stored.copyto(o)

    def pushpull(self, key, value, out=None, priority=0):
        """:meth:`push` then :meth:`pull` (into ``value`` itself when ``out`` is None).

        ``pushpull(keys, [[g_dev0, g_dev1], ...], out=[[w_dev0, w_dev1], ...])``
        is the data-parallel step: each key's per-device values are summed
        (over ranks too for ``dist_*``) and the result lands on every device.
        """
        self.push(key, value, priority)
        self.pull(key, value if out is None else out, priority)

    def broadcast(self, key, value, out, priority=0):
        """Initialise ``key`` with ``value`` (rank 0's under ``dist_*``), then pull it into ``out``.

        As in MXNet, a key can be broadcast once (it is initialised here).
        """
        self.init(key, value)
        self.pull(key, out, priority)

    # -- updaters ------------------------------------------------------------------------------
    def set_optimizer(self, optimizer):
        """Apply ``optimizer`` in the store: after a push, weight = update(weight, summed grad).

        Args:
            optimizer: Any object with MXNet's ``create_state(index, weight)``
                and ``update(index, weight, grad, state)`` (``mx.optimizer``
                classes have them). Its states are kept per key here and can be
                saved with :meth:`save_optimizer_states`. Under ``dist_sync*``
                every rank runs it on the same all-reduced gradient. Under
                ``dist_async`` every rank calls this (it waits for all ranks);
                rank 0's optimizer is the one the server applies, and its
                states live there.
        """
        for method in ("create_state", "update"):
            if not callable(getattr(optimizer, method, None)):
                raise TypeError(f"kvstore.set_optimizer: the optimizer must have MXNet's "
                                f"create_state(index, weight) and update(index, weight, grad, "
                                f"state); {type(optimizer).__name__} has no {method}()")
        self._updater = _OptimizerUpdater(optimizer)
        if self._async:
            self._install_on_server(self._updater)

    def set_updater(self, updater):
        """Set ``updater(key, summed_value, stored)``, which updates ``stored`` in place on push."""
        if not callable(updater):
            raise TypeError(f"kvstore.set_updater: the updater must be callable(key, value, "
                            f"stored), got {type(updater).__name__}")
        self._updater = updater
        if self._async:
            self._install_on_server(updater)

    _set_updater = set_updater

    @property
    def updater(self):
        """The updater applied on push, or None."""
        return self._updater

    def barrier(self):
        """Wait for every rank (``dist_*``; after the work already pushed), else return."""
        if not self._dist:
            return
        _engine.push(dist.barrier, (), (dist.collective_var(),), None, "kvstore barrier")
        _engine.wait_for_var(dist.collective_var())

    _barrier = barrier

    def close(self):
        """``dist_async``: tell the server this rank is done; rank 0 waits until every rank is.

        Runs by itself at exit (an ``atexit`` hook), so scripts need not call
        it; after it the store cannot push or pull. Work already pushed
        finishes first. Other types: nothing to do.
        """
        if not self._async or self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        failure = None
        try:
            _engine.get_engine().wait_all()
        except Exception as err:  # noqa: BLE001 - raised once the server knows we are done
            failure = err
        self._client.close()
        if self._server is not None:
            param_server.wait_for_workers(self._server, self._comm, "kvstore 'dist_async'")
        if failure is not None:
            raise failure

    # -- dist_async: requests to the parameter server, on the engine ----------------------------
    def _check_open(self, op):
        if self._closed:
            raise ValueError(f"kvstore.{op}: this 'dist_async' store was closed")

    def _push_async(self, fn, reads, writes, name):
        """Run ``fn`` on the communication thread, in push order with this rank's collectives."""
        _engine.push(fn, [a._var for a in reads], [a._var for a in writes]
                     + [dist.collective_var()], None, name, worker=_engine.COMM_WORKER)

    def _push_async_values(self, pairs):
        """Sum each key's values here, then send the sums to the server (it applies them)."""
        self._check_open("push")
        if self._updater is None:
            keys = [k for k, _ in pairs]
            raise ValueError(f"kvstore.push: a 'dist_async' store applies each push on the "
                             f"parameter server with its optimizer, and none is set (key "
                             f"{keys[0]!r}); call kv.set_optimizer(optimizer) on every rank "
                             f"before pushing (MXNet: 'Updater needs to be set for async mode')")
        merged = [(k, self._reduce(k, values)) for k, values in pairs]
        client = self._client
        sends = [(k, m._data) for k, m in merged]

        def send():
            for k, data in sends:
                client.push(k, data)
        self._push_async(send, [m for _, m in merged], [],
                         f"kvstore 'dist_async' push of {_describe_keys(pairs)}")

    def _pull_async(self, pairs):
        """Receive each key's value from the server, then copy it into the ``out`` arrays."""
        self._check_open("pull")
        buffers = []
        for k, _ in pairs:
            stored = self._store[k]
            buffer = self._pulled.get(k)
            if buffer is None:
                buffer = self._pulled[k] = nd.empty(stored.shape, ctx=cpu(0), dtype=stored.dtype)
            buffers.append((k, buffer))
        client = self._client
        targets = [(k, b._data) for k, b in buffers]

        def receive():
            for k, target in targets:
                value = client.pull(k)
                if value.shape != target.shape:
                    raise ShapeError(f"kvstore.pull: the server holds key {k!r} with shape "
                                     f"{value.shape}, this rank initialised it with "
                                     f"{target.shape}", op="kvstore.pull", argument=str(k),
                                     expected=target.shape, actual=value.shape)
                target[...] = value
        self._push_async(receive, [], [b for _, b in buffers],
                         f"kvstore 'dist_async' pull of {_describe_keys(pairs)}")
        for (k, buffer), (_, outs) in zip(buffers, pairs):
            for o in outs:
                buffer.copyto(o)

    def _install_on_server(self, updater):
        """Rank 0 gives ``updater`` to its server (in push order); then all ranks meet."""
        self._check_open("set_optimizer")
        server = self._server
        if server is not None:
            self._push_async(lambda: server.set_updater(updater), [], [],
                             "kvstore 'dist_async' set_optimizer")
        self._push_async(dist.barrier, [], [], "kvstore 'dist_async' barrier after set_optimizer")

    def _server_states(self, op):
        """The lock to hold while reading or writing optimizer states (rank 0 of dist_async)."""
        if not self._async:
            return contextlib.nullcontext()
        if self._server is None:
            raise ValueError(f"kvstore.{op}: in a 'dist_async' store the optimizer states live "
                             f"on the parameter server, a thread of rank "
                             f"{param_server.SERVER_RANK}; only rank {param_server.SERVER_RANK} "
                             f"can save or load them (this is rank {self.rank})")
        # the updates this rank pushed reach the server first
        _engine.wait_for_var(dist.collective_var())
        return self._server.lock

    # -- the work pushed to the engine --------------------------------------------------------
    def _reduce(self, key, values):
        """Sum ``values`` into the key's merge buffer (pushed to the engine); return the buffer."""
        ctx = values[0].ctx if self._on_device else cpu(0)
        stored = self._store[key]
        merged = self._merge.get(key)
        if merged is None or merged.ctx != ctx:
            merged = self._merge[key] = nd.empty(stored.shape, ctx=ctx, dtype=stored.dtype)
            self._staging.pop(key, None)
        staging = None
        if any(v.ctx != ctx for v in values):
            staging = self._staging.get(key)
            if staging is None:
                with ctx.device_scope():
                    staging = self._staging[key] = ctx.xp.empty(stored.shape, stored.dtype)
        sources = [v._data for v in values]
        target = merged._data
        reduce = _nccl_reducer(sources, target) if self._on_device else None
        if reduce is None:
            def reduce():
                _reduce_raw(sources, target, staging)
        _engine.push(reduce, [v._var for v in values], [merged._var], ctx,
                     f"kvstore reduce of key {key!r}", target.size <= INLINE_MAX_SIZE)
        return merged

    def _push_collective(self, kind, arrays):
        """All-reduce (sum) or broadcast from rank 0 ``arrays`` over the ranks, on the engine."""
        buffers = [a._data for a in arrays]
        ctx = next((a.ctx for a in arrays if a.ctx.is_gpu), None)
        if kind == "allreduce":
            def run():
                dist.allreduce_many(buffers).wait()
        else:
            def run():
                for b in buffers:
                    dist.broadcast_(b, root=0)
        variables = [a._var for a in arrays]
        # writing the collective variable keeps all collectives in push order
        _engine.push(run, variables, variables + [dist.collective_var()], ctx,
                     f"kvstore {kind} over MPI ranks")

    # -- optimizer states ----------------------------------------------------------------------
    def save_optimizer_states(self, fname, dump_optimizer=False):
        """Write the optimizer states to ``fname`` (an ``.npz`` archive of plain arrays, no pickle).

        ``dist_async``: the states live on the parameter server, so only rank
        0 can save them (after the updates it pushed; other ranks' pushes
        are in as far as the server has received them).

        Args:
            fname: The file (written atomically).
            dump_optimizer: Also record the optimizer's class and ``get_config()``
                (for reading; loading keeps the optimizer set in this store).
        """
        updater = self._updater
        if updater is None:
            raise ValueError("kvstore.save_optimizer_states: no optimizer is set; call "
                             "set_optimizer first")
        with self._server_states("save_optimizer_states"):
            arrays, meta = self._describe_states(updater, dump_optimizer)
        meta.update(format=_STATES_FORMAT, version=1)
        arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8)
        with atomic_path(fname) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)

    @staticmethod
    def _describe_states(updater, dump_optimizer):
        """``(arrays, meta)``: the updater's states as plain arrays and a JSON description."""
        arrays = {}
        if isinstance(updater, _OptimizerUpdater):
            meta = updater.describe(arrays, dump_optimizer)
        elif callable(getattr(updater, "get_states", None)):
            states = updater.get_states(dump_optimizer)
            if not isinstance(states, (bytes, bytearray)):
                raise TypeError(f"kvstore.save_optimizer_states: {type(updater).__name__}."
                                f"get_states() returned {type(states).__name__}, expected bytes")
            arrays["updater_bytes"] = np.frombuffer(bytes(states), np.uint8)
            meta = {"kind": "updater_bytes"}
        else:
            raise TypeError(f"kvstore.save_optimizer_states: the updater "
                            f"{type(updater).__name__} set with set_updater has no get_states(); "
                            "use set_optimizer to save states")
        return arrays, meta

    def load_optimizer_states(self, fname):
        """Restore what :meth:`save_optimizer_states` wrote (same kind of updater needed).

        ``dist_async``: only rank 0 (the server's process) can load them.
        """
        updater = self._updater
        if updater is None:
            raise ValueError("kvstore.load_optimizer_states: no optimizer is set; call "
                             "set_optimizer with the same optimizer first")
        with self._server_states("load_optimizer_states"):
            self._restore_states(updater, fname)

    def _restore_states(self, updater, fname):
        try:
            with np.load(fname, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
        except (ValueError, OSError, EOFError) as err:
            if isinstance(err, FileNotFoundError):
                raise
            raise FileFormatError(fname, None, f"not an optimizer-states archive ({err})") from err
        try:
            meta = json.loads(arrays.pop("__meta__").tobytes().decode("utf-8"))
        except (KeyError, ValueError) as err:
            raise FileFormatError(fname, "__meta__", "missing or unreadable description") from err
        if meta.get("format") != _STATES_FORMAT:
            raise FileFormatError(fname, "__meta__", f"format is {meta.get('format')!r}, expected "
                                  f"{_STATES_FORMAT!r}")
        if meta.get("kind") == "updater_bytes":
            if not callable(getattr(updater, "set_states", None)):
                raise TypeError(f"kvstore.load_optimizer_states: {fname} holds the states of an "
                                f"updater with get_states(); {type(updater).__name__} has no "
                                "set_states()")
            updater.set_states(arrays["updater_bytes"].tobytes())
            return
        if not isinstance(updater, _OptimizerUpdater):
            raise TypeError(f"kvstore.load_optimizer_states: {fname} holds optimizer states; this "
                            "store's updater was set with set_updater, not set_optimizer")
        updater.restore(meta, arrays, self._server.values if self._server is not None
                        else self._store, fname)


def _describe_keys(pairs):
    by_kind = {}
    for k, _ in pairs:
        by_kind.setdefault(type(k).__name__, k)
    return " and ".join(f"{kind} {k!r}" for kind, k in by_kind.items())


# -- reduction -----------------------------------------------------------------------------------

def _reduce_raw(values, dst, staging):
    """``dst = sum(values)`` on raw numpy/cupy buffers (runs on the engine)."""
    first = True
    for src in values:
        if not _same_device(src, dst):
            _copy_raw(src, staging)
            src = staging
        if first:
            dst[...] = src
            first = False
        else:
            dst += src


#: NCCL communicators by the tuple of GPU ids they join (made once per set of GPUs).
_nccl_comms = {}


def _cupy_with_nccl():
    """The ``cupy`` module when it is installed with NCCL (``cupy.cuda.nccl``), else None."""
    try:
        import cupy  # noqa: PLC0415 - optional: only with the gpu extra
        from cupy.cuda import nccl  # noqa: PLC0415 - optional: NCCL comes with some cupy builds
    except ImportError:
        return None
    return cupy if getattr(nccl, "available", False) else None


_NCCL_TYPES = {"float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64",
               "int32": "NCCL_INT32", "int64": "NCCL_INT64", "uint8": "NCCL_UINT8",
               "int8": "NCCL_INT8"}


def _nccl_reducer(values, dst):
    """A function that sums ``values`` (cupy arrays on distinct GPUs) into ``dst`` with NCCL.

    ``dst`` lives on the first value's GPU. Returns None where NCCL does not
    apply (CPU arrays, one value, a GPU twice, a dtype NCCL lacks, no NCCL),
    and the caller sums with copies instead.
    """
    if len(values) < 2 or any(isinstance(v, np.ndarray) for v in values) \
            or isinstance(dst, np.ndarray):
        return None
    devices = tuple(v.device.id for v in values)
    if len(set(devices)) != len(devices) or dst.device.id != devices[0] \
            or not all(v.flags.c_contiguous for v in values) or not dst.flags.c_contiguous:
        return None
    cupy = _cupy_with_nccl()
    name = _NCCL_TYPES.get(np.dtype(dst.dtype).name)
    if cupy is None or name is None:
        return None
    nccl = cupy.cuda.nccl
    dtype = getattr(nccl, name)
    comms = _nccl_comms.get(devices)
    if comms is None:
        comms = _nccl_comms[devices] = nccl.NcclCommunicator.initAll(list(devices))

    def reduce():
        # one reduce per GPU in a group call, on each GPU's default stream (the values
        # are complete: every engine op on a GPU ends with its stream synchronised)
        nccl.groupStart()
        for rank, (comm, src) in enumerate(zip(comms, values)):
            with cupy.cuda.Device(devices[rank]):
                out = dst.data.ptr if rank == 0 else src.data.ptr  # ignored off the root
                comm.reduce(src.data.ptr, out, src.size, dtype, nccl.NCCL_SUM, 0, 0)
        nccl.groupEnd()
        for device in devices:
            cupy.cuda.Device(device).synchronize()
    return reduce


def _same_device(a, b):
    a_host, b_host = isinstance(a, np.ndarray), isinstance(b, np.ndarray)
    if a_host or b_host:
        return a_host and b_host
    return a.device.id == b.device.id


def _copy_raw(src, dst):
    """Copy between host and device buffers (``dst`` is contiguous)."""
    if isinstance(dst, np.ndarray):
        dst[...] = src if isinstance(src, np.ndarray) else src.get()
    elif isinstance(src, np.ndarray):
        dst.set(np.ascontiguousarray(src, dtype=dst.dtype))
    elif src.device.id == dst.device.id:
        dst[...] = src
    else:
        with src.device:  # a peer copy between two GPUs
            src = src if src.flags.c_contiguous else src.copy()
        dst.data.copy_from_device(src.data, src.nbytes)


# -- optimizer states ----------------------------------------------------------------------------

class _OptimizerUpdater:
    """MXNet's updater over an optimizer: one state per key, created at the first push."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.states = {}

    def __call__(self, key, grad, weight):
        optimizer = self.optimizer
        if key not in self.states:
            create = getattr(optimizer, "create_state_multi_precision", optimizer.create_state)
            self.states[key] = create(key, weight)
        update = getattr(optimizer, "update_multi_precision", optimizer.update)
        update(key, weight, grad, self.states[key])

    def describe(self, arrays, dump_optimizer):
        """The JSON description of the states; their arrays go into ``arrays``."""
        entries = []
        for key, state in self.states.items():
            entries.append({"key": key, "key_type": type(key).__name__,
                            "state": _encode_state(state, arrays)})
        meta = {"kind": "optimizer", "states": entries}
        optimizer = self.optimizer
        num_update = getattr(optimizer, "num_update", None)
        if isinstance(num_update, numbers.Integral):
            meta["num_update"] = int(num_update)
        counts = getattr(optimizer, "_index_update_count", None)
        if isinstance(counts, dict):
            meta["update_counts"] = [[k, type(k).__name__, int(v)] for k, v in counts.items()
                                     if isinstance(k, (int, str))]
        if dump_optimizer:
            config = getattr(optimizer, "get_config", None)
            info = {"class": f"{type(optimizer).__module__}.{type(optimizer).__qualname__}"}
            if callable(config):
                try:
                    info["config"] = json.loads(json.dumps(config(), default=str))
                except (TypeError, ValueError):
                    pass
            meta["optimizer"] = info
        return meta

    def restore(self, meta, arrays, store, fname):
        states = {}
        for entry in meta.get("states", []):
            key = int(entry["key"]) if entry.get("key_type") == "int" else str(entry["key"])
            ctx = store[key].ctx if key in store else cpu(0)
            states[key] = _decode_state(entry["state"], arrays, ctx, fname)
        self.states = states
        optimizer = self.optimizer
        counts = getattr(optimizer, "_index_update_count", None)
        if isinstance(counts, dict) and "update_counts" in meta:
            counts.clear()
            for k, kind, v in meta["update_counts"]:
                counts[int(k) if kind == "int" else k] = int(v)
        if "num_update" in meta:
            begin = getattr(optimizer, "begin_num_update", 0)
            if hasattr(optimizer, "iterations") and isinstance(begin, numbers.Integral):
                # MXNet's num_update counts from begin_num_update
                optimizer.iterations = meta["num_update"] - begin
            elif not isinstance(getattr(type(optimizer), "num_update", None), property):
                try:
                    optimizer.num_update = meta["num_update"]
                except AttributeError:
                    pass


def _encode_state(state, arrays):
    if state is None:
        return None
    if isinstance(state, (list, tuple)):
        return {"list" if isinstance(state, list) else "tuple":
                [_encode_state(s, arrays) for s in state]}
    if isinstance(state, NDArray):
        name = f"state_{len(arrays)}"
        arrays[name] = state.asnumpy()
        return {"array": name}
    raise DeepkitError(f"kvstore.save_optimizer_states: an optimizer state must be None, an "
                       f"NDArray or a list/tuple of them, got {type(state).__name__}")


def _decode_state(spec, arrays, ctx, fname):
    if spec is None:
        return None
    if "array" in spec:
        name = spec["array"]
        if name not in arrays:
            raise FileFormatError(fname, name, "a state array named in the description is missing")
        value = arrays[name]
        return nd.array(value, ctx=ctx, dtype=value.dtype)
    for kind, build in (("list", list), ("tuple", tuple)):
        if kind in spec:
            return build(_decode_state(s, arrays, ctx, fname) for s in spec[kind])
    raise FileFormatError(fname, "__meta__", f"unknown state description {spec!r}")
