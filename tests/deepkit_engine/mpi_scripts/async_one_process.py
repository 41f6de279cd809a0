"""Run alone (no launcher): ``kvstore.create('dist_async')`` as a store of one worker.

MPI starts as a singleton and the parameter server thread runs in this
process. A separate process keeps MPI out of the pytest process (whose
one-process dist tests need it uninitialised). Each check prints
``PASS <name>``; a failure raises (non-zero exit).
"""
import os
import sys
import tempfile

import numpy as np

from deepkit.compat import mxnet as mx
from deepkit_engine import kvstore, nd


def check_create():
    kv = kvstore.create("dist_async")
    assert (kv.type, kv.rank, kv.num_workers) == ("dist_async", 0, 1), (kv.type, kv.rank)
    assert kv._server is not None and kv._server.is_alive()   # the server thread runs here
    kv.barrier()
    print("PASS create", flush=True)
    return kv


def check_push_needs_an_optimizer(kv):
    kv.init(3, nd.ones((2, 3)))
    try:
        kv.push(3, nd.ones((2, 3)))
    except ValueError as err:
        text = str(err)
        assert "'dist_async'" in text and "key 3" in text and "set_optimizer" in text, text
    else:
        raise AssertionError("push without an optimizer was accepted")
    out = nd.zeros((2, 3))
    kv.pull(3, out=out)   # the stored value is still the init value
    np.testing.assert_array_equal(out.asnumpy(), 1.0)
    print("PASS push needs an optimizer", flush=True)


def check_sgd(kv):
    kv.init(5, nd.full((4,), 2.0))
    kv.set_optimizer(mx.optimizer.SGD(learning_rate=0.25, rescale_grad=1.0))
    grads = [np.array([1.0, 2.0, 4.0, 8.0], np.float32), np.array([0.5, 0.5, 0.5, 0.5],
                                                                  np.float32)]
    out = nd.zeros((4,))
    kv.push(5, [nd.array(grads[0], ctx=mx.cpu(0)), nd.array(grads[1], ctx=mx.cpu(1))])
    kv.pull(5, out=out)   # the devices' values are summed here, then one update
    np.testing.assert_array_equal(out.asnumpy(), 2.0 - 0.25 * (grads[0] + grads[1]))
    kv.pushpull(5, nd.array(grads[0]), out=out)
    np.testing.assert_array_equal(out.asnumpy(),
                                  2.0 - 0.25 * (grads[0] + grads[1]) - 0.25 * grads[0])
    print("PASS sgd", flush=True)


def check_states_round_trip(kv, folder):
    kv.init(9, nd.zeros((3,)))
    optimizer = mx.optimizer.SGD(learning_rate=1.0, momentum=0.5, rescale_grad=1.0)
    kv.set_optimizer(optimizer)
    out = nd.zeros((3,))
    for _ in range(2):
        kv.pushpull(9, nd.ones((3,)), out=out)
    np.testing.assert_allclose(out.asnumpy(), -2.5)   # v: -1, -1.5; w: -1, -2.5
    path = os.path.join(folder, "async.states")
    kv.save_optimizer_states(path)
    again = mx.optimizer.SGD(learning_rate=1.0, momentum=0.5, rescale_grad=1.0)
    kv.set_optimizer(again)
    kv.load_optimizer_states(path)
    (momentum,) = kv.updater.states[9]
    np.testing.assert_allclose(momentum.asnumpy(), -1.5)
    assert again.num_update == 2, again.num_update
    kv.pushpull(9, nd.ones((3,)), out=out)   # v = 0.5 * -1.5 - 1 = -1.75: the state is used
    np.testing.assert_allclose(out.asnumpy(), -2.5 - 1.75)
    print("PASS states round trip", flush=True)


def main():
    kv = check_create()
    check_push_needs_an_optimizer(kv)
    check_sgd(kv)
    with tempfile.TemporaryDirectory() as folder:
        other = kvstore.create("dist_async")   # a second store: its own server and keys
        check_states_round_trip(other, folder)
    kv.close()
    kv.close()   # closing twice is harmless
    try:
        kv.pull(3, out=nd.zeros((2, 3)))
    except ValueError as err:
        assert "closed" in str(err), err
    else:
        raise AssertionError("a closed store pulled")
    assert not kv._server.is_alive()
    print("PASS close", flush=True)
    print("DONE", flush=True)
    return 0   # `other` is closed by the exit hook


if __name__ == "__main__":
    sys.exit(main())
