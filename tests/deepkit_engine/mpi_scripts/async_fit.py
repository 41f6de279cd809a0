"""Run under ``mpirun -np 2`` (or alone): Module.fit / FeedForward.fit with ``'dist_async'``.

Each rank trains on its own data (as MXNet's workers do) through the
parameter server; both must learn the task and end with the server's final
weights, the same on every rank. Alone (no launcher) the store has one
worker, and training must equal ``kvstore='local'`` (the server applies the
same SGD steps). Prints ``PASS <name> rank <r>``.
"""
import sys

import numpy as np

from deepkit.compat import mxnet as mx
from deepkit_engine import dist


def blobs(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    w = np.random.default_rng(0).normal(size=(6, 3))   # the same task on every rank
    return x, (x @ w).argmax(1).astype(np.float32)


def mlp():
    net = mx.sym.Variable("data")
    net = mx.sym.FullyConnected(net, name="fc1", num_hidden=16)
    net = mx.sym.Activation(net, name="relu1", act_type="relu")
    net = mx.sym.FullyConnected(net, name="fc2", num_hidden=3)
    return mx.sym.SoftmaxOutput(net, name="softmax")


def module_fit(kvstore, x, y, epochs=4):
    it = mx.io.NDArrayIter(x, y, 20)
    mod = mx.mod.Module(mlp())
    mx.random.seed(1)
    mod.fit(it, num_epoch=epochs, kvstore=kvstore, initializer=mx.init.Xavier(),
            optimizer="sgd", optimizer_params=(("learning_rate", 0.5),))
    arg, _ = mod.get_params()
    return mod, {k: v.asnumpy() for k, v in arg.items()}


def feedforward_fit(kvstore, x, y, epochs=4):
    mx.random.seed(2)
    model = mx.model.FeedForward(mlp(), num_epoch=epochs, learning_rate=0.5, numpy_batch_size=20,
                                 initializer=mx.init.Xavier())
    model.fit(x, y, kvstore=kvstore)
    return model, {k: v.asnumpy() for k, v in model.arg_params.items()}


def accuracy(predict, x, y):
    return float((predict(x).argmax(1) == y).mean())


def same_on_all_ranks(params):
    for name in sorted(params):
        mine = params[name].astype(np.float64)
        total = dist.allreduce_(mine.copy())
        np.testing.assert_array_equal(total, mine * dist.size(), err_msg=name)


def main():
    r, n = dist.init()
    x, y = blobs(200, seed=10 + r)
    if n == 1:   # one worker: the server applies exactly the local SGD steps
        _, local = module_fit("local", x, y)
        _, remote = module_fit("dist_async", x, y)
        for name in local:
            np.testing.assert_allclose(remote[name], local[name], rtol=1e-5, atol=1e-6,
                                       err_msg=name)
        print(f"PASS module one worker equals local rank {r}", flush=True)
        return 0
    mod, params = module_fit("dist_async", x, y)
    acc = accuracy(lambda data: mod.predict(mx.io.NDArrayIter(data, None, 20)).asnumpy(), x, y)
    assert acc > 0.85, acc
    same_on_all_ranks(params)
    print(f"PASS module rank {r} (accuracy {acc:.2f})", flush=True)
    model, params = feedforward_fit("dist_async", x, y)
    acc = accuracy(model.predict, x, y)
    assert acc > 0.85, acc
    same_on_all_ranks(params)
    print(f"PASS feedforward rank {r} (accuracy {acc:.2f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
