"""deepkit_engine: lazy NDArrays on a dependency engine, an operator registry,
symbolic graphs and executors. It knows nothing of layers; ``deepkit`` builds
on its public API.
"""
from . import autograd, engine, io, ops, random
from . import ndarray as nd
from . import symbol as sym
from . import executor
from .executor import Executor
from . import contrib  # noqa: E402,F401 - publishes sym.contrib/nd.contrib control flow
from .base import (ContextError, DeepkitError, DTypeError, EngineError, OpBugError, ParamError,
                   ShapeError)
from .context import Context, cpu, current_context, gpu, num_gpus
from .ndarray import NDArray

ndarray = nd
symbol = sym
waitall = nd.waitall

__version__ = "0.1.0"

__all__ = [
    "nd", "ndarray", "NDArray", "sym", "symbol", "executor", "Executor", "Context", "cpu", "gpu", "num_gpus", "current_context",
    "engine", "random", "ops", "autograd", "io", "waitall", "DeepkitError", "ShapeError",
    "DTypeError", "ParamError", "ContextError", "EngineError", "OpBugError",
]
