"""``deepkit.custom_gradient``: functions whose gradient is written by hand.

Use it in ``Lambda`` layers and custom layers' ``call`` (on Symbols) or on
NDArrays::

    @deepkit.custom_gradient
    def clip_gradient(x):
        def grad(upstream):
            return sym.clip(upstream, -1.0, 1.0)
        return sym.identity(x), grad

    model.add(layers.Lambda(clip_gradient))

``grad(upstream)`` returns one gradient per input. The value is computed by
the returned result; only differentiation goes through ``grad``.

Decorating a function registers it by name (``module.qualname``, or
``@custom_gradient(name="clip_gradient")``), as ``mx.operator.register`` does
for custom operators: a symbol saved as JSON (``sym.save``, a Module
checkpoint) trains in another process once that process has imported the
module defining the function; without it, loading fails with an error naming
the function.
"""
from deepkit_engine.custom import custom_gradient

__all__ = ["custom_gradient"]
