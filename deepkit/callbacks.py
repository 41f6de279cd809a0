"""Callbacks: hooks into ``fit`` (Keras's API and behaviour).

History and the progress bar are added by ``fit`` itself; the others are
passed in ``fit(callbacks=[...])``: EarlyStopping, ModelCheckpoint,
ReduceLROnPlateau, LearningRateScheduler, CSVLogger, TerminateOnNaN and
BackupAndRestore.

A callback that monitors a quantity (``monitor='val_loss'``) raises a
ValueError naming the quantities that do exist when the monitored one is not
logged, instead of Keras's warning: a misspelt metric would otherwise turn
early stopping or checkpointing off without anyone noticing.

Every callback can describe its state with ``get_state()``/``set_state()``
(plain numbers, strings, lists, dicts and numpy arrays), which is what
BackupAndRestore saves so that an interrupted run resumes exactly.
"""
import collections
import csv
import inspect
import json
import math
import os
import sys
import time
import warnings

import numpy as np

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger", "EarlyStopping",
           "ModelCheckpoint", "ReduceLROnPlateau", "LearningRateScheduler", "CSVLogger",
           "TerminateOnNaN", "BackupAndRestore"]


class Callback:
    """Base class. ``self.model`` and ``self.params`` are set before training.

    Attributes:
        requires_batch_logs: When True, ``fit`` passes the logs (running loss
            and metrics) to ``on_train_batch_end`` after every batch. By
            default it passes them only about 20 times per epoch, because
            reading them waits for the engine and so stalls the pipeline.
    """

    requires_batch_logs = False

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        pass

    def on_test_begin(self, logs=None):
        pass

    def on_test_end(self, logs=None):
        pass

    def on_test_batch_begin(self, batch, logs=None):
        pass

    def on_test_batch_end(self, batch, logs=None):
        pass

    def on_predict_begin(self, logs=None):
        pass

    def on_predict_end(self, logs=None):
        pass

    def get_state(self):
        """What BackupAndRestore saves so that a resumed run behaves identically.

        Returns:
            A dict of plain values (numbers, strings, None, lists, dicts, numpy
            arrays); empty when the callback keeps nothing between epochs.
        """
        return {}

    def set_state(self, state):
        """Take back what :meth:`get_state` returned (called after ``on_train_begin``)."""


class CallbackList:
    """Calls every callback's hook in order.

    BackupAndRestore callbacks are moved to the end: their ``on_train_begin``
    restores the other callbacks' state after those have reset themselves,
    and their ``on_epoch_end`` saves it after the others have updated it for
    the epoch.
    """

    def __init__(self, callbacks, model, params):
        callbacks = list(callbacks)
        backups = [c for c in callbacks if isinstance(c, BackupAndRestore)]
        self.callbacks = [c for c in callbacks if not isinstance(c, BackupAndRestore)] + backups
        for c in self.callbacks:
            c.set_model(model)
            c.set_params(params)
        for c in backups:
            c.set_callbacks(self.callbacks)
        #: Whether some callback wants the logs after every training batch.
        self.requires_batch_logs = any(getattr(c, "requires_batch_logs", False)
                                       for c in self.callbacks)

    def __iter__(self):
        return iter(self.callbacks)

    def call(self, hook, *args):
        for c in self.callbacks:
            getattr(c, hook)(*args)


class History(Callback):
    """Records the epoch logs: ``history.history['loss']`` and so on."""

    def __init__(self):
        super().__init__()
        self.epoch = []
        self.history = {}

    def on_train_begin(self, logs=None):
        if not self.epoch:
            self.history = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def get_state(self):
        return {"epoch": list(self.epoch), "history": {k: list(v) for k, v in self.history.items()}}

    def set_state(self, state):
        self.epoch = list(state.get("epoch", []))
        self.history = {k: list(v) for k, v in state.get("history", {}).items()}

    def plot(self, path, keys=None):
        """Write a PNG of the curves (needs matplotlib, the ``viz`` extra).

        Args:
            path: Output PNG file (written atomically).
            keys: Which logs to draw (default: all); ``val_x`` shares a panel with ``x``.
        """
        try:
            import matplotlib  # noqa: PLC0415
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt  # noqa: PLC0415
        except ImportError as err:
            raise ImportError("History.plot needs matplotlib: pip install 'deepkit[viz]'") \
                from err
        from .saving import atomic_write  # noqa: PLC0415
        keys = keys or [k for k in self.history if not k.startswith("val_")]
        fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3), squeeze=False)
        for ax, key in zip(axes[0], keys):
            ax.plot(self.epoch, self.history[key], label=key)
            if f"val_{key}" in self.history:
                ax.plot(self.epoch, self.history[f"val_{key}"], label=f"val_{key}")
            ax.set_xlabel("epoch")
            ax.set_title(key)
            ax.legend()
        fig.tight_layout()
        with atomic_write(path) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)
        return path


def _format_logs(logs):
    parts = []
    for k, v in logs.items():
        if isinstance(v, float):
            parts.append(f"{k}: {v:.4g}")
        else:
            parts.append(f"{k}: {v}")
    return " - ".join(parts)


