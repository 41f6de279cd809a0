"""Caffe's rules, one pitfall at a time: tiny nets written with the test writer, converted,
run with the engine, and compared with NumPy references of Caffe's layer code and with
OpenCV's dnn Caffe importer (the independent implementation).
"""
import json
import os

import numpy as np
import pytest

from deepkit.caffe import CaffeConversionError, load_converted, shapes
from deepkit.caffe import convert_record as convert  # the rules are checked on the record
from deepkit.caffe.verify import resolve_output, run
from deepkit.symbol_file import escape_name, unescape_name

from . import caffe_writer as cw
from .nets import (assert_close, input_layer, layer, opencv_forward, ref_conv, ref_deconv,
                   ref_lrn_across, ref_lrn_within, ref_pool, write_net)

cv2 = pytest.importorskip("cv2")


def outputs(conv, x, names):
    """{caffe layer name: engine output} for the given layer names."""
    resolved = {n: resolve_output(conv, n, "layer")[0] for n in names}
    assert all(resolved.values()), resolved
    values = run(conv, x, outputs=list(dict.fromkeys(resolved.values())))
    return {n: values[o] for n, o in resolved.items()}


def check_net(tmp_path, layers, x, names, refs=None, opencv=True, **convert_kwargs):
    """Convert, run and compare the named layers with ``refs`` and/or OpenCV."""
    proto, model = write_net(tmp_path, layers)
    conv = convert(proto, model, **convert_kwargs)
    got = outputs(conv, x, names)
    if opencv:
        ocv = opencv_forward(proto, model, x, names)
        for n in names:
            assert_close(got[n], ocv[n], f"{n} vs OpenCV")
    for n, ref in (refs or {}).items():
        assert_close(got[n], ref, f"{n} vs NumPy reference")
    return conv, got


# -- Pooling ------------------------------------------------------------------------------------

@pytest.mark.parametrize("n,k,s,p,mode,expected", [
    (3, 2, 2, 1, "CEIL", 2),      # naive ceil (MXNet 'full' without the clip) gives 3
    (112, 3, 2, 1, "CEIL", 57),
    (112, 3, 2, 1, "FLOOR", 56),
    (112, 3, 2, 0, "CEIL", 56),
    (112, 3, 2, 0, "FLOOR", 55),
    (32, 3, 2, 0, "CEIL", 16),    # CIFAR-10 full: floor would give 15
    (6, 3, 3, 2, "CEIL", 3),      # the clip drops a window starting in the right pad
])
def test_pool_output_size_rule(n, k, s, p, mode, expected):
    assert shapes.pool_out(n, k, s, p, mode) == expected


@pytest.mark.parametrize("pool", ["MAX", "AVE"])
@pytest.mark.parametrize("h,k,s,p", [(3, 2, 2, 1), (3, 2, 2, 0), (7, 3, 2, 1), (8, 3, 2, 1),
                                     (5, 3, 3, 2), (6, 2, 2, 0), (9, 4, 3, 2)])
def test_pooling_matches_caffe(tmp_path, rng, pool, h, k, s, p):
    # negative inputs: MAX must ignore padding cells (not treat them as zeros)
    x = rng.normal(-3.0, 1.0, (2, 3, h, h + 1)).astype(np.float32)
    lay = [input_layer(x.shape),
           layer("pool", "Pooling", "data", pooling_param={"pool": pool, "kernel_size": k,
                                                          "stride": s, "pad": p})]
    ref = ref_pool(x, (k, k), (s, s), (p, p), pool)
    conv, got = check_net(tmp_path, lay, x, ["pool"], {"pool": ref})
    assert conv.layer("pool").top_shapes[0] == ref.shape


def test_pooling_ave_divisor_ceil_overhang(tmp_path):
    # H=3, k=2, s=2, p=0 under CEIL: the last window covers one row/column and is divided by 1
    x = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    lay = [input_layer(x.shape),
           layer("pool", "Pooling", "data", pooling_param={"pool": "AVE", "kernel_size": 2,
                                                          "stride": 2})]
    _, got = check_net(tmp_path, lay, x, ["pool"])
    expected = np.array([[(0 + 1 + 3 + 4) / 4, (2 + 5) / 2], [(6 + 7) / 2, 8 / 1]])
    assert_close(got["pool"][0, 0], expected)


def test_pooling_ave_divisor_counts_symmetric_pad(tmp_path):
    # k=3, s=1, p=1 on ones: corners see 4 real cells but are divided by 9
    x = np.ones((1, 1, 4, 4), np.float32)
    lay = [input_layer(x.shape),
           layer("pool", "Pooling", "data", pooling_param={"pool": "AVE", "kernel_size": 3,
                                                          "stride": 1, "pad": 1})]
    _, got = check_net(tmp_path, lay, x, ["pool"])
    assert got["pool"][0, 0, 0, 0] == pytest.approx(4 / 9)
    assert got["pool"][0, 0, 1, 1] == pytest.approx(1.0)


def test_pooling_floor_round_mode_and_rectangular(tmp_path, rng):
    x = rng.normal(size=(1, 2, 11, 9)).astype(np.float32)
    lay = [input_layer(x.shape),
           layer("pool", "Pooling", "data",
                 pooling_param={"pool": "AVE", "kernel_h": 3, "kernel_w": 2, "stride_h": 2,
                                "stride_w": 3, "pad_h": 1, "pad_w": 1, "round_mode": "FLOOR"})]
    ref = ref_pool(x, (3, 2), (2, 3), (1, 1), "AVE", "FLOOR")
    check_net(tmp_path, lay, x, ["pool"], {"pool": ref}, opencv=False)


def test_global_pooling(tmp_path, rng):
    x = rng.normal(size=(2, 4, 5, 7)).astype(np.float32)
    lay = [input_layer(x.shape),
           layer("gmax", "Pooling", "data", pooling_param={"pool": "MAX", "global_pooling": True}),
           layer("gave", "Pooling", "data", pooling_param={"pool": "AVE", "global_pooling": True})]
    check_net(tmp_path, lay, x, ["gmax", "gave"],
              {"gmax": x.max(axis=(2, 3), keepdims=True),
               "gave": x.mean(axis=(2, 3), keepdims=True)})


def test_pooling_empty_last_window_is_refused(tmp_path):
    # kernel 1 < stride 3 without pad: Caffe's ceil keeps a window past the input
    lay = [input_layer((1, 1, 5, 5)),
           layer("pool", "Pooling", "data", pooling_param={"pool": "MAX", "kernel_size": 1,
                                                          "stride": 3})]
    proto, model = write_net(tmp_path, lay)
    with pytest.raises(CaffeConversionError, match="starts past the input"):
        convert(proto, model)


# -- LRN ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("n,alpha,beta,k", [(5, 1e-4, 0.75, 1.0), (3, 5e-5, 0.75, 1.0),
                                            (5, 2e-4, 0.6, 2.0), (1, 0.5, 0.9, 3.0)])
