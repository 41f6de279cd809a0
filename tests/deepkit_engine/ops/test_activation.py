"""Activation, LeakyReLU, softmax, log_softmax, SoftmaxActivation against numpy, with gradients."""
import math

import numpy as np
import pytest

from deepkit_engine import autograd
from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import ParamError, ShapeError
from deepkit_engine.testing import assert_almost_equal

from .op_cases import ELEMWISE_SHAPES, Const, Int, OpCase, forward_params, gradient_params, \
    run_forward, run_gradient

_REFERENCE = {
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "softrelu": lambda x: np.log1p(np.exp(x)),
    "softsign": lambda x: x / (1 + np.abs(x)),
}


def _ref(act):
    return lambda x, act_type: _REFERENCE[act](x)


CASES = [OpCase("Activation", [shape], _ref(act), {"act_type": act}, low=-3, high=3,
                grad=shape == (3, 4))
         for act in _REFERENCE for shape in ELEMWISE_SHAPES]

CASES += [OpCase("_relu_grad", [shape, shape], lambda g, y: g * (y > 0), low=-3, high=3,
                 grad=shape == (3, 4))
          for shape in ELEMWISE_SHAPES]

CASES += [OpCase(name, [shape, shape], ref, low=-1, high=1, grad=shape == (3, 4))
          for name, ref in (("_tanh_grad", lambda g, y: g * (1 - y * y)),
                            ("_sigmoid_grad", lambda g, y: g * y * (1 - y)))
          for shape in ELEMWISE_SHAPES]


@pytest.mark.parametrize("name, ref", [
    ("_relu_grad", lambda g, y: g * (y > 0)),
    ("_tanh_grad", lambda g, y: g * (1 - y * y)),
    ("_sigmoid_grad", lambda g, y: g * ((1 - y) * y)),
])
def test_activation_grads_split_large_arrays_into_blocks_exactly(name, ref):
    rng = np.random.default_rng(5)
    g = rng.standard_normal((3, 300, 257)).astype(np.float32)  # above the split size
    y = rng.uniform(-1, 1, (3, 300, 257)).astype(np.float32)
    want = ref(g, y)  # numpy's float32 passes, in the order the blocks run them
    np.testing.assert_array_equal(getattr(nd, name)(nd.array(g), nd.array(y)).asnumpy(), want)
    out = nd.array(g)
    getattr(nd, name)(out, nd.array(y), out=out)  # in place over the incoming gradient
    np.testing.assert_array_equal(out.asnumpy(), want)


def _assert_gradient_is_one_node(act):
    """An executor's backward of ``Activation(act)`` runs only ``_<act>_grad`` nodes."""
    exe = sym.Activation(sym.Variable("x"), act_type=act, name="act").simple_bind(
        None, x=(2, 2))
    seen = []
    exe.set_monitor_callback(lambda name, _: seen.append(name))
    exe.forward(is_train=True)
    exe.backward(nd.ones((2, 2)))
    exe.grad_dict["x"].wait_to_read()
    backward_nodes = [n for n in seen if "_backward_" in n]
    assert backward_nodes and all(f"_{act}_grad" in n for n in backward_nodes), seen


@pytest.mark.parametrize("act", ["tanh", "sigmoid"])
def test_tanh_and_sigmoid_gradients_are_one_node_and_differentiate_again(act):
    _assert_gradient_is_one_node(act)
    v = np.array([[-1.5, 0.5], [2.0, -0.25]])
    xa = nd.array(v, dtype="float64")
    xa.attach_grad()
    with autograd.record():
        dx = autograd.grad(nd.Activation(xa, act_type=act), xa, create_graph=True)
        z = dx.sum()
    z.backward()
    f = np.tanh(v) if act == "tanh" else 1 / (1 + np.exp(-v))
    first = 1 - f * f if act == "tanh" else f * (1 - f)
    second = -2 * f * first if act == "tanh" else first * (1 - 2 * f)
    assert_almost_equal(dx, first)
    assert_almost_equal(xa.grad, second)


def test_relu_gradient_is_one_relu_grad_node_and_differentiates_again():
    _assert_gradient_is_one_node("relu")
    v = np.array([[-1.5, 0.5], [2.0, -0.25]])
    w = np.array([[0.3, -0.7], [1.1, 0.9]])
    xa = nd.array(v, dtype="float64")
    xa.attach_grad()
    with autograd.record():
        y = nd.Activation(xa * xa, act_type="relu") * nd.array(w, dtype="float64")
        dx = autograd.grad(y, xa, create_graph=True)
        z = (dx * dx).sum()
    z.backward()
    # dx = 2 x w where x != 0 (x*x > 0); z = sum 4 x^2 w^2, dz/dx = 8 x w^2
    assert_almost_equal(dx, 2 * v * w)
    assert_almost_equal(xa.grad, 8 * v * w * w)


