"""Losses: ``loss(y_true, y_pred) -> per-sample loss symbol of shape (batch,)``.

Each loss is a class (Keras 3 names, arguments and defaults) whose
``__call__`` builds the loss from engine ops on symbols. The training graph
multiplies the per-sample losses by the sample weights and averages them
over the batch (Keras's ``"sum_over_batch_size"`` reduction), so a loss only
reduces the axes after the batch axis: a class axis is summed where the
formula sums it (cross-entropy, KL divergence, cosine similarity), everything
else is averaged. For ``(batch, features)`` outputs this is exactly Keras's
``mean(..., axis=-1)``.

The same formulas work on NDArrays (``loss.call(nd, y_true, y_pred)``); the
metrics reuse them, and the Keras-style functions (``mean_squared_error(y_true,
y_pred)``, ...) accept symbols, NDArrays or numpy arrays.

Numerical stability:
    ``from_logits=True`` works on raw scores with ``log_softmax`` or the
    ``max(x, 0) - x*z + log1p(exp(-|x|))`` form of the sigmoid cross-entropy,
    so extreme logits never give ``inf`` or ``NaN``. With ``from_logits=False``
    the probabilities are clipped to ``[1e-7, 1 - 1e-7]`` as in Keras; when the
    prediction symbol is directly the output of a ``softmax`` (over the loss
    axis) or a ``sigmoid``, the loss uses that op's input as logits instead
    (as Keras does on TensorFlow), which keeps the gradient exact when the
    probabilities saturate.

Example:
    >>> from deepkit import losses
    >>> from deepkit_engine import symbol as sym
    >>> loss = losses.get("sparse_categorical_crossentropy")
    >>> per_sample = loss(sym.Variable("label"), sym.Variable("scores"))
    >>> losses.mean_squared_error([[0.0, 1.0]], [[1.0, 1.0]]).asnumpy()
    array([0.5], dtype=float32)
"""
import json
import math
import numbers
import warnings

import numpy as np

from deepkit_engine import nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import did_you_mean

__all__ = [
    "Loss", "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "BinaryCrossentropy",
    "MeanSquaredError", "MeanAbsoluteError", "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError", "Huber", "LogCosh", "Hinge", "SquaredHinge",
    "CategoricalHinge", "KLDivergence", "Poisson", "CosineSimilarity",
    "categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy",
    "mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "huber", "log_cosh", "hinge", "squared_hinge",
    "categorical_hinge", "kl_divergence", "poisson", "cosine_similarity",
    "get", "serialize", "deserialize",
]

EPSILON = 1e-7  # Keras's backend.epsilon(): the clipping bound for probabilities.


# -- helpers ----------------------------------------------------------------------------

def per_sample(F, x):
    """Mean over every axis but the batch axis: ``(batch, ...)`` -> ``(batch,)``."""
    return F.mean(x, axis=0, exclude=True)


def _softplus(F, x):
    """``log(1 + exp(x))`` without overflow: ``relu(x) + log1p(exp(-|x|))``."""
    return F.relu(x) + F.log1p(F.exp(-F.abs(x)))


def _l2_normalize(F, x, axis):
    """``x / max(||x||, 1e-6)`` along ``axis`` (Keras's ``l2_normalize``)."""
    return x * F.rsqrt(F.maximum(F.sum(F.square(x), axis=axis, keepdims=True), 1e-12))


def _shaped_like(F, y_true, y_pred):
    """``y_true`` tied to ``y_pred``'s shape in a graph.

    Shape inference runs from inputs to outputs (and between the operands of
    broadcasting ops), so a label that only meets the prediction after a
    unary op would keep an unknown shape at bind time; adding
    ``zeros_like(y_pred)`` lets the label variable take the output's shape.
    """
    if F is not sym:
        return y_true
    return y_true + F.zeros_like(y_pred)


def _head_op(symbol):
    """``(op_name, attrs)`` of the node that produces a single-output symbol."""
    if not isinstance(symbol, sym.Symbol) or len(symbol) != 1:
        return None, {}
    graph = json.loads(symbol.tojson())
    node = graph["nodes"][graph["heads"][0][0]]
    return node["op"], node.get("attrs", {})


