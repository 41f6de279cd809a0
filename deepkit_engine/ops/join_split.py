"""Joining and splitting along an axis: ``concat``, ``stack`` and ``split``
(MXNet's ``SliceChannel``).

``concat``'s gradient is ``_backward_concat`` (one slice of the incoming
gradient per input), linear in the incoming gradient with a declared gradient
of its own, so second order works.
"""
from ..base import ShapeError
from .registry import REQUIRED, OpDef, Param, Shape, register, write_result
from .shape_utils import any_unknown, check_axis


def _concat_infer_shape(attrs, in_shapes):
    if any_unknown(in_shapes):
        return in_shapes, [None]
    if not in_shapes:
        raise ShapeError("needs at least one input", argument="data")
    first = tuple(in_shapes[0])
    if not first:
        raise ShapeError("cannot concatenate 0-d inputs", argument="arg0", actual=first)
    dim = check_axis(attrs.dim, len(first), "dim")
    total = 0
    for i, s in enumerate(in_shapes):
        s = tuple(s)
        if len(s) != len(first) or s[:dim] + s[dim + 1:] != first[:dim] + first[dim + 1:]:
            raise ShapeError(f"input {i} has shape {s} but input 0 has {first}: all inputs "
                             f"must match on every axis except dim={attrs.dim}",
                             argument=f"arg{i}", expected=first, actual=s)
        total += s[dim]
    return in_shapes, [first[:dim] + (total,) + first[dim + 1:]]


def _concat_partial_shapes(attrs, ins, outs):
    """Partial shapes (0 = unknown dimension) of ``concat``, as MXNet 1.x infers them.

    Every axis but ``dim`` is one size across all inputs and the output, so a
    size known anywhere is known everywhere; along ``dim`` the output is the
    sum of the inputs, and one unknown input size follows from a known output.

    Returns:
        ``(ins, outs)`` as tuples with 0 for what stays unknown, or None when
        an input is wholly unknown (the generic inference then takes over).
    """
    if not ins or any(s is None for s in ins):
        return None
    shapes = [tuple(s) for s in ins]
    rank = len(shapes[0])
    out = tuple(outs[0]) if outs and outs[0] is not None else (0,) * rank
    if not rank or any(len(s) != rank for s in shapes) or len(out) != rank:
        return None
    dim = check_axis(attrs.dim, rank, "dim")
    sizes = []
    for axis in range(rank):
        if axis == dim:
            sizes.append(None)
            continue
        known = {s[axis] for s in shapes + [out] if s[axis]}
        if len(known) > 1:
            raise ShapeError(f"inputs {shapes} and output {out} disagree on axis {axis}: all "
                             f"inputs must match on every axis except dim={attrs.dim} "
                             "(0 = unknown dimension)", argument="arg0")
        sizes.append(known.pop() if known else 0)
    along = [s[dim] for s in shapes]
    total = out[dim]
    missing = [i for i, v in enumerate(along) if not v]
    if not missing:
        total = sum(along)
    elif len(missing) == 1 and total and total - sum(along) >= 1:
        along[missing[0]] = total - sum(along)

    def full(size_on_dim):
        return tuple(size_on_dim if axis == dim else size for axis, size in enumerate(sizes))

    return [full(v) for v in along], [full(total)]


_concat_infer_shape.partial_shapes = _concat_partial_shapes


def _concat_forward(xp, attrs, inputs, outputs, req):
    out, r = outputs[0], req[0]
    if r == "add":
        out += xp.concatenate(inputs, axis=attrs.dim)
    elif r != "null":
        xp.concatenate(inputs, axis=attrs.dim, out=out)


def _concat_gradient(F, node, ograds):
    parts = F._backward_concat(ograds[0], *node.inputs, dim=node.attrs.dim)
    return [parts[i] for i in range(len(node.inputs))]


register(OpDef("concat", _concat_forward, variadic=True,
               params={"dim": Param(int, 1, "Axis to join along."),
                       "num_args": Param(int, None, "Number of inputs (set automatically).",
                                         min=1)},
               infer_shape=_concat_infer_shape, aliases=("Concat",),
               gradient=_concat_gradient,
               doc="Joins arrays along an existing axis `dim`."))


def _backward_concat_outputs(attrs):
    return tuple(f"output{i}" for i in range((attrs.num_args or 1) - 1))


