"""Data iterators: batches of NDArrays for training loops (MXNet's ``mx.io``).

* :class:`DataIter` is the base class: ``reset()``, ``next()`` (also Python's
  ``for batch in it``), ``provide_data`` / ``provide_label`` (lists of
  :class:`DataDesc`) and ``batch_size``.
* :class:`DataBatch` holds one batch: ``data`` and ``label`` (lists of
  NDArrays), ``pad`` (how many trailing samples are filler) and ``index``.
* :class:`NDArrayIter` batches named in-memory or on-disk arrays (numpy,
  numpy memmaps, h5py datasets, NDArrays, anything with ``shape`` and
  ``__getitem__``), reading only the rows of each batch.
* :class:`ResizeIter` makes an iterator yield a fixed number of batches per
  epoch; :class:`PrefetchingIter` produces batches in a background thread;
  :class:`CSVIter` reads CSV files.

Timing: every iterator has ``timing`` (an :class:`IterTiming`) with
``wait_s`` (seconds the consumer spent blocked in ``next()``), ``produce_s``
(seconds spent producing batches, in whatever thread did it) and ``batches``.
For a plain iterator the two are equal; behind a :class:`PrefetchingIter` the
gap between them is the data work that overlapped with compute, and a large
``wait_s`` relative to the step time says the data pipeline is the
bottleneck.

Randomness (shuffling) comes from :func:`seed_sequence`, derived from the
global seed of :func:`deepkit_engine.random.seed`, so the same seed gives the
same order.
"""
import collections
import functools
import gzip
import numbers
import os
import queue
import threading
import time
import warnings
import weakref
import zlib

import numpy as np

from . import generators as _generators
from .base import ShapeError
from .context import Context, cpu
from .ndarray import NDArray

__all__ = [
    "DataDesc", "DataBatch", "DataIter", "IterTiming", "NDArrayIter", "ResizeIter",
    "PrefetchingIter", "CSVIter", "MNISTIter", "read_idx", "seed_sequence",
]


# -- seeds ---------------------------------------------------------------------
def _tag_int(tag):
    if isinstance(tag, (int, np.integer)) and not isinstance(tag, bool):
        return int(tag) & 0xFFFFFFFFFFFFFFFF
    return zlib.crc32(str(tag).encode("utf-8"))


def seed_sequence(*tags, seed=None):
    """A numpy ``SeedSequence`` for one consumer of randomness.

    Derived from ``seed`` when given, else from the global seed set by
    :func:`deepkit_engine.random.seed`, mixed with ``tags`` (strings or ints,
    e.g. the name of the consumer) so that different consumers draw different
    streams. Without either seed the sequence uses fresh OS entropy.

    Args:
        *tags: Strings or ints that name the consumer.
        seed: An explicit integer seed that overrides the global one.

    Returns:
        numpy.random.SeedSequence: Spawn children from it or pass it to
        ``numpy.random.default_rng``.
    """
    value = seed if seed is not None else _generators.seed_value()
    if value is None:
        return np.random.SeedSequence()
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"seed must be an int, got {value!r}")
    return np.random.SeedSequence([int(value) & 0xFFFFFFFFFFFFFFFF]
                                  + [_tag_int(t) for t in tags])


# -- descriptors and batches ---------------------------------------------------
class DataDesc(collections.namedtuple("DataDesc", ["name", "shape"])):
    """Name, shape, dtype and layout of one input, as MXNet's ``DataDesc``.

    It is a ``(name, shape)`` tuple (so ``for name, shape in it.provide_data``
    works) with ``dtype`` and ``layout`` as extra attributes.

    Args:
        name: The input's name (``'data'``, ``'softmax_label'``, ...).
        shape: The batch shape, batch axis first.
        dtype: Element type (default float32).
        layout: Axis letters, e.g. ``'NCHW'`` (``'N'`` is the batch axis).
    """

    def __new__(cls, name, shape, dtype=np.float32, layout="NCHW"):
        ret = super().__new__(cls, name, tuple(int(s) for s in shape))
        ret.dtype = np.dtype(dtype)
        ret.layout = layout
        return ret

    def __getnewargs__(self):
        return (self.name, self.shape, self.dtype, self.layout)

    def __repr__(self):
        return f"DataDesc[{self.name},{self.shape},{self.dtype},{self.layout}]"

    @staticmethod
    def get_batch_axis(layout):
        """The index of ``'N'`` in ``layout`` (0 when ``layout`` is None)."""
        return 0 if layout is None else layout.find("N")

    @staticmethod
    def get_list(shapes, types):
        """DataDescs from ``[(name, shape)]`` and optionally ``[(name, dtype)]``."""
        if types is None:
            return [DataDesc(name, shape) for name, shape in shapes]
        types = dict(types)
        return [DataDesc(name, shape, types[name]) for name, shape in shapes]


