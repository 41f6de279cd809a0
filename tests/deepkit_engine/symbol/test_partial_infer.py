"""Partial shape inference: MXNet 1.x's 0 = unknown dimension, forwards and backwards.

The cases follow MXNet 1.9.1's own ``test_infer_shape.py`` and the values it asserts.
"""
import warnings

import numpy as np
import pytest

import deepkit_engine as dk
from deepkit_engine import symbol as sym
from deepkit_engine.base import DTypeError, ShapeError


def _arg_shapes(net, **shapes):
    arg_shapes, _, _ = net.infer_shape(**shapes)
    return dict(zip(net.list_arguments(), arg_shapes))


def test_elementwise_unifies_unknown_dims():
    a = sym.Variable("a", shape=(0, 10))
    b = sym.Variable("b", shape=(12, 0))
    assert _arg_shapes(a + b) == {"a": (12, 10), "b": (12, 10)}


def test_fully_connected_batch_comes_back_from_the_sum():
    a = sym.Variable("a", shape=(0, 10))
    fc = sym.FullyConnected(data=a, num_hidden=21, name="fc")
    c = sym.Variable("c", shape=(5, 0))
    assert _arg_shapes(fc + c) == {"a": (5, 10), "fc_weight": (21, 10), "fc_bias": (21,),
                                   "c": (5, 21)}


def test_slice_channel_both_ways():
    a = sym.Variable("a", shape=(0, 10))
    parts = sym.SliceChannel(data=a, num_outputs=10, axis=1, squeeze_axis=True)
    assert _arg_shapes(parts[1] + sym.Variable("c", shape=(5,)))["a"] == (5, 10)
    a = sym.Variable("a", shape=(0, 15, 0))
    parts = sym.SliceChannel(data=a, num_outputs=3, squeeze_axis=False)
    assert _arg_shapes(parts[1] + sym.Variable("c", shape=(3, 5, 2)))["a"] == (3, 15, 2)


def test_convolution_data_from_its_output():
    a = sym.Variable("a", shape=(0, 10, 0, 0))
    conv = sym.Convolution(data=a, num_filter=21, kernel=(3, 3), dilate=(1, 1), pad=(1, 1),
                           name="conv")
    shapes = _arg_shapes(conv + sym.Variable("c", shape=(5, 21, 32, 32)))
    assert shapes["a"] == (5, 10, 32, 32) and shapes["conv_weight"] == (21, 10, 3, 3)


def test_concat_inputs_share_the_unknown_batch():
    a = sym.Variable("a", shape=(0, 10))
    b = sym.Variable("b", shape=(0, 5))
    c = sym.Concat(a, b, num_args=2, dim=1)
    d = sym.Variable("d", shape=(2, 0)) + c
    assert _arg_shapes(d) == {"d": (2, 15), "a": (2, 10), "b": (2, 5)}


@pytest.mark.parametrize("build,shapes,expected", [
    (lambda x, y: sym.dot(x, y), {"x": (0, 3, 4), "y": (4, 5)}, (0, 3, 5)),
    (lambda x, y: sym.batch_dot(x, y), {"x": (0, 3, 4), "y": (0, 4, 5)}, (0, 3, 5)),
    (lambda x, y: sym.Embedding(data=x, weight=y, input_dim=100, output_dim=10),
     {"x": (0, 5), "y": (100, 10)}, (0, 5, 10)),
    (lambda x, y: sym.transpose(x, axes=[0, 3, 2, 1]), {"x": (0, 3, 224, 224)},
     (0, 224, 224, 3)),
    (lambda x, y: sym.pick(x, y, axis=1), {"x": (0, 3, 3), "y": (0, 3)}, (0, 3)),
    (lambda x, y: sym.where(x, y, y), {"x": (0, 2), "y": (0, 2)}, (0, 2)),
    (lambda x, y: sym.Pooling(x, kernel=(2, 2), stride=(2, 2), pool_type="max"),
     {"x": (0, 3, 8, 8)}, (0, 3, 4, 4)),
    (lambda x, y: sym.reshape(x, shape=(-1, 5)), {"x": (0, 10)}, (0, 5)),
])
def test_partial_shapes_keep_the_unknown_batch(build, shapes, expected):
    net = build(sym.Variable("x"), sym.Variable("y"))
    _, out, _ = net.infer_shape_partial(**shapes)
    assert out == [expected]


def test_partial_results_and_unknowns():
    x, y = sym.Variable("x"), sym.Variable("y")
    assert sym.dot(x, y).infer_shape_partial(x=(0, 3, 4))[1] == [()]
    arg, out, _ = sym.sin(sym.var("data")).infer_shape_partial()
    assert arg == [()] and out == [()]
    arg, out, _ = sym.sin(sym.var("data")).infer_shape_known()
    assert arg == [None] and out == [None]
    net = sym.FullyConnected(sym.var("data"), num_hidden=3, name="fc")
    arg, out, _ = net.infer_shape_partial(data=(0, 4))
    assert arg == [(0, 4), (3, 4), (3,)] and out == [(0, 3)]


