"""cifar10 as in ``keras.datasets.cifar10``: ``load_data()`` (see :mod:`deepkit.data.datasets`)."""
from deepkit.data import datasets as _datasets

__all__ = ["load_data"]


def load_data(*args, **kwargs):
    """``(x_train, y_train), (x_test, y_test)`` as Keras returns them; arguments as
    :func:`deepkit.data.datasets.cifar10`."""
    return _datasets.cifar10(*args, **kwargs)
