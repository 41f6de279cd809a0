"""The layer life cycle: ``__init__`` -> ``build(input_shape)`` -> ``call(symbols)``.

A layer turns input symbols into output symbols (engine ``Symbol``s) and
declares its parameters with :meth:`Layer.add_weight`. Calling a layer on
:class:`SymbolicTensor` s (what :func:`Input` returns) builds it, infers its
output shape at once (Lasagne's eager shapes) and records the connection, so
that a :class:`~deepkit.models.Model` can be made from inputs and outputs.

Every layer has a unique name and its parameters are visible:
``layer.params`` (``{short name: Parameter}``), ``layer.get_params(trainable=True)``,
``layer.get_weights()``. Parameter variables are named ``<layer>_<param>``
(``dense_weight``), the engine's convention, so weights move to and from
MXNet and Caffe by name.
"""
import collections
import functools
import inspect
import re
import weakref

import numpy as np

import deepkit_engine as dk
from deepkit_engine import nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import DeepkitError, did_you_mean

from .. import backend, constraints, initializers, regularizers

__all__ = ["Layer", "Parameter", "SymbolicTensor", "Input", "InputLayer", "unique_name",
           "reset_names", "as_list", "graph_version", "bump_graph_version", "set_mask",
           "get_mask"]

_name_counts = collections.Counter()
#: Placeholder batch size used for shape inference while building layers.
INFER_BATCH = 1


def _snake(name):
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


def unique_name(base):
    """``base``, then ``base_1``, ``base_2`` ... (Keras's layer naming)."""
    count = _name_counts[base]
    _name_counts[base] += 1
    return base if count == 0 else f"{base}_{count}"


def reset_names():
    """Start automatic layer names afresh (as ``keras.backend.clear_session``)."""
    _name_counts.clear()


_MASKS = {}


def set_mask(symbol, mask):
    """Record ``mask`` (a (batch, timesteps) symbol, or None) as the mask of ``symbol``.

    A mask hangs off the symbol a layer's ``call`` returns (Keras's
    ``_keras_mask``), so it is found again whenever a model replays its layers.

    Returns:
        ``symbol``.
    """
    key = id(symbol)
    if mask is None:
        _MASKS.pop(key, None)
        return symbol
    _MASKS[key] = (weakref.ref(symbol, lambda _ref, key=key: _MASKS.pop(key, None)), mask)
    return symbol


def get_mask(symbol):
    """The mask recorded for ``symbol``, or None."""
    entry = _MASKS.get(id(symbol))
    if entry is None or entry[0]() is not symbol:
        return None
    return entry[1]


def _propagating_masks(call):
    """Wrap a layer's ``call`` so that its outputs carry ``compute_mask``'s mask (Keras)."""
    @functools.wraps(call)
    def wrapper(self, inputs, *args, **kwargs):
        out = call(self, inputs, *args, **kwargs)
        masks = [get_mask(x) for x in as_list(inputs)]
        if all(m is None for m in masks):
            return out
        outs = as_list(out)
        if any(get_mask(o) is not None for o in outs):
            return out
        mask = self.compute_mask(inputs, masks if isinstance(inputs, (list, tuple)) else masks[0])
        out_masks = list(mask) if isinstance(mask, (list, tuple)) else [mask] * len(outs)
        for o, m in zip(outs, out_masks):
            set_mask(o, m)
        return out
    wrapper.propagates_masks = True
    return wrapper


