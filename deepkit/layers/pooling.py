"""Pooling layers: Max/AveragePooling1D/2D/3D and GlobalMax/GlobalAveragePooling1D/2D/3D.

Windowed pooling is the engine's ``Pooling`` op (node named after the layer);
global pooling is a ``max``/``mean`` reduction over the spatial axes, which
works in either data format without transposes. Data is ``channels_first``
by default; ``channels_last`` data is transposed around the engine op.

``padding='same'`` gives ``ceil(size / strides)`` outputs with the padding
split as Keras splits it (smaller half before), and padded cells never count:
max ignores them and average divides by the number of real cells in the
window, as Keras does. Where the split is even the engine pads (implicit
padding, ``count_include_pad=False``); where it is not, the missing cell is
added explicitly: by repeating the edge for max (harmless: every window that
holds the copy also holds the original), by zeros for average, whose window
sums are then divided by the number of real cells.
"""
from deepkit_engine import symbol as sym

from .base import Layer
from .convolutional import (standardize_padding, check_input_rank, from_channels_first,
                            padding_pairs, split_shape, standardize_data_format,
                            standardize_tuple, to_channels_first)

__all__ = ["MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D",
           "AveragePooling2D", "AveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
           "GlobalMaxPooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
           "GlobalAveragePooling3D"]


class _Pooling(Layer):
    """Windowed max or average pooling over ``rank`` spatial axes (not used directly).

    Args:
        pool_size: Window size: an int or a tuple of ``rank`` ints.
        strides: Step of the window: an int, a tuple of ``rank`` ints, or None
            (the default: ``pool_size``, non-overlapping windows).
        padding: ``'valid'`` (windows inside the input) or ``'same'``
            (``ceil(size / strides)`` outputs; padded cells are not counted).
        data_format: ``'channels_first'`` (the default) or ``'channels_last'``;
            None takes :func:`deepkit.backend.image_data_format`.
    """

    rank = None
    pool_type = None

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.pool_size = standardize_tuple(pool_size, self.rank, "pool_size", cls)
        self.strides = (self.pool_size if strides is None
                        else standardize_tuple(strides, self.rank, "strides", cls))
        self.padding = standardize_padding(padding, cls)
        self.data_format = standardize_data_format(data_format, cls)

    def build(self, input_shape):
        check_input_rank(self, input_shape, self.rank)
        _, spatial = split_shape(input_shape, self.data_format)
        pairs = padding_pairs(spatial, self.pool_size, self.strides, (1,) * self.rank,
                              self.padding)
        if any(n + a + b < k for n, (a, b), k in zip(spatial, pairs, self.pool_size)):
            raise ValueError(f"{type(self).__name__} '{self.name}': pool_size {self.pool_size} "
                             f"is larger than the input's spatial size {spatial} with "
                             f"padding='{self.padding}'; use padding='same' or a smaller "
                             "pool_size")
        self._pairs = pairs

    def _pool(self, x, pool_type, pad, name):
        kwargs = {"kernel": self.pool_size, "stride": self.strides, "pad": pad,
                  "pool_type": pool_type, "pooling_convention": "valid", "name": name}
        if pool_type == "avg":
            kwargs["count_include_pad"] = False
        return sym.Pooling(x, **kwargs)

    def call(self, inputs):
        x = to_channels_first(inputs, self.rank, self.data_format, f"{self.name}_to_first")
        before = tuple(a for a, _ in self._pairs)
        extra = tuple(b - a for a, b in self._pairs)
        if not any(extra):
            y = self._pool(x, self.pool_type, before, self.name)
        elif self.pool_type == "max":
            width = (0, 0, 0, 0) + tuple(v for e in extra for v in (0, e))
            x = sym.Pad(x, mode="edge", pad_width=width, name=f"{self.name}_pad")
            y = self._pool(x, "max", before, self.name)
        else:
            width = (0, 0, 0, 0) + tuple(v for pair in self._pairs for v in pair)
            zeros = (0,) * self.rank
            total = self._pool(sym.Pad(x, mode="constant", pad_width=width,
                                       name=f"{self.name}_pad"),
                               "sum", zeros, f"{self.name}_sum")
            one = sym.slice(sym.BlockGrad(x), begin=(0, 0), end=(1, 1),
                            name=f"{self.name}_probe")
            ones = sym.Pad(sym.ones_like(one), mode="constant", pad_width=width,
                           name=f"{self.name}_ones")
            count = self._pool(ones, "sum", zeros, f"{self.name}_count")
            y = sym.broadcast_div(total, count, name=self.name)
        return from_channels_first(y, self.rank, self.data_format, f"{self.name}_to_last")

    def get_config(self):
        config = super().get_config()
        config.update(pool_size=list(self.pool_size), strides=list(self.strides),
                      padding=self.padding, data_format=self.data_format)
        return config


