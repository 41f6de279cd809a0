"""MXNet 1.x's NDArray functions that are not single ops: ``concatenate``, ``moveaxis``,
``split_v2``; each composes registered ops."""
from ..ops.registry import get_op
from .functions import make_function
from .ndarray import NDArray

__all__ = ["concatenate", "moveaxis", "split_v2"]

_OPS = {}


def _op(name):
    function = _OPS.get(name)
    if function is None:
        function = _OPS[name] = make_function(get_op(name), name)
    return function


def concatenate(arrays, axis=0, always_copy=True):
    """Join ``arrays`` along ``axis`` (MXNet's ``nd.concatenate``).

    Args:
        arrays: A non-empty list of NDArrays with equal shapes except on ``axis``.
        axis: The axis to join along.
        always_copy: With one array and False, return it itself.
    """
    arrays = list(arrays)
    if not arrays:
        raise ValueError("concatenate: arrays is empty; give at least one NDArray")
    if len(arrays) == 1 and not always_copy:
        return arrays[0]
    return _op("concat")(*arrays, dim=axis)


def moveaxis(tensor, source, destination):
    """``tensor`` with axis ``source`` moved to position ``destination`` (as numpy's)."""
    ndim = tensor.ndim
    for name, value in (("source", source), ("destination", destination)):
        if not -ndim <= value < ndim:
            raise ValueError(f"moveaxis: {name}={value} is out of range for an array of "
                             f"shape {tensor.shape}")
    source, destination = source % ndim, destination % ndim
    order = [a for a in range(ndim) if a != source]
    order.insert(destination, source)
    return _op("transpose")(tensor, axes=tuple(order))


def split_v2(ary, indices_or_sections, axis=0, squeeze_axis=False):
    """Split at the given indices, or into a number of equal sections (``np.split`` style).

    Args:
        ary: The NDArray.
        indices_or_sections: An int (equal sections) or a tuple of split indices.
        axis: The axis to split along.
        squeeze_axis: Remove the axis from the parts (each must have size 1 there).

    Returns:
        A list of NDArrays (one array if there is a single part).
    """
    if isinstance(indices_or_sections, int):
        params = {"sections": indices_or_sections}
    elif isinstance(indices_or_sections, (tuple, list)):
        params = {"indices": (0,) + tuple(int(i) for i in indices_or_sections)}
    else:
        raise TypeError(f"split_v2: indices_or_sections must be an int or a tuple, got "
                        f"{type(indices_or_sections).__name__}")
    return _op("_split_v2")(ary, axis=axis, squeeze_axis=squeeze_axis, **params)


def _split_v2_method(self, indices_or_sections, axis=0, squeeze_axis=False):
    return split_v2(self, indices_or_sections, axis, squeeze_axis)


NDArray.split_v2 = _split_v2_method
