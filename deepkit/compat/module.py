"""MXNet 1.x's ``mx.mod.Module`` on deepkit's trainer: the intermediate-level training API.

``Module(symbol, data_names, label_names)`` holds a symbol whose loss heads
(``SoftmaxOutput`` ...) give the gradients. It is a thin front over the same
machinery as ``Model.fit``: the symbol becomes a
:class:`~deepkit.models.SymbolModel`, its executors come from that model's
:class:`~deepkit.trainer.ExecutorCache` (one per batch size, sharing the
parameter and gradient arrays), and :meth:`Module.fit` runs the one training
loop (``Model.fit``) with MXNet's callbacks and log lines.

MXNet's step-by-step API works on those executors::

    mod.bind(data_shapes=it.provide_data, label_shapes=it.provide_label)
    mod.init_params(mx.init.Xavier())
    mod.init_optimizer(optimizer='sgd', optimizer_params={'learning_rate': 0.1})
    for batch in it:
        mod.forward(batch, is_train=True)
        mod.backward()
        mod.update()
        mod.update_metric(metric, batch.label)

MXNet's defaults hold: ``init_params`` uses ``Uniform(0.01)``,
``init_optimizer`` gives string-named optimizers ``rescale_grad =
1 / batch_size`` (loss heads give the gradient of the *summed* loss), a batch
of another size binds (or reuses) an executor of that size, and parameters
not ending in ``_weight``/``_gamma`` get no weight decay.

As in MXNet, training computes no loss besides the metric: the training
program is the symbol alone (FeedForward's adds a monitoring loss), and
``fit`` does not scan the batches for NaN.

Several contexts (``context=[cpu(0), cpu(1)]``) make ``fit`` and the
step-by-step API data parallel, as MXNet's ``DataParallelExecutorGroup``:
``forward`` splits each batch over the contexts (MXNet's rows per context,
weighted by ``work_load_list``), each context runs its part on its own copy
of the parameters (the first context holds the parameters themselves), and
``update`` adds the contexts' gradients up before one optimizer step, as
MXNet's ``kvstore='local'``/``'device'`` do (the optimizer's ``rescale_grad``
then scales the sum). ``get_outputs``/``get_input_grads`` join the parts
(``merge_multi_context=True``) or give them per context. Auxiliary states
(BatchNorm's moving statistics) are averaged over the contexts after each
training forward pass. ``kvstore='dist_sync'`` under ``mpirun`` trains over
MPI, each process on its own iterator's batches (:mod:`deepkit.distributed`).
``kvstore='dist_async'`` updates on MXNet's asynchronous parameter server (a
thread of rank 0): ``update`` pushes the gradients, the server applies the
optimizer to each push at once, and the weights are pulled back, without
waiting for the other processes (one context per process).

Differences from MXNet: ``score``/``predict`` leave out the filler samples of
a padded last batch; optimizer states are saved in MXNet's NDArray format
(MXNet pickles them), so they load only into deepkit; loss heads that divide
by the batch (``normalization='batch'``) have their contexts' gradients
weighted by each context's share of the batch, so that several contexts
train exactly as one (MXNet adds them up).
"""
import logging
import time
import warnings

import numpy as np

import deepkit_engine as dk
from deepkit_engine import io as dk_io
from deepkit_engine import nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import DeepkitError

from .. import optimizers as optimizers_mod
from ..models.symbol_model import SymbolParameter
from ..trainer.parallel import DataParallel, ExecutorGroup
from . import mx_format, mx_init, mx_metric, mx_nd, mx_optimizer
from .feedforward import (BatchEndParam, _as_list, _FeedForwardNet, _host, _logger,
                          _MXNetHooks, kvstore_workers, load_checkpoint, make_async_update,
                          save_checkpoint)

__all__ = ["Module", "BaseModule"]


def _descs(shapes, what):
    """``[DataDesc]`` from DataDescs or ``(name, shape)`` pairs (None: no inputs)."""
    if shapes is None:
        return []
    descs = []
    for item in shapes:
        if isinstance(item, dk_io.DataDesc):
            descs.append(item)
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            descs.append(dk_io.DataDesc(item[0], item[1]))
        else:
            raise TypeError(f"Module.bind: each entry of {what} must be a DataDesc or a "
                            f"(name, shape) pair, got {item!r}")
    return descs


def _copy_into(target, value, name):
    value = _host(value)
    if tuple(value.shape) != tuple(target.shape):
        raise ValueError(f"Module: parameter '{name}' has shape {tuple(target.shape)} in the "
                         f"bound module but the given value has shape {tuple(value.shape)}")
    target[:] = value.astype(target.dtype, copy=False)


def _split_input_slice(batch_size, work_load_list):
    """MXNet's split of a batch over contexts: consecutive row slices, sized by work load.

    Each context gets ``round(work_load * batch_size / total)`` rows (Python's
    rounding); the last one takes what rounding left over.

    Raises:
        ValueError: A context would get no rows (more contexts than rows).
    """
    total = sum(work_load_list)
    sizes = [round(load * batch_size / total) for load in work_load_list]
    if sum(sizes) < batch_size:
        sizes[-1] += batch_size - sum(sizes)
    slices, end = [], 0
    for size in sizes:
        begin = int(min(end, batch_size))
        end = int(min(begin + size, batch_size))
        if begin >= end:
            raise ValueError(f"Module.forward: a batch of {batch_size} rows cannot be split over "
                             f"{len(work_load_list)} contexts with work loads {work_load_list}: "
                             "some would get no rows")
        slices.append(slice(begin, end))
    return slices


def _has_gradients(exe):
    """Whether ``exe`` computes any gradient (a network without parameters computes none)."""
    return any(g is not None for g in exe.grad_dict.values())


