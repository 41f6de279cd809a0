"""The fused float32 BatchNorm kernels (numba): as plain Python against float64 formulas, and
BatchNorm, its gradient and its recompute op on the fused path against the numpy path and
the float64 reference, in one channel range and split over the kernel pool."""
import importlib.util

import numpy as np
import pytest

from deepkit_engine.ops import fused_cnn
from deepkit_engine.ops.normalization import _channel_ranges
from deepkit_engine.ops.registry import get_op

HAS_NUMBA = importlib.util.find_spec("numba") is not None
needs_numba = pytest.mark.skipif(not HAS_NUMBA,
                                 reason="numba is not installed (pip install 'deepkit[fast]')")

F32 = np.float32
EPS = 1e-5


def _bn_reference(x, gamma, beta, g):
    """float64 training BatchNorm over axes (0, 2) of (P, C, Q): outputs and gradients."""
    x, g = x.astype(np.float64), g.astype(np.float64)
    mean = x.mean(axis=(0, 2), keepdims=True)
    var = x.var(axis=(0, 2), keepdims=True)
    hat = (x - mean) / np.sqrt(var + EPS)
    gam = gamma.astype(np.float64).reshape(1, -1, 1)
    out = hat * gam + beta.astype(np.float64).reshape(1, -1, 1)
    dx = gam / np.sqrt(var + EPS) * (g - g.mean(axis=(0, 2), keepdims=True)
                                     - hat * (g * hat).mean(axis=(0, 2), keepdims=True))
    return out, mean.ravel(), var.ravel(), dx, (g * hat).sum(axis=(0, 2)), g.sum(axis=(0, 2))


def _data(shape, seed=0):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = (rng.normal(size=shape) * 2 + 0.5).astype(F32)
    return (x, rng.uniform(0.5, 1.5, c).astype(F32), rng.normal(size=c).astype(F32),
            rng.normal(size=shape).astype(F32))


# -- the kernels as written (plain Python, tiny arrays) -------------------------------------------

