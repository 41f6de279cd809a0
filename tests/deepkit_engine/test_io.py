"""Data iterators: NDArrayIter's epoch modes, shuffling, lazy sources, prefetching, CSV."""
import gc
import threading
import time

import numpy as np
import pytest

import deepkit_engine as dk
from deepkit_engine import io
from deepkit_engine import generators
from deepkit_engine.base import ShapeError

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def global_seed(monkeypatch):
    """Seeds the global generator for one test; the previous seed comes back afterwards."""
    monkeypatch.setattr(generators, "_seed_value", generators.seed_value())

    def set_seed(value):
        dk.random.seed(value)
    return set_seed


def _epoch(it):
    """(samples, pads) of one epoch: the first data column of every batch."""
    samples, pads = [], []
    for batch in it:
        rows = batch.data[0].asnumpy()[:, 0].astype(int)
        labels = batch.label[0].asnumpy().astype(int)
        np.testing.assert_array_equal(rows, labels)  # data and label stay aligned
        np.testing.assert_array_equal(batch.index, rows)
        samples.append(rows)
        pads.append(batch.pad)
    return samples, pads


def _source(n):
    return np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)


# -- NDArrayIter ---------------------------------------------------------------
@pytest.mark.parametrize("shuffle", [False, True])
def test_pad_every_sample_once_per_epoch(shuffle):
    it = io.NDArrayIter(_source(10), np.arange(10), batch_size=4, shuffle=shuffle,
                        last_batch_handle="pad", seed=1)
    for _ in range(3):
        batches, pads = _epoch(it)
        assert pads == [0, 0, 2]
        real = np.concatenate(batches)[:10]
        assert sorted(real) == list(range(10))
        # the filler repeats the first samples of this epoch's order
        np.testing.assert_array_equal(batches[-1][2:], batches[0][:2])
        it.reset()


@pytest.mark.parametrize("shuffle", [False, True])
def test_discard_drops_only_the_incomplete_batch(shuffle):
    it = io.NDArrayIter(_source(10), np.arange(10), batch_size=4, shuffle=shuffle,
                        last_batch_handle="discard", seed=1)
    for _ in range(3):
        batches, pads = _epoch(it)
        assert pads == [0, 0]
        seen = np.concatenate(batches)
        assert len(set(seen.tolist())) == 8  # no sample twice
        it.reset()


@pytest.mark.parametrize("shuffle", [False, True])
def test_roll_over_uses_every_sample_once_per_pass(shuffle):
    it = io.NDArrayIter(_source(10), np.arange(10), batch_size=4, shuffle=shuffle,
                        last_batch_handle="roll_over", seed=1)
    stream, counts = [], []
    for _ in range(5):
        batches, pads = _epoch(it)
        assert all(p == 0 for p in pads) and all(len(b) == 4 for b in batches)
        counts.append(len(batches))
        stream.extend(np.concatenate(batches).tolist())
        it.reset()
    assert counts == [2, 3, 2, 3, 2]
    # the stream is the epochs' orders one after the other: each block of 10 is a permutation
    for start in range(0, len(stream) - 9, 10):
        assert sorted(stream[start:start + 10]) == list(range(10))
    if not shuffle:
        assert stream == [i % 10 for i in range(len(stream))]


def test_last_batch_modes_match_mxnet():
    # MXNet's own test: 1000 samples, batch 128 -> 8 / 7 / 7 batches; after reset the first
    # roll_over batch equals the last 'pad' batch.
    data = np.repeat(np.arange(1000, dtype=np.float32), 4).reshape(1000, 2, 2)
    labels = np.arange(1000) // 100
    counts, label_counts = {}, {}
    for mode in ("pad", "discard", "roll_over"):
        it = io.NDArrayIter(data, labels, 128, False, last_batch_handle=mode)
        batches = list(it)
        counts[mode] = len(batches)
        seen = np.concatenate([b.label[0].asnumpy() for b in batches]).astype(int)
        label_counts[mode] = (np.sum(seen == 0), np.sum(seen == 8))
        if mode == "pad":
            last_pad_batch = batches[-1].data[0].asnumpy()
    assert counts == {"pad": 8, "discard": 7, "roll_over": 7}
    assert label_counts == {"pad": (124, 100), "discard": (100, 96), "roll_over": (100, 96)}
    it.reset()
    np.testing.assert_array_equal(it.next().data[0].asnumpy(), last_pad_batch)


def test_batch_larger_than_data_is_padded():
    it = io.NDArrayIter(_source(3), np.arange(3), batch_size=8)
    (rows,), pads = _epoch(it)
    assert pads == [5] and rows.tolist() == [0, 1, 2, 0, 1, 2, 0, 1]


