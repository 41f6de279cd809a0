"""EarlyStopping: stop when a monitored quantity stops improving."""
import numpy as np

from .monitor import MonitorCallback, check_count, say


class EarlyStopping(MonitorCallback):
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
        self.patience = check_count("EarlyStopping", "patience", patience)
        self.start_from_epoch = check_count("EarlyStopping", "start_from_epoch",
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
            say(self.verbose, f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            say(self.verbose, "Restoring model weights from the end of the best epoch: "
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


