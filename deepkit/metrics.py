"""Metrics: stateful accumulators fed with ``(y_true, y_pred)`` NDArrays.

``update`` only pushes engine work: the per-batch statistics (sums, counts,
confusion counts, histograms) are computed and added to NDArray accumulators
without waiting, so metrics never stall training. ``result()`` reads the
accumulators back (this is the only place that waits) and finishes the
computation on the host. Accumulators are float64, so sums over long epochs
do not drift.

Names, arguments and results follow Keras 3 (``keras.metrics``): the accuracy
family, top-k accuracy, precision, recall, F-scores, AUC (ROC or PR, from a
histogram over 200 thresholds), the regression errors and the loss-based
metrics (cross-entropies, KL divergence, ...), plus perplexity, Pearson
correlation and a binary F1 score. Metrics given to ``compile`` are
unweighted, as Keras's ``metrics=`` are; ``update`` takes an optional
``sample_weight`` for direct use.

Beyond Keras, a few options serve MXNet's conventions (``mx.metric`` is a
thin layer over these classes): ``per_batch=True`` averages one value per
batch (regression errors, Pearson correlation, binary F1); exact top-k
(``count_ties=False``); cross-entropy and perplexity on raw probabilities
(``epsilon``, ``min_probability``); and :meth:`Metric.snapshot` with
:meth:`Metric.result_since`, the value of the batches after a snapshot
(MXNet's local value, next to the global one).

Example:
    >>> from deepkit import metrics
    >>> from deepkit_engine import nd
    >>> m = metrics.get("sparse_categorical_accuracy")
    >>> m.update(nd.array([2, 0]), nd.array([[0.1, 0.2, 0.7], [0.3, 0.6, 0.1]]))  # no wait
    >>> m.result()  # reads
    0.5
"""
import math
import numbers

import numpy as np

from deepkit_engine import engine, nd
from deepkit_engine.base import did_you_mean

from . import losses as losses_mod

__all__ = [
    "Metric", "Mean", "Sum", "MeanMetricWrapper", "Accuracy", "BinaryAccuracy",
    "CategoricalAccuracy", "SparseCategoricalAccuracy", "TopKCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy", "Precision", "Recall", "FBetaScore", "F1Score", "AUC",
    "MeanSquaredError", "MeanAbsoluteError", "RootMeanSquaredError",
    "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "LogCoshError",
    "CosineSimilarity", "Hinge", "SquaredHinge", "CategoricalHinge", "KLDivergence", "Poisson",
    "BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
    "BinaryF1Score", "PearsonCorrelation", "Perplexity", "get", "serialize", "deserialize",
    "for_loss",
]

EPSILON = 1e-7


# -- helpers ----------------------------------------------------------------------------

def _as_nd(value, like=None, dtype=None):
    """An NDArray of ``value`` (numpy, list or NDArray) on ``like``'s context."""
    if isinstance(value, nd.NDArray):
        if dtype is not None and value.dtype != np.dtype(dtype):
            return value.astype(dtype)
        return value
    ctx = like.ctx if like is not None else None
    dtype = dtype or (like.dtype if like is not None else np.float32)
    return nd.array(np.asarray(value, dtype=dtype), ctx=ctx)


def _float_nd(values):
    """``values`` as a float NDArray (integers become float32)."""
    values = _as_nd(values)
    return values if values.dtype.kind == "f" else values.astype(np.float32)


def _inputs(y_true, y_pred, sample_weight=None):
    """``y_true``, ``y_pred`` and ``sample_weight`` as NDArrays of ``y_pred``'s float dtype."""
    y_pred = _float_nd(y_pred)
    y_true = _as_nd(y_true, y_pred, y_pred.dtype)
    if sample_weight is not None:
        sample_weight = _as_nd(sample_weight, y_pred, y_pred.dtype)
    return y_true, y_pred, sample_weight


def _weights_for(values, sample_weight):
    """``sample_weight`` (batch,) reshaped to broadcast over ``values`` (batch, ...)."""
    if sample_weight.shape == values.shape:
        return sample_weight
    n = values.shape[0] if values.ndim else 1
    if sample_weight.size != n:
        raise ValueError(f"sample_weight has shape {sample_weight.shape}, but the values have "
                         f"shape {values.shape}: give one weight per sample ({n},)")
    return sample_weight.reshape((n,) + (1,) * (values.ndim - 1))


def _divide_no_nan(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    out = np.zeros(np.broadcast(a, b).shape)
    np.divide(a, b, out=out, where=b != 0)
    return out


def _check_label_rank(metric, y_true, y_pred, sparse):
    """Raise a clear error when labels cannot belong to predictions."""
    if sparse:
        ok = (y_true.shape == y_pred.shape[:-1]
              or y_true.shape == y_pred.shape[:-1] + (1,))
        want = f"{y_pred.shape[:-1]} (integer class indices)"
    else:
        ok = y_true.shape == y_pred.shape
        want = f"{y_pred.shape} (the prediction's shape)"
    if not ok:
        hint = ""
        if sparse and y_true.shape == y_pred.shape:
            hint = "; one-hot labels need the non-sparse metric (e.g. categorical_accuracy)"
        elif not sparse and y_true.shape in (y_pred.shape[:-1], y_pred.shape[:-1] + (1,)):
            hint = "; integer labels need the sparse metric (e.g. sparse_categorical_accuracy)"
        raise ValueError(f"{type(metric).__name__} '{metric.name}': labels of shape "
                         f"{y_true.shape} do not fit predictions of shape {y_pred.shape}: "
                         f"expected labels of shape {want}{hint}")


def _check_int(cls, name, value, low=1):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"{cls}: '{name}' must be an int >= {low}. Received: {name}={value!r}")
    return int(value)


# -- base classes -----------------------------------------------------------------------

