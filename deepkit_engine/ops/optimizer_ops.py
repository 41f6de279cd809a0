"""Fused optimizer updates (MXNet's ``sgd_update``, ``sgd_mom_update``, ``adam_update``).

One op per parameter and step, so an update is one engine push and no
temporaries escape to Python. Call them with ``out=weight`` to update in
place. State inputs (momentum, Adam's moments) are declared ``aux``: they are
updated in place, and the engine orders that write.

``_multi_sgd_update`` updates many parameters in one push (a whole step of
SGD with or without momentum); its momenta are outputs, so it is called with
``out=[weights..., momenta...]``.
"""
import ast

import numpy as np

from ..base import ShapeError
from .registry import REQUIRED, OpDef, Param, register, write_result

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


# -- many parameters in one push ------------------------------------------------------------

class Floats:
    """Parameter type: a tuple of floats (accepts a number, a list, or "(0.1, 0.2)")."""


class _FloatsParam(Param):
    """A :class:`Param` for :class:`Floats`."""

    __slots__ = ()

    def __init__(self, default=REQUIRED, doc=""):
        super().__init__(Floats, default, doc)

    def _convert(self, value):
        if isinstance(value, str):
            value = ast.literal_eval(value.strip())
        if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
            return (float(value),)
        return tuple(float(v) for v in value)

    def describe(self):
        default = "required" if self.default is REQUIRED else f"default={self.default!r}"
        return f"tuple of float, {default}"


def _multi_group(attrs):
    """Inputs per parameter: (weight, grad) or, with momentum, (weight, grad, mom)."""
    return 3 if attrs.momentum else 2


def _multi_outputs(attrs):
    n = len(attrs.lrs)
    names = tuple(f"weight{i}" for i in range(n))
    return names + tuple(f"mom{i}" for i in range(n)) if attrs.momentum else names


def _multi_sgd_shape(attrs, in_shapes):
    group, n = _multi_group(attrs), len(attrs.lrs)
    if len(attrs.wds) != n:
        raise ShapeError(f"lrs has {n} entries but wds has {len(attrs.wds)}: one of each per "
                         "parameter", argument="wds", expected=n, actual=len(attrs.wds))
    if len(in_shapes) != group * n:
        what = "(weight, grad, mom)" if attrs.momentum else "(weight, grad)"
        raise ShapeError(f"{len(in_shapes)} inputs for {n} parameters: each needs {what}",
                         argument="data", expected=group * n, actual=len(in_shapes))
    ins, weights = list(in_shapes), []
    for i in range(n):
        part = in_shapes[group * i:group * (i + 1)]
        known = next((tuple(s) for s in part if s is not None), None)
        for k, s in enumerate(part):
            if s is not None and tuple(s) != known:
                raise ShapeError(f"parameter {i}: input {group * i + k} has shape {tuple(s)} "
                                 f"but its weight needs {known}", argument=group * i + k,
                                 expected=known, actual=tuple(s))
        ins[group * i:group * (i + 1)] = [known] * group
        weights.append(known)
    return ins, weights * (2 if attrs.momentum else 1)


_multi_sgd_shape.partial = True


def _multi_sgd_type(attrs, in_dtypes):
    group = _multi_group(attrs)
    weights = list(in_dtypes[::group])
    return in_dtypes, weights * (2 if attrs.momentum else 1)


def _multi_sgd_forward(xp, attrs, inputs, outputs, req):
    group, n = _multi_group(attrs), len(attrs.lrs)
    for i in range(n):
        weight, grad = inputs[group * i], inputs[group * i + 1]
        g = grad * attrs.rescale_grad
        if attrs.clip_gradient >= 0:
            xp.clip(g, -attrs.clip_gradient, attrs.clip_gradient, out=g)
        if attrs.wds[i]:
            g += attrs.wds[i] * weight
        g *= attrs.lrs[i]
        if attrs.momentum:
            step = inputs[group * i + 2] * attrs.momentum
            step -= g
            write_result(xp, outputs[i], weight + step, req[i])
            write_result(xp, outputs[n + i], step, req[n + i])
        else:
            write_result(xp, outputs[i], weight - g, req[i])


register(OpDef(
    "_multi_sgd_update", _multi_sgd_forward, variadic=True,
    params={"lrs": _FloatsParam(doc="Learning rate of each parameter."),
            "wds": _FloatsParam(doc="Weight decay of each parameter."),
            "momentum": Param(float, 0.0, "Momentum coefficient; 0: plain SGD, no momenta."),
            "rescale_grad": _COMMON["rescale_grad"],
            "clip_gradient": _COMMON["clip_gradient"]},
    outputs=_multi_outputs, infer_shape=_multi_sgd_shape, infer_type=_multi_sgd_type,
    differentiable=False,
    doc="One SGD step of many parameters: inputs (weight, grad) per parameter, or (weight, "
        "grad, mom) with momentum; outputs the new weights, then (with momentum) the new "
        "momenta, as sgd_update and sgd_mom_update compute them."))
