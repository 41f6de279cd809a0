"""Reorg, Region, BN, SPP, Im2col, Parameter, HDF5Output, RNN, LSTM and PriorBox's offset pairs:
against OpenCV's dnn Caffe importer where it reads the type as the fork or Caffe does (Reorg,
Region, PriorBox), else against float64 loop references written from the C++ sources (BVLC
Caffe's layers, PSPNet's bn_layer.cpp, Darknet's reorg_cpu).
"""
import importlib.util
import math

import numpy as np
import pytest

from deepkit.caffe import convert, convert_record
from deepkit.caffe.layers import UNSUPPORTED_HINTS, supported_types
from deepkit.caffe.verify import resolve_output, run

from .fork_nets import Enum, fork_layer, inputs, write_fork_net
from .nets import assert_close, opencv_forward, ref_pool

HAVE_CV2 = importlib.util.find_spec("cv2") is not None


def ours(tmp_path, layers, x, names, keys="layer"):
    """Convert and run; the outputs of the named layers (or blobs), and the record."""
    proto, weights = write_fork_net(tmp_path, layers)
    record = convert_record(proto, weights)
    assert not record.problems, record.problems
    resolved = {n: resolve_output(record, n, keys)[0] for n in names}
    values = run(record, x, outputs=list(dict.fromkeys(resolved.values())))
    return {n: values[resolved[n]] for n in names}, proto, weights, record


def problem_of(tmp_path, layers):
    """The conversion's problems as text: ``layer: message | ...``."""
    proto, weights = write_fork_net(tmp_path, layers)
    record = convert_record(proto, weights, strict=False)
    assert record.problems, "expected a conversion problem"
    return " | ".join(f"{p.layer}: {p.message}" for p in record.problems)


def test_converted_types_are_no_longer_refused():
    for t in ("Reorg", "Region", "BN", "SPP", "Im2col", "RNN", "LSTM", "Parameter",
              "HDF5Output"):
        assert t in supported_types() and t not in UNSUPPORTED_HINTS
    assert "Recurrent" in UNSUPPORTED_HINTS


# -- Reorg ---------------------------------------------------------------------------------------

