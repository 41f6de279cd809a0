"""Embedding: integer indices to dense vectors (a trainable lookup table)."""
import numpy as np

from deepkit_engine import symbol as sym

from .. import constraints, initializers, regularizers
from .base import Layer

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
        mask_zero: Not supported (deepkit layers carry no masks); only False.
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
        if mask_zero:
            raise ValueError("Embedding: 'mask_zero' is not supported (deepkit layers do not "
                             "propagate masks); pad with an index whose vector you ignore, or "
                             "weight the loss with sample_weight. Received: mask_zero=True")
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
        return sym.Embedding(inputs, self.weight.var, input_dim=self.input_dim,
                             output_dim=self.output_dim, dtype=self.dtype, name=self.name)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            input_dim=self.input_dim, output_dim=self.output_dim,
            embeddings_initializer=initializers.serialize(self.embeddings_initializer),
            embeddings_regularizer=_ser(self.embeddings_regularizer),
            embeddings_constraint=_ser(self.embeddings_constraint), lr_mult=self.lr_mult,
            wd_mult=self.wd_mult)
        return config
