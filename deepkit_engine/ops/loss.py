"""Loss heads and losses: outputs whose gradient is the loss gradient, not the incoming one.

``SoftmaxOutput`` computes a softmax in forward and, in backward, the
gradient of the cross-entropy between that softmax and the label, as in
MXNet: a training graph needs no separate loss node. The regression heads
(``LinearRegressionOutput``, ``LogisticRegressionOutput``,
``MAERegressionOutput``) and ``MakeLoss`` work the same way. ``BlockGrad``
stops gradients; ``softmax_cross_entropy`` and ``smooth_l1`` are ordinary
differentiable losses (they use the incoming gradient).
"""
import numpy as np

from ..base import ShapeError
from .registry import OpDef, Param, get_op, register, write_result


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


def _class_label_gradient(xp, p, label, grad, attrs):
    """The common case in two passes: ``(p - onehot(label)) * scale`` for (N, C) and labels (N,)."""
    scale = attrs.grad_scale
    if attrs.normalization == "batch":
        scale /= p.shape[0]
    xp.multiply(p, scale, out=grad)
    rows = xp.arange(p.shape[0])
    grad[rows, xp.clip(label.astype(np.int64), 0, p.shape[1] - 1)] -= scale


def _backward_softmax_output_forward(xp, attrs, inputs, outputs, req):
    prob, label = inputs
    grad = outputs[0]
    if req[0] == "null":
        return
    p = _flat_view(prob, attrs)
    axis = _softmax_axis(attrs, p.ndim)
    num_classes = p.shape[axis]
    if (p.ndim == 2 and axis == 1 and label.ndim == 1 and req[0] == "write"
            and not attrs.use_ignore and attrs.normalization != "valid"
            and grad.flags.c_contiguous):
        _class_label_gradient(xp, p, label, grad.reshape(p.shape), attrs)
        return
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


# -- regression outputs --------------------------------------------------------------------
#
# MXNet's regression heads: forward is the prediction (identity, or a sigmoid for
# logistic regression); backward ignores the incoming gradient and gives
# ``grad_scale / num_output * d(out, label)``, with ``num_output`` the number of
# label elements per sample and ``d`` the difference (linear, logistic) or its
# sign (MAE, the L1 loss).

def _regression_shape(attrs, in_shapes):
    data, label = in_shapes
    if data is None:
        return in_shapes, [None]
    data = tuple(data)
    if len(data) < 1:
        raise ShapeError("input 'data' must have at least one dimension (the batch)",
                         argument="data", actual=data)
    if label is None:
        # as MXNet: a (N, 1) prediction takes a (N,) label by default
        label = (data[0],) if len(data) == 2 and data[1] == 1 else data
    else:
        label = tuple(label)
        if len(label) < 1 or label[0] != data[0] or int(np.prod(label)) != int(np.prod(data)):
            raise ShapeError(f"input 'label' has shape {label} but data has shape {data}: the "
                             f"label needs batch size {data[0]} and {int(np.prod(data))} "
                             "elements in all", argument="label", expected=data, actual=label)
    return [data, label], [data]


def _label_like_data_type(attrs, in_dtypes):
    data, label = in_dtypes
    if data is None:
        return in_dtypes, [None]
    return [data, label if label is not None else data], [data]


def _regression_forward(kind):
    def forward(xp, attrs, inputs, outputs, req):
        if kind == "logistic":
            sigmoid = get_op("sigmoid")
            (sigmoid.forward_cpu if xp is np else sigmoid.forward_gpu)(
                xp, sigmoid.default_attrs, inputs[:1], outputs, req)
        elif req[0] != "inplace":
            write_result(xp, outputs[0], inputs[0], req[0])
    forward.__name__ = f"forward_{kind}_regression"
    return forward


def _regression_backward(kind):
    def forward(xp, attrs, inputs, outputs, req):
        out, label = inputs
        grad = outputs[0]
        if req[0] == "null" or grad.size == 0:
            return
        num_output = label.size // label.shape[0]
        value = out - label.reshape(out.shape).astype(out.dtype, copy=False)
        if kind == "mae":
            xp.sign(value, out=value)
        value *= attrs.grad_scale / num_output
        write_result(xp, grad, value, req[0])
    forward.__name__ = f"backward_{kind}_regression"
    return forward


_REGRESSION_PARAMS = {"grad_scale": Param(float, 1.0, "Scale of the gradient.")}

