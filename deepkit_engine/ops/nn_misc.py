"""Layer ops: Dropout, Embedding, Pad, Crop and the Sequence* ops (MXNet 1.x).

``Dropout`` has a second, hidden output: the mask it applied (already scaled by
``1/(1-p)``, with size-1 axes where ``axes`` shares it), which its gradient
multiplies the incoming gradient by, as in MXNet. ``Embedding``'s weight
gradient sums the rows of the incoming gradient per index
(``_backward_Embedding``). ``Pad``, ``Crop`` and ``SequenceLast`` send the
gradient back to the positions they read (``_backward_Pad``, ``_backward_Crop``,
``_backward_SequenceLast``); ``SequenceMask`` and ``SequenceReverse`` are their
own gradients. Every backward op is linear in the incoming gradient and has a
gradient itself, so higher orders work. Index-like inputs (Embedding's data,
``sequence_length``, Crop's ``crop_like``) get no gradient.

Sequence lengths are data: out-of-range values are clipped into ``[0, T]``
(``[1, T]`` for SequenceLast) rather than checked, and float lengths are
truncated, as MXNet's ``static_cast`` does.
"""
import numpy as np

from ..base import ShapeError
from .activation import _uniform_into
from .indexing import check_index_dtype, normalize_axis
from .registry import DType, OpDef, Param, REQUIRED, Shape, register, same_dtype, write_result


def _slab(ndim, axis, piece):
    """An index selecting ``piece`` (a slice) along ``axis`` and everything elsewhere."""
    index = [slice(None)] * ndim
    index[axis] = piece
    return tuple(index)


def _copy_into(xp, out, value, req):
    if req != "inplace":
        write_result(xp, out, value, req)


# -- Dropout -------------------------------------------------------------------------------

def _dropout_shape(attrs, in_shapes):
    (data,) = in_shapes
    if data is None:
        return in_shapes, [None, None]
    data = tuple(data)
    mask = list(data)
    for axis in attrs.axes:
        mask[normalize_axis(axis, len(data), "axes")] = 1
    return [data], [data, tuple(mask)]


_dropout_shape.partial = True


def _dropout_type(attrs, in_dtypes):
    ins, outs = same_dtype(attrs, in_dtypes)
    return ins, outs * 2


def _dropout_forward(xp, attrs, inputs, outputs, req, rng=None, is_train=False):
    x = inputs[0]
    out, mask = outputs
    p = attrs.p
    if not (is_train or attrs.mode == "always") or p == 0.0:
        if req[1] == "add":
            mask += 1
        elif req[1] != "null":
            mask.fill(1)
        _copy_into(xp, out, x, req[0])
        return
    m = mask if req[1] != "add" else xp.empty_like(mask)
    if p >= 1.0:
        m.fill(0)
    elif m.size:
        _uniform_into(xp, rng, m, 0.0, 1.0)
        xp.greater_equal(m, p, out=m)  # 1.0 where kept: with probability 1 - p
        m *= 1.0 / (1.0 - p)
    if req[1] == "add":
        mask += m
    if req[0] == "add":
        out += x * m
    elif req[0] != "null":
        xp.multiply(x, m, out=out)


register(OpDef(
    "Dropout", _dropout_forward, outputs=("output", "mask"), visible_outputs=1,
    resources=("rng", "is_train"), inplace=((0, 0),),
    params={"p": Param(float, 0.5, "Fraction of the elements set to zero.", min=0.0, max=1.0),
            "mode": Param(str, "training", "'training': only in training (identity in "
                          "inference); 'always': in inference too.",
                          choices=("training", "always")),
            "axes": Param(Shape, (), "Axes along which one mask value is shared (variational "
                          "dropout)."),
            "cudnn_off": Param(bool, False, "Accepted for MXNet compatibility; no effect.")},
    infer_shape=_dropout_shape, infer_type=_dropout_type, partial_infer=True,
    gradient=lambda F, node, ograds: [ograds[0] * node.outputs[1]],
    doc="Zero each element with probability p in training and scale the rest by 1/(1-p), "
        "so the expected value is unchanged; the identity in inference (mode='training')."))


