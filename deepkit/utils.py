"""Small helpers Keras users reach for: ``to_categorical``, ``normalize``, seeding, batches,
``plot_model`` and ``plot_history``."""
import numpy as np

from deepkit_engine.fileio import atomic_path

from .backend import set_seed
from .trainer.data import pack_x_y_sample_weight, unpack_x_y_sample_weight
from .visualization import model_to_dot, plot_history, plot_model

__all__ = ["to_categorical", "normalize", "set_random_seed", "unpack_x_y_sample_weight",
           "pack_x_y_sample_weight", "image_grid", "plot_model", "model_to_dot",
           "plot_history"]


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


def image_grid(images, path=None, cols=None, normalize="all", padding=1, cmap="gray"):
    """Tile images into one picture and, with ``path``, save it as a PNG (atomically).

    Args:
        images: ``(n, height, width)`` or ``(n, height, width, 3)`` values.
        path: Where to write the PNG (needs matplotlib); None only returns the grid.
        cols: Images per row (default: a square-ish grid).
        normalize: ``'all'`` scales by the overall min/max, ``'each'`` every
            image by its own (for filters), ``None`` keeps values (in [0, 1]).
        padding: Pixels between images.
        cmap: Colour map for single-channel images.

    Returns:
        The grid as a float array in [0, 1].

    Raises:
        ValueError: ``images`` is not a stack of 2-D (or RGB) images.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] != 3) or \
            not len(images):
        raise ValueError(f"image_grid: images must have shape (n, height, width) or "
                         f"(n, height, width, 3) with n >= 1, got {images.shape}")
    if normalize == "each":
        axes = tuple(range(1, images.ndim))
        low = images.min(axis=axes, keepdims=True)
        span = images.max(axis=axes, keepdims=True) - low
        images = (images - low) / np.where(span == 0, 1, span)
    elif normalize == "all":
        low, span = images.min(), images.max() - images.min()
        images = (images - low) / (span or 1)
    elif normalize is not None:
        raise ValueError(f"image_grid: normalize must be 'all', 'each' or None, got "
                         f"{normalize!r}")
    n, h, w = images.shape[:3]
    cols = int(cols or np.ceil(np.sqrt(n)))
    rows = -(-n // cols)
    grid = np.ones((rows * (h + padding) - padding, cols * (w + padding) - padding)
                   + images.shape[3:])
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        grid[r * (h + padding):r * (h + padding) + h, c * (w + padding):c * (w + padding) + w] = \
            image
    grid = np.clip(grid, 0, 1)
    if path is not None:
        from matplotlib import image  # optional dependency (deepkit[viz]): only to write PNGs
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            image.imsave(f, grid, cmap=cmap if grid.ndim == 2 else None, vmin=0, vmax=1,
                         format="png")
    return grid
