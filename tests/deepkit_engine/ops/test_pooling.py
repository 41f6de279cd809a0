"""Pooling and UpSampling: forward vs. plain-loop references, gradients, shapes, errors."""
import itertools
import math

import numpy as np
import pytest

from deepkit_engine import autograd
from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import DeepkitError, DTypeError, ParamError, ShapeError
from deepkit_engine.ops.registry import get_op
from deepkit_engine.testing import assert_almost_equal

from .op_cases import OpCase, forward_params, gradient_params, run_forward, run_gradient

# -- plain-loop references ----------------------------------------------------------


def _geometry(shape, kernel=(), stride=(), pad=(), global_pool=False,
              pooling_convention="valid"):
    """Caffe's rules, written out: per-axis kernel, stride, pad and output size."""
    spatial = shape[2:]
    nsp = len(spatial)
    if global_pool:
        return tuple(spatial), (1,) * nsp, (0,) * nsp, (1,) * nsp
    stride = stride or (1,) * nsp
    pad = pad or (0,) * nsp
    out = []
    for n, k, s, p in zip(spatial, kernel, stride, pad):
        if pooling_convention == "valid":
            m = int(math.floor((n + 2 * p - k) / s)) + 1
        elif pooling_convention == "same":
            m = int(math.ceil(n / s))  # MXNet: ceil(n / stride), last windows clipped
        else:
            m = int(math.ceil((n + 2 * p - k) / s)) + 1
            if (m - 1) * s >= n + p:
                m -= 1
        out.append(m)
    return tuple(kernel), tuple(stride), tuple(pad), tuple(out)


def _windows(shape, **params):
    """Yield (output index, region slices, caffe pool_size, valid count) per window."""
    kernel, stride, pad, out = _geometry(shape, **{k: v for k, v in params.items() if k in (
        "kernel", "stride", "pad", "global_pool", "pooling_convention")})
    spatial = shape[2:]
    for o in itertools.product(*[range(m) for m in out]):
        region, size, count = [], 1, 1
        for i, n, k, s, p in zip(o, spatial, kernel, stride, pad):
            start = i * s - p
            end = min(start + k, n + p)
            size *= end - start
            lo, hi = max(start, 0), min(end, n)
            count *= max(hi - lo, 0)
            region.append(slice(lo, max(hi, lo)))
        yield o, tuple(region), size, count


def _pool_ref(x, pool_type="max", p_value=None, count_include_pad=True, **params):
    _, _, _, out = _geometry(x.shape, **{k: v for k, v in params.items() if k in (
        "kernel", "stride", "pad", "global_pool", "pooling_convention")})
    y = np.zeros(x.shape[:2] + out)
    p = 2 if p_value is None else p_value
    for n, c in np.ndindex(*x.shape[:2]):
        for o, region, size, count in _windows(x.shape, **params):
            vals = x[(n, c) + region].ravel()
            if pool_type == "max":
                y[(n, c) + o] = vals.max() if vals.size else np.finfo(x.dtype).min
            elif pool_type == "sum":
                y[(n, c) + o] = vals.sum()
            elif pool_type == "avg":
                div = size if count_include_pad else count
                y[(n, c) + o] = vals.sum() / div if div else 0.0
            else:
                y[(n, c) + o] = (np.abs(vals) ** p).sum() ** (1.0 / p)
    return y


def _pool_backward_ref(og, x, y=None, pool_type="max", p_value=None, count_include_pad=True,
                       **params):
    g = np.zeros(x.shape)
    p = 2 if p_value is None else p_value
    for n, c in np.ndindex(*x.shape[:2]):
        for o, region, size, count in _windows(x.shape, **params):
            block = x[(n, c) + region]
            go = og[(n, c) + o]
            view = g[(n, c) + region]
            if pool_type == "max":
                if block.size:
                    first = np.unravel_index(np.argmax(block), block.shape)  # first maximum
                    view[first] += go
            elif pool_type == "sum":
                view += go
            elif pool_type == "avg":
                div = size if count_include_pad else count
                view += go / div if div else 0.0
            else:
                norm = (np.abs(block) ** p).sum() ** (1.0 / p)
                view += go * np.sign(block) * np.abs(block) ** (p - 1) / norm ** (p - 1)
    return g


def _distinct(shape, low=-1.0, high=1.0):
    """Inputs without ties: a scaled random permutation (for max-pooling gradients)."""
    def make(rng, dtype):
        n = int(np.prod(shape))
        v = low + (high - low) * (rng.permutation(n) + 0.5) / n
        return v.reshape(shape).astype(dtype)
    return make


def _away_from_zero(shape, low=0.3, high=1.3):
    def make(rng, dtype):
        v = rng.uniform(low, high, size=shape) * rng.choice([-1.0, 1.0], size=shape)
        return v.astype(dtype)
    return make


