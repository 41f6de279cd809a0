"""``Pad`` and ``Crop`` (MXNet 1.x).

Both send the gradient back to the positions they read (``_backward_Pad``,
``_backward_Crop``); those backward ops are linear in the incoming gradient
and have gradients themselves, so higher orders work. Crop's ``crop_like``
input gets no gradient.
"""

from ..base import ShapeError
from .registry import REQUIRED, OpDef, Param, Shape, register, write_result
from .shape_utils import slab

_PAD_MODES = ("constant", "edge", "reflect")


def _pad_pairs(attrs, ndim):
    width = attrs.pad_width
    return [(width[2 * i], width[2 * i + 1]) for i in range(ndim)]


def _check_pad(attrs, data):
    """Validate pad_width against ``data``'s shape; return the (before, after) pairs."""
    ndim = len(data)
    if ndim < 3:
        raise ShapeError(f"input 'data' has shape {data}; Pad needs (N, C, spatial...) data "
                         "with at least 3 dimensions", argument="data", actual=data)
    width = attrs.pad_width
    if len(width) != 2 * ndim:
        raise ShapeError(f"param pad_width={width} has {len(width)} entries but data of "
                         f"{ndim} dimensions needs {2 * ndim} (before, after per axis)",
                         argument="pad_width", expected=2 * ndim, actual=len(width))
    if any(width[:4]):
        raise ShapeError(f"param pad_width={width}: the batch and channel axes cannot be "
                         "padded (its first four entries must be 0)", argument="pad_width",
                         expected=(0, 0, 0, 0), actual=width[:4])
    pairs = _pad_pairs(attrs, ndim)
    for axis, ((before, after), size) in enumerate(zip(pairs, data)):
        if attrs.mode == "reflect" and max(before, after) >= max(size, 1):
            raise ShapeError(f"param pad_width={width}: reflect padding of axis {axis} by "
                             f"({before}, {after}) needs each width < its size {size}",
                             argument="pad_width", expected=f"< {size}",
                             actual=(before, after))
        if attrs.mode == "edge" and size == 0 and (before or after):
            raise ShapeError(f"param pad_width={width}: edge padding of axis {axis} needs a "
                             "non-empty axis", argument="data", actual=data)
    return pairs


def _pad_shape(attrs, in_shapes):
    (data,) = in_shapes
    if data is None:
        return in_shapes, [None]
    data = tuple(data)
    pairs = _check_pad(attrs, data)
    return [data], [tuple(n + a + b for n, (a, b) in zip(data, pairs))]


_pad_shape.partial = True


def _pad_forward(xp, attrs, inputs, outputs, req):
    x, out = inputs[0], outputs[0]
    if req[0] == "null" or out.size == 0:
        return
    target = out if req[0] != "add" else xp.empty_like(out)
    pairs = _pad_pairs(attrs, x.ndim)
    target[tuple(slice(a, a + n) for (a, _), n in zip(pairs, x.shape))] = x
    # Axis by axis over the whole (already padded) extent of the others, as numpy.pad:
    # every border read comes from the interior of the axis being padded.
    for axis, (a, b) in enumerate(pairs):
        n = x.shape[axis]
        if attrs.mode == "constant":
            if a:
                target[slab(x.ndim, axis, slice(0, a))] = attrs.constant_value
            if b:
                target[slab(x.ndim, axis, slice(a + n, None))] = attrs.constant_value
        elif attrs.mode == "edge":
            if a:
                target[slab(x.ndim, axis, slice(0, a))] = target[
                    slab(x.ndim, axis, slice(a, a + 1))]
            if b:
                target[slab(x.ndim, axis, slice(a + n, None))] = target[
                    slab(x.ndim, axis, slice(a + n - 1, a + n))]
        else:  # reflect (the edge itself is not repeated)
            if a:
                target[slab(x.ndim, axis, slice(0, a))] = xp.flip(
                    target[slab(x.ndim, axis, slice(a + 1, 2 * a + 1))], axis)
            if b:
                target[slab(x.ndim, axis, slice(a + n, None))] = xp.flip(
                    target[slab(x.ndim, axis, slice(a + n - 1 - b, a + n - 1))], axis)
    if req[0] == "add":
        out += target


