"""``mx.metric``: MXNet's metrics as adapters over :mod:`deepkit.metrics`.

Every metric is checked against a numpy reference of MXNet's formula, for the
local value (since ``reset_local``) and the global one (since ``reset``).
"""
import math

import numpy as np
import pytest

from deepkit import metrics as core
from deepkit.compat import mx_metric
from deepkit.compat import mxnet as mx
from deepkit_engine import engine, nd


def _probs(n, k, seed):
    rng = np.random.default_rng(seed)
    p = rng.random((n, k)) + 0.01
    return (p / p.sum(1, keepdims=True)).astype(np.float32), \
        rng.integers(0, k, n).astype(np.float32)


BATCHES = [_probs(12, 4, 0), _probs(7, 4, 1), _probs(9, 4, 2)]


def _feed(metric, batches, reset_after=None):
    """Update with every batch; ``reset_local`` after batch index ``reset_after``."""
    for i, (p, y) in enumerate(batches):
        metric.update([nd.array(y)], [nd.array(p)])
        if i == reset_after:
            metric.reset_local()


def _check(metric, reference, batches=BATCHES, rel=1e-6):
    """The local value covers the batches after the reset, the global one all of them."""
    _feed(metric, batches, reset_after=0)
    assert metric.get()[1] == pytest.approx(reference(batches[1:]), rel=rel)
    assert metric.get_global()[1] == pytest.approx(reference(batches), rel=rel)
    assert metric.result() == metric.get_global()[1]


# -- references: MXNet 1.9.1's formulas in numpy ---------------------------------------------
def _acc(batches):
    return np.sum([np.sum(p.argmax(1) == y) for p, y in batches]) / sum(len(y) for _, y in batches)


def _top2(batches):
    hits = [np.sum(np.argsort(p, axis=1)[:, -2:] == y[:, None]) for p, y in batches]
    return np.sum(hits) / sum(len(y) for _, y in batches)


def _ce(batches):
    losses = np.concatenate([-np.log(p[np.arange(len(y)), y.astype(int)] + 1e-12)
                             for p, y in batches])
    return losses.mean()


def _perplexity(batches, ignore=0):
    nll, num = 0.0, 0
    for p, y in batches:
        prob = np.maximum(1e-10, p[np.arange(len(y)), y.astype(int)])
        keep = y != ignore
        nll -= np.log(prob[keep]).sum()
        num += keep.sum()
    return math.exp(nll / num)


def test_accuracy_and_top_k():
    _check(mx.metric.Accuracy(), _acc)
    top = mx.metric.create("top_k_accuracy", top_k=2)
    assert top.name == "top_k_accuracy_2"
    _check(top, _top2)
    acc = mx.metric.Accuracy()
    acc.update([np.array([1, 2, 3])], [np.array([1.9, 2.2, 0.0])])  # int32 truncation
    assert acc.get() == ("accuracy", pytest.approx(2 / 3))
    acc.update([np.array([-1.5, 0.4, 2.0])], [np.array([-1.2, -0.7, 2.99])])  # toward zero
    assert acc.get() == ("accuracy", pytest.approx(5 / 6))
    with pytest.raises(ValueError, match="does not match"):
        acc.update([nd.array([1.0, 0.0])], [nd.array(np.zeros((3, 2)))])


def test_accuracy_class_axis():
    p = np.random.default_rng(3).random((4, 3, 5)).astype(np.float32)  # (batch, classes, t)
    y = np.random.default_rng(4).integers(0, 3, (4, 5)).astype(np.float32)
    acc = mx.metric.Accuracy(axis=1)
    acc.update([nd.array(y)], [nd.array(p)])
    assert acc.get()[1] == pytest.approx(float(np.mean(p.argmax(1) == y)))
    assert acc.num_inst == 20 and acc.sum_metric == float(np.sum(p.argmax(1) == y))


def test_cross_entropy_nll_and_perplexity():
    _check(mx.metric.CrossEntropy(), _ce, rel=1e-5)
    nll = mx.metric.create("nll_loss")
    assert nll.name == "nll-loss"
    _check(nll, _ce, rel=1e-5)
    _check(mx.metric.Perplexity(ignore_label=0), _perplexity, rel=1e-5)
    _check(mx.metric.Perplexity(ignore_label=None),
           lambda b: _perplexity(b, ignore=-1), rel=1e-5)