def test_shuffle_is_reproducible_by_global_seed(global_seed):
    def orders(it, epochs=3):
        out = []
        for _ in range(epochs):
            out.append(np.concatenate(_epoch(it)[0]).tolist())
            it.reset()
        return out

    global_seed(7)
    first = orders(io.NDArrayIter(_source(20), np.arange(20), 5, shuffle=True))
    global_seed(7)
    again = orders(io.NDArrayIter(_source(20), np.arange(20), 5, shuffle=True))
    global_seed(8)
    other = orders(io.NDArrayIter(_source(20), np.arange(20), 5, shuffle=True))
    assert first == again
    assert first != other
    assert first[0] != first[1]  # a new order every epoch
    assert first[0] != list(range(20))
    explicit = orders(io.NDArrayIter(_source(20), np.arange(20), 5, shuffle=True, seed=3))
    assert explicit == orders(io.NDArrayIter(_source(20), np.arange(20), 5, shuffle=True,
                                             seed=3))


def test_named_data_and_labels():
    x1 = np.arange(12, dtype=np.float32).reshape(6, 2)
    x2 = np.arange(6, dtype=np.int32)
    it = io.NDArrayIter({"a": x1, "b": x2}, {"y": np.arange(6, dtype=np.float32)}, 4,
                        dtype=None)
    assert [d.name for d in it.provide_data] == ["a", "b"]
    assert it.provide_data[0].shape == (4, 2) and it.provide_data[1].dtype == np.int32
    assert it.provide_label[0] == ("y", (4,))
    name, shape = it.provide_data[0]  # unpacks like MXNet's DataDesc
    assert (name, shape) == ("a", (4, 2))
    batch = it.next()
    assert batch.data[1].dtype == np.int32
    np.testing.assert_array_equal(batch.data[0].asnumpy(), x1[:4])
    listed = io.NDArrayIter([x1, x2], None, 2)
    assert [d.name for d in listed.provide_data] == ["_0_data", "_1_data"]
    assert listed.provide_data[1].dtype == np.float32  # float32 by default, as in MXNet
    assert listed.next().data[1].dtype == np.float32
    assert listed.provide_label == [] and listed.next().label == []


def test_length_mismatch_names_the_arrays():
    with pytest.raises(ShapeError, match=r"label 'softmax_label' has 9 samples but data "
                                         r"'data' has 10"):
        io.NDArrayIter(_source(10), np.arange(9), 4)
    with pytest.raises(ShapeError, match="data 'b' has 3 samples"):
        io.NDArrayIter({"a": _source(4), "b": _source(3)}, None, 2)
    with pytest.raises(ValueError, match="last_batch_handle"):
        io.NDArrayIter(_source(4), None, 2, last_batch_handle="keep")
    with pytest.raises(ValueError, match="batch_size"):
        io.NDArrayIter(_source(4), None, 0)
    with pytest.raises(ValueError, match="no samples"):
        io.NDArrayIter(np.zeros((0, 3)), None, 2)


class _RecordingDataset:
    """Wraps an h5py dataset and records every read."""

    def __init__(self, dataset):
        self.dataset, self.reads = dataset, []
        self.shape, self.dtype = dataset.shape, dataset.dtype

    def __getitem__(self, key):
        self.reads.append(key)
        return self.dataset[key]


def test_h5py_datasets_stream_batch_by_batch(tmp_path):
    h5py = pytest.importorskip("h5py")
    x = np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32)
    y = np.arange(50, dtype=np.int64)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["x"], f["y"] = x, y
    with h5py.File(tmp_path / "d.h5", "r") as f:
        xs = _RecordingDataset(f["x"])
        it = io.NDArrayIter(xs, f["y"], batch_size=8, shuffle=True, seed=0)
        seen = []
        for batch in it:
            idx = batch.label[0].asnumpy().astype(int)
            np.testing.assert_array_equal(batch.data[0].asnumpy(), x[idx])
            seen.extend(idx[:8 - batch.pad].tolist())
        assert sorted(seen) == list(range(50))
        for key in xs.reads:  # never the whole dataset; fancy reads in increasing order
            rows = np.arange(50)[key]
            assert len(rows) <= 8
            assert np.all(np.diff(rows) > 0)


def test_memmap_source(tmp_path):
    path = tmp_path / "x.npy"
    x = np.arange(60, dtype=np.float32).reshape(20, 3)
    np.save(path, x)
    mm = np.load(path, mmap_mode="r+")
    for shuffle in (True, False):
        it = io.NDArrayIter(mm, np.arange(20), batch_size=6, shuffle=shuffle, seed=2)
        for batch in it:
            idx = batch.label[0].asnumpy().astype(int)
            np.testing.assert_array_equal(batch.data[0].asnumpy(), x[idx])
            batch.data[0][:] = -1  # batches are copies: the file is untouched
    np.testing.assert_array_equal(np.load(path), x)