class Metric:
    """Base class: ``reset()``, ``update(y_true, y_pred[, sample_weight])``, ``result()``.

    State lives in named accumulators: :meth:`_add` adds an NDArray (lazily,
    as a float64 array on the device) or a Python number (on the host);
    :meth:`_read` returns their sum as numpy (waiting for the engine).
    ``update_state``/``reset_state`` are Keras spellings of the same methods.

    Args:
        name: The name used in logs (defaults to the Keras snake_case name).
    """

    name = "metric"

    def __init__(self, name=None):
        if name is not None:
            if not isinstance(name, str) or not name:
                raise ValueError(f"{type(self).__name__}: 'name' must be a non-empty str. "
                                 f"Received: name={name!r}")
            self.name = name
        self.reset()

    # state -------------------------------------------------------------------------
    def reset(self):
        """Forget everything accumulated."""
        self._settle()
        self._device = {}
        self._host = {}
        self._since = None
        self._pending = None

    def _settle(self):
        """Wait for host updates queued on the engine (:meth:`expect_host_update`)."""
        pending = getattr(self, "_pending", None)
        if pending is not None:
            engine.wait_for_var(pending)

    def expect_host_update(self, var):
        """Work queued on the engine, writing ``var``, will call :meth:`add_on_host`.

        Every read of the metric from now on waits for ``var`` first. The
        trainer uses this to update the built-in metrics of a batch in one
        engine operation.
        """
        self._pending = var

    def add_on_host(self, sums):
        """Add ``{key: number}`` to the host accumulators (from the queued work)."""
        for key, value in sums.items():
            self._host[key] = self._host.get(key, 0.0) + float(value)

    def reset_state(self):
        self.reset()

    def _add(self, key, value):
        """Add ``value`` (NDArray: pushed, never read here; number: on the host)."""
        if isinstance(value, nd.NDArray):
            value = value.astype(np.float64)
            old = self._device.get(key)
            if old is None:
                self._device[key] = value
            elif old.shape != value.shape:
                raise ValueError(f"{type(self).__name__} '{self.name}': '{key}' had shape "
                                 f"{old.shape} and now gets {value.shape}; reset() the metric "
                                 "between data with a different number of classes")
            else:
                old += value
        else:
            if self._pending is not None:  # a queued host update may be adding to it
                self._settle()
            self._host[key] = self._host.get(key, 0.0) + float(value)

    def _read(self, key, default=0.0):
        """The accumulated value of ``key`` as numpy float64 (this waits).

        Inside :meth:`result_since`, what the snapshot held is subtracted.
        """
        self._settle()
        value = self._host.get(key, 0.0)
        arr = self._device.get(key)
        if arr is not None:
            out = arr.asnumpy().astype(np.float64) + value
        elif key not in self._host:
            return np.float64(default) if np.isscalar(default) else default
        else:
            out = np.float64(value)
        if self._since is not None:
            device, host = self._since
            out = out - host.get(key, 0.0)
            if key in device:
                out = out - device[key].asnumpy().astype(np.float64)
        return out

    def _read_total(self, key):
        """The accumulated ``key`` summed to one Python float (this waits)."""
        return float(np.sum(self._read(key)))

    def _has(self, key):
        self._settle()
        return key in self._device or key in self._host

    # snapshots: the value of a stretch of batches ----------------------------------
    def snapshot(self):
        """The accumulators as they are now, for :meth:`result_since` (does not wait).

        Device accumulators are copied lazily, so taking a snapshot between
        batches costs no synchronisation.

        Returns:
            An opaque token.
        """
        device = {k: v.copy() for k, v in self._device.items()}
        if self._pending is None:
            return device, dict(self._host)
        host = {}  # filled in order with the queued host updates; reads wait for them
        engine.push(lambda: host.update(self._host), writes=(self._pending,),
                    name="metric snapshot")
        return device, host

    def result_since(self, snapshot):
        """The metric over what was added after ``snapshot`` was taken (reads; may wait).

        Args:
            snapshot: A token from :meth:`snapshot` of this metric since its
                last reset, or None for everything (same as :meth:`result`).
        """
        self._since = snapshot
        try:
            return self.result()
        finally:
            self._since = None

    def accumulated(self, key, since=None):
        """The sum of accumulator ``key`` (e.g. ``'total'``, ``'count'``) as a float (waits).

        Args:
            key: The accumulator's name; one never added to reads 0.
            since: A :meth:`snapshot` token: only what was added after it.
        """
        self._since = since
        try:
            return self._read_total(key)
        finally:
            self._since = None

    # api ---------------------------------------------------------------------------
    def update(self, y_true, y_pred, sample_weight=None):
        """Accumulate the statistics of one batch (pushes work, does not wait)."""
        raise NotImplementedError(f"{type(self).__name__} must implement update()")

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.update(y_true, y_pred, sample_weight)

    def result(self):
        """The metric over everything since the last reset (reads; may wait)."""
        raise NotImplementedError(f"{type(self).__name__} must implement result()")

    def get_config(self):
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


class _MeanBase(Metric):
    """A weighted mean: ``total / count`` of the values given to :meth:`_update_values`.

    With ``per_batch`` set, each update adds one value instead, the batch's
    mean passed through :meth:`_batch_value`, so the result is the mean over
    batches, each counting once whatever its size.
    """

    per_batch = False

    def _batch_value(self, mean):
        """What a batch contributes in per-batch mode (its mean, by default)."""
        return mean

    def _update_values(self, values, sample_weight=None):
        if self.per_batch:
            values = values.astype(np.float64)
            if sample_weight is None:
                mean = nd.sum(values) / float(max(values.size, 1))
            else:
                w = _weights_for(values, sample_weight).astype(np.float64)
                ratio = values.size // max(w.size, 1)
                mean = nd.sum(values * w) / (nd.sum(w) * float(ratio))
            self._add("total", self._batch_value(mean))
            self._add("count", 1)
            return
        if sample_weight is None:
            self._add("total", nd.sum(values))
            self._add("count", values.size)
            return
        w = _weights_for(values, sample_weight)
        self._add("total", nd.sum(values * w))
        ratio = values.size // max(w.size, 1)  # elements per weight
        self._add("count", nd.sum(w) * float(ratio) if ratio != 1 else nd.sum(w))

    def _accumulate(self, value, count):
        """Add an NDArray holding a sum over ``count`` samples (lazily)."""
        self._add("total", value)
        self._add("count", count)

    def _mean(self):
        if not self._has("count"):
            return float("nan")
        count = self._read_total("count")
        if count == 0:
            return float("nan")
        return self._read_total("total") / count

    def result(self):
        return self._mean()


class Mean(_MeanBase):
    """The (weighted) mean of every value given to ``update(values[, sample_weight])``.

    Example:
        >>> m = Mean()
        >>> m.update(nd.array([1.0, 3.0]))
        >>> m.update(nd.array([5.0]))
        >>> m.result()
        3.0
    """

    name = "mean"

    def update(self, values, sample_weight=None, count=None):
        """Add ``values``; with ``count``, a single value is a mean over ``count`` samples."""
        values = _float_nd(values)
        if count is not None and sample_weight is None:
            total = values.reshape((1,)) * float(count) if values.size == 1 else nd.sum(values)
            self._add("total", total)
            self._add("count", count)
            return
        if sample_weight is not None:
            sample_weight = _as_nd(sample_weight, values, values.dtype)
        self._update_values(values, sample_weight)

    def update_total(self, total, count):
        """Add ``total``, a sum over ``count`` samples (numbers, or lazy one-element NDArrays)."""
        self._add("total", total)
        self._add("count", count)


class Sum(Metric):
    """The (weighted) sum of every value given to ``update(values[, sample_weight])``."""

    name = "sum"

    def update(self, values, sample_weight=None):
        values = _float_nd(values)
        if sample_weight is not None:
            values = values * _weights_for(values, _as_nd(sample_weight, values, values.dtype))
        self._add("total", nd.sum(values))

    def result(self):
        return self._read_total("total")


