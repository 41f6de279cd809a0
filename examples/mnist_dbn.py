"""A deep belief net 784-500-500-2000 on MNIST: greedy pre-training, then fine-tuning.

Each RBM is pre-trained with CD-1 on the hidden means of the one below; the
stack becomes a Sequential of sigmoid Dense layers plus a softmax classifier,
fine-tuned with backpropagation. Hinton et al. (2006) report 98.75% test
accuracy for this architecture.

    python examples/mnist_dbn.py [--pretrain-epochs 10] [--epochs 30]
"""
import argparse

import numpy as np

import deepkit
from deepkit.datasets import mnist
from deepkit.rbm import DBN


def main(layers=(500, 500, 2000), pretrain_epochs=10, epochs=30, samples=60000, batch_size=100,
         verbose=1, save=None):
    """Pre-train, fine-tune and evaluate; returns the test accuracy."""
    deepkit.set_seed(0)
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    x_train = x_train[:samples].reshape(-1, 784).astype(np.float32) / 255
    y_train = y_train[:samples]
    x_test = x_test.reshape(-1, 784).astype(np.float32) / 255
    dbn = DBN(list(layers), learning_rate=0.1, momentum=0.5, weight_decay=0.0002)
    dbn.fit(x_train, epochs=pretrain_epochs, batch_size=100, k=1, verbose=verbose)
    if save:
        dbn.save(save)
    model = dbn.to_model(num_classes=10)
    model.compile(deepkit.optimizers.SGD(learning_rate=0.1, momentum=0.9),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    schedule = deepkit.callbacks.LearningRateScheduler(
        lambda epoch, lr: 0.1 * 0.95 ** epoch)
    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=verbose,
              callbacks=[schedule])
    _, accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    print(f"test accuracy {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-epochs", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--save", default=None, help="write the pre-trained DBN here (.h5)")
    args = parser.parse_args()
    main(pretrain_epochs=args.pretrain_epochs, epochs=args.epochs, save=args.save)
