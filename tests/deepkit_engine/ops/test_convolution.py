"""Convolution and Deconvolution: forward against loop references, gradients, shapes, errors."""
import numpy as np
import pytest

from deepkit_engine import autograd, threads
from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import ParamError, ShapeError
from deepkit_engine.ops import convolution  # noqa: F401 - registers the ops
from deepkit_engine.ops.registry import get_op
from deepkit_engine.testing import assert_almost_equal

from deepkit_engine.context import cpu

from .op_cases import OpCase, case_id, forward_params, gradient_params, run_forward, \
    run_gradient


# -- float64 loop references (independent of the kernels) ---------------------------

def _norm(kernel, stride, dilate, pad):
    nd_ = len(kernel)
    return (tuple(kernel), tuple(stride) or (1,) * nd_, tuple(dilate) or (1,) * nd_,
            tuple(pad) or (0,) * nd_)


def _conv_size(sp, kernel, stride, dilate, pad):
    return tuple((h + 2 * p - d * (k - 1) - 1) // s + 1
                 for h, k, s, d, p in zip(sp, kernel, stride, dilate, pad))


def _pad(x, pad):
    return np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in pad])


def _conv_loops(x, w, kernel, stride, dilate, pad, groups, out_sp=None):
    """Direct definition: out[n, f, o] = sum_{c in group, k} xpad[n, c, o*s + k*d] w[f, c, k]."""
    n, c = x.shape[:2]
    f = w.shape[0]
    xp = _pad(x, pad)
    if out_sp is None:
        out_sp = _conv_size(x.shape[2:], kernel, stride, dilate, pad)
    out = np.zeros((n, f) + tuple(out_sp))
    cg, fg = c // groups, f // groups
    for fi in range(f):
        grp = fi // fg
        xs = xp[:, grp * cg:(grp + 1) * cg]
        for o in np.ndindex(*out_sp):
            acc = np.zeros(n)
            for kk in np.ndindex(*kernel):
                idx = tuple(oi * si + ki * di for oi, si, ki, di in zip(o, stride, kk, dilate))
                acc += xs[(slice(None), slice(None)) + idx] @ w[(fi, slice(None)) + kk]
            out[(slice(None), fi) + o] = acc
    return out


def _conv_transpose_loops(x, w, kernel, stride, dilate, pad, groups, out_sp):
    """Scatter definition: every input value adds w * x at position i*s + k*d - pad."""
    n, c = x.shape[:2]
    fg = w.shape[1]
    cg = c // groups
    full = tuple(max(s * (i - 1) + d * (k - 1) + 1, p + o)
                 for i, k, s, d, p, o in zip(x.shape[2:], kernel, stride, dilate, pad, out_sp))
    buf = np.zeros((n, fg * groups) + full)
    for ci in range(c):
        grp = ci // cg
        for i in np.ndindex(*x.shape[2:]):
            for kk in np.ndindex(*kernel):
                pos = tuple(ii * s + k * d for ii, s, k, d in zip(i, stride, kk, dilate))
                buf[(slice(None), slice(grp * fg, (grp + 1) * fg)) + pos] += (
                    x[(slice(None), ci) + i][:, None] * w[(ci, slice(None)) + kk][None, :])
    return buf[(slice(None), slice(None)) + tuple(slice(p, p + o) for p, o in zip(pad, out_sp))]


def _conv_weight_loops(g, x, kernel, stride, dilate, pad, groups):
    """dW[f, c, k] = sum_{n, o} g[n, f, o] * xpad[n, c, o*s + k*d]."""
    f, c = g.shape[1], x.shape[1]
    cg, fg = c // groups, f // groups
    xp = _pad(x, pad)
    dw = np.zeros((f, cg) + tuple(kernel))
    for fi in range(f):
        grp = fi // fg
        xs = xp[:, grp * cg:(grp + 1) * cg]
        for kk in np.ndindex(*kernel):
            for o in np.ndindex(*g.shape[2:]):
                idx = tuple(oi * si + ki * di for oi, si, ki, di in zip(o, stride, kk, dilate))
                dw[(fi, slice(None)) + kk] += g[(slice(None), fi) + o] @ xs[
                    (slice(None), slice(None)) + idx]
    return dw


def _bias_shape(b, ndim):
    return b.reshape((1, -1) + (1,) * (ndim - 2))


def _conv_ref(x, w, b=None, *, kernel, stride=(), dilate=(), pad=(), num_filter, num_group=1,
              no_bias=False, **_):
    geo = _norm(kernel, stride, dilate, pad)
    out = _conv_loops(x, w, *geo, num_group)
    return out if b is None else out + _bias_shape(b, out.ndim)


