"""Data-parallel training on several devices of one process: the same result as one device."""
import numpy as np
import pytest

import deepkit
import deepkit_engine as dk
from deepkit import layers, models
from deepkit.trainer import parallel
from deepkit.trainer.data import unpack_x_y_sample_weight

TWO = [dk.cpu(0), dk.cpu(1)]


def _data(n=160, features=10, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    y = rng.integers(0, classes, n)
    return x, y


def _mlp(optimizer, batchnorm=False, dropout=False, cls=models.Sequential, synchronized=False):
    deepkit.set_seed(3)
    stack = [layers.Input(shape=(10,)), layers.Dense(16, activation="relu")]
    if batchnorm:
        stack.append(layers.BatchNormalization(synchronized=synchronized))
    if dropout:
        stack.append(layers.Dropout(0.5))
    stack.append(layers.Dense(3, activation="softmax"))
    model = cls(stack)
    model.compile(optimizer, "sparse_categorical_crossentropy", ["accuracy"])
    return model


def _fit_both(make_optimizer, devices=TWO, batch_size=32, steps=20, **kw):
    x, y = _data()
    runs = []
    for devs in (None, devices):
        model = _mlp(make_optimizer(), **kw)
        deepkit.set_seed(11)  # the same shuffling order in both runs
        epochs = -(-steps * batch_size // len(x))
        history = model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0,
                            devices=devs)
        runs.append((model, history))
    return runs


def _assert_same_weights(a, b, atol):
    assert [p.shape for p in a.weights] == [p.shape for p in b.weights]
    for pa, pb in zip(a.weights, b.weights):
        np.testing.assert_allclose(pb.data.asnumpy(), pa.data.asnumpy(), atol=atol, rtol=0,
                                   err_msg=pa.name)


@pytest.mark.parametrize("make_optimizer", [
    lambda: deepkit.optimizers.SGD(0.1, momentum=0.9),
    lambda: deepkit.optimizers.Adam(0.01),
], ids=["sgd_momentum", "adam"])
def test_two_devices_train_as_one(make_optimizer):
    (one, h1), (two, h2) = _fit_both(make_optimizer)
    _assert_same_weights(one, two, 1e-6)
    np.testing.assert_allclose(h2.history["loss"], h1.history["loss"], rtol=1e-6)
    assert h2.history["accuracy"] == h1.history["accuracy"]
    # the replica really ran: it holds its own executors on the second device
    assert two.executors(dk.cpu(1)).replica and two.executors(dk.cpu(1))._executors


def test_uneven_split_spreads_the_remainder():
    """33 rows over 2 devices and 160 rows (last batch 28) over 3: nothing dropped or doubled."""
    make = lambda: deepkit.optimizers.SGD(0.05, momentum=0.5)  # noqa: E731
    (one, _), (two, _) = _fit_both(make, batch_size=33, steps=8)
    _assert_same_weights(one, two, 1e-6)
    (one, _), (three, _) = _fit_both(make, devices=[dk.cpu(0), dk.cpu(1), dk.cpu(2)],
                                     batch_size=12, steps=14)
    _assert_same_weights(one, three, 1e-6)


def test_batch_smaller_than_the_device_count():
    x, y = _data(n=5)
    one, two = _mlp("sgd"), _mlp("sgd")
    for model, devs in ((one, None), (two, [dk.cpu(0), dk.cpu(1), dk.cpu(2)])):
        deepkit.set_seed(5)  # the same initial weights
        model.fit(x, y, batch_size=2, epochs=2, shuffle=False, verbose=0, devices=devs)
    _assert_same_weights(one, two, 1e-6)  # the last batch of 1 row runs on one device


def test_evaluate_and_predict_split_over_devices():
    x, y = _data(n=101)
    model = _mlp("adam")
    model.fit(x, y, batch_size=25, epochs=1, verbose=0)
    single = model.evaluate(x, y, batch_size=25, return_dict=True)
    split = model.evaluate(x, y, batch_size=25, return_dict=True, devices=TWO)
    assert split["accuracy"] == single["accuracy"]
    assert split["loss"] == pytest.approx(single["loss"], rel=1e-6)
    np.testing.assert_allclose(model.predict(x, batch_size=25, devices=TWO),
                               model.predict(x, batch_size=25), atol=1e-6)


def test_ctx_list_is_accepted_as_in_mxnet():
    x, y = _data()
    model = _mlp("sgd")
    model.fit(x, y, batch_size=40, epochs=1, verbose=0, ctx=TWO)
    assert model.devices == TWO and model.device == dk.cpu(0)
    model.compile("sgd", "sparse_categorical_crossentropy", ctx=[dk.cpu(1), dk.cpu(0)])
    assert model.device == dk.cpu(1)
    assert all(p.data.ctx == dk.cpu(0) for p in model.weights)  # the weights stay put


def test_batchnorm_moving_statistics_are_averaged_over_devices():
    """Per-device batch statistics (MXNet's default); the moving mean is their weighted mean."""
    x, _ = _data(n=8)
    y = np.zeros(8, np.int64)
    model = _mlp(deepkit.optimizers.SGD(0.0), batchnorm=True)
    model.train_on_batch(x[:4], y[:4])  # builds; lr 0 keeps the weights
    before = {p.name: p.data.asnumpy() for p in model.weights if p.aux}
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, devices=TWO)
    dense, bn = model.get_layer("dense"), model.get_layer("batch_normalization")
    weight, bias = (p.data.asnumpy() for p in dense.weights)  # (units, features): engine layout
    hidden = np.maximum(x @ weight.T + bias, 0)
    momentum = bn.momentum
    mean_name = [n for n in before if "mean" in n][0]
    part_means = [hidden[:4].mean(axis=0), hidden[4:].mean(axis=0)]
    expected = before[mean_name] * momentum + np.mean(part_means, axis=0) * (1 - momentum)
    got = {p.name: p.data.asnumpy() for p in model.weights if p.aux}[mean_name]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # the replica uses the averaged statistics in its next pass
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, devices=TWO)
    replica = model.executors(dk.cpu(1))
    replica.pull_weights()
    np.testing.assert_allclose(replica._copies[mean_name].asnumpy(),
                               {p.name: p.data.asnumpy() for p in model.weights}[mean_name])


