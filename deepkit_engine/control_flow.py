"""What the control-flow ops (:mod:`deepkit_engine.ops.control_flow`) run on: subgraphs.

A :class:`Subgraph` is a body parsed from its JSON text: shape and type
inference (with the outer graph's shapes, through the op's own inference),
an interpreter that runs it on arrays (each op's kernel; shapes inferred and
memory planned once per input signature, the intermediate results sharing
one arena), and its gradient graph
(the engine's gradient pass over the body, w.r.t. every body input, with
one output-gradient variable per body output).

Importing this module installs the op implementations; the front-ends are
in :mod:`deepkit_engine.contrib`.
"""
import json

import numpy as np

from .base import DeepkitError, DTypeError, ShapeError
from .graph.builder import GraphOps
from .graph.gradient import build_gradient
from .graph.infer import infer_shapes, infer_types
from .graph.node import Graph, Node
from .graph.plan_memory import plan_memory
from .ops import control_flow as _ops
from .symbol.json_io import from_json, to_json

__all__ = ["Subgraph", "subgraph", "OGRAD_PREFIX"]

#: Names of the output-gradient variables of a gradient subgraph: ``__ograd0``, ...
OGRAD_PREFIX = "__ograd"


class Subgraph:
    """A loop or branch body, parsed from JSON.

    Args:
        text: The body's symbol JSON.
        owner: The op, for messages.
    """

    def __init__(self, text, owner):
        self.text = text
        self.owner = owner
        self.heads = from_json(text, source=f"{owner} subgraph")
        self.graph = Graph(self.heads)
        self.variables = {n.name: n for n in self.graph.nodes if n.op is None}
        for node in self.graph.nodes:
            if node.op is not None and node.op.aux:
                raise DeepkitError(f"{owner}: the body uses {node.op.name} '{node.name}', "
                                   "which keeps auxiliary states; such ops cannot run inside "
                                   "a loop or branch")
        self._plans = {}
        self._gradient = None

    def infer(self, kind, given):
        """``({variable: shape or dtype}, [head shape or dtype])`` from ``given`` by name."""
        known = {self.graph.entry_id(self.variables[n]): v for n, v in given.items()
                 if n in self.variables and v is not None}
        run = infer_shapes if kind == "shape" else infer_types
        values = run(self.graph, known)
        var_values = {n: values[self.graph.entry_id(v)] for n, v in self.variables.items()}
        return var_values, [values[self.graph.entry_id(n, i)] for n, i in self.heads]

    def _plan(self, values):
        key = tuple((n, values[n].shape, values[n].dtype.str) for n in self.variables)
        plan = self._plans.get(key)
        if plan is None:
            given_shapes = {n: values[n].shape for n in self.variables}
            given_types = {n: values[n].dtype for n in self.variables}
            known = {self.graph.entry_id(v): given_shapes[n] for n, v in self.variables.items()}
            shapes = infer_shapes(self.graph, known)
            types = infer_types(self.graph, {self.graph.entry_id(v): given_types[n]
                                             for n, v in self.variables.items()})
            graph = self.graph
            external = {graph.entry_id(v) for v in self.variables.values()}
            external |= {graph.entry_id(n, i) for n, i in self.heads}
            memory = plan_memory(graph, [n for n in graph.nodes if n.op is not None], shapes,
                                 types, external, allow_inplace=False)
            plan = self._plans[key] = (shapes, types, memory)
        return plan

    def run(self, xp, values, rng=None, is_train=False):
        """The heads' arrays for input arrays ``values`` (by variable name).

        The body's intermediate results share one arena laid out by the memory
        planner (entries whose lifetimes do not overlap share bytes); only the
        heads, which the loop keeps, get arrays of their own.
        """
        missing = [n for n in self.variables if n not in values]
        if missing:
            raise DeepkitError(f"{self.owner}: no value for body input(s) {missing}")
        shapes, types, memory = self._plan(values)
        graph = self.graph
        arrays = [None] * graph.num_entries
        resources = {"rng": rng, "is_train": is_train, "blas_wide": True}
        arena = xp.empty(max(memory.arena_bytes or 0, 1), np.uint8) \
            if memory.offsets is not None else None

        def buffer(e):
            sid = memory.storage[e]
            if sid < 0 or arena is None:
                return xp.empty(shapes[e], types[e])
            start = memory.offsets[sid]
            return arena[start:start + memory.entry_bytes[e]].view(types[e]).reshape(shapes[e])
        for node in graph.nodes:
            first = graph.entry_id(node, 0)
            if node.op is None:
                arrays[first] = values[node.name]
                continue
            ins = [arrays[e] for e in graph.input_entry_ids(node)]
            out_ids = graph.output_entry_ids(node)
            outs = [buffer(e) for e in out_ids]
            kernel = node.op.kernel(xp)
            extra = {r: resources[r] for r in node.op.resources}
            kernel(xp, node.attrs, ins, outs, ("write",) * len(outs), **extra)
            for e, o in zip(out_ids, outs):
                arrays[e] = o
        return [arrays[graph.entry_id(n, i)] for n, i in self.heads]

    def gradient_text(self, wrt):
        """JSON of the gradient graph: heads are d(sum heads * ograds)/d(each of ``wrt``).

        The graph's inputs are the body's inputs plus ``__ograd<k>`` for head k;
        an input with no path from the heads gets zeros. ``wrt`` names body
        variables; the result is cached, so ask with the same list each time.
        """
        if self._gradient is None:
            ograds = [Node(None, f"{OGRAD_PREFIX}{k}") for k in range(len(self.heads))]
            targets = [self.variables[n] for n in wrt]
            grads, _ = build_gradient(self.heads, [(g, 0) for g in ograds], targets)
            zeros = GraphOps("__zero_")
            entries = []
            for target, grad in zip(targets, grads):
                if grad is None:
                    grad = zeros.zeros_like(zeros.wrap([(target, 0)]))._outputs[0]
                entries.append(grad)
            self._gradient = to_json(entries)
        return self._gradient


