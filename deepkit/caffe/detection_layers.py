"""Converters for the SSD family of Caffe layers: Permute, PriorBox, DetectionOutput, Normalize.

These layers come from the SSD fork of Caffe (``weiliu89/caffe``), whose
parameter messages (``permute_param``, ``prior_box_param``,
``detection_output_param``, ``norm_param``) are not in BVLC's schema: the
prototxt reader keeps them as unknown fields, read here with
:class:`ForkParam`. The rules are SSD Caffe's, which OpenCV's importer
follows; PriorBox and DetectionOutput become the engine ops of the same names
(:mod:`deepkit_engine.ops.detection`). DetectionOutput's top is
``(1, 1, R, 7)`` with R the most detections that can be kept (keep_top_k per
image): the rows after the detections are zero, as OpenCV pads them, where
Caffe's top has exactly the detections.
"""
import numpy as np

from deepkit_engine import symbol as sym

from .layers import Unsupported, register
from .shapes import CaffeRuleError, canonical_axis

__all__ = ["ForkParam", "FORK_FIELDS", "permute", "prior_box", "detection_output", "normalize",
           "shuffle_channel", "axpy", "roi_pooling", "psroi_pooling"]

#: The fork parameter fields these converters read (the reader reports them as unknown).
FORK_FIELDS = ("permute_param", "prior_box_param", "detection_output_param", "norm_param",
               "shuffle_channel_param", "interp_param", "roi_pooling_param",
               "psroi_pooling_param")


class ForkParam:
    """A fork's parameter message of a layer, read from the schema or the skipped fields.

    Args:
        layer: The LayerParameter.
        name: The field name (``'prior_box_param'``).
    """

    def __init__(self, layer, name):
        self.name = name
        self.values = {}
        for uf in getattr(layer, "unknown_fields", []):
            if uf.name == name and isinstance(uf.value, dict):
                self.values = uf.value
        if not self.values:
            try:
                msg = getattr(layer, name) if layer.has(name) else None
            except (AttributeError, KeyError):
                msg = None
            if msg is not None:
                self.values = _message_values(msg)

    def has(self, key):
        """Whether the field is set."""
        return bool(self.values.get(key))

    def list(self, key):
        """A repeated field's values (a list)."""
        value = self.values.get(key, [])
        return list(value) if isinstance(value, (list, tuple)) else [value]

    def get(self, key, default=None):
        """A single field's value (its last occurrence, as protobuf reads it)."""
        values = self.list(key)
        return values[-1] if values else default

    def sub(self, key):
        """A nested message's fields, as a :class:`ForkParam`-like reader."""
        inner = ForkParam.__new__(ForkParam)
        inner.name = f"{self.name}.{key}"
        value = self.get(key, {})
        inner.values = value if isinstance(value, dict) else _message_values(value)
        return inner


def _message_values(msg):
    """A schema Message's set fields as ``{name: [values]}`` (the skipped fields' form)."""
    out = {}
    for name, value in msg.fields():
        if hasattr(value, "fields"):
            value = _message_values(value)
        out[name] = list(value) if isinstance(value, (list, tuple)) else [value]
    return out


def _only(cx, n):
    if len(cx.bottoms) != n:
        raise CaffeRuleError(f"{cx.type} takes {n} bottom(s), got {len(cx.bottoms)}")


# -- Permute ---------------------------------------------------------------------------------

@register("Permute", doc="transpose (permute_param.order; the axes not named follow in order)")
def permute(cx):
    """transpose (permute_param.order; the axes not named follow in order)."""
    _only(cx, 1)
    shape = cx.bottom_shapes[0]
    ndim = len(shape)
    order = []
    for axis in ForkParam(cx.layer, "permute_param").list("order"):
        axis = int(axis)
        if not -ndim <= axis < ndim:
            raise CaffeRuleError(f"permute_param.order {axis} is out of range for an input of "
                                 f"{ndim} axes {tuple(shape)}")
        axis = canonical_axis(axis, ndim)
        if axis in order:
            raise CaffeRuleError(f"permute_param.order names axis {axis} twice")
        order.append(axis)
    order += [a for a in range(ndim) if a not in order]
    top = tuple(shape[a] for a in order)
    if order == list(range(ndim)):
        return [(sym.identity(cx.bottoms[0], name=cx.node, attr=cx.attr), top)]
    return [(sym.transpose(cx.bottoms[0], axes=tuple(order), name=cx.node, attr=cx.attr), top)]


