"""MNIST as in ``keras.datasets.mnist``: ``load_data()`` with the bundled files."""
from deepkit.data import datasets as _datasets

__all__ = ["load_data"]


def load_data(path=None, download=None):
    """Load MNIST: ``(x_train, y_train), (x_test, y_test)``, uint8, as Keras returns it.

    The original IDX files ship with deepkit, so this works offline. Their MD5
    sums are checked the first time (a marker skips the check afterwards).

    Args:
        path: A folder with the four ``.gz`` files to use instead of the
            look-up order ($DEEPKIT_DATA, ~/.deepkit/datasets, the bundled
            copy); see :mod:`deepkit.data.datasets`.
        download: True/False to allow/forbid a download when no copy is found;
            None follows ``$DEEPKIT_OFFLINE``.

    Returns:
        tuple: ``x_train`` (60000, 28, 28), ``y_train`` (60000,),
        ``x_test`` (10000, 28, 28), ``y_test`` (10000,), all uint8.
    """
    return _datasets.mnist(path=path, download=download)
