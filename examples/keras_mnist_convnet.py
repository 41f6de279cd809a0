"""The keras.io "Simple MNIST convnet", unchanged but for its imports and one data-format line.

Source: https://keras.io/examples/vision/mnist_convnet/ (Keras 3). The two
changes: ``import deepkit as keras`` / ``from deepkit import layers`` instead of
the Keras imports, and ``keras.backend.set_image_data_format("channels_last")``
because the script feeds NHWC images while deepkit defaults to NCHW.

    python examples/keras_mnist_convnet.py            # the published 15 epochs
    python examples/keras_mnist_convnet.py --epochs 3 --samples 12000
"""
import argparse

import numpy as np

import deepkit as keras
from deepkit import layers

keras.backend.set_image_data_format("channels_last")  # the script's images are NHWC


def main(epochs=15, samples=60000, verbose=1):
    # Model / data parameters
    num_classes = 10
    input_shape = (28, 28, 1)

    # Load the data and split it between train and test sets
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    x_train, y_train = x_train[:samples], y_train[:samples]

    # Scale images to the [0, 1] range
    x_train = x_train.astype("float32") / 255
    x_test = x_test.astype("float32") / 255
    # Make sure images have shape (28, 28, 1)
    x_train = np.expand_dims(x_train, -1)
    x_test = np.expand_dims(x_test, -1)
    print("x_train shape:", x_train.shape)
    print(x_train.shape[0], "train samples")
    print(x_test.shape[0], "test samples")

    # convert class vectors to binary class matrices
    y_train = keras.utils.to_categorical(y_train, num_classes)
    y_test = keras.utils.to_categorical(y_test, num_classes)

    model = keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(num_classes, activation="softmax"),
        ]
    )

    model.summary()

    batch_size = 128

    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_split=0.1,
              verbose=verbose)

    score = model.evaluate(x_test, y_test, verbose=0)
    print("Test loss:", score[0])
    print("Test accuracy:", score[1])
    return score[1]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--samples", type=int, default=60000)
    args = parser.parse_args()
    main(args.epochs, args.samples)
