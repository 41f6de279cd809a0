"""Normalization layers: BatchNorm, LayerNorm, InstanceNorm, GroupNorm, L2Normalization, LRN.

MXNet 1.x semantics (and names, params, defaults) throughout:

* Each op views its data as a small-rank array (``(P, C, Q)`` around the
  channel axis for BatchNorm/LayerNorm, ``(N, C, S)`` for InstanceNorm,
  ``(N, G, C/G, S)`` for GroupNorm), computes the statistics over some axes of
  that view with the biased variance ``mean((x - mean)^2)``, and applies the
  affine parameters broadcast over the others. One pair of kernels
  (:func:`_normalize_forward` and :func:`_normalize_backward`) serves all four.
* Like MXNet, the ops have *hidden* outputs that only the gradient reads:
  BatchNorm's batch mean and inverse std, LayerNorm's/GroupNorm's mean and
  std, InstanceNorm's mean and variance, L2Normalization's norm and LRN's
  normaliser. ``output_mean_var=True`` makes the statistics visible (MXNet:
  BatchNorm's ``var`` output holds the *inverse std*, LayerNorm's and
  GroupNorm's the std). Gradients flowing into visible statistics are
  honoured (MXNet drops them).
* BatchNorm in training mode (``is_train`` and not ``use_global_stats``)
  normalises with the batch statistics and updates the auxiliary states in
  place: ``moving = moving * momentum + batch * (1 - momentum)`` with the
  *biased* batch variance, as MXNet's CPU kernel does (cuDNN's would use the
  unbiased one). The update happens in forward (MXNet's CPU kernel does it in
  backward), so an inference-only pass never changes them.
* GroupNorm follows MXNet 1.9.1: ``gamma``/``beta`` have shape
  ``(num_groups,)`` and scale whole groups. As a deepkit extension they may
  instead be given with shape ``(C,)`` (one per channel, as in MXNet 2.0,
  PyTorch and the paper); shape inference proposes ``(num_groups,)``.
* LRN's ``region='within'`` (a deepkit extension for the Caffe converter) is
  Caffe's WITHIN_CHANNEL: ``x * (1 + alpha/n^2 * sum over the zero-padded
  n x n spatial window of x^2)^-beta``; like Caffe it ignores ``knorm``.

Every gradient is one ``_backward_<Op>`` node reading only what it needs; the
backward ops are not differentiable themselves (no second order here).
"""
import math

import numpy as np

from .. import threads
from ..base import DTypeError, ParamError, ShapeError
from . import fused_cnn
from .registry import OpDef, Param, register, write_result

_LETTERS = "abcdefgh"


# -- shared helpers ------------------------------------------------------------------

def _count(shape, axes):
    return math.prod(shape[a] for a in axes)


def _kept(shape, axes):
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


def _pcq(shape, axis):
    """``shape`` as ``(before axis, axis, after axis)``."""
    return (math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:]))


def _rdot(xp, a, b, axes, acc):
    """``sum(a * b)`` over ``axes`` with those axes kept as size 1, without a temporary."""
    if a.dtype != acc:  # float16: accumulate in float32
        return (a.astype(acc) * b).sum(axis=axes, keepdims=True)
    sub = _LETTERS[:a.ndim]
    out = "".join(c for i, c in enumerate(sub) if i not in axes)
    return xp.einsum(f"{sub},{sub}->{out}", a, b).reshape(_kept(a.shape, axes))


def _rsum(xp, a, axes, acc):
    """``sum(a)`` over ``axes``, kept as size 1 (einsum: much faster than ``sum`` here)."""
    if a.dtype != acc:
        return a.sum(axis=axes, keepdims=True, dtype=acc)
    sub = _LETTERS[:a.ndim]
    out = "".join(c for i, c in enumerate(sub) if i not in axes)
    return xp.einsum(f"{sub}->{out}", a).reshape(_kept(a.shape, axes))