class MeanMetricWrapper(_MeanBase):
    """The mean of ``fn(y_true, y_pred)`` over every element it returns.

    Args:
        fn: ``fn(y_true, y_pred) -> NDArray`` of per-sample or per-element
            values (a function of :mod:`deepkit.losses` works).
        name: The metric name (default: the function's name).
        **kwargs: Passed to ``fn``.
    """

    def __init__(self, fn, name=None, **kwargs):
        self.fn, self.fn_kwargs = fn, kwargs
        super().__init__(name or getattr(fn, "__name__", "metric"))

    def update(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred, sample_weight = _inputs(y_true, y_pred, sample_weight)
        values = self.fn(y_true, y_pred, **self.fn_kwargs)
        self._update_values(_as_nd(values, y_pred), sample_weight)

    def get_config(self):
        return {**super().get_config(), **self.fn_kwargs}


class _LossMetric(_MeanBase):
    """The mean per-sample value of a loss of :mod:`deepkit.losses` (computed with ``nd``)."""

    loss_class = None
    sign = 1.0

    def __init__(self, name=None, per_batch=False, **loss_kwargs):
        self.loss_kwargs = loss_kwargs
        self.per_batch = bool(per_batch)
        self._loss = self.loss_class(**loss_kwargs)
        super().__init__(name)

    def update(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred, sample_weight = _inputs(y_true, y_pred, sample_weight)
        want = self._loss.label_shape(y_pred.shape)
        if y_true.shape != want:
            if y_true.size != int(np.prod(want)):
                self._loss.check_label_shape(y_true.shape, y_pred.shape)
            y_true = y_true.reshape(want)
        values = self._values(y_true, y_pred)
        if self.sign != 1.0:
            values = values * self.sign
        self._update_values(values, sample_weight)

    def _values(self, y_true, y_pred):
        """The per-sample values of one batch (labels already in the loss's shape)."""
        return self._loss.call(nd, y_true, y_pred)

    def get_config(self):
        config = {**super().get_config(), **self.loss_kwargs}
        if self.per_batch:
            config["per_batch"] = True
        return config


# -- accuracy family --------------------------------------------------------------------

class Accuracy(_MeanBase):
    """Share of predictions exactly equal to the labels."""

    name = "accuracy"

    def update(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred, sample_weight = _inputs(y_true, y_pred, sample_weight)
        if y_true.shape != y_pred.shape:
            y_true = y_true.reshape(y_pred.shape) if y_true.size == y_pred.size else y_true
        self._update_values(y_pred == y_true, sample_weight)


class BinaryAccuracy(_MeanBase):
    """Share of predictions on the side of ``threshold`` that matches the 0/1 label.

    Args:
        name: The metric name.
        threshold: Predictions above it count as 1.
    """

    name = "binary_accuracy"

    def __init__(self, name=None, threshold=0.5):
        if not isinstance(threshold, numbers.Real) or isinstance(threshold, bool):
            raise ValueError(f"BinaryAccuracy: 'threshold' must be a float. "
                             f"Received: threshold={threshold!r}")
        self.threshold = float(threshold)
        super().__init__(name)

    def update(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred, sample_weight = _inputs(y_true, y_pred, sample_weight)
        if y_true.shape != y_pred.shape:
            if y_true.size != y_pred.size:
                raise ValueError(f"BinaryAccuracy '{self.name}': labels of shape {y_true.shape} "
                                 f"do not fit predictions of shape {y_pred.shape}")
            y_true = y_true.reshape(y_pred.shape)
        self._update_values((y_pred > self.threshold) == y_true, sample_weight)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


class CategoricalAccuracy(_MeanBase):
    """Share of samples whose arg-max class equals the one-hot label's."""

    name = "categorical_accuracy"

    def update(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred, sample_weight = _inputs(y_true, y_pred, sample_weight)
        _check_label_rank(self, y_true, y_pred, sparse=False)
        correct = nd.argmax(y_pred, axis=-1) == nd.argmax(y_true, axis=-1)
        self._update_values(correct, sample_weight)

    def host_sums(self, y_true, y_pred):
        """``{total, count}`` of one batch from numpy arrays (the trainer's fast path)."""
        correct = np.argmax(y_pred, axis=-1) == np.argmax(y_true, axis=-1)
        return {"total": np.count_nonzero(correct), "count": correct.size}

    def host_check(self, y_true, y_pred):
        _check_label_rank(self, y_true, y_pred, sparse=False)


class SparseCategoricalAccuracy(_MeanBase):
    """Share of samples whose arg-max class equals the integer label."""

    name = "sparse_categorical_accuracy"

    def update(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred, sample_weight = _inputs(y_true, y_pred, sample_weight)
        _check_label_rank(self, y_true, y_pred, sparse=True)
        pred = nd.argmax(y_pred, axis=-1)
        if y_true.shape != pred.shape:
            y_true = y_true.reshape(pred.shape)
        self._update_values(pred == y_true, sample_weight)

    def host_sums(self, y_true, y_pred):
        """``{total, count}`` of one batch from numpy arrays (the trainer's fast path)."""
        pred = np.argmax(y_pred, axis=-1)
        correct = pred == y_true.reshape(pred.shape)
        return {"total": np.count_nonzero(correct), "count": correct.size}

    def host_check(self, y_true, y_pred):
        _check_label_rank(self, y_true, y_pred, sparse=True)


def _in_top_k(y_pred, index, k):
    """1 where the score at ``index`` is at least the k-th largest score (ties count)."""
    k = min(k, y_pred.shape[-1])
    kth = nd.min(nd.topk(y_pred, axis=-1, k=k, ret_typ="value"), axis=-1)
    return nd.pick(y_pred, index, axis=-1) >= kth


class TopKCategoricalAccuracy(_MeanBase):
    """Share of samples whose one-hot label is among the ``k`` highest scores.

    A label tied with the k-th score counts as in the top k (Keras's
    ``in_top_k``).

    Args:
        k: How many top scores to consider.
        name: The metric name.
    """

    name = "top_k_categorical_accuracy"

    def __init__(self, k=5, name=None):
        self.k = _check_int("TopKCategoricalAccuracy", "k", k)
        super().__init__(name)

    def update(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred, sample_weight = _inputs(y_true, y_pred, sample_weight)
        _check_label_rank(self, y_true, y_pred, sparse=False)
        self._update_values(_in_top_k(y_pred, nd.argmax(y_true, axis=-1), self.k),
                            sample_weight)

    def get_config(self):
        return {**super().get_config(), "k": self.k}


class SparseTopKCategoricalAccuracy(_MeanBase):
    """Share of samples whose integer label is among the ``k`` highest scores.

    Args:
        k: How many top scores to consider.
        name: The metric name.
        count_ties: A label tied with the k-th score counts as in the top k
            (Keras's ``in_top_k``); False takes exactly ``k`` classes per
            sample (ties broken by the sort).
    """

    name = "sparse_top_k_categorical_accuracy"

    def __init__(self, k=5, name=None, count_ties=True):
        self.k = _check_int("SparseTopKCategoricalAccuracy", "k", k)
        self.count_ties = bool(count_ties)
        super().__init__(name)

    def update(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred, sample_weight = _inputs(y_true, y_pred, sample_weight)
        _check_label_rank(self, y_true, y_pred, sparse=True)
        if y_true.shape != y_pred.shape[:-1]:
            y_true = y_true.reshape(y_pred.shape[:-1])
        if self.count_ties:
            hits = _in_top_k(y_pred, y_true, self.k)
        else:
            top = nd.topk(y_pred, axis=-1, k=min(self.k, y_pred.shape[-1]), ret_typ="indices")
            hits = nd.sum(top == y_true.reshape(y_true.shape + (1,)), axis=-1)
        self._update_values(hits, sample_weight)

    def get_config(self):
        config = {**super().get_config(), "k": self.k}
        if not self.count_ties:
            config["count_ties"] = False
        return config


# -- confusion-matrix metrics -----------------------------------------------------------

def _thresholds_list(cls, thresholds, default):
    if thresholds is None:
        return [default], True
    single = isinstance(thresholds, numbers.Real) and not isinstance(thresholds, bool)
    values = [thresholds] if single else list(thresholds)
    if not values or any(not isinstance(t, numbers.Real) or isinstance(t, bool) for t in values):
        raise ValueError(f"{cls}: 'thresholds' must be a float or a non-empty list of floats. "
                         f"Received: thresholds={thresholds!r}")
    return [float(t) for t in values], single


class _ConfusionMetric(Metric):
    """True/false positives/negatives at a list of thresholds (Keras's Precision/Recall).

    ``y_true`` counts as positive where it is non-zero; ``y_pred`` where it is
    above the threshold. Every element is one decision (the arrays are
    flattened), after optionally keeping only ``class_id`` and the ``top_k``
    scores of each sample.
    """

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None):
        cls = type(self).__name__
        default = 0.5 if top_k is None else -np.inf
        self.thresholds, self._single = _thresholds_list(cls, thresholds, default)
        self._given_thresholds = thresholds
        self.top_k = None if top_k is None else _check_int(cls, "top_k", top_k)
        self.class_id = None if class_id is None else _check_int(cls, "class_id", class_id, 0)
        self._thr = {}
        super().__init__(name)

    def _threshold_row(self, like):
        key = (str(like.ctx), like.dtype.str)
        thr = self._thr.get(key)
        if thr is None:
            finite = np.clip(np.asarray(self.thresholds, np.float64), -np.finfo(np.float32).max,
                             np.finfo(np.float32).max)
            thr = self._thr[key] = _as_nd(finite.reshape(1, -1), like)
        return thr

    def update(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred, sample_weight = _inputs(y_true, y_pred, sample_weight)
        if y_true.shape != y_pred.shape:
            if y_true.size != y_pred.size:
                raise ValueError(f"{type(self).__name__} '{self.name}': labels of shape "
                                 f"{y_true.shape} do not fit predictions of shape "
                                 f"{y_pred.shape}")
            y_true = y_true.reshape(y_pred.shape)
        w = None if sample_weight is None else \
            _weights_for(y_pred, sample_weight) * nd.ones_like(y_pred)
        if self.top_k is not None:
            keep = nd.topk(y_pred, axis=-1, k=min(self.top_k, y_pred.shape[-1]), ret_typ="mask")
            # Scores outside the top k never count as positive (Keras sets them to -inf).
            low = float(np.finfo(np.float32).min)
            y_pred = nd.where(keep, y_pred, nd.ones_like(y_pred) * low)
        if self.class_id is not None:
            if self.class_id >= y_pred.shape[-1]:
                raise ValueError(f"{type(self).__name__} '{self.name}': class_id="
                                 f"{self.class_id} but the predictions have "
                                 f"{y_pred.shape[-1]} classes (shape {y_pred.shape})")
            y_true, y_pred = (nd.slice_axis(a, axis=-1, begin=self.class_id,
                                            end=self.class_id + 1) for a in (y_true, y_pred))
            if w is not None:
                w = nd.slice_axis(w, axis=-1, begin=self.class_id, end=self.class_id + 1)
        n = y_pred.size
        pred_pos = y_pred.reshape((n, 1)) > self._threshold_row(y_pred)  # (n, T)
        label_pos = (y_true.reshape((n, 1)) != 0.0)
        if w is not None:
            label_pos_w = label_pos * w.reshape((n, 1))
            label_neg_w = (1.0 - label_pos) * w.reshape((n, 1))
        else:
            label_pos_w, label_neg_w = label_pos, 1.0 - label_pos
        self._add("tp", nd.sum(pred_pos * label_pos_w, axis=0))
        self._add("fp", nd.sum(pred_pos * label_neg_w, axis=0))
        self._add("fn", nd.sum((1.0 - pred_pos) * label_pos_w, axis=0))
        self._add("tn", nd.sum((1.0 - pred_pos) * label_neg_w, axis=0))

    def _finish(self, value):
        return float(value[0]) if self._single else np.asarray(value)

    def _counts(self):
        t = len(self.thresholds)
        zero = np.zeros(t)
        return tuple(self._read(k, zero) for k in ("tp", "fp", "fn", "tn"))

    def get_config(self):
        return {**super().get_config(), "thresholds": self._given_thresholds,
                "top_k": self.top_k, "class_id": self.class_id}


class Precision(_ConfusionMetric):
    """``tp / (tp + fp)``: the share of predicted positives that are positive.

    Args:
        thresholds: A float or a list (then ``result()`` is an array, one
            value per threshold); default 0.5 (no threshold with ``top_k``).
        top_k: Only the ``top_k`` highest scores of a sample can be positive.
        class_id: Only this class (last axis index) is evaluated.
        name: The metric name.
    """

    name = "precision"

    def result(self):
        tp, fp, _, _ = self._counts()
        return self._finish(_divide_no_nan(tp, tp + fp))


class Recall(_ConfusionMetric):
    """``tp / (tp + fn)``: the share of positives predicted positive.

    Args:
        thresholds: A float or a list (then ``result()`` is an array, one
            value per threshold); default 0.5 (no threshold with ``top_k``).
        top_k: Only the ``top_k`` highest scores of a sample can be positive.
        class_id: Only this class (last axis index) is evaluated.
        name: The metric name.
    """

    name = "recall"

    def result(self):
        tp, _, fn, _ = self._counts()
        return self._finish(_divide_no_nan(tp, tp + fn))


class FBetaScore(Metric):
    """The F-beta score per class, or averaged (Keras's ``FBetaScore``).

    Predictions become 1 where above ``threshold`` (or, with ``threshold=None``,
    at each sample's arg-max). Labels are one-hot / multi-hot of the
    prediction's shape ``(batch, classes)``, or integer class indices
    ``(batch,)`` (one-hot encoded here). For a binary output ``(batch, 1)``
    give ``threshold=0.5``.

    Args:
        average: None (one score per class), ``'micro'`` (from the global
            counts), ``'macro'`` (mean of the class scores) or ``'weighted'``
            (mean weighted by each class's number of true instances).
        beta: Weight of recall against precision (> 0).
        threshold: In ``(0, 1]``, or None for the arg-max.
        name: The metric name.
    """

    name = "fbeta_score"

    def __init__(self, average=None, beta=1.0, threshold=None, name=None):
        cls = type(self).__name__
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(f"{cls}: 'average' must be one of None, 'micro', 'macro', "
                             f"'weighted'. Received: average={average!r}")
        if not isinstance(beta, numbers.Real) or isinstance(beta, bool) or not beta > 0:
            raise ValueError(f"{cls}: 'beta' must be a float > 0. Received: beta={beta!r}")
        if threshold is not None and (not isinstance(threshold, numbers.Real)
                                      or isinstance(threshold, bool)
                                      or not 0 < threshold <= 1):
            raise ValueError(f"{cls}: 'threshold' must be a float in (0, 1] or None. "
                             f"Received: threshold={threshold!r}")
        self.average, self.beta = average, float(beta)
        self.threshold = None if threshold is None else float(threshold)
        super().__init__(name)

    def update(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred, sample_weight = _inputs(y_true, y_pred, sample_weight)
        if y_pred.ndim != 2:
            raise ValueError(f"{type(self).__name__} '{self.name}' expects predictions of shape "
                             f"(batch, classes); got {y_pred.shape}")
        if y_true.shape in ((y_pred.shape[0],), (y_pred.shape[0], 1)) and y_pred.shape[1] > 1:
            y_true = nd.one_hot(y_true.reshape((y_pred.shape[0],)), depth=y_pred.shape[1],
                                dtype=y_pred.dtype)
        elif y_true.shape != y_pred.shape:
            raise ValueError(f"{type(self).__name__} '{self.name}': labels of shape "
                             f"{y_true.shape} do not fit predictions of shape {y_pred.shape}: "
                             f"give one-hot labels {y_pred.shape} or class indices "
                             f"({y_pred.shape[0]},)")
        if self.threshold is None:
            top = nd.max(y_pred, axis=-1, keepdims=True)
            pred = (y_pred >= top) * (nd.abs(y_pred) > 1e-9)
        else:
            pred = y_pred > self.threshold
        if sample_weight is not None:
            w = sample_weight.reshape((y_pred.shape[0], 1))
            t = y_true * w
        else:
            w, t = None, y_true
        axis = None if self.average == "micro" else 0

        def total(x):
            return nd.sum(x, axis=axis) if axis is not None else nd.sum(x)
        self._add("tp", total(pred * t))
        self._add("fp", total(pred * ((1.0 - y_true) * w if w is not None else 1.0 - y_true)))
        self._add("fn", total((1.0 - pred) * t))
        self._add("support", total(t))

    def result(self):
        if not self._has("tp"):
            return float("nan")
        tp, fp, fn = self._read("tp"), self._read("fp"), self._read("fn")
        precision = tp / (tp + fp + EPSILON)
        recall = tp / (tp + fn + EPSILON)
        b2 = self.beta ** 2
        score = (1 + b2) * precision * recall / (b2 * precision + recall + EPSILON)
        if self.average == "weighted":
            support = self._read("support")
            return float(np.sum(score * support / (np.sum(support) + EPSILON)))
        if self.average is not None:
            return float(np.mean(score))
        return np.asarray(score, np.float64)

    def get_config(self):
        return {**super().get_config(), "average": self.average, "beta": self.beta,
                "threshold": self.threshold}


class F1Score(FBetaScore):
    """The F1 score (harmonic mean of precision and recall); see :class:`FBetaScore`.

    Args:
        average: None, ``'micro'``, ``'macro'`` or ``'weighted'``.
        threshold: In ``(0, 1]``, or None for the arg-max.
        name: The metric name.
    """

    name = "f1_score"

    def __init__(self, average=None, threshold=None, name=None):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name)

    def get_config(self):
        config = super().get_config()
        del config["beta"]
        return config


class BinaryF1Score(Metric):
    """F1 score of a binary classifier, label 1 being the positive class.

    Predictions of shape ``(batch, 2)`` are class scores (positive where the
    arg-max is 1); predictions of shape ``(batch,)`` or ``(batch, 1)`` are
    probabilities (positive above ``threshold``). Labels are class indices:
    positive where equal to 1.

    Args:
        threshold: For single-column predictions.
        per_batch: Average the F1 score of each batch (each batch counts
            once) instead of scoring the pooled counts.
        name: The metric name.
    """

    name = "binary_f1_score"

    def __init__(self, threshold=0.5, per_batch=False, name=None):
        if not isinstance(threshold, numbers.Real) or isinstance(threshold, bool):
            raise ValueError(f"BinaryF1Score: 'threshold' must be a float. "
                             f"Received: threshold={threshold!r}")
        self.threshold, self.per_batch = float(threshold), bool(per_batch)
        super().__init__(name)

    def update(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred, sample_weight = _inputs(y_true, y_pred, sample_weight)
        n = y_pred.shape[0] if y_pred.ndim else 1
        if y_pred.ndim == 2 and y_pred.shape[1] == 2:
            pos = nd.argmax(y_pred, axis=1) == 1.0
        elif y_pred.ndim == 1 or (y_pred.ndim == 2 and y_pred.shape[1] == 1):
            pos = y_pred.reshape((n,)) > self.threshold
        else:
            raise ValueError(f"BinaryF1Score '{self.name}' only supports binary classification: "
                             f"predictions of shape (batch, 2) or (batch,), got {y_pred.shape}")
        if y_true.size != n:
            raise ValueError(f"BinaryF1Score '{self.name}': labels of shape {y_true.shape} do "
                             f"not fit predictions of shape {y_pred.shape}: give one class "
                             f"index per sample ({n},)")
        true = (y_true.reshape((n,)) == 1.0).astype(np.float64)
        pos = pos.astype(np.float64)
        if sample_weight is not None:
            true_w = true * sample_weight.reshape((n,)).astype(np.float64)
            false_w = (1.0 - true) * sample_weight.reshape((n,)).astype(np.float64)
        else:
            true_w, false_w = true, 1.0 - true
        tp, fp, fn = nd.sum(pos * true_w), nd.sum(pos * false_w), nd.sum((1.0 - pos) * true_w)
        if not self.per_batch:
            self._add("tp", tp)
            self._add("fp", fp)
            self._add("fn", fn)
            self._add("count", n)
            return

        def ratio(a, b):  # a / b, 0 where b is 0
            return a / (b + (b == 0.0))
        precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
        self._add("total", ratio(2.0 * precision * recall, precision + recall))
        self._add("count", 1)

    def result(self):
        if not self._has("count") or self._read_total("count") == 0:
            return float("nan")
        if self.per_batch:
            return self._read_total("total") / self._read_total("count")
        tp, fp, fn = (self._read_total(k) for k in ("tp", "fp", "fn"))
        precision = tp / (tp + fp) if tp + fp > 0 else 0.0
        recall = tp / (tp + fn) if tp + fn > 0 else 0.0
        if precision + recall == 0:
            return 0.0
        return 2 * precision * recall / (precision + recall)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold,
                "per_batch": self.per_batch}


class AUC(Metric):
    """Area under the ROC (default) or precision-recall curve, over thresholds.

    As in Keras, the predictions are counted in ``num_thresholds`` buckets
    between 0 and 1 (thresholds ``i / (num_thresholds - 1)``, the first just
    below 0 and the last just above 1); ``result()`` turns the bucket counts
    into true/false positive counts per threshold and sums the curve with a
    Riemann sum. Only the histogram is accumulated, so an update costs one
    pass over the batch whatever the number of thresholds. Labels count as
    positive where non-zero.

    Args:
        num_thresholds: Number of thresholds (> 1).
        curve: ``'ROC'`` or ``'PR'``.
        summation_method: ``'interpolation'`` (mid-point for ROC; Davis and
            Goadrich interpolation for PR), ``'minoring'`` or ``'majoring'``.
        name: The metric name.
        thresholds: Explicit thresholds in ``[0, 1]`` instead of
            ``num_thresholds`` (the end points are added).
        multi_label: Treat each column of ``(batch, labels)`` data as its own
            label and average the per-label AUCs; otherwise every element is one
            data point.
        num_labels: Accepted for Keras compatibility (the number of labels is
            taken from the data).
        label_weights: Per-label weights: for the average with
            ``multi_label=True``, else for each element's count.
        from_logits: Apply a sigmoid to the predictions first.
    """

    name = "auc"

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation",
                 name=None, thresholds=None, multi_label=False, num_labels=None,
                 label_weights=None, from_logits=False):
        curve_name = str(curve).upper()
        if curve_name not in ("ROC", "PR"):
            raise ValueError(f"AUC: 'curve' must be 'ROC' or 'PR'. Received: curve={curve!r}")
        method = str(summation_method).lower()
        if method not in ("interpolation", "minoring", "majoring"):
            raise ValueError("AUC: 'summation_method' must be 'interpolation', 'minoring' or "
                             f"'majoring'. Received: summation_method={summation_method!r}")
        if thresholds is not None:
            inner = sorted(float(t) for t in thresholds)
            self.num_thresholds = len(inner) + 2
            self._evenly = False
        else:
            _check_int("AUC", "num_thresholds", num_thresholds, 2)
            self.num_thresholds = int(num_thresholds)
            inner = [(i + 1) / (self.num_thresholds - 1) for i in range(self.num_thresholds - 2)]
            self._evenly = True
        self._given_thresholds = None if thresholds is None else list(inner)
        self._thresholds = np.array([0.0 - EPSILON] + inner + [1.0 + EPSILON])
        self.curve, self.summation_method = curve_name, method
        self.multi_label, self.num_labels = bool(multi_label), num_labels
        self.label_weights = None if label_weights is None else \
            np.asarray(label_weights, np.float64)
        self.from_logits = bool(from_logits)
        self._thr = {}
        super().__init__(name)

    @property
    def thresholds(self):
        """The thresholds, end points included."""
        return list(self._thresholds)

    def update(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred, sample_weight = _inputs(y_true, y_pred, sample_weight)
        if y_true.shape != y_pred.shape:
            if y_true.size != y_pred.size:
                raise ValueError(f"AUC '{self.name}': labels of shape {y_true.shape} do not fit "
                                 f"predictions of shape {y_pred.shape}")
            y_true = y_true.reshape(y_pred.shape)
        if self.multi_label and y_pred.ndim != 2:
            raise ValueError(f"AUC '{self.name}' with multi_label=True expects predictions of "
                             f"shape (batch, labels); got {y_pred.shape}")
        if self.from_logits:
            y_pred = nd.sigmoid(y_pred)
        weight = nd.ones_like(y_pred) if sample_weight is None else \
            _weights_for(y_pred, sample_weight) * nd.ones_like(y_pred)
        if self.label_weights is not None and not self.multi_label:
            weight = weight * _as_nd(self.label_weights, y_pred)
        labels = y_pred.shape[-1] if self.multi_label else 1
        shape = (y_pred.size // labels, labels, 1)
        pos = (y_true != 0.0) * weight
        neg = weight - pos
        t = self.num_thresholds
        if self._evenly:
            # Bucket b holds predictions in (b / (t-1), (b+1) / (t-1)]; a prediction is
            # above threshold i exactly when its bucket is >= i.
            bucket = nd.clip(nd.ceil(y_pred * float(t - 1)) - 1.0, 0.0, float(t - 1))
            onehot = nd.one_hot(bucket.reshape(shape[:2]), depth=t, dtype=y_pred.dtype)
            self._add("pos_hist", nd.sum(onehot * pos.reshape(shape), axis=0))  # (labels, t)
            self._add("neg_hist", nd.sum(onehot * neg.reshape(shape), axis=0))
        else:
            thr = self._threshold_row(y_pred)
            above = y_pred.reshape(shape) > thr  # (n, labels, t)
            self._add("tp", nd.sum(above * pos.reshape(shape), axis=0))
            self._add("fp", nd.sum(above * neg.reshape(shape), axis=0))
            self._add("pos_total", nd.sum(pos.reshape(shape), axis=0))
            self._add("neg_total", nd.sum(neg.reshape(shape), axis=0))

    def _threshold_row(self, like):
        key = (str(like.ctx), like.dtype.str)
        if key not in self._thr:
            self._thr[key] = _as_nd(self._thresholds.reshape(1, 1, -1), like)
        return self._thr[key]

    def confusion(self):
        """``(tp, fp, tn, fn)`` per threshold, arrays of shape ``(thresholds, labels)``."""
        if self._evenly:
            if not self._has("pos_hist"):
                return None
            pos, neg = self._read("pos_hist").T, self._read("neg_hist").T  # (t, labels)
            tp = np.cumsum(pos[::-1], axis=0)[::-1]
            fp = np.cumsum(neg[::-1], axis=0)[::-1]
            pos_total, neg_total = pos.sum(axis=0), neg.sum(axis=0)
        else:
            if not self._has("tp"):
                return None
            tp, fp = self._read("tp").T, self._read("fp").T
            pos_total, neg_total = self._read("pos_total").T, self._read("neg_total").T
        return tp, fp, neg_total - fp, pos_total - tp

    def result(self):
        counts = self.confusion()
        if counts is None:
            return float("nan")
        tp, fp, tn, fn = counts
        n = self.num_thresholds
        if self.curve == "PR" and self.summation_method == "interpolation":
            dtp = tp[:n - 1] - tp[1:]
            p = tp + fp
            dp = p[:n - 1] - p[1:]
            slope = _divide_no_nan(dtp, np.maximum(dp, 0))
            intercept = tp[1:] - slope * p[1:]
            both = (p[:n - 1] > 0) & (p[1:] > 0)
            ratio = np.where(both, _divide_no_nan(p[:n - 1], np.maximum(p[1:], 0)), 1.0)
            with np.errstate(divide="ignore"):
                log_ratio = np.log(np.where(ratio > 0, ratio, 1.0))
            terms = _divide_no_nan(slope * (dtp + intercept * log_ratio),
                                   np.maximum(tp[1:] + fn[1:], 0))
        else:
            recall = _divide_no_nan(tp, tp + fn)
            if self.curve == "ROC":
                x, y = _divide_no_nan(fp, fp + tn), recall
            else:
                x, y = recall, _divide_no_nan(tp, tp + fp)
            if self.summation_method == "interpolation":
                heights = (y[:n - 1] + y[1:]) / 2.0
            elif self.summation_method == "minoring":
                heights = np.minimum(y[:n - 1], y[1:])
            else:
                heights = np.maximum(y[:n - 1], y[1:])
            terms = (x[:n - 1] - x[1:]) * heights
        by_label = terms.sum(axis=0)
        if not self.multi_label:
            return float(by_label.sum())
        if self.label_weights is None:
            return float(by_label.mean())
        return float(_divide_no_nan(np.sum(by_label * self.label_weights),
                                    np.sum(self.label_weights)))

    def get_config(self):
        return {**super().get_config(), "num_thresholds": self.num_thresholds,
                "curve": self.curve, "summation_method": self.summation_method,
                "thresholds": self._given_thresholds, "multi_label": self.multi_label,
                "num_labels": self.num_labels,
                "label_weights": None if self.label_weights is None
                else self.label_weights.tolist(),
                "from_logits": self.from_logits}


# -- regression and loss-based metrics --------------------------------------------------

class MeanSquaredError(_LossMetric):
    """Mean of ``(y_true - y_pred)**2``.

    Args:
        name: The metric name.
        per_batch: Average the per-batch means (each batch counts once).
    """

    name = "mean_squared_error"
    loss_class = losses_mod.MeanSquaredError


class MeanAbsoluteError(_LossMetric):
    """Mean of ``|y_true - y_pred|``.

    Args:
        name: The metric name.
        per_batch: Average the per-batch means (each batch counts once).
    """

    name = "mean_absolute_error"
    loss_class = losses_mod.MeanAbsoluteError


class MeanAbsolutePercentageError(_LossMetric):
    """Mean of ``100 * |y_true - y_pred| / max(|y_true|, eps)``."""

    name = "mean_absolute_percentage_error"
    loss_class = losses_mod.MeanAbsolutePercentageError


class MeanSquaredLogarithmicError(_LossMetric):
    """Mean of ``(log1p(y_pred) - log1p(y_true))**2``."""

    name = "mean_squared_logarithmic_error"
    loss_class = losses_mod.MeanSquaredLogarithmicError


class RootMeanSquaredError(_LossMetric):
    """``sqrt`` of the mean squared error over everything seen (not a mean of roots).

    Args:
        name: The metric name.
        per_batch: Average the root mean squared error of each batch instead.
    """

    name = "root_mean_squared_error"
    loss_class = losses_mod.MeanSquaredError

    def _batch_value(self, mean):
        return nd.sqrt(mean)

    def result(self):
        value = self._mean()
        if self.per_batch or math.isnan(value):
            return value
        return math.sqrt(value)


class LogCoshError(_LossMetric):
    """Mean of ``log(cosh(y_pred - y_true))``."""

    name = "logcosh"
    loss_class = losses_mod.LogCosh


class CosineSimilarity(_LossMetric):
    """Mean cosine similarity between labels and predictions along ``axis`` (1 = aligned).

    Args:
        name: The metric name.
        axis: The axis along which the vectors lie.
    """

    name = "cosine_similarity"
    loss_class = losses_mod.CosineSimilarity
    sign = -1.0

    def __init__(self, name=None, axis=-1):
        super().__init__(name, axis=axis)


class Hinge(_LossMetric):
    """Mean hinge loss (labels -1/1; 0/1 are converted)."""

    name = "hinge"
    loss_class = losses_mod.Hinge


class SquaredHinge(_LossMetric):
    """Mean squared hinge loss (labels -1/1; 0/1 are converted)."""

    name = "squared_hinge"
    loss_class = losses_mod.SquaredHinge


class CategoricalHinge(_LossMetric):
    """Mean categorical hinge loss (one-hot labels)."""

    name = "categorical_hinge"
    loss_class = losses_mod.CategoricalHinge


class KLDivergence(_LossMetric):
    """Mean Kullback-Leibler divergence between label and predicted distributions."""

    name = "kl_divergence"
    loss_class = losses_mod.KLDivergence


class Poisson(_LossMetric):
    """Mean Poisson loss ``y_pred - y_true * log(y_pred)``."""

    name = "poisson"
    loss_class = losses_mod.Poisson


class BinaryCrossentropy(_LossMetric):
    """Mean binary cross-entropy.

    Args:
        name: The metric name.
        from_logits: Whether the predictions are raw scores.
        label_smoothing: As for the loss.
    """

    name = "binary_crossentropy"
    loss_class = losses_mod.BinaryCrossentropy

    def __init__(self, name=None, from_logits=False, label_smoothing=0.0):
        super().__init__(name, from_logits=from_logits, label_smoothing=label_smoothing)


class CategoricalCrossentropy(_LossMetric):
    """Mean categorical cross-entropy (one-hot labels).

    Args:
        name: The metric name.
        from_logits: Whether the predictions are raw scores.
        label_smoothing: As for the loss.
        axis: The class axis.
    """

    name = "categorical_crossentropy"
    loss_class = losses_mod.CategoricalCrossentropy

    def __init__(self, name=None, from_logits=False, label_smoothing=0.0, axis=-1):
        super().__init__(name, from_logits=from_logits, label_smoothing=label_smoothing,
                         axis=axis)


class SparseCategoricalCrossentropy(_LossMetric):
    """Mean sparse categorical cross-entropy (integer labels).

    Args:
        name: The metric name.
        from_logits: Whether the predictions are raw scores.
        axis: The class axis.
        epsilon: If given, the predictions are probabilities used as they are
            (not normalised or clipped): each label costs
            ``-log(p[label] + epsilon)``.
    """

    name = "sparse_categorical_crossentropy"
    loss_class = losses_mod.SparseCategoricalCrossentropy

    def __init__(self, name=None, from_logits=False, axis=-1, epsilon=None):
        if epsilon is not None and from_logits:
            raise ValueError("SparseCategoricalCrossentropy: 'epsilon' applies to "
                             "probabilities; it cannot be combined with from_logits=True")
        self.epsilon = None if epsilon is None else float(epsilon)
        super().__init__(name, from_logits=from_logits, axis=axis)

    def _values(self, y_true, y_pred):
        if self.epsilon is None:
            return super()._values(y_true, y_pred)
        return -nd.log(nd.pick(y_pred, y_true, axis=self._loss.axis) + self.epsilon)

    def get_config(self):
        config = super().get_config()
        if self.epsilon is not None:
            config["epsilon"] = self.epsilon
        return config


class PearsonCorrelation(Metric):
    """Pearson correlation coefficient of predictions and labels (each element is a pair).

    The sums it needs (of x, y, x*x, y*y, x*y) are accumulated in float64, so
    the result is the correlation of everything seen since the last reset.

    Args:
        per_batch: Average the correlation of each batch (each batch counts
            once) instead.
        name: The metric name.
    """

    name = "pearson_correlation"
    _SUMS = ("sx", "sy", "sxx", "syy", "sxy")

    def __init__(self, per_batch=False, name=None):
        self.per_batch = bool(per_batch)
        super().__init__(name)

    def update(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError(f"PearsonCorrelation '{self.name}' does not take sample weights")
        y_true, y_pred, _ = _inputs(y_true, y_pred)
        if y_true.size != y_pred.size:
            raise ValueError(f"PearsonCorrelation '{self.name}': labels of shape {y_true.shape} "
                             f"do not fit predictions of shape {y_pred.shape}")
        x = y_pred.reshape((y_pred.size,)).astype(np.float64)
        y = y_true.reshape((y_true.size,)).astype(np.float64)
        if self.per_batch:
            dx, dy = x - nd.mean(x), y - nd.mean(y)
            self._add("total", nd.sum(dx * dy) / nd.sqrt(nd.sum(dx * dx) * nd.sum(dy * dy)))
            self._add("count", 1)
            return
        for key, value in zip(self._SUMS, (x, y, x * x, y * y, x * y)):
            self._add(key, nd.sum(value))
        self._add("count", x.size)

    def result(self):
        if not self._has("count"):
            return float("nan")
        n = self._read_total("count")
        if n == 0:
            return float("nan")
        if self.per_batch:
            return self._read_total("total") / n
        sx, sy, sxx, syy, sxy = (self._read_total(k) for k in self._SUMS)
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.float64(n * sxy - sx * sy)
                         / np.sqrt(np.float64(n * sxx - sx * sx) * (n * syy - sy * sy)))

    def get_config(self):
        return {**super().get_config(), "per_batch": self.per_batch}


class Perplexity(Metric):
    """``exp`` of the mean sparse cross-entropy per label position (keras_nlp's Perplexity).

    For language models: predictions ``(batch, steps, vocab)``, integer labels
    ``(batch, steps)``; every label position counts once over all batches, so
    the result is the perplexity of the whole data, not a mean of batch
    perplexities.

    Args:
        from_logits: Whether the predictions are raw scores.
        mask_token_id: A label value (e.g. padding) left out of the average.
        name: The metric name.
        min_probability: If given, the predictions are probabilities used as
            they are (not normalised), floored at this value before the log.
    """

    name = "perplexity"

    def __init__(self, from_logits=False, mask_token_id=None, name=None, min_probability=None):
        self.from_logits = bool(from_logits)
        if mask_token_id is not None:
            if not isinstance(mask_token_id, numbers.Integral) or isinstance(mask_token_id, bool):
                raise ValueError(f"Perplexity: 'mask_token_id' must be an int. "
                                 f"Received: mask_token_id={mask_token_id!r}")
            mask_token_id = int(mask_token_id)
        if min_probability is not None and from_logits:
            raise ValueError("Perplexity: 'min_probability' applies to probabilities; it "
                             "cannot be combined with from_logits=True")
        self.mask_token_id = mask_token_id
        self.min_probability = None if min_probability is None else float(min_probability)
        self._loss = losses_mod.SparseCategoricalCrossentropy(from_logits=self.from_logits)
        super().__init__(name)

    def update(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred, sample_weight = _inputs(y_true, y_pred, sample_weight)
        _check_label_rank(self, y_true, y_pred, sparse=True)
        if y_true.shape != y_pred.shape[:-1]:
            y_true = y_true.reshape(y_pred.shape[:-1])
        if self.min_probability is None:
            nll = -nd.pick(_log_probs(self._loss, y_pred), y_true, axis=-1)
        else:
            nll = -nd.log(nd.maximum(nd.pick(y_pred, y_true, axis=-1), self.min_probability))
        weight = None
        if self.mask_token_id is not None:
            weight = y_true != float(self.mask_token_id)
        if sample_weight is not None:
            sw = _weights_for(nll, sample_weight)
            weight = sw * nd.ones_like(nll) if weight is None else weight * sw
        if weight is None:
            self._add("total", nd.sum(nll))
            self._add("count", nll.size)
        else:
            self._add("total", nd.sum(nll * weight))
            self._add("count", nd.sum(weight))

    def result(self):
        if not self._has("count"):
            return float("nan")
        count = self._read_total("count")
        if count == 0:
            return float("nan")
        return math.exp(self._read_total("total") / count)

    def get_config(self):
        config = {**super().get_config(), "from_logits": self.from_logits,
                  "mask_token_id": self.mask_token_id}
        if self.min_probability is not None:
            config["min_probability"] = self.min_probability
        return config


def _log_probs(loss, y_pred):
    if loss.from_logits:
        return nd.log_softmax(y_pred, axis=-1)
    p = y_pred / nd.sum(y_pred, axis=-1, keepdims=True)
    return nd.log(nd.clip(p, EPSILON, 1.0 - EPSILON))


# -- lookup -----------------------------------------------------------------------------

CLASSES = (Mean, Sum, Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
           TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, Precision, Recall,
           FBetaScore, F1Score, AUC, MeanSquaredError, MeanAbsoluteError, RootMeanSquaredError,
           MeanAbsolutePercentageError, MeanSquaredLogarithmicError, LogCoshError,
           CosineSimilarity, Hinge, SquaredHinge, CategoricalHinge, KLDivergence, Poisson,
           BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy,
           BinaryF1Score, PearsonCorrelation, Perplexity)

_BY_NAME = {cls.name: cls for cls in CLASSES if cls is not Accuracy}
_BY_NAME.update({
    "mse": MeanSquaredError, "mae": MeanAbsoluteError, "mape": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError, "rmse": RootMeanSquaredError,
    "log_cosh": LogCoshError, "log_cosh_error": LogCoshError, "kld": KLDivergence,
    "kullback_leibler_divergence": KLDivergence, "top_k_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_accuracy": SparseTopKCategoricalAccuracy, "pearsonr": PearsonCorrelation,
})
_CLASS_BY_NAME = {cls.__name__: cls for cls in CLASSES}
_RESOLVED = ("accuracy", "acc", "crossentropy", "ce")


def _known_names():
    return sorted(set(_BY_NAME) | set(_RESOLVED))


def _lookup(name):
    cls = _BY_NAME.get(name) or _CLASS_BY_NAME.get(name) or _BY_NAME.get(name.lower())
    if cls is None:
        candidates = sorted(set(_BY_NAME) | set(_CLASS_BY_NAME) | set(_RESOLVED))
        raise ValueError(f"unknown metric {name!r}{did_you_mean(name, candidates)}; known: "
                         f"{', '.join(_known_names())}")
    return cls


def get(identifier, custom_objects=None):
    """A metric from a name, a ``{'class_name', 'config'}`` dict, a Metric or a function.

    A name gives a fresh metric with default settings, named as given
    (``'mse'`` is logged as ``mse``, as in Keras). ``'accuracy'``/``'acc'`` and
    ``'crossentropy'``/``'ce'`` depend on the loss and the shapes: use
    :func:`for_loss` (what ``compile`` does), or get a metric that picks its
    kind from the first batch's shapes.

    Args:
        identifier: The metric to build.
        custom_objects: ``{name: class or function}`` for user metrics.

    Raises:
        ValueError: an unknown name (with the closest known one).
        TypeError: something that is no metric at all.
    """
    custom = dict(custom_objects or {})
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, dict):
        if "class_name" not in identifier:
            raise ValueError(f"a metric config needs a 'class_name'. Received: {identifier!r}")
        name, config = identifier["class_name"], dict(identifier.get("config") or {})
        if name == "function":
            fn = custom.get(config.get("name"))
            if fn is None:
                raise ValueError(f"the metric function {config.get('name')!r} is not built in; "
                                 "pass it with custom_objects={name: function}")
            return MeanMetricWrapper(fn, name=config.get("name"))
        if name == "AutoMetric":
            return _AutoMetric(**config)
        cls = custom.get(name) or _lookup(name)
        return cls.from_config(config) if isinstance(cls, type) else get(cls)
    if isinstance(identifier, str):
        if identifier in custom:
            metric = get(custom[identifier])
        elif identifier.lower() in _RESOLVED:
            return _AutoMetric(identifier)
        else:
            metric = _lookup(identifier)()
        metric.name = identifier
        return metric
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise TypeError(f"cannot interpret {identifier!r} as a metric: expected a name, a config "
                    "dict, a Metric or a function f(y_true, y_pred)")


def serialize(metric):
    """``{'class_name', 'config'}`` of a metric; :func:`get` rebuilds it."""
    if isinstance(metric, _AutoMetric):
        return {"class_name": "AutoMetric", "config": metric.get_config()}
    if type(metric) is MeanMetricWrapper:
        return {"class_name": "function", "config": {"name": metric.name}}
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


def deserialize(config, custom_objects=None):
    """The metric of a :func:`serialize` dict."""
    return get(config, custom_objects)


# -- 'accuracy' and 'crossentropy' resolution --------------------------------------------

def _kind_from_loss(loss):
    """'sparse', 'categorical', 'binary' or None from the loss in use."""
    if isinstance(loss, losses_mod.SparseCategoricalCrossentropy):
        return "sparse"
    if isinstance(loss, (losses_mod.CategoricalCrossentropy, losses_mod.CategoricalHinge,
                         losses_mod.KLDivergence)):
        return "categorical"
    if isinstance(loss, losses_mod.BinaryCrossentropy):
        return "binary"
    name = getattr(loss, "name", "") or ""
    if "sparse_categorical" in name:
        return "sparse"
    if "categorical" in name:
        return "categorical"
    if "binary" in name:
        return "binary"
    return None


def _kind_from_shapes(label_shape, output_shape):
    """Keras 3's rule (``compile_utils.get_metric``) from the label and output shapes."""
    out, lab = tuple(output_shape), tuple(label_shape)
    if not out or out[-1] == 1:
        return "binary"
    if len(lab) < len(out) or (lab and lab[-1] == 1):
        return "sparse"
    return "categorical"


_ACCURACY = {"binary": BinaryAccuracy, "sparse": SparseCategoricalAccuracy,
             "categorical": CategoricalAccuracy}
_CROSSENTROPY = {"binary": BinaryCrossentropy, "sparse": SparseCategoricalCrossentropy,
                 "categorical": CategoricalCrossentropy}


def _resolved(identifier, kind, from_logits=False):
    table = _ACCURACY if identifier.lower() in ("accuracy", "acc") else _CROSSENTROPY
    cls = table[kind]
    metric = cls(from_logits=from_logits) if table is _CROSSENTROPY else cls()
    metric.name = identifier
    return metric


class _AutoMetric(Metric):
    """``'accuracy'`` or ``'crossentropy'`` that picks its kind from the first batch.

    It follows Keras 3: binary when the output's last axis is 1, sparse when
    the labels have one axis less than the output (or a last axis of 1),
    categorical otherwise.
    """

    def __init__(self, name="accuracy", from_logits=False):
        self.kind_name, self.from_logits = name, bool(from_logits)
        self._inner = None
        super().__init__(name)

    def reset(self):
        super().reset()
        if getattr(self, "_inner", None) is not None:
            self._inner.reset()

    def update(self, y_true, y_pred, sample_weight=None):
        if self._inner is None:
            kind = _kind_from_shapes(np.shape(y_true), np.shape(y_pred))
            self._inner = _resolved(self.kind_name, kind, self.from_logits)
        self._inner.update(y_true, y_pred, sample_weight)

    def result(self):
        return float("nan") if self._inner is None else self._inner.result()

    def get_config(self):
        return {"name": self.kind_name, "from_logits": self.from_logits}


def for_loss(name, loss, output_shape=None):
    """A metric for ``name``; resolves Keras's ``'accuracy'``/``'crossentropy'`` shorthands.

    ``'accuracy'`` (or ``'acc'``) becomes sparse categorical, categorical or
    binary accuracy according to the loss (sparse categorical cross-entropy
    -> sparse; categorical cross-entropy and hinge -> categorical; binary
    cross-entropy, hinge and squared hinge -> binary). For other losses it
    follows the shapes, from ``output_shape`` when given (batch axis
    included) or else from the first batch. ``'crossentropy'`` (``'ce'``)
    resolves the same way, with the loss's ``from_logits``.

    Args:
        name: A metric identifier (anything :func:`get` takes).
        loss: The :class:`~deepkit.losses.Loss` of the output, or None.
        output_shape: The output's shape, if known.

    Returns:
        A :class:`Metric` named ``name``.
    """
    if not isinstance(name, str) or name.lower() not in _RESOLVED:
        return get(name)
    from_logits = bool(getattr(loss, "from_logits", False))
    kind = _kind_from_loss(loss)
    if kind is None and output_shape is not None:
        label_shape = loss.label_shape(output_shape) if isinstance(loss, losses_mod.Loss) \
            else output_shape
        kind = _kind_from_shapes(label_shape, output_shape)
    if kind is None:
        return _AutoMetric(name, from_logits)
    return _resolved(name, kind, from_logits)


#: Metric classes whose batch statistics ``host_sums`` computes with numpy alone: the
#: trainer updates them, with the loss, in one engine operation per batch on the CPU.
HOST_METRICS = (SparseCategoricalAccuracy, CategoricalAccuracy)
