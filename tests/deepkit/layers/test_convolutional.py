"""Convolution layers against numpy references computed with explicit loops."""
import itertools
import json

import numpy as np
import pytest

import deepkit
from deepkit import Model, Sequential
from deepkit.layers import Dense, Flatten, Input
from deepkit.layers.base import reset_names
from deepkit.layers.convolutional import (Conv1D, Conv2D, Conv2DTranspose, Conv3D,
                                          DepthwiseConv2D, SeparableConv2D, padding_pairs)
from deepkit.layers.pooling import MaxPooling2D
from deepkit.optimizers import Adam
from deepkit.regularizers import L2
from deepkit_engine.testing import check_numeric_gradient


# -- references ----------------------------------------------------------------------------

def keras_same_pads(size, kernel, stride, dilation=1):
    """TensorFlow's SAME padding: ceil(size / stride) outputs, the smaller half first."""
    eff = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


def conv_ref(x, w, b, strides, dilation, pads, groups=1):
    """Cross-correlation of channels-first ``x`` with ``w`` (F, C/groups, *k), one tap at a time."""
    rank = x.ndim - 2
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + [tuple(p) for p in pads])
    filters, per_group = w.shape[0], w.shape[1]
    kernel = w.shape[2:]
    out_sp = [(xp.shape[2 + i] - (kernel[i] - 1) * dilation[i] - 1) // strides[i] + 1
              for i in range(rank)]
    out = np.zeros((x.shape[0], filters) + tuple(out_sp))
    for f in range(filters):
        g = f // (filters // groups)
        xs = xp[:, g * per_group:(g + 1) * per_group]
        for o in itertools.product(*map(range, out_sp)):
            for t in itertools.product(*map(range, kernel)):
                idx = tuple(o[i] * strides[i] + t[i] * dilation[i] for i in range(rank))
                patch = xs[(slice(None), slice(None)) + idx]
                out[(slice(None), f) + o] += patch @ w[(f, slice(None)) + t]
        if b is not None:
            out[:, f] += b[f]
    return out


def deconv_ref(x, w, b, strides, dilation, out_sp, before):
    """Transposed convolution by scattering each input cell (TensorFlow's definition).

    ``w`` is (C, F, *k); output cell ``i * stride + t * dilation - before`` gets
    ``x[i] * w[t]``; cells outside ``out_sp`` are dropped.
    """
    rank = x.ndim - 2
    out = np.zeros((x.shape[0], w.shape[1]) + tuple(out_sp))
    for i in itertools.product(*map(range, x.shape[2:])):
        for t in itertools.product(*map(range, w.shape[2:])):
            o = tuple(i[a] * strides[a] + t[a] * dilation[a] - before[a] for a in range(rank))
            if all(0 <= o[a] < out_sp[a] for a in range(rank)):
                out[(slice(None), slice(None)) + o] += (
                    x[(slice(None), slice(None)) + i] @ w[(slice(None), slice(None)) + t])
    if b is not None:
        out += b.reshape((1, -1) + (1,) * rank)
    return out


def keras_transpose_geometry(size, kernel, stride, padding, output_padding, dilation=1):
    """Keras's output length, and TensorFlow's padding before, of a transposed conv."""
    eff = (kernel - 1) * dilation + 1
    if output_padding is None:
        length = size * stride + max(eff - stride, 0) if padding == "valid" else size * stride
    else:
        pad = eff // 2 if padding == "same" else 0
        length = (size - 1) * stride + eff - 2 * pad + output_padding
    if padding == "valid":
        return length, 0
    total = max((size - 1) * stride + eff - length, 0)
    return length, total // 2


def run(layer, x, weights=None):
    """The layer's output on numpy ``x`` (through a Model, weights set first)."""
    inp = Input(shape=x.shape[1:])
    model = Model(inp, layer(inp))
    if weights is not None:
        model.set_weights(weights)
    else:
        model.initialize_weights()
    return model.predict(x.astype(np.float32), batch_size=len(x))


def last(x):
    return np.moveaxis(x, 1, -1)


def first(x):
    return np.moveaxis(x, -1, 1)


# -- shapes ------------------------------------------------------------------------------

