"""MXNet 1.x evaluation metrics (``mx.metric``): adapters over :mod:`deepkit.metrics`.

``update(labels, preds)`` takes lists of NDArrays (one per label/output; a
single NDArray or numpy array is accepted too). Each built-in metric holds
one core metric that does the arithmetic lazily on the engine, so ``update``
never waits. A metric reports a *local* value (since the last
``reset_local()``, which ``Speedometer`` calls after each report: a
snapshot of the core metric's accumulators) and a *global* one
(``get_global()``, since ``reset()``). The numbers and names are MXNet's:

* ``Accuracy``: arg-max over ``axis`` unless the prediction already has the
  label's shape; both are compared as int32.
* ``TopKAccuracy``: exactly ``top_k`` classes per sample; named
  ``top_k_accuracy_<k>``.
* ``MSE``/``MAE``/``RMSE``: the value of each label/output pair, averaged
  over the pairs; ``PearsonCorrelation`` too (``average='macro'``) or over
  all pairs pooled (``'micro'``).
* ``F1``: binary (positive class 1); ``average='macro'`` averages the F1 of
  each ``update`` call, ``'micro'`` pools the counts.
* ``CrossEntropy``/``NegativeLogLikelihood``: mean of
  ``-log(pred[label] + eps)``; ``Perplexity``: ``exp`` of the mean of
  ``-log(max(pred[label], 1e-10))``, leaving out ``ignore_label``.

Subclasses written for MXNet that add to ``sum_metric``/``num_inst`` in
their own ``update`` work as in MXNet. For deepkit's training loop every
metric also has ``result()`` (the global value) and ``name``.
"""
import numpy as _np

import deepkit_engine as dk
from deepkit_engine import engine, nd
from deepkit_engine.ndarray.host_work import prepare_buffer_work
from deepkit_engine.base import did_you_mean

from .. import metrics as core

__all__ = ["EvalMetric", "Accuracy", "TopKAccuracy", "F1", "CrossEntropy",
           "NegativeLogLikelihood", "Perplexity", "MAE", "MSE", "RMSE", "PearsonCorrelation",
           "Loss", "CustomMetric", "CompositeEvalMetric", "np", "create", "register",
           "check_label_shapes"]

_REGISTRY = {}


def register(cls, *aliases):
    """Make a metric class known to :func:`create` by its lower-case name and aliases.

    Returns:
        ``cls``, so that it can be used as a class decorator.
    """
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


def _as_nd(x, ctx=None):
    if not isinstance(x, dk.NDArray):
        x = nd.array(_np.asarray(x), ctx=ctx)
    elif ctx is not None and x.ctx != ctx:
        x = x.as_in_context(ctx)
    return x


def _nd_pairs(labels, preds):
    """``(label, pred)`` NDArray pairs, the label on the prediction's device."""
    labels, preds = check_label_shapes(labels, preds, True)
    for label, pred in zip(labels, preds):
        pred = _as_nd(pred)
        yield _as_nd(label, pred.ctx), pred


def _number(value):
    return int(value) if float(value).is_integer() else float(value)


def _pairs(name_value):
    name, value = name_value
    if not isinstance(name, list):
        name, value = [name], [value]
    return list(zip(name, value))


class EvalMetric:
    """Base class of the metrics, with MXNet's counters.

    A subclass implements ``update(labels, preds)`` and adds to
    ``sum_metric``/``num_inst`` (and, with ``has_global_stats=True``, to
    ``global_sum_metric``/``global_num_inst``); ``get()`` is their ratio.

    Args:
        name: Name shown in logs (``Train-<name>=...``).
        output_names: Which outputs :meth:`update_dict` uses (None: all, in order).
        label_names: Which labels :meth:`update_dict` uses (None: all, in order).
        **kwargs: Extra configuration kept for :meth:`get_config`;
            ``has_global_stats`` says whether the subclass keeps the global counters.
    """

    def __init__(self, name, output_names=None, label_names=None, **kwargs):
        self.name = str(name)
        self.output_names = output_names
        self.label_names = label_names
        self._has_global_stats = kwargs.pop("has_global_stats", False)
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
        """Clear the local and the global counters."""
        self.num_inst = 0
        self.sum_metric = 0.0
        self.global_num_inst = 0
        self.global_sum_metric = 0.0

    def reset_local(self):
        """Clear the local counters only (the global ones keep the whole epoch)."""
        self.num_inst = 0
        self.sum_metric = 0.0

    def get(self):
        """``(name, value)`` since the last :meth:`reset_local` (NaN before any update)."""
        if self.num_inst == 0:
            return (self.name, float("nan"))
        return (self.name, self.sum_metric / self.num_inst)

    def get_global(self):
        """``(name, value)`` since the last :meth:`reset`."""
        if not self._has_global_stats:
            return self.get()
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


