"""ONNX import: an ONNX graph as a :class:`~deepkit.models.SymbolModel` ready for ``predict``.

Each ONNX node becomes engine ops (``Conv`` -> ``Convolution``, ``Gemm`` ->
``FullyConnected``, ...), initializers become the model's parameters, and
graph inputs its inputs (NCHW, as ONNX lays images out). The op set is the
one the exporter writes plus what PyTorch's two exporters (TorchScript and
``dynamo=True``) write for convolutional classifiers (Conv,
BatchNormalization, pooling, Gemm, MatMul, Flatten, Add, Relu, LogSoftmax,
...); anything else is listed in one error.

Before converting, model-local functions are inlined and ONNX's shape
inference names every value's dimensions; nodes whose inputs are all
constant are computed (:mod:`deepkit.onnx.folding`), and shape arithmetic on
a named batch dimension is carried along until a ``Reshape`` uses it. A
graph exported with a fixed batch size keeps working for other batch sizes
where a ``Reshape`` repeated the batch size (it copies the input's first
dimension instead).
"""
import os

import numpy as np

from deepkit_engine import io as dk_io
from deepkit_engine import symbol as sym
from deepkit_engine.base import DeepkitError

from ..models.symbol_model import SymbolModel, SymbolParameter
from . import folding
from .export import onnx_modules

__all__ = ["load", "OnnxImportError", "importable_ops"]


class OnnxImportError(DeepkitError):
    """An ONNX graph holds nodes deepkit cannot import; ``problems`` lists each one."""

    def __init__(self, path, problems):
        self.problems = list(problems)
        super().__init__(f"cannot import {os.fspath(path)!r} ({len(self.problems)} "
                         f"problem(s)):\n  " + "\n  ".join(self.problems))


class _Context:
    """Symbols by ONNX value name, and the constant arrays known so far."""

    def __init__(self, constants, types=None):
        self.values, self.constants = {}, dict(constants)
        self.shape_sources = {}  # Shape node output -> the value whose shape it is
        self.shapes = {}  # shape values holding a named dimension (see folding)
        self.types = dict(types or {})  # value name -> (ONNX element type, dims)

    def dims(self, name):
        """The dims of value ``name`` (ints and :class:`~deepkit.onnx.folding.Dim`), or None."""
        if name in self.constants:
            return list(np.shape(self.constants[name]))
        if name in self.shapes:
            return list(self.shapes[name].shape)
        return (self.types.get(name) or (None, None))[1]

    def get(self, name):
        if name in self.values:
            return self.values[name]
        if name in self.constants:
            return sym.Variable(name)
        raise KeyError(f"value '{name}' is used before it is produced")

    def const(self, name):
        if name not in self.constants:
            raise ValueError(f"input '{name}' must be a constant (an initializer) here")
        return self.constants[name]


def _attrs(node, helper):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _pad_pair(pads, rank, what):
    pads = list(pads or [0] * (2 * rank))
    begins, ends = pads[:rank], pads[rank:]
    if begins != ends:
        raise ValueError(f"{what} with asymmetric pads {pads} is not imported")
    return tuple(begins)


def _conv(c, node, a, name):
    weight = c.const(node.input[1])
    rank = weight.ndim - 2
    _check_padding(node, a)
    kwargs = dict(kernel=tuple(a.get("kernel_shape", weight.shape[2:])),
                  stride=tuple(a.get("strides", (1,) * rank)),
                  dilate=tuple(a.get("dilations", (1,) * rank)),
                  pad=_pad_pair(a.get("pads"), rank, "Conv"), num_group=int(a.get("group", 1)),
                  name=name)
    bias = len(node.input) > 2 and node.input[2]
    if node.op_type == "ConvTranspose":
        num_filter = weight.shape[1] * kwargs["num_group"]
        if a.get("output_padding"):
            kwargs["adj"] = tuple(a["output_padding"])
        return sym.Deconvolution(c.get(node.input[0]), c.get(node.input[1]),
                                 *( [c.get(node.input[2])] if bias else []),
                                 num_filter=num_filter, no_bias=not bias, **kwargs)
    return sym.Convolution(c.get(node.input[0]), c.get(node.input[1]),
                           *([c.get(node.input[2])] if bias else []),
                           num_filter=weight.shape[0], no_bias=not bias, **kwargs)


