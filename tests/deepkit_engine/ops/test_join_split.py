"""Checks of joining and splitting (concat, stack, split) against numpy: forward values,
numeric and second-order gradients, ``_backward_concat`` and errors.
"""
import numpy as np
import pytest

from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import ShapeError
from deepkit_engine.ops import get_op

from .op_cases import OpCase, case_id, forward_params, gradient_params, run_forward
from .op_cases import run_gradient
from .test_reduce import check_kernel_requests


# -- references (plain numpy, independent of the kernels) -----------------------------

def _ref_concat(*xs, dim=1):
    return np.concatenate(xs, axis=dim)


def _ref_stack(*xs, axis=0):
    return np.stack(xs, axis=axis)


def _ref_split(x, num_outputs, axis=1, squeeze_axis=False):
    parts = np.split(x, num_outputs, axis=axis)
    if squeeze_axis:
        parts = [np.squeeze(p, axis=axis) for p in parts]
    return parts


CASES = [OpCase("concat", shapes, _ref_concat, p) for shapes, p in [
    ([(2, 3), (4, 3)], {"dim": 0}),
    ([(2, 3), (2, 1), (2, 0)], {}),
    ([(2, 3, 4)] * 3, {"dim": -1}),
    ([(3,)], {"dim": 0}),
    ([(0, 2), (0, 3)], {"dim": 1}),
]]
CASES += [OpCase("stack", shapes, _ref_stack, p) for shapes, p in [
    ([(2, 3)] * 3, {}), ([(2, 3)] * 2, {"axis": 1}), ([(2, 3)] * 2, {"axis": -1}),
    ([(0,)] * 2, {}), ([()] * 4, {}), ([(1, 2)], {"axis": 2})]]
CASES += [OpCase("split", [s], _ref_split, p) for s, p in [
    ((4, 6), {"num_outputs": 2}),
    ((4, 6), {"num_outputs": 3, "axis": -1}),
    ((2, 3), {"num_outputs": 2, "axis": 0, "squeeze_axis": True}),
    ((2, 3), {"num_outputs": 1}),
    ((0, 4), {"num_outputs": 2}),
    ((3, 0), {"num_outputs": 3, "axis": 0}),
]]


# -- gradient cases ------------------------------------------------------------------------

# The numeric gradient check costs two forward runs per input element: the larger forward
# cases skip it, and small cases of the same kinds check it instead.
def _input_size(case):
    return sum(x.size for x in case.make_inputs(np.random.default_rng(0), "float64"))


for _case in CASES:
    if _input_size(_case) > 30:
        _case.grad = False

CASES += [OpCase("concat", [(2, 2, 2)] * 3, _ref_concat, {"dim": -1}, name="grad")]


# -- the _backward_* ops --------------------------------------------------------------------

def _ref_backward_concat(g, *xs, dim=1):
    offsets = np.cumsum([x.shape[dim] for x in xs])[:-1]
    return np.split(g, offsets, axis=dim)


CASES += [OpCase("_backward_concat", [_ref_concat(*[np.zeros(x) for x in xs], dim=d).shape]
                 + xs, _ref_backward_concat, {"dim": d})
          for xs, d in [([(2, 3), (4, 3)], 0), ([(2, 3), (2, 1), (2, 0)], 1),
                        ([(2, 2, 2)] * 2, -1), ([(3,)], 0)]]


def _ref_split_v2(x, indices=(), axis=0, squeeze_axis=False, sections=0):
    parts = np.split(x, sections if sections else list(indices[1:]), axis=axis)
    return [np.squeeze(p, axis=axis) for p in parts] if squeeze_axis else parts


CASES += [OpCase("_split_v2", [s], _ref_split_v2, p) for s, p in [
    ((2, 6), {"indices": (0, 1, 4), "axis": 1}),
    ((6, 2), {"sections": 3}),
    ((3, 2), {"sections": 3, "squeeze_axis": True}),
    ((2, 5), {"indices": (0, 2), "axis": -1}),
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


# -- second-order gradients (autograd) -----------------------------------------------------

# -- executor-level gradients ------------------------------------------------------------


def test_executor_split_with_an_unused_output(ctx):
    x = sym.Variable("x")
    net = sym.split(x, num_outputs=3, axis=1)[1] * 2.0
    exe = net.bind(ctx, {"x": nd.array(np.arange(12.0).reshape(2, 6), ctx=ctx)},
                   args_grad={"x": nd.zeros((2, 6), ctx=ctx)})
    exe.forward(is_train=True)
    exe.backward([nd.ones((2, 2), ctx=ctx)])
    expected = np.zeros((2, 6))
    expected[:, 2:4] = 2.0
    assert exe.grad_dict["x"].asnumpy().tolist() == expected.tolist()


# -- reshape's shape computation ---------------------------------------------------------

# -- particular behaviours ---------------------------------------------------------------


def test_split_outputs_and_single_output(ctx):
    x = nd.array(np.arange(12).reshape(2, 6), ctx=ctx)
    parts = nd.split(x, num_outputs=3)
    assert isinstance(parts, list) and [p.shape for p in parts] == [(2, 2)] * 3
    assert parts[2].asnumpy().tolist() == [[4.0, 5.0], [10.0, 11.0]]
    assert get_op("split").output_names(get_op("split").parse_attrs({"num_outputs": 2})) == \
        ("output0", "output1")
    assert nd.SliceChannel(x, num_outputs=1).shape == (2, 6)


def test_concat_and_stack_take_a_list_or_several_arrays(ctx):
    a = nd.ones((2, 2), ctx=ctx)
    b = nd.zeros((2, 2), ctx=ctx)
    assert nd.concat(a, b, dim=0).shape == (4, 2)
    assert nd.concat([a, b, a]).shape == (2, 6)
    assert nd.Concat(a, b, dim=1).shape == (2, 4)
    assert nd.stack(a, b).shape == (2, 2, 2)
    assert nd.stack([a, b, a], axis=2).shape == (2, 2, 3)


# -- errors ------------------------------------------------------------------------------

def _raises(match):
    return pytest.raises(ShapeError, match=r"(?s)" + match)


def test_concat_mismatched_dims():
    with _raises(r"^concat: input 1 has shape \(3, 4\) but input 0 has \(2, 3\): all inputs "
                 r"must match on every axis except dim=0.*arg0=\(2, 3\) float32, arg1=\(3, 4\)"):
        nd.concat(nd.ones((2, 3)), nd.ones((3, 4)), dim=0)
    with _raises(r"^concat: input 1 has shape \(2,\) but input 0 has \(2, 3\)"):
        nd.concat(nd.ones((2, 3)), nd.ones((2,)))
    with _raises(r"^concat: dim=2 is out of range for an input with 2 dimension"):
        nd.concat(nd.ones((2, 3)), nd.ones((2, 3)), dim=2)


def test_stack_mismatched_shapes():
    with _raises(r"^stack: input 1 has shape \(3, 2\) but input 0 has \(2, 3\)"):
        nd.stack(nd.ones((2, 3)), nd.ones((3, 2)))


def test_split_not_divisible():
    with _raises(r"^split: axis 1 of an input of shape \(2, 5\) has size 5, which does not "
                 r"divide into num_outputs=2 equal parts.*inputs: data=\(2, 5\)"):
        nd.split(nd.ones((2, 5)), num_outputs=2)
    with _raises(r"^split: squeeze_axis=True needs parts of size 1"):
        nd.split(nd.ones((2, 4)), num_outputs=2, squeeze_axis=True)
