"""Training/prediction mode and recording state for imperative code.

``train_mode()`` and ``predict_mode()`` decide how mode-dependent ops
(Dropout, BatchNorm) behave when called through ``nd``; ops that declare the
``is_train`` resource read :func:`is_training` at the call.
"""
import contextlib
import threading

__all__ = ["is_training", "is_recording", "train_mode", "predict_mode", "set_training"]

_state = threading.local()


def is_training():
    """True inside ``train_mode()`` (or ``record()``, which implies training)."""
    return getattr(_state, "training", False)


def is_recording():
    """True while operations are being recorded for differentiation."""
    return getattr(_state, "recording", False)


def set_training(flag):
    """Set the training flag; returns the previous value."""
    old = is_training()
    _state.training = bool(flag)
    return old


@contextlib.contextmanager
def _mode(training):
    old = set_training(training)
    try:
        yield
    finally:
        set_training(old)


def train_mode():
    """A ``with`` block in which mode-dependent ops behave as in training."""
    return _mode(True)


def predict_mode():
    """A ``with`` block in which mode-dependent ops behave as in inference."""
    return _mode(False)
