"""``nd``: lazy arrays and one function per registered operator.

Creation functions (``array``, ``zeros``, ...) take ``ctx`` and ``dtype``
(float32 by default, as in MXNet); every registered op is available as
``nd.<name>`` with its inputs first and its parameters as keywords.
"""
from .. import ops as _ops  # noqa: F401 - registers every op family
from ..context import Context, current_context  # noqa: F401 - reachable as nd.Context, as before
from ..ops.fluent import attach_fluent_methods
from .creation import (arange, array, empty, empty_like, from_dlpack, full, full_like, ones,
                       waitall, zeros)
from .functions import generate_functions
from .ndarray import NDArray, invoke
from .serialization import load, save

__all__ = [
    "NDArray", "array", "zeros", "ones", "full", "empty", "arange", "empty_like", "full_like",
    "waitall", "save", "load", "from_dlpack", "invoke",
]

_generated = generate_functions(globals())

attach_fluent_methods(NDArray, globals())