def _softmax_input(y_pred, axis):
    """The logits under ``y_pred`` if it is ``softmax(logits, axis)``, else None."""
    op, attrs = _head_op(y_pred)
    if op != "softmax" or attrs.get("temperature", "None") not in ("None", "1", "1.0"):
        return None
    if int(attrs.get("axis", -1)) != int(axis):
        return None
    return y_pred.get_children()[0]


def _sigmoid_input(y_pred):
    """The logits under ``y_pred`` if it is a sigmoid, else None."""
    op, attrs = _head_op(y_pred)
    if op == "sigmoid" or (op == "Activation" and attrs.get("act_type") == "sigmoid"):
        return y_pred.get_children()[0]
    return None


def _warn_double_activation(loss, what):
    warnings.warn(f"{type(loss).__name__} got from_logits=True, but the prediction is the "
                  f"output of a {what}: the loss applies a second {what}. Drop the {what} "
                  "from the model, or use from_logits=False.", stacklevel=4)


def _namespace(*arrays):
    """``(F, arrays)``: ``sym`` for symbols, else ``nd`` with numpy inputs converted."""
    if any(isinstance(a, sym.Symbol) for a in arrays):
        return sym, arrays
    ctx = next((a.ctx for a in arrays if isinstance(a, nd.NDArray)), None)
    dtype = next((a.dtype for a in arrays if isinstance(a, nd.NDArray)), np.float32)
    out = tuple(a if isinstance(a, nd.NDArray)
                else nd.array(np.asarray(a, dtype=dtype), ctx=ctx) for a in arrays)
    return nd, out


def _check_probability(cls, name, value):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0 <= value <= 1:
        raise ValueError(f"{cls}: '{name}' must be a float in [0, 1]. "
                         f"Received: {name}={value!r}")
    return float(value)


def _check_axis(cls, value):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise ValueError(f"{cls}: 'axis' must be an int. Received: axis={value!r}")
    return int(value)


# -- base class -------------------------------------------------------------------------

class Loss:
    """Base class of the losses.

    Subclasses implement :meth:`call` with ``F`` (``sym`` or ``nd``) so that the
    same formula builds the training graph and computes metrics. A subclass
    that only overrides ``__call__(y_true, y_pred)`` (symbols in, per-sample
    symbol out) works for training too.

    Args:
        name: The loss name (defaults to the Keras snake_case name).
    """

    name = "loss"

    def __init__(self, name=None):
        if name is not None:
            if not isinstance(name, str) or not name:
                raise ValueError(f"{type(self).__name__}: 'name' must be a non-empty str. "
                                 f"Received: name={name!r}")
            self.name = name

    def __call__(self, y_true, y_pred):
        """The per-sample loss symbol, shape ``(batch,)``."""
        return self.call(sym, y_true, y_pred)

    def call(self, F, y_true, y_pred):
        """Per-sample losses with the op namespace ``F`` (``sym`` or ``nd``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement call(F, y_true, y_pred)")

    def label_shape(self, output_shape):
        """The shape of ``y_true`` for an output shape (batch axis included)."""
        return tuple(output_shape)

    def label_dtype(self):
        """The dtype the labels hold, or None for the output's float dtype."""
        return None

    def check_label_shape(self, label_shape, output_shape, output=None):
        """Raise a ValueError that explains why labels do not fit the output.

        Args:
            label_shape: Shape of the labels (batch axis included).
            output_shape: Shape of the model output (batch axis included).
            output: The output's name, for the message.
        """
        got, out = tuple(label_shape), tuple(output_shape)
        want = self.label_shape(out)
        if got == want:
            return
        where = f"Output '{output}': " if output else ""
        hint = self._label_hint(got, out, want)
        raise ValueError(f"{where}{self.name} expects labels of shape {want} for an output of "
                         f"shape {out}, but the labels have shape {got}"
                         + (f". {hint}" if hint else ""))

    def check_label_values(self, labels, output_shape, output=None, positions=None):
        """Raise a ValueError for label values this loss cannot learn from.

        The base class accepts any finite value (finiteness is checked where the
        data enters); losses over class indices override this.

        Args:
            labels: The labels as a numpy array (batch axis first).
            output_shape: Shape of the model output (batch axis included).
            output: The output's name, for the message.
            positions: The sample numbers of the rows of ``labels`` in the
                data set (None: the rows are samples 0, 1, ...).
        """

    def _label_hint(self, got, out, want):
        if len(got) + 1 == len(want) and got == want[:-1] and want[-1] == 1:
            return f"Reshape the labels to {want} (y.reshape(-1, 1))"
        if len(got) == len(want) + 1 and got[-1] == 1 and got[:-1] == want:
            return f"Reshape the labels to {want}"
        return ""

    def get_config(self):
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


