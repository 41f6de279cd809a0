"""Checks of the indexing and sorting ops (and their backward ops) against plain-numpy
loop references: forward values, numeric gradients, higher orders, executors."""
import numpy as np
import pytest

from deepkit_engine import autograd, nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import DTypeError, EngineError, ParamError, ShapeError
from deepkit_engine.ops import get_op
from deepkit_engine.testing import assert_almost_equal

from .op_cases import (Const, Int, OpCase, forward_params, gradient_params, run_forward,
                       run_gradient)


def _fraction(idx):
    """Integers moved 0.25 away from zero: they truncate back to themselves, and a
    finite-difference step stays clear of the jump at the integer."""
    return idx + np.where(idx < 0, -0.25, 0.25)


def float_index(low, high, shape):
    """An index input of the case's float dtype (MXNet passes indices as floats)."""
    return lambda rng, dtype: _fraction(rng.integers(low, high, size=shape)).astype(dtype)


def unique_positions(shape, m, n, dtype=None):
    """(m, n) indices of n distinct positions in the first m dims of ``shape``."""
    def make(rng, case_dtype):
        flat = rng.choice(int(np.prod(shape[:m])), size=n, replace=False)
        idx = np.stack(np.unravel_index(flat, shape[:m])) if n else np.zeros((m, 0), np.int64)
        dtype_ = np.dtype(dtype or case_dtype)
        return (_fraction(idx) if dtype_.kind == "f" else idx).astype(dtype_)
    return make


# -- references (loops, independent of the kernels) ----------------------------------

def _index(value, size, mode):
    j = int(value)  # truncates floats towards zero, as MXNet does
    if mode == "clip":
        return min(max(j, 0), size - 1)
    if mode == "wrap":
        return j % size
    assert -size <= j < size
    return j % size


def ref_take(a, indices, axis=0, mode="clip"):
    axis %= a.ndim
    indices = np.asarray(indices)
    out = np.empty(a.shape[:axis] + indices.shape + a.shape[axis + 1:], a.dtype)
    lead = (slice(None),) * axis
    for pos in np.ndindex(*indices.shape):
        out[lead + pos] = a[lead + (_index(indices[pos], a.shape[axis], mode),)]
    return out


def ref_pick(data, index, axis=-1, keepdims=False, mode="clip"):
    axis %= data.ndim
    reduced = data.shape[:axis] + data.shape[axis + 1:]
    index = np.asarray(index).reshape(reduced)
    out = np.empty(reduced, data.dtype)
    for pos in np.ndindex(*reduced):
        j = _index(index[pos], data.shape[axis], mode)
        out[pos] = data[pos[:axis] + (j,) + pos[axis:]]
    return np.expand_dims(out, axis) if keepdims else out


def ref_one_hot(indices, depth, on_value=1.0, off_value=0.0, dtype="float32"):
    out = np.full(np.shape(indices) + (depth,), off_value, np.float64)
    for pos in np.ndindex(*np.shape(indices)):
        j = int(np.asarray(indices)[pos])
        if 0 <= j < depth:
            out[pos + (j,)] = on_value
    return out


def ref_gather_nd(data, indices):
    m = indices.shape[0]
    out = np.empty(indices.shape[1:] + data.shape[m:], data.dtype)
    for pos in np.ndindex(*indices.shape[1:]):
        out[pos] = data[tuple(int(indices[(i,) + pos]) for i in range(m))]
    return out


def ref_scatter_nd(data, indices, shape):
    m = indices.shape[0]
    out = np.zeros(shape, data.dtype)
    for pos in np.ndindex(*indices.shape[1:]):
        out[tuple(int(indices[(i,) + pos]) for i in range(m))] = data[pos]
    return out


def _order_1d(values, ascend):
    """Stable order: equal values keep index order, in both directions."""
    key = (lambda i: values[i]) if ascend else (lambda i: -values[i])
    return sorted(range(len(values)), key=key)


def _along(data, axis, fn, out_len=None):
    """Apply ``fn(1-d values) -> 1-d`` along ``axis`` (None: the flattened data)."""
    if axis is None:
        return np.asarray(fn(data.ravel()))
    axis %= data.ndim
    moved = np.moveaxis(data, axis, -1)
    n = moved.shape[-1] if out_len is None else out_len
    out = np.empty(moved.shape[:-1] + (n,), np.float64)
    for pos in np.ndindex(*moved.shape[:-1]):
        out[pos] = fn(moved[pos])
    return np.moveaxis(out, -1, axis)


def ref_sort(data, axis=-1, is_ascend=True):
    return _along(data, axis, lambda v: [v[i] for i in _order_1d(v, is_ascend)])


def ref_argsort(data, axis=-1, is_ascend=True, dtype="float32"):
    return _along(data, axis, lambda v: _order_1d(v, is_ascend))


