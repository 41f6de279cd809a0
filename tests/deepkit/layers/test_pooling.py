"""Pooling layers against numpy references that visit every window."""
import itertools
import json

import numpy as np
import pytest

from deepkit import Model
from deepkit.layers import Input
from deepkit.layers.base import reset_names
from deepkit.layers.pooling import (AveragePooling1D, AveragePooling2D, AveragePooling3D,
                                    GlobalAveragePooling1D, GlobalAveragePooling2D,
                                    GlobalAveragePooling3D, GlobalMaxPooling1D,
                                    GlobalMaxPooling2D, GlobalMaxPooling3D, MaxPooling1D,
                                    MaxPooling2D, MaxPooling3D)
from deepkit_engine.testing import check_numeric_gradient

MAX = {1: MaxPooling1D, 2: MaxPooling2D, 3: MaxPooling3D}
AVG = {1: AveragePooling1D, 2: AveragePooling2D, 3: AveragePooling3D}


def pool_ref(x, kind, pool, strides, padding):
    """Keras pooling of channels-first ``x``: each window clipped to the input.

    'same' gives ceil(n / s) windows starting at ``j * s - before`` with
    TensorFlow's ``before = total // 2``; padded cells never count.
    """
    spatial = x.shape[2:]
    starts, outs = [], []
    for n, k, s in zip(spatial, pool, strides):
        if padding == "same":
            out = -(-n // s)
            before = max((out - 1) * s + k - n, 0) // 2
        else:
            out, before = (n - k) // s + 1, 0
        outs.append(out)
        starts.append([j * s - before for j in range(out)])
    result = np.zeros(x.shape[:2] + tuple(outs))
    reduce = np.max if kind == "max" else np.mean
    for o in itertools.product(*map(range, outs)):
        window = tuple(slice(max(starts[a][o[a]], 0), min(starts[a][o[a]] + pool[a], spatial[a]))
                       for a in range(len(spatial)))
        cells = x[(slice(None), slice(None)) + window]
        result[(slice(None), slice(None)) + o] = reduce(
            cells.reshape(cells.shape[:2] + (-1,)), axis=-1)
    return result


def run(layer, x):
    inp = Input(shape=x.shape[1:])
    return Model(inp, layer(inp)).predict(x.astype(np.float32), batch_size=len(x))


def to_last(x):
    return np.moveaxis(x, 1, -1)


def to_first(x):
    return np.moveaxis(x, -1, 1)


CASES = [
    # rank, pool_size, strides, padding, spatial
    (1, 2, None, "valid", (7,)),
    (1, 3, 2, "same", (7,)),  # total 2: symmetric
    (1, 2, 1, "same", (5,)),  # total 1: asymmetric, stride 1
    (1, 3, 2, "same", (8,)),  # total 1: asymmetric, stride 2
    (2, 2, None, "valid", (5, 6)),
    (2, (3, 2), (2, 1), "valid", (7, 5)),
    (2, 2, None, "same", (5, 5)),  # odd sizes: padded after only
    (2, 3, 2, "same", (6, 7)),  # asymmetric rows, symmetric columns
    (2, (2, 3), 1, "same", (4, 5)),
    (2, 3, 3, "same", (2, 4)),  # input smaller than the window on one axis
    (3, 2, None, "valid", (4, 5, 4)),
    (3, 2, (1, 2, 2), "same", (3, 5, 4)),
]


@pytest.mark.parametrize("rank, pool, strides, padding, spatial", CASES)
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_pooling_matches_windows(rank, pool, strides, padding, spatial, kind, data_format, rng):
    cls = (MAX if kind == "max" else AVG)[rank]
    layer = cls(pool, strides, padding, data_format)
    x = rng.standard_normal((2, 3) + spatial)
    pool_t = tuple(np.broadcast_to(pool, rank))
    strides_t = pool_t if strides is None else tuple(np.broadcast_to(strides, rank))
    expected = pool_ref(x, kind, pool_t, strides_t, padding)
    got = run(layer, to_last(x) if data_format == "channels_last" else x)
    got = to_first(got) if data_format == "channels_last" else got
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert layer.output_shape == (None,) + (to_last(expected) if data_format == "channels_last"
                                            else expected).shape[1:]


def test_same_max_pooling_of_negative_values_ignores_padding():
    x = -np.arange(1, 26, dtype=np.float64).reshape(1, 1, 5, 5)
    got = run(MaxPooling2D(2, padding="same"), x)
    np.testing.assert_allclose(got, pool_ref(x, "max", (2, 2), (2, 2), "same"))
    assert got.max() < 0


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("pool, strides, spatial", [(2, 1, (3, 4)), (3, 2, (4, 5))])
def test_asymmetric_same_gradient_matches_numeric(kind, pool, strides, spatial, rng):
    layer = (MaxPooling2D if kind == "max" else AveragePooling2D)(pool, strides, "same")
    inp = Input(shape=(2,) + spatial)
    out = layer(inp)
    # distinct values, so that max has a unique winner in each window
    x = rng.permutation(2 * 2 * int(np.prod(spatial))).reshape((2, 2) + spatial) * 0.1
    check_numeric_gradient(out.symbol, {inp.name: x}, rtol=1e-4, atol=1e-6)


def test_default_strides_are_the_pool_size():
    assert MaxPooling2D((3, 2)).strides == (3, 2)
    assert AveragePooling1D(4).strides == (4,)
    assert MaxPooling3D().pool_size == (2, 2, 2)
    assert MaxPooling2D(2, strides=1).strides == (1, 1)


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling(rank, data_format, keepdims, rng):
    spatial = (3, 4, 2)[:rank]
    x = rng.standard_normal((2, 5) + spatial)
    feed = to_last(x) if data_format == "channels_last" else x
    axes = tuple(range(1, 1 + rank)) if data_format == "channels_last" \
        else tuple(range(2, 2 + rank))
    for layers, reduce in (((GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D),
                            np.max),
                           ((GlobalAveragePooling1D, GlobalAveragePooling2D,
                             GlobalAveragePooling3D), np.mean)):
        layer = layers[rank - 1](data_format=data_format, keepdims=keepdims)
        expected = reduce(feed, axis=axes, keepdims=keepdims)
        got = run(layer, feed)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        assert layer.output_shape == (None,) + expected.shape[1:]


def test_global_pooling_shapes():
    assert GlobalAveragePooling2D()(Input(shape=(7, 4, 5))).shape == (None, 7)
    assert GlobalAveragePooling2D(keepdims=True)(Input(shape=(7, 4, 5))).shape == (None, 7, 1, 1)
    assert GlobalMaxPooling2D(data_format="channels_last", keepdims=True)(
        Input(shape=(4, 5, 7))).shape == (None, 1, 1, 7)
    assert GlobalMaxPooling1D(data_format="channels_last")(Input(shape=(9, 3))).shape == (None, 3)


def test_names():
    reset_names()
    assert MaxPooling2D().name == "max_pooling2d"
    assert MaxPooling2D().name == "max_pooling2d_1"
    assert AveragePooling3D().name == "average_pooling3d"
    assert GlobalAveragePooling1D().name == "global_average_pooling1d"
    layer = MaxPooling2D()
    layer(Input(shape=(1, 4, 4)))
    assert layer.weights == [] and layer.count_params() == 0


@pytest.mark.parametrize("layer, in_shape", [
    (lambda: MaxPooling1D(3, 2, "same", "channels_last"), (8, 2)),
    (lambda: AveragePooling2D((2, 3), (1, 2), "same", "channels_first", name="p"), (2, 5, 6)),
    (lambda: MaxPooling3D(2, data_format="channels_last", trainable=False), (4, 4, 4, 1)),
    (lambda: GlobalAveragePooling2D(data_format="channels_last", keepdims=True), (3, 4, 2)),
    (lambda: GlobalMaxPooling3D(), (2, 3, 3, 3)),
])
def test_get_config_round_trip(layer, in_shape, rng):
    layer = layer()
    config = layer.get_config()
    assert json.loads(json.dumps(config)) == config
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    x = rng.standard_normal((2,) + in_shape)
    np.testing.assert_allclose(run(clone, x), run(layer, x), rtol=1e-6)


@pytest.mark.parametrize("make, match", [
    (lambda: MaxPooling2D(0), r"MaxPooling2D: 'pool_size' must be an int or a tuple of 2 "
                              r"positive ints\. Received: pool_size=0"),
    (lambda: MaxPooling2D((2, 2, 2)), r"Received: pool_size=\(2, 2, 2\)"),
    (lambda: AveragePooling1D(2, strides=0), r"'strides' must be an int or a tuple of 1 "
                                             r"positive int\. Received: strides=0"),
    (lambda: MaxPooling2D(2, padding="full"), r"'padding' must be 'valid' or 'same'\. "
                                              r"Received: padding='full'"),
    (lambda: MaxPooling2D(2, padding="causal"), r"'padding' must be 'valid' or 'same'"),
    (lambda: AveragePooling3D(data_format="NCDHW"), r"'data_format' must be"),
    (lambda: GlobalMaxPooling2D(data_format="last"), r"'data_format' must be"),
])
def test_constructor_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_input_errors():
    with pytest.raises(ValueError, match=r"MaxPooling2D 'max_pooling2d[_0-9]*' expects inputs "
                                         r"of rank 4 \(NCHW.*got shape \(None, 28, 28\)"):
        MaxPooling2D()(Input(shape=(28, 28)))
    with pytest.raises(ValueError, match=r"expects inputs of rank 3 \(NWC"):
        GlobalAveragePooling1D(data_format="channels_last")(Input(shape=(3, 4, 4)))
    with pytest.raises(ValueError, match=r"pool_size \(3, 3\) is larger than the input's "
                                         r"spatial size \(2, 5\) with padding='valid'"):
        MaxPooling2D(3)(Input(shape=(1, 2, 5)))
    assert MaxPooling2D(3, padding="same")(Input(shape=(1, 2, 5))).shape == (None, 1, 1, 2)
