"""What the fuzz tests feed to the readers, and what counts as a clean outcome.

Each ``check_*`` function reads one (possibly hostile) input and returns
``'ok'`` or the name of the clean error it raised; any other exception
propagates, which is the bug a fuzzer looks for. The suite runs them briefly
with hypothesis (``tests/deepkit/test_reliability_fuzz.py``); ``campaign.py``
runs them for as long as a developer wants.
"""
import os
import tempfile
import warnings

import numpy as np

import deepkit
from deepkit import layers as L
from deepkit.caffe.reader import CaffeFormatError, blob_array, read_caffemodel, read_prototxt
from deepkit_engine.base import DeepkitError, FileFormatError
from tests.deepkit.caffe.caffe_writer import caffemodel_bytes, v2_layer

SEED_PROTOTXT = '''name: "net"
input: "data"
input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8
layer { name: "conv" type: "Convolution" bottom: "data" top: "c"
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 weight_filler { type: "xavier" } }
  param { lr_mult: 1 } param { lr_mult: 2 decay_mult: 0 } }
layer { name: "pool" type: "Pooling" bottom: "c" top: "p"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layers { name: "relu" type: RELU bottom: "p" top: "p" }
layer { name: "fc" type: "InnerProduct" bottom: "p" top: "y" inner_product_param {
  num_output: 10 bias_term: true } include { phase: TEST } unknown_fork_param { x: 1.5 } }
'''

#: Tokens the prototxt fuzzer splices in: syntax, schema words, hostile literals.
PROTOTXT_TOKENS = [
    "{", "}", "[", "]", "<", ">", ":", ",", ";", "-", "#", '"', "'", "\\", "\n", " ",
    "0", "1", "-1", "0x1F", "017", "1e400", "nan", "inf", "true", "f", "layer", "layers",
    "name", "type", "param", "bottom", "top", "blobs", "shape", "dim", "input_shape",
    "pooling_param", "ceil_mode", "pool", "MAX", "RELU", "CONVOLUTION", "include",
    "phase", "TEST", '"\\x41\\101\\u00e9"', "9" * 80, "layer {" * 3, "} " * 3,
]


def check_prototxt(text):
    """Parse ``text`` as a network prototxt; clean outcomes: a net or a CaffeFormatError."""
    try:
        read_prototxt(text if "\n" in text or "{" in text else text + "\n")
    except CaffeFormatError as err:
        assert err.line is None or err.line >= 1
        return "CaffeFormatError"
    return "ok"


def seed_caffemodel():
    """The bytes of a small caffemodel (two layers with weights)."""
    rng = np.random.default_rng(0)
    return caffemodel_bytes({"name": "net", "layer": [
        v2_layer("conv", "Convolution", ["data"], ["c"],
                 blobs=[rng.normal(size=(4, 3, 3, 3)).astype(np.float32),
                        np.zeros(4, np.float32)],
                 convolution_param={"num_output": 4, "kernel_size": [3]}),
        v2_layer("fc", "InnerProduct", ["c"], ["y"],
                 blobs=[rng.normal(size=(10, 16)).astype(np.float32)])]})


def check_caffemodel(data):
    """Read ``data`` as a caffemodel and its blobs; clean: a net or a CaffeFormatError."""
    try:
        net = read_caffemodel(bytes(data))
        for layer in net.layer:
            for blob in layer.blobs:
                blob_array(blob)
    except CaffeFormatError:
        return "CaffeFormatError"
    return "ok"


def seed_model_file(folder):
    """Save a small compiled and trained model in ``folder``; returns the file's bytes."""
    model = deepkit.Sequential([L.Dense(6, activation="relu", input_shape=(4,), name="h"),
                                L.Dense(3, activation="softmax", name="out")], name="seed")
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    model.fit(x, np.arange(16) % 3, batch_size=8, verbose=0)
    path = os.path.join(folder, "seed.h5")
    model.save(path)
    with open(path, "rb") as f:
        return f.read()


def check_model_file(data, folder=None):
    """Load ``data`` as a model file; clean: a model, or a deepkit error naming the file."""
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        path = os.path.join(tmp, "fuzzed.h5")
        with open(path, "wb") as f:
            f.write(bytes(data))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                deepkit.load_model(path)
        except FileFormatError as err:
            assert path in str(err), str(err)
            return "FileFormatError"
        except DeepkitError:
            return "DeepkitError"  # e.g. a config naming a layer class that does not exist
    return "ok"


def mutate(data, edits, rng):
    """``data`` (bytes or str) with ``edits`` random byte/char changes, cuts and copies."""
    is_text = isinstance(data, str)
    buf = list(data) if is_text else bytearray(data)
    for _ in range(edits):
        if not buf:
            break
        op = rng.random()
        pos = rng.randrange(len(buf))
        if op < 0.4:
            if is_text:
                buf[pos:pos] = list(rng.choice(PROTOTXT_TOKENS))
            else:
                buf[pos] = rng.randrange(256)
        elif op < 0.6:
            del buf[pos:pos + rng.randint(1, 16)]
        elif op < 0.8:
            start = rng.randrange(len(buf))
            buf[pos:pos] = buf[start:start + rng.randint(1, 64)]
        elif not is_text:
            buf[pos] ^= 1 << rng.randrange(8)
        else:
            del buf[pos:]
    return "".join(buf) if is_text else bytes(buf)
