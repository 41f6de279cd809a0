"""MXNet's public multi-tensor SGD ops and ``argmax_channel`` against float64 numpy.

The references follow MXNet 1.9.1's kernels (``MultiSGDKernel`` in
``src/operator/optimizer_op-inl.h``; ``argmax_channel`` in
``src/operator/tensor/broadcast_reduce_op_index.cc``: ``argmax`` over axis 1).
"""
import numpy as np
import pytest

from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import DTypeError, ParamError, ShapeError
from deepkit_engine.testing import assert_almost_equal

from .op_cases import OpCase, forward_params, run_forward


def _mx_step(w, g, mom, lr, wd, momentum, rescale_grad, clip_gradient):
    """MXNet's MultiSGDKernel for one weight: the new (weight, mom)."""
    g = rescale_grad * g
    if clip_gradient >= 0:
        g = np.clip(g, -clip_gradient, clip_gradient)
    mom = momentum * mom - lr * wd * w - lr * g
    return w + mom, mom


def _multi_ref(stride, has_mom, mixed):
    def ref(*data, lrs, wds, num_weights=1, momentum=0.0, rescale_grad=1.0, clip_gradient=-1.0):
        outs = []
        for i in range(num_weights):
            group = data[stride * i:stride * (i + 1)]
            w = group[-1] if mixed else group[0]
            mom = group[2] if has_mom else np.zeros_like(w)
            outs.append(_mx_step(w, group[1], mom, lrs[i], wds[i], momentum, rescale_grad,
                                 clip_gradient)[0])
        return outs if num_weights > 1 else outs[0]
    return ref


def _half(shape):
    return lambda rng, dtype: rng.uniform(-1, 1, shape).astype(np.float16)


def _single(shape):
    return lambda rng, dtype: rng.uniform(-1, 1, shape).astype(np.float32)


def _argmax_channel(x):
    return np.argmax(x, axis=1).astype(x.dtype)


CASES = [
    OpCase("multi_sgd_update", [(3, 4), (3, 4)], _multi_ref(2, False, False),
           {"lrs": (0.1,), "wds": (0.0,)}),
    OpCase("multi_sgd_update", [(3, 4), (3, 4), (5,), (5,), (0, 2), (0, 2)],
           _multi_ref(2, False, False),
           {"lrs": (0.1, 0.5, 0.2), "wds": (0.01, 0.0, 0.1), "rescale_grad": 0.5,
            "clip_gradient": 0.2, "num_weights": 3}),
    OpCase("multi_sgd_mom_update", [(3, 4), (3, 4), (3, 4), (2,), (2,), (2,)],
           _multi_ref(3, True, False),
           {"lrs": (0.1, 0.3), "wds": (0.0, 0.2), "momentum": 0.9, "num_weights": 2}),
    OpCase("multi_sgd_mom_update", [(2, 3), (2, 3), (2, 3)], _multi_ref(3, True, False),
           {"lrs": (0.5,), "wds": (0.1,), "momentum": 0.5, "rescale_grad": 2.0,
            "clip_gradient": 0.3}),
    OpCase("multi_mp_sgd_update",
           [_half((3, 4)), _half((3, 4)), _single((3, 4)), _half((5,)), _half((5,)),
            _single((5,))], _multi_ref(3, False, True),
           {"lrs": (0.1, 0.2), "wds": (0.01, 0.0), "num_weights": 2, "clip_gradient": 0.5},
           dtypes=("float16",), rtol=2e-3, atol=2e-3),
    OpCase("multi_mp_sgd_mom_update",
           [_half((3, 4)), _half((3, 4)), _single((3, 4)), _single((3, 4))],
           _multi_ref(4, True, True), {"lrs": (0.1,), "wds": (0.05,), "momentum": 0.9},
           dtypes=("float16",), rtol=2e-3, atol=2e-3),
    OpCase("argmax_channel", [(3, 5)], _argmax_channel),
    OpCase("argmax_channel", [(2, 4, 3, 2)], _argmax_channel),
]


@pytest.mark.parametrize("case,dtype", forward_params(CASES))
def test_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)


