"""FeedForward: MXNet semantics (init by name, rescale_grad, coupled wd, logs), fit
machinery reuse, predict/score, checkpoints, and the MXNet-style MNIST example."""
import logging
import os
import re
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from deepkit import callbacks as dk_callbacks
from deepkit.compat import mxnet as mx
from deepkit.compat.feedforward import FeedForward, load_checkpoint
from deepkit_engine import nd

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _blobs(n=240, d=8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x @ rng.normal(size=(d, classes))).argmax(1).astype(np.float32)
    return x, y


def _mlp(classes=3, bn=False):
    data = mx.sym.Variable("data")
    net = mx.sym.FullyConnected(data, num_hidden=16, name="fc1")
    if bn:
        net = mx.sym.BatchNorm(net, name="bn1")
    net = mx.sym.Activation(net, act_type="relu", name="relu1")
    net = mx.sym.FullyConnected(net, num_hidden=classes, name="fc2")
    return mx.sym.SoftmaxOutput(net, name="softmax")


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# -- initialization ------------------------------------------------------------------
def test_parameters_are_initialized_by_name_pattern():
    data = mx.sym.Variable("data")
    special = mx.sym.Variable("fc1_weight", init=mx.init.Constant(3.0))
    net = mx.sym.FullyConnected(data, weight=special, num_hidden=6, name="fc1")
    net = mx.sym.BatchNorm(net, name="bn1")
    net = mx.sym.FullyConnected(net, num_hidden=4, name="fc2")
    net = mx.sym.SoftmaxOutput(net, name="softmax")
    model = FeedForward(net, initializer=mx.init.Uniform(0.5))
    model.predict(np.zeros((2, 5), np.float32))
    arg = {k: v.asnumpy() for k, v in model.arg_params.items()}
    aux = {k: v.asnumpy() for k, v in model.aux_params.items()}
    assert sorted(arg) == ["bn1_beta", "bn1_gamma", "fc1_bias", "fc1_weight", "fc2_bias",
                           "fc2_weight"]
    assert sorted(aux) == ["bn1_moving_mean", "bn1_moving_var"]
    np.testing.assert_array_equal(arg["fc1_weight"], np.full((6, 5), 3.0))  # Variable(init=)
    w = arg["fc2_weight"]
    assert w.shape == (4, 6) and np.abs(w).max() <= 0.5 and np.abs(w).std() > 0.1
    for name in ("fc1_bias", "fc2_bias", "bn1_beta"):
        np.testing.assert_array_equal(arg[name], 0.0)
    np.testing.assert_array_equal(arg["bn1_gamma"], 1.0)
    np.testing.assert_array_equal(aux["bn1_moving_mean"], 0.0)
    np.testing.assert_array_equal(aux["bn1_moving_var"], 1.0)


def test_given_arg_params_are_used_and_unknown_names_rejected():
    x, _ = _blobs(n=4)
    net = _mlp()
    w1 = np.arange(16 * 8, dtype=np.float32).reshape(16, 8) / 100
    model = FeedForward(net, arg_params={"fc1_weight": nd.array(w1)})
    model.predict(x)
    np.testing.assert_array_equal(model.arg_params["fc1_weight"].asnumpy(), w1)
    with pytest.raises(ValueError, match="fc9_weight.*allow_extra_params"):
        FeedForward(net, arg_params={"fc9_weight": w1})
    model = FeedForward(net, arg_params={"fc9_weight": w1}, allow_extra_params=True)
    assert "fc9_weight" not in model.arg_params


def test_unknown_name_pattern_is_an_error_naming_the_parameter():
    net = mx.sym.SoftmaxOutput(mx.sym.Variable("data") * mx.sym.Variable("scale"),
                               name="softmax")
    model = FeedForward(net)
    with pytest.raises(ValueError, match="Unknown initialization pattern for 'scale'"):
        model.predict(np.zeros((2, 3), np.float32))