def reorg_ref(x, s, reverse=False):
    """Darknet's reorg_cpu(x, w, h, c, batch, stride, forward=reverse), element by element."""
    n, c, h, w = x.shape
    src = x.reshape(-1)
    out = np.zeros(x.size)
    out_c = c // (s * s)
    for b in range(n):
        for k in range(c):
            for j in range(h):
                for i in range(w):
                    in_index = i + w * (j + h * (k + c * b))
                    c2, offset = k % out_c, k // out_c
                    w2, h2 = i * s + offset % s, j * s + offset // s
                    out_index = w2 + w * s * (h2 + h * s * (c2 + out_c * b))
                    if reverse:
                        out[out_index] = src[in_index]
                    else:
                        out[in_index] = src[out_index]
    if reverse:
        return out.reshape(n, out_c, h * s, w * s)
    return out.reshape(n, c * s * s, h // s, w // s)


@pytest.mark.parametrize("shape,param", [((1, 8, 4, 6), {"stride": 2}),
                                         ((2, 18, 6, 9), {"reorg_stride": 3}),
                                         ((1, 4, 2, 2), {})])
def test_reorg_matches_opencv_and_darknet(tmp_path, rng, shape, param):
    x = rng.normal(size=shape).astype(np.float32)
    lay = inputs(data=shape) + [fork_layer("r", "Reorg", "data", reorg_param=param)]
    got, proto, _, _ = ours(tmp_path, lay, x, ["r"])
    s = next(iter(param.values()), 2)
    assert_close(got["r"], reorg_ref(x.astype(np.float64), s), "Reorg vs Darknet's reorg_cpu")
    if HAVE_CV2:
        assert_close(got["r"], opencv_forward(proto, None, x, ["r"])["r"], "Reorg vs OpenCV")


def test_reorg_reverse_as_the_forks(tmp_path, rng):
    x = rng.normal(size=(2, 8, 3, 2)).astype(np.float32)
    lay = inputs(data=x.shape) + [fork_layer("r", "Reorg", "data",
                                             reorg_param={"stride": 2, "reverse": True})]
    got, *_ = ours(tmp_path, lay, x, ["r"])
    assert_close(got["r"], reorg_ref(x.astype(np.float64), 2, reverse=True), "reverse Reorg")


def test_reorg_shape_errors_name_the_layer(tmp_path):
    lay = inputs(data=(1, 6, 4, 4)) + [fork_layer("r", "Reorg", "data",
                                                  reorg_param={"stride": 2})]
    assert "r: Reorg with stride 2 needs C divisible by stride^2" in problem_of(tmp_path, lay)


# -- Region --------------------------------------------------------------------------------------

def _region_layers(shape, classes, anchors, extra=None, image=None, blob=True, nchw=False):
    num = len(anchors) // 2
    param = {"classes": classes, "coords": 4, "softmax": 1}  # OpenCV reads fork booleans as 1
    if blob:
        param["anchors"] = num  # OpenCV: the count; the values come from the caffemodel blob
    else:
        param["biases"] = list(anchors)
    param.update(extra or {})
    bottoms = ["data"] + (["img"] if image else [])
    shapes = {"data": shape, **({"img": image} if image else {})}
    return inputs(**shapes) + [fork_layer("region", "Region", bottoms, region_param=param,
                                          blobs=[np.asarray(anchors)] if blob else ())]


REGION_CASES = [
    ((1, 4, 5, 2 * 8), 3, [1.08, 1.19, 3.42, 4.41], {}, None),
    ((1, 3, 3, 3 * 7), 2, [0.5, 0.7, 2.0, 1.5, 1.2, 3.1], {"thresh": 0.1, "nms_threshold": 0.3},
     (1, 3, 96, 64)),
    ((1, 4, 4, 1 * 6), 1, [2.0, 2.0], {"nms_threshold": 0.0}, None),
    ((2, 3, 2, 2 * 8), 3, [1.0, 3.0, 2.5, 0.5], {"softmax": 0, "logistic": 1}, None),
]


@pytest.mark.skipif(not HAVE_CV2, reason="needs OpenCV")
@pytest.mark.parametrize("shape,classes,anchors,extra,image", REGION_CASES)
def test_region_matches_opencv(tmp_path, rng, shape, classes, anchors, extra, image):
    x = {"data": rng.normal(0, 2, size=shape).astype(np.float32)}
    if image:
        x["img"] = np.zeros(image, np.float32)
    lay = _region_layers(shape, classes, anchors, extra, image)
    got, proto, weights, _ = ours(tmp_path, lay, x, ["region"])
    ref = opencv_forward(proto, weights, x, ["region"])["region"]
    rows = shape[1] * shape[2] * len(anchors) // 2
    assert got["region"].shape == ((rows,) if shape[0] == 1 else (shape[0], rows)) + (5 + classes,)
    assert_close(got["region"], ref, "Region vs OpenCV")


@pytest.mark.skipif(not HAVE_CV2, reason="needs OpenCV")
def test_region_on_nchw_predictions_with_biases(tmp_path, rng):
    # the forks feed the convolution's NCHW output; OpenCV needs it permuted to NHWC first
    shape, anchors = (1, 2 * 7, 3, 5), [1.5, 2.5, 3.0, 1.0]
    x = rng.normal(0, 2, size=shape).astype(np.float32)
    got, *_ = ours(tmp_path, _region_layers(shape, 2, anchors, blob=False), x, ["region"])
    nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    (tmp_path / "cv").mkdir()
    _, proto, weights, _ = ours(tmp_path / "cv", _region_layers(nhwc.shape, 2, anchors), nhwc,
                                ["region"])
    assert_close(got["region"], opencv_forward(proto, weights, nhwc, ["region"])["region"],
                 "NCHW Region vs OpenCV on the permuted input")


def test_region_needs_anchor_values(tmp_path):
    lay = inputs(data=(1, 2, 2, 12)) + [fork_layer("region", "Region", "data", region_param={
        "classes": 1, "num": 2, "softmax": True})]
    assert "Region needs the anchor sizes" in problem_of(tmp_path, lay)


def test_region_refuses_gradients():
    from deepkit_engine import autograd, nd  # noqa: PLC0415
    x = nd.array(np.zeros((1, 2, 2, 6), np.float32))
    x.attach_grad()
    with autograd.record():
        out = nd.YoloRegion(x, anchors="(1.0, 1.0)", classes=1)
    with pytest.raises(Exception, match="YoloRegion .* is inference-only"):
        out.backward()


# -- BN (PSPNet) ---------------------------------------------------------------------------------

def bn_ref(x, scale, shift, mean, var, eps):
    """PSPNet's BNLayer::Forward_cpu in TEST: subtract mean, divide by sqrt(var + eps), scale,
    shift; per element."""
    out = np.empty_like(x)
    n, c = x.shape[:2]
    for b in range(n):
        for k in range(c):
            out[b, k] = (x[b, k] - mean[k]) / math.sqrt(var[k] + eps) * scale[k] + shift[k]
    return out


@pytest.mark.parametrize("eps,blob_shape", [(None, (1, 4, 1, 1)), (1e-3, (1, 4))])
def test_bn_as_pspnet(tmp_path, rng, eps, blob_shape):
    x = rng.normal(size=(2, 4, 3, 5)).astype(np.float32)
    scale, shift, mean = (rng.normal(size=4).astype(np.float32) for _ in range(3))
    var = rng.uniform(0.1, 2.0, 4).astype(np.float32)
    blobs = [v.reshape(blob_shape) for v in (scale, shift, mean, var)]
    lay = inputs(data=x.shape) + [fork_layer("bn", "BN", "data", blobs=blobs,
                                             **({"bn_param": {"eps": eps}} if eps else {}))]
    got, *_ = ours(tmp_path, lay, x, ["bn"])
    ref = bn_ref(x.astype(np.float64), scale, shift, mean, var, eps or 1e-5)
    assert_close(got["bn"], ref, "BN vs PSPNet's bn_layer")


def test_bn_without_statistics_is_refused(tmp_path):
    lay = inputs(data=(1, 3, 2, 2)) + [fork_layer("bn", "BN", "data",
                                                  blobs=[np.ones((1, 3, 1, 1))] * 2)]
    assert "bn: this BN layer has no stored mean and variance" in problem_of(tmp_path, lay)


# -- SPP -----------------------------------------------------------------------------------------

def spp_ref(x, pyramid_height, pool):
    """BVLC's SPPLayer: per level 2^l bins, kernel ceil(H / bins), pad (k * bins - H + 1) / 2,
    stride the kernel; Caffe's pooling; flattened and concatenated (one level: not flattened)."""
    n, _, h, w = x.shape
    outs = []
    for level in range(pyramid_height):
        bins = 2 ** level
        kh, kw = math.ceil(h / bins), math.ceil(w / bins)
        ph, pw = (kh * bins - h + 1) // 2, (kw * bins - w + 1) // 2
        pooled = ref_pool(x, (kh, kw), (kh, kw), (ph, pw), pool)
        if pyramid_height == 1:
            return pooled
        outs.append(pooled.reshape(n, -1))
    return np.concatenate(outs, axis=1)


@pytest.mark.parametrize("shape,height,pool", [((2, 3, 7, 9), 3, "MAX"), ((1, 2, 6, 5), 2, "AVE"),
                                               ((1, 2, 5, 4), 1, "AVE"), ((1, 1, 8, 8), 4, "MAX")])
def test_spp_as_caffe(tmp_path, rng, shape, height, pool):
    x = rng.normal(size=shape).astype(np.float32)
    lay = inputs(data=shape) + [fork_layer("spp", "SPP", "data", spp_param={
        "pyramid_height": height, "pool": Enum(pool)})]
    got, *_ = ours(tmp_path, lay, x, ["spp"])
    assert_close(got["spp"], spp_ref(x.astype(np.float64), height, pool), "SPP vs Caffe")


def test_spp_pad_not_below_kernel_is_refused(tmp_path):
    # 5 rows in 4 bins: kernel 2, pad (8 - 5 + 1) / 2 = 2, which Caffe's pooling refuses
    lay = inputs(data=(1, 1, 5, 8)) + [fork_layer("spp", "SPP", "data",
                                                  spp_param={"pyramid_height": 3})]
    assert "gives pad 2 >= kernel 2" in problem_of(tmp_path, lay)


# -- Im2col --------------------------------------------------------------------------------------

def im2col_ref(x, kernel, stride, pad, dilation):
    """BVLC's im2col_cpu per image: row c * kh * kw + i * kw + j, zero outside the input."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, pad, dilation
    oh = (h + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
    ow = (w + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
    out = np.zeros((n, c * kh * kw, oh, ow))
    for b in range(n):
        for ch in range(c):
            for i in range(kh):
                for j in range(kw):
                    row = (ch * kh + i) * kw + j
                    for y in range(oh):
                        for xx in range(ow):
                            r, q = y * sh - ph + i * dh, xx * sw - pw + j * dw
                            if 0 <= r < h and 0 <= q < w:
                                out[b, row, y, xx] = x[b, ch, r, q]
    return out


@pytest.mark.parametrize("param,geometry", [
    ({"kernel_size": 3}, ((3, 3), (1, 1), (0, 0), (1, 1))),
    ({"kernel_h": 2, "kernel_w": 3, "stride": 2, "pad": 1}, ((2, 3), (2, 2), (1, 1), (1, 1))),
    ({"kernel_size": 2, "dilation": 2, "pad_h": 2, "pad_w": 0, "stride_h": 1, "stride_w": 3},
     ((2, 2), (1, 3), (2, 0), (2, 2))),
])
def test_im2col_as_caffe(tmp_path, rng, param, geometry):
    x = rng.normal(size=(2, 3, 6, 7)).astype(np.float32)
    lay = inputs(data=x.shape) + [fork_layer("col", "Im2col", "data", convolution_param=param)]
    got, *_ = ours(tmp_path, lay, x, ["col"])
    assert_close(got["col"], im2col_ref(x.astype(np.float64), *geometry), "Im2col vs Caffe")


# -- Parameter and HDF5Output --------------------------------------------------------------------

def test_parameter_emits_its_blob(tmp_path, rng):
    value = rng.normal(size=(2, 3)).astype(np.float32)
    x = rng.normal(size=(2, 3)).astype(np.float32)
    lay = inputs(data=(2, 3)) + [
        fork_layer("p", "Parameter", parameter_param={"shape": {"dim": [2, 3]}}, blobs=[value]),
        fork_layer("sum", "Eltwise", ["data", "p"])]
    got, _, _, record = ours(tmp_path, lay, x, ["sum"])
    assert_close(got["sum"], x.astype(np.float64) + value, "data + Parameter blob")
    assert [p.shape for p in record.params.values()] == [(2, 3)]


def test_hdf5_output_is_dropped_and_its_bottoms_stay_outputs(tmp_path, rng):
    x = rng.normal(size=(1, 2, 3, 3)).astype(np.float32)
    lay = inputs(data=x.shape) + [
        fork_layer("relu", "ReLU", "data"),
        fork_layer("out", "HDF5Output", ["relu"], top=[],
                   hdf5_output_param={"file_name": "out.h5"})]
    got, _, _, record = ours(tmp_path, lay, x, ["relu"])
    assert_close(got["relu"], np.maximum(x, 0), "ReLU before HDF5Output")
    assert [name for name, _ in record.outputs] == ["relu"]
    rec = next(r for r in record.layers if r.name == "out")
    assert rec.status == "dropped" and "writes its bottoms to a file" in rec.note
    assert any("HDF5Output layer 'out' dropped" in w for w in record.warnings)


# -- PriorBox offset pairs -----------------------------------------------------------------------

@pytest.mark.skipif(not HAVE_CV2, reason="needs OpenCV")
@pytest.mark.parametrize("params", [
    dict(min_size=[8.0], max_size=[16.0], aspect_ratio=[2.0], offset_h=[0.2], offset_w=[0.7],
         variance=[0.1, 0.1, 0.2, 0.2], clip=False),
    dict(width=[10.0, 20.5], height=[15.0, 8.0], offset_h=[0.0, 0.5], offset_w=[0.5, 0.0],
         step=10.0, clip=True, variance=[0.1]),
    dict(min_size=[12.0], aspect_ratio=[3.0], flip=True, offset_h=[0.25, 0.75],
         offset_w=[0.25, 0.75], step_h=8.0, step_w=12.0, clip=False, variance=[0.2]),
])
def test_prior_box_offset_pairs_match_opencv(tmp_path, params):
    feat, img = np.zeros((1, 4, 3, 5), np.float32), np.zeros((1, 3, 30, 50), np.float32)
    lay = inputs(feat=feat.shape, img=img.shape) + [
        fork_layer("pb", "PriorBox", ["feat", "img"], prior_box_param=params)]
    x = {"feat": feat, "img": img}
    got, proto, _, _ = ours(tmp_path, lay, x, ["pb"])
    assert_close(got["pb"], opencv_forward(proto, None, x, ["pb"])["pb"], "PriorBox vs OpenCV")


def test_prior_box_three_offset_pairs_are_refused(tmp_path):
    lay = inputs(feat=(1, 4, 3, 5), img=(1, 3, 30, 50)) + [fork_layer(
        "pb", "PriorBox", ["feat", "img"], prior_box_param={
            "min_size": [8.0], "offset_h": [0.1, 0.5, 0.9], "offset_w": [0.1, 0.5, 0.9]})]
    assert "pb: prior_box_param with 3 offset_h/offset_w pairs" in problem_of(tmp_path, lay)


# -- RNN and LSTM --------------------------------------------------------------------------------

def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def lstm_ref(x, cont, w_xc, b_c, w_hc, x_static=None, w_static=None, h0=None, c0=None):
    """BVLC's unrolled LSTM in float64: gates i, f, o, g (LSTMUnit), cont resets the state."""
    t_steps, n = x.shape[:2]
    hidden = w_hc.shape[1]
    xs = x.reshape(t_steps, n, -1) @ w_xc.T + b_c
    static = 0.0 if x_static is None else x_static.reshape(n, -1) @ w_static.T
    h = np.zeros((n, hidden)) if h0 is None else h0.reshape(n, hidden)
    c = np.zeros((n, hidden)) if c0 is None else c0.reshape(n, hidden)
    out = []
    for t in range(t_steps):
        ct = cont[t][:, None]
        gates = (ct * h) @ w_hc.T + xs[t] + static
        i, f, o, g = (gates[:, k * hidden:(k + 1) * hidden] for k in range(4))
        i, f, o, g = _sigmoid(i), ct * _sigmoid(f), _sigmoid(o), np.tanh(g)
        c = f * c + i * g
        h = o * np.tanh(c)
        out.append(h)
    return np.stack(out), h[None], c[None]


def rnn_ref(x, cont, w_xh, b_h, w_hh, w_ho, b_o, x_static=None, w_static=None, h0=None):
    """BVLC's unrolled RNN in float64: h_t = tanh(W_hh (cont_t h_{t-1}) + W_xh x_t + b_h),
    o_t = tanh(W_ho h_t + b_o)."""
    t_steps, n = x.shape[:2]
    hidden = w_hh.shape[0]
    xs = x.reshape(t_steps, n, -1) @ w_xh.T + b_h
    static = 0.0 if x_static is None else x_static.reshape(n, -1) @ w_static.T
    h = np.zeros((n, hidden)) if h0 is None else h0.reshape(n, hidden)
    out = []
    for t in range(t_steps):
        h = np.tanh((cont[t][:, None] * h) @ w_hh.T + xs[t] + static)
        out.append(np.tanh(h @ w_ho.T + b_o))
    return np.stack(out), h[None]


def _cont(t_steps, n):
    cont = np.ones((t_steps, n), np.float32)
    cont[0] = 0
    cont[3, 0] = 0  # a new sequence in stream 0 mid-batch
    cont[2, 1] = 0
    return cont


@pytest.mark.parametrize("static,expose", [(False, False), (True, False), (False, True),
                                           (True, True)])
def test_lstm_as_caffe_unrolled(tmp_path, rng, static, expose):
    t_steps, n, hidden = 5, 2, 3
    x = rng.normal(size=(t_steps, n, 2, 2)).astype(np.float32)
    cont = _cont(t_steps, n)
    w_xc = rng.normal(0, 0.5, (4 * hidden, 4)).astype(np.float32)
    b_c = rng.normal(0, 0.5, 4 * hidden).astype(np.float32)
    w_hc = rng.normal(0, 0.5, (4 * hidden, hidden)).astype(np.float32)
    feeds = {"x": x, "cont": cont}
    blobs, bottoms, extra = [w_xc, b_c], ["x", "cont"], {}
    if static:
        feeds["xs"] = rng.normal(size=(n, 5)).astype(np.float32)
        extra["w_static"] = rng.normal(0, 0.5, (4 * hidden, 5)).astype(np.float32)
        extra["x_static"] = feeds["xs"]
        blobs.append(extra["w_static"])
        bottoms.append("xs")
    blobs.append(w_hc)
    tops = ["h"]
    if expose:
        for name in ("h0", "c0"):
            feeds[name] = rng.normal(size=(1, n, hidden)).astype(np.float32)
            extra[name] = feeds[name]
            bottoms.append(name)
        tops += ["hT", "cT"]
    lay = inputs(**{k: v.shape for k, v in feeds.items()}) + [
        fork_layer("lstm", "LSTM", bottoms, top=tops, blobs=blobs,
                   recurrent_param={"num_output": hidden, "expose_hidden": expose})]
    got, *_ = ours(tmp_path, lay, feeds, tops, keys="blob")
    ref = lstm_ref(*(a.astype(np.float64) for a in (x, cont, w_xc, b_c, w_hc)),
                   **{k: v.astype(np.float64) for k, v in extra.items()})
    for name, value in zip(tops, ref):
        assert_close(got[name], value, f"LSTM {name} vs the unrolled float64 reference")


@pytest.mark.parametrize("static,expose", [(False, False), (True, True)])
def test_rnn_as_caffe_unrolled(tmp_path, rng, static, expose):
    t_steps, n, hidden = 6, 2, 4
    x = rng.normal(size=(t_steps, n, 3)).astype(np.float32)
    cont = _cont(t_steps, n)
    w = {k: rng.normal(0, 0.5, s).astype(np.float32) for k, s in (
        ("w_xh", (hidden, 3)), ("b_h", (hidden,)), ("w_hh", (hidden, hidden)),
        ("w_ho", (hidden, hidden)), ("b_o", (hidden,)), ("w_static", (hidden, 2)))}
    feeds = {"x": x, "cont": cont}
    bottoms, extra = ["x", "cont"], {}
    blobs = [w["w_xh"], w["b_h"]]
    if static:
        feeds["xs"] = rng.normal(size=(n, 2)).astype(np.float32)
        bottoms.append("xs")
        blobs.append(w["w_static"])
        extra.update(x_static=feeds["xs"], w_static=w["w_static"])
    blobs += [w["w_hh"], w["w_ho"], w["b_o"]]
    tops = ["o"]
    if expose:
        feeds["h0"] = rng.normal(size=(1, n, hidden)).astype(np.float32)
        bottoms.append("h0")
        extra["h0"] = feeds["h0"]
        tops.append("hT")
    lay = inputs(**{k: v.shape for k, v in feeds.items()}) + [
        fork_layer("rnn", "RNN", bottoms, top=tops, blobs=blobs,
                   recurrent_param={"num_output": hidden, "expose_hidden": expose})]
    got, *_ = ours(tmp_path, lay, feeds, tops, keys="blob")
    ref = rnn_ref(x.astype(np.float64), cont.astype(np.float64),
                  *(w[k].astype(np.float64) for k in ("w_xh", "b_h", "w_hh", "w_ho", "b_o")),
                  **{k: v.astype(np.float64) for k, v in extra.items()})
    for name, value in zip(tops, ref):
        assert_close(got[name], value, f"RNN {name} vs the unrolled float64 reference")


def test_recurrent_shape_errors_name_the_bottom(tmp_path):
    lay = inputs(x=(4, 2, 3), cont=(4, 3)) + [fork_layer(
        "lstm", "LSTM", ["x", "cont"], recurrent_param={"num_output": 2})]
    assert "lstm: bottom[1] (cont) must be (#timesteps, #streams) = (4, 2)" in \
        problem_of(tmp_path, lay)


def test_recurrent_base_type_says_what_to_use(tmp_path):
    lay = inputs(x=(4, 2, 3), cont=(4, 2)) + [fork_layer("r", "Recurrent", ["x", "cont"])]
    proto, _ = write_fork_net(tmp_path, lay)
    with pytest.raises(Exception, match="use type RNN or LSTM"):
        convert(proto)


def test_state_and_phase_differences_are_warned(tmp_path):
    lay = inputs(x=(2, 1, 3), cont=(2, 1), data=(1, 2, 1, 1)) + [
        fork_layer("lstm", "LSTM", ["x", "cont"], recurrent_param={"num_output": 2}),
        fork_layer("bn", "BN", "data", blobs=[np.ones((1, 2, 1, 1))] * 4)]
    proto, weights = write_fork_net(tmp_path, lay)
    test = convert_record(proto, weights, allow_missing_weights=True)
    assert any("LSTM 'lstm': Caffe carries the last hidden state over" in w
               for w in test.warnings)
    train = convert_record(proto, weights, phase="TRAIN", allow_missing_weights=True)
    assert any("BN 'bn': in phase TRAIN the fork normalizes with batch statistics" in w
               for w in train.warnings)
    assert not any("BN 'bn'" in w for w in test.warnings)
