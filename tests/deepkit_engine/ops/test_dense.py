"""FullyConnected: forward against numpy, gradients, shape inference and errors."""
import numpy as np
import pytest

from deepkit_engine import autograd
from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import ShapeError

from .op_cases import OpCase, forward_params, gradient_params, run_forward, run_gradient


def _fc(x, w, b=None, num_hidden=None, no_bias=False, flatten=True):
    k = w.shape[1]
    x2 = x.reshape(x.shape[0], k) if flatten else x.reshape(int(np.prod(x.shape[:-1])), k)
    y = np.einsum("nk,hk->nh", x2, w)
    if b is not None:
        y = y + b
    return y if flatten else y.reshape(x.shape[:-1] + (w.shape[0],))


CASES = [
    OpCase("FullyConnected", [(4, 5), (3, 5), (3,)], _fc, {"num_hidden": 3}),
    OpCase("FullyConnected", [(2, 3, 2), (4, 6), (4,)], _fc, {"num_hidden": 4}),
    OpCase("FullyConnected", [(2, 3, 2), (4, 2)], _fc, {"num_hidden": 4, "no_bias": True,
                                                        "flatten": False}),
    OpCase("FullyConnected", [(2, 3, 2), (4, 2), (4,)], _fc, {"num_hidden": 4,
                                                              "flatten": False}),
    OpCase("FullyConnected", [(1, 1), (1, 1), (1,)], _fc, {"num_hidden": 1}),
    # 1-D data is a batch of single features (MXNet 1.x): weight (h, 1), output (n, h)
    OpCase("FullyConnected", [(3,), (2, 1), (2,)], _fc, {"num_hidden": 2}, name="1-D data"),
    OpCase("FullyConnected", [(0, 5), (2, 5), (2,)], _fc, {"num_hidden": 2}, grad=False),
]



def _data_grad(g, w, x, flatten=True, num_hidden=None):
    return (g.reshape(-1, w.shape[0]) @ w).reshape(x.shape)


def _weight_grad(g, x, flatten=True, num_hidden=None):
    h = g.shape[-1]
    x2 = x.reshape(x.shape[0], -1) if flatten else x.reshape(-1, x.shape[-1])
    return g.reshape(-1, h).T @ x2


CASES += [
    OpCase("_fc_data_grad", [(4, 3), (3, 6), (4, 2, 3)], _data_grad, {"num_hidden": 3}),
    OpCase("_fc_data_grad", [(2, 3, 4), (4, 5), (2, 3, 5)], _data_grad,
           {"num_hidden": 4, "flatten": False}),
    OpCase("_fc_weight_grad", [(4, 3), (4, 2, 3)], _weight_grad, {"num_hidden": 3}),
    OpCase("_fc_weight_grad", [(2, 3, 4), (2, 3, 5)], _weight_grad,
           {"num_hidden": 4, "flatten": False}),
]


def test_fully_connected_second_order_gradient_matches_numeric():
    rng = np.random.default_rng(3)
    xv, wv, uv = rng.normal(size=(3, 2, 2)), rng.normal(size=(5, 4)), rng.normal(size=(3, 5))
    x, w = nd.array(xv, dtype="float64"), nd.array(wv, dtype="float64")
    x.attach_grad()
    w.attach_grad()

    def penalty(xa, wa):  # sum of squares of d<u, tanh(FC(x))>/dx
        pre = xa.reshape(3, 4) @ wa.T
        dx = ((1 - np.tanh(pre) ** 2) * uv) @ wa
        return float((dx ** 2).sum())

    with autograd.record():
        y = nd.tanh(nd.FullyConnected(x, w, num_hidden=5, no_bias=True))
        dx = autograd.grad((y * nd.array(uv, dtype="float64")).sum(), x, create_graph=True)
        (dx * dx).sum().backward()
    eps = 1e-6
    for arr, value, fn in ((x, xv, lambda v: penalty(v, wv)), (w, wv, lambda v: penalty(xv, v))):
        numeric = np.zeros_like(value)
        for i in np.ndindex(value.shape):
            plus, minus = value.copy(), value.copy()
            plus[i] += eps
            minus[i] -= eps
            numeric[i] = (fn(plus) - fn(minus)) / (2 * eps)
        np.testing.assert_allclose(arr.grad.asnumpy(), numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("case,dtype", forward_params(CASES))
def test_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)


@pytest.mark.parametrize("case", gradient_params(CASES))
def test_gradient(case, ctx):
    run_gradient(case, ctx)


def test_weight_and_bias_shapes_are_inferred_from_data():
    fc = sym.FullyConnected(data=sym.Variable("data"), num_hidden=128, name="fc1")
    assert fc.list_arguments() == ["data", "fc1_weight", "fc1_bias"]
    args, outs, aux = fc.infer_shape(data=(32, 1, 28, 28))
    assert args == [(32, 1, 28, 28), (128, 784), (128,)] and outs == [(32, 128)] and aux == []
    no_bias = sym.FullyConnected(sym.Variable("x"), num_hidden=3, no_bias=True, name="fc")
    assert no_bias.list_arguments() == ["x", "fc_weight"]


def test_wrong_weight_shape_names_op_node_and_shapes():
    fc = sym.FullyConnected(data=sym.Variable("data"), num_hidden=10, name="fc1")
    with pytest.raises(ShapeError, match=r"FullyConnected 'fc1'.*weight.*\(10, 7\).*\(10, 5\)"):
        fc.infer_shape(data=(4, 5), fc1_weight=(10, 7))
    with pytest.raises(ShapeError, match=r"FullyConnected.*\(3, 4\).*\(2, 4\)"):
        nd.FullyConnected(nd.ones((2, 4)), nd.ones((3, 4)), nd.ones(3), num_hidden=2)


def test_bad_num_hidden_is_a_param_error():
    from deepkit_engine.base import ParamError  # noqa: PLC0415
    with pytest.raises(ParamError, match="num_hidden=0 must be >= 1"):
        sym.FullyConnected(sym.Variable("x"), num_hidden=0)
    with pytest.raises(ParamError, match="num_hiden.*did you mean 'num_hidden'"):
        sym.FullyConnected(sym.Variable("x"), num_hiden=3)