def ref_topk(data, axis=-1, k=1, ret_typ="indices", is_ascend=False, dtype="float32"):
    size = data.size if axis is None else data.shape[axis]
    k = k if k > 0 else size
    if ret_typ == "mask":
        def mask(v):
            m = np.zeros(len(v))
            m[_order_1d(v, is_ascend)[:k]] = 1
            return m
        return _along(data, axis, mask).reshape(data.shape)
    idx = _along(data, axis, lambda v: _order_1d(v, is_ascend)[:k], k)
    val = _along(data, axis, lambda v: [v[i] for i in _order_1d(v, is_ascend)[:k]], k)
    return {"indices": idx, "value": val, "both": (val, idx)}[ret_typ]


def ref_backward_take(ograd, indices, like, axis=0, mode="clip"):
    axis %= like.ndim
    indices = np.asarray(indices)
    out = np.zeros(like.shape)
    lead = (slice(None),) * axis
    for pos in np.ndindex(*indices.shape):
        out[lead + (_index(indices[pos], like.shape[axis], mode),)] += ograd[lead + pos]
    return out


def ref_backward_pick(ograd, index, like, axis=-1, keepdims=False, mode="clip"):
    axis %= like.ndim
    reduced = like.shape[:axis] + like.shape[axis + 1:]
    index, ograd = np.asarray(index).reshape(reduced), ograd.reshape(reduced)
    out = np.zeros(like.shape)
    for pos in np.ndindex(*reduced):
        out[pos[:axis] + (_index(index[pos], like.shape[axis], mode),) + pos[axis:]] += ograd[pos]
    return out


def ref_backward_gather_nd(ograd, indices, like):
    m = indices.shape[0]
    out = np.zeros(like.shape)
    for pos in np.ndindex(*indices.shape[1:]):
        out[tuple(int(indices[(i,) + pos]) for i in range(m))] += ograd[pos]
    return out


def ref_backward_topk(ograd, keys, axis=-1, k=0, is_ascend=False, reverse=False):
    """Send ograd back through the stable order of ``keys`` (or select by it: reverse)."""
    flat_axis = -1 if axis is None else axis % keys.ndim
    moved = np.moveaxis(keys.reshape(-1) if axis is None else keys, flat_axis, -1)
    size = moved.shape[-1]
    k = k if k > 0 else size
    if reverse:
        x = np.moveaxis(ograd.reshape(-1) if axis is None else ograd, flat_axis, -1)
        out = np.empty(moved.shape[:-1] + (k,))
        for pos in np.ndindex(*moved.shape[:-1]):
            out[pos] = [x[pos][i] for i in _order_1d(moved[pos], is_ascend)[:k]]
        return np.moveaxis(out, -1, flat_axis)
    g = np.moveaxis(ograd, flat_axis, -1)
    out = np.zeros(moved.shape)
    for pos in np.ndindex(*moved.shape[:-1]):
        for r, i in enumerate(_order_1d(moved[pos], is_ascend)[:k]):
            out[pos + (i,)] = g[pos + (r,)]
    out = np.moveaxis(out, -1, flat_axis)
    return out.reshape(keys.shape)


# -- cases --------------------------------------------------------------------------

TIES = Const([[3.0, 1.0, 3.0, 2.0, 1.0, 3.0], [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]])

CASES = []
for mode in ("clip", "wrap"):
    CASES += [
        OpCase("take", [(5,), Int((3,), -7, 12)], ref_take, {"mode": mode}),
        OpCase("take", [(4, 3), Int((2, 2), -7, 12)], ref_take, {"axis": 0, "mode": mode}),
        OpCase("take", [(4, 3), float_index(-5, 9, (5,))], ref_take, {"axis": 1, "mode": mode}),
        OpCase("take", [(2, 3, 4), Int((2, 3), -9, 9, "int32")], ref_take,
               {"axis": -1, "mode": mode}),
        OpCase("take", [(2, 3, 4), float_index(-9, 9, (2, 1))], ref_take,
               {"axis": -2, "mode": mode}),
    ]
CASES += [
    OpCase("take", [(4, 3), Int((), 0, 4)], ref_take, name="0d-index"),
    OpCase("take", [(4, 3), Int((0,), 0, 4)], ref_take, name="empty-index"),
    OpCase("take", [(3, 0, 2), Int((4,), 0, 3)], ref_take, name="zero-size-data"),
    OpCase("take", [(3, 0), Int((0,), 0, 1)], ref_take, {"axis": 1}, name="zero-size-axis"),
    OpCase("take", [(1,), Int((3,), -2, 3)], ref_take, {"mode": "wrap"}),
    OpCase("take", [(5, 2), Int((2, 3), -5, 5)], ref_take, {"mode": "raise"}),
    OpCase("take", [(5, 2), float_index(-2, 2, (4,))], ref_take, {"axis": 1, "mode": "raise"}),
]
for mode in ("clip", "wrap"):
    CASES += [
        OpCase("pick", [(3, 4), Int((3,), -6, 9)], ref_pick, {"mode": mode}),
        OpCase("pick", [(3, 4), float_index(-6, 9, (4,))], ref_pick, {"axis": 0, "mode": mode}),
        OpCase("pick", [(2, 3, 4), Int((2, 1, 4), -2, 5)], ref_pick,
               {"axis": 1, "keepdims": True, "mode": mode}),
        OpCase("pick", [(2, 3, 4), float_index(0, 4, (2, 3))], ref_pick,
               {"axis": -1, "keepdims": True, "mode": mode}),
    ]
