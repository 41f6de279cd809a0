"""The ``Custom`` op: operators described by a registered "prop" object, picked by ``op_type``.

This is the engine side of MXNet's ``mx.operator`` protocol. A prop factory is
registered under an ``op_type`` with :func:`register_prop`; ``Custom(...,
op_type=name, **kwargs)`` calls ``factory(**kwargs)`` (keyword values as
strings, as MXNet passes them) and asks the prop:

* ``list_arguments()``, ``list_outputs()``, ``list_auxiliary_states()``;
* ``infer_shape(in_shapes)`` -> ``(arg shapes, out shapes, aux shapes)``;
* ``infer_type(in_types)`` -> ``(arg types, out types, aux types)``;
* ``declare_backward_dependency(out_grad, in_data, out_data)`` -> the ids
  backward reads (default, without the method: all of them, the output
  gradients only if ``need_top_grad_``). As in MXNet, backward's node reads
  only these (and the auxiliary states), so the memory planner frees the
  others after forward; backward gets an :class:`Undeclared` stand-in at
  their positions, which refuses any use with a clear error;
* ``need_top_grad_`` (attribute): whether backward uses the output gradient;
* ``create_operator(ctx, shapes, dtypes)`` -> an object with
  ``forward(is_train, req, in_data, out_data, aux)`` and
  ``backward(req, out_grad, in_data, out_data, in_grad, aux)`` over NDArrays.

The operator instance is created once per prop, shapes and device, so
forward and backward of one node share it (and any state it keeps). Its code
runs inside the engine with :func:`~.host_code.ndarray_code`, so it may read
values with ``asnumpy()``.
"""
import numpy as np

from ..base import DeepkitError, ParamError, did_you_mean
from ..context import context_of_array
from ..graph.plan_memory import SHAPE_ONLY_INPUTS
from ..ops.registry import Attrs, OpDef, Param, register_runtime
from .host_code import ndarray_code, wrap

__all__ = ["register_prop", "unregister_prop", "registered_props", "CUSTOM", "Undeclared"]

_FACTORIES = {}
_PROPS = {}
_OPERATORS = {}


def register_prop(op_type, factory):
    """Make ``Custom(op_type=op_type)`` build its prop with ``factory(**kwargs)``.

    Raises:
        ValueError: ``op_type`` is already registered.
    """
    if not isinstance(op_type, str) or not op_type:
        raise ParamError(f"Custom: op_type must be a non-empty str, got {op_type!r}",
                         op="Custom", param="op_type")
    if op_type in _FACTORIES:
        raise ValueError(f"Custom: op_type '{op_type}' is already registered (by "
                         f"{getattr(_FACTORIES[op_type], '__qualname__', _FACTORIES[op_type])}); "
                         "register each custom operator once")
    _FACTORIES[op_type] = factory


def unregister_prop(op_type):
    """Forget ``op_type`` (and the props and operators made for it)."""
    _FACTORIES.pop(op_type, None)
    for cache in (_PROPS, _OPERATORS, _LAYOUTS):
        for key in [k for k in cache if k[0] == op_type]:
            del cache[key]


def registered_props():
    """The registered op types, sorted."""
    return sorted(_FACTORIES)


def _key(attrs):
    return (attrs["op_type"],) + tuple(sorted((k, v) for k, v in attrs.items()
                                              if k != "op_type"))


def prop_of(attrs):
    """The prop object for these attrs (made once)."""
    key = _key(attrs)
    prop = _PROPS.get(key)
    if prop is None:
        factory = _FACTORIES[attrs["op_type"]]
        kwargs = {k: v for k, v in attrs.items() if k != "op_type"}
        try:
            prop = factory(**kwargs)
        except TypeError as err:
            raise ParamError(f"Custom '{attrs['op_type']}': its prop does not take "
                             f"{sorted(kwargs)}: {err}", op="Custom", param="op_type",
                             value=attrs["op_type"]) from None
        _PROPS[key] = prop
        aux = set(prop.list_auxiliary_states())
        if not aux <= set(CUSTOM.aux):
            # the node input names that are auxiliary states, over every prop made so far
            CUSTOM.aux = BACKWARD_CUSTOM.aux = tuple(sorted(aux | set(CUSTOM.aux)))
    return prop


