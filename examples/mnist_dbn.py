"""A deep belief net 784-500-500-2000 on MNIST: greedy pre-training, then fine-tuning.

Each RBM is pre-trained with CD-1 on the hidden means of the one below, with
the recipe of Hinton and Salakhutdinov's ``rbm.m``: learning rate 0.1,
momentum 0.5 for 5 epochs and 0.9 after, weight decay 2e-4, 50 epochs per
layer. The stack becomes a Sequential of sigmoid Dense layers plus a softmax
classifier, fine-tuned with backpropagation and light dropout (Srivastava et
al., 2014). The last 10,000 training images are held out for validation:
fine-tuning keeps the weights of the epoch with the best validation accuracy,
and the test set is only used for the final figure. Hinton et al. (2006)
report 98.75% test accuracy for this architecture.

Pre-training takes most of the time; ``--save`` keeps the pre-trained DBN and
``--load`` fine-tunes a saved one (fine-tuning draws its own random numbers,
so it gives the same result either way)::

    python examples/mnist_dbn.py [--pretrain-epochs 50] [--epochs 40] [--save dbn.h5]
    python examples/mnist_dbn.py --load dbn.h5
"""
import argparse
import time

import numpy as np

import deepkit
from deepkit.datasets import mnist
from deepkit.rbm import DBN, load_dbn


def main(layers=(500, 500, 2000), pretrain_epochs=50, epochs=40, samples=60000, batch_size=100,
         verbose=1, save=None, load=None, validation=10000, learning_rate=0.1, dropout=0.2,
         patience=10):
    """Pre-train (or load), fine-tune and evaluate; returns the test accuracy.

    Args:
        layers: Hidden layer sizes, bottom first.
        pretrain_epochs: CD-1 epochs per RBM.
        epochs: Most fine-tuning epochs (fewer when the validation accuracy
            stops improving for ``patience`` epochs).
        samples: Training images used (the first ones), validation included.
        batch_size: Fine-tuning batch size (pre-training uses 100).
        verbose: 0 silent, 1 progress bars.
        save: Write the pre-trained DBN here (.h5).
        load: Fine-tune this saved DBN instead of pre-training one.
        validation: Training images held out (the last ones) to pick the
            fine-tuning epoch.
        learning_rate: Initial fine-tuning step (SGD, momentum 0.9), decayed
            by 3% an epoch.
        dropout: Dropout rate after each hidden layer during fine-tuning.
        patience: Epochs without a better validation accuracy before
            fine-tuning stops.
    """
    if not 0 < validation < samples:
        raise ValueError(f"mnist_dbn: validation={validation} must be between 0 and "
                         f"samples={samples} (exclusive)")
    started = time.time()
    deepkit.set_seed(0)
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    x_train = x_train[:samples].reshape(-1, 784).astype(np.float32) / 255
    y_train = y_train[:samples]
    x_test = x_test.reshape(-1, 784).astype(np.float32) / 255
    split = samples - validation
    x_val, y_val = x_train[split:], y_train[split:]
    x_train, y_train = x_train[:split], y_train[:split]

    if load:
        dbn = load_dbn(load)
    else:
        dbn = DBN(list(layers), learning_rate=0.1, momentum=0.5, final_momentum=0.9,
                  momentum_epochs=5, weight_decay=0.0002)
        dbn.fit(x_train, epochs=pretrain_epochs, batch_size=100, k=1, verbose=verbose)
        if save:
            dbn.save(save)
    if verbose:
        print(f"pre-training done after {time.time() - started:.0f} s")

    deepkit.set_seed(1)
    model = dbn.to_model(num_classes=10, dropout=dropout)
    model.compile(deepkit.optimizers.SGD(learning_rate=learning_rate, momentum=0.9),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    callbacks = [
        deepkit.callbacks.LearningRateScheduler(lambda epoch, lr: learning_rate * 0.97 ** epoch),
        deepkit.callbacks.EarlyStopping(monitor="val_accuracy", patience=patience,
                                        restore_best_weights=True, verbose=verbose)]
    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=verbose,
              validation_data=(x_val, y_val), callbacks=callbacks)
    _, val_accuracy = model.evaluate(x_val, y_val, batch_size=1000, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    print(f"validation accuracy {val_accuracy:.4f}, test accuracy {accuracy:.4f} "
          f"({time.time() - started:.0f} s)")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-epochs", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--save", default=None, help="write the pre-trained DBN here (.h5)")
    parser.add_argument("--load", default=None, help="fine-tune this saved DBN (.h5)")
    args = parser.parse_args()
    main(pretrain_epochs=args.pretrain_epochs, epochs=args.epochs, save=args.save,
         load=args.load)