CASES += [
    OpCase("pick", [(5,), Int((), 0, 5)], ref_pick, name="1d"),
    OpCase("pick", [(1, 1), Int((1, 1), 0, 1)], ref_pick, {"keepdims": True}),
    OpCase("pick", [(0, 4), Int((0,), 0, 4)], ref_pick, name="zero-size"),
    OpCase("pick", [(3, 4), Int((3,), -4, 4)], ref_pick, {"mode": "raise"}),
    OpCase("one_hot", [Int((5,), -2, 7)], ref_one_hot, {"depth": 5}, name="out-of-range"),
    OpCase("one_hot", [Int((2, 3), 0, 4, "int32")], ref_one_hot,
           {"depth": 4, "on_value": 2.5, "off_value": -1.0}),
    OpCase("one_hot", [float_index(0, 3, (4,))], ref_one_hot, {"depth": 3, "dtype": "float64"}),
    OpCase("one_hot", [float_index(0, 6, (2, 2))], ref_one_hot, {"depth": 6, "dtype": "int32"}),
    OpCase("one_hot", [Int((), 0, 3)], ref_one_hot, {"depth": 3}, name="0d"),
    OpCase("one_hot", [Int((0, 2), 0, 3)], ref_one_hot, {"depth": 3}, name="zero-size"),
    OpCase("one_hot", [Int((3,), 0, 1)], ref_one_hot, {"depth": 1}),
    OpCase("gather_nd", [(3, 4, 5), Int((1, 4), -3, 3)], ref_gather_nd, grad=False),
    OpCase("gather_nd", [(3, 4, 5), Int((2, 2, 3), 0, 3)], ref_gather_nd, grad=False),
    OpCase("gather_nd", [(3, 4, 5), Int((3, 2), -3, 3, "int32")], ref_gather_nd, grad=False),
    # repeated positions: their gradients add up
    OpCase("gather_nd", [(2, 3, 2), Int((2, 3, 2), 0, 2)], ref_gather_nd, name="grad"),
    OpCase("gather_nd", [(2, 3, 2), Int((3, 4), -2, 2, "int32")], ref_gather_nd, name="grad"),
    OpCase("gather_nd", [(3, 2), Const([[1, 1, 1, 0], [0, 0, 0, 1]])], ref_gather_nd,
           name="repeated"),
    OpCase("gather_nd", [(3, 4), float_index(0, 3, (2, 5))], ref_gather_nd),
    OpCase("gather_nd", [(3, 4), float_index(-3, 3, (2,))], ref_gather_nd, name="1-position"),
    OpCase("gather_nd", [(3, 4, 5), Int((2, 0), 0, 3)], ref_gather_nd, name="zero-size"),
    OpCase("gather_nd", [(1,), Int((1, 3), 0, 1)], ref_gather_nd),
    OpCase("scatter_nd", [(5,), unique_positions((3, 4), 2, 5, "int64")], ref_scatter_nd,
           {"shape": (3, 4)}),
    OpCase("scatter_nd", [(4, 3), unique_positions((6, 3), 1, 4)], ref_scatter_nd,
           {"shape": (6, 3)}, name="float-index"),
    OpCase("scatter_nd", [(3, 2), unique_positions((3, 4, 2), 2, 3, "int32")], ref_scatter_nd,
           {"shape": (3, 4, 2)}),
    OpCase("scatter_nd", [(0,), unique_positions((3, 4), 2, 0, "int64")], ref_scatter_nd,
           {"shape": (3, 4)}, name="zero-size"),
]
SORT_SHAPES = [((5,), -1), ((3, 4), -1), ((3, 4), 0), ((2, 3, 4), 1), ((2, 3, 4), None),
               ((0, 3), 0), ((3, 0), -1), ((1, 1), None)]
for shape, axis in SORT_SHAPES:
    for ascend in (True, False):
        CASES += [OpCase("sort", [shape], ref_sort, {"axis": axis, "is_ascend": ascend}),
                  OpCase("argsort", [shape], ref_argsort, {"axis": axis, "is_ascend": ascend})]
