"""``nd``: lazy arrays and one function per registered operator.

Creation functions (``array``, ``zeros``, ...) take ``ctx`` and ``dtype``
(float32 by default, as in MXNet); every registered op is available as
``nd.<name>`` with its inputs first and its parameters as keywords.
"""
from .. import ops as _ops  # noqa: F401 - registers every op family
from ..context import Context, current_context  # noqa: F401 - reachable as nd.Context, as before
from ..ops.fluent import attach_fluent_methods
from .creation import (arange, array, empty, empty_like, eye, from_dlpack, full, full_like,
                       ones, waitall, zeros)
from .functions import generate_functions
from .functions import make_function as _make_function
from .ndarray import LastPrepared, NDArray, invoke, prepare_invoke
from .serialization import load, save

__all__ = [
    "NDArray", "array", "zeros", "ones", "full", "empty", "arange", "empty_like", "full_like",
    "waitall", "save", "load", "from_dlpack", "invoke", "prepare_invoke", "LastPrepared",
]

_generated = generate_functions(globals())

attach_fluent_methods(NDArray, globals())


def _follow_runtime_registration(op, added):
    """Offer ops registered after import (written in Python) as ``nd.<name>`` too."""
    names = (op.name,) + op.aliases
    if added:
        function = _make_function(op)
        for name in names:
            if name not in globals():
                globals()[name] = _runtime_functions[name] = function
    else:
        for name in names:
            function = _runtime_functions.pop(name, None)
            if function is not None and globals().get(name) is function:
                del globals()[name]


_runtime_functions = {}
_ops.registry.add_registration_listener(_follow_runtime_registration)

from . import contrib, random  # noqa: E402 - MXNet's nd.contrib and nd.random need the ops above
from .array_functions import concatenate, moveaxis, split_v2  # noqa: E402 - over the ops above
