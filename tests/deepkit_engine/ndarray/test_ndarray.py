"""NDArray: creation, reading, copies, indexing, assignment, laziness, errors."""
import copy
import gc
import threading
import time

import numpy as np
import pytest

import deepkit_engine as dk
from deepkit_engine import engine
from deepkit_engine.base import ContextError, DeepkitError, EngineError, ShapeError
from deepkit_engine.ndarray.functions import PARSED_KEPT
from deepkit_engine.ops import get_op
from deepkit_engine.testing import assert_almost_equal

nd = dk.nd


def test_creation_functions(ctx):
    assert_almost_equal(nd.zeros((2, 3), ctx=ctx), np.zeros((2, 3)))
    assert_almost_equal(nd.ones(4, ctx=ctx, dtype="float64"), np.ones(4))
    assert nd.ones(4, ctx=ctx, dtype="float64").dtype == np.float64
    assert_almost_equal(nd.full((2,), 7, ctx=ctx), np.full(2, 7.0))
    assert nd.empty((0, 3), ctx=ctx).shape == (0, 3)
    assert_almost_equal(nd.arange(5, ctx=ctx), np.arange(5.0))
    assert_almost_equal(nd.arange(1, 4, 0.5, repeat=2), np.repeat(np.arange(1, 4, 0.5), 2))
    x = nd.array([[1, 2], [3, 4]], ctx=ctx)
    assert x.dtype == np.float32 and x.ctx == ctx  # float32 by default, as in MXNet
    assert_almost_equal(nd.full_like(x, 2), np.full((2, 2), 2.0))
    assert nd.empty_like(x).shape == (2, 2)
    assert nd.array(np.arange(3), dtype="int32").dtype == np.int32


def test_metadata_does_not_wait():
    x = nd.zeros((3, 4, 5))
    assert (x.shape, x.size, x.ndim, x.dtype, x.ctx) == ((3, 4, 5), 60, 3, np.float32, dk.cpu())
    assert x.context == x.ctx


def test_asnumpy_is_a_copy_and_array_protocol_is_zero_copy():
    x = nd.array([1.0, 2.0, 3.0])
    a = x.asnumpy()
    a[0] = 100
    assert x.asnumpy()[0] == 1.0
    view = np.asarray(x)
    assert np.shares_memory(view, x._data)
    assert x.asscalar if x.size == 1 else True
    with pytest.raises(ShapeError, match=r"\(3,\)"):
        x.asscalar()
    assert nd.array([5]).asscalar() == 5.0
    assert x.tolist() == [1.0, 2.0, 3.0]


def test_asnumpy_without_copy_waits_and_gives_a_read_only_view():
    x = nd.array([1.0, 2.0, 3.0])
    y = x * 2  # queued
    view = y.asnumpy(copy=False)
    np.testing.assert_array_equal(view, [2.0, 4.0, 6.0])
    assert np.shares_memory(view, y._data) and not view.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        view[0] = 0


def test_repr_shows_values_shape_and_context():
    text = repr(nd.array([[1, 2], [3, 4]]))
    assert "[[1. 2.]" in text and "<NDArray 2x2 @cpu(0)>" in text


def test_copyto_and_as_in_context(ctx):
    x = nd.array(np.arange(6).reshape(2, 3), ctx=dk.cpu())
    y = x.copyto(ctx)
    assert y.ctx == ctx and y is not x
    assert_almost_equal(y, np.arange(6).reshape(2, 3))
    dst = nd.zeros((2, 3), ctx=ctx)
    assert x.copyto(dst) is dst
    assert_almost_equal(dst, np.arange(6).reshape(2, 3))
    assert x.as_in_context(dk.cpu()) is x
    with pytest.raises(ShapeError, match=r"\(2, 3\).*\(3,\)"):
        x.copyto(nd.zeros(3))
    c = x.copy()
    c[:] = 0
    assert x.asnumpy().sum() == 15


def test_basic_indexing_returns_views_that_share_the_engine_variable():
    base = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    x = nd.array(base)
    assert_almost_equal(x[1], base[1])
    assert_almost_equal(x[:, 1:3, ::2], base[:, 1:3, ::2])
    assert_almost_equal(x[..., -1], base[..., -1])
    assert_almost_equal(x[0, None, 2], base[0, None, 2])
    assert x[1, 2, 3].shape == () and x[1, 2, 3].asscalar() == 23
    view = x[0]
    view[:] = -1  # writes through the view reach the base
    assert (x.asnumpy()[0] == -1).all()
    assert view._var is x._var


def test_advanced_indexing_copies():
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    x = nd.array(base)
    assert_almost_equal(x[[0, 2]], base[[0, 2]])
    assert_almost_equal(x[nd.array([2, 0])], base[[2, 0]])
    assert_almost_equal(x[base > 5], base[base > 5])
    assert_almost_equal(x[:, [1, 3]], base[:, [1, 3]])


