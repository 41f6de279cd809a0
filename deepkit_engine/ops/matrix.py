"""Matrix and shape-manipulation ops: products, reshapes, broadcasts, joins and slices.

Names, parameters and semantics follow MXNet 1.x (``Reshape``'s special
values, ``dot``'s N-D contraction, ``SliceChannel``, ...), with MXNet's other
spellings registered as aliases. Two MXNet 1.x rules worth knowing:

* ``dot`` of two 1-D arrays is their inner product with shape ``(1,)`` (MXNet
  1.x arrays are at least 1-D); likewise ``squeeze`` of an all-ones shape
  gives ``(1,)``.
* ``dot`` with N-D inputs contracts the last axis of ``lhs`` with the first
  axis of ``rhs``; ``transpose_a``/``transpose_b`` transpose the 2-D view
  of an input (``lhs`` as ``(lhs.shape[0], rest)``, ``rhs`` as
  ``(rest, rhs.shape[-1])``), so ``transpose_a`` contracts the *first* axis
  of ``lhs`` instead.

Products run ``xp.matmul`` straight into the output (BLAS, no copy) when
the request is a plain write; view-like ops (reshape, transpose, broadcast,
slice) copy their input view into the output once.

Gradients are compositions of these ops (the inverse transpose, a
``reshape_like`` back, ``_reduce_to_like`` for broadcasts, reshape + sum for
tile and repeat, ...) except where the graph would need shapes it cannot know:
``_backward_dot`` (one product per input, any N-D layout), ``_backward_concat``
and ``_backward_slice``/``_slice_axis``/``_slice_like`` (zeros with the
incoming gradient in the sliced region). Each of those is linear in the
incoming gradient and declares its own gradient, so second order works
throughout. Shape-only inputs (``reshape_like``'s rhs, ...) get no gradient.
"""
import ast

import numpy as np

from ..base import ShapeError
from .registry import REQUIRED, Axes, OpDef, Param, Shape, register, write_result

__all__ = ["infer_reshape", "OptionalInts"]


# -- helpers -------------------------------------------------------------------

def _prod(dims):
    n = 1
    for d in dims:
        n *= d
    return n


def _axis(axis, ndim, name="axis", extra=0):
    """``axis`` in ``[-(ndim+extra), ndim+extra)`` made non-negative, else ShapeError."""
    n = ndim + extra
    if not -n <= axis < n:
        raise ShapeError(f"{name}={axis} is out of range for an input with {ndim} "
                         f"dimension(s) (valid: {-n} to {n - 1})", argument=name,
                         expected=f"[{-n}, {n})", actual=axis)
    return axis + n if axis < 0 else axis


def _axes_tuple(axis):
    return (axis,) if isinstance(axis, int) else tuple(axis)


def _contiguous_view(out, shape):
    """``out`` viewed with ``shape`` when that is surely a view (C-contiguous), else None."""
    return out.reshape(shape) if out.flags.c_contiguous else None


def _data_pointer(a):
    interface = getattr(a, "__array_interface__", None)
    return interface["data"][0] if interface is not None else a.data.ptr


def _copy_forward(xp, attrs, inputs, outputs, req):
    """Kernel of pure reshapes: the data in C order, unchanged."""
    out, r = outputs[0], req[0]
    if r == "inplace" and _data_pointer(out) == _data_pointer(inputs[0]):
        return  # the planner gave the output the input's buffer: nothing to move
    if r == "add":
        out += inputs[0].reshape(out.shape)
    elif r != "null":
        out[...] = inputs[0].reshape(out.shape)


def _first_dtype(attrs, in_dtypes):
    """Type inference where only input 0 gives the output dtype (others give a shape)."""
    return in_dtypes, [in_dtypes[0]]


def _unknown(in_shapes):
    return any(s is None for s in in_shapes)


class OptionalInts:
    """Parameter type: a tuple whose entries are ints or None (``slice`` bounds)."""


class _OptionalIntsParam(Param):
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
        return tuple(None if v is None else _int(v) for v in value)

    def describe(self):
        default = "required" if self.default is REQUIRED else f"default={self.default!r}"
        return f"tuple of int or None, {default}"


def _int(v):
    if isinstance(v, (bool, np.bool_)) or int(v) != v:
        raise ValueError(v)
    return int(v)


# -- products ------------------------------------------------------------------

def _dot_plan(lshape, rshape, ta, tb):
    """``(M, K, N, out_shape)`` of MXNet's dot as one 2-D ``(M, K) @ (K, N)`` product."""
    if not lshape or not rshape:
        raise ShapeError(f"dot needs inputs with at least 1 dimension, got lhs {tuple(lshape)} "
                         f"and rhs {tuple(rshape)}", argument="lhs" if not lshape else "rhs",
                         actual=tuple(lshape) if not lshape else tuple(rshape))
    if len(lshape) == 1:
        m, kl, lpart = 1, lshape[0], ()
    elif ta:
        m, kl, lpart = _prod(lshape[1:]), lshape[0], tuple(lshape[1:])
    else:
        m, kl, lpart = _prod(lshape[:-1]), lshape[-1], tuple(lshape[:-1])
    if len(rshape) == 1:
        n, kr, rpart = 1, rshape[0], ()
    elif tb:
        n, kr, rpart = _prod(rshape[:-1]), rshape[-1], tuple(rshape[:-1])
    else:
        n, kr, rpart = _prod(rshape[1:]), rshape[0], tuple(rshape[1:])
    if kl != kr:
        lwhich = "first" if ta and len(lshape) > 1 else "last"
        rwhich = "last" if tb and len(rshape) > 1 else "first"
        raise ShapeError(
            f"inner dimensions do not match: lhs {tuple(lshape)} has {kl} along its {lwhich} "
            f"axis but rhs {tuple(rshape)} has {kr} along its {rwhich} axis "
            f"(transpose_a={ta}, transpose_b={tb})", argument="rhs", expected=kl, actual=kr)
    return m, kl, n, (lpart + rpart) or (1,)


def _dot_infer_shape(attrs, in_shapes):
    if _unknown(in_shapes):
        return in_shapes, [None]
    lshape, rshape = in_shapes
    return in_shapes, [_dot_plan(lshape, rshape, attrs.transpose_a, attrs.transpose_b)[3]]


def _dot_views(lhs, rhs, ta, tb):
    """``(a, b, m, k, n)``: the 2-D ``(M, K)`` and ``(K, N)`` operands of the forward product."""
    m, k, n, _ = _dot_plan(lhs.shape, rhs.shape, ta, tb)
    if lhs.ndim == 1:
        a = lhs.reshape(1, k)
    elif ta:
        a = lhs.reshape(k, m).T
    else:
        a = lhs.reshape(m, k)
    if rhs.ndim == 1:
        b = rhs.reshape(k, 1)
    elif tb:
        b = rhs.reshape(n, k).T
    else:
        b = rhs.reshape(k, n)
    return a, b, m, k, n


def _matmul_into(xp, x, y, out, shape, req):
    """``x @ y`` (of 2-D ``shape``) stored into ``out`` honouring ``req``."""
    if req == "null":
        return
    view = _contiguous_view(out, shape) if req != "add" else None
    if view is not None:
        xp.matmul(x, y, out=view)
    else:
        write_result(xp, out, xp.matmul(x, y).reshape(out.shape), req)


def _dot_forward(xp, attrs, inputs, outputs, req):
    lhs, rhs = inputs
    if req[0] == "null":
        return
    a, b, m, _, n = _dot_views(lhs, rhs, attrs.transpose_a, attrs.transpose_b)
    _matmul_into(xp, a, b, outputs[0], (m, n), req[0])


