"""MXNet 1.x evaluation metrics (``mx.metric``): ``update(labels, preds)``, ``get()``, ``reset()``.

``labels`` and ``preds`` are lists of NDArrays (one per label/output; a
single NDArray or numpy array is accepted too). Each metric keeps a *local*
total (reset by ``reset_local()``, e.g. by ``Speedometer`` after each report)
and a *global* one for the whole epoch (``get_global()``); ``reset()``
clears both. The formulas are MXNet's, including its conventions:

* ``Accuracy``: arg-max over ``axis`` unless the prediction already has the
  label's shape; computed lazily on the engine, so it never stalls training.
* ``MSE``/``MAE``/``RMSE``/``PearsonCorrelation``: the value per ``update``
  call (batch), averaged over the calls.
* ``F1``: binary classification (labels 0/1, positive class 1); ``average=
  'macro'`` averages the F1 of each batch, ``'micro'`` pools the counts.
* ``Perplexity``: ``exp`` of the mean negative log-likelihood.

For deepkit's training loop every metric also has ``result()`` (the global
value) and ``name``.
"""
import math

import numpy as np

import deepkit_engine as dk
from deepkit_engine import nd

__all__ = ["EvalMetric", "Accuracy", "TopKAccuracy", "F1", "CrossEntropy",
           "NegativeLogLikelihood", "Perplexity", "MAE", "MSE", "RMSE", "PearsonCorrelation",
           "Loss", "CustomMetric", "CompositeEvalMetric", "np", "create", "register",
           "check_label_shapes"]

_REGISTRY = {}
_np = np


def register(cls, *aliases):
    """Make a metric class known to :func:`create` by its lower-case name and aliases."""
    for name in (cls.__name__.lower(),) + aliases:
        _REGISTRY[name] = cls
    return cls


def _alias(*aliases):
    def deco(cls):
        return register(cls, *aliases)
    return deco


def _wrap(value):
    return list(value) if isinstance(value, (list, tuple)) else [value]


def check_label_shapes(labels, preds, wrap=False, shape=False):
    """Raise ``ValueError`` when the numbers (or, with ``shape``, the shapes) differ.

    Returns:
        ``(labels, preds)``, as lists when ``wrap``.
    """
    if shape:
        got_l, got_p = tuple(labels.shape), tuple(preds.shape)
    else:
        got_l = len(labels) if isinstance(labels, (list, tuple)) else 1
        got_p = len(preds) if isinstance(preds, (list, tuple)) else 1
    if got_l != got_p:
        raise ValueError(f"Shape of labels {got_l} does not match shape of predictions {got_p}")
    if wrap:
        return _wrap(labels), _wrap(preds)
    return labels, preds


def _host(x):
    """A numpy array from an NDArray or array-like."""
    return x.asnumpy() if hasattr(x, "asnumpy") else _np.asarray(x)


def _value(x):
    """A float from a float or a (lazy) one-element NDArray sum."""
    if isinstance(x, dk.NDArray):
        return float(x.asnumpy().sum())
    return float(x)


