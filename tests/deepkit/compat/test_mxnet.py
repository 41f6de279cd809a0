"""The ``mx`` compatibility namespace: init, optimizer, metric, callback, random,
test_utils against MXNet's formulas (numpy references), and the executor-loop example."""
import logging
import math
import os
import re
import subprocess
import sys
import types

import numpy as np
import pytest

import deepkit
from deepkit.compat import mxnet as mx
from deepkit.compat.feedforward import BatchEndParam, FeedForward
from deepkit_engine import nd

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def test_namespace_has_the_mxnet_names():
    import deepkit_engine as dk
    # mx.nd is the engine's nd with MXNet's binary file format for save/load
    assert mx.ndarray is mx.nd and mx.nd.NDArray is dk.nd.NDArray
    assert mx.nd.FullyConnected is dk.nd.FullyConnected and mx.nd.save is not dk.nd.save
    assert mx.sym is dk.sym and mx.symbol is dk.sym
    assert mx.mod.Module is mx.module.Module
    assert mx.cpu() == dk.cpu() and mx.Context is dk.Context
    assert mx.io.NDArrayIter is dk.io.NDArrayIter and mx.io.MNISTIter is dk.io.MNISTIter
    assert mx.model.FeedForward is FeedForward and mx.model.BatchEndParam is BatchEndParam
    assert mx.initializer is mx.init and callable(mx.test_utils.get_mnist)
    for name in ("NDArrayIter", "DataBatch", "DataIter", "CSVIter", "PrefetchingIter"):
        assert hasattr(mx.io, name)
    assert issubclass(mx.MXNetError, Exception)


def test_random_seed_uniform_normal_and_out():
    mx.random.seed(3)
    a = mx.random.uniform(-0.1, 0.1, (500,)).asnumpy()
    mx.random.seed(3)
    b = mx.random.uniform(-0.1, 0.1, (500,)).asnumpy()
    np.testing.assert_array_equal(a, b)
    assert a.min() >= -0.1 and a.max() < 0.1 and a.std() > 0.04
    out = nd.zeros((400, 5))
    assert mx.random.normal(1.0, 2.0, out=out) is out
    values = out.asnumpy()
    assert abs(values.mean() - 1.0) < 0.2 and abs(values.std() - 2.0) < 0.2


def test_get_mnist_returns_mxnet_layout():
    mnist = mx.test_utils.get_mnist()
    assert mnist["train_data"].shape == (60000, 1, 28, 28)
    assert mnist["test_data"].shape == (10000, 1, 28, 28)
    assert mnist["train_data"].dtype == np.float32
    assert 0.0 <= mnist["test_data"].min() and mnist["test_data"].max() <= 1.0
    assert mnist["train_label"].shape == (60000,) and mnist["test_label"].max() == 9


# -- init ------------------------------------------------------------------------------
def test_xavier_msra_and_uniform_follow_mxnet_formulas():
    rng = np.random.default_rng(0)
    shape = (64, 32, 3, 3)
    fan_in, fan_out = 32 * 9, 64 * 9
    w = mx.init.Xavier().generate("conv_weight", shape, rng=rng)
    bound = math.sqrt(3.0 / ((fan_in + fan_out) / 2))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    w = mx.init.Xavier("gaussian", "in", 2).generate("conv_weight", shape, rng=rng)
    assert w.std() == pytest.approx(math.sqrt(2.0 / fan_in), rel=0.03)
    w = mx.init.MSRAPrelu("out", 0.25).generate("conv_weight", shape, rng=rng)
    assert w.std() == pytest.approx(math.sqrt(2.0 / (1 + 0.25 ** 2) / fan_out), rel=0.03)
    w = mx.init.Normal(0.02).generate("fc_weight", (300, 200), rng=rng)
    assert w.std() == pytest.approx(0.02, rel=0.03)
    with pytest.raises(ValueError, match="cannot be applied to vector"):
        mx.init.Xavier().generate("odd_weight", (5,))


