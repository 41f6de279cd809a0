"""The profiler: where the time goes, per op, per layer, per thread (MXNet's ``mx.profiler``).

What is measured, while the profiler runs:

- **Engine ops.** Every op the engine runs (an imperative ``nd`` op, a copy, a
  whole executor pass) is timed on the thread that runs it, with its *queue
  wait*: the time from its push to its start (waiting for its inputs, then
  for a free worker).
- **Executor steps.** An executor runs its forward (or backward) program as
  one engine op; inside it, every node of the program is timed as well and
  recorded under its op name, its node name and its phase (``forward`` or
  ``backward``: backward nodes are the gradient graph's nodes, named
  ``<forward node>_backward_...``).
- **Layers.** Executor steps are grouped by the forward node they belong to,
  and, given the model's layer names, by layer: a node belongs to the layer
  whose name is its longest prefix (``dense_1`` for ``dense_1`` and
  ``dense_1_backward_dot0``); nodes no layer name prefixes (a loss, an
  activation a layer created without its own name) keep their own name.
- **Memory** (``profile_memory=True``): bytes *allocated* for the outputs of
  imperative ops (counted when the op is pushed; ops writing into ``out=``
  allocate nothing), and the planned buffers an executor allocates when it
  is bound (random samplers are ops and count). Not counted: arrays made by
  ``nd.array``, ``nd.zeros``, ``nd.ones`` and the other creation functions,
  copies (``copyto``, ``as_in_context``), workspace a kernel allocates
  internally (numpy temporaries, im2col columns). Executor steps write into
  planned buffers and allocate nothing; their output sizes appear in the
  trace as ``output_bytes``.

On a GPU every time is host time: ops and executor steps are timed as their
kernels are launched on the worker's stream, and the stream synchronization
that follows each engine op is not inside its span. Use a GPU profiler for
device time.

Two ways to use it::

    from deepkit_engine import profiler
    profiler.set_config(profile_all=True, filename="profile.json")
    profiler.set_state("run")
    ...                                   # the code to profile
    profiler.set_state("stop")
    profiler.dump()                       # the Chrome trace, for chrome://tracing or Perfetto
    print(profiler.dumps())               # the tables

    with profiler.profile(filename="trace.json") as p:
        ...
    print(p.dumps(sort_by="total"))

Off, the profiler costs a ``None`` check where an op is pushed, where it
runs and where an executor pass starts, and two local checks per executor
step.
"""
import collections
import contextlib
import json
import os
import threading
import time

from . import engine as _engine_mod
from .base import DeepkitError, did_you_mean
from .fileio import atomic_path

__all__ = [
    "set_config", "set_state", "get_state", "pause", "resume", "dump", "dumps", "profile",
    "Profile", "Domain", "Task", "Frame", "Event", "Counter", "Marker", "scope",
]

#: MXNet 1.9's ``set_config`` keywords (all accepted) and their defaults.
_MX_DEFAULTS = {
    "filename": "profile.json", "profile_all": False, "profile_symbolic": True,
    "profile_imperative": True, "profile_memory": False, "profile_api": False,
    "contiguous_dump": False, "continuous_dump": False, "dump_period": 1.0,
    "aggregate_stats": False, "profile_process": "worker", "gpu_memory_profile_tag": None,
}
_EXTRA_DEFAULTS = {"layer_names": None}
_SORT_KEYS = ("total", "avg", "min", "max", "count", "name")
_FORMATS = ("table", "json")
_STATES = ("run", "stop")
#: Engine ops that are executor passes, and the engine's own wait markers.
_PASS_NAMES = ("forward", "backward")
_SYNC_NAMES = ("wait_for_var", "wait_for_write")

# event kinds
_IMPERATIVE, _PASS, _SYNC, _FORWARD, _BACKWARD, _USER, _COUNTER, _MARKER = (
    "imperative", "executor", "sync", "forward", "backward", "user", "counter", "marker")
_MARKER_SCOPES = {"global": "g", "process": "p", "thread": "t", "task": "t", "marker": "t"}


def _check_choice(func, arg, value, choices):
    if value not in choices:
        raise ValueError(f"profiler.{func}: '{arg}' must be one of "
                         f"{', '.join(repr(c) for c in choices)}, got {value!r}"
                         f"{did_you_mean(value, choices)}")


