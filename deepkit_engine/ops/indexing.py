"""Indexing and sorting ops: take, pick, one_hot, gather_nd, scatter_nd, sort, topk.

Index inputs may be integer or float arrays: MXNet code passes indices as
float32 NDArrays, so every op here accepts both. Float indices are truncated
towards zero (``astype(int64)``), as MXNet's ``static_cast<int>`` does. The
data input alone decides the output dtype.

Out-of-range indices follow each op's ``mode``: ``'clip'`` clamps into
``[0, size)`` (negative indices become 0, as in MXNet), ``'wrap'`` takes them
modulo the size, and ``'raise'`` accepts ``[-size, size)`` (negative counts
from the end, as in numpy) and fails otherwise. Whether an index is out of
range is only known from the data, so that check runs in the kernel and the
error surfaces at the next wait on the result (as an ``EngineError`` naming
the op, the index and the valid range). ``gather_nd`` and ``scatter_nd``
always check, with the ``'raise'`` rule.

Sorting is stable in both directions: equal values keep their index order,
so ``argsort`` and ``topk`` indices are deterministic and the same on CPU
and GPU.

Gradients: the index inputs never get one. ``take``, ``pick`` and
``gather_nd`` send the incoming gradient back to the positions they read,
summing over repeated indices (``_backward_take``, ``_backward_pick``,
``_backward_gather_nd``, which take the forward data only as a shape
reference); ``scatter_nd``'s gradient is ``gather_nd`` of it. ``sort`` and
``topk`` (its values) send each value's gradient back to the position it came
from (``_backward_topk``, which recomputes the stable order from the data).
Each backward op is linear in the incoming gradient and has a gradient
itself, so higher orders work. ``argsort``, ``one_hot`` and ``topk``'s
indices and mask are not differentiable (piecewise constant).
"""
import numpy as np

from ..base import DTypeError, ParamError, ShapeError
from .registry import Axes, DType, OpDef, Param, REQUIRED, Shape, register, write_result

__all__ = ["normalize_axis", "check_index_dtype"]

_INDEX_MODES = ("clip", "wrap", "raise")
_INDEX_DTYPES = ("uint8", "int32", "int64", "float16", "float32", "float64")
#: Largest integer each index dtype represents exactly.
_EXACT_MAX = {np.dtype(np.uint8): 255, np.dtype(np.int8): 127, np.dtype(np.int32): 2**31 - 1,
              np.dtype(np.float16): 2**11, np.dtype(np.float32): 2**24,
              np.dtype(np.float64): 2**53, np.dtype(np.int64): 2**63 - 1}


# -- shared helpers -------------------------------------------------------------

def normalize_axis(axis, ndim, param="axis"):
    """``axis`` as a non-negative int; ShapeError if outside ``[-ndim, ndim)``."""
    if not -ndim <= axis < ndim:
        raise ShapeError(f"param {param}={axis} is out of range for a {ndim}-d input (valid "
                         f"range [{-ndim}, {ndim - 1}])" if ndim else
                         f"param {param}={axis} is invalid for a 0-d input (it has no axes)",
                         argument=param, expected=(-ndim, ndim - 1), actual=axis)
    return axis % ndim


def check_index_dtype(dtype, argument):
    """Raise DTypeError unless ``dtype`` is an integer or float dtype (or unknown)."""
    if dtype is not None and np.dtype(dtype).kind not in "iuf":
        raise DTypeError(f"input {argument} must hold integer or float indices, got "
                         f"{np.dtype(dtype).name}", argument=argument, expected="int or float",
                         actual=dtype)


def check_index_capacity(dtype, largest, what):
    """DTypeError if index ``largest`` cannot be held exactly by ``dtype``."""
    limit = _EXACT_MAX.get(np.dtype(dtype))
    if limit is not None and largest > limit:
        raise DTypeError(f"param dtype={np.dtype(dtype).name} cannot represent {what} up to "
                         f"{largest} exactly (at most {limit}); use int32, int64 or float64",
                         argument="dtype", expected=f"<= {limit}", actual=largest)


