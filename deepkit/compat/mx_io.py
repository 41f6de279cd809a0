"""MXNet's ``mx.io``: the engine's data iterators plus ``ImageRecordIter`` over RecordIO files.

Every name of :mod:`deepkit_engine.io` is reachable here (``NDArrayIter``,
``DataBatch``, ``DataDesc``, ``CSVIter``, ``MNISTIter``, ``PrefetchingIter`` ...).
"""
from deepkit_engine import io as _engine_io

from .mx_image_iter import ImageRecordIter

__all__ = ["ImageRecordIter"]


def __getattr__(name):
    return getattr(_engine_io, name)


def __dir__():
    return sorted(set(dir(_engine_io)) | set(__all__))
