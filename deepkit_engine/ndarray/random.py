"""``nd.random``: MXNet 1.x's sampling functions over the random ops.

``nd.random.uniform(low, high, shape)`` and its siblings call the registered
sampling ops (``random_uniform``, ``random_gamma``, ...) with MXNet's
argument names and defaults: ``shape`` defaults to ``(1,)``, ``dtype`` to
float32, ``ctx`` to the current context, and ``out=`` writes into an
existing array (whose shape, dtype and context then rule). ``uniform`` and
``normal`` also take NDArrays for their parameters, as MXNet's
``sample_uniform``/``sample_normal`` do: one distribution per element, the
output shape ``param.shape + shape``.
"""
import numbers

from ..ops.registry import get_op
from .functions import make_function
from .ndarray import NDArray

__all__ = ["uniform", "normal", "randn", "randint", "exponential", "gamma", "poisson",
           "negative_binomial", "generalized_negative_binomial", "multinomial", "shuffle"]


_OPS = {}


def _op(name):
    """The imperative function of op ``name`` (made once)."""
    function = _OPS.get(name)
    if function is None:
        function = _OPS[name] = make_function(get_op(name), name)
    return function


def _shape(shape):
    if shape is None:
        return (1,)
    return (int(shape),) if isinstance(shape, numbers.Integral) else tuple(shape)


def _sample(op, params, shape, dtype, ctx, out, default_dtype="float32"):
    fn = _op(op)
    if out is not None:
        return fn(shape=out.shape, dtype=dtype or out.dtype, ctx=out.ctx, out=out, **params)
    return fn(shape=_shape(shape), dtype=dtype or default_dtype, ctx=ctx, **params)


def _affine(op, shift, scale, shape, dtype, ctx, out, what):
    """Per-element uniform/normal samples: ``shift + scale * standard sample``."""
    if not (isinstance(shift, NDArray) and isinstance(scale, NDArray)):
        raise TypeError(f"nd.random.{what}: give both parameters as NDArrays or both as "
                        f"numbers, got {type(shift).__name__} and {type(scale).__name__}")
    if shift.shape != scale.shape:
        raise ValueError(f"nd.random.{what}: the parameter arrays have shapes {shift.shape} "
                         f"and {scale.shape}; they must be equal")
    extra = () if shape is None else _shape(shape)
    full = shift.shape + extra
    base = _op(op)(shape=full, dtype=dtype or shift.dtype, ctx=shift.ctx)
    view = shift.shape + (1,) * len(extra)
    result = base * scale.reshape(view) + shift.reshape(view)
    if out is None:
        return result
    result.copyto(out)
    return out


def uniform(low=0, high=1, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Samples of U[low, high): numbers, or NDArrays of per-element bounds."""
    if isinstance(low, NDArray) or isinstance(high, NDArray):
        return _affine("random_uniform", low, high - low if isinstance(high, NDArray)
                       else high, shape, dtype, ctx, out, "uniform")
    return _sample("random_uniform", {"low": low, "high": high}, shape, dtype, ctx, out)


def normal(loc=0, scale=1, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Samples of N(loc, scale**2): numbers, or NDArrays of per-element parameters."""
    if isinstance(loc, NDArray) or isinstance(scale, NDArray):
        return _affine("random_normal", loc, scale, shape, dtype, ctx, out, "normal")
    return _sample("random_normal", {"loc": loc, "scale": scale}, shape, dtype, ctx, out)


def randn(*shape, loc=0, scale=1, dtype=None, ctx=None, out=None, **kwargs):
    """Normal samples of the shape given as positional sizes: ``randn(2, 3)``."""
    return normal(loc, scale, shape or None, dtype, ctx, out)


def randint(low, high, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Integers from [low, high) (int32 by default)."""
    return _sample("random_randint", {"low": low, "high": high}, shape, dtype, ctx, out,
                   "int32")


def exponential(scale=1, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Exponential samples with mean ``scale`` (rate ``1/scale``), as MXNet's."""
    return _sample("random_exponential", {"lam": 1.0 / scale}, shape, dtype, ctx, out)


def gamma(alpha=1, beta=1, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Gamma samples with shape ``alpha`` and scale ``beta``."""
    return _sample("random_gamma", {"alpha": alpha, "beta": beta}, shape, dtype, ctx, out)


def poisson(lam=1, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Poisson samples with rate ``lam`` (float32 by default, as MXNet)."""
    return _sample("random_poisson", {"lam": lam}, shape, dtype, ctx, out)


def negative_binomial(k=1, p=1, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Failures before the ``k``-th success, each trial succeeding with probability ``p``."""
    return _sample("random_negative_binomial", {"k": k, "p": p}, shape, dtype, ctx, out)


def generalized_negative_binomial(mu=1, alpha=1, shape=None, dtype=None, ctx=None, out=None,
                                  **kwargs):
    """Generalized negative binomial samples (mean ``mu``, dispersion ``alpha``)."""
    return _sample("random_generalized_negative_binomial", {"mu": mu, "alpha": alpha}, shape,
                   dtype, ctx, out)


def multinomial(data, shape=None, get_prob=False, out=None, dtype="int32", **kwargs):
    """Category indices drawn from the probabilities in ``data`` (last axis)."""
    result = _op("sample_multinomial")(data, shape=() if shape is None else _shape(shape),
                                      get_prob=get_prob, dtype=dtype)
    if out is None:
        return result
    (result[0] if get_prob else result).copyto(out)
    return out


def shuffle(data, out=None, **kwargs):
    """``data`` with its first axis randomly permuted."""
    result = _op("shuffle")(data)
    if out is None:
        return result
    result.copyto(out)
    return out
