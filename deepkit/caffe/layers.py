"""One converter per Caffe layer type, in a registry.

Each entry of :data:`REGISTRY` says what a Caffe layer type becomes:

- ``kind='op'``: ``build(cx)`` returns, for each top, ``(symbol, caffe_shape)``,
  built with ``deepkit_engine.symbol`` ops (MXNet names). ``cx`` is the
  converter's per-layer context (see ``converter.LayerBuild``): the bottoms as
  symbols and Caffe shapes, ``cx.weights(shapes)`` for the caffemodel blobs
  (count and shapes checked, Caffe's right-aligned legacy rule), and
  ``cx.param(...)`` to declare an engine parameter.
- ``kind='input'`` / ``'data'``: the tops become input variables (``'data'``
  layers need ``input_shape``).
- ``kind='alias'`` (Split): the tops are the bottom.
- ``kind='drop'`` (Silence, Accuracy, loss layers): no output in a deploy net.

``check(layer)`` (optional) validates parameter values that need no shapes,
so that every unsupported value in a net is reported in one go, before any
building. Unsupported values raise :class:`Unsupported` with what to do;
broken Caffe rules raise :class:`~deepkit.caffe.shapes.CaffeRuleError`.

The rules followed are Caffe's own (``caffe.md`` section 2): pooling's ceil
rounding and clip rule and its AVE divisor, LRN's alpha/n (and alpha/n^2
WITHIN_CHANNEL), BatchNorm's scale-factor blob, Eltwise coefficients, Crop's
default offset 0, InnerProduct's axis/transpose, Deconvolution's swapped
weight layout, Dropout's identity at TEST (``scale_train: false`` forks).
"""
import math

import numpy as np

from deepkit_engine import symbol as sym

from . import shapes as S
from .shapes import CaffeRuleError

__all__ = ["Unsupported", "LayerSpec", "REGISTRY", "UNSUPPORTED_HINTS", "INPUT_TYPES",
           "DATA_TYPES", "LOSS_TYPES", "supported_types", "supported_layers", "register"]


class Unsupported(Exception):
    """A parameter value (or layer) the converter cannot reproduce exactly."""

    def __init__(self, message, hint=None):
        super().__init__(message)
        self.message, self.hint = message, hint


class LayerSpec:
    __slots__ = ("types", "kind", "build", "check", "doc")

    def __init__(self, types, kind, build=None, check=None, doc=""):
        self.types, self.kind, self.build, self.check, self.doc = types, kind, build, check, doc


REGISTRY = {}

#: Data layers that read a database or files: their shape must be given.
DATA_TYPES = ("Data", "ImageData", "HDF5Data", "WindowData", "AnnotatedData", "VideoData")
#: Layers whose tops are net inputs with a shape in the prototxt.
INPUT_TYPES = ("Input", "MemoryData", "DummyData")
#: Loss layers: dropped from a deploy net (SoftmaxWithLoss becomes softmax).
LOSS_TYPES = ("EuclideanLoss", "HingeLoss", "InfogainLoss", "MultinomialLogisticLoss",
              "SigmoidCrossEntropyLoss", "ContrastiveLoss", "CenterLoss", "SmoothL1Loss",
              "TripletLoss")

#: What to do about layer types that are known but not converted.
UNSUPPORTED_HINTS = {
    "Python": "a Python layer runs arbitrary code from its module: map it to your own "
              "function with deepkit.caffe.register_layer('Python:<module>.<layer>', fn) (a "
              "deepkit_engine custom op for a new computation), or remove the layer from the "
              "prototxt",
    "Recurrent": "Recurrent is the abstract base of Caffe's recurrent layers, not a type Caffe "
                 "can create: use type RNN or LSTM",
}


def register(*types, kind="op", check=None, doc=""):
    def deco(fn):
        spec = LayerSpec(types, kind, fn, check, doc)
        for t in types:
            REGISTRY[t] = spec
        return fn
    return deco


def supported_types():
    """The Caffe layer types the converter handles, sorted."""
    return sorted(REGISTRY)


def supported_layers():
    """``[(caffe type, what it becomes)]`` for every type the converter handles, sorted.

    What it becomes: ``'input'``, ``'data'`` (needs ``input_shape``),
    ``'alias'`` (Split), ``'dropped'`` (no output in a deploy net) or the
    converter's one-line description.
    """
    kinds = {"input": "net input", "data": "net input (give input_shape)",
             "alias": "alias of its bottom", "drop": "dropped (training only or no output)"}
    rows = []
    for t in sorted(REGISTRY):
        spec = REGISTRY[t]
        if spec.kind != "op":
            rows.append((t, spec.doc or kinds[spec.kind]))
            continue
        doc = (spec.doc or (spec.build.__doc__ or "").strip().split("\n")[0]).strip()
        rows.append((t, doc or "converted"))
    return rows


# -- helpers ----------------------------------------------------------------------------

def _f(x):
    """A float parameter as Python float, rounded through float32 as Caffe stores it."""
    return float(np.float32(x))


