"""Matrix products: ``dot``, ``batch_dot``, ``linalg_gemm2`` and ``_backward_dot``.

Names, parameters and semantics follow MXNet 1.x:

* ``dot`` of two 1-D arrays is their inner product with shape ``(1,)`` (MXNet
  1.x arrays are at least 1-D).
* ``dot`` with N-D inputs contracts the last axis of ``lhs`` with the first
  axis of ``rhs``; ``transpose_a``/``transpose_b`` transpose the 2-D view
  of an input (``lhs`` as ``(lhs.shape[0], rest)``, ``rhs`` as
  ``(rest, rhs.shape[-1])``), so ``transpose_a`` contracts the *first* axis
  of ``lhs`` instead.

Products run ``xp.matmul`` straight into the output (BLAS, no copy) when the
request is a plain write. The gradient of every product is ``_backward_dot``
(one product per input, any N-D layout), itself linear in the incoming
gradient with a declared gradient, so second order works.
"""
from .. import threads
from ..base import ShapeError
from .registry import OpDef, Param, register, write_result
from .shape_utils import any_unknown, check_axis, contiguous_view, shape_size


def _dot_plan(lshape, rshape, ta, tb):
    """``(M, K, N, out_shape)`` of MXNet's dot as one 2-D ``(M, K) @ (K, N)`` product."""
    if not lshape or not rshape:
        raise ShapeError(f"dot needs inputs with at least 1 dimension, got lhs {tuple(lshape)} "
                         f"and rhs {tuple(rshape)}", argument="lhs" if not lshape else "rhs",
                         actual=tuple(lshape) if not lshape else tuple(rshape))
    if len(lshape) == 1:
        m, kl, lpart = 1, lshape[0], ()
    elif ta:
        m, kl, lpart = shape_size(lshape[1:]), lshape[0], tuple(lshape[1:])
    else:
        m, kl, lpart = shape_size(lshape[:-1]), lshape[-1], tuple(lshape[:-1])
    if len(rshape) == 1:
        n, kr, rpart = 1, rshape[0], ()
    elif tb:
        n, kr, rpart = shape_size(rshape[:-1]), rshape[-1], tuple(rshape[:-1])
    else:
        n, kr, rpart = shape_size(rshape[1:]), rshape[0], tuple(rshape[1:])
    if kl != kr:
        lwhich = "first" if ta and len(lshape) > 1 else "last"
        rwhich = "last" if tb and len(rshape) > 1 else "first"
        raise ShapeError(
            f"inner dimensions do not match: lhs {tuple(lshape)} has {kl} along its {lwhich} "
            f"axis but rhs {tuple(rshape)} has {kr} along its {rwhich} axis "
            f"(transpose_a={ta}, transpose_b={tb})", argument="rhs", expected=kl, actual=kr)
    return m, kl, n, (lpart + rpart) or (1,)


def _dot_infer_shape(attrs, in_shapes):
    if any_unknown(in_shapes):
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
    view = contiguous_view(out, shape) if req != "add" else None
    if view is not None:
        threads.matmul(xp, x, y, view)
    else:
        write_result(xp, out, xp.matmul(x, y).reshape(out.shape), req)


def _dot_forward(xp, attrs, inputs, outputs, req):
    lhs, rhs = inputs
    if req[0] == "null":
        return
    a, b, m, _, n = _dot_views(lhs, rhs, attrs.transpose_a, attrs.transpose_b)
    _matmul_into(xp, a, b, outputs[0], (m, n), req[0])


def _batch_dot_infer_shape(attrs, in_shapes):
    if any_unknown(in_shapes):
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
    if any_unknown(in_shapes):
        return in_shapes, [None]
    ashape, bshape = (tuple(s) for s in in_shapes)
    if len(ashape) < 2 or len(ashape) != len(bshape):
        raise ShapeError(f"needs A and B with the same number (>= 2) of dimensions, got A "
                         f"{ashape} and B {bshape}", argument="B" if len(ashape) >= 2 else "A",
                         expected=len(ashape), actual=len(bshape))
    ndim = len(ashape)
    row = check_axis(attrs.axis, ndim)
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
        "semantics; 1-D . 1-D gives shape (1,)).", operator="matmul"))

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