def _as_int(xp, indices):
    """Indices as int64 (float indices truncate towards zero, as in MXNet)."""
    return indices if indices.dtype == np.int64 else indices.astype(np.int64)


def _check_range(xp, op_name, idx, size, where):
    """IndexError (raised in the kernel) unless every index is in ``[-size, size)``."""
    if idx.size == 0:
        return
    bad = (idx < -size) | (idx >= size)
    if bool(bad.any()):
        value = int(idx[bad].ravel()[0])
        raise IndexError(f"{op_name}: index {value} is out of range for {where} of size {size} "
                         f"(valid range [{-size}, {size - 1}])")


def _apply_mode(xp, op_name, indices, size, mode, where):
    """Int64 indices in ``[0, size)`` after applying ``mode`` (clip/wrap/raise)."""
    idx = _as_int(xp, indices)
    if mode == "clip":
        return xp.clip(idx, 0, size - 1)
    if mode == "wrap":
        return xp.mod(idx, size)
    _check_range(xp, op_name, idx, size, where)
    return xp.where(idx < 0, idx + size, idx)


def _data_index_type(attrs, in_dtypes):
    """Output dtype from the data (input 0); input 1 holds int or float indices."""
    data, index = in_dtypes
    check_index_dtype(index, 1)
    if data is None:
        return in_dtypes, [None]
    return [data, index if index is not None else data], [data]


def _sort_axis(op_name, axis, ndim):
    """``None`` (flattened) or the normalized int axis of a sort-like op."""
    if axis is None:
        return None
    if isinstance(axis, tuple):
        raise ParamError(f"{op_name}: param axis={axis!r} must be an int or None",
                         op=op_name, param="axis", value=axis)
    return normalize_axis(axis, ndim)


def _stable_order(xp, data, axis, ascend):
    """Indices that sort ``data`` along ``axis``; ties keep index order either way."""
    if xp is np:
        if ascend:
            return np.argsort(data, axis=axis, kind="stable")
        rev = np.argsort(np.flip(data, axis), axis=axis, kind="stable")
    else:  # cupy sorts are always stable
        if ascend:
            return xp.argsort(data, axis=axis)
        rev = xp.argsort(xp.flip(data, axis), axis=axis)
    # Ascending order of the reversed array, read backwards: descending values
    # with equal values in increasing original index.
    return xp.flip((data.shape[axis] - 1) - rev, axis)


def _flat(data, axis):
    """``(data, axis)`` with ``axis=None`` meaning the flattened array along 0."""
    return (data.reshape(-1), 0) if axis is None else (data, axis)


def _scatter_add(xp, target, key, values):
    """``target[key] += values``, with repeated positions accumulating."""
    if xp is np or hasattr(xp.add, "at"):  # numpy, cupy >= 13
        xp.add.at(target, key, values)
    else:  # pragma: no cover - older cupy
        import cupyx  # noqa: PLC0415 - optional: GPU builds only
        cupyx.scatter_add(target, key, values)


def _grad_type(attrs, in_dtypes):
    """Backward ops ``(ograd, indices, like)``: ``like`` and the output share ograd's dtype."""
    ograd, index, like = in_dtypes
    check_index_dtype(index, 1)
    known = ograd if ograd is not None else like
    if ograd is not None and like is not None and ograd != like:
        raise DTypeError(f"ograd has dtype {np.dtype(ograd).name} but like has "
                         f"{np.dtype(like).name}", argument="like", expected=ograd, actual=like)
    if known is None:
        return in_dtypes, [None]
    return [known, index if index is not None else known, known], [known]


def _check_grad_shape(ograd, expected):
    """ShapeError unless the incoming gradient has the forward output's shape."""
    if ograd is not None and expected is not None and tuple(ograd) != tuple(expected):
        raise ShapeError(f"ograd has shape {tuple(ograd)} but the forward output had "
                         f"{tuple(expected)}", argument="ograd", expected=tuple(expected),
                         actual=tuple(ograd))


# -- take ---------------------------------------------------------------------------

