"""Checks of the slicing ops (slice, slice_axis, slice_like) against numpy: forward values,
numeric and second-order gradients, and the ``_backward_slice*`` ops.
"""
import numpy as np
import pytest

from deepkit_engine import ndarray as nd
from deepkit_engine.testing import assert_almost_equal

from .op_cases import (OpCase, case_id, forward_params, gradient_params, run_forward, run_gradient,
                       second_order)
from .test_reduce import check_kernel_requests

# -- references (plain numpy, independent of the kernels) -----------------------------

def _ref_slice(x, begin, end, step=()):
    key = tuple(slice(b, e, step[i] if step else None) for i, (b, e) in enumerate(zip(begin, end)))
    return x[key]


def _slice_axis_ref(x, axis, begin, end=None):
    key = [slice(None)] * x.ndim
    key[axis] = slice(begin, end)
    return x[tuple(key)]


CASES = [OpCase("slice", [s], _ref_slice, p) for s, p in [
    ((3, 4), {"begin": (0, 1), "end": (2, 3)}),
    ((3, 4), {"begin": (None,), "end": (None,), "step": (-1,)}),
    ((3, 4), {"begin": (None, None), "end": (None, None), "step": (2, -1)}),
    ((3, 4, 5), {"begin": (-2, 1), "end": (None, -1), "step": (1, 2)}),
    ((3, 4), {"begin": (5,), "end": (10,)}),
    ((0, 3), {"begin": (0, 1), "end": (None, 3)}),
    ((5,), {"begin": (4,), "end": (-6,), "step": (-2,)}),
]]
CASES += [OpCase("slice_axis", [s], _slice_axis_ref, p) for s, p in [
    ((3, 4), {"axis": 1, "begin": 1, "end": 3}),
    ((3, 4), {"axis": -1, "begin": -2, "end": None}),
    ((3, 4), {"axis": 0, "begin": 0, "end": -1}),
    ((2, 0), {"axis": 1, "begin": 0, "end": None}),
    ((1, 3), {"axis": 0, "begin": 0}),
]]
CASES += [OpCase("slice_like", [a, b],
                 lambda x, y, out=out, **p: x[tuple(slice(0, d) for d in out)], p)
          for a, b, p, out in [((4, 5), (2, 3), {}, (2, 3)),
                               ((4, 5), (2, 3), {"axes": (1,)}, (4, 3)),
                               ((3, 4, 5), (2, 3), {"axes": (0, -2)}, (2, 3, 5)),
                               ((2, 3), (0, 3), {}, (0, 3)),
                               ((2, 3), (2, 3), {}, (2, 3))]]


# -- gradient cases ------------------------------------------------------------------------

# The numeric gradient check costs two forward runs per input element: the larger forward
# cases skip it, and small cases of the same kinds check it instead.
def _input_size(case):
    return sum(x.size for x in case.make_inputs(np.random.default_rng(0), "float64"))


for _case in CASES:
    if _input_size(_case) > 30:
        _case.grad = False

CASES += [OpCase("slice", [(3, 3, 3)], _ref_slice,
                 {"begin": (-2, 1), "end": (None, -1), "step": (1, 2)}, name="grad"),
          OpCase("slice_like", [(3, 2, 3), (2, 1)], lambda x, y, **p: x[:2, :1], {"axes": (0, -2)},
                 name="grad")]


# -- the _backward_* ops --------------------------------------------------------------------

def _ref_region(key_of):
    """Reference of the slicing ops' gradients: zeros shaped as x, g where the slice was."""
    def ref(g, x, **params):
        out = np.zeros(x.shape)
        out[key_of(x, g, **params)] = g
        return out
    return ref


def _slice_key(x, g, begin, end, step=()):
    return tuple(slice(b, e, step[i] if step else None) for i, (b, e) in enumerate(zip(begin,
                                                                                         end)))


def _slice_axis_key(x, g, axis, begin, end=None):
    return (slice(None),) * (axis % x.ndim) + (slice(begin, end),)


for _s, _p in [((3, 4), {"begin": (0, 1), "end": (2, 3)}),
               ((3, 4), {"begin": (None, None), "end": (None, None), "step": (2, -1)}),
               ((3, 3, 3), {"begin": (-2, 1), "end": (None, -1), "step": (1, 2)}),
               ((0, 3), {"begin": (0, 1), "end": (None, 3)}),
               ((5,), {"begin": (4,), "end": (-6,), "step": (-2,)})]:
    CASES.append(OpCase("_backward_slice", [_ref_slice(np.zeros(_s), **_p).shape, _s],
                        _ref_region(_slice_key), _p))
for _s, _p in [((3, 4), {"axis": 1, "begin": 1, "end": 3}),
               ((3, 4), {"axis": -1, "begin": -2, "end": None}),
               ((2, 0), {"axis": 1, "begin": 0, "end": None})]:
    CASES.append(OpCase("_backward_slice_axis", [_slice_axis_ref(np.zeros(_s), **_p).shape, _s],
                        _ref_region(_slice_axis_key), _p))
CASES += [OpCase("_backward_slice_like", [g, x],
                 _ref_region(lambda x, g: tuple(slice(0, d) for d in g.shape)))
          for g, x in [((2, 3), (4, 5)), ((3, 1, 5), (3, 4, 5)), ((0, 3), (2, 3)),
                       ((2, 3), (2, 3))]]


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

def test_slicing_opssecond_order(ctx):
    # y = sum over the slices of x^2 (elements in two slices count twice).
    v = np.random.default_rng(12).uniform(-1, 1, (3, 4))
    def f(x):
        return (nd.sum(nd.square(nd.slice_axis(x, axis=1, begin=1, end=3)))
                + nd.sum(nd.square(nd.slice(x, begin=(None, 0), end=(None, 4), step=(2, 3))))
                + nd.sum(nd.square(nd.slice_like(x, nd.zeros((2, 4)))))
                + nd.sum(nd.square(nd.split(x, num_outputs=2, axis=1)[1])))

    count = np.zeros(v.shape)
    count[:, 1:3] += 1
    count[::2, 0:4:3] += 1
    count[:2, :] += 1
    count[:, 2:] += 1
    (g,), (second,) = second_order(f, [v], ctx)
    assert_almost_equal(g, 2 * count * v)
    assert_almost_equal(second, 2 * count)


# -- executor-level gradients ------------------------------------------------------------

# -- reshape's shape computation ---------------------------------------------------------


# -- particular behaviours ---------------------------------------------------------------

def test_slice_params_from_strings():
    x = nd.array(np.arange(12).reshape(3, 4))
    result = nd.slice(x, begin="(None, 1)", end="(2, None)", step="(None, 2)")
    assert result.asnumpy().tolist() == [[1.0, 3.0], [5.0, 7.0]]
    assert nd.crop(x, begin=(1,), end=(2,)).shape == (1, 4)


# -- errors ------------------------------------------------------------------------------