def _acc_dtype(dtype):
    """Statistics are kept in float32 for float16 data (MXNet's AccReal)."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def _normalize_axis(axis, ndim, name="axis"):
    if not -ndim <= axis < ndim:
        raise ShapeError(f"param {name}={axis} is out of range for data with {ndim} "
                         f"dimension(s) (valid: {-ndim} to {ndim - 1})", argument=name,
                         expected=f"[{-ndim}, {ndim})", actual=axis)
    return axis % ndim


def _check_given(names, given, wants, why):
    for name, g, want in zip(names, given, wants):
        if g is not None and tuple(g) != tuple(want):
            raise ShapeError(f"input '{name}' has shape {tuple(g)} but {tuple(want)} was "
                             f"expected ({why})", argument=name, expected=tuple(want),
                             actual=tuple(g))


def _need_ndim(data, least, what):
    if len(data) < least:
        raise ShapeError(f"input 'data' has shape {tuple(data)} but {what} needs at least "
                         f"{least} dimensions", argument="data",
                         expected=f">= {least} dimensions", actual=tuple(data))


def _moments(xp, x, centered, axes, acc):
    """Mean over ``axes`` (kept), ``centered = x - mean`` written, and the biased variance."""
    m = max(_count(x.shape, axes), 1)
    mean = _rsum(xp, x, axes, acc)
    mean /= m
    xp.subtract(x, mean, out=centered, casting="unsafe")
    var = _rdot(xp, centered, centered, axes, acc)
    var /= m
    return mean, var


def _scale_shift(target, invstd, gamma, beta):
    """``target *= invstd * gamma; target += beta`` (target holds ``x - mean``)."""
    if gamma is None:
        target *= invstd
    elif math.prod(np.broadcast_shapes(invstd.shape, gamma.shape)) < target.size:
        target *= invstd * gamma
    else:
        target *= invstd
        target *= gamma
    if beta is not None:
        target += beta


def _target(xp, out, req, shape):
    """Where to compute a full-size result: the output itself, or a temporary."""
    if req in ("write", "inplace"):
        return out.reshape(shape)
    return xp.empty(shape, out.dtype)


def _finish(out, target, req):
    if req == "add":
        out += target.reshape(out.shape)


def _normalize_forward(xp, x, out, req, axes, gamma, beta, eps, acc):
    """Normalise the view ``x`` over ``axes`` into ``out``; returns (mean, var) kept."""
    target = _target(xp, out, req, x.shape)
    mean, var = _moments(xp, x, target, axes, acc)
    invstd = 1.0 / xp.sqrt(var + eps)
    if req != "null":
        _scale_shift(target, invstd, gamma, beta)
        _finish(out, target, req)
    return mean, var, invstd


def _normalize_backward(xp, g, x, gamma, mean, invstd, axes, dx, dgamma, dbeta, req,
                        gamma_axes, beta_axes, batch=True, extra=None, extra_kind=None):
    """Input gradients of ``y = (x - mean) * invstd * gamma + beta``.

    Args:
        g, x: The output gradient and the data, as the op's view.
        gamma: The scale broadcastable to that view, or None (a scale of 1).
        mean, invstd: The statistics used in forward, kept over ``axes``.
        axes: The axes the statistics were taken over.
        dx: The data gradient (op's view), dgamma, dbeta: raw output arrays.
        req: The three write requests.
        gamma_axes, beta_axes: Axes to sum over for dgamma and dbeta.
        batch: The statistics depend on x (False: BatchNorm with global stats).
        extra: ``(grad of mean, grad of std or invstd)`` kept, or None.
        extra_kind: ``'std'`` or ``'invstd'``: what the second statistic is.
    """
    acc = mean.dtype
    sums = {}
    if req[2] != "null" and dbeta is not None:
        sums[beta_axes] = _rsum(xp, g, beta_axes, acc)
        write_result(xp, dbeta, sums[beta_axes].reshape(dbeta.shape), req[2])
    need_gamma = req[1] != "null" and dgamma is not None
    if req[0] == "null" and not need_gamma:
        return
    t = dx if req[0] == "write" else xp.empty(x.shape, dx.dtype)
    xp.subtract(x, mean, out=t, casting="unsafe")
    # t holds x - mean; where invstd is constant over gamma's reduction axes (BatchNorm)
    # x_hat = t * invstd is never formed: sums over t are scaled instead
    if all(invstd.shape[a] == 1 for a in gamma_axes):
        hat = invstd
    else:
        t *= invstd
        hat = 1.0
    dots = {}
    if need_gamma:
        dots[gamma_axes] = _rdot(xp, g, t, gamma_axes, acc) * hat
        write_result(xp, dgamma, dots[gamma_axes].reshape(dgamma.shape), req[1])
    if req[0] == "null":
        return
    m = max(_count(x.shape, axes), 1)
    const_gamma = gamma is None or all(gamma.shape[a] == 1 for a in axes)
    if not batch:
        xp.multiply(g, invstd if gamma is None else invstd * gamma, out=t, casting="unsafe")
    elif extra is None and const_gamma:
        # dx = invstd * gamma * (g - mean(g) - x_hat * mean(g * x_hat)), in place
        sg = sums[axes] if axes in sums else _rsum(xp, g, axes, acc)
        sgx = dots[axes] if axes in dots else _rdot(xp, g, t, axes, acc) * hat
        t *= sgx * hat * (-1.0 / m)
        t += g
        t -= sg * (1.0 / m)
        t *= invstd if gamma is None else invstd * gamma
    else:
        d = g if gamma is None else g * gamma
        coef_b = _rdot(xp, d, t, axes, acc) * hat * (-1.0 / m)
        coef_c = _rsum(xp, d, axes, acc) * (-1.0 / m)
        if extra is not None:
            g_mean, g_stat = extra
            # d mean / dx = 1/m; d std / dx = x_hat/m; d invstd / dx = -invstd^2 x_hat / m
            d_stat = g_stat if extra_kind == "std" else -g_stat * invstd * invstd
            coef_b = coef_b + d_stat / (m * invstd)
            coef_c = coef_c + g_mean / (m * invstd)
        t *= coef_b * hat
        t += d
        t += coef_c
        t *= invstd
    if req[0] == "add":
        dx += t


def _same_dtype_norm(n_out):
    """Type inference: every input and all ``n_out`` outputs share the data's dtype."""
    def infer_type(attrs, in_dtypes):
        first = next((i for i, d in enumerate(in_dtypes) if d is not None), None)
        if first is None:
            return in_dtypes, [None] * n_out
        known = np.dtype(in_dtypes[first])
        for i, d in enumerate(in_dtypes):
            if d is not None and np.dtype(d) != known:
                raise DTypeError(f"input {i} has dtype {np.dtype(d).name} but input {first} "
                                 f"has {known.name}; cast one with astype()", argument=i,
                                 expected=known, actual=d)
        return [known] * len(in_dtypes), [known] * n_out
    return infer_type


def _backward_type(attrs, in_dtypes):
    """``_backward_<Norm>(ograd, data, gamma, ...)``: (data, gamma, gamma) dtypes."""
    data = in_dtypes[1] if in_dtypes[1] is not None else in_dtypes[0]
    return in_dtypes, [data, in_dtypes[2], in_dtypes[2]]


def _backward_shape(attrs, in_shapes):
    data = in_shapes[1] if in_shapes[1] is not None else in_shapes[0]
    return in_shapes, [data, in_shapes[2], in_shapes[2]]


_backward_shape.partial = True


class _mean_var_outputs:  # noqa: N801 - used as a function; a class so that ops pickle
    """Output names ``(output, mean, <stat_name>)`` of a normalization op."""

    def __init__(self, stat_name):
        self.stat_name = stat_name

    def __call__(self, attrs):
        return ("output", "mean", self.stat_name)


def _visible_mean_var(attrs):
    return 3 if attrs.output_mean_var else 1


def _backward_inputs(stat_name):
    def inputs(attrs):
        base = ("ograd", "data", "gamma", "mean", stat_name)
        if attrs.get("output_mean_var"):
            base += ("ograd_mean", f"ograd_{stat_name}")
        return base
    return inputs


def _norm_gradient(backward_name, n_inputs):
    """Gradient: one ``_backward_<Op>`` node; extra inputs (moving stats) get none."""
    def gradient(F, node, ograds):
        ins = [ograds[0], node.inputs[0], node.inputs[1], node.outputs[1], node.outputs[2]]
        if node.attrs.get("output_mean_var"):
            ins += [ograds[1], ograds[2]]
        bw = getattr(F, backward_name)(*ins, **node.attrs)
        return [bw[0], bw[1], bw[2]] + [None] * (n_inputs - 3)
    return gradient


def _extra(inputs, attrs, kept_shape):
    if not attrs.get("output_mean_var"):
        return None
    return inputs[5].reshape(kept_shape), inputs[6].reshape(kept_shape)


# -- BatchNorm -------------------------------------------------------------------------

_BN_PARAMS = {
    "eps": Param(float, 1e-3, "Added to the variance before the square root.", min=0.0),
    "momentum": Param(float, 0.9, "Decay of the moving averages: moving = moving * momentum "
                                  "+ batch * (1 - momentum)."),
    "fix_gamma": Param(bool, True, "Treat gamma as 1 (and give it a zero gradient)."),
    "use_global_stats": Param(bool, False, "Normalise with the moving statistics even in "
                                           "training (and leave them unchanged)."),
    "output_mean_var": Param(bool, False, "Also output the mean and the inverse std used."),
    "axis": Param(int, 1, "The channel axis (negative counts from the end)."),
    "cudnn_off": Param(bool, False, "Accepted for MXNet compatibility; has no effect."),
    "min_calib_range": Param(float, None, "Accepted for MXNet compatibility (quantization); "
                                          "has no effect."),
    "max_calib_range": Param(float, None, "Accepted for MXNet compatibility (quantization); "
                                          "has no effect."),
}

_BN_PARAM_NAMES = ("gamma", "beta", "moving_mean", "moving_var")


def _bn_shape(attrs, in_shapes):
    data = in_shapes[0]
    if data is None:
        known = next((tuple(s) for s in in_shapes[1:] if s is not None), None)
        if known is not None:
            _check_given(_BN_PARAM_NAMES, in_shapes[1:], [known] * 4,
                         "every parameter and moving statistic has one value per channel")
        return [None] + [known] * 4, [None, known, known]
    data = tuple(data)
    _need_ndim(data, 1, "BatchNorm")
    axis = _normalize_axis(attrs.axis, len(data))
    want = (data[axis],)
    _check_given(_BN_PARAM_NAMES, in_shapes[1:], [want] * 4,
                 f"one value per channel: data {data} has {data[axis]} channels on axis {axis}")
    return [data] + [want] * 4, [data, want, want]


_bn_shape.partial = True


def _bn_type(attrs, in_dtypes):
    data = in_dtypes[0]
    if data is None:
        known = next((d for d in in_dtypes[1:] if d is not None), None)
        return in_dtypes, [None, known, known]
    param = _acc_dtype(data)
    for name, d in zip(_BN_PARAM_NAMES, in_dtypes[1:]):
        if d is not None and np.dtype(d) != param:
            raise DTypeError(f"input '{name}' has dtype {np.dtype(d).name} but "
                             f"{param.name} was expected for {np.dtype(data).name} data",
                             argument=name, expected=param, actual=d)
    return [data] + [param] * 4, [data, param, param]


def _bn_view(data, attrs):
    axis = attrs.axis % data.ndim
    view = _pcq(data.shape, axis)
    return data.reshape(view), view[1]


#: BatchNorm views of at least this many bytes are split by channels between the
#: kernel pool's threads (``deepkit_engine.threads``; channels are independent).
_PARALLEL_MIN_BYTES = 512 << 10


#: Channel ranges are cut so that each covers at most about this many bytes of data:
#: the temporaries of a range's passes then stay small (two ranges run at once on a
#: 2-core machine, not the whole activation's worth of temporaries).
RANGE_BYTES = 4 << 20


def _channel_ranges(xp, x):
    """Channel ranges of the (P, C, Q) view ``x`` to run in parallel, or None."""
    c = x.shape[1]
    workers = threads.pool_size()
    if xp is not np or workers < 2 or c < 2 or x.nbytes < _PARALLEL_MIN_BYTES:
        return None
    parts = min(c, max(workers, -(-x.nbytes // RANGE_BYTES)))
    step = -(-c // parts)
    return [(i, min(i + step, c)) for i in range(0, c, step)]


def _fused_bn(xp, *arrays):
    """The compiled BatchNorm kernels when they may take these arrays, else None.

    numpy float32 arrays that are C-contiguous as given (the (P, C, Q) views
    of contiguous data, the per-channel vectors).
    """
    if xp is not np or not all(a.dtype == np.float32 and a.flags.c_contiguous for a in arrays):
        return None
    return fused_cnn.kernels(np.float32)


def _per_channel(v, c):
    """A (C,) float32 C-contiguous vector from a per-channel array, or ones for None."""
    if v is None:
        return np.ones(c, np.float32)
    return np.ascontiguousarray(v.reshape(c), dtype=np.float32)


def _bn_train_forward(xp, x, out, req, gamma, beta, eps, acc):
    """:func:`_normalize_forward` over the (P, C, Q) view, channel ranges in parallel."""
    fused = _fused_bn(xp, x, out) if req in ("write", "inplace") and x.size else None
    if fused is not None:
        c = x.shape[1]
        g, b = _per_channel(gamma, c), _per_channel(beta, c)
        mean, var, invstd = (np.empty(c, np.float32) for _ in range(3))
        out3 = out.reshape(x.shape)
        threads.parallel_map(
            lambda r: fused.batch_norm_forward(x, g, b, eps, r[0], r[1], out3, mean, var, invstd),
            _channel_ranges(xp, x) or [(0, c)])
        return tuple(v.reshape(1, c, 1) for v in (mean, var, invstd))
    ranges = _channel_ranges(xp, x)
    if ranges is None or req == "null":
        return _normalize_forward(xp, x, out, req, (0, 2), gamma, beta, eps, acc)
    out3 = out.reshape(x.shape)

    def part(r):
        cs = slice(*r)
        return _normalize_forward(xp, x[:, cs], out3[:, cs], req, (0, 2),
                                  None if gamma is None else gamma[:, cs], beta[:, cs], eps, acc)
    parts = threads.parallel_map(part, ranges)
    return tuple(xp.concatenate([p_[k] for p_ in parts], axis=1) for k in range(3))


def _bn_forward(xp, attrs, inputs, outputs, req, is_train=False):
    data, gamma, beta, moving_mean, moving_var = inputs
    out, mean_out, var_out = outputs
    x, c = _bn_view(data, attrs)
    kept = (1, c, 1)
    acc = moving_mean.dtype
    g = None if attrs.fix_gamma else gamma.reshape(kept)
    if is_train and not attrs.use_global_stats:
        mean, var, invstd = _bn_train_forward(xp, x, out, req[0], g, beta.reshape(kept),
                                              attrs.eps, acc)
        if x.size:  # an empty batch says nothing about the statistics
            moving_mean *= attrs.momentum
            moving_mean += (1.0 - attrs.momentum) * mean.reshape(c)
            moving_var *= attrs.momentum
            moving_var += (1.0 - attrs.momentum) * var.reshape(c)
        mean = mean.reshape(c)
        invstd = invstd.reshape(c)
    else:
        mean = moving_mean
        invstd = 1.0 / xp.sqrt(moving_var + attrs.eps)
        if req[0] != "null":
            scale = invstd if g is None else invstd * gamma
            shift = beta - moving_mean * scale
            target = _target(xp, out, req[0], x.shape)
            xp.multiply(x, scale.reshape(kept), out=target, casting="unsafe")
            target += shift.reshape(kept)
            _finish(out, target, req[0])
    write_result(xp, mean_out, mean, req[1])
    write_result(xp, var_out, invstd, req[2])


def _bn_backward(xp, attrs, inputs, outputs, req, is_train=True):
    g, data, gamma, mean, invstd = inputs[:5]
    dx, dgamma, dbeta = outputs
    x, c = _bn_view(data, attrs)
    kept = (1, c, 1)
    batch = is_train and not attrs.use_global_stats
    if batch and _extra(inputs, attrs, kept) is None and req[0] in ("write", "null") \
            and _bn_backward_fused(xp, attrs, g.reshape(x.shape), x, gamma, mean, invstd,
                                   dx.reshape(x.shape), dgamma, dbeta, req):
        return
    args = [g.reshape(x.shape), x, None if attrs.fix_gamma else gamma.reshape(kept),
            mean.reshape(kept), invstd.reshape(kept), dx.reshape(x.shape),
            None if attrs.fix_gamma else dgamma, dbeta, _extra(inputs, attrs, kept)]
    ranges = _channel_ranges(xp, x)
    if ranges is None or req[0] == "add":
        ranges = [None]

    def part(r):
        a = args
        if r is not None:
            cs = slice(*r)
            a = [None if v is None else v[:, cs] for v in args[:6]]
            a += [None if v is None else v[cs] for v in args[6:8]]
            a.append(None if args[8] is None else tuple(v[:, cs] for v in args[8]))
        _normalize_backward(xp, a[0], a[1], a[2], a[3], a[4], (0, 2), a[5], a[6], a[7], req,
                            (0, 2), (0, 2), batch=batch, extra=a[8], extra_kind="invstd")
    threads.parallel_map(part, ranges)
    if attrs.fix_gamma:
        write_result(xp, dgamma, 0.0, req[1])


def _prepare_fused_bn(ctx, attrs):
    """Load the compiled BatchNorm kernels at bind (see ``OpDef.prepare``): tiny calls of
    each, with the argument types of real calls, compile them or read them from the cache.
    Every node's params (``attrs``) take the same kernels."""
    if ctx.device_type != "cpu":
        return
    fused = fused_cnn.kernels(np.float32)
    if fused is None:
        return
    x = np.zeros((1, 1, 2), np.float32)
    v = np.ones(1, np.float32)
    fused.batch_norm_forward(x, v, v, 1e-5, 0, 1, x.copy(), v.copy(), v.copy(), v.copy())
    fused.batch_norm_backward(x, x, v, v, v, 0, 1, True, x.copy(), v.copy(), v.copy())
    fused.batch_norm_write(x, v, v, v, 0, 1, x.copy())


def _bn_backward_fused(xp, attrs, g, x, gamma, mean, invstd, dx, dgamma, dbeta, req):
    """Training BatchNorm gradients with the compiled kernels; False where they cannot run."""
    fused = _fused_bn(xp, g, x, dx)
    if fused is None or not x.size:
        return False
    c = x.shape[1]
    gam = _per_channel(None if attrs.fix_gamma else gamma, c)
    mean, invstd = _per_channel(mean, c), _per_channel(invstd, c)
    sum_g, sum_gx = np.empty(c, np.float32), np.empty(c, np.float32)
    need_dx = req[0] == "write"
    threads.parallel_map(
        lambda r: fused.batch_norm_backward(g, x, mean, invstd, gam, r[0], r[1], need_dx, dx,
                                            sum_g, sum_gx),
        _channel_ranges(xp, x) or [(0, c)])
    write_result(xp, dbeta, sum_g.reshape(dbeta.shape), req[2])
    if attrs.fix_gamma:
        write_result(xp, dgamma, 0.0, req[1])
    else:
        write_result(xp, dgamma, (sum_gx * invstd).reshape(dgamma.shape), req[1])
    return True


register(OpDef(
    "_backward_BatchNorm", _bn_backward, inputs=_backward_inputs("var"),
    params=dict(_BN_PARAMS), infer_shape=_backward_shape, infer_type=_backward_type,
    outputs=("data_grad", "gamma_grad", "beta_grad"), resources=("is_train",),
    differentiable=False,
    doc="Gradient of BatchNorm with respect to data, gamma and beta, from the saved batch "
        "mean and inverse std (the affine map of the moving statistics with "
        "use_global_stats or outside training).",
    prepare=_prepare_fused_bn, pool_parallel=True))

def _bn_apply_forward(xp, attrs, inputs, outputs, req):
    data, gamma, beta, mean, invstd = inputs
    x, c = _bn_view(data, attrs)
    kept = (1, c, 1)
    target = _target(xp, outputs[0], req[0], x.shape)
    if attrs.use_global_stats:  # the affine map BatchNorm uses outside training
        scale = invstd if attrs.fix_gamma else invstd * gamma
        xp.multiply(x, scale.reshape(kept), out=target, casting="unsafe")
        target += (beta - mean * scale).reshape(kept)
    else:
        fused = _fused_bn(xp, x, target)
        if fused is not None:
            scale = _per_channel(invstd, c)
            if not attrs.fix_gamma:
                scale = scale * _per_channel(gamma, c)  # as the forward kernel rounds it
            m, b = _per_channel(mean, c), _per_channel(beta, c)
            threads.parallel_map(
                lambda r: fused.batch_norm_write(x, m, scale, b, r[0], r[1], target),
                _channel_ranges(xp, x) or [(0, c)])
            _finish(outputs[0], target, req[0])
            return
        stats = (mean.reshape(kept), invstd.reshape(kept),
                 None if attrs.fix_gamma else gamma.reshape(kept), beta.reshape(kept))

        def part(r):  # the same element operations as BatchNorm's forward, per channel range
            cs = slice(None) if r is None else slice(*r)
            m, s, g, b = (None if v is None else v[:, cs] for v in stats)
            xp.subtract(x[:, cs], m, out=target[:, cs], casting="unsafe")
            _scale_shift(target[:, cs], s, g, b)
        threads.parallel_map(part, _channel_ranges(xp, x) or [None])
    _finish(outputs[0], target, req[0])


register(OpDef(
    "_batch_norm_apply", _bn_apply_forward, inputs=("data", "gamma", "beta", "mean", "invstd"),
    params=dict(_BN_PARAMS), infer_shape=lambda attrs, s: (s, [s[0]]),
    infer_type=lambda attrs, t: (t, [t[0]]), inplace=((0, 0),), differentiable=False,
    doc="BatchNorm's training-mode output from given batch statistics (its hidden mean and "
        "inverse-std outputs), computed exactly as BatchNorm computes it: recomputes a "
        "BatchNorm output without touching the moving statistics.",
    prepare=_prepare_fused_bn, pool_parallel=True))

register(OpDef(
    "BatchNorm", _bn_forward, inputs=("data", "gamma", "beta", "moving_mean", "moving_var"),
    inplace=((0, 0),),
    aux=("moving_mean", "moving_var"), params=dict(_BN_PARAMS), infer_shape=_bn_shape,
    infer_type=_bn_type, partial_infer=True, outputs=_mean_var_outputs("var"),
    visible_outputs=_visible_mean_var, resources=("is_train",),
    gradient=_norm_gradient("_backward_BatchNorm", 5),
    aliases=("BatchNorm_v1", "_npx_batch_norm"),
    doc="Batch normalization: normalise each channel (``axis``) with the batch mean and "
        "biased variance in training, updating the moving statistics in place, or with the "
        "moving statistics in inference; then scale by gamma and shift by beta.",
    prepare=_prepare_fused_bn, pool_parallel=True))


# -- SyncBatchNorm ---------------------------------------------------------------------
#
# BatchNorm whose training statistics are those of the global batch of a data-parallel
# step: each device sums over its rows, the sums meet through the executor's replica
# (deepkit_engine.replicas), and every device normalises with the same mean and
# variance. Outside a replica group it is BatchNorm.

_SYNC_BN_PARAMS = dict(_BN_PARAMS)
_SYNC_BN_PARAMS.update({
    "ndev": Param(int, 1, "Accepted for MXNet compatibility: the devices taking part come "
                          "from the data-parallel step running the op.", min=1),
    "key": Param(str, "", "Accepted for MXNet compatibility (MXNet's rendezvous key); the "
                          "executor's replica group pairs the devices."),
})


def _sync_needed(replica):
    return replica is not None and replica.collective


def _sync_bn_forward(xp, attrs, inputs, outputs, req, is_train=False, replica=None):
    if not (is_train and not attrs.use_global_stats and _sync_needed(replica)):
        return _bn_forward(xp, attrs, inputs, outputs, req, is_train=is_train)
    data, gamma, beta, moving_mean, moving_var = inputs
    out, mean_out, var_out = outputs
    x, c = _bn_view(data, attrs)
    kept = (1, c, 1)
    acc = moving_mean.dtype
    local_count = x.shape[0] * x.shape[2]
    sums = _rsum(xp, x, (0, 2), np.float64).reshape(c)
    totals = replica.allreduce(np.concatenate([_host(sums), [local_count]]),
                               "SyncBatchNorm: batch sums")
    count = totals[c]
    if count == 0:
        raise ShapeError("SyncBatchNorm: the global batch is empty; the batch statistics are "
                         "undefined", argument="data", expected="at least one row",
                         actual=tuple(data.shape))
    mean = totals[:c] / count
    target = _target(xp, out, req[0], x.shape)
    xp.subtract(x, xp.asarray(mean.reshape(kept), dtype=acc), out=target, casting="unsafe")
    squares = _rdot(xp, target, target, (0, 2), np.float64).reshape(c)
    var = replica.allreduce(_host(squares), "SyncBatchNorm: squared deviations") / count
    invstd = 1.0 / np.sqrt(var + attrs.eps)
    mean_x, var_x, invstd_x = (xp.asarray(v, dtype=acc) for v in (mean, var, invstd))
    if req[0] != "null":
        g = None if attrs.fix_gamma else gamma.reshape(kept)
        _scale_shift(target, invstd_x.reshape(kept), g, beta.reshape(kept))
        _finish(out, target, req[0])
    moving_mean *= attrs.momentum
    moving_mean += (1.0 - attrs.momentum) * mean_x
    moving_var *= attrs.momentum
    moving_var += (1.0 - attrs.momentum) * var_x
    write_result(xp, mean_out, mean_x, req[1])
    write_result(xp, var_out, invstd_x, req[2])


def _host(array):
    """A device array as a float64 numpy array (the sums travel between devices on the host)."""
    get = getattr(array, "get", None)
    return np.asarray(get() if get is not None else array, dtype=np.float64)


def _sync_bn_backward(xp, attrs, inputs, outputs, req, is_train=True, replica=None):
    """Gradient of SyncBatchNorm over the global batch, for this device's rows.

    The devices' gradients are combined as ``sum_k w_k g_k`` (``w_k``: the
    replica's weight), so the objective is ``J = sum_k w_k L_k`` and the
    output gradient of row ``i`` of device ``k`` in ``J`` is ``w_k dy_i``. The
    global sums of those gradients (and of their products with ``x - mean``)
    meet through the replica; the data gradient returned is ``dJ/dx_i / w_k``,
    which the same combination turns back into ``dJ/dx``.
    """
    if not (is_train and not attrs.use_global_stats and _sync_needed(replica)):
        return _bn_backward(xp, attrs, inputs, outputs, req, is_train=is_train)
    g, data, gamma, mean, invstd = inputs[:5]
    dx, dgamma, dbeta = outputs
    x, c = _bn_view(data, attrs)
    kept = (1, c, 1)
    acc = mean.dtype
    g = g.reshape(x.shape)
    t = xp.subtract(x, mean.reshape(kept), dtype=acc)
    local_sum = _rsum(xp, g, (0, 2), np.float64).reshape(c)
    local_dot = _rdot(xp, g, t, (0, 2), np.float64).reshape(c)
    write_result(xp, dbeta, local_sum.astype(acc), req[2])
    if attrs.fix_gamma:
        write_result(xp, dgamma, 0.0, req[1])
    else:
        write_result(xp, dgamma, (local_dot * _host(invstd)).astype(acc), req[1])
    w = replica.weight
    parts = [local_sum * w, local_dot * w, [x.shape[0] * x.shape[2]]]
    extra = _extra(inputs, attrs, kept)
    if extra is not None:
        parts += [_host(extra[0]).reshape(c) * w, _host(extra[1]).reshape(c) * w]
    totals = replica.allreduce(np.concatenate(parts), "SyncBatchNorm: gradient sums")
    if req[0] == "null":
        return
    count = totals[2 * c]
    inv = _host(invstd).reshape(c)
    scale = inv if attrs.fix_gamma else inv * _host(gamma).reshape(c)
    # dJ/dx_i = scale (w dy_i - S1/B - t_i inv^2 S2/B) + Gm/B - Gs inv^3 t_i / B
    coef_t = -scale * inv * inv * totals[c:2 * c] / count
    const = -scale * totals[:c] / count
    if extra is not None:
        const = const + totals[2 * c + 1:3 * c + 1] / count
        coef_t = coef_t - totals[3 * c + 1:4 * c + 1] * inv ** 3 / count
    result = t
    result *= xp.asarray((coef_t / w).reshape(kept), dtype=acc)
    result += xp.asarray((const / w).reshape(kept), dtype=acc)
    result += g * xp.asarray(scale.reshape(kept), dtype=acc)
    write_result(xp, dx, result.reshape(dx.shape), req[0])


def sync_batchnorm_exchanges(steps, phase):
    """The lengths of the vectors SyncBatchNorm exchanges in one pass, in order.

    A process with no rows of a batch still takes part in the exchanges of
    the others (with zeros); this tells it which.

    Args:
        steps: ``(op name, attrs, input shapes)`` of a pass's nodes, in order.
        phase: ``'forward'`` or ``'backward'``.
    """
    lengths = []
    for name, attrs, shapes in steps:
        if attrs.get("use_global_stats"):
            continue
        if phase == "forward" and name == "SyncBatchNorm":
            c = shapes[1][0]
            lengths += [c + 1, c]
        elif phase == "backward" and name == "_backward_SyncBatchNorm":
            c = shapes[2][0]
            lengths.append(2 * c + 1 + (2 * c if attrs.get("output_mean_var") else 0))
    return lengths


register(OpDef(
    "_backward_SyncBatchNorm", _sync_bn_backward, inputs=_backward_inputs("var"),
    params=dict(_SYNC_BN_PARAMS), infer_shape=_backward_shape, infer_type=_backward_type,
    outputs=("data_grad", "gamma_grad", "beta_grad"), resources=("is_train", "replica"),
    differentiable=False,
    doc="Gradient of SyncBatchNorm: BatchNorm's gradient with the sums over the global "
        "batch of a data-parallel step."))

register(OpDef(
    "SyncBatchNorm", _sync_bn_forward,
    inputs=("data", "gamma", "beta", "moving_mean", "moving_var"),
    aux=("moving_mean", "moving_var"), params=dict(_SYNC_BN_PARAMS), infer_shape=_bn_shape,
    infer_type=_bn_type, partial_infer=True, outputs=_mean_var_outputs("var"),
    visible_outputs=_visible_mean_var, resources=("is_train", "replica"),
    gradient=_norm_gradient("_backward_SyncBatchNorm", 5),
    aliases=("_contrib_SyncBatchNorm",),
    doc="Synchronised batch normalization: BatchNorm whose training statistics (mean and "
        "biased variance per channel) are taken over the global batch of a data-parallel "
        "step, all devices and MPI ranks together, so that the result equals one device "
        "running the whole batch. Outside a data-parallel step it is BatchNorm."))

# -- LayerNorm -------------------------------------------------------------------------

_LN_PARAMS = {
    "axis": Param(int, -1, "The axis to normalise over (negative counts from the end)."),
    "eps": Param(float, 1e-5, "Added to the variance before the square root.", min=0.0),
    "output_mean_var": Param(bool, False, "Also output the mean and the std."),
}


def _ln_shape(attrs, in_shapes):
    data = in_shapes[0]
    if data is None:
        return in_shapes, [None, None, None]
    data = tuple(data)
    _need_ndim(data, 1, "LayerNorm")
    axis = _normalize_axis(attrs.axis, len(data))
    want = (data[axis],)
    _check_given(("gamma", "beta"), in_shapes[1:], [want] * 2,
                 f"one value per position of axis {axis} of data {data}")
    stats = data[:axis] + (1,) + data[axis + 1:]
    return [data, want, want], [data, stats, stats]


_ln_shape.partial = True


def _ln_view(data, attrs):
    return data.reshape(_pcq(data.shape, attrs.axis % data.ndim))


def _ln_forward(xp, attrs, inputs, outputs, req):
    data, gamma, beta = inputs
    out, mean_out, std_out = outputs
    x = _ln_view(data, attrs)
    kept = (1, x.shape[1], 1)
    mean, var, invstd = _normalize_forward(xp, x, out, req[0], (1,), gamma.reshape(kept),
                                           beta.reshape(kept), attrs.eps,
                                           _acc_dtype(data.dtype))
    write_result(xp, mean_out, mean.reshape(mean_out.shape), req[1])
    write_result(xp, std_out, xp.sqrt(var + attrs.eps).reshape(std_out.shape), req[2])


def _ln_backward(xp, attrs, inputs, outputs, req):
    g, data, gamma, mean, std = inputs[:5]
    dx, dgamma, dbeta = outputs
    x = _ln_view(data, attrs)
    p, c, q = x.shape
    stat_kept = (p, 1, q)
    _normalize_backward(xp, g.reshape(x.shape), x, gamma.reshape(1, c, 1),
                        mean.reshape(stat_kept), 1.0 / std.reshape(stat_kept), (1,),
                        dx.reshape(x.shape), dgamma, dbeta, req, (0, 2), (0, 2),
                        extra=_extra(inputs, attrs, stat_kept), extra_kind="std")


register(OpDef(
    "_backward_LayerNorm", _ln_backward, inputs=_backward_inputs("std"),
    params=dict(_LN_PARAMS), infer_shape=_backward_shape, infer_type=_backward_type,
    outputs=("data_grad", "gamma_grad", "beta_grad"), differentiable=False,
    doc="Gradient of LayerNorm with respect to data, gamma and beta, from the saved mean "
        "and std."))

register(OpDef(
    "LayerNorm", _ln_forward, inputs=("data", "gamma", "beta"), params=dict(_LN_PARAMS),
    infer_shape=_ln_shape, infer_type=_same_dtype_norm(3), partial_infer=True,
    outputs=_mean_var_outputs("std"), visible_outputs=_visible_mean_var,
    gradient=_norm_gradient("_backward_LayerNorm", 3), aliases=("_npx_layer_norm",),
    doc="Layer normalization: normalise over ``axis`` (mean and biased variance per "
        "position of the other axes), then scale by gamma and shift by beta along that axis."))


# -- InstanceNorm ----------------------------------------------------------------------

_IN_PARAMS = {"eps": Param(float, 1e-3, "Added to the variance before the square root.",
                           min=0.0)}


def _in_shape(attrs, in_shapes):
    data = in_shapes[0]
    if data is None:
        return in_shapes, [None, None, None]
    data = tuple(data)
    _need_ndim(data, 3, "InstanceNorm (N, C, spatial...)")
    want = (data[1],)
    _check_given(("gamma", "beta"), in_shapes[1:], [want] * 2,
                 f"one value per channel: data {data} has {data[1]} channels")
    return [data, want, want], [data, data[:2], data[:2]]


_in_shape.partial = True


def _in_view(data):
    return data.reshape(data.shape[0], data.shape[1], math.prod(data.shape[2:]))


def _in_forward(xp, attrs, inputs, outputs, req):
    data, gamma, beta = inputs
    out, mean_out, var_out = outputs
    x = _in_view(data)
    kept = (1, x.shape[1], 1)
    mean, var, _ = _normalize_forward(xp, x, out, req[0], (2,), gamma.reshape(kept),
                                      beta.reshape(kept), attrs.eps, _acc_dtype(data.dtype))
    write_result(xp, mean_out, mean.reshape(mean_out.shape), req[1])
    write_result(xp, var_out, var.reshape(var_out.shape), req[2])


def _in_backward(xp, attrs, inputs, outputs, req):
    g, data, gamma, mean, var = inputs
    dx, dgamma, dbeta = outputs
    x = _in_view(data)
    n, c, _ = x.shape
    invstd = 1.0 / xp.sqrt(var.reshape(n, c, 1) + attrs.eps)
    _normalize_backward(xp, g.reshape(x.shape), x, gamma.reshape(1, c, 1),
                        mean.reshape(n, c, 1), invstd, (2,), dx.reshape(x.shape), dgamma,
                        dbeta, req, (0, 2), (0, 2))


register(OpDef(
    "_backward_InstanceNorm", _in_backward,
    inputs=("ograd", "data", "gamma", "mean", "var"), params=dict(_IN_PARAMS),
    infer_shape=_backward_shape, infer_type=_backward_type,
    outputs=("data_grad", "gamma_grad", "beta_grad"), differentiable=False,
    doc="Gradient of InstanceNorm with respect to data, gamma and beta, from the saved mean "
        "and variance."))

register(OpDef(
    "InstanceNorm", _in_forward, inputs=("data", "gamma", "beta"), params=dict(_IN_PARAMS),
    infer_shape=_in_shape, infer_type=_same_dtype_norm(3), partial_infer=True,
    outputs=("output", "mean", "var"), visible_outputs=1,
    gradient=_norm_gradient("_backward_InstanceNorm", 3),
    doc="Instance normalization: normalise each channel of each sample over its spatial "
        "positions (data is (N, C, ...)), then scale by gamma and shift by beta per channel."))


# -- GroupNorm -------------------------------------------------------------------------

_GN_PARAMS = {
    "num_groups": Param(int, 1, "Number of channel groups.", min=1),
    "eps": Param(float, 1e-5, "Added to the variance before the square root.", min=0.0),
    "output_mean_var": Param(bool, False, "Also output the mean and the std (N, num_groups)."),
}


def _gn_shape(attrs, in_shapes):
    data = in_shapes[0]
    groups = attrs.num_groups
    if data is None:
        return in_shapes, [None, None, None]
    data = tuple(data)
    _need_ndim(data, 3, "GroupNorm (N, C, spatial...)")
    if data[1] % groups:
        raise ShapeError(f"input 'data' has {data[1]} channels (shape {data}), which "
                         f"num_groups={groups} does not divide", argument="data",
                         expected=f"channels divisible by num_groups={groups}", actual=data)
    params = [tuple(s) if s is not None else None for s in in_shapes[1:]]
    for name, given in zip(("gamma", "beta"), params):
        if given is not None and given not in ((groups,), (data[1],)):
            raise ShapeError(f"input '{name}' has shape {given} but {(groups,)} (one per "
                             f"group, MXNet 1.x) or {(data[1],)} (one per channel) was "
                             f"expected for data {data} and num_groups={groups}",
                             argument=name, expected=(groups,), actual=given)
    if params[0] is not None and params[1] is not None and params[0] != params[1]:
        raise ShapeError(f"inputs 'gamma' {params[0]} and 'beta' {params[1]} must have the "
                         "same shape (both per group or both per channel)", argument="beta",
                         expected=params[0], actual=params[1])
    want = next((s for s in params if s is not None), (groups,))
    stats = (data[0], groups)
    return [data, want, want], [data, stats, stats]


_gn_shape.partial = True


def _gn_view(data, groups):
    n, c = data.shape[:2]
    return data.reshape(n, groups, c // groups, math.prod(data.shape[2:]))


def _gn_param_view(p, x):
    _, groups, per, _ = x.shape
    return p.reshape(1, groups, 1, 1) if p.size == groups else p.reshape(1, groups, per, 1)


def _gn_param_axes(p, x):
    return (0, 2, 3) if p.size == x.shape[1] else (0, 3)


def _gn_forward(xp, attrs, inputs, outputs, req):
    data, gamma, beta = inputs
    out, mean_out, std_out = outputs
    x = _gn_view(data, attrs.num_groups)
    mean, var, _ = _normalize_forward(xp, x, out, req[0], (2, 3), _gn_param_view(gamma, x),
                                      _gn_param_view(beta, x), attrs.eps,
                                      _acc_dtype(data.dtype))
    write_result(xp, mean_out, mean.reshape(mean_out.shape), req[1])
    write_result(xp, std_out, xp.sqrt(var + attrs.eps).reshape(std_out.shape), req[2])


def _gn_backward(xp, attrs, inputs, outputs, req):
    g, data, gamma, mean, std = inputs[:5]
    dx, dgamma, dbeta = outputs
    x = _gn_view(data, attrs.num_groups)
    kept = x.shape[:2] + (1, 1)
    _normalize_backward(xp, g.reshape(x.shape), x, _gn_param_view(gamma, x),
                        mean.reshape(kept), 1.0 / std.reshape(kept), (2, 3),
                        dx.reshape(x.shape), dgamma, dbeta, req, _gn_param_axes(gamma, x),
                        _gn_param_axes(gamma, x), extra=_extra(inputs, attrs, kept),
                        extra_kind="std")


register(OpDef(
    "_backward_GroupNorm", _gn_backward, inputs=_backward_inputs("std"),
    params=dict(_GN_PARAMS), infer_shape=_backward_shape, infer_type=_backward_type,
    outputs=("data_grad", "gamma_grad", "beta_grad"), differentiable=False,
    doc="Gradient of GroupNorm with respect to data, gamma and beta, from the saved mean "
        "and std."))


register(OpDef(
    "GroupNorm", _gn_forward, inputs=("data", "gamma", "beta"), params=dict(_GN_PARAMS),
    infer_shape=_gn_shape, infer_type=_same_dtype_norm(3), partial_infer=True,
    outputs=_mean_var_outputs("std"), visible_outputs=_visible_mean_var,
    gradient=_norm_gradient("_backward_GroupNorm", 3),
    doc="Group normalization: split the channels (axis 1) into num_groups groups and "
        "normalise each group of each sample; gamma and beta have shape (num_groups,) as in "
        "MXNet 1.x, or (C,) for per-channel scale and shift."))


# -- L2Normalization -------------------------------------------------------------------

_L2_MODES = ("instance", "channel", "spatial")

_L2_PARAMS = {
    "eps": Param(float, 1e-10, "Added to the sum of squares before the square root.",
                 min=0.0),
    "mode": Param(str, "instance", "Normalise each sample over all its values ('instance'), "
                                   "each position over the channels (axis 1, 'channel'), or "
                                   "each channel over the spatial axes ('spatial').",
                  choices=_L2_MODES),
}


def _l2_view(shape, mode):
    """The op's view of data and the axes its norm is taken over."""
    if mode == "instance":
        return (shape[0], math.prod(shape[1:])), (1,)
    return (shape[0], shape[1], math.prod(shape[2:])), ((1,) if mode == "channel" else (2,))


def _l2_shape(attrs, in_shapes):
    data = in_shapes[0]
    if data is None:
        return in_shapes, [None, None]
    data = tuple(data)
    if attrs.mode == "instance":
        _need_ndim(data, 1, "L2Normalization")
        norm = data[:1]
    else:
        _need_ndim(data, 3, f"L2Normalization with mode='{attrs.mode}'")
        norm = data[:1] + (1,) + data[2:] if attrs.mode == "channel" else data[:2]
    return [data], [data, norm]


_l2_shape.partial = True


def _l2_forward(xp, attrs, inputs, outputs, req):
    data = inputs[0]
    out, norm_out = outputs
    view, axes = _l2_view(data.shape, attrs.mode)
    x = data.reshape(view)
    norm = _rdot(xp, x, x, axes, _acc_dtype(data.dtype))
    norm += attrs.eps
    xp.sqrt(norm, out=norm)
    if req[0] != "null":
        target = _target(xp, out, req[0], view)
        xp.divide(x, norm, out=target, casting="unsafe")
        _finish(out, target, req[0])
    write_result(xp, norm_out, norm.reshape(norm_out.shape), req[1])


def _l2_backward(xp, attrs, inputs, outputs, req):
    g, y, norm = inputs
    dx = outputs[0]
    if req[0] == "null":
        return
    view, axes = _l2_view(y.shape, attrs.mode)
    gv, yv = g.reshape(view), y.reshape(view)
    # d(x / |x|) / dx applied to g: (g - y * sum(g * y)) / |x|
    s = _rdot(xp, gv, yv, axes, _acc_dtype(y.dtype))
    t = _target(xp, dx, req[0], view)
    xp.multiply(yv, s, out=t, casting="unsafe")
    xp.subtract(gv, t, out=t)
    t /= norm.reshape(_kept(view, axes))
    _finish(dx, t, req[0])


def _first_known_shape(attrs, in_shapes):
    return in_shapes, [in_shapes[1] if in_shapes[1] is not None else in_shapes[0]]


_first_known_shape.partial = True


def _ograd_type(attrs, in_dtypes):
    return in_dtypes, [in_dtypes[0]]


register(OpDef(
    "_backward_L2Normalization", _l2_backward, inputs=("ograd", "output", "norm"),
    params=dict(_L2_PARAMS), infer_shape=_first_known_shape, infer_type=_ograd_type,
    outputs=("data_grad",), differentiable=False,
    doc="Gradient of L2Normalization, (ograd - output * sum(ograd * output)) / norm, from "
        "its output and norm."))

register(OpDef(
    "L2Normalization", _l2_forward, params=dict(_L2_PARAMS), infer_shape=_l2_shape,
    infer_type=_same_dtype_norm(2), partial_infer=True, outputs=("output", "norm"),
    visible_outputs=1,
    gradient=lambda F, node, ograds: [F._backward_L2Normalization(
        ograds[0], node.outputs[0], node.outputs[1], **node.attrs)],
    doc="Divide data by its L2 norm ``sqrt(sum(x^2) + eps)`` taken per sample, per "
        "position over the channels, or per channel over the spatial axes (``mode``)."))


# -- LRN -------------------------------------------------------------------------------

_LRN_PARAMS = {
    "alpha": Param(float, 1e-4, "Scale of the sum of squares (divided by nsize, or by "
                                "nsize^2 with region='within', as in Caffe)."),
    "beta": Param(float, 0.75, "Exponent of the normaliser."),
    "knorm": Param(float, 2.0, "Additive constant of the normaliser (region='across' only)."),
    "nsize": Param(int, doc="Window width: channels (across) or spatial positions per side "
                            "(within); odd.", min=1),
    "region": Param(str, "across", "deepkit extension: 'across' channels (MXNet, Caffe's "
                                   "ACROSS_CHANNELS) or 'within' each channel over an "
                                   "nsize x nsize spatial window (Caffe's WITHIN_CHANNEL: "
                                   "additive constant 1, knorm ignored).",
                    choices=("across", "within")),
}


def _lrn_shape(attrs, in_shapes):
    if attrs.nsize % 2 == 0:
        raise ParamError(f"param nsize={attrs.nsize} must be odd (the window is centred on "
                         "each position)", param="nsize", value=attrs.nsize)
    data = in_shapes[0]
    if data is None:
        return in_shapes, [None, None]
    data = tuple(data)
    if attrs.region == "across":
        _need_ndim(data, 2, "LRN (N, C, ...)")
    elif len(data) != 4:
        raise ShapeError(f"input 'data' has shape {data} but LRN with region='within' needs "
                         "4 dimensions (N, C, H, W)", argument="data", expected="(N, C, H, W)",
                         actual=data)
    return [data], [data, data]


_lrn_shape.partial = True


def _axis_slice(axis, sl):
    return (slice(None),) * axis + (sl,)


def _window_sum(a, out, axis, n):
    """``out`` = sums of ``a`` over the zero-padded window of odd width ``n`` along ``axis``.

    The window is symmetric, so this map is its own adjoint: the backward pass
    uses it too. A short loop over the offsets, each a vectorised slice add.
    """
    size = a.shape[axis]
    out[...] = a
    for o in range(1, min(n // 2, size - 1) + 1):
        out[_axis_slice(axis, slice(0, size - o))] += a[_axis_slice(axis, slice(o, None))]
        out[_axis_slice(axis, slice(o, None))] += a[_axis_slice(axis, slice(0, size - o))]


def _shift_sum(src, dst, half, step):
    """``dst[i] = sum(src[i + o * step] for |o| <= half)`` on flat arrays (zero outside)."""
    size = src.size
    dst[...] = src
    for o in range(1, half + 1):
        k = o * step
        if k >= size:
            break
        dst[:size - k] += src[k:]
        dst[k:] += src[:size - k]


def _box_sum(xp, a, out, n):
    """``out`` = sums of the 4-D ``a`` over the zero-padded n x n window of its last two axes.

    Slice adds along a short last axis are slow, so the planes are padded by
    n // 2 zeros on every side and flattened: a shift by ``o`` (one row: by
    ``o`` times the padded width) then never mixes values of different rows or
    planes into the interior, and every add runs over one long contiguous array.
    """
    half = n // 2
    h, w = a.shape[2:]
    padded = xp.zeros(a.shape[:2] + (h + 2 * half, w + 2 * half), a.dtype)
    inner = (slice(None), slice(None), slice(half, half + h), slice(half, half + w))
    padded[inner] = a
    flat = padded.reshape(-1)
    tmp = xp.empty_like(flat)
    _shift_sum(flat, tmp, half, 1)
    _shift_sum(tmp, flat, half, w + 2 * half)
    out[...] = padded[inner]


def _lrn_window(xp, a, out, attrs):
    """Window sums of ``a`` into ``out``; returns the coefficient alpha/n or alpha/n^2."""
    n = attrs.nsize
    if attrs.region == "across":
        _window_sum(a, out, 1, n)
        return attrs.alpha / n
    _box_sum(xp, a, out, n)
    return attrs.alpha / (n * n)


def _pow_neg(xp, base, beta, out):
    """``out = base ** -beta``; beta = 0.75 (the usual) as 1 / (sqrt(b) * b^(1/4)), 2x faster."""
    if beta == 0.75:
        xp.sqrt(base, out=out)
        out *= xp.sqrt(out)
        xp.reciprocal(out, out=out)
    else:
        xp.power(base, -beta, out=out)


def _lrn_forward(xp, attrs, inputs, outputs, req):
    x = inputs[0]
    out, norm_out = outputs
    norm = norm_out if req[1] == "write" else xp.empty_like(norm_out)
    sq = xp.multiply(x, x)
    coef = _lrn_window(xp, sq, norm, attrs)
    norm *= coef
    norm += attrs.knorm if attrs.region == "across" else 1.0
    if req[0] != "null":
        target = _target(xp, out, req[0], out.shape)
        _pow_neg(xp, norm, attrs.beta, target)
        target *= x
        _finish(out, target, req[0])
    if req[1] not in ("write", "null"):
        write_result(xp, norm_out, norm, req[1])


def _lrn_backward(xp, attrs, inputs, outputs, req):
    g, x, norm = inputs
    dx = outputs[0]
    if req[0] == "null":
        return
    # y_j = x_j s_j^-b, s_c = k + a' sum_{j in win(c)} x_j^2:
    # dx_j = g_j s_j^-b - 2 b a' x_j sum_{c in win(j)} g_c x_c s_c^(-b-1)
    t = _target(xp, dx, req[0], dx.shape)
    _pow_neg(xp, norm, attrs.beta, t)
    u = xp.multiply(g, x)
    u *= t
    u /= norm
    ws = xp.empty_like(u)
    coef = _lrn_window(xp, u, ws, attrs)
    ws *= x
    ws *= 2.0 * attrs.beta * coef
    t *= g
    t -= ws
    _finish(dx, t, req[0])


register(OpDef(
    "_backward_LRN", _lrn_backward, inputs=("ograd", "data", "tmp_norm"),
    params=dict(_LRN_PARAMS), infer_shape=_first_known_shape, infer_type=_ograd_type,
    outputs=("data_grad",), differentiable=False,
    doc="Gradient of LRN with respect to data, from the data and the saved normaliser."))

register(OpDef(
    "LRN", _lrn_forward, params=dict(_LRN_PARAMS), infer_shape=_lrn_shape,
    infer_type=_same_dtype_norm(2), partial_infer=True, outputs=("output", "tmp_norm"),
    visible_outputs=1,
    gradient=lambda F, node, ograds: [F._backward_LRN(ograds[0], node.inputs[0],
                                                      node.outputs[1], **node.attrs)],
    doc="Local response normalization ``x / (knorm + alpha/nsize * sum of x^2 over nsize "
        "neighbouring channels)^beta`` (Caffe's ACROSS_CHANNELS); ``region='within'`` uses "
        "an nsize x nsize spatial window instead (Caffe's WITHIN_CHANNEL)."))
