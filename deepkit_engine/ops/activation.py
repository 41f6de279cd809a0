"""Activations: ``Activation``, ``LeakyReLU``, ``softmax``, ``softmin``, ``log_softmax``,
``hard_sigmoid``, ``mish``, ``SoftmaxActivation``.

Names, parameters and semantics follow MXNet 1.x. Gradients are compositions
of differentiable ops (so they can be differentiated again) and read the
output where the derivative is a function of it, so the input can be freed.
"""
import numpy as np

from .. import threads
from ..base import ShapeError
from .indexing import normalize_axis
from .random_ops import uniform01
from .registry import OpDef, Param, get_op, register, same_dtype, write_result

_ACT_TYPES = ("relu", "sigmoid", "tanh", "softrelu", "softsign")


def _activation_forward(xp, attrs, inputs, outputs, req):
    x, out = inputs[0], outputs[0]
    act = attrs.act_type
    if req[0] == "null":
        return
    target = out if req[0] != "add" else xp.empty_like(out)
    if act == "relu":
        threads.unary(xp, lambda a, out: xp.maximum(a, 0, out=out), x, target)
    elif act == "sigmoid":
        xp.negative(x, out=target)
        xp.exp(target, out=target)
        target += 1
        xp.reciprocal(target, out=target)
    elif act == "tanh":
        threads.unary(xp, xp.tanh, x, target)
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
        return [F._relu_grad(g, y)]
    if act == "sigmoid":
        return [F._sigmoid_grad(g, y)]
    if act == "tanh":
        return [F._tanh_grad(g, y)]
    x = node.inputs[0]
    if act == "softrelu":
        return [g * F.sigmoid(x)]
    return [g / F.square(1 + F.abs(x))]


#: Elements per block of the activation gradients below: a block's temporaries stay in
#: the cache, so each pass after the first reads the cache instead of memory (LeNet's
#: first tanh gradient, 1.5 M values: 4.6 ms as three whole-array passes, 1.4 ms in
#: blocks of 16 K values, whose Python loop costs, 0.6 ms in blocks of 128 K).
GRAD_BLOCK = 1 << 17


def _blockwise(xp, block, g, y, out):
    """``block(g, y, out)`` over flat blocks of :data:`GRAD_BLOCK` elements.

    On numpy, contiguous arrays of at least ``threads.UNARY_MIN_SIZE`` elements
    are also split into one range per kernel pool thread. ``out`` may be ``g``
    (the ops run in place): a block reads its ``g`` before it writes ``out``.
    """
    if xp is not np or not (g.flags.c_contiguous and y.flags.c_contiguous
                            and out.flags.c_contiguous):
        block(g, y, out)
        return
    gf, yf, of = g.reshape(-1), y.reshape(-1), out.reshape(-1)

    def run(span):
        for i in range(span.start, span.stop, GRAD_BLOCK):
            j = min(i + GRAD_BLOCK, span.stop)
            block(gf[i:j], yf[i:j], of[i:j])

    parts = threads.pool_size() if g.size >= threads.UNARY_MIN_SIZE else 1
    threads.parallel_map(run, threads.even_slices(g.size, parts))


def _act_grad_forward(block):
    """The forward kernel of an activation gradient op computing ``block(xp)(g, y, out)``."""
    def forward(xp, attrs, inputs, outputs, req):
        g, y = inputs
        if req[0] == "null":
            return
        target = outputs[0] if req[0] != "add" else xp.empty_like(outputs[0])
        _blockwise(xp, block(xp), g, y, target)
        if req[0] == "add":
            outputs[0] += target
    return forward


def _relu_block(xp):
    return lambda g, y, out: xp.multiply(g, y > 0, out=out)


def _tanh_block(xp):
    def block(g, y, out):
        t = xp.multiply(y, y)
        xp.subtract(1, t, out=t)
        xp.multiply(g, t, out=out)
    return block


def _sigmoid_block(xp):
    def block(g, y, out):
        t = xp.subtract(1, y)
        t *= y
        xp.multiply(g, t, out=out)
    return block


def _relu_grad_gradient(F, node, ograds):
    # linear in the incoming gradient; the step function of y has derivative 0
    return [F._relu_grad(ograds[0], node.inputs[1]), None]


