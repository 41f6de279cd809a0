"""SoftmaxOutput: softmax forward, cross-entropy gradient as a loss head."""
import numpy as np
import pytest

from deepkit_engine import autograd
from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import ShapeError
from deepkit_engine.ops.registry import get_op
from deepkit_engine.testing import assert_almost_equal

from .op_cases import ELEMWISE_SHAPES, Int, OpCase, forward_params, gradient_params, \
    run_forward, run_gradient


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _softmax_prob(shape):
    return lambda rng, dtype: _softmax(rng.uniform(-1, 1, size=shape), -1).astype(dtype)


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


def _backward_softmax_output_ref(prob, label, **params):
    grad = prob.copy()
    for i, k in enumerate(label.astype(int)):
        grad[i, k] -= 1.0
    return grad * params.get("grad_scale", 1.0)


# -- regression heads, MakeLoss, BlockGrad -------------------------------------------------

def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _regression_ref(kind):
    def ref(data, label, **params):
        return _sigmoid(data) if kind == "logistic" else data.copy()
    return ref


def _regression_grad_ref(kind):
    def ref(out, label, grad_scale=1.0):
        per_sample = label.size // label.shape[0]
        grad = np.empty_like(out)
        flat_label = label.reshape(out.shape)
        for i in np.ndindex(*out.shape):
            diff = out[i] - flat_label[i]
            grad[i] = (np.sign(diff) if kind == "mae" else diff) * grad_scale / per_sample
        return grad
    return ref


_REGRESSION = {"LinearRegressionOutput": "linear", "LogisticRegressionOutput": "logistic",
               "MAERegressionOutput": "mae"}


def _make_loss_grad_ref(out, grad_scale=1.0, normalization="null", valid_thresh=0.0):
    norm = {"null": 1, "batch": out.shape[0],
            "valid": max(int((out > valid_thresh).sum()), 1)}[normalization]
    return np.full(out.shape, grad_scale / norm)


def _softmax_ce_ref(data, label):
    total = 0.0
    for row, k in zip(data, label.astype(int)):
        total -= np.log(np.exp(row[k]) / np.exp(row).sum())
    return np.array([total])


def _softmax_ce_grad_ref(ograd, data, label):
    grad = np.array([np.exp(row) / np.exp(row).sum() for row in data]).reshape(data.shape)
    for i, k in enumerate(label.astype(int)):
        grad[i, k] -= 1.0
    return grad * ograd[0]


def _softmax_nll_ref(data, label):
    rows = data.reshape(-1, data.shape[-1])
    out = [np.log(np.exp(row).sum()) - row[k] for row, k in zip(rows, label.reshape(-1).astype(int))]
    return np.array(out).reshape(data.shape[:-1])


def _softmax_nll_grad_ref(ograd, data, label):
    rows = data.reshape(-1, data.shape[-1])
    grad = np.array([np.exp(row) / np.exp(row).sum() for row in rows])
    for i, k in enumerate(label.reshape(-1).astype(int)):
        grad[i, k] -= 1.0
    return (grad * ograd.reshape(-1, 1)).reshape(data.shape)


def _smooth_l1_ref(x, scalar=1.0):
    out = np.empty_like(x)
    s2 = scalar * scalar
    for i in np.ndindex(*x.shape):
        v = x[i]
        out[i] = abs(v) - 0.5 / s2 if abs(v) > 1 / s2 else 0.5 * s2 * v * v
    return out


def _float_labels(shape, high):
    return lambda rng, dtype: rng.integers(0, high, size=shape).astype(dtype)


