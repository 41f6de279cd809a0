"""Image resizing: ``BilinearResize2D`` (Caffe's Interp, MXNet's contrib op), ``Resize2D``
(OpenCV's Resize layer: nearest or bilinear, three pixel mappings), ``MaxUnpool2D`` (SegNet's
Upsample layer: values placed at pooling indices), and their gradients; ``MaxPoolIndices``
(the mask top of Caffe's MAX pooling, which MaxUnpool2D reads).

Bilinear interpolation is separable and linear: the output is ``Ah @ x @
Aw.T`` for each image and channel, with interpolation matrices ``Ah``
(out_h x in_h) and ``Aw``. Its gradient is ``Ah.T @ g @ Aw``
(``_backward_BilinearResize2D``), itself linear with the forward as its
gradient, so every order works.

The output size is ``height``/``width`` when given, else the input size
scaled as Caffe's Interp layer does: ``shrink_factor`` then ``zoom_factor``
(``(n - 1) / shrink + 1``, then ``n + (n - 1) * (zoom - 1)``).

``Resize2D`` is linear in the same way, with a 0/1 selection matrix per axis
for nearest-neighbour sampling; ``MaxUnpool2D`` scatters each value to the
index its mask gives within the output plane, and its gradient gathers.
"""
import numpy as np

from ..base import ShapeError
from .registry import OpDef, Param, Shape, register, write_result

__all__ = ["interp_matrix", "resized_size", "resize_matrix", "resize_size", "unpool_size",
           "pool_out_size"]

_MODES = ("nearest", "bilinear")
_COORDINATES = ("asymmetric", "align_corners", "half_pixel")


def interp_matrix(n_in, n_out, align_corners=True):
    """The (n_out, n_in) bilinear interpolation matrix of one axis.

    Args:
        n_in, n_out: The input and output sizes.
        align_corners: Map the corner pixels onto each other (Caffe's Interp);
            else half-pixel centres (OpenCV's resize), clamped at the borders.

    Returns:
        A float64 array.
    """
    out = np.arange(n_out, dtype=np.float64)
    if align_corners:
        src = out * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    else:
        src = np.maximum((out + 0.5) * (n_in / n_out) - 0.5, 0.0)
    low = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    high = np.minimum(low + 1, n_in - 1)
    frac = src - low
    matrix = np.zeros((n_out, n_in))
    np.add.at(matrix, (np.arange(n_out), low), 1.0 - frac)
    np.add.at(matrix, (np.arange(n_out), high), frac)
    return matrix


def resized_size(attrs, n, which):
    """The output size of one spatial axis of input size ``n``."""
    fixed = attrs.height if which == "height" else attrs.width
    if fixed:
        return fixed
    if attrs.shrink_factor != 1:
        n = (n - 1) // attrs.shrink_factor + 1
    if attrs.zoom_factor != 1:
        n = n + (n - 1) * (attrs.zoom_factor - 1)
    return n


def _matrices(xp, attrs, in_hw, out_hw, dtype):
    ah = interp_matrix(in_hw[0], out_hw[0], attrs.align_corners)
    aw = interp_matrix(in_hw[1], out_hw[1], attrs.align_corners)
    return xp.asarray(ah, dtype=dtype), xp.asarray(aw, dtype=dtype)


def _resize_shape(attrs, in_shapes):
    (data,) = in_shapes
    if data is None:
        return in_shapes, [None]
    if len(data) != 4:
        raise ShapeError(f"input 'data' has shape {data}; BilinearResize2D needs (N, C, H, W)",
                         argument="data", expected="(N, C, H, W)", actual=data)
    h, w = resized_size(attrs, data[2], "height"), resized_size(attrs, data[3], "width")
    if h < 1 or w < 1:
        raise ShapeError(f"BilinearResize2D of data {data} gives an empty output ({h}, {w})",
                         argument="data", actual=data)
    return in_shapes, [tuple(data[:2]) + (h, w)]


def _resize_forward(xp, attrs, inputs, outputs, req):
    x, out = inputs[0], outputs[0]
    ah, aw = _matrices(xp, attrs, x.shape[2:], out.shape[2:], out.dtype)
    write_result(xp, out, xp.einsum("oh,nchw,pw->ncop", ah, x, aw), req[0])


def _backward_shape(attrs, in_shapes):
    data = in_shapes[1]
    return in_shapes, [None if data is None else tuple(data)]


