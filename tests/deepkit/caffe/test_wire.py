"""The compiled schema and the protobuf wire-format decoder."""
import pathlib
import struct
import tracemalloc

import numpy as np
import pytest

from deepkit.caffe import schema, schema_compiler, wire
from deepkit.caffe.message import CaffeFormatError, Message, descriptor
from deepkit.caffe.reader import blob_array, read_caffemodel

from .caffe_writer import (Packed, Unpacked, blob, encode, encode_varint, tag, v1_layer,
                           v2_layer)

CAFFE_DIR = pathlib.Path(schema_compiler.__file__).parent


# -- schema ----------------------------------------------------------------------
def test_checked_in_schema_is_the_compiled_proto():
    proto = (CAFFE_DIR / "caffe_subset.proto").read_text(encoding="utf-8")
    rendered = schema_compiler.render_schema(schema_compiler.compile_proto(proto))
    assert rendered == (CAFFE_DIR / "schema.py").read_text(encoding="utf-8"), \
        "schema.py is stale: run python -m deepkit.caffe.schema_compiler"
    assert schema_compiler.main(["--check"]) == 0


# Field numbers from caffe.md section 3 (BVLC caffe.proto), checked independently.
_NUMBERS = {
    "NetParameter": {"name": 1, "layers": 2, "input": 3, "input_dim": 4, "force_backward": 5,
                     "state": 6, "debug_info": 7, "input_shape": 8, "layer": 100},
    "BlobShape": {"dim": 1},
    "BlobProto": {"num": 1, "channels": 2, "height": 3, "width": 4, "data": 5, "diff": 6,
                  "shape": 7, "double_data": 8, "double_diff": 9, "raw_data_type": 10,
                  "raw_data": 12},
    "NetState": {"phase": 1, "level": 2, "stage": 3},
    "NetStateRule": {"phase": 1, "min_level": 2, "max_level": 3, "stage": 4, "not_stage": 5},
    "ParamSpec": {"name": 1, "share_mode": 2, "lr_mult": 3, "decay_mult": 4},
    "LayerParameter": {
        "name": 1, "type": 2, "bottom": 3, "top": 4, "loss_weight": 5, "param": 6, "blobs": 7,
        "include": 8, "exclude": 9, "phase": 10, "propagate_down": 11, "transform_param": 100,
        "loss_param": 101, "accuracy_param": 102, "argmax_param": 103, "concat_param": 104,
        "contrastive_loss_param": 105, "convolution_param": 106, "data_param": 107,
        "dropout_param": 108, "dummy_data_param": 109, "eltwise_param": 110, "exp_param": 111,
        "hdf5_data_param": 112, "hdf5_output_param": 113, "hinge_loss_param": 114,
        "image_data_param": 115, "infogain_loss_param": 116, "inner_product_param": 117,
        "lrn_param": 118, "memory_data_param": 119, "mvn_param": 120, "pooling_param": 121,
        "power_param": 122, "relu_param": 123, "sigmoid_param": 124, "softmax_param": 125,
        "slice_param": 126, "tanh_param": 127, "threshold_param": 128,
        "window_data_param": 129, "python_param": 130, "prelu_param": 131, "spp_param": 132,
        "reshape_param": 133, "log_param": 134, "flatten_param": 135, "reduction_param": 136,
        "embed_param": 137, "tile_param": 138, "batch_norm_param": 139, "elu_param": 140,
        "bias_param": 141, "scale_param": 142, "input_param": 143, "crop_param": 144,
        "parameter_param": 145, "recurrent_param": 146, "swish_param": 147, "clip_param": 148},
    "V1LayerParameter": {
        "layer": 1, "bottom": 2, "top": 3, "name": 4, "type": 5, "blobs": 6, "blobs_lr": 7,
        "weight_decay": 8, "concat_param": 9, "convolution_param": 10, "data_param": 11,
        "dropout_param": 12, "hdf5_data_param": 13, "hdf5_output_param": 14,
        "image_data_param": 15, "infogain_loss_param": 16, "inner_product_param": 17,
        "lrn_param": 18, "pooling_param": 19, "window_data_param": 20, "power_param": 21,
        "memory_data_param": 22, "argmax_param": 23, "eltwise_param": 24,
        "threshold_param": 25, "dummy_data_param": 26, "accuracy_param": 27,
        "hinge_loss_param": 29, "relu_param": 30, "slice_param": 31, "include": 32,
        "exclude": 33, "mvn_param": 34, "loss_weight": 35, "transform_param": 36,
        "tanh_param": 37, "sigmoid_param": 38, "softmax_param": 39,
        "contrastive_loss_param": 40, "exp_param": 41, "loss_param": 42, "param": 1001,
        "blob_share_mode": 1002},
    "V0LayerParameter": {
        "name": 1, "type": 2, "num_output": 3, "biasterm": 4, "weight_filler": 5,
        "bias_filler": 6, "pad": 7, "kernelsize": 8, "group": 9, "stride": 10, "pool": 11,
        "dropout_ratio": 12, "local_size": 13, "alpha": 14, "beta": 15, "source": 16,
        "scale": 17, "meanfile": 18, "batchsize": 19, "cropsize": 20, "mirror": 21, "k": 22,
        "blobs": 50, "blobs_lr": 51, "weight_decay": 52, "rand_skip": 53, "new_num": 60,
        "new_channels": 61, "new_height": 62, "new_width": 63, "shuffle_images": 64,
        "concat_dim": 65, "hdf5_output_param": 1001},
    "ConvolutionParameter": {"num_output": 1, "bias_term": 2, "pad": 3, "kernel_size": 4,
                             "group": 5, "stride": 6, "weight_filler": 7, "bias_filler": 8,
                             "pad_h": 9, "pad_w": 10, "kernel_h": 11, "kernel_w": 12,
                             "stride_h": 13, "stride_w": 14, "engine": 15, "axis": 16,
                             "force_nd_im2col": 17, "dilation": 18},
    "PoolingParameter": {"pool": 1, "kernel_size": 2, "stride": 3, "pad": 4, "kernel_h": 5,
                         "kernel_w": 6, "stride_h": 7, "stride_w": 8, "pad_h": 9, "pad_w": 10,
                         "engine": 11, "global_pooling": 12, "round_mode": 13},
    "InnerProductParameter": {"num_output": 1, "bias_term": 2, "weight_filler": 3,
                              "bias_filler": 4, "axis": 5, "transpose": 6},
    "LRNParameter": {"local_size": 1, "alpha": 2, "beta": 3, "norm_region": 4, "k": 5,
                     "engine": 6},
    "DropoutParameter": {"dropout_ratio": 1, "scale_train": 2},
    "BatchNormParameter": {"use_global_stats": 1, "moving_average_fraction": 2, "eps": 3,
                           "scale_bias": 7},
    "ScaleParameter": {"axis": 1, "num_axes": 2, "filler": 3, "bias_term": 4, "bias_filler": 5},
    "BiasParameter": {"axis": 1, "num_axes": 2, "filler": 3},
    "EltwiseParameter": {"operation": 1, "coeff": 2, "stable_prod_grad": 3},
    "SoftmaxParameter": {"engine": 1, "axis": 2},
    "FlattenParameter": {"axis": 1, "end_axis": 2},
    "ReshapeParameter": {"shape": 1, "axis": 2, "num_axes": 3},
    "ConcatParameter": {"concat_dim": 1, "axis": 2},
    "SliceParameter": {"slice_dim": 1, "slice_point": 2, "axis": 3},
    "CropParameter": {"axis": 1, "offset": 2},
    "ReLUParameter": {"negative_slope": 1, "engine": 2},
    "PReLUParameter": {"filler": 1, "channel_shared": 2},
    "ELUParameter": {"alpha": 1},
    "PowerParameter": {"power": 1, "scale": 2, "shift": 3},
    "ExpParameter": {"base": 1, "scale": 2, "shift": 3},
    "LogParameter": {"base": 1, "scale": 2, "shift": 3},
    "ThresholdParameter": {"threshold": 1},
    "SwishParameter": {"beta": 1},
    "ClipParameter": {"min": 1, "max": 2},
    "InputParameter": {"shape": 1},
    "MemoryDataParameter": {"batch_size": 1, "channels": 2, "height": 3, "width": 4},
    "DummyDataParameter": {"data_filler": 1, "num": 2, "channels": 3, "height": 4, "width": 5,
                           "shape": 6},
    "TransformationParameter": {"scale": 1, "mirror": 2, "crop_size": 3, "mean_file": 4,
                                "mean_value": 5, "force_color": 6, "force_gray": 7},
    "ArgMaxParameter": {"out_max_val": 1, "top_k": 2, "axis": 3},
    "ReductionParameter": {"operation": 1, "axis": 2, "coeff": 3},
    "MVNParameter": {"normalize_variance": 1, "across_channels": 2, "eps": 3},
    "TileParameter": {"axis": 1, "tiles": 2},
    "PythonParameter": {"module": 1, "layer": 2, "param_str": 3, "share_in_parallel": 4},
    "EmbedParameter": {"num_output": 1, "input_dim": 2, "bias_term": 3, "weight_filler": 4,
                       "bias_filler": 5},
    "AccuracyParameter": {"top_k": 1, "axis": 2, "ignore_label": 3},
    "LossParameter": {"ignore_label": 1, "normalize": 2, "normalization": 3},
    "DataParameter": {"source": 1, "scale": 2, "mean_file": 3, "batch_size": 4, "crop_size": 5,
                      "mirror": 6, "rand_skip": 7, "backend": 8, "force_encoded_color": 9,
                      "prefetch": 10},
}


