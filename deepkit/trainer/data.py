"""Where batches come from: arrays, DataIters and Python iterables, as Keras 3's ``data`` tuples.

Every source yields ``(n, data)`` per batch, where ``n`` is the number of real
samples and ``data`` is ``(x, y, sample_weight)`` exactly as
``train_step``/``test_step``/``predict_step`` receive it: ``x`` is one array
for a single-input model and a dict by input name otherwise (``y`` and
``sample_weight`` likewise by output), and ``y``/``sample_weight`` are None
when absent.

Batches taken from in-memory arrays are :class:`HostBatch` objects: they
know their shape and read their rows only when asked (``np.asarray(x)``),
so the default steps push the gather itself to the engine and Python can
queue the next batch meanwhile.
"""
import numpy as np

from deepkit_engine.base import DeepkitError
from deepkit_engine.ndarray import NDArray

__all__ = ["HostBatch", "ArraySource", "IteratorSource", "as_source", "is_iterator",
           "unpack_x_y_sample_weight", "pack_x_y_sample_weight", "named", "host_value",
           "sample_count"]


class HostBatch:
    """Some rows of a host array (numpy, h5py, memmap), gathered only when read.

    It behaves as an array where it matters (``shape``, ``dtype``, ``len``,
    ``np.asarray``), so a custom ``train_step`` can treat it as one.

    Args:
        array: The whole array the rows come from.
        index: The row indices (an integer array) or a slice.
        check: None, or ``check(rows, positions)`` run on the gathered rows
            (it raises on bad values; ``positions`` are the row numbers).
    """

    def __init__(self, array, index, check=None):
        self.array = array
        self.index = index
        self.check = check
        count = len(range(*index.indices(len(array)))) if isinstance(index, slice) \
            else len(index)
        self.shape = (count,) + tuple(np.shape(array)[1:]) if hasattr(array, "shape") \
            else (count,) + tuple(np.shape(array[0]) if len(array) else ())

    @property
    def dtype(self):
        return getattr(self.array, "dtype", np.asarray(self.array[:1]).dtype)

    @property
    def ndim(self):
        return len(self.shape)

    def __len__(self):
        return self.shape[0]

    def numpy(self):
        """The rows as a numpy array (gathered now)."""
        rows = np.asarray(self.array[self.index])
        if self.check is not None:
            positions = np.arange(len(self.array))[self.index] \
                if isinstance(self.index, slice) else self.index
            self.check(rows, positions)
        return rows

    def __array__(self, dtype=None, copy=None):
        value = self.numpy()
        return value if dtype is None else value.astype(dtype, copy=False)

    def __repr__(self):
        return f"<HostBatch shape={self.shape}>"


def host_value(value):
    """``value`` as a numpy array (NDArrays are read without a copy, HostBatches gathered)."""
    if isinstance(value, NDArray):
        return value.asnumpy(copy=False)
    if hasattr(value, "asnumpy"):
        return value.asnumpy()
    return np.asarray(value)


def sample_count(value):
    """The batch size of one array or of the first array of a dict/list/tuple."""
    if isinstance(value, dict):
        value = next(iter(value.values()))
    elif isinstance(value, (list, tuple)):
        value = value[0]
    shape = getattr(value, "shape", None)
    return int(shape[0]) if shape is not None else len(value)


def named(value, names, what):
    """``value`` (one array, a list in ``names`` order, or a dict) as a dict by name."""
    if isinstance(value, dict):
        missing = [n for n in names if n not in value]
        if missing:
            raise ValueError(f"{what} is a dict without entries for {missing}; expected keys "
                             f"{names}")
        return {n: value[n] for n in names}
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise ValueError(f"{what} has {len(value)} arrays but the model has {len(names)} "
                             f"({', '.join(names)})")
        return dict(zip(names, value))
    if len(names) != 1:
        raise ValueError(f"{what} is one array but the model has {len(names)} "
                         f"({', '.join(names)}); pass a list or a dict")
    return {names[0]: value}


def unpack_x_y_sample_weight(data):
    """Split a batch into ``(x, y, sample_weight)`` (Keras 3's utility of the same name).

    Args:
        data: ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``.

    Returns:
        A 3-tuple; missing entries are None.
    """
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if len(data) == 1:
        return data[0], None, None
    if len(data) == 2:
        return data[0], data[1], None
    if len(data) == 3:
        return data
    raise ValueError(f"a batch is x, (x, y) or (x, y, sample_weight); got a tuple of "
                     f"{len(data)} entries")