def _backward_forward(xp, attrs, inputs, outputs, req):
    g, grad = inputs[0], outputs[0]
    ah, aw = _matrices(xp, attrs, grad.shape[2:], g.shape[2:], grad.dtype)
    write_result(xp, grad, xp.einsum("oh,ncop,pw->nchw", ah, g, aw), req[0])


_PARAMS = {
    "height": Param(int, 0, "Output height (0: from the scale factors).", min=0),
    "width": Param(int, 0, "Output width (0: from the scale factors).", min=0),
    "zoom_factor": Param(int, 1, "Caffe Interp's zoom: n + (n - 1) * (zoom - 1).", min=1),
    "shrink_factor": Param(int, 1, "Caffe Interp's shrink: (n - 1) / shrink + 1.", min=1),
    "align_corners": Param(bool, True, "Corner pixels map onto each other (Caffe's Interp); "
                                       "False: half-pixel centres."),
}


def _resize_gradient(F, node, ograds):
    return [F._backward_BilinearResize2D(ograds[0], node.inputs[0], **dict(node.attrs))]


def _backward_gradient(F, node, ograds):
    return [F.BilinearResize2D(ograds[0], **dict(node.attrs)), F.zeros_like(node.inputs[1])]


register(OpDef(
    "BilinearResize2D", _resize_forward, params=dict(_PARAMS), infer_shape=_resize_shape,
    gradient=_resize_gradient, aliases=("_contrib_BilinearResize2D",),
    doc="Bilinear resize of (N, C, H, W) data to (height, width), or by Caffe Interp's "
        "shrink and zoom factors; align_corners as Caffe's Interp by default."))

register(OpDef(
    "_backward_BilinearResize2D", _backward_forward, inputs=("ograd", "data"),
    params=dict(_PARAMS), infer_shape=_backward_shape, gradient=_backward_gradient,
    doc="Gradient of BilinearResize2D: the transposed interpolation of `ograd` onto the "
        "shape of `data` (whose values are not read)."))


# -- Resize2D (OpenCV's Resize layer) -----------------------------------------------------

def resize_matrix(n_in, n_out, mode="bilinear", coordinate="asymmetric"):
    """The (n_out, n_in) sampling matrix of one axis, as OpenCV's Resize layer samples.

    Args:
        n_in, n_out: The input and output sizes.
        mode: ``'nearest'`` or ``'bilinear'``.
        coordinate: How an output index maps to the input: ``'asymmetric'``
            (``i * n_in / n_out``), ``'align_corners'`` (``i * (n_in - 1) /
            (n_out - 1)``) or ``'half_pixel'`` (pixel centres; for bilinear,
            ``(i + 0.5) * n_in / n_out - 0.5`` clamped at 0).

    Returns:
        A float64 array.
    """
    out = np.arange(n_out, dtype=np.float64)
    if coordinate == "align_corners" and n_out > 1:
        scale = np.float32(n_in - 1) / np.float32(n_out - 1)
    else:
        scale = np.float32(n_in) / np.float32(n_out)
    scale = float(scale)
    matrix = np.zeros((n_out, n_in))
    if mode == "nearest":
        if coordinate == "asymmetric":
            src = (np.arange(n_out) * n_in) // n_out
        elif coordinate == "align_corners":
            src = np.floor(out * scale + 0.5)
        else:
            src = np.floor(out * scale + 0.5 * scale)
        src = np.minimum(src.astype(np.int64), n_in - 1)
        matrix[np.arange(n_out), src] = 1.0
        return matrix
    if coordinate == "half_pixel":
        return interp_matrix(n_in, n_out, align_corners=False)
    src = out * scale
    low = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    high = np.minimum(low + 1, n_in - 1)
    frac = src - low
    np.add.at(matrix, (np.arange(n_out), low), 1.0 - frac)
    np.add.at(matrix, (np.arange(n_out), high), frac)
    return matrix


def resize_size(attrs, n, which):
    """The output size of one spatial axis of input size ``n`` (OpenCV's rule: ``int(n * zoom)``)."""
    fixed = attrs.height if which == "height" else attrs.width
    if fixed:
        return fixed
    zoom = attrs.zoom_h if which == "height" else attrs.zoom_w
    return int(np.float32(n) * np.float32(zoom))


