"""MXNet 1.x's ``mx.mod.BucketingModule``: one Module per bucket, all sharing parameters.

``sym_gen(bucket_key) -> (symbol, data_names, label_names)`` makes the
network for a sequence length; each batch's ``bucket_key`` (as
:class:`~deepkit.compat.mx_rnn.BucketSentenceIter` sets it) picks, and on
first sight binds, the module of its bucket. Every bucket's module uses the
parameter arrays and the optimizer of the default bucket's module
(``Module.bind(shared_module=...)``, ``borrow_optimizer``), so training any
bucket trains them all.

``fit`` runs deepkit's one training loop (the loop behind ``Model.fit``)
with a step that switches to the batch's bucket, then runs forward,
backward, the update and the metric; it logs MXNet's ``Epoch[n] Train-...``
lines and calls ``batch_end_callback``/``epoch_end_callback`` as MXNet does.
"""
import logging

from ..callbacks.base import CallbackList
from ..trainer.loop import Logs, LoopState, run_fit
from . import mx_init, mx_metric
from .feedforward import _logger, _MXNetHooks
from .module import Module

__all__ = ["BucketingModule"]


class BucketingModule:
    """Modules for variable-length data, one per bucket key, sharing parameters (MXNet).

    Args:
        sym_gen: ``bucket_key -> (symbol, data_names, label_names)``.
        default_bucket_key: The key of the largest bucket (bound first; its
            module owns the parameters).
        logger: Where ``fit`` logs.
        context: A Context (or a list; the first is used).
        fixed_param_names: Parameters that are not updated.
        work_load_list, state_names, group2ctxs, compression_params: Accepted
            for compatibility; not used.
    """

    def __init__(self, sym_gen, default_bucket_key=None, logger=logging, context=None,
                 work_load_list=None, fixed_param_names=None, state_names=None,
                 group2ctxs=None, compression_params=None):
        if default_bucket_key is None:
            raise ValueError("BucketingModule: default_bucket_key is required (the key of the "
                             "largest bucket)")
        self._sym_gen = sym_gen
        self._default_bucket_key = default_bucket_key
        self._context = context
        self._fixed_param_names = fixed_param_names
        self._state_names = state_names
        self.logger = logger if logger is not logging else _logger()
        self._buckets = {}
        self._grad_req = "write"
        self._curr_module = None
        self._curr_bucket_key = None
        self.binded = self.params_initialized = self.optimizer_initialized = False

    def _module(self, key):
        symbol, data_names, label_names = self._sym_gen(key)
        return Module(symbol, data_names, label_names, logger=self.logger,
                      context=self._context, fixed_param_names=self._fixed_param_names,
                      state_names=self._state_names)

    @property
    def default_module(self):
        """The default bucket's module (it owns the parameters)."""
        return self._buckets.get(self._default_bucket_key)

    @property
    def symbol(self):
        """The symbol of the current bucket."""
        return self._curr_module.symbol

    @property
    def data_names(self):
        return self._curr_module.data_names

    @property
    def label_names(self):
        return self._curr_module.label_names

    @property
    def data_shapes(self):
        return self._curr_module.data_shapes

    @property
    def label_shapes(self):
        return self._curr_module.label_shapes

    _FIRST = {"binded": "bind", "params_initialized": "init_params",
              "optimizer_initialized": "init_optimizer"}

    def _require(self, flag, what):
        if not getattr(self, flag):
            raise RuntimeError(f"BucketingModule.{what}: call {self._FIRST[flag]}() first")

    def bind(self, data_shapes, label_shapes=None, for_training=True, inputs_need_grad=False,
             force_rebind=False, shared_module=None, grad_req="write"):
        """Bind the default bucket's module for ``data_shapes`` (its largest shapes)."""
        if self.binded and not force_rebind:
            self.logger.warning("Already bound, ignoring bind()")
            return
        module = self._module(self._default_bucket_key)
        module.bind(data_shapes, label_shapes, for_training, inputs_need_grad,
                    force_rebind=False, shared_module=shared_module, grad_req=grad_req)
        self._grad_req = grad_req
        self._buckets = {self._default_bucket_key: module}
        self._curr_module, self._curr_bucket_key = module, self._default_bucket_key
        self.binded = True

    def switch_bucket(self, bucket_key, data_shapes, label_shapes=None):
        """Make ``bucket_key`` current, binding its module (sharing parameters) on first use."""
        self._require("binded", "switch_bucket")
        module = self._buckets.get(bucket_key)
        if module is None:
            default = self.default_module
            module = self._module(bucket_key)
            module.bind(data_shapes, label_shapes, default.for_training,
                        default.inputs_need_grad, shared_module=default,
                        grad_req=self._grad_req)
            if self.optimizer_initialized:
                module.borrow_optimizer(default)
            self._buckets[bucket_key] = module
        self._curr_module, self._curr_bucket_key = module, bucket_key

    def init_params(self, initializer=mx_init.Uniform(0.01), arg_params=None, aux_params=None,
                    allow_missing=False, force_init=False, allow_extra=False):
        """Initialize the (shared) parameters through the default bucket's module."""
        if self.params_initialized and not force_init:
            return
        self._require("binded", "init_params")
        self.default_module.init_params(initializer, arg_params, aux_params, allow_missing,
                                        force_init, allow_extra)
        for module in self._buckets.values():
            module.params_initialized = True
        self.params_initialized = True

    def init_optimizer(self, kvstore="local", optimizer="sgd",
                       optimizer_params=(("learning_rate", 0.01),), force_init=False):
        """Create the optimizer once; every bucket's module uses it."""
        if self.optimizer_initialized and not force_init:
            return
        default = self.default_module
        default.init_optimizer(kvstore, optimizer, optimizer_params, force_init=force_init)
        for key, module in self._buckets.items():
            if key != self._default_bucket_key:
                module.borrow_optimizer(default)
        self.optimizer_initialized = True

    def get_params(self):
        """``(arg_params, aux_params)``: copies of the shared parameters."""
        return self.default_module.get_params()

    def set_params(self, arg_params, aux_params=None, allow_missing=False, force_init=True,
                   allow_extra=False):
        self.default_module.set_params(arg_params, aux_params, allow_missing, force_init,
                                       allow_extra)
        self.params_initialized = True

    def forward(self, data_batch, is_train=None):
        """Forward one batch on the module of its ``bucket_key`` (default bucket without one)."""
        self._require("params_initialized", "forward")
        key = getattr(data_batch, "bucket_key", None)
        if key is None:
            key = self._default_bucket_key
        self.switch_bucket(key, data_batch.provide_data or self.default_module.data_shapes,
                           data_batch.provide_label or self.default_module.label_shapes)
        self._curr_module.forward(data_batch, is_train=is_train)

    def backward(self, out_grads=None):
        self._curr_module.backward(out_grads)

    def forward_backward(self, data_batch):
        self.forward(data_batch, is_train=True)
        self.backward()

    def update(self):
        """Apply the shared optimizer to the current bucket's gradients."""
        self._require("optimizer_initialized", "update")
        self._curr_module.update()

    def get_outputs(self, merge_multi_context=True):
        return self._curr_module.get_outputs(merge_multi_context)

    def update_metric(self, eval_metric, labels, pre_sliced=False):
        self._curr_module.update_metric(eval_metric, labels, pre_sliced)

    def score(self, eval_data, eval_metric, num_batch=None, reset=True, epoch=0):
        """``eval_metric`` over ``eval_data`` in inference mode: ``[(name, value)]``."""
        metric = mx_metric.create(eval_metric)
        metric.reset()
        if reset:
            eval_data.reset()
        for nbatch, batch in enumerate(eval_data):
            if num_batch is not None and nbatch == num_batch:
                break
            self.forward(batch, is_train=False)
            self.update_metric(metric, batch.label)
        return metric.get_name_value()

    def fit(self, train_data, eval_data=None, eval_metric="acc", epoch_end_callback=None,
            batch_end_callback=None, kvstore="local", optimizer="sgd",
            optimizer_params=(("learning_rate", 0.01),), initializer=mx_init.Uniform(0.01),
            arg_params=None, aux_params=None, allow_missing=False, force_rebind=False,
            force_init=False, begin_epoch=0, num_epoch=None, validation_metric=None):
        """Train for the epochs ``begin_epoch .. num_epoch - 1`` over bucketed batches.

        Returns:
            The training metric's ``[(name, value)]`` of the last epoch.
        """
        if num_epoch is None:
            raise ValueError("BucketingModule.fit: please specify number of epochs "
                             "(num_epoch=N)")
        self.bind(train_data.provide_data, train_data.provide_label, for_training=True,
                  force_rebind=force_rebind)
        self.init_params(initializer, arg_params, aux_params, allow_missing, force_init)
        self.init_optimizer(kvstore, optimizer, optimizer_params)
        metric = mx_metric.create(eval_metric)
        steps = _BucketSteps(self, metric)
        hooks = _BucketingHooks(self, metric, batch_end_callback, epoch_end_callback,
                                self.logger, False)
        hooks.validation = None if eval_data is None else (
            eval_data, validation_metric or eval_metric)
        state = LoopState("fit", epochs=int(num_epoch), initial_epoch=int(begin_epoch))
        callbacks = CallbackList([hooks], steps, {"epochs": int(num_epoch)}, state)
        run_fit(steps, _BatchSource(train_data), state, callbacks)
        return hooks.result