def pack_x_y_sample_weight(x, y=None, sample_weight=None):
    """The inverse of :func:`unpack_x_y_sample_weight`: ``x``, ``(x, y)`` or the triple."""
    if y is None:
        return (x,)
    if sample_weight is None:
        return (x, y)
    return (x, y, sample_weight)


def _structured(values, names, single):
    """A dict by name, or its only value for a single-input/-output model."""
    if not values:
        return None
    return values[names[0]] if single and len(names) == 1 else values


class ArraySource:
    """Batches of in-memory (or array-like: h5py, memmap) arrays, by index.

    Args:
        xs, ys, sws: Dicts of arrays by input/output name (``ys``/``sws`` may be empty).
        batch_size: Samples per batch (the last batch may be smaller).
        shuffle: Draw a new order every epoch from ``rng``.
        rng: A numpy Generator.
        single_input, single_output: Give ``x``/``y`` as one array instead of a dict.
        checks: ``{('x' or 'y', name): check(rows, positions)}`` run on the
            rows of those arrays (arrays not in memory: h5py, memmap) as each
            batch is gathered, before the batch is handed to the step.
    """

    def __init__(self, xs, ys, sws, batch_size, shuffle, rng, single_input=True,
                 single_output=True, checks=None):
        self.xs, self.ys, self.sws = xs, ys, sws
        lengths = {len(a) for a in list(xs.values()) + list(ys.values()) + list(sws.values())}
        if len(lengths) != 1:
            sizes = {f"x['{k}']": len(v) for k, v in xs.items()}
            sizes.update({f"y['{k}']": len(v) for k, v in ys.items()})
            sizes.update({f"sample_weight['{k}']": len(v) for k, v in sws.items()})
            raise ValueError(f"all inputs, targets and sample weights must have the same "
                             f"number of samples; got {sizes}")
        self.checks = checks or {}
        self.n = lengths.pop()
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.rng = rng
        self.single_input, self.single_output = single_input, single_output
        self._sorted = not all(isinstance(a, np.ndarray) for a in xs.values())

    @property
    def num_batches(self):
        """Batches per epoch."""
        return -(-self.n // self.batch_size)

    def batches(self):
        """Yield ``(n, (x, y, sample_weight))`` for one epoch."""
        order = self.rng.permutation(self.n) if self.shuffle else None
        in_names, out_names = list(self.xs), list(self.ys) or list(self.sws)
        for start in range(0, self.n, self.batch_size):
            if order is None:
                idx = slice(start, min(start + self.batch_size, self.n))
            else:
                idx = order[start:start + self.batch_size]
                if self._sorted:
                    idx = np.sort(idx)  # h5py needs increasing indices
            x = {k: self._rows("x", k, v, idx) for k, v in self.xs.items()}
            y = {k: self._rows("y", k, v, idx) for k, v in self.ys.items()}
            sw = {k: HostBatch(v, idx) for k, v in self.sws.items()}
            n = next(iter(x.values())).shape[0]
            yield n, (_structured(x, in_names, self.single_input),
                      _structured(y, out_names, self.single_output),
                      _structured(sw, out_names, self.single_output))


    def _rows(self, kind, name, array, idx):
        """The rows ``idx`` of ``array``: a lazy HostBatch, or checked now when it has a check.

        Checked rows are gathered here, so that bad values raise before any
        work for the batch is queued (an error inside queued work would leave
        the weights unreadable until they are set again).
        """
        check = self.checks.get((kind, name))
        batch = HostBatch(array, idx, check)
        return batch if check is None else batch.numpy()


def is_iterator(x):
    """Whether ``x`` is a DataIter or an iterable of batches (not arrays or containers)."""
    return hasattr(x, "provide_data") or (hasattr(x, "__iter__") and not hasattr(x, "shape")
                                          and not isinstance(x, (list, tuple, dict)))


class IteratorSource:
    """Batches from a DataIter (``provide_data``/``DataBatch``) or a Python iterable.

    An iterable yields ``x``, ``(x, y)`` or ``(x, y, sample_weight)`` per batch;
    a DataIter's padded last batch is cut to its real samples.

    Args:
        it: The DataIter or iterable.
        input_names, output_names: The model's names, to map a DataIter's arrays.
        steps: Stop after this many batches per epoch (None: until exhausted).
        checks: None, or an object whose ``batch(x, y, first_sample)`` checks
            each batch's values (:class:`~deepkit.trainer.checks.DataChecks`).
        needs_targets: None, or the name of the method (``'fit'``...) that
            needs targets in every batch: a batch without them raises.
    """

    def __init__(self, it, input_names, output_names, steps=None, checks=None,
                 needs_targets=None):
        self.it, self.steps = it, steps
        self.input_names, self.output_names = input_names, output_names
        self.data_iter = hasattr(it, "provide_data") and hasattr(it, "reset")
        self.checks, self.needs_targets = checks, needs_targets

    @property
    def num_batches(self):
        """Batches per epoch, or None when the iterable does not say."""
        if self.steps is not None:
            return self.steps
        try:
            return len(self.it)
        except TypeError:
            return None

    def batches(self):
        """Yield ``(n, (x, y, sample_weight))`` for one epoch."""
        if self.data_iter:
            self.it.reset()
        seen = 0
        for step, item in enumerate(self.it):
            if self.steps is not None and step >= self.steps:
                break
            if self.data_iter:
                n = item.data[0].shape[0] - (item.pad or 0)
                batch = (_rows_by_name(item.data, self.input_names, n),
                         _rows_by_name(item.label or [], self.output_names, n), None)
            else:
                x, y, sw = unpack_x_y_sample_weight(item)
                n = sample_count(x)
                batch = (_host_rows(x, n), _host_rows(y, n), _host_rows(sw, n))
            self._check(step, seen, batch)
            seen += n
            yield n, batch

    def _check(self, step, first, batch):
        x, y, _ = batch
        if y is None and self.needs_targets:
            raise ValueError(f"{self.needs_targets}: batch {step} of the data has no targets, "
                             f"but the model has a loss; yield (x, y) or (x, y, sample_weight) "
                             f"batches")
        if self.checks is not None:
            self.checks.batch(x, y, first)


def _rows_by_name(arrays, names, n):
    if not arrays:
        return None
    values = {k: host_value(v)[:n] for k, v in zip(names, arrays)}
    return values[names[0]] if len(values) == 1 and len(names) == 1 else values


def _host_rows(value, n):
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: host_value(v)[:n] for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [host_value(v)[:n] for v in value]
    return host_value(value)[:n]


def as_source(x, y, sample_weight, model, batch_size, shuffle, rng, steps=None, checks=None,
              needs_targets=None):
    """The batch source for ``fit``/``evaluate``/``predict`` data.

    Args:
        x, y, sample_weight: Arrays (lists/dicts of them), or a DataIter or
            iterable of batches in ``x`` (then ``y`` is None).
        model: Gives ``input_names`` and ``output_names``.
        batch_size: Samples per batch for arrays.
        shuffle: Shuffle array batches each epoch.
        rng: The numpy Generator that shuffles.
        steps: Batches per epoch for iterators (None: until exhausted).
        checks: None, or the :class:`~deepkit.trainer.checks.DataChecks` of
            the call (in-memory arrays are checked by the caller; the source
            checks what it gathers or receives).
        needs_targets: For iterators: the method name to raise with when a
            batch has no targets (None: targets are optional).
    """
    if is_iterator(x):
        if y is not None:
            raise ValueError("y must be None when x is a data iterator or an iterable of "
                             "batches: the batches carry their own targets")
        return IteratorSource(x, model.input_names, model.output_names, steps, checks,
                              needs_targets)
    if batch_size is None:
        raise DeepkitError("batch_size is needed for array data")
    xs = named(x, model.input_names, "x")
    ys = named(y, model.output_names, "y") if y is not None else {}
    sws = named(sample_weight, model.output_names, "sample_weight") \
        if sample_weight is not None else {}
    deferred = checks.arrays(xs, ys) if checks is not None else None
    return ArraySource(xs, ys, sws, batch_size, shuffle, rng,
                       single_input=len(model.input_names) == 1,
                       single_output=len(model.output_names) == 1, checks=deferred)
