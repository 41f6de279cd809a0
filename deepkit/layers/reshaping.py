"""Spatial reshaping layers for images: UpSampling2D, ZeroPadding2D, Cropping2D.

None of them has parameters. Data is ``channels_first`` (NCHW) by default;
``data_format='channels_last'`` (NHWC) is accepted by each.
"""
from deepkit_engine import symbol as sym

from .base import Layer
from .convolutional import (is_int, check_input_rank, from_channels_first, split_shape,
                            standardize_data_format, standardize_tuple, to_channels_first)

__all__ = ["UpSampling2D", "ZeroPadding2D", "Cropping2D"]


def _standardize_pairs(value, name, owner):
    """An int, 2 ints or 2 ``(before, after)`` pairs as ``((top, bottom), (left, right))``."""
    def bad():
        return ValueError(f"{owner}: '{name}' must be an int, a tuple of 2 non-negative ints or "
                          f"a tuple of 2 (before, after) tuples of non-negative ints, as "
                          f"((top, bottom), (left, right)). Received: {name}={value!r}")
    if is_int(value):
        if value < 0:
            raise bad()
        return ((int(value),) * 2,) * 2
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise bad()
    pairs = []
    for item in value:
        if is_int(item):
            item = (item, item)
        if (not isinstance(item, (tuple, list)) or len(item) != 2
                or not all(is_int(v) and v >= 0 for v in item)):
            raise bad()
        pairs.append((int(item[0]), int(item[1])))
    return tuple(pairs)


def _spatial_axes(data_format):
    return (2, 3) if data_format == "channels_first" else (1, 2)


class UpSampling2D(Layer):
    """Repeats rows and columns (``'nearest'``) or interpolates them (``'bilinear'``).

    ``'bilinear'`` matches Keras (``image.resize`` with half-pixel centers, edges
    clamped): output row ``i`` samples the input at ``(i + 0.5) / size - 0.5``.
    It is built from slices and weighted sums of the input, so it has no
    weights (the engine's ``UpSampling(sample_type='bilinear')`` is MXNet's
    learnable deconvolution instead).

    Args:
        size: Upsampling factors for rows and columns: an int or a tuple of 2 ints.
        data_format: ``'channels_first'`` (the default) or ``'channels_last'``.
        interpolation: ``'nearest'`` or ``'bilinear'``.

    Input shape: ``(batch, channels, rows, cols)`` (or ``(batch, rows, cols, channels)``).
    Output shape: ``(batch, channels, rows * size[0], cols * size[1])`` (or channels last).
    """

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.size = standardize_tuple(size, 2, "size", cls)
        self.data_format = standardize_data_format(data_format, cls)
        if interpolation not in ("nearest", "bilinear"):
            raise ValueError(f"{cls}: 'interpolation' must be 'nearest' or 'bilinear'. "
                             f"Received: interpolation={interpolation!r}")
        self.interpolation = interpolation

    def build(self, input_shape):
        check_input_rank(self, input_shape, 2)
        self._lengths = split_shape(input_shape, self.data_format)[1]

    def call(self, inputs):
        x = inputs
        for axis, scale, length in zip(_spatial_axes(self.data_format), self.size,
                                       self._lengths):
            if scale == 1:
                continue
            tag = f"{self.name}_axis{axis}"
            if self.interpolation == "nearest":
                x = sym.repeat(x, repeats=scale, axis=axis, name=tag)
            else:
                x = self._bilinear(x, axis, scale, length, tag)
        return x

    @staticmethod
    def _bilinear(x, axis, scale, length, tag):
        """Linear interpolation by ``scale`` along ``axis`` (of ``length`` entries)."""
        if length > 1:
            first = sym.slice_axis(x, axis=axis, begin=0, end=1, name=f"{tag}_first")
            last = sym.slice_axis(x, axis=axis, begin=length - 1, end=length,
                                  name=f"{tag}_last")
            head = sym.slice_axis(x, axis=axis, begin=0, end=length - 1, name=f"{tag}_head")
            tail = sym.slice_axis(x, axis=axis, begin=1, end=length, name=f"{tag}_tail")
            shifted = {-1: sym.concat(first, head, dim=axis, name=f"{tag}_prev"), 0: x,
                       1: sym.concat(tail, last, dim=axis, name=f"{tag}_next")}
        else:
            shifted = {-1: x, 0: x, 1: x}
        phases = []
        for r in range(scale):
            coord = (r + 0.5) / scale - 0.5  # in (-0.5, 0.5): offset from the source cell
            low = -1 if coord < 0 else 0
            frac = coord - low
            if frac == 0:
                phases.append(shifted[low])
            else:
                phases.append(shifted[low] * (1.0 - frac) + shifted[low + 1] * frac)
        stacked = sym.stack(*phases, axis=axis + 1, name=f"{tag}_stack")
        ndim = 4
        shape = (0,) * axis + (-3,) + (0,) * (ndim - 1 - axis)
        return sym.reshape(stacked, shape=shape, name=tag)

    def get_config(self):
        config = super().get_config()
        config.update(size=list(self.size), data_format=self.data_format,
                      interpolation=self.interpolation)
        return config


