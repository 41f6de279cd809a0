"""FeedForward: MXNet 1.x's one-class trainer (``mx.model.FeedForward``) on deepkit's ``fit``.

``FeedForward(symbol, num_epoch=10, learning_rate=0.1).fit(train_iter,
eval_data=val_iter)`` trains a raw engine symbol whose loss heads
(``SoftmaxOutput``, ``LinearRegressionOutput``, ...) give the gradients, with
MXNet's conventions:

* parameters are the symbol's arguments other than the data and labels, and
  are initialized by name (``mx.init``: weights by the initializer, biases and
  ``beta`` zeros, ``gamma`` ones, ``moving_mean`` zeros, ``moving_var`` ones);
* the optimizer gets ``rescale_grad = 1 / batch_size`` and MXNet's coupled
  weight decay (``wd``), with no decay for parameters not ending in
  ``_weight``/``_gamma``;
* metrics are ``mx.metric`` objects (``'acc'``, ``'ce'``, ...), logged as
  ``Epoch[0] Train-accuracy=0.91``, ``Epoch[0] Time cost=1.234`` and
  ``Epoch[0] Validation-accuracy=0.92``; batch callbacks
  (``mx.callback.Speedometer``) receive ``BatchEndParam(epoch, nbatch,
  eval_metric, locals)`` and epoch callbacks ``(epoch, symbol, arg_params,
  aux_params)``;
* ``save(prefix, epoch)`` writes ``prefix-symbol.json`` and
  ``prefix-%04d.params`` (MXNet's binary NDArray format, keys ``arg:<name>``
  and ``aux:<name>``; never pickle), which MXNet itself loads.

It is not a second trainer: the symbol is wrapped in a
:class:`~deepkit.models.SymbolModel` and trained by ``Model.fit``, so
executors are bound once per batch shape and cached, updates and metrics are
pushed to the engine without waiting, and Keras callbacks
(``fit(..., callbacks=[EarlyStopping(...)])``) work as with any model. The
training program is the symbol itself plus one monitoring output (the
cross-entropy of ``SoftmaxOutput`` heads, squared/absolute error of the
regression heads) that is cut off from the gradient; it gives the ``loss``
that Keras callbacks and ``History`` see.

Progress is logged to the ``deepkit.feedforward`` logger. When the
application has not configured :mod:`logging`, deepkit's own handler prints
these INFO lines to stderr, so progress shows without ``basicConfig``.

Several contexts (``ctx=[cpu(0), cpu(1)]``) train data parallel: each batch
is split over them and the gradients are added up before one update, as
MXNet does (:mod:`deepkit.trainer.parallel`). ``kvstore='dist_sync'`` (or
``'dist_sync_device'``) under ``mpirun`` trains over MPI
(:mod:`deepkit.distributed`); ``kvstore='dist_async'`` updates on MXNet's
asynchronous parameter server (a thread of rank 0,
:mod:`deepkit_engine.kvstore`): each process pushes its gradients after every
batch, the server applies them at once, and the process pulls the weights
back, without waiting for the others; other kvstore names run on the local
devices.

Differences from MXNet: metrics and
predictions leave out the filler samples of a padded last batch (MXNet counts
them); numpy ``eval_data`` is evaluated in order, every sample once; the
``Time cost`` of an epoch is measured after its last update has finished.
"""
import collections
import logging
import sys

import numpy as np

import deepkit_engine as dk
from deepkit_engine import io as dk_io
from deepkit_engine import kvstore as dk_kvstore
from deepkit_engine import nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import DeepkitError

from .. import distributed
from .. import optimizers as optimizers_mod
from ..callbacks import Callback
from ..models.symbol_model import SymbolModel, SymbolParameter
from ..trainer import unpack_x_y_sample_weight
from ..trainer.parallel import ExecutorGroup
from . import mx_format, mx_init, mx_metric, mx_nd, mx_optimizer

__all__ = ["FeedForward", "BatchEndParam", "save_checkpoint", "load_checkpoint",
           "ensure_logging"]

#: What batch-end callbacks receive (MXNet's ``mx.model.BatchEndParam``).
BatchEndParam = collections.namedtuple("BatchEndParams",
                                       ["epoch", "nbatch", "eval_metric", "locals"])

_LOSS_HEADS = ("SoftmaxOutput", "Softmax", "LinearRegressionOutput", "MAERegressionOutput",
               "LogisticRegressionOutput")


# -- logging ---------------------------------------------------------------------------
class _FallbackHandler(logging.StreamHandler):
    """Prints deepkit's records to stderr while the application has configured no logging.

    As soon as the root logger has a handler (``logging.basicConfig``, a
    notebook, pytest) it steps aside and the records reach the application's
    handlers by propagation instead, so nothing is printed twice.
    """

    def __init__(self):
        super().__init__(sys.stderr)

    def emit(self, record):
        if logging.getLogger().handlers:
            return
        self.stream = sys.stderr  # the current one: tests and notebooks replace it
        super().emit(record)


