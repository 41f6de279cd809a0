"""Op resources: the extra kernel arguments an op declares (``OpDef.resources``).

One handler for both ways of running ops: the NDArray dispatch calls
:func:`acquire` per op, the executor once per pass. ``rng`` is the context's
random generator (its engine variable is written, so draws stay ordered);
``is_train`` is the training flag; ``replica`` is the executor's place in a
data-parallel group (:mod:`deepkit_engine.replicas`), None outside one.
"""
from .base import DeepkitError
from .generators import state_for

__all__ = ["KNOWN", "acquire"]

KNOWN = ("rng", "is_train", "replica")


def acquire(names, ctx, is_train, owner="op", replica=None):
    """Kernel keyword arguments for resource ``names`` on ``ctx``.

    Args:
        names: Resource names (``op.resources``, or their union for a pass).
        ctx: The context the kernels run on.
        is_train: The training flag to hand to ``is_train`` kernels.
        owner: Who asks (an op name), for the error about an unknown resource.
        replica: The :class:`~deepkit_engine.replicas.Replica` of the running
            executor, or None.

    Returns:
        ``(kwargs, writes)``: ``{name: value}`` and the engine variables the
        work must write (the generator's, for ``rng``).
    """
    kwargs, writes = {}, []
    for r in names:
        if r == "rng":
            state = state_for(ctx)
            kwargs["rng"] = state.generator
            writes.append(state.var)
        elif r == "is_train":
            kwargs["is_train"] = is_train
        elif r == "replica":
            kwargs["replica"] = replica
        else:
            raise DeepkitError(f"{owner}: unknown resource {r!r}; known: {', '.join(KNOWN)}")
    return kwargs, writes
