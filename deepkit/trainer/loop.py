"""The one loop behind ``fit``, ``evaluate`` and ``predict``, and its public state.

Each batch goes through the model's step (``train_step``, ``test_step``,
``predict_step``); the loop around it handles epochs, callbacks, progress
and the logs. Steps push their work to the engine without waiting and
return their logs lazily (:class:`Logs`), so the loop reads them (which
waits) only when someone looks: about twice a second for the progress bar,
after every batch when a callback sets ``requires_batch_logs``, and at the
end of each epoch.

Callbacks see the loop through :class:`LoopState` (``callback.loop``): the
epoch and step, the batch being processed, the last logs, and the resume
point that ``BackupAndRestore`` sets.
"""
import collections.abc
import time
import warnings

from deepkit_engine import engine

from .data import unpack_x_y_sample_weight

__all__ = ["LoopState", "Logs", "read_logs", "run_fit", "run_evaluate", "run_predict",
           "LOG_INTERVAL_S"]

#: Reading the logs waits for the engine, which stops Python from queueing the
#: next batches while the current ones run; so the progress bar reads them at
#: most this often.
LOG_INTERVAL_S = 0.5


class Logs(collections.abc.Mapping):
    """Step logs whose values are read only when looked up (reading may wait).

    Args:
        readers: ``{name: value or zero-argument function}``; functions are
            called on first access and their result kept.
    """

    def __init__(self, readers):
        self._readers = dict(readers)
        self._values = {}

    def __getitem__(self, key):
        if key not in self._values:
            reader = self._readers[key]
            self._values[key] = reader() if callable(reader) else reader
        return self._values[key]

    def __iter__(self):
        return iter(self._readers)

    def __len__(self):
        return len(self._readers)

    def __repr__(self):
        return f"Logs({list(self._readers)})"


def read_logs(logs):
    """A plain dict of floats from what a step returned (a dict, :class:`Logs` or None)."""
    if not logs:
        return {}
    out = {}
    for key in logs:
        value = logs[key]
        if hasattr(value, "asnumpy"):
            value = value.asnumpy()
        if hasattr(value, "item") and getattr(value, "size", 1) == 1:
            value = value.item()
        out[key] = value
    return out


class LoopState:
    """What a running loop exposes to callbacks (``callback.loop``).

    Attributes:
        mode: ``'fit'``, ``'evaluate'`` or ``'predict'``.
        epochs: Epochs of this ``fit``.
        steps: Batches per epoch, or None when the data does not say.
        epoch: The current epoch (0-based).
        step: The current batch within the epoch (0-based).
        initial_epoch: The epoch training starts at; a callback may move it
            in ``on_train_begin`` (``BackupAndRestore`` resumes this way).
        batch: The current batch, ``(x, y, sample_weight)`` as the step
            receives it, while a batch is being processed; else None.
        batch_size: Real samples in the current batch.
        seen: Samples processed so far in this epoch.
        logs: The last logs read (a dict), per batch or epoch.
        epoch_seconds: Wall time of the last epoch's training part, measured
            once all its work had finished (validation not included).
        stop: Set ``model.stop_training = True`` (or this) to stop after the
            current batch.
    """

    def __init__(self, mode, epochs=1, steps=None, initial_epoch=0):
        self.mode = mode
        self.epochs = epochs
        self.steps = steps
        self.epoch = initial_epoch
        self.initial_epoch = initial_epoch
        self.step = 0
        self.batch = None
        self.batch_size = 0
        self.seen = 0
        self.logs = {}
        self.epoch_seconds = 0.0
        self.data_seconds = 0.0
        self.stop = False

    def data_share(self, elapsed):
        """The share of ``elapsed`` seconds spent waiting for data."""
        return self.data_seconds / elapsed if elapsed > 0 else 0.0


def _timed(batches, state):
    """Yield from ``batches``, adding the time spent producing them to the state."""
    it = iter(batches)
    while True:
        t0 = time.perf_counter()
        try:
            item = next(it)
        except StopIteration:
            return
        state.data_seconds += time.perf_counter() - t0
        yield item