class ProgbarLogger(Callback):
    """The per-epoch progress bar (tqdm) with loss, metrics, samples/s and data share.

    ``verbose=1``: a live bar on a terminal; when output is not a terminal (a log
    file, CI) it prints one line per epoch instead of a carriage-return flood.
    ``verbose=2``: one line per epoch.
    """

    def __init__(self, verbose=1, stream=None):
        super().__init__()
        self.verbose = verbose
        self.stream = stream
        self._bar = None

    def _stream(self):
        return self.stream or sys.stderr

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._start = time.perf_counter()
        stream = self._stream()
        live = self.verbose == 1 and hasattr(stream, "isatty") and stream.isatty()
        if live:
            from tqdm import tqdm  # noqa: PLC0415
            self._bar = tqdm(total=self.params.get("steps"), file=stream,
                             desc=f"Epoch {epoch + 1}/{self.params.get('epochs')}",
                             unit="batch", leave=True, dynamic_ncols=True, mininterval=0.25)
        else:
            self._bar = None

    def on_train_batch_end(self, batch, logs=None):
        if self._bar is not None:
            self._bar.update(1)
            if logs and self._bar.n % max(1, (self.params.get("steps") or 50) // 20) == 0:
                self._bar.set_postfix_str(_format_logs(logs), refresh=False)

    def on_epoch_end(self, epoch, logs=None):
        if self.verbose == 0:
            return
        elapsed = time.perf_counter() - self._start
        text = _format_logs(logs or {})
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)
            self._bar.close()
            self._bar = None
        else:
            print(f"Epoch {epoch + 1}/{self.params.get('epochs')} - {elapsed:.1f}s - {text}",
                  file=self._stream(), flush=True)


# -- monitored quantities ------------------------------------------------------------

#: Parts of a quantity's name that mean "higher is better" / "lower is better".
_MAX_WORDS = ("acc", "auc", "precision", "recall", "f1", "fbeta", "iou", "r2", "psnr", "ssim",
              "cosine_similarity", "true_positives", "true_negatives")
_MIN_WORDS = ("loss", "error", "mse", "mae", "mape", "msle", "rmse", "crossentropy", "hinge",
              "divergence", "kl", "poisson", "perplexity", "huber", "logcosh",
              "false_positives", "false_negatives")


def _model_metrics(model):
    found = getattr(model, "metrics", None)
    if found is None:
        found = []
        for entry in getattr(model, "_metrics", None) or []:
            found.extend(entry if isinstance(entry, (list, tuple)) else [entry])
    return list(found)


def _direction(monitor, model=None):
    """``'min'``, ``'max'`` or None (unknown) for a logged quantity's name."""
    name = monitor[4:] if monitor.startswith("val_") else monitor
    for m in _model_metrics(model):
        direction = getattr(m, "direction", None)
        if getattr(m, "name", None) == name and direction in ("up", "down"):
            return "max" if direction == "up" else "min"
    low = name.lower()
    if low.endswith("loss"):
        return "min"
    if any(w in low for w in _MAX_WORDS):
        return "max"
    if any(w in low for w in _MIN_WORDS):
        return "min"
    return None


def _is_number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _missing_monitor(who, monitor, logs):
    from deepkit_engine.base import did_you_mean  # noqa: PLC0415
    available = [k for k, v in logs.items() if _is_number(v)]
    message = (f"{who}: monitor={monitor!r} is not a logged quantity"
               f"{did_you_mean(monitor, available)}; the logs have: "
               f"{', '.join(available) if available else 'nothing'}")
    if monitor.startswith("val_") and not any(k.startswith("val_") for k in logs):
        message += (". Validation quantities ('val_...') exist only when fit() is given "
                    "validation_data or validation_split")
    else:
        message += ". Metrics are chosen with compile(metrics=[...])"
    return message


def _check_choice(who, arg, value, choices):
    if value not in choices:
        raise ValueError(f"{who}: '{arg}' must be one of {', '.join(map(repr, choices))}. "
                         f"Received: {arg}={value!r}")


