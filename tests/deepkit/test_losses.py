"""Losses: per-sample values and gradients against numpy, stability, lookup, label checks."""
import json
import math
import warnings

import numpy as np
import pytest

import deepkit
from deepkit import layers as L
from deepkit import losses
from deepkit_engine import nd
from deepkit_engine import symbol as sym
from deepkit_engine.testing import check_numeric_gradient

EPS = 1e-7


# -- numpy references (float64, Keras 3 formulas) ------------------------------------------

def _rest_mean(x):
    """Mean over every axis after the batch axis."""
    return x.reshape(len(x), -1).mean(axis=1)


def _log_softmax(z, axis=-1):
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def _softmax(z, axis=-1):
    return np.exp(_log_softmax(z, axis))


def _sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


def np_cce(y, p, from_logits=False, label_smoothing=0.0, axis=-1):
    if label_smoothing:
        y = y * (1 - label_smoothing) + label_smoothing / y.shape[axis]
    if from_logits:
        logp = _log_softmax(p, axis)
    else:
        p = p / p.sum(axis=axis, keepdims=True)
        logp = np.log(np.clip(p, EPS, 1 - EPS))
    return _rest_mean(-(y * logp).sum(axis=axis))


def np_scce(y, p, from_logits=False, ignore_class=None, axis=-1):
    logp = _log_softmax(p) if from_logits else \
        np.log(np.clip(p / p.sum(-1, keepdims=True), EPS, 1 - EPS))
    nll = -np.take_along_axis(logp, y.astype(int)[..., None], axis=-1)[..., 0]
    if ignore_class is None:
        return _rest_mean(nll)
    keep = (y != ignore_class).reshape(len(y), -1)
    return (nll.reshape(len(y), -1) * keep).sum(1) / np.maximum(keep.sum(1), 1)


def np_bce(y, p, from_logits=False, label_smoothing=0.0):
    if label_smoothing:
        y = y * (1 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:  # exact (TensorFlow's sigmoid_cross_entropy_with_logits)
        return _rest_mean(np.maximum(p, 0) - p * y + np.log1p(np.exp(-np.abs(p))))
    p = np.clip(p, EPS, 1 - EPS)
    return _rest_mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))


def np_huber(y, p, delta=1.0):
    e = p - y
    a = np.abs(e)
    return _rest_mean(np.where(a <= delta, 0.5 * e ** 2, delta * a - 0.5 * delta ** 2))


def np_hinge_labels(y):
    return 2 * y - 1 if np.all((y == 0) | (y == 1)) else y


def np_cosine(y, p, axis=-1):
    def norm(x):
        return x / np.sqrt(np.maximum((x ** 2).sum(axis=axis, keepdims=True), 1e-12))
    return _rest_mean(-(norm(y) * norm(p)).sum(axis=axis))


REFERENCES = {
    "mean_squared_error": lambda y, p: _rest_mean((y - p) ** 2),
    "mean_absolute_error": lambda y, p: _rest_mean(np.abs(y - p)),
    "mean_absolute_percentage_error":
        lambda y, p: 100 * _rest_mean(np.abs((y - p) / np.maximum(np.abs(y), EPS))),
    "mean_squared_logarithmic_error":
        lambda y, p: _rest_mean((np.log(np.maximum(p, EPS) + 1)
                                 - np.log(np.maximum(y, EPS) + 1)) ** 2),
    "huber_loss": np_huber,
    "log_cosh": lambda y, p: _rest_mean(np.logaddexp(p - y, y - p) - np.log(2.0)),
    "hinge": lambda y, p: _rest_mean(np.maximum(1 - np_hinge_labels(y) * p, 0)),
    "squared_hinge": lambda y, p: _rest_mean(np.maximum(1 - np_hinge_labels(y) * p, 0) ** 2),
    "categorical_hinge": lambda y, p: _rest_mean(np.maximum(
        ((1 - y) * p).max(-1) - (y * p).sum(-1) + 1, 0)),
    "kl_divergence": lambda y, p: _rest_mean(
        (np.clip(y, EPS, 1) * np.log(np.clip(y, EPS, 1) / np.clip(p, EPS, 1))).sum(-1)),
    "poisson": lambda y, p: _rest_mean(p - y * np.log(p + EPS)),
    "cosine_similarity": np_cosine,
    "categorical_crossentropy": np_cce,
    "sparse_categorical_crossentropy": np_scce,
    "binary_crossentropy": np_bce,
}


