"""MXNet 1.9.1's fluent methods and shape-inference results through the ``mx`` namespace."""
import copy

import numpy as np
import pytest

from deepkit.compat import mxnet as mx

#: Fluent methods MXNet 1.9.1's NDArray and Symbol both have that map to ops.
_SHARED = ("depth_to_space", "space_to_depth", "diag", "shape_array", "size_array",
           "argmax_channel", "pad", "reshape", "reshape_like", "transpose", "sum", "softmin")


@pytest.mark.parametrize("name", _SHARED)
def test_fluent_methods_exist_on_ndarray_and_symbol(name):
    assert callable(getattr(mx.nd.NDArray, name))
    assert callable(getattr(mx.sym.Symbol, name))


def test_new_ops_as_functions_and_methods():
    x = mx.nd.array(np.arange(24, dtype=np.float32).reshape(1, 4, 2, 3))
    np.testing.assert_array_equal(mx.nd.depth_to_space(x, 2).asnumpy(),
                                  x.depth_to_space(2).asnumpy())
    assert x.depth_to_space(2).shape == (1, 1, 4, 6)
    assert x.depth_to_space(2).space_to_depth(block_size=2).shape == (1, 4, 2, 3)
    m = mx.nd.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(m.diag().asnumpy(), [1.0, 4.0])
    np.testing.assert_array_equal(mx.nd.diag(mx.nd.array([1.0, 2.0])).asnumpy(),
                                  [[1.0, 0.0], [0.0, 2.0]])
    assert m.shape_array().asnumpy().tolist() == [2, 2]
    assert m.size_array().asnumpy().tolist() == [4]
    assert m.argmax_channel().asnumpy().tolist() == [1.0, 1.0]
    assert mx.nd.argmax_channel(mx.nd.array([[1, 5, 2], [7, 0, 1]])).asnumpy().tolist() == [1, 0]
    np.testing.assert_allclose(mx.nd.mish(m).asnumpy(),
                               m.asnumpy() * np.tanh(np.log1p(np.exp(m.asnumpy()))), rtol=1e-6)


def test_symbol_fluent_ops_infer_and_run():
    data = mx.sym.var("data")
    net = data.space_to_depth(2).depth_to_space(2).mish()
    assert net.infer_shape(data=(2, 3, 4, 6))[1] == [(2, 3, 4, 6)]
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 6)).astype(np.float32)
    got = net.eval(data=mx.nd.array(x))[0].asnumpy()
    np.testing.assert_allclose(got, x * np.tanh(np.log1p(np.exp(x))), rtol=1e-5, atol=1e-6)
    assert data.shape_array().infer_shape(data=(2, 3))[1] == [(2,)]
    assert data.size_array().infer_type(data=np.float32)[1] == [np.int64]


def test_ndarray_slice_assign_and_storage_type():
    x = mx.nd.zeros((3, 4))
    assert x.slice_assign(mx.nd.ones((2, 2)), (0, 1), (2, 3), (None, None)) is x
    x.slice_assign_scalar(5.0, (2,), (None,), (None,))
    np.testing.assert_array_equal(x.asnumpy(), [[0, 1, 1, 0], [0, 1, 1, 0], [5, 5, 5, 5]])
    assert x.stype == "default" and x.tostype("default").asnumpy().sum() == x.asnumpy().sum()
    with pytest.raises(mx.MXNetError, match="stype='csr' is not supported"):
        x.tostype("csr")
    with pytest.raises(mx.MXNetError, match="same length"):
        x.slice_assign(mx.nd.ones((1,)), (0, 1), (1,), None)


@pytest.mark.parametrize("method", ["asnumpy", "asscalar", "wait_to_read", "detach", "copy",
                                    "backward", "as_in_context"])
def test_value_methods_on_symbols_raise_as_in_mxnet(method):
    with pytest.raises(mx.MXNetError, match=f"Symbol.{method}\\(\\) is not defined"):
        getattr(mx.sym.var("x"), method)()


def test_symbol_copy_module_and_refusals():
    x = mx.sym.var("x")
    assert copy.copy(x).name == "x" and x.as_nd_ndarray() is x
    with pytest.raises(mx.MXNetError, match="wrt=\\['x'\\]"):
        x.gradient(["x"])
    with pytest.raises(mx.MXNetError, match="backend='MKLDNN'"):
        x.optimize_for("MKLDNN")


def test_infer_shape_partial_gives_empty_tuples_for_unknown_shapes():
    fc = mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=3, name="fc")
    arg, out, aux = fc.infer_shape_partial()
    assert arg == [(), (), (3,)] and out == [()] and aux == []
    arg, out, _ = fc.infer_shape_partial(data=(0, 4))
    assert arg == [(0, 4), (3, 4), (3,)] and out == [(0, 3)]
    bn = mx.sym.BatchNorm(mx.sym.var("data"), name="bn")
    arg, out, aux = bn.infer_shape_partial()
    assert arg == [(), (), ()] and aux == [(), ()]
    assert fc.infer_shape_known()[1] == [None]