def _tanh_grad_gradient(F, node, ograds):
    # d/dg g (1 - y^2) = 1 - y^2; d/dy = -2 g y
    h = ograds[0]
    g, y = node.inputs
    return [F._tanh_grad(h, y), h * g * y * -2]


def _sigmoid_grad_gradient(F, node, ograds):
    # d/dg g y (1 - y) = y (1 - y); d/dy = g (1 - 2 y)
    h = ograds[0]
    g, y = node.inputs
    return [F._sigmoid_grad(h, y), h * g * (1 - 2 * y)]


register(OpDef(
    "_relu_grad", _act_grad_forward(_relu_block), inputs=("ograd", "output"),
    inplace=((0, 0),), gradient=_relu_grad_gradient,
    doc="ReLU's input gradient from its output: ``ograd`` where ``output > 0``, else 0 "
        "(one pass, where ``ograd * sign(output)`` takes two)."))

register(OpDef(
    "_tanh_grad", _act_grad_forward(_tanh_block), inputs=("ograd", "output"),
    inplace=((0, 0),), gradient=_tanh_grad_gradient,
    doc="tanh's input gradient from its output: ``ograd * (1 - output^2)``, in blocks that "
        "stay in the cache (one op instead of three passes over memory)."))

register(OpDef(
    "_sigmoid_grad", _act_grad_forward(_sigmoid_block), inputs=("ograd", "output"),
    inplace=((0, 0),), gradient=_sigmoid_grad_gradient,
    doc="The logistic function's input gradient from its output: ``ograd * output * (1 - "
        "output)``, in blocks that stay in the cache."))


register(OpDef(
    "Activation", _activation_forward, inplace=((0, 0),),
    params={"act_type": Param(str, doc="The nonlinearity.", choices=_ACT_TYPES)},
    gradient=_activation_gradient,
    doc="Elementwise nonlinearity: relu, sigmoid, tanh, softrelu (log(1+e^x)) or softsign."))


# -- LeakyReLU family ----------------------------------------------------------------------
#
# MXNet's LeakyReLU op holds the "parametrised" rectifiers: leaky (fixed slope),
# prelu (learned slope ``gamma`` per channel), rrelu (random slope while training),
# elu, selu and gelu. Only prelu takes a second input, only rrelu a second (hidden)
# output: the slopes it drew, which its gradient needs.

_LEAKY_TYPES = ("elu", "gelu", "leaky", "prelu", "rrelu", "selu")
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_LAMBDA = 1.0507009873554804934193349852946
_SQRT1_2 = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327


def _leaky_inputs(attrs):
    return ("data", "gamma") if attrs.act_type == "prelu" else ("data",)


def _leaky_outputs(attrs):
    return ("output", "mask") if attrs.act_type == "rrelu" else ("output",)


def _leaky_shape(attrs, in_shapes):
    data = in_shapes[0]
    n_out = 2 if attrs.act_type == "rrelu" else 1
    if data is None:
        return in_shapes, [None] * n_out
    data = tuple(data)
    if attrs.act_type != "prelu":
        return [data], [data] * n_out
    if len(data) < 2:
        raise ShapeError(f"input 'data' has shape {data}; act_type='prelu' needs at least 2 "
                         "dimensions (N, C, ...): gamma holds one slope per channel (axis 1)",
                         argument="data", actual=data)
    gamma = in_shapes[1]
    if gamma is None:
        gamma = (data[1],)
    elif tuple(gamma) not in ((data[1],), (1,)):
        raise ShapeError(f"input 'gamma' has shape {tuple(gamma)} but data {data} needs "
                         f"({data[1]},) (one slope per channel) or (1,) (one shared slope)",
                         argument="gamma", expected=(data[1],), actual=tuple(gamma))
    return [data, tuple(gamma)], [data]


_leaky_shape.partial = True


def _leaky_type(attrs, in_dtypes):
    ins, outs = same_dtype(attrs, in_dtypes)
    return ins, outs * (2 if attrs.act_type == "rrelu" else 1)