@pytest.mark.parametrize("message", sorted(_NUMBERS))
def test_field_numbers_match_the_reference(message):
    got = {name: spec["number"] for name, spec in schema.MESSAGES[message].items()}
    for name, number in _NUMBERS[message].items():
        assert got.get(name) == number, f"{message}.{name}"


def test_defaults_and_enums_from_the_schema():
    conv = Message("ConvolutionParameter")
    assert conv.bias_term is True and conv.group == 1 and conv.axis == 1
    assert conv.kernel_size == [] and conv.engine == "DEFAULT"
    pool = Message("PoolingParameter")
    assert (pool.pool, pool.round_mode, pool.stride, pool.pad) == ("MAX", "CEIL", 1, 0)
    assert Message("BatchNormParameter").eps == pytest.approx(1e-5)
    assert Message("FlattenParameter").end_axis == -1
    assert Message("CropParameter").axis == 2
    assert Message("ExpParameter").base == -1.0
    assert Message("DropoutParameter").scale_train is True
    assert Message("NetState").phase == "TEST"
    assert Message("FillerParameter").type == "constant"
    assert Message("EltwiseParameter").operation == "SUM"
    assert Message("ReductionParameter").operation == "SUM"  # first value is SUM = 1
    assert Message("LRNParameter").norm_region == "ACROSS_CHANNELS"
    assert schema.ENUMS["V1LayerParameter.LayerType"]["SOFTMAX_LOSS"] == 21
    assert schema.ENUMS["V1LayerParameter.LayerType"]["DECONVOLUTION"] == 39


