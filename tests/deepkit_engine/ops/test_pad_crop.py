"""Pad and Crop: forward against plain-loop numpy references, gradients (numeric,
executor-level and second order), shapes and errors."""
import numpy as np
import pytest

from deepkit_engine import autograd
from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import ShapeError
from deepkit_engine.ops.registry import get_op
from deepkit_engine.testing import assert_almost_equal

from .op_cases import OpCase, forward_params, gradient_params, run_forward, run_gradient


# -- Pad -----------------------------------------------------------------------------------

def _source_index(i, n, before, mode):
    """The input index a padded position reads, or None for the constant."""
    j = i - before
    if 0 <= j < n:
        return j
    if mode == "constant":
        return None
    if mode == "edge":
        return 0 if j < 0 else n - 1
    return -j if j < 0 else 2 * (n - 1) - j  # reflect


def _pad_ref(x, mode="constant", pad_width=(), constant_value=0.0):
    pairs = [pad_width[2 * k:2 * k + 2] for k in range(x.ndim)]
    out = np.zeros(tuple(n + a + b for n, (a, b) in zip(x.shape, pairs)))
    for i in np.ndindex(*out.shape):
        src = [_source_index(k, n, a, mode) for k, n, (a, _) in zip(i, x.shape, pairs)]
        out[i] = constant_value if None in src else x[tuple(src)]
    return out


def _pad_grad_ref(g, mode="constant", pad_width=(), constant_value=0.0):
    pairs = [pad_width[2 * k:2 * k + 2] for k in range(g.ndim)]
    shape = tuple(n - a - b for n, (a, b) in zip(g.shape, pairs))
    grad = np.zeros(shape)
    for i in np.ndindex(*g.shape):
        src = [_source_index(k, n, a, mode) for k, n, (a, _) in zip(i, shape, pairs)]
        if None not in src:
            grad[tuple(src)] += g[i]
    return grad


_PAD_CASES = [((1, 2, 3, 4), (0, 0, 0, 0, 1, 2, 2, 1)), ((2, 1, 3), (0, 0, 0, 0, 2, 1)),
              ((1, 1, 2, 3, 3), (0, 0, 0, 0, 1, 0, 0, 2, 1, 1)),
              ((1, 1, 3, 3), (0, 0, 0, 0, 0, 0, 2, 0))]

CASES = []
for _mode in ("constant", "edge", "reflect"):
    for _shape, _width in _PAD_CASES:
        _params = {"mode": _mode, "pad_width": _width}
        if _mode == "constant":
            _params["constant_value"] = -0.5
        CASES += [OpCase("Pad", [_shape], _pad_ref, _params),
                  OpCase("_backward_Pad", [_pad_ref(np.zeros(_shape), **_params).shape],
                         _pad_grad_ref, _params)]
CASES += [OpCase("Pad", [(0, 2, 2, 2)], _pad_ref, {"mode": "edge",
                                                   "pad_width": (0, 0, 0, 0, 1, 1, 1, 1)}),
          OpCase("Pad", [(2, 2, 1, 1)], _pad_ref, {"mode": "edge",
                                                   "pad_width": (0, 0, 0, 0, 2, 1, 1, 3)})]


def test_pad_aliases_and_shape():
    assert get_op("pad") is get_op("Pad")
    net = sym.Pad(sym.Variable("x"), mode="reflect", pad_width=(0, 0, 0, 0, 1, 1, 2, 2))
    assert net.infer_shape(x=(2, 3, 5, 5))[1] == [(2, 3, 7, 9)]


@pytest.mark.parametrize("shape,params,message", [
    ((2, 3, 4, 4), {"pad_width": (0, 0, 0, 0, 1, 1)},
     r"pad_width=\(0, 0, 0, 0, 1, 1\) has 6 entries.*needs 8"),
    ((2, 3, 4, 4), {"pad_width": (0, 0, 1, 0, 1, 1, 1, 1)}, r"batch and channel.*must be 0"),
    ((2, 3, 4, 4), {"mode": "reflect", "pad_width": (0, 0, 0, 0, 4, 0, 0, 0)},
     r"reflect padding of axis 2 by \(4, 0\).*< its size 4"),
    ((3, 4), {"pad_width": (0, 0, 1, 1)}, r"data.*\(3, 4\).*at least 3 dimensions"),
])
def test_pad_errors_name_the_op_and_values(shape, params, message):
    with pytest.raises(ShapeError, match=r"(?s)Pad.*" + message):
        nd.Pad(nd.ones(shape), **params)