class _ContextPart:
    """The module's arrays on one of several contexts, one part of an ExecutorGroup.

    The first context binds the parameters themselves; every other context
    binds copies of them (and of the auxiliary states), refreshed from the
    first before each forward pass (:meth:`pull_weights`). Each context has
    its own gradient arrays and one executor per number of rows.
    """

    def __init__(self, module, ctx, primary):
        self.module, self.ctx, self.primary = module, ctx, primary
        self.copies, self.grads, self.execs = {}, {}, {}

    def value(self, param):
        """The array bound for ``param`` on this context."""
        data = param.initialize(self.module._ctx)
        if self.primary:
            return data
        copy = self.copies.get(param.name)
        if copy is None or copy.shape != data.shape:
            copy = self.copies[param.name] = data.copyto(self.ctx)
        return copy

    def pull_weights(self):
        """Copy the first context's current parameters and states into this one's copies."""
        if not self.primary:
            by_name = {p.name: p for p in self.module._net.weights}
            for name, copy in self.copies.items():
                by_name[name].data.copyto(copy)

    def gradients(self, exe):
        """``[(parameter, gradient)]`` of ``exe``, in the module's parameter order."""
        grads = exe.grad_dict
        return [(p, grads[p.name]) for p in self.module._params(False)
                if grads.get(p.name) is not None]