class _NodeName(sym.NameManager):
    """``with _NodeName(name):`` the next node gets ``name``.

    For the operator forms (``x > t``), which take no ``name=`` argument.
    """

    def __init__(self, name):
        super().__init__()
        self._node_name = name

    def get(self, name, hint):
        return self._node_name if name is None else name


def _only_bottoms(cx, n, what=None):
    if len(cx.bottoms) != n:
        raise CaffeRuleError(f"{what or cx.type} takes {n} bottom(s), got {len(cx.bottoms)}")


def _bshape(ndim, axis, shape):
    """``shape`` placed at ``axis`` of an ``ndim``-D array, 1 elsewhere (for broadcasting)."""
    return (1,) * axis + tuple(shape) + (1,) * (ndim - axis - len(shape))


# -- Inputs, aliases and dropped layers are handled by the converter itself --------------

for _t in INPUT_TYPES:
    REGISTRY[_t] = LayerSpec((_t,), "input")
for _t in DATA_TYPES:
    REGISTRY[_t] = LayerSpec((_t,), "data")
REGISTRY["Split"] = LayerSpec(("Split",), "alias")
for _t in ("Silence", "Accuracy") + LOSS_TYPES:
    REGISTRY[_t] = LayerSpec((_t,), "drop")
#: Writes its bottoms to HDF5 files during a forward pass: dropped, its bottoms stay outputs.
REGISTRY["HDF5Output"] = LayerSpec(("HDF5Output",), "drop",
                                   doc="dropped with a warning (it writes its bottoms to an "
                                       "HDF5 file; they stay outputs)")


# -- Convolution / Deconvolution -----------------------------------------------------

def _check_conv(layer):
    p = layer.convolution_param
    if int(p.axis) >= 0 and int(p.axis) != 1:
        raise Unsupported(f"convolution_param.axis = {p.axis}: only the channel axis 1 is "
                          "supported (NCHW data)", "transpose the data so channels are axis 1")
    if not p.has("num_output"):
        raise CaffeRuleError("convolution_param.num_output is required")


def _conv(cx, deconv):
    _only_bottoms(cx, 1)
    p = cx.layer.convolution_param
    bottom = cx.bottom_shapes[0]
    if len(bottom) < 3:
        raise CaffeRuleError(f"input must have at least 3 axes (N, C, spatial...); got "
                             f"{bottom}")
    if S.canonical_axis(p.axis, len(bottom)) != 1:
        raise Unsupported(f"convolution_param.axis = {p.axis} is not the channel axis 1")
    nsp = len(bottom) - 2
    if nsp > 3:
        raise Unsupported(f"{nsp}-D convolution: the engine supports 1 to 3 spatial axes")
    kernel, stride, pad, dilation = S.conv_geometry(p, nsp)
    group = int(p.group)
    if cx.type in ("ConvolutionDepthwise", "DepthwiseConvolution") and not p.has("group"):
        group = bottom[1]
    num_output = int(p.num_output)
    bias = bool(p.bias_term)
    rule = S.deconv_output_shape if deconv else S.conv_output_shape
    top, blob_shapes = rule(bottom, num_output, group, kernel, stride, pad, dilation, bias)
    arrays = cx.weights(blob_shapes)
    kwargs = dict(kernel=kernel, stride=stride, pad=pad, dilate=dilation,
                  num_filter=num_output, num_group=group, no_bias=not bias)
    kwargs["weight"] = cx.param("weight", blob_shapes[0], 0, arrays[0])
    if bias:
        kwargs["bias"] = cx.param("bias", blob_shapes[1], 1, arrays[1])
    op = sym.Deconvolution if deconv else sym.Convolution
    return [(op(cx.bottoms[0], name=cx.node, attr=cx.attr, **kwargs), top)]


@register("Convolution", "ConvolutionDepthwise", "DepthwiseConvolution", check=_check_conv)
def convolution(cx):
    return _conv(cx, deconv=False)


@register("Deconvolution", check=_check_conv)
def deconvolution(cx):
    return _conv(cx, deconv=True)


# -- Pooling ------------------------------------------------------------------------

def _check_pool(layer):
    p = layer.pooling_param
    if p.pool not in ("MAX", "AVE"):
        raise Unsupported(f"pooling_param.pool = {p.pool}: Caffe implements STOCHASTIC pooling "
                          "only on GPU and only for training", "use MAX or AVE")


