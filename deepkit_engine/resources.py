"""Op resources: the extra kernel arguments an op declares (``OpDef.resources``).

One handler for both ways of running ops: the NDArray dispatch calls
:func:`acquire` per op, the executor once per pass. ``rng`` is the context's
random generator (its engine variable is written, so draws stay ordered);
``is_train`` is the training flag; ``replica`` is the executor's place in a
data-parallel group (:mod:`deepkit_engine.replicas`), None outside one;
``blas_wide`` says whether medium matrix products may run on BLAS's own threads
(``threads.matmul``): True for imperative calls and for executors whose graph
is matrix products and light elementwise work, False for executors that also
run kernels keeping both cores busy by themselves (``OpDef.pool_parallel``).
BLAS's threads spin for about 0.1 s after each product, taking a core from
those kernels; the choice is made per executor from its graph, so results
never depend on timing.
"""
from .base import DeepkitError
from .generators import state_for

__all__ = ["HOW_ONLY", "KNOWN", "acquire", "bound_to_run"]

KNOWN = ("rng", "is_train", "replica", "blas_wide")

#: Resources that choose only how a kernel computes, not what: an op taking only these
#: may be recomputed (mirrored) and prepared once like an op taking none.
HOW_ONLY = ("blas_wide",)


def bound_to_run(names):
    """Whether resources ``names`` tie an op's results to the moment it runs.

    Random draws, the training flag and a data-parallel group do: ops taking
    them are neither recomputed in backward nor prepared ahead
    (``nd.prepare_invoke``).
    """
    return any(r not in HOW_ONLY for r in names)


def acquire(names, ctx, is_train, owner="op", replica=None, blas_wide=True):
    """Kernel keyword arguments for resource ``names`` on ``ctx``.

    Args:
        names: Resource names (``op.resources``, or their union for a pass).
        ctx: The context the kernels run on.
        is_train: The training flag to hand to ``is_train`` kernels.
        owner: Who asks (an op name), for the error about an unknown resource.
        replica: The :class:`~deepkit_engine.replicas.Replica` of the running
            executor, or None.
        blas_wide: The value of the ``blas_wide`` resource.

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
        elif r == "blas_wide":
            kwargs["blas_wide"] = blas_wide
        else:
            raise DeepkitError(f"{owner}: unknown resource {r!r}; known: {', '.join(KNOWN)}")
    return kwargs, writes