def _batch_dot_infer_shape(attrs, in_shapes):
    if _unknown(in_shapes):
        return in_shapes, [None]
    lshape, rshape = (tuple(s) for s in in_shapes)
    if len(lshape) < 3 or len(lshape) != len(rshape):
        raise ShapeError(f"needs two inputs with the same number (>= 3) of dimensions "
                         f"(batch..., rows, cols), got lhs {lshape} and rhs {rshape}",
                         argument="rhs" if len(lshape) >= 3 else "lhs",
                         expected=len(lshape), actual=len(rshape))
    if lshape[:-2] != rshape[:-2]:
        raise ShapeError(f"batch dimensions differ: lhs {lshape} has {lshape[:-2]} but rhs "
                         f"{rshape} has {rshape[:-2]}", argument="rhs",
                         expected=lshape[:-2], actual=rshape[:-2])
    m, kl = (lshape[-1], lshape[-2]) if attrs.transpose_a else lshape[-2:]
    kr, n = (rshape[-1], rshape[-2]) if attrs.transpose_b else rshape[-2:]
    if kl != kr:
        raise ShapeError(f"inner dimensions do not match: lhs {lshape} gives {kl} and rhs "
                         f"{rshape} gives {kr} (transpose_a={attrs.transpose_a}, "
                         f"transpose_b={attrs.transpose_b})", argument="rhs", expected=kl,
                         actual=kr)
    return in_shapes, [lshape[:-2] + (m, n)]


def _batched_matmul(xp, a, b, out, req, alpha=1.0):
    """``alpha * a @ b`` (batched) into ``out`` honouring ``req``."""
    if req == "null":
        return
    if req != "add" and out.flags.c_contiguous:
        xp.matmul(a, b, out=out)
        if alpha != 1.0:
            xp.multiply(out, alpha, out=out, casting="unsafe")
        return
    result = xp.matmul(a, b)
    if alpha != 1.0:
        result = xp.multiply(result, alpha).astype(out.dtype, copy=False)
    write_result(xp, out, result, req)


def _batch_dot_forward(xp, attrs, inputs, outputs, req):
    a, b = inputs
    if attrs.transpose_a:
        a = xp.swapaxes(a, -1, -2)
    if attrs.transpose_b:
        b = xp.swapaxes(b, -1, -2)
    _batched_matmul(xp, a, b, outputs[0], req[0])


def _gemm2_infer_shape(attrs, in_shapes):
    if _unknown(in_shapes):
        return in_shapes, [None]
    ashape, bshape = (tuple(s) for s in in_shapes)
    if len(ashape) < 2 or len(ashape) != len(bshape):
        raise ShapeError(f"needs A and B with the same number (>= 2) of dimensions, got A "
                         f"{ashape} and B {bshape}", argument="B" if len(ashape) >= 2 else "A",
                         expected=len(ashape), actual=len(bshape))
    ndim = len(ashape)
    row = _axis(attrs.axis, ndim)
    if row == ndim - 1:
        raise ShapeError(f"axis={attrs.axis} is the column axis (the last one); the row axis "
                         f"must come before it", argument="axis", actual=attrs.axis)
    a = list(ashape)
    b = list(bshape)
    a[row], a[-2] = a[-2], a[row]
    b[row], b[-2] = b[-2], b[row]
    if a[:-2] != b[:-2]:
        raise ShapeError(f"batch dimensions differ: A {ashape} and B {bshape} (matrices on "
                         f"axes ({row}, {ndim - 1}))", argument="B")
    m, kl = (a[-1], a[-2]) if attrs.transpose_a else (a[-2], a[-1])
    kr, n = (b[-1], b[-2]) if attrs.transpose_b else (b[-2], b[-1])
    if kl != kr:
        raise ShapeError(f"inner dimensions do not match: A {ashape} gives {kl} and B {bshape} "
                         f"gives {kr} (transpose_a={attrs.transpose_a}, "
                         f"transpose_b={attrs.transpose_b}, axis={attrs.axis})", argument="B",
                         expected=kl, actual=kr)
    out = a[:-2] + [m, n]
    out[row], out[-2] = out[-2], out[row]
    return in_shapes, [tuple(out)]


def _gemm2_forward(xp, attrs, inputs, outputs, req):
    a, b = inputs
    out, r = outputs[0], req[0]
    ndim = a.ndim
    row = attrs.axis + ndim if attrs.axis < 0 else attrs.axis
    if row != ndim - 2:
        a = xp.swapaxes(a, row, ndim - 2)
        b = xp.swapaxes(b, row, ndim - 2)
    if attrs.transpose_a:
        a = xp.swapaxes(a, -1, -2)
    if attrs.transpose_b:
        b = xp.swapaxes(b, -1, -2)
    if row == ndim - 2:
        _batched_matmul(xp, a, b, out, r, attrs.alpha)
    elif r != "null":
        result = xp.matmul(a, b)
        if attrs.alpha != 1.0:
            result = xp.multiply(result, attrs.alpha).astype(out.dtype, copy=False)
        write_result(xp, out, xp.swapaxes(result, row, ndim - 2), r)


# Gradients: dot's are _backward_dot nodes (one product each, whatever the N-D layout,
# which a composition of reshapes could not express without knowing the shapes);
# batch_dot's and linalg_gemm2's are products of the same kind.

def _backward_dot_infer_shape(attrs, in_shapes):
    gshape, lshape, rshape = in_shapes
    target = lshape if attrs.wrt == "lhs" else rshape
    if lshape is None or rshape is None:
        return in_shapes, [target]
    expected = _dot_plan(lshape, rshape, attrs.transpose_a, attrs.transpose_b)[3]
    if gshape is not None and tuple(gshape) != expected:
        raise ShapeError(f"ograd has shape {tuple(gshape)} but dot of lhs {tuple(lshape)} and "
                         f"rhs {tuple(rshape)} gives {expected}", argument="ograd",
                         expected=expected, actual=tuple(gshape))
    return [expected, lshape, rshape], [target]


def _backward_dot_forward(xp, attrs, inputs, outputs, req):
    g, lhs, rhs = inputs
    out, r = outputs[0], req[0]
    if r == "null":
        return
    ta, tb = attrs.transpose_a, attrs.transpose_b
    a, b, m, k, n = _dot_views(lhs, rhs, ta, tb)
    g2 = g.reshape(m, n)
    if attrs.wrt == "lhs":  # d/da = g2 @ b.T, stored as lhs is laid out
        if ta and lhs.ndim > 1:
            _matmul_into(xp, b, g2.T, out, (k, m), r)
        else:
            _matmul_into(xp, g2, b.T, out, (m, k), r)
    elif tb and rhs.ndim > 1:  # d/db = a.T @ g2
        _matmul_into(xp, g2.T, a, out, (n, k), r)
    else:
        _matmul_into(xp, a.T, g2, out, (k, n), r)


def _dot_gradient(F, node, ograds):
    g = ograds[0]
    lhs, rhs = node.inputs
    flags = {"transpose_a": node.attrs.transpose_a, "transpose_b": node.attrs.transpose_b}
    return [F._backward_dot(g, lhs, rhs, wrt="lhs", **flags),
            F._backward_dot(g, lhs, rhs, wrt="rhs", **flags)]


def _backward_dot_gradient(F, node, ograds):
    # dot is bilinear, D(lhs, rhs); this op is D's adjoint in one argument, so with
    # o = ograd of its output: <o, D_lhs*(g; rhs)> = <D(o, rhs), g>, and likewise for rhs.
    o = ograds[0]
    g, lhs, rhs = node.inputs
    flags = {"transpose_a": node.attrs.transpose_a, "transpose_b": node.attrs.transpose_b}
    if node.attrs.wrt == "lhs":
        return [F.dot(o, rhs, **flags), None, F._backward_dot(g, o, rhs, wrt="rhs", **flags)]
    return [F.dot(lhs, o, **flags), F._backward_dot(g, lhs, o, wrt="lhs", **flags), None]


