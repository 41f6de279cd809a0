"""Caffe's own output-shape rules, written from BVLC Caffe's layer code.

Every function here reproduces what the matching Caffe layer computes in its
``LayerSetUp``/``Reshape`` (including the ``CHECK``s that make Caffe refuse a
net), on plain Python ints, so that the converter can infer each top's shape
the way Caffe does and cross-check it against the blob shapes of the
caffemodel and against the engine's own shape inference.

A violated Caffe ``CHECK`` raises :class:`CaffeRuleError` with the rule in
words; the converter adds the layer's name and type.

Conventions: shapes are tuples of ints in Caffe's (N, C, H, W) order;
spatial geometry (kernel, stride, pad, dilation) is one tuple entry per
spatial axis.
"""
import math

__all__ = [
    "CaffeRuleError", "canonical_axis", "count", "conv_geometry", "conv_output_shape",
    "deconv_output_shape", "conv_out", "deconv_out", "pool_geometry", "pool_out",
    "pool_output_shape", "pool_has_empty_window", "inner_product_shapes", "concat_shape",
    "slice_shapes", "flatten_shape", "reshape_shape", "crop_offsets", "crop_shape",
    "argmax_shape", "reduction_shape", "tile_shape", "embed_shapes", "scale_shape",
    "eltwise_shape", "input_layer_shapes", "dummy_data_shapes",
]


class CaffeRuleError(ValueError):
    """The layer breaks a rule Caffe itself checks (Caffe would refuse the net)."""


def _check(cond, message):
    if not cond:
        raise CaffeRuleError(message)


def count(shape, start=0, end=None):
    """Caffe's ``Blob::count(start, end)``: the product of ``shape[start:end]``."""
    return int(math.prod(shape[start:end]))


def canonical_axis(axis, ndim, what="axis"):
    """Caffe's ``CanonicalAxisIndex``: a negative axis counts from the end."""
    axis = int(axis)
    _check(-ndim <= axis < ndim,
           f"{what} {axis} is out of range for a {ndim}-D blob (allowed {-ndim}..{ndim - 1})")
    return axis + ndim if axis < 0 else axis


# -- Convolution / Deconvolution ----------------------------------------------------

def _spatial_param(param, repeated, h_name, w_name, nsp, default, what):
    """One of kernel/stride/pad/dilation resolved as BaseConvolutionLayer does."""
    values = [int(v) for v in getattr(param, repeated)]
    if h_name is not None and (param.has(h_name) or param.has(w_name)):
        _check(nsp == 2, f"{h_name}/{w_name} can only be used with 2-D convolution "
                         f"(this one has {nsp} spatial axes)")
        _check(not values, f"either {repeated} or {h_name}/{w_name} should be specified; "
                           "not both")
        _check(param.has(h_name) and param.has(w_name),
               f"{h_name} and {w_name} are both required when either is given")
        return (int(getattr(param, h_name)), int(getattr(param, w_name)))
    if not values:
        _check(default is not None, f"{what} must be specified")
        return (default,) * nsp
    _check(len(values) in (1, nsp),
           f"{repeated} must be specified once, or once per spatial dimension "
           f"({repeated} specified {len(values)} times; {nsp} spatial dims)")
    return tuple(values) * nsp if len(values) == 1 else tuple(values)


def conv_geometry(param, nsp):
    """``(kernel, stride, pad, dilation)`` of a ConvolutionParameter, Caffe's rules."""
    kernel = _spatial_param(param, "kernel_size", "kernel_h", "kernel_w", nsp, None,
                            "kernel_size")
    _check(all(k > 0 for k in kernel), f"filter dimensions must be nonzero (kernel {kernel})")
    stride = _spatial_param(param, "stride", "stride_h", "stride_w", nsp, 1, "stride")
    _check(all(s > 0 for s in stride), f"stride dimensions must be nonzero (stride {stride})")
    pad = _spatial_param(param, "pad", "pad_h", "pad_w", nsp, 0, "pad")
    dilation = _spatial_param(param, "dilation", None, None, nsp, 1, "dilation")
    return kernel, stride, pad, dilation


