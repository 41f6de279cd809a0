"""Checks MXNet 1.x behaviour of executors: ``bind``/``simple_bind``, ``grad_req``
(``write``, ``add``, ``null``, per argument), forward with keyword arrays, backward with
and without head gradients, ``copy_params_from`` and ``reshape``.

Outputs and gradients are compared with numpy.
"""
import numpy as np
import pytest

from deepkit.compat import mxnet as mx

A = np.array([[1.0, 2.0], [3.0, -4.0]], np.float32)
B = np.array([[0.5, -1.0], [2.0, 0.25]], np.float32)
HEAD = np.array([[1.0, 2.0], [-3.0, 0.5]], np.float32)


def _product_plus_lhs():
    """``a * b + a``: d/da = b + 1, d/db = a."""
    a, b = mx.sym.Variable("a"), mx.sym.Variable("b")
    return a * b + a


def _run_twice(grad_req):
    """Bind with gradients pre-filled with 1, run forward/backward twice."""
    grads = {"a": mx.nd.ones((2, 2)), "b": mx.nd.ones((2, 2))}
    exe = _product_plus_lhs().bind(mx.cpu(), args={"a": mx.nd.array(A), "b": mx.nd.array(B)},
                                   args_grad=grads, grad_req=grad_req)
    for _ in range(2):
        exe.forward(is_train=True)
        exe.backward(mx.nd.array(HEAD))
    return exe, grads


def test_forward_output_matches_numpy():
    exe, _ = _run_twice("write")
    np.testing.assert_allclose(exe.outputs[0].asnumpy(), A * B + A, rtol=1e-6)


def test_grad_req_write_overwrites_the_gradient_arrays():
    _, grads = _run_twice("write")
    np.testing.assert_allclose(grads["a"].asnumpy(), HEAD * (B + 1), rtol=1e-6)
    np.testing.assert_allclose(grads["b"].asnumpy(), HEAD * A, rtol=1e-6)


def test_grad_req_add_accumulates_onto_what_was_there():
    _, grads = _run_twice("add")
    np.testing.assert_allclose(grads["a"].asnumpy(), 1 + 2 * HEAD * (B + 1), rtol=1e-6)
    np.testing.assert_allclose(grads["b"].asnumpy(), 1 + 2 * HEAD * A, rtol=1e-6)


def test_grad_req_per_argument_as_dict_and_list():
    _, grads = _run_twice({"a": "write", "b": "null"})
    np.testing.assert_allclose(grads["a"].asnumpy(), HEAD * (B + 1), rtol=1e-6)
    np.testing.assert_array_equal(grads["b"].asnumpy(), np.ones((2, 2)))  # left untouched
    _, grads = _run_twice(["add", "write"])  # in list_arguments order: a, b
    np.testing.assert_allclose(grads["a"].asnumpy(), 1 + 2 * HEAD * (B + 1), rtol=1e-6)
    np.testing.assert_allclose(grads["b"].asnumpy(), HEAD * A, rtol=1e-6)


def test_simple_bind_allocates_arrays_by_name():
    net = _product_plus_lhs()
    exe = net.simple_bind(mx.cpu(), a=(2, 3), b=(2, 3))
    assert sorted(exe.arg_dict) == ["a", "b"] and sorted(exe.grad_dict) == ["a", "b"]
    assert [x.shape for x in exe.arg_arrays] == [(2, 3), (2, 3)]
    assert [x.shape for x in exe.grad_arrays] == [(2, 3), (2, 3)]
    assert exe.outputs[0].shape == (2, 3)
    assert list(exe.output_dict) == net.list_outputs()


def test_simple_bind_with_null_grad_req_has_no_gradient_arrays():
    exe = _product_plus_lhs().simple_bind(mx.cpu(), a=(2,), b=(2,), grad_req="null")
    assert exe.grad_arrays == [None, None]
    assert all(exe.grad_dict.get(n) is None for n in ("a", "b"))


def test_simple_bind_with_per_argument_grad_req():
    exe = _product_plus_lhs().simple_bind(mx.cpu(), a=(2, 3), b=(2, 3),
                                          grad_req={"a": "write", "b": "null"})
    assert exe.grad_dict["a"].shape == (2, 3)
    assert exe.grad_dict.get("b") is None


def test_simple_bind_honours_type_dict():
    exe = _product_plus_lhs().simple_bind(mx.cpu(), a=(2,), b=(2,),
                                          type_dict={"a": "float64", "b": "float64"})
    assert exe.arg_dict["a"].dtype == np.float64 and exe.outputs[0].dtype == np.float64


def test_forward_takes_arrays_by_keyword_and_copies_them_in():
    exe = _product_plus_lhs().simple_bind(mx.cpu(), a=(2, 2), b=(2, 2))
    outputs = exe.forward(a=mx.nd.array(A), b=B)  # an NDArray or a numpy array
    np.testing.assert_allclose(outputs[0].asnumpy(), A * B + A, rtol=1e-6)
    np.testing.assert_array_equal(exe.arg_dict["a"].asnumpy(), A)


