"""``mx.kv``: MXNet's KVStore with ``mx.optimizer`` optimizers and updaters."""
import numpy as np

from deepkit.compat import mxnet as mx


def test_kv_namespace():
    assert mx.kvstore is mx.kv
    kv = mx.kv.create("device")
    assert isinstance(kv, mx.kv.KVStore) and kv.type == "device"


def test_sgd_with_momentum_in_the_store(tmp_path):
    devices = [mx.cpu(0), mx.cpu(1)]
    kv = mx.kv.create("device")
    kv.init("fc_weight", mx.nd.ones((2, 2)))
    kv.set_optimizer(mx.optimizer.SGD(learning_rate=0.1, momentum=0.9))
    grads = [np.full((2, 2), 0.5, np.float32), np.full((2, 2), 1.5, np.float32)]
    outs = [mx.nd.zeros((2, 2), ctx=d) for d in devices]
    for _ in range(2):
        kv.pushpull("fc_weight", [mx.nd.array(g, ctx=d) for g, d in zip(grads, devices)],
                    out=outs)
    # summed gradient 2: v1 = -0.2, w1 = 0.8; v2 = 0.9 * -0.2 - 0.2 = -0.38, w2 = 0.42
    for o in outs:
        np.testing.assert_allclose(o.asnumpy(), 0.42, rtol=1e-6)
    path = str(tmp_path / "kv.states")
    kv.save_optimizer_states(path)
    again = mx.kv.create("device")
    again.init("fc_weight", mx.nd.ones((2, 2)))
    optimizer = mx.optimizer.SGD(learning_rate=0.1, momentum=0.9)
    again.set_optimizer(optimizer)
    again.load_optimizer_states(path)
    assert optimizer.num_update == 2
    (momentum,) = again.updater.states["fc_weight"]  # SGD's state: [momentum]
    np.testing.assert_allclose(momentum.asnumpy(), -0.38, rtol=1e-6)


def test_an_mx_updater_in_the_store_keeps_its_states(tmp_path):
    kv = mx.kv.create("local")
    kv.init(0, mx.nd.zeros((3,)))
    kv._set_updater(mx.optimizer.get_updater(mx.optimizer.SGD(learning_rate=1.0, momentum=0.5)))
    kv.push(0, mx.nd.ones((3,)))
    kv.push(0, mx.nd.ones((3,)))
    out = mx.nd.zeros((3,))
    kv.pull(0, out=out)
    np.testing.assert_allclose(out.asnumpy(), -2.5)  # v: -1, -1.5; w: -1, -2.5
    path = str(tmp_path / "updater.states")
    kv.save_optimizer_states(path)
    other = mx.kv.create("local")
    updater = mx.optimizer.get_updater(mx.optimizer.SGD(learning_rate=1.0, momentum=0.5))
    other._set_updater(updater)
    other.load_optimizer_states(path)
    (momentum,) = updater.states[0]
    np.testing.assert_allclose(momentum.asnumpy(), -1.5)
