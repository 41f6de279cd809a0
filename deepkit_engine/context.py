"""Devices: :class:`Context`, :func:`cpu`, :func:`gpu`, and the current context.

A context names a device and gives its array module (``ctx.xp``): numpy for
the CPU, cupy for a GPU. cupy is imported only when a GPU context is used, so
the CPU path never pays for it and works without it.
"""
import threading

import numpy

from .base import ContextError

__all__ = ["Context", "cpu", "gpu", "num_gpus", "current_context", "cupy_available"]

_GPU_INSTALL_HINT = (
    "Install the GPU extra (pip install 'deepkit[gpu]', which brings cupy-cuda12x) "
    "on a machine with an NVIDIA GPU and CUDA 12, or use cpu()."
)

_cupy = None
_cupy_error = None
_cupy_tried = False


def _import_cupy():
    """Import cupy once; remember the failure so that errors can quote it."""
    global _cupy, _cupy_error, _cupy_tried
    if not _cupy_tried:
        _cupy_tried = True
        try:
            import cupy  # noqa: PLC0415 - deliberately lazy
            _cupy = cupy
        except Exception as err:  # ImportError, or CUDA libraries missing
            _cupy_error = err
    return _cupy


def cupy_available():
    """True when cupy imports and sees at least one CUDA device."""
    return num_gpus() > 0


def num_gpus():
    """Number of CUDA devices visible to cupy (0 when cupy is missing)."""
    cupy = _import_cupy()
    if cupy is None:
        return 0
    try:
        return cupy.cuda.runtime.getDeviceCount()
    except Exception:
        return 0


class Context:
    """A device: ``Context('cpu', 0)`` or ``Context('gpu', 1)``.

    Contexts compare by value, hash, and work as ``with`` blocks that set the
    default device for array creation inside the block.
    """

    __slots__ = ("device_type", "device_id", "_old")
    _local = threading.local()

    def __init__(self, device_type, device_id=0):
        if isinstance(device_type, Context):
            device_type, device_id = device_type.device_type, device_type.device_id
        if device_type not in ("cpu", "gpu", "cpu_pinned"):
            raise ContextError(
                f"Context: device_type must be 'cpu' or 'gpu', got {device_type!r}")
        if not isinstance(device_id, int) or device_id < 0:
            raise ContextError(
                f"Context: device_id must be a non-negative int, got {device_id!r}")
        self.device_type = device_type
        self.device_id = device_id
        self._old = None

    @property
    def is_gpu(self):
        return self.device_type == "gpu"

    @property
    def xp(self):
        """The array module of this device: numpy, or cupy for a GPU."""
        if self.device_type != "gpu":
            return numpy
        self.check_available()
        return _cupy

    def check_available(self):
        """Raise :class:`ContextError` with an install hint if this GPU is unusable."""
        if self.device_type != "gpu":
            return
        cupy = _import_cupy()
        if cupy is None:
            raise ContextError(
                f"{self} requested but cupy could not be imported ({_cupy_error}). "
                + _GPU_INSTALL_HINT)
        count = num_gpus()
        if self.device_id >= count:
            raise ContextError(
                f"{self} requested but only {count} CUDA device(s) are visible. "
                + _GPU_INSTALL_HINT)

    def device_scope(self):
        """A ``with`` block that makes this device current for cupy calls."""
        if self.device_type == "gpu":
            return _cupy.cuda.Device(self.device_id)
        return _NullScope()

    def __eq__(self, other):
        return (isinstance(other, Context) and self.device_type == other.device_type
                and self.device_id == other.device_id)

    def __hash__(self):
        return hash((self.device_type, self.device_id))

    def __repr__(self):
        return f"{self.device_type}({self.device_id})"

    def __enter__(self):
        self._old = current_context()
        Context._local.current = self
        return self

    def __exit__(self, *exc):
        Context._local.current = self._old
        return False


class _NullScope:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


_CPU0 = Context("cpu", 0)


def cpu(device_id=0):
    """The CPU context (numpy arrays)."""
    return _CPU0 if device_id == 0 else Context("cpu", device_id)


def gpu(device_id=0):
    """A GPU context (cupy arrays). Checked when first used, not here."""
    return Context("gpu", device_id)


def current_context():
    """The context set by the innermost ``with ctx:`` block, else ``cpu()``."""
    return getattr(Context._local, "current", None) or _CPU0


def context_of_array(array):
    """The context that owns a raw numpy or cupy array."""
    if isinstance(array, numpy.ndarray):
        return _CPU0
    device = getattr(array, "device", None)
    device_id = getattr(device, "id", None)
    if device_id is not None and _cupy is not None and isinstance(array, _cupy.ndarray):
        return Context("gpu", device_id)
    return _CPU0
