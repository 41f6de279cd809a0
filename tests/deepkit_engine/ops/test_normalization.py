"""Normalization ops: forward against plain numpy loops, BatchNorm's training mode and
moving statistics, numeric gradients of every input, shape inference and errors."""
import numpy as np
import pytest

from deepkit_engine import autograd, cpu
from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import DTypeError, EngineError, ParamError, ShapeError
from deepkit_engine.ops.registry import get_op
from deepkit_engine.replicas import ReplicaGroup
from deepkit_engine.testing import assert_almost_equal, check_numeric_gradient

from .op_cases import OpCase, forward_params, gradient_params, run_forward, run_gradient


def _positive(shape, low=0.5, high=1.5):
    """An input spec: uniform values in [low, high) (variances, scales)."""
    return lambda rng, dtype: rng.uniform(low, high, size=shape).astype(dtype)


# -- float64 references, written with plain loops ------------------------------------

def _channel_index(ndim, axis, c):
    return (slice(None),) * (axis % ndim) + (c,)


def _bn_ref(data, gamma, beta, mm, mv, eps=1e-3, fix_gamma=True, axis=1,
            output_mean_var=False, **_):
    """BatchNorm outside training: the moving statistics."""
    out = np.empty_like(data)
    for c in range(data.shape[axis]):
        idx = _channel_index(data.ndim, axis, c)
        scale = 1.0 if fix_gamma else gamma[c]
        out[idx] = (data[idx] - mm[c]) / np.sqrt(mv[c] + eps) * scale + beta[c]
    if output_mean_var:
        return [out, mm, 1.0 / np.sqrt(mv + eps)]
    return out


def _bn_train_ref(data, gamma, beta, mm, mv, eps=1e-3, momentum=0.9, fix_gamma=True, axis=1):
    """BatchNorm in training: (output, batch mean, inverse std, new moving mean, new var)."""
    out = np.empty_like(data)
    nc = data.shape[axis]
    mean, invstd, new_mm, new_mv = (np.zeros(nc) for _ in range(4))
    for c in range(nc):
        idx = _channel_index(data.ndim, axis, c)
        values = data[idx]
        mu = values.mean()
        var = ((values - mu) ** 2).mean()  # biased
        scale = 1.0 if fix_gamma else gamma[c]
        out[idx] = (values - mu) / np.sqrt(var + eps) * scale + beta[c]
        mean[c], invstd[c] = mu, 1.0 / np.sqrt(var + eps)
        new_mm[c] = mm[c] * momentum + mu * (1 - momentum)
        new_mv[c] = mv[c] * momentum + var * (1 - momentum)
    return out, mean, invstd, new_mm, new_mv


def _ln_ref(data, gamma, beta, axis=-1, eps=1e-5, output_mean_var=False):
    x = np.moveaxis(data, axis, -1)
    out = np.empty_like(x)
    mean = np.empty(x.shape[:-1])
    std = np.empty(x.shape[:-1])
    for idx in np.ndindex(*x.shape[:-1]):
        v = x[idx]
        mean[idx] = v.mean()
        std[idx] = np.sqrt(((v - mean[idx]) ** 2).mean() + eps)
        for k in range(v.size):
            out[idx + (k,)] = (v[k] - mean[idx]) / std[idx] * gamma[k] + beta[k]
    out = np.moveaxis(out, -1, axis)
    if output_mean_var:
        return [out, np.expand_dims(mean, axis), np.expand_dims(std, axis)]
    return out


def _in_ref(data, gamma, beta, eps=1e-3):
    out = np.empty_like(data)
    for n in range(data.shape[0]):
        for c in range(data.shape[1]):
            v = data[n, c]
            mu = v.mean()
            var = ((v - mu) ** 2).mean()
            out[n, c] = (v - mu) / np.sqrt(var + eps) * gamma[c] + beta[c]
    return out


def _gn_ref(data, gamma, beta, num_groups=1, eps=1e-5, output_mean_var=False):
    n_, c_ = data.shape[:2]
    per = c_ // num_groups
    out = np.empty_like(data)
    mean = np.empty((n_, num_groups))
    std = np.empty((n_, num_groups))
    for n in range(n_):
        for grp in range(num_groups):
            chans = range(grp * per, (grp + 1) * per)
            v = data[n, grp * per:(grp + 1) * per]
            mean[n, grp] = v.mean()
            std[n, grp] = np.sqrt(((v - v.mean()) ** 2).mean() + eps)
            for c in chans:
                k = grp if gamma.size == num_groups else c  # per group (MXNet 1.x) or channel
                out[n, c] = (data[n, c] - mean[n, grp]) / std[n, grp] * gamma[k] + beta[k]
    return [out, mean, std] if output_mean_var else out


def _l2_ref(data, eps=1e-10, mode="instance"):
    out = np.empty_like(data)
    if mode == "instance":
        for n in range(data.shape[0]):
            out[n] = data[n] / np.sqrt((data[n] ** 2).sum() + eps)
    elif mode == "channel":
        for n in range(data.shape[0]):
            for pos in np.ndindex(*data.shape[2:]):
                v = data[(n, slice(None)) + pos]
                out[(n, slice(None)) + pos] = v / np.sqrt((v ** 2).sum() + eps)
    else:
        for n in range(data.shape[0]):
            for c in range(data.shape[1]):
                out[n, c] = data[n, c] / np.sqrt((data[n, c] ** 2).sum() + eps)
    return out


