"""Detection ops with Caffe's rules: ``PriorBox``, ``DetectionOutput`` (SSD, RefineDet),
``Proposal`` (Faster R-CNN, OpenCV's rules), ``ROIPooling`` (Fast R-CNN) and ``PSROIPooling``
(R-FCN).

``PriorBox`` gives the default boxes of one feature map: its output depends
only on the shapes of its inputs (the feature map and the image), so its
gradient is zero and it is declared not differentiable. ``DetectionOutput``
decodes box offsets against the priors and keeps the best boxes per class
with non-maximum suppression: it is inference-only and refuses gradients
with an error. Both compute on the host (numpy) and write the result to the
output's device. ``Proposal``, ``ROIPooling`` and ``PSROIPooling`` are inference-only too.

Float lists (sizes, aspect ratios, variances) are passed as text, such as
``min_size='(30.0, 60.0)'``.
"""
import ast
import math

import numpy as np

from ..base import DeepkitError, ParamError, ShapeError
from .registry import OpDef, Param, Shape, register

__all__ = ["prior_boxes", "decode_boxes", "nms_indices", "detect", "proposal_anchors", "proposals",
           "roi_pool", "psroi_pool"]

_CODE_TYPES = ("CORNER", "CENTER_SIZE", "CORNER_SIZE")


def _floats(op, name, text):
    """A float list parameter given as text: ``'(1.0, 2.0)'``, ``'2'`` or ``''``."""
    if text is None or not str(text).strip():
        return ()
    try:
        value = ast.literal_eval(str(text).strip())
    except (ValueError, SyntaxError):
        raise ParamError(f"{op}: param {name}={text!r} is not a list of numbers such as "
                         "'(1.0, 2.0)'", op=op, param=name, value=text) from None
    values = value if isinstance(value, (list, tuple)) else (value,)
    try:
        return tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ParamError(f"{op}: param {name}={text!r} is not a list of numbers",
                         op=op, param=name, value=text) from None


def _host(xp, array):
    """A device array as numpy."""
    return xp.asnumpy(array) if hasattr(xp, "asnumpy") else np.asarray(array)


# -- PriorBox ------------------------------------------------------------------------------

def _prior_setup(attrs):
    """``(sizes, variances)``: each prior's (width, height) at one position, in Caffe's order.

    The sizes come from min_size (its square, the sqrt(min * max) square, then
    each aspect ratio), or, as OpenCV's extension, from explicit ``width`` and
    ``height`` lists (one prior per pair).
    """
    op = "PriorBox"
    mins = _floats(op, "min_size", attrs.min_size)
    maxs = _floats(op, "max_size", attrs.max_size)
    widths = _floats(op, "width", attrs.width)
    heights = _floats(op, "height", attrs.height)
    ratio_list = _floats(op, "aspect_ratio", attrs.aspect_ratio)
    variances = _floats(op, "variance", attrs.variance) or (0.1,)
    if len(variances) not in (1, 4) or any(v <= 0 for v in variances):
        raise ParamError(f"{op}: variance {variances} must be one or four positive values",
                         op=op, param="variance", value=attrs.variance)
    if widths or heights:
        if len(widths) != len(heights) or any(v <= 0 for v in widths + heights):
            raise ParamError(f"{op}: width {widths} and height {heights} must give one "
                             "positive size each per prior", op=op, param="width",
                             value=attrs.width)
        if mins or maxs or ratio_list:
            raise ParamError(f"{op}: explicit width/height replace min_size, max_size and "
                             f"aspect_ratio; got min_size {mins}, max_size {maxs}, "
                             f"aspect_ratio {ratio_list}", op=op, param="min_size",
                             value=attrs.min_size)
        return list(zip(widths, heights)), variances
    if not mins:
        raise ParamError(f"{op}: param min_size must give at least one size (or give "
                         "width and height)", op=op, param="min_size", value=attrs.min_size)
    if any(m <= 0 for m in mins):
        raise ParamError(f"{op}: min_size {mins} must be positive", op=op, param="min_size",
                         value=attrs.min_size)
    if maxs and (len(maxs) != len(mins) or any(b <= a for a, b in zip(mins, maxs))):
        raise ParamError(f"{op}: max_size {maxs} must give one size per min_size {mins}, each "
                         "larger than its min_size", op=op, param="max_size",
                         value=attrs.max_size)
    ratios = [1.0]
    for ar in ratio_list:
        if any(abs(ar - r) < 1e-6 for r in ratios):
            continue
        ratios.append(ar)
        if attrs.flip:
            ratios.append(1.0 / ar)
    sizes = []
    for s, min_size in enumerate(mins):
        sizes.append((min_size, min_size))
        if maxs:
            side = math.sqrt(min_size * maxs[s])
            sizes.append((side, side))
        for ar in ratios:
            if abs(ar - 1.0) < 1e-6:
                continue
            sizes.append((min_size * math.sqrt(ar), min_size / math.sqrt(ar)))
    return sizes, variances


