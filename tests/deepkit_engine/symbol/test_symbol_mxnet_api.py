"""Symbol methods MXNet 1.x scripts use: fluent reshape/astype, truth value, pickling,
children, and the recorded graph as a symbol."""
import pickle

import numpy as np
import pytest

import deepkit_engine as dk
from deepkit_engine import autograd, nd, sym
from deepkit_engine.base import DeepkitError


def test_reshape_with_reverse_and_astype():
    a = sym.var("a")
    assert a.reshape((0, -1), reverse=True).infer_shape(a=(2, 3, 4))[1] == [(3, 8)]
    assert a.reshape((-1, 0), reverse=True).infer_shape(a=(10, 5, 4))[1] == [(50, 4)]
    assert a.reshape(4, -1).infer_shape(a=(2, 3, 4))[1] == [(4, 6)]
    assert a.reshape(shape=(0, -1)).infer_shape(a=(2, 3, 4))[1] == [(2, 12)]
    assert a.astype("float16").infer_type(a="float32")[1] == [np.float16]
    padded = sym.var("x").pad(mode="constant", pad_width=(0, 0, 0, 0, 1, 1, 2, 2))
    assert padded.infer_shape(x=(1, 1, 3, 3))[1] == [(1, 1, 5, 7)]


def test_truth_value_is_refused():
    with pytest.raises(DeepkitError, match=r"bool\(Symbol\) is not defined"):
        bool(sym.var("a"))
    with pytest.raises(DeepkitError):
        if sym.var("a") + 1:
            pass


def test_pickle_and_children():
    net = sym.FullyConnected(sym.var("a"), num_hidden=2, name="fc")
    again = pickle.loads(pickle.dumps(net))
    assert again.tojson() == net.tojson()
    assert net.get_children().list_outputs() == ["a", "fc_weight", "fc_bias"]
    assert sym.var("a").get_children() is None
    # ops whose declarations hold functions pickle too: a symbol pickles as its JSON
    bn = sym.BatchNorm(sym.var("x"), name="bn", output_mean_var=True)
    again = pickle.loads(pickle.dumps(bn))
    assert again.tojson() == bn.tojson()
    assert again.list_outputs() == ["bn_output", "bn_mean", "bn_var"]


def test_argmax_channel_methods_reduce_axis_1_as_mxnet():
    data = np.arange(24.0).reshape(2, 3, 4)[:, ::-1]
    expected = np.argmax(data, axis=1).astype(np.float64)
    np.testing.assert_array_equal(nd.array(data, dtype="float64").argmax_channel().asnumpy(),
                                  expected)
    exe = sym.var("d").argmax_channel().bind(None, {"d": nd.array(data, dtype="float64")})
    np.testing.assert_array_equal(exe.forward()[0].asnumpy(), expected)


def test_autograd_get_symbol():
    x = nd.array([1.0, 2.0])
    x.attach_grad()
    with autograd.record():
        y = nd.exp(x) * 2 + x[:1]
    graph = autograd.get_symbol(y)
    assert len(graph.list_arguments()) == 1
    exe = graph.bind(dk.cpu(), {graph.list_arguments()[0]: nd.array([0.0, 1.0])},
                     grad_req="null")
    np.testing.assert_allclose(exe.forward()[0].asnumpy(), [2.0, 2 * np.e], rtol=1e-6)
    with pytest.raises(DeepkitError, match="not computed inside record"):
        autograd.get_symbol(nd.ones(2))