@pytest.mark.parametrize("layer, in_shape, out_shape", [
    (lambda: Conv2D(4, 3), (3, 8, 7), (4, 6, 5)),
    (lambda: Conv2D(4, 3, strides=2, padding="same"), (3, 8, 7), (4, 4, 4)),
    (lambda: Conv2D(4, (1, 3), strides=(3, 1), padding="same"), (3, 7, 5), (4, 3, 5)),
    (lambda: Conv2D(4, 3, padding="same", dilation_rate=2), (3, 6, 6), (4, 6, 6)),
    (lambda: Conv2D(4, 3, dilation_rate=2), (3, 6, 7), (4, 2, 3)),
    (lambda: Conv2D(4, 2, strides=2, padding="same", data_format="channels_last"),
     (5, 7, 3), (3, 4, 4)),
    (lambda: Conv2D(6, 3, groups=3), (3, 5, 5), (6, 3, 3)),
    (lambda: Conv1D(2, 3), (3, 9), (2, 7)),
    (lambda: Conv1D(2, 3, strides=2, padding="same"), (3, 9), (2, 5)),
    (lambda: Conv1D(2, 3, padding="causal", dilation_rate=2), (3, 9), (2, 9)),
    (lambda: Conv1D(2, 4, data_format="channels_last"), (9, 3), (6, 2)),
    (lambda: Conv3D(2, (2, 3, 3)), (1, 4, 5, 6), (2, 3, 3, 4)),
    (lambda: Conv3D(2, 3, strides=2, padding="same", data_format="channels_last"),
     (4, 5, 6, 1), (2, 3, 3, 2)),
    (lambda: Conv2DTranspose(5, 3, strides=2), (3, 4, 5), (5, 9, 11)),
    (lambda: Conv2DTranspose(5, 3, strides=2, padding="same"), (3, 4, 5), (5, 8, 10)),
    (lambda: Conv2DTranspose(5, 2, strides=3), (3, 4, 5), (5, 12, 15)),
    (lambda: Conv2DTranspose(5, 3, strides=2, padding="same", output_padding=1),
     (3, 4, 5), (5, 8, 10)),
    (lambda: Conv2DTranspose(5, 3, strides=2, output_padding=(1, 0)), (3, 4, 5), (5, 10, 11)),
    (lambda: Conv2DTranspose(5, 3, strides=2, data_format="channels_last"),
     (4, 5, 3), (9, 11, 5)),
    (lambda: DepthwiseConv2D(3, depth_multiplier=2), (3, 6, 7), (6, 4, 5)),
    (lambda: DepthwiseConv2D(3, strides=2, padding="same", data_format="channels_last"),
     (6, 7, 3), (3, 4, 3)),
    (lambda: SeparableConv2D(7, 3, strides=2, padding="same"), (3, 6, 5), (7, 3, 3)),
    (lambda: SeparableConv2D(7, 3, data_format="channels_last"), (6, 5, 2), (4, 3, 7)),
])
def test_output_shape(layer, in_shape, out_shape):
    layer = layer()
    inp = Input(shape=in_shape)
    out = layer(inp)
    assert out.shape == (None,) + out_shape
    assert layer.output_shape == (None,) + out_shape
    result = Model(inp, out).predict(np.zeros((2,) + in_shape, np.float32))
    assert result.shape == (2,) + out_shape


@pytest.mark.parametrize("size, kernel, stride, dilation, expected", [
    (7, 3, 2, 1, (1, 1)), (8, 3, 2, 1, (0, 1)), (5, 2, 1, 1, (0, 1)), (6, 3, 1, 2, (2, 2)),
    (6, 1, 4, 1, (0, 0)), (1, 3, 2, 1, (1, 1)), (4, 4, 1, 1, (1, 2)),
])
def test_same_padding_split_like_keras(size, kernel, stride, dilation, expected):
    assert padding_pairs((size,), (kernel,), (stride,), (dilation,), "same") == (expected,)
    assert keras_same_pads(size, kernel, stride, dilation) == expected


