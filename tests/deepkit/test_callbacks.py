"""Callbacks: each one's behaviour on small models fit on small random data.

Monitored quantities are often injected into the logs by a helper callback
(``_Inject``) that runs before the callback under test, so that stopping,
checkpointing and learning-rate decisions can be checked against sequences
worked out by hand, while the weights still come from real training.

Callbacks see the loop only through its public state (``callback.loop``);
the first tests below check what that state holds.
"""
import csv
import os

import numpy as np
import pytest

import deepkit
from deepkit import callbacks as cbs
from deepkit import initializers, layers, optimizers
from deepkit_engine.base import DeepkitError

N, D = 64, 4


def _data(seed=0, n=N):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, D)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5], [3.0]]) + 0.1).astype(np.float32)
    return x, y


def _net(seed=0, dropout=0.0, optimizer=None, hidden_init="glorot_uniform", loss="mse"):
    """A small regression MLP with fixed names (a rebuilt model has the same weight names)."""
    deepkit.set_seed(seed)
    inp = deepkit.Input(shape=(D,), name="x")
    h = layers.Dense(8, activation="relu", name="hidden", kernel_initializer=hidden_init)(inp)
    if dropout:
        h = layers.Dropout(dropout, name="drop")(h)
    out = layers.Dense(1, name="out")(h)
    model = deepkit.Model(inp, out, name="net")
    model.compile(optimizer if optimizer is not None else optimizers.SGD(0.01), loss)
    return model


class _Inject(cbs.Callback):
    """Puts ``values[epoch]`` into the epoch logs under ``key`` (runs before the others)."""

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values = key, list(values)

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]


class _Record(cbs.Callback):
    """The weights at the end of each epoch."""

    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


def _assert_weights_equal(a, b):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


def _weights_differ(a, b):
    return any(not np.array_equal(u, v) for u, v in zip(a, b))


# -- the loop state callbacks see ------------------------------------------------------

def test_callbacks_see_the_public_loop_state_and_can_move_the_resume_point():
    model = _net()
    x, y = _data(n=8 * 50)
    seen = {"epochs": [], "batches": 0, "logged": 0, "steps": []}

    class Probe(cbs.Callback):
        requires_batch_logs = True

        def on_train_begin(self, logs=None):
            assert self.loop.mode == "fit" and self.loop.epochs == 2
            self.loop.initial_epoch = 1  # as BackupAndRestore resumes

        def on_epoch_begin(self, epoch, logs=None):
            seen["epochs"].append((epoch, self.loop.epoch))

        def on_train_batch_begin(self, batch, logs=None):
            bx, by, bsw = self.loop.batch
            assert np.asarray(bx).shape == (8, 4) and len(np.asarray(by)) == 8
            assert bsw is None and self.loop.batch_size == 8
            seen["batches"] += 1
            seen["steps"].append(self.loop.step)

        def on_train_batch_end(self, batch, logs=None):
            seen["logged"] += logs is not None
            assert self.loop.logs["loss"] == logs["loss"]

        def on_epoch_end(self, epoch, logs=None):
            assert self.loop.batch is None and self.loop.epoch_seconds > 0

    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[Probe()])
    assert seen["epochs"] == [(1, 1)]
    assert seen["batches"] == seen["logged"] == 50
    assert seen["steps"] == list(range(50))


def test_no_callback_reads_a_private_field_of_the_model():
    import ast
    import pathlib
    import deepkit.callbacks
    folder = pathlib.Path(deepkit.callbacks.__file__).parent
    offenders = []
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                    and not node.attr.startswith("__") \
                    and isinstance(node.value, ast.Attribute) and node.value.attr == "model":
                offenders.append(f"{path.name}:{node.lineno} model.{node.attr}")
    assert not offenders, offenders


# -- CallbackList ---------------------------------------------------------------------

def test_callback_list_runs_backup_last_and_collects_batch_log_needs(tmp_path):
    order = []

    class Mark(cbs.Callback):
        def __init__(self, tag):
            super().__init__()
            self.tag = tag

        def on_train_begin(self, logs=None):
            order.append(self.tag)

    backup = cbs.BackupAndRestore(str(tmp_path / "b"))
    a, b = Mark("a"), Mark("b")
    cl = cbs.CallbackList([a, backup, b], model=None, params={})
    assert cl.callbacks == [a, b, backup]
    assert backup._others == [a, b]
    assert not cl.requires_batch_logs
    assert cbs.CallbackList([a, cbs.TerminateOnNaN()], None, {}).requires_batch_logs


