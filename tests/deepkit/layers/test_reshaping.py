"""UpSampling2D, ZeroPadding2D and Cropping2D against numpy."""
import json

import numpy as np
import pytest

from deepkit import Model
from deepkit.layers import Input
from deepkit.layers.base import reset_names
from deepkit.layers.reshaping import Cropping2D, UpSampling2D, ZeroPadding2D
from deepkit_engine.testing import check_numeric_gradient


def run(layer, x):
    inp = Input(shape=x.shape[1:])
    return Model(inp, layer(inp)).predict(x.astype(np.float32), batch_size=len(x))


def to_last(x):
    return np.moveaxis(x, 1, -1)


def to_first(x):
    return np.moveaxis(x, -1, 1)


def resize_bilinear_ref(x, sizes):
    """TensorFlow's ``resize_bilinear(half_pixel_centers=True)`` on NCHW, axis by axis."""
    out = x.astype(np.float64)
    for axis, scale in zip((2, 3), sizes):
        n = out.shape[axis]
        rows = []
        for i in range(n * scale):
            src = (i + 0.5) / scale - 0.5
            low, high = max(int(np.floor(src)), 0), min(int(np.ceil(src)), n - 1)
            frac = src - np.floor(src)
            rows.append(np.take(out, low, axis=axis) * (1 - frac)
                        + np.take(out, high, axis=axis) * frac)
        out = np.stack(rows, axis=axis)
    return out


# -- UpSampling2D --------------------------------------------------------------------------

@pytest.mark.parametrize("size", [2, (2, 3), (3, 1), (4, 2)])
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_upsampling(size, interpolation, data_format, rng):
    x = rng.standard_normal((2, 3, 4, 5))
    sizes = tuple(np.broadcast_to(size, 2))
    if interpolation == "nearest":
        expected = np.repeat(np.repeat(x, sizes[0], axis=2), sizes[1], axis=3)
    else:
        expected = resize_bilinear_ref(x, sizes)
    layer = UpSampling2D(size, data_format, interpolation)
    got = run(layer, to_last(x) if data_format == "channels_last" else x)
    got = to_first(got) if data_format == "channels_last" else got
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert layer.output_shape == (None,) + (to_last(expected) if data_format == "channels_last"
                                            else expected).shape[1:]


def test_bilinear_known_values():
    x = np.array([[[[0.0, 4.0]]]])  # one row, two columns
    got = run(UpSampling2D((2, 2), interpolation="bilinear"), x)
    np.testing.assert_allclose(got[0, 0], [[0, 1, 3, 4], [0, 1, 3, 4]])


def test_bilinear_of_a_single_pixel_is_constant(rng):
    x = rng.standard_normal((1, 2, 1, 1))
    got = run(UpSampling2D(3, interpolation="bilinear"), x)
    np.testing.assert_allclose(got, np.broadcast_to(x, (1, 2, 3, 3)), rtol=1e-6)


def test_bilinear_gradient_matches_numeric(rng):
    inp = Input(shape=(2, 3, 2))
    out = UpSampling2D((2, 3), interpolation="bilinear")(inp)
    check_numeric_gradient(out.symbol, {inp.name: rng.standard_normal((1, 2, 3, 2))},
                           rtol=1e-4, atol=1e-6)


def test_upsampling_errors():
    with pytest.raises(ValueError, match=r"UpSampling2D: 'interpolation' must be 'nearest' or "
                                         r"'bilinear'\. Received: interpolation='bicubic'"):
        UpSampling2D(interpolation="bicubic")
    with pytest.raises(ValueError, match=r"UpSampling2D: 'size' must be an int or a tuple of 2 "
                                         r"positive ints\. Received: size=0"):
        UpSampling2D(0)
    with pytest.raises(ValueError, match=r"expects inputs of rank 4 \(NCHW"):
        UpSampling2D()(Input(shape=(4, 4)))


# -- ZeroPadding2D ----------------------------------------------------------------------