# -- numbers ------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, in_shape", [
    ({"kernel_size": 3}, (2, 5, 6)),
    ({"kernel_size": (2, 3), "strides": 2, "padding": "same"}, (2, 6, 7)),  # asymmetric
    ({"kernel_size": 3, "strides": 2, "padding": "same"}, (2, 7, 5)),  # symmetric
    ({"kernel_size": 2, "padding": "same"}, (2, 4, 4)),  # asymmetric, stride 1
    ({"kernel_size": 3, "dilation_rate": (2, 1), "padding": "same"}, (2, 6, 5)),
    ({"kernel_size": 3, "strides": (1, 2), "dilation_rate": 2}, (2, 6, 7)),
    ({"kernel_size": 3, "groups": 2, "padding": "same"}, (4, 5, 5)),
    ({"kernel_size": 3, "use_bias": False}, (2, 4, 4)),
])
@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_conv2d_matches_loops(kwargs, in_shape, data_format, rng):
    filters = 4
    layer = Conv2D(filters, data_format=data_format, **kwargs)
    x = rng.standard_normal((2,) + in_shape)
    groups = kwargs.get("groups", 1)
    kh, kw = np.broadcast_to(kwargs["kernel_size"], 2)
    w = rng.standard_normal((filters, in_shape[0] // groups, kh, kw))
    b = rng.standard_normal(filters) if kwargs.get("use_bias", True) else None
    strides = tuple(np.broadcast_to(kwargs.get("strides", 1), 2))
    dilation = tuple(np.broadcast_to(kwargs.get("dilation_rate", 1), 2))
    pads = [(0, 0)] * 2
    if kwargs.get("padding") == "same":
        pads = [keras_same_pads(n, k, s, d)
                for n, k, s, d in zip(in_shape[1:], (kh, kw), strides, dilation)]
    expected = conv_ref(x, w, b, strides, dilation, pads, groups)
    feed = last(x) if data_format == "channels_last" else x
    got = run(layer, feed, [w] if b is None else [w, b])
    if data_format == "channels_last":
        got = first(got)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("padding, strides, dilation", [
    ("valid", 1, 1), ("same", 2, 1), ("same", 1, 1), ("causal", 1, 2), ("causal", 2, 1),
])
@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_conv1d_matches_loops(padding, strides, dilation, data_format, rng):
    layer = Conv1D(3, 4, strides=strides, padding=padding, dilation_rate=dilation,
                   data_format=data_format)
    x = rng.standard_normal((2, 2, 9))
    w, b = rng.standard_normal((3, 2, 4)), rng.standard_normal(3)
    if padding == "causal":
        pads = [((4 - 1) * dilation, 0)]
    elif padding == "same":
        pads = [keras_same_pads(9, 4, strides, dilation)]
    else:
        pads = [(0, 0)]
    expected = conv_ref(x, w, b, (strides,), (dilation,), pads)
    feed = last(x) if data_format == "channels_last" else x
    got = run(layer, feed, [w, b])
    got = first(got) if data_format == "channels_last" else got
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_causal_conv1d_sees_only_the_past(rng):
    layer = Conv1D(1, 3, padding="causal")
    x = rng.standard_normal((1, 1, 8))
    w, b = rng.standard_normal((1, 1, 3)), np.zeros(1)
    base = run(layer, x, [w, b])
    x2 = x.copy()
    x2[..., 5:] += 10.0
    changed = run(Conv1D(1, 3, padding="causal"), x2, [w, b])
    np.testing.assert_allclose(changed[..., :5], base[..., :5], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_conv3d_same_matches_loops(data_format, rng):
    layer = Conv3D(2, (2, 3, 2), strides=(1, 2, 2), padding="same", data_format=data_format)
    x = rng.standard_normal((1, 2, 3, 5, 4))
    w, b = rng.standard_normal((2, 2, 2, 3, 2)), rng.standard_normal(2)
    pads = [keras_same_pads(n, k, s) for n, k, s in zip((3, 5, 4), (2, 3, 2), (1, 2, 2))]
    expected = conv_ref(x, w, b, (1, 2, 2), (1, 1, 1), pads)
    feed = last(x) if data_format == "channels_last" else x
    got = run(layer, feed, [w, b])
    got = first(got) if data_format == "channels_last" else got
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kernel, stride, padding, output_padding, dilation", [
    (3, 2, "valid", None, 1), (3, 2, "same", None, 1), (4, 2, "same", None, 1),
    (5, 2, "same", None, 1), (2, 3, "valid", None, 1), (2, 3, "same", None, 1),
    (3, 2, "same", 1, 1), (4, 3, "same", 2, 1), (3, 2, "valid", 1, 1), (3, 1, "same", None, 1),
    (3, 2, "same", None, 2), (2, 2, "valid", None, 2),
])
@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_conv2d_transpose_matches_scatter(kernel, stride, padding, output_padding, dilation,
                                          data_format, rng):
    layer = Conv2DTranspose(3, kernel, strides=stride, padding=padding,
                            output_padding=output_padding, dilation_rate=dilation,
                            data_format=data_format)
    x = rng.standard_normal((2, 2, 3, 4))
    w, b = rng.standard_normal((2, 3, kernel, kernel)), rng.standard_normal(3)
    geo = [keras_transpose_geometry(n, kernel, stride, padding, output_padding, dilation)
           for n in (3, 4)]
    expected = deconv_ref(x, w, b, (stride,) * 2, (dilation,) * 2, [g[0] for g in geo],
                          [g[1] for g in geo])
    feed = last(x) if data_format == "channels_last" else x
    got = run(layer, feed, [w, b])
    got = first(got) if data_format == "channels_last" else got
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kwargs", [
    {"kernel_size": 3, "depth_multiplier": 2},
    {"kernel_size": 2, "strides": 2, "padding": "same"},
    {"kernel_size": 3, "padding": "same", "dilation_rate": 2, "depth_multiplier": 3},
])
@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_depthwise_conv2d_matches_loops(kwargs, data_format, rng):
    channels, dm = 3, kwargs.get("depth_multiplier", 1)
    k = kwargs["kernel_size"]
    s, d = kwargs.get("strides", 1), kwargs.get("dilation_rate", 1)
    layer = DepthwiseConv2D(data_format=data_format, **kwargs)
    x = rng.standard_normal((2, channels, 5, 6))
    w, b = rng.standard_normal((channels * dm, 1, k, k)), rng.standard_normal(channels * dm)
    pads = [(0, 0)] * 2
    if kwargs.get("padding") == "same":
        pads = [keras_same_pads(n, k, s, d) for n in (5, 6)]
    # each input channel c alone, giving output channels c * dm ... c * dm + dm - 1
    expected = np.concatenate([
        conv_ref(x[:, c:c + 1], w[c * dm:(c + 1) * dm], b[c * dm:(c + 1) * dm], (s, s),
                 (d, d), pads) for c in range(channels)], axis=1)
    feed = last(x) if data_format == "channels_last" else x
    got = run(layer, feed, [w, b])
    got = first(got) if data_format == "channels_last" else got
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_separable_conv2d_is_depthwise_then_pointwise(data_format, rng):
    layer = SeparableConv2D(4, 3, strides=2, padding="same", depth_multiplier=2,
                            data_format=data_format)
    x = rng.standard_normal((2, 3, 6, 5))
    dw = rng.standard_normal((6, 1, 3, 3))
    pw, b = rng.standard_normal((4, 6, 1, 1)), rng.standard_normal(4)
    pads = [keras_same_pads(n, 3, 2) for n in (6, 5)]
    mid = conv_ref(x, dw, None, (2, 2), (1, 1), pads, groups=3)
    expected = conv_ref(mid, pw, b, (1, 1), (1, 1), [(0, 0), (0, 0)])
    feed = last(x) if data_format == "channels_last" else x
    got = run(layer, feed, [dw, pw, b])
    got = first(got) if data_format == "channels_last" else got
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_activation_is_applied(rng):
    x = rng.standard_normal((2, 2, 4, 4))
    w, b = rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    linear = run(Conv2D(3, 3), x, [w, b])
    relu = run(Conv2D(3, 3, activation="relu"), x, [w, b])
    np.testing.assert_allclose(relu, np.maximum(linear, 0), rtol=1e-6, atol=1e-6)
    assert (linear < 0).any()