def test_ndarray_source_and_iteration_protocol():
    x = dk.nd.array(_source(5))
    it = io.NDArrayIter(x, None, batch_size=2, last_batch_handle="discard")
    assert it.iter_next()
    np.testing.assert_array_equal(it.getdata()[0].asnumpy(), _source(5)[:2])
    assert it.getpad() == 0
    assert len(list(it)) == 1
    it.reset()
    assert len(list(it)) == 2


def test_timing_counts_batches():
    it = io.NDArrayIter(_source(10), None, 5)
    list(it)
    assert it.timing.batches == 2
    assert it.timing.wait_s > 0 and it.timing.wait_s == pytest.approx(it.timing.produce_s)
    it.timing.reset()
    assert it.timing.as_dict()["batches"] == 0


def test_seed_sequence_derives_from_the_global_seed(global_seed):
    global_seed(11)
    a = io.seed_sequence("x").generate_state(2)
    b = io.seed_sequence("x").generate_state(2)
    c = io.seed_sequence("y").generate_state(2)
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()


# -- ResizeIter ----------------------------------------------------------------
def test_resize_iter():
    inner = io.NDArrayIter(_source(6), np.arange(6), 2)
    it = io.ResizeIter(inner, 5)
    rows = [b.label[0].asnumpy().astype(int).tolist() for b in it]
    assert rows == [[0, 1], [2, 3], [4, 5], [0, 1], [2, 3]]
    it.reset()
    assert len(list(it)) == 5
    assert it.provide_data == inner.provide_data
    short = io.ResizeIter(io.NDArrayIter(_source(6), np.arange(6), 2), 2)
    assert len(list(short)) == 2


# -- PrefetchingIter -------------------------------------------------------------
def _prefetch_threads():
    return [t for t in threading.enumerate() if t.name == "deepkit-prefetch" and t.is_alive()]


class _SlowIter(io.DataIter):
    """Yields ``n`` batches; records when each batch's production starts and ends."""

    def __init__(self, n, delay, fail_at=None):
        super().__init__(batch_size=1)
        self.n, self.delay, self.fail_at = n, delay, fail_at
        self.i = 0
        self.produced = []  # (batch number, start, end)
        self.provide_data = [io.DataDesc("data", (1,))]
        self.provide_label = []

    def reset(self):
        self.i = 0

    def next(self):  # noqa: A003
        if self.i >= self.n:
            raise StopIteration
        if self.i == self.fail_at:
            raise ValueError(f"bad record {self.i}")
        start = time.perf_counter()
        time.sleep(self.delay)
        k = self.i
        self.i += 1
        self.produced.append((k, start, time.perf_counter()))
        return io.DataBatch([dk.nd.array([k])], [], index=np.array([k]))


def test_prefetch_overlaps_producer_and_consumer():
    inner = _SlowIter(8, 0.03)
    consumed = []  # (batch number, start, end) of the consumer's work
    with io.PrefetchingIter(inner, capacity=2) as it:
        for batch in it:
            start = time.perf_counter()
            time.sleep(0.03)  # the "compute"
            consumed.append((int(batch.index[0]), start, time.perf_counter()))
    assert [k for k, _, _ in consumed] == list(range(8))
    produced = {k: (s, e) for k, s, e in inner.produced}
    # batch k+1 was being produced while the consumer worked on batch k
    overlaps = [k for k, c_start, c_end in consumed[:-1]
                if produced[k + 1][0] < c_end and produced[k + 1][1] > c_start]
    assert len(overlaps) >= len(consumed) // 2, (inner.produced, consumed)
    assert it.timing.batches == 8
    assert it.timing.produce_s >= sum(e - s for _, s, e in inner.produced) * 0.99


def test_prefetch_exception_reaches_consumer():
    it = io.PrefetchingIter(_SlowIter(5, 0.0, fail_at=2))
    assert int(it.next().index[0]) == 0
    assert int(it.next().index[0]) == 1
    with pytest.raises(ValueError, match="bad record 2") as info:
        it.next()
    # the traceback reaches back into the producer's next()
    assert any(entry.name == "next" and "test_io" in str(entry.path)
               for entry in info.traceback)
    with pytest.raises(StopIteration):
        it.next()
    it.close()


def test_prefetch_reset_and_multiple_iters():
    a = io.NDArrayIter(_source(6), np.arange(6), 2)
    b = io.NDArrayIter(_source(6) * 10, np.arange(6), 2)
    with io.PrefetchingIter([a, b], rename_data=[{"data": "a"}, {"data": "b"}],
                            rename_label=[{"softmax_label": "ya"}, {"softmax_label": "yb"}]) as it:
        assert [d.name for d in it.provide_data] == ["a", "b"]
        assert [d.name for d in it.provide_label] == ["ya", "yb"]
        first = it.next()
        assert len(first.data) == 2
        np.testing.assert_array_equal(first.data[1].asnumpy(), first.data[0].asnumpy() * 10)
        it.reset()  # mid-epoch
        assert len(list(it)) == 3
        it.reset()
        assert len(list(it)) == 3