CASES += [
    OpCase("sort", [TIES], ref_sort, {"is_ascend": False}, grad=False, name="ties"),
    OpCase("argsort", [TIES], ref_argsort, name="ties"),
    OpCase("argsort", [TIES], ref_argsort, {"is_ascend": False}, name="ties"),
    OpCase("argsort", [TIES], ref_argsort, {"axis": 0, "dtype": "int32"}, name="ties"),
    OpCase("argsort", [(3, 5)], ref_argsort, {"dtype": "int64"}),
    OpCase("argsort", [(2, 7)], ref_argsort, {"dtype": "uint8", "is_ascend": False}),
]
for ret_typ in ("indices", "value", "both", "mask"):
    CASES += [
        OpCase("topk", [(3, 5)], ref_topk, {"ret_typ": ret_typ}),
        OpCase("topk", [(3, 5)], ref_topk, {"ret_typ": ret_typ, "k": 2, "axis": 0}),
        OpCase("topk", [(2, 3, 4)], ref_topk, {"ret_typ": ret_typ, "k": 3, "is_ascend": True}),
        OpCase("topk", [(2, 3, 4)], ref_topk, {"ret_typ": ret_typ, "k": 4, "axis": None}),
        OpCase("topk", [(2, 3)], ref_topk, {"ret_typ": ret_typ, "k": 0, "axis": 1}, name="all"),
        OpCase("topk", [TIES], ref_topk, {"ret_typ": ret_typ, "k": 3}, grad=False, name="ties"),
        OpCase("topk", [TIES], ref_topk, {"ret_typ": ret_typ, "k": 2, "is_ascend": True},
               grad=False, name="ties"),
        OpCase("topk", [(0, 4)], ref_topk, {"ret_typ": ret_typ, "k": 2}, name="zero-size"),
    ]
CASES += [OpCase("topk", [(3, 6)], ref_topk, {"ret_typ": "both", "k": 3, "dtype": "int32"}),
          OpCase("topk", [(3, 6)], ref_topk, {"ret_typ": "indices", "dtype": "float64"})]

# The backward ops, run forward on their own; their gradients (for higher orders)
# are checked numerically like any op's. `like`/`keys` get no gradient (zero).
for mode in ("clip", "wrap", "raise"):
    CASES += [
        OpCase("_backward_take", [(3,), Int((3,), -5, 5), (5,)], ref_backward_take,
               {"mode": mode}),
        OpCase("_backward_take", [(3, 2, 2), Int((2, 2), -3, 3), (3, 3)], ref_backward_take,
               {"axis": 1, "mode": mode}),
        OpCase("_backward_pick", [(3,), Int((3,), -4, 4), (3, 4)], ref_backward_pick,
               {"mode": mode}),
        OpCase("_backward_pick", [(2, 1, 4), float_index(-3, 3, (2, 4)), (2, 3, 4)],
               ref_backward_pick, {"axis": 1, "keepdims": True, "mode": mode}),
    ]
CASES += [
    OpCase("_backward_take", [(2, 3, 4), Int((3,), 0, 2), (2, 2, 4)], ref_backward_take,
           {"axis": 1}, name="repeated"),
    OpCase("_backward_take", [(0, 3), Int((0,), 0, 4), (4, 3)], ref_backward_take,
           name="empty-index"),
    OpCase("_backward_pick", [(0,), Int((0,), 0, 4), (0, 4)], ref_backward_pick,
           name="zero-size"),
    OpCase("_backward_gather_nd", [(4,), Const([[0, 2, 0, -1], [1, 1, 1, 0]]), (3, 2)],
           ref_backward_gather_nd, name="repeated"),
    OpCase("_backward_gather_nd", [(2, 3, 2), Int((1, 2, 3), 0, 2), (2, 2)],
           ref_backward_gather_nd),
    OpCase("_backward_gather_nd", [(0, 2), Int((1, 0), 0, 2), (3, 2)], ref_backward_gather_nd,
           name="zero-size"),
]
for axis, k, ascend in ((-1, 0, True), (0, 2, False), (None, 3, False), (1, 1, True)):
    for reverse in (False, True):
        selected = {-1: (2, 4), 0: (2, 4), None: (3,), 1: (3, 1)}[axis]
        keys_shape = (2, 4) if axis in (-1, None) else (3, 4)
        CASES.append(OpCase(
            "_backward_topk", [keys_shape if reverse else selected, keys_shape],
            ref_backward_topk, {"axis": axis, "k": k, "is_ascend": ascend, "reverse": reverse}))
CASES += [
    OpCase("_backward_topk", [(0, 2), (0, 3)], ref_backward_topk, {"k": 2}, name="zero-size"),
    OpCase("_backward_topk", [(2, 6), TIES], ref_backward_topk, {"is_ascend": True}, grad=False,
           name="ties"),
    OpCase("_backward_topk", [(2, 3), TIES], ref_backward_topk, {"k": 3}, grad=False,
           name="ties"),
]


@pytest.mark.parametrize("case,dtype", forward_params(CASES))
def test_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)


@pytest.mark.parametrize("case", gradient_params(CASES))
def test_gradient(case, ctx):
    run_gradient(case, ctx)