CASES += [
    OpCase("_backward_SoftmaxOutput", [_softmax_prob((4, 5)), Int((4,), 0, 5)],
           _backward_softmax_output_ref, {"grad_scale": 2.0}),
    OpCase("MakeLoss", [(3, 4)], lambda x, **p: x, grad=False),
    OpCase("MakeLoss", [(0, 4)], lambda x, **p: x, {"normalization": "batch"}, grad=False),
    OpCase("_backward_MakeLoss", [(3, 4)], _make_loss_grad_ref, {"grad_scale": 3.0}),
    OpCase("_backward_MakeLoss", [(3, 4)], _make_loss_grad_ref, {"normalization": "batch"}),
    OpCase("_backward_MakeLoss", [(3, 4)], _make_loss_grad_ref,
           {"normalization": "valid", "valid_thresh": 0.2}),
    OpCase("BlockGrad", [(3, 4)], lambda x: x, grad=False),
    OpCase("BlockGrad", [()], lambda x: x, grad=False),
    OpCase("softmax_cross_entropy", [(3, 4), Int((3,), 0, 4)], _softmax_ce_ref, low=-3,
           high=3),
    OpCase("softmax_cross_entropy", [(1, 1), Int((1,), 0, 1)], _softmax_ce_ref),
    OpCase("softmax_cross_entropy", [(0, 3), Int((0,), 0, 3)], _softmax_ce_ref, grad=False),
    OpCase("softmax_cross_entropy", [(3, 4), _float_labels((3,), 4)], _softmax_ce_ref,
           grad=False, name="float-label"),
    OpCase("_backward_softmax_cross_entropy", [(1,), (3, 4), Int((3,), 0, 4)],
           _softmax_ce_grad_ref, low=-2, high=2),
    OpCase("_softmax_nll", [(3, 4), Int((3,), 0, 4)], _softmax_nll_ref, low=-3, high=3),
    OpCase("_softmax_nll", [(2, 3, 5), Int((2, 3), 0, 5)], _softmax_nll_ref, low=-3, high=3),
    OpCase("_softmax_nll", [(0, 3), Int((0,), 0, 3)], _softmax_nll_ref, grad=False),
    OpCase("_softmax_nll", [(3, 4), _float_labels((3,), 4)], _softmax_nll_ref, grad=False,
           name="float-label"),
    OpCase("_backward_softmax_nll", [(3,), (3, 4), Int((3,), 0, 4)], _softmax_nll_grad_ref,
           low=-2, high=2),
    OpCase("_backward_softmax_nll", [(2, 3), (2, 3, 5), Int((2, 3), 0, 5)],
           _softmax_nll_grad_ref, low=-2, high=2),
]
for _op, _kind in _REGRESSION.items():
    CASES += [
        OpCase(_op, [(4, 3), (4, 3)], _regression_ref(_kind), low=-3, high=3, grad=False),
        OpCase(_op, [(4, 1), (4,)], _regression_ref(_kind), grad=False),
        OpCase(_op, [(2, 3, 2), (2, 6)], _regression_ref(_kind), {"grad_scale": 0.5},
               grad=False),
        OpCase(_op, [(0, 3), (0, 3)], _regression_ref(_kind), grad=False),
        OpCase(f"_backward_{_op}", [(4, 3), (4, 3)], _regression_grad_ref(_kind),
               {"grad_scale": 2.0}),
        OpCase(f"_backward_{_op}", [(4, 1), (4,)], _regression_grad_ref(_kind)),
    ]
for _scalar in (1.0, 2.0, 0.5):
    CASES += [OpCase("smooth_l1", [shape], _smooth_l1_ref, {"scalar": _scalar}, low=-3,
                     high=3, grad=shape == (3, 4)) for shape in ELEMWISE_SHAPES]

#: Loss heads (SoftmaxOutput, the regression outputs, MakeLoss) ignore their
#: out_grad: their gradients are checked against the numeric gradient of the
#: loss they stand for, by the tests named here. BlockGrad's gradient is none.
OTHER_GRAD_COVERED_OPS = {
    "SoftmaxOutput": "test_gradient_is_cross_entropy_gradient",
    "LinearRegressionOutput": "test_regression_gradient_is_loss_gradient",
    "LogisticRegressionOutput": "test_regression_gradient_is_loss_gradient",
    "MAERegressionOutput": "test_regression_gradient_is_loss_gradient",
    "MakeLoss": "test_make_loss_gradient_is_grad_scale_normalised",
    "BlockGrad": "test_block_grad_stops_the_gradient",
}


@pytest.mark.parametrize("case", gradient_params(CASES))
def test_gradient(case, ctx):
    run_gradient(case, ctx)


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


# -- regression heads, MakeLoss, BlockGrad -------------------------------------------------

def _numeric(loss, x, eps=1e-6):
    grad = np.zeros_like(x)
    for i in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        grad[i] = (loss(xp) - loss(xm)) / (2 * eps)
    return grad


def _bind_head(net, values, ctx):
    args = {k: nd.array(v, ctx=ctx, dtype="float64") for k, v in values.items()}
    return net.bind(ctx, args, args_grad={"data": nd.zeros(values["data"].shape, ctx=ctx,
                                                            dtype="float64")},
                    grad_req={"data": "write"})


_REGRESSION_LOSSES = {
    "linear": lambda x, y: 0.5 * ((x - y) ** 2).sum(),
    "logistic": lambda x, y: -(y * np.log(_sigmoid(x)) + (1 - y) * np.log(1 - _sigmoid(x))).sum(),
    "mae": lambda x, y: np.abs(x - y).sum(),
}


@pytest.mark.parametrize("op", sorted(_REGRESSION))
@pytest.mark.parametrize("shape,label_shape,grad_scale", [
    ((3, 4), (3, 4), 1.0), ((5, 1), (5,), 2.0), ((2, 3, 2), (2, 6), 0.5)])
