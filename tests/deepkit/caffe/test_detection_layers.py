"""The SSD family (Permute, PriorBox, DetectionOutput, Normalize, Flatten/Reshape with axes)
against OpenCV's dnn Caffe importer, layer by layer, on small synthetic nets, and the real
MobileNet-SSD deploy prototxt with synthetic weights, blob by blob.
"""
import numpy as np
import pytest

from deepkit.caffe import convert, convert_record
from deepkit.caffe.verify import resolve_output, run

from .fork_nets import Enum, fork_layer, inputs, write_fork_net
from .nets import assert_close, opencv_forward
from .random_weights import write_random_caffemodel

cv2 = pytest.importorskip("cv2")


def check_layers(tmp_path, layers, x, names):
    """Convert, run, and compare the named layers with OpenCV; returns our outputs."""
    proto, weights = write_fork_net(tmp_path, layers)
    record = convert_record(proto, weights)
    resolved = {n: resolve_output(record, n, "layer")[0] for n in names}
    values = run(record, x, outputs=list(dict.fromkeys(resolved.values())))
    ref = opencv_forward(proto, weights, x, names)
    for n in names:
        assert_close(values[resolved[n]], ref[n], f"{n} vs OpenCV")
    return {n: values[resolved[n]] for n in names}, ref


def sorted_detections(out):
    """The detection rows (score > 0) of a (1, 1, R, 7) output, sorted (padding dropped)."""
    rows = out.reshape(-1, 7)
    rows = rows[rows[:, 2] > 0]
    return rows[np.lexsort(rows.T[::-1])]


# -- Permute ------------------------------------------------------------------------------------

@pytest.mark.parametrize("order", [[0, 2, 3, 1], [0, 3, 1, 2], [0, 1, 3, 2]])
def test_permute(tmp_path, rng, order):
    x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    lay = inputs(data=x.shape) + [fork_layer("perm", "Permute", "data",
                                             permute_param={"order": order})]
    check_layers(tmp_path, lay, x, ["perm"])


def test_permute_partial_order_appends_the_other_axes(tmp_path, rng):
    # Caffe's rule (OpenCV asks for every axis): the axes not named follow in order
    x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    lay = inputs(data=x.shape) + [fork_layer("perm", "Permute", "data",
                                             permute_param={"order": [0, 3]})]
    proto, _ = write_fork_net(tmp_path, lay)
    got = run(convert_record(proto), x)["perm_output"]
    assert_close(got, x.transpose(0, 3, 1, 2), "Permute order [0, 3]")


def test_permute_bad_order_names_the_layer(tmp_path):
    lay = inputs(data=(1, 2, 3, 4)) + [fork_layer("perm", "Permute", "data",
                                                  permute_param={"order": [0, 2, 2, 1]})]
    proto, _ = write_fork_net(tmp_path, lay)
    with pytest.raises(Exception, match="layer 'perm' .*names axis 2 twice"):
        convert(proto)


# -- Flatten / Reshape with axes (as in SSD heads) ---------------------------------------------------

def test_ssd_head_permute_flatten_reshape(tmp_path, rng):
    x = rng.normal(size=(1, 12, 3, 3)).astype(np.float32)
    lay = inputs(data=x.shape) + [
        fork_layer("perm", "Permute", "data", permute_param={"order": [0, 2, 3, 1]}),
        fork_layer("flat", "Flatten", "perm", flatten_param={"axis": 1}),
        fork_layer("flat2", "Flatten", "data", flatten_param={"axis": 2, "end_axis": 3}),
        fork_layer("resh", "Reshape", "flat", reshape_param={"shape": {"dim": [0, -1, 4]}}),
        fork_layer("resh2", "Reshape", "data", reshape_param={"shape": {"dim": [3, 4]},
                                                              "axis": 1, "num_axes": 1})]
    check_layers(tmp_path, lay, x, ["perm", "flat", "flat2", "resh", "resh2"])


# -- PriorBox -----------------------------------------------------------------------------------------