for _name, _kind, _mx_backward, _what in (
        ("LinearRegressionOutput", "linear", "_backward_linear_reg_out",
         "the identity; in backward the squared-error gradient ``out - label``"),
        ("LogisticRegressionOutput", "logistic", "_backward_logistic_reg_out",
         "a sigmoid; in backward the logistic-loss gradient ``sigmoid(data) - label``"),
        ("MAERegressionOutput", "mae", "_backward_mae_reg_out",
         "the identity; in backward the absolute-error gradient ``sign(out - label)``")):
    register(OpDef(
        f"_backward_{_name}", _regression_backward(_kind), inputs=("output", "label"),
        params=dict(_REGRESSION_PARAMS), infer_shape=_backward_shape,
        infer_type=_backward_type, aliases=(_mx_backward,), differentiable=False,
        doc=f"Gradient of {_name}: ``grad_scale / num_output`` times "
            f"{'sign(output - label)' if _kind == 'mae' else 'output - label'}."))
    register(OpDef(
        _name, _regression_forward(_kind), inputs=("data", "label"),
        params=dict(_REGRESSION_PARAMS), infer_shape=_regression_shape,
        infer_type=_label_like_data_type, partial_infer=True, loss_head=True,
        inplace=((0, 0),) if _kind != "logistic" else (),
        gradient=(lambda op: lambda F, node, ograds: [
            getattr(F, op)(node.outputs[0], node.inputs[1], **node.attrs), None])(
                f"_backward_{_name}"),
        doc=f"A regression loss head: in forward {_what}, times grad_scale divided by the "
            "number of label elements per sample (the incoming gradient is ignored)."))


# -- MakeLoss, BlockGrad -------------------------------------------------------------------

def _make_loss_backward(xp, attrs, inputs, outputs, req):
    (out,) = inputs
    grad = outputs[0]
    if req[0] == "null" or grad.size == 0:
        return
    value = attrs.grad_scale
    if attrs.normalization == "batch":
        value /= out.shape[0]
    elif attrs.normalization == "valid":
        value /= max(int((out > attrs.valid_thresh).sum()), 1)
    if req[0] == "add":
        grad += value
    else:
        grad.fill(value)


_MAKE_LOSS_PARAMS = {
    "grad_scale": Param(float, 1.0, "The gradient of every element."),
    "valid_thresh": Param(float, 0.0, "With normalization='valid', the elements greater than "
                                      "this count as valid."),
    "normalization": Param(str, "null", "Divide the gradient by nothing, the batch size "
                                        "(axis 0) or the number of valid elements.",
                           choices=("null", "batch", "valid")),
}


def _identity_forward(xp, attrs, inputs, outputs, req):
    if req[0] != "inplace":
        write_result(xp, outputs[0], inputs[0], req[0])


register(OpDef(
    "_backward_MakeLoss", _make_loss_backward, inputs=("output",),
    params=dict(_MAKE_LOSS_PARAMS), differentiable=False,
    doc="Gradient of MakeLoss: grad_scale (normalised) everywhere, whatever the "
        "incoming gradient."))

register(OpDef(
    "MakeLoss", _identity_forward, params=dict(_MAKE_LOSS_PARAMS), inplace=((0, 0),),
    loss_head=True, aliases=("make_loss",),
    gradient=lambda F, node, ograds: [F._backward_MakeLoss(node.outputs[0], **node.attrs)],
    doc="Turn any symbol into a loss head: forward is the identity; the gradient is "
        "grad_scale for every element (divided by the batch size or the number of elements "
        "above valid_thresh with normalization), whatever comes from above."))

register(OpDef(
    "BlockGrad", _identity_forward, inplace=((0, 0),), aliases=("stop_gradient",),
    mirror=False, gradient=lambda F, node, ograds: [None],
    doc="The identity in forward; no gradient flows back through it (what it reads is "
        "treated as a constant)."))


# -- softmax_cross_entropy -----------------------------------------------------------------

def _softmax_ce_shape(attrs, in_shapes):
    data, label = in_shapes
    if data is None:
        return in_shapes, [(1,)]
    data = tuple(data)
    if len(data) != 2 or data[1] < 1:
        raise ShapeError(f"input 'data' has shape {data}; softmax_cross_entropy needs 2-D data "
                         "(batch, num_classes) with at least one class", argument="data",
                         expected="(batch, num_classes)", actual=data)
    if label is not None and tuple(label) != (data[0],):
        raise ShapeError(f"input 'label' has shape {tuple(label)} but data {data} needs "
                         f"({data[0]},) (one class index per sample)", argument="label",
                         expected=(data[0],), actual=tuple(label))
    return [data, (data[0],)], [(1,)]


