"""Small Caffe nets for the converter tests, and independent references.

``write_net`` writes a deploy prototxt (the layers without blobs) and a
caffemodel (the same layers with their blobs) through the test writer;
``opencv_forward`` runs them with OpenCV's dnn Caffe importer (fusion off,
OpenCV backend), the independent implementation; the ``ref_*`` functions are
NumPy references written from Caffe's layer code (caffe.md section 2) for the
cases OpenCV does not cover.
"""
import math

import numpy as np

from . import caffe_writer as cw

TOL_RTOL, TOL_ATOL = 1e-4, 1e-5


def assert_close(got, ref, what=""):
    """The issue's tolerance: max|diff| <= 1e-4 * max|ref| + 1e-5."""
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != reference {ref.shape}"
    diff = float(np.abs(got - ref).max()) if ref.size else 0.0
    tol = TOL_RTOL * (float(np.abs(ref).max()) if ref.size else 0.0) + TOL_ATOL
    assert diff <= tol, f"{what}: max|diff| {diff:.3g} > tolerance {tol:.3g}"


def layer(name, type_, bottom=(), top=None, blobs=(), **fields):
    """A V2 layer dict; ``top`` defaults to the layer name."""
    top = [name] if top is None else ([top] if isinstance(top, str) else list(top))
    bottom = [bottom] if isinstance(bottom, str) else list(bottom)
    return cw.v2_layer(name, type_, bottom, top, [np.asarray(b, np.float32) if not isinstance(
        b, dict) else b for b in blobs], **fields)


def input_layer(shape, top="data", name=None):
    tops = [top] if isinstance(top, str) else list(top)
    shapes = [shape] if isinstance(shape[0], int) else list(shape)
    return cw.v2_layer(name or "input", "Input", (), tops,
                       input_param={"shape": [{"dim": list(s)} for s in shapes]})


def write_net(tmp_path, layers, name="net", model_layers=None):
    """Write ``name.prototxt`` (no blobs) and ``name.caffemodel``; returns both paths."""
    proto_layers = [{k: v for k, v in lyr.items() if k != "blobs"} for lyr in layers]
    prototxt = tmp_path / f"{name}.prototxt"
    prototxt.write_text(cw.to_prototxt({"name": name, "layer": proto_layers}))
    model = tmp_path / f"{name}.caffemodel"
    cw.write_caffemodel(str(model), {"name": name, "layer": model_layers if model_layers
                                     is not None else layers})
    return prototxt, model


def opencv_forward(prototxt, model, inputs, names):
    """OpenCV dnn outputs of the given layer names (fusion disabled, OpenCV backend)."""
    import cv2  # noqa: PLC0415
    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(model)) if model is not None else \
        cv2.dnn.readNetFromCaffe(str(prototxt))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    net.enableFusion(False)
    if isinstance(inputs, dict):
        for k, v in inputs.items():
            net.setInput(np.ascontiguousarray(v, np.float32), k)
    else:
        net.setInput(np.ascontiguousarray(inputs, np.float32))
    outs = net.forward(list(names))
    return dict(zip(names, outs))


# -- NumPy references (Caffe's loops) -----------------------------------------------------

def pool_size(n, k, s, p, round_mode="CEIL"):
    num = n + 2 * p - k
    out = (int(math.ceil(num / s)) if round_mode == "CEIL" else num // s) + 1
    if p > 0 and (out - 1) * s >= n + p:
        out -= 1
    return out


def ref_pool(x, kernel, stride, pad, mode="MAX", round_mode="CEIL"):
    """pooling_layer.cpp Forward_cpu, MAX and AVE."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    oh, ow = pool_size(h, kh, sh, ph, round_mode), pool_size(w, kw, sw, pw, round_mode)
    y = np.zeros((n, c, oh, ow), np.float64)
    for i in range(oh):
        for j in range(ow):
            hs, ws = i * sh - ph, j * sw - pw
            if mode == "MAX":
                he, we = min(hs + kh, h), min(ws + kw, w)
                hs, ws = max(hs, 0), max(ws, 0)
                win = x[:, :, hs:he, ws:we]
                y[:, :, i, j] = win.max(axis=(2, 3)) if win.size else -np.finfo(np.float32).max
            else:
                he, we = min(hs + kh, h + ph), min(ws + kw, w + pw)
                size = (he - hs) * (we - ws)
                hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
                y[:, :, i, j] = x[:, :, hs:he, ws:we].sum(axis=(2, 3)) / size
    return y


def ref_lrn_across(x, n, alpha, beta, k):
    c = x.shape[1]
    half = (n - 1) // 2
    sq = np.pad(np.asarray(x, np.float64) ** 2, ((0, 0), (half, half), (0, 0), (0, 0)))
    s = sum(sq[:, i:i + c] for i in range(n))
    return x * (k + alpha / n * s) ** -beta


def ref_lrn_within(x, n, alpha, beta):
    h, w = x.shape[2:]
    half = (n - 1) // 2
    sq = np.pad(np.asarray(x, np.float64) ** 2, ((0, 0), (0, 0), (half, half), (half, half)))
    s = sum(sq[:, :, i:i + h, j:j + w] for i in range(n) for j in range(n))
    return x * (1 + alpha / (n * n) * s) ** -beta


def ref_conv(x, w, b, stride, pad, dilation=(1, 1), group=1):
    n, cin, h, wd = x.shape
    cout, cin_g, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, pad, dilation
    xp = np.pad(np.asarray(x, np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
    ow = (wd + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
    y = np.zeros((n, cout, oh, ow))
    cout_g = cout // group
    for g in range(group):
        for co in range(g * cout_g, (g + 1) * cout_g):
            for ci in range(cin_g):
                for i in range(kh):
                    for j in range(kw):
                        patch = xp[:, g * cin_g + ci, i * dh:i * dh + sh * (oh - 1) + 1:sh,
                                   j * dw:j * dw + sw * (ow - 1) + 1:sw]
                        y[:, co] += patch * w[co, ci, i, j]
    if b is not None:
        y += np.asarray(b).reshape(1, -1, 1, 1)
    return y


def ref_deconv(x, w, b, stride, pad, dilation=(1, 1), group=1):
    """deconv_layer.cpp: weight (C_in, C_out/group, kh, kw); out = s(n-1) + d(k-1) + 1 - 2p."""
    n, cin, h, wd = x.shape
    _, cout_g, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, pad, dilation
    fh, fw = sh * (h - 1) + dh * (kh - 1) + 1, sw * (wd - 1) + dw * (kw - 1) + 1
    full = np.zeros((n, cout_g * group, fh, fw))
    cin_g = cin // group
    for g in range(group):
        for ci in range(g * cin_g, (g + 1) * cin_g):
            for co in range(cout_g):
                for i in range(kh):
                    for j in range(kw):
                        full[:, g * cout_g + co, i * dh:i * dh + sh * (h - 1) + 1:sh,
                             j * dw:j * dw + sw * (wd - 1) + 1:sw] += x[:, ci] * w[ci, co, i, j]
    y = full[:, :, ph:fh - ph, pw:fw - pw]
    if b is not None:
        y = y + np.asarray(b).reshape(1, -1, 1, 1)
    return y
