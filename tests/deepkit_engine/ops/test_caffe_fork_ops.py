"""``YoloRegion`` against a float64 loop reference written from OpenCV's ``RegionLayer::forward``
(and its ``do_nms_sort``/``NMSFast_``); it refuses gradients (inference only).
"""
import ast
import math

import numpy as np
import pytest

from deepkit_engine import autograd
from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import DeepkitError, ParamError, ShapeError

from .op_cases import OpCase, forward_params, run_forward

OTHER_GRAD_COVERED_OPS = {"YoloRegion": "test_yolo_region_refuses_gradients"}


def _logistic(v):
    return 1.0 / (1.0 + math.exp(-v))


def _iou(a, b):
    """Rect2f (x, y, w, h) intersection over union, as OpenCV's jaccardDistance."""
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = (x2 - x1) * (y2 - y1) if x2 > x1 and y2 > y1 else 0.0
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _region_ref(data, anchors="(1.0, 1.0)", classes=1, coords=4, softmax=True, classfix=0,
                thresh=0.2, nms_threshold=0.4, norm_h=0, norm_w=0):
    """OpenCV's RegionLayer::forward, one cell, anchor and class at a time (each image);
    rows (H * W * anchors, cell), batched (N, rows, cell) when N > 1, as OpenCV shapes them."""
    bias = list(ast.literal_eval(anchors))
    num = len(bias) // 2
    cell = coords + 1 + classes
    n, rows, cols, _ = data.shape
    h_norm, w_norm = norm_h or rows, norm_w or cols
    result = []
    for b in range(n):
        src = data[b].reshape(-1)
        dst = np.zeros(rows * cols * num * cell)
        for i in range(rows * cols * num):
            dst[i * cell + 4] = _logistic(src[i * cell + 4])
            scores = src[i * cell + 5:i * cell + 5 + classes]
            if softmax:
                e = [math.exp(s - max(scores)) for s in scores]
                dst[i * cell + 5:i * cell + 5 + classes] = [v / sum(e) for v in e]
            else:
                dst[i * cell + 5:i * cell + 5 + classes] = [_logistic(s) for s in scores]
        for x in range(cols):
            for y in range(rows):
                for a in range(num):
                    index = (y * cols + x) * num + a
                    box = index * cell
                    scale = dst[box + 4]
                    if classfix == -1 and scale < 0.5:
                        scale = 0.0
                    dst[box + 0] = (x + _logistic(src[box + 0])) / cols
                    dst[box + 1] = (y + _logistic(src[box + 1])) / rows
                    dst[box + 2] = math.exp(src[box + 2]) * bias[2 * a] / w_norm
                    dst[box + 3] = math.exp(src[box + 3]) * bias[2 * a + 1] / h_norm
                    for j in range(classes):
                        prob = scale * dst[box + 5 + j]
                        dst[box + 5 + j] = prob if prob > thresh else 0.0
        total = rows * cols * num
        if nms_threshold > 0:
            rects = []
            for i in range(total):
                x, y, w, h = dst[i * cell:i * cell + 4]
                rects.append((x - w / 2, y - h / 2, w, h))
            for k in range(classes):
                scores = [dst[i * cell + 5 + k] for i in range(total)]
                for i in range(total):
                    dst[i * cell + 5 + k] = 0.0
                order = sorted((i for i in range(total) if scores[i] > thresh),
                               key=lambda i: -scores[i])
                kept = []
                for i in order:
                    if all(_iou(rects[i], rects[j]) <= nms_threshold for j in kept):
                        kept.append(i)
                for i in kept:
                    dst[i * cell + 5 + k] = scores[i]
        result.append(dst.reshape(total, cell))
    return result[0] if n == 1 else np.stack(result)


def _predictions(shape, spread=2.0):
    def make(rng, dtype):
        return rng.normal(0.0, spread, size=shape).astype(dtype)
    return make


CASES = [
    OpCase("YoloRegion", [_predictions((1, 3, 4, 2 * 8))], _region_ref,
           {"anchors": "(1.08, 1.19, 3.42, 4.41)", "classes": 3}, grad=False, name="softmax"),
    OpCase("YoloRegion", [_predictions((2, 4, 3, 3 * 7))], _region_ref,
           {"anchors": "(0.5, 0.7, 2.0, 1.5, 1.2, 3.1)", "classes": 2, "softmax": False,
            "thresh": 0.1, "nms_threshold": 0.3, "norm_h": 16, "norm_w": 12},
           grad=False, name="logistic-norm"),
    OpCase("YoloRegion", [_predictions((1, 5, 5, 6))], _region_ref,
           {"anchors": "(2.0, 2.0)", "classes": 1, "classfix": -1, "nms_threshold": 0.0},
           grad=False, name="classfix-no-nms"),
    OpCase("YoloRegion", [_predictions((1, 2, 2, 2 * 9), spread=0.3)], _region_ref,
           {"anchors": "(1.0, 1.0, 1.5, 1.5)", "classes": 4, "thresh": 0.05,
            "nms_threshold": 0.9}, grad=False, name="dense-overlaps"),
]


@pytest.mark.parametrize("case,dtype", forward_params(CASES))
def test_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)


def test_yolo_region_nms_drops_overlapping_boxes():
    # two anchors predicting the same box in one cell: NMS keeps the better score only
    data = np.zeros((1, 1, 1, 2 * 6))
    data[0, 0, 0, [4, 10]] = [3.0, 1.0]
    out = nd.YoloRegion(nd.array(data), anchors="(1.0, 1.0, 1.0, 1.0)", classes=1).asnumpy()
    assert out[0, 5] > 0.2 and out[1, 5] == 0.0
    kept = nd.YoloRegion(nd.array(data), anchors="(1.0, 1.0, 1.0, 1.0)", classes=1,
                         nms_threshold=0.0).asnumpy()
    assert kept[1, 5] > 0.2


def test_yolo_region_refuses_gradients():
    data = nd.array(np.random.default_rng(0).normal(size=(1, 2, 2, 7)))
    data.attach_grad()
    with autograd.record():
        out = nd.YoloRegion(data, anchors="(1.0, 1.0)", classes=2)
    with pytest.raises(DeepkitError, match="YoloRegion .* is inference-only"):
        out.backward()


def test_yolo_region_shape_errors_name_the_input():
    with pytest.raises(ShapeError,
                       match=r"input .data. has shape \(1, 2, 2, 8\).*2 anchors x 7 = 14"):
        sym.YoloRegion(sym.Variable("d"), anchors="(1.0, 1.0, 2.0, 2.0)",
                       classes=2).infer_shape(d=(1, 2, 2, 8))


@pytest.mark.parametrize("anchors,message", [("(1.0, 2.0, 3.0)", "even, non-zero count"),
                                             ("big", "not a list of numbers")])
def test_yolo_region_bad_anchors_are_named(anchors, message):
    with pytest.raises(ParamError, match=f"anchors=.*{message}"):
        nd.YoloRegion(nd.zeros((1, 1, 1, 6)), anchors=anchors, classes=1)
