"""Datasets and input pipelines.

* :mod:`deepkit.data.datasets`: MNIST, Fashion-MNIST, CIFAR-10/100 loaders
  with a look-up order, checksums and atomic downloads.
* :mod:`deepkit.data.image`: :class:`ImageFolderIter` and :class:`Augmenter`
  (needs Pillow, the ``image`` extra, only when images are decoded).
* The batch iterators of the engine (``NDArrayIter``, ``PrefetchingIter``,
  ``CSVIter``, ...) are re-exported from :mod:`deepkit_engine.io`.
"""
from deepkit_engine.io import (CSVIter, DataBatch, DataDesc, DataIter, IterTiming, NDArrayIter,
                               PrefetchingIter, ResizeIter)

from . import datasets
from .datasets import (ChecksumError, DatasetError, DatasetNotFoundError, cifar10, cifar100,
                       fashion_mnist, mnist)
from .image import Augmenter, CorruptImageWarning, ImageDecodeError, ImageFolderIter

__all__ = [
    "datasets", "mnist", "fashion_mnist", "cifar10", "cifar100", "DatasetError",
    "ChecksumError", "DatasetNotFoundError", "ImageFolderIter", "Augmenter",
    "ImageDecodeError", "CorruptImageWarning", "DataIter", "DataBatch", "DataDesc",
    "IterTiming", "NDArrayIter", "PrefetchingIter", "ResizeIter", "CSVIter",
]
