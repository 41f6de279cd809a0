"""Winograd F(4x4, 3x3) convolutions: each transform as written against its matrix (float64),
and the compiled forward, data gradient and weight gradient against the float64
convolution, directly and through the Convolution and Deconvolution ops."""
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from deepkit_engine import threads
from deepkit_engine.ops import convolution, winograd
from deepkit_engine.ops.registry import get_op

HAS_NUMBA = importlib.util.find_spec("numba") is not None
needs_numba = pytest.mark.skipif(not HAS_NUMBA,
                                 reason="numba is not installed (pip install 'deepkit[fast]')")

F32 = np.float32

# Lavin and Gray's F(4x4, 3x3) matrices (interpolation points 0, 1, -1, 2, -2, infinity)
BT = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
               [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], float)
G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]])
AT = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
               [0, 1, -1, 8, -8, 1]], float)


def _conv_reference(x, w, pad):
    """float64 cross-correlation of (N, C, H, W) with (F, C, 3, 3), zero padding ``pad``."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    ho, wo = xp.shape[2] - 2, xp.shape[3] - 2
    out = np.zeros((x.shape[0], w.shape[0], ho, wo))
    for i in range(3):
        for j in range(3):
            out += np.einsum("nchw,fc->nfhw", xp[:, :, i:i + ho, j:j + wo], w[:, :, i, j])
    return out


def _grads_reference(x, w, g, pad):
    """float64 data and weight gradients of ``sum(g * conv(x, w))``."""
    x64, w64, g64 = (a.astype(np.float64) for a in (x, w, g))
    n, c, h, wd = x.shape
    ho, wo = g.shape[2:]
    dxp = np.zeros((n, c, h + 2 * pad[0], wd + 2 * pad[1]))
    xp = np.pad(x64, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    dw = np.zeros(w.shape)
    for i in range(3):
        for j in range(3):
            dxp[:, :, i:i + ho, j:j + wo] += np.einsum("nfhw,fc->nchw", g64, w64[:, :, i, j])
            dw[:, :, i, j] = np.einsum("nfhw,nchw->fc", g64, xp[:, :, i:i + ho, j:j + wo])
    return dxp[:, :, pad[0]:pad[0] + h, pad[1]:pad[1] + wd], dw


def _tiles_of(a, size, step, count_h, count_w):
    """(count_h, count_w, size, size) windows of a 2-D array, ``step`` apart."""
    return np.array([[a[step * i:step * i + size, step * j:step * j + size]
                      for j in range(count_w)] for i in range(count_h)])


# -- the transforms as written (plain Python, tiny arrays) -------------------------------------

def test_the_matrices_compute_a_3x3_correlation():
    rng = np.random.default_rng(0)
    d, g = rng.normal(size=(6, 6)), rng.normal(size=(3, 3))
    got = AT @ ((G @ g @ G.T) * (BT @ d @ BT.T)) @ AT.T
    want = [[np.sum(d[i:i + 3, j:j + 3] * g) for j in range(4)] for i in range(4)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("flipped", [False, True])
def test_weight_tiles_as_written(flipped):
    rng = np.random.default_rng(1)
    w = rng.normal(size=(3, 2, 3, 3)).astype(F32)
    u = np.full((36, 2, 3) if flipped else (36, 3, 2), 7.0, F32)
    rows = u.shape[1]
    winograd.weight_tiles(w, flipped, 1, rows, u)
    for r in range(1, rows):
        for s in range(u.shape[2]):
            g = w[s, r, ::-1, ::-1] if flipped else w[r, s]
            np.testing.assert_allclose(u[:, r, s].reshape(6, 6), G @ g @ G.T, rtol=1e-6,
                                       atol=1e-6)
    assert np.all(u[:, 0] == 7.0)  # rows outside r0:r1 untouched


def test_weight_from_tiles_is_the_adjoint():
    rng = np.random.default_rng(2)
    du = rng.normal(size=(36, 3, 2)).astype(F32)
    out = np.full((3, 2, 3, 3), 7.0, F32)
    winograd.weight_from_tiles(du, 1, 3, out)
    for f in range(1, 3):
        for c in range(2):
            np.testing.assert_allclose(out[f, c], G.T @ du[:, f, c].reshape(6, 6) @ G,
                                       rtol=1e-5, atol=1e-5)
    assert np.all(out[0] == 7.0)


@pytest.mark.parametrize("pad", [(1, 1), (0, 2), (2, 0)])
def test_input_tiles_as_written(pad):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 2, 5, 6)).astype(F32)
    ho, wo = 5 + 2 * pad[0] - 2, 6 + 2 * pad[1] - 2
    th, tw = -(-ho // 4), -(-wo // 4)
    v = np.full((36, 2, 2 * th * tw), 7.0, F32)
    winograd.input_tiles(x, pad[0], pad[1], np.zeros((4 * th + 2, 4 * tw + 2), F32), v)
    for n in range(2):
        for c in range(2):
            plane = np.zeros((4 * th + 2, 4 * tw + 2))
            plane[pad[0]:pad[0] + 5, pad[1]:pad[1] + 6] = x[n, c]
            tiles = _tiles_of(plane, 6, 4, th, tw)
            for p, d in enumerate(tiles.reshape(-1, 6, 6)):
                np.testing.assert_allclose(v[:, c, n * th * tw + p].reshape(6, 6),
                                           BT @ d @ BT.T, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("accumulate", [False, True])
def test_output_tiles_as_written(accumulate):
    rng = np.random.default_rng(4)
    out_shape = (2, 3, 5, 7)
    th, tw = 2, 2
    m = rng.normal(size=(36, 3, 2 * th * tw)).astype(F32)
    bias = rng.normal(size=3).astype(F32)
    start = rng.normal(size=out_shape).astype(F32)
    out = start.copy()
    winograd.output_tiles(m, np.zeros((4 * th, 4 * tw), F32), bias, accumulate, out)
    for n in range(2):
        for f in range(3):
            plane = np.zeros((4 * th, 4 * tw))
            for p in range(th * tw):
                ty, tx = divmod(p, tw)
                block = AT @ m[:, f, n * th * tw + p].reshape(6, 6).astype(float) @ AT.T
                plane[4 * ty:4 * ty + 4, 4 * tx:4 * tx + 4] = block
            want = plane[:5, :7] + bias[f] + (start[n, f] if accumulate else 0)
            np.testing.assert_allclose(out[n, f], want, rtol=1e-5, atol=1e-4)


def test_grad_tiles_as_written():
    rng = np.random.default_rng(5)
    g = rng.normal(size=(2, 2, 5, 7)).astype(F32)
    th, tw = 2, 2
    dm = np.full((36, 2, 2 * th * tw), 7.0, F32)
    winograd.grad_tiles(g, np.zeros((4 * th, 4 * tw), F32), dm)
    for n in range(2):
        for f in range(2):
            plane = np.zeros((4 * th, 4 * tw))
            plane[:5, :7] = g[n, f]
            for p, e in enumerate(_tiles_of(plane, 4, 4, th, tw).reshape(-1, 4, 4)):
                np.testing.assert_allclose(dm[:, f, n * th * tw + p].reshape(6, 6),
                                           AT.T @ e @ AT, rtol=1e-5, atol=1e-4)


# -- the compiled convolution -----------------------------------------------------------------

SHAPES = [  # (N, C, F, H, W, pad)
    (2, 16, 24, 7, 8, (1, 1)),
    (3, 16, 16, 5, 5, (0, 2)),
    (1, 32, 16, 4, 4, (2, 1)),
    (5, 17, 19, 9, 6, (1, 0)),
]


def _data(shape, seed=0):
    n, c, f, h, w, pad = shape
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, c, h, w)).astype(F32)
    weight = rng.normal(size=(f, c, 3, 3)).astype(F32)
    ho, wo = h + 2 * pad[0] - 2, w + 2 * pad[1] - 2
    return x, weight, rng.normal(size=(n, f, ho, wo)).astype(F32), rng.normal(size=f).astype(F32)


def _close(got, want):
    """F(4, 3) in float32: within 1e-5 of the largest value (im2col: about 1e-6)."""
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())


@needs_numba
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("req", ["write", "add"])
def test_forward_and_gradients_match_the_float64_convolution(shape, req):
    x, w, g, bias = _data(shape)
    pad = shape[-1]
    start = (np.ones if req == "add" else np.zeros)
    want = _conv_reference(x, w, pad) + bias.reshape(1, -1, 1, 1)
    want_dx, want_dw = _grads_reference(x, w, g, pad)
    out, dx, dw = start(g.shape, F32), start(x.shape, F32), start(w.shape, F32)
    winograd.conv_forward(x, w, out, req, pad, bias)
    winograd.conv_data_grad(g, w, dx, req, pad)
    winograd.conv_weight_grad(g, x, dw, req, pad)
    offset = 1.0 if req == "add" else 0.0
    _close(out - offset, want)
    _close(dx - offset, want_dx)
    _close(dw - offset, want_dw)


@needs_numba
def test_chunks_and_one_thread_give_the_same_values(monkeypatch):
    x, w, g, bias = _data((7, 16, 16, 10, 10, (1, 1)), seed=6)
    results = []
    for workspace, pool in ((16 << 20, threads.pool_size()), (1, 1)):
        monkeypatch.setattr(winograd, "WORKSPACE_BYTES", workspace)  # 1: a sample per chunk
        monkeypatch.setattr(threads, "pool_size", lambda pool=pool: pool)
        out, dx, dw = np.empty(g.shape, F32), np.empty(x.shape, F32), np.empty(w.shape, F32)
        winograd.conv_forward(x, w, out, "write", (1, 1), bias)
        winograd.conv_data_grad(g, w, dx, "write", (1, 1))
        winograd.conv_weight_grad(g, x, dw, "write", (1, 1))
        results.append((out, dx, dw))
    (out, dx, dw), (out1, dx1, dw1) = results
    np.testing.assert_array_equal(out, out1)  # per-tile arithmetic: the split changes nothing
    np.testing.assert_array_equal(dx, dx1)
    want_dw = _grads_reference(x, w, g, (1, 1))[1]  # summed over chunks in another order
    _close(dw, want_dw)
    _close(dw1, want_dw)


def _run_op(name, inputs, out_shape, **attrs):
    op = get_op(name)
    out = np.empty(out_shape, F32)
    op.forward_cpu(np, op.parse_attrs(attrs), inputs, [out], ["write"])
    return out


@needs_numba
def test_the_ops_take_this_path_and_give_the_convolution(monkeypatch):
    x, w, g, bias = _data((6, 32, 48, 8, 8, (1, 1)), seed=7)  # 24 tiles: 0.5 per filter
    calls = []
    for name in ("conv_forward", "conv_data_grad", "conv_weight_grad"):
        real = getattr(winograd, name)
        monkeypatch.setattr(winograd, name,
                            lambda *a, real=real, name=name: calls.append(name) or real(*a))
    attrs = dict(kernel=(3, 3), pad=(1, 1), num_filter=48)
    out = _run_op("Convolution", [x, w, bias], g.shape, **attrs)
    _close(out, _conv_reference(x, w, (1, 1)) + bias.reshape(1, -1, 1, 1))
    dx = _run_op("_backward_Convolution_data", [g, w, x], x.shape, **attrs)
    dw = _run_op("_backward_Convolution_weight", [g, x], w.shape, **attrs)
    want_dx, want_dw = _grads_reference(x, w, g, (1, 1))
    _close(dx, want_dx)
    _close(dw, want_dw)
    # a stride-1 3x3 deconvolution is the data gradient of the convolution it transposes
    deconv = _run_op("Deconvolution", [g, w], x.shape, kernel=(3, 3), pad=(1, 1),
                     num_filter=32, no_bias=True)
    _close(deconv, want_dx)
    assert calls == ["conv_forward", "conv_data_grad", "conv_weight_grad", "conv_data_grad"]


def test_other_convolutions_keep_im2col(monkeypatch):
    x = np.zeros((4, 32, 8, 8), F32)  # 4 samples of 2x2 tiles: 16 tiles, 0.5 per channel
    w = np.zeros((32, 32, 3, 3), F32)
    out = np.zeros((4, 32, 8, 8), F32)
    geo = ((3, 3), (1, 1), (1, 1), (1, 1))
    assert winograd.applies(np, x, w, out, geo, 1) == HAS_NUMBA
    for other in [((3, 3), (2, 2), (1, 1), (1, 1)), ((3, 3), (1, 1), (2, 2), (1, 1)),
                  ((5, 5), (1, 1), (1, 1), (2, 2)), ((3, 3), (1, 1), (1, 1), (3, 3))]:
        assert not winograd.applies(np, x, w, out, other, 1)
    assert not winograd.applies(np, x, w, out, geo, 2)  # grouped
    assert not winograd.applies(np, x.astype(np.float64), w.astype(np.float64),
                                out.astype(np.float64), geo, 1)
    assert not winograd.applies(np, x[:3], w, out[:3], geo, 1)  # too few tiles for the filters
    thin = np.zeros((32, 16, 3, 3), F32)  # too few channels for the products
    assert not winograd.applies(np, x[:, :16], thin, out, geo, 1)
    monkeypatch.setenv("DEEPKIT_WINOGRAD", "0")
    assert not winograd.applies(np, x, w, out, geo, 1)
    assert convolution.winograd is winograd



_FIRST_STEP = """
import numpy as np
import deepkit_engine as dk
from deepkit_engine.ops import winograd
data = dk.sym.Variable("data")
net = dk.sym.Convolution(data, kernel=(3, 3), pad=(1, 1), num_filter=32, name="conv")
net = dk.sym.Convolution(net, kernel=(3, 3), pad=(1, 1), num_filter=32, name="conv2")
exe = net.simple_bind(dk.cpu(), data=(8, 32, 8, 8))
fused = winograd.kernels()
loaded = {name: list(getattr(fused, name).signatures) for name in winograd._TRANSFORMS}
rng = np.random.default_rng(8)
for arr in exe.arg_dict.values():
    arr[:] = rng.normal(size=arr.shape)
exe.forward(is_train=True)
exe.backward(dk.nd.array(rng.normal(size=(8, 32, 8, 8)).astype(np.float32)))
dk.nd.waitall()
for name in winograd._TRANSFORMS:
    assert loaded[name], name + ": not loaded at bind"
    assert list(getattr(fused, name).signatures) == loaded[name], name + ": compiled in the step"
print("ok")
"""


@needs_numba
def test_binding_loads_every_transform_a_training_step_calls():
    # a fresh process: nothing compiled before the bind
    done = subprocess.run([sys.executable, "-c", _FIRST_STEP], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
