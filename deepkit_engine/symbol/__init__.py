"""``sym``: symbolic graphs (MXNet 1.x style) and one function per registered op."""
from ..ops import registry as _registry
from .json_io import from_json as _from_json
from .naming import AttrScope, NameManager, Prefix
from .symbol import Group, Symbol, Variable, make_function, var  # noqa: F401 - public
from .symbol import functions as _functions

__all__ = ["Symbol", "Variable", "var", "Group", "load", "load_json", "NameManager", "Prefix",
           "AttrScope"]


def load_json(json_str):
    """A symbol from JSON text written by ``tojson`` (or by MXNet 1.x)."""
    return Symbol(_from_json(json_str))


def load(fname):
    """A symbol from a JSON file written by ``Symbol.save`` (or by MXNet 1.x)."""
    try:
        with open(fname) as f:
            text = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"sym.load: no such file: {fname}") from None
    return Symbol(_from_json(text, source=str(fname)))


for _call_name, _fn in _functions.items():
    globals().setdefault(_call_name, _fn)
del _call_name, _fn


def _follow_runtime_registration(op, added):
    """Offer ops registered after import (written in Python) as ``sym.<name>`` too."""
    for name in (op.name,) + op.aliases:
        if added:
            if name not in _functions:
                _functions[name] = _runtime_functions[name] = make_function(op, name)
                globals().setdefault(name, _functions[name])
        else:
            function = _runtime_functions.pop(name, None)
            if function is not None:
                _functions.pop(name, None)
                if globals().get(name) is function:
                    del globals()[name]


_runtime_functions = {}
_registry.add_registration_listener(_follow_runtime_registration)

from . import contrib, random  # noqa: E402 - MXNet's sym.contrib and sym.random need the ops above
from .creation import arange, eye, full, ones, split_v2, zeros  # noqa: E402 - over the ops above
