"""Keras model files in: real files written by Keras 3, and the Keras 2 HDF5 layout."""
import json

import h5py
import numpy as np
import pytest

import deepkit
from deepkit import layers as L
from deepkit.models import load_model
from deepkit.models.keras_format import is_keras_file, load_keras_model
from deepkit_engine.base import DeepkitError


@pytest.fixture(scope="module")
def keras_dir(shared_data):
    return shared_data / "keras"


def _close(got, want):
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * np.abs(want).max())


def test_a_keras3_archive_loads_and_predicts_what_keras_predicted(keras_dir):
    ref = np.load(keras_dir / "reference.npz")
    model = load_model(keras_dir / "mnist_convnet.keras")
    assert isinstance(model, deepkit.Sequential)
    assert model.get_layer("conv2d").data_format == "channels_last"
    _close(model.predict(ref["convnet_x"], batch_size=16), ref["convnet_y"])
    assert (model.predict(ref["convnet_x"]).argmax(1) == ref["labels"]).mean() > 0.9


def test_a_keras3_h5_file_loads_and_predicts_what_keras_predicted(keras_dir):
    ref = np.load(keras_dir / "reference.npz")
    model = load_model(keras_dir / "mnist_mlp.h5")
    assert [layer.name for layer in model.layers][1:] == ["dense_1", "dropout_1", "dense_2",
                                                           "dense_3"]
    _close(model.predict(ref["mlp_x"]), ref["mlp_y"])


def test_a_loaded_keras_model_trains_and_saves_as_deepkit(keras_dir, tmp_path):
    ref = np.load(keras_dir / "reference.npz")
    model = load_model(keras_dir / "mnist_mlp.h5")
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(ref["mlp_x"], ref["labels"], epochs=1, verbose=0)
    model.save(tmp_path / "mlp.h5")
    np.testing.assert_allclose(load_model(tmp_path / "mlp.h5").predict(ref["mlp_x"]),
                               model.predict(ref["mlp_x"]), rtol=1e-6)


def _keras2_file(path, dense_kernel, dense_bias, conv_kernel, conv_bias):
    """An HDF5 file in Keras 2's layout: nested inbound_nodes, batch_input_shape, ':0' names."""
    config = {"class_name": "Functional", "config": {
        "name": "model", "layers": [
            {"class_name": "InputLayer", "name": "input_1",
             "config": {"batch_input_shape": [None, 6, 6, 1], "dtype": "float32",
                        "name": "input_1"}, "inbound_nodes": []},
            {"class_name": "Conv2D", "name": "conv2d",
             "config": {"name": "conv2d", "filters": 2, "kernel_size": [3, 3],
                        "strides": [1, 1], "padding": "valid", "data_format": "channels_last",
                        "dilation_rate": [1, 1], "activation": "relu", "use_bias": True,
                        "dtype": "float32"},
             "inbound_nodes": [[["input_1", 0, 0, {}]]]},
            {"class_name": "Flatten", "name": "flatten",
             "config": {"name": "flatten", "data_format": "channels_last", "dtype": "float32"},
             "inbound_nodes": [[["conv2d", 0, 0, {}]]]},
            {"class_name": "Dense", "name": "dense",
             "config": {"name": "dense", "units": 3, "activation": "softmax",
                        "use_bias": True, "dtype": "float32"},
             "inbound_nodes": [[["flatten", 0, 0, {}]]]}],
        "input_layers": [["input_1", 0, 0]], "output_layers": [["dense", 0, 0]]}}
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        weights = f.create_group("model_weights")
        for name, arrays in (("conv2d", [("kernel:0", conv_kernel), ("bias:0", conv_bias)]),
                             ("dense", [("kernel:0", dense_kernel), ("bias:0", dense_bias)]),
                             ("flatten", []), ("input_1", [])):
            g = weights.create_group(name)
            g.attrs["weight_names"] = [f"{name}/{n}".encode() for n, _ in arrays]
            for n, a in arrays:
                g.create_dataset(f"{name}/{n}", data=a)


def test_the_keras2_layout_loads_and_computes_keras_semantics(tmp_path):
    rng = np.random.default_rng(0)
    conv_kernel = rng.normal(size=(3, 3, 1, 2)).astype(np.float32)  # (kh, kw, in, out)
    conv_bias = rng.normal(size=(2,)).astype(np.float32)
    dense_kernel = rng.normal(size=(32, 3)).astype(np.float32)      # (in, units)
    dense_bias = rng.normal(size=(3,)).astype(np.float32)
    path = tmp_path / "keras2.h5"
    _keras2_file(path, dense_kernel, dense_bias, conv_kernel, conv_bias)
    assert is_keras_file(path)
    x = rng.normal(size=(4, 6, 6, 1)).astype(np.float32)
    conv = np.zeros((4, 4, 4, 2), np.float32)  # channels_last, valid 3x3 convolution
    for i in range(4):
        for j in range(4):
            conv[:, i, j, :] = np.einsum("nhwc,hwco->no", x[:, i:i + 3, j:j + 3, :], conv_kernel)
    hidden = np.maximum(conv + conv_bias, 0).reshape(4, -1)  # Flatten in H, W, C order
    logits = hidden @ dense_kernel + dense_bias
    want = np.exp(logits - logits.max(1, keepdims=True))
    want /= want.sum(1, keepdims=True)
    model = load_keras_model(path)
    np.testing.assert_allclose(model.predict(x), want, rtol=1e-4, atol=1e-6)


def test_an_unsupported_keras_layer_is_named(tmp_path):
    path = tmp_path / "odd.h5"
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 4], "name": "in"}},
        {"class_name": "Hashing", "config": {"name": "hash", "num_bins": 3}}]}}
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"] = "3.15.1"
    with pytest.raises(DeepkitError, match="odd.h5.*'hash' is a Hashing.*supported: .*Conv2D"):
        load_model(path)


def test_deepkit_files_are_not_taken_for_keras_files(tmp_path):
    model = deepkit.Sequential([L.Dense(2, input_shape=(3,))])
    model.save(tmp_path / "m.h5")
    assert not is_keras_file(tmp_path / "m.h5")