def _lrn_ref(data, nsize, alpha=1e-4, beta=0.75, knorm=2.0, region="across"):
    """Caffe's lrn_layer.cpp: ACROSS_CHANNELS, or WITHIN_CHANNEL (k ignored, shift 1)."""
    out = np.empty_like(data)
    half = nsize // 2
    n_, c_ = data.shape[:2]
    for n in range(n_):
        for c in range(c_):
            if region == "across":
                total = np.zeros(data.shape[2:])
                for j in range(max(0, c - half), min(c_, c + half + 1)):
                    total += data[n, j] ** 2
                scale = knorm + alpha / nsize * total
            else:
                h_, w_ = data.shape[2:]
                scale = np.empty((h_, w_))
                for h in range(h_):
                    for w in range(w_):
                        window = data[n, c, max(0, h - half):h + half + 1,
                                      max(0, w - half):w + half + 1]
                        scale[h, w] = 1.0 + alpha / nsize ** 2 * (window ** 2).sum()
            out[n, c] = data[n, c] * scale ** -beta
    return out


# -- cases -----------------------------------------------------------------------------

def _bn_case(shape, axis=1, name="", **params):
    c = shape[axis]
    grad = False  # BatchNorm has aux states: its gradients are checked in test_batchnorm_*
    return OpCase("BatchNorm", [shape, _positive((c,)), (c,), (c,), _positive((c,))],
                  _bn_ref, dict(params, **({"axis": axis} if axis != 1 else {})), grad=grad,
                  name=name)


CASES = [
    _bn_case((4, 3)),
    _bn_case((2, 3, 4, 5), fix_gamma=False),
    _bn_case((2, 3, 4), axis=-1, fix_gamma=False, eps=1e-5),
    _bn_case((3, 2, 2), axis=0, fix_gamma=False),
    _bn_case((2, 3, 2), fix_gamma=False, output_mean_var=True),
    _bn_case((1, 1, 1)),
    _bn_case((0, 3, 2), fix_gamma=False),
    # SyncBatchNorm outside a data-parallel step is BatchNorm
    OpCase("SyncBatchNorm", [(2, 3, 4), _positive((3,)), (3,), (3,), _positive((3,))], _bn_ref,
           {"fix_gamma": False}, grad=False),
    OpCase("SyncBatchNorm", [(4, 2), _positive((2,)), (2,), (2,), _positive((2,))], _bn_ref,
           {"output_mean_var": True}, grad=False),
    # LayerNorm
    OpCase("LayerNorm", [(3, 5), (5,), (5,)], _ln_ref),
    OpCase("LayerNorm", [(2, 3, 4), (3,), (3,)], _ln_ref, {"axis": 1}),
    OpCase("LayerNorm", [(2, 3, 4), (4,), (4,)], _ln_ref, {"eps": 1e-3}),
    OpCase("LayerNorm", [(2, 3, 2), (2,), (2,)], _ln_ref, {"axis": 0, "output_mean_var": True}),
    OpCase("LayerNorm", [(1, 1), (1,), (1,)], _ln_ref),
    OpCase("LayerNorm", [(0, 4), (4,), (4,)], _ln_ref, grad=False),
    # InstanceNorm
    OpCase("InstanceNorm", [(2, 3, 4), (3,), (3,)], _in_ref),
    OpCase("InstanceNorm", [(2, 2, 2, 3), (2,), (2,)], _in_ref, {"eps": 1e-5}),
    OpCase("InstanceNorm", [(1, 1, 2), (1,), (1,)], _in_ref),
    OpCase("InstanceNorm", [(0, 3, 2), (3,), (3,)], _in_ref, grad=False),
    # GroupNorm: gamma/beta per group (MXNet 1.x) or per channel (deepkit extension)
    OpCase("GroupNorm", [(2, 4, 3), (2,), (2,)], _gn_ref, {"num_groups": 2}),
    OpCase("GroupNorm", [(2, 6, 2, 2), (3,), (3,)], _gn_ref, {"num_groups": 3}, grad=False),
    OpCase("GroupNorm", [(2, 4, 3), (4,), (4,)], _gn_ref, {"num_groups": 2}, name="per_channel"),
    OpCase("GroupNorm", [(2, 3, 2), (1,), (1,)], _gn_ref),
    OpCase("GroupNorm", [(2, 4, 2), (2,), (2,)], _gn_ref,
           {"num_groups": 2, "output_mean_var": True}),
    OpCase("GroupNorm", [(2, 4, 2), (4,), (4,)], _gn_ref,
           {"num_groups": 2, "output_mean_var": True}, name="per_channel"),
    # L2Normalization
    OpCase("L2Normalization", [(3, 4)], _l2_ref),
    OpCase("L2Normalization", [(2, 3, 2, 2)], _l2_ref, grad=False),
    OpCase("L2Normalization", [(2, 3, 2)], _l2_ref, {"mode": "instance", "eps": 1e-3}),
    OpCase("L2Normalization", [(2, 3, 4)], _l2_ref, {"mode": "channel"}),
    OpCase("L2Normalization", [(2, 3, 2, 2)], _l2_ref, {"mode": "spatial"}),
    OpCase("L2Normalization", [(0, 3, 2)], _l2_ref, {"mode": "channel"}, grad=False),
    # LRN: across channels (MXNet, Caffe ACROSS_CHANNELS) and within (Caffe WITHIN_CHANNEL)
    OpCase("LRN", [(2, 5, 3, 3)], _lrn_ref, {"nsize": 3}, grad=False),
    OpCase("LRN", [(1, 4, 2, 2)], _lrn_ref, {"nsize": 3, "alpha": 0.5, "beta": 0.6,
                                             "knorm": 1.5}),
    OpCase("LRN", [(1, 3, 2, 2)], _lrn_ref, {"nsize": 7, "alpha": 2.0, "knorm": 1.0}),
    OpCase("LRN", [(2, 6, 2)], _lrn_ref, {"nsize": 5, "alpha": 1.0}, name="3d"),
    OpCase("LRN", [(2, 2, 4, 5)], _lrn_ref, {"nsize": 3, "alpha": 1.0, "region": "within"},
           grad=False),
    OpCase("LRN", [(1, 2, 3, 3)], _lrn_ref, {"nsize": 5, "alpha": 3.0, "beta": 0.75,
                                             "knorm": 7.0, "region": "within"}),
    OpCase("LRN", [(1, 1, 2, 4)], _lrn_ref, {"nsize": 3, "alpha": 2.0, "beta": 0.5,
                                             "region": "within"}),
]

