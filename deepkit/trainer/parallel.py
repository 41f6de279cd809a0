"""Data parallelism: one batch split over several devices (and MPI ranks), one update.

A model trained with ``devices=[cpu(0), cpu(1)]`` keeps its parameters
(``Parameter.data``) on the first device, the *primary*; every other device
holds a replica of each parameter and auxiliary state, bound into its own
executors (:class:`~deepkit.trainer.ExecutorCache` with ``replica=True``).
One step:

1. the global batch of ``B`` rows is cut into consecutive parts, first per
   MPI rank and then per device of the rank (:func:`split_sizes`: the
   remainder goes one row each to the first parts, nothing is dropped);
2. each device copies the primary's weights into its replicas, then runs
   forward and backward on its part (the engine runs the devices in parallel:
   each has its own workers);
3. the gradients are combined on the primary as ``sum_k (b_k / B) g_k``
   (``b_k`` rows on part ``k``): each part's loss is a mean over its own rows,
   so this is exactly the gradient of the mean over the global batch; across
   ranks the local sums are then all-reduced over MPI, in buckets (last
   layers first) overlapped with the backward pass: each training executor
   pushes its backward pass in pieces cut where a bucket's gradients are
   complete (``Executor.set_backward_segments``), and a bucket's exchange
   runs on the engine's communication thread as soon as its piece is done;
4. the optimizer updates the primary's parameters once.

Auxiliary states (BatchNorm's moving statistics) are averaged over the
devices (and ranks) after each training forward pass, weighted like the
gradients. With equal parts this equals one device's update for the moving
mean; the moving variance is the mean of the per-part variances (per-device
batch statistics, as MXNet's default BatchNorm). ``BatchNormalization(
synchronized=True)`` (the engine's ``SyncBatchNorm``) takes its statistics
over the global batch instead: the step's executors form one
:class:`~deepkit_engine.replicas.ReplicaGroup` and exchange their per-channel
sums mid-pass, so the step equals one device running the whole batch.
Dropout draws its masks per device from that device's random stream, so runs
with Dropout differ between splits (as in MXNet and PyTorch's DataParallel).
"""
import numpy as np

import deepkit_engine as dk
from deepkit_engine import nd
from deepkit_engine.dist import mpi
from deepkit_engine.replicas import ReplicaGroup

from .. import backend
from .data import HostBatch

__all__ = ["split_sizes", "take_rows", "as_devices", "ExecutorGroup"]


def split_sizes(total, parts):
    """Sizes of ``parts`` consecutive pieces of ``total`` rows; the first ones get the remainder.

    >>> split_sizes(10, 3)
    [4, 3, 3]
    """
    base, extra = divmod(int(total), int(parts))
    return [base + (1 if i < extra else 0) for i in range(parts)]


def as_devices(value, what="devices"):
    """``value`` (one context, a device string, or a list of them) as a list of Contexts.

    Raises:
        ValueError: An empty list, a repeated device, or CPU and GPU mixed.
    """
    if value is None:
        return None
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise ValueError(f"{what} is an empty list; give at least one device, e.g. [dk.cpu(0)]")
    devices = [dk.Context(d) for d in items]
    if len(set(devices)) != len(devices):
        raise ValueError(f"{what} lists a device twice: {devices}")
    kinds = {d.device_type for d in devices}
    if len(kinds) > 1:
        raise ValueError(f"{what} mixes device kinds {sorted(kinds)} ({devices}): data-parallel "
                         "training needs devices of one kind (all CPUs or all GPUs)")
    return devices


def _rows(value, start, stop):
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: _rows(v, start, stop) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rows(v, start, stop) for v in value]
    if isinstance(value, HostBatch):
        index = value.index
        if isinstance(index, slice):
            index = np.arange(len(value.array))[index]
        return HostBatch(value.array, np.asarray(index)[start:stop], value.check)
    return value[start:stop]


