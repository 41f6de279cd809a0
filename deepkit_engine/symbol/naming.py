"""Automatic node names and attribute scopes for symbol construction."""
import threading

__all__ = ["NameManager", "Prefix", "AttrScope"]

_local = threading.local()


class NameManager:
    """Gives each new node a unique name: ``<hint><count>`` (``fullyconnected0``).

    ``with NameManager():`` starts fresh counters inside the block.
    """

    def __init__(self):
        self._counter = {}
        self._old = None

    def get(self, name, hint):
        if name is not None:
            return name
        count = self._counter.get(hint, 0)
        self._counter[hint] = count + 1
        return f"{hint}{count}"

    def __enter__(self):
        self._old = current_name_manager()
        _local.name_manager = self
        return self

    def __exit__(self, *exc):
        _local.name_manager = self._old
        return False


class Prefix(NameManager):
    """A name manager that puts ``prefix`` in front of every name, given or automatic."""

    def __init__(self, prefix):
        super().__init__()
        self._prefix = prefix

    def get(self, name, hint):
        return self._prefix + super().get(name, hint)


def current_name_manager():
    manager = getattr(_local, "name_manager", None)
    if manager is None:
        manager = _local.name_manager = NameManager()
    return manager


class AttrScope:
    """``with AttrScope(ctx_group='dev1', lr_mult='0.1'):`` attributes for every new node.

    As in MXNet 1.x, every value must be a string.

    Raises:
        ValueError: A value that is not a ``str`` (``AttrScope(lr_mult=0.1)``).
    """

    def __init__(self, **attrs):
        for key, value in attrs.items():
            if not isinstance(value, str):
                raise ValueError(f"AttrScope: attributes need to be strings (as in MXNet); "
                                 f"'{key}' is {type(value).__name__} {value!r}, pass "
                                 f"{key}={str(value)!r}")
        self._attrs = dict(attrs)
        self._old = None

    def get(self, attrs):
        merged = dict(self._attrs)
        merged.update(attrs or {})
        return merged

    def __enter__(self):
        self._old = current_attr_scope()
        combined = AttrScope()
        combined._attrs = dict(self._old._attrs) if self._old is not None else {}
        combined._attrs.update(self._attrs)
        _local.attr_scope = combined
        return self

    def __exit__(self, *exc):
        _local.attr_scope = self._old
        return False


def current_attr_scope():
    scope = getattr(_local, "attr_scope", None)
    if scope is None:
        scope = _local.attr_scope = AttrScope()
    return scope
