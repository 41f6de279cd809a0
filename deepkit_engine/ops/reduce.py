"""Reductions: sum, mean, prod, max, min, nan-aware forms, norm, argmax/argmin.

MXNet 1.x semantics throughout:

* ``axis`` is ``None``, an int or a tuple of ints (negative counts from the
  end); ``None`` and the empty tuple both mean "every axis".
* ``exclude=True`` reduces over every axis *not* listed in ``axis``.
* A reduction over every axis with ``keepdims=False`` gives shape ``(1,)``,
  not a 0-d array, as in MXNet 1.x (whose arrays are at least 1-D).
* ``argmax``/``argmin`` return indices in the input's dtype (float for float
  inputs), as MXNet does, so they mix with other float arrays freely.

Kernels reduce straight into the preallocated output (viewed with the reduced
axes kept as size 1), so no temporary is made on the common path.

Gradients put the incoming gradient back over the reduced axes with
``_backward_sum`` (``_backward_mean`` divides by the count): the input only
supplies the shape, which a graph-level reshape could not know (``axis=None``,
negative axes, ``exclude``). max/min send it to every position equal to the
extreme, prod to the product of the other elements (exact at zeros), nansum
and nanprod none to NaNs. All are compositions of differentiable ops, so they
can be differentiated again.
"""
import numpy as np

from ..base import ShapeError
from .registry import Axes, DType, OpDef, Param, register, write_result

__all__ = ["reduce_axes", "reduce_shape"]


# -- shape helpers -------------------------------------------------------------

def _normalize_axis(axis, ndim, name="axis"):
    """``axis`` made non-negative; ShapeError naming it and ``ndim`` if out of range."""
    if not -ndim <= axis < ndim:
        raise ShapeError(f"{name}={axis} is out of range for an input with {ndim} dimension(s) "
                         f"(valid: {-ndim} to {ndim - 1})" if ndim else
                         f"{name}={axis} is out of range for a 0-d input (it has no axes)",
                         argument=name, expected=f"[{-ndim}, {ndim})", actual=axis)
    return axis + ndim if axis < 0 else axis


def reduce_axes(axis, ndim, exclude=False):
    """The sorted tuple of axes to reduce over.

    Args:
        axis: ``None``, an int or a tuple of ints (MXNet's ``axis`` param);
            ``None`` and ``()`` mean all axes.
        ndim: Number of dimensions of the input.
        exclude: Reduce over the axes *not* in ``axis`` instead.

    Raises:
        ShapeError: An axis is out of range or listed twice.
    """
    if axis is None or axis == ():
        return tuple(range(ndim))
    listed = (axis,) if isinstance(axis, int) else axis
    axes = sorted(_normalize_axis(a, ndim) for a in listed)
    for a, b in zip(axes, axes[1:]):
        if a == b:
            raise ShapeError(f"axis={axis} lists axis {a} twice", argument="axis", actual=axis)
    if exclude:
        chosen = set(axes)
        return tuple(i for i in range(ndim) if i not in chosen)
    return tuple(axes)


def reduce_shape(shape, axes, keepdims):
    """Output shape of reducing ``shape`` over ``axes`` (MXNet: never 0-d)."""
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    out = tuple(d for i, d in enumerate(shape) if i not in axes)
    return out if out else (1,)


def _kept_shape(shape, axes):
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


def _reduce_infer(nonempty):
    def infer_shape(attrs, in_shapes):
        (shape,) = in_shapes
        if shape is None:
            return in_shapes, [None]
        axes = reduce_axes(attrs.axis, len(shape), attrs.exclude)
        if nonempty:
            _check_nonempty(shape, axes)
        return in_shapes, [reduce_shape(shape, axes, attrs.keepdims)]
    return infer_shape


def _check_nonempty(shape, axes):
    empty = [a for a in axes if shape[a] == 0]
    if empty:
        raise ShapeError(f"cannot reduce over axis {empty[0]} of size 0 of an input of shape "
                         f"{tuple(shape)}: the result is undefined for an empty axis",
                         argument="data", actual=tuple(shape))


# -- kernels -------------------------------------------------------------------