def _deconv_pad_adj(sp, kernel, stride, dilate, pad, adj, target_shape):
    """MXNet's InferPad, written out for the tests."""
    if target_shape and any(target_shape):
        total = [s * (h - 1) + d * (k - 1) + 1 - t
                 for h, k, s, d, t in zip(sp, kernel, stride, dilate, target_shape)]
        return tuple((t + 1) // 2 for t in total), tuple(t % 2 for t in total)
    return pad, tuple(adj) or (0,) * len(kernel)


def _deconv_geo(sp, kernel, stride, dilate, pad, adj, target_shape):
    kernel, stride, dilate, pad = _norm(kernel, stride, dilate, pad)
    pad, adj = _deconv_pad_adj(sp, kernel, stride, dilate, pad, adj, target_shape)
    out_sp = tuple(s * (h - 1) + d * (k - 1) + 1 - 2 * p + a
                   for h, k, s, d, p, a in zip(sp, kernel, stride, dilate, pad, adj))
    return (kernel, stride, dilate, pad), out_sp


def _deconv_ref(x, w, b=None, *, kernel, stride=(), dilate=(), pad=(), adj=(), target_shape=(),
                num_filter, num_group=1, no_bias=True, **_):
    geo, out_sp = _deconv_geo(x.shape[2:], kernel, stride, dilate, pad, adj, target_shape)
    out = _conv_transpose_loops(x, w, *geo, num_group, out_sp)
    return out if b is None else out + _bias_shape(b, out.ndim)


def _bwd_conv_data_ref(g, w, x, *, kernel, stride=(), dilate=(), pad=(), num_group=1, **_):
    return _conv_transpose_loops(g, w, *_norm(kernel, stride, dilate, pad), num_group,
                                 x.shape[2:])


def _bwd_conv_weight_ref(g, x, *, kernel, stride=(), dilate=(), pad=(), num_group=1, **_):
    return _conv_weight_loops(g, x, *_norm(kernel, stride, dilate, pad), num_group)


def _bwd_deconv_data_ref(g, w, x, *, kernel, stride=(), dilate=(), pad=(), adj=(),
                         target_shape=(), num_group=1, **_):
    geo, _ = _deconv_geo(x.shape[2:], kernel, stride, dilate, pad, adj, target_shape)
    return _conv_loops(g, w, *geo, num_group, out_sp=x.shape[2:])


def _bwd_deconv_weight_ref(g, x, *, kernel, stride=(), dilate=(), pad=(), adj=(),
                           target_shape=(), num_group=1, **_):
    geo, _ = _deconv_geo(x.shape[2:], kernel, stride, dilate, pad, adj, target_shape)
    return _conv_weight_loops(x, g, *geo, num_group)


# -- cases ----------------------------------------------------------------------------

def _conv(data, f, kernel, groups=1, bias=True, **params):
    c = data[1]
    inputs = [data, (f, c // groups) + tuple(kernel)] + ([(f,)] if bias else [])
    p = {"kernel": tuple(kernel), "num_filter": f, **params}
    if groups != 1:
        p["num_group"] = groups
    if not bias:
        p["no_bias"] = True
    return inputs, p


def _conv_case(data, f, kernel, groups=1, bias=True, grad=True, name="", **params):
    inputs, p = _conv(data, f, kernel, groups, bias, **params)
    return OpCase("Convolution", inputs, _conv_ref, p, grad=grad, name=name)


def _deconv_case(data, f, kernel, groups=1, bias=False, grad=True, name="", **params):
    c = data[1]
    inputs = [data, (c, f // groups) + tuple(kernel)] + ([(f,)] if bias else [])
    p = {"kernel": tuple(kernel), "num_filter": f, **params}
    if groups != 1:
        p["num_group"] = groups
    if bias:
        p["no_bias"] = False
    return OpCase("Deconvolution", inputs, _deconv_ref, p, grad=grad, name=name)


def _bwd_conv_cases(data, f, kernel, groups=1, **params):
    _, p = _conv(data, f, kernel, groups, False, **params)
    geo = _norm(kernel, params.get("stride", ()), params.get("dilate", ()), params.get("pad", ()))
    ograd = (data[0], f) + _conv_size(data[2:], *geo)
    weight = (f, data[1] // groups) + tuple(kernel)
    return [OpCase("_backward_Convolution_data", [ograd, weight, data], _bwd_conv_data_ref, p),
            OpCase("_backward_Convolution_weight", [ograd, data], _bwd_conv_weight_ref, p)]


def _bwd_deconv_cases(data, f, kernel, groups=1, **params):
    p = {"kernel": tuple(kernel), "num_filter": f, "num_group": groups, **params}
    _, out_sp = _deconv_geo(data[2:], kernel, params.get("stride", ()),
                            params.get("dilate", ()), params.get("pad", ()),
                            params.get("adj", ()), params.get("target_shape", ()))
    ograd = (data[0], f) + out_sp
    weight = (data[1], f // groups) + tuple(kernel)
    return [OpCase("_backward_Deconvolution_data", [ograd, weight, data], _bwd_deconv_data_ref,
                   p),
            OpCase("_backward_Deconvolution_weight", [ograd, data], _bwd_deconv_weight_ref, p)]


CASES = [
    # 2-D forward over the parameter space (grad-checked on the small ones below)
    _conv_case((2, 3, 6, 5), 4, (3, 3), grad=False),
    _conv_case((2, 3, 7, 7), 4, (3, 3), stride=(2, 2), pad=(1, 1), grad=False),
    _conv_case((2, 2, 7, 8), 3, (2, 3), stride=(2, 1), pad=(0, 1), dilate=(2, 1), grad=False),
    _conv_case((2, 4, 5, 5), 6, (3, 3), groups=2, pad=(1, 1), grad=False),
    _conv_case((2, 4, 5, 5), 4, (3, 3), groups=4, grad=False, name="depthwise"),
    _conv_case((2, 3, 5, 5), 6, (3, 3), groups=3, stride=(2, 2), grad=False,
               name="depthwise-multiplier"),
    _conv_case((2, 3, 5, 5), 4, (3, 3), bias=False, grad=False),
    _conv_case((1, 3, 4, 4), 2, (1, 1), grad=False),
    _conv_case((1, 1, 3, 3), 1, (3, 3), grad=False, name="kernel-equals-input"),
    _conv_case((1, 1, 1, 1), 2, (3, 3), pad=(1, 1), grad=False, name="all-padding"),
    _conv_case((0, 3, 5, 5), 2, (3, 3), grad=False, name="zero-batch"),
    _conv_case((16, 2, 6, 6), 3, (3, 3), pad=(1, 1), grad=False, name="batch-last-layout"),
    # 1-D and 3-D
    _conv_case((2, 3, 9), 2, (3,), stride=(2,), pad=(1,), grad=False),
    _conv_case((2, 2, 8), 4, (2,), dilate=(3,), groups=2, grad=False),
    _conv_case((1, 2, 4, 5, 4), 3, (2, 3, 2), stride=(1, 2, 1), pad=(1, 0, 1), grad=False),
    # gradient cases: small
    _conv_case((1, 2, 4, 4), 2, (3, 3), name="grad"),
    _conv_case((2, 2, 5, 4), 2, (2, 2), stride=(2, 2), pad=(1, 0), name="grad"),
    _conv_case((1, 2, 5, 5), 2, (2, 2), dilate=(2, 2), bias=False, name="grad"),
    _conv_case((1, 4, 3, 3), 4, (2, 2), groups=2, name="grad"),
    _conv_case((1, 3, 3, 3), 3, (2, 2), groups=3, pad=(1, 1), name="grad-depthwise"),
    _conv_case((2, 2, 6), 2, (3,), stride=(2,), pad=(1,), name="grad"),
    _conv_case((1, 1, 3, 3, 3), 2, (2, 2, 2), stride=(2, 1, 1), name="grad"),
    _conv_case((2, 2, 3, 3), 5, (2, 2), stride=(2, 2), name="grad-more-filters-than-positions"),

    # Deconvolution (MXNet default no_bias=True)
    _deconv_case((2, 3, 4, 4), 2, (3, 3), grad=False),
    _deconv_case((2, 3, 4, 3), 4, (3, 3), stride=(2, 2), pad=(1, 1), adj=(1, 0), bias=True,
                 grad=False),
    _deconv_case((2, 4, 3, 3), 6, (2, 3), groups=2, dilate=(2, 1), grad=False),
    _deconv_case((2, 2, 3, 4), 2, (3, 3), stride=(2, 2), target_shape=(6, 8), grad=False,
                 name="target-even"),
    _deconv_case((2, 2, 3, 4), 2, (4, 4), stride=(2, 3), target_shape=(7, 10), grad=False,
                 name="target-odd"),
    _deconv_case((2, 3, 5), 2, (3,), stride=(3,), pad=(1,), bias=True, grad=False),
    _deconv_case((1, 2, 2, 3, 2), 2, (2, 2, 2), stride=(2, 1, 2), grad=False),
    _deconv_case((0, 2, 3, 3), 2, (2, 2), grad=False, name="zero-batch"),
    _deconv_case((16, 2, 3, 3), 2, (3, 3), stride=(2, 2), bias=True, grad=False,
                 name="batch-last-layout"),
    _deconv_case((1, 2, 3, 3), 2, (2, 2), stride=(2, 2), pad=(1, 0), adj=(1, 1), bias=True,
                 name="grad"),
    _deconv_case((1, 4, 2, 3), 4, (2, 2), groups=4, dilate=(1, 2), name="grad-depthwise"),
    _deconv_case((2, 2, 4), 2, (3,), stride=(2,), target_shape=(8,), name="grad"),

    # backward ops (their own forward, and their gradients = second order of the forward op)
    *_bwd_conv_cases((1, 2, 4, 4), 2, (3, 3), stride=(2, 2), pad=(1, 1)),
    *_bwd_conv_cases((2, 4, 3, 3), 2, (2, 2), groups=2, dilate=(2, 1)),
    *_bwd_conv_cases((1, 2, 5), 3, (2,), stride=(2,)),
    *_bwd_deconv_cases((1, 2, 3, 3), 2, (2, 2), stride=(2, 2), pad=(1, 0), adj=(1, 1)),
    *_bwd_deconv_cases((1, 4, 2, 3), 2, (2, 2), groups=2, stride=(2, 2), target_shape=(3, 5)),
    # stride-1 data gradients that run as a forward convolution (3x3 pad 1, odd sizes,
    # groups, a single input channel, 1-D and 3-D), and the col2im fallbacks (dilation,
    # pad larger than kernel - 1, a zero border that would cost too much work)
    *_bwd_conv_cases((2, 3, 5, 7), 4, (3, 3), pad=(1, 1)),
    *_bwd_conv_cases((2, 4, 5, 5), 6, (3, 3), groups=2, pad=(1, 1)),
    *_bwd_conv_cases((3, 1, 6, 5), 2, (3, 3), pad=(1, 1)),
    *_bwd_conv_cases((2, 2, 7), 3, (3,), pad=(1,)),
    *_bwd_conv_cases((1, 2, 3, 4, 3), 2, (3, 3, 3), pad=(1, 1, 1)),
    *_bwd_conv_cases((2, 2, 5, 5), 2, (3, 3), dilate=(2, 2), pad=(2, 2)),
    *_bwd_conv_cases((2, 2, 4, 4), 2, (3, 3), pad=(3, 3)),
    *_bwd_conv_cases((2, 2, 6, 6), 2, (5, 5)),
    _conv_case((2, 3, 5, 7), 4, (3, 3), pad=(1, 1), name="grad-3x3-same"),
    _conv_case((2, 1, 6, 5), 3, (3, 3), pad=(1, 1), name="grad-one-channel"),
]


@pytest.mark.parametrize("case,dtype", forward_params(CASES))
def test_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)


@pytest.mark.parametrize("case", gradient_params(CASES))
def test_gradient(case, ctx):
    run_gradient(case, ctx)


@pytest.fixture(params=["sample", "first", "last"])
def forced_layout(request, monkeypatch):
    """Force one im2col layout whatever the shapes (the default picks by shape and device)."""
    monkeypatch.setattr(convolution, "_layout", lambda *args, **kwargs: request.param)
    return request.param


@pytest.mark.parametrize("case", [pytest.param(c, id=case_id(c)) for c in CASES])
def test_forward_in_every_layout(case, forced_layout):
    run_forward(case, "float64", cpu())


@pytest.mark.parametrize("case", gradient_params(CASES))
def test_gradient_in_every_layout(case, forced_layout):
    run_gradient(case, cpu())


def test_alias_and_backward_ops_are_registered():
    assert get_op("Convolution_v1") is get_op("Convolution")
    for name in ("_backward_Convolution_data", "_backward_Convolution_weight",
                 "_backward_Deconvolution_data", "_backward_Deconvolution_weight"):
        assert get_op(name).gradient is not None


# -- shapes ------------------------------------------------------------------------

@pytest.mark.parametrize("data,params,out", [
    ((32, 1, 28, 28), {"kernel": (5, 5), "num_filter": 20}, (32, 20, 24, 24)),
    ((8, 3, 224, 224), {"kernel": (7, 7), "stride": (2, 2), "pad": (3, 3), "num_filter": 64},
     (8, 64, 112, 112)),
    ((1, 3, 10, 11), {"kernel": (3, 3), "stride": (3, 2), "num_filter": 2}, (1, 2, 3, 5)),
    ((1, 3, 10, 10), {"kernel": (3, 3), "dilate": (2, 3), "pad": (1, 0), "num_filter": 2},
     (1, 2, 8, 4)),
    ((2, 4, 9), {"kernel": (4,), "stride": (2,), "num_filter": 5}, (2, 5, 3)),
    ((2, 4, 4, 5, 6), {"kernel": (3, 3, 3), "pad": (1, 1, 1), "num_filter": 5},
     (2, 5, 4, 5, 6)),
])
def test_convolution_output_shape(data, params, out):
    net = sym.Convolution(sym.Variable("data"), name="conv", **params)
    args, outs, _ = net.infer_shape(data=data)
    shapes = dict(zip(net.list_arguments(), args))
    assert outs == [out]
    assert shapes["conv_weight"] == (params["num_filter"], data[1]) + params["kernel"]
    assert shapes["conv_bias"] == (params["num_filter"],)


@pytest.mark.parametrize("data,params,out", [
    # s(in-1) + d(k-1) + 1 - 2p + adj
    ((1, 3, 4, 4), {"kernel": (4, 4), "stride": (2, 2), "pad": (1, 1)}, (8, 8)),
    ((1, 3, 4, 5), {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1), "adj": (1, 0)}, (8, 9)),
    ((1, 3, 5), {"kernel": (3,), "dilate": (2,)}, (9,)),
    ((1, 3, 4, 4), {"kernel": (3, 3), "stride": (2, 2), "target_shape": (8, 9)}, (8, 9)),
    ((1, 3, 2, 2, 2), {"kernel": (2, 2, 2), "stride": (2, 2, 2)}, (4, 4, 4)),
])
def test_deconvolution_output_shape(data, params, out):
    net = sym.Deconvolution(sym.Variable("data"), num_filter=5, num_group=1, name="de",
                            **params)
    assert net.list_arguments() == ["data", "de_weight"]  # no_bias defaults to True
    args, outs, _ = net.infer_shape(data=data)
    assert outs == [(data[0], 5) + out]
    assert args[1] == (data[1], 5) + params["kernel"]


def test_grouped_weight_shape_and_partial_inference():
    net = sym.Convolution(sym.Variable("data"), kernel=(3, 3), num_filter=8, num_group=4,
                          name="c")
    args, outs, _ = net.infer_shape(data=(2, 4, 5, 5))
    assert args[1] == (8, 1, 3, 3) and outs == [(2, 8, 3, 3)]
    args, outs, _ = net.infer_shape_partial()
    assert args[2] == (8,) and outs == [()]


# -- errors --------------------------------------------------------------------------

def test_kernel_larger_than_padded_input():
    with pytest.raises(ShapeError, match=r"Convolution 'c'.*kernel \(5, 5\) with dilate \(1, 1\)"
                                         r".*input size \(4, 6\) \+ 2 \* pad \(0, 0\)"):
        sym.Convolution(sym.Variable("data"), kernel=(5, 5), num_filter=2,
                        name="c").infer_shape(data=(1, 1, 4, 6))
    with pytest.raises(ShapeError, match=r"dilate \(3, 1\) \(dilated size \(7, 3\)\).*pad "
                                         r"\(1, 1\) = \(6, 8\)"):
        nd.Convolution(nd.ones((1, 1, 4, 6)), nd.ones((1, 1, 3, 3)), nd.ones(1), kernel=(3, 3),
                       dilate=(3, 1), pad=(1, 1), num_filter=1)


def test_channels_not_divisible_by_groups():
    with pytest.raises(ShapeError, match=r"Convolution.*'data' has 5 channels.*num_group=2"
                                         r"[\s\S]*data=\(1, 5, 4, 4\)"):
        nd.Convolution(nd.ones((1, 5, 4, 4)), nd.ones((4, 2, 3, 3)), nd.ones(4), kernel=(3, 3),
                       num_filter=4, num_group=2)
    with pytest.raises(ParamError, match=r"num_filter=3 is not divisible by num_group=2"):
        sym.Convolution(sym.Variable("d"), kernel=(3, 3), num_filter=3,
                        num_group=2).infer_shape(d=(1, 4, 4, 4))
    with pytest.raises(ShapeError, match=r"Deconvolution.*'data' has 3 channels"):
        sym.Deconvolution(sym.Variable("d"), kernel=(2, 2), num_filter=2,
                          num_group=2).infer_shape(d=(1, 3, 4, 4))


def test_wrong_weight_and_data_shapes():
    with pytest.raises(ShapeError, match=r"Convolution 'c'.*'weight' has shape \(4, 3, 3, 3\) "
                                         r"but \(4, 2, 3, 3\)"):
        sym.Convolution(sym.Variable("data"), kernel=(3, 3), num_filter=4,
                        name="c").infer_shape(data=(1, 2, 5, 5), c_weight=(4, 3, 3, 3))
    with pytest.raises(ShapeError, match=r"'data' has shape \(2, 5, 5\) but a 2-D kernel"):
        nd.Convolution(nd.ones((2, 5, 5)), nd.ones((1, 2, 3, 3)), nd.ones(1), kernel=(3, 3),
                       num_filter=1)
    with pytest.raises(ShapeError, match=r"'bias' has shape \(3,\) but \(4,\)"):
        nd.Convolution(nd.ones((1, 2, 5, 5)), nd.ones((4, 2, 3, 3)), nd.ones(3), kernel=(3, 3),
                       num_filter=4)
    with pytest.raises(ShapeError, match=r"Deconvolution.*'weight' has shape \(2, 3, 2, 2\) "
                                         r"but \(2, 4, 2, 2\)"):
        nd.Deconvolution(nd.ones((1, 2, 3, 3)), nd.ones((2, 3, 2, 2)), kernel=(2, 2),
                         num_filter=4)


def test_bad_params():
    x = sym.Variable("d")
    with pytest.raises(ParamError, match=r"stride=\(2,\) has 1 entries but kernel=\(3, 3\)"):
        sym.Convolution(x, kernel=(3, 3), stride=(2,), num_filter=1).infer_shape(
            d=(1, 1, 5, 5))
    with pytest.raises(ParamError, match=r"kernel=\(1, 1, 1, 1\) must have 1, 2 or 3"):
        sym.Convolution(x, kernel=(1, 1, 1, 1), num_filter=1).infer_shape(
            d=(1, 1, 5, 5, 5, 5))
    with pytest.raises(ParamError, match=r"layout='NCW' does not fit a 2-D kernel"):
        sym.Convolution(x, kernel=(3, 3), num_filter=1, layout="NCW").infer_shape(
            d=(1, 1, 5, 5))
    with pytest.raises(ParamError, match=r"layout='NHWC' must be one of"):
        sym.Convolution(x, kernel=(3, 3), num_filter=1, layout="NHWC")
    with pytest.raises(ParamError, match=r"pad=\(-1, 0\) must be >= 0"):
        sym.Convolution(x, kernel=(3, 3), num_filter=1, pad=(-1, 0))
    with pytest.raises(ParamError, match=r"Deconvolution.*adj \(2, 0\) must be smaller than "
                                         r"stride \(2, 2\)"):
        sym.Deconvolution(x, kernel=(3, 3), num_filter=1, stride=(2, 2),
                          adj=(2, 0)).infer_shape(d=(1, 1, 3, 3))


def test_deconvolution_target_shape_errors():
    x = sym.Variable("d")
    with pytest.raises(ShapeError, match=r"Deconvolution.*target_shape \(9, 4\) is too big for "
                                         r"input size \(3, 3\).*at most \(7, 7\)"):
        sym.Deconvolution(x, kernel=(3, 3), stride=(2, 2), num_filter=1,
                          target_shape=(9, 4)).infer_shape(d=(1, 1, 3, 3))
    # stride 1 leaves no room for an odd total padding (MXNet: adj must be < stride)
    with pytest.raises(ShapeError, match=r"adj \(1, 0\) must be smaller than stride \(1, 1\) "
                                         r"\(adj computed from target_shape"):
        sym.Deconvolution(x, kernel=(3, 3), num_filter=1,
                          target_shape=(4, 5)).infer_shape(d=(1, 1, 3, 3))


# -- executor, req and higher order ---------------------------------------------------

def test_executor_backward_with_add_and_null_requests(ctx):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 6, 6))
    w = rng.normal(size=(4, 3, 3, 3))
    b = rng.normal(size=4)
    og = rng.normal(size=(2, 4, 3, 3))
    net = sym.Convolution(sym.Variable("data"), kernel=(3, 3), stride=(2, 2), pad=(1, 1),
                          num_filter=4, name="c")
    args = {"data": nd.array(x, ctx=ctx, dtype="float64"),
            "c_weight": nd.array(w, ctx=ctx, dtype="float64"),
            "c_bias": nd.array(b, ctx=ctx, dtype="float64")}
    grads = {"data": nd.ones(x.shape, ctx=ctx, dtype="float64"),
             "c_weight": nd.ones(w.shape, ctx=ctx, dtype="float64")}
    exe = net.bind(ctx, args, args_grad=grads,
                   grad_req={"data": "add", "c_weight": "write", "c_bias": "null"})
    out = exe.forward(is_train=True)[0]
    assert_almost_equal(out, _conv_ref(x, w, b, kernel=(3, 3), stride=(2, 2), pad=(1, 1),
                                       num_filter=4))
    exe.backward(nd.array(og, ctx=ctx, dtype="float64"))
    geo = _norm((3, 3), (2, 2), (), (1, 1))
    assert_almost_equal(exe.grad_dict["data"], 1 + _conv_transpose_loops(og, w, *geo, 1, (6, 6)))
    assert_almost_equal(exe.grad_dict["c_weight"], _conv_weight_loops(og, x, *geo, 1))


def _conv_matrix(shape, w, **params):
    """The convolution as an explicit matrix (columns: outputs of unit inputs)."""
    cols = []
    for i in range(int(np.prod(shape))):
        e = np.zeros(int(np.prod(shape)))
        e[i] = 1
        cols.append(_conv_ref(e.reshape(shape), w, **params).ravel())
    return np.stack(cols, axis=1)


def test_second_order_through_autograd(ctx):
    # L = sum(conv(x, w)^2) = |A x|^2 ;  dL/dx = 2 A^T A x ;  d(sum dL/dx)/dx = 2 A^T A 1
    rng = np.random.default_rng(1)
    shape, params = (1, 2, 4, 4), {"kernel": (2, 2), "stride": (2, 1), "pad": (1, 0),
                                   "num_filter": 3, "no_bias": True}
    xv, wv = rng.normal(size=shape), rng.normal(size=(3, 2, 2, 2))
    a = _conv_matrix(shape, wv, **params)
    x = nd.array(xv, ctx=ctx, dtype="float64")
    w = nd.array(wv, ctx=ctx, dtype="float64")
    x.attach_grad()
    w.attach_grad()
    with autograd.record():
        y = nd.Convolution(x, w, **params)
        loss = nd.sum(y * y)
        gx = autograd.grad(loss, [x], create_graph=True)[0]
    assert_almost_equal(gx, (2 * a.T @ a @ xv.ravel()).reshape(shape))
    gx.backward()
    assert_almost_equal(x.grad, (2 * a.T @ a @ np.ones(a.shape[1])).reshape(shape))
    # d(sum 2 A_w^T A_w x)/dw, checked by finite differences on w
    eps = 1e-6
    numeric = np.zeros(wv.shape)
    for i in np.ndindex(*wv.shape):
        wp, wm = wv.copy(), wv.copy()
        wp[i] += eps
        wm[i] -= eps
        ap, am = _conv_matrix(shape, wp, **params), _conv_matrix(shape, wm, **params)
        numeric[i] = ((2 * ap.T @ ap @ xv.ravel()).sum()
                      - (2 * am.T @ am @ xv.ravel()).sum()) / (2 * eps)
    assert_almost_equal(w.grad, numeric, rtol=1e-5, atol=1e-7)


def test_float32_stays_float32():
    x = nd.ones((2, 3, 5, 5))
    out = nd.Convolution(x, nd.ones((4, 3, 3, 3)), nd.ones(4), kernel=(3, 3), num_filter=4)
    assert out.dtype == np.float32
    assert_almost_equal(out, np.full((2, 4, 3, 3), 28.0, np.float32))


def test_deconvolution_is_the_adjoint_of_convolution():
    # <conv(x), y> == <x, deconv(y)> with the same weight and geometry
    rng = np.random.default_rng(3)
    params = {"kernel": (3, 2), "stride": (2, 1), "pad": (1, 1), "dilate": (1, 2), "num_group": 2}
    x = rng.normal(size=(2, 4, 7, 6))
    w = rng.normal(size=(6, 2, 3, 2))
    y_conv = nd.Convolution(nd.array(x, dtype="float64"), nd.array(w, dtype="float64"),
                            num_filter=6, no_bias=True, **params).asnumpy()
    y = rng.normal(size=y_conv.shape)
    x_deconv = nd.Deconvolution(nd.array(y, dtype="float64"), nd.array(w, dtype="float64"),
                                num_filter=4, adj=(0, 0), **params).asnumpy()
    assert x_deconv.shape == x.shape
    np.testing.assert_allclose((y_conv * y).sum(), (x * x_deconv).sum(), rtol=1e-10)


@pytest.mark.parametrize("params", [
    {"kernel": (3, 3), "pad": (1, 1)},
    {"kernel": (3, 3), "pad": (1, 1), "stride": (2, 2)},
    {"kernel": (5, 5), "num_group": 2},
    {"kernel": (2, 3), "dilate": (2, 1), "pad": (1, 0)},
], ids=str)
def test_kernel_pool_chunks_give_identical_results(monkeypatch, params):
    """Chunks run on the kernel pool's threads: the same results as one whole-batch call."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20, 4, 9, 8))
    w = rng.normal(size=(6, 4 // params.get("num_group", 1)) + params["kernel"])
    b = rng.normal(size=6)

    def run():
        xs, ws, bs = (nd.array(a, dtype="float64") for a in (x, w, b))
        for a in (xs, ws, bs):
            a.attach_grad()
        with autograd.record():
            y = nd.Convolution(xs, ws, bs, num_filter=6, **params)
        y.backward(nd.array(np.cos(np.arange(y.size)).reshape(y.shape), dtype="float64"))
        return [y.asnumpy(), xs.grad.asnumpy(), ws.grad.asnumpy(), bs.grad.asnumpy()]
    monkeypatch.setattr(threads, "pool_size", lambda: 1)
    whole = run()
    monkeypatch.setattr(threads, "pool_size", lambda: 3)
    monkeypatch.setattr(convolution, "WORKSPACE_BYTES", 1)
    for a, b_ in zip(whole, run()):
        np.testing.assert_allclose(a, b_, rtol=1e-12, atol=1e-12)


def test_large_batches_are_processed_in_chunks_with_identical_results(monkeypatch, ctx):
    """A bounded im2col workspace: chunking over samples changes nothing in the results."""
    from deepkit_engine import symbol as sym  # noqa: PLC0415
    from deepkit_engine.ops import convolution  # noqa: PLC0415
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 3, 9, 9))
    w = rng.normal(size=(4, 3, 3, 3))
    net = sym.Convolution(sym.Variable("x"), sym.Variable("w"), num_filter=4, kernel=(3, 3),
                          pad=(1, 1), stride=(2, 2), no_bias=True)
    results = []
    for limit in (convolution.WORKSPACE_BYTES, 1):  # whole batch, then one sample per chunk
        monkeypatch.setattr(convolution, "WORKSPACE_BYTES", limit)
        exe = net.simple_bind(ctx, x=x.shape, w=w.shape, type_dict={"x": "float64",
                                                                    "w": "float64"})
        exe.arg_dict["x"][:] = x
        exe.arg_dict["w"][:] = w
        out = exe.forward(is_train=True)[0]
        exe.backward(nd.ones(out.shape, ctx=ctx, dtype="float64"))
        results.append([out.asnumpy(), exe.grad_dict["x"].asnumpy(), exe.grad_dict["w"].asnumpy()])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("req", ["write", "add"])
@pytest.mark.parametrize("pool", [1, 3])
def test_large_weight_gradients_summed_in_place_match_the_batch_split(monkeypatch, req, pool):
    """Weights from IN_PLACE_WEIGHT_GRAD_BYTES up accumulate every chunk's product into the
    gradient itself; the result equals the batch-split path's, over several chunks."""
    from deepkit_engine.ops import convolution  # noqa: PLC0415
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, 7, 6, 6))
    g = rng.normal(size=(5, 4, 6, 6))
    geo = ((3, 3), (1, 1), (1, 1), (1, 1))
    start = rng.normal(size=(4, 7, 3, 3))
    monkeypatch.setattr(threads, "pool_size", lambda: pool)
    results = []
    for threshold, workspace in ((1 << 60, 1 << 30), (0, 7 * 9 * 36 * 8 * 2)):  # 2 per chunk
        monkeypatch.setattr(convolution, "IN_PLACE_WEIGHT_GRAD_BYTES", threshold)
        monkeypatch.setattr(convolution, "IN_PLACE_WORKSPACE_BYTES", workspace)
        out = start.copy()
        convolution.conv_weight_grad(np, g, x, out, req, geo, 1)
        results.append(out)
    np.testing.assert_allclose(results[1], results[0], rtol=1e-12, atol=1e-12)
    cols = np.lib.stride_tricks.sliding_window_view(np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))),
                                                    (3, 3), axis=(2, 3))
    want = np.einsum("nfhw,nchwij->fcij", g, cols) + (start if req == "add" else 0)
    np.testing.assert_allclose(results[1], want, rtol=1e-10, atol=1e-10)