def _bilinear_geometry(scale):
    return 2 * scale - scale % 2, scale, int(math.ceil((scale - 1) / 2.0))


def _bilinear_ref(x, w, scale):
    k, s, p = _bilinear_geometry(scale)
    n, c, h, wd = x.shape
    y = np.zeros((n, c, h * scale, wd * scale))
    for i, j, ki, kj in itertools.product(range(h), range(wd), range(k), range(k)):
        oy, ox = i * s + ki - p, j * s + kj - p
        if 0 <= oy < h * scale and 0 <= ox < wd * scale:
            y[:, :, oy, ox] += x[:, :, i, j] * w[:, 0, ki, kj]
    return y


def _bilinear_backward_ref(g, x, w, scale):
    k, s, p = _bilinear_geometry(scale)
    n, c, h, wd = x.shape
    gx, gw = np.zeros(x.shape), np.zeros(w.shape)
    for i, j, ki, kj in itertools.product(range(h), range(wd), range(k), range(k)):
        oy, ox = i * s + ki - p, j * s + kj - p
        if 0 <= oy < h * scale and 0 <= ox < wd * scale:
            gx[:, :, i, j] += g[:, :, oy, ox] * w[:, 0, ki, kj]
            gw[:, 0, ki, kj] += (g[:, :, oy, ox] * x[:, :, i, j]).sum(axis=0)
    return gx, gw