def test_softrelu_does_not_overflow():
    out = nd.Activation(nd.array([-1000.0, 0.0, 1000.0]), act_type="softrelu").asnumpy()
    np.testing.assert_allclose(out, [0.0, np.log(2.0), 1000.0], rtol=1e-6)


def test_unknown_act_type_lists_choices():
    with pytest.raises(ParamError, match="act_type='rellu' must be one of.*did you mean 'relu'"):
        nd.Activation(nd.ones(2), act_type="rellu")


# -- LeakyReLU -----------------------------------------------------------------------------

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_LAMBDA = 1.0507009873554804934193349852946
_erf = np.vectorize(math.erf, otypes=[np.float64])


def _leaky_ref(x, gamma=None, act_type="leaky", slope=0.25, lower_bound=0.125,
               upper_bound=0.334):
    out = np.empty_like(x)
    for i in np.ndindex(*x.shape):
        v = x[i]
        if act_type == "prelu":
            s = gamma[i[1]] if gamma.size > 1 else gamma[0]
            out[i] = v if v > 0 else s * v
        elif act_type in ("leaky", "rrelu"):
            s = slope if act_type == "leaky" else (lower_bound + upper_bound) / 2
            out[i] = v if v > 0 else s * v
        elif act_type == "elu":
            out[i] = v if v > 0 else slope * (math.exp(v) - 1)
        elif act_type == "selu":
            out[i] = _SELU_LAMBDA * (v if v > 0 else _SELU_ALPHA * (math.exp(v) - 1))
        else:  # gelu
            out[i] = 0.5 * v * (1 + math.erf(v / math.sqrt(2)))
    return out


_LEAKY_PARAMS = [{"act_type": "leaky"}, {"act_type": "leaky", "slope": 1.5},
                 {"act_type": "leaky", "slope": -0.5}, {"act_type": "elu", "slope": 0.7},
                 {"act_type": "selu"}, {"act_type": "gelu"},
                 {"act_type": "rrelu", "lower_bound": 0.1, "upper_bound": 0.3}]

CASES += [OpCase("LeakyReLU", [shape], _leaky_ref, params, low=-3, high=3,
                 grad=shape == (3, 4) and params["act_type"] != "rrelu")
          for params in _LEAKY_PARAMS for shape in ELEMWISE_SHAPES]
CASES += [
    # rrelu with lower_bound == upper_bound draws a fixed slope: numerically checkable
    OpCase("LeakyReLU", [(3, 4)], _leaky_ref,
           {"act_type": "rrelu", "lower_bound": 0.2, "upper_bound": 0.2}, name="fixed"),
    OpCase("LeakyReLU", [(2, 3, 2), (3,)], _leaky_ref, {"act_type": "prelu"}),
    OpCase("LeakyReLU", [(4, 3), (3,)], _leaky_ref, {"act_type": "prelu"}),
    OpCase("LeakyReLU", [(2, 2, 2, 3), (1,)], _leaky_ref, {"act_type": "prelu"}),
    OpCase("LeakyReLU", [(0, 3, 2), (3,)], _leaky_ref, {"act_type": "prelu"}),
]


def test_prelu_gamma_shape_is_inferred_and_checked():
    net = sym.LeakyReLU(sym.Variable("data"), act_type="prelu", name="act")
    assert net.list_arguments() == ["data", "act_gamma"]
    args, outs, _ = net.infer_shape(data=(8, 16, 5, 5))
    assert args == [(8, 16, 5, 5), (16,)] and outs == [(8, 16, 5, 5)]
    assert sym.LeakyReLU(sym.Variable("x")).list_arguments() == ["x"]
    with pytest.raises(ShapeError, match=r"LeakyReLU 'act'.*gamma.*\(4,\).*\(16,\)"):
        net.infer_shape(data=(8, 16, 5, 5), act_gamma=(4,))
    with pytest.raises(ShapeError, match=r"LeakyReLU.*prelu.*at least 2 dimensions"):
        nd.LeakyReLU(nd.ones(3), nd.ones(1), act_type="prelu")


def test_rrelu_draws_slopes_in_training_and_hides_its_mask():
    net = sym.LeakyReLU(sym.Variable("x"), act_type="rrelu")
    assert len(net.list_outputs()) == 1
    x = -np.linspace(1.0, 2.0, 2000).reshape(40, 50)
    xs = nd.array(x, dtype="float64")
    xs.attach_grad()
    with autograd.record():
        y = nd.LeakyReLU(xs, act_type="rrelu", lower_bound=0.1, upper_bound=0.3)
    y.backward()
    slopes = y.asnumpy() / x
    assert 0.1 <= slopes.min() and slopes.max() < 0.3
    assert abs(slopes.mean() - 0.2) < 0.01 and slopes.std() > 0.05
    # the gradient uses the slopes drawn in forward
    assert_almost_equal(xs.grad, slopes)
    # inference: the mean slope
    assert_almost_equal(nd.LeakyReLU(xs, act_type="rrelu", lower_bound=0.1,
                                     upper_bound=0.3), 0.2 * x)