class ZeroPadding2D(Layer):
    """Adds rows and columns of zeros around each image.

    Args:
        padding: An int (the same on all four sides), a tuple of 2 ints
            (``(rows, cols)``: symmetric) or ``((top, bottom), (left, right))``.
        data_format: ``'channels_first'`` (the default) or ``'channels_last'``.

    Input shape: ``(batch, channels, rows, cols)`` (or ``(batch, rows, cols, channels)``).
    Output shape: ``(batch, channels, top + rows + bottom, left + cols + right)``.
    """

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.padding = _standardize_pairs(padding, "padding", cls)
        self.data_format = standardize_data_format(data_format, cls)

    def build(self, input_shape):
        check_input_rank(self, input_shape, 2)

    def call(self, inputs):
        x = to_channels_first(inputs, 2, self.data_format, f"{self.name}_to_first")
        width = (0, 0, 0, 0) + self.padding[0] + self.padding[1]
        x = sym.Pad(x, mode="constant", constant_value=0.0, pad_width=width, name=self.name)
        return from_channels_first(x, 2, self.data_format, f"{self.name}_to_last")

    def get_config(self):
        config = super().get_config()
        config.update(padding=[list(p) for p in self.padding], data_format=self.data_format)
        return config


class Cropping2D(Layer):
    """Removes rows and columns at the borders of each image.

    Args:
        cropping: An int (the same on all four sides), a tuple of 2 ints
            (``(rows, cols)``: symmetric) or ``((top, bottom), (left, right))``.
        data_format: ``'channels_first'`` (the default) or ``'channels_last'``.

    Input shape: ``(batch, channels, rows, cols)`` (or ``(batch, rows, cols, channels)``).
    Output shape: ``(batch, channels, rows - top - bottom, cols - left - right)``.
    """

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.cropping = _standardize_pairs(cropping, "cropping", cls)
        self.data_format = standardize_data_format(data_format, cls)

    def build(self, input_shape):
        check_input_rank(self, input_shape, 2)
        _, spatial = split_shape(input_shape, self.data_format)
        if any(a + b >= n for (a, b), n in zip(self.cropping, spatial)):
            raise ValueError(f"{type(self).__name__} '{self.name}': cropping={self.cropping} "
                             f"leaves nothing of the input's spatial size {spatial}; each "
                             "axis must keep at least one row/column")

    def call(self, inputs):
        lead = (None,) if self.data_format == "channels_first" else ()
        (top, bottom), (left, right) = self.cropping
        begin = (None,) + lead + (top, left)
        end = (None,) + lead + (-bottom if bottom else None, -right if right else None)
        return sym.slice(inputs, begin=begin, end=end, name=self.name)

    def get_config(self):
        config = super().get_config()
        config.update(cropping=[list(p) for p in self.cropping], data_format=self.data_format)
        return config
