"""Pooling and UpSampling (MXNet 1.x semantics, Caffe's rounding rules).

``Pooling`` takes NCW, NCHW or NCDHW data and reduces each window with max,
avg, sum or Lp. ``pooling_convention='full'`` is Caffe's ceil mode including
Caffe's rule that drops a last window starting past the input, and
``count_include_pad=True`` divides averages exactly as Caffe does (the window
clipped to the padded border), so Caffe models convert without surprises.

``UpSampling`` is MXNet's: 'nearest' repeats pixels (one or several inputs,
concatenated or summed); 'bilinear' is a depthwise transposed convolution with
a ``weight`` input of shape ``(C, 1, 2s - s % 2, 2s - s % 2)``, stride ``s`` and
pad ``ceil((s - 1) / 2)``, as MXNet builds it.

Kernels loop over *kernel offsets*, never over pixels: for each offset one
vectorized op combines a strided slice of the input with the matching slice
of the output. Offsets whose window part lies in the padding get clipped
slices, so no padded copy of the data is ever made. On numpy, large arrays are
processed in blocks of planes that stay in cache, run in parallel on the
kernel pool (``deepkit_engine.threads``). (A single reduction over
``as_strided`` window views was measured 10-40x slower in numpy: reductions over
tiny inner axes are slow, while elementwise ops on strided slices are fast.)
"""
import functools
import itertools

import numpy as np

from .. import threads
from ..base import DeepkitError, DTypeError, ParamError, ShapeError
from .registry import OpDef, Param, Shape, register, same_dtype

_POOL_TYPES = ("max", "avg", "sum", "lp")
_LAYOUTS = {3: "NCW", 4: "NCHW", 5: "NCDHW"}


# -- geometry -------------------------------------------------------------------

def _pool_geometry(attrs, dshape):
    """``(kernel, stride, pad, out_spatial)`` for data of shape ``dshape``.

    Raises:
        ShapeError: Wrong rank, a kernel/stride/pad of the wrong length, or a
            kernel larger than the padded input.
        ParamError: No kernel and no global_pool.
    """
    dshape = tuple(dshape)
    if len(dshape) not in _LAYOUTS:
        raise ShapeError(f"input 'data' has shape {dshape}; Pooling needs 3-D (NCW), 4-D (NCHW) "
                         "or 5-D (NCDHW) data", argument="data", actual=dshape)
    nsp = len(dshape) - 2
    spatial = dshape[2:]
    if attrs.layout is not None and attrs.layout != _LAYOUTS[len(dshape)]:
        raise ShapeError(f"param layout={attrs.layout!r} does not fit {len(dshape)}-D data "
                         f"{dshape} (expected {_LAYOUTS[len(dshape)]!r})", argument="layout",
                         expected=_LAYOUTS[len(dshape)], actual=attrs.layout)
    if any(n <= 0 for n in spatial):
        raise ShapeError(f"input 'data' has shape {dshape}; its spatial dimensions must be "
                         "positive", argument="data", actual=dshape)
    if attrs.global_pool:
        return spatial, (1,) * nsp, (0,) * nsp, (1,) * nsp
    kernel = attrs.kernel
    if not kernel:
        raise ParamError("param kernel is required unless global_pool=True", param="kernel",
                         value=kernel)
    stride = attrs.stride or (1,) * nsp
    pad = attrs.pad or (0,) * nsp
    for pname, value in (("kernel", kernel), ("stride", stride), ("pad", pad)):
        if len(value) != nsp:
            raise ShapeError(f"param {pname}={value} has {len(value)} entries but data {dshape} "
                             f"has {nsp} spatial dimension(s)", argument=pname,
                             expected=nsp, actual=len(value))
    padded = tuple(n + 2 * p for n, p in zip(spatial, pad))
    if any(k > n for k, n in zip(kernel, padded)):
        raise ShapeError(f"param kernel={kernel} is larger than the padded input {padded} "
                         f"(data spatial dims {spatial} plus 2 * pad {pad})", argument="kernel",
                         expected=padded, actual=kernel)
    out = tuple(_out_size(n, k, s, p, attrs.pooling_convention)
                for n, k, s, p in zip(spatial, kernel, stride, pad))
    return kernel, stride, pad, out