class Parameter:
    """One weight of a layer, with Lasagne-style tags and its training knobs.

    Attributes:
        name: Full name ``<layer>_<short>``; the engine variable's name.
        short_name: The name within the layer (``weight``, ``bias``, ...).
        shape, dtype: Of the array.
        initializer: Makes the initial value.
        regularizer: Adds a penalty on this weight to the loss, or None.
        constraint: Applied to the value after each update, or None.
        trainable: Gets gradients and updates (also off when its layer is frozen).
        regularizable: Tag for regularization (biases are not, by default).
        lr_mult, wd_mult: Per-parameter learning-rate and weight-decay multipliers.
        aux: An auxiliary state (BatchNorm's moving statistics): updated by the
            forward pass, never by the optimizer.
        data: The NDArray holding the value once the model is initialized.
    """

    def __init__(self, layer, short_name, shape, dtype, initializer, regularizer=None,
                 constraint=None, trainable=True, regularizable=True, lr_mult=1.0, wd_mult=1.0,
                 aux=False):
        self.layer = layer
        self.short_name = short_name
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.initializer = initializers.get(initializer)
        self.regularizer = regularizer
        self.constraint = constraint
        self._trainable = bool(trainable)
        self.regularizable = bool(regularizable)
        self.lr_mult = float(lr_mult)
        self.wd_mult = float(wd_mult)
        self.aux = bool(aux)
        self.data = None
        self.var = sym.Variable(self.name, shape=self.shape, dtype=self.dtype,
                                lr_mult=self.lr_mult, wd_mult=self.wd_mult)

    @property
    def name(self):
        return f"{self.layer.name}_{self.short_name}"

    @property
    def trainable(self):
        """True when this parameter is updated: its own flag and its layer's."""
        return self._trainable and not self.aux and self.layer.trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)

    def initialize(self, ctx, force=False):
        """Create ``data`` from the initializer (once, unless ``force``)."""
        if self.data is not None and not force:
            return self.data
        value = self.initializer(self.shape, self.dtype, backend.rng())
        value = np.asarray(value, dtype=self.dtype)
        if value.shape != self.shape:
            raise DeepkitError(f"initializer {self.initializer!r} of '{self.name}' returned "
                               f"shape {value.shape}, expected {self.shape}")
        if self.data is None or self.data.ctx != ctx:
            self.data = nd.array(value, ctx=ctx, dtype=self.dtype)
        else:
            self.data[:] = value
        return self.data

    def __repr__(self):
        tags = [t for t in ("trainable", "regularizable") if getattr(self, t)]
        return f"<Parameter {self.name} {self.shape} {' '.join(tags)}>"


class SymbolicTensor:
    """A layer output before any data flows: its symbol, shape and origin.

    ``shape`` has ``None`` for the batch axis, as in Keras.
    """

    __slots__ = ("symbol", "shape", "dtype", "layer", "node_index", "tensor_index")

    def __init__(self, symbol, shape, dtype, layer, node_index, tensor_index):
        self.symbol, self.shape, self.dtype = symbol, tuple(shape), np.dtype(dtype)
        self.layer, self.node_index, self.tensor_index = layer, node_index, tensor_index

    @property
    def name(self):
        return self.symbol.list_outputs()[0]

    def __repr__(self):
        return f"<SymbolicTensor shape={self.shape} dtype={self.dtype} from '{self.layer.name}'>"


class _Node:
    """One call of a layer: which tensors went in (as a list or not) and which came out."""

    __slots__ = ("inputs", "outputs", "list_input")

    def __init__(self, inputs, outputs, list_input=False):
        self.inputs, self.outputs, self.list_input = inputs, outputs, list_input


def as_list(x):
    """``x`` as a list: lists and tuples become lists, anything else a one-entry list."""
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _batch_shape(shape):
    return (INFER_BATCH,) + tuple(shape[1:])


def _user_shape(shape):
    return (None,) + tuple(shape[1:])