def forward_node_name(node_name):
    """The forward node a (backward) node name belongs to.

    ``dense_1_backward_dot0`` and ``dense_1_gradcopy`` belong to ``dense_1``;
    a forward node's name is returned unchanged.
    """
    cut = node_name.find("_backward")
    if cut > 0:
        return node_name[:cut]
    if node_name.endswith("_gradcopy"):
        return node_name[:-len("_gradcopy")]
    return node_name


def layer_of(node_name, layer_names):
    """The layer (longest name prefix at an ``_`` boundary) a node belongs to.

    Args:
        node_name: An executor node's name (forward or backward).
        layer_names: Candidate layer names (may be empty).

    Returns:
        The matching layer name, or the forward node's name when none matches.
    """
    base = forward_node_name(node_name)
    best = None
    for layer in layer_names:
        if (base == layer or base.startswith(layer + "_")) and (
                best is None or len(layer) > len(best)):
            best = layer
    return best if best is not None else base


class _Recorder:
    """What the engine and executors call while profiling (the engine's ``_profiler``).

    Events are tuples ``(kind, name, node, start, end, thread id, queue wait,
    bytes)`` in ``perf_counter`` seconds, appended from any thread (a list
    append is atomic).
    """

    def __init__(self, config):
        everything = bool(config["profile_all"])
        self.symbolic = everything or bool(config["profile_symbolic"])
        self.imperative = everything or bool(config["profile_imperative"])
        self.api = everything or bool(config["profile_api"])
        self.memory = everything or bool(config["profile_memory"])
        self.events = []
        self.allocations = []  # (name, bytes)
        self.threads = {}      # thread id -> thread name

    def _thread(self):
        ident = threading.get_ident()
        if ident not in self.threads:
            self.threads[ident] = threading.current_thread().name
        return ident

    def engine_op(self, opr, start, end):
        """Record one op the engine ran (called by the engine after it ran)."""
        name = opr.name
        if name in _PASS_NAMES:
            if not self.symbolic:
                return
            kind = _PASS
        elif name in _SYNC_NAMES:
            if not self.api:
                return
            kind = _SYNC
        elif not self.imperative:
            return
        else:
            kind = _IMPERATIVE
        wait = start - opr.pushed if opr.pushed else 0.0
        self.events.append((kind, name, None, start, end, self._thread(), wait, 0))

    def executor_step(self, phase, node, start, outs):
        """Record one executor step that started at ``start`` and just ended."""
        end = _engine_mod._clock()
        nbytes = sum(getattr(o, "nbytes", 0) for o in outs) if self.memory else 0
        self.events.append((_BACKWARD if phase == "backward" else _FORWARD, node.op.name,
                            node.name, start, end, self._thread(), 0.0, nbytes))

    def allocated(self, name, nbytes):
        """Count ``nbytes`` allocated by ``name`` (only with profile_memory)."""
        if self.memory:
            self.allocations.append((name, int(nbytes)))

    def user_event(self, kind, name, start, end, args=None):
        self.events.append((kind, name, args, start, end, self._thread(), 0.0, 0))


def _row(name, durations, total_all):
    total = sum(durations)
    return {"name": name, "count": len(durations), "total_ms": total * 1e3,
            "avg_ms": total * 1e3 / len(durations), "min_ms": min(durations) * 1e3,
            "max_ms": max(durations) * 1e3,
            "percent": 100.0 * total / total_all if total_all > 0 else 0.0}


def _sorted(rows, sort_by, ascending):
    key = {"total": "total_ms", "avg": "avg_ms", "min": "min_ms", "max": "max_ms",
           "count": "count", "name": "name"}[sort_by]
    return sorted(rows, key=lambda r: r[key], reverse=not ascending)


