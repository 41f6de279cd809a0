"""The parameter server behind ``kvstore.create('dist_async')``: MPI point-to-point messages.

MXNet's asynchronous store keeps the parameters on a server; each worker
pushes its gradient, which the server applies at once with the updater
(``updater(key, grad, stored)``), without waiting for the other workers, and
a pull returns the server's current value. Here the server runs as a thread
of rank 0 (:class:`ParamServer`), and every rank, rank 0 included, talks to
it through a :class:`ServerClient`.

Messages travel on a communicator of their own (a duplicate of
:mod:`deepkit_engine.dist`'s), so they never mix with the collectives. A
request is a small JSON header (tag ``_REQ``) followed, for ``init`` and
``push``, by the raw array (tag ``_REQ_DATA``); a reply is a JSON header
(``_REPLY``), followed for ``pull`` by the array (``_REPLY_DATA``). MPI
delivers the messages of one sender on one communicator and tag in the order
they were sent, so the server sees each worker's requests in that worker's
order: a worker's pull returns a value that includes its own earlier pushes.
Nothing is pickled.

The server thread never takes :mod:`deepkit_engine.dist.mpi`'s lock (rank
0's main thread may sit in a blocking collective under it) and never blocks
inside MPI: it polls with ``Iprobe`` and sleeps between polls (up to 1 ms),
because MPICH's blocking calls spin and this must not take a core from the
training. It needs MPI at ``THREAD_MULTIPLE``, which :func:`dist.init
<deepkit_engine.dist.init>` asks for.

Waits have the deadline of the collectives (:func:`dist.timeout
<deepkit_engine.dist.timeout>`, ``DEEPKIT_DIST_TIMEOUT``): a worker that gets
no reply in time, or a server that hears from no worker while it waits for
them to close, reports a :class:`~deepkit_engine.dist.DistributedError` the
way a late collective does (written to stderr, then ``MPI_Abort``; raised
when :func:`dist.init <deepkit_engine.dist.init>` was given
``abort_on_error=False``).

Shutdown: every worker sends ``close`` after its last request
(:meth:`ServerClient.close`); the server stops once every rank has closed,
and rank 0 waits for that, so no worker loses the server while it still
needs it.
"""
import json
import sys
import threading
import time

import numpy as np

from .. import ndarray as nd
from ..base import DeepkitError
from ..context import cpu
from . import mpi as _mpi

__all__ = ["ParamServer", "ServerClient", "SERVER_RANK", "require_thread_multiple",
           "duplicate_communicator", "wait_for_workers"]

#: The rank whose process runs the server thread.
SERVER_RANK = 0

_REQ, _REQ_DATA, _REPLY, _REPLY_DATA = 11, 12, 13, 14

#: The longest pause between two polls of a waiting side (seconds).
_MAX_PAUSE = 1e-3
_MIN_PAUSE = 2e-5


def require_thread_multiple(what):
    """Raise a clear error unless MPI runs at ``THREAD_MULTIPLE`` (the server thread needs it)."""
    MPI = _mpi._MPI
    level = MPI.Query_thread()
    if level != MPI.THREAD_MULTIPLE:
        names = {MPI.THREAD_SINGLE: "THREAD_SINGLE", MPI.THREAD_FUNNELED: "THREAD_FUNNELED",
                 MPI.THREAD_SERIALIZED: "THREAD_SERIALIZED"}
        raise _mpi.DistributedError(
            f"{what}: the parameter server runs as a thread of rank {SERVER_RANK} beside the "
            f"training thread, which needs MPI at THREAD_MULTIPLE, but the MPI library granted "
            f"{names.get(level, level)}. Use an MPI built with thread support (the mpich wheel of "
            "'deepkit[dist]' is), and let deepkit_engine.dist.init() initialise MPI (it asks for "
            "THREAD_MULTIPLE) or call MPI.Init_thread(MPI.THREAD_MULTIPLE) yourself",
            op=what)


def duplicate_communicator(what):
    """A new duplicate of the dist communicator (collective: every rank calls it, in order)."""
    comm = _mpi._comm
    new, request = comm.Idup()
    _mpi._wait_requests([request], f"{what} (duplicating the communicator)", None, comm)
    new.Set_errhandler(_mpi._MPI.ERRORS_RETURN)
    return new


