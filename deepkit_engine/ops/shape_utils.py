"""Helpers shared by the shape-manipulating op families (not ops themselves):
axis checks, the copy kernel of pure reshapes, and the ``OptionalInts``
parameter type of ``slice``'s bounds.
"""
import ast

import numpy as np

from ..base import ShapeError
from .registry import REQUIRED, Param, write_result

__all__ = ["shape_size", "check_axis", "axes_tuple", "contiguous_view", "data_pointer",
           "copy_forward", "first_dtype", "any_unknown", "OptionalInts", "OptionalIntsParam",
           "as_int", "slab", "copy_into"]


def shape_size(dims):
    n = 1
    for d in dims:
        n *= d
    return n


def check_axis(axis, ndim, name="axis", extra=0):
    """``axis`` in ``[-(ndim+extra), ndim+extra)`` made non-negative, else ShapeError."""
    n = ndim + extra
    if not -n <= axis < n:
        raise ShapeError(f"{name}={axis} is out of range for an input with {ndim} "
                         f"dimension(s) (valid: {-n} to {n - 1})", argument=name,
                         expected=f"[{-n}, {n})", actual=axis)
    return axis + n if axis < 0 else axis


def axes_tuple(axis):
    return (axis,) if isinstance(axis, int) else tuple(axis)


def contiguous_view(out, shape):
    """``out`` viewed with ``shape`` when that is surely a view (C-contiguous), else None."""
    return out.reshape(shape) if out.flags.c_contiguous else None


def data_pointer(a):
    interface = getattr(a, "__array_interface__", None)
    return interface["data"][0] if interface is not None else a.data.ptr


def copy_forward(xp, attrs, inputs, outputs, req):
    """Kernel of pure reshapes: the data in C order, unchanged."""
    out, r = outputs[0], req[0]
    if r == "inplace" and data_pointer(out) == data_pointer(inputs[0]):
        return  # the planner gave the output the input's buffer: nothing to move
    if r == "add":
        out += inputs[0].reshape(out.shape)
    elif r != "null":
        out[...] = inputs[0].reshape(out.shape)


def first_dtype(attrs, in_dtypes):
    """Type inference where only input 0 gives the output dtype (others give a shape)."""
    return in_dtypes, [in_dtypes[0]]


def any_unknown(in_shapes):
    return any(s is None for s in in_shapes)


class OptionalInts:
    """Parameter type: a tuple whose entries are ints or None (``slice`` bounds)."""


class OptionalIntsParam(Param):
    """A :class:`Param` for :class:`OptionalInts`: accepts ``(0, None)``, ``3`` or a string."""

    __slots__ = ()

    def __init__(self, default=REQUIRED, doc=""):
        super().__init__(OptionalInts, default, doc)

    def _convert(self, value):
        if isinstance(value, str):
            text = value.strip()
            value = None if text in ("", "None") else ast.literal_eval(text)
        if value is None:
            # A bare None: "no steps" for a () default, else "whole axis 0".
            return () if self.default == () else (None,)
        if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            return (int(value),)
        return tuple(None if v is None else as_int(v) for v in value)

    def describe(self):
        default = "required" if self.default is REQUIRED else f"default={self.default!r}"
        return f"tuple of int or None, {default}"


def as_int(v):
    if isinstance(v, (bool, np.bool_)) or int(v) != v:
        raise ValueError(v)
    return int(v)


def slab(ndim, axis, piece):
    """An index selecting ``piece`` (a slice) along ``axis`` and everything elsewhere."""
    index = [slice(None)] * ndim
    index[axis] = piece
    return tuple(index)


def copy_into(xp, out, value, req):
    """``write_result`` that skips an in-place request (the value is already there)."""
    if req != "inplace":
        write_result(xp, out, value, req)