class Profile:
    """One profiling session: its configuration, its events and its reports.

    Made by :func:`profile` (and, for the module-level functions, once per
    process). ``stats()`` gives the numbers, ``dumps()`` the tables,
    ``trace()``/``dump()`` the Chrome trace.
    """

    def __init__(self, **config):
        self._config = dict(_MX_DEFAULTS)
        self._config.update(_EXTRA_DEFAULTS)
        self.set_config(**config)
        self._recorder = _Recorder(self._config)
        self._state = "stop"
        self._paused = False
        self._origin = None

    # -- configuration and state ----------------------------------------------------
    def set_config(self, **kwargs):
        """Set options (MXNet's ``set_config`` keywords, plus ``layer_names``).

        Raises:
            TypeError: An unknown keyword (named, with the closest known one).
        """
        known = list(_MX_DEFAULTS) + list(_EXTRA_DEFAULTS)
        for key in kwargs:
            if key not in known:
                raise TypeError(f"profiler.set_config: unknown keyword '{key}'"
                                f"{did_you_mean(key, known)}; known: {', '.join(known)}")
        if "filename" in kwargs and kwargs["filename"] is not None:
            kwargs["filename"] = os.fspath(kwargs["filename"])
        if kwargs.get("layer_names") is not None:
            kwargs["layer_names"] = [str(n) for n in kwargs["layer_names"]]
        self._config.update(kwargs)
        if getattr(self, "_recorder", None) is not None:
            events, allocations, threads = (self._recorder.events, self._recorder.allocations,
                                            self._recorder.threads)
            self._recorder = _Recorder(self._config)
            self._recorder.events, self._recorder.allocations = events, allocations
            self._recorder.threads = threads
            if self._state == "run" and not self._paused:
                _engine_mod._profiler = self._recorder

    @property
    def config(self):
        """The current options (a copy)."""
        return dict(self._config)

    @property
    def state(self):
        """``'run'`` or ``'stop'``."""
        return self._state

    def set_state(self, state="stop"):
        """Start (``'run'``) or stop (``'stop'``) recording.

        Both wait until the engine is idle first: work pushed before the
        start is not recorded, work pushed before the stop is.

        Raises:
            ValueError: ``state`` is not ``'run'`` or ``'stop'``.
            DeepkitError: Another profiling session is running.
        """
        _check_choice("set_state", "state", state, _STATES)
        if state == self._state:
            return
        if state == "run":
            current = _engine_mod._profiler
            if current is not None and current is not self._recorder:
                raise DeepkitError("profiler.set_state('run'): another profiling session is "
                                   "running; stop it first")
            _wait_engine_idle()  # earlier work is not part of this session
            if self._origin is None:
                self._origin = time.perf_counter()
            self._state = "run"
            self._paused = False
            _engine_mod._profiler = self._recorder
        else:
            _wait_engine_idle()
            if _engine_mod._profiler is self._recorder:
                _engine_mod._profiler = None
            self._state = "stop"
            self._paused = False

    def pause(self):
        """Stop recording for a while (``resume()`` continues the same session)."""
        if self._state == "run" and not self._paused:
            _wait_engine_idle()
            self._paused = True
            if _engine_mod._profiler is self._recorder:
                _engine_mod._profiler = None

    def resume(self):
        """Continue recording after :meth:`pause`."""
        if self._state == "run" and self._paused:
            self._paused = False
            _engine_mod._profiler = self._recorder

    def add_event(self, name, start, end, **args):
        """Record a user span from ``start`` to ``end`` (``time.perf_counter`` seconds).

        It shows in the trace (category ``user``) and the user-event table.
        """
        self._recorder.user_event(_USER, str(name), start, end, args)

    def reset(self):
        """Forget everything recorded so far."""
        self._recorder.events = []
        self._recorder.allocations = []
        self._recorder.threads = {}

    # -- numbers ---------------------------------------------------------------------
    def stats(self, sort_by="total", ascending=False):
        """The aggregated numbers, as plain dicts and lists.

        Returns:
            ``{'operators': {'forward', 'backward', 'imperative': [row]},
            'layers': [layer row], 'executor_passes': [row], 'queue_wait':
            [row], 'memory': [row], 'threads': {tid: name}, 'total_op_ms'}``.
            An op row has ``name, count, total_ms, avg_ms, min_ms, max_ms,
            percent`` (of all operator time: forward + backward +
            imperative); queue-wait rows have the same fields for the wait;
            a layer row has ``name, forward_ms, backward_ms, total_ms,
            count, percent``; a memory row ``name, count, total_bytes,
            avg_bytes``.
        """
        _check_choice("stats", "sort_by", sort_by, _SORT_KEYS)
        events = list(self._recorder.events)
        by_kind = collections.defaultdict(lambda: collections.defaultdict(list))
        waits = collections.defaultdict(list)
        layers = collections.OrderedDict()
        layer_names = self._config["layer_names"] or ()
        for kind, name, node, start, end, _, wait, _ in events:
            by_kind[kind][name].append(end - start)
            if kind in (_IMPERATIVE, _PASS, _SYNC):
                waits[name].append(wait)
            if kind in (_FORWARD, _BACKWARD):
                layer = layer_of(node, layer_names)
                entry = layers.setdefault(layer, [0.0, 0.0, 0])
                entry[0 if kind == _FORWARD else 1] += end - start
                entry[2] += 1
        total_all = sum(sum(d) for k in (_FORWARD, _BACKWARD, _IMPERATIVE)
                        for d in by_kind[k].values())
        operators = {}
        for phase in (_FORWARD, _BACKWARD, _IMPERATIVE):
            rows = [_row(n, d, total_all) for n, d in by_kind[phase].items()]
            operators[phase] = _sorted(rows, sort_by, ascending)
        passes_total = sum(sum(d) for d in by_kind[_PASS].values())
        passes = _sorted([_row(f"executor {n}", d, passes_total)
                          for n, d in by_kind[_PASS].items()], sort_by, ascending)
        wait_rows = _sorted([_row(n, w, 0.0) for n, w in waits.items()], sort_by, ascending)
        layer_total = sum(f + b for f, b, _ in layers.values())
        layer_rows = [{"name": n, "forward_ms": f * 1e3, "backward_ms": b * 1e3,
                       "total_ms": (f + b) * 1e3, "count": c,
                       "percent": 100.0 * (f + b) / layer_total if layer_total > 0 else 0.0}
                      for n, (f, b, c) in layers.items()]
        if sort_by != "name":
            layer_rows.sort(key=lambda r: r["total_ms"], reverse=not ascending)
        else:
            layer_rows.sort(key=lambda r: r["name"], reverse=not ascending)
        memory = collections.OrderedDict()
        for name, nbytes in self._recorder.allocations:
            entry = memory.setdefault(name, [0, 0])
            entry[0] += 1
            entry[1] += nbytes
        memory_rows = sorted(({"name": n, "count": c, "total_bytes": b, "avg_bytes": b / c}
                              for n, (c, b) in memory.items()),
                             key=lambda r: r["total_bytes"], reverse=True)
        user = [_row(n, d, 0.0) for n, d in by_kind[_USER].items()]
        return {"operators": operators, "layers": layer_rows, "executor_passes": passes,
                "queue_wait": wait_rows, "memory": memory_rows, "user": user,
                "threads": dict(self._recorder.threads), "total_op_ms": total_all * 1e3}

    def dumps(self, reset=False, format="table", sort_by="total", ascending=False):
        """The aggregated statistics as text (MXNet's ``profiler.dumps``).

        Args:
            reset: Forget the recorded events afterwards.
            format: ``'table'`` (aligned text) or ``'json'`` (MXNet's layout:
                ``{"Time": {section: {name: {"Count", "Total", "Min", "Max",
                "Avg", "Percent"}}}, "Memory": {...}, "Unit": {...}}``).
            sort_by: ``'total'``, ``'avg'``, ``'min'``, ``'max'``, ``'count'``
                or ``'name'``.
            ascending: Sort order.

        Raises:
            ValueError: A bad ``format`` or ``sort_by`` (named).
        """
        _check_choice("dumps", "format", format, _FORMATS)
        _check_choice("dumps", "sort_by", sort_by, _SORT_KEYS)
        stats = self.stats(sort_by, ascending)
        text = _json_stats(stats) if format == "json" else _table(stats)
        if reset:
            self.reset()
        return text

    # -- the trace -------------------------------------------------------------------
    def trace(self):
        """The Chrome trace (``{"traceEvents": [...]}``) of everything recorded.

        Complete events (``ph: "X"``, microseconds since the session started)
        on one row (``tid``) per thread, named by ``thread_name`` metadata;
        ``cat`` is the event's kind (``imperative``, ``executor``, ``forward``,
        ``backward``, ``sync``, ``user``) and ``args`` holds the op, the node,
        its layer and the queue wait.
        """
        origin = self._origin if self._origin is not None else 0.0
        pid = os.getpid()
        tids = {}
        threads = self._recorder.threads
        layer_names = self._config["layer_names"] or ()
        out = [{"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
                "args": {"name": f"deepkit (pid {pid})"}}]
        for ident in threads:
            tids[ident] = len(tids) + 1
        for ident, tid in tids.items():
            out.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                        "args": {"name": threads[ident]}})
            out.append({"name": "thread_sort_index", "ph": "M", "pid": pid, "tid": tid,
                        "args": {"sort_index": tid}})
        for kind, name, node, start, end, ident, wait, nbytes in list(self._recorder.events):
            if kind in (_FORWARD, _BACKWARD):
                args = {"op": name, "node": node, "layer": layer_of(node, layer_names),
                        "phase": kind}
                if nbytes:
                    args["output_bytes"] = nbytes
                label = f"{name} {node}"
            elif kind == _COUNTER:
                out.append({"name": name, "cat": kind, "ph": "C", "pid": pid,
                            "tid": tids.get(ident, 0), "ts": round((start - origin) * 1e6, 3),
                            "args": {"value": node["value"]}})
                continue
            elif kind == _MARKER:
                out.append({"name": name, "cat": kind, "ph": "i", "pid": pid,
                            "tid": tids.get(ident, 0), "ts": round((start - origin) * 1e6, 3),
                            "s": _MARKER_SCOPES.get(node["scope"], "p"), "args": node})
                continue
            elif kind == _USER:
                args = dict(node or {})
                label = name
            else:
                args = {"op": name, "queue_wait_us": round(wait * 1e6, 3)}
                label = f"executor {name}" if kind == _PASS else name
            out.append({"name": label, "cat": kind, "ph": "X", "pid": pid,
                        "tid": tids.get(ident, 0), "ts": round((start - origin) * 1e6, 3),
                        "dur": round((end - start) * 1e6, 3), "args": args})
        return {"traceEvents": out, "displayTimeUnit": "ms",
                "otherData": {"producer": "deepkit_engine.profiler"}}

    def dump(self, finished=True, filename=None):
        """Write the Chrome trace to ``filename`` (the configured one by default), atomically.

        Args:
            finished: MXNet's flag: True for the final dump. Every dump writes
                the whole trace so far, so it changes nothing here.
            filename: Where to write; default: the ``filename`` option.

        Returns:
            The path written.
        """
        del finished
        path = filename if filename is not None else self._config["filename"]
        if path is None:
            raise ValueError("profiler.dump: no 'filename': pass dump(filename=...) or "
                             "set_config(filename=...)")
        path = os.fspath(path)
        text = json.dumps(self.trace())
        with atomic_path(path) as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
        return path

    def write_table(self, path, sort_by="total"):
        """Write :meth:`dumps`'s table to ``path``, atomically; returns the path."""
        text = self.dumps(sort_by=sort_by)
        with atomic_path(path) as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        return os.fspath(path)

    # -- context manager -------------------------------------------------------------
    def __enter__(self):
        self.set_state("run")
        return self

    def __exit__(self, exc_type, exc, tb):
        self.set_state("stop")
        if exc_type is None and self._config["filename"] is not None:
            self.dump()
        return False


