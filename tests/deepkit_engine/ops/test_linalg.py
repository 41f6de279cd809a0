"""Checks of the matrix products (dot, batch_dot, linalg_gemm2, _backward_dot) against
numpy.

Forward values, numeric first-order gradients, second-order gradients through
autograd against analytic values, and ``_backward_dot``.
"""
import numpy as np
import pytest

from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import ShapeError
from deepkit_engine.testing import assert_almost_equal

from .op_cases import (OpCase, case_id, forward_params, gradient_params, run_forward, run_gradient,
                       second_order)
from .test_reduce import check_kernel_requests

# -- references (plain numpy, independent of the kernels) -----------------------------

def _ref_dot(a, b, transpose_a=False, transpose_b=False):
    if a.ndim == 1 and b.ndim == 1:
        return np.array([np.sum(a * b)])
    lax = 0 if transpose_a and a.ndim > 1 else a.ndim - 1
    rax = b.ndim - 1 if transpose_b and b.ndim > 1 else 0
    return np.tensordot(a, b, axes=([lax], [rax]))


def _ref_batch_dot(a, b, transpose_a=False, transpose_b=False):
    lead = a.shape[:-2]
    batch = int(np.prod(lead))
    a2 = a.reshape((batch,) + a.shape[-2:])
    b2 = b.reshape((batch,) + b.shape[-2:])
    rows = []
    for i in range(a2.shape[0]):
        x = a2[i].T if transpose_a else a2[i]
        y = b2[i].T if transpose_b else b2[i]
        rows.append(np.einsum("ik,kj->ij", x, y))
    m = a.shape[-1] if transpose_a else a.shape[-2]
    n = b.shape[-2] if transpose_b else b.shape[-1]
    return np.array(rows).reshape(lead + (m, n))


def _ref_gemm2(a, b, transpose_a=False, transpose_b=False, alpha=1.0, axis=-2):
    a = np.swapaxes(a, axis, -2)
    b = np.swapaxes(b, axis, -2)
    out = alpha * _ref_batch_dot(a[None] if a.ndim == 2 else a, b[None] if b.ndim == 2 else b,
                                 transpose_a, transpose_b)
    out = out[0] if a.ndim == 2 else out
    return np.swapaxes(out, axis, -2)


CASES = [OpCase("dot", [a, b], _ref_dot, p) for a, b, p in [
    ((3, 4), (4, 5), {}),
    ((2, 3, 4), (4, 5), {}),
    ((3, 4), (4, 2, 5), {}),
    ((4,), (4, 5), {}),
    ((3, 4), (4,), {}),
    ((4,), (4,), {}),
    ((4, 3), (4, 5), {"transpose_a": True}),
    ((3, 4), (5, 4), {"transpose_b": True}),
    ((4, 3), (5, 4), {"transpose_a": True, "transpose_b": True}),
    ((4, 2, 3), (4, 5), {"transpose_a": True}),
    ((3, 4), (2, 5, 4), {"transpose_b": True}),
    ((4,), (5, 4), {"transpose_b": True}),
    ((1, 1), (1, 1), {}),
    ((0, 4), (4, 5), {}),
    ((3, 0), (0, 5), {}),
]]
CASES += [OpCase("batch_dot", [a, b], _ref_batch_dot, p) for a, b, p in [
    ((2, 3, 4), (2, 4, 5), {}),
    ((2, 4, 3), (2, 4, 5), {"transpose_a": True}),
    ((2, 3, 4), (2, 5, 4), {"transpose_b": True}),
    ((2, 4, 3), (2, 5, 4), {"transpose_a": True, "transpose_b": True}),
    ((1, 1, 1), (1, 1, 1), {}),
    ((0, 3, 4), (0, 4, 5), {}),
    ((2, 3, 0), (2, 0, 5), {}),
    ((2, 2, 3, 4), (2, 2, 4, 1), {}),
]]
CASES += [OpCase("linalg_gemm2", [a, b], _ref_gemm2, p) for a, b, p in [
    ((3, 4), (4, 5), {}),
    ((3, 4), (4, 5), {"alpha": 2.5}),
    ((2, 4, 3), (2, 5, 4), {"transpose_a": True, "transpose_b": True, "alpha": -0.5}),
    ((2, 2, 3, 4), (2, 2, 4, 5), {}),
    ((3, 2, 4), (4, 2, 5), {"axis": -3}),
    ((3, 2, 4), (5, 2, 4), {"axis": 0, "transpose_b": True, "alpha": 3.0}),
    ((0, 3, 4), (0, 4, 2), {}),
]]