def test_no_field_shadows_a_message_method():
    reserved = {n for n in dir(Message) if not n.startswith("_")}
    for message, fields in schema.MESSAGES.items():
        assert not reserved & set(fields), message


@pytest.mark.parametrize("text, match", [
    ('syntax = "proto2";\nmessage A { oneof x { int32 a = 1; } }', r":2:13: 'oneof'"),
    ('syntax = "proto2";\nmessage A { optional int32 a = 1;\n optional int32 b = 1; }',
     r":3:\d+: field number 1 is used by both"),
    ('syntax = "proto2";\nmessage A { optional Missing a = 1; }', r"unknown type 'Missing'"),
    ('syntax = "proto2";\nmessage A { int32 a = 1; }', r"needs a label"),
    ('message A { optional int32 a = 1; }', r"missing syntax"),
    ('syntax = "proto2";\nmessage A { repeated string a = 1 [packed = true]; }', r"packed"),
    ('syntax = "proto2";\nenum E { X = 0; }\nmessage A { optional E a = 1 [default = Y]; }',
     r"default 'Y' is not a value of enum E"),
])
def test_schema_compiler_rejects_what_it_does_not_understand(text, match):
    with pytest.raises(schema_compiler.ProtoSyntaxError, match=match):
        schema_compiler.compile_proto(text, "x.proto")