def _num_priors(attrs):
    return len(_prior_setup(attrs)[0])


def prior_boxes(attrs, layer_hw, image_hw):
    """The prior boxes and variances of a ``layer_hw`` feature map (Caffe's loop order).

    Args:
        attrs: The PriorBox parameters.
        layer_hw: ``(height, width)`` of the feature map.
        image_hw: ``(height, width)`` of the image input.

    Returns:
        A float64 array ``(2, height * width * num_priors * 4)``: boxes
        (xmin, ymin, xmax, ymax, normalized), then the variances.
    """
    sizes, variances = _prior_setup(attrs)
    layer_h, layer_w = layer_hw
    img_h = attrs.img_h or image_hw[0]
    img_w = attrs.img_w or image_hw[1]
    step_h = attrs.step_h or img_h / layer_h
    step_w = attrs.step_w or img_w / layer_w
    sizes = np.asarray(sizes, dtype=np.float64)
    cy = (np.arange(layer_h, dtype=np.float64) + attrs.offset) * step_h
    cx = (np.arange(layer_w, dtype=np.float64) + attrs.offset) * step_w
    cyy, cxx = np.meshgrid(cy, cx, indexing="ij")
    cxx, cyy = cxx[..., None], cyy[..., None]
    boxes = np.stack([(cxx - sizes[:, 0] / 2) / img_w, (cyy - sizes[:, 1] / 2) / img_h,
                      (cxx + sizes[:, 0] / 2) / img_w, (cyy + sizes[:, 1] / 2) / img_h], axis=-1)
    boxes = boxes.reshape(-1)
    if attrs.clip:
        boxes = np.clip(boxes, 0.0, 1.0)
    var = np.broadcast_to(np.asarray(variances if len(variances) == 4 else variances * 4),
                          (boxes.size // 4, 4)).reshape(-1)
    return np.stack([boxes, var])


def _prior_box_shape(attrs, in_shapes):
    data, image = in_shapes
    if data is None:
        return in_shapes, [None]
    if len(data) != 4 or (image is not None and len(image) != 4):
        raise ShapeError(f"PriorBox takes 4-D data (N, C, H, W) and image; got data {data} and "
                         f"image {image}", argument="data", expected="(N, C, H, W)",
                         actual=data)
    n = data[2] * data[3] * _num_priors(attrs) * 4
    return in_shapes, [(1, 2, n)]


def _prior_box_type(attrs, in_dtypes):
    return in_dtypes, [np.dtype(np.float32) if in_dtypes[0] is None else in_dtypes[0]]


def _prior_box_forward(xp, attrs, inputs, outputs, req):
    if req[0] == "null":
        return
    data, image = inputs
    result = prior_boxes(attrs, data.shape[2:], image.shape[2:])
    outputs[0][...] = xp.asarray(result.reshape(outputs[0].shape), dtype=outputs[0].dtype)


register(OpDef(
    "PriorBox", _prior_box_forward, inputs=("data", "image"),
    params={"min_size": Param(str, "", "Box sizes in pixels, as text: '(30.0,)'."),
            "max_size": Param(str, "", "One larger size per min_size (a sqrt(min*max) square)."),
            "aspect_ratio": Param(str, "", "Aspect ratios besides 1 (duplicates ignored)."),
            "width": Param(str, "", "Explicit prior widths in pixels (OpenCV's extension; "
                                    "with height, instead of min_size)."),
            "height": Param(str, "", "Explicit prior heights, one per width."),
            "flip": Param(bool, True, "Add 1/ratio for each aspect ratio."),
            "clip": Param(bool, False, "Clip the boxes to [0, 1]."),
            "variance": Param(str, "(0.1,)", "One or four variances (the second channel)."),
            "img_h": Param(float, 0.0, "Image height (0: the image input's).", min=0.0),
            "img_w": Param(float, 0.0, "Image width (0: the image input's).", min=0.0),
            "step_h": Param(float, 0.0, "Vertical step (0: image height / layer height).",
                            min=0.0),
            "step_w": Param(float, 0.0, "Horizontal step (0: image width / layer width).",
                            min=0.0),
            "offset": Param(float, 0.5, "Box centre offset within a cell, in steps.")},
    infer_shape=_prior_box_shape, infer_type=_prior_box_type, partial_infer=True,
    differentiable=False,
    doc="SSD prior (default) boxes of a feature map, as Caffe's PriorBox layer: output (1, 2, "
        "H*W*num_priors*4), the normalized boxes (xmin, ymin, xmax, ymax) for each position "
        "(row-major), each min_size (its square, the max_size square, then each aspect "
        "ratio) or each explicit (width, height) pair, then their variances. It depends only on the input shapes (no gradient)."))


# -- DetectionOutput -----------------------------------------------------------------------

def decode_boxes(priors, variances, loc, code_type, variance_encoded, clip=False):
    """Caffe's ``DecodeBBox`` for many boxes.

    Args:
        priors: ``(P, 4)`` prior boxes (xmin, ymin, xmax, ymax).
        variances: ``(P, 4)``.
        loc: ``(P, 4)`` predicted offsets.
        code_type: ``'CORNER'``, ``'CENTER_SIZE'`` or ``'CORNER_SIZE'``.
        variance_encoded: The offsets already include the variances.
        clip: Clip the decoded boxes to [0, 1].

    Returns:
        ``(P, 4)`` decoded boxes.
    """
    v = np.ones_like(variances) if variance_encoded else variances
    pw = priors[:, 2] - priors[:, 0]
    ph = priors[:, 3] - priors[:, 1]
    if code_type == "CORNER":
        out = priors + v * loc
    elif code_type == "CORNER_SIZE":
        scale = np.stack([pw, ph, pw, ph], axis=1)
        out = priors + v * loc * scale
    else:
        pcx = (priors[:, 0] + priors[:, 2]) / 2
        pcy = (priors[:, 1] + priors[:, 3]) / 2
        cx = v[:, 0] * loc[:, 0] * pw + pcx
        cy = v[:, 1] * loc[:, 1] * ph + pcy
        w = np.exp(v[:, 2] * loc[:, 2]) * pw
        h = np.exp(v[:, 3] * loc[:, 3]) * ph
        out = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return np.clip(out, 0.0, 1.0) if clip else out


def _box_size(b, normalized=True):
    """Caffe's ``BBoxSize``: 0 for an inverted box; pixel boxes count both end pixels."""
    w, h = b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]
    area = w * h if normalized else (w + 1) * (h + 1)
    return np.where((w < 0) | (h < 0), 0.0, area)


def _overlaps(box, size, others, other_sizes, normalized=True):
    """Caffe's ``JaccardOverlap`` of ``box`` with each of ``others``."""
    inter = np.stack([np.maximum(others[:, 0], box[0]), np.maximum(others[:, 1], box[1]),
                      np.minimum(others[:, 2], box[2]), np.minimum(others[:, 3], box[3])],
                     axis=1)
    inter_size = _box_size(inter, normalized)
    with np.errstate(divide="ignore", invalid="ignore"):
        overlap = inter_size / (size + other_sizes - inter_size)
    return np.where(inter_size > 0, overlap, 0.0)


def nms_indices(boxes, scores, score_threshold, nms_threshold, top_k, eta=1.0, limit=None,
                normalized=True):
    """Caffe's ``ApplyNMSFast``: the kept indices, best score first.

    Args:
        boxes: ``(P, 4)`` boxes.
        scores: ``(P,)`` scores.
        score_threshold: Candidates need a score above it.
        nms_threshold: A box is dropped when its overlap (IoU) with a kept
            box is above it.
        top_k: Consider only the best ``top_k`` candidates (-1: all).
        eta: Adaptive threshold factor (1: fixed).
        limit: Stop once this many boxes are kept (``None``: no limit).
        normalized: Boxes in [0, 1] coordinates; ``False`` for pixel boxes,
            whose widths and heights count both end pixels (``x2 - x1 + 1``).

    Returns:
        The kept indices.
    """
    candidates = np.nonzero(scores > score_threshold)[0]
    order = candidates[np.argsort(-scores[candidates], kind="stable")]
    if top_k > -1:
        order = order[:top_k]
    kept = []
    threshold = nms_threshold
    sizes = _box_size(boxes, normalized)
    for idx in order:
        keep = True
        if kept:
            keep = bool(np.all(_overlaps(boxes[idx], sizes[idx], boxes[kept], sizes[kept],
                                         normalized) <= threshold))
        if keep:
            kept.append(int(idx))
            if limit is not None and len(kept) >= limit:
                break
            if eta < 1 and threshold > 0.5:
                threshold *= eta
    return kept


def _max_rows(attrs, num_priors):
    """The rows reserved per image: keep_top_k, else every candidate NMS may keep."""
    classes = attrs.num_classes - (1 if 0 <= attrs.background_label_id < attrs.num_classes
                                   else 0)
    per_class = num_priors if attrs.top_k < 0 else min(attrs.top_k, num_priors)
    bound = per_class * classes
    return max(1, min(attrs.keep_top_k, bound) if attrs.keep_top_k > -1 else bound)


def detect(attrs, loc, conf, prior, arm_conf=None, arm_loc=None):
    """Caffe's DetectionOutput forward on host arrays (with RefineDet's ARM inputs).

    Args:
        attrs: The DetectionOutput parameters.
        loc: ``(N, P * L * 4)`` box offsets (L = 1 when share_location, else num_classes).
        conf: ``(N, P * num_classes)`` class scores (after softmax).
        prior: ``(1 or N, 2, P * 4)`` priors and variances (``(1 or N, 1, P * 4)``,
            priors only, where the variances are encoded in ``loc``).
        arm_conf: ``(N, P * 2)`` objectness scores, or ``None``: a prior whose
            object score is below ``objectness_score`` gets score 1 for class 0
            and 0 for the others (RefineDet's rule).
        arm_loc: ``(N, P * 4)`` offsets that first refine the priors, or ``None``.

    Returns:
        A list of ``(image, label, score, xmin, ymin, xmax, ymax)`` rows, per
        image and label ascending, best score first within a label (Caffe's order).
    """
    n = loc.shape[0]
    num_classes = attrs.num_classes
    num_priors = prior.shape[2] // 4
    loc_classes = 1 if attrs.share_location else num_classes
    loc = loc.reshape(n, num_priors, loc_classes, 4).astype(np.float64)
    conf = conf.reshape(n, num_priors, num_classes).astype(np.float64)
    if arm_conf is not None:
        objectness = arm_conf.reshape(n, num_priors, 2)[:, :, 1]
        background = np.zeros(num_classes)
        background[0] = 1.0
        conf = np.where((objectness < np.float32(attrs.objectness_score))[..., None],
                        background, conf)
    rows = []
    for i in range(n):
        p = prior[i if prior.shape[0] == n else 0].astype(np.float64)
        priors = p[0].reshape(-1, 4)
        variances = p[1].reshape(-1, 4) if len(p) > 1 else np.ones_like(priors)
        if arm_loc is not None:
            priors = decode_boxes(priors, variances,
                                  arm_loc[i].reshape(num_priors, 4).astype(np.float64),
                                  attrs.code_type, attrs.variance_encoded_in_target)
        decoded = [decode_boxes(priors, variances, loc[i, :, c], attrs.code_type,
                                attrs.variance_encoded_in_target, attrs.clip)
                   for c in range(loc_classes)]
        found = {}
        for c in range(num_classes):
            if c == attrs.background_label_id:
                continue
            boxes = decoded[0 if attrs.share_location else c]
            found[c] = nms_indices(boxes, conf[i, :, c], attrs.confidence_threshold,
                                   attrs.nms_threshold, attrs.top_k, attrs.eta)
        total = sum(len(v) for v in found.values())
        if attrs.keep_top_k > -1 and total > attrs.keep_top_k:
            pairs = [(conf[i, idx, c], c, idx) for c, idxs in found.items() for idx in idxs]
            pairs.sort(key=lambda t: -t[0])
            best = pairs[:attrs.keep_top_k]
            found = {}
            for score, c, idx in best:
                found.setdefault(c, []).append(idx)
        for c in sorted(found):
            boxes = decoded[0 if attrs.share_location else c]
            for idx in found[c]:
                rows.append((i, c, conf[i, idx, c]) + tuple(boxes[idx]))
    return rows


def _detection_inputs(attrs):
    return ("loc", "conf", "prior") + ("arm_conf", "arm_loc")[:attrs.arm_inputs]


def _detection_shape(attrs, in_shapes):
    loc, conf, prior = in_shapes[:3]
    if loc is None or conf is None or prior is None:
        return in_shapes, [None]
    channels = (1, 2) if attrs.variance_encoded_in_target else (2,)
    if len(prior) != 3 or prior[1] not in channels or prior[2] % 4:
        raise ShapeError(f"input 'prior' has shape {prior}; DetectionOutput needs (1, 2, "
                         "num_priors * 4) from PriorBox (or (1, 1, num_priors * 4) without "
                         "variances when variance_encoded_in_target)", argument="prior",
                         expected="(1, 2, num_priors*4)", actual=prior)
    num_priors = prior[2] // 4
    loc_classes = 1 if attrs.share_location else attrs.num_classes
    n = loc[0]
    if int(np.prod(loc[1:])) != num_priors * loc_classes * 4:
        raise ShapeError(f"input 'loc' has shape {loc}: {num_priors} priors x {loc_classes} "
                         f"location class(es) x 4 = {num_priors * loc_classes * 4} values per "
                         "image are needed", argument="loc",
                         expected=(n, num_priors * loc_classes * 4), actual=loc)
    if conf[0] != n or int(np.prod(conf[1:])) != num_priors * attrs.num_classes:
        raise ShapeError(f"input 'conf' has shape {conf}: {num_priors} priors x "
                         f"{attrs.num_classes} classes = {num_priors * attrs.num_classes} "
                         f"scores per image (and {n} images) are needed", argument="conf",
                         expected=(n, num_priors * attrs.num_classes), actual=conf)
    if attrs.arm_inputs == 2 and not attrs.share_location:
        raise ShapeError("DetectionOutput: arm_loc refines shared boxes: share_location must "
                         "be true with arm_loc", argument="arm_loc")
    for name, shape, per_prior in zip(("arm_conf", "arm_loc"), in_shapes[3:], (2, 4)):
        if shape is not None and (shape[0] != n or
                                  int(np.prod(shape[1:])) != num_priors * per_prior):
            raise ShapeError(f"input '{name}' has shape {shape}: {num_priors} priors x "
                             f"{per_prior} values per image (and {n} images) are needed",
                             argument=name, expected=(n, num_priors * per_prior),
                             actual=shape)
    return in_shapes, [(1, 1, n * _max_rows(attrs, num_priors), 7)]


def _detection_type(attrs, in_dtypes):
    return in_dtypes, [np.dtype(np.float32) if in_dtypes[0] is None else in_dtypes[0]]


def _detection_forward(xp, attrs, inputs, outputs, req):
    if req[0] == "null":
        return
    loc, conf, prior, *arm = (_host(xp, a) for a in inputs)
    rows = detect(attrs, loc, conf, prior, *arm)
    out = np.zeros(outputs[0].shape, dtype=np.float64)
    if rows:
        out[0, 0, :len(rows)] = np.asarray(rows, dtype=np.float64)[:out.shape[2]]
    outputs[0][...] = xp.asarray(out, dtype=outputs[0].dtype)


def _detection_gradient(F, node, ograds):
    raise DeepkitError(f"DetectionOutput '{node.name}' is inference-only: non-maximum "
                       "suppression has no gradient; train the loc and conf heads with a "
                       "detection loss instead, or wrap the op in BlockGrad")


register(OpDef(
    "DetectionOutput", _detection_forward, inputs=_detection_inputs,
    params={"num_classes": Param(int, 2, "Number of classes, background included.", min=1),
            "share_location": Param(bool, True, "One box per prior for every class."),
            "background_label_id": Param(int, 0, "The background class (-1: none)."),
            "nms_threshold": Param(float, 0.3, "IoU above which NMS drops a box.", min=0.0),
            "top_k": Param(int, -1, "Candidates per class before NMS (-1: all)."),
            "eta": Param(float, 1.0, "Adaptive NMS threshold factor."),
            "code_type": Param(str, "CORNER", "Box encoding.", choices=_CODE_TYPES),
            "variance_encoded_in_target": Param(bool, False, "Offsets include the variances."),
            "keep_top_k": Param(int, -1, "Detections kept per image after NMS (-1: all)."),
            "confidence_threshold": Param(float, -3.4028234663852886e38,
                                          "Candidates need a score above it."),
            "clip": Param(bool, False, "Clip the decoded boxes to [0, 1]."),
            "arm_inputs": Param(int, 0, "RefineDet's inputs: 1 adds arm_conf (objectness), 2 "
                                        "adds arm_conf and arm_loc (prior refinement).",
                                min=0, max=2),
            "objectness_score": Param(float, 0.01, "With arm_conf: priors whose object score "
                                                   "is below it count as background.")},
    infer_shape=_detection_shape, infer_type=_detection_type, partial_infer=True,
    gradient=_detection_gradient,
    doc="SSD detections, as Caffe's DetectionOutput layer: decode `loc` against the priors, "
        "per class keep the boxes above confidence_threshold after non-maximum suppression "
        "(top_k candidates), then the keep_top_k best per image. Output (1, 1, R, 7): rows "
        "(image, label, score, xmin, ymin, xmax, ymax) in Caffe's order (image, label "
        "ascending, best first); the rows after the detections are zero (R is the most "
        "that can be kept). With arm_inputs, RefineDet's rules: priors whose arm_conf object "
        "score is below objectness_score are background (class 0 scores 1), and arm_loc "
        "decodes the priors before loc does. Inference only: it refuses gradients."))


# -- Proposal (Faster R-CNN) ------------------------------------------------------------------

def proposal_anchors(attrs):
    """The (width, height) of each anchor at one position: each ratio, then each scale.

    As OpenCV's ProposalLayer (and py-faster-rcnn's ``generate_anchors``): for
    ratio r the base width is ``round(base_size / sqrt(r))`` and the height
    ``round(width * r)``, each then times every scale.
    """
    op = "Proposal"
    ratios = _floats(op, "ratio", attrs.ratio)
    scales = _floats(op, "scale", attrs.scale)
    if not ratios or not scales or any(v <= 0 for v in ratios + scales):
        raise ParamError(f"{op}: ratio {ratios} and scale {scales} must each give at least one "
                         "positive value", op=op, param="ratio" if not ratios else "scale",
                         value=attrs.ratio if not ratios else attrs.scale)
    sizes = []
    half = np.float32(0.5)
    for r in ratios:
        width = np.floor(np.float32(attrs.base_size) / np.sqrt(np.float32(r)) + half)
        height = np.floor(np.float32(width * np.float32(r)) + half)
        for scale in scales:
            sizes.append((float(np.float32(scale) * width), float(np.float32(scale) * height)))
    return sizes


def proposals(attrs, scores, deltas, im_info):
    """OpenCV's ProposalLayer forward on host arrays (one image).

    Anchors centred at ``(x + 0.5 * base_size / feat_stride) * feat_stride`` on
    the feature grid are shifted by the deltas (centre and log-size offsets),
    clipped to the image (``im_info`` rows, cols), and the best
    ``pre_nms_topn`` by foreground score go through non-maximum suppression
    (pixel boxes) until ``post_nms_topn`` are kept.

    Args:
        attrs: The Proposal parameters.
        scores: ``(1, 2A, H, W)``: A background scores, then A foreground scores.
        deltas: ``(1, 4A, H, W)``: (dx, dy, dw, dh) per anchor.
        im_info: At least two values: image rows and columns.

    Returns:
        ``(boxes, scores)``: the kept ``(K, 4)`` boxes (x1, y1, x2, y2) and their
        ``(K,)`` scores, best first.
    """
    sizes = np.asarray(proposal_anchors(attrs), dtype=np.float64)
    h, w = scores.shape[2:]
    anchors = sizes.shape[0]
    offset = 0.5 * attrs.base_size / attrs.feat_stride
    cy = (np.arange(h, dtype=np.float64) + offset) * attrs.feat_stride
    cx = (np.arange(w, dtype=np.float64) + offset) * attrs.feat_stride
    cyy, cxx = np.meshgrid(cy, cx, indexing="ij")
    cxx, cyy = cxx[..., None], cyy[..., None]
    priors = np.stack([cxx - sizes[:, 0] / 2, cyy - sizes[:, 1] / 2,
                       cxx + sizes[:, 0] / 2 - 1, cyy + sizes[:, 1] / 2 - 1],
                      axis=-1).reshape(-1, 4)
    fg = scores[0, anchors:].astype(np.float64).transpose(1, 2, 0).reshape(-1)
    d = deltas[0].astype(np.float64).transpose(1, 2, 0).reshape(-1, 4)
    pw = priors[:, 2] - priors[:, 0] + 1
    ph = priors[:, 3] - priors[:, 1] + 1
    pcx, pcy = priors[:, 0] + pw / 2, priors[:, 1] + ph / 2
    dcx, dcy = d[:, 0] * pw + pcx, d[:, 1] * ph + pcy
    dw, dh = np.exp(d[:, 2]) * pw, np.exp(d[:, 3]) * ph
    boxes = np.stack([dcx - dw / 2, dcy - dh / 2, dcx + dw / 2, dcy + dh / 2], axis=1)
    info = np.asarray(im_info, dtype=np.float32).reshape(-1)
    rows, cols = int(info[0]), int(info[1])
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0.0, cols - 1)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0.0, rows - 1)
    kept = nms_indices(boxes, fg, 0.0, attrs.nms_thresh, attrs.pre_nms_topn,
                       limit=attrs.post_nms_topn, normalized=False)
    return boxes[kept], fg[kept]


