"""Fine-tuning in one call: LeNet trained on digits 0-4, adapted to digits 5-9.

Starts from the zoo's ``lenet_mnist_0to4`` (which never saw a 5-9), replaces
its classifier with a 5-class one, freezes the convolutions and trains on only
1,000 images of digits 5-9. The same network trained from scratch on the same
images for the same number of steps is printed beside it.

    python examples/finetune_lenet.py [--images 1000] [--epochs 10]
"""
import argparse

import numpy as np

import deepkit
import model_zoo
from deepkit.datasets import mnist


def digits_5_to_9(images, labels, count=None, seed=0):
    keep = labels >= 5
    x, y = images[keep], labels[keep] - 5
    if count is not None:
        order = np.random.default_rng(seed).permutation(len(x))[:count]
        x, y = x[order], y[order]
    return x[:, None].astype(np.float32) / 255.0, y


def train_and_test(model, x, y, xt, yt, epochs, verbose):
    model.compile(deepkit.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=verbose)
    return model.evaluate(xt, yt, batch_size=1000)[1]


def main(images=1000, epochs=10, verbose=0, seed=0, head_lr_mult=10.0):
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    x, y = digits_5_to_9(x_train, y_train, images, seed)
    xt, yt = digits_5_to_9(x_test, y_test)

    deepkit.set_seed(seed)
    finetuned = model_zoo.get_model("lenet_mnist_0to4", num_classes=5,
                                    freeze=["conv1", "conv2"], head_lr_mult=head_lr_mult)
    fine_acc = train_and_test(finetuned, x, y, xt, yt, epochs, verbose)

    deepkit.set_seed(seed)
    scratch = model_zoo.get_model("lenet_mnist_0to4", pretrained=False, num_classes=5)
    scratch_acc = train_and_test(scratch, x, y, xt, yt, epochs, verbose)

    print(f"digits 5-9 test accuracy after {epochs} epochs on {len(x)} images: "
          f"fine-tuned {fine_acc:.4f}   from scratch {scratch_acc:.4f}")
    return fine_acc, scratch_acc


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    main(args.images, args.epochs, verbose=2)
