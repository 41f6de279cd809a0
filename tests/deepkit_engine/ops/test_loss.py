"""SoftmaxOutput: softmax forward, cross-entropy gradient as a loss head."""
import numpy as np
import pytest

from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import ShapeError
from deepkit_engine.testing import assert_almost_equal

from .op_cases import Int, OpCase, forward_params, run_forward


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _ref(data, label, **params):
    if params.get("preserve_shape"):
        return _softmax(data, -1)
    if params.get("multi_output"):
        return _softmax(data, 1)
    return _softmax(data.reshape(data.shape[0], -1), 1).reshape(data.shape)


CASES = [
    OpCase("SoftmaxOutput", [(4, 5), Int((4,), 0, 5)], _ref, grad=False),
    OpCase("SoftmaxOutput", [(2, 3, 2), Int((2, 2), 0, 3)], _ref, {"multi_output": True},
           grad=False),
    OpCase("SoftmaxOutput", [(2, 3, 4), Int((2, 3), 0, 4)], _ref, {"preserve_shape": True},
           grad=False),
    OpCase("SoftmaxOutput", [(1, 1), Int((1,), 0, 1)], _ref, grad=False),
]
#: SoftmaxOutput is a loss head: its gradient is checked against the numeric
#: gradient of the cross-entropy loss below, not against its (ignored) out_grad.
OTHER_GRAD_COVERED_OPS = {"SoftmaxOutput": "test_gradient_is_cross_entropy_gradient"}


@pytest.mark.parametrize("case,dtype", forward_params(CASES))
def test_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)


def _cross_entropy(x, label, axis, grad_scale, norm, ignore=None):
    p = np.moveaxis(_softmax(x, axis), axis, -1)
    lab = label.astype(int)
    picked = np.take_along_axis(p, lab[..., None], axis=-1)[..., 0]
    losses = -np.log(picked)
    if ignore is not None:
        losses = np.where(lab == ignore, 0.0, losses)
    return grad_scale * losses.sum() / norm


@pytest.mark.parametrize("params,shape,label_shape,axis", [
    ({}, (3, 4), (3,), 1),
    ({"grad_scale": 2.0, "normalization": "batch"}, (3, 4), (3,), 1),
    ({"multi_output": True, "normalization": "valid"}, (2, 3, 2), (2, 2), 1),
    ({"preserve_shape": True}, (2, 2, 3), (2, 2), 2),
    ({"use_ignore": True, "ignore_label": 1, "normalization": "valid"}, (4, 3), (4,), 1),
])
def test_gradient_is_cross_entropy_gradient(params, shape, label_shape, axis, ctx):
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape)
    label = rng.integers(0, shape[axis], size=label_shape).astype(np.float64)
    if params.get("use_ignore"):
        label[0] = params["ignore_label"]
    net = sym.SoftmaxOutput(sym.Variable("data"), sym.Variable("label"), **params)
    exe = net.bind(ctx, {"data": nd.array(x, ctx=ctx, dtype="float64"),
                         "label": nd.array(label, ctx=ctx, dtype="float64")},
                   args_grad={"data": nd.zeros(shape, ctx=ctx, dtype="float64")},
                   grad_req={"data": "write"})
    exe.forward(is_train=True)
    exe.backward()
    ignore = params["ignore_label"] if params.get("use_ignore") else None
    valid = (label != ignore).sum() if ignore is not None else label.size
    norm = {"null": 1, "batch": shape[0], "valid": valid}[params.get("normalization", "null")]
    scale = params.get("grad_scale", 1.0)
    numeric = np.zeros(shape)
    eps = 1e-6
    for i in np.ndindex(*shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        numeric[i] = (_cross_entropy(xp, label, axis, scale, norm, ignore)
                      - _cross_entropy(xm, label, axis, scale, norm, ignore)) / (2 * eps)
    assert_almost_equal(exe.grad_dict["data"], numeric, rtol=1e-5, atol=1e-7)


def test_label_shape_is_inferred_and_checked():
    net = sym.SoftmaxOutput(sym.FullyConnected(sym.Variable("data"), num_hidden=10, name="fc"),
                            name="softmax")
    args, outs, _ = net.infer_shape(data=(8, 20))
    assert dict(zip(net.list_arguments(), args))["softmax_label"] == (8,)
    with pytest.raises(ShapeError, match=r"SoftmaxOutput 'softmax'.*label.*\(8, 10\)|\(8, 3\)"):
        net.infer_shape(data=(8, 20), softmax_label=(8, 3))


def test_loss_head_ignores_out_grads():
    net = sym.SoftmaxOutput(sym.Variable("data"), sym.Variable("label"))
    exe = net.simple_bind(data=(2, 3), label=(2,), grad_req={"data": "write"})
    exe.arg_dict["data"][:] = np.array([[1.0, 2, 3], [0, 0, 0]])
    exe.arg_dict["label"][:] = np.array([2.0, 0])
    exe.forward(is_train=True)
    exe.backward()
    first = exe.grad_dict["data"].asnumpy()
    exe.forward(is_train=True)
    exe.backward(nd.full((2, 3), 100.0))
    assert_almost_equal(exe.grad_dict["data"], first)