def _take_shape(attrs, in_shapes):
    a, indices = in_shapes
    if a is None:
        return in_shapes, [None]
    axis = normalize_axis(attrs.axis, len(a))
    if indices is None:
        return in_shapes, [None]
    if a[axis] == 0 and int(np.prod(indices)) > 0:
        raise ShapeError(f"cannot take indices from axis {attrs.axis} of size 0",
                         argument="a", expected=f"a.shape[{attrs.axis}] > 0", actual=tuple(a))
    return in_shapes, [tuple(a[:axis]) + tuple(indices) + tuple(a[axis + 1:])]


def _take_forward(xp, attrs, inputs, outputs, req):
    a, indices = inputs
    axis = attrs.axis % a.ndim
    size = a.shape[axis]
    idx = _apply_mode(xp, "take", indices, size, attrs.mode, f"axis {axis}")
    if req[0] == "write" and outputs[0].flags.c_contiguous:
        xp.take(a, idx, axis=axis, out=outputs[0])
    else:
        write_result(xp, outputs[0], xp.take(a, idx, axis=axis), req[0])


register(OpDef(
    "take", _take_forward, inputs=("a", "indices"),
    params={"axis": Param(int, 0, "The axis of `a` to take slices from."),
            "mode": Param(str, "clip", "Out-of-range indices: 'clip' clamps into [0, size), "
                          "'wrap' wraps around, 'raise' fails (negative ones count from the "
                          "end).", choices=_INDEX_MODES)},
    infer_shape=_take_shape, infer_type=_data_index_type,
    gradient=lambda F, node, ograds: [
        F._backward_take(ograds[0], node.inputs[1], node.inputs[0], axis=node.attrs.axis,
                         mode=node.attrs.mode), None],
    doc="Slices of `a` at the given indices along `axis`; the output shape is "
        "``a.shape[:axis] + indices.shape + a.shape[axis+1:]``. The `indices` input gets no "
        "gradient.", fluent=True))


def _backward_take_shape(attrs, in_shapes):
    ograd, indices, like = in_shapes
    if like is None:
        return in_shapes, [None]
    if indices is not None:
        _, (expected,) = _take_shape(attrs, [like, indices])
        _check_grad_shape(ograd, expected)
        ograd = expected
    return [ograd, indices, like], [like]


def _backward_take_forward(xp, attrs, inputs, outputs, req):
    ograd, indices, like = inputs
    out = outputs[0]
    if req[0] == "null":
        return
    axis = attrs.axis % like.ndim
    size = like.shape[axis]
    pre, post = int(np.prod(like.shape[:axis])), int(np.prod(like.shape[axis + 1:]))
    grad = xp.zeros((pre, size, post), out.dtype)
    if ograd.size:
        idx = _apply_mode(xp, "take", indices, size, attrs.mode, f"axis {axis}").reshape(-1)
        _scatter_add(xp, grad, (slice(None), idx), ograd.reshape(pre, idx.size, post))
    write_result(xp, out, grad.reshape(out.shape), req[0])


register(OpDef(
    "_backward_take", _backward_take_forward, inputs=("ograd", "indices", "like"),
    params={"axis": Param(int, 0, "The axis of the forward take."),
            "mode": Param(str, "clip", "The forward take's mode.", choices=_INDEX_MODES)},
    infer_shape=_backward_take_shape, infer_type=_grad_type, partial_infer=True,
    gradient=lambda F, node, ograds: [
        F.take(ograds[0], node.inputs[1], axis=node.attrs.axis, mode=node.attrs.mode),
        None, None],
    doc="The gradient of take: zeros of `like`'s shape with each slice of `ograd` added "
        "at its index along `axis` (repeated indices accumulate; `mode` as in the forward "
        "take). Only `like`'s shape and dtype are used."))


# -- pick ---------------------------------------------------------------------------

