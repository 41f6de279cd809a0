"""Metrics: results over several batches against numpy, laziness, lookup, errors, in fit."""
import json
import math

import numpy as np
import pytest

import deepkit
from deepkit import layers as L
from deepkit import losses, metrics
from deepkit_engine import engine, nd

EPS = 1e-7
N, BATCH = 23, 8  # batches of 8, 8 and a partial 7


def _batches(*arrays, batch=BATCH):
    n = len(arrays[0])
    for start in range(0, n, batch):
        yield tuple(None if a is None else a[start:start + batch] for a in arrays)


def _run(metric, y, p, sample_weight=None, ctx=None):
    """Feed ``metric`` batch by batch as NDArrays; return ``result()``."""
    metric.reset()
    for yb, pb, wb in _batches(y, p, sample_weight):
        metric.update(nd.array(yb.astype(np.float32), ctx=ctx),
                      nd.array(pb.astype(np.float32), ctx=ctx),
                      None if wb is None else nd.array(wb.astype(np.float32), ctx=ctx))
    return metric.result()


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.fixture
def data(rng):
    c = 5
    scores = rng.normal(size=(N, c))
    probs = _softmax(scores)
    sparse = rng.integers(0, c, N)
    return {"c": c, "scores": scores, "probs": probs, "sparse": sparse,
            "onehot": np.eye(c)[sparse], "binary": rng.integers(0, 2, (N, 3)),
            "p_binary": rng.uniform(0, 1, (N, 3)), "y_reg": rng.normal(size=(N, 3)),
            "p_reg": rng.normal(size=(N, 3)), "weights": rng.uniform(0, 2, N)}


# -- accuracy family ------------------------------------------------------------------------

def test_accuracy_family_over_batches(data, ctx):
    p, onehot, sparse = data["probs"], data["onehot"], data["sparse"]
    hit = (p.argmax(1) == sparse).mean()
    assert _run(metrics.CategoricalAccuracy(), onehot, p, ctx=ctx) == pytest.approx(hit)
    assert _run(metrics.SparseCategoricalAccuracy(), sparse, p, ctx=ctx) == pytest.approx(hit)
    assert _run(metrics.SparseCategoricalAccuracy(), sparse[:, None], p) == pytest.approx(hit)
    yb, pb = data["binary"], data["p_binary"]
    assert _run(metrics.BinaryAccuracy(), yb, pb, ctx=ctx) == \
        pytest.approx(((pb > 0.5) == yb).mean())
    assert _run(metrics.BinaryAccuracy(threshold=0.7), yb, pb) == \
        pytest.approx(((pb > 0.7) == yb).mean())
    labels = np.round(pb)
    assert _run(metrics.Accuracy(), labels, np.round(pb * 0.9 + 0.05)) == \
        pytest.approx((labels == np.round(pb * 0.9 + 0.05)).mean())


def test_accuracy_with_sample_weights(data):
    p, sparse, w = data["probs"], data["sparse"], data["weights"]
    hit = p.argmax(1) == sparse
    assert _run(metrics.SparseCategoricalAccuracy(), sparse, p, w) == \
        pytest.approx((hit * w).sum() / w.sum())
    yb, pb = data["binary"], data["p_binary"]
    per = ((pb > 0.5) == yb) * w[:, None]
    assert _run(metrics.BinaryAccuracy(), yb, pb, w) == pytest.approx(per.sum() / (3 * w.sum()))


def _np_in_top_k(labels, scores, k):
    k = min(k, scores.shape[-1])
    kth = np.sort(scores, axis=-1)[:, -k]
    return np.take_along_axis(scores, labels[:, None], -1)[:, 0] >= kth


@pytest.mark.parametrize("k", [1, 2, 3, 7])
def test_top_k_accuracy(data, k, ctx):
    s, sparse = data["scores"], data["sparse"]
    want = _np_in_top_k(sparse, s, k).mean()
    assert _run(metrics.TopKCategoricalAccuracy(k=k), data["onehot"], s, ctx=ctx) == \
        pytest.approx(want)
    assert _run(metrics.SparseTopKCategoricalAccuracy(k=k), sparse, s, ctx=ctx) == \
        pytest.approx(want)


