"""Constraints applied to a weight after each update: max-norm, min-max-norm, non-negative, unit-norm.

``axis`` names the axis (or axes) kept apart: the norm is taken over every
other axis. It is the output-unit axis, 0 in the engine's ``(out, in, ...)``
layout, so ``MaxNorm(2.0)`` caps the norm of each unit's (or each filter's)
incoming weights, as Keras's ``MaxNorm`` does in its own layout.
"""
import math
import numbers

from deepkit_engine import nd

__all__ = ["Constraint", "MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm", "get"]

_EPSILON = 1e-7


def _checked_axis(owner, axis):
    if axis is None:
        return None
    if isinstance(axis, (list, tuple)):
        if not axis or not all(isinstance(a, numbers.Integral) for a in axis):
            raise ValueError(f"{owner}: 'axis' must be an int, a non-empty list of ints or "
                             f"None. Received: axis={axis!r}")
        return tuple(int(a) for a in axis)
    if not isinstance(axis, numbers.Integral) or isinstance(axis, bool):
        raise ValueError(f"{owner}: 'axis' must be an int, a list of ints or None. "
                         f"Received: axis={axis!r}")
    return int(axis)


def _checked_value(owner, name, value, minimum=0.0, maximum=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(float(value)) or value < minimum \
            or (maximum is not None and value > maximum):
        bound = f" in [{minimum}, {maximum}]" if maximum is not None else f" >= {minimum}"
        raise ValueError(f"{owner}: '{name}' must be a finite number{bound}. "
                         f"Received: {name}={value!r}")
    return float(value)


def _norms(w, axis):
    """The L2 norm over every axis but ``axis`` (an int or a tuple), kept for broadcasting."""
    if axis is None:
        axes = None
    else:
        keep = {a % w.ndim for a in (axis if isinstance(axis, tuple) else (axis,))}
        axes = tuple(a for a in range(w.ndim) if a not in keep)
    return nd.sqrt(nd.sum(nd.square(w), axis=axes, keepdims=True))


class Constraint:
    """``constraint(weight NDArray) -> NDArray`` of the same shape."""

    def __call__(self, w):
        return w

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class MaxNorm(Constraint):
    """Rescale each output unit's incoming weights to norm <= ``max_value``.

    Args:
        max_value: The largest norm allowed.
        axis: The axis (or axes) kept apart (0: per output unit or filter).
    """

    def __init__(self, max_value=2.0, axis=0):
        self.max_value = _checked_value("MaxNorm", "max_value", max_value)
        self.axis = _checked_axis("MaxNorm", axis)

    def __call__(self, w):
        norms = _norms(w, self.axis)
        desired = nd.clip(norms, 0, self.max_value)
        return w * (desired / (norms + _EPSILON))

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class MinMaxNorm(Constraint):
    """Pull each output unit's norm into ``[min_value, max_value]`` at ``rate`` (Keras 3).

    The new norm is ``rate * clip(norm, min_value, max_value) + (1 - rate) * norm``:
    ``rate=1`` enforces the band at once, smaller rates move towards it.

    Args:
        min_value, max_value: The band of allowed norms.
        rate: How far to move into the band per update, in [0, 1].
        axis: The axis (or axes) kept apart (0: per output unit or filter).
    """

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value = _checked_value("MinMaxNorm", "min_value", min_value)
        self.max_value = _checked_value("MinMaxNorm", "max_value", max_value)
        if self.max_value < self.min_value:
            raise ValueError(f"MinMaxNorm: 'max_value' must be >= 'min_value'. Received: "
                             f"min_value={min_value!r}, max_value={max_value!r}")
        self.rate = _checked_value("MinMaxNorm", "rate", rate, 0.0, 1.0)
        self.axis = _checked_axis("MinMaxNorm", axis)

    def __call__(self, w):
        norms = _norms(w, self.axis)
        desired = nd.clip(norms, self.min_value, self.max_value) * self.rate \
            + norms * (1.0 - self.rate)
        return w * (desired / (norms + _EPSILON))

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate,
                "axis": self.axis}


class NonNeg(Constraint):
    """Clamp negative weights to zero."""

    def __call__(self, w):
        return nd.relu(w)


class UnitNorm(Constraint):
    """Rescale each output unit's incoming weights to unit norm.

    Args:
        axis: The axis (or axes) kept apart (0: per output unit or filter).
    """

    def __init__(self, axis=0):
        self.axis = _checked_axis("UnitNorm", axis)

    def __call__(self, w):
        return w / (_norms(w, self.axis) + _EPSILON)

    def get_config(self):
        return {"axis": self.axis}


_BY_NAME = {"max_norm": MaxNorm, "maxnorm": MaxNorm, "min_max_norm": MinMaxNorm,
            "minmaxnorm": MinMaxNorm, "non_neg": NonNeg, "nonneg": NonNeg,
            "unit_norm": UnitNorm, "unitnorm": UnitNorm, "MaxNorm": MaxNorm,
            "MinMaxNorm": MinMaxNorm, "NonNeg": NonNeg, "UnitNorm": UnitNorm}
_NAMES = "'max_norm', 'min_max_norm', 'non_neg', 'unit_norm'"


def get(identifier):
    """A constraint from None, a name, a config dict (``class_name``, ``config``) or itself."""
    if identifier is None or isinstance(identifier, Constraint) or callable(identifier):
        return identifier
    if isinstance(identifier, dict):
        if "class_name" not in identifier:
            raise ValueError(f"a constraint config needs 'class_name' (one of {_NAMES}); "
                             f"got keys {sorted(identifier)}")
        cls = _BY_NAME.get(identifier["class_name"])
        if cls is None:
            raise ValueError(f"unknown constraint {identifier['class_name']!r}; use {_NAMES} "
                             "or an object")
        return cls.from_config(identifier.get("config", {}))
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    raise ValueError(f"unknown constraint {identifier!r}; use {_NAMES} or an object")