def take_rows(data, start, stop):
    """Rows ``start:stop`` of every array of a batch ``(x, y, sample_weight)``."""
    return tuple(_rows(v, start, stop) for v in data)


def _sum_over_ranks(vector):
    return mpi.allreduce_(np.ascontiguousarray(vector, dtype=np.float64))


class DeviceGradients(list):
    """Per device: ``([(parameter, gradient)], share of the global batch)``."""


class ExecutorGroup:
    """The executors of one step on several devices, driven as one executor.

    It answers ``forward``, ``backward`` and ``outputs`` like an
    :class:`~deepkit_engine.Executor`, so a custom ``train_step`` written for
    one device runs unchanged; ``parts`` lists ``(cache, executor, rows)``
    (empty on an MPI rank that gets no rows of a small last batch).
    """

    def __init__(self, plan, parts, global_rows):
        self.plan = plan
        self.parts = parts
        self.global_rows = global_rows
        #: On an MPI rank without rows: ``{phase: [vector lengths]}`` of the exchanges
        #: (SyncBatchNorm's) the other ranks' passes make, joined here with zeros.
        self.idle_exchanges = None

    @property
    def primary(self):
        return self.parts[0][1]

    @property
    def arg_dict(self):
        return self.primary.arg_dict

    @property
    def grad_dict(self):
        """The first device's gradients; on a rank without rows, its trainable names.

        Such a rank still takes part in the gradient exchange (with zeros).
        """
        if self.parts:
            return self.primary.grad_dict
        return {p.name: None for p in self.plan._trainable}

    @property
    def aux_dict(self):
        return self.primary.aux_dict

    @property
    def outputs(self):
        """The outputs of the first device's part (:attr:`outputs_per_device` has all)."""
        return self.primary.outputs

    @property
    def outputs_per_device(self):
        return [exe.outputs for _, exe, _ in self.parts]

    def forward(self, is_train=False, **kwargs):
        for cache, _, _ in self.parts:  # all copies first: the primary's forward updates states
            cache.pull_weights()
        for _, exe, _ in self.parts:
            exe.forward(is_train=is_train, **kwargs)
        if is_train:
            self._join_idle("forward")
            self.plan.average_aux(self)
        return self.outputs if self.parts else []

    def backward(self, out_grads=None):
        for _, exe, _ in self.parts:
            exe.backward(out_grads)
        self._join_idle("backward")

    def _join_idle(self, phase):
        lengths = (self.idle_exchanges or {}).get(phase)
        if lengths:

            def exchange():
                for n in lengths:
                    _sum_over_ranks(np.zeros(n))
            dk.engine.push(exchange, (), (mpi.collective_var(),), name="idle exchanges")

    def gradients(self):
        """:class:`DeviceGradients` of the step: each device's share is its part of the batch."""
        return DeviceGradients((cache.gradients(exe), rows / self.global_rows)
                               for cache, exe, rows in self.parts)

    def gathered_outputs(self):
        """Each output of the model with the parts' rows joined, on the first device."""
        per_device = [[o.as_in_context(self.plan.primary) for o in outs]
                      for outs in self.outputs_per_device]
        if len(per_device) == 1:
            return [o.copy() for o in per_device[0]]
        return [nd.concat(*outs, dim=0) for outs in zip(*per_device)]


