"""The resizing and proposal fork layers (Resize, Interp padding, Upsample, Proposal), PriorBox's
explicit sizes and DetectionOutput's ARM bottoms: against OpenCV's dnn Caffe importer where it
reads them as the fork does, else against float64 loop references of the forks' Caffe code; and
the fork parameter blocks decoded from binary caffemodels.
"""
import importlib.util
import math

import numpy as np
import pytest

from deepkit.caffe import convert, convert_record, reader
from deepkit.caffe.detection_layers import ForkParam
from deepkit.caffe.verify import resolve_output, run

from . import caffe_writer as cw
from .fork_nets import Enum, fork_layer, inputs, write_fork_net
from .nets import assert_close, opencv_forward

HAVE_CV2 = importlib.util.find_spec("cv2") is not None


def ours(tmp_path, layers, x, names, keys="layer"):
    """Convert and run; the outputs of the named layers (or blobs)."""
    proto, weights = write_fork_net(tmp_path, layers)
    record = convert_record(proto, weights)
    resolved = {n: resolve_output(record, n, keys)[0] for n in names}
    values = run(record, x, outputs=list(dict.fromkeys(resolved.values())))
    return {n: values[resolved[n]] for n in names}, proto, weights


def against_opencv(tmp_path, layers, x, names):
    cv2 = pytest.importorskip("cv2")  # noqa: F841
    got, proto, weights = ours(tmp_path, layers, x, names)
    ref = opencv_forward(proto, weights, x, names)
    for n in names:
        assert_close(got[n], ref[n], f"{n} vs OpenCV")
    return got


# -- Resize (OpenCV's layer) -----------------------------------------------------------------------