class EvalMetric:
    """Base class of the metrics.

    Args:
        name: Name shown in logs (``Train-<name>=...``).
        output_names, label_names: Which outputs/labels :meth:`update_dict` uses
            (None: all, in order).
        **kwargs: Extra configuration kept for :meth:`get_config`.
    """

    def __init__(self, name, output_names=None, label_names=None, **kwargs):
        self.name = str(name)
        self.output_names = output_names
        self.label_names = label_names
        self._kwargs = kwargs
        self.reset()

    def __str__(self):
        return f"EvalMetric: {dict(self.get_name_value())}"

    def get_config(self):
        """What :func:`create` needs to make this metric again."""
        config = dict(self._kwargs)
        config.update(metric=type(self).__name__, name=self.name,
                      output_names=self.output_names, label_names=self.label_names)
        return config

    # -- totals (a float, or a lazy NDArray until read) ---------------------------------
    @property
    def sum_metric(self):
        """The local total (reading it waits for pending metric work)."""
        self._sum = _value(self._sum)
        return self._sum

    @sum_metric.setter
    def sum_metric(self, value):
        self._sum = value

    @property
    def global_sum_metric(self):
        """The total since the last :meth:`reset`."""
        self._global_sum = _value(self._global_sum)
        return self._global_sum

    @global_sum_metric.setter
    def global_sum_metric(self, value):
        self._global_sum = value

    def _add(self, value, count):
        """Add a per-batch total (float or NDArray) over ``count`` instances, lazily."""
        self._sum = value if _is_zero(self._sum) else self._sum + value
        self._global_sum = value if _is_zero(self._global_sum) else self._global_sum + value
        self.num_inst += count
        self.global_num_inst += count

    # -- API -----------------------------------------------------------------------------
    def update_dict(self, label, pred):
        """Update from ``{name: NDArray}`` dicts, using ``label_names``/``output_names``."""
        preds = [pred[n] for n in self.output_names] if self.output_names is not None \
            else list(pred.values())
        labels = [label[n] for n in self.label_names] if self.label_names is not None \
            else list(label.values())
        self.update(labels, preds)

    def update(self, labels, preds):
        """Add one batch: ``labels`` and ``preds`` are lists of NDArrays."""
        raise NotImplementedError(f"{type(self).__name__} does not implement update()")

    def reset(self):
        """Clear the local and the global totals."""
        self.num_inst = 0
        self._sum = 0.0
        self.global_num_inst = 0
        self._global_sum = 0.0

    def reset_local(self):
        """Clear the local totals only (the global ones keep the whole epoch)."""
        self.num_inst = 0
        self._sum = 0.0

    def get(self):
        """``(name, value)`` of the local totals (NaN before any update)."""
        if self.num_inst == 0:
            return (self.name, float("nan"))
        return (self.name, self.sum_metric / self.num_inst)

    def get_global(self):
        """``(name, value)`` of the global totals."""
        if self.global_num_inst == 0:
            return (self.name, float("nan"))
        return (self.name, self.global_sum_metric / self.global_num_inst)

    def get_name_value(self):
        """``[(name, value), ...]`` of :meth:`get`."""
        return _pairs(self.get())

    def get_global_name_value(self):
        """``[(name, value), ...]`` of :meth:`get_global`."""
        return _pairs(self.get_global())

    def result(self):
        """The global value (deepkit's metric protocol, for ``fit`` logs)."""
        return self.get_global()[1]


def _is_zero(x):
    return isinstance(x, float) and x == 0.0


def _pairs(name_value):
    name, value = name_value
    if not isinstance(name, list):
        name, value = [name], [value]
    return list(zip(name, value))


def _as_nd(x, ctx=None):
    if not isinstance(x, dk.NDArray):
        x = nd.array(_np.asarray(x), ctx=ctx)
    elif ctx is not None and x.ctx != ctx:
        x = x.as_in_context(ctx)
    return x


@_alias("acc")
class Accuracy(EvalMetric):
    """Share of predictions equal to the label: ``argmax(pred, axis) == label``.

    Args:
        axis: The class axis of the predictions.
        name: Defaults to ``'accuracy'``.
    """

    def __init__(self, axis=1, name="accuracy", output_names=None, label_names=None):
        super().__init__(name, axis=axis, output_names=output_names, label_names=label_names)
        self.axis = axis

    def update(self, labels, preds):
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            pred = _as_nd(pred)
            label = _as_nd(label, pred.ctx)
            if pred.shape != label.shape:
                pred = nd.argmax(pred, axis=self.axis)
            pred = pred.astype("int32").reshape((-1,))
            label = label.astype("int32").reshape((-1,))
            check_label_shapes(label, pred, shape=True)
            self._add(nd.sum(pred == label), int(label.shape[0]))


@_alias("top_k_accuracy", "top_k_acc")
class TopKAccuracy(EvalMetric):
    """Share of samples whose label is among the ``top_k`` highest predictions.

    Args:
        top_k: How many classes count as a hit; the name gets ``_<top_k>``.
    """

    def __init__(self, top_k=1, name="top_k_accuracy", output_names=None, label_names=None):
        super().__init__(name, top_k=top_k, output_names=output_names, label_names=label_names)
        if int(top_k) < 1:
            raise ValueError(f"TopKAccuracy: 'top_k' must be >= 1. Received: top_k={top_k!r}")
        self.top_k = int(top_k)
        self.name += f"_{self.top_k}"

    def update(self, labels, preds):
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            pred, label = _host(pred).astype("float32"), _host(label).astype("int64")
            if pred.ndim > 2:
                raise ValueError(f"TopKAccuracy: predictions must be 1-D or 2-D, got shape "
                                 f"{pred.shape}")
            if pred.ndim == 1:
                hits = int((pred.astype("int64").ravel() == label.ravel()).sum())
            else:
                k = min(self.top_k, pred.shape[1])
                top = _np.argpartition(pred, -k, axis=1)[:, -k:]
                hits = int((top == label.reshape(-1, 1)).any(axis=1).sum())
            self._add(float(hits), int(pred.shape[0]))