def test_leaky_relu_second_order():
    v = np.array([-1.5, -0.5, 0.25, 1.0, 2.0])
    for act, second in [("elu", lambda x: np.where(x > 0, 0.0, 0.7 * np.exp(x))),
                        ("selu", lambda x: np.where(x > 0, 0.0,
                                                    _SELU_LAMBDA * _SELU_ALPHA * np.exp(x))),
                        ("gelu", lambda x: np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
                         * (2 - x * x))]:
        x = nd.array(v, dtype="float64")
        x.attach_grad()
        with autograd.record():
            y = nd.LeakyReLU(x, act_type=act, slope=0.7)
            g = autograd.grad(y, x, create_graph=True)
        g.backward()
        assert_almost_equal(x.grad, second(v), rtol=1e-6)


def test_prelu_mixed_second_order():
    rng = np.random.default_rng(3)
    v = rng.uniform(-1, 1, (2, 3, 4))
    w = rng.uniform(-1, 1, (2, 3, 4))
    u = rng.uniform(-1, 1, (2, 3, 4))
    x = nd.array(v, dtype="float64")
    gamma = nd.array([0.1, 0.2, 0.3], dtype="float64")
    x.attach_grad()
    gamma.attach_grad()
    with autograd.record():
        y = nd.LeakyReLU(x, gamma, act_type="prelu") * nd.array(w, dtype="float64")
        dx = autograd.grad(y, x, create_graph=True)
        z = dx * nd.array(u, dtype="float64")
    z.backward()
    # dx = w * (1 if x > 0 else gamma); d(sum(u * dx))/dgamma_c = sum over x <= 0 of u * w
    expected = np.array([(u * w * (v <= 0))[:, c].sum() for c in range(3)])
    assert_almost_equal(gamma.grad, expected, rtol=1e-6)
    assert_almost_equal(x.grad, np.zeros_like(v))


# -- softmax, log_softmax, SoftmaxActivation -----------------------------------------------

def _softmax_ref(x, axis=-1, temperature=None):
    x = x / (temperature or 1.0)
    if x.size == 0:
        return x
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax_ref(x, axis=-1, temperature=None):
    x = x / (temperature or 1.0)
    out = np.empty_like(x)
    moved, res = np.moveaxis(x, axis, -1), np.moveaxis(out, axis, -1)
    for i in np.ndindex(*moved.shape[:-1]) if moved.shape[-1] else ():
        top = max(moved[i])
        res[i] = moved[i] - top - math.log(sum(math.exp(v - top) for v in moved[i]))
    return out


def _softmax_activation_ref(x, mode="instance"):
    if mode == "instance":
        return _softmax_ref(x.reshape(x.shape[0], -1), 1).reshape(x.shape)
    return _softmax_ref(x, 1)


_AXIS_SHAPES = [((3, 4), {}), ((2, 3, 4), {"axis": 1}), ((2, 3, 4), {"axis": 0}),
                ((2, 3), {"temperature": 2.5}), ((5,), {"axis": 0, "temperature": 0.5}),
                ((1, 1), {}), ((0, 3), {}), ((2, 0), {"axis": 1})]

CASES += [OpCase(op, [shape], ref, params, low=-3, high=3)
          for op, ref in (("softmax", _softmax_ref), ("log_softmax", _log_softmax_ref))
          for shape, params in _AXIS_SHAPES]
def _softmin_ref(x, axis=-1, temperature=None):
    return _softmax_ref(-x, axis, temperature)


def _hard_sigmoid_ref(x, alpha=0.2, beta=0.5):
    return np.clip(alpha * x + beta, 0, 1)


def _hard_sigmoid_input(kinks):
    """Inputs away from the kinks, where alpha * x + beta is 0 or 1."""
    def make(rng, dtype):
        x = rng.uniform(-4, 4, (3, 4))
        for kink in kinks:
            x[np.abs(x - kink) < 0.2] = kink + 0.5
        return x.astype(dtype)
    return make


def _masked_softmax_ref(x, length, axis=-1, use_length=True):
    out = np.zeros_like(x)
    for row in range(x.shape[0]):
        n = int(length[row])
        if n:
            out[row, :n] = _softmax_ref(x[row, :n])
    return out