# -- data --------------------------------------------------------------------------------

def _data(kind, shape, rng):
    """(y_true, y_pred) in float64 for a loss family, away from kinks and clip bounds."""
    if kind == "probs":  # class distributions
        y = np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
        return y, _softmax(rng.normal(size=shape))
    if kind == "soft":
        return _softmax(rng.normal(size=shape)), _softmax(rng.normal(size=shape))
    if kind == "sparse":
        return rng.integers(0, shape[-1], shape[:-1]).astype(np.float64), \
            _softmax(rng.normal(size=shape))
    if kind == "binary":
        return rng.integers(0, 2, shape).astype(np.float64), rng.uniform(0.05, 0.95, shape)
    if kind == "pm1":
        return rng.choice([-1.0, 1.0], shape), rng.normal(size=shape)
    if kind == "positive":
        return rng.uniform(0.5, 3.0, shape), rng.uniform(0.5, 3.0, shape)
    if kind == "logits_binary":
        return rng.integers(0, 2, shape).astype(np.float64), rng.normal(0, 3, shape)
    if kind == "logits_onehot":
        y = np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
        return y, rng.normal(0, 3, shape)
    if kind == "logits_sparse":
        return rng.integers(0, shape[-1], shape[:-1]).astype(np.float64), \
            rng.normal(0, 3, shape)
    y, p = rng.normal(size=shape), rng.normal(size=shape)
    # keep |p - y| away from 0 and 1 (kinks of abs and huber)
    d = p - y
    d = np.sign(d) * np.clip(np.abs(d), 0.05, None)
    d = np.where(np.abs(np.abs(d) - 1.0) < 0.05, d * 1.2, d)
    return y, y + d


CASES = [  # (id, loss, data kind)
    ("mse", losses.MeanSquaredError(), "normal"),
    ("mae", losses.MeanAbsoluteError(), "normal"),
    ("mape", losses.MeanAbsolutePercentageError(), "positive"),
    ("msle", losses.MeanSquaredLogarithmicError(), "positive"),
    ("huber", losses.Huber(), "normal"),
    ("huber_delta", losses.Huber(delta=0.3), "normal"),
    ("log_cosh", losses.LogCosh(), "normal"),
    ("hinge_pm1", losses.Hinge(), "pm1"),
    ("hinge_01", losses.Hinge(), "logits_binary"),
    ("squared_hinge", losses.SquaredHinge(), "pm1"),
    ("squared_hinge_01", losses.SquaredHinge(), "logits_binary"),
    ("categorical_hinge", losses.CategoricalHinge(), "logits_onehot"),
    ("kld", losses.KLDivergence(), "soft"),
    ("poisson", losses.Poisson(), "positive"),
    ("cosine", losses.CosineSimilarity(), "normal"),
    ("cosine_axis1", losses.CosineSimilarity(axis=1), "normal"),
    ("cce", losses.CategoricalCrossentropy(), "probs"),
    ("cce_soft", losses.CategoricalCrossentropy(), "soft"),
    ("cce_smooth", losses.CategoricalCrossentropy(label_smoothing=0.2), "probs"),
    ("cce_logits", losses.CategoricalCrossentropy(from_logits=True), "logits_onehot"),
    ("cce_logits_smooth", losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
     "logits_onehot"),
    ("scce", losses.SparseCategoricalCrossentropy(), "sparse"),
    ("scce_logits", losses.SparseCategoricalCrossentropy(from_logits=True), "logits_sparse"),
    ("bce", losses.BinaryCrossentropy(), "binary"),
    ("bce_smooth", losses.BinaryCrossentropy(label_smoothing=0.2), "binary"),
    ("bce_logits", losses.BinaryCrossentropy(from_logits=True), "logits_binary"),
    ("bce_logits_smooth", losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1),
     "logits_binary"),
]