#: BatchNorm's moving statistics are auxiliary states, which run_gradient does not bind.
OTHER_GRAD_COVERED_OPS = {"BatchNorm": "test_batchnorm_gradient",
                          "SyncBatchNorm": "test_sync_batchnorm_gradient"}
#: The backward ops are checked against numeric gradients of the numpy references.
OTHER_COVERED_OPS = {name: "test_backward_ops_match_numpy_gradients" for name in (
    "_backward_BatchNorm", "_backward_LayerNorm", "_backward_InstanceNorm",
    "_backward_GroupNorm", "_backward_L2Normalization", "_backward_LRN")}
OTHER_COVERED_OPS["_backward_SyncBatchNorm"] = "test_sync_batchnorm_devices_equal_one_batch"


@pytest.mark.parametrize("case,dtype", forward_params(CASES))
def test_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)


@pytest.mark.parametrize("case", gradient_params(CASES))
def test_gradient(case, ctx):
    run_gradient(case, ctx)


def test_aliases():
    assert get_op("BatchNorm_v1") is get_op("BatchNorm")
    assert get_op("_npx_batch_norm") is get_op("BatchNorm")
    assert get_op("_npx_layer_norm") is get_op("LayerNorm")


# -- BatchNorm: training mode and moving statistics ------------------------------------

def _bn_inputs(shape, axis=1, seed=0):
    rng = np.random.default_rng(seed)
    c = shape[axis]
    return (rng.normal(1.0, 2.0, size=shape), rng.uniform(0.5, 1.5, c), rng.normal(size=c),
            rng.normal(size=c), rng.uniform(0.5, 1.5, c))


@pytest.mark.parametrize("params,shape", [
    ({}, (4, 3, 2, 2)),
    ({"fix_gamma": False, "momentum": 0.8}, (3, 2, 5)),
    ({"fix_gamma": False, "axis": -1, "eps": 1e-5}, (2, 3, 4)),
    ({"fix_gamma": False, "output_mean_var": True}, (4, 3)),
])
def test_batchnorm_training_updates_moving_stats_through_executor(params, shape, ctx):
    axis = params.get("axis", 1)
    x, gamma, beta, mm, mv = _bn_inputs(shape, axis)
    net = sym.BatchNorm(sym.Variable("data"), name="bn", **params)
    assert net.list_auxiliary_states() == ["bn_moving_mean", "bn_moving_var"]
    exe = net.bind(ctx, {"data": nd.array(x, ctx=ctx, dtype="float64"),
                         "bn_gamma": nd.array(gamma, ctx=ctx, dtype="float64"),
                         "bn_beta": nd.array(beta, ctx=ctx, dtype="float64")},
                   aux_states={"bn_moving_mean": nd.array(mm, ctx=ctx, dtype="float64"),
                               "bn_moving_var": nd.array(mv, ctx=ctx, dtype="float64")})
    ref = {k: v for k, v in params.items() if k != "output_mean_var"}
    out, mean, invstd, new_mm, new_mv = _bn_train_ref(x, gamma, beta, mm, mv, **ref)
    outs = exe.forward(is_train=True)
    assert_almost_equal(outs[0], out)
    if params.get("output_mean_var"):
        assert len(outs) == 3
        assert_almost_equal(outs[1], mean)
        assert_almost_equal(outs[2], invstd)  # MXNet: the 'var' output is the inverse std
    assert_almost_equal(exe.aux_dict["bn_moving_mean"], new_mm)
    assert_almost_equal(exe.aux_dict["bn_moving_var"], new_mv)
    # a second training pass moves them again; inference leaves them and uses them
    exe.forward(is_train=True)
    mm2 = new_mm * params.get("momentum", 0.9) + mean * (1 - params.get("momentum", 0.9))
    assert_almost_equal(exe.aux_dict["bn_moving_mean"], mm2)
    before = [exe.aux_dict[k].asnumpy() for k in ("bn_moving_mean", "bn_moving_var")]
    outs = exe.forward(is_train=False)
    ref_out = _bn_ref(x, gamma, beta, before[0], before[1], **params)
    assert_almost_equal(outs[0], ref_out[0] if isinstance(ref_out, list) else ref_out)
    assert_almost_equal(exe.aux_dict["bn_moving_mean"], before[0], rtol=0, atol=0)
    assert_almost_equal(exe.aux_dict["bn_moving_var"], before[1], rtol=0, atol=0)


def test_batchnorm_use_global_stats_never_updates(ctx):
    x, gamma, beta, mm, mv = _bn_inputs((3, 2, 2))
    args = [nd.array(v, ctx=ctx, dtype="float64") for v in (x, gamma, beta, mm, mv)]
    with autograd.train_mode():
        y = nd.BatchNorm(*args, use_global_stats=True, fix_gamma=False)
    assert_almost_equal(y, _bn_ref(x, gamma, beta, mm, mv, fix_gamma=False))
    assert_almost_equal(args[3], mm, rtol=0, atol=0)
    assert_almost_equal(args[4], mv, rtol=0, atol=0)


