"""deepkit: Keras/Lasagne-style layers, models and training on deepkit_engine.

After ``import deepkit`` the Keras module layout resolves: ``deepkit.layers``,
``.models``, ``.optimizers``, ``.losses``, ``.metrics``, ``.callbacks``,
``.datasets``, ``.utils``, ``.backend``, ``.initializers``, ``.regularizers``,
``.constraints``, ``.activations``. The wings are imported on their own:
``deepkit.compat`` (MXNet) and ``deepkit.caffe`` (the converter).
"""
from deepkit_engine import Context, cpu, gpu, nd

from . import (activations, backend, callbacks, constraints, datasets, distributed,
               initializers, layers, losses, metrics, models, optimizers, regularizers, schedules,
               trainer, utils)
from . import rbm
from .backend import set_seed
from .gradients import custom_gradient
from .layers import Input
from .models import Model, Sequential, clone_model, load_model, model_from_json
from .saving import DeepkitError, FileFormatError

__version__ = "0.1.0"

__all__ = ["nd", "cpu", "gpu", "Context", "Model", "Sequential", "Input", "load_model",
           "model_from_json", "clone_model", "set_seed", "layers", "models", "losses",
           "metrics", "optimizers", "callbacks", "initializers", "regularizers", "constraints",
           "activations", "schedules", "backend", "datasets", "utils", "trainer", "__version__",
           "DeepkitError", "FileFormatError", "custom_gradient", "rbm", "distributed"]