def _pick_shape(attrs, in_shapes):
    data, index = in_shapes
    if data is None:
        return in_shapes, [None]
    axis = normalize_axis(attrs.axis, len(data))
    reduced = tuple(data[:axis]) + tuple(data[axis + 1:])
    kept = tuple(data[:axis]) + (1,) + tuple(data[axis + 1:])
    out = kept if attrs.keepdims else reduced
    if index is None:
        index = out
    elif tuple(index) not in (reduced, kept):
        raise ShapeError(f"index has shape {tuple(index)} but data of shape {tuple(data)} with "
                         f"axis={attrs.axis} needs {reduced} (or {kept})", argument="index",
                         expected=out, actual=tuple(index))
    if data[axis] == 0 and int(np.prod(out)) > 0:
        raise ShapeError(f"cannot pick from axis {attrs.axis} of size 0", argument="data",
                         expected=f"data.shape[{attrs.axis}] > 0", actual=tuple(data))
    return [data, index], [out]


def _pick_forward(xp, attrs, inputs, outputs, req):
    data, index = inputs
    axis = attrs.axis % data.ndim
    idx = _apply_mode(xp, "pick", index, data.shape[axis], attrs.mode, f"axis {axis}")
    kept = data.shape[:axis] + (1,) + data.shape[axis + 1:]
    picked = xp.take_along_axis(data, idx.reshape(kept), axis)
    write_result(xp, outputs[0], picked.reshape(outputs[0].shape), req[0])


register(OpDef(
    "pick", _pick_forward, inputs=("data", "index"),
    params={"axis": Param(int, -1, "The axis to pick along."),
            "keepdims": Param(bool, False, "Keep the picked axis with size 1."),
            "mode": Param(str, "clip", "Out-of-range indices: 'clip', 'wrap' or 'raise' "
                          "(as for take).", choices=_INDEX_MODES)},
    infer_shape=_pick_shape, infer_type=_data_index_type, partial_infer=True,
    gradient=lambda F, node, ograds: [
        F._backward_pick(ograds[0], node.inputs[1], node.inputs[0], axis=node.attrs.axis,
                         keepdims=node.attrs.keepdims, mode=node.attrs.mode), None],
    doc="One element per position along `axis`: ``out[i, j] = data[i, index[i, j], j]``. "
        "`index` has the data shape without `axis` (or with it as size 1) and gets no "
        "gradient.", fluent=True))


def _backward_pick_shape(attrs, in_shapes):
    ograd, index, like = in_shapes
    if like is None:
        return in_shapes, [None]
    (_, index), (expected,) = _pick_shape(attrs, [like, index])
    _check_grad_shape(ograd, expected)
    return [expected, index, like], [like]


def _backward_pick_forward(xp, attrs, inputs, outputs, req):
    ograd, index, like = inputs
    out = outputs[0]
    if req[0] == "null":
        return
    axis = attrs.axis % like.ndim
    size = like.shape[axis]
    kept = like.shape[:axis] + (1,) + like.shape[axis + 1:]
    if out.size == 0:
        return
    idx = _apply_mode(xp, "pick", index, size, attrs.mode, f"axis {axis}").reshape(kept)
    # Each output position reads one element, and no two read the same one.
    along = xp.arange(size, dtype=np.int64).reshape((size,) + (1,) * (like.ndim - axis - 1))
    zero = xp.zeros((), out.dtype)
    write_result(xp, out, xp.where(along == idx, ograd.reshape(kept), zero), req[0])


register(OpDef(
    "_backward_pick", _backward_pick_forward, inputs=("ograd", "index", "like"),
    params={"axis": Param(int, -1, "The axis of the forward pick."),
            "keepdims": Param(bool, False, "The forward pick's keepdims."),
            "mode": Param(str, "clip", "The forward pick's mode.", choices=_INDEX_MODES)},
    infer_shape=_backward_pick_shape, infer_type=_grad_type, partial_infer=True,
    gradient=lambda F, node, ograds: [
        F.pick(ograds[0], node.inputs[1], axis=node.attrs.axis,
               keepdims=node.attrs.keepdims, mode=node.attrs.mode), None, None],
    doc="The gradient of pick: zeros of `like`'s shape with `ograd` at the picked "
        "positions. Only `like`'s shape and dtype are used."))


# -- one_hot ------------------------------------------------------------------------

def _one_hot_shape(attrs, in_shapes):
    (indices,) = in_shapes
    if indices is None:
        return in_shapes, [None]
    return in_shapes, [tuple(indices) + (attrs.depth,)]