def _reference(loss, y, p):
    kwargs = {k: v for k, v in loss.get_config().items() if k != "name"}
    return REFERENCES[type(loss).name](y, p, **kwargs)


def _bind(loss, pred_shape, dtype=np.float32):
    """The per-sample loss bound with the label shape left to inference (as fit does)."""
    out = loss(sym.Variable("label"), sym.Variable("pred"))
    exe = out.simple_bind(grad_req={"pred": "write", "label": "null"},
                          type_dict={"pred": dtype, "label": dtype}, pred=pred_shape)
    return out, exe


def _forward(loss, y, p, dtype=np.float32):
    _, exe = _bind(loss, p.shape, dtype)
    exe.arg_dict["label"][:] = y.astype(dtype)
    exe.arg_dict["pred"][:] = p.astype(dtype)
    return exe, exe.forward(is_train=True)[0].asnumpy()


@pytest.mark.parametrize("shape", [(5, 4), (3, 2, 4)], ids=["2d", "3d"])
@pytest.mark.parametrize("case_id,loss,kind", CASES, ids=[c[0] for c in CASES])
def test_per_sample_values_match_numpy(case_id, loss, kind, shape, rng):
    y, p = _data(kind, shape, rng)
    _, got = _forward(loss, y, p)
    assert got.shape == (shape[0],)
    np.testing.assert_allclose(got, _reference(loss, y, p), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("case_id,loss,kind", CASES, ids=[c[0] for c in CASES])
def test_gradient_matches_finite_differences(case_id, loss, kind, rng):
    y, p = _data(kind, (3, 4), rng)
    out = loss(sym.Variable("label"), sym.Variable("pred"))
    check_numeric_gradient(out, {"label": y, "pred": p}, grad_nodes=["pred"],
                           numeric_eps=1e-6, rtol=1e-4, atol=1e-7)


def _backward_of_mean(loss, y, p, dtype=np.float64):
    """Gradient of the batch mean of the per-sample loss (what fit minimises)."""
    exe, values = _forward(loss, y, p, dtype)
    exe.backward([nd.array(np.full(len(p), 1.0 / len(p)), dtype=dtype)])
    return values, exe.grad_dict["pred"].asnumpy()


def test_gradients_match_analytic_derivatives(rng):
    n, c = 4, 5
    y, z = _data("logits_onehot", (n, c), rng)
    _, g = _backward_of_mean(losses.CategoricalCrossentropy(from_logits=True), y, z)
    np.testing.assert_allclose(g, (_softmax(z) - y) / n, rtol=1e-10, atol=1e-12)

    labels = y.argmax(1).astype(np.float64)
    _, g = _backward_of_mean(losses.SparseCategoricalCrossentropy(from_logits=True), labels, z)
    np.testing.assert_allclose(g, (_softmax(z) - y) / n, rtol=1e-10, atol=1e-12)

    t, x = _data("logits_binary", (n, c), rng)
    _, g = _backward_of_mean(losses.BinaryCrossentropy(from_logits=True), t, x)
    np.testing.assert_allclose(g, (_sigmoid(x) - t) / (n * c), rtol=1e-10, atol=1e-12)

    y, p = _data("normal", (n, c), rng)
    _, g = _backward_of_mean(losses.MeanSquaredError(), y, p)
    np.testing.assert_allclose(g, 2 * (p - y) / (n * c), rtol=1e-10)
    _, g = _backward_of_mean(losses.Huber(delta=0.5), y, p)
    np.testing.assert_allclose(g, np.clip(p - y, -0.5, 0.5) / (n * c), rtol=1e-10)
    _, g = _backward_of_mean(losses.LogCosh(), y, p)
    np.testing.assert_allclose(g, np.tanh(p - y) / (n * c), rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("loss,kind", [
    (losses.CategoricalCrossentropy(from_logits=True), "logits_onehot"),
    (losses.SparseCategoricalCrossentropy(from_logits=True), "logits_sparse"),
    (losses.BinaryCrossentropy(from_logits=True), "logits_binary"),
    (losses.LogCosh(), "normal"),
    (losses.Huber(), "normal"),
], ids=["cce", "scce", "bce", "log_cosh", "huber"])
def test_extreme_values_stay_finite_in_float32(loss, kind, rng):
    y, p = _data(kind, (4, 3), rng)
    p = np.sign(p) * 1e4 + p  # |logits| around 1e4: exp overflows float32 naively
    exe, values = _forward(loss, y, p, np.float32)
    exe.backward([nd.array(np.ones(len(p), np.float32))])
    grad = exe.grad_dict["pred"].asnumpy()
    assert np.isfinite(values).all() and np.isfinite(grad).all()
    np.testing.assert_allclose(values, _reference(loss, y, p.astype(np.float32)), rtol=1e-5)


def test_probability_losses_clip_instead_of_overflowing():
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    p = np.array([[0.0, 1.0], [0.0, 1.0]])  # a certain, wrong first prediction
    for loss in (losses.CategoricalCrossentropy(), losses.BinaryCrossentropy(),
                 losses.KLDivergence(), losses.Poisson()):
        exe, values = _forward(loss, y, p)
        exe.backward([nd.array(np.ones(2, np.float32))])
        assert np.isfinite(values).all() and np.isfinite(exe.grad_dict["pred"].asnumpy()).all()
    _, values = _forward(losses.CategoricalCrossentropy(), y, p)
    np.testing.assert_allclose(values, [-math.log(1e-7), 0.0], rtol=1e-3, atol=1e-5)


def test_softmax_output_is_differentiated_through_its_logits():
    # A softmax layer whose probabilities saturate: the loss works on the logits, so the
    # gradient is still softmax - onehot instead of 0 (clipping) or NaN.
    logits = sym.Variable("logits")
    y = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    z = np.array([[200.0, -200.0, 0.0], [-50.0, 60.0, 0.0]])
    for loss, label in ((losses.CategoricalCrossentropy(), y),
                        (losses.SparseCategoricalCrossentropy(), y.argmax(1).astype(float))):
        out = loss(sym.Variable("label"), sym.softmax(logits, axis=-1))
        exe = out.simple_bind(grad_req={"logits": "write", "label": "null"},
                              type_dict={"logits": np.float32, "label": np.float32},
                              logits=z.shape)
        exe.arg_dict["logits"][:] = z.astype(np.float32)
        exe.arg_dict["label"][:] = label.astype(np.float32)
        values = exe.forward(is_train=True)[0].asnumpy()
        exe.backward([nd.array(np.ones(2, np.float32))])
        np.testing.assert_allclose(values, np_cce(y, z, from_logits=True), rtol=1e-6)
        np.testing.assert_allclose(exe.grad_dict["logits"].asnumpy(), _softmax(z) - y,
                                   atol=1e-6)
    out = losses.BinaryCrossentropy()(sym.Variable("label"),
                                      sym.Activation(logits, act_type="sigmoid"))
    exe = out.simple_bind(grad_req={"logits": "write", "label": "null"}, logits=(2, 1))
    exe.arg_dict["logits"][:] = np.array([[-300.0], [40.0]], np.float32)
    exe.arg_dict["label"][:] = np.array([[1.0], [1.0]], np.float32)
    values = exe.forward(is_train=True)[0].asnumpy()
    exe.backward([nd.array(np.ones(2, np.float32))])
    np.testing.assert_allclose(values, [300.0, 0.0], atol=1e-5)
    np.testing.assert_allclose(exe.grad_dict["logits"].asnumpy(), [[-1.0], [0.0]], atol=1e-6)


def test_from_logits_on_a_softmax_output_warns():
    with pytest.warns(UserWarning, match="second softmax"):
        losses.CategoricalCrossentropy(from_logits=True)(
            sym.Variable("label"), sym.softmax(sym.Variable("z")))
    with pytest.warns(UserWarning, match="second sigmoid"):
        losses.BinaryCrossentropy(from_logits=True)(
            sym.Variable("label"), sym.sigmoid(sym.Variable("z")))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        losses.CategoricalCrossentropy(from_logits=True)(sym.Variable("label"),
                                                         sym.Variable("z"))


def test_sparse_ignore_class_masks_positions(rng):
    y = rng.integers(0, 4, (3, 5)).astype(np.float64)
    y[0, :2] = 0
    y[2, :] = 0
    p = _softmax(rng.normal(size=(3, 5, 4)))
    loss = losses.SparseCategoricalCrossentropy(ignore_class=0)
    _, got = _forward(loss, y, p)
    np.testing.assert_allclose(got, np_scce(y, p, ignore_class=0), rtol=2e-5)
    assert got[2] == 0.0


def test_hinge_converts_binary_labels_only_when_all_are_binary():
    p = np.array([[0.3, -2.0], [1.5, 0.2]])
    y01 = np.array([[1.0, 0.0], [0.0, 1.0]])
    _, a = _forward(losses.Hinge(), y01, p)
    _, b = _forward(losses.Hinge(), 2 * y01 - 1, p)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    y_mixed = np.array([[1.0, 0.0], [-1.0, 1.0]])  # not all 0/1: used as they are
    _, c = _forward(losses.Hinge(), y_mixed, p)
    np.testing.assert_allclose(c, _rest_mean(np.maximum(1 - y_mixed * p, 0)), rtol=1e-6)


# -- in a model ----------------------------------------------------------------------------

MODEL_CASES = [  # (loss, output units, output activation, label maker)
    ("categorical_crossentropy", 3, "softmax", "onehot"),
    ("sparse_categorical_crossentropy", 3, "softmax", "sparse"),
    (losses.SparseCategoricalCrossentropy(from_logits=True), 3, None, "sparse"),
    ("binary_crossentropy", 1, "sigmoid", "binary"),
    (losses.BinaryCrossentropy(from_logits=True), 2, None, "binary"),
    ("mse", 2, None, "normal"), ("mae", 2, None, "normal"), ("mape", 2, None, "positive"),
    ("msle", 2, "softplus", "positive"), ("huber", 2, None, "normal"),
    ("log_cosh", 2, None, "normal"), ("hinge", 1, "tanh", "binary"),
    ("squared_hinge", 1, "tanh", "binary"), ("categorical_hinge", 3, None, "onehot"),
    ("kld", 3, "softmax", "soft"), ("poisson", 2, "softplus", "positive"),
    ("cosine_similarity", 3, None, "normal"),
]


def _labels(kind, n, units, rng):
    if kind == "onehot":
        return np.eye(units, dtype=np.float32)[rng.integers(0, units, n)]
    if kind == "sparse":
        return rng.integers(0, units, n).astype(np.float32)
    if kind == "binary":
        return rng.integers(0, 2, (n, units)).astype(np.float32)
    if kind == "positive":
        return rng.uniform(0.5, 2.0, (n, units)).astype(np.float32)
    if kind == "soft":
        return _softmax(rng.normal(size=(n, units))).astype(np.float32)
    return rng.normal(size=(n, units)).astype(np.float32)


@pytest.mark.parametrize("loss,units,activation,kind", MODEL_CASES,
                         ids=[c[0] if isinstance(c[0], str) else type(c[0]).__name__ + "_logits"
                              for c in MODEL_CASES])
def test_model_evaluate_and_one_fit_step(loss, units, activation, kind, rng):
    x = rng.normal(size=(10, 4)).astype(np.float32)
    y = _labels(kind, 10, units, rng)
    model = deepkit.Sequential([L.Input((4,)), L.Dense(units, activation=activation)])
    model.compile(deepkit.optimizers.SGD(0.01), loss)
    loss_obj = losses.get(loss)
    pred = model.predict(x, batch_size=4)
    expected = float(np.mean(_reference(loss_obj, y.astype(np.float64),
                                        pred.astype(np.float64))))
    got = model.evaluate(x, y, batch_size=4)  # batches 4, 4, 2
    got = got[0] if isinstance(got, (list, tuple)) else got
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    before = model.get_weights()
    first = model.train_on_batch(x, y)
    first = first[0] if isinstance(first, (list, tuple)) else first
    assert np.isfinite(first)
    after = model.get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))