def _wait_engine_idle():
    """Wait until the engine has run everything pushed so far (errors stay stored)."""
    eng = _engine_mod.get_engine()
    if getattr(_engine_mod._in_work, "depth", 0):
        return  # inside pushed work: waiting would deadlock
    idle = getattr(eng, "_wait_idle", None)
    if idle is not None:
        idle()


def _fmt_ms(x):
    return f"{x:.4f}" if x < 10 else f"{x:.2f}"


def _table(stats):
    head = f"{'Name':<44}{'Count':>8}{'Total (ms)':>13}{'Avg (ms)':>11}{'Min (ms)':>11}" \
           f"{'Max (ms)':>11}{'Percent':>9}"
    lines = ["Profile Statistics (deepkit_engine.profiler).",
             f"\tAll operator time: {stats['total_op_ms']:.3f} ms (forward + backward + "
             "imperative); Percent is of that, except in the executor and queue-wait tables."]

    def section(title, rows, percent=True):
        if not rows:
            return
        lines.extend(["", title, "=" * len(title), head,
                      f"{'----':<44}{'-----':>8}{'----------':>13}{'--------':>11}"
                      f"{'--------':>11}{'--------':>11}{'-------':>9}"])
        for r in rows:
            pct = f"{r['percent']:8.2f}%" if percent else f"{'':>9}"
            lines.append(f"{r['name'][:43]:<44}{r['count']:>8}{_fmt_ms(r['total_ms']):>13}"
                         f"{_fmt_ms(r['avg_ms']):>11}{_fmt_ms(r['min_ms']):>11}"
                         f"{_fmt_ms(r['max_ms']):>11}{pct}")

    ops = stats["operators"]
    section("operator: forward (executor steps)", ops[_FORWARD])
    section("operator: backward (executor steps)", ops[_BACKWARD])
    section("operator: imperative (engine ops)", ops[_IMPERATIVE])
    section("executor passes (whole programs; Percent of all passes)", stats["executor_passes"])
    if stats["layers"]:
        title = "layer (executor steps by layer or node)"
        lines.extend(["", title, "=" * len(title),
                      f"{'Name':<44}{'Steps':>8}{'Forward (ms)':>14}{'Backward (ms)':>15}"
                      f"{'Total (ms)':>13}{'Percent':>9}"])
        for r in stats["layers"]:
            lines.append(f"{r['name'][:43]:<44}{r['count']:>8}{_fmt_ms(r['forward_ms']):>14}"
                         f"{_fmt_ms(r['backward_ms']):>15}{_fmt_ms(r['total_ms']):>13}"
                         f"{r['percent']:8.2f}%")
    section("engine queue wait (push to start)", stats["queue_wait"], percent=False)
    section("user events (Task, Frame, Event)", stats["user"], percent=False)
    if stats["memory"]:
        title = "memory: bytes allocated (profile_memory)"
        lines.extend(["", title, "=" * len(title),
                      f"{'Name':<44}{'Count':>8}{'Total (kB)':>14}{'Avg (kB)':>12}"])
        for r in stats["memory"]:
            lines.append(f"{r['name'][:43]:<44}{r['count']:>8}{r['total_bytes'] / 1024:>14.1f}"
                         f"{r['avg_bytes'] / 1024:>12.1f}")
    return "\n".join(lines)