def test_asymmetric_same_gradient_matches_numeric(rng):
    inp = Input(shape=(2, 4, 5))
    layer = Conv2D(2, 2, strides=(1, 2), padding="same")
    out = layer(inp)
    location = {inp.name: rng.standard_normal((2, 2, 4, 5)),
                layer.weight.name: rng.standard_normal((2, 2, 2, 2)),
                layer.bias.name: rng.standard_normal(2)}
    location = {k: location[k] for k in out.symbol.list_arguments()}
    check_numeric_gradient(out.symbol, location, rtol=1e-4, atol=1e-5)


# -- parameters --------------------------------------------------------------------------

def test_weight_names_and_shapes():
    reset_names()
    inp = Input(shape=(3, 8, 8))
    conv = Conv2D(4, (3, 2))
    conv(inp)
    assert conv.name == "conv2d"
    assert [(p.name, p.shape) for p in conv.weights] == [("conv2d_weight", (4, 3, 3, 2)),
                                                        ("conv2d_bias", (4,))]
    conv_1 = Conv2D(4, 3, use_bias=False)
    conv_1(inp)
    assert [p.name for p in conv_1.weights] == ["conv2d_1_weight"]
    grouped = Conv2D(6, 3, groups=3, name="g")
    grouped(inp)
    assert grouped.weight.shape == (6, 1, 3, 3)
    t = Conv2DTranspose(5, 3, data_format="channels_last")
    t(Input(shape=(8, 8, 3)))
    assert t.name == "conv2d_transpose"
    assert [(p.name, p.shape) for p in t.weights] == [("conv2d_transpose_weight", (3, 5, 3, 3)),
                                                     ("conv2d_transpose_bias", (5,))]
    dw = DepthwiseConv2D(3, depth_multiplier=2)
    dw(inp)
    assert [(p.name, p.shape) for p in dw.weights] == [("depthwise_conv2d_weight", (6, 1, 3, 3)),
                                                      ("depthwise_conv2d_bias", (6,))]
    sep = SeparableConv2D(7, 3)
    sep(inp)
    assert [(p.name, p.shape) for p in sep.weights] == [
        ("separable_conv2d_depthwise_weight", (3, 1, 3, 3)),
        ("separable_conv2d_pointwise_weight", (7, 3, 1, 1)), ("separable_conv2d_bias", (7,))]
    c1, c3 = Conv1D(2, 3), Conv3D(2, 3)
    c1(Input(shape=(3, 9)))
    c3(Input(shape=(3, 4, 4, 4)))
    assert (c1.weight.name, c1.weight.shape) == ("conv1d_weight", (2, 3, 3))
    assert (c3.weight.name, c3.weight.shape) == ("conv3d_weight", (2, 3, 3, 3, 3))


