"""Convolution and Deconvolution (transposed convolution), 1-D to 3-D, MXNet semantics.

Layout is NC(D)HW; a convolution weight is ``(num_filter, C / num_group,
*kernel)`` and a deconvolution weight ``(C, num_filter / num_group, *kernel)``,
as in MXNet (so a deconvolution's weight is the weight of the convolution it
transposes). Output sizes follow MXNet exactly::

    conv:   out = floor((in + 2 * pad - dilate * (kernel - 1) - 1) / stride) + 1
    deconv: out = stride * (in - 1) + dilate * (kernel - 1) + 1 - 2 * pad + adj

Kernels (numpy and cupy alike, through ``xp``): the im2col matrix comes from
one strided window view of the input (of a padded copy when pad > 0) copied
once, with columns ordered (N, *out), or (*out, N) on numpy where output rows
are short (see ``_batch_last``). A convolution over the whole batch is then
one GEMM per group, ``weight (F, C*K) @ cols (C*K, N*out)``, and the weight
gradient one GEMM ``cols @ ograd.T``. The data gradient multiplies back to
columns ``weight.T @ ograd`` and folds them with col2im: one vectorized
strided slice add per kernel offset; with stride 1 (no dilation) it is instead
the forward convolution of the ograd, padded by ``kernel - 1 - pad``, with the
flipped, channel-exchanged weight (an im2col copy in place of the slice adds).
On numpy, the batch is cut into chunks of samples that run in parallel on the
kernel pool (``deepkit_engine.threads``), each with single-threaded BLAS; weight
gradient chunks are summed. float32 3x3 stride-1 convolutions with enough
channels take Winograd's F(4x4, 3x3) instead, for all three kernels
(:mod:`.winograd`, with numba). A deconvolution runs the same three
kernels with the roles exchanged (its forward is a convolution's data
gradient, its data gradient a convolution's forward, its weight gradient a
convolution's weight gradient with data and ograd swapped).

Gradients are graph-level: ``Convolution`` differentiates into
``_backward_Convolution_data(ograd, weight, data)``,
``_backward_Convolution_weight(ograd, data)`` and a ``sum`` for the bias. Both
backward ops are linear in each input and are differentiated again into
convolutions and each other, so higher-order gradients work.
"""
import functools

import numpy as np

from .. import threads
from ..base import ParamError, ShapeError
from . import winograd
from .registry import OpDef, Param, Shape, register, same_dtype, write_result

_LAYOUTS = {1: "NCW", 2: "NCHW", 3: "NCDHW"}


def _params(deconv):
    """The parameters, in MXNet's order (which positional parameters follow)."""
    params = {
        "kernel": Param(Shape, doc="Kernel size: (w,), (h, w) or (d, h, w).", min=1),
        "stride": Param(Shape, (), "Stride per spatial axis; default 1 each.", min=1),
        "dilate": Param(Shape, (), "Dilation per spatial axis; default 1 each.", min=1),
        "pad": Param(Shape, (), "Zero padding on both sides per spatial axis; default 0 each"
                                + ("; ignored when target_shape is set." if deconv else "."),
                     min=0),
    }
    if deconv:
        params["adj"] = Param(Shape, (), "Extra size added at the end of each spatial axis of "
                                         "the output (smaller than stride); default 0 each; "
                                         "ignored when target_shape is set.", min=0)
        params["target_shape"] = Param(Shape, (), "Output spatial shape; when set (not all "
                                                  "zeros), pad and adj are computed from it "
                                                  "as in MXNet.", min=0)
    params.update({
        "num_filter": Param(int, doc="Number of output channels.", min=1),
        "num_group": Param(int, 1, "Number of groups: input and output channels are split "
                                   "into num_group independent convolutions (depthwise when "
                                   "it equals the input channels).", min=1),
        "workspace": Param(int, 512 if deconv else 1024, "Accepted for MXNet compatibility "
                                                         "(MB); has no effect.", min=0),
        "no_bias": Param(bool, deconv, "Leave out the bias" + (" (MXNet's default for "
                                                               "Deconvolution: True)."
                                                               if deconv else ".")),
        "cudnn_tune": Param(str, None, "Accepted for MXNet compatibility; has no effect.",
                            choices=("off", "limited_workspace", "fastest")),
        "cudnn_off": Param(bool, False, "Accepted for MXNet compatibility; has no effect."),
        "layout": Param(str, None, "Data layout: only the channel-first layout matching the "
                                   "kernel's rank (NCW, NCHW, NCDHW) is supported.",
                        choices=("NCW", "NCHW", "NCDHW")),
    })
    return params


# -- parameters and geometry ---------------------------------------------------

@functools.lru_cache(maxsize=512)
def _geometry(op_name, kernel, stride, dilate, pad, layout):
    """``(kernel, stride, dilate, pad)`` with MXNet's defaults filled in; validated."""
    nd = len(kernel)
    if nd not in (1, 2, 3):
        raise ParamError(f"{op_name}: param kernel={kernel} must have 1, 2 or 3 entries "
                         "(1-D, 2-D or 3-D)", op=op_name, param="kernel", value=kernel)
    out = [kernel]
    for pname, value, default in (("stride", stride, 1), ("dilate", dilate, 1), ("pad", pad, 0)):
        if not value:
            value = (default,) * nd
        elif len(value) != nd:
            raise ParamError(f"{op_name}: param {pname}={value} has {len(value)} entries but "
                             f"kernel={kernel} has {nd}", op=op_name, param=pname, value=value)
        out.append(tuple(value))
    if layout is not None and layout != _LAYOUTS[nd]:
        raise ParamError(f"{op_name}: param layout='{layout}' does not fit a {nd}-D kernel "
                         f"{kernel}; use '{_LAYOUTS[nd]}' (or leave it unset)", op=op_name,
                         param="layout", value=layout)
    return tuple(out)