def _encode(header):
    return np.frombuffer(json.dumps(header).encode("utf-8"), np.uint8).copy()


def _decode(buffer):
    return json.loads(bytes(buffer).decode("utf-8"))


def _host_contiguous(array):
    array = array.get() if not isinstance(array, np.ndarray) else array
    return np.ascontiguousarray(array)


class ParamServer:
    """The server thread of rank 0: holds the values, applies pushes as they arrive.

    Args:
        comm: The store's own communicator (from :func:`duplicate_communicator`).
        label: How errors name the store (``"kvstore 'dist_async'"``).
    """

    def __init__(self, comm, label):
        self._comm = comm
        self._label = label
        self._MPI = _mpi._MPI
        self._values = {}         # key -> NDArray on cpu(0): the stored value
        self._updater = None
        self._lock = threading.Lock()   # the values and the updater: server thread vs. rank 0
        self._errors = {}          # source rank -> messages to give it with its reply
        self._closed = set()
        self._sends = []           # [(request, buffer)] replies in flight
        self.last_activity = time.monotonic()
        self.failure = None        # an unexpected exception that stopped the thread
        self._thread = threading.Thread(target=self._run, name="deepkit-param-server",
                                        daemon=True)
        self._thread.start()

    # -- used by rank 0's main thread -----------------------------------------------------------
    @property
    def values(self):
        """``{key: NDArray}``: the stored values (read under :attr:`lock`)."""
        return self._values

    @property
    def lock(self):
        """Held while the server applies a request; hold it to read or change its state."""
        return self._lock

    def set_updater(self, updater):
        """Apply ``updater(key, grad, stored)`` to every later push."""
        with self._lock:
            self._updater = updater

    def closed_ranks(self):
        """The ranks that have closed the store so far."""
        return set(self._closed)

    def is_alive(self):
        """Whether the server thread still serves."""
        return self._thread.is_alive()

    def join(self, seconds):
        """Wait up to ``seconds`` for the thread to end (after every rank has closed)."""
        self._thread.join(seconds)

    # -- the thread ----------------------------------------------------------------------------
    def _run(self):
        MPI, comm = self._MPI, self._comm
        size = comm.Get_size()
        status = MPI.Status()
        pause = 0.0
        try:
            while len(self._closed) < size:
                self._reap_sends()
                if not comm.Iprobe(source=MPI.ANY_SOURCE, tag=_REQ, status=status):
                    pause = min(max(pause * 2, _MIN_PAUSE), _MAX_PAUSE)
                    time.sleep(pause)
                    continue
                pause = 0.0
                self.last_activity = time.monotonic()
                source = status.Get_source()
                header = np.empty(status.Get_count(MPI.BYTE), np.uint8)
                comm.Recv([header, MPI.BYTE], source=source, tag=_REQ)
                self._serve(source, _decode(header))
            deadline = time.monotonic() + 5.0
            while self._sends and time.monotonic() < deadline:
                self._reap_sends()
                time.sleep(_MAX_PAUSE)
        except Exception as err:  # noqa: BLE001 - kept for rank 0's close() to report
            self.failure = err
            sys.stderr.write(f"\n{self._label}: the parameter server thread of rank "
                             f"{SERVER_RANK} stopped: {type(err).__name__}: {err}\n")
            sys.stderr.flush()

    def _reap_sends(self):
        if self._sends:
            self._sends = [(r, b) for r, b in self._sends if not r.Test()]

    def _send(self, dest, header, payload=None):
        errors = self._errors.pop(dest, None)
        if errors:
            header = {"ok": False, "error": " | ".join(errors)}
            payload = None
        buffer = _encode(header)
        self._sends.append((self._comm.Isend([buffer, self._MPI.BYTE], dest=dest, tag=_REPLY),
                            buffer))
        if payload is not None:
            self._sends.append((self._comm.Isend(payload, dest=dest, tag=_REPLY_DATA), payload))

    def _error(self, source, message):
        self._errors.setdefault(source, []).append(message)

    def _receive_array(self, source, header):
        """The array that follows a request header (polled: a dead sender must not hang us)."""
        array = np.empty(tuple(header["shape"]), np.dtype(header["dtype"]))
        request = self._comm.Irecv(array, source=source, tag=_REQ_DATA)
        limit = _mpi.timeout()
        start = time.monotonic()
        pause = 0.0
        while not request.Test():
            if limit and time.monotonic() - start > limit:
                request.Cancel()
                raise DeepkitError(f"{self._label}: rank {source} sent the header of a "
                                   f"{header['op']} of key {header.get('key')!r} but not its "
                                   f"values within {limit:g} s")
            pause = min(max(pause * 2, _MIN_PAUSE), _MAX_PAUSE)
            time.sleep(pause)
        return array

    def _serve(self, source, header):
        op, key = header["op"], header.get("key")
        if op == "init":
            array = self._receive_array(source, header)
            with self._lock:
                if key in self._values:
                    self._error(source, f"{self._label} init: key {key!r} was already "
                                        "initialised on the server")
                else:
                    self._values[key] = nd.array(array, ctx=cpu(0), dtype=array.dtype)
            self._send(source, {"ok": True})
        elif op == "push":
            grad = self._receive_array(source, header)
            with self._lock:
                stored = self._values.get(key)
                if stored is None:
                    self._error(source, f"{self._label} push from rank {source}: key {key!r} was "
                                        f"not initialised on the server (rank {SERVER_RANK} "
                                        "calls init for every key)")
                elif self._updater is None:
                    self._error(source, f"{self._label} push from rank {source} of key {key!r}: "
                                        f"the server has no optimizer; call set_optimizer on "
                                        f"every rank (rank {SERVER_RANK}'s is applied) before "
                                        "pushing")
                elif grad.shape != stored.shape:
                    self._error(source, f"{self._label} push from rank {source} of key {key!r}: "
                                        f"shape {grad.shape}, expected {stored.shape} (rank "
                                        f"{SERVER_RANK}'s init)")
                else:
                    try:
                        self._updater(key, nd.array(grad, ctx=cpu(0), dtype=stored.dtype),
                                      stored)
                    except Exception as err:  # noqa: BLE001 - reported to the pushing worker
                        self._error(source, f"{self._label} push from rank {source} of key "
                                            f"{key!r}: the updater failed: "
                                            f"{type(err).__name__}: {err}")
            self._send(source, {"ok": True})
        elif op == "pull":
            with self._lock:
                stored = self._values.get(key)
                value = None
                if stored is None:
                    self._error(source, f"{self._label} pull from rank {source}: key {key!r} was "
                                        f"not initialised on the server (rank {SERVER_RANK} "
                                        "calls init for every key)")
                else:
                    try:
                        value = _host_contiguous(stored.asnumpy())
                    except Exception as err:  # noqa: BLE001 - reported to the pulling worker
                        self._error(source, f"{self._label} pull from rank {source} of key "
                                            f"{key!r}: the stored value could not be read: "
                                            f"{type(err).__name__}: {err}")
            if value is None:
                self._send(source, {"ok": False, "error": "no value"})
            else:
                self._send(source, {"ok": True, "dtype": value.dtype.str,
                                    "shape": list(value.shape)}, value)
        elif op == "close":
            self._closed.add(source)
            self._send(source, {"ok": True})
        else:
            self._error(source, f"{self._label}: unknown request {op!r} from rank {source}")
            self._send(source, {"ok": False, "error": "unknown request"})