PRIOR_CASES = [
    {"min_size": [30.0], "aspect_ratio": [2.0], "flip": True, "clip": False,
     "variance": [0.1, 0.1, 0.2, 0.2], "offset": 0.5},
    {"min_size": [60.0], "max_size": [111.0], "aspect_ratio": [2.0, 3.0], "flip": True,
     "clip": True, "variance": [0.1]},
    {"min_size": [20.0, 40.0], "max_size": [35.0, 70.0], "aspect_ratio": [2.0, 0.5],
     "flip": False, "step": 16.0, "offset": 0.25, "variance": [0.1], "clip": False},
    {"min_size": [32.0], "aspect_ratio": [1.0, 2.0, 2.0], "step_h": 20.0, "step_w": 10.0,
     "variance": [0.1, 0.1, 0.2, 0.2], "clip": True},
]


def test_prior_box_clip_defaults_to_false_as_in_caffe(tmp_path, rng):
    # OpenCV clips by default; SSD Caffe's prior_box_param.clip defaults to false
    case = {"min_size": [60.0], "aspect_ratio": [2.0]}
    lay = inputs(data=(1, 4, 3, 3), image=(1, 3, 90, 90)) + [
        fork_layer("prior", "PriorBox", ["data", "image"], prior_box_param=case)]
    proto, _ = write_fork_net(tmp_path, lay)
    x = {"data": np.zeros((1, 4, 3, 3), np.float32), "image": np.zeros((1, 3, 90, 90), np.float32)}
    got = run(convert_record(proto), x)["prior_output"]
    assert got.min() < 0
    assert_close(got, ref_prior_box((3, 3), (90, 90), case), "PriorBox vs Caffe's loop")

#: Explicit image sizes: OpenCV normalizes by the image input's size whatever img_size says,
#: so these follow Caffe's loop (``ref_prior_box``).
PRIOR_IMAGE_SIZE_CASES = [
    {"min_size": [32.0], "aspect_ratio": [2.0], "img_size": 320, "step_h": 20.0,
     "step_w": 10.0},
    {"min_size": [24.0], "max_size": [48.0], "img_h": 200, "img_w": 100,
     "variance": [0.2, 0.2, 0.1, 0.1], "clip": True},
]


