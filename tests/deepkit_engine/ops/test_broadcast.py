"""Checks of broadcasting and repetition (broadcast_to/axis/like, tile, repeat, flip)
against numpy: forward values, numeric and second-order gradients.
"""
import numpy as np
import pytest

from deepkit_engine import ndarray as nd
from deepkit_engine.testing import assert_almost_equal

from .op_cases import (OpCase, case_id, forward_params, gradient_params, run_forward, run_gradient,
                       second_order)
from .test_reduce import check_kernel_requests

# -- references (plain numpy, independent of the kernels) -----------------------------

def _ref_tile(x, reps):
    reps = tuple(reps)
    if len(reps) < x.ndim:
        reps = (1,) * (x.ndim - len(reps)) + reps
    out = x.reshape((1,) * (len(reps) - x.ndim) + x.shape)
    for axis, r in enumerate(reps):
        out = np.concatenate([out] * r, axis=axis) if r else out.take([], axis=axis)
    return out


def _ref_repeat(x, repeats, axis=None):
    if axis is None:
        x, axis = x.reshape(-1), 0
    pieces = [np.take(x, [i], axis=axis) for i in range(x.shape[axis]) for _ in range(repeats)]
    if not pieces:
        shape = list(x.shape)
        shape[axis] = 0
        return np.zeros(shape)
    return np.concatenate(pieces, axis=axis)


CASES = [OpCase("broadcast_to", [s], lambda x, shape, out=out: np.broadcast_to(x, out),
                 {"shape": t})
          for s, t, out in [((1, 3), (4, 3), (4, 3)), ((2, 1, 1), (2, 0, 5), (2, 1, 5)),
                            ((1,), (0,), (1,)), ((3, 1), (0, 0), (3, 1)),
                            ((1, 2), (0, 2), (1, 2)), ((0, 1), (0, 4), (0, 4)),
                            ((1, 1), (3, 2), (3, 2))]]
CASES += [OpCase("broadcast_axis", [s], lambda x, axis, size, out=out: np.broadcast_to(x, out),
                 {"axis": a, "size": z})
          for s, a, z, out in [((1, 3, 1), (0, 2), (2, 4), (2, 3, 4)),
                               ((2, 1), (-1,), (3,), (2, 3)),
                               ((2, 1), (1,), (0,), (2, 0)),
                               ((1,), (0,), (1,), (1,))]]
CASES += [OpCase("broadcast_like", [a, b], lambda x, y, out=out, **p: np.broadcast_to(x, out), p)
          for a, b, p, out in [((1, 3), (4, 3), {}, (4, 3)),
                               ((2, 1, 1), (2, 4, 5), {}, (2, 4, 5)),
                               ((1, 3), (2, 2, 5), {"lhs_axes": (0,), "rhs_axes": (2,)}, (5, 3)),
                               ((1, 1), (7, 2), {"lhs_axes": (-1, 0), "rhs_axes": (0, 1)},
                                (2, 7)),
                               ((1, 2), (0, 2), {}, (0, 2))]]
CASES += [OpCase("tile", [s], _ref_tile, {"reps": r}) for s, r in [
    ((2, 3), (2, 2)), ((2, 3), (3,)), ((2, 3), (2, 1, 2)), ((), (3,)), ((0, 2), (2, 2)),
    ((2, 3), (0, 2)), ((1,), (1,)), ((2, 1, 3), (1, 2))]]
CASES += [OpCase("repeat", [s], _ref_repeat, p) for s, p in [
    ((2, 3), {"repeats": 2}), ((2, 3), {"repeats": 2, "axis": 0}),
    ((2, 3), {"repeats": 3, "axis": -1}), ((2, 3), {"repeats": 0, "axis": 1}),
    ((0, 3), {"repeats": 2, "axis": 1}), ((1,), {"repeats": 4, "axis": 0})]]
CASES += [OpCase("flip", [s], lambda x, axis: np.flip(x, axis), {"axis": a}) for s, a in [
    ((3, 4), 0), ((2, 3, 4), (0, 2)), ((2, 3, 4), -1), ((0, 3), 1), ((1,), 0)]]


# -- gradient cases ------------------------------------------------------------------------

# The numeric gradient check costs two forward runs per input element: the larger forward
# cases skip it, and small cases of the same kinds check it instead.
def _input_size(case):
    return sum(x.size for x in case.make_inputs(np.random.default_rng(0), "float64"))


for _case in CASES:
    if _input_size(_case) > 30:
        _case.grad = False

CASES += [OpCase("broadcast_like", [(2, 1, 1), (2, 2, 3)],
                 lambda x, y: np.broadcast_to(x, y.shape), name="grad")]


# -- the _backward_* ops --------------------------------------------------------------------

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

def test_broadcast_to_and_multiplysecond_order(ctx):
    # b = broadcast_to(x (1, 3), (4, 3)); y = b * b: sum(y) = 4 sum(x^2); dy/dx = 8x; second 8.
    v = np.array([[0.5, -1.0, 2.0]])
    (g,), (second,) = second_order(
        lambda x: nd.broadcast_to(x, shape=(4, 3)) * nd.broadcast_to(x, shape=(4, 3)), [v], ctx)
    assert_almost_equal(g, 8 * v)
    assert_almost_equal(second, np.full(v.shape, 8.0))


# -- executor-level gradients ------------------------------------------------------------

# -- reshape's shape computation ---------------------------------------------------------


# -- particular behaviours ---------------------------------------------------------------

# -- errors ------------------------------------------------------------------------------