def test_lrn_across_channels(tmp_path, rng, n, alpha, beta, k):
    x = rng.normal(0, 30, (2, 7, 4, 5)).astype(np.float32)
    lay = [input_layer(x.shape),
           layer("norm", "LRN", "data", lrn_param={"local_size": n, "alpha": alpha, "beta": beta,
                                                   "k": k})]
    ref = ref_lrn_across(x, n, alpha, beta, k)
    # OpenCV reads its additive constant from 'bias', not Caffe's 'k': only trusted for k == 1
    check_net(tmp_path, lay, x, ["norm"], {"norm": ref}, opencv=k == 1.0)


@pytest.mark.parametrize("n,alpha,beta,k", [(3, 5e-5, 0.75, 1.0), (5, 1e-3, 0.5, 4.0)])
def test_lrn_within_channel(tmp_path, rng, n, alpha, beta, k):
    x = rng.normal(0, 30, (2, 3, 6, 5)).astype(np.float32)
    lay = [input_layer(x.shape),
           layer("norm", "LRN", "data", lrn_param={"local_size": n, "alpha": alpha, "beta": beta,
                                                   "k": k, "norm_region": "WITHIN_CHANNEL"})]
    ref = ref_lrn_within(x, n, alpha, beta)  # k is ignored, the shift is 1, alpha / n^2
    check_net(tmp_path, lay, x, ["norm"], {"norm": ref}, opencv=k == 1.0)


def test_lrn_even_local_size_is_a_caffe_error(tmp_path):
    lay = [input_layer((1, 4, 3, 3)), layer("norm", "LRN", "data", lrn_param={"local_size": 4})]
    proto, model = write_net(tmp_path, lay)
    with pytest.raises(CaffeConversionError, match="odd values for local_size"):
        convert(proto, model)


# -- BatchNorm / Scale / Bias ------------------------------------------------------------------

@pytest.mark.parametrize("factor", [0.0, 1.0, 999.98, 0.5])
def test_batchnorm_scale_factor(tmp_path, rng, factor):
    c = 4
    x = rng.normal(size=(2, c, 3, 3)).astype(np.float32)
    mean = rng.normal(size=c).astype(np.float32)
    var = rng.uniform(0.5, 2.0, c).astype(np.float32)
    stored_mean, stored_var = mean * np.float32(factor or 1), var * np.float32(factor or 1)
    lay = [input_layer(x.shape),
           layer("bn", "BatchNorm", "data", blobs=[stored_mean, stored_var, [factor]],
                 batch_norm_param={"eps": 1e-3})]
    if factor == 0:  # Caffe: factor 0 means the statistics are zeros
        ref = x / np.sqrt(0 + 1e-3)
    else:
        ref = (x - mean.reshape(1, c, 1, 1)) / np.sqrt(var.reshape(1, c, 1, 1) + 1e-3)
    check_net(tmp_path, lay, x, ["bn"], {"bn": ref})


def test_batchnorm_use_global_stats_false_is_refused(tmp_path):
    lay = [input_layer((1, 2, 2, 2)),
           layer("bn", "BatchNorm", "data", blobs=[[0, 0], [1, 1], [1]],
                 batch_norm_param={"use_global_stats": False})]
    proto, model = write_net(tmp_path, lay)
    with pytest.raises(CaffeConversionError, match="use_global_stats: false"):
        convert(proto, model)


def _bn_scale_relu(rng, c, in_place=True):
    mean = rng.normal(size=c).astype(np.float32)
    var = rng.uniform(0.5, 2.0, c).astype(np.float32)
    gamma = rng.normal(size=c).astype(np.float32)
    beta = rng.normal(size=c).astype(np.float32)
    t = "data" if in_place else None
    lay = [layer("bn", "BatchNorm", "data", top=t or "bn", blobs=[mean * 10, var * 10, [10.0]]),
           layer("scale", "Scale", t or "bn", top=t or "scale", blobs=[gamma, beta],
                 scale_param={"bias_term": True}),
           layer("relu", "ReLU", t or "scale", top=t or "relu")]
    return lay, (mean, var, gamma, beta)


def test_in_place_chain_bn_scale_relu(tmp_path, rng):
    c = 3
    x = rng.normal(size=(2, c, 4, 4)).astype(np.float32)
    chain, (mean, var, gamma, beta) = _bn_scale_relu(rng, c)
    lay = [input_layer(x.shape)] + chain
    bshape = (1, c, 1, 1)
    bn = (x - mean.reshape(bshape)) / np.sqrt(var.reshape(bshape) + 1e-5)
    sc = bn * gamma.reshape(bshape) + beta.reshape(bshape)
    conv, got = check_net(tmp_path, lay, x, ["bn", "scale", "relu"],
                          {"bn": bn, "scale": sc, "relu": np.maximum(sc, 0)})
    # SSA: three versions of blob 'data', each layer reading the previous one
    assert [r.status for r in conv.layers] == ["input", "converted", "converted", "converted"]
    assert conv.outputs == [("data", "relu_output")]
    # a blob name means its last version
    assert resolve_output(conv, "data", "blob")[0] == "relu_output"


def test_fuse_bn_scale(tmp_path, rng):
    c = 3
    x = rng.normal(size=(2, c, 4, 4)).astype(np.float32)
    chain, _ = _bn_scale_relu(rng, c)
    lay = [input_layer(x.shape)] + chain
    proto, model = write_net(tmp_path, lay)
    plain = convert(proto, model)
    fused = convert(proto, model, fuse_bn_scale=True)
    assert fused.layer("scale").status == "fused"
    assert not any("scale" in n for n in fused.arg_params)
    assert_close(run(fused, x)["relu_output"], run(plain, x)["relu_output"])
    # a Scale reading a blob that something else also reads is not folded
    lay2 = lay[:2] + [layer("other", "ReLU", "data", top="other")] + [
        layer("scale", "Scale", "data", top="scaled", blobs=[np.ones(c), np.zeros(c)],
              scale_param={"bias_term": True})]
    proto, model = write_net(tmp_path, lay2, name="nofuse")
    assert convert(proto, model, fuse_bn_scale=True).layer("scale").status == "converted"


@pytest.mark.parametrize("axis,num_axes,pshape", [(1, 1, (3,)), (1, 2, (3, 4)), (0, -1, None),
                                                  (2, 0, ()), (-1, 1, (5,))])
def test_scale_axis_num_axes(tmp_path, rng, axis, num_axes, pshape):
    x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    if pshape is None:
        pshape = x.shape[axis:]
    s = rng.normal(size=pshape).astype(np.float32)
    b = rng.normal(size=pshape).astype(np.float32)
    ax = axis % 4 if pshape else 0
    bshape = (1,) * ax + pshape + (1,) * (4 - ax - len(pshape))
    lay = [input_layer(x.shape),
           layer("scale", "Scale", "data", blobs=[s, b],
                 scale_param={"axis": axis, "num_axes": num_axes, "bias_term": True}),
           layer("bias", "Bias", "data", blobs=[b], bias_param={"axis": axis,
                                                                  "num_axes": num_axes})]
    check_net(tmp_path, lay, x, ["scale", "bias"],
              {"scale": x * s.reshape(bshape) + b.reshape(bshape),
               "bias": x + b.reshape(bshape)}, opencv=False)