def test_history_state_round_trip():
    h = cbs.History()
    h.on_epoch_end(0, {"loss": 1.0})
    h.on_epoch_end(1, {"loss": 0.5})
    h2 = cbs.History()
    h2.set_state(h.get_state())
    assert h2.epoch == [0, 1] and h2.history == {"loss": [1.0, 0.5]}


# -- EarlyStopping ----------------------------------------------------------------------

def _fit_with_scores(scores, callback, key="score", epochs=None, model=None, **fit_kwargs):
    model = model or _net()
    x, y = _data()
    record = _Record()
    history = model.fit(x, y, batch_size=16, epochs=epochs or len(scores), verbose=0,
                        callbacks=[_Inject(key, scores), callback, record], **fit_kwargs)
    return model, history, record


@pytest.mark.parametrize("kwargs, scores, epochs_run, stopped", [
    # min: best 4 at epoch 1, then two epochs without improvement
    (dict(patience=2, mode="min"), [5, 4, 4.5, 4.2, 4.1, 3, 2, 1], 4, 3),
    # an improvement smaller than min_delta does not count
    (dict(patience=1, mode="min", min_delta=0.5), [5, 4.8, 4.6, 4.4], 2, 1),
    # max mode
    (dict(patience=2, mode="max"), [0.5, 0.6, 0.55, 0.58, 0.9], 4, 3),
    # patience 0: stops at the first epoch without improvement (never at epoch 0)
    (dict(patience=0, mode="min"), [1, 2, 3, 4, 5, 6], 2, 1),
    # warm-up: nothing is watched before start_from_epoch
    (dict(patience=0, mode="min", start_from_epoch=3), [1, 2, 3, 4, 5, 6], 5, 4),
    # without a baseline the first epoch counts as the best one ...
    (dict(patience=2, mode="min"), [3, 3.5, 3.6, 3.7], 3, 2),
    # ... with one, epochs that do not beat it use up the patience
    (dict(patience=2, mode="min", baseline=1.0), [3, 3.5, 3.6, 3.7], 2, 1),
    # never stops while improving
    (dict(patience=1, mode="min"), [5, 4, 3, 2], 4, 0),
])
def test_early_stopping_stops_after_patience(kwargs, scores, epochs_run, stopped):
    es = cbs.EarlyStopping(monitor="score", **kwargs)
    model, history, _ = _fit_with_scores(scores, es)
    assert len(history.history["loss"]) == epochs_run
    assert es.stopped_epoch == stopped
    assert history.history["score"] == scores[:epochs_run]


def test_early_stopping_auto_mode_from_the_name():
    es = cbs.EarlyStopping(monitor="val_accuracy", patience=1)
    _, history, _ = _fit_with_scores([0.5, 0.7, 0.6, 0.9], es, key="val_accuracy")
    assert es.stopped_epoch == 2 and len(history.epoch) == 3
    es = cbs.EarlyStopping(monitor="val_loss", patience=1)
    _, history, _ = _fit_with_scores([0.5, 0.7, 0.6, 0.9], es, key="val_loss")
    assert es.stopped_epoch == 1


def test_early_stopping_auto_mode_unknown_name_asks_for_mode():
    es = cbs.EarlyStopping(monitor="score")
    with pytest.raises(ValueError, match="mode='min' or mode='max'"):
        _fit_with_scores([1, 2], es)


def test_early_stopping_restores_best_weights_exactly_when_stopping():
    es = cbs.EarlyStopping(monitor="score", mode="min", patience=2, restore_best_weights=True)
    model, history, record = _fit_with_scores([3, 1, 2, 2.5, 2.7, 0], es)
    assert len(history.epoch) == 4 and es.best_epoch == 1
    assert _weights_differ(record.weights[1], record.weights[3])
    _assert_weights_equal(model.get_weights(), record.weights[1])


def test_early_stopping_restores_best_weights_when_epochs_run_out():
    es = cbs.EarlyStopping(monitor="score", mode="min", patience=10, restore_best_weights=True)
    model, history, record = _fit_with_scores([3, 1, 2, 2.5], es)
    assert len(history.epoch) == 4 and es.stopped_epoch == 0
    _assert_weights_equal(model.get_weights(), record.weights[1])


