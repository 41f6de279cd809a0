"""Fused optimizer updates against plain numpy steps."""
import numpy as np
import pytest

from deepkit_engine import ndarray as nd
from deepkit_engine.testing import assert_almost_equal

from .op_cases import OpCase, forward_params, run_forward


def _sgd(w, g, lr, wd=0.0, rescale_grad=1.0, clip_gradient=-1.0):
    g = g * rescale_grad
    if clip_gradient >= 0:
        g = np.clip(g, -clip_gradient, clip_gradient)
    return w - lr * (g + wd * w)


def _sgd_mom(w, g, m, lr, momentum=0.0, wd=0.0, rescale_grad=1.0, clip_gradient=-1.0):
    g = g * rescale_grad
    if clip_gradient >= 0:
        g = np.clip(g, -clip_gradient, clip_gradient)
    return w + momentum * m - lr * (g + wd * w)


def _adam(w, g, m, v, lr, beta1=0.9, beta2=0.999, epsilon=1e-8, wd=0.0, rescale_grad=1.0,
          clip_gradient=-1.0):
    g = g * rescale_grad + wd * w
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    return w - lr * m / (np.sqrt(v) + epsilon)


CASES = [
    OpCase("sgd_update", [(3, 4), (3, 4)], _sgd, {"lr": 0.1}),
    OpCase("sgd_update", [(5,), (5,)], _sgd, {"lr": 0.5, "wd": 0.01, "rescale_grad": 0.5,
                                              "clip_gradient": 0.2}),
    OpCase("sgd_update", [(0, 2), (0, 2)], _sgd, {"lr": 0.1}),
    OpCase("sgd_mom_update", [(3, 4), (3, 4), (3, 4)], _sgd_mom, {"lr": 0.1, "momentum": 0.9}),
    OpCase("adam_update", [(2, 3), (2, 3), (2, 3), lambda rng, d: rng.uniform(0, 1, (2, 3))
                                                                   .astype(d)],
           _adam, {"lr": 0.01, "wd": 0.1}),
]


@pytest.mark.parametrize("case,dtype", forward_params(CASES))
def test_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)


def test_state_is_updated_in_place_and_ordered(ctx):
    w = nd.ones(3, ctx=ctx)
    mom = nd.zeros(3, ctx=ctx)
    g = nd.full(3, 2.0, ctx=ctx)
    for _ in range(3):
        nd.sgd_mom_update(w, g, mom, lr=0.1, momentum=0.5, out=w)
    # mom: -0.2, -0.3, -0.35 ; w: 1 - 0.2 - 0.3 - 0.35
    assert_almost_equal(mom, np.full(3, -0.35))
    assert_almost_equal(w, np.full(3, 0.15))
    m, v = nd.zeros(3, ctx=ctx), nd.zeros(3, ctx=ctx)
    nd.adam_update(w, g, m, v, lr=0.1, out=w)
    assert_almost_equal(m, np.full(3, 0.2))
    assert_almost_equal(v, np.full(3, 0.004), rtol=1e-5)
