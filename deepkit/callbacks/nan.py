"""TerminateOnNaN: stop when the loss is NaN or infinite, and optionally say why."""
import math

from ..debug import diagnose_batch
from .base import Callback


def _finite(value):
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True


class TerminateOnNaN(Callback):
    """Stop training when the loss becomes NaN or infinite.

    It asks ``fit`` for the logs after every batch (``requires_batch_logs``),
    so the loss is checked after each one, which waits for the engine each
    batch (as Keras does); training then stops at once, or at the end of the
    epoch if the loop never gave per-batch logs.

    With ``debug=True`` it also says where the first non-finite value came
    from: it checks the failing batch's inputs and labels, the weights as they
    were before that batch, and replays the batch through every layer
    (``Model(model.inputs, [layer outputs])``, in inference mode) to name the
    first layer whose output is not finite. This keeps a copy of the weights
    before each batch, so it costs memory and time: use it to debug.

    What it catches: a loss that is NaN or infinite after a batch, whatever
    the cause: weights that diverged (a learning rate too high, an overflow),
    a layer that produces NaN (log of 0, 0/0), or NaN/inf in the batch's
    inputs or targets. ``fit`` refuses non-finite data before training by
    default (``check_finite=True``); with this callback among the callbacks it
    leaves such data to the callback instead, which stops at the batch that
    holds it (and with ``debug=True`` names the input). It does not catch
    labels out of range (``fit`` refuses those) or NaN in weights that no
    batch's loss depends on.

    Args:
        debug: Diagnose which layer first produced a non-finite value.
        raise_error: Raise a RuntimeError with the report instead of stopping
            quietly (``on_train_end`` is then not called).

    Attributes:
        report: The message of the last termination, or None.
        nan_epoch, nan_batch: Where the loss first became non-finite
            (0-based; ``nan_batch`` is None when only the epoch is known).
        nan_layer: With ``debug``, the name of the first layer with a
            non-finite output, or None.
    """

    requires_batch_logs = True
    handles_non_finite_data = True  # fit leaves NaN/inf in the data to this callback

    def __init__(self, debug=False, raise_error=False):
        super().__init__()
        self.debug = bool(debug)
        self.raise_error = bool(raise_error)
        self._reset()

    def _reset(self):
        self.report = None
        self.nan_epoch = None
        self.nan_batch = None
        self.nan_layer = None
        self._snapshot = None
        self._epoch = 0
        self._done = False

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self.debug and not self._done:
            # lazy engine copies: the weights this batch starts from
            self._snapshot = [(p, p.data.copy() if p.data is not None else None)
                              for p in self.model.weights]

    def on_train_batch_end(self, batch, logs=None):
        if logs is None or self._done:
            return
        loss = logs.get("loss")
        if loss is not None and not _finite(loss):
            self._terminate(batch, loss)

    def on_epoch_end(self, epoch, logs=None):
        if self._done:
            return
        loss = (logs or {}).get("loss")
        if loss is not None and not _finite(loss):
            self._terminate(None, loss)

    def _terminate(self, batch, loss):
        self._done = True
        self.nan_epoch, self.nan_batch = self._epoch, batch
        where = f"batch {batch}" if batch is not None else \
            "an unknown batch (the loss was not logged after every batch)"
        lines = [f"Epoch {self._epoch + 1}, {where}: invalid loss {loss}, terminating training"]
        if self.debug:
            try:
                lines.append(self._diagnose(batch))
            except Exception as err:  # noqa: BLE001 - the report must not hide the NaN
                lines.append(f"debug: the replay of the batch failed: {type(err).__name__}: "
                             f"{err}")
        self.report = "\n".join(lines)
        if self.raise_error:
            raise RuntimeError(self.report)
        print(self.report, flush=True)
        self.model.stop_training = True

    # -- debugging -------------------------------------------------------------------
    def _diagnose(self, batch):
        data = self.loop.batch if self.loop is not None else None
        if batch is None or data is None:
            return ("debug: the failing batch is not available from this loop, so no layer "
                    "can be named")
        report, self.nan_layer = diagnose_batch(self.model, data, self._snapshot)
        return report