# -- gradient cases ------------------------------------------------------------------------

# The numeric gradient check costs two forward runs per input element: the larger forward
# cases skip it, and small cases of the same kinds check it instead.
def _input_size(case):
    return sum(x.size for x in case.make_inputs(np.random.default_rng(0), "float64"))


for _case in CASES:
    if _input_size(_case) > 30:
        _case.grad = False

_TA, _TB = {"transpose_a": True}, {"transpose_b": True}
_TAB = {"transpose_a": True, "transpose_b": True}
_SMALL_DOTS = [((2, 3), (3, 2), {}), ((2, 2, 3), (3, 2), {}), ((2, 3), (3, 2, 2), {}),
               ((3, 2), (3, 2), _TA), ((2, 3), (2, 3), _TB), ((3, 2), (2, 3), _TAB),
               ((3, 2, 2), (3, 2), _TA), ((2, 3), (2, 2, 3), _TB),
               ((3, 2, 2), (2, 2, 3), _TAB), ((3,), (3, 2), _TA), ((2, 3), (3,), _TB)]
CASES += [OpCase("dot", [a, b], _ref_dot, p, name="grad") for a, b, p in _SMALL_DOTS]
CASES += [OpCase("batch_dot", [a, b], _ref_batch_dot, p, name="grad") for a, b, p in [
    ((2, 2, 3), (2, 3, 2), {}), ((2, 3, 2), (2, 3, 2), _TA), ((2, 2, 3), (2, 2, 3), _TB),
    ((2, 3, 2), (2, 2, 3), _TAB), ((2, 1, 2, 3), (2, 1, 3, 2), {})]]
CASES += [OpCase("linalg_gemm2", [a, b], _ref_gemm2, p, name="grad") for a, b, p in [
    ((2, 3), (3, 2), {"alpha": 2.5}),
    ((2, 3, 2), (2, 2, 3), dict(_TAB, alpha=-0.5)),
    ((2, 2, 3), (3, 2, 2), {"axis": -3}),
    ((2, 2, 3), (2, 2, 3), {"axis": 0, "transpose_b": True, "alpha": 3.0})]]


# -- the _backward_* ops --------------------------------------------------------------------

def _ref_backward_dot(g, a, b, transpose_a=False, transpose_b=False, wrt="lhs"):
    """d sum(g * dot(a, b)) / d(a or b), one basis element at a time (dot is linear)."""
    flags = {"transpose_a": transpose_a, "transpose_b": transpose_b}
    target = a if wrt == "lhs" else b
    out = np.zeros(target.shape)
    for idx in np.ndindex(*target.shape):
        e = np.zeros(target.shape)
        e[idx] = 1.0
        out[idx] = np.sum(g * (_ref_dot(e, b, **flags) if wrt == "lhs" else
                               _ref_dot(a, e, **flags)))
    return out


for _a, _b, _p in _SMALL_DOTS[::2] + [((3,), (3,), {}), ((0, 3), (3, 2), {}),
                                      ((2, 0), (0, 3), {})]:
    _g = _ref_dot(np.zeros(_a), np.zeros(_b), **_p).shape
    CASES += [OpCase("_backward_dot", [_g, _a, _b], _ref_backward_dot, dict(_p, wrt=w))
              for w in ("lhs", "rhs")]


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


# -- second-order gradients (autograd) -----------------------------------------------------

_V = np.random.default_rng(7).uniform(-1, 1, (3, 4))


@pytest.mark.parametrize("flags,axis", [({"transpose_b": True}, 0), ({"transpose_a": True}, 1)])
def test_dotsecond_order(flags, axis, ctx):
    # S = sum(x x^T) = sum_k c_k^2 with c the column sums (x^T x: the row sums r):
    # dS/dx = 2 c (broadcast); each of its elements grows by 2 per element of its group.
    (g,), (second,) = second_order(lambda x: nd.dot(x, x, **flags), [_V], ctx)
    sums = _V.sum(axis=axis, keepdims=True)
    assert_almost_equal(g, np.broadcast_to(2 * sums, _V.shape))
    assert_almost_equal(second, np.full(_V.shape, 2.0 * _V.shape[axis]))