def _matrix_product_gradient(F, node, ograds, product, **extra):
    """Gradients of ``op(A) @ op(B)`` as two more products of the same kind.

    ``product`` is batch_dot or linalg_gemm2 (``extra``: its alpha and axis),
    so the gradients are differentiable again in the same way.
    """
    g = ograds[0]
    a, b = node.inputs
    ta, tb = node.attrs.transpose_a, node.attrs.transpose_b
    if not ta and not tb:
        return [product(g, b, transpose_b=True, **extra), product(a, g, transpose_a=True, **extra)]
    if ta and not tb:
        return [product(b, g, transpose_b=True, **extra), product(a, g, **extra)]
    if tb and not ta:
        return [product(g, b, **extra), product(g, a, transpose_a=True, **extra)]
    return [product(b, g, transpose_a=True, transpose_b=True, **extra),
            product(g, a, transpose_a=True, transpose_b=True, **extra)]


def _batch_dot_gradient(F, node, ograds):
    return _matrix_product_gradient(F, node, ograds, F.batch_dot)


def _gemm2_gradient(F, node, ograds):
    return _matrix_product_gradient(F, node, ograds, F.linalg_gemm2, alpha=node.attrs.alpha,
                                    axis=node.attrs.axis)


#: MXNet's storage-type hint, accepted (any value, "None" included) so that MXNet code and
#: saved graphs load; deepkit arrays are dense, so it changes nothing.
_FORWARD_STYPE = Param(str, None, "Accepted for MXNet compatibility; the result is always dense.")

_TRANSPOSE_PARAMS = {
    "transpose_a": Param(bool, False, "Transpose the first input before the product."),
    "transpose_b": Param(bool, False, "Transpose the second input before the product."),
}

register(OpDef(
    "dot", _dot_forward, inputs=("lhs", "rhs"),
    params=dict(_TRANSPOSE_PARAMS, forward_stype=_FORWARD_STYPE),
    infer_shape=_dot_infer_shape, gradient=_dot_gradient,
    doc="Dot product: contracts the last axis of lhs with the first axis of rhs (MXNet "
        "semantics; 1-D . 1-D gives shape (1,))."))

register(OpDef(
    "batch_dot", _batch_dot_forward, inputs=("lhs", "rhs"),
    params=dict(_TRANSPOSE_PARAMS, forward_stype=_FORWARD_STYPE),
    infer_shape=_batch_dot_infer_shape, gradient=_batch_dot_gradient,
    doc="Batched matrix product of (B..., M, K) and (B..., K, N) arrays (3-D in MXNet; more "
        "leading batch axes are accepted)."))

register(OpDef(
    "linalg_gemm2", _gemm2_forward, inputs=("A", "B"),
    params=dict(_TRANSPOSE_PARAMS,
                alpha=Param(float, 1.0, "Scalar factor of the product."),
                axis=Param(int, -2, "Axis of the matrix rows (columns are the last axis).")),
    infer_shape=_gemm2_infer_shape, aliases=("_linalg_gemm2",), gradient=_gemm2_gradient,
    doc="``alpha * op(A) @ op(B)`` batched over the leading axes (op: optional transpose)."))

register(OpDef(
    "_backward_dot", _backward_dot_forward, inputs=("ograd", "lhs", "rhs"),
    params=dict(_TRANSPOSE_PARAMS,
                wrt=Param(str, "lhs", "Which input's gradient to compute.",
                          choices=("lhs", "rhs"))),
    infer_shape=_backward_dot_infer_shape, gradient=_backward_dot_gradient,
    doc="Gradient of dot(lhs, rhs) (with the same transpose flags) for lhs or rhs, given "
        "the gradient of its output: one product, laid out as that input."))


# -- reshapes ------------------------------------------------------------------

def infer_reshape(dshape, shape, reverse=False):
    """The output shape of MXNet's ``Reshape`` (pure: no data needed).

    Special values in ``shape``: ``0`` copies the input dimension; ``-1``
    infers one dimension from the size; ``-2`` copies all remaining input
    dimensions; ``-3`` merges two consecutive input dimensions; ``-4`` splits
    one input dimension into the two values that follow it (one may be
    ``-1``). With ``reverse=True`` the values are matched right to left.
    Each of ``-1`` and a positive value also consumes one input dimension, so
    a later ``0`` copies the dimension after it.

    Args:
        dshape: The input shape.
        shape: The requested shape with special values.
        reverse: Infer the special values from right to left.

    Returns:
        The output shape as a tuple.

    Raises:
        ShapeError: The request is malformed or the sizes differ.
    """
    dshape, spec = tuple(dshape), tuple(shape)
    dims = list(reversed(dshape)) if reverse else list(dshape)
    req = list(reversed(spec)) if reverse else list(spec)
    ndim = len(dims)
    out, src, inferred, i = [], 0, -1, 0

    def bad(msg):
        return ShapeError(f"shape={spec}{' (reverse=True)' if reverse else ''} cannot apply to "
                          f"an input of shape {dshape}: {msg}", argument="shape", actual=spec)

    while i < len(req):
        v = req[i]
        if v == 0:
            if src >= ndim:
                raise bad(f"0 copies input dimension {src} but the input has {ndim}")
            out.append(dims[src])
            src += 1
        elif v == -1:
            if inferred >= 0:
                raise bad("only one dimension can be -1")
            inferred = len(out)
            out.append(1)
            src += 1
        elif v == -2:
            out.extend(dims[src:])
            src = ndim
        elif v == -3:
            if src + 1 >= ndim:
                raise bad(f"-3 merges input dimensions {src} and {src + 1} but the input has "
                          f"{ndim}")
            out.append(dims[src] * dims[src + 1])
            src += 2
        elif v == -4:
            if i + 2 >= len(req):
                raise bad("-4 must be followed by the two dimensions to split into")
            if src >= ndim:
                raise bad(f"-4 splits input dimension {src} but the input has {ndim}")
            d0, d1, d2 = dims[src], req[i + 1], req[i + 2]
            src += 1
            i += 2
            if d1 == -1 and d2 == -1:
                raise bad("the two dimensions after -4 cannot both be -1")
            if d1 == -1:
                d1 = d0 // d2 if d2 > 0 else -1
            elif d2 == -1:
                d2 = d0 // d1 if d1 > 0 else -1
            if d1 < 0 or d2 < 0 or d1 * d2 != d0:
                raise bad(f"-4 splits dimension {d0} into {req[i - 1]} x {req[i]}, "
                          "which do not multiply to it")
            out += [d1, d2]
        elif v > 0:
            out.append(v)
            src += 1
        else:
            raise bad(f"{v} is not a valid dimension (use > 0 or one of 0, -1, -2, -3, -4)")
        i += 1
    total = _prod(dshape)
    if inferred >= 0:
        known = _prod(out)
        if known == 0 or total % known:
            raise bad(f"cannot infer the -1 dimension: {total} elements are not a multiple "
                      f"of the other dimensions' product {known}")
        out[inferred] = total // known
    if reverse:
        out.reverse()
    out = tuple(out)
    if _prod(out) != total:
        raise ShapeError(f"cannot reshape an input of shape {dshape} ({total} elements) into "
                         f"shape {out} ({_prod(out)} elements) (from shape={spec})",
                         argument="shape", expected=total, actual=out)
    return out


def _legacy_target_shape(dshape, target, keep_highest):
    out = list(target)
    start = 1 if keep_highest else 0
    if keep_highest and out:
        out[0] = dshape[0]
    zeros = [i for i in range(start, len(out)) if out[i] == 0]
    if len(zeros) == 1:
        out[zeros[0]] = 1
        known = _prod(out)
        out[zeros[0]] = _prod(dshape) // known if known else 0
    out = tuple(out)
    if _prod(out) != _prod(dshape):
        raise ShapeError(f"cannot reshape an input of shape {tuple(dshape)} into target_shape "
                         f"{tuple(target)} (gives {out})", argument="target_shape",
                         expected=_prod(dshape), actual=out)
    return out