def _uniform_into(xp, rng, out, low, high):
    """Fill ``out`` with samples of U[low, high) from the context generator ``rng``."""
    if isinstance(rng, np.random.Generator) and out.dtype in (np.float32, np.float64) \
            and out.flags.c_contiguous:
        rng.random(dtype=out.dtype, out=out)
    else:
        out[...] = uniform01(rng, out.shape, out.dtype)
    if low != 0.0 or high != 1.0:
        out *= high - low
        out += low


def _xelu(xp, x, slope, target):
    """``x if x > 0 else slope * x`` into ``target`` (slope a scalar or an array)."""
    if isinstance(slope, float) and slope >= 0.0:
        xp.multiply(x, slope, out=target)
        if slope <= 1.0:
            xp.maximum(x, target, out=target)  # slope*x <= x exactly where x > 0
        else:
            xp.minimum(x, target, out=target)
        return
    # max(x, 0) + slope * min(x, 0): four streaming passes, no boolean mask
    negative = xp.minimum(x, 0, out=xp.empty_like(target))
    negative *= slope
    xp.maximum(x, 0, out=target)
    target += negative


def _elu(xp, x, alpha, target):
    """``x if x > 0 else alpha * (exp(x) - 1)`` into ``target``."""
    tmp = xp.empty_like(target)
    xp.minimum(x, 0, out=tmp)
    xp.expm1(tmp, out=tmp)
    tmp *= alpha
    xp.maximum(x, 0, out=target)
    target += tmp


def _gelu(xp, x, target):
    """``0.5 * x * (1 + erf(x / sqrt(2)))`` into ``target`` (the exact, erf form)."""
    erf = get_op("erf")
    scaled = xp.multiply(x, _SQRT1_2, out=xp.empty_like(target))
    (erf.forward_cpu if xp is np else erf.forward_gpu)(xp, erf.default_attrs, [scaled],
                                                        [target], ("write",))
    target += 1
    target *= x
    target *= 0.5


def _leaky_forward(xp, attrs, inputs, outputs, req, rng=None, is_train=False):
    x, out = inputs[0], outputs[0]
    act = attrs.act_type
    slope = attrs.slope
    if act == "rrelu":
        mask = outputs[1]
        low, high = attrs.lower_bound, attrs.upper_bound
        if is_train:
            target_mask = mask if req[1] in ("write", "inplace", "null") else xp.empty_like(mask)
            _uniform_into(xp, rng, target_mask, low, high)
            if req[1] == "add":
                mask += target_mask
            slope = target_mask
        else:
            slope = (low + high) / 2.0
            if req[1] == "add":
                mask += slope
            elif req[1] != "null":
                mask.fill(slope)
    if req[0] == "null" or out.size == 0:
        return
    target = out if req[0] != "add" else xp.empty_like(out)
    if act in ("leaky", "rrelu"):
        _xelu(xp, x, slope, target)
    elif act == "prelu":
        gamma = inputs[1]
        _xelu(xp, x, gamma.reshape((1, gamma.size) + (1,) * (x.ndim - 2)), target)
    elif act == "elu":
        _elu(xp, x, slope, target)
    elif act == "selu":
        _elu(xp, x, _SELU_ALPHA, target)
        target *= _SELU_LAMBDA
    else:  # gelu
        _gelu(xp, x, target)
    if req[0] == "add":
        out += target


def _positive(node, slope_positive):
    """Where the input is positive, read from the output when the slope keeps the sign."""
    return node.outputs[0] > 0 if slope_positive else node.inputs[0] > 0


