"""Seeding and per-context random generators; samplers that return NDArrays.

Each context has one generator and one engine variable (see
:mod:`deepkit_engine.generators`, which holds that state below the NDArray
layer). Random ops write that variable, so their draws are ordered by push
order even on the threaded engine: the same seed gives the same numbers, run
after run.
"""
from . import generators as _generators
from . import ndarray as _nd
from .context import current_context
from .generators import get_state, seed, set_state, state_for

__all__ = ["seed", "state_for", "get_state", "set_state", "uniform", "normal", "randint"]


def __getattr__(name):
    # ``_seed_value`` lives in generators; read-through for code that saves it
    if name == "_seed_value":
        return _generators.seed_value()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def uniform(low=0.0, high=1.0, shape=(1,), dtype="float32", ctx=None):
    """Samples from U[low, high) as an NDArray."""
    return _nd.random_uniform(low=low, high=high, shape=shape, dtype=dtype,
                              ctx=ctx or current_context())


def normal(loc=0.0, scale=1.0, shape=(1,), dtype="float32", ctx=None):
    """Samples from N(loc, scale**2) as an NDArray."""
    return _nd.random_normal(loc=loc, scale=scale, shape=shape, dtype=dtype,
                             ctx=ctx or current_context())


def randint(low, high, shape=(1,), dtype="int32", ctx=None):
    """Integers from [low, high) as an NDArray."""
    return _nd.random_randint(low=low, high=high, shape=shape, dtype=dtype,
                              ctx=ctx or current_context())