class _BatchSource:
    """A DataIter's batches as they come (bucket key and shapes included), for the loop."""

    num_batches = None

    def __init__(self, it):
        self.it = it

    def batches(self):
        self.it.reset()
        for batch in self.it:
            yield int(batch.data[0].shape[0]) - int(batch.pad or 0), batch


class _BucketSteps:
    """What the training loop drives for ``BucketingModule.fit``: one bucketed step per batch."""

    def __init__(self, module, metric):
        self.module, self.metric = module, metric
        self.stop_training = False

    def reset_metrics(self):
        self.metric.reset()

    def train_step(self, batch):
        """Switch to the batch's bucket; forward, backward, update and the metric."""
        module = self.module
        module.forward_backward(batch)
        module.update()
        module.update_metric(self.metric, batch.label)
        return self.get_metrics_result()

    def get_metrics_result(self):
        return Logs({leaf.name: (lambda m=leaf: m.get()[1])
                     for leaf in mx_metric.leaves(self.metric)})


class _BucketingHooks(_MXNetHooks):
    """MXNet's callbacks and log lines for ``BucketingModule.fit``, scoring ``eval_data``."""

    validation = None
    result = ()

    def on_epoch_end(self, epoch, logs=None):
        owner = self.owner
        self.result = self.metric.get_name_value()
        for name, value in self.result:
            self.logger.info("Epoch[%d] Train-%s=%f", epoch, name, value)
        self.logger.info("Epoch[%d] Time cost=%.3f", epoch, self.loop.epoch_seconds)
        arg, aux = owner.get_params()
        for callback in self.epoch_end:
            callback(epoch, owner.symbol, arg, aux)
        if self.validation is not None:
            data, metric = self.validation
            for name, value in owner.score(data, metric, epoch=epoch):
                self.logger.info("Epoch[%d] Validation-%s=%f", epoch, name, value)
