"""compile/fit/evaluate/predict: semantics, reproducibility, freezing and error traps."""
import numpy as np
import pytest

import deepkit
from deepkit import layers as L
from deepkit_engine.base import DeepkitError


def _data(n=256, d=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    return x, y


def _model(d=8, name=None):
    model = deepkit.Sequential([L.Dense(16, activation="relu", input_shape=(d,)),
                                L.Dense(2, activation="softmax")], name=name)
    model.compile(deepkit.optimizers.SGD(0.1, momentum=0.9),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_fit_learns_and_history_records_epochs():
    x, y = _data()
    model = _model()
    history = model.fit(x, y, batch_size=32, epochs=5, verbose=0)
    assert history.epoch == [0, 1, 2, 3, 4]
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.9
    loss, acc = model.evaluate(x, y, batch_size=50)
    assert acc > 0.9 and loss < 0.4


def test_predict_handles_any_batch_size_and_matches_numpy():
    x, _ = _data(n=37)
    model = _model()
    probs = model.predict(x, batch_size=10)  # batches of 10, 10, 10, 7
    w1, b1 = model.layers[1].get_weights()
    w2, b2 = model.layers[2].get_weights()
    h = np.maximum(x @ w1.T + b1, 0)
    z = h @ w2.T + b2
    e = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(probs, e / e.sum(1, keepdims=True), rtol=1e-5, atol=1e-6)


def test_same_seed_gives_bit_identical_weights():
    x, y = _data()
    results = []
    for _ in range(2):
        deepkit.set_seed(7)
        model = _model()
        model.fit(x, y, batch_size=32, epochs=2, verbose=0)
        results.append(model.get_weights())
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    deepkit.set_seed(8)
    other = _model()
    other.fit(x, y, batch_size=32, epochs=2, verbose=0)
    assert not np.array_equal(other.get_weights()[0], results[0][0])


def test_validation_split_is_shuffled_and_seeded():
    x, y = _data(n=100)
    x[:, 0] = np.arange(100)  # mark the rows
    model = deepkit.Sequential([L.Dense(2, input_shape=(8,))])
    model.compile("sgd", "mse")
    seen = []

    class Spy(deepkit.callbacks.Callback):
        pass
    deepkit.set_seed(3)
    xs_train, _, _, (xs_val, _, _) = model._split(x, y, None, 0.2)
    assert len(xs_val) == 20 and len(xs_train) == 80
    assert not np.array_equal(np.sort(xs_val[:, 0]), np.arange(80, 100))  # not the last 20%
    deepkit.set_seed(3)
    again = model._split(x, y, None, 0.2)[3][0]
    np.testing.assert_array_equal(again, xs_val)
    seen.append(Spy)


def test_sample_and_class_weights_change_the_loss():
    x, y = _data(n=64)
    model = _model()
    base = model.evaluate(x, y, batch_size=64)
    weighted = model.evaluate(x, y, batch_size=64, sample_weight=np.full(64, 2.0))
    assert weighted[0] == pytest.approx(2 * base[0], rel=1e-5)
    h = model.fit(x, y, batch_size=64, epochs=1, class_weight={0: 0.0, 1: 0.0}, shuffle=False,
                  verbose=0)
    assert h.history["loss"][0] == pytest.approx(0.0, abs=1e-7)


def test_train_on_batch_and_test_on_batch():
    x, y = _data(n=32)
    model = _model()
    before = model.test_on_batch(x, y)
    for _ in range(20):
        model.train_on_batch(x, y)
    after = model.test_on_batch(x, y)
    assert after[0] < before[0]


def test_frozen_layer_is_unchanged_has_no_gradient_buffer_and_needs_no_recompile():
    x, y = _data()
    model = _model()
    first = model.layers[1]
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    first.trainable = False
    frozen = first.get_weights()
    model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    for a, b in zip(frozen, first.get_weights()):
        np.testing.assert_array_equal(a, b)
    trainer = model.executors()
    exe = trainer.executor("train", 32)
    assert "dense_weight" not in exe.grad_dict and "dense_1_weight" in exe.grad_dict
    first.trainable = True
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert not np.array_equal(frozen[0], first.get_weights()[0])


def test_integer_labels_with_categorical_crossentropy_suggest_the_sparse_loss():
    x, y = _data()
    model = _model()
    model.compile("sgd", "categorical_crossentropy")
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy"):
        model.fit(x, y, epochs=1, verbose=0)
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="one-hot"):
        model.fit(x, np.eye(2)[y], epochs=1, verbose=0)


def test_label_and_input_shape_mismatches_are_explained():
    x, y = _data()
    model = _model()
    with pytest.raises(ValueError, match=r"expects samples of shape \(8,\).*\(256, 9\)"):
        model.fit(np.ones((256, 9)), y, verbose=0)
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match=r"expects labels of shape \(256, 2\).*labels have "
                                         r"shape \(256, 3\)"):
        model.fit(x, np.ones((256, 3)), verbose=0)


def test_fit_before_compile_and_iterables():
    x, y = _data(n=64)
    model = deepkit.Sequential([L.Dense(2, input_shape=(8,), activation="softmax")])
    with pytest.raises(DeepkitError, match="must be compiled"):
        model.fit(x, y, verbose=0)
    model.compile("adam", "sparse_categorical_crossentropy")

    def batches():
        for i in range(0, 64, 16):
            yield x[i:i + 16], y[i:i + 16]
    history = model.fit(batches(), epochs=1, verbose=0)
    assert len(history.history["loss"]) == 1


def test_progress_in_a_log_prints_a_header_and_a_summary_line_per_epoch(capsys):
    x, y = _data(n=64)
    model = _model()
    model.fit(x, y, batch_size=16, epochs=2, verbose=1)
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.strip() and not l.startswith("  ")]
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and "\r" not in err
    assert len(lines) == 4 and "loss:" in lines[3] and "accuracy:" in lines[3]


def test_freezing_a_nested_model_freezes_its_layers_and_fit_still_runs():
    inp = deepkit.Input(shape=(8,))
    base = deepkit.Model(inp, L.Dense(4, activation="relu")(inp), name="base")
    outer_in = deepkit.Input(shape=(8,))
    model = deepkit.Model(outer_in, L.Dense(2, activation="softmax")(base(outer_in)))
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = _data(n=64)
    base.trainable = False
    before = base.get_weights()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    for a, b in zip(before, base.get_weights()):
        np.testing.assert_array_equal(a, b)
    model.trainable = False  # nothing left to train: fit still runs and reports the loss
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_sample_weights_do_not_leak_into_later_unweighted_batches():
    x, y = _data(n=64)
    model = _model()
    plain = model.evaluate(x, y, batch_size=64)
    model.evaluate(x, y, batch_size=64, sample_weight=np.full(64, 3.0))
    assert model.evaluate(x, y, batch_size=64)[0] == pytest.approx(plain[0], rel=1e-6)