def _reduce_into(xp, fn, x, out, req, axes):
    """``fn(x, axis=axes, keepdims=True)`` stored into ``out`` honouring ``req``."""
    if req == "null":
        return
    kshape = _kept_shape(x.shape, axes)
    if x.dtype == np.float16:
        # Accumulate half precision in float32 (as MXNet does), then round once.
        write_result(xp, out, fn(x, axis=axes, dtype=np.float32, keepdims=True)
                     .reshape(out.shape), req)
    elif req != "add" and out.flags.c_contiguous and out.dtype == x.dtype:
        fn(x, axis=axes, keepdims=True, out=out.reshape(kshape))
    else:
        write_result(xp, out, fn(x, axis=axes, keepdims=True).reshape(out.shape), req)


def _reduce_forward(fn_name):
    def forward(xp, attrs, inputs, outputs, req):
        x = inputs[0]
        axes = reduce_axes(attrs.axis, x.ndim, attrs.exclude)
        _reduce_into(xp, getattr(xp, fn_name), x, outputs[0], req[0], axes)
    forward.__name__ = f"forward_{fn_name}"
    return forward


def _max_min_forward(fn_name):
    # amax/amin take no dtype argument; half precision is exact for them anyway.
    def forward(xp, attrs, inputs, outputs, req):
        x, out, r = inputs[0], outputs[0], req[0]
        if r == "null":
            return
        axes = reduce_axes(attrs.axis, x.ndim, attrs.exclude)
        fn = getattr(xp, fn_name)
        if r != "add" and out.flags.c_contiguous:
            fn(x, axis=axes, keepdims=True, out=out.reshape(_kept_shape(x.shape, axes)))
        else:
            write_result(xp, out, fn(x, axis=axes, keepdims=True).reshape(out.shape), r)
    forward.__name__ = f"forward_{fn_name}"
    return forward


def _mean_forward(xp, attrs, inputs, outputs, req):
    x, out, r = inputs[0], outputs[0], req[0]
    if r == "null":
        return
    axes = reduce_axes(attrs.axis, x.ndim, attrs.exclude)
    count = 1
    for a in axes:
        count *= x.shape[a]
    if count == 0:
        # The mean of nothing: NaN for floats (as numpy), without numpy's warning.
        fill = np.nan if out.dtype.kind in "fc" else 0
        if r == "add":
            out += fill
        else:
            out.fill(fill)
        return
    if r != "add" and out.flags.c_contiguous and x.dtype != np.float16:
        view = out.reshape(_kept_shape(x.shape, axes))
        xp.sum(x, axis=axes, keepdims=True, out=view)
        xp.true_divide(view, count, out=view, casting="unsafe")
    else:
        kw = {"dtype": np.float32} if x.dtype == np.float16 else {}
        total = xp.sum(x, axis=axes, keepdims=True, **kw).reshape(out.shape)
        write_result(xp, out, xp.true_divide(total, count).astype(out.dtype, copy=False), r)


def _norm_axes(attrs, ndim):
    return reduce_axes(attrs.axis, ndim)


def _norm_infer_shape(attrs, in_shapes):
    (shape,) = in_shapes
    if shape is None:
        return in_shapes, [None]
    axes = _norm_axes(attrs, len(shape))
    return in_shapes, [reduce_shape(shape, axes, attrs.keepdims)]


def _norm_infer_type(attrs, in_dtypes):
    (dtype,) = in_dtypes
    if attrs.out_dtype is not None:
        return in_dtypes, [attrs.out_dtype]
    return in_dtypes, [dtype]


def _norm_forward(xp, attrs, inputs, outputs, req):
    x, out, r = inputs[0], outputs[0], req[0]
    if r == "null":
        return
    axes = _norm_axes(attrs, x.ndim)
    terms = xp.abs(x) if attrs.ord == 1 else xp.square(x)
    wide = {"dtype": np.float32} if x.dtype == np.float16 else {}
    direct = r != "add" and out.flags.c_contiguous and out.dtype == x.dtype and not wide
    if direct:
        view = out.reshape(_kept_shape(x.shape, axes))
        xp.sum(terms, axis=axes, keepdims=True, out=view)
        if attrs.ord == 2:
            xp.sqrt(view, out=view, casting="unsafe")
        return
    total = xp.sum(terms, axis=axes, keepdims=True, **wide).reshape(out.shape)
    if attrs.ord == 2:
        total = xp.sqrt(total)
    write_result(xp, out, total.astype(out.dtype, copy=False), r)


