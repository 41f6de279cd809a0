"""LeNet on the bundled MNIST: the main job. Reaches >= 99% test accuracy.

    python examples/mnist_lenet.py [--epochs 6] [--samples 60000] [--batch-size 128]

Images are NCHW (1x28x28), pixels scaled to [0, 1]. The progress output of
``fit`` gives the time of every epoch; the last line is the test accuracy.
"""
import argparse

import numpy as np

import deepkit
from deepkit import layers
from deepkit.datasets import mnist


def build_lenet():
    """LeNet-5 as in Caffe's example (20 and 50 filters), with ReLU and dropout."""
    return deepkit.Sequential([
        layers.Conv2D(20, 5, activation="relu", input_shape=(1, 28, 28), name="conv1"),
        layers.MaxPooling2D(2, name="pool1"),
        layers.Conv2D(50, 5, activation="relu", name="conv2"),
        layers.MaxPooling2D(2, name="pool2"),
        layers.Flatten(name="flatten"),
        layers.Dense(500, activation="relu", name="fc1"),
        layers.Dropout(0.5, name="dropout"),
        layers.Dense(10, activation="softmax", name="fc2"),
    ], name="lenet")


def load(samples=60000):
    """The bundled MNIST as NCHW float32 in [0, 1]: the first ``samples`` training images."""
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    x_train = x_train[:samples, None].astype(np.float32) / 255.0
    x_test = x_test[:, None].astype(np.float32) / 255.0
    return (x_train, y_train[:samples]), (x_test, y_test)


def main(epochs=6, samples=60000, batch_size=128, verbose=1, seed=0, save=None):
    deepkit.set_seed(seed)
    (x_train, y_train), (x_test, y_test) = load(samples)

    model = build_lenet()
    model.compile(optimizer=deepkit.optimizers.Adam(1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    if verbose:
        model.summary()
    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=verbose,
              validation_data=(x_test, y_test))
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=1000)
    print(f"test loss {loss:.4f}  test accuracy {accuracy:.4f}", flush=True)
    if save:
        model.save(save)
        print(f"saved to {save}")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--samples", type=int, default=60000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--save", default=None, help="write the trained model to this file")
    args = parser.parse_args()
    main(args.epochs, args.samples, args.batch_size, save=args.save)
