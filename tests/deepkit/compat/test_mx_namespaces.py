"""mx.context, mx.viz, mx.random, mx.nd/sym namespaces as MXNet 1.x scripts use them."""
import numpy as np

from deepkit.compat import mxnet as mx


def _mlp():
    net = mx.sym.Variable("data")
    net = mx.sym.FullyConnected(net, name="fc1", num_hidden=128)
    net = mx.sym.Activation(net, name="relu1", act_type="relu")
    net = mx.sym.FullyConnected(net, name="fc2", num_hidden=10)
    return mx.sym.SoftmaxOutput(net, name="softmax")


def test_print_summary_counts_parameters_like_mxnet():
    lines = []
    total = mx.viz.print_summary(_mlp(), shape={"data": (1, 784)}, print_fn=lines.append)
    assert total == 784 * 128 + 128 + 128 * 10 + 10
    text = "\n".join(lines)
    assert "fc1(FullyConnected)" in text and "100480" in text and "Total params: 101770" in text
    fc2 = next(line for line in lines if line.startswith("fc2"))
    assert fc2.split()[1:] == ["10", "1290", "relu1"]


def test_context_and_random_namespaces():
    assert mx.context.num_gpus() == mx.num_gpus() >= 0
    assert mx.context.cpu() == mx.cpu() and mx.context.Context is mx.Context
    mx.random.seed(4)
    first = mx.random.uniform(0, 1, shape=(3,)).asnumpy()
    mx.random.seed(4)
    np.testing.assert_array_equal(mx.nd.random.uniform(0, 1, shape=(3,)).asnumpy(), first)
    assert mx.random.poisson(2.0, shape=(2,)).shape == (2,)
    assert mx.sym.random.normal(shape=(2,)).infer_shape()[1] == [(2,)]
    assert mx.nd.contrib.BilinearResize2D(mx.nd.ones((1, 1, 2, 2)), height=4,
                                          width=4).shape == (1, 1, 4, 4)
    assert callable(mx.nd.contrib.foreach) and callable(mx.contrib.symbol.foreach)
