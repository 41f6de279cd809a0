"""Checks of the reductions (sum, mean, ..., norm, argmax) against numpy (float64).

Forward values, numeric first-order gradients of every case, second-order
gradients through autograd against analytic values, and the ``_backward_sum``
and ``_backward_mean`` ops the gradients are built from.
"""
import numpy as np
import pytest

from deepkit_engine import autograd
from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import ShapeError
from deepkit_engine.ops import get_op
from deepkit_engine.testing import assert_almost_equal

from .op_cases import Const, OpCase, case_id, forward_params, gradient_params, run_forward
from .op_cases import run_gradient


def check_kernel_requests(case, req, strided):
    """Run the numpy kernel directly into outputs prefilled with 0.5.

    ``req='add'`` must accumulate onto them; ``'write'`` must overwrite them;
    ``'null'`` must leave them alone.
    ``strided`` makes the outputs non-contiguous views, so that the kernels'
    fallback paths run (the nd forward tests cover contiguous writes).
    """
    op = get_op(case.op)
    inputs = case.make_inputs(np.random.default_rng(0), "float64")
    params = dict(case.params)
    if op.variadic:
        params["num_args"] = len(inputs)
    attrs = op.parse_attrs(params)
    _, shapes = op.infer_shape(attrs, [x.shape for x in inputs])
    _, dtypes = op.infer_type(attrs, [x.dtype for x in inputs])
    if strided:
        outs = [np.full(tuple(s) + (2,), 0.5, d)[..., 0] for s, d in zip(shapes, dtypes)]
    else:
        outs = [np.full(s, 0.5, d) for s, d in zip(shapes, dtypes)]
    op.forward_cpu(np, attrs, inputs, outs, [req] * len(outs))
    expected = case.ref(*inputs, **case.params)
    expected = expected if isinstance(expected, (list, tuple)) else [expected]
    for got, want in zip(outs, expected):
        want = np.asarray(want, dtype=np.float64)
        if req == "null":
            want = np.full(want.shape, 0.5)
        elif req == "add":
            want = want + 0.5
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)


def _mx_axes(axis, ndim, exclude):
    """The axes MXNet reduces over (None/() = all; exclude = the complement)."""
    if axis is None or axis == ():
        return tuple(range(ndim))
    listed = [a % ndim for a in ((axis,) if isinstance(axis, int) else axis)]
    if exclude:
        return tuple(i for i in range(ndim) if i not in listed)
    return tuple(sorted(listed))


def _mx_reduce(fn, x, axis=None, keepdims=False, exclude=False):
    """numpy ``fn`` over MXNet's axes; a full reduction without keepdims has shape (1,)."""
    axes = _mx_axes(axis, x.ndim, exclude)
    result = np.asarray(fn(x, axis=axes, keepdims=True))
    if keepdims:
        return result
    shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
    return result.reshape(shape or (1,))


def _ref(fn):
    return lambda x, **p: _mx_reduce(fn, x, **p)


def _loop_prod(x, axis, keepdims):
    """A product by explicit loops (independent of np.prod)."""
    out_shape = tuple(1 if i in axis else d for i, d in enumerate(x.shape))
    out = np.ones(out_shape)
    for idx in np.ndindex(*x.shape):
        out[tuple(0 if i in axis else j for i, j in enumerate(idx))] *= x[idx]
    return out


def _with_nans(shape):
    def make(rng, dtype):
        x = rng.uniform(-1, 1, size=shape).astype(dtype)
        x[rng.random(shape) < 0.3] = np.nan
        return x
    return make


# (shape, params) combinations every sum-like reduction runs on.
_REDUCE_PARAMS = [
    ((3, 4), {}),
    ((3, 4), {"axis": 0}),
    ((3, 4), {"axis": -1, "keepdims": True}),
    ((2, 3, 4), {"axis": (0, 2)}),
    ((2, 3, 4), {"axis": (-1, 0), "keepdims": True}),
    ((2, 3, 4), {"axis": 1, "exclude": True}),
    ((2, 3, 4), {"axis": (0, -1), "exclude": True, "keepdims": True}),
    ((2, 3, 4), {"axis": ()}),
    ((2, 3, 4), {"keepdims": True}),
    ((1,), {}),
    ((1, 5), {"axis": 0}),
    ((4, 1, 2), {"axis": 1}),
    ((), {}),
    ((0, 3), {"axis": 0}),
    ((0, 3), {"axis": 1}),
    ((2, 0, 3), {"axis": 1, "keepdims": True}),
    ((2, 0, 3), {}),
]