def _nearest(x, s):
    y = np.zeros(x.shape[:2] + (x.shape[2] * s, x.shape[3] * s))
    for i, j in np.ndindex(*y.shape[2:]):
        y[:, :, i, j] = x[:, :, i // s, j // s]
    return y


def _up_ref(*inputs, scale, sample_type, multi_input_mode="concat", num_filter=0, num_args=1):
    if sample_type == "bilinear":
        return _bilinear_ref(inputs[0], inputs[1], scale)
    oh = inputs[0].shape[2] * scale
    parts = [_nearest(x, oh // x.shape[2]) for x in inputs]
    return sum(parts) if multi_input_mode == "sum" else np.concatenate(parts, axis=1)


def _up_backward_ref(g, *inputs, scale, sample_type, multi_input_mode="concat", num_filter=0,
                     num_args=1):
    if sample_type == "bilinear":
        return _bilinear_backward_ref(g, inputs[0], inputs[1], scale)
    grads, c0 = [], 0
    for x in inputs:
        s = g.shape[2] // x.shape[2]
        src = g if multi_input_mode == "sum" else g[:, c0:c0 + x.shape[1]]
        c0 += x.shape[1]
        gx = np.zeros(x.shape)
        for i, j in np.ndindex(*src.shape[2:]):
            gx[:, :, i // s, j // s] += src[:, :, i, j]
        grads.append(gx)
    return grads


def _bwd_pool_case(pool_type, dshape, name="", grad=False, **params):
    """A `_backward_Pooling` case: inputs (ograd, data[, output]) built consistently."""
    _, _, _, out = _geometry(dshape, **{k: v for k, v in params.items() if k in (
        "kernel", "stride", "pad", "global_pool", "pooling_convention")})
    oshape = dshape[:2] + out
    full = dict(params, pool_type=pool_type)
    if pool_type in ("max", "lp"):
        state = {}

        def data(rng, dtype):
            state["x"] = _distinct(dshape)(rng, "float64")
            return state["x"].astype(dtype)

        def output(rng, dtype):
            return _pool_ref(state["x"], **full).astype(dtype)
        inputs = [oshape, data, output]
    else:
        inputs = [oshape, dshape]
    return OpCase("_backward_Pooling", inputs, _pool_backward_ref, full, grad=grad, name=name)


# -- cases -------------------------------------------------------------------------

K22 = {"kernel": (2, 2), "stride": (2, 2)}

CASES = [
    # max: valid / full, padding, strides, non-square, 1-D, 3-D, global
    OpCase("Pooling", [_distinct((2, 3, 4, 4))], _pool_ref, K22, grad=False),
    OpCase("Pooling", [_distinct((1, 1, 4, 4))], _pool_ref, K22, name="grad"),
    OpCase("Pooling", [_distinct((2, 2, 5, 6))], _pool_ref,
           {"kernel": (3, 2), "stride": (2, 1), "pad": (1, 1), "pooling_convention": "full"},
           grad=False),
    OpCase("Pooling", [_distinct((1, 1, 5, 4))], _pool_ref,
           {"kernel": (3, 2), "stride": (2, 1), "pad": (1, 1), "pooling_convention": "full"},
           name="grad"),
    OpCase("Pooling", [_distinct((1, 2, 3, 3))], _pool_ref,
           {"kernel": (2, 2), "stride": (2, 2), "pad": (1, 1), "pooling_convention": "full"}),
    OpCase("Pooling", [_distinct((2, 3, 7))], _pool_ref, {"kernel": (3,), "stride": (2,)}),
    OpCase("Pooling", [_distinct((1, 2, 10))], _pool_ref,
           {"kernel": (3,), "stride": (3,), "pooling_convention": "full"}),
    OpCase("Pooling", [_distinct((1, 1, 3, 4, 3))], _pool_ref,
           {"kernel": (2, 2, 2), "stride": (2, 1, 2), "pooling_convention": "full"}),
    OpCase("Pooling", [_distinct((2, 3, 4, 5))], _pool_ref, {"global_pool": True}),
    OpCase("Pooling", [_distinct((1, 2, 3, 3, 2))], _pool_ref,
           {"global_pool": True, "kernel": (1, 1, 1)}),
    OpCase("Pooling", [_distinct((2, 2, 5, 5))], _pool_ref,
           {"kernel": (3, 3), "stride": (1, 1), "pad": (1, 1)}, grad=False),
    OpCase("Pooling", [(1, 2, 2, 2)], _pool_ref,
           {"kernel": (2, 2), "pad": (2, 2), "pool_type": "avg"}, name="all-pad-windows"),
    OpCase("Pooling", [(1, 2, 2, 2)], _pool_ref,
           {"kernel": (2, 2), "pad": (2, 2), "pool_type": "avg", "count_include_pad": False},
           name="all-pad-windows"),
    OpCase("Pooling", [(0, 3, 4, 4)], _pool_ref, K22, grad=False),
    OpCase("Pooling", [_distinct((1, 2, 5, 5))], _pool_ref,
           {"kernel": (2, 2), "stride": (2, 2), "pooling_convention": "same"}, name="same"),
    OpCase("Pooling", [_distinct((1, 1, 5, 4))], _pool_ref,
           {"kernel": (3, 3), "stride": (1, 2), "pooling_convention": "same",
            "pool_type": "sum"}, name="same"),
    OpCase("Pooling", [_distinct((1, 1, 1, 1))], _pool_ref, {"kernel": (1, 1)}),
    # avg, both count_include_pad settings
    OpCase("Pooling", [(2, 3, 5, 5)], _pool_ref,
           {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1), "pool_type": "avg",
            "pooling_convention": "full"}, grad=False),
    OpCase("Pooling", [(1, 1, 5, 4)], _pool_ref,
           {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1), "pool_type": "avg",
            "pooling_convention": "full"}, name="grad"),
    OpCase("Pooling", [(2, 3, 5, 5)], _pool_ref,
           {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1), "pool_type": "avg",
            "pooling_convention": "full", "count_include_pad": False}, grad=False),
    OpCase("Pooling", [(1, 1, 5, 4)], _pool_ref,
           {"kernel": (3, 2), "stride": (2, 2), "pad": (1, 1), "pool_type": "avg",
            "count_include_pad": False}, name="grad"),
    OpCase("Pooling", [(1, 2, 3, 3)], _pool_ref,
           {"kernel": (2, 2), "stride": (2, 2), "pool_type": "avg",
            "pooling_convention": "full"}, name="ceil-overhang"),
    OpCase("Pooling", [(2, 3, 6, 6)], _pool_ref, {"kernel": (2, 2), "stride": (2, 2),
                                                   "pool_type": "avg"}, grad=False),
    OpCase("Pooling", [(2, 3, 8)], _pool_ref, {"kernel": (3,), "stride": (2,), "pad": (1,),
                                               "pool_type": "avg"}),
    OpCase("Pooling", [(1, 2, 3, 3, 3)], _pool_ref,
           {"kernel": (2, 2, 2), "stride": (1, 2, 2), "pad": (1, 0, 1), "pool_type": "avg",
            "count_include_pad": False}, grad=False),
    OpCase("Pooling", [(2, 3, 4, 5)], _pool_ref, {"global_pool": True, "pool_type": "avg"}),
    # sum
    OpCase("Pooling", [(2, 2, 5, 5)], _pool_ref,
           {"kernel": (2, 3), "stride": (1, 2), "pad": (1, 1), "pool_type": "sum"},
           grad=False),
    OpCase("Pooling", [(1, 1, 4, 4)], _pool_ref,
           {"kernel": (2, 3), "stride": (1, 2), "pad": (1, 1), "pool_type": "sum"},
           name="grad"),
    OpCase("Pooling", [(2, 3, 4, 5)], _pool_ref, {"global_pool": True, "pool_type": "sum"}),
    # lp
    OpCase("Pooling", [_away_from_zero((1, 2, 4, 4))], _pool_ref,
           {"kernel": (2, 2), "stride": (2, 2), "pool_type": "lp"}),
    OpCase("Pooling", [_away_from_zero((1, 1, 5, 5))], _pool_ref,
           {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1), "pool_type": "lp",
            "p_value": 1}),
    OpCase("Pooling", [_away_from_zero((1, 1, 4, 5))], _pool_ref,
           {"kernel": (2, 3), "stride": (1, 2), "pool_type": "lp", "p_value": 3,
            "pooling_convention": "full"}),
    OpCase("Pooling", [_away_from_zero((2, 3, 3, 4))], _pool_ref,
           {"global_pool": True, "pool_type": "lp", "p_value": 2}),
    # the backward op on its own (its gradient covers second-order avg/sum pooling)
    _bwd_pool_case("max", (2, 2, 5, 5), kernel=(3, 3), stride=(2, 2), pad=(1, 1),
                   pooling_convention="full"),
    _bwd_pool_case("max", (2, 3, 4, 5), global_pool=True),
    _bwd_pool_case("avg", (2, 2, 5, 5), kernel=(3, 3), stride=(2, 2), pad=(1, 1),
                   pooling_convention="full", count_include_pad=False),
    _bwd_pool_case("avg", (1, 1, 4, 4), kernel=(3, 3), stride=(2, 2), pad=(1, 1),
                   pooling_convention="full", grad=True, name="grad"),
    _bwd_pool_case("sum", (1, 1, 5), kernel=(2,), stride=(1,), grad=True, name="grad"),
    _bwd_pool_case("lp", (1, 2, 4, 4), kernel=(2, 2), stride=(2, 2), p_value=3),
    # UpSampling
    OpCase("UpSampling", [(2, 3, 3, 2)], _up_ref, {"scale": 2, "sample_type": "nearest"},
           grad=False),
    OpCase("UpSampling", [(1, 2, 2, 2)], _up_ref, {"scale": 3, "sample_type": "nearest"},
           name="grad"),
    OpCase("UpSampling", [(1, 1, 2, 2), (1, 2, 1, 1)], _up_ref,
           {"scale": 2, "sample_type": "nearest", "num_args": 2}),
    OpCase("UpSampling", [(1, 2, 2, 2), (1, 2, 4, 4)], _up_ref,
           {"scale": 2, "sample_type": "nearest", "num_args": 2, "multi_input_mode": "sum"}),
    OpCase("UpSampling", [(0, 2, 2, 2)], _up_ref, {"scale": 2, "sample_type": "nearest"},
           grad=False),
    OpCase("UpSampling", [(2, 3, 3, 4), (3, 1, 4, 4)], _up_ref,
           {"scale": 2, "sample_type": "bilinear", "num_filter": 3}, grad=False),
    OpCase("UpSampling", [(1, 2, 2, 2), (2, 1, 4, 4)], _up_ref,
           {"scale": 2, "sample_type": "bilinear", "num_filter": 2}, name="grad"),
    OpCase("UpSampling", [(2, 2, 3, 2), (2, 1, 5, 5)], _up_ref,
           {"scale": 3, "sample_type": "bilinear", "num_filter": 2}, grad=False),
    OpCase("UpSampling", [(1, 1, 2, 3), (1, 1, 5, 5)], _up_ref,
           {"scale": 3, "sample_type": "bilinear"}, name="grad"),
    OpCase("UpSampling", [(1, 2, 2, 3), (2, 1, 1, 1)], _up_ref,
           {"scale": 1, "sample_type": "bilinear", "num_filter": 2}),
    OpCase("_backward_UpSampling", [(1, 3, 4, 4), (1, 1, 2, 2), (1, 2, 1, 1)], _up_backward_ref,
           {"scale": 2, "sample_type": "nearest", "num_args": 2}),
    OpCase("_backward_UpSampling", [(1, 2, 4, 4), (1, 2, 2, 2), (1, 2, 4, 4)],
           _up_backward_ref, {"scale": 2, "sample_type": "nearest", "num_args": 2,
                              "multi_input_mode": "sum"}, grad=False),
    OpCase("_backward_UpSampling", [(2, 3, 6, 6), (2, 3, 3, 3), (3, 1, 4, 4)], _up_backward_ref,
           {"scale": 2, "sample_type": "bilinear"}, grad=False),
    OpCase("_backward_UpSampling", [(1, 1, 4, 4), (1, 1, 2, 2), (1, 1, 4, 4)], _up_backward_ref,
           {"scale": 2, "sample_type": "bilinear"}, name="grad"),
]