def _proposal_shape(attrs, in_shapes):
    scores, deltas, info = in_shapes
    rows = attrs.post_nms_topn
    if scores is None or deltas is None:
        return in_shapes, [(rows, 5), (rows, 1)]
    anchors = len(_floats("Proposal", "ratio", attrs.ratio)) * \
        len(_floats("Proposal", "scale", attrs.scale))
    if len(scores) != 4 or scores[1] != 2 * anchors:
        raise ShapeError(f"input 'scores' has shape {scores}; Proposal needs (1, 2 x {anchors} "
                         "anchors, H, W): background then foreground scores", argument="scores",
                         expected=f"(1, {2 * anchors}, H, W)", actual=scores)
    if scores[0] != 1:
        raise ShapeError(f"input 'scores' has shape {scores}: Proposal takes one image",
                         argument="scores", expected="batch 1", actual=scores)
    if tuple(deltas) != (1, 4 * anchors) + tuple(scores[2:]):
        raise ShapeError(f"input 'deltas' has shape {deltas}; Proposal needs (1, 4 x {anchors} "
                         f"anchors, {scores[2]}, {scores[3]}) to match the scores {scores}",
                         argument="deltas", expected=(1, 4 * anchors) + tuple(scores[2:]),
                         actual=deltas)
    if info is not None and int(np.prod(info)) < 2:
        raise ShapeError(f"input 'im_info' has shape {info}; Proposal needs the image rows and "
                         "columns (at least 2 values)", argument="im_info", actual=info)
    return in_shapes, [(rows, 5), (rows, 1)]


