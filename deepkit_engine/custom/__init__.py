"""Operators written in Python, with their own gradients.

* :func:`define_op`: declare an op over raw ``xp`` arrays (numpy or cupy);
  it becomes ``nd.<name>``/``sym.<name>`` and works in executors, autograd,
  JSON and ``check_numeric_gradient`` like a built-in op.
* :class:`Function`: an imperative custom gradient for autograd (MXNet's
  ``autograd.Function``).
* :func:`custom_gradient`: a function (of Symbols or NDArrays) whose gradient
  is given by hand (Keras's ``ops.custom_gradient``).
* :func:`register_prop` and the ``Custom`` op: operators described by a
  "prop" object (MXNet's ``CustomOpProp`` protocol), selected by ``op_type``.
"""
from .function import Function
from .gradient_override import custom_gradient, registered_gradients, unregister_gradient
from .prop_op import register_prop, registered_props, unregister_prop
from .python_op import PythonOpError, define_op, remove_op

__all__ = ["define_op", "remove_op", "PythonOpError", "Function", "custom_gradient",
           "registered_gradients", "unregister_gradient", "register_prop", "unregister_prop",
           "registered_props"]