@pytest.mark.parametrize("padding, pairs", [
    (1, ((1, 1), (1, 1))),
    ((2, 0), ((2, 2), (0, 0))),
    (((1, 2), (0, 3)), ((1, 2), (0, 3))),
    ([[0, 1], 2], ((0, 1), (2, 2))),
])
@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_zero_padding(padding, pairs, data_format, rng):
    x = rng.standard_normal((2, 3, 4, 5))
    expected = np.pad(x, ((0, 0), (0, 0)) + pairs)
    layer = ZeroPadding2D(padding, data_format)
    assert layer.padding == pairs
    got = run(layer, to_last(x) if data_format == "channels_last" else x)
    got = to_first(got) if data_format == "channels_last" else got
    np.testing.assert_array_equal(got, expected.astype(np.float32))


@pytest.mark.parametrize("padding", [-1, (1, 2, 3), ((1, 2, 3), (0, 0)), ((1, -1), 0), "same",
                                     1.5])
def test_zero_padding_errors(padding):
    with pytest.raises(ValueError, match=r"ZeroPadding2D: 'padding' must be an int, a tuple of "
                                         r"2 non-negative ints or a tuple of 2 \(before, after\) "
                                         r"tuples.*Received: padding="):
        ZeroPadding2D(padding)


# -- Cropping2D -------------------------------------------------------------------------

@pytest.mark.parametrize("cropping, pairs", [
    (1, ((1, 1), (1, 1))),
    ((0, 2), ((0, 0), (2, 2))),
    (((1, 0), (2, 1)), ((1, 0), (2, 1))),
    (((0, 0), (0, 0)), ((0, 0), (0, 0))),
])
@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_cropping(cropping, pairs, data_format, rng):
    x = rng.standard_normal((2, 3, 5, 6))
    (t, b), (left, r) = pairs
    expected = x[:, :, t:5 - b, left:6 - r]
    layer = Cropping2D(cropping, data_format)
    got = run(layer, to_last(x) if data_format == "channels_last" else x)
    got = to_first(got) if data_format == "channels_last" else got
    np.testing.assert_array_equal(got, expected.astype(np.float32))
    assert layer.output_shape == (None,) + (to_last(expected) if data_format == "channels_last"
                                            else expected).shape[1:]


def test_cropping_errors():
    with pytest.raises(ValueError, match=r"Cropping2D: 'cropping' must be .*Received: "
                                         r"cropping=\(1, 2, 3\)"):
        Cropping2D((1, 2, 3))
    with pytest.raises(ValueError, match=r"cropping=\(\(2, 3\), \(0, 0\)\) leaves nothing of "
                                         r"the input's spatial size \(5, 6\)"):
        Cropping2D(((2, 3), (0, 0)))(Input(shape=(1, 5, 6)))
    with pytest.raises(ValueError, match=r"expects inputs of rank 4"):
        Cropping2D(1)(Input(shape=(1, 5, 6, 2)))


# -- all three ------------------------------------------------------------------------

def test_names_and_no_weights():
    reset_names()
    layers = [UpSampling2D(), ZeroPadding2D(), Cropping2D()]
    assert [layer.name for layer in layers] == ["up_sampling2d", "zero_padding2d", "cropping2d"]
    inp = Input(shape=(1, 6, 6))
    for layer in layers:
        layer(inp)
        assert layer.weights == []


@pytest.mark.parametrize("layer", [
    lambda: UpSampling2D((2, 3), "channels_last", "bilinear"),
    lambda: ZeroPadding2D(((1, 2), (3, 0)), "channels_last", name="pad"),
    lambda: Cropping2D(((1, 0), (0, 2))),
])
def test_get_config_round_trip(layer, rng):
    layer = layer()
    config = layer.get_config()
    assert json.loads(json.dumps(config)) == config
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    x = rng.standard_normal((2, 4, 5, 3))
    np.testing.assert_array_equal(run(clone, x), run(layer, x))