def _proposal_type(attrs, in_dtypes):
    dtype = np.dtype(np.float32) if in_dtypes[0] is None else in_dtypes[0]
    return in_dtypes, [dtype, dtype]


def _proposal_forward(xp, attrs, inputs, outputs, req):
    scores, deltas, info = (_host(xp, a) for a in inputs)
    boxes, best = proposals(attrs, scores, deltas, info)
    rois = np.zeros(outputs[0].shape, dtype=np.float64)
    rois[:len(boxes), 1:] = boxes
    kept = np.zeros(outputs[1].shape, dtype=np.float64)
    kept[:len(best), 0] = best
    for out, value, r in zip(outputs, (rois, kept), req):
        if r != "null":
            out[...] = xp.asarray(value, dtype=out.dtype)


def _proposal_gradient(F, node, ograds):
    raise DeepkitError(f"Proposal '{node.name}' is inference-only: box selection with "
                       "non-maximum suppression has no gradient; wrap it in BlockGrad, or set "
                       "grad_req='null' for what it depends on")


register(OpDef(
    "Proposal", _proposal_forward, inputs=("scores", "deltas", "im_info"),
    outputs=("rois", "roi_scores"),
    params={"feat_stride": Param(int, 16, "Feature map stride in image pixels.", min=1),
            "base_size": Param(int, 16, "Anchor base size in pixels.", min=1),
            "ratio": Param(str, "(0.5, 1.0, 2.0)", "Anchor aspect ratios (height / width)."),
            "scale": Param(str, "(8.0, 16.0, 32.0)", "Anchor scales (times base_size)."),
            "pre_nms_topn": Param(int, 6000, "Best candidates before NMS.", min=1),
            "post_nms_topn": Param(int, 300, "Proposals kept after NMS (the output rows).",
                                   min=1),
            "nms_thresh": Param(float, 0.7, "IoU above which NMS drops a proposal.", min=0.0)},
    infer_shape=_proposal_shape, infer_type=_proposal_type, partial_infer=True,
    gradient=_proposal_gradient,
    doc="Faster R-CNN region proposals as OpenCV's Proposal layer: anchors (each ratio times "
        "each scale of base_size) on the feature grid, shifted by `deltas`, clipped to the "
        "image size in `im_info` (rows, cols), then the pre_nms_topn best by foreground score "
        "(the second half of the score channels) through non-maximum suppression. Outputs "
        "`rois` (post_nms_topn, 5): (0, x1, y1, x2, y2) in pixels, best first, and their "
        "`roi_scores` (post_nms_topn, 1); rows past the proposals are zero. One image; OpenCV's "
        "rules (no min_size filter). Inference only: it refuses gradients."))