@register("Pooling", check=_check_pool)
def pooling(cx):
    _only_bottoms(cx, 1)
    p = cx.layer.pooling_param
    if cx.ntops not in (1, 2) or (cx.ntops == 2 and p.pool != "MAX"):
        raise CaffeRuleError(f"Pooling gives 1 top, or 2 (the output and its mask) with MAX "
                             f"pooling; the prototxt names {cx.ntops} for {p.pool} pooling")
    bottom = cx.bottom_shapes[0]
    if len(bottom) != 4:
        raise CaffeRuleError(f"input must have 4 axes (num, channels, height, width); got "
                             f"shape {bottom}")
    kernel, stride, pad = S.pool_geometry(p, bottom[2:])
    round_mode = "FLOOR" if p.round_mode == "FLOOR" else "CEIL"
    top = S.pool_output_shape(bottom, kernel, stride, pad, round_mode)
    pool_type = "max" if p.pool == "MAX" else "avg"
    if p.global_pooling:
        out = sym.Pooling(cx.bottoms[0], kernel=kernel, global_pool=True, pool_type=pool_type,
                          name=cx.node, attr=cx.attr)
        if cx.ntops == 2:
            mask = sym.MaxPoolIndices(cx.bottoms[0], global_pool=True, name=cx.sub("mask"))
            return [(out, top), (mask, top)]
        return [(out, top)]
    if round_mode == "CEIL":
        for n, k, s, q, o in zip(bottom[2:], kernel, stride, pad, top[2:]):
            if q == 0 and S.pool_has_empty_window(n, k, s, q, o):
                raise Unsupported(
                    f"kernel {k} < stride {s} without padding on an axis of size {n}: Caffe's "
                    f"ceil rounding keeps a last window that starts past the input and so "
                    f"covers nothing (its output is -FLT_MAX for MAX, 0 for AVE)",
                    "use round_mode: FLOOR, or a kernel at least as large as the stride")
    convention = "full" if round_mode == "CEIL" else "valid"
    out = sym.Pooling(cx.bottoms[0], kernel=kernel, stride=stride, pad=pad, pool_type=pool_type,
                      pooling_convention=convention, count_include_pad=True, name=cx.node,
                      attr=cx.attr)
    if cx.ntops == 2:
        if len(kernel) != 2:
            raise Unsupported("a MAX pooling mask top is supported for 2-D pooling only")
        mask = sym.MaxPoolIndices(cx.bottoms[0], kernel=kernel, stride=stride, pad=pad,
                                  pooling_convention=convention, name=cx.sub("mask"))
        return [(out, top), (mask, top)]
    return [(out, top)]


# -- InnerProduct -------------------------------------------------------------------

@register("InnerProduct")
def inner_product(cx):
    _only_bottoms(cx, 1)
    p = cx.layer.inner_product_param
    bottom = cx.bottom_shapes[0]
    if not p.has("num_output"):
        raise CaffeRuleError("inner_product_param.num_output is required")
    n = int(p.num_output)
    transpose, bias = bool(p.transpose), bool(p.bias_term)
    top, blob_shapes, k = S.inner_product_shapes(bottom, n, p.axis, transpose, bias)
    axis = S.canonical_axis(p.axis, len(bottom))
    arrays = cx.weights(blob_shapes)
    w = arrays[0]
    if w is not None and transpose:
        w = np.ascontiguousarray(w.T)
    weight = cx.param("weight", (n, k), 0, w, caffe_shape=blob_shapes[0],
                      transform="transposed" if transpose else None)
    kwargs = dict(num_hidden=n, no_bias=not bias, weight=weight)
    if bias:
        kwargs["bias"] = cx.param("bias", (n,), 1, arrays[1])
    x = cx.bottoms[0]
    ndim = len(bottom)
    if axis == 1:
        return [(sym.FullyConnected(x, flatten=True, name=cx.node, attr=cx.attr, **kwargs), top)]
    if axis == ndim - 1:
        return [(sym.FullyConnected(x, flatten=False, name=cx.node, attr=cx.attr, **kwargs),
                 top)]
    if axis == 0:
        flat = sym.reshape(x, shape=(1, -1), name=cx.sub("flatten"))
        fc = sym.FullyConnected(flat, flatten=True, name=cx.sub("fc"), **kwargs)
        return [(sym.reshape(fc, shape=(-1,), name=cx.node, attr=cx.attr), top)]
    flat = sym.reshape(x, shape=(0,) * axis + (-1,), name=cx.sub("flatten"))
    return [(sym.FullyConnected(flat, flatten=False, name=cx.node, attr=cx.attr, **kwargs), top)]


# -- Activations and elementwise ------------------------------------------------------

def _unary(cx):
    _only_bottoms(cx, 1)
    return cx.bottoms[0], cx.bottom_shapes[0]


@register("ReLU")
def relu(cx):
    x, shape = _unary(cx)
    slope = _f(cx.layer.relu_param.negative_slope)
    if slope == 0:
        return [(sym.Activation(x, act_type="relu", name=cx.node, attr=cx.attr), shape)]
    return [(sym.LeakyReLU(x, act_type="leaky", slope=slope, name=cx.node, attr=cx.attr),
             shape)]


@register("ReLU6")
def relu6(cx):
    x, shape = _unary(cx)
    return [(sym.clip(x, a_min=0.0, a_max=6.0, name=cx.node, attr=cx.attr), shape)]


@register("PReLU")
def prelu(cx):
    x, shape = _unary(cx)
    if len(shape) < 2:
        raise CaffeRuleError(f"number of axes of the input must be >= 2; got shape {shape}")
    channels = shape[1]
    shared = bool(cx.layer.prelu_param.channel_shared)
    (slope,) = cx.weights([() if shared else (channels,)])
    if slope is not None and shared:
        slope = np.full((channels,), slope.reshape(-1)[0], dtype=np.float32)
    gamma = cx.param("gamma", (channels,), 0, slope, caffe_shape=() if shared else (channels,),
                     transform="broadcast to every channel" if shared else None)
    return [(sym.LeakyReLU(x, gamma=gamma, act_type="prelu", name=cx.node, attr=cx.attr), shape)]