def _check_count(who, arg, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{who}: '{arg}' must be a non-negative int. Received: {arg}={value!r}")
    return int(value)


def _check_real(who, arg, value, minimum=None):
    if not _is_number(value) or not math.isfinite(float(value)) \
            or (minimum is not None and value < minimum):
        bound = f" >= {minimum}" if minimum is not None else ""
        raise ValueError(f"{who}: '{arg}' must be a finite number{bound}. "
                         f"Received: {arg}={value!r}")
    return float(value)


class _MonitorCallback(Callback):
    """Shared by the callbacks that watch one logged quantity (``monitor``).

    ``mode='auto'`` takes the direction from the metric object when it says
    (``direction = 'up'/'down'``), else from the name: accuracy, AUC,
    precision, recall, F1 ... are maximized; losses and errors minimized.
    """

    def __init__(self, monitor, mode, min_delta, baseline):
        super().__init__()
        who = type(self).__name__
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(f"{who}: 'monitor' must be the name of a logged quantity such as "
                             f"'val_loss'. Received: monitor={monitor!r}")
        _check_choice(who, "mode", mode, ("auto", "min", "max"))
        self.monitor = monitor
        self.mode = mode
        self.min_delta = abs(_check_real(who, "min_delta", min_delta))
        self.baseline = None if baseline is None else _check_real(who, "baseline", baseline)
        self._op = None

    def _resolve_mode(self):
        if self._op is None:
            op = self.mode if self.mode != "auto" else _direction(self.monitor, self.model)
            if op is None:
                raise ValueError(f"{type(self).__name__}: cannot tell whether "
                                 f"monitor={self.monitor!r} should be minimized or maximized; "
                                 "pass mode='min' or mode='max'")
            self._op = op
        return self._op

    def _monitor_value(self, logs):
        logs = logs if logs is not None else {}
        value = logs.get(self.monitor)
        if value is None:
            raise ValueError(_missing_monitor(type(self).__name__, self.monitor, logs))
        self._resolve_mode()
        return float(value)

    def _is_improvement(self, value, reference):
        if math.isnan(value):
            return False
        if reference is None:
            return True
        if self._resolve_mode() == "min":
            return value < reference - self.min_delta
        return value > reference + self.min_delta


def _require_constant_lr(who, model):
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        raise ValueError(f"{who}: model '{model.name}' has no optimizer; compile it first")
    if callable(optimizer.learning_rate):
        raise ValueError(
            f"{who}: the optimizer's learning rate is a schedule "
            f"({type(optimizer.learning_rate).__name__}), which sets it at every step, so "
            f"{who} cannot change it. Compile with a float learning_rate to use {who}")
    return optimizer


def _say(verbose, text):
    if verbose:
        print(text, flush=True)


# -- EarlyStopping -----------------------------------------------------------------------

class EarlyStopping(_MonitorCallback):
    """Stop training when a monitored quantity has stopped improving.

    At the end of each epoch the monitored value is compared with the best so
    far; after ``patience`` epochs without an improvement of more than
    ``min_delta`` training stops (``model.stop_training = True``).

    Args:
        monitor: The logged quantity to watch (``'val_loss'``, ``'accuracy'``...).
        min_delta: Smallest change that counts as an improvement.
        patience: Epochs without improvement before stopping.
        verbose: 1 prints when training stops and when weights are restored.
        mode: ``'min'``, ``'max'`` or ``'auto'`` (from the quantity's name).
        baseline: Training also stops after ``patience`` epochs that do not
            beat this value, even if they improve on each other.
        restore_best_weights: At the end of training (stopped early or not),
            set the weights of the best epoch, bit for bit.
        start_from_epoch: Epochs of warm-up during which nothing is watched.

    Raises:
        ValueError: At the first epoch end, when ``monitor`` is not logged (the
            message lists what is).
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, min_delta, baseline)
        self.patience = _check_count("EarlyStopping", "patience", patience)
        self.start_from_epoch = _check_count("EarlyStopping", "start_from_epoch",
                                             start_from_epoch)
        self.verbose = verbose
        self.restore_best_weights = bool(restore_best_weights)
        self._reset()

    def _reset(self):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_epoch = 0
        self.best_weights = None

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        current = self._monitor_value(logs)
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            # the wait restarts only when the baseline is beaten too
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0:
            _say(self.verbose, f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            _say(self.verbose, "Restoring model weights from the end of the best epoch: "
                               f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)

    def get_state(self):
        return {"wait": self.wait, "stopped_epoch": self.stopped_epoch, "best": self.best,
                "best_epoch": self.best_epoch, "best_weights": self.best_weights}

    def set_state(self, state):
        self.wait = int(state["wait"])
        self.stopped_epoch = int(state["stopped_epoch"])
        self.best = state["best"]
        self.best_epoch = int(state["best_epoch"])
        weights = state.get("best_weights")
        self.best_weights = None if weights is None else [np.asarray(w) for w in weights]


# -- ModelCheckpoint ---------------------------------------------------------------------

class ModelCheckpoint(_MonitorCallback):
    """Save the model (or its weights) during training.

    Every file is written under a temporary name and renamed into place, so
    an interrupted save never leaves a damaged or half-written checkpoint.

    Args:
        filepath: Where to save; may hold ``{epoch}`` (1-based), ``{batch}``
            and any logged quantity, with format specs:
            ``'ckpt-{epoch:02d}-{val_loss:.2f}.h5'``. Missing folders are created.
        monitor: The quantity deciding what is "best" with ``save_best_only``.
        verbose: 1 prints each decision.
        save_best_only: Save only when ``monitor`` improves on the best so far.
        save_weights_only: ``model.save_weights`` instead of ``model.save``
            (the whole model: architecture, weights, optimizer state).
        mode: ``'min'``, ``'max'`` or ``'auto'``.
        save_freq: ``'epoch'`` or a number of batches.
        initial_value_threshold: With ``save_best_only``, the value to beat
            for the first save.

    Attributes:
        last_saved: Path of the last file written, or None.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None):
        super().__init__(monitor, mode, 0, initial_value_threshold)
        self.filepath = os.fspath(filepath)
        if save_freq != "epoch" and (isinstance(save_freq, bool)
                                     or not isinstance(save_freq, (int, np.integer))
                                     or save_freq < 1):
            raise ValueError("ModelCheckpoint: 'save_freq' must be 'epoch' or a positive number "
                             f"of batches. Received: save_freq={save_freq!r}")
        self.save_freq = save_freq if save_freq == "epoch" else int(save_freq)
        self.verbose = verbose
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.best = self.baseline
        self.last_saved = None
        self.requires_batch_logs = self.save_freq != "epoch"
        self._batches_since_save = 0
        self._due = False
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches_since_save += 1
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            self._due = True
        if self._due and (logs is not None or not self.save_best_only):
            self._due = False
            self._save(self._epoch, batch, logs or {})

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, None, logs or {})

    def _path(self, epoch, batch, logs):
        values = dict(logs)
        values["epoch"] = epoch + 1
        if batch is not None:
            values["batch"] = batch + 1
        try:
            return self.filepath.format(**values)
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(f"ModelCheckpoint: cannot fill in filepath {self.filepath!r}: "
                             f"{type(err).__name__} {err}; the values available are "
                             f"{', '.join(values)}") from None

    def _save(self, epoch, batch, logs):
        path = self._path(epoch, batch, logs)
        where = f"Epoch {epoch + 1}" + (f", batch {batch + 1}" if batch is not None else "")
        if self.save_best_only:
            current = self._monitor_value(logs)
            best = "None" if self.best is None else f"{self.best:.5g}"
            if not self._is_improvement(current, self.best):
                _say(self.verbose, f"{where}: {self.monitor} did not improve from {best}")
                return
            _say(self.verbose, f"{where}: {self.monitor} improved from {best} to "
                               f"{current:.5g}, saving model to {path}")
            self.best = current
        else:
            _say(self.verbose, f"{where}: saving model to {path}")
        if os.path.isdir(path):
            raise IsADirectoryError(f"ModelCheckpoint: filepath {path!r} is an existing folder; "
                                    "give a file name, e.g. 'ckpt/model-{epoch:02d}.h5'")
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)
        self.last_saved = path

    def get_state(self):
        return {"best": self.best, "batches_since_save": self._batches_since_save,
                "due": self._due}

    def set_state(self, state):
        self.best = state["best"]
        self._batches_since_save = int(state["batches_since_save"])
        self._due = bool(state["due"])


