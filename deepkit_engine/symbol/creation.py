"""MXNet 1.x's symbol functions that are not one op call of the same name:
``zeros``, ``ones``, ``full``, ``arange``, ``eye`` (nodes of the init ops) and ``split_v2``."""
import numbers

from ..ops.registry import get_op
from .symbol import Symbol, make_function

__all__ = ["zeros", "ones", "full", "arange", "eye", "split_v2"]

_OPS = {}


def _op(name):
    function = _OPS.get(name)
    if function is None:
        function = _OPS[name] = make_function(get_op(name), name)
    return function


def _shape(shape):
    return (int(shape),) if isinstance(shape, numbers.Integral) else tuple(shape)


def zeros(shape, dtype=None, name=None, **kwargs):
    """A symbol of zeros of ``shape``.

    As in MXNet 1.x, a 0 in ``shape`` is a size that shape inference takes from
    the ops the array feeds (``zeros(shape=(1, 0, 64))`` as an RNN's initial
    state gets the data's batch size). ``dtype`` None is float32, MXNet's
    default, unless the ops the array feeds decide another (an initial state
    of a network bound in float64).
    """
    return _op("_zeros")(shape=_shape(shape), dtype=dtype, name=name, **kwargs)


def ones(shape, dtype=None, name=None, **kwargs):
    """A symbol of ones of ``shape`` (unknown sizes and dtype as for :func:`zeros`)."""
    return _op("_ones")(shape=_shape(shape), dtype=dtype, name=name, **kwargs)


def full(shape, val, dtype=None, name=None, **kwargs):
    """A symbol of ``shape`` filled with ``val`` (unknown sizes and dtype as for :func:`zeros`)."""
    return _op("_full")(shape=_shape(shape), value=val, dtype=dtype, name=name, **kwargs)


def arange(start, stop=None, step=1.0, repeat=1, infer_range=False, name=None, dtype=None,
           **kwargs):
    """Evenly spaced values in [start, stop), each repeated ``repeat`` times.

    ``infer_range`` (the length from the graph) is not supported; give ``stop``.
    """
    if infer_range:
        raise ValueError("sym.arange: infer_range=True is not supported; give stop")
    return _op("_arange")(start=start, stop=stop, step=step, repeat=repeat,
                          dtype=dtype or "float32", name=name, **kwargs)


def eye(N, M=0, k=0, dtype=None, name=None, **kwargs):
    """A 2-D symbol with ones on the ``k``-th diagonal."""
    return _op("_eye")(N=N, M=M, k=k, dtype=dtype or "float32", name=name, **kwargs)


def split_v2(ary, indices_or_sections, axis=0, squeeze_axis=False, name=None):
    """Split at the given indices, or into a number of equal sections (``np.split`` style)."""
    if isinstance(indices_or_sections, int):
        params = {"sections": indices_or_sections}
    elif isinstance(indices_or_sections, (tuple, list)):
        params = {"indices": (0,) + tuple(int(i) for i in indices_or_sections)}
    else:
        raise TypeError(f"split_v2: indices_or_sections must be an int or a tuple, got "
                        f"{type(indices_or_sections).__name__}")
    return _op("_split_v2")(ary, axis=axis, squeeze_axis=squeeze_axis, name=name, **params)


def _split_v2_method(self, indices_or_sections, axis=0, squeeze_axis=False, name=None):
    return split_v2(self, indices_or_sections, axis, squeeze_axis, name)


Symbol.split_v2 = _split_v2_method
