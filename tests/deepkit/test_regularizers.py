"""Regularizers: penalties and gradients against numpy, lookup, config, errors, effect in fit."""
import json

import numpy as np
import pytest

import deepkit
from deepkit import layers as L
from deepkit import regularizers
from deepkit_engine import symbol as sym
from deepkit_engine.testing import check_numeric_gradient

# Weights kept away from 0, where |w| has no derivative.
W2D = np.array([[0.5, -1.5, 2.0], [-0.25, 0.75, -3.0]])
W4D = np.sign(np.arange(-12, 12).reshape(2, 3, 2, 2) + 0.5) \
    * np.linspace(0.1, 2.4, 24).reshape(2, 3, 2, 2)


def np_penalty(l1, l2, w):
    return l1 * np.abs(w).sum() + l2 * np.square(w).sum()


def np_gradient(l1, l2, w):
    return l1 * np.sign(w) + 2 * l2 * w


CASES = [
    ("L1", regularizers.L1(0.3), 0.3, 0.0),
    ("L1_default", regularizers.L1(), 0.01, 0.0),
    ("L2", regularizers.L2(0.2), 0.0, 0.2),
    ("L2_default", regularizers.L2(), 0.0, 0.01),
    ("L1L2", regularizers.L1L2(l1=0.1, l2=0.05), 0.1, 0.05),
    ("L1L2_default", regularizers.L1L2(), 0.0, 0.0),
    ("l1", regularizers.l1(0.4), 0.4, 0.0),
    ("l2", regularizers.l2(), 0.0, 0.01),
    ("l1_l2", regularizers.l1_l2(), 0.01, 0.01),
]
IDS = [c[0] for c in CASES]


def _evaluate(reg, w):
    """The penalty symbol bound on ``w``: (value, gradient of the value)."""
    out = reg(sym.Variable("w"))
    exe = out.simple_bind(grad_req={"w": "write"}, type_dict={"w": np.float64}, w=w.shape)
    exe.arg_dict["w"][:] = w
    value = exe.forward(is_train=True)[0].asnumpy()
    exe.backward([np.ones(value.shape)])
    return value, exe.grad_dict["w"].asnumpy()


@pytest.mark.parametrize("w", [W2D, W4D], ids=["dense", "conv"])
@pytest.mark.parametrize("case_id,reg,l1,l2", CASES, ids=IDS)
def test_penalty_matches_numpy(case_id, reg, l1, l2, w):
    value, _ = _evaluate(reg, w)
    assert value.size == 1
    np.testing.assert_allclose(value.reshape(()), np_penalty(l1, l2, w), rtol=1e-12, atol=0)
    np.testing.assert_allclose(reg.numpy(w), np_penalty(l1, l2, w), rtol=1e-12, atol=0)


@pytest.mark.parametrize("w", [W2D, W4D], ids=["dense", "conv"])
@pytest.mark.parametrize("case_id,reg,l1,l2", CASES, ids=IDS)
def test_gradient_is_l1_sign_plus_twice_l2_w(case_id, reg, l1, l2, w):
    _, grad = _evaluate(reg, w)
    np.testing.assert_allclose(grad, np_gradient(l1, l2, w), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("case_id,reg,l1,l2", [c for c in CASES if c[2] or c[3]],
                         ids=[c[0] for c in CASES if c[2] or c[3]])
def test_gradient_matches_finite_differences(case_id, reg, l1, l2):
    check_numeric_gradient(reg(sym.Variable("w")), {"w": W4D}, numeric_eps=1e-6,
                           rtol=1e-6, atol=1e-9)


def test_penalty_on_a_float32_weight():
    w = W2D.astype(np.float32)
    out = regularizers.L1L2(0.1, 0.2)(sym.Variable("w"))
    exe = out.simple_bind(w=w.shape)
    exe.arg_dict["w"][:] = w
    got = exe.forward(is_train=False)[0].asnumpy()
    assert got.dtype == np.float32
    np.testing.assert_allclose(got.reshape(()), np_penalty(0.1, 0.2, W2D), rtol=1e-6)


# -- lookup and config ----------------------------------------------------------------------

@pytest.mark.parametrize("name,cls,config", [
    ("l1", regularizers.L1, {"l1": 0.01}), ("L1", regularizers.L1, {"l1": 0.01}),
    ("l2", regularizers.L2, {"l2": 0.01}), ("L2", regularizers.L2, {"l2": 0.01}),
    ("L1L2", regularizers.L1L2, {"l1": 0.0, "l2": 0.0}),
    ("l1_l2", regularizers.L1L2, {"l1": 0.0, "l2": 0.0}),
])
def test_get_by_name(name, cls, config):
    reg = regularizers.get(name)
    assert type(reg) is cls and reg.get_config() == config


def test_get_passes_none_objects_and_callables_through():
    reg = regularizers.L2(0.5)
    assert regularizers.get(None) is None
    assert regularizers.get(reg) is reg

    def custom(w):
        return sym.sum(w) * 0.5
    assert regularizers.get(custom) is custom


@pytest.mark.parametrize("reg", [regularizers.L1(0.25), regularizers.L2(0.125),
                                 regularizers.L1L2(0.5, 0.75)],
                         ids=["L1", "L2", "L1L2"])
def test_config_round_trip_through_json(reg):
    data = json.loads(json.dumps({"class_name": type(reg).__name__,
                                  "config": reg.get_config()}))
    back = regularizers.get(data)
    assert type(back) is type(reg)
    assert back.get_config() == reg.get_config()
    assert back.numpy(W2D) == reg.numpy(W2D)


def test_config_holds_only_the_own_arguments():
    assert regularizers.L1(0.2).get_config() == {"l1": 0.2}
    assert regularizers.L2(0.3).get_config() == {"l2": 0.3}
    assert regularizers.L1L2(1, 2).get_config() == {"l1": 1.0, "l2": 2.0}


def test_layer_config_keeps_its_regularizers():
    dense = L.Dense(3, kernel_regularizer=regularizers.L1L2(0.1, 0.2),
                    bias_regularizer="l2")
    clone = L.Dense.from_config(json.loads(json.dumps(dense.get_config())))
    assert type(clone.kernel_regularizer) is regularizers.L1L2
    assert clone.kernel_regularizer.get_config() == {"l1": 0.1, "l2": 0.2}
    assert type(clone.bias_regularizer) is regularizers.L2


# -- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("make,message", [
    (lambda: regularizers.get("l3"), r"unknown regularizer 'l3'.*'l1', 'l2', 'l1_l2'"),
    (lambda: regularizers.get(3.5), r"unknown regularizer 3\.5"),
    (lambda: regularizers.get({"class_name": "L3", "config": {}}), r"unknown regularizer.*L3"),
    (lambda: regularizers.get({"config": {"l1": 0.1}}), r"class_name"),
    (lambda: regularizers.L1(l1=-0.1), r"\bl1\b.*-0\.1"),
    (lambda: regularizers.L2(l2=-1.0), r"\bl2\b.*-1\.0"),
    (lambda: regularizers.L1L2(l1=0.1, l2=float("nan")), r"\bl2\b.*nan"),
    (lambda: regularizers.L2(l2="strong"), r"\bl2\b.*strong"),
], ids=["unknown_name", "not_a_regularizer", "unknown_class", "no_class_name",
        "negative_l1", "negative_l2", "nan_l2", "string_l2"])
