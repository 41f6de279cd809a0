"""Shape and type inference over a graph, forward and backward to a fixpoint.

Each op's ``infer_shape``/``infer_type`` sees the shapes known so far (``None``
for unknown) and may fill in inputs as well as outputs, so weight shapes come
from data shapes and label shapes from outputs. Sweeps alternate direction
until nothing changes. A conflict names the op, the node, the argument, both
shapes and every known input shape.

**Partial shapes** (MXNet 1.x's ``0`` = unknown dimension, asked for with
``zero_unknown=True``) are inferred without any op knowing about them:

* elementwise ops (``same_shape`` inference) unify their inputs and output
  dimension by dimension, so ``(0, 10) + (12, 0)`` gives ``(12, 10)`` to all;
* an op whose ``infer_shape`` function has a ``partial_shapes(attrs, ins,
  outs)`` attribute works on the 0s itself (``concat`` unifies the axes it
  does not join across all inputs, as MXNet does);
* any other op is *probed*: its inference runs twice with the unknown
  dimensions replaced by two different large values. A dimension that comes
  out the same both times is known (a weight shape, the channels of a
  convolution); one that changes is unknown (the batch axis).
* backwards, an unknown input dimension is solved from a known output
  dimension when exactly that input dimension moves it, linearly (the batch
  axis, a stride-1 convolution's height), and the solution is checked by
  running the op's inference once more.
"""
import numpy as np

from ..base import DeepkitError, DTypeError, ParamError, ShapeError
from ..ops.elementwise import broadcast_shape
from ..ops.registry import same_dtype, same_shape

__all__ = ["infer_shapes", "infer_types", "PartialShape", "is_partial"]

_MAX_SWEEPS = 20
#: Probe values for unknown dimensions: multiples of 720720, which every
#: number up to 16 divides, so strides, splits and reshapes divide them.
_PROBE_UNIT = 720720


class PartialShape(tuple):
    """A shape with unknown dimensions, written as 0 (MXNet 1.x's partial shapes)."""

    def __repr__(self):
        return f"PartialShape({tuple(self)})"


def is_partial(shape):
    """Whether ``shape`` is a :class:`PartialShape` (has unknown dimensions)."""
    return isinstance(shape, PartialShape)


def _shape_value(dims):
    dims = tuple(int(d) for d in dims)
    return PartialShape(dims) if 0 in dims else dims


def infer_shapes(graph, known, zero_unknown=False):
    """Shapes of every entry of ``graph``.

    Args:
        graph: A :class:`Graph`.
        known: ``{entry_id: shape}`` of what is given (argument shapes).
        zero_unknown: A 0 in a given shape means "unknown dimension" (MXNet
            1.x); the result then holds :class:`PartialShape` s where only
            some dimensions were found.

    Returns:
        A list with a shape tuple (or PartialShape), or ``None`` where nothing
        is known.
    """
    return _infer(graph, known, "shape", zero_unknown)


def infer_types(graph, known):
    """Dtypes of every entry (see :func:`infer_shapes`)."""
    return _infer(graph, known, "type")


def _fmt(value, kind):
    if value is None:
        return "?"
    return str(tuple(value)) if kind == "shape" else np.dtype(value).name


def _complete(value):
    return value is not None and not isinstance(value, PartialShape)


def _infer(graph, known, kind, zero_unknown=False):
    values = [None] * graph.num_entries
    for eid, v in known.items():
        if v is not None:
            if kind != "shape":
                values[eid] = np.dtype(v)
            else:
                values[eid] = _shape_value(v) if zero_unknown else tuple(v)
    ops = []
    for node in graph.nodes:
        if node.op is not None:
            ops.append((node, graph.input_entry_ids(node), graph.output_entry_ids(node)))
    _sweep(ops, values, kind, graph)
    if kind == "type" and _fall_back(ops, values):
        _sweep(ops, values, kind, graph)  # what the fallbacks decide flows on
    return values


def _fall_back(ops, values):
    """Give outputs that nothing decided their op's fallback dtype; whether any got one.

    An init op made with ``dtype=None`` (a Keras layer's zero initial state)
    takes its dtype from the ops it feeds; where nothing does, it is float32,
    MXNet's default for these ops.
    """
    assigned = False
    for node, _, out_ids in ops:
        fallback = getattr(node.op.infer_type, "fallback_dtype", None)
        if fallback is None:
            continue
        for eid in out_ids:
            if values[eid] is None:
                values[eid] = np.dtype(fallback)
                assigned = True
    return assigned