def test_perplexity_counts_and_class_axis():
    p, y = BATCHES[0]
    ppl = mx.metric.Perplexity(ignore_label=1)
    ppl.update([nd.array(y)], [nd.array(p)])
    assert ppl.num_inst == int(np.sum(y != 1))
    assert ppl.get()[1] == pytest.approx(_perplexity([(p, y)], ignore=1), rel=1e-5)
    moved = mx.metric.Perplexity(ignore_label=None, axis=0)
    moved.update([nd.array(y)], [nd.array(p.T.copy())])
    assert moved.get()[1] == pytest.approx(_perplexity([(p, y)], ignore=-1), rel=1e-5)


def _f1(label, pred):
    tp = np.sum((pred == 1) & (label == 1))
    fp = np.sum((pred == 1) & (label != 1))
    fn = np.sum((pred != 1) & (label == 1))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def test_f1_macro_and_micro():
    rng = np.random.default_rng(5)
    batches = []
    for n in (10, 6, 8):
        p = rng.random((n, 2)).astype(np.float32)
        batches.append((p, rng.integers(0, 2, n).astype(np.float32)))

    def macro(bs):
        return np.mean([_f1(y, p.argmax(1)) for p, y in bs])

    def micro(bs):
        return _f1(np.concatenate([y for _, y in bs]),
                   np.concatenate([p.argmax(1) for p, _ in bs]))
    _check(mx.metric.F1(), macro, batches)
    f1 = mx.metric.F1(average="micro")
    _check(f1, micro, batches)
    assert f1.global_num_inst == 24 and f1.num_inst == 14
    assert f1.sum_metric == pytest.approx(micro(batches[1:]) * 14)
    # all-negative predictions score 0, as in MXNet
    zero = mx.metric.F1()
    zero.update([nd.array([1.0, 0.0])], [nd.array([[1.0, 0.0], [1.0, 0.0]])])
    assert zero.get()[1] == 0.0
    with pytest.raises(ValueError, match="only supports binary"):
        zero.update([nd.array([0.0, 1.0, 2.0])], [nd.array(np.eye(3))])


def test_regression_metrics_average_per_update():
    rng = np.random.default_rng(6)
    batches = [(rng.normal(size=(n, 1)).astype(np.float32), rng.normal(size=n).astype(np.float32))
               for n in (8, 3, 5)]
    errors = {
        "mse": lambda bs: np.mean([np.mean((y - p[:, 0]) ** 2) for p, y in bs]),
        "mae": lambda bs: np.mean([np.mean(np.abs(y - p[:, 0])) for p, y in bs]),
        "rmse": lambda bs: np.mean([np.sqrt(np.mean((y - p[:, 0]) ** 2)) for p, y in bs]),
        "pearsonr": lambda bs: np.mean([np.corrcoef(p[:, 0], y)[0, 1] for p, y in bs]),
    }
    for name, reference in errors.items():
        metric = mx.metric.create(name)
        _check(metric, reference, batches, rel=1e-5)
        assert metric.global_num_inst == 3 and metric.num_inst == 2

    def pooled(bs):
        return np.corrcoef(np.concatenate([p[:, 0] for p, _ in bs]),
                           np.concatenate([y for _, y in bs]))[0, 1]
    _check(mx.metric.PearsonCorrelation(average="micro"), pooled, batches, rel=1e-5)


def test_regression_broadcasts_a_label_column_like_mxnet():
    label = np.array([1.0, 2.0], np.float32)
    pred = np.array([[1.0, 3.0], [0.0, 2.0]], np.float32)
    mse = mx.metric.MSE()
    mse.update([nd.array(label)], [nd.array(pred)])
    assert mse.get()[1] == pytest.approx(np.mean((label[:, None] - pred) ** 2))


def test_loss_custom_and_composite():
    loss = mx.metric.Loss()
    loss.update(None, [nd.array([1.0, 2.0]), nd.array([6.0])])
    assert loss.get() == ("loss", pytest.approx(3.0)) and loss.num_inst == 3

    def hits(label, pred):
        return int((pred.argmax(1) == label).sum()), len(label)
    _check(mx.metric.create(hits), _acc)
    scalar = mx.metric.np(lambda label, pred: float(pred.max()))
    _check(scalar, lambda bs: np.mean([p.max() for p, _ in bs]))

    composite = mx.metric.create(["acc", "ce"])
    _feed(composite, BATCHES, reset_after=0)
    names, values = composite.get()
    assert names == ["accuracy", "cross-entropy"]
    assert values == pytest.approx([_acc(BATCHES[1:]), _ce(BATCHES[1:])], rel=1e-5)
    assert composite.get_global()[1] == pytest.approx([_acc(BATCHES), _ce(BATCHES)], rel=1e-5)
    assert composite.get_global_name_value()[0][0] == "accuracy"
    assert mx_metric.leaves(composite)[1].name == "cross-entropy"


