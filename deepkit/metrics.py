"""Metrics: stateful accumulators fed with (label, prediction) NDArrays.

``update`` only pushes engine work (nothing waits), so metrics do not stall
training; ``result()`` reads the accumulated totals.
"""
import numpy as np

from deepkit_engine import nd

__all__ = ["Metric", "Mean", "Accuracy", "SparseCategoricalAccuracy", "CategoricalAccuracy",
           "BinaryAccuracy", "get", "for_loss"]


class Metric:
    """Base class: ``reset()``, ``update(y_true, y_pred)``, ``result()``."""

    name = "metric"

    def __init__(self, name=None):
        if name is not None:
            self.name = name
        self.reset()

    def reset(self):
        self._total = None
        self._count = 0

    def _accumulate(self, value, count):
        """Add an NDArray holding a sum over ``count`` samples (lazily)."""
        self._total = value if self._total is None else self._total + value
        self._count += count

    def result(self):
        if self._total is None or self._count == 0:
            return float("nan")
        return float(self._total.asnumpy().sum()) / self._count

    def get_config(self):
        return {"name": self.name}


class Mean(Metric):
    """The running mean of values fed with ``update(values)``."""

    name = "mean"

    def update(self, values, count=None):
        count = values.size if count is None else count
        self._accumulate(nd.sum(values) if values.size != 1 else values.reshape(1) * count,
                         count)


class SparseCategoricalAccuracy(Metric):
    """Share of samples whose arg-max class equals the integer label."""

    name = "sparse_categorical_accuracy"

    def update(self, y_true, y_pred):
        pred = nd.argmax(y_pred, axis=-1)
        correct = nd.sum(pred == y_true.reshape(pred.shape).astype(pred.dtype))
        self._accumulate(correct, pred.size)


class CategoricalAccuracy(Metric):
    """Share of samples whose arg-max class equals the one-hot label's."""

    name = "categorical_accuracy"

    def update(self, y_true, y_pred):
        pred = nd.argmax(y_pred, axis=-1)
        true = nd.argmax(y_true, axis=-1)
        self._accumulate(nd.sum(pred == true), pred.size)


class BinaryAccuracy(Metric):
    """Share of predictions on the right side of ``threshold``."""

    name = "binary_accuracy"

    def __init__(self, name=None, threshold=0.5):
        self.threshold = float(threshold)
        super().__init__(name)

    def update(self, y_true, y_pred):
        pred = y_pred > self.threshold
        self._accumulate(nd.sum(pred == y_true.astype(pred.dtype)), y_pred.size)


class Accuracy(Metric):
    """Share of predictions exactly equal to the labels."""

    name = "accuracy"

    def update(self, y_true, y_pred):
        self._accumulate(nd.sum(y_pred == y_true.astype(y_pred.dtype)), y_pred.size)


_BY_NAME = {
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "binary_accuracy": BinaryAccuracy,
}


def for_loss(name, loss):
    """Resolve Keras's 'accuracy'/'acc' shorthand from the loss in use."""
    if name not in ("accuracy", "acc"):
        return get(name)
    loss_name = getattr(loss, "name", "")
    if "sparse_categorical" in loss_name:
        metric = SparseCategoricalAccuracy()
    elif "categorical" in loss_name:
        metric = CategoricalAccuracy()
    elif "binary" in loss_name:
        metric = BinaryAccuracy()
    else:
        metric = Accuracy()
    metric.name = "accuracy"
    return metric


def get(identifier):
    """A metric from a name, a Metric, or a function ``f(y_true, y_pred) -> NDArray``."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier)
        if cls is None:
            from deepkit_engine.base import did_you_mean  # noqa: PLC0415
            raise ValueError(f"unknown metric {identifier!r}"
                             f"{did_you_mean(identifier, list(_BY_NAME) + ['accuracy'])}; "
                             f"known: accuracy, {', '.join(sorted(_BY_NAME))}")
        return cls()
    if callable(identifier):
        return _FunctionMetric(identifier)
    raise TypeError(f"cannot interpret {identifier!r} as a metric")


class _FunctionMetric(Metric):
    def __init__(self, fn):
        self.fn = fn
        super().__init__(getattr(fn, "__name__", "metric"))

    def update(self, y_true, y_pred):
        values = self.fn(y_true, y_pred)
        self._accumulate(nd.sum(values), int(np.prod(values.shape[:1])) or 1)