@pytest.mark.parametrize("case,dtype", forward_params(CASES))
def test_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)


@pytest.mark.parametrize("case", gradient_params(CASES))
def test_gradient(case, ctx):
    run_gradient(case, ctx)


def test_aliases_resolve_to_pooling():
    assert get_op("Pooling_v1") is get_op("Pooling")
    assert get_op("_npx_pooling") is get_op("Pooling")


# -- shape rules ---------------------------------------------------------------------

@pytest.mark.parametrize("shape,params,expected", [
    ((1, 1, 5, 5), {"kernel": (3, 3), "stride": (2, 2)}, (1, 1, 2, 2)),
    ((1, 1, 5, 5), {"kernel": (2, 2), "stride": (2, 2)}, (1, 1, 2, 2)),
    ((1, 1, 5, 5), {"kernel": (2, 2), "stride": (2, 2), "pooling_convention": "full"},
     (1, 1, 3, 3)),
    # Caffe's rule: a last window starting in the right padding is dropped (naive ceil: 3)
    ((1, 1, 3, 3), {"kernel": (2, 2), "stride": (2, 2), "pad": (1, 1),
                    "pooling_convention": "full"}, (1, 1, 2, 2)),
    ((1, 1, 3, 3), {"kernel": (2, 2), "stride": (2, 2), "pad": (1, 1)}, (1, 1, 2, 2)),
    ((1, 1, 112, 112), {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1),
                        "pooling_convention": "full"}, (1, 1, 57, 57)),
    ((1, 1, 112, 112), {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1)}, (1, 1, 56, 56)),
    ((1, 1, 112, 112), {"kernel": (3, 3), "stride": (2, 2), "pooling_convention": "full"},
     (1, 1, 56, 56)),
    ((1, 1, 112, 112), {"kernel": (3, 3), "stride": (2, 2)}, (1, 1, 55, 55)),
    ((2, 3, 7, 5), {"global_pool": True}, (2, 3, 1, 1)),
    ((2, 3, 7, 5), {"global_pool": True, "kernel": (2, 2), "stride": (2, 2), "pad": (1, 1)},
     (2, 3, 1, 1)),
    ((2, 3, 10), {"kernel": (3,), "stride": (3,)}, (2, 3, 3)),
    ((2, 3, 10), {"kernel": (3,), "stride": (3,), "pooling_convention": "full"}, (2, 3, 4)),
    ((1, 2, 5, 5, 5), {"kernel": (2, 2, 2), "stride": (2, 2, 2)}, (1, 2, 2, 2, 2)),
    ((1, 2, 5, 5, 5), {"kernel": (2, 2, 2), "stride": (2, 2, 2), "pooling_convention": "full"},
     (1, 2, 3, 3, 3)),
    ((1, 2, 6, 7, 8), {"global_pool": True, "pool_type": "avg"}, (1, 2, 1, 1, 1)),
    ((4, 8, 24, 20), {"kernel": (3, 2), "stride": (2, 3), "pad": (1, 0)}, (4, 8, 12, 7)),
    ((4, 8, 5, 5), {"kernel": (5, 5)}, (4, 8, 1, 1)),
])
def test_output_shape(shape, params, expected):
    net = sym.Pooling(sym.Variable("data"), **params)
    _, outs, _ = net.infer_shape(data=shape)
    assert outs == [expected]


