"""Executors of one model on one device: bound once per (purpose, input shapes) and cached.

The model describes its programs (:meth:`Model.build_programs`): the
inference program (its outputs) and the training program (the total loss
first, then the outputs cut off from the gradient). :class:`ExecutorCache`
binds them on demand. All executors of a cache share the parameter, gradient
and auxiliary arrays, so the training and test executors always see the
same weights, and a batch of another size (or, for a model that runs on any
input size, inputs of another height and width) only binds another executor.
"""
import numpy as np

import deepkit_engine as dk
from deepkit_engine import nd
from deepkit_engine.base import DeepkitError

from .data import HostBatch, named

__all__ = ["ExecutorCache", "PURPOSES"]

#: What an executor is bound for: the training program with gradients, the
#: training program without them (evaluate), or the inference program.
PURPOSES = ("train", "eval", "predict")


def _host_reader(value):
    """A function returning ``value`` as numpy: HostBatches are gathered on the engine."""
    if isinstance(value, HostBatch):
        return value.numpy
    if hasattr(value, "asnumpy"):
        return value.asnumpy
    array = np.asarray(value)
    return lambda: array


def _reshaped(read, shape):
    """``read()`` reshaped to ``shape`` where only the layout differs ((N,) vs (N, 1))."""
    def value():
        array = read()
        if array.shape != shape and array.size == int(np.prod(shape)):
            array = array.reshape(shape)
        return array
    return value


