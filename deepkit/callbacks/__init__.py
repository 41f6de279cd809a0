"""Callbacks: hooks into ``fit`` (Keras's API and behaviour), one module per family.

History and the progress bar are added by ``fit`` itself; the others are
passed in ``fit(callbacks=[...])``: EarlyStopping, ModelCheckpoint,
ReduceLROnPlateau, LearningRateScheduler, CSVLogger, TerminateOnNaN,
BackupAndRestore, TensorBoard and Profiler (also ``fit(profile_batches=...)``).

Callbacks see the model (``self.model``), the run's parameters
(``self.params``) and the loop's public state (``self.loop``: epoch, step,
current batch, logs, resume point); none of them touches a private field of
the model.

A callback that monitors a quantity (``monitor='val_loss'``) raises a
ValueError naming the quantities that do exist when the monitored one is not
logged, instead of Keras's warning: a misspelt metric would otherwise turn
early stopping or checkpointing off without anyone noticing.

Every callback can describe its state with ``get_state()``/``set_state()``
(plain numbers, strings, lists, dicts and numpy arrays), which is what
BackupAndRestore saves so that an interrupted run resumes exactly.
"""
from .backup import BackupAndRestore
from .base import Callback, CallbackList
from .checkpoint import ModelCheckpoint
from .csv_logger import CSVLogger
from .early_stopping import EarlyStopping
from .history import History
from .lr_scheduler import LearningRateScheduler
from .nan import TerminateOnNaN
from .progress import ProgbarLogger
from .profiler import Profiler
from .reduce_lr import ReduceLROnPlateau
from .tensorboard import TensorBoard

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger", "EarlyStopping",
           "ModelCheckpoint", "ReduceLROnPlateau", "LearningRateScheduler", "CSVLogger",
           "TerminateOnNaN", "BackupAndRestore", "TensorBoard", "Profiler"]