def _source(i, n_in, n_out, mode, align, half):
    """OpenCV's Resize layer: the input coordinate (float32 scale) of output index ``i``."""
    if align and n_out > 1:
        scale = float(np.float32(n_in - 1) / np.float32(n_out - 1))
    else:
        scale = float(np.float32(n_in) / np.float32(n_out))
    if mode == "nearest":
        if align:
            return min(math.floor(i * scale + 0.5), n_in - 1)
        if half:
            return min(math.floor(i * scale + 0.5 * scale), n_in - 1)
        return min(i * n_in // n_out, n_in - 1)
    if half:
        return max((i + 0.5) * n_in / n_out - 0.5, 0.0)
    return i * scale


def resize_ref(x, out_h, out_w, mode, align=False, half=False):
    """OpenCV's ResizeLayer::forward (and cv::resize for its half-pixel bilinear), pixel by pixel."""
    n, c, h, w = x.shape
    out = np.zeros((n, c, out_h, out_w))
    for i in range(out_h):
        sy = _source(i, h, out_h, mode, align, half)
        for j in range(out_w):
            sx = _source(j, w, out_w, mode, align, half)
            if mode == "nearest":
                out[:, :, i, j] = x[:, :, sy, sx]
                continue
            y0, x0 = min(int(sy), h - 1), min(int(sx), w - 1)
            y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
            fy, fx = sy - y0, sx - x0
            out[:, :, i, j] = ((1 - fy) * ((1 - fx) * x[:, :, y0, x0] + fx * x[:, :, y0, x1]) +
                               fy * ((1 - fx) * x[:, :, y1, x0] + fx * x[:, :, y1, x1]))
    return out


# OpenCV reads the fields of an unknown block as text: write its booleans as 1.
RESIZE_CASES = [
    (dict(interpolation=Enum("nearest"), zoom_factor=2), (10, 14), "nearest", 0, 0),
    (dict(interpolation=Enum("bilinear"), zoom_factor=2), (10, 14), "bilinear", 0, 0),
    (dict(interpolation=Enum("opencv_linear"), zoom_factor=2), (10, 14), "bilinear", 0, 1),
    (dict(interpolation=Enum("nearest"), zoom_factor=1.5), (7, 10), "nearest", 0, 0),
    (dict(interpolation=Enum("nearest"), zoom_factor_x=3, zoom_factor_y=2), (10, 21), "nearest",
     0, 0),
    (dict(interpolation=Enum("nearest"), height=9, width=4), (9, 4), "nearest", 0, 0),
    (dict(interpolation=Enum("bilinear"), height=3, width=4), (3, 4), "bilinear", 0, 0),
    (dict(interpolation=Enum("nearest"), height=9, width=11, align_corners=1), (9, 11),
     "nearest", 1, 0),
    (dict(interpolation=Enum("bilinear"), height=9, width=11, align_corners=1), (9, 11),
     "bilinear", 1, 0),
    (dict(interpolation=Enum("nearest"), height=9, width=13, half_pixel_centers=1), (9, 13),
     "nearest", 0, 1),
    (dict(interpolation=Enum("bilinear"), height=9, width=13, half_pixel_centers=1), (9, 13),
     "bilinear", 0, 1),
]


@pytest.mark.parametrize("params,size,mode,align,half", RESIZE_CASES)
def test_resize(tmp_path, rng, params, size, mode, align, half):
    x = rng.normal(size=(2, 3, 5, 7)).astype(np.float32)
    lay = inputs(data=x.shape) + [fork_layer("rs", "Resize", "data", resize_param=params)]
    got, _, _ = ours(tmp_path, lay, x, ["rs"])
    assert_close(got["rs"], resize_ref(x.astype(np.float64), *size, mode, align, half),
                 "Resize vs the loop reference")
    if HAVE_CV2:
        ref = opencv_forward(tmp_path / "net.prototxt", None, x, ["rs"])["rs"]
        assert_close(got["rs"], ref, "Resize vs OpenCV")


def test_resize_to_a_second_bottoms_size(tmp_path, rng):
    x = rng.normal(size=(1, 2, 4, 6)).astype(np.float32)
    like = np.zeros((1, 1, 7, 9), np.float32)
    lay = inputs(data=x.shape, like=like.shape) + [
        fork_layer("rs", "Resize", ["data", "like"],
                   resize_param={"interpolation": Enum("bilinear")})]
    got = against_opencv(tmp_path, lay, {"data": x, "like": like}, ["rs"])
    assert got["rs"].shape == (1, 2, 7, 9)


def test_resize_follows_the_input_size(tmp_path, rng):
    lay = inputs(data=(1, 2, 4, 4)) + [fork_layer(
        "rs", "Resize", "data", resize_param={"interpolation": Enum("nearest"), "zoom_factor": 2})]
    proto, _ = write_fork_net(tmp_path, lay)
    x = rng.normal(size=(1, 2, 5, 3)).astype(np.float32)
    got = convert(proto).predict(x)
    assert_close(got, x.repeat(2, axis=2).repeat(2, axis=3), "Resize at 5x3")


@pytest.mark.parametrize("params,message", [
    ({"zoom_factor": 2}, "interpolation must be nearest, bilinear or opencv_linear"),
    ({"interpolation": Enum("cubic"), "zoom_factor": 2}, "got 'cubic'"),
    ({"interpolation": Enum("nearest")}, "needs the output height"),
])
def test_resize_errors_name_the_layer_and_parameter(tmp_path, params, message):
    lay = inputs(data=(1, 2, 4, 4)) + [fork_layer("rs", "Resize", "data", resize_param=params)]
    proto, _ = write_fork_net(tmp_path, lay)
    with pytest.raises(Exception, match=f"layer 'rs'.*{message}"):
        convert(proto)


# -- Interp with padding (PSPNet's crop) ---------------------------------------------------------

def interp_ref(x, pad_beg, pad_end, zoom):
    """PSPNet's caffe_cpu_interp2: the crop [-pad_beg, size + pad_end), corners aligned."""
    h, w = x.shape[2:]
    crop = x[:, :, -pad_beg:h + pad_end, -pad_beg:w + pad_end]
    ch, cw_ = crop.shape[2:]
    oh, ow = ch + (ch - 1) * (zoom - 1), cw_ + (cw_ - 1) * (zoom - 1)
    return resize_ref(crop, oh, ow, "bilinear", align=True)


@pytest.mark.parametrize("pad_beg,pad_end", [(0, -1), (-1, 0), (-2, -1)])
def test_interp_padding_crops_as_pspnet_caffe(tmp_path, rng, pad_beg, pad_end):
    # OpenCV ignores pad_beg/pad_end; PSPNet's layer crops the input by them first
    x = rng.normal(size=(2, 3, 6, 8)).astype(np.float32)
    lay = inputs(data=x.shape) + [fork_layer(
        "interp", "Interp", "data",
        interp_param={"zoom_factor": 2, "pad_beg": pad_beg, "pad_end": pad_end})]
    got, _, _ = ours(tmp_path, lay, x, ["interp"])
    assert_close(got["interp"], interp_ref(x.astype(np.float64), pad_beg, pad_end, 2),
                 "Interp with padding")


def test_interp_positive_padding_is_refused(tmp_path):
    lay = inputs(data=(1, 2, 4, 4)) + [fork_layer(
        "interp", "Interp", "data", interp_param={"zoom_factor": 2, "pad_beg": 1})]
    proto, _ = write_fork_net(tmp_path, lay)
    with pytest.raises(Exception, match="layer 'interp'.*pad_beg/pad_end must be 0 or negative"):
        convert(proto)


# -- Upsample --------------------------------------------------------------------------------

@pytest.mark.parametrize("params,scale", [({"scale": 2}, (2, 2)), ({"scale": 3}, (3, 3)),
                                         ({"scale_h": 2, "scale_w": 3}, (2, 3))])
def test_upsample_nearest_as_the_yolov3_forks(tmp_path, rng, params, scale):
    # OpenCV has no Upsample layer: the YOLOv3 forks' loop copies input[h / s][w / s]
    x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    lay = inputs(data=x.shape) + [fork_layer("up", "Upsample", "data", upsample_param=params)]
    got, _, _ = ours(tmp_path, lay, x, ["up"])
    assert_close(got["up"], x.repeat(scale[0], axis=2).repeat(scale[1], axis=3), "Upsample")


def unpool_ref(x, mask, out_h, out_w):
    """SegNet's UpsampleLayer::Forward_cpu: top[mask[i]] = bottom[i] per plane."""
    n, c = x.shape[:2]
    out = np.zeros((n, c, out_h * out_w))
    for b in range(n):
        for ch in range(c):
            for i, idx in enumerate(mask[b, ch].reshape(-1).astype(int)):
                out[b, ch, idx] = x[b, ch].reshape(-1)[i]
    return out.reshape(n, c, out_h, out_w)


def _pool_mask(rng, n, c, h, w, out_h, out_w):
    """A MAX pooling's mask: one index per 2x2 window of the (out_h, out_w) plane."""
    dy = rng.integers(0, 2, (n, c, h, w))
    dx = rng.integers(0, 2, (n, c, h, w))
    rows = np.minimum(np.arange(h)[:, None] * 2 + dy, out_h - 1)
    cols = np.minimum(np.arange(w)[None, :] * 2 + dx, out_w - 1)
    return (rows * out_w + cols).astype(np.float32)


@pytest.mark.parametrize("params,size", [({"scale": 2}, (8, 10)),
                                         ({"upsample_h": 7, "upsample_w": 9}, (7, 9)),
                                         ({"scale": 2, "pad_out_h": True}, (7, 10))])
def test_upsample_with_mask_as_segnet(tmp_path, rng, params, size):
    x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    mask = _pool_mask(rng, 2, 3, 4, 5, *size)
    lay = inputs(data=x.shape, mask=mask.shape) + [
        fork_layer("up", "Upsample", ["data", "mask"], upsample_param=params)]
    got, _, _ = ours(tmp_path, lay, {"data": x, "mask": mask}, ["up"])
    assert_close(got["up"], unpool_ref(x, mask, *size), "Upsample with a mask")


def test_upsample_mask_out_of_range_is_an_error(tmp_path, rng):
    x = rng.normal(size=(1, 1, 2, 2)).astype(np.float32)
    mask = np.array([[[[0, 3], [9, 16]]]], np.float32)  # 16 is past the 4x4 plane
    lay = inputs(data=x.shape, mask=mask.shape) + [
        fork_layer("up", "Upsample", ["data", "mask"], upsample_param={"scale": 2})]
    proto, _ = write_fork_net(tmp_path, lay)
    with pytest.raises(Exception, match="mask index 16 is outside the output plane of 16"):
        run(convert_record(proto), {"data": x, "mask": mask})


# -- PriorBox with explicit sizes (OpenCV's extension) --------------------------------------------

@pytest.mark.parametrize("params", [
    dict(width=[10, 20.5], height=[15, 8], variance=[0.1, 0.1, 0.2, 0.2], step=10, clip=False),
    dict(width=[12], height=[7], clip=True, offset=0.3, variance=[0.1]),
    dict(width=[12, 30, 6], height=[7, 4, 9], variance=[0.2], step_h=8, step_w=12, clip=False),
])
def test_prior_box_explicit_sizes(tmp_path, params):
    feat, img = np.zeros((1, 4, 3, 5), np.float32), np.zeros((1, 3, 30, 50), np.float32)
    lay = inputs(feat=feat.shape, img=img.shape) + [
        fork_layer("pb", "PriorBox", ["feat", "img"], prior_box_param=params)]
    got = against_opencv(tmp_path, lay, {"feat": feat, "img": img}, ["pb"])
    assert got["pb"].shape == (1, 2, 3 * 5 * len(params["width"]) * 4)


def test_prior_box_sizes_and_min_size_are_exclusive(tmp_path):
    lay = inputs(feat=(1, 4, 3, 5), img=(1, 3, 30, 50)) + [fork_layer(
        "pb", "PriorBox", ["feat", "img"],
        prior_box_param={"width": [10], "height": [10], "min_size": [5]})]
    proto, _ = write_fork_net(tmp_path, lay)
    with pytest.raises(Exception, match="layer 'pb'.*width/height replace min_size"):
        convert(proto)


# -- Proposal ----------------------------------------------------------------------------------

def proposal_ref(scores, deltas, im_info, feat_stride=16, base_size=16, ratio=(0.5, 1, 2),
                 scale=(8, 16, 32), pre_nms_topn=6000, post_nms_topn=300, nms_thresh=0.7):
    """OpenCV's ProposalLayer, one anchor at a time: (rois, scores), zero rows after the kept."""
    anchors = []
    for r in ratio:
        width = math.floor(base_size / math.sqrt(r) + 0.5)
        height = math.floor(width * r + 0.5)
        anchors += [(s * width, s * height) for s in scale]
    a_count = len(anchors)
    _, _, h, w = scores.shape
    rows, cols = int(im_info.reshape(-1)[0]), int(im_info.reshape(-1)[1])
    boxes, fg = [], []
    for y in range(h):
        for x in range(w):
            cx = (x + 0.5 * base_size / feat_stride) * feat_stride
            cy = (y + 0.5 * base_size / feat_stride) * feat_stride
            for a, (aw, ah) in enumerate(anchors):
                d = deltas[0, 4 * a:4 * a + 4, y, x]
                x1, y1, x2, y2 = cx - aw / 2, cy - ah / 2, cx + aw / 2 - 1, cy + ah / 2 - 1
                pw, ph = x2 - x1 + 1, y2 - y1 + 1
                ccx, ccy = d[0] * pw + x1 + pw / 2, d[1] * ph + y1 + ph / 2
                bw, bh = math.exp(d[2]) * pw, math.exp(d[3]) * ph
                box = [ccx - bw / 2, ccy - bh / 2, ccx + bw / 2, ccy + bh / 2]
                box = [min(max(v, 0.0), (cols if i % 2 == 0 else rows) - 1)
                       for i, v in enumerate(box)]
                boxes.append(box)
                fg.append(scores[0, a_count + a, y, x])
    boxes, fg = np.array(boxes), np.array(fg)

    def area(b):
        bw, bh = b[2] - b[0], b[3] - b[1]
        return 0.0 if bw < 0 or bh < 0 else (bw + 1) * (bh + 1)

    order = sorted(range(len(fg)), key=lambda i: -fg[i])[:pre_nms_topn]
    kept = []
    for i in order:
        if fg[i] <= 0:
            continue
        ok = True
        for k in kept:
            inter = [max(boxes[i][0], boxes[k][0]), max(boxes[i][1], boxes[k][1]),
                     min(boxes[i][2], boxes[k][2]), min(boxes[i][3], boxes[k][3])]
            overlap = area(inter)
            if overlap > 0 and overlap / (area(boxes[i]) + area(boxes[k]) - overlap) > nms_thresh:
                ok = False
                break
        if ok:
            kept.append(i)
            if len(kept) == post_nms_topn:
                break
    rois, best = np.zeros((post_nms_topn, 5)), np.zeros((post_nms_topn, 1))
    rois[:len(kept), 1:] = boxes[kept]
    best[:len(kept), 0] = fg[kept]
    return rois, best


PROPOSAL_CASES = [
    dict(ratio=[0.5, 1, 2], scale=[4, 8], pre_nms_topn=120, post_nms_topn=40, nms_thresh=0.6),
    dict(ratio=[1], scale=[2, 4, 8], pre_nms_topn=30, post_nms_topn=300, nms_thresh=0.5,
         feat_stride=8, base_size=12),
]


@pytest.mark.parametrize("params", PROPOSAL_CASES)
def test_proposal(tmp_path, rng, params):
    anchors = len(params["ratio"]) * len(params["scale"])
    scores = rng.random((1, 2 * anchors, 5, 7)).astype(np.float32)
    deltas = rng.normal(0, 0.3, (1, 4 * anchors, 5, 7)).astype(np.float32)
    im_info = np.array([[80, 112, 1]], np.float32)
    x = {"s": scores, "d": deltas, "im": im_info}
    lay = inputs(s=scores.shape, d=deltas.shape, im=im_info.shape) + [
        fork_layer("p", "Proposal", ["s", "d", "im"], top=["rois", "roi_scores"],
                   proposal_param=dict(params, min_size=16))]
    got, proto, _ = ours(tmp_path, lay, x, ["rois", "roi_scores"], keys="blob")
    rois, best = proposal_ref(scores.astype(np.float64), deltas.astype(np.float64), im_info,
                              **params)
    assert_close(got["rois"], rois, "Proposal rois vs the loop reference")
    assert_close(got["roi_scores"], best, "Proposal scores vs the loop reference")
    if HAVE_CV2:
        ref = opencv_forward(proto, None, x, ["p"])["p"]
        assert_close(got["rois"], ref, "Proposal rois vs OpenCV")


def test_proposal_refuses_gradients():
    from deepkit_engine import autograd, nd  # noqa: PLC0415
    scores = nd.array(np.full((1, 6, 2, 2), 0.5, np.float32))
    deltas = nd.array(np.zeros((1, 12, 2, 2), np.float32))
    scores.attach_grad()
    with autograd.record():
        out = nd.Proposal(scores, deltas, nd.array([[32.0, 32.0, 1.0]]), ratio="(1.0,)",
                          scale="(1.0, 2.0, 4.0)", post_nms_topn=5)[0]
    with pytest.raises(Exception, match="Proposal .* is inference-only"):
        out.backward()


def test_proposal_bottom_shapes_are_checked(tmp_path):
    lay = inputs(s=(1, 6, 3, 3), d=(1, 8, 3, 3), im=(1, 3)) + [
        fork_layer("p", "Proposal", ["s", "d", "im"],
                   proposal_param={"ratio": [1], "scale": [2, 4, 8]})]
    proto, _ = write_fork_net(tmp_path, lay)
    with pytest.raises(Exception, match="layer 'p'.*deltas bottom must be \\(1, 12, 3, 3\\)"):
        convert(proto)


# -- DetectionOutput with RefineDet's ARM bottoms ------------------------------------------------

def _priors(rng, num):
    centre = rng.uniform(0.2, 0.8, (num, 2))
    size = rng.uniform(0.1, 0.4, (num, 2))
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    var = np.tile([0.1, 0.1, 0.2, 0.2], (num, 1))
    return np.stack([boxes.reshape(-1), var.reshape(-1)])[None].astype(np.float32)


def _decode(priors, var, loc):
    """CENTER_SIZE decoding of SSD Caffe's DecodeBBox, one box at a time."""
    out = []
    for p, v, d in zip(priors, var, loc):
        pw, ph = p[2] - p[0], p[3] - p[1]
        cx, cy = v[0] * d[0] * pw + (p[0] + p[2]) / 2, v[1] * d[1] * ph + (p[1] + p[3]) / 2
        w, h = math.exp(v[2] * d[2]) * pw, math.exp(v[3] * d[3]) * ph
        out.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    return np.array(out)


def _iou(a, b):
    w, h = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def refinedet_ref(loc, conf, prior, arm_conf, arm_loc, classes, objectness, nms, top_k,
                  keep_top_k, threshold):
    """RefineDet's DetectionOutput (OSGetConfidenceScores, CasRegDecodeBBoxesAll), sorted rows."""
    n, num = loc.shape[0], prior.shape[2] // 4
    priors, var = prior[0, 0].reshape(-1, 4), prior[0, 1].reshape(-1, 4)
    rows = []
    for i in range(n):
        scores = conf[i].reshape(num, classes).copy()
        if arm_conf is not None:
            weak = arm_conf[i].reshape(num, 2)[:, 1] < objectness
            scores[weak] = 0.0
            scores[weak, 0] = 1.0
        refined = priors if arm_loc is None else _decode(priors, var, arm_loc[i].reshape(num, 4))
        boxes = _decode(refined, var, loc[i].reshape(num, 4))
        found = []
        for c in range(1, classes):
            order = [p for p in sorted(range(num), key=lambda p: -scores[p, c])
                     if scores[p, c] > threshold][:top_k]
            kept = []
            for p in order:
                if all(_iou(boxes[p], boxes[k]) <= nms for k in kept):
                    kept.append(p)
            found += [(scores[p, c], c, p) for p in kept]
        found = sorted(found, key=lambda t: -t[0])[:keep_top_k]
        rows += [[i, c, s] + list(boxes[p]) for s, c, p in found]
    rows = np.array(rows).reshape(-1, 7)
    return rows[np.lexsort(rows.T[::-1])]


def sorted_detections(out):
    rows = out.reshape(-1, 7)
    rows = rows[rows[:, 2] > 0]
    return rows[np.lexsort(rows.T[::-1])]


@pytest.mark.parametrize("arm", [1, 2])
def test_detection_output_with_arm_bottoms_as_refinedet(tmp_path, rng, arm):
    num, classes, batch = 30, 3, 2
    loc = rng.normal(0, 0.5, (batch, num * 4)).astype(np.float32)
    logits = rng.normal(0, 2, (batch, num, classes))
    conf = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).reshape(batch, -1)
    arm_logits = rng.normal(0, 2, (batch, num, 2))
    arm_conf = (np.exp(arm_logits) / np.exp(arm_logits).sum(-1, keepdims=True)).reshape(batch, -1)
    arm_loc = rng.normal(0, 0.5, (batch, num * 4)).astype(np.float32)
    prior = _priors(rng, num)
    x = {"loc": loc, "conf": conf.astype(np.float32), "prior": prior,
         "arm_conf": arm_conf.astype(np.float32), "arm_loc": arm_loc}
    names = ["loc", "conf", "prior", "arm_conf", "arm_loc"][:3 + arm]
    lay = inputs(**{k: x[k].shape for k in names}) + [fork_layer(
        "det", "DetectionOutput", names,
        detection_output_param={"num_classes": classes, "share_location": True,
                                "background_label_id": 0, "code_type": Enum("CENTER_SIZE"),
                                "nms_param": {"nms_threshold": 0.45, "top_k": 20},
                                "keep_top_k": 12, "confidence_threshold": 0.05,
                                "objectness_score": 0.4})]
    got, _, _ = ours(tmp_path, lay, {k: x[k] for k in names}, ["det"])
    ref = refinedet_ref(*(x[k].astype(np.float64) for k in ["loc", "conf", "prior"]),
                        x["arm_conf"].astype(np.float64),
                        x["arm_loc"].astype(np.float64) if arm == 2 else None,
                        classes, np.float32(0.4), 0.45, 20, 12, 0.05)
    rows = sorted_detections(got["det"])
    assert len(rows) > 0 and rows.shape == ref.shape, (rows.shape, ref.shape)
    assert np.array_equal(rows[:, :2], ref[:, :2])
    assert_close(rows[:, 2:], ref[:, 2:], "RefineDet detections")