class Layer:
    """Base class of every layer. Subclasses implement ``build`` and ``call``.

    Args:
        name: Unique name (default: snake_case class name plus a counter).
        trainable: Whether its parameters are updated (freezing also puts
            BatchNormalization into inference mode).
        dtype: Parameter dtype (default float32).
        input_shape: Shape of one sample, for the first layer of a Sequential.
        batch_input_shape: Alternatively, with the batch size first.
    """

    #: Whether the layer passes an input mask on unchanged (Keras); see :meth:`compute_mask`.
    supports_masking = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        call = cls.__dict__.get("call")
        if call is not None and not getattr(call, "propagates_masks", False):
            cls.call = _propagating_masks(call)

    def compute_mask(self, inputs, mask=None):
        """The mask of the output given the input's (Keras): ``mask`` if
        :attr:`supports_masking`, else None. Runs after :meth:`call` when an
        input carries a mask and ``call`` did not set the output's own."""
        return mask if self.supports_masking else None

    def __init__(self, name=None, trainable=True, dtype=None, input_shape=None,
                 batch_input_shape=None, **kwargs):
        if kwargs:
            key = next(iter(kwargs))
            raise TypeError(f"{type(self).__name__}: unknown argument '{key}'"
                            f"{did_you_mean(key, self._known_arguments())}")
        self.name = name or unique_name(_snake(type(self).__name__))
        self._trainable = bool(trainable)
        self.dtype = np.dtype(dtype or backend.floatx())
        self.params = collections.OrderedDict()
        self.built = False
        self._nodes = []
        self._build_input_shape = None
        if batch_input_shape is not None:
            self._input_shape_arg = (None,) + tuple(batch_input_shape[1:])
        elif input_shape is not None:
            self._input_shape_arg = (None,) + tuple(input_shape)
        else:
            self._input_shape_arg = None

    def _known_arguments(self):
        names = set()
        for cls in type(self).__mro__:
            if "__init__" in cls.__dict__:
                names.update(inspect.signature(cls.__init__).parameters)
        return names - {"self", "kwargs"}

    # -- parameters ------------------------------------------------------------------
    def add_weight(self, name, shape, initializer="glorot_uniform", regularizer=None,
                   constraint=None, trainable=True, regularizable=True, lr_mult=1.0,
                   wd_mult=1.0, aux=False, dtype=None):
        """Declare a parameter; returns its :class:`Parameter` (use ``.var`` in ``call``)."""
        param = Parameter(self, name, shape, dtype or self.dtype, initializer,
                          regularizers.get(regularizer), constraints.get(constraint), trainable,
                          regularizable, lr_mult, wd_mult, aux)
        self.params[name] = param
        return param

    def get_params(self, **tags):
        """Parameters whose tags match, e.g. ``get_params(trainable=True)`` (Lasagne)."""
        return [p for p in self.params.values()
                if all(getattr(p, k) == v for k, v in tags.items())]

    @property
    def weights(self):
        return list(self.params.values())

    @property
    def trainable_weights(self):
        return [p for p in self.params.values() if p.trainable]

    @property
    def non_trainable_weights(self):
        return [p for p in self.params.values() if not p.trainable]

    def get_weights(self):
        """The parameter values as numpy arrays (in declaration order)."""
        self._require_initialized()
        return [p.data.asnumpy() for p in self.params.values()]

    def set_weights(self, weights):
        """Set the parameter values from numpy arrays (in declaration order)."""
        self._require_initialized()
        params = list(self.params.values())
        if len(weights) != len(params):
            raise ValueError(f"layer '{self.name}' has {len(params)} weights "
                             f"({', '.join(p.short_name for p in params)}) but {len(weights)} "
                             "arrays were given")
        for p, w in zip(params, weights):
            w = np.asarray(w)
            if w.shape != p.shape:
                raise ValueError(f"layer '{self.name}': weight '{p.short_name}' has shape "
                                 f"{p.shape} but the array given has shape {w.shape}")
            p.data[:] = w.astype(p.dtype)

    def _require_initialized(self):
        """Initialise the weights on the current device if they have no values yet (Keras)."""
        if not self.built:
            raise DeepkitError(f"layer '{self.name}' has no weights yet: call it on an input "
                               "(or build its model) first")
        for p in self.params.values():
            if p.data is None:
                p.initialize(dk.current_context())

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)
        bump_graph_version()

    # -- life cycle ----------------------------------------------------------------
    def build(self, input_shape):
        """Create the parameters, knowing the input shape (batch axis is None)."""

    def call(self, inputs):
        """Map input symbol(s) to output symbol(s). Subclasses must implement it."""
        raise NotImplementedError(f"{type(self).__name__} does not implement call()")

    def compute_output_shape(self, input_shape):
        """The output shape(s) for an input shape; by default inferred by the engine.

        The default runs :meth:`call` on probe variables. ``call`` must be pure:
        a function of its input symbols and the layer's parameters, with no
        other effect, because it runs once per use of the layer and again
        whenever a model rebuilds its programs (after freezing a layer, say).
        """
        shapes = as_list(input_shape) if isinstance(input_shape, list) else [input_shape]
        variables = [sym.Variable(f"__shape_probe_{i}") for i in range(len(shapes))]
        out = self.call(variables if isinstance(input_shape, list) else variables[0])
        return self._infer_output_shapes(out, input_shape)

    def __call__(self, inputs):
        tensors = as_list(inputs)
        for t in tensors:
            if not isinstance(t, SymbolicTensor):
                raise TypeError(f"{type(self).__name__} '{self.name}' must be called on the "
                                f"output of Input() or of another layer, got "
                                f"{type(t).__name__}; to run on data use a Model")
        shapes = [t.shape for t in tensors]
        input_shape = shapes if isinstance(inputs, (list, tuple)) else shapes[0]
        if not self.built:
            self._build_input_shape = input_shape
            try:
                self.build(input_shape)
            except (ValueError, DeepkitError) as err:
                raise type(err)(f"{type(self).__name__} '{self.name}' cannot be built on input "
                                f"shape {input_shape}: {err}") from err
            self.built = True
        else:
            self._check_input_shape(input_shape)
        symbols = [t.symbol for t in tensors]
        list_input = isinstance(inputs, (list, tuple))
        if type(self).compute_output_shape is Layer.compute_output_shape:
            out_symbols, out_shapes = self._call_with_shapes(symbols, input_shape, list_input)
        else:
            out_symbols = self.call(symbols if list_input else symbols[0])
            out_shapes = self._checked_output_shape(input_shape)
        outs = as_list(out_symbols)
        out_shape_list = out_shapes if isinstance(out_symbols, (list, tuple)) else [out_shapes]
        node_index = len(self._nodes)
        results = [SymbolicTensor(s, shp, self.dtype, self, node_index, i)
                   for i, (s, shp) in enumerate(zip(outs, out_shape_list))]
        self._nodes.append(_Node(tensors, results, isinstance(inputs, (list, tuple))))
        return results if isinstance(out_symbols, (list, tuple)) else results[0]

    def _call_with_shapes(self, symbols, input_shape, list_input):
        """Run :meth:`call` once, on probe variables, then put the real inputs in.

        The probe graph is small, so the engine infers the output shapes from
        it cheaply; composing it onto the real input symbols gives the
        layer's outputs in the model's graph.
        """
        probes = [sym.Variable(f"__shape_probe_{i}") for i in range(len(symbols))]
        probe_out = self.call(probes if list_input else probes[0])
        try:
            out_shapes = self._infer_output_shapes(probe_out, input_shape)
        except DeepkitError as err:
            raise DeepkitError(f"Input to layer '{self.name}' ({type(self).__name__}) is "
                               f"incompatible: input shape {input_shape}: {err}") from None
        group = sym.Group(as_list(probe_out))
        used = set(group.list_inputs())
        composed = group(**{p.name: s for p, s in zip(probes, symbols) if p.name in used})
        outs = list(composed)
        return (outs if isinstance(probe_out, (list, tuple)) else outs[0]), out_shapes

    def _checked_output_shape(self, input_shape):
        try:
            return self.compute_output_shape(input_shape)
        except DeepkitError as err:
            raise DeepkitError(f"Input to layer '{self.name}' ({type(self).__name__}) is "
                               f"incompatible: input shape {input_shape}: {err}") from None

    def _infer_output_shapes(self, out, input_shape):
        """Output shape(s) of ``call``'s result on probe variables, by engine inference."""
        shapes = as_list(input_shape) if isinstance(input_shape, list) else [input_shape]
        given = {f"__shape_probe_{i}": _batch_shape(s) for i, s in enumerate(shapes)}
        for p in self.params.values():
            given[p.name] = p.shape
        outs = []
        for o in as_list(out):
            _, out_shapes, _ = o.infer_shape_known(**{k: v for k, v in given.items()
                                                        if k in o.list_inputs()})
            if out_shapes[0] is None:
                raise DeepkitError(f"{type(self).__name__} '{self.name}': cannot infer the "
                                   f"output shape for input shape {input_shape}")
            outs.append(_user_shape(out_shapes[0]))
        return outs if isinstance(out, (list, tuple)) else outs[0]

    def _check_input_shape(self, input_shape):
        built = self._build_input_shape
        if built is None:
            return
        a = as_list(built) if isinstance(built, list) else [built]
        b = as_list(input_shape) if isinstance(input_shape, list) else [input_shape]
        for i, (x, y) in enumerate(zip(a, b)):
            if tuple(x[1:]) != tuple(y[1:]):
                raise ValueError(f"Input {i} of layer '{self.name}' ({type(self).__name__}) is "
                                 f"incompatible with the layer: it was built for shape {x}, "
                                 f"got shape {y}")

    # -- introspection ---------------------------------------------------------------
    @property
    def output(self):
        """The output tensor of the layer's (single) call."""
        if not self._nodes:
            raise DeepkitError(f"layer '{self.name}' has not been called yet, so it has no "
                               "output")
        if len(self._nodes) > 1:
            raise DeepkitError(f"layer '{self.name}' is shared ({len(self._nodes)} calls); use "
                               "get_output_at(i)")
        outs = self._nodes[0].outputs
        return outs[0] if len(outs) == 1 else outs

    def get_output_at(self, index):
        outs = self._nodes[index].outputs
        return outs[0] if len(outs) == 1 else outs

    @property
    def input(self):
        if not self._nodes:
            raise DeepkitError(f"layer '{self.name}' has not been called yet")
        ins = self._nodes[0].inputs
        return ins[0] if len(ins) == 1 else ins

    @property
    def output_shape(self):
        out = self.output
        return [t.shape for t in out] if isinstance(out, list) else out.shape

    @property
    def input_shape(self):
        if self._build_input_shape is not None:
            return self._build_input_shape
        return self._input_shape_arg

    def count_params(self):
        return int(sum(np.prod(p.shape) for p in self.params.values()))

    # -- configuration ---------------------------------------------------------------
    def get_config(self):
        """Constructor arguments as plain values (JSON-serialisable)."""
        config = {"name": self.name, "trainable": self._trainable, "dtype": self.dtype.name}
        if self._input_shape_arg is not None:
            config["input_shape"] = list(self._input_shape_arg[1:])
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} '{self.name}'>"