def test_schema_compiler_resolves_nested_types():
    compiled = schema_compiler.compile_proto("""
        syntax = "proto2";
        package p;
        message Outer {
          enum Kind { A = 1; B = 2; }
          message Inner { optional Kind k = 1; }
          optional Inner inner = 1;
          optional Outer.Kind kind = 2 [default = B];
          repeated float v = 3 [packed = true];
        }
        message Other { optional Outer.Inner i = 1; optional float f = 2 [default = -inf]; }
    """)
    outer = compiled["messages"]["Outer"]
    assert outer["inner"]["type"] == "Outer.Inner" and outer["inner"]["kind"] == "message"
    assert outer["kind"]["default"] == "B"
    assert compiled["messages"]["Outer.Inner"]["k"]["default"] == "A"
    assert outer["v"]["packed"] is True
    assert compiled["messages"]["Other"]["f"]["default"] == float("-inf")


# -- decoding ----------------------------------------------------------------------
def _field(number, wt, payload):
    if wt == 2:
        return tag(number, 2) + encode_varint(len(payload)) + payload
    return tag(number, wt) + payload


def test_hand_assembled_caffemodel_decodes():
    """Bytes built here from the field numbers alone, independent of the writer."""
    data = struct.pack("<4f", 1.0, -2.0, 3.5, 0.25)
    shape = _field(1, 2, encode_varint(2) + encode_varint(2))          # BlobShape.dim packed
    blob_bytes = _field(7, 2, shape) + _field(5, 2, data)              # shape, data
    layer = (_field(1, 2, b"fc") + _field(2, 2, b"InnerProduct") + _field(3, 2, b"x")
             + _field(4, 2, b"y") + _field(7, 2, blob_bytes)
             + _field(117, 2, _field(1, 0, encode_varint(2)) + _field(5, 0, encode_varint(-1))))
    net = wire.decode(_field(1, 2, b"tiny") + _field(100, 2, layer), "NetParameter")
    assert net.name == "tiny"
    (fc,) = net.layer
    assert (fc.name, fc.type, fc.bottom, fc.top) == ("fc", "InnerProduct", ["x"], ["y"])
    assert fc.inner_product_param.num_output == 2 and fc.inner_product_param.axis == -1
    np.testing.assert_array_equal(blob_array(fc.blobs[0]), [[1.0, -2.0], [3.5, 0.25]])
    assert fc.blobs[0].data.dtype == np.float32


def test_varints_negative_and_large():
    assert len(encode_varint(-1)) == 10
    msg = encode("LayerParameter", {
        "name": "n", "softmax_param": {"axis": -1},
        "flatten_param": {"axis": -2147483648, "end_axis": 2147483647},
        "convolution_param": {"num_output": 4294967295, "kernel_size": [0, 1, 300]},
        "reshape_param": {"shape": {"dim": [-1, 0, 2 ** 40]}},
        "accuracy_param": {"ignore_label": -7}})
    layer = wire.decode(msg, "LayerParameter")
    assert layer.softmax_param.axis == -1
    assert (layer.flatten_param.axis, layer.flatten_param.end_axis) == (-2 ** 31, 2 ** 31 - 1)
    assert layer.convolution_param.num_output == 2 ** 32 - 1
    assert layer.convolution_param.kernel_size == [0, 1, 300]
    assert layer.reshape_param.shape.dim == [-1, 0, 2 ** 40]
    assert layer.accuracy_param.ignore_label == -7


def test_int32_written_as_five_byte_negative_varint():
    # some writers emit negative int32 as a 5-byte (32-bit) varint: low 32 bits count
    payload = _field(2, 0, bytes([0xFF, 0xFF, 0xFF, 0xFF, 0x0F]))
    assert wire.decode(payload, "SoftmaxParameter").axis == -1


