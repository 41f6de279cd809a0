"""Loss heads: outputs whose gradient is the loss gradient, not the incoming one.

``SoftmaxOutput`` computes a softmax in forward and, in backward, the
gradient of the cross-entropy between that softmax and the label, as in
MXNet: a training graph needs no separate loss node.
"""
import numpy as np

from ..base import ShapeError
from .registry import OpDef, Param, register


def _softmax_axis(attrs, ndim):
    if attrs.preserve_shape:
        return ndim - 1
    return 1


def _softmax_output_shape(attrs, in_shapes):
    data, label = in_shapes
    if data is None:
        return in_shapes, [None]
    data = tuple(data)
    if len(data) < 1:
        raise ShapeError("input 'data' must have at least one dimension", argument="data",
                         actual=data)
    if attrs.preserve_shape:
        want = data[:-1]
    elif attrs.multi_output:
        want = (data[0],) + data[2:]
    else:
        want = (data[0],)
    if label is not None and tuple(label) != want and not (
            not attrs.multi_output and not attrs.preserve_shape and tuple(label) == data):
        raise ShapeError(f"input 'label' has shape {tuple(label)} but {want} was expected for "
                         f"data of shape {data} (one class index per "
                         f"{'position' if attrs.multi_output else 'sample'})", argument="label",
                         expected=want, actual=tuple(label))
    return [data, want if label is None else tuple(label)], [data]


def _softmax_output_type(attrs, in_dtypes):
    data, label = in_dtypes
    return [data, label if label is not None else data], [data]


def _softmax(xp, x, axis, out):
    if x.ndim == 2 and axis == 1 or axis == x.ndim - 1:
        xp.subtract(x, x.max(axis=axis, keepdims=True), out=out)
    else:
        xp.subtract(x, x.max(axis=axis, keepdims=True), out=out)
    xp.exp(out, out=out)
    out /= out.sum(axis=axis, keepdims=True)


def _flat_view(x, attrs):
    """(N, C) view for the default mode: data (N, d1, d2...) flattened after axis 0."""
    if attrs.preserve_shape or attrs.multi_output:
        return x
    return x.reshape(x.shape[0], -1)


def _softmax_output_forward(xp, attrs, inputs, outputs, req):
    data, out = inputs[0], outputs[0]
    if req[0] == "null":
        return
    x = _flat_view(data, attrs)
    target = _flat_view(out, attrs) if req[0] != "add" else xp.empty(x.shape, out.dtype)
    _softmax(xp, x, _softmax_axis(attrs, x.ndim), target)
    if req[0] == "add":
        out += target.reshape(out.shape)


def _backward_softmax_output_forward(xp, attrs, inputs, outputs, req):
    prob, label = inputs
    grad = outputs[0]
    if req[0] == "null":
        return
    p = _flat_view(prob, attrs)
    axis = _softmax_axis(attrs, p.ndim)
    num_classes = p.shape[axis]
    lab = label.astype(np.int64)
    if not attrs.multi_output and not attrs.preserve_shape and label.shape == prob.shape:
        value = p - label.reshape(p.shape)  # soft (probability) labels
        valid = None
    else:
        moved = xp.moveaxis(p, axis, -1)  # (..., C)
        valid = lab != attrs.ignore_label if attrs.use_ignore else None
        safe = xp.clip(lab, 0, num_classes - 1)
        onehot = (xp.arange(num_classes) == safe[..., None]).astype(p.dtype)
        value = moved - onehot
        if valid is not None:
            value *= valid[..., None]
        value = xp.moveaxis(value, -1, axis)
    scale = attrs.grad_scale
    if attrs.normalization == "batch":
        scale /= prob.shape[0]
    elif attrs.normalization == "valid":
        count = int(valid.sum()) if valid is not None else int(np.prod(lab.shape))
        scale /= max(count, 1)
    value = value.reshape(grad.shape) * scale
    if req[0] == "add":
        grad += value
    else:
        grad[...] = value


def _softmax_output_gradient(F, node, ograds):
    attrs = dict(node.attrs)
    grad = F._backward_SoftmaxOutput(node.outputs[0], node.inputs[1], **attrs)
    return [grad, None]


_SOFTMAX_PARAMS = {
    "grad_scale": Param(float, 1.0, "Scale of the gradient."),
    "ignore_label": Param(float, -1.0, "Label value to ignore when use_ignore is set."),
    "use_ignore": Param(bool, False, "Give no gradient for samples labelled ignore_label."),
    "multi_output": Param(bool, False, "Softmax over axis 1 at every other position "
                                       "(segmentation): data (N, C, ...), label (N, ...)."),
    "preserve_shape": Param(bool, False, "Softmax over the last axis, keeping the shape."),
    "normalization": Param(str, "null", "Gradient divided by nothing, the batch size, or the "
                                        "number of non-ignored labels.",
                           choices=("null", "batch", "valid")),
    "out_grad": Param(bool, False, "Accepted for MXNet compatibility; has no effect."),
    "smooth_alpha": Param(float, 0.0, "Accepted for MXNet compatibility; must be 0.", max=0.0),
}


def _backward_shape(attrs, in_shapes):
    return in_shapes, [in_shapes[0]]


def _backward_type(attrs, in_dtypes):
    return in_dtypes, [in_dtypes[0]]


register(OpDef(
    "_backward_SoftmaxOutput", _backward_softmax_output_forward, inputs=("output", "label"),
    params=dict(_SOFTMAX_PARAMS), infer_shape=_backward_shape, infer_type=_backward_type,
    differentiable=False,
    doc="Gradient of SoftmaxOutput: (softmax - one_hot(label)) * grad_scale / normalizer."))

register(OpDef(
    "SoftmaxOutput", _softmax_output_forward, inputs=("data", "label"),
    params=dict(_SOFTMAX_PARAMS), infer_shape=_softmax_output_shape,
    infer_type=_softmax_output_type, partial_infer=True, loss_head=True,
    gradient=_softmax_output_gradient, aliases=("Softmax",),
    doc="Softmax in forward; in backward the cross-entropy gradient with respect to the "
        "label (a loss head: it ignores the incoming gradient)."))
