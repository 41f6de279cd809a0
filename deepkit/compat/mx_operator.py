"""MXNet's ``mx.operator``: operators written in Python, ``CustomOp`` and ``CustomOpProp``.

As in MXNet 1.x::

    class Softmax(mx.operator.CustomOp):
        def forward(self, is_train, req, in_data, out_data, aux):
            x = in_data[0].asnumpy()
            y = np.exp(x - x.max(axis=1, keepdims=True))
            self.assign(out_data[0], req[0], mx.nd.array(y / y.sum(axis=1, keepdims=True)))

        def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
            ...

    @mx.operator.register("softmax")
    class SoftmaxProp(mx.operator.CustomOpProp):
        def __init__(self):
            super().__init__(need_top_grad=False)
        ...

    net = mx.sym.Custom(data=fc, name="softmax", op_type="softmax")

The engine's ``Custom`` op (:mod:`deepkit_engine.custom`) runs them; this
module adds MXNet's base classes with their defaults.
"""
from deepkit_engine import nd
from deepkit_engine.custom import register_prop

__all__ = ["CustomOp", "CustomOpProp", "register", "Custom"]

Custom = nd.Custom


class CustomOp:
    """Base class of an operator's computation: override ``forward`` and ``backward``."""

    def forward(self, is_train, req, in_data, out_data, aux):
        """Compute ``out_data`` from ``in_data`` (lists of NDArrays); use :meth:`assign`.

        Args:
            is_train: Training mode.
            req: One write request per output: 'write', 'inplace', 'add' or 'null'.
            in_data: The inputs.
            out_data: The outputs to fill.
            aux: The auxiliary states (updated in place).
        """

    def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
        """Compute ``in_grad`` (one per argument) from the output gradients; use :meth:`assign`."""

    def assign(self, dst, req, src):
        """Store ``src`` into ``dst`` as ``req`` says ('write'/'inplace', 'add', 'null')."""
        if req == "null":
            return
        if req in ("write", "inplace"):
            dst[:] = src
        elif req == "add":
            dst[:] = dst + src
        else:
            raise ValueError(f"CustomOp.assign: req must be 'write', 'inplace', 'add' or "
                             f"'null', got {req!r}")


class CustomOpProp:
    """Base class of an operator's declaration (MXNet's defaults).

    Args:
        need_top_grad: Whether backward uses the output gradient (False for
            loss layers, which make their own).
    """

    def __init__(self, need_top_grad=True):
        self.need_top_grad_ = need_top_grad

    def list_arguments(self):
        """Input names (default ``['data']``)."""
        return ["data"]

    def list_outputs(self):
        """Output names (default ``['output']``)."""
        return ["output"]

    def list_auxiliary_states(self):
        """Auxiliary state names (default none)."""
        return []

    def infer_shape(self, in_shape):
        """``(argument shapes, output shapes, aux shapes)``; default: all like input 0."""
        return in_shape, (in_shape[0],) * len(self.list_outputs()), ()

    def infer_type(self, in_type):
        """``(argument types, output types, aux types)``; default: all like input 0."""
        return (in_type, [in_type[0]] * len(self.list_outputs()),
                [in_type[0]] * len(self.list_auxiliary_states()))

    def declare_backward_dependency(self, out_grad, in_data, out_data):
        """The ids backward reads (default: output grads if needed, inputs, outputs).

        Return fewer to save memory: what is not returned is freed after
        forward, and ``backward`` finds a stand-in at its place in
        ``out_grad``/``in_data``/``out_data`` that refuses any use (MXNet
        passes an empty array there). A sigmoid needs only
        ``out_grad + out_data``.
        """
        deps = list(out_grad) if self.need_top_grad_ else []
        return deps + list(in_data) + list(out_data)

    def create_operator(self, ctx, in_shapes, in_dtypes):
        """The :class:`CustomOp` that computes this op on ``ctx`` for these shapes."""
        return CustomOp()


def register(reg_name):
    """Class decorator: register a :class:`CustomOpProp` subclass as ``op_type=reg_name``.

    Raises:
        ValueError: ``reg_name`` is already registered.
    """
    def do_register(prop_cls):
        register_prop(reg_name, prop_cls)
        return prop_cls
    return do_register
