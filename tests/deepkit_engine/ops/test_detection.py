"""``PriorBox``, ``DetectionOutput`` and ``ROIPooling`` against float64 loop references written
from Caffe's layer code; DetectionOutput and ROIPooling refuse gradients, PriorBox has none
(its output depends only on shapes).
"""
import ast
import math

import numpy as np
import pytest

from deepkit_engine import autograd
from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import DeepkitError, ParamError, ShapeError

from .op_cases import Const, OpCase, forward_params, run_forward

OTHER_GRAD_COVERED_OPS = {"DetectionOutput": "test_detection_output_refuses_gradients",
                          "Proposal": "test_proposal_refuses_gradients",
                          "ROIPooling": "test_roi_pooling_refuses_gradients",
                          "PSROIPooling": "test_roi_pooling_refuses_gradients"}


# -- PriorBox ---------------------------------------------------------------------------------

def _floats(text):
    if not text:
        return []
    value = ast.literal_eval(text)
    return list(value) if isinstance(value, tuple) else [value]


def _prior_ref(data, image, min_size="", max_size="", aspect_ratio="", flip=True, clip=False,
               variance="(0.1,)", img_h=0.0, img_w=0.0, step_h=0.0, step_w=0.0, offset=0.5,
               width="", height=""):
    """Caffe's PriorBoxLayer::Forward_cpu, one box at a time."""
    layer_h, layer_w = data.shape[2:]
    img_h = img_h or image.shape[2]
    img_w = img_w or image.shape[3]
    step_h = step_h or img_h / layer_h
    step_w = step_w or img_w / layer_w
    ratios = [1.0]
    for ar in _floats(aspect_ratio):
        if all(abs(ar - r) >= 1e-6 for r in ratios):
            ratios.append(ar)
            if flip:
                ratios.append(1 / ar)
    mins, maxs = _floats(min_size), _floats(max_size)
    out = []
    for h in range(layer_h):
        for w in range(layer_w):
            cx, cy = (w + offset) * step_w, (h + offset) * step_h
            groups = [list(zip(_floats(width), _floats(height)))] if width else []
            for s, m in enumerate(mins):
                boxes = [(m, m)]
                if maxs:
                    boxes.append((math.sqrt(m * maxs[s]),) * 2)
                for ar in ratios:
                    if abs(ar - 1) >= 1e-6:
                        boxes.append((m * math.sqrt(ar), m / math.sqrt(ar)))
                groups.append(boxes)
            for bw, bh in (box for boxes in groups for box in boxes):
                    out += [(cx - bw / 2) / img_w, (cy - bh / 2) / img_h, (cx + bw / 2) / img_w,
                            (cy + bh / 2) / img_h]
    out = np.asarray(out)
    if clip:
        out = np.clip(out, 0, 1)
    var = _floats(variance) or [0.1]
    var = np.asarray((var * 4 if len(var) == 1 else var) * (len(out) // 4))
    return np.stack([out, var])[None]


CASES = [
    OpCase("PriorBox", [(1, 2, 3, 4), (1, 3, 60, 80)], _prior_ref,
           {"min_size": "(20.0,)", "aspect_ratio": "(2.0,)", "variance": "(0.1, 0.1, 0.2, 0.2)"},
           grad=False),
    OpCase("PriorBox", [(2, 1, 5, 5), (2, 3, 100, 100)], _prior_ref,
           {"min_size": "(10.0, 30.0)", "max_size": "(20.0, 60.0)",
            "aspect_ratio": "(2.0, 3.0, 2.0)", "flip": False, "clip": True, "step_h": 16.0,
            "step_w": 12.0, "offset": 0.3}, grad=False),
    OpCase("PriorBox", [(1, 1, 2, 3), (1, 1, 7, 9)], _prior_ref,
           {"min_size": "(4.0,)", "img_h": 50.0, "img_w": 40.0}, grad=False),
    OpCase("PriorBox", [(1, 2, 3, 4), (1, 3, 60, 80)], _prior_ref,
           {"width": "(10.0, 24.5, 7.0)", "height": "(15.0, 8.0, 7.0)", "step_h": 16.0,
            "step_w": 20.0, "variance": "(0.1, 0.1, 0.2, 0.2)"}, grad=False, name="explicit"),
]


# -- DetectionOutput --------------------------------------------------------------------------

def _iou(a, b):
    if b[0] > a[2] or b[2] < a[0] or b[1] > a[3] or b[3] < a[1]:
        return 0.0
    inter = (min(a[2], b[2]) - max(a[0], b[0])) * (min(a[3], b[3]) - max(a[1], b[1]))

    def size(c):
        return 0.0 if c[2] < c[0] or c[3] < c[1] else (c[2] - c[0]) * (c[3] - c[1])
    return inter / (size(a) + size(b) - inter)


def _decode(prior, var, loc, code):
    pw, ph = prior[2] - prior[0], prior[3] - prior[1]
    if code == "CORNER":
        return [prior[k] + var[k] * loc[k] for k in range(4)]
    cx = var[0] * loc[0] * pw + (prior[0] + prior[2]) / 2
    cy = var[1] * loc[1] * ph + (prior[1] + prior[3]) / 2
    w, h = math.exp(var[2] * loc[2]) * pw, math.exp(var[3] * loc[3]) * ph
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def _detection_ref(loc, conf, prior, arm_conf=None, arm_loc=None, num_classes=2,
                   share_location=True, background_label_id=0, nms_threshold=0.3, top_k=-1,
                   code_type="CORNER", keep_top_k=-1, confidence_threshold=-3.4e38,
                   objectness_score=0.01, **_):
    """Caffe's DetectionOutputLayer::Forward_cpu with plain loops (one image per row), with
    RefineDet's rules for the ARM inputs (OSGetConfidenceScores, CasRegDecodeBBoxesAll)."""
    n, num_priors = loc.shape[0], prior.shape[2] // 4
    rows = []
    conf = conf.copy()
    if arm_conf is not None:
        for i in range(n):
            for p in range(num_priors):
                if arm_conf[i, 2 * p + 1] < np.float32(objectness_score):
                    conf[i, p * num_classes:(p + 1) * num_classes] = 0.0
                    conf[i, p * num_classes] = 1.0
    for i in range(n):
        priors = [prior[0, 0, 4 * p:4 * p + 4] for p in range(num_priors)]
        if arm_loc is not None:
            priors = [_decode(priors[p], prior[0, 1, 4 * p:4 * p + 4], arm_loc[i, 4 * p:4 * p + 4],
                              code_type) for p in range(num_priors)]
        boxes = [_decode(priors[p], prior[0, 1, 4 * p:4 * p + 4],
                         loc[i, 4 * p:4 * p + 4], code_type) for p in range(num_priors)]
        kept = {}
        for c in range(num_classes):
            if c == background_label_id:
                continue
            scores = [conf[i, p * num_classes + c] for p in range(num_priors)]
            order = sorted((p for p in range(num_priors) if scores[p] > confidence_threshold),
                           key=lambda p: -scores[p])
            if top_k > -1:
                order = order[:top_k]
            keep = []
            for p in order:
                if all(_iou(boxes[p], boxes[q]) <= nms_threshold for q in keep):
                    keep.append(p)
            kept[c] = keep
        flat = sorted(((conf[i, p * num_classes + c], c, p) for c, ps in kept.items()
                       for p in ps), key=lambda t: -t[0])
        if keep_top_k > -1:
            flat = flat[:keep_top_k]
        for c in sorted({c for _, c, _ in flat}):
            for score, cc, p in flat:
                if cc == c:
                    rows.append([i, c, score] + list(boxes[p]))
    rows_per_image = keep_top_k if keep_top_k > -1 else num_priors * (num_classes - 1)
    out = np.zeros((1, 1, n * rows_per_image, 7))
    out[0, 0, :len(rows)] = rows
    return out


def _boxes(rng, dtype):
    num = 12
    centre = rng.uniform(0.2, 0.8, (num, 2))
    size = rng.uniform(0.1, 0.5, (num, 2))
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1).reshape(-1)
    var = np.tile([0.1, 0.1, 0.2, 0.2], num)
    return np.stack([boxes, var])[None].astype(dtype)


def _scores(rng, dtype, classes=3):
    count = 2 * 12 * classes
    distinct = rng.permutation(2 * count)[:count] / (2 * count)
    return distinct.reshape(2, 12 * classes).astype(dtype)  # distinct: no ties to order


CASES += [
    OpCase("DetectionOutput", [(2, 48), lambda r, d: _scores(r, d), _boxes], _detection_ref,
           {"num_classes": 3, "nms_threshold": 0.45, "top_k": 8, "keep_top_k": 6,
            "code_type": "CENTER_SIZE", "confidence_threshold": 0.2}, grad=False),
    OpCase("DetectionOutput", [(2, 48), lambda r, d: _scores(r, d), _boxes], _detection_ref,
           {"num_classes": 3, "nms_threshold": 0.3, "code_type": "CORNER"}, grad=False,
           name="no-limits"),
    OpCase("DetectionOutput", [(2, 48), lambda r, d: _scores(r, d), _boxes,
                               lambda r, d: _scores(r, d, classes=2)], _detection_ref,
           {"num_classes": 3, "nms_threshold": 0.45, "top_k": 8, "keep_top_k": 6,
            "code_type": "CENTER_SIZE", "arm_inputs": 1, "objectness_score": 0.4}, grad=False,
           name="arm-conf"),
    OpCase("DetectionOutput", [(2, 48), lambda r, d: _scores(r, d), _boxes,
                               lambda r, d: _scores(r, d, classes=2), (2, 48)], _detection_ref,
           {"num_classes": 3, "nms_threshold": 0.45, "top_k": 8, "keep_top_k": 6,
            "code_type": "CENTER_SIZE", "arm_inputs": 2, "objectness_score": 0.3}, grad=False,
           name="arm-conf-loc"),
]


# -- Proposal -----------------------------------------------------------------------------------

def _proposal_ref(scores, deltas, im_info, feat_stride=16, base_size=16, ratio="(0.5, 1.0, 2.0)",
                  scale="(8.0, 16.0, 32.0)", pre_nms_topn=6000, post_nms_topn=300,
                  nms_thresh=0.7):
    """OpenCV's ProposalLayer (anchors as py-faster-rcnn's generate_anchors), one box at a time."""
    anchors = []
    for r in _floats(ratio):
        width = math.floor(base_size / math.sqrt(r) + 0.5)
        height = math.floor(width * r + 0.5)
        anchors += [(s * width, s * height) for s in _floats(scale)]
    rows, cols = int(im_info.reshape(-1)[0]), int(im_info.reshape(-1)[1])
    boxes, fg = [], []
    for y in range(scores.shape[2]):
        for x in range(scores.shape[3]):
            # py-faster-rcnn's anchor: centre (base_size - 1) / 2, sides (size - 1) / 2 around it
            for a, (aw, ah) in enumerate(anchors):
                ctr_x = x * feat_stride + (base_size - 1) / 2
                ctr_y = y * feat_stride + (base_size - 1) / 2
                x1, x2 = ctr_x - (aw - 1) / 2, ctr_x + (aw - 1) / 2
                y1, y2 = ctr_y - (ah - 1) / 2, ctr_y + (ah - 1) / 2
                dx, dy, dw, dh = deltas[0, 4 * a:4 * a + 4, y, x]
                w, h = x2 - x1 + 1, y2 - y1 + 1
                cx, cy = dx * w + x1 + w / 2, dy * h + y1 + h / 2
                pw, ph = math.exp(dw) * w, math.exp(dh) * h
                box = [cx - pw / 2, cy - ph / 2, cx + pw / 2, cy + ph / 2]
                boxes.append([min(max(v, 0), (cols, rows)[k % 2] - 1) for k, v in enumerate(box)])
                fg.append(scores[0, len(anchors) + a, y, x])

    def size(b):
        return 0.0 if b[2] < b[0] or b[3] < b[1] else (b[2] - b[0] + 1) * (b[3] - b[1] + 1)

    def iou(a, b):
        inter = size([max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])])
        return inter / (size(a) + size(b) - inter) if inter > 0 else 0.0

    order = sorted((i for i in range(len(fg)) if fg[i] > 0), key=lambda i: -fg[i])
    kept = []
    for i in order[:pre_nms_topn]:
        if all(iou(boxes[i], boxes[k]) <= nms_thresh for k in kept):
            kept.append(i)
            if len(kept) == post_nms_topn:
                break
    rois, best = np.zeros((post_nms_topn, 5)), np.zeros((post_nms_topn, 1))
    for row, i in enumerate(kept):
        rois[row, 1:] = boxes[i]
        best[row, 0] = fg[i]
    return rois, best