def _backward_concat_infer_shape(attrs, in_shapes):
    if any_unknown(in_shapes[1:]):
        return in_shapes, [None] * (len(in_shapes) - 1)
    _, (expected,) = _concat_infer_shape(attrs, in_shapes[1:])
    if in_shapes[0] is not None and tuple(in_shapes[0]) != expected:
        raise ShapeError(f"ograd has shape {tuple(in_shapes[0])} but concatenating the data "
                         f"gives {expected}", argument="arg0", expected=expected,
                         actual=tuple(in_shapes[0]))
    return [expected] + list(in_shapes[1:]), list(in_shapes[1:])


def _backward_concat_infer_type(attrs, in_dtypes):
    return in_dtypes, [in_dtypes[0]] * (len(in_dtypes) - 1)


def _backward_concat_forward(xp, attrs, inputs, outputs, req):
    g = inputs[0]
    dim = attrs.dim + g.ndim if attrs.dim < 0 else attrs.dim
    lead = (slice(None),) * dim
    begin = 0
    for x, out, r in zip(inputs[1:], outputs, req):
        end = begin + x.shape[dim]
        write_result(xp, out, g[lead + (slice(begin, end),)], r)
        begin = end


register(OpDef("_backward_concat", _backward_concat_forward, variadic=True,
               params={"dim": Param(int, 1, "Axis the inputs were joined along."),
                       "num_args": Param(int, None, "Number of inputs, ograd included (set "
                                                    "automatically).", min=2)},
               infer_shape=_backward_concat_infer_shape,
               infer_type=_backward_concat_infer_type, outputs=_backward_concat_outputs,
               gradient=lambda F, node, ograds: [F.concat(*ograds, dim=node.attrs.dim)]
               + [None] * (len(node.inputs) - 1),
               doc="Gradient of concat: the first input (ograd) cut along `dim` into pieces "
                   "shaped as the other inputs, which only supply shapes."))


def _stack_infer_shape(attrs, in_shapes):
    if any_unknown(in_shapes):
        return in_shapes, [None]
    if not in_shapes:
        raise ShapeError("needs at least one input", argument="data")
    first = tuple(in_shapes[0])
    axis = check_axis(attrs.axis, len(first), extra=1)
    for i, s in enumerate(in_shapes):
        if tuple(s) != first:
            raise ShapeError(f"input {i} has shape {tuple(s)} but input 0 has {first}: all "
                             "inputs must have the same shape", argument=f"arg{i}",
                             expected=first, actual=tuple(s))
    return in_shapes, [first[:axis] + (len(in_shapes),) + first[axis:]]


def _stack_forward(xp, attrs, inputs, outputs, req):
    out, r = outputs[0], req[0]
    if r == "add":
        out += xp.stack(inputs, axis=attrs.axis)
    elif r != "null":
        xp.stack(inputs, axis=attrs.axis, out=out)


register(OpDef("stack", _stack_forward, variadic=True,
               params={"axis": Param(int, 0, "Position of the new axis in the result."),
                       "num_args": Param(int, None, "Number of inputs (set automatically).",
                                         min=1)},
               infer_shape=_stack_infer_shape,
               gradient=lambda F, node, ograds: list(F.split(
                   ograds[0], num_outputs=len(node.inputs), axis=node.attrs.axis,
                   squeeze_axis=True)),
               doc="Joins same-shaped arrays along a new axis."))


def _split_outputs(attrs):
    return tuple(f"output{i}" for i in range(attrs.num_outputs))


def _split_infer_shape(attrs, in_shapes):
    (shape,) = in_shapes
    n = attrs.num_outputs
    if shape is None:
        return in_shapes, [None] * n
    shape = tuple(shape)
    axis = check_axis(attrs.axis, len(shape))
    if shape[axis] % n:
        raise ShapeError(f"axis {attrs.axis} of an input of shape {shape} has size "
                         f"{shape[axis]}, which does not divide into num_outputs={n} equal "
                         "parts", argument="num_outputs", expected=f"a divisor of {shape[axis]}",
                         actual=n)
    part = shape[axis] // n
    if attrs.squeeze_axis:
        if part != 1:
            raise ShapeError(f"squeeze_axis=True needs parts of size 1 but axis {attrs.axis} "
                             f"of {shape} splits into parts of size {part}",
                             argument="squeeze_axis", expected=1, actual=part)
        out = shape[:axis] + shape[axis + 1:]
    else:
        out = shape[:axis] + (part,) + shape[axis + 1:]
    return in_shapes, [out] * n


def _split_infer_type(attrs, in_dtypes):
    return in_dtypes, [in_dtypes[0]] * attrs.num_outputs


def _split_forward(xp, attrs, inputs, outputs, req):
    x = inputs[0]
    axis = attrs.axis + x.ndim if attrs.axis < 0 else attrs.axis
    part = x.shape[axis] // attrs.num_outputs
    lead = (slice(None),) * axis
    for i, (out, r) in enumerate(zip(outputs, req)):
        key = lead + ((i,) if attrs.squeeze_axis else (slice(i * part, (i + 1) * part),))
        write_result(xp, out, x[key], r)


