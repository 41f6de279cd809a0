"""The zoo: shipped weights, one-call fine-tuning, preprocessing, bad input, CLI."""
import importlib.util
import pathlib
import shutil

import h5py
import numpy as np
import pytest

import deepkit
import model_zoo
from deepkit.datasets import mnist
from deepkit.layers.base import reset_names
from deepkit_engine.base import DeepkitError
from model_zoo import weights_store

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"
MNIST_ENTRIES = ["lenet_mnist", "mlp_mnist", "lenet_mnist_0to4"]


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """An empty $DEEPKIT_HOME, so only the shipped weights are found."""
    monkeypatch.setenv("DEEPKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DEEPKIT_OFFLINE", "1")
    reset_names()
    deepkit.set_seed(0)


@pytest.fixture(scope="module")
def mnist_test():
    _, (x, y) = mnist.load_data()
    return x[:, None].astype(np.float32) / 255.0, y


def _shipped(name):
    entry = model_zoo.REGISTRY[name]
    return (weights_store.shipped_dir() / entry.weights).is_file()


@pytest.mark.parametrize("name", MNIST_ENTRIES)
def test_shipped_weights_pass_checksums_and_reach_their_accuracy(name, mnist_test):
    if not _shipped(name):
        pytest.fail(f"the weights of {name} are not shipped; run "
                    f"python -m model_zoo.recipes.train_mnist {name}")
    entry = model_zoo.info(name)
    assert entry.sha256 and len(entry.sha256) == 64
    model = model_zoo.get_model(name)
    x, y = mnist_test
    if name == "lenet_mnist_0to4":
        keep = y < 5
        x, y = x[keep], y[keep]
    predictions = model.predict(x, batch_size=1000).argmax(axis=1)
    accuracy = float((predictions == y).mean())
    floor = {"lenet_mnist": 0.990, "mlp_mnist": 0.975, "lenet_mnist_0to4": 0.99}[name]
    assert accuracy >= floor
    assert f"{accuracy:.4f}" in entry.accuracy  # the registry states what was measured


def test_new_head_replaces_the_old_one_everywhere(tmp_path):
    model = model_zoo.get_model("lenet_mnist_0to4", num_classes=3, freeze="features",
                                head_lr_mult=10)
    head = model.get_layer("ip2")
    assert head.params["weight"].shape == (3, 500)
    assert head.params["weight"].lr_mult == 10
    assert model.outputs[0].shape == (None, 3)
    model.save(tmp_path / "tuned.h5")
    with h5py.File(tmp_path / "tuned.h5") as f:
        assert f["weights/ip2/weight"].shape == (3, 500)
    pretrained = model_zoo.get_model("lenet_mnist_0to4")
    np.testing.assert_array_equal(model.get_layer("conv1").get_weights()[0],
                                  pretrained.get_layer("conv1").get_weights()[0])