# -- learning rate -----------------------------------------------------------------------

class ReduceLROnPlateau(_MonitorCallback):
    """Multiply the learning rate by ``factor`` when a quantity stops improving.

    Sets ``model.optimizer.lr`` (the optimizer must have a constant learning
    rate, not a schedule) and logs it as ``learning_rate``.

    Args:
        monitor: The logged quantity to watch.
        factor: New rate = rate * factor, in (0, 1).
        patience: Epochs without improvement before reducing.
        verbose: 1 prints each reduction.
        mode: ``'min'``, ``'max'`` or ``'auto'``.
        min_delta: Smallest change that counts as an improvement.
        cooldown: Epochs to wait after a reduction before watching again.
        min_lr: The learning rate never goes below this.
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0):
        super().__init__(monitor, mode, min_delta, None)
        factor = _check_real("ReduceLROnPlateau", "factor", factor)
        if not 0 < factor < 1:
            raise ValueError("ReduceLROnPlateau: 'factor' must be in (0, 1), the learning rate "
                             f"is multiplied by it. Received: factor={factor!r}")
        self.factor = factor
        self.patience = _check_count("ReduceLROnPlateau", "patience", patience)
        self.cooldown = _check_count("ReduceLROnPlateau", "cooldown", cooldown)
        self.min_lr = _check_real("ReduceLROnPlateau", "min_lr", min_lr, minimum=0)
        self.verbose = verbose
        self._reset()

    def _reset(self):
        self.best = None
        self.wait = 0
        self.cooldown_counter = 0

    def on_train_begin(self, logs=None):
        _require_constant_lr("ReduceLROnPlateau", self.model)
        self._reset()

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch, logs=None):
        optimizer = self.model.optimizer
        current = self._monitor_value(logs)
        if logs is not None:
            logs["learning_rate"] = optimizer.lr
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old = optimizer.lr
                if old > np.float32(self.min_lr):
                    new = max(old * self.factor, self.min_lr)
                    optimizer.lr = new
                    _say(self.verbose, f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning "
                                       f"rate to {new:.6g}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0

    def get_state(self):
        return {"best": self.best, "wait": self.wait, "cooldown_counter": self.cooldown_counter}

    def set_state(self, state):
        self.best = state["best"]
        self.wait = int(state["wait"])
        self.cooldown_counter = int(state["cooldown_counter"])


def _takes_two_args(fn):
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return True
    params = list(signature.parameters.values())
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch from ``schedule``.

    Args:
        schedule: ``schedule(epoch, lr) -> new lr`` (epoch 0-based, ``lr`` the
            current rate); ``schedule(epoch)`` is accepted too.
        verbose: 1 prints the rate set at each epoch.
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError("LearningRateScheduler: 'schedule' must be a function "
                            f"schedule(epoch, lr) -> lr. Received: schedule={schedule!r}")
        self.schedule = schedule
        self.verbose = verbose
        self._two_args = _takes_two_args(schedule)

    def on_train_begin(self, logs=None):
        _require_constant_lr("LearningRateScheduler", self.model)

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        lr = self.schedule(epoch, optimizer.lr) if self._two_args else self.schedule(epoch)
        if isinstance(lr, np.ndarray) and lr.ndim == 0:
            lr = lr[()]
        if not _is_number(lr) or not math.isfinite(float(lr)) or lr < 0:
            raise ValueError(f"LearningRateScheduler: schedule(epoch={epoch}) must return a "
                             f"finite non-negative float; it returned {lr!r}")
        optimizer.lr = float(lr)
        _say(self.verbose, f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                           f"{float(lr):.6g}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.model.optimizer.lr


# -- CSVLogger ---------------------------------------------------------------------------

def _csv_value(value):
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    if isinstance(value, (list, tuple, np.ndarray)):
        return f"[{', '.join(map(str, value))}]"
    return value


class CSVLogger(Callback):
    """Write the epoch logs to a CSV file, one row per epoch (flushed at once).

    The columns are ``epoch`` (0-based, as in Keras) and the logged quantities
    in sorted order. The file is opened at the first epoch end.

    Args:
        filename: The CSV file.
        separator: The one-character field separator.
        append: Append to an existing file (the header is written only when
            the file is empty) instead of overwriting it.
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError("CSVLogger: 'separator' must be one character. "
                             f"Received: separator={separator!r}")
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = bool(append)
        self.keys = None
        self._file = None
        self._writer = None
        self._resume_size = None

    def on_train_begin(self, logs=None):
        self._close()
        self.keys = None
        self._resume_size = None

    def _open(self):
        exists = os.path.exists(self.filename)
        if self._resume_size is not None and exists:
            # resumed by BackupAndRestore: drop rows written after the backup
            with open(self.filename, "r+b") as f:
                f.truncate(self._resume_size)
            mode, header = "a", self._resume_size == 0
        elif self.append:
            mode, header = "a", not exists or os.path.getsize(self.filename) == 0
        else:
            mode, header = "w", True
        self._resume_size = None
        self._file = open(self.filename, mode, newline="", encoding="utf-8")
        self._writer = csv.writer(self._file, delimiter=self.sep)
        if header:
            self._writer.writerow(["epoch"] + self.keys)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        if self._file is None:
            self._open()
        self._writer.writerow([epoch] + [_csv_value(logs.get(k, "NA")) for k in self.keys])
        self._file.flush()

    def on_train_end(self, logs=None):
        self._close()

    def _close(self):
        if self._file is not None and not self._file.closed:
            self._file.close()
        self._file = None
        self._writer = None

    def get_state(self):
        size = None
        if self._file is not None:
            self._file.flush()
            size = os.fstat(self._file.fileno()).st_size
        return {"keys": self.keys, "size": size}

    def set_state(self, state):
        self.keys = state.get("keys")
        if state.get("size") is not None:
            self._close()
            self._resume_size = int(state["size"])


