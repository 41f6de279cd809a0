"""The prototxt (protobuf text format) parser and printer."""
import math
import re

import numpy as np
import pytest

from deepkit.caffe.message import CaffeFormatError, Message
from deepkit.caffe.text_format import format_message, parse

from .caffe_writer import to_prototxt, v2_layer


def test_nested_blocks_with_and_without_colon():
    net = parse("""
        name: "n"   # a comment
        layer {
          name: 'conv'  type: "Convolution"
          bottom: "data" top: "conv"
          convolution_param: { num_output: 8 kernel_size: 3 kernel_size: 5 }
          param < lr_mult: 1 >, param { lr_mult: 2; decay_mult: 0 }
        }
        layer { name: "relu" type: "ReLU" relu_param {} }
    """)
    assert net.name == "n"
    conv, relu = net.layer
    assert conv.convolution_param.num_output == 8
    assert conv.convolution_param.kernel_size == [3, 5]
    assert [p.lr_mult for p in conv.param] == [1.0, 2.0]
    assert conv.param[1].decay_mult == 0.0 and not conv.param[0].has("decay_mult")
    assert relu.has("relu_param") and not relu.relu_param.has("negative_slope")


def test_lists_enums_bools_and_numbers():
    layer = parse("""
        type: "Pooling"
        include: [{ phase: TEST }, { phase: 0 stage: ["a", 'b'] }]
        pooling_param { pool: AVE global_pooling: True round_mode: FLOOR }
        convolution_param { kernel_size: [1, 2, 0x10, 010] bias_term: f axis: -1 }
        exp_param { base: .5 scale: 1e-5 shift: -inf }
        power_param { power: 2f scale: 1. shift: nan }
        threshold_param { threshold: -3 }
        propagate_down: [true, false, t, 1, 0, False]
        flatten_param { end_axis: -2147483648 }
        reshape_param { shape { dim: [-1, 9223372036854775807] } }
    """, "LayerParameter")
    assert [r.phase for r in layer.include] == ["TEST", "TRAIN"]
    assert layer.include[1].stage == ["a", "b"]
    assert layer.pooling_param.pool == "AVE" and layer.pooling_param.global_pooling is True
    assert layer.pooling_param.round_mode == "FLOOR"
    assert layer.convolution_param.kernel_size == [1, 2, 16, 8]
    assert layer.convolution_param.bias_term is False and layer.convolution_param.axis == -1
    assert layer.exp_param.base == 0.5 and layer.exp_param.scale == 1e-5
    assert layer.exp_param.shift == -math.inf
    assert layer.power_param.power == 2.0 and layer.power_param.scale == 1.0
    assert math.isnan(layer.power_param.shift)
    assert layer.threshold_param.threshold == -3.0
    assert layer.propagate_down == [True, False, True, True, False, False]
    assert layer.flatten_param.end_axis == -2 ** 31
    assert layer.reshape_param.shape.dim == [-1, 2 ** 63 - 1]


def test_strings_escapes_and_concatenation():
    p = parse(r'''module: "a\tb\n\\\"q\"" layer: 'it\'s' 'x' "\x41\101\u00e9"
                  param_str: "multi" "part"''', "PythonParameter")
    assert p.module == 'a\tb\n\\"q"'
    assert p.layer == "it'sxAAé"
    assert p.param_str == "multipart"


def test_blob_data_in_text_becomes_an_array():
    b = parse("shape { dim: 2 } data: 1.5 data: [2, -3]", "BlobProto")
    assert isinstance(b.data, np.ndarray) and b.data.dtype == np.float32
    np.testing.assert_array_equal(b.data, [1.5, 2, -3])


def _error(text, type_name="NetParameter", **kw):
    with pytest.raises(CaffeFormatError) as info:
        parse(text, type_name, filename="net.prototxt", **kw)
    return info.value