# -- Embedding -----------------------------------------------------------------------------

def _embedding_shape(attrs, in_shapes):
    data, weight = in_shapes
    want = (attrs.input_dim, attrs.output_dim)
    if weight is not None and tuple(weight) != want:
        raise ShapeError(f"input 'weight' has shape {tuple(weight)} but input_dim="
                         f"{attrs.input_dim}, output_dim={attrs.output_dim} need {want}",
                         argument="weight", expected=want, actual=tuple(weight))
    if data is None:
        return [None, want], [None]
    return [tuple(data), want], [tuple(data) + (attrs.output_dim,)]


def _embedding_type(attrs, in_dtypes):
    data, weight = in_dtypes
    check_index_dtype(data, "data")
    dtype = weight if weight is not None else np.dtype(attrs.dtype)
    return [data, dtype], [dtype]


def _rows(xp, data, input_dim):
    """int64 row indices: floats truncated, then clipped into [0, input_dim) (MXNet)."""
    return xp.clip(data.astype(np.int64, copy=False), 0, input_dim - 1)


def _embedding_forward(xp, attrs, inputs, outputs, req):
    data, weight = inputs
    out = outputs[0]
    if req[0] == "null" or out.size == 0:
        return
    idx = _rows(xp, data, attrs.input_dim)
    if req[0] != "add" and out.flags.c_contiguous:
        xp.take(weight, idx, axis=0, out=out)
    else:
        write_result(xp, out, xp.take(weight, idx, axis=0), req[0])


def _scatter_rows(xp, grad, idx, rows):
    """``grad[idx[i]] += rows[i]`` with repeated indices accumulating."""
    if xp is np:
        # sort once, sum each run of equal indices, then one unique-index update
        order = np.argsort(idx, kind="stable")
        ordered = idx[order]
        starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
        grad[ordered[starts]] += np.add.reduceat(rows[order], starts, axis=0)
    elif hasattr(xp.add, "at"):  # cupy >= 13
        xp.add.at(grad, idx, rows)
    else:  # pragma: no cover - older cupy
        import cupyx  # noqa: PLC0415
        cupyx.scatter_add(grad, idx, rows)


def _backward_embedding_shape(attrs, in_shapes):
    ograd, data = in_shapes
    want = (attrs.input_dim, attrs.output_dim)
    if data is not None:
        expected = tuple(data) + (attrs.output_dim,)
        if ograd is not None and tuple(ograd) != expected:
            raise ShapeError(f"ograd has shape {tuple(ograd)} but the forward output had "
                             f"{expected}", argument="ograd", expected=expected,
                             actual=tuple(ograd))
        ograd = expected
    return [ograd, data], [want]


def _backward_embedding_type(attrs, in_dtypes):
    ograd, data = in_dtypes
    check_index_dtype(data, "data")
    return in_dtypes, [ograd]


def _backward_embedding_forward(xp, attrs, inputs, outputs, req):
    ograd, data = inputs
    grad = outputs[0]
    if req[0] == "null":
        return
    if req[0] != "add":
        grad.fill(0)
    if data.size and attrs.output_dim:
        idx = _rows(xp, data, attrs.input_dim).reshape(-1)
        _scatter_rows(xp, grad, idx, ograd.reshape(idx.size, attrs.output_dim))


_EMBEDDING_DIMS = {
    "input_dim": Param(int, REQUIRED, "Vocabulary size: rows of the weight.", min=1),
    "output_dim": Param(int, REQUIRED, "Size of each embedding vector.", min=0),
}

register(OpDef(
    "_backward_Embedding", _backward_embedding_forward, inputs=("ograd", "data"),
    params=dict(_EMBEDDING_DIMS), infer_shape=_backward_embedding_shape,
    infer_type=_backward_embedding_type, partial_infer=True,
    gradient=lambda F, node, ograds: [
        F.Embedding(node.inputs[1], ograds[0], input_dim=node.attrs.input_dim,
                    output_dim=node.attrs.output_dim), None],
    doc="Gradient of Embedding's weight: zeros of shape (input_dim, output_dim) with each "
        "row of `ograd` added at its index (repeated indices accumulate)."))