def _one_hot_type(attrs, in_dtypes):
    check_index_dtype(in_dtypes[0], 0)
    return in_dtypes, [np.dtype(attrs.dtype)]


def _one_hot_forward(xp, attrs, inputs, outputs, req):
    idx = _as_int(xp, inputs[0])
    out = outputs[0]
    hot = idx[..., None] == xp.arange(attrs.depth, dtype=np.int64)
    on = xp.asarray(attrs.on_value, dtype=out.dtype)
    off = xp.asarray(attrs.off_value, dtype=out.dtype)
    write_result(xp, out, xp.where(hot, on, off), req[0])


register(OpDef(
    "one_hot", _one_hot_forward, inputs=("indices",),
    params={"depth": Param(int, REQUIRED, "Length of the one-hot dimension.", min=1),
            "on_value": Param(float, 1.0, "Value at the index position."),
            "off_value": Param(float, 0.0, "Value everywhere else."),
            "dtype": Param(DType, "float32", "Output dtype.")},
    infer_shape=_one_hot_shape, infer_type=_one_hot_type, differentiable=False,
    doc="One-hot encoding: a new last axis of length `depth` holding `on_value` at each "
        "index and `off_value` elsewhere; indices outside [0, depth) give an all-off row.",
        fluent=True))


# -- gather_nd / scatter_nd ---------------------------------------------------------

def _index_rows(indices, target, target_name):
    """M (``indices.shape[0]``), checked against the rank of the indexed array."""
    if len(indices) == 0:
        raise ShapeError(f"indices must have at least 1 dimension (M, ...), got shape "
                         f"{tuple(indices)}", argument="indices", expected="(M, ...)",
                         actual=tuple(indices))
    m = indices[0]
    if m > len(target):
        raise ShapeError(f"indices has shape {tuple(indices)}: its {m} rows index more "
                         f"dimensions than {target_name} {tuple(target)} has ({len(target)})",
                         argument="indices", expected=f"indices.shape[0] <= {len(target)}",
                         actual=m)
    return m


def _gather_nd_shape(attrs, in_shapes):
    data, indices = in_shapes
    if data is None or indices is None:
        return in_shapes, [None]
    m = _index_rows(indices, data, "data of shape")
    return in_shapes, [tuple(indices[1:]) + tuple(data[m:])]


def _nd_index(xp, op_name, indices, shape):
    """``indices`` (M, ...) as a tuple of M int64 arrays, each checked against ``shape``."""
    idx = _as_int(xp, indices)
    for i in range(idx.shape[0]):
        _check_range(xp, op_name, idx[i], shape[i], f"dimension {i} (index row {i})")
    return tuple(idx)


def _gather_nd_forward(xp, attrs, inputs, outputs, req):
    data, indices = inputs
    key = _nd_index(xp, "gather_nd", indices, data.shape)
    write_result(xp, outputs[0], data[key] if key else data, req[0])


register(OpDef(
    "gather_nd", _gather_nd_forward, inputs=("data", "indices"),
    infer_shape=_gather_nd_shape, infer_type=_data_index_type,
    gradient=lambda F, node, ograds: [
        F._backward_gather_nd(ograds[0], node.inputs[1], node.inputs[0]), None],
    doc="Gathers slices of `data` at the positions in `indices` (shape (M, Y...)), whose M "
        "rows index the first M dimensions: ``out[y] = data[indices[0, y], ..., "
        "indices[M-1, y]]``. Indices must lie in [-size, size). `indices` gets no gradient."))


def _backward_gather_nd_shape(attrs, in_shapes):
    ograd, indices, like = in_shapes
    if like is None:
        return in_shapes, [None]
    if indices is not None:
        _, (expected,) = _gather_nd_shape(attrs, [like, indices])
        _check_grad_shape(ograd, expected)
        ograd = expected
    return [ograd, indices, like], [like]