def _class_index(xp, label, num_classes):
    """int64 class indices, truncated from floats and clipped into [0, num_classes)."""
    return xp.clip(label.astype(np.int64, copy=False), 0, num_classes - 1)


def _row_nll(xp, x, label):
    """``-log(softmax(x)[i, label_i])`` of each row of the (rows, classes) matrix ``x``."""
    rows, c = x.shape
    if not rows:
        return xp.zeros(0, x.dtype)
    shifted = x - x.max(axis=1, keepdims=True)
    lse = xp.log(xp.exp(shifted).sum(axis=1))
    return lse - shifted[xp.arange(rows), _class_index(xp, label, c)]


def _row_nll_grad(xp, x, label, scale, target):
    """``target (rows, classes) = (softmax(x) - one_hot(label)) * scale`` (rows broadcast)."""
    rows, c = x.shape
    _softmax(xp, x, 1, target)
    target[xp.arange(rows), _class_index(xp, label, c)] -= 1
    target *= scale.astype(target.dtype, copy=False)


def _softmax_ce_forward(xp, attrs, inputs, outputs, req):
    data, label = inputs
    write_result(xp, outputs[0], _row_nll(xp, data, label).sum().reshape(1), req[0])


def _softmax_ce_backward(xp, attrs, inputs, outputs, req):
    ograd, data, label = inputs
    grad = outputs[0]
    if req[0] == "null" or grad.size == 0:
        return
    target = grad if req[0] != "add" else xp.empty_like(grad)
    _row_nll_grad(xp, data, label, ograd, target)
    if req[0] == "add":
        grad += target


def _softmax_ce_backward_shape(attrs, in_shapes):
    ograd, data, label = in_shapes
    if data is None:
        return in_shapes, [None]
    (data, label), _ = _softmax_ce_shape(attrs, [data, label])
    if ograd is not None and tuple(ograd) != (1,):
        raise ShapeError(f"ograd has shape {tuple(ograd)} but the forward output had (1,)",
                         argument="ograd", expected=(1,), actual=tuple(ograd))
    return [(1,), data, label], [data]


def _softmax_ce_backward_type(attrs, in_dtypes):
    ograd, data, label = in_dtypes
    known = data if data is not None else ograd
    if known is None:
        return in_dtypes, [None]
    return [known, known, label if label is not None else known], [known]


def _softmax_ce_backward_gradient(F, node, ograds):
    # the backward op is ograd * (softmax(data) - one_hot(label)): linear in ograd
    ograd, data, label = node.inputs
    h = ograds[0]
    unit = F._backward_softmax_cross_entropy(F.ones_like(ograd), data, label)
    prob = F.softmax(data, axis=1)
    d_data = ograd * (prob * (h - F.sum(h * prob, axis=1, keepdims=True)))
    return [F.sum(h * unit), d_data, None]


register(OpDef(
    "_backward_softmax_cross_entropy", _softmax_ce_backward, inputs=("ograd", "data", "label"),
    infer_shape=_softmax_ce_backward_shape, infer_type=_softmax_ce_backward_type,
    partial_infer=True, gradient=_softmax_ce_backward_gradient,
    doc="Gradient of softmax_cross_entropy: ``ograd * (softmax(data) - one_hot(label))``."))

register(OpDef(
    "softmax_cross_entropy", _softmax_ce_forward, inputs=("data", "label"),
    infer_shape=_softmax_ce_shape, infer_type=_label_like_data_type, partial_infer=True,
    gradient=lambda F, node, ograds: [
        F._backward_softmax_cross_entropy(ograds[0], node.inputs[0], node.inputs[1]), None],
    doc="The summed cross-entropy ``-sum_i log(softmax(data_i)[label_i])`` of a batch, shape "
        "(1,): data (batch, num_classes), label (batch,) class indices (no gradient)."))


# -- _softmax_nll: per-sample cross-entropy over the last axis -------------------------------

def _nll_shape(attrs, in_shapes):
    data, label = in_shapes
    if data is None:
        return in_shapes, [None if label is None else tuple(label)]
    data = tuple(data)
    if len(data) < 1 or data[-1] < 1:
        raise ShapeError(f"input 'data' has shape {data}; _softmax_nll needs the classes on "
                         "the last axis, at least one", argument="data",
                         expected="(..., num_classes)", actual=data)
    if label is not None and tuple(label) != data[:-1]:
        raise ShapeError(f"input 'label' has shape {tuple(label)} but data {data} needs "
                         f"{data[:-1]} (one class index per row)", argument="label",
                         expected=data[:-1], actual=tuple(label))
    return [data, data[:-1]], [data[:-1]]


