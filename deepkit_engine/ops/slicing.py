"""Slicing: ``slice``, ``slice_axis`` and ``slice_like``.

Their gradients (``_backward_slice``, ``_backward_slice_axis``,
``_backward_slice_like``) are zeros with the incoming gradient in the sliced
region; each is linear in the incoming gradient and declares its own
gradient, so second order works. ``slice_like``'s shape input gets no
gradient.
"""
from ..base import ShapeError
from .registry import REQUIRED, OpDef, Param, Shape, register, write_result
from .shape_utils import OptionalIntsParam, any_unknown, check_axis, first_dtype


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
    return {"begin": OptionalIntsParam(doc="Start per axis (None: from the start)."),
            "end": OptionalIntsParam(doc="Stop per axis, exclusive (None: to the end)."),
            "step": OptionalIntsParam((), "Step per axis (None or (): 1).")}


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
                   "(Python slicing rules; axes beyond begin are kept whole).", fluent=True))


def _slice_axis_range(attrs, shape):
    axis = check_axis(attrs.axis, len(shape))
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
                   "within the axis (as in MXNet).", fluent=True))


def _slice_like_infer_shape(attrs, in_shapes):
    if any_unknown(in_shapes):
        return in_shapes, [None]
    dshape, like = (tuple(s) for s in in_shapes)
    if not attrs.axes:
        if len(dshape) != len(like):
            raise ShapeError(f"data {dshape} and shape_like {like} have different numbers of "
                             "dimensions (give axes to slice only some)", argument="shape_like",
                             expected=len(dshape), actual=len(like))
        axes = range(len(dshape))
    else:
        axes = [check_axis(a, len(dshape), "axes") for a in attrs.axes]
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
               infer_shape=_slice_like_infer_shape, infer_type=first_dtype,
               gradient=lambda F, node, ograds: [
                   F._backward_slice_like(ograds[0], node.inputs[0]), None],
               doc="The leading part of data with the size of shape_like on the given axes; "
                   "shape_like only supplies a shape.", fluent=True))


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
