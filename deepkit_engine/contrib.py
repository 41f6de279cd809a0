"""MXNet 1.x's control flow: ``contrib.symbol`` and ``contrib.ndarray`` forms of
``foreach``, ``while_loop`` and ``cond``.

The symbolic forms trace the Python body once on placeholder variables and
make one ``_foreach``/``_while_loop``/``_cond`` node whose body is a
subgraph; whatever the body reads from the outer graph (weights, other
symbols) becomes an input of that node, and gets its gradient summed over
the steps. The imperative forms run the body in a Python loop on NDArrays
(as MXNet's do), so they work under ``autograd.record``.

A recurrent layer as a loop::

    from deepkit_engine import contrib, symbol as sym

    data = sym.Variable('data')                 # (T, N, C)
    h0 = sym.Variable('h0')                     # (N, H)
    w, u = sym.Variable('w'), sym.Variable('u')

    def step(x, states):
        h = sym.tanh(sym.dot(x, w) + sym.dot(states[0], u))
        return h, [h]

    outputs, states = contrib.symbol.foreach(step, data, [h0])   # outputs (T, N, H)

As in MXNet, ``while_loop``'s stacked outputs have ``max_iterations`` rows;
the rows after the last step are zeros.
"""
import json
import types

import numpy as np

from . import control_flow  # noqa: F401 - installs the ops' implementations
from . import ndarray as nd
from . import symbol as _sympkg
from .base import DeepkitError
from .graph.node import topo_order
from .symbol import symbol as _symbol
from .symbol.naming import current_name_manager

__all__ = ["symbol", "ndarray"]

Symbol = _symbol.Symbol


def _as_list(x):
    if x is None:
        return [], False
    if isinstance(x, (list, tuple)):
        return list(x), True
    return [x], False


def _trace(owner, heads, placeholders):
    """``(json, free symbols, free names)`` of the graph behind ``heads``."""
    for h in heads:
        if not isinstance(h, Symbol) or len(h) != 1:
            raise DeepkitError(f"{owner}: the function must return symbols with one output "
                               f"each; got {h!r}")
    group = _symbol.Group(heads)
    nodes = topo_order(group._outputs)
    variables = {n.name: n for n in nodes if n.op is None}
    free = [n for n in variables if n not in placeholders]
    return group.tojson(), [Symbol([(variables[n], 0)]) for n in free], free


def _sym_foreach(body, data, init_states, name=None):
    """Run ``body(data_t, states) -> (outputs, new_states)`` over axis 0 of ``data`` (MXNet).

    Args:
        body: A Python function of symbols.
        data: A symbol or a list of symbols, sliced along axis 0.
        init_states: A symbol or a list of symbols: the initial states.
        name: The node name.

    Returns:
        ``(outputs, states)``: the per-step outputs stacked along a new axis
        0 and the final states, each a symbol or a list as ``body`` returned.
    """
    op_name = current_name_manager().get(name, "foreach")
    datas, data_list = _as_list(data)
    states, states_list = _as_list(init_states)
    if not datas:
        raise DeepkitError(f"foreach '{op_name}': data must be a symbol or a non-empty list")
    data_ph = [_symbol.Variable(f"{op_name}_data{i}") for i in range(len(datas))]
    state_ph = [_symbol.Variable(f"{op_name}_state{i}") for i in range(len(states))]
    outs, new_states = body(data_ph if data_list else data_ph[0],
                            state_ph if states_list else (state_ph[0] if state_ph else []))
    outs, outs_list = _as_list(outs)
    new_states, _ = _as_list(new_states)
    if len(new_states) != len(states):
        raise DeepkitError(f"foreach '{op_name}': the body returned {len(new_states)} states "
                           f"for {len(states)} initial states")
    placeholders = [s.name for s in data_ph + state_ph]
    text, free, free_names = _trace(f"foreach '{op_name}'", outs + new_states, placeholders)
    result = _call("_foreach", datas + states + free, op_name, subgraph=text,
                   in_names=json.dumps(placeholders + free_names), num_data=len(datas),
                   num_states=len(states), num_outputs=len(outs))
    items = list(result)
    out_syms, state_syms = items[:len(outs)], items[len(outs):]
    return (out_syms if outs_list else (out_syms[0] if out_syms else [])), \
        (state_syms if states_list else (state_syms[0] if state_syms else []))


def _call(op_name, inputs, node_name, **params):
    """One node of control-flow op ``op_name`` on ``inputs``; a symbol of its outputs."""
    return getattr(_sympkg, op_name)(*inputs, name=node_name, **params)


