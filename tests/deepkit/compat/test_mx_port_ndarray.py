"""Checks MXNet 1.x behaviour of ``mx.nd``: indexing and slice assignment, reductions,
broadcasting, dtypes, copies between arrays and contexts, and ``mx.nd.save``/``load``.

Every expected value comes from numpy.
"""
import numpy as np
import pytest

from deepkit.compat import mxnet as mx


def _cube():
    """A (2, 3, 4) float32 array of distinct values and its NDArray."""
    values = (np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 7.5) * 0.5
    return values, mx.nd.array(values)


# -- indexing --------------------------------------------------------------------------
@pytest.mark.parametrize("index", [
    (1,), (-1, 2), (0, slice(1, None), slice(None, None, 2)), (Ellipsis, 3),
    (slice(None), -2), (1, slice(None, None, -1)), (None, 0), (slice(0, 1), None, 1),
])
def test_basic_indexing_matches_numpy(index):
    values, x = _cube()
    got = x[index]
    np.testing.assert_array_equal(got.asnumpy(), values[index])
    assert got.shape == values[index].shape


def test_advanced_indexing_with_ndarray_and_lists_matches_numpy():
    values, x = _cube()
    np.testing.assert_array_equal(x[mx.nd.array([1, 0, 1])].asnumpy(), values[[1, 0, 1]])
    np.testing.assert_array_equal(x[[1, 0], [2, 1]].asnumpy(), values[[1, 0], [2, 1]])


@pytest.mark.parametrize("index, value_shape", [
    ((0,), (1, 1, 4)),        # a (1, 1, 4) value fills a (3, 4) block: leading 1s dropped
    ((slice(None), 1), (4,)),
    ((1, slice(0, 2)), (2, 1)),
    ((Ellipsis, 2), (1, 3)),
])
def test_slice_assignment_broadcasts_ndarray_values(index, value_shape):
    values, _ = _cube()
    target = mx.nd.array(values)
    value = np.arange(np.prod(value_shape), dtype=np.float32).reshape(value_shape) + 100
    target[index] = mx.nd.array(value)
    expected = values.copy()
    region = expected[index].shape
    while value.ndim > len(region) and value.shape[0] == 1:
        value = value[0]
    expected[index] = np.broadcast_to(value, region)
    np.testing.assert_array_equal(target.asnumpy(), expected)


def test_slice_assignment_of_scalars_numpy_arrays_and_steps():
    target = mx.nd.zeros((3, 5))
    expected = np.zeros((3, 5), np.float32)
    target[1] = 2.5
    expected[1] = 2.5
    target[-1, ::2] = -4
    expected[-1, ::2] = -4
    target[0:2, 3] = np.array([7, 9], np.float32)
    expected[0:2, 3] = [7, 9]
    np.testing.assert_array_equal(target.asnumpy(), expected)


def test_full_slice_assignment_into_a_one_element_array():
    target = mx.nd.zeros((1,))
    target[:] = 3.5
    np.testing.assert_array_equal(target.asnumpy(), np.array([3.5], np.float32))


def test_assignment_broadcasts_a_column_across_rows():
    target = mx.nd.zeros((2, 3))
    target[:] = mx.nd.array([[1.0], [-2.0]])
    np.testing.assert_array_equal(target.asnumpy(), [[1, 1, 1], [-2, -2, -2]])


def test_iterating_an_ndarray_yields_its_rows():
    values = np.arange(6, dtype=np.float32).reshape(3, 2)
    rows = [r.asnumpy() for r in mx.nd.array(values)]
    assert len(rows) == 3
    for got, want in zip(rows, values):
        np.testing.assert_array_equal(got, want)


