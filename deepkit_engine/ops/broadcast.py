"""Broadcasting and repetition: ``broadcast_to``, ``broadcast_axis``,
``broadcast_like``, ``tile``, ``repeat`` and ``flip``.

Gradients are compositions: ``_reduce_to_like`` for broadcasts, reshape + sum
for ``tile`` and ``repeat`` (which share one broadcast write), ``flip`` again
for ``flip``.
"""
from ..base import ShapeError
from .registry import REQUIRED, Axes, OpDef, Param, Shape, register, write_result
from .shape_utils import (
    any_unknown,
    axes_tuple,
    check_axis,
    contiguous_view,
    first_dtype,
    shape_size,
)


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
               doc="Broadcasts size-1 axes of the input to the target shape.", fluent=True))


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
        i = check_axis(a, len(shape))
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
               doc="Broadcasts the given size-1 axes to the given sizes.", fluent="broadcast_axes"))


def _broadcast_like_infer_shape(attrs, in_shapes):
    if any_unknown(in_shapes):
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
        i, j = check_axis(a, len(lshape), "lhs_axes"), check_axis(b, len(rshape), "rhs_axes")
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
               infer_shape=_broadcast_like_infer_shape, infer_type=first_dtype,
               gradient=_broadcast_gradient,
               doc="Broadcasts lhs to the shape of rhs (or on the given axis pairs); rhs only "
                   "supplies a shape.", fluent=True))


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
    view = contiguous_view(out, split)
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
               doc="Repeats the whole array along each axis, as numpy.tile.", fluent=True))


def _repeat_infer_shape(attrs, in_shapes):
    (shape,) = in_shapes
    if shape is None:
        return in_shapes, [None]
    if attrs.axis is None:
        return in_shapes, [(shape_size(shape) * attrs.repeats,)]
    axis = check_axis(attrs.axis, len(shape))
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
               doc="Repeats each element `repeats` times along an axis, as numpy.repeat.",
               fluent=True))


def _flip_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = [check_axis(a, ndim) for a in axes_tuple(axis)]
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
               doc="Reverses the order of the elements along the given axes.", fluent=True))