@register("ELU")
def elu(cx):
    x, shape = _unary(cx)
    alpha = _f(cx.layer.elu_param.alpha)
    return [(sym.LeakyReLU(x, act_type="elu", slope=alpha, name=cx.node, attr=cx.attr), shape)]


@register("Sigmoid")
def sigmoid(cx):
    x, shape = _unary(cx)
    return [(sym.Activation(x, act_type="sigmoid", name=cx.node, attr=cx.attr), shape)]


@register("TanH")
def tanh(cx):
    x, shape = _unary(cx)
    return [(sym.Activation(x, act_type="tanh", name=cx.node, attr=cx.attr), shape)]


@register("AbsVal")
def absval(cx):
    x, shape = _unary(cx)
    return [(sym.abs(x, name=cx.node, attr=cx.attr), shape)]


@register("BNLL")
def bnll(cx):
    x, shape = _unary(cx)
    return [(sym.Activation(x, act_type="softrelu", name=cx.node, attr=cx.attr), shape)]


def _chain(cx, x, steps):
    """Apply ``steps`` (list of (suffix, fn)); the last one gets the layer's node name."""
    if not steps:
        return sym.identity(x, name=cx.node, attr=cx.attr)
    for i, (suffix, fn) in enumerate(steps):
        last = i == len(steps) - 1
        x = fn(x, cx.node if last else cx.sub(suffix), cx.attr if last else None)
    return x


@register("Power")
def power(cx):
    x, shape = _unary(cx)
    p = cx.layer.power_param
    pw, scale, shift = _f(p.power), _f(p.scale), _f(p.shift)
    steps = []
    if scale != 1:
        steps.append(("scale", lambda v, n, a: sym.multiply(v, scale, name=n, attr=a)))
    if shift != 0:
        steps.append(("shift", lambda v, n, a: sym.add(v, shift, name=n, attr=a)))
    if pw != 1:
        steps.append(("power", lambda v, n, a: sym.power(v, pw, name=n, attr=a)))
    return [(_chain(cx, x, steps), shape)]


def _check_base(field):
    def check(layer):
        base = float(getattr(layer, field).base)
        if base != -1 and not base > 0:
            raise CaffeRuleError(f"{field}.base must be strictly positive, or -1 for e; got "
                                 f"{base}")
    return check


@register("Exp", check=_check_base("exp_param"))
def exp(cx):
    x, shape = _unary(cx)
    p = cx.layer.exp_param
    base, scale, shift = float(np.float32(p.base)), _f(p.scale), _f(p.shift)
    log_base = 1.0 if base == -1 else math.log(base)
    inner = float(np.float32(log_base * scale))
    outer = 1.0 if shift == 0 else float(np.float32(math.exp(log_base * shift)))
    steps = []
    if inner != 1:
        steps.append(("scale", lambda v, n, a: sym.multiply(v, inner, name=n, attr=a)))
    steps.append(("exp", lambda v, n, a: sym.exp(v, name=n, attr=a)))
    if outer != 1:
        steps.append(("outer", lambda v, n, a: sym.multiply(v, outer, name=n, attr=a)))
    return [(_chain(cx, x, steps), shape)]


@register("Log", check=_check_base("log_param"))
def log(cx):
    x, shape = _unary(cx)
    p = cx.layer.log_param
    base, scale, shift = float(np.float32(p.base)), _f(p.scale), _f(p.shift)
    base_scale = 1.0 if base == -1 else float(np.float32(1.0 / math.log(base)))
    steps = []
    if scale != 1:
        steps.append(("scale", lambda v, n, a: sym.multiply(v, scale, name=n, attr=a)))
    if shift != 0:
        steps.append(("shift", lambda v, n, a: sym.add(v, shift, name=n, attr=a)))
    steps.append(("log", lambda v, n, a: sym.log(v, name=n, attr=a)))
    if base_scale != 1:
        steps.append(("base", lambda v, n, a: sym.multiply(v, base_scale, name=n, attr=a)))
    return [(_chain(cx, x, steps), shape)]


@register("Threshold")
def threshold(cx):
    x, shape = _unary(cx)
    t = _f(cx.layer.threshold_param.threshold)
    with _NodeName(cx.node), sym.AttrScope(**cx.attr):
        y = x > t
    return [(y, shape)]


def _check_clip(layer):
    p = layer.clip_param
    if not (p.has("min") and p.has("max")):
        raise CaffeRuleError("clip_param.min and clip_param.max are both required")


@register("Clip", check=_check_clip)
def clip(cx):
    x, shape = _unary(cx)
    p = cx.layer.clip_param
    return [(sym.clip(x, a_min=_f(p.min), a_max=_f(p.max), name=cx.node, attr=cx.attr), shape)]


@register("Swish")
def swish(cx):
    x, shape = _unary(cx)
    beta = _f(cx.layer.swish_param.beta)
    z = x if beta == 1 else sym.multiply(x, beta, name=cx.sub("scaled"))
    s = sym.sigmoid(z, name=cx.sub("sigmoid"))
    return [(sym.elemwise_mul(x, s, name=cx.node, attr=cx.attr), shape)]


