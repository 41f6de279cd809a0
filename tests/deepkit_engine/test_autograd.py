"""Imperative autograd: recording, gradients, higher order, agreement with executors."""
import numpy as np
import pytest

import deepkit_engine as dk
from deepkit_engine import autograd
from deepkit_engine import symbol as sym
from deepkit_engine.base import DeepkitError
from deepkit_engine.testing import assert_almost_equal

nd = dk.nd


def test_backward_fills_grad():
    x = nd.array([1.0, 2.0, 3.0], dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = x * x * x
    y.backward()
    assert_almost_equal(x.grad, 3 * np.array([1.0, 2.0, 3.0]) ** 2)


def test_grad_req_add_and_head_gradient():
    x = nd.array([1.0, 2.0])
    x.attach_grad(grad_req="add")
    for _ in range(2):
        with autograd.record():
            y = x * 3
        y.backward(nd.array([1.0, 10.0]))
    assert_almost_equal(x.grad, [6.0, 60.0])


def test_second_order_with_create_graph():
    v = np.array([0.5, 1.0, 2.0])
    x = nd.array(v, dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = x * x * x
        g = autograd.grad(y, x, create_graph=True)
    g.backward()
    assert_almost_equal(g, 3 * v ** 2)
    assert_almost_equal(x.grad, 6 * v)


def test_pause_and_modes():
    x = nd.ones(2)
    x.attach_grad()
    assert not autograd.is_recording() and not autograd.is_training()
    with autograd.record():
        assert autograd.is_recording() and autograd.is_training()
        with autograd.pause():
            assert not autograd.is_recording() and not autograd.is_training()
            z = x * 5
        y = x * 2
    assert z._tape is None
    y.backward()
    assert_almost_equal(x.grad, [2.0, 2.0])
    with autograd.train_mode():
        assert autograd.is_training()
    with autograd.record(train_mode=False):
        assert not autograd.is_training()
    with autograd.predict_mode():
        assert not autograd.is_training()


def test_errors_explain_themselves():
    x = nd.ones(2)
    with pytest.raises(DeepkitError, match="not computed inside record"):
        (x * 2).backward()
    x.attach_grad()
    with autograd.record():
        with pytest.raises(DeepkitError, match="in-place update"):
            x += 1
    with pytest.raises(DeepkitError, match="grad_req"):
        x.attach_grad("sometimes")


def test_autograd_matches_executor_on_the_same_graph():
    rng = np.random.default_rng(3)
    xv, wv, bv = rng.normal(size=(4, 5)), rng.normal(size=(3, 5)), rng.normal(size=3)
    data, weight, bias = sym.Variable("x"), sym.Variable("w"), sym.Variable("b")
    net = sym.sum(sym.tanh(sym.FullyConnected(data, weight, bias, num_hidden=3)) * 2)
    exe = net.simple_bind(x=(4, 5), type_dict={"x": "float64", "w": "float64", "b": "float64"})
    for k, v in {"x": xv, "w": wv, "b": bv}.items():
        exe.arg_dict[k][:] = v
    exe.forward(is_train=True)
    exe.backward()
    x, w, b = (nd.array(v, dtype="float64") for v in (xv, wv, bv))
    for a in (x, w, b):
        a.attach_grad()
    with autograd.record():
        y = nd.sum(nd.tanh(nd.FullyConnected(x, w, b, num_hidden=3)) * 2)
    y.backward()
    for name, a in (("x", x), ("w", w), ("b", b)):
        assert_almost_equal(a.grad, exe.grad_dict[name], rtol=1e-10, atol=1e-12)


def test_grad_returns_without_touching_dot_grad():
    x = nd.array([1.0, 2.0])
    x.attach_grad()
    with autograd.record():
        y = nd.exp(x)
    g = autograd.grad(y, [x])
    assert_almost_equal(g[0], np.exp([1.0, 2.0]))
    assert_almost_equal(x.grad, [0.0, 0.0])