def _json_stats(stats):
    def block(rows):
        return {r["name"]: {"Count": r["count"], "Total": r["total_ms"], "Min": r["min_ms"],
                            "Max": r["max_ms"], "Avg": r["avg_ms"], "Percent": r["percent"]}
                for r in rows}
    ops = stats["operators"]
    doc = {"Time": {"operator_forward": block(ops[_FORWARD]),
                    "operator_backward": block(ops[_BACKWARD]),
                    "operator_imperative": block(ops[_IMPERATIVE]),
                    "executor": block(stats["executor_passes"]),
                    "queue_wait": block(stats["queue_wait"]),
                    "user": block(stats["user"]),
                    "layer": {r["name"]: {"Count": r["count"], "Forward": r["forward_ms"],
                                          "Backward": r["backward_ms"], "Total": r["total_ms"],
                                          "Percent": r["percent"]} for r in stats["layers"]}},
           "Memory": {"allocated": {r["name"]: {"Count": r["count"], "Total": r["total_bytes"],
                                                "Avg": r["avg_bytes"]}
                                    for r in stats["memory"]}},
           "Unit": {"Time": "ms", "Memory": "bytes"}}
    return json.dumps(doc, indent=2)


# -- the process-wide session (MXNet's module functions) ------------------------------
_session = Profile()


