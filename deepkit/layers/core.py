"""Core layers: Dense, Activation, Dropout, Flatten, Reshape, Permute, RepeatVector, Lambda."""
import sys

import numpy as np

from deepkit_engine import symbol as sym
from deepkit_engine.base import DeepkitError

from .. import activations, constraints, initializers, regularizers, saving
from .base import Layer

__all__ = ["Dense", "Activation", "Dropout", "Flatten", "Reshape", "Permute", "RepeatVector",
           "Lambda"]


def _ser(obj, module):
    if obj is None:
        return None
    if isinstance(obj, str):
        return obj
    if not hasattr(obj, "get_config"):
        name = getattr(obj, "__name__", type(obj).__name__)
        raise ValueError(f"{module.__name__.rsplit('.', 1)[-1]}: the function {name!r} cannot be "
                         "saved in a layer config; use one of the module's classes, or a "
                         "subclass with get_config()")
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


class Dense(Layer):
    """Fully connected layer: ``y = activation(x @ W.T + b)`` on the last axis.

    The weight has shape ``(units, in_features)``: the engine's, MXNet's and
    Caffe's layout (Keras stores the transpose), so weights move between them
    without transposes.

    Args:
        units: Output width (positive int).
        activation: Name, callable or None (linear).
        use_bias: Whether to add a bias vector.
        kernel_initializer, bias_initializer: For ``weight`` and ``bias``.
        kernel_regularizer, bias_regularizer: Penalties added to the loss.
        kernel_constraint, bias_constraint: Applied after each update.
        lr_mult, wd_mult: Learning-rate and weight-decay multipliers of both.

    Input shape: ``(batch, ..., in_features)``. Output: ``(batch, ..., units)``.
    """

    supports_masking = True

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, lr_mult=1.0, wd_mult=1.0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units < 1:
            raise ValueError(f"Dense: 'units' must be a positive int. Received: units={units!r}")
        self.units = int(units)
        self.activation = activation
        self._activation_fn = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.lr_mult, self.wd_mult = float(lr_mult), float(wd_mult)

    def build(self, input_shape):
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(f"Dense needs inputs of shape (batch, ..., features) with a known "
                             f"last axis, got {input_shape}")
        self.weight = self.add_weight("weight", (self.units, input_shape[-1]),
                                      self.kernel_initializer, self.kernel_regularizer,
                                      self.kernel_constraint, lr_mult=self.lr_mult,
                                      wd_mult=self.wd_mult)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.units,), self.bias_initializer,
                                        self.bias_regularizer, self.bias_constraint,
                                        regularizable=False, lr_mult=self.lr_mult,
                                        wd_mult=self.wd_mult)
        self._flatten = len(input_shape) == 2

    def call(self, inputs):
        kwargs = {"weight": self.weight.var, "num_hidden": self.units,
                  "flatten": self._flatten, "no_bias": not self.use_bias, "name": self.name}
        if self.use_bias:
            kwargs["bias"] = self.bias.var
        out = sym.FullyConnected(inputs, **kwargs)
        return self._activation_fn(out)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, activation=activations.serialize(self.activation),
                      use_bias=self.use_bias,
                      kernel_initializer=initializers.serialize(self.kernel_initializer),
                      bias_initializer=initializers.serialize(self.bias_initializer),
                      kernel_regularizer=_ser(self.kernel_regularizer, regularizers),
                      bias_regularizer=_ser(self.bias_regularizer, regularizers),
                      kernel_constraint=_ser(self.kernel_constraint, constraints),
                      bias_constraint=_ser(self.bias_constraint, constraints),
                      lr_mult=self.lr_mult, wd_mult=self.wd_mult)
        return config


class Activation(Layer):
    """Applies an activation function (by name or callable)."""

    supports_masking = True

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activation
        self._fn = activations.get(activation)

    def call(self, inputs):
        return self._fn(inputs)

    def get_config(self):
        config = super().get_config()
        config["activation"] = activations.serialize(self.activation)
        return config


class Dropout(Layer):
    """Zeroes a fraction ``rate`` of the inputs in training (scaled by 1/(1-rate)).

    Identity at inference. ``noise_shape`` axes of size 1 share one mask value.
    """

    supports_masking = True

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"Dropout: 'rate' must be in [0, 1). Received: rate={rate!r}")
        self.rate = float(rate)
        self.noise_shape = tuple(noise_shape) if noise_shape is not None else None
        self.seed = seed

    def call(self, inputs):
        axes = ()
        if self.noise_shape is not None:
            axes = tuple(i for i, n in enumerate(self.noise_shape) if n == 1)
        return sym.Dropout(inputs, p=self.rate, axes=axes, name=self.name)

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, noise_shape=self.noise_shape, seed=self.seed)
        return config