def test_scalar_types_round_trip():
    value = {"name": "ünï ✓", "type": "Pooling", "phase": "TRAIN", "loss_weight": [0.5, 2.0],
             "propagate_down": [True, False],
             "pooling_param": {"pool": "AVE", "global_pooling": True, "round_mode": "FLOOR",
                               "kernel_size": 3},
             "exp_param": {"base": -1.0, "scale": 1e-30, "shift": float("inf")},
             "python_param": {"module": "m", "layer": "L", "param_str": "{'a': 1}\n\t"},
             "include": [{"phase": "TEST", "stage": ["a", "b"], "min_level": -3}]}
    layer = wire.decode(encode("LayerParameter", value), "LayerParameter")
    assert layer.name == "ünï ✓" and layer.phase == "TRAIN"
    assert layer.loss_weight == [0.5, 2.0] and layer.propagate_down == [True, False]
    assert layer.pooling_param.pool == "AVE" and layer.pooling_param.round_mode == "FLOOR"
    assert layer.pooling_param.global_pooling is True and layer.pooling_param.kernel_size == 3
    assert layer.exp_param.scale == pytest.approx(1e-30) and layer.exp_param.shift == np.inf
    assert layer.python_param.param_str == "{'a': 1}\n\t"
    assert layer.include[0].stage == ["a", "b"] and layer.include[0].min_level == -3
    assert not layer.has("exclude") and not layer.include[0].has("max_level")


@pytest.mark.parametrize("double", [False, True])
def test_packed_and_unpacked_floats_decode_the_same(double, rng):
    arr = rng.standard_normal((3, 4, 5)).astype(np.float64 if double else np.float32)
    value = {"blobs": [blob(arr, double=double), blob(arr[0], double=double)]}
    packed = encode("LayerParameter", value)
    unpacked = encode("LayerParameter", value, packed_floats=False)
    assert len(unpacked) > len(packed)
    for data in (packed, unpacked):
        layer = wire.decode(data, "LayerParameter")
        a, b = (blob_array(bl) for bl in layer.blobs)
        assert a.dtype == (np.float64 if double else np.float32)
        np.testing.assert_array_equal(a, arr)
        np.testing.assert_array_equal(b, arr[0])


def test_packed_blob_data_is_a_zero_copy_view():
    arr = np.arange(1000, dtype=np.float32)
    buf = bytearray(encode("BlobProto", blob(arr)))
    b = wire.decode(buf, "BlobProto")
    assert not b.data.flags.owndata
    assert np.shares_memory(b.data, np.frombuffer(buf, dtype=np.uint8))
    buf_bytes = bytes(buf)
    b2 = wire.decode(buf_bytes, "BlobProto")
    assert not b2.data.flags.writeable  # views of immutable bytes are read-only


def test_mixed_packed_and_unpacked_runs_concatenate_in_order():
    first = np.arange(4, dtype=np.float32)
    second = np.arange(4, 7, dtype=np.float32)
    third = np.arange(7, 10, dtype=np.float32)
    data = (_field(5, 2, first.tobytes())
            + b"".join(tag(5, 5) + struct.pack("<f", v) for v in second)
            + _field(1, 0, encode_varint(1))                       # num, in between
            + b"".join(tag(5, 5) + struct.pack("<f", v) for v in third)
            + _field(8, 2, np.array([1.5], "<f8").tobytes())
            + tag(8, 1) + struct.pack("<d", 2.5))
    b = wire.decode(data, "BlobProto")
    np.testing.assert_array_equal(b.data, np.arange(10, dtype=np.float32))
    np.testing.assert_array_equal(b.double_data, [1.5, 2.5])
    assert b.num == 1


def test_repeated_scalars_packed_or_not():
    value = {"pad": Packed([1, 2]), "kernel_size": Unpacked([3, 5]), "stride": Packed([]),
             "dilation": [2]}
    conv = wire.decode(encode("ConvolutionParameter", value), "ConvolutionParameter")
    assert conv.pad == [1, 2] and conv.kernel_size == [3, 5] and conv.dilation == [2]
    shape = wire.decode(encode("BlobShape", {"dim": Unpacked([2, 3])}), "BlobShape")
    assert shape.dim == [2, 3]
    # packed floats that are not BlobProto arrays stay lists
    elt = wire.decode(encode("EltwiseParameter", {"coeff": Packed([1.0, -1.0])}),
                      "EltwiseParameter")
    assert elt.coeff == [1.0, -1.0]
    # packed enums
    v1 = wire.decode(encode("V1LayerParameter", {"blob_share_mode": Packed(["PERMISSIVE",
                                                                              "STRICT"])}),
                     "V1LayerParameter")
    assert v1.blob_share_mode == ["PERMISSIVE", "STRICT"]