def _operator_for(attrs, ctx, in_shapes, in_dtypes):
    key = _key(attrs) + (str(ctx), tuple(in_shapes), tuple(str(d) for d in in_dtypes))
    op = _OPERATORS.get(key)
    if op is None:
        op = prop_of(attrs).create_operator(ctx, [list(s) for s in in_shapes], list(in_dtypes))
        _OPERATORS[key] = op
    return op


def _need_top_grad(prop):
    return bool(getattr(prop, "need_top_grad_", True))


class _CustomOpDef(OpDef):
    """``OpDef`` whose inputs, outputs and params come from the prop of ``op_type``."""

    def parse_attrs(self, kwargs):
        kwargs = dict(kwargs)
        op_type = kwargs.pop("op_type", None)
        if op_type is None:
            raise ParamError(f"{self.name}: missing required param 'op_type' (one of "
                             f"{registered_props()})", op=self.name, param="op_type")
        if op_type not in _FACTORIES:
            raise ParamError(f"{self.name}: op_type '{op_type}' is not registered"
                             f"{did_you_mean(op_type, _FACTORIES)}; registered: "
                             f"{registered_props()}", op=self.name, param="op_type",
                             value=op_type)
        attrs = Attrs(op_type=str(op_type))
        for k, v in kwargs.items():
            attrs[k] = v if isinstance(v, str) else str(v)
        return attrs


def _names(attrs):
    prop = prop_of(attrs)
    return list(prop.list_arguments()), list(prop.list_outputs()), \
        list(prop.list_auxiliary_states())


def _forward_inputs(attrs):
    args, _, aux = _names(attrs)
    return tuple(args + aux)


def _forward_outputs(attrs):
    return tuple(_names(attrs)[1])


def _fill_unknown(values, unknown):
    return [unknown if v is None else v for v in values]


def _custom_infer_shape(attrs, in_shapes):
    args, outs, _ = _names(attrs)
    if all(s is None for s in in_shapes[:len(args)]):
        return in_shapes, [None] * len(outs)
    result = prop_of(attrs).infer_shape(_fill_unknown([list(s) if s is not None else None
                                                       for s in in_shapes[:len(args)]], []))
    arg_shapes, out_shapes = list(result[0]), list(result[1])
    aux_shapes = list(result[2]) if len(result) > 2 else []
    if len(out_shapes) != len(outs):
        raise ParamError(f"Custom '{attrs['op_type']}': infer_shape returned {len(out_shapes)} "
                         f"output shape(s) for outputs {outs}", op="Custom", param="op_type")
    known = [tuple(int(d) for d in s) if s is not None and (len(s) or not in_shapes) else None
             for s in arg_shapes + aux_shapes]
    known = (known + [None] * len(in_shapes))[:len(in_shapes)]
    return [k if k is not None else s for k, s in zip(known, in_shapes)], \
        [tuple(int(d) for d in s) for s in out_shapes]


def _custom_infer_type(attrs, in_dtypes):
    args, outs, _ = _names(attrs)
    first = next((d for d in in_dtypes if d is not None), None)
    if first is None:
        return in_dtypes, [None] * len(outs)
    filled = [np.dtype(d) if d is not None else np.dtype(first) for d in in_dtypes]
    infer = getattr(prop_of(attrs), "infer_type", None)
    if infer is None:
        return filled, [filled[0]] * len(outs)
    result = infer(filled[:len(args)])
    types = [np.dtype(t) for t in list(result[0]) + list(result[2] if len(result) > 2 else [])]
    types = (types + filled[len(types):])[:len(in_dtypes)]
    return types, [np.dtype(t) for t in result[1]]


def _ctx_of(raw):
    return context_of_array(raw)


def _custom_forward(xp, attrs, inputs, outputs, req, is_train=False):
    args = _names(attrs)[0]
    ctx = _ctx_of(inputs[0]) if inputs else None
    op = _operator_for(attrs, ctx, [a.shape for a in inputs], [a.dtype for a in inputs])
    with ndarray_code():
        in_data = wrap(inputs[:len(args)], ctx)
        aux_data = wrap(inputs[len(args):], ctx)
        out_data = wrap(outputs, ctx)
        op.forward(is_train, list(req), in_data, out_data, aux_data)
        for o in out_data:
            o.wait_to_read()
        for a in aux_data:
            a.wait_to_read()