# -- cross-entropies -------------------------------------------------------------------

class CategoricalCrossentropy(Loss):
    """Cross-entropy between one-hot (or soft) labels and class probabilities.

    ``loss = -sum(y_true * log(y_pred), axis)``, with ``y_pred`` renormalised
    to sum to 1 and clipped to ``[1e-7, 1 - 1e-7]`` (Keras), or
    ``log_softmax(y_pred)`` with ``from_logits=True``.

    Args:
        from_logits: Whether ``y_pred`` holds raw scores instead of
            probabilities.
        label_smoothing: In ``[0, 1]``; the labels become
            ``y * (1 - label_smoothing) + label_smoothing / num_classes``.
        axis: The class axis.
        name: The loss name.

    Labels have the output's shape; integer class labels need
    :class:`SparseCategoricalCrossentropy`.
    """

    name = "categorical_crossentropy"

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, name=None):
        super().__init__(name)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _check_probability(type(self).__name__, "label_smoothing",
                                                  label_smoothing)
        self.axis = _check_axis(type(self).__name__, axis)

    def call(self, F, y_true, y_pred):
        logp = _log_probabilities(self, F, y_pred, self.axis)
        if self.label_smoothing:
            y_true = _shaped_like(F, y_true, y_pred)
            n = F.sum(F.ones_like(y_true), axis=self.axis, keepdims=True)
            y_true = y_true * (1 - self.label_smoothing) + self.label_smoothing / n
        return -per_sample(F, F.sum(y_true * logp, axis=self.axis))

    def _label_hint(self, got, out, want):
        if got == want[:-1] or (len(got) == len(want) and got[-1] == 1 and got[:-1] == want[:-1]):
            return ("These look like integer class indices: use "
                    "loss='sparse_categorical_crossentropy' for integer labels, or one-hot "
                    "encode them")
        return super()._label_hint(got, out, want)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}


def _logits(loss, F, y_pred, axis):
    """The logits of ``y_pred`` (itself with ``from_logits``, or under a softmax), or None."""
    logits = _softmax_input(y_pred, axis) if F is sym else None
    if loss.from_logits:
        if logits is not None:
            _warn_double_activation(loss, "softmax")
        return y_pred
    return logits