def test_unknown_fields_are_skipped_and_recorded():
    group = tag(60, 3) + _field(1, 0, b"\x05") + _field(2, 2, b"zz") + tag(60, 4)
    value = v2_layer("conv", "Convolution", ["a"], ["b"], [np.ones(3, np.float32)],
                     convolution_param={"num_output": 3,
                                        "_unknown": [(50, 0, 7), (51, 5, 123)]},
                     _unknown=[(147, 2, b"\x08\x01"), (5000, 1, 2 ** 40), (9999, 2, b"junk")])
    data = encode("LayerParameter", value) + group
    layer = wire.decode(data, "LayerParameter")
    assert layer.name == "conv" and layer.convolution_param.num_output == 3
    np.testing.assert_array_equal(layer.blobs[0].data, [1, 1, 1])
    # 147 is BVLC's swish_param: the fork bytes parse as an (empty) SwishParameter whose
    # field 1 has the wrong wire type for a float, so it is reported, not misread
    assert layer.has("swish_param")
    (mismatch,) = layer.swish_param.unknown_fields
    assert mismatch.number == 1 and "does not match" in mismatch.reason
    got = {(u.number, u.wire_type): u for u in layer.unknown_fields}
    assert set(got) == {(5000, 1), (9999, 2), (60, 3)}
    assert got[(5000, 1)].value == 2 ** 40 and bytes(got[(9999, 2)].value) == b"junk"
    assert data[got[(9999, 2)].offset:].startswith(tag(9999, 2))
    inner = {u.number: u.value for u in layer.convolution_param.unknown_fields}
    assert inner == {50: 7, 51: 123}


def test_wire_type_mismatch_is_reported_not_misread():
    # PoolingParameter.pool (enum, varint) arriving as a length-delimited field
    data = _field(1, 2, b"abc") + _field(2, 0, encode_varint(3))
    pool = wire.decode(data, "PoolingParameter")
    assert not pool.has("pool") and pool.kernel_size == 3
    (uf,) = pool.unknown_fields
    assert uf.number == 1 and uf.wire_type == 2 and "does not match" in uf.reason


def test_unknown_enum_numbers_stay_numbers():
    v1 = wire.decode(encode("V1LayerParameter", {"type": 40, "name": "prelu"}),
                     "V1LayerParameter")
    assert v1.type == 40


def test_repeated_singular_message_fields_merge():
    data = (_field(106, 2, _field(1, 0, encode_varint(8)))
            + _field(106, 2, _field(4, 0, encode_varint(3)) + _field(2, 0, b"\x00")))
    layer = wire.decode(data, "LayerParameter")
    conv = layer.convolution_param
    assert conv.num_output == 8 and conv.kernel_size == [3] and conv.bias_term is False


# -- corrupt and truncated input ----------------------------------------------------------
@pytest.mark.parametrize("data, match, offset", [
    (b"\x0e\x00", "invalid wire type 6", 0),
    (b"\x0f", "invalid wire type 7", 0),
    (b"\x00\x01", "invalid field number 0", 0),
    (b"\x08" + b"\xff" * 11, "longer than 10 bytes", 1),
    (b"\x0a\x05abc", "declares 5 bytes but only 3 remain", 0),
    (b"\x08\x80", "truncated varint", 1),
    (b"\xa2\x06\x03\x3a\x05\x2a", "declares 5 bytes but only 1 remain", 3),
    (b"\x0c", "unexpected end-group", 0),
])
def test_corrupt_bytes_raise_with_offset(data, match, offset):
    with pytest.raises(CaffeFormatError, match=match) as info:
        wire.decode(data, "NetParameter", filename="bad.caffemodel")
    assert info.value.offset == offset
    assert str(info.value).startswith(f"bad.caffemodel: byte offset {offset}: ")


def test_packed_float_length_must_be_whole_values():
    data = _field(5, 2, b"\x00" * 6)
    with pytest.raises(CaffeFormatError, match="not a multiple of 4"):
        wire.decode(data, "BlobProto")


def test_error_names_the_field_path():
    good = encode("NetParameter", {"layer": [v2_layer("a", "ReLU"),
                                             v2_layer("b", "InnerProduct",
                                                      blobs=[np.ones(4, np.float32)])]})
    bad = good[:-3]
    with pytest.raises(CaffeFormatError, match=r"in NetParameter\.layer\[1\]"):
        wire.decode(bad, "NetParameter")