# -- ROIPooling ------------------------------------------------------------------------------------

def _round_half_away(v):
    """C's ``round``: halves away from zero (numpy rounds them to even)."""
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def roi_pool(attrs, data, rois):
    """Fast R-CNN's ROI max pooling (Caffe's ``ROIPoolingLayer::Forward_cpu``) on host arrays.

    Args:
        attrs: ``pooled_size`` (height, width) and ``spatial_scale``.
        data: ``(N, C, H, W)`` feature maps.
        rois: ``(R, 5)`` boxes ``(batch index, x1, y1, x2, y2)`` in image coordinates.

    Returns:
        ``(R, C, pooled_h, pooled_w)``; empty bins give 0.
    """
    ph_n, pw_n = attrs.pooled_size
    _, c, h, w = data.shape
    out = np.zeros((rois.shape[0], c, ph_n, pw_n), dtype=np.float64)
    for r, roi in enumerate(np.asarray(rois, np.float64).reshape(-1, 5)):
        b = int(roi[0])
        x1, y1, x2, y2 = (int(v) for v in _round_half_away(roi[1:] * attrs.spatial_scale))
        bin_h = max(y2 - y1 + 1, 1) / ph_n
        bin_w = max(x2 - x1 + 1, 1) / pw_n
        for ph in range(ph_n):
            hs = min(max(int(math.floor(ph * bin_h)) + y1, 0), h)
            he = min(max(int(math.ceil((ph + 1) * bin_h)) + y1, 0), h)
            for pw in range(pw_n):
                ws = min(max(int(math.floor(pw * bin_w)) + x1, 0), w)
                we = min(max(int(math.ceil((pw + 1) * bin_w)) + x1, 0), w)
                if he > hs and we > ws:
                    out[r, :, ph, pw] = data[b, :, hs:he, ws:we].max(axis=(1, 2))
    return out