class _BinaryStats:
    """Confusion counts of a binary classifier (positive class 1)."""

    def __init__(self):
        self.tp = self.fp = self.fn = self.tn = 0

    def add(self, label, pred):
        pred_label = _np.argmax(pred, axis=1) if pred.ndim > 1 else (pred > 0.5).astype(int)
        label = label.astype("int64").ravel()
        if len(_np.unique(label)) > 2:
            raise ValueError("F1 currently only supports binary classification (labels 0 and "
                             f"1); got labels {sorted(_np.unique(label).tolist())[:10]}")
        p, t = pred_label == 1, label == 1
        self.tp += int((p & t).sum())
        self.fp += int((p & ~t).sum())
        self.fn += int((~p & t).sum())
        self.tn += int((~p & ~t).sum())

    @property
    def total(self):
        return self.tp + self.fp + self.fn + self.tn

    @property
    def fscore(self):
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


@register
class F1(EvalMetric):
    """F1 score of a binary classifier (label 1 is the positive class).

    Args:
        average: ``'macro'``: the mean of each batch's F1 (MXNet's default);
            ``'micro'``: the F1 of the pooled counts.
    """

    def __init__(self, name="f1", output_names=None, label_names=None, average="macro"):
        if average not in ("macro", "micro"):
            raise ValueError(f"F1: 'average' must be 'macro' or 'micro'. Received: "
                             f"average={average!r}")
        self.average = average
        super().__init__(name, average=average, output_names=output_names,
                         label_names=label_names)

    def reset(self):
        super().reset()
        self._local, self._global = _BinaryStats(), _BinaryStats()

    def reset_local(self):
        super().reset_local()
        self._local = _BinaryStats()

    def update(self, labels, preds):
        labels, preds = check_label_shapes(labels, preds, True)
        batch = _BinaryStats()
        for label, pred in zip(labels, preds):
            label, pred = _host(label), _host(pred)
            batch.add(label, pred)
            self._local.add(label, pred)
            self._global.add(label, pred)
        if self.average == "macro":
            self._add(batch.fscore, 1)
        else:
            self._sum, self.num_inst = self._local.fscore * self._local.total, self._local.total
            self._global_sum = self._global.fscore * self._global.total
            self.global_num_inst = self._global.total


@_alias("ce", "cross-entropy")
class CrossEntropy(EvalMetric):
    """Mean of ``-log(pred[label] + eps)`` over samples (predictions are probabilities)."""

    def __init__(self, eps=1e-12, name="cross-entropy", output_names=None, label_names=None):
        super().__init__(name, eps=eps, output_names=output_names, label_names=label_names)
        self.eps = float(eps)

    def update(self, labels, preds):
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            label, pred = _host(label).ravel(), _host(pred)
            if label.shape[0] != pred.shape[0]:
                raise ValueError(f"{type(self).__name__}: {label.shape[0]} labels for "
                                 f"{pred.shape[0]} predictions")
            prob = pred[_np.arange(label.shape[0]), label.astype("int64")]
            self._add(float((-_np.log(prob + self.eps)).sum()), int(label.shape[0]))


@_alias("nll_loss")
class NegativeLogLikelihood(CrossEntropy):
    """The same formula as :class:`CrossEntropy`, named ``'nll-loss'``."""

    def __init__(self, eps=1e-12, name="nll-loss", output_names=None, label_names=None):
        super().__init__(eps, name, output_names, label_names)


