"""Masks over time steps: ``Masking`` and the table that ties a mask to a symbol.

A mask is a (batch, timesteps) symbol of ones (step present) and zeros
(step skipped), as Keras's ``_keras_mask``. The layer that makes it
(``Masking``, ``Embedding(mask_zero=True)``) records it against its output
symbol with :func:`set_mask`; a layer that reads masks (the recurrent layers,
``TimeDistributed``, ``Bidirectional``) finds it with :func:`get_mask`;
layers with ``supports_masking`` pass it on (``Layer.compute_mask``); and the
training program reads the mask of each model output so that the loss
ignores masked steps. Because the mask hangs off the symbol a layer's
``call`` returns, it is found again whenever a model replays its layers.
"""
from deepkit_engine import symbol as sym

from .base import Layer, get_mask, set_mask

__all__ = ["Masking", "set_mask", "get_mask"]


class Masking(Layer):
    """Marks the time steps whose features all equal ``mask_value`` as skipped (Keras).

    The output is the input with the skipped steps set to zero (as Keras
    does); layers after it that read masks (the recurrent layers) skip those
    steps, and a loss on a sequence output ignores them.

    Args:
        mask_value: The padding value.

    Input shape: ``(batch, timesteps, features...)``. Output: the same.
    """

    supports_masking = True

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)

    def build(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError(f"Masking needs inputs of shape (batch, timesteps, features), got "
                             f"{tuple(input_shape)}")
        self._feature_axes = tuple(range(2, len(input_shape)))

    def call(self, inputs):
        keep = sym.max(sym.abs(inputs - self.mask_value) > 0, axis=self._feature_axes)
        spread = sym.reshape(keep, shape=(0, 0) + (1,) * len(self._feature_axes))
        out = sym.broadcast_mul(inputs, spread)
        return set_mask(out, keep)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config["mask_value"] = self.mask_value
        return config