class DataBatch:
    """One batch: lists of NDArrays plus bookkeeping.

    Args:
        data: List of data NDArrays, one per data input.
        label: List of label NDArrays (may be empty or None).
        pad: How many samples at the end of the batch are filler (to be ignored
            by metrics and predictions).
        index: The sample indices in the batch (a numpy array), when known.
        bucket_key: Key for bucketing iterators.
        provide_data: The batch's :class:`DataDesc` list, when it differs from
            the iterator's.
        provide_label: Likewise for labels.
    """

    def __init__(self, data, label=None, pad=0, index=None, bucket_key=None,
                 provide_data=None, provide_label=None):
        if data is not None and not isinstance(data, (list, tuple)):
            raise TypeError(f"DataBatch: data must be a list of NDArrays, got "
                            f"{type(data).__name__}")
        if label is not None and not isinstance(label, (list, tuple)):
            raise TypeError(f"DataBatch: label must be a list of NDArrays, got "
                            f"{type(label).__name__}")
        self.data = data
        self.label = label
        self.pad = 0 if pad is None else int(pad)
        self.index = index
        self.bucket_key = bucket_key
        self.provide_data = provide_data
        self.provide_label = provide_label

    def __repr__(self):
        data = [tuple(d.shape) for d in self.data or ()]
        label = [tuple(d.shape) for d in self.label or ()]
        return f"DataBatch: data shapes: {data} label shapes: {label} pad: {self.pad}"


# -- timing --------------------------------------------------------------------
class IterTiming:
    """Time spent producing batches, for "is it my data or my model?".

    Attributes:
        batches: Batches delivered since the last :meth:`reset`.
        wait_s: Seconds the consumer spent blocked in ``next()``.
        produce_s: Seconds spent producing batches (in a background thread or
            worker pool where there is one; summed over workers).
        last_wait_s: ``wait_s`` of the most recent ``next()``.
        last_produce_s: ``produce_s`` of the most recently produced batch.
    """

    __slots__ = ("batches", "wait_s", "produce_s", "last_wait_s", "last_produce_s", "_lock")

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self):
        """Zero all counters (e.g. at the start of an epoch)."""
        self.batches = 0
        self.wait_s = 0.0
        self.produce_s = 0.0
        self.last_wait_s = 0.0
        self.last_produce_s = 0.0

    def record(self, wait=None, produce=None, batch=False):
        """Add one observation (thread-safe).

        Args:
            wait: Seconds the consumer waited, or None.
            produce: Seconds spent producing, or None.
            batch: Whether a batch was delivered.
        """
        with self._lock:
            if wait is not None:
                self.wait_s += wait
                self.last_wait_s = wait
            if produce is not None:
                self.produce_s += produce
                self.last_produce_s = produce
            if batch:
                self.batches += 1

    def as_dict(self):
        """The counters as a plain dict."""
        with self._lock:
            return {"batches": self.batches, "wait_s": self.wait_s,
                    "produce_s": self.produce_s, "last_wait_s": self.last_wait_s,
                    "last_produce_s": self.last_produce_s}

    def __repr__(self):
        return (f"IterTiming(batches={self.batches}, wait_s={self.wait_s:.4f}, "
                f"produce_s={self.produce_s:.4f})")


def _timing_of(it):
    timing = getattr(it, "timing", None)
    if not isinstance(timing, IterTiming):
        timing = IterTiming()
        try:
            it.timing = timing
        except AttributeError:
            pass
    return timing


def _timed_next(fn):
    """Wrap a ``next`` method so that the outermost call records its duration."""

    @functools.wraps(fn)
    def next(self):  # noqa: A001 - the MXNet method name
        if getattr(self, "_own_timing", False) or getattr(self, "_timing_depth", 0):
            return fn(self)
        self._timing_depth = 1
        start = time.perf_counter()
        delivered = False
        try:
            batch = fn(self)
            delivered = True
            return batch
        finally:
            self._timing_depth = 0
            elapsed = time.perf_counter() - start
            _timing_of(self).record(wait=elapsed, produce=elapsed, batch=delivered)

    next._deepkit_timed = True
    return next