def _reshape_gradient(F, node, ograds):
    return [F.reshape_like(ograds[0], node.inputs[0])]


def _reshape_infer_shape(attrs, in_shapes):
    (dshape,) = in_shapes
    if dshape is None:
        return in_shapes, [None]
    if not attrs.shape and attrs.target_shape:
        return in_shapes, [_legacy_target_shape(dshape, attrs.target_shape, attrs.keep_highest)]
    return in_shapes, [infer_reshape(dshape, attrs.shape, attrs.reverse)]


register(OpDef(
    "reshape", _copy_forward,
    params={
        "shape": Param(Shape, (), "Target shape; may use 0, -1, -2, -3, -4 (see the docs)."),
        "reverse": Param(bool, False, "Infer the special values from right to left."),
        "target_shape": Param(Shape, None, "(Deprecated: use shape) target shape; one 0 "
                                           "entry is inferred."),
        "keep_highest": Param(bool, False, "(Deprecated: use shape) keep the first dimension "
                                           "of the input with target_shape."),
    },
    infer_shape=_reshape_infer_shape, aliases=("Reshape",), inplace=((0, 0),),
    gradient=_reshape_gradient,
    doc="The same data in a new shape (C order). Special values in `shape`: 0 copies an "
        "input dim, -1 infers one, -2 copies the rest, -3 merges two, -4 splits one in two."))


def _index_or(value, default, ndim):
    if value is None:
        return default
    return value + ndim if value < 0 else value


def _reshape_like_infer_shape(attrs, in_shapes):
    if _unknown(in_shapes):
        return in_shapes, [None]
    lshape, rshape = (tuple(s) for s in in_shapes)
    lb = _index_or(attrs.lhs_begin, 0, len(lshape))
    le = _index_or(attrs.lhs_end, len(lshape), len(lshape))
    rb = _index_or(attrs.rhs_begin, 0, len(rshape))
    re_ = _index_or(attrs.rhs_end, len(rshape), len(rshape))
    if not (0 <= lb <= le <= len(lshape)) or not (0 <= rb <= re_ <= len(rshape)):
        raise ShapeError(f"the ranges lhs[{attrs.lhs_begin}:{attrs.lhs_end}] and "
                         f"rhs[{attrs.rhs_begin}:{attrs.rhs_end}] are not valid for lhs "
                         f"{lshape} and rhs {rshape}", argument="lhs_begin")
    out = lshape[:lb] + rshape[rb:re_] + lshape[le:]
    if _prod(out) != _prod(lshape):
        raise ShapeError(f"cannot reshape lhs {lshape} ({_prod(lshape)} elements) like rhs "
                         f"{rshape}: the result {out} has {_prod(out)} elements",
                         argument="rhs", expected=_prod(lshape), actual=out)
    return in_shapes, [out]


register(OpDef(
    "reshape_like", _copy_forward, inputs=("lhs", "rhs"),
    params={
        "lhs_begin": Param(int, None, "First lhs axis to replace (default 0)."),
        "lhs_end": Param(int, None, "End of the lhs axes to replace (default: ndim)."),
        "rhs_begin": Param(int, None, "First rhs axis whose size is used (default 0)."),
        "rhs_end": Param(int, None, "End of the rhs axes used (default: ndim)."),
    },
    infer_shape=_reshape_like_infer_shape, infer_type=_first_dtype, inplace=((0, 0),),
    gradient=lambda F, node, ograds: [F.reshape_like(ograds[0], node.inputs[0]), None],
    doc="lhs reshaped to rhs's shape (or lhs axes [lhs_begin, lhs_end) replaced by rhs axes "
        "[rhs_begin, rhs_end)); rhs only supplies a shape."))


def _flatten_infer_shape(attrs, in_shapes):
    (shape,) = in_shapes
    if shape is None:
        return in_shapes, [None]
    if not shape:
        raise ShapeError("cannot flatten a 0-d input: it needs a first (batch) axis",
                         argument="data", actual=tuple(shape))
    return in_shapes, [(shape[0], _prod(shape[1:]))]


register(OpDef("flatten", _copy_forward, infer_shape=_flatten_infer_shape,
               aliases=("Flatten",), inplace=((0, 0),), gradient=_reshape_gradient,
               doc="Collapses all axes but the first: (N, d1, d2, ...) -> (N, d1*d2*...)."))


def _expand_dims_infer_shape(attrs, in_shapes):
    (shape,) = in_shapes
    if shape is None:
        return in_shapes, [None]
    axis = _axis(attrs.axis, len(shape), extra=1)
    return in_shapes, [tuple(shape[:axis]) + (1,) + tuple(shape[axis:])]


register(OpDef("expand_dims", _copy_forward,
               params={"axis": Param(int, REQUIRED, "Position of the new size-1 axis, in "
                                                    "[-ndim-1, ndim].")},
               infer_shape=_expand_dims_infer_shape, inplace=((0, 0),),
               gradient=_reshape_gradient,
               doc="Inserts a size-1 axis at position `axis`."))


def _squeeze_infer_shape(attrs, in_shapes):
    (shape,) = in_shapes
    if shape is None:
        return in_shapes, [None]
    shape = tuple(shape)
    if attrs.axis is None:
        drop = {i for i, d in enumerate(shape) if d == 1}
    else:
        drop = set()
        for a in _axes_tuple(attrs.axis):
            i = _axis(a, len(shape))
            if shape[i] != 1:
                raise ShapeError(f"cannot squeeze axis {a} of an input of shape {shape}: its "
                                 f"size is {shape[i]}, not 1", argument="axis",
                                 expected=1, actual=shape[i])
            if i in drop:
                raise ShapeError(f"axis={attrs.axis} lists axis {i} twice", argument="axis")
            drop.add(i)
    out = tuple(d for i, d in enumerate(shape) if i not in drop)
    return in_shapes, [out if out or not shape else (1,)]


register(OpDef("squeeze", _copy_forward,
               params={"axis": Param(Axes, None, "Size-1 axes to remove; None removes all.")},
               infer_shape=_squeeze_infer_shape, inplace=((0, 0),),
               gradient=_reshape_gradient,
               doc="Removes size-1 axes (MXNet 1.x: an all-ones shape becomes (1,))."))


# -- transposes ----------------------------------------------------------------

def _transpose_axes(axes, ndim):
    if not axes:
        return tuple(range(ndim - 1, -1, -1))
    if len(axes) != ndim:
        raise ShapeError(f"axes={tuple(axes)} must list each of the input's {ndim} axes once",
                         argument="axes", expected=ndim, actual=tuple(axes))
    norm = tuple(_axis(a, ndim, "axes") for a in axes)
    if sorted(norm) != list(range(ndim)):
        raise ShapeError(f"axes={tuple(axes)} is not a permutation of the input's {ndim} axes",
                         argument="axes", actual=tuple(axes))
    return norm


def _transpose_infer_shape(attrs, in_shapes):
    (shape,) = in_shapes
    if shape is None:
        return in_shapes, [None]
    perm = _transpose_axes(attrs.axes, len(shape))
    return in_shapes, [tuple(shape[a] for a in perm)]


def _transpose_forward(xp, attrs, inputs, outputs, req):
    x = inputs[0]
    write_result(xp, outputs[0], xp.transpose(x, _transpose_axes(attrs.axes, x.ndim)), req[0])