# -- lookup, config, errors ----------------------------------------------------------------

@pytest.mark.parametrize("name,cls", [
    ("mse", losses.MeanSquaredError), ("MSE", losses.MeanSquaredError),
    ("mae", losses.MeanAbsoluteError), ("mape", losses.MeanAbsolutePercentageError),
    ("msle", losses.MeanSquaredLogarithmicError), ("kld", losses.KLDivergence),
    ("kullback_leibler_divergence", losses.KLDivergence), ("huber", losses.Huber),
    ("huber_loss", losses.Huber), ("logcosh", losses.LogCosh), ("log_cosh", losses.LogCosh),
    ("bce", losses.BinaryCrossentropy), ("hinge", losses.Hinge),
    ("squared_hinge", losses.SquaredHinge), ("categorical_hinge", losses.CategoricalHinge),
    ("poisson", losses.Poisson), ("cosine_similarity", losses.CosineSimilarity),
    ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy),
    ("categorical_crossentropy", losses.CategoricalCrossentropy),
    ("MeanSquaredError", losses.MeanSquaredError), ("Huber", losses.Huber),
])
def test_get_resolves_names_and_aliases(name, cls):
    assert type(losses.get(name)) is cls


CONFIGURED = [
    losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1, axis=1, name="cce"),
    losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=3),
    losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.05),
    losses.Huber(delta=2.5), losses.CosineSimilarity(axis=1), losses.MeanSquaredError(),
    losses.MeanAbsoluteError(), losses.MeanAbsolutePercentageError(),
    losses.MeanSquaredLogarithmicError(), losses.LogCosh(), losses.Hinge(),
    losses.SquaredHinge(), losses.CategoricalHinge(), losses.KLDivergence(), losses.Poisson(),
]