def test_early_stopping_keeps_last_weights_without_restore():
    es = cbs.EarlyStopping(monitor="score", mode="min", patience=1)
    model, _, record = _fit_with_scores([1, 2, 3], es)
    _assert_weights_equal(model.get_weights(), record.weights[-1])


def test_early_stopping_on_real_loss_with_frozen_training():
    # learning rate 0: the loss never improves after the first epoch
    es = cbs.EarlyStopping(monitor="loss", patience=2)
    model = _net(optimizer=optimizers.SGD(0.0))
    x, y = _data()
    history = model.fit(x, y, batch_size=16, epochs=10, verbose=0, callbacks=[es])
    assert len(history.epoch) == 3


def test_early_stopping_missing_monitor_lists_what_exists():
    x, y = _data()
    model = _net()
    with pytest.raises(ValueError) as err:
        model.fit(x, y, epochs=2, verbose=0, callbacks=[cbs.EarlyStopping(monitor="val_loss")])
    message = str(err.value)
    assert "monitor='val_loss'" in message and "loss" in message
    assert "validation_data or validation_split" in message
    with pytest.raises(ValueError, match=r"did you mean 'val_loss'.*loss, val_loss"):
        model.fit(x, y, epochs=1, verbose=0, validation_split=0.25,
                  callbacks=[cbs.EarlyStopping(monitor="val_los")])


@pytest.mark.parametrize("kwargs, match", [
    (dict(patience=-1), "Received: patience=-1"),
    (dict(mode="mn"), "Received: mode='mn'"),
    (dict(monitor=""), "Received: monitor=''"),
    (dict(min_delta="a"), "Received: min_delta='a'"),
    (dict(start_from_epoch=1.5), "Received: start_from_epoch=1.5"),
])
def test_early_stopping_validates_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cbs.EarlyStopping(**kwargs)


# -- ModelCheckpoint ------------------------------------------------------------------

def _listing(folder):
    return sorted(os.listdir(folder))


def test_model_checkpoint_formats_names_from_epoch_and_logs(tmp_path):
    pattern = str(tmp_path / "ck-{epoch:02d}-{loss:.3f}.h5")
    ckpt = cbs.ModelCheckpoint(pattern, save_weights_only=True)
    model = _net()
    x, y = _data()
    record = _Record()
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[ckpt, record])
    expected = [f"ck-{e + 1:02d}-{loss:.3f}.h5" for e, loss in enumerate(history.history["loss"])]
    assert _listing(tmp_path) == sorted(expected)
    assert ckpt.last_saved == str(tmp_path / expected[-1])
    probe = _net(seed=1)
    probe.load_weights(str(tmp_path / expected[1]))
    _assert_weights_equal(probe.get_weights(), record.weights[1])


def test_model_checkpoint_save_best_only_writes_only_on_improvement(tmp_path):
    ckpt = cbs.ModelCheckpoint(str(tmp_path / "ck-{epoch}.h5"), monitor="score", mode="min",
                               save_best_only=True, save_weights_only=True)
    _fit_with_scores([3, 1, 2, 0.5, 0.7], ckpt)
    assert _listing(tmp_path) == ["ck-1.h5", "ck-2.h5", "ck-4.h5"]
    assert ckpt.best == 0.5


def test_model_checkpoint_best_file_holds_the_best_model(tmp_path):
    path = tmp_path / "sub" / "best.h5"  # missing folders are created
    ckpt = cbs.ModelCheckpoint(str(path), monitor="score", mode="max", save_best_only=True)
    model, _, record = _fit_with_scores([0.1, 0.9, 0.5, 0.95, 0.2], ckpt)
    assert _listing(tmp_path / "sub") == ["best.h5"]  # no temporary files left
    loaded = deepkit.load_model(str(path))
    _assert_weights_equal(loaded.get_weights(), record.weights[3])
    assert loaded.optimizer.iterations == 4 * 4  # 4 epochs of 4 batches


def test_model_checkpoint_initial_value_threshold(tmp_path):
    ckpt = cbs.ModelCheckpoint(str(tmp_path / "ck-{epoch}.h5"), monitor="score", mode="min",
                               save_best_only=True, save_weights_only=True,
                               initial_value_threshold=1.5)
    _fit_with_scores([3, 2, 1, 1.2], ckpt)
    assert _listing(tmp_path) == ["ck-3.h5"]


