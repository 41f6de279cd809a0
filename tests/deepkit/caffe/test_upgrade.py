"""V0 -> V1 -> V2 upgrades and net-level inputs, as Caffe's upgrade_proto.cpp does them."""
import numpy as np
import pytest

from deepkit.caffe import schema
from deepkit.caffe.message import CaffeFormatError
from deepkit.caffe.reader import blob_array, read_caffemodel, read_prototxt
from deepkit.caffe.text_format import parse
from deepkit.caffe.upgrade import V0_TYPE_TO_V1, V1_TYPE_TO_V2, detect_format, upgrade_net

from .caffe_writer import blob, caffemodel_bytes, v0_layer, v1_layer, v2_layer

V1_NET = """
name: "old"
input: "data"
input_dim: 10 input_dim: 3 input_dim: 32 input_dim: 32
layers {
  name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1"
  blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0
  param: "shared_w" blob_share_mode: PERMISSIVE
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 }
  include { phase: TEST }
}
layers { name: "relu1" type: RELU bottom: "conv1" top: "conv1" relu_param { negative_slope: 0.1 } }
layers { name: "pool1" type: POOLING bottom: "conv1" top: "pool1"
         pooling_param { pool: AVE kernel_size: 2 stride: 2 } exclude { phase: TRAIN } }
layers { name: "ip" type: INNER_PRODUCT bottom: "pool1" top: "ip"
         inner_product_param { num_output: 5 } }
layers { name: "loss" type: SOFTMAX_LOSS bottom: "ip" bottom: "label" top: "loss" loss_weight: 2 }
layers { name: "i2c" type: IM2COL bottom: "data" top: "cols" }
"""


def test_v1_prototxt_becomes_v2():
    net = read_prototxt(V1_NET)
    assert net.meta["format"] == "V1" and not net.layers
    names = [(layer.name, layer.type) for layer in net.layer]
    assert names == [("input", "Input"), ("conv1", "Convolution"), ("relu1", "ReLU"),
                     ("pool1", "Pooling"), ("ip", "InnerProduct"), ("loss", "SoftmaxWithLoss"),
                     ("i2c", "Im2col")]
    inp, conv, relu, pool, ip, loss, _ = net.layer
    assert inp.top == ["data"] and inp.input_param.shape[0].dim == [10, 3, 32, 32]
    assert not net.has("input") and not net.has("input_dim")
    assert [(p.name, p.share_mode, p.lr_mult, p.decay_mult) for p in conv.param] == [
        ("shared_w", "PERMISSIVE", 1.0, 1.0), ("", "STRICT", 2.0, 0.0)]
    assert conv.param[1].has("lr_mult") and not conv.param[1].has("name")
    assert conv.convolution_param.kernel_size == [3] and conv.convolution_param.pad == [1]
    assert conv.include[0].phase == "TEST" and pool.exclude[0].phase == "TRAIN"
    assert relu.relu_param.negative_slope == pytest.approx(0.1)
    assert pool.pooling_param.pool == "AVE"
    assert loss.loss_weight == [2.0] and loss.bottom == ["ip", "label"]
    assert any("V1 layers" in u for u in net.meta["upgrades"])


def test_v1_type_table_covers_bvlc_enum():
    assert set(V1_TYPE_TO_V2) == set(schema.ENUMS["V1LayerParameter.LayerType"])
    assert set(V0_TYPE_TO_V1.values()) <= set(schema.ENUMS["V1LayerParameter.LayerType"])
    for enum_name, v2 in V1_TYPE_TO_V2.items():
        net = parse(f"layers {{ name: 'x' type: {enum_name} }}")
        assert upgrade_net(net).layer[0].type == v2


def test_v1_data_layer_transform_fields_move():
    net = read_prototxt("""
        layers { name: "d" type: DATA top: "data" top: "label"
                 data_param { source: "db" batch_size: 64 scale: 0.00390625 mean_file: "m.bp"
                              crop_size: 227 mirror: true } }
        layers { name: "i" type: IMAGE_DATA top: "x" image_data_param { scale: 2 } }
    """)
    d, i = net.layer
    assert d.type == "Data" and d.data_param.source == "db" and d.data_param.batch_size == 64
    tp = d.transform_param
    assert (tp.scale, tp.mean_file, tp.crop_size, tp.mirror) == (0.00390625, "m.bp", 227, True)
    assert not d.data_param.has("scale") and not d.data_param.has("crop_size")
    assert i.transform_param.scale == 2.0 and not i.image_data_param.has("scale")


def test_unknown_v1_type_number_is_kept_and_warned():
    net = read_caffemodel(caffemodel_bytes({"layers": [
        v1_layer("p", 40, ["x"], ["x"], [np.full(3, 0.25, np.float32)])]}))
    assert net.layer[0].type == "V1_LAYER_TYPE_40"
    assert any("40" in w and "PReLU" in w for w in net.meta["warnings"])
    np.testing.assert_array_equal(blob_array(net.layer[0].blobs[0], ndim=1), [0.25] * 3)


