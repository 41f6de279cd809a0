"""Ops that make arrays from parameters alone: ``_zeros``, ``_ones``, ``_full``, ``_arange``,
``_eye`` (MXNet's init ops, behind ``sym.zeros`` ... ``sym.eye``).

They have no inputs, so nothing flows back through them (``differentiable``
is False); their values are fixed by the parameters, unlike the random ops.
"""
import numpy as np

from ..base import ParamError
from .registry import DType, OpDef, Param, Shape, register, write_result

_F32 = "float32"


def _fixed_type(attrs, in_dtypes):
    return [], [np.dtype(attrs.dtype)]


def _fill_type(attrs, in_dtypes):
    """The ``dtype`` param; None leaves it to graph inference (the ops the array feeds)."""
    return [], [None if attrs.dtype is None else np.dtype(attrs.dtype)]


_fill_type.fallback_dtype = _F32  # None, and nothing in the graph decides: MXNet's default


def _filled_shape(attrs, in_shapes):
    return [], [tuple(attrs.shape)]


# In a graph, a 0 in ``shape`` is an unknown size (MXNet 1.x): shape inference
# takes it from the ops the array feeds (``zeros(shape=(1, 0, 64))`` as an RNN's
# initial state gets the batch size of the RNN's data).
_filled_shape.zero_is_unknown = True


def _filled(value_of):
    def forward(xp, attrs, inputs, outputs, req):
        if req[0] != "null":
            write_result(xp, outputs[0], value_of(attrs), req[0])
    return forward


def _shape_params():
    return {"shape": Param(Shape, (), "Shape of the output.", min=0),
            "dtype": Param(DType, None, "Output dtype; None: in a graph, that of the ops "
                           "the array feeds, else float32 (MXNet's default).")}


for _name, _value, _doc in (("_zeros", lambda a: 0, "An array of zeros."),
                            ("_ones", lambda a: 1, "An array of ones.")):
    register(OpDef(_name, _filled(_value), inputs=(), params=_shape_params(),
                   infer_shape=_filled_shape, infer_type=_fill_type, differentiable=False,
                   doc=_doc))

register(OpDef("_full", _filled(lambda a: a.value), inputs=(),
               params={**_shape_params(), "value": Param(float, 0.0, "The fill value.")},
               infer_shape=_filled_shape, infer_type=_fill_type, differentiable=False,
               doc="An array filled with `value`."))


def _arange_values(attrs):
    start, stop = attrs.start, attrs.stop
    if stop is None:
        start, stop = 0.0, start
    values = np.arange(start, stop, attrs.step, dtype=np.float64)
    return np.repeat(values, attrs.repeat) if attrs.repeat != 1 else values


def _arange_shape(attrs, in_shapes):
    if attrs.step == 0:
        raise ParamError("_arange: param step=0.0 must not be 0", op="_arange", param="step",
                         value=attrs.step)
    return [], [(_arange_values(attrs).size,)]


register(OpDef("_arange", _filled(lambda a: _arange_values(a)), inputs=(),
               params={"start": Param(float, 0.0, "First value (the end when `stop` is None)."),
                       "stop": Param(float, None, "End (exclusive)."),
                       "step": Param(float, 1.0, "Spacing."),
                       "repeat": Param(int, 1, "Times each value repeats.", min=1),
                       "dtype": Param(DType, _F32, "Output dtype.")},
               infer_shape=_arange_shape, infer_type=_fixed_type, differentiable=False,
               doc="Evenly spaced values in [start, stop), each repeated `repeat` times."))


def _eye_shape(attrs, in_shapes):
    return [], [(attrs.N, attrs.M or attrs.N)]


register(OpDef("_eye", _filled(lambda a: np.eye(a.N, a.M or a.N, a.k)), inputs=(),
               params={"N": Param(int, 1, "Rows.", min=0),
                       "M": Param(int, 0, "Columns (0: N).", min=0),
                       "k": Param(int, 0, "The diagonal: 0 main, > 0 above, < 0 below."),
                       "dtype": Param(DType, _F32, "Output dtype.")},
               infer_shape=_eye_shape, infer_type=_fixed_type, differentiable=False,
               doc="A 2-D array with ones on the k-th diagonal and zeros elsewhere."))