def _log_probabilities(loss, F, y_pred, axis):
    """``log(p)`` along ``axis``: log_softmax of logits, or of clipped probabilities."""
    logits = _softmax_input(y_pred, axis) if F is sym else None
    if loss.from_logits:
        if logits is not None:
            _warn_double_activation(loss, "softmax")
        return F.log_softmax(y_pred, axis=axis)
    if logits is not None:
        return F.log_softmax(logits, axis=axis)
    p = y_pred / F.sum(y_pred, axis=axis, keepdims=True)
    return F.log(F.clip(p, EPSILON, 1.0 - EPSILON))


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy with integer class labels.

    The labels hold class indices and have the output's shape without the
    class axis (``(batch,)`` for ``(batch, classes)``); they may be stored as
    floats.

    Args:
        from_logits: Whether ``y_pred`` holds raw scores instead of
            probabilities.
        ignore_class: A label value that contributes no loss (e.g. padding in
            sequences). A sample's loss is the mean over its positions that are
            not ignored (0 if all are); the batch mean still counts it.
        axis: The class axis.
        name: The loss name.
    """

    name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits=False, ignore_class=None, axis=-1, name=None):
        super().__init__(name)
        self.from_logits = bool(from_logits)
        if ignore_class is not None and (not isinstance(ignore_class, numbers.Integral)
                                         or isinstance(ignore_class, bool)):
            raise ValueError("SparseCategoricalCrossentropy: 'ignore_class' must be an int or "
                             f"None. Received: ignore_class={ignore_class!r}")
        self.ignore_class = None if ignore_class is None else int(ignore_class)
        self.axis = _check_axis(type(self).__name__, axis)

    def call(self, F, y_true, y_pred):
        if self.ignore_class is None and self.axis == -1:
            logits = _logits(self, F, y_pred, self.axis)
            if logits is not None:  # one fused op, forward and backward
                return per_sample(F, F._softmax_nll(logits, y_true))
        logp = _log_probabilities(self, F, y_pred, self.axis)
        nll = -F.pick(logp, y_true, axis=self.axis)
        if self.ignore_class is None:
            return per_sample(F, nll)
        keep = y_true != self.ignore_class
        total = F.sum(nll * keep, axis=0, exclude=True)
        return total / F.maximum(F.sum(keep, axis=0, exclude=True), 1.0)

    def label_shape(self, output_shape):
        shape = list(output_shape)
        del shape[self.axis]
        return tuple(shape)

    def check_label_values(self, labels, output_shape, output=None, positions=None):
        """Class indices must be integers in ``[0, classes)`` (or ``ignore_class``).

        Keras's backends clip or gather garbage for such labels; training on
        them would be silently wrong, so they are refused with the offending
        value, its sample and the valid range.
        """
        labels = np.asarray(labels)
        if labels.dtype.kind in "biu":
            bad = (labels < 0) | (labels >= output_shape[self.axis])
            what = "out of range"
        elif labels.dtype.kind == "f":
            with np.errstate(invalid="ignore"):
                whole = np.isfinite(labels) & (labels == np.floor(labels))
            bad = ~whole | (labels < 0) | (labels >= output_shape[self.axis])
            what = None
        else:
            raise ValueError(f"{self.name}: labels must be integer class indices; got an array "
                             f"of dtype {labels.dtype}")
        if self.ignore_class is not None:
            bad &= labels != self.ignore_class
        if not bad.any():
            return
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        value = labels[where].item()
        row = where[0] if positions is None else int(np.asarray(positions)[where[0]])
        position = f"sample {row}" + (f", position {where[1:]}" if len(where) > 1 else "")
        if what is None:
            what = ("not an integer" if not math.isfinite(value) or value != math.floor(value)
                    else "out of range")
        classes = output_shape[self.axis]
        ignore = f" (or ignore_class={self.ignore_class})" if self.ignore_class is not None else ""
        out = f"Output '{output}': " if output else ""
        raise ValueError(f"{out}{self.name}: label {value!r} at {position} is {what}; labels "
                         f"must be integer class indices in [0, {classes}){ignore} for an "
                         f"output with {classes} classes ({int(bad.sum())} bad labels in all)")

    def _label_hint(self, got, out, want):
        if got == out:
            return ("These look like one-hot labels: use loss='categorical_crossentropy' for "
                    "one-hot labels, or pass the class indices (y.argmax(axis=-1))")
        return super()._label_hint(got, out, want)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits,
                "ignore_class": self.ignore_class, "axis": self.axis}


class BinaryCrossentropy(Loss):
    """Binary cross-entropy of independent 0/1 targets, averaged over the non-batch axes.

    ``-(y * log(p) + (1 - y) * log(1 - p))`` with ``p`` clipped to
    ``[1e-7, 1 - 1e-7]``, or with ``from_logits=True`` the stable form
    ``max(x, 0) - x * y + log(1 + exp(-|x|))``.

    Args:
        from_logits: Whether ``y_pred`` holds raw scores instead of
            probabilities.
        label_smoothing: In ``[0, 1]``; labels become
            ``y * (1 - label_smoothing) + 0.5 * label_smoothing``.
        name: The loss name.
    """

    name = "binary_crossentropy"

    def __init__(self, from_logits=False, label_smoothing=0.0, name=None):
        super().__init__(name)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _check_probability(type(self).__name__, "label_smoothing",
                                                  label_smoothing)

    def call(self, F, y_true, y_pred):
        if self.label_smoothing:
            y_true = _shaped_like(F, y_true, y_pred)
            y_true = y_true * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        logits = _sigmoid_input(y_pred) if F is sym else None
        if self.from_logits and logits is not None:
            _warn_double_activation(self, "sigmoid")
        if self.from_logits or logits is not None:
            x = y_pred if self.from_logits else logits
            per = F.relu(x) - x * y_true + F.log1p(F.exp(-F.abs(x)))
        else:
            p = F.clip(y_pred, EPSILON, 1.0 - EPSILON)
            per = -(y_true * F.log(p) + (1.0 - y_true) * F.log(1.0 - p))
        return per_sample(F, per)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing}


# -- regression --------------------------------------------------------------------------

class MeanSquaredError(Loss):
    """``mean(square(y_true - y_pred))`` over the non-batch axes."""

    name = "mean_squared_error"

    def call(self, F, y_true, y_pred):
        return per_sample(F, F.square(y_pred - y_true))


class MeanAbsoluteError(Loss):
    """``mean(abs(y_true - y_pred))`` over the non-batch axes."""

    name = "mean_absolute_error"

    def call(self, F, y_true, y_pred):
        return per_sample(F, F.abs(y_pred - y_true))


class MeanAbsolutePercentageError(Loss):
    """``100 * mean(abs((y_true - y_pred) / max(abs(y_true), 1e-7)))``."""

    name = "mean_absolute_percentage_error"

    def call(self, F, y_true, y_pred):
        diff = F.abs(y_true - y_pred) / F.maximum(F.abs(y_true), EPSILON)
        return 100.0 * per_sample(F, diff)


class MeanSquaredLogarithmicError(Loss):
    """``mean(square(log(1 + max(y_pred, eps)) - log(1 + max(y_true, eps))))``."""

    name = "mean_squared_logarithmic_error"

    def call(self, F, y_true, y_pred):
        y_true = _shaped_like(F, y_true, y_pred)
        diff = F.log1p(F.maximum(y_pred, EPSILON)) - F.log1p(F.maximum(y_true, EPSILON))
        return per_sample(F, F.square(diff))


class Huber(Loss):
    """Huber loss: quadratic for errors up to ``delta``, linear beyond.

    ``0.5 * e**2`` where ``|e| <= delta``, else ``delta * (|e| - 0.5 * delta)``,
    with ``e = y_pred - y_true``; averaged over the non-batch axes.

    Args:
        delta: Positive float, where the loss turns from quadratic to linear.
        name: The loss name.
    """

    name = "huber_loss"

    def __init__(self, delta=1.0, name=None):
        super().__init__(name)
        if not isinstance(delta, numbers.Real) or isinstance(delta, bool) or not delta > 0:
            raise ValueError(f"Huber: 'delta' must be a positive float. Received: delta={delta!r}")
        self.delta = float(delta)

    def call(self, F, y_true, y_pred):
        err = F.abs(y_pred - y_true)
        quad = F.minimum(err, self.delta)  # |e| where quadratic, delta where linear
        return per_sample(F, 0.5 * F.square(quad) + self.delta * (err - quad))

    def get_config(self):
        return {**super().get_config(), "delta": self.delta}


class LogCosh(Loss):
    """``mean(log(cosh(y_pred - y_true)))``, computed without overflow.

    ``log(cosh(x)) = x + softplus(-2x) - log(2)``: about ``x**2 / 2`` for small
    errors and ``|x| - log(2)`` for large ones.
    """

    name = "log_cosh"

    def call(self, F, y_true, y_pred):
        x = y_pred - y_true
        return per_sample(F, x + _softplus(F, -2.0 * x) - math.log(2.0))


# -- hinge -------------------------------------------------------------------------------

def _hinge_labels(F, y_true, y_pred):
    """Keras's conversion: labels that are all 0/1 (in the batch) become -1/1."""
    y_true = _shaped_like(F, y_true, y_pred)
    is_binary = F.min(F.logical_or(y_true == 0.0, y_true == 1.0))  # shape (1,)
    return y_true + is_binary * (y_true - 1.0)


