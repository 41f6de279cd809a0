"""Checks MXNet 1.x behaviour of ``mx.sym``: composition, listing arguments, outputs and
internals, attributes and attribute scopes, JSON round trips and pickling.

Values computed by bound symbols are compared with numpy.
"""
import copy
import json
import pickle

import numpy as np
import pytest

from deepkit.compat import mxnet as mx


def _mlp():
    data = mx.sym.Variable("data")
    hidden = mx.sym.FullyConnected(data, num_hidden=6, name="fc1")
    act = mx.sym.Activation(hidden, act_type="relu", name="relu1")
    logits = mx.sym.FullyConnected(act, num_hidden=3, name="fc2")
    return mx.sym.SoftmaxOutput(logits, name="sm")


def test_listing_arguments_outputs_and_inputs():
    net = _mlp()
    assert net.list_arguments() == ["data", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias",
                                    "sm_label"]
    assert net.list_outputs() == ["sm_output"]
    assert net.list_inputs() == net.list_arguments()
    assert net.list_auxiliary_states() == []
    assert net.name == "sm"


def test_get_internals_lists_every_node_output_and_picks_by_name():
    internals = _mlp().get_internals()
    assert internals.list_outputs() == [
        "data", "fc1_weight", "fc1_bias", "fc1_output", "relu1_output", "fc2_weight",
        "fc2_bias", "fc2_output", "sm_label", "sm_output"]
    feature = internals["relu1_output"]
    assert feature.list_arguments() == ["data", "fc1_weight", "fc1_bias"]
    assert feature.list_outputs() == ["relu1_output"]


def test_get_children_gives_a_nodes_inputs_and_none_for_a_variable():
    children = _mlp().get_children()
    assert children.list_outputs() == ["fc2_output", "sm_label"]
    assert mx.sym.Variable("x").get_children() is None


def test_batchnorm_states_are_auxiliary_not_arguments():
    bn = mx.sym.BatchNorm(mx.sym.Variable("data"), name="bn")
    assert bn.list_arguments() == ["data", "bn_gamma", "bn_beta"]
    assert bn.list_auxiliary_states() == ["bn_moving_mean", "bn_moving_var"]


def test_split_has_one_named_output_per_part_and_groups_index():
    parts = mx.sym.split(mx.sym.Variable("x"), num_outputs=3, name="sp")
    assert parts.list_outputs() == ["sp_output0", "sp_output1", "sp_output2"]
    assert len(parts) == 3 and parts[2].list_outputs() == ["sp_output2"]


def test_composition_replaces_a_variable_and_leaves_the_original_alone():
    data = mx.sym.Variable("data")
    first = mx.sym.FullyConnected(data, num_hidden=4, name="first")
    second = mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=2, name="second")
    composed = second(data=first, name="composed")
    assert composed.list_arguments() == ["data", "first_weight", "first_bias",
                                         "second_weight", "second_bias"]
    assert second.list_arguments() == ["data", "second_weight", "second_bias"]
    arg_shapes, out_shapes, _ = composed.infer_shape(data=(5, 7))
    assert dict(zip(composed.list_arguments(), arg_shapes))["second_weight"] == (2, 4)
    assert out_shapes == [(5, 2)]


def test_composition_with_an_unknown_argument_name_raises():
    net = mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=2, name="fc")
    with pytest.raises(mx.MXNetError, match="nothere"):
        net(nothere=mx.sym.Variable("x"))


def test_composed_graph_computes_the_composed_function():
    x = mx.sym.Variable("x")
    inner = mx.sym.exp(x)
    outer = mx.sym.Variable("x") * 2 + 1
    composed = outer(x=inner)
    values = np.array([0.0, 1.0, -2.0], np.float32)
    got = composed.eval(x=mx.nd.array(values))[0]
    np.testing.assert_allclose(got.asnumpy(), np.exp(values) * 2 + 1, rtol=1e-6)


def test_group_lists_the_outputs_of_each_member_and_shares_variables():
    data = mx.sym.Variable("data")
    a = mx.sym.FullyConnected(data, num_hidden=4, name="a")
    b = mx.sym.Activation(data, act_type="tanh", name="b")
    group = mx.sym.Group([a, b])
    assert group.list_outputs() == ["a_output", "b_output"]
    assert group.list_arguments() == ["data", "a_weight", "a_bias"]
    assert len(group) == 2 and group[1].list_outputs() == ["b_output"]


def test_symbol_arithmetic_with_scalars_matches_numpy():
    x = mx.sym.Variable("x")
    values = np.array([1.0, 3.0, 0.5], np.float32)
    cases = [(2 - x / 4 + x ** 2, 2 - values / 4 + values ** 2), (1 / (x + 1), 1 / (values + 1)),
             (-x, -values), (x > 1, (values > 1).astype(np.float32)), (x % 2, np.mod(values, 2))]
    for expression, expected in cases:
        got = expression.eval(x=mx.nd.array(values))[0]
        np.testing.assert_allclose(got.asnumpy(), expected, rtol=1e-6)


def test_automatic_names_and_prefix_scope():
    data = mx.sym.Variable("data")
    with mx.name.NameManager():
        first = mx.sym.FullyConnected(data, num_hidden=2)
        second = mx.sym.FullyConnected(data, num_hidden=2)
    assert (first.name, second.name) == ("fullyconnected0", "fullyconnected1")
    with mx.name.Prefix("net_"):
        named = mx.sym.FullyConnected(data, num_hidden=2, name="fc")
    assert named.list_arguments() == ["data", "net_fc_weight", "net_fc_bias"]