register(OpDef(
    "Embedding", _embedding_forward, inputs=("data", "weight"),
    params={**_EMBEDDING_DIMS,
            "dtype": Param(DType, "float32", "Dtype of the weight (and the output) when not "
                                             "given by the weight itself."),
            "sparse_grad": Param(bool, False, "Accepted for MXNet compatibility; the gradient "
                                              "is always dense.")},
    infer_shape=_embedding_shape, infer_type=_embedding_type, partial_infer=True,
    gradient=lambda F, node, ograds: [
        None, F._backward_Embedding(ograds[0], node.inputs[0], input_dim=node.attrs.input_dim,
                                    output_dim=node.attrs.output_dim)],
    doc="Look up rows of `weight` (input_dim, output_dim) at the integer indices in `data` "
        "(clipped into range); the output shape is ``data.shape + (output_dim,)``. `data` "
        "gets no gradient."))


# -- Pad -----------------------------------------------------------------------------------

_PAD_MODES = ("constant", "edge", "reflect")


def _pad_pairs(attrs, ndim):
    width = attrs.pad_width
    return [(width[2 * i], width[2 * i + 1]) for i in range(ndim)]


def _check_pad(attrs, data):
    """Validate pad_width against ``data``'s shape; return the (before, after) pairs."""
    ndim = len(data)
    if ndim < 3:
        raise ShapeError(f"input 'data' has shape {data}; Pad needs (N, C, spatial...) data "
                         "with at least 3 dimensions", argument="data", actual=data)
    width = attrs.pad_width
    if len(width) != 2 * ndim:
        raise ShapeError(f"param pad_width={width} has {len(width)} entries but data of "
                         f"{ndim} dimensions needs {2 * ndim} (before, after per axis)",
                         argument="pad_width", expected=2 * ndim, actual=len(width))
    if any(width[:4]):
        raise ShapeError(f"param pad_width={width}: the batch and channel axes cannot be "
                         "padded (its first four entries must be 0)", argument="pad_width",
                         expected=(0, 0, 0, 0), actual=width[:4])
    pairs = _pad_pairs(attrs, ndim)
    for axis, ((before, after), size) in enumerate(zip(pairs, data)):
        if attrs.mode == "reflect" and max(before, after) >= max(size, 1):
            raise ShapeError(f"param pad_width={width}: reflect padding of axis {axis} by "
                             f"({before}, {after}) needs each width < its size {size}",
                             argument="pad_width", expected=f"< {size}",
                             actual=(before, after))
        if attrs.mode == "edge" and size == 0 and (before or after):
            raise ShapeError(f"param pad_width={width}: edge padding of axis {axis} needs a "
                             "non-empty axis", argument="data", actual=data)
    return pairs


def _pad_shape(attrs, in_shapes):
    (data,) = in_shapes
    if data is None:
        return in_shapes, [None]
    data = tuple(data)
    pairs = _check_pad(attrs, data)
    return [data], [tuple(n + a + b for n, (a, b) in zip(data, pairs))]


_pad_shape.partial = True