CASES += [
    OpCase("softmax", [(3, 4), Int((3,), 0, 5, "int32")], _masked_softmax_ref,
           {"use_length": True}, low=-3, high=3, name="use_length"),
    OpCase("softmax", [(3, 4)], lambda x, dtype: _softmax_ref(x), {"dtype": "float64"},
           low=-3, high=3, name="dtype"),
]
CASES += [OpCase("softmin", [shape], _softmin_ref, params, low=-3, high=3)
          for shape, params in _AXIS_SHAPES]
CASES += [
    OpCase("hard_sigmoid", [_hard_sigmoid_input((-2.5, 2.5))], _hard_sigmoid_ref),
    OpCase("hard_sigmoid", [_hard_sigmoid_input((-0.2, 1.8))], _hard_sigmoid_ref,
           {"alpha": 0.5, "beta": 0.1}, name="params"),
    OpCase("log_softmax", [(2, 3)], _log_softmax_ref, low=-800, high=800, grad=False,
           name="large"),
    OpCase("SoftmaxActivation", [(3, 4)], _softmax_activation_ref),
    OpCase("SoftmaxActivation", [(2, 3, 2, 2)], _softmax_activation_ref),
    OpCase("SoftmaxActivation", [(2, 3, 2, 2)], _softmax_activation_ref, {"mode": "channel"}),
    OpCase("SoftmaxActivation", [(2, 4, 3)], _softmax_activation_ref, {"mode": "channel"}),
    OpCase("SoftmaxActivation", [(0, 4, 3)], _softmax_activation_ref, {"mode": "channel"}),
]


def _mish_ref(x):
    with np.errstate(over="ignore"):  # exp(800) = inf still gives tanh(inf) = 1
        return x * np.tanh(np.log1p(np.exp(x)))


CASES += [OpCase("mish", [shape], _mish_ref, low=-4, high=4) for shape in ELEMWISE_SHAPES]
CASES += [OpCase("mish", [Const([-800.0, -30.0, 0.0, 30.0, 800.0])], _mish_ref, grad=False,
                 name="extremes")]


def test_softmax_does_not_overflow():
    out = nd.softmax(nd.array([[1000.0, 0.0, -1000.0]])).asnumpy()
    np.testing.assert_allclose(out, [[1.0, 0.0, 0.0]], atol=1e-7)
    assert np.isfinite(nd.log_softmax(nd.array([[1000.0, 0.0, -1000.0]])).asnumpy()).all()


def test_softmax_bad_axis_and_mode_errors_name_the_op():
    with pytest.raises(ShapeError, match=r"(?s)softmax.*axis=2.*out of range.*\(3, 4\)"):
        nd.softmax(nd.ones((3, 4)), axis=2)
    with pytest.raises(ShapeError, match=r"(?s)SoftmaxActivation.*channel.*at least 3.*\(3, 4\)"):
        nd.SoftmaxActivation(nd.ones((3, 4)), mode="channel")
    with pytest.raises(ParamError, match="mode='chanel'.*did you mean 'channel'"):
        nd.SoftmaxActivation(nd.ones((3, 4, 2)), mode="chanel")


def _numeric_grad(fn, v, eps=1e-6):
    out = np.zeros_like(v)
    for i in np.ndindex(*v.shape):
        vp, vm = v.copy(), v.copy()
        vp[i] += eps
        vm[i] -= eps
        out[i] = (fn(vp) - fn(vm)) / (2 * eps)
    return out


@pytest.mark.parametrize("op,ref", [("softmax", _softmax_ref), ("log_softmax", _log_softmax_ref)])
def test_softmax_second_order(op, ref):
    rng = np.random.default_rng(1)
    v, w, u = (rng.uniform(-1, 1, (2, 4)) for _ in range(3))
    x = nd.array(v, dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = getattr(nd, op)(x, temperature=1.5) * nd.array(w, dtype="float64")
        dx = autograd.grad(y, x, create_graph=True)
        z = dx * nd.array(u, dtype="float64")
    z.backward()

    def first(xv):  # d sum(w * f(x)) / dx, numerically
        return _numeric_grad(lambda t: (w * ref(t, temperature=1.5)).sum(), xv, 1e-5)

    assert_almost_equal(dx, first(v), rtol=1e-6, atol=1e-8)
    assert_almost_equal(x.grad, _numeric_grad(lambda t: (u * first(t)).sum(), v, 1e-4),
                        rtol=1e-4, atol=1e-6)


# -- the cases above, run (after every CASES += so that all are collected) -----------------

@pytest.mark.parametrize("case,dtype", forward_params(CASES))
def test_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)


@pytest.mark.parametrize("case", gradient_params(CASES))
def test_gradient(case, ctx):
    run_gradient(case, ctx)
