"""ONNX export: a model's inference graph, op by op, with its weights as initializers.

The exporter walks the engine graph of ``model.output_symbols()`` (what
``predict`` runs), so layer models, the zoo's architectures and converted
Caffe nets all export the same way. Every node must have an ONNX
equivalent: all problems are listed at once, and nothing is written, when
some do not. The batch dimension is dynamic; names are kept (graph inputs
are the model's input names, initializers the parameter names).
"""
import json
import os

import numpy as np

from deepkit_engine import symbol as sym
from deepkit_engine.base import DeepkitError
from deepkit_engine.fileio import atomic_path
from deepkit_engine.ops import get_op

__all__ = ["export", "ExportError", "DEFAULT_OPSET", "exportable_ops", "onnx_modules"]

#: The opset written unless another is asked for (ONNX Runtime 1.16+ reads it).
DEFAULT_OPSET = 17


class ExportError(DeepkitError):
    """A model holds ops that ONNX cannot express; ``problems`` lists each one."""

    def __init__(self, path, problems):
        self.problems = list(problems)
        super().__init__(f"cannot export to {os.fspath(path)!r} ({len(self.problems)} "
                         f"problem(s); nothing was written):\n  " + "\n  ".join(self.problems))


def onnx_modules():
    """``(onnx, onnx.helper, onnx.numpy_helper)``, or an ImportError naming the extra."""
    try:
        import onnx  # noqa: PLC0415 - optional (onnx extra): only export and import need it
        from onnx import helper, numpy_helper  # noqa: PLC0415 - part of the optional onnx
    except ImportError as err:
        raise ImportError("ONNX export needs the onnx package: pip install 'deepkit[onnx]'") \
            from err
    return onnx, helper, numpy_helper