def _small_models():
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    v2 = {"name": "small", "layer": [
        v2_layer("data", "Input", top=["data"],
                 input_param={"shape": [{"dim": [1, 3]}]}),
        v2_layer("fc", "InnerProduct", ["data"], ["fc"], [w, np.ones(2, np.float32)],
                 inner_product_param={"num_output": 2, "axis": -1}),
        v2_layer("bn", "BatchNorm", ["fc"], ["fc"],
                 [blob(np.ones(2), double=True), np.ones(2, np.float32), np.ones(1, np.float32)])]}
    v1 = {"name": "old", "input": ["data"], "input_dim": [1, 3, 1, 1], "layers": [
        v1_layer("fc", "INNER_PRODUCT", ["data"], ["fc"], [w, np.ones(2, np.float32)],
                 blobs_lr=[1.0, 2.0], inner_product_param={"num_output": 2}),
        v1_layer("prob", "SOFTMAX", ["fc"], ["prob"])]}
    return v2, v1


@pytest.mark.parametrize("which", ["v2", "v1"])
@pytest.mark.parametrize("packed", [True, False])
def test_every_truncation_raises_or_stops_at_a_field_boundary(which, packed):
    v2, v1 = _small_models()
    net = v2 if which == "v2" else v1
    data = encode("NetParameter", net, packed_floats=packed)
    full = wire.decode(data, "NetParameter")
    # offsets where a top-level field starts: cutting there leaves a valid, shorter message
    boundaries = {0, len(data)}
    pos = 0
    while pos < len(data):
        tg, pos2 = wire._read_varint(memoryview(data), pos, len(data), "tag")
        _, pos = wire._skip(memoryview(data), pos2, len(data), tg & 7, tg >> 3, 0)
        boundaries.add(pos)
    for cut in range(len(data)):
        if cut in boundaries:
            partial = wire.decode(data[:cut], "NetParameter")
            assert len(partial.layer) + len(partial.layers) <= len(full.layer) + len(full.layers)
            continue
        with pytest.raises(CaffeFormatError):
            wire.decode(data[:cut], "NetParameter")


def test_every_truncation_of_a_single_field_file_raises():
    _, v1 = _small_models()
    data = encode("NetParameter", {"layers": v1["layers"][:1]})
    assert wire.decode(data, "NetParameter").layers[0].name == "fc"
    for cut in range(1, len(data)):
        with pytest.raises(CaffeFormatError):
            wire.decode(data[:cut], "NetParameter")


def test_random_corruption_never_escapes_as_another_exception(rng):
    v2, v1 = _small_models()
    for net in (v2, v1):
        data = encode("NetParameter", net)
        for _ in range(400):
            buf = bytearray(data)
            for _ in range(int(rng.integers(1, 4))):
                buf[int(rng.integers(len(buf)))] = int(rng.integers(256))
            try:
                wire.decode(bytes(buf), "NetParameter")
            except CaffeFormatError:
                pass


def test_deep_nesting_is_refused():
    data = b""
    for _ in range(150):  # V0 layer -> hdf5_output_param nesting is finite; use groups
        data = tag(77, 3) + data + tag(77, 4)
    with pytest.raises(CaffeFormatError, match="too deeply"):
        wire.decode(data, "NetParameter")


def test_descriptor_lookup_errors_are_helpful():
    with pytest.raises(KeyError, match="LayerParameter"):
        descriptor("LayerParam")


def test_many_unknown_fields_are_counted_not_kept_and_reported_in_one_line():
    layer = bytes([0xa2, 0x06, 0x03, 0x0a, 0x01, 0x78])  # layer { name: "x" }
    data = b"\x0a\x01a" + bytes([0xf8, 0x7f, 0x01]) * 60_000 + layer  # field #2047 = 1
    tracemalloc.start()
    try:
        net = read_caffemodel(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * len(data)
    assert len(net.unknown_fields) == wire.MAX_UNKNOWN_RECORDED + 1
    report = net.meta["unknown_fields"]
    assert len(report) < 20
    assert any("59000 more skipped fields" in line for line in report)
    assert any("field #2047: skipped 1000 times" in line for line in report)


def test_deeply_nested_groups_are_a_clean_error():
    with pytest.raises(CaffeFormatError, match="nested too deeply"):
        read_caffemodel(b"\x08\x01" + bytes([0x9b, 0x0f]) * 50_000)
