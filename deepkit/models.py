"""Models: functional ``Model(inputs, outputs)`` and ``Sequential``; compile/fit/evaluate/predict.

A model is a graph of layer calls. Its symbols are rebuilt from the layers
when their structure changes (freezing a layer, say), so no recompile is
needed; executors are cached per batch size and share all arrays.

About the reported loss: ``fit`` reports the running average of the batch
losses over the epoch, each computed with the weights of the moment (and with
dropout active), while ``evaluate`` computes the loss of the final weights in
inference mode. On the same data the two differ; the ``val_loss`` of
``fit(validation_data=...)`` is computed like ``evaluate``.
"""
import collections
import time
import weakref

import numpy as np

import deepkit_engine as dk
from deepkit_engine.base import DeepkitError

from . import backend, callbacks as callbacks_mod, losses as losses_mod, metrics as metrics_mod
from . import optimizers as optimizers_mod
from .layers.base import InputLayer, Layer, SymbolicTensor, _as_list
from .training import StepTimer, Trainer, as_source, batch_logs, fill

__all__ = ["Model", "Sequential"]

#: Reading the running loss for the progress bar waits for the engine, which
#: stops Python from queueing the next batches while the current ones run; so
#: it is read at most this often (callbacks that need every batch's logs set
#: ``requires_batch_logs``).
_LOG_INTERVAL_S = 0.5


