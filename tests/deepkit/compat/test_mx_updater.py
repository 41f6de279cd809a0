"""mx.optimizer's per-index API (create_state, update, get_updater) and mx.lr_scheduler."""
import math
from types import SimpleNamespace

import numpy as np
import pytest

from deepkit.compat import mx_format
from deepkit.compat import mxnet as mx
from deepkit.models.symbol_model import SymbolParameter
from deepkit_engine import engine

from .test_mxnet import _reference

nd = mx.nd


@pytest.mark.parametrize("kind,kwargs", [
    ("sgd", {"momentum": 0.0}), ("sgd", {"momentum": 0.9}), ("nag", {"momentum": 0.9}),
    ("adam", {}), ("rmsprop", {}), ("adagrad", {}), ("adadelta", {})])
def test_updater_follows_mxnets_formulas(kind, kwargs):
    rng = np.random.default_rng(2)
    w0 = rng.normal(size=(4, 3)).astype(np.float32)
    grads = [rng.normal(size=(4, 3)).astype(np.float32) * 3 for _ in range(3)]
    opt = mx.optimizer.create(kind, learning_rate=0.05, wd=0.01, rescale_grad=0.5,
                              clip_gradient=1.0, **kwargs)
    updater = mx.optimizer.get_updater(opt)
    weight = nd.array(w0)
    for g in grads:
        updater(3, nd.array(g), weight)
    expected = _reference(kind, w0, grads, 0.05, 0.01, 0.5, 1.0, **kwargs)
    np.testing.assert_allclose(weight.asnumpy(), expected, rtol=1e-4, atol=1e-6)
    assert opt.num_update == 3 and list(updater.states) == [3]


def test_create_state_update_and_multipliers_by_index():
    opt = mx.optimizer.SGD(learning_rate=0.1, momentum=0.9, wd=0.1,
                           param_idx2name={0: "fc_weight", 1: "fc_bias"})
    assert opt.wd_mult == {"fc_bias": 0.0}  # MXNet: no decay unless _weight/_gamma
    weight, bias = nd.ones((2,)), nd.ones((2,))
    states = [opt.create_state(0, weight), opt.create_state(1, bias)]
    assert states[0][0].shape == (2,)
    opt.set_lr_mult({"fc_bias": 2.0})
    opt.update(0, weight, nd.ones((2,)), states[0])
    opt.update(1, bias, nd.ones((2,)), states[1])
    np.testing.assert_allclose(weight.asnumpy(), 1 - 0.1 * (1 + 0.1))
    np.testing.assert_allclose(bias.asnumpy(), 1 - 0.2)
    assert opt.num_update == 1  # one update of each index: the count is the largest
    assert opt._get_lr(1) == pytest.approx(0.2) and opt._get_wd(0) == pytest.approx(0.1)


def test_symbol_attributes_give_multipliers():
    w = mx.sym.Variable("fc_weight", lr_mult=0.5, wd_mult=3.0)
    net = mx.sym.FullyConnected(mx.sym.var("data"), weight=w, num_hidden=2, name="fc")
    opt = mx.optimizer.SGD(learning_rate=1.0, wd=0.1, sym=net,
                           param_idx2name={0: "fc_weight", 1: "fc_bias"})
    assert opt.lr_mult == {"fc_weight": 0.5}
    assert opt.wd_mult == {"fc_bias": 0.0, "fc_weight": 3.0}


def test_updater_states_round_trip_without_pickle():
    opt = mx.optimizer.Adam(learning_rate=0.1)
    updater = mx.optimizer.get_updater(opt)
    weight = nd.ones((3,))
    updater(0, nd.ones((3,)), weight)
    updater("named", nd.ones((3,)), nd.ones((3,)))
    blob = updater.get_states()
    assert blob[:8] == (0x112).to_bytes(8, "little")  # MXNet's NDArray format, not pickle
    fresh = mx.optimizer.get_updater(mx.optimizer.Adam(learning_rate=0.1))
    fresh.set_states(blob)
    assert sorted(map(str, fresh.states)) == ["0", "named"] and fresh.optimizer.num_update == 1
    np.testing.assert_array_equal(fresh.states[0][1].asnumpy(), updater.states[0][1].asnumpy())
    with pytest.raises(ValueError, match="not what get_states"):
        fresh.set_states(mx_format.dumps([np.ones(1, np.float32)]))


