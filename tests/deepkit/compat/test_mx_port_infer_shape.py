"""Checks MXNet 1.x behaviour of ``infer_shape``, ``infer_shape_partial``, ``infer_type``
and ``infer_type_partial``: 0 is an unknown dimension, shapes flow forwards and
backwards, and incomplete inference returns ``(None, None, None)`` with a warning.

Expected shapes are worked out with numpy (``np.empty(...).shape`` arithmetic).
"""
import warnings

import numpy as np
import pytest

from deepkit.compat import mxnet as mx


def _mlp():
    data = mx.sym.Variable("data")
    hidden = mx.sym.FullyConnected(data, num_hidden=8, name="fc1")
    act = mx.sym.Activation(hidden, act_type="tanh", name="act")
    logits = mx.sym.FullyConnected(act, num_hidden=3, name="fc2")
    return mx.sym.SoftmaxOutput(logits, name="sm")


def _shapes(net, arg_shapes):
    return dict(zip(net.list_arguments(), arg_shapes))


def test_mlp_shapes_from_the_data_shape():
    net = _mlp()
    arg_shapes, out_shapes, aux_shapes = net.infer_shape(data=(5, 4))
    assert _shapes(net, arg_shapes) == {"data": (5, 4), "fc1_weight": (8, 4), "fc1_bias": (8,),
                                        "fc2_weight": (3, 8), "fc2_bias": (3,),
                                        "sm_label": (5,)}
    assert out_shapes == [(5, 3)] and aux_shapes == []


def test_flattening_dense_layer_takes_the_product_of_the_trailing_axes():
    net = mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=4, name="fc")
    arg_shapes, out_shapes, _ = net.infer_shape(data=(2, 3, 5))
    assert _shapes(net, arg_shapes)["fc_weight"] == (4, int(np.prod((3, 5))))
    assert out_shapes == [(2, 4)]
    net = mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=4, flatten=False, name="fc")
    arg_shapes, out_shapes, _ = net.infer_shape(data=(2, 3, 5))
    assert _shapes(net, arg_shapes)["fc_weight"] == (4, 5) and out_shapes == [(2, 3, 4)]


def test_unknown_batch_dimension_stays_zero_in_partial_inference():
    net = _mlp()
    arg_shapes, out_shapes, _ = net.infer_shape_partial(data=(0, 4))
    shapes = _shapes(net, arg_shapes)
    assert shapes["data"] == (0, 4) and shapes["fc1_weight"] == (8, 4)
    assert shapes["fc2_weight"] == (3, 8) and shapes["sm_label"] == (0,)
    assert out_shapes == [(0, 3)]


def test_full_inference_with_unknowns_returns_nones_and_warns_naming_them():
    net = _mlp()
    with pytest.warns(UserWarning, match=r"(?s)Cannot decide shape.*data: \(0, 4\)"):
        assert net.infer_shape(data=(0, 4)) == (None, None, None)
    with pytest.warns(UserWarning, match="data"):
        assert net.infer_shape(fc2_weight=(3, 8)) == (None, None, None)


def test_partial_inference_without_any_shape_never_raises():
    net = _mlp()
    arg_shapes, out_shapes, aux_shapes = net.infer_shape_partial()
    assert _shapes(net, arg_shapes)["data"] == () and out_shapes == [()]
    assert aux_shapes == []
    arg_shapes, _, _ = net.infer_shape_partial(fc1_weight=(8, 6))
    assert _shapes(net, arg_shapes)["fc1_weight"] == (8, 6)
    assert _shapes(net, arg_shapes)["data"] == ()


def test_elementwise_ops_complete_unknown_dimensions_from_each_other():
    a, b = mx.sym.Variable("a"), mx.sym.Variable("b")
    assert (a + b).infer_shape(a=(0, 3), b=(2, 0)) == ([(2, 3), (2, 3)], [(2, 3)], [])
    assert (a * b).infer_shape_partial(a=(0, 3)) == ([(0, 3), (0, 3)], [(0, 3)], [])


def test_shapes_flow_backwards_from_a_variable_with_a_known_shape():
    a = mx.sym.Variable("a", shape=(0, 5))
    b = mx.sym.Variable("b", shape=(3, 0))
    assert (a + b).infer_shape() == ([(3, 5), (3, 5)], [(3, 5)], [])
    fixed = mx.sym.Variable("fixed", shape=(4, 5))
    assert (fixed * 2).infer_shape() == ([(4, 5)], [(4, 5)], [])


def test_concat_unifies_the_axes_it_does_not_join():
    a, b = mx.sym.Variable("a"), mx.sym.Variable("b")
    joined = mx.sym.concat(a, b, dim=1)
    expected_out = np.concatenate([np.empty((3, 2)), np.empty((3, 5))], axis=1).shape
    assert joined.infer_shape_partial(a=(0, 2), b=(3, 5)) == (
        [(3, 2), (3, 5)], [expected_out], [])
    assert joined.infer_shape_partial(a=(0, 2), b=(3, 0)) == ([(3, 2), (3, 0)], [(3, 0)], [])
    stacked_rows = mx.sym.concat(a, b, dim=0)
    assert stacked_rows.infer_shape_partial(a=(0, 2), b=(3, 0)) == (
        [(0, 2), (3, 2)], [(0, 2)], [])


def test_concat_with_disagreeing_fixed_axes_raises():
    a, b = mx.sym.Variable("a"), mx.sym.Variable("b")
    with pytest.raises(mx.MXNetError):
        mx.sym.concat(a, b, dim=1).infer_shape_partial(a=(4, 2), b=(3, 0))