@pytest.mark.parametrize("mixed", [False, True])
def test_multi_sgd_mom_update_steps_update_weights_momenta_and_masters_in_place(mixed, ctx):
    rng = np.random.default_rng(3)
    shapes, lrs, wds = [(2, 3), (4,)], (0.1, 0.05), (0.01, 0.2)
    w64 = [rng.uniform(-1, 1, s) for s in shapes]
    m64 = [np.zeros(s) for s in shapes]
    dtype = "float16" if mixed else "float64"
    weights = [nd.array(w, ctx=ctx, dtype=dtype) for w in w64]
    moms = [nd.zeros(s, ctx=ctx, dtype="float32" if mixed else "float64") for s in shapes]
    masters = [nd.array(w, ctx=ctx, dtype="float32") for w in w64]
    for _ in range(4):
        # gradients as the op sees them (float16 with mixed precision)
        grads64 = [rng.uniform(-2, 2, s).astype(dtype).astype(np.float64) for s in shapes]
        data = []
        for i in range(2):
            data += [weights[i], nd.array(grads64[i], ctx=ctx, dtype=dtype), moms[i]]
            data += [masters[i]] if mixed else []
            w64[i], m64[i] = _mx_step(w64[i], grads64[i], m64[i], lrs[i], wds[i], 0.9, 0.5, 1.0)
        op = nd.multi_mp_sgd_mom_update if mixed else nd.multi_sgd_mom_update
        result = op(*data, lrs=lrs, wds=wds, momentum=0.9, rescale_grad=0.5, clip_gradient=1.0,
                    num_weights=2, out=weights)
        assert [r is w for r, w in zip(result, weights)] == [True, True]
    tol = 2e-3 if mixed else 1e-12
    for i in range(2):
        assert_almost_equal(weights[i], w64[i], rtol=tol, atol=tol)
        assert_almost_equal(moms[i], m64[i], rtol=1e-5 if mixed else 1e-12, atol=1e-6)
        if mixed:
            assert_almost_equal(masters[i], w64[i], rtol=1e-5, atol=1e-6)


def test_symbol_lists_the_momenta_as_auxiliary_states_and_updates_them():
    w, g, m = sym.Variable("w"), sym.Variable("g"), sym.Variable("m")
    net = sym.multi_sgd_mom_update(w, g, m, lrs=(0.1,), wds=(0.0,), momentum=0.5)
    assert net.list_arguments() == ["w", "g"]
    assert net.list_auxiliary_states() == ["m"]
    mom = nd.zeros(3)
    exe = net.bind(None, {"w": nd.ones(3), "g": nd.full(3, 2.0)}, aux_states={"m": mom})
    for _ in range(2):
        exe.forward()
    # mom: -0.2, then 0.5 * -0.2 - 0.2; the weight is not fed back, so each output is 1 + mom
    assert_almost_equal(mom, np.full(3, -0.3))
    assert_almost_equal(exe.outputs[0], np.full(3, 0.7))
    two = sym.multi_sgd_update(w, g, sym.Variable("w1"), sym.Variable("g1"), lrs=(0.1, 0.2),
                               wds=(0.0, 0.0), num_weights=2)
    assert len(two.list_outputs()) == 2


@pytest.mark.parametrize("call,error,match", [
    (lambda: nd.multi_sgd_update(nd.ones(2), nd.ones(2), lrs=(0.1, 0.2), wds=(0.0, 0.0)),
     ShapeError, "lrs has 2 entries but num_weights=1"),
    (lambda: nd.multi_sgd_update(nd.ones(2), nd.ones(2), nd.ones(2), nd.ones(2), lrs=(0.1,),
                                 wds=(0.0,)), ParamError, "takes 2 input"),
    (lambda: nd.multi_sgd_update(nd.ones(2), nd.ones(3), lrs=0.1, wds=0.0), ShapeError,
     "grad_0 has shape \\(3,\\) but weight 0 needs \\(2,\\)"),
    (lambda: nd.multi_mp_sgd_update(nd.ones(2, dtype="float16"), nd.ones(2, dtype="float16"),
                                    nd.ones(2, dtype="float16"), lrs=0.1, wds=0.0),
     DTypeError, "weight32_0 has dtype float16"),
    (lambda: nd.argmax_channel(nd.ones(4)), ShapeError, "at least 2 dimensions"),
])
def test_bad_inputs_are_refused_with_the_argument_named(call, error, match):
    with pytest.raises(error, match=match):
        call()