def _distinct(shape):
    def make(rng, dtype):
        count = int(np.prod(shape))
        return (rng.permutation(count) / count + 0.5 / count).reshape(shape).astype(dtype)
    return make


_IM_INFO = Const(np.array([[70.0, 90.0, 1.0]]))
CASES += [
    OpCase("Proposal", [_distinct((1, 12, 4, 5)), (1, 24, 4, 5), _IM_INFO], _proposal_ref,
           {"ratio": "(0.5, 1.0, 2.0)", "scale": "(2.0, 4.0)", "pre_nms_topn": 50,
            "post_nms_topn": 20, "nms_thresh": 0.6}, grad=False, low=-0.4, high=0.4),
    OpCase("Proposal", [_distinct((1, 4, 3, 3)), (1, 8, 3, 3), _IM_INFO], _proposal_ref,
           {"ratio": "(1.0,)", "scale": "(1.5, 3.0)", "feat_stride": 8, "base_size": 10,
            "post_nms_topn": 30}, grad=False, low=-0.4, high=0.4, name="few"),
]


def _roi_ref(data, rois, pooled_size=(1, 1), spatial_scale=1.0):
    """Caffe's ROIPoolingLayer::Forward_cpu, one bin and one channel at a time."""
    _, c, h, w = data.shape
    out = np.zeros((len(rois), c, pooled_size[0], pooled_size[1]))
    for r, (b, *box) in enumerate(rois):
        x1, y1, x2, y2 = (int(math.floor(abs(v * spatial_scale) + 0.5)) *
                          (1 if v >= 0 else -1) for v in box)
        bin_h = max(y2 - y1 + 1, 1) / pooled_size[0]
        bin_w = max(x2 - x1 + 1, 1) / pooled_size[1]
        for ph in range(pooled_size[0]):
            for pw in range(pooled_size[1]):
                hs = min(max(math.floor(ph * bin_h) + y1, 0), h)
                he = min(max(math.ceil((ph + 1) * bin_h) + y1, 0), h)
                ws = min(max(math.floor(pw * bin_w) + x1, 0), w)
                we = min(max(math.ceil((pw + 1) * bin_w) + x1, 0), w)
                for ch in range(c):
                    cell = data[int(b), ch, hs:he, ws:we]
                    out[r, ch, ph, pw] = cell.max() if cell.size else 0.0
    return out