V0_NET = """
name: "v0net"
input: "data"
input_dim: 1 input_dim: 3 input_dim: 9 input_dim: 9
layers { layer { name: "pad1" type: "padding" pad: 2 } bottom: "data" top: "pad1" }
layers { layer { name: "conv1" type: "conv" num_output: 4 kernelsize: 5 stride: 2 group: 1
                 biasterm: false weight_filler { type: "gaussian" std: 0.01 }
                 blobs_lr: 1 weight_decay: 1 }
         bottom: "pad1" top: "conv1" }
layers { layer { name: "relu1" type: "relu" } bottom: "conv1" top: "conv1" }
layers { layer { name: "pad2" type: "padding" pad: 1 } bottom: "conv1" top: "pad2" }
layers { layer { name: "pool1" type: "pool" pool: AVE kernelsize: 3 stride: 2 }
         bottom: "pad2" top: "pool1" }
layers { layer { name: "norm1" type: "lrn" local_size: 3 alpha: 0.0001 beta: 0.75 k: 2 }
         bottom: "pool1" top: "norm1" }
layers { layer { name: "drop" type: "dropout" dropout_ratio: 0.3 } bottom: "norm1" top: "norm1" }
layers { layer { name: "fc" type: "innerproduct" num_output: 10 } bottom: "norm1" top: "fc" }
layers { layer { name: "cat" type: "concat" concat_dim: 1 } bottom: "fc" bottom: "fc" top: "cat" }
layers { layer { name: "prob" type: "softmax" pad: 3 } bottom: "cat" top: "prob" }
"""


def test_v0_prototxt_upgrade_folds_padding_layers():
    net = read_prototxt(V0_NET)
    assert net.meta["format"] == "V0"
    types = [(layer.name, layer.type) for layer in net.layer]
    assert types == [("input", "Input"), ("conv1", "Convolution"), ("relu1", "ReLU"),
                     ("pool1", "Pooling"), ("norm1", "LRN"), ("drop", "Dropout"),
                     ("fc", "InnerProduct"), ("cat", "Concat"), ("prob", "Softmax")]
    conv, pool = net.layer[1], net.layer[3]
    assert conv.bottom == ["data"] and pool.bottom == ["conv1"]
    cp = conv.convolution_param
    assert (cp.num_output, cp.kernel_size, cp.stride, cp.pad, cp.group, cp.bias_term) == (
        4, [5], [2], [2], 1, False)
    assert cp.weight_filler.type == "gaussian" and cp.weight_filler.std == pytest.approx(0.01)
    assert [(p.lr_mult, p.decay_mult) for p in conv.param] == [(1.0, 1.0)]
    pp = pool.pooling_param
    assert (pp.pool, pp.kernel_size, pp.stride, pp.pad) == ("AVE", 3, 2, 1)
    lrn = net.layer[4].lrn_param
    assert (lrn.local_size, lrn.k) == (3, 2.0) and lrn.alpha == pytest.approx(1e-4)
    assert net.layer[5].dropout_param.dropout_ratio == pytest.approx(0.3)
    assert net.layer[6].inner_product_param.num_output == 10
    assert net.layer[7].concat_param.concat_dim == 1
    # pad on a softmax does not apply: Caffe logs it and drops it
    assert any("'prob'" in w and "'pad'" in w for w in net.meta["warnings"])


def test_v0_caffemodel_keeps_blobs():
    w = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2)
    b = np.array([0.5, -0.5], np.float32)
    model = {"name": "v0", "layers": [
        v0_layer("data", "data", top=["data"], source="train_db", batchsize=16, scale=0.5,
                 cropsize=4, meanfile="mean.bp", mirror=True),
        v0_layer("pad", "padding", ["data"], ["padded"], pad=1),
        v0_layer("conv", "conv", ["padded"], ["conv"], [w, b], num_output=2, kernelsize=2),
        v0_layer("ip", "innerproduct", ["conv"], ["ip"],
                 [np.ones((3, 8), np.float32), np.zeros(3, np.float32)], num_output=3)]}
    net = read_caffemodel(caffemodel_bytes(model))
    assert net.meta["format"] == "V0"
    data, conv, ip = net.layer
    assert data.type == "Data" and data.data_param.source == "train_db"
    assert data.data_param.batch_size == 16
    tp = data.transform_param
    assert (tp.scale, tp.crop_size, tp.mean_file, tp.mirror) == (0.5, 4, "mean.bp", True)
    assert conv.bottom == ["data"] and conv.convolution_param.pad == [1]
    np.testing.assert_array_equal(blob_array(conv.blobs[0], ndim=4), w)
    np.testing.assert_array_equal(blob_array(conv.blobs[1], ndim=1), b)
    assert blob_array(ip.blobs[0], ndim=2).shape == (3, 8)