def test_channels_last_keeps_engine_weight_layout(rng):
    x = rng.standard_normal((2, 3, 5, 5))
    w, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    cf = run(Conv2D(4, 3, padding="same"), x, [w, b])
    cl = run(Conv2D(4, 3, padding="same", data_format="channels_last"), last(x), [w, b])
    np.testing.assert_allclose(first(cl), cf, rtol=1e-5, atol=1e-5)


def test_global_data_format_is_the_default():
    deepkit.backend.set_image_data_format("channels_last")
    try:
        layer = Conv2D(2, 3)
    finally:
        deepkit.backend.set_image_data_format("channels_first")
    assert layer.data_format == "channels_last"
    assert Conv2D(2, 3).data_format == "channels_first"


def test_tags_and_multipliers():
    layer = Conv2D(2, 3, kernel_regularizer=L2(0.1), lr_mult=0.5, wd_mult=2.0)
    layer(Input(shape=(1, 5, 5)))
    assert layer.weight.regularizable and not layer.bias.regularizable
    assert layer.weight.regularizer is layer.kernel_regularizer
    assert all(p.trainable for p in layer.weights)
    assert [(p.lr_mult, p.wd_mult) for p in layer.weights] == [(0.5, 2.0), (0.5, 2.0)]
    assert layer.count_params() == 2 * 9 + 2


def test_initializer_is_used():
    layer = Conv2D(2, 3, kernel_initializer="ones", bias_initializer="ones")
    out = run(layer, np.ones((1, 1, 3, 3)))
    np.testing.assert_allclose(out, np.full((1, 2, 1, 1), 10.0))


# -- configuration ---------------------------------------------------------------------