_CACHE = {}


def subgraph(text, owner):
    """The parsed :class:`Subgraph` of ``text`` (parsed once per text)."""
    sub = _CACHE.get(text)
    if sub is None:
        sub = _CACHE[text] = Subgraph(text, owner)
    return sub


def _names(attrs):
    return json.loads(attrs.in_names)


def _pick(*values):
    """The first value that is not None (shapes may be ``()``, which is falsy)."""
    return next((v for v in values if v is not None), None)


def _present(sub, names):
    return [n for n in names if n in sub.variables]


def _first_dtype(in_dtypes):
    return next((d for d in in_dtypes if d is not None), None)


def _write(xp, out, value, req):
    if req == "null":
        return
    if req == "add":
        out += value
    else:
        out[...] = value


def _same_shape_check(owner, what, before, after):
    if before is not None and after is not None and tuple(before) != tuple(after):
        raise ShapeError(f"{owner}: the body changes {what}'s shape from {tuple(before)} to "
                         f"{tuple(after)}; a loop state must keep its shape",
                         argument=what, expected=tuple(before), actual=tuple(after))


# -- foreach --------------------------------------------------------------------------

def _foreach_parts(attrs):
    names = _names(attrs)
    nd_, ns = attrs.num_data, attrs.num_states
    return names[:nd_], names[nd_:nd_ + ns], names[nd_ + ns:]


