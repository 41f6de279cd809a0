"""What NDArray and Symbol generate from op declarations: fluent methods, Python operators
and scalar forms; the one kernel dispatch and the one resource handler."""
import numpy as np
import pytest

from deepkit_engine import generators
from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import DeepkitError
from deepkit_engine.context import Context
from deepkit_engine.ops.fluent import fluent_methods
from deepkit_engine.ops.registry import OPERATORS, canonical_ops, get_op
from deepkit_engine.resources import acquire
from deepkit_engine.testing import assert_almost_equal

FLUENT = (
    "sum", "mean", "prod", "max", "min", "nansum", "nanprod", "norm", "argmax", "argmin",
    "abs", "sign", "exp", "expm1", "log", "log1p", "log2", "log10", "sqrt", "rsqrt", "cbrt",
    "square", "reciprocal", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh",
    "tanh", "arcsinh", "arccosh", "arctanh", "sigmoid", "relu", "softmax", "log_softmax",
    "round", "rint", "floor", "ceil", "trunc", "fix", "clip", "transpose", "swapaxes",
    "flatten", "expand_dims", "squeeze", "broadcast_to", "broadcast_axes", "broadcast_like",
    "reshape_like", "tile", "repeat", "flip", "take", "pick", "one_hot", "sort", "argsort",
    "topk", "split", "slice", "slice_axis", "slice_like", "zeros_like", "ones_like",
    "degrees", "radians", "rcbrt", "softmin", "depth_to_space", "space_to_depth", "diag",
    "shape_array", "size_array", "mish",
)


def test_fluent_methods_come_from_declarations():
    assert set(fluent_methods()) == set(FLUENT)
    for name in FLUENT:
        assert callable(getattr(nd.NDArray, name)), name
        assert callable(getattr(sym.Symbol, name)), name
    assert fluent_methods()["broadcast_axes"] is get_op("broadcast_axis")


def test_declared_operators_are_known_and_unique():
    seen = {}
    for op in canonical_ops().values():
        if op.operator is not None:
            assert op.operator in OPERATORS
            assert op.operator not in seen, (op.name, seen.get(op.operator))
            seen[op.operator] = op.name
    assert seen["add"] == "add" and seen["matmul"] == "dot" and seen["invert"] == "logical_not"


@pytest.mark.parametrize("expr,expected", [
    (lambda a, b: a + b, lambda a, b: a + b), (lambda a, b: a - b, lambda a, b: a - b),
    (lambda a, b: a * b, lambda a, b: a * b), (lambda a, b: a / b, lambda a, b: a / b),
    (lambda a, b: a % b, lambda a, b: np.mod(a, b)), (lambda a, b: a ** b, lambda a, b: a ** b),
    (lambda a, b: 2 - a, lambda a, b: 2 - a), (lambda a, b: 3 / a, lambda a, b: 3 / a),
    (lambda a, b: 2 ** a, lambda a, b: 2 ** a), (lambda a, b: a % 0.7, lambda a, b: a % 0.7),
    (lambda a, b: a > 1.5, lambda a, b: (a > 1.5) * 1.0), (lambda a, b: 1.5 > a,
                                                          lambda a, b: (1.5 > a) * 1.0),
    (lambda a, b: a <= b, lambda a, b: (a <= b) * 1.0), (lambda a, b: a == b,
                                                         lambda a, b: (a == b) * 1.0),
    (lambda a, b: -a, lambda a, b: -a), (lambda a, b: abs(-a), lambda a, b: a),
    (lambda a, b: a @ b, lambda a, b: a @ b),
])
def test_operators_on_ndarray_and_symbol_agree_with_numpy(expr, expected):
    a = np.array([[1.0, 2.0], [3.0, 0.5]])
    b = np.array([[0.5, 2.0], [1.0, 4.0]])
    assert_almost_equal(expr(nd.array(a, dtype="float64"), nd.array(b, dtype="float64")),
                        expected(a, b))
    s = expr(sym.Variable("a"), sym.Variable("b"))
    args = {k: nd.array(v, dtype="float64") for k, v in (("a", a), ("b", b))
            if k in s.list_arguments()}
    assert_almost_equal(s.eval(**args)[0], expected(a, b))


def test_in_place_operators_write_into_the_array():
    x = nd.array([1.0, 2.0])
    same = x
    x += 1
    x *= nd.array([2.0, 3.0])
    assert x is same
    assert_almost_equal(x, [4.0, 9.0])


def test_symbol_operator_nodes_keep_mxnet_names():
    with sym.NameManager():
        a, b = sym.Variable("a"), sym.Variable("b")
        names = [s.name for s in (a + b, a + 1, 1 - a, a * 2, a == b, a > 1, 1 > a, -a, a ** b)]
    assert names == ["_plus0", "_plusscalar0", "_rminusscalar0", "_mulscalar0", "_equal0",
                     "_greater_scalar0", "_lesser_scalar0", "negative0", "_power0"]


def test_scalar_forms_in_generated_functions():
    x = nd.array([1.0, 4.0])
    assert_almost_equal(nd.subtract(10, x), [9.0, 6.0])
    assert_almost_equal(nd.greater(x, 2), [0.0, 1.0])
    assert_almost_equal(nd.greater(2, x), [1.0, 0.0])
    s = sym.subtract(10, sym.Variable("x"))
    assert s.get_internals()[1].name.startswith("_rminus_scalar")
    assert_almost_equal(s.eval(x=x)[0], [9.0, 6.0])


def test_mxnet_internal_names_used_by_caffe_files_stay():
    x = sym.Variable("x")
    for name, op in [("_mul_scalar", "_mul_scalar"), ("_plus_scalar", "_plus_scalar"),
                     ("_rminus_scalar", "_rminus_scalar"), ("_power_scalar", "_power_scalar"),
                     ("_maximum", "maximum"), ("_greater_scalar", "_greater_scalar")]:
        fn = getattr(sym, name)
        node = (fn(x, x) if op == "maximum" else fn(x, scalar=2.0))._outputs[0][0]
        assert node.op is get_op(op), name


def test_one_kernel_dispatch():
    op = get_op("Convolution")
    assert op.kernel(np) is op.forward_cpu
    assert op.kernel(Context("cpu")) is op.forward_cpu
    assert op.kernel(Context("gpu", 0)) is op.forward_gpu
    assert op.kernel(None) is op.forward_cpu


def test_one_resource_handler():
    ctx = Context("cpu")
    kwargs, writes = acquire(("rng", "is_train"), ctx, True)
    state = generators.state_for(ctx)
    assert kwargs == {"rng": state.generator, "is_train": True}
    assert writes == [state.var]
    assert acquire((), ctx, False) == ({}, [])
    with pytest.raises(DeepkitError, match="MyOp: unknown resource 'tmp'"):
        acquire(("tmp",), ctx, False, "MyOp")
