"""The training machinery behind ``Model.fit/evaluate/predict``.

Executors are bound once per (purpose, batch size) and cached; they share
the parameter, gradient and auxiliary arrays, so the training and test
executors always see the same weights. Every step pushes its work to the
engine without waiting: the input copy for the next batch, forward,
backward, the optimizer updates and the metric updates are all queued, and
Python only waits when the progress bar reads the running loss.
"""
import time

import numpy as np

import deepkit_engine as dk
from deepkit_engine import engine as _engine
from deepkit_engine import nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import DeepkitError

__all__ = ["Trainer", "ArraySource", "IteratorSource", "as_source"]


def _host(value):
    if hasattr(value, "asnumpy"):
        return value.asnumpy()
    return np.asarray(value)


def fill(dst, host_fn, name):
    """Push a copy of ``host_fn()`` (a numpy array) into NDArray ``dst``."""
    data = dst._data
    on_cpu = isinstance(data, np.ndarray)

    def copy():
        value = host_fn()
        if value.shape != data.shape:
            raise DeepkitError(f"batch for '{name}' has shape {value.shape}, expected "
                               f"{data.shape}")
        if on_cpu:
            data[...] = value
        else:
            data.set(np.ascontiguousarray(value, dtype=data.dtype))
    _engine.push(copy, (), (dst._var,), dst.ctx, f"feed '{name}'", False)