class Flatten(Layer):
    """Collapses every axis but the batch axis."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = data_format

    def call(self, inputs):
        return sym.flatten(inputs, name=self.name)

    def get_config(self):
        config = super().get_config()
        config["data_format"] = self.data_format
        return config


class Reshape(Layer):
    """Reshapes each sample to ``target_shape`` (one entry may be -1)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(s) for s in target_shape)

    def call(self, inputs):
        return sym.reshape(inputs, shape=(0,) + self.target_shape, name=self.name)

    def get_config(self):
        config = super().get_config()
        config["target_shape"] = list(self.target_shape)
        return config


class Permute(Layer):
    """Permutes the non-batch axes; ``dims`` counts them from 1 (Keras)."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        self.dims = tuple(int(d) for d in dims)
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(f"Permute: 'dims' must be a permutation of 1..{len(self.dims)}. "
                             f"Received: dims={dims!r}")

    def call(self, inputs):
        return sym.transpose(inputs, axes=(0,) + self.dims, name=self.name)

    def get_config(self):
        config = super().get_config()
        config["dims"] = list(self.dims)
        return config


class RepeatVector(Layer):
    """``(batch, features)`` -> ``(batch, n, features)``."""

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        self.n = int(n)

    def call(self, inputs):
        return sym.repeat(sym.expand_dims(inputs, axis=1), repeats=self.n, axis=1,
                          name=self.name)

    def get_config(self):
        config = super().get_config()
        config["n"] = self.n
        return config


class Lambda(Layer):
    """Wraps a function of symbols built from engine ops: ``Lambda(lambda x: sym.exp(x))``.

    Saved models record the function by name (``module.qualname``) with its
    ``arguments`` and ``output_shape``; code is never stored. Loading finds
    the function in ``custom_objects`` (by its name or its full name), among
    the objects registered with :func:`deepkit.saving.register_serializable`,
    or in a module the loading process has already imported (the script that
    defines it). A ``lambda`` or a nested function has no such name: such a
    model loads only with ``custom_objects`` giving the function.

    Args:
        function: ``function(inputs, **arguments)`` returning a symbol.
        output_shape: The output shape without the batch axis, or a function
            of the input shape; None: inferred.
        arguments: Keyword arguments for ``function`` (JSON values, to save).
    """

    def __init__(self, function, output_shape=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda '{self.name}': function must be callable, got "
                            f"{type(function).__name__} {function!r}")
        self.function = function
        self.arguments = dict(arguments or {})
        self._output_shape = output_shape

    def call(self, inputs):
        return self.function(inputs, **self.arguments)

    def compute_output_shape(self, input_shape):
        if self._output_shape is not None:
            if callable(self._output_shape):
                return self._output_shape(input_shape)
            return (None,) + tuple(self._output_shape)
        return super().compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config["function"] = f"{self.function.__module__}.{self.function.__qualname__}"
        config["arguments"] = dict(self.arguments)
        if self._output_shape is not None and not callable(self._output_shape):
            config["output_shape"] = list(self._output_shape)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["function"] = _find_function(config.get("function"), config.get("name"),
                                            custom_objects)
        return cls(**config)


def _find_function(full_name, layer, custom_objects):
    """The function a saved Lambda names: from ``custom_objects``, registrations or loaded modules."""
    if callable(full_name):
        return full_name
    module_name, _, qualname = str(full_name).rpartition(".")
    short = qualname.rsplit(".", 1)[-1]
    for space in (custom_objects or {}, saving.registered_objects()):
        for key in (full_name, qualname, short):
            if key in space:
                return space[key]
    module = sys.modules.get(module_name)
    if module is not None and "<" not in qualname:
        target = module
        for part in qualname.split("."):
            target = getattr(target, part, None)
        if callable(target):
            return target
    why = ("it is a lambda or a nested function, which has no importable name"
           if "<" in str(full_name) else
           f"module '{module_name}' is not imported in this process" if module is None
           else f"'{module_name}' has no function '{qualname}'")
    raise DeepkitError(f"Lambda '{layer}': cannot find its function '{full_name}' ({why}); "
                       f"pass it to load_model(..., custom_objects={{'{short}': function}})")
