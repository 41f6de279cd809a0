"""Fused optimizer updates (MXNet's ``sgd_update``, ``sgd_mom_update``, ``adam_update``).

One op per parameter and step, so an update is one engine push and no
temporaries escape to Python. Call them with ``out=weight`` to update in
place. State inputs (momentum, Adam's moments) are declared ``aux``: they are
updated in place, and the engine orders that write.
"""
from .registry import OpDef, Param, register

_COMMON = {
    "lr": Param(float, doc="Learning rate."),
    "wd": Param(float, 0.0, "Weight decay (L2) coefficient."),
    "rescale_grad": Param(float, 1.0, "Gradient multiplier, e.g. 1/batch_size."),
    "clip_gradient": Param(float, -1.0, "Clip the rescaled gradient to [-c, c]; <0: off."),
}


def _weight_shape(attrs, in_shapes):
    return in_shapes, [in_shapes[0]]


def _weight_type(attrs, in_dtypes):
    return in_dtypes, [in_dtypes[0]]


def _gradient_term(xp, attrs, weight, grad):
    g = grad * attrs.rescale_grad
    if attrs.clip_gradient >= 0:
        xp.clip(g, -attrs.clip_gradient, attrs.clip_gradient, out=g)
    if attrs.wd:
        g += attrs.wd * weight
    return g


def _sgd_forward(xp, attrs, inputs, outputs, req):
    weight, grad = inputs
    g = _gradient_term(xp, attrs, weight, grad)
    g *= -attrs.lr
    out = outputs[0]
    if req[0] == "add":
        out += weight + g
    elif req[0] != "null":
        xp.add(weight, g, out=out)


def _sgd_mom_forward(xp, attrs, inputs, outputs, req):
    weight, grad, mom = inputs
    g = _gradient_term(xp, attrs, weight, grad)
    mom *= attrs.momentum
    g *= attrs.lr
    mom -= g
    out = outputs[0]
    if req[0] == "add":
        out += weight + mom
    elif req[0] != "null":
        xp.add(weight, mom, out=out)


def _adam_forward(xp, attrs, inputs, outputs, req):
    weight, grad, mean, var = inputs
    g = _gradient_term(xp, attrs, weight, grad)
    mean *= attrs.beta1
    mean += (1 - attrs.beta1) * g
    var *= attrs.beta2
    var += (1 - attrs.beta2) * g * g
    step = xp.sqrt(var)
    step += attrs.epsilon
    xp.divide(mean, step, out=step)
    step *= -attrs.lr
    out = outputs[0]
    if req[0] == "add":
        out += weight + step
    elif req[0] != "null":
        xp.add(weight, step, out=out)


register(OpDef(
    "sgd_update", _sgd_forward, inputs=("weight", "grad"), params=dict(_COMMON),
    infer_shape=_weight_shape, infer_type=_weight_type, inplace=((0, 0),),
    differentiable=False,
    doc="SGD step: ``weight - lr * (clip(rescale_grad * grad) + wd * weight)``."))

register(OpDef(
    "sgd_mom_update", _sgd_mom_forward, inputs=("weight", "grad", "mom"), aux=("mom",),
    params=dict(_COMMON, momentum=Param(float, 0.0, "Momentum coefficient.")),
    infer_shape=_weight_shape, infer_type=_weight_type, inplace=((0, 0),),
    differentiable=False,
    doc="SGD with momentum: ``mom = momentum * mom - lr * g``; returns ``weight + mom`` "
        "(``mom`` is updated in place)."))

register(OpDef(
    "adam_update", _adam_forward, inputs=("weight", "grad", "mean", "var"),
    aux=("mean", "var"),
    params=dict(_COMMON, beta1=Param(float, 0.9, "Decay of the first moment."),
                beta2=Param(float, 0.999, "Decay of the second moment."),
                epsilon=Param(float, 1e-8, "Added to the denominator.")),
    infer_shape=_weight_shape, infer_type=_weight_type, inplace=((0, 0),),
    differentiable=False,
    doc="Adam step (without bias correction, as MXNet's op: fold it into lr): updates the "
        "moments ``mean`` and ``var`` in place and returns the new weight."))