def test_output_dtypes(ctx):
    x = nd.array(np.arange(6).reshape(2, 3), ctx=ctx, dtype="float64")
    i = nd.array([0, 1], ctx=ctx, dtype="int32")
    assert nd.take(x, i).dtype == np.float64
    assert nd.pick(x, nd.array([2, 0], ctx=ctx)).dtype == np.float64
    assert nd.gather_nd(x, nd.array([[1], [2]], ctx=ctx)).dtype == np.float64
    assert nd.one_hot(i, depth=3).dtype == np.float32
    assert nd.one_hot(i, depth=3, dtype="int64").dtype == np.int64
    assert nd.argsort(x).dtype == np.float32
    assert nd.argsort(x, dtype="int32").dtype == np.int32
    value, index = nd.topk(x, k=2, ret_typ="both", dtype="int64")
    assert (value.dtype, index.dtype) == (np.float64, np.int64)
    assert nd.topk(x, ret_typ="mask").dtype == np.float64


def test_take_int_data(ctx):
    table = nd.array([[1, 2], [3, 4], [5, 6]], ctx=ctx, dtype="int32")
    got = nd.take(table, nd.array([2.9, -1.5, 0.2], ctx=ctx))  # floats truncate to 2, -1, 0
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got.asnumpy(), [[5, 6], [1, 2], [1, 2]])


def test_take_out_and_views(ctx):
    a = nd.array(np.arange(12).reshape(4, 3), ctx=ctx)
    out = nd.zeros((4, 4), ctx=ctx)
    nd.take(a, nd.array([0, 2], ctx=ctx), axis=1, out=out[:, 1:3])
    expected = np.zeros((4, 4))
    expected[:, 1:3] = np.arange(12).reshape(4, 3)[:, [0, 2]]
    np.testing.assert_array_equal(out.asnumpy(), expected)


def test_aliases_and_flags():
    for name in ("take", "pick", "gather_nd", "scatter_nd", "sort", "topk", "_backward_take",
                 "_backward_pick", "_backward_gather_nd", "_backward_topk"):
        assert get_op(name).differentiable and get_op(name).gradient is not None
    assert get_op("_backward_sort") is get_op("_backward_topk")
    for name in ("one_hot", "argsort"):
        assert not get_op(name).differentiable
    assert get_op("topk").num_outputs(get_op("topk").parse_attrs({"ret_typ": "both"})) == 2
    assert get_op("topk").output_names(get_op("topk").parse_attrs({})) == ("output",)


# -- errors ---------------------------------------------------------------------------

def test_take_raise_mode_out_of_range(ctx):
    a = nd.array(np.arange(10).reshape(5, 2), ctx=ctx)
    got = nd.take(a, nd.array([1, 7, 2], ctx=ctx), mode="raise")  # the call returns at once
    with pytest.raises(EngineError, match=r"take.*index 7.*axis 0 of size 5.*\[-5, 4\]") as info:
        got.asnumpy()
    assert info.value.op_name == "take"
    with pytest.raises(EngineError, match=r"take.*index -3 .*size 2"):
        nd.take(a, nd.array([-3.0], ctx=ctx), axis=1, mode="raise").asnumpy()


def test_pick_raise_mode_out_of_range(ctx):
    x = nd.array(np.ones((2, 3)), ctx=ctx)
    with pytest.raises(EngineError, match=r"pick.*index 3 .*size 3"):
        nd.pick(x, nd.array([0, 3], ctx=ctx), mode="raise").asnumpy()


def test_gather_scatter_out_of_range(ctx):
    x = nd.array(np.ones((2, 3)), ctx=ctx)
    with pytest.raises(EngineError, match=r"gather_nd.*index 3 .*dimension 1.*size 3"):
        nd.gather_nd(x, nd.array([[0, 1], [1, 3]], ctx=ctx)).asnumpy()
    with pytest.raises(EngineError, match=r"scatter_nd.*index -5 .*dimension 0.*size 4"):
        nd.scatter_nd(nd.array([1, 2], ctx=ctx), nd.array([[-5, 1]], ctx=ctx),
                      shape=(4,)).asnumpy()


def test_one_hot_bad_depth():
    for depth in (0, -2):
        with pytest.raises(ParamError, match=rf"one_hot.*depth={depth}.*>= 1"):
            nd.one_hot(nd.array([1, 2]), depth=depth)
    with pytest.raises(ParamError, match=r"one_hot.*missing.*depth"):
        nd.one_hot(nd.array([1, 2]))


def test_take_axis_out_of_range():
    a = nd.zeros((2, 3))
    with pytest.raises(ShapeError, match=r"(?s)take.*axis=2.*\[-2, 1\].*a=\(2, 3\)"):
        nd.take(a, nd.array([0]), axis=2)
    with pytest.raises(ShapeError, match=r"take.*axis=-3"):
        nd.take(a, nd.array([0]), axis=-3)
    with pytest.raises(ShapeError, match=r"take.*size 0"):
        nd.take(nd.zeros((0, 3)), nd.array([0]))
    with pytest.raises(ParamError, match=r"take.*mode='rase'.*'raise'"):
        nd.take(a, nd.array([0]), mode="rase")