class ArraySource:
    """Batches of in-memory (or array-like: h5py, memmap) arrays, by index."""

    def __init__(self, xs, ys, sws, batch_size, shuffle, rng):
        self.xs, self.ys, self.sws = xs, ys, sws
        lengths = {len(a) for a in list(xs.values()) + list(ys.values()) + list(sws.values())}
        if len(lengths) != 1:
            sizes = {k: len(v) for k, v in list(xs.items()) + list(ys.items())}
            raise ValueError(f"all inputs and targets must have the same number of samples; "
                             f"got {sizes}")
        self.n = lengths.pop()
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.rng = rng

    @property
    def num_batches(self):
        return -(-self.n // self.batch_size)

    def batches(self):
        order = self.rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        for start in range(0, self.n, self.batch_size):
            idx = order[start:start + self.batch_size]
            if self.shuffle and not all(isinstance(a, np.ndarray) for a in self.xs.values()):
                idx = np.sort(idx)  # h5py needs increasing indices
            yield len(idx), {k: _taker(v, idx) for k, v in self.xs.items()}, \
                {k: _taker(v, idx) for k, v in self.ys.items()}, \
                {k: _taker(v, idx) for k, v in self.sws.items()}


def _taker(array, idx):
    return lambda: np.asarray(array[idx])


class IteratorSource:
    """Batches from a DataIter (``provide_data``/``DataBatch``) or a Python iterable.

    An iterable yields ``x``, ``(x, y)`` or ``(x, y, sample_weight)`` per batch.
    """

    def __init__(self, it, input_names, output_names, steps=None):
        self.it, self.steps = it, steps
        self.input_names, self.output_names = input_names, output_names
        self.data_iter = hasattr(it, "provide_data") and hasattr(it, "reset")

    @property
    def num_batches(self):
        """Batches per epoch, or None when the iterable does not say."""
        if self.steps is not None:
            return self.steps
        try:
            return len(self.it)
        except TypeError:
            return None

    def batches(self):
        if self.data_iter:
            self.it.reset()
            for step, batch in enumerate(self.it):
                if self.steps is not None and step >= self.steps:
                    break
                n = batch.data[0].shape[0] - (batch.pad or 0)
                xs = {k: _const(v, n) for k, v in zip(self.input_names, batch.data)}
                ys = {k: _const(v, n) for k, v in zip(self.output_names, batch.label or [])}
                yield n, xs, ys, {}
            return
        for step, item in enumerate(self.it):
            if self.steps is not None and step >= self.steps:
                break
            if not isinstance(item, tuple):
                item = (item,)
            x = item[0]
            y = item[1] if len(item) > 1 else None
            sw = item[2] if len(item) > 2 else None
            xs = _named(x, self.input_names, "x")
            n = len(next(iter(xs.values())))
            ys = _named(y, self.output_names, "y") if y is not None else {}
            sws = _named(sw, self.output_names, "sample_weight") if sw is not None else {}
            yield n, {k: _const(v, n) for k, v in xs.items()}, \
                {k: _const(v, n) for k, v in ys.items()}, \
                {k: _const(v, n) for k, v in sws.items()}


def _const(value, n):
    host = _host(value)[:n]
    return lambda: host


def _named(value, names, what):
    if isinstance(value, dict):
        missing = [n for n in names if n not in value]
        if missing:
            raise ValueError(f"{what} is a dict without entries for {missing}; expected keys "
                             f"{names}")
        return {n: value[n] for n in names}
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise ValueError(f"{what} has {len(value)} arrays but the model has {len(names)} "
                             f"({', '.join(names)})")
        return dict(zip(names, value))
    if len(names) != 1:
        raise ValueError(f"{what} is one array but the model has {len(names)} "
                         f"({', '.join(names)}); pass a list or a dict")
    return {names[0]: value}


def as_source(x, y, sample_weight, model, batch_size, shuffle, steps=None):
    if hasattr(x, "provide_data") or (hasattr(x, "__iter__") and not hasattr(x, "shape")
                                      and not isinstance(x, (list, tuple, dict))):
        return IteratorSource(x, model.input_names, model.output_names, steps)
    xs = _named(x, model.input_names, "x")
    ys = _named(y, model.output_names, "y") if y is not None else {}
    sws = _named(sample_weight, model.output_names, "sample_weight") \
        if sample_weight is not None else {}
    from . import backend  # noqa: PLC0415
    return ArraySource(xs, ys, sws, batch_size, shuffle, backend.rng())


class Trainer:
    """Executors and arrays of one compiled model on one context."""

    def __init__(self, model, ctx):
        self.model = model
        self.ctx = ctx
        self.version = None
        self._executors = {}
        self._grads = {}

    # -- symbols ---------------------------------------------------------------------
    def _build(self):
        from .layers.base import graph_version  # noqa: PLC0415
        key = (graph_version(), self.model._compile_version)
        if key == self.version:
            return
        self.version = key
        self._executors = {}
        model = self.model
        outs = model._output_symbols()
        self.predict_symbol = sym.Group(outs)
        terms = []
        for i, (out, loss) in enumerate(zip(outs, model._losses)):
            if loss is None:
                continue
            name = model.output_names[i]
            per_sample = loss(sym.Variable(f"{name}_label"), out)
            weighted = per_sample * sym.Variable(f"{name}_sample_weight")
            term = sym.mean(weighted)
            weight = model._loss_weights[i]
            terms.append(term if weight == 1.0 else term * weight)
        if not terms:
            raise DeepkitError("compile() needs a loss for at least one output")
        for p in model._all_params():
            if p.regularizer is not None and not p.aux:
                terms.append(p.regularizer(p.var))
        total = terms[0]
        for t in terms[1:]:
            total = total + t
        self.train_symbol = sym.Group([total] + [sym.BlockGrad(o) for o in outs])
        self.param_map = {p.name: p for p in model._all_params()}

    # -- executors -------------------------------------------------------------------
    def executor(self, purpose, batch_size):
        self._build()
        key = (purpose, batch_size)
        exe = self._executors.get(key)
        if exe is None:
            exe = self._executors[key] = self._bind(purpose, batch_size)
        return exe

    def _bind(self, purpose, batch_size):
        model = self.model
        symbol = self.predict_symbol if purpose == "predict" else self.train_symbol
        ctx = self.ctx
        for p in model._all_params():
            p.initialize(ctx)
        shapes = {}
        for name, shape in zip(model.input_names, model._input_sample_shapes()):
            shapes[name] = (batch_size,) + tuple(shape)
        if purpose != "predict":
            for name in model.output_names:
                shapes[f"{name}_sample_weight"] = (batch_size,)
        arg_shapes, _, aux_shapes = symbol.infer_shape_partial(**shapes)
        args, grads, reqs = {}, {}, {}
        for name, shape in zip(symbol.list_arguments(), arg_shapes):
            param = self.param_map.get(name)
            if param is not None:
                args[name] = param.data
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
            if name.endswith("_sample_weight"):
                args[name] = nd.ones(shape, ctx=ctx)
            else:
                args[name] = nd.zeros(shape, ctx=ctx)
            reqs[name] = "null"
        aux = {}
        for name in symbol.list_auxiliary_states():
            param = self.param_map.get(name)
            if param is None:
                raise DeepkitError(f"auxiliary state '{name}' does not belong to a layer")
            aux[name] = param.data
        return dk.Executor(symbol, ctx, args, grads, reqs, aux)

    def trainable_pairs(self, exe):
        return [(self.param_map[n], g) for n, g in exe.grad_dict.items()]


def batch_logs(loss_sum, count, metrics):
    """Read the running loss and metric values (this waits for the engine)."""
    logs = {"loss": float(loss_sum.asnumpy().sum()) / max(count, 1)}
    for m in metrics:
        logs[m.name] = m.result()
    return logs


class StepTimer:
    """Wall time split into data preparation and compute, for the progress bar."""

    def __init__(self):
        self.data_s = 0.0
        self.start = time.perf_counter()

    def share(self):
        total = time.perf_counter() - self.start
        return self.data_s / total if total > 0 else 0.0