def test_counters_reset_and_nan_before_updates():
    acc = mx.metric.Accuracy()
    assert math.isnan(acc.get()[1]) and math.isnan(acc.get_global()[1])
    _feed(acc, BATCHES, reset_after=1)
    assert acc.num_inst == 9 and acc.global_num_inst == 28
    assert acc.sum_metric == float(np.sum(BATCHES[2][0].argmax(1) == BATCHES[2][1]))
    acc.reset_local()
    assert math.isnan(acc.get()[1]) and acc.num_inst == 0
    assert acc.get_global()[1] == pytest.approx(_acc(BATCHES))
    acc.reset()
    assert acc.global_num_inst == 0 and math.isnan(acc.get_global()[1])


def test_a_subclass_written_for_mxnet_keeps_its_counters():
    class Count(mx.metric.EvalMetric):
        def __init__(self):
            super().__init__("count")

        def update(self, labels, preds):
            self.sum_metric += len(labels)
            self.num_inst += 1
    m = Count()
    m.update([1, 2], [3, 4])
    m.update([1], [3])
    assert m.get() == ("count", 1.5) and m.get_global() == ("count", 1.5)  # no global stats
    m.reset_local()
    assert math.isnan(m.get()[1])


def test_create_from_config_and_unknown_names():
    for metric in (mx.metric.Accuracy(axis=2), mx.metric.F1(average="micro"),
                   mx.metric.Perplexity(ignore_label=5), mx.metric.CrossEntropy(eps=1e-6)):
        config = metric.get_config()
        again = mx.metric.create(config)
        assert type(again) is type(metric) and again.get_config() == config
    assert isinstance(mx.metric.create("pearsonr"), mx.metric.PearsonCorrelation)
    with pytest.raises(ValueError, match="unknown metric 'mse2'.*did you mean"):
        mx.metric.create("mse2")


def test_adapters_hold_core_metrics():
    assert isinstance(mx.metric.Accuracy().core, core.Accuracy)
    assert isinstance(mx.metric.TopKAccuracy(2).core, core.SparseTopKCategoricalAccuracy)
    assert isinstance(mx.metric.F1().core, core.BinaryF1Score)
    assert isinstance(mx.metric.CrossEntropy().core, core.SparseCategoricalCrossentropy)
    assert isinstance(mx.metric.Perplexity(None).core, core.Perplexity)
    assert isinstance(mx.metric.RMSE().core, core.RootMeanSquaredError)
    assert isinstance(mx.metric.PearsonCorrelation().core, core.PearsonCorrelation)
    assert isinstance(mx.metric.Loss().core, core.Mean)
    with open(mx_metric.__file__) as f:
        assert "PLC0415" not in f.read()


LAZY = [lambda: mx.metric.Accuracy(), lambda: mx.metric.TopKAccuracy(2),
        lambda: mx.metric.F1(), lambda: mx.metric.F1(average="micro"),
        lambda: mx.metric.CrossEntropy(), lambda: mx.metric.Perplexity(ignore_label=0),
        lambda: mx.metric.MSE(), lambda: mx.metric.MAE(), lambda: mx.metric.RMSE(),
        lambda: mx.metric.PearsonCorrelation(),
        lambda: mx.metric.PearsonCorrelation(average="micro"), lambda: mx.metric.Loss(),
        lambda: mx.metric.create(["acc", "ce"])]


@pytest.mark.parametrize("make", LAZY, ids=range(len(LAZY)))
def test_update_and_reset_local_never_wait(make, monkeypatch):
    metric = make()
    columns = {mx.metric.F1: 2, mx.metric.PearsonCorrelation: 1}.get(type(metric), 4)
    top = 1 if columns == 2 else 3  # F1 wants 0/1 labels
    batches = [(nd.array(p[:, :columns]), nd.array(np.minimum(y, top))) for p, y in BATCHES]
    for p, y in batches:
        p.wait_to_read()
        y.wait_to_read()
    eng = engine.get_engine()

    def no_wait(*args, **kwargs):
        raise AssertionError("update waited for the engine")
    monkeypatch.setattr(eng, "wait_for_var", no_wait)
    monkeypatch.setattr(eng, "wait_all", no_wait)
    for i, (p, y) in enumerate(batches):
        metric.update([y], [p])
        if i == 0:
            metric.reset_local()
    monkeypatch.undo()
    assert np.all(np.isfinite(metric.get()[1])) and np.all(np.isfinite(metric.get_global()[1]))
