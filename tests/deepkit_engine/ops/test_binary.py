"""Forward checks of the binary elementwise ops against numpy (float64)."""
import numpy as np
import pytest

from .op_cases import BROADCAST_SHAPES, OpCase, forward_params, run_forward

CASES = [OpCase("add", [a, b], np.add) for a, b in BROADCAST_SHAPES]
CASES += [OpCase("_plus_scalar", [s], lambda x, scalar: x + scalar, {"scalar": 2.5})
          for s in [(3, 4), (), (0, 2)]]


@pytest.mark.parametrize("case,dtype", forward_params(CASES))
def test_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)