def test_out_of_range_index_is_reported_at_the_call():
    x = nd.zeros((3, 4))
    with pytest.raises(IndexError, match=r"shape \(3, 4\).*out of range"):
        x[5]
    with pytest.raises(IndexError, match=r"shape \(3, 4\)"):
        x[[0, 9]]
    with pytest.raises(IndexError, match=r"shape \(3, 4\)"):
        x[1, 2, 3]


def test_slice_assignment_from_scalars_numpy_and_ndarrays(ctx):
    x = nd.zeros((3, 4), ctx=ctx)
    x[:] = 1
    x[1:3, 0] = 5
    x[0] = np.arange(4)
    x[2, 1:] = nd.array([7, 8, 9], ctx=ctx)
    x[:, 3] = nd.array([[-1], [-2], [-3]], ctx=ctx).reshape(3)
    expected = np.ones((3, 4))
    expected[1:3, 0] = 5
    expected[0] = np.arange(4)
    expected[2, 1:] = [7, 8, 9]
    expected[:, 3] = [-1, -2, -3]
    assert_almost_equal(x, expected)
    x[[0, 2], 1] = 42  # advanced assignment
    expected[[0, 2], 1] = 42
    assert_almost_equal(x, expected)


def test_slice_assignment_errors_name_shapes():
    x = nd.zeros((3, 4))
    with pytest.raises(ShapeError, match=r"value of shape \(3,\).*shape \(3, 4\).*\(2, 4\)"):
        x[1:3] = np.ones(3)
    with pytest.raises(ShapeError, match=r"\(5,\)"):
        x[0] = nd.ones(5)


def test_assigned_numpy_value_is_copied_at_the_call():
    x = nd.zeros(3)
    value = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    x[:] = value
    value[:] = 0
    assert_almost_equal(x, [1.0, 2.0, 3.0])


def test_operations_are_lazy_and_ordered():
    x = nd.zeros((1000, 1000))
    started = {}

    def slow_fill():
        time.sleep(0.3)
        x._data[...] = 2.0
        started["done"] = time.perf_counter()
    engine.push(slow_fill, (), (x._var,), name="slow_fill")
    y = x + 1  # queued behind the slow write; returns at once
    returned = time.perf_counter()
    assert_almost_equal(y, np.full((1000, 1000), 3.0))
    assert returned < started["done"]


def test_failure_in_pushed_work_is_raised_at_the_next_read():
    x = nd.zeros((4,))

    def broken():
        raise RuntimeError("sensor unplugged")
    engine.push(broken, (), (x._var,), name="ReadSensor")
    y = x * 2
    with pytest.raises(EngineError, match="ReadSensor failed.*sensor unplugged"):
        y.asnumpy()
    with pytest.raises(EngineError):
        x.wait_to_read()
    assert_almost_equal(nd.ones(2) + 1, [2.0, 2.0])  # engine still works
    nd.waitall()


def test_inputs_on_different_contexts_are_refused():
    a = nd.zeros((2,))
    b = nd.zeros((2,), ctx=dk.Context("cpu", 1))
    with pytest.raises(ContextError, match="add.*cpu\\(0\\).*cpu\\(1\\)"):
        a + b


def test_len_iter_bool_and_scalar_conversion():
    x = nd.array([[1, 2], [3, 4]])
    assert len(x) == 2
    assert [r.asnumpy().tolist() for r in x] == [[1, 2], [3, 4]]
    assert float(nd.array([2.5])) == 2.5
    assert bool(nd.array([1]))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(x)


def test_dlpack_roundtrip_with_numpy():
    x = nd.array(np.arange(6).reshape(2, 3))
    a = np.from_dlpack(x)
    assert np.shares_memory(a, x._data)
    y = nd.from_dlpack(np.arange(4, dtype=np.float64))
    assert y.dtype == np.float64 and y.ctx == dk.cpu()
    assert_almost_equal(y, np.arange(4.0))


def test_dlpack_with_torch():
    torch = pytest.importorskip("torch")
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    x = nd.from_dlpack(t)
    t[0, 0] = 42  # zero-copy: the NDArray sees it
    assert x.asnumpy()[0, 0] == 42
    back = torch.from_dlpack(x)
    assert back.shape == (2, 3) and float(back[1, 2]) == 5


def test_fluent_methods_match_the_functions():
    base = np.array([[1.0, -2.0], [3.0, 4.0]], dtype=np.float32)
    x = nd.array(base)
    assert_almost_equal(x.sum(axis=1), base.sum(axis=1))
    assert_almost_equal(x.abs().max(), [4.0])
    assert_almost_equal(x.exp(), np.exp(base))
    assert_almost_equal(x.clip(0, 3), np.clip(base, 0, 3))
    assert_almost_equal(x.transpose(), base.T)
    assert "Method form of ``sum" in type(x).sum.__doc__
    from deepkit_engine import symbol as sym  # noqa: PLC0415
    assert sym.Variable("v").exp().list_outputs()[0].startswith("exp")


