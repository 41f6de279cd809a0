"""SequenceMask, SequenceLast and SequenceReverse: forward against plain-loop numpy
references, gradients (numeric, executor-level and second order), lengths and errors."""
import numpy as np
import pytest

from deepkit_engine import autograd
from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import ParamError, ShapeError
from deepkit_engine.testing import assert_almost_equal

from .op_cases import Int, OpCase, forward_params, gradient_params, run_forward, run_gradient


def _float_ints(shape, low, high):
    """Float-valued integer indices (MXNet passes indices as float arrays)."""
    return lambda rng, dtype: rng.integers(low, high, size=shape).astype(dtype)


# -- SequenceMask, SequenceLast, SequenceReverse -------------------------------------------

def _steps(data, axis):
    return data.shape[axis], data.shape[1 - axis]


def _length_of(length, n, steps):
    return steps if length is None else int(min(max(int(length[n]), 0), steps))


def _at(data, axis, t, n):
    return data[t, n] if axis == 0 else data[n, t]


def _seq_mask_ref(data, length=None, use_sequence_length=False, value=0.0, axis=0):
    out = data.copy()
    steps, batch = _steps(data, axis)
    for n in range(batch):
        for t in range(_length_of(length, n, steps), steps):
            if axis == 0:
                out[t, n] = value
            else:
                out[n, t] = value
    return out


def _seq_last_ref(data, length=None, use_sequence_length=False, axis=0):
    steps, batch = _steps(data, axis)
    out = np.zeros((batch,) + data.shape[2:])
    for n in range(batch):
        out[n] = _at(data, axis, max(_length_of(length, n, steps), 1) - 1, n)
    return out


def _seq_last_grad_ref(ograd, like, length=None, use_sequence_length=False, axis=0):
    steps, batch = _steps(like, axis)
    grad = np.zeros(like.shape)
    for n in range(batch):
        t = max(_length_of(length, n, steps), 1) - 1
        if axis == 0:
            grad[t, n] = ograd[n]
        else:
            grad[n, t] = ograd[n]
    return grad


def _seq_reverse_ref(data, length=None, use_sequence_length=False, axis=0):
    out = data.copy()
    steps, batch = _steps(data, axis)
    for n in range(batch):
        size = _length_of(length, n, steps)
        for t in range(size):
            if axis == 0:
                out[t, n] = data[size - 1 - t, n]
            else:
                out[n, t] = data[n, size - 1 - t]
    return out


_SEQ = {"use_sequence_length": True}
CASES = [
    OpCase("SequenceMask", [(4, 3, 2), Int((3,), 0, 6)], _seq_mask_ref, {**_SEQ, "value": -1.0}),
    OpCase("SequenceMask", [(3, 5), Int((3,), 0, 6)], _seq_mask_ref, {**_SEQ, "axis": 1}),
    OpCase("SequenceMask", [(4, 3), _float_ints((3,), 0, 5)], _seq_mask_ref, _SEQ,
           grad=False, name="float-length"),
    OpCase("SequenceMask", [(4, 3, 2)], _seq_mask_ref, {"value": 5.0}),
    OpCase("SequenceMask", [(0, 3), Int((3,), 0, 2)], _seq_mask_ref, _SEQ),
    OpCase("SequenceLast", [(4, 3, 2), Int((3,), 0, 7)], _seq_last_ref, _SEQ),
    OpCase("SequenceLast", [(3, 4), Int((3,), 1, 5)], _seq_last_ref, {**_SEQ, "axis": 1}),
    OpCase("SequenceLast", [(4, 3, 2)], _seq_last_ref),
    OpCase("SequenceLast", [(2, 5), _float_ints((2,), 1, 6)], _seq_last_ref,
           {**_SEQ, "axis": 1}, grad=False, name="float-length"),
    OpCase("SequenceLast", [(3, 0, 2), Int((0,), 1, 3)], _seq_last_ref, _SEQ),
    OpCase("_backward_SequenceLast", [(3, 2), (4, 3, 2), Int((3,), 0, 6)], _seq_last_grad_ref,
           _SEQ),
    OpCase("_backward_SequenceLast", [(3,), (3, 5)], _seq_last_grad_ref, {"axis": 1}),
    OpCase("SequenceReverse", [(5, 3, 2), Int((3,), 0, 7)], _seq_reverse_ref, _SEQ),
    OpCase("SequenceReverse", [(3, 5), Int((3,), 0, 6)], _seq_reverse_ref, {**_SEQ, "axis": 1}),
    OpCase("SequenceReverse", [(4, 2, 2)], _seq_reverse_ref),
    OpCase("SequenceReverse", [(4, 3), _float_ints((3,), 0, 5)], _seq_reverse_ref, _SEQ,
           grad=False, name="float-length"),
]


