"""Error hierarchy and small helpers shared by every engine module.

Errors carry structured fields (``op``, ``node``, ``argument``, ``expected``,
``actual``) so that callers and tests can inspect what went wrong without
parsing message text.
"""
import difflib

__all__ = [
    "DeepkitError", "ShapeError", "DTypeError", "ParamError", "ContextError",
    "EngineError", "OpBugError", "FileFormatError", "did_you_mean",
]


class DeepkitError(Exception):
    """Base class of every error raised by deepkit_engine and deepkit."""


class ShapeError(DeepkitError, ValueError):
    """Shapes that do not fit an op, a binding or an assignment."""

    def __init__(self, message, op=None, node=None, argument=None, expected=None, actual=None):
        super().__init__(message)
        self.op, self.node, self.argument = op, node, argument
        self.expected, self.actual = expected, actual


class DTypeError(DeepkitError, TypeError):
    """A dtype that an op cannot take, or mixed dtypes where one is required."""

    def __init__(self, message, op=None, node=None, argument=None, expected=None, actual=None):
        super().__init__(message)
        self.op, self.node, self.argument = op, node, argument
        self.expected, self.actual = expected, actual


class ParamError(DeepkitError, ValueError):
    """An unknown, missing or out-of-range operator parameter."""

    def __init__(self, message, op=None, param=None, value=None):
        super().__init__(message)
        self.op, self.param, self.value = op, param, value


class ContextError(DeepkitError, RuntimeError):
    """A device that is unavailable, or arrays on different devices."""


class EngineError(DeepkitError, RuntimeError):
    """Work pushed to the engine failed; raised at the next wait point.

    The original exception is chained as ``__cause__`` so its traceback
    (from the worker thread) is preserved.
    """

    def __init__(self, message, op_name=None, original=None):
        super().__init__(message)
        self.op_name, self.original = op_name, original


class FileFormatError(DeepkitError, ValueError):
    """A file that cannot be loaded: damaged, truncated, hostile or of another format.

    Attributes:
        path: The file.
        obj: The object inside the file at fault (a dataset, an attribute), or None.
        problem: What is wrong with it.
    """

    def __init__(self, path, obj, problem):
        where = f" ({obj})" if obj else ""
        super().__init__(f"cannot load {path}{where}: {problem}")
        self.path, self.obj, self.problem = path, obj, problem


class OpBugError(DeepkitError, AssertionError):
    """An operator broke its own declaration (e.g. a gradient of the wrong shape)."""


def did_you_mean(name, candidates):
    """Return ``" (did you mean 'x'?)"`` for the closest candidate, or ``""``."""
    close = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