class MaxPooling1D(_Pooling):
    """Max over windows of a sequence.

    Args: as :class:`MaxPooling2D`, with ints or tuples of 1 int (``pool_size`` default 2).

    Input shape: ``(batch, channels, steps)`` (or ``(batch, steps, channels)``).
    Output shape: ``(batch, channels, pooled_steps)`` (or channels last).
    """

    rank, pool_type = 1, "max"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class MaxPooling2D(_Pooling):
    """Max over windows of an image (per channel).

    Args:
        pool_size: Window size: an int or a tuple of 2 ints (default ``(2, 2)``).
        strides: Step of the window; None (the default) means ``pool_size``.
        padding: ``'valid'`` or ``'same'`` (``ceil(size / strides)`` outputs,
            padded cells ignored).
        data_format: ``'channels_first'`` (NCHW, the default) or ``'channels_last'``.

    Input shape: ``(batch, channels, rows, cols)`` (or ``(batch, rows, cols, channels)``).
    Output shape: ``(batch, channels, pooled_rows, pooled_cols)`` (or channels last).
    """

    rank, pool_type = 2, "max"

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class MaxPooling3D(_Pooling):
    """Max over windows of a volume (per channel).

    Args: as :class:`MaxPooling2D`, with tuples of 3 ints (default ``(2, 2, 2)``).

    Input shape: ``(batch, channels, depth, rows, cols)`` (or channels last).
    Output shape: ``(batch, channels, pooled_depth, pooled_rows, pooled_cols)``.
    """

    rank, pool_type = 3, "max"

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class AveragePooling1D(_Pooling):
    """Mean over windows of a sequence (padded cells not counted).

    Args: as :class:`MaxPooling2D`, with ints or tuples of 1 int (``pool_size`` default 2).

    Input shape: ``(batch, channels, steps)`` (or ``(batch, steps, channels)``).
    Output shape: ``(batch, channels, pooled_steps)`` (or channels last).
    """

    rank, pool_type = 1, "avg"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class AveragePooling2D(_Pooling):
    """Mean over windows of an image (padded cells not counted, as in Keras).

    Args: as :class:`MaxPooling2D`.

    Input shape: ``(batch, channels, rows, cols)`` (or ``(batch, rows, cols, channels)``).
    Output shape: ``(batch, channels, pooled_rows, pooled_cols)`` (or channels last).
    """

    rank, pool_type = 2, "avg"

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class AveragePooling3D(_Pooling):
    """Mean over windows of a volume (padded cells not counted).

    Args: as :class:`MaxPooling2D`, with tuples of 3 ints (default ``(2, 2, 2)``).

    Input shape: ``(batch, channels, depth, rows, cols)`` (or channels last).
    Output shape: ``(batch, channels, pooled_depth, pooled_rows, pooled_cols)``.
    """

    rank, pool_type = 3, "avg"

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class _GlobalPooling(Layer):
    """Max or mean over all spatial axes (not used directly).

    Args:
        data_format: ``'channels_first'`` (the default) or ``'channels_last'``;
            None takes :func:`deepkit.backend.image_data_format`.
        keepdims: Keep the spatial axes with size 1 (``(batch, channels, 1,
            1)``) instead of returning ``(batch, channels)``.
    """

    rank = None
    reduce = None

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format, type(self).__name__)
        self.keepdims = bool(keepdims)

    def build(self, input_shape):
        check_input_rank(self, input_shape, self.rank)

    def call(self, inputs):
        first = 2 if self.data_format == "channels_first" else 1
        axes = tuple(range(first, first + self.rank))
        op = sym.max if self.reduce == "max" else sym.mean
        return op(inputs, axis=axes, keepdims=self.keepdims, name=self.name)

    def get_config(self):
        config = super().get_config()
        config.update(data_format=self.data_format, keepdims=self.keepdims)
        return config


class GlobalMaxPooling1D(_GlobalPooling):
    """Max over the steps: ``(batch, channels, steps)`` -> ``(batch, channels)``.

    Args: ``data_format``, ``keepdims`` (see :class:`GlobalAveragePooling2D`).
    """

    rank, reduce = 1, "max"


class GlobalMaxPooling2D(_GlobalPooling):
    """Max over rows and columns: ``(batch, channels, rows, cols)`` -> ``(batch, channels)``.

    Args: ``data_format``, ``keepdims`` (see :class:`GlobalAveragePooling2D`).
    """

    rank, reduce = 2, "max"


class GlobalMaxPooling3D(_GlobalPooling):
    """Max over the three spatial axes: -> ``(batch, channels)``.

    Args: ``data_format``, ``keepdims`` (see :class:`GlobalAveragePooling2D`).
    """

    rank, reduce = 3, "max"


class GlobalAveragePooling1D(_GlobalPooling):
    """Mean over the steps: ``(batch, channels, steps)`` -> ``(batch, channels)``.

    Args: ``data_format``, ``keepdims`` (see :class:`GlobalAveragePooling2D`).
    """

    rank, reduce = 1, "mean"


class GlobalAveragePooling2D(_GlobalPooling):
    """Mean over rows and columns: ``(batch, channels, rows, cols)`` -> ``(batch, channels)``.

    Args:
        data_format: ``'channels_first'`` (the default) or ``'channels_last'``
            (then ``(batch, rows, cols, channels)`` -> ``(batch, channels)``).
        keepdims: Keep the spatial axes with size 1: ``(batch, channels, 1, 1)``
            (or ``(batch, 1, 1, channels)``).
    """

    rank, reduce = 2, "mean"


class GlobalAveragePooling3D(_GlobalPooling):
    """Mean over the three spatial axes: -> ``(batch, channels)``.

    Args: ``data_format``, ``keepdims`` (see :class:`GlobalAveragePooling2D`).
    """

    rank, reduce = 3, "mean"