def test_gather_nd_too_many_index_rows():
    with pytest.raises(ShapeError, match=r"(?s)gather_nd.*\(3, 4\).*\(2, 3\).*"
                                          r"data=\(2, 3\).*indices=\(3, 4\)") as info:
        nd.gather_nd(nd.zeros((2, 3)), nd.zeros((3, 4)))
    assert info.value.op == "gather_nd" and info.value.argument == "indices"
    with pytest.raises(ShapeError, match=r"gather_nd.*at least 1 dimension"):
        nd.gather_nd(nd.zeros((2, 3)), nd.zeros(()))


def test_scatter_nd_bad_shapes():
    with pytest.raises(ShapeError, match=r"(?s)scatter_nd.*data has shape \(3,\).*need \(2,\)"):
        nd.scatter_nd(nd.zeros((3,)), nd.zeros((2, 2)), shape=(4, 4))
    with pytest.raises(ShapeError, match=r"scatter_nd.*\(3, 2\).*\(4, 4\)"):
        nd.scatter_nd(nd.zeros((2,)), nd.zeros((3, 2)), shape=(4, 4))


def test_pick_bad_index_shape():
    with pytest.raises(ShapeError, match=r"pick.*index has shape \(4,\).*\(2, 3\).*needs \(2,\)"):
        nd.pick(nd.zeros((2, 3)), nd.zeros((4,)))


def test_sort_family_errors():
    x = nd.zeros((2, 3))
    with pytest.raises(ShapeError, match=r"topk.*k=4.*3 elements.*axis -1"):
        nd.topk(x, k=4)
    with pytest.raises(ShapeError, match=r"sort.*axis=2"):
        nd.sort(x, axis=2)
    with pytest.raises(ParamError, match=r"argsort.*axis=\(0, 1\)"):
        nd.argsort(x, axis=(0, 1))
    with pytest.raises(DTypeError, match=r"argsort.*uint8.*299"):
        nd.argsort(nd.zeros((300,)), dtype="uint8")
    with pytest.raises(ParamError, match=r"topk.*ret_typ='values'.*'value'"):
        nd.topk(x, ret_typ="values")
    with pytest.raises(ParamError, match=r"argsort.*dtype"):
        nd.argsort(x, dtype="int8")


def test_bad_index_dtype():
    with pytest.raises(DTypeError, match=r"take.*integer or float indices.*bool"):
        nd.take(nd.zeros((3,)), nd.array([True], dtype="bool"))


REQUEST_CASES = [
    ("take", [np.arange(12.0).reshape(4, 3), np.array([3.0, -1.0, 1.0])], {"axis": 0}),
    ("pick", [np.arange(12.0).reshape(4, 3), np.array([0, 2, 1, 9])], {"mode": "wrap"}),
    ("one_hot", [np.array([0, 3, 1])], {"depth": 4, "on_value": 3.0}),
    ("gather_nd", [np.arange(12.0).reshape(4, 3), np.array([[0, 3], [2, -1]])], {}),
    ("scatter_nd", [np.array([1.0, 2.0]), np.array([[0, 3], [2, 1]])], {"shape": (4, 3)}),
    ("sort", [np.array([[3.0, 1.0, 2.0], [0.0, -1.0, 5.0]])], {}),
    ("sort", [np.array([[3.0, 1.0, 2.0], [0.0, -1.0, 5.0]])], {"is_ascend": False, "axis": 0}),
    ("argsort", [np.array([[3.0, 1.0, 2.0], [0.0, -1.0, 5.0]])], {"axis": None}),
    ("topk", [np.array([[3.0, 1.0, 2.0], [0.0, -1.0, 5.0]])], {"k": 2, "ret_typ": "both"}),
    ("topk", [np.array([[3.0, 1.0, 2.0], [0.0, -1.0, 5.0]])], {"ret_typ": "mask", "axis": 0}),
    ("_backward_take", [np.ones((2, 3)), np.array([3.0, 3.0]), np.zeros((4, 3))], {}),
    ("_backward_pick", [np.arange(4.0), np.array([0, 2, 1, 9]), np.zeros((4, 3))],
     {"mode": "wrap"}),
    ("_backward_gather_nd", [np.arange(2.0), np.array([[0, 0], [2, 2]]), np.zeros((4, 3))], {}),
    ("_backward_topk", [np.array([[1.0, 2.0], [3.0, 4.0]]),
                        np.array([[3.0, 1.0, 2.0], [0.0, -1.0, 5.0]])], {"k": 2}),
    ("_backward_topk", [np.arange(6.0).reshape(2, 3),
                        np.array([[3.0, 1.0, 2.0], [0.0, -1.0, 5.0]])],
     {"axis": None, "k": 4, "reverse": True}),
]