def _sweep(ops, values, kind, graph):
    """Run the ops' inference forwards and backwards until nothing changes."""
    for sweep in range(_MAX_SWEEPS):
        changed = False
        for node, in_ids, out_ids in (ops if sweep % 2 == 0 else reversed(ops)):
            ins = [values[e] for e in in_ids]
            outs = [values[e] for e in out_ids]
            # identity tests: numpy says dtype('float64') == None
            if all(_complete(v) for v in ins) and all(_complete(v) for v in outs):
                continue
            op = node.op
            if kind == "shape" and (any(is_partial(v) for v in ins) or (
                    any(is_partial(v) for v in outs) and not all(_complete(v) for v in ins))):
                new_ins, new_outs = _partial_step(node, ins, outs)
            else:
                ins_missing = any(v is None for v in ins)
                if ins_missing:
                    partial = op.partial_infer or (kind == "type" and op.infer_type is same_dtype)
                    if not partial:
                        continue
                if kind == "shape":
                    if ins_missing and op.infer_shape is same_shape and _complete(outs[0]):
                        ins = [s if s is not None else outs[0] for s in ins]  # backwards
                    new_ins, new_outs = op.run_infer_shape(node.attrs, ins, node.name, None)
                else:
                    new_ins, new_outs = op.run_infer_type(node.attrs, ins, node.name, None)
            unknown_zeros = getattr(op.infer_shape, "zero_is_unknown", False)
            for eid, new, pos in _pairs(in_ids, new_ins, out_ids, new_outs):
                if new is None:
                    continue
                old = values[eid]
                if kind == "shape":
                    if is_partial(new) or (pos[0] == "output" and unknown_zeros):
                        new = _shape_value(new)
                    else:
                        new = tuple(new)
                    merged = new if old is None else _merge(old, new)
                    if merged is None:
                        _conflict(graph, node, pos, old, new, values, in_ids, kind)
                    if merged != old or type(merged) is not type(old):
                        values[eid] = merged
                        changed = True
                    continue
                new = np.dtype(new)
                if old is None:
                    values[eid] = new
                    changed = True
                elif old != new:
                    _conflict(graph, node, pos, old, new, values, in_ids, kind)
        if not changed:
            break


def _merge(old, new):
    """Two views of one shape combined (0 = unknown on either side), or None if they clash."""
    if not (is_partial(old) or is_partial(new)):
        return old if old == new else None
    if len(old) != len(new):
        return None
    dims = []
    for a, b in zip(old, new):
        if a and b and a != b:
            return None
        dims.append(a or b)
    return _shape_value(dims)


def _partial_step(node, ins, outs):
    """``(new_ins, new_outs)`` of one op whose inputs or outputs are partly known."""
    op = node.op
    if op.infer_shape is same_shape:
        merged = None
        for value in ins + outs:
            if value is None:
                continue
            merged = value if merged is None else _merge(merged, value)
            if merged is None:
                _partial_clash(node, ins, outs)
        return [merged] * len(ins), [merged] * len(outs)
    if op.infer_shape is broadcast_shape:
        unified = _partial_broadcast(ins, outs)
        if unified == "clash":
            _partial_clash(node, ins, outs)
        if unified is not None:
            return unified
    hook = getattr(op.infer_shape, "partial_shapes", None)
    if hook is not None:
        got = hook(node.attrs, ins, outs)
        if got is not None:
            return ([None if v is None else _shape_value(v) for v in got[0]],
                    [None if v is None else _shape_value(v) for v in got[1]])
    if any(v is None for v in ins) and not op.partial_infer:
        return None, None
    unknown = [(i, d) for i, s in enumerate(ins) if is_partial(s)
               for d, size in enumerate(s) if size == 0]

    def run(assign):
        probe = []
        for i, s in enumerate(ins):
            if is_partial(s):
                s = tuple(assign[(i, d)] if size == 0 else size for d, size in enumerate(s))
            probe.append(s)
        try:
            got_ins, got_outs = op.infer_shape(node.attrs, probe)
        except (ShapeError, DTypeError, ParamError, DeepkitError, ValueError, TypeError,
                ZeroDivisionError, IndexError):
            return None
        return ([None if s is None else tuple(s) for s in (got_ins or [None] * len(ins))],
                [None if s is None else tuple(s) for s in (got_outs or [None] * len(outs))])

    # each unknown dimension on its own first; if the op rejects that (a concat
    # needs equal batch sizes), all of them as one value
    for groups in ([[u] for u in unknown], [unknown]):
        base = {}
        for k, group in enumerate(groups):
            base.update({u: _PROBE_UNIT * (2 * k + 3) for u in group})
        first = run(base)
        second = run({u: v + _PROBE_UNIT for u, v in base.items()})
        if first is not None and second is not None:
            break
    else:
        return None, None
    new_ins = [_agree(a, b) for a, b in zip(first[0], second[0])]
    new_outs = [_agree(a, b) for a, b in zip(first[1], second[1])]
    solved = _solve_backwards(run, base, groups, first[1], outs)
    for (i, d), size in solved.items():
        dims = list(new_ins[i] if new_ins[i] is not None else ins[i])
        dims[d] = size
        new_ins[i] = _shape_value(dims)
    return new_ins, new_outs


