"""Merge layers against numpy, their shape checks and errors, and a shared-layer model."""
import numpy as np
import pytest

import deepkit
from deepkit import layers as L
from deepkit.layers.merge import (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply,
                                  Subtract)

MERGES = {"Add": Add, "Subtract": Subtract, "Multiply": Multiply, "Average": Average,
          "Maximum": Maximum, "Minimum": Minimum, "Concatenate": Concatenate, "Dot": Dot}


def _run(layer, arrays):
    inputs = [deepkit.Input(shape=a.shape[1:], name=f"in{i}") for i, a in enumerate(arrays)]
    out = layer(inputs)
    model = deepkit.Model(inputs, out)
    result = model.predict(list(arrays))
    assert out.shape == (None,) + result.shape[1:]
    return result


ELEMENTWISE = [
    (Add, lambda xs: xs[0] + xs[1] + xs[2]),
    (Multiply, lambda xs: xs[0] * xs[1] * xs[2]),
    (Average, lambda xs: (xs[0] + xs[1] + xs[2]) / 3),
    (Maximum, lambda xs: np.maximum(np.maximum(xs[0], xs[1]), xs[2])),
    (Minimum, lambda xs: np.minimum(np.minimum(xs[0], xs[1]), xs[2])),
]


@pytest.mark.parametrize("cls, reference", ELEMENTWISE, ids=[c.__name__ for c, _ in ELEMENTWISE])
def test_elementwise_merges_of_three_inputs(rng, cls, reference):
    xs = [rng.normal(size=(4, 2, 3)).astype(np.float32) for _ in range(3)]
    layer = cls()
    np.testing.assert_allclose(_run(layer, xs), reference(xs), rtol=1e-6)
    assert layer.count_params() == 0 and layer.output_shape == (None, 2, 3)


def test_elementwise_merge_broadcasts_size_one_axes(rng):
    a = rng.normal(size=(3, 1, 4)).astype(np.float32)
    b = rng.normal(size=(3, 2, 4)).astype(np.float32)
    np.testing.assert_allclose(_run(Add(), [a, b]), a + b, rtol=1e-6)
    np.testing.assert_allclose(_run(Subtract(), [b, a]), b - a, rtol=1e-6)


def test_concatenate_default_last_axis_and_channels(rng):
    a = rng.normal(size=(2, 3, 4)).astype(np.float32)
    b = rng.normal(size=(2, 3, 1)).astype(np.float32)
    np.testing.assert_array_equal(_run(Concatenate(), [a, b]), np.concatenate([a, b], -1))
    # NCHW feature maps stack along channels with axis=1
    c = rng.normal(size=(2, 2, 3, 3)).astype(np.float32)
    d = rng.normal(size=(2, 5, 3, 3)).astype(np.float32)
    layer = Concatenate(axis=1)
    np.testing.assert_array_equal(_run(layer, [c, d, c]), np.concatenate([c, d, c], 1))
    assert layer.output_shape == (None, 9, 3, 3)


def _batch_dot(x, y, a1, a2):
    return np.stack([np.tensordot(x[i], y[i], axes=(a1 - 1, a2 - 1)) for i in range(len(x))])


@pytest.mark.parametrize("s1, s2, axes, out", [
    ((3,), (3,), 1, (1,)),
    ((2, 3), (3, 4), (2, 1), (2, 4)),
    ((3, 2), (3, 4), 1, (2, 4)),
    ((2, 3), (4, 3), -1, (2, 4)),
    ((3,), (4, 3), (1, 2), (4,)),
    ((3, 4), (3,), (1, 1), (4,)),
])
def test_dot_matches_a_batched_tensordot(rng, s1, s2, axes, out):
    x = rng.normal(size=(5,) + s1).astype(np.float32)
    y = rng.normal(size=(5,) + s2).astype(np.float32)
    layer = Dot(axes=axes)
    result = _run(layer, [x, y])
    pair = axes if isinstance(axes, tuple) else (axes, axes)
    a1, a2 = (a % (len(s) + 1) for a, s in zip(pair, (s1, s2)))
    expected = _batch_dot(x, y, a1, a2).reshape((5,) + out)
    assert result.shape == (5,) + out and layer.output_shape == (None,) + out
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-6)


def test_dot_normalize_gives_cosine_similarity(rng):
    x = rng.normal(size=(4, 6)).astype(np.float32)
    y = rng.normal(size=(4, 6)).astype(np.float32)
    cos = (x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)
    np.testing.assert_allclose(_run(Dot(axes=1, normalize=True), [x, y])[:, 0], cos,
                               rtol=1e-5)