def _transpose_gradient(F, node, ograds):
    axes = node.attrs.axes
    if not axes:
        return [F.transpose(ograds[0])]  # reversing is its own inverse
    n = len(axes)
    perm = [a + n if a < 0 else a for a in axes]
    inverse = [0] * n
    for i, a in enumerate(perm):
        inverse[a] = i
    return [F.transpose(ograds[0], axes=tuple(inverse))]


register(OpDef("transpose", _transpose_forward,
               params={"axes": Param(Shape, (), "Permutation of the axes; () reverses them.")},
               infer_shape=_transpose_infer_shape, gradient=_transpose_gradient,
               doc="Permutes the axes (reverses them by default)."))


def _swapaxes_infer_shape(attrs, in_shapes):
    (shape,) = in_shapes
    if shape is None:
        return in_shapes, [None]
    d1 = _axis(attrs.dim1, len(shape), "dim1")
    d2 = _axis(attrs.dim2, len(shape), "dim2")
    out = list(shape)
    out[d1], out[d2] = out[d2], out[d1]
    return in_shapes, [tuple(out)]


def _swapaxes_forward(xp, attrs, inputs, outputs, req):
    write_result(xp, outputs[0], xp.swapaxes(inputs[0], attrs.dim1, attrs.dim2), req[0])


register(OpDef("swapaxes", _swapaxes_forward,
               params={"dim1": Param(int, 0, "The first axis to swap."),
                       "dim2": Param(int, 0, "The second axis to swap.")},
               infer_shape=_swapaxes_infer_shape, aliases=("SwapAxis",),
               gradient=lambda F, node, ograds: [
                   F.swapaxes(ograds[0], dim1=node.attrs.dim1, dim2=node.attrs.dim2)],
               doc="Interchanges two axes."))


# -- broadcasts and repetition ---------------------------------------------------

def _broadcast_forward(xp, attrs, inputs, outputs, req):
    out = outputs[0]
    write_result(xp, out, xp.broadcast_to(inputs[0], out.shape), req[0])


def _broadcast_gradient(F, node, ograds):
    # Sum over the broadcast axes; shape-only inputs (broadcast_like's rhs) get none.
    return [F._reduce_to_like(ograds[0], node.inputs[0])] + [None] * (len(node.inputs) - 1)


def _broadcast_check(ishape, oshape, what):
    for i, (a, b) in enumerate(zip(ishape, oshape)):
        if a != b and a != 1:
            raise ShapeError(f"cannot broadcast an input of shape {tuple(ishape)} to {what} "
                             f"{tuple(oshape)}: axis {i} has size {a}, which is neither 1 nor "
                             f"{b}", argument="data", expected=tuple(oshape),
                             actual=tuple(ishape))


def _broadcast_to_infer_shape(attrs, in_shapes):
    (shape,) = in_shapes
    if shape is None:
        return in_shapes, [None]
    target = attrs.shape
    if len(target) != len(shape):
        raise ShapeError(f"shape={tuple(target)} has {len(target)} dimension(s) but the input "
                         f"{tuple(shape)} has {len(shape)}; reshape or expand_dims first",
                         argument="shape", expected=len(shape), actual=tuple(target))
    out = tuple(d if t == 0 else t for d, t in zip(shape, target))
    _broadcast_check(shape, out, "shape")
    return in_shapes, [out]


register(OpDef("broadcast_to", _broadcast_forward,
               params={"shape": Param(Shape, REQUIRED, "Target shape; 0 keeps the input's "
                                                       "size on that axis.", min=0)},
               infer_shape=_broadcast_to_infer_shape, gradient=_broadcast_gradient,
               doc="Broadcasts size-1 axes of the input to the target shape."))


def _broadcast_axis_infer_shape(attrs, in_shapes):
    (shape,) = in_shapes
    if shape is None:
        return in_shapes, [None]
    axes, sizes = attrs.axis, attrs.size
    if len(axes) != len(sizes):
        raise ShapeError(f"axis={tuple(axes)} and size={tuple(sizes)} must have the same "
                         "length", argument="size", expected=len(axes), actual=len(sizes))
    out = list(shape)
    for a, s in zip(axes, sizes):
        i = _axis(a, len(shape))
        if shape[i] != 1 and shape[i] != s:
            raise ShapeError(f"cannot broadcast axis {a} of an input of shape {tuple(shape)} "
                             f"to size {s}: its size is {shape[i]}, not 1", argument="axis",
                             expected=1, actual=shape[i])
        out[i] = s
    return in_shapes, [tuple(out)]


register(OpDef("broadcast_axis", _broadcast_forward,
               params={"axis": Param(Shape, (), "Axes to broadcast (each of size 1)."),
                       "size": Param(Shape, (), "Target size of each axis.", min=0)},
               infer_shape=_broadcast_axis_infer_shape, aliases=("broadcast_axes",),
               gradient=_broadcast_gradient,
               doc="Broadcasts the given size-1 axes to the given sizes."))


def _broadcast_like_infer_shape(attrs, in_shapes):
    if _unknown(in_shapes):
        return in_shapes, [None]
    lshape, rshape = (tuple(s) for s in in_shapes)
    if attrs.lhs_axes is None and attrs.rhs_axes is None:
        if len(lshape) != len(rshape):
            raise ShapeError(f"lhs {lshape} and rhs {rshape} have different numbers of "
                             "dimensions", argument="rhs", expected=len(lshape),
                             actual=len(rshape))
        _broadcast_check(lshape, rshape, "the shape of rhs")
        return in_shapes, [rshape]
    la, ra = attrs.lhs_axes or (), attrs.rhs_axes or ()
    if len(la) != len(ra):
        raise ShapeError(f"lhs_axes={attrs.lhs_axes} and rhs_axes={attrs.rhs_axes} must have "
                         "the same length", argument="rhs_axes", expected=len(la),
                         actual=len(ra))
    out = list(lshape)
    for a, b in zip(la, ra):
        i, j = _axis(a, len(lshape), "lhs_axes"), _axis(b, len(rshape), "rhs_axes")
        if lshape[i] != 1 and lshape[i] != rshape[j]:
            raise ShapeError(f"cannot broadcast axis {a} of lhs {lshape} (size {lshape[i]}) to "
                             f"the size {rshape[j]} of axis {b} of rhs {rshape}",
                             argument="lhs", expected=rshape[j], actual=lshape[i])
        out[i] = rshape[j]
    return in_shapes, [tuple(out)]


register(OpDef("broadcast_like", _broadcast_forward, inputs=("lhs", "rhs"),
               params={"lhs_axes": Param(Shape, None, "Axes of lhs to broadcast (default: "
                                                      "all, to rhs's shape)."),
                       "rhs_axes": Param(Shape, None, "Axes of rhs giving the sizes.")},
               infer_shape=_broadcast_like_infer_shape, infer_type=_first_dtype,
               gradient=_broadcast_gradient,
               doc="Broadcasts lhs to the shape of rhs (or on the given axis pairs); rhs only "
                   "supplies a shape."))


def _tile_layout(shape, reps):
    n = max(len(shape), len(reps))
    shape = (1,) * (n - len(shape)) + tuple(shape)
    reps = (1,) * (n - len(reps)) + tuple(reps)
    return shape, reps


def _tile_infer_shape(attrs, in_shapes):
    (shape,) = in_shapes
    if shape is None:
        return in_shapes, [None]
    dims, reps = _tile_layout(shape, attrs.reps)
    return in_shapes, [tuple(d * r for d, r in zip(dims, reps))]


def _tile_forward(xp, attrs, inputs, outputs, req):
    x, out, r = inputs[0], outputs[0], req[0]
    if r == "null":
        return
    dims, reps = _tile_layout(x.shape, attrs.reps)
    # Out viewed as (r0, d0, r1, d1, ...) takes the input (1, d0, 1, d1, ...) by broadcasting.
    src = x.reshape(tuple(v for d in dims for v in (1, d)))
    split = tuple(v for pair in zip(reps, dims) for v in pair)
    _write_broadcast(xp, out, src, split, r)


