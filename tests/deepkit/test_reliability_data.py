"""Data entering fit/evaluate/train_on_batch is checked: bad labels, indices, NaN, arguments."""
import threading

import numpy as np
import pytest

import deepkit
from deepkit import layers as L


def _data(n=100, d=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(np.float32), rng.integers(0, 10, n)


def _model(loss="sparse_categorical_crossentropy", d=4):
    model = deepkit.Sequential([L.Dense(16, activation="relu", input_shape=(d,)),
                                L.Dense(10, activation="softmax")])
    model.compile("sgd", loss, metrics=["accuracy"])
    return model


# -- labels --------------------------------------------------------------------------------

@pytest.mark.parametrize("bad, what", [(1000, "out of range"), (-1, "out of range"),
                                       (2.5, "not an integer"), (np.nan, "not an integer")])
def test_bad_sparse_labels_raise_naming_loss_value_position_and_range(bad, what):
    x, y = _data()
    y = y.astype(np.float64)
    y[7] = bad
    model = _model()
    before = model.get_weights()
    with pytest.raises(ValueError) as err:
        model.fit(x, y, batch_size=10, verbose=0, shuffle=False)
    text = str(err.value)
    assert "sparse_categorical_crossentropy" in text and "sample 7" in text
    assert what in text and "[0, 10)" in text and repr(float(bad)) in text
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)  # nothing trained


def test_whole_float_labels_and_ignore_class_are_accepted():
    x, y = _data()
    model = _model()
    model.fit(x, y.astype(np.float32), batch_size=50, verbose=0)
    y = y.copy()
    y[3] = -1
    model.compile("sgd", deepkit.losses.SparseCategoricalCrossentropy(ignore_class=-1))
    model.fit(x, y, batch_size=50, verbose=0)


def test_bad_labels_raise_in_evaluate_train_on_batch_and_iterables():
    x, y = _data()
    y[42] = 10
    model = _model()
    with pytest.raises(ValueError, match="label 10 at sample 42"):
        model.evaluate(x, y)
    with pytest.raises(ValueError, match="label 10 at sample 42"):
        model.train_on_batch(x, y)
    batches = [(x[i:i + 20], y[i:i + 20]) for i in range(0, 100, 20)]
    with pytest.raises(ValueError, match="label 10 at sample 42"):
        model.fit(iter(batches), verbose=0)


def test_y_none_with_a_loss_raises():
    x, _ = _data()
    model = _model()
    for call in (lambda: model.fit(x, verbose=0), lambda: model.evaluate(x),
                 lambda: model.train_on_batch(x, None),
                 lambda: model.fit(iter([x[:10], x[10:20]]), verbose=0)):
        with pytest.raises(ValueError, match="no targets|y is None"):
            call()


def test_nan_and_inf_in_inputs_or_targets_raise_by_default():
    x, y = _data()
    x[13, 2] = np.nan
    model = _model()
    with pytest.raises(ValueError, match=r"input 'dense_1_input|holds nan at sample 13"):
        model.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match="check_finite=False"):
        model.evaluate(x, y)
    regression = deepkit.Sequential([L.Dense(1, input_shape=(4,))])
    regression.compile("sgd", "mse")
    targets = np.ones((100, 1), np.float32)
    targets[99, 0] = np.inf
    with pytest.raises(ValueError, match="holds inf at sample 99"):
        regression.fit(_data()[0], targets, verbose=0)


def test_check_finite_false_turns_the_check_off():
    x, y = _data()
    x[0, 0] = np.nan
    model = _model()
    model.fit(x, y, batch_size=100, verbose=0, check_finite=False, shuffle=False)
    assert np.isnan(model.get_weights()[0]).any()


def test_nan_in_a_memmap_is_found_as_rows_are_gathered(tmp_path):
    x, y = _data()
    x[55, 1] = np.nan
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32,
                                   shape=x.shape)
    mm[:] = x
    model = _model()
    with pytest.raises(ValueError, match="holds nan at sample 55"):
        model.fit(mm, y, batch_size=10, verbose=0, shuffle=False)
    assert all(np.isfinite(w).all() for w in model.get_weights())  # still readable
    mm[55, 1] = 0.0
    model.fit(mm, y, batch_size=10, verbose=0)  # fixed data trains


