"""The autograd tape: recording and training flags, marked variables, and the
recorder that the NDArray dispatch calls.

Inside ``autograd.record()`` every op called through ``nd`` on arrays that need
gradients adds a node to a tape: the same graph IR that symbols use. This
module only records (it knows arrays by their ``_tape``/``_grad`` slots, not
their class), so it sits below the NDArray layer; differentiating the tape is
:mod:`deepkit_engine.autograd`'s job.
"""
import threading

from .base import DeepkitError
from .graph.node import Node

__all__ = ["is_training", "is_recording", "set_training", "set_recording", "leaf",
           "mark_variables", "record", "active"]

_state = threading.local()

#: True while any thread records: the dispatch then calls :func:`record`.
active = False

_recording_threads = set()
_threads_lock = threading.Lock()
_counter = [0]


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
    """Start or stop recording on this thread; returns the previous value."""
    global active
    old = is_recording()
    _state.recording = bool(flag)
    with _threads_lock:
        if flag:
            _recording_threads.add(threading.get_ident())
        else:
            _recording_threads.discard(threading.get_ident())
        active = bool(_recording_threads)
    return old


def leaf(array, name=None):
    """A variable node holding ``array`` as its value."""
    node = Node(None, name or f"_leaf{_counter[0]}")
    _counter[0] += 1
    node.value = [array]
    return node


def mark_variables(variables, gradients, grad_reqs="write"):
    """Attach given gradient buffers to variables (MXNet's ``mark_variables``)."""
    if not isinstance(grad_reqs, (list, tuple)):
        grad_reqs = [grad_reqs] * len(variables)
    for v, g, r in zip(variables, gradients, grad_reqs):
        v._grad = g
        v._grad_req = r
        v._tape = (leaf(v), 0) if r != "null" else None


def record(op, attrs, inputs, outputs):
    """Add ``op`` applied to ``inputs`` to the tape (when this thread records)."""
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
    entries = [x._tape if x._tape is not None else (leaf(x), 0) for x in inputs]
    node = Node(op, f"{op.name}{_counter[0]}", attrs, entries)
    _counter[0] += 1
    node.value = list(outputs)
    for i, o in enumerate(outputs):
        o._tape = (node, i)
