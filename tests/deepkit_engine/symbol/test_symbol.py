"""The Symbol API as an MXNet 1.x user writes it, with exact results."""
import json

import numpy as np
import pytest

import deepkit_engine as dk
from deepkit_engine import symbol as sym
from deepkit_engine.base import DeepkitError, ShapeError
from deepkit_engine.testing import assert_almost_equal


@pytest.fixture(autouse=True)
def fresh_names():
    with sym.NameManager():
        yield


def test_mxnet_tutorial_lines():
    a = sym.Variable("A")
    b = sym.Variable("B")
    d = (a + b) / 10 + 1
    assert d.list_arguments() == ["A", "B"]
    assert d.list_outputs() == ["_plusscalar0_output"]
    assert d.infer_shape(A=(10,), B=(10,)) == ([(10,), (10,)], [(10,)], [])
    x = sym.Variable("data")
    fc1 = sym.FullyConnected(data=x, num_hidden=128, name="fc1")
    assert fc1.list_arguments() == ["data", "fc1_weight", "fc1_bias"]
    act = sym.Activation(data=fc1, act_type="relu", name="relu1")
    w = sym.Variable("w2")
    fc2 = sym.FullyConnected(data=act, weight=w, num_hidden=10, name="fc2")
    net = sym.SoftmaxOutput(data=fc2, label=sym.Variable("softmax_label"), name="softmax")
    assert net.list_arguments() == ["data", "fc1_weight", "fc1_bias", "w2", "fc2_bias",
                                    "softmax_label"]
    assert net.list_outputs() == ["softmax_output"]
    arg_shapes, out_shapes, aux_shapes = net.infer_shape(data=(100, 784))
    assert arg_shapes == [(100, 784), (128, 784), (128,), (10, 128), (10,), (100,)]
    assert out_shapes == [(100, 10)] and aux_shapes == []


def test_automatic_names_count_per_operator():
    x = sym.Variable("x")
    y = sym.FullyConnected(sym.FullyConnected(x, num_hidden=3), num_hidden=2)
    assert y.name == "fullyconnected1"
    assert y.list_arguments() == ["x", "fullyconnected0_weight", "fullyconnected0_bias",
                                  "fullyconnected1_weight", "fullyconnected1_bias"]
    z = sym.exp(x) * 2
    assert z.list_outputs() == ["_mulscalar0_output"]


def test_scalar_operators_on_both_sides():
    x = sym.Variable("x")
    value = np.array([1.0, 2.0, 4.0], dtype=np.float32)
    cases = {
        "x + 2": (x + 2, value + 2), "2 + x": (2 + x, 2 + value),
        "x - 2": (x - 2, value - 2), "2 - x": (2 - x, 2 - value),
        "x * 3": (x * 3, value * 3), "3 * x": (3 * x, 3 * value),
        "x / 4": (x / 4, value / 4), "4 / x": (4 / x, 4 / value),
        "x ** 2": (x ** 2, value ** 2), "2 ** x": (2 ** x, 2 ** value),
        "-x": (-x, -value), "x % 3": (x % 3, value % 3),
        "x > 1.5": (x > 1.5, (value > 1.5).astype(np.float32)),
        "1.5 < x": (1.5 < x, (1.5 < value).astype(np.float32)),
    }
    for text, (s, expected) in cases.items():
        out = s.eval(x=dk.nd.array(value))[0]
        assert_almost_equal(out, expected, names=(text, "numpy"))


def test_group_internals_children_and_indexing():
    x = sym.Variable("data")
    fc = sym.FullyConnected(x, num_hidden=4, name="fc")
    act = sym.Activation(fc, act_type="tanh", name="act")
    group = sym.Group([fc, act])
    assert group.list_outputs() == ["fc_output", "act_output"]
    assert len(group) == 2 and group[1].name == "act"
    internals = act.get_internals()
    assert internals.list_outputs() == ["data", "fc_weight", "fc_bias", "fc_output",
                                        "act_output"]
    feature = internals["fc_output"]
    assert feature.name == "fc"
    assert act.get_children().list_outputs() == ["fc_output"]
    assert x.get_children() is None
    with pytest.raises(KeyError, match="fc_outptu.*did you mean 'fc_output'"):
        internals["fc_outptu"]


def test_attributes_and_scopes():
    w = sym.Variable("w", lr_mult=2.0, wd_mult=0.0, init="zeros")
    assert w.attr("lr_mult") == "2.0" and w.attr("__wd_mult__") == "0.0"
    with sym.AttrScope(ctx_group="dev1"):
        fc = sym.FullyConnected(sym.Variable("x"), weight=w, num_hidden=2, name="fc")
    assert fc.attr("ctx_group") == "dev1"
    assert fc.attr_dict()["w"]["__lr_mult__"] == "2.0"
    assert fc.attr_dict()["fc"]["ctx_group"] == "dev1"
    fc._set_attr(mirror_stage="True")
    assert fc.list_attr()["mirror_stage"] == "True"


def test_infer_shape_partial_and_type():
    x = sym.Variable("x")
    y = sym.Variable("y")
    net = sym.FullyConnected(x, num_hidden=3, name="fc") + y
    with pytest.warns(UserWarning, match=r"Cannot decide shape.*\n\tx: \(\)\n\tfc_weight"):
        assert net.infer_shape() == (None, None, None)
    args, outs, _ = net.infer_shape_partial()
    assert args == [(), (), (3,), ()] and outs == [()]
    args, outs, _ = net.infer_shape(x=(5, 2))
    assert args == [(5, 2), (3, 2), (3,), (5, 3)] and outs == [(5, 3)]
    types, out_types, _ = net.infer_type(x="float64")
    assert all(t == np.float64 for t in types + out_types)