def test_name_rules_call_conventions_and_create():
    init = mx.init.Uniform(0.3)
    assert np.all(init.generate("fc_bias", (3,)) == 0)
    assert np.all(init.generate("bn_gamma", (3,)) == 1)
    assert np.all(init.generate("bn_moving_var", (3,)) == 1)
    assert np.all(init.generate("bn_moving_mean", (3,)) == 0)
    desc = mx.init.InitDesc("anything", {"__init__": mx.init.Constant(2.5).dumps()})
    assert np.all(init.generate(desc, (2, 2)) == 2.5)
    arr = nd.zeros((4, 3))
    init("fc_weight", arr)  # MXNet: fill an NDArray by name
    assert 0 < np.abs(arr.asnumpy()).max() <= 0.3
    q = mx.init.Orthogonal(scale=1.0).generate("fc_weight", (4, 6))
    np.testing.assert_allclose(q @ q.T, np.eye(4), atol=1e-6)
    mixed = mx.init.Mixed([".*bias", ".*"], [mx.init.Constant(7), mx.init.One()])
    assert np.all(mixed.generate("fc_bias", (2,)) == 0)  # the name rule of Constant
    assert np.all(mixed.generate("fc_weight", (2, 2)) == 1)
    load = mx.init.Load({"arg:fc_weight": np.full((2, 2), 4.0)}, default_init=mx.init.Zero())
    assert np.all(load.generate("fc_weight", (2, 2)) == 4)
    assert np.all(load.generate("fc2_weight", (2, 2)) == 0)
    assert isinstance(mx.init.create('["xavier", {"magnitude": 2}]'), mx.init.Xavier)
    with pytest.raises(ValueError, match="unknown initializer 'xavir'.*did you mean"):
        mx.init.create("xavir")
    layer_init = mx.init.Constant(2.0)  # deepkit's protocol: init(shape, dtype, rng)
    model = deepkit.Sequential([deepkit.layers.Dense(3, kernel_initializer=layer_init,
                                                     input_shape=(2,))])
    np.testing.assert_array_equal(model.get_weights()[0], np.full((3, 2), 2.0))


# -- optimizers ------------------------------------------------------------------------
def _param(value, wd_mult=1.0, lr_mult=1.0, name="w"):
    return types.SimpleNamespace(name=name, data=nd.array(value), lr_mult=lr_mult,
                                 wd_mult=wd_mult, constraint=None, trainable=True)


def _reference(kind, w, grads, lr, wd, rescale, clip, **kw):
    """MXNet 1.x update formulas in numpy, float64."""
    w = w.astype(np.float64).copy()
    s1, s2, s3 = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for t, grad in enumerate(grads, 1):
        g = grad * rescale
        if clip is not None:
            g = np.clip(g, -clip, clip)
        if kind == "sgd":
            s1 = kw["momentum"] * s1 - lr * (g + wd * w)
            w = w + s1
        elif kind == "nag":
            g = g + wd * w
            s1 = kw["momentum"] * s1 + g
            w = w - lr * (g + kw["momentum"] * s1)
        elif kind == "adam":
            g = g + wd * w
            s1 = 0.9 * s1 + 0.1 * g
            s2 = 0.999 * s2 + 0.001 * g * g
            lr_t = lr * math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
            w = w - lr_t * s1 / (np.sqrt(s2) + 1e-8)
        elif kind == "rmsprop":
            g = g + wd * w
            s1 = 0.9 * s1 + 0.1 * g * g
            if kw.get("centered"):
                s2 = 0.9 * s2 + 0.1 * g
                s3 = 0.9 * s3 - lr * g / np.sqrt(s1 - s2 * s2 + 1e-8)
                w = w + s3
            else:
                w = w - lr * g / np.sqrt(s1 + 1e-8)
        elif kind == "adagrad":
            s1 = s1 + g * g
            w = w - lr * (g / np.sqrt(s1 + 1e-7) + wd * w)
        elif kind == "adadelta":
            s1 = 0.9 * s1 + 0.1 * g * g
            delta = np.sqrt(s2 + 1e-5) / np.sqrt(s1 + 1e-5) * g
            s2 = 0.9 * s2 + 0.1 * delta * delta
            w = w - (delta + wd * w)
    return w


@pytest.mark.parametrize("kind,kwargs", [
    ("sgd", {"momentum": 0.0}), ("sgd", {"momentum": 0.9}), ("nag", {"momentum": 0.9}),
    ("adam", {}), ("rmsprop", {}), ("rmsprop", {"centered": True}), ("adagrad", {}),
    ("adadelta", {})])
def test_optimizers_match_mxnet_formulas(kind, kwargs):
    rng = np.random.default_rng(1)
    w0 = rng.normal(size=(4, 3)).astype(np.float32)
    grads = [rng.normal(size=(4, 3)).astype(np.float32) * 3 for _ in range(3)]
    lr, wd, rescale, clip = 0.05, 0.01, 0.5, 1.0
    opt = mx.optimizer.create(kind, learning_rate=lr, wd=wd, rescale_grad=rescale,
                              clip_gradient=clip, **kwargs)
    param = _param(w0)
    for g in grads:
        opt.apply([(param, nd.array(g))])
    expected = _reference(kind, w0, grads, lr, wd, rescale, clip, **kwargs)
    np.testing.assert_allclose(param.data.asnumpy(), expected, rtol=1e-4, atol=1e-6)