# -- attributes ------------------------------------------------------------------------
def test_variable_attributes_and_their_dunder_spelling():
    w = mx.sym.Variable("w", attr={"mood": "calm"}, lr_mult=2.0, wd_mult=0.5, shape=(3, 4),
                        init=mx.init.One())
    attrs = w.list_attr()
    assert attrs["mood"] == "calm" and attrs["__shape__"] == "(3, 4)"
    assert attrs["__lr_mult__"] == "2.0" and attrs["__wd_mult__"] == "0.5"
    assert json.loads(attrs["__init__"])[0] == "one"
    assert w.attr("mood") == "calm" and w.attr("lr_mult") == "2.0"
    assert w.attr("missing") is None


def test_variable_accepts_a_layout_attribute():
    data = mx.sym.Variable("data", __layout__="NCHW")
    assert data.attr("__layout__") == "NCHW"
    assert data.list_attr() == {"__layout__": "NCHW"}


@pytest.mark.parametrize("how", ["keyword", "attr"])
def test_ops_accept_and_carry_a_layout_attribute(how):
    data = mx.sym.Variable("data")
    extra = {"__layout__": "NCHW"} if how == "keyword" else {"attr": {"__layout__": "NCHW"}}
    conv = mx.sym.Convolution(data, kernel=(3, 3), num_filter=4, name="conv", **extra)
    assert conv.attr("__layout__") == "NCHW"
    assert conv.attr_dict()["conv"]["__layout__"] == "NCHW"
    # the attribute is not an op param: shapes and values are those of a plain convolution
    _, out_shapes, _ = conv.infer_shape(data=(2, 1, 6, 6))
    assert out_shapes == [(2, 4, 4, 4)]
    reloaded = mx.sym.load_json(conv.tojson())
    assert reloaded.attr("__layout__") == "NCHW"
    assert reloaded.tojson() == conv.tojson()


def test_attr_scope_marks_variables_and_ops_and_explicit_attrs_win():
    with mx.AttrScope(group="4", data="great"):
        d = mx.sym.Variable("d", attr={"dtype": "data", "group": "1"})
        g = mx.sym.Variable("g")
        op = mx.sym.exp(g, name="e")
    assert d.list_attr() == {"dtype": "data", "data": "great", "group": "1"}
    assert g.list_attr() == {"data": "great", "group": "4"}
    assert op.attr("group") == "4"
    assert (d + g).list_attr() == {}  # made outside the scope
    assert (d + g).attr_dict()["d"]["group"] == "1"


def test_nested_attr_scopes_combine_and_restore():
    with mx.AttrScope(a="1"):
        with mx.AttrScope(b="2"):
            inner = mx.sym.Variable("inner")
        middle = mx.sym.Variable("middle")
    outer = mx.sym.Variable("outer")
    assert inner.list_attr() == {"a": "1", "b": "2"}
    assert middle.list_attr() == {"a": "1"}
    assert outer.list_attr() == {}


@pytest.mark.parametrize("value", [1, 0.5, None, True, (1, 2)])
def test_attr_scope_refuses_values_that_are_not_strings(value):
    with pytest.raises(ValueError, match="need to be string"):
        mx.AttrScope(ctx_group=value)


# -- JSON and pickling -----------------------------------------------------------------
def test_json_round_trip_keeps_graph_names_and_shapes(tmp_path):
    net = _mlp()
    text = net.tojson()
    doc = json.loads(text)
    assert [n["op"] for n in doc["nodes"]] == ["null", "null", "null", "FullyConnected",
                                               "Activation", "null", "null",
                                               "FullyConnected", "null", "SoftmaxOutput"]
    assert doc["arg_nodes"] == [0, 1, 2, 5, 6, 8] and doc["heads"] == [[9, 0, 0]]
    again = mx.sym.load_json(text)
    assert again.tojson() == text
    path = str(tmp_path / "net-symbol.json")
    net.save(path)
    loaded = mx.sym.load(path)
    assert loaded.list_arguments() == net.list_arguments()
    assert loaded.infer_shape(data=(4, 5)) == net.infer_shape(data=(4, 5))


def test_json_keeps_variable_attributes():
    v = mx.sym.Variable("v", shape=(2, 3), lr_mult=0.5)
    loaded = mx.sym.load_json((v * 2).tojson())
    attrs = loaded.get_internals()[0].list_attr()
    assert attrs["__shape__"] == "(2, 3)" and attrs["__lr_mult__"] == "0.5"
    assert loaded.infer_shape()[1] == [(2, 3)]


def test_json_with_mxnets_numeric_dtype_flags_infers_types():
    v = mx.sym.Variable("v", dtype="float16")
    doc = json.loads((v * 2).tojson())
    doc["nodes"][0]["attrs"]["__dtype__"] = "2"  # MXNet writes its type flag: 2 is float16
    loaded = mx.sym.load_json(json.dumps(doc))
    assert loaded.infer_type() == ([np.float16], [np.float16], [])


def test_pickle_and_deepcopy_give_equal_graphs():
    net = _mlp()
    assert pickle.loads(pickle.dumps(net)).tojson() == net.tojson()
    assert copy.deepcopy(net).tojson() == net.tojson()


def test_truth_value_of_a_symbol_raises_as_in_mxnet():
    with pytest.raises(mx.base.NotImplementedForSymbol):
        bool(mx.sym.Variable("x"))


def test_eval_of_a_small_graph_matches_numpy():
    a, b = mx.sym.Variable("a"), mx.sym.Variable("b")
    net = mx.sym.broadcast_add(mx.sym.broadcast_mul(a, b), mx.sym.sum(a, axis=1, keepdims=True))
    av = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32)
    bv = np.array([[0.5, -1.0, 2.0]], np.float32)
    got = net.eval(a=mx.nd.array(av), b=mx.nd.array(bv))[0]
    np.testing.assert_allclose(got.asnumpy(), av * bv + av.sum(axis=1, keepdims=True),
                               rtol=1e-6)
