"""``sym``: symbolic graphs (MXNet 1.x style) and one function per registered op."""
from ..ops import registry as _registry
from .naming import AttrScope, NameManager, Prefix
from .symbol import Group, Symbol, Variable, make_function, var

__all__ = ["Symbol", "Variable", "var", "Group", "load", "load_json", "NameManager", "Prefix",
           "AttrScope"]

#: ``{call name: function}`` for every registered name (aliases included).
_functions = {}


def _generate():
    for call_name in _registry.list_ops():
        fn = make_function(_registry.get_op(call_name), call_name)
        _functions[call_name] = fn
        if call_name not in globals():
            globals()[call_name] = fn


def load_json(json_str):
    """A symbol from JSON text written by ``tojson`` (or by MXNet 1.x)."""
    from .json_io import from_json  # noqa: PLC0415
    return from_json(json_str)


def load(fname):
    """A symbol from a JSON file written by ``Symbol.save`` (or by MXNet 1.x)."""
    from .json_io import from_json  # noqa: PLC0415
    try:
        with open(fname) as f:
            text = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"sym.load: no such file: {fname}") from None
    return from_json(text, source=str(fname))


from .. import ops as _ops  # noqa: E402,F401 - registers every op family

_generate()

from ..ops.fluent import attach_fluent_methods  # noqa: E402

attach_fluent_methods(Symbol, _functions)