def test_optimizer_multipliers_scheduler_and_errors():
    opt = mx.optimizer.SGD(learning_rate=0.1, wd=0.5)
    bias = _param(np.ones(3), wd_mult=0.0, lr_mult=2.0, name="b")
    opt.apply([(bias, nd.ones((3,)))])
    np.testing.assert_allclose(bias.data.asnumpy(), 1 - 0.2)  # lr_mult 2, no decay
    sched = mx.lr_scheduler.FactorScheduler(step=2, factor=0.5)
    opt = mx.optimizer.SGD(learning_rate=1.0, lr_scheduler=sched)
    rates = []
    for _ in range(5):
        rates.append(opt.lr)
        opt.apply([])
    assert rates == [1.0, 1.0, 0.5, 0.5, 0.25]  # num_update 1..5
    multi = mx.lr_scheduler.MultiFactorScheduler(step=[2, 4], factor=0.1, base_lr=1.0)
    assert [multi(n) for n in (1, 2, 3, 4, 5)] == pytest.approx([1, 1, 0.1, 0.1, 0.01])
    with pytest.raises(ValueError, match="unknown optimizer 'adamm'.*did you mean 'adam'"):
        mx.optimizer.create("adamm")
    with pytest.raises(TypeError, match="SGD: unknown argument 'lr'"):
        mx.optimizer.create("sgd", lr=0.1)
    config = mx.optimizer.Adam(learning_rate=0.01, wd=0.1).get_config()
    assert mx.optimizer.Adam.from_config(config).get_config() == config


# -- metrics ---------------------------------------------------------------------------
def _probs(n, k, seed):
    rng = np.random.default_rng(seed)
    p = rng.random((n, k)) + 0.01
    return (p / p.sum(1, keepdims=True)).astype(np.float32), \
        rng.integers(0, k, n).astype(np.float32)


def test_accuracy_local_global_and_names():
    (p1, y1), (p2, y2) = _probs(30, 4, 0), _probs(20, 4, 1)
    acc = mx.metric.create("acc")
    assert isinstance(acc, mx.metric.Accuracy) and acc.name == "accuracy"
    acc.update([nd.array(y1)], [nd.array(p1)])
    first = float((p1.argmax(1) == y1).mean())
    assert acc.get() == ("accuracy", pytest.approx(first))
    acc.reset_local()
    acc.update([nd.array(y2)], [nd.array(p2)])
    assert acc.get()[1] == pytest.approx(float((p2.argmax(1) == y2).mean()))
    both = (np.sum(p1.argmax(1) == y1) + np.sum(p2.argmax(1) == y2)) / 50
    assert acc.get_global()[1] == pytest.approx(both) and acc.result() == pytest.approx(both)
    acc.reset()
    assert math.isnan(acc.get()[1])
    acc.update([y1], [p1.argmax(1)])  # numpy, predictions already classes
    assert acc.get()[1] == pytest.approx(first)
    assert str(acc).startswith("EvalMetric: {'accuracy': ")
    with pytest.raises(ValueError, match="does not match"):
        acc.update([y1, y2], [p1])


def test_classification_metrics_against_numpy():
    p, y = _probs(40, 5, 2)
    idx = np.arange(40), y.astype(int)
    top = mx.metric.create("top_k_accuracy", top_k=2)
    top.update([nd.array(y)], [nd.array(p)])
    top2 = np.argsort(-p, axis=1)[:, :2]
    assert top.name == "top_k_accuracy_2"
    assert top.get()[1] == pytest.approx(float((top2 == y[:, None]).any(1).mean()))
    ce = mx.metric.create("ce")
    ce.update([nd.array(y)], [nd.array(p)])
    assert ce.get() == ("cross-entropy", pytest.approx(float(-np.log(p[idx] + 1e-12).mean())))
    ppl = mx.metric.Perplexity(ignore_label=0)
    ppl.update([nd.array(y)], [nd.array(p)])
    keep = y != 0
    assert ppl.get()[1] == pytest.approx(math.exp(-np.log(p[idx][keep]).mean()), rel=1e-5)


def test_f1_is_binary_with_macro_and_micro_averages():
    batches = [(np.array([1, 0, 1, 1, 0]), np.array([1, 0, 0, 1, 1])),
               (np.array([0, 1, 1, 0]), np.array([0, 1, 1, 1]))]

    def f1(label, pred):
        tp = np.sum((pred == 1) & (label == 1))
        precision, recall = tp / np.sum(pred == 1), tp / np.sum(label == 1)
        return 2 * precision * recall / (precision + recall)
    macro, micro = mx.metric.F1(), mx.metric.F1(average="micro")
    for label, pred in batches:
        onehot = np.eye(2)[pred].astype(np.float32)
        macro.update([nd.array(label)], [nd.array(onehot)])
        micro.update([nd.array(label)], [nd.array(onehot)])
    assert macro.get()[1] == pytest.approx(np.mean([f1(lab, pr) for lab, pr in batches]))
    labels = np.concatenate([b[0] for b in batches])
    preds = np.concatenate([b[1] for b in batches])
    assert micro.get()[1] == pytest.approx(f1(labels, preds))
    with pytest.raises(ValueError, match="only supports binary"):
        macro.update([nd.array([0, 1, 2])], [nd.array(np.eye(3))])


