"""The public reader: real Caffe models, blob shapes, wrong files, memory and speed."""
import mmap
import time
import tracemalloc

import numpy as np
import pytest

from deepkit.caffe.message import Message
from deepkit.caffe.reader import (CaffeFormatError, blob_array, blob_shape, blob_shape_matches,
                                  read_binaryproto, read_caffemodel, read_prototxt,
                                  unknown_field_report)
from deepkit_engine.base import DeepkitError

from .caffe_writer import blob, caffemodel_bytes, encode, v2_layer, write_binaryproto, \
    write_caffemodel

# name: (format, prototxt layers after upgrade, caffemodel parameter count,
#        {layer: blob shapes as read with the layer's own ranks})
REAL_MODELS = {
    "lenet_mnist": ("V2", ["data", "conv1", "pool1", "conv2", "pool2", "ip1", "relu1", "ip2",
                           "loss"], 431080,
                    {"conv1": [(20, 1, 5, 5), (20,)], "ip1": [(500, 800), (500,)],
                     "ip2": [(10, 500), (10,)]}),
    "lenet_mnist_v1": ("V1", ["input", "conv1", "pool1", "conv2", "pool2", "ip1", "relu1",
                              "ip2", "prob"], 431080,
                       {"conv1": [(20, 1, 5, 5), (20,)], "ip1": [(500, 800), (500,)],
                        "ip2": [(10, 500), (10,)]}),
    "cifar10_full_v1": ("V1", ["input", "conv1", "pool1", "relu1", "norm1", "conv2", "relu2",
                               "pool2", "norm2", "conv3", "relu3", "pool3", "ip1", "prob"],
                        89578,
                        {"conv1": [(32, 3, 5, 5), (32,)], "conv3": [(64, 32, 5, 5), (64,)],
                         "ip1": [(10, 1024), (10,)]}),
    "mtcnn_pnet": ("V2", ["input", "conv1", "PReLU1", "pool1", "conv2", "PReLU2", "conv3",
                          "PReLU3", "conv4-1", "conv4-2", "prob1"], 6632,
                   {"conv1": [(10, 3, 3, 3), (10,)], "PReLU1": [(10,)],
                    "conv4-2": [(4, 32, 1, 1), (4,)]}),
    "mobilenet_cifar10": ("V2", None, 733461,
                          {"Convolution1": [(32, 3, 3, 3), (32,)],
                           "Convolution2": [(32, 1, 3, 3), (32,)],
                           "BatchNorm1": [(32,), (32,), (1,)], "Scale1": [(32,), (32,)],
                           "InnerProduct1": [(10, 1024), (10,)]}),
}

_RANK = {("Convolution", 0): 4, ("InnerProduct", 0): 2, ("PReLU", 0): 1}


def _rank(layer_type, index):
    return _RANK.get((layer_type, index), 1)


@pytest.mark.parametrize("model", sorted(REAL_MODELS))
def test_real_models_read(shared_data, model):
    fmt, layers, count, shapes = REAL_MODELS[model]
    folder = shared_data / "caffe" / model
    net = read_prototxt(folder / "deploy.prototxt")
    weights = read_caffemodel(folder / "model.caffemodel")
    assert net.meta["format"] == fmt and weights.meta["format"] == fmt
    assert not net.layers and not weights.layers and not net.has("input")
    assert all(isinstance(layer.type, str) and layer.type for layer in net.layer)
    if layers is not None:
        assert [layer.name for layer in net.layer] == layers
    assert net.layer[0].type == "Input"
    assert net.meta["unknown_fields"] == []
    if model == "mtcnn_pnet":  # its training fork added a float field 3 to SoftmaxParameter
        (line,) = weights.meta["unknown_fields"]
        assert line.startswith("layer[15]('loss1').softmax_param: field #3 (wire type 5)")
    else:
        assert weights.meta["unknown_fields"] == []
    by_name = {}
    for layer in weights.layer:
        by_name.setdefault(layer.name, layer)
    total = 0
    for layer in weights.layer:
        for i, b in enumerate(layer.blobs):
            arr = blob_array(b, ndim=_rank(layer.type, i))
            assert arr.dtype == np.float32 and not arr.flags.writeable
            total += arr.size
    assert total == count
    for name, expected in shapes.items():
        layer = by_name[name]
        got = [blob_array(b, ndim=len(shape)).shape for b, shape in zip(layer.blobs, expected)]
        assert got == expected, name
    # every layer of the deploy net that has parameters has weights in the caffemodel
    for layer in net.layer:
        if layer.type in ("Convolution", "InnerProduct", "PReLU", "BatchNorm", "Scale"):
            assert by_name[layer.name].blobs, layer.name