@pytest.mark.parametrize("channels", [(0, 3), (1, 2)])
def test_kernels_as_written_match_the_float64_formulas(channels):
    x, gamma, beta, g = _data((2, 3, 5))
    out, mean, var, dx, dgamma, dbeta = _bn_reference(x, gamma, beta, g)
    c0, c1 = channels
    got = np.full_like(x, 7.0)
    stats = [np.full(3, 7.0, F32) for _ in range(3)]
    fused_cnn.batch_norm_forward(x, gamma, beta, EPS, c0, c1, got, *stats)
    np.testing.assert_allclose(got[:, c0:c1], out[:, c0:c1], rtol=0, atol=2e-6)
    np.testing.assert_allclose(stats[0][c0:c1], mean[c0:c1], rtol=0, atol=1e-6)
    np.testing.assert_allclose(stats[1][c0:c1], var[c0:c1], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(stats[2][c0:c1], 1 / np.sqrt(var[c0:c1] + EPS), rtol=1e-6)
    outside = [k for k in range(3) if not c0 <= k < c1]
    assert np.all(got[:, outside] == 7.0) and np.all(stats[0][outside] == 7.0)  # untouched
    grad = np.full_like(x, 7.0)
    sum_g, sum_gx = np.zeros(3, F32), np.zeros(3, F32)
    fused_cnn.batch_norm_backward(g, x, stats[0], stats[2], gamma, c0, c1, True, grad, sum_g,
                                  sum_gx)
    np.testing.assert_allclose(grad[:, c0:c1], dx[:, c0:c1], rtol=0, atol=2e-6)
    np.testing.assert_allclose(sum_g[c0:c1], dbeta[c0:c1], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose((sum_gx * stats[2])[c0:c1], dgamma[c0:c1], rtol=1e-5, atol=1e-6)


def test_the_written_output_rounds_as_numpy_does():
    """(x - mean) * scale + shift with float32 rounding per operation, no fused multiply-add:
    the recompute op reproduces BatchNorm's output bit for bit."""
    x, gamma, beta, _ = _data((3, 4, 50), seed=1)
    mean = x.mean(axis=(0, 2)).astype(F32)
    scale = (np.float32(0.37) * gamma).astype(F32)
    got = np.empty_like(x)
    fused_cnn.batch_norm_write(x, mean, scale, beta, 0, 4, got)
    expect = (x - mean[None, :, None]) * scale[None, :, None]
    expect += beta[None, :, None]
    np.testing.assert_array_equal(got, expect)


# -- the ops on the fused path ------------------------------------------------------------------

def _run_bn(shape, fix_gamma, monkeypatch, numba_on):
    """BatchNorm training forward, its gradient and the recompute op on (N, C, H, W) data."""
    monkeypatch.setenv("DEEPKIT_NUMBA", "1" if numba_on else "0")
    x, gamma, beta, g = (a.reshape(shape) if a.ndim == 3 else a
                         for a in _data((shape[0], shape[1], shape[2] * shape[3]), seed=2))
    attrs = get_op("BatchNorm").parse_attrs({"eps": EPS, "fix_gamma": fix_gamma})
    c = shape[1]
    out = np.empty_like(x)
    mean, invstd = np.empty(c, F32), np.empty(c, F32)
    moving = [np.zeros(c, F32), np.ones(c, F32)]
    get_op("BatchNorm").forward_cpu(np, attrs, [x, gamma, beta] + moving, [out, mean, invstd],
                                ["write"] * 3, is_train=True)
    dx, dgamma, dbeta = np.empty_like(x), np.empty(c, F32), np.empty(c, F32)
    get_op("_backward_BatchNorm").forward_cpu(np, attrs, [g, x, gamma, mean, invstd],
                                          [dx, dgamma, dbeta], ["write"] * 3, is_train=True)
    again = np.empty_like(x)
    get_op("_batch_norm_apply").forward_cpu(np, attrs, [x, gamma, beta, mean, invstd], [again],
                                        ["write"])
    return dict(out=out, mean=mean, invstd=invstd, moving_mean=moving[0], dx=dx,
                dgamma=dgamma, dbeta=dbeta, again=again, x=x, gamma=gamma, beta=beta, g=g)


@needs_numba
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (16, 24, 32, 32)])  # one range; split ranges
@pytest.mark.parametrize("fix_gamma", [False, True])
def test_fused_batchnorm_matches_numpy_and_float64(shape, fix_gamma, monkeypatch):
    fused = _run_bn(shape, fix_gamma, monkeypatch, numba_on=True)
    plain = _run_bn(shape, fix_gamma, monkeypatch, numba_on=False)
    p, c = shape[0], shape[1]
    view = (p, c, -1)
    ranges = _channel_ranges(np, fused["x"].reshape(view))
    assert (ranges is not None and len(ranges) > 1) == (shape[0] > 2)  # split in the large case
    gamma = np.ones(c, F32) if fix_gamma else fused["gamma"]
    out, mean, _, dx, dgamma, dbeta = _bn_reference(
        fused["x"].reshape(view), gamma, fused["beta"], fused["g"].reshape(view))
    for result in (fused, plain):
        np.testing.assert_allclose(result["out"].reshape(view), out, rtol=0, atol=3e-5)
        np.testing.assert_allclose(result["mean"], mean, rtol=0, atol=1e-5)
        np.testing.assert_allclose(result["dx"].reshape(view), dx, rtol=0, atol=3e-5)
        np.testing.assert_allclose(result["dbeta"], dbeta, rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(result["dgamma"], 0 if fix_gamma else dgamma, rtol=1e-4,
                                   atol=1e-3)
        # the recompute op reproduces the forward output exactly, on either path
        np.testing.assert_array_equal(result["again"], result["out"])
    np.testing.assert_allclose(fused["moving_mean"], plain["moving_mean"], rtol=0, atol=1e-6)
