"""Weight penalties added to the training loss: L1, L2 and L1L2."""
import math
import numbers

import numpy as np

from deepkit_engine import symbol as sym

__all__ = ["Regularizer", "L1", "L2", "L1L2", "l1", "l2", "l1_l2", "get"]


class Regularizer:
    """``penalty(weight_symbol) -> scalar symbol`` added to the loss."""

    def __call__(self, weight):
        raise NotImplementedError

    def numpy(self, value):
        """The same penalty on a numpy array (for checks and reports)."""
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _factor(owner, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(float(value)) or value < 0:
        raise ValueError(f"{owner}: '{name}' must be a finite number >= 0. "
                         f"Received: {name}={value!r}")
    return float(value)


class L1L2(Regularizer):
    """``l1 * sum(|w|) + l2 * sum(w**2)``."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _factor(type(self).__name__, "l1", l1)
        self.l2 = _factor(type(self).__name__, "l2", l2)

    def __call__(self, weight):
        terms = []
        if self.l1:
            terms.append(sym.sum(sym.abs(weight)) * self.l1)
        if self.l2:
            terms.append(sym.sum(sym.square(weight)) * self.l2)
        if not terms:
            return sym.sum(weight) * 0.0
        return terms[0] if len(terms) == 1 else terms[0] + terms[1]

    def numpy(self, value):
        return self.l1 * np.abs(value).sum() + self.l2 * np.square(value).sum()

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """``l1 * sum(|w|)``."""

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """``l2 * sum(w**2)``."""

    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


def l1(l1=0.01):  # noqa: D103 - Keras-style factory
    return L1(l1)


def l2(l2=0.01):  # noqa: D103
    return L2(l2)


def l1_l2(l1=0.01, l2=0.01):  # noqa: D103
    return L1L2(l1, l2)


_BY_NAME = {"l1": L1, "l2": L2, "l1_l2": L1L2, "l1l2": L1L2, "L1": L1, "L2": L2, "L1L2": L1L2}


def get(identifier):
    """A regularizer from None, a name, a config dict or itself."""
    if identifier is None or isinstance(identifier, Regularizer) or callable(identifier):
        return identifier
    if isinstance(identifier, dict):
        if "class_name" not in identifier:
            raise ValueError("a regularizer config needs 'class_name' (one of 'l1', 'l2', "
                             f"'l1_l2'); got keys {sorted(identifier)}")
        cls = _BY_NAME.get(identifier["class_name"])
        if cls is None:
            raise ValueError(f"unknown regularizer {identifier['class_name']!r}; use 'l1', "
                             "'l2', 'l1_l2' or an object")
        return cls.from_config(identifier.get("config", {}))
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    raise ValueError(f"unknown regularizer {identifier!r}; use 'l1', 'l2', 'l1_l2' or an object")