def _backward_pad_shape(attrs, in_shapes):
    (ograd,) = in_shapes
    if ograd is None:
        return in_shapes, [None]
    ograd = tuple(ograd)
    if len(attrs.pad_width) != 2 * len(ograd):
        raise ShapeError(f"param pad_width={attrs.pad_width} does not fit ograd of shape "
                         f"{ograd}", argument="pad_width", expected=2 * len(ograd),
                         actual=len(attrs.pad_width))
    data = tuple(n - a - b for n, (a, b) in zip(ograd, _pad_pairs(attrs, len(ograd))))
    if any(n < 0 for n in data):
        raise ShapeError(f"ograd of shape {ograd} is smaller than pad_width="
                         f"{attrs.pad_width}", argument="ograd", actual=ograd)
    return [ograd], [data]


_backward_pad_shape.partial = True


def _backward_pad_forward(xp, attrs, inputs, outputs, req):
    g, grad = inputs[0], outputs[0]
    if req[0] == "null" or grad.size == 0:
        return
    ndim = g.ndim
    pairs = _pad_pairs(attrs, ndim)
    # The transpose of padding axis by axis: fold the last padded axis first. Edge and
    # reflect add each border slab onto the interior slab it was copied from (a short
    # loop over the pad width, one vectorised slab add each), in one working copy.
    work = g if attrs.mode == "constant" else g.copy()
    for axis in reversed(range(ndim)):
        a, b = pairs[axis]
        if not (a or b):
            continue
        n = work.shape[axis] - a - b
        if attrs.mode != "constant":
            for k in range(a):
                dst = a if attrs.mode == "edge" else 2 * a - k
                work[slab(ndim, axis, slice(dst, dst + 1))] += work[
                    slab(ndim, axis, slice(k, k + 1))]
            for k in range(b):
                dst = a + n - 1 if attrs.mode == "edge" else a + n - 2 - k
                work[slab(ndim, axis, slice(dst, dst + 1))] += work[
                    slab(ndim, axis, slice(a + n + k, a + n + k + 1))]
        work = work[slab(ndim, axis, slice(a, a + n))]
    write_result(xp, grad, work, req[0])


_PAD_PARAMS = {
    "mode": Param(str, "constant", "'constant' pads with constant_value, 'edge' repeats the "
                  "edge values, 'reflect' mirrors the values next to the edge.",
                  choices=_PAD_MODES),
    "pad_width": Param(Shape, REQUIRED, "(before_1, after_1, ..., before_N, after_N), as "
                       "numpy.pad's flattened; the first four (N and C) must be 0.", min=0),
    "constant_value": Param(float, 0.0, "The padding value in 'constant' mode."),
}

register(OpDef(
    "_backward_Pad", _backward_pad_forward, inputs=("ograd",), params=dict(_PAD_PARAMS),
    infer_shape=_backward_pad_shape,
    gradient=lambda F, node, ograds: [
        F.Pad(ograds[0], mode=node.attrs.mode, pad_width=node.attrs.pad_width)],
    doc="Gradient of Pad: the interior of `ograd`, plus (edge, reflect) the border "
        "gradients added back onto the positions they were copied from."))

register(OpDef(
    "Pad", _pad_forward, params=dict(_PAD_PARAMS), infer_shape=_pad_shape,
    aliases=("pad",),
    gradient=lambda F, node, ograds: [
        F._backward_Pad(ograds[0], mode=node.attrs.mode, pad_width=node.attrs.pad_width)],
    doc="Pad the spatial axes of (N, C, ...) data with a constant, the edge values or "
        "their reflection."))


# -- Crop ----------------------------------------------------------------------------------

def _crop_box(attrs, data, size):
    """Check the crop of (h, w) ``size`` out of 4-D ``data``; return the (y, x) offset."""
    height, width = data[2], data[3]
    h, w = size
    if h > height or w > width:
        raise ShapeError(f"the crop size ({h}, {w}) is larger than the input's spatial size "
                         f"({height}, {width})", argument="h_w", expected=(height, width),
                         actual=(h, w))
    if attrs.center_crop:
        return (height - h) // 2, (width - w) // 2
    if len(attrs.offset) != 2:
        raise ShapeError(f"param offset={attrs.offset} must be (y, x)", argument="offset",
                         expected=2, actual=len(attrs.offset))
    y, x = attrs.offset
    if y > height - h or x > width - w:
        raise ShapeError(f"param offset={attrs.offset}: a ({h}, {w}) crop at that offset "
                         f"leaves the ({height}, {width}) input (at most "
                         f"{(height - h, width - w)})", argument="offset",
                         expected=(height - h, width - w), actual=attrs.offset)
    return y, x


