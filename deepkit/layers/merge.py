"""Merge layers: combine a list of tensors into one.

``Add()([a, b])``, ``Concatenate(axis=1)([a, b, c])``, ``Dot(axes=1)([a, b])``.
They are called on a list of tensors (two or more; Subtract and Dot take
exactly two) and have no parameters. Shapes are checked when the layer is
called, with errors that name the layer and every input shape.

The elementwise merges (Add, Subtract, Multiply, Average, Maximum, Minimum)
need inputs of one rank whose sizes agree on each axis or are 1 (numpy
broadcasting, as Keras allows).
"""
import functools

import numpy as np

from deepkit_engine import symbol as sym

from .base import Layer

__all__ = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
           "Dot"]


def _fmt(shapes):
    return ", ".join(str(tuple(s)) for s in shapes)


class _Merge(Layer):
    """Base of the merge layers: validates the list of input shapes on every call."""

    #: Exact number of inputs, or None for two or more.
    num_inputs = None

    def build(self, input_shape):
        # __call__ prefixes build errors with the layer's class, name and shapes
        self._validate(input_shape)

    def _check_input_shape(self, input_shape):
        # merge layers have no weights: a shared one may see new shapes on each call
        try:
            self._validate(input_shape)
        except ValueError as err:
            raise ValueError(f"{type(self).__name__} '{self.name}' cannot be called on input "
                             f"shapes {input_shape}: {err}") from None

    def _validate(self, input_shape):
        """Raise ``ValueError`` for a bad list of input shapes; returns the shapes."""
        cls = type(self).__name__
        if not isinstance(input_shape, list):
            raise ValueError(f"a merge layer must be called on a list of tensors, e.g. "
                             f"{cls}()([a, b]); got a single tensor of shape {input_shape}")
        n = len(input_shape)
        if self.num_inputs is not None and n != self.num_inputs:
            raise ValueError(f"{cls} needs exactly {self.num_inputs} inputs, got {n} "
                             f"(shapes {_fmt(input_shape)})")
        if n < 2:
            raise ValueError(f"{cls} needs at least 2 inputs, got {n} (shapes "
                             f"{_fmt(input_shape)})")
        ranks = {len(s) for s in input_shape}
        if len(ranks) != 1:
            raise ValueError(f"inputs must have the same rank, got shapes {_fmt(input_shape)}")
        self._check_shapes([tuple(s) for s in input_shape])
        return input_shape

    def _check_shapes(self, shapes):
        self._broadcast(shapes)

    @staticmethod
    def _broadcast(shapes):
        out = [None]
        for axis in range(1, len(shapes[0])):
            sizes = {s[axis] for s in shapes} - {None, 1}
            if len(sizes) > 1:
                raise ValueError(f"inputs must have the same shape (or size 1 on an axis, to "
                                 f"broadcast), but axis {axis} differs: shapes {_fmt(shapes)}")
            if sizes:
                out.append(sizes.pop())
            elif any(s[axis] is None for s in shapes):
                out.append(None)
            else:
                out.append(1)
        return tuple(out)

    def compute_output_shape(self, input_shape):
        return self._broadcast([tuple(s) for s in input_shape])

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(f"{type(self).__name__} '{self.name}': a merge layer must be "
                             f"called on a list of tensors")
        return self._merge(list(inputs))

    def _merge(self, inputs):
        raise NotImplementedError

    def _chain(self, op, inputs):
        """``op(op(a, b), c) ...`` with the last node named after the layer."""
        head = functools.reduce(op, inputs[:-1])
        return op(head, inputs[-1], name=self.name)


class Add(_Merge):
    """Elementwise sum of the inputs."""

    def _merge(self, inputs):
        return self._chain(sym.add, inputs)


class Subtract(_Merge):
    """``inputs[0] - inputs[1]`` (exactly two inputs)."""

    num_inputs = 2

    def _merge(self, inputs):
        return sym.subtract(inputs[0], inputs[1], name=self.name)