# -- TerminateOnNaN ----------------------------------------------------------------------

def _finite(value):
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True


def _nonfinite_counts(array):
    array = np.asarray(array)
    if array.dtype.kind not in "fc":
        return None
    nan = int(np.isnan(array).sum())
    inf = int(np.isinf(array).sum())
    if not nan and not inf:
        return None
    return f"{nan + inf} of {array.size} values non-finite ({nan} NaN, {inf} inf)"


def _host_batch(values):
    out = {}
    for name, value in (values or {}).items():
        value = value() if callable(value) else value
        out[name] = value.asnumpy() if hasattr(value, "asnumpy") else np.asarray(value)
    return out


class TerminateOnNaN(Callback):
    """Stop training when the loss becomes NaN or infinite.

    It asks ``fit`` for the logs after every batch (``requires_batch_logs``),
    so the loss is checked after each one, which waits for the engine each
    batch (as Keras does); training then stops at once, or at the end of the
    epoch if the loop never gave per-batch logs.

    With ``debug=True`` it also says where the first non-finite value came
    from: it checks the failing batch's inputs and labels, the weights as they
    were before that batch, and replays the batch through every layer
    (``Model(model.inputs, [layer outputs])``, in inference mode) to name the
    first layer whose output is not finite. This keeps a copy of the weights
    before each batch, so it costs memory and time: use it to debug.

    Args:
        debug: Diagnose which layer first produced a non-finite value.
        raise_error: Raise a RuntimeError with the report instead of stopping
            quietly (``on_train_end`` is then not called).

    Attributes:
        report: The message of the last termination, or None.
        nan_epoch, nan_batch: Where the loss first became non-finite
            (0-based; ``nan_batch`` is None when only the epoch is known).
        nan_layer: With ``debug``, the name of the first layer with a
            non-finite output, or None.
    """

    requires_batch_logs = True

    def __init__(self, debug=False, raise_error=False):
        super().__init__()
        self.debug = bool(debug)
        self.raise_error = bool(raise_error)
        self._reset()

    def _reset(self):
        self.report = None
        self.nan_epoch = None
        self.nan_batch = None
        self.nan_layer = None
        self._snapshot = None
        self._epoch = 0
        self._done = False

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self.debug and not self._done:
            # lazy engine copies: the weights this batch starts from
            self._snapshot = [(p, p.data.copy() if p.data is not None else None)
                              for p in self.model.weights]

    def on_train_batch_end(self, batch, logs=None):
        if logs is None or self._done:
            return
        loss = logs.get("loss")
        if loss is not None and not _finite(loss):
            self._terminate(batch, loss)

    def on_epoch_end(self, epoch, logs=None):
        if self._done:
            return
        loss = (logs or {}).get("loss")
        if loss is not None and not _finite(loss):
            self._terminate(None, loss)

    def _terminate(self, batch, loss):
        self._done = True
        self.nan_epoch, self.nan_batch = self._epoch, batch
        where = f"batch {batch}" if batch is not None else \
            "an unknown batch (the loss was not logged after every batch)"
        lines = [f"Epoch {self._epoch + 1}, {where}: invalid loss {loss}, terminating training"]
        if self.debug:
            try:
                lines.append(self._diagnose(batch))
            except Exception as err:  # noqa: BLE001 - the report must not hide the NaN
                lines.append(f"debug: the replay of the batch failed: {type(err).__name__}: "
                             f"{err}")
        self.report = "\n".join(lines)
        if self.raise_error:
            raise RuntimeError(self.report)
        print(self.report, flush=True)
        self.model.stop_training = True

    # -- debugging -------------------------------------------------------------------
    def _diagnose(self, batch):
        model = self.model
        last = getattr(model, "_last_batch", None)
        if batch is None or last is None:
            return ("debug: the failing batch is not available from this fit loop, so no layer "
                    "can be named")
        _, xs, ys, _ = last
        inputs, labels = _host_batch(xs), _host_batch(ys)
        lines = ["debug:"]
        for what, values in (("input", inputs), ("label", labels)):
            for name, value in values.items():
                bad = _nonfinite_counts(value)
                if bad:
                    lines.append(f"  {what} '{name}' of the batch: {bad}; clean the data")
        snapshot = self._snapshot or []
        missing = not snapshot or any(s is None for _, s in snapshot)
        bad_weights = []
        for p, saved in snapshot:
            if saved is not None:
                bad = _nonfinite_counts(saved.asnumpy())
                if bad:
                    bad_weights.append(f"{p.name}: {bad}")
        if bad_weights:
            lines.append("  weights were already non-finite before this batch (an earlier "
                         "update diverged: lower the learning rate or clip gradients): "
                         + "; ".join(bad_weights))
        if missing:
            lines.append("  the weights before this batch were not captured (they were "
                         "created during it); the replay uses the current weights")
        lines.extend(self._replay(model, inputs, None if missing else snapshot))
        return "\n".join(lines)

    def _replay(self, model, inputs, snapshot):
        from .layers.base import InputLayer  # noqa: PLC0415
        from .models import Model  # noqa: PLC0415
        pairs = []
        for layer in model.layers:
            if isinstance(layer, InputLayer):
                continue
            index = 0
            while True:
                try:
                    out = layer.get_output_at(index)
                except IndexError:
                    break
                for tensor in out if isinstance(out, list) else [out]:
                    pairs.append((layer, tensor))
                index += 1
        name = f"{model.name}_nan_debug"
        try:
            probe = Model(model.inputs, [t for _, t in pairs], name=name)
        except ValueError:  # some calls of shared layers belong to other models
            kept = []
            for layer, tensor in pairs:
                try:
                    Model(model.inputs, [tensor], name=name)
                except ValueError:
                    continue
                kept.append((layer, tensor))
            pairs = kept
            probe = Model(model.inputs, [t for _, t in pairs], name=name)
        params = [p for p in model.weights if p.data is not None]
        ctx = params[0].data.ctx if params else None
        current = []
        if snapshot is not None:
            for p, saved in snapshot:
                current.append((p, p.data.copy()))
                saved.copyto(p.data)
        try:
            outputs = probe.predict(inputs, batch_size=len(next(iter(inputs.values()))),
                                    ctx=ctx)
        finally:
            for p, value in current:
                value.copyto(p.data)
        values = {id(t): v for t, v in zip(model.inputs, inputs.values())}
        for (_, tensor), value in zip(pairs, outputs):
            values[id(tensor)] = value
        for (layer, tensor), value in zip(pairs, outputs):
            bad = _nonfinite_counts(value)
            if not bad:
                continue
            self.nan_layer = layer.name
            line = (f"  layer '{layer.name}' ({type(layer).__name__}) is the first to produce "
                    f"a non-finite value (replayed in inference mode): its output "
                    f"{tuple(value.shape)} has {bad}")
            try:
                ins = layer.input if tensor.node_index == 0 else None
            except Exception:  # noqa: BLE001 - only for the report
                ins = None
            ins = ins if isinstance(ins, list) else [ins] if ins is not None else []
            finite_in = [values[id(t)] for t in ins if id(t) in values]
            if finite_in and all(_nonfinite_counts(v) is None for v in finite_in):
                biggest = max(float(np.max(np.abs(v))) if v.size else 0.0 for v in finite_in)
                line += f"; its input is finite (largest magnitude {biggest:.4g})"
            return [line]
        return ["  every layer output is finite when the batch is replayed in inference mode: "
                "the non-finite value comes from the loss (e.g. log(0) on probabilities of "
                "exactly 0 or 1: try from_logits=True), the labels, training-mode behaviour "
                "(Dropout, BatchNormalization batch statistics) or the backward pass"]