@register("Dropout")
def dropout(cx):
    x, shape = _unary(cx)
    p = cx.layer.dropout_param
    ratio = _f(p.dropout_ratio)
    if not (0.0 <= ratio < 1.0):
        raise CaffeRuleError(f"dropout_ratio must be in [0, 1); got {ratio}")
    if p.has("scale_train") and not p.scale_train:
        # fork (Faster R-CNN): training does not rescale, so TEST multiplies by 1 - ratio
        return [(sym.multiply(x, _f(1.0 - ratio), name=cx.node, attr=cx.attr), shape)]
    return [(sym.Dropout(x, p=ratio, name=cx.node, attr=cx.attr), shape)]


# -- Normalization --------------------------------------------------------------------

def _check_lrn(layer):
    p = layer.lrn_param
    if int(p.local_size) % 2 != 1:
        raise CaffeRuleError(f"LRN only supports odd values for local_size; got {p.local_size}")


@register("LRN", check=_check_lrn)
def lrn(cx):
    x, shape = _unary(cx)
    if len(shape) != 4:
        raise CaffeRuleError(f"input must have 4 axes (num, channels, height, width); got "
                             f"shape {shape}")
    p = cx.layer.lrn_param
    region = "within" if p.norm_region == "WITHIN_CHANNEL" else "across"
    out = sym.LRN(x, alpha=_f(p.alpha), beta=_f(p.beta), knorm=_f(p.k), nsize=int(p.local_size),
                  region=region, name=cx.node, attr=cx.attr)
    return [(out, shape)]


def _check_bn(layer):
    p = layer.batch_norm_param
    if p.has("use_global_stats") and not p.use_global_stats:
        raise Unsupported(
            "batch_norm_param.use_global_stats: false makes Caffe normalize with the statistics "
            "of each test batch, which a converted inference model cannot reproduce",
            "if the model is meant to use its stored statistics at test time, remove "
            "use_global_stats (or set it to true) in the deploy prototxt")


@register("BatchNorm", check=_check_bn)
def batch_norm(cx):
    x, shape = _unary(cx)
    p = cx.layer.batch_norm_param
    channels = shape[1] if len(shape) > 1 else 1
    c = (channels,)
    arrays = cx.weights([c, c, (1,)], alternatives=[[c, c, (1,), c, c]])
    if cx.phase == "TRAIN" and not p.has("use_global_stats"):
        cx.warn(f"BatchNorm '{cx.name}': in phase TRAIN Caffe normalizes with batch statistics; "
                "the converted op uses the stored ones (as in TEST)")
    mean = var = gamma = beta = None
    note = None
    if arrays[0] is not None:
        factor = float(arrays[2].reshape(-1)[0])
        s = np.float32(0.0 if factor == 0 else 1.0 / factor)
        mean = np.asarray(arrays[0] * s, dtype=np.float32)
        var = np.asarray(arrays[1] * s, dtype=np.float32)
        note = f"Caffe blob divided by the scale factor (blob 2) {factor!r}"
    fix_gamma, gb_index, source = True, None, "constant (Caffe's BatchNorm has no scale/shift)"
    if len(arrays) == 5:  # fork: scale and bias stored in the BatchNorm layer itself
        gamma, beta, fix_gamma, gb_index, source = arrays[3], arrays[4], False, (3, 4), None
    elif cx.fused_scale is not None:
        gamma, beta = cx.fused_scale
        fix_gamma, source = False, f"fused Scale layer '{cx.fused_scale_name}'"
    elif cx.has_weights:
        gamma, beta = np.ones(c, np.float32), np.zeros(c, np.float32)
    g = cx.param("gamma", c, gb_index and gb_index[0], gamma, source=source)
    b = cx.param("beta", c, gb_index and gb_index[1], beta, source=source)
    mm = cx.param("moving_mean", c, 0, mean, aux=True, transform=note)
    mv = cx.param("moving_var", c, 1, var, aux=True, transform=note)
    out = sym.BatchNorm(x, gamma=g, beta=b, moving_mean=mm, moving_var=mv, eps=_f(p.eps),
                        fix_gamma=fix_gamma, use_global_stats=True, name=cx.node, attr=cx.attr)
    return [(out, shape)]


