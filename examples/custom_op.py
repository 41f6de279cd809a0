"""An operator written in Python: a softmax with its own gradient, checked and trained on MNIST.

``define_op`` registers it once; it is then ``nd.py_softmax`` and
``sym.py_softmax`` like a built-in op, differentiable, JSON-serializable and
planned by the executor. The script checks its gradient against finite
differences, then trains a classifier whose output layer uses it.

    python examples/custom_op.py [--epochs 2] [--samples 20000]
"""
import argparse

import numpy as np

import deepkit
from deepkit import layers
from deepkit.datasets import mnist
from deepkit_engine import nd
from deepkit_engine import symbol as sym
from deepkit_engine.custom import define_op
from deepkit_engine.ops.registry import list_ops
from deepkit_engine.testing import check_numeric_gradient


def softmax_forward(xp, x, axis=-1):
    """Softmax along ``axis``, computed stably (xp is numpy on CPU, cupy on GPU)."""
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_backward(xp, out_grads, inputs, outputs, axis=-1):
    """``dx = y * (dy - sum(dy * y))``: only the output is needed, so the input can be freed."""
    dy, y = out_grads[0], outputs[0]
    return [y * (dy - (dy * y).sum(axis=axis, keepdims=True))]


def register():
    """Register ``py_softmax`` once (running the script twice in one process is fine)."""
    if "py_softmax" not in list_ops():
        define_op("py_softmax", softmax_forward, softmax_backward, params={"axis": -1},
                  backward_needs=("output",))


class PySoftmax(layers.Layer):
    """The output activation, built from the Python operator."""

    def call(self, inputs):
        return sym.py_softmax(inputs, axis=-1)


def gradient_check():
    """Finite differences against the hand-written backward, in float64."""
    rng = np.random.default_rng(0)
    net = sym.py_softmax(sym.FullyConnected(sym.var("data"), num_hidden=4, name="fc"))
    check_numeric_gradient(net, {"data": rng.normal(size=(3, 5)),
                                 "fc_weight": rng.normal(size=(4, 5)),
                                 "fc_bias": rng.normal(size=4)})
    x = rng.normal(size=(2, 3))
    np.testing.assert_allclose(nd.py_softmax(nd.array(x)).asnumpy().sum(axis=1), 1, rtol=1e-6)


def main(epochs=2, samples=20000, verbose=1):
    register()
    gradient_check()
    print("py_softmax: gradient check passed")
    deepkit.set_seed(0)
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    x_train = x_train[:samples].reshape(-1, 784).astype(np.float32) / 255
    x_test = x_test.reshape(-1, 784).astype(np.float32) / 255
    model = deepkit.Sequential([layers.Dense(128, activation="relu", input_shape=(784,)),
                                layers.Dense(10), PySoftmax(name="py_softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train[:samples], batch_size=64, epochs=epochs, verbose=verbose)
    _, accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    print(f"test accuracy {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--samples", type=int, default=20000)
    args = parser.parse_args()
    main(args.epochs, args.samples)