@pytest.mark.parametrize("op,inputs,params", REQUEST_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(REQUEST_CASES)])
@pytest.mark.parametrize("req", ["add", "null"])
def test_kernel_requests(op, inputs, params, req):
    """Each kernel honours req: 'add' accumulates into the output, 'null' leaves it."""
    opdef = get_op(op)
    attrs = opdef.parse_attrs(params)
    _, shapes = opdef.infer_shape(attrs, [x.shape for x in inputs])
    _, dtypes = opdef.infer_type(attrs, [x.dtype for x in inputs])
    expected = [np.empty(s, d) for s, d in zip(shapes, dtypes)]
    opdef.forward_cpu(np, attrs, inputs, expected, ["write"] * len(expected))
    outs = [np.full(s, 0.25 if np.dtype(d).kind == "f" else 1, d) for s, d in zip(shapes, dtypes)]
    before = [o.copy() for o in outs]
    opdef.forward_cpu(np, attrs, inputs, outs, [req] * len(outs))
    for o, b, e in zip(outs, before, expected):
        np.testing.assert_array_equal(o, b + e if req == "add" else b)


# -- gradients: higher orders, executors ----------------------------------------------

def _f64(value, ctx, grad=False):
    x = nd.array(np.asarray(value, dtype=np.float64), ctx=ctx, dtype="float64")
    if grad:
        x.attach_grad()
    return x


#: (op call, x, ograd of its output, the forward applied to another array)
SECOND_ORDER = [
    ("take", lambda x: nd.take(x, nd.array([2, 0, 2, 5]), axis=1, mode="wrap"), (2, 3), (2, 4),
     lambda w: ref_take(w, np.array([2, 0, 2, 5]), axis=1, mode="wrap")),
    ("pick", lambda x: nd.pick(x, nd.array([1, 0, 9]), axis=0, mode="clip"), (2, 3), (3,),
     lambda w: ref_pick(w, np.array([1, 0, 9]), axis=0)),
    ("gather_nd", lambda x: nd.gather_nd(x, nd.array([[0, 1, 0], [2, 2, 2]])), (2, 3), (3,),
     lambda w: ref_gather_nd(w, np.array([[0, 1, 0], [2, 2, 2]]))),
    ("scatter_nd", lambda x: nd.scatter_nd(x, nd.array([[0, 1], [2, 0]]), shape=(2, 3)), (2,),
     (2, 3), lambda w: ref_scatter_nd(w, np.array([[0, 1], [2, 0]]), (2, 3))),
]


@pytest.mark.parametrize("name,fn,x_shape,out_shape,apply", SECOND_ORDER,
                         ids=[c[0] for c in SECOND_ORDER])
def test_second_order_linear_ops(name, fn, x_shape, out_shape, apply, ctx, rng):
    """y = f(x) is linear: dy/dx . h = f^T(h), whose derivative in h is f again, in x zero."""
    x = _f64(rng.uniform(-1, 1, x_shape), ctx, grad=True)
    h = _f64(rng.uniform(-1, 1, out_shape), ctx, grad=True)
    w = rng.uniform(-1, 1, x_shape)
    with autograd.record():
        y = fn(x)
        g = autograd.grad(y, x, head_grads=h, create_graph=True)
    # first order: <f^T(h), w> == <h, f(w)> for every w
    assert np.isclose((g.asnumpy() * w).sum(), (h.asnumpy() * apply(w)).sum())
    g.backward(_f64(w, ctx))
    assert_almost_equal(h.grad, apply(w), names=("d2/dh dx", "f(w)"))
    assert_almost_equal(x.grad, np.zeros(x_shape), names=("d2/dx2", "zero"))


@pytest.mark.parametrize("axis,is_ascend", [(-1, True), (0, False), (None, True)])
def test_second_order_sort(axis, is_ascend, ctx, rng):
    v = rng.permutation(12).reshape(3, 4) * 0.5 - 2  # no ties
    x = _f64(v, ctx, grad=True)
    out_shape = (12,) if axis is None else (3, 4)
    h = _f64(rng.uniform(-1, 1, out_shape), ctx, grad=True)
    w = rng.uniform(-1, 1, (3, 4))
    with autograd.record():
        y = nd.sort(x, axis=axis, is_ascend=is_ascend)
        g = autograd.grad(y, x, head_grads=h, create_graph=True)
    assert_almost_equal(g, ref_backward_topk(h.asnumpy(), v, axis, 0, is_ascend))
    g.backward(_f64(w, ctx))
    # d/dh <g, w> selects w in x's sorted order: the sort of w by the keys x
    assert_almost_equal(h.grad, ref_backward_topk(w, v, axis, 0, is_ascend, reverse=True))
    assert_almost_equal(x.grad, np.zeros((3, 4)))