class ExecutorCache:
    """The executors and shared arrays of one model on one context.

    Args:
        model: A :class:`~deepkit.models.Model` (or anything with the same
            program interface: ``program_key``, ``build_programs``,
            ``input_names``, ``output_names``, ``label_names``,
            ``input_sample_shapes``, ``weights``).
        ctx: The device.
        replica: True on a device that is not the model's primary device
            (data parallelism): the executors bind copies of the parameters
            and auxiliary states, refreshed from the primary by
            :meth:`pull_weights`.
    """

    def __init__(self, model, ctx, replica=False):
        self.model = model
        self.ctx = ctx
        self.replica = replica
        self._copies = {}
        self._key = None
        self._executors = {}
        self._grads = {}
        self._weighted = {}
        self.param_map = {}
        self.predict_symbol = self.train_symbol = None

    def _refresh(self):
        key = self.model.program_key()
        if key == self._key:
            return
        self._key = key
        self._executors = {}
        self._weighted = {}
        self.predict_symbol, self.train_symbol = self.model.build_programs()
        self.param_map = {p.name: p for p in self.model.weights}
        self._copies = {name: c for name, c in self._copies.items()
                        if name in self.param_map and c.shape == self.param_map[name].shape}

    def _value(self, param):
        """The array bound for ``param`` here: its data, or on a replica its copy."""
        if not self.replica:
            return param.data
        copy = self._copies.get(param.name)
        if copy is None:
            copy = self._copies[param.name] = param.data.copyto(self.ctx)
        return copy

    def pull_weights(self):
        """On a replica, copy the primary's current parameters and states into the copies."""
        if self.replica:
            for name, copy in self._copies.items():
                self.param_map[name].data.copyto(copy)

    def executor(self, purpose, batch_size, input_shapes=None):
        """The executor for ``purpose`` (one of :data:`PURPOSES`) and these inputs.

        Args:
            purpose: ``'train'``, ``'eval'`` or ``'predict'``.
            batch_size: The number of samples in the batch.
            input_shapes: ``{input name: full shape}`` where the batch's
                samples differ from ``model.input_sample_shapes()`` (a model
                that runs on any input size); ``None``: the model's own.

        Returns:
            The cached (or newly bound) :class:`~deepkit_engine.Executor`.
        """
        self._refresh()
        shapes = self._input_shapes(batch_size, input_shapes)
        key = (purpose, tuple(sorted(shapes.items())))
        exe = self._executors.get(key)
        if exe is None:
            exe = self._executors[key] = self._bind(purpose, batch_size, shapes)
        return exe

    def _input_shapes(self, batch_size, given):
        model = self.model
        shapes = {}
        for name, shape in zip(model.input_names, model.input_sample_shapes()):
            full = given.get(name) if given else None
            if full is None:
                if any(d is None for d in shape):
                    raise DeepkitError(f"input '{name}' of model '{model.name}' has no fixed "
                                       f"sample shape {tuple(shape)}: give the batch's shapes "
                                       "(input_shapes)")
                full = (batch_size,) + tuple(shape)
            shapes[name] = tuple(int(d) for d in full)
        return shapes

    def _bind(self, purpose, batch_size, shapes):
        if purpose not in PURPOSES:
            raise ValueError(f"executor purpose must be one of {PURPOSES}, got {purpose!r}")
        model = self.model
        symbol = self.predict_symbol if purpose == "predict" else self.train_symbol
        if symbol is None:
            raise DeepkitError(f"model '{model.name}' must be compiled before training or "
                               "evaluating: call model.compile(optimizer, loss, metrics)")
        ctx = self.ctx
        if not self.replica:
            for p in model.weights:
                p.initialize(ctx)
        shapes = dict(shapes)
        if purpose != "predict":
            temporal = getattr(model, "_temporal_weights", ())
            for i, name in enumerate(model.output_names):
                shapes[f"{name}_sample_weight"] = (batch_size,) if name not in temporal \
                    else (batch_size, int(model.outputs[i].shape[1]))  # one per time step
        known = set(symbol.list_arguments())
        arg_shapes, _, _ = symbol.infer_shape_known(
            **{k: v for k, v in shapes.items() if k in known})
        args, grads, reqs = {}, {}, {}
        for name, shape in zip(symbol.list_arguments(), arg_shapes):
            param = self.param_map.get(name)
            if param is not None:
                args[name] = self._value(param)
                if purpose == "train" and param.trainable:
                    g = self._grads.get(name)
                    if g is None or g.shape != param.shape:
                        g = self._grads[name] = nd.zeros(param.shape, ctx=ctx, dtype=param.dtype)
                    grads[name] = g
                    reqs[name] = "write"
                continue
            if shape is None:
                raise DeepkitError(f"cannot infer the shape of '{name}' for batch size "
                                   f"{batch_size}; is it a variable created outside a layer?")
            args[name] = nd.ones(shape, ctx=ctx) if name.endswith("_sample_weight") \
                else nd.zeros(shape, ctx=ctx)
            reqs[name] = "null"
        aux = {}
        for name in symbol.list_auxiliary_states():
            param = self.param_map.get(name)
            if param is None:
                raise DeepkitError(f"auxiliary state '{name}' does not belong to a layer")
            aux[name] = self._value(param)
        return dk.Executor(symbol, ctx, args, grads, reqs, aux)

    # -- feeding -------------------------------------------------------------------------
    def feed(self, exe, x, y=None, sample_weight=None):
        """Push copies of one batch into ``exe``'s input, label and sample-weight arrays.

        Nothing waits: each copy (and the gather of a :class:`HostBatch`) runs
        on the engine, ordered before the passes that read it.
        """
        model = self.model
        for name, value in named(x, model.input_names, "x").items():
            target = exe.arg_dict.get(name)
            if target is not None:  # None: an input no output depends on
                target.write_async(_host_reader(value), name)
        if y is not None:
            for label, value in zip(model.label_names,
                                    named(y, model.output_names, "y").values()):
                target = exe.arg_dict.get(label)
                if target is not None:
                    target.write_async(_reshaped(_host_reader(value), target.shape), label)
        weights = named(sample_weight, model.output_names, "sample_weight") \
            if sample_weight is not None else {}
        for name in model.output_names:
            key = f"{name}_sample_weight"
            target = exe.arg_dict.get(key)
            if target is None:
                continue
            if name in weights:
                target.write_async(_host_reader(weights[name]), key)
                self._weighted[id(target)] = target
            elif self._weighted.pop(id(target), None) is not None:
                target[:] = 1.0  # bound as ones: reset only after real weights were fed

    def gradients(self, exe):
        """``[(parameter, gradient NDArray)]`` of the trainable parameters of ``exe``."""
        return [(self.param_map[n], g) for n, g in exe.grad_dict.items()]

    def labels(self, exe):
        """The label arrays bound in ``exe``, one per output (None where it has none)."""
        return [exe.arg_dict.get(label) for label in self.model.label_names]
