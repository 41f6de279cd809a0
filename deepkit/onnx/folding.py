"""Constant folding and shape arithmetic for the ONNX importer.

Exporters compute inside the graph what deepkit wants as plain numbers:
shapes (``Shape -> Gather -> Unsqueeze -> Concat -> Reshape`` for PyTorch's
``x.view(x.size(0), -1)``; the dynamo exporter's ``Shape -> Squeeze ->
Reshape -> Concat``), constants made from constants (a zero bias ``Expand``-ed
to a weight's length, reduction axes ``Reshape``-d), and a batch axis known
only by name. The importer folds what is constant into arrays
(:func:`fold`), and keeps shape values that hold a named dimension as
object arrays of ints and :class:`Dim` (:func:`shape_op`), which a
``Reshape`` then turns into the engine's codes (0: copy the input's
dimension, -1: infer it).
"""
import itertools
import operator

import numpy as np

__all__ = ["Dim", "value_types", "is_symbolic", "shape_of", "shape_op", "SHAPE_OPS", "fold",
           "as_constant"]

#: ONNX ops that may run on shape values with named dimensions.
SHAPE_OPS = ("Gather", "Unsqueeze", "Squeeze", "Reshape", "Concat", "Slice", "Cast",
             "CastLike", "Identity", "Add", "Sub", "Mul", "Div")

#: Ops never folded, though their inputs are constant (they draw random numbers).
_NO_FOLD = ("RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
            "Multinomial", "Bernoulli", "Dropout")


class Dim:
    """A dimension known by name only (ONNX's ``dim_param`` such as ``'batch'``, or unnamed)."""

    _fresh = itertools.count()

    def __init__(self, name=None):
        self.name = name or f"?{next(Dim._fresh)}"

    def __eq__(self, other):
        return isinstance(other, Dim) and other.name == self.name

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        return self.name


def value_types(graph):
    """``{value name: (ONNX element type, dims or None)}``; a dim is an int or a :class:`Dim`."""
    out = {}
    for value in list(graph.input) + list(graph.value_info) + list(graph.output):
        if not value.type.HasField("tensor_type"):
            continue
        tensor = value.type.tensor_type
        dims = None
        if tensor.HasField("shape"):
            dims = [d.dim_value if d.HasField("dim_value") else Dim(d.dim_param or None)
                    for d in tensor.shape.dim]
        out[value.name] = (tensor.elem_type, dims)
    return out


def is_symbolic(value):
    """Whether ``value`` is a shape value holding a :class:`Dim`."""
    return isinstance(value, np.ndarray) and value.dtype == object


def as_constant(value):
    """``value`` as an int64 array when it holds no :class:`Dim`, else unchanged."""
    if is_symbolic(value) and not any(isinstance(v, Dim) for v in value.ravel()):
        return value.astype(np.int64)
    return value


def shape_of(dims, start=None, end=None):
    """ONNX ``Shape`` of a value with ``dims`` (``start``/``end`` as the op's attributes)."""
    return as_constant(np.array(list(dims)[start:end], dtype=object).reshape(-1))


def _ints(value, what):
    if value is None or is_symbolic(value):
        raise ValueError(f"{what} must be a constant")
    return [int(v) for v in np.asarray(value).ravel()]


def _arith(fn):
    def apply(a, b):
        if isinstance(a, Dim) or isinstance(b, Dim):
            return Dim()
        return fn(int(a), int(b))
    return np.frompyfunc(apply, 2, 1)


_ARITH = {"Add": _arith(operator.add), "Sub": _arith(operator.sub),
          "Mul": _arith(operator.mul), "Div": _arith(operator.floordiv)}


def shape_op(op, attrs, inputs):
    """Run ``op`` on shape values (object arrays of ints and :class:`Dim`) or constants.

    Args:
        op: The ONNX op type (one of :data:`SHAPE_OPS`).
        attrs: The node's attributes.
        inputs: The input values in order, None for a missing optional input.

    Returns:
        The output: an int64 array when no :class:`Dim` is left, else an object array.
    """
    x = np.asarray(inputs[0], dtype=object)
    if op in ("Cast", "CastLike", "Identity"):
        out = x
    elif op == "Gather":
        out = np.take(x, np.asarray(_ints(inputs[1], "Gather's indices")).reshape(
            np.shape(inputs[1])), axis=int(attrs.get("axis", 0)))
    elif op in ("Unsqueeze", "Squeeze"):
        axes = attrs.get("axes")
        if axes is None and len(inputs) > 1 and inputs[1] is not None:
            axes = _ints(inputs[1], f"{op}'s axes")
        if op == "Squeeze":
            out = np.squeeze(x, axis=None if axes is None else tuple(axes))
        else:
            rank = x.ndim + len(axes)
            out = x
            for axis in sorted(a % rank for a in axes):
                out = np.expand_dims(out, axis)
    elif op == "Reshape":
        target = _ints(inputs[1], "Reshape's shape")
        target = [x.shape[i] if d == 0 and not attrs.get("allowzero", 0) else d
                  for i, d in enumerate(target)]
        out = x.reshape(target)
    elif op == "Concat":
        out = np.concatenate([np.asarray(v, dtype=object).reshape(-1) if np.ndim(v) == 0
                              else np.asarray(v, dtype=object) for v in inputs],
                             axis=int(attrs.get("axis", 0)))
    elif op == "Slice":
        starts, ends = _ints(inputs[1], "Slice's starts"), _ints(inputs[2], "Slice's ends")
        axes = _ints(inputs[3], "Slice's axes") if len(inputs) > 3 and inputs[3] is not None \
            else list(range(len(starts)))
        steps = _ints(inputs[4], "Slice's steps") if len(inputs) > 4 and inputs[4] is not None \
            else [1] * len(starts)
        index = [slice(None)] * x.ndim
        for axis, begin, end, step in zip(axes, starts, ends, steps):
            index[axis] = slice(begin, end, step)
        out = x[tuple(index)]
    else:
        out = _ARITH[op](x, np.asarray(inputs[1], dtype=object))
        out = np.asarray(out, dtype=object)
    return as_constant(np.asarray(out, dtype=object))


def foldable(node, constants):
    """Whether every input of ``node`` is a known constant (so its outputs can be computed)."""
    inputs = [n for n in node.input if n]
    return bool(inputs) and node.op_type not in _NO_FOLD and node.domain in ("", "ai.onnx") \
        and all(n in constants for n in inputs)


def fold(node, constants, opset):
    """The outputs of ``node`` computed from constant inputs (ONNX's reference evaluator).

    Args:
        node: The NodeProto.
        constants: ``{value name: array}`` holding all of its inputs.
        opset: The model's default-domain opset version.

    Returns:
        The output arrays, in the node's output order.
    """
    from onnx.reference import ReferenceEvaluator  # noqa: PLC0415 - onnx is optional

    evaluator = ReferenceEvaluator(node, opsets={"": opset})
    feeds = {n: constants[n] for n in node.input if n}
    return [np.asarray(v) for v in evaluator.run(None, feeds)]
