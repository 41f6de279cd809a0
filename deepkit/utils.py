"""Small helpers Keras users reach for: ``to_categorical``, ``normalize``, seeding, batches."""
import numpy as np

from .backend import set_seed
from .trainer.data import pack_x_y_sample_weight, unpack_x_y_sample_weight

__all__ = ["to_categorical", "normalize", "set_random_seed", "unpack_x_y_sample_weight",
           "pack_x_y_sample_weight"]


def to_categorical(x, num_classes=None):
    """One-hot rows for integer class labels (Keras's ``to_categorical``).

    Args:
        x: Integer labels of any shape; a trailing axis of size 1 is dropped.
        num_classes: Number of classes (default: the largest label + 1).

    Returns:
        A float32 array of shape ``x.shape + (num_classes,)``.

    Raises:
        ValueError: Labels are not integers, are negative, or are not below
            ``num_classes``.
    """
    x = np.asarray(x)
    if x.size and not np.all(np.equal(np.mod(x, 1), 0)):
        raise ValueError(f"to_categorical: labels must be integers, got dtype {x.dtype} with "
                         f"non-integer values")
    x = x.astype(np.int64)
    if x.ndim > 1 and x.shape[-1] == 1:
        x = x.reshape(x.shape[:-1])
    if num_classes is None:
        num_classes = int(x.max()) + 1 if x.size else 0
    num_classes = int(num_classes)
    if x.size and (x.min() < 0 or x.max() >= num_classes):
        raise ValueError(f"to_categorical: labels must be in [0, {num_classes}) for "
                         f"num_classes={num_classes}; got values from {x.min()} to {x.max()}")
    out = np.zeros(x.shape + (num_classes,), np.float32)
    np.put_along_axis(out, x[..., None], 1.0, axis=-1)
    return out


def normalize(x, axis=-1, order=2):
    """``x`` scaled to unit ``order``-norm along ``axis`` (zero vectors stay zero)."""
    x = np.asarray(x, dtype=np.float64 if np.asarray(x).dtype == np.float64 else np.float32)
    norm = np.linalg.norm(x, ord=order, axis=axis, keepdims=True)
    return x / np.where(norm == 0, 1, norm)


def set_random_seed(seed):
    """Seed every generator deepkit uses (Keras's name for :func:`deepkit.backend.set_seed`)."""
    set_seed(seed)