def test_merge_shape_errors_name_the_layer_and_the_shapes():
    a = deepkit.Input(shape=(3,))
    b = deepkit.Input(shape=(4,))
    c = deepkit.Input(shape=(3, 2))
    with pytest.raises(ValueError, match=r"Add 'add' .*axis 1 differs: shapes \(None, 3\), "
                                         r"\(None, 4\)"):
        Add(name="add")([a, b])
    with pytest.raises(ValueError, match=r"'maximum'.*same rank, got shapes \(None, 3\), "
                                         r"\(None, 3, 2\)"):
        Maximum()([a, c])
    with pytest.raises(ValueError, match=r"Multiply\(\)\(\[a, b\]\); got a single tensor"):
        Multiply()(a)
    with pytest.raises(ValueError, match="Average needs at least 2 inputs, got 1"):
        Average()([a])
    with pytest.raises(ValueError, match="Subtract needs exactly 2 inputs, got 3"):
        Subtract()([a, a, a])
    with pytest.raises(ValueError, match=r"but the concatenation axis 2, but axis 1 differs"):
        Concatenate()([c, deepkit.Input(shape=(4, 2))])
    with pytest.raises(ValueError, match="axis 0 must be a non-batch axis"):
        Concatenate(axis=0)([a, a])
    with pytest.raises(ValueError, match=r"Dot 'dot'.*different sizes 3 and 4"):
        Dot(axes=1, name="dot")([a, b])
    with pytest.raises(ValueError, match="rank 2 or 3"):
        Dot(axes=1)([deepkit.Input(shape=(2, 2, 2)), deepkit.Input(shape=(2, 2, 2))])
    with pytest.raises(ValueError, match="'axes' must be an int or a pair"):
        Dot(axes=(1, 2, 3))
    with pytest.raises(ValueError, match="'axis' must be an int. Received: 'last'"):
        Concatenate(axis="last")


def test_shared_merge_layer_checks_each_call():
    add = Add(name="shared_add")
    a = deepkit.Input(shape=(3,))
    b = deepkit.Input(shape=(2,))
    assert add([a, a]).shape == (None, 3)
    assert add([b, b]).shape == (None, 2)  # no weights: new shapes are fine
    with pytest.raises(ValueError, match=r"Add 'shared_add' cannot be called on input shapes"
                                         r".*axis 1 differs"):
        add([a, b])


def test_merge_configs_round_trip():
    for layer in [Add(name="a"), Subtract(), Multiply(), Average(), Maximum(), Minimum(),
                  Concatenate(axis=1), Dot(axes=(1, 2), normalize=True), Dot(axes=-1)]:
        config = layer.get_config()
        assert type(layer).from_config(config).get_config() == config


def test_functional_model_with_shared_layers_and_merges_trains(rng, tmp_path):
    left = deepkit.Input(shape=(6,), name="left")
    right = deepkit.Input(shape=(6,), name="right")
    encoder = L.Dense(8, activation="tanh", name="encoder")  # shared by both inputs
    el, er = encoder(left), encoder(right)
    merged = Concatenate(name="concat")([Add(name="add")([el, er]),
                                         Multiply(name="mul")([el, er]),
                                         Subtract(name="sub")([el, er]),
                                         Maximum(name="max")([el, er]),
                                         Dot(axes=1, normalize=True, name="cos")([el, er])])
    out = L.Dense(1, name="head")(merged)
    model = deepkit.Model([left, right], out)
    assert merged.shape == (None, 33)
    assert len(model.weights) == 4  # encoder and head only
    x1 = rng.normal(size=(64, 6)).astype(np.float32)
    x2 = rng.normal(size=(64, 6)).astype(np.float32)
    y = (x1 * x2).sum(axis=1, keepdims=True).astype(np.float32)
    model.compile(deepkit.optimizers.Adam(learning_rate=0.02), "mse")
    start = model.evaluate([x1, x2], y)
    model.fit([x1, x2], y, batch_size=16, epochs=30, verbose=0)
    end = model.evaluate([x1, x2], y)
    assert end < 0.5 * start
    path = tmp_path / "merge.h5"
    model.save(path)
    loaded = deepkit.load_model(path, custom_objects=MERGES)
    np.testing.assert_array_equal(loaded.predict([x1, x2]), model.predict([x1, x2]))