class Hinge(Loss):
    """``mean(max(1 - y_true * y_pred, 0))``; labels are -1/1 (0/1 are converted)."""

    name = "hinge"

    def call(self, F, y_true, y_pred):
        return per_sample(F, F.relu(1.0 - _hinge_labels(F, y_true, y_pred) * y_pred))


class SquaredHinge(Loss):
    """``mean(square(max(1 - y_true * y_pred, 0)))``; labels -1/1 (0/1 are converted)."""

    name = "squared_hinge"

    def call(self, F, y_true, y_pred):
        return per_sample(F, F.square(F.relu(1.0 - _hinge_labels(F, y_true, y_pred) * y_pred)))


class CategoricalHinge(Loss):
    """``max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)`` over the last axis.

    Labels are one-hot, of the output's shape.
    """

    name = "categorical_hinge"

    def call(self, F, y_true, y_pred):
        pos = F.sum(y_true * y_pred, axis=-1)
        neg = F.max((1.0 - y_true) * y_pred, axis=-1)
        return per_sample(F, F.relu(neg - pos + 1.0))


# -- probabilistic -----------------------------------------------------------------------

class KLDivergence(Loss):
    """``sum(y_true * log(y_true / y_pred), axis=-1)`` with both clipped to ``[1e-7, 1]``."""

    name = "kl_divergence"

    def call(self, F, y_true, y_pred):
        t = F.clip(_shaped_like(F, y_true, y_pred), EPSILON, 1.0)
        p = F.clip(y_pred, EPSILON, 1.0)
        return per_sample(F, F.sum(t * (F.log(t) - F.log(p)), axis=-1))


