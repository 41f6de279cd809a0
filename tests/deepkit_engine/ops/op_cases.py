"""Declarative op test cases: inputs, parameters and a float64 numpy reference.

Each ``test_<family>.py`` module lists ``CASES``; ``forward_params(CASES)``
expands them over dtypes for ``pytest.mark.parametrize``. The registry-wide
test in ``test_registry_coverage.py`` fails when a registered op has no case.
"""
import dataclasses
from typing import Any, Callable

import numpy as np
import pytest

from deepkit_engine import autograd, nd
from deepkit_engine import symbol as sym
from deepkit_engine.ops.registry import get_op
from deepkit_engine.testing import check_numeric_gradient, check_op_forward

#: Shapes every elementwise op is checked on: scalar, size-1, zero-size, general.
ELEMWISE_SHAPES = [(), (1,), (0,), (3, 4), (2, 1, 3), (2, 0, 3)]
#: Broadcasting pairs, including size-1 and zero-size dimensions.
BROADCAST_SHAPES = [((3, 4), (3, 4)), ((3, 4), (1, 4)), ((2, 1, 3), (4, 1)), ((3, 1), ()),
                    ((0, 4), (1, 4)), ((1,), (5,))]


@dataclasses.dataclass
class Int:
    """An integer input: values in [low, high) with the given shape."""
    shape: tuple
    low: int = 0
    high: int = 10
    dtype: str = "int64"


@dataclasses.dataclass
class Const:
    """A fixed input array (its dtype is the case's dtype when float)."""
    value: Any


@dataclasses.dataclass
class OpCase:
    """One forward check of ``nd.<op>(*inputs, **params)`` against ``ref``.

    Attributes:
        op: Registered op name (call name).
        inputs: Per input: a shape (uniform floats in [low, high] of the case
            dtype), an :class:`Int`, a :class:`Const`, or a callable
            ``(rng, dtype) -> array``.
        ref: ``ref(*float64_inputs, **params)``: numpy reference.
        params: Op parameters.
        dtypes: Float dtypes to run.
        low, high: Range of random float inputs.
        rtol, atol: Tolerances (default by dtype).
        grad: Whether the numeric gradient check applies to this case.
        name: Extra id text.
    """
    op: str
    inputs: list
    ref: Callable
    params: dict = dataclasses.field(default_factory=dict)
    dtypes: tuple = ("float32", "float64")
    low: float = -1.0
    high: float = 1.0
    rtol: float | None = None
    atol: float | None = None
    grad: bool = True
    name: str = ""

    def make_inputs(self, rng, dtype):
        arrays = []
        for spec in self.inputs:
            if isinstance(spec, Int):
                arrays.append(rng.integers(spec.low, spec.high, size=spec.shape).astype(spec.dtype))
            elif isinstance(spec, Const):
                v = np.asarray(spec.value)
                arrays.append(v.astype(dtype) if v.dtype.kind == "f" else v)
            elif callable(spec):
                arrays.append(np.asarray(spec(rng, dtype)))
            else:
                arrays.append(rng.uniform(self.low, self.high, size=tuple(spec)).astype(dtype))
        return arrays


def case_id(case):
    shapes = ",".join("x".join(map(str, getattr(s, "shape", s))) if not callable(s) else "fn"
                      for s in case.inputs if not isinstance(s, Const))
    extra = ",".join(f"{k}={v}" for k, v in case.params.items())
    return "-".join(p for p in (case.op, shapes, extra, case.name) if p)


def forward_params(cases):
    """``pytest.param(case, dtype)`` for every case and each of its dtypes."""
    return [pytest.param(c, d, id=f"{case_id(c)}-{d}") for c in cases for d in c.dtypes]


def run_forward(case, dtype, ctx, seed=0):
    rng = np.random.default_rng(seed)
    inputs = case.make_inputs(rng, dtype)
    return check_op_forward(case.op, inputs, case.ref, case.params, ctx, case.rtol, case.atol)


def gradient_params(cases):
    """``pytest.param(case)`` for every case whose op is differentiable and ``grad`` is set."""
    return [pytest.param(c, id=case_id(c)) for c in cases
            if c.grad and get_op(c.op).differentiable]


def run_gradient(case, ctx, seed=0, eps=1e-5, rtol=1e-4, atol=1e-6):
    """Numeric gradient check of ``sym.<op>`` at random float64 inputs.

    Every float input is checked; integer inputs (indices) are not.
    """
    rng = np.random.default_rng(seed)
    inputs = case.make_inputs(rng, "float64")
    variables = [sym.Variable(f"in{i}") for i in range(len(inputs))]
    net = getattr(sym, case.op)(*variables, **case.params)
    location = {f"in{i}": x for i, x in enumerate(inputs)}
    floats = [f"in{i}" for i, x in enumerate(inputs) if x.dtype.kind == "f"]
    check_numeric_gradient(net, location, grad_nodes=floats, numeric_eps=eps, rtol=rtol,
                           atol=atol, ctx=ctx)


def second_order(fn, values, ctx, wrt=1):
    """Grads of ``fn(*xs)`` w.r.t. the first ``wrt`` arrays (create_graph), then backward.

    Returns the first-order gradients and every array's ``.grad`` afterwards: per element,
    the sum over all first-order gradient elements of their derivatives.
    """
    xs = [nd.array(v, ctx=ctx, dtype="float64") for v in values]
    for x in xs:
        x.attach_grad()
    with autograd.record():
        y = fn(*xs)
        grads = autograd.grad(y, xs[:wrt], create_graph=True)
    grads = list(grads) if isinstance(grads, (list, tuple)) else [grads]
    autograd.backward(grads)
    return [g.asnumpy() for g in grads], [x.grad.asnumpy() for x in xs]
