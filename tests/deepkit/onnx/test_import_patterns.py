"""ONNX import of the patterns newer exporters write, on small hand-made graphs.

Each graph is run by ONNX Runtime and by the imported model: shape arithmetic
on a named batch dimension, constants computed from constants, Constant
nodes in each spelling, opset-18 inputs in place of attributes, model-local
functions, and the ops PyTorch's ``dynamo=True`` exporter adds.
"""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx is in the test extra: pip install deepkit[test]")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is in the test extra")
dk_onnx = pytest.importorskip("deepkit.onnx")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402 - after the skips above

from deepkit.onnx import folding  # noqa: E402

OPSET = 20


def _model(nodes, inputs, outputs, initializers=(), functions=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs,
                              [numpy_helper.from_array(v, k) for k, v in dict(initializers).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]
                              + [helper.make_opsetid(f.domain, 1) for f in functions],
                              functions=list(functions))
    return model


def _input(name, dims):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def _output(name):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, None)


def _same_as_runtime(model, path, shapes):
    onnx.save(model, str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    imported = dk_onnx.load(path)
    rng = np.random.default_rng(0)
    for shape in shapes:
        x = rng.normal(size=shape).astype(np.float32)
        want = session.run(None, {model.graph.input[0].name: x})[0]
        got = imported.predict(x)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    return imported


def test_shape_arithmetic_on_a_named_batch_dimension(tmp_path):
    """PyTorch's ``x.view(x.size(0), -1)``, as the TorchScript exporter writes it."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Shape", ["r"], ["s"]),
        helper.make_node("Constant", [], ["zero"], value=numpy_helper.from_array(
            np.array(0, np.int64))),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Constant", [], ["axes"], value_ints=[0]),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
        helper.make_node("Constant", [], ["minus1"], value_ints=[-1]),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["r", "target"], ["y"]),
    ]
    model = _model(nodes, [_input("x", ["batch", 2, 3, 4])], [_output("y")])
    _same_as_runtime(model, tmp_path / "view.onnx", [(1, 2, 3, 4), (5, 2, 3, 4)])


def test_the_dynamo_exporters_shape_pattern_and_computed_constants(tmp_path):
    """Shape(start, end) -> Squeeze -> Reshape -> Concat; a zero bias made by Expand and
    CastLike; ReduceMean's axes as a computed input; Constant's value_float spelling."""
    weight = np.random.default_rng(1).normal(size=(4, 2, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Shape", ["w"], ["ws"], start=0, end=1),
        helper.make_node("Constant", [], ["zero"], value_float=0.0),
        helper.make_node("CastLike", ["zero", "x"], ["zero_like"]),
        helper.make_node("Expand", ["zero_like", "ws"], ["bias"]),
        helper.make_node("Conv", ["x", "w", "bias"], ["c"], pads=[1, 1, 1, 1],
                         auto_pad="NOTSET", dilations=[1, 1], strides=[1, 1],
                         kernel_shape=[3, 3], group=1),
        helper.make_node("Constant", [], ["raw_axes"], value_ints=[-1, -2]),
        helper.make_node("Constant", [], ["axes_shape"], value_ints=[2]),
        helper.make_node("Reshape", ["raw_axes", "axes_shape"], ["axes"]),
        helper.make_node("ReduceMean", ["c", "axes"], ["m"], keepdims=1),
        helper.make_node("Shape", ["x"], ["xs"], start=0, end=1),
        helper.make_node("Squeeze", ["xs"], ["n"]),
        helper.make_node("Constant", [], ["one"], value_ints=[1]),
        helper.make_node("Reshape", ["n", "one"], ["n1"]),
        helper.make_node("Constant", [], ["four"], value_ints=[4]),
        helper.make_node("Concat", ["n1", "four"], ["target"], axis=0),
        helper.make_node("Reshape", ["m", "target"], ["y"], allowzero=1),
    ]
    model = _model(nodes, [_input("x", ["s0", 2, 6, 6])], [_output("y")], {"w": weight})
    _same_as_runtime(model, tmp_path / "dynamo.onnx", [(1, 2, 6, 6), (3, 2, 6, 6)])


def test_a_fixed_batch_size_in_a_reshape_follows_the_input(tmp_path):
    nodes = [helper.make_node("Reshape", ["x", "target"], ["y"])]
    model = _model(nodes, [_input("x", [2, 3, 4])], [_output("y")],
                   {"target": np.array([2, 12], np.int64)})
    imported = _same_as_runtime(model, tmp_path / "fixed.onnx", [(2, 3, 4)])
    assert imported.predict(np.ones((5, 3, 4), np.float32)).shape == (5, 12)


def test_dynamo_ops_log_softmax_matmul_squeeze_unsqueeze_hardswish(tmp_path):
    weight = np.random.default_rng(2).normal(size=(6, 5)).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("HardSwish", ["h"], ["hs"]),
        helper.make_node("Constant", [], ["axes"], value_ints=[1]),
        helper.make_node("Unsqueeze", ["hs", "axes"], ["u"]),
        helper.make_node("Squeeze", ["u", "axes"], ["s"]),
        helper.make_node("HardSigmoid", ["s"], ["g"], alpha=0.3, beta=0.4),
        helper.make_node("Mul", ["s", "g"], ["p"]),
        helper.make_node("LogSoftmax", ["p"], ["y"], axis=1),
    ]
    model = _model(nodes, [_input("x", ["batch", 6])], [_output("y")], {"w": weight})
    _same_as_runtime(model, tmp_path / "ops.onnx", [(4, 6)])


def test_model_local_functions_are_inlined(tmp_path):
    function = helper.make_function("local", "Block", ["a"], ["b"], [
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("Sigmoid", ["r"], ["b"])], [helper.make_opsetid("", OPSET)])
    nodes = [helper.make_node("Block", ["x"], ["y"], domain="local")]
    model = _model(nodes, [_input("x", ["batch", 3])], [_output("y")], functions=[function])
    _same_as_runtime(model, tmp_path / "functions.onnx", [(2, 3)])


def test_all_problems_are_listed_each_at_its_source(tmp_path):
    nodes = [
        helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2], auto_pad="SAME_UPPER"),
        helper.make_node("Relu", ["p"], ["r"]),
        helper.make_node("Erf", ["r"], ["y"]),
    ]
    path = tmp_path / "odd.onnx"
    onnx.save(_model(nodes, [_input("x", [1, 1, 4, 4])], [_output("y")]), str(path))
    with pytest.raises(dk_onnx.OnnxImportError) as err:
        dk_onnx.load(path)
    assert len(err.value.problems) == 2  # the Relu after the MaxPool is not blamed
    assert "MaxPool" in err.value.problems[0] and "auto_pad=SAME_UPPER" in str(err.value)
    assert "ONNX op Erf is not imported" in err.value.problems[1]
    assert "odd.onnx" in str(err.value)


def test_shape_values_keep_named_dimensions():
    batch = folding.Dim("batch")
    shape = folding.shape_of([batch, 3, 4, 4])
    assert folding.is_symbolic(shape)
    assert folding.shape_op("Gather", {"axis": 0}, [shape, np.array([1, 2])]).tolist() == [3, 4]
    flat = folding.shape_op("Concat", {"axis": 0}, [
        folding.shape_op("Slice", {}, [shape, np.array([0]), np.array([1])]),
        np.array([-1])])
    assert list(flat) == [batch, -1]
    assert folding.shape_op("Mul", {}, [shape[1:], np.array(2)]).dtype == np.int64
    assert isinstance(folding.shape_op("Mul", {}, [shape[:1], np.array(2)])[0], folding.Dim)