def _out_size(n, k, s, p, convention):
    if convention == "valid":
        return (n + 2 * p - k) // s + 1
    if convention == "same":
        return -(-n // s)  # ceil(n / s): windows at the end overhang the input
    out = -(-(n + 2 * p - k) // s) + 1  # ceil
    if (out - 1) * s >= n + p:  # Caffe: the last window must start inside the input
        out -= 1
    return out


@functools.lru_cache(maxsize=512)
def _offsets(dense, strided, kernel, stride, pad):
    """Slices pairing a "strided" grid with a "dense" one, per kernel offset.

    Strided position ``o`` and kernel offset ``j`` meet dense position
    ``o * s + j - p`` (pooling: output ``o`` reads input ``o*s + j - p``;
    transposed convolution: input ``o`` writes output ``o*s + j - p``).

    Returns:
        A tuple of ``(offset, strided_index, dense_index, full)`` for every
        kernel offset with a non-empty overlap: ``offset`` the kernel position,
        the two indices as tuples of slices over all axes (batch and channel
        included), and ``full`` whether the strided slice covers the whole
        strided grid.
    """
    per_axis = []
    for n_dense, n_str, k, s, p in zip(dense, strided, kernel, stride, pad):
        entries = []
        for j in range(k):
            lo = max(0, -((j - p) // s))
            hi = min(n_str, (n_dense - 1 - j + p) // s + 1)
            if hi <= lo:
                continue
            start = lo * s + j - p
            entries.append((j, slice(lo, hi), slice(start, start + (hi - lo - 1) * s + 1, s),
                            lo == 0 and hi == n_str))
        per_axis.append(entries)
    head = (slice(None), slice(None))
    result = []
    for combo in itertools.product(*per_axis):
        result.append((tuple(c[0] for c in combo), head + tuple(c[1] for c in combo),
                       head + tuple(c[2] for c in combo), all(c[3] for c in combo)))
    return tuple(result)


@functools.lru_cache(maxsize=512)
def _inverse_divisor(spatial, kernel, stride, pad, out, include_pad):
    """Per-output ``1 / pool_size`` for avg pooling, or a float when uniform.

    With ``include_pad`` the window end is first clipped to ``n + p`` (Caffe's
    and MXNet's rule: symmetric padding counts, a ceil-mode overhang does not);
    otherwise only the elements inside the input count. A window with nothing
    to count gives 0 (its sum is 0 too).
    """
    counts = np.ones((), np.float64)
    for n, k, s, p, m in zip(spatial, kernel, stride, pad, out):
        start = np.arange(m) * s - p
        end = np.minimum(start + k, n + p)
        if not include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, n)
        counts = np.multiply.outer(counts, np.maximum(end - start, 0))
    inv = np.divide(1.0, counts, out=np.zeros(counts.shape), where=counts > 0)
    if inv.size and np.all(inv == inv.flat[0]):
        return float(inv.flat[0])
    return inv


def _lowest(dtype):
    return np.finfo(dtype).min


def _p_value(attrs):
    return 2 if attrs.p_value is None else attrs.p_value


# -- blocking ---------------------------------------------------------------------

#: Kernels run over blocks of (sample, channel) planes of about this many bytes, so
#: that the kernel-offset loop re-reads data from cache instead of memory (about
#: 3x faster on large feature maps; numpy only: on a GPU one launch per offset is best).
_BLOCK_BYTES = 1 << 20
#: Smaller arrays are not split between the kernel pool's threads (a hand-off costs more).
_PARALLEL_MIN_BYTES = 256 << 10


def _blocks(xp, arrays):
    """Yield lists of matching views of ``arrays`` (all (N, C, ...)), block by block.

    Each array is seen as (N*C, 1, ...) and cut along its first axis; arrays
    that are not C-contiguous (where that view would be a copy) are processed
    whole.
    """
    n = arrays[0].shape[0] * arrays[0].shape[1]
    plane = max(a.size // n * a.itemsize for a in arrays) if n else 0
    workers = threads.pool_size() if n * plane >= _PARALLEL_MIN_BYTES else 1
    if xp is not np or (n * plane <= 2 * _BLOCK_BYTES and workers < 2) or n < 2 or \
            not all(a.flags.c_contiguous for a in arrays):
        yield arrays
        return
    flat = [a.reshape((n, 1) + a.shape[2:]) for a in arrays]
    step = max(1, _BLOCK_BYTES // plane)
    if workers > 1:
        step = min(step, -(-n // workers))
    for k in range(0, n, step):
        yield [f[k:k + step] for f in flat]


def _tiled(spatial, kernel, stride, pad, out):
    """Windows neither overlap nor leave gaps: every input cell is in one window."""
    return all(s == k and p == 0 and m * k == n
               for n, k, s, p, m in zip(spatial, kernel, stride, pad, out))


# -- Pooling forward --------------------------------------------------------------

def _pool_forward(xp, attrs, inputs, outputs, req):
    if req[0] == "null":
        return
    x, out = inputs[0], outputs[0]
    target = out if req[0] != "add" else xp.empty_like(out)
    kernel, stride, pad, oshape = _pool_geometry(attrs, x.shape)
    if out.size:
        kind, p = attrs.pool_type, _p_value(attrs)
        single = all(m == 1 for m in oshape)
        pairs = None if single else _offsets(x.shape[2:], oshape, kernel, stride, pad)
        inv = None
        if kind == "avg":
            inv = _inverse_divisor(x.shape[2:], kernel, stride, pad, oshape,
                                   attrs.count_include_pad)
            if not isinstance(inv, float):
                inv = xp.asarray(inv, dtype=x.dtype)
        def block(views):
            xb, tb = views
            src = _abs_pow(xp, xb, p) if kind == "lp" else xb
            if single:
                _single_window_forward(xp, kind, src, tb, x.shape[2:], kernel, pad)
            else:
                _window_forward(xp, kind, src, tb, pairs)
            if kind == "avg":
                tb *= inv
            elif kind == "lp" and p == 2:
                xp.sqrt(tb, out=tb)
            elif kind == "lp" and p != 1:
                xp.power(tb, 1.0 / p, out=tb)
        threads.parallel_map(block, _blocks(xp, [x, target]))
    if req[0] == "add":
        out += target


def _abs_pow(xp, x, p):
    if p == 1:
        return xp.abs(x)
    if p == 2:
        return xp.square(x)
    return xp.abs(x) ** p


def _window_forward(xp, kind, src, target, pairs):
    """Max or sum over windows: one vectorized op per kernel offset."""
    combine = xp.maximum if kind == "max" else xp.add
    first = next((i for i, pr in enumerate(pairs) if pr[3]), None)
    if first is None:  # every offset misses some window (padding): start from the identity
        target.fill(_lowest(src.dtype) if kind == "max" else 0)
    else:
        xp.copyto(target, src[pairs[first][2]])
    for i, (_, s_idx, d_idx, _) in enumerate(pairs):
        if i != first:
            view = target[s_idx]
            combine(view, src[d_idx], out=view)


def _single_window(spatial, kernel, pad):
    """The input region of the only window, or None when it lies in the padding."""
    region = []
    for n, k, p in zip(spatial, kernel, pad):
        lo, hi = max(0, -p), min(n, k - p)
        if hi <= lo:
            return None
        region.append(slice(lo, hi))
    return (slice(None), slice(None)) + tuple(region)


def _single_window_forward(xp, kind, src, target, spatial, kernel, pad):
    """Pooling whose output is 1 per spatial axis (global pooling): one reduction."""
    region = _single_window(spatial, kernel, pad)
    if region is None:
        target.fill(_lowest(src.dtype) if kind == "max" else 0)
        return
    axes = tuple(range(2, src.ndim))
    block = src[region]
    if kind == "max":
        xp.amax(block, axis=axes, keepdims=True, out=target)
    else:
        xp.sum(block, axis=axes, keepdims=True, out=target)


# -- Pooling backward -------------------------------------------------------------

def _pool_backward(xp, attrs, inputs, outputs, req):
    """Input gradient of Pooling; max routes each gradient to the first maximum."""
    if req[0] == "null":
        return
    og, x = inputs[0], inputs[1]
    y = inputs[2] if len(inputs) > 2 else None
    grad = outputs[0]
    add = req[0] == "add"
    if og.size == 0 or grad.size == 0:
        if not add:
            grad.fill(0)
        return
    kernel, stride, pad, oshape = _pool_geometry(attrs, x.shape)
    kind, p = attrs.pool_type, _p_value(attrs)
    single = all(m == 1 for m in oshape)
    pairs = None if single else _offsets(x.shape[2:], oshape, kernel, stride, pad)
    # With tiled windows each input cell gets exactly one value: write, don't add.
    tiled = not add and not single and _tiled(x.shape[2:], kernel, stride, pad, oshape)
    inv = None
    if kind == "avg":
        inv = _inverse_divisor(x.shape[2:], kernel, stride, pad, oshape,
                               attrs.count_include_pad)
        if not isinstance(inv, float):
            inv = xp.asarray(inv, dtype=og.dtype)
    arrays = [og, x, grad] if y is None else [og, x, grad, y]
    def block(blocks):
        ogb, xb, gb = blocks[:3]
        yb = blocks[3] if y is not None else None
        if not add and not tiled:
            gb.fill(0)
        # avg and lp in the "sum" form: grad[cell] += G[window] * H[cell]
        scale = None
        if kind == "avg":
            ogb = ogb * inv
        elif kind == "lp":
            ogb, scale = _lp_factors(xp, ogb, xb, yb, p)
        if single:
            _single_window_backward(xp, kind, ogb, xb, scale, gb, kernel, pad)
        elif kind == "max":
            _max_backward(xp, ogb, xb, yb, gb, pairs, tiled)
        else:
            _sum_backward(xp, ogb, scale, gb, pairs, tiled)
    threads.parallel_map(block, _blocks(xp, arrays))


def _lp_factors(xp, og, x, y, p):
    """d/dx (sum |x|^p)^(1/p) = sign(x) |x|^(p-1) * y^(1-p): (og * y^(1-p), sign(x)|x|^(p-1))."""
    if p == 1:
        return og * (y != 0), xp.sign(x)
    safe = xp.where(y == 0, 1, y)
    g = xp.where(y == 0, 0, og / (safe if p == 2 else safe ** (p - 1)))
    return g, (x if p == 2 else xp.sign(x) * xp.abs(x) ** (p - 1))


def _max_backward(xp, og, x, y, grad, pairs, tiled):
    """Route each window's gradient to its first maximum (in row-major window order)."""
    taken = xp.zeros(og.shape, dtype=bool)
    last = len(pairs) - 1
    for i, (_, s_idx, d_idx, _) in enumerate(pairs):
        hit = xp.equal(x[d_idx], y[s_idx])
        seen = taken[s_idx]
        xp.greater(hit, seen, out=hit)  # the first maximum only (MXNet, Caffe)
        if i != last:
            xp.logical_or(seen, hit, out=seen)
        view = grad[d_idx]
        if tiled:
            xp.multiply(og[s_idx], hit, out=view)
        else:
            view += og[s_idx] * hit


def _sum_backward(xp, og, scale, grad, pairs, tiled):
    """Spread each window's gradient over its cells (times ``scale`` per cell, if given)."""
    for _, s_idx, d_idx, _ in pairs:
        view = grad[d_idx]
        if scale is not None:
            if tiled:
                xp.multiply(og[s_idx], scale[d_idx], out=view)
            else:
                view += og[s_idx] * scale[d_idx]
        elif tiled:
            xp.copyto(view, og[s_idx])
        else:
            view += og[s_idx]


def _single_window_backward(xp, kind, og, x, scale, grad, kernel, pad):
    region = _single_window(x.shape[2:], kernel, pad)
    if region is None:
        return
    view = grad[region]
    if kind == "max":
        block = x[region]
        n, c = block.shape[:2]
        flat = block.reshape(n, c, -1)
        first = xp.argmax(flat, axis=2)  # the first maximum, as MXNet and Caffe
        hit = xp.arange(flat.shape[2]) == first[..., None]
        view += (og.reshape(n, c, 1) * hit).reshape(block.shape)
    elif scale is None:
        view += og
    else:
        view += og * scale[region]


# -- shape / type inference -------------------------------------------------------

def _pool_shape(attrs, in_shapes):
    data = in_shapes[0]
    if data is None:
        return in_shapes, [None]
    data = tuple(data)
    _, _, _, out = _pool_geometry(attrs, data)
    return [data], [data[:2] + out]


def _float_only(what, dtype):
    if dtype is not None and np.dtype(dtype).kind != "f":
        raise DTypeError(f"input '{what}' has dtype {np.dtype(dtype).name}; this op needs a "
                         "float dtype (cast with astype('float32'))", argument=what,
                         expected="float", actual=dtype)


def _pool_type(attrs, in_dtypes):
    _float_only("data", in_dtypes[0])
    return same_dtype(attrs, in_dtypes)


def _backward_pool_inputs(attrs):
    if attrs.pool_type in ("max", "lp"):
        return ("ograd", "data", "output")
    return ("ograd", "data")  # data only for its shape


def _backward_pool_shape(attrs, in_shapes):
    ograd, data = in_shapes[0], in_shapes[1]
    if data is None:
        return in_shapes, [None]
    data = tuple(data)
    _, _, _, out = _pool_geometry(attrs, data)
    want = data[:2] + out
    ins = [want, data] + ([want] if len(in_shapes) > 2 else [])
    for name, given, expect in zip(("ograd", "data", "output"), in_shapes, ins):
        if given is not None and tuple(given) != expect:
            raise ShapeError(f"input '{name}' has shape {tuple(given)} but {expect} was "
                             f"expected for data {data}", argument=name, expected=expect,
                             actual=tuple(given))
    return ins, [data]


_backward_pool_shape.partial = True


def _pool_gradient(F, node, ograds):
    attrs = dict(node.attrs)
    if node.attrs.pool_type in ("max", "lp"):
        return [F._backward_Pooling(ograds[0], node.inputs[0], node.outputs[0], **attrs)]
    return [F._backward_Pooling(ograds[0], node.inputs[0], **attrs)]


def _backward_pool_gradient(F, node, ograds):
    """avg/sum pooling's backward is linear in ograd: its adjoint is the forward op."""
    if node.attrs.pool_type in ("max", "lp"):
        raise DeepkitError(f"_backward_Pooling '{node.name}': second-order gradients of "
                           f"pool_type='{node.attrs.pool_type}' pooling are not implemented "
                           "(avg and sum pooling support them)")
    return [F.Pooling(ograds[0], **dict(node.attrs)), None]


_POOL_PARAMS = {
    "kernel": Param(Shape, (), "Window size: (w,), (h, w) or (d, h, w). Required unless "
                               "global_pool.", min=1),
    "pool_type": Param(str, "max", "Reduction over each window. 'lp' is (sum |x|^p)^(1/p).",
                       choices=_POOL_TYPES),
    "global_pool": Param(bool, False, "Pool over all spatial dims (kernel, stride and pad are "
                                      "ignored); the output is 1 per spatial dim."),
    "cudnn_off": Param(bool, False, "Accepted for MXNet compatibility; has no effect."),
    "pooling_convention": Param(str, "valid", "Output size: 'valid' rounds down; 'full' rounds "
                                              "up as Caffe does, dropping a last window that "
                                              "would start past the input; 'same' gives "
                                              "ceil(size / stride), the last windows clipped "
                                              "to the input (MXNet).",
                                choices=("valid", "full", "same")),
    "stride": Param(Shape, (), "Window stride per spatial dim (default 1s).", min=1),
    "pad": Param(Shape, (), "Implicit padding on both sides per spatial dim (default 0s); max "
                            "ignores padded cells, avg/sum/lp count them as zeros.", min=0),
    "p_value": Param(int, None, "p of 'lp' pooling (None means 2).", min=1),
    "count_include_pad": Param(bool, True, "avg only: divide by the window size clipped to the "
                                           "padded border (Caffe) rather than by the number "
                                           "of input elements in the window."),
    "layout": Param(str, None, "Accepted for MXNet compatibility: only the channel-first "
                               "layout that matches the data rank is supported.",
                    choices=("NCW", "NCHW", "NCDHW")),
}

register(OpDef(
    "_backward_Pooling", _pool_backward, inputs=_backward_pool_inputs, pool_parallel=True,
    params=dict(_POOL_PARAMS), infer_shape=_backward_pool_shape, infer_type=_pool_type,
    partial_infer=True, gradient=_backward_pool_gradient,
    doc="Gradient of Pooling with respect to its data: max routes each output gradient to the "
        "first maximum of its window, avg/sum/lp spread it over the window."))

register(OpDef(
    "Pooling", _pool_forward, params=dict(_POOL_PARAMS), infer_shape=_pool_shape,
    pool_parallel=True,
    infer_type=_pool_type, partial_infer=True, gradient=_pool_gradient,
    aliases=("Pooling_v1", "_npx_pooling"),
    doc="Max, average, sum or Lp pooling over 1-D, 2-D or 3-D windows of channel-first data, "
        "with MXNet's 'valid' and Caffe's 'full' (ceil) output sizes."))


# -- UpSampling -------------------------------------------------------------------

def _bilinear_geometry(scale):
    """MXNet's deconvolution for bilinear upsampling: (kernel, stride, pad)."""
    return 2 * scale - scale % 2, scale, -(-(scale - 1) // 2)


def _up_inputs(attrs):
    if attrs.sample_type == "bilinear":
        return ("data", "weight")
    return tuple(f"arg{i}" for i in range(attrs.num_args))


def _check_4d(name, shape):
    if len(shape) != 4:
        raise ShapeError(f"input '{name}' has shape {tuple(shape)}; UpSampling needs 4-D "
                         "(batch, channel, height, width) data", argument=name,
                         actual=tuple(shape))


def _nearest_scales(attrs, shapes):
    """Per-input integer scale and the output shape; checks every input."""
    first = tuple(shapes[0])
    _check_4d("arg0", first)
    oh, ow = first[2] * attrs.scale, first[3] * attrs.scale
    channels = 0
    scales = []
    for i, shape in enumerate(shapes):
        name = f"arg{i}"
        shape = tuple(shape)
        _check_4d(name, shape)
        if shape[0] != first[0]:
            raise ShapeError(f"input '{name}' has batch size {shape[0]} but arg0 has {first[0]}",
                             argument=name, expected=first[0], actual=shape[0])
        if shape[2] <= 0 or shape[3] <= 0 or oh % shape[2] or ow % shape[3] \
                or oh // shape[2] != ow // shape[3]:
            raise ShapeError(f"input '{name}' has spatial size {shape[2:]}, which does not "
                             f"divide the output size {(oh, ow)} (arg0 {first[2:]} times "
                             f"scale={attrs.scale}) by one integer factor", argument=name,
                             expected=(oh, ow), actual=shape[2:])
        scales.append(oh // shape[2])
        if attrs.multi_input_mode == "sum":
            if i and shape[1] != first[1]:
                raise ShapeError(f"input '{name}' has {shape[1]} channels but arg0 has "
                                 f"{first[1]}; multi_input_mode='sum' needs equal channels",
                                 argument=name, expected=first[1], actual=shape[1])
            channels = shape[1]
        else:
            channels += shape[1]
    return scales, (first[0], channels, oh, ow)


def _bilinear_shapes(attrs, data, weight):
    """Complete (data, weight) shapes and the output shape for 'bilinear'."""
    data = tuple(data)
    _check_4d("data", data)
    c = data[1]
    if attrs.num_filter not in (0, c):
        raise ShapeError(f"param num_filter={attrs.num_filter} must equal the number of "
                         f"channels of data {data} (bilinear upsampling is depthwise)",
                         argument="num_filter", expected=c, actual=attrs.num_filter)
    k, _, _ = _bilinear_geometry(attrs.scale)
    want = (c, 1, k, k)
    if weight is not None and tuple(weight) != want:
        raise ShapeError(f"input 'weight' has shape {tuple(weight)} but {want} was expected for "
                         f"data {data} and scale={attrs.scale} (C, 1, 2*scale - scale % 2, ...)",
                         argument="weight", expected=want, actual=tuple(weight))
    return [data, want], data[:2] + (data[2] * attrs.scale, data[3] * attrs.scale)


def _up_shape(attrs, in_shapes):
    if attrs.sample_type == "bilinear":
        if in_shapes[0] is None:
            return in_shapes, [None]
        ins, out = _bilinear_shapes(attrs, in_shapes[0], in_shapes[1])
        return ins, [out]
    if any(s is None for s in in_shapes):
        return in_shapes, [None]
    _, out = _nearest_scales(attrs, in_shapes)
    return [tuple(s) for s in in_shapes], [out]


_up_shape.partial = True


def _up_type(attrs, in_dtypes):
    for name, d in zip(_up_inputs(attrs), in_dtypes):
        _float_only(name, d)
    return same_dtype(attrs, in_dtypes)


def _nearest_forward(xp, attrs, inputs, target):
    scales, _ = _nearest_scales(attrs, [x.shape for x in inputs])
    c0 = 0
    for i, (x, s) in enumerate(zip(inputs, scales)):
        if attrs.multi_input_mode == "sum":
            dst = target
        else:
            dst = target[:, c0:c0 + x.shape[1]]
            c0 += x.shape[1]
        for a in range(s):
            for b in range(s):
                view = dst[:, :, a::s, b::s]
                if attrs.multi_input_mode == "sum" and i:
                    view += x
                else:
                    view[...] = x


def _bilinear_pairs(attrs, data_shape):
    k, s, p = _bilinear_geometry(attrs.scale)
    oh, ow = data_shape[2] * attrs.scale, data_shape[3] * attrs.scale
    return _offsets((oh, ow), tuple(data_shape[2:]), (k, k), (s, s), (p, p))


def _bilinear_forward(xp, attrs, x, w, target):
    """Depthwise transposed convolution: each input pixel adds w-weighted to a patch."""
    target.fill(0)
    if x.size == 0:
        return
    c = x.shape[1]
    for (ki, kj), s_idx, d_idx, _ in _bilinear_pairs(attrs, x.shape):
        target[d_idx] += x[s_idx] * w[:, 0, ki, kj].reshape(1, c, 1, 1)


def _up_forward(xp, attrs, inputs, outputs, req):
    if req[0] == "null":
        return
    out = outputs[0]
    target = out if req[0] != "add" else xp.empty_like(out)
    if attrs.sample_type == "bilinear":
        _bilinear_forward(xp, attrs, inputs[0], inputs[1], target)
    else:
        _nearest_forward(xp, attrs, inputs, target)
    if req[0] == "add":
        out += target


def _up_gradient(F, node, ograds):
    attrs = dict(node.attrs)
    g = ograds[0]
    if node.attrs.sample_type == "nearest" and node.attrs.num_args == 1:
        s = node.attrs.scale
        return [F.Pooling(g, kernel=(s, s), stride=(s, s), pool_type="sum")]
    back = F._backward_UpSampling(g, *node.inputs, **attrs)
    return [back[i] for i in range(len(node.inputs))]


# -- UpSampling backward ----------------------------------------------------------

def _backward_up_inputs(attrs):
    return ("ograd",) + _up_inputs(attrs)


def _backward_up_outputs(attrs):
    return tuple(f"{n}_grad" for n in _up_inputs(attrs))


def _backward_up_shape(attrs, in_shapes):
    ograd, rest = in_shapes[0], list(in_shapes[1:])
    if attrs.sample_type == "bilinear":
        if rest[0] is None:
            return in_shapes, [None, rest[1]]
        ins, out = _bilinear_shapes(attrs, rest[0], rest[1])
    else:
        if any(s is None for s in rest):
            return in_shapes, [None if s is None else tuple(s) for s in rest]
        _, out = _nearest_scales(attrs, rest)
        ins = [tuple(s) for s in rest]
    if ograd is not None and tuple(ograd) != out:
        raise ShapeError(f"input 'ograd' has shape {tuple(ograd)} but {out} was expected",
                         argument="ograd", expected=out, actual=tuple(ograd))
    return [out] + ins, list(ins)


_backward_up_shape.partial = True


def _backward_up_type(attrs, in_dtypes):
    ins, _ = same_dtype(attrs, in_dtypes)
    return ins, list(ins[1:])


def _backward_up_forward(xp, attrs, inputs, outputs, req):
    g = inputs[0]
    if attrs.sample_type == "bilinear":
        x, w = inputs[1], inputs[2]
        gx, gw = outputs
        c = x.shape[1]
        pairs = _bilinear_pairs(attrs, x.shape) if x.size else ()
        if req[0] != "null":
            if req[0] != "add":
                gx.fill(0)
            for (ki, kj), s_idx, d_idx, _ in pairs:
                gx[s_idx] += g[d_idx] * w[:, 0, ki, kj].reshape(1, c, 1, 1)
        if req[1] != "null":
            if req[1] != "add":
                gw.fill(0)
            for (ki, kj), s_idx, d_idx, _ in pairs:
                gw[:, 0, ki, kj] += xp.einsum("nchw,nchw->c", g[d_idx], x[s_idx])
        return
    scales, _ = _nearest_scales(attrs, [x.shape for x in inputs[1:]])
    c0 = 0
    for x, s, gx, r in zip(inputs[1:], scales, outputs, req):
        if attrs.multi_input_mode == "sum":
            src = g
        else:
            src = g[:, c0:c0 + x.shape[1]]
            c0 += x.shape[1]
        if r == "null":
            continue
        if r != "add":
            gx.fill(0)
        for a in range(s):
            for b in range(s):
                gx += src[:, :, a::s, b::s]


def _backward_up_gradient(F, node, ograds):
    """The backward op is linear in ograd; its gradients are forward UpSamplings."""
    attrs = dict(node.attrs)
    if node.attrs.sample_type == "nearest":
        return [F.UpSampling(*ograds, **attrs)] + [None] * (len(node.inputs) - 1)
    g, x, w = node.inputs
    u, v = ograds
    d_g = F.UpSampling(u, w, **attrs) + F.UpSampling(x, v, **attrs)
    d_x = F._backward_UpSampling(g, x, v, **attrs)[0]
    d_w = F._backward_UpSampling(g, u, w, **attrs)[1]
    return [d_g, d_x, d_w]


_UP_PARAMS = {
    "scale": Param(int, doc="Upsampling factor (integer).", min=1),
    "num_filter": Param(int, 0, "bilinear only: the number of channels (0 takes it from data).",
                        min=0),
    "sample_type": Param(str, doc="'nearest' repeats pixels; 'bilinear' is a depthwise "
                                  "transposed convolution with the weight input.",
                         choices=("nearest", "bilinear")),
    "multi_input_mode": Param(str, "concat", "nearest with several inputs: concatenate the "
                                             "upsampled inputs on the channel axis, or sum them.",
                              choices=("concat", "sum")),
    "num_args": Param(int, 1, "nearest: the number of inputs (arg0, arg1, ...), each upsampled "
                              "to arg0's size times scale; bilinear: ignored (data, weight).",
                      min=1),
    "workspace": Param(int, 512, "Accepted for MXNet compatibility; has no effect.", min=0),
}

register(OpDef(
    "_backward_UpSampling", _backward_up_forward, inputs=_backward_up_inputs,
    outputs=_backward_up_outputs, params=dict(_UP_PARAMS), infer_shape=_backward_up_shape,
    infer_type=_backward_up_type, partial_infer=True, gradient=_backward_up_gradient,
    doc="Gradients of UpSampling: for nearest, block sums of ograd per input; for bilinear, "
        "the data gradient (a depthwise correlation with weight) and the weight gradient."))

register(OpDef(
    "UpSampling", _up_forward, inputs=_up_inputs, params=dict(_UP_PARAMS),
    infer_shape=_up_shape, infer_type=_up_type, partial_infer=True, gradient=_up_gradient,
    doc="Upsample NCHW data by an integer scale: nearest-neighbour repetition (several inputs "
        "concatenated or summed) or bilinear, a depthwise transposed convolution with a "
        "(C, 1, 2s - s%2, 2s - s%2) weight as in MXNet."))