class Undeclared:
    """What backward gets in place of an array its prop did not declare it needs.

    MXNet hands backward an empty NDArray at such a position of ``out_grad``,
    ``in_data`` or ``out_data`` (the lists keep their lengths); the memory
    planner may already have given that array's memory to another one. Any use
    of this stand-in raises an error saying which array it is and how to
    declare it.
    """

    __slots__ = ("_op_type", "_where")

    def __init__(self, op_type, where):
        self._op_type, self._where = op_type, where

    def _refuse(self, *args, **kwargs):
        raise DeepkitError(
            f"Custom '{self._op_type}': backward used {self._where}, which its prop's "
            "declare_backward_dependency(out_grad, in_data, out_data) did not return; add "
            f"that id to the returned list so {self._where} is kept for backward")

    def __getattr__(self, name):
        self._refuse()

    def __repr__(self):
        return f"<Undeclared {self._where} of Custom '{self._op_type}'>"


for _dunder in ("__getitem__", "__setitem__", "__len__", "__iter__", "__array__", "__float__",
                "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
                "__truediv__", "__rtruediv__", "__pow__", "__rpow__", "__neg__", "__abs__",
                "__lt__", "__le__", "__gt__", "__ge__"):
    setattr(Undeclared, _dunder, Undeclared._refuse)
del _dunder


class _Layout:
    """Which arrays a Custom node's backward reads, from ``declare_backward_dependency``.

    Attributes:
        out_grads, in_data, out_data: Indices (of outputs, arguments, outputs)
            whose output gradients, inputs and outputs backward reads.
        carriers: Argument indices backward does not read: passed only for
            their shapes (the gradients' shapes), which keeps nothing alive.
    """

    def __init__(self, attrs):
        prop = prop_of(attrs)
        args, outs, aux = _names(attrs)
        n_out, n_in = len(outs), len(args)
        ids = {"out_grad": list(range(n_out)), "in_data": list(range(n_out, n_out + n_in)),
               "out_data": list(range(n_out + n_in, 2 * n_out + n_in))}
        declare = getattr(prop, "declare_backward_dependency", None)
        if declare is None:
            deps = (ids["out_grad"] if _need_top_grad(prop) else []) + ids["in_data"] + \
                ids["out_data"]
        else:
            deps = declare(list(ids["out_grad"]), list(ids["in_data"]), list(ids["out_data"]))
        returned = deps
        try:
            deps = {int(d) for d in deps}
        except (TypeError, ValueError):
            deps = None
        if deps is None or not deps <= set(range(2 * n_out + n_in)):
            raise ParamError(
                f"Custom '{attrs['op_type']}': declare_backward_dependency must return ids "
                f"from the lists it was given (out_grad {ids['out_grad']}, in_data "
                f"{ids['in_data']}, out_data {ids['out_data']}); got {returned!r}",
                op="Custom", param="declare_backward_dependency")
        self.out_grads = [j for j in range(n_out) if j in deps]
        self.in_data = [i for i in range(n_in) if n_out + i in deps]
        self.out_data = [j for j in range(n_out) if n_out + n_in + j in deps]
        self.carriers = [i for i in range(n_in) if i not in self.in_data]
        self.num_aux = len(aux)
        start = len(self.out_grads) + len(self.in_data) + len(self.out_data) + self.num_aux
        #: backward node input positions read for their shapes only
        self.shape_only = tuple(range(start, start + len(self.carriers)))
        #: where each argument's shape is found among the backward node's inputs
        where = {i: len(self.out_grads) + k for k, i in enumerate(self.in_data)}
        where.update({i: start + k for k, i in enumerate(self.carriers)})
        self.arg_positions = [where[i] for i in range(n_in)]


_LAYOUTS = {}