def _sym_while_loop(cond, func, loop_vars, max_iterations=None, name=None):
    """Run ``func(*loop_vars) -> (outputs, new_loop_vars)`` while ``cond(*loop_vars)`` (MXNet).

    Args:
        cond: Python function of the loop variables returning a one-element symbol.
        func: Python function of the loop variables returning ``(outputs, new_vars)``.
        loop_vars: A symbol or a list of symbols.
        max_iterations: The most steps (required).
        name: The node name.

    Returns:
        ``(outputs, loop_vars)``: outputs stacked into ``max_iterations`` rows
        (zeros after the last step), and the final loop variables.
    """
    op_name = current_name_manager().get(name, "while_loop")
    if max_iterations is None:
        raise DeepkitError(f"while_loop '{op_name}': max_iterations is required")
    loop, is_list = _as_list(loop_vars)
    ph = [_symbol.Variable(f"{op_name}_var{i}") for i in range(len(loop))]
    names = [p.name for p in ph]
    pred = cond(*ph)
    outs, new_vars = func(*ph)
    outs, outs_list = _as_list(outs)
    new_vars, _ = _as_list(new_vars)
    if len(new_vars) != len(loop):
        raise DeepkitError(f"while_loop '{op_name}': func returned {len(new_vars)} loop "
                           f"variables for {len(loop)}")
    cond_text, cond_free, cond_names = _trace(f"while_loop '{op_name}'", [pred], names)
    func_text, func_free, func_names = _trace(f"while_loop '{op_name}'", outs + new_vars, names)
    free_names, free = list(func_names), list(func_free)
    for n, s in zip(cond_names, cond_free):
        if n not in free_names:
            free_names.append(n)
            free.append(s)
    result = list(_call("_while_loop", loop + free, op_name, cond_graph=cond_text,
                        func_graph=func_text, in_names=json.dumps(names + free_names),
                        num_loop_vars=len(loop), num_outputs=len(outs),
                        max_iterations=int(max_iterations)))
    out_syms, var_syms = result[:len(outs)], result[len(outs):]
    return (out_syms if outs_list else (out_syms[0] if out_syms else [])), \
        (var_syms if is_list else var_syms[0])


def _sym_cond(pred, then_func, else_func, name=None):
    """``then_func()`` where ``pred`` is nonzero, else ``else_func()`` (MXNet).

    Args:
        pred: A one-element symbol.
        then_func, else_func: Functions of no arguments returning a symbol or
            a list; both must return the same number, shapes and types.
        name: The node name.
    """
    op_name = current_name_manager().get(name, "cond")
    then_out, then_list = _as_list(then_func())
    else_out, _ = _as_list(else_func())
    if len(then_out) != len(else_out):
        raise DeepkitError(f"cond '{op_name}': then_func returned {len(then_out)} outputs "
                           f"and else_func {len(else_out)}")
    then_text, then_free, then_names = _trace(f"cond '{op_name}'", then_out, [])
    else_text, else_free, else_names = _trace(f"cond '{op_name}'", else_out, [])
    names, free = list(then_names), list(then_free)
    for n, s in zip(else_names, else_free):
        if n not in names:
            names.append(n)
            free.append(s)
    result = list(_call("_cond", [pred] + free, op_name, then_graph=then_text,
                        else_graph=else_text, in_names=json.dumps(names),
                        num_outputs=len(then_out)))
    return result if then_list else result[0]


# -- imperative forms -----------------------------------------------------------------

def _nd_foreach(body, data, init_states):
    """The imperative ``foreach``: ``body`` on NDArrays, one Python step per row of ``data``."""
    datas, data_list = _as_list(data)
    states, states_list = _as_list(init_states)
    steps = datas[0].shape[0]
    collected = []
    outs_list = False
    for t in range(steps):
        xs = [d[t] for d in datas]
        outs, states = body(xs if data_list else xs[0],
                            states if states_list else (states[0] if states else []))
        outs, outs_list = _as_list(outs)
        states, _ = _as_list(states)
        collected.append(outs)
    stacked = [nd.stack(*[step[k] for step in collected], axis=0)
               for k in range(len(collected[0]) if collected else 0)]
    return (stacked if outs_list else (stacked[0] if stacked else [])), \
        (states if states_list else (states[0] if states else []))


def _truth(value):
    return bool(np.asarray(value.asnumpy()).ravel()[0])


def _nd_while_loop(cond, func, loop_vars, max_iterations=None):
    """The imperative ``while_loop``; outputs are padded with zero rows to ``max_iterations``."""
    if max_iterations is None:
        raise DeepkitError("while_loop: max_iterations is required")
    loop, is_list = _as_list(loop_vars)
    collected, outs_list = [], False
    for _ in range(int(max_iterations)):
        if not _truth(cond(*loop)):
            break
        outs, new_vars = func(*loop)
        outs, outs_list = _as_list(outs)
        new_vars, _ = _as_list(new_vars)
        for k, (old, new) in enumerate(zip(loop, new_vars)):
            if old.shape != new.shape:
                raise DeepkitError(f"while_loop: func changes loop_vars[{k}]'s shape from "
                                   f"{old.shape} to {new.shape}")
        loop = new_vars
        collected.append(outs)
    stacked = []
    for k in range(len(collected[0]) if collected else 0):
        rows = [step[k] for step in collected]
        pad = int(max_iterations) - len(rows)
        if pad:
            rows += [nd.zeros_like(rows[0])] * pad
        stacked.append(nd.stack(*rows, axis=0))
    return (stacked if outs_list else (stacked[0] if stacked else [])), \
        (loop if is_list else loop[0])


def _nd_cond(pred, then_func, else_func):
    """The imperative ``cond``: runs one branch on whether ``pred`` is nonzero."""
    return then_func() if _truth(pred) else else_func()


symbol = types.ModuleType(f"{__name__}.symbol", "Symbolic control flow (``sym.contrib``).")
symbol.foreach, symbol.while_loop, symbol.cond = _sym_foreach, _sym_while_loop, _sym_cond
ndarray = types.ModuleType(f"{__name__}.ndarray", "Imperative control flow (``nd.contrib``).")
ndarray.foreach, ndarray.while_loop, ndarray.cond = _nd_foreach, _nd_while_loop, _nd_cond

# MXNet's spelling: sym.contrib.foreach, nd.contrib.while_loop, ... (the registry-backed
# contrib namespaces hold ops; these three are Python front-ends, so they are added here).
for _forms, _space in ((symbol, _sympkg.contrib), (ndarray, nd.contrib)):
    for _name in ("foreach", "while_loop", "cond"):
        setattr(_space, _name, getattr(_forms, _name))