def test_frozen_parameters_are_bit_identical_after_training(mnist_test):
    model = model_zoo.get_model("lenet_mnist_0to4", num_classes=5, freeze=["conv1", "conv2"])
    frozen = [model.get_layer(n).get_weights() for n in ("conv1", "conv2")]
    trained_before = model.get_layer("ip1").get_weights()[0].copy()
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y = mnist_test
    model.fit(x[:256], y[:256] % 5, batch_size=64, epochs=1, verbose=0)
    for name, before in zip(("conv1", "conv2"), frozen):
        for a, b in zip(before, model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(trained_before, model.get_layer("ip1").get_weights()[0])


def test_frozen_batchnorm_stays_in_inference_mode():
    model = model_zoo.get_model("resnet18", pretrained=False, num_classes=3, freeze="features",
                                input_shape=(3, 32, 32))
    bn = next(layer for layer in model.layers if type(layer).__name__ == "BatchNormalization")
    before = [w.copy() for w in bn.get_weights()]
    model.compile("sgd", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(8, 3, 32, 32)).astype(np.float32), np.arange(8) % 3,
              batch_size=4, epochs=1, verbose=0)
    for a, b in zip(before, bn.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_feature_extractor_and_freeze_by_count():
    features = model_zoo.get_model("lenet_mnist", include_top=False, pooling=None,
                                   pretrained=_shipped("lenet_mnist"))
    assert features.outputs[0].shape[0] is None
    pooled = model_zoo.get_model("cifar10_full", pretrained=False, include_top=False,
                                 pooling="avg")
    assert len(pooled.outputs[0].shape) == 2
    model = model_zoo.get_model("lenet", pretrained=False, freeze=2)
    assert [l.name for l in model.layers if l.params and not l.trainable] == ["conv1", "conv2"]


def test_preprocessing_travels_with_the_model():
    model = model_zoo.get_model("lenet_mnist_0to4")
    raw = np.full((2, 28, 28), 255, np.uint8)
    x = model.preprocess(raw)
    assert x.shape == (2, 1, 28, 28) and x.dtype == np.float32 and x.max() == 1.0
    with pytest.warns(UserWarning, match="expects values in \\[0, 1\\]"):
        model.predict(raw[:, None].astype(np.float32))
    import warnings  # noqa: PLC0415
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict(raw[:, None].astype(np.float32))  # warns once only


def test_unfreeze_at_epoch(mnist_test):
    model = model_zoo.get_model("lenet_mnist_0to4", num_classes=5, freeze="features")
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y = mnist_test
    before = model.get_layer("conv1").get_weights()[0].copy()
    cb = model_zoo.UnfreezeAt(1, ["conv1"], lr_mult=0.1)
    model.fit(x[:128], y[:128] % 5, batch_size=64, epochs=1, verbose=0, callbacks=[cb])
    np.testing.assert_array_equal(before, model.get_layer("conv1").get_weights()[0])
    model.fit(x[:128], y[:128] % 5, batch_size=64, epochs=2, initial_epoch=1, verbose=0,
              callbacks=[cb])
    assert model.get_layer("conv1").trainable
    assert model.get_layer("conv1").params["weight"].lr_mult == 0.1
    assert not np.array_equal(before, model.get_layer("conv1").get_weights()[0])


def test_bad_input_is_explained(tmp_path, monkeypatch):
    with pytest.raises(KeyError, match="unknown model 'lenet_mnst'.*did you mean 'lenet_mnist'"):
        model_zoo.get_model("lenet_mnst")
    with pytest.raises(ValueError, match="num_classes replaces the classifier"):
        model_zoo.get_model("lenet_mnist_0to4", num_classes=3, include_top=False)
    with pytest.raises(ValueError, match="no layer named \\['conv9'\\].*conv1"):
        model_zoo.get_model("lenet_mnist_0to4", freeze=["conv9"])
    with pytest.raises(DeepkitError, match="architecture without pre-trained weights"):
        model_zoo.get_model("resnet50")
    cache = tmp_path / "home" / "models"
    cache.mkdir(parents=True)
    entry = model_zoo.info("lenet_mnist_0to4")
    shutil.copy(weights_store.shipped_dir() / entry.weights, cache / entry.weights)
    with open(cache / entry.weights, "r+b") as f:
        f.seek(4000)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(DeepkitError, match="lenet_mnist_0to4.h5 have sha256 .* expects"):
        model_zoo.get_model("lenet_mnist_0to4")
    monkeypatch.setattr(entry, "weights", "not_there.h5")
    with pytest.raises(DeepkitError, match="no weights for 'lenet_mnist_0to4'.*not_there.h5"):
        model_zoo.get_model("lenet_mnist_0to4")


def test_cli_list_info_verify(capsys):
    from deepkit.cli import main  # noqa: PLC0415
    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    assert "lenet_mnist_0to4" in out and "resnet50" in out
    assert main(["zoo", "info", "lenet_mnist_0to4"]) == 0
    assert '"architecture": "lenet"' in capsys.readouterr().out
    assert main(["zoo", "info", "nope"]) == 2


def test_finetune_example_beats_training_from_scratch():
    spec = importlib.util.spec_from_file_location("finetune", EXAMPLES / "finetune_lenet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fine, scratch = module.main(images=1000, epochs=1)
    assert fine > scratch + 0.02 and fine > 0.9


def test_cifar10_full_caffe_equals_the_converter(shared_data):
    from deepkit import caffe  # noqa: PLC0415
    from deepkit.caffe.verify import run  # noqa: PLC0415
    folder = shared_data / "caffe" / "cifar10_full_v1"
    conversion = caffe.convert(folder / "deploy.prototxt", folder / "model.caffemodel")
    model = model_zoo.get_model("cifar10_full_caffe")
    x = np.random.default_rng(1).uniform(0, 255, (4, 3, 32, 32)).astype(np.float32)
    reference = list(run(conversion, x).values())[-1]
    np.testing.assert_allclose(model.predict(x), reference, rtol=1e-5, atol=1e-6)
    assert model_zoo.info("cifar10_full_caffe").preprocessing["channel_order"] == "BGR"


def test_import_caffe_registers_a_converted_model(shared_data, tmp_path):
    from deepkit.cli import main  # noqa: PLC0415
    folder = shared_data / "caffe" / "lenet_mnist"
    code = main(["zoo", "import-caffe", "my_lenet", str(folder / "deploy.prototxt"),
                 str(folder / "model.caffemodel")])
    assert code == 0
    model = model_zoo.get_model("my_lenet")
    _, (x, y) = mnist.load_data()
    probs = model.predict(x[:500, None].astype(np.float32) / 256.0, batch_size=250)
    assert (probs.argmax(1) == y[:500]).mean() > 0.97
    model_zoo.REGISTRY.pop("my_lenet")