class Model(Layer):
    """A graph of layers from input tensors to output tensors (Keras's functional API).

    ``Model(inputs, outputs)`` with one or several of each; layers may be
    shared and models may be used as layers. ``Model(inputs,
    some_layer.output)`` gives a feature extractor that shares the weights.
    """

    def __init__(self, inputs=None, outputs=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self._losses = []
        self._loss_weights = []
        self._metrics = []
        self._compile_version = 0
        self.optimizer = None
        self._trainers = {}
        # sample-weight arrays holding non-unit weights, by identity (NDArray == is elementwise)
        self._weighted = weakref.WeakValueDictionary()
        self.stop_training = False
        self.history = None
        self._initial_epoch = None  # set by BackupAndRestore.on_train_begin
        self._last_batch = None  # the batch being trained on, for TerminateOnNaN(debug=True)
        if inputs is not None or outputs is not None:
            self._init_graph(inputs, outputs)

    # -- graph ---------------------------------------------------------------------
    def _init_graph(self, inputs, outputs):
        self._single_input = not isinstance(inputs, (list, tuple))
        self._single_output = not isinstance(outputs, (list, tuple))
        self.inputs = _as_list(inputs)
        self.outputs = _as_list(outputs)
        for t in self.inputs + self.outputs:
            if not isinstance(t, SymbolicTensor):
                raise TypeError(f"Model: inputs and outputs must be tensors from Input() and "
                                f"layers, got {type(t).__name__}")
        for t in self.inputs:
            if not isinstance(t.layer, InputLayer):
                raise ValueError(f"Model: input '{t.name}' is not an Input(); models start at "
                                 "Input tensors")
        self._calls = self._discover()
        seen = collections.OrderedDict()
        for t in self.inputs:
            seen[id(t.layer)] = t.layer
        for layer, _ in self._calls:
            seen.setdefault(id(layer), layer)
        self.layers = list(seen.values())
        names = collections.Counter(layer.name for layer in self.layers)
        dup = [n for n, c in names.items() if c > 1]
        if dup:
            raise ValueError(f"Model '{self.name}': layer names must be unique, these repeat: "
                             f"{dup}")
        self.input_names = [t.layer.name for t in self.inputs]
        self.output_names = []
        for t in self.outputs:  # a shared layer may give several outputs: number them
            name = t.layer.name
            if name in self.output_names:
                name = f"{name}_{sum(n.startswith(name) for n in self.output_names)}"
            self.output_names.append(name)
        self.built = True

    def _discover(self):
        """(layer, node) calls from the inputs to the outputs, in dependency order."""
        input_ids = {id(t) for t in self.inputs}
        order, done = [], set()

        def visit(tensor, stack):
            if id(tensor) in input_ids:
                return
            layer, node = tensor.layer, tensor.layer._nodes[tensor.node_index]
            key = (id(layer), tensor.node_index)
            if key in done:
                return
            if isinstance(layer, InputLayer):
                raise ValueError(f"Model '{self.name}': output depends on input "
                                 f"'{layer.name}', which is not in the model's inputs")
            if key in stack:
                raise ValueError(f"Model '{self.name}': the graph has a cycle at '{layer.name}'")
            stack.add(key)
            for t in node.inputs:
                visit(t, stack)
            stack.discard(key)
            done.add(key)
            order.append((layer, node))
        for t in self.outputs:
            visit(t, set())
        return order

    def _replay(self, input_symbols):
        """Rebuild the output symbols from the layers, on the given input symbols."""
        memo = {id(t): s for t, s in zip(self.inputs, input_symbols)}
        for layer, node in self._calls:
            ins = [memo[id(t)] for t in node.inputs]
            outs = layer.call(ins if node.list_input else ins[0])
            for t, s in zip(node.outputs, _as_list(outs)):
                memo[id(t)] = s
        return [memo[id(t)] for t in self.outputs]

    def _output_symbols(self):
        from deepkit_engine import symbol as sym  # noqa: PLC0415
        return self._replay([sym.Variable(n) for n in self.input_names])

    def _input_sample_shapes(self):
        return [t.shape[1:] for t in self.inputs]

    def call(self, inputs):
        outs = self._replay(_as_list(inputs))
        return outs if len(outs) > 1 else outs[0]

    def compute_output_shape(self, input_shape):
        shapes = [t.shape for t in self.outputs]
        return shapes if len(shapes) > 1 else shapes[0]

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        """Freeze or unfreeze every layer of the model (Keras's fine-tuning idiom)."""
        self._trainable = bool(value)
        for layer in getattr(self, "layers", []):
            if not isinstance(layer, InputLayer):
                layer.trainable = value
        from .layers.base import _bump_graph_version  # noqa: PLC0415
        _bump_graph_version()

    def _all_params(self):
        params, seen = [], set()
        for layer in self.layers:
            sub = layer._all_params() if isinstance(layer, Model) else layer.params.values()
            for p in sub:
                if id(p) not in seen:
                    seen.add(id(p))
                    params.append(p)
        return params

    @property
    def weights(self):
        return self._all_params()

    @property
    def trainable_weights(self):
        return [p for p in self._all_params() if p.trainable]

    @property
    def non_trainable_weights(self):
        return [p for p in self._all_params() if not p.trainable]

    def count_params(self):
        return int(sum(np.prod(p.shape) for p in self._all_params()))

    def get_weights(self):
        self._ensure_initialized()
        return [p.data.asnumpy() for p in self._all_params()]

    def set_weights(self, weights):
        params = self._all_params()
        if len(weights) != len(params):
            raise ValueError(f"model '{self.name}' has {len(params)} weights but "
                             f"{len(weights)} arrays were given")
        self._ensure_initialized()
        for p, w in zip(params, weights):
            w = np.asarray(w)
            if w.shape != p.shape:
                raise ValueError(f"weight '{p.name}' has shape {p.shape} but the array given "
                                 f"has shape {w.shape}")
            p.data[:] = w.astype(p.dtype)

    def _ensure_initialized(self, ctx=None):
        self._require_built("initialize weights")
        ctx = ctx or dk.current_context()
        for p in self._all_params():
            p.initialize(ctx)

    def get_layer(self, name=None, index=None):
        """A layer by name (with a did-you-mean) or by index."""
        self._require_built("look up layers")
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        from deepkit_engine.base import did_you_mean  # noqa: PLC0415
        names = [layer.name for layer in self.layers]
        raise ValueError(f"no layer named '{name}'{did_you_mean(name, names)}; layers: "
                         f"{', '.join(names)}")

    def _require_built(self, what):
        if not self.built:
            raise DeepkitError(
                f"model '{self.name}' is not built yet, so it cannot {what}: give the input "
                "shape with an Input(shape=...) layer or input_shape=... on the first layer, "
                "or call fit()/build(input_shape) first")

    # -- summary ---------------------------------------------------------------------
    def summary(self, print_fn=print, line_length=80):
        """Print the layers with output shapes and parameter counts (trainable and not)."""
        self._require_built("print a summary")
        widths = [int(line_length * f) for f in (0.45, 0.33, 0.22)]
        rows = [("Layer (type)", "Output Shape", "Param #")]
        shapes = {id(t.layer): t.shape for t in self.inputs}
        for layer, node in self._calls:
            outs = [t.shape for t in node.outputs]
            shapes[id(layer)] = outs[0] if len(outs) == 1 else outs
        for layer in self.layers:
            shape = shapes.get(id(layer), "multiple")
            count = layer.count_params() if not isinstance(layer, Model) \
                else sum(int(np.prod(p.shape)) for p in layer._all_params())
            rows.append((f"{layer.name} ({type(layer).__name__})", str(shape), f"{count:,}"))
        lines = [f'Model: "{self.name}"', "=" * line_length]
        for i, row in enumerate(rows):
            lines.append("".join((c + " ").ljust(w) for c, w in zip(row, widths)).rstrip())
            lines.append(("=" if i == 0 else "_") * line_length)
        trainable = sum(int(np.prod(p.shape)) for p in self._all_params() if p.trainable)
        total = sum(int(np.prod(p.shape)) for p in self._all_params())
        lines += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                  f"Non-trainable params: {total - trainable:,}", "_" * line_length]
        text = "\n".join(lines)
        if print_fn is not None:
            print_fn(text)
        return text

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
            ctx: Device to train on (default: the current context).
        """
        self._require_built("compile")
        n = len(self.outputs)
        self.optimizer = optimizers_mod.get(optimizer)
        self._losses = [losses_mod.get(l) if l is not None else None
                        for l in self._per_output(loss, "loss")]
        weights = self._per_output(loss_weights if loss_weights is not None else 1.0,
                                   "loss_weights")
        self._loss_weights = [float(w) for w in weights]
        per_output = metrics if isinstance(metrics, dict) else {
            name: list(metrics or []) for name in self.output_names}
        self._metrics = []
        for i, name in enumerate(self.output_names):
            specs = per_output.get(name, [])
            specs = specs if isinstance(specs, (list, tuple)) else [specs]
            ms = [metrics_mod.for_loss(m, self._losses[i]) if isinstance(m, str)
                  else metrics_mod.get(m) for m in specs]
            if n > 1:
                for m in ms:
                    m.name = f"{name}_{m.name}"
            self._metrics.append(ms)
        self._ctx = dk.Context(ctx) if ctx is not None else None
        self._compile_version += 1
        self._trainers = {}

    def _per_output(self, value, what):
        n = len(self.outputs)
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

    def _trainer(self, ctx=None):
        if self.optimizer is None:
            raise DeepkitError(f"model '{self.name}' must be compiled before training or "
                               "evaluating: call model.compile(optimizer, loss, metrics)")
        ctx = ctx or self._ctx or dk.current_context()
        trainer = self._trainers.get(ctx)
        if trainer is None:
            trainer = self._trainers[ctx] = Trainer(self, ctx)
        return trainer

    # -- checks ------------------------------------------------------------------------
    def _check_data(self, x, y):
        if hasattr(x, "provide_data") or (hasattr(x, "__iter__") and not hasattr(x, "shape")
                                          and not isinstance(x, (list, tuple, dict))):
            return
        from .training import _named  # noqa: PLC0415
        for name, value, shape in zip(self.input_names, _named(x, self.input_names, "x").values(),
                                      self._input_sample_shapes()):
            got = tuple(np.shape(value)[1:])
            if got != tuple(shape):
                raise ValueError(f"Input '{name}' expects samples of shape {tuple(shape)} "
                                 f"(batch shape (None, {', '.join(map(str, shape))})), got data "
                                 f"of shape {np.shape(value)}")
        if y is None:
            return
        for i, (name, value) in enumerate(_named(y, self.output_names, "y").items()):
            loss = self._losses[i]
            if loss is None:
                continue
            out_shape = (len(value),) + tuple(self.outputs[i].shape[1:])
            loss.check_label_shape(tuple(np.shape(value)), out_shape, name)

    # -- training ----------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=32, epochs=1, verbose=1, callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, ctx=None):
        """Train for ``epochs`` passes over the data; returns the History.

        ``x``/``y`` are numpy (or array-like) arrays, lists or dicts of them for
        several inputs/outputs, a DataIter, or an iterable of batches
        ``(x, y[, sample_weight])``.
        """
        self._build_from_data(x)
        trainer = self._trainer(ctx)
        self._ensure_initialized(trainer.ctx)
        self._check_data(x, y)
        if validation_split and validation_data is None:
            x, y, sample_weight, validation_data = self._split(x, y, sample_weight,
                                                               validation_split)
        if class_weight is not None:
            sample_weight = self._class_weights(y, class_weight, sample_weight)
        source = as_source(x, y, sample_weight, self, batch_size, shuffle, steps_per_epoch)
        history = callbacks_mod.History()
        cbs = list(callbacks or [])
        if verbose:
            cbs.append(callbacks_mod.ProgbarLogger(verbose))
        cbs.append(history)
        params = {"epochs": epochs, "steps": source.num_batches, "batch_size": batch_size,
                  "verbose": verbose}
        cb = callbacks_mod.CallbackList(cbs, self, params)
        self.stop_training = False
        self.history = history
        cb.call("on_train_begin", {})
        if self._initial_epoch is not None:  # BackupAndRestore resumes here
            initial_epoch, self._initial_epoch = self._initial_epoch, None
        for epoch in range(initial_epoch, epochs):
            cb.call("on_epoch_begin", epoch, {})
            logs = self._train_epoch(trainer, source, cb)
            if validation_data is not None:
                vx, vy, vsw = self._unpack_validation(validation_data)
                val = self.evaluate(vx, vy, batch_size=batch_size, sample_weight=vsw, verbose=0,
                                    return_dict=True, ctx=ctx)
                logs.update({f"val_{k}": v for k, v in val.items()})
            cb.call("on_epoch_end", epoch, logs)
            if self.stop_training:
                break
        cb.call("on_train_end", {})
        return history

    def _train_epoch(self, trainer, source, cb):
        ctx = trainer.ctx
        metrics = [m for ms in self._metrics for m in ms]
        for m in metrics:
            m.reset()
        loss_sum = dk.nd.zeros((1,), ctx=ctx)
        seen = 0
        timer = StepTimer()
        start = last_read = time.perf_counter()
        for step, (n, xs, ys, sws) in enumerate(_timed(source.batches(), timer)):
            self._last_batch = (n, xs, ys, sws)
            cb.call("on_train_batch_begin", step, {})
            t0 = time.perf_counter()
            exe = trainer.executor("train", n)
            self._feed(exe, xs, ys, sws, n)
            timer.data_s += time.perf_counter() - t0
            exe.forward(is_train=True)
            if exe.grad_dict:
                exe.backward()
                self.optimizer.apply(trainer.trainable_pairs(exe))
            loss_sum += exe.outputs[0] * n
            seen += n
            self._update_metrics(exe, n)
            now = time.perf_counter()
            if cb.requires_batch_logs or now - last_read >= _LOG_INTERVAL_S:
                last_read = now
                logs = batch_logs(loss_sum, seen, metrics)
                logs["samples/s"] = round(seen / max(time.perf_counter() - start, 1e-9))
                logs["data"] = f"{100 * timer.share():.0f}%"
                cb.call("on_train_batch_end", step, logs)
            else:
                cb.call("on_train_batch_end", step, None)
            if self.stop_training:
                break
        self._last_batch = None
        logs = batch_logs(loss_sum, seen, metrics)
        return logs

    def _feed(self, exe, xs, ys, sws, n):
        for name, host in xs.items():
            fill(exe.arg_dict[name], host, name)
        for name, host in ys.items():
            fill(exe.arg_dict[f"{name}_label"], host, f"{name}_label")
        for name in self.output_names:
            key = f"{name}_sample_weight"
            target = exe.arg_dict.get(key)
            if target is None:
                continue
            if name in sws:
                fill(target, sws[name], key)
                self._weighted[id(target)] = target
            elif self._weighted.get(id(target)) is target:  # bound as ones: reset only
                target[:] = 1.0                              # after real weights were fed
                del self._weighted[id(target)]

    def _update_metrics(self, exe, n):
        for i, ms in enumerate(self._metrics):
            if not ms:
                continue
            label = exe.arg_dict[f"{self.output_names[i]}_label"]
            out = exe.outputs[1 + i]
            for m in ms:
                m.update(label, out)

    def _split(self, x, y, sample_weight, fraction):
        if not 0 < fraction < 1:
            raise ValueError(f"validation_split must be in (0, 1), got {fraction}")
        from .training import _named  # noqa: PLC0415
        xs = _named(x, self.input_names, "x")
        n = len(next(iter(xs.values())))
        order = backend.rng().permutation(n)
        n_val = int(round(n * fraction))
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
        if len(self.outputs) != 1:
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
        if hasattr(data, "provide_data"):
            return (data, None, None)
        if len(data) == 2:
            return (data[0], data[1], None)
        if len(data) == 3:
            return tuple(data)
        raise ValueError("validation_data must be (x, y) or (x, y, sample_weight)")

    def evaluate(self, x=None, y=None, batch_size=32, verbose=0, sample_weight=None,
                 return_dict=False, steps=None, ctx=None):
        """The loss and metrics of the current weights in inference mode."""
        self._build_from_data(x)
        trainer = self._trainer(ctx)
        self._check_data(x, y)
        source = as_source(x, y, sample_weight, self, batch_size, False, steps)
        metrics = [m for ms in self._metrics for m in ms]
        for m in metrics:
            m.reset()
        loss_sum = dk.nd.zeros((1,), ctx=trainer.ctx)
        seen = 0
        for n, xs, ys, sws in source.batches():
            exe = trainer.executor("eval", n)
            self._feed(exe, xs, ys, sws, n)
            exe.forward(is_train=False)
            loss_sum += exe.outputs[0] * n
            seen += n
            self._update_metrics(exe, n)
        logs = batch_logs(loss_sum, seen, metrics)
        if verbose:
            print(" - ".join(f"{k}: {v:.4g}" for k, v in logs.items()))
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=32, verbose=0, steps=None, ctx=None):
        """Outputs for every sample (any batch size, the last batch may be partial)."""
        self._build_from_data(x)
        trainer = self._predict_trainer(ctx)
        self._check_data(x, None)
        source = as_source(x, None, None, self, batch_size, False, steps)
        chunks = [[] for _ in self.outputs]
        for n, xs, _, _ in source.batches():
            exe = trainer.executor("predict", n)
            self._feed(exe, xs, {}, {}, n)
            outs = exe.forward(is_train=False)
            for i, o in enumerate(outs):
                chunks[i].append(o.copy())
        results = [np.concatenate([c.asnumpy() for c in cs]) if cs else np.zeros((0,))
                   for cs in chunks]
        return results[0] if self._single_output else results

    def _predict_trainer(self, ctx):
        if self.optimizer is not None:
            return self._trainer(ctx)
        ctx = ctx or dk.current_context()
        trainer = self._trainers.get(("predict", ctx))
        if trainer is None:
            trainer = self._trainers[("predict", ctx)] = _PredictOnly(self, ctx)
        return trainer

    def train_on_batch(self, x, y, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on one batch; returns the batch loss (and metrics)."""
        self._build_from_data(x)
        trainer = self._trainer()
        self._check_data(x, y)
        if class_weight is not None:
            sample_weight = self._class_weights(y, class_weight, sample_weight)
        source = as_source(x, y, sample_weight, self, 1 << 62, False)
        metrics = [m for ms in self._metrics for m in ms]
        for m in metrics:
            m.reset()
        n, xs, ys, sws = next(iter(source.batches()))
        exe = trainer.executor("train", n)
        self._feed(exe, xs, ys, sws, n)
        exe.forward(is_train=True)
        if exe.grad_dict:
            exe.backward()
            self.optimizer.apply(trainer.trainable_pairs(exe))
        self._update_metrics(exe, n)
        logs = batch_logs(exe.outputs[0], 1, metrics)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def test_on_batch(self, x, y, sample_weight=None, return_dict=False):
        """Loss (and metrics) of one batch in inference mode, without updating."""
        return self.evaluate(x, y, batch_size=1 << 62, sample_weight=sample_weight,
                             return_dict=return_dict)

    def predict_on_batch(self, x):
        return self.predict(x, batch_size=1 << 62)

    def _build_from_data(self, x):
        if not self.built:
            raise DeepkitError(f"model '{self.name}' is not built: give it an Input layer")

    # -- saving ------------------------------------------------------------------------
    def save(self, path, include_optimizer=True):
        """Write one HDF5 file: architecture JSON, weights, optimizer state, training config."""
        from .saving import save_model  # noqa: PLC0415
        save_model(self, path, include_optimizer)

    def save_weights(self, path):
        """Write the weights to HDF5, grouped by layer name."""
        from .saving import save_weights  # noqa: PLC0415
        save_weights(self, path)

    def load_weights(self, path, skip_mismatch=False, by_name=True):
        """Read weights saved by ``save_weights``/``save``, matched by layer name."""
        from .saving import load_weights  # noqa: PLC0415
        load_weights(self, path, skip_mismatch=skip_mismatch)

    def get_config(self):
        from .saving import model_config  # noqa: PLC0415
        return model_config(self)


