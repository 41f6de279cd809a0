"""The Sequence* ops (MXNet 1.x): ``SequenceMask``, ``SequenceLast`` and
``SequenceReverse`` over a time axis with optional per-sequence lengths.

``SequenceLast`` sends the gradient back to the steps it read
(``_backward_SequenceLast``); ``SequenceMask`` and ``SequenceReverse`` are their
own gradients. Every backward op is linear in the incoming gradient and has a
gradient itself, so higher orders work; ``sequence_length`` gets no gradient.

Sequence lengths are data: out-of-range values are clipped into ``[0, T]``
(``[1, T]`` for SequenceLast) rather than checked, and float lengths are
truncated, as MXNet's ``static_cast`` does.
"""
import numpy as np

from ..base import ShapeError
from .indexing import check_index_dtype
from .registry import OpDef, Param, register, write_result
from .shape_utils import copy_into


def _seq_inputs(attrs):
    return ("data", "sequence_length") if attrs.use_sequence_length else ("data",)


def _seq_check(attrs, data, length):
    """Check (T, N, ...) / (N, T, ...) data and the (N,) lengths; return N."""
    if len(data) < 2:
        raise ShapeError(f"input 'data' has shape {data}; it must have at least 2 dimensions "
                         "(time and batch)", argument="data", actual=data)
    batch = data[1] if attrs.axis == 0 else data[0]
    if length is not None and tuple(length) != (batch,):
        raise ShapeError(f"input 'sequence_length' has shape {tuple(length)} but data {data} "
                         f"with axis={attrs.axis} needs ({batch},) (one length per sequence)",
                         argument="sequence_length", expected=(batch,), actual=tuple(length))
    return batch


def _seq_shape(last):
    def infer_shape(attrs, in_shapes):
        data = in_shapes[0]
        if data is None:
            return in_shapes, [None]
        data = tuple(data)
        length = in_shapes[1] if attrs.use_sequence_length else None
        batch = _seq_check(attrs, data, length)
        ins = [data, (batch,)] if attrs.use_sequence_length else [data]
        if not last:
            return ins, [data]
        out = (batch,) + data[2:]
        if data[attrs.axis] == 0 and int(np.prod(out)) > 0:
            raise ShapeError(f"input 'data' has shape {data}: its time axis {attrs.axis} is "
                             "empty, so there is no last step", argument="data", actual=data)
        return ins, [out]
    infer_shape.partial = True
    return infer_shape


def _seq_type(attrs, in_dtypes):
    data = in_dtypes[0]
    if len(in_dtypes) > 1:
        check_index_dtype(in_dtypes[1], "sequence_length")
        return [data, in_dtypes[1] if in_dtypes[1] is not None else data], [data]
    return [data], [data]


def _lengths(xp, attrs, inputs, steps, low=0):
    """int64 lengths clipped into [low, steps], or None without use_sequence_length."""
    if not attrs.use_sequence_length:
        return None
    return xp.clip(inputs[1].astype(np.int64, copy=False), low, steps)


def _seq_mask_forward(xp, attrs, inputs, outputs, req):
    x, out = inputs[0], outputs[0]
    if req[0] == "null":
        return
    steps = x.shape[attrs.axis]
    length = _lengths(xp, attrs, inputs, steps)
    if length is None or x.size == 0:
        copy_into(xp, out, x, req[0])
        return
    t = xp.arange(steps)
    masked = t[:, None] >= length[None, :] if attrs.axis == 0 else t[None, :] >= length[:, None]
    masked = masked.reshape(masked.shape + (1,) * (x.ndim - 2))
    if req[0] == "add":
        out += xp.where(masked, xp.asarray(attrs.value, dtype=x.dtype), x)
        return
    copy_into(xp, out, x, req[0])
    xp.copyto(out, xp.asarray(attrs.value, dtype=out.dtype), where=masked)


def _gather_steps(xp, x, axis, steps_index):
    """``x`` at time ``steps_index[..., n]`` for sequence n (time on ``axis``)."""
    batch = xp.arange(x.shape[1 - axis])
    if axis == 0:
        return x[steps_index, batch]
    return x[batch[:, None] if steps_index.ndim == 2 else batch, steps_index]


def _last_steps(xp, attrs, inputs):
    x = inputs[0]
    steps = x.shape[attrs.axis]
    length = _lengths(xp, attrs, inputs, steps, low=1)
    if length is None:
        return xp.full((x.shape[1 - attrs.axis],), max(steps - 1, 0), dtype=np.int64)
    return length - 1


def _seq_last_forward(xp, attrs, inputs, outputs, req):
    x, out = inputs[0], outputs[0]
    if req[0] == "null" or out.size == 0:
        return
    write_result(xp, out, _gather_steps(xp, x, attrs.axis, _last_steps(xp, attrs, inputs)),
                 req[0])


def _reversed_steps(xp, steps, length):
    """(T, N) source steps: each sequence's first length[n] steps reversed, padding kept."""
    t = xp.arange(steps)[:, None]
    return xp.where(t < length[None, :], length[None, :] - 1 - t, t)


