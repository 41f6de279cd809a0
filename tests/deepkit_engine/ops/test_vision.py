"""``BilinearResize2D`` (Caffe's Interp), ``Resize2D`` (OpenCV's Resize layer) and
``MaxUnpool2D`` (SegNet's Upsample) and their gradients against float64 loop references of
Caffe's ``caffe_cpu_interp2`` (corners aligned), of half-pixel bilinear resizing, of OpenCV's
ResizeLayer loops and of SegNet's UpsampleLayer.
"""
import numpy as np
import pytest

from deepkit_engine import ndarray as nd
from deepkit_engine.base import DeepkitError, ShapeError

from .op_cases import Const, OpCase, forward_params, gradient_params, run_forward, run_gradient


def _out_size(n, height=0, zoom_factor=1, shrink_factor=1):
    if height:
        return height
    n = (n - 1) // shrink_factor + 1
    return n + (n - 1) * (zoom_factor - 1)


def _source(i, n_in, n_out, align_corners):
    if align_corners:
        return i * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    return max((i + 0.5) * n_in / n_out - 0.5, 0.0)


def _resize_ref(x, height=0, width=0, zoom_factor=1, shrink_factor=1, align_corners=True):
    """One output pixel at a time: the four neighbours, weighted."""
    n, c, h, w = x.shape
    oh = _out_size(h, height, zoom_factor, shrink_factor)
    ow = _out_size(w, width, zoom_factor, shrink_factor)
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        sy = _source(i, h, oh, align_corners)
        y0 = min(int(sy), h - 1)
        y1, fy = min(y0 + 1, h - 1), sy - min(int(sy), h - 1)
        for j in range(ow):
            sx = _source(j, w, ow, align_corners)
            x0 = min(int(sx), w - 1)
            x1, fx = min(x0 + 1, w - 1), sx - x0
            out[:, :, i, j] = ((1 - fy) * ((1 - fx) * x[:, :, y0, x0] + fx * x[:, :, y0, x1]) +
                               fy * ((1 - fx) * x[:, :, y1, x0] + fx * x[:, :, y1, x1]))
    return out


def _backward_ref(g, data, **params):
    """The transpose of the forward, column by column of the identity."""
    h, w = data.shape[2:]
    grad = np.zeros(data.shape)
    for i in range(h):
        for j in range(w):
            unit = np.zeros((1, 1, h, w))
            unit[0, 0, i, j] = 1.0
            grad[:, :, i, j] = (g * _resize_ref(unit, **params)[0, 0]).sum(axis=(2, 3))
    return grad


CASES = [
    OpCase("BilinearResize2D", [(2, 3, 4, 5)], _resize_ref, {"zoom_factor": 2}),
    OpCase("BilinearResize2D", [(1, 2, 7, 6)], _resize_ref, {"shrink_factor": 2}),
    OpCase("BilinearResize2D", [(1, 2, 3, 4)], _resize_ref, {"height": 7, "width": 2}),
    OpCase("BilinearResize2D", [(1, 1, 4, 4)], _resize_ref,
           {"height": 6, "width": 9, "align_corners": False}),
    OpCase("_backward_BilinearResize2D", [(2, 3, 7, 9), Const(np.zeros((2, 3, 4, 5)))],
           _backward_ref, {"zoom_factor": 2}),
    OpCase("_backward_BilinearResize2D", [(1, 1, 6, 9), Const(np.zeros((1, 1, 4, 4)))],
           _backward_ref, {"height": 6, "width": 9, "align_corners": False}),
]


# -- Resize2D (OpenCV's Resize layer) ------------------------------------------------------