def _backward_gather_nd_forward(xp, attrs, inputs, outputs, req):
    ograd, indices, like = inputs
    out = outputs[0]
    if req[0] == "null":
        return
    grad = xp.zeros(out.shape, out.dtype)
    if ograd.size:
        key = _nd_index(xp, "gather_nd", indices, like.shape)
        if key:
            key = tuple(xp.where(k < 0, k + like.shape[i], k) for i, k in enumerate(key))
            _scatter_add(xp, grad, key, ograd)
        else:  # no index rows: every position of ograd read the whole data
            grad += ograd.reshape((-1,) + out.shape).sum(axis=0)
    write_result(xp, out, grad, req[0])


register(OpDef(
    "_backward_gather_nd", _backward_gather_nd_forward, inputs=("ograd", "indices", "like"),
    infer_shape=_backward_gather_nd_shape, infer_type=_grad_type, partial_infer=True,
    gradient=lambda F, node, ograds: [F.gather_nd(ograds[0], node.inputs[1]), None, None],
    doc="The gradient of gather_nd: zeros of `like`'s shape with the slices of `ograd` "
        "added at the positions in `indices` (repeated positions accumulate, unlike "
        "scatter_nd). Only `like`'s shape and dtype are used."))


def _scatter_nd_shape(attrs, in_shapes):
    data, indices = in_shapes
    shape = tuple(attrs.shape)
    if indices is None:
        return in_shapes, [shape]
    m = _index_rows(indices, shape, "param shape")
    expected = tuple(indices[1:]) + shape[m:]
    if data is None:
        return [expected, indices], [shape]
    if tuple(data) != expected:
        raise ShapeError(f"data has shape {tuple(data)} but indices of shape {tuple(indices)} "
                         f"and shape={shape} need {expected}", argument="data",
                         expected=expected, actual=tuple(data))
    return in_shapes, [shape]


def _scatter_nd_forward(xp, attrs, inputs, outputs, req):
    data, indices = inputs
    out = outputs[0]
    key = _nd_index(xp, "scatter_nd", indices, out.shape)
    if req[0] in ("write", "inplace"):
        out[...] = 0
        out[key if key else ...] = data
    elif req[0] == "add":
        tmp = xp.zeros(out.shape, out.dtype)
        tmp[key if key else ...] = data
        out += tmp


register(OpDef(
    "scatter_nd", _scatter_nd_forward, inputs=("data", "indices"),
    params={"shape": Param(Shape, REQUIRED, "Shape of the output.", min=0)},
    infer_shape=_scatter_nd_shape, infer_type=_data_index_type, partial_infer=True,
    gradient=lambda F, node, ograds: [F.gather_nd(ograds[0], node.inputs[1]), None],
    doc="The inverse of gather_nd: a zero array of `shape` with the slices of `data` written "
        "at the positions in `indices` (M, Y...). With repeated positions one of the values "
        "wins (which one is unspecified), while the gradient reaches every one of them. "
        "`indices` gets no gradient."))


# -- sort / argsort / topk ----------------------------------------------------------

def _sort_shape(attrs, in_shapes, op_name):
    (data,) = in_shapes
    if data is None:
        return in_shapes, [None], None
    axis = _sort_axis(op_name, attrs.axis, len(data))
    if axis is None:
        size = int(np.prod(data))
        return in_shapes, [(size,)], size
    return in_shapes, [tuple(data)], data[axis]


def _sort_infer_shape(attrs, in_shapes):
    return _sort_shape(attrs, in_shapes, "sort")[:2]


def _sort_forward(xp, attrs, inputs, outputs, req):
    data, axis = _flat(inputs[0], attrs.axis)
    axis %= max(data.ndim, 1)
    out = outputs[0]
    if attrs.is_ascend and req[0] == "write" and out.flags.c_contiguous:
        out[...] = data
        out.sort(axis=axis)
    elif attrs.is_ascend:
        write_result(xp, out, xp.sort(data, axis=axis), req[0])
    else:
        write_result(xp, out, xp.flip(xp.sort(data, axis=axis), axis), req[0])


register(OpDef(
    "sort", _sort_forward,
    params={"axis": Param(Axes, -1, "Axis to sort along; None sorts the flattened array."),
            "is_ascend": Param(bool, True, "Ascending (True) or descending order.")},
    infer_shape=_sort_infer_shape,
    gradient=lambda F, node, ograds: [
        F._backward_topk(ograds[0], node.inputs[0], axis=node.attrs.axis, k=0,
                         is_ascend=node.attrs.is_ascend)],
    doc="The values of `data` sorted along `axis` (or flattened when `axis` is None).",
    fluent=True))


