"""Constraints: values against numpy (dense and NCHW conv kernels), axes, lookup, use in fit.

A constraint's ``axis`` is the output-unit axis that is kept: norms are taken
over every other axis, so ``axis=0`` on a dense ``(units, in)`` weight or a
conv ``(out, in, kh, kw)`` kernel constrains each unit's or filter's incoming
weights (Keras's ``axis=0`` on its ``(in, units)`` kernel, and ``[0, 1, 2]``
on its ``(kh, kw, in, out)`` kernel).
"""
import json

import numpy as np
import pytest

import deepkit
from deepkit import constraints
from deepkit import layers as L
from deepkit_engine import nd

EPS = 1e-7


def np_norms(w, axis):
    if axis is None:
        return np.sqrt(np.square(w).sum(keepdims=True))
    axes = tuple(a for a in range(w.ndim) if a != axis)
    return np.sqrt(np.square(w).sum(axis=axes, keepdims=True))


def np_max_norm(w, max_value, axis):
    norms = np_norms(w, axis)
    return w * (np.clip(norms, 0, max_value) / (norms + EPS))


def np_unit_norm(w, axis):
    return w / (np_norms(w, axis) + EPS)


def np_min_max_norm(w, min_value, max_value, rate, axis):
    norms = np_norms(w, axis)
    desired = rate * np.clip(norms, min_value, max_value) + (1 - rate) * norms
    return w * (desired / (norms + EPS))


