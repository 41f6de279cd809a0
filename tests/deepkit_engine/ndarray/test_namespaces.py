"""``nd.random``/``sym.random`` and ``nd.contrib``/``sym.contrib``: MXNet 1.x's namespaces."""
import numpy as np
import pytest

import deepkit_engine as dk
from deepkit_engine import nd, random, sym


def test_nd_random_takes_mxnets_arguments():
    random.seed(3)
    a = nd.random.uniform(-1, 1, shape=(2, 3))
    assert a.shape == (2, 3) and a.dtype == np.float32 and np.abs(a.asnumpy()).max() <= 1
    assert nd.random.uniform().shape == (1,)  # MXNet 1.x: one sample by default
    assert nd.random.normal(2, 0.5, shape=5, dtype="float64").dtype == np.float64
    assert nd.random.randint(0, 10, shape=(4,)).dtype == np.int32
    assert nd.random.randn(2, 3, loc=1).shape == (2, 3)
    out = nd.zeros((3, 2))
    assert nd.random.gamma(2.0, 1.0, out=out) is out and out.asnumpy().min() > 0
    x = nd.random.exponential(scale=4.0, shape=(100_000,)).asnumpy()
    assert abs(x.mean() - 4.0) < 0.1  # MXNet's exponential takes the mean, not the rate
    assert nd.random.poisson(3.0, shape=(2,)).dtype == np.float32
    assert nd.random.negative_binomial(2, 0.5, shape=(2,)).shape == (2,)
    assert nd.random.generalized_negative_binomial(2.0, 0.3, shape=(2,)).shape == (2,)
    counts = nd.random.multinomial(nd.array([[0.0, 1.0], [1.0, 0.0]]), shape=3).asnumpy()
    np.testing.assert_array_equal(counts, [[1, 1, 1], [0, 0, 0]])
    rows = nd.random.shuffle(nd.array(np.arange(8).reshape(4, 2))).asnumpy()
    np.testing.assert_array_equal(np.sort(rows[:, 0]), [0, 2, 4, 6])


def test_nd_random_per_element_parameters():
    low, high = nd.array([0.0, 10.0]), nd.array([1.0, 10.0])
    x = nd.random.uniform(low, high, shape=(1000,)).asnumpy()
    assert x.shape == (2, 1000) and x[0].max() < 1 and np.all(x[1] == 10)
    y = nd.random.normal(nd.array([5.0]), nd.array([0.0]), shape=2).asnumpy()
    np.testing.assert_array_equal(y, [[5.0, 5.0]])
    with pytest.raises(ValueError, match=r"shapes \(2,\) and \(1,\)"):
        nd.random.normal(nd.array([1.0, 2.0]), nd.array([1.0]))
    with pytest.raises(TypeError, match="both parameters as NDArrays or both as numbers, got NDArray and float"):
        nd.random.normal(nd.array([1.0]), 2.0)


def test_sym_random_draws_on_each_forward():
    net = sym.random.uniform(0, 1, shape=(2, 3), name="u") + sym.var("x")
    assert net.list_arguments() == ["x"]
    exe = net.bind(dk.cpu(), {"x": nd.zeros((2, 3))}, grad_req="null")
    first = exe.forward()[0].asnumpy().copy()
    second = exe.forward()[0].asnumpy()
    assert first.shape == (2, 3) and not np.array_equal(first, second)
    assert sym.random.exponential(2.0, shape=4).infer_shape()[1] == [(4,)]
    assert sym.random.randint(0, 5, shape=(3,)).infer_type()[1] == [np.int32]
    for name in ("normal", "gamma", "poisson", "negative_binomial",
                 "generalized_negative_binomial"):
        assert getattr(sym.random, name)(shape=(2,)).infer_shape()[1] == [(2,)]
    assert sym.random.multinomial(sym.var("p"), shape=2).infer_shape(p=(3, 4))[1] == [(3, 2)]
    assert sym.random.shuffle(sym.var("d")).infer_shape(d=(3, 4))[1] == [(3, 4)]


def test_contrib_finds_contrib_ops_and_names_what_is_missing():
    out = nd.contrib.BilinearResize2D(nd.ones((1, 1, 2, 2)), height=4, width=4)
    assert out.shape == (1, 1, 4, 4)
    assert sym.contrib.BilinearResize2D(sym.var("x"), height=4, width=4).infer_shape(
        x=(1, 1, 2, 2))[1] == [(1, 1, 4, 4)]
    assert "BilinearResize2D" in dir(nd.contrib)
    with pytest.raises(AttributeError, match="nd.contrib has no operator 'nope'"):
        nd.contrib.nope
    with pytest.raises(AttributeError, match="sym.contrib has no operator 'nope'"):
        sym.contrib.nope
