"""``autograd.Function``: an imperative operation with a gradient written by hand.

As MXNet's: subclass, write ``forward(*inputs)`` and ``backward(*out_grads)``
with NDArrays, keep what backward needs with ``save_for_backward``; call an
instance on NDArrays inside ``autograd.record()``::

    class Sigmoid(autograd.Function):
        def forward(self, x):
            y = 1 / (1 + nd.exp(-x))
            self.save_for_backward(y)
            return y

        def backward(self, dy):
            y, = self.saved_tensors
            return dy * y * (1 - y)

The call runs ``forward`` without recording and puts one node on the tape
whose gradient calls ``backward``; the rest of the graph is differentiated
as usual.
"""
import weakref

from .. import tape as _tape
from ..base import DeepkitError
from ..context import context_of_array
from ..ndarray.ndarray import NDArray
from ..ops.registry import OpDef, Param
from .host_code import ndarray_code, wrap

__all__ = ["Function"]


def _shapes_of_inputs(attrs, in_shapes):
    return in_shapes, list(in_shapes[:attrs.num_inputs])


def _refuse_forward(xp, attrs, inputs, outputs, req):
    raise DeepkitError("autograd.Function: its node only lives on the autograd tape; it cannot "
                       "be run again (call the Function instance instead)")


def _backward_kernel(xp, attrs, inputs, outputs, req):
    function = _live[attrs.key]
    ctx = context_of_array(inputs[0]) if inputs else None
    with ndarray_code():
        grads = function.backward(*wrap(inputs[attrs.num_inputs:], ctx))
        grads = list(grads) if isinstance(grads, (list, tuple)) else [grads]
        if len(grads) != len(outputs):
            raise DeepkitError(
                f"autograd.Function {type(function).__name__}: backward returned {len(grads)} "
                f"gradient(s) but forward took {len(outputs)} input(s)")
        for k, (g, out, r) in enumerate(zip(grads, outputs, req)):
            if g is None:  # no gradient for this input
                if r == "write":
                    out[...] = 0
                continue
            if isinstance(g, NDArray):
                g.wait_to_read()
                value = g._data
            else:
                value = g
            if tuple(getattr(value, "shape", ())) != tuple(out.shape):
                raise DeepkitError(
                    f"autograd.Function {type(function).__name__}: backward returned a gradient "
                    f"of shape {tuple(getattr(value, 'shape', ()))} for input {k} of shape "
                    f"{tuple(out.shape)}")
            if r == "add":
                out += value
            elif r != "null":
                out[...] = value


def _function_gradient(F, node, ograds):
    n = node.attrs.num_inputs
    grads = F.call(_BACKWARD, _BACKWARD.name, tuple(node.inputs[:n]) + tuple(ograds),
                   dict(node.attrs))
    return list(grads) + [None] * (len(node.inputs) - n)


_PARAMS = {"key": Param(int, doc="Which Function instance."),
           "num_inputs": Param(int, doc="How many inputs forward took."),
           "num_outputs": Param(int, doc="How many outputs forward returned.")}

_BACKWARD = OpDef(
    "_backward_autograd_Function", _backward_kernel,
    inputs=lambda a: tuple(f"like{i}" for i in range(a.num_inputs)) +
    tuple(f"ograd{i}" for i in range(a.num_outputs)),
    outputs=lambda a: tuple(f"grad{i}" for i in range(a.num_inputs)), params=_PARAMS,
    infer_shape=_shapes_of_inputs, infer_type=_shapes_of_inputs, partial_infer=True,
    differentiable=False, doc="The gradient of an autograd.Function: calls its backward().")

_FORWARD = OpDef(
    "_autograd_Function", _refuse_forward,
    inputs=lambda a: tuple(f"data{i}" for i in range(a.num_inputs)),
    outputs=lambda a: tuple(f"output{i}" for i in range(a.num_outputs)), params=_PARAMS,
    infer_shape=_shapes_of_inputs, infer_type=_shapes_of_inputs, partial_infer=True,
    gradient=_function_gradient, doc="One call of an autograd.Function, on the tape.")

_live = {}
_next_key = [0]


def _shape_of(x):
    """A stand-in for ``x`` that has its shape, dtype and device but holds no memory.

    The gradient node reads a forward input only for the shape of its
    gradient; an input that is not on the tape (a constant) would otherwise
    stay alive until backward through that read. What ``backward`` needs is
    what ``save_for_backward`` kept.
    """
    xp = x.ctx.xp
    return NDArray(xp.broadcast_to(xp.zeros((), x.dtype), x.shape), x.ctx)


class Function:
    """Customize differentiation in autograd (MXNet's ``autograd.Function``).

    Subclasses define ``forward(*inputs)`` returning an NDArray or a tuple of
    them and ``backward(*output_gradients)`` returning one gradient per
    input. One instance is called once.
    """

    def __init__(self):
        self._used = False
        self.saved_tensors = ()

    def save_for_backward(self, *args):
        """Keep arrays for ``backward`` (read them from ``self.saved_tensors``)."""
        self.saved_tensors = args

    def forward(self, *inputs):
        """The computation, with NDArrays. Override."""
        raise NotImplementedError(f"{type(self).__name__}.forward is not defined")

    def backward(self, *output_grads):
        """One gradient per forward input, with NDArrays. Override."""
        raise NotImplementedError(f"{type(self).__name__}.backward is not defined")

    def __call__(self, *inputs):
        if self._used:
            raise DeepkitError(f"autograd.Function {type(self).__name__}: each instance can be "
                               "called only once; make a new one per call")
        self._used = True
        for i, x in enumerate(inputs):
            if not isinstance(x, NDArray):
                raise TypeError(f"autograd.Function {type(self).__name__}: input {i} must be an "
                                f"NDArray, got {type(x).__name__}")
        recording = _tape.set_recording(False)
        try:
            outputs = self.forward(*inputs)
        finally:
            _tape.set_recording(recording)
        single = isinstance(outputs, NDArray)
        outs = [outputs] if single else list(outputs)
        if not all(isinstance(o, NDArray) for o in outs):
            raise TypeError(f"autograd.Function {type(self).__name__}: forward must return "
                            "NDArrays")
        if not recording or not any(x._tape is not None for x in inputs):
            return outputs
        key = _next_key[0]
        _next_key[0] += 1
        _live[key] = self
        # the tape node keeps the outputs alive; the instance lives as long as they do
        weakref.finalize(outs[0], _live.pop, key, None)
        attrs = _FORWARD.parse_attrs({"key": key, "num_inputs": len(inputs),
                                      "num_outputs": len(outs)})
        _tape.record(_FORWARD, attrs, [x if x._tape is not None else _shape_of(x)
                                       for x in inputs], outs)
        return outputs