def test_model_checkpoint_every_n_batches(tmp_path):
    ckpt = cbs.ModelCheckpoint(str(tmp_path / "b-{epoch}-{batch}.h5"), save_freq=3,
                               save_weights_only=True)
    model = _net()
    x, y = _data()
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[ckpt])  # 4 batches/epoch
    assert _listing(tmp_path) == ["b-1-3.h5", "b-2-2.h5"]


def test_model_checkpoint_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "w.h5"
    ckpt = cbs.ModelCheckpoint(str(path), save_weights_only=True)
    model = _net()
    x, y = _data()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[ckpt])
    before = path.read_bytes()

    def broken(group, model):
        group.create_dataset("partial", data=np.zeros(3))
        raise OSError("disk full")
    monkeypatch.setattr(deepkit.saving, "_write_weights", broken)
    with pytest.raises(OSError, match="disk full"):
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[ckpt])
    assert _listing(tmp_path) == ["w.h5"]
    assert path.read_bytes() == before


def test_model_checkpoint_errors(tmp_path):
    x, y = _data()
    model = _net()
    with pytest.raises(ValueError, match=r"monitor='val_loss'.*the logs have: loss"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[
            cbs.ModelCheckpoint(str(tmp_path / "a.h5"), save_best_only=True)])
    with pytest.raises(ValueError, match=r"cannot fill in filepath.*'val_acc'.*epoch"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[
            cbs.ModelCheckpoint(str(tmp_path / "{val_acc:.2f}.h5"))])
    with pytest.raises(IsADirectoryError, match="existing folder"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[cbs.ModelCheckpoint(str(tmp_path))])
    with pytest.raises(ValueError, match="Received: save_freq='batch'"):
        cbs.ModelCheckpoint("a.h5", save_freq="batch")
    assert _listing(tmp_path) == []


# -- ReduceLROnPlateau and LearningRateScheduler -----------------------------------------

def test_reduce_lr_on_plateau_lowers_the_rate_down_to_min_lr():
    model = _net(optimizer=optimizers.SGD(0.1))
    rl = cbs.ReduceLROnPlateau(monitor="score", mode="min", factor=0.5, patience=1,
                               min_lr=0.02)
    _, history, _ = _fit_with_scores([1.0] * 6, rl, model=model)
    assert history.history["learning_rate"] == [0.1, 0.1, 0.05, 0.025, 0.02, 0.02]
    assert model.optimizer.lr == 0.02


def test_reduce_lr_on_plateau_cooldown_and_improvements():
    model = _net(optimizer=optimizers.SGD(0.1))
    rl = cbs.ReduceLROnPlateau(monitor="score", mode="min", factor=0.5, patience=1,
                               cooldown=2)
    _, history, _ = _fit_with_scores([1.0] * 7, rl, model=model)
    # reductions at epochs 1, 3 and 5: each followed by a cooldown of 2 epochs
    assert history.history["learning_rate"] == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125]
    model = _net(optimizer=optimizers.SGD(0.1))
    rl = cbs.ReduceLROnPlateau(monitor="score", mode="min", factor=0.5, patience=2,
                               min_delta=0.1)
    _fit_with_scores([1.0, 0.8, 0.75, 0.72, 0.5], rl, model=model)
    assert model.optimizer.lr == 0.05  # 0.75 and 0.72 are within min_delta of 0.8


def test_reduce_lr_on_plateau_rate_is_used_by_training():
    # after the reduction to 0 ... min_lr=0 and factor tiny: weights stop moving
    model = _net(optimizer=optimizers.SGD(0.05))
    rl = cbs.ReduceLROnPlateau(monitor="score", mode="min", factor=1e-30, patience=1)
    _, _, record = _fit_with_scores([1.0, 1.0, 1.0, 1.0], rl, model=model)
    assert _weights_differ(record.weights[0], record.weights[1])
    for a, b in zip(record.weights[2], record.weights[3]):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-20)


def test_reduce_lr_on_plateau_errors():
    with pytest.raises(ValueError, match="Received: factor=1.5"):
        cbs.ReduceLROnPlateau(factor=1.5)
    with pytest.raises(ValueError, match="Received: cooldown=-2"):
        cbs.ReduceLROnPlateau(cooldown=-2)
    schedule = deepkit.schedules.ExponentialDecay(0.1, 10, 0.5)
    model = _net(optimizer=optimizers.SGD(schedule))
    x, y = _data()
    with pytest.raises(ValueError, match="learning rate is a schedule"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[cbs.ReduceLROnPlateau(monitor="loss")])
    model = _net()
    with pytest.raises(ValueError, match=r"monitor='val_loss'.*validation_data"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[cbs.ReduceLROnPlateau()])


