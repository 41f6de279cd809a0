"""MXNet 1.x training callbacks (``mx.callback``): Speedometer, do_checkpoint, ...

Batch callbacks receive ``BatchEndParam(epoch, nbatch, eval_metric, locals)``
(``nbatch`` counts from 1 during training); epoch callbacks receive
``(epoch, symbol, arg_params, aux_params)``. They log to the ``deepkit.mxnet``
logger, which prints even when the application has not configured logging
(see :func:`deepkit.feedforward.ensure_logging`).
"""
import logging
import time

from .feedforward import BatchEndParam, ensure_logging, save_checkpoint

__all__ = ["Speedometer", "do_checkpoint", "log_train_metric", "ProgressBar",
           "LogValidationMetricsCallback", "BatchEndParam"]


def _logger():
    ensure_logging()
    return logging.getLogger("deepkit.mxnet")


class Speedometer:
    """Log the training speed (samples/s) and the metric every ``frequent`` batches.

    ``Epoch[0] Batch [100-200]  Speed: 41641.14 samples/sec  accuracy=0.962772``

    Args:
        batch_size: Samples per batch (for the speed).
        frequent: Report every this many batches.
        auto_reset: Reset the metric's local totals after each report, so each
            line shows the metric of the last ``frequent`` batches (the epoch's
            ``Train-`` line still covers the whole epoch).
    """

    def __init__(self, batch_size, frequent=50, auto_reset=True):
        self.batch_size = int(batch_size)
        self.frequent = int(frequent)
        self.auto_reset = bool(auto_reset)
        self.init = False
        self.tic = 0.0
        self.last_count = 0

    def __call__(self, param):
        count = param.nbatch
        if self.last_count > count:
            self.init = False
        self.last_count = count
        if not self.init:
            self.init = True
            self.tic = time.time()
            return
        if count % self.frequent != 0:
            return
        elapsed = time.time() - self.tic
        speed = self.frequent * self.batch_size / elapsed if elapsed > 0 else float("inf")
        log = _logger()
        if param.eval_metric is not None:
            name_value = param.eval_metric.get_name_value()
            values = sum((tuple(nv) for nv in name_value), ())
            if self.auto_reset:
                param.eval_metric.reset_local()
                msg = "Epoch[%d] Batch [%d-%d]\tSpeed: %.2f samples/sec" \
                    + "\t%s=%f" * len(name_value)
                log.info(msg, param.epoch, count - self.frequent, count, speed, *values)
            else:
                msg = "Epoch[%d] Batch [0-%d]\tSpeed: %.2f samples/sec" \
                    + "\t%s=%f" * len(name_value)
                log.info(msg, param.epoch, count, speed, *values)
        else:
            log.info("Iter[%d] Batch [%d]\tSpeed: %.2f samples/sec", param.epoch, count, speed)
        self.tic = time.time()


def do_checkpoint(prefix, period=1):
    """An epoch callback saving ``prefix-symbol.json`` and ``prefix-%04d.params``.

    Args:
        prefix: Path prefix of the checkpoint files.
        period: Save every this many epochs; the file of epoch ``e`` (counted
            from 0) is numbered ``e + 1``, as in MXNet.
    """
    period = int(max(1, period))

    def _callback(iter_no, sym, arg, aux):
        if (iter_no + 1) % period == 0:
            save_checkpoint(prefix, iter_no + 1, sym, arg, aux)
    return _callback


def log_train_metric(period, auto_reset=False):
    """A batch callback logging the training metric every ``period`` batches."""
    def _callback(param):
        if param.nbatch % period == 0 and param.eval_metric is not None:
            for name, value in param.eval_metric.get_name_value():
                _logger().info("Iter[%d] Batch[%d] Train-%s=%f", param.epoch, param.nbatch,
                               name, value)
            if auto_reset:
                param.eval_metric.reset_local()
    return _callback


class ProgressBar:
    """A batch callback logging a text progress bar of ``total`` batches."""

    def __init__(self, total, length=80):
        self.bar_len = int(length)
        self.total = int(total)

    def __call__(self, param):
        count = param.nbatch
        filled = int(round(self.bar_len * count / float(self.total)))
        percents = round(100.0 * count / float(self.total), 1)
        bar = "=" * filled + "-" * (self.bar_len - filled)
        _logger().info("[%s] %s%s", bar, percents, "%")


class LogValidationMetricsCallback:
    """Logs ``Epoch[e] Validation-<name>=<value>`` from a BatchEndParam's metric."""

    def __call__(self, param):
        if param.eval_metric is None:
            return
        for name, value in param.eval_metric.get_name_value():
            _logger().info("Epoch[%d] Validation-%s=%f", param.epoch, name, value)