def test_embedding_indices_out_of_range_raise():
    model = deepkit.Sequential([L.Embedding(5, 3, input_shape=(4,)), L.Flatten(),
                                L.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    x = np.array([[0, 1, 2, 3], [4, 0, 1, 7]] * 4, np.float32)
    with pytest.raises(ValueError, match=r"Embedding .*index 7.0 at sample 1, position \(3,\)"):
        model.fit(x, np.zeros(8), verbose=0)
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        model.fit(-x, np.zeros(8), verbose=0)
    model.fit(np.clip(x, 0, 4), np.zeros(8), verbose=0)


# -- arguments ------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [-5, 0, 32.5, "32", True])
def test_bad_batch_size_raises_naming_it(bad):
    x, y = _data()
    with pytest.raises(ValueError, match=f"'batch_size'.*batch_size={bad!r}"):
        _model().fit(x, y, batch_size=bad, verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        _model().evaluate(x, y, batch_size=bad)
    with pytest.raises(ValueError, match="batch_size"):
        _model().predict(x, batch_size=bad)


def test_bad_epochs_and_steps_raise():
    x, y = _data()
    with pytest.raises(ValueError, match="'epochs'.*epochs=-1"):
        _model().fit(x, y, epochs=-1, verbose=0)
    with pytest.raises(ValueError, match="'epochs'.*epochs=2.0"):
        _model().fit(x, y, epochs=2.0, verbose=0)
    with pytest.raises(ValueError, match="'steps_per_epoch'.*=0"):
        _model().fit(x, y, steps_per_epoch=0, verbose=0)


@pytest.mark.parametrize("split", [0.999, 0.001])
def test_validation_split_that_leaves_nothing_raises(split):
    x, y = _data()
    with pytest.raises(ValueError, match=f"validation_split={split}.*leaves"):
        _model().fit(x, y, validation_split=split, verbose=0)


def test_out_of_range_validation_split_raises():
    x, y = _data()
    with pytest.raises(ValueError, match="validation_split=1.5"):
        _model().fit(x, y, validation_split=1.5, verbose=0)


def test_empty_data_raises():
    x, y = _data()
    with pytest.raises(ValueError, match="empty"):
        _model().fit(x[:0], y[:0], verbose=0)
    with pytest.raises(ValueError, match="empty"):
        _model().evaluate(x[:0], y[:0])
    with pytest.raises(ValueError, match="no batches"):
        _model().fit(iter([]), verbose=0)


@pytest.mark.parametrize("bad", ["hello", 3, None])
def test_bad_x_raises_naming_it(bad):
    with pytest.raises((TypeError, ValueError), match="'x'"):
        _model().fit(bad, np.zeros(5), verbose=0)


def test_wrong_length_sample_weight_names_its_length():
    x, y = _data()
    with pytest.raises(ValueError, match=r"sample_weight .* shape \(90,\).*100 samples"):
        _model().fit(x, y, sample_weight=np.ones(90), verbose=0)


def test_existing_label_shape_message_is_kept():
    x, _ = _data()
    with pytest.raises(ValueError, match="one-hot"):
        _model().fit(x, np.eye(10)[np.zeros(100, int)], verbose=0)


# -- threads --------------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ["threaded", "naive"])
def test_predict_from_two_threads_gives_each_its_own_results(engine):
    from deepkit_engine import engine as engine_mod
    previous = engine_mod.set_engine(engine)
    try:
        model = _model()
        inputs = [np.random.default_rng(i).normal(size=(30, 4)).astype(np.float32)
                  for i in range(2)]
        expected = [model.predict(v, batch_size=7) for v in inputs]
        failures = []

        def work(i):
            for _ in range(30):
                if not np.allclose(model.predict(inputs[i], batch_size=7), expected[i]):
                    failures.append(i)
        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
    finally:
        engine_mod.set_engine(previous)