# -- PriorBox --------------------------------------------------------------------------------

def _pair(p, both, h, w, what):
    """Caffe's ``img_size``/``img_h``+``img_w`` (and ``step``) rule: one, or both sides, or 0."""
    if p.has(both):
        if p.has(h) or p.has(w):
            raise CaffeRuleError(f"prior_box_param: either {both} or {h}/{w}, not both")
        value = float(p.get(both))
        return value, value
    if p.has(h) or p.has(w):
        if not (p.has(h) and p.has(w)):
            raise CaffeRuleError(f"prior_box_param: {h} and {w} go together ({what})")
        return float(p.get(h)), float(p.get(w))
    return 0.0, 0.0


def _text(values):
    return "(" + ", ".join(repr(float(v)) for v in values) + ",)" if values else ""


@register("PriorBox", doc="PriorBox op (min/max sizes, aspect ratios, flip, clip, variances, "
                          "step, offset, img_size)")
def prior_box(cx):
    """PriorBox op (min/max sizes, aspect ratios, flip, clip, variances, step, offset, img_size)."""
    _only(cx, 2)
    p = ForkParam(cx.layer, "prior_box_param")
    if p.has("width") or p.has("height"):
        raise Unsupported("prior_box_param width/height (explicit box sizes, an OpenCV "
                          "extension) are not supported", "use min_size/max_size/aspect_ratio")
    data, image = cx.bottom_shapes
    if len(data) != 4 or len(image) != 4:
        raise CaffeRuleError(f"PriorBox takes 4-D bottoms; got {tuple(data)} and {tuple(image)}")
    img_h, img_w = _pair(p, "img_size", "img_h", "img_w", "the image size")
    step_h, step_w = _pair(p, "step", "step_h", "step_w", "the step")
    variances = [float(v) for v in p.list("variance")]
    if len(variances) > 1 and len(variances) != 4:
        raise CaffeRuleError(f"prior_box_param.variance must be 1 or 4 values, got {variances}")
    kwargs = dict(min_size=_text(p.list("min_size")), max_size=_text(p.list("max_size")),
                  aspect_ratio=_text(p.list("aspect_ratio")), flip=bool(p.get("flip", True)),
                  clip=bool(p.get("clip", False)), variance=_text(variances) or "(0.1,)",
                  img_h=img_h, img_w=img_w, step_h=step_h, step_w=step_w,
                  offset=float(p.get("offset", 0.5)))
    if not p.list("min_size"):
        raise CaffeRuleError("prior_box_param.min_size must be given")
    out = sym.PriorBox(cx.bottoms[0], cx.bottoms[1], name=cx.node, attr=cx.attr, **kwargs)
    count = _num_priors(p.list("min_size"), p.list("max_size"), p.list("aspect_ratio"),
                        kwargs["flip"])
    return [(out, (1, 2, data[2] * data[3] * count * 4))]


def _num_priors(mins, maxs, ratios, flip):
    """Caffe's prior count per position: min sizes x distinct ratios (1 first) + max sizes."""
    distinct = [1.0]
    for ar in ratios:
        ar = float(ar)
        if any(abs(ar - r) < 1e-6 for r in distinct):
            continue
        distinct.append(ar)
        if flip:
            distinct.append(1.0 / ar)
    return len(mins) * len(distinct) + len(maxs)


# -- DetectionOutput -------------------------------------------------------------------------

@register("DetectionOutput", doc="DetectionOutput op (decode, per-class NMS, keep_top_k); rows "
                                 "past the detections are zero, as OpenCV pads them")