def _write_broadcast(xp, out, src, split, req):
    """Write ``src`` broadcast to ``split``, a finer view of ``out``'s shape, into ``out``."""
    view = _contiguous_view(out, split)
    if view is None:
        write_result(xp, out, xp.broadcast_to(src, split).reshape(out.shape), req)
    elif req == "add":
        view += src
    else:
        view[...] = src


def _tile_gradient(F, node, ograds):
    g, x = ograds[0], node.inputs[0]
    reps = node.attrs.reps
    if 0 in reps:
        return [F.zeros_like(x)]  # the output is empty
    # Split each tiled axis (counted from the end, as reps align) into (reps, size) and sum
    # the copies. reverse=True lets the spec name axes from the end without knowing ndim:
    # read right to left, 0 copies an axis and (-4, -1, r) splits one into (size, r).
    spec, axes, after = [], [], 0
    for r in reversed(reps):
        if r == 1:
            spec.append(0)
            after += 1
        else:
            spec += [-4, -1, r]
            axes.append(-(after + 2))
            after += 2
    if not axes:
        return [F.reshape_like(g, x)]
    split = F.reshape(g, shape=tuple(reversed(spec + [-2])), reverse=True)
    return [F.reshape_like(F.sum(split, axis=tuple(axes)), x)]


register(OpDef("tile", _tile_forward,
               params={"reps": Param(Shape, REQUIRED, "Repetitions per axis (numpy.tile rules: "
                                                      "the shorter of reps and shape is padded "
                                                      "with leading 1s).", min=0)},
               infer_shape=_tile_infer_shape, gradient=_tile_gradient,
               doc="Repeats the whole array along each axis, as numpy.tile."))


def _repeat_infer_shape(attrs, in_shapes):
    (shape,) = in_shapes
    if shape is None:
        return in_shapes, [None]
    if attrs.axis is None:
        return in_shapes, [(_prod(shape) * attrs.repeats,)]
    axis = _axis(attrs.axis, len(shape))
    out = list(shape)
    out[axis] *= attrs.repeats
    return in_shapes, [tuple(out)]


def _repeat_forward(xp, attrs, inputs, outputs, req):
    x, out, r = inputs[0], outputs[0], req[0]
    if r == "null":
        return
    if attrs.axis is None:
        x, axis = x.reshape(x.size), 0
    else:
        axis = attrs.axis + x.ndim if attrs.axis < 0 else attrs.axis
    # Out viewed as (..., n, repeats, ...) takes the input (..., n, 1, ...) by broadcasting.
    src = xp.expand_dims(x, axis + 1)
    split = x.shape[:axis + 1] + (attrs.repeats,) + x.shape[axis + 1:]
    _write_broadcast(xp, out, src, split, r)


def _repeat_gradient(F, node, ograds):
    g, x = ograds[0], node.inputs[0]
    r, axis = node.attrs.repeats, node.attrs.axis
    if r == 0:
        return [F.zeros_like(x)]  # the output is empty
    # Split the repeated axis of size n * r into (n, r) and sum the copies.
    if axis is None:
        return [F.reshape_like(F.sum(F.reshape(g, shape=(-1, r)), axis=1), x)]
    if axis >= 0:
        split = F.reshape(g, shape=(0,) * axis + (-4, -1, r, -2))
        return [F.sum(split, axis=axis + 1)]
    # Negative axis: name it from the end (reverse=True reads the spec right to left).
    split = F.reshape(g, shape=(-2, -1, r, -4) + (0,) * (-axis - 1), reverse=True)
    return [F.sum(split, axis=axis)]


register(OpDef("repeat", _repeat_forward,
               params={"repeats": Param(int, REQUIRED, "Times to repeat each element.", min=0),
                       "axis": Param(int, None, "Axis to repeat along; None repeats the "
                                                "flattened input.")},
               infer_shape=_repeat_infer_shape, gradient=_repeat_gradient,
               doc="Repeats each element `repeats` times along an axis, as numpy.repeat."))


def _flip_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = [_axis(a, ndim) for a in _axes_tuple(axis)]
    if len(set(axes)) != len(axes):
        raise ShapeError(f"axis={axis} lists an axis twice", argument="axis", actual=axis)
    return axes


def _flip_infer_shape(attrs, in_shapes):
    (shape,) = in_shapes
    if shape is not None:
        _flip_axes(attrs.axis, len(shape))
    return in_shapes, [shape]


def _flip_forward(xp, attrs, inputs, outputs, req):
    x = inputs[0]
    axes = _flip_axes(attrs.axis, x.ndim)
    key = tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(x.ndim))
    write_result(xp, outputs[0], x[key], req[0])


register(OpDef("flip", _flip_forward,
               params={"axis": Param(Axes, REQUIRED, "Axis or axes to reverse (None: all).")},
               infer_shape=_flip_infer_shape, aliases=("reverse",),
               gradient=lambda F, node, ograds: [F.flip(ograds[0], axis=node.attrs.axis)],
               doc="Reverses the order of the elements along the given axes."))


# -- joining and splitting -------------------------------------------------------

def _concat_infer_shape(attrs, in_shapes):
    if _unknown(in_shapes):
        return in_shapes, [None]
    if not in_shapes:
        raise ShapeError("needs at least one input", argument="data")
    first = tuple(in_shapes[0])
    if not first:
        raise ShapeError("cannot concatenate 0-d inputs", argument="arg0", actual=first)
    dim = _axis(attrs.dim, len(first), "dim")
    total = 0
    for i, s in enumerate(in_shapes):
        s = tuple(s)
        if len(s) != len(first) or s[:dim] + s[dim + 1:] != first[:dim] + first[dim + 1:]:
            raise ShapeError(f"input {i} has shape {s} but input 0 has {first}: all inputs "
                             f"must match on every axis except dim={attrs.dim}",
                             argument=f"arg{i}", expected=first, actual=s)
        total += s[dim]
    return in_shapes, [first[:dim] + (total,) + first[dim + 1:]]


def _concat_forward(xp, attrs, inputs, outputs, req):
    out, r = outputs[0], req[0]
    if r == "add":
        out += xp.concatenate(inputs, axis=attrs.dim)
    elif r != "null":
        xp.concatenate(inputs, axis=attrs.dim, out=out)


def _concat_gradient(F, node, ograds):
    parts = F._backward_concat(ograds[0], *node.inputs, dim=node.attrs.dim)
    return [parts[i] for i in range(len(node.inputs))]


register(OpDef("concat", _concat_forward, variadic=True,
               params={"dim": Param(int, 1, "Axis to join along."),
                       "num_args": Param(int, None, "Number of inputs (set automatically).",
                                         min=1)},
               infer_shape=_concat_infer_shape, aliases=("Concat",),
               gradient=_concat_gradient,
               doc="Joins arrays along an existing axis `dim`."))


def _backward_concat_outputs(attrs):
    return tuple(f"output{i}" for i in range((attrs.num_args or 1) - 1))


def _backward_concat_infer_shape(attrs, in_shapes):
    if _unknown(in_shapes[1:]):
        return in_shapes, [None] * (len(in_shapes) - 1)
    _, (expected,) = _concat_infer_shape(attrs, in_shapes[1:])
    if in_shapes[0] is not None and tuple(in_shapes[0]) != expected:
        raise ShapeError(f"ograd has shape {tuple(in_shapes[0])} but concatenating the data "
                         f"gives {expected}", argument="arg0", expected=expected,
                         actual=tuple(in_shapes[0]))
    return [expected] + list(in_shapes[1:]), list(in_shapes[1:])


def _backward_concat_infer_type(attrs, in_dtypes):
    return in_dtypes, [in_dtypes[0]] * (len(in_dtypes) - 1)