def conv_out(n, k, s, p, d=1):
    """Convolution output size: floor((n + 2p - (d(k-1)+1)) / s) + 1."""
    extent = d * (k - 1) + 1
    return (n + 2 * p - extent) // s + 1


def deconv_out(n, k, s, p, d=1):
    """Deconvolution output size: s(n-1) + d(k-1) + 1 - 2p."""
    return s * (n - 1) + d * (k - 1) + 1 - 2 * p


def _conv_common(bottom, num_output, group, kernel, what):
    _check(len(bottom) >= 3, f"{what} needs at least one spatial axis; input has shape "
                             f"{tuple(bottom)}")
    channels = bottom[1]
    _check(num_output > 0, "num_output must be positive")
    _check(group > 0, "group must be positive")
    _check(channels % group == 0,
           f"number of input channels ({channels}) must be a multiple of group ({group})")
    _check(num_output % group == 0,
           f"number of output channels num_output ({num_output}) must be a multiple of group "
           f"({group})")
    _check(len(kernel) == len(bottom) - 2,
           f"kernel has {len(kernel)} dims but the input {tuple(bottom)} has "
           f"{len(bottom) - 2} spatial axes")


def conv_output_shape(bottom, num_output, group, kernel, stride, pad, dilation, bias_term):
    """``(top_shape, [weight_shape, bias_shape?])`` of a Convolution layer."""
    _conv_common(bottom, num_output, group, kernel, "Convolution")
    spatial = []
    for n, k, s, p, d in zip(bottom[2:], kernel, stride, pad, dilation):
        o = conv_out(n, k, s, p, d)
        _check(o > 0, f"output size {o} <= 0 on an axis of input size {n} (kernel {k}, stride "
                      f"{s}, pad {p}, dilation {d})")
        spatial.append(o)
    blobs = [(num_output, bottom[1] // group) + tuple(kernel)]
    if bias_term:
        blobs.append((num_output,))
    return (bottom[0], num_output) + tuple(spatial), blobs


def deconv_output_shape(bottom, num_output, group, kernel, stride, pad, dilation, bias_term):
    """``(top_shape, [weight_shape, bias_shape?])`` of a Deconvolution layer.

    The weight is ``(C_in, num_output / group, *kernel)``: Caffe swaps the roles
    of the channel counts (``reverse_dimensions``).
    """
    _conv_common(bottom, num_output, group, kernel, "Deconvolution")
    spatial = []
    for n, k, s, p, d in zip(bottom[2:], kernel, stride, pad, dilation):
        o = deconv_out(n, k, s, p, d)
        _check(o > 0, f"output size {o} <= 0 on an axis of input size {n} (kernel {k}, stride "
                      f"{s}, pad {p}, dilation {d})")
        spatial.append(o)
    blobs = [(bottom[1], num_output // group) + tuple(kernel)]
    if bias_term:
        blobs.append((num_output,))
    return (bottom[0], num_output) + tuple(spatial), blobs


# -- Pooling ------------------------------------------------------------------------

def pool_geometry(param, spatial):
    """``(kernel, stride, pad)`` of a PoolingParameter for a 2-D input, Caffe's rules."""
    has_k, has_kh, has_kw = param.has("kernel_size"), param.has("kernel_h"), param.has("kernel_w")
    if param.global_pooling:
        _check(not (has_k or has_kh or has_kw),
               "with global_pooling: true the filter size cannot be specified")
        kernel = tuple(spatial)
    else:
        _check(has_k != (has_kh and has_kw),
               "filter size is kernel_size OR kernel_h and kernel_w; not both")
        _check(has_k or (has_kh and has_kw),
               "for non-square filters both kernel_h and kernel_w are required")
        kernel = (int(param.kernel_size),) * 2 if has_k else (int(param.kernel_h),
                                                              int(param.kernel_w))
    _check(all(k > 0 for k in kernel), f"filter dimensions must be greater than zero "
                                       f"(kernel {kernel})")
    has_p, has_ph, has_pw = param.has("pad"), param.has("pad_h"), param.has("pad_w")
    _check((not has_p and has_ph and has_pw) or (not has_ph and not has_pw),
           "pad is pad OR pad_h and pad_w are required")
    pad = (int(param.pad),) * 2 if not has_ph else (int(param.pad_h), int(param.pad_w))
    has_s, has_sh, has_sw = param.has("stride"), param.has("stride_h"), param.has("stride_w")
    _check((not has_s and has_sh and has_sw) or (not has_sh and not has_sw),
           "stride is stride OR stride_h and stride_w are required")
    stride = (int(param.stride),) * 2 if not has_sh else (int(param.stride_h),
                                                          int(param.stride_w))
    _check(all(s > 0 for s in stride), f"stride must be positive (stride {stride})")
    if param.global_pooling:
        _check(pad == (0, 0) and stride == (1, 1),
               "with global_pooling: true only pad = 0 and stride = 1 are allowed")
    if pad != (0, 0):
        _check(all(p < k for p, k in zip(pad, kernel)),
               f"pad {pad} must be smaller than the kernel {kernel}")
    return kernel, stride, pad


def pool_out(n, k, s, p, round_mode="CEIL"):
    """Pooling output size: ceil (or floor) of (n + 2p - k)/s, plus 1, then Caffe's clip.

    The clip (only with padding): when the last window would start in the right
    padding, ``(out - 1) * s >= n + p``, it is dropped. H=3, k=2, s=2, p=1 gives 2.
    """
    num = n + 2 * p - k
    out = (-(-num // s) if round_mode == "CEIL" else num // s) + 1
    if p > 0 and (out - 1) * s >= n + p:
        out -= 1
    return out


def pool_has_empty_window(n, k, s, p, out):
    """True when the last window starts past the input (Caffe keeps it: only without pad)."""
    return (out - 1) * s >= n + p


def pool_output_shape(bottom, kernel, stride, pad, round_mode="CEIL"):
    _check(len(bottom) == 4, f"input must have 4 axes (num, channels, height, width); got "
                             f"shape {tuple(bottom)}")
    spatial = tuple(pool_out(n, k, s, p, round_mode)
                    for n, k, s, p in zip(bottom[2:], kernel, stride, pad))
    _check(all(o > 0 for o in spatial), f"pooled output size {spatial} is not positive "
                                        f"(input {tuple(bottom[2:])}, kernel {kernel}, "
                                        f"stride {stride}, pad {pad})")
    return tuple(bottom[:2]) + spatial


# -- InnerProduct -------------------------------------------------------------------

def inner_product_shapes(bottom, num_output, axis, transpose, bias_term):
    """``(top_shape, [weight_shape, bias_shape?], K)`` of InnerProduct."""
    axis = canonical_axis(axis, len(bottom))
    k = count(bottom, axis)
    weight = (k, num_output) if transpose else (num_output, k)
    blobs = [weight] + ([(num_output,)] if bias_term else [])
    return tuple(bottom[:axis]) + (num_output,), blobs, k


# -- Concat / Slice / Flatten / Reshape / Crop --------------------------------------

def concat_shape(bottoms, axis):
    ndim = len(bottoms[0])
    axis = canonical_axis(axis, ndim)
    total = 0
    for b in bottoms:
        _check(len(b) == ndim, f"all inputs must have the same number of axes; got shapes "
                               f"{[tuple(x) for x in bottoms]}")
        for i in range(ndim):
            if i != axis:
                _check(b[i] == bottoms[0][i],
                       f"all inputs must have the same shape except on the concat axis "
                       f"{axis}; got {[tuple(x) for x in bottoms]}")
        total += b[axis]
    top = list(bottoms[0])
    top[axis] = total
    return tuple(top), axis


def slice_shapes(bottom, axis, slice_points, ntops):
    """``(top_shapes, [(begin, end), ...], axis)`` of Slice."""
    axis = canonical_axis(axis, len(bottom))
    dim = bottom[axis]
    points = [int(p) for p in slice_points]
    if points:
        _check(len(points) == ntops - 1,
               f"{len(points)} slice_point(s) need {len(points) + 1} tops, got {ntops}")
        _check(ntops <= dim, f"{ntops} tops exceed the sliced axis size {dim}")
        prev = 0
        bounds = []
        for p in points:
            _check(p > prev, f"slice_point values must be increasing and positive: {points}")
            bounds.append((prev, p))
            prev = p
        _check(prev < dim, f"slice_point {prev} must be less than the axis size {dim}")
        bounds.append((prev, dim))
    else:
        _check(dim % ntops == 0, f"the axis size {dim} must be divisible by the number of "
                                 f"tops ({ntops}) when no slice_point is given")
        step = dim // ntops
        bounds = [(i * step, (i + 1) * step) for i in range(ntops)]
    shapes = []
    for b, e in bounds:
        s = list(bottom)
        s[axis] = e - b
        shapes.append(tuple(s))
    return shapes, bounds, axis


def flatten_shape(bottom, axis, end_axis):
    ndim = len(bottom)
    start = canonical_axis(axis, ndim)
    end = canonical_axis(end_axis, ndim, "end_axis")
    _check(start <= end, f"axis {start} must not come after end_axis {end}")
    return tuple(bottom[:start]) + (count(bottom, start, end + 1),) + tuple(bottom[end + 1:]), \
        start, end


def reshape_shape(bottom, dims, axis, num_axes):
    """``(top_shape, start_axis, end_axis)`` of Reshape (0 copies, one -1 inferred)."""
    ndim = len(bottom)
    start = axis if axis >= 0 else ndim + axis + 1
    _check(0 <= start <= ndim, f"axis {axis} is out of range for a {ndim}-D input")
    _check(num_axes >= -1, "num_axes must be >= 0, or -1 for all")
    end = ndim if num_axes == -1 else start + num_axes
    _check(end <= ndim, f"axis {axis} + num_axes {num_axes} exceeds the input's {ndim} axes")
    dims = [int(d) for d in dims]
    _check(sum(1 for d in dims if d == -1) <= 1, "new shape contains multiple -1 dims")
    _check(all(d >= -1 for d in dims), f"shape dims must be >= -1: {dims}")
    top = list(bottom[:start]) + list(dims) + list(bottom[end:])
    inferred = None
    for i, d in enumerate(dims):
        if d == 0:
            _check(start + i < ndim, f"copy dim 0 at position {i} has no input axis")
            top[start + i] = bottom[start + i]
        elif d == -1:
            inferred = start + i
    total = count(bottom)
    if inferred is not None:
        known = count([d for i, d in enumerate(top) if i != inferred])
        _check(known > 0 and total % known == 0,
               f"cannot infer the -1 dim: input count {total} is not divisible by {known}")
        top[inferred] = total // known
    _check(count(top) == total, f"output count {count(top)} (shape {tuple(top)}) differs from "
                                f"the input count {total} (shape {tuple(bottom)})")
    return tuple(top), start, end


def crop_offsets(bottom, reference, axis, offsets):
    """``(top_shape, offsets per axis, start_axis)`` of Crop (default offset 0)."""
    ndim = len(bottom)
    _check(len(reference) == ndim, f"the reference input has {len(reference)} axes but the "
                                   f"data has {ndim}")
    start = canonical_axis(axis, ndim)
    offsets = [int(o) for o in offsets]
    if len(offsets) > 1:
        _check(len(offsets) == ndim - start,
               f"number of offsets ({len(offsets)}) must be 1 or the number of cropped axes "
               f"({ndim - start})")
    top, offs = [], []
    for i in range(ndim):
        if i < start:
            top.append(bottom[i])
            offs.append(0)
            continue
        off = offsets[0] if len(offsets) == 1 else offsets[i - start] if offsets else 0
        _check(bottom[i] - off >= reference[i],
               f"invalid crop on axis {i}: size {bottom[i]}, offset {off}, crop size "
               f"{reference[i]}")
        top.append(reference[i])
        offs.append(off)
    return tuple(top), offs, start


def crop_shape(bottom, reference, axis, offsets):
    return crop_offsets(bottom, reference, axis, offsets)[0]


# -- ArgMax / Reduction / Tile / Embed / Scale / Eltwise --------------------------

def argmax_shape(bottom, top_k, out_max_val, axis):
    """Top shape of ArgMax; ``axis`` None means per-sample over all other axes."""
    _check(top_k >= 1, "top_k must be at least 1")
    if axis is not None:
        axis = canonical_axis(axis, len(bottom))
        _check(top_k <= bottom[axis], f"top_k {top_k} must not exceed the axis size "
                                      f"{bottom[axis]}")
        top = list(bottom)
        top[axis] = top_k
        return tuple(top), axis
    _check(top_k <= count(bottom, 1), f"top_k {top_k} must not exceed the per-sample count "
                                      f"{count(bottom, 1)}")
    top = [1] * max(len(bottom), 3)
    top[0] = bottom[0]
    top[2] = top_k
    if out_max_val:
        top[1] = 2
    return tuple(top), None


def reduction_shape(bottom, axis):
    axis = canonical_axis(axis, len(bottom))
    return tuple(bottom[:axis]), axis


def tile_shape(bottom, axis, tiles):
    axis = canonical_axis(axis, len(bottom))
    _check(tiles > 0, "number of tiles must be positive")
    top = list(bottom)
    top[axis] *= tiles
    return tuple(top), axis


def embed_shapes(bottom, num_output, input_dim, bias_term):
    _check(num_output > 0, "EmbedLayer num_output must be positive")
    _check(input_dim > 0, "EmbedLayer input_dim must be positive")
    blobs = [(input_dim, num_output)] + ([(num_output,)] if bias_term else [])
    return tuple(bottom) + (num_output,), blobs


def scale_shape(bottom, axis, num_axes, second=None):
    """``(param_shape, axis)`` of Scale/Bias: ``bottom[axis:axis+num_axes]`` or a 2nd input."""
    ndim = len(bottom)
    if second is not None:
        shape = tuple(second)
        if len(shape) == 0:
            return shape, 0
        axis = canonical_axis(axis, ndim)
    else:
        _check(num_axes >= -1, "num_axes must be non-negative, or -1 to extend to the end of "
                               "the input")
        if num_axes == 0:
            return (), 0
        axis = canonical_axis(axis, ndim)
        if num_axes >= 0:
            _check(ndim >= axis + num_axes, f"the input's {ndim} axes are fewer than axis "
                                            f"{axis} + num_axes {num_axes}")
        shape = tuple(bottom[axis:]) if num_axes == -1 else tuple(bottom[axis:axis + num_axes])
    _check(ndim >= axis + len(shape), f"the scale/bias shape {shape} does not fit the input "
                                      f"{tuple(bottom)} at axis {axis}")
    for i, d in enumerate(shape):
        _check(bottom[axis + i] == d, f"dimension mismatch between the input {tuple(bottom)} "
                                      f"and the scale/bias {shape} at axis {axis}")
    return shape, axis


def eltwise_shape(bottoms):
    first = tuple(bottoms[0])
    for b in bottoms[1:]:
        _check(tuple(b) == first, f"all inputs must have the same shape (no broadcasting); "
                                  f"got {[tuple(x) for x in bottoms]}")
    return first


# -- Inputs -------------------------------------------------------------------------

def input_layer_shapes(shapes, ntops):
    """Input layer: one shape for all tops, or one per top."""
    shapes = [tuple(int(d) for d in s) for s in shapes]
    _check(len(shapes) in (1, ntops), f"input_param must give 1 shape for all {ntops} tops "
                                      f"or one per top; it gives {len(shapes)}")
    if len(shapes) == 1:
        shapes = shapes * ntops
    return shapes


def dummy_data_shapes(param, ntops):
    """DummyData: ``shape`` (repeated) or the legacy num/channels/height/width lists."""
    if param.shape:
        shapes = [tuple(int(d) for d in s.dim) for s in param.shape]
        _check(len(shapes) in (1, ntops), f"DummyData must give 1 shape or one per top "
                                          f"({ntops}); it gives {len(shapes)}")
        return shapes * ntops if len(shapes) == 1 else shapes
    lists = [list(param.num), list(param.channels), list(param.height), list(param.width)]
    for lst in lists:
        _check(len(lst) in (1, ntops), "DummyData num/channels/height/width must each be "
                                       "given once or once per top")
    return [tuple(int(lst[0] if len(lst) == 1 else lst[i]) for lst in lists)
            for i in range(ntops)]