def _arg_infer_shape(attrs, in_shapes):
    (shape,) = in_shapes
    if shape is None:
        return in_shapes, [None]
    ndim = len(shape)
    if attrs.axis is None:
        if 0 in shape:
            raise ShapeError(f"cannot take the index of the extreme of an empty input of shape "
                             f"{tuple(shape)}", argument="data", actual=tuple(shape))
        return in_shapes, [(1,) * ndim if attrs.keepdims and ndim else (1,)]
    axis = _normalize_axis(attrs.axis, ndim)
    _check_nonempty(shape, (axis,))
    return in_shapes, [reduce_shape(shape, (axis,), attrs.keepdims)]


def _arg_forward(fn_name):
    def forward(xp, attrs, inputs, outputs, req):
        x, out, r = inputs[0], outputs[0], req[0]
        if r == "null":
            return
        fn = getattr(xp, fn_name)
        if attrs.axis is None:
            index = fn(x)
        else:
            index = fn(x, axis=attrs.axis).reshape(out.shape)
        if r == "add":
            out += index
        else:
            out[...] = index  # integer indices cast to the output (input) dtype
    forward.__name__ = f"forward_{fn_name}"
    return forward


# -- gradients -----------------------------------------------------------------

def _backward_reduce_infer_shape(attrs, in_shapes):
    gshape, dshape = in_shapes
    if dshape is None:
        return in_shapes, [None]
    axes = reduce_axes(attrs.axis, len(dshape), attrs.exclude)
    expected = reduce_shape(dshape, axes, attrs.keepdims)
    if gshape is not None and tuple(gshape) != expected:
        raise ShapeError(f"ograd has shape {tuple(gshape)} but reducing data {tuple(dshape)} "
                         f"over axes {axes} gives {expected}", argument="ograd",
                         expected=expected, actual=tuple(gshape))
    return [expected, dshape], [dshape]


def _backward_reduce_infer_type(attrs, in_dtypes):
    # The result takes data's dtype (norm's ograd may have another one: out_dtype).
    return in_dtypes, [in_dtypes[1]]


def _backward_reduce_forward(mean):
    def forward(xp, attrs, inputs, outputs, req):
        g, x = inputs
        out, r = outputs[0], req[0]
        if r == "null" or out.size == 0:
            return
        axes = reduce_axes(attrs.axis, x.ndim, attrs.exclude)
        value = g.reshape(_kept_shape(x.shape, axes))
        if mean:
            count = 1
            for a in axes:
                count *= x.shape[a]
            value = xp.true_divide(value, count)
        write_result(xp, out, value, r)  # broadcasts over the reduced axes
    forward.__name__ = "forward_backward_mean" if mean else "forward_backward_sum"
    return forward


def _params_of(attrs, names=("axis", "keepdims", "exclude")):
    return {k: attrs[k] for k in names if k in attrs}


def _unreduce(F, g, data, attrs):
    """``g`` (a reduction's result) broadcast back over the reduced axes to ``data``'s shape."""
    return F._backward_sum(g, data, **_params_of(attrs))


def _sum_gradient(F, node, ograds):
    return [_unreduce(F, ograds[0], node.inputs[0], node.attrs)]


def _mean_gradient(F, node, ograds):
    return [F._backward_mean(ograds[0], node.inputs[0], **_params_of(node.attrs))]


def _nansum_gradient(F, node, ograds):
    x = node.inputs[0]
    return [_unreduce(F, ograds[0], x, node.attrs) * (x == x)]  # zero where x is NaN


def _prod_grad(F, x, out, g, attrs):
    """d prod(x) / dx_i = the product of the *other* elements, exact at zeros.

    ``out`` is prod(x). Where ``x_i != 0`` that is ``out / x_i``; a zero gets
    the product of the non-zero elements if it is its group's only zero, else
    0. Built from differentiable ops with piecewise-constant masks, so it can
    be differentiated again: second derivatives are exact except in groups
    with two or more zeros (where they come out 0).
    """
    zero = x == 0
    nz = F.where(zero, F.ones_like(x), x)
    lone = F.sum(zero, **_params_of(attrs)) == 1
    at_zero = _unreduce(F, F.prod(nz, **_params_of(attrs)) * lone, x, attrs)
    elsewhere = _unreduce(F, out, x, attrs) / nz
    return _unreduce(F, g, x, attrs) * F.where(zero, at_zero, elsewhere)


def _prod_gradient(F, node, ograds):
    return [_prod_grad(F, node.inputs[0], node.outputs[0], ograds[0], node.attrs)]


def _nanprod_gradient(F, node, ograds):
    x = node.inputs[0]
    valid = x == x
    x1 = F.where(valid, x, F.ones_like(x))  # NaN counts as 1 (nanprod(x) == prod(x1)) ...
    return [_prod_grad(F, x1, node.outputs[0], ograds[0], node.attrs) * valid]  # ... no grad


