"""Building blocks shared by elementwise op declarations (not ops themselves)."""
import numpy as np

from ..base import ShapeError
from .registry import Param

__all__ = ["apply_ufunc", "broadcast_shape", "scalar_param", "unary_forward"]


def apply_ufunc(fn, args, out, req, **kwargs):
    """Evaluate ``fn(*args)`` into ``out`` honouring ``req``.

    ``fn`` must accept ``out=`` (a numpy/cupy ufunc or a function written
    like one); results are cast into ``out``'s dtype.
    """
    if req == "write" or req == "inplace":
        fn(*args, out=out, casting="unsafe", **kwargs)
    elif req == "add":
        out += fn(*args, **kwargs).astype(out.dtype, copy=False)


def unary_forward(ufunc_name):
    """A forward kernel applying ``xp.<ufunc_name>`` elementwise."""
    def forward(xp, attrs, inputs, outputs, req):
        apply_ufunc(getattr(xp, ufunc_name), inputs, outputs[0], req[0])
    forward.__name__ = f"forward_{ufunc_name}"
    return forward


def broadcast_shape(attrs, in_shapes):
    """Shape inference for binary broadcasting ops (numpy rules).

    In a graph where one operand's shape is unknown, it is taken to be the
    other's: that is what MXNet's ``_Plus``-style symbol operators (which are
    elementwise there) infer, and it lets ``fc + bias_var`` size the variable.
    Give the shape explicitly to broadcast instead.
    """
    a, b = in_shapes
    if a is None or b is None:
        known = a if b is None else b
        if known is None:
            return in_shapes, [None]
        return [known, known], [known]
    if a == b:
        return in_shapes, [a]
    try:
        out = np.broadcast_shapes(tuple(a), tuple(b))
    except ValueError:
        raise ShapeError(f"operand shapes {tuple(a)} and {tuple(b)} cannot be broadcast together",
                         argument="rhs", expected=tuple(a), actual=tuple(b)) from None
    return in_shapes, [out]


broadcast_shape.partial = True


def scalar_param():
    return {"scalar": Param(float, 0.0, "The scalar operand.")}


