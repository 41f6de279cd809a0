"""LearningRateScheduler: set the learning rate from a function of the epoch."""
import inspect
import math

import numpy as np

from .base import Callback
from .monitor import is_number, require_constant_lr, say


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
        require_constant_lr("LearningRateScheduler", self.model)

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        lr = self.schedule(epoch, optimizer.lr) if self._two_args else self.schedule(epoch)
        if isinstance(lr, np.ndarray) and lr.ndim == 0:
            lr = lr[()]
        if not is_number(lr) or not math.isfinite(float(lr)) or lr < 0:
            raise ValueError(f"LearningRateScheduler: schedule(epoch={epoch}) must return a "
                             f"finite non-negative float; it returned {lr!r}")
        optimizer.lr = float(lr)
        say(self.verbose, f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                           f"{float(lr):.6g}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.model.optimizer.lr