def test_real_v1_models_upgrade(shared_data):
    net = read_prototxt(shared_data / "caffe" / "cifar10_full_v1" / "deploy.prototxt")
    assert net.layer[0].input_param.shape[0].dim == [1, 3, 32, 32]
    norm1 = net.layer[4]
    assert norm1.type == "LRN" and norm1.lrn_param.norm_region == "WITHIN_CHANNEL"
    assert norm1.lrn_param.local_size == 3 and norm1.lrn_param.alpha == pytest.approx(5e-5)
    pool3 = net.layer[11]
    assert pool3.pooling_param.pool == "AVE" and pool3.pooling_param.round_mode == "CEIL"
    weights = read_caffemodel(shared_data / "caffe" / "cifar10_full_v1" / "model.caffemodel")
    ip1 = [layer for layer in weights.layer if layer.name == "ip1"][0]
    assert blob_shape(ip1.blobs[0]) == (1, 1, 10, 1024)          # legacy, as stored
    assert blob_shape(ip1.blobs[0], ndim=2) == (10, 1024)
    assert blob_shape_matches(ip1.blobs[0], (10, 1024))
    assert blob_shape_matches(ip1.blobs[1], (10,))
    assert not blob_shape_matches(ip1.blobs[0], (1024, 10))
    types = [layer.type for layer in weights.layer]
    assert types[0] == "Data" and types[-1] == "SoftmaxWithLoss"
    v1 = read_prototxt(shared_data / "caffe" / "lenet_mnist_v1" / "deploy.prototxt")
    conv1 = v1.layer[1]
    assert [(p.lr_mult, p.has("decay_mult")) for p in conv1.param] == [(1.0, False), (2.0, False)]


def test_real_caffemodel_arrays_view_the_mapping(shared_data):
    weights = read_caffemodel(shared_data / "caffe" / "lenet_mnist" / "model.caffemodel")
    data = weights.layer[5].blobs[0].data
    assert not data.flags.owndata
    base = data.base
    while not isinstance(base, memoryview):
        base = base.base
    assert isinstance(base.obj, mmap.mmap)


def test_caffemodel_passed_as_prototxt_is_explained(shared_data):
    path = shared_data / "caffe" / "lenet_mnist" / "model.caffemodel"
    with pytest.raises(CaffeFormatError) as info:
        read_prototxt(path)
    text = str(info.value)
    assert text.startswith(str(path)) and "binary" in text
    assert "caffemodel with 9 layers (mnist, conv1, pool1, ...)" in text
    assert isinstance(info.value, DeepkitError)


def test_prototxt_passed_as_caffemodel_is_explained(shared_data):
    path = shared_data / "caffe" / "lenet_mnist" / "deploy.prototxt"
    with pytest.raises(CaffeFormatError) as info:
        read_caffemodel(path)
    text = str(info.value)
    assert text.startswith(str(path)) and "is a text file" in text
    assert "'name: \"LeNet\"'" in text and "network definition" in text


@pytest.mark.parametrize("content, match", [
    (b"", "is empty"),
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n", "Git LFS"),
    (b"<!DOCTYPE html>\n<html><body>404</body></html>", "HTML page"),
])
def test_wrong_files_as_caffemodel(tmp_path, content, match):
    path = tmp_path / "model.caffemodel"
    path.write_bytes(content)
    with pytest.raises(CaffeFormatError, match=match):
        read_caffemodel(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(CaffeFormatError, match="no such file"):
        read_caffemodel(tmp_path / "nope.caffemodel")
    with pytest.raises(CaffeFormatError, match="no such file"):
        read_prototxt(str(tmp_path / "nope.prototxt"))
    with pytest.raises(CaffeFormatError, match="directory"):
        read_caffemodel(tmp_path)


def test_binaryproto_passed_as_caffemodel(tmp_path):
    path = tmp_path / "mean.binaryproto"
    write_binaryproto(path, blob(np.ones((1, 3, 4, 4), np.float32), legacy=True))
    with pytest.raises(CaffeFormatError, match="no layers.*BlobProto"):
        read_caffemodel(path)


def test_solver_prototxt_is_explained():
    with pytest.raises(CaffeFormatError, match="solver definition.*base_lr"):
        read_prototxt('net: "train_val.prototxt"\nbase_lr: 0.01\nlr_policy: "step"\n')
    with pytest.raises(CaffeFormatError, match="defines no layers"):
        read_prototxt('name: "empty"\n')


def test_truncated_caffemodel_file(tmp_path, shared_data):
    data = (shared_data / "caffe" / "mtcnn_pnet" / "model.caffemodel").read_bytes()
    path = tmp_path / "cut.caffemodel"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CaffeFormatError) as info:
        read_caffemodel(path)
    err = info.value
    assert err.offset is not None and str(path) in str(err)
    assert "truncated or corrupt" in str(err) and f"file size {len(data) // 2} bytes" in str(err)