def test_regression_gradient_is_loss_gradient(op, shape, label_shape, grad_scale, ctx):
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, size=shape)
    label = rng.uniform(0, 1, size=label_shape)
    net = getattr(sym, op)(sym.Variable("data"), sym.Variable("label"), grad_scale=grad_scale)
    exe = _bind_head(net, {"data": x, "label": label}, ctx)
    out = exe.forward(is_train=True)[0]
    exe.backward(nd.full(shape, 100.0, ctx=ctx, dtype="float64"))  # ignored: a loss head
    kind = _REGRESSION[op]
    per_sample = label.size // shape[0]
    y = label.reshape(shape)
    numeric = _numeric(lambda v: _REGRESSION_LOSSES[kind](v, y) * grad_scale / per_sample, x)
    assert_almost_equal(exe.grad_dict["data"], numeric, rtol=1e-5, atol=1e-7)
    assert_almost_equal(out, _sigmoid(x) if kind == "logistic" else x)


def test_regression_label_shape_is_inferred_and_checked():
    net = sym.LinearRegressionOutput(sym.FullyConnected(sym.Variable("data"), num_hidden=1,
                                                        name="fc"), name="lro")
    args, outs, _ = net.infer_shape(data=(8, 20))
    assert dict(zip(net.list_arguments(), args))["lro_label"] == (8,) and outs == [(8, 1)]
    multi = sym.LogisticRegressionOutput(sym.Variable("data"), name="out")
    args, _, _ = multi.infer_shape(data=(8, 3))
    assert args[1] == (8, 3)
    with pytest.raises(ShapeError, match=r"(?s)LinearRegressionOutput 'lro'.*label.*\(8, 2\)"):
        net.infer_shape(data=(8, 20), lro_label=(8, 2))
    with pytest.raises(ShapeError, match=r"(?s)MAERegressionOutput.*label.*\(4, 3\).*\(3, 4\)"):
        nd.MAERegressionOutput(nd.ones((3, 4)), nd.ones((4, 3)))


@pytest.mark.parametrize("params", [
    {}, {"grad_scale": 2.5}, {"normalization": "batch"},
    {"normalization": "valid", "valid_thresh": 0.5, "grad_scale": 3.0}])
def test_make_loss_gradient_is_grad_scale_normalised(params, ctx):
    x = np.array([[0.1, 0.7, 2.0], [-1.0, 0.6, 0.0]])
    net = sym.MakeLoss(sym.Variable("data"), **params)
    exe = _bind_head(net, {"data": x}, ctx)
    out = exe.forward(is_train=True)[0]
    exe.backward()
    norm = {"null": 1, "batch": 2, "valid": 3}[params.get("normalization", "null")]
    # the loss sum(x) * grad_scale / norm (with a fixed normaliser)
    scale = params.get("grad_scale", 1.0) / norm
    assert_almost_equal(exe.grad_dict["data"], _numeric(lambda v: v.sum() * scale, x))
    assert_almost_equal(out, x)


def test_make_loss_ends_a_custom_loss_graph(ctx):
    # cross-entropy written by hand and made a loss, as in MXNet's make_loss docs
    p = sym.Variable("data")
    y = sym.Variable("label")
    loss = sym.make_loss(-(y * sym.log(p) + (1 - y) * sym.log(1 - p)))
    v = np.array([0.2, 0.7, 0.9])
    t = np.array([0.0, 1.0, 1.0])
    exe = _bind_head(loss, {"data": v, "label": t}, ctx)
    exe.forward(is_train=True)
    exe.backward()
    assert_almost_equal(exe.grad_dict["data"], -t / v + (1 - t) / (1 - v))


def test_block_grad_stops_the_gradient():
    v = np.array([[1.0, -2.0], [0.5, 4.0]])
    a = nd.array(v, dtype="float64")
    a.attach_grad()
    with autograd.record():
        b = nd.BlockGrad(a * 2.0) * a + nd.stop_gradient(a) + a * 3.0
    assert_almost_equal(b, 2 * v * v + v + 3 * v)
    b.backward()
    assert_almost_equal(a.grad, 2 * v + 3)  # only the unblocked paths


def test_block_grad_stops_the_gradient_in_an_executor(ctx):
    x = sym.Variable("data")
    net = sym.BlockGrad(x * 2.0) * x + sym.stop_gradient(x) + x * 3.0
    v = np.array([[1.0, -2.0], [0.5, 4.0]])
    exe = _bind_head(net, {"data": v}, ctx)
    assert_almost_equal(exe.forward(is_train=True)[0], 2 * v * v + v + 3 * v)
    exe.backward(nd.ones((2, 2), ctx=ctx, dtype="float64"))
    assert_almost_equal(exe.grad_dict["data"], 2 * v + 3)