def test_learning_rate_scheduler_sets_the_rate_each_epoch():
    model = _net(optimizer=optimizers.SGD(0.1))
    seen = []

    def schedule(epoch, lr):
        seen.append((epoch, lr))
        return lr if epoch == 0 else lr / 2
    x, y = _data()
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0,
                        callbacks=[cbs.LearningRateScheduler(schedule)])
    assert seen == [(0, 0.1), (1, 0.1), (2, 0.05)]
    assert history.history["learning_rate"] == [0.1, 0.05, 0.025]


def test_learning_rate_scheduler_one_argument_form_drives_training():
    model = _net(optimizer=optimizers.SGD(0.1))
    record = _Record()
    x, y = _data()
    model.fit(x, y, batch_size=16, epochs=3, verbose=0,
              callbacks=[cbs.LearningRateScheduler(lambda epoch: 0.05 if epoch == 0 else 0),
                         record])
    assert _weights_differ(model.get_weights(), _net().get_weights())
    _assert_weights_equal(record.weights[0], record.weights[2])  # rate 0 from epoch 1 on


def test_learning_rate_scheduler_errors():
    with pytest.raises(TypeError, match="Received: schedule=0.1"):
        cbs.LearningRateScheduler(0.1)
    x, y = _data()
    with pytest.raises(ValueError, match=r"schedule\(epoch=0\).*'fast'"):
        _net().fit(x, y, epochs=1, verbose=0,
                   callbacks=[cbs.LearningRateScheduler(lambda e, lr: "fast")])
    model = _net(optimizer=optimizers.SGD(deepkit.schedules.ExponentialDecay(0.1, 10, 0.5)))
    with pytest.raises(ValueError, match="learning rate is a schedule"):
        model.fit(x, y, epochs=1, verbose=0,
                  callbacks=[cbs.LearningRateScheduler(lambda e, lr: lr)])


# -- CSVLogger ------------------------------------------------------------------------

def _rows(path, sep=","):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter=sep))


def test_csv_logger_writes_one_row_per_epoch(tmp_path):
    path = tmp_path / "log.csv"
    x, y = _data()
    model = _net()
    rows_seen = []

    class Peek(cbs.Callback):  # runs after CSVLogger: the row must be on disk already
        def on_epoch_end(self, epoch, logs=None):
            rows_seen.append(len(_rows(path)))
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0, validation_data=(x, y),
                        callbacks=[cbs.CSVLogger(str(path)), Peek()])
    rows = _rows(path)
    assert rows[0] == ["epoch", "loss", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    assert [float(r[1]) for r in rows[1:]] == history.history["loss"]
    assert [float(r[2]) for r in rows[1:]] == history.history["val_loss"]
    assert rows_seen == [2, 3, 4]


def test_csv_logger_separator_and_append(tmp_path):
    path = tmp_path / "log.tsv"
    x, y = _data()
    model = _net()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[cbs.CSVLogger(str(path), separator="\t")])
    model.fit(x, y, epochs=1, verbose=0,
              callbacks=[cbs.CSVLogger(str(path), separator="\t", append=True)])
    rows = _rows(path, "\t")
    assert rows[0] == ["epoch", "loss"] and [r[0] for r in rows[1:]] == ["0", "1", "0"]
    model.fit(x, y, epochs=1, verbose=0, callbacks=[cbs.CSVLogger(str(path), separator="\t")])
    assert len(_rows(path, "\t")) == 2  # without append the file starts afresh
    with pytest.raises(ValueError, match="Received: separator=';;'"):
        cbs.CSVLogger("a.csv", separator=";;")


# -- TerminateOnNaN ---------------------------------------------------------------------

# the engine's numpy kernels warn about the overflows these tests provoke
nan_warnings = pytest.mark.filterwarnings("ignore::RuntimeWarning")

def _poisoned(batch, batch_size=8):
    x, y = _data()
    x = x.copy()
    x[batch * batch_size + 3, 1] = np.nan
    return x, y


