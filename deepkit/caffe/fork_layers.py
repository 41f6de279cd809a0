"""Converters for YOLOv2's Reorg and Region, PSPNet's BN, and BVLC's SPP, Im2col, Parameter,
RNN and LSTM layers.

The rules followed, layer by layer:

- ``Reorg``: Darknet's reorg (``reorg_cpu`` with ``forward = 0``), as the YOLOv2 Caffe forks
  (``reorg_param { stride reverse }``) and OpenCV's Reorg layer compute it; ``reverse: true``
  is the forks' inverse. OpenCV reads the stride from ``reorg_stride`` (default 2), the forks
  from ``stride``: both names are read.
- ``Region``: OpenCV's Region layer (see ``deepkit_engine.ops.caffe_fork``), its output rows
  ``(H * W * anchors, 5 + classes)`` (``(N, rows, 5 + classes)`` for a batch of N > 1, as
  OpenCV shapes it). Its input is OpenCV's ``(N, H, W, anchors * (5 + classes))`` layout (a
  Permute before it), or the forks' NCHW predictions, transposed first. Darknet's
  ``classfix: -1`` (objectness below 0.5 counts as 0) is honoured; OpenCV's Caffe importer
  does not read it.
- ``BN``: PSPNet's fork (``bn_layer.cpp``): ``(x - mean) / sqrt(var + eps) * scale + shift``
  with the stored mean and variance (blobs scale, shift, mean, variance).
- ``SPP``, ``Im2col``, ``Parameter``, ``RNN``, ``LSTM``: BVLC Caffe. The recurrent layers are
  unrolled over the time axis exactly as Caffe's ``FillUnrolledNet`` builds them.
"""
import itertools

import numpy as np

from deepkit_engine import symbol as sym

from . import shapes as S
from .detection_layers import ForkParam
from .layers import Unsupported, register
from .shapes import CaffeRuleError

__all__ = ["reorg", "region", "bn", "spp", "im2col", "parameter", "rnn", "lstm",
           "spp_levels"]


def _only(cx, n):
    if len(cx.bottoms) != n:
        raise CaffeRuleError(f"{cx.type} takes {n} bottom(s), got {len(cx.bottoms)}")


def _f32(v):
    return float(np.float32(v))


# -- Reorg (YOLOv2) ------------------------------------------------------------------------------

@register("Reorg", doc="space-to-depth as Darknet's reorg (reorg_param stride/reorg_stride, "
                       "reverse): reshape, transpose, reshape")
