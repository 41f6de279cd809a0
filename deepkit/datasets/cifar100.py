"""cifar100 as in ``keras.datasets.cifar100``: ``load_data()`` (see :mod:`deepkit.data.datasets`)."""
from deepkit.data import datasets as _datasets

__all__ = ["load_data"]


def load_data(*args, **kwargs):
    """``(x_train, y_train), (x_test, y_test)`` as Keras returns them; arguments as
    :func:`deepkit.data.datasets.cifar100`."""
    return _datasets.cifar100(*args, **kwargs)