def test_prefetch_close_leaves_no_thread():
    before = _prefetch_threads()
    it = io.PrefetchingIter(_SlowIter(100, 0.01))
    it.next()
    assert len(_prefetch_threads()) == len(before) + 1
    it.close()
    it.close()  # idempotent
    assert _prefetch_threads() == before
    with pytest.raises(RuntimeError, match="closed"):
        it.next()


def test_prefetch_garbage_collection_leaves_no_thread():
    before = _prefetch_threads()
    it = io.PrefetchingIter(io.NDArrayIter(_source(100), None, 1), capacity=1)
    it.next()  # the producer is now blocked on a full queue
    del it
    gc.collect()
    assert _prefetch_threads() == before


def test_prefetch_unconsumed_epoch_in_a_cycle_is_collected():
    before = _prefetch_threads()
    it = io.PrefetchingIter(io.NDArrayIter(_source(10), None, 1))
    it.self_reference = it  # only the cycle collector can free it
    del it
    gc.collect()
    assert _prefetch_threads() == before


# -- CSVIter -------------------------------------------------------------------
def test_csv_iter(tmp_path):
    data = np.arange(5 * 6, dtype=np.float32).reshape(5, 6)
    labels = np.arange(5, dtype=np.float32)
    np.savetxt(tmp_path / "d.csv", data, delimiter=",")
    np.savetxt(tmp_path / "l.csv", labels, delimiter=",")
    it = io.CSVIter(data_csv=tmp_path / "d.csv", data_shape=(2, 3), label_csv=tmp_path / "l.csv",
                    batch_size=2)
    assert it.provide_data[0].shape == (2, 2, 3) and it.provide_label[0].shape == (2,)
    batches = list(it)
    assert [b.pad for b in batches] == [0, 0, 1]
    np.testing.assert_array_equal(batches[0].data[0].asnumpy(), data[:2].reshape(2, 2, 3))
    np.testing.assert_array_equal(batches[2].label[0].asnumpy(), [4, 0])  # round robin
    zero = io.CSVIter(tmp_path / "d.csv", (6,), batch_size=2, round_batch=False)
    last = list(zero)[-1]
    assert last.pad == 1
    np.testing.assert_array_equal(last.data[0].asnumpy()[1], np.zeros(6))
    np.testing.assert_array_equal(last.label[0].asnumpy(), [0, 0])  # no label file: zeros


def test_csv_iter_errors(tmp_path):
    np.savetxt(tmp_path / "d.csv", np.ones((4, 5)), delimiter=",")
    np.savetxt(tmp_path / "l.csv", np.ones(3), delimiter=",")
    with pytest.raises(ShapeError, match=r"d\.csv' has 5 columns per row but shape \(2, 3\) "
                                         "needs 6"):
        io.CSVIter(tmp_path / "d.csv", (2, 3), batch_size=2)
    with pytest.raises(ShapeError, match=r"l\.csv' has 3 rows but data_csv .* has 4"):
        io.CSVIter(tmp_path / "d.csv", (5,), label_csv=tmp_path / "l.csv", batch_size=2)
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        io.CSVIter(tmp_path / "missing.csv", (5,))
    (tmp_path / "bad.csv").write_text("1,2\n3,x\n")
    with pytest.raises(ValueError, match="bad.csv"):
        io.CSVIter(tmp_path / "bad.csv", (2,))


def test_ndarray_iter_parts_cover_the_data_once_without_dropping():
    data = np.arange(10, dtype=np.float32).reshape(10, 1)
    seen = []
    for part in range(3):
        it = io.NDArrayIter(data, batch_size=2, num_parts=3, part_index=part,
                         last_batch_handle="pad")
        rows = [b.data[0].asnumpy()[:2 - b.pad, 0] for b in it]
        seen.extend(np.concatenate(rows).tolist())
        assert it.num_data == (4 if part == 0 else 3)
    assert sorted(seen) == list(range(10))
    with pytest.raises(ValueError, match="part_index must be in \\[0, 3\\)"):
        io.NDArrayIter(data, num_parts=3, part_index=3)
    with pytest.raises(ValueError, match="num_parts must be a positive int"):
        io.NDArrayIter(data, num_parts=0)
    with pytest.raises(ValueError, match="is empty"):
        io.NDArrayIter(data[:2], num_parts=3, part_index=2)