def test_incomplete_infer_shape_warns_with_the_names():
    net = sym.FullyConnected(sym.var("data"), num_hidden=3, name="fc")
    with pytest.warns(UserWarning, match=r"Cannot decide shape for the following arguments "
                                         r"\(0s in shape means unknown dimensions\).*"
                                         r"\n\tdata: \(0, 4\)$"):
        assert net.infer_shape(data=(0, 4)) == (None, None, None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert net.infer_shape(data=(2, 4))[1] == [(2, 3)]


def test_conflicts_still_name_the_op_and_shapes():
    a = sym.Variable("a", shape=(0, 10))
    fc = sym.FullyConnected(data=a, num_hidden=21, name="fc")
    total = sym.elemwise_add(fc, sym.Variable("c", shape=(5, 20)), name="total")
    with pytest.raises(ShapeError, match=r"'total': .*\(0, 21\).*\(5, 20\)"):
        total.infer_shape_partial()
    with pytest.raises(ShapeError, match=r"add '_plus\d+'.*lhs=\(0, 21\), rhs=\(5, 20\)"):
        (fc + sym.Variable("c", shape=(5, 20))).infer_shape_partial()


def test_simple_bind_refuses_unknown_dims():
    net = sym.FullyConnected(sym.var("data"), num_hidden=3, name="fc")
    with pytest.raises(ShapeError, match="cannot infer shapes for: data"):
        net.simple_bind(data=(0, 4))


def test_infer_type_partial():
    x, y = sym.Variable("x"), sym.Variable("y")
    net = sym.FullyConnected(x, num_hidden=3, name="fc") + y
    arg, out, aux = net.infer_type_partial(x=np.float64)
    assert arg[0] == np.float64 and out == [np.float64]
    assert net.infer_type_partial()[0] == [None] * 4
    with pytest.warns(UserWarning, match=r"(?s)Cannot decide type.*x: None.*fc_weight: None"):
        assert net.infer_type() == (None, None, None)


def test_zero_initial_states_take_the_batch_size_of_the_rnn_data():
    """Gluon's begin_state for symbols: zeros(shape=(layers, 0, units)) feeding RNN gets the
    data's batch size, binds, and runs as explicit zero states do."""
    data, params = sym.Variable("data"), sym.Variable("params")
    states = [sym.zeros(shape=(1, 0, 6)), sym.zeros(shape=(1, 0, 6))]
    net = sym.RNN(data, params, *states, state_size=6, num_layers=1, mode="lstm",
                  state_outputs=True)
    arg_shapes, out_shapes, _ = net.infer_shape(data=(4, 3, 5))
    assert out_shapes == [(4, 3, 6), (1, 3, 6), (1, 3, 6)]
    _, partial_outs, _ = net.infer_shape_partial()
    assert partial_outs == [(), (), ()]  # no data shape: nothing known yet
    given = sym.RNN(data, params, sym.Variable("h0"), sym.Variable("c0"), state_size=6,
                    num_layers=1, mode="lstm", state_outputs=True)
    rng = np.random.default_rng(0)
    values = {"data": rng.normal(size=(4, 3, 5)),
              "params": rng.normal(size=dict(zip(net.list_arguments(), arg_shapes))["params"])}
    outs = []
    for symbol, extra in ((net, {}), (given, {"h0": np.zeros((1, 3, 6)),
                                              "c0": np.zeros((1, 3, 6))})):
        exe = symbol.simple_bind(dk.cpu(), **{k: v.shape for k, v in {**values, **extra}.items()})
        for name, value in {**values, **extra}.items():
            exe.arg_dict[name][:] = value
        exe.forward()
        outs.append([o.asnumpy() for o in exe.outputs])
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ShapeError, match="input 'state' has shape \\(1, 4, 6\\)"):
        sym.RNN(data, params, sym.zeros(shape=(1, 4, 6)), sym.zeros(shape=(1, 0, 6)),
                state_size=6, num_layers=1, mode="lstm").infer_shape(data=(4, 3, 5))


def test_init_op_without_dtype_takes_it_from_what_it_feeds_else_float32():
    x = sym.Variable("x")
    zeros = sym.zeros(shape=(2, 0))
    _, out_types, _ = (x + zeros).infer_type(x=np.float64)
    assert out_types == [np.float64]
    assert zeros.infer_type()[1] == [np.float32]  # nothing decides: MXNet's default
    assert sym.zeros(shape=(2, 3)).infer_type()[1] == [np.float32]
    with pytest.raises(DTypeError):  # an explicit dtype stays fixed
        (x + sym.zeros(shape=(2, 3), dtype="float16")).infer_type(x=np.float64)