_ROIS = Const(np.array([[0, 0, 0, 9, 7], [1, 2.5, 1, 15, 13], [0, 5, 6, 5, 6],
                        [1, -3, -2, 4, 4]]))
CASES += [
    OpCase("ROIPooling", [(2, 2, 6, 8), _ROIS], _roi_ref,
           {"pooled_size": (2, 3), "spatial_scale": 0.5}, grad=False),
    OpCase("ROIPooling", [(2, 1, 5, 5), _ROIS], _roi_ref, {"pooled_size": (1, 1)}, grad=False),
]


def _round(v):
    return math.floor(abs(v) + 0.5) * (1 if v >= 0 else -1)


def _psroi_ref(data, rois, output_dim=1, group_size=1, spatial_scale=1.0):
    """R-FCN's PSROIPoolingLayer forward, one output value at a time."""
    _, _, h, w = data.shape
    g = group_size
    out = np.zeros((len(rois), output_dim, g, g))
    for r, (b, x1, y1, x2, y2) in enumerate(rois):
        sx, sy = _round(x1) * spatial_scale, _round(y1) * spatial_scale
        ex, ey = (_round(x2) + 1) * spatial_scale, (_round(y2) + 1) * spatial_scale
        bh, bw = max(ey - sy, 0.1) / g, max(ex - sx, 0.1) / g
        for k in range(output_dim):
            for i in range(g):
                for j in range(g):
                    hs = min(max(math.floor(i * bh + sy), 0), h)
                    he = min(max(math.ceil((i + 1) * bh + sy), 0), h)
                    ws = min(max(math.floor(j * bw + sx), 0), w)
                    we = min(max(math.ceil((j + 1) * bw + sx), 0), w)
                    cell = data[int(b), (k * g + i) * g + j, hs:he, ws:we]
                    out[r, k, i, j] = cell.mean() if cell.size else 0.0
    return out