def test_shape_conflict_names_node_argument_and_shapes():
    a = sym.Variable("a")
    b = sym.Variable("b")
    c = sym.add(a, b, name="plus")
    with pytest.raises(ShapeError, match=r"add 'plus'.*\(3, 4\).*\(3, 5\)"):
        c.infer_shape(a=(3, 4), b=(3, 5))
    with pytest.raises(ShapeError, match="'z' is not an input.*inputs are a, b"):
        c.infer_shape(z=(1,))


def test_composition_by_call():
    data = sym.Variable("data")
    net = sym.Activation(sym.FullyConnected(data, num_hidden=4, name="fc"), act_type="relu",
                         name="act")
    other = sym.exp(sym.Variable("raw"), name="pre")
    composed = net(data=other)
    assert composed.list_arguments() == ["raw", "fc_weight", "fc_bias"]
    assert net.list_arguments() == ["data", "fc_weight", "fc_bias"]  # unchanged
    positional = net(other)
    assert positional.list_arguments() == composed.list_arguments()
    with pytest.raises(DeepkitError, match="'dta' is not an input.*"):
        net(dta=other)


def test_duplicate_variable_names_are_refused_at_composition():
    a1 = sym.Variable("x")
    a2 = sym.Variable("x")
    with pytest.raises(DeepkitError, match="two different variables are both named 'x'"):
        a1 + a2
    fc1 = sym.FullyConnected(sym.Variable("data"), num_hidden=3, name="fc")
    with pytest.raises(DeepkitError, match="'fc_weight'"):
        sym.FullyConnected(fc1, num_hidden=3, name="fc")
    same = a1 + a1  # one variable used twice is fine
    assert same.list_arguments() == ["x"]


def test_json_roundtrip_keeps_structure_params_and_attrs(tmp_path):
    data = sym.Variable("data", shape=(2, 3))
    fc = sym.FullyConnected(data, num_hidden=4, no_bias=True, name="fc", attr={"lr_mult": "0.5"})
    net = sym.SoftmaxOutput(sym.reshape(fc, shape=(0, -1)), name="softmax")
    text = net.tojson()
    doc = json.loads(text)
    assert doc["heads"] == [[len(doc["nodes"]) - 1, 0, 0]]
    loaded = sym.load_json(text)
    assert loaded.list_arguments() == net.list_arguments()
    assert loaded.list_outputs() == net.list_outputs()
    assert loaded.tojson() == text
    assert loaded.get_internals()["fc_output"].attr("lr_mult") == "0.5"
    assert loaded.infer_shape()[1] == [(2, 4)]  # __shape__ travelled too
    path = tmp_path / "net.json"
    net.save(path)
    assert sym.load(path).tojson() == text


def test_loads_mxnet_style_json_with_old_keys_and_aliases():
    text = json.dumps({
        "nodes": [
            {"op": "null", "name": "data", "inputs": []},
            {"op": "null", "name": "fc1_weight", "attr": {"__lr_mult__": "1.0"}, "inputs": []},
            {"op": "null", "name": "fc1_bias", "inputs": []},
            {"op": "FullyConnected", "name": "fc1", "param": {"num_hidden": "8"},
             "inputs": [[0, 0, 0], [1, 0, 0], [2, 0, 0]]},
            {"op": "_PlusScalar", "name": "_plusscalar0", "attrs": {"scalar": "1"},
             "inputs": [[3, 0, 0]]},
            {"op": "Flatten", "name": "flat", "inputs": [[4, 0, 0]]},
        ],
        "arg_nodes": [0, 1, 2], "heads": [[5, 0, 0]]})
    net = sym.load_json(text)
    assert net.list_arguments() == ["data", "fc1_weight", "fc1_bias"]
    assert net.infer_shape(data=(2, 5))[1] == [(2, 8)]


@pytest.mark.parametrize("text,message", [
    ("{not json", "not valid JSON"),
    ('{"a": 1}', "not a symbol graph"),
    ('{"nodes": [{"op": "Bogus", "name": "b", "inputs": []}], "heads": [[0,0,0]]}',
     "unknown operator 'Bogus'"),
    ('{"nodes": [{"op": "null", "name": "x", "inputs": []}, {"op": "exp", "name": "e", '
     '"inputs": [[1, 0, 0]]}], "heads": [[1,0,0]]}', "cycle or a dangling reference"),
    ('{"nodes": [{"op": "null", "name": "x", "inputs": []}, {"op": "add", "name": "e", '
     '"inputs": [[0, 0, 0]]}], "heads": [[1,0,0]]}', "has 1 inputs but the op takes 2"),
])
def test_load_json_errors_say_what_is_wrong(text, message):
    with pytest.raises(DeepkitError, match=message):
        sym.load_json(text)


def test_debug_str_lists_nodes():
    net = sym.FullyConnected(sym.Variable("data"), num_hidden=3, name="fc")
    text = net.debug_str()
    assert "Op:FullyConnected, Name=fc" in text and "num_hidden=3" in text
    assert "arg[1]=fc_weight" in text
