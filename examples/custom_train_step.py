"""Customising what ``fit`` does: a ``train_step`` with gradient clipping, as in Keras 3.

The model below overrides only ``train_step``: it clips the gradients to a
global norm before the update and tracks that norm as a metric of its own.
``fit``, the callbacks, the progress bar, ``validation_data`` and ``evaluate``
work unchanged around it.

    python examples/custom_train_step.py [--epochs 3] [--samples 60000] [--clip 1.0]
"""
import argparse

import numpy as np

import deepkit
from deepkit import layers
from deepkit.datasets import mnist
from deepkit.trainer import Logs
from deepkit.utils import unpack_x_y_sample_weight
from deepkit_engine import nd


class ClippedModel(deepkit.Model):
    """A functional model whose gradients are clipped to a global norm of ``clip_norm``."""

    def __init__(self, *args, clip_norm=1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.clip_norm = float(clip_norm)
        self.grad_norm = deepkit.metrics.Mean(name="grad_norm")

    def reset_metrics(self):
        super().reset_metrics()  # called at the start of every epoch and evaluation
        self.grad_norm.reset()

    def train_step(self, data):
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        exe = self.bind_step("train", x, y, sample_weight)  # cached executor, batch fed
        exe.forward(is_train=True)
        exe.backward()
        grads = self.step_gradients(exe)
        # everything below is queued on the engine: nothing waits for the values
        norm = nd.sqrt(nd.add_n(*[nd.sum(nd.square(g)) for _, g in grads]))
        scale = nd.minimum(nd.ones_like(norm), self.clip_norm / (norm + 1e-6))
        self.optimizer.apply([(p, nd.broadcast_mul(g, scale)) for p, g in grads])
        self.grad_norm.update(norm)
        logs = dict(self.update_metrics(exe))  # loss and accuracy, read lazily
        logs["grad_norm"] = self.grad_norm.result
        return Logs(logs)


def build(clip_norm):
    inputs = deepkit.Input(shape=(784,), name="pixels")
    h = layers.Dense(256, activation="relu")(inputs)
    h = layers.Dropout(0.2)(h)
    outputs = layers.Dense(10, activation="softmax")(h)
    return ClippedModel(inputs, outputs, clip_norm=clip_norm, name="clipped_mlp")


def main(epochs=3, samples=60000, batch_size=128, clip_norm=1.0, verbose=1, seed=0):
    deepkit.set_seed(seed)
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    x_train = x_train[:samples].reshape(-1, 784).astype(np.float32) / 255.0
    y_train = y_train[:samples]
    x_test = x_test.reshape(-1, 784).astype(np.float32) / 255.0
    model = build(clip_norm)
    model.compile(deepkit.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs,
                        verbose=verbose, validation_data=(x_test, y_test),
                        callbacks=[deepkit.callbacks.EarlyStopping("val_loss", patience=2)])
    accuracy = model.evaluate(x_test, y_test, batch_size=1000, return_dict=True)["accuracy"]
    print(f"test accuracy {accuracy:.4f}; mean gradient norm per epoch (before clipping): "
          + ", ".join(f"{v:.3f}" for v in history.history["grad_norm"]))
    return accuracy, history


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=60000)
    parser.add_argument("--clip", type=float, default=1.0)
    args = parser.parse_args()
    main(args.epochs, args.samples, clip_norm=args.clip)