def _backward_concat_forward(xp, attrs, inputs, outputs, req):
    g = inputs[0]
    dim = attrs.dim + g.ndim if attrs.dim < 0 else attrs.dim
    lead = (slice(None),) * dim
    begin = 0
    for x, out, r in zip(inputs[1:], outputs, req):
        end = begin + x.shape[dim]
        write_result(xp, out, g[lead + (slice(begin, end),)], r)
        begin = end


register(OpDef("_backward_concat", _backward_concat_forward, variadic=True,
               params={"dim": Param(int, 1, "Axis the inputs were joined along."),
                       "num_args": Param(int, None, "Number of inputs, ograd included (set "
                                                    "automatically).", min=2)},
               infer_shape=_backward_concat_infer_shape,
               infer_type=_backward_concat_infer_type, outputs=_backward_concat_outputs,
               gradient=lambda F, node, ograds: [F.concat(*ograds, dim=node.attrs.dim)]
               + [None] * (len(node.inputs) - 1),
               doc="Gradient of concat: the first input (ograd) cut along `dim` into pieces "
                   "shaped as the other inputs, which only supply shapes."))


def _stack_infer_shape(attrs, in_shapes):
    if _unknown(in_shapes):
        return in_shapes, [None]
    if not in_shapes:
        raise ShapeError("needs at least one input", argument="data")
    first = tuple(in_shapes[0])
    axis = _axis(attrs.axis, len(first), extra=1)
    for i, s in enumerate(in_shapes):
        if tuple(s) != first:
            raise ShapeError(f"input {i} has shape {tuple(s)} but input 0 has {first}: all "
                             "inputs must have the same shape", argument=f"arg{i}",
                             expected=first, actual=tuple(s))
    return in_shapes, [first[:axis] + (len(in_shapes),) + first[axis:]]


def _stack_forward(xp, attrs, inputs, outputs, req):
    out, r = outputs[0], req[0]
    if r == "add":
        out += xp.stack(inputs, axis=attrs.axis)
    elif r != "null":
        xp.stack(inputs, axis=attrs.axis, out=out)


register(OpDef("stack", _stack_forward, variadic=True,
               params={"axis": Param(int, 0, "Position of the new axis in the result."),
                       "num_args": Param(int, None, "Number of inputs (set automatically).",
                                         min=1)},
               infer_shape=_stack_infer_shape,
               gradient=lambda F, node, ograds: list(F.split(
                   ograds[0], num_outputs=len(node.inputs), axis=node.attrs.axis,
                   squeeze_axis=True)),
               doc="Joins same-shaped arrays along a new axis."))


def _split_outputs(attrs):
    return tuple(f"output{i}" for i in range(attrs.num_outputs))


def _split_infer_shape(attrs, in_shapes):
    (shape,) = in_shapes
    n = attrs.num_outputs
    if shape is None:
        return in_shapes, [None] * n
    shape = tuple(shape)
    axis = _axis(attrs.axis, len(shape))
    if shape[axis] % n:
        raise ShapeError(f"axis {attrs.axis} of an input of shape {shape} has size "
                         f"{shape[axis]}, which does not divide into num_outputs={n} equal "
                         "parts", argument="num_outputs", expected=f"a divisor of {shape[axis]}",
                         actual=n)
    part = shape[axis] // n
    if attrs.squeeze_axis:
        if part != 1:
            raise ShapeError(f"squeeze_axis=True needs parts of size 1 but axis {attrs.axis} "
                             f"of {shape} splits into parts of size {part}",
                             argument="squeeze_axis", expected=1, actual=part)
        out = shape[:axis] + shape[axis + 1:]
    else:
        out = shape[:axis] + (part,) + shape[axis + 1:]
    return in_shapes, [out] * n


def _split_infer_type(attrs, in_dtypes):
    return in_dtypes, [in_dtypes[0]] * attrs.num_outputs


def _split_forward(xp, attrs, inputs, outputs, req):
    x = inputs[0]
    axis = attrs.axis + x.ndim if attrs.axis < 0 else attrs.axis
    part = x.shape[axis] // attrs.num_outputs
    lead = (slice(None),) * axis
    for i, (out, r) in enumerate(zip(outputs, req)):
        key = lead + ((i,) if attrs.squeeze_axis else (slice(i * part, (i + 1) * part),))
        write_result(xp, out, x[key], r)


def _split_gradient(F, node, ograds):
    if node.attrs.squeeze_axis:
        return [F.stack(*ograds, axis=node.attrs.axis)]
    return [F.concat(*ograds, dim=node.attrs.axis)]


register(OpDef("split", _split_forward,
               params={"num_outputs": Param(int, REQUIRED, "Number of equal parts.", min=1),
                       "axis": Param(int, 1, "Axis to split along."),
                       "squeeze_axis": Param(bool, False, "Remove the split axis (its parts "
                                                          "must have size 1).")},
               infer_shape=_split_infer_shape, infer_type=_split_infer_type,
               outputs=_split_outputs, gradient=_split_gradient,
               aliases=("SliceChannel",),
               doc="Splits an array into `num_outputs` equal parts along an axis."))


# -- slicing ---------------------------------------------------------------------

def _slice_key(attrs, shape):
    """The tuple of Python slices MXNet's ``slice`` takes on an input of ``shape``."""
    begin, end, step = attrs.begin, attrs.end, attrs.step
    shape = tuple(shape)
    if not shape:
        raise ShapeError("cannot slice a 0-d input", argument="data", actual=shape)
    if len(begin) != len(end):
        raise ShapeError(f"begin={begin} and end={end} must have the same length",
                         argument="end", expected=len(begin), actual=len(end))
    if len(begin) > len(shape):
        raise ShapeError(f"begin={begin} has {len(begin)} entries but the input {shape} has "
                         f"only {len(shape)} axes", argument="begin", expected=len(shape),
                         actual=len(begin))
    if step and len(step) != len(begin):
        raise ShapeError(f"step={step} must have the same length as begin={begin}",
                         argument="step", expected=len(begin), actual=len(step))
    key = []
    for i, (b, e) in enumerate(zip(begin, end)):
        s = step[i] if step else None
        if s == 0:
            raise ShapeError(f"step={step} has 0 for axis {i}", argument="step", actual=step)
        key.append(slice(b, e, s))
    return tuple(key)


def _slice_infer_shape(attrs, in_shapes):
    (shape,) = in_shapes
    if shape is None:
        return in_shapes, [None]
    key = _slice_key(attrs, shape)
    out = tuple(len(range(*k.indices(d))) for k, d in zip(key, shape)) + tuple(shape[len(key):])
    return in_shapes, [out]


def _slice_forward(xp, attrs, inputs, outputs, req):
    x = inputs[0]
    write_result(xp, outputs[0], x[_slice_key(attrs, x.shape)], req[0])


def _slice_params():
    return {"begin": _OptionalIntsParam(doc="Start per axis (None: from the start)."),
            "end": _OptionalIntsParam(doc="Stop per axis, exclusive (None: to the end)."),
            "step": _OptionalIntsParam((), "Step per axis (None or (): 1).")}


def _region_into(xp, out, region, value, req):
    """Store ``value`` into ``out[region]`` and zeros elsewhere, honouring ``req``.

    The gradient of the slicing ops: the incoming gradient written back where
    the slice came from.
    """
    if req == "null":
        return
    if req == "add":
        out[region] += value
        return
    out[...] = 0
    out[region] = value


def _backward_slice_forward(xp, attrs, inputs, outputs, req):
    g, x = inputs
    _region_into(xp, outputs[0], _slice_key(attrs, x.shape), g, req[0])