def _backward_layout(attrs):
    """The :class:`_Layout` of a Custom node's backward (asked of the prop once)."""
    key = _key(attrs)
    layout = _LAYOUTS.get(key)
    if layout is None:
        layout = _LAYOUTS[key] = _Layout(attrs)
    return layout


def _backward_inputs(attrs):
    args, outs, aux = _names(attrs)
    lay = _backward_layout(attrs)
    return tuple([f"ograd_{outs[j]}" for j in lay.out_grads] + [args[i] for i in lay.in_data] +
                 [outs[j] for j in lay.out_data] + list(aux) +
                 [f"{args[i]}_shape" for i in lay.carriers])


def _backward_outputs(attrs):
    return tuple(f"{n}_grad" for n in _names(attrs)[0])


def _backward_infer(attrs, in_values):
    return in_values, [in_values[p] for p in _backward_layout(attrs).arg_positions]


def _backward_shape_only(attrs):
    return _backward_layout(attrs).shape_only


def _custom_backward(xp, attrs, inputs, outputs, req):
    op_type = attrs["op_type"]
    args, outs, _ = _names(attrs)
    lay = _backward_layout(attrs)
    ctx = _ctx_of(inputs[0]) if inputs else None
    values = iter(inputs)
    out_grad = [Undeclared(op_type, f"out_grad[{j}]") for j in range(len(outs))]
    in_data = [Undeclared(op_type, f"in_data[{i}]") for i in range(len(args))]
    out_data = [Undeclared(op_type, f"out_data[{j}]") for j in range(len(outs))]
    for where, picked in ((out_grad, lay.out_grads), (in_data, lay.in_data),
                          (out_data, lay.out_data)):
        for k in picked:
            where[k] = next(values)
    aux_data = [next(values) for _ in range(lay.num_aux)]
    arg_arrays = [inputs[p] for p in lay.arg_positions]
    op = _operator_for(attrs, ctx, [a.shape for a in arg_arrays + aux_data],
                       [a.dtype for a in arg_arrays + aux_data])

    def wrap_declared(arrays):
        return [a if isinstance(a, Undeclared) else wrap([a], ctx)[0] for a in arrays]

    with ndarray_code():
        grads = wrap(outputs, ctx)
        op.backward(list(req), wrap_declared(out_grad), wrap_declared(in_data),
                    wrap_declared(out_data), grads, wrap(aux_data, ctx))
        for g in grads:
            g.wait_to_read()


def _custom_gradient(F, node, ograds):
    args, _, aux = _names(node.attrs)
    lay = _backward_layout(node.attrs)
    inputs = [ograds[j] for j in lay.out_grads] + [node.inputs[i] for i in lay.in_data] + \
        [node.outputs[j] for j in lay.out_data] + list(node.inputs[len(args):]) + \
        [node.inputs[i] for i in lay.carriers]
    grads = F.call(BACKWARD_CUSTOM, BACKWARD_CUSTOM.name, tuple(inputs), dict(node.attrs))
    return list(grads) + [None] * len(aux)


BACKWARD_CUSTOM = _CustomOpDef(
    "_backward_Custom", _custom_backward, inputs=_backward_inputs, outputs=_backward_outputs,
    params={"op_type": Param(str, doc="The registered name of the operator.")},
    infer_shape=_backward_infer, infer_type=_backward_infer, partial_infer=True,
    differentiable=False,
    doc="The gradient of a Custom op: calls its operator's backward().")

CUSTOM = _CustomOpDef(
    "Custom", _custom_forward, inputs=_forward_inputs, outputs=_forward_outputs,
    params={"op_type": Param(str, doc="The registered name of the operator.")},
    infer_shape=_custom_infer_shape, infer_type=_custom_infer_type, partial_infer=True,
    resources=("is_train",), gradient=_custom_gradient,
    doc="An operator written in Python and registered under ``op_type`` (MXNet's "
        "``mx.operator``): its prop declares inputs, outputs, shapes and types, its "
        "operator computes forward and backward with NDArrays. Extra keyword arguments go "
        "to the prop's constructor as strings.")

register_runtime(BACKWARD_CUSTOM)
register_runtime(CUSTOM)
SHAPE_ONLY_INPUTS[BACKWARD_CUSTOM.name] = _backward_shape_only