def detection_output(cx):
    """DetectionOutput op (decode, per-class NMS, keep_top_k)."""
    if len(cx.bottoms) not in (3, 4, 5):
        raise CaffeRuleError(f"DetectionOutput takes 3 bottoms (loc, conf, priors), got "
                             f"{len(cx.bottoms)}")
    if len(cx.bottoms) > 3:
        raise Unsupported("DetectionOutput with ARM bottoms (RefineDet) is not supported")
    p = ForkParam(cx.layer, "detection_output_param")
    if not p.has("num_classes"):
        raise CaffeRuleError("detection_output_param.num_classes must be given")
    nms = p.sub("nms_param")
    code = str(p.get("code_type", "CORNER"))
    if code not in ("CORNER", "CENTER_SIZE", "CORNER_SIZE"):
        raise Unsupported(f"detection_output_param.code_type {code} is not supported")
    kwargs = dict(num_classes=int(p.get("num_classes")),
                  share_location=bool(p.get("share_location", True)),
                  background_label_id=int(p.get("background_label_id", 0)),
                  nms_threshold=float(nms.get("nms_threshold", 0.3)),
                  top_k=int(nms.get("top_k", -1)), eta=float(nms.get("eta", 1.0)),
                  code_type=code,
                  variance_encoded_in_target=bool(p.get("variance_encoded_in_target", False)),
                  keep_top_k=int(p.get("keep_top_k", -1)),
                  confidence_threshold=float(p.get("confidence_threshold",
                                                   -np.finfo(np.float32).max)),
                  clip=bool(p.get("clip", False)))
    loc, conf, prior = cx.bottoms
    loc_shape, conf_shape, prior_shape = cx.bottom_shapes
    n = loc_shape[0]
    flat_loc = sym.reshape(loc, shape=(0, -1), name=cx.sub("loc"))
    flat_conf = sym.reshape(conf, shape=(0, -1), name=cx.sub("conf"))
    out = sym.DetectionOutput(flat_loc, flat_conf, prior, name=cx.node, attr=cx.attr, **kwargs)
    rows = _detection_rows(kwargs, prior_shape)
    return [(out, (1, 1, n * rows, 7))]


def _detection_rows(kwargs, prior_shape):
    """The rows reserved per image (as the engine op reserves them)."""
    num_priors = int(prior_shape[-1]) // 4
    classes = kwargs["num_classes"] - (1 if 0 <= kwargs["background_label_id"] <
                                       kwargs["num_classes"] else 0)
    per_class = num_priors if kwargs["top_k"] < 0 else min(kwargs["top_k"], num_priors)
    bound = per_class * classes
    keep = kwargs["keep_top_k"]
    return max(1, min(keep, bound) if keep > -1 else bound)


# -- Normalize -------------------------------------------------------------------------------

@register("Normalize", doc="L2 normalization (across_spatial, channel_shared, eps) times a "
                           "learned scale")
def normalize(cx):
    """L2 normalization (across_spatial, channel_shared, eps) times a learned scale."""
    _only(cx, 1)
    x, shape = cx.bottoms[0], cx.bottom_shapes[0]
    if len(shape) < 2:
        raise CaffeRuleError(f"Normalize needs an input with a channel axis; got {tuple(shape)}")
    p = ForkParam(cx.layer, "norm_param")
    across = bool(p.get("across_spatial", True))
    shared = bool(p.get("channel_shared", True))
    eps = float(np.float32(p.get("eps", 1e-10)))
    channels = shape[1]
    (scale,) = cx.weights([(1,) if shared else (channels,)])
    bshape = (1,) * len(shape) if shared else (1, channels) + (1,) * (len(shape) - 2)
    axes = tuple(range(1, len(shape))) if across else (1,)
    sq = sym.square(x, name=cx.sub("square"))
    total = sym.sum(sq, axis=axes, keepdims=True, name=cx.sub("sum"))
    norm = sym.sqrt(sym.add(total, eps, name=cx.sub("eps")), name=cx.sub("norm"))
    y = sym.broadcast_div(x, norm, name=cx.sub("normalized"))
    weight = cx.param("scale", bshape, 0, None if scale is None else scale.reshape(bshape),
                      caffe_shape=(1,) if shared else (channels,))
    return [(sym.broadcast_mul(y, weight, name=cx.node, attr=cx.attr), tuple(shape))]


# -- ShuffleChannel and Axpy (ShuffleNet, SENet forks) ------------------------------------------

@register("ShuffleChannel", doc="channel shuffle (shuffle_channel_param.group): reshape, "
                                "transpose, reshape")