# -- the update rule -----------------------------------------------------------------
def test_one_sgd_step_uses_rescale_grad_and_coupled_weight_decay():
    rng = np.random.default_rng(3)
    n, d, k, lr, wd = 16, 5, 3, 0.5, 0.1
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = rng.integers(0, k, n).astype(np.float32)
    w0 = rng.normal(size=(k, d)).astype(np.float32)
    b0 = rng.normal(size=(k,)).astype(np.float32)
    net = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=k,
                                                     name="fc"), name="softmax")
    model = FeedForward(net, num_epoch=1, numpy_batch_size=n, learning_rate=lr, wd=wd,
                        arg_params={"fc_weight": w0, "fc_bias": b0})
    model.fit(x, y)
    grad = _softmax(x @ w0.T + b0) - np.eye(k)[y.astype(int)]  # SoftmaxOutput: summed loss
    w1 = w0 - lr * (grad.T @ x / n + wd * w0)
    b1 = b0 - lr * (grad.sum(0) / n)  # biases get no weight decay, as in MXNet
    np.testing.assert_allclose(model.arg_params["fc_weight"].asnumpy(), w1, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(model.arg_params["fc_bias"].asnumpy(), b1, rtol=1e-5, atol=1e-6)


def test_fit_learns_with_numpy_data_and_reports_like_mxnet(caplog):
    x, y = _blobs()
    seen = []
    model = FeedForward(_mlp(), num_epoch=4, numpy_batch_size=20, learning_rate=0.2,
                        momentum=0.9, initializer=mx.init.Xavier())
    with caplog.at_level(logging.INFO, logger="deepkit"):
        model.fit(x, y, eval_data=(x, y), batch_end_callback=seen.append)
    assert model.score(mx.io.NDArrayIter(x, y, 50)) > 0.9
    text = caplog.text
    assert re.search(r"Epoch\[0\] Train-accuracy=0\.\d+", text)
    assert re.search(r"Epoch\[3\] Time cost=\d+\.\d{3}", text)
    assert re.search(r"Epoch\[3\] Validation-accuracy=0\.9\d+", text)
    assert [p.nbatch for p in seen[:12]] == list(range(1, 13)) and seen[0].epoch == 0
    assert seen[-1].epoch == 3 and isinstance(seen[-1].eval_metric, mx.metric.Accuracy)


def test_monitored_loss_is_the_cross_entropy_and_keras_callbacks_run():
    x, y = _blobs(n=120)
    logs = []

    class Grab(dk_callbacks.Callback):
        def on_epoch_end(self, epoch, epoch_logs=None):
            logs.append(dict(epoch_logs))

    val = mx.io.NDArrayIter(x, y, 50)  # 50, 50, 20 (padded): the filler is left out
    model = FeedForward(_mlp(), num_epoch=2, numpy_batch_size=30, learning_rate=0.1)
    model.fit(x, y, eval_data=val, callbacks=[Grab()])
    assert [sorted(entry) for entry in logs] == [["accuracy", "loss", "val_accuracy",
                                                  "val_loss"]] * 2
    ce = model.score(val, "ce")
    np.testing.assert_allclose(logs[-1]["val_loss"], ce, rtol=1e-4)
    np.testing.assert_allclose(logs[-1]["val_accuracy"], model.score(val, "acc"), rtol=1e-6)


def test_keras_early_stopping_stops_feedforward():
    x, y = _blobs(n=60)
    stop = dk_callbacks.Callback()

    def halt(epoch, logs=None):
        stop.model.stop_training = True
    stop.on_epoch_end = halt
    epochs = []
    model = FeedForward(_mlp(), num_epoch=5, numpy_batch_size=30)
    model.fit(x, y, callbacks=[stop], epoch_end_callback=lambda e, *a: epochs.append(e))
    assert epochs == [0]


# -- predict, score --------------------------------------------------------------------
def test_predict_and_score_agree_and_skip_padding():
    x, y = _blobs(n=70)
    model = FeedForward(_mlp(), num_epoch=3, numpy_batch_size=10, learning_rate=0.2,
                        initializer=mx.init.Xavier())
    model.fit(x, y)
    it = mx.io.NDArrayIter(x, y, 32)  # 32, 32, 6 (+26 filler)
    prob = model.predict(it)
    assert prob.shape == (70, 3)
    np.testing.assert_allclose(prob.sum(1), 1.0, rtol=1e-5)
    acc = float((prob.argmax(1) == y).mean())
    assert model.score(it, "acc") == pytest.approx(acc)
    ce = -np.log(prob[np.arange(70), y.astype(int)] + 1e-12).mean()
    assert model.score(it, mx.metric.CrossEntropy()) == pytest.approx(ce, rel=1e-5)
    # numpy input, num_batch and return_data
    np.testing.assert_allclose(model.predict(x), prob, rtol=1e-6)
    out, data, label = model.predict(it, num_batch=2, return_data=True)
    assert out.shape == (64, 3) and data.shape == (64, 8) and label.shape == (64,)
    np.testing.assert_array_equal(data, x[:64])
    np.testing.assert_allclose(out, prob[:64], rtol=1e-6)


def test_score_updates_the_given_metric_object():
    x, y = _blobs(n=40)
    model = FeedForward(_mlp(), num_epoch=1, numpy_batch_size=20)
    model.fit(x, y)
    acc = mx.metric.Accuracy()
    value = model.score(mx.io.NDArrayIter(x, y, 20), acc)
    assert acc.get() == ("accuracy", value) and acc.num_inst == 40


# -- saving ----------------------------------------------------------------------------
def test_save_load_round_trip_reproduces_predictions_exactly(tmp_path):
    x, y = _blobs(n=90)
    model = FeedForward(_mlp(bn=True), num_epoch=3, numpy_batch_size=30, learning_rate=0.1,
                        momentum=0.9, initializer=mx.init.Xavier())
    model.fit(x, y)
    prefix = str(tmp_path / "mlp")
    model.save(prefix)
    assert sorted(os.listdir(tmp_path)) == ["mlp-0003.params", "mlp-symbol.json"]
    assert not h5py.is_hdf5(prefix + "-0003.params")  # MXNet's own binary format
    keys = sorted(mx.nd.load(prefix + "-0003.params"))
    assert "arg:fc1_weight" in keys and "aux:bn1_moving_var" in keys
    assert all(k.startswith(("arg:", "aux:")) for k in keys)
    # the same batch size: BLAS may round differently for other matrix shapes
    loaded = FeedForward.load(prefix, 3, numpy_batch_size=30)
    assert loaded.begin_epoch == 3
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_allclose(FeedForward.load(prefix, 3).predict(x), model.predict(x),
                               rtol=1e-6, atol=1e-7)
    symbol, arg, aux = load_checkpoint(prefix, 3)
    assert symbol.list_arguments() == model.symbol.list_arguments()
    np.testing.assert_array_equal(aux["bn1_moving_var"].asnumpy(),
                                  model.aux_params["bn1_moving_var"].asnumpy())


def test_do_checkpoint_saves_every_epoch_and_training_resumes(tmp_path):
    x, y = _blobs(n=60)
    prefix = str(tmp_path / "ck")
    model = FeedForward(_mlp(), num_epoch=2, numpy_batch_size=30)
    model.fit(x, y, epoch_end_callback=mx.callback.do_checkpoint(prefix))
    assert sorted(os.listdir(tmp_path)) == ["ck-0001.params", "ck-0002.params",
                                            "ck-symbol.json"]
    resumed = FeedForward.load(prefix, 2, num_epoch=3, learning_rate=0.1)
    epochs = []
    resumed.fit(x, y, epoch_end_callback=lambda e, *a: epochs.append(e))
    assert epochs == [2]


# -- the rest of the API ---------------------------------------------------------------
def test_create_epoch_size_and_seeded_reproducibility():
    x, y = _blobs(n=100)
    counts = []

    def run():
        mx.random.seed(7)
        return FeedForward.create(_mlp(), x, y, num_epoch=2, epoch_size=3,
                                  numpy_batch_size=10, learning_rate=0.1,
                                  batch_end_callback=lambda p: counts.append((p.epoch,
                                                                              p.nbatch)))
    a, b = run(), run()
    assert counts[:6] == [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)]
    for name, value in a.arg_params.items():
        np.testing.assert_array_equal(value.asnumpy(), b.arg_params[name].asnumpy())


