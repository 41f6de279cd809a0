"""``sym``: symbolic graphs (MXNet 1.x style) and one function per registered op."""
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
