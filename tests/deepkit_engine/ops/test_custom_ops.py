"""The ops behind operators written in Python: ``Custom`` (the prop protocol) and
``_custom_gradient`` (a hand-written gradient), against float64 numpy references."""
import numpy as np
import pytest

from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.custom import custom_gradient, register_prop, unregister_prop
from deepkit_engine.testing import assert_almost_equal, check_numeric_gradient

OTHER_COVERED_OPS = {
    "Custom": "test_custom_forward_matches_numpy",
    "_backward_Custom": "test_custom_backward_matches_numpy",
    "_custom_gradient": "test_custom_gradient_passes_value_and_uses_declared_gradient",
}
OTHER_GRAD_COVERED_OPS = {
    "Custom": "test_custom_numeric_gradient",
    "_custom_gradient": "test_custom_gradient_numeric_check",
}


class _ScaledTanh:
    """``out = scale * tanh(data)`` as a prop/operator pair over NDArrays."""

    def __init__(self, scale="1.0"):
        self.scale = float(scale)
        self.need_top_grad_ = True

    def list_arguments(self):
        return ["data"]

    def list_outputs(self):
        return ["output"]

    def list_auxiliary_states(self):
        return []

    def infer_shape(self, in_shape):
        return in_shape, [in_shape[0]], []

    def declare_backward_dependency(self, out_grad, in_data, out_data):
        return list(out_grad) + list(out_data)

    def create_operator(self, ctx, shapes, dtypes):
        scale = self.scale

        class Op:
            def forward(self, is_train, req, in_data, out_data, aux):
                out_data[0][:] = nd.tanh(in_data[0]) * scale

            def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
                y = out_data[0] / scale
                in_grad[0][:] = out_grad[0] * (1 - y * y) * scale
        return Op()


@pytest.fixture
def scaled_tanh():
    register_prop("test_scaled_tanh", _ScaledTanh)
    yield "test_scaled_tanh"
    unregister_prop("test_scaled_tanh")


def test_custom_forward_matches_numpy(scaled_tanh, rng):
    x = rng.standard_normal((3, 5))
    out = nd.Custom(nd.array(x, dtype="float64"), op_type=scaled_tanh, scale=2.5)
    assert_almost_equal(out.asnumpy(), 2.5 * np.tanh(x), rtol=1e-12, atol=1e-12)


def test_custom_backward_matches_numpy(scaled_tanh, rng):
    x, g = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    net = sym.Custom(sym.var("data"), op_type=scaled_tanh, scale="0.5")
    exe = net.simple_bind(data=(4, 3), type_dict={"data": "float64"})
    exe.arg_dict["data"][:] = x
    exe.forward(is_train=True)
    exe.backward(nd.array(g, dtype="float64"))
    assert_almost_equal(exe.grad_dict["data"].asnumpy(), g * 0.5 * (1 - np.tanh(x) ** 2),
                        rtol=1e-10, atol=1e-12)


def test_custom_numeric_gradient(scaled_tanh, rng):
    net = sym.Custom(sym.var("data"), op_type=scaled_tanh, scale=1.5)
    check_numeric_gradient(net, [rng.standard_normal((2, 3))])


@custom_gradient
def _double_gradient_exp(x):
    y = sym.exp(x)

    def grad(upstream):
        return upstream * y * 2
    return y, grad


def test_custom_gradient_passes_value_and_uses_declared_gradient(rng):
    x, g = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    exe = _double_gradient_exp(sym.var("data")).simple_bind(
        data=(2, 3), type_dict={"data": "float64"})
    exe.arg_dict["data"][:] = x
    out = exe.forward(is_train=True)[0]
    exe.backward(nd.array(g, dtype="float64"))
    assert_almost_equal(out.asnumpy(), np.exp(x), rtol=1e-12, atol=0)
    assert_almost_equal(exe.grad_dict["data"].asnumpy(), 2 * g * np.exp(x), rtol=1e-12, atol=0)


@custom_gradient
def _softplus_by_hand(x):
    e = sym.exp(x)

    def grad(upstream):
        return upstream * (1 - 1 / (1 + e))
    return sym.log(1 + e), grad


def test_custom_gradient_numeric_check(rng):
    check_numeric_gradient(_softplus_by_hand(sym.var("data")), [rng.standard_normal((3, 4))])
