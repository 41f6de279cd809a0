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
import threading

from .base import DeepkitError
from .graph.gradient import build_gradient
from .graph.node import Node, topo_order

__all__ = [
    "record", "pause", "train_mode", "predict_mode", "is_recording", "is_training",
    "set_recording", "set_training", "mark_variables", "backward", "grad", "attach_grad",
]

_state = threading.local()


def is_training():
    """True inside ``train_mode()`` or ``record()`` (unless told otherwise)."""
    return getattr(_state, "training", False)


def is_recording():
    """True while operations are being recorded for differentiation."""
    return getattr(_state, "recording", False)


def set_training(flag):
    """Set the training flag; returns the previous value."""
    old = is_training()
    _state.training = bool(flag)
    return old


def set_recording(flag):
    """Start or stop recording; returns the previous value."""
    from .ndarray import ndarray as _nd  # noqa: PLC0415
    old = is_recording()
    _state.recording = bool(flag)
    _nd._record_hook = _record if _any_thread_recording(flag) else None
    return old


_recording_threads = set()
_threads_lock = threading.Lock()


def _any_thread_recording(flag):
    with _threads_lock:
        if flag:
            _recording_threads.add(threading.get_ident())
        else:
            _recording_threads.discard(threading.get_ident())
        return bool(_recording_threads)


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


# -- variables and the tape --------------------------------------------------------

_counter = [0]


def _leaf(array, name=None):
    node = Node(None, name or f"_leaf{_counter[0]}")
    _counter[0] += 1
    node.value = [array]
    return node


def attach_grad(array, grad_req="write"):
    """Give ``array`` a zero gradient buffer and make it a variable to differentiate."""
    from . import ndarray as nd  # noqa: PLC0415
    if grad_req not in ("write", "add", "null"):
        raise DeepkitError(f"attach_grad: grad_req must be 'write', 'add' or 'null', got "
                           f"{grad_req!r}")
    array._grad = nd.zeros(array.shape, ctx=array.ctx, dtype=array.dtype)
    array._grad_req = grad_req
    array._tape = (_leaf(array), 0) if grad_req != "null" else None


def mark_variables(variables, gradients, grad_reqs="write"):
    """Attach given gradient buffers to variables (MXNet's ``mark_variables``)."""
    if not isinstance(grad_reqs, (list, tuple)):
        grad_reqs = [grad_reqs] * len(variables)
    for v, g, r in zip(variables, gradients, grad_reqs):
        v._grad = g
        v._grad_req = r
        v._tape = (_leaf(v), 0) if r != "null" else None


def _record(op, attrs, inputs, outputs):
    if not getattr(_state, "recording", False):
        return
    if not any(x._tape is not None for x in inputs):
        return
    for o in outputs:
        if o._tape is not None or o._grad is not None:
            if any(o is x for x in inputs) or o._grad is not None:
                raise DeepkitError(
                    f"{op.name}: in-place update of an array that autograd is recording; "
                    "write 'x = x + y' instead of 'x += y' inside record()")
    entries = [x._tape if x._tape is not None else (_leaf(x), 0) for x in inputs]
    node = Node(op, f"{op.name}{_counter[0]}", attrs, entries)
    _counter[0] += 1
    node.value = list(outputs)
    for i, o in enumerate(outputs):
        o._tape = (node, i)


# -- differentiation -------------------------------------------------------------

def _evaluate(grad_entries, retain_graph, create_graph, train):
    """Compute gradient entries imperatively from the recorded values."""
    from .ndarray.ndarray import invoke  # noqa: PLC0415
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
    from . import ndarray as nd  # noqa: PLC0415
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
    from . import ndarray as nd  # noqa: PLC0415
    out = [v if v is not None else nd.zeros(x.shape, ctx=x.ctx, dtype=x.dtype)
           for v, x in zip(values, variables)]
    return out[0] if single else out
