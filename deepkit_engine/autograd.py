"""Imperative automatic differentiation: record NDArray work, then differentiate it.

Inside ``record()`` every op called through ``nd`` on arrays that need
gradients adds a node to a tape: the same graph IR that symbols use. A
``backward()`` or ``grad()`` turns the tape into a graph, runs the same
gradient pass as the executor, and evaluates the gradient nodes on the
recorded arrays. With ``create_graph=True`` the evaluation is itself recorded,
so gradients can be differentiated again.

The recorded arrays are referenced, not copied: changing one in place after
recording it changes the gradient (as in MXNet); in-place ops on recorded
arrays inside ``record()`` are refused for that reason.
"""
import contextlib

from . import ndarray as nd
from .base import DeepkitError
from .custom import Function  # noqa: F401 - MXNet's autograd.Function, defined with the custom ops
from .graph.gradient import build_gradient
from .graph.node import topo_order
from .ndarray import NDArray, invoke
from .symbol.symbol import Symbol
from .tape import (is_recording, is_training, leaf as _leaf, mark_variables, set_recording,
                   set_training)

__all__ = [
    "record", "pause", "train_mode", "predict_mode", "is_recording", "is_training",
    "set_recording", "set_training", "mark_variables", "backward", "grad", "attach_grad",
    "get_symbol",
]


@contextlib.contextmanager
def _scope(recording, training):
    old_r = set_recording(recording) if recording is not None else None
    old_t = set_training(training) if training is not None else None
    try:
        yield
    finally:
        if recording is not None:
            set_recording(old_r)
        if training is not None:
            set_training(old_t)


def record(train_mode=True):
    """Record operations for differentiation (training mode by default)."""
    return _scope(True, train_mode)


def pause(train_mode=False):
    """Stop recording inside a ``record()`` block (inference mode by default)."""
    return _scope(False, train_mode)


def train_mode():
    """Mode-dependent ops (Dropout, BatchNorm) behave as in training."""
    return _scope(None, True)


def predict_mode():
    """Mode-dependent ops behave as in inference."""
    return _scope(None, False)


# -- variables ----------------------------------------------------------------------

def attach_grad(array, grad_req="write"):
    """Give ``array`` a zero gradient buffer and make it a variable to differentiate."""
    array.attach_grad(grad_req)


# -- differentiation -------------------------------------------------------------

def _evaluate(grad_entries, retain_graph, create_graph, train):
    """Compute gradient entries imperatively from the recorded values."""
    live = [e for e in grad_entries if e is not None]
    results = {}
    with _scope(create_graph, train):
        for node in topo_order(live):
            if node.value is not None:
                continue
            if node.op is None:
                raise DeepkitError(f"autograd: no value for '{node.name}'")
            inputs = []
            for src, idx in node.inputs:
                inputs.append(src.value[idx] if src.value is not None else results[id(src)][idx])
            out = invoke(node.op, inputs, node.attrs, None, inputs[0].ctx if inputs else None)
            results[id(node)] = out if isinstance(out, list) else [out]
    values = []
    for e in grad_entries:
        if e is None:
            values.append(None)
        else:
            node, idx = e
            values.append(node.value[idx] if node.value is not None else results[id(node)][idx])
    return values


def _heads(heads, head_grads):
    heads = heads if isinstance(heads, (list, tuple)) else [heads]
    if head_grads is None:
        head_grads = [None] * len(heads)
    elif not isinstance(head_grads, (list, tuple)):
        head_grads = [head_grads]
    entries, grad_entries = [], []
    for h, g in zip(heads, head_grads):
        if h._tape is None:
            raise DeepkitError("autograd: this output was not computed inside record() from "
                               "arrays with attach_grad(); nothing to differentiate")
        entries.append(h._tape)
        if g is None:
            g = nd.ones(h.shape, ctx=h.ctx, dtype=h.dtype)
        grad_entries.append((_leaf(g), 0))
    return entries, grad_entries


def _variables_of(entries):
    return [n for n in topo_order(entries) if n.op is None and n.value is not None
            and n.value[0]._grad is not None and n.value[0]._tape is not None
            and n.value[0]._tape[0] is n]


def get_symbol(x):
    """The recorded computation that produced ``x``, as a Symbol (MXNet's ``get_symbol``).

    The arrays it started from (those with ``attach_grad`` and other inputs)
    are the symbol's arguments.

    Raises:
        DeepkitError: ``x`` was not computed inside ``record()``.
    """
    if not isinstance(x, NDArray) or x._tape is None:
        raise DeepkitError("autograd.get_symbol: the array was not computed inside record() "
                           "from arrays with attach_grad(); there is no recorded graph")
    return Symbol([x._tape])


def backward(heads, head_grads=None, retain_graph=False, train_mode=True):
    """Compute gradients of ``heads`` into the ``.grad`` of every attached variable."""
    entries, hg = _heads(heads, head_grads)
    variables = _variables_of(entries)
    grads, _ = build_gradient(entries, hg, variables)
    values = _evaluate(grads, retain_graph, False, train_mode)
    for node, g in zip(variables, values):
        array = node.value[0]
        if g is None:
            if array._grad_req == "write":
                array._grad[:] = 0
            continue
        if array._grad_req == "add":
            array._grad += g
        else:
            g.copyto(array._grad)
    if not retain_graph:
        for h in (heads if isinstance(heads, (list, tuple)) else [heads]):
            h._tape = None


def grad(heads, variables, head_grads=None, retain_graph=None, create_graph=False,
         train_mode=True):
    """Gradients of ``heads`` with respect to ``variables``, returned (not stored).

    With ``create_graph=True`` the result is recorded too, so it can be
    differentiated again (second-order gradients).
    """
    single = not isinstance(variables, (list, tuple))
    variables = [variables] if single else list(variables)
    for v in variables:
        if v._tape is None:
            raise DeepkitError("autograd.grad: a variable has no attach_grad(); call it before "
                               "record()")
    entries, hg = _heads(heads, head_grads)
    grads, _ = build_gradient(entries, hg, [v._tape[0] for v in variables])
    values = _evaluate(grads, retain_graph, create_graph, train_mode)
    out = [v if v is not None else nd.zeros(x.shape, ctx=x.ctx, dtype=x.dtype)
           for v, x in zip(values, variables)]
    return out[0] if single else out


def _ndarray_backward(self, out_grad=None, retain_graph=False, train_mode=True):
    """Differentiate this recorded result into the attached variables' ``.grad``."""
    backward([self], None if out_grad is None else [out_grad], retain_graph, train_mode)


_ndarray_backward.__name__ = _ndarray_backward.__qualname__ = "backward"
NDArray.backward = _ndarray_backward  # NDArray sits below autograd; it gets the method here