def _pad_forward(xp, attrs, inputs, outputs, req):
    x, out = inputs[0], outputs[0]
    if req[0] == "null" or out.size == 0:
        return
    target = out if req[0] != "add" else xp.empty_like(out)
    pairs = _pad_pairs(attrs, x.ndim)
    target[tuple(slice(a, a + n) for (a, _), n in zip(pairs, x.shape))] = x
    # Axis by axis over the whole (already padded) extent of the others, as numpy.pad:
    # every border read comes from the interior of the axis being padded.
    for axis, (a, b) in enumerate(pairs):
        n = x.shape[axis]
        if attrs.mode == "constant":
            if a:
                target[_slab(x.ndim, axis, slice(0, a))] = attrs.constant_value
            if b:
                target[_slab(x.ndim, axis, slice(a + n, None))] = attrs.constant_value
        elif attrs.mode == "edge":
            if a:
                target[_slab(x.ndim, axis, slice(0, a))] = target[
                    _slab(x.ndim, axis, slice(a, a + 1))]
            if b:
                target[_slab(x.ndim, axis, slice(a + n, None))] = target[
                    _slab(x.ndim, axis, slice(a + n - 1, a + n))]
        else:  # reflect (the edge itself is not repeated)
            if a:
                target[_slab(x.ndim, axis, slice(0, a))] = xp.flip(
                    target[_slab(x.ndim, axis, slice(a + 1, 2 * a + 1))], axis)
            if b:
                target[_slab(x.ndim, axis, slice(a + n, None))] = xp.flip(
                    target[_slab(x.ndim, axis, slice(a + n - 1 - b, a + n - 1))], axis)
    if req[0] == "add":
        out += target


def _backward_pad_shape(attrs, in_shapes):
    (ograd,) = in_shapes
    if ograd is None:
        return in_shapes, [None]
    ograd = tuple(ograd)
    if len(attrs.pad_width) != 2 * len(ograd):
        raise ShapeError(f"param pad_width={attrs.pad_width} does not fit ograd of shape "
                         f"{ograd}", argument="pad_width", expected=2 * len(ograd),
                         actual=len(attrs.pad_width))
    data = tuple(n - a - b for n, (a, b) in zip(ograd, _pad_pairs(attrs, len(ograd))))
    if any(n < 0 for n in data):
        raise ShapeError(f"ograd of shape {ograd} is smaller than pad_width="
                         f"{attrs.pad_width}", argument="ograd", actual=ograd)
    return [ograd], [data]


_backward_pad_shape.partial = True


def _backward_pad_forward(xp, attrs, inputs, outputs, req):
    g, grad = inputs[0], outputs[0]
    if req[0] == "null" or grad.size == 0:
        return
    ndim = g.ndim
    pairs = _pad_pairs(attrs, ndim)
    # The transpose of padding axis by axis: fold the last padded axis first. Edge and
    # reflect add each border slab onto the interior slab it was copied from (a short
    # loop over the pad width, one vectorised slab add each), in one working copy.
    work = g if attrs.mode == "constant" else g.copy()
    for axis in reversed(range(ndim)):
        a, b = pairs[axis]
        if not (a or b):
            continue
        n = work.shape[axis] - a - b
        if attrs.mode != "constant":
            for k in range(a):
                dst = a if attrs.mode == "edge" else 2 * a - k
                work[_slab(ndim, axis, slice(dst, dst + 1))] += work[
                    _slab(ndim, axis, slice(k, k + 1))]
            for k in range(b):
                dst = a + n - 1 if attrs.mode == "edge" else a + n - 2 - k
                work[_slab(ndim, axis, slice(dst, dst + 1))] += work[
                    _slab(ndim, axis, slice(a + n + k, a + n + k + 1))]
        work = work[_slab(ndim, axis, slice(a, a + n))]
    write_result(xp, grad, work, req[0])


_PAD_PARAMS = {
    "mode": Param(str, "constant", "'constant' pads with constant_value, 'edge' repeats the "
                  "edge values, 'reflect' mirrors the values next to the edge.",
                  choices=_PAD_MODES),
    "pad_width": Param(Shape, REQUIRED, "(before_1, after_1, ..., before_N, after_N), as "
                       "numpy.pad's flattened; the first four (N and C) must be 0.", min=0),
    "constant_value": Param(float, 0.0, "The padding value in 'constant' mode."),
}

register(OpDef(
    "_backward_Pad", _backward_pad_forward, inputs=("ograd",), params=dict(_PAD_PARAMS),
    infer_shape=_backward_pad_shape,
    gradient=lambda F, node, ograds: [
        F.Pad(ograds[0], mode=node.attrs.mode, pad_width=node.attrs.pad_width)],
    doc="Gradient of Pad: the interior of `ograd`, plus (edge, reflect) the border "
        "gradients added back onto the positions they were copied from."))

