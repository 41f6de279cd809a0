"""Converters for the detection fork layers: the SSD family (Permute, PriorBox,
DetectionOutput, Normalize), Proposal, ROIPooling, PSROIPooling, ShuffleChannel and Axpy.

Their parameter messages (``permute_param``, ``prior_box_param``, ...) are
forks': the prototxt reader keeps the ones BVLC's schema lacks as unknown
fields, and the schema declares those whose fork field numbers do not collide
with BVLC's, so binary files carrying them decode too (see
:data:`FORK_NUMBERS` for the ones that collide). :class:`ForkParam` reads
them either way. The rules are SSD Caffe's (RefineDet's for DetectionOutput's
ARM bottoms), which OpenCV's importer follows; PriorBox, DetectionOutput and
Proposal become the engine ops of the same names
(:mod:`deepkit_engine.ops.detection`). DetectionOutput's top is
``(1, 1, R, 7)`` with R the most detections that can be kept (keep_top_k per
image): the rows after the detections are zero, as OpenCV pads them, where
Caffe's top has exactly the detections.
"""
import numpy as np

from deepkit_engine import symbol as sym

from . import schema
from .layers import Unsupported, register
from .shapes import CaffeRuleError, canonical_axis

__all__ = ["ForkParam", "FORK_FIELDS", "FORK_NUMBERS", "any_fork_param", "permute", "prior_box",
           "detection_output", "normalize", "proposal", "shuffle_channel", "axpy", "roi_pooling",
           "psroi_pooling"]

#: The fork parameter fields these converters read.
FORK_FIELDS = ("permute_param", "prior_box_param", "detection_output_param", "norm_param",
               "shuffle_channel_param", "interp_param", "roi_pooling_param",
               "psroi_pooling_param", "proposal_param", "upsample_param", "resize_param")

#: Fork parameter blocks whose LayerParameter field number BVLC uses for another message:
#: ``{name: [(number, BVLC's field at that number, the fork's message)]}``. In a binary
#: file such a block decodes as BVLC's message; its fields (most of them skipped for
#: their wire types) are read back by number with the fork's message.
FORK_NUMBERS = {
    "interp_param": [(143, "input_param", "InterpParameter")],            # PSPNet, DeepLab
    "upsample_param": [(137, "embed_param", "UpsampleParameter")],        # SegNet
}


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
        if not self.values:
            self.values = _reinterpreted(layer, name)

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


def any_fork_param(layer, name):
    """A :class:`ForkParam` of ``name``, else of the fields of every fork block of the layer.

    OpenCV reads a fork layer's fields from whichever parameter block holds
    them (its ``Resize`` layer has no block of its own).
    """
    p = ForkParam(layer, name)
    if not p.values:
        for uf in getattr(layer, "unknown_fields", []):
            if str(uf.name or "").endswith("_param") and isinstance(uf.value, dict):
                p.values.update(uf.value)
    return p


def _reinterpreted(layer, name):
    """A fork block decoded as the BVLC message at its field number, read back by number."""
    for _number, bvlc_name, fork_message in FORK_NUMBERS.get(name, ()):
        try:
            if not layer.has(bvlc_name):
                continue
            msg = getattr(layer, bvlc_name)
        except (AttributeError, KeyError):
            continue
        fields = schema.MESSAGES.get(fork_message, {})
        by_number = {f["number"]: (n, f) for n, f in fields.items()}
        values = {}
        for uf in getattr(msg, "unknown_fields", []):
            if uf.number in by_number and isinstance(uf.value, int):
                field_name, field = by_number[uf.number]
                values.setdefault(field_name, []).append(_wire_scalar(uf.value, field))
        bvlc_fields = schema.MESSAGES.get(msg.type_name, {})
        for field_name, value in msg.fields():
            number = bvlc_fields.get(field_name, {}).get("number")
            if number in by_number and not hasattr(value, "fields"):
                fork_name, field = by_number[number]
                items = value if isinstance(value, (list, tuple)) else [value]
                values.setdefault(fork_name, []).extend(_wire_scalar(int(v), field)
                                                        for v in items)
        if values:
            return values
    return {}


def _wire_scalar(raw, field):
    """A varint or fixed32 read back as the fork field's type."""
    kind = field["type"]
    if kind == "float":
        return float(np.frombuffer(np.uint32(raw & 0xFFFFFFFF).tobytes(), np.float32)[0])
    if kind == "bool":
        return bool(raw)
    if kind in ("int32", "int64"):
        raw &= (1 << 64) - 1
        return raw - (1 << 64) if raw >= 1 << 63 else raw
    return raw


def _message_values(msg):
    """A schema Message's set fields as ``{name: [values]}`` (the skipped fields' form).

    Fields the schema's message lacks (another fork's, skipped by the text
    parser) are included by name.
    """
    out = {}
    for name, value in msg.fields():
        if hasattr(value, "fields"):
            value = _message_values(value)
        out[name] = list(value) if isinstance(value, (list, tuple)) else [value]
    for uf in getattr(msg, "unknown_fields", []):
        if uf.name and uf.name not in out:
            value = uf.value
            out[uf.name] = list(value) if isinstance(value, (list, tuple)) else [value]
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
                          "step, offset, img_size; OpenCV's explicit width/height and 1-2 "
                          "offset_h/offset_w pairs)")