def _resize2d_matrices(xp, attrs, in_hw, out_hw, dtype):
    ah = resize_matrix(in_hw[0], out_hw[0], attrs.mode, attrs.coordinate)
    aw = resize_matrix(in_hw[1], out_hw[1], attrs.mode, attrs.coordinate)
    return xp.asarray(ah, dtype=dtype), xp.asarray(aw, dtype=dtype)


def _resize2d_shape(attrs, in_shapes):
    (data,) = in_shapes
    if data is None:
        return in_shapes, [None]
    if len(data) != 4:
        raise ShapeError(f"input 'data' has shape {data}; Resize2D needs (N, C, H, W)",
                         argument="data", expected="(N, C, H, W)", actual=data)
    h, w = resize_size(attrs, data[2], "height"), resize_size(attrs, data[3], "width")
    if h < 1 or w < 1:
        raise ShapeError(f"Resize2D of data {data} gives an empty output ({h}, {w}): give "
                         "height/width or zoom factors that keep at least one pixel",
                         argument="data", actual=data)
    return in_shapes, [tuple(data[:2]) + (h, w)]


def _resize2d_forward(xp, attrs, inputs, outputs, req):
    x, out = inputs[0], outputs[0]
    ah, aw = _resize2d_matrices(xp, attrs, x.shape[2:], out.shape[2:], out.dtype)
    write_result(xp, out, xp.einsum("oh,nchw,pw->ncop", ah, x, aw), req[0])


def _resize2d_backward_forward(xp, attrs, inputs, outputs, req):
    g, grad = inputs[0], outputs[0]
    ah, aw = _resize2d_matrices(xp, attrs, grad.shape[2:], g.shape[2:], grad.dtype)
    write_result(xp, grad, xp.einsum("oh,ncop,pw->nchw", ah, g, aw), req[0])


_RESIZE_PARAMS = {
    "height": Param(int, 0, "Output height (0: input height times zoom_h).", min=0),
    "width": Param(int, 0, "Output width (0: input width times zoom_w).", min=0),
    "zoom_h": Param(float, 1.0, "Height factor: int(height * zoom_h).", min=0.0),
    "zoom_w": Param(float, 1.0, "Width factor: int(width * zoom_w).", min=0.0),
    "mode": Param(str, "bilinear", "Sampling: nearest or bilinear.", choices=_MODES),
    "coordinate": Param(str, "asymmetric", "Output-to-input mapping: asymmetric (i * in / "
                                           "out), align_corners or half_pixel.",
                        choices=_COORDINATES),
}


def _resize2d_gradient(F, node, ograds):
    return [F._backward_Resize2D(ograds[0], node.inputs[0], **dict(node.attrs))]


def _resize2d_backward_gradient(F, node, ograds):
    return [F.Resize2D(ograds[0], **dict(node.attrs)), F.zeros_like(node.inputs[1])]


register(OpDef(
    "Resize2D", _resize2d_forward, params=dict(_RESIZE_PARAMS), infer_shape=_resize2d_shape,
    gradient=_resize2d_gradient,
    doc="Resize of (N, C, H, W) data as OpenCV's Resize layer: to (height, width), or by the "
        "zoom factors (int(n * zoom)); nearest or bilinear sampling, with the output pixel i "
        "read at i * in / out (asymmetric), at i * (in - 1) / (out - 1) (align_corners) or "
        "at the pixel centres (half_pixel). Nearest rounds down (asymmetric), to the nearest "
        "(align_corners) or takes the pixel containing the centre (half_pixel)."))

register(OpDef(
    "_backward_Resize2D", _resize2d_backward_forward, inputs=("ograd", "data"),
    params=dict(_RESIZE_PARAMS), infer_shape=_backward_shape,
    gradient=_resize2d_backward_gradient,
    doc="Gradient of Resize2D: the transposed sampling of `ograd` onto the shape of `data` "
        "(whose values are not read)."))


# -- MaxUnpool2D (SegNet's Upsample layer) ---------------------------------------------------

def unpool_size(attrs, n, which):
    """The output size of one axis: ``height``/``width``, else ``n * scale - pad_out``."""
    fixed = attrs.height if which == "height" else attrs.width
    if fixed:
        return fixed
    if which == "height":
        return n * attrs.scale_h - attrs.pad_out_h
    return n * attrs.scale_w - attrs.pad_out_w