def test_batchnorm_nd_train_mode_updates_aux_in_place(ctx):
    x, gamma, beta, mm, mv = _bn_inputs((5, 3))
    args = [nd.array(v, ctx=ctx, dtype="float32") for v in (x, gamma, beta, mm, mv)]
    y = nd.BatchNorm(*args)  # not training: moving statistics, no update
    assert_almost_equal(y, _bn_ref(x, gamma, beta, mm, mv))
    assert_almost_equal(args[3], mm.astype(np.float32), rtol=0, atol=0)
    with autograd.train_mode():
        y = nd.BatchNorm(*args, fix_gamma=False, momentum=0.5)
    out, _, _, new_mm, new_mv = _bn_train_ref(x, gamma, beta, mm, mv, fix_gamma=False,
                                              momentum=0.5)
    assert_almost_equal(y, out)
    assert_almost_equal(args[3], new_mm)
    assert_almost_equal(args[4], new_mv)


def test_batchnorm_float16_keeps_float32_parameters():
    x, gamma, beta, mm, mv = _bn_inputs((4, 2, 3))
    args = [nd.array(x, dtype="float16")] + [nd.array(v, dtype="float32")
                                            for v in (gamma, beta, mm, mv)]
    with autograd.train_mode():
        y = nd.BatchNorm(*args, fix_gamma=False)
    assert y.dtype == np.float16
    out, _, _, new_mm, _ = _bn_train_ref(x.astype(np.float16).astype(np.float64), gamma, beta,
                                         mm, mv, fix_gamma=False)
    assert_almost_equal(y, out, rtol=1e-2, atol=1e-2)
    assert_almost_equal(args[3], new_mm, rtol=1e-3, atol=1e-3)
    _, _, aux = sym.BatchNorm(sym.Variable("x"), name="bn").infer_type(x=np.float16)
    assert aux == [np.float32, np.float32]


# -- gradients ----------------------------------------------------------------------------

@pytest.mark.parametrize("fix_gamma", [False, True])
@pytest.mark.parametrize("use_global_stats", [False, True])
@pytest.mark.parametrize("axis,shape,output_mean_var", [
    (1, (3, 2, 2), False), (-1, (2, 2, 3), False), (1, (4, 2), True)])
def test_batchnorm_gradient(fix_gamma, use_global_stats, axis, shape, output_mean_var, ctx):
    x, gamma, beta, mm, mv = _bn_inputs(shape, axis)
    net = sym.BatchNorm(sym.Variable("data"), name="bn", fix_gamma=fix_gamma, axis=axis,
                        use_global_stats=use_global_stats, output_mean_var=output_mean_var)
    check_numeric_gradient(net, {"data": x, "bn_gamma": gamma, "bn_beta": beta},
                           aux_states={"bn_moving_mean": mm, "bn_moving_var": mv},
                           numeric_eps=1e-5, rtol=1e-4, atol=1e-6, ctx=ctx)


@pytest.mark.parametrize("range_bytes", [1 << 30, 8], ids=["one range per thread",
                                                        "more ranges than threads"])
