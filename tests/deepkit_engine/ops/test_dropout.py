"""Dropout: inference is the identity, training zeroes and rescales with a mask that is
its gradient; shapes, seeds and errors."""
import numpy as np
import pytest

from deepkit_engine import autograd, random
from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import ParamError, ShapeError
from deepkit_engine.ops.registry import get_op
from deepkit_engine.testing import assert_almost_equal

from .op_cases import OpCase, forward_params, gradient_params, run_forward, run_gradient


def _identity(x, **params):
    return x


# -- Dropout -------------------------------------------------------------------------------

CASES = [
    # nd calls outside autograd.record() run in inference mode: the identity
    OpCase("Dropout", [(3, 4)], _identity, {"p": 0.5}, grad=False),
    OpCase("Dropout", [(2, 3, 4)], _identity, {"p": 0.3, "axes": (1,)}, grad=False),
    OpCase("Dropout", [()], _identity, grad=False),
    OpCase("Dropout", [(0, 3)], _identity, grad=False),
    # p = 0 keeps everything, also in training: numerically checkable
    OpCase("Dropout", [(3, 4)], _identity, {"p": 0.0}, name="p0"),
]
#: Dropout's gradient with p > 0 (the forward mask) is checked by this test.
OTHER_GRAD_COVERED_OPS = {"Dropout": "test_dropout_gradient_is_the_forward_mask"}


def test_dropout_in_training_zeroes_and_rescales():
    random.seed(7)
    x = nd.ones((200, 100))
    with autograd.record():
        y = nd.Dropout(x, p=0.3).asnumpy()
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.7)}
    assert abs((y == 0).mean() - 0.3) < 0.01
    assert abs(y.mean() - 1.0) < 0.03
    # the same seed, the same mask; inference is the identity
    random.seed(7)
    with autograd.record():
        again = nd.Dropout(x, p=0.3).asnumpy()
    np.testing.assert_array_equal(y, again)
    np.testing.assert_array_equal(nd.Dropout(x, p=0.3).asnumpy(), x.asnumpy())
    # autograd: the gradient is the mask drawn in forward (the hidden output)
    xs = nd.array(np.random.default_rng(0).uniform(0.5, 1.5, (20, 30)))
    xs.attach_grad()
    with autograd.record():
        out = nd.Dropout(xs, p=0.5)
    out.backward()
    assert_almost_equal(xs.grad, out.asnumpy() / xs.asnumpy())


def test_dropout_mode_always_axes_and_extremes():
    random.seed(3)
    x = nd.ones((50, 4, 30))
    y = nd.Dropout(x, p=0.5, mode="always", axes=(1,)).asnumpy()  # in inference too
    assert (y == 0).any() and (y == 2).any()
    # one mask value per (sample, position), shared along axis 1
    np.testing.assert_array_equal(y, np.broadcast_to(y[:, :1, :], y.shape))
    with autograd.record():
        assert (nd.Dropout(x, p=1.0).asnumpy() == 0).all()
        np.testing.assert_array_equal(nd.Dropout(x, p=0.0).asnumpy(), x.asnumpy())


def test_dropout_mask_is_a_hidden_output():
    net = sym.Dropout(sym.Variable("x"), p=0.5, axes=(0, 2), name="drop")
    assert net.list_outputs() == ["drop_output"]
    _, outs, _ = net.infer_shape(x=(4, 5, 6))
    assert outs == [(4, 5, 6)]
    op = get_op("Dropout")
    attrs = op.parse_attrs({"axes": (0, 2)})
    assert op.infer_shape(attrs, [(4, 5, 6)])[1] == [(4, 5, 6), (1, 5, 1)]


def test_dropout_gradient_is_the_forward_mask(ctx):
    random.seed(11)
    x = sym.Variable("data")
    net = sym.Dropout(x, p=0.4, axes=(2,))
    v = np.random.default_rng(0).uniform(0.5, 1.5, (3, 4, 5))
    exe = net.bind(ctx, {"data": nd.array(v, ctx=ctx, dtype="float64")},
                   args_grad={"data": nd.zeros(v.shape, ctx=ctx, dtype="float64")})
    out = exe.forward(is_train=True)[0].asnumpy()
    mask = out / v
    assert set(np.round(np.unique(mask), 12)) <= {0.0, round(1 / 0.6, 12)}
    ograd = np.random.default_rng(1).normal(size=v.shape)
    exe.backward(nd.array(ograd, ctx=ctx, dtype="float64"))
    assert_almost_equal(exe.grad_dict["data"], ograd * mask)


def test_dropout_bad_params():
    with pytest.raises(ParamError, match="p=1.5 must be <= 1.0"):
        nd.Dropout(nd.ones(3), p=1.5)
    with pytest.raises(ShapeError, match=r"(?s)Dropout.*axes=3 is out of range.*\(2, 3\)"):
        nd.Dropout(nd.ones((2, 3)), axes=(3,))


# -- the cases above, run ------------------------------------------------------------------

@pytest.mark.parametrize("case,dtype", forward_params(CASES))
def test_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)


@pytest.mark.parametrize("case", gradient_params(CASES))
def test_gradient(case, ctx):
    run_gradient(case, ctx)