def _argsort_shape(attrs, in_shapes):
    in_shapes, out, size = _sort_shape(attrs, in_shapes, "argsort")
    if size:
        check_index_capacity(attrs.dtype, size - 1, "indices")
    return in_shapes, out


def _index_out_type(attrs, in_dtypes):
    return in_dtypes, [np.dtype(attrs.dtype)]


def _argsort_forward(xp, attrs, inputs, outputs, req):
    data, axis = _flat(inputs[0], attrs.axis)
    axis %= max(data.ndim, 1)
    write_result(xp, outputs[0], _stable_order(xp, data, axis, attrs.is_ascend), req[0])


register(OpDef(
    "argsort", _argsort_forward,
    params={"axis": Param(Axes, -1, "Axis to sort along; None sorts the flattened array."),
            "is_ascend": Param(bool, True, "Ascending (True) or descending order."),
            "dtype": Param(DType, "float32", "Dtype of the output indices.",
                           choices=_INDEX_DTYPES)},
    infer_shape=_argsort_shape, infer_type=_index_out_type, differentiable=False,
    doc="The indices that sort `data` along `axis` (stable: equal values keep their index "
        "order, in both directions).", fluent=True))


def _topk_outputs(attrs):
    return ("value", "indices") if attrs.ret_typ == "both" else ("output",)


def _topk_shape(attrs, in_shapes):
    (data,) = in_shapes
    if data is None:
        return in_shapes, [None] * (2 if attrs.ret_typ == "both" else 1)
    axis = _sort_axis("topk", attrs.axis, len(data))
    size = int(np.prod(data)) if axis is None else data[axis]
    if attrs.k > size:
        raise ShapeError(f"param k={attrs.k} exceeds the {size} elements along "
                         f"{'the flattened data' if axis is None else f'axis {attrs.axis}'}",
                         argument="k", expected=f"k <= {size}", actual=attrs.k)
    k = attrs.k if attrs.k > 0 else size
    if attrs.ret_typ == "mask":
        return in_shapes, [tuple(data)]
    out = (k,) if axis is None else tuple(data[:axis]) + (k,) + tuple(data[axis + 1:])
    if attrs.ret_typ in ("indices", "both") and size:
        check_index_capacity(attrs.dtype, size - 1, "indices")
    return in_shapes, [out, out] if attrs.ret_typ == "both" else [out]


def _topk_type(attrs, in_dtypes):
    data = in_dtypes[0]
    if attrs.ret_typ == "indices":
        return in_dtypes, [np.dtype(attrs.dtype)]
    if attrs.ret_typ == "both":
        return in_dtypes, [data, np.dtype(attrs.dtype)]
    return in_dtypes, [data]


def _topk_forward(xp, attrs, inputs, outputs, req):
    data, axis = _flat(inputs[0], attrs.axis)
    axis %= max(data.ndim, 1)
    size = data.shape[axis]
    k = attrs.k if attrs.k > 0 else size
    order = _stable_order(xp, data, axis, attrs.is_ascend)
    if attrs.ret_typ == "mask":
        ranks = xp.argsort(order, axis=axis)  # position of each element in the order
        write_result(xp, outputs[0], (ranks < k).reshape(inputs[0].shape), req[0])
        return
    idx = order[(slice(None),) * axis + (slice(0, k),)] if k < size else order
    if attrs.ret_typ == "indices":
        write_result(xp, outputs[0], idx, req[0])
        return
    write_result(xp, outputs[0], xp.take_along_axis(data, idx, axis), req[0])
    if attrs.ret_typ == "both":
        write_result(xp, outputs[1], idx, req[1])


def _topk_gradient(F, node, ograds):
    a = node.attrs
    if a.ret_typ not in ("value", "both"):
        return [None]  # indices and mask are piecewise constant
    return [F._backward_topk(ograds[0], node.inputs[0], axis=a.axis, k=a.k,
                             is_ascend=a.is_ascend)]