@nan_warnings
def test_terminate_on_nan_stops_at_the_first_bad_batch(capsys):
    x, y = _poisoned(batch=2)
    model = _net()
    tn = cbs.TerminateOnNaN()
    history = model.fit(x, y, batch_size=8, epochs=5, shuffle=False, verbose=0, callbacks=[tn])
    assert len(history.epoch) == 1
    assert (tn.nan_epoch, tn.nan_batch) == (0, 2)
    assert "batch 2: invalid loss nan, terminating training" in capsys.readouterr().out
    assert tn.nan_layer is None  # no debugging asked for


@nan_warnings
def test_terminate_on_nan_raise_error():
    x, y = _poisoned(batch=5)
    with pytest.raises(RuntimeError, match="Epoch 1, batch 5: invalid loss"):
        _net().fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0,
                   callbacks=[cbs.TerminateOnNaN(raise_error=True)])


@nan_warnings
def test_terminate_on_nan_leaves_finite_training_alone():
    x, y = _data()
    tn = cbs.TerminateOnNaN(debug=True)
    history = _net().fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[tn])
    assert len(history.epoch) == 2 and tn.report is None


@nan_warnings
def test_terminate_on_nan_debug_names_the_overflowing_layer(capsys):
    # 'big' has finite weights but overflows float32 on ordinary inputs:
    # each of its outputs is 1e38 * 8 * (sum(x) + 1)
    deepkit.set_seed(0)
    inp = deepkit.Input(shape=(D,), name="x")
    h = layers.Dense(8, name="first", kernel_initializer="ones", bias_initializer="ones")(inp)
    h = layers.Dense(8, name="big", kernel_initializer=initializers.Constant(1e38))(h)
    out = layers.Dense(1, name="out")(h)
    model = deepkit.Model(inp, out, name="overflow")
    model.compile(optimizers.SGD(0.01), "mse")
    model.get_weights()  # initialized before fit: the weights before batch 0 are known
    x, y = _data()
    tn = cbs.TerminateOnNaN(debug=True)
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[tn])
    assert (tn.nan_epoch, tn.nan_batch, tn.nan_layer) == (0, 0, "big")
    report = capsys.readouterr().out
    assert "layer 'big' (Dense) is the first to produce a non-finite value" in report
    assert "its input is finite" in report
    assert report == tn.report + "\n"


@nan_warnings
def test_terminate_on_nan_debug_reports_bad_input_data():
    x, y = _poisoned(batch=3)
    model = _net()
    tn = cbs.TerminateOnNaN(debug=True)
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[tn])
    assert tn.nan_batch == 3 and tn.nan_layer == "hidden"
    assert "input 'x' of the batch: 1 of 32 values non-finite (1 NaN, 0 inf)" in tn.report


@nan_warnings
def test_terminate_on_nan_debug_when_every_layer_is_finite():
    x, y = _data()
    y = y.copy()
    y[20] = np.inf
    tn = cbs.TerminateOnNaN(debug=True)
    _net().fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[tn])
    assert tn.nan_batch == 2 and tn.nan_layer is None
    assert "label 'out' of the batch: 1 of 8 values non-finite (0 NaN, 1 inf)" in tn.report
    assert "every layer output is finite" in tn.report


@nan_warnings
def test_terminate_on_nan_debug_sees_weights_that_diverged_earlier():
    class Diverge(cbs.Callback):  # an update that overflowed, as a huge step would
        def on_train_batch_end(self, batch, logs=None):
            if batch == 0:
                layer = self.model.get_layer("out")
                weight, bias = layer.get_weights()
                layer.set_weights([np.full_like(weight, np.inf), bias])
    x, y = _data()
    model = _net()
    model.get_weights()
    tn = cbs.TerminateOnNaN(debug=True)
    model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0,
              callbacks=[tn, Diverge()])
    assert (tn.nan_batch, tn.nan_layer) == (1, "out")
    assert ("weights were already non-finite before this batch (an earlier update "
            "diverged: lower the learning rate or clip gradients): out_weight: 8 of 8 values "
            "non-finite (0 NaN, 8 inf)") in tn.report


@nan_warnings
def test_terminate_on_nan_exact_batch_with_many_batches():
    # 200 batches: without per-batch logs fit would log only every 10th batch
    x, y = _data(n=1600)
    x[8 * 123 + 1, 0] = np.inf
    tn = cbs.TerminateOnNaN()
    _net().fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[tn])
    assert tn.nan_batch == 123


