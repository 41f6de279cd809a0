"""``deepkit.models``: the Keras module layout, old files, JSON round trips and cloning."""
import importlib
import pathlib

import numpy as np
import pytest

import deepkit
from deepkit import layers as L
from deepkit.models import clone_model, load_model, model_from_json

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures"


@pytest.mark.parametrize("module, names", [
    ("layers", ["Dense", "Conv2D", "Input"]),
    ("models", ["Model", "Sequential", "load_model", "model_from_json", "clone_model"]),
    ("optimizers", ["SGD", "Adam"]), ("losses", ["get"]), ("metrics", ["Mean"]),
    ("callbacks", ["EarlyStopping", "BackupAndRestore"]), ("datasets", ["mnist"]),
    ("utils", ["to_categorical", "normalize", "set_random_seed"]), ("backend", ["set_seed"]),
    ("initializers", ["GlorotUniform"]), ("regularizers", ["L2"]), ("constraints", ["MaxNorm"]),
    ("activations", ["get"])])
def test_the_keras_module_layout_resolves_after_import_deepkit(module, names):
    namespace = getattr(deepkit, module)
    for name in names:
        assert hasattr(namespace, name), f"deepkit.{module}.{name}"


def test_the_core_does_not_load_its_wings():
    code = ("import sys, deepkit; print([m for m in sys.modules if m.startswith("
            "('deepkit.compat', 'deepkit.caffe', 'model_zoo'))])")
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_a_model_saved_by_the_earlier_layout_loads_and_predicts_the_same():
    expected = np.load(FIXTURES / "legacy_model_v0_1_expected.npz")
    model = load_model(FIXTURES / "legacy_model_v0_1.h5")
    assert model.name == "legacy_cnn" and model.input_names == ["image"]
    assert [layer.name for layer in model.layers] == ["image", "conv", "bn", "flat", "probs"]
    np.testing.assert_allclose(model.predict(expected["x"]), expected["y"], rtol=1e-6,
                               atol=1e-7)
    assert model.optimizer.iterations == int(expected["iterations"])
    assert deepkit.load_model is load_model


def test_to_json_and_model_from_json_rebuild_the_architecture():
    inp = deepkit.Input(shape=(5,), name="features")
    a = L.Dense(4, activation="relu", name="a")(inp)
    b = L.Dense(3, name="b")(inp)
    out = L.Concatenate(name="both")([a, b])
    model = deepkit.Model(inp, out, name="two_branch")
    rebuilt = model_from_json(model.to_json())
    assert type(rebuilt) is deepkit.Model and rebuilt.get_config() == model.get_config()
    rebuilt.set_weights(model.get_weights())
    x = np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32)
    np.testing.assert_allclose(rebuilt.predict(x), model.predict(x), rtol=1e-6)


@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_clone_model_has_the_same_architecture_and_new_weights(kind):
    if kind == "sequential":
        model = deepkit.Sequential([L.Dense(6, activation="relu", input_shape=(4,), name="h"),
                                    L.Dense(2, name="o")], name="stack")
    else:
        inp = deepkit.Input(shape=(4,), name="x")
        model = deepkit.Model(inp, L.Dense(2, name="o")(L.Dense(6, name="h")(inp)), name="g")
    clone = clone_model(model)
    assert type(clone) is type(model) and clone.get_config() == model.get_config()
    assert all(c is not o for c, o in zip(clone.layers, model.layers))
    original = model.get_weights()
    fresh = clone.get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(original, fresh))
    clone.set_weights(original)
    x = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_allclose(clone.predict(x), model.predict(x), rtol=1e-6)
    clone.set_weights([w + 1 for w in original])  # independent of the original
    np.testing.assert_array_equal(model.get_weights()[0], original[0])


def test_clone_model_with_a_clone_function_can_share_layers():
    inp = deepkit.Input(shape=(4,), name="x")
    hidden = L.Dense(6, name="h")
    model = deepkit.Model(inp, L.Dense(2, name="o")(hidden(inp)))
    clone = clone_model(model, clone_function=lambda layer: layer if layer is hidden
                        else type(layer).from_config(layer.get_config()))
    assert clone.get_layer("h") is hidden and clone.get_layer("o") is not model.get_layer("o")


def test_models_module_is_a_package_of_small_modules():
    for name in ("functional", "sequential", "loading", "cloning"):
        importlib.import_module(f"deepkit.models.{name}")


@pytest.mark.parametrize("name, reason", [
    ("m.keras", "Keras 3 archives"), ("m.onnx", "ONNX export"), ("m.pkl", "'.pkl' is not"),
    ("model", "no extension")])
def test_save_refuses_formats_it_does_not_write(tmp_path, name, reason):
    model = deepkit.Sequential([L.Dense(2, input_shape=(3,))])
    with pytest.raises(ValueError, match=reason) as err:
        model.save(tmp_path / name)
    assert ".h5" in str(err.value) and not (tmp_path / name).exists()


@pytest.mark.parametrize("name", ["m.h5", "m.HDF5"])
def test_save_writes_hdf5_for_its_extensions(tmp_path, name):
    model = deepkit.Sequential([L.Dense(2, input_shape=(3,))])
    model.save(tmp_path / name)
    assert load_model(tmp_path / name).get_config() == model.get_config()


def test_an_unknown_layer_class_in_a_model_file_is_a_file_format_error(tmp_path):
    class MyDense(L.Dense):
        pass

    model = deepkit.Sequential([MyDense(2, input_shape=(3,), name="mine")])
    model.save(tmp_path / "custom.h5")
    with pytest.raises(deepkit.FileFormatError, match="custom.h5.*unknown layer class 'MyDense'"):
        load_model(tmp_path / "custom.h5")
    loaded = load_model(tmp_path / "custom.h5", custom_objects={"MyDense": MyDense})
    assert type(loaded.get_layer("mine")) is MyDense