@pytest.mark.parametrize("loss", CONFIGURED, ids=lambda l: type(l).__name__)
def test_serialize_round_trip(loss):
    config = losses.serialize(loss)
    again = losses.get(json.loads(json.dumps(config)))
    assert type(again) is type(loss)
    assert again.get_config() == loss.get_config()
    assert losses.deserialize(config).name == loss.name


def test_functions_act_like_keras_functions(rng):
    y, p = _data("normal", (4, 3), rng)
    got = losses.mean_squared_error(y, p)
    assert isinstance(got, nd.NDArray)
    np.testing.assert_allclose(got.asnumpy(), _rest_mean((y - p) ** 2), rtol=1e-6)
    got = losses.huber(y, p, delta=0.5).asnumpy()
    np.testing.assert_allclose(got, np_huber(y, p, 0.5), rtol=1e-5)
    assert isinstance(losses.get(losses.kl_divergence), losses.KLDivergence)
    assert losses.serialize(losses.poisson) == {"class_name": "Poisson",
                                                "config": {"name": "poisson"}}
    out = losses.binary_crossentropy(sym.Variable("label"), sym.Variable("pred"),
                                     from_logits=True)
    assert isinstance(out, sym.Symbol)


def test_custom_function_loss_round_trips_with_custom_objects(rng):
    def my_loss(y_true, y_pred):
        return sym.square(y_pred - y_true) * 3.0
    loss = losses.get(my_loss)
    assert loss.name == "my_loss"
    y, p = _data("normal", (4, 3), rng)
    _, got = _forward(loss, y, p)
    np.testing.assert_allclose(got, 3 * _rest_mean((y - p) ** 2), rtol=1e-5)
    config = losses.serialize(loss)
    with pytest.raises(ValueError, match="custom_objects"):
        losses.get(config)
    assert losses.get(config, custom_objects={"my_loss": my_loss}).fn is my_loss