def _resize2d_source(i, n_in, n_out, mode, coordinate):
    if coordinate == "align_corners" and n_out > 1:
        scale = float(np.float32(n_in - 1) / np.float32(n_out - 1))
    else:
        scale = float(np.float32(n_in) / np.float32(n_out))
    if mode == "nearest":
        if coordinate == "asymmetric":
            return min(i * n_in // n_out, n_in - 1)
        offset = 0.5 if coordinate == "align_corners" else 0.5 * scale
        return min(int(np.floor(i * scale + offset)), n_in - 1)
    if coordinate == "half_pixel":
        return max((i + 0.5) * n_in / n_out - 0.5, 0.0)
    return i * scale


def _resize2d_ref(x, height=0, width=0, zoom_h=1.0, zoom_w=1.0, mode="bilinear",
                  coordinate="asymmetric"):
    """OpenCV's ResizeLayer::forward (cv::resize for half-pixel bilinear), pixel by pixel."""
    n, c, h, w = x.shape
    oh = height or int(np.float32(h) * np.float32(zoom_h))
    ow = width or int(np.float32(w) * np.float32(zoom_w))
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        sy = _resize2d_source(i, h, oh, mode, coordinate)
        for j in range(ow):
            sx = _resize2d_source(j, w, ow, mode, coordinate)
            if mode == "nearest":
                out[:, :, i, j] = x[:, :, sy, sx]
                continue
            y0, x0 = min(int(sy), h - 1), min(int(sx), w - 1)
            y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
            fy, fx = sy - y0, sx - x0
            out[:, :, i, j] = ((1 - fy) * ((1 - fx) * x[:, :, y0, x0] + fx * x[:, :, y0, x1]) +
                               fy * ((1 - fx) * x[:, :, y1, x0] + fx * x[:, :, y1, x1]))
    return out


def _resize2d_backward_ref(g, data, **params):
    h, w = data.shape[2:]
    grad = np.zeros(data.shape)
    for i in range(h):
        for j in range(w):
            unit = np.zeros((1, 1, h, w))
            unit[0, 0, i, j] = 1.0
            grad[:, :, i, j] = (g * _resize2d_ref(unit, **params)[0, 0]).sum(axis=(2, 3))
    return grad


CASES += [
    OpCase("Resize2D", [(2, 2, 3, 4)], _resize2d_ref,
           {"zoom_h": 2.0, "zoom_w": 2.0, "mode": "nearest"}),
    OpCase("Resize2D", [(1, 2, 4, 5)], _resize2d_ref,
           {"zoom_h": 1.5, "zoom_w": 2.5, "mode": "nearest"}),
    OpCase("Resize2D", [(1, 2, 4, 5)], _resize2d_ref,
           {"height": 7, "width": 3, "mode": "nearest", "coordinate": "align_corners"}),
    OpCase("Resize2D", [(1, 2, 4, 5)], _resize2d_ref,
           {"height": 7, "width": 9, "mode": "nearest", "coordinate": "half_pixel"}),
    OpCase("Resize2D", [(2, 1, 3, 4)], _resize2d_ref, {"zoom_h": 2.0, "zoom_w": 2.0}),
    OpCase("Resize2D", [(1, 2, 4, 5)], _resize2d_ref,
           {"height": 7, "width": 3, "coordinate": "align_corners"}),
    OpCase("Resize2D", [(1, 2, 4, 5)], _resize2d_ref,
           {"height": 7, "width": 9, "coordinate": "half_pixel"}),
    OpCase("_backward_Resize2D", [(2, 2, 6, 8), Const(np.zeros((2, 2, 3, 4)))],
           _resize2d_backward_ref, {"zoom_h": 2.0, "zoom_w": 2.0, "mode": "nearest"}),
    OpCase("_backward_Resize2D", [(1, 2, 7, 9), Const(np.zeros((1, 2, 4, 5)))],
           _resize2d_backward_ref, {"height": 7, "width": 9, "coordinate": "half_pixel"}),
]


# -- MaxUnpool2D (SegNet's Upsample) ---------------------------------------------------------

def _unpool_mask(shape, out_h, out_w):
    """A MAX pooling's mask: one index per 2x2 window of the (out_h, out_w) plane."""
    def make(rng, dtype):
        h, w = shape[2:]
        rows = np.minimum(np.arange(h)[:, None] * 2 + rng.integers(0, 2, shape), out_h - 1)
        cols = np.minimum(np.arange(w)[None, :] * 2 + rng.integers(0, 2, shape), out_w - 1)
        return (rows * out_w + cols).astype(np.int64)
    return make


def _unpool_size(h, w, height=0, width=0, scale_h=2, scale_w=2, pad_out_h=0, pad_out_w=0):
    return height or h * scale_h - pad_out_h, width or w * scale_w - pad_out_w


def _unpool_ref(x, mask, **params):
    """SegNet's UpsampleLayer::Forward_cpu: top[mask[i]] = bottom[i], plane by plane."""
    n, c, h, w = x.shape
    oh, ow = _unpool_size(h, w, **params)
    out = np.zeros((n, c, oh * ow))
    for b in range(n):
        for ch in range(c):
            for i in range(h * w):
                out[b, ch, int(mask[b, ch].reshape(-1)[i])] = x[b, ch].reshape(-1)[i]
    return out.reshape(n, c, oh, ow)


def _unpool_backward_ref(g, mask, **params):
    """SegNet's Backward_cpu: bottom_diff[i] = top_diff[mask[i]]."""
    n, c, h, w = mask.shape
    out = np.zeros(mask.shape)
    for b in range(n):
        for ch in range(c):
            for i in range(h * w):
                out[b, ch].reshape(-1)[i] = g[b, ch].reshape(-1)[int(mask[b, ch].reshape(-1)[i])]
    return out


CASES += [
    OpCase("MaxUnpool2D", [(2, 2, 3, 4), _unpool_mask((2, 2, 3, 4), 6, 8)], _unpool_ref, {}),
    OpCase("MaxUnpool2D", [(1, 2, 3, 4), _unpool_mask((1, 2, 3, 4), 5, 7)], _unpool_ref,
           {"height": 5, "width": 7}),
    OpCase("MaxUnpool2D", [(1, 1, 3, 3), _unpool_mask((1, 1, 3, 3), 5, 6)], _unpool_ref,
           {"pad_out_h": 1}),
    OpCase("_backward_MaxUnpool2D", [(2, 2, 6, 8), _unpool_mask((2, 2, 3, 4), 6, 8)],
           _unpool_backward_ref, {}),
    OpCase("_backward_MaxUnpool2D", [(1, 2, 5, 7), _unpool_mask((1, 2, 3, 4), 5, 7)],
           _unpool_backward_ref, {"height": 5, "width": 7}),
]


# -- MaxPoolIndices (the mask top of Caffe's MAX pooling) ------------------------------------

def _pool_indices_ref(x, kernel=(1, 1), stride=(1, 1), pad=(0, 0), pooling_convention="full",
                      global_pool=False):
    """Caffe's PoolingLayer MAX loop: the first largest value's plane index per window."""
    n, c, h, w = x.shape
    if global_pool:
        kernel, stride, pad = (h, w), (1, 1), (0, 0)
    sizes = []
    for size, k, st, p in zip((h, w), kernel, stride, pad):
        span = size + 2 * p - k
        out = (int(np.ceil(span / st)) if pooling_convention == "full" else span // st) + 1
        if p > 0 and (out - 1) * st >= size + p:
            out -= 1
        sizes.append(out)
    out = np.zeros((n, c) + tuple(sizes))
    for b in range(n):
        for ch in range(c):
            for i in range(sizes[0]):
                for j in range(sizes[1]):
                    hs, ws = i * stride[0] - pad[0], j * stride[1] - pad[1]
                    he, we = min(hs + kernel[0], h), min(ws + kernel[1], w)
                    best, index = -np.inf, -1
                    for y in range(max(hs, 0), he):
                        for xx in range(max(ws, 0), we):
                            if x[b, ch, y, xx] > best:
                                best, index = x[b, ch, y, xx], y * w + xx
                    out[b, ch, i, j] = index
    return out


CASES += [
    OpCase("MaxPoolIndices", [(2, 2, 5, 7)], _pool_indices_ref,
           {"kernel": (2, 2), "stride": (2, 2)}, grad=False),
    OpCase("MaxPoolIndices", [(1, 2, 6, 7)], _pool_indices_ref,
           {"kernel": (3, 2), "stride": (2, 1), "pad": (1, 1)}, grad=False),
    OpCase("MaxPoolIndices", [(1, 2, 6, 7)], _pool_indices_ref,
           {"kernel": (3, 3), "stride": (2, 2), "pooling_convention": "valid"}, grad=False),
    OpCase("MaxPoolIndices", [(1, 2, 4, 3)], _pool_indices_ref, {"global_pool": True},
           grad=False),
]


@pytest.mark.parametrize("case,dtype", forward_params(CASES))
def test_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)


@pytest.mark.parametrize("case", gradient_params(CASES))
def test_gradient(case, ctx):
    run_gradient(case, ctx)


def test_unpool_mask_out_of_range_names_the_index():
    with pytest.raises(DeepkitError, match="mask index 9 is outside the output plane of 4"):
        nd.MaxUnpool2D(nd.ones((1, 1, 1, 2)), nd.array(np.array([[[[0, 9]]]])), scale_h=1,
                       scale_w=2).asnumpy()


def test_resize_needs_4d_data():
    with pytest.raises(ShapeError, match="BilinearResize2D needs \\(N, C, H, W\\)"):
        nd.BilinearResize2D(nd.zeros((2, 3, 4)), zoom_factor=2)