def ensure_logging():
    """Make deepkit's INFO progress visible when the application has not configured logging.

    Gives the ``deepkit`` logger a stderr handler (active only while the root
    logger has no handler) and level INFO, unless a level or handlers were
    set on it already. ``logging.getLogger('deepkit').setLevel(logging.WARNING)``
    silences it.

    Returns:
        logging.Logger: The ``deepkit`` logger.
    """
    logger = logging.getLogger("deepkit")
    if not logger.handlers:
        handler = _FallbackHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
        logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    return logger


def _logger():
    ensure_logging()
    return logging.getLogger("deepkit.feedforward")


# -- checkpoints -----------------------------------------------------------------------
def _as_nd(value):
    return value if isinstance(value, dk.NDArray) else nd.array(np.asarray(value))


def save_checkpoint(prefix, epoch, symbol, arg_params, aux_params):
    """Write ``prefix-symbol.json`` and ``prefix-%04d.params`` (MXNet's checkpoint layout).

    The parameters go to one file in MXNet's binary NDArray format (so MXNet
    itself loads it) with the keys ``arg:<name>`` and ``aux:<name>``; both
    writes are atomic.

    Args:
        prefix: Path prefix of the two files.
        epoch: Epoch number in the parameter file's name.
        symbol: The network.
        arg_params, aux_params: ``{name: NDArray or numpy array}``.
    """
    symbol.save(f"{prefix}-symbol.json")
    data = {f"arg:{k}": _as_nd(v) for k, v in arg_params.items()}
    data.update({f"aux:{k}": _as_nd(v) for k, v in (aux_params or {}).items()})
    path = "%s-%04d.params" % (prefix, epoch)
    mx_format.save(path, data)
    _logger().info('Saved checkpoint to "%s"', path)


def load_checkpoint(prefix, epoch):
    """Read a checkpoint: MXNet's own files, or what :func:`save_checkpoint` wrote.

    The parameter file may be MXNet's binary format or deepkit's HDF5.

    Returns:
        ``(symbol, arg_params, aux_params)`` with the parameters as NDArrays.

    Raises:
        FileNotFoundError: A file is missing.
        DeepkitError: The parameter file is not a checkpoint (keys without
            ``arg:``/``aux:``).
    """
    symbol = sym.load(f"{prefix}-symbol.json")
    path = "%s-%04d.params" % (prefix, epoch)
    saved = mx_nd.load(path)
    if not isinstance(saved, dict):
        raise DeepkitError(f"load_checkpoint: {path} holds a list of arrays, not the named "
                           "'arg:'/'aux:' parameters of a checkpoint")
    arg_params, aux_params = {}, {}
    for key, value in saved.items():
        kind, _, name = key.partition(":")
        if kind == "arg":
            arg_params[name] = value
        elif kind == "aux":
            aux_params[name] = value
        else:
            raise DeepkitError(f"load_checkpoint: {path} has the key {key!r}; checkpoint keys "
                               "start with 'arg:' or 'aux:'")
    return symbol, arg_params, aux_params


# -- the network as a Model ------------------------------------------------------------
class _FeedForwardNet(SymbolModel):
    """The symbol as a Model, with MXNet's metric object updated by every step.

    Args:
        symbol, data_descs, params: As for :class:`~deepkit.models.SymbolModel`.
        track_loss: Compute the monitoring loss (the ``loss`` of the logs) in
            every training step. MXNet's Module has no such loss, so it leaves
            it out: one output and one metric update less per batch.
    """

    #: As in MXNet's distributed training, each process trains on its own iterator's
    #: batches (made with ``num_parts``/``part_index``, or the whole data).
    data_is_presharded = True

    def __init__(self, symbol, data_descs, params, track_loss=True):
        self.track_loss = bool(track_loss)
        super().__init__(symbol, data_descs, params, name="feedforward")
        self.eval_metric = None
        #: ``kvstore='dist_async'``: the :class:`AsyncUpdate` that replaces the local update.
        self.async_update = None

    @property
    def parallel(self):
        if self.async_update is not None:
            return None  # dist_async: each process trains alone; the parameter server joins them
        return super().parallel

    def train_step(self, data):
        if self.async_update is None:
            return super().train_step(data)
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        exe = self.bind_step("train", x, y, sample_weight)
        exe.forward(is_train=True)
        if exe.grad_dict:
            exe.backward()
            self.async_update.apply(self, self.step_gradients(exe))
        return self.update_metrics(exe)

    @property
    def output_offset(self):
        """Index of the symbol's first output among a training executor's outputs."""
        return 1 if self.track_loss else 0

    def build_programs(self):
        if self.track_loss:
            return super().build_programs()
        return self.symbol, self.symbol

    @property
    def metrics(self):
        metrics = super().metrics
        return metrics if self.track_loss else metrics[1:]

    def use_metric(self, metric):
        """Update this ``mx.metric`` object (and log its leaves) from now on."""
        self.eval_metric = metric
        self.compiled_metrics = [mx_metric.leaves(metric)]

    def update_metrics(self, exe):
        parts = exe.parts if isinstance(exe, ExecutorGroup) else [(None, exe, None)]
        device = self.device  # the metrics accumulate on the first device
        for _, part, _ in parts:  # one executor per device with several contexts
            outputs = [o.as_in_context(device) for o in part.outputs]
            if self.track_loss:
                n = part.arg_dict[self.input_names[0]].shape[0]
                self.loss_tracker.update(outputs[0], count=n)
                outputs = outputs[1:]
            if self.eval_metric is not None:
                labels = [part.arg_dict[name].as_in_context(device) for name in self.label_names
                          if name in part.arg_dict]
                self.eval_metric.update(labels, outputs)
        return self.get_metrics_result()


