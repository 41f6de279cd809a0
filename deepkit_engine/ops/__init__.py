"""The operator library: one registry, op families in their own modules."""
import importlib

from .registry import OpDef, Param, canonical_ops, get_op, list_ops, register

__all__ = ["OpDef", "Param", "register", "get_op", "list_ops", "canonical_ops"]

#: Modules that declare ops; each registers its ops when imported.
FAMILIES = ("unary", "binary", "reduce", "matrix", "indexing", "random_ops", "grad_ops",
            "dense", "activation", "loss", "optimizer_ops", "convolution", "pooling",
            "normalization", "nn_misc", "rnn")

for _family in FAMILIES:
    try:
        importlib.import_module(f"{__name__}.{_family}")
    except ModuleNotFoundError as _err:
        if _err.name != f"{__name__}.{_family}":
            raise
