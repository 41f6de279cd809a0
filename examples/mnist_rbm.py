"""An RBM with 500 hidden units on MNIST: reconstruction error per epoch, filters and samples.

Trains with CD-1 (or PCD with --persistent), prints the reconstruction error
of every epoch, and draws the first 100 filters and 100 samples after 1,000
steps of Gibbs sampling as PNG image grids.

    python examples/mnist_rbm.py [--epochs 10] [--hidden 500] [--out rbm_mnist]
"""
import argparse
import pathlib

import numpy as np

import deepkit
from deepkit.datasets import mnist
from deepkit.rbm import RBM


def main(epochs=10, samples=60000, hidden=500, gibbs_steps=1000, out="rbm_mnist",
         persistent=False, verbose=1):
    """Train, report and draw; returns the History (``reconstruction_error`` per epoch)."""
    deepkit.set_seed(0)
    (x_train, _), (x_test, _) = mnist.load_data()
    x_train = x_train[:samples].reshape(-1, 784).astype(np.float32) / 255
    rbm = RBM(hidden, learning_rate=0.1, momentum=0.5, weight_decay=0.0002)
    history = rbm.fit(x_train, epochs=epochs, batch_size=100, k=1, persistent=persistent,
                      verbose=verbose)
    for epoch, error in enumerate(history.history["reconstruction_error"]):
        print(f"epoch {epoch + 1}: reconstruction error {error:.2f}")
    x_test = x_test.reshape(-1, 784).astype(np.float32) / 255
    print(f"test reconstruction error {rbm.reconstruction_error(x_test[:2000]):.2f}")
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rbm.save_filters(out / "filters.png", (28, 28))
    rbm.save_samples(out / "samples.png", (28, 28), n=100, gibbs_steps=gibbs_steps)
    rbm.save(out / "rbm.h5")
    print(f"filters, samples and the RBM written to {out}/")
    return history


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--gibbs-steps", type=int, default=1000)
    parser.add_argument("--persistent", action="store_true")
    parser.add_argument("--out", default="rbm_mnist")
    args = parser.parse_args()
    main(args.epochs, hidden=args.hidden, gibbs_steps=args.gibbs_steps, out=args.out,
         persistent=args.persistent)
