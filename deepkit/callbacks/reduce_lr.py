"""ReduceLROnPlateau: lower the learning rate when a quantity stops improving."""
import numpy as np

from .monitor import MonitorCallback, check_count, check_real, require_constant_lr, say


class ReduceLROnPlateau(MonitorCallback):
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
        factor = check_real("ReduceLROnPlateau", "factor", factor)
        if not 0 < factor < 1:
            raise ValueError("ReduceLROnPlateau: 'factor' must be in (0, 1), the learning rate "
                             f"is multiplied by it. Received: factor={factor!r}")
        self.factor = factor
        self.patience = check_count("ReduceLROnPlateau", "patience", patience)
        self.cooldown = check_count("ReduceLROnPlateau", "cooldown", cooldown)
        self.min_lr = check_real("ReduceLROnPlateau", "min_lr", min_lr, minimum=0)
        self.verbose = verbose
        self._reset()

    def _reset(self):
        self.best = None
        self.wait = 0
        self.cooldown_counter = 0

    def on_train_begin(self, logs=None):
        require_constant_lr("ReduceLROnPlateau", self.model)
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
                    say(self.verbose, f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning "
                                       f"rate to {new:.6g}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0

    def get_state(self):
        return {"best": self.best, "wait": self.wait, "cooldown_counter": self.cooldown_counter}

    def set_state(self, state):
        self.best = state["best"]
        self.wait = int(state["wait"])
        self.cooldown_counter = int(state["cooldown_counter"])
