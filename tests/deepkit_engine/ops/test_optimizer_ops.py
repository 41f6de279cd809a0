"""Fused optimizer updates against plain numpy steps."""
import numpy as np
import pytest

from deepkit_engine import ndarray as nd
from deepkit_engine.base import ShapeError
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



def _multi_sgd(*data, lrs, wds, momentum=0.0, rescale_grad=1.0, clip_gradient=-1.0):
    """New weights (then new momenta): sgd_update/sgd_mom_update of each parameter."""
    group, weights, moms = (3 if momentum else 2), [], []
    for i, (lr, wd) in enumerate(zip(lrs, wds)):
        w, g = data[group * i], data[group * i + 1]
        g = g * rescale_grad
        if clip_gradient >= 0:
            g = np.clip(g, -clip_gradient, clip_gradient)
        g = g + wd * w
        if momentum:
            m = momentum * data[group * i + 2] - lr * g
            weights.append(w + m)
            moms.append(m)
        else:
            weights.append(w - lr * g)
    return weights + moms if len(weights) + len(moms) > 1 else weights[0]


CASES += [
    OpCase("_multi_sgd_update", [(3, 4), (3, 4)], _multi_sgd, {"lrs": (0.1,), "wds": (0.0,)}),
    OpCase("_multi_sgd_update", [(3, 4), (3, 4), (5,), (5,), (0, 2), (0, 2)], _multi_sgd,
           {"lrs": (0.1, 0.5, 0.2), "wds": (0.01, 0.0, 0.1), "rescale_grad": 0.5,
            "clip_gradient": 0.2}),
    OpCase("_multi_sgd_update", [(3, 4), (3, 4), (3, 4), (2,), (2,), (2,)], _multi_sgd,
           {"lrs": (0.1, 0.3), "wds": (0.0, 0.2), "momentum": 0.9}),
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


def test_multi_sgd_update_writes_weights_and_momenta_in_place(ctx):
    ws = [nd.ones((2, 3), ctx=ctx), nd.ones(4, ctx=ctx)]
    moms = [nd.zeros((2, 3), ctx=ctx), nd.zeros(4, ctx=ctx)]
    grads = [nd.full((2, 3), 2.0, ctx=ctx), nd.full(4, 1.0, ctx=ctx)]
    single_w, single_m = nd.ones(4, ctx=ctx), nd.zeros(4, ctx=ctx)
    for _ in range(3):
        nd._multi_sgd_update(ws[0], grads[0], moms[0], ws[1], grads[1], moms[1],
                             lrs=(0.1, 0.2), wds=(0.0, 0.5), momentum=0.5, out=ws + moms)
        nd.sgd_mom_update(single_w, grads[1], single_m, lr=0.2, wd=0.5, momentum=0.5,
                          out=single_w)
    assert_almost_equal(ws[0], np.full((2, 3), 0.15))
    assert_almost_equal(moms[0], np.full((2, 3), -0.35))
    assert_almost_equal(ws[1], single_w)
    assert_almost_equal(moms[1], single_m)


@pytest.mark.parametrize("inputs,params,match", [
    ([(2,), (2,), (2,)], {"lrs": (0.1,), "wds": (0.0,)}, "3 inputs for 1 parameters"),
    ([(2,), (3,)], {"lrs": (0.1,), "wds": (0.0,)}, "input 1 has shape \\(3,\\)"),
    ([(2,), (2,)], {"lrs": (0.1,), "wds": (0.0, 0.1)}, "lrs has 1 entries but wds has 2"),
])
def test_multi_sgd_update_refuses_mismatched_inputs(inputs, params, match):
    with pytest.raises(ShapeError, match=match):
        nd._multi_sgd_update(*[nd.zeros(s) for s in inputs], **params)