class _CoreMetric(EvalMetric):
    """An MXNet metric whose state is one core metric (``self.core``).

    The counters are read from the core's ``total``/``count`` accumulators
    (reading may wait for the engine); the local ones are what was added
    after the snapshot taken by :meth:`reset_local`.
    """

    def __init__(self, core_metric, name, output_names=None, label_names=None, **kwargs):
        self.core = core_metric
        super().__init__(name, output_names=output_names, label_names=label_names,
                         has_global_stats=True, **kwargs)

    def reset(self):
        self.core.reset()
        self._mark = None

    def reset_local(self):
        self._mark = self.core.snapshot()

    def _count(self, since):
        return _number(self.core.accumulated("count", since))

    _pooled = False  # the core pools its counts: the sum is value * count, as in MXNet

    def _sum(self, since):
        if not self._pooled:
            return self.core.accumulated("total", since)
        count = self._count(since)
        return self.core.result_since(since) * count if count else 0.0

    num_inst = property(lambda self: self._count(self._mark),
                        doc="The number of instances since :meth:`reset_local`.")
    global_num_inst = property(lambda self: self._count(None),
                               doc="The number of instances since :meth:`reset`.")
    sum_metric = property(lambda self: self._sum(self._mark),
                          doc="The sum of the metric since :meth:`reset_local`.")
    global_sum_metric = property(lambda self: self._sum(None),
                                 doc="The sum of the metric since :meth:`reset`.")

    def _value(self, since):
        if self._count(since) == 0:
            return float("nan")
        return float(self.core.result_since(since))

    def get(self):
        return (self.name, self._value(self._mark))

    def get_global(self):
        return (self.name, self._value(None))


@_alias("acc")
class Accuracy(_CoreMetric):
    """Share of predictions equal to the label: ``argmax(pred, axis) == label``.

    Args:
        axis: The class axis of the predictions.
        name: Defaults to ``'accuracy'``.
        output_names, label_names: As for :class:`EvalMetric`.
    """

    def __init__(self, axis=1, name="accuracy", output_names=None, label_names=None):
        super().__init__(core.Accuracy(), name, output_names, label_names, axis=axis)
        self.axis = axis
        self._host_order = engine.new_var()
        self._prepared = nd.LastPrepared()

    def update(self, labels, preds):
        pairs = list(_nd_pairs(labels, preds))
        if all(p.ctx.device_type == "cpu" and (p.shape == l.shape or p.ndim > self.axis)
               for l, p in pairs):
            self._update_on_host(pairs)
            return
        for label, pred in pairs:
            if pred.shape != label.shape:
                pred = nd.argmax(pred, axis=self.axis)  # whole numbers already
            elif pred.dtype.kind == "f":
                pred = nd.trunc(pred)
            if pred.size != label.size:
                raise ValueError(f"Shape of labels {label.size} does not match shape of "
                                 f"predictions {pred.size}")
            # MXNet compares int32 casts; truncating the floats compares the same values in
            # fewer engine operations (no casts, no copies of 1-d arrays)
            if label.dtype.kind == "f":
                label = nd.trunc(label)
            if label.dtype != pred.dtype:
                label = label.astype(pred.dtype)
            if pred.ndim != 1:
                pred = pred.reshape((-1,))
            if label.ndim != 1:
                label = label.reshape((-1,))
            self.core.update(label, pred)

    def _update_on_host(self, pairs):
        """CPU batches: one queued numpy function instead of a few engine ops per pair.

        It counts what the engine ops count (the arg-max, or truncated float
        predictions, against truncated labels), and adds to the same totals.
        The function is prepared once for the arrays given: a training loop
        passes the same bound outputs and labels at every batch.
        """
        arrays = [a for pair in pairs for a in pair]
        key = tuple(map(id, arrays))
        push = self._prepared.get(key)
        if push is None:
            push = self._prepare_host_update(pairs, arrays)
            self._prepared.keep(key, push, arrays)
        self.core.expect_host_update(self._host_order)
        push()

    def _prepare_host_update(self, pairs, arrays):
        for label, pred in pairs:  # shape errors now, not on a worker
            size = pred.size if pred.shape == label.shape else pred.size // pred.shape[self.axis]
            if size != label.size:
                raise ValueError(f"Shape of labels {label.size} does not match shape of "
                                 f"predictions {size}")
        axis = self.axis
        add = self.core.add_on_host

        def accumulate(_, buffers):
            for label, pred in zip(buffers[::2], buffers[1::2]):
                if pred.shape != label.shape:
                    pred = _np.argmax(pred, axis=axis)
                elif pred.dtype.kind == "f":
                    pred = _np.trunc(pred)
                if label.dtype.kind == "f":
                    label = _np.trunc(label)
                correct = _np.count_nonzero(pred.reshape(-1) == label.reshape(-1))
                add({"total": correct, "count": label.size})
        return prepare_buffer_work(accumulate, [], arrays, order=self._host_order,
                                   name="accuracy", read_buffers=True)


