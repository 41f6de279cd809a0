"""Losses as symbol builders: ``loss(y_true, y_pred) -> per-sample loss symbol (batch,)``.

The training graph averages the per-sample losses (weighted by sample
weights) into one scalar whose gradient drives training. ``from_logits=True``
takes raw scores and applies the (log-)softmax or sigmoid inside the loss, which
is more stable than a softmax layer followed by a log.
"""
from deepkit_engine import symbol as sym

__all__ = ["Loss", "SparseCategoricalCrossentropy", "CategoricalCrossentropy",
           "BinaryCrossentropy", "MeanSquaredError", "MeanAbsoluteError", "get", "serialize"]

_EPS = 1e-7


def _per_sample(x):
    """Mean over every axis but the batch axis: ``(batch, ...)`` -> ``(batch,)``."""
    return sym.mean(x, axis=0, exclude=True)


class Loss:
    """Base class: ``__call__(y_true, y_pred)`` returns per-sample losses."""

    name = "loss"

    def __call__(self, y_true, y_pred):
        raise NotImplementedError

    def label_shape(self, output_shape):
        """The shape of ``y_true`` for an output shape (batch axis included)."""
        return tuple(output_shape)

    def label_dtype(self):
        return None

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy with integer class labels ``(batch,)`` against ``(batch, classes)``."""

    name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits=False, axis=-1):
        self.from_logits, self.axis = bool(from_logits), axis

    def __call__(self, y_true, y_pred):
        if self.from_logits:
            logp = sym.log_softmax(y_pred, axis=self.axis)
        else:
            logp = sym.log(sym.clip(y_pred, _EPS, 1.0))
        return -_per_sample(sym.pick(logp, y_true, axis=self.axis))

    def label_shape(self, output_shape):
        shape = list(output_shape)
        del shape[self.axis]
        return tuple(shape)

    def get_config(self):
        return {"from_logits": self.from_logits, "axis": self.axis}


class CategoricalCrossentropy(Loss):
    """Cross-entropy with one-hot (or soft) labels of the output's shape."""

    name = "categorical_crossentropy"

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1):
        self.from_logits, self.axis = bool(from_logits), axis
        self.label_smoothing = float(label_smoothing)

    def __call__(self, y_true, y_pred):
        if self.from_logits:
            logp = sym.log_softmax(y_pred, axis=self.axis)
        else:
            logp = sym.log(sym.clip(y_pred, _EPS, 1.0))
        if self.label_smoothing:
            n = sym.sum(sym.ones_like(y_true), axis=self.axis, keepdims=True)
            y_true = y_true * (1 - self.label_smoothing) + self.label_smoothing / n
        return -_per_sample(sym.sum(y_true * logp, axis=self.axis))

    def get_config(self):
        return {"from_logits": self.from_logits, "label_smoothing": self.label_smoothing,
                "axis": self.axis}


class BinaryCrossentropy(Loss):
    """Binary cross-entropy, averaged over the non-batch axes."""

    name = "binary_crossentropy"

    def __init__(self, from_logits=False):
        self.from_logits = bool(from_logits)

    def __call__(self, y_true, y_pred):
        if self.from_logits:
            # max(x, 0) - x*z + log(1 + exp(-|x|))
            x = y_pred
            per = sym.relu(x) - x * y_true + sym.log1p(sym.exp(-sym.abs(x)))
        else:
            p = sym.clip(y_pred, _EPS, 1 - _EPS)
            per = -(y_true * sym.log(p) + (1 - y_true) * sym.log(1 - p))
        return _per_sample(per)

    def get_config(self):
        return {"from_logits": self.from_logits}


class MeanSquaredError(Loss):
    """Mean of squared differences over the non-batch axes."""

    name = "mean_squared_error"

    def __call__(self, y_true, y_pred):
        return _per_sample(sym.square(y_pred - y_true))


class MeanAbsoluteError(Loss):
    """Mean of absolute differences over the non-batch axes."""

    name = "mean_absolute_error"

    def __call__(self, y_true, y_pred):
        return _per_sample(sym.abs(y_pred - y_true))


_BY_NAME = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
}


def _classes():
    return {cls.__name__: cls for cls in set(_BY_NAME.values())}


def get(identifier):
    """A loss from a name, a config dict, a Loss, or a function ``f(y_true, y_pred)``."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict):
        return _classes()[identifier["class_name"]].from_config(identifier.get("config", {}))
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier) or _classes().get(identifier)
        if cls is None:
            from deepkit_engine.base import did_you_mean  # noqa: PLC0415
            raise ValueError(f"unknown loss {identifier!r}{did_you_mean(identifier, _BY_NAME)}; "
                             f"known: {', '.join(sorted(_BY_NAME))}")
        return cls()
    if callable(identifier):
        return _FunctionLoss(identifier)
    raise TypeError(f"cannot interpret {identifier!r} as a loss")


class _FunctionLoss(Loss):
    def __init__(self, fn):
        self.fn = fn
        self.name = getattr(fn, "__name__", "loss")

    def __call__(self, y_true, y_pred):
        return self.fn(y_true, y_pred)


def serialize(loss):
    return {"class_name": type(loss).__name__, "config": loss.get_config()}