def _geo(op_name, attrs):
    return _geometry(op_name, attrs.kernel, attrs.stride, attrs.dilate, attrs.pad, attrs.layout)


def _check_groups(op_name, attrs):
    if attrs.num_filter % attrs.num_group:
        raise ParamError(f"{op_name}: num_filter={attrs.num_filter} is not divisible by "
                         f"num_group={attrs.num_group}", op=op_name, param="num_filter",
                         value=attrs.num_filter)


def _check_data(attrs, data, nd, role="data"):
    data = tuple(data)
    if len(data) != nd + 2:
        raise ShapeError(f"input '{role}' has shape {data} but a {nd}-D kernel {attrs.kernel} "
                         f"needs {nd + 2} dimensions ({_LAYOUTS[nd]})", argument=role,
                         expected=nd + 2, actual=data)
    c, g = data[1], attrs.num_group
    if c == 0 or c % g:
        raise ShapeError(f"input '{role}' has {c} channels (shape {data}), which is not a "
                         f"positive multiple of num_group={g}", argument=role,
                         expected=f"channels divisible by {g}", actual=data)
    return data


def _check_given(name, given, want, why):
    if given is not None and tuple(given) != tuple(want):
        raise ShapeError(f"input '{name}' has shape {tuple(given)} but {tuple(want)} was "
                         f"inferred from {why}", argument=name, expected=tuple(want),
                         actual=tuple(given))


def _conv_out_size(data, geo):
    kernel, stride, dilate, pad = geo
    sp = data[2:]
    for h, k, d, p in zip(sp, kernel, dilate, pad):
        if h + 2 * p < d * (k - 1) + 1:
            dk = tuple(d_ * (k_ - 1) + 1 for k_, d_ in zip(kernel, dilate))
            padded = tuple(h_ + 2 * p_ for h_, p_ in zip(sp, pad))
            raise ShapeError(
                f"kernel {kernel} with dilate {dilate} (dilated size {dk}) is larger than the "
                f"padded input: input size {sp} + 2 * pad {pad} = {padded}", argument="data",
                expected=f"spatial size >= {dk} after padding", actual=tuple(data))
    return tuple((h + 2 * p - d * (k - 1) - 1) // s + 1
                 for h, k, s, d, p in zip(sp, kernel, stride, dilate, pad))


