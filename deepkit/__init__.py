"""deepkit: Keras/Lasagne-style layers, models and training on deepkit_engine."""
from deepkit_engine import Context, cpu, gpu, nd

from . import (activations, backend, callbacks, constraints, initializers, layers, losses,
               metrics, optimizers, regularizers, schedules)
from .backend import set_seed
from .feedforward import FeedForward
from .layers import Input
from .models import Model, Sequential
from .saving import load_model

__version__ = "0.1.0"

__all__ = ["nd", "cpu", "gpu", "Context", "Model", "Sequential", "Input", "load_model",
           "FeedForward",
           "set_seed", "layers", "losses", "metrics", "optimizers", "callbacks", "initializers",
           "regularizers", "constraints", "activations", "schedules", "backend", "__version__"]