def test_dot_mixedsecond_order(ctx):
    # y = dot(x, w): dy/dx = ones @ w^T depends on w only; d sum(dy/dx) / dw = rows of x.
    w = np.random.default_rng(8).uniform(-1, 1, (4, 2))
    (g,), (xg, wg) = second_order(lambda x, w: nd.dot(x, w), [_V, w], ctx)
    assert_almost_equal(g, np.ones((3, 2)) @ w.T)
    assert_almost_equal(xg, np.zeros(_V.shape))
    assert_almost_equal(wg, np.full(w.shape, 3.0))


def test_nd_dot_and_reshapesecond_order(ctx):
    # y = dot(v, v) with v = reshape(x, (-1,)) (1-D dot): sum of squares; second: 2.
    v = np.random.default_rng(9).uniform(-1, 1, (2, 3, 2))
    (g,), (second,) = second_order(
        lambda x: nd.dot(nd.reshape(x, shape=(-1,)), nd.reshape(x, shape=(-1,))), [v], ctx)
    assert_almost_equal(g, 2 * v)
    assert_almost_equal(second, np.full(v.shape, 2.0))
    # An N-D dot, (2, 3, 2) . (2, 6) with the rhs x reshaped: S = sum_k C_k R_k with
    # C_k = sum(x[:, :, k]) and R_k = sum(x[k]) (row k of the reshape), so
    # dS/dx[a, b, c] = R_c + C_a, and each of those is a sum of 6 elements: second = 12.
    (g,), (second,) = second_order(
        lambda x: nd.dot(x, nd.reshape(x, shape=(2, 6))), [v], ctx)
    rows, cols = v.sum(axis=(1, 2)), v.sum(axis=(0, 1))
    assert_almost_equal(g, np.broadcast_to(rows[None, None, :] + cols[:, None, None], v.shape))
    assert_almost_equal(second, np.full(v.shape, 12.0))


@pytest.mark.parametrize("op,extra", [("batch_dot", {}), ("linalg_gemm2", {"alpha": 0.5})])
def test_batched_productssecond_order(op, extra, ctx):
    v = np.random.default_rng(10).uniform(-1, 1, (2, 3, 4))
    (g,), (second,) = second_order(
        lambda x: getattr(nd, op)(x, x, transpose_b=True, **extra), [v], ctx)
    alpha = extra.get("alpha", 1.0)
    sums = v.sum(axis=1, keepdims=True)
    assert_almost_equal(g, np.broadcast_to(2 * alpha * sums, v.shape))
    assert_almost_equal(second, np.full(v.shape, 2.0 * alpha * 3))


# -- executor-level gradients ------------------------------------------------------------

def test_executor_gradients_through_backward_ops(ctx):
    # concat, slice and dot in one bound graph (float32), with grad_req='add'.
    a, b = sym.Variable("a"), sym.Variable("b")
    joined = sym.concat(a, b, dim=0)                                 # (5, 3)
    net = sym.Group([sym.dot(sym.slice(joined, begin=(1,), end=(4,)), b, transpose_b=True),
                     sym.slice_axis(joined, axis=1, begin=2, end=None)])
    rng = np.random.default_rng(13)
    va, vb = rng.uniform(-1, 1, (2, 3)), rng.uniform(-1, 1, (3, 3))
    grads = {"a": nd.ones((2, 3), ctx=ctx), "b": nd.ones((3, 3), ctx=ctx)}
    exe = net.bind(ctx, {"a": nd.array(va, ctx=ctx), "b": nd.array(vb, ctx=ctx)},
                   args_grad=grads, grad_req="add")
    outs = exe.forward(is_train=True)
    vj = np.concatenate([va, vb])
    assert_almost_equal(outs[0], vj[1:4] @ vb.T, rtol=1e-5, atol=1e-6)
    h0, h1 = rng.uniform(-1, 1, (3, 3)), rng.uniform(-1, 1, (5, 1))
    exe.backward([nd.array(h0, ctx=ctx), nd.array(h1, ctx=ctx)])
    gj = np.zeros((5, 3))
    gj[1:4] += h0 @ vb                 # through the slice into the dot's lhs
    gj[:, 2:] += h1                    # through slice_axis
    gb = h0.T @ vj[1:4]                # the dot's rhs
    assert_almost_equal(exe.grad_dict["a"], 1 + gj[:2], rtol=1e-5, atol=1e-6)
    assert_almost_equal(exe.grad_dict["b"], 1 + gj[2:] + gb, rtol=1e-5, atol=1e-6)