def _gemm(c, node, a, name):
    if a.get("transA", 0) or float(a.get("alpha", 1.0)) != 1.0 \
            or float(a.get("beta", 1.0)) != 1.0:
        raise ValueError("Gemm with transA, alpha or beta other than the defaults is not "
                         "imported")
    weight_name = node.input[1]
    weight = c.const(weight_name)
    if not a.get("transB", 0):
        weight = weight.T
        weight_name = f"{weight_name}__t"
        c.constants[weight_name] = np.ascontiguousarray(weight)
    bias = len(node.input) > 2 and node.input[2]
    inputs = [c.get(node.input[0]), sym.Variable(weight_name)]
    if bias:
        inputs.append(c.get(node.input[2]))
    return sym.FullyConnected(*inputs, num_hidden=weight.shape[0], no_bias=not bias,
                              flatten=True, name=name)


def _check_padding(node, a):
    """Refuse the padding and dilation settings the engine's ops do not take."""
    auto_pad = a.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad not in ("NOTSET", "VALID"):
        raise ValueError(f"{node.op_type} with auto_pad={auto_pad} is not imported (export "
                         "with explicit pads)")
    if node.op_type not in ("Conv", "ConvTranspose") \
            and any(int(d) != 1 for d in a.get("dilations", ())):
        raise ValueError(f"{node.op_type} with dilations {list(a['dilations'])} is not imported")


def _pool(kind):
    def convert(c, node, a, name):
        rank = len(a["kernel_shape"])
        _check_padding(node, a)
        kwargs = dict(kernel=tuple(a["kernel_shape"]), pool_type=kind,
                      stride=tuple(a.get("strides", (1,) * rank)),
                      pad=_pad_pair(a.get("pads"), rank, node.op_type),
                      pooling_convention="full" if a.get("ceil_mode", 0) else "valid")
        if kind == "avg":
            kwargs["count_include_pad"] = bool(a.get("count_include_pad", 0))
        return sym.Pooling(c.get(node.input[0]), name=name, **kwargs)
    return convert


def _global_pool(kind):
    def convert(c, node, a, name):
        return sym.Pooling(c.get(node.input[0]), kernel=(1, 1), pool_type=kind,
                           global_pool=True, name=name)
    return convert


def _batch_norm(c, node, a, name):
    ins = [c.get(n) for n in node.input[:5]]
    return sym.BatchNorm(*ins, eps=float(a.get("epsilon", 1e-5)), fix_gamma=False,
                         use_global_stats=True, name=name)


def _binary(engine_op):
    def convert(c, node, a, name):
        lhs, rhs = node.input[0], node.input[1]
        for const_name, other, reflected in ((rhs, lhs, False), (lhs, rhs, True)):
            value = c.constants.get(const_name)
            if value is not None and value.size == 1 and other not in c.constants:
                scalar = float(value.ravel()[0])
                x = c.get(other)
                return {("add", False): lambda: x + scalar, ("add", True): lambda: scalar + x,
                        ("sub", False): lambda: x - scalar, ("sub", True): lambda: scalar - x,
                        ("mul", False): lambda: x * scalar, ("mul", True): lambda: scalar * x,
                        ("div", False): lambda: x / scalar,
                        ("div", True): lambda: scalar / x}[(engine_op, reflected)]()
        op = {"add": sym.broadcast_add, "sub": sym.broadcast_sub, "mul": sym.broadcast_mul,
              "div": sym.broadcast_div}[engine_op]
        return op(c.get(lhs), c.get(rhs), name=name)
    return convert


def _unary(function):
    def convert(c, node, a, name):
        return function(c.get(node.input[0]), name=name)
    return convert


def _flatten(c, node, a, name):
    if a.get("axis", 1) != 1:
        raise ValueError("Flatten with an axis other than 1 is not imported")
    return sym.flatten(c.get(node.input[0]), name=name)


