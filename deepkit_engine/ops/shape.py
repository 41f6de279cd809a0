"""Shape ops that keep the data: ``reshape`` (MXNet's special values),
``reshape_like``, ``flatten``, ``expand_dims``, ``squeeze``, ``transpose``,
``swapaxes``, ``depth_to_space``/``space_to_depth`` and ``diag``; and the
shape as data: ``shape_array`` and ``size_array``.

Pure reshapes copy their input once in C order (nothing at all when the
memory planner runs them in place); MXNet 1.x's ``squeeze`` of an all-ones
shape gives ``(1,)``. Gradients are the inverse transpose or a
``reshape_like`` back; shape-only inputs (``reshape_like``'s rhs) get none.
"""
from ..base import ShapeError
from .registry import REQUIRED, Axes, OpDef, Param, Shape, register, write_result
from .shape_utils import any_unknown, axes_tuple, check_axis, copy_forward, first_dtype, shape_size

__all__ = ["infer_reshape"]


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
    total = shape_size(dshape)
    if inferred >= 0:
        known = shape_size(out)
        if known == 0 or total % known:
            raise bad(f"cannot infer the -1 dimension: {total} elements are not a multiple "
                      f"of the other dimensions' product {known}")
        out[inferred] = total // known
    if reverse:
        out.reverse()
    out = tuple(out)
    if shape_size(out) != total:
        raise ShapeError(f"cannot reshape an input of shape {dshape} ({total} elements) into "
                         f"shape {out} ({shape_size(out)} elements) (from shape={spec})",
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
        known = shape_size(out)
        out[zeros[0]] = shape_size(dshape) // known if known else 0
    out = tuple(out)
    if shape_size(out) != shape_size(dshape):
        raise ShapeError(f"cannot reshape an input of shape {tuple(dshape)} into target_shape "
                         f"{tuple(target)} (gives {out})", argument="target_shape",
                         expected=shape_size(dshape), actual=out)
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
    "reshape", copy_forward,
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
    if any_unknown(in_shapes):
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
    if shape_size(out) != shape_size(lshape):
        raise ShapeError(f"cannot reshape lhs {lshape} ({shape_size(lshape)} elements) like rhs "
                         f"{rshape}: the result {out} has {shape_size(out)} elements",
                         argument="rhs", expected=shape_size(lshape), actual=out)
    return in_shapes, [out]


register(OpDef(
    "reshape_like", copy_forward, inputs=("lhs", "rhs"),
    params={
        "lhs_begin": Param(int, None, "First lhs axis to replace (default 0)."),
        "lhs_end": Param(int, None, "End of the lhs axes to replace (default: ndim)."),
        "rhs_begin": Param(int, None, "First rhs axis whose size is used (default 0)."),
        "rhs_end": Param(int, None, "End of the rhs axes used (default: ndim)."),
    },
    infer_shape=_reshape_like_infer_shape, infer_type=first_dtype, inplace=((0, 0),),
    gradient=lambda F, node, ograds: [F.reshape_like(ograds[0], node.inputs[0]), None],
    doc="lhs reshaped to rhs's shape (or lhs axes [lhs_begin, lhs_end) replaced by rhs axes "
        "[rhs_begin, rhs_end)); rhs only supplies a shape.", fluent=True))


def _flatten_infer_shape(attrs, in_shapes):
    (shape,) = in_shapes
    if shape is None:
        return in_shapes, [None]
    if not shape:
        raise ShapeError("cannot flatten a 0-d input: it needs a first (batch) axis",
                         argument="data", actual=tuple(shape))
    return in_shapes, [(shape[0], shape_size(shape[1:]))]


register(OpDef("flatten", copy_forward, infer_shape=_flatten_infer_shape,
               aliases=("Flatten",), inplace=((0, 0),), gradient=_reshape_gradient,
               doc="Collapses all axes but the first: (N, d1, d2, ...) -> (N, d1*d2*...).",
               fluent=True))


def _expand_dims_infer_shape(attrs, in_shapes):
    (shape,) = in_shapes
    if shape is None:
        return in_shapes, [None]
    axis = check_axis(attrs.axis, len(shape), extra=1)
    return in_shapes, [tuple(shape[:axis]) + (1,) + tuple(shape[axis:])]


register(OpDef("expand_dims", copy_forward,
               params={"axis": Param(int, REQUIRED, "Position of the new size-1 axis, in "
                                                    "[-ndim-1, ndim].")},
               infer_shape=_expand_dims_infer_shape, inplace=((0, 0),),
               gradient=_reshape_gradient,
               doc="Inserts a size-1 axis at position `axis`.", fluent=True))


def _squeeze_infer_shape(attrs, in_shapes):
    (shape,) = in_shapes
    if shape is None:
        return in_shapes, [None]
    shape = tuple(shape)
    if attrs.axis is None:
        drop = {i for i, d in enumerate(shape) if d == 1}
    else:
        drop = set()
        for a in axes_tuple(attrs.axis):
            i = check_axis(a, len(shape))
            if shape[i] != 1:
                raise ShapeError(f"cannot squeeze axis {a} of an input of shape {shape}: its "
                                 f"size is {shape[i]}, not 1", argument="axis",
                                 expected=1, actual=shape[i])
            if i in drop:
                raise ShapeError(f"axis={attrs.axis} lists axis {i} twice", argument="axis")
            drop.add(i)
    out = tuple(d for i, d in enumerate(shape) if i not in drop)
    return in_shapes, [out if out or not shape else (1,)]


register(OpDef("squeeze", copy_forward,
               params={"axis": Param(Axes, None, "Size-1 axes to remove; None removes all.")},
               infer_shape=_squeeze_infer_shape, inplace=((0, 0),),
               gradient=_reshape_gradient,
               doc="Removes size-1 axes (MXNet 1.x: an all-ones shape becomes (1,)).", fluent=True))


# -- transposes ----------------------------------------------------------------

def _transpose_axes(axes, ndim):
    if not axes:
        return tuple(range(ndim - 1, -1, -1))
    if len(axes) != ndim:
        raise ShapeError(f"axes={tuple(axes)} must list each of the input's {ndim} axes once",
                         argument="axes", expected=ndim, actual=tuple(axes))
    norm = tuple(check_axis(a, ndim, "axes") for a in axes)
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
               doc="Permutes the axes (reverses them by default).", fluent=True))