@pytest.mark.parametrize("make, in_shape", [
    (lambda: Conv1D(3, 2, strides=2, padding="causal", dilation_rate=1, groups=1,
                    activation="relu", kernel_regularizer="l2", bias_constraint="non_neg"),
     (2, 8)),
    (lambda: Conv2D(4, (3, 2), strides=(2, 1), padding="same", data_format="channels_last",
                    groups=2, use_bias=False, kernel_initializer="he_normal",
                    kernel_constraint="max_norm", lr_mult=0.1, wd_mult=0.0), (6, 5, 2)),
    (lambda: Conv3D(2, 2, dilation_rate=(1, 2, 1), activation="tanh",
                    bias_initializer="ones"), (1, 4, 5, 4)),
    (lambda: Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=1,
                             activation="sigmoid", bias_regularizer=L2(0.5)), (2, 4, 4)),
    (lambda: DepthwiseConv2D(3, depth_multiplier=2, padding="same",
                             depthwise_initializer="lecun_normal",
                             depthwise_regularizer="l1"), (2, 5, 5)),
    (lambda: SeparableConv2D(4, 3, strides=2, depth_multiplier=2, padding="same",
                             pointwise_initializer="zeros", pointwise_constraint="unit_norm",
                             data_format="channels_last"), (5, 5, 2)),
])
def test_get_config_round_trip(make, in_shape, rng):
    layer = make()
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    assert json.loads(json.dumps(config)) == config
    x = rng.standard_normal((2,) + in_shape)
    inp = Input(shape=in_shape)
    model = Model(inp, layer(inp))
    model.initialize_weights()
    weights = [rng.standard_normal(w.shape) for w in model.get_weights()]
    model.set_weights(weights)
    np.testing.assert_allclose(run(clone, x, weights), model.predict(x.astype(np.float32)),
                               rtol=1e-6, atol=1e-6)


def test_saved_model_predicts_the_same(tmp_path, rng):
    inp = Input(shape=(2, 6, 6))
    h = Conv2D(3, 3, padding="same", strides=2, activation="relu")(inp)
    h = Conv2DTranspose(2, 3, strides=2, padding="same")(h)
    h = SeparableConv2D(2, 3)(h)
    out = DepthwiseConv2D(3, depth_multiplier=2, data_format="channels_first")(h)
    model = Model(inp, out)
    x = rng.standard_normal((3, 2, 6, 6)).astype(np.float32)
    before = model.predict(x)
    model.save(tmp_path / "m.h5")
    custom = {c.__name__: c for c in (Conv2D, Conv2DTranspose, SeparableConv2D,
                                      DepthwiseConv2D)}
    loaded = deepkit.load_model(tmp_path / "m.h5", custom_objects=custom)
    np.testing.assert_array_equal(loaded.predict(x), before)


# -- errors --------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    ({"filters": 0, "kernel_size": 3}, r"Conv2D: 'filters' must be a positive int\. "
                                       r"Received: filters=0"),
    ({"filters": 2.5, "kernel_size": 3}, r"'filters' must be a positive int"),
    ({"filters": 2, "kernel_size": 0}, r"Conv2D: 'kernel_size' must be an int or a tuple of 2 "
                                       r"positive ints\. Received: kernel_size=0"),
    ({"filters": 2, "kernel_size": (3, 0)}, r"Received: kernel_size=\(3, 0\)"),
    ({"filters": 2, "kernel_size": (3, 3, 3)}, r"Received: kernel_size=\(3, 3, 3\)"),
    ({"filters": 2, "kernel_size": "3"}, r"Received: kernel_size='3'"),
    ({"filters": 2, "kernel_size": 3, "strides": (1, 0)}, r"'strides' must be"),
    ({"filters": 2, "kernel_size": 3, "dilation_rate": -1}, r"'dilation_rate' must be"),
    ({"filters": 2, "kernel_size": 3, "padding": "full"},
     r"'padding' must be 'valid' or 'same'\. Received: padding='full'"),
    ({"filters": 2, "kernel_size": 3, "padding": "causal"}, r"'padding' must be"),
    ({"filters": 2, "kernel_size": 3, "data_format": "NHWC"},
     r"'data_format' must be 'channels_first' or 'channels_last'\. Received: data_format='NHWC'"),
    ({"filters": 3, "kernel_size": 3, "groups": 2}, r"'filters' must be divisible by 'groups'"),
    ({"filters": 2, "kernel_size": 3, "activation": "relux"}, r"unknown activation 'relux'"),
])
def test_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Conv2D(**kwargs)