def _roi_shape(attrs, in_shapes):
    data, rois = in_shapes
    if data is None or rois is None:
        return in_shapes, [None]
    if len(data) != 4 or len(rois) != 2 or rois[1] != 5:
        raise ShapeError(f"ROIPooling takes data (N, C, H, W) and rois (R, 5); got data {data} "
                         f"and rois {rois}", argument="rois", expected="(R, 5)", actual=rois)
    return in_shapes, [(rois[0], data[1]) + tuple(attrs.pooled_size)]


def _roi_forward(xp, attrs, inputs, outputs, req):
    if req[0] == "null":
        return
    data, rois = (_host(xp, a) for a in inputs)
    outputs[0][...] = xp.asarray(roi_pool(attrs, data, rois), dtype=outputs[0].dtype)


def _roi_gradient(F, node, ograds):
    raise DeepkitError(f"ROIPooling '{node.name}' is inference-only here: it has no gradient; "
                       "wrap it in BlockGrad, or set grad_req='null' for what it depends on")


register(OpDef(
    "ROIPooling", _roi_forward, inputs=("data", "rois"),
    params={"pooled_size": Param(Shape, (1, 1), "Output (height, width) per box.", min=1),
            "spatial_scale": Param(float, 1.0, "Image to feature-map scale (1/stride).")},
    infer_shape=_roi_shape, infer_type=_detection_type, partial_infer=True,
    gradient=_roi_gradient,
    doc="Fast R-CNN ROI max pooling, as Caffe's ROIPooling layer: each box (batch index, x1, "
        "y1, x2, y2), scaled and rounded, is split into pooled_size bins whose maxima form the "
        "output (R, C, h, w); empty bins give 0. Inference only: it refuses gradients."))