def reorg(cx):
    """Darknet's reorg: reshape, transpose, reshape (reverse: the inverse)."""
    _only(cx, 1)
    x, shape = cx.bottoms[0], tuple(cx.bottom_shapes[0])
    p = ForkParam(cx.layer, "reorg_param")
    if p.has("stride") and p.has("reorg_stride") and \
            int(p.get("stride")) != int(p.get("reorg_stride")):
        raise CaffeRuleError(f"reorg_param gives stride {p.get('stride')} and reorg_stride "
                             f"{p.get('reorg_stride')}: give one")
    s = int(p.get("stride", p.get("reorg_stride", 2)))
    reverse = bool(p.get("reverse", False))
    if s < 1:
        raise CaffeRuleError(f"reorg_param.stride must be positive; got {s}")
    if len(shape) != 4:
        raise CaffeRuleError(f"Reorg takes a 4-D input (N, C, H, W); got {shape}")
    n, c, h, w = shape
    if c % (s * s) or (not reverse and (h % s or w % s)):
        need = "C divisible by stride^2" + ("" if reverse else ", H and W by the stride")
        raise CaffeRuleError(f"Reorg with stride {s} needs {need}; got input {shape}")
    oc = c // (s * s)
    if reverse:
        # the input viewed as (s, s, C / s^2, H, W) goes back to (C / s^2, H, s, W, s)
        split = sym.reshape(x, shape=(n, s, s, oc, h, w), name=cx.sub("split"))
        moved = sym.transpose(split, axes=(0, 3, 4, 1, 5, 2), name=cx.sub("transpose"))
        top = (n, oc, h * s, w * s)
    else:
        # Darknet reads the input memory as (C / s^2, H * s, W * s)
        split = sym.reshape(x, shape=(n, oc, h, s, w, s), name=cx.sub("split"))
        moved = sym.transpose(split, axes=(0, 3, 5, 1, 2, 4), name=cx.sub("transpose"))
        top = (n, c * s * s, h // s, w // s)
    return [(sym.reshape(moved, shape=top, name=cx.node, attr=cx.attr), top)]


# -- Region (YOLOv2) -----------------------------------------------------------------------------

@register("Region", doc="YoloRegion op as OpenCV's Region layer (anchors from a caffemodel blob "
                        "or biases/anchors values, classes, coords 4, softmax/logistic, "
                        "classfix, thresh, nms_threshold); rows (H*W*anchors, 5 + classes), "
                        "batched when N > 1; inference only")
def region(cx):
    """YoloRegion op as OpenCV's Region layer (inference only)."""
    if len(cx.bottoms) not in (1, 2):
        raise CaffeRuleError(f"Region takes 1 bottom (the predictions), or 2 with the image "
                             f"whose size normalises the box sizes; got {len(cx.bottoms)}")
    p = ForkParam(cx.layer, "region_param")
    if bool(p.get("softmax_tree", False)) or p.has("tree"):
        raise Unsupported("region_param softmax_tree (YOLO9000's hierarchical softmax) is not "
                          "supported (OpenCV does not implement it either)")
    if float(p.get("scale_x_y", 1.0)) != 1.0 or int(p.get("new_coords", 0)):
        raise Unsupported("region_param scale_x_y / new_coords (YOLOv4's box rules) are not "
                          "supported")
    classes = int(p.get("classes", 0))
    coords = int(p.get("coords", 4))
    softmax = bool(p.get("softmax", False))
    logistic = bool(p.get("logistic", False))
    if classes < 1:
        raise CaffeRuleError(f"region_param.classes must be at least 1; got {classes}")
    if coords != 4:
        raise Unsupported(f"region_param.coords = {coords}: only 4 box coordinates are "
                          "supported (as OpenCV)")
    if not (softmax or logistic):
        raise CaffeRuleError("region_param needs softmax: true (YOLOv2) or logistic: true "
                             "(YOLOv3 scores), as OpenCV requires")
    listed = [float(v) for v in p.list("biases")]
    anchors_field = p.list("anchors")
    if not listed and len(anchors_field) > 1:
        listed = [float(v) for v in anchors_field]
    count = int(p.get("num")) if p.has("num") else (
        int(anchors_field[0]) if len(anchors_field) == 1 else None)
    shape = tuple(cx.bottom_shapes[0])
    if len(shape) != 4:
        raise CaffeRuleError(f"Region takes a 4-D input; got {shape}")
    cell = coords + 1 + classes
    if count is None:
        count = len(listed) // 2 if listed else None
    if count is None:
        for axis in (3, 1):
            if shape[axis] % cell == 0:
                count = shape[axis] // cell
                break
    if not count or count < 1:
        raise CaffeRuleError(f"Region: cannot tell the number of anchors: give region_param num "
                             f"(or anchors: N) for an input {shape} with {cell} values per "
                             "anchor")
    values = cx.weights([(2 * count,)]) if cx.blob_shapes() is not None else [None]
    blob = values[0]
    if blob is not None:
        anchors = [float(v) for v in np.asarray(blob, np.float32).reshape(-1)]
        source = "the caffemodel blob"
    elif listed:
        anchors = [_f32(v) for v in listed]
        source = "region_param"
    else:
        raise CaffeRuleError("Region needs the anchor sizes: region_param biases (or anchors "
                             "as 2 x num values), or a caffemodel blob of 2 x num values (as "
                             "OpenCV reads them)")
    if len(anchors) != 2 * count:
        raise CaffeRuleError(f"Region has {count} anchors but {len(anchors)} anchor values in "
                             f"{source}; it needs a (width, height) pair per anchor "
                             f"({2 * count} values)")
    need = count * cell
    x = cx.bottoms[0]
    if shape[3] == need:
        rows = shape[:3]
    elif shape[1] == need:
        # the forks' NCHW predictions: to OpenCV's (N, H, W, anchors * cell) layout
        x = sym.transpose(x, axes=(0, 2, 3, 1), name=cx.sub("nhwc"))
        rows = (shape[0],) + shape[2:]
    else:
        raise CaffeRuleError(f"Region's input {shape} has no axis of {count} anchors x {cell} "
                             f"(coords + 1 + {classes} classes) = {need} values: axis 3 "
                             "(OpenCV's layout after a Permute) or axis 1 (NCHW)")
    norm_h = norm_w = 0
    if len(cx.bottoms) == 2:
        image = tuple(cx.bottom_shapes[1])
        if len(image) != 4:
            raise CaffeRuleError(f"Region's second bottom must be 4-D (its H and W normalise the "
                                 f"box sizes); got {image}")
        norm_h, norm_w = image[2], image[3]
    out = sym.YoloRegion(x, anchors="(" + ", ".join(repr(a) for a in anchors) + ",)",
                         classes=classes, coords=coords, softmax=softmax,
                         classfix=int(p.get("classfix", 0)),
                         thresh=_f32(p.get("thresh", 0.2)),
                         nms_threshold=_f32(p.get("nms_threshold", 0.4)),
                         norm_h=norm_h, norm_w=norm_w, name=cx.node, attr=cx.attr)
    per_image = rows[1] * rows[2] * count
    return [(out, (per_image, cell) if rows[0] == 1 else (rows[0], per_image, cell))]


# -- BN (PSPNet) ---------------------------------------------------------------------------------

@register("BN", doc="PSPNet's BN: BatchNorm with its stored mean/variance, scale and shift "
                    "(bn_param eps)")
def bn(cx):
    """PSPNet's BN: (x - mean) / sqrt(var + eps) * scale + shift, the stored statistics."""
    _only(cx, 1)
    x, shape = cx.bottoms[0], tuple(cx.bottom_shapes[0])
    if len(shape) < 2:
        raise CaffeRuleError(f"BN needs an input with a channel axis 1; got {shape}")
    p = ForkParam(cx.layer, "bn_param")
    eps = _f32(p.get("eps", 1e-5))
    c = shape[1]
    declared = cx.blob_shapes()
    if declared is not None and len(declared) == 2:
        raise Unsupported("this BN layer has no stored mean and variance (2 blobs: scale and "
                          "shift): the fork then normalizes with the statistics of each batch, "
                          "which a converted inference model cannot reproduce",
                          "use a caffemodel trained with moving averages (4 blobs)")
    blob = (1, c, 1, 1)
    if declared:
        first = declared[0]
        if first is not None and S.count(first) == c:
            blob = tuple(first)
    arrays = cx.weights([blob] * 4)
    if cx.phase == "TRAIN" and not bool(p.get("frozen", False)):
        cx.warn(f"BN '{cx.name}': in phase TRAIN the fork normalizes with batch statistics; the "
                "converted op uses the stored ones (as in TEST)")
    names = ("gamma", "beta", "moving_mean", "moving_var")
    params = [cx.param(name, (c,), i, None if a is None else a.reshape(c), aux=i >= 2,
                       caffe_shape=blob)
              for i, (name, a) in enumerate(zip(names, arrays))]
    out = sym.BatchNorm(x, *params, eps=eps, fix_gamma=False, use_global_stats=True,
                        name=cx.node, attr=cx.attr)
    return [(out, shape)]


# -- SPP -----------------------------------------------------------------------------------------

def spp_levels(height, width, pyramid_height):
    """Caffe's ``SPPLayer::GetPoolingParam`` for each level: ``(kernel, stride, pad)`` pairs.

    Level ``l`` has ``2^l`` bins per side: kernel ``ceil(size / bins)``, stride the kernel,
    pad ``(kernel * bins - size + 1) // 2``.
    """
    levels = []
    for level in range(pyramid_height):
        bins = 2 ** level
        kernel, pad = [], []
        for size in (height, width):
            k = -(-size // bins)
            kernel.append(k)
            pad.append((k * bins - size + 1) // 2)
        levels.append((tuple(kernel), tuple(kernel), tuple(pad)))
    return levels


@register("SPP", doc="spatial pyramid pooling: Pooling per level (Caffe's kernel, stride and "
                     "pad rules), flattened and concatenated")
def spp(cx):
    """Spatial pyramid pooling: one Pooling per level, flattened and concatenated."""
    _only(cx, 1)
    x, shape = cx.bottoms[0], tuple(cx.bottom_shapes[0])
    p = cx.layer.spp_param
    if p.pool not in ("MAX", "AVE"):
        raise Unsupported(f"spp_param.pool = {p.pool}: Caffe implements STOCHASTIC pooling only "
                          "on GPU and only for training", "use MAX or AVE")
    if len(shape) != 4 or shape[2] < 1 or shape[3] < 1:
        raise CaffeRuleError(f"SPP takes a 4-D input (N, C, H, W) with H, W > 0; got {shape}")
    height = int(p.pyramid_height)
    if height < 1:
        raise CaffeRuleError(f"spp_param.pyramid_height must be at least 1; got {height}")
    pool_type = "max" if p.pool == "MAX" else "avg"
    outs, tops = [], []
    for level, (kernel, stride, pad) in enumerate(spp_levels(shape[2], shape[3], height)):
        for k, q, what in zip(kernel, pad, ("height", "width")):
            if q >= k:
                raise CaffeRuleError(
                    f"SPP level {level} ({2 ** level} bins) on a {what} of "
                    f"{shape[2] if what == 'height' else shape[3]} gives pad {q} >= kernel {k}, "
                    "which Caffe's pooling refuses (pad < kernel); use a smaller "
                    "pyramid_height or a larger input")
        top = S.pool_output_shape(shape, kernel, stride, pad, "CEIL")
        last = height == 1
        pooled = sym.Pooling(x, kernel=kernel, stride=stride, pad=pad, pool_type=pool_type,
                             pooling_convention="full", count_include_pad=True,
                             name=cx.node if last else cx.sub(f"pool{level}"),
                             attr=cx.attr if last else None)
        if last:
            return [(pooled, top)]
        outs.append(sym.Flatten(pooled, name=cx.sub(f"flatten{level}")))
        tops.append(S.count(top, 1))
    return [(sym.concat(*outs, dim=1, name=cx.node, attr=cx.attr), (shape[0], sum(tops)))]


# -- Im2col --------------------------------------------------------------------------------------

@register("Im2col", doc="im2col as strided slices of the padded input, stacked in Caffe's "
                        "channel-major order (kernel, stride, pad, dilation)")
def im2col(cx):
    """Caffe's Im2col: (N, C * prod(kernel), *out) from strided slices of the padded input."""
    _only(cx, 1)
    x, shape = cx.bottoms[0], tuple(cx.bottom_shapes[0])
    p = cx.layer.convolution_param
    if len(shape) < 3:
        raise CaffeRuleError(f"Im2col's input must have at least 3 axes (N, C, spatial...); got "
                             f"{shape}")
    if S.canonical_axis(p.axis, len(shape)) != 1:
        raise Unsupported(f"convolution_param.axis = {p.axis}: only the channel axis 1 is "
                          "supported (NCHW data)")
    nsp = len(shape) - 2
    if nsp not in (1, 2, 3):
        raise Unsupported(f"{nsp}-D Im2col: 1 to 3 spatial axes are supported")
    kernel, stride, pad, dilation = S.conv_geometry(p, nsp)
    out = []
    for n, k, s, q, d in zip(shape[2:], kernel, stride, pad, dilation):
        o = (n + 2 * q - (d * (k - 1) + 1)) // s + 1
        if o < 1:
            raise CaffeRuleError(f"Im2col's kernel {tuple(kernel)} (dilation {tuple(dilation)}) "
                                 f"does not fit the padded input {shape} (pad {tuple(pad)})")
        out.append(o)
    padded = x
    if any(pad):
        if nsp == 1:
            padded = sym.reshape(x, shape=(0, 0, 1, -1), name=cx.sub("as2d"))
            widths = (0, 0, 0, 0, 0, 0, pad[0], pad[0])
        else:
            widths = (0, 0, 0, 0) + tuple(v for q in pad for v in (q, q))
        padded = sym.pad(padded, mode="constant", pad_width=widths, constant_value=0.0,
                         name=cx.sub("pad"))
        if nsp == 1:
            padded = sym.reshape(padded, shape=(0, 0, -1), name=cx.sub("as1d"))
    pieces = []
    for offsets in itertools.product(*(range(k) for k in kernel)):
        begin = (None, None) + tuple(i * d for i, d in zip(offsets, dilation))
        end = (None, None) + tuple(i * d + (o - 1) * s + 1
                                   for i, d, o, s in zip(offsets, dilation, out, stride))
        pieces.append(sym.slice(padded, begin=begin, end=end, step=(None, None) + tuple(stride),
                                name=cx.sub("col" + "_".join(map(str, offsets)))))
    top = (shape[0], shape[1] * S.count(kernel)) + tuple(out)
    if len(pieces) == 1:
        return [(sym.identity(pieces[0], name=cx.node, attr=cx.attr), top)]
    stacked = sym.stack(*pieces, axis=2, name=cx.sub("stack"))
    return [(sym.reshape(stacked, shape=top, name=cx.node, attr=cx.attr), top)]


# -- Parameter -----------------------------------------------------------------------------------

@register("Parameter", doc="its learned blob (parameter_param.shape) as a parameter")
def parameter(cx):
    """The layer's learned blob, of parameter_param.shape, as an engine parameter."""
    if cx.bottoms:
        raise CaffeRuleError(f"Parameter takes no bottom, got {len(cx.bottoms)}")
    if cx.ntops != 1:
        raise CaffeRuleError(f"Parameter gives 1 top; the prototxt names {cx.ntops}")
    p = cx.layer.parameter_param
    dims = tuple(int(d) for d in p.shape.dim) if p.has("shape") else ()
    if any(d < 0 for d in dims):
        raise CaffeRuleError(f"parameter_param.shape must not be negative; got {dims}")
    (value,) = cx.weights([dims])
    var = cx.param("blob", dims, 0, value)
    return [(sym.identity(var, name=cx.node, attr=cx.attr), dims)]


# -- RNN and LSTM ----------------------------------------------------------------------------------

def _recurrent_inputs(cx, states):
    """Check the bottoms of a recurrent layer: ``(T, N, D, static dims, exposed)``."""
    p = cx.layer.recurrent_param
    if not p.has("num_output") or int(p.num_output) < 1:
        raise CaffeRuleError("recurrent_param.num_output must be positive")
    expose = bool(p.expose_hidden)
    exposed = states if expose else 0
    nb = len(cx.bottoms)
    if nb not in (2 + exposed, 3 + exposed):
        names = ["x", "cont", "[x_static]"] + (["h_0", "c_0"][:states] if expose else [])
        raise CaffeRuleError(f"{cx.type} takes bottoms {', '.join(names)}; got {nb}")
    static = nb == 3 + exposed
    x_shape, cont_shape = tuple(cx.bottom_shapes[0]), tuple(cx.bottom_shapes[1])
    if len(x_shape) < 2:
        raise CaffeRuleError(f"bottom[0] must have at least 2 axes -- (#timesteps, #streams, "
                             f"...); got {x_shape}")
    t, n = x_shape[:2]
    if cont_shape != (t, n):
        raise CaffeRuleError(f"bottom[1] (cont) must be (#timesteps, #streams) = {(t, n)}; got "
                             f"{cont_shape}")
    h = int(p.num_output)
    static_shape = None
    if static:
        static_shape = tuple(cx.bottom_shapes[2])
        if len(static_shape) < 1 or static_shape[0] != n:
            raise CaffeRuleError(f"bottom[2] (x_static) must have #streams {n} as its first "
                                 f"axis; got {static_shape}")
    if expose:
        for i in range(states):
            got = tuple(cx.bottom_shapes[nb - states + i])
            if got != (1, n, h):
                raise CaffeRuleError(f"bottom[{nb - states + i}] shape must match hidden state "
                                     f"input shape: {(1, n, h)}; got {got}")
    if cx.ntops != 1 + exposed:
        raise CaffeRuleError(f"{cx.type} gives {1 + exposed} top(s) (expose_hidden: "
                             f"{str(expose).lower()}); the prototxt names {cx.ntops}")
    if not expose:
        cx.warn(f"{cx.type} '{cx.name}': Caffe carries the last hidden state over to the next "
                "forward pass; the converted net starts each pass from zeros (as Caffe's first "
                "pass, or any batch whose cont is 0 at the first step)")
    return t, n, S.count(x_shape, 2), static_shape, expose, h


def _input_transform(cx, h_gates, t, n, d, static_shape, arrays):
    """``W x_t + b`` for all timesteps (T, N, gates), and the static term (1, N, gates)."""
    x = cx.bottoms[0]
    if len(cx.bottom_shapes[0]) != 3:
        x = sym.reshape(x, shape=(t, n, d), name=cx.sub("x_flat"))
    w = cx.param("W_x", (h_gates, d), 0, arrays[0])
    b = cx.param("b_x", (h_gates,), 1, arrays[1])
    wx = sym.FullyConnected(x, weight=w, bias=b, num_hidden=h_gates, flatten=False,
                            name=cx.sub("x_transform"))
    static = None
    if static_shape is not None:
        ds = S.count(static_shape, 1)
        ws = cx.param("W_x_static", (h_gates, ds), 2, arrays[2])
        pre = sym.FullyConnected(cx.bottoms[2], weight=ws, num_hidden=h_gates, no_bias=True,
                                 flatten=True, name=cx.sub("x_static_transform"))
        static = sym.reshape(pre, shape=(1, n, h_gates), name=cx.sub("x_static"))
    return wx, static


def _cont(cx, step, n):
    c = sym.slice_axis(cx.bottoms[1], axis=0, begin=step, end=step + 1, name=cx.sub(f"cont{step}"))
    return sym.reshape(c, shape=(1, n, 1), name=cx.sub(f"cont{step}_b"))


def _hidden_transform(cx, h_prev, cont, w, gates, step):
    conted = sym.broadcast_mul(h_prev, cont, name=cx.sub(f"h_conted{step}"))
    return sym.FullyConnected(conted, weight=w, num_hidden=gates, no_bias=True, flatten=False,
                              name=cx.sub(f"transform{step}"))


def _gate_input(cx, parts, step):
    return sym.add_n(*[q for q in parts if q is not None], name=cx.sub(f"gate_input{step}"))


def _join(cx, steps, top):
    if len(steps) == 1:
        return sym.identity(steps[0], name=cx.node, attr=cx.attr)
    return sym.concat(*steps, dim=0, name=cx.node, attr=cx.attr)


@register("LSTM", doc="LSTM unrolled over time as Caffe's (gates i, f, o, g; cont resets the "
                      "state; x_static, expose_hidden)")
def lstm(cx):
    """Caffe's LSTM unrolled over time (gate order i, f, o, g; cont resets the state)."""
    t, n, d, static_shape, expose, h = _recurrent_inputs(cx, 2)
    g4 = 4 * h
    shapes = [(g4, d), (g4,)] + ([(g4, S.count(static_shape, 1))] if static_shape else []) + \
        [(g4, h)]
    arrays = cx.weights(shapes)
    wx, static = _input_transform(cx, g4, t, n, d, static_shape, arrays)
    w_h = cx.param("W_h", (g4, h), len(shapes) - 1, arrays[-1])
    if expose:
        h_prev, c_prev = cx.bottoms[-2], cx.bottoms[-1]
    else:
        zeros = sym.zeros_like(sym.slice_axis(wx, axis=0, begin=0, end=1, name=cx.sub("first")),
                               name=cx.sub("zeros"))
        h_prev = c_prev = sym.slice_axis(zeros, axis=2, begin=0, end=h, name=cx.sub("state0"))
    outputs = []
    for step in range(t):
        cont = _cont(cx, step, n)
        gates = _gate_input(cx, [_hidden_transform(cx, h_prev, cont, w_h, g4, step),
                                 sym.slice_axis(wx, axis=0, begin=step, end=step + 1,
                                                name=cx.sub(f"wx{step}")), static], step)
        i, f, o, g = (sym.slice_axis(gates, axis=2, begin=k * h, end=(k + 1) * h,
                                     name=cx.sub(f"{gate}{step}"))
                      for k, gate in enumerate("ifog"))
        i = sym.sigmoid(i, name=cx.sub(f"i_act{step}"))
        f = sym.broadcast_mul(sym.sigmoid(f, name=cx.sub(f"f_act{step}")), cont,
                              name=cx.sub(f"f_cont{step}"))
        o = sym.sigmoid(o, name=cx.sub(f"o_act{step}"))
        g = sym.tanh(g, name=cx.sub(f"g_act{step}"))
        c_prev = sym.elemwise_add(sym.elemwise_mul(f, c_prev, name=cx.sub(f"fc{step}")),
                                  sym.elemwise_mul(i, g, name=cx.sub(f"ig{step}")),
                                  name=cx.sub(f"c{step + 1}"))
        h_prev = sym.elemwise_mul(o, sym.tanh(c_prev, name=cx.sub(f"tanh_c{step + 1}")),
                                  name=cx.sub(f"h{step + 1}"))
        outputs.append(h_prev)
    top = (t, n, h)
    result = [(_join(cx, outputs, top), top)]
    if expose:
        result += [(sym.identity(h_prev, name=cx.sub("h_T")), (1, n, h)),
                   (sym.identity(c_prev, name=cx.sub("c_T")), (1, n, h))]
    return result


@register("RNN", doc="RNN unrolled over time as Caffe's (tanh hidden state, tanh output "
                     "o_t = tanh(W_ho h_t + b_o); cont resets the state; x_static, "
                     "expose_hidden)")
def rnn(cx):
    """Caffe's RNN unrolled over time: tanh hidden state and tanh output layer."""
    t, n, d, static_shape, expose, h = _recurrent_inputs(cx, 1)
    shapes = [(h, d), (h,)] + ([(h, S.count(static_shape, 1))] if static_shape else []) + \
        [(h, h), (h, h), (h,)]
    arrays = cx.weights(shapes)
    wx, static = _input_transform(cx, h, t, n, d, static_shape, arrays)
    k = len(shapes) - 3
    w_hh = cx.param("W_hh", (h, h), k, arrays[k])
    w_ho = cx.param("W_ho", (h, h), k + 1, arrays[k + 1])
    b_o = cx.param("b_o", (h,), k + 2, arrays[k + 2])
    if expose:
        h_prev = cx.bottoms[-1]
    else:
        h_prev = sym.zeros_like(sym.slice_axis(wx, axis=0, begin=0, end=1, name=cx.sub("first")),
                                name=cx.sub("state0"))
    outputs = []
    for step in range(t):
        cont = _cont(cx, step, n)
        pre = _gate_input(cx, [_hidden_transform(cx, h_prev, cont, w_hh, h, step),
                               sym.slice_axis(wx, axis=0, begin=step, end=step + 1,
                                              name=cx.sub(f"wx{step}")), static], step)
        h_prev = sym.tanh(pre, name=cx.sub(f"h{step + 1}"))
        fc = sym.FullyConnected(h_prev, weight=w_ho, bias=b_o, num_hidden=h, flatten=False,
                                name=cx.sub(f"W_ho_h{step + 1}"))
        outputs.append(sym.tanh(fc, name=cx.sub(f"o{step + 1}")))
    top = (t, n, h)
    result = [(_join(cx, outputs, top), top)]
    if expose:
        result.append((sym.identity(h_prev, name=cx.sub("h_T")), (1, n, h)))
    return result