# -- BackupAndRestore -----------------------------------------------------------------

class _Interrupt(cbs.Callback):
    def __init__(self, epoch, hook="on_epoch_begin", batch=None):
        super().__init__()
        self.epoch, self.hook, self.batch = epoch, hook, batch
        self._current = None

    def on_epoch_begin(self, epoch, logs=None):
        self._current = epoch
        if self.hook == "on_epoch_begin" and epoch == self.epoch:
            raise KeyboardInterrupt("interrupted")

    def on_train_batch_end(self, batch, logs=None):
        if self.hook == "batch" and self._current == self.epoch and batch == self.batch:
            raise KeyboardInterrupt("interrupted")

    def on_epoch_end(self, epoch, logs=None):
        if self.hook == "on_epoch_end" and epoch == self.epoch:
            raise KeyboardInterrupt("interrupted")


class _Stateful(cbs.Callback):
    """A user callback with awkward state: tuples, int keys, numpy scalars, NaN, big ints."""

    def __init__(self):
        super().__init__()
        self.state = {"count": 0}

    def on_epoch_end(self, epoch, logs=None):
        self.state = {"count": self.state["count"] + 1, "pair": (epoch, "x"),
                      "by_epoch": {epoch: np.float32(epoch) / 3}, "nan": float("nan"),
                      "big": 2 ** 100 + epoch, "flags": np.array([True, False]),
                      "__dict__": "reserved key"}

    def get_state(self):
        return self.state

    def set_state(self, state):
        self.state = state


def _training_run(tmp_path, interrupt=None, epochs=6):
    """A model with dropout, shuffling, a validation split and Adam, with stateful callbacks."""
    model = _net(seed=3, dropout=0.3, optimizer=optimizers.Adam(0.01))
    x, y = _data(seed=1)
    callbacks = [cbs.EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True),
                 cbs.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=10.0),
                 cbs.CSVLogger(str(tmp_path / "log.csv")), _Stateful()]
    if interrupt is not None:
        callbacks.append(interrupt)
    callbacks.append(cbs.BackupAndRestore(str(tmp_path / "backup")))
    history = model.fit(x, y, batch_size=16, epochs=epochs, verbose=0, validation_split=0.25,
                        callbacks=callbacks)
    return model, history, callbacks


@pytest.mark.parametrize("interrupt", [
    _Interrupt(3),
    _Interrupt(2, hook="batch", batch=1),  # mid-epoch: resumes from the epoch before
    _Interrupt(4, hook="on_epoch_end"),  # after CSVLogger wrote a row the backup lacks
], ids=["epoch-begin", "mid-epoch", "epoch-end"])
def test_backup_and_restore_resumes_bit_identical(tmp_path, interrupt):
    plain = tmp_path / "plain"
    resumed = tmp_path / "resumed"
    plain.mkdir()
    resumed.mkdir()
    model_a, history_a, cbs_a = _training_run(plain)
    with pytest.raises(KeyboardInterrupt):
        _training_run(resumed, interrupt=interrupt)
    assert os.path.exists(resumed / "backup" / "backup.h5")
    model_b, history_b, cbs_b = _training_run(resumed)
    _assert_weights_equal(model_b.get_weights(), model_a.get_weights())
    assert model_b.optimizer.iterations == model_a.optimizer.iterations
    a_state, b_state = model_a.optimizer.get_state(), model_b.optimizer.get_state()
    for name, arrays in a_state["states"].items():
        _assert_weights_equal(b_state["states"][name], arrays)
    assert history_b.history == history_a.history  # the earlier epochs included
    assert history_b.epoch == list(range(6))
    assert (tmp_path / "resumed" / "log.csv").read_text() == (plain / "log.csv").read_text()
    assert model_b.optimizer.lr == model_a.optimizer.lr < 0.01  # ReduceLROnPlateau's cuts
    assert cbs_b[0].best_epoch == cbs_a[0].best_epoch
    restored = cbs_b[-1].restored_epoch
    assert restored == {"on_epoch_begin": 3, "batch": 2, "on_epoch_end": 4}[interrupt.hook]
    state = cbs_b[3].state
    assert state["count"] == 6 and state["pair"] == (5, "x") and state["big"] == 2 ** 100 + 5
    assert state["by_epoch"] == {5: np.float32(5) / 3} and np.isnan(state["nan"])
    np.testing.assert_array_equal(state["flags"], [True, False])
    # completed: the backup (and its now empty folder) is gone
    assert not os.path.exists(resumed / "backup")