def shuffle_channel(cx):
    """Channel shuffle (shuffle_channel_param.group): reshape, transpose, reshape."""
    _only(cx, 1)
    x, shape = cx.bottoms[0], cx.bottom_shapes[0]
    group = int(ForkParam(cx.layer, "shuffle_channel_param").get("group", 1))
    if len(shape) < 2 or group < 1 or shape[1] % group:
        raise CaffeRuleError(f"shuffle_channel_param.group {group} must divide the {shape[1]} "
                             f"channels of the input {tuple(shape)}")
    if group == 1:
        return [(sym.identity(x, name=cx.node, attr=cx.attr), tuple(shape))]
    split = sym.reshape(x, shape=(0, -4, group, -1, -2), name=cx.sub("split"))
    swapped = sym.swapaxes(split, dim1=1, dim2=2, name=cx.sub("swap"))
    return [(sym.reshape(swapped, shape=(0, -3, -2), name=cx.node, attr=cx.attr),
             tuple(shape))]


@register("Axpy", doc="a * x + y with a per-channel a (N, C, 1, 1)")
def axpy(cx):
    """a * x + y with a per-channel a (N, C, 1, 1)."""
    _only(cx, 3)
    a, x, y = cx.bottoms
    a_shape, x_shape, y_shape = (tuple(s) for s in cx.bottom_shapes)
    if x_shape != y_shape or a_shape[:2] != x_shape[:2] or any(d != 1 for d in a_shape[2:]):
        raise CaffeRuleError(f"Axpy takes a (N, C, 1, 1), x and y of one shape (N, C, H, W); got "
                             f"{a_shape}, {x_shape}, {y_shape}")
    scaled = sym.broadcast_mul(x, a, name=cx.sub("scale"))
    return [(sym.elemwise_add(scaled, y, name=cx.node, attr=cx.attr), x_shape)]


# -- ROIPooling (Fast/Faster R-CNN) ------------------------------------------------------------------

@register("ROIPooling", doc="ROIPooling op (pooled_h, pooled_w, spatial_scale; inference only)")
def roi_pooling(cx):
    """ROIPooling op (pooled_h, pooled_w, spatial_scale; inference only)."""
    _only(cx, 2)
    data, rois = (tuple(s) for s in cx.bottom_shapes)
    p = ForkParam(cx.layer, "roi_pooling_param")
    pooled = (int(p.get("pooled_h", 0)), int(p.get("pooled_w", 0)))
    if min(pooled) < 1:
        raise CaffeRuleError(f"roi_pooling_param pooled_h and pooled_w must be positive; got "
                             f"{pooled}")
    if len(data) != 4 or int(np.prod(rois)) % 5 or rois[-1] != 5:
        raise CaffeRuleError(f"ROIPooling takes data (N, C, H, W) and rois (R, 5); got {data} "
                             f"and {rois}")
    boxes = sym.reshape(cx.bottoms[1], shape=(-1, 5), name=cx.sub("rois"))
    out = sym.ROIPooling(cx.bottoms[0], boxes, pooled_size=pooled,
                         spatial_scale=float(np.float32(p.get("spatial_scale", 1.0))),
                         name=cx.node, attr=cx.attr)
    return [(out, (int(np.prod(rois)) // 5, data[1]) + pooled)]


@register("PSROIPooling", doc="PSROIPooling op (output_dim, group_size, spatial_scale; "
                              "inference only)")
def psroi_pooling(cx):
    """PSROIPooling op (output_dim, group_size, spatial_scale; inference only)."""
    _only(cx, 2)
    data, rois = (tuple(s) for s in cx.bottom_shapes)
    p = ForkParam(cx.layer, "psroi_pooling_param")
    dim, group = int(p.get("output_dim", 0)), int(p.get("group_size", 0))
    if dim < 1 or group < 1:
        raise CaffeRuleError(f"psroi_pooling_param output_dim and group_size must be positive; "
                             f"got {dim} and {group}")
    if len(data) != 4 or data[1] != dim * group * group or rois[-1] != 5:
        raise CaffeRuleError(f"PSROIPooling takes data (N, output_dim * group_size^2 = "
                             f"{dim * group * group}, H, W) and rois (R, 5); got {data} and "
                             f"{rois}")
    boxes = sym.reshape(cx.bottoms[1], shape=(-1, 5), name=cx.sub("rois"))
    out = sym.PSROIPooling(cx.bottoms[0], boxes, output_dim=dim, group_size=group,
                           spatial_scale=float(np.float32(p.get("spatial_scale", 1.0))),
                           name=cx.node, attr=cx.attr)
    return [(out, (int(np.prod(rois)) // 5, dim, group, group))]