def test_detection_output_neutral_arm_bottoms_match_opencv(tmp_path, rng):
    # OpenCV ignores the ARM bottoms; with every object score above the threshold and zero
    # refinement offsets, RefineDet's rules give the 3-bottom result, which OpenCV computes
    cv2 = pytest.importorskip("cv2")  # noqa: F841
    num, classes = 30, 3
    loc = rng.normal(0, 0.5, (1, num * 4)).astype(np.float32)
    logits = rng.normal(0, 2, (1, num, classes))
    conf = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).reshape(1, -1)
    x = {"loc": loc, "conf": conf.astype(np.float32), "prior": _priors(rng, num),
         "arm_conf": np.tile([0.1, 0.9], (1, num)).astype(np.float32),
         "arm_loc": np.zeros((1, num * 4), np.float32)}
    lay = inputs(**{k: v.shape for k, v in x.items()}) + [fork_layer(
        "det", "DetectionOutput", list(x),
        detection_output_param={"num_classes": classes, "background_label_id": 0,
                                "code_type": Enum("CENTER_SIZE"), "keep_top_k": 10,
                                "nms_param": {"nms_threshold": 0.45, "top_k": 20},
                                "confidence_threshold": 0.05, "objectness_score": 0.5})]
    got, proto, _ = ours(tmp_path, lay, x, ["det"])
    ref = opencv_forward(proto, None, x, ["det"])["det"]
    rows, ref_rows = sorted_detections(got["det"]), sorted_detections(ref)
    assert rows.shape == ref_rows.shape and len(rows) > 0
    assert np.array_equal(rows[:, :2], ref_rows[:, :2])
    assert_close(rows[:, 2:], ref_rows[:, 2:], "DetectionOutput with neutral ARM bottoms")