def foreach_shape(attrs, in_shapes):
    data_names, state_names, free_names = _foreach_parts(attrs)
    n_out = attrs.num_outputs + attrs.num_states
    in_shapes = list(in_shapes)
    sub = subgraph(attrs.subgraph, "_foreach")
    nd_, ns = len(data_names), len(state_names)
    steps = None
    given = {}
    for name, shape in zip(data_names, in_shapes[:nd_]):
        if shape is not None:
            if len(shape) < 1:
                raise ShapeError(f"_foreach: data '{name}' must have a time axis 0; got shape "
                                 f"{tuple(shape)}")
            if steps is not None and shape[0] != steps:
                raise ShapeError(f"_foreach: the sequences have different lengths ({steps} "
                                 f"and {shape[0]}) on axis 0")
            steps = shape[0]
            given[name] = tuple(shape[1:])
    for name, shape in zip(state_names + free_names, in_shapes[nd_:]):
        given[name] = shape
    var_shapes, heads = sub.infer("shape", given)
    for k, name in enumerate(state_names):
        _same_shape_check("_foreach", f"loop state {k} ('{name}')", given.get(name),
                          heads[attrs.num_outputs + k])
    new_ins = in_shapes[:nd_] + [_pick(given.get(n), var_shapes.get(n),
                                       heads[attrs.num_outputs + k])
                                 for k, n in enumerate(state_names)] + \
        [_pick(given.get(n), var_shapes.get(n)) for n in free_names]
    outs = [None if (h is None or steps is None) else (steps,) + tuple(h)
            for h in heads[:attrs.num_outputs]]
    outs += [new_ins[nd_ + k] for k in range(ns)]
    return new_ins, outs[:n_out]


def foreach_type(attrs, in_dtypes):
    dtype = _first_dtype(in_dtypes)
    n_out = attrs.num_outputs + attrs.num_states
    return [d if d is not None else dtype for d in in_dtypes], [dtype] * n_out


def _foreach_steps(xp, attrs, inputs, rng, is_train, keep_states=False):
    """Run the loop; ``(per-step outputs, final states, states before each step)``."""
    data_names, state_names, free_names = _foreach_parts(attrs)
    nd_, ns = len(data_names), len(state_names)
    sub = subgraph(attrs.subgraph, "_foreach")
    data, states = inputs[:nd_], list(inputs[nd_:nd_ + ns])
    free = dict(zip(free_names, inputs[nd_ + ns:]))
    steps = data[0].shape[0] if data else 0
    outputs, history = [], []
    for t in range(steps):
        values = dict(free)
        values.update({n: d[t] for n, d in zip(data_names, data)})
        values.update(zip(state_names, states))
        if keep_states:
            history.append(states)
        result = sub.run(xp, values, rng, is_train)
        outputs.append(result[:attrs.num_outputs])
        states = result[attrs.num_outputs:]
    return outputs, states, history


def foreach_forward(xp, attrs, inputs, outputs, req, rng=None, is_train=False):
    per_step, states, _ = _foreach_steps(xp, attrs, inputs, rng, is_train)
    for k in range(attrs.num_outputs):
        if per_step:
            _write(xp, outputs[k], xp.stack([s[k] for s in per_step]), req[k])
    for k, s in enumerate(states):
        _write(xp, outputs[attrs.num_outputs + k], s, req[attrs.num_outputs + k])


def _strip(attrs):
    return {k: v for k, v in attrs.items() if k != "num_args"}


def foreach_gradient(F, node, ograds):
    sub = subgraph(node.attrs.subgraph, "_foreach")
    grad = sub.gradient_text(_present(sub, _names(node.attrs)))
    result = F._backward_foreach(*node.inputs, *ograds, grad_graph=grad,
                                 num_ograds=len(ograds), **_strip(node.attrs))
    return [result[k] for k in range(len(node.inputs))]