class Poisson(Loss):
    """``mean(y_pred - y_true * log(y_pred + 1e-7))``: for count targets."""

    name = "poisson"

    def call(self, F, y_true, y_pred):
        return per_sample(F, y_pred - y_true * F.log(y_pred + EPSILON))


class CosineSimilarity(Loss):
    """The negative cosine similarity along ``axis``: -1 for aligned vectors.

    ``-sum(l2_normalize(y_true) * l2_normalize(y_pred), axis)``, so minimising
    it aligns the prediction with the target (Keras's sign convention).

    Args:
        axis: The axis along which the vectors lie.
        name: The loss name.
    """

    name = "cosine_similarity"

    def __init__(self, axis=-1, name=None):
        super().__init__(name)
        self.axis = _check_axis(type(self).__name__, axis)

    def call(self, F, y_true, y_pred):
        y_true = _shaped_like(F, y_true, y_pred)
        cos = F.sum(_l2_normalize(F, y_true, self.axis) * _l2_normalize(F, y_pred, self.axis),
                    axis=self.axis)
        return -per_sample(F, cos)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


# -- functions (Keras style) --------------------------------------------------------------

def _function(cls, doc):
    def fn(y_true, y_pred, **kwargs):
        F, (y_true, y_pred) = _namespace(y_true, y_pred)
        return cls(**kwargs).call(F, y_true, y_pred)
    fn.__name__ = fn.__qualname__ = cls.name if cls is not Huber else "huber"
    fn.__doc__ = (f"{doc}\n\n    Per-sample losses ``(batch,)`` of symbols, NDArrays or numpy "
                  f"arrays (as NDArray); keyword arguments as for :class:`{cls.__name__}`.")
    fn.loss_class = cls
    return fn


categorical_crossentropy = _function(CategoricalCrossentropy, "Categorical cross-entropy.")
sparse_categorical_crossentropy = _function(SparseCategoricalCrossentropy,
                                            "Sparse categorical cross-entropy.")
binary_crossentropy = _function(BinaryCrossentropy, "Binary cross-entropy.")
mean_squared_error = _function(MeanSquaredError, "Mean squared error.")
mean_absolute_error = _function(MeanAbsoluteError, "Mean absolute error.")
mean_absolute_percentage_error = _function(MeanAbsolutePercentageError,
                                           "Mean absolute percentage error.")
mean_squared_logarithmic_error = _function(MeanSquaredLogarithmicError,
                                           "Mean squared logarithmic error.")
huber = _function(Huber, "Huber loss.")
log_cosh = _function(LogCosh, "Log-cosh loss.")
hinge = _function(Hinge, "Hinge loss.")
squared_hinge = _function(SquaredHinge, "Squared hinge loss.")
categorical_hinge = _function(CategoricalHinge, "Categorical hinge loss.")
kl_divergence = _function(KLDivergence, "Kullback-Leibler divergence.")
poisson = _function(Poisson, "Poisson loss.")
cosine_similarity = _function(CosineSimilarity, "Negative cosine similarity.")


# -- lookup ------------------------------------------------------------------------------

CLASSES = (CategoricalCrossentropy, SparseCategoricalCrossentropy, BinaryCrossentropy,
           MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError,
           MeanSquaredLogarithmicError, Huber, LogCosh, Hinge, SquaredHinge, CategoricalHinge,
           KLDivergence, Poisson, CosineSimilarity)

