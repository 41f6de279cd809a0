"""``mx.nd``/``mx.sym``: ``argmax_channel`` and the multi-tensor SGD updates of MXNet 1.9.1.

References are float64 numpy transcriptions of MXNet's kernels:
``argmax_channel`` is ``argmax`` over axis 1 in the input's dtype
(``broadcast_reduce_op_index.cc``); ``multi_sgd_update`` and friends follow
``MultiSGDKernel`` and ``SGDKernel`` (``optimizer_op-inl.h``).
"""
import json

import numpy as np
import pytest

from deepkit.compat import mxnet as mx


@pytest.mark.parametrize("shape", [(4, 7), (2, 3, 5), (2, 6, 3, 4)])
def test_argmax_channel_is_argmax_over_axis_1_in_the_input_dtype(shape):
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    out = mx.nd.argmax_channel(mx.nd.array(x))
    assert out.dtype == np.float32 and out.shape == shape[:1] + shape[2:]
    np.testing.assert_array_equal(out.asnumpy(), np.argmax(x, axis=1))
    # MXNet's docstring example; ties give the first index
    np.testing.assert_array_equal(
        mx.nd.argmax_channel(mx.nd.array([[0, 1, 2], [3, 4, 5]])).asnumpy(), [2, 2])
    np.testing.assert_array_equal(mx.nd.argmax_channel(mx.nd.ones((2, 3))).asnumpy(), [0, 0])
    net = mx.sym.argmax_channel(mx.sym.Variable("data"))
    assert net.infer_shape(data=shape)[1] == [shape[:1] + shape[2:]]
    assert [n["op"] for n in json.loads(net.tojson())["nodes"]] == ["null", "argmax_channel"]
    exe = net.bind(mx.cpu(), {"data": mx.nd.array(x)})
    np.testing.assert_array_equal(exe.forward()[0].asnumpy(), np.argmax(x, axis=1))


def _sgd(w, g, lr, wd, rescale_grad, clip_gradient):
    """MXNet's SGDKernel: (1 - lr*wd) * w - lr * clip(rescale_grad * g)."""
    g = rescale_grad * g
    if clip_gradient >= 0:
        g = np.clip(g, -clip_gradient, clip_gradient)
    return (1 - lr * wd) * w - lr * g


@pytest.mark.parametrize("clip_gradient", [-1.0, 0.3])
def test_multi_sgd_update_matches_mxnet_sgd_update_per_weight(clip_gradient):
    rng = np.random.default_rng(1)
    shapes, lrs, wds = [(3, 4), (5,), (2, 2, 2)], (0.1, 0.5, 0.02), (0.01, 0.0, 0.3)
    ws = [rng.normal(size=s) for s in shapes]
    gs = [rng.normal(size=s) for s in shapes]
    weights = [mx.nd.array(w, dtype="float64") for w in ws]
    data = [a for w, g in zip(weights, gs) for a in (w, mx.nd.array(g, dtype="float64"))]
    out = mx.nd.multi_sgd_update(*data, lrs=lrs, wds=wds, rescale_grad=0.5,
                                 clip_gradient=clip_gradient, num_weights=3, out=weights)
    assert all(o is w for o, w in zip(out, weights))
    for i, w in enumerate(weights):
        np.testing.assert_allclose(w.asnumpy(), _sgd(ws[i], gs[i], lrs[i], wds[i], 0.5,
                                                     clip_gradient), rtol=1e-12, atol=1e-12)
        single = mx.nd.sgd_update(mx.nd.array(ws[i], dtype="float64"),
                                  mx.nd.array(gs[i], dtype="float64"), lr=lrs[i], wd=wds[i],
                                  rescale_grad=0.5, clip_gradient=clip_gradient)
        np.testing.assert_allclose(w.asnumpy(), single.asnumpy(), rtol=1e-12)


def test_multi_sgd_mom_update_trains_like_the_sgd_optimizer():
    """Several steps of multi_sgd_mom_update equal mx.optimizer.SGD with momentum."""
    rng = np.random.default_rng(2)
    shapes, lr, wd, momentum = [(4, 3), (3,)], 0.1, 0.01, 0.9
    ws = [rng.normal(size=s).astype(np.float32) for s in shapes]
    fused = [mx.nd.array(w) for w in ws]
    moms = [mx.nd.zeros(s) for s in shapes]
    ref = [mx.nd.array(w) for w in ws]
    opt = mx.optimizer.SGD(learning_rate=lr, wd=wd, momentum=momentum, rescale_grad=0.25)
    updater = mx.optimizer.get_updater(opt)
    for _ in range(5):
        gs = [mx.nd.array(rng.normal(size=s).astype(np.float32)) for s in shapes]
        data = [a for w, g, m in zip(fused, gs, moms) for a in (w, g, m)]
        mx.nd.multi_sgd_mom_update(*data, lrs=(lr, lr), wds=(wd, wd), momentum=momentum,
                                   rescale_grad=0.25, num_weights=2, out=fused)
        for i, (w, g) in enumerate(zip(ref, gs)):
            updater(i, g, w)
    for a, b in zip(fused, ref):
        np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-5, atol=1e-6)


def test_multi_mp_sgd_update_keeps_float32_masters_and_writes_float16_weights():
    rng = np.random.default_rng(3)
    w32 = rng.normal(size=(6,)).astype(np.float32)
    g16 = rng.normal(size=(6,)).astype(np.float16)
    weight, master = mx.nd.array(w32, dtype="float16"), mx.nd.array(w32)
    mx.nd.multi_mp_sgd_update(weight, mx.nd.array(g16, dtype="float16"), master, lrs=0.1,
                              wds=0.05, out=weight)
    expected = _sgd(w32.astype(np.float64), g16.astype(np.float64), 0.1, 0.05, 1.0, -1.0)
    assert weight.dtype == np.float16 and master.dtype == np.float32
    np.testing.assert_allclose(master.asnumpy(), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(weight.asnumpy(), expected.astype(np.float16), rtol=1e-3)


def test_symbol_versions_exist_with_mxnet_input_names():
    net = mx.sym.multi_mp_sgd_mom_update(*[mx.sym.Variable(n) for n in ("w", "g", "m", "w32")],
                                         lrs=(0.1,), wds=(0.0,), momentum=0.9)
    assert net.list_arguments() == ["w", "g"]
    assert net.list_auxiliary_states() == ["m", "w32"]
    spec = json.loads(net.tojson())["nodes"][-1]
    assert spec["op"] == "multi_mp_sgd_mom_update"