def test_detection_output_arm_loc_needs_shared_locations(tmp_path):
    lay = inputs(loc=(1, 36), conf=(1, 12), prior=(1, 2, 16), armc=(1, 8), arml=(1, 16)) + [
        fork_layer("det", "DetectionOutput", ["loc", "conf", "prior", "armc", "arml"],
                   detection_output_param={"num_classes": 3, "share_location": False,
                                           "nms_param": {"nms_threshold": 0.45}})]
    proto, _ = write_fork_net(tmp_path, lay)
    with pytest.raises(Exception, match="layer 'det'.*share_location must be true"):
        convert(proto)


# -- The fork parameter blocks in binary files ---------------------------------------------------

def test_fork_parameter_blocks_decode_from_a_caffemodel(tmp_path):
    interp = cw.encode("InterpParameter", {"zoom_factor": 2, "pad_beg": -1, "pad_end": -2})
    segnet = cw.encode("UpsampleParameter", {"scale_h": 2, "upsample_h": 9, "upsample_w": 7,
                                             "pad_out_w": True})
    layers = [
        cw.v2_layer("prop", "Proposal", proposal_param={"feat_stride": 8, "ratio": [0.5, 2.0],
                                                        "scale": [4.0], "nms_thresh": 0.6}),
        cw.v2_layer("yolo_up", "Upsample", upsample_param={"scale": 2}),
        cw.v2_layer("roi", "ROIPooling", roi_pooling_param={"pooled_h": 6, "pooled_w": 7,
                                                            "spatial_scale": 0.0625}),
        cw.v2_layer("psroi", "PSROIPooling", psroi_pooling_param={
            "spatial_scale": 0.0625, "output_dim": 21, "group_size": 7}),
        cw.v2_layer("pb", "PriorBox", prior_box_param={"min_size": [30.0], "step": 8.0,
                                                       "width": [1.0], "height": [2.0]}),
        cw.v2_layer("det", "DetectionOutput", detection_output_param={
            "num_classes": 21, "code_type": "CENTER_SIZE", "nms_param": {"nms_threshold": 0.45},
            "objectness_score": 0.02}),
        cw.v2_layer("interp", "Interp", _unknown=[(143, 2, interp)]),
        cw.v2_layer("segnet_up", "Upsample", _unknown=[(137, 2, segnet)]),
    ]
    path = tmp_path / "forks.caffemodel"
    cw.write_caffemodel(str(path), {"name": "forks", "layer": layers})
    net = reader.read_caffemodel(str(path))
    by_name = {layer.name: layer for layer in net.layer}

    def param(layer, block):
        return ForkParam(by_name[layer], block)

    p = param("prop", "proposal_param")
    assert (p.get("feat_stride"), p.list("ratio"), p.list("scale")) == (8, [0.5, 2.0], [4.0])
    assert p.get("nms_thresh") == pytest.approx(0.6)
    assert param("yolo_up", "upsample_param").get("scale") == 2
    assert param("roi", "roi_pooling_param").get("pooled_w") == 7
    assert param("psroi", "psroi_pooling_param").get("group_size") == 7
    assert param("pb", "prior_box_param").list("height") == [2.0]
    det = param("det", "detection_output_param")
    assert det.get("code_type") == "CENTER_SIZE"
    assert det.sub("nms_param").get("nms_threshold") == pytest.approx(0.45)
    i = param("interp", "interp_param")
    assert (i.get("zoom_factor"), i.get("pad_beg"), i.get("pad_end")) == (2, -1, -2)
    u = param("segnet_up", "upsample_param")
    assert (u.get("scale_h"), u.get("upsample_h"), u.get("upsample_w")) == (2, 9, 7)
    assert u.get("pad_out_w") is True