class _PredictOnly(Trainer):
    """Executors for predict() on a model that was never compiled."""

    def _build(self):
        from .layers.base import graph_version  # noqa: PLC0415
        key = (graph_version(), None)
        if key == self.version:
            return
        self.version = key
        self._executors = {}
        from deepkit_engine import symbol as sym  # noqa: PLC0415
        self.predict_symbol = sym.Group(self.model._output_symbols())
        self.train_symbol = None
        self.param_map = {p.name: p for p in self.model._all_params()}


def _timed(iterator, timer):
    it = iter(iterator)
    while True:
        t0 = time.perf_counter()
        try:
            item = next(it)
        except StopIteration:
            return
        timer.data_s += time.perf_counter() - t0
        yield item


class Sequential(Model):
    """A linear stack of layers: ``Sequential([Dense(64, input_shape=(784,)), Dense(10)])``.

    The model is built as soon as the input shape is known: from an ``Input``
    or ``InputLayer`` first, from ``input_shape=`` on the first layer, from
    :meth:`build`, or from the data given to ``fit``/``predict``.
    """

    def __init__(self, layers=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self._stack = []
        self._tensors = []
        self.layers = []
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        """Append a layer (or an Input tensor, which fixes the input shape)."""
        if isinstance(layer, SymbolicTensor):
            layer = layer.layer
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add needs a Layer, got {type(layer).__name__}")
        if isinstance(layer, InputLayer) and self._stack:
            raise ValueError("an Input can only be the first entry of a Sequential")
        self._stack.append(layer)
        if self.built and not isinstance(layer, InputLayer):
            self._tensors.append(layer(self._tensors[-1]))
            self._init_graph(self._tensors[0], self._tensors[-1])
            return
        shape = self._known_input_shape()
        if shape is not None:
            self.build(shape)
        else:
            self.layers = list(self._stack)

    def _known_input_shape(self):
        if not self._stack:
            return None
        first = self._stack[0]
        if isinstance(first, InputLayer):
            return (None,) + first.sample_shape
        return first._input_shape_arg

    def build(self, input_shape=None):
        """Build the graph for samples of ``input_shape`` (batch axis first, may be None)."""
        if input_shape is None:
            input_shape = self._known_input_shape()
        if input_shape is None:
            self._require_built("build")
        first = self._stack[0] if self._stack else None
        if isinstance(first, InputLayer):
            tensor = first.output
            rest = self._stack[1:]
        else:
            tensor = InputLayer(shape=tuple(input_shape[1:]),
                                name=f"{self.name}_input").output
            rest = self._stack
        self._tensors = [tensor]
        for layer in rest:
            self._tensors.append(layer(self._tensors[-1]))
        self._init_graph(self._tensors[0], self._tensors[-1])

    def _build_from_data(self, x):
        if self.built:
            return
        if x is None or not hasattr(x, "shape"):
            self._require_built("run on this data")
        self.build((None,) + tuple(np.shape(x)[1:]))

    def pop(self):
        """Remove the last layer (and really drop it from the graph)."""
        if not self._stack:
            raise ValueError("Sequential.pop: the model has no layers")
        layer = self._stack.pop()
        if self.built and not isinstance(layer, InputLayer) and len(self._tensors) > 1:
            self._tensors.pop()
            self._init_graph(self._tensors[0], self._tensors[-1])
        else:
            self.built = False
            self.layers = list(self._stack)
        return layer