def prior_box(cx):
    """PriorBox op (min/max sizes, aspect ratios, flip, clip, variances, step, offset, img_size).

    OpenCV's ``offset_h``/``offset_w`` lists give, per position and box size, one box per
    (offset_h, offset_w) pair, in that order.
    """
    _only(cx, 2)
    p = ForkParam(cx.layer, "prior_box_param")
    widths, heights = p.list("width"), p.list("height")
    if widths or heights:
        if len(widths) != len(heights):
            raise CaffeRuleError(f"prior_box_param width and height give one size each per "
                                 f"prior: got {len(widths)} widths and {len(heights)} heights")
        if p.list("min_size") or p.list("max_size") or p.list("aspect_ratio"):
            raise CaffeRuleError("prior_box_param width/height replace min_size, max_size and "
                                 "aspect_ratio (OpenCV's rule): give one or the other")
    offsets = _offset_pairs(p)
    data, image = cx.bottom_shapes
    if len(data) != 4 or len(image) != 4:
        raise CaffeRuleError(f"PriorBox takes 4-D bottoms; got {tuple(data)} and {tuple(image)}")
    img_h, img_w = _pair(p, "img_size", "img_h", "img_w", "the image size")
    step_h, step_w = _pair(p, "step", "step_h", "step_w", "the step")
    variances = [float(v) for v in p.list("variance")]
    if len(variances) > 1 and len(variances) != 4:
        raise CaffeRuleError(f"prior_box_param.variance must be 1 or 4 values, got {variances}")
    kwargs = dict(min_size=_text(p.list("min_size")), max_size=_text(p.list("max_size")),
                  aspect_ratio=_text(p.list("aspect_ratio")), width=_text(widths),
                  height=_text(heights), flip=bool(p.get("flip", True)),
                  clip=bool(p.get("clip", False)), variance=_text(variances) or "(0.1,)",
                  img_h=img_h, img_w=img_w, step_h=step_h, step_w=step_w,
                  offset=float(p.get("offset", 0.5)))
    if not p.list("min_size") and not widths:
        raise CaffeRuleError("prior_box_param.min_size (or width and height) must be given")
    count = len(widths) or _num_priors(p.list("min_size"), p.list("max_size"),
                                       p.list("aspect_ratio"), kwargs["flip"])
    top = (1, 2, data[2] * data[3] * count * len(offsets or [None]) * 4)
    if offsets is None:
        out = sym.PriorBox(cx.bottoms[0], cx.bottoms[1], name=cx.node, attr=cx.attr, **kwargs)
        return [(out, top)]
    return [(_offset_priors(cx, kwargs, offsets, data, image, count), top)]


def _offset_pairs(p):
    """OpenCV's ``offset_h``/``offset_w`` lists as ``[(offset_h, offset_w)]``, or ``None``."""
    hs, ws = p.list("offset_h"), p.list("offset_w")
    if not hs and not ws:
        return None
    if p.has("offset"):
        raise CaffeRuleError("prior_box_param: either offset or offset_h/offset_w, not both "
                             "(OpenCV's rule)")
    if not hs or not ws or len(hs) != len(ws):
        raise CaffeRuleError(f"prior_box_param offset_h and offset_w give one offset pair each: "
                             f"got {len(hs)} offset_h and {len(ws)} offset_w values")
    if len(hs) > 2:
        raise Unsupported(f"prior_box_param with {len(hs)} offset_h/offset_w pairs: OpenCV sizes "
                          f"its output for 2 x ({len(hs)} - 1) priors per box size but writes "
                          f"{len(hs)}, leaving the rest unset; only 1 or 2 pairs match it",
                          "use at most two offset pairs")
    return [(float(np.float32(h)), float(np.float32(w))) for h, w in zip(hs, ws)]


def _offset_priors(cx, kwargs, offsets, data, image, count):
    """PriorBox with OpenCV's offset pairs: per position and box size, one box per pair.

    Each pair's boxes are the boxes for offset 0 shifted by ``offset * step`` (over the image
    size); their variances repeat per prior, so the variance channel is one PriorBox's tiled.
    """
    img_h = kwargs["img_h"] or image[2]
    img_w = kwargs["img_w"] or image[3]
    step_h = kwargs["step_h"] or img_h / data[2]
    step_w = kwargs["step_w"] or img_w / data[3]
    base = sym.PriorBox(cx.bottoms[0], cx.bottoms[1], name=cx.sub("base"),
                        **dict(kwargs, offset=0.0, clip=False))
    boxes = sym.reshape(sym.slice_axis(base, axis=1, begin=0, end=1, name=cx.sub("boxes")),
                        shape=(-1, count, 2, 2), name=cx.sub("corners"))
    per_pair = []
    for k, (off_h, off_w) in enumerate(offsets):
        xs = sym.slice_axis(boxes, axis=3, begin=0, end=1, name=cx.sub(f"x{k}"))
        ys = sym.slice_axis(boxes, axis=3, begin=1, end=2, name=cx.sub(f"y{k}"))
        xs = sym.add(xs, float(off_w * step_w / img_w), name=cx.sub(f"shift_x{k}"))
        ys = sym.add(ys, float(off_h * step_h / img_h), name=cx.sub(f"shift_y{k}"))
        per_pair.append(sym.concat(xs, ys, dim=3, name=cx.sub(f"pair{k}")))
    stacked = sym.stack(*per_pair, axis=2, name=cx.sub("offsets")) if len(per_pair) > 1 \
        else per_pair[0]
    flat = sym.reshape(stacked, shape=(1, 1, -1), name=cx.sub("flat"))
    if kwargs["clip"]:
        flat = sym.clip(flat, a_min=0.0, a_max=1.0, name=cx.sub("clip"))
    variances = sym.slice_axis(base, axis=1, begin=1, end=2, name=cx.sub("variances"))
    if len(offsets) > 1:
        variances = sym.tile(variances, reps=(1, 1, len(offsets)), name=cx.sub("tile"))
    return sym.concat(flat, variances, dim=1, name=cx.node, attr=cx.attr)


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