def _leaky_gradient(F, node, ograds):
    g = ograds[0]
    attrs = node.attrs
    act = attrs.act_type
    y = node.outputs[0]
    if act == "leaky":
        return [F.where(_positive(node, attrs.slope > 0), g, g * attrs.slope)]
    if act == "rrelu":
        return [F.where(_positive(node, attrs.lower_bound > 0), g, g * node.outputs[1])]
    if act == "elu":  # d/dx slope * (e^x - 1) = y + slope
        return [F.where(_positive(node, attrs.slope > 0), g, g * (y + attrs.slope))]
    if act == "selu":
        return [F.where(y > 0, g * _SELU_LAMBDA, g * (y + _SELU_LAMBDA * _SELU_ALPHA))]
    x = node.inputs[0]
    if act == "gelu":
        cdf = (F.erf(x * _SQRT1_2) + 1.0) * 0.5
        pdf = F.exp(F.square(x) * -0.5) * _INV_SQRT_2PI
        return [g * (cdf + x * pdf)]
    # prelu. The per-element slope (1 where x > 0, else gamma of the channel) is
    # prelu(sign) * sign with sign = +-1: LeakyReLU itself lays gamma along axis 1, so
    # no reshape needs data's rank (and zero-size batches work).
    gamma = node.inputs[1]
    positive = x > 0
    sign = positive * 2.0 - 1.0
    slope = F.LeakyReLU(sign, gamma, act_type="prelu") * sign
    dgamma = F.sum(g * x * (1.0 - positive), axis=1, exclude=True)  # (C,)
    return [g * slope, F._reduce_to_like(dgamma, gamma)]


register(OpDef(
    "LeakyReLU", _leaky_forward, inputs=_leaky_inputs, outputs=_leaky_outputs,
    visible_outputs=1, resources=("rng", "is_train"),
    params={"act_type": Param(str, "leaky", "The rectifier.", choices=_LEAKY_TYPES),
            "slope": Param(float, 0.25, "Slope for x < 0 (leaky), or alpha (elu)."),
            "lower_bound": Param(float, 0.125, "Lowest random slope (rrelu)."),
            "upper_bound": Param(float, 0.334, "Highest random slope (rrelu).")},
    infer_shape=_leaky_shape, infer_type=_leaky_type, partial_infer=True,
    gradient=_leaky_gradient,
    doc="Parametrised rectifiers: leaky (``x`` or ``slope*x``), prelu (a learned slope "
        "``gamma`` per channel, axis 1), rrelu (a slope drawn from U[lower_bound, "
        "upper_bound) per element in training, their mean in inference), elu "
        "(``slope*(e^x-1)`` for x <= 0), selu and gelu (exact, with erf)."))


# -- softmax, log_softmax, SoftmaxActivation -----------------------------------------------

def _softmax_axis_shape(attrs, in_shapes):
    (data,) = in_shapes
    if data is None:
        return in_shapes, [None]
    normalize_axis(attrs.axis, len(data))
    return [tuple(data)], [tuple(data)]


_softmax_axis_shape.partial = True


def _shifted(xp, x, axis, temperature, target):
    """``x / T - max(x / T)`` along ``axis`` into ``target``."""
    if temperature is None or temperature == 1.0:
        xp.subtract(x, x.max(axis=axis, keepdims=True), out=target)
    else:
        xp.divide(x, temperature, out=target)
        target -= target.max(axis=axis, keepdims=True)


def _softmax_into(xp, x, axis, temperature, target):
    _shifted(xp, x, axis, temperature, target)
    xp.exp(target, out=target)
    target /= target.sum(axis=axis, keepdims=True)


def _log_softmax_into(xp, x, axis, temperature, target):
    _shifted(xp, x, axis, temperature, target)
    target -= xp.log(xp.exp(target).sum(axis=axis, keepdims=True))


def _axis_kernel(compute):
    def forward(xp, attrs, inputs, outputs, req):
        x, out = inputs[0], outputs[0]
        if req[0] == "null" or out.size == 0:
            return
        target = out if req[0] != "add" else xp.empty_like(out)
        compute(xp, x, attrs.axis % x.ndim, attrs.temperature, target)
        if req[0] == "add":
            out += target
    forward.__name__ = f"forward{compute.__name__.replace('_into', '')}"
    return forward


def _softmax_grad(F, y, g, axis, temperature=None, exclude=False):
    """``y * (g - sum(g * y))`` (the softmax Jacobian applied to g), divided by T."""
    total = F.sum(g * y, axis=axis, keepdims=True, exclude=exclude)
    dx = y * (g - total)
    return dx if temperature is None or temperature == 1.0 else dx / temperature


def _softmax_gradient(F, node, ograds):
    return [_softmax_grad(F, node.outputs[0], ograds[0], node.attrs.axis,
                          node.attrs.temperature)]


