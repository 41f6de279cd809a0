"""Ops of Caffe fork layers that the other families cannot express: ``YoloRegion``.

``YoloRegion`` is the YOLOv2 region layer as OpenCV's dnn module computes it
(its ``RegionLayer``, which the YOLOv2 Caffe forks' prototxts are read
with): per cell and anchor, the box centre (sigmoid offsets in the cell,
over the grid size), the box size (exp of the prediction times the anchor,
over the normalising size: the grid's, or an image's), the objectness (sigmoid) and the class
probabilities (softmax or sigmoid) times the objectness, zeroed below
``thresh``; then, per image and class, non-maximum suppression zeroes the
probabilities of the boxes it drops. The selection makes it inference-only:
it refuses gradients. It computes on the host (numpy) and writes the result
to the output's device.
"""
import ast

import numpy as np

from ..base import DeepkitError, ParamError, ShapeError
from .registry import OpDef, Param, register

__all__ = ["yolo_region"]


def _anchors(text):
    """The anchor (width, height) pairs given as text: ``'(1.08, 1.19, 3.42, 4.41)'``."""
    op = "YoloRegion"
    try:
        value = ast.literal_eval(str(text).strip()) if str(text).strip() else ()
        values = tuple(float(v) for v in (value if isinstance(value, (list, tuple)) else
                                          (value,)))
    except (ValueError, SyntaxError, TypeError):
        raise ParamError(f"{op}: param anchors={text!r} is not a list of numbers such as "
                         "'(1.08, 1.19, 3.42, 4.41)'", op=op, param="anchors",
                         value=text) from None
    if not values or len(values) % 2:
        raise ParamError(f"{op}: param anchors={text!r} must give a (width, height) pair per "
                         f"anchor: an even, non-zero count of values, got {len(values)}",
                         op=op, param="anchors", value=text)
    return np.asarray(values, dtype=np.float64).reshape(-1, 2)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _overlap(box, others):
    """OpenCV's ``1 - jaccardDistance`` of (x, y, w, h) boxes: intersection over union."""
    x1 = np.maximum(others[:, 0], box[0])
    y1 = np.maximum(others[:, 1], box[1])
    x2 = np.minimum(others[:, 0] + others[:, 2], box[0] + box[2])
    y2 = np.minimum(others[:, 1] + others[:, 3], box[1] + box[3])
    inter = np.where((x2 > x1) & (y2 > y1), (x2 - x1) * (y2 - y1), 0.0)
    union = box[2] * box[3] + others[:, 2] * others[:, 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _nms(boxes, scores, score_threshold, nms_threshold):
    """OpenCV's ``NMSFast_`` (eta 1, no top_k): kept indices, best score first."""
    candidates = np.nonzero(scores > score_threshold)[0]
    order = candidates[np.argsort(-scores[candidates], kind="stable")]
    kept = []
    for idx in order:
        if not kept or bool(np.all(_overlap(boxes[idx], boxes[kept]) <= nms_threshold)):
            kept.append(int(idx))
    return kept


def yolo_region(attrs, data):
    """OpenCV's ``RegionLayer::forward`` on a host array, image by image.

    Args:
        attrs: The YoloRegion parameters.
        data: ``(N, H, W, anchors * (coords + 1 + classes))`` predictions.

    Returns:
        A float64 array ``(N, H * W * anchors, coords + 1 + classes)``: per
        cell (row-major) and anchor, the box (x, y, w, h; normalised), the
        objectness and the class scores.
    """
    anchors = _anchors(attrs.anchors)
    num = anchors.shape[0]
    classes, coords = attrs.classes, attrs.coords
    cell = coords + 1 + classes
    n, rows, cols, _ = data.shape
    src = np.asarray(data, dtype=np.float64).reshape(n, rows, cols, num, cell)
    out = np.empty_like(src)
    norm_h = attrs.norm_h or rows
    norm_w = attrs.norm_w or cols
    out[..., 4] = _sigmoid(src[..., 4])
    if attrs.softmax:
        z = src[..., 5:] - src[..., 5:].max(axis=-1, keepdims=True)
        e = np.exp(z)
        probs = e / e.sum(axis=-1, keepdims=True)
    else:
        probs = _sigmoid(src[..., 5:])
    ys = np.arange(rows, dtype=np.float64)[:, None, None]
    xs = np.arange(cols, dtype=np.float64)[None, :, None]
    out[..., 0] = (xs + _sigmoid(src[..., 0])) / cols
    out[..., 1] = (ys + _sigmoid(src[..., 1])) / rows
    out[..., 2] = np.exp(src[..., 2]) * anchors[:, 0] / norm_w
    out[..., 3] = np.exp(src[..., 3]) * anchors[:, 1] / norm_h
    scale = out[..., 4:5]
    if attrs.classfix == -1:
        scale = np.where(scale < 0.5, 0.0, scale)
    prob = scale * probs
    out[..., 5:] = np.where(prob > attrs.thresh, prob, 0.0)
    out = out.reshape(n, rows * cols * num, cell)
    if attrs.nms_threshold > 0:
        for image in out:
            boxes = np.stack([image[:, 0] - image[:, 2] / 2, image[:, 1] - image[:, 3] / 2,
                              image[:, 2], image[:, 3]], axis=1)
            for k in range(classes):
                scores = image[:, 5 + k].copy()
                image[:, 5 + k] = 0.0
                kept = _nms(boxes, scores, attrs.thresh, attrs.nms_threshold)
                image[kept, 5 + k] = scores[kept]
    return out


def _region_shape(attrs, in_shapes):
    (data,) = in_shapes
    if data is None:
        return in_shapes, [None]
    num = _anchors(attrs.anchors).shape[0]
    cell = attrs.coords + 1 + attrs.classes
    if len(data) != 4 or data[3] != num * cell:
        raise ShapeError(f"input 'data' has shape {tuple(data)}; YoloRegion needs (N, H, W, "
                         f"{num} anchors x {cell} = {num * cell}) (coords + 1 + classes values "
                         "per anchor on the last axis)", argument="data",
                         expected=f"(N, H, W, {num * cell})", actual=data)
    rows = data[1] * data[2] * num
    return in_shapes, [(rows, cell) if data[0] == 1 else (data[0], rows, cell)]


def _region_type(attrs, in_dtypes):
    return in_dtypes, [np.dtype(np.float32) if in_dtypes[0] is None else in_dtypes[0]]


def _region_forward(xp, attrs, inputs, outputs, req):
    if req[0] == "null":
        return
    data = xp.asnumpy(inputs[0]) if hasattr(xp, "asnumpy") else np.asarray(inputs[0])
    out = yolo_region(attrs, data).reshape(outputs[0].shape)
    outputs[0][...] = xp.asarray(out, dtype=outputs[0].dtype)


def _region_gradient(F, node, ograds):
    raise DeepkitError(f"YoloRegion '{node.name}' is inference-only: its score threshold and "
                       "non-maximum suppression have no gradient; wrap it in BlockGrad, or set "
                       "grad_req='null' for what it depends on")


register(OpDef(
    "YoloRegion", _region_forward, inputs=("data",),
    params={"anchors": Param(str, "(1.0, 1.0)", "Anchor (width, height) pairs in grid cells, "
                                                "as text: '(1.08, 1.19, 3.42, 4.41)'."),
            "classes": Param(int, 1, "Number of classes.", min=1),
            "coords": Param(int, 4, "Box coordinates per anchor (OpenCV supports 4).", min=4,
                            max=4),
            "softmax": Param(bool, True, "Softmax over the class scores (YOLOv2); false: "
                                         "sigmoid of each (YOLOv3)."),
            "classfix": Param(int, 0, "-1: objectness below 0.5 counts as 0."),
            "thresh": Param(float, 0.2, "Class scores at or below it become 0 (and NMS skips "
                                        "them)."),
            "nms_threshold": Param(float, 0.4, "IoU above which per-class NMS drops a box's "
                                               "score (0: no NMS).", min=0.0),
            "norm_h": Param(int, 0, "Height the box heights are divided by (0: the grid rows).",
                            min=0),
            "norm_w": Param(int, 0, "Width the box widths are divided by (0: the grid columns).",
                            min=0)},
    infer_shape=_region_shape, infer_type=_region_type, partial_infer=True,
    gradient=_region_gradient,
    doc="YOLOv2 region output as OpenCV's Region layer: `data` (N, H, W, anchors * (5 + "
        "classes)) becomes rows (H * W * anchors, 5 + classes), with a leading batch axis "
        "when N > 1 (OpenCV's shapes), per cell (row-major) and "
        "anchor: box centre ((col + sigmoid(tx)) / W, (row + sigmoid(ty)) / H), size "
        "(exp(tw) * anchor_w / norm_w, exp(th) * anchor_h / norm_h), objectness "
        "sigmoid(to), then the class probabilities (softmax or sigmoid) times the objectness, "
        "0 where not above thresh; per-class non-maximum suppression zeroes the scores of the "
        "boxes it drops. Inference only: it refuses gradients."))