_graph_version = [0]


def bump_graph_version():
    """Note a structure-affecting change (freezing): models rebuild their programs."""
    _graph_version[0] += 1


def graph_version():
    """A counter that changes with every structure-affecting change of any layer."""
    return _graph_version[0]


class InputLayer(Layer):
    """The source of a model input: a data variable named after the layer."""

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, **kwargs):
        super().__init__(name=name or unique_name("input"), dtype=dtype, **kwargs)
        if shape is None:
            raise ValueError("InputLayer: shape (of one sample, without the batch axis) is "
                             "required, e.g. Input(shape=(1, 28, 28))")
        self.sample_shape = tuple(int(s) for s in shape)
        self.batch_size = batch_size
        self.built = True
        variable = sym.Variable(self.name)
        tensor = SymbolicTensor(variable, (None,) + self.sample_shape, self.dtype, self, 0, 0)
        self._nodes.append(_Node([], [tensor]))
        self._build_input_shape = tensor.shape

    def call(self, inputs):
        return inputs

    def get_config(self):
        return {"name": self.name, "shape": list(self.sample_shape), "dtype": self.dtype.name,
                "batch_size": self.batch_size}


def Input(shape=None, batch_size=None, name=None, dtype=None):
    """A model input: ``Input(shape=(1, 28, 28))`` (one sample's shape, NCHW images)."""
    return InputLayer(shape=shape, batch_size=batch_size, name=name, dtype=dtype).output