def ref_prior_box(layer_hw, image_hw, p):
    """SSD Caffe's PriorBoxLayer::Forward_cpu, loop for loop (float64)."""
    ratios = [1.0]
    for ar in p.get("aspect_ratio", []):
        if all(abs(ar - r) >= 1e-6 for r in ratios):
            ratios.append(ar)
            if p.get("flip", True):
                ratios.append(1.0 / ar)
    img_h = p.get("img_size", p.get("img_h", image_hw[0]))
    img_w = p.get("img_size", p.get("img_w", image_hw[1]))
    step_h = p.get("step", p.get("step_h", img_h / layer_hw[0]))
    step_w = p.get("step", p.get("step_w", img_w / layer_hw[1]))
    offset = p.get("offset", 0.5)
    boxes = []
    for h in range(layer_hw[0]):
        for w in range(layer_hw[1]):
            cx, cy = (w + offset) * step_w, (h + offset) * step_h
            for s, min_size in enumerate(p["min_size"]):
                sides = [(min_size, min_size)]
                if p.get("max_size"):
                    side = np.sqrt(min_size * p["max_size"][s])
                    sides.append((side, side))
                sides += [(min_size * np.sqrt(ar), min_size / np.sqrt(ar)) for ar in ratios
                          if abs(ar - 1) >= 1e-6]
                for bw, bh in sides:
                    boxes += [(cx - bw / 2) / img_w, (cy - bh / 2) / img_h,
                              (cx + bw / 2) / img_w, (cy + bh / 2) / img_h]
    boxes = np.asarray(boxes)
    if p.get("clip"):
        boxes = np.clip(boxes, 0, 1)
    var = p.get("variance", [0.1])
    var = np.tile(var if len(var) == 4 else var * 4, len(boxes) // 4)
    return np.stack([boxes, var])[None]


@pytest.mark.parametrize("case", PRIOR_IMAGE_SIZE_CASES)
def test_prior_box_explicit_image_size(tmp_path, rng, case):
    lay = inputs(data=(1, 4, 5, 7), image=(1, 3, 150, 210)) + [
        fork_layer("prior", "PriorBox", ["data", "image"], prior_box_param=case)]
    proto, _ = write_fork_net(tmp_path, lay)
    x = {"data": rng.normal(size=(1, 4, 5, 7)).astype(np.float32),
         "image": rng.normal(size=(1, 3, 150, 210)).astype(np.float32)}
    got = run(convert_record(proto), x)["prior_output"]
    assert_close(got, ref_prior_box((5, 7), (150, 210), case), "PriorBox vs Caffe's loop")


@pytest.mark.parametrize("case", PRIOR_CASES)
def test_prior_box(tmp_path, rng, case):
    x = rng.normal(size=(1, 4, 5, 7)).astype(np.float32)
    image = rng.normal(size=(1, 3, 150, 210)).astype(np.float32)
    lay = inputs(data=x.shape, image=image.shape) + [
        fork_layer("prior", "PriorBox", ["data", "image"], prior_box_param=case)]
    got, _ = check_layers(tmp_path, lay, {"data": x, "image": image}, ["prior"])
    assert got["prior"].shape[:2] == (1, 2)


def test_prior_box_follows_the_feature_map_size(tmp_path, rng):
    lay = inputs(data=(1, 4, 5, 7), image=(1, 3, 150, 210)) + [
        fork_layer("prior", "PriorBox", ["data", "image"], prior_box_param=PRIOR_CASES[1])]
    proto, _ = write_fork_net(tmp_path, lay)
    record = convert_record(proto)
    x = {"data": rng.normal(size=(1, 4, 9, 4)).astype(np.float32),
         "image": rng.normal(size=(1, 3, 300, 120)).astype(np.float32)}
    got = run(record, x)["prior_output"]
    assert_close(got, opencv_forward(proto, None, x, ["prior"])["prior"], "prior at 9x4")


# -- Normalize ------------------------------------------------------------------------------------

@pytest.mark.parametrize("across,shared", [(False, False), (True, True), (False, True)])
def test_normalize(tmp_path, rng, across, shared):
    x = rng.normal(size=(2, 5, 3, 4)).astype(np.float32)
    scale = rng.uniform(1, 20, (1,) if shared else (5,))
    lay = inputs(data=x.shape) + [
        fork_layer("norm", "Normalize", "data", blobs=[scale],
                   norm_param={"across_spatial": across, "channel_shared": shared,
                               "eps": 1e-10})]
    check_layers(tmp_path, lay, x, ["norm"])


def test_normalize_across_spatial_with_channel_scales(tmp_path, rng):
    # OpenCV refuses this combination; Caffe: one norm per sample, one scale per channel
    x = rng.normal(size=(2, 5, 3, 4)).astype(np.float32)
    scale = rng.uniform(1, 20, (5,))
    lay = inputs(data=x.shape) + [
        fork_layer("norm", "Normalize", "data", blobs=[scale],
                   norm_param={"across_spatial": True, "channel_shared": False})]
    proto, weights = write_fork_net(tmp_path, lay)
    got = run(convert_record(proto, weights), x)["norm_output"]
    x64 = x.astype(np.float64)
    norm = np.sqrt((x64 ** 2).sum(axis=(1, 2, 3), keepdims=True) + np.float32(1e-10))
    assert_close(got, x64 / norm * scale.astype(np.float32).reshape(1, 5, 1, 1), "Normalize")


# -- DetectionOutput ---------------------------------------------------------------------------------

def _priors(rng, num):
    centre = rng.uniform(0.1, 0.9, (num, 2))
    size = rng.uniform(0.1, 0.4, (num, 2))
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    var = np.tile([0.1, 0.1, 0.2, 0.2], (num, 1))
    return np.stack([boxes.reshape(-1), var.reshape(-1)])[None].astype(np.float32)


DETECTION_CASES = [
    dict(code_type="CENTER_SIZE", share_location=True, keep_top_k=20, top_k=30,
         nms_threshold=0.45, confidence_threshold=0.2),
    # -1 (no limit) crashes OpenCV: its reference runs with limits no image reaches
    dict(code_type="CORNER", share_location=True, keep_top_k=-1, top_k=-1,
         nms_threshold=0.3, confidence_threshold=0.3, opencv=dict(keep_top_k=1000, top_k=40)),
    dict(code_type="CENTER_SIZE", share_location=False, keep_top_k=10, top_k=15,
         nms_threshold=0.5, confidence_threshold=0.1),
    dict(code_type="CORNER", share_location=True, keep_top_k=8, top_k=40,
         nms_threshold=0.4, confidence_threshold=0.05, variance_encoded_in_target=True),
]


@pytest.mark.parametrize("case", DETECTION_CASES)
def test_detection_output(tmp_path, rng, case):
    num, classes, batch = 40, 4, 2
    loc_classes = 1 if case["share_location"] else classes
    loc = rng.normal(0, 0.5, (batch, num * loc_classes * 4)).astype(np.float32)
    logits = rng.normal(0, 2, (batch, num, classes))
    conf = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).reshape(batch, -1)
    prior = _priors(rng, num)
    if case.get("variance_encoded_in_target"):
        prior = prior[:, :1]  # priors only: the offsets include the variances
    params = {"num_classes": classes, "share_location": case["share_location"],
              "background_label_id": 0,
              "nms_param": {"nms_threshold": case["nms_threshold"], "top_k": case["top_k"]},
              "code_type": Enum(case["code_type"]), "keep_top_k": case["keep_top_k"],
              "confidence_threshold": case["confidence_threshold"]}
    if case.get("variance_encoded_in_target"):
        params["variance_encoded_in_target"] = True
    def net(folder, p):
        folder.mkdir()
        lay = inputs(loc=loc.shape, conf=conf.shape, prior=prior.shape) + [
            fork_layer("det", "DetectionOutput", ["loc", "conf", "prior"],
                       detection_output_param=p)]
        return write_fork_net(folder, lay)[0]

    x = {"loc": loc, "conf": conf.astype(np.float32), "prior": prior}
    record = convert_record(net(tmp_path / "ours", params))
    got = sorted_detections(run(record, x)["det_output"])
    limits = case.get("opencv", {})
    theirs = dict(params, keep_top_k=limits.get("keep_top_k", case["keep_top_k"]),
                  nms_param=dict(params["nms_param"], top_k=limits.get("top_k", case["top_k"])))
    ref = sorted_detections(opencv_forward(net(tmp_path / "opencv", theirs), None, x,
                                           ["det"])["det"])
    assert len(got) > 0 and got.shape == ref.shape, (got.shape, ref.shape)
    assert np.array_equal(got[:, :2], ref[:, :2])  # image ids and labels
    assert_close(got[:, 2:], ref[:, 2:], "scores and boxes")
    if case["keep_top_k"] > 0:
        for image in range(batch):
            assert (got[:, 0] == image).sum() <= case["keep_top_k"]