def _kv_type(kvstore):
    """The store type a ``kvstore`` argument names (a name, a KVStore or None)."""
    return str(getattr(kvstore, "type", kvstore) or "local")


def kvstore_workers(kvstore):
    """How many processes' batches one update averages over (MXNet's rule for ``rescale_grad``).

    ``'dist_sync'``-style stores (names or KVStores) join the MPI run this
    process was launched in; as in MXNet, each process trains on the batches
    of its own iterator, and the gradient is averaged over all processes'
    batches (``rescale_grad`` is ``1 / (batch_size * workers)``).
    ``'dist_async'`` joins the run too, but the server applies each process's
    gradient alone, so it counts 1 (MXNet multiplies only for ``_sync``
    stores). Other stores train in this process alone.
    """
    kv_type = _kv_type(kvstore)
    if not kv_type.startswith("dist"):
        return 1
    distributed.init()
    return 1 if kv_type == "dist_async" else distributed.size()


def make_async_update(kvstore, optimizer, contexts, what):
    """An :class:`AsyncUpdate` when ``kvstore`` asks for ``'dist_async'``, else None.

    Args:
        kvstore: The ``kvstore`` argument (a name or a KVStore).
        optimizer: The optimizer the server applies (rank 0's is used).
        contexts: The contexts this process trains on (one with ``'dist_async'``).
        what: The caller, for errors (``'FeedForward.fit'``).
    """
    if _kv_type(kvstore) != "dist_async":
        return None
    if len(contexts) > 1:
        raise ValueError(f"{what}: kvstore='dist_async' trains on one context per process, got "
                         f"{len(contexts)} ({', '.join(str(c) for c in contexts)}); start one "
                         "process per device (mpirun -np N) or use kvstore='dist_sync'")
    for method in ("create_state", "update"):
        if not callable(getattr(optimizer, method, None)):
            raise TypeError(f"{what}: kvstore='dist_async' applies the optimizer on the parameter "
                            f"server through MXNet's create_state(index, weight) and "
                            f"update(index, weight, grad, state); {type(optimizer).__name__} has "
                            f"no {method}() (use an mx.optimizer optimizer or its name)")
    distributed.init()
    if isinstance(kvstore, dk_kvstore.KVStore):
        return AsyncUpdate(kvstore, optimizer, owned=False)
    return AsyncUpdate(dk_kvstore.create("dist_async"), optimizer, owned=True)