class _Graph:
    """The ONNX nodes and constants being built, with fresh names."""

    def __init__(self, helper, numpy_helper):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.initializers, self._count = [], [], 0

    def name(self, hint):
        self._count += 1
        return f"{hint}__{self._count}"

    def const(self, value, hint, dtype=np.float32):
        name = self.name(hint)
        self.initializers.append(self.numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def node(self, op, inputs, outputs, name, **attrs):
        self.nodes.append(self.helper.make_node(op, inputs, outputs, name=name, **attrs))


def _pads(pad, rank):
    pad = tuple(pad) if pad else (0,) * rank
    return list(pad) + list(pad)


def _conv(g, a, ins, out, name):
    rank = len(a["kernel"])
    g.node("Conv", ins if not a["no_bias"] else ins[:2], [out], name,
           kernel_shape=list(a["kernel"]), strides=list(a["stride"] or (1,) * rank),
           dilations=list(a["dilate"] or (1,) * rank), pads=_pads(a["pad"], rank),
           group=int(a["num_group"]))


def _deconv(g, a, ins, out, name):
    rank = len(a["kernel"])
    attrs = dict(kernel_shape=list(a["kernel"]), strides=list(a["stride"] or (1,) * rank),
                 dilations=list(a["dilate"] or (1,) * rank), pads=_pads(a["pad"], rank),
                 group=int(a["num_group"]))
    if a.get("adj"):
        attrs["output_padding"] = list(a["adj"])
    g.node("ConvTranspose", ins if not a["no_bias"] else ins[:2], [out], name, **attrs)


def _fully_connected(g, a, ins, out, name):
    data = ins[0]
    if a["flatten"]:
        data = g.name(f"{name}_flat")
        g.node("Flatten", [ins[0]], [data], f"{name}_flatten", axis=1)
        if a["no_bias"]:
            g.node("Gemm", [data, ins[1]], [out], name, transB=1)
        else:
            g.node("Gemm", [data, ins[1], ins[2]], [out], name, transB=1)
        return
    weight_t = g.name(f"{name}_wt")
    g.node("Transpose", [ins[1]], [weight_t], f"{name}_transpose", perm=[1, 0])
    if a["no_bias"]:
        g.node("MatMul", [data, weight_t], [out], name)
        return
    product = g.name(f"{name}_matmul")
    g.node("MatMul", [data, weight_t], [product], f"{name}_matmul")
    g.node("Add", [product, ins[2]], [out], name)


def _sum_pooling(g, a, ins, out, name):
    """Sum pooling as a depthwise convolution with ones (exact, Caffe's 'full' windows too)."""
    shape = g.shapes.get(ins[0])
    if shape is None or a["global_pool"]:
        raise ValueError("sum pooling needs a known input shape and a fixed window")
    channels, spatial = shape[1], shape[2:]
    rank = len(a["kernel"])
    kernel, stride = tuple(a["kernel"]), tuple(a["stride"] or (1,) * rank)
    pad = tuple(a["pad"] or (0,) * rank)
    extra = []
    for n, k, s, p in zip(spatial, kernel, stride, pad):
        span = n + 2 * p - k
        out_full = -(-span // s) + 1 if a["pooling_convention"] == "full" else span // s + 1
        extra.append(max(0, (out_full - 1) * s + k - (n + 2 * p)))
    data = ins[0]
    if any(extra):
        data = g.name(f"{name}_tail")
        pads = g.const([0, 0] + [0] * rank + [0, 0] + extra, f"{name}_tail_pads", np.int64)
        g.node("Pad", [ins[0], pads], [data], f"{name}_tail")
    ones = g.const(np.ones((channels, 1) + kernel, np.float32), f"{name}_ones")
    g.node("Conv", [data, ones], [out], name, kernel_shape=list(kernel), strides=list(stride),
           pads=_pads(pad, rank), group=int(channels))


def _pooling(g, a, ins, out, name):
    kind = a["pool_type"]
    if kind == "sum":
        _sum_pooling(g, a, ins, out, name)
        return
    if kind not in ("max", "avg"):
        raise ValueError(f"pool_type '{kind}' has no ONNX equivalent (max, avg and sum do)")
    if a["global_pool"]:
        g.node("GlobalMaxPool" if kind == "max" else "GlobalAveragePool", ins, [out], name)
        return
    rank = len(a["kernel"])
    attrs = dict(kernel_shape=list(a["kernel"]), strides=list(a["stride"] or (1,) * rank),
                 pads=_pads(a["pad"], rank),
                 ceil_mode=1 if a["pooling_convention"] == "full" else 0)
    if a["pooling_convention"] not in ("valid", "full"):
        raise ValueError(f"pooling_convention '{a['pooling_convention']}' has no ONNX "
                         "equivalent")
    if kind == "avg":
        count = a["count_include_pad"]
        attrs["count_include_pad"] = 1 if count is None or count else 0
        g.node("AveragePool", ins, [out], name, **attrs)
    else:
        g.node("MaxPool", ins, [out], name, **attrs)


def _batch_norm(g, a, ins, out, name):
    if a["axis"] not in (1, -3):
        raise ValueError(f"BatchNorm over axis {a['axis']}: ONNX normalizes axis 1 only")
    inputs = list(ins)
    if a["fix_gamma"]:  # gamma is taken as 1, whatever the array holds
        inputs[1] = g.const(np.ones(g.shape_of(ins[1]), np.float32), f"{name}_gamma_one")
    g.node("BatchNormalization", inputs, [out], name, epsilon=float(a["eps"]))


def _activation(g, a, ins, out, name):
    table = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softrelu": "Softplus",
             "softsign": "Softsign"}
    op = table.get(a["act_type"])
    if op is None:
        raise ValueError(f"act_type '{a['act_type']}' has no ONNX equivalent")
    g.node(op, ins, [out], name)


def _leaky(g, a, ins, out, name):
    kind = a["act_type"]
    if kind == "leaky":
        g.node("LeakyRelu", ins[:1], [out], name, alpha=float(a["slope"]))
    elif kind == "elu":
        g.node("Elu", ins[:1], [out], name, alpha=float(a["slope"]))
    elif kind == "prelu":
        slope = g.name(f"{name}_slope")
        shape = g.const([-1, 1, 1], f"{name}_slope_shape", np.int64)
        g.node("Reshape", [ins[1], shape], [slope], f"{name}_slope_reshape")
        g.node("PRelu", [ins[0], slope], [out], name)
    elif kind == "selu":
        g.node("Selu", ins[:1], [out], name)
    else:
        raise ValueError(f"LeakyReLU act_type '{kind}' is not exported")


def _softmax(g, a, ins, out, name):
    if a.get("temperature") not in (None, 1.0):
        raise ValueError("softmax with a temperature is not exported")
    g.node("Softmax", ins[:1], [out], name, axis=int(a.get("axis", -1)))


def _softmax_output(g, a, ins, out, name):
    g.node("Softmax", ins[:1], [out], name, axis=-1 if a["preserve_shape"] else 1)


def _lrn_within(g, a, ins, out, name):
    """Caffe's WITHIN_CHANNEL: x * (1 + alpha * mean of x^2 over the padded n x n window)^-beta."""
    n = int(a["nsize"])
    square = g.name(f"{name}_sq")
    g.node("Mul", [ins[0], ins[0]], [square], f"{name}_sq")
    mean = g.name(f"{name}_mean")
    g.node("AveragePool", [square], [mean], f"{name}_mean", kernel_shape=[n, n],
           pads=[(n - 1) // 2] * 4, count_include_pad=1)
    scaled = g.name(f"{name}_scaled")
    g.node("Mul", [mean, g.const(float(a["alpha"]), f"{name}_alpha")], [scaled], f"{name}_a")
    base = g.name(f"{name}_base")
    g.node("Add", [scaled, g.const(1.0, f"{name}_one")], [base], f"{name}_base")
    factor = g.name(f"{name}_factor")
    g.node("Pow", [base, g.const(-float(a["beta"]), f"{name}_beta")], [factor], f"{name}_pow")
    g.node("Mul", [ins[0], factor], [out], name)


def _lrn(g, a, ins, out, name):
    if a.get("region", "across") == "within":
        _lrn_within(g, a, ins, out, name)
        return
    g.node("LRN", ins, [out], name, alpha=float(a["alpha"]), beta=float(a["beta"]),
           bias=float(a["knorm"]), size=int(a["nsize"]))


def _pad(g, a, ins, out, name):
    width = list(a["pad_width"])
    begins, ends = width[0::2], width[1::2]
    pads = g.const(begins + ends, f"{name}_pads", np.int64)
    mode = {"constant": "constant", "edge": "edge", "reflect": "reflect"}[a["mode"]]
    value = g.const(a.get("constant_value") or 0.0, f"{name}_value")
    g.node("Pad", [ins[0], pads, value], [out], name, mode=mode)


def _concat(g, a, ins, out, name):
    g.node("Concat", ins, [out], name, axis=int(a["dim"]))


def _reduce(onnx_op):
    def convert(g, a, ins, out, name):
        if a.get("exclude"):
            raise ValueError("reductions with exclude=True are not exported")
        axis = a["axis"]
        attrs = {"keepdims": int(bool(a["keepdims"]))}
        inputs = list(ins)
        if axis is not None and axis != ():
            axes = [axis] if isinstance(axis, int) else list(axis)
            # axes became an input in opset 13 for ReduceSum and in 18 for the others
            if g.opset >= (13 if onnx_op == "ReduceSum" else 18):
                inputs.append(g.const(axes, f"{name}_axes", np.int64))
            else:
                attrs["axes"] = axes
        g.node(onnx_op, inputs, [out], name, **attrs)
    return convert


def _clip(g, a, ins, out, name):
    g.node("Clip", [ins[0], g.const(a["a_min"], f"{name}_min"),
                    g.const(a["a_max"], f"{name}_max")], [out], name)


def _slice(g, a, ins, out, name):
    begin, end, step = list(a["begin"]), list(a["end"]), list(a.get("step") or [])
    axes = list(range(len(begin)))
    starts = [0 if b is None else b for b in begin]
    ends = [np.iinfo(np.int64).max if e is None else e for e in end]
    inputs = [ins[0], g.const(starts, f"{name}_starts", np.int64),
              g.const(ends, f"{name}_ends", np.int64), g.const(axes, f"{name}_axes", np.int64)]
    if step:
        inputs.append(g.const([1 if s is None else s for s in step], f"{name}_steps",
                              np.int64))
    g.node("Slice", inputs, [out], name)


def _binary(onnx_op):
    def convert(g, a, ins, out, name):
        g.node(onnx_op, ins, [out], name)
    return convert


def _scalar(onnx_op, reflected=False):
    def convert(g, a, ins, out, name):
        value = g.const(a["scalar"], f"{name}_scalar")
        g.node(onnx_op, [value, ins[0]] if reflected else [ins[0], value], [out], name)
    return convert


def _unary(onnx_op):
    def convert(g, a, ins, out, name):
        g.node(onnx_op, ins, [out], name)
    return convert


def _ones_like(g, a, ins, out, name):
    shape = g.name(f"{name}_shape")
    g.node("Shape", ins, [shape], f"{name}_shape_of")
    g.node("ConstantOfShape", [shape], [out], name,
           value=g.numpy_helper.from_array(np.ones(1, np.float32)))


def _flatten(g, a, ins, out, name):
    g.node("Flatten", ins, [out], name, axis=1)


def _reshape(g, a, ins, out, name):
    if a.get("reverse"):
        raise ValueError("reshape with reverse=True is not exported")
    shape = list(a["shape"] or ())
    if any(s < -1 for s in shape):
        raise ValueError(f"reshape codes {shape} (MXNet's -2/-3/-4) are not exported; "
                         "use explicit sizes, 0 (copy) or -1 (infer)")
    g.node("Reshape", [ins[0], g.const(shape, f"{name}_shape", np.int64)], [out], name)


def _transpose(g, a, ins, out, name):
    axes = a["axes"]
    g.node("Transpose", ins, [out], name, **({"perm": list(axes)} if axes else {}))


def _l2_normalization(g, a, ins, out, name):
    if a["mode"] not in ("channel", "instance"):
        raise ValueError(f"L2Normalization mode '{a['mode']}' is not exported")
    if a["mode"] == "channel":
        g.node("LpNormalization", ins, [out], name, axis=1, p=2)
        return
    flat = g.name(f"{name}_flat")
    g.node("Flatten", ins, [flat], f"{name}_flatten", axis=1)
    normed = g.name(f"{name}_normed")
    g.node("LpNormalization", [flat], [normed], f"{name}_lp", axis=1, p=2)
    shape = g.name(f"{name}_shape")
    g.node("Shape", ins, [shape], f"{name}_shape_of")
    g.node("Reshape", [normed, shape], [out], name)


def _identity(g, a, ins, out, name):
    g.node("Identity", ins[:1], [out], name)


_CONVERTERS = {
    "Convolution": _conv, "Deconvolution": _deconv, "FullyConnected": _fully_connected,
    "Pooling": _pooling, "BatchNorm": _batch_norm, "SyncBatchNorm": _batch_norm,
    "Activation": _activation,
    "LeakyReLU": _leaky, "softmax": _softmax, "SoftmaxOutput": _softmax_output,
    "SoftmaxActivation": _softmax_output, "LRN": _lrn, "Pad": _pad, "concat": _concat,
    "mean": _reduce("ReduceMean"), "sum": _reduce("ReduceSum"), "max": _reduce("ReduceMax"),
    "min": _reduce("ReduceMin"), "clip": _clip, "slice": _slice,
    "add": _binary("Add"), "subtract": _binary("Sub"), "multiply": _binary("Mul"),
    "divide": _binary("Div"), "maximum": _binary("Max"), "minimum": _binary("Min"),
    "broadcast_add": _binary("Add"), "broadcast_sub": _binary("Sub"),
    "broadcast_mul": _binary("Mul"), "broadcast_div": _binary("Div"),
    "_plus_scalar": _scalar("Add"), "_minus_scalar": _scalar("Sub"),
    "_rminus_scalar": _scalar("Sub", reflected=True), "_mul_scalar": _scalar("Mul"),
    "_div_scalar": _scalar("Div"), "_rdiv_scalar": _scalar("Div", reflected=True),
    "_power_scalar": _scalar("Pow"), "_maximum_scalar": _scalar("Max"),
    "_minimum_scalar": _scalar("Min"),
    "relu": _unary("Relu"), "sigmoid": _unary("Sigmoid"), "tanh": _unary("Tanh"),
    "exp": _unary("Exp"), "log": _unary("Log"), "sqrt": _unary("Sqrt"), "abs": _unary("Abs"),
    "negative": _unary("Neg"), "erf": _unary("Erf"),
    "flatten": _flatten, "Flatten": _flatten, "reshape": _reshape, "Reshape": _reshape,
    "transpose": _transpose, "L2Normalization": _l2_normalization, "ones_like": _ones_like,
    "Dropout": _identity, "BlockGrad": _identity, "identity": _identity, "_copy": _identity,
}


def exportable_ops():
    """The engine op names the exporter converts."""
    return sorted(_CONVERTERS)


def _canonical(op_name):
    return get_op(op_name).name


def _graph_json(symbols):
    nodes, heads, seen = [], [], {}
    for symbol in symbols:
        graph = json.loads(symbol.tojson())
        local = {}
        for i, node in enumerate(graph["nodes"]):
            key = node["name"]
            if key not in seen:
                seen[key] = len(nodes)
                nodes.append(node if not node["inputs"] else dict(
                    node, inputs=[[local[src], idx] + rest for src, idx, *rest in
                                  node["inputs"]]))
            local[i] = seen[key]
        heads.extend([local[h[0]], h[1]] for h in graph["heads"])
    return nodes, heads


def _internal_shapes(model, sample_shapes):
    """``({node name: shape}, {output name: shape})`` for a batch of one."""
    group = sym.Group(model.output_symbols())
    given = {k: (1,) + tuple(v) for k, v in sample_shapes.items()
             if v is not None and all(d for d in v)}
    internals = group.get_internals()
    _, out_shapes, _ = internals.infer_shape_known(**{k: v for k, v in given.items()
                                                        if k in internals.list_inputs()})
    by_node = {}
    for name, shape in zip(internals.list_outputs(), out_shapes or []):
        if shape is not None and name.endswith("_output"):
            by_node[name[:-len("_output")]] = tuple(shape)
        elif shape is not None:
            by_node[name] = tuple(shape)
    _, heads, _ = group.infer_shape_known(**{k: v for k, v in given.items()
                                               if k in group.list_inputs()})
    outputs = {name: tuple(s) for name, s in zip(model.output_names, heads or []) if s}
    return by_node, outputs


def export(model, path, opset=DEFAULT_OPSET, input_shapes=None):
    """Write ``model``'s inference graph and weights as an ONNX file.

    Args:
        model: A deepkit model (layers, zoo, converted Caffe, SymbolModel).
        path: The ``.onnx`` file (written atomically).
        opset: The ONNX opset version to write.
        input_shapes: ``{input name: sample shape}`` for models whose input
            shapes are not fixed; the batch dimension is always dynamic.

    Returns:
        The path.

    Raises:
        ExportError: Ops without an ONNX equivalent (all listed; nothing written).
    """
    onnx, helper, numpy_helper = onnx_modules()
    model.initialize_weights()
    params = {p.name: p for p in model.weights}
    nodes, heads = _graph_json(model.output_symbols())
    g = _Graph(helper, numpy_helper)
    g.opset = int(opset)
    shapes = {p.name: p.shape for p in model.weights}
    g.shape_of = lambda name: list(shapes[name])
    sample_shapes = dict(zip(model.input_names, model.input_sample_shapes()))
    sample_shapes.update(input_shapes or {})
    g.shapes, output_shapes = _internal_shapes(model, sample_shapes)
    names, problems, inputs = {}, [], []
    head_of = {node_id: out for (node_id, _), out in zip(heads, model.output_names)}
    reserved = set(model.output_names)
    for i, node in enumerate(nodes):
        if node["op"] == "null":
            name = node["name"]
            names[i] = [name]
            if name in params:
                g.initializers.append(numpy_helper.from_array(
                    np.ascontiguousarray(params[name].data.asnumpy(), np.float32), name))
            elif name in sample_shapes:
                dims = ["batch"] + [int(d) if d else f"{name}_d{k}"
                                    for k, d in enumerate(sample_shapes[name])]
                inputs.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, dims))
            else:
                problems.append(f"variable '{name}' is neither an input nor a parameter")
            continue
        op = _canonical(node["op"])
        convert = _CONVERTERS.get(op) or _CONVERTERS.get(node["op"])
        out_name = node["name"]
        if out_name in reserved and head_of.get(i) != out_name:
            out_name = f"{out_name}__inner"  # the graph output of that name is another node's
        names[i] = [out_name]
        if node["name"] in g.shapes:
            g.shapes[out_name] = g.shapes[node["name"]]
        if convert is None:
            problems.append(f"node '{node['name']}': op {op} has no ONNX export")
            continue
        ins = [names[src][0] for src, *_ in node["inputs"]]
        try:
            definition = get_op(node["op"])
            attrs = definition.parse_attrs({k: v for k, v in node.get("attrs", {}).items()
                                            if k in definition.params})  # not user attrs
            convert(g, attrs, ins, out_name, node["name"])
        except (ValueError, KeyError) as err:
            problems.append(f"node '{node['name']}' ({op}): {err}")
    if problems:
        raise ExportError(path, problems)
    outputs = []
    for (node_id, _), out_name in zip(heads, model.output_names):
        produced = names[node_id][0]
        if produced != out_name:
            g.node("Identity", [produced], [out_name], f"{out_name}_output")
        dims = ["batch"] + list(output_shapes.get(out_name, ())[1:])
        outputs.append(helper.make_tensor_value_info(out_name, onnx.TensorProto.FLOAT, dims))
    graph = helper.make_graph(g.nodes, model.name or "deepkit", inputs, outputs,
                              initializer=g.initializers)
    proto = helper.make_model(graph, producer_name="deepkit",
                              opset_imports=[helper.make_opsetid("", int(opset))])
    proto.ir_version = min(proto.ir_version, 8)
    onnx.checker.check_model(proto)
    with atomic_path(path) as tmp:
        onnx.save(proto, tmp)
    return path