@pytest.mark.parametrize("text, line, column, match", [
    ('layer {\n  name: "a"\n', 3, 1, r"expected '\}' to close the block opened at line 1:7"),
    ('name: "a"\n}\n', 2, 1, r"unexpected '\}'"),
    ('layer {\n  name "a"\n}', 2, 8, r"expected ':' after field name 'name'"),
    ('layer { pooling_param { pool: MAXX } }', 1, 31,
     r"unknown value 'MAXX' for field 'pool'.*did you mean MAX\?.*MAX, AVE, STOCHASTIC"),
    ('layer { convolution_param { num_output: -1 } }', 1, 41, r"out of range.*uint32"),
    ('layer { convolution_param { num_output: 4294967296 } }', 1, 41, r"out of range"),
    ('layer { convolution_param { num_output: "8" } }', 1, 41, r"needs an integer"),
    ('layer { convolution_param { num_output: 2.5 } }', 1, 41, r"needs an integer"),
    ('layer { name: 3 }', 1, 15, r"needs a quoted string"),
    ('layer {\n name: "abc\n}', 2, 8, r"unterminated string"),
    ('layer { name: "a\\qb" }', 1, 17, r"invalid escape"),
    ('name: "a" name: "b"', 1, 11,
     r"non-repeated field 'name' is given twice \(first at line 1:1\)"),
    ('layer { convolution_param {} convolution_param {} }', 1, 30, r"given twice"),
    ('name: ["a"]', 1, 7, r"not repeated"),
    ('layer { relu_param { negative_slope: abc } }', 1, 38, r"needs a number"),
    ('layer { pooling_param { global_pooling: yes } }', 1, 41, r"needs true or false"),
    ('layer { name: "a" } @', 1, 21, r"unexpected character '@'"),
    ('[ext.field] { }', 1, 1, r"extension"),
    ('layer { top: "a" ] }', 1, 18, r"expected a field name, found '\]'"),
    ('layer { convolution_param { kernel_size: [1 2] } }', 1, 45, r"expected ','"),
    ('input_dim: 10abc', 1, 12, r"invalid number '10abc'"),
    ('layer { type: CONVOLUTION }', 1, 15, r"needs a quoted string"),
    ('layers { type: "Convolution" }', 1, 16, r"needs a value of V1LayerParameter.LayerType"),
    ('layer { phase: 7 }', 1, 16, r"7 is not a value of Phase"),
])
def test_syntax_errors_report_line_and_column(text, line, column, match):
    err = _error(text)
    assert (err.line, err.column) == (line, column), str(err)
    assert err.filename == "net.prototxt"
    assert str(err).startswith(f"net.prototxt:{line}:{column}: ")
    assert re.search(match, str(err)), str(err)


def test_error_shows_the_line_with_a_caret():
    err = _error('layer {\n  name: "a"\n  type: Pooling\n}')
    text = str(err)
    assert 'net.prototxt:3:9:' in text
    assert "    type: Pooling" in text.replace("  type", "type")
    assert text.splitlines()[-1].strip() == "^"


def test_binary_data_is_not_text():
    err = _error("name: \"x\"\n\x00\x01\x02")
    assert "not a text prototxt" in str(err) and err.line == 2


def test_unknown_fields_are_skipped_and_recorded():
    net = parse("""
        layer {
          name: "bn" type: "BN"
          bn_param { slope_filler { type: "constant" value: 1 } frozen: true }
          region_param: { classes: [20, 1.5, -inf] }
          fancy: "x" "y"
          weird: -7,
          flag: FOO;
          top: "bn"
        }
        state_extra { a: 1 }
    """)
    layer = net.layer[0]
    assert layer.type == "BN" and layer.top == ["bn"]
    got = {u.name: u for u in layer.unknown_fields}
    assert list(got) == ["bn_param", "region_param", "fancy", "weird", "flag"]
    assert got["bn_param"].value == {"slope_filler": [{"type": ["constant"], "value": [1]}],
                                     "frozen": [True]}
    assert got["region_param"].value == {"classes": [[20, 1.5, -math.inf]]}
    assert got["fancy"].value == "xy" and got["weird"].value == -7 and got["flag"].value == "FOO"
    assert (got["bn_param"].line, got["bn_param"].column) == (4, 11)
    assert "LayerParameter has no field named 'bn_param'" in str(got["bn_param"])
    assert net.unknown_fields[0].name == "state_extra"


def test_strict_mode_rejects_unknown_fields_with_a_suggestion():
    err = _error('layer { convolution_parm { num_output: 3 } }', strict=True)
    assert (err.line, err.column) == (1, 9)
    assert "did you mean 'convolution_param'" in str(err)


def test_ceil_mode_fork_alias_maps_to_round_mode():
    net = parse("layer { pooling_param { pool: MAX ceil_mode: false } }\n"
                "layer { pooling_param { ceil_mode: true } }")
    assert net.layer[0].pooling_param.round_mode == "FLOOR"
    assert net.layer[1].pooling_param.round_mode == "CEIL"
    assert net.layer[1].pooling_param.has("round_mode")
    assert any("ceil_mode" in n for n in net.meta["notes"])
    err = _error("layer { pooling_param { round_mode: CEIL ceil_mode: false } }")
    assert "both given" in str(err)


def test_format_round_trips():
    value = {"name": "rt", "input": ["data"], "input_dim": [1, 3, 8, 8],
             "layer": [v2_layer("c/1", "Convolution", ["data"], ["c"],
                                convolution_param={"num_output": 4, "kernel_size": [3],
                                                   "axis": -1, "bias_term": False},
                                param=[{"lr_mult": 1.0, "name": "w\"q\n"}]),
                       v2_layer("p", "Pooling", ["c"], ["p"],
                                pooling_param={"pool": "AVE", "round_mode": "FLOOR"},
                                exp_param={"base": float("inf"), "scale": 5e-05},
                                include=[{"phase": "TEST"}])]}
    text = to_prototxt(value)
    msg = parse(text)
    assert msg == Message.from_dict("NetParameter", value)
    assert "scale: 5e-05" in text and "base: inf" in text
    again = format_message(msg)
    assert parse(again) == msg


def test_utf8_bom_and_crlf():
    net = parse('\ufeffname: "x"\r\nlayer {\r\n name: "é"\r\n}\r\n')
    assert net.name == "x" and net.layer[0].name == "é"