def test_backup_and_restore_without_the_engine_rng_would_differ(tmp_path, monkeypatch):
    # control for the test above: the dropout masks depend on the restored generator
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    model_a, _, _ = _training_run(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        _training_run(tmp_path / "b", interrupt=_Interrupt(3))
    monkeypatch.setattr(cbs.BackupAndRestore, "_set_engine_rng_state", lambda self, s: None)
    model_b, _, _ = _training_run(tmp_path / "b")
    assert _weights_differ(model_b.get_weights(), model_a.get_weights())


def test_backup_and_restore_deletes_the_backup_on_completion(tmp_path):
    folder = tmp_path / "bk"
    seen = []

    class Look(cbs.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(os.path.exists(folder / "backup.h5"))
    x, y = _data()
    _net().fit(x, y, epochs=3, verbose=0, callbacks=[cbs.BackupAndRestore(str(folder)), Look()])
    # Look runs before the backup of its epoch: the file exists from the 2nd epoch on
    assert seen == [False, True, True]
    assert not folder.exists()
    keep = cbs.BackupAndRestore(str(folder), delete_checkpoint=False)
    _net().fit(x, y, epochs=1, verbose=0, callbacks=[keep])
    assert _listing(folder) == ["backup.h5"]


def test_backup_and_restore_finished_run_starts_nothing(tmp_path):
    x, y = _data()
    keep = cbs.BackupAndRestore(str(tmp_path), delete_checkpoint=False)
    _net().fit(x, y, epochs=2, verbose=0, callbacks=[keep])
    model = _net()
    history = model.fit(x, y, epochs=2, verbose=0,
                        callbacks=[cbs.BackupAndRestore(str(tmp_path))])
    assert history.epoch == [0, 1]  # restored History; no epoch was trained again
    assert model.optimizer.iterations == 2 * 2


def test_backup_and_restore_rejects_a_different_model(tmp_path):
    x, y = _data()
    with pytest.raises(KeyboardInterrupt):
        _net().fit(x, y, epochs=3, verbose=0,
                   callbacks=[cbs.BackupAndRestore(str(tmp_path)), _Interrupt(1)])
    deepkit.set_seed(0)
    inp = deepkit.Input(shape=(D,), name="x")
    out = layers.Dense(1, name="other")(inp)
    other = deepkit.Model(inp, out, name="other_net")
    other.compile(optimizers.SGD(0.1), "mse")
    with pytest.raises(DeepkitError, match=r"(?s)does not match.*'other_weight' is not in the "
                                           r"backup.*'hidden_weight' is in the backup"):
        other.fit(x, y, epochs=3, verbose=0, callbacks=[cbs.BackupAndRestore(str(tmp_path))])
    with pytest.raises(DeepkitError, match="optimizer is SGD, the model's Adam"):
        _net(optimizer=optimizers.Adam()).fit(
            x, y, epochs=3, verbose=0, callbacks=[cbs.BackupAndRestore(str(tmp_path))])


def test_backup_and_restore_rejects_unsaveable_state(tmp_path):
    class Bad(cbs.Callback):
        def get_state(self):
            return {"handle": object()}
    x, y = _data()
    with pytest.raises(TypeError, match=r"cannot save the object at state.callbacks.Bad#0"):
        _net().fit(x, y, epochs=1, verbose=0,
                   callbacks=[cbs.BackupAndRestore(str(tmp_path)), Bad()])
    assert not any(name.startswith(".tmp") for name in os.listdir(tmp_path))


def test_backup_and_restore_arguments():
    with pytest.raises(ValueError, match="Received: backup_dir=''"):
        cbs.BackupAndRestore("")
    with pytest.raises(ValueError, match="Received: save_freq=10"):
        cbs.BackupAndRestore("b", save_freq=10)


def test_history_plot_writes_a_png(tmp_path):
    model = deepkit.Sequential([layers.Dense(2, activation="softmax", input_shape=(3,))])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    history = model.fit(x, y, batch_size=8, epochs=3, validation_split=0.25, verbose=0)
    path = history.plot(tmp_path / "curves.png")
    data = (tmp_path / "curves.png").read_bytes()
    assert str(path).endswith("curves.png") and data[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]