# -- BackupAndRestore --------------------------------------------------------------------

_RESERVED = ("__array__", "__tuple__", "__dict__")


def _encode(value, arrays, where):
    """JSON-ready data for ``value``; numpy arrays go to ``arrays`` by index."""
    if value is None or isinstance(value, (bool, str, int, float)):
        return value
    if hasattr(value, "asnumpy"):
        value = value.asnumpy()
    if isinstance(value, np.generic):
        arrays.append(np.asarray(value))
        return {"__array__": len(arrays) - 1, "scalar": True}
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufc":
            raise TypeError(f"BackupAndRestore: cannot save the {value.dtype} array at {where}; "
                            "only numeric and boolean arrays can be saved")
        arrays.append(value)
        return {"__array__": len(arrays) - 1}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if all(isinstance(k, str) and k not in _RESERVED for k in value):
            return {k: _encode(v, arrays, f"{where}.{k}") for k, v in value.items()}
        return {"__dict__": [[_encode(k, arrays, where), _encode(v, arrays, f"{where}[{k!r}]")]
                             for k, v in value.items()]}
    raise TypeError(f"BackupAndRestore: cannot save the {type(value).__name__} at {where}; a "
                    "state holds only numbers, strings, None, lists, tuples, dicts and numpy "
                    "arrays")


