"""The callback base class and the list that calls a run's callbacks in order."""
from .. import distributed


class Callback:
    """Base class: override the ``on_*`` hooks you need (Keras's API).

    Before training, the loop sets three public attributes:

    Attributes:
        model: The model being trained.
        params: ``{'epochs', 'steps', 'batch_size', 'verbose'}`` of this ``fit``.
        loop: The running loop's :class:`~deepkit.trainer.LoopState`: the
            epoch and step, the batch being processed (``loop.batch``), the
            last logs, and the resume point (``loop.initial_epoch``, which a
            callback may move in ``on_train_begin``).
        requires_batch_logs: When True, ``fit`` passes the logs (running loss
            and metrics) to ``on_train_batch_end`` after every batch. By
            default it passes them only about twice a second, because
            reading them waits for the engine and so stalls the pipeline.
        restores_state: True for callbacks that restore the others' state
            (``BackupAndRestore``): they run after all others, and
            :meth:`set_callbacks` tells them the others.
    """

    requires_batch_logs = False
    restores_state = False

    def __init__(self):
        self.model = None
        self.params = {}
        self.loop = None

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def set_loop(self, loop):
        """Give the callback the running loop's state (called before ``on_train_begin``)."""
        self.loop = loop

    def set_callbacks(self, callbacks):
        """The other callbacks of this run (only called when ``restores_state``)."""

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        pass

    def on_test_begin(self, logs=None):
        pass

    def on_test_end(self, logs=None):
        pass

    def on_test_batch_begin(self, batch, logs=None):
        pass

    def on_test_batch_end(self, batch, logs=None):
        pass

    def on_predict_begin(self, logs=None):
        pass

    def on_predict_end(self, logs=None):
        pass

    def get_state(self):
        """What BackupAndRestore saves so that a resumed run behaves identically.

        Returns:
            A dict of plain values (numbers, strings, None, lists, dicts, numpy
            arrays); empty when the callback keeps nothing between epochs.
        """
        return {}

    def set_state(self, state):
        """Take back what :meth:`get_state` returned (called after ``on_train_begin``)."""


class CallbackList:
    """Calls every callback's hook in order.

    In a distributed run, callbacks marked ``chief_only`` (those that print
    or write files) run in rank 0 only.

    Callbacks that restore state (``restores_state``: BackupAndRestore) are
    moved to the end: their ``on_train_begin`` restores the other callbacks'
    state after those have reset themselves, and their ``on_epoch_end`` saves
    it after the others have updated it for the epoch.

    Args:
        callbacks: The callbacks.
        model: The model they watch.
        params: The run's parameters (``epochs``, ``steps``, ...).
        loop: The :class:`~deepkit.trainer.LoopState` of the run, or None.
    """

    def __init__(self, callbacks, model, params, loop=None):
        callbacks = list(callbacks)
        if not distributed.is_chief():  # progress, checkpoints and logs: rank 0 only
            callbacks = [c for c in callbacks if not getattr(c, "chief_only", False)]
        restorers = [c for c in callbacks if getattr(c, "restores_state", False)]
        self.callbacks = [c for c in callbacks if not getattr(c, "restores_state", False)] + restorers
        for c in self.callbacks:
            c.set_model(model)
            c.set_params(params)
            if hasattr(c, "set_loop"):
                c.set_loop(loop)
            else:
                c.loop = loop
        for c in restorers:
            c.set_callbacks([other for other in self.callbacks if other is not c])
        #: Whether some callback wants the logs after every training batch.
        self.requires_batch_logs = any(getattr(c, "requires_batch_logs", False)
                                       for c in self.callbacks)

    def __iter__(self):
        return iter(self.callbacks)

    def call(self, hook, *args):
        for c in self.callbacks:
            getattr(c, hook)(*args)
