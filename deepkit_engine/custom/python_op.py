"""Operators written in Python: :func:`define_op` declares one, registered once.

The forward and backward functions work on raw arrays of the device's array
module ``xp`` (numpy on CPU, cupy on GPU, so ``cupy.ElementwiseKernel`` and
``cupy.RawKernel`` can be used there). From the declaration two registry ops
are made, exactly like a built-in op and its gradient:

* ``<name>``: the forward op. ``nd.<name>``, ``sym.<name>`` and graph passes
  reach it through the registry; the executor plans its outputs, autograd
  records it, JSON names it.
* ``_backward_<name>``: its gradient node, whose inputs are the output
  gradients and exactly the forward inputs and outputs that ``backward_needs``
  names (plus, for each input it does not name, that input as a shape carrier,
  since the gradient takes its shape).

Example::

    def forward(xp, x, axis=-1):
        e = xp.exp(x - x.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)

    def backward(xp, out_grads, inputs, outputs, axis=-1):
        g, y = out_grads[0], outputs[0]
        return [y * (g - (g * y).sum(axis=axis, keepdims=True))]

    define_op("py_softmax", forward, backward, params={"axis": -1},
              backward_needs=("output",))
    y = nd.py_softmax(x, axis=1)

A cupy kernel on GPU (the function gets cupy arrays there)::

    def forward(xp, x):
        if xp is numpy:
            return numpy.maximum(x, 0)
        relu = xp.ElementwiseKernel("T x", "T y", "y = x > 0 ? x : (T)0", "py_relu")
        return relu(x)
"""
import inspect

import numpy as np

from ..base import DeepkitError, ParamError
from ..graph.plan_memory import SHAPE_ONLY_INPUTS
from ..ops.registry import (OpDef, Param, get_op, list_ops, register_runtime, unregister,
                            write_result)

__all__ = ["define_op", "remove_op", "PythonOpError"]


class PythonOpError(DeepkitError, ValueError):
    """A Python operator broke its own declaration (shapes, gradient count)."""


_PARAM_TYPES = (bool, int, float, str)


def _as_param(op_name, pname, spec):
    if isinstance(spec, Param):
        return spec
    if spec is None or isinstance(spec, tuple):
        return Param(str if spec is None else type(spec), spec, f"Parameter {pname}.")
    for t in _PARAM_TYPES:
        if type(spec) is t:
            return Param(t, spec, f"Parameter {pname}.")
    raise ParamError(f"define_op '{op_name}': param '{pname}' needs a Param or a default of type "
                     f"bool, int, float or str; got {spec!r}", op=op_name, param=pname)


def _takes(fn, name):
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _names(value, what, op_name):
    if isinstance(value, str):
        value = (value,)
    value = tuple(value)
    if not all(isinstance(n, str) and n for n in value):
        raise ParamError(f"define_op '{op_name}': {what} must be names (str), got {value!r}",
                         op=op_name, param=what)
    return value


def _check_outputs(op_name, phase, values, outputs, out_names):
    """Refuse results that disagree with the planned outputs, naming the op and the shapes."""
    if len(values) != len(outputs):
        raise PythonOpError(
            f"custom op '{op_name}': {phase} returned {len(values)} array(s) but the op declares "
            f"{len(outputs)} ({', '.join(out_names)})")
    for value, out, oname in zip(values, outputs, out_names):
        if value is None:
            continue
        shape = tuple(getattr(value, "shape", ()))
        if shape != tuple(out.shape):
            raise PythonOpError(
                f"custom op '{op_name}': {phase} returned {oname} of shape {shape} but shape "
                f"inference gave {tuple(out.shape)}; make infer_shape agree with {phase}")


def _write(xp, values, outputs, req):
    for value, out, r in zip(values, outputs, req):
        if value is None:
            if r == "write":
                out[...] = 0
            continue
        write_result(xp, out, xp.asarray(value), r)