def test_bad_arguments_are_named(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_layer_reports_an_unknown_regularizer_name():
    with pytest.raises(ValueError, match="unknown regularizer 'l22'"):
        L.Dense(3, kernel_regularizer="l22")


# -- effect on training ---------------------------------------------------------------------

def _data(n=12, d=4, units=3, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, d)).astype(np.float32),
            rng.normal(size=(n, units)).astype(np.float32))


def _model(lr=0.0, units=3, d=4, **regs):
    model = deepkit.Sequential([L.Dense(units, input_shape=(d,), bias_initializer="ones",
                                        **regs)])
    model.compile(deepkit.optimizers.SGD(lr), "mse")
    return model


def _pair(lr=0.0, **regs):
    plain, regular = _model(lr), _model(lr, **regs)
    regular.set_weights(plain.get_weights())
    return plain, regular


@pytest.mark.parametrize("regs,expected", [
    ({"kernel_regularizer": regularizers.L1(0.1)}, lambda w, b: 0.1 * np.abs(w).sum()),
    ({"kernel_regularizer": regularizers.L2(0.3)}, lambda w, b: 0.3 * np.square(w).sum()),
    ({"kernel_regularizer": regularizers.L1L2(0.1, 0.2)},
     lambda w, b: 0.1 * np.abs(w).sum() + 0.2 * np.square(w).sum()),
    ({"kernel_regularizer": "l2", "bias_regularizer": regularizers.L1(0.5)},
     lambda w, b: 0.01 * np.square(w).sum() + 0.5 * np.abs(b).sum()),
], ids=["l1", "l2", "l1l2", "kernel_and_bias"])
def test_regularizer_adds_its_penalty_to_the_training_loss(regs, expected):
    x, y = _data()
    plain, regular = _pair(**regs)
    w, b = regular.get_weights()
    penalty = expected(w.astype(np.float64), b.astype(np.float64))
    assert penalty > 0.01
    base = plain.fit(x, y, batch_size=4, epochs=1, verbose=0).history["loss"][0]
    loss = regular.fit(x, y, batch_size=4, epochs=1, verbose=0).history["loss"][0]
    np.testing.assert_allclose(loss - base, penalty, rtol=1e-5)
    # lr 0: nothing moved, so evaluate sees the same penalty
    np.testing.assert_array_equal(regular.get_weights()[0], w)
    np.testing.assert_allclose(regular.evaluate(x, y, batch_size=6) - plain.evaluate(x, y),
                               penalty, rtol=1e-5)


def test_regularizer_gradient_reaches_the_update():
    x, y = _data()
    lr, l1, l2 = 0.1, 0.05, 0.2
    plain, regular = _pair(lr, kernel_regularizer=regularizers.L1L2(l1, l2))
    w0 = regular.get_weights()[0].astype(np.float64)
    plain.train_on_batch(x, y)
    regular.train_on_batch(x, y)
    delta = regular.get_weights()[0] - plain.get_weights()[0]
    np.testing.assert_allclose(delta, -lr * np_gradient(l1, l2, w0), rtol=1e-4, atol=1e-6)
    # the bias carries no regularizer: its update is unchanged
    np.testing.assert_allclose(regular.get_weights()[1], plain.get_weights()[1], atol=1e-7)


def test_a_callable_regularizer_is_added_too():
    x, y = _data()
    plain, regular = _pair(kernel_regularizer=lambda w: sym.sum(sym.square(w)) * 0.25)
    w = regular.get_weights()[0].astype(np.float64)
    diff = regular.evaluate(x, y) - plain.evaluate(x, y)
    np.testing.assert_allclose(diff, 0.25 * np.square(w).sum(), rtol=1e-5)