def foreach_backward(xp, attrs, inputs, outputs, req, rng=None, is_train=False):
    data_names, state_names, free_names = _foreach_parts(attrs)
    nd_, ns = len(data_names), len(state_names)
    n_in = attrs.num_args - attrs.num_ograds
    fwd, ograds = inputs[:n_in], inputs[n_in:]
    _, _, history = _foreach_steps(xp, attrs, fwd, rng, is_train, keep_states=True)
    grad_sub = subgraph(attrs.grad_graph, "_backward_foreach")
    present = _present(subgraph(attrs.subgraph, "_foreach"), data_names + state_names + free_names)
    free = dict(zip(free_names, fwd[nd_ + ns:]))
    g_states = list(ograds[attrs.num_outputs:])
    g_free = [xp.zeros_like(a) for a in fwd[nd_ + ns:]]
    g_data = [xp.zeros_like(d) for d in fwd[:nd_]]
    for t in range(len(history) - 1, -1, -1):
        values = dict(free)
        values.update({n: d[t] for n, d in zip(data_names, fwd[:nd_])})
        values.update(zip(state_names, history[t]))
        for k in range(attrs.num_outputs):
            values[f"{OGRAD_PREFIX}{k}"] = ograds[k][t]
        for k in range(ns):
            values[f"{OGRAD_PREFIX}{attrs.num_outputs + k}"] = g_states[k]
        grads = dict(zip(present, grad_sub.run(xp, {n: v for n, v in values.items()
                                                    if n in grad_sub.variables}, rng, is_train)))
        for k, name in enumerate(data_names):
            if name in grads:
                g_data[k][t] = grads[name]
        g_states = [grads[n] if n in grads else xp.zeros_like(s)
                    for n, s in zip(state_names, history[t])]
        for k, name in enumerate(free_names):
            if name in grads:
                g_free[k] += grads[name]
    for k, g in enumerate(g_data + list(g_states) + g_free):
        _write(xp, outputs[k], g, req[k])


def _backward_shape(attrs, in_shapes):
    n_in = attrs.num_args - attrs.num_ograds
    return list(in_shapes), [None if s is None else tuple(s) for s in in_shapes[:n_in]]


def backward_type(attrs, in_dtypes):
    dtype = _first_dtype(in_dtypes)
    n_in = attrs.num_args - attrs.num_ograds
    return [d if d is not None else dtype for d in in_dtypes], [dtype] * n_in


# -- while_loop -----------------------------------------------------------------------

def _while_parts(attrs):
    names = _names(attrs)
    return names[:attrs.num_loop_vars], names[attrs.num_loop_vars:]


def while_loop_shape(attrs, in_shapes):
    var_names, free_names = _while_parts(attrs)
    nv = len(var_names)
    given = dict(zip(var_names + free_names, in_shapes))
    func = subgraph(attrs.func_graph, "_while_loop")
    cond = subgraph(attrs.cond_graph, "_while_loop")
    func_vars, heads = func.infer("shape", given)
    cond_vars, _ = cond.infer("shape", given)
    for k, name in enumerate(var_names):
        _same_shape_check("_while_loop", f"loop_vars[{k}] ('{name}')", given.get(name),
                          heads[attrs.num_outputs + k])
    new_ins = [_pick(given.get(n), func_vars.get(n), cond_vars.get(n),
                     heads[attrs.num_outputs + k]) for k, n in enumerate(var_names)]
    new_ins += [_pick(given.get(n), func_vars.get(n), cond_vars.get(n)) for n in free_names]
    outs = [None if h is None else (attrs.max_iterations,) + tuple(h)
            for h in heads[:attrs.num_outputs]]
    outs += new_ins[:nv]
    return new_ins, outs


def while_loop_type(attrs, in_dtypes):
    dtype = _first_dtype(in_dtypes)
    return [d if d is not None else dtype for d in in_dtypes], \
        [dtype] * (attrs.num_outputs + attrs.num_loop_vars)


def _truth(value):
    return bool(np.asarray(value.get() if hasattr(value, "get") else value).ravel()[0])