class Multiply(_Merge):
    """Elementwise product of the inputs."""

    def _merge(self, inputs):
        return self._chain(sym.multiply, inputs)


class Average(_Merge):
    """Elementwise mean of the inputs."""

    def _merge(self, inputs):
        total = functools.reduce(sym.add, inputs)
        return sym.multiply(total, 1.0 / len(inputs), name=self.name)


class Maximum(_Merge):
    """Elementwise maximum of the inputs."""

    def _merge(self, inputs):
        return self._chain(sym.maximum, inputs)


class Minimum(_Merge):
    """Elementwise minimum of the inputs."""

    def _merge(self, inputs):
        return self._chain(sym.minimum, inputs)


def _check_axis(value, what):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise ValueError(f"{what}. Received: {value!r}")
    return int(value)


class Concatenate(_Merge):
    """Joins the inputs along ``axis``; every other axis must agree.

    Args:
        axis: The axis to join along, counted with the batch axis as 0;
            negative counts from the end. The default is Keras's -1, the last
            axis: features of ``(batch, features)`` inputs, but the *width* of
            NCHW images; to stack feature maps along channels (deepkit's
            default ``channels_first`` layout), pass ``axis=1``.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = _check_axis(axis, "Concatenate: 'axis' must be an int")

    def _norm_axis(self, ndim):
        if not -ndim <= self.axis < ndim or self.axis % ndim == 0:
            raise ValueError(f"axis {self.axis} must be a non-batch axis of the inputs (rank "
                             f"{ndim})")
        return self.axis % ndim

    def _check_shapes(self, shapes):
        axis = self._norm_axis(len(shapes[0]))
        for i in range(1, len(shapes[0])):
            if i == axis:
                continue
            sizes = {s[i] for s in shapes} - {None}
            if len(sizes) > 1:
                raise ValueError(f"inputs must have the same size on every axis but the "
                                 f"concatenation axis {axis}, but axis {i} differs: shapes "
                                 f"{_fmt(shapes)}")

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        axis = self._norm_axis(len(shapes[0]))
        out = list(shapes[0])
        for i in range(1, len(out)):
            if i == axis:
                sizes = [s[i] for s in shapes]
                out[i] = None if None in sizes else sum(sizes)
            else:
                out[i] = next((s[i] for s in shapes if s[i] is not None), None)
        return tuple(out)

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(f"Concatenate '{self.name}': a merge layer must be called on a "
                             f"list of tensors")
        return sym.concat(*inputs, dim=self.axis, name=self.name)

    def get_config(self):
        config = super().get_config()
        config["axis"] = self.axis
        return config


class Dot(_Merge):
    """Batched dot product of two tensors along ``axes`` (per sample).

    For ``(batch, n)`` inputs and ``axes=1`` the result is ``(batch, 1)``: the
    dot product of each pair of samples. For ``(batch, m, k)`` and ``(batch,
    k, n)`` and ``axes=(2, 1)`` it is the batched matrix product ``(batch, m,
    n)``. The output shape is the first input's shape without its axis, then
    the second's without the batch axis and its axis (Keras's ``batch_dot``);
    a result with only the batch axis left gets a trailing axis of size 1.

    Args:
        axes: An int (the same axis of both inputs) or a pair of ints, counted
            with the batch axis as 0 (negative counts from the end); the
            batch axis cannot be contracted.
        normalize: Whether to L2-normalise both inputs along their axes first,
            which makes the result the cosine similarity.

    Input shapes: two tensors of rank 2 or 3 with equal sizes along the axes.
    """

    num_inputs = 2

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        what = "Dot: 'axes' must be an int or a pair of ints"
        if isinstance(axes, (list, tuple)):
            if len(axes) != 2:
                raise ValueError(f"{what}. Received: axes={axes!r}")
            axes = tuple(_check_axis(a, f"{what}. Received: axes={axes!r}; item") for a in axes)
        else:
            axes = _check_axis(axes, f"{what}")
        self.axes = axes
        self.normalize = bool(normalize)

    def _pair(self, shapes):
        axes = self.axes if isinstance(self.axes, tuple) else (self.axes, self.axes)
        out = []
        for shape, a in zip(shapes, axes):
            ndim = len(shape)
            if not -ndim <= a < ndim or a % ndim == 0:
                raise ValueError(f"axes {self.axes} must name a non-batch axis of each input, "
                                 f"got shapes {_fmt(shapes)}")
            out.append(a % ndim)
        return out

    def _validate(self, input_shape):
        shapes = input_shape
        if isinstance(shapes, list) and len(shapes) == 2:
            bad = [s for s in shapes if len(s) not in (2, 3)]
            if bad:
                raise ValueError(f"Dot supports inputs of rank 2 or 3, got shapes "
                                 f"{_fmt(shapes)}")
            a1, a2 = self._pair(shapes)
            d1, d2 = shapes[0][a1], shapes[1][a2]
            if d1 is not None and d2 is not None and d1 != d2:
                raise ValueError(f"the dot product axes {self.axes} have different sizes "
                                 f"{d1} and {d2}: shapes {_fmt(shapes)}")
            return shapes
        return super()._validate(input_shape)

    def build(self, input_shape):
        self._validate(input_shape)
        self._shapes = [tuple(s) for s in input_shape]

    def _check_input_shape(self, input_shape):
        super()._check_input_shape(input_shape)
        ranks = [len(s) for s in input_shape]
        if ranks != [len(s) for s in self._shapes]:
            raise ValueError(f"Dot '{self.name}' was built for inputs of shapes "
                             f"{_fmt(self._shapes)}; a shared Dot needs inputs of the same "
                             f"ranks, got shapes {_fmt(input_shape)}")

    def compute_output_shape(self, input_shape):
        s1, s2 = (tuple(s) for s in input_shape)
        a1, a2 = self._pair([s1, s2])
        out = (None,) + tuple(d for i, d in enumerate(s1) if i not in (0, a1)) \
            + tuple(d for i, d in enumerate(s2) if i not in (0, a2))
        return out if len(out) > 1 else (None, 1)

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(f"Dot '{self.name}' must be called on a list of 2 tensors")
        x, y = inputs
        s1, s2 = self._shapes
        a1, a2 = self._pair([s1, s2])
        if self.normalize:
            x = x * sym.rsqrt(sym.maximum(sym.sum(sym.square(x), axis=a1, keepdims=True),
                                          1e-12))
            y = y * sym.rsqrt(sym.maximum(sym.sum(sym.square(y), axis=a2, keepdims=True),
                                          1e-12))
        if len(s1) == 2 and len(s2) == 2:
            return sym.sum(x * y, axis=1, keepdims=True, name=self.name)
        # lift a rank-2 input to rank 3, contract with batch_dot, drop the added axis
        lifted = len(s1) == 2 or len(s2) == 2
        if len(s1) == 2:
            x, a1 = sym.expand_dims(x, axis=1), 2
        if len(s2) == 2:
            y, a2 = sym.expand_dims(y, axis=2), 1
        if not lifted:
            return sym.batch_dot(x, y, transpose_a=a1 == 1, transpose_b=a2 == 2, name=self.name)
        out = sym.batch_dot(x, y, transpose_a=a1 == 1, transpose_b=a2 == 2)
        return sym.reshape(out, shape=self._out_shape(s1, s2), name=self.name)

    def _out_shape(self, s1, s2):
        shape = self.compute_output_shape([s1, s2])
        return (0,) + tuple(shape[1:])

    def get_config(self):
        config = super().get_config()
        config.update(axes=list(self.axes) if isinstance(self.axes, tuple) else self.axes,
                      normalize=self.normalize)
        return config
