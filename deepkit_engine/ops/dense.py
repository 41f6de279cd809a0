"""FullyConnected: the affine layer ``y = x W^T + b`` (MXNet semantics)."""
import numpy as np

from .. import threads
from ..base import ShapeError
from .registry import OpDef, Param, register


def _inputs(attrs):
    return ("data", "weight") if attrs.no_bias else ("data", "weight", "bias")


def _fc_shape(attrs, in_shapes):
    data = in_shapes[0]
    h = attrs.num_hidden
    if data is None:
        out = None
        weight = in_shapes[1]
        ins = list(in_shapes)
        if weight is not None and tuple(weight)[0] != h:
            raise ShapeError(f"input 'weight' has shape {tuple(weight)} but num_hidden={h} needs "
                             f"({h}, ...)", argument="weight", expected=(h,), actual=weight)
        if not attrs.no_bias:
            ins[2] = (h,)
        return ins, [out]
    data = tuple(data)
    if len(data) < 1:
        # 1-D data with flatten=True is a batch of single features, as in MXNet 1.x
        raise ShapeError(f"input 'data' has shape {data}; FullyConnected needs at least "
                         "1 dimension", argument="data", actual=data)
    k = int(np.prod(data[1:])) if attrs.flatten else data[-1]
    out = (data[0], h) if attrs.flatten else data[:-1] + (h,)
    ins = [data, (h, k)] + ([] if attrs.no_bias else [(h,)])
    for name, given, want in zip(("weight", "bias"), in_shapes[1:], ins[1:]):
        if given is not None and tuple(given) != want:
            raise ShapeError(f"input '{name}' has shape {tuple(given)} but {want} was inferred "
                             f"from num_hidden={h} and data {data}", argument=name,
                             expected=want, actual=tuple(given))
    return ins, [out]


def _fc_forward(xp, attrs, inputs, outputs, req):
    data, weight = inputs[0], inputs[1]
    out = outputs[0]
    k = weight.shape[1]
    rows = data.shape[0] if attrs.flatten else int(np.prod(data.shape[:-1]))
    x2 = data.reshape(rows, k)
    o2 = out.reshape(rows, attrs.num_hidden)
    if req[0] == "add":
        o2 += x2 @ weight.T
        if not attrs.no_bias:
            o2 += inputs[2]
    elif req[0] != "null":
        threads.matmul(xp, x2, weight.T, o2)
        if not attrs.no_bias:
            o2 += inputs[2]


def _fc_gradient(F, node, ograds):
    data, weight = node.inputs[0], node.inputs[1]
    g = ograds[0]
    if node.attrs.flatten:
        x2 = F.flatten(data)
        g2 = g
    else:
        x2 = F.reshape(data, shape=(-1, 0), reverse=True)
        g2 = F.reshape(g, shape=(-1, 0), reverse=True)
    grads = [F.reshape_like(F.dot(g2, weight), data), F.dot(g2, x2, transpose_a=True)]
    if not node.attrs.no_bias:
        grads.append(F.sum(g2, axis=0))
    return grads


register(OpDef(
    "FullyConnected", _fc_forward, inputs=_inputs, infer_shape=_fc_shape, partial_infer=True,
    params={"num_hidden": Param(int, doc="Number of output units.", min=1),
            "no_bias": Param(bool, False, "Leave out the bias."),
            "flatten": Param(bool, True, "Flatten all but the first axis of data (else apply "
                                         "to the last axis).")},
    gradient=_fc_gradient,
    doc="Affine transform ``data @ weight.T + bias``; weight has shape (num_hidden, in_units) "
        "as in MXNet and Caffe."))