# -- reductions ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "prod"])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions_with_axis_and_keepdims_match_numpy(name, axis, keepdims):
    values, x = _cube()
    got = getattr(mx.nd, name)(x, axis=axis, keepdims=keepdims)
    expected = getattr(np, name)(values.astype(np.float64), axis=axis, keepdims=keepdims)
    # MXNet gives shape (1,) for a reduction over every axis without keepdims
    expected = np.atleast_1d(expected)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.asnumpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("axis", [1, (0, 2), -1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_exclude_reduces_over_every_other_axis(axis, keepdims):
    values, x = _cube()
    kept = {a % 3 for a in (axis if isinstance(axis, tuple) else (axis,))}
    reduced = tuple(a for a in range(3) if a not in kept)
    got = mx.nd.sum(x, axis=axis, keepdims=keepdims, exclude=True)
    expected = values.sum(axis=reduced, keepdims=keepdims)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.asnumpy(), expected, rtol=1e-6)


def test_norm_nansum_and_arg_reductions_match_numpy():
    values, x = _cube()
    np.testing.assert_allclose(mx.nd.norm(x).asnumpy(), [np.linalg.norm(values)], rtol=1e-6)
    np.testing.assert_allclose(mx.nd.norm(x, ord=1, axis=2).asnumpy(),
                               np.abs(values).sum(axis=2), rtol=1e-6)
    with_nan = np.array([1.5, np.nan, -4.0], np.float32)
    np.testing.assert_array_equal(mx.nd.nansum(mx.nd.array(with_nan)).asnumpy(), [-2.5])
    noisy = np.array([[3, 9, 1], [8, 2, 8]], np.float32)
    np.testing.assert_array_equal(mx.nd.argmax(mx.nd.array(noisy), axis=1).asnumpy(),
                                  noisy.argmax(axis=1))
    got = mx.nd.argmin(mx.nd.array(noisy), axis=0, keepdims=True)
    assert got.shape == (1, 3) and got.dtype == np.float32  # MXNet: indices as float32
    np.testing.assert_array_equal(got.asnumpy(), noisy.argmin(axis=0)[None])


# -- broadcasting ----------------------------------------------------------------------
@pytest.mark.parametrize("name, reference", [
    ("broadcast_add", np.add), ("broadcast_sub", np.subtract), ("broadcast_mul", np.multiply),
    ("broadcast_div", np.divide), ("broadcast_power", np.power),
    ("broadcast_maximum", np.maximum), ("broadcast_minimum", np.minimum),
    ("broadcast_equal", np.equal), ("broadcast_greater", np.greater),
    ("broadcast_lesser_equal", np.less_equal),
])
def test_broadcast_binary_ops_match_numpy(name, reference):
    lhs = np.array([[[1.5], [2.0]], [[3.0], [0.5]]], np.float32)  # (2, 2, 1)
    rhs = np.array([[0.5, 2.0, 3.0]], np.float32)                 # (1, 3)
    got = getattr(mx.nd, name)(mx.nd.array(lhs), mx.nd.array(rhs))
    expected = reference(lhs, rhs).astype(np.float32)
    assert got.shape == (2, 2, 3)
    np.testing.assert_allclose(got.asnumpy(), expected, rtol=1e-6)


def test_arithmetic_operators_broadcast_between_ndarrays():
    lhs = np.array([[1.0, -2.0, 3.0]], np.float32)
    rhs = np.array([[2.0], [4.0]], np.float32)
    a, b = mx.nd.array(lhs), mx.nd.array(rhs)
    for got, want in ((a + b, lhs + rhs), (a - b, lhs - rhs), (a * b, lhs * rhs),
                      (a / b, lhs / rhs)):
        np.testing.assert_allclose(got.asnumpy(), want, rtol=1e-6)


def test_broadcast_to_axis_and_like():
    row = np.array([[1.0, 2.0, 3.0]], np.float32)
    got = mx.nd.broadcast_to(mx.nd.array(row), shape=(4, 0))  # 0 keeps that axis
    np.testing.assert_array_equal(got.asnumpy(), np.broadcast_to(row, (4, 3)))
    col = np.array([[1.0], [5.0]], np.float32)
    got = mx.nd.broadcast_axis(mx.nd.array(col), axis=1, size=3)
    np.testing.assert_array_equal(got.asnumpy(), np.broadcast_to(col, (2, 3)))
    got = mx.nd.broadcast_like(mx.nd.array(row), mx.nd.zeros((2, 3)))
    np.testing.assert_array_equal(got.asnumpy(), np.broadcast_to(row, (2, 3)))


def test_shapes_that_do_not_broadcast_raise():
    with pytest.raises(mx.MXNetError, match="broadcast"):
        mx.nd.broadcast_add(mx.nd.ones((2, 3)), mx.nd.ones((4,))).wait_to_read()


# -- scalar operators ------------------------------------------------------------------
def test_scalar_operators_on_either_side_match_numpy():
    values = np.array([1.0, -2.0, 4.0], np.float32)
    x = mx.nd.array(values)
    pairs = [(10 - x, 10 - values), (12 / x, 12 / values), (2 ** x, 2 ** values),
             (x % 3, np.mod(values, 3)), (-x, -values), (x > 0.5, values > 0.5),
             (x == 4, values == 4), (abs(x), np.abs(values))]
    for got, want in pairs:
        np.testing.assert_allclose(got.asnumpy(), want.astype(np.float32), rtol=1e-6)


def test_in_place_operators_update_the_same_array():
    x = mx.nd.array([1.0, 2.0])
    original = x
    x += 3
    x *= mx.nd.array([2.0, 0.5])
    assert x is original
    np.testing.assert_array_equal(original.asnumpy(), [8.0, 2.5])


def test_round_rint_and_fix_follow_mxnet_rounding():
    values = np.array([0.5, 1.5, -0.5, 2.4, -1.7], np.float32)
    x = mx.nd.array(values)
    # round: halves away from zero; rint: halves down (n.5 -> n); fix: towards zero
    np.testing.assert_array_equal(mx.nd.round(x).asnumpy(),
                                  np.sign(values) * np.floor(np.abs(values) + 0.5))
    np.testing.assert_array_equal(mx.nd.rint(x).asnumpy(), np.ceil(values - 0.5))
    np.testing.assert_array_equal(mx.nd.fix(x).asnumpy(), np.fix(values))


# -- dtypes ----------------------------------------------------------------------------
def test_array_defaults_to_float32_even_from_float64_or_int_numpy():
    assert mx.nd.array([1, 2]).dtype == np.float32
    assert mx.nd.array(np.array([1.0, 2.0])).dtype == np.float32
    assert mx.nd.array(np.array([1, 2], np.int32)).dtype == np.float32
    assert mx.nd.array([1, 2], dtype="int64").dtype == np.int64


@pytest.mark.parametrize("dtype", ["float16", "float64", "uint8", "int8", "int32", "int64"])
def test_creation_functions_honour_dtype(dtype):
    for arr, fill in ((mx.nd.zeros((2, 3), dtype=dtype), 0), (mx.nd.ones((2, 3), dtype=dtype), 1),
                      (mx.nd.full((2, 3), 7, dtype=dtype), 7)):
        assert arr.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(arr.asnumpy(), np.full((2, 3), fill, dtype))
    like = mx.nd.ones_like(mx.nd.zeros((3,), dtype=dtype))
    assert like.dtype == np.dtype(dtype)


def test_astype_and_cast_truncate_like_numpy():
    values = np.array([1.7, -2.7, 250.2], np.float32)
    got = mx.nd.array(values).astype("int32")
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got.asnumpy(), values.astype(np.int32))
    got = mx.nd.cast(mx.nd.array([3.9, 250.0]), dtype="uint8")
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got.asnumpy(), [3, 250])
    same = mx.nd.ones((2,))
    assert same.astype("float32", copy=False) is same
    assert same.astype("float32") is not same