def _partial_broadcast(ins, outs):
    """A binary broadcasting op over partial shapes of one rank, or None to probe instead.

    A dimension unknown on one side takes the other side's size unless that
    is 1 (as the op does with a wholly unknown operand: MXNet's ``+`` on
    symbols is elementwise); a 1 on one side gives the other side the output's size.
    Returns ``'clash'`` when two known sizes (other than 1) differ.
    """
    shapes = [v for v in list(ins) + list(outs) if v is not None]
    if len({len(v) for v in shapes}) != 1:
        return None
    a, b = [v if v is not None else (0,) * len(shapes[0]) for v in ins]
    out = outs[0] if outs[0] is not None else (0,) * len(a)
    new_a, new_b, new_out = [], [], []
    for x, y, o in zip(a, b, out):
        big = {v for v in (x, y, o) if v > 1}
        if len(big) > 1:
            return "clash"
        size = big.pop() if big else (1 if x == y == 1 or o == 1 else 0)
        new_out.append(size)
        new_a.append(x or (y if y != 1 else size))
        new_b.append(y or (x if x != 1 else size))
    return [_shape_value(new_a), _shape_value(new_b)], [_shape_value(new_out)]


def _partial_clash(node, ins, outs):
    names = node.input_names()
    known = ", ".join(f"{n}={_fmt(v, 'shape')}" for n, v in zip(names, ins))
    raise ShapeError(f"{node.op.name} '{node.name}': the shapes do not agree (0 = unknown "
                     f"dimension): inputs {known}; output {_fmt(outs[0], 'shape')}",
                     op=node.op.name, node=node.name)


def _agree(a, b):
    """What two probe runs agree on: equal dimensions known, differing ones 0."""
    if a is None or b is None or len(a) != len(b):
        return None
    return _shape_value(x if x == y else 0 for x, y in zip(a, b))


def _solve_backwards(run, base, groups, probed_outs, outs):
    """``{(input, dim): size}`` for unknown input dims that a known output dim determines.

    Each group of unknown dimensions moves as one value (a group of one in
    the usual case); a group is solved when it alone moves a known output
    dimension, linearly, and the op's inference confirms the solution.
    """
    targets = [(j, d, size) for j, out in enumerate(outs) if out is not None
               for d, size in enumerate(out) if size and probed_outs[j] is not None
               and d < len(probed_outs[j]) and probed_outs[j][d] != size]
    if not targets:
        return {}

    def shifted(group, value):
        return {**base, **{u: value(base[u]) for u in group}}

    moved = {}
    for k, group in enumerate(groups):
        result = run(shifted(group, lambda v: v + _PROBE_UNIT))
        if result is not None:
            moved[k] = result[1]
    solved = {}
    for j, d, size in targets:
        movers = [k for k, outs_k in moved.items() if outs_k[j] is not None
                  and len(outs_k[j]) > d and outs_k[j][d] != probed_outs[j][d]]
        if len(movers) != 1:
            continue
        group = groups[movers[0]]
        if any(u in solved for u in group):
            continue
        slope = (moved[movers[0]][j][d] - probed_outs[j][d]) / _PROBE_UNIT
        start = base[group[0]]
        value = start + (size - probed_outs[j][d]) / slope
        if value != int(value) or value < 1:
            continue
        check = run(shifted(group, lambda v: int(value)))
        if check is not None and check[1][j] is not None and check[1][j][d] == size:
            solved.update({u: int(value) for u in group})
    return solved


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
