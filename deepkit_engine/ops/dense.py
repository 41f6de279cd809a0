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


def _fc_forward(xp, attrs, inputs, outputs, req, blas_wide=True):
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
        threads.matmul(xp, x2, weight.T, o2, wide=blas_wide)
        if not attrs.no_bias:
            o2 += inputs[2]


def _rows_view(a, k, flatten):
    """``a`` as the (rows, k) matrix FullyConnected sees (a view when ``a`` is contiguous)."""
    rows = a.shape[0] if flatten else a.size // k
    return a.reshape(rows, k)


def _fc_gradient(F, node, ograds):
    data, weight = node.inputs[0], node.inputs[1]
    g = ograds[0]
    flat, h = node.attrs.flatten, node.attrs.num_hidden
    grads = [F._fc_data_grad(g, weight, data, flatten=flat, num_hidden=h),
             F._fc_weight_grad(g, data, flatten=flat, num_hidden=h)]
    if not node.attrs.no_bias:
        grads.append(F.sum(g, axis=0) if flat else F.sum(g, axis=-1, exclude=True))
    return grads


def _data_grad_forward(xp, attrs, inputs, outputs, req, blas_wide=True):
    g, weight = inputs[0], inputs[1]
    out = outputs[0]
    if req[0] == "null":
        return
    h, k = weight.shape
    g2 = _rows_view(g, h, attrs.flatten)
    if req[0] != "add" and out.flags.c_contiguous:
        threads.matmul(xp, g2, weight, out.reshape(g2.shape[0], k), wide=blas_wide)
    else:
        value = (g2 @ weight).reshape(out.shape)
        if req[0] == "add":
            out += value
        else:
            out[...] = value


def _data_grad_shape(attrs, in_shapes):
    return in_shapes, [None if in_shapes[2] is None else tuple(in_shapes[2])]


def _data_grad_gradient(F, node, ograds):
    g, weight = node.inputs[0], node.inputs[1]
    u = ograds[0]  # shaped as data
    flat = node.attrs.flatten
    h = node.attrs.num_hidden
    return [F.FullyConnected(u, weight, no_bias=True, num_hidden=h, flatten=flat),
            F._fc_weight_grad(g, u, flatten=flat, num_hidden=h), None]


def _weight_grad_forward(xp, attrs, inputs, outputs, req, blas_wide=True):
    g, data = inputs
    out = outputs[0]
    if req[0] == "null":
        return
    h, k = out.shape
    g2 = _rows_view(g, h, attrs.flatten)
    x2 = _rows_view(data, k, attrs.flatten)
    if req[0] == "add":
        out += g2.T @ x2
    else:
        threads.matmul(xp, g2.T, x2, out, wide=blas_wide)


def _weight_grad_shape(attrs, in_shapes):
    g, data = in_shapes
    if g is None or data is None:
        return in_shapes, [None]
    h = tuple(g)[-1]
    k = int(np.prod(tuple(data)[1:])) if attrs.flatten else tuple(data)[-1]
    return in_shapes, [(h, k)]


def _weight_grad_gradient(F, node, ograds):
    g, data = node.inputs
    u = ograds[0]  # (num_hidden, k), shaped as the weight
    flat = node.attrs.flatten
    h = node.attrs.num_hidden
    return [F.FullyConnected(data, u, no_bias=True, num_hidden=h, flatten=flat),
            F._fc_data_grad(g, u, data, flatten=flat, num_hidden=h)]


_GRAD_PARAMS = {
    "flatten": Param(bool, True, "As FullyConnected's flatten."),
    "num_hidden": Param(int, doc="FullyConnected's num_hidden.", min=1),
}

register(OpDef(
    "_fc_data_grad", _data_grad_forward, inputs=("ograd", "weight", "data"),
    resources=("blas_wide",),
    params=_GRAD_PARAMS, infer_shape=_data_grad_shape,
    infer_type=lambda attrs, t: (t, [t[0]]), gradient=_data_grad_gradient,
    doc="FullyConnected's data gradient ``ograd @ weight``, shaped as ``data`` (whose "
        "values it never reads)."))

register(OpDef(
    "_fc_weight_grad", _weight_grad_forward, inputs=("ograd", "data"),
    resources=("blas_wide",),
    params=_GRAD_PARAMS, infer_shape=_weight_grad_shape,
    infer_type=lambda attrs, t: (t, [t[0]]), gradient=_weight_grad_gradient,
    doc="FullyConnected's weight gradient ``ograd^T @ data``, the data seen as FullyConnected "
        "sees it (flattened after axis 0, or over all but the last axis)."))


register(OpDef(
    "FullyConnected", _fc_forward, inputs=_inputs, infer_shape=_fc_shape, partial_infer=True,
    resources=("blas_wide",),
    params={"num_hidden": Param(int, doc="Number of output units.", min=1),
            "no_bias": Param(bool, False, "Leave out the bias."),
            "flatten": Param(bool, True, "Flatten all but the first axis of data (else apply "
                                         "to the last axis).")},
    gradient=_fc_gradient,
    doc="Affine transform ``data @ weight.T + bias``; weight has shape (num_hidden, in_units) "
        "as in MXNet and Caffe."))