@register
class Perplexity(EvalMetric):
    """``exp`` of the mean negative log-probability of the labels.

    Args:
        ignore_label: Label value to leave out (e.g. padding), or None.
        axis: The class axis of the predictions.
    """

    def __init__(self, ignore_label, axis=-1, name="perplexity", output_names=None,
                 label_names=None):
        super().__init__(name, ignore_label=ignore_label, axis=axis,
                         output_names=output_names, label_names=label_names)
        self.ignore_label, self.axis = ignore_label, axis

    def update(self, labels, preds):
        labels, preds = check_label_shapes(labels, preds, True)
        loss, num = 0.0, 0
        for label, pred in zip(labels, preds):
            label, pred = _host(label).astype("int64"), _host(pred)
            pred = _np.moveaxis(pred, self.axis, -1).reshape(-1, pred.shape[self.axis])
            label = label.ravel()
            if label.shape[0] != pred.shape[0]:
                raise ValueError(f"Perplexity: {label.shape[0]} labels for {pred.shape[0]} "
                                 "predictions")
            prob = pred[_np.arange(label.shape[0]), _np.clip(label, 0, pred.shape[1] - 1)]
            keep = _np.ones_like(prob, bool) if self.ignore_label is None \
                else label != self.ignore_label
            loss -= float(_np.log(_np.maximum(1e-10, prob[keep])).sum())
            num += int(keep.sum())
        self._add(loss, num)

    def get(self):
        if self.num_inst == 0:
            return (self.name, float("nan"))
        return (self.name, math.exp(self.sum_metric / self.num_inst))

    def get_global(self):
        if self.global_num_inst == 0:
            return (self.name, float("nan"))
        return (self.name, math.exp(self.global_sum_metric / self.global_num_inst))


def _regression_pairs(labels, preds):
    labels, preds = check_label_shapes(labels, preds, True)
    for label, pred in zip(labels, preds):
        label, pred = _host(label), _host(pred)
        if label.ndim == 1:
            label = label.reshape(label.shape[0], 1)
        if pred.ndim == 1:
            pred = pred.reshape(pred.shape[0], 1)
        yield label, pred


@register
class MAE(EvalMetric):
    """Mean absolute error, per batch, averaged over batches (MXNet's convention)."""

    def __init__(self, name="mae", output_names=None, label_names=None):
        super().__init__(name, output_names=output_names, label_names=label_names)

    def update(self, labels, preds):
        for label, pred in _regression_pairs(labels, preds):
            self._add(float(_np.abs(label - pred).mean()), 1)


@register
class MSE(EvalMetric):
    """Mean squared error, per batch, averaged over batches (MXNet's convention)."""

    def __init__(self, name="mse", output_names=None, label_names=None):
        super().__init__(name, output_names=output_names, label_names=label_names)

    def update(self, labels, preds):
        for label, pred in _regression_pairs(labels, preds):
            self._add(float(((label - pred) ** 2.0).mean()), 1)


@register
class RMSE(EvalMetric):
    """Root mean squared error, per batch, averaged over batches (MXNet's convention)."""

    def __init__(self, name="rmse", output_names=None, label_names=None):
        super().__init__(name, output_names=output_names, label_names=label_names)

    def update(self, labels, preds):
        for label, pred in _regression_pairs(labels, preds):
            self._add(float(_np.sqrt(((label - pred) ** 2.0).mean())), 1)


@_alias("pearsonr")
class PearsonCorrelation(EvalMetric):
    """Pearson correlation of predictions and labels, per batch, averaged over batches."""

    def __init__(self, name="pearsonr", output_names=None, label_names=None):
        super().__init__(name, output_names=output_names, label_names=label_names)

    def update(self, labels, preds):
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            label, pred = _host(label).ravel(), _host(pred).ravel()
            self._add(float(_np.corrcoef(pred, label)[0, 1]), 1)


@register
class Loss(EvalMetric):
    """The mean of the outputs themselves (for symbols whose output is a loss: ``MakeLoss``)."""

    def __init__(self, name="loss", output_names=None, label_names=None):
        super().__init__(name, output_names=output_names, label_names=label_names)

    def update(self, _, preds):
        for pred in _wrap(preds):
            pred = _as_nd(pred)
            self._add(nd.sum(pred), int(pred.size))