class DataIter:
    """Base class of the data iterators (MXNet's ``mx.io.DataIter``).

    Subclasses implement ``reset()`` and either ``next()`` or ``iter_next()``
    with ``getdata()``/``getlabel()``/``getpad()``/``getindex()``, and set
    ``provide_data``/``provide_label``. Every ``next`` is timed automatically
    into :attr:`timing`.

    Args:
        batch_size: Samples per batch.
    """

    def __init__(self, batch_size=0):
        self.batch_size = batch_size
        self.timing = IterTiming()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        fn = cls.__dict__.get("next")
        if fn is not None and not getattr(fn, "_deepkit_timed", False):
            cls.next = _timed_next(fn)

    def __iter__(self):
        return self

    def __next__(self):
        return self.next()

    def reset(self):
        """Rewind to the start of the data (the next epoch)."""

    def next(self):  # noqa: A003
        """The next :class:`DataBatch`; raises ``StopIteration`` at the end of an epoch."""
        if self.iter_next():
            return DataBatch(data=self.getdata(), label=self.getlabel(), pad=self.getpad(),
                             index=self.getindex())
        raise StopIteration

    def iter_next(self):
        """Move to the next batch; False at the end of the epoch."""
        raise NotImplementedError(f"{type(self).__name__} implements neither next() nor "
                                  "iter_next()")

    def getdata(self):
        """The data NDArrays of the current batch."""
        raise NotImplementedError

    def getlabel(self):
        """The label NDArrays of the current batch."""
        return None

    def getindex(self):
        """The sample indices of the current batch, or None."""
        return None

    def getpad(self):
        """How many samples of the current batch are filler."""
        return 0

    def close(self):
        """Release background resources (threads, files). Idempotent."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


DataIter.next = _timed_next(DataIter.next)


# -- NDArrayIter ---------------------------------------------------------------
_LAST_BATCH_MODES = ("pad", "discard", "roll_over")


def _to_nd(array, ctx):
    array = np.ascontiguousarray(array)
    if ctx.device_type != "gpu":
        return NDArray(array, ctx)
    with ctx.device_scope():
        return NDArray(ctx.xp.asarray(array), ctx)


def _is_scalar_list(value):
    return (isinstance(value, (list, tuple)) and len(value) > 0
            and all(isinstance(v, numbers.Number) for v in value))


def _as_source(name, value):
    """A numpy array, or an array-like that is indexed lazily (h5py, memmap, ...)."""
    if isinstance(value, NDArray):
        return np.asarray(value)  # CPU: no copy; GPU: one copy to the host
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "shape") and hasattr(value, "__getitem__") and len(value.shape) >= 1:
        return value  # h5py.Dataset, zarr, ... read batch by batch
    if hasattr(value, "__array__") or isinstance(value, (list, tuple)):
        return np.asarray(value)
    raise TypeError(f"NDArrayIter: {name!r} must be a numpy array, NDArray, h5py dataset or "
                    f"another array-like with shape and __getitem__, got {type(value).__name__}")


def _init_sources(value, default_name, allow_empty, what):
    """Normalise data/label arguments to a list of (name, source)."""
    if value is None:
        if allow_empty:
            return []
        raise ValueError(f"NDArrayIter: {what} is required")
    if _is_scalar_list(value) or not isinstance(value, (list, tuple, dict)):
        value = [value]
    if isinstance(value, (list, tuple)):
        if not value and not allow_empty:
            raise ValueError(f"NDArrayIter: {what} is an empty list")
        if len(value) == 1:
            value = {default_name: value[0]}
        else:
            value = {f"_{i}_{default_name}": v for i, v in enumerate(value)}
    items = []
    for name, source in value.items():
        if not isinstance(name, str):
            raise TypeError(f"NDArrayIter: {what} names must be strings, got {name!r}")
        source = _as_source(name, source)
        if len(source.shape) == 0:
            raise ShapeError(f"NDArrayIter: {what} {name!r} is a scalar; it needs a sample "
                             "axis first", actual=())
        items.append((name, source))
    return items


def _take(source, idx):
    """Rows ``idx`` of ``source`` as a new numpy array, reading only those rows.

    The result never shares memory with the source (a batch must not be a
    writable window onto the user's array or a memmapped file).
    """
    n = len(idx)
    if n == 0:
        return np.array(source[0:0])
    first = int(idx[0])
    if n == 1 or (int(idx[-1]) - first == n - 1 and np.all(np.diff(idx) == 1)):
        return np.array(source[first:first + n])
    if isinstance(source, np.ndarray):  # memmaps too: take reads only these rows
        return np.asarray(np.take(source, idx, axis=0))  # a new array: no second copy
    # h5py (and other lazy arrays) want increasing, unique indices.
    unique, inverse = np.unique(idx, return_inverse=True)
    try:
        block = np.asarray(source[unique])
    except (TypeError, ValueError, IndexError):
        block = np.stack([np.asarray(source[int(i)]) for i in unique])
    return block[inverse]


class NDArrayIter(DataIter):
    """Batches over named arrays, as MXNet's ``mx.io.NDArrayIter``.

    Sources are read batch by batch: numpy memmaps and h5py datasets are never
    loaded whole (h5py rows are read in sorted order and put back in the
    batch's order). Batches are float32 (see ``dtype``) and made on ``ctx``
    (the CPU by default).

    ``last_batch_handle`` decides what happens to the last ``N % batch_size``
    samples of an epoch, as in MXNet:

    * ``'pad'``: the last batch is filled up with samples from the start of
      the epoch's order and ``batch.pad`` says how many.
    * ``'discard'``: the incomplete batch is dropped.
    * ``'roll_over'``: the incomplete batch is not returned; after ``reset()``
      its samples open the next epoch, completed by the first samples of the
      new order (so each sample is used once per pass over the data). MXNet
      reports the rolled-over count as ``pad`` of that batch; here ``pad`` is 0
      because every sample in it is real data.

    Args:
        data: One array, a list of arrays, or a dict ``{name: array}``.
        label: Same forms as ``data``, or None.
        batch_size: Samples per batch.
        shuffle: Shuffle the order at every ``reset()`` (the first epoch too).
            The order comes from :func:`seed_sequence` (the global seed, or
            ``seed``).
        last_batch_handle: ``'pad'``, ``'discard'`` or ``'roll_over'``.
        data_name: Name of a single data array (a list gets ``_0_data``, ...).
        label_name: Name of a single label array.
        seed: An explicit shuffle seed (overrides the global seed).
        ctx: Context of the batches (default ``cpu()``).
        dtype: Element type of the batches (float32 by default, as MXNet's
            ``nd.array`` gives); None keeps each source's own dtype.
        num_parts, part_index: Read only part ``part_index`` of ``num_parts``
            consecutive parts of the samples (one per process of a
            distributed run, as MXNet's data iterators). The first
            ``N % num_parts`` parts have one sample more; none is dropped.

    Raises:
        ShapeError: When the arrays have different numbers of samples.
        ValueError: For an empty data array or bad arguments.
    """

    def __init__(self, data, label=None, batch_size=1, shuffle=False,
                 last_batch_handle="pad", data_name="data", label_name="softmax_label",
                 seed=None, ctx=None, dtype="float32", num_parts=1, part_index=0):
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) \
                or batch_size <= 0:
            raise ValueError(f"NDArrayIter: batch_size must be a positive int, got {batch_size!r}")
        if last_batch_handle not in _LAST_BATCH_MODES:
            raise ValueError(f"NDArrayIter: last_batch_handle must be one of "
                             f"{_LAST_BATCH_MODES}, got {last_batch_handle!r}")
        super().__init__(int(batch_size))
        self.data = _init_sources(data, data_name, False, "data")
        self.label = _init_sources(label, label_name, True, "label")
        first_name, first = self.data[0]
        self.num_data = int(first.shape[0])
        for kind, items in (("data", self.data), ("label", self.label)):
            for name, source in items:
                if int(source.shape[0]) != self.num_data:
                    raise ShapeError(
                        f"NDArrayIter: {kind} {name!r} has {source.shape[0]} samples but data "
                        f"{first_name!r} has {self.num_data}; every data and label array needs "
                        "the same number of samples", expected=self.num_data,
                        actual=int(source.shape[0]))
        if self.num_data == 0:
            raise ValueError(f"NDArrayIter: data {first_name!r} has no samples")
        if not isinstance(num_parts, (int, np.integer)) or num_parts < 1:
            raise ValueError(f"NDArrayIter: num_parts must be a positive int, got {num_parts!r}")
        if not isinstance(part_index, (int, np.integer)) or not 0 <= part_index < num_parts:
            raise ValueError(f"NDArrayIter: part_index must be in [0, {num_parts}), got "
                             f"{part_index!r}")
        self.num_parts, self.part_index = int(num_parts), int(part_index)
        base, extra = divmod(self.num_data, int(num_parts))
        first_row = part_index * base + min(part_index, extra)
        self.num_data = base + (1 if part_index < extra else 0)
        if self.num_data == 0:
            raise ValueError(f"NDArrayIter: part {part_index} of {num_parts} of data "
                             f"{first_name!r} ({base * num_parts + extra} samples) is empty")
        self.shuffle = bool(shuffle)
        self.last_batch_handle = last_batch_handle
        self.ctx = cpu() if ctx is None else Context(ctx)
        self.dtype = None if dtype is None else np.dtype(dtype)
        self._rng = np.random.default_rng(seed_sequence("NDArrayIter", seed=seed))
        self._order = np.arange(first_row, first_row + self.num_data, dtype=np.int64)
        self._cursor = 0
        self._carry = None      # indices opening the next epoch (roll_over)
        self._leftover = None   # indices of the incomplete batch at the end of this epoch
        self._zero_pad = False  # fill pad rows with zeros instead of wrapped samples
        self._current = None
        if self.shuffle:
            self._rng.shuffle(self._order)

    # -- descriptors
    def _descs(self, items):
        return [DataDesc(name, (self.batch_size,) + tuple(source.shape[1:]),
                         source.dtype if self.dtype is None else self.dtype)
                for name, source in items]

    @property
    def provide_data(self):
        """:class:`DataDesc` of each data array (batch shape, dtype)."""
        return self._descs(self.data)

    @property
    def provide_label(self):
        """:class:`DataDesc` of each label array."""
        return self._descs(self.label)

    # -- epochs
    def hard_reset(self):
        """Rewind and forget any rolled-over samples."""
        self._carry = None
        self._leftover = None
        self._new_epoch()

    def reset(self):
        """Start the next epoch (new order when shuffling; roll-over kept)."""
        if self.last_batch_handle == "roll_over" and self._leftover is not None:
            self._carry = self._leftover
        self._leftover = None
        self._new_epoch()

    def _new_epoch(self):
        if self.shuffle:
            self._rng.shuffle(self._order)
        self._cursor = 0

    def _next_indices(self):
        """(indices, pad) of the next batch, or None at the end of the epoch."""
        b, n, order = self.batch_size, self.num_data, self._order
        if self._carry is not None and len(self._carry):
            carry, self._carry = self._carry, None
            need = b - len(carry)
            idx = np.concatenate([carry, order[np.arange(need) % n]])
            self._cursor = min(need, n)
            return idx, 0
        self._carry = None
        if self._cursor >= n:
            return None
        start = self._cursor
        if start + b <= n:
            self._cursor = start + b
            return order[start:start + b], 0
        self._cursor = n
        rest = order[start:]
        if self.last_batch_handle == "pad":
            pad = b - len(rest)
            return np.concatenate([rest, order[np.arange(pad) % n]]), pad
        if self.last_batch_handle == "roll_over":
            self._leftover = rest.copy()
        return None

    def _fetch(self, items, idx, pad):
        out = []
        for _, source in items:
            if pad and self._zero_pad:
                rows = _take(source, idx[:len(idx) - pad])
                fill = np.zeros((pad,) + rows.shape[1:], rows.dtype)
                rows = np.concatenate([rows, fill])
            else:
                rows = _take(source, idx)
            if self.dtype is not None and rows.dtype != self.dtype:
                rows = rows.astype(self.dtype)
            out.append(_to_nd(rows, self.ctx))
        return out

    def next(self):  # noqa: A003
        """The next :class:`DataBatch` (``index`` holds the source row numbers)."""
        got = self._next_indices()
        if got is None:
            raise StopIteration
        idx, pad = got
        batch = DataBatch(data=self._fetch(self.data, idx, pad),
                          label=self._fetch(self.label, idx, pad), pad=pad, index=idx)
        self._current = batch
        return batch

    def iter_next(self):
        """Advance to the next batch (MXNet's low-level protocol)."""
        try:
            self.next()
        except StopIteration:
            return False
        return True

    def getdata(self):
        return None if self._current is None else self._current.data

    def getlabel(self):
        return None if self._current is None else self._current.label

    def getpad(self):
        return 0 if self._current is None else self._current.pad

    def getindex(self):
        return None if self._current is None else self._current.index


# -- ResizeIter ----------------------------------------------------------------
class _CurrentBatch:
    """The DataIter accessors for iterators that produce whole batches in ``next()``."""

    def iter_next(self):
        try:
            self.next()
        except StopIteration:
            return False
        return True

    def getdata(self):
        return self.current_batch.data

    def getlabel(self):
        return self.current_batch.label

    def getindex(self):
        return self.current_batch.index

    def getpad(self):
        return self.current_batch.pad


class ResizeIter(_CurrentBatch, DataIter):
    """Make an iterator yield exactly ``size`` batches per epoch (MXNet's ``ResizeIter``).

    Shorter iterators are reset and continued; longer ones are cut.

    Args:
        data_iter: The iterator to resize.
        size: Batches per epoch.
        reset_internal: Reset ``data_iter`` at every ``reset()``; when False
            the next epoch continues where this one stopped.
    """

    def __init__(self, data_iter, size, reset_internal=True):
        if not isinstance(size, (int, np.integer)) or size <= 0:
            raise ValueError(f"ResizeIter: size must be a positive int, got {size!r}")
        super().__init__(data_iter.batch_size)
        self.data_iter = data_iter
        self.size = int(size)
        self.reset_internal = reset_internal
        self.cur = 0
        self.current_batch = None
        self.provide_data = data_iter.provide_data
        self.provide_label = data_iter.provide_label
        if hasattr(data_iter, "default_bucket_key"):
            self.default_bucket_key = data_iter.default_bucket_key

    def reset(self):
        self.cur = 0
        if self.reset_internal:
            self.data_iter.reset()

    def next(self):  # noqa: A003
        if self.cur >= self.size:
            raise StopIteration
        try:
            batch = self.data_iter.next()
        except StopIteration:
            self.data_iter.reset()
            try:
                batch = self.data_iter.next()
            except StopIteration:
                raise ValueError(f"ResizeIter: the wrapped {type(self.data_iter).__name__} "
                                 "yields no batch even after reset()") from None
        self.cur += 1
        self.current_batch = batch
        return batch

    def close(self):
        self.data_iter.close()


# -- PrefetchingIter -----------------------------------------------------------
_BATCH, _END, _ERROR = "batch", "end", "error"


def _merge_batches(batches, renames):
    data, label = [], []
    for batch in batches:
        data.extend(batch.data or [])
        label.extend(batch.label or [])
    first = batches[0]
    if len(batches) == 1 and not renames:
        return first
    return DataBatch(data=data, label=label, pad=first.pad, index=first.index,
                     bucket_key=first.bucket_key)


class _PrefetchWorker:
    """The background producer. It holds no reference to its PrefetchingIter,
    so that dropping the iterator lets it be collected (and this shut down)."""

    def __init__(self, iters, capacity, timing, renames):
        self.iters = iters
        self.renames = renames
        self.timing = timing
        self.queue = queue.Queue(maxsize=capacity)
        self.commands = queue.Queue()
        self.stop = threading.Event()   # abandon the current epoch
        self.idle = threading.Event()   # no epoch is being produced
        self.idle.set()
        self.epoch = 0
        self.closed = False
        self.thread = threading.Thread(target=self._run, name="deepkit-prefetch", daemon=True)
        self.thread.start()

    # producer side
    def _run(self):
        while True:
            epoch = self.commands.get()
            if epoch is None:
                break
            try:
                self._produce(epoch)
            finally:
                self.idle.set()
        self.iters = None

    def _produce(self, epoch):
        while not self.stop.is_set():
            start = time.perf_counter()
            try:
                batches = [it.next() for it in self.iters]
            except StopIteration:
                self._put((epoch, _END, None))
                return
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                self._put((epoch, _ERROR, exc))
                return
            self.timing.record(produce=time.perf_counter() - start)
            if not self._put((epoch, _BATCH, _merge_batches(batches, self.renames))):
                return

    def _put(self, item):
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    # consumer side
    def drain(self):
        try:
            while True:
                self.queue.get_nowait()
        except queue.Empty:
            pass

    def start_epoch(self):
        self.epoch += 1
        self.stop.clear()
        self.idle.clear()
        self.commands.put(self.epoch)

    def abort_epoch(self):
        self.stop.set()
        while not self.idle.wait(0.01):
            self.drain()
        self.drain()

    def shutdown(self, timeout=10.0):
        if self.closed:
            return
        self.closed = True
        self.stop.set()
        self.commands.put(None)
        if threading.current_thread() is self.thread:
            return
        deadline = time.monotonic() + timeout
        while self.thread.is_alive() and time.monotonic() < deadline:
            self.drain()
            self.thread.join(0.01)
        self.drain()
        if self.thread.is_alive():
            warnings.warn("PrefetchingIter: the prefetch thread did not stop within "
                          f"{timeout} s (the wrapped iterator's next() is still running); "
                          "it is a daemon thread and ends with the program", RuntimeWarning,
                          stacklevel=3)


class PrefetchingIter(_CurrentBatch, DataIter):
    """Produce batches of other iterators in a background thread (MXNet's ``PrefetchingIter``).

    Up to ``capacity`` batches are made ahead while the consumer computes.
    An exception raised by a wrapped iterator is re-raised, unchanged, by the
    consumer's ``next()``. ``close()`` (or leaving a ``with`` block, or the
    iterator being garbage collected) stops and joins the thread.

    With several iterators, their batches are merged: data and label lists
    are concatenated in order (rename clashing names with ``rename_data`` /
    ``rename_label``).

    ``timing.produce_s`` is the time the thread spent in the wrapped
    iterators; ``timing.wait_s`` is the time the consumer was blocked.

    Args:
        iters: A DataIter or a list of DataIters (same number of batches).
        rename_data: None or a list (one per iterator) of ``{old: new}`` dicts.
        rename_label: Likewise for labels.
        capacity: How many batches may wait in the queue.
    """

    _own_timing = True

    def __init__(self, iters, rename_data=None, rename_label=None, capacity=2):
        if isinstance(iters, DataIter):
            iters = [iters]
        iters = list(iters)
        if not iters or not all(isinstance(it, DataIter) for it in iters):
            raise TypeError("PrefetchingIter: iters must be a DataIter or a non-empty list "
                            "of DataIters")
        if not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise ValueError(f"PrefetchingIter: capacity must be a positive int, got {capacity!r}")
        for kind, renames in (("rename_data", rename_data), ("rename_label", rename_label)):
            if renames is not None and len(renames) != len(iters):
                raise ValueError(f"PrefetchingIter: {kind} needs one dict per iterator "
                                 f"({len(iters)}), got {len(renames)}")
        super().__init__(iters[0].batch_size)
        self.iters = iters
        self.n_iter = len(iters)
        self.rename_data = rename_data
        self.rename_label = rename_label
        self.provide_data = self._descs("provide_data", rename_data)
        self.provide_label = self._descs("provide_label", rename_label)
        renames = bool(rename_data or rename_label) or len(iters) > 1
        self.current_batch = None
        self._exhausted = False
        self._worker = _PrefetchWorker(iters, int(capacity), self.timing, renames)
        self._finalizer = weakref.finalize(self, _PrefetchWorker.shutdown, self._worker)
        self._worker.start_epoch()

    def _descs(self, attr, renames):
        out = []
        for i, it in enumerate(self.iters):
            mapping = renames[i] if renames else {}
            for desc in getattr(it, attr, None) or []:
                name, shape = desc[0], desc[1]
                dtype = getattr(desc, "dtype", np.float32)
                layout = getattr(desc, "layout", "NCHW")
                out.append(DataDesc(mapping.get(name, name), shape, dtype, layout))
        return out

    def _check_open(self):
        if self._worker.closed:
            raise RuntimeError("PrefetchingIter: the iterator is closed")

    def reset(self):
        """Stop the current epoch's production, reset the wrapped iterators, restart."""
        self._check_open()
        self._worker.abort_epoch()
        for it in self.iters:
            it.reset()
        self._exhausted = False
        self._worker.start_epoch()

    def next(self):  # noqa: A003
        self._check_open()
        if self._exhausted:
            raise StopIteration
        worker = self._worker
        start = time.perf_counter()
        while True:
            try:
                epoch, kind, payload = worker.queue.get(timeout=0.1)
            except queue.Empty:
                if not worker.thread.is_alive():
                    raise RuntimeError("PrefetchingIter: the prefetch thread has stopped") \
                        from None
                continue
            if epoch == worker.epoch:
                break
        wait = time.perf_counter() - start
        if kind == _BATCH:
            self.timing.record(wait=wait, batch=True)
            self.current_batch = payload
            return payload
        self._exhausted = True
        self.timing.record(wait=wait)
        if kind == _ERROR:
            raise payload
        raise StopIteration

    @property
    def closed(self):
        """Whether :meth:`close` has run."""
        return self._worker.closed

    def close(self):
        """Stop and join the prefetch thread (idempotent)."""
        self._finalizer()

    def __del__(self):
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            finalizer()


# -- CSVIter -------------------------------------------------------------------
def _read_csv(path, what, dtype):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"CSVIter: {what} file {path!r} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy warns on empty files
            values = np.loadtxt(path, delimiter=",", dtype=dtype, ndmin=2)
    except ValueError as err:
        raise ValueError(f"CSVIter: cannot parse {what} file {path!r}: {err}") from None
    if values.shape[0] == 0:
        raise ValueError(f"CSVIter: {what} file {path!r} has no rows")
    return values


class CSVIter(NDArrayIter):
    """Batches from CSV files of numbers (MXNet's ``mx.io.CSVIter``).

    Each row of ``data_csv`` is one sample, reshaped to ``data_shape``; each
    row of ``label_csv`` one label, reshaped to ``label_shape`` (a label
    shape of ``(1,)`` gives ``(batch_size,)`` label batches). Without
    ``label_csv`` the labels are zeros, as in MXNet.

    Args:
        data_csv: Path of the data CSV.
        data_shape: Shape of one sample.
        label_csv: Path of the label CSV, or None.
        label_shape: Shape of one label.
        batch_size: Samples per batch.
        round_batch: True: the last batch is completed with samples from the
            start of the file; False: with zeros. ``pad`` counts them in both
            cases.
        dtype: Element type of data and labels.
        data_name: Name of the data input.
        label_name: Name of the label input.
        ctx: Context of the batches (default ``cpu()``).
    """

    def __init__(self, data_csv, data_shape, label_csv=None, label_shape=(1,), batch_size=1,
                 round_batch=True, dtype="float32", data_name="data",
                 label_name="softmax_label", ctx=None):
        data_shape = (int(data_shape),) if isinstance(data_shape, numbers.Integral) \
            else tuple(int(s) for s in data_shape)
        label_shape = (int(label_shape),) if isinstance(label_shape, numbers.Integral) \
            else tuple(int(s) for s in label_shape)
        data = self._load(data_csv, "data_csv", data_shape, dtype)
        if label_csv is None:
            label = np.zeros((data.shape[0],) + label_shape, dtype)
        else:
            label = self._load(label_csv, "label_csv", label_shape, dtype)
            if label.shape[0] != data.shape[0]:
                raise ShapeError(f"CSVIter: label_csv {os.fspath(label_csv)!r} has "
                                 f"{label.shape[0]} rows but data_csv {os.fspath(data_csv)!r} "
                                 f"has {data.shape[0]}", expected=data.shape[0],
                                 actual=label.shape[0])
        if label_shape == (1,):
            label = label.reshape(label.shape[0])
        super().__init__(data, label, batch_size=batch_size, shuffle=False,
                         last_batch_handle="pad", data_name=data_name, label_name=label_name,
                         ctx=ctx, dtype=dtype)
        self.round_batch = bool(round_batch)
        self._zero_pad = not self.round_batch

    @staticmethod
    def _load(path, what, shape, dtype):
        values = _read_csv(path, what, dtype)
        width = int(np.prod(shape))
        if values.shape[1] != width:
            raise ShapeError(f"CSVIter: {what} {os.fspath(path)!r} has {values.shape[1]} columns "
                             f"per row but shape {shape} needs {width}", expected=width,
                             actual=values.shape[1])
        return values.reshape((values.shape[0],) + shape)


# -- MNISTIter ----------------------------------------------------------------------
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
              0x0E: ">f8"}


def read_idx(path):
    """The array in an IDX file (MNIST's format; ``.gz`` files are decompressed).

    Raises:
        FileNotFoundError: No such file.
        ValueError: The file is not IDX or is truncated (the message names it).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"read_idx: no such file: {path}")
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"read_idx: {path} is not an IDX file (it starts with "
                         f"{raw[:4].hex()}; IDX starts with 0000 then a type code and ndim)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    count = int(np.prod(shape))
    if len(raw) < header + count * dtype.itemsize:
        raise ValueError(f"read_idx: {path} is truncated: shape {shape} needs "
                         f"{header + count * dtype.itemsize} bytes, the file has {len(raw)}")
    return np.frombuffer(raw, dtype, count, header).reshape(shape).astype(dtype.newbyteorder("="))


class MNISTIter(NDArrayIter):
    """Batches of MNIST from its IDX files (MXNet's ``mx.io.MNISTIter``).

    Images are scaled to [0, 1] float32 with shape ``(batch, 1, 28, 28)``
    (``flat=True``: ``(batch, 784)``); labels are float32 class numbers.
    As in MXNet, an incomplete last batch is dropped, and ``num_parts`` /
    ``part_index`` give each worker its own slice of the data.

    Args:
        image: Path of the images file (``train-images-idx3-ubyte``, gzipped or not).
        label: Path of the labels file.
        batch_size: Samples per batch.
        shuffle: Shuffle at every reset (seeded by ``seed``).
        flat: Flatten each image to 784 values.
        seed: The shuffle seed.
        silent: Accepted for compatibility (nothing is printed).
        num_parts, part_index: Split the data into parts and read one.
        data_name, label_name: Names of the inputs.
        ctx: Context of the batches.
    """

    def __init__(self, image="./train-images-idx3-ubyte", label="./train-labels-idx1-ubyte",
                 batch_size=128, shuffle=True, flat=False, seed=0, silent=False, num_parts=1,
                 part_index=0, data_name="data", label_name="softmax_label", ctx=None,
                 **kwargs):
        unknown = sorted(set(kwargs) - {"prefetch_buffer", "dtype", "input_shape"})
        if unknown:
            raise TypeError(f"MNISTIter: unknown argument(s) {unknown}")
        images = read_idx(image)
        labels = read_idx(label)
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise ShapeError(f"MNISTIter: {os.fspath(image)} holds {images.shape} and "
                             f"{os.fspath(label)} holds {labels.shape}; expected (N, rows, cols) "
                             "images and N labels", expected="(N, rows, cols) and (N,)",
                             actual=(images.shape, labels.shape))
        if not 0 <= part_index < num_parts:
            raise ValueError(f"MNISTIter: part_index={part_index} must be in [0, {num_parts})")
        per_part = images.shape[0] // num_parts
        chosen = slice(part_index * per_part, (part_index + 1) * per_part)
        images, labels = images[chosen], labels[chosen]
        data = images.astype(np.float32) / 255.0
        data = data.reshape(len(data), -1) if flat else data.reshape((len(data), 1)
                                                                      + images.shape[1:])
        super().__init__(data, labels.astype(np.float32), batch_size=batch_size,
                         shuffle=shuffle, last_batch_handle="discard", data_name=data_name,
                         label_name=label_name, seed=seed, ctx=ctx)
