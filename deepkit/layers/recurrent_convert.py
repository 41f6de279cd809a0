"""Weight converters for the recurrent layers: from Keras's and PyTorch's layouts.

deepkit's layout (``get_weights()`` of SimpleRNN, LSTM, GRU): ``[kernel
(G*units, input), recurrent_kernel (G*units, units), bias (G*units,)]`` plus
``recurrent_bias`` for ``GRU(reset_after=True)``; gates LSTM i, f, c, o and
GRU r, z, n.

* Keras stores kernels transposed ((input, G*units)), orders GRU gates
  z, r, h, and keeps a reset-after GRU's two biases as one (2, 3*units)
  array.
* PyTorch's ``nn.LSTM``/``nn.GRU`` (one layer, one direction) store
  ``weight_ih_l0`` (G*units, input), ``weight_hh_l0``, ``bias_ih_l0`` and
  ``bias_hh_l0`` with the same gate order as deepkit; an LSTM's two biases
  add up. Only reset-after GRUs exist in PyTorch.
"""
import numpy as np

__all__ = ["from_keras", "to_keras", "from_torch"]

_GATES = {"simplernn": 1, "lstm": 4, "gru": 3}


def _kind(kind):
    key = str(kind).lower().replace("_", "")
    if key not in _GATES:
        raise ValueError(f"recurrent weight conversion: kind must be 'SimpleRNN', 'LSTM' or "
                         f"'GRU'; got {kind!r}")
    return key


def _swap_zr(w, axis):
    """Exchange the first two gate blocks (Keras's z, r <-> deepkit's r, z) along ``axis``."""
    z, r, n = np.split(np.asarray(w), 3, axis=axis)
    return np.concatenate([r, z, n], axis=axis)


def _check(kind, name, array, shape):
    if array.shape != shape:
        raise ValueError(f"{kind}: {name} has shape {array.shape} but {shape} was expected")


def from_keras(kind, weights, reset_after=True):
    """Keras's ``layer.get_weights()`` of a SimpleRNN, LSTM or GRU in deepkit's layout.

    Args:
        kind: ``'SimpleRNN'``, ``'LSTM'`` or ``'GRU'``.
        weights: ``[kernel (input, G*units), recurrent_kernel (units, G*units)]``
            and, with a bias, ``bias`` ((G*units,), or (2, 3*units) for a
            reset-after GRU).
        reset_after: For GRU: how the Keras layer was configured.

    Returns:
        The list for deepkit's ``set_weights``.
    """
    key = _kind(kind)
    kernel, recurrent = np.asarray(weights[0]), np.asarray(weights[1])
    units = recurrent.shape[0]
    gu = _GATES[key] * units
    _check(kind, "recurrent_kernel", recurrent, (units, gu))
    _check(kind, "kernel", kernel, (kernel.shape[0], gu))
    out = [kernel.T, recurrent.T]
    biases = []
    if len(weights) > 2:
        bias = np.asarray(weights[2])
        if key == "gru" and reset_after:
            _check(kind, "bias", bias, (2, gu))
            biases = [bias[0], bias[1]]
        else:
            _check(kind, "bias", bias, (gu,))
            biases = [bias]
    if key == "gru":
        out = [_swap_zr(w, 0) for w in out]
        biases = [_swap_zr(b, 0) for b in biases]
    return [np.ascontiguousarray(w) for w in out + biases]


def to_keras(kind, weights, reset_after=True):
    """deepkit's ``get_weights()`` of a SimpleRNN, LSTM or GRU in Keras's layout."""
    key = _kind(kind)
    out = [np.asarray(w) for w in weights]
    if key == "gru":
        out = [_swap_zr(w, 0) for w in out]
    result = [out[0].T, out[1].T]
    if key == "gru" and reset_after and len(out) > 2:
        result.append(np.stack([out[2], out[3]]))
    elif len(out) > 2:
        result.append(out[2])
    return [np.ascontiguousarray(w) for w in result]


def from_torch(kind, state_dict, use_bias=True):
    """A one-layer, one-direction PyTorch ``nn.RNN``/``nn.LSTM``/``nn.GRU`` in deepkit's layout.

    Args:
        kind: ``'SimpleRNN'``, ``'LSTM'`` or ``'GRU'`` (a reset-after GRU).
        state_dict: The module's ``state_dict()`` (tensors or arrays).
        use_bias: Whether the deepkit layer has biases (PyTorch's ``bias``).

    Returns:
        The list for deepkit's ``set_weights``.
    """
    key = _kind(kind)

    def get(name):
        if name not in state_dict:
            raise ValueError(f"{kind}: the PyTorch state_dict has no '{name}' (keys: "
                             f"{sorted(state_dict)}); only one layer, one direction converts")
        value = state_dict[name]
        value = value.detach().cpu().numpy() if hasattr(value, "detach") else value
        return np.asarray(value)

    out = [get("weight_ih_l0"), get("weight_hh_l0")]
    if use_bias:
        b_ih, b_hh = get("bias_ih_l0"), get("bias_hh_l0")
        out += [b_ih, b_hh] if key == "gru" else [b_ih + b_hh]
    return out