def run_epoch(model, source, state, callbacks):
    """One training epoch: ``model.train_step`` per batch; returns the epoch's logs."""
    model.reset_metrics()
    state.seen, state.data_seconds = 0, 0.0
    start = last_read = time.perf_counter()
    logs = None
    for step, (n, data) in enumerate(_timed(source.batches(), state)):
        state.step, state.batch, state.batch_size = step, data, n
        callbacks.call("on_train_batch_begin", step, {})
        with engine.bulk():  # the step's small ops (metrics, updates) as few engine pushes
            logs = model.train_step(data)
        state.seen += n
        now = time.perf_counter()
        if callbacks.requires_batch_logs or now - last_read >= LOG_INTERVAL_S:
            state.logs = read_logs(logs)  # waits for the queued work
            last_read = time.perf_counter()
            elapsed = max(time.perf_counter() - start, 1e-9)
            published = dict(state.logs)
            published["samples/s"] = round(state.seen / elapsed)
            published["data"] = f"{100 * state.data_share(elapsed):.0f}%"
            callbacks.call("on_train_batch_end", step, published)
        else:
            callbacks.call("on_train_batch_end", step, None)
        if model.stop_training or state.stop:
            break
    state.batch = None
    state.logs = read_logs(logs if logs is not None else model.get_metrics_result())
    aggregate = getattr(model, "aggregate_logs", None)
    if aggregate is not None:
        state.logs = aggregate(state.logs)  # averaged over MPI ranks when distributed
    state.epoch_seconds = time.perf_counter() - start
    return dict(state.logs)


def run_fit(model, source, state, callbacks, validate=None):
    """Epochs from ``state.initial_epoch`` (after ``on_train_begin``) to ``state.epochs``.

    Args:
        model: The model (its ``train_step`` and ``stop_training``).
        source: Where the batches come from.
        state: The :class:`LoopState` the callbacks see.
        callbacks: A :class:`~deepkit.callbacks.CallbackList`.
        validate: None, or a function returning the validation logs (a dict
            without the ``val_`` prefix) at the end of each epoch.
    """
    model.stop_training = False
    callbacks.call("on_train_begin", {})
    for epoch in range(state.initial_epoch, state.epochs):
        state.epoch = epoch
        callbacks.call("on_epoch_begin", epoch, {})
        logs = run_epoch(model, source, state, callbacks)
        if state.seen == 0 and not (model.stop_training or state.stop):
            if epoch == state.initial_epoch:
                raise ValueError("fit: the data gave no batches: the data set is empty, or the "
                                 "iterator was already exhausted")
            warnings.warn(f"fit: the data ran out at epoch {epoch}: the iterable gave no "
                          f"batches, so training stops; pass a DataIter (it is reset each "
                          f"epoch), a re-iterable, or steps_per_epoch", stacklevel=3)
            break
        if validate is not None:
            logs.update({f"val_{k}": v for k, v in validate().items()})
        state.logs = logs
        callbacks.call("on_epoch_end", epoch, logs)
        if model.stop_training or state.stop:
            break
    callbacks.call("on_train_end", {})


def run_evaluate(model, source, state=None, callbacks=None):
    """``model.test_step`` on every batch; returns the logs (a dict of floats)."""
    state = state or LoopState("evaluate", steps=source.num_batches)
    model.reset_metrics()
    if callbacks is not None:
        callbacks.call("on_test_begin", {})
    logs = None
    for step, (n, data) in enumerate(source.batches()):
        state.step, state.batch, state.batch_size = step, data, n
        if callbacks is not None:
            callbacks.call("on_test_batch_begin", step, {})
        with engine.bulk():
            logs = model.test_step(data)
        state.seen += n
        if callbacks is not None:
            callbacks.call("on_test_batch_end", step, None)
    if logs is None:
        raise ValueError("evaluate: the data gave no batches: the data set is empty, or the "
                         "iterator was already exhausted")
    state.batch = None
    state.logs = read_logs(logs if logs is not None else model.get_metrics_result())
    if callbacks is not None:
        callbacks.call("on_test_end", dict(state.logs))
    return dict(state.logs)


def run_predict(model, source, state=None):
    """``model.predict_step`` on every batch; returns the outputs per batch (lists)."""
    state = state or LoopState("predict", steps=source.num_batches)
    chunks = None
    for step, (n, data) in enumerate(source.batches()):
        state.step, state.batch, state.batch_size = step, data, n
        x, _, _ = unpack_x_y_sample_weight(data)
        with engine.bulk():
            outs = model.predict_step(x)
        outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        if chunks is None:
            chunks = [[] for _ in outs]
        for i, o in enumerate(outs):
            chunks[i].append(o[:n] if o.shape[0] != n else o)
        state.seen += n
    state.batch = None
    return chunks or []