@_alias("custom")
class CustomMetric(EvalMetric):
    """A metric from ``feval(label, pred) -> value`` or ``-> (sum, count)`` on numpy arrays.

    Args:
        feval: The function (called once per label/output pair).
        name: Defaults to the function's name.
        allow_extra_outputs: Allow more outputs than labels (the extra ones are ignored).
    """

    def __init__(self, feval, name=None, allow_extra_outputs=False, output_names=None,
                 label_names=None):
        if name is None:
            name = getattr(feval, "__name__", "custom")
            if "<" in name:
                name = f"custom({name})"
        super().__init__(name, feval=feval, allow_extra_outputs=allow_extra_outputs,
                         output_names=output_names, label_names=label_names)
        self._feval = feval
        self._allow_extra_outputs = allow_extra_outputs

    def update(self, labels, preds):
        labels, preds = _wrap(labels), _wrap(preds)
        if not self._allow_extra_outputs:
            check_label_shapes(labels, preds)
        for pred, label in zip(preds, labels):
            value = self._feval(_host(label), _host(pred))
            if isinstance(value, tuple):
                self._add(float(value[0]), int(value[1]))
            else:
                self._add(float(value), 1)

    def get_config(self):
        raise NotImplementedError("CustomMetric cannot be serialized")


def np(numpy_feval, name=None, allow_extra_outputs=False):  # noqa: A001 - MXNet's name
    """A :class:`CustomMetric` from a numpy function ``feval(label, pred) -> float``."""
    def feval(label, pred):
        return numpy_feval(label, pred)
    feval.__name__ = numpy_feval.__name__
    return CustomMetric(feval, name, allow_extra_outputs)


@_alias("composite")
class CompositeEvalMetric(EvalMetric):
    """Several metrics updated together; ``get()`` returns lists of names and values.

    Args:
        metrics: Metrics or their names.
    """

    def __init__(self, metrics=None, name="composite", output_names=None, label_names=None):
        self.metrics = [create(m) for m in (metrics or [])]
        super().__init__(name, output_names=output_names, label_names=label_names)

    def add(self, metric):
        """Append a metric (or a name)."""
        self.metrics.append(create(metric))

    def get_metric(self, index):
        """The ``index``-th child metric."""
        try:
            return self.metrics[index]
        except IndexError:
            raise ValueError(f"Metric index {index} is out of range 0 and "
                             f"{len(self.metrics)}") from None

    def update_dict(self, labels, preds):
        for metric in self.metrics:
            metric.update_dict(labels, preds)

    def update(self, labels, preds):
        for metric in self.metrics:
            metric.update(labels, preds)

    def reset(self):
        for metric in getattr(self, "metrics", []):
            metric.reset()
        super().reset()

    def reset_local(self):
        for metric in self.metrics:
            metric.reset_local()

    def _collect(self, method):
        names, values = [], []
        for metric in self.metrics:
            name, value = getattr(metric, method)()
            names.extend(_wrap(name))
            values.extend(_wrap(value))
        return names, values

    def get(self):
        return self._collect("get")

    def get_global(self):
        return self._collect("get_global")

    def result(self):
        values = self.get_global()[1]
        return values[0] if len(values) == 1 else values

    def get_config(self):
        config = super().get_config()
        config["metrics"] = [m.get_config() for m in self.metrics]
        return config


def leaves(metric):
    """The non-composite metrics inside ``metric`` (itself when it is not composite)."""
    if isinstance(metric, CompositeEvalMetric):
        return [leaf for m in metric.metrics for leaf in leaves(m)]
    return [metric]


def create(metric, *args, **kwargs):
    """A metric from an instance, a name (``'acc'``, ``'ce'``, ``'top_k_accuracy'`` ...),
    a function ``feval(label, pred)``, or a list of these (a composite).

    Raises:
        ValueError: For an unknown name (with the known ones).
    """
    if isinstance(metric, EvalMetric):
        return metric
    if isinstance(metric, (list, tuple)):
        composite = CompositeEvalMetric()
        for child in metric:
            composite.add(create(child, *args, **kwargs))
        return composite
    if isinstance(metric, dict):
        config = dict(metric)
        cls_name = config.pop("metric")
        return create(cls_name, **config)
    if callable(metric):
        return CustomMetric(metric, *args, **kwargs)
    if isinstance(metric, str):
        cls = _REGISTRY.get(metric.lower())
        if cls is None:
            from deepkit_engine.base import did_you_mean  # noqa: PLC0415
            raise ValueError(f"unknown metric {metric!r}{did_you_mean(metric.lower(), _REGISTRY)};"
                             f" known: {', '.join(sorted(_REGISTRY))}")
        return cls(*args, **kwargs)
    raise TypeError(f"cannot interpret {metric!r} as a metric")