class Module:
    """A symbol bound for training and inference, with MXNet 1.x's Module API.

    Args:
        symbol: The network (ending in loss heads for training).
        data_names: The symbol's input variables, in the order of the batches' ``data``.
        label_names: Its label variables, in the order of the batches' ``label``.
        logger: Where ``fit`` logs (default: the ``deepkit.feedforward`` logger).
        context: A Context or a list of them (``fit`` and ``forward``/``backward``/
            ``update`` are data parallel over the list).
        work_load_list: The share of each batch each context gets (default: equal).
        state_names, group2ctxs, compression_params: Accepted for compatibility;
            not used.
        fixed_param_names: Parameters that are not updated (no gradient).

    Raises:
        TypeError: ``symbol`` is not a Symbol.
        ValueError: A data name is not an argument of the symbol.
    """

    def __init__(self, symbol, data_names=("data",), label_names=("softmax_label",),
                 logger=logging, context=None, work_load_list=None, fixed_param_names=None,
                 state_names=None, group2ctxs=None, compression_params=None):
        if not isinstance(symbol, sym.Symbol):
            raise TypeError(f"Module: 'symbol' must be a Symbol, got {type(symbol).__name__}")
        self._symbol = symbol
        args = symbol.list_arguments()
        self._data_names = list(data_names or [])
        self._label_names = [n for n in (label_names or []) if n in args]
        for name in self._data_names:
            if name not in args:
                raise ValueError(f"Module: data name '{name}' is not an argument of the symbol; "
                                 f"its arguments are {args}")
        missing_labels = [n for n in (label_names or []) if n not in args]
        if missing_labels:
            warnings.warn(f"Module: label names {missing_labels} are not arguments of the "
                          "symbol; they are ignored", stacklevel=2)
        self._state_names = list(state_names or [])
        inputs = set(self._data_names) | set(self._label_names) | set(self._state_names)
        self._param_names = [n for n in args if n not in inputs]
        self._aux_names = symbol.list_auxiliary_states()
        self._fixed_param_names = list(fixed_param_names or [])
        unknown = [n for n in self._fixed_param_names if n not in self._param_names]
        if unknown:
            raise ValueError(f"Module: fixed_param_names {unknown} are not parameters of the "
                             f"symbol; its parameters are {self._param_names}")
        if context is None:
            context = [dk.cpu()]
        elif not isinstance(context, (list, tuple)):
            context = [context]
        self._context = [dk.Context(c) for c in context]
        if len(set(self._context)) != len(self._context):
            raise ValueError(f"Module: context lists a device twice: {self._context}")
        if work_load_list is None:
            work_load_list = [1] * len(self._context)
        if len(work_load_list) != len(self._context):
            raise ValueError(f"Module: work_load_list has {len(work_load_list)} entries but "
                             f"there are {len(self._context)} contexts: one per context")
        self._work_load_list = list(work_load_list)
        self.logger = logger if logger is not logging else _logger()
        self.binded = self.params_initialized = self.optimizer_initialized = False
        self.for_training = self.inputs_need_grad = False
        self._grad_req = "write"
        self._net = None
        self._data_shapes, self._label_shapes = [], []
        self._arg_params, self._aux_params = None, None  # values waiting for bind
        self._optimizer = None
        self._async = None   # kvstore='dist_async': the update on the parameter server
        self._exec = None
        self._own_execs, self._own_grads = {}, {}
        self._parts, self._group, self._plan = {}, None, None
        self._monitor = None
        self._preload_states = None

    # -- properties ------------------------------------------------------------------------
    @property
    def symbol(self):
        """The network."""
        return self._symbol

    @property
    def data_names(self):
        return list(self._data_names)

    @property
    def label_names(self):
        return list(self._label_names)

    @property
    def output_names(self):
        return self._symbol.list_outputs()

    @property
    def data_shapes(self):
        """The bound ``[DataDesc]`` of the data."""
        self._require("binded", "data_shapes")
        return list(self._data_shapes)

    @property
    def label_shapes(self):
        """The bound ``[DataDesc]`` of the labels (empty without labels)."""
        self._require("binded", "label_shapes")
        return list(self._label_shapes)

    @property
    def output_shapes(self):
        """``[(output name, shape)]`` for the bound shapes."""
        self._require("binded", "output_shapes")
        shapes = {d.name: d.shape for d in self._data_shapes + self._label_shapes}
        _, out_shapes, _ = self._symbol.infer_shape_known(**shapes)
        return list(zip(self.output_names, out_shapes))

    @property
    def _ctx(self):
        return self._context[0]

    def _require(self, flag, what):
        if not getattr(self, flag):
            step = {"binded": "bind()", "params_initialized": "init_params()",
                    "optimizer_initialized": "init_optimizer()"}[flag]
            raise DeepkitError(f"Module.{what}: call {step} first")

    # -- binding ---------------------------------------------------------------------------
    def bind(self, data_shapes, label_shapes=None, for_training=True, inputs_need_grad=False,
             force_rebind=False, shared_module=None, grad_req="write"):
        """Prepare the module for ``data_shapes`` (executors are bound per batch size on use).

        Args:
            data_shapes: ``[DataDesc]`` or ``[(name, shape)]`` (``it.provide_data``).
            label_shapes: The same for the labels (None: no labels, inference only).
            for_training: Whether gradients will be computed.
            inputs_need_grad: Also compute the gradients of the data (``get_input_grads``).
            force_rebind: Rebind even if already bound.
            shared_module: A bound Module whose parameter arrays this one uses.
            grad_req: ``'write'``, ``'add'``, ``'null'``, or per argument (list or dict).
        """
        if self.binded and not force_rebind:
            self.logger.warning("Already bound, ignoring bind()")
            return
        descs = _descs(data_shapes, "data_shapes")
        labels = _descs(label_shapes, "label_shapes")
        if [d.name for d in descs] != self._data_names:
            raise ValueError(f"Module.bind: data_shapes name {[d.name for d in descs]} but the "
                             f"module's data_names are {self._data_names}")
        labels = [d for d in labels if d.name in self._label_names]
        shapes = {d.name: d.shape for d in descs + labels}
        arg_shapes, _, aux_shapes = self._symbol.infer_shape_known(**shapes)
        known = dict(zip(self._symbol.list_arguments(), arg_shapes))
        known.update(zip(self._aux_names, aux_shapes))
        missing = [n for n in self._param_names + self._aux_names if known.get(n) is None]
        if missing:
            raise DeepkitError(f"Module.bind: cannot infer the shapes of {missing} from "
                               f"{shapes}")
        previous = {}
        if shared_module is not None:
            shared_module._require("binded", "bind(shared_module=...)")
            previous = {p.name: p for p in shared_module._net.weights}
        elif self._net is not None:
            previous = {p.name: p for p in self._net.weights}
        params = []
        attrs = self._symbol.attr_dict()
        for aux, names in ((False, self._param_names), (True, self._aux_names)):
            for name in names:
                shape = tuple(known[name])
                old = previous.get(name)
                if old is not None and old.shape == shape and shared_module is not None:
                    params.append(old)
                    continue
                params.append(self._make_param(name, shape, attrs.get(name, {}), aux))
                if old is not None and old.data is not None and old.shape == shape:
                    params[-1].data = old.data
        net = _FeedForwardNet(self._symbol, descs, params, track_loss=False)
        if labels:
            net.set_labels([d.name for d in labels])
        self._net = net
        self._data_shapes, self._label_shapes = descs, labels
        self.for_training = bool(for_training)
        self.inputs_need_grad = bool(inputs_need_grad)
        self._grad_req = grad_req
        self._own_execs, self._own_grads = {}, {}
        self._exec = self._group = None
        if len(self._context) > 1:
            self._parts = {ctx: _ContextPart(self, ctx, k == 0)
                           for k, ctx in enumerate(self._context)}
            self._plan = DataParallel(self._context)
            # as in fit: 'sum' (the parts are added) for MXNet's loss heads, which give
            # gradients summed over the rows; 'mean' when every head divides by the batch
            self._plan.gradient_reduction = net.gradient_reduction
        self.binded = True
        if self._optimizer is not None:
            net.optimizer = self._optimizer
        net.async_update = self._async
        if self.params_initialized and self._arg_params is not None:
            self._write_params(self._arg_params, self._aux_params or {}, allow_missing=True)
        elif shared_module is not None and shared_module.params_initialized:
            self.params_initialized = True

    def reshape(self, data_shapes, label_shapes=None):
        """Bind for new input shapes, keeping the parameters and the optimizer.

        A new batch size alone needs nothing (executors are bound per batch
        size); new sample shapes bind again.

        Args:
            data_shapes: ``[DataDesc]`` or ``[(name, shape)]``.
            label_shapes: The same for the labels.
        """
        self._require("binded", "reshape")
        descs = _descs(data_shapes, "data_shapes")
        labels = [d for d in _descs(label_shapes, "label_shapes") if d.name in self._label_names]
        same_samples = [d.name for d in descs] == [d.name for d in self._data_shapes] and all(
            tuple(d.shape[1:]) == tuple(old.shape[1:])
            for d, old in zip(descs + labels, self._data_shapes + self._label_shapes))
        if same_samples and len(labels) == len(self._label_shapes):
            self._data_shapes, self._label_shapes = descs, labels
            return
        self._check_reshape(descs, labels)
        initialized = self.params_initialized
        self.bind(descs, labels or None, for_training=self.for_training,
                  inputs_need_grad=self.inputs_need_grad, force_rebind=True,
                  grad_req=self._grad_req)
        self.params_initialized = initialized

    def _check_reshape(self, descs, labels):
        """Refuse new input shapes that would change a parameter's shape (as MXNet does)."""
        shapes = {d.name: d.shape for d in descs + labels}
        arg_shapes, _, aux_shapes = self._symbol.infer_shape_known(**shapes)
        known = dict(zip(self._symbol.list_arguments(), arg_shapes))
        known.update(zip(self._aux_names, aux_shapes))
        for param in self._net.weights:
            need = known.get(param.name)
            if need is not None and tuple(need) != tuple(param.shape):
                bound = "; ".join(f"shape {tuple(d.shape[1:])} ('{d.name}')"
                                  for d in self._data_shapes)
                given = ", ".join(f"'{d.name}' {tuple(d.shape)}" for d in descs)
                raise ValueError(f"Module.reshape: inputs {given} would need parameter "
                                 f"'{param.name}' of shape {tuple(need)}, but it has shape "
                                 f"{tuple(param.shape)}: the module is bound for samples of "
                                 f"{bound}")

    def _make_param(self, name, shape, attrs, aux):
        decays = name.endswith("_weight") or name.endswith("_gamma")
        lr_mult = float(attrs.get("__lr_mult__", 1.0))
        wd_mult = float(attrs.get("__wd_mult__", 1.0 if decays else 0.0))

        def zeros(shape, dtype, rng):
            return np.zeros(shape, dtype)

        param = SymbolParameter(None, name, shape, zeros, lr_mult, wd_mult, aux)
        if name in self._fixed_param_names:
            param.trainable = False
        return param

    def _params(self, aux):
        return [p for p in self._net.weights if p.aux == aux]

    # -- parameters ------------------------------------------------------------------------
    def init_params(self, initializer=mx_init.Uniform(0.01), arg_params=None, aux_params=None,
                    allow_missing=False, force_init=False, allow_extra=False):
        """Give every parameter a value: from ``arg_params``/``aux_params``, else the initializer.

        Args:
            initializer: An ``mx.init`` initializer (or name); None: leave the others as they are.
            arg_params, aux_params: ``{name: NDArray or numpy array}``.
            allow_missing: Initialize names missing from ``arg_params``/``aux_params``
                (otherwise they are an error).
            force_init: Initialize even if already initialized.
            allow_extra: Ignore names the symbol does not have (otherwise an error).

        Raises:
            RuntimeError: A parameter is missing from the given values.
            ValueError: An unknown name (without ``allow_extra``) or a wrong shape.
        """
        if self.params_initialized and not force_init:
            warnings.warn("Parameters already initialized and force_init=False. init_params "
                          "call ignored.", stacklevel=2)
            return
        self._require("binded", "init_params")
        if not allow_missing:  # as MXNet: a missing name is reported before an extra one
            for given, names in ((arg_params, self._param_names), (aux_params, self._aux_names)):
                missing = [n for n in names if given is not None and n not in given]
                if missing:
                    raise RuntimeError(f"{missing[0]} is not presented")
        for given, names, what in ((arg_params, self._param_names, "arg_params"),
                                   (aux_params, self._aux_names, "aux_params")):
            extra = [k for k in (given or {}) if k not in names]
            if extra and not allow_extra:
                raise ValueError(f"Module.init_params: {what} has {extra}, which the symbol "
                                 f"does not have; pass allow_extra=True to ignore them")
        initializer = None if initializer is None else mx_init.create(initializer)
        attrs = self._symbol.attr_dict()
        for param in self._net.weights:
            given = aux_params if param.aux else arg_params
            param.initialize(self._ctx)
            if given is not None and param.name in given:
                _copy_into(param.data, given[param.name], param.name)
                continue
            if given is not None and not allow_missing:
                raise RuntimeError(f"{param.name} is not presented")
            if initializer is not None:
                desc = mx_init.InitDesc(param.name, attrs.get(param.name, {}), initializer)
                param.data[:] = initializer.generate(desc, param.shape, param.dtype)
        self.params_initialized = True
        self._arg_params = self._aux_params = None

    def set_params(self, arg_params, aux_params=None, allow_missing=False, force_init=True,
                   allow_extra=False):
        """Copy parameter values in (MXNet: ``init_params`` without an initializer)."""
        if not self.binded:
            self._arg_params, self._aux_params = dict(arg_params), dict(aux_params or {})
            self.params_initialized = True
            return
        self.init_params(initializer=None, arg_params=arg_params, aux_params=aux_params or {},
                         allow_missing=allow_missing, force_init=force_init,
                         allow_extra=allow_extra)

    def _write_params(self, arg_params, aux_params, allow_missing):
        for param in self._net.weights:
            given = aux_params if param.aux else arg_params
            param.initialize(self._ctx)
            if param.name in given:
                _copy_into(param.data, given[param.name], param.name)
            elif not allow_missing:
                raise RuntimeError(f"{param.name} is not presented")
        self._arg_params = self._aux_params = None

    def get_params(self):
        """``(arg_params, aux_params)``: copies of the current values as NDArrays."""
        self._require("params_initialized", "get_params")
        if not self.binded:
            return dict(self._arg_params), dict(self._aux_params)
        arg = {p.name: p.data.copy() for p in self._params(False)}
        aux = {p.name: p.data.copy() for p in self._params(True)}
        return arg, aux

    @property
    def arg_params(self):
        """The current argument parameters (what epoch-end callbacks receive)."""
        return self.get_params()[0]

    @property
    def aux_params(self):
        """The current auxiliary states."""
        return self.get_params()[1]

    def save_params(self, fname):
        """Write the parameters in MXNet's format (keys ``arg:<name>``, ``aux:<name>``)."""
        arg, aux = self.get_params()
        data = {f"arg:{k}": v for k, v in arg.items()}
        data.update({f"aux:{k}": v for k, v in aux.items()})
        mx_format.save(fname, data)

    def load_params(self, fname):
        """Read parameters written by :meth:`save_params` (or by MXNet)."""
        saved = mx_nd.load(fname)
        arg, aux = {}, {}
        for key, value in saved.items():
            kind, _, name = key.partition(":")
            if kind not in ("arg", "aux"):
                raise ValueError(f"Module.load_params: {fname} has the key {key!r}; keys "
                                 "start with 'arg:' or 'aux:'")
            (arg if kind == "arg" else aux)[name] = value
        self.set_params(arg, aux)

    # -- optimizer -------------------------------------------------------------------------
    def init_optimizer(self, kvstore="local", optimizer="sgd",
                       optimizer_params=(("learning_rate", 0.01),), force_init=False):
        """Create the optimizer (a name with ``optimizer_params``, or an optimizer object).

        A name gets ``rescale_grad = 1 / batch_size`` unless ``optimizer_params``
        sets it, as in MXNet.

        Args:
            kvstore: ``'local'``/``'device'`` or a ``'dist_sync'``-style store
                (MPI processes: ``rescale_grad`` then divides by every
                process's batch, as in MXNet), or ``'dist_async'`` (updates on
                the parameter server; ``rescale_grad`` stays ``1 / batch_size``).
            optimizer: A name (``'sgd'``, ``'adam'`` ...) or an optimizer object.
            optimizer_params: Its arguments (dict or pairs).
            force_init: Replace an existing optimizer.
        """
        self._require("binded", "init_optimizer")
        self._require("params_initialized", "init_optimizer")
        if self.optimizer_initialized and not force_init:
            self.logger.warning("optimizer already initialized, ignoring...")
            return
        batch_size = self._data_shapes[0].shape[0] * kvstore_workers(kvstore)
        rescale_grad = 1.0 / batch_size
        if isinstance(optimizer, str):
            params = dict(optimizer_params or {})
            params.setdefault("rescale_grad", rescale_grad)
            idx2name = dict(enumerate(self._param_names))
            optimizer = mx_optimizer.create(optimizer, param_idx2name=idx2name, sym=self._symbol,
                                            **params)
        elif not isinstance(optimizer, optimizers_mod.Optimizer):
            raise TypeError(f"Module.init_optimizer: 'optimizer' must be a name or an "
                            f"Optimizer, got {optimizer!r}")
        elif getattr(optimizer, "rescale_grad", rescale_grad) != rescale_grad:
            warnings.warn(f"Optimizer created manually outside Module but rescale_grad is not "
                          f"normalized to 1.0/batch_size ({optimizer.rescale_grad} vs. "
                          f"{rescale_grad}). Is this intended?", stacklevel=2)
        self._optimizer = optimizer
        self._net.optimizer = optimizer
        self._async = self._net.async_update = make_async_update(
            kvstore, optimizer, self._context, "Module.init_optimizer")
        if self._async is not None:
            self._async.start(self._net)  # every process starts from rank 0's weights
        self.optimizer_initialized = True
        if self._preload_states is not None:
            self.load_optimizer_states(self._preload_states)
            self._preload_states = None

    def borrow_optimizer(self, shared_module):
        """Use the optimizer of another module (same parameters)."""
        shared_module._require("optimizer_initialized", "borrow_optimizer")
        self._optimizer = shared_module._optimizer
        self._net.optimizer = self._optimizer
        self.optimizer_initialized = True

    def save_optimizer_states(self, fname):
        """Save the optimizer's state (MXNet's NDArray format; deepkit reads it back).

        With ``kvstore='dist_async'`` the states live on the parameter server:
        rank 0 saves them in the KVStore's format, as MXNet saves the store's.
        """
        self._require("optimizer_initialized", "save_optimizer_states")
        if self._async is not None:
            self._async.store.save_optimizer_states(fname)
            return
        state = self._optimizer.get_state()
        data = {"iterations": np.array([state["iterations"]], np.int64),
                "micro_step": np.array([state["micro_step"]], np.int64)}
        for name, arrays in state["states"].items():
            for k, a in enumerate(arrays):
                data[f"state:{k}:{name}"] = a
        for name, a in state["accumulators"].items():
            data[f"accumulator:{name}"] = a
        mx_format.save(fname, data)

    def load_optimizer_states(self, fname):
        """Restore what :meth:`save_optimizer_states` wrote (``dist_async``: on rank 0)."""
        self._require("optimizer_initialized", "load_optimizer_states")
        if self._async is not None:
            self._async.store.load_optimizer_states(fname)
            return
        saved = {k: v.asnumpy() for k, v in mx_format.load(fname).items()}
        if "iterations" not in saved:
            raise ValueError(f"Module.load_optimizer_states: {fname} holds no optimizer state "
                             "written by save_optimizer_states")
        states, accumulators = {}, {}
        for key, value in saved.items():
            if key.startswith("state:"):
                _, k, name = key.split(":", 2)
                states.setdefault(name, {})[int(k)] = value
            elif key.startswith("accumulator:"):
                accumulators[key.split(":", 1)[1]] = value
        state = {"iterations": int(saved["iterations"][0]),
                 "micro_step": int(saved["micro_step"][0]),
                 "states": {n: [v[k] for k in sorted(v)] for n, v in states.items()},
                 "accumulators": accumulators}
        self._optimizer.set_state(state, self._net.weights)

    # -- computation -----------------------------------------------------------------------
    def _plain(self):
        """Whether the model's cached executors serve (else the module binds its own)."""
        return not self.inputs_need_grad and self._grad_req == "write"

    def _executor(self, batch_size):
        """``(executor, index of the first symbol output)`` for this batch size."""
        if self._plain():
            cache = self._net.executors(self._ctx)
            if self.for_training:
                return cache.executor("train", batch_size), self._net.output_offset
            return cache.executor("predict", batch_size), 0
        exe = self._own_execs.get(batch_size)
        if exe is None:
            exe = self._own_execs[batch_size] = self._bind_own(batch_size)
        return exe, 0

    def _bind_own(self, batch_size, part=None):
        """An executor of the module's own for ``batch_size`` rows (on ``part``'s context)."""
        ctx = part.ctx if part is not None else self._ctx
        store = part.grads if part is not None else self._own_grads
        shapes = {d.name: (batch_size,) + tuple(d.shape[1:])
                  for d in self._data_shapes + self._label_shapes}
        arg_shapes, _, _ = self._symbol.infer_shape_known(**shapes)
        by_name = {p.name: p for p in self._net.weights}
        names = self._symbol.list_arguments()
        if isinstance(self._grad_req, str):
            reqs = {n: self._grad_req for n in names}
        elif isinstance(self._grad_req, dict):
            reqs = {n: self._grad_req.get(n, "write") for n in names}
        else:
            reqs = dict(zip(names, self._grad_req))
        args, grads = {}, {}
        for name, shape in zip(names, arg_shapes):
            param = by_name.get(name)
            if param is not None:
                args[name] = part.value(param) if part is not None else param.initialize(ctx)
                if not (self.for_training and param.trainable):
                    reqs[name] = "null"
            else:
                args[name] = nd.zeros(shape, ctx=ctx)
                wants = self.inputs_need_grad and name in self._data_names
                if not wants:
                    reqs[name] = "null"
            if reqs[name] != "null":
                grad = store.get(name)
                if grad is None or grad.shape != args[name].shape:
                    grad = nd.zeros(args[name].shape, ctx=ctx)
                    if param is not None:
                        store[name] = grad
                grads[name] = grad
        aux = {p.name: part.value(p) if part is not None else p.initialize(ctx)
               for p in self._params(True)}
        return dk.Executor(self._symbol, ctx, args, grads, reqs, aux)

    def forward(self, data_batch, is_train=None):
        """Run forward on one batch (``DataBatch``); a new batch size binds another executor.

        With several contexts the batch is split over them (MXNet's rows per
        context) and each runs its part.

        Args:
            data_batch: Its ``data`` (and ``label``, if bound with labels) arrays.
            is_train: Training mode; default: ``for_training`` of :meth:`bind`.
        """
        self._require("binded", "forward")
        self._require("params_initialized", "forward")
        if is_train is None:
            is_train = self.for_training
        data = list(data_batch.data)
        if len(data) != len(self._data_names):
            raise ValueError(f"Module.forward: the batch has {len(data)} data arrays, the "
                             f"module's data_names are {self._data_names}")
        batch_size = int(data[0].shape[0])
        labels = list(getattr(data_batch, "label", None) or [])
        if any(tuple(array.shape[1:]) != tuple(desc.shape[1:])
               for array, desc in zip(data, self._data_shapes)):
            # as MXNet: a batch of other sample shapes reshapes the module
            label_shapes = None
            if self._label_shapes:
                label_shapes = [(d.name, tuple(a.shape))
                                for d, a in zip(self._label_shapes, labels)] or None
            self.reshape([(n, tuple(a.shape)) for n, a in zip(self._data_names, data)],
                         label_shapes)
        if self._parts:
            self._forward_parts(data, labels, batch_size, bool(is_train))
            return
        exe, offset = self._executor(batch_size)
        self._feed_batch(exe, data, labels, None)
        if self._monitor is not None:
            self._monitor.install(exe)
        exe.forward(is_train=bool(is_train))
        self._exec, self._offset = exe, offset

    def _feed_batch(self, exe, data, labels, rows):
        """Copy the batch (only ``rows``, a slice, unless None) into ``exe``'s inputs."""
        for name, array in zip(self._data_names, data):
            self._feed(exe, name, array if rows is None else array[rows.start:rows.stop])
        for name, array in zip(self._label_names, labels):
            if name in exe.arg_dict and array is not None:
                self._feed(exe, name, array if rows is None else array[rows.start:rows.stop])

    def _forward_parts(self, data, labels, batch_size, is_train):
        """Forward over several contexts: each runs its rows of the batch (one ExecutorGroup)."""
        parts, self._slices = [], _split_input_slice(batch_size, self._work_load_list)
        for ctx, rows in zip(self._context, self._slices):
            part, size = self._parts[ctx], rows.stop - rows.start
            exe = part.execs.get(size)
            if exe is None:
                exe = part.execs[size] = self._bind_own(size, part)
            self._feed_batch(exe, data, labels, rows)
            if self._monitor is not None:
                self._monitor.install(exe)
            parts.append((part, exe, size))
        self._group = ExecutorGroup(self._plan, parts, batch_size)
        self._group.forward(is_train=is_train)
        self._exec, self._offset = self._group.primary, 0

    @staticmethod
    def _feed(exe, name, array):
        target = exe.arg_dict[name]
        if isinstance(array, dk.NDArray):
            if array.shape != target.shape and array.size == target.size:
                array = array.reshape(target.shape)
            array.copyto(target)
        else:
            target[:] = np.asarray(array).reshape(target.shape)

    def backward(self, out_grads=None):
        """Run backward after :meth:`forward` (loss heads need no ``out_grads``).

        Args:
            out_grads: The gradients of the outputs (NDArray or list), for the
                whole batch; with several contexts each gets its rows.
        """
        self._require("binded", "backward")
        if self._exec is None:
            raise DeepkitError("Module.backward: call forward() first")
        if not self.for_training:
            raise DeepkitError("Module.backward: the module was bound with for_training=False")
        if out_grads is not None:
            out_grads = [out_grads] if isinstance(out_grads, dk.NDArray) else list(out_grads)
        if self._group is not None:
            for (part, exe, _), rows in zip(self._group.parts, self._slices):
                sliced = None if out_grads is None else \
                    [g[rows.start:rows.stop].as_in_context(part.ctx) for g in out_grads]
                if _has_gradients(exe):
                    exe.backward(sliced)
            return
        if out_grads is not None:
            out_grads = [None] * self._offset + out_grads
        if _has_gradients(self._exec):  # as MXNet, a network without parameters has none
            self._exec.backward(out_grads)

    def forward_backward(self, data_batch):
        """``forward(data_batch, is_train=True)`` then ``backward()``."""
        self.forward(data_batch, is_train=True)
        self.backward()

    def update(self):
        """Apply the optimizer to the gradients of the last backward.

        With several contexts their gradients are added up first (MXNet's
        ``kvstore='local'``), then the first context's parameters are updated
        once; the others copy them before their next forward pass.
        """
        self._require("optimizer_initialized", "update")
        if self._exec is None:
            raise DeepkitError("Module.update: call forward() and backward() first")
        if self._group is not None:
            self._optimizer.apply(self._plan.reduce(self._group.gradients()))
            return
        by_name = {p.name: p for p in self._net.weights}
        pairs = [(by_name[n], g) for n, g in self._exec.grad_dict.items() if n in by_name]
        if self._async is not None:
            self._async.apply(self._net, pairs)
            return
        self._optimizer.apply(self._net.reduce_gradients(pairs))

    def _per_context(self, arrays_of):
        """``[[array i of context k for each k] for each i]`` from ``arrays_of(executor)``."""
        if self._group is not None:
            per_context = [arrays_of(exe) for _, exe, _ in self._group.parts]
        else:
            per_context = [arrays_of(self._exec)]
        return [list(arrays) for arrays in zip(*per_context)]

    def _merge(self, per_context):
        """MXNet's ``_merge_multi_context``: the contexts' rows joined on the first context."""
        if len(self._context) == 1 or self._group is None:
            return [arrays[0] for arrays in per_context]
        first = self._context[0]
        return [None if any(a is None for a in arrays)
                else nd.concat(*[a.as_in_context(first) for a in arrays], dim=0)
                for arrays in per_context]

    def get_outputs(self, merge_multi_context=True):
        """The outputs of the last forward.

        Returns:
            One NDArray per symbol output (with several contexts, their rows
            joined on the first context); with ``merge_multi_context=False``,
            per output the list of each context's part:
            ``[[out1_dev1, out1_dev2], [out2_dev1, out2_dev2]]``.
        """
        if self._exec is None:
            raise DeepkitError("Module.get_outputs: call forward() first")
        per_context = self._per_context(lambda exe: exe.outputs[self._offset:])
        return self._merge(per_context) if merge_multi_context else per_context

    def get_input_grads(self, merge_multi_context=True):
        """The gradients of the data (bind with ``inputs_need_grad=True``).

        Returns:
            One NDArray per data input, or per input each context's part
            (``merge_multi_context=False``), as :meth:`get_outputs`.
        """
        if not self.inputs_need_grad:
            raise DeepkitError("Module.get_input_grads: bind with inputs_need_grad=True")
        if self._exec is None:
            raise DeepkitError("Module.get_input_grads: call forward() and backward() first")
        # None for data bound with grad_req 'null' (MXNet's grad_req applies to the data too)
        per_context = self._per_context(
            lambda exe: [exe.grad_dict.get(n) for n in self._data_names])
        return self._merge(per_context) if merge_multi_context else per_context

    def update_metric(self, eval_metric, labels, pre_sliced=False):
        """Update ``eval_metric`` with ``labels`` and the last outputs, context by context.

        Args:
            eval_metric: An ``mx.metric`` metric.
            labels: The batch's labels; with ``pre_sliced``, one list of labels
                per context (already cut to its rows).
        """
        if self._exec is None:
            raise DeepkitError("Module.update_metric: call forward() first")
        if self._group is None:
            outputs = list(self._exec.outputs[self._offset:])
            eval_metric.update(list(labels[0]) if pre_sliced else list(labels), outputs)
            return
        first = self._context[0]  # the metrics accumulate on the first context
        for k, ((_, exe, _), rows) in enumerate(zip(self._group.parts, self._slices)):
            part_labels = list(labels[k]) if pre_sliced else \
                [label[rows.start:rows.stop] for label in labels]
            part_labels = [a.as_in_context(first) if isinstance(a, dk.NDArray) else a
                           for a in part_labels]
            eval_metric.update(part_labels, [o.as_in_context(first) for o in exe.outputs])

    def install_monitor(self, mon):
        """Report node outputs to ``mon`` (``mx.monitor.Monitor``) on every forward.

        Call ``mon.tic()`` before and ``mon.toc_print()`` after each batch
        (``fit(monitor=mon)`` does both).
        """
        self._require("binded", "install_monitor")
        if not callable(getattr(mon, "install", None)):
            raise TypeError(f"Module.install_monitor: expected an mx.monitor.Monitor, got "
                            f"{type(mon).__name__}")
        self._monitor = mon
        executors = [exe for _, exe, _ in self._group.parts] if self._group is not None \
            else [self._exec] if self._exec is not None else []
        for exe in executors:
            mon.install(exe)

    # -- inference -------------------------------------------------------------------------
    def iter_predict(self, eval_data, num_batch=None, reset=True, sparse_row_id_fn=None):
        """Yield ``(outputs, batch index, batch)`` (filler samples of a padded batch removed)."""
        self._require("binded", "iter_predict")
        self._require("params_initialized", "iter_predict")
        if reset:
            eval_data.reset()
        for nbatch, batch in enumerate(eval_data):
            if num_batch is not None and nbatch == num_batch:
                break
            self.forward(batch, is_train=False)
            pad = int(batch.pad or 0)
            outputs = [o[0:o.shape[0] - pad] for o in self.get_outputs()]
            yield outputs, nbatch, batch

    def predict(self, eval_data, num_batch=None, merge_batches=True, reset=True,
                always_output_list=False, sparse_row_id_fn=None):
        """The outputs over ``eval_data`` (a DataIter, or an array wrapped in an NDArrayIter).

        Returns:
            One NDArray per output, concatenated over the batches (a single
            NDArray for one output unless ``always_output_list``); with
            ``merge_batches=False`` a list of per-batch output lists.
        """
        if isinstance(eval_data, (np.ndarray, dk.NDArray)):
            batch = self._data_shapes[0].shape[0] if self.binded else 1
            eval_data = dk_io.NDArrayIter(eval_data, batch_size=batch, shuffle=False,
                                          data_name=self._data_names[0])
        chunks = [[o.copy() for o in outs]
                  for outs, _, _ in self.iter_predict(eval_data, num_batch, reset)]
        if not chunks:
            raise ValueError("Module.predict: the data iterator gave no batch")
        if not merge_batches:
            return chunks
        merged = [nd.concat(*[c[i] for c in chunks], dim=0) if len(chunks) > 1 else chunks[0][i]
                  for i in range(len(chunks[0]))]
        if len(merged) == 1 and not always_output_list:
            return merged[0]
        return merged

    def score(self, eval_data, eval_metric, num_batch=None, batch_end_callback=None,
              score_end_callback=None, reset=True, epoch=0, sparse_row_id_fn=None):
        """Evaluate ``eval_metric`` over ``eval_data``.

        Returns:
            ``[(name, value)]`` as ``eval_metric.get_name_value()``.
        """
        self._require("binded", "score")
        self._require("params_initialized", "score")
        metric = mx_metric.create(eval_metric)
        metric.reset()
        for outputs, nbatch, batch in self.iter_predict(eval_data, num_batch, reset):
            n = outputs[0].shape[0]
            labels = [lab if lab.shape[0] == n else lab[0:n] for lab in batch.label]
            metric.update(labels, outputs)
            for callback in _as_list(batch_end_callback):
                callback(BatchEndParam(epoch=epoch, nbatch=nbatch, eval_metric=metric,
                                       locals={"self": self}))
        for callback in _as_list(score_end_callback):
            callback(BatchEndParam(epoch=epoch, nbatch=0, eval_metric=metric,
                                   locals={"self": self}))
        return metric.get_name_value()

    # -- training --------------------------------------------------------------------------
    def fit(self, train_data, eval_data=None, eval_metric="acc", epoch_end_callback=None,
            batch_end_callback=None, kvstore="local", optimizer="sgd",
            optimizer_params=(("learning_rate", 0.01),), eval_end_callback=None,
            eval_batch_end_callback=None, initializer=mx_init.Uniform(0.01), arg_params=None,
            aux_params=None, allow_missing=False, force_rebind=False, force_init=False,
            begin_epoch=0, num_epoch=None, validation_metric=None, monitor=None,
            sparse_row_id_fn=None):
        """Train for the epochs ``begin_epoch .. num_epoch - 1`` through ``Model.fit``.

        Binds, initializes the parameters and the optimizer (each only if not
        done yet), then runs deepkit's training loop with MXNet's log lines
        (``Epoch[0] Train-accuracy=...``, ``Time cost``, ``Validation-...``),
        ``batch_end_callback`` (``mx.callback.Speedometer``) and
        ``epoch_end_callback`` (``mx.callback.do_checkpoint``).

        Args:
            train_data: A DataIter with labels.
            eval_data: A DataIter evaluated after each epoch.
            eval_metric: A metric, its name or a list (``'acc'``).
            validation_metric: The metric for ``eval_data`` (default: ``eval_metric``).
            num_epoch: Required: the number of epochs.
            Others: As in MXNet (see :meth:`bind`, :meth:`init_params`, :meth:`init_optimizer`).
        """
        if num_epoch is None:
            raise ValueError("Module.fit: please specify number of epochs (num_epoch=N)")
        self.bind(data_shapes=train_data.provide_data, label_shapes=train_data.provide_label,
                  for_training=True, force_rebind=force_rebind)
        if monitor is not None:
            self.install_monitor(monitor)
        self.init_params(initializer=initializer, arg_params=arg_params, aux_params=aux_params,
                         allow_missing=allow_missing, force_init=force_init)
        self.init_optimizer(kvstore=kvstore, optimizer=optimizer,
                            optimizer_params=optimizer_params)
        metric = mx_metric.create(eval_metric)
        separate = validation_metric is not None and eval_data is not None
        net = self._net
        net.use_metric(metric)
        hooks = _ModuleHooks(self, metric, batch_end_callback, epoch_end_callback, self.logger,
                             eval_data is not None and not separate)
        if separate:
            hooks.validation = (eval_data, mx_metric.create(validation_metric),
                                eval_batch_end_callback, eval_end_callback)
        batch_size = int(train_data.provide_data[0].shape[0])
        # MXNet does not look for NaN in the batches: neither does this loop (one pass over
        # each batch less)
        net.fit(train_data, epochs=int(num_epoch), verbose=0, initial_epoch=int(begin_epoch),
                callbacks=[hooks], validation_data=None if separate else eval_data,
                shuffle=False, batch_size=batch_size, check_finite=False,
                ctx=self._context if len(self._context) > 1 else self._ctx)
        if self._async is not None:
            self._async.finish(net)  # every process ends with the server's weights
        self._exec = self._group = None

    # -- checkpoints -----------------------------------------------------------------------
    def save_checkpoint(self, prefix, epoch, save_optimizer_states=False, remove_amp_cast=True):
        """Write ``prefix-symbol.json``, ``prefix-%04d.params`` (MXNet's format) and optionally
        ``prefix-%04d.states``."""
        arg, aux = self.get_params()
        save_checkpoint(prefix, epoch, self._symbol, arg, aux)
        if save_optimizer_states:
            self.save_optimizer_states("%s-%04d.states" % (prefix, epoch))

    @staticmethod
    def load(prefix, epoch, load_optimizer_states=False, **kwargs):
        """A Module from a checkpoint (MXNet's or deepkit's); bind it to use it.

        Args:
            prefix, epoch: The checkpoint's files.
            load_optimizer_states: Restore ``prefix-%04d.states`` at ``init_optimizer``.
            **kwargs: Module arguments (``data_names``, ``label_names``, ``context`` ...).
        """
        symbol, arg_params, aux_params = load_checkpoint(prefix, epoch)
        mod = Module(symbol, **kwargs)
        mod._arg_params, mod._aux_params = arg_params, aux_params
        mod.params_initialized = True
        if load_optimizer_states:
            mod._preload_states = "%s-%04d.states" % (prefix, epoch)
        return mod


class _ModuleHooks(_MXNetHooks):
    """FeedForward's MXNet hooks, plus the monitor and validation with a metric of its own."""

    validation = None

    def on_train_batch_begin(self, batch, logs=None):
        monitor = self.owner._monitor
        if monitor is not None:
            x = self.loop.batch[0]
            x = next(iter(x.values())) if isinstance(x, dict) else x
            owner = self.owner
            monitor.install(owner._net.executors(owner._ctx).executor("train",
                                                                      int(x.shape[0])))
            monitor.tic()

    def on_train_batch_end(self, batch, logs=None):
        if self.owner._monitor is not None:
            self.owner._monitor.toc_print()
        super().on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.validation is None:
            return
        data, metric, batch_end, score_end = self.validation
        tic = time.time()
        for name, value in self.owner.score(data, metric, batch_end_callback=batch_end,
                                            score_end_callback=score_end, epoch=epoch):
            self.logger.info("Epoch[%d] Validation-%s=%f", epoch, name, value)
        self.logger.debug("Epoch[%d] Validation time %.3f", epoch, time.time() - tic)


#: MXNet's base class name; deepkit has one module class.
BaseModule = Module