def _as_list(result):
    if isinstance(result, (list, tuple)):
        return list(result)
    return [result]


class _Declaration:
    """What :func:`define_op` was told, with the two registry ops built from it."""

    def __init__(self, name, forward, backward, inputs, outputs, aux, params, infer_shape,
                 infer_type, backward_needs, inplace, loss_head, doc):
        self.name = name
        self.forward = forward
        self.backward = backward
        self.inputs = inputs
        self.outputs = outputs
        self.aux = aux
        self.params = {k: _as_param(name, k, v) for k, v in (params or {}).items()}
        self.user_infer_shape = infer_shape or self._like_input_0
        self.user_infer_type = infer_type or self._like_input_0
        self.loss_head = loss_head
        self.inplace = inplace
        self.resources = tuple(r for r in ("is_train", "rng") if _takes(forward, r))
        all_names = inputs + aux + outputs
        if backward_needs is None:
            backward_needs = inputs + outputs
        needs = _names(backward_needs, "backward_needs", name)
        unknown = [n for n in needs if n not in inputs + outputs]
        if unknown:
            raise ParamError(f"define_op '{name}': backward_needs names {unknown}, which are not "
                             f"inputs {list(inputs)} or outputs {list(outputs)}", op=name,
                             param="backward_needs")
        if len(set(all_names)) != len(all_names):
            raise ParamError(f"define_op '{name}': input, aux and output names must differ; got "
                             f"inputs={list(inputs)}, aux={list(aux)}, outputs={list(outputs)}",
                             op=name, param="inputs")
        self.needed_inputs = [i for i, n in enumerate(inputs) if n in needs]
        self.needed_outputs = [j for j, n in enumerate(outputs) if n in needs]
        self.shape_carriers = [i for i in range(len(inputs)) if i not in self.needed_inputs]
        self.forward_op = self._forward_op(doc)
        self.backward_op = self._backward_op() if backward is not None else None

    # -- inference -------------------------------------------------------------------
    def _like_input_0(self, in_values, **attrs):
        return [in_values[0]] * len(self.outputs)

    def _run_user_inference(self, fn, what, attrs, known):
        result = fn(list(known), **attrs)
        if isinstance(result, tuple) and len(result) in (2, 3) and isinstance(result[0], list) \
                and isinstance(result[1], (list, tuple)):
            ins, outs = list(result[0]), list(result[1])
        else:
            ins, outs = list(known), list(result)
        if len(outs) != len(self.outputs):
            raise PythonOpError(f"custom op '{self.name}': {what} returned {len(outs)} output "
                                f"value(s) for {len(self.outputs)} outputs "
                                f"({', '.join(self.outputs)})")
        return ins, outs

    def infer_shape(self, attrs, in_shapes):
        if any(s is None for s in in_shapes):
            return in_shapes, [None] * len(self.outputs)
        ins, outs = self._run_user_inference(self.user_infer_shape, "infer_shape", attrs,
                                             [tuple(s) for s in in_shapes])
        return [tuple(s) for s in ins], [tuple(int(d) for d in s) for s in outs]

    def infer_type(self, attrs, in_dtypes):
        if any(d is None for d in in_dtypes):
            return in_dtypes, [None] * len(self.outputs)
        ins, outs = self._run_user_inference(self.user_infer_type, "infer_type", attrs,
                                             [np.dtype(d) for d in in_dtypes])
        return [np.dtype(d) for d in ins], [np.dtype(d) for d in outs]

    # -- forward ---------------------------------------------------------------------
    def run_forward(self, xp, attrs, inputs, outputs, req, **resources):
        values = _as_list(self.forward(xp, *inputs, **attrs, **resources))
        _check_outputs(self.name, "forward", values, outputs, self.outputs)
        _write(xp, values, outputs, req)

    def _forward_op(self, doc):
        return OpDef(
            self.name, self.run_forward, inputs=self.inputs + self.aux, outputs=self.outputs,
            params=self.params, infer_shape=self.infer_shape, infer_type=self.infer_type,
            partial_infer=True, aux=self.aux, resources=self.resources,
            inplace=((0, 0),) if self.inplace else (), loss_head=self.loss_head,
            gradient=self.gradient if self.backward is not None else self.refuse_gradient,
            doc=doc or (self.forward.__doc__ or "").strip() or f"The Python operator {self.name}.")

    # -- backward --------------------------------------------------------------------
    def gradient(self, F, node, ograds):
        args = [] if self.loss_head else list(ograds)
        args += [node.inputs[i] for i in self.needed_inputs]
        args += [node.outputs[j] for j in self.needed_outputs]
        args += [node.inputs[i] for i in self.shape_carriers]
        grads = F.call(self.backward_op, self.backward_op.name, tuple(args), dict(node.attrs))
        grads = list(grads)
        return grads + [None] * len(self.aux)

    def refuse_gradient(self, F, node, ograds):
        raise PythonOpError(f"custom op '{self.name}' (node '{node.name}') is inference-only: it "
                            "was declared without a backward function, so nothing can be "
                            "differentiated through it (give define_op a backward, or cut the "
                            "gradient with BlockGrad / grad_req='null')")

    def _backward_inputs(self):
        names = [] if self.loss_head else [f"ograd_{n}" for n in self.outputs]
        names += [self.inputs[i] for i in self.needed_inputs]
        names += [self.outputs[j] for j in self.needed_outputs]
        names += [f"{self.inputs[i]}_shape" for i in self.shape_carriers]
        return tuple(names)

    def _input_positions(self):
        """Where, among the backward node's inputs, each forward input's shape is found."""
        offset = 0 if self.loss_head else len(self.outputs)
        positions = {}
        for k, i in enumerate(self.needed_inputs):
            positions[i] = offset + k
        offset += len(self.needed_inputs) + len(self.needed_outputs)
        for k, i in enumerate(self.shape_carriers):
            positions[i] = offset + k
        return [positions[i] for i in range(len(self.inputs))]

    def backward_infer(self, attrs, in_values):
        return in_values, [in_values[p] for p in self._input_positions()]

    def run_backward(self, xp, attrs, inputs, outputs, req):
        n_og = 0 if self.loss_head else len(self.outputs)
        ograds = list(inputs[:n_og]) if n_og else [None] * len(self.outputs)
        fwd_inputs = [None] * len(self.inputs)
        fwd_outputs = [None] * len(self.outputs)
        pos = n_og
        for i in self.needed_inputs:
            fwd_inputs[i] = inputs[pos]
            pos += 1
        for j in self.needed_outputs:
            fwd_outputs[j] = inputs[pos]
            pos += 1
        result = self.backward(xp, ograds, fwd_inputs, fwd_outputs, **attrs)
        if not isinstance(result, (list, tuple)):
            result = [result]
        if len(result) != len(self.inputs):
            raise PythonOpError(
                f"custom op '{self.name}': backward returned {len(result)} gradient(s) but the op "
                f"has {len(self.inputs)} input(s) ({', '.join(self.inputs)}); return one per "
                "input (None for no gradient)")
        _check_outputs(self.name, "backward", list(result), outputs,
                       [f"the gradient of {n}" for n in self.inputs])
        _write(xp, list(result), outputs, req)

    def _backward_op(self):
        return OpDef(
            f"_backward_{self.name}", self.run_backward, inputs=self._backward_inputs(),
            outputs=tuple(f"{n}_grad" for n in self.inputs), params=self.params,
            infer_shape=self.backward_infer, infer_type=self.backward_infer, partial_infer=True,
            inplace=((0, 0),) if self.inplace and not self.loss_head else (),
            differentiable=False,
            doc=f"The gradient of the Python operator {self.name}.")