def _seq_reverse_forward(xp, attrs, inputs, outputs, req):
    x, out = inputs[0], outputs[0]
    if req[0] == "null" or out.size == 0:
        return
    steps = x.shape[attrs.axis]
    length = _lengths(xp, attrs, inputs, steps)
    if length is None:
        write_result(xp, out, xp.flip(x, attrs.axis), req[0])
        return
    source = _reversed_steps(xp, steps, length)
    write_result(xp, out, _gather_steps(xp, x, attrs.axis,
                                        source if attrs.axis == 0 else source.T), req[0])


def _backward_seq_last_inputs(attrs):
    return ("ograd", "like") + (("sequence_length",) if attrs.use_sequence_length else ())


def _backward_seq_last_shape(attrs, in_shapes):
    ograd, like = in_shapes[:2]
    if like is None:
        return in_shapes, [None]
    like = tuple(like)
    length = in_shapes[2] if attrs.use_sequence_length else None
    (_, *rest), (expected,) = _seq_shape(True)(
        attrs, [like] + ([length] if attrs.use_sequence_length else []))
    if ograd is not None and tuple(ograd) != expected:
        raise ShapeError(f"ograd has shape {tuple(ograd)} but the forward output had "
                         f"{expected}", argument="ograd", expected=expected,
                         actual=tuple(ograd))
    return [expected, like] + rest, [like]


_backward_seq_last_shape.partial = True


def _backward_seq_last_type(attrs, in_dtypes):
    ograd = in_dtypes[0]
    if len(in_dtypes) > 2:
        check_index_dtype(in_dtypes[2], "sequence_length")
    return in_dtypes, [ograd]


def _backward_seq_last_forward(xp, attrs, inputs, outputs, req):
    ograd, like = inputs[:2]
    grad = outputs[0]
    if req[0] == "null":
        return
    if req[0] != "add":
        grad.fill(0)
    if ograd.size == 0:
        return
    last = _last_steps(xp, attrs, [like] + list(inputs[2:]))
    batch = xp.arange(last.size)
    index = (last, batch) if attrs.axis == 0 else (batch, last)
    grad[index] += ograd  # one position per sequence: no repeated indices


_SEQ_PARAMS = {
    "use_sequence_length": Param(bool, False, "Take a second input, sequence_length (N,), "
                                              "with each sequence's length (else all are "
                                              "full length)."),
    "axis": Param(int, 0, "The time axis: 0 for (T, N, ...) data, 1 for (N, T, ...).",
                  choices=(0, 1)),
}


def _seq_length_input(node):
    return [node.inputs[1]] if node.attrs.use_sequence_length else []


def _seq_attrs(node):
    return {"use_sequence_length": node.attrs.use_sequence_length, "axis": node.attrs.axis}


register(OpDef(
    "SequenceMask", _seq_mask_forward, inputs=_seq_inputs, inplace=((0, 0),),
    params={**_SEQ_PARAMS, "value": Param(float, 0.0, "The value of the masked steps.")},
    infer_shape=_seq_shape(False), infer_type=_seq_type, partial_infer=True,
    gradient=lambda F, node, ograds: [
        F.SequenceMask(ograds[0], *_seq_length_input(node), value=0.0, **_seq_attrs(node))
        if node.attrs.use_sequence_length else ograds[0]]
        + [None] * (len(node.inputs) - 1),
    doc="Set the steps of each sequence at and after its length to `value`."))

register(OpDef(
    "_backward_SequenceLast", _backward_seq_last_forward, inputs=_backward_seq_last_inputs,
    params=dict(_SEQ_PARAMS), infer_shape=_backward_seq_last_shape,
    infer_type=_backward_seq_last_type, partial_infer=True,
    gradient=lambda F, node, ograds: [
        F.SequenceLast(ograds[0], *node.inputs[2:], **_seq_attrs(node))]
        + [None] * (len(node.inputs) - 1),
    doc="Gradient of SequenceLast: zeros of `like`'s shape with `ograd` at each sequence's "
        "last step. Only `like`'s shape is used."))

register(OpDef(
    "SequenceLast", _seq_last_forward, inputs=_seq_inputs, params=dict(_SEQ_PARAMS),
    infer_shape=_seq_shape(True), infer_type=_seq_type, partial_infer=True,
    gradient=lambda F, node, ograds: [
        F._backward_SequenceLast(ograds[0], node.inputs[0], *_seq_length_input(node),
                                 **_seq_attrs(node))] + [None] * (len(node.inputs) - 1),
    doc="The last step of each sequence (step length-1, or the last one without "
        "use_sequence_length); the output drops the time axis: (N, ...)."))

register(OpDef(
    "SequenceReverse", _seq_reverse_forward, inputs=_seq_inputs, params=dict(_SEQ_PARAMS),
    infer_shape=_seq_shape(False), infer_type=_seq_type, partial_infer=True,
    gradient=lambda F, node, ograds: [
        F.SequenceReverse(ograds[0], *_seq_length_input(node), **_seq_attrs(node))]
        + [None] * (len(node.inputs) - 1),
    doc="Reverse the first length steps of each sequence along the time axis; steps after "
        "the length stay in place."))