def _while_steps(xp, attrs, inputs, rng, is_train, keep=False):
    var_names, free_names = _while_parts(attrs)
    nv = len(var_names)
    func = subgraph(attrs.func_graph, "_while_loop")
    cond = subgraph(attrs.cond_graph, "_while_loop")
    loop_vars = list(inputs[:nv])
    free = dict(zip(free_names, inputs[nv:]))
    outputs, history = [], []
    for _ in range(attrs.max_iterations):
        values = dict(free)
        values.update(zip(var_names, loop_vars))
        if not _truth(cond.run(xp, {n: v for n, v in values.items() if n in cond.variables},
                               rng, is_train)[0]):
            break
        if keep:
            history.append(loop_vars)
        result = func.run(xp, {n: v for n, v in values.items() if n in func.variables}, rng,
                          is_train)
        outputs.append(result[:attrs.num_outputs])
        new_vars = result[attrs.num_outputs:]
        for k, (old, new) in enumerate(zip(loop_vars, new_vars)):
            if old.shape != new.shape:
                raise ShapeError(f"_while_loop: the step function changes loop_vars[{k}]'s "
                                 f"shape from {old.shape} to {new.shape}")
        loop_vars = new_vars
    return outputs, loop_vars, history


def while_loop_forward(xp, attrs, inputs, outputs, req, rng=None, is_train=False):
    per_step, loop_vars, _ = _while_steps(xp, attrs, inputs, rng, is_train)
    for k in range(attrs.num_outputs):
        stacked = xp.zeros(outputs[k].shape, outputs[k].dtype)
        for t, step in enumerate(per_step):
            stacked[t] = step[k]
        _write(xp, outputs[k], stacked, req[k])
    for k, v in enumerate(loop_vars):
        _write(xp, outputs[attrs.num_outputs + k], v, req[attrs.num_outputs + k])


def while_loop_gradient(F, node, ograds):
    var_names, free_names = _while_parts(node.attrs)
    func = subgraph(node.attrs.func_graph, "_while_loop")
    grad = func.gradient_text(_present(func, var_names + free_names))
    result = F._backward_while_loop(*node.inputs, *ograds, grad_graph=grad,
                                    num_ograds=len(ograds), **_strip(node.attrs))
    return [result[k] for k in range(len(node.inputs))]


def while_loop_backward(xp, attrs, inputs, outputs, req, rng=None, is_train=False):
    var_names, free_names = _while_parts(attrs)
    nv = len(var_names)
    n_in = attrs.num_args - attrs.num_ograds
    fwd, ograds = inputs[:n_in], inputs[n_in:]
    func = subgraph(attrs.func_graph, "_while_loop")
    present = _present(func, var_names + free_names)
    _, _, history = _while_steps(xp, attrs, fwd, rng, is_train, keep=True)
    grad_sub = subgraph(attrs.grad_graph, "_backward_while_loop")
    free = dict(zip(free_names, fwd[nv:]))
    g_vars = list(ograds[attrs.num_outputs:])
    g_free = {n: xp.zeros_like(free[n]) for n in free_names}
    for t in range(len(history) - 1, -1, -1):
        values = dict(free)
        values.update(zip(var_names, history[t]))
        for k in range(attrs.num_outputs):
            values[f"{OGRAD_PREFIX}{k}"] = ograds[k][t]
        for k in range(nv):
            values[f"{OGRAD_PREFIX}{attrs.num_outputs + k}"] = g_vars[k]
        grads = dict(zip(present, grad_sub.run(xp, {n: v for n, v in values.items()
                                                    if n in grad_sub.variables}, rng, is_train)))
        g_vars = [grads[n] if n in grads else xp.zeros_like(v)
                  for n, v in zip(var_names, history[t])]
        for name in free_names:
            if name in grads:
                g_free[name] += grads[name]
    for k, g in enumerate(list(g_vars) + [g_free[n] for n in free_names]):
        _write(xp, outputs[k], g, req[k])


# -- cond -----------------------------------------------------------------------------

def cond_shape(attrs, in_shapes):
    names = _names(attrs)
    given = dict(zip(names, in_shapes[1:]))
    then = subgraph(attrs.then_graph, "_cond")
    other = subgraph(attrs.else_graph, "_cond")
    then_vars, then_heads = then.infer("shape", given)
    else_vars, else_heads = other.infer("shape", given)
    outs = []
    for k, (a, b) in enumerate(zip(then_heads, else_heads)):
        if a is not None and b is not None and tuple(a) != tuple(b):
            raise ShapeError(f"_cond: then_func and else_func return different shapes for "
                             f"output {k}: {tuple(a)} and {tuple(b)}", argument=f"output{k}",
                             expected=tuple(a), actual=tuple(b))
        outs.append(a if a is not None else b)
    pred = in_shapes[0]
    new_ins = [pred] + [_pick(given.get(n), then_vars.get(n), else_vars.get(n)) for n in names]
    return new_ins, outs