def test_every_truncation_of_a_caffemodel_is_a_clean_error():
    data = caffemodel_bytes({"layer": [v2_layer("fc", "InnerProduct", ["x"], ["y"],
                                                [np.ones((2, 3), np.float32)],
                                                inner_product_param={"num_output": 2})]})
    assert read_caffemodel(data).layer[0].name == "fc"
    for cut in range(len(data)):
        with pytest.raises(CaffeFormatError):
            read_caffemodel(data[:cut])


def test_prototxt_sources(tmp_path):
    text = 'name: "t"\nlayer { name: "a" type: "ReLU" bottom: "x" top: "x" }\n'
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    for source in (text, text.encode(), path, str(path), 'layer { name: "a" }'):
        net = read_prototxt(source)
        assert net.layer[0].name == "a"
    assert read_prototxt(path).meta["source"] == str(path)
    with pytest.raises(CaffeFormatError) as info:
        read_prototxt(str(path).replace("net", "nte"))
    assert "no such file" in str(info.value)


def test_prototxt_syntax_error_names_the_file(tmp_path):
    path = tmp_path / "bad.prototxt"
    path.write_text('name: "x"\nlayer {\n  name: "a"\n  type: "ReLU"\n  bottom "x"\n}\n')
    with pytest.raises(CaffeFormatError) as info:
        read_prototxt(path)
    assert str(info.value).startswith(f"{path}:5:10: expected ':' after field name 'bottom'")
    assert (info.value.line, info.value.column) == (5, 10)


def test_unknown_fields_are_reported_by_both_readers():
    net = read_prototxt('layer { name: "bn" type: "BN" bn_param { scale: 1 } }\n')
    assert net.meta["unknown_fields"] == [
        "layer[0]('bn'): field 'bn_param' at line 1:31: LayerParameter has no field named "
        "'bn_param' (a fork's field?); skipped"]
    model = read_caffemodel(caffemodel_bytes({"layer": [
        v2_layer("a", "ReLU", _unknown=[(8266799, 2, b"\x08\x07")])], "_unknown": [(99, 0, 1)]}))
    report = model.meta["unknown_fields"]
    assert len(report) == 2 and report == unknown_field_report(model)
    assert report[0].startswith("NetParameter: field #99 (wire type 0) at byte offset")
    assert report[1].startswith("layer[0]('a'): field #8266799 (wire type 2)")
    with pytest.raises(CaffeFormatError, match="did you mean 'mvn_param'"):
        read_prototxt('layer { name: "bn" type: "BN" bn_param { scale: 1 } }', strict=True)


# -- blobs ---------------------------------------------------------------------------
def test_blob_array_shapes_and_sources():
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    legacy = Message.from_dict("BlobProto", blob(arr, legacy=True))
    assert (legacy.num, legacy.channels, legacy.height, legacy.width) == (1, 1, 2, 3)
    assert blob_array(legacy).shape == (1, 1, 2, 3)
    np.testing.assert_array_equal(blob_array(legacy, ndim=2), arr)
    assert blob_array(legacy, ndim=3).shape == (1, 2, 3)
    with pytest.raises(CaffeFormatError, match="leading dims \\(1, 1, 2\\) are not all 1"):
        blob_shape(legacy, ndim=1)
    new = Message.from_dict("BlobProto", blob(arr))
    assert blob_array(new, ndim=4).shape == (2, 3)  # ndim never changes shape.dim
    scalar = Message.from_dict("BlobProto", {"shape": {"dim": []}, "data": [7.0]})
    assert blob_array(scalar).shape == () and float(blob_array(scalar)) == 7.0
    bare = Message.from_dict("BlobProto", {"data": [1.0, 2.0, 3.0]})
    assert blob_shape(bare) == (3,) and blob_shape_matches(bare, (3,))
    both = Message.from_dict("BlobProto", {"shape": {"dim": [2]}, "data": [1.0, 2.0],
                                           "double_data": [3.0, 4.0]})
    got = blob_array(both)
    assert got.dtype == np.float64 and got.tolist() == [3.0, 4.0]
    bad = Message.from_dict("BlobProto", {"shape": {"dim": [2, 2]}, "data": [1.0, 2.0]})
    with pytest.raises(CaffeFormatError, match=r"shape \(2, 2\) \(4 values\) but holds 2"):
        blob_array(bad)
    half = np.array([0.5, -2.0, 65504.0], np.float16)
    fp16 = Message.from_dict("BlobProto", {"shape": {"dim": [3]}, "raw_data_type": "FLOAT16",
                                           "raw_data": half.tobytes()})
    got = blob_array(fp16)
    assert got.dtype == np.float32 and got.tolist() == [0.5, -2.0, 65504.0]
    assert blob_shape_matches(legacy, (2, 3)) and blob_shape_matches(legacy, (1, 2, 3))
    assert not blob_shape_matches(legacy, (3, 2)) and not blob_shape_matches(legacy, (1,) * 5)


