"""Models: functional graphs, Sequential, shared layers, nesting, summary and errors."""
import numpy as np
import pytest

import deepkit
from deepkit import layers as L
from deepkit_engine.base import DeepkitError


def test_functional_model_with_two_inputs_and_outputs():
    a = deepkit.Input(shape=(4,), name="a")
    b = deepkit.Input(shape=(3,), name="b")
    ha = L.Dense(5, activation="relu", name="ha")(a)
    hb = L.Dense(5, name="hb")(b)
    merged = L.Dense(2, name="out1")(ha)
    other = L.Dense(1, name="out2")(hb)
    model = deepkit.Model([a, b], [merged, other])
    assert model.input_names == ["a", "b"] and model.output_names == ["out1", "out2"]
    names = [layer.name for layer in model.layers]
    assert names[:2] == ["a", "b"] and sorted(names[2:]) == ["ha", "hb", "out1", "out2"]
    assert names.index("ha") < names.index("out1") and names.index("hb") < names.index("out2")
    out1, out2 = model.predict([np.ones((7, 4)), np.ones((7, 3))], batch_size=4)
    assert out1.shape == (7, 2) and out2.shape == (7, 1)


def test_output_shapes_are_known_at_call_time():
    x = deepkit.Input(shape=(10,))
    dense = L.Dense(7)
    y = dense(x)
    assert y.shape == (None, 7)
    assert dense.output_shape == (None, 7)
    assert dense.params["weight"].shape == (7, 10)  # the engine's (units, in) layout
    assert dense.params["weight"].name == "dense_weight"
    assert [p.short_name for p in dense.get_params(regularizable=True)] == ["weight"]


def test_shared_layer_uses_one_set_of_weights():
    shared = L.Dense(3, name="shared")
    a = deepkit.Input(shape=(4,), name="a")
    b = deepkit.Input(shape=(4,), name="b")
    model = deepkit.Model([a, b], [shared(a), shared(b)])
    assert len(model.weights) == 2
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    ya, yb = model.predict([x, x])
    np.testing.assert_array_equal(ya, yb)


def test_model_used_as_a_layer_and_feature_extraction():
    inp = deepkit.Input(shape=(6,))
    hidden = L.Dense(4, activation="tanh", name="hidden")(inp)
    out = L.Dense(2, name="head")(hidden)
    base = deepkit.Model(inp, out, name="base")
    x = np.random.default_rng(1).normal(size=(3, 6)).astype(np.float32)
    outer_in = deepkit.Input(shape=(6,))
    outer = deepkit.Model(outer_in, L.Activation("softmax")(base(outer_in)))
    probs = outer.predict(x)
    logits = base.predict(x)
    e = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(probs, e / e.sum(1, keepdims=True), rtol=1e-5)
    features = deepkit.Model(inp, base.get_layer("hidden").output)
    w, b = base.get_layer("hidden").get_weights()
    np.testing.assert_allclose(features.predict(x), np.tanh(x @ w.T + b), rtol=1e-5, atol=1e-6)


def test_sequential_builds_from_input_shape_data_or_input():
    s1 = deepkit.Sequential([L.Dense(3, input_shape=(5,)), L.Dense(2)])
    assert s1.built and s1.outputs[0].shape == (None, 2)
    s2 = deepkit.Sequential([L.Dense(3), L.Dense(2)])
    assert not s2.built
    assert s2.predict(np.ones((4, 5))).shape == (4, 2)
    s3 = deepkit.Sequential([deepkit.Input(shape=(5,)), L.Dense(3)])
    s3.add(L.Dense(1))
    assert s3.outputs[0].shape == (None, 1)
    removed = s3.pop()
    assert removed.name.startswith("dense") and s3.outputs[0].shape == (None, 3)
    assert all(layer is not removed for layer in s3.layers)


def test_summary_lists_shapes_and_counts():
    model = deepkit.Sequential([L.Dense(8, input_shape=(4,), name="d1"), L.Dense(2, name="d2")])
    model.get_layer("d1").trainable = False
    text = model.summary(print_fn=None)
    assert "d1 (Dense)" in text and "(None, 8)" in text and "40" in text
    assert "Total params: 58" in text
    assert "Trainable params: 18" in text and "Non-trainable params: 40" in text


def test_unbuilt_model_errors_say_how_to_give_the_input_shape():
    model = deepkit.Sequential([L.Dense(3)])
    for call in (lambda: model.summary(print_fn=None), lambda: model.get_layer("x"),
                 lambda: model.compile("sgd", "mse")):
        with pytest.raises(DeepkitError, match="input_shape"):
            call()


def test_layer_argument_errors_echo_the_value():
    with pytest.raises(ValueError, match="'units' must be a positive int. Received: units=0"):
        L.Dense(0)
    with pytest.raises(TypeError, match="unknown argument 'activaton'.*did you mean 'activation'"):
        L.Dense(3, activaton="relu")
    model = deepkit.Sequential([L.Dense(3, input_shape=(4,))])
    with pytest.raises(ValueError, match="no layer named 'dense_9'.*layers: "):
        model.get_layer("dense_9")


def test_calling_a_built_layer_on_a_wrong_shape_is_refused():
    dense = L.Dense(3)
    dense(deepkit.Input(shape=(4,)))
    with pytest.raises(ValueError, match=r"Input 0 of layer 'dense'.*\(None, 4\).*\(None, 5\)"):
        dense(deepkit.Input(shape=(5,)))


def test_keras_layer_names_and_a_shared_layer_as_two_outputs():
    assert L.Conv2D(4, 3).name == "conv2d" and L.Conv2D(4, 3).name == "conv2d_1"
    assert L.GlobalAveragePooling2D().name == "global_average_pooling2d"
    shared = L.Dense(2, activation="softmax", name="head")
    a, b = deepkit.Input(shape=(3,), name="a"), deepkit.Input(shape=(3,), name="b")
    model = deepkit.Model([a, b], [shared(a), shared(b)])
    assert model.output_names == ["head", "head_1"]
    model.compile("sgd", "sparse_categorical_crossentropy")
    x = np.ones((8, 3), np.float32)
    y = np.zeros(8)
    history = model.fit([x, x], [y, y], batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