def cond_type(attrs, in_dtypes):
    names = _names(attrs)
    given = dict(zip(names, in_dtypes[1:]))
    _, then_heads = subgraph(attrs.then_graph, "_cond").infer("type", given)
    _, else_heads = subgraph(attrs.else_graph, "_cond").infer("type", given)
    outs = []
    for k, (a, b) in enumerate(zip(then_heads, else_heads)):
        if a is not None and b is not None and np.dtype(a) != np.dtype(b):
            raise DTypeError(f"_cond: then_func and else_func return different types for "
                             f"output {k}: {np.dtype(a).name} and {np.dtype(b).name}")
        outs.append(a if a is not None else b)
    return list(in_dtypes), outs


def cond_forward(xp, attrs, inputs, outputs, req, rng=None, is_train=False):
    names = _names(attrs)
    branch = subgraph(attrs.then_graph if _truth(inputs[0]) else attrs.else_graph, "_cond")
    values = {n: v for n, v in zip(names, inputs[1:]) if n in branch.variables}
    for k, value in enumerate(branch.run(xp, values, rng, is_train)):
        _write(xp, outputs[k], value, req[k])


def cond_gradient(F, node, ograds):
    names = _names(node.attrs)
    then = subgraph(node.attrs.then_graph, "_cond")
    other = subgraph(node.attrs.else_graph, "_cond")
    result = F._backward_cond(
        *node.inputs, *ograds, then_grad=then.gradient_text(
            [n for n in names if n in then.variables]),
        else_grad=other.gradient_text([n for n in names if n in other.variables]),
        num_ograds=len(ograds), **_strip(node.attrs))
    return [None] + [result[k] for k in range(1, len(node.inputs))]


def cond_backward(xp, attrs, inputs, outputs, req, rng=None, is_train=False):
    names = _names(attrs)
    n_in = attrs.num_args - attrs.num_ograds
    fwd, ograds = inputs[:n_in], inputs[n_in:]
    taken = _truth(fwd[0])
    branch = subgraph(attrs.then_graph if taken else attrs.else_graph, "_cond")
    grad_sub = subgraph(attrs.then_grad if taken else attrs.else_grad, "_backward_cond")
    values = {n: v for n, v in zip(names, fwd[1:])}
    values.update({f"{OGRAD_PREFIX}{k}": g for k, g in enumerate(ograds)})
    grads = dict(zip(_present(branch, names), grad_sub.run(xp, {n: v for n, v in values.items()
                                               if n in grad_sub.variables}, rng, is_train)))
    _write(xp, outputs[0], xp.zeros_like(fwd[0]), req[0])
    for k, (name, value) in enumerate(zip(names, fwd[1:])):
        g = grads.get(name)
        _write(xp, outputs[k + 1], g if g is not None else xp.zeros_like(value), req[k + 1])


_ops.install(
    foreach_forward=foreach_forward, foreach_shape=foreach_shape, foreach_type=foreach_type,
    foreach_gradient=foreach_gradient, foreach_backward=foreach_backward,
    foreach_backward_shape=_backward_shape,
    while_loop_forward=while_loop_forward, while_loop_shape=while_loop_shape,
    while_loop_type=while_loop_type, while_loop_gradient=while_loop_gradient,
    while_loop_backward=while_loop_backward, while_loop_backward_shape=_backward_shape,
    cond_forward=cond_forward, cond_shape=cond_shape, cond_type=cond_type,
    cond_gradient=cond_gradient, cond_backward=cond_backward,
    cond_backward_shape=_backward_shape, backward_type=backward_type)
