"""The operator library: one registry, op families in their own modules.

Importing this package registers every op; each family module declares its
ops when imported.
"""
from . import (activation, binary, broadcast, convolution, dense, dropout, embedding,  # noqa: F401
               grad_ops, indexing, join_split, linalg, loss, normalization, optimizer_ops,
               pad_crop, pooling, random_ops, reduce, rnn, sequence, shape, slicing, unary)
from . import detection, vision  # noqa: F401
from . import caffe_fork  # noqa: F401
from .registry import OpDef, Param, canonical_ops, get_op, list_ops, register

__all__ = ["OpDef", "Param", "register", "get_op", "list_ops", "canonical_ops"]

from . import control_flow  # noqa: E402,F401 - the contrib control-flow ops
from . import init_ops  # noqa: E402,F401 - _zeros, _ones, _full, _arange, _eye
