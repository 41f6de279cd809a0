"""Plain numpy (float64), step by step: the recurrent layers' reference outputs.

Weights in deepkit's layout: kernel (G*u, in), recurrent_kernel (G*u, u),
bias (G*u,), GRU recurrent_bias (G*u,); gates LSTM i, f, c, o; GRU r, z, n.
"""
import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


ACTS = {"tanh": np.tanh, "sigmoid": sigmoid, "relu": lambda x: np.maximum(x, 0.0),
        "hard_sigmoid": lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0), None: lambda x: x}


def cell_step(kind, weights, x, states, activation="tanh", recurrent_activation="sigmoid",
              reset_after=True):
    """One step of SimpleRNN/LSTM/GRU: ``(output, new_states)``."""
    act, rec = ACTS[activation], ACTS[recurrent_activation]
    w = [np.asarray(a, np.float64) for a in weights]
    kernel, recurrent = w[0], w[1]
    bias = w[2] if len(w) > 2 else np.zeros(kernel.shape[0])
    h = states[0]
    proj = x @ kernel.T + bias
    if kind == "SimpleRNN":
        out = act(proj + h @ recurrent.T)
        return out, [out]
    if kind == "LSTM":
        i, f, g, o = np.split(proj + h @ recurrent.T, 4, axis=-1)
        c = rec(f) * states[1] + rec(i) * act(g)
        out = rec(o) * act(c)
        return out, [out, c]
    u = recurrent.shape[1]
    x_r, x_z, x_n = np.split(proj, 3, axis=-1)
    if reset_after:
        rbias = w[3] if len(w) > 3 else np.zeros(3 * u)
        h_r, h_z, h_n = np.split(h @ recurrent.T + rbias, 3, axis=-1)
        r, z = rec(x_r + h_r), rec(x_z + h_z)
        n = act(x_n + r * h_n)
    else:
        r = rec(x_r + h @ recurrent[:u].T)
        z = rec(x_z + h @ recurrent[u:2 * u].T)
        n = act(x_n + (r * h) @ recurrent[2 * u:].T)
    out = z * h + (1 - z) * n
    return out, [out]


def run_layer(kind, weights, x, mask=None, go_backwards=False, initial=None, **cell_kwargs):
    """Whole layer over (batch, time, features): ``(sequence, last output, final states)``.

    Masked steps keep the state and output zeros.
    """
    x = np.asarray(x, np.float64)
    n, t, _ = x.shape
    u = np.asarray(weights[1]).shape[1]
    count = 2 if kind == "LSTM" else 1
    states = [np.zeros((n, u)) for _ in range(count)] if initial is None else \
        [np.asarray(s, np.float64) for s in initial]
    order = range(t - 1, -1, -1) if go_backwards else range(t)
    outs = []
    for step in order:
        out, new = cell_step(kind, weights, x[:, step], states, **cell_kwargs)
        if mask is not None:
            keep = np.asarray(mask, np.float64)[:, step:step + 1]
            out = out * keep
            new = [keep * a + (1 - keep) * b for a, b in zip(new, states)]
        states = new
        outs.append(out)
    return np.stack(outs, axis=1), (states[0] if mask is not None else outs[-1]), states
