"""Embedding: forward against a plain-loop numpy reference, the weight gradient (numeric,
executor-level and second order), index handling and errors."""
import numpy as np
import pytest

from deepkit_engine import autograd
from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import ParamError, ShapeError
from deepkit_engine.testing import assert_almost_equal

from .op_cases import Int, OpCase, forward_params, gradient_params, run_forward, run_gradient


def _float_ints(shape, low, high):
    """Float-valued integer indices (MXNet passes indices as float arrays)."""
    return lambda rng, dtype: rng.integers(low, high, size=shape).astype(dtype)


# -- Embedding -----------------------------------------------------------------------------

def _embedding_ref(data, weight, input_dim, output_dim, **params):
    out = np.zeros(data.shape + (output_dim,))
    for i in np.ndindex(*data.shape):
        row = min(max(int(data[i]), 0), input_dim - 1)
        out[i] = weight[row]
    return out


def _embedding_grad_ref(ograd, data, input_dim, output_dim):
    grad = np.zeros((input_dim, output_dim))
    for i in np.ndindex(*data.shape):
        grad[min(max(int(data[i]), 0), input_dim - 1)] += ograd[i]
    return grad


_EMB = {"input_dim": 5, "output_dim": 3}

CASES = [
    OpCase("Embedding", [Int((2, 3), 0, 5), (5, 3)], _embedding_ref, _EMB),
    OpCase("Embedding", [Int((4,), -3, 9), (5, 3)], _embedding_ref, _EMB, name="clip"),
    OpCase("Embedding", [_float_ints((2, 2), 0, 5), (5, 3)], _embedding_ref, _EMB, grad=False,
           name="float-index"),
    OpCase("Embedding", [Int((0, 2), 0, 5), (5, 3)], _embedding_ref, _EMB),
    OpCase("Embedding", [Int((3,), 0, 1), (1, 1)], _embedding_ref,
           {"input_dim": 1, "output_dim": 1}),
    OpCase("_backward_Embedding", [(2, 4, 3), Int((2, 4), 0, 5)], _embedding_grad_ref, _EMB),
    OpCase("_backward_Embedding", [(6, 3), Int((6,), -2, 8)], _embedding_grad_ref, _EMB,
           name="clip"),
    OpCase("_backward_Embedding", [(0, 3), Int((0,), 0, 5)], _embedding_grad_ref, _EMB),
]


def test_embedding_weight_shape_is_inferred_and_checked():
    net = sym.Embedding(sym.Variable("data"), input_dim=100, output_dim=16, name="embed")
    assert net.list_arguments() == ["data", "embed_weight"]
    args, outs, _ = net.infer_shape(data=(32, 35))
    assert args == [(32, 35), (100, 16)] and outs == [(32, 35, 16)]
    assert net.infer_type(data="float32")[1] == [np.float32]
    assert net.infer_type(data="int32", embed_weight="float64")[1] == [np.float64]
    with pytest.raises(ShapeError, match=r"(?s)Embedding 'embed'.*weight.*\(100, 8\).*"
                                         r"\(100, 16\)"):
        net.infer_shape(data=(32, 35), embed_weight=(100, 8))
    with pytest.raises(ParamError, match="missing required param 'output_dim'"):
        sym.Embedding(sym.Variable("data"), input_dim=10)


def test_embedding_executor_sums_repeated_rows(ctx):
    idx = np.array([[1.0, 3.0, 1.0], [0.0, 1.0, 4.0]])
    weight = np.random.default_rng(0).normal(size=(5, 2))
    ograd = np.random.default_rng(1).normal(size=(2, 3, 2))
    net = sym.Embedding(sym.Variable("data"), sym.Variable("weight"), input_dim=5,
                        output_dim=2)
    exe = net.bind(ctx, {"data": nd.array(idx, ctx=ctx), "weight": nd.array(weight, ctx=ctx)},
                   args_grad={"weight": nd.zeros((5, 2), ctx=ctx)},
                   grad_req={"data": "null", "weight": "write"})
    assert_almost_equal(exe.forward(is_train=True)[0], weight[idx.astype(int)])
    exe.backward(nd.array(ograd, ctx=ctx))
    expected = np.zeros((5, 2))
    expected[1] = ograd[0, 0] + ograd[0, 2] + ograd[1, 1]
    expected[3], expected[0], expected[4] = ograd[0, 1], ograd[1, 0], ograd[1, 2]
    assert_almost_equal(exe.grad_dict["weight"], expected, rtol=1e-5, atol=1e-6)


def test_embedding_second_order():
    idx = nd.array([2.0, 0.0, 2.0])
    w = np.arange(12.0).reshape(4, 3) / 10
    scale = np.array([[1.0], [2.0], [3.0]])
    weight = nd.array(w, dtype="float64")
    weight.attach_grad()
    with autograd.record():
        y = nd.square(nd.Embedding(idx, weight, input_dim=4, output_dim=3)) * \
            nd.array(scale, dtype="float64")
        g = autograd.grad(y, weight, create_graph=True)
    g.backward()
    # g[r] = sum over i with idx_i = r of 2 * scale_i * w[r]: its derivative is 2 * scale_i
    expected = np.zeros((4, 3))
    expected[2], expected[0] = 2 * (1 + 3), 2 * 2
    assert_almost_equal(weight.grad, expected)


# -- the cases above, run ------------------------------------------------------------------

@pytest.mark.parametrize("case,dtype", forward_params(CASES))
def test_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)


@pytest.mark.parametrize("case", gradient_params(CASES))
def test_gradient(case, ctx):
    run_gradient(case, ctx)