def test_third_order_topk(ctx, rng):
    """topk -> _backward_topk -> its reverse -> the forward direction again."""
    v = rng.permutation(10).reshape(2, 5).astype(np.float64)
    x = _f64(v, ctx, grad=True)
    h = _f64(rng.uniform(-1, 1, (2, 2)), ctx, grad=True)
    w = _f64(rng.uniform(-1, 1, (2, 5)), ctx, grad=True)
    u = rng.uniform(-1, 1, (2, 2))
    with autograd.record():
        y = nd.topk(x, k=2, ret_typ="value")
        g = autograd.grad(y, x, head_grads=h, create_graph=True)
        gg = autograd.grad(g, h, head_grads=w, create_graph=True)
    # d/dh <g, w>: w selected at x's top-2 positions
    assert_almost_equal(gg, ref_backward_topk(w.asnumpy(), v, k=2, reverse=True))
    gg.backward(_f64(u, ctx))
    assert_almost_equal(w.grad, ref_backward_topk(u, v, k=2))


def test_topk_gradient_by_ret_typ(ctx):
    v = np.array([[0.3, -1.0, 2.0, 0.7], [5.0, 4.0, -3.0, 1.0]])
    for ret_typ in ("value", "both"):
        x = _f64(v, ctx, grad=True)
        with autograd.record():
            out = nd.topk(x, k=2, ret_typ=ret_typ, is_ascend=True)
            value = out[0] if ret_typ == "both" else out
        value.backward(_f64([[1.0, 2.0], [3.0, 4.0]], ctx))
        assert_almost_equal(x.grad, [[2.0, 1.0, 0.0, 0.0], [0.0, 0.0, 3.0, 4.0]])
    for ret_typ in ("indices", "mask"):
        x = _f64(v, ctx, grad=True)
        with autograd.record():
            out = nd.topk(x, k=2, ret_typ=ret_typ)
        out.backward()
        assert_almost_equal(x.grad, np.zeros_like(v))


def test_executor_take_embedding(ctx):
    """Embedding-style take with repeated rows, under grad_req 'write' and 'add'."""
    weight = np.arange(12.0).reshape(4, 3)
    idx = np.array([[1, 3], [1, 1], [9, -2]])  # clip: 9 -> 3, -2 -> 0
    og = np.arange(18.0).reshape(3, 2, 3) * 0.5
    expected = ref_backward_take(og, idx, weight)
    net = sym.take(sym.Variable("w"), sym.Variable("i"))
    for req in ("write", "add"):
        grad = nd.ones((4, 3), ctx=ctx)
        exe = net.bind(ctx, {"w": nd.array(weight, ctx=ctx), "i": nd.array(idx, ctx=ctx)},
                       args_grad={"w": grad}, grad_req={"w": req, "i": "null"})
        out = exe.forward(is_train=True)[0]
        assert_almost_equal(out, ref_take(weight, idx))
        exe.backward([nd.array(og, ctx=ctx)])
        assert_almost_equal(grad, expected + (1.0 if req == "add" else 0.0))
        assert_almost_equal(exe.grad_dict["w"], expected + (1.0 if req == "add" else 0.0))


def test_executor_gather_scatter_sort(ctx):
    """gather_nd accumulates repeated positions; scatter_nd's gradient gathers; sort permutes."""
    data = np.arange(6.0).reshape(2, 3)
    idx = np.array([[0, 1, 0, 0], [2, 0, 2, 2]])
    a, b = sym.Variable("a"), sym.Variable("b")
    net = sym.Group([sym.gather_nd(a, sym.Variable("i")),
                     sym.sort(b, axis=0, is_ascend=False),
                     sym.scatter_nd(a, sym.Variable("j"), shape=(4, 3))])
    keys = np.array([[0.5, 3.0, -1.0], [2.0, 1.0, 0.0]])
    j = np.array([[3, 0]])
    args = {"a": nd.array(data, ctx=ctx), "b": nd.array(keys, ctx=ctx),
            "i": nd.array(idx, ctx=ctx), "j": nd.array(j, ctx=ctx)}
    grads = {"a": nd.zeros((2, 3), ctx=ctx), "b": nd.zeros((2, 3), ctx=ctx)}
    exe = net.bind(ctx, args, args_grad=grads,
                   grad_req={"a": "write", "b": "write", "i": "null", "j": "null"})
    exe.forward(is_train=True)
    og = [np.array([1.0, 2.0, 4.0, 8.0]), np.arange(6.0).reshape(2, 3),
          np.arange(12.0).reshape(4, 3)]
    exe.backward([nd.array(o, ctx=ctx) for o in og])
    # a at (0, 2) is read three times; a also feeds scatter_nd (rows 3 and 0 of og[2])
    expected_a = ref_backward_gather_nd(og[0], idx, data) + og[2][j[0]]
    assert_almost_equal(grads["a"], expected_a)
    assert_almost_equal(grads["b"], ref_backward_topk(og[1], keys, axis=0))
    assert_almost_equal(grads["b"], [[3.0, 1.0, 5.0], [0.0, 4.0, 2.0]])