def test_partial_shape_inference_keeps_unknown_data():
    net = sym.Pooling(sym.Variable("data"), kernel=(2, 2))
    assert net.infer_shape_partial()[1] == [()]


def test_upsampling_shapes_and_weight_inference():
    up = sym.UpSampling(sym.Variable("data"), scale=2, sample_type="bilinear", num_filter=3,
                        name="up")
    assert up.list_arguments() == ["data", "up_weight"]
    args, outs, _ = up.infer_shape(data=(2, 3, 5, 4))
    assert args == [(2, 3, 5, 4), (3, 1, 4, 4)] and outs == [(2, 3, 10, 8)]
    for scale, k in ((1, 1), (2, 4), (3, 5), (4, 8)):
        up = sym.UpSampling(sym.Variable("d"), scale=scale, sample_type="bilinear", name="u")
        args, outs, _ = up.infer_shape(d=(1, 2, 3, 3))
        assert args[1] == (2, 1, k, k) and outs == [(1, 2, 3 * scale, 3 * scale)]
    near = sym.UpSampling(sym.Variable("a"), sym.Variable("b"), scale=2, num_args=2,
                          sample_type="nearest")
    assert near.list_arguments() == ["a", "b"]
    assert near.infer_shape(a=(2, 3, 4, 4), b=(2, 5, 2, 2))[1] == [(2, 8, 8, 8)]


# -- kernels beyond the case table -----------------------------------------------------

