"""MXNet 1.x's ``mx.monitor.Monitor``: statistics of a network's arrays every few batches.

A monitor is installed on executors (``Module.install_monitor``, ``Module.fit(monitor=...)``
or :meth:`Monitor.install` on an executor from ``simple_bind``). Between :meth:`~Monitor.tic`
and :meth:`~Monitor.toc` of every ``interval``-th batch it collects ``stat_func`` of each
node output (and node input, with ``monitor_all``) the executors compute, then of the
arguments and auxiliary states, keeping the names that match ``pattern``. The batches
it collects wait for the engine's queued work at ``tic`` and ``toc``, as MXNet's do::

    mon = mx.mon.Monitor(100, pattern='.*weight|.*output')
    mod.fit(train_iter, num_epoch=2, monitor=mon)     # logs 'Batch: ... fc1_output ...'

As in MXNet, output names are ``<node>_<output>`` (``fc1_output``), inputs reported with
``monitor_all`` are ``<node>_<input>`` (``fc1_weight``), and the backward pass shows under
its ``_backward_...`` nodes.
"""
import logging
import math
import re

from deepkit_engine import NDArray, nd

__all__ = ["Monitor"]


def _mean_norm(x):
    """``norm(x) / sqrt(x.size)``: MXNet's default statistic (an RMS), queued, not waited on."""
    return nd.norm(x) / math.sqrt(max(x.size, 1))


class Monitor:
    """Collect statistics of the arrays of installed executors every ``interval`` batches.

    Args:
        interval: Batches between collections: batch 0, ``interval``, ``2 * interval``...
            (counted by :meth:`tic`).
        stat_func: ``stat_func(NDArray) -> NDArray`` (or a list of them); default
            ``norm(x) / sqrt(x.size)``.
        pattern: A regular expression; only arrays whose names match (``re.match``) are
            collected (``'.*weight|.*output'``, ``'.*backward.*'``).
        sort: Sort the results by name.
        monitor_all: Also collect the inputs of every node, not only its outputs.

    Raises:
        ValueError: ``interval`` is not a positive int.
        TypeError: ``stat_func`` is not callable.
    """

    def __init__(self, interval, stat_func=None, pattern=".*", sort=False, monitor_all=False):
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ValueError(f"Monitor: interval must be a positive int (batches between "
                             f"collections), got {interval!r}")
        if stat_func is not None and not callable(stat_func):
            raise TypeError(f"Monitor: stat_func must be callable (NDArray -> NDArray), got "
                            f"{type(stat_func).__name__}")
        self.stat_func = stat_func or _mean_norm
        self.interval = interval
        self.activated = False
        self.queue = []
        self.step = 0
        self.exes = []
        self.re_prog = re.compile(pattern)
        self.sort = bool(sort)
        self.monitor_all = bool(monitor_all)

    def stat_helper(self, name, array):
        """The executors' callback: queue ``stat_func(array)`` while collecting."""
        if self.activated and self.re_prog.match(name):
            self.queue.append((self.step, name, self.stat_func(array)))

    def install(self, exe):
        """Report ``exe``'s node outputs (and inputs, with ``monitor_all``) to this monitor.

        Several executors may be installed; installing one twice has no further effect.

        Args:
            exe: An executor (``symbol.simple_bind(...)``, ``symbol.bind(...)``).
        """
        if any(e is exe for e in self.exes):
            return
        exe.set_monitor_callback(self.stat_helper, self.monitor_all)
        self.exes.append(exe)

    def tic(self):
        """Start a batch: collect during it if it is an ``interval``-th one. Call before forward."""
        if self.step % self.interval == 0:
            nd.waitall()  # earlier batches' queued work reports before collecting starts
            self.queue = []
            self.activated = True
        self.step += 1

    def toc(self):
        """End the batch: add the arguments and auxiliary states, and return what was collected.

        Returns:
            ``[(step, name, text)]``, where ``text`` holds the statistic's values
            (a number for a one-element statistic) each followed by a tab; empty
            when this batch was not collected.
        """
        if not self.activated:
            return []
        nd.waitall()  # the batch's queued passes run, and report, before collecting ends
        for exe in self.exes:
            for arrays in (exe.arg_dict, exe.aux_dict):
                for name, array in arrays.items():
                    if self.re_prog.match(name):
                        self.queue.append((self.step, name, self.stat_func(array)))
        self.activated = False
        if self.sort:
            self.queue.sort(key=lambda item: item[1])
        results = []
        for step, name, values in self.queue:
            values = [values] if isinstance(values, NDArray) else values
            if not isinstance(values, (list, tuple)) or \
                    not all(isinstance(v, NDArray) for v in values):
                raise TypeError(f"Monitor: stat_func must return an NDArray or a list of them; "
                                f"for '{name}' it returned {type(values).__name__}")
            text = ""
            for v in values:
                text += (str(v.asscalar()) if v.shape == (1,) else str(v.asnumpy())) + "\t"
            results.append((step, name, text))
        self.queue = []
        return results

    def toc_print(self):
        """:meth:`toc`, logging each result as ``Batch: <step> <name> <values>``."""
        for step, name, text in self.toc():
            logging.info("Batch: {:7d} {:30s} {:s}".format(step, name, text))
