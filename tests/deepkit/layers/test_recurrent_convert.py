"""Weight converters: Keras's and PyTorch's recurrent layouts into deepkit's."""
import numpy as np
import pytest

import deepkit
from deepkit import layers as L
from deepkit.layers import recurrent_convert as convert

from .recurrent_reference import run_layer

N, T, F, U = 2, 4, 3, 5


def _keras_reference(kind, keras_weights, x, reset_after=True):
    """Keras's formulas on Keras's layout (kernel (in, G*u); GRU gates z, r, h)."""
    kernel, recurrent = (np.asarray(w, np.float64) for w in keras_weights[:2])
    bias = np.asarray(keras_weights[2], np.float64)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    h = np.zeros((x.shape[0], U))
    c = np.zeros_like(h)
    for t in range(x.shape[1]):
        if kind == "LSTM":
            i, f, g, o = np.split(x[:, t] @ kernel + h @ recurrent + bias, 4, axis=-1)
            c = sig(f) * c + sig(i) * np.tanh(g)
            h = sig(o) * np.tanh(c)
            continue
        b_in, b_rec = (bias[0], bias[1]) if reset_after else (bias, np.zeros(3 * U))
        xz, xr, xh = np.split(x[:, t] @ kernel + b_in, 3, axis=-1)
        if reset_after:
            hz, hr, hh = np.split(h @ recurrent + b_rec, 3, axis=-1)
            z, r = sig(xz + hz), sig(xr + hr)
            cand = np.tanh(xh + r * hh)
        else:
            z = sig(xz + h @ recurrent[:, :U])
            r = sig(xr + h @ recurrent[:, U:2 * U])
            cand = np.tanh(xh + (r * h) @ recurrent[:, 2 * U:])
        h = z * h + (1 - z) * cand
    return h


@pytest.mark.parametrize("kind, reset_after", [("LSTM", True), ("GRU", True), ("GRU", False)])
def test_keras_layout_converts_and_round_trips(kind, reset_after, rng):
    g = 4 if kind == "LSTM" else 3
    bias_shape = (2, g * U) if kind == "GRU" and reset_after else (g * U,)
    keras_weights = [rng.normal(size=(F, g * U)) * 0.4, rng.normal(size=(U, g * U)) * 0.4,
                     rng.normal(size=bias_shape) * 0.4]
    x = rng.normal(size=(N, T, F))
    ours = convert.from_keras(kind, keras_weights, reset_after=reset_after)
    _, last, _ = run_layer(kind, ours, x, reset_after=reset_after)
    np.testing.assert_allclose(last, _keras_reference(kind, keras_weights, x, reset_after),
                               rtol=1e-10, atol=1e-12)
    back = convert.to_keras(kind, ours, reset_after=reset_after)
    for a, b in zip(back, keras_weights):
        np.testing.assert_array_equal(a, b)
    layer = (L.LSTM(U) if kind == "LSTM" else L.GRU(U, reset_after=reset_after))
    inp = deepkit.Input(shape=(T, F))
    model = deepkit.Model(inp, layer(inp))
    model.initialize_weights()
    layer.set_weights(ours)
    np.testing.assert_allclose(model.predict(x.astype(np.float32)), last, rtol=1e-4, atol=1e-5)


def test_keras_conversion_checks_shapes():
    with pytest.raises(ValueError, match=r"GRU: bias has shape \(15,\) but \(2, 15\)"):
        convert.from_keras("GRU", [np.zeros((F, 15)), np.zeros((U, 15)), np.zeros(15)])
    with pytest.raises(ValueError, match="kind must be"):
        convert.from_keras("ConvLSTM", [])


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
def test_pytorch_modules_give_the_same_outputs(kind, rng):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = {"SimpleRNN": torch.nn.RNN, "LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}[kind](
        F, U, batch_first=True)
    x = rng.normal(size=(N, T, F)).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(x))[0].numpy()
    layer = {"SimpleRNN": L.SimpleRNN, "LSTM": L.LSTM, "GRU": L.GRU}[kind](
        U, return_sequences=True)
    inp = deepkit.Input(shape=(T, F))
    model = deepkit.Model(inp, layer(inp))
    model.initialize_weights()
    layer.set_weights(convert.from_torch(kind, module.state_dict()))
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5, atol=1e-5)