# -- PSROIPooling ----------------------------------------------------------------------------------

def psroi_pool(attrs, data, rois):
    """R-FCN's position-sensitive ROI average pooling (its Caffe layer) on host arrays.

    Args:
        attrs: ``output_dim``, ``group_size`` and ``spatial_scale``.
        data: ``(N, output_dim * group_size^2, H, W)`` score maps.
        rois: ``(R, 5)`` boxes ``(batch index, x1, y1, x2, y2)`` in image coordinates.

    Returns:
        ``(R, output_dim, group_size, group_size)``: bin (i, j) of output channel k averages
        input channel ``(k * group_size + i) * group_size + j`` over the bin; empty bins give 0.
    """
    g, dim, scale = attrs.group_size, attrs.output_dim, attrs.spatial_scale
    _, _, h, w = data.shape
    out = np.zeros((rois.shape[0], dim, g, g), dtype=np.float64)
    for r, roi in enumerate(np.asarray(rois, np.float64).reshape(-1, 5)):
        b = int(roi[0])
        x1, y1 = _round_half_away(roi[1]) * scale, _round_half_away(roi[2]) * scale
        x2, y2 = (_round_half_away(roi[3]) + 1) * scale, (_round_half_away(roi[4]) + 1) * scale
        bin_h, bin_w = max(y2 - y1, 0.1) / g, max(x2 - x1, 0.1) / g
        for i in range(g):
            hs = min(max(int(math.floor(i * bin_h + y1)), 0), h)
            he = min(max(int(math.ceil((i + 1) * bin_h + y1)), 0), h)
            for j in range(g):
                ws = min(max(int(math.floor(j * bin_w + x1)), 0), w)
                we = min(max(int(math.ceil((j + 1) * bin_w + x1)), 0), w)
                if he <= hs or we <= ws:
                    continue
                channels = (np.arange(dim) * g + i) * g + j
                out[r, :, i, j] = data[b, channels, hs:he, ws:we].mean(axis=(1, 2))
    return out