def set_config(**kwargs):
    """Configure the profiler (MXNet's keywords).

    Args:
        filename: Where :func:`dump` writes the Chrome trace
            (``'profile.json'``).
        profile_all: Record everything below.
        profile_symbolic: Executor passes and their steps (default True).
        profile_imperative: Imperative engine ops (default True).
        profile_memory: Bytes allocated (see the module docstring).
        profile_api: The engine's wait markers (``wait_for_var``), i.e. the
            time the engine spends on reads from Python.
        aggregate_stats: Accepted; statistics are always kept.
        contiguous_dump, continuous_dump, dump_period, profile_process,
            gpu_memory_profile_tag: Accepted for MXNet scripts; no effect.
        layer_names: Layer names for the per-layer table (deepkit's own).
    """
    _session.set_config(**kwargs)


def set_state(state="stop", profile_process="worker"):
    """``'run'`` starts recording, ``'stop'`` stops it (waiting for pushed work first)."""
    del profile_process
    _session.set_state(state)


def get_state():
    """``'run'`` or ``'stop'``."""
    return _session.state


def pause(profile_process="worker"):
    """Pause recording (MXNet's ``profiler.pause``)."""
    del profile_process
    _session.pause()


def resume(profile_process="worker"):
    """Resume recording after :func:`pause`."""
    del profile_process
    _session.resume()