def test_unknown_names_and_bad_arguments_give_clear_errors():
    with pytest.raises(ValueError, match=r"unknown loss 'mean_sqared_error'.*did you mean "
                                         r"'mean_squared_error'"):
        losses.get("mean_sqared_error")
    with pytest.raises(ValueError, match=r"did you mean 'categorical_crossentropy'"):
        losses.get("categorical_crossentropie")
    with pytest.raises(ValueError, match="known: .*poisson"):
        losses.get("nope")
    with pytest.raises(TypeError, match="cannot interpret 3 as a loss"):
        losses.get(3)
    with pytest.raises(ValueError, match=r"'delta' must be a positive float. Received: delta=0"):
        losses.Huber(delta=0)
    with pytest.raises(ValueError, match=r"label_smoothing=1.5"):
        losses.CategoricalCrossentropy(label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"ignore_class='pad'"):
        losses.SparseCategoricalCrossentropy(ignore_class="pad")


def test_label_shape_checks_explain_the_classic_traps():
    cce, scce = losses.CategoricalCrossentropy(), losses.SparseCategoricalCrossentropy()
    assert cce.label_shape((8, 10)) == (8, 10)
    assert scce.label_shape((8, 10)) == (8,)
    assert scce.label_shape((8, 5, 10)) == (8, 5)
    cce.check_label_shape((8, 10), (8, 10))  # fits: no error
    with pytest.raises(ValueError, match=r"sparse_categorical_crossentropy.*integer"):
        cce.check_label_shape((8,), (8, 10), output="dense_1")
    with pytest.raises(ValueError, match=r"Output 'dense_1'"):
        cce.check_label_shape((8, 1), (8, 10), output="dense_1")
    with pytest.raises(ValueError, match=r"one-hot.*'categorical_crossentropy'"):
        scce.check_label_shape((8, 10), (8, 10))
    with pytest.raises(ValueError, match=r"expects labels of shape \(8, 1\).*y.reshape\(-1, 1\)"):
        losses.BinaryCrossentropy().check_label_shape((8,), (8, 1))
    with pytest.raises(ValueError, match=r"mean_squared_error expects labels of shape \(8, 3\) "
                                         r"for an output of shape \(8, 3\), but the labels have "
                                         r"shape \(8, 4\)"):
        losses.MeanSquaredError().check_label_shape((8, 4), (8, 3))