@pytest.mark.parametrize("devices,batch_size", [(TWO, 32), ([dk.cpu(0), dk.cpu(1), dk.cpu(2)], 33)],
                         ids=["two_even", "three_uneven"])
def test_synchronized_batchnorm_trains_as_one_device(devices, batch_size):
    """Global batch statistics: weights, moving statistics and losses equal one device's."""
    make = lambda: deepkit.optimizers.SGD(0.1, momentum=0.9)  # noqa: E731
    (one, h1), (many, h2) = _fit_both(make, devices=devices, batch_size=batch_size,
                                      batchnorm=True, synchronized=True)
    _assert_same_weights(one, many, 1e-6)
    np.testing.assert_allclose(h2.history["loss"], h1.history["loss"], rtol=1e-6)
    # without synchronisation the per-device statistics make the runs differ
    (one, _), (plain, _) = _fit_both(make, devices=devices, batch_size=batch_size,
                                     batchnorm=True)
    assert max(np.abs(a.data.asnumpy() - b.data.asnumpy()).max()
               for a, b in zip(one.weights, plain.weights)) > 1e-4


def test_synchronized_batchnorm_round_trips_its_config():
    layer = layers.BatchNormalization(synchronized=True)
    assert layers.BatchNormalization.from_config(layer.get_config()).synchronized


def test_custom_train_step_runs_unchanged_on_several_devices():
    class Clipped(models.Sequential):
        def train_step(self, data):
            x, y, sw = unpack_x_y_sample_weight(data)
            exe = self.bind_step("train", x, y, sw)
            exe.forward(is_train=True)
            exe.backward()
            grads = self.step_gradients(exe)
            self.optimizer.apply([(p, dk.nd.clip(g, -0.01, 0.01)) for p, g in grads])
            return self.update_metrics(exe)

    x, y = _data()
    one = _mlp(deepkit.optimizers.SGD(0.1), cls=Clipped)
    two = _mlp(deepkit.optimizers.SGD(0.1), cls=Clipped)
    for model, devs in ((one, None), (two, TWO)):
        deepkit.set_seed(5)  # the same initial weights
        model.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0, devices=devs)
    _assert_same_weights(one, two, 1e-6)


def test_bad_device_lists_are_refused_with_the_reason():
    x, y = _data(n=10)
    model = _mlp("sgd")
    with pytest.raises(ValueError, match="empty list"):
        model.fit(x, y, devices=[], verbose=0)
    with pytest.raises(ValueError, match="twice"):
        model.fit(x, y, devices=[dk.cpu(0), dk.cpu(0)], verbose=0)
    with pytest.raises(ValueError, match="mixes device kinds"):
        model.fit(x, y, devices=[dk.cpu(0), dk.Context("gpu", 0)], verbose=0)
    with pytest.raises(ValueError, match="either as ctx= or as devices="):
        model.fit(x, y, ctx=dk.cpu(0), devices=TWO, verbose=0)


def test_split_sizes_and_take_rows():
    assert parallel.split_sizes(10, 3) == [4, 3, 3]
    assert parallel.split_sizes(2, 3) == [1, 1, 0]
    x = np.arange(12).reshape(6, 2)
    data = ({"a": x, "b": x * 2}, [x[:, 0]], None)
    part = parallel.take_rows(data, 2, 4)
    np.testing.assert_array_equal(part[0]["b"], x[2:4] * 2)
    np.testing.assert_array_equal(part[1][0], x[2:4, 0])
    assert part[2] is None