@pytest.mark.parametrize("legacy", [True, False])
@pytest.mark.parametrize("double", [True, False])
def test_read_binaryproto(tmp_path, legacy, double, rng):
    mean = (rng.random((1, 3, 5, 4)) * 255).astype(np.float64 if double else np.float32)
    path = tmp_path / "mean.binaryproto"
    write_binaryproto(path, blob(mean, legacy=legacy, double=double))
    b = read_binaryproto(path)
    got = blob_array(b)
    assert got.shape == (1, 3, 5, 4) and got.dtype == mean.dtype
    np.testing.assert_array_equal(got, mean)
    assert b.meta["source"] == str(path)


def test_binaryproto_errors(tmp_path, shared_data):
    with pytest.raises(CaffeFormatError, match="no blob data.*caffemodel"):
        read_binaryproto(shared_data / "caffe" / "mtcnn_pnet" / "model.caffemodel")
    path = tmp_path / "m.binaryproto"
    path.write_text("name: 'x'\n")
    with pytest.raises(CaffeFormatError, match="text file"):
        read_binaryproto(path)


# -- memory and speed ------------------------------------------------------------------
def _synthetic_model(total_floats, layers=12):
    per = total_floats // layers
    out = []
    for i in range(layers):
        # broadcast arrays: the writer streams them, so the test needs little memory
        w = np.broadcast_to(np.float32(i + 0.5), (per // 64, 64))
        out.append(v2_layer(f"fc{i}", "InnerProduct", [f"x{i}"], [f"x{i + 1}"],
                            [w, np.full(per // 64, i, np.float32)],
                            inner_product_param={"num_output": per // 64}))
    return {"name": "synthetic", "layer": out}


def test_large_caffemodel_is_read_zero_copy(tmp_path):
    path = tmp_path / "big.caffemodel"
    size = write_caffemodel(path, _synthetic_model(13_000_000))
    assert 50e6 < size < 56e6
    tracemalloc.start()
    try:
        start = time.perf_counter()
        net = read_caffemodel(path)
        arrays = [blob_array(b, ndim=2 - j) for layer in net.layer
                  for j, b in enumerate(layer.blobs)]
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 2.0, elapsed
    assert peak < 2_000_000, f"reading allocated {peak} bytes: weights were copied"
    assert sum(a.nbytes for a in arrays) > 0.99 * size
    for i, layer in enumerate(net.layer):
        w = layer.blobs[0].data
        assert not w.flags.owndata and not w.flags.writeable
        base = w.base
        while not isinstance(base, memoryview):
            base = base.base
        assert isinstance(base.obj, mmap.mmap)
        assert float(w[0]) == i + 0.5 and float(w[-1]) == i + 0.5


def test_unpacked_floats_are_gathered_without_a_python_loop(tmp_path):
    n = 2_000_000
    values = np.arange(n, dtype=np.float32)
    data = encode("BlobProto", blob(values), packed_floats=False)
    assert len(data) > 5 * n
    start = time.perf_counter()
    b = read_binaryproto(data)
    elapsed = time.perf_counter() - start
    np.testing.assert_array_equal(blob_array(b), values)
    assert elapsed < 1.0, elapsed  # a per-float Python loop takes seconds


def test_prototxt_with_non_utf8_comments(tmp_path):
    path = tmp_path / "gbk.prototxt"
    text = '# 网络定义\nname: "x"\nlayer { name: "a" type: "ReLU" }  # 激活\n'
    path.write_bytes(text.encode("gbk"))
    net = read_prototxt(path)
    assert net.name == "x" and net.layer[0].type == "ReLU"


def test_binary_pooling_field_13_is_flagged():
    model = caffemodel_bytes({"layer": [
        v2_layer("pool", "Pooling", ["x"], ["y"], pooling_param={"round_mode": "FLOOR"}),
        v2_layer("fc", "InnerProduct", ["y"], ["z"], [np.ones((1, 1), np.float32)])]})
    net = read_caffemodel(model)
    assert net.layer[0].pooling_param.round_mode == "FLOOR"
    assert any("field 13" in w and "'pool'" in w for w in net.meta["warnings"])


def test_syntax_error_excerpt_with_undecodable_bytes_prints(tmp_path):
    path = tmp_path / "bad.prototxt"
    path.write_bytes('layer { name: "\u7f51" type \n}'.encode("gbk"))
    with pytest.raises(CaffeFormatError) as info:
        read_prototxt(path)
    text = str(info.value)
    text.encode("utf-8")  # no lone surrogates in the message
    assert ":1:" in text and "expected ':' after field name 'type'" in text