def test_write_async_fills_the_array_without_waiting(ctx):
    x = nd.zeros((2, 3), ctx=ctx)
    started = threading.Event()
    release = threading.Event()

    def host():
        started.set()
        release.wait(5)
        return np.arange(6, dtype=np.float64).reshape(2, 3)
    assert x.write_async(host, name="batch") is x  # returns before host() has finished
    y = x * 2  # ordered after the write
    release.set()
    assert_almost_equal(y, np.arange(6).reshape(2, 3) * 2.0)
    assert started.is_set() and x.dtype == np.float32
    assert_almost_equal(x, np.arange(6).reshape(2, 3))


def test_write_async_shape_mismatch_is_raised_at_the_next_wait(ctx):
    x = nd.zeros((2, 3), ctx=ctx)
    x.write_async(lambda: np.zeros((3, 2)), name="data")
    with pytest.raises(EngineError, match=r"write_async 'data'.*\(3, 2\).*expected \(2, 3\)") \
            as info:
        x.wait_to_read()
    assert isinstance(info.value.__cause__, ShapeError)
    x.write_async(lambda: np.ones((2, 3)))
    assert_almost_equal(x, np.ones((2, 3)))  # the array is usable again


def test_prepare_invoke_pushes_the_checked_kernel_on_the_same_arrays(ctx):
    op = get_op("sgd_mom_update")
    attrs = op.parse_attrs({"lr": 0.5, "momentum": 0.9})
    w0, g = np.arange(6.0).reshape(2, 3), np.full((2, 3), 2.0)
    weight, grad, mom = (nd.array(a, ctx=ctx) for a in (w0, g, np.zeros((2, 3))))
    step = nd.prepare_invoke(op, [weight, grad, mom], attrs, weight)
    expected_w, expected_m = w0.copy(), np.zeros((2, 3))
    for _ in range(3):
        step()
        expected_m = 0.9 * expected_m - 0.5 * g
        expected_w += expected_m
    assert_almost_equal(weight, expected_w)
    assert_almost_equal(mom, expected_m)
    grad[:] = 0  # the pushed kernel reads the gradient array as it is then
    step()
    assert_almost_equal(weight, expected_w + 0.9 * expected_m)


def test_prepare_invoke_checks_once_and_refuses_ops_with_resources():
    op = get_op("sgd_update")
    weight, grad = nd.zeros((2, 3)), nd.zeros((2, 3))
    with pytest.raises(ShapeError, match=r"sgd_update: output 0 has shape \(2, 3\) but out= "
                                         r"has shape \(3,\)"):
        nd.prepare_invoke(op, [weight, grad], op.parse_attrs({"lr": 0.1}), nd.zeros(3))
    dropout = get_op("Dropout")
    with pytest.raises(DeepkitError, match="Dropout needs resources"):
        nd.prepare_invoke(dropout, [weight], dropout.parse_attrs({}), nd.zeros((2, 3)))


def test_repeated_calls_reuse_parsed_params_without_hiding_a_change_or_an_error():
    x = nd.array([[1.0, 5.0], [3.0, 2.0]])
    for _ in range(3):  # the same keywords: the params parsed at the first call
        assert_almost_equal(nd.clip(x, a_min=2.0, a_max=4.0), np.clip(x.asnumpy(), 2, 4))
    assert_almost_equal(nd.clip(x, a_min=1.5, a_max=2.5), np.clip(x.asnumpy(), 1.5, 2.5))
    assert nd.argmax(x, axis=1).asnumpy().tolist() == [1, 0]
    assert nd.argmax(x, axis=0).asnumpy().tolist() == [1, 0]
    with pytest.raises(DeepkitError, match="axis"):  # True is not the int 1 it equals
        nd.argmax(x, axis=True)
    for k in range(PARSED_KEPT + 5):  # a learning rate changing every step
        w = nd.ones(2)
        nd.sgd_update(w, nd.ones(2), lr=0.01 * k, out=w)
        assert_almost_equal(w, np.full(2, 1 - 0.01 * k), rtol=1e-6)


def test_last_prepared_keeps_one_function_until_an_object_it_names_is_collected():
    cache = nd.LastPrepared()
    a, b = nd.zeros(2), nd.zeros(3)
    cache.keep((id(a), id(b)), "push", [a, b])
    assert cache.get((id(a), id(b))) == "push"
    assert cache.get((id(b), id(a))) is None
    assert copy.deepcopy(cache).get((id(a), id(b))) is None  # a copy starts empty
    key = (id(a), id(b))
    del b
    gc.collect()
    assert cache.get(key) is None  # dropped with the array: its id may name another one now
