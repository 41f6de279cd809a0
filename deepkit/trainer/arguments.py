"""Argument checks of ``fit``/``evaluate``/``predict``, with Keras's rules and clear messages.

Each function raises a ValueError (TypeError for a wrong kind of ``x``) that
names the method, the argument and the received value, and returns the
value in its normal form.
"""
import numbers

import numpy as np

__all__ = ["check_batch_size", "check_count", "check_validation_split", "check_x",
           "check_not_empty"]


def _is_int(value):
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool)


def check_batch_size(what, batch_size):
    """``batch_size`` as an int >= 1, or None (iterators bring their own batches)."""
    if batch_size is None:
        return None
    if not _is_int(batch_size) or batch_size < 1:
        raise ValueError(f"{what}: 'batch_size' must be a positive int (or None for data "
                         f"that comes in batches). Received: batch_size={batch_size!r}")
    return int(batch_size)


def check_count(what, name, value, minimum=0, optional=False):
    """An int ``>= minimum`` (``epochs``, ``initial_epoch``, ``steps``...); None if optional."""
    if value is None and optional:
        return None
    if not _is_int(value) or value < minimum:
        raise ValueError(f"{what}: '{name}' must be an int >= {minimum}"
                         f"{' or None' if optional else ''}. Received: {name}={value!r}")
    return int(value)


def check_validation_split(what, fraction, x_is_iterator):
    """``validation_split`` as a float in [0, 1); only for array data."""
    if not isinstance(fraction, numbers.Real) or isinstance(fraction, bool) \
            or not 0 <= fraction < 1:
        raise ValueError(f"{what}: 'validation_split' must be a float in [0, 1). "
                         f"Received: validation_split={fraction!r}")
    if fraction and x_is_iterator:
        raise ValueError(f"{what}: 'validation_split' needs array data (it cuts off the last "
                         f"samples); for an iterator or iterable pass validation_data. "
                         f"Received: validation_split={fraction!r}")
    return float(fraction)


def _describe(value):
    text = repr(value)
    return (text[:60] + "...") if len(text) > 60 else text


def _is_array_like(value):
    if isinstance(value, (str, bytes, numbers.Number)) or value is None:
        return False
    return hasattr(value, "shape") or hasattr(value, "__len__")


def check_x(what, x):
    """Refuse what cannot be model inputs (None, strings, numbers, scalars in containers)."""
    accepted = ("a numpy array, a list or dict of arrays (one per input), a DataIter or an "
                "iterable of batches")
    if x is None:
        raise ValueError(f"{what}: 'x' is required: {accepted}. Received: x=None")
    if isinstance(x, (str, bytes, numbers.Number)):
        raise TypeError(f"{what}: 'x' must be {accepted}. Received: x={_describe(x)} "
                        f"({type(x).__name__})")
    if isinstance(x, dict):
        entries = list(x.items())
    elif isinstance(x, (list, tuple)):
        entries = list(enumerate(x))
    else:
        return
    for key, value in entries:
        if not _is_array_like(value):
            raise TypeError(f"{what}: 'x' must be {accepted}; entry {key!r} is "
                            f"{_describe(value)} ({type(value).__name__})")


def check_not_empty(what, n):
    """Raise when the data set has no samples."""
    if n == 0:
        raise ValueError(f"{what}: the data set is empty (x has 0 samples); there is nothing "
                         f"to {'train on' if what == 'fit' else 'run'}")