@_alias("top_k_accuracy", "top_k_acc")
class TopKAccuracy(_CoreMetric):
    """Share of samples whose label is among the ``top_k`` highest predictions.

    Args:
        top_k: How many classes count as a hit; the name gets ``_<top_k>``.
        name, output_names, label_names: As for :class:`EvalMetric`.
    """

    def __init__(self, top_k=1, name="top_k_accuracy", output_names=None, label_names=None):
        if int(top_k) < 1:
            raise ValueError(f"TopKAccuracy: 'top_k' must be >= 1. Received: top_k={top_k!r}")
        super().__init__(core.SparseTopKCategoricalAccuracy(int(top_k), count_ties=False),
                         name, output_names, label_names, top_k=top_k)
        self.top_k = int(top_k)
        self.name += f"_{self.top_k}"

    def update(self, labels, preds):
        for label, pred in _nd_pairs(labels, preds):
            if pred.ndim != 2:
                raise ValueError(f"TopKAccuracy: predictions must be (batch, classes), got "
                                 f"shape {pred.shape}")
            self.core.update(label.reshape((-1,)), pred)


@register
class F1(_CoreMetric):
    """F1 score of a binary classifier (label 1 is the positive class).

    Args:
        name, output_names, label_names: As for :class:`EvalMetric`.
        average: ``'macro'``: the mean of each update's F1 (MXNet's default);
            ``'micro'``: the F1 of the pooled counts.
    """

    def __init__(self, name="f1", output_names=None, label_names=None, average="macro"):
        if average not in ("macro", "micro"):
            raise ValueError(f"F1: 'average' must be 'macro' or 'micro'. Received: "
                             f"average={average!r}")
        self.average = average
        self._pooled = average == "micro"
        super().__init__(core.BinaryF1Score(per_batch=average == "macro"), name, output_names,
                         label_names, average=average)

    def update(self, labels, preds):
        pairs = list(_nd_pairs(labels, preds))
        if len(pairs) > 1:  # one update counts once: pool its pairs
            pairs = [(nd.concat(*[lab.reshape((-1,)) for lab, _ in pairs], dim=0),
                      nd.concat(*[pred for _, pred in pairs], dim=0))]
        for label, pred in pairs:
            self.core.update(label.reshape((-1,)), pred)


@_alias("ce", "cross-entropy")
class CrossEntropy(_CoreMetric):
    """Mean of ``-log(pred[label] + eps)`` over samples (predictions are probabilities).

    Args:
        eps: Added to each probability before the log.
        name, output_names, label_names: As for :class:`EvalMetric`.
    """

    def __init__(self, eps=1e-12, name="cross-entropy", output_names=None, label_names=None):
        super().__init__(core.SparseCategoricalCrossentropy(epsilon=eps), name, output_names,
                         label_names, eps=eps)
        self.eps = float(eps)

    def update(self, labels, preds):
        for label, pred in _nd_pairs(labels, preds):
            label = label.reshape((-1,))
            if label.shape[0] != pred.shape[0]:
                raise ValueError(f"{type(self).__name__}: {label.shape[0]} labels for "
                                 f"{pred.shape[0]} predictions")
            self.core.update(label, pred)


@_alias("nll_loss")
class NegativeLogLikelihood(CrossEntropy):
    """The same formula as :class:`CrossEntropy`, named ``'nll-loss'``."""

    def __init__(self, eps=1e-12, name="nll-loss", output_names=None, label_names=None):
        super().__init__(eps, name, output_names, label_names)


@register
class Perplexity(_CoreMetric):
    """``exp`` of the mean negative log-probability of the labels.

    Args:
        ignore_label: Label value to leave out (e.g. padding), or None.
        axis: The class axis of the predictions.
        name, output_names, label_names: As for :class:`EvalMetric`.
    """

    def __init__(self, ignore_label, axis=-1, name="perplexity", output_names=None,
                 label_names=None):
        mask = None if ignore_label is None else int(ignore_label)
        super().__init__(core.Perplexity(mask_token_id=mask, min_probability=1e-10), name,
                         output_names, label_names, ignore_label=ignore_label, axis=axis)
        self.ignore_label, self.axis = ignore_label, axis

    def update(self, labels, preds):
        for label, pred in _nd_pairs(labels, preds):
            axis = self.axis % pred.ndim
            if axis != pred.ndim - 1:
                order = [a for a in range(pred.ndim) if a != axis] + [axis]
                pred = nd.transpose(pred, axes=tuple(order))
            if label.size * pred.shape[-1] != pred.size:
                raise ValueError(f"Perplexity: shape mismatch: labels {label.shape} vs. "
                                 f"predictions {pred.shape}")
            self.core.update(label.reshape(pred.shape[:-1]), pred)