def _unpool_shape(attrs, in_shapes):
    data, mask = in_shapes
    known = data if data is not None else mask
    if known is None:
        return in_shapes, [None]
    if len(known) != 4 or (data is not None and mask is not None and
                           tuple(data) != tuple(mask)):
        raise ShapeError(f"MaxUnpool2D takes data and mask of one shape (N, C, H, W); got data "
                         f"{data} and mask {mask}", argument="mask", expected=data, actual=mask)
    h, w = unpool_size(attrs, known[2], "height"), unpool_size(attrs, known[3], "width")
    if h < 1 or w < 1:
        raise ShapeError(f"MaxUnpool2D of data {known} gives an empty output ({h}, {w})",
                         argument="data", actual=known)
    return [tuple(known), tuple(known)], [tuple(known[:2]) + (h, w)]


def _unpool_type(attrs, in_dtypes):
    data = in_dtypes[0] if in_dtypes[0] is not None else np.dtype(np.float32)
    mask = in_dtypes[1] if in_dtypes[1] is not None else data
    return [data, mask], [data]


def _plane_indices(xp, mask, plane_size, op):
    """The mask as int64 plane indices, checked against the output plane size."""
    idx = xp.asarray(mask).astype(np.int64).reshape(mask.shape[0] * mask.shape[1], -1)
    low, high = (int(idx.min()), int(idx.max())) if idx.size else (0, 0)
    if low < 0 or high >= plane_size:
        bad = low if low < 0 else high
        raise ShapeError(f"{op}: mask index {bad} is outside the output plane of "
                         f"{plane_size} values: the mask must "
                         "come from the pooling whose output is upsampled (check scale or "
                         "upsample_h/upsample_w)", argument="mask",
                         expected=f"[0, {plane_size})", actual=(low, high))
    return idx


def _unpool_forward(xp, attrs, inputs, outputs, req):
    x, mask = inputs
    out = outputs[0]
    n, c, oh, ow = out.shape
    idx = _plane_indices(xp, mask, oh * ow, "MaxUnpool2D")
    planes = xp.zeros((n * c, oh * ow), dtype=out.dtype)
    rows = xp.arange(n * c)[:, None]
    planes[rows, idx] = x.reshape(n * c, -1)
    write_result(xp, out, planes.reshape(out.shape), req[0])


def _unpool_backward_shape(attrs, in_shapes):
    mask = in_shapes[1]
    return in_shapes, [None if mask is None else tuple(mask)]


def _unpool_backward_type(attrs, in_dtypes):
    g = in_dtypes[0] if in_dtypes[0] is not None else np.dtype(np.float32)
    return [g, in_dtypes[1] if in_dtypes[1] is not None else g], [g]


def _unpool_backward_forward(xp, attrs, inputs, outputs, req):
    g, mask = inputs
    grad = outputs[0]
    n, c, oh, ow = g.shape
    idx = _plane_indices(xp, mask, oh * ow, "_backward_MaxUnpool2D")
    rows = xp.arange(n * c)[:, None]
    write_result(xp, grad, g.reshape(n * c, -1)[rows, idx].reshape(grad.shape), req[0])


_UNPOOL_PARAMS = {
    "height": Param(int, 0, "Output height (0: height * scale_h - pad_out_h).", min=0),
    "width": Param(int, 0, "Output width (0: width * scale_w - pad_out_w).", min=0),
    "scale_h": Param(int, 2, "Vertical scale.", min=1),
    "scale_w": Param(int, 2, "Horizontal scale.", min=1),
    "pad_out_h": Param(int, 0, "Rows removed from height * scale_h.", min=0),
    "pad_out_w": Param(int, 0, "Columns removed from width * scale_w.", min=0),
}


def _unpool_gradient(F, node, ograds):
    return [F._backward_MaxUnpool2D(ograds[0], node.inputs[1], **dict(node.attrs)),
            F.zeros_like(node.inputs[1])]


def _unpool_backward_gradient(F, node, ograds):
    attrs = dict(node.attrs)
    return [F.MaxUnpool2D(ograds[0], node.inputs[1], **attrs), F.zeros_like(node.inputs[1])]