def test_max_pool_ignores_padding_with_negative_inputs():
    x = -np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    y = nd.Pooling(nd.array(x), kernel=(2, 2), stride=(2, 2), pad=(1, 1),
                   pooling_convention="full").asnumpy()
    assert_almost_equal(y, np.array([[[[-1.0, -2.0], [-4.0, -5.0]]]]))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_max_over_a_window_of_padding_only_is_the_lowest_value(dtype):
    # pad >= kernel (allowed, as in MXNet): windows that hold no input give the dtype's
    # lowest finite value (MXNet's and Caffe's -FLT_MAX) and pass no gradient back
    x = nd.array(np.arange(4.0).reshape(1, 1, 2, 2), dtype=dtype)
    y = nd.Pooling(x, kernel=(2, 2), pad=(2, 2)).asnumpy()
    assert y.shape == (1, 1, 5, 5)
    assert y[0, 0, 0, 0] == np.finfo(dtype).min and y[0, 0, 2, 2] == 3.0
    net = sym.Pooling(sym.Variable("data"), kernel=(2, 2), pad=(2, 2))
    exe = net.bind(None, {"data": x}, args_grad={"data": nd.zeros((1, 1, 2, 2), dtype=dtype)})
    exe.forward(is_train=True)
    exe.backward(nd.ones((1, 1, 5, 5), dtype=dtype))
    assert_almost_equal(exe.grad_dict["data"], np.array([[[[1.0, 2.0], [2.0, 4.0]]]]))


def test_avg_divisor_follows_caffe():
    # H=3, k2, s2, p0 under ceil: the last window holds one row and is divided by 1 per axis
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    y = nd.Pooling(nd.array(x), kernel=(2, 2), stride=(2, 2), pool_type="avg",
                   pooling_convention="full").asnumpy()
    assert_almost_equal(y, np.array([[[[2.0, 3.5], [6.5, 8.0]]]]))
    # with padding the padded cells count (window clipped at H + p) ...
    y = nd.Pooling(nd.array(x), kernel=(2, 2), stride=(2, 2), pad=(1, 1), pool_type="avg",
                   pooling_convention="full").asnumpy()
    assert_almost_equal(y, np.array([[[[0.0, 3.0 / 4], [9.0 / 4, 24.0 / 4]]]]))
    # ... unless count_include_pad=False, which divides by the valid count
    y = nd.Pooling(nd.array(x), kernel=(2, 2), stride=(2, 2), pad=(1, 1), pool_type="avg",
                   pooling_convention="full", count_include_pad=False).asnumpy()
    assert_almost_equal(y, np.array([[[[0.0, 1.5], [4.5, 6.0]]]]))


def test_max_backward_routes_ties_to_the_first_maximum(ctx):
    # relu-like data full of ties; overlapping windows (k3, s1) and padding
    x = np.array([[[[0.0, 0.0, 1.0, 1.0],
                    [0.0, 2.0, 2.0, 0.0],
                    [0.0, 0.0, 0.0, 0.0]]]])
    params = {"kernel": (3, 3), "stride": (1, 2), "pad": (1, 1), "pooling_convention": "full"}
    net = sym.Pooling(sym.Variable("data"), **params)
    exe = net.bind(ctx, {"data": nd.array(x, ctx=ctx)},
                   args_grad={"data": nd.zeros(x.shape, ctx=ctx)})
    y = exe.forward(is_train=True)[0].asnumpy()
    og = np.arange(1.0, y.size + 1).reshape(y.shape)
    exe.backward(nd.array(og, ctx=ctx))
    assert_almost_equal(y, _pool_ref(x, **params))
    assert_almost_equal(exe.grad_dict["data"], _pool_backward_ref(og, x, y, **params))