def test_detection_output_refuses_gradients(tmp_path, rng):
    from deepkit_engine import autograd, nd  # noqa: PLC0415
    prior = nd.array(_priors(rng, 4))
    loc = nd.array(rng.normal(size=(1, 16)).astype(np.float32))
    conf = nd.array(np.full((1, 8), 0.5, np.float32))
    loc.attach_grad()
    with autograd.record():
        out = nd.DetectionOutput(loc, conf, prior, num_classes=2)
    with pytest.raises(Exception, match="DetectionOutput .* is inference-only"):
        out.backward()


# -- MobileNet-SSD ------------------------------------------------------------------------------------

CONF_HEADS = ["conv11_mbox_conf", "conv13_mbox_conf", "conv14_2_mbox_conf", "conv15_2_mbox_conf",
              "conv16_2_mbox_conf", "conv17_2_mbox_conf"]


def boost_classes(bias):
    """Raise the scores of three classes in an SSD confidence head's bias ([prior][class])."""
    bias = bias.copy()
    cls = np.arange(bias.size) % 21
    bias[cls == 7] += 4.0
    bias[cls == 12] += 3.5
    bias[cls == 15] += 3.0
    return bias


def mobilenet_ssd(shared_data, tmp_path, seed=1):
    proto = shared_data / "caffe" / "mobilenet_ssd" / "deploy.prototxt"
    weights = write_random_caffemodel(proto, tmp_path / "mobilenet_ssd.caffemodel",
                                      np.random.default_rng(seed),
                                      bias={n: boost_classes for n in CONF_HEADS})
    return proto, weights


