"""``sym.random``: MXNet 1.x's sampling functions as symbols.

``sym.random.uniform(low, high, shape)`` and its siblings make nodes of the
registered sampling ops (``random_uniform``, ``random_gamma`` ...) with
MXNet's argument names (``exponential`` takes the mean ``scale`` as MXNet's
does). Each node draws new numbers on every forward pass.
"""
import numbers

from ..ops.registry import get_op
from .symbol import make_function

__all__ = ["uniform", "normal", "randint", "exponential", "gamma", "poisson",
           "negative_binomial", "generalized_negative_binomial", "multinomial", "shuffle"]

_OPS = {}


def _op(name):
    function = _OPS.get(name)
    if function is None:
        function = _OPS[name] = make_function(get_op(name), name)
    return function


def _node(op, params, shape, dtype, name, default_dtype="float32", **kwargs):
    if shape is None:
        shape = (1,)
    elif isinstance(shape, numbers.Integral):
        shape = (int(shape),)
    return _op(op)(shape=tuple(shape), dtype=dtype or default_dtype, name=name, **params,
                   **kwargs)


def uniform(low=0, high=1, shape=None, dtype=None, name=None, **kwargs):
    """Samples of U[low, high)."""
    return _node("random_uniform", {"low": low, "high": high}, shape, dtype, name, **kwargs)


def normal(loc=0, scale=1, shape=None, dtype=None, name=None, **kwargs):
    """Samples of N(loc, scale**2)."""
    return _node("random_normal", {"loc": loc, "scale": scale}, shape, dtype, name, **kwargs)


def randint(low, high, shape=None, dtype=None, name=None, **kwargs):
    """Integers from [low, high) (int32 by default)."""
    return _node("random_randint", {"low": low, "high": high}, shape, dtype, name, "int32",
                 **kwargs)


def exponential(scale=1, shape=None, dtype=None, name=None, **kwargs):
    """Exponential samples with mean ``scale``."""
    return _node("random_exponential", {"lam": 1.0 / scale}, shape, dtype, name, **kwargs)


def gamma(alpha=1, beta=1, shape=None, dtype=None, name=None, **kwargs):
    """Gamma samples with shape ``alpha`` and scale ``beta``."""
    return _node("random_gamma", {"alpha": alpha, "beta": beta}, shape, dtype, name, **kwargs)


def poisson(lam=1, shape=None, dtype=None, name=None, **kwargs):
    """Poisson samples with rate ``lam``."""
    return _node("random_poisson", {"lam": lam}, shape, dtype, name, **kwargs)


def negative_binomial(k=1, p=1, shape=None, dtype=None, name=None, **kwargs):
    """Failures before the ``k``-th success with success probability ``p``."""
    return _node("random_negative_binomial", {"k": k, "p": p}, shape, dtype, name, **kwargs)


def generalized_negative_binomial(mu=1, alpha=1, shape=None, dtype=None, name=None, **kwargs):
    """Generalized negative binomial samples (mean ``mu``, dispersion ``alpha``)."""
    return _node("random_generalized_negative_binomial", {"mu": mu, "alpha": alpha}, shape,
                 dtype, name, **kwargs)


def multinomial(data, shape=None, get_prob=False, dtype="int32", name=None, **kwargs):
    """Category indices drawn from the probabilities in ``data`` (last axis)."""
    shape = () if shape is None else ((int(shape),) if isinstance(shape, numbers.Integral)
                                      else tuple(shape))
    return _op("sample_multinomial")(data, shape=shape, get_prob=get_prob, dtype=dtype,
                                     name=name, **kwargs)


def shuffle(data, name=None, **kwargs):
    """``data`` with its first axis randomly permuted."""
    return _op("shuffle")(data, name=name, **kwargs)