@pytest.mark.parametrize("params", [
    {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1)},
    {"kernel": (2, 2), "stride": (2, 2)},
    {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1), "pool_type": "avg"},
], ids=str)
def test_blocks_on_the_kernel_pool_match_the_reference(monkeypatch, params):
    """Blocks of planes run on the kernel pool's threads; ties go to the first maximum."""
    from deepkit_engine import threads  # noqa: PLC0415
    from deepkit_engine.ops import pooling  # noqa: PLC0415
    monkeypatch.setattr(threads, "pool_size", lambda: 3)
    monkeypatch.setattr(pooling, "_PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(pooling, "_BLOCK_BYTES", 256)
    rng = np.random.default_rng(5)
    x = np.maximum(np.round(rng.normal(size=(3, 5, 9, 8)), 1), 0)  # relu-like: many ties
    params = dict(params)
    params.setdefault("pool_type", "max")
    xs = nd.array(x, dtype="float64")
    xs.attach_grad()
    with autograd.record():
        y = nd.Pooling(xs, **params)
    og = rng.uniform(-1, 1, size=y.shape)
    y.backward(nd.array(og, dtype="float64"))
    assert_almost_equal(y, _pool_ref(x, **params))
    assert_almost_equal(xs.grad, _pool_backward_ref(og, x, y.asnumpy(), **params))


def test_executor_backward_for_every_pool_type_and_grad_req_add(ctx):
    rng = np.random.default_rng(3)
    x = _distinct((2, 3, 6, 5))(rng, "float32")
    for pool_type in ("max", "avg", "sum", "lp"):
        params = {"kernel": (3, 2), "stride": (2, 2), "pad": (1, 0), "pool_type": pool_type,
                  "pooling_convention": "full"}
        net = sym.Pooling(sym.Variable("data"), **params)
        grad = nd.ones(x.shape, ctx=ctx)
        exe = net.bind(ctx, {"data": nd.array(x, ctx=ctx)}, args_grad={"data": grad},
                       grad_req="add")
        y = exe.forward(is_train=True)[0].asnumpy()
        og = rng.uniform(-1, 1, size=y.shape)
        exe.backward(nd.array(og, ctx=ctx))
        x64 = x.astype(np.float64)
        expected = 1.0 + _pool_backward_ref(og, x64, _pool_ref(x64, **params), **params)
        assert_almost_equal(grad, expected, rtol=1e-4, atol=1e-5)


def test_bilinear_upsampling_interpolates_with_a_bilinear_kernel():
    scale = 2
    k, _, _ = _bilinear_geometry(scale)
    f = math.ceil(k / 2.0)
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    taps = np.array([1 - abs(i / f - c) for i in range(k)])
    weight = np.tile(np.outer(taps, taps), (2, 1, 1, 1))  # MXNet's Bilinear initializer
    ramp = np.tile(np.arange(6.0), (2, 6, 1))[None]  # (1, 2, 6, 6), linear along x
    y = nd.UpSampling(nd.array(ramp), nd.array(weight), scale=scale, sample_type="bilinear",
                      num_filter=2).asnumpy()
    # interior: bilinear interpolation of a ramp at half-pixel-shifted positions
    expected = (np.arange(12) + 0.5) / 2 - 0.5
    assert_almost_equal(y[0, 1, 5, 1:-1], expected[1:-1])
    assert_almost_equal(y[0, 0, 1:-1, 4], np.full(10, 1.75))


# -- second order ------------------------------------------------------------------------

def test_second_order_sum_and_avg_pooling():
    v = np.random.default_rng(0).uniform(-1, 1, size=(1, 2, 5, 5))
    for pool_type in ("sum", "avg"):
        params = {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1), "pool_type": pool_type}
        x = nd.array(v, dtype="float64")
        x.attach_grad()
        with autograd.record():
            y = nd.Pooling(x * x, **params)
            g = autograd.grad(y, x, create_graph=True)
        g.backward()
        # d/dx sum_o pool(x^2) = 2 x * B(1) where B is the pooling backward of ones
        ones_back = _pool_backward_ref(np.ones(y.shape), v, None, **params)
        assert_almost_equal(g, 2 * v * ones_back)
        assert_almost_equal(x.grad, 2 * ones_back)


def test_second_order_max_pooling_is_refused():
    x = nd.array(np.arange(16.0).reshape(1, 1, 4, 4), dtype="float64")
    x.attach_grad()
    with pytest.raises(DeepkitError, match="second-order.*'max'"):
        with autograd.record():
            y = nd.Pooling(x * x, kernel=(2, 2))
            g = autograd.grad(y, x, create_graph=True)
        g.backward()