@pytest.mark.parametrize("output_mean_var", [False, True])
def test_batchnorm_channel_ranges_on_the_kernel_pool(monkeypatch, output_mean_var, range_bytes):
    """Channel ranges run on the kernel pool's threads: the same results as one call."""
    from deepkit_engine import threads  # noqa: PLC0415
    from deepkit_engine.ops import normalization  # noqa: PLC0415
    rng = np.random.default_rng(2)
    arrays = [rng.normal(size=s) for s in ((4, 5, 3, 2), (5,), (5,))]

    def run():
        xs, gamma, beta = (nd.array(a, dtype="float64") for a in arrays)
        for a in (xs, gamma, beta):
            a.attach_grad()
        with autograd.record():
            out = nd.BatchNorm(xs, gamma, beta, nd.zeros(5, dtype="float64"),
                               nd.ones(5, dtype="float64"), fix_gamma=False,
                               output_mean_var=output_mean_var)
            y = out[0] * out[1].reshape((1, 5, 1, 1)) + out[2].reshape((1, 5, 1, 1)) \
                if output_mean_var else out
        y.backward(nd.array(np.sin(np.arange(y.size)).reshape(y.shape), dtype="float64"))
        return [y.asnumpy(), xs.grad.asnumpy(), gamma.grad.asnumpy(), beta.grad.asnumpy()]
    monkeypatch.setattr(threads, "pool_size", lambda: 1)
    whole = run()
    monkeypatch.setattr(threads, "pool_size", lambda: 3)
    monkeypatch.setattr(normalization, "_PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(normalization, "RANGE_BYTES", range_bytes)
    assert len(normalization._channel_ranges(np, np.zeros((4, 5, 6)))) == \
        (3 if range_bytes > 1000 else 5)
    for a, b in zip(whole, run()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_batchnorm_fix_gamma_gradient_is_zero_and_gamma_ignored(ctx):
    x, gamma, beta, mm, mv = _bn_inputs((3, 2, 2))
    net = sym.BatchNorm(sym.Variable("data"), name="bn")
    exe = net.simple_bind(ctx, data=x.shape, grad_req="write")
    exe.arg_dict["data"][:] = x
    exe.arg_dict["bn_gamma"][:] = 5.0
    exe.arg_dict["bn_beta"][:] = beta
    out = exe.forward(is_train=True)[0]
    assert_almost_equal(out, _bn_train_ref(x, gamma, beta, mm, mv)[0], rtol=1e-4, atol=1e-5)
    exe.backward(nd.array(np.random.default_rng(1).normal(size=x.shape), ctx=ctx))
    assert_almost_equal(exe.grad_dict["bn_gamma"], np.zeros(2), rtol=0, atol=0)
    assert_almost_equal(exe.arg_dict["bn_gamma"], np.full(2, 5.0), rtol=0, atol=0)


def test_batchnorm_gradient_outside_training_is_the_affine_map(ctx):
    """autograd with train_mode=False: moving statistics, gradient gamma / sqrt(var + eps)."""
    x, gamma, beta, mm, mv = _bn_inputs((3, 2, 2))
    args = [nd.array(v, ctx=ctx, dtype="float64") for v in (x, gamma, beta, mm, mv)]
    for a in args[:3]:
        a.attach_grad()
    with autograd.record(train_mode=False):
        y = nd.BatchNorm(*args, fix_gamma=False)
    head = np.random.default_rng(2).normal(size=x.shape)
    y.backward(nd.array(head, ctx=ctx, dtype="float64"), train_mode=False)
    scale = gamma / np.sqrt(mv + 1e-3)
    assert_almost_equal(args[0].grad, head * scale[None, :, None])
    xhat = (x - mm[None, :, None]) / np.sqrt(mv + 1e-3)[None, :, None]
    assert_almost_equal(args[1].grad, (head * xhat).sum(axis=(0, 2)))
    assert_almost_equal(args[2].grad, head.sum(axis=(0, 2)))
    assert_almost_equal(args[3], mm, rtol=0, atol=0)


def test_batchnorm_autograd_training_gradient(ctx):
    """Recorded in training mode: batch statistics, the full batch-norm backward."""
    x, gamma, beta, mm, mv = _bn_inputs((4, 2, 3))
    args = [nd.array(v, ctx=ctx, dtype="float64") for v in (x, gamma, beta, mm, mv)]
    for a in args[:3]:
        a.attach_grad()
    with autograd.record():
        y = nd.BatchNorm(*args, fix_gamma=False, momentum=0.7)
    head = np.random.default_rng(4).normal(size=x.shape)
    y.backward(nd.array(head, ctx=ctx, dtype="float64"))

    def ref(data, g, b):
        return _bn_train_ref(data, g, b, mm, mv, fix_gamma=False)[0]
    for k in range(3):
        assert_almost_equal(args[k].grad, _numeric_vjp(ref, [x, gamma, beta], head, k),
                            rtol=1e-5, atol=1e-7)
    assert_almost_equal(args[3], _bn_train_ref(x, gamma, beta, mm, mv, momentum=0.7)[3])


def _numeric_vjp(fn, inputs, head, k, eps=1e-6):
    """d sum(fn(*inputs) * head) / d inputs[k] by central differences (numpy only)."""
    base = [np.array(v, dtype=np.float64) for v in inputs]
    grad = np.zeros_like(base[k])
    for i in np.ndindex(*base[k].shape):
        total = []
        for step in (eps, -eps):
            moved = [v.copy() for v in base]
            moved[k][i] += step
            total.append((fn(*moved) * head).sum())
        grad[i] = (total[0] - total[1]) / (2 * eps)
    return grad


_BACKWARD_CONFIGS = [
    ("BatchNorm", (3, 2, 2), {"fix_gamma": False},
     lambda x, g, b: _bn_train_ref(x, g, b, np.zeros(2), np.ones(2), fix_gamma=False)[0]),
    ("LayerNorm", (2, 3, 2), {"axis": 1}, lambda x, g, b: _ln_ref(x, g, b, axis=1)),
    ("InstanceNorm", (2, 2, 3), {}, _in_ref),
    ("GroupNorm", (2, 4, 2), {"num_groups": 2},
     lambda x, g, b: _gn_ref(x, g, b, num_groups=2)),
    ("L2Normalization", (2, 3, 2), {"mode": "spatial"},
     lambda x: _l2_ref(x, mode="spatial")),
    ("LRN", (1, 3, 2, 2), {"nsize": 3, "alpha": 1.0},
     lambda x: _lrn_ref(x, 3, alpha=1.0)),
    ("LRN", (1, 1, 3, 3), {"nsize": 3, "alpha": 1.0, "region": "within"},
     lambda x: _lrn_ref(x, 3, alpha=1.0, region="within")),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("op,shape,params,ref", _BACKWARD_CONFIGS,
                         ids=[c[0] + ("-" + c[2]["region"] if "region" in c[2] else "")
                              for c in _BACKWARD_CONFIGS])
def test_backward_ops_match_numpy_gradients(op, shape, params, ref, dtype, ctx):
    """Executor backward (the ``_backward_<Op>`` nodes) against numeric VJPs of the
    numpy references, for data and (where present) gamma and beta."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=shape)
    net = getattr(sym, op)(sym.Variable("data"), name="n", **params)
    names = net.list_arguments()
    exe = net.simple_bind(ctx, data=shape, grad_req="write", type_dict={"data": dtype})
    inputs = [x]
    exe.arg_dict["data"][:] = x
    for name in names[1:]:
        value = rng.uniform(0.5, 1.5, size=exe.arg_dict[name].shape)
        exe.arg_dict[name][:] = value
        inputs.append(value)
    if op == "BatchNorm":
        exe.aux_dict["n_moving_var"][:] = 1.0
    inputs = [v.astype(dtype).astype(np.float64) for v in inputs]
    exe.forward(is_train=True)
    head = rng.normal(size=shape)
    exe.backward(nd.array(head, ctx=ctx, dtype=dtype))
    tol = {"float64": (1e-5, 1e-7), "float32": (1e-3, 1e-4)}[dtype]
    for k, name in enumerate(names):
        expected = _numeric_vjp(ref, inputs, head, k)
        assert exe.grad_dict[name].dtype == np.dtype(dtype)
        assert_almost_equal(exe.grad_dict[name], expected, *tol,
                            names=(f"{op} gradient of {name}", "numeric numpy gradient"))


def test_backward_honours_add_requests(ctx):
    x, gamma, beta, _, _ = _bn_inputs((3, 2, 2))
    net = sym.LayerNorm(sym.Variable("data"), name="ln")
    grads = {n: nd.ones(s, ctx=ctx, dtype="float64")
             for n, s in (("data", x.shape), ("ln_gamma", (2,)), ("ln_beta", (2,)))}
    args = {"data": nd.array(x, ctx=ctx, dtype="float64"),
            "ln_gamma": nd.array(gamma[:2], ctx=ctx, dtype="float64"),
            "ln_beta": nd.array(beta[:2], ctx=ctx, dtype="float64")}
    once = net.bind(ctx, args, args_grad={k: nd.zeros_like(v) for k, v in grads.items()},
                    grad_req="write")
    once.forward(is_train=True)
    once.backward()
    acc = net.bind(ctx, args, args_grad=grads, grad_req="add")
    acc.forward(is_train=True)
    acc.backward()
    for k in grads:
        assert_almost_equal(acc.grad_dict[k], once.grad_dict[k].asnumpy() + 1.0)


# -- shapes ------------------------------------------------------------------------------

def test_batchnorm_shapes_and_listing():
    bn = sym.BatchNorm(sym.Variable("data"), name="bn")
    assert bn.list_arguments() == ["data", "bn_gamma", "bn_beta"]
    assert bn.list_auxiliary_states() == ["bn_moving_mean", "bn_moving_var"]
    assert bn.list_outputs() == ["bn_output"]
    args, outs, aux = bn.infer_shape(data=(8, 16, 5, 5))
    assert args == [(8, 16, 5, 5), (16,), (16,)] and outs == [(8, 16, 5, 5)]
    assert aux == [(16,), (16,)]
    last = sym.BatchNorm(sym.Variable("data"), axis=-1, name="bn")
    assert last.infer_shape(data=(2, 3, 7))[2] == [(7,), (7,)]
    both = sym.BatchNorm(sym.Variable("data"), output_mean_var=True, name="bn")
    assert both.list_outputs() == ["bn_output", "bn_mean", "bn_var"]
    assert both.infer_shape(data=(4, 3))[1] == [(4, 3), (3,), (3,)]
    internals = sym.BatchNorm(sym.Variable("data"), name="bn").get_internals()
    assert internals.list_outputs()[-1] == "bn_output"
    # the gamma shape alone gives the others
    _, _, aux = sym.BatchNorm(sym.Variable("data"), name="bn").infer_shape_partial(
        bn_gamma=(5,))
    assert aux == [(5,), (5,)]


def test_other_norm_shapes():
    ln = sym.LayerNorm(sym.Variable("data"), name="ln", output_mean_var=True)
    args, outs, _ = ln.infer_shape(data=(2, 3, 4))
    assert args == [(2, 3, 4), (4,), (4,)] and outs == [(2, 3, 4), (2, 3, 1), (2, 3, 1)]
    assert ln.list_outputs() == ["ln_output", "ln_mean", "ln_std"]
    gn = sym.GroupNorm(sym.Variable("data"), num_groups=2, name="gn")
    assert gn.infer_shape(data=(2, 6, 3))[0] == [(2, 6, 3), (2,), (2,)]
    assert gn.infer_shape(data=(2, 6, 3), gn_gamma=(6,))[0] == [(2, 6, 3), (6,), (6,)]
    inorm = sym.InstanceNorm(sym.Variable("data"), name="in")
    assert inorm.infer_shape(data=(2, 5, 3, 3))[0][1:] == [(5,), (5,)]
    assert inorm.list_outputs() == ["in_output"]
    assert sym.L2Normalization(sym.Variable("x"), name="l2").list_outputs() == ["l2_output"]
    lrn = sym.LRN(sym.Variable("x"), nsize=5, name="lrn")
    assert lrn.list_outputs() == ["lrn_output"]
    assert lrn.infer_shape(x=(2, 8, 4, 4))[1] == [(2, 8, 4, 4)]


# -- errors ------------------------------------------------------------------------------

def test_batchnorm_gamma_shape_mismatch():
    bn = sym.BatchNorm(sym.Variable("data"), name="bn")
    with pytest.raises(ShapeError, match=r"BatchNorm 'bn'.*gamma.*\(4,\).*\(3,\)"):
        bn.infer_shape(data=(2, 3, 5), bn_gamma=(4,))
    with pytest.raises(ShapeError, match=r"(?s)BatchNorm.*moving_var.*\(2,\).*\(3,\).*data=\(2, 3\)"):
        nd.BatchNorm(nd.ones((2, 3)), nd.ones(3), nd.ones(3), nd.ones(3), nd.ones(2))


def test_batchnorm_bad_axis():
    with pytest.raises(ShapeError, match=r"BatchNorm.*axis=3 is out of range.*3 dimension"):
        sym.BatchNorm(sym.Variable("data"), axis=3, name="bn").infer_shape(data=(2, 3, 4))
    with pytest.raises(ShapeError, match=r"(?s)BatchNorm.*axis=-3.*data=\(2, 3\)"):
        nd.BatchNorm(nd.ones((2, 3)), nd.ones(3), nd.ones(3), nd.ones(3), nd.ones(3), axis=-3)


def test_batchnorm_param_dtype_mismatch():
    with pytest.raises(DTypeError, match=r"BatchNorm.*gamma.*float16.*float32"):
        nd.BatchNorm(nd.ones((2, 3), dtype="float32"), nd.ones(3, dtype="float16"),
                     nd.ones(3), nd.ones(3), nd.ones(3))


def test_norm_errors_name_the_op_and_shapes():
    with pytest.raises(ShapeError, match=r"GroupNorm.*5 channels.*num_groups=2"):
        nd.GroupNorm(nd.ones((2, 5, 3)), nd.ones(2), nd.ones(2), num_groups=2)
    with pytest.raises(ShapeError, match=r"GroupNorm.*gamma.*\(3,\).*\(2,\).*\(4,\)"):
        nd.GroupNorm(nd.ones((2, 4, 3)), nd.ones(3), nd.ones(3), num_groups=2)
    with pytest.raises(ShapeError, match=r"GroupNorm.*'gamma' \(2,\).*'beta' \(4,\)"):
        nd.GroupNorm(nd.ones((2, 4, 3)), nd.ones(2), nd.ones(4), num_groups=2)
    with pytest.raises(ShapeError, match=r"InstanceNorm.*\(2, 3\).*at least 3"):
        nd.InstanceNorm(nd.ones((2, 3)), nd.ones(3), nd.ones(3))
    with pytest.raises(ShapeError, match=r"LayerNorm.*gamma.*\(3,\).*\(4,\)"):
        nd.LayerNorm(nd.ones((2, 4)), nd.ones(3), nd.ones(4))
    with pytest.raises(ShapeError, match=r"L2Normalization.*mode='channel'.*at least 3"):
        nd.L2Normalization(nd.ones((2, 3)), mode="channel")
    with pytest.raises(ParamError, match=r"L2Normalization.*mode='chanel'.*did you mean"):
        nd.L2Normalization(nd.ones((2, 3)), mode="chanel")
    with pytest.raises(ParamError, match=r"LRN.*nsize=4 must be odd"):
        nd.LRN(nd.ones((1, 4, 2, 2)), nsize=4)
    with pytest.raises(ShapeError, match=r"LRN.*\(1, 4, 2\).*within.*4 dimensions"):
        nd.LRN(nd.ones((1, 4, 2)), nsize=3, region="within")
    with pytest.raises(ParamError, match=r"LRN.*missing required param 'nsize'"):
        nd.LRN(nd.ones((1, 4, 2, 2)))


OTHER_COVERED_OPS["_batch_norm_apply"] = "test_batch_norm_apply_matches_the_float64_reference"


@pytest.mark.parametrize("fix_gamma, use_global_stats, axis", [
    (False, False, 1), (True, False, 1), (False, True, 1), (False, False, -1)])
def test_batch_norm_apply_matches_the_float64_reference(fix_gamma, use_global_stats, axis):
    """The recompute op of mirrored BatchNorm: the normalisation from given statistics."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3, 5)).astype(np.float32)
    c = x.shape[axis]
    gamma, beta = rng.uniform(0.5, 2, c).astype(np.float32), rng.normal(size=c).astype(np.float32)
    mean, invstd = rng.normal(size=c).astype(np.float32), rng.uniform(0.5, 2, c).astype(np.float32)
    apply = getattr(nd, "_batch_norm_apply")
    got = apply(*[nd.array(a) for a in (x, gamma, beta, mean, invstd)], fix_gamma=fix_gamma,
                use_global_stats=use_global_stats, axis=axis).asnumpy()
    shape = [1] * x.ndim
    shape[axis] = c
    scale = invstd.astype(np.float64) * (1.0 if fix_gamma else gamma.astype(np.float64))
    want = (x.astype(np.float64) - mean.reshape(shape)) * scale.reshape(shape) \
        + beta.reshape(shape)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# -- SyncBatchNorm: the statistics of the global batch over several devices --------------

@pytest.mark.parametrize("fix_gamma", [False, True])
@pytest.mark.parametrize("output_mean_var", [False, True])
def test_sync_batchnorm_gradient(fix_gamma, output_mean_var, ctx):
    """Outside a replica group: numeric gradients, training mode (batch statistics)."""
    x, gamma, beta, mm, mv = _bn_inputs((4, 2, 3))
    net = sym.SyncBatchNorm(sym.Variable("data"), name="bn", fix_gamma=fix_gamma,
                            output_mean_var=output_mean_var)
    check_numeric_gradient(net, {"data": x, "bn_gamma": gamma, "bn_beta": beta},
                           aux_states={"bn_moving_mean": mm, "bn_moving_var": mv},
                           numeric_eps=1e-5, rtol=1e-4, atol=1e-6, ctx=ctx)


def _bind_sync(shape, x, gamma, beta, mm, mv, ctx, **params):
    net = sym.SyncBatchNorm(sym.Variable("data"), name="bn", **params)
    args = {"data": nd.array(x, ctx=ctx, dtype="float64"),
            "bn_gamma": nd.array(gamma, ctx=ctx, dtype="float64"),
            "bn_beta": nd.array(beta, ctx=ctx, dtype="float64")}
    grads = {k: nd.zeros(v.shape, ctx=ctx, dtype="float64") for k, v in args.items()}
    return net.bind(ctx, args, args_grad=grads,
                    aux_states={"bn_moving_mean": nd.array(mm, ctx=ctx, dtype="float64"),
                                "bn_moving_var": nd.array(mv, ctx=ctx, dtype="float64")})


@pytest.mark.parametrize("rows,weighting,output_mean_var,fix_gamma", [
    ((3, 3), "share", False, False),
    ((4, 3, 1), "share", True, False),
    ((2, 5), "share", False, True),
    ((3, 2), "one", False, False),
])
def test_sync_batchnorm_devices_equal_one_batch(rows, weighting, output_mean_var, fix_gamma):
    """Devices with parts of a batch, combined as the trainer combines them, equal one batch.

    The trainer adds device gradients as ``sum_k w_k g_k``: so device k's objective
    is ``L_k`` with ``sum_k w_k L_k`` the whole batch's objective ``J``. Output, statistics,
    moving statistics, ``w_k``-weighted parameter gradients and ``w_k``-scaled data
    gradients must equal one executor running the whole batch.
    """
    total = sum(rows)
    shape = (total, 3, 2)
    x, gamma, beta, mm, mv = _bn_inputs(shape, seed=4)
    rng = np.random.default_rng(5)
    head = rng.normal(size=shape)
    head_mean, head_std = rng.normal(size=3), rng.normal(size=3)
    params = {"fix_gamma": fix_gamma, "output_mean_var": output_mean_var, "momentum": 0.7}
    whole = _bind_sync(shape, x, gamma, beta, mm, mv, cpu(0), **params)
    outs = whole.forward(is_train=True)
    heads = [head] + ([head_mean, head_std] if output_mean_var else [])
    whole.backward([nd.array(h, dtype="float64") for h in heads])
    expected = {"out": outs[0].asnumpy(), "mm": whole.aux_dict["bn_moving_mean"].asnumpy(),
                "mv": whole.aux_dict["bn_moving_var"].asnumpy(),
                **{k: v.asnumpy() for k, v in whole.grad_dict.items()}}
    if output_mean_var:
        expected["mean"], expected["invstd"] = outs[1].asnumpy(), outs[2].asnumpy()

    weights = [n / total if weighting == "share" else 1.0 for n in rows]
    if output_mean_var:  # each device's objective counts the statistics' terms once
        assert weighting == "share"
    group = ReplicaGroup(len(rows), weights)
    exes, start = [], 0
    for k, n in enumerate(rows):
        part = slice(start, start + n)
        exe = _bind_sync(shape, x[part], gamma, beta, mm, mv, cpu(k), **params)
        exe.replica = group.replica(k)
        exes.append((exe, part, weights[k]))
        start += n
    for exe, _, _ in exes:
        exe.forward(is_train=True)
    for exe, part, w in exes:
        local = [nd.array(head[part] / w, ctx=exe._ctx, dtype="float64")]
        if output_mean_var:
            local += [nd.array(h, ctx=exe._ctx, dtype="float64") for h in heads[1:]]
        exe.backward(local)
    got_out = np.concatenate([exe.outputs[0].asnumpy() for exe, _, _ in exes])
    np.testing.assert_allclose(got_out, expected["out"], rtol=1e-10, atol=1e-12)
    for exe, part, w in exes:
        np.testing.assert_allclose(exe.aux_dict["bn_moving_mean"].asnumpy(), expected["mm"],
                                   rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(exe.aux_dict["bn_moving_var"].asnumpy(), expected["mv"],
                                   rtol=1e-10, atol=1e-12)
        if output_mean_var:
            np.testing.assert_allclose(exe.outputs[1].asnumpy(), expected["mean"], rtol=1e-10)
            np.testing.assert_allclose(exe.outputs[2].asnumpy(), expected["invstd"],
                                       rtol=1e-10)
        np.testing.assert_allclose(exe.grad_dict["data"].asnumpy() * w,
                                   expected["data"][part], rtol=1e-9, atol=1e-12)
    for name in ("bn_gamma", "bn_beta"):
        combined = sum(exe.grad_dict[name].asnumpy() * w for exe, _, w in exes)
        np.testing.assert_allclose(combined, expected[name], rtol=1e-9, atol=1e-12)


def test_sync_batchnorm_reports_a_device_that_never_arrives():
    x, gamma, beta, mm, mv = _bn_inputs((2, 3, 2))
    exe = _bind_sync((2, 3, 2), x, gamma, beta, mm, mv, cpu(0))
    exe.replica = ReplicaGroup(2, timeout=0.3).replica(0)
    with pytest.raises(Exception, match=r"SyncBatchNorm.*device 0 of 2 waited 0.3 s"):
        exe.forward(is_train=True)[0].asnumpy()


def test_sync_batchnorm_outside_training_uses_moving_statistics_without_meeting():
    x, gamma, beta, mm, mv = _bn_inputs((2, 3, 2))
    exe = _bind_sync((2, 3, 2), x, gamma, beta, mm, mv, cpu(0))
    exe.replica = ReplicaGroup(2, timeout=0.3).replica(0)  # nobody else: must not wait
    out = exe.forward(is_train=False)[0].asnumpy()
    np.testing.assert_allclose(out, _bn_ref(x, gamma, beta, mm, mv), rtol=1e-12)


def test_sync_batchnorm_refuses_an_empty_global_batch():
    x, gamma, beta, mm, mv = _bn_inputs((0, 3, 2))
    group = ReplicaGroup(1, reduce_across=lambda total: total)  # as a rank of an MPI run
    exe = _bind_sync((0, 3, 2), x, gamma, beta, mm, mv, cpu(0))
    exe.replica = group.replica(0)
    with pytest.raises((ShapeError, EngineError), match="global batch is empty"):
        exe.forward(is_train=True)[0].asnumpy()