# -- SegNet: MAX pooling's mask top, then Upsample with it ------------------------------------

@pytest.mark.parametrize("pool", [dict(kernel_size=2, stride=2), dict(kernel_size=3, stride=2),
                                  dict(kernel_size=3, stride=2, pad=1),
                                  dict(kernel_size=2, stride=2, round_mode=Enum("FLOOR"))])
def test_pooling_mask_top(tmp_path, rng, pool):
    x = rng.normal(size=(2, 3, 7, 9)).astype(np.float32)
    lay = inputs(data=x.shape) + [fork_layer("pool", "Pooling", "data", top=["pooled", "mask"],
                                             pooling_param=dict(pool, pool=Enum("MAX")))]
    got, _, _ = ours(tmp_path, lay, x, ["pooled", "mask"], keys="blob")
    kh = kw = pool["kernel_size"]
    s, p = pool["stride"], pool.get("pad", 0)
    oh, ow = got["mask"].shape[2:]
    ref = np.zeros(got["mask"].shape)
    for i in range(oh):
        for j in range(ow):
            hs, ws = i * s - p, j * s - p
            he, we = min(hs + kh, 7), min(ws + kw, 9)
            hs, ws = max(hs, 0), max(ws, 0)
            window = x[:, :, hs:he, ws:we].reshape(2, 3, -1)
            best = window.argmax(axis=2)
            ref[:, :, i, j] = (hs + best // (we - ws)) * 9 + ws + best % (we - ws)
    assert np.array_equal(got["mask"], ref)
    pooled = np.take_along_axis(x.reshape(2, 3, -1), ref.reshape(2, 3, -1).astype(int), axis=2)
    assert_close(got["pooled"], pooled.reshape(ref.shape), "pooled values at the mask")


def test_segnet_pool_then_upsample(tmp_path, rng):
    x = rng.normal(size=(1, 2, 8, 10)).astype(np.float32)
    lay = inputs(data=x.shape) + [
        fork_layer("pool", "Pooling", "data", top=["pooled", "mask"],
                   pooling_param={"pool": Enum("MAX"), "kernel_size": 2, "stride": 2}),
        fork_layer("up", "Upsample", ["pooled", "mask"],
                   upsample_param={"upsample_h": 8, "upsample_w": 10})]
    got, _, _ = ours(tmp_path, lay, x, ["up"])
    windows = x.reshape(1, 2, 4, 2, 5, 2).transpose(0, 1, 2, 4, 3, 5).reshape(1, 2, 4, 5, 4)
    keep = windows == windows.max(axis=-1, keepdims=True)
    ref = np.where(keep, windows, 0).reshape(1, 2, 4, 5, 2, 2).transpose(0, 1, 2, 4, 3, 5)
    assert_close(got["up"], ref.reshape(1, 2, 8, 10), "Pooling mask then Upsample")