def _reshape(c, node, a, name):
    x_name, shape_name = node.input[0], node.input[1]
    if shape_name in c.shapes:
        return sym.reshape(c.get(x_name), shape=_engine_shape(c, node, a), name=name)
    source = c.shape_sources.get(shape_name)
    if source is not None:
        return sym.reshape_like(c.get(x_name), c.get(source), name=name)
    shape = tuple(int(v) for v in c.const(shape_name))
    if x_name in c.constants:  # a constant reshaped (a PReLU slope): fold it
        value = c.constants[x_name]
        c.constants[node.output[0]] = value.reshape(
            [value.shape[i] if d == 0 else d for i, d in enumerate(shape)])
        return None
    return sym.reshape(c.get(x_name), shape=_engine_shape(c, node, a), name=name)


def _engine_shape(c, node, a):
    """A Reshape's target as the engine's codes: 0 copies the input's dimension, -1 infers."""
    target = c.shapes.get(node.input[1])
    if target is None:
        target = np.asarray(c.const(node.input[1]), dtype=object)
    target = list(target.ravel())
    dims = c.dims(node.input[0]) or []
    out = []
    for i, d in enumerate(target):
        if isinstance(d, folding.Dim):
            out.append(0 if i < len(dims) and dims[i] == d else -1)
            continue
        d = int(d)
        if d == 0 and a.get("allowzero", 0):
            raise ValueError("Reshape to an empty dimension (allowzero=1 with a 0) is not "
                             "imported")
        if i == 0 and d > 0 and dims and dims[0] == d:
            out.append(0)  # the batch size the graph was exported with: keep the batch axis
        else:
            out.append(d)
    if out.count(-1) > 1:
        raise ValueError(f"Reshape to {target}: more than one dimension is unknown "
                         f"(input dims {dims})")
    return tuple(out)


def _softmax(c, node, a, name):
    return sym.softmax(c.get(node.input[0]), axis=int(a.get("axis", -1)), name=name)


def _concat(c, node, a, name):
    return sym.concat(*[c.get(n) for n in node.input], dim=int(a["axis"]), name=name)


def _clip(c, node, a, name):
    low = float(c.const(node.input[1])) if len(node.input) > 1 and node.input[1] \
        else float(a.get("min", -np.inf))
    high = float(c.const(node.input[2])) if len(node.input) > 2 and node.input[2] \
        else float(a.get("max", np.inf))
    return sym.clip(c.get(node.input[0]), a_min=low, a_max=high, name=name)


def _lrn(c, node, a, name):
    return sym.LRN(c.get(node.input[0]), alpha=float(a.get("alpha", 1e-4)),
                   beta=float(a.get("beta", 0.75)), knorm=float(a.get("bias", 1.0)),
                   nsize=int(a["size"]), name=name)


def _transpose(c, node, a, name):
    return sym.transpose(c.get(node.input[0]), axes=tuple(a["perm"]), name=name)


def _leaky(c, node, a, name):
    return sym.LeakyReLU(c.get(node.input[0]), act_type="leaky",
                         slope=float(a.get("alpha", 0.01)), name=name)


def _reduce_mean(c, node, a, name):
    axes = a.get("axes")
    if axes is None and len(node.input) > 1:
        axes = [int(v) for v in c.const(node.input[1])]
    return sym.mean(c.get(node.input[0]), axis=tuple(axes) if axes else None,
                    keepdims=bool(a.get("keepdims", 1)), name=name)


def _pad(c, node, a, name):
    pads = [int(v) for v in c.const(node.input[1])]
    rank = len(pads) // 2
    width = [v for pair in zip(pads[:rank], pads[rank:]) for v in pair]
    value = float(c.const(node.input[2])) if len(node.input) > 2 and node.input[2] else 0.0
    mode = a.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    return sym.Pad(c.get(node.input[0]), mode=mode, pad_width=tuple(width),
                   constant_value=value, name=name)


def _shape(c, node, a, name):
    start, end = a.get("start"), a.get("end")
    if not start and end is None:
        c.shape_sources[node.output[0]] = node.input[0]
    dims = c.dims(node.input[0])
    if dims is None:
        if node.output[0] not in c.shape_sources:
            raise ValueError(f"the shape of '{node.input[0]}' is not known")
        return
    value = folding.shape_of(dims, start, end)
    if folding.is_symbolic(value):
        c.shapes[node.output[0]] = value
    else:
        c.constants[node.output[0]] = value