CASES = []
for _shape, _params in _REDUCE_PARAMS:
    CASES.append(OpCase("sum", [_shape], _ref(np.sum), _params))
    CASES.append(OpCase("prod", [_shape], lambda x, **p: _mx_reduce(_loop_prod, x, **p),
                        _params, low=0.5, high=1.5))
    CASES.append(OpCase("nansum", [_with_nans(_shape)], _ref(np.nansum), _params))
    CASES.append(OpCase("nanprod", [_with_nans(_shape)], _ref(np.nanprod), _params,
                        name="nan"))
    axes = _mx_axes(_params.get("axis"), len(_shape), _params.get("exclude", False))
    if all(_shape[a] for a in axes):
        # Only non-empty selections: the mean of nothing and the max of nothing are
        # tested on their own below.
        CASES.append(OpCase("mean", [_shape], _ref(np.mean), _params))
        CASES.append(OpCase("max", [_shape], _ref(np.max), _params))
        CASES.append(OpCase("min", [_shape], _ref(np.min), _params))


# prod at zeros: one zero in a group (its gradient is the product of the others) and two
# (every gradient in the group is 0). prod is linear in each element, so central
# differences are exact there.
_PROD_ZEROS = [[0.0, 0.7, -1.3, 1.1], [0.9, 0.0, 0.0, 1.2], [1.1, -0.8, 1.4, 0.6]]
CASES += [OpCase("prod", [Const(_PROD_ZEROS)], _ref(np.prod), p, name="zeros")
          for p in ({"axis": 1}, {"axis": 0, "keepdims": True}, {})]
CASES.append(OpCase("nanprod", [Const([[0.0, np.nan, 0.5], [np.nan, -1.5, 0.8]])],
                    _ref(np.nanprod), {"axis": -1}, name="zeros"))


def _ref_norm(x, ord=2, axis=None, keepdims=False):
    fn = (lambda v, axis, keepdims: np.sqrt(np.sum(v * v, axis=axis, keepdims=keepdims))) \
        if ord == 2 else (lambda v, axis, keepdims: np.sum(np.abs(v), axis=axis,
                                                          keepdims=keepdims))
    return _mx_reduce(fn, x, axis, keepdims)


CASES += [OpCase("norm", [s], _ref_norm, p) for s, p in [
    ((3, 4), {}),
    ((3, 4), {"ord": 1}),
    ((3, 4), {"axis": 1}),
    ((2, 3, 4), {"axis": (1, 2), "keepdims": True}),
    ((2, 3, 4), {"ord": 1, "axis": -1}),
    ((1,), {}),
    ((0, 3), {"axis": 0}),
    ((2, 0), {"ord": 1}),
]]


def _ref_arg(fn):
    def ref(x, axis=None, keepdims=False):
        if axis is None:
            flat = x.reshape(-1)
            best = 0
            for i in range(flat.size):
                if fn(flat[i], flat[best]):
                    best = i
            return np.full((1,) * x.ndim if keepdims and x.ndim else (1,), float(best))
        moved = np.moveaxis(x, axis, -1)
        out = np.zeros(moved.shape[:-1])
        for idx in np.ndindex(*moved.shape[:-1]):
            row = moved[idx]
            best = 0
            for i in range(row.size):
                if fn(row[i], row[best]):
                    best = i
            out[idx] = best
        return np.expand_dims(out, axis) if keepdims else out.reshape(out.shape or (1,))
    return ref


CASES += [OpCase("norm", [Const([[0.0, 0.0], [0.3, -0.4]])], _ref_norm, {"axis": 1},
                 name="zero-norm")]


def _ref_unreduce(mean):
    """Reference of _backward_sum/_backward_mean: g put back over the reduced axes of x."""
    def ref(g, x, axis=None, keepdims=False, exclude=False):
        axes = _mx_axes(axis, x.ndim, exclude)
        kept = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        out = np.broadcast_to(g.reshape(kept), x.shape).copy()
        if mean:
            out /= max(int(np.prod([x.shape[a] for a in axes])), 1)
        return out
    return ref


for _shape, _params in _REDUCE_PARAMS:
    _gshape = _mx_reduce(np.sum, np.zeros(_shape), **_params).shape
    CASES.append(OpCase("_backward_sum", [_gshape, _shape], _ref_unreduce(False), _params))
    CASES.append(OpCase("_backward_mean", [_gshape, _shape], _ref_unreduce(True), _params))


