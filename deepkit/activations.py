"""Activation functions by name, as symbol builders: ``get('relu')(symbol)``."""
from deepkit_engine import symbol as sym
from deepkit_engine.base import did_you_mean

__all__ = ["get", "serialize", "ACTIVATIONS"]


def _linear(x):
    return x


ACTIVATIONS = {
    "linear": _linear,
    "relu": lambda x: sym.Activation(x, act_type="relu"),
    "sigmoid": lambda x: sym.Activation(x, act_type="sigmoid"),
    "tanh": lambda x: sym.Activation(x, act_type="tanh"),
    "softplus": lambda x: sym.Activation(x, act_type="softrelu"),
    "softrelu": lambda x: sym.Activation(x, act_type="softrelu"),
    "softsign": lambda x: sym.Activation(x, act_type="softsign"),
    "softmax": lambda x: sym.softmax(x, axis=-1),
    "log_softmax": lambda x: sym.log_softmax(x, axis=-1),
    "elu": lambda x: sym.LeakyReLU(x, act_type="elu", slope=1.0),
    "selu": lambda x: sym.LeakyReLU(x, act_type="selu"),
    "gelu": lambda x: sym.LeakyReLU(x, act_type="gelu"),
    "leaky_relu": lambda x: sym.LeakyReLU(x, act_type="leaky", slope=0.2),
    "exponential": sym.exp,
    "hard_sigmoid": lambda x: sym.clip(x * 0.2 + 0.5, 0.0, 1.0),
    "swish": lambda x: x * sym.Activation(x, act_type="sigmoid"),
}


def get(identifier):
    """A symbol-to-symbol function from a name, None (linear) or a callable."""
    if identifier is None:
        return _linear
    if callable(identifier):
        return identifier
    fn = ACTIVATIONS.get(identifier)
    if fn is None:
        raise ValueError(f"unknown activation {identifier!r}{did_you_mean(identifier, ACTIVATIONS)};"
                         f" known: {', '.join(sorted(ACTIVATIONS))}")
    return fn


def serialize(identifier):
    """The name of an activation (for configs); callables must be registered by name."""
    if identifier is None:
        return "linear"
    if isinstance(identifier, str):
        return identifier
    for name, fn in ACTIVATIONS.items():
        if fn is identifier:
            return name
    return getattr(identifier, "__name__", repr(identifier))