def test_top_k_counts_ties_and_matches_keras_example():
    m = metrics.TopKCategoricalAccuracy(k=1)
    m.update([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
    assert m.result() == pytest.approx(0.5)
    m = metrics.SparseTopKCategoricalAccuracy(k=1)
    m.update([0, 2], [[0.5, 0.5, 0.0], [0.3, 0.3, 0.3]])  # ties with the top count as in it
    assert m.result() == 1.0


# -- precision / recall / F-score --------------------------------------------------------

def _np_confusion(y, p, thresholds, top_k=None, class_id=None, w=None):
    y, p = y.astype(float), p.astype(float)
    w = np.ones_like(p) if w is None else np.broadcast_to(w.reshape(-1, *[1] * (p.ndim - 1)),
                                                           p.shape)
    if top_k is not None:
        kth = np.sort(p, axis=-1)[:, -top_k][:, None]
        p = np.where(p >= kth, p, -np.inf)
    if class_id is not None:
        y, p, w = y[..., class_id], p[..., class_id], w[..., class_id]
    y, p, w = y.ravel() != 0, p.ravel(), w.ravel()
    out = []
    for t in thresholds:
        pos = p > t
        out.append(((pos & y) @ w, (pos & ~y) @ w, (~pos & y) @ w, (~pos & ~y) @ w))
    return np.array(out).T  # tp, fp, fn, tn, each (T,)


def _ratio(a, b):
    return np.where(b > 0, a / np.where(b > 0, b, 1), 0.0)


@pytest.mark.parametrize("kwargs", [
    {}, {"thresholds": 0.3}, {"thresholds": [0.2, 0.5, 0.8]}, {"class_id": 1},
    {"top_k": 2}, {"top_k": 1, "class_id": 2}, {"thresholds": [0.1, 0.6], "class_id": 0},
], ids=["default", "t0.3", "t-list", "class1", "top2", "top1-class2", "list-class0"])
def test_precision_and_recall(data, kwargs, ctx):
    y, p = data["binary"], data["p_binary"]
    thresholds = kwargs.get("thresholds", 0.5 if "top_k" not in kwargs else -np.inf)
    t_list = thresholds if isinstance(thresholds, list) else [thresholds]
    tp, fp, fn, _ = _np_confusion(y, p, t_list, kwargs.get("top_k"), kwargs.get("class_id"))
    prec = _run(metrics.Precision(**kwargs), y, p, ctx=ctx)
    rec = _run(metrics.Recall(**kwargs), y, p, ctx=ctx)
    if isinstance(thresholds, list):
        np.testing.assert_allclose(prec, _ratio(tp, tp + fp), rtol=1e-6)
        np.testing.assert_allclose(rec, _ratio(tp, tp + fn), rtol=1e-6)
    else:
        assert isinstance(prec, float) and isinstance(rec, float)
        assert prec == pytest.approx(_ratio(tp, tp + fp)[0])
        assert rec == pytest.approx(_ratio(tp, tp + fn)[0])


def test_precision_recall_weighted_and_keras_examples(data):
    y, p, w = data["binary"], data["p_binary"], data["weights"]
    tp, fp, fn, _ = _np_confusion(y, p, [0.5], w=w)
    assert _run(metrics.Precision(), y, p, w) == pytest.approx(_ratio(tp, tp + fp)[0])
    assert _run(metrics.Recall(), y, p, w) == pytest.approx(_ratio(tp, tp + fn)[0])
    m = metrics.Precision()
    m.update([0, 1, 1, 1], [1, 0, 1, 1])
    assert m.result() == pytest.approx(2 / 3)
    m = metrics.Recall()
    m.update([0, 1, 1, 1], [1, 0, 1, 1])
    assert m.result() == pytest.approx(2 / 3)
    m = metrics.Precision()
    m.update([0, 0], [0.1, 0.2])  # no predicted positive: 0, not NaN
    assert m.result() == 0.0


def _np_fbeta(y, p, average, beta, threshold, w=None):
    if threshold is None:
        pred = ((p >= p.max(-1, keepdims=True)) & (np.abs(p) > 1e-9)).astype(float)
    else:
        pred = (p > threshold).astype(float)
    w = np.ones(len(y)) if w is None else w
    axis = None if average == "micro" else 0
    tp = ((pred * y) * w[:, None]).sum(axis)
    fp = ((pred * (1 - y)) * w[:, None]).sum(axis)
    fn = (((1 - pred) * y) * w[:, None]).sum(axis)
    support = (y * w[:, None]).sum(axis)
    prec, rec = tp / (tp + fp + EPS), tp / (tp + fn + EPS)
    f = (1 + beta ** 2) * prec * rec / (beta ** 2 * prec + rec + EPS)
    if average == "weighted":
        return (f * support / (support.sum() + EPS)).sum()
    return f if average is None else f.mean()


@pytest.mark.parametrize("average", [None, "micro", "macro", "weighted"])
@pytest.mark.parametrize("threshold", [None, 0.3])
def test_f1_and_fbeta(data, average, threshold):
    y, p = data["onehot"], data["probs"]
    np.testing.assert_allclose(_run(metrics.F1Score(average, threshold), y, p),
                               _np_fbeta(y, p, average, 1.0, threshold), rtol=1e-6)
    np.testing.assert_allclose(_run(metrics.FBetaScore(average, 2.0, threshold), y, p),
                               _np_fbeta(y, p, average, 2.0, threshold), rtol=1e-6)
    # integer labels are one-hot encoded
    np.testing.assert_allclose(_run(metrics.F1Score(average, threshold), data["sparse"], p),
                               _np_fbeta(y, p, average, 1.0, threshold), rtol=1e-6)
    w = data["weights"]
    np.testing.assert_allclose(_run(metrics.F1Score(average, threshold), y, p, w),
                               _np_fbeta(y, p, average, 1.0, threshold, w), rtol=1e-6)


def test_f1_binary_output_and_keras_example(data):
    y, p = data["binary"][:, :1], data["p_binary"][:, :1]
    got = _run(metrics.F1Score(threshold=0.5), y, p)
    assert got.shape == (1,)
    tp, fp, fn, _ = _np_confusion(y, p, [0.5])
    np.testing.assert_allclose(got, 2 * tp / (2 * tp + fp + fn), rtol=1e-5)
    m = metrics.F1Score(threshold=0.5)
    m.update(np.array([[1, 1, 1], [1, 0, 0], [1, 1, 0]]),
             np.array([[0.2, 0.6, 0.7], [0.2, 0.6, 0.6], [0.6, 0.8, 0.0]]))
    np.testing.assert_allclose(m.result(), [0.5, 0.8, 0.6666667], rtol=1e-5)


# -- AUC -------------------------------------------------------------------------------------

def _np_auc(y, p, num_thresholds=200, curve="ROC", method="interpolation", thresholds=None,
            multi_label=False, w=None, from_logits=False):
    """Keras's AUC from an explicit threshold comparison (not the bucket histogram)."""
    if from_logits:
        p = 1 / (1 + np.exp(-p))
    if thresholds is None:
        inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
    else:
        inner = sorted(thresholds)
    t = np.array([-EPS] + inner + [1 + EPS])
    n = len(t)
    y = y.reshape(len(y), -1) != 0
    p = p.reshape(len(p), -1)
    w = np.ones(len(y)) if w is None else w
    w = np.broadcast_to(w[:, None], y.shape)
    if not multi_label:
        y, p, w = y.reshape(-1, 1), p.reshape(-1, 1), w.reshape(-1, 1)
    above = p[None] > t[:, None, None]  # (T, N, L)
    tp = (above & y[None]) * w[None]
    fp = (above & ~y[None]) * w[None]
    tp, fp = tp.sum(1), fp.sum(1)
    fn = (y * w).sum(0) - tp
    tn = (~y * w).sum(0) - fp
    if curve == "PR" and method == "interpolation":
        dtp = tp[:-1] - tp[1:]
        pp = tp + fp
        dp = pp[:-1] - pp[1:]
        slope = _ratio(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * pp[1:]
        ratio = np.where((pp[:-1] > 0) & (pp[1:] > 0), _ratio(pp[:-1], np.maximum(pp[1:], 0)),
                         1.0)
        terms = _ratio(slope * (dtp + intercept * np.log(ratio)), np.maximum(tp[1:] + fn[1:], 0))
    else:
        rec = _ratio(tp, tp + fn)
        x, yy = (_ratio(fp, fp + tn), rec) if curve == "ROC" else (rec, _ratio(tp, tp + fp))
        h = {"interpolation": (yy[:-1] + yy[1:]) / 2, "minoring": np.minimum(yy[:-1], yy[1:]),
             "majoring": np.maximum(yy[:-1], yy[1:])}[method]
        terms = (x[:-1] - x[1:]) * h
    assert terms.shape[0] == n - 1
    by_label = terms.sum(0)
    return by_label.mean() if multi_label else by_label.sum()


@pytest.mark.parametrize("kwargs", [
    {}, {"num_thresholds": 7}, {"curve": "PR"}, {"summation_method": "minoring"},
    {"summation_method": "majoring"}, {"curve": "PR", "summation_method": "majoring"},
    {"thresholds": [0.1, 0.35, 0.5, 0.9]}, {"multi_label": True},
    {"multi_label": True, "curve": "PR"}, {"thresholds": [0.3, 0.6], "multi_label": True},
], ids=["default", "t7", "pr", "minoring", "majoring", "pr-majoring", "explicit",
        "multilabel", "multilabel-pr", "explicit-multilabel"])
def test_auc_matches_keras_definition(data, kwargs, ctx):
    y, p = data["binary"], data["p_binary"]
    ref_kwargs = {"num_thresholds": kwargs.get("num_thresholds", 200),
                  "curve": kwargs.get("curve", "ROC"),
                  "method": kwargs.get("summation_method", "interpolation"),
                  "thresholds": kwargs.get("thresholds"),
                  "multi_label": kwargs.get("multi_label", False)}
    got = _run(metrics.AUC(**kwargs), y, p, ctx=ctx)
    assert got == pytest.approx(_np_auc(y, p, **ref_kwargs), rel=1e-6, abs=1e-9)


def test_auc_weights_logits_and_rank_auc(data, rng):
    y, p, w = data["binary"], data["p_binary"], data["weights"]
    assert _run(metrics.AUC(), y, p, w) == pytest.approx(_np_auc(y, p, w=w), rel=1e-6)
    z = rng.normal(0, 2, y.shape)
    assert _run(metrics.AUC(from_logits=True), y, z) == \
        pytest.approx(_np_auc(y, z, from_logits=True), rel=1e-6)
    # close to the exact (rank) ROC AUC with 200 thresholds on well-spread scores
    yy = rng.integers(0, 2, 400)
    pp = np.clip(rng.uniform(0, 1, 400) * 0.6 + yy * 0.3, 0, 1)
    pos, neg = pp[yy == 1], pp[yy == 0]
    exact = (pos[:, None] > neg[None]).mean()
    assert _run(metrics.AUC(), yy, pp) == pytest.approx(exact, abs=5e-3)


def test_auc_keras_example_and_edge_values():
    m = metrics.AUC(num_thresholds=3)
    m.update([0, 0, 1, 1], [0, 0.5, 0.3, 0.9])
    assert m.result() == pytest.approx(0.75)
    m = metrics.AUC()
    m.update([0, 1, 1, 0], [0.0, 1.0, 1.0, 0.0])  # predictions exactly 0 and 1
    assert m.result() == pytest.approx(1.0)
    assert math.isnan(metrics.AUC().result())
    tp, fp, tn, fn = metrics.AUC(num_thresholds=3).confusion() or (None,) * 4
    assert tp is None


# -- regression and loss-based --------------------------------------------------------------

def _cosine(y, p):
    def unit(x):
        return x / np.sqrt(np.maximum((x ** 2).sum(-1, keepdims=True), 1e-12))
    return (unit(y) * unit(p)).sum(-1)


REGRESSION = [
    (metrics.MeanSquaredError, lambda y, p: ((y - p) ** 2).mean()),
    (metrics.MeanAbsoluteError, lambda y, p: np.abs(y - p).mean()),
    (metrics.RootMeanSquaredError, lambda y, p: np.sqrt(((y - p) ** 2).mean())),
    (metrics.MeanAbsolutePercentageError,
     lambda y, p: 100 * (np.abs(y - p) / np.maximum(np.abs(y), EPS)).mean()),
    (metrics.MeanSquaredLogarithmicError,
     lambda y, p: ((np.log1p(np.maximum(p, EPS)) - np.log1p(np.maximum(y, EPS))) ** 2).mean()),
    (metrics.LogCoshError, lambda y, p: (np.logaddexp(p - y, y - p) - np.log(2)).mean()),
    (metrics.CosineSimilarity, lambda y, p: _cosine(y, p).mean()),
    (metrics.Hinge, lambda y, p: np.maximum(1 - np.sign(y) * p, 0).mean()),
    (metrics.SquaredHinge, lambda y, p: (np.maximum(1 - np.sign(y) * p, 0) ** 2).mean()),
    (metrics.Poisson, lambda y, p: (np.abs(p) - np.abs(y) * np.log(np.abs(p) + EPS)).mean()),
]


@pytest.mark.parametrize("cls,reference", REGRESSION, ids=[c[0].__name__ for c in REGRESSION])
def test_regression_metrics(data, cls, reference, ctx):
    y, p = data["y_reg"], data["p_reg"]
    if cls in (metrics.Hinge, metrics.SquaredHinge):
        y = np.sign(y)
    if cls is metrics.Poisson:
        y, p = np.abs(y), np.abs(p)
    assert _run(cls(), y, p, ctx=ctx) == pytest.approx(reference(y, p), rel=1e-5)


def test_rmse_is_root_of_the_overall_mean_and_weighted(data):
    y, p, w = data["y_reg"], data["p_reg"], data["weights"]
    sq = ((y - p) ** 2).mean(1)
    assert _run(metrics.RootMeanSquaredError(), y, p, w) == \
        pytest.approx(np.sqrt((sq * w).sum() / w.sum()), rel=1e-5)
    assert _run(metrics.MeanSquaredError(), y, p, w) == \
        pytest.approx((sq * w).sum() / w.sum(), rel=1e-5)


def test_crossentropy_metrics_and_kl(data):
    p, onehot, sparse, s = data["probs"], data["onehot"], data["sparse"], data["scores"]
    nll = -np.log(p[np.arange(N), sparse])
    assert _run(metrics.CategoricalCrossentropy(), onehot, p) == pytest.approx(nll.mean(),
                                                                               rel=1e-5)
    assert _run(metrics.SparseCategoricalCrossentropy(), sparse, p) == \
        pytest.approx(nll.mean(), rel=1e-5)
    assert _run(metrics.SparseCategoricalCrossentropy(from_logits=True), sparse, s) == \
        pytest.approx(nll.mean(), rel=1e-5)
    smooth = onehot * 0.9 + 0.1 / data["c"]
    assert _run(metrics.CategoricalCrossentropy(label_smoothing=0.1), onehot, p) == \
        pytest.approx(-(smooth * np.log(p)).sum(1).mean(), rel=1e-5)
    yb, pb = data["binary"], data["p_binary"]
    bce = -(yb * np.log(pb) + (1 - yb) * np.log(1 - pb))
    assert _run(metrics.BinaryCrossentropy(), yb, pb) == pytest.approx(bce.mean(), rel=1e-4)
    q = _softmax(data["scores"][::-1])
    assert _run(metrics.KLDivergence(), q, p) == \
        pytest.approx((q * np.log(q / p)).sum(1).mean(), rel=1e-5)
    assert _run(metrics.CategoricalHinge(), onehot, s) == pytest.approx(np.maximum(
        ((1 - onehot) * s).max(1) - (onehot * s).sum(1) + 1, 0).mean(), rel=1e-5)


def test_perplexity(rng):
    v = 6
    scores = rng.normal(size=(N, 4, v))
    labels = rng.integers(0, v, (N, 4))
    logp = np.log(_softmax(scores))
    nll = -np.take_along_axis(logp, labels[..., None], -1)[..., 0]
    assert _run(metrics.Perplexity(from_logits=True), labels, scores) == \
        pytest.approx(np.exp(nll.mean()), rel=1e-5)
    assert _run(metrics.Perplexity(), labels, _softmax(scores)) == \
        pytest.approx(np.exp(nll.mean()), rel=1e-5)
    keep = labels != 0
    assert _run(metrics.Perplexity(from_logits=True, mask_token_id=0), labels, scores) == \
        pytest.approx(np.exp(nll[keep].mean()), rel=1e-5)


def test_mean_sum_and_wrapper(data):
    m = metrics.Mean()
    m.update(nd.array([1.0, 3.0]))
    m.update(nd.array([5.0]))
    assert m.result() == pytest.approx(3.0)
    m.update(nd.array([10.0]), sample_weight=nd.array([2.0]))
    assert m.result() == pytest.approx((1 + 3 + 5 + 20) / 5)
    m.reset()
    assert math.isnan(m.result())
    m.update(nd.array([2.0]), count=4)  # one batch mean standing for 4 samples
    m.update(nd.array([1.0, 1.0]))
    assert m.result() == pytest.approx((8 + 2) / 6)
    s = metrics.Sum()
    s.update(nd.array([1.0, 2.0]))
    s.update(np.array([3.0]), sample_weight=np.array([2.0]))
    assert s.result() == pytest.approx(9.0)
    w = metrics.MeanMetricWrapper(lambda y, p: nd.abs(y - p) * 2.0, name="twice_mae")
    y, p = data["y_reg"], data["p_reg"]
    assert _run(w, y, p) == pytest.approx(2 * np.abs(y - p).mean(), rel=1e-5)
    w = metrics.get(losses.mean_absolute_error)
    assert _run(w, y, p) == pytest.approx(np.abs(y - p).mean(), rel=1e-5)


# -- laziness -------------------------------------------------------------------------------

ALL_METRICS = [
    lambda: metrics.Accuracy(), lambda: metrics.BinaryAccuracy(),
    lambda: metrics.CategoricalAccuracy(), lambda: metrics.SparseCategoricalAccuracy(),
    lambda: metrics.TopKCategoricalAccuracy(k=2), lambda: metrics.SparseTopKCategoricalAccuracy(2),
    lambda: metrics.Precision(thresholds=[0.2, 0.5]), lambda: metrics.Recall(top_k=2),
    lambda: metrics.F1Score("macro"), lambda: metrics.FBetaScore(beta=0.5),
    lambda: metrics.AUC(), lambda: metrics.AUC(thresholds=[0.5], multi_label=True),
    lambda: metrics.MeanSquaredError(), lambda: metrics.RootMeanSquaredError(),
    lambda: metrics.CategoricalCrossentropy(), lambda: metrics.SparseCategoricalCrossentropy(),
    lambda: metrics.BinaryCrossentropy(), lambda: metrics.Perplexity(),
    lambda: metrics.KLDivergence(), lambda: metrics.CosineSimilarity(),
    lambda: metrics.get("accuracy"), lambda: metrics.get("crossentropy"),
]


def _labels_for(metric, data):
    sparse = isinstance(metric, (metrics.SparseCategoricalAccuracy, metrics.Perplexity,
                                 metrics.SparseTopKCategoricalAccuracy,
                                 metrics.SparseCategoricalCrossentropy))
    return data["sparse"] if sparse else data["onehot"]


@pytest.mark.parametrize("make", ALL_METRICS, ids=range(len(ALL_METRICS)))
def test_update_never_waits_for_the_engine(make, data, monkeypatch):
    metric = make()
    y, p = _labels_for(metric, data), data["probs"]
    ys = [nd.array(b.astype(np.float32)) for (b,) in _batches(y)]
    ps = [nd.array(b.astype(np.float32)) for (b,) in _batches(p)]
    for arr in ys + ps:
        arr.wait_to_read()
    eng = engine.get_engine()

    def no_wait(*args, **kwargs):
        raise AssertionError("Metric.update waited for the engine")
    monkeypatch.setattr(eng, "wait_for_var", no_wait)
    monkeypatch.setattr(eng, "wait_all", no_wait)
    for yb, pb in zip(ys, ps):
        metric.update(yb, pb)
    monkeypatch.undo()
    value = metric.result()
    assert np.all(np.isfinite(value))


# -- lookup, resolution, config, errors -------------------------------------------------------

def test_get_resolves_every_name_and_keeps_the_given_name():
    for name in sorted(metrics._BY_NAME):
        m = metrics.get(name)
        assert isinstance(m, metrics.Metric) and m.name == name
    assert isinstance(metrics.get("mse"), metrics.MeanSquaredError)
    assert isinstance(metrics.get("rmse"), metrics.RootMeanSquaredError)
    assert isinstance(metrics.get("AUC"), metrics.AUC)
    assert isinstance(metrics.get(metrics.Precision), metrics.Precision)


@pytest.mark.parametrize("loss,kind", [
    ("sparse_categorical_crossentropy", "sparse"), ("categorical_crossentropy", "categorical"),
    ("binary_crossentropy", "binary"), ("categorical_hinge", "categorical"),
    ("kld", "categorical"),
])
def test_for_loss_resolves_accuracy_and_crossentropy(loss, kind):
    acc = metrics.for_loss("accuracy", losses.get(loss))
    assert acc.name == "accuracy"
    assert isinstance(acc, metrics._ACCURACY[kind])
    ce = metrics.for_loss("ce", losses.get(loss))
    assert isinstance(ce, metrics._CROSSENTROPY[kind]) and ce.name == "ce"
    logits = metrics.for_loss("crossentropy",
                              losses.SparseCategoricalCrossentropy(from_logits=True))
    assert logits._loss.from_logits


@pytest.mark.parametrize("loss_cls", losses.CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("units", [1, 3])
def test_for_loss_works_for_every_loss(loss_cls, units, rng):
    loss = loss_cls()
    out_shape = (6, units)
    label_shape = loss.label_shape(out_shape)
    for shape in (out_shape, None):
        acc = metrics.for_loss("acc", loss, shape)
        assert acc.name == "acc"
        if units == 1 and isinstance(loss, losses.SparseCategoricalCrossentropy):
            y = np.zeros(label_shape)
        else:
            y = rng.integers(0, units, label_shape) if len(label_shape) < 2 else \
                np.eye(units)[rng.integers(0, units, 6)] if units > 1 else \
                rng.integers(0, 2, label_shape)
        acc.update(y, rng.uniform(0, 1, out_shape))
        assert 0.0 <= acc.result() <= 1.0
    assert isinstance(metrics.for_loss("mse", loss), metrics.MeanSquaredError)
    assert isinstance(metrics.for_loss("accuracy", None, (6, 1)), metrics.BinaryAccuracy)


def test_auto_accuracy_follows_keras_shape_rules():
    for y, p, cls in (
            ([[1], [0]], [[0.7], [0.2]], metrics.BinaryAccuracy),
            ([1, 0], [[0.1, 0.9], [0.8, 0.2]], metrics.SparseCategoricalAccuracy),
            ([[0, 1], [1, 0]], [[0.1, 0.9], [0.8, 0.2]], metrics.CategoricalAccuracy)):
        m = metrics.for_loss("accuracy", losses.MeanSquaredError())
        m.update(y, p)
        assert isinstance(m._inner, cls) and m.result() == 1.0


CONFIGURED = [
    metrics.BinaryAccuracy(threshold=0.3, name="acc03"), metrics.TopKCategoricalAccuracy(k=3),
    metrics.SparseTopKCategoricalAccuracy(k=2), metrics.Precision(thresholds=[0.2, 0.4], top_k=2),
    metrics.Recall(thresholds=0.7, class_id=1), metrics.F1Score("weighted", 0.4),
    metrics.FBetaScore("macro", 0.5), metrics.AUC(num_thresholds=50, curve="PR",
                                                  summation_method="minoring"),
    metrics.AUC(thresholds=[0.2, 0.6], multi_label=True, label_weights=[1, 2],
                from_logits=True),
    metrics.BinaryCrossentropy(from_logits=True, label_smoothing=0.1),
    metrics.CategoricalCrossentropy(label_smoothing=0.2),
    metrics.SparseCategoricalCrossentropy(from_logits=True), metrics.CosineSimilarity(axis=1),
    metrics.Perplexity(from_logits=True, mask_token_id=0), metrics.MeanSquaredError(),
    metrics.RootMeanSquaredError(name="rmse"), metrics.Mean(name="avg"),
]


@pytest.mark.parametrize("metric", CONFIGURED, ids=lambda m: type(m).__name__)
def test_serialize_round_trip(metric):
    config = json.loads(json.dumps(metrics.serialize(metric)))
    again = metrics.get(config)
    assert type(again) is type(metric)
    assert again.get_config() == metric.get_config()


def test_unknown_names_and_bad_arguments_give_clear_errors():
    with pytest.raises(ValueError, match=r"unknown metric 'accuracyy'.*did you mean 'accuracy'"):
        metrics.get("accuracyy")
    with pytest.raises(ValueError, match=r"did you mean 'precision'"):
        metrics.get("precison")
    with pytest.raises(ValueError, match="known: .*auc"):
        metrics.get("nope")
    with pytest.raises(TypeError, match="cannot interpret 3 as a metric"):
        metrics.get(3)
    with pytest.raises(ValueError, match=r"'k' must be an int >= 1. Received: k=0"):
        metrics.TopKCategoricalAccuracy(k=0)
    with pytest.raises(ValueError, match=r"Received: average='mean'"):
        metrics.F1Score(average="mean")
    with pytest.raises(ValueError, match=r"Received: curve='XY'"):
        metrics.AUC(curve="XY")
    with pytest.raises(ValueError, match=r"num_thresholds=1"):
        metrics.AUC(num_thresholds=1)


def test_label_shapes_that_do_not_fit_are_explained(data):
    p = nd.array(data["probs"].astype(np.float32))
    with pytest.raises(ValueError, match=r"one-hot labels need the non-sparse metric"):
        metrics.SparseCategoricalAccuracy().update(data["onehot"], p)
    with pytest.raises(ValueError, match=r"integer labels need the sparse metric"):
        metrics.CategoricalAccuracy().update(data["sparse"], p)
    with pytest.raises(ValueError, match=r"labels of shape \(23, 4\) do not fit predictions "
                                         r"of shape \(23, 5\)"):
        metrics.TopKCategoricalAccuracy().update(np.zeros((N, 4)), p)
    with pytest.raises(ValueError, match=r"mean_squared_error expects labels of shape "
                                         r"\(23, 5\)"):
        metrics.MeanSquaredError().update(np.zeros((N, 2)), p)
    with pytest.raises(ValueError, match=r"class_id=7 but the predictions have 5 classes"):
        metrics.Precision(class_id=7).update(data["onehot"], p)
    with pytest.raises(ValueError, match=r"one weight per sample"):
        metrics.Mean().update(p, sample_weight=np.ones(3))


# -- in a model -------------------------------------------------------------------------------

def test_fit_and_evaluate_report_metrics_that_match_numpy(rng):
    x = rng.normal(size=(N, 4)).astype(np.float32)
    y = (x[:, :1] + 0.3 * rng.normal(size=(N, 1)) > 0).astype(np.float32)
    model = deepkit.Sequential([L.Input((4,)), L.Dense(1, activation="sigmoid")])
    model.compile(deepkit.optimizers.SGD(0.1), "binary_crossentropy",
                  metrics=["accuracy", "auc", "precision", "recall",
                           metrics.F1Score(threshold=0.5), "mse"])
    history = model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0)
    assert set(history.history) >= {"loss", "accuracy", "auc", "precision", "recall",
                                    "f1_score", "mse"}
    logs = model.evaluate(x, y, batch_size=BATCH, return_dict=True)
    p = model.predict(x, batch_size=BATCH).astype(np.float64)
    assert logs["accuracy"] == pytest.approx(((p > 0.5) == y).mean())
    assert logs["auc"] == pytest.approx(_np_auc(y, p), rel=1e-5)
    tp, fp, fn, _ = _np_confusion(y, p, [0.5])
    assert logs["precision"] == pytest.approx(_ratio(tp, tp + fp)[0])
    assert logs["recall"] == pytest.approx(_ratio(tp, tp + fn)[0])
    np.testing.assert_allclose(logs["f1_score"], 2 * tp / (2 * tp + fp + fn + EPS), rtol=1e-5)
    assert logs["mse"] == pytest.approx(((p - y) ** 2).mean(), rel=1e-5)


def test_sparse_model_metrics_match_numpy(rng):
    x = rng.normal(size=(N, 4)).astype(np.float32)
    y = rng.integers(0, 4, N)
    model = deepkit.Sequential([L.Input((4,)), L.Dense(4, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy",
                  metrics=["accuracy", metrics.SparseTopKCategoricalAccuracy(k=2), "perplexity"])
    logs = model.evaluate(x, y, batch_size=BATCH, return_dict=True)
    p = model.predict(x).astype(np.float64)
    nll = -np.log(p[np.arange(N), y])
    assert logs["loss"] == pytest.approx(nll.mean(), rel=1e-5)
    assert logs["accuracy"] == pytest.approx((p.argmax(1) == y).mean())
    assert logs["sparse_top_k_categorical_accuracy"] == \
        pytest.approx(_np_in_top_k(y, p, 2).mean())
    assert logs["perplexity"] == pytest.approx(np.exp(nll.mean()), rel=1e-5)


def test_mean_takes_integers_and_float64_weights():
    m = metrics.Mean()
    m.update(np.array([1, 2]), sample_weight=nd.array(np.array([1.0, 3.0]), dtype="float64"))
    assert m.result() == pytest.approx(7 / 4)


# -- per-batch means, snapshots and the options MXNet's metrics rest on ---------------------

def _batch_means(values):
    return np.mean([v.mean() for (v,) in _batches(values)])


def test_per_batch_mode_averages_batch_values(data):
    y, p = data["y_reg"], data["p_reg"]
    err = y - p
    assert _run(metrics.MeanSquaredError(per_batch=True), y, p) == \
        pytest.approx(_batch_means(err ** 2), rel=1e-6)
    assert _run(metrics.MeanAbsoluteError(per_batch=True), y, p) == \
        pytest.approx(_batch_means(np.abs(err)), rel=1e-6)
    roots = np.mean([np.sqrt((e ** 2).mean()) for (e,) in _batches(err)])
    assert _run(metrics.RootMeanSquaredError(per_batch=True), y, p) == \
        pytest.approx(roots, rel=1e-6)
    # sample weights weigh the values inside each batch
    w = data["weights"]
    means = [(np.sum((eb ** 2).mean(1) * wb) / np.sum(wb)) for eb, wb in _batches(err, w)]
    assert _run(metrics.MeanSquaredError(per_batch=True), y, p, w) == \
        pytest.approx(np.mean(means), rel=1e-5)
    config = metrics.serialize(metrics.MeanSquaredError(per_batch=True))
    assert metrics.get(config).per_batch


def test_snapshot_gives_the_value_of_later_batches(data):
    m = metrics.SparseCategoricalAccuracy()
    y, p = data["sparse"], data["probs"]
    m.update(y[:8], p[:8])
    mark = m.snapshot()
    m.update(y[8:], p[8:])
    hits = p.argmax(1) == y
    assert m.result_since(mark) == pytest.approx(hits[8:].mean())
    assert m.result() == pytest.approx(hits.mean())
    assert m.accumulated("count", mark) == N - 8 and m.accumulated("count") == N
    assert m.accumulated("total", mark) == hits[8:].sum()
    assert math.isnan(m.result_since(m.snapshot()))
    auc = metrics.AUC()
    auc.update(data["binary"][:8], data["p_binary"][:8])
    mark = auc.snapshot()
    auc.update(data["binary"][8:], data["p_binary"][8:])
    fresh = metrics.AUC()
    fresh.update(data["binary"][8:], data["p_binary"][8:])
    assert auc.result_since(mark) == pytest.approx(fresh.result())


def _np_f1(label, pred):
    tp = np.sum(pred & (label == 1))
    fp, fn = np.sum(pred & (label != 1)), np.sum(~pred & (label == 1))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def test_binary_f1_score(data):
    y = data["binary"][:, 0]
    scores = np.stack([1 - data["p_binary"][:, 0], data["p_binary"][:, 0]], 1)
    pred = scores.argmax(1) == 1
    assert _run(metrics.BinaryF1Score(), y, scores) == pytest.approx(_np_f1(y, pred))
    per_batch = np.mean([_np_f1(yb, pb) for yb, pb in _batches(y, pred)])
    assert _run(metrics.BinaryF1Score(per_batch=True), y, scores) == pytest.approx(per_batch)
    prob = data["p_binary"][:, 0]
    assert _run(metrics.BinaryF1Score(threshold=0.3), y, prob) == \
        pytest.approx(_np_f1(y, prob > 0.3))
    with pytest.raises(ValueError, match="only supports binary classification"):
        metrics.BinaryF1Score().update(data["sparse"], data["probs"])


def test_pearson_correlation(data):
    y, p = data["y_reg"], data["p_reg"]
    pooled = np.corrcoef(p.ravel(), y.ravel())[0, 1]
    assert _run(metrics.PearsonCorrelation(), y, p) == pytest.approx(pooled, rel=1e-6)
    per_batch = np.mean([np.corrcoef(pb.ravel(), yb.ravel())[0, 1]
                         for yb, pb in _batches(y, p)])
    assert _run(metrics.PearsonCorrelation(per_batch=True), y, p) == \
        pytest.approx(per_batch, rel=1e-6)
    assert isinstance(metrics.get("pearsonr"), metrics.PearsonCorrelation)


def test_exact_top_k_and_raw_probability_options(data):
    p = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    y = np.array([1, 0])
    # the label of row 0 ties the top score: Keras counts it, exactly-k may not
    assert _run(metrics.SparseTopKCategoricalAccuracy(1), y, p) == pytest.approx(0.5)
    exact = metrics.SparseTopKCategoricalAccuracy(2, count_ties=False)
    y2, p2 = data["sparse"], data["probs"]
    top2 = np.argsort(p2, axis=1)[:, -2:]
    assert _run(exact, y2, p2) == pytest.approx((top2 == y2[:, None]).any(1).mean())
    picked = p2[np.arange(N), y2]
    ce = metrics.SparseCategoricalCrossentropy(epsilon=1e-3)
    assert _run(ce, y2, p2) == pytest.approx(np.mean(-np.log(picked + 1e-3)), rel=1e-5)
    ppl = metrics.Perplexity(min_probability=0.05, mask_token_id=-1)
    assert _run(ppl, y2, p2) == \
        pytest.approx(np.exp(np.mean(-np.log(np.maximum(picked, 0.05)))), rel=1e-5)
    with pytest.raises(ValueError, match="from_logits"):
        metrics.Perplexity(from_logits=True, min_probability=0.1)