def test_regression_metrics_average_per_batch_as_mxnet():
    rng = np.random.default_rng(4)
    batches = [(rng.normal(size=8), rng.normal(size=(8, 1))),
               (rng.normal(size=4), rng.normal(size=(4, 1)))]
    metrics = {name: mx.metric.create(name) for name in ("mse", "rmse", "mae", "pearsonr")}
    for label, pred in batches:
        for m in metrics.values():
            m.update([nd.array(label)], [nd.array(pred)])
    err = [pred[:, 0] - label for label, pred in batches]
    assert metrics["mse"].get()[1] == pytest.approx(np.mean([np.mean(e ** 2) for e in err]),
                                                    rel=1e-5)
    assert metrics["rmse"].get()[1] == pytest.approx(
        np.mean([np.sqrt(np.mean(e ** 2)) for e in err]), rel=1e-5)
    assert metrics["mae"].get()[1] == pytest.approx(np.mean([np.mean(np.abs(e)) for e in err]),
                                                    rel=1e-5)
    corr = np.mean([np.corrcoef(pred[:, 0], label)[0, 1] for label, pred in batches])
    assert metrics["pearsonr"].get()[1] == pytest.approx(corr, rel=1e-5)


def test_custom_composite_and_loss_metrics():
    p, y = _probs(10, 3, 5)

    def hits(label, pred):
        return int((pred.argmax(1) == label).sum()), len(label)
    custom = mx.metric.create(hits)
    assert custom.name == "hits"
    custom.update([nd.array(y)], [nd.array(p)])
    assert custom.get()[1] == pytest.approx(float((p.argmax(1) == y).mean()))
    np_metric = mx.metric.np(lambda label, pred: float(pred.max()))
    np_metric.update([nd.array(y)], [nd.array(p)])
    assert np_metric.get()[1] == pytest.approx(float(p.max()))
    composite = mx.metric.create(["acc", "ce"])
    composite.update([nd.array(y)], [nd.array(p)])
    names, values = composite.get()
    assert names == ["accuracy", "cross-entropy"] and len(values) == 2
    assert [n for n, _ in composite.get_name_value()] == names
    loss = mx.metric.Loss()
    loss.update(None, [nd.array(np.array([1.0, 2.0, 6.0]))])
    assert loss.get()[1] == pytest.approx(3.0)
    with pytest.raises(ValueError, match="unknown metric 'accuarcy'.*did you mean"):
        mx.metric.create("accuarcy")


# -- callbacks -------------------------------------------------------------------------
def test_speedometer_reports_every_frequent_batches_and_resets_local(caplog):
    acc = mx.metric.Accuracy()
    speed = mx.callback.Speedometer(batch_size=10, frequent=2)
    with caplog.at_level(logging.INFO, logger="deepkit"):
        for nbatch in range(1, 6):
            acc.update([nd.array([1.0, 0.0])], [nd.array([[0.0, 1.0], [0.0, 1.0]])])
            speed(BatchEndParam(epoch=3, nbatch=nbatch, eval_metric=acc, locals=None))
    lines = [r.getMessage() for r in caplog.records if "Speed" in r.getMessage()]
    assert len(lines) == 2
    assert re.match(r"Epoch\[3\] Batch \[2-4\]\tSpeed: [\d.]+ samples/sec\taccuracy=0\.500000",
                    lines[1])
    assert acc.num_inst == 2 and acc.global_num_inst == 10  # reset_local after each report


# -- the executor-loop example -------------------------------------------------------
def test_mnist_executor_loop_example_learns_on_a_subset():
    with open(os.path.join(ROOT, "examples", "mnist_executor_loop.py")) as f:
        source = f.read()
    # the tutorial's own loop: a plain forward() (is_train=False), then backward()
    assert "        ex.forward()\n        ex.backward()\n" in source
    assert "is_train=True" not in source
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "mnist_executor_loop.py"),
         "--samples", "6000", "--test-samples", "1000", "--epochs", "2", "--batch-size", "50",
         "--seed", "0"], capture_output=True, text=True, timeout=240, cwd=ROOT, env=env,
        check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Epoch 1, Training accuracy=" in result.stdout
    accuracy = float(re.search(r"Test accuracy: ([\d.]+)", result.stdout).group(1))
    assert accuracy > 0.85, result.stdout
