"""``clone_model``: the same architecture with new layers (and new weights), as Keras's."""
from ..layers.base import Input, InputLayer, as_list
from .functional import Model
from .sequential import Sequential

__all__ = ["clone_model"]


def _clone_layer(layer):
    return type(layer).from_config(layer.get_config())


def clone_model(model, clone_function=None):
    """A new model with the architecture of ``model`` and freshly initialized weights.

    Args:
        model: A functional or Sequential model.
        clone_function: ``layer -> new layer``, applied to every layer other
            than the inputs (default: a new layer from its config; return the
            layer itself to share it).

    Returns:
        A model of the same class (Sequential or functional) and layer names.
    """
    clone = clone_function or _clone_layer
    if isinstance(model, Sequential):
        model._require_built("be cloned")
        first = model.layers[0] if model.layers else None
        explicit_input = isinstance(first, InputLayer) and first in model.stack
        copy = Sequential(name=model.name)
        if explicit_input:
            copy.add(Input(shape=first.sample_shape, name=first.name))
        for layer in model.stack:
            if not isinstance(layer, InputLayer):
                copy.add(clone(layer))
        if not copy.built:
            copy.build((None,) + tuple(model.inputs[0].shape[1:]))
        return copy
    model._require_built("be cloned")
    tensors = {}
    for t in model.inputs:
        tensors[id(t)] = Input(shape=t.layer.sample_shape, name=t.layer.name)
    new_layers = {}
    for layer, node in model.calls():
        new = new_layers.get(id(layer))
        if new is None:
            new = new_layers[id(layer)] = clone(layer)
        ins = [tensors[id(t)] for t in node.inputs]
        outs = as_list(new(ins if node.list_input else ins[0]))
        for old_t, new_t in zip(node.outputs, outs):
            tensors[id(old_t)] = new_t
    inputs = [tensors[id(t)] for t in model.inputs]
    outputs = [tensors[id(t)] for t in model.outputs]
    return Model(inputs if len(inputs) > 1 else inputs[0],
                 outputs if len(outputs) > 1 else outputs[0], name=model.name)