register(OpDef(
    "Pad", _pad_forward, params=dict(_PAD_PARAMS), infer_shape=_pad_shape,
    aliases=("pad",),
    gradient=lambda F, node, ograds: [
        F._backward_Pad(ograds[0], mode=node.attrs.mode, pad_width=node.attrs.pad_width)],
    doc="Pad the spatial axes of (N, C, ...) data with a constant, the edge values or "
        "their reflection."))


# -- Crop ----------------------------------------------------------------------------------

def _crop_box(attrs, data, size):
    """Check the crop of (h, w) ``size`` out of 4-D ``data``; return the (y, x) offset."""
    height, width = data[2], data[3]
    h, w = size
    if h > height or w > width:
        raise ShapeError(f"the crop size ({h}, {w}) is larger than the input's spatial size "
                         f"({height}, {width})", argument="h_w", expected=(height, width),
                         actual=(h, w))
    if attrs.center_crop:
        return (height - h) // 2, (width - w) // 2
    if len(attrs.offset) != 2:
        raise ShapeError(f"param offset={attrs.offset} must be (y, x)", argument="offset",
                         expected=2, actual=len(attrs.offset))
    y, x = attrs.offset
    if y > height - h or x > width - w:
        raise ShapeError(f"param offset={attrs.offset}: a ({h}, {w}) crop at that offset "
                         f"leaves the ({height}, {width}) input (at most "
                         f"{(height - h, width - w)})", argument="offset",
                         expected=(height - h, width - w), actual=attrs.offset)
    return y, x


def _crop_size(attrs, in_shapes, data):
    """The (h, w) of the crop, or None while crop_like's shape is unknown."""
    if attrs.num_args == 1:
        if len(attrs.h_w) != 2 or min(attrs.h_w) < 1:
            raise ShapeError(f"param h_w={attrs.h_w} must be (h, w) with h, w >= 1 when Crop "
                             "has one input", argument="h_w", expected="(h >= 1, w >= 1)",
                             actual=attrs.h_w)
        return tuple(attrs.h_w)
    like = in_shapes[1]
    if like is None:
        return None
    if len(like) != 4:
        raise ShapeError(f"input 'crop_like' (arg1) has shape {tuple(like)}; it must be 4-D "
                         "(N, C, H, W): its H and W give the crop size", argument="crop_like",
                         actual=tuple(like))
    return tuple(like[2:])


def _crop_shape(attrs, in_shapes):
    if len(in_shapes) != attrs.num_args:
        raise ShapeError(f"param num_args={attrs.num_args} but {len(in_shapes)} inputs were "
                         "given", argument="num_args", expected=len(in_shapes),
                         actual=attrs.num_args)
    data = in_shapes[0]
    if data is None:
        return in_shapes, [None]
    data = tuple(data)
    if len(data) != 4:
        raise ShapeError(f"input 'data' (arg0) has shape {data}; Crop needs 4-D data "
                         "(N, C, H, W)", argument="data", actual=data)
    size = _crop_size(attrs, in_shapes, data)
    if size is None:
        return in_shapes, [None]
    _crop_box(attrs, data, size)
    return [data] + list(in_shapes[1:]), [data[:2] + size]


_crop_shape.partial = True


def _crop_type(attrs, in_dtypes):
    data = in_dtypes[0]
    return [data] + list(in_dtypes[1:]), [data]


def _crop_forward(xp, attrs, inputs, outputs, req):
    data, out = inputs[0], outputs[0]
    h, w = out.shape[2:]
    y, x = _crop_box(attrs, data.shape, (h, w))
    write_result(xp, out, data[:, :, y:y + h, x:x + w], req[0])


