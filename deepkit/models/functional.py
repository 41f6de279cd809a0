"""The functional ``Model(inputs, outputs)``: a graph of layer calls, trained by ``Trainer``.

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
import json

import numpy as np

from deepkit_engine import symbol as sym
from deepkit_engine.base import DeepkitError, did_you_mean

from .. import saving
from ..layers.base import (InputLayer, Layer, SymbolicTensor, as_list, bump_graph_version,
                           graph_version)
from ..trainer.trainer import Trainer

__all__ = ["Model", "layer_entry"]


def layer_entry(layer):
    """``{class_name, config}`` of a layer or nested model, for a model's config."""
    if isinstance(layer, Model):
        config = layer.get_config()
        return {"class_name": config["class_name"], "config": config["config"]}
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


class Model(Trainer, Layer):
    """A graph of layers from input tensors to output tensors (Keras's functional API).

    ``Model(inputs, outputs)`` with one or several of each; layers may be
    shared and models may be used as layers. ``Model(inputs,
    some_layer.output)`` gives a feature extractor that shares the weights.
    Training (``compile``, ``fit``, ``evaluate``, ``predict`` and the
    overridable ``train_step``/``test_step``/``predict_step``) comes from
    :class:`~deepkit.trainer.Trainer`.
    """

    def __init__(self, inputs=None, outputs=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self._init_trainer()
        if inputs is not None or outputs is not None:
            self._init_graph(inputs, outputs)

    # -- graph ---------------------------------------------------------------------
    def _init_graph(self, inputs, outputs):
        self._single_input = not isinstance(inputs, (list, tuple))
        self._single_output = not isinstance(outputs, (list, tuple))
        self.inputs = as_list(inputs)
        self.outputs = as_list(outputs)
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

    def with_outputs(self, outputs, name=None):
        """A functional model from this model's inputs to ``outputs``, sharing the weights.

        ``model.with_outputs(model.get_layer('conv2').output)`` is a feature
        extractor (Keras: ``Model(model.inputs, layer.output)``).
        """
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return Model(self.inputs if len(self.inputs) > 1 else self.inputs[0],
                     list(outputs) if len(outputs) > 1 else outputs[0], name=name)

    def calls(self):
        """``[(layer, node)]``: every layer call from the inputs to the outputs, in order."""
        return list(self._calls)

    def to_json(self, **kwargs):
        """The architecture (``get_config()``) as a JSON string."""
        return json.dumps(self.get_config(), **kwargs)

    def _replay(self, input_symbols):
        """Rebuild the output symbols from the layers, on the given input symbols."""
        memo = {id(t): s for t, s in zip(self.inputs, input_symbols)}
        for layer, node in self._calls:
            ins = [memo[id(t)] for t in node.inputs]
            outs = layer.call(ins if node.list_input else ins[0])
            for t, s in zip(node.outputs, as_list(outs)):
                memo[id(t)] = s
        return [memo[id(t)] for t in self.outputs]

    def output_symbols(self):
        """The output symbols, rebuilt from the layers on fresh input variables."""
        return self._replay([sym.Variable(n) for n in self.input_names])

    def input_sample_shapes(self):
        """The shape of one sample of each input (no batch axis)."""
        return [t.shape[1:] for t in self.inputs]

    @property
    def label_names(self):
        """The label variable of each output in the training program (``<output>_label``)."""
        return [f"{name}_label" for name in self.output_names]

    @property
    def single_output(self):
        """Whether ``predict`` returns one array (not a list)."""
        return self._single_output

    def graph_version(self):
        """Changes whenever a layer's structure changes (freezing, say)."""
        return graph_version()

    def call(self, inputs):
        outs = self._replay(as_list(inputs))
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
        bump_graph_version()

    def _all_params(self):
        params, seen = [], set()
        for layer in self.layers:
            sub = layer.weights if isinstance(layer, Model) else layer.params.values()
            for p in sub:
                if id(p) not in seen:
                    seen.add(id(p))
                    params.append(p)
        return params

    @property
    def weights(self):
        """Every parameter of the model (trainable or not), each once."""
        return self._all_params()

    @property
    def trainable_weights(self):
        return [p for p in self.weights if p.trainable]

    @property
    def non_trainable_weights(self):
        return [p for p in self.weights if not p.trainable]

    def count_params(self):
        return int(sum(np.prod(p.shape) for p in self.weights))

    def get_weights(self):
        self.initialize_weights()
        return [p.data.asnumpy() for p in self.weights]

    def set_weights(self, weights):
        params = self.weights
        if len(weights) != len(params):
            raise ValueError(f"model '{self.name}' has {len(params)} weights but "
                             f"{len(weights)} arrays were given")
        self.initialize_weights()
        for p, w in zip(params, weights):
            w = np.asarray(w)
            if w.shape != p.shape:
                raise ValueError(f"weight '{p.name}' has shape {p.shape} but the array given "
                                 f"has shape {w.shape}")
            p.data[:] = w.astype(p.dtype)

    def weight_layers(self):
        """The layers holding weights, those of nested models included (in order)."""
        found = []
        for layer in self.layers:
            if isinstance(layer, Model):
                found.extend(layer.weight_layers())
            elif layer.params:
                found.append(layer)
        return found

    def get_layer(self, name=None, index=None):
        """A layer by name (with a did-you-mean) or by index."""
        self._require_built("look up layers")
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
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
                else sum(int(np.prod(p.shape)) for p in layer.weights)
            rows.append((f"{layer.name} ({type(layer).__name__})", str(shape), f"{count:,}"))
        lines = [f'Model: "{self.name}"', "=" * line_length]
        for i, row in enumerate(rows):
            lines.append("".join((c + " ").ljust(w) for c, w in zip(row, widths)).rstrip())
            lines.append(("=" if i == 0 else "_") * line_length)
        trainable = sum(int(np.prod(p.shape)) for p in self.weights if p.trainable)
        total = sum(int(np.prod(p.shape)) for p in self.weights)
        lines += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                  f"Non-trainable params: {total - trainable:,}", "_" * line_length]
        text = "\n".join(lines)
        if print_fn is not None:
            print_fn(text)
        return text

    def _build_from_data(self, x):
        if not self.built:
            raise DeepkitError(f"model '{self.name}' is not built: give it an Input layer")

    # -- saving ------------------------------------------------------------------------
    def save(self, path, include_optimizer=True):
        """Write the whole model to one file, in the format its extension names.

        ``.h5``/``.hdf5``: deepkit's HDF5 model file (architecture JSON,
        weights, optimizer state, training config), read by
        :func:`deepkit.models.load_model`. Other extensions are refused with
        the supported formats named, rather than written as something else.
        """
        saving.check_model_path(path)
        saving.save_model(self, path, include_optimizer)

    def save_weights(self, path):
        """Write the weights to HDF5, grouped by layer name."""
        saving.save_weights(self, path)

    def load_weights(self, path, skip_mismatch=False, by_name=True):
        """Read weights saved by ``save_weights``/``save``, matched by layer name."""
        saving.load_weights(self, path, skip_mismatch=skip_mismatch)

    def get_config(self):
        """The architecture as JSON-ready data (Keras's layout): layers and their calls."""
        self._require_built("be saved")
        calls = {}
        for layer, node in self._calls:
            calls.setdefault(id(layer), []).append(node)
        tensor_ref = {}
        for t in self.inputs:
            tensor_ref[id(t)] = [t.layer.name, 0, 0]
        for layer, node in self._calls:
            k = calls[id(layer)].index(node)
            for i, t in enumerate(node.outputs):
                tensor_ref[id(t)] = [layer.name, k, i]
        layers = []
        for layer in self.layers:
            entry = layer_entry(layer)
            entry["name"] = layer.name
            entry["inbound_nodes"] = [
                {"inputs": [tensor_ref[id(t)] for t in node.inputs], "list": node.list_input}
                for node in calls.get(id(layer), [])]
            layers.append(entry)
        return {"class_name": "Model",
                "config": {"name": self.name, "layers": layers,
                           "input_layers": [tensor_ref[id(t)] for t in self.inputs],
                           "output_layers": [tensor_ref[id(t)] for t in self.outputs]}}