def _extreme_gradient(F, node, ograds):
    # All positions equal to the extreme share the gradient (as MXNet): ties get it each.
    x = node.inputs[0]
    hit = x == _unreduce(F, node.outputs[0], x, node.attrs)
    return [_unreduce(F, ograds[0], x, node.attrs) * hit]


def _norm_gradient(F, node, ograds):
    x = node.inputs[0]
    g = _unreduce(F, ograds[0], x, node.attrs)
    if node.attrs.ord == 1:
        return [g * F.sign(x)]
    norm = _unreduce(F, node.outputs[0], x, node.attrs)
    # x / norm, with 0 (a subgradient) where the norm is 0 and without a 0/0 anywhere.
    safe = F.where(norm == 0, F.ones_like(norm), norm)
    return [g * x / safe]


def _backward_sum_gradient(F, node, ograds):
    return [F.sum(ograds[0], **_params_of(node.attrs)), None]


def _backward_mean_gradient(F, node, ograds):
    # sum(o) / count, written so that an empty reduction gives 0 (mean(o) would give NaN).
    g, x = node.inputs
    scale = F._backward_mean(F.ones_like(g), x, **_params_of(node.attrs))
    return [F.sum(ograds[0] * scale, **_params_of(node.attrs)), None]


def _backward_reduce_op(name, mean, doc):
    params = _reduce_params()
    register(OpDef(name, _backward_reduce_forward(mean), inputs=("ograd", "data"),
                   params=params, infer_shape=_backward_reduce_infer_shape,
                   infer_type=_backward_reduce_infer_type, partial_infer=True,
                   gradient=_backward_mean_gradient if mean else _backward_sum_gradient,
                   doc=doc))


# -- declarations --------------------------------------------------------------

def _reduce_params():
    return {
        "axis": Param(Axes, None, "Axis or axes to reduce; None or () reduces over all axes."),
        "keepdims": Param(bool, False, "Keep the reduced axes as size-1 dimensions."),
        "exclude": Param(bool, False, "Reduce over every axis that is NOT in `axis`."),
    }


def _reduce(name, forward, gradient, aliases=(), nonempty=False, doc=""):
    return register(OpDef(name, forward, params=_reduce_params(),
                          infer_shape=_reduce_infer(nonempty), aliases=aliases,
                          gradient=gradient, doc=doc, fluent=True))


_reduce("sum", _reduce_forward("sum"), _sum_gradient, aliases=("sum_axis",),
        doc="Sum of the elements over the given axes (over all elements by default).")
_reduce("mean", _mean_forward, _mean_gradient,
        doc="Arithmetic mean over the given axes; NaN for a float reduction over no elements.")
_reduce("prod", _reduce_forward("prod"), _prod_gradient,
        doc="Product of the elements over the given axes (1 over an empty axis).")
_reduce("nansum", _reduce_forward("nansum"), _nansum_gradient,
        doc="Sum over the given axes, treating NaN as zero.")
_reduce("nanprod", _reduce_forward("nanprod"), _nanprod_gradient,
        doc="Product over the given axes, treating NaN as one.")
_reduce("max", _max_min_forward("amax"), _extreme_gradient, aliases=("max_axis",), nonempty=True,
        doc="Maximum over the given axes; reducing an axis of size 0 is an error.")
_reduce("min", _max_min_forward("amin"), _extreme_gradient, aliases=("min_axis",), nonempty=True,
        doc="Minimum over the given axes; reducing an axis of size 0 is an error.")

register(OpDef(
    "norm", _norm_forward,
    params={
        # min/max rather than choices=(1, 2): registry.did_you_mean only handles strings.
        "ord": Param(int, 2, "Order of the norm: 1 (sum of absolute values) or 2 (Euclidean).",
                     min=1, max=2),
        "axis": Param(Axes, None, "Axis or axes to take the norm over (an int for vector "
                                  "norms, a pair for entrywise matrix norms); None: all."),
        "out_dtype": Param(DType, None, "Output dtype; None keeps the input dtype."),
        "keepdims": Param(bool, False, "Keep the reduced axes as size-1 dimensions."),
    },
    infer_shape=_norm_infer_shape, infer_type=_norm_infer_type, gradient=_norm_gradient,
    doc="The L1 or L2 norm over the given axes (entrywise over all of them; with two axes "
        "and ord=2 this is the Frobenius norm).", fluent=True))