def test_regression_head_and_deepkit_optimizer_object():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5, 3.0])).astype(np.float32)
    net = mx.sym.LinearRegressionOutput(mx.sym.FullyConnected(mx.sym.Variable("data"),
                                                              num_hidden=1, name="fc"),
                                        name="lro")
    opt = mx.optimizer.SGD(learning_rate=0.05, rescale_grad=1 / 16)
    model = FeedForward(net, num_epoch=30, numpy_batch_size=16, optimizer=opt)
    model.fit(x, y, eval_metric="mse")
    pred = model.predict(x)
    assert pred.shape == (64, 1)
    assert float(((pred[:, 0] - y) ** 2).mean()) < 1e-2


def test_bad_input_errors():
    net = _mlp()
    x, y = _blobs(n=20)
    with pytest.raises(ValueError, match="y must be specified when X is numpy.ndarray"):
        FeedForward(net, num_epoch=1).fit(x)
    with pytest.raises(ValueError, match="num_epoch is not set"):
        FeedForward(net).fit(x, y)
    with pytest.raises(TypeError, match="momentun.*did you mean 'momentum'"):
        FeedForward(net, momentun=0.9)
    with pytest.raises(ValueError, match="Label must be 1D or 2D"):
        FeedForward(net, num_epoch=1).fit(x, np.zeros((20, 3)))
    with pytest.raises(ValueError, match="provides 'pixels'.*arguments are"):
        FeedForward(net).predict(mx.io.NDArrayIter(x, data_name="pixels", batch_size=5))
    with pytest.raises(ValueError, match="no labels to score"):
        FeedForward(net).score(mx.io.NDArrayIter(x, batch_size=5))


