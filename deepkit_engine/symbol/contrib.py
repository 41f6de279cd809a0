"""``sym.contrib``: MXNet 1.x's contrib namespace over the registry, as symbols.

``sym.contrib.<name>`` is the op registered as ``_contrib_<name>`` or, failing
that, as ``<name>``; ops registered later (control flow, Python ops) appear as well.
"""
from ..ops.registry import get_op, list_ops
from .symbol import make_function

_FUNCTIONS = {}


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    function = _FUNCTIONS.get(name)
    if function is not None:
        return function
    for candidate in (f"_contrib_{name}", name):
        if candidate in list_ops():
            function = _FUNCTIONS[name] = make_function(get_op(candidate), candidate)
            return function
    raise AttributeError(f"sym.contrib has no operator '{name}' (looked for '_contrib_{name}' "
                         f"and '{name}' in the registry)")


def __dir__():
    return sorted(n[len("_contrib_"):] for n in list_ops() if n.startswith("_contrib_"))