def test_integer_division_truncates_and_float16_keeps_its_dtype():
    got = mx.nd.array([7, -7], dtype="int32") / 2
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got.asnumpy(), [3, -3])  # C division, towards zero
    half = mx.nd.array([1.5, 2.0], dtype="float16") * 2
    assert half.dtype == np.float16
    np.testing.assert_array_equal(half.asnumpy(), np.array([3.0, 4.0], np.float16))


def test_mixing_dtypes_in_one_op_raises():
    with pytest.raises(mx.MXNetError, match="float64|float32"):
        (mx.nd.ones((2,), dtype="float64") + mx.nd.ones((2,))).wait_to_read()


def test_asscalar_needs_one_element():
    assert mx.nd.array([3.5]).asscalar() == 3.5
    assert mx.nd.array([[2]], dtype="int32").asscalar() == 2
    with pytest.raises(ValueError):
        mx.nd.array([1.0, 2.0]).asscalar()


def test_truth_value_of_one_element_and_of_many():
    assert not bool(mx.nd.array([0.0]))
    assert bool(mx.nd.array([-1.0]))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(mx.nd.array([0.0, 1.0]))


# -- copies and contexts ---------------------------------------------------------------
def test_copyto_an_ndarray_writes_into_it_and_detaches_from_the_source():
    src = mx.nd.array([1.0, 2.0, 3.0])
    dst = mx.nd.zeros((3,))
    assert src.copyto(dst) is dst
    src[:] = 0
    np.testing.assert_array_equal(dst.asnumpy(), [1, 2, 3])


def test_copyto_a_context_gives_a_new_array_there():
    src = mx.nd.array([[1.0, 2.0]])
    out = src.copyto(mx.cpu())
    assert out is not src and out.context == mx.cpu()
    out[:] = 9
    np.testing.assert_array_equal(src.asnumpy(), [[1, 2]])


def test_copyto_an_array_of_another_shape_raises():
    with pytest.raises(mx.MXNetError):
        mx.nd.ones((2,)).copyto(mx.nd.zeros((3,)))


