"""Image resizing: ``BilinearResize2D`` (Caffe's Interp, MXNet's contrib op) and its gradient.

Bilinear interpolation is separable and linear: the output is ``Ah @ x @
Aw.T`` for each image and channel, with interpolation matrices ``Ah``
(out_h x in_h) and ``Aw``. Its gradient is ``Ah.T @ g @ Aw``
(``_backward_BilinearResize2D``), itself linear with the forward as its
gradient, so every order works.

The output size is ``height``/``width`` when given, else the input size
scaled as Caffe's Interp layer does: ``shrink_factor`` then ``zoom_factor``
(``(n - 1) / shrink + 1``, then ``n + (n - 1) * (zoom - 1)``).
"""
import numpy as np

from ..base import ShapeError
from .registry import OpDef, Param, register, write_result

__all__ = ["interp_matrix", "resized_size"]


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