# -- reshape's shape computation ---------------------------------------------------------

# -- particular behaviours ---------------------------------------------------------------


def test_dot_of_two_vectors_has_shape_one(ctx):
    a = nd.array([1.0, 2.0, 3.0], ctx=ctx)
    result = nd.dot(a, a)
    assert result.shape == (1,) and result.asnumpy().tolist() == [14.0]
    assert (a @ a).asnumpy().tolist() == [14.0]


def test_dot_writes_into_out_and_strided_out(ctx):
    a = nd.array(np.arange(6).reshape(2, 3), ctx=ctx)
    b = nd.array(np.arange(12).reshape(3, 4), ctx=ctx)
    out = nd.zeros((2, 4), ctx=ctx)
    assert nd.dot(a, b, out=out) is out
    expected = np.arange(6).reshape(2, 3) @ np.arange(12).reshape(3, 4)
    assert out.asnumpy().tolist() == expected.tolist()
    big = nd.zeros((2, 8), ctx=ctx)
    nd.dot(a, b, out=big[:, ::2])  # a strided view: computed aside, then copied in
    assert big.asnumpy()[:, ::2].tolist() == expected.tolist()
    assert big.asnumpy()[:, 1::2].tolist() == [[0.0] * 4] * 2
    wide = nd.zeros((3, 2, 4), ctx=ctx)
    nd.dot(a, b, out=wide[1])
    assert wide.asnumpy()[1].tolist() == expected.tolist()
    assert wide.asnumpy()[0].tolist() == [[0.0] * 4] * 2


def test_integer_products(ctx):
    a = nd.array([[1, 2], [3, 4]], ctx=ctx, dtype="int32")
    assert nd.dot(a, a).asnumpy().tolist() == [[7, 10], [15, 22]]
    assert nd.linalg_gemm2(a, a, alpha=2.0).asnumpy().tolist() == [[14, 20], [30, 44]]
    b = nd.array([[[1, 2]], [[3, 4]]], ctx=ctx, dtype="int32")  # (2, 1, 2): rows on axis 0
    assert nd.linalg_gemm2(b, b, transpose_b=True, alpha=2.0, axis=0).dtype == np.int32


# -- errors ------------------------------------------------------------------------------

def _raises(match):
    return pytest.raises(ShapeError, match=r"(?s)" + match)


def test_dot_inner_dimension_mismatch():
    with _raises(r"^dot: inner dimensions do not match: lhs \(2, 3\) has 3 along its last axis "
                 r"but rhs \(4, 5\) has 4 along its first axis.*inputs: lhs=\(2, 3\) float32, "
                 r"rhs=\(4, 5\)"):
        nd.dot(nd.ones((2, 3)), nd.ones((4, 5)))
    with _raises(r"^dot: inner dimensions do not match: lhs \(2, 3\) has 2 along its first "
                 r"axis"):
        nd.dot(nd.ones((2, 3)), nd.ones((3, 5)), transpose_a=True)
    with _raises(r"^dot: .*at least 1 dimension"):
        nd.dot(nd.ones(()), nd.ones((3,)))


def test_batch_dot_and_gemm2_mismatches():
    with _raises(r"^batch_dot: inner dimensions do not match: lhs \(2, 3, 4\) gives 4 and rhs "
                 r"\(2, 5, 6\) gives 5"):
        nd.batch_dot(nd.ones((2, 3, 4)), nd.ones((2, 5, 6)))
    with _raises(r"^batch_dot: batch dimensions differ: lhs \(2, 3, 4\).*rhs \(3, 4, 5\)"):
        nd.batch_dot(nd.ones((2, 3, 4)), nd.ones((3, 4, 5)))
    with _raises(r"^batch_dot: needs two inputs with the same number \(>= 3\) of dimensions"):
        nd.batch_dot(nd.ones((3, 4)), nd.ones((4, 5)))
    with _raises(r"^linalg_gemm2: inner dimensions do not match: A \(3, 4\) gives 4 and B "
                 r"\(3, 4\) gives 3"):
        nd.linalg_gemm2(nd.ones((3, 4)), nd.ones((3, 4)))
    with _raises(r"^linalg_gemm2: axis=-1 is the column axis"):
        nd.linalg_gemm2(nd.ones((3, 4)), nd.ones((4, 3)), axis=-1)
