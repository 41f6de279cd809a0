"""Ops that the gradient pass itself inserts."""
from ..base import ShapeError
from .registry import OpDef, register


def _reduce_to_like_shape(attrs, in_shapes):
    data, like = in_shapes
    if data is None or like is None:
        return in_shapes, [like]
    if len(like) > len(data) or any(l not in (1, d) for l, d in zip(like[::-1], data[::-1])):
        raise ShapeError(f"cannot sum shape {tuple(data)} down to {tuple(like)}: it is not a "
                         "broadcast of it", argument="like", expected=tuple(data),
                         actual=tuple(like))
    return in_shapes, [like]


def _reduce_to_like_type(attrs, in_dtypes):
    return in_dtypes, [in_dtypes[0]]


def _reduce_to_like_forward(xp, attrs, inputs, outputs, req):
    data, out = inputs[0], outputs[0]
    if req[0] == "inplace" and data.shape == out.shape:
        return  # same shape: the planner let the output alias the input
    lead = data.ndim - out.ndim
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(out.shape)
                                      if n == 1 and data.shape[lead + i] != 1)
    value = data.sum(axis=axes, keepdims=True).reshape(out.shape) if axes else data
    if req[0] == "add":
        out += value
    elif req[0] != "null":
        out[...] = value


def _reduce_to_like_gradient(F, node, ograds):
    return [F._broadcast_to_like(ograds[0], node.inputs[0]), None]


def _broadcast_to_like_shape(attrs, in_shapes):
    data, like = in_shapes
    if data is not None and like is not None:
        _reduce_to_like_shape(attrs, [like, data])
    return in_shapes, [like]


def _broadcast_to_like_forward(xp, attrs, inputs, outputs, req):
    value = xp.broadcast_to(inputs[0], outputs[0].shape)
    if req[0] == "add":
        outputs[0] += value
    elif req[0] != "null":
        outputs[0][...] = value


def _broadcast_to_like_gradient(F, node, ograds):
    return [F._reduce_to_like(ograds[0], node.inputs[0]), None]


register(OpDef(
    "_reduce_to_like", _reduce_to_like_forward, inputs=("data", "like"),
    infer_shape=_reduce_to_like_shape, infer_type=_reduce_to_like_type, partial_infer=True,
    inplace=((0, 0),),
    gradient=_reduce_to_like_gradient,
    doc="Sum ``data`` over the axes along which ``like``'s shape was broadcast to it, giving "
        "``like``'s shape: how the gradient pass un-broadcasts gradients."))

register(OpDef(
    "_broadcast_to_like", _broadcast_to_like_forward, inputs=("data", "like"),
    infer_shape=_broadcast_to_like_shape, infer_type=_reduce_to_like_type, partial_infer=True,
    gradient=_broadcast_to_like_gradient,
    doc="Broadcast ``data`` to ``like``'s shape with numpy rules (leading axes added): the "
        "gradient of ``_reduce_to_like``."))
