"""MNIST read row by row: each image is 28 time steps of 28 pixels, through an LSTM of 128 units.

    python examples/mnist_lstm.py [--epochs 10] [--samples 60000] [--compare-torch]

``--compare-torch`` also times one epoch of the same model (LSTM 128 + Dense
10, Adam, batch 128) in PyTorch on the CPU, when torch is installed.
"""
import argparse
import time

import numpy as np

import deepkit
from deepkit import layers
from deepkit.datasets import mnist


def build_model(units=128):
    """An LSTM over the 28 rows of an image, then a softmax over the 10 digits."""
    return deepkit.Sequential([
        layers.LSTM(units, input_shape=(28, 28)),
        layers.Dense(10, activation="softmax"),
    ])


def load(samples, test_samples=10000):
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    x_train = x_train[:samples].reshape(-1, 28, 28).astype(np.float32) / 255.0
    x_test = x_test[:test_samples].reshape(-1, 28, 28).astype(np.float32) / 255.0
    return (x_train, y_train[:samples]), (x_test, y_test[:test_samples])


def torch_epoch_seconds(x, y, units=128, batch_size=128):
    """Seconds for one training epoch of the same model in PyTorch (None without torch)."""
    try:
        import torch  # noqa: PLC0415 - optional: only for the timing comparison
    except ImportError:
        return None

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(28, units, batch_first=True)
            self.fc = torch.nn.Linear(units, 10)

        def forward(self, inputs):
            return self.fc(self.lstm(inputs)[0][:, -1])

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    start = time.perf_counter()
    for i in range(0, len(xs), batch_size):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(xs[i:i + batch_size]), ys[i:i + batch_size])
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def main(epochs=10, samples=60000, batch_size=128, verbose=1, seed=0, compare_torch=False,
         test_samples=10000):
    deepkit.set_seed(seed)
    (x_train, y_train), (x_test, y_test) = load(samples, test_samples)
    model = build_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    if verbose:
        model.summary()
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=verbose)
    per_epoch = (time.perf_counter() - start) / max(epochs, 1)
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=1000)
    print(f"test loss {loss:.4f}  test accuracy {accuracy:.4f}  ({per_epoch:.1f}s per epoch)")
    if compare_torch:
        seconds = torch_epoch_seconds(x_train, y_train, batch_size=batch_size)
        if seconds is None:
            print("torch is not installed: no comparison")
        else:
            print(f"PyTorch epoch {seconds:.1f}s; deepkit/PyTorch time ratio "
                  f"{per_epoch / seconds:.2f}")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--samples", type=int, default=60000)
    parser.add_argument("--compare-torch", action="store_true")
    args = parser.parse_args()
    main(args.epochs, args.samples, compare_torch=args.compare_torch)