class AsyncUpdate:
    """MXNet's update on the kvstore for ``'dist_async'``: push each gradient, pull the weight.

    The parameters are the store's keys (by name). At the first step every
    process initialises them (rank 0's values win) and pulls them, so all
    start from rank 0's weights; each step then pushes the gradients (the
    server on rank 0 applies the optimizer to each at once) and pulls the
    weights back. :meth:`finish` waits for every process and pulls the final
    weights, so all processes end with the server's values.

    Args:
        store: A ``'dist_async'`` KVStore.
        optimizer: An ``mx.optimizer`` optimizer (rank 0's is applied).
        owned: Whether the store was made for this training (:meth:`close` closes it).
    """

    def __init__(self, store, optimizer, owned):
        self.store = store
        self.optimizer = optimizer
        self.owned = owned
        self.names = None

    def start(self, net):
        """Put the trainable weights in the store and pull rank 0's (all processes at once)."""
        weights = [p for p in net.weights if p.trainable]
        if getattr(self.optimizer, "param_dict", None) == {}:
            # the server's update(name, ...) then uses each parameter's lr_mult and wd_mult
            self.optimizer.param_dict = {p.name: p for p in weights}
        self.store.set_optimizer(self.optimizer)
        self.names = [p.name for p in weights]
        if self.names:
            self.store.init(self.names, [p.data for p in weights])
            self.store.pull(self.names, out=[p.data for p in weights])

    def apply(self, net, params_and_grads):
        """Push the gradients of ``[(Parameter, gradient)]``, pull the updated weights."""
        if self.names is None:
            self.start(net)
        pairs = [(p, g) for p, g in params_and_grads if g is not None and p.trainable]
        if not pairs:
            return
        names = [p.name for p, _ in pairs]
        self.store.push(names, [g for _, g in pairs])
        self.store.pull(names, out=[p.data for p, _ in pairs])

    def finish(self, net):
        """Wait for every process, then pull the server's final weights (the same everywhere)."""
        if self.names is None:
            self.start(net)
        self.store.barrier()
        if self.names:
            by_name = {p.name: p for p in net.weights}
            self.store.pull(self.names, out=[by_name[n].data for n in self.names])

    def close(self):
        """Close the store when it was made for this training (every process calls it)."""
        if self.owned:
            self.store.close()


class _MXNetHooks(Callback):
    """MXNet's batch/epoch callbacks and log lines, as a callback of ``Model.fit``."""

    def __init__(self, owner, metric, batch_end_callback, epoch_end_callback, logger, validate):
        super().__init__()
        self.owner, self.metric, self.logger, self.validate = owner, metric, logger, validate
        self.batch_end = _as_list(batch_end_callback)
        self.epoch_end = _as_list(epoch_end_callback)
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if not self.batch_end:
            return
        nbatch = batch + 1
        param = BatchEndParam(epoch=self.epoch, nbatch=nbatch, eval_metric=self.metric,
                              locals={"self": self.owner, "epoch": self.epoch,
                                      "nbatch": nbatch})
        for callback in self.batch_end:
            callback(param)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        names = [m.name for m in mx_metric.leaves(self.metric)]
        for name in names:
            if name in logs:
                self.logger.info("Epoch[%d] Train-%s=%f", epoch, name, logs[name])
        self.logger.info("Epoch[%d] Time cost=%.3f", epoch, self.loop.epoch_seconds)
        for callback in self.epoch_end:
            callback(epoch, self.owner.symbol, self.owner.arg_params, self.owner.aux_params)
        if self.validate:
            for name in names:
                if f"val_{name}" in logs:
                    self.logger.info("Epoch[%d] Validation-%s=%f", epoch, name,
                                     logs[f"val_{name}"])


def _as_list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _host(value):
    return value.asnumpy() if hasattr(value, "asnumpy") else np.asarray(value)