def _split_gradient(F, node, ograds):
    if node.attrs.squeeze_axis:
        return [F.stack(*ograds, axis=node.attrs.axis)]
    return [F.concat(*ograds, dim=node.attrs.axis)]


register(OpDef("split", _split_forward,
               params={"num_outputs": Param(int, REQUIRED, "Number of equal parts.", min=1),
                       "axis": Param(int, 1, "Axis to split along."),
                       "squeeze_axis": Param(bool, False, "Remove the split axis (its parts "
                                                          "must have size 1).")},
               infer_shape=_split_infer_shape, infer_type=_split_infer_type,
               outputs=_split_outputs, gradient=_split_gradient,
               aliases=("SliceChannel",),
               doc="Splits an array into `num_outputs` equal parts along an axis.", fluent=True))


# -- _split_v2: split at indices or into sections -----------------------------------------

def _split_v2_bounds(attrs, size):
    """``[(start, stop)]`` of the parts of an axis of ``size``."""
    if attrs.sections > 0:
        if size % attrs.sections:
            raise ShapeError(f"the split axis has size {size}, which does not divide into "
                             f"sections={attrs.sections} equal parts", argument="sections",
                             expected=f"a divisor of {size}", actual=attrs.sections)
        part = size // attrs.sections
        return [(i * part, (i + 1) * part) for i in range(attrs.sections)]
    starts = list(attrs.indices)
    if not starts or starts[0] != 0 or any(b < a for a, b in zip(starts, starts[1:])) \
            or starts[-1] > size:
        raise ShapeError(f"indices={tuple(starts)} must start at 0 and increase up to the "
                         f"axis size {size}", argument="indices", actual=tuple(starts))
    return list(zip(starts, starts[1:] + [size]))


def _split_v2_outputs(attrs):
    count = attrs.sections if attrs.sections > 0 else len(attrs.indices)
    return tuple(f"output{i}" for i in range(count))


def _split_v2_infer_shape(attrs, in_shapes):
    (shape,) = in_shapes
    count = len(_split_v2_outputs(attrs))
    if shape is None:
        return in_shapes, [None] * count
    shape = tuple(shape)
    axis = check_axis(attrs.axis, len(shape))
    outs = []
    for start, stop in _split_v2_bounds(attrs, shape[axis]):
        if attrs.squeeze_axis:
            if stop - start != 1:
                raise ShapeError(f"squeeze_axis=True needs parts of size 1 but a part of axis "
                                 f"{attrs.axis} of {shape} has size {stop - start}",
                                 argument="squeeze_axis", expected=1, actual=stop - start)
            outs.append(shape[:axis] + shape[axis + 1:])
        else:
            outs.append(shape[:axis] + (stop - start,) + shape[axis + 1:])
    return in_shapes, outs


def _split_v2_infer_type(attrs, in_dtypes):
    return in_dtypes, [in_dtypes[0]] * len(_split_v2_outputs(attrs))


def _split_v2_forward(xp, attrs, inputs, outputs, req):
    x = inputs[0]
    axis = attrs.axis + x.ndim if attrs.axis < 0 else attrs.axis
    lead = (slice(None),) * axis
    for (start, stop), out, r in zip(_split_v2_bounds(attrs, x.shape[axis]), outputs, req):
        key = lead + ((start,) if attrs.squeeze_axis else (slice(start, stop),))
        write_result(xp, out, x[key], r)


def _split_v2_gradient(F, node, ograds):
    if node.attrs.squeeze_axis:
        return [F.stack(*ograds, axis=node.attrs.axis)]
    return [F.concat(*ograds, dim=node.attrs.axis)]


register(OpDef("_split_v2", _split_v2_forward,
               params={"indices": Param(Shape, (), "Start of each part along the axis, "
                                                   "beginning with 0 (unless `sections`).",
                                        min=0),
                       "axis": Param(int, 0, "Axis to split along."),
                       "squeeze_axis": Param(bool, False, "Remove the split axis (its parts "
                                                          "must have size 1)."),
                       "sections": Param(int, 0, "Number of equal parts (0: use `indices`).",
                                         min=0)},
               infer_shape=_split_v2_infer_shape, infer_type=_split_v2_infer_type,
               outputs=_split_v2_outputs, gradient=_split_v2_gradient,
               doc="Splits an array along an axis at the given start indices, or into "
                   "`sections` equal parts (MXNet's ``split_v2``)."))