def _log_softmax_gradient(F, node, ograds):
    g = ograds[0]
    dx = g - F.exp(node.outputs[0]) * F.sum(g, axis=node.attrs.axis, keepdims=True)
    temperature = node.attrs.temperature
    return [dx if temperature is None or temperature == 1.0 else dx / temperature]


_SOFTMAX_PARAMS = {
    "axis": Param(int, -1, "The axis to normalise over."),
    "temperature": Param(float, None, "Divide the input by this first (None: 1)."),
}

def _softmax_inputs(attrs):
    return ("data", "length") if attrs.use_length else ("data",)


def _softmax_shape(attrs, in_shapes):
    data = in_shapes[0]
    if data is None:
        return in_shapes, [None]
    axis = normalize_axis(attrs.axis, len(data))
    if not attrs.use_length:
        return [tuple(data)], [tuple(data)]
    length_shape = tuple(d for i, d in enumerate(data) if i != axis)
    if in_shapes[1] is not None and tuple(in_shapes[1]) != length_shape:
        raise ShapeError(f"length has shape {tuple(in_shapes[1])} but data {tuple(data)} needs "
                         f"{length_shape} (its shape without axis {attrs.axis})",
                         argument="length", expected=length_shape, actual=tuple(in_shapes[1]))
    return [tuple(data), length_shape], [tuple(data)]


_softmax_shape.partial = True


def _softmax_type(attrs, in_dtypes):
    data = in_dtypes[0]
    out = np.dtype(attrs.dtype) if attrs.dtype is not None else data
    return list(in_dtypes), [out]


def _masked_softmax_into(xp, x, length, axis, temperature, target):
    """Softmax over the first ``length`` entries along ``axis``; the others are 0."""
    positions = xp.arange(x.shape[axis]).reshape((-1,) + (1,) * (x.ndim - axis - 1))
    keep = positions < xp.expand_dims(length, axis)
    shifted = xp.where(keep, x / (temperature or 1.0), -np.inf)
    top = shifted.max(axis=axis, keepdims=True)
    top = xp.where(xp.isfinite(top), top, 0)
    e = xp.exp(shifted - top)
    total = e.sum(axis=axis, keepdims=True)
    target[...] = e / xp.where(total > 0, total, 1)


def _softmax_forward(xp, attrs, inputs, outputs, req):
    x, out = inputs[0], outputs[0]
    if req[0] == "null" or out.size == 0:
        return
    target = out if req[0] != "add" else xp.empty_like(out)
    axis = attrs.axis % x.ndim
    if attrs.use_length:
        _masked_softmax_into(xp, x, inputs[1], axis, attrs.temperature, target)
    elif x.dtype == target.dtype:
        _softmax_into(xp, x, axis, attrs.temperature, target)
    else:
        _softmax_into(xp, x.astype(target.dtype), axis, attrs.temperature, target)
    if req[0] == "add":
        out += target


def _softmax_op_gradient(F, node, ograds):
    grads = _softmax_gradient(F, node, ograds)
    if node.attrs.dtype is not None:
        grads = [F._backward_cast(grads[0], node.inputs[0])]  # back to the input's dtype
    return grads + ([None] if node.attrs.use_length else [])


register(OpDef(
    "softmax", _softmax_forward,
    inputs=_softmax_inputs,
    params={**_SOFTMAX_PARAMS,
            "dtype": Param(str, None, "Output dtype (None: the input's).",
                           choices=(None, "float16", "float32", "float64")),
            "use_length": Param(bool, False, "Take a second input `length`: softmax over the "
                                             "first length entries along `axis`, 0 after.")},
    infer_shape=_softmax_shape, infer_type=_softmax_type, gradient=_softmax_op_gradient,
    doc="``exp(x/T) / sum(exp(x/T))`` along `axis` (shifted by the maximum, so it never "
        "overflows); with `use_length`, over the first `length` entries only (MXNet).",
    fluent=True))

def _softmin_into(xp, x, axis, temperature, target):
    xp.negative(x, out=target)
    _softmax_into(xp, target, axis, temperature, target)


def _softmin_gradient(F, node, ograds):
    return [-_softmax_grad(F, node.outputs[0], ograds[0], node.attrs.axis,
                           node.attrs.temperature)]