def _weights(shape, seed=0, scale=1.0):
    """Rows of very different norms, so that some are capped and some are not."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=shape) * scale
    w *= np.linspace(0.05, 3.0, shape[0]).reshape((-1,) + (1,) * (len(shape) - 1))
    return w.astype(np.float32)


def _apply(constraint, w):
    return constraint(nd.array(w)).asnumpy()


DENSE = (6, 5)
CONV = (8, 3, 3, 3)
SHAPES = [pytest.param(DENSE, id="dense"), pytest.param(CONV, id="conv")]


# -- values ---------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("max_value", [0.5, 2.0])
def test_max_norm_matches_numpy_and_caps_each_unit(shape, max_value):
    w = _weights(shape)
    out = _apply(constraints.MaxNorm(max_value), w)
    np.testing.assert_allclose(out, np_max_norm(w, max_value, 0), rtol=1e-5, atol=1e-7)
    before, after = np_norms(w, 0).ravel(), np_norms(out, 0).ravel()
    assert (before > max_value).any() and (before < max_value).any()
    np.testing.assert_allclose(after, np.minimum(before, max_value), rtol=1e-5)


def test_max_norm_defaults_are_kerass():
    c = constraints.MaxNorm()
    assert (c.max_value, c.axis) == (2.0, 0)
    w = _weights(DENSE)
    np.testing.assert_allclose(_apply(c, w), np_max_norm(w, 2.0, 0), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("axis", [0, 1, 2, 3, None])
def test_max_norm_axis_on_a_conv_kernel(axis):
    w = _weights(CONV, seed=1)
    out = _apply(constraints.MaxNorm(1.0, axis=axis), w)
    np.testing.assert_allclose(out, np_max_norm(w, 1.0, axis), rtol=1e-5, atol=1e-7)
    assert (np_norms(out, axis) <= 1.0 + 1e-5).all()


def test_max_norm_axis_zero_is_per_filter_and_axis_one_per_input_channel():
    w = np.zeros(CONV, np.float32)
    w[0] = 1.0                     # filter 0 over (in, kh, kw): norm sqrt(27)
    w[1, 0] = 1.0                  # filter 1, input channel 0 only: norm 3
    per_filter = _apply(constraints.MaxNorm(1.0, axis=0), w)
    np.testing.assert_allclose(np_norms(per_filter, 0).ravel()[:3], [1.0, 1.0, 0.0], atol=1e-6)
    per_channel = _apply(constraints.MaxNorm(1.0, axis=1), w)
    # input channel 0 gathers filter 0's and filter 1's slices: norm sqrt(9 + 9);
    # channels 1 and 2 hold filter 0's only: norm 3
    np.testing.assert_allclose(per_channel[:2, 0], np.full((2, 3, 3), 1 / np.sqrt(18)),
                               rtol=1e-5)
    np.testing.assert_allclose(per_channel[0, 1:], np.full((2, 3, 3), 1 / 3), rtol=1e-5)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("axis", [0, 1])
def test_unit_norm_matches_numpy_and_gives_unit_norms(shape, axis):
    w = _weights(shape, seed=2)
    out = _apply(constraints.UnitNorm(axis=axis), w)
    np.testing.assert_allclose(out, np_unit_norm(w, axis), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np_norms(out, axis), 1.0, rtol=1e-5)


def test_unit_norm_default_axis_is_the_output_unit():
    w = _weights(CONV, seed=3)
    assert constraints.UnitNorm().axis == 0
    np.testing.assert_allclose(np_norms(_apply(constraints.UnitNorm(), w), 0), 1.0, rtol=1e-5)


@pytest.mark.parametrize("shape", SHAPES)
def test_non_neg_zeroes_negative_entries_only(shape):
    w = _weights(shape, seed=4)
    out = _apply(constraints.NonNeg(), w)
    assert (w < 0).any()
    np.testing.assert_array_equal(out, np.where(w < 0, 0.0, w))


def test_a_zero_unit_stays_zero():
    w = np.zeros(DENSE, np.float32)
    w[1] = 3.0
    for c in (constraints.MaxNorm(1.0), constraints.UnitNorm()):
        out = _apply(c, w)
        assert np.isfinite(out).all()
        np.testing.assert_array_equal(out[0], 0.0)


@pytest.mark.parametrize("constraint", [constraints.MaxNorm(0.1), constraints.UnitNorm(),
                                        constraints.NonNeg()],
                         ids=["max_norm", "unit_norm", "non_neg"])
def test_constraint_returns_a_new_array_and_leaves_its_input(constraint):
    w = _weights(DENSE, seed=5)
    arr = nd.array(w)
    out = constraint(arr)
    assert out.shape == arr.shape
    np.testing.assert_array_equal(arr.asnumpy(), w)
    assert not np.array_equal(out.asnumpy(), w)


@pytest.mark.parametrize("make", [lambda: constraints.MaxNorm(1.0, axis=(0, 1)),
                                  lambda: constraints.UnitNorm(axis=(0, 1))],
                         ids=["max_norm", "unit_norm"])
def test_a_tuple_axis_keeps_those_axes_or_is_refused(make):
    w = _weights((2, 3, 4), seed=6)
    try:
        constraint = make()
        out = _apply(constraint, w)
    except (ValueError, TypeError) as err:
        assert "axis" in str(err)
        return
    norms = np.sqrt(np.square(out).sum(axis=2))
    expected = 1.0 if isinstance(constraint, constraints.UnitNorm) else \
        np.minimum(np.sqrt(np.square(w).sum(axis=2)), 1.0)
    message = f"{type(constraint).__name__}(axis=(0, 1)) neither kept axes 0, 1 nor refused"
    np.testing.assert_allclose(norms, np.broadcast_to(expected, norms.shape), rtol=1e-5,
                               err_msg=message)


def _min_max_norm():
    cls = getattr(constraints, "MinMaxNorm", None)
    assert cls is not None, ("deepkit.constraints has no MinMaxNorm (Keras 3: "
                             "MinMaxNorm(min_value=0.0, max_value=1.0, rate=1.0, axis=0))")
    return cls


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("rate", [1.0, 0.5, 0.0])
def test_min_max_norm_pulls_norms_into_the_band_at_rate(shape, rate):
    cls = _min_max_norm()
    w = _weights(shape, seed=7)
    out = _apply(cls(min_value=0.8, max_value=1.5, rate=rate, axis=0), w)
    np.testing.assert_allclose(out, np_min_max_norm(w, 0.8, 1.5, rate, 0), rtol=1e-5,
                               atol=1e-7)
    before, after = np_norms(w, 0).ravel(), np_norms(out, 0).ravel()
    assert (before < 0.8).any() and (before > 1.5).any()
    target = rate * np.clip(before, 0.8, 1.5) + (1 - rate) * before
    np.testing.assert_allclose(after, target, rtol=1e-5)


def test_min_max_norm_defaults_and_config():
    cls = _min_max_norm()
    c = cls()
    assert c.get_config() == {"min_value": 0.0, "max_value": 1.0, "rate": 1.0, "axis": 0}
    back = constraints.get({"class_name": "MinMaxNorm", "config": c.get_config()})
    assert type(back) is cls and back.get_config() == c.get_config()
    assert type(constraints.get("min_max_norm")) is cls


# -- lookup and config ----------------------------------------------------------------------

@pytest.mark.parametrize("name,cls", [
    ("max_norm", constraints.MaxNorm), ("MaxNorm", constraints.MaxNorm),
    ("non_neg", constraints.NonNeg), ("NonNeg", constraints.NonNeg),
    ("unit_norm", constraints.UnitNorm), ("UnitNorm", constraints.UnitNorm),
])
def test_get_by_name(name, cls):
    assert type(constraints.get(name)) is cls


def test_get_passes_none_objects_and_callables_through():
    c = constraints.MaxNorm(3.0)
    assert constraints.get(None) is None
    assert constraints.get(c) is c

    def clip(w):
        return nd.clip(w, -1, 1)
    assert constraints.get(clip) is clip


@pytest.mark.parametrize("constraint,config", [
    (constraints.MaxNorm(1.5, axis=1), {"max_value": 1.5, "axis": 1}),
    (constraints.MaxNorm(axis=None), {"max_value": 2.0, "axis": None}),
    (constraints.UnitNorm(axis=2), {"axis": 2}),
    (constraints.NonNeg(), {}),
], ids=["max_norm", "max_norm_global", "unit_norm", "non_neg"])
def test_config_round_trip_through_json(constraint, config):
    assert constraint.get_config() == config
    data = json.loads(json.dumps({"class_name": type(constraint).__name__,
                                  "config": constraint.get_config()}))
    back = constraints.get(data)
    assert type(back) is type(constraint) and back.get_config() == config
    w = _weights(CONV, seed=8)
    np.testing.assert_array_equal(_apply(back, w), _apply(constraint, w))


def test_layer_config_keeps_its_constraints():
    conv = L.Conv2D(4, 3, kernel_constraint=constraints.MaxNorm(0.7, axis=0),
                    bias_constraint="non_neg")
    clone = L.Conv2D.from_config(json.loads(json.dumps(conv.get_config())))
    assert type(clone.kernel_constraint) is constraints.MaxNorm
    assert clone.kernel_constraint.get_config() == {"max_value": 0.7, "axis": 0}
    assert type(clone.bias_constraint) is constraints.NonNeg


@pytest.mark.parametrize("make,message", [
    (lambda: constraints.get("max_nrom"), r"unknown constraint 'max_nrom'.*'max_norm'"),
    (lambda: constraints.get(7), r"unknown constraint 7"),
    (lambda: constraints.get({"class_name": "Nope", "config": {}}),
     r"unknown constraint.*Nope"),
    (lambda: constraints.get({"config": {}}), r"class_name"),
    (lambda: constraints.MaxNorm(max_value="big"), r"\bmax_value\b"),
], ids=["misspelt_name", "not_a_constraint", "unknown_class", "no_class_name",
        "string_max_value"])
def test_bad_arguments_are_named(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


# -- applied by fit ---------------------------------------------------------------------------

def _data(n=16, d=5, units=4, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, d)).astype(np.float32),
            rng.normal(size=(n, units)).astype(np.float32) * 10)


def _dense_pair(lr, **cons):
    def make(**kw):
        model = deepkit.Sequential([L.Dense(4, input_shape=(5,), **kw)])
        model.compile(deepkit.optimizers.SGD(lr), "mse")
        return model
    plain, constrained = make(), make(**cons)
    constrained.set_weights(plain.get_weights())
    return plain, constrained


@pytest.mark.parametrize("cons,check", [
    ({"kernel_constraint": constraints.MaxNorm(0.3)},
     lambda w, b, pw, pb: np.testing.assert_allclose(w, np_max_norm(pw, 0.3, 0), rtol=1e-5,
                                                    atol=1e-7)),
    ({"kernel_constraint": "unit_norm"},
     lambda w, b, pw, pb: np.testing.assert_allclose(w, np_unit_norm(pw, 0), rtol=1e-5,
                                                    atol=1e-7)),
    ({"kernel_constraint": constraints.NonNeg(), "bias_constraint": "non_neg"},
     lambda w, b, pw, pb: (np.testing.assert_array_equal(w, np.maximum(pw, 0)),
                           np.testing.assert_array_equal(b, np.maximum(pb, 0)))),
], ids=["max_norm", "unit_norm", "non_neg"])
def test_fit_applies_the_constraint_after_each_step(cons, check):
    """One step of fit: the constrained weights are the constraint of the plain step's."""
    x, y = _data()
    plain, constrained = _dense_pair(0.5, **cons)
    plain.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    constrained.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    pw, pb = plain.get_weights()
    w, b = constrained.get_weights()
    check(w, b, pw, pb)
    if "kernel_constraint" in cons and not isinstance(cons["kernel_constraint"],
                                                      constraints.NonNeg):
        assert not np.allclose(w, pw)  # the step left the constraint's set
    else:
        assert (pw < 0).any()


def test_fit_keeps_a_conv_kernel_max_normed_per_filter():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 2, 6, 6)).astype(np.float32)
    y = rng.normal(size=(8, 3 * 4 * 4)).astype(np.float32) * 10
    model = deepkit.Sequential([
        L.Conv2D(3, 3, input_shape=(2, 6, 6), kernel_constraint=constraints.MaxNorm(0.5)),
        L.Flatten()])
    model.compile(deepkit.optimizers.SGD(1.0), "mse")
    kernel = model.get_weights()[0]
    assert kernel.shape == (3, 2, 3, 3)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    after = model.get_weights()[0]
    assert not np.allclose(after, kernel)
    norms = np_norms(after, 0).ravel()
    assert (norms <= 0.5 + 1e-5).all()
    np.testing.assert_allclose(norms, 0.5, rtol=1e-4)  # lr 1 on loss x10: every filter capped
