"""Profiler: profile a window of training batches (per-op tables and a Chrome trace).

``fit(profile_batches=(10, 20))`` appends one of these; it follows Keras's
``TensorBoard(profile_batch=...)`` convention: batches are counted from 1
over the whole ``fit`` call (the count continues across epochs), and both
ends of the window are included.
"""
import os
import time

from deepkit_engine import profiler as _profiler

from .base import Callback

__all__ = ["Profiler", "parse_batches"]


def parse_batches(batches, where="Profiler", arg="batches"):
    """``(start, stop)`` from an int N (batch N only) or a pair of positive ints.

    Raises:
        ValueError: Anything else, naming the argument ``arg`` of ``where``.
    """
    if isinstance(batches, int) and not isinstance(batches, bool):
        batches = (batches, batches)
    ok = (isinstance(batches, (tuple, list)) and len(batches) == 2
          and all(isinstance(b, int) and not isinstance(b, bool) for b in batches)
          and 1 <= batches[0] <= batches[1])
    if not ok:
        raise ValueError(f"{where}: '{arg}' must be a positive int or a pair (start, stop) "
                         f"with 1 <= start <= stop (batches counted from 1). "
                         f"Received: {arg}={batches!r}")
    return int(batches[0]), int(batches[1])


class Profiler(Callback):
    """Profile training batches ``start`` to ``stop`` (inclusive, counted from 1).

    When the window ends (or training ends inside it) the engine is drained,
    and the Chrome trace is written to ``filename`` and the tables (per op,
    forward and backward apart, per layer, queue wait, memory) to the same
    path with the extension ``.txt``; both writes are atomic. Nothing is
    written when training ends before batch ``start``.

    Each profiled batch also appears in the trace as a user event
    ``train batch N`` spanning its Python side (``train_step`` up to the
    return of the push; the engine may still be running it afterwards).

    Args:
        batches: ``(start, stop)``, or an int for a single batch.
        filename: Path of the trace (its folder is created if missing).
        profile_memory: Also count the bytes allocated (see
            :mod:`deepkit_engine.profiler`).

    Attributes:
        profile: The :class:`deepkit_engine.profiler.Profile` of the window
            (``None`` until it starts): ``profile.stats()``, ``profile.dumps()``.
        trace_path, table_path: The files written (``None`` until then).
    """

    def __init__(self, batches=(10, 20), filename="profile.json", profile_memory=False,
                 _where=("Profiler", "batches")):
        super().__init__()
        self.start, self.stop = parse_batches(batches, *_where)
        self.filename = os.fspath(filename)
        self.profile_memory = bool(profile_memory)
        self.profile = None
        self.trace_path = self.table_path = None
        self._batch = 0
        self._batch_start = None

    def on_train_begin(self, logs=None):
        self._batch = 0
        self.profile = None
        self.trace_path = self.table_path = None

    def _layer_names(self):
        return [layer.name for layer in getattr(self.model, "layers", None) or ()
                if getattr(layer, "name", None)]

    def on_train_batch_begin(self, batch, logs=None):
        self._batch += 1
        if self._batch == self.start and self.profile is None:
            self.profile = _profiler.profile(layer_names=self._layer_names(),
                                             profile_memory=self.profile_memory)
            self.profile.set_state("run")
        if self._running():
            self._batch_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if not self._running():
            return
        self.profile.add_event(f"train batch {self._batch}", self._batch_start,
                               time.perf_counter(), batch=self._batch)
        if self._batch >= self.stop:
            self._finish()

    def on_train_end(self, logs=None):
        if self._running():
            self._finish()

    def _running(self):
        return self.profile is not None and self.profile.state == "run"

    def _finish(self):
        self.profile.set_state("stop")
        folder = os.path.dirname(os.path.abspath(self.filename))
        os.makedirs(folder, exist_ok=True)
        self.trace_path = self.profile.dump(filename=self.filename)
        self.table_path = self.profile.write_table(os.path.splitext(self.filename)[0] + ".txt")