register(OpDef(
    "softmin", _axis_kernel(_softmin_into), params=dict(_SOFTMAX_PARAMS),
    infer_shape=_softmax_axis_shape, gradient=_softmin_gradient,
    doc="``softmax(-x/T)`` along `axis`: the smallest inputs get the largest weights.",
    fluent=True))


def _hard_sigmoid_forward(xp, attrs, inputs, outputs, req):
    x, out = inputs[0], outputs[0]
    if req[0] == "null":
        return
    target = out if req[0] != "add" else xp.empty_like(out)
    xp.multiply(x, attrs.alpha, out=target)
    target += attrs.beta
    xp.clip(target, 0, 1, out=target)
    if req[0] == "add":
        out += target


def _hard_sigmoid_gradient(F, node, ograds):
    y = node.outputs[0]
    return [ograds[0] * ((y > 0) * (y < 1)) * node.attrs.alpha]


register(OpDef(
    "hard_sigmoid", _hard_sigmoid_forward,
    params={"alpha": Param(float, 0.2, "Slope."), "beta": Param(float, 0.5, "Offset.")},
    inplace=((0, 0),), gradient=_hard_sigmoid_gradient,
    doc="``clip(alpha * x + beta, 0, 1)``; the gradient is ``alpha`` where the output is "
        "strictly between 0 and 1, else 0."))


def _mish_forward(xp, attrs, inputs, outputs, req):
    x = inputs[0]
    value = xp.tanh(xp.logaddexp(0, x))  # logaddexp(0, x) = log(1 + e^x) without overflow
    value *= x
    write_result(xp, outputs[0], value, req[0])


def _mish_gradient(F, node, ograds):
    x = node.inputs[0]
    t = F.tanh(F.Activation(x, act_type="softrelu"))
    return [ograds[0] * (t + x * F.sigmoid(x) * (1 - t * t))]


register(OpDef(
    "mish", _mish_forward, gradient=_mish_gradient,
    doc="``x * tanh(log(1 + e^x))``, the Mish activation.", fluent=True))


register(OpDef(
    "log_softmax", _axis_kernel(_log_softmax_into), params=dict(_SOFTMAX_PARAMS),
    infer_shape=_softmax_axis_shape, gradient=_log_softmax_gradient,
    doc="``log(softmax(x/T))`` along `axis`, computed as ``x/T - logsumexp(x/T)`` (finite "
        "where softmax underflows to 0).", fluent=True))


def _softmax_activation_shape(attrs, in_shapes):
    (data,) = in_shapes
    if data is None:
        return in_shapes, [None]
    data = tuple(data)
    need = 3 if attrs.mode == "channel" else 2
    if len(data) < need:
        raise ShapeError(f"input 'data' has shape {data}; mode='{attrs.mode}' needs at least "
                         f"{need} dimensions ({'(N, C, ...)' if need == 3 else '(N, ...)'})",
                         argument="data", actual=data)
    return [data], [data]


_softmax_activation_shape.partial = True


def _softmax_activation_forward(xp, attrs, inputs, outputs, req):
    x, out = inputs[0], outputs[0]
    if req[0] == "null" or out.size == 0:
        return
    target = out if req[0] != "add" else xp.empty_like(out)
    if attrs.mode == "instance":
        _softmax_into(xp, x.reshape(x.shape[0], -1), 1, None, target.reshape(x.shape[0], -1))
    else:
        _softmax_into(xp, x, 1, None, target)
    if req[0] == "add":
        out += target


def _softmax_activation_gradient(F, node, ograds):
    if node.attrs.mode == "instance":  # every axis but the first
        return [_softmax_grad(F, node.outputs[0], ograds[0], 0, exclude=True)]
    return [_softmax_grad(F, node.outputs[0], ograds[0], 1)]


register(OpDef(
    "SoftmaxActivation", _softmax_activation_forward,
    params={"mode": Param(str, "instance", "'instance': one softmax per sample over all its "
                          "elements; 'channel': over axis 1 at every position.",
                          choices=("instance", "channel"))},
    infer_shape=_softmax_activation_shape, gradient=_softmax_activation_gradient,
    doc="Softmax for internal layers (MXNet's deprecated form of `softmax`): per sample "
        "(instance) or across channels at each position (channel)."))