def _scale_or_bias(cx, kind):
    """Scale (``kind='scale'``) or Bias (``'bias'``): one learned blob, or a second bottom."""
    if len(cx.bottoms) not in (1, 2):
        raise CaffeRuleError(f"{cx.type} takes 1 or 2 bottoms, got {len(cx.bottoms)}")
    p = cx.layer.scale_param if kind == "scale" else cx.layer.bias_param
    x, xshape = cx.bottoms[0], cx.bottom_shapes[0]
    ndim = len(xshape)
    second = cx.bottom_shapes[1] if len(cx.bottoms) == 2 else None
    pshape, axis = S.scale_shape(xshape, int(p.axis), int(p.num_axes), second)
    bshape = _bshape(ndim, axis, pshape) if pshape else (1,) * ndim
    bias_term = kind == "scale" and bool(p.bias_term)
    expected = []
    if second is None:
        expected.append(pshape)
    if bias_term:
        expected.append(pshape)
    arrays = cx.weights(expected) if expected else []

    def reshaped(a):
        return None if a is None else a.reshape(bshape)

    if second is None:
        factor = cx.param("scale" if kind == "scale" else "bias", bshape, 0, reshaped(arrays[0]),
                          caffe_shape=pshape)
    else:
        factor = cx.bottoms[1]
        if tuple(second) != bshape:
            if axis == 0:
                factor = sym.reshape(factor, shape=(0,) * len(second) + (1,) * (ndim - len(second)),
                                     name=cx.sub("expand"))
            else:
                factor = sym.reshape(factor, shape=bshape, name=cx.sub("expand"))
    combine = sym.broadcast_mul if kind == "scale" else sym.broadcast_add
    if not bias_term:
        return [(combine(x, factor, name=cx.node, attr=cx.attr), xshape)]
    y = combine(x, factor, name=cx.sub("mul"))
    bias = cx.param("bias", bshape, len(arrays) - 1, reshaped(arrays[-1]), caffe_shape=pshape)
    return [(sym.broadcast_add(y, bias, name=cx.node, attr=cx.attr), xshape)]


@register("Scale")
def scale(cx):
    return _scale_or_bias(cx, "scale")


@register("Bias")
def bias(cx):
    return _scale_or_bias(cx, "bias")


@register("MVN")
def mvn(cx):
    x, shape = _unary(cx)
    p = cx.layer.mvn_param
    ndim = len(shape)
    first = 1 if p.across_channels else 2
    if ndim <= first:
        raise Unsupported(f"MVN over an input of shape {shape} normalizes single values (its "
                          "output is all zeros); not converted")
    axes = tuple(range(first, ndim))
    mean = sym.mean(x, axis=axes, keepdims=True, name=cx.sub("mean"))
    centered = sym.broadcast_sub(x, mean, name=cx.node if not p.normalize_variance
                                 else cx.sub("centered"),
                                 attr=None if p.normalize_variance else cx.attr)
    if not p.normalize_variance:
        return [(centered, shape)]
    var = sym.mean(sym.square(centered, name=cx.sub("square")), axis=axes, keepdims=True,
                   name=cx.sub("var"))
    std = sym.add(sym.sqrt(var, name=cx.sub("std")), _f(p.eps), name=cx.sub("std_eps"))
    return [(sym.broadcast_div(centered, std, name=cx.node, attr=cx.attr), shape)]


# -- Merging and splitting ---------------------------------------------------------------

def _check_eltwise(layer):
    p = layer.eltwise_param
    coeff = list(p.coeff)
    if coeff and p.operation != "SUM":
        raise CaffeRuleError("Eltwise layer only takes coefficients for summation")
    if coeff and len(coeff) != len(layer.bottom):
        raise CaffeRuleError(f"Eltwise takes one coefficient per bottom: {len(coeff)} "
                             f"coefficient(s) for {len(layer.bottom)} bottoms")


@register("Eltwise", check=_check_eltwise)
def eltwise(cx):
    if len(cx.bottoms) < 1:
        raise CaffeRuleError("Eltwise needs at least one bottom")
    p = cx.layer.eltwise_param
    shape = S.eltwise_shape(cx.bottom_shapes)
    xs = cx.bottoms
    if len(xs) == 1:
        c = _f(p.coeff[0]) if p.coeff else 1.0
        if c == 1:
            return [(sym.identity(xs[0], name=cx.node, attr=cx.attr), shape)]
        return [(sym.multiply(xs[0], c, name=cx.node, attr=cx.attr), shape)]
    if p.operation == "SUM":
        coeff = [_f(c) for c in p.coeff] or [1.0] * len(xs)
        terms = [x if c == 1 else sym.multiply(x, c, name=cx.sub(f"coeff{i}"))
                 for i, (x, c) in enumerate(zip(xs, coeff))]
        return [(sym.add_n(*terms, name=cx.node, attr=cx.attr), shape)]
    fn = sym.elemwise_mul if p.operation == "PROD" else sym.maximum
    y = xs[0]
    for i, x in enumerate(xs[1:], start=1):
        last = i == len(xs) - 1
        y = fn(y, x, name=cx.node if last else cx.sub(f"step{i}"),
               attr=cx.attr if last else None)
    return [(y, shape)]


def _concat_axis(p, what):
    if p.has(f"{what}_dim"):
        if p.has("axis"):
            raise CaffeRuleError(f"either axis or {what}_dim should be specified; not both")
        return int(getattr(p, f"{what}_dim"))
    return int(p.axis)


@register("Concat")
def concat(cx):
    if not cx.bottoms:
        raise CaffeRuleError("Concat needs at least one bottom")
    axis = _concat_axis(cx.layer.concat_param, "concat")
    top, axis = S.concat_shape(cx.bottom_shapes, axis)
    return [(sym.concat(*cx.bottoms, dim=axis, name=cx.node, attr=cx.attr), top)]


