"""Activation: every act_type against numpy, with gradients."""
import numpy as np
import pytest

from deepkit_engine.base import ParamError
from deepkit_engine import ndarray as nd

from .op_cases import ELEMWISE_SHAPES, OpCase, forward_params, gradient_params, run_forward, \
    run_gradient

_REFERENCE = {
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "softrelu": lambda x: np.log1p(np.exp(x)),
    "softsign": lambda x: x / (1 + np.abs(x)),
}


def _ref(act):
    return lambda x, act_type: _REFERENCE[act](x)


CASES = [OpCase("Activation", [shape], _ref(act), {"act_type": act}, low=-3, high=3,
                grad=shape == (3, 4))
         for act in _REFERENCE for shape in ELEMWISE_SHAPES]


@pytest.mark.parametrize("case,dtype", forward_params(CASES))
def test_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)


@pytest.mark.parametrize("case", gradient_params(CASES))
def test_gradient(case, ctx):
    run_gradient(case, ctx)


def test_softrelu_does_not_overflow():
    out = nd.Activation(nd.array([-1000.0, 0.0, 1000.0]), act_type="softrelu").asnumpy()
    np.testing.assert_allclose(out, [0.0, np.log(2.0), 1000.0], rtol=1e-6)


def test_unknown_act_type_lists_choices():
    with pytest.raises(ParamError, match="act_type='rellu' must be one of.*did you mean 'relu'"):
        nd.Activation(nd.ones(2), act_type="rellu")
