"""Constraints applied to a weight after each update: max-norm, non-negative, unit-norm."""
from deepkit_engine import nd

__all__ = ["Constraint", "MaxNorm", "NonNeg", "UnitNorm", "get"]


def _norms(w, axis):
    axes = tuple(a for a in range(w.ndim) if a != axis) if axis is not None else None
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

    ``axis`` is the output-unit axis (0 in the engine's (out, in, ...) layout).
    """

    def __init__(self, max_value=2.0, axis=0):
        self.max_value, self.axis = float(max_value), axis

    def __call__(self, w):
        norms = _norms(w, self.axis)
        desired = nd.clip(norms, 0, self.max_value)
        return w * (desired / (norms + 1e-7))

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Clamp negative weights to zero."""

    def __call__(self, w):
        return nd.relu(w)


class UnitNorm(Constraint):
    """Rescale each output unit's incoming weights to unit norm."""

    def __init__(self, axis=0):
        self.axis = axis

    def __call__(self, w):
        return w / (_norms(w, self.axis) + 1e-7)

    def get_config(self):
        return {"axis": self.axis}


_BY_NAME = {"max_norm": MaxNorm, "maxnorm": MaxNorm, "non_neg": NonNeg, "nonneg": NonNeg,
            "unit_norm": UnitNorm, "unitnorm": UnitNorm, "MaxNorm": MaxNorm, "NonNeg": NonNeg,
            "UnitNorm": UnitNorm}


def get(identifier):
    """A constraint from None, a name, a config dict or itself."""
    if identifier is None or isinstance(identifier, Constraint) or callable(identifier):
        return identifier
    if isinstance(identifier, dict):
        return _BY_NAME[identifier["class_name"]].from_config(identifier.get("config", {}))
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    raise ValueError(f"unknown constraint {identifier!r}; use 'max_norm', 'non_neg', "
                     "'unit_norm' or an object")