def test_backward_after_a_plain_forward_is_allowed():
    exe = _product_plus_lhs().simple_bind(mx.cpu(), a=(2, 2), b=(2, 2))
    exe.arg_dict["a"][:] = A
    exe.arg_dict["b"][:] = B
    exe.forward()
    exe.backward(mx.nd.array(HEAD))
    np.testing.assert_allclose(exe.grad_dict["a"].asnumpy(), HEAD * (B + 1), rtol=1e-6)


def test_backward_of_a_loss_needs_no_head_gradient():
    x = mx.sym.Variable("x")
    loss = mx.sym.MakeLoss(mx.sym.sum(x * x))
    exe = loss.simple_bind(mx.cpu(), x=(3,))
    values = np.array([1.0, -2.0, 0.5], np.float32)
    exe.arg_dict["x"][:] = values
    exe.forward(is_train=True)
    exe.backward()
    np.testing.assert_allclose(exe.grad_dict["x"].asnumpy(), 2 * values, rtol=1e-6)


def test_group_outputs_take_one_head_gradient_each():
    a, b = mx.sym.Variable("a"), mx.sym.Variable("b")
    exe = mx.sym.Group([a + b, a * b]).simple_bind(mx.cpu(), a=(2,), b=(2,))
    av, bv = np.array([1.0, 2.0], np.float32), np.array([3.0, -4.0], np.float32)
    exe.arg_dict["a"][:] = av
    exe.arg_dict["b"][:] = bv
    exe.forward(is_train=True)
    h0, h1 = np.array([1.0, 1.0], np.float32), np.array([2.0, 0.5], np.float32)
    exe.backward([mx.nd.array(h0), mx.nd.array(h1)])
    np.testing.assert_allclose(exe.outputs[0].asnumpy(), av + bv)
    np.testing.assert_allclose(exe.outputs[1].asnumpy(), av * bv)
    np.testing.assert_allclose(exe.grad_dict["a"].asnumpy(), h0 + h1 * bv, rtol=1e-6)
    np.testing.assert_allclose(exe.grad_dict["b"].asnumpy(), h0 + h1 * av, rtol=1e-6)


def test_dropout_passes_values_and_gradients_through_outside_training():
    x = mx.sym.Variable("x")
    exe = mx.sym.Dropout(x, p=0.5).simple_bind(mx.cpu(), x=(4,))
    values = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    exe.arg_dict["x"][:] = values
    exe.forward()
    exe.backward(mx.nd.array([1.0, -1.0, 2.0, 0.5]))
    np.testing.assert_array_equal(exe.outputs[0].asnumpy(), values)
    np.testing.assert_array_equal(exe.grad_dict["x"].asnumpy(), [1.0, -1.0, 2.0, 0.5])


def test_bind_without_every_argument_raises_naming_it():
    with pytest.raises(ValueError, match="b"):  # as MXNet
        _product_plus_lhs().bind(mx.cpu(), args={"a": mx.nd.ones((2,))})


def test_bind_with_shapes_that_do_not_fit_raises():
    with pytest.raises(mx.MXNetError):
        exe = _product_plus_lhs().bind(mx.cpu(), args={"a": mx.nd.ones((2,)),
                                                       "b": mx.nd.ones((3,))})
        exe.forward()


def _dense(num_hidden=3):
    return mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=num_hidden, name="fc")


def test_copy_params_from_fills_arguments_and_refuses_unknown_names_unless_allowed():
    exe = _dense(2).simple_bind(mx.cpu(), data=(1, 2))
    weight = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    exe.copy_params_from({"fc_weight": mx.nd.array(weight), "fc_bias": mx.nd.array([1.0, -1.0])})
    got = exe.forward(data=mx.nd.array([[1.0, 1.0]]))[0]
    np.testing.assert_allclose(got.asnumpy(), np.ones((1, 2)) @ weight.T + [1.0, -1.0])
    with pytest.raises(ValueError, match="foo"):  # as MXNet
        exe.copy_params_from({"foo": mx.nd.ones((2,))})
    exe.copy_params_from({"foo": mx.nd.ones((2,))}, allow_extra_params=True)


def test_reshape_shares_parameters_and_changes_the_batch():
    exe = _dense().simple_bind(mx.cpu(), data=(4, 5))
    exe.arg_dict["fc_weight"][:] = 0.5
    exe.arg_dict["fc_bias"][:] = 0.25
    smaller = exe.reshape(data=(2, 5))
    np.testing.assert_array_equal(smaller.arg_dict["fc_weight"].asnumpy(),
                                  exe.arg_dict["fc_weight"].asnumpy())
    values = np.arange(10, dtype=np.float32).reshape(2, 5)
    got = smaller.forward(data=mx.nd.array(values))[0]
    assert got.shape == (2, 3)
    np.testing.assert_allclose(got.asnumpy(), values @ np.full((5, 3), 0.5) + 0.25, rtol=1e-6)
    bigger = exe.reshape(allow_up_sizing=True, data=(8, 5))
    assert bigger.outputs[0].shape == (8, 3)
    with pytest.raises(mx.MXNetError, match=r"'data' would grow from \(4, 5\) to \(8, 5\)"):
        exe.reshape(data=(8, 5))  # MXNet refuses to grow unless asked


def test_reshape_that_changes_a_parameter_shape_raises():
    exe = _dense().simple_bind(mx.cpu(), data=(4, 5))
    with pytest.raises(mx.MXNetError, match="fc_weight"):
        exe.reshape(data=(2, 6))
