"""The overridable steps: fit/evaluate/predict and the *_on_batch methods all run through them."""
import io

import numpy as np
import pytest

import deepkit
from deepkit import callbacks as cbs
from deepkit import layers as L
from deepkit.trainer import Logs, Trainer, unpack_x_y_sample_weight
from deepkit_engine import nd


def _data(n=96, d=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x[:, 0] - x[:, 1] > 0).astype(np.int64)
    return x, y


def _layers(d=6):
    inp = deepkit.Input(shape=(d,), name="x")
    hidden = L.Dense(8, activation="tanh", name="hidden")(inp)
    return inp, L.Dense(2, activation="softmax", name="out")(hidden)


class CountingModel(deepkit.Model):
    """Counts every step call and what it was given."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = {"train": [], "test": [], "predict": []}

    def train_step(self, data):
        x, y, sw = unpack_x_y_sample_weight(data)
        self.calls["train"].append((len(x), y is not None, sw is not None))
        return super().train_step(data)

    def test_step(self, data):
        self.calls["test"].append(len(data[0]))
        return super().test_step(data)

    def predict_step(self, data):
        self.calls["predict"].append(len(unpack_x_y_sample_weight(data)[0]))
        return super().predict_step(data)


def _counting(optimizer="sgd"):
    inp, out = _layers()
    model = CountingModel(inp, out)
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_model_inherits_the_trainer_api():
    assert issubclass(deepkit.Model, Trainer) and issubclass(deepkit.Sequential, Trainer)
    for name in ("train_step", "test_step", "predict_step", "fit", "evaluate", "predict",
                 "train_on_batch", "test_on_batch", "predict_on_batch"):
        assert callable(getattr(deepkit.Model, name))


def test_every_entry_point_runs_through_the_steps():
    x, y = _data()
    model = _counting()
    sw = np.ones(len(x), np.float32)
    model.fit(x, y, batch_size=32, epochs=2, verbose=0, sample_weight=sw,
              validation_data=(x[:40], y[:40]))
    assert model.calls["train"] == [(32, True, True)] * 6
    assert model.calls["test"] == [32, 8] * 2  # validation after each epoch
    model.evaluate(x, y, batch_size=50)
    model.predict(x, batch_size=64)
    model.train_on_batch(x[:10], y[:10])
    model.test_on_batch(x[:7], y[:7])
    model.predict_on_batch(x[:5])
    assert model.calls["train"][-1] == (10, True, False)
    assert model.calls["test"][-3:] == [50, 46, 7]
    assert model.calls["predict"] == [64, 32, 5]


def test_a_custom_train_step_trains_with_callbacks_and_progress_intact():
    class ClippedModel(deepkit.Model):
        """Clips every gradient to [-c, c] and logs the largest gradient seen."""

        def __init__(self, *args, clip=0.01, **kwargs):
            super().__init__(*args, **kwargs)
            self.clip = clip
            self.largest = deepkit.metrics.Mean(name="largest_grad")

        def train_step(self, data):
            x, y, sample_weight = unpack_x_y_sample_weight(data)
            exe = self.bind_step("train", x, y, sample_weight)
            exe.forward(is_train=True)
            exe.backward()
            grads = self.step_gradients(exe)
            self.largest.update(nd.max(nd.stack(*[nd.max(nd.abs(g)) for _, g in grads])))
            self.optimizer.apply([(p, nd.clip(g, -self.clip, self.clip)) for p, g in grads])
            logs = dict(self.update_metrics(exe))
            logs["largest_grad"] = self.largest.result
            return Logs(logs)

    x, y = _data()
    inp, out = _layers()
    model = ClippedModel(inp, out, clip=0.01)
    model.compile(deepkit.optimizers.SGD(1.0), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    before = [w.copy() for w in model.get_weights()]
    seen = []

    class Watch(cbs.Callback):
        requires_batch_logs = True

        def on_train_batch_end(self, batch, logs=None):
            seen.append(logs)

    stream = io.StringIO()
    progress = cbs.ProgbarLogger(verbose=2, stream=stream)
    history = model.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[Watch(), progress])
    after = model.get_weights()
    # SGD with lr 1 moves each weight by its clipped gradient: at most 0.01 per step
    for b, a in zip(before, after):
        assert np.max(np.abs(a - b)) <= 0.01 * 6 + 1e-6
        assert np.max(np.abs(a - b)) > 0
    assert len(seen) == 6 and all({"loss", "accuracy", "largest_grad"} <= set(s) for s in seen)
    assert history.history["largest_grad"][0] > 0.01  # the clip did matter
    assert "largest_grad" in stream.getvalue() and stream.getvalue().count("Epoch") == 2


def test_a_custom_test_step_changes_what_evaluate_reports():
    class DoubledLoss(deepkit.Model):
        def test_step(self, data):
            logs = super().test_step(data)
            return {"loss": logs["loss"] * 2, "accuracy": logs["accuracy"]}

    x, y = _data()
    inp, out = _layers()
    plain = deepkit.Model(inp, out)
    plain.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    doubled = DoubledLoss(inp, out)
    doubled.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    loss, acc = plain.evaluate(x, y, batch_size=96)
    loss2, acc2 = doubled.evaluate(x, y, batch_size=96)
    assert loss2 == pytest.approx(2 * loss) and acc2 == acc


def test_a_custom_predict_step_changes_predict():
    class ArgMax(deepkit.Model):
        def predict_step(self, data):
            probs = super().predict_step(data)[0]
            return [nd.argmax(probs, axis=1)]

    x, _ = _data()
    inp, out = _layers()
    model = ArgMax(inp, out)
    plain = deepkit.Model(inp, out).predict(x, batch_size=40)
    np.testing.assert_array_equal(model.predict(x, batch_size=40), plain.argmax(axis=1))


def test_the_steps_queue_work_and_the_loop_reads_logs_only_when_asked():
    x, y = _data()
    model = _counting()
    reads = []

    class Spy(deepkit.metrics.Mean):
        def result(self):
            reads.append(1)
            return super().result()

    model.loss_tracker = Spy(name="loss")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    # 12 batches, and the logs were read at the end of the epoch, not once per batch
    assert len(model.calls["train"]) == 12 and len(reads) <= 3


def test_logs_are_read_once_and_on_demand():
    calls = []
    logs = Logs({"a": lambda: calls.append("a") or 1.0, "b": 2.0})
    assert calls == [] and list(logs) == ["a", "b"] and len(logs) == 2
    assert logs["a"] == 1.0 and logs["a"] == 1.0 and logs["b"] == 2.0
    assert calls == ["a"] and dict(logs) == {"a": 1.0, "b": 2.0}


@pytest.mark.parametrize("data, expected", [
    ("x", ("x", None, None)), (("x",), ("x", None, None)), (("x", "y"), ("x", "y", None)),
    (["x", "y", "w"], ("x", "y", "w"))])
def test_unpack_x_y_sample_weight(data, expected):
    assert unpack_x_y_sample_weight(data) == expected
    assert deepkit.utils.unpack_x_y_sample_weight(data) == expected


def test_unpack_refuses_a_four_tuple():
    with pytest.raises(ValueError, match="x, \\(x, y\\) or \\(x, y, sample_weight\\)"):
        unpack_x_y_sample_weight((1, 2, 3, 4))


def test_reduce_gradients_is_the_seam_between_backward_and_the_update():
    class Halved(deepkit.Model):
        def reduce_gradients(self, grads):
            return [(p, g * 0.5) for p, g in grads]

    x, y = _data()
    inp, out = _layers()
    deepkit.set_seed(5)
    full = deepkit.Model(inp, out)
    full.compile(deepkit.optimizers.SGD(0.2), "sparse_categorical_crossentropy")
    start = full.get_weights()
    full.train_on_batch(x, y)
    moved_full = [a - b for a, b in zip(full.get_weights(), start)]
    half = Halved(inp, out)  # shares the layers: reset the weights first
    half.compile(deepkit.optimizers.SGD(0.2), "sparse_categorical_crossentropy")
    half.set_weights(start)
    half.train_on_batch(x, y)
    moved_half = [a - b for a, b in zip(half.get_weights(), start)]
    for a, b in zip(moved_full, moved_half):
        np.testing.assert_allclose(b, a * 0.5, rtol=1e-5, atol=1e-7)