# -- FeedForward -----------------------------------------------------------------------
class FeedForward:
    """Train, evaluate and save a symbol the MXNet 1.x way (``mx.model.FeedForward``).

    Args:
        symbol: The network, ending in loss heads (``SoftmaxOutput`` ...).
        ctx: A Context or a list of them (data parallel over the list).
        num_epoch: Training ends after this epoch (counting from 0).
        epoch_size: Batches per epoch (default: one pass over the data); the
            data iterator then continues across epochs.
        optimizer: A name (``'sgd'``, ``'adam'``, ... of ``mx.optimizer``) created
            with ``rescale_grad=1/batch_size`` and ``**kwargs``, or an optimizer
            object used as it is.
        initializer: An ``mx.init`` initializer (applied by parameter name), a
            name, or a deepkit initializer (used for the weights).
        numpy_batch_size: Batch size when ``X`` is a numpy array.
        arg_params, aux_params: Initial values ``{name: NDArray or numpy array}``
            (the others come from the initializer).
        allow_extra_params: Ignore names in ``arg_params``/``aux_params`` that
            the symbol does not have (otherwise an error).
        begin_epoch: The first epoch (to resume).
        **kwargs: Optimizer arguments: ``learning_rate``, ``momentum``, ``wd``,
            ``clip_gradient``, ``lr_scheduler``, ...

    Raises:
        TypeError: ``symbol`` is not a Symbol, or an optimizer argument is unknown.
        ValueError: ``arg_params``/``aux_params`` name unknown parameters.
    """

    def __init__(self, symbol, ctx=None, num_epoch=None, epoch_size=None, optimizer="sgd",
                 initializer=mx_init.Uniform(0.01), numpy_batch_size=128, arg_params=None,
                 aux_params=None, allow_extra_params=False, begin_epoch=0, **kwargs):
        if not isinstance(symbol, sym.Symbol):
            raise TypeError(f"FeedForward: 'symbol' must be a Symbol (symbol generators for "
                            f"bucketing are not supported). Received: {type(symbol).__name__}")
        self.symbol = symbol
        if ctx is None:
            ctx = [dk.cpu()]
        elif not isinstance(ctx, (list, tuple)):
            ctx = [ctx]
        self.ctx = [dk.Context(c) for c in ctx]
        self.num_epoch = num_epoch
        self.epoch_size = epoch_size
        self.kwargs = dict(kwargs)
        if isinstance(optimizer, str):
            mx_optimizer.create(optimizer, **{"rescale_grad": 1.0, **self.kwargs})  # check now
        elif not isinstance(optimizer, optimizers_mod.Optimizer):
            raise TypeError(f"FeedForward: 'optimizer' must be a name or an Optimizer. "
                            f"Received: optimizer={optimizer!r}")
        elif self.kwargs:
            raise TypeError(f"FeedForward: optimizer arguments {sorted(self.kwargs)} are only "
                            "used with an optimizer name; set them on the optimizer object")
        self.optimizer = optimizer
        self.initializer = mx_init.create(initializer)
        self.numpy_batch_size = int(numpy_batch_size)
        self.allow_extra_params = bool(allow_extra_params)
        self.begin_epoch = int(begin_epoch)
        self._arg_params = self._checked(arg_params, symbol.list_arguments(), "arg_params")
        self._aux_params = self._checked(aux_params, symbol.list_auxiliary_states(),
                                         "aux_params")
        self._net = None
        self._net_key = None
        self._label_names = []

    def _checked(self, params, names, what):
        params = dict(params or {})
        extra = [k for k in params if k not in names]
        if extra and not self.allow_extra_params:
            raise ValueError(f"FeedForward: {what} has {extra}, which the symbol does not have "
                             f"(it has {names}); pass allow_extra_params=True to ignore them")
        return {k: v for k, v in params.items() if k in names}

    @property
    def _ctx(self):
        return self.ctx[0]

    # -- parameters --------------------------------------------------------------------
    def _param_dict(self, aux):
        if self._net is None:
            return dict(self._aux_params if aux else self._arg_params)
        return {p.name: p.data for p in self._net.weights if p.aux == aux and p.data is not None}

    @property
    def arg_params(self):
        """``{name: NDArray}`` of the parameters (the live arrays once built)."""
        return self._param_dict(False)

    @arg_params.setter
    def arg_params(self, value):
        self._arg_params = self._checked(value, self.symbol.list_arguments(), "arg_params")
        self._copy_into_net(self._arg_params)

    @property
    def aux_params(self):
        """``{name: NDArray}`` of the auxiliary states (BatchNorm's moving statistics)."""
        return self._param_dict(True)

    @aux_params.setter
    def aux_params(self, value):
        self._aux_params = self._checked(value, self.symbol.list_auxiliary_states(),
                                         "aux_params")
        self._copy_into_net(self._aux_params)

    def _copy_into_net(self, values):
        if self._net is None:
            return
        for p in self._net.weights:
            if p.name in values:
                p.initialize(self._ctx)
                p.data[:] = _host(values[p.name]).astype(p.dtype)

    def _is_input(self, name, provided):
        return name in provided or name in self._label_names \
            or name.endswith("data") or name.endswith("label")

    def _network(self, it, labels):
        """The Model for the data shapes of iterator ``it`` (built or reused)."""
        descs = list(it.provide_data)
        args = self.symbol.list_arguments()
        for d in descs:
            if d.name not in args:
                raise ValueError(f"FeedForward: the data iterator provides '{d.name}' but the "
                                 f"symbol has no such argument; its arguments are {args}")
        if labels is not None:
            self._label_names = [d.name for d in labels]
        key = tuple((d.name, tuple(d.shape[1:])) for d in descs)
        if self._net is None or key != self._net_key:
            params = self._make_params(descs, it)
            self._net = _FeedForwardNet(self.symbol, descs, params)
            self._net_key = key
        if labels is not None:
            self._net.set_labels(self._label_names)
        return self._net

    def _make_params(self, descs, it):
        shapes = {d.name: tuple(d.shape) for d in descs}
        for d in getattr(it, "provide_label", None) or []:
            if d.name in self.symbol.list_arguments():
                shapes[d.name] = tuple(d.shape)
        arg_shapes, _, aux_shapes = self.symbol.infer_shape_known(**shapes)
        attrs = self.symbol.attr_dict()
        current = {p.name: p for p in self._net.weights} if self._net is not None else {}
        params, missing = [], []
        for aux, names, found in ((False, self.symbol.list_arguments(), arg_shapes),
                                  (True, self.symbol.list_auxiliary_states(), aux_shapes)):
            for name, shape in zip(names, found):
                if not aux and self._is_input(name, shapes):
                    continue
                if shape is None:
                    missing.append(name)
                    continue
                params.append(self._make_param(name, shape, attrs.get(name, {}), aux,
                                               current.get(name)))
        if missing:
            raise DeepkitError(f"FeedForward: cannot infer the shapes of {missing} from the data "
                               f"shapes {shapes}; check the data iterator's provide_data")
        return params

    def _make_param(self, name, shape, attrs, aux, previous):
        decays = name.endswith("_weight") or name.endswith("_gamma")
        lr_mult = float(attrs.get("__lr_mult__", 1.0))
        wd_mult = float(attrs.get("__wd_mult__", 1.0 if decays else 0.0))
        given = (self._aux_params if aux else self._arg_params).get(name)
        value = None
        if given is not None:
            value = _host(given)
            if tuple(value.shape) != tuple(shape):
                raise ValueError(f"FeedForward: {'aux' if aux else 'arg'}_params['{name}'] has "
                                 f"shape {tuple(value.shape)} but the symbol needs "
                                 f"{tuple(shape)} for these data shapes")
        desc = mx_init.InitDesc(name, attrs, self.initializer)
        initializer = self.initializer

        def init(shape, dtype, rng):
            if value is not None:
                return value.astype(dtype)
            return initializer.generate(desc, shape, dtype, rng)

        param = SymbolParameter(None, name, shape, init, lr_mult, wd_mult, aux)
        if previous is not None and previous.data is not None:
            if previous.shape != param.shape:
                raise ValueError(f"FeedForward: parameter '{name}' has shape {previous.shape} "
                                 f"but these data shapes need {param.shape}")
            param.data = previous.data
        return param

    # -- data ------------------------------------------------------------------------------
    def _io_names(self):
        args = self.symbol.list_arguments()
        data = [a for a in args if a.endswith("data")]
        labels = [a for a in args if a.endswith("label")]
        return (data[0] if len(data) == 1 else "data",
                labels[0] if len(labels) == 1 else "softmax_label")

    def _init_iter(self, X, y, is_train):
        """A DataIter for ``X`` (numpy arrays are wrapped in an NDArrayIter, as MXNet does)."""
        if isinstance(X, (np.ndarray, dk.NDArray)):
            if y is None:
                if is_train:
                    raise ValueError("y must be specified when X is numpy.ndarray: give the "
                                     "labels, one per sample, as fit(X, y)")
                y = np.zeros(X.shape[0], np.float32)
            if not isinstance(y, (np.ndarray, dk.NDArray)):
                raise TypeError(f"y must be ndarray when X is numpy.ndarray, got "
                                f"{type(y).__name__}")
            if X.shape[0] != y.shape[0]:
                raise ValueError(f"The numbers of data points and labels not equal: X has "
                                 f"{X.shape[0]} samples, y has {y.shape[0]}")
            y = _host(y)
            if y.ndim == 2 and y.shape[1] == 1:
                y = y.flatten()
            if y.ndim != 1:
                raise ValueError(f"Label must be 1D or 2D (with 2nd dimension being 1), got "
                                 f"shape {y.shape}")
            data_name, label_name = self._io_names()
            batch_size = min(int(X.shape[0]), self.numpy_batch_size)
            if is_train:
                return dk_io.NDArrayIter(X, y, batch_size, shuffle=True,
                                         last_batch_handle="roll_over", data_name=data_name,
                                         label_name=label_name)
            return dk_io.NDArrayIter(X, y, batch_size, shuffle=False, data_name=data_name,
                                     label_name=label_name)
        if not (hasattr(X, "provide_data") and hasattr(X, "reset")):
            raise TypeError(f"X must be DataIter, NDArray or numpy.ndarray, got "
                            f"{type(X).__name__}")
        return X

    def _init_eval_iter(self, eval_data):
        if eval_data is None:
            return None
        if isinstance(eval_data, (tuple, list)) and len(eval_data) == 2:
            data, label = eval_data
            if data is None:
                raise ValueError("Eval data is NONE")
            if label is None and hasattr(data, "provide_data"):
                return data
            data = np.array(data) if isinstance(data, list) else data
            label = np.array(label) if isinstance(label, list) else label
            if label is None:
                raise ValueError("eval_data=(X, y) needs the labels y")
            return self._init_iter(data, label, is_train=False)
        if not hasattr(eval_data, "provide_data"):
            raise TypeError("Eval data must be DataIter, or NDArray/numpy.ndarray/list pair "
                            "(i.e. tuple/list of length 2)")
        return eval_data

    @staticmethod
    def _batch_size(it):
        size = getattr(it, "batch_size", None)
        return int(size) if size else int(it.provide_data[0].shape[0])

    # -- training ----------------------------------------------------------------------
    def fit(self, X, y=None, eval_data=None, eval_metric="acc", epoch_end_callback=None,
            batch_end_callback=None, kvstore="local", logger=None, work_load_list=None,
            monitor=None, eval_end_callback=None, eval_batch_end_callback=None, callbacks=None):
        """Train for the epochs ``begin_epoch .. num_epoch - 1``.

        Args:
            X: A DataIter, or a numpy array/NDArray of samples (with ``y``).
            y: Labels when ``X`` is an array (1-D, or 2-D with one column).
            eval_data: A DataIter or ``(X, y)`` evaluated after each epoch.
            eval_metric: An ``mx.metric`` metric, its name (``'acc'``, ``'ce'``,
                ...), a function ``feval(label, pred)`` or a list of these.
            epoch_end_callback: ``callback(epoch, symbol, arg_params, aux_params)``
                or a list of them (``mx.callback.do_checkpoint(prefix)``).
            batch_end_callback: ``callback(BatchEndParam)`` or a list of them
                (``mx.callback.Speedometer(batch_size, 50)``).
            kvstore: ``'local'``/``'device'`` (the contexts of ``ctx``), or
                ``'dist_sync'``/``'dist_sync_device'``/``'dist_async'`` (MPI
                processes started by ``mpirun``), or a KVStore of those types.
                ``'dist_async'`` updates on the parameter server (one context
                per process; an ``mx.optimizer`` optimizer); at the end every
                process holds the server's final weights.
            logger: Where the epoch lines go (default: the ``deepkit.compat.feedforward``
                logger, shown even when logging is not configured).
            work_load_list, monitor, eval_end_callback, eval_batch_end_callback:
                Accepted for compatibility; not used.
            callbacks: deepkit/Keras callbacks (``EarlyStopping`` ...), run by
                ``Model.fit`` alongside.

        Returns:
            FeedForward: ``self``.
        """
        if self.num_epoch is None:
            raise ValueError("FeedForward.fit: num_epoch is not set; create the model with "
                             "FeedForward(symbol, num_epoch=N, ...)")
        data = self._init_iter(X, y, is_train=True)
        eval_iter = self._init_eval_iter(eval_data)
        if not data.provide_label:
            raise ValueError("FeedForward.fit: the training data has no labels; give an "
                             "iterator with labels (NDArrayIter(data, label, ...)) or fit(X, y)")
        net = self._network(data, data.provide_label)
        metric = mx_metric.create(eval_metric)
        net.use_metric(metric)
        net.optimizer = self._optimizer(self._batch_size(data) * kvstore_workers(kvstore))
        net.async_update = make_async_update(kvstore, net.optimizer, self.ctx, "FeedForward.fit")
        hooks = _MXNetHooks(self, metric, batch_end_callback, epoch_end_callback,
                            logger or _logger(), eval_iter is not None)
        source = dk_io.ResizeIter(data, int(self.epoch_size), reset_internal=False) \
            if self.epoch_size else data
        net.fit(source, epochs=int(self.num_epoch), verbose=0, initial_epoch=self.begin_epoch,
                callbacks=[hooks] + _as_list(callbacks), validation_data=eval_iter,
                shuffle=False, batch_size=self._batch_size(data),
                ctx=self.ctx if len(self.ctx) > 1 else self._ctx)
        if net.async_update is not None:
            net.async_update.finish(net)
            net.async_update.close()
            net.async_update = None
        return self

    def _optimizer(self, batch_size):
        if isinstance(self.optimizer, str):
            return mx_optimizer.create(self.optimizer,
                                       **{"rescale_grad": 1.0 / batch_size, **self.kwargs})
        return self.optimizer

    # -- inference ---------------------------------------------------------------------
    def _batches(self, X, num_batch, reset):
        """``(n real samples, outputs, batch)`` for each batch of ``X`` in inference mode."""
        net = self._network(X, None)
        cache = net.executors(self._ctx)
        names = [d.name for d in X.provide_data]
        if reset:
            X.reset()
        for i, batch in enumerate(X):
            if num_batch is not None and i == num_batch:
                break
            n = int(batch.data[0].shape[0]) - int(batch.pad or 0)
            exe = cache.executor("predict", n)
            cache.feed(exe, {name: _host(a)[:n] for name, a in zip(names, batch.data)})
            yield n, exe.forward(is_train=False), batch

    def predict(self, X, num_batch=None, return_data=False, reset=True):
        """The outputs for every sample of ``X`` (filler samples of padded batches removed).

        Args:
            X: A DataIter, or a numpy array/NDArray of samples.
            num_batch: Stop after this many batches (None: all).
            return_data: Also return the data and labels, in the same order.
            reset: Reset ``X`` first.

        Returns:
            A numpy array (a list of them for several outputs), or
            ``(outputs, data, label)`` with ``return_data``.
        """
        X = self._init_iter(X, None, is_train=False)
        outputs = data = labels = None
        for n, outs, batch in self._batches(X, num_batch, reset):
            if outputs is None:
                outputs = [[] for _ in outs]
                data = [[] for _ in batch.data]
                labels = [[] for _ in batch.label or []]
            for chunks, out in zip(outputs, outs):
                chunks.append(out.copy())
            if return_data:
                for chunks, array in zip(data, batch.data):
                    chunks.append(_host(array)[:n])
                for chunks, array in zip(labels, batch.label or []):
                    chunks.append(_host(array)[:n])
        if outputs is None:
            raise ValueError("FeedForward.predict: the data iterator gave no batch")
        results = [np.concatenate([c.asnumpy() for c in chunks]) for chunks in outputs]
        results = results[0] if len(results) == 1 else results
        if not return_data:
            return results
        data = [np.concatenate(c) for c in data]
        labels = [np.concatenate(c) for c in labels]
        return (results, data[0] if len(data) == 1 else data,
                labels[0] if len(labels) == 1 else labels)

    def score(self, X, eval_metric="acc", num_batch=None, batch_end_callback=None, reset=True):
        """Evaluate ``eval_metric`` on ``X`` (filler samples of padded batches left out).

        Args:
            X: A DataIter with labels.
            eval_metric: A metric object (updated, not reset: read it afterwards
                too), a name or a function.
            num_batch: Stop after this many batches (None: all).
            batch_end_callback: ``callback(BatchEndParam)`` after each batch.
            reset: Reset ``X`` first.

        Returns:
            The metric's value (a list for composite metrics).
        """
        metric = mx_metric.create(eval_metric)
        X = self._init_iter(X, None, is_train=False)
        if not X.provide_label:
            raise ValueError("FeedForward.score: the data iterator has no labels to score "
                             "against; give NDArrayIter(data, label, ...)")
        for i, (n, outs, batch) in enumerate(self._batches(X, num_batch, reset)):
            labels = [lab if lab.shape[0] == n else lab[0:n] for lab in batch.label]
            metric.update(labels, outs)
            for callback in _as_list(batch_end_callback):
                callback(BatchEndParam(epoch=0, nbatch=i, eval_metric=metric,
                                       locals={"self": self}))
        return metric.get()[1]

    # -- saving ------------------------------------------------------------------------
    def save(self, prefix, epoch=None):
        """Write ``prefix-symbol.json`` and ``prefix-%04d.params`` (epoch default: num_epoch)."""
        if epoch is None:
            epoch = self.num_epoch
        if epoch is None:
            raise ValueError("FeedForward.save: give the epoch number (num_epoch is not set)")
        save_checkpoint(prefix, epoch, self.symbol, self.arg_params, self.aux_params)

    @staticmethod
    def load(prefix, epoch, ctx=None, **kwargs):
        """A FeedForward from a checkpoint, ready to predict or to resume at ``epoch``.

        Args:
            prefix, epoch: As given to :meth:`save`.
            ctx: The device(s).
            **kwargs: Other FeedForward arguments (``num_epoch``, optimizer settings, ...).
        """
        symbol, arg_params, aux_params = load_checkpoint(prefix, epoch)
        return FeedForward(symbol, ctx=ctx, arg_params=arg_params, aux_params=aux_params,
                           begin_epoch=epoch, **kwargs)

    @staticmethod
    def create(symbol, X, y=None, ctx=None, num_epoch=None, epoch_size=None, optimizer="sgd",
               initializer=mx_init.Uniform(0.01), eval_data=None, eval_metric="acc",
               epoch_end_callback=None, batch_end_callback=None, kvstore="local", logger=None,
               work_load_list=None, eval_end_callback=None, eval_batch_end_callback=None,
               **kwargs):
        """Make a FeedForward and fit it in one call (MXNet's ``FeedForward.create``).

        Returns:
            FeedForward: The trained model.
        """
        model = FeedForward(symbol, ctx=ctx, num_epoch=num_epoch, epoch_size=epoch_size,
                            optimizer=optimizer, initializer=initializer, **kwargs)
        model.fit(X, y, eval_data=eval_data, eval_metric=eval_metric,
                  epoch_end_callback=epoch_end_callback, batch_end_callback=batch_end_callback,
                  kvstore=kvstore, logger=logger, work_load_list=work_load_list,
                  eval_end_callback=eval_end_callback,
                  eval_batch_end_callback=eval_batch_end_callback)
        return model