def _shape_value_op(c, node, a):
    """A shape-arithmetic node on values holding a named dimension (see folding)."""
    inputs = [None if not n else c.shapes[n] if n in c.shapes else c.const(n)
              for n in node.input]
    value = folding.shape_op(node.op_type, a, inputs)
    if folding.is_symbolic(value):
        c.shapes[node.output[0]] = value
    else:
        c.constants[node.output[0]] = value


def _constant_node(a, numpy_helper):
    """The value of a Constant node, whichever attribute holds it."""
    if "value" in a:
        return numpy_helper.to_array(a["value"])
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        if key in a:
            return np.asarray(a[key], dtype=dtype)
    raise ValueError(f"a Constant with {sorted(a)} is not imported")


def _constant_of_shape(c, node, a, name):
    source = c.shape_sources.get(node.input[0])
    if source is None:
        raise ValueError("ConstantOfShape of a shape that is not a Shape node's output")
    value = a.get("value")
    fill = float(c.numpy_helper.to_array(value).ravel()[0]) if value is not None else 0.0
    ones = sym.ones_like(c.get(source), name=name)
    return ones if fill == 1.0 else ones * fill


def _slice(c, node, a, name):
    starts = [int(v) for v in c.const(node.input[1])]
    ends = [int(v) for v in c.const(node.input[2])]
    axes = [int(v) for v in c.const(node.input[3])] if len(node.input) > 3 and node.input[3] \
        else list(range(len(starts)))
    steps = [int(v) for v in c.const(node.input[4])] if len(node.input) > 4 and node.input[4] \
        else [1] * len(starts)
    if any(s != 1 for s in steps):
        raise ValueError("Slice with steps other than 1 is not imported")
    out = c.get(node.input[0])
    big = np.iinfo(np.int64).max // 2
    for axis, begin, end in zip(axes, starts, ends):
        out = sym.slice_axis(out, axis=axis, begin=begin, end=None if end >= big else end)
    return out


def _prelu(c, node, a, name):
    slope = c.const(node.input[1])
    flat = f"{node.input[1]}__flat"
    c.constants[flat] = np.ascontiguousarray(slope.reshape(-1))
    return sym.LeakyReLU(c.get(node.input[0]), sym.Variable(flat), act_type="prelu", name=name)


def _pow(c, node, a, name):
    exponent = c.constants.get(node.input[1])
    if exponent is None or exponent.size != 1:
        raise ValueError("Pow with a non-constant or non-scalar exponent is not imported")
    return c.get(node.input[0]) ** float(exponent.ravel()[0])


def _identity(c, node, a, name):
    return c.get(node.input[0])


def _log_softmax(c, node, a, name):
    return sym.log_softmax(c.get(node.input[0]), axis=int(a.get("axis", -1)), name=name)


def _np_dtype(c, elem_type, what):
    dtype = c.helper.tensor_dtype_to_np_dtype(elem_type) if elem_type else None
    if dtype is None:
        raise ValueError(f"the element type of {what} is not known")
    return np.dtype(dtype)


def _cast(c, node, a, name):
    if node.op_type == "CastLike":
        dtype = _np_dtype(c, (c.types.get(node.input[1]) or (0, None))[0],
                          f"'{node.input[1]}'")
    else:
        dtype = _np_dtype(c, int(a["to"]), "Cast's 'to'")
    if node.input[0] in c.constants:
        c.constants[node.output[0]] = np.asarray(c.constants[node.input[0]]).astype(dtype)
        return None
    if dtype.kind != "f":
        raise ValueError(f"a Cast of a tensor to {dtype} is not imported")
    return sym.cast(c.get(node.input[0]), dtype=dtype.name, name=name)


def _axes(c, node, a):
    axes = a.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = [int(v) for v in c.const(node.input[1])]
    return None if axes is None else tuple(int(v) for v in axes)


def _squeeze(c, node, a, name):
    axes = _axes(c, node, a)
    return sym.squeeze(c.get(node.input[0]), axis=axes, name=name)


def _unsqueeze(c, node, a, name):
    axes = _axes(c, node, a)
    dims = c.dims(node.input[0])
    if axes is None:
        raise ValueError("Unsqueeze without axes")
    if any(v < 0 for v in axes) and dims is None:
        raise ValueError("Unsqueeze with negative axes of a value of unknown rank")
    rank = (len(dims) if dims is not None else 0) + len(axes)
    out = c.get(node.input[0])
    for axis in sorted(v % rank for v in axes):
        out = sym.expand_dims(out, axis=axis)
    return out


