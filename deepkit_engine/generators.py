"""Per-context random generators and the global seed.

Each context has one generator and one engine variable. Random ops write
that variable, so their draws are ordered by push order even on the threaded
engine: the same seed gives the same numbers, run after run. This module
holds the state only; :mod:`deepkit_engine.random` is the public face.
"""
import numpy as np

from . import engine as _engine
from .context import Context

__all__ = ["seed", "state_for", "get_state", "set_state", "seed_value"]

_seed_value = None
_states = {}


class _RandomState:
    __slots__ = ("generator", "var")

    def __init__(self, generator):
        self.generator = generator
        self.var = _engine.new_var()


def _make_generator(ctx, seed_value):
    entropy = None if seed_value is None else [int(seed_value), 1 if ctx.is_gpu else 0,
                                               ctx.device_id]
    seq = np.random.SeedSequence(entropy)
    if ctx.is_gpu:
        cupy = ctx.xp
        with ctx.device_scope():
            return cupy.random.RandomState(int(seq.generate_state(1, np.uint64)[0] >> 1))
    return np.random.Generator(np.random.PCG64(seq))


def seed_value():
    """The global seed last given to :func:`seed` (``None``: not seeded)."""
    return _seed_value


def state_for(ctx):
    """The random state of ``ctx`` (created on first use)."""
    state = _states.get(ctx)
    if state is None:
        state = _states[ctx] = _RandomState(_make_generator(ctx, _seed_value))
    return state


def seed(seed_state, ctx="all"):
    """Seed the generators: of every context (``ctx='all'``) or of one.

    Random work pushed before this call still uses the old generator; work
    pushed after uses the new one.
    """
    global _seed_value
    if not isinstance(seed_state, (int, np.integer)) or isinstance(seed_state, bool):
        raise TypeError(f"seed: seed_state must be an int, got {seed_state!r}")
    if ctx == "all":
        _seed_value = int(seed_state)
        for c, state in _states.items():
            state.generator = _make_generator(c, _seed_value)
    else:
        ctx = Context(ctx)
        state = state_for(ctx)
        state.generator = _make_generator(ctx, int(seed_state))


def get_state(ctx=None):
    """The generator state of ``ctx`` (default cpu) as plain data, for exact resumption.

    Waits for pending random work on that device first. GPU generators (cupy)
    expose no state: ``None`` is returned for them.
    """
    ctx = Context(ctx) if ctx is not None else Context("cpu", 0)
    state = state_for(ctx)
    _engine.wait_for_write(state.var)
    bit_generator = getattr(state.generator, "bit_generator", None)
    return None if bit_generator is None else bit_generator.state


def set_state(value, ctx=None):
    """Restore what :func:`get_state` returned (ignored for ``None``)."""
    if value is None:
        return
    ctx = Context(ctx) if ctx is not None else Context("cpu", 0)
    state = state_for(ctx)
    _engine.wait_for_write(state.var)
    state.generator.bit_generator.state = value