@register("Slice")
def slice_(cx):
    _only_bottoms(cx, 1)
    p = cx.layer.slice_param
    axis = _concat_axis(p, "slice")
    shapes, bounds, axis = S.slice_shapes(cx.bottom_shapes[0], axis, p.slice_point, cx.ntops)
    outs = []
    for i, ((b, e), shape) in enumerate(zip(bounds, shapes)):
        name = cx.node if cx.ntops == 1 else cx.sub(str(i))
        outs.append((sym.slice_axis(cx.bottoms[0], axis=axis, begin=b, end=e, name=name,
                                    attr=cx.attr), shape))
    return outs


# -- Shape ops -----------------------------------------------------------------------

@register("Flatten")
def flatten(cx):
    x, shape = _unary(cx)
    p = cx.layer.flatten_param
    top, start, end = S.flatten_shape(shape, int(p.axis), int(p.end_axis))
    if start == 1 and end == len(shape) - 1:
        return [(sym.Flatten(x, name=cx.node, attr=cx.attr), top)]
    target = (0,) * start + (-1,) + tuple(shape[end + 1:])
    return [(sym.reshape(x, shape=target, name=cx.node, attr=cx.attr), top)]


@register("Reshape")
def reshape(cx):
    x, shape = _unary(cx)
    p = cx.layer.reshape_param
    dims = [int(d) for d in p.shape.dim]
    top, start, end = S.reshape_shape(shape, dims, int(p.axis), int(p.num_axes))
    # engine reshape: 0 copies the input dim at the same position, -1 is inferred
    target = (0,) * start + tuple(dims)
    rest = tuple(shape[end:])
    if rest:
        target += (-2,) if len(dims) == end - start else rest
    if not target:
        target = ()
    return [(sym.reshape(x, shape=target, name=cx.node, attr=cx.attr), top)]


@register("Softmax")
def softmax(cx):
    x, shape = _unary(cx)
    axis = S.canonical_axis(cx.layer.softmax_param.axis, len(shape))
    return [(sym.softmax(x, axis=axis, name=cx.node, attr=cx.attr), shape)]


@register("SoftmaxWithLoss")
def softmax_with_loss(cx):
    # a loss layer left in a deploy net: its first bottom's softmax (the label is unused)
    if len(cx.bottoms) not in (1, 2, 3):
        raise CaffeRuleError("SoftmaxWithLoss takes 2 (or 3) bottoms")
    x, shape = cx.bottoms[0], cx.bottom_shapes[0]
    axis = S.canonical_axis(cx.layer.softmax_param.axis, len(shape))
    return [(sym.softmax(x, axis=axis, name=cx.node, attr=cx.attr), shape)]


@register("Crop")
def crop(cx):
    _only_bottoms(cx, 2)
    p = cx.layer.crop_param
    data_shape, ref_shape = cx.bottom_shapes
    top, offs, start = S.crop_offsets(data_shape, ref_shape, int(p.axis), p.offset)
    x, ref = cx.bottoms
    ndim = len(data_shape)
    if all(o == 0 for o in offs):
        return [(sym.slice_like(x, ref, axes=tuple(range(start, ndim)), name=cx.node,
                                attr=cx.attr), top)]
    if ndim == 4 and start == 2:
        return [(sym.Crop(x, ref, offset=(offs[2], offs[3]), num_args=2, name=cx.node,
                          attr=cx.attr), top)]
    begin = tuple(None if i < start else offs[i] for i in range(ndim))
    end = tuple(None if i < start else offs[i] + top[i] for i in range(ndim))
    return [(sym.slice(x, begin=begin, end=end, name=cx.node, attr=cx.attr), top)]


# -- Other ---------------------------------------------------------------------------

@register("ArgMax")
def argmax(cx):
    x, shape = _unary(cx)
    p = cx.layer.argmax_param
    k = int(p.top_k)
    has_axis = p.has("axis")
    top, axis = S.argmax_shape(shape, k, bool(p.out_max_val), int(p.axis) if has_axis else None)
    # Caffe sorts (value, index) pairs descending: ties go to the LARGER index. Searching the
    # reversed axis (the engine's topk takes the first of equal values) reproduces that.
    if has_axis:
        dim = shape[axis]
        rev = sym.reverse(x, axis=axis, name=cx.sub("reverse"))
        if p.out_max_val:
            return [(sym.topk(rev, axis=axis, k=k, ret_typ="value", name=cx.node, attr=cx.attr),
                     top)]
        idx = sym.topk(rev, axis=axis, k=k, ret_typ="indices", name=cx.sub("topk"))
        return [(sym.subtract(float(dim - 1), idx, name=cx.node, attr=cx.attr),
                 top)]
    dim = S.count(shape, 1)
    flat = sym.reshape(x, shape=(0, -1), name=cx.sub("flatten"))
    rev = sym.reverse(flat, axis=1, name=cx.sub("reverse"))
    idx = sym.topk(rev, axis=1, k=k, ret_typ="indices", name=cx.sub("topk"))
    idx = sym.subtract(float(dim - 1), idx, name=cx.sub("index"))
    tail = tuple(top[3:])
    if p.out_max_val:
        val = sym.topk(rev, axis=1, k=k, ret_typ="value", name=cx.sub("value"))
        both = sym.stack(idx, val, axis=1, name=cx.sub("stack"))
        return [(sym.reshape(both, shape=(0, 2, k) + tail, name=cx.node, attr=cx.attr), top)]
    return [(sym.reshape(idx, shape=(0, 1, k) + tail, name=cx.node, attr=cx.attr), top)]


