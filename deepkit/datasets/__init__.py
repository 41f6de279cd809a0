"""Keras-style dataset modules: ``deepkit.datasets.mnist.load_data()``.

The loaders themselves (look-up order, checksums, downloads) live in
:mod:`deepkit.data.datasets`; the MNIST files are bundled with the package
under ``deepkit/datasets/data/mnist``.
"""
from . import cifar10, cifar100, fashion_mnist, mnist

__all__ = ["mnist", "fashion_mnist", "cifar10", "cifar100"]
