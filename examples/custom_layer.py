"""Writing your own layer: declare parameters in build(), compose engine ops in call().

A layer that learns a per-feature scale and shift followed by a soft
threshold, used in a small classifier on the bundled MNIST.

    python examples/custom_layer.py [--epochs 2] [--samples 10000]
"""
import argparse

import numpy as np

import deepkit
from deepkit import layers
from deepkit.datasets import mnist
from deepkit_engine import symbol as sym


class ScaleShiftSoftThreshold(layers.Layer):
    """``y = sign(z) * max(|z| - t, 0)`` with ``z = x * scale + shift``, per feature.

    Args:
        threshold: Initial value of the (learnable) threshold ``t``.
    """

    def __init__(self, threshold=0.1, **kwargs):
        super().__init__(**kwargs)
        self.threshold = float(threshold)

    def build(self, input_shape):
        features = input_shape[-1]
        self.scale = self.add_weight("scale", (features,), initializer="ones")
        self.shift = self.add_weight("shift", (features,), initializer="zeros",
                                     regularizable=False)
        self.t = self.add_weight("threshold", (1,),
                                 initializer=deepkit.initializers.Constant(self.threshold),
                                 regularizable=False)

    def call(self, inputs):
        z = sym.broadcast_add(sym.broadcast_mul(inputs, self.scale.var), self.shift.var)
        magnitude = sym.relu(sym.broadcast_sub(sym.abs(z), self.t.var))
        return sym.sign(z) * magnitude

    def get_config(self):
        config = super().get_config()
        config["threshold"] = self.threshold
        return config


def main(epochs=2, samples=10000, verbose=1):
    deepkit.set_seed(0)
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    x_train = x_train[:samples].reshape(-1, 784).astype(np.float32) / 255.0
    x_test = x_test.reshape(-1, 784).astype(np.float32) / 255.0
    model = deepkit.Sequential([
        layers.Dense(128, input_shape=(784,)),
        ScaleShiftSoftThreshold(0.05, name="soft_threshold"),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train[:samples], batch_size=64, epochs=epochs, verbose=verbose)
    layer = model.get_layer("soft_threshold")
    print("learned threshold:", float(layer.get_weights()[2][0]))
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=1000)
    print(f"test accuracy {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--samples", type=int, default=10000)
    args = parser.parse_args()
    main(args.epochs, args.samples)