def test_scale_with_second_bottom(tmp_path, rng):
    x = rng.normal(size=(2, 3, 4, 4)).astype(np.float32)
    y = rng.normal(size=(2, 3)).astype(np.float32)
    lay = [input_layer([x.shape, y.shape], top=["data", "att"]),
           layer("scale", "Scale", ["data", "att"], scale_param={"axis": 0}),
           layer("bias", "Bias", ["data", "att"], bias_param={"axis": 0})]
    check_net(tmp_path, lay, {"data": x, "att": y}, ["scale", "bias"],
              {"scale": x * y[:, :, None, None], "bias": x + y[:, :, None, None]}, opencv=False)


# -- Eltwise / Concat / Slice ------------------------------------------------------------------

@pytest.mark.parametrize("op,coeff", [("SUM", None), ("SUM", [1, -1]), ("SUM", [0.5, 2.0, -3.0]),
                                      ("PROD", None), ("MAX", None)])
def test_eltwise(tmp_path, rng, op, coeff):
    n = 3 if coeff and len(coeff) == 3 else 2
    shape = (2, 3, 4, 4)
    xs = [rng.normal(size=shape).astype(np.float32) for _ in range(n)]
    tops = [f"x{i}" for i in range(n)]
    param = {"operation": op}
    if coeff:
        param["coeff"] = coeff
    lay = [input_layer([shape] * n, top=tops), layer("elt", "Eltwise", tops, eltwise_param=param)]
    if op == "SUM":
        ref = sum(c * x for c, x in zip(coeff or [1] * n, xs))
    elif op == "PROD":
        ref = np.prod(xs, axis=0)
    else:
        ref = np.max(xs, axis=0)
    check_net(tmp_path, lay, dict(zip(tops, xs)), ["elt"], {"elt": ref})


def test_eltwise_coeff_rules(tmp_path):
    lay = [input_layer([(1, 2), (1, 2)], top=["a", "b"]),
           layer("prod", "Eltwise", ["a", "b"], eltwise_param={"operation": "PROD",
                                                             "coeff": [1, 2]}),
           layer("sum", "Eltwise", ["a", "b"], eltwise_param={"coeff": [1, 2, 3]})]
    proto, model = write_net(tmp_path, lay)
    with pytest.raises(CaffeConversionError) as err:
        convert(proto, model)
    text = str(err.value)
    assert "only takes coefficients for summation" in text and "one coefficient per bottom" in text


def test_concat_and_slice(tmp_path, rng):
    a = rng.normal(size=(2, 3, 4, 4)).astype(np.float32)
    b = rng.normal(size=(2, 5, 4, 4)).astype(np.float32)
    lay = [input_layer([a.shape, b.shape], top=["a", "b"]),
           layer("cat", "Concat", ["a", "b"]),
           layer("cat3", "Concat", ["a", "a"], concat_param={"axis": 3}),
           layer("slice", "Slice", "cat", top=["s0", "s1", "s2"],
                 slice_param={"slice_point": [1, 6]}),
           layer("halves", "Slice", "b", top=["h0", "h1"], slice_param={"axis": 2})]
    proto, model = write_net(tmp_path, lay)
    conv = convert(proto, model)
    cat = np.concatenate([a, b], 1)
    got = run(conv, {"a": a, "b": b}, outputs=[resolve_output(conv, t, "blob")[0]
                                               for t in ["cat3", "s0", "s1", "s2", "h0", "h1"]])
    got = list(got.values())
    refs = [np.concatenate([a, a], 3), cat[:, :1], cat[:, 1:6], cat[:, 6:], b[:, :, :2], b[:, :, 2:]]
    for g, r in zip(got, refs):
        assert_close(g, r)
    # OpenCV 4.x slices an equal split along axis 1 whatever slice_param.axis says: leave
    # 'halves' out of its net
    proto, model = write_net(tmp_path, lay[:-1], name="ocv")
    ocv = opencv_forward(proto, model, {"a": a, "b": b}, ["cat", "cat3", "slice"])
    for name in ("cat", "cat3"):
        assert_close(run(conv, {"a": a, "b": b}, outputs=[f"{name}_output"])[f"{name}_output"],
                     ocv[name])


# -- InnerProduct / Convolution / Deconvolution ----------------------------------------------------

@pytest.mark.parametrize("axis,transpose", [(1, False), (1, True), (2, False), (2, True),
                                            (-1, False), (3, True)])
def test_inner_product_axis_transpose(tmp_path, rng, axis, transpose):
    x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    ax = axis % 4
    k = int(np.prod(x.shape[ax:]))
    w = rng.normal(size=(6, k)).astype(np.float32)
    b = rng.normal(size=6).astype(np.float32)
    stored = w.T.copy() if transpose else w
    lay = [input_layer(x.shape),
           layer("ip", "InnerProduct", "data", blobs=[stored, b],
                 inner_product_param={"num_output": 6, "axis": axis, "transpose": transpose})]
    ref = (x.reshape(x.shape[:ax] + (k,)) @ w.T + b)
    # OpenCV ignores transpose (it reads the stored (K, N) blob as (N, K)) and axis != 1
    conv, _ = check_net(tmp_path, lay, x, ["ip"], {"ip": ref}, opencv=axis == 1 and not transpose)
    assert conv.layer("ip").top_shapes[0] == x.shape[:ax] + (6,)


def test_inner_product_legacy_blob_shapes(tmp_path, rng):
    # V1-era blobs: weight (1, 1, N, K), bias (1, 1, 1, N), matched right-aligned
    x = rng.normal(size=(2, 8)).astype(np.float32)
    w = rng.normal(size=(3, 8)).astype(np.float32)
    b = rng.normal(size=3).astype(np.float32)
    lay = [input_layer(x.shape),
           layer("ip", "InnerProduct", "data", blobs=[cw.blob(w, legacy=True),
                                                       cw.blob(b, legacy=True)],
                 inner_product_param={"num_output": 3})]
    check_net(tmp_path, lay, x, ["ip"], {"ip": x @ w.T + b})