def _arg_params():
    return {
        "axis": Param(int, None, "Axis to search along; None searches the flattened input."),
        "keepdims": Param(bool, False, "Keep the searched axis as a size-1 dimension."),
    }


register(OpDef("argmax", _arg_forward("argmax"), params=_arg_params(),
               infer_shape=_arg_infer_shape, differentiable=False,
               doc="Index of the maximum along an axis (first one on ties), in the input's "
                   "dtype as in MXNet.", fluent=True))
register(OpDef("argmin", _arg_forward("argmin"), params=_arg_params(),
               infer_shape=_arg_infer_shape, differentiable=False,
               doc="Index of the minimum along an axis (first one on ties), in the input's "
                   "dtype as in MXNet.", fluent=True))


def _argmax_channel_infer_shape(attrs, in_shapes):
    (shape,) = in_shapes
    if shape is None:
        return in_shapes, [None]
    if len(shape) < 2:
        raise ShapeError(f"argmax_channel: data has shape {tuple(shape)} but needs at least 2 "
                         "dimensions (it searches axis 1, the channels)", argument="data",
                         expected="ndim >= 2", actual=tuple(shape))
    _check_nonempty(shape, (1,))
    return in_shapes, [reduce_shape(shape, (1,), False)]


def _argmax_channel_forward(xp, attrs, inputs, outputs, req):
    x, out, r = inputs[0], outputs[0], req[0]
    if r != "null":
        write_result(xp, out, xp.argmax(x, axis=1), r)


register(OpDef("argmax_channel", _argmax_channel_forward, infer_shape=_argmax_channel_infer_shape,
               differentiable=False,
               doc="Index of the maximum along axis 1, the channels (first one on ties), in the "
                   "input's dtype: MXNet's legacy ``argmax_channel``, which is ``argmax(data, "
                   "axis=1)``; ``(N, C)`` scores give ``(N,)`` class indices."))


_backward_reduce_op(
    "_backward_sum", False,
    "Gradient of sum (and the other reductions' building block): ograd, the result of "
    "reducing data over the given axes, broadcast back over those axes to data's shape and "
    "dtype; data only supplies them.")
_backward_reduce_op(
    "_backward_mean", True,
    "Gradient of mean: ograd broadcast back over the reduced axes to data's shape and dtype, "
    "divided by the number of elements reduced; data only supplies them.")


# -- moments ----------------------------------------------------------------------------

def _moments_params(attrs):
    return {"axis": attrs.axes, "keepdims": attrs.keepdims}


def _moments_infer_shape(attrs, in_shapes):
    (shape,) = in_shapes
    if shape is None:
        return in_shapes, [None, None]
    out = reduce_shape(shape, reduce_axes(attrs.axes, len(shape)), attrs.keepdims)
    return in_shapes, [out, out]


def _moments_infer_type(attrs, in_dtypes):
    (dtype,) = in_dtypes
    return in_dtypes, [dtype, dtype]


def _moments_forward(xp, attrs, inputs, outputs, req):
    x = inputs[0]
    axes = reduce_axes(attrs.axes, x.ndim)
    kw = {"dtype": np.float32} if x.dtype == np.float16 else {}
    mean = xp.mean(x, axis=axes, keepdims=True, **kw)
    centered = x - mean
    var = xp.mean(centered * centered, axis=axes, keepdims=True)
    for out, value, r in zip(outputs, (mean, var), req):
        if r != "null":
            write_result(xp, out, value.reshape(out.shape).astype(out.dtype, copy=False), r)


def _moments_gradient(F, node, ograds):
    x = node.inputs[0]
    params = _moments_params(node.attrs)
    g_mean, g_var = ograds
    mean = F._backward_sum(node.outputs[0], x, **params)  # the mean, spread over x's shape
    return [F._backward_mean(g_mean, x, **params)
            + F._backward_mean(g_var, x, **params) * (x - mean) * 2.0]


register(OpDef(
    "moments", _moments_forward, outputs=("mean", "var"),
    params={"axes": Param(Axes, None, "Axes to take the moments over (None: all)."),
            "keepdims": Param(bool, False, "Keep the reduced axes as size-1 dimensions.")},
    infer_shape=_moments_infer_shape, infer_type=_moments_infer_type,
    gradient=_moments_gradient,
    doc="The mean and the (biased) variance ``mean((x - mean)**2)`` over `axes`, as two "
        "outputs."))