def test_pad_second_order():
    params = {"mode": "reflect", "pad_width": (0, 0, 0, 0, 1, 2, 2, 1)}
    rng = np.random.default_rng(4)
    v = rng.uniform(-1, 1, (1, 2, 3, 3))
    w = rng.uniform(-1, 1, _pad_ref(v, **params).shape)
    x = nd.array(v, dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = nd.square(nd.Pad(x, **params)) * nd.array(w, dtype="float64")
        g = autograd.grad(y, x, create_graph=True)
    g.backward()
    # g = P^T (2 w * P x), so d(sum g)/dx = P^T (2 w * P 1)
    assert_almost_equal(g, _pad_grad_ref(2 * w * _pad_ref(v, **params), **params))
    assert_almost_equal(x.grad, _pad_grad_ref(2 * w * _pad_ref(np.ones_like(v), **params),
                                              **params))


# -- Crop ----------------------------------------------------------------------------------

def _crop_window(shape, h, w, offset, center_crop):
    if center_crop:
        return (shape[2] - h) // 2, (shape[3] - w) // 2
    return offset


def _crop_ref(data, like=None, num_args=1, offset=(0, 0), h_w=(0, 0), center_crop=False):
    h, w = like.shape[2:] if like is not None else h_w
    y, x = _crop_window(data.shape, h, w, offset, center_crop)
    out = np.zeros(data.shape[:2] + (h, w))
    for n, c, i, j in np.ndindex(*out.shape):
        out[n, c, i, j] = data[n, c, y + i, x + j]
    return out


def _crop_grad_ref(ograd, like, offset=(0, 0), h_w=(0, 0), center_crop=False):
    y, x = _crop_window(like.shape, ograd.shape[2], ograd.shape[3], offset, center_crop)
    grad = np.zeros(like.shape)
    for n, c, i, j in np.ndindex(*ograd.shape):
        grad[n, c, y + i, x + j] = ograd[n, c, i, j]
    return grad


CASES += [
    OpCase("Crop", [(2, 3, 5, 6)], _crop_ref, {"h_w": (3, 4), "offset": (1, 2)}),
    OpCase("Crop", [(1, 2, 5, 6)], _crop_ref, {"h_w": (2, 3), "center_crop": True}),
    OpCase("Crop", [(1, 2, 4, 4)], _crop_ref, {"h_w": (4, 4)}),
    OpCase("Crop", [(1, 2, 5, 6), (1, 1, 2, 3)], _crop_ref, {"offset": (3, 1)}),
    OpCase("Crop", [(2, 1, 5, 6), (7, 9, 4, 3)], _crop_ref, {"center_crop": True}),
    OpCase("_backward_Crop", [(2, 3, 3, 4), (2, 3, 5, 6)], _crop_grad_ref, {"offset": (2, 1)}),
    OpCase("_backward_Crop", [(1, 2, 2, 3), (1, 2, 5, 6)], _crop_grad_ref,
           {"center_crop": True}),
]


def test_crop_arguments_and_shapes():
    net = sym.Crop(sym.Variable("data"), sym.Variable("like"), center_crop=True, name="crop")
    assert net.list_arguments() == ["data", "like"]
    assert net.infer_shape(data=(2, 3, 9, 9), like=(2, 8, 4, 5))[1] == [(2, 3, 4, 5)]
    one = sym.Crop(sym.Variable("data"), h_w=(3, 3))
    assert one.infer_shape(data=(1, 2, 5, 5))[1] == [(1, 2, 3, 3)]


@pytest.mark.parametrize("shapes,params,message", [
    ([(1, 2, 4, 4)], {"h_w": (5, 2)}, r"crop size \(5, 2\) is larger.*\(4, 4\)"),
    ([(1, 2, 4, 4)], {"h_w": (2, 2), "offset": (3, 0)}, r"offset=\(3, 0\).*at most \(2, 2\)"),
    ([(1, 2, 4, 4)], {"h_w": (0, 2)}, r"h_w=\(0, 2\) must be \(h, w\) with h, w >= 1"),
    ([(2, 4, 4)], {"h_w": (2, 2)}, r"data.*\(2, 4, 4\).*4-D"),
    ([(1, 2, 4, 4), (1, 1, 6, 2)], {}, r"crop size \(6, 2\) is larger"),
    ([(1, 2, 4, 4), (1, 1, 2, 2)], {"num_args": 1}, r"num_args=1 but 2 inputs"),
])
def test_crop_errors_name_the_op_and_values(shapes, params, message):
    with pytest.raises(ShapeError, match=r"(?s)Crop.*" + message):
        nd.Crop(*[nd.ones(s) for s in shapes], **params)


def test_crop_executor_gives_no_gradient_to_crop_like(ctx):
    v = np.arange(2 * 5 * 6, dtype=np.float64).reshape(1, 2, 5, 6)
    net = sym.Crop(sym.Variable("data"), sym.Variable("like"), offset=(1, 2))
    exe = net.bind(ctx, {"data": nd.array(v, ctx=ctx, dtype="float64"),
                         "like": nd.ones((1, 1, 3, 3), ctx=ctx, dtype="float64")},
                   args_grad={"data": nd.zeros(v.shape, ctx=ctx, dtype="float64"),
                              "like": nd.full((1, 1, 3, 3), 7.0, ctx=ctx, dtype="float64")})
    assert_almost_equal(exe.forward(is_train=True)[0], v[:, :, 1:4, 2:5])
    ograd = np.random.default_rng(0).normal(size=(1, 2, 3, 3))
    exe.backward(nd.array(ograd, ctx=ctx, dtype="float64"))
    expected = np.zeros_like(v)
    expected[:, :, 1:4, 2:5] = ograd
    assert_almost_equal(exe.grad_dict["data"], expected)
    assert_almost_equal(exe.grad_dict["like"], np.zeros((1, 1, 3, 3)))


# -- the cases above, run ------------------------------------------------------------------

@pytest.mark.parametrize("case,dtype", forward_params(CASES))
def test_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)


@pytest.mark.parametrize("case", gradient_params(CASES))
def test_gradient(case, ctx):
    run_gradient(case, ctx)
