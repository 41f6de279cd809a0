"""Init ops (_zeros, _ones, _full, _arange, _eye) and the nd/sym functions over them."""
import numpy as np
import pytest

import deepkit_engine as dk
from deepkit_engine import nd, sym
from deepkit_engine.base import ParamError, ShapeError

from .op_cases import OpCase, forward_params, run_forward

CASES = [
    OpCase("_zeros", [], lambda shape: np.zeros(shape), {"shape": (2, 3)}, grad=False),
    OpCase("_ones", [], lambda shape: np.ones(shape), {"shape": (4,)}, grad=False),
    OpCase("_full", [], lambda shape, value: np.full(shape, value),
           {"shape": (2, 2), "value": -1.5}, grad=False),
    OpCase("_arange", [], lambda start, stop, step, repeat: np.repeat(
        np.arange(start, stop, step), repeat), {"start": 1, "stop": 4, "step": 0.5, "repeat": 2},
        grad=False),
    OpCase("_arange", [], lambda start: np.arange(start), {"start": 5}, grad=False,
           name="stop_only"),
    OpCase("_eye", [], lambda N, M, k: np.eye(N, M, k), {"N": 3, "M": 4, "k": -1}, grad=False),
]


@pytest.mark.parametrize("case,dtype", forward_params(CASES))
def test_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)


def test_init_ops_are_not_differentiable_and_check_params():
    for name in ("_zeros", "_ones", "_full", "_arange", "_eye"):
        assert not dk.ops.get_op(name).differentiable
    with pytest.raises(ParamError, match="step=0.0 must not be 0"):
        nd._arange(start=0, stop=3, step=0)


def test_sym_creation_functions():
    assert sym.ones((2, 3)).infer_shape()[1] == [(2, 3)]
    assert sym.zeros(4, dtype="int32").infer_type()[1] == [np.int32]
    assert sym.arange(2, 8, 2).infer_shape()[1] == [(3,)]
    assert sym.eye(3, 4, k=1).infer_shape()[1] == [(3, 4)]
    net = sym.full((2, 2), 3.0) + sym.var("a")
    exe = net.bind(dk.cpu(), {"a": nd.ones((2, 2))}, grad_req="null")
    np.testing.assert_array_equal(exe.forward()[0].asnumpy(), np.full((2, 2), 4.0))
    with pytest.raises(ValueError, match="infer_range"):
        sym.arange(3, infer_range=True)


def test_nd_eye_out_concatenate_moveaxis_split_v2():
    np.testing.assert_array_equal(nd.eye(2, 3, 1).asnumpy(), np.eye(2, 3, 1))
    x = nd.ones((2, 3))
    assert nd.zeros((2, 3), out=x) is x and x.asnumpy().sum() == 0
    assert nd.full((2, 3), 7, out=x) is x and x.asnumpy().min() == 7
    with pytest.raises(ShapeError, match=r"out has shape \(2, 3\)"):
        nd.ones((3,), out=x)
    a = nd.array(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(nd.concatenate([a, a], axis=1).asnumpy(),
                                  np.concatenate([a.asnumpy()] * 2, axis=1))
    assert nd.concatenate([a], always_copy=False) is a
    assert nd.moveaxis(nd.ones((2, 3, 4)), 0, -1).shape == (3, 4, 2)
    with pytest.raises(ValueError, match="source=3 is out of range"):
        nd.moveaxis(a, 3, 0)
    parts = nd.split_v2(a, (1,), axis=1)
    np.testing.assert_array_equal(parts[1].asnumpy(), a.asnumpy()[:, 1:])
    assert [p.shape for p in a.split_v2(3, axis=1)] == [(2, 1)] * 3
    assert [s for s in sym.var("x").split_v2((2,), axis=0).infer_shape(x=(5, 2))[1]] == \
        [(2, 2), (3, 2)]
    with pytest.raises(TypeError, match="int or a tuple"):
        nd.split_v2(a, 1.5)


def test_init_ops_without_dtype_make_float32_arrays():
    """dtype=None is for graphs (inferred from what the array feeds); called on its own
    the op gives MXNet's float32."""
    assert nd._zeros(shape=(2, 3)).dtype == np.float32
    assert nd._full(shape=(2,), value=1.5).dtype == np.float32
    assert nd._ones(shape=(2,), dtype="float16").dtype == np.float16
