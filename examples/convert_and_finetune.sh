#!/usr/bin/env bash
# Convert a Caffe model with the CLI, import it into the zoo, then fine-tune it.
#
#   bash examples/convert_and_finetune.sh [CAFFE_DIR]
#
# CAFFE_DIR holds deploy.prototxt and model.caffemodel (default: Caffe's LeNet
# from ../shared/data/caffe/lenet_mnist). Everything is written to a temporary
# DEEPKIT_HOME so your own cache is untouched.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
caffe_dir=${1:-"$here/../../shared/data/caffe/lenet_mnist"}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export DEEPKIT_HOME="$work/home"
python=${PYTHON:-python3}

# 1. convert, with the per-layer table, to one model file
"$python" -m deepkit.cli convert-caffe "$caffe_dir/deploy.prototxt" \
    "$caffe_dir/model.caffemodel" -o "$work/lenet_caffe.h5"

# 2. register it in the (local) zoo and see it listed
"$python" -m deepkit.cli zoo import-caffe lenet_caffe "$caffe_dir/deploy.prototxt" \
    "$caffe_dir/model.caffemodel"
"$python" -m deepkit.cli zoo list | grep lenet_caffe

# 3. fine-tune: the zoo's LeNet keeps Caffe's layer names, so the converted weights
#    load by name; replace the head (10 -> 5 classes: digits 5-9), freeze the convolutions
"$python" - "$caffe_dir" "$work" <<'PY'
import sys
import numpy as np
import deepkit
from deepkit import caffe
from deepkit.datasets import mnist
from model_zoo.architectures import BUILDERS
from model_zoo.caffe_import import weights_from_conversion

caffe_dir, work = sys.argv[1], sys.argv[2]
conversion = caffe.convert(f"{caffe_dir}/deploy.prototxt", f"{caffe_dir}/model.caffemodel")
base = BUILDERS["lenet"](num_classes=10, input_shape=(1, 28, 28), classifier_activation=None)
weights_from_conversion(conversion, base, f"{work}/lenet_caffe_weights.h5")

model = BUILDERS["lenet"](num_classes=5, input_shape=(1, 28, 28))
model.load_weights(f"{work}/lenet_caffe_weights.h5", skip_mismatch=True)  # all but the head
for name in ("conv1", "conv2"):
    model.get_layer(name).trainable = False
(x, y), (xt, yt) = mnist.load_data()
keep, keep_t = y >= 5, yt >= 5
x, y = x[keep][:1000, None] / 256.0, y[keep][:1000] - 5   # Caffe's LeNet scales by 1/256
xt, yt = xt[keep_t][:, None] / 256.0, yt[keep_t] - 5
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x, y, batch_size=32, epochs=3, verbose=2)
print("fine-tuned converted LeNet, digits 5-9 test accuracy:",
      round(model.evaluate(xt, yt, batch_size=1000)[1], 4))
PY