def _backward_crop_shape(attrs, in_shapes):
    ograd, like = in_shapes
    if like is None or ograd is None:
        return in_shapes, [like]
    ograd, like = tuple(ograd), tuple(like)
    if len(ograd) != 4 or len(like) != 4 or ograd[:2] != like[:2]:
        raise ShapeError(f"ograd of shape {ograd} is not a crop of {like}", argument="ograd",
                         expected=like[:2] + ("h", "w"), actual=ograd)
    _crop_box(attrs, like, ograd[2:])
    return [ograd, like], [like]


_backward_crop_shape.partial = True


def _backward_crop_forward(xp, attrs, inputs, outputs, req):
    ograd, like = inputs
    grad = outputs[0]
    if req[0] == "null":
        return
    h, w = ograd.shape[2:]
    y, x = _crop_box(attrs, like.shape, (h, w))
    if req[0] == "add":
        grad[:, :, y:y + h, x:x + w] += ograd
        return
    grad.fill(0)
    grad[:, :, y:y + h, x:x + w] = ograd


_CROP_PARAMS = {
    "offset": Param(Shape, (0, 0), "(y, x) of the crop's top-left corner (unless "
                    "center_crop).", min=0),
    "h_w": Param(Shape, (0, 0), "(h, w) of the crop when there is no crop_like input."),
    "center_crop": Param(bool, False, "Center the crop (ignore offset)."),
}


def _crop_backward_params(node):
    return {k: node.attrs[k] for k in _CROP_PARAMS}


register(OpDef(
    "_backward_Crop", _backward_crop_forward, inputs=("ograd", "like"),
    params=dict(_CROP_PARAMS), infer_shape=_backward_crop_shape, infer_type=_crop_type,
    gradient=lambda F, node, ograds: [
        F.Crop(ograds[0], node.inputs[0], offset=node.attrs.offset,
               center_crop=node.attrs.center_crop), None],
    doc="Gradient of Crop: zeros of `like`'s shape with `ograd` at the cropped window. "
        "Only `like`'s shape is used."))

register(OpDef(
    "Crop", _crop_forward, variadic=True,
    params={"num_args": Param(int, REQUIRED, "1 (crop to h_w) or 2 (crop to the spatial size "
                                             "of the second input, crop_like).", min=1, max=2),
            **_CROP_PARAMS},
    infer_shape=_crop_shape, infer_type=_crop_type, partial_infer=True,
    gradient=lambda F, node, ograds: [
        F._backward_Crop(ograds[0], node.inputs[0], **_crop_backward_params(node))]
        + [None] * (len(node.inputs) - 1),
    doc="Cut an (h, w) window out of 4-D (N, C, H, W) data: h_w gives its size, or a second "
        "input's spatial size does (crop_like, which gets no gradient); at offset, or "
        "centered."))


# -- SequenceMask, SequenceLast, SequenceReverse -------------------------------------------

def _seq_inputs(attrs):
    return ("data", "sequence_length") if attrs.use_sequence_length else ("data",)


def _seq_check(attrs, data, length):
    """Check (T, N, ...) / (N, T, ...) data and the (N,) lengths; return N."""
    if len(data) < 2:
        raise ShapeError(f"input 'data' has shape {data}; it must have at least 2 dimensions "
                         "(time and batch)", argument="data", actual=data)
    batch = data[1] if attrs.axis == 0 else data[0]
    if length is not None and tuple(length) != (batch,):
        raise ShapeError(f"input 'sequence_length' has shape {tuple(length)} but data {data} "
                         f"with axis={attrs.axis} needs ({batch},) (one length per sequence)",
                         argument="sequence_length", expected=(batch,), actual=tuple(length))
    return batch


def _seq_shape(last):
    def infer_shape(attrs, in_shapes):
        data = in_shapes[0]
        if data is None:
            return in_shapes, [None]
        data = tuple(data)
        length = in_shapes[1] if attrs.use_sequence_length else None
        batch = _seq_check(attrs, data, length)
        ins = [data, (batch,)] if attrs.use_sequence_length else [data]
        if not last:
            return ins, [data]
        out = (batch,) + data[2:]
        if data[attrs.axis] == 0 and int(np.prod(out)) > 0:
            raise ShapeError(f"input 'data' has shape {data}: its time axis {attrs.axis} is "
                             "empty, so there is no last step", argument="data", actual=data)
        return ins, [out]
    infer_shape.partial = True
    return infer_shape


