"""``Sequential``: a linear stack of layers, built as soon as the input shape is known."""
import numpy as np

from ..layers.base import InputLayer, Layer, SymbolicTensor
from .functional import Model, layer_entry

__all__ = ["Sequential"]


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

    @property
    def stack(self):
        """The layers in the order they were added (an Input first, when one was given)."""
        return list(self._stack)

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

    def get_config(self):
        """The architecture as JSON-ready data: the layer stack (Keras's layout)."""
        self._require_built("be saved")
        first = self._stack[0] if self._stack else None
        layers = [layer_entry(layer) for layer in self._stack]
        return {"class_name": "Sequential",
                "config": {"name": self.name, "layers": layers,
                           "input_shape": list(self.inputs[0].shape[1:]),
                           "input_name": self.input_names[0] if first is None
                           or type(first).__name__ != "InputLayer" else None}}
