"""Replica groups: the executors of one data-parallel step summing small vectors mid-pass.

Synchronised BatchNorm (``SyncBatchNorm``) needs the batch statistics of the
whole global batch while each device runs its own part of it. The executors
of one step form a :class:`ReplicaGroup`; each executor holds a
:class:`Replica` (the group and its index in it) and hands it to the ops that
declare the ``replica`` resource. Inside a kernel, :meth:`Replica.allreduce`
blocks until every device of the group has given its vector, then returns
their sum (added in device order, so the result does not depend on which
device arrives first), all-reduced over MPI ranks too when the group has a
communicator.

Every device runs its pass on its own engine workers, so the devices meet
while their passes are in flight; an engine that runs work on the calling
thread (``DEEPKIT_ENGINE=naive``) cannot run such a group, which
:meth:`ReplicaGroup.check_engine` reports up front.
"""
import os
import threading

import numpy as np

from . import engine
from .base import DeepkitError

__all__ = ["ReplicaGroup", "Replica", "ReplicaError"]


class ReplicaError(DeepkitError, RuntimeError):
    """The devices of a replica group did not all arrive (a device failed or hung)."""


def _timeout():
    return float(os.environ.get("DEEPKIT_DIST_TIMEOUT", "60"))


class ReplicaGroup:
    """The devices of one data-parallel step, for collective sums inside their passes.

    Args:
        size: How many devices (executors) take part.
        weights: Per device, the factor its contributions to gradient sums
            carry (its share of the global batch when gradients are combined
            as ``sum_k share_k g_k``; 1 when they are added).
        reduce_across: None, or ``fn(numpy array) -> numpy array`` summing a
            vector over MPI ranks (called once per collective, by the last
            device to arrive).
        timeout: Seconds a device waits for the others (default
            ``DEEPKIT_DIST_TIMEOUT``, 60).
        order_var: An engine variable every pass of the group writes, or None.
            With ``reduce_across`` it is MPI's collective variable, so the
            passes' exchanges keep their place among the other collectives
            queued on the engine (the same order on every rank).
    """

    def __init__(self, size, weights=None, reduce_across=None, timeout=None, order_var=None):
        self.size = int(size)
        self.weights = [1.0] * self.size if weights is None else [float(w) for w in weights]
        if len(self.weights) != self.size:
            raise ValueError(f"ReplicaGroup: {len(self.weights)} weights for {self.size} "
                             "devices")
        self.reduce_across = reduce_across
        self.order_var = order_var
        self.timeout = _timeout() if timeout is None else float(timeout)
        self._cond = threading.Condition()
        self._parts = [None] * self.size
        self._arrived = 0
        self._generation = 0
        self._result = None
        self._error = None

    def replica(self, index):
        """The :class:`Replica` of device ``index``."""
        return Replica(self, index)

    @property
    def collective(self):
        """Whether sums involve more than this device (several devices or MPI ranks)."""
        return self.size > 1 or self.reduce_across is not None

    @staticmethod
    def check_engine():
        """Raise if the engine runs work on the calling thread (devices could not meet)."""
        if type(engine._engine).__name__ == "NaiveEngine":
            raise ReplicaError("synchronised BatchNorm over several devices needs the threaded "
                               "engine (every device runs its pass on its own workers); the "
                               "naive engine (DEEPKIT_ENGINE=naive) runs the devices one after "
                               "another. Use one device, or the threaded engine.")

    def allreduce(self, index, vector, what="sum"):
        """Sum ``vector`` (1-D float64) over the group's devices (and ranks); blocks.

        Raises:
            ReplicaError: The other devices did not arrive within the timeout.
        """
        vector = np.asarray(vector, dtype=np.float64)
        with self._cond:
            if self._error is not None:
                raise ReplicaError(self._error)
            generation = self._generation
            self._parts[index] = vector
            self._arrived += 1
            if self._arrived == self.size:
                total = self._parts[0].copy()
                for part in self._parts[1:]:
                    if part.shape != total.shape:
                        self._fail(f"{what}: devices gave vectors of shapes "
                                   f"{[p.shape for p in self._parts]}; every device must run "
                                   "the same graph")
                    total += part
                if self.reduce_across is not None:
                    try:
                        total = np.asarray(self.reduce_across(total), dtype=np.float64)
                    except Exception as err:
                        self._fail(f"{what}: the sum over MPI ranks failed: {err}")
                self._result = total
                self._parts = [None] * self.size
                self._arrived = 0
                self._generation += 1
                self._cond.notify_all()
                return total.copy()
            if not self._cond.wait_for(lambda: self._generation != generation
                                       or self._error is not None, self.timeout):
                self._fail(f"{what}: device {index} of {self.size} waited {self.timeout:g} s "
                           f"for the other devices (only {self._arrived} arrived); a device "
                           "failed or runs another graph")
            if self._error is not None:
                raise ReplicaError(self._error)
            return self._result.copy()

    def _fail(self, message):
        self._error = message
        self._cond.notify_all()
        raise ReplicaError(message)


class Replica:
    """One device's place in a :class:`ReplicaGroup`: what ops get as ``replica``."""

    __slots__ = ("group", "index")

    def __init__(self, group, index):
        self.group = group
        self.index = int(index)

    @property
    def weight(self):
        """This device's factor in gradient sums (see :class:`ReplicaGroup`)."""
        return self.group.weights[self.index]

    @property
    def collective(self):
        return self.group.collective

    def allreduce(self, vector, what="sum"):
        """:meth:`ReplicaGroup.allreduce` for this device."""
        return self.group.allreduce(self.index, vector, what)