@pytest.mark.parametrize("text, match", [
    ('layers { layer { name: "p" type: "padding" pad: 1 } bottom: "x" top: "p" }',
     r"reads blob 'x', which no earlier layer or net input produces"),
    ('input: "x" input_dim: 1 input_dim: 1 input_dim: 1 input_dim: 1\n'
     'layers { layer { name: "p" type: "padding" pad: 1 } bottom: "x" top: "p" }\n'
     'layers { layer { name: "r" type: "relu" } bottom: "p" top: "r" }',
     r"padding layer 'p' feeds layer 1 \('r'\) of type 'relu'"),
    ('layers { layer { name: "a" type: "mystery" } }\nlayers { layer { name: "b" type: "odd" } }',
     r"unknown V0 layer type\(s\): 'a' \('mystery'\), 'b' \('odd'\)"),
])
def test_v0_errors(text, match):
    with pytest.raises(CaffeFormatError, match=match):
        read_prototxt(text)


def test_input_shapes_and_multiple_inputs():
    net = read_prototxt("""
        input: "a" input_shape { dim: 1 dim: 3 }
        input: "b" input_shape { dim: 2 dim: 5 dim: 7 }
        layer { name: "c" type: "Concat" bottom: "a" bottom: "b" top: "c" }
    """)
    inp = net.layer[0]
    assert (inp.name, inp.type, inp.top) == ("input", "Input", ["a", "b"])
    assert [s.dim for s in inp.input_param.shape] == [[1, 3], [2, 5, 7]]
    net = read_prototxt('input: "a" input: "b" input_dim: [1, 2, 3, 4, 5, 6, 7, 8]\n'
                        'layer { name: "c" type: "Eltwise" bottom: "a" bottom: "b" top: "c" }')
    assert [s.dim for s in net.layer[0].input_param.shape] == [[1, 2, 3, 4], [5, 6, 7, 8]]


@pytest.mark.parametrize("text, match", [
    ('input: "a" input: "b" input_shape { dim: 1 }\nlayer { name: "x" }',
     r"2 input\(s\) \['a', 'b'\] but 1 input_shape"),
    ('input: "a" input_dim: 1 input_dim: 3\nlayer { name: "x" }',
     r"1 input\(s\) \['a'\] but 2 input_dim values"),
])
def test_inconsistent_inputs_are_errors(text, match):
    with pytest.raises(CaffeFormatError, match=match):
        read_prototxt(text)


def test_input_without_shape_is_dropped():
    model = {"input": ["data"], "layer": [v2_layer("fc", "InnerProduct", ["data"], ["fc"],
                                                   [np.ones((2, 2), np.float32)])]}
    net = read_caffemodel(caffemodel_bytes(model))
    assert [layer.name for layer in net.layer] == ["fc"] and not net.has("input")
    assert any("dropped" in u for u in net.meta["upgrades"])


def test_old_batchnorm_params_are_frozen():
    net = read_prototxt("""
        layer { name: "bn" type: "BatchNorm" param { lr_mult: 1 } param { lr_mult: 1 }
                param { lr_mult: 1 decay_mult: 5 } }
        layer { name: "bn2" type: "BatchNorm" param { lr_mult: 1 } }
    """)
    assert [(p.lr_mult, p.decay_mult) for p in net.layer[0].param] == [(0.0, 0.0)] * 3
    assert net.layer[1].param[0].lr_mult == 1.0


def test_layer_and_layers_together_are_refused():
    with pytest.raises(CaffeFormatError, match="both 'layer'.*and 'layers'"):
        read_prototxt('layer { name: "a" }\nlayers { name: "b" type: RELU }')


def test_upgrade_copy_leaves_the_input_alone():
    net = parse(V1_NET)
    before = net.copy()
    up = upgrade_net(net)
    assert net == before and net.layers and not net.layer
    assert detect_format(net) == "V1" and detect_format(up) == "V2"
    assert up.layer[1].convolution_param.num_output == 4


def test_upgrade_without_upgrade_flag():
    net = read_prototxt(V1_NET, upgrade=False)
    assert net.layers and not net.layer and net.meta["format"] == "V1"
    assert net.layers[0].type == "CONVOLUTION"


def test_v1_and_v2_caffemodels_give_the_same_weights(rng):
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)
    fc = rng.standard_normal((10, 16)).astype(np.float32)
    v1 = caffemodel_bytes({"layers": [
        v1_layer("conv", "CONVOLUTION", ["data"], ["conv"], [w, bias]),
        v1_layer("fc", "INNER_PRODUCT", ["conv"], ["fc"], [fc])]}, packed_floats=False)
    v2 = caffemodel_bytes({"layer": [
        v2_layer("conv", "Convolution", ["data"], ["conv"], [w, bias]),
        v2_layer("fc", "InnerProduct", ["conv"], ["fc"], [blob(fc, double=True)])]})
    ndims = {("conv", 0): 4, ("conv", 1): 1, ("fc", 0): 2}
    got = []
    for data in (v1, v2):
        net = read_caffemodel(data)
        got.append({(layer.name, i): blob_array(b, ndim=ndims[(layer.name, i)])
                    for layer in net.layer for i, b in enumerate(layer.blobs)})
    assert got[0].keys() == got[1].keys()
    for key in got[0]:
        np.testing.assert_array_equal(got[0][key], got[1][key].astype(np.float32))
    assert got[1][("fc", 0)].dtype == np.float64
