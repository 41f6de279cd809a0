"""Train the shipped MNIST weights: lenet_mnist, mlp_mnist, lenet_mnist_0to4.

    python -m model_zoo.recipes.train_mnist [lenet_mnist mlp_mnist lenet_mnist_0to4]

Each model is trained from a fixed seed on the bundled MNIST, evaluated on
the test set, and written to ``model_zoo/weights/<name>.h5`` (weights only);
its sha256 and accuracy go to ``model_zoo/weights/manifest.json``, which the
registry reads.
"""
import json
import sys

import numpy as np

import deepkit
from deepkit.datasets import mnist
from deepkit_engine.fileio import atomic_path
from model_zoo import weights_store
from model_zoo.architectures import BUILDERS

RECIPES = {
    # name: (architecture, epochs, learning-rate decay per epoch, digits used)
    "lenet_mnist": ("lenet", 8, 0.7, None),
    "mlp_mnist": ("mlp", 30, 0.92, None),
    "lenet_mnist_0to4": ("lenet", 4, 0.7, (0, 1, 2, 3, 4)),
}


def _subset(x, y, digits):
    if digits is None:
        return x, y
    keep = np.isin(y, digits)
    return x[keep], y[keep]


def train(name, seed=0):
    arch, epochs, decay, digits = RECIPES[name]
    deepkit.set_seed(seed)
    (x, y), (xt, yt) = mnist.load_data()
    x, y = _subset(x[:, None].astype(np.float32) / 255.0, y, digits)
    xt, yt = _subset(xt[:, None].astype(np.float32) / 255.0, yt, digits)
    model = BUILDERS[arch](num_classes=10, input_shape=(1, 28, 28))
    schedule = deepkit.schedules.ExponentialDecay(1e-3, decay_steps=len(x) // 128,
                                                  decay_rate=decay)
    model.compile(deepkit.optimizers.Adam(schedule), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=128, epochs=epochs, verbose=2)
    _, accuracy = model.evaluate(xt, yt, batch_size=1000)
    path = weights_store.shipped_dir() / f"{name}.h5"
    model.save_weights(path)
    digest = weights_store.sha256_of(path)
    test_set = "MNIST test set" + (f", digits {digits[0]}-{digits[-1]}" if digits else "")
    _update_manifest(name, {"file": path.name, "sha256": digest,
                            "accuracy": round(float(accuracy), 4), "measured_on": test_set,
                            "epochs": epochs, "seed": seed})
    print(f"{name}: test accuracy {accuracy:.4f} ({test_set}); wrote {path} sha256 {digest}")
    return accuracy


def _update_manifest(name, record):
    path = weights_store.shipped_dir() / "manifest.json"
    manifest = json.loads(path.read_text()) if path.exists() else {}
    manifest[name] = record
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(manifest, f, indent=2, sort_keys=True)
            f.write("\n")


if __name__ == "__main__":
    for model_name in sys.argv[1:] or list(RECIPES):
        train(model_name)