@register("Reduction")
def reduction(cx):
    x, shape = _unary(cx)
    p = cx.layer.reduction_param
    top, axis = S.reduction_shape(shape, int(p.axis))
    op = p.operation
    coeff = _f(p.coeff)
    axes = tuple(range(axis, len(shape)))
    if op == "ASUM":
        x = sym.abs(x, name=cx.sub("abs"))
    elif op == "SUMSQ":
        x = sym.square(x, name=cx.sub("square"))
    reduce = sym.mean if op == "MEAN" else sym.sum
    last = coeff == 1
    y = reduce(x, axis=axes, name=cx.node if last else cx.sub("reduce"),
               attr=cx.attr if last else None)
    if not last:
        y = sym.multiply(y, coeff, name=cx.node, attr=cx.attr)
    return [(y, top)]


@register("Tile")
def tile(cx):
    x, shape = _unary(cx)
    p = cx.layer.tile_param
    if not p.has("tiles"):
        raise CaffeRuleError("tile_param.tiles is required")
    top, axis = S.tile_shape(shape, int(p.axis), int(p.tiles))
    reps = tuple(int(p.tiles) if i == axis else 1 for i in range(len(shape)))
    return [(sym.tile(x, reps=reps, name=cx.node, attr=cx.attr), top)]


@register("Embed")
def embed(cx):
    x, shape = _unary(cx)
    p = cx.layer.embed_param
    n, vocab, bias = int(p.num_output), int(p.input_dim), bool(p.bias_term)
    top, blob_shapes = S.embed_shapes(shape, n, vocab, bias)
    arrays = cx.weights(blob_shapes)
    w = cx.param("weight", blob_shapes[0], 0, arrays[0])
    if not bias:
        return [(sym.Embedding(x, weight=w, input_dim=vocab, output_dim=n, name=cx.node,
                               attr=cx.attr), top)]
    y = sym.Embedding(x, weight=w, input_dim=vocab, output_dim=n, name=cx.sub("lookup"))
    b = cx.param("bias", blob_shapes[1], 1, arrays[1])
    return [(sym.broadcast_add(y, b, name=cx.node, attr=cx.attr), top)]


#: What each converted type becomes, for the supported-layer list (``supported_layers``).
DESCRIPTIONS = {
    "AbsVal": "abs", "ArgMax": "topk indices/values (top_k, out_max_val, axis; ties to the "
                              "larger index as Caffe)",
    "BNLL": "softrelu (log(1 + exp(x)))",
    "BatchNorm": "BatchNorm with the stored statistics (divided by the scale-factor blob)",
    "Bias": "broadcast_add (axis/num_axes; a learned blob or a second bottom)",
    "Clip": "clip", "Concat": "concat (axis/concat_dim)",
    "Convolution": "Convolution (group, dilation, per-axis kernel/stride/pad, 1-3 spatial axes)",
    "ConvolutionDepthwise": "Convolution with group = channels",
    "DepthwiseConvolution": "Convolution with group = channels",
    "Crop": "crop (axis, offsets; Caffe's default offset 0)",
    "Deconvolution": "Deconvolution (group, dilation, per-axis geometry)",
    "Dropout": "identity at TEST (scale_train: false multiplies by 1 - ratio)",
    "ELU": "LeakyReLU elu (alpha)",
    "Eltwise": "add_n with coefficients / elemwise_mul / maximum",
    "Embed": "Embedding (+ bias)", "Exp": "exp with base, scale, shift",
    "Flatten": "reshape (axis, end_axis)",
    "InnerProduct": "FullyConnected (axis, transpose)",
    "LRN": "LRN across or within channels (alpha/n as Caffe)",
    "Log": "log with base, scale, shift", "MVN": "mean (and variance) normalization",
    "PReLU": "LeakyReLU prelu (channel_shared)",
    "Pooling": "Pooling MAX/AVE, global, CEIL/FLOOR with Caffe's clip rule and AVE divisor; MAX "
               "pooling's mask top (MaxPoolIndices)",
    "Power": "(shift + scale * x) ^ power", "ReLU": "relu or leaky (negative_slope)",
    "ReLU6": "clip(0, 6)", "Reduction": "SUM/ASUM/SUMSQ/MEAN over the trailing axes, coeff",
    "Reshape": "reshape (0 and -1, axis, num_axes)",
    "Scale": "broadcast_mul (axis/num_axes, bias_term; a learned blob or a second bottom)",
    "Sigmoid": "sigmoid", "Slice": "slice_axis per top (axis, slice_point)",
    "Softmax": "softmax (axis)", "SoftmaxWithLoss": "softmax (the label is unused)",
    "Swish": "x * sigmoid(beta * x)", "TanH": "tanh", "Threshold": "x > threshold",
    "Tile": "tile (axis, tiles)",
}
for _t, _doc in DESCRIPTIONS.items():
    if _t in REGISTRY and not REGISTRY[_t].doc:
        REGISTRY[_t].doc = _doc