CASES += [
    OpCase("PSROIPooling", [(2, 18, 6, 8), _ROIS], _psroi_ref,
           {"output_dim": 2, "group_size": 3, "spatial_scale": 0.5}, grad=False),
]


@pytest.mark.parametrize("op,params", [("ROIPooling", {"pooled_size": (2, 2)}),
                                       ("PSROIPooling", {"output_dim": 1, "group_size": 1})])
def test_roi_pooling_refuses_gradients(op, params):
    data = nd.array(np.random.default_rng(0).normal(size=(1, 1, 4, 4)))
    data.attach_grad()
    with autograd.record():
        out = getattr(nd, op)(data, nd.array(np.array([[0, 0, 0, 3, 3]])), **params)
    with pytest.raises(DeepkitError, match=f"{op} .* is inference-only here"):
        out.backward()


@pytest.mark.parametrize("case,dtype", forward_params(CASES))
def test_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)


def test_prior_box_depends_only_on_shapes_and_has_no_gradient():
    data = nd.array(np.random.default_rng(0).normal(size=(1, 2, 3, 3)))
    image = nd.zeros((1, 3, 30, 30))
    a = nd.PriorBox(data, image, min_size="(10.0,)").asnumpy()
    b = nd.PriorBox(data * 5, image, min_size="(10.0,)").asnumpy()
    assert np.array_equal(a, b)
    data.attach_grad()
    with autograd.record():
        out = nd.PriorBox(data, image, min_size="(10.0,)").sum() + (data * 0).sum()
    out.backward()
    assert not data.grad.asnumpy().any()