def test_other_constructor_errors():
    with pytest.raises(ValueError, match=r"Conv1D: 'kernel_size' must be an int or a tuple of "
                                         r"1 positive int\. Received: kernel_size=\(3, 3\)"):
        Conv1D(2, (3, 3))
    with pytest.raises(ValueError, match=r"'output_padding' entry must be smaller than its "
                                         r"stride"):
        Conv2DTranspose(2, 3, strides=2, output_padding=2)
    with pytest.raises(ValueError, match=r"DepthwiseConv2D: 'depth_multiplier' must be a "
                                         r"positive int\. Received: depth_multiplier=0"):
        DepthwiseConv2D(3, depth_multiplier=0)
    with pytest.raises(TypeError, match=r"unknown argument 'kernal_size' \(did you mean "
                                        r"'kernel_size'\?\)"):
        Conv2D(2, 3, kernal_size=3)


def test_input_of_wrong_rank():
    layer = Conv2D(2, 3)
    with pytest.raises(ValueError, match=r"Conv2D 'conv2d[_0-9]*' expects inputs of rank 4 "
                                         r"\(NCHW, data_format='channels_first'\).*got shape "
                                         r"\(None, 28, 28\)"):
        layer(Input(shape=(28, 28)))
    with pytest.raises(ValueError, match=r"expects inputs of rank 3 \(NWC"):
        Conv1D(2, 3, data_format="channels_last")(Input(shape=(3, 8, 8)))


def test_kernel_larger_than_input():
    with pytest.raises(ValueError, match=r"kernel \(5, 5\).*larger than the input's spatial "
                                         r"size \(3, 4\) with padding='valid'"):
        Conv2D(2, 5)(Input(shape=(1, 3, 4)))
    assert Conv2D(2, 5, padding="same")(Input(shape=(1, 3, 4))).shape == (None, 2, 3, 4)


def test_channels_not_divisible_by_groups():
    with pytest.raises(ValueError, match=r"input has 3 channels, which is not divisible by "
                                         r"groups=2"):
        Conv2D(4, 3, groups=2)(Input(shape=(3, 5, 5)))


def test_built_layer_rejects_other_shape():
    layer = Conv2D(2, 3)
    layer(Input(shape=(1, 5, 5)))
    with pytest.raises(ValueError, match=r"built for shape \(None, 1, 5, 5\)"):
        layer(Input(shape=(2, 5, 5)))


# -- training --------------------------------------------------------------------------

def test_small_convnet_trains(rng):
    deepkit.set_seed(0)
    x = rng.standard_normal((64, 1, 8, 8)).astype(np.float32)
    y = (x[:, 0, :4].mean(axis=(1, 2)) > x[:, 0, 4:].mean(axis=(1, 2))).astype(np.int64)
    model = Sequential([Input(shape=(1, 8, 8)), Conv2D(4, 3, padding="same", activation="relu"),
                        MaxPooling2D(2), Flatten(), Dense(2, activation="softmax")])
    model.compile(optimizer=Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    before = model.evaluate(x, y, batch_size=64, return_dict=True)
    history = model.fit(x, y, batch_size=16, epochs=15, verbose=0)
    after = model.evaluate(x, y, batch_size=64, return_dict=True)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0]
    assert after["loss"] < 0.5 * before["loss"]
    assert after["accuracy"] > 0.85


def test_transpose_cropped_output_gradient_matches_numeric(rng):
    inp = Input(shape=(2, 3, 2))
    layer = Conv2DTranspose(2, 3, strides=2, padding="same", data_format="channels_first")
    out = layer(inp)
    location = {inp.name: rng.standard_normal((1, 2, 3, 2)),
                layer.weight.name: rng.standard_normal((2, 2, 3, 3)),
                layer.bias.name: rng.standard_normal(2)}
    check_numeric_gradient(out.symbol, {k: location[k] for k in out.symbol.list_arguments()},
                           rtol=1e-4, atol=1e-5)
