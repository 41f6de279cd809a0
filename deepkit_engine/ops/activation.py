"""Activation: the classic nonlinearities selected by ``act_type`` (MXNet)."""
from .registry import OpDef, Param, register

_ACT_TYPES = ("relu", "sigmoid", "tanh", "softrelu", "softsign")


def _activation_forward(xp, attrs, inputs, outputs, req):
    x, out = inputs[0], outputs[0]
    act = attrs.act_type
    if req[0] == "null":
        return
    target = out if req[0] != "add" else xp.empty_like(out)
    if act == "relu":
        xp.maximum(x, 0, out=target)
    elif act == "sigmoid":
        xp.negative(x, out=target)
        xp.exp(target, out=target)
        target += 1
        xp.reciprocal(target, out=target)
    elif act == "tanh":
        xp.tanh(x, out=target)
    elif act == "softrelu":
        # log(1 + exp(x)) computed without overflow: max(x, 0) + log1p(exp(-|x|))
        tmp = xp.empty_like(target)
        xp.abs(x, out=tmp)
        xp.negative(tmp, out=tmp)
        xp.exp(tmp, out=tmp)
        xp.log1p(tmp, out=tmp)
        xp.maximum(x, 0, out=target)
        target += tmp
    else:  # softsign
        tmp = xp.empty_like(target)
        xp.abs(x, out=tmp)
        tmp += 1
        xp.divide(x, tmp, out=target)
    if req[0] == "add":
        out += target


def _activation_gradient(F, node, ograds):
    g = ograds[0]
    act = node.attrs.act_type
    y = node.outputs[0]
    if act == "relu":
        return [g * F.sign(y)]
    if act == "sigmoid":
        return [g * y * (1 - y)]
    if act == "tanh":
        return [g * (1 - y * y)]
    x = node.inputs[0]
    if act == "softrelu":
        return [g * F.sigmoid(x)]
    return [g / F.square(1 + F.abs(x))]


register(OpDef(
    "Activation", _activation_forward, inplace=((0, 0),),
    params={"act_type": Param(str, doc="The nonlinearity.", choices=_ACT_TYPES)},
    gradient=_activation_gradient,
    doc="Elementwise nonlinearity: relu, sigmoid, tanh, softrelu (log(1+e^x)) or softsign."))