def _crop_size(attrs, in_shapes, data):
    """The (h, w) of the crop, or None while crop_like's shape is unknown."""
    if attrs.num_args == 1:
        if len(attrs.h_w) != 2 or min(attrs.h_w) < 1:
            raise ShapeError(f"param h_w={attrs.h_w} must be (h, w) with h, w >= 1 when Crop "
                             "has one input", argument="h_w", expected="(h >= 1, w >= 1)",
                             actual=attrs.h_w)
        return tuple(attrs.h_w)
    like = in_shapes[1]
    if like is None:
        return None
    if len(like) != 4:
        raise ShapeError(f"input 'crop_like' (arg1) has shape {tuple(like)}; it must be 4-D "
                         "(N, C, H, W): its H and W give the crop size", argument="crop_like",
                         actual=tuple(like))
    return tuple(like[2:])


def _crop_shape(attrs, in_shapes):
    if len(in_shapes) != attrs.num_args:
        raise ShapeError(f"param num_args={attrs.num_args} but {len(in_shapes)} inputs were "
                         "given", argument="num_args", expected=len(in_shapes),
                         actual=attrs.num_args)
    data = in_shapes[0]
    if data is None:
        return in_shapes, [None]
    data = tuple(data)
    if len(data) != 4:
        raise ShapeError(f"input 'data' (arg0) has shape {data}; Crop needs 4-D data "
                         "(N, C, H, W)", argument="data", actual=data)
    size = _crop_size(attrs, in_shapes, data)
    if size is None:
        return in_shapes, [None]
    _crop_box(attrs, data, size)
    return [data] + list(in_shapes[1:]), [data[:2] + size]


_crop_shape.partial = True


def _crop_type(attrs, in_dtypes):
    data = in_dtypes[0]
    return [data] + list(in_dtypes[1:]), [data]


def _crop_forward(xp, attrs, inputs, outputs, req):
    data, out = inputs[0], outputs[0]
    h, w = out.shape[2:]
    y, x = _crop_box(attrs, data.shape, (h, w))
    write_result(xp, out, data[:, :, y:y + h, x:x + w], req[0])


def _backward_crop_shape(attrs, in_shapes):
    ograd, like = in_shapes
    if like is None or ograd is None:
        return in_shapes, [like]
    ograd, like = tuple(ograd), tuple(like)
    if len(ograd) != 4 or len(like) != 4 or ograd[:2] != like[:2]:
        raise ShapeError(f"ograd of shape {ograd} is not a crop of {like}", argument="ograd",
                         expected=like[:2] + ("h", "w"), actual=ograd)
    _crop_box(attrs, like, ograd[2:])
    return [ograd, like], [like]


_backward_crop_shape.partial = True


def _backward_crop_forward(xp, attrs, inputs, outputs, req):
    ograd, like = inputs
    grad = outputs[0]
    if req[0] == "null":
        return
    h, w = ograd.shape[2:]
    y, x = _crop_box(attrs, like.shape, (h, w))
    if req[0] == "add":
        grad[:, :, y:y + h, x:x + w] += ograd
        return
    grad.fill(0)
    grad[:, :, y:y + h, x:x + w] = ograd


_CROP_PARAMS = {
    "offset": Param(Shape, (0, 0), "(y, x) of the crop's top-left corner (unless "
                    "center_crop).", min=0),
    "h_w": Param(Shape, (0, 0), "(h, w) of the crop when there is no crop_like input."),
    "center_crop": Param(bool, False, "Center the crop (ignore offset)."),
}


def _crop_backward_params(node):
    return {k: node.attrs[k] for k in _CROP_PARAMS}


register(OpDef(
    "_backward_Crop", _backward_crop_forward, inputs=("ograd", "like"),
    params=dict(_CROP_PARAMS), infer_shape=_backward_crop_shape, infer_type=_crop_type,
    gradient=lambda F, node, ograds: [
        F.Crop(ograds[0], node.inputs[0], offset=node.attrs.offset,
               center_crop=node.attrs.center_crop), None],
    doc="Gradient of Crop: zeros of `like`'s shape with `ograd` at the cropped window. "
        "Only `like`'s shape is used."))

register(OpDef(
    "Crop", _crop_forward, variadic=True,
    params={"num_args": Param(int, REQUIRED, "1 (crop to h_w) or 2 (crop to the spatial size "
                                             "of the second input, crop_like).", min=1, max=2),
            **_CROP_PARAMS},
    infer_shape=_crop_shape, infer_type=_crop_type, partial_infer=True,
    gradient=lambda F, node, ograds: [
        F._backward_Crop(ograds[0], node.inputs[0], **_crop_backward_params(node))]
        + [None] * (len(node.inputs) - 1),
    doc="Cut an (h, w) window out of 4-D (N, C, H, W) data: h_w gives its size, or a second "
        "input's spatial size does (crop_like, which gets no gradient); at offset, or "
        "centered."))
