"""Shape and type inference over a graph, forward and backward to a fixpoint.

Each op's ``infer_shape``/``infer_type`` sees the shapes known so far (``None``
for unknown) and may fill in inputs as well as outputs, so weight shapes come
from data shapes and label shapes from outputs. Sweeps alternate direction
until nothing changes. A conflict names the op, the node, the argument, both
shapes and every known input shape.
"""
import numpy as np

from ..base import DTypeError, ShapeError
from ..ops.registry import same_dtype, same_shape

__all__ = ["infer_shapes", "infer_types"]

_MAX_SWEEPS = 20


def infer_shapes(graph, known):
    """Shapes of every entry of ``graph``.

    Args:
        graph: A :class:`Graph`.
        known: ``{entry_id: shape}`` of what is given (argument shapes).

    Returns:
        A list with a shape tuple, or ``None`` where it stays unknown.
    """
    return _infer(graph, known, "shape")


def infer_types(graph, known):
    """Dtypes of every entry (see :func:`infer_shapes`)."""
    return _infer(graph, known, "type")


def _fmt(value, kind):
    if value is None:
        return "?"
    return str(tuple(value)) if kind == "shape" else np.dtype(value).name


def _infer(graph, known, kind):
    values = [None] * graph.num_entries
    for eid, v in known.items():
        if v is not None:
            values[eid] = tuple(v) if kind == "shape" else np.dtype(v)
    ops = []
    for node in graph.nodes:
        if node.op is not None:
            ops.append((node, graph.input_entry_ids(node), graph.output_entry_ids(node)))
    for sweep in range(_MAX_SWEEPS):
        changed = False
        for node, in_ids, out_ids in (ops if sweep % 2 == 0 else reversed(ops)):
            ins = [values[e] for e in in_ids]
            outs = [values[e] for e in out_ids]
            # identity tests: numpy says dtype('float64') == None
            ins_missing = any(v is None for v in ins)
            if not ins_missing and all(v is not None for v in outs):
                continue
            op = node.op
            if ins_missing:
                partial = op.partial_infer or (kind == "type" and op.infer_type is same_dtype)
                if not partial:
                    continue
            if kind == "shape":
                if ins_missing and op.infer_shape is same_shape and outs[0] is not None:
                    ins = [s if s is not None else outs[0] for s in ins]  # backwards
                new_ins, new_outs = op.run_infer_shape(node.attrs, ins, node.name,
                                                       None)
            else:
                new_ins, new_outs = op.run_infer_type(node.attrs, ins, node.name, None)
            for eid, new, pos in _pairs(in_ids, new_ins, out_ids, new_outs):
                if new is None:
                    continue
                new = tuple(new) if kind == "shape" else np.dtype(new)
                old = values[eid]
                if old is None:
                    values[eid] = new
                    changed = True
                elif old != new:
                    _conflict(graph, node, pos, old, new, values, in_ids, kind)
        if not changed:
            break
    return values


def _pairs(in_ids, new_ins, out_ids, new_outs):
    for i, (eid, new) in enumerate(zip(in_ids, new_ins or ())):
        yield eid, new, ("input", i)
    for i, (eid, new) in enumerate(zip(out_ids, new_outs or ())):
        yield eid, new, ("output", i)


def _conflict(graph, node, pos, old, new, values, in_ids, kind):
    names = node.input_names()
    where, i = pos
    if where == "input":
        src, idx = node.inputs[i]
        label = f"input '{names[i] if i < len(names) else i}'"
        if src.op is None:
            label += f" (argument '{src.name}')"
    else:
        label = f"output {i}"
    known = ", ".join(f"{n}={_fmt(values[e], kind)}" for n, e in zip(names, in_ids))
    what = "shape" if kind == "shape" else "dtype"
    error = ShapeError if kind == "shape" else DTypeError
    raise error(f"{node.op.name} '{node.name}': {label} has {what} {_fmt(old, kind)} but "
                f"{_fmt(new, kind)} was inferred from the params "
                f"({_describe_params(node)}) and the other inputs\n  inputs: {known}",
                op=node.op.name, node=node.name, argument=label, expected=new, actual=old)


def _describe_params(node):
    return ", ".join(f"{k}={v}" for k, v in node.attrs.items()) or "none"
