"""The classic MNIST multilayer perceptron, Keras style, on the bundled MNIST.

    python examples/mnist_mlp.py [--epochs 10] [--samples 60000]
"""
import argparse
import time

import numpy as np

import deepkit
from deepkit import layers
from deepkit.datasets import mnist


def main(epochs=10, samples=60000, batch_size=128, verbose=1, seed=0):
    deepkit.set_seed(seed)
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    x_train = x_train[:samples].reshape(-1, 784).astype(np.float32) / 255.0
    y_train = y_train[:samples]
    x_test = x_test.reshape(-1, 784).astype(np.float32) / 255.0

    model = deepkit.Sequential([
        layers.Dense(512, activation="relu", input_shape=(784,)),
        layers.Dropout(0.2),
        layers.Dense(512, activation="relu"),
        layers.Dropout(0.2),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    if verbose:
        model.summary()
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=verbose,
              validation_data=(x_test, y_test))
    elapsed = time.perf_counter() - start
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=1000)
    print(f"test loss {loss:.4f}  test accuracy {accuracy:.4f}  "
          f"({elapsed / max(epochs, 1):.1f}s per epoch)")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--samples", type=int, default=60000)
    args = parser.parse_args()
    main(args.epochs, args.samples)