for _op, _cmp in (("argmax", lambda a, b: a > b), ("argmin", lambda a, b: a < b)):
    CASES += [OpCase(_op, [s], _ref_arg(_cmp), p, grad=False) for s, p in [
        ((3, 4), {}),
        ((3, 4), {"axis": 1}),
        ((3, 4), {"axis": -2, "keepdims": True}),
        ((2, 3, 4), {"axis": 1}),
        ((2, 3, 4), {"keepdims": True}),
        ((1,), {"axis": 0}),
        ((0, 3), {"axis": 1}),
        ((5,), {"axis": 0}),
    ]]


# -- moments ----------------------------------------------------------------------------

def _ref_moments(x, axes=None, keepdims=False):
    axes = tuple(range(x.ndim)) if axes is None else (axes if isinstance(axes, tuple)
                                                     else (axes,))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    if not keepdims:
        shape = tuple(d for i, d in enumerate(x.shape) if i not in axes) or (1,)
        mean, var = mean.reshape(shape), var.reshape(shape)
    return [mean, var]


CASES += [OpCase("moments", [s], _ref_moments, p) for s, p in [
    ((3, 4), {"axes": (0,)}),
    ((3, 4), {"axes": 1, "keepdims": True}),
    ((2, 3, 4), {"axes": (0, 2)}),
    ((2, 3), {}),
]]


@pytest.mark.parametrize("case,dtype", forward_params(CASES))
def test_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)


@pytest.mark.parametrize("case", gradient_params(CASES))
def test_gradient(case, ctx):
    run_gradient(case, ctx)


@pytest.mark.parametrize("case", [pytest.param(c, id=case_id(c)) for c in CASES])
@pytest.mark.parametrize("req,strided", [("add", False), ("add", True), ("write", True),
                                         ("null", False)])
def test_kernel_requests_and_output_layouts(case, req, strided):
    check_kernel_requests(case, req, strided)


# -- second-order gradients (autograd) -------------------------------------------------

