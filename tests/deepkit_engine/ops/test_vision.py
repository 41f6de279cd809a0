"""``BilinearResize2D`` (Caffe's Interp) and its gradient against float64 loop references of
Caffe's ``caffe_cpu_interp2`` (corners aligned) and of half-pixel bilinear resizing.
"""
import numpy as np
import pytest

from deepkit_engine import ndarray as nd
from deepkit_engine.base import ShapeError

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


@pytest.mark.parametrize("case,dtype", forward_params(CASES))
def test_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)


@pytest.mark.parametrize("case", gradient_params(CASES))
def test_gradient(case, ctx):
    run_gradient(case, ctx)


def test_resize_needs_4d_data():
    with pytest.raises(ShapeError, match="BilinearResize2D needs \\(N, C, H, W\\)"):
        nd.BilinearResize2D(nd.zeros((2, 3, 4)), zoom_factor=2)
