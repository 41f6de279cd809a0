"""``Trainer``: compile/fit/evaluate/predict and the overridable steps of a Model (Keras 3).

:class:`~deepkit.models.Model` inherits this class. Every entry point runs
through the same steps:

* ``fit`` and ``train_on_batch`` call :meth:`Trainer.train_step` per batch,
* ``evaluate`` and ``test_on_batch`` call :meth:`Trainer.test_step`,
* ``predict`` and ``predict_on_batch`` call :meth:`Trainer.predict_step`,

and the loops around them (:mod:`deepkit.trainer.loop`) handle epochs,
callbacks and progress. A subclass that overrides a step keeps ``fit``,
callbacks and the progress bar as they are (``examples/custom_train_step.py``).

The default training step, written out::

    def train_step(self, data):
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        exe = self.bind_step("train", x, y, sample_weight)    # cached executor, batch fed
        exe.forward(is_train=True)
        exe.backward()
        grads = self.reduce_gradients(self.step_gradients(exe))
        self.optimizer.apply(grads)
        return self.update_metrics(exe)

Nothing in it waits for the engine: copies, passes, updates and metric
accumulations are queued, and the returned logs are read lazily. The seams
where later features plug in are :meth:`reduce_gradients` (gradient
all-reduce across devices and ranks, between backward and the update) and
:meth:`bind_step` (what is fed: sequence masks, per-device slices).
"""
import threading

import numpy as np

import deepkit_engine as dk
from deepkit_engine import engine
from deepkit_engine import symbol as sym
from deepkit_engine.base import DeepkitError
from deepkit_engine.ndarray.host_work import prepare_buffer_work

from .. import backend, distributed
from .. import losses as losses_mod
from .. import metrics as metrics_mod
from .. import optimizers as optimizers_mod
from ..callbacks.base import CallbackList
from ..callbacks.history import History
from ..callbacks.profiler import Profiler
from ..callbacks.progress import ProgbarLogger
from ..layers.masking import get_mask
from . import arguments
from .checks import DataChecks
from .data import as_source, is_iterator, named, sample_count, unpack_x_y_sample_weight
from .executors import ExecutorCache
from .parallel import DataParallel, DeviceGradients, ExecutorGroup, as_devices
from .loop import Logs, LoopState, run_evaluate, run_fit, run_predict

__all__ = ["Trainer"]

def _step_ones(out):
    """Ones of shape (batch, steps) for a sequence output (batch, steps, ...): no mask."""
    return sym.sum(sym.zeros_like(sym.reshape(out, shape=(0, 0, -1))), axis=-1) + 1.0


def _masked_loss(loss, label, out, mask, sample_weight, temporal=False):
    """The loss of a sequence output over its unmasked steps only (Keras's masked mean).

    Each step is scored as a sample (time folded into the batch), weighted by
    the step's mask and its sequence's sample weight (or, with ``temporal``,
    its own weight: ``sample_weight`` is (batch, steps)), and the sum is
    divided by the number of unmasked steps.
    """
    # The reshapes below hide the label's shape from inference; adding zeros of the shape
    # it must have (the mask's for class-index labels, else the output's) gives it back.
    label_shape = getattr(loss, "label_shape", tuple)
    like = mask if len(label_shape((1, 1, 1))) == 2 else out
    label = sym.elemwise_add(label, sym.zeros_like(like))
    per_step = loss(sym.reshape(label, shape=(-3, -2)), sym.reshape(out, shape=(-3, -2)))
    weights = mask * sample_weight if temporal \
        else sym.broadcast_mul(mask, sym.expand_dims(sample_weight, axis=1))
    total = sym.sum(sym.reshape_like(per_step, mask) * weights)
    return total / sym.maximum(sym.sum(mask), 1.0)


#: A batch size larger than any data set: the ``*_on_batch`` methods take all rows at once.
_WHOLE = 1 << 62