def _second_order(fn, value, ctx):
    """x.grad after ``g = d fn(x) / dx`` (create_graph) and ``g.backward()``.

    That is, per element, the sum over all elements of g of its derivative.
    """
    x = nd.array(value, ctx=ctx, dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = fn(x)
        g = autograd.grad(y, x, create_graph=True)
    g = g[0] if isinstance(g, (list, tuple)) else g
    g.backward()
    return g.asnumpy(), x.grad.asnumpy()


@pytest.mark.parametrize("params", [{"axis": 1}, {"axis": 0, "keepdims": True},
                                    {"axis": -1, "exclude": True}, {}])
def test_sum_second_order(params, ctx):
    # y = sum(s * s), s = sum(x over axes): dy/dx = 2 s (broadcast), and each element of
    # that changes by 2 per element of its group, which holds count elements.
    v = np.random.default_rng(0).uniform(-1, 1, (3, 4))
    g, second = _second_order(lambda x: nd.sum(nd.sum(x, **params) * nd.sum(x, **params)),
                              v, ctx)
    s = _mx_reduce(np.sum, v, **params)
    axes = _mx_axes(params.get("axis"), 2, params.get("exclude", False))
    kept = tuple(1 if i in axes else d for i, d in enumerate(v.shape))
    count = int(np.prod([v.shape[a] for a in axes]))
    assert_almost_equal(g, np.broadcast_to(2 * s.reshape(kept), v.shape))
    assert_almost_equal(second, np.full(v.shape, 2.0 * count))


def test_mean_second_order(ctx):
    # y = sum_j m_j^2, m = mean over axis 0 (n rows): dy/dx_ij = 2 m_j / n, second: 2 / n.
    v = np.random.default_rng(1).uniform(-1, 1, (4, 3))
    g, second = _second_order(lambda x: nd.sum(nd.square(nd.mean(x, axis=0))), v, ctx)
    assert_almost_equal(g, np.broadcast_to(2 * v.mean(axis=0) / 4, v.shape))
    assert_almost_equal(second, np.full(v.shape, 2.0 / 4))


@pytest.mark.parametrize("op,pick", [("max", np.argmax), ("min", np.argmin)])
def test_max_min_second_order(op, pick, ctx):
    # y = sum_i e_i^2 with e the row extreme: dy/dx = 2 e_i at the extreme, 0 elsewhere;
    # the second derivative is 2 at the extreme (the mask itself is constant).
    v = np.random.default_rng(2).uniform(-1, 1, (3, 5))
    g, second = _second_order(lambda x: nd.sum(nd.square(getattr(nd, op)(x, axis=1))), v, ctx)
    mask = np.zeros_like(v)
    mask[np.arange(3), pick(v, axis=1)] = 1
    extreme = getattr(np, op)(v, axis=1, keepdims=True)
    assert_almost_equal(g, 2 * extreme * mask)
    assert_almost_equal(second, 2 * mask)


def test_prod_second_order_with_a_zero(ctx):
    # p = x0 x1 x2 per row: d2p / dxi dxk = the remaining element; summed over i != k.
    v = np.array([[0.0, 2.0, 3.0], [0.5, -1.5, 2.0]])
    g, second = _second_order(lambda x: nd.prod(x, axis=1), v, ctx)
    others = np.array([[np.prod(np.delete(row, i)) for i in range(3)] for row in v])
    assert_almost_equal(g, others)
    pair_sums = np.array([[sum(row[j] for j in range(3) if j != k) for k in range(3)]
                          for row in v])
    assert_almost_equal(second, pair_sums)


def test_norm_second_order(ctx):
    # n = ||x||: dn/dx = x / n; the Hessian is (I - x x^T / n^2) / n, summed over rows.
    v = np.random.default_rng(3).uniform(-1, 1, (5,))
    g, second = _second_order(lambda x: nd.norm(x), v, ctx)
    n = np.sqrt((v * v).sum())
    hessian = (np.eye(5) - np.outer(v, v) / n ** 2) / n
    assert_almost_equal(g, v / n)
    assert_almost_equal(second, hessian.sum(axis=0))


def test_nansum_gradient_is_zero_at_nans(ctx):
    x = nd.array([[1.0, np.nan], [np.nan, 2.0]], ctx=ctx, dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = nd.nansum(x, axis=0)
    y.backward()
    assert x.grad.asnumpy().tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_max_ties_share_the_gradient(ctx):
    # As MXNet: every position equal to the maximum gets the gradient.
    x = nd.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]], ctx=ctx, dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = nd.max(x, axis=1)
    y.backward()
    assert x.grad.asnumpy().tolist() == [[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]


def test_executor_gradients_of_reductions(ctx):
    # sum, mean and norm(out_dtype) through one bound graph with grad_req='add'.
    data = sym.Variable("data")
    net = sym.Group([sym.sum(data, axis=(0, 2), keepdims=True),
                     sym.mean(data, axis=1, exclude=True),
                     sym.norm(data, axis=-1, out_dtype="float64")])
    v = np.random.default_rng(4).uniform(0.5, 1.5, (2, 3, 4)).astype(np.float32)
    grad = nd.ones((2, 3, 4), ctx=ctx, dtype="float32")
    exe = net.bind(ctx, {"data": nd.array(v, ctx=ctx, dtype="float32")},
                   args_grad={"data": grad}, grad_req="add")
    outs = exe.forward(is_train=True)
    assert outs[2].dtype == np.float64
    heads = [np.arange(3.0).reshape(1, 3, 1), np.array([1.0, -1.0, 2.0]),
             np.arange(6.0).reshape(2, 3)]
    exe.backward([nd.array(h, ctx=ctx, dtype=o.dtype) for h, o in zip(heads, outs)])
    norm = np.sqrt((v.astype(np.float64) ** 2).sum(axis=-1, keepdims=True))
    expected = (1.0 + np.broadcast_to(heads[0], v.shape)
                + np.broadcast_to(heads[1].reshape(1, 3, 1), v.shape) / 8
                + heads[2][..., None] * v / norm)
    assert exe.grad_dict["data"].dtype == np.float32
    assert_almost_equal(exe.grad_dict["data"], expected, rtol=1e-5, atol=1e-5)


# -- particular behaviours ---------------------------------------------------------

def test_aliases_resolve_to_the_same_op():
    assert get_op("sum_axis") is get_op("sum")
    assert get_op("max_axis") is get_op("max")
    assert get_op("min_axis") is get_op("min")


def test_full_reduction_has_shape_one_as_in_mxnet(ctx):
    x = nd.array(np.arange(6).reshape(2, 3), ctx=ctx)
    assert nd.sum(x).shape == (1,)
    assert nd.sum(x, axis=(0, 1)).shape == (1,)
    assert nd.sum(x, keepdims=True).shape == (1, 1)
    assert nd.mean(x).asscalar() == pytest.approx(2.5)


def test_empty_tuple_axis_means_all_even_with_exclude(ctx):
    x = nd.array(np.ones((2, 3)), ctx=ctx)
    assert nd.sum(x, axis=(), exclude=True).asnumpy().tolist() == [6.0]


def test_zero_size_reductions(ctx):
    x = nd.zeros((2, 0, 3), ctx=ctx)
    assert nd.sum(x, axis=1).asnumpy().tolist() == [[0.0] * 3] * 2
    assert nd.prod(x, axis=1).asnumpy().tolist() == [[1.0] * 3] * 2
    assert np.isnan(nd.mean(x, axis=1).asnumpy()).all()


def test_argmax_returns_the_input_float_dtype(ctx):
    x = nd.array([[1, 5, 2], [7, 0, 7]], ctx=ctx, dtype="float64")
    result = nd.argmax(x, axis=1)
    assert result.dtype == np.float64
    assert result.asnumpy().tolist() == [1.0, 0.0]  # first index on a tie
    assert nd.argmin(x).asnumpy().tolist() == [4.0]
    assert not get_op("argmax").differentiable and not get_op("argmin").differentiable


def test_integer_inputs_keep_their_dtype(ctx):
    x = nd.array(np.arange(6).reshape(2, 3), ctx=ctx, dtype="int32")
    assert nd.sum(x, axis=0).dtype == np.int32
    assert nd.sum(x, axis=0).asnumpy().tolist() == [3, 5, 7]
    assert nd.max(x).asnumpy().tolist() == [5]
    assert nd.mean(x, axis=1).asnumpy().tolist() == [1, 4]  # integer division, as MXNet
    assert nd.norm(nd.array([[3, 4]], ctx=ctx, dtype="int32")).asnumpy().tolist() == [5]


def test_float16_accumulates_in_float32(ctx):
    x = nd.array(np.full(4096, 1.0), ctx=ctx, dtype="float16")
    assert nd.sum(x).asnumpy().tolist() == [4096.0]


def test_norm_out_dtype(ctx):
    x = nd.array([[3.0, 4.0]], ctx=ctx, dtype="float32")
    result = nd.norm(x, out_dtype="float64")
    assert result.dtype == np.float64 and result.asnumpy().tolist() == [5.0]


def test_out_argument_and_strided_out(ctx):
    x = nd.array(np.arange(12).reshape(3, 4), ctx=ctx)
    target = nd.zeros((4, 2), ctx=ctx)
    nd.sum(x, axis=0, out=target[:, 1])
    assert target.asnumpy()[:, 1].tolist() == [12.0, 15.0, 18.0, 21.0]
    assert target.asnumpy()[:, 0].tolist() == [0.0] * 4


# -- errors --------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["sum", "mean", "max", "nansum"])
def test_axis_out_of_range(op, ctx):
    x = nd.ones((2, 3), ctx=ctx)
    with pytest.raises(ShapeError, match=rf"(?s)^{op}: axis=2 is out of range for an input with 2 "
                                         r"dimension.*data=\(2, 3\)"):
        getattr(nd, op)(x, axis=(0, 2))
    with pytest.raises(ShapeError, match=rf"{op}: axis=-3 is out of range"):
        getattr(nd, op)(x, axis=-3)


def test_duplicate_axis():
    with pytest.raises(ShapeError, match=r"sum: axis=\(1, -1\) lists axis 1 twice"):
        nd.sum(nd.ones((2, 3)), axis=(1, -1))


@pytest.mark.parametrize("op", ["max", "min", "argmax", "argmin"])
def test_extreme_of_an_empty_axis_is_an_error(op):
    x = nd.ones((2, 0, 3))
    with pytest.raises(ShapeError, match=rf"(?s)^{op}: cannot reduce over axis 1 of size 0 .*"
                                         r"\(2, 0, 3\)"):
        getattr(nd, op)(x, axis=1)
    # Other axes may be empty: the result is empty too.
    assert getattr(nd, op)(x, axis=2).shape == (2, 0)


def test_argmax_of_an_empty_input_without_axis():
    with pytest.raises(ShapeError, match=r"argmax: .*empty input of shape \(0, 3\)"):
        nd.argmax(nd.ones((0, 3)))


def test_norm_bad_ord():
    from deepkit_engine.base import ParamError
    with pytest.raises(ParamError, match="norm: param ord=3 must be <= 2"):
        nd.norm(nd.ones((2,)), ord=3)
    with pytest.raises(ParamError, match="norm: param ord=0 must be >= 1"):
        nd.norm(nd.ones((2,)), ord=0)