@pytest.mark.parametrize("params,message", [
    ({}, "min_size must give at least one size"),
    ({"min_size": "(10.0,)", "max_size": "(5.0,)"}, "each larger than its min_size"),
    ({"min_size": "(10.0,)", "variance": "(0.1, 0.2)"}, "one or four positive values"),
    ({"min_size": "ten"}, "not a list of numbers"),
])
def test_prior_box_bad_params_are_named(params, message):
    with pytest.raises(ParamError, match=message):
        nd.PriorBox(nd.zeros((1, 1, 2, 2)), nd.zeros((1, 1, 8, 8)), **params)


def test_detection_output_shape_errors_name_the_input():
    with pytest.raises(ShapeError, match="input 'loc' has shape"):
        sym.DetectionOutput(sym.Variable("l"), sym.Variable("c"), sym.Variable("p"),
                            num_classes=3).infer_shape(l=(1, 10), c=(1, 36), p=(1, 2, 48))


def test_prior_box_explicit_sizes_are_checked():
    with pytest.raises(ParamError, match="one positive size each"):
        nd.PriorBox(nd.zeros((1, 1, 2, 2)), nd.zeros((1, 1, 8, 8)), width="(2.0, 3.0)",
                    height="(2.0,)")
    with pytest.raises(ParamError, match="replace min_size"):
        nd.PriorBox(nd.zeros((1, 1, 2, 2)), nd.zeros((1, 1, 8, 8)), width="(2.0,)",
                    height="(2.0,)", min_size="(4.0,)")


def test_detection_output_arm_shape_errors_name_the_input():
    with pytest.raises(ShapeError, match="input 'arm_conf' has shape"):
        sym.DetectionOutput(sym.Variable("l"), sym.Variable("c"), sym.Variable("p"),
                            sym.Variable("a"), num_classes=3, arm_inputs=1).infer_shape(
            l=(1, 48), c=(1, 36), p=(1, 2, 48), a=(1, 12))


def test_proposal_refuses_gradients():
    deltas = nd.array(np.zeros((1, 8, 2, 2)))
    deltas.attach_grad()
    with autograd.record():
        rois, _ = nd.Proposal(nd.array(np.full((1, 4, 2, 2), 0.5)), deltas,
                              nd.array([[32.0, 32.0, 1.0]]), ratio="(1.0,)", scale="(1.0, 2.0)",
                              post_nms_topn=4)
    with pytest.raises(DeepkitError, match="Proposal .* is inference-only"):
        rois.backward()


def test_proposal_shape_errors_name_the_input():
    with pytest.raises(ShapeError, match="input 'deltas' has shape"):
        sym.Proposal(sym.Variable("s"), sym.Variable("d"), sym.Variable("i"), ratio="(1.0,)",
                     scale="(1.0, 2.0)").infer_shape(s=(1, 4, 3, 3), d=(1, 4, 3, 3), i=(1, 3))


def test_detection_output_refuses_gradients():
    rng = np.random.default_rng(0)
    loc = nd.array(rng.normal(size=(2, 48)))
    loc.attach_grad()
    with autograd.record():
        out = nd.DetectionOutput(loc, nd.array(_scores(rng, "float64")),
                                 nd.array(_boxes(rng, "float64")), num_classes=3)
    with pytest.raises(DeepkitError, match="DetectionOutput .* is inference-only: "
                                           "non-maximum suppression has no gradient"):
        out.backward()