def test_second_order_nearest_upsampling():
    v = np.random.default_rng(1).uniform(-1, 1, size=(1, 2, 2, 3))
    x = nd.array(v, dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = nd.UpSampling(x * x, scale=2, sample_type="nearest")
        g = autograd.grad(y, x, create_graph=True)
    g.backward()
    assert_almost_equal(g, 2 * v * 4)
    assert_almost_equal(x.grad, np.full(v.shape, 8.0))


def test_second_order_bilinear_upsampling():
    rng = np.random.default_rng(2)
    v, wv = rng.uniform(-1, 1, size=(1, 2, 2, 3)), rng.uniform(-1, 1, size=(2, 1, 4, 4))
    x, w = nd.array(v, dtype="float64"), nd.array(wv, dtype="float64")
    x.attach_grad()
    w.attach_grad()
    with autograd.record():
        y = nd.UpSampling(x * x, w, scale=2, sample_type="bilinear", num_filter=2)
        g = autograd.grad(y, x, create_graph=True)
    g.backward()
    ones = np.ones((1, 2, 4, 6))
    cx, _ = _bilinear_backward_ref(ones, v, wv, 2)
    assert_almost_equal(g, 2 * v * cx)  # dL/dx = 2x * C(1, w)
    assert_almost_equal(x.grad, 2 * cx)  # d/dx sum(2x * C(1, w))
    # d/dw sum(2x * C(1, w)) = W(1, 2x): the weight gradient of the forward at data 2x
    _, ww = _bilinear_backward_ref(ones, 2 * v, wv, 2)
    assert_almost_equal(w.grad, ww)


# -- errors ------------------------------------------------------------------------------

def test_kernel_larger_than_padded_input():
    with pytest.raises(ShapeError, match=r"(?s)Pooling.*kernel=\(5, 5\).*larger than the padded "
                                         r"input \(4, 5\).*inputs: data=\(1, 1, 2, 3\)"):
        nd.Pooling(nd.ones((1, 1, 2, 3)), kernel=(5, 5), pad=(1, 1))
    net = sym.Pooling(sym.Variable("data"), kernel=(4,), name="pool1")
    with pytest.raises(ShapeError, match=r"Pooling 'pool1'.*kernel=\(4,\)"):
        net.infer_shape(data=(1, 2, 3))


def test_bad_params():
    with pytest.raises(ParamError, match="pool_type='maxx' must be one of.*did you mean 'max'"):
        sym.Pooling(sym.Variable("x"), kernel=(2, 2), pool_type="maxx")
    with pytest.raises(ParamError, match="pooling_convention='ceil' must be one of"):
        sym.Pooling(sym.Variable("x"), kernel=(2, 2), pooling_convention="ceil")
    with pytest.raises(ParamError, match=r"stride=\(0, 1\) must be >= 1"):
        sym.Pooling(sym.Variable("x"), kernel=(2, 2), stride=(0, 1))
    with pytest.raises(ParamError, match="Pooling.*kernel is required unless global_pool"):
        nd.Pooling(nd.ones((1, 1, 4, 4)))
    with pytest.raises(ParamError, match="sample_type='cubic' must be one of"):
        sym.UpSampling(sym.Variable("x"), scale=2, sample_type="cubic")


def test_bad_data_and_param_shapes():
    with pytest.raises(ShapeError, match=r"Pooling.*data.*\(4, 4\).*3-D \(NCW\)"):
        nd.Pooling(nd.ones((4, 4)), kernel=(2,))
    with pytest.raises(ShapeError, match=r"Pooling.*kernel=\(2, 2\) has 2 entries.*1 spatial"):
        nd.Pooling(nd.ones((1, 2, 4)), kernel=(2, 2))
    with pytest.raises(ShapeError, match=r"Pooling.*pad=\(1,\) has 1 entries.*2 spatial"):
        nd.Pooling(nd.ones((1, 2, 4, 4)), kernel=(2, 2), pad=(1,))
    with pytest.raises(ShapeError, match=r"Pooling.*layout='NCW' does not fit 4-D"):
        nd.Pooling(nd.ones((1, 2, 4, 4)), kernel=(2, 2), layout="NCW")
    with pytest.raises(DTypeError, match="Pooling.*int32.*float dtype"):
        nd.Pooling(nd.ones((1, 2, 4, 4), dtype="int32"), kernel=(2, 2))


def test_upsampling_errors():
    with pytest.raises(ShapeError, match=r"UpSampling.*weight.*\(3, 1, 3, 3\).*\(3, 1, 4, 4\)"):
        nd.UpSampling(nd.ones((1, 3, 2, 2)), nd.ones((3, 1, 3, 3)), scale=2,
                      sample_type="bilinear", num_filter=3)
    with pytest.raises(ShapeError, match=r"UpSampling.*num_filter=4.*channels.*\(1, 3, 2, 2\)"):
        nd.UpSampling(nd.ones((1, 3, 2, 2)), nd.ones((3, 1, 4, 4)), scale=2,
                      sample_type="bilinear", num_filter=4)
    with pytest.raises(ShapeError, match=r"UpSampling.*arg1.*\(3, 3\).*does not divide.*\(4, 4\)"):
        nd.UpSampling(nd.ones((1, 1, 2, 2)), nd.ones((1, 1, 3, 3)), scale=2, num_args=2,
                      sample_type="nearest")
    with pytest.raises(ShapeError, match=r"UpSampling.*arg1.*3 channels.*arg0 has 1.*sum"):
        nd.UpSampling(nd.ones((1, 1, 2, 2)), nd.ones((1, 3, 2, 2)), scale=2, num_args=2,
                      sample_type="nearest", multi_input_mode="sum")
    with pytest.raises(ShapeError, match=r"UpSampling.*arg0.*\(2, 2, 2\).*4-D"):
        nd.UpSampling(nd.ones((2, 2, 2)), scale=2, sample_type="nearest")