def define_op(name, forward, backward=None, *, inputs=("data",), outputs=("output",), aux=(),
              params=None, infer_shape=None, infer_type=None, backward_needs=None,
              inplace=False, loss_head=False, doc="", register=True):
    """Declare and register an operator written in Python.

    Args:
        name: The registered name: ``nd.<name>``, ``sym.<name>``, JSON.
        forward: ``forward(xp, *inputs, *aux, **params)`` returning the output
            array (or a list, one per output). ``xp`` is numpy or cupy. Aux
            arrays are updated in place. An ``is_train`` keyword, if the
            function takes one, says whether it runs in training mode; an
            ``rng`` keyword gets the device's random generator (seeded by
            ``deepkit_engine.random.seed``; draws stay ordered).
        backward: ``backward(xp, out_grads, inputs, outputs, **params)``
            returning one gradient per input (``None``: no gradient).
            ``inputs`` and ``outputs`` hold the arrays ``backward_needs``
            names and ``None`` elsewhere; ``out_grads`` is all ``None`` for a
            loss head. Without a backward the op is inference-only and
            differentiating through it is refused with a clear error.
        inputs: Input names (symbols auto-create ``<node>_<input>`` variables).
        outputs: Output names.
        aux: Auxiliary state names (inputs after ``inputs``, updated in place,
            no gradient; ``list_auxiliary_states`` lists them).
        params: ``{name: default or Param}``: typed keyword parameters.
        infer_shape: ``infer_shape(in_shapes, **params)`` returning the output
            shapes, or ``(in_shapes, out_shapes)``. Default: every output has
            input 0's shape.
        infer_type: The same for dtypes. Default: input 0's dtype.
        backward_needs: The input and output names ``backward`` reads (default:
            all), so the memory planner can free the others before backward.
        inplace: Output 0 may share input 0's memory (and in backward, the
            gradient of input 0 that of output 0's gradient).
        loss_head: The op ends a network and its gradient ignores the incoming
            output gradient (MXNet's ``need_top_grad=False``).
        doc: The docstring of ``nd.<name>``/``sym.<name>`` (default: forward's).
        register: False keeps the op out of the registry (no ``nd.<name>``,
            no JSON): a library's private op, run with ``nd.invoke(op, inputs,
            op.parse_attrs(params))`` and differentiable all the same.

    Returns:
        The :class:`~deepkit_engine.ops.registry.OpDef` (registered unless told not to).

    Raises:
        ValueError: ``name`` (or ``_backward_<name>``) is already registered.
        ParamError: The declaration is inconsistent (names, params).
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ParamError(f"define_op: name must be an identifier, got {name!r}", op=str(name),
                         param="name")
    for taken in (name, f"_backward_{name}") if register else ():
        if taken in list_ops():
            raise ValueError(f"define_op: operator '{taken}' is already registered ("
                             f"{get_op(taken)!r}); pick another name or remove_op('{name}') "
                             "first")
    if not callable(forward) or (backward is not None and not callable(backward)):
        raise ParamError(f"define_op '{name}': forward and backward must be callables",
                         op=name, param="forward")
    decl = _Declaration(name, forward, backward, _names(inputs, "inputs", name),
                        _names(outputs, "outputs", name), _names(aux, "aux", name), params,
                        infer_shape, infer_type, backward_needs, inplace, loss_head, doc)
    if not register:
        return decl.forward_op
    if decl.backward_op is not None:
        register_runtime(decl.backward_op)
        if decl.shape_carriers:  # inputs backward_needs leaves out: their shapes only
            start = len(decl._backward_inputs()) - len(decl.shape_carriers)
            SHAPE_ONLY_INPUTS[decl.backward_op.name] = tuple(
                range(start, start + len(decl.shape_carriers)))
    return register_runtime(decl.forward_op)


def remove_op(name):
    """Unregister a Python operator made by :func:`define_op` (and its gradient op)."""
    unregister(name)
    if f"_backward_{name}" in list_ops():
        unregister(f"_backward_{name}")
    SHAPE_ONLY_INPUTS.pop(f"_backward_{name}", None)