def test_sequence_inputs_and_shapes():
    data = sym.Variable("data")
    net = sym.SequenceLast(data, use_sequence_length=True, name="last")
    assert net.list_arguments() == ["data", "last_sequence_length"]
    args, outs, _ = net.infer_shape(data=(10, 4, 7))
    assert args == [(10, 4, 7), (4,)] and outs == [(4, 7)]
    assert sym.SequenceMask(data).list_arguments() == ["data"]
    masked = sym.SequenceMask(data, use_sequence_length=True, axis=1, name="mask")
    assert masked.infer_shape(data=(4, 10, 7))[0] == [(4, 10, 7), (4,)]


@pytest.mark.parametrize("op", ["SequenceMask", "SequenceLast", "SequenceReverse"])
def test_sequence_errors_name_the_op_and_shapes(op):
    fn = getattr(nd, op)
    with pytest.raises(ShapeError, match=rf"(?s){op}.*sequence_length.*\(4,\).*\(5, 3\).*"
                                         r"\(3,\)"):
        fn(nd.ones((5, 3)), nd.ones(4), use_sequence_length=True)
    with pytest.raises(ShapeError, match=rf"(?s){op}.*\(5,\).*at least 2 dimensions"):
        fn(nd.ones(5))
    with pytest.raises(ParamError, match="axis=2 must be one of 0, 1"):
        fn(nd.ones((5, 3)), axis=2)


def test_sequence_ops_executor(ctx):
    v = np.random.default_rng(0).normal(size=(4, 3, 2))
    length = np.array([2.0, 4.0, 1.0])
    data, seq = sym.Variable("data"), sym.Variable("len")
    net = sym.Group([sym.SequenceLast(data, seq, use_sequence_length=True),
                     sym.SequenceReverse(data, seq, use_sequence_length=True),
                     sym.SequenceMask(data, seq, use_sequence_length=True, value=9.0)])
    exe = net.bind(ctx, {"data": nd.array(v, ctx=ctx, dtype="float64"),
                         "len": nd.array(length, ctx=ctx, dtype="float64")},
                   args_grad={"data": nd.zeros(v.shape, ctx=ctx, dtype="float64")},
                   grad_req={"data": "write", "len": "null"})
    outs = exe.forward(is_train=True)
    assert_almost_equal(outs[0], _seq_last_ref(v, length))
    assert_almost_equal(outs[1], _seq_reverse_ref(v, length))
    assert_almost_equal(outs[2], _seq_mask_ref(v, length, value=9.0))
    rng = np.random.default_rng(1)
    grads = [rng.normal(size=o.shape) for o in outs]
    exe.backward([nd.array(g, ctx=ctx, dtype="float64") for g in grads])
    expected = (_seq_last_grad_ref(grads[0], v, length) + _seq_reverse_ref(grads[1], length)
                + _seq_mask_ref(grads[2], length))
    assert_almost_equal(exe.grad_dict["data"], expected)


def test_sequence_last_second_order():
    length = nd.array([3.0, 1.0])
    v = np.random.default_rng(5).uniform(-1, 1, (3, 2, 2))
    x = nd.array(v, dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = nd.square(nd.SequenceLast(x, length, use_sequence_length=True))
        g = autograd.grad(y, x, create_graph=True)
    g.backward()
    # g is 2x at each sequence's last step, 0 elsewhere: its derivative is 2 there
    assert_almost_equal(g, _seq_last_grad_ref(2 * _seq_last_ref(v, [3, 1]), v, [3, 1]))
    assert_almost_equal(x.grad, _seq_last_grad_ref(np.full((2, 2), 2.0), v, [3, 1]))


# -- the cases above, run ------------------------------------------------------------------

@pytest.mark.parametrize("case,dtype", forward_params(CASES))
def test_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)


@pytest.mark.parametrize("case", gradient_params(CASES))
def test_gradient(case, ctx):
    run_gradient(case, ctx)