def test_fit_rejects_integer_labels_for_categorical_crossentropy(rng):
    model = deepkit.Sequential([L.Input((4,)), L.Dense(3, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy")
    x = rng.normal(size=(6, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy"):
        model.fit(x, rng.integers(0, 3, 6), verbose=0)


def test_a_subclass_that_only_defines_call_trains(rng):
    class DoubleMae(losses.Loss):
        name = "double_mae"

        def call(self, F, y_true, y_pred):
            return losses.per_sample(F, 2.0 * F.abs(y_pred - y_true))

    x = rng.normal(size=(6, 4)).astype(np.float32)
    y = rng.normal(size=(6, 2)).astype(np.float32)
    model = deepkit.Sequential([L.Input((4,)), L.Dense(2)])
    model.compile("sgd", DoubleMae(), metrics=["accuracy", "mae"])
    got = model.evaluate(x, y, batch_size=4, return_dict=True)
    p = model.predict(x).astype(np.float64)
    assert got["loss"] == pytest.approx(2 * np.abs(p - y).mean(), rel=1e-5)
    assert got["mae"] == pytest.approx(np.abs(p - y).mean(), rel=1e-5)
    assert 0.0 <= got["accuracy"] <= 1.0
    assert DoubleMae()(sym.Variable("label"), sym.Variable("pred")).infer_shape(
        pred=(6, 2))[1] == [(6,)]