def test_loss_aliases():
    assert get_op("make_loss") is get_op("MakeLoss")
    assert get_op("stop_gradient") is get_op("BlockGrad")
    assert get_op("_backward_linear_reg_out") is get_op("_backward_LinearRegressionOutput")
    assert get_op("_backward_mae_reg_out") is get_op("_backward_MAERegressionOutput")
    assert get_op("_backward_logistic_reg_out") is get_op("_backward_LogisticRegressionOutput")


# -- softmax_cross_entropy, smooth_l1 ------------------------------------------------------

def test_softmax_cross_entropy_executor(ctx):
    x = np.array([[1.0, 2, 3], [11, 7, 5]])
    label = np.array([2.0, 0])
    net = sym.softmax_cross_entropy(sym.Variable("data"), sym.Variable("label"))
    exe = _bind_head(net, {"data": x, "label": label}, ctx)
    out = exe.forward(is_train=True)[0]
    np.testing.assert_allclose(out.asnumpy(), [0.4281871], rtol=1e-6)  # MXNet's doc example
    exe.backward(nd.array([2.0], ctx=ctx, dtype="float64"))
    prob = _softmax(x, 1)
    prob[[0, 1], [2, 0]] -= 1
    assert_almost_equal(exe.grad_dict["data"], 2 * prob)


def test_softmax_cross_entropy_second_order():
    rng = np.random.default_rng(2)
    v = rng.uniform(-1, 1, (3, 4))
    u = rng.uniform(-1, 1, (3, 4))
    label = np.array([1.0, 3.0, 0.0])
    x = nd.array(v, dtype="float64")
    x.attach_grad()
    with autograd.record():
        loss = nd.softmax_cross_entropy(x, nd.array(label, dtype="float64"))
        g = autograd.grad(loss, x, create_graph=True)
        z = g * nd.array(u, dtype="float64")
    z.backward()
    # the Hessian of the cross-entropy is diag(p) - p p^T per row
    p = _softmax(v, 1)
    expected = np.stack([(np.diag(row) - np.outer(row, row)) @ w for row, w in zip(p, u)])
    assert_almost_equal(x.grad, expected, rtol=1e-6)


def test_softmax_nll_second_order_and_shape_errors():
    rng = np.random.default_rng(4)
    v, u, w = rng.uniform(-1, 1, (3, 4)), rng.uniform(-1, 1, (3, 4)), rng.uniform(0.5, 2, 3)
    label = np.array([1.0, 3.0, 0.0])
    x = nd.array(v, dtype="float64")
    x.attach_grad()
    with autograd.record():
        loss = nd._softmax_nll(x, nd.array(label, dtype="float64")) * nd.array(w, dtype="float64")
        g = autograd.grad(loss, x, create_graph=True)
        z = g * nd.array(u, dtype="float64")
    z.backward()
    p = _softmax(v, 1)
    expected = np.stack([wi * (np.diag(row) - np.outer(row, row)) @ ui
                         for row, ui, wi in zip(p, u, w)])
    assert_almost_equal(x.grad, expected, rtol=1e-6)
    with pytest.raises(ShapeError, match=r"(?s)_softmax_nll.*label.*\(3,\).*\(2,\)"):
        nd._softmax_nll(nd.ones((2, 4)), nd.ones(3))
    with pytest.raises(ShapeError, match=r"(?s)_softmax_nll.*\(2, 0\).*at least one"):
        nd._softmax_nll(nd.ones((2, 0)), nd.ones(2))
    with pytest.raises(ShapeError, match=r"(?s)_backward_softmax_nll.*ograd.*\(3,\).*\(2,\)"):
        nd._backward_softmax_nll(nd.ones(3), nd.ones((2, 4)), nd.ones(2))


def test_softmax_cross_entropy_shape_errors():
    with pytest.raises(ShapeError, match=r"(?s)softmax_cross_entropy.*2-D data.*\(2, 3, 4\)"):
        nd.softmax_cross_entropy(nd.ones((2, 3, 4)), nd.ones(2))
    with pytest.raises(ShapeError, match=r"(?s)softmax_cross_entropy.*label.*\(3,\).*\(2,\)"):
        nd.softmax_cross_entropy(nd.ones((2, 3)), nd.ones(3))


def test_smooth_l1_second_order():
    v = np.array([-2.0, -0.1, 0.05, 0.2, 1.5])
    x = nd.array(v, dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = nd.smooth_l1(x, scalar=2.0)
        g = autograd.grad(y, x, create_graph=True)
    g.backward()
    assert_almost_equal(g, np.where(np.abs(v) > 0.25, np.sign(v), 4.0 * v))
    assert_almost_equal(x.grad, np.where(np.abs(v) > 0.25, 0.0, 4.0))
    np.testing.assert_allclose(nd.smooth_l1(nd.array([1.0, 2, 3, 4])).asnumpy(),
                               [0.5, 1.5, 2.5, 3.5])  # MXNet's doc example