register(OpDef(
    "topk", _topk_forward, outputs=_topk_outputs,
    params={"axis": Param(Axes, -1, "Axis to select along; None uses the flattened array."),
            "k": Param(int, 1, "How many elements to select; k < 1 selects them all "
                       "(a full sort)."),
            "ret_typ": Param(str, "indices", "What to return: 'value', 'indices', 'both' "
                             "(value and indices) or 'mask' (1 at the selected positions).",
                             choices=("value", "indices", "both", "mask")),
            "is_ascend": Param(bool, False, "Select the smallest (True) or largest elements."),
            "dtype": Param(DType, "float32", "Dtype of the output indices.",
                           choices=_INDEX_DTYPES)},
    infer_shape=_topk_shape, infer_type=_topk_type,
    gradient=_topk_gradient,
    doc="The k largest (or smallest) elements along `axis`, in order, as values, indices, "
        "both, or a mask of the data shape. Only the values have a gradient.", fluent=True))


# -- the gradient of sort and topk --------------------------------------------------

def _backward_topk_shape(attrs, in_shapes):
    x, keys = in_shapes
    if keys is None:
        return in_shapes, [None]
    value_attrs = dict(attrs, ret_typ="value", dtype=np.dtype(np.int64))
    _, (selected,) = _topk_shape(type(attrs)(value_attrs), [keys])
    if attrs.reverse:
        _check_grad_shape(x, keys)
        return [tuple(keys), keys], [selected]
    _check_grad_shape(x, selected)
    return [selected, keys], [tuple(keys)]


def _backward_topk_type(attrs, in_dtypes):
    x, keys = in_dtypes
    return in_dtypes, [x]


def _backward_topk_forward(xp, attrs, inputs, outputs, req):
    x, keys = inputs
    out = outputs[0]
    if req[0] == "null" or out.size == 0:
        return
    keys, axis = _flat(keys, attrs.axis)
    axis %= max(keys.ndim, 1)
    size = keys.shape[axis]
    k = attrs.k if attrs.k > 0 else size
    order = _stable_order(xp, keys, axis, attrs.is_ascend)
    if attrs.reverse:  # gather x into the selected order (the forward topk of x by keys)
        idx = order[(slice(None),) * axis + (slice(0, k),)] if k < size else order
        write_result(xp, out, xp.take_along_axis(x.reshape(keys.shape), idx, axis), req[0])
        return
    if k < size:  # pad ograd with zeros to the full length: unselected ranks read a zero
        pad = list(keys.shape)
        pad[axis] = size - k
        x = xp.concatenate([x, xp.zeros(tuple(pad), x.dtype)], axis=axis)
    ranks = xp.argsort(order, axis=axis)  # where each element went in the order
    write_result(xp, out, xp.take_along_axis(x, ranks, axis).reshape(out.shape), req[0])


register(OpDef(
    "_backward_topk", _backward_topk_forward, inputs=("ograd", "keys"),
    params={"axis": Param(Axes, -1, "The forward's axis; None: the flattened keys."),
            "k": Param(int, 0, "The forward's k; k < 1 selects them all (sort)."),
            "is_ascend": Param(bool, False, "The forward's order."),
            "reverse": Param(bool, False, "False: send `ograd` (the selected values' "
                             "gradient) back to the positions of `keys` they came from. "
                             "True: select from `ograd` (of the keys' shape) at those "
                             "positions instead, as topk would (the gradient of False).")},
    infer_shape=_backward_topk_shape, infer_type=_backward_topk_type, partial_infer=True,
    aliases=("_backward_sort",),
    gradient=lambda F, node, ograds: [
        F._backward_topk(ograds[0], node.inputs[1], axis=node.attrs.axis, k=node.attrs.k,
                         is_ascend=node.attrs.is_ascend, reverse=not node.attrs.reverse),
        None],
    doc="The gradient of topk's values and of sort: zeros of `keys`' shape with each "
        "element of `ograd` at the position its value came from (the stable order of `keys` "
        "along `axis`, recomputed). Only the order of `keys` is used."))