def dump(finished=True, profile_process="worker"):
    """Write the Chrome trace to the configured file (atomically); returns its path."""
    del profile_process
    return _session.dump(finished)


def dumps(reset=False, format="table", sort_by="total", ascending=False):
    """The statistics as a table or JSON; see :meth:`Profile.dumps`."""
    return _session.dumps(reset, format, sort_by, ascending)


def profile(filename=None, **config):
    """A profiling session for a ``with`` block: ``with profile("t.json") as p:``.

    Args:
        filename: The trace is written here when the block ends without an
            exception (None: not written; ``p.dump(filename=...)`` later).
        **config: :func:`set_config` options (default: symbolic and
            imperative ops; ``profile_all=True`` for everything).

    Returns:
        A :class:`Profile`; after the block, ``p.dumps()``, ``p.stats()``,
        ``p.trace()``.
    """
    return Profile(filename=filename, **config)


# -- user annotations (MXNet's Domain, Task, Frame, Event, Counter, Marker) -----------
def _running_recorder():
    rec = _engine_mod._profiler
    return rec if isinstance(rec, _Recorder) else None


class Domain:
    """A name that groups annotations (MXNet's ``profiler.Domain``)."""

    def __init__(self, name):
        self.name = str(name)

    def __str__(self):
        return self.name

    def new_task(self, name):
        return Task(self, name)

    def new_frame(self, name):
        return Frame(self, name)

    def new_counter(self, name, value=None):
        return Counter(self, name, value)

    def new_marker(self, name):
        return Marker(self, name)


class _Span:
    def __init__(self, domain, name):
        self.domain = domain
        self.name = str(name)
        self._start = None

    def start(self):
        """Mark the beginning of the span."""
        self._start = time.perf_counter()

    def stop(self):
        """Record the span (when the profiler runs)."""
        if self._start is None:
            raise DeepkitError(f"profiler: {type(self).__name__} '{self.name}' stopped before "
                               "start()")
        rec = _running_recorder()
        if rec is not None:
            args = {"domain": str(self.domain)} if self.domain is not None else {}
            rec.user_event(_USER, self.name, self._start, time.perf_counter(), args)
        self._start = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


class Task(_Span):
    """A named span of work in a domain (``task.start()`` ... ``task.stop()``)."""


class Frame(_Span):
    """A named span, usually one iteration (``frame.start()`` ... ``frame.stop()``)."""


class Event(_Span):
    """A named span without a domain (``Event(name).start()`` ... ``.stop()``)."""

    def __init__(self, name):
        super().__init__(None, name)


class Marker:
    """An instant in the trace (MXNet's ``profiler.Marker``: an ``"i"`` event)."""

    def __init__(self, domain, name):
        self.domain = domain
        self.name = str(name)

    def mark(self, scope="process"):
        """Record the instant (when the profiler runs)."""
        rec = _running_recorder()
        if rec is not None:
            now = time.perf_counter()
            rec.user_event(_MARKER, self.name, now, now, {"domain": str(self.domain),
                                                          "scope": scope})


class Counter:
    """A named value (MXNet's ``profiler.Counter``: ``set_value``, ``+=``, ``-=``).

    While the profiler runs, every change is a ``"C"`` event: the trace
    viewer draws the value over time.
    """

    def __init__(self, domain, name, value=None):
        self.domain = domain
        self.name = str(name)
        self.value = 0
        if value is not None:
            self.set_value(value)

    def set_value(self, value):
        self.value = value
        rec = _running_recorder()
        if rec is not None:
            now = time.perf_counter()
            rec.user_event(_COUNTER, self.name, now, now, {"value": value})

    def increment(self, delta=1):
        self.set_value(self.value + delta)

    def decrement(self, delta=1):
        self.set_value(self.value - delta)

    def __iadd__(self, delta):
        self.increment(delta)
        return self

    def __isub__(self, delta):
        self.decrement(delta)
        return self


@contextlib.contextmanager
def scope(name="<unk>:", append_mode=False):
    """Record the block as a user event named ``name`` (MXNet's ``profiler.scope``)."""
    del append_mode
    event = Event(name)
    event.start()
    try:
        yield
    finally:
        event.stop()