def test_as_in_context_returns_the_same_array_on_its_own_context():
    x = mx.nd.ones((2,))
    assert x.as_in_context(mx.cpu()) is x
    assert x.context == mx.cpu(0) and str(x.context) == "cpu(0)"


def test_copy_is_independent():
    x = mx.nd.array([4.0, 5.0])
    y = x.copy()
    x[:] = 1
    assert y is not x
    np.testing.assert_array_equal(y.asnumpy(), [4, 5])


def test_size_ndim_len_and_transpose_property():
    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    x = mx.nd.array(values)
    assert (x.size, x.ndim, len(x)) == (12, 2, 3)
    np.testing.assert_array_equal(x.T.asnumpy(), values.T)


# -- reshape and friends ---------------------------------------------------------------
@pytest.mark.parametrize("shape, kwargs, expected", [
    ((0, -1), {}, (2, 12)),
    ((-3, 4), {}, (6, 4)),
    ((-4, 1, 2, -2), {}, (1, 2, 3, 4)),
    ((6, 4), {}, (6, 4)),
    ((-1, 0), {"reverse": True}, (6, 4)),
    ((0, -2), {}, (2, 3, 4)),
])
def test_reshape_special_values(shape, kwargs, expected):
    values, x = _cube()
    got = x.reshape(shape, **kwargs)
    assert got.shape == expected
    np.testing.assert_array_equal(got.asnumpy(), values.reshape(expected))


def test_reshape_accepts_the_shape_as_separate_integers():
    values, x = _cube()
    assert x.reshape(4, 6).shape == (4, 6)
    np.testing.assert_array_equal(x.reshape(4, 6).asnumpy(), values.reshape(4, 6))


def test_shape_ops_match_numpy():
    values, x = _cube()
    np.testing.assert_array_equal(mx.nd.transpose(x, axes=(1, 0, 2)).asnumpy(),
                                  values.transpose(1, 0, 2))
    np.testing.assert_array_equal(mx.nd.swapaxes(x, 0, 2).asnumpy(), values.swapaxes(0, 2))
    np.testing.assert_array_equal(mx.nd.expand_dims(x, axis=-1).asnumpy(), values[..., None])
    np.testing.assert_array_equal(mx.nd.flip(x, axis=1).asnumpy(), values[:, ::-1])
    np.testing.assert_array_equal(mx.nd.tile(x, reps=(1, 2, 1)).asnumpy(),
                                  np.tile(values, (1, 2, 1)))
    np.testing.assert_array_equal(mx.nd.repeat(x, repeats=2, axis=2).asnumpy(),
                                  values.repeat(2, axis=2))
    np.testing.assert_array_equal(mx.nd.slice_axis(x, axis=2, begin=1, end=None).asnumpy(),
                                  values[:, :, 1:])
    np.testing.assert_array_equal(
        mx.nd.slice(x, begin=(None, 1), end=(1, 3)).asnumpy(), values[:1, 1:3])
    np.testing.assert_array_equal(mx.nd.flatten(x).asnumpy(), values.reshape(2, 12))
    assert mx.nd.flatten(mx.nd.ones((5,))).shape == (5, 1)


def test_concat_stack_and_split_match_numpy():
    values, x = _cube()
    np.testing.assert_array_equal(mx.nd.concat(x, x * 2, dim=2).asnumpy(),
                                  np.concatenate([values, values * 2], axis=2))
    np.testing.assert_array_equal(mx.nd.stack(x, x + 1, axis=1).asnumpy(),
                                  np.stack([values, values + 1], axis=1))
    parts = mx.nd.split(x, num_outputs=3, axis=1)
    for got, want in zip(parts, np.split(values, 3, axis=1)):
        np.testing.assert_array_equal(got.asnumpy(), want)
    squeezed = mx.nd.split(x, num_outputs=3, axis=1, squeeze_axis=True)
    assert [p.shape for p in squeezed] == [(2, 4)] * 3


def test_take_pick_one_hot_and_where_match_numpy():
    table = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = mx.nd.array(table)
    np.testing.assert_array_equal(mx.nd.take(t, mx.nd.array([2, 0, 7]), mode="clip").asnumpy(),
                                  table[np.clip([2, 0, 7], 0, 2)])
    np.testing.assert_array_equal(mx.nd.take(t, mx.nd.array([-1, 4]), mode="wrap").asnumpy(),
                                  table[np.mod([-1, 4], 3)])
    np.testing.assert_array_equal(mx.nd.pick(t, mx.nd.array([3, 0, 2]), axis=1).asnumpy(),
                                  table[np.arange(3), [3, 0, 2]])
    np.testing.assert_array_equal(
        mx.nd.one_hot(mx.nd.array([2, 0]), 3, on_value=4, off_value=-1).asnumpy(),
        np.where(np.eye(3)[[2, 0]] > 0, 4, -1))
    cond = np.array([1, 0, 1], np.float32)
    np.testing.assert_array_equal(
        mx.nd.where(mx.nd.array(cond), mx.nd.array([1, 2, 3]), mx.nd.array([7, 8, 9])).asnumpy(),
        np.where(cond > 0, [1, 2, 3], [7, 8, 9]))