# -- logging without configuration, and the MNIST example ----------------------------
def _run(code_or_args, timeout=240):
    args = [sys.executable] + (code_or_args if isinstance(code_or_args, list)
                               else ["-c", textwrap.dedent(code_or_args)])
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=env, check=False)


def test_progress_is_logged_without_logging_configuration():
    code = """
        import numpy as np
        from deepkit.compat import mxnet as mx
        x = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
        y = (x[:, 0] > 0).astype(np.float32)
        net = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(mx.sym.Variable('data'),
                                   num_hidden=2, name='fc'), name='softmax')
        model = mx.model.FeedForward(net, num_epoch=1, numpy_batch_size=10)
        model.fit(x, y, eval_data=(x, y), batch_end_callback=mx.callback.Speedometer(10, 2))
        import logging
        logging.basicConfig(level=logging.INFO)   # configured now: no line twice
        model.fit(x, y)
    """
    result = _run(code)
    assert result.returncode == 0, result.stderr
    err = result.stderr
    assert "Epoch[0] Train-accuracy=" in err and "Epoch[0] Time cost=" in err
    assert "Epoch[0] Validation-accuracy=" in err
    assert re.search(r"Epoch\[0\] Batch \[2-4\]\tSpeed: [\d.]+ samples/sec\taccuracy=", err)
    assert err.count("Epoch[0] Train-accuracy=") == 2  # once per fit, not duplicated


def test_mnist_feedforward_example_learns_on_a_subset():
    result = _run([os.path.join(ROOT, "examples", "mnist_feedforward.py"), "--samples", "6000",
                   "--test-samples", "1000", "--epochs", "2", "--seed", "0"])
    assert result.returncode == 0, result.stderr[-3000:]
    accuracy = float(re.search(r"Test accuracy: ([\d.]+)", result.stdout).group(1))
    assert accuracy > 0.85, result.stderr[-3000:]
    assert "Epoch[1] Validation-accuracy=" in result.stderr


@pytest.mark.parametrize("normalization", ["null", "batch"])
def test_a_list_of_contexts_trains_data_parallel_as_one_context(normalization):
    """MXNet's ``ctx=[...]``: each batch split over the devices, one update, same weights."""
    x, y = _blobs(n=120)
    data = mx.sym.Variable("data")
    net = mx.sym.FullyConnected(data, num_hidden=16, name="fc1")
    net = mx.sym.Activation(net, act_type="relu", name="relu1")
    net = mx.sym.FullyConnected(net, num_hidden=3, name="fc2")
    net = mx.sym.SoftmaxOutput(net, name="softmax", normalization=normalization)
    lr = 0.5 if normalization == "null" else 0.05
    results = []
    for ctx in ([mx.cpu(0)], [mx.cpu(0), mx.cpu(1)]):
        mx.random.seed(4)
        model = FeedForward(net, ctx=ctx, num_epoch=3, numpy_batch_size=30,
                            optimizer="sgd", learning_rate=lr, momentum=0.9,
                            initializer=mx.init.Xavier())
        metric = mx.metric.Accuracy()
        model.fit(x, y, eval_metric=metric)
        results.append({k: v.asnumpy() for k, v in model.arg_params.items()})
        results.append(metric.get())
    assert model._net.executors(mx.cpu(1))._executors  # the second device really trained
    assert results[1] == results[3] and metric.num_inst == 120  # metrics count every device
    results = results[::2]
    for name, value in results[0].items():
        np.testing.assert_allclose(results[1][name], value, atol=1e-6, rtol=0, err_msg=name)