class DataParallel:
    """How one trainer splits its batches: its devices, and MPI when running distributed.

    Args:
        devices: The local devices (the first is the primary).
        comm: None, or the :mod:`deepkit.distributed` module when more than
            one process runs.
    """

    def __init__(self, devices, comm=None):
        self.devices = list(devices)
        self.comm = comm
        self.ranks = comm.size() if comm is not None else 1
        self.rank = comm.rank() if comm is not None else 0
        self._trainable = self._aux = ()
        self._order = {}
        self.rows_seen = 0  # rows this rank trained or evaluated since the logs were averaged
        #: Whether each process's batches are already its own part of the data (an
        #: iterator made with ``num_parts``/``part_index``, as MXNet's distributed
        #: scripts make them); then a global batch is every process's batch together.
        self.presharded = False
        #: ``'mean'``: a device's gradient is the mean over its rows (Keras losses), so
        #: parts are weighted by their share of the batch; ``'sum'``: gradients are sums
        #: over rows (MXNet's loss heads, scaled by the optimizer's ``rescale_grad``),
        #: so parts are added as they are.
        self.gradient_reduction = "mean"

    @property
    def primary(self):
        return self.devices[0]

    def local_slice(self, rows):
        """The ``(start, stop)`` rows of a global batch that this rank works on."""
        sizes = split_sizes(rows, self.ranks)
        start = sum(sizes[:self.rank])
        return start, start + sizes[self.rank]

    def bind(self, trainer, purpose, data, rows, shard=True):
        """An :class:`ExecutorGroup` running ``data`` (a global batch of ``rows`` rows).

        With ``shard`` (training and evaluation), an MPI rank takes only its
        part of the batch; prediction runs every row on every rank.
        """
        global_rows = rows
        if shard and self.ranks > 1 and self.presharded:
            global_rows = rows * self.ranks
            self.rows_seen += rows
        elif shard and self.ranks > 1:
            start, stop = self.local_slice(rows)
            data, rows = take_rows(data, start, stop), stop - start
            self.rows_seen += rows
        parts = []
        start = 0
        for device, size in zip(self.devices, split_sizes(rows, len(self.devices))):
            if size == 0:
                continue
            cache = trainer.executors(device)
            exe = cache.executor(purpose, size)
            cache.feed(exe, *take_rows(data, start, start + size))
            start += size
            parts.append((cache, exe, size))
            if purpose == "train" and self.ranks > 1 and len(self.devices) == 1:
                self._segment_backward(exe)
        self._join_replicas(parts, global_rows)
        group = ExecutorGroup(self, parts, global_rows)
        if not parts and purpose == "train":
            # no rows here: still take part in the other ranks' SyncBatchNorm exchanges
            model_exe = trainer.executors(self.primary).executor(purpose, 1)
            group.idle_exchanges = {phase: model_exe.replica_exchanges(phase)
                                    for phase in ("forward", "backward")}
        return group

    def _segment_backward(self, exe):
        """Cut ``exe``'s backward pass where each gradient bucket is complete.

        The buckets are those :meth:`reduce` exchanges (the trainable
        gradients, last layers first, cut by
        :func:`deepkit.distributed.gradient_buckets`). With
        ``deepkit.distributed.overlaps_backward()`` false, the backward pass stays
        one engine operation. Only with one device per rank: with several,
        the devices' gradients are summed before the exchange, which then
        waits for every device's whole backward pass anyway.
        """
        groups = None
        if self.comm.overlaps_backward() and exe.grad_dict:
            names = sorted(exe.grad_dict, key=lambda name: self._order[name])
            sizes = [exe.grad_dict[n].size * exe.grad_dict[n].dtype.itemsize for n in names]
            groups = tuple(tuple(names[i] for i in bucket)
                           for bucket in self.comm.gradient_buckets(sizes))
            if len(groups) < 2:
                groups = None
        if exe.backward_segments != groups:
            exe.set_backward_segments(groups)

    def _join_replicas(self, parts, global_rows):
        """Make the step's executors one :class:`ReplicaGroup` (for ``SyncBatchNorm``).

        Each device's weight is its factor in the gradient combination of
        :meth:`reduce`: its share of the global batch, or 1 when gradients are
        added as they are.
        """
        if len(parts) == 1 and self.ranks == 1:
            parts[0][1].replica = None
            return
        weights = [1.0 if self.gradient_reduction == "sum" else rows / global_rows
                   for _, _, rows in parts]
        across = order = None
        if self.ranks > 1:
            across = _sum_over_ranks
            # one device per rank: its passes queue among the other collectives (several
            # devices of a rank must run at once, so they cannot share that order)
            order = mpi.collective_var() if len(parts) == 1 else None
        if len(parts) > 1 and any("replica" in exe._resources for _, exe, _ in parts):
            ReplicaGroup.check_engine()
        group = ReplicaGroup(len(parts), weights, across, order_var=order)
        for k, (_, exe, _) in enumerate(parts):
            exe.replica = group.replica(k)

    def reduce(self, per_device):
        """``[(parameter, gradient)]`` on the primary: the weighted sum over devices and ranks."""
        if not per_device:  # this rank has no rows in this batch: it adds zeros
            return self._zero_gradients()
        if self.gradient_reduction == "sum":
            per_device = [(grads, 1.0) for grads, _ in per_device]
        if self.ranks > 1 and len(per_device) == 1:
            # one device: its gradients are scaled by its share and summed over the ranks
            # in place, by the exchange itself, so that each bucket waits only for the
            # piece of backward that completes it
            grads, share = per_device[0]
            ordered = sorted(grads, key=lambda pair: self._order[pair[0].name])
            self.comm.allreduce_arrays([g for _, g in ordered],
                                       scale=share if share != 1.0 else None)
            return list(grads)
        (first, share), rest = per_device[0], per_device[1:]
        primary = self.primary
        reduced = []
        for i, (param, grad) in enumerate(first):
            total = grad * share if share != 1.0 else grad
            for grads, other_share in rest:
                other = grads[i][1].as_in_context(primary)
                total = total + (other * other_share if other_share != 1.0 else other)
            reduced.append((param, total))
        if self.ranks > 1:  # every rank exchanges the same parameters in the same order
            ordered = sorted(reduced, key=lambda pair: self._order[pair[0].name])
            self.comm.allreduce_arrays([g for _, g in ordered])
        return reduced

    def _zero_gradients(self):
        grads = [(p, nd.zeros(p.shape, ctx=self.primary, dtype=p.dtype))
                 for p in sorted(self._trainable, key=lambda p: self._order[p.name])]
        self.comm.allreduce_arrays([g for _, g in grads])
        return grads

    def average_aux(self, group):
        """Replace the primary's auxiliary states by their weighted mean over the parts."""
        if len(group.parts) == 1 and self.ranks == 1:
            return
        if not group.parts:
            for p in sorted(self._aux, key=lambda p: p.name):
                p.data[:] = 0.0
            self.comm.allreduce_arrays([p.data for p in sorted(self._aux, key=lambda p: p.name)])
            return
        aux = group.primary.aux_dict
        for name, target in aux.items():
            total = None
            for _, exe, rows in group.parts:
                value = exe.aux_dict[name].as_in_context(self.primary) * (rows / group.global_rows)
                total = value if total is None else total + value
            total.copyto(target)
        if self.ranks > 1:
            self.comm.allreduce_arrays([aux[name] for name in sorted(aux)])

    # -- distributed runs ----------------------------------------------------------------
    def start_distributed(self, trainer):
        """Before a distributed ``fit``: same model on every rank, rank 0's weights everywhere.

        Raises:
            DeepkitError: The ranks' models differ (the message lists the
                parameters that differ).
        """
        weights = list(trainer.weights)
        self._trainable = [p for p in weights if p.trainable]
        # Exchange order: last layers first, as their gradients are ready first in backward.
        self._order = {p.name: -i for i, p in enumerate(weights)}
        self._aux = [p for p in weights if p.aux]
        self.comm.check_same_structure({p.name: p.shape for p in weights})
        self.comm.broadcast_arrays([p.data for p in weights])
        # Every rank shuffles as rank 0 does: the same batches, each rank taking its rows.
        backend.set_rng_state(self.comm.broadcast_json(backend.rng_state()))
        self.rows_seen = 0

    def average_logs(self, logs):
        """``logs`` averaged over the ranks, weighted by the rows each rank saw since the last."""
        rows, self.rows_seen = self.rows_seen, 0
        return self.comm.average_floats(logs, rows)