def _seq_type(attrs, in_dtypes):
    data = in_dtypes[0]
    if len(in_dtypes) > 1:
        check_index_dtype(in_dtypes[1], "sequence_length")
        return [data, in_dtypes[1] if in_dtypes[1] is not None else data], [data]
    return [data], [data]


def _lengths(xp, attrs, inputs, steps, low=0):
    """int64 lengths clipped into [low, steps], or None without use_sequence_length."""
    if not attrs.use_sequence_length:
        return None
    return xp.clip(inputs[1].astype(np.int64, copy=False), low, steps)


def _seq_mask_forward(xp, attrs, inputs, outputs, req):
    x, out = inputs[0], outputs[0]
    if req[0] == "null":
        return
    steps = x.shape[attrs.axis]
    length = _lengths(xp, attrs, inputs, steps)
    if length is None or x.size == 0:
        _copy_into(xp, out, x, req[0])
        return
    t = xp.arange(steps)
    masked = t[:, None] >= length[None, :] if attrs.axis == 0 else t[None, :] >= length[:, None]
    masked = masked.reshape(masked.shape + (1,) * (x.ndim - 2))
    if req[0] == "add":
        out += xp.where(masked, xp.asarray(attrs.value, dtype=x.dtype), x)
        return
    _copy_into(xp, out, x, req[0])
    xp.copyto(out, xp.asarray(attrs.value, dtype=out.dtype), where=masked)


def _gather_steps(xp, x, axis, steps_index):
    """``x`` at time ``steps_index[..., n]`` for sequence n (time on ``axis``)."""
    batch = xp.arange(x.shape[1 - axis])
    if axis == 0:
        return x[steps_index, batch]
    return x[batch[:, None] if steps_index.ndim == 2 else batch, steps_index]


def _last_steps(xp, attrs, inputs):
    x = inputs[0]
    steps = x.shape[attrs.axis]
    length = _lengths(xp, attrs, inputs, steps, low=1)
    if length is None:
        return xp.full((x.shape[1 - attrs.axis],), max(steps - 1, 0), dtype=np.int64)
    return length - 1


def _seq_last_forward(xp, attrs, inputs, outputs, req):
    x, out = inputs[0], outputs[0]
    if req[0] == "null" or out.size == 0:
        return
    write_result(xp, out, _gather_steps(xp, x, attrs.axis, _last_steps(xp, attrs, inputs)),
                 req[0])


def _reversed_steps(xp, steps, length):
    """(T, N) source steps: each sequence's first length[n] steps reversed, padding kept."""
    t = xp.arange(steps)[:, None]
    return xp.where(t < length[None, :], length[None, :] - 1 - t, t)


def _seq_reverse_forward(xp, attrs, inputs, outputs, req):
    x, out = inputs[0], outputs[0]
    if req[0] == "null" or out.size == 0:
        return
    steps = x.shape[attrs.axis]
    length = _lengths(xp, attrs, inputs, steps)
    if length is None:
        write_result(xp, out, xp.flip(x, attrs.axis), req[0])
        return
    source = _reversed_steps(xp, steps, length)
    write_result(xp, out, _gather_steps(xp, x, attrs.axis,
                                        source if attrs.axis == 0 else source.T), req[0])


def _backward_seq_last_inputs(attrs):
    return ("ograd", "like") + (("sequence_length",) if attrs.use_sequence_length else ())


def _backward_seq_last_shape(attrs, in_shapes):
    ograd, like = in_shapes[:2]
    if like is None:
        return in_shapes, [None]
    like = tuple(like)
    length = in_shapes[2] if attrs.use_sequence_length else None
    (_, *rest), (expected,) = _seq_shape(True)(
        attrs, [like] + ([length] if attrs.use_sequence_length else []))
    if ograd is not None and tuple(ograd) != expected:
        raise ShapeError(f"ograd has shape {tuple(ograd)} but the forward output had "
                         f"{expected}", argument="ograd", expected=expected,
                         actual=tuple(ograd))
    return [expected, like] + rest, [like]