def test_broadcast_op_output_shape_follows_numpy():
    a, b = mx.sym.Variable("a"), mx.sym.Variable("b")
    expected = np.broadcast_shapes((2, 1, 4), (3, 1))
    assert mx.sym.broadcast_add(a, b).infer_shape(a=(2, 1, 4), b=(3, 1))[1] == [expected]


def test_conflicting_shapes_raise_naming_the_shapes():
    a, b = mx.sym.Variable("a"), mx.sym.Variable("b")
    with pytest.raises(mx.MXNetError, match=r"3, ?3"):
        (a + b).infer_shape(a=(2, 3), b=(3, 3))


@pytest.mark.parametrize("kwargs, data_shape, expected", [
    ({"kernel": (3, 3), "num_filter": 6, "stride": (2, 2), "pad": (1, 1)}, (2, 3, 9, 9),
     (2, 6, (9 + 2 - 3) // 2 + 1, (9 + 2 - 3) // 2 + 1)),
    ({"kernel": (2, 2), "num_filter": 4}, (1, 5, 7, 6), (1, 4, 6, 5)),
    ({"kernel": (3,), "num_filter": 2, "dilate": (2,)}, (3, 1, 10), (3, 2, 10 - 2 * 2)),
])
def test_convolution_shapes(kwargs, data_shape, expected):
    net = mx.sym.Convolution(mx.sym.Variable("data"), name="conv", **kwargs)
    arg_shapes, out_shapes, _ = net.infer_shape(data=data_shape)
    shapes = _shapes(net, arg_shapes)
    assert shapes["conv_weight"] == (kwargs["num_filter"], data_shape[1]) + kwargs["kernel"]
    assert shapes["conv_bias"] == (kwargs["num_filter"],)
    assert out_shapes == [expected]


@pytest.mark.parametrize("convention, expected_side", [("valid", (5 - 2) // 2 + 1),
                                                      ("full", -(-(5 - 2) // 2) + 1)])
def test_pooling_conventions_round_down_or_up(convention, expected_side):
    net = mx.sym.Pooling(mx.sym.Variable("data"), kernel=(2, 2), stride=(2, 2), pool_type="max",
                         pooling_convention=convention)
    assert net.infer_shape(data=(1, 2, 5, 5))[1] == [(1, 2, expected_side, expected_side)]


def test_batchnorm_parameters_and_states_take_the_channel_axis():
    net = mx.sym.BatchNorm(mx.sym.Variable("data"), name="bn")
    arg_shapes, out_shapes, aux_shapes = net.infer_shape(data=(2, 7, 3))
    assert arg_shapes == [(2, 7, 3), (7,), (7,)]
    assert out_shapes == [(2, 7, 3)] and aux_shapes == [(7,), (7,)]


def test_embedding_and_reshape_shapes():
    data = mx.sym.Variable("data")
    embed = mx.sym.Embedding(data, input_dim=10, output_dim=4, name="emb")
    assert embed.infer_shape(data=(2, 3)) == ([(2, 3), (10, 4)], [(2, 3, 4)], [])
    flat = mx.sym.reshape(data, shape=(0, -1))
    assert flat.infer_shape(data=(2, 3, 4))[1] == [np.empty((2, 3, 4)).reshape(2, -1).shape]


def test_dense_layer_on_one_dimensional_data_without_flattening():
    net = mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=4, flatten=False, name="fc")
    assert net.infer_shape(data=(3,)) == ([(3,), (4, 3), (4,)], [(4,)], [])


def test_an_unknown_argument_name_raises_naming_it():
    with pytest.raises(mx.MXNetError, match="dta"):
        _mlp().infer_shape(dta=(2, 3))


# -- types -----------------------------------------------------------------------------
@pytest.mark.parametrize("given", ["float16", np.float64, np.int32, "uint8"])
def test_infer_type_spreads_one_known_dtype(given):
    a, b = mx.sym.Variable("a"), mx.sym.Variable("b")
    dtype = np.dtype(given)
    assert (a + b).infer_type(a=given) == ([dtype, dtype], [dtype], [])


def test_infer_type_through_a_network_and_a_cast():
    net = _mlp()
    arg_types, out_types, aux_types = net.infer_type(data="float64")
    assert arg_types == [np.float64] * 6 and out_types == [np.float64] and aux_types == []
    cast = mx.sym.Cast(mx.sym.Variable("a"), dtype="int32")
    assert cast.infer_type(a="float32") == ([np.float32], [np.int32], [])


def test_infer_type_from_a_variables_dtype():
    v = mx.sym.Variable("v", dtype="float16")
    assert (v * 2).infer_type() == ([np.float16], [np.float16], [])


def test_incomplete_infer_type_returns_nones_and_warns():
    a, b = mx.sym.Variable("a"), mx.sym.Variable("b")
    with pytest.warns(UserWarning, match=r"(?s)Cannot decide type.*a: None"):
        assert (a + b).infer_type() == (None, None, None)


def test_complete_infer_type_does_not_warn():
    a, b = mx.sym.Variable("a"), mx.sym.Variable("b")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (a + b).infer_type(a="float32")


def test_infer_type_partial_leaves_unknowns_as_none():
    a, c = mx.sym.Variable("a"), mx.sym.Variable("c")
    assert (a + c).infer_type_partial() == ([None, None], [None], [])


def test_conflicting_dtypes_raise():
    a, b = mx.sym.Variable("a"), mx.sym.Variable("b")
    with pytest.raises(mx.MXNetError, match="float64"):
        (a + b).infer_type(a="float32", b="float64")