def _decode(value, arrays):
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if "__array__" in value:
        array = arrays[value["__array__"]]
        return array[()] if value.get("scalar") else np.asarray(array)
    if "__tuple__" in value:
        return tuple(_decode(v, arrays) for v in value["__tuple__"])
    if "__dict__" in value:
        return {_hashable(_decode(k, arrays)): _decode(v, arrays) for k, v in value["__dict__"]}
    return {k: _decode(v, arrays) for k, v in value.items()}


def _hashable(key):
    return key.item() if isinstance(key, np.generic) else key


def _write_state(path, state):
    import h5py  # noqa: PLC0415
    from .saving import atomic_write  # noqa: PLC0415
    arrays = []
    text = json.dumps(_encode(state, arrays, "state"))
    with atomic_write(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = BackupAndRestore.FORMAT
            f.attrs["version"] = 1
            f.create_dataset("state", data=np.frombuffer(text.encode("utf-8"), np.uint8))
            group = f.create_group("arrays")
            for i, array in enumerate(arrays):
                group.create_dataset(str(i), data=array)


def _read_state(path):
    import h5py  # noqa: PLC0415
    from deepkit_engine.base import DeepkitError  # noqa: PLC0415
    if not h5py.is_hdf5(path):
        raise DeepkitError(f"BackupAndRestore: {path} is not an HDF5 backup; delete it to start "
                           "afresh")
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != BackupAndRestore.FORMAT:
            raise DeepkitError(f"BackupAndRestore: {path} is not a deepkit backup; delete it "
                               "or choose another backup_dir")
        text = bytes(f["state"][()]).decode("utf-8")
        arrays = {int(k): v[()] for k, v in f["arrays"].items()}
    return _decode(json.loads(text), arrays)


def _context_key(ctx):
    return f"{ctx.device_type}:{ctx.device_id}"


class BackupAndRestore(Callback):
    """Back up the whole training state each epoch; resume exactly after an interruption.

    At every epoch end it writes one HDF5 file (atomically) in ``backup_dir``
    holding the weights (and auxiliary states), the optimizer state and
    learning rate, the epoch, deepkit's random generator (shuffling,
    initializers), the engine's random generators (dropout) and every other
    callback's ``get_state()`` (EarlyStopping's best weights, History, the
    CSV file's length ...). When ``fit`` starts with a backup present, all of
    it is restored and training goes on at the next epoch, so a run that was
    interrupted and resumed ends bit-identical to one that was not, provided
    the model, data and ``compile``/``fit`` arguments are the same (build
    the model after the same ``deepkit.set_seed``). The History returned by
    the resumed ``fit`` holds every epoch, the earlier ones included. When
    training completes the backup is deleted.

    Interrupting means an exception (or the process dying) during ``fit``;
    the backup of the last completed epoch stays on disk.

    Args:
        backup_dir: Folder for the backup (created when missing; use one per
            training run).
        save_freq: ``'epoch'``, the only frequency at which a run can resume
            exactly.
        delete_checkpoint: Delete the backup when training completes.

    Attributes:
        restored_epoch: The epoch training resumed at, or None.
    """

    FORMAT = "deepkit.backup"
    FILENAME = "backup.h5"

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError("BackupAndRestore: 'backup_dir' must be a folder path. "
                             f"Received: backup_dir={backup_dir!r}")
        if save_freq != "epoch":
            raise ValueError("BackupAndRestore: 'save_freq' must be 'epoch' (an exact resume is "
                             f"possible only at epoch boundaries). Received: "
                             f"save_freq={save_freq!r}")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.delete_checkpoint = bool(delete_checkpoint)
        self.restored_epoch = None
        self._others = []
        self._resume_epoch = None
        self._warned = set()

    @property
    def path(self):
        """The backup file."""
        return os.path.join(self.backup_dir, self.FILENAME)

    def set_callbacks(self, callbacks):
        """The callbacks of this ``fit``, whose state is backed up (set by CallbackList)."""
        self._others = [c for c in callbacks if not isinstance(c, BackupAndRestore)]

    def _keyed(self):
        counts = collections.Counter()
        for c in self._others:
            name = type(c).__name__
            yield f"{name}#{counts[name]}", c
            counts[name] += 1

    # -- contexts and generators -------------------------------------------------------
    def _contexts(self):
        import deepkit_engine as dk  # noqa: PLC0415
        found = {_context_key(dk.cpu()): dk.cpu()}
        for p in self.model.weights:
            if p.data is not None:
                found.setdefault(_context_key(p.data.ctx), p.data.ctx)
        return found

    def _engine_rng_state(self):
        import deepkit_engine as dk  # noqa: PLC0415
        states = {}
        for key, ctx in self._contexts().items():
            states[key] = dk.random.get_state(ctx)
            if states[key] is None and key not in self._warned:
                self._warned.add(key)
                warnings.warn(f"BackupAndRestore: the random generator of {ctx} has no "
                              "readable state; a resumed run draws different random "
                              "numbers there (dropout masks)", RuntimeWarning, stacklevel=3)
        return states

    def _set_engine_rng_state(self, states):
        import deepkit_engine as dk  # noqa: PLC0415
        contexts = self._contexts()
        for key, state in states.items():
            if key in contexts:
                dk.random.set_state(state, contexts[key])

    # -- hooks -------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._resume_epoch = None
        self.restored_epoch = None
        if os.path.exists(self.path):
            self._restore(_read_state(self.path))

    def on_epoch_begin(self, epoch, logs=None):
        if self._resume_epoch is None:
            return
        resume, self._resume_epoch = self._resume_epoch, None
        if epoch != resume:
            from deepkit_engine.base import DeepkitError  # noqa: PLC0415
            raise DeepkitError(
                f"BackupAndRestore restored the state saved at the end of epoch {resume} "
                f"(1-based) from {self.path}, but fit() went on with epoch {epoch + 1} instead "
                f"of {resume + 1}: this fit loop does not read model._initial_epoch after "
                "on_train_begin")

    def on_epoch_end(self, epoch, logs=None):
        self._save(epoch + 1)

    def on_train_end(self, logs=None):
        if not self.delete_checkpoint:
            return
        if os.path.exists(self.path):
            os.remove(self.path)
        try:
            os.rmdir(self.backup_dir)
        except OSError:
            pass  # not empty, or already gone: leave the folder as it is

    # -- saving and restoring ----------------------------------------------------------
    def _save(self, next_epoch):
        import deepkit_engine as dk  # noqa: PLC0415
        from . import backend  # noqa: PLC0415
        model = self.model
        optimizer = model.optimizer
        weights = {p.name: p.data.asnumpy() for p in model.weights}
        dk.waitall()
        lr = optimizer.learning_rate
        state = {
            "epoch": next_epoch,
            "model": model.name,
            "weights": weights,
            "optimizer": {"class_name": type(optimizer).__name__,
                          "state": optimizer.get_state(),
                          "learning_rate": None if callable(lr) else float(lr)},
            "rng": {"deepkit": backend.rng_state(), "engine": self._engine_rng_state()},
            "callbacks": {},
        }
        for key, c in self._keyed():
            cb_state = c.get_state()
            if cb_state:
                state["callbacks"][key] = cb_state
        os.makedirs(self.backup_dir, exist_ok=True)
        _write_state(self.path, state)

    def _restore(self, state):
        import deepkit_engine as dk  # noqa: PLC0415
        from deepkit_engine.base import DeepkitError  # noqa: PLC0415
        from . import backend  # noqa: PLC0415
        model = self.model
        optimizer = model.optimizer
        if optimizer is None:
            raise DeepkitError(f"BackupAndRestore: model '{model.name}' must be compiled "
                               "before fit() can restore its optimizer state")
        params = model.weights
        saved = state["weights"]
        problems = [f"'{p.name}' is not in the backup" for p in params if p.name not in saved]
        problems += [f"'{p.name}': backup has shape {tuple(np.shape(saved[p.name]))}, the "
                     f"model {p.shape}" for p in params
                     if p.name in saved and tuple(np.shape(saved[p.name])) != p.shape]
        names = {p.name for p in params}
        problems += [f"'{n}' is in the backup but not in the model" for n in saved
                     if n not in names]
        saved_opt = state["optimizer"]["class_name"]
        if saved_opt != type(optimizer).__name__:
            problems.append(f"the backup's optimizer is {saved_opt}, the model's "
                            f"{type(optimizer).__name__}")
        if problems:
            raise DeepkitError(f"BackupAndRestore: the backup in {self.path} does not match "
                               f"model '{model.name}' (delete it to start afresh):\n  "
                               + "\n  ".join(problems))
        if any(p.data is None for p in params):
            model._ensure_initialized(getattr(model, "_ctx", None))
        model.set_weights([saved[p.name] for p in params])
        optimizer.set_state(state["optimizer"]["state"], params)
        lr = state["optimizer"].get("learning_rate")
        if lr is not None and not callable(optimizer.learning_rate):
            optimizer.learning_rate = float(lr)
        states = state.get("callbacks", {})
        for key, c in self._keyed():
            if key in states:
                c.set_state(states[key])
        dk.waitall()
        # in place: fit's data source already holds deepkit's generator object
        backend.rng().bit_generator.state = state["rng"]["deepkit"]["bit_generator"]
        self._set_engine_rng_state(state["rng"]["engine"])
        model._initial_epoch = int(state["epoch"])
        self._resume_epoch = int(state["epoch"])
        self.restored_epoch = int(state["epoch"])
