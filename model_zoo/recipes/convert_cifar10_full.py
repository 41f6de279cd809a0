"""Make the shipped ``cifar10_full_caffe`` weights from the real Caffe model.

    python -m model_zoo.recipes.convert_cifar10_full [SHARED_DATA_DIR]

Converts ``caffe/cifar10_full_v1`` (deploy.prototxt + model.caffemodel) with
deepkit's converter, maps the weights by layer name onto the zoo's
``cifar10_full`` architecture, checks that both give the same outputs, and
writes ``model_zoo/weights/cifar10_full_caffe.h5`` with its sha256 in the manifest.
"""
import pathlib
import sys

import numpy as np

from deepkit import caffe
from deepkit.caffe.verify import run
from model_zoo import weights_store
from model_zoo.architectures import BUILDERS
from model_zoo.caffe_import import weights_from_conversion
from model_zoo.recipes.train_mnist import _update_manifest


def main(shared=None):
    shared = pathlib.Path(shared or pathlib.Path(__file__).resolve().parents[3] / "shared" / "data")
    folder = shared / "caffe" / "cifar10_full_v1"
    conversion = caffe.convert(folder / "deploy.prototxt", folder / "model.caffemodel")
    model = BUILDERS["cifar10_full"](num_classes=10)
    path = weights_store.shipped_dir() / "cifar10_full_caffe.h5"
    weights_from_conversion(conversion, model, path)
    x = np.random.default_rng(0).uniform(0, 255, (8, 3, 32, 32)).astype(np.float32)
    ours = model.predict(x)
    reference = list(run(conversion, x).values())[-1]
    diff = float(np.abs(ours - reference).max())
    if diff > 1e-4:
        raise SystemExit(f"zoo model and conversion differ by {diff}")
    _update_manifest("cifar10_full_caffe", {"file": path.name,
                                            "sha256": weights_store.sha256_of(path),
                                            "max_diff_vs_converter": diff})
    print(f"wrote {path}; max |zoo - converter| = {diff:.2e}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