def _nll_forward(xp, attrs, inputs, outputs, req):
    data, label = inputs
    value = _row_nll(xp, data.reshape(-1, data.shape[-1]), label.reshape(-1))
    write_result(xp, outputs[0], value.reshape(outputs[0].shape), req[0])


def _nll_backward(xp, attrs, inputs, outputs, req):
    ograd, data, label = inputs
    grad = outputs[0]
    if req[0] == "null" or grad.size == 0:
        return
    c = data.shape[-1]
    x = data.reshape(-1, c)
    rows = x.shape[0]
    direct = req[0] != "add" and grad.flags.c_contiguous
    target = grad.reshape(rows, c) if direct else xp.empty((rows, c), grad.dtype)
    _row_nll_grad(xp, x, label.reshape(-1), ograd.reshape(rows, 1), target)
    if not direct:
        write_result(xp, grad, target.reshape(grad.shape), req[0])


def _nll_backward_shape(attrs, in_shapes):
    ograd, data, label = in_shapes
    if data is None:
        return in_shapes, [None]
    (data, label), (out,) = _nll_shape(attrs, [data, label])
    if ograd is not None and tuple(ograd) != out:
        raise ShapeError(f"ograd has shape {tuple(ograd)} but the forward output had {out}",
                         argument="ograd", expected=out, actual=tuple(ograd))
    return [out, data, label], [data]


def _nll_backward_gradient(F, node, ograds):
    # the backward op is ograd[..., None] * (softmax(data) - one_hot(label)): linear in ograd
    ograd, data, label = node.inputs
    h = ograds[0]
    prob = F.softmax(data, axis=-1)
    hp = F.sum(h * prob, axis=-1, keepdims=True)
    d_ograd = F.sum(h * prob, axis=-1) - F.pick(h, label, axis=-1)
    d_data = F.expand_dims(ograd, axis=-1) * (prob * (h - hp))
    return [d_ograd, d_data, None]


register(OpDef(
    "_backward_softmax_nll", _nll_backward, inputs=("ograd", "data", "label"),
    infer_shape=_nll_backward_shape, infer_type=_softmax_ce_backward_type,
    partial_infer=True, gradient=_nll_backward_gradient,
    doc="Gradient of _softmax_nll: ``ograd[..., None] * (softmax(data) - one_hot(label))``."))

register(OpDef(
    "_softmax_nll", _nll_forward, inputs=("data", "label"),
    infer_shape=_nll_shape, infer_type=_label_like_data_type, partial_infer=True,
    gradient=lambda F, node, ograds: [
        F._backward_softmax_nll(ograds[0], node.inputs[0], node.inputs[1]), None],
    doc="Per-row cross-entropy ``-log(softmax(data)[..., label])`` over the last axis: data "
        "(..., num_classes), label (...) class indices (no gradient), output (...). One op "
        "where log_softmax, pick and negative take three, and its gradient one where theirs "
        "take five."))


# -- smooth_l1 -----------------------------------------------------------------------------

def _smooth_l1_forward(xp, attrs, inputs, outputs, req):
    x, out = inputs[0], outputs[0]
    if req[0] == "null" or out.size == 0:
        return
    s2 = attrs.scalar * attrs.scalar
    if s2 == 0.0:  # sigma = 0: the quadratic branch everywhere, scaled by 0
        write_result(xp, out, xp.zeros((), out.dtype), req[0])
        return
    # with m = min(|x|, 1/s2): 0.5 * s2 * m^2 + (|x| - m) is both branches at once
    inner = 1.0 / s2
    target = out if req[0] != "add" else xp.empty_like(out)
    xp.abs(x, out=target)
    m = xp.minimum(target, inner)
    target -= m
    m *= m
    m *= 0.5 * s2
    target += m
    if req[0] == "add":
        out += target


def _smooth_l1_gradient(F, node, ograds):
    x = node.inputs[0]
    s2 = node.attrs.scalar * node.attrs.scalar
    g = ograds[0]
    if s2 == 0.0:
        return [F.zeros_like(g)]
    return [F.where(F.abs(x) > 1.0 / s2, g * F.sign(x), g * x * s2)]


register(OpDef(
    "smooth_l1", _smooth_l1_forward, inplace=((0, 0),),
    params={"scalar": Param(float, 1.0, "sigma: the quadratic zone is |x| <= 1/sigma^2.")},
    gradient=_smooth_l1_gradient,
    doc="Smooth L1 (Huber) loss per element: ``0.5*(sigma*x)^2`` where ``|x| <= 1/sigma^2``, "
        "else ``|x| - 0.5/sigma^2``."))
