"""ModelCheckpoint: save the model or its weights during training."""
import os

import numpy as np

from .monitor import MonitorCallback, say


class ModelCheckpoint(MonitorCallback):
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

    chief_only = True  # in a distributed run, rank 0 alone writes

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
                say(self.verbose, f"{where}: {self.monitor} did not improve from {best}")
                return
            say(self.verbose, f"{where}: {self.monitor} improved from {best} to "
                               f"{current:.5g}, saving model to {path}")
            self.best = current
        else:
            say(self.verbose, f"{where}: saving model to {path}")
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


