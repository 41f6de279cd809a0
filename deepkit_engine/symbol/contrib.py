"""``sym.contrib``: MXNet 1.x's contrib namespace over the registry, as symbols.

``sym.contrib.<name>`` is the op registered as ``_contrib_<name>`` or, failing
that, as ``<name>``; ops registered later (control flow, Python ops) appear as well.
"""
from ..ops.registry import contrib_names, contrib_op
from .symbol import make_function

_FUNCTIONS = {}


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    function = _FUNCTIONS.get(name)
    if function is None:
        op, registered = contrib_op(name, "sym")
        function = _FUNCTIONS[name] = make_function(op, registered)
    return function


def __dir__():
    return contrib_names()
