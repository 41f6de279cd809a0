"""Embedding: integer indices to dense vectors (a trainable lookup table)."""
import numpy as np

from deepkit_engine import symbol as sym

from .. import constraints, initializers, regularizers
from .base import Layer, set_mask

__all__ = ["Embedding"]


def _ser(obj):
    """A regularizer or constraint as config data (None, a name, or class and config)."""
    if obj is None or isinstance(obj, str):
        return obj
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


def _check_positive_int(arg, value):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"Embedding: '{arg}' must be a positive int. Received: {arg}={value!r}")
    return int(value)


class Embedding(Layer):
    """Turns integer indices into dense vectors: ``y[..., :] = weight[x[...]]``.

    The indices may come as a float array (the engine's and MXNet's habit:
    ``Input`` data is float32); they are truncated to integers and clipped into
    ``[0, input_dim - 1]`` by the engine's ``Embedding`` op. The indices get no
    gradient; the rows of the table that were looked up do.

    The table is the parameter ``weight`` (variable ``<layer>_weight``) of
    shape ``(input_dim, output_dim)``, the engine's and MXNet's layout (and
    Keras's ``embeddings``).

    Args:
        input_dim: Vocabulary size: the largest index plus one (positive int).
        output_dim: Size of each vector (positive int).
        embeddings_initializer: For the table (Keras's default ``'uniform'``:
            U[-0.05, 0.05)).
        embeddings_regularizer: Penalty added to the loss.
        embeddings_constraint: Applied after each update.
        mask_zero: Index 0 is padding: the output carries a (batch, timesteps)
            mask that is 0 where the index is 0, which the recurrent layers and
            the losses read (Keras); ``input_dim`` then counts the padding index.
        lr_mult, wd_mult: Learning-rate and weight-decay multipliers.

    Input shape: ``(batch, ...)`` of indices. Output shape: ``(batch, ...,
    output_dim)``.
    """

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 embeddings_regularizer=None, embeddings_constraint=None, mask_zero=False,
                 lr_mult=1.0, wd_mult=1.0, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = _check_positive_int("input_dim", input_dim)
        self.output_dim = _check_positive_int("output_dim", output_dim)
        self.mask_zero = bool(mask_zero)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.lr_mult, self.wd_mult = float(lr_mult), float(wd_mult)

    def build(self, input_shape):
        self.weight = self.add_weight("weight", (self.input_dim, self.output_dim),
                                      self.embeddings_initializer,
                                      self.embeddings_regularizer, self.embeddings_constraint,
                                      lr_mult=self.lr_mult, wd_mult=self.wd_mult)

    def call(self, inputs):
        out = sym.Embedding(inputs, self.weight.var, input_dim=self.input_dim,
                            output_dim=self.output_dim, dtype=self.dtype, name=self.name)
        if self.mask_zero:
            set_mask(out, self.compute_mask(inputs))
        return out

    def compute_mask(self, inputs, mask=None):
        """With ``mask_zero``: 1 where the index is not 0, else None (Keras)."""
        if not self.mask_zero:
            return None
        if len(self._build_input_shape or ()) != 2:
            raise ValueError(f"Embedding '{self.name}': mask_zero needs (batch, timesteps) "
                             f"indices, got shape {self._build_input_shape}")
        return inputs != 0

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def check_indices(self, values, input_name=None, positions=None):
        """Raise a ValueError unless ``values`` are integers in ``[0, input_dim)``.

        The engine's lookup clips bad indices (MXNet's ``take(mode='clip')``),
        which would train the wrong rows silently; models check the data that
        feeds an Embedding directly with this before it enters.

        Args:
            values: The indices (numpy array, batch axis first).
            input_name: The model input they come from, for the message.
            positions: The sample numbers of the rows in the data set.
        """
        values = np.asarray(values)
        if values.dtype.kind not in "biuf":
            raise ValueError(f"Embedding '{self.name}': indices must be integers; got an array "
                             f"of dtype {values.dtype}")
        with np.errstate(invalid="ignore"):
            bad = (values < 0) | (values >= self.input_dim)
            if values.dtype.kind == "f":
                bad |= ~np.isfinite(values) | (values != np.floor(values))
        if not bad.any():
            return
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        row = where[0] if positions is None else int(np.asarray(positions)[where[0]])
        source = f" (input '{input_name}')" if input_name else ""
        raise ValueError(f"Embedding '{self.name}'{source}: index {values[where].item()!r} at "
                         f"sample {row}, position {where[1:]} is not an integer in "
                         f"[0, {self.input_dim}) (input_dim={self.input_dim}); "
                         f"{int(bad.sum())} bad indices in all")

    def get_config(self):
        config = super().get_config()
        config.update(
            input_dim=self.input_dim, output_dim=self.output_dim,
            embeddings_initializer=initializers.serialize(self.embeddings_initializer),
            embeddings_regularizer=_ser(self.embeddings_regularizer),
            embeddings_constraint=_ser(self.embeddings_constraint), lr_mult=self.lr_mult,
            wd_mult=self.wd_mult)
        if self.mask_zero:
            config["mask_zero"] = True
        return config