def _matmul(c, node, a, name):
    rhs = c.constants.get(node.input[1])
    if rhs is not None and rhs.ndim == 2:  # x @ W: a fully connected layer without bias
        weight_name = f"{node.input[1]}__t"
        c.constants[weight_name] = np.ascontiguousarray(rhs.T)
        return sym.FullyConnected(c.get(node.input[0]), sym.Variable(weight_name),
                                  num_hidden=rhs.shape[1], no_bias=True, flatten=False,
                                  name=name)
    lhs_dims, rhs_dims = c.dims(node.input[0]), c.dims(node.input[1])
    if lhs_dims is not None and rhs_dims is not None and len(lhs_dims) == len(rhs_dims) == 2:
        return sym.dot(c.get(node.input[0]), c.get(node.input[1]), name=name)
    if lhs_dims is not None and rhs_dims is not None and len(lhs_dims) == len(rhs_dims) == 3:
        return sym.batch_dot(c.get(node.input[0]), c.get(node.input[1]), name=name)
    raise ValueError(f"MatMul of shapes {lhs_dims} and {rhs_dims} is not imported")


def _hard_sigmoid(c, node, a, name):
    x = c.get(node.input[0])
    return sym.clip(x * float(a.get("alpha", 0.2)) + float(a.get("beta", 0.5)), a_min=0.0,
                    a_max=1.0, name=name)


def _hard_swish(c, node, a, name):
    x = c.get(node.input[0])
    return x * sym.clip(x * (1.0 / 6.0) + 0.5, a_min=0.0, a_max=1.0, name=f"{name}_gate")


_CONVERTERS = {
    "Conv": _conv, "ConvTranspose": _conv, "Gemm": _gemm,
    "MaxPool": _pool("max"), "AveragePool": _pool("avg"),
    "GlobalAveragePool": _global_pool("avg"), "GlobalMaxPool": _global_pool("max"),
    "BatchNormalization": _batch_norm, "Add": _binary("add"), "Sub": _binary("sub"),
    "Mul": _binary("mul"), "Div": _binary("div"),
    "Relu": _unary(sym.relu), "Sigmoid": _unary(sym.sigmoid), "Tanh": _unary(sym.tanh),
    "Exp": _unary(sym.exp), "Log": _unary(sym.log), "Sqrt": _unary(sym.sqrt),
    "Abs": _unary(sym.abs), "Neg": _unary(sym.negative),
    "Flatten": _flatten, "Reshape": _reshape, "Softmax": _softmax, "Concat": _concat,
    "Clip": _clip, "LRN": _lrn, "Transpose": _transpose, "LeakyRelu": _leaky,
    "ReduceMean": _reduce_mean, "Pad": _pad, "Identity": _identity, "Dropout": _identity,
    "Pow": _pow, "PRelu": _prelu, "Shape": _shape, "ConstantOfShape": _constant_of_shape,
    "Slice": _slice, "LogSoftmax": _log_softmax, "Cast": _cast, "CastLike": _cast,
    "Squeeze": _squeeze, "Unsqueeze": _unsqueeze, "MatMul": _matmul,
    "HardSigmoid": _hard_sigmoid, "HardSwish": _hard_swish,
}


def importable_ops():
    """The ONNX op types the importer converts."""
    return sorted(_CONVERTERS)