def _deconv_pad_adj(attrs, geo, sp):
    """MXNet's ``InferPad``: pad and adj, from target_shape when it is set."""
    kernel, stride, dilate, pad = geo
    nd = len(kernel)
    target = attrs.target_shape
    if target and any(target):
        if len(target) != nd:
            raise ParamError(f"Deconvolution: param target_shape={target} has {len(target)} "
                             f"entries but kernel={kernel} has {nd}", op="Deconvolution",
                             param="target_shape", value=target)
        pads, adjs = [], []
        for h, k, s, d, t in zip(sp, kernel, stride, dilate, target):
            total = s * (h - 1) + d * (k - 1) + 1 - t
            if total < 0:
                biggest = tuple(s_ * (h_ - 1) + d_ * (k_ - 1) + 1
                                for h_, k_, s_, d_ in zip(sp, kernel, stride, dilate))
                raise ShapeError(f"target_shape {target} is too big for input size {sp}: with "
                                 f"kernel {kernel}, stride {stride}, dilate {dilate} the output "
                                 f"is at most {biggest}", argument="data",
                                 expected=f"output <= {biggest}", actual=target)
            adjs.append(total % 2)
            pads.append((total + 1) // 2)
        return tuple(pads), tuple(adjs), "target_shape"
    adj = attrs.adj
    if not adj:
        adj = (0,) * nd
    elif len(adj) != nd:
        raise ParamError(f"Deconvolution: param adj={adj} has {len(adj)} entries but "
                         f"kernel={kernel} has {nd}", op="Deconvolution", param="adj",
                         value=adj)
    return pad, tuple(adj), "adj"


def _deconv_geometry(attrs, sp):
    """``(geo with the effective pad, adj, out spatial size)`` of a deconvolution."""
    geo = _geo("Deconvolution", attrs)
    kernel, stride, dilate, _ = geo
    pad, adj, source = _deconv_pad_adj(attrs, geo, sp)
    for a, s in zip(adj, stride):
        if a >= s:
            msg = (f"adj {adj} must be smaller than stride {stride}"
                   + (f" (adj computed from target_shape {attrs.target_shape} for input size "
                      f"{tuple(sp)})" if source == "target_shape" else ""))
            if source == "adj":
                raise ParamError("Deconvolution: param " + msg, op="Deconvolution", param="adj",
                                 value=attrs.adj)
            raise ShapeError(msg, argument="data", expected=f"adj < {stride}", actual=adj)
    out = tuple(s * (h - 1) + d * (k - 1) + 1 - 2 * p + a
                for h, k, s, d, p, a in zip(sp, kernel, stride, dilate, pad, adj))
    if any(o <= 0 for o in out):
        raise ShapeError(f"output size {out} is not positive: input size {tuple(sp)}, kernel "
                         f"{kernel}, stride {stride}, dilate {dilate}, pad {pad}, adj {adj}",
                         argument="data", expected="positive output size", actual=out)
    return (kernel, stride, dilate, pad), adj, out


# -- shape inference ------------------------------------------------------------

def _inputs(attrs):
    return ("data", "weight") if attrs.no_bias else ("data", "weight", "bias")


def _conv_shape(attrs, in_shapes):
    geo = _geo("Convolution", attrs)
    _check_groups("Convolution", attrs)
    f, g = attrs.num_filter, attrs.num_group
    ins = list(in_shapes)
    if not attrs.no_bias:
        _check_given("bias", ins[2], (f,), f"num_filter={f}")
        ins[2] = (f,)
    data = ins[0]
    if data is None:
        weight = ins[1]
        if weight is not None and (len(weight) != len(geo[0]) + 2 or weight[0] != f
                                   or tuple(weight[2:]) != geo[0]):
            raise ShapeError(f"input 'weight' has shape {tuple(weight)} but num_filter={f} and "
                             f"kernel={geo[0]} need ({f}, C/{g}, *{geo[0]})", argument="weight",
                             expected=(f, None) + geo[0], actual=tuple(weight))
        return ins, [None]
    data = _check_data(attrs, data, len(geo[0]))
    out = (data[0], f) + _conv_out_size(data, geo)
    weight = (f, data[1] // g) + geo[0]
    _check_given("weight", ins[1], weight,
                 f"num_filter={f}, num_group={g}, kernel={geo[0]} and data {data}")
    ins[0], ins[1] = data, weight
    return ins, [out]


def _deconv_shape(attrs, in_shapes):
    geo = _geo("Deconvolution", attrs)
    _check_groups("Deconvolution", attrs)
    f, g = attrs.num_filter, attrs.num_group
    ins = list(in_shapes)
    if not attrs.no_bias:
        _check_given("bias", ins[2], (f,), f"num_filter={f}")
        ins[2] = (f,)
    data = ins[0]
    if data is None:
        return ins, [None]
    data = _check_data(attrs, data, len(geo[0]))
    _, _, out_sp = _deconv_geometry(attrs, data[2:])
    weight = (data[1], f // g) + geo[0]
    _check_given("weight", ins[1], weight,
                 f"data {data} (C, num_filter/num_group={f // g}, *kernel {geo[0]})")
    ins[0], ins[1] = data, weight
    return ins, [(data[0], f) + out_sp]


def _backward_data_shape(attrs, in_shapes):
    """``_backward_*_data(ograd, weight, data)``: the gradient has data's shape."""
    data = in_shapes[2]
    return in_shapes, [None if data is None else tuple(data)]


def _backward_deconv_data_shape(attrs, in_shapes):
    data = in_shapes[2]
    if data is not None:
        _deconv_geometry(attrs, tuple(data)[2:])  # validates, before any kernel runs
    return _backward_data_shape(attrs, in_shapes)


def _backward_conv_weight_shape(attrs, in_shapes):
    data = in_shapes[1]
    if data is None:
        return in_shapes, [None]
    geo = _geo("_backward_Convolution_weight", attrs)
    return in_shapes, [(attrs.num_filter, data[1] // attrs.num_group) + geo[0]]


def _backward_deconv_weight_shape(attrs, in_shapes):
    data = in_shapes[1]
    if data is None:
        return in_shapes, [None]
    geo, _, _ = _deconv_geometry(attrs, tuple(data)[2:])
    return in_shapes, [(data[1], attrs.num_filter // attrs.num_group) + geo[0]]


for _fn in (_conv_shape, _deconv_shape, _backward_data_shape, _backward_deconv_data_shape,
            _backward_conv_weight_shape, _backward_deconv_weight_shape):
    _fn.partial = True


# -- kernels ------------------------------------------------------------------------

def _as_strided(xp, a, shape, strides):
    return xp.lib.stride_tricks.as_strided(a, shape=shape, strides=strides)


def _needed(out_sp, geo):
    """Input extent (padding included) that the windows at ``out_sp`` positions cover."""
    kernel, stride, dilate, _ = geo
    return tuple(s * (o - 1) + d * (k - 1) + 1
                 for o, k, s, d in zip(out_sp, kernel, stride, dilate))


#: im2col layouts, chosen per op call from the shapes (``_layout``):
#:
#: - ``"sample"``: (N, C*K, *out), one GEMM per sample through matmul broadcasting,
#:   which writes the forward output (N, F, *out) and reads the output gradient as they
#:   are, with no transposed copies;
#: - ``"last"`` (numpy, short output rows): (C*K, *out, N), one GEMM over the whole
#:   batch. numpy's copies and slice adds loop innermost over the last axis, slowly when
#:   it is short: with the batch last that loop is long, at the price of transposing the
#:   data and the output gradient;
#: - ``"first"``: (C*K, N, *out), one GEMM over the whole batch; for grouped convolutions
#:   on numpy (whose broadcasting matmul would make N * groups small GEMM calls) and for
#:   weight gradients with more filters than output positions (whose per-sample partial
#:   sums would outgrow the columns).
#:
#: Measured on LeNet's and VGG-like layers (numpy, 2 cores): "last" wins for output rows
#: up to ~10 in forward and weight gradient and up to ~20 in the data gradient (col2im's
#: slice adds gain the most); "sample" beats "first" elsewhere (LeNet's first layer:
#: forward 2.0 vs 2.9 ms, weight gradient 1.5 vs 3.2 ms).
_BATCH_LAST_MIN_N = 16
_BATCH_LAST_MAX_ROW = 10
_BATCH_LAST_MAX_ROW_COL2IM = 20


def _layout(xp, n, out_sp, groups, max_row=None):
    """The im2col layout for one call (see above)."""
    if max_row is None:
        max_row = _BATCH_LAST_MAX_ROW
    if xp is np:
        if n >= _BATCH_LAST_MIN_N and out_sp[-1] <= max_row:
            return "last"
        if groups != 1:
            return "first"
    return "sample"


def _padding(sp, pad, need):
    """``(dst, src)`` slices copying data (extent ``sp``) into a padded buffer (``need``)."""
    dst, src = [], []
    for h, p, e in zip(sp, pad, need):
        stop = max(min(e, p + h), p)
        dst.append(slice(p, stop))
        src.append(slice(0, stop - p))
    return tuple(dst), tuple(src)


def _im2col(xp, x, out_sp, geo, layout, into=None):
    """The columns of ``x`` (N, C, *sp) for windows at the ``out_sp`` positions.

    A contiguous (N, C, *kernel, *out) array for layout "sample", (C, *kernel, N, *out)
    for "first" and (C, *kernel, *out, N) for "last": one strided window view (of a
    padded or transposed copy where needed) copied once, into ``into`` when given
    (an array of that shape).
    """
    kernel, stride, dilate, pad = geo
    n, c = x.shape[:2]
    sp = x.shape[2:]
    need = _needed(out_sp, geo)
    padded = any(pad) or any(e > h for e, h in zip(need, sp))
    every = slice(None)
    if layout == "last":
        if padded:
            buf = xp.zeros((c,) + need + (n,), x.dtype)
            dst, src = _padding(sp, pad, need)
            buf[(every,) + dst + (every,)] = xp.moveaxis(x[(every, every) + src], 0, -1)
        else:
            buf = xp.empty((c,) + sp + (n,), x.dtype)
            buf[...] = xp.moveaxis(x, 0, -1)
        st = buf.strides
        shape = (c,) + tuple(kernel) + tuple(out_sp) + (n,)
        strides = ((st[0],) + tuple(d * st[1 + i] for i, d in enumerate(dilate))
                   + tuple(s * st[1 + i] for i, s in enumerate(stride)) + (st[-1],))
    else:
        if padded:
            buf = xp.zeros((n, c) + need, x.dtype)
            dst, src = _padding(sp, pad, need)
            buf[(every, every) + dst] = x[(every, every) + src]
        else:
            buf = x
        st = buf.strides
        win = tuple(d * st[2 + i] for i, d in enumerate(dilate))
        pos = tuple(s * st[2 + i] for i, s in enumerate(stride))
        if layout == "sample":
            shape = (n, c) + tuple(kernel) + tuple(out_sp)
            strides = (st[0], st[1]) + win + pos
        else:
            shape = (c,) + tuple(kernel) + (n,) + tuple(out_sp)
            strides = (st[1],) + win + (st[0],) + pos
    cols = xp.empty(shape, x.dtype) if into is None else into
    cols[...] = _as_strided(xp, buf, shape, strides)
    return cols


def _col2im(xp, cols, data_sp, geo, layout):
    """Fold columns (laid out as ``_im2col`` makes them) back into an (N, C, *data_sp) view.

    One vectorized strided slice add per kernel offset into a padded buffer.
    """
    kernel, stride, dilate, pad = geo
    nd = len(kernel)
    if layout == "sample":
        n, c = cols.shape[:2]
        out_sp = cols.shape[2 + nd:]
    elif layout == "last":
        c, out_sp, n = cols.shape[0], cols.shape[1 + nd:-1], cols.shape[-1]
    else:
        c, n, out_sp = cols.shape[0], cols.shape[1 + nd], cols.shape[2 + nd:]
    need = _needed(out_sp, geo)
    full = tuple(max(e, p + h) for e, p, h in zip(need, pad, data_sp))
    every = slice(None)
    crop = tuple(slice(p, p + h) for p, h in zip(pad, data_sp))
    if layout == "last":
        buf = xp.zeros((c,) + full + (n,), cols.dtype)
        lead, tail = (every,), (every,)
    else:
        buf = xp.zeros(((n, c) if layout == "sample" else (c, n)) + full, cols.dtype)
        lead, tail = (every, every), ()
    src = (every, every) if layout == "sample" else (every,)
    for offset in np.ndindex(*kernel):
        window = tuple(slice(k * d, k * d + s * (o - 1) + 1, s)
                       for k, d, s, o in zip(offset, dilate, stride, out_sp))
        buf[lead + window + tail] += cols[src + offset]
    folded = buf[lead + crop + tail]
    if layout == "last":
        return xp.moveaxis(folded, -1, 0)
    return folded if layout == "sample" else folded.swapaxes(0, 1)


def _group_view(a, groups, rows, cols):
    """``a`` as a (rows, cols) matrix split by rows into groups: (groups, rows/groups, cols).

    ``cols`` counts the columns of one group; one group gives a plain 2-D view.
    """
    if groups == 1:
        return a.reshape(rows, cols)
    return a.reshape(groups, rows // groups, cols)


def _sample_view(a, groups, rows, cols):
    """(N, rows, cols) per sample, split by rows into groups: (N, groups, rows/groups, cols)."""
    n = a.shape[0]
    if groups == 1:
        return a.reshape(n, rows, cols)
    return a.reshape(n, groups, rows // groups, cols)


def _channels_first(xp, g, groups, layout):
    """ograd (N, F, *out) as a contiguous (F, N*out) matrix, columns ordered as in ``layout``."""
    n, f = g.shape[:2]
    o = int(np.prod(g.shape[2:]))
    g3 = g.reshape(n, f, o)
    gt = xp.ascontiguousarray(g3.transpose(1, 2, 0) if layout == "last" else g3.swapaxes(0, 1))
    return _group_view(gt, groups, f, n * o)


#: Largest im2col/col2im workspace one kernel call builds; bigger batches are
#: processed in chunks of samples, so temporary memory stays bounded whatever the
#: batch size (the planner plans the outputs, not the kernels' workspace).
WORKSPACE_BYTES = 16 << 20


def _chunks(xp, n, per_sample_bytes, out_sp=None, groups=1):
    """Sample ranges for one kernel call, or None to run the whole batch at once.

    The workspaces of the ranges that run at once fit :data:`WORKSPACE_BYTES`
    together; on numpy the batch is also split into at least as many ranges as the
    kernel pool runs at once (see ``deepkit_engine.threads``), keeping a range at
    least ``_BATCH_LAST_MIN_N`` samples long where the whole batch would use the
    batch-last layout.
    """
    workers = threads.pool_size() if xp is np else 1
    size = max(1, WORKSPACE_BYTES // workers // max(int(per_sample_bytes), 1))
    if workers > 1:
        size = min(size, -(-n // workers))
    if xp is np and out_sp is not None and _layout(xp, n, out_sp, groups) == "last":
        size = max(size, min(n, _BATCH_LAST_MIN_N))
    if size >= n:
        return None
    return [(i, min(i + size, n)) for i in range(0, n, size)]


def _cols_bytes(x, w, out_sp, geo):
    return x.shape[1] * int(np.prod(geo[0])) * int(np.prod(out_sp)) * x.dtype.itemsize


def conv_forward(xp, x, w, out, req, geo, groups, bias=None):
    """``out (N, F, *o) (req)= conv(x, w) + bias``; ``o`` is taken from ``out``'s shape."""
    if req == "null":
        return
    if winograd.applies(xp, x, w, out, geo, groups):
        winograd.conv_forward(x, w, out, req, geo[3], bias)
        return
    chunks = _chunks(xp, x.shape[0], _cols_bytes(x, w, out.shape[2:], geo), out.shape[2:], groups)
    if chunks is None:
        _conv_forward(xp, x, w, out, req, geo, groups, bias)
    else:
        threads.parallel_map(lambda r: _conv_forward(xp, x[r[0]:r[1]], w, out[r[0]:r[1]], req,
                                                     geo, groups, bias), chunks)


def _conv_forward(xp, x, w, out, req, geo, groups, bias):
    n, c = x.shape[:2]
    f = w.shape[0]
    out_sp = out.shape[2:]
    o = int(np.prod(out_sp))
    ck = c * int(np.prod(geo[0]))
    layout = _layout(xp, n, out_sp, groups)
    cols = _im2col(xp, x, out_sp, geo, layout)
    wg = _group_view(w, groups, f, ck // groups)
    direct = req != "add" and out.flags.c_contiguous
    if layout == "sample":
        # one GEMM per sample (and group) writing (N, F, O) as it is laid out
        cs = _sample_view(cols, groups, ck, o)
        if direct:
            xp.matmul(wg, cs, out=_sample_view(out, groups, f, o))
            if bias is not None:
                _add_bias(xp, out, bias)
            return
        value = xp.matmul(wg, cs).reshape(n, f, o)
    else:
        res = xp.matmul(wg, _group_view(cols, groups, ck, n * o))
        if layout == "last":
            value = res.reshape(f, o, n).transpose(2, 0, 1)  # (N, F, O) view
        else:
            value = res.reshape(f, n, o).swapaxes(0, 1)
    if direct:
        if bias is None:
            out.reshape(n, f, o)[...] = value
        else:
            xp.add(value, bias.reshape(1, f, 1), out=out.reshape(n, f, o))
    else:
        full = value if bias is None else value + bias.reshape(1, f, 1)
        write_result(xp, out, full.reshape(out.shape), req)


#: A stride-1 data gradient runs as a forward convolution when it multiplies at most
#: this many times the GEMM work of the col2im path (the zero border it adds to the
#: output gradient costs multiply-adds; col2im costs one pass over memory per offset).
_FULL_CONV_MAX_WORK = 1.3


def _full_conv_ok(geo, data_sp, out_sp):
    """Whether the data gradient may run as a "full" forward convolution of the ograd."""
    kernel, stride, dilate, pad = geo
    if any(s != 1 for s in stride) or any(d != 1 for d in dilate):
        return False
    if any(p > k - 1 for k, p in zip(kernel, pad)):
        return False
    return np.prod(data_sp) <= _FULL_CONV_MAX_WORK * np.prod(out_sp)


def _full_conv_geometry(geo):
    kernel, _, _, pad = geo
    ones = (1,) * len(kernel)
    return kernel, ones, ones, tuple(k - 1 - p for k, p in zip(kernel, pad))


def _flipped_weight(xp, w, groups):
    """(F, C/G, *k) weight as the (C, F/G, *k) weight of the transposed convolution.

    A stride-1 convolution's data gradient is the convolution of the output gradient,
    padded by ``kernel - 1 - pad``, with this weight: channels exchanged within each
    group and every spatial axis reversed.
    """
    f, cg = w.shape[:2]
    kernel = w.shape[2:]
    wt = w.reshape((groups, f // groups, cg) + kernel).swapaxes(1, 2)
    wt = wt[(Ellipsis,) + (slice(None, None, -1),) * len(kernel)]
    return xp.ascontiguousarray(wt).reshape((groups * cg, f // groups) + kernel)


def conv_data_grad(xp, g, w, out, req, geo, groups):
    """``out (N, C, *sp) (req)=`` the gradient of conv w.r.t. its data, given ograd ``g``."""
    if req == "null":
        return
    if winograd.applies(xp, g, w, out, geo, groups, data_grad=True):
        winograd.conv_data_grad(g, w, out, req, geo[3])
        return
    if _full_conv_ok(geo, out.shape[2:], g.shape[2:]):
        conv_forward(xp, g, _flipped_weight(xp, w, groups), out, req, _full_conv_geometry(geo),
                     groups)
        return
    out_sp = g.shape[2:]
    chunks = _chunks(xp, out.shape[0], _cols_bytes(out, w, out_sp, geo), out_sp, groups)
    if chunks is None:
        _conv_data_grad(xp, g, w, out, req, geo, groups)
    else:
        threads.parallel_map(lambda r: _conv_data_grad(xp, g[r[0]:r[1]], w, out[r[0]:r[1]], req,
                                                       geo, groups), chunks)


def _conv_data_grad(xp, g, w, out, req, geo, groups):
    n, c = out.shape[:2]
    f = w.shape[0]
    out_sp = g.shape[2:]
    o = int(np.prod(out_sp))
    ck = c * int(np.prod(geo[0]))
    layout = _layout(xp, n, out_sp, groups, _BATCH_LAST_MAX_ROW_COL2IM)
    # a contiguous copy of the (small) transposed weight: numpy's matmul is several times
    # slower with a transposed view as its first operand
    wt = xp.ascontiguousarray(_group_view(w, groups, f, ck // groups).swapaxes(-1, -2))
    kernel = tuple(geo[0])
    if layout == "sample":
        cols = xp.matmul(wt, _sample_view(g, groups, f, o))
        cols = cols.reshape((n, c) + kernel + tuple(out_sp))
    else:
        cols = xp.matmul(wt, _channels_first(xp, g, groups, layout))
        m = (tuple(out_sp) + (n,)) if layout == "last" else ((n,) + tuple(out_sp))
        cols = cols.reshape((c,) + kernel + m)
    write_result(xp, out, _col2im(xp, cols, out.shape[2:], geo, layout), req)


def conv_weight_grad(xp, g, x, out, req, geo, groups):
    """``out (F, C/groups, *kernel) (req)=`` the gradient of conv w.r.t. its weight."""
    if req == "null":
        return
    if winograd.applies(xp, x, out, g, geo, groups):
        winograd.conv_weight_grad(g, x, out, req, geo[3])
        return
    if (xp is np and groups == 1 and out.flags.c_contiguous and x.shape[0] > 1
            and out.nbytes >= IN_PLACE_WEIGHT_GRAD_BYTES):
        _weight_grad_in_place(g, x, out, req, geo)
        return
    out_sp = g.shape[2:]
    chunks = _chunks(xp, x.shape[0], _cols_bytes(x, out, out_sp, geo), out_sp, groups)
    if chunks is None:
        res = _conv_weight_grad(xp, g, x, geo, groups)
    else:
        res = None
        wave = threads.pool_size() if xp is np else 1
        for k in range(0, len(chunks), wave):  # at most one partial sum per thread alive
            for part in threads.parallel_map(
                    lambda r: _conv_weight_grad(xp, g[r[0]:r[1]], x[r[0]:r[1]], geo, groups),
                    chunks[k:k + wave]):
                if res is None:
                    res = part
                else:
                    res += part
    write_result(xp, out, res.swapaxes(-1, -2).reshape(out.shape), req)


#: Weight gradients at least this large (numpy, ungrouped) are summed in place over the
#: batch chunks (``_weight_grad_in_place``): their per-chunk partial sums would take more
#: memory than the columns. Measured on ResNet-18's layers: 9 MiB weights 48.6 -> 20.1 MiB
#: of workspace at +8 % time, 2.25 MiB weights 24.3 -> 19.5 MiB at -5 %; smaller weights
#: (LeNet's, ResNet's first stages) keep the batch-split path, which is faster for them.
IN_PLACE_WEIGHT_GRAD_BYTES = 128 << 10

#: The columns workspace of ``_weight_grad_in_place`` (one chunk at a time).
IN_PLACE_WORKSPACE_BYTES = 8 << 20


def _weight_grad_in_place(g, x, out, req, geo):
    """The weight gradient on numpy, summed over batch chunks straight into ``out``.

    Each pool thread takes a range of input channels: per chunk of samples it
    lays out its channels' columns (C_part*K, chunk*O) and adds
    ``g (F, chunk*O) @ columns^T`` to its columns of ``out (F, C*K)`` with
    BLAS's in-place accumulation (:func:`threads.gemm_nt`). The only
    workspace is one chunk's columns (:data:`IN_PLACE_WORKSPACE_BYTES`, one
    buffer reused) and its output-gradient rows: no partial sum per chunk or per
    thread, which for ResNet's last layers (2.4 M weights) took more memory
    than the columns.
    """
    n, c = x.shape[:2]
    f = g.shape[1]
    out_sp = g.shape[2:]
    o = int(np.prod(out_sp))
    kernel = tuple(geo[0])
    k = int(np.prod(kernel))
    target = out.reshape(f, c * k)
    size = min(n, max(1, IN_PLACE_WORKSPACE_BYTES // max(c * k * o * x.dtype.itemsize, 1)))
    workspace = np.empty(c * k * size * o, x.dtype)
    channels = threads.even_slices(c, threads.pool_size())
    for start in range(0, n, size):
        stop = min(start + size, n)
        chunk = x[start:stop]
        cols = workspace[:c * k * (stop - start) * o].reshape(
            (c,) + kernel + (stop - start,) + tuple(out_sp))
        grads = np.ascontiguousarray(g[start:stop].reshape(stop - start, f, o).swapaxes(0, 1))
        grads = grads.reshape(f, -1)
        accumulate = start > 0 or req == "add"

        def part(p, chunk=chunk, cols=cols, grads=grads, accumulate=accumulate):
            _im2col(np, chunk[:, p], out_sp, geo, "first", into=cols[p])
            threads.gemm_nt(grads, cols[p].reshape((p.stop - p.start) * k, -1),
                            target[:, p.start * k:p.stop * k], accumulate)
        threads.parallel_map(part, channels)


def _conv_weight_grad(xp, g, x, geo, groups):
    """The weight gradient of one range of samples as (groups, C*K/groups, F/groups)."""
    n, c = x.shape[:2]
    f = g.shape[1]
    out_sp = g.shape[2:]
    o = int(np.prod(out_sp))
    ck = c * int(np.prod(geo[0]))
    layout = _layout(xp, n, out_sp, groups)
    if layout == "sample" and f > o:
        layout = "first"  # per-sample partial sums (N, C*K, F) would outgrow the columns
    cols = _im2col(xp, x, out_sp, geo, layout)
    if layout == "sample":
        # per sample (C*K, O) @ (O, F), summed over the batch
        gs = _sample_view(g, groups, f, o).swapaxes(-1, -2)
        res = xp.matmul(_sample_view(cols, groups, ck, o), gs).sum(axis=0)
    else:
        # (C*K, M) @ (M, F): measured faster in numpy than (F, M) @ (M, C*K) as laid out
        gt = _channels_first(xp, g, groups, layout)
        res = xp.matmul(_group_view(cols, groups, ck, n * o), gt.swapaxes(-1, -2))
    return res


def _add_bias(xp, out, bias):
    out += bias.reshape((1, -1) + (1,) * (out.ndim - 2))


def _convolution_forward(xp, attrs, inputs, outputs, req):
    geo = _geo("Convolution", attrs)
    conv_forward(xp, inputs[0], inputs[1], outputs[0], req[0], geo, attrs.num_group,
                 None if attrs.no_bias else inputs[2])


def _backward_conv_data_forward(xp, attrs, inputs, outputs, req):
    g, w, _ = inputs
    conv_data_grad(xp, g, w, outputs[0], req[0], _geo("Convolution", attrs), attrs.num_group)


def _backward_conv_weight_forward(xp, attrs, inputs, outputs, req):
    g, x = inputs
    conv_weight_grad(xp, g, x, outputs[0], req[0], _geo("Convolution", attrs), attrs.num_group)


def _deconvolution_forward(xp, attrs, inputs, outputs, req):
    x, w = inputs[0], inputs[1]
    out = outputs[0]
    if req[0] == "null":
        return
    geo, _, _ = _deconv_geometry(attrs, x.shape[2:])
    conv_data_grad(xp, x, w, out, req[0], geo, attrs.num_group)
    if not attrs.no_bias:
        _add_bias(xp, out, inputs[2])


def _backward_deconv_data_forward(xp, attrs, inputs, outputs, req):
    g, w, x = inputs
    geo, _, _ = _deconv_geometry(attrs, x.shape[2:])
    conv_forward(xp, g, w, outputs[0], req[0], geo, attrs.num_group)


def _backward_deconv_weight_forward(xp, attrs, inputs, outputs, req):
    g, x = inputs
    geo, _, _ = _deconv_geometry(attrs, x.shape[2:])
    conv_weight_grad(xp, x, g, outputs[0], req[0], geo, attrs.num_group)


# -- gradients ----------------------------------------------------------------------

def _bias_grad(F, g, attrs):
    return F.sum(g, axis=(0,) + tuple(range(2, len(attrs.kernel) + 2)))


def _conv_gradient(F, node, ograds):
    x, w = node.inputs[0], node.inputs[1]
    g, a = ograds[0], dict(node.attrs)
    grads = [F._backward_Convolution_data(g, w, x, **a), F._backward_Convolution_weight(g, x, **a)]
    if not node.attrs.no_bias:
        grads.append(_bias_grad(F, g, node.attrs))
    return grads


def _backward_conv_data_gradient(F, node, ograds):
    # out = A_w^T g (linear in g and in w): d<h, out>/dg = A_w h, d/dw = weight grad(g, h).
    g, w, _ = node.inputs
    h, a = ograds[0], dict(node.attrs)
    return [F.Convolution(h, w, **dict(a, no_bias=True)),
            F._backward_Convolution_weight(g, h, **a), None]


def _backward_conv_weight_gradient(F, node, ograds):
    # out = dW(g, x) (bilinear): d<H, out>/dg = conv(x, H), d/dx = A_H^T g.
    g, x = node.inputs
    h, a = ograds[0], dict(node.attrs)
    return [F.Convolution(x, h, **dict(a, no_bias=True)),
            F._backward_Convolution_data(g, h, x, **a)]


def _deconv_gradient(F, node, ograds):
    x, w = node.inputs[0], node.inputs[1]
    g, a = ograds[0], dict(node.attrs)
    grads = [F._backward_Deconvolution_data(g, w, x, **a),
             F._backward_Deconvolution_weight(g, x, **a)]
    if not node.attrs.no_bias:
        grads.append(_bias_grad(F, g, node.attrs))
    return grads


def _backward_deconv_data_gradient(F, node, ograds):
    g, w, _ = node.inputs
    h, a = ograds[0], dict(node.attrs)
    return [F.Deconvolution(h, w, **dict(a, no_bias=True)),
            F._backward_Deconvolution_weight(g, h, **a), None]


def _backward_deconv_weight_gradient(F, node, ograds):
    g, x = node.inputs
    h, a = ograds[0], dict(node.attrs)
    return [F.Deconvolution(x, h, **dict(a, no_bias=True)),
            F._backward_Deconvolution_data(g, h, x, **a)]


# -- registration ---------------------------------------------------------------------

register(OpDef(
    "Convolution", _convolution_forward, inputs=_inputs, params=_params(False),
    infer_shape=_conv_shape, infer_type=same_dtype, partial_infer=True,
    gradient=_conv_gradient, aliases=("Convolution_v1",),
    prepare=winograd.prepare, pool_parallel=True,
    doc="1-D, 2-D or 3-D convolution (cross-correlation) over NC(D)HW data with weight "
        "(num_filter, C/num_group, *kernel) and optional bias; grouped and depthwise when "
        "num_group > 1."))

register(OpDef(
    "Deconvolution", _deconvolution_forward, inputs=_inputs, params=_params(True),
    infer_shape=_deconv_shape, infer_type=same_dtype, partial_infer=True,
    gradient=_deconv_gradient,
    prepare=winograd.prepare, pool_parallel=True,
    doc="Transposed convolution (the gradient of Convolution w.r.t. its data) with weight "
        "(C, num_filter/num_group, *kernel); output size stride*(in-1) + dilate*(kernel-1) + 1 "
        "- 2*pad + adj, or target_shape."))

register(OpDef(
    "_backward_Convolution_data", _backward_conv_data_forward,
    inputs=("ograd", "weight", "data"), params=_params(False),
    infer_shape=_backward_data_shape, infer_type=same_dtype, partial_infer=True,
    gradient=_backward_conv_data_gradient,
    prepare=winograd.prepare, pool_parallel=True,
    doc="Gradient of Convolution w.r.t. its data (col2im of weight^T @ ograd); `data` gives "
        "only the shape."))

register(OpDef(
    "_backward_Convolution_weight", _backward_conv_weight_forward,
    inputs=("ograd", "data"), params=_params(False),
    infer_shape=_backward_conv_weight_shape, infer_type=same_dtype, partial_infer=True,
    gradient=_backward_conv_weight_gradient,
    prepare=winograd.prepare, pool_parallel=True,
    doc="Gradient of Convolution w.r.t. its weight (ograd @ im2col(data)^T, summed over the "
        "batch)."))

register(OpDef(
    "_backward_Deconvolution_data", _backward_deconv_data_forward,
    inputs=("ograd", "weight", "data"), params=_params(True),
    infer_shape=_backward_deconv_data_shape, infer_type=same_dtype, partial_infer=True,
    gradient=_backward_deconv_data_gradient,
    prepare=winograd.prepare, pool_parallel=True,
    doc="Gradient of Deconvolution w.r.t. its data (a convolution of ograd); `data` gives "
        "only the shape."))

register(OpDef(
    "_backward_Deconvolution_weight", _backward_deconv_weight_forward,
    inputs=("ograd", "data"), params=_params(True),
    infer_shape=_backward_deconv_weight_shape, infer_type=same_dtype, partial_infer=True,
    gradient=_backward_deconv_weight_gradient,
    prepare=winograd.prepare, pool_parallel=True,
    doc="Gradient of Deconvolution w.r.t. its weight."))