@pytest.mark.parametrize("cfg", [
    dict(num_output=6, kernel_size=[3], group=1),
    dict(num_output=6, kernel_size=[3], group=3, pad=[1], stride=[2]),
    dict(num_output=6, kernel_h=3, kernel_w=1, pad_h=1, pad_w=0, stride_h=1, stride_w=2),
    dict(num_output=4, kernel_size=[3], dilation=[2], pad=[2], bias_term=False),
    dict(num_output=6, kernel_size=[3, 2], stride=[2, 1], pad=[0, 1], group=2),
])
def test_convolution(tmp_path, rng, cfg):
    x = rng.normal(size=(2, 6, 9, 8)).astype(np.float32)
    group = cfg.get("group", 1)
    kernel = (cfg["kernel_h"], cfg["kernel_w"]) if "kernel_h" in cfg else \
        tuple(cfg["kernel_size"] * (2 // len(cfg["kernel_size"])))
    w = rng.normal(size=(cfg["num_output"], 6 // group) + kernel).astype(np.float32)
    bias = cfg.get("bias_term", True)
    b = rng.normal(size=cfg["num_output"]).astype(np.float32) if bias else None
    blobs = [w, b] if bias else [w]

    def pair(key, hk, wk, default):
        if hk in cfg:
            return cfg[hk], cfg[wk]
        v = cfg.get(key, [default])
        return (v[0], v[0]) if len(v) == 1 else tuple(v)

    stride, pad = pair("stride", "stride_h", "stride_w", 1), pair("pad", "pad_h", "pad_w", 0)
    dil = pair("dilation", None, None, 1)
    ref = ref_conv(x, w, b, stride, pad, dil, group)
    lay = [input_layer(x.shape), layer("conv", "Convolution", "data", blobs=blobs,
                                       convolution_param=cfg)]
    conv, _ = check_net(tmp_path, lay, x, ["conv"], {"conv": ref})
    assert conv.layer("conv").top_shapes[0] == ref.shape


def test_depthwise_convolution_alias(tmp_path, rng):
    x = rng.normal(size=(1, 4, 5, 5)).astype(np.float32)
    w = rng.normal(size=(4, 1, 3, 3)).astype(np.float32)
    lay = [input_layer(x.shape),
           layer("dw", "ConvolutionDepthwise", "data", blobs=[w],
                 convolution_param={"num_output": 4, "kernel_size": [3], "bias_term": False})]
    check_net(tmp_path, lay, x, ["dw"], {"dw": ref_conv(x, w, None, (1, 1), (0, 0), group=4)},
              opencv=False)


@pytest.mark.parametrize("cfg,cin,h", [
    (dict(num_output=4, kernel_size=[4], stride=[2], pad=[1], group=1), 2, 5),
    (dict(num_output=6, kernel_size=[4], stride=[2], pad=[1], group=3), 3, 5),   # grouped
    (dict(num_output=3, kernel_size=[4], stride=[2], group=3, bias_term=False), 3, 4),  # FCN
    (dict(num_output=4, kernel_size=[3], stride=[3], dilation=[2], group=2), 6, 3),
])
def test_deconvolution_sizes_and_groups(tmp_path, rng, cfg, cin, h):
    x = rng.normal(size=(2, cin, h, h + 1)).astype(np.float32)
    k = cfg["kernel_size"][0]
    w = rng.normal(size=(cin, cfg["num_output"] // cfg["group"], k, k)).astype(np.float32)
    bias = cfg.get("bias_term", True)
    b = rng.normal(size=cfg["num_output"]).astype(np.float32) if bias else None
    s, p, d = cfg["stride"][0], cfg.get("pad", [0])[0], cfg.get("dilation", [1])[0]
    ref = ref_deconv(x, w, b, (s, s), (p, p), (d, d), cfg["group"])
    assert ref.shape[2] == s * (h - 1) + d * (k - 1) + 1 - 2 * p
    lay = [input_layer(x.shape), layer("up", "Deconvolution", "data",
                                       blobs=[w, b] if bias else [w], convolution_param=cfg)]
    # OpenCV's Deconvolution ignores dilation
    conv, _ = check_net(tmp_path, lay, x, ["up"], {"up": ref}, opencv="dilation" not in cfg)
    assert conv.layer("up").caffe_blobs[0] == (cin, cfg["num_output"] // cfg["group"], k, k)


# -- activations and elementwise ---------------------------------------------------------------

def _act_cases(rng):
    x = rng.normal(0, 2, (2, 3, 4, 4)).astype(np.float32)
    slope = rng.uniform(0.1, 0.5, 3).astype(np.float32)
    sp = 1 + np.exp(-np.abs(x))
    return x, [
        (layer("relu", "ReLU", "data"), np.maximum(x, 0), True),
        (layer("leaky", "ReLU", "data", relu_param={"negative_slope": 0.1}),
         np.where(x > 0, x, 0.1 * x), True),
        (layer("prelu", "PReLU", "data", blobs=[slope]),
         np.where(x > 0, x, slope.reshape(1, 3, 1, 1) * x), True),
        (layer("prelu_shared", "PReLU", "data", blobs=[cw.blob(np.array(0.3, np.float32),
                                                              shape=())],
               prelu_param={"channel_shared": True}), np.where(x > 0, x, 0.3 * x), False),
        (layer("elu", "ELU", "data", elu_param={"alpha": 0.7}),
         np.where(x > 0, x, 0.7 * (np.exp(x) - 1)), True),
        (layer("sigmoid", "Sigmoid", "data"), 1 / (1 + np.exp(-x)), True),
        (layer("tanh", "TanH", "data"), np.tanh(x), True),
        (layer("absval", "AbsVal", "data"), np.abs(x), True),
        (layer("bnll", "BNLL", "data"), np.maximum(x, 0) + np.log(sp), True),
        (layer("power", "Power", "data", power_param={"power": 2.0, "scale": 0.5, "shift": 3.0}),
         (3 + 0.5 * x) ** 2, True),
        (layer("exp", "Exp", "data", exp_param={"base": 2.0, "scale": 0.5, "shift": 1.0}),
         2.0 ** (1 + 0.5 * x), False),
        (layer("exp_e", "Exp", "data"), np.exp(x), False),
        (layer("log", "Log", "data", log_param={"base": 10.0, "scale": 2.0, "shift": 20.0}),
         np.log10(20 + 2 * x), False),
        (layer("threshold", "Threshold", "data", threshold_param={"threshold": 0.3}),
         (x > 0.3).astype(np.float32), False),
        (layer("clip", "Clip", "data", clip_param={"min": -1.0, "max": 0.5}),
         np.clip(x, -1, 0.5), False),
        (layer("swish", "Swish", "data", swish_param={"beta": 1.5}),
         x / (1 + np.exp(-1.5 * x)), False),
        (layer("drop", "Dropout", "data", dropout_param={"dropout_ratio": 0.3}), x, True),
        (layer("drop_fork", "Dropout", "data", dropout_param={"dropout_ratio": 0.3,
                                                             "scale_train": False}),
         x * 0.7, False),
    ]


def test_activations_and_elementwise(tmp_path, rng):
    x, cases = _act_cases(rng)
    lay = [input_layer(x.shape)] + [c[0] for c in cases]
    proto, model = write_net(tmp_path, lay)
    conv = convert(proto, model)
    names = [c[0]["name"] for c in cases]
    got = outputs(conv, x, names)
    for (lyr, ref, _), n in zip(cases, names):
        assert_close(got[n], ref, n)
    ocv_names = [c[0]["name"] for c in cases if c[2]]
    ocv_lay = [input_layer(x.shape)] + [c[0] for c in cases if c[2]]
    proto2, model2 = write_net(tmp_path, ocv_lay, name="ocv")
    ocv = opencv_forward(proto2, model2, x, ocv_names)
    for n in ocv_names:
        assert_close(got[n], ocv[n], f"{n} vs OpenCV")


# -- shape ops --------------------------------------------------------------------------------

def test_softmax_over_channels_of_4d(tmp_path, rng):
    x = rng.normal(size=(2, 5, 3, 4)).astype(np.float32)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    lay = [input_layer(x.shape), layer("prob", "Softmax", "data"),
           layer("prob3", "Softmax", "data", softmax_param={"axis": -1})]
    e3 = np.exp(x - x.max(axis=3, keepdims=True))
    check_net(tmp_path, lay, x, ["prob", "prob3"],
              {"prob": e / e.sum(axis=1, keepdims=True), "prob3": e3 / e3.sum(3, keepdims=True)},
              opencv=False)


@pytest.mark.parametrize("axis,end_axis,expected", [(1, -1, (2, 60)), (2, 3, (2, 3, 20)),
                                                    (1, 2, (2, 12, 5)), (0, 1, (6, 4, 5))])
def test_flatten(tmp_path, rng, axis, end_axis, expected):
    x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    lay = [input_layer(x.shape), layer("flat", "Flatten", "data",
                                       flatten_param={"axis": axis, "end_axis": end_axis})]
    conv, _ = check_net(tmp_path, lay, x, ["flat"], {"flat": x.reshape(expected)}, opencv=False)
    assert conv.layer("flat").top_shapes[0] == expected


@pytest.mark.parametrize("dims,axis,num_axes,expected", [
    ([0, -1], 0, -1, (2, 60)),
    ([0, 3, -1], 0, -1, (2, 3, 20)),
    ([-1, 6], 1, 2, (2, 2, 6, 5)),
    ([1, -1], 2, -1, (2, 3, 1, 20)),
    ([5, 4], -3, 2, (2, 3, 5, 4)),
    ([0, 0, 0, 0], 0, -1, (2, 3, 4, 5)),
    ([1], 1, 0, (2, 1, 3, 4, 5)),
])
def test_reshape(tmp_path, rng, dims, axis, num_axes, expected):
    x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    lay = [input_layer(x.shape), layer("rs", "Reshape", "data",
                                       reshape_param={"shape": {"dim": dims}, "axis": axis,
                                                      "num_axes": num_axes})]
    conv, _ = check_net(tmp_path, lay, x, ["rs"], {"rs": x.reshape(expected)}, opencv=False)
    assert conv.layer("rs").top_shapes[0] == expected


@pytest.mark.parametrize("axis,offset", [(2, []), (2, [1]), (2, [2, 1]), (1, [1, 0, 3]),
                                         (3, [2])])
def test_crop(tmp_path, rng, axis, offset):
    x = rng.normal(size=(2, 5, 7, 8)).astype(np.float32)
    ref_shape = (2, 3, 4, 5)
    lay = [input_layer([x.shape, ref_shape], top=["data", "like"]),
           layer("crop", "Crop", ["data", "like"], crop_param={"axis": axis, "offset": offset})]
    idx = []
    for i in range(4):
        if i < axis:
            idx.append(slice(None))
            continue
        o = offset[0] if len(offset) == 1 else (offset[i - axis] if offset else 0)
        idx.append(slice(o, o + ref_shape[i]))
    ref = x[tuple(idx)]
    check_net(tmp_path, lay, {"data": x, "like": np.zeros(ref_shape, np.float32)}, ["crop"],
              {"crop": ref}, opencv=axis == 2)


def test_argmax_reduction_tile_mvn_embed(tmp_path, rng):
    x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    x[0, 0, 0, :2] = 9.0  # a tie: Caffe picks the larger index
    lay = [input_layer(x.shape),
           layer("am", "ArgMax", "data", argmax_param={"top_k": 2}),
           layer("am_val", "ArgMax", "data", argmax_param={"top_k": 1, "out_max_val": True}),
           layer("am_axis", "ArgMax", "data", argmax_param={"axis": 3}),
           layer("red_sum", "Reduction", "data", reduction_param={"axis": 2}),
           layer("red_asum", "Reduction", "data", reduction_param={"operation": "ASUM",
                                                                 "axis": 1, "coeff": 0.5}),
           layer("red_sumsq", "Reduction", "data", reduction_param={"operation": "SUMSQ",
                                                                  "axis": -1}),
           layer("red_mean", "Reduction", "data", reduction_param={"operation": "MEAN",
                                                                 "axis": 1}),
           layer("tile", "Tile", "data", tile_param={"axis": 1, "tiles": 3}),
           layer("mvn", "MVN", "data"),
           layer("mvn_across", "MVN", "data", mvn_param={"across_channels": True,
                                                        "normalize_variance": False})]
    proto, model = write_net(tmp_path, lay)
    conv = convert(proto, model)
    names = [lyr["name"] for lyr in lay[1:]]
    got = outputs(conv, x, names)
    flat = x.reshape(2, -1)
    order = np.argsort(-flat[:, ::-1], axis=1, kind="stable")[:, :2]
    idx = flat.shape[1] - 1 - order
    assert idx[0, 0] == 1  # the tie went to index 1, not 0
    mean = x.mean(axis=(2, 3), keepdims=True)
    std = np.sqrt(((x - mean) ** 2).mean(axis=(2, 3), keepdims=True))
    refs = {
        "am": idx.reshape(2, 1, 2, 1),
        "am_val": np.stack([idx[:, :1], flat.max(1, keepdims=True)], 1).reshape(2, 2, 1, 1),
        "am_axis": (4 - np.argmax(x[..., ::-1], axis=3))[..., None],
        "red_sum": x.sum(axis=(2, 3)),
        "red_asum": 0.5 * np.abs(x).sum(axis=(1, 2, 3)),
        "red_sumsq": (x ** 2).sum(axis=3),
        "red_mean": x.mean(axis=(1, 2, 3)),
        "tile": np.tile(x, (1, 3, 1, 1)),
        "mvn": (x - mean) / (std + 1e-9),
        "mvn_across": x - x.mean(axis=(1, 2, 3), keepdims=True),
    }
    for n in names:
        assert_close(got[n], refs[n], n)
    assert conv.layer("am").top_shapes[0] == (2, 1, 2, 1)


def test_embed(tmp_path, rng):
    idx = np.array([[0, 3, 2], [1, 1, 4]], np.float32)
    w = rng.normal(size=(5, 4)).astype(np.float32)
    b = rng.normal(size=4).astype(np.float32)
    lay = [input_layer(idx.shape),
           layer("emb", "Embed", "data", blobs=[w, b],
                 embed_param={"num_output": 4, "input_dim": 5})]
    check_net(tmp_path, lay, idx, ["emb"], {"emb": w[idx.astype(int)] + b}, opencv=False)


# -- graph: phases, inputs, weight sharing, names -------------------------------------------------

def test_phase_rules(tmp_path):
    lay = [input_layer((1, 2)),
           layer("train_only", "ReLU", "data", top="t", include=[{"phase": "TRAIN"}]),
           layer("test_only", "Sigmoid", "data", top="out", include=[{"phase": "TEST"}]),
           layer("not_deploy", "TanH", "data", top="x", exclude=[{"stage": ["deploy"]}]),
           layer("lvl", "AbsVal", "data", top="y", include=[{"min_level": 1}])]
    proto, model = write_net(tmp_path, lay)
    test = convert(proto, model)
    assert [r.name for r in test.layers] == ["input", "test_only", "not_deploy"]
    deploy = convert(proto, model, stages=["deploy"], level=1)
    assert [r.name for r in deploy.layers] == ["input", "test_only", "lvl"]
    train = convert(proto, model, phase="TRAIN")
    assert [r.name for r in train.layers] == ["input", "train_only", "not_deploy"]


def test_include_and_exclude_together_is_an_error(tmp_path):
    lay = [input_layer((1, 2)),
           layer("bad", "ReLU", "data", include=[{"phase": "TEST"}], exclude=[{"phase": "TRAIN"}])]
    proto, model = write_net(tmp_path, lay)
    with pytest.raises(CaffeConversionError, match="either include rules or exclude rules"):
        convert(proto, model)


def test_train_val_net_with_input_shape(tmp_path, rng):
    w = rng.normal(size=(3, 8)).astype(np.float32)
    lay = [layer("data", "Data", (), top=["data", "label"],
                 transform_param={"scale": 0.00390625, "mean_value": [10.0]},
                 data_param={"source": "x_lmdb", "batch_size": 4}),
           layer("ip", "InnerProduct", "data", blobs=[w], inner_product_param={
               "num_output": 3, "bias_term": False}),
           layer("acc", "Accuracy", ["ip", "label"], include=[{"phase": "TEST"}]),
           layer("loss", "SoftmaxWithLoss", ["ip", "label"])]
    proto, model = write_net(tmp_path, lay)
    with pytest.raises(CaffeConversionError, match="--input-shape"):
        convert(proto, model)
    conv = convert(proto, model, input_shape="4,8")
    assert conv.inputs == [("data", (4, 8))]
    assert conv.layer("acc").status == "dropped"
    assert conv.outputs == [("loss", "loss_output")]
    x = rng.normal(size=(4, 8)).astype(np.float32)
    z = x @ w.T
    e = np.exp(z - z.max(1, keepdims=True))
    assert_close(run(conv, x)["loss_output"], e / e.sum(1, keepdims=True))
    pre = conv.metadata["preprocessing"]
    assert pre["scale"] == pytest.approx(0.00390625) and pre["mean_value"] == [10.0]


def test_label_consumer_is_an_error(tmp_path):
    lay = [layer("data", "Data", (), top=["data", "label"]),
           layer("use", "Eltwise", ["data", "label"])]
    proto, model = write_net(tmp_path, lay)
    with pytest.raises(CaffeConversionError) as err:
        convert(proto, model, input_shape=(1, 3))
    assert "no output" in str(err.value) and "'use' (reads 'label'" in str(err.value)


def test_split_silence_and_net_level_inputs(tmp_path, rng):
    text = """
    name: "t"
    input: "a"
    input_shape { dim: 1 dim: 2 dim: 3 dim: 3 }
    input: "b"
    input_shape { dim: 1 dim: 2 dim: 3 dim: 3 }
    layer { name: "split" type: "Split" bottom: "a" top: "a1" top: "a2" }
    layer { name: "sum" type: "Eltwise" bottom: "a1" bottom: "b" top: "sum" }
    layer { name: "relu" type: "ReLU" bottom: "a2" top: "r" }
    layer { name: "silence" type: "Silence" bottom: "r" }
    """
    conv = convert(text)
    assert conv.inputs == [("a", (1, 2, 3, 3)), ("b", (1, 2, 3, 3))]
    assert conv.layer("split").status == "alias"
    assert conv.layer("silence").status == "dropped"
    assert [b for b, _ in conv.outputs] == ["sum"]  # 'r' is consumed by Silence
    a, b = rng.normal(size=(2, 1, 2, 3, 3)).astype(np.float32)
    assert_close(run(conv, {"a": a, "b": b})["sum_output"], a + b)


def test_weight_sharing_by_param_name(tmp_path, rng):
    w = rng.normal(size=(3, 4)).astype(np.float32)
    spec = [{"name": "shared_w"}]
    lay = [input_layer([(2, 4), (2, 4)], top=["a", "b"]),
           layer("ip_a", "InnerProduct", "a", blobs=[w], param=spec,
                 inner_product_param={"num_output": 3, "bias_term": False}),
           layer("ip_b", "InnerProduct", "b", blobs=[w], param=spec,
                 inner_product_param={"num_output": 3, "bias_term": False})]
    proto, model = write_net(tmp_path, lay)
    conv = convert(proto, model)
    assert list(conv.arg_params) == ["ip_a_weight"]
    a, b = rng.normal(size=(2, 2, 4)).astype(np.float32)
    out = run(conv, {"a": a, "b": b})
    assert_close(out["ip_b_output"], b @ w.T)


def test_names_with_slashes_are_escaped(tmp_path, rng):
    w = rng.normal(size=(2, 3, 1, 1)).astype(np.float32)
    lay = [input_layer((1, 3, 2, 2)),
           layer("conv1/7x7_s2", "Convolution", "data", top="conv1/7x7_s2", blobs=[w],
                 convolution_param={"num_output": 2, "kernel_size": [1], "bias_term": False})]
    proto, model = write_net(tmp_path, lay)
    conv = convert(proto, model)
    path = tmp_path / "out.h5"
    conv.save(path)
    symbol, args, aux, meta = load_converted(path)
    assert list(args) == ["conv1/7x7_s2_weight"]
    assert meta["names"] == {"conv1%2F7x7_s2_weight": "conv1/7x7_s2_weight"}
    import h5py  # noqa: PLC0415
    with h5py.File(path, "r") as f:
        ds = f["arg_params"]["conv1%2F7x7_s2_weight"]
        assert ds.attrs["caffe_layer"] == "conv1/7x7_s2" and ds.attrs["caffe_blob"] == 0
    for name in ["a/b", "a%2Fb", "%", ".", "x__y", "a/b/c"]:
        assert unescape_name(escape_name(name)) == name
        assert "/" not in escape_name(name)
    assert escape_name("a/b") != escape_name("a%2Fb")


def test_duplicate_layer_names_get_unique_nodes(tmp_path, rng):
    lay = [input_layer((1, 2)), layer("act", "ReLU", "data", top="r1"),
           layer("act", "Sigmoid", "r1", top="r2")]
    proto, model = write_net(tmp_path, lay)
    conv = convert(proto, model)
    assert [r.node for r in conv.layers[1:]] == ["act", "act_1"]
    x = rng.normal(size=(1, 2)).astype(np.float32)
    assert_close(run(conv, x)["act_1_output"], 1 / (1 + np.exp(-np.maximum(x, 0))))


# -- rgb -----------------------------------------------------------------------------------------

def test_rgb_swaps_first_conv_and_mean(tmp_path, rng):
    w = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)
    b = rng.normal(size=4).astype(np.float32)
    lay = [input_layer((1, 3, 5, 5)),
           layer("conv", "Convolution", "data", blobs=[w, b],
                 convolution_param={"num_output": 4, "kernel_size": [3]}),
           layer("relu", "ReLU", "conv", top="conv")]
    proto, model = write_net(tmp_path, lay)
    mean = rng.uniform(0, 255, (1, 3, 5, 5)).astype(np.float32)
    mean_path = tmp_path / "mean.binaryproto"
    cw.write_binaryproto(str(mean_path), cw.blob(mean, legacy=True))
    bgr = convert(proto, model, mean=str(mean_path))
    rgb = convert(proto, model, mean=str(mean_path), rgb=True)
    x = rng.uniform(0, 255, (2, 3, 5, 5)).astype(np.float32)
    assert_close(run(rgb, x[:, ::-1])["relu_output"], run(bgr, x)["relu_output"])
    assert np.array_equal(rgb.mean, bgr.mean[::-1])
    assert bgr.metadata["preprocessing"]["channel_order"] == "BGR"
    assert rgb.metadata["preprocessing"]["channel_order"] == "RGB"
    assert rgb.metadata["rgb_swapped_layers"] == ["conv"]
    assert bgr.metadata["preprocessing"]["mean_shape"] == [3, 5, 5]


def test_rgb_refused_where_inexact(tmp_path, rng):
    w = rng.normal(size=(4, 6, 1, 1)).astype(np.float32)
    lay = [input_layer((1, 3, 5, 5)),
           layer("cat", "Concat", ["data", "data"]),
           layer("conv", "Convolution", "cat", blobs=[w],
                 convolution_param={"num_output": 4, "kernel_size": [1], "bias_term": False})]
    proto, model = write_net(tmp_path, lay)
    with pytest.raises(CaffeConversionError, match="Concat reads the input channels"):
        convert(proto, model, rgb=True)
    gray = [input_layer((1, 1, 5, 5)), layer("relu", "ReLU", "data")]
    proto, model = write_net(tmp_path, gray, name="gray")
    with pytest.raises(CaffeConversionError, match="3 channels"):
        convert(proto, model, rgb=True)


# -- bad input: everything listed at once, nothing written ----------------------------------------

def test_all_problems_listed_at_once(tmp_path, rng):
    lay = [input_layer((1, 3, 8, 8)),
           layer("conv", "Convolution", "data", blobs=[rng.normal(size=(4, 3, 3, 3))],
                 convolution_param={"num_output": 4, "kernel_size": [3], "bias_term": False}),
           layer("py", "Python", "conv", python_param={"module": "my_layers", "layer": "Crazy"}),
           layer("stoch", "Pooling", "conv", pooling_param={"pool": "STOCHASTIC",
                                                           "kernel_size": 2}),
           layer("weird", "FancyNorm", "conv"),
           layer("rec", "Recurrent", "conv"),
           layer("after", "ReLU", "py")]
    proto, model = write_net(tmp_path, lay)
    out = tmp_path / "out.h5"
    with pytest.raises(CaffeConversionError) as err:
        conv = convert(proto, model)
        conv.save(out)
    text = str(err.value)
    assert "4 problems" in text
    assert "module 'my_layers'" in text and "Crazy" in text
    assert "STOCHASTIC" in text and "FancyNorm" in text and "Recurrent" in text and \
        "RNN or LSTM" in text
    assert "nothing was written" in text
    assert not out.exists()
    partial = err.value.conversion
    assert partial.layer("after").status == "skipped"
    assert {p.layer for p in partial.unsupported} == {"py", "stoch", "weird", "rec"}
    assert "problem:" in partial.layer_table()
    with pytest.raises(CaffeConversionError):
        partial.save(out)
    assert not out.exists()


def test_caffemodel_from_another_net(tmp_path, rng):
    lay = [input_layer((1, 3, 8, 8)),
           layer("conv1", "Convolution", "data", blobs=[rng.normal(size=(4, 3, 3, 3)),
                                                         rng.normal(size=4)],
                 convolution_param={"num_output": 4, "kernel_size": [3]}),
           layer("conv2", "Convolution", "conv1", blobs=[rng.normal(size=(2, 4, 1, 1)),
                                                          rng.normal(size=2)],
                 convolution_param={"num_output": 2, "kernel_size": [1]}),
           layer("ip", "InnerProduct", "conv2", blobs=[rng.normal(size=(5, 72)),
                                                        rng.normal(size=5)],
                 inner_product_param={"num_output": 5})]
    other = [input_layer((1, 3, 8, 8)),
             layer("conv1", "Convolution", "data", blobs=[rng.normal(size=(8, 3, 3, 3)),
                                                           rng.normal(size=8)]),
             layer("conv2", "Convolution", "conv1", blobs=[rng.normal(size=(2, 4, 1, 1))]),
             layer("fc", "InnerProduct", "conv2", blobs=[rng.normal(size=(5, 72))])]
    proto, _ = write_net(tmp_path, lay)
    _, model = write_net(tmp_path, other, name="other")
    with pytest.raises(CaffeConversionError) as err:
        convert(proto, model)
    text = str(err.value)
    assert "layer 'conv1' (Convolution): weight shapes do not match: blob 0: caffemodel " \
           "(8,3,3,3), prototxt needs (4,3,3,3); blob 1: caffemodel (8), prototxt needs (4)" in text
    assert "layer 'conv2' (Convolution): the caffemodel has 1 blob(s)" in text
    assert "layer 'ip' (InnerProduct): the caffemodel has no weights for this layer" in text
    conv = convert(proto, model, strict=False, allow_missing_weights=True)
    assert {p.layer for p in conv.problems} == {"conv1", "conv2"}
    assert any("fc (InnerProduct)" in w for w in conv.warnings)


def test_save_is_atomic(tmp_path, monkeypatch, rng):
    lay = [input_layer((1, 2)), layer("ip", "InnerProduct", "data", blobs=[rng.normal(size=(3, 2))],
                                      inner_product_param={"num_output": 3, "bias_term": False})]
    proto, model = write_net(tmp_path, lay)
    conv = convert(proto, model)
    out = tmp_path / "model.h5"
    out.write_bytes(b"previous version")
    import h5py  # noqa: PLC0415

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(h5py.Group, "create_dataset", boom)
    with pytest.raises(OSError, match="disk full"):
        conv.save(out)
    assert out.read_bytes() == b"previous version"
    assert sorted(os.listdir(tmp_path)) == ["model.h5", "net.caffemodel", "net.prototxt"]
    monkeypatch.undo()
    conv.save(out)
    symbol, args, aux, meta = load_converted(out)
    assert meta["inputs"] == [{"name": "data", "shape": [1, 2], "free_axes": [],
                               "any_size": False}]
    assert json.loads(json.dumps(meta))["layers"][1]["caffe_name"] == "ip"


def test_structure_only_and_layer_table(tmp_path):
    lay = [input_layer((1, 3, 8, 8)),
           layer("conv", "Convolution", "data", convolution_param={"num_output": 4,
                                                                  "kernel_size": [3]}),
           layer("pool", "Pooling", "conv", pooling_param={"pool": "MAX", "kernel_size": 3,
                                                          "stride": 2})]
    proto, _ = write_net(tmp_path, lay)
    conv = convert(proto)
    assert conv.arg_params == {}
    table = conv.layer_table()
    assert "Convolution  conv" in table and "(4,3,3,3) (4)" in table and "(1,4,3,3)" in table
    assert table.splitlines()[-1].startswith("3 layers (2 converted, 1 input)")
    with pytest.raises(Exception, match="no values"):
        conv.save(tmp_path / "x.h5")


def test_rgb_through_per_channel_normalization_and_inner_product(tmp_path, rng):
    s = rng.uniform(0.5, 2, 3).astype(np.float32)
    b = rng.normal(size=3).astype(np.float32)
    mean, var = rng.normal(size=3).astype(np.float32), rng.uniform(1, 2, 3).astype(np.float32)
    w = rng.normal(size=(5, 12)).astype(np.float32)
    lay = [input_layer((1, 3, 2, 2)),
           layer("bn", "BatchNorm", "data", blobs=[mean, var, [1.0]]),
           layer("sc", "Scale", "bn", blobs=[s, b], scale_param={"bias_term": True}),
           layer("relu", "ReLU", "sc", top="sc"),
           layer("ip", "InnerProduct", "sc", blobs=[w], inner_product_param={
               "num_output": 5, "bias_term": False})]
    proto, model = write_net(tmp_path, lay)
    bgr, rgb = convert(proto, model), convert(proto, model, rgb=True)
    assert rgb.metadata["rgb_swapped_layers"] == ["bn", "sc", "relu", "ip"]
    x = rng.uniform(0, 255, (2, 3, 2, 2)).astype(np.float32)
    assert_close(run(rgb, x[:, ::-1])["ip_output"], run(bgr, x)["ip_output"])


def test_undefined_bottom_and_bad_input_shapes(tmp_path):
    lay = [input_layer((1, 2)), layer("a", "ReLU", "nope")]
    proto, model = write_net(tmp_path, lay)
    with pytest.raises(CaffeConversionError, match="bottom blob 'nope' is not produced"):
        convert(proto, model)
    lay = [input_layer((1, 2)), layer("a", "ReLU", "data")]
    proto, model = write_net(tmp_path, lay, name="ok")
    with pytest.raises(CaffeConversionError, match="'image' , which is not an input|names 'image'"):
        convert(proto, model, input_shape={"image": (1, 2)})
    conv = convert(proto, model, input_shape={"data": (4, 2)})
    assert conv.inputs == [("data", (4, 2))]
    with pytest.raises(Exception, match="list of integers"):
        convert(proto, model, input_shape="1,x")


def test_mean_files_and_values(tmp_path, rng):
    lay = [input_layer((1, 3, 4, 4)), layer("a", "ReLU", "data")]
    proto, model = write_net(tmp_path, lay)
    mean = rng.uniform(0, 255, (3, 6, 6)).astype(np.float32)
    np.save(tmp_path / "mean.npy", mean)
    conv = convert(proto, model, mean=str(tmp_path / "mean.npy"), scale=0.017)
    pre = conv.metadata["preprocessing"]
    assert pre["mean_shape"] == [3, 6, 6] and "crop its centre" in pre["mean_crop"]
    assert pre["mean_per_channel"] == pytest.approx(mean.reshape(3, -1).mean(1))
    assert pre["scale"] == pytest.approx(0.017) and pre["channel_order"] == "BGR"
    path = conv.save(tmp_path / "m.h5")
    assert np.array_equal(load_converted(path)[3]["preprocessing"]["mean_array"], mean)
    values = convert(proto, model, mean=[104, 117, 123]).metadata["preprocessing"]
    assert values["mean_value"] == [104.0, 117.0, 123.0] and values["mean_file"] is None
    with pytest.raises(CaffeConversionError, match="4 channels but input 'data' has 3"):
        convert(proto, model, mean=np.zeros((4, 4, 4)))


@pytest.mark.parametrize("n,k,s,p,d,conv,deconv", [(5, 3, 1, 0, 1, 3, 7), (7, 3, 2, 1, 1, 4, 13),
                                                   (9, 3, 1, 2, 2, 9, 9), (4, 4, 2, 1, 1, 2, 8)])
def test_conv_and_deconv_size_rules(n, k, s, p, d, conv, deconv):
    assert shapes.conv_out(n, k, s, p, d) == conv
    assert shapes.deconv_out(n, k, s, p, d) == deconv


def test_shape_rule_errors_name_the_layer(tmp_path):
    lay = [input_layer([(1, 2, 4, 4), (1, 3, 5, 4)], top=["a", "b"]),
           layer("cat", "Concat", ["a", "b"]),
           layer("crop", "Crop", ["a", "b"], crop_param={"offset": [1]}),
           layer("rs", "Reshape", "a", reshape_param={"shape": {"dim": [3, -1]}}),
           layer("conv", "Convolution", "a", convolution_param={"num_output": 3, "group": 2,
                                                               "kernel_size": [1]}),
           layer("pool", "Pooling", "a", pooling_param={"kernel_size": 2, "pad": 2})]
    proto, _ = write_net(tmp_path, lay)
    with pytest.raises(CaffeConversionError) as err:
        convert(proto)
    text = str(err.value)
    assert "layer 'cat' (Concat): all inputs must have the same shape except on the concat " \
           "axis 1" in text
    assert "layer 'crop' (Crop): invalid crop on axis 2" in text
    assert "layer 'rs' (Reshape): cannot infer the -1 dim" in text
    assert "layer 'conv' (Convolution): number of output channels num_output (3) must be a " \
           "multiple of group (2)" in text
    assert "layer 'pool' (Pooling): pad (2, 2) must be smaller than the kernel (2, 2)" in text