def _swapaxes_infer_shape(attrs, in_shapes):
    (shape,) = in_shapes
    if shape is None:
        return in_shapes, [None]
    d1 = check_axis(attrs.dim1, len(shape), "dim1")
    d2 = check_axis(attrs.dim2, len(shape), "dim2")
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
               doc="Interchanges two axes.", fluent=True))


# -- moving blocks between depth and space ----------------------------------------------

def _block_size(attrs, name):
    b = attrs.block_size
    if b < 1:
        raise ShapeError(f"{name}: block_size must be a positive int, got {b}",
                         argument="block_size", expected="> 0", actual=b)
    return b


def _depth_to_space_infer_shape(attrs, in_shapes):
    (shape,) = in_shapes
    if shape is None:
        return in_shapes, [None]
    b = _block_size(attrs, "depth_to_space")
    if len(shape) != 4:
        raise ShapeError(f"depth_to_space needs a 4-d input (N, C, H, W), got shape "
                         f"{tuple(shape)}", argument="data", expected=4, actual=len(shape))
    n, c, h, w = shape
    if c % (b * b):
        raise ShapeError(f"depth_to_space: the channel count {c} of input shape {tuple(shape)} "
                         f"is not a multiple of block_size**2 = {b * b}", argument="data",
                         expected=f"C % {b * b} == 0", actual=c)
    return in_shapes, [(n, c // (b * b), h * b, w * b)]


def _space_to_depth_infer_shape(attrs, in_shapes):
    (shape,) = in_shapes
    if shape is None:
        return in_shapes, [None]
    b = _block_size(attrs, "space_to_depth")
    if len(shape) != 4:
        raise ShapeError(f"space_to_depth needs a 4-d input (N, C, H, W), got shape "
                         f"{tuple(shape)}", argument="data", expected=4, actual=len(shape))
    n, c, h, w = shape
    if h % b or w % b:
        raise ShapeError(f"space_to_depth: height {h} and width {w} of input shape "
                         f"{tuple(shape)} must be multiples of block_size={b}", argument="data",
                         expected=f"H % {b} == 0 and W % {b} == 0", actual=(h, w))
    return in_shapes, [(n, c * b * b, h // b, w // b)]


def _depth_to_space_forward(xp, attrs, inputs, outputs, req):
    x, b = inputs[0], attrs.block_size
    n, c, h, w = x.shape
    value = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    write_result(xp, outputs[0], value.reshape(outputs[0].shape), req[0])


def _space_to_depth_forward(xp, attrs, inputs, outputs, req):
    x, b = inputs[0], attrs.block_size
    n, c, h, w = x.shape
    value = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
    write_result(xp, outputs[0], value.reshape(outputs[0].shape), req[0])


_BLOCK_PARAMS = {"block_size": Param(int, REQUIRED, "Side of the square blocks moved between "
                                                    "the channels and the spatial axes.")}

register(OpDef(
    "depth_to_space", _depth_to_space_forward, params=dict(_BLOCK_PARAMS),
    infer_shape=_depth_to_space_infer_shape,
    gradient=lambda F, node, ograds: [
        F.space_to_depth(ograds[0], block_size=node.attrs.block_size)],
    doc="Rearranges (N, C, H, W) into (N, C / block_size**2, H * block_size, W * block_size): "
        "blocks of channels become block_size x block_size spatial blocks (MXNet's DCR order; "
        "the inverse of space_to_depth).", fluent=True))

register(OpDef(
    "space_to_depth", _space_to_depth_forward, params=dict(_BLOCK_PARAMS),
    infer_shape=_space_to_depth_infer_shape,
    gradient=lambda F, node, ograds: [
        F.depth_to_space(ograds[0], block_size=node.attrs.block_size)],
    doc="Rearranges (N, C, H, W) into (N, C * block_size**2, H / block_size, W / block_size): "
        "each block_size x block_size spatial block becomes channels (the inverse of "
        "depth_to_space).", fluent=True))


# -- diagonals -------------------------------------------------------------------------

def _diag_axes(attrs, ndim):
    a1 = check_axis(attrs.axis1, ndim, "axis1")
    a2 = check_axis(attrs.axis2, ndim, "axis2")
    if a1 == a2:
        raise ShapeError(f"diag: axis1={attrs.axis1} and axis2={attrs.axis2} name the same axis "
                         f"of a {ndim}-d input", argument="axis2", actual=attrs.axis2)
    return a1, a2


def _diag_length(d1, d2, k):
    return max(0, min(d1, d2 - k) if k >= 0 else min(d1 + k, d2))


def _diag_out_shape(attrs, shape):
    shape = tuple(shape)
    k = attrs.k
    if len(shape) == 0:
        raise ShapeError("diag needs an input with at least 1 dimension, got a scalar",
                         argument="data", expected=">= 1 dimension", actual=shape)
    if len(shape) == 1:
        n = shape[0] + abs(k)
        return (n, n)
    a1, a2 = _diag_axes(attrs, len(shape))
    rest = tuple(d for i, d in enumerate(shape) if i not in (a1, a2))
    return rest + (_diag_length(shape[a1], shape[a2], k),)


def _diag_infer_shape(attrs, in_shapes):
    (shape,) = in_shapes
    if shape is None:
        return in_shapes, [None]
    return in_shapes, [_diag_out_shape(attrs, shape)]


def _diag_view(xp, matrix, attrs, length):
    """The ``k``-th diagonal of ``matrix`` (along axis1/axis2) as an index into it."""
    a1, a2 = _diag_axes(attrs, matrix.ndim)
    moved = xp.moveaxis(matrix, (a1, a2), (-2, -1))
    idx = xp.arange(length)
    rows, cols = (idx, idx + attrs.k) if attrs.k >= 0 else (idx - attrs.k, idx)
    return moved, (Ellipsis, rows, cols)


def _diag_forward(xp, attrs, inputs, outputs, req):
    x, out = inputs[0], outputs[0]
    if x.ndim == 1:
        value = xp.zeros(out.shape, dtype=out.dtype)
        moved, key = _diag_view(xp, value, _Diag2d(attrs.k), x.shape[0])
        moved[key] = x
    else:
        moved, key = _diag_view(xp, x, attrs, out.shape[-1])
        value = moved[key]
    write_result(xp, out, value, req[0])


class _Diag2d:
    """Diagonal parameters of a matrix built from a vector: its own axes 0 and 1."""

    def __init__(self, k):
        self.k, self.axis1, self.axis2 = k, 0, 1


def _diag_gradient(F, node, ograds):
    a = node.attrs
    return [F._backward_diag(ograds[0], node.inputs[0], k=a.k, axis1=a.axis1, axis2=a.axis2)]


_DIAG_PARAMS = {
    "k": Param(int, 0, "Which diagonal: 0 the main one, > 0 above it, < 0 below it."),
    "axis1": Param(int, 0, "(Inputs with 2 or more dimensions) first axis of the matrices."),
    "axis2": Param(int, 1, "(Inputs with 2 or more dimensions) second axis of the matrices."),
}

register(OpDef(
    "diag", _diag_forward, params=dict(_DIAG_PARAMS), infer_shape=_diag_infer_shape,
    gradient=_diag_gradient,
    doc="A 1-d input becomes a square matrix with it on the k-th diagonal; an input with 2 or "
        "more dimensions gives its k-th diagonals over axis1 and axis2, as a new last axis "
        "(numpy.diagonal).", fluent=True))


def _backward_diag_infer_shape(attrs, in_shapes):
    gshape, dshape = in_shapes
    if dshape is None:
        return in_shapes, [None]
    expected = _diag_out_shape(attrs, dshape)
    if gshape is not None and tuple(gshape) != expected:
        raise ShapeError(f"ograd has shape {tuple(gshape)} but diag of data {tuple(dshape)} has "
                         f"{expected}", argument="ograd", expected=expected,
                         actual=tuple(gshape))
    return [expected, tuple(dshape)], [tuple(dshape)]


def _backward_diag_forward(xp, attrs, inputs, outputs, req):
    g, x = inputs
    out = outputs[0]
    if x.ndim == 1:
        moved, key = _diag_view(xp, g, _Diag2d(attrs.k), x.shape[0])
        value = moved[key]
    else:
        value = xp.zeros(out.shape, dtype=out.dtype)
        moved, key = _diag_view(xp, value, attrs, g.shape[-1])
        moved[key] = g
    write_result(xp, out, value, req[0])


# The gradient of diag: ograd moved back to where diag took it from (zeros elsewhere); data
# only supplies the shape. It is linear in ograd and its gradient is diag again.
register(OpDef(
    "_backward_diag", _backward_diag_forward, inputs=("ograd", "data"),
    params=dict(_DIAG_PARAMS), infer_shape=_backward_diag_infer_shape, infer_type=first_dtype,
    partial_infer=True,
    gradient=lambda F, node, ograds: [
        F.diag(ograds[0], k=node.attrs.k, axis1=node.attrs.axis1, axis2=node.attrs.axis2),
        None],
    doc="Gradient of diag: ograd put back on the diagonal it came from, zeros elsewhere; data "
        "only supplies the shape."))


# -- shapes as data ----------------------------------------------------------------------

def _shape_array_forward(xp, attrs, inputs, outputs, req):
    write_result(xp, outputs[0], xp.asarray(inputs[0].shape, dtype=outputs[0].dtype), req[0])


def _size_array_forward(xp, attrs, inputs, outputs, req):
    write_result(xp, outputs[0], xp.asarray([inputs[0].size], dtype=outputs[0].dtype), req[0])


def _int64_output(attrs, in_dtypes):
    return in_dtypes, ["int64"]


register(OpDef(
    "shape_array", _shape_array_forward,
    infer_shape=lambda attrs, in_shapes: (
        in_shapes, [None if in_shapes[0] is None else (len(in_shapes[0]),)]),
    infer_type=_int64_output, partial_infer=True, differentiable=False,
    doc="The shape of data as a 1-d int64 array.", fluent=True))

register(OpDef(
    "size_array", _size_array_forward,
    infer_shape=lambda attrs, in_shapes: (in_shapes, [(1,)]),
    infer_type=_int64_output, partial_infer=True, differentiable=False,
    doc="The number of elements of data as a (1,) int64 array.", fluent=True))