class Trainer:
    """The training API of a model: compile, fit, evaluate, predict, and their steps.

    A subclass provides the graph: ``input_names``, ``output_names``,
    ``label_names``, ``weights``, :meth:`output_symbols`,
    :meth:`input_sample_shapes`, ``name`` and ``built``.

    Attributes:
        optimizer: The optimizer given to :meth:`compile`.
        loss_tracker: The running mean of the training loss (a Mean metric).
        stop_training: Set to True (by a callback) to stop ``fit`` after the
            current batch.
        history: The History of the last ``fit``.
    """

    #: How the gradient of a batch relates to its rows: ``'mean'`` (the loss is a mean
    #: over the rows, as Keras losses are) or ``'sum'`` (MXNet's loss heads); it decides
    #: how the parts of a batch split over devices are combined.
    gradient_reduction = "mean"

    #: In a distributed run, whether each process's batches are already its own part
    #: of the data (True), or each process takes its rows of every batch (False);
    #: None decides per call: an iterator made with ``num_parts > 1`` is a part.
    data_is_presharded = None

    def _init_trainer(self):
        self.optimizer = None
        self.compiled_loss = []
        self.compiled_loss_weights = []
        self.compiled_metrics = []
        self.loss_tracker = metrics_mod.Mean(name="loss")
        self._host_metrics_var = engine.new_var()
        self._host_metrics_prepared = dk.nd.LastPrepared()
        self.stop_training = False
        self.history = None
        self._compile_version = 0
        self._device = None
        self._temporal_weights = ()
        self._metric_masks = {}
        self._devices = None
        self._parallel = None
        self._caches = {}

    # -- compile -----------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
                ctx=None):
        """Choose the optimizer, the loss(es) per output and the metrics.

        Args:
            optimizer: Name or :class:`~deepkit.optimizers.Optimizer`.
            loss: One loss for all outputs, a list (per output) or a dict by
                output layer name.
            metrics: A list (applied to every output) or a dict by output name.
            loss_weights: Per-output multipliers (list or dict).
            ctx: Device to train on (default: the current context), or a
                list of devices for data-parallel training (as ``devices=``
                of :meth:`fit`).
        """
        self._require_built("compile")
        n = len(self.output_names)
        self.optimizer = optimizers_mod.get(optimizer)
        self.compiled_loss = [losses_mod.get(spec) if spec is not None else None
                              for spec in self._per_output(loss, "loss")]
        weights = self._per_output(loss_weights if loss_weights is not None else 1.0,
                                   "loss_weights")
        self.compiled_loss_weights = [float(w) for w in weights]
        per_output = metrics if isinstance(metrics, dict) else {
            name: list(metrics or []) for name in self.output_names}
        self.compiled_metrics = []
        for i, name in enumerate(self.output_names):
            specs = per_output.get(name, [])
            specs = specs if isinstance(specs, (list, tuple)) else [specs]
            found = [metrics_mod.for_loss(m, self.compiled_loss[i]) if isinstance(m, str)
                     else metrics_mod.get(m) for m in specs]
            if n > 1:
                for m in found:
                    m.name = f"{name}_{m.name}"
            self.compiled_metrics.append(found)
        self._set_devices(ctx)
        self._compile_version += 1
        self._caches = {}

    def _per_output(self, value, what):
        n = len(self.output_names)
        if isinstance(value, dict):
            unknown = [k for k in value if k not in self.output_names]
            if unknown:
                raise ValueError(f"compile: {what} names {unknown}, which are not outputs; "
                                 f"outputs are {self.output_names}")
            return [value.get(name) for name in self.output_names]
        if isinstance(value, (list, tuple)):
            if len(value) != n:
                raise ValueError(f"compile: {what} has {len(value)} entries for {n} outputs")
            return list(value)
        return [value] * n

    def get_compile_config(self):
        """What :meth:`compile` was given, as JSON-ready data (None before compile)."""
        if self.optimizer is None:
            return None
        return {"optimizer": optimizers_mod.serialize(self.optimizer),
                "loss": {name: (losses_mod.serialize(spec) if spec is not None else None)
                         for name, spec in zip(self.output_names, self.compiled_loss)},
                "metrics": {name: [metrics_mod.serialize(m) for m in ms]
                            for name, ms in zip(self.output_names, self.compiled_metrics)},
                "loss_weights": dict(zip(self.output_names, self.compiled_loss_weights))}

    def compile_from_config(self, config, custom_objects=None):
        """Compile with what :meth:`get_compile_config` returned."""
        self.compile(
            optimizer=optimizers_mod.get(config["optimizer"]),
            loss={k: (losses_mod.get(v, custom_objects) if v is not None else None)
                  for k, v in config["loss"].items()},
            metrics={k: [metrics_mod.get(m, custom_objects) if isinstance(m, dict) else m
                         for m in ms] for k, ms in config["metrics"].items()},
            loss_weights=config["loss_weights"])

    @property
    def metrics(self):
        """Every metric the steps update: the loss tracker first, then the compiled ones."""
        return [self.loss_tracker] + [m for ms in self.compiled_metrics for m in ms]

    @property
    def metrics_names(self):
        return [m.name for m in self.metrics]

    def reset_metrics(self):
        """Forget the accumulated loss and metrics (each epoch and evaluation starts so)."""
        for m in self.metrics:
            m.reset()

    # -- programs and executors ----------------------------------------------------------
    def program_key(self):
        """Changes whenever the programs must be rebuilt (structure, freezing, compile)."""
        return (self.graph_version(), self._compile_version, self._temporal_weights)

    def build_programs(self):
        """``(inference symbol, training symbol or None)`` of this model.

        The training symbol's first output is the total loss (the weighted
        losses per output, each weighted per sample, or per step for the
        outputs in ``temporal_weights``, plus the regularizers); the model's
        outputs follow, cut off from the gradient, and then the masks of the
        masked outputs (the metrics skip masked steps). Before
        :meth:`compile` there is no training symbol.
        """
        outs = self.output_symbols()
        predict = sym.Group(outs)
        if self.optimizer is None:
            return predict, None
        terms = []
        self._metric_masks = {}
        masks = []
        for i, out in enumerate(outs):
            mask = get_mask(out)
            if mask is not None:
                self._metric_masks[i] = 1 + len(outs) + len(masks)
                masks.append(sym.BlockGrad(mask))
        for i, (out, loss) in enumerate(zip(outs, self.compiled_loss)):
            if loss is None:
                continue
            name = self.output_names[i]
            mask = get_mask(out)
            temporal = name in self._temporal_weights
            if mask is not None or temporal:
                term = _masked_loss(loss, sym.Variable(self.label_names[i]), out,
                                    mask if mask is not None else _step_ones(out),
                                    sym.Variable(f"{name}_sample_weight"), temporal)
            else:
                per_sample = loss(sym.Variable(self.label_names[i]), out)
                term = sym.mean(per_sample * sym.Variable(f"{name}_sample_weight"))
            weight = self.compiled_loss_weights[i]
            terms.append(term if weight == 1.0 else term * weight)
        if not terms:
            raise DeepkitError("compile() needs a loss for at least one output")
        for p in self.weights:
            if p.regularizer is not None and not p.aux:
                terms.append(p.regularizer(p.var))
        total = terms[0]
        for t in terms[1:]:
            total = total + t
        return predict, sym.Group([total] + [sym.BlockGrad(o) for o in outs] + masks)

    @property
    def device(self):
        """The device training runs on: ``compile(ctx=...)`` or the current context.

        With several devices, the first: it holds the parameters.
        """
        return self._device or dk.current_context()

    @property
    def devices(self):
        """The devices a step runs on (several with data parallelism)."""
        return list(self._devices) if self._devices else [self.device]

    @property
    def parallel(self):
        """The :class:`~deepkit.trainer.parallel.DataParallel` plan, or None on one device.

        It exists with several devices, and in every process of a distributed
        run (``deepkit.distributed.init()`` under ``mpirun`` with more than
        one process).
        """
        comm = distributed if distributed.active() else None
        if self._devices is None and comm is None:
            return None
        devices = self.devices
        plan = self._parallel
        if plan is None or plan.devices != devices or plan.comm is not comm:
            plan = self._parallel = DataParallel(devices, comm)
            plan.gradient_reduction = self.gradient_reduction
        return plan

    def _set_devices(self, ctx):
        """Take ``ctx``: None (keep), one device, or a list of devices."""
        if ctx is None:
            return
        devices = as_devices(ctx, "ctx" if not isinstance(ctx, (list, tuple)) else "devices")
        self._device = devices[0]
        self._devices = devices if len(devices) > 1 else None

    def executors(self, ctx=None):
        """The :class:`~deepkit.trainer.ExecutorCache` of this model on ``ctx``."""
        ctx = dk.Context(ctx) if ctx is not None else self.device
        cache = self._caches.get(ctx)
        if cache is None:
            cache = self._caches[ctx] = ExecutorCache(self, ctx, replica=ctx != self.device)
        return cache

    def initialize_weights(self, ctx=None):
        """Create every weight's array (once) on ``ctx`` (default: the training device)."""
        self._require_built("initialize weights")
        ctx = dk.Context(ctx) if ctx is not None else self.device
        for p in self.weights:
            p.initialize(ctx)

    # -- the steps -----------------------------------------------------------------------
    def bind_step(self, purpose, x, y=None, sample_weight=None):
        """The cached executor for ``purpose`` and this batch's size, with the batch fed.

        Args:
            purpose: ``'train'``, ``'eval'`` or ``'predict'``.
            x, y, sample_weight: The batch (as the steps receive it).

        Returns:
            The :class:`~deepkit_engine.Executor`; its outputs are the total
            loss and then the model's outputs (``'predict'``: the outputs only).
            With several devices (or MPI ranks), an
            :class:`~deepkit.trainer.parallel.ExecutorGroup` that drives one
            executor per device on its part of the batch.
        """
        plan = self.parallel
        if plan is None:
            cache = self.executors()
            exe = cache.executor(purpose, sample_count(x))
            cache.feed(exe, x, y, sample_weight)
            return exe
        data, rows = (x, y, sample_weight), sample_count(x)
        if purpose == "predict":
            return plan.bind(self, purpose, data, rows, shard=False)
        return plan.bind(self, purpose, data, rows)

    def step_gradients(self, exe):
        """``[(parameter, gradient)]`` after ``exe.backward()``, ready for the optimizer.

        For an :class:`~deepkit.trainer.parallel.ExecutorGroup` (several
        devices or MPI ranks) these are already combined: summed over the
        devices, each weighted by its share of the batch, and all-reduced
        across ranks (queued on the engine in buckets, so the exchange
        overlaps the rest of the backward pass). A custom ``train_step``
        written for one device therefore runs unchanged on several.
        """
        if isinstance(exe, ExecutorGroup):
            return self.parallel.reduce(exe.gradients())
        return self.executors().gradients(exe)

    def reduce_gradients(self, grads):
        """Combine gradients before the update; the seam between backward and the update.

        ``grads`` from :meth:`step_gradients` pass as they are (combined
        there already); per-device
        :class:`~deepkit.trainer.parallel.DeviceGradients` (from
        ``ExecutorGroup.gradients()``) are combined here. Override to change
        how gradients are combined.
        """
        if isinstance(grads, DeviceGradients):
            return self.parallel.reduce(grads)
        return grads

    def update_metrics(self, exe):
        """Accumulate the loss and the compiled metrics of the batch run in ``exe``.

        Returns:
            The running logs (:meth:`get_metrics_result`).
        """
        if self._update_metrics_on_host(exe):
            return self.get_metrics_result()
        parts = exe.parts if isinstance(exe, ExecutorGroup) else [(self.executors(), exe, None)]
        device = self.device
        for cache, part, rows in parts:
            n = rows if rows is not None else part.arg_dict[self.input_names[0]].shape[0]
            outputs, labels = part.outputs, cache.labels(part)
            if cache.replica:  # the metrics accumulate on the first device
                outputs = [o.as_in_context(device) for o in outputs]
                labels = [None if a is None else a.as_in_context(device) for a in labels]
            self.loss_tracker.update(outputs[0], count=n)
            for i, ms in enumerate(self.compiled_metrics):
                if i in self._metric_masks:  # masked steps count for no metric
                    mask = outputs[self._metric_masks[i]]
                    for m in ms:
                        m.update(labels[i], outputs[1 + i], sample_weight=mask)
                    continue
                for m in ms:
                    m.update(labels[i], outputs[1 + i])
        return self.get_metrics_result()

    def _update_metrics_on_host(self, exe):
        """The loss and built-in metrics of a CPU batch as one engine operation; False if not.

        Each metric op pushed from Python costs more than the arithmetic it
        does on a small batch, so where every compiled metric is one of
        :data:`deepkit.metrics.HOST_METRICS`, unmasked and unweighted, one
        queued function computes them all with numpy from the bound outputs
        and labels, and adds them to the metrics' host accumulators. It is
        prepared once per executor (and set of metrics): each batch then only
        queues it.
        """
        if isinstance(exe, ExecutorGroup) or self._metric_masks or self.device.is_gpu:
            return False
        tracker = self.loss_tracker
        metrics = [(i, m) for i, ms in enumerate(self.compiled_metrics) for m in ms]
        key = (id(exe), id(tracker)) + tuple(id(m) for _, m in metrics)
        push = self._host_metrics_prepared.get(key)
        if push is None:
            push = self._prepare_host_metrics(exe, tracker, metrics)
            self._host_metrics_prepared.keep(key, push, [exe, tracker] + [m for _, m in metrics])
        if push is False:
            return False
        for m in [tracker] + [m for _, m in metrics]:
            m.expect_host_update(self._host_metrics_var)
        push()
        return True

    def _prepare_host_metrics(self, exe, tracker, metrics):
        """The push of :meth:`_update_metrics_on_host` for ``exe``, or False where it does not
        apply."""
        if type(tracker) is not metrics_mod.Mean or any(
                type(m) not in metrics_mod.HOST_METRICS for _, m in metrics):
            return False
        outputs, labels = exe.outputs, self.executors().labels(exe)
        if any(labels[i] is None for i, _ in metrics):
            return False
        for i, m in metrics:  # shape errors are raised here, at once
            m.host_check(labels[i], outputs[1 + i])
        n = exe.arg_dict[self.input_names[0]].shape[0]

        def accumulate(_, buffers):
            value = buffers[0]
            total = float(value.reshape(-1)[0]) * n if value.size == 1 else float(value.sum())
            tracker.add_on_host({"total": total, "count": n})
            for k, (_, m) in enumerate(metrics):
                m.add_on_host(m.host_sums(buffers[1 + 2 * k], buffers[2 + 2 * k]))
        reads = [outputs[0]] + [a for i, _ in metrics for a in (labels[i], outputs[1 + i])]
        return prepare_buffer_work(accumulate, [], reads, order=self._host_metrics_var,
                                   name="metrics", read_buffers=True)

    def aggregate_logs(self, logs):
        """Epoch and evaluation logs (floats) of all MPI ranks, averaged by samples seen.

        In a single process they are returned as they are.
        """
        plan = self.parallel
        if plan is None or plan.ranks == 1:
            return logs
        return plan.average_logs(logs)

    def get_metrics_result(self):
        """The running value of every metric, as lazily read :class:`~deepkit.trainer.Logs`."""
        return Logs({m.name: m.result for m in self.metrics})

    def train_step(self, data):
        """One optimizer step on one batch; override to customise training (as Keras 3).

        Args:
            data: ``(x, y, sample_weight)`` of the batch (``y`` and
                ``sample_weight`` may be None); ``x`` is one array for a
                single-input model, else a dict by input name.

        Returns:
            The logs: a mapping of names to numbers (or NDArrays), read by the
            loop only when it needs them.
        """
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        exe = self.bind_step("train", x, y, sample_weight)
        exe.forward(is_train=True)
        if exe.grad_dict:
            exe.backward()
            self.optimizer.apply(self.reduce_gradients(self.step_gradients(exe)))
        return self.update_metrics(exe)

    def test_step(self, data):
        """The loss and metrics of one batch in inference mode; override to customise."""
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        exe = self.bind_step("eval", x, y, sample_weight)
        exe.forward(is_train=False)
        return self.update_metrics(exe)

    def predict_step(self, data):
        """The outputs for one batch of inputs (NDArrays); override to customise."""
        x, _, _ = unpack_x_y_sample_weight(data)
        exe = self.bind_step("predict", x)
        exe.forward(is_train=False)
        if isinstance(exe, ExecutorGroup):
            return exe.gathered_outputs()
        return [o.copy() for o in exe.outputs]

    # -- checks --------------------------------------------------------------------------
    def _check_data(self, x, y, sample_weight=None, what="fit"):
        arguments.check_x(what, x)
        if is_iterator(x):
            return
        xs = named(x, self.input_names, "x")
        n = sample_count(next(iter(xs.values())))
        arguments.check_not_empty(what, n)
        for name, value, shape in zip(self.input_names, named(x, self.input_names, "x").values(),
                                      self.input_sample_shapes()):
            got = tuple(np.shape(value)[1:])
            if got != tuple(shape):
                raise ValueError(f"Input '{name}' expects samples of shape {tuple(shape)} "
                                 f"(batch shape (None, {', '.join(map(str, shape))})), got data "
                                 f"of shape {np.shape(value)}")
        if y is None:
            return
        for i, (name, value) in enumerate(named(y, self.output_names, "y").items()):
            loss = self.compiled_loss[i] if i < len(self.compiled_loss) else None
            if loss is None:
                continue
            out_shape = (len(value),) + tuple(self.outputs[i].shape[1:])
            loss.check_label_shape(tuple(np.shape(value)), out_shape, name)
        if sample_weight is not None:
            temporal = []
            for i, (name, value) in enumerate(
                    named(sample_weight, self.output_names, "sample_weight").items()):
                shape = tuple(np.shape(value))
                out_shape = tuple(self.outputs[i].shape)
                steps = out_shape[1] if len(out_shape) >= 3 else None
                if len(shape) == 2 and steps is not None and shape == (n, steps):
                    temporal.append(name)  # one weight per time step (Keras's temporal mode)
                    continue
                if not shape or shape[0] != n or len(shape) > 1:
                    per_step = f", or one per time step, shape ({n}, {steps})" if steps else ""
                    raise ValueError(f"{what}: sample_weight for output '{name}' has shape "
                                     f"{shape}, but x has {n} samples: it needs one weight per "
                                     f"sample, shape ({n},){per_step}")
            if what != "predict":
                self._use_temporal_weights(temporal)

    def _use_temporal_weights(self, names):
        """Weight these outputs' losses per time step (rebuilding the programs if that changes)."""
        names = tuple(sorted(names))
        if names != self._temporal_weights:
            self._temporal_weights = names
            self._caches = {}

    def _needs_targets(self, step):
        """Whether the default ``step`` (``'train_step'``/``'test_step'``) needs labels."""
        if getattr(type(self), step) is not getattr(Trainer, step):
            return False  # an overridden step decides for itself
        return any(loss is not None for loss in self.compiled_loss)

    def _require_targets(self, what, x, y, step):
        """Raise when array data comes without the targets the compiled loss needs."""
        if y is not None or is_iterator(x) or not self._needs_targets(step):
            return
        losses = {name: loss.name for name, loss in zip(self.output_names, self.compiled_loss)
                  if loss is not None}
        raise ValueError(f"{what}: y is None, but the model was compiled with a loss "
                         f"({', '.join(f'{v} for output {k!r}' for k, v in losses.items())}); "
                         f"pass the targets as y")

    def _source(self, what, x, y, sample_weight, batch_size, shuffle, steps, check_finite,
                step=None):
        """The batch source of a call, with its data checks."""
        checks = DataChecks(self, what, check_finite)
        needs = what if step is not None and self._needs_targets(step) else None
        return as_source(x, y, sample_weight, self, batch_size, shuffle, backend.rng(), steps,
                         checks=checks, needs_targets=needs)

    def _require_compiled(self):
        if self.optimizer is None:
            raise DeepkitError(f"model '{self.name}' must be compiled before training or "
                               "evaluating: call model.compile(optimizer, loss, metrics)")

    def _prepare(self, x, ctx, devices=None):
        """Build from the data if needed, pick the device(s)."""
        self._build_from_data(x)
        if ctx is not None and devices is not None:
            raise ValueError("give the devices either as ctx= or as devices=, not both")
        self._set_devices(devices if devices is not None else ctx)

    # -- fit -----------------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=32, epochs=1, verbose=1, callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, ctx=None,
            check_finite=True, devices=None, profile_batches=None):
        """Train for ``epochs`` passes over the data; returns the History.

        ``profile_batches=(10, 20)`` profiles batches 10 to 20 (counted from 1
        over the run, as Keras's ``profile_batch``) and writes ``profile.json``
        (Chrome trace) and ``profile.txt`` (per-op tables): it appends a
        :class:`~deepkit.callbacks.Profiler` (use that for another path).

        ``x``/``y`` are numpy (or array-like) arrays, lists or dicts of them for
        several inputs/outputs, a DataIter, or an iterable of batches
        ``(x, y[, sample_weight])``. Each batch goes through :meth:`train_step`.

        The data is checked as it enters: class labels must be valid for the
        loss (integers in range for sparse cross-entropy), indices fed to an
        Embedding must be in range, and inputs and targets must be finite
        (``check_finite=False`` skips only that last check, for speed; with a
        ``TerminateOnNaN`` callback the callback handles such batches instead).
        Arguments follow Keras's rules; a bad one raises a ValueError naming it.

        ``devices=[dk.cpu(0), dk.cpu(1)]`` (or a list as ``ctx``) trains data
        parallel: each batch is split over the devices and one update is made
        from the combined gradients (:mod:`deepkit.trainer.parallel`); the
        result equals training on one device with the same batch size. In a
        distributed run (``deepkit.distributed.init()`` under ``mpirun``),
        every process takes its part of each batch by itself, starts from
        rank 0's weights, averages its gradients with the others, and only
        rank 0 prints progress and writes files.
        """
        batch_size = arguments.check_batch_size("fit", batch_size)
        if any(getattr(cb, "handles_non_finite_data", False) for cb in callbacks or ()):
            check_finite = False  # TerminateOnNaN stops at (and reports) such batches
        epochs = arguments.check_count("fit", "epochs", epochs)
        initial_epoch = arguments.check_count("fit", "initial_epoch", initial_epoch)
        steps_per_epoch = arguments.check_count("fit", "steps_per_epoch", steps_per_epoch, 1,
                                                optional=True)
        validation_split = arguments.check_validation_split("fit", validation_split,
                                                            is_iterator(x))
        self._prepare(x, ctx, devices)
        self._require_compiled()
        self.initialize_weights()
        plan = self.parallel
        if plan is not None and plan.ranks > 1:
            plan.presharded = self.data_is_presharded if self.data_is_presharded is not None \
                else is_iterator(x) and getattr(x, "num_parts", 1) > 1
            plan.start_distributed(self)
            verbose = verbose if plan.rank == 0 else 0
        self._check_data(x, y, sample_weight, "fit")
        self._require_targets("fit", x, y, "train_step")
        if validation_split and validation_data is None:
            x, y, sample_weight, validation_data = self._split(x, y, sample_weight,
                                                               validation_split)
        if class_weight is not None:
            sample_weight = self._class_weights(y, class_weight, sample_weight)
        source = self._source("fit", x, y, sample_weight, batch_size, shuffle, steps_per_epoch,
                              check_finite, "train_step")
        history = History()
        cbs = list(callbacks or [])
        if profile_batches is not None:
            cbs.append(Profiler(profile_batches, _where=("fit", "profile_batches")))
        if verbose:
            cbs.append(ProgbarLogger(verbose))
        cbs.append(history)
        state = LoopState("fit", epochs=epochs, steps=source.num_batches,
                          initial_epoch=initial_epoch)
        params = {"epochs": epochs, "steps": source.num_batches, "batch_size": batch_size,
                  "verbose": verbose}
        callback_list = CallbackList(cbs, self, params, state)
        self.history = history
        validate = None
        if validation_data is not None:
            vx, vy, vsw = self._unpack_validation(validation_data)

            def validate():
                return self.evaluate(vx, vy, batch_size=batch_size, sample_weight=vsw,
                                     verbose=0, return_dict=True, check_finite=check_finite)
        run_fit(self, source, state, callback_list, validate)
        return history

    def _split(self, x, y, sample_weight, fraction):
        if not 0 < fraction < 1:
            raise ValueError(f"validation_split must be in (0, 1), got {fraction}")
        xs = named(x, self.input_names, "x")
        n = len(next(iter(xs.values())))
        order = backend.rng().permutation(n)
        n_val = int(round(n * fraction))
        if n_val == 0 or n_val == n:
            raise ValueError(f"fit: validation_split={fraction!r} of {n} samples leaves "
                             f"{n - n_val} for training and {n_val} for validation; both need "
                             f"at least one sample")
        val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])

        def take(value, idx):
            if value is None:
                return None
            if isinstance(value, dict):
                return {k: np.asarray(v)[idx] for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [np.asarray(v)[idx] for v in value]
            return np.asarray(value)[idx]
        return (take(x, train_idx), take(y, train_idx), take(sample_weight, train_idx),
                (take(x, val_idx), take(y, val_idx), take(sample_weight, val_idx)))

    def _class_weights(self, y, class_weight, sample_weight):
        if len(self.output_names) != 1:
            raise ValueError("class_weight needs a single-output model; use sample_weight")
        labels = np.asarray(y)
        classes = labels.argmax(axis=-1) if labels.ndim > 1 and labels.shape[-1] > 1 \
            else labels.reshape(len(labels), -1)[:, 0]
        weights = np.array([class_weight.get(int(c), 1.0) for c in classes], np.float32)
        if sample_weight is not None:
            weights = weights * np.asarray(sample_weight, np.float32)
        return weights

    @staticmethod
    def _unpack_validation(data):
        if is_iterator(data):
            return (data, None, None)
        if len(data) == 2:
            return (data[0], data[1], None)
        if len(data) == 3:
            return tuple(data)
        raise ValueError("validation_data must be (x, y) or (x, y, sample_weight)")

    # -- evaluate and predict --------------------------------------------------------------
    def evaluate(self, x=None, y=None, batch_size=32, verbose=0, sample_weight=None,
                 return_dict=False, steps=None, ctx=None, callbacks=None, check_finite=True,
                 devices=None):
        """The loss and metrics of the current weights in inference mode (:meth:`test_step`).

        The data is checked as in :meth:`fit` (``check_finite=False`` skips
        the NaN/infinity check). With several devices each batch is split
        over them; in a distributed run each process evaluates its part of
        each batch and the results are averaged over the processes.
        """
        batch_size = arguments.check_batch_size("evaluate", batch_size)
        steps = arguments.check_count("evaluate", "steps", steps, 1, optional=True)
        self._prepare(x, ctx, devices)
        self._require_compiled()
        self._check_data(x, y, sample_weight, "evaluate")
        self._require_targets("evaluate", x, y, "test_step")
        source = self._source("evaluate", x, y, sample_weight, batch_size, False, steps,
                              check_finite, "test_step")
        callback_list = CallbackList(callbacks, self, {"steps": source.num_batches,
                                                       "verbose": verbose}) \
            if callbacks else None
        logs = self.aggregate_logs(run_evaluate(self, source, callbacks=callback_list))
        if verbose and (self.parallel is None or self.parallel.rank == 0):
            print(" - ".join(f"{k}: {v:.4g}" for k, v in logs.items()))
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=32, verbose=0, steps=None, ctx=None, devices=None):
        """Outputs for every sample (:meth:`predict_step`; the last batch may be partial).

        With several devices (``devices=``) each batch is split over them.
        In a distributed run every process predicts all of ``x``.

        Threads: ``predict`` may be called from several threads at once on one
        model; the calls share the model's executors, so they take turns (one
        lock per model) and each gets its own results. Inputs are not checked
        for NaN (predictions of NaN inputs are NaN).
        """
        batch_size = arguments.check_batch_size("predict", batch_size)
        steps = arguments.check_count("predict", "steps", steps, 1, optional=True)
        self._prepare(x, ctx, devices)
        self._check_data(x, None, None, "predict")
        source = self._source("predict", x, None, None, batch_size, False, steps, False)
        with self._predict_lock():
            chunks = run_predict(self, source)
            chunks = [[c.asnumpy() for c in cs] for cs in chunks]
        if not chunks:
            chunks = [[] for _ in self.output_names]
        results = [np.concatenate(cs) if cs else np.zeros((0,)) for cs in chunks]
        return results[0] if self.single_output else results

    def _predict_lock(self):
        lock = self.__dict__.get("_predict_lock_")
        if lock is None:
            lock = self.__dict__.setdefault("_predict_lock_", threading.RLock())
        return lock

    # -- one batch -------------------------------------------------------------------------
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False,
                       check_finite=True):
        """One :meth:`train_step` on one batch; returns the batch loss (and metrics).

        The batch is checked as in :meth:`fit`.
        """
        self._prepare(x, None)
        self._require_compiled()
        self.initialize_weights()
        self._check_data(x, y, sample_weight, "train_on_batch")
        self._require_targets("train_on_batch", x, y, "train_step")
        if class_weight is not None:
            sample_weight = self._class_weights(y, class_weight, sample_weight)
        source = self._source("train_on_batch", x, y, sample_weight, _WHOLE, False, None,
                              check_finite)
        self.reset_metrics()
        _, data = next(iter(source.batches()))
        with engine.bulk():
            logs = self.train_step(data)
        return self._result(logs, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False, check_finite=True):
        """Loss (and metrics) of one batch in inference mode, without updating."""
        return self.evaluate(x, y, batch_size=_WHOLE, sample_weight=sample_weight,
                             return_dict=return_dict, check_finite=check_finite)

    def predict_on_batch(self, x):
        """The outputs for one batch."""
        return self.predict(x, batch_size=_WHOLE)

    @staticmethod
    def _result(logs, return_dict):
        values = {k: logs[k] for k in logs}
        values = {k: (float(v.asnumpy().sum()) if hasattr(v, "asnumpy") else v)
                  for k, v in values.items()}
        if return_dict:
            return values
        values = list(values.values())
        return values[0] if len(values) == 1 else values
