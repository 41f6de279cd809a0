"""Features from a pre-trained zoo model, and a small classifier trained on them.

LeNet trained on MNIST, without its classifier, turns each digit into a
500-dimensional feature vector; a linear classifier on those features,
trained on a few hundred images, already classifies well.

    python examples/feature_extraction.py [--images 500]
"""
import argparse

import numpy as np

import deepkit
import model_zoo
from deepkit import layers
from deepkit.datasets import mnist


def main(images=500, epochs=20, verbose=0):
    deepkit.set_seed(0)
    (x, y), (xt, yt) = mnist.load_data()
    lenet = model_zoo.get_model("lenet_mnist")
    # the 500 units before the classifier; the extractor shares lenet's weights
    extractor = deepkit.Model(lenet.inputs, lenet.get_layer("ip1").output)
    x = lenet.preprocess(x[:images])
    xt = lenet.preprocess(xt)
    features = extractor.predict(x, batch_size=250)
    test_features = extractor.predict(xt, batch_size=1000)
    print(f"features: {features.shape[1]} per image (layer '{extractor.layers[-1].name}')")

    classifier = deepkit.Sequential([layers.Dense(10, activation="softmax",
                                                  input_shape=features.shape[1:])])
    classifier.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    classifier.fit(features, y[:images], batch_size=32, epochs=epochs, verbose=verbose)
    _, accuracy = classifier.evaluate(test_features, yt, batch_size=1000)
    print(f"linear classifier on {images} images' features: test accuracy {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    args = parser.parse_args()
    main(args.images)