def test_sort_argsort_and_topk_match_numpy():
    values = np.array([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]], np.float32)
    x = mx.nd.array(values)
    np.testing.assert_array_equal(mx.nd.sort(x, is_ascend=False).asnumpy(),
                                  -np.sort(-values, axis=1))
    np.testing.assert_array_equal(mx.nd.argsort(x).asnumpy(), np.argsort(values, axis=1))
    top_values, top_indices = mx.nd.topk(x, k=2, ret_typ="both")
    np.testing.assert_array_equal(top_values.asnumpy(), -np.sort(-values, axis=1)[:, :2])
    np.testing.assert_array_equal(top_indices.asnumpy(), np.argsort(-values, axis=1)[:, :2])


def test_dot_and_batch_dot_with_transposes_match_numpy():
    values, x = _cube()
    np.testing.assert_allclose(mx.nd.dot(x[0], x[1], transpose_b=True).asnumpy(),
                               values[0] @ values[1].T, rtol=1e-6)
    np.testing.assert_allclose(mx.nd.batch_dot(x, x, transpose_a=True).asnumpy(),
                               np.einsum("bij,bik->bjk", values, values), rtol=1e-6)


def test_graph_attributes_are_accepted_and_ignored_by_imperative_ops():
    x = mx.nd.array([[-1.0, 2.0]])
    got = mx.nd.Activation(x, act_type="relu", __layout__="NC")
    np.testing.assert_array_equal(got.asnumpy(), [[0.0, 2.0]])


# -- save and load in MXNet's format ---------------------------------------------------
def test_save_load_dict_keeps_names_values_and_dtypes(tmp_path):
    values, x = _cube()
    path = str(tmp_path / "named.params")
    saved = {"arg:w": x, "aux:count": mx.nd.array([3, 1, 4], dtype="int64"),
             "half": mx.nd.array([0.25, -8.0], dtype="float16")}
    mx.nd.save(path, saved)
    loaded = mx.nd.load(path)
    assert isinstance(loaded, dict) and sorted(loaded) == sorted(saved)
    for name, arr in saved.items():
        assert loaded[name].dtype == arr.dtype and loaded[name].shape == arr.shape
        np.testing.assert_array_equal(loaded[name].asnumpy(), arr.asnumpy())


def test_save_load_list_and_single_array(tmp_path):
    path = str(tmp_path / "listed.nd")
    arrays = [mx.nd.array(np.linspace(-1, 1, 6).reshape(2, 3)), mx.nd.zeros((4,), dtype="uint8")]
    mx.nd.save(path, arrays)
    loaded = mx.nd.load(path)
    assert isinstance(loaded, list) and len(loaded) == 2
    for got, want in zip(loaded, arrays):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got.asnumpy(), want.asnumpy())
    mx.nd.save(path, mx.nd.array([6.0, 7.0]))
    single = mx.nd.load(path)
    assert isinstance(single, list) and len(single) == 1
    np.testing.assert_array_equal(single[0].asnumpy(), [6, 7])


def test_save_file_starts_with_mxnets_list_magic(tmp_path):
    path = str(tmp_path / "magic.nd")
    mx.nd.save(path, [mx.nd.ones((1,))])
    with open(path, "rb") as f:
        head = f.read(8)
    assert int.from_bytes(head, "little") == 0x112  # MXNet's NDArray-list magic number


@pytest.mark.parametrize("data", [{"w": np.ones(2)}, [1, 2], [mx.nd.ones(2), np.zeros(2)],
                                  {3: mx.nd.ones(2)}])
def test_save_refuses_what_is_not_ndarrays_with_type_error(tmp_path, data):
    with pytest.raises(TypeError, match="NDArray"):
        mx.nd.save(str(tmp_path / "bad.nd"), data)
    assert not (tmp_path / "bad.nd").exists()


@pytest.mark.parametrize("data", [(mx.nd.ones(2),), None, "weights"])
def test_save_refuses_other_containers_with_value_error(tmp_path, data):
    with pytest.raises(ValueError, match="NDArray"):
        mx.nd.save(str(tmp_path / "bad.nd"), data)