@register("DetectionOutput", doc="DetectionOutput op (decode, per-class NMS, keep_top_k; "
                                 "RefineDet's arm_conf/arm_loc bottoms); rows past the "
                                 "detections are zero, as OpenCV pads them")
def detection_output(cx):
    """DetectionOutput op (decode, per-class NMS, keep_top_k; RefineDet's ARM bottoms)."""
    if len(cx.bottoms) not in (3, 4, 5):
        raise CaffeRuleError(f"DetectionOutput takes 3 bottoms (loc, conf, priors), or 4-5 with "
                             f"RefineDet's arm_conf and arm_loc; got {len(cx.bottoms)}")
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
                  clip=bool(p.get("clip", False)),
                  arm_inputs=len(cx.bottoms) - 3,
                  objectness_score=float(np.float32(p.get("objectness_score", 0.01))))
    if len(cx.bottoms) == 5 and not kwargs["share_location"]:
        raise CaffeRuleError("DetectionOutput's arm_loc bottom refines shared boxes: "
                             "share_location must be true (RefineDet's rule)")
    loc, conf, prior = cx.bottoms[:3]
    loc_shape, _, prior_shape = cx.bottom_shapes[:3]
    n = loc_shape[0]
    flat = [sym.reshape(b, shape=(0, -1), name=cx.sub(what))
            for b, what in zip([loc, conf] + list(cx.bottoms[3:]),
                               ("loc", "conf", "arm_conf", "arm_loc"))]
    out = sym.DetectionOutput(flat[0], flat[1], prior, *flat[2:], name=cx.node, attr=cx.attr,
                              **kwargs)
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


# -- Proposal (Faster R-CNN's RPN, OpenCV's layer) ------------------------------------------------

@register("Proposal", doc="Proposal op as OpenCV's layer (feat_stride, base_size, ratio, scale, "
                          "pre/post_nms_topn, nms_thresh; rois and optional scores tops; "
                          "one image; inference only)")
def proposal(cx):
    """Proposal op as OpenCV's Proposal layer (rois, and the scores as an optional second top)."""
    _only(cx, 3)
    if cx.ntops not in (1, 2):
        raise CaffeRuleError(f"Proposal gives 1 top (rois) or 2 (rois, scores); the prototxt "
                             f"names {cx.ntops}")
    p = ForkParam(cx.layer, "proposal_param")
    ratios, scales = p.list("ratio"), p.list("scale")
    if not ratios or not scales:
        raise CaffeRuleError(f"proposal_param needs ratio and scale values (OpenCV requires "
                             f"both); got ratio {ratios} and scale {scales}")
    kwargs = {}
    for key, default in (("feat_stride", 16), ("base_size", 16), ("pre_nms_topn", 6000),
                         ("post_nms_topn", 300)):
        kwargs[key] = int(p.get(key, default))
        if kwargs[key] < 1:
            raise CaffeRuleError(f"proposal_param.{key} must be positive; got {kwargs[key]}")
    scores, deltas, _info = (tuple(s) for s in cx.bottom_shapes)
    anchors = len(ratios) * len(scales)
    if len(scores) != 4 or scores[1] != 2 * anchors or scores[0] != 1:
        raise CaffeRuleError(f"Proposal's scores bottom must be (1, 2 x {anchors} anchors, H, W) "
                             f"for {len(ratios)} ratios x {len(scales)} scales (one image); got "
                             f"{scores}")
    if deltas != (1, 4 * anchors) + scores[2:]:
        raise CaffeRuleError(f"Proposal's deltas bottom must be {(1, 4 * anchors) + scores[2:]}; "
                             f"got {deltas}")
    out = sym.Proposal(*cx.bottoms, ratio=_text(ratios), scale=_text(scales),
                       nms_thresh=float(np.float32(p.get("nms_thresh", 0.7))), name=cx.node,
                       attr=cx.attr, **kwargs)
    rows = kwargs["post_nms_topn"]
    tops = [(out[0], (rows, 5)), (out[1], (rows, 1))]
    return tops[:cx.ntops]


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
