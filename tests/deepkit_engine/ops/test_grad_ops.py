"""The ops the gradient pass inserts: un-broadcasting and its inverse."""
import numpy as np
import pytest

from deepkit_engine import ndarray as nd
from deepkit_engine.base import ShapeError

from .op_cases import Const, OpCase, forward_params, gradient_params, run_forward, run_gradient


def _reduce_ref(data, like):
    lead = data.ndim - like.ndim
    out = data.sum(axis=tuple(range(lead))) if lead else data
    axes = tuple(i for i, n in enumerate(like.shape) if n == 1 and out.shape[i] != 1)
    return out.sum(axis=axes, keepdims=True) if axes else out


CASES = [
    OpCase("_reduce_to_like", [(3, 4), (3, 4)], _reduce_ref),
    OpCase("_reduce_to_like", [(3, 4), (1, 4)], _reduce_ref),
    OpCase("_reduce_to_like", [(2, 3, 4), (3, 1)], _reduce_ref),
    OpCase("_reduce_to_like", [(2, 3), ()], _reduce_ref),
    OpCase("_reduce_to_like", [(0, 3), (1, 3)], _reduce_ref),
    OpCase("_broadcast_to_like", [(1, 4), (3, 4)], lambda d, l: np.broadcast_to(d, l.shape)),
    OpCase("_broadcast_to_like", [(3, 1), (2, 3, 4)], lambda d, l: np.broadcast_to(d, l.shape)),
    OpCase("_broadcast_to_like", [Const(np.float64(2.0)), (2, 2)],
           lambda d, l: np.broadcast_to(d, l.shape)),
]


@pytest.mark.parametrize("case,dtype", forward_params(CASES))
def test_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)


@pytest.mark.parametrize("case", gradient_params(CASES))
def test_gradient(case, ctx):
    run_gradient(case, ctx)


def test_not_a_broadcast_is_refused():
    with pytest.raises(ShapeError, match=r"_reduce_to_like.*\(3, 4\).*\(2, 4\)"):
        nd._reduce_to_like(nd.ones((3, 4)), nd.ones((2, 4)))