def test_an_optimizer_written_for_mxnet_trains_a_module():
    @mx.optimizer.register
    class HalfStep(mx.optimizer.Optimizer):
        def create_state(self, index, weight):
            return None

        def update(self, index, weight, grad, state):
            self._update_count(index)
            weight[:] = weight - self._get_lr(index) * grad * self.rescale_grad

    assert isinstance(mx.optimizer.create("halfstep"), HalfStep)
    updater = mx.optimizer.get_updater(HalfStep(learning_rate=0.5))
    w = nd.ones((2,))
    updater(0, nd.ones((2,)), w)
    np.testing.assert_allclose(w.asnumpy(), 0.5)

    x = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    it = mx.io.NDArrayIter(x, y, 20)
    net = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=2,
                                                     name="fc"), name="softmax")
    mod = mx.mod.Module(net)
    mod.fit(it, num_epoch=1, optimizer="halfstep", optimizer_params={"learning_rate": 0.1},
            initializer=mx.init.One())
    assert mod._optimizer.num_update == 2
    assert not np.allclose(mod.get_params()[0]["fc_weight"].asnumpy(), 1.0)


def test_lr_schedulers_with_warmup():
    factor = mx.lr_scheduler.FactorScheduler(step=2, factor=0.5, base_lr=1.0, warmup_steps=2,
                                             warmup_begin_lr=0.2)
    assert [factor(n) for n in (0, 1, 2, 3, 5)] == pytest.approx([0.2, 0.6, 1.0, 0.5, 0.25])
    poly = mx.lr_scheduler.PolyScheduler(max_update=10, base_lr=1.0, pwr=2, final_lr=0.1)
    assert poly(5) == pytest.approx(0.1 + 0.9 * 0.25) and poly(12) == pytest.approx(0.1)
    cosine = mx.lr_scheduler.CosineScheduler(max_update=8, base_lr=2.0, warmup_steps=4,
                                             warmup_mode="constant", warmup_begin_lr=0.5)
    assert cosine(3) == 0.5
    assert cosine(6) == pytest.approx(2.0 * (1 + math.cos(math.pi * 0.5)) / 2)
    with pytest.raises(ValueError, match="warmup_mode"):
        mx.lr_scheduler.LRScheduler(warmup_mode="cubic")
    with pytest.raises(ValueError, match="at least warmup_begin_lr"):
        mx.lr_scheduler.CosineScheduler(4, base_lr=0.1, warmup_begin_lr=1.0)
    opt = mx.optimizer.SGD(learning_rate=0.4,
                           lr_scheduler=mx.lr_scheduler.FactorScheduler(step=1, factor=0.5))
    updater = mx.optimizer.get_updater(opt)
    w = nd.zeros((1,))
    for _ in range(3):
        updater(0, nd.ones((1,)), w)
    np.testing.assert_allclose(w.asnumpy(), -(0.4 + 0.2 + 0.1), rtol=1e-6)


def test_sgd_applies_every_parameter_in_one_fused_push(monkeypatch):
    rng = np.random.default_rng(5)
    owner = SimpleNamespace(trainable=True)
    specs = [("fc_weight", (4, 3), 1.0, 1.0), ("fc_bias", (4,), 2.0, 0.0)]
    params, starts, grads = [], [], []
    for name, shape, lr_mult, wd_mult in specs:
        p = SymbolParameter(owner, name, shape, lambda s, d, r: np.zeros(s, d), lr_mult, wd_mult)
        p.initialize(mx.cpu())
        starts.append(rng.normal(size=shape).astype(np.float32))
        p.data[:] = starts[-1]
        params.append(p)
        grads.append([rng.normal(size=shape).astype(np.float32) * 3 for _ in range(3)])
    opt = mx.optimizer.SGD(learning_rate=0.05, momentum=0.9, wd=0.01, rescale_grad=0.5,
                           clip_gradient=1.0)
    pushed = []
    push = engine._engine.push
    monkeypatch.setattr(engine._engine, "push",
                        lambda fn, reads=(), writes=(), ctx=None, name="op", *a, **k:
                        (pushed.append(name), push(fn, reads, writes, ctx, name, *a, **k))[1])
    for step in range(3):
        opt.apply([(p, nd.array(g[step])) for p, g in zip(params, grads)])
    assert pushed.count("_multi_sgd_update") == 3
    assert not any(name.startswith("sgd") for name in pushed)
    for p, w0, g, (_, _, lr_mult, wd_mult) in zip(params, starts, grads, specs):
        expected = _reference("sgd", w0, g, 0.05 * lr_mult, 0.01 * wd_mult, 0.5, 1.0,
                              momentum=0.9)
        np.testing.assert_allclose(p.data.asnumpy(), expected, rtol=1e-5, atol=1e-6)
    assert opt.num_update == 3