def test_mobilenet_ssd_every_blob_matches_opencv(shared_data, tmp_path):
    proto, weights = mobilenet_ssd(shared_data, tmp_path)
    model = convert(proto, weights)
    record = model.conversion
    assert not record.problems and not any("permute_param" in w for w in record.warnings)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 300, 300)).astype(np.float32)
    names = [r.name for r in record.layers if r.status == "converted"]
    assert {"Permute", "PriorBox", "Flatten", "Reshape", "DetectionOutput"} <= \
        {r.type for r in record.layers if r.status == "converted"}
    ref = opencv_forward(proto, weights, x, names)
    resolved = {n: resolve_output(record, n, "layer")[0] for n in names}
    values = run(record, x, outputs=list(dict.fromkeys(resolved.values())))
    for n in names:
        if n == "detection_out":
            continue
        assert_close(values[resolved[n]], ref[n], f"{n} vs OpenCV")
    got = sorted_detections(model.predict(x))
    want = sorted_detections(ref["detection_out"])
    assert len(want) >= 5 and got.shape == want.shape
    assert np.array_equal(got[:, :2], want[:, :2])
    assert_close(got[:, 2:], want[:, 2:], "detections")


# -- ShuffleChannel, Axpy ---------------------------------------------------------------------------

@pytest.mark.parametrize("group", [1, 2, 3])
def test_shuffle_channel(tmp_path, rng, group):
    x = rng.normal(size=(2, 6, 3, 4)).astype(np.float32)
    lay = inputs(data=x.shape) + [fork_layer("shuffle", "ShuffleChannel", "data",
                                             shuffle_channel_param={"group": group})]
    got, _ = check_layers(tmp_path, lay, x, ["shuffle"])
    want = x.reshape(2, group, 6 // group, 3, 4).swapaxes(1, 2).reshape(x.shape)
    assert_close(got["shuffle"], want, "ShuffleChannel vs NumPy")


def test_axpy(tmp_path, rng):
    # OpenCV 4.14's importer fails on this net (a shape assertion); SENet's rule: a * x + y
    a = rng.normal(size=(2, 3, 1, 1)).astype(np.float32)
    x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    y = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    lay = inputs(a=a.shape, x=x.shape, y=y.shape) + [fork_layer("axpy", "Axpy", ["a", "x", "y"])]
    proto, _ = write_fork_net(tmp_path, lay)
    got = run(convert_record(proto), {"a": a, "x": x, "y": y})["axpy_output"]
    assert_close(got, a * x + y, "Axpy vs NumPy")


# -- the elementwise types OpenCV accepts beyond BVLC's -------------------------------------------

@pytest.mark.parametrize("type_", ["Mish", "HardSigmoid", "HardSwish", "Gelu", "Softplus", "Celu",
                                   "Selu", "Sqrt", "Floor", "Ceil", "Sin", "Cos", "Tan", "Sinh",
                                   "Cosh", "Erf", "Round", "Sign", "Reciprocal", "Softsign"])
def test_opencv_elementwise_types(tmp_path, rng, type_):
    x = rng.uniform(-3, 3, (2, 3, 4, 5)).astype(np.float32)
    if type_ in ("Sqrt",):
        x = np.abs(x) + 0.1
    if type_ == "Reciprocal":
        x = np.where(np.abs(x) < 0.2, 0.5, x).astype(np.float32)
    if type_ in ("Floor", "Ceil", "Round", "Sign"):
        x = (np.round(x * 4) / 4 + 0.1).astype(np.float32)  # away from the steps
    lay = inputs(data=x.shape) + [fork_layer("act", type_, "data")]
    check_layers(tmp_path, lay, x, ["act"])


# -- Interp ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("params", [{"zoom_factor": 2}, {"zoom_factor": 3}])
def test_interp(tmp_path, rng, params):
    x = rng.normal(size=(2, 3, 6, 8)).astype(np.float32)
    lay = inputs(data=x.shape) + [fork_layer("interp", "Interp", "data", interp_param=params)]
    check_layers(tmp_path, lay, x, ["interp"])


@pytest.mark.parametrize("params,size", [({"height": 9, "width": 5}, (9, 5)),
                                         ({"shrink_factor": 2}, (3, 4)),
                                         ({"zoom_factor": 3, "shrink_factor": 2}, (7, 10))])
def test_interp_sizes_as_pspnet_caffe(tmp_path, rng, params, size):
    # OpenCV 4.14 refuses height/width and shrink_factor alone, and zooms before shrinking;
    # PSPNet's Caffe layer
    # shrinks first ((n - 1) / shrink + 1, then n + (n - 1) * (zoom - 1))
    from tests.deepkit_engine.ops.test_vision import _resize_ref  # noqa: PLC0415
    x = rng.normal(size=(2, 3, 6, 8)).astype(np.float32)
    lay = inputs(data=x.shape) + [fork_layer("interp", "Interp", "data", interp_param=params)]
    proto, _ = write_fork_net(tmp_path, lay)
    got = run(convert_record(proto), x)["interp_output"]
    assert got.shape == (2, 3) + size
    assert_close(got, _resize_ref(x.astype(np.float64), height=size[0], width=size[1]),
                 "Interp vs the corner-aligned loop")


def test_interp_follows_the_input_size(tmp_path, rng):
    lay = inputs(data=(1, 2, 4, 4)) + [fork_layer("interp", "Interp", "data",
                                                  interp_param={"zoom_factor": 2})]
    proto, _ = write_fork_net(tmp_path, lay)
    model = convert(proto)
    assert model.metadata["inputs"][0]["any_size"] is True
    x = rng.normal(size=(1, 2, 5, 7)).astype(np.float32)
    got = model.predict(x)
    assert got.shape == (1, 2, 9, 13)
    assert_close(got, opencv_forward(proto, None, x, ["interp"])["interp"], "Interp at 5x7")


# -- ROIPooling --------------------------------------------------------------------------------------

@pytest.mark.parametrize("pooled,scale", [((2, 2), 0.5), ((3, 2), 0.25), ((1, 1), 1.0)])
def test_roi_pooling(tmp_path, rng, pooled, scale):
    x = rng.normal(size=(2, 3, 10, 12)).astype(np.float32)
    rois = np.array([[0, 0, 0, 20, 16], [1, 4.5, 2, 30, 30], [0, 10, 12, 11, 13],
                     [1, -4, -6, 8, 9]], np.float32)
    lay = inputs(data=x.shape, rois=rois.shape) + [
        fork_layer("roi", "ROIPooling", ["data", "rois"],
                   roi_pooling_param={"pooled_h": pooled[0], "pooled_w": pooled[1],
                                      "spatial_scale": scale})]
    got, _ = check_layers(tmp_path, lay, {"data": x, "rois": rois}, ["roi"])
    assert got["roi"].shape == (4, 3) + pooled


@pytest.mark.parametrize("dim,group,scale", [(2, 3, 0.5), (3, 2, 0.25), (1, 1, 1.0)])
def test_psroi_pooling(tmp_path, rng, dim, group, scale):
    x = rng.normal(size=(2, dim * group * group, 10, 12)).astype(np.float32)
    rois = np.array([[0, 0, 0, 20, 16], [1, 4.5, 2, 30, 30], [0, 10, 12, 11, 13],
                     [1, -4, -6, 8, 9]], np.float32)
    lay = inputs(data=x.shape, rois=rois.shape) + [
        fork_layer("psroi", "PSROIPooling", ["data", "rois"],
                   psroi_pooling_param={"output_dim": dim, "group_size": group,
                                        "spatial_scale": scale})]
    got, _ = check_layers(tmp_path, lay, {"data": x, "rois": rois}, ["psroi"])
    assert got["psroi"].shape == (4, dim, group, group)