_BY_NAME = {cls.name: cls for cls in CLASSES}
_BY_NAME.update({
    "huber": Huber, "logcosh": LogCosh, "mse": MeanSquaredError, "mae": MeanAbsoluteError,
    "mape": MeanAbsolutePercentageError, "msle": MeanSquaredLogarithmicError,
    "kld": KLDivergence, "kullback_leibler_divergence": KLDivergence,
    "bce": BinaryCrossentropy, "cce": CategoricalCrossentropy,
    "scce": SparseCategoricalCrossentropy,
})
_CLASS_BY_NAME = {cls.__name__: cls for cls in CLASSES}
_FUNCTIONS = {fn.loss_class: fn for fn in (
    categorical_crossentropy, sparse_categorical_crossentropy, binary_crossentropy,
    mean_squared_error, mean_absolute_error, mean_absolute_percentage_error,
    mean_squared_logarithmic_error, huber, log_cosh, hinge, squared_hinge, categorical_hinge,
    kl_divergence, poisson, cosine_similarity)}


class FunctionLoss(Loss):
    """A loss from a function ``fn(y_true, y_pred) -> symbol``.

    The function's result is averaged over its non-batch axes, so it may
    return per-element losses. It is saved by name: load it back with
    ``custom_objects={name: fn}``.
    """

    def __init__(self, fn, name=None):
        super().__init__(name or getattr(fn, "__name__", "loss"))
        self.fn = fn

    def __call__(self, y_true, y_pred):
        return per_sample(sym, self.fn(y_true, y_pred))

    def call(self, F, y_true, y_pred):
        return per_sample(F, self.fn(y_true, y_pred))


def _lookup(name):
    cls = _BY_NAME.get(name) or _CLASS_BY_NAME.get(name) or _BY_NAME.get(name.lower())
    if cls is None:
        known = sorted(set(_BY_NAME) | set(_CLASS_BY_NAME))
        raise ValueError(f"unknown loss {name!r}{did_you_mean(name, known)}; known: "
                         f"{', '.join(sorted(_BY_NAME))}")
    return cls


def get(identifier, custom_objects=None):
    """A loss from a name, a ``{'class_name', 'config'}`` dict, a Loss or a function.

    Args:
        identifier: A name or alias (``'mse'``, ``'huber'``, ``'kld'``, a class
            name like ``'MeanSquaredError'``), a config dict from
            :func:`serialize`, a :class:`Loss`, a function of this module, or
            any function ``f(y_true, y_pred) -> symbol``.
        custom_objects: ``{name: class or function}`` for user losses saved by
            name.

    Returns:
        A :class:`Loss`.

    Raises:
        ValueError: an unknown name (with the closest known one).
        TypeError: something that is no loss at all.
    """
    custom = dict(custom_objects or {})
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict):
        if "class_name" not in identifier:
            raise ValueError(f"a loss config needs a 'class_name'. Received: {identifier!r}")
        name, config = identifier["class_name"], dict(identifier.get("config") or {})
        if name == "function":
            fn = custom.get(config.get("name"))
            if fn is None:
                raise ValueError(f"the loss function {config.get('name')!r} is not built in; "
                                 "pass it with custom_objects={name: function}")
            return get(fn)
        cls = custom.get(name) or _lookup(name)
        return cls.from_config(config) if isinstance(cls, type) else get(cls)
    if isinstance(identifier, str):
        if identifier in custom:
            return get(custom[identifier])
        return _lookup(identifier)()
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        cls = getattr(identifier, "loss_class", None)
        if cls is not None and _FUNCTIONS.get(cls) is identifier:
            return cls()
        return FunctionLoss(identifier)
    raise TypeError(f"cannot interpret {identifier!r} as a loss: expected a name, a config "
                    "dict, a Loss or a function f(y_true, y_pred)")


def serialize(loss):
    """``{'class_name', 'config'}`` of a loss; :func:`get` rebuilds it."""
    loss = get(loss)
    if isinstance(loss, FunctionLoss):
        return {"class_name": "function", "config": {"name": loss.name}}
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def deserialize(config, custom_objects=None):
    """The loss of a :func:`serialize` dict."""
    return get(config, custom_objects)
