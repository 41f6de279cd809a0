"""What the callbacks that watch one logged quantity share: direction, checks, messages."""
import math

import numpy as np

from deepkit_engine.base import did_you_mean

from .base import Callback

#: Parts of a quantity's name that mean "higher is better" / "lower is better".
_MAX_WORDS = ("acc", "auc", "precision", "recall", "f1", "fbeta", "iou", "r2", "psnr", "ssim",
              "cosine_similarity", "true_positives", "true_negatives")
_MIN_WORDS = ("loss", "error", "mse", "mae", "mape", "msle", "rmse", "crossentropy", "hinge",
              "divergence", "kl", "poisson", "perplexity", "huber", "logcosh",
              "false_positives", "false_negatives")


def model_metrics(model):
    found = getattr(model, "metrics", None)
    if found is None:
        found = []
        for entry in getattr(model, "_metrics", None) or []:
            found.extend(entry if isinstance(entry, (list, tuple)) else [entry])
    return list(found)


def direction(monitor, model=None):
    """``'min'``, ``'max'`` or None (unknown) for a logged quantity's name."""
    name = monitor[4:] if monitor.startswith("val_") else monitor
    for m in model_metrics(model):
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


def is_number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def missing_monitor(who, monitor, logs):
    available = [k for k, v in logs.items() if is_number(v)]
    message = (f"{who}: monitor={monitor!r} is not a logged quantity"
               f"{did_you_mean(monitor, available)}; the logs have: "
               f"{', '.join(available) if available else 'nothing'}")
    if monitor.startswith("val_") and not any(k.startswith("val_") for k in logs):
        message += (". Validation quantities ('val_...') exist only when fit() is given "
                    "validation_data or validation_split")
    else:
        message += ". Metrics are chosen with compile(metrics=[...])"
    return message


def check_choice(who, arg, value, choices):
    if value not in choices:
        raise ValueError(f"{who}: '{arg}' must be one of {', '.join(map(repr, choices))}. "
                         f"Received: {arg}={value!r}")


def check_count(who, arg, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{who}: '{arg}' must be a non-negative int. Received: {arg}={value!r}")
    return int(value)


def check_real(who, arg, value, minimum=None):
    if not is_number(value) or not math.isfinite(float(value)) \
            or (minimum is not None and value < minimum):
        bound = f" >= {minimum}" if minimum is not None else ""
        raise ValueError(f"{who}: '{arg}' must be a finite number{bound}. "
                         f"Received: {arg}={value!r}")
    return float(value)


class MonitorCallback(Callback):
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
        check_choice(who, "mode", mode, ("auto", "min", "max"))
        self.monitor = monitor
        self.mode = mode
        self.min_delta = abs(check_real(who, "min_delta", min_delta))
        self.baseline = None if baseline is None else check_real(who, "baseline", baseline)
        self._op = None

    def _resolve_mode(self):
        if self._op is None:
            op = self.mode if self.mode != "auto" else direction(self.monitor, self.model)
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
            raise ValueError(missing_monitor(type(self).__name__, self.monitor, logs))
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


def require_constant_lr(who, model):
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        raise ValueError(f"{who}: model '{model.name}' has no optimizer; compile it first")
    if callable(optimizer.learning_rate):
        raise ValueError(
            f"{who}: the optimizer's learning rate is a schedule "
            f"({type(optimizer.learning_rate).__name__}), which sets it at every step, so "
            f"{who} cannot change it. Compile with a float learning_rate to use {who}")
    return optimizer


def say(verbose, text):
    if verbose:
        print(text, flush=True)
