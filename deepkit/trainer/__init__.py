"""The one training loop: data sources, executor caches, the loop and the ``Trainer`` API.

* :mod:`.data`: where batches come from (arrays, DataIters, iterables) as
  ``(x, y, sample_weight)``.
* :mod:`.executors`: executors bound once per purpose and batch size.
* :mod:`.loop`: the loops behind ``fit``/``evaluate``/``predict`` and the
  :class:`LoopState` callbacks see.
* :mod:`.trainer`: :class:`Trainer`, the compile/fit/evaluate/predict API
  and the overridable ``train_step``/``test_step``/``predict_step``.
"""
from .data import HostBatch, pack_x_y_sample_weight, unpack_x_y_sample_weight
from .executors import ExecutorCache
from .loop import Logs, LoopState
from .trainer import Trainer

__all__ = ["Trainer", "LoopState", "Logs", "ExecutorCache", "HostBatch",
           "unpack_x_y_sample_weight", "pack_x_y_sample_weight"]