class ServerClient:
    """One worker's side: sends requests to the server and waits for its replies.

    Requests of one worker must be sent in its program order (the KVStore
    runs them as engine work that writes one variable); only one request
    waits for a reply at a time.

    Args:
        comm: The store's own communicator.
        label: How errors name the store.
    """

    def __init__(self, comm, label):
        self._comm = comm
        self._label = label
        self._MPI = _mpi._MPI

    @property
    def rank(self):
        """This worker's rank."""
        return self._comm.Get_rank()

    # -- requests ------------------------------------------------------------------------------
    def init(self, key, value):
        """Store ``value`` (a numpy array) under ``key`` on the server; wait for its answer."""
        value = _host_contiguous(value)
        self._request("init", key, value)
        self._reply("init", key)

    def push(self, key, grad):
        """Send ``grad`` (numpy or cupy) to be applied to ``key``; wait until the server has.

        As in MXNet, a push is done when the server answers, after it applied
        the update: a later barrier then means every rank's pushes are in.
        """
        self._request("push", key, _host_contiguous(grad))
        self._reply("push", key)

    def pull(self, key):
        """The server's current value of ``key`` (a numpy array)."""
        self._request("pull", key)
        return self._reply("pull", key)

    def close(self):
        """Tell the server this worker is done (its last request); wait for the answer."""
        self._request("close", None)
        self._reply("close", None)

    # -- messages ------------------------------------------------------------------------------
    def _request(self, op, key, array=None):
        MPI = self._MPI
        header = {"op": op, "key": key}
        if array is not None:
            header.update(dtype=array.dtype.str, shape=list(array.shape))
        buffer = _encode(header)
        try:
            requests = [self._comm.Isend([buffer, MPI.BYTE], dest=SERVER_RANK, tag=_REQ)]
            if array is not None:
                requests.append(self._comm.Isend(array, dest=SERVER_RANK, tag=_REQ_DATA))
        except MPI.Exception as err:
            self._broken(op, key, f"could not send ({err.Get_error_string().strip()})")
        self._poll(lambda: MPI.Request.Testall(requests), op, key, "take the request")

    def _reply(self, op, key):
        MPI, comm = self._MPI, self._comm
        status = MPI.Status()
        self._poll(lambda: comm.Iprobe(source=SERVER_RANK, tag=_REPLY, status=status), op, key,
                   "reply")
        header = np.empty(status.Get_count(MPI.BYTE), np.uint8)
        request = comm.Irecv([header, MPI.BYTE], source=SERVER_RANK, tag=_REPLY)
        self._poll(request.Test, op, key, "reply")
        header = _decode(header)
        if not header.get("ok"):
            raise DeepkitError(f"{self._label} {op}"
                               + (f" of key {key!r}" if key is not None else "")
                               + f" on rank {self.rank}: {header.get('error')}")
        if "shape" not in header:
            return None
        value = np.empty(tuple(header["shape"]), np.dtype(header["dtype"]))
        request = comm.Irecv(value, source=SERVER_RANK, tag=_REPLY_DATA)
        self._poll(request.Test, op, key, "send the value")
        return value

    def _poll(self, ready, op, key, what):
        """Call ``ready()`` (an MPI test) until true, sleeping between calls, with the deadline."""
        limit = _mpi.timeout()
        start = time.monotonic()
        pause = 0.0
        while True:
            try:
                if ready():
                    return
            except self._MPI.Exception as err:
                self._broken(op, key, f"failed: {err.Get_error_string().strip()}")
            waited = time.monotonic() - start
            if limit and waited > limit:
                self._broken(op, key, f"the parameter server (rank {SERVER_RANK}) did not "
                                      f"{what} within {limit:g} s: its process died or hangs. "
                                      "Raise DEEPKIT_DIST_TIMEOUT if the server is legitimately "
                                      "that slow")
            pause = min(max(pause * 2, _MIN_PAUSE), _MAX_PAUSE)
            time.sleep(pause)

    def _broken(self, op, key, why):
        comm = self._comm
        where = f" of key {key!r}" if key is not None else ""
        _mpi._fail(f"{self._label} {op}{where} on rank {comm.Get_rank()} of {comm.Get_size()}: "
                   f"{why}", f"{self._label} {op}", [SERVER_RANK], comm)


def wait_for_workers(server, comm, label):
    """Rank 0: wait until every rank has closed (the server thread ends), with an idle deadline.

    The deadline counts from the server's last message: workers may train for
    long between requests, but one that sends nothing for ``timeout()``
    seconds is taken for dead.
    """
    limit = _mpi.timeout()
    while server.is_alive():
        server.join(0.05)
        if limit and server.is_alive() and time.monotonic() - server.last_activity > limit:
            missing = sorted(set(range(comm.Get_size())) - server.closed_ranks())
            _mpi._fail(f"{label} close on rank {comm.Get_rank()} of {comm.Get_size()}: the "
                       f"ranks {missing} neither closed the store nor sent anything to the "
                       f"parameter server within {limit:g} s (they died or hang). Raise "
                       "DEEPKIT_DIST_TIMEOUT if a worker legitimately works longer between "
                       "pushes", f"{label} close", missing, comm)
    if server.failure is not None:
        raise DeepkitError(f"{label}: the parameter server thread of rank {SERVER_RANK} "
                           f"stopped: {type(server.failure).__name__}: {server.failure}")
