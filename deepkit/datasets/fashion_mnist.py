"""fashion_mnist as in ``keras.datasets.fashion_mnist``: ``load_data()`` (see :mod:`deepkit.data.datasets`)."""
from deepkit.data import datasets as _datasets

__all__ = ["load_data"]


def load_data(*args, **kwargs):
    """``(x_train, y_train), (x_test, y_test)`` as Keras returns them; arguments as
    :func:`deepkit.data.datasets.fashion_mnist`."""
    return _datasets.fashion_mnist(*args, **kwargs)