def _psroi_shape(attrs, in_shapes):
    data, rois = in_shapes
    if data is None or rois is None:
        return in_shapes, [None]
    need = attrs.output_dim * attrs.group_size ** 2
    if len(data) != 4 or data[1] != need or len(rois) != 2 or rois[1] != 5:
        raise ShapeError(f"PSROIPooling takes data (N, output_dim * group_size^2 = {need}, H, W) "
                         f"and rois (R, 5); got data {data} and rois {rois}", argument="data",
                         expected=f"(N, {need}, H, W)", actual=data)
    return in_shapes, [(rois[0], attrs.output_dim, attrs.group_size, attrs.group_size)]


def _psroi_forward(xp, attrs, inputs, outputs, req):
    if req[0] == "null":
        return
    data, rois = (_host(xp, a) for a in inputs)
    outputs[0][...] = xp.asarray(psroi_pool(attrs, data, rois), dtype=outputs[0].dtype)


def _psroi_gradient(F, node, ograds):
    raise DeepkitError(f"PSROIPooling '{node.name}' is inference-only here: it has no gradient; "
                       "wrap it in BlockGrad, or set grad_req='null' for what it depends on")


register(OpDef(
    "PSROIPooling", _psroi_forward, inputs=("data", "rois"),
    params={"output_dim": Param(int, 1, "Output channels.", min=1),
            "group_size": Param(int, 1, "Bins per side (the output height and width).", min=1),
            "spatial_scale": Param(float, 1.0, "Image to feature-map scale (1/stride).")},
    infer_shape=_psroi_shape, infer_type=_detection_type, partial_infer=True,
    gradient=_psroi_gradient,
    doc="R-FCN position-sensitive ROI average pooling, as its Caffe PSROIPooling layer: bin "
        "(i, j) of output channel k averages input channel (k * group_size + i) * group_size "
        "+ j over the bin of each box. Inference only: it refuses gradients."))