def load(path):
    """Read an ONNX file as a model ready for ``predict`` (and ``save``, ``export``).

    Args:
        path: The ``.onnx`` file.

    Returns:
        A :class:`~deepkit.models.SymbolModel`.

    Raises:
        OnnxImportError: Nodes deepkit cannot import (all listed).
    """
    onnx, helper, numpy_helper = onnx_modules()
    try:
        proto = onnx.load(os.fspath(path))
    except Exception as err:  # noqa: BLE001 - any parse failure becomes one clear error
        missing = _missing_external_data(onnx, path)
        if missing:
            raise DeepkitError(f"{os.fspath(path)}: its weights are stored next to it, in "
                               f"{', '.join(repr(m) for m in missing)} (ONNX external data, "
                               "as torch.onnx.export(dynamo=True) writes them), which is "
                               "missing: keep that file beside the .onnx file") from None
        raise DeepkitError(f"{os.fspath(path)}: not an ONNX file deepkit can read ({err})") \
            from None
    proto = _prepared(onnx, proto)
    graph = proto.graph
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 18)
    constants = {t.name: numpy_helper.to_array(t).astype(np.float32, copy=False)
                 if numpy_helper.to_array(t).dtype.kind == "f" else numpy_helper.to_array(t)
                 for t in graph.initializer}
    c = _Context(constants, folding.value_types(graph))
    c.numpy_helper, c.helper = numpy_helper, helper
    for value in graph.input:
        if value.name not in constants:
            c.values[value.name] = sym.Variable(value.name)
    problems, failed = [], set()
    for node in graph.node:
        where = f"node '{node.name or node.output[0]}'"
        try:
            a = _attrs(node, helper)
            if node.op_type == "Constant":
                c.constants[node.output[0]] = _constant_node(a, numpy_helper)
                continue
            if folding.foldable(node, c.constants):
                for out, value in zip(node.output, folding.fold(node, c.constants, opset)):
                    c.constants[out] = value.astype(np.float32) \
                        if value.dtype.kind == "f" else value
                continue
            if node.op_type in folding.SHAPE_OPS and any(n in c.shapes for n in node.input) \
                    and all(not n or n in c.shapes or n in c.constants for n in node.input):
                _shape_value_op(c, node, a)
                continue
            convert = _CONVERTERS.get(node.op_type)
            if convert is None:
                problems.append(f"{where}: ONNX op {node.op_type} is not imported")
                failed.update(node.output)
                continue
            if any(n in failed for n in node.input):  # reported where it failed
                failed.update(node.output)
                continue
            value = convert(c, node, a, node.name or node.output[0])
            if value is not None:
                c.values[node.output[0]] = value
        except (ValueError, KeyError, TypeError, IndexError, DeepkitError) as err:
            problems.append(f"{where} ({node.op_type}): {err}")
            failed.update(node.output)
    if problems:
        raise OnnxImportError(path, problems)
    inputs = [i for i in graph.input if i.name not in constants]
    outputs = [c.get(o.name) for o in graph.output]
    symbol = sym.Group(outputs) if len(outputs) > 1 else outputs[0]
    descs = []
    for value in inputs:
        dims = [d.dim_value if d.dim_value > 0 else 0 for d in value.type.tensor_type.shape.dim]
        descs.append(dk_io.DataDesc(value.name, tuple([1] + dims[1:])))
    used = set(symbol.list_arguments()) | set(symbol.list_auxiliary_states())
    aux = set(symbol.list_auxiliary_states())
    params = [SymbolParameter(None, name, c.constants[name].shape,
                              _constant(np.asarray(c.constants[name], np.float32)),
                              aux=name in aux)
              for name in sorted(used) if name in c.constants]
    model = SymbolModel(symbol, descs, params, name=graph.name or "onnx_model")
    model.output_names = [o.name for o in graph.output]
    model.metadata = {"source": f"imported from {os.fspath(path)}",
                      "inputs": [{"name": d.name, "shape": list(d.shape)} for d in descs]}
    return model


def _missing_external_data(onnx, path):
    """The external data files that ``path``'s initializers name and that do not exist."""
    try:
        proto = onnx.load(os.fspath(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - not even the graph reads: no external data to name
        return []
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    missing = []
    for tensor in proto.graph.initializer:
        for entry in tensor.external_data:
            where = os.path.join(folder, entry.value)
            if entry.key == "location" and not os.path.isfile(where) and where not in missing:
                missing.append(where)
    return missing


def _prepared(onnx, proto):
    """``proto`` with its local functions inlined and the shapes of its values inferred."""
    if len(proto.functions):
        try:
            from onnx import inliner  # noqa: PLC0415 - onnx is optional (the onnx extra)
            proto = inliner.inline_local_functions(proto)
        except (ImportError, AttributeError):  # onnx < 1.16 has no inliner
            pass
    try:
        return onnx.shape_inference.infer_shapes(proto, data_prop=True)
    except Exception:  # noqa: BLE001 - without inferred shapes, fewer graphs import
        return proto


def _constant(value):
    def init(shape, dtype, rng):
        return value.astype(dtype)
    return init