_backward_seq_last_shape.partial = True


def _backward_seq_last_type(attrs, in_dtypes):
    ograd = in_dtypes[0]
    if len(in_dtypes) > 2:
        check_index_dtype(in_dtypes[2], "sequence_length")
    return in_dtypes, [ograd]


def _backward_seq_last_forward(xp, attrs, inputs, outputs, req):
    ograd, like = inputs[:2]
    grad = outputs[0]
    if req[0] == "null":
        return
    if req[0] != "add":
        grad.fill(0)
    if ograd.size == 0:
        return
    last = _last_steps(xp, attrs, [like] + list(inputs[2:]))
    batch = xp.arange(last.size)
    index = (last, batch) if attrs.axis == 0 else (batch, last)
    grad[index] += ograd  # one position per sequence: no repeated indices


_SEQ_PARAMS = {
    "use_sequence_length": Param(bool, False, "Take a second input, sequence_length (N,), "
                                              "with each sequence's length (else all are "
                                              "full length)."),
    "axis": Param(int, 0, "The time axis: 0 for (T, N, ...) data, 1 for (N, T, ...).",
                  choices=(0, 1)),
}


def _seq_length_input(node):
    return [node.inputs[1]] if node.attrs.use_sequence_length else []


def _seq_attrs(node):
    return {"use_sequence_length": node.attrs.use_sequence_length, "axis": node.attrs.axis}


register(OpDef(
    "SequenceMask", _seq_mask_forward, inputs=_seq_inputs, inplace=((0, 0),),
    params={**_SEQ_PARAMS, "value": Param(float, 0.0, "The value of the masked steps.")},
    infer_shape=_seq_shape(False), infer_type=_seq_type, partial_infer=True,
    gradient=lambda F, node, ograds: [
        F.SequenceMask(ograds[0], *_seq_length_input(node), value=0.0, **_seq_attrs(node))
        if node.attrs.use_sequence_length else ograds[0]]
        + [None] * (len(node.inputs) - 1),
    doc="Set the steps of each sequence at and after its length to `value`."))

register(OpDef(
    "_backward_SequenceLast", _backward_seq_last_forward, inputs=_backward_seq_last_inputs,
    params=dict(_SEQ_PARAMS), infer_shape=_backward_seq_last_shape,
    infer_type=_backward_seq_last_type, partial_infer=True,
    gradient=lambda F, node, ograds: [
        F.SequenceLast(ograds[0], *node.inputs[2:], **_seq_attrs(node))]
        + [None] * (len(node.inputs) - 1),
    doc="Gradient of SequenceLast: zeros of `like`'s shape with `ograd` at each sequence's "
        "last step. Only `like`'s shape is used."))

register(OpDef(
    "SequenceLast", _seq_last_forward, inputs=_seq_inputs, params=dict(_SEQ_PARAMS),
    infer_shape=_seq_shape(True), infer_type=_seq_type, partial_infer=True,
    gradient=lambda F, node, ograds: [
        F._backward_SequenceLast(ograds[0], node.inputs[0], *_seq_length_input(node),
                                 **_seq_attrs(node))] + [None] * (len(node.inputs) - 1),
    doc="The last step of each sequence (step length-1, or the last one without "
        "use_sequence_length); the output drops the time axis: (N, ...)."))

register(OpDef(
    "SequenceReverse", _seq_reverse_forward, inputs=_seq_inputs, params=dict(_SEQ_PARAMS),
    infer_shape=_seq_shape(False), infer_type=_seq_type, partial_infer=True,
    gradient=lambda F, node, ograds: [
        F.SequenceReverse(ograds[0], *_seq_length_input(node), **_seq_attrs(node))]
        + [None] * (len(node.inputs) - 1),
    doc="Reverse the first length steps of each sequence along the time axis; steps after "
        "the length stay in place."))
