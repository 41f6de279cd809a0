"""What stops a conversion: :class:`Problem` and :class:`CaffeConversionError`."""
from deepkit_engine.base import DeepkitError

__all__ = ["Problem", "CaffeConversionError"]


class Problem:
    """One thing that stops the conversion, with where and what to do.

    ``kind`` is one of ``'unsupported_type'``, ``'unsupported_param'``,
    ``'caffe_rule'`` (the prototxt breaks a rule Caffe checks), ``'graph'``
    (undefined bottoms, phase rules, duplicate tops), ``'input'`` (missing or
    bad input shapes), ``'missing_weights'``, ``'weight_count'``,
    ``'weight_shape'``, ``'shape_mismatch'`` (Caffe's shape rules and the
    engine disagree), ``'rgb'`` and ``'mean'``.
    """

    __slots__ = ("kind", "layer", "type", "message", "hint")

    UNSUPPORTED = ("unsupported_type", "unsupported_param")

    def __init__(self, kind, layer, type_, message, hint=None):
        self.kind, self.layer, self.type = kind, layer, type_
        self.message, self.hint = message, hint

    def __str__(self):
        where = f"layer '{self.layer}' ({self.type}): " if self.layer is not None else ""
        text = where + self.message
        if self.hint:
            text += f" -> {self.hint}"
        return text

    def __repr__(self):
        return f"Problem({self.kind!r}, {str(self)!r})"

    def to_dict(self):
        return {"kind": self.kind, "layer": self.layer, "type": self.type,
                "message": self.message, "hint": self.hint}


class CaffeConversionError(DeepkitError, ValueError):
    """Everything that stops a conversion, listed at once.

    Attributes:
        problems: The :class:`Problem` list.
        conversion: The partial :class:`~deepkit.caffe.records.CaffeConversion`
            (its layer table shows how far each layer got); it cannot be saved.
    """

    def __init__(self, problems, conversion=None, source=None):
        self.problems = list(problems)
        self.conversion = conversion
        head = f"cannot convert {source}" if source else "cannot convert the Caffe net"
        n = len(self.problems)
        lines = [f"{head}: {n} problem{'s' if n != 1 else ''} (nothing was written)"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))