register(OpDef(
    "MaxUnpool2D", _unpool_forward, inputs=("data", "mask"), params=dict(_UNPOOL_PARAMS),
    infer_shape=_unpool_shape, infer_type=_unpool_type, partial_infer=True,
    gradient=_unpool_gradient,
    doc="Max unpooling as SegNet's Caffe Upsample layer: each value of (N, C, H, W) data goes "
        "to the output plane index its mask gives (the index a MAX pooling's second top "
        "records, row-major in the unpooled plane); the other outputs are zero. The output "
        "is (height, width), else (H * scale_h - pad_out_h, W * scale_w - pad_out_w). The mask "
        "gets no gradient."))

register(OpDef(
    "_backward_MaxUnpool2D", _unpool_backward_forward, inputs=("ograd", "mask"),
    params=dict(_UNPOOL_PARAMS), infer_shape=_unpool_backward_shape, infer_type=_unpool_backward_type, partial_infer=True,
    gradient=_unpool_backward_gradient,
    doc="Gradient of MaxUnpool2D: the values of `ograd` at the mask's plane indices."))


# -- MaxPoolIndices (the mask top of Caffe's MAX pooling) ---------------------------------------

def pool_out_size(n, kernel, stride, pad, convention):
    """Caffe's pooled size of an axis: ceil (``'full'``) or floor (``'valid'``) rounding, then
    the last window dropped when it would start in the padding."""
    span = n + 2 * pad - kernel
    out = (-(-span // stride) if convention == "full" else span // stride) + 1
    if pad > 0 and (out - 1) * stride >= n + pad:
        out -= 1
    return out


def _pool_geometry(attrs, hw):
    if attrs.global_pool:
        return tuple(hw), (1, 1), (0, 0)
    return tuple(attrs.kernel), tuple(attrs.stride or (1, 1)), tuple(attrs.pad or (0, 0))


def _pool_indices_shape(attrs, in_shapes):
    (data,) = in_shapes
    if data is None:
        return in_shapes, [None]
    if len(data) != 4:
        raise ShapeError(f"input 'data' has shape {data}; MaxPoolIndices needs (N, C, H, W)",
                         argument="data", expected="(N, C, H, W)", actual=data)
    kernel, stride, pad = _pool_geometry(attrs, data[2:])
    if len(kernel) != 2 or len(stride) != 2 or len(pad) != 2:
        raise ShapeError(f"MaxPoolIndices takes a 2-D kernel, stride and pad; got {kernel}, "
                         f"{stride}, {pad}", argument="data", actual=data)
    out = tuple(pool_out_size(n, k, s, p, attrs.pooling_convention)
                for n, k, s, p in zip(data[2:], kernel, stride, pad))
    if min(out) < 1:
        raise ShapeError(f"MaxPoolIndices of data {data} with kernel {kernel} gives an empty "
                         f"output {out}", argument="data", actual=data)
    return in_shapes, [tuple(data[:2]) + out]


def _pool_indices_forward(xp, attrs, inputs, outputs, req):
    x, out = inputs[0], outputs[0]
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph_, pw_) = _pool_geometry(attrs, (h, w))
    result = xp.zeros(out.shape, dtype=out.dtype)
    for i in range(out.shape[2]):
        hs = i * sh - ph_
        he, hs = min(hs + kh, h), max(hs, 0)
        for j in range(out.shape[3]):
            ws = j * sw - pw_
            we, ws = min(ws + kw, w), max(ws, 0)
            window = x[:, :, hs:he, ws:we].reshape(n, c, -1)
            best = xp.argmax(window, axis=2)
            result[:, :, i, j] = (hs + best // (we - ws)) * w + ws + best % (we - ws)
    write_result(xp, out, result, req[0])


register(OpDef(
    "MaxPoolIndices", _pool_indices_forward,
    params={"kernel": Param(Shape, (1, 1), "Window (height, width).", min=1),
            "stride": Param(Shape, (1, 1), "Step (height, width).", min=1),
            "pad": Param(Shape, (0, 0), "Padding (height, width).", min=0),
            "pooling_convention": Param(str, "full", "Output size rounding: full (ceil, "
                                                     "Caffe's default) or valid (floor).",
                                        choices=("full", "valid")),
            "global_pool": Param(bool, False, "One window over the whole plane.")},
    infer_shape=_pool_indices_shape, differentiable=False,
    doc="The mask top of Caffe's MAX pooling: for each window, the index (row * W + column, "
        "in the input plane) of its first largest value, as a float of the data's type. "
        "Windows as Caffe's Pooling layer (padding never wins; ceil or floor rounding with "
        "Caffe's rule for a last window starting in the padding). Indices have no gradient."))