def _backward_slice_infer_shape(attrs, in_shapes, forward_infer=_slice_infer_shape,
                                what="slice"):
    gshape, dshape = in_shapes[0], in_shapes[1]
    if dshape is None:
        return in_shapes, [None]
    _, (expected,) = forward_infer(attrs, [dshape] + list(in_shapes[2:]))
    if gshape is not None and tuple(gshape) != tuple(expected):
        raise ShapeError(f"ograd has shape {tuple(gshape)} but the {what} of data "
                         f"{tuple(dshape)} has {tuple(expected)}", argument="ograd",
                         expected=tuple(expected), actual=tuple(gshape))
    return [tuple(expected)] + list(in_shapes[1:]), [dshape]


def _ograd_dtype(attrs, in_dtypes):
    return in_dtypes, [in_dtypes[0]]


register(OpDef("slice", _slice_forward, params=_slice_params(),
               infer_shape=_slice_infer_shape, aliases=("crop",),
               gradient=lambda F, node, ograds: [F._backward_slice(
                   ograds[0], node.inputs[0], begin=node.attrs.begin, end=node.attrs.end,
                   step=node.attrs.step)],
               doc="A strided slice ``data[b0:e0:s0, b1:e1:s1, ...]`` over the leading axes "
                   "(Python slicing rules; axes beyond begin are kept whole)."))


def _slice_axis_range(attrs, shape):
    axis = _axis(attrs.axis, len(shape))
    size = shape[axis]
    if size == 0:
        return axis, 0, 0
    begin = attrs.begin + size if attrs.begin < 0 else attrs.begin
    end = size if attrs.end is None else attrs.end + size if attrs.end < 0 else attrs.end
    if not 0 <= begin < end <= size:
        raise ShapeError(f"begin={attrs.begin}, end={attrs.end} is not a non-empty range "
                         f"within axis {attrs.axis} of size {size} (input shape "
                         f"{tuple(shape)})", argument="begin",
                         expected=f"0 <= begin < end <= {size}", actual=(attrs.begin, attrs.end))
    return axis, begin, end


def _slice_axis_infer_shape(attrs, in_shapes):
    (shape,) = in_shapes
    if shape is None:
        return in_shapes, [None]
    axis, begin, end = _slice_axis_range(attrs, shape)
    return in_shapes, [tuple(shape[:axis]) + (end - begin,) + tuple(shape[axis + 1:])]


def _slice_axis_forward(xp, attrs, inputs, outputs, req):
    x = inputs[0]
    axis, begin, end = _slice_axis_range(attrs, x.shape)
    write_result(xp, outputs[0], x[(slice(None),) * axis + (slice(begin, end),)], req[0])


def _slice_axis_params():
    return {"axis": Param(int, REQUIRED, "Axis to slice."),
            "begin": Param(int, REQUIRED, "Start index (negative counts from the end)."),
            "end": Param(int, None, "Stop index, exclusive; None: to the end.")}


def _backward_slice_axis_forward(xp, attrs, inputs, outputs, req):
    g, x = inputs
    axis, begin, end = _slice_axis_range(attrs, x.shape)
    _region_into(xp, outputs[0], (slice(None),) * axis + (slice(begin, end),), g, req[0])


register(OpDef("slice_axis", _slice_axis_forward, params=_slice_axis_params(),
               infer_shape=_slice_axis_infer_shape,
               gradient=lambda F, node, ograds: [F._backward_slice_axis(
                   ograds[0], node.inputs[0], axis=node.attrs.axis, begin=node.attrs.begin,
                   end=node.attrs.end)],
               doc="``data[..., begin:end, ...]`` on one axis; the range must be non-empty and "
                   "within the axis (as in MXNet)."))


def _slice_like_infer_shape(attrs, in_shapes):
    if _unknown(in_shapes):
        return in_shapes, [None]
    dshape, like = (tuple(s) for s in in_shapes)
    if not attrs.axes:
        if len(dshape) != len(like):
            raise ShapeError(f"data {dshape} and shape_like {like} have different numbers of "
                             "dimensions (give axes to slice only some)", argument="shape_like",
                             expected=len(dshape), actual=len(like))
        axes = range(len(dshape))
    else:
        axes = [_axis(a, len(dshape), "axes") for a in attrs.axes]
    out = list(dshape)
    for i in axes:
        if i >= len(like):
            raise ShapeError(f"axes={attrs.axes} names axis {i} but shape_like {like} has "
                             f"{len(like)} dimension(s)", argument="axes", actual=attrs.axes)
        if like[i] > dshape[i]:
            raise ShapeError(f"shape_like {like} is larger than data {dshape} on axis {i}",
                             argument="shape_like", expected=dshape[i], actual=like[i])
        out[i] = like[i]
    return in_shapes, [tuple(out)]


def _slice_like_forward(xp, attrs, inputs, outputs, req):
    out = outputs[0]
    write_result(xp, out, inputs[0][tuple(slice(0, d) for d in out.shape)], req[0])


register(OpDef("slice_like", _slice_like_forward, inputs=("data", "shape_like"),
               params={"axes": Param(Shape, (), "Axes to slice; () slices all of them.")},
               infer_shape=_slice_like_infer_shape, infer_type=_first_dtype,
               gradient=lambda F, node, ograds: [
                   F._backward_slice_like(ograds[0], node.inputs[0]), None],
               doc="The leading part of data with the size of shape_like on the given axes; "
                   "shape_like only supplies a shape."))


def _backward_slice_like_forward(xp, attrs, inputs, outputs, req):
    g = inputs[0]
    _region_into(xp, outputs[0], tuple(slice(0, d) for d in g.shape), g, req[0])


def _backward_slice_like_infer_shape(attrs, in_shapes):
    gshape, dshape = in_shapes
    if dshape is None:
        return in_shapes, [None]
    if gshape is not None:
        gshape = tuple(gshape)
        if len(gshape) != len(dshape) or any(a > b for a, b in zip(gshape, dshape)):
            raise ShapeError(f"ograd {gshape} is not a leading part of data {tuple(dshape)}",
                             argument="ograd", expected=tuple(dshape), actual=gshape)
    return in_shapes, [dshape]


# The gradients of the slicing ops: zeros shaped as data, with ograd written where the
# slice came from. data only supplies the shape; each is linear in ograd, and its gradient
# is the slice again.
register(OpDef("_backward_slice", _backward_slice_forward, inputs=("ograd", "data"),
               params=_slice_params(), infer_shape=_backward_slice_infer_shape,
               infer_type=_ograd_dtype, partial_infer=True,
               gradient=lambda F, node, ograds: [F.slice(
                   ograds[0], begin=node.attrs.begin, end=node.attrs.end,
                   step=node.attrs.step), None],
               doc="Gradient of slice: zeros shaped as data with ograd in the sliced region."))
register(OpDef("_backward_slice_axis", _backward_slice_axis_forward, inputs=("ograd", "data"),
               params=_slice_axis_params(),
               infer_shape=lambda attrs, in_shapes: _backward_slice_infer_shape(
                   attrs, in_shapes, _slice_axis_infer_shape, "slice_axis"),
               infer_type=_ograd_dtype, partial_infer=True,
               gradient=lambda F, node, ograds: [F.slice_axis(
                   ograds[0], axis=node.attrs.axis, begin=node.attrs.begin,
                   end=node.attrs.end), None],
               doc="Gradient of slice_axis: zeros shaped as data with ograd in the sliced "
                   "range."))
register(OpDef("_backward_slice_like", _backward_slice_like_forward, inputs=("ograd", "data"),
               infer_shape=_backward_slice_like_infer_shape, infer_type=_ograd_dtype,
               partial_infer=True,
               gradient=lambda F, node, ograds: [F.slice_like(ograds[0], node.inputs[0]),
                                                 None],
               doc="Gradient of slice_like: zeros shaped as data with ograd (a leading part "
                   "of it) in its leading corner."))