class _Regression(_CoreMetric):
    """MAE/MSE/RMSE: the core metric in per-batch mode, on MXNet's 2-D view of the data."""

    core_class = None

    def __init__(self, name, output_names=None, label_names=None):
        super().__init__(self.core_class(per_batch=True), name, output_names, label_names)

    def update(self, labels, preds):
        for label, pred in _nd_pairs(labels, preds):
            if label.ndim == 1:
                label = label.reshape((label.shape[0], 1))
            if pred.ndim == 1:
                pred = pred.reshape((pred.shape[0], 1))
            if label.shape != pred.shape:  # numpy broadcasting, as MXNet's label - pred
                shape = _np.broadcast_shapes(label.shape, pred.shape)
                label = nd.broadcast_to(label, shape=shape)
                pred = nd.broadcast_to(pred, shape=shape)
            self.core.update(label, pred)


@register
class MAE(_Regression):
    """Mean absolute error, per update, averaged over updates."""

    core_class = core.MeanAbsoluteError

    def __init__(self, name="mae", output_names=None, label_names=None):
        super().__init__(name, output_names, label_names)


@register
class MSE(_Regression):
    """Mean squared error, per update, averaged over updates."""

    core_class = core.MeanSquaredError

    def __init__(self, name="mse", output_names=None, label_names=None):
        super().__init__(name, output_names, label_names)


@register
class RMSE(_Regression):
    """Root mean squared error, per update, averaged over updates."""

    core_class = core.RootMeanSquaredError

    def __init__(self, name="rmse", output_names=None, label_names=None):
        super().__init__(name, output_names, label_names)


@_alias("pearsonr")
class PearsonCorrelation(_CoreMetric):
    """Pearson correlation of predictions and labels.

    Args:
        name, output_names, label_names: As for :class:`EvalMetric`.
        average: ``'macro'``: the correlation of each label/output pair,
            averaged; ``'micro'``: the correlation of all pairs pooled.
    """

    def __init__(self, name="pearsonr", output_names=None, label_names=None, average="macro"):
        if average not in ("macro", "micro"):
            raise ValueError(f"PearsonCorrelation: 'average' must be 'macro' or 'micro'. "
                             f"Received: average={average!r}")
        self.average = average
        self._pooled = average == "micro"
        super().__init__(core.PearsonCorrelation(per_batch=average == "macro"), name,
                         output_names, label_names, average=average)

    def update(self, labels, preds):
        for label, pred in _nd_pairs(labels, preds):
            self.core.update(label.reshape((-1,)), pred.reshape((-1,)))


@register
class Loss(_CoreMetric):
    """The mean of the outputs themselves (for symbols whose output is a loss: ``MakeLoss``)."""

    def __init__(self, name="loss", output_names=None, label_names=None):
        super().__init__(core.Mean(), name, output_names, label_names)

    def update(self, _, preds):
        for pred in _wrap(preds):
            self.core.update(_as_nd(pred))


@_alias("custom")
class CustomMetric(_CoreMetric):
    """A metric from ``feval(label, pred) -> value`` or ``-> (sum, count)`` on numpy arrays.

    The function runs on the host, so each update waits for its inputs.

    Args:
        feval: The function (called once per label/output pair).
        name: Defaults to the function's name.
        allow_extra_outputs: Allow more outputs than labels (the extra ones are ignored).
        output_names, label_names: As for :class:`EvalMetric`.
    """

    def __init__(self, feval, name=None, allow_extra_outputs=False, output_names=None,
                 label_names=None):
        if name is None:
            name = getattr(feval, "__name__", "custom")
            if "<" in name:
                name = f"custom({name})"
        super().__init__(core.Mean(), name, output_names, label_names, feval=feval,
                         allow_extra_outputs=allow_extra_outputs)
        self._feval = feval
        self._allow_extra_outputs = allow_extra_outputs

    def update(self, labels, preds):
        labels, preds = _wrap(labels), _wrap(preds)
        if not self._allow_extra_outputs:
            check_label_shapes(labels, preds)
        for pred, label in zip(preds, labels):
            value = self._feval(_host(label), _host(pred))
            if isinstance(value, tuple):
                self.core.update_total(float(value[0]), value[1])
            else:
                self.core.update_total(float(value), 1)

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
        name, output_names, label_names: As for :class:`EvalMetric`.
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
            raise ValueError(f"unknown metric {metric!r}{did_you_mean(metric.lower(), _REGISTRY)};"
                             f" known: {', '.join(sorted(_REGISTRY))}")
        return cls(*args, **kwargs)
    raise TypeError(f"cannot interpret {metric!r} as a metric")
