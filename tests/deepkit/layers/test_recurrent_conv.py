"""ConvLSTM2D against a numpy step-by-step reference (float64 convolutions)."""
import numpy as np
import pytest

import deepkit
from deepkit import layers as L

from .recurrent_reference import sigmoid

N, T, C, H, W, FILTERS = 2, 3, 2, 5, 4, 3


def conv2d(x, w, pad, dilate=(1, 1)):
    """Plain cross-correlation of (N, C, H, W) with (F, C, kh, kw), zero padding ``pad``."""
    x = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    f, _, kh, kw = w.shape
    oh = x.shape[2] - dilate[0] * (kh - 1)
    ow = x.shape[3] - dilate[1] * (kw - 1)
    out = np.zeros((x.shape[0], f, oh, ow))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i * dilate[0]:i * dilate[0] + oh, j * dilate[1]:j * dilate[1] + ow]
            out += np.einsum("nchw,fc->nfhw", patch, w[:, :, i, j])
    return out


def reference(x, kernel, recurrent, bias, padding, go_backwards=False):
    k = kernel.shape[2]
    pad = (k // 2, k // 2) if padding == "same" else (0, 0)
    steps = range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])
    h = c = None
    outs = []
    for t in steps:
        z = conv2d(x[:, t], kernel, pad) + bias[None, :, None, None]
        if h is None:
            h = c = np.zeros((x.shape[0], FILTERS) + z.shape[2:])
        z = z + conv2d(h, recurrent, (k // 2, k // 2))
        i, f, g, o = np.split(z, 4, axis=1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        outs.append(h)
    return np.stack(outs, 1), h, c


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_conv_lstm_matches_numpy(padding, go_backwards, rng):
    layer = L.ConvLSTM2D(FILTERS, 3, padding=padding, return_sequences=True, return_state=True,
                         go_backwards=go_backwards)
    inp = deepkit.Input(shape=(T, C, H, W))
    model = deepkit.Model(inp, layer(inp))
    model.initialize_weights()
    weights = [rng.uniform(-0.4, 0.4, size=w.shape).astype(np.float32)
               for w in layer.get_weights()]
    layer.set_weights(weights)
    x = rng.normal(size=(N, T, C, H, W)).astype(np.float32)
    got = model.predict(x)
    want = reference(x.astype(np.float64), *[w.astype(np.float64) for w in weights], padding,
                     go_backwards)
    spatial = (H, W) if padding == "same" else (H - 2, W - 2)
    assert layer.output_shape[0] == (None, T, FILTERS) + spatial
    for g, e in zip(got, want):
        np.testing.assert_allclose(g, e, rtol=2e-5, atol=2e-5)


def test_conv_lstm_trains_saves_and_loads(tmp_path, rng):
    inp = deepkit.Input(shape=(T, C, H, W))
    out = L.GlobalAveragePooling2D()(L.ConvLSTM2D(FILTERS, 3, padding="same")(inp))
    model = deepkit.Model(inp, out)
    model.compile("adam", "mse")
    x = rng.normal(size=(4, T, C, H, W)).astype(np.float32)
    y = rng.normal(size=(4, FILTERS)).astype(np.float32) * 0.1
    first = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=20, verbose=0)
    assert model.evaluate(x, y, verbose=0) < first
    path = tmp_path / "convlstm.h5"
    model.save(path)
    np.testing.assert_allclose(deepkit.models.load_model(path).predict(x), model.predict(x),
                               rtol=1e-6, atol=1e-6)


def test_conv_lstm_bad_input():
    with pytest.raises(ValueError, match="5-D"):
        L.ConvLSTM2D(2, 3)(deepkit.Input(shape=(T, C, H)))
    with pytest.raises(ValueError, match="odd"):
        L.ConvLSTM2D(2, 2)
