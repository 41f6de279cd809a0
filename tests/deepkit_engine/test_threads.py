"""The split of the cores between engine workers, BLAS and the kernel pool."""
import os
import threading

import numpy as np
import pytest

from deepkit_engine import threads


@pytest.fixture
def restore_split():
    """Put the split back (requested before monkeypatch, so its env is restored first)."""
    before = (threads._state.get("workers", 2), threads.blas_threads())
    yield
    threads.configure(before[0])


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_default_split_never_oversubscribes(restore_split, monkeypatch, workers):
    monkeypatch.delenv("DEEPKIT_BLAS_THREADS", raising=False)
    blas, pool = threads.configure(workers)
    assert blas >= 1 and pool >= 1
    assert blas * pool <= max(threads.cpu_cores(), 1)
    assert threads.pool_size() == pool
    assert f"{workers} engine workers" in threads.describe()


def test_blas_threads_knob(restore_split, monkeypatch):
    monkeypatch.setenv("DEEPKIT_BLAS_THREADS", "1")
    assert threads.configure(2) == (1, threads.cpu_cores())
    monkeypatch.setenv("DEEPKIT_BLAS_THREADS", "0")
    assert threads.configure(2) == (None, 1)
    assert "BLAS default" in threads.describe()


def test_parallel_map_keeps_order_and_runs_nested_calls_inline(monkeypatch):
    monkeypatch.setattr(threads, "_state", dict(threads._state, pool=None, pool_size=2))

    def inner(i):
        return threads.parallel_map(lambda j: i * 10 + j, range(3))
    assert threads.parallel_map(inner, range(4)) == [[i * 10 + j for j in range(3)]
                                                      for i in range(4)]
    threads._state["pool"].shutdown()


def test_unary_splits_large_contiguous_arrays(monkeypatch):
    monkeypatch.setattr(threads, "_state", dict(threads._state, pool=None, pool_size=3))
    monkeypatch.setattr(threads, "UNARY_MIN_SIZE", 1)
    x = np.linspace(-3, 3, 1001).reshape(7, 11, 13)
    out = np.empty_like(x)
    threads.unary(np, np.tanh, x, out)
    np.testing.assert_array_equal(out, np.tanh(x))
    strided = np.empty((7, 11, 26))[..., ::2]  # not contiguous: one call
    threads.unary(np, np.tanh, x, strided)
    np.testing.assert_array_equal(strided, np.tanh(x))
    threads._state["pool"].shutdown()


def test_processes_launched_on_one_machine_share_its_cores(restore_split, monkeypatch):
    for name in ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE",
                 "DEEPKIT_BLAS_THREADS"):
        monkeypatch.delenv(name, raising=False)
    assert threads.local_processes() == 1
    monkeypatch.setenv("MPI_LOCALNRANKS", "2")
    assert threads.local_processes() == 2
    monkeypatch.delenv("MPI_LOCALNRANKS")
    monkeypatch.setenv("SLURM_NTASKS_PER_NODE", "4(x3)")
    assert threads.local_processes() == 4
    monkeypatch.setattr(threads, "cpu_cores", lambda: 8)
    assert threads.configure(1) == (1, 2)  # 8 cores / 4 processes: a pool of 2 each


def test_matmul_splits_rows_over_the_pool(monkeypatch):
    monkeypatch.setattr(threads, "_state", dict(threads._state, pool=None, pool_size=3))
    monkeypatch.setattr(threads, "MATMUL_MIN_WORK", 1)
    calls = []
    real = np.matmul

    class Counting:
        """numpy with its matmul counted (one call per row block)."""

        def __getattr__(self, name):
            return getattr(np, name)

        @staticmethod
        def matmul(a, b, out=None):
            calls.append(a.shape[0])
            return real(a, b, out=out)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(10, 7)), rng.normal(size=(7, 5))
    out = np.empty((10, 5))
    threads.matmul(np, a, b, out)  # numpy itself: split on the pool
    np.testing.assert_allclose(out, a @ b, rtol=1e-14)
    counting = Counting()
    monkeypatch.setattr(threads, "np", counting)  # xp is "numpy" for the check below
    threads.matmul(counting, a, b, out)
    assert sorted(calls) == [2, 4, 4]
    np.testing.assert_allclose(out, a @ b, rtol=1e-14)
    calls.clear()
    threads.matmul(counting, a, b, np.empty((5, 10)).T)  # a non-contiguous out: one call
    assert calls == [10]
    # leading axes broadcast as in matmul; without out, a new array
    for left, right in (((2, 10, 7), (2, 7, 5)), ((10, 7), (3, 7, 5)), ((4, 1, 10, 7), (3, 7, 5))):
        x, y = rng.normal(size=left), rng.normal(size=right)
        calls.clear()
        np.testing.assert_allclose(threads.matmul(counting, x, y), np.matmul(x, y), rtol=1e-13)
        assert len(calls) == 3
    threads._state["pool"].shutdown()


def test_medium_products_run_wide_on_blas_threads_one_at_a_time(monkeypatch):
    monkeypatch.setattr(threads, "_state", dict(threads._state, blas=1, pool_size=2))
    monkeypatch.setattr(threads, "MATMUL_WIDE_MIN_WORK", 1)
    monkeypatch.setattr(threads, "MATMUL_MIN_WORK", 1 << 40)
    counts = []

    def fake_setter(n):  # records the thread-local BLAS thread counts asked for
        counts.append(n)
        return 1
    monkeypatch.setattr(threads, "_wide", dict(setter=fake_setter, looked=True,
                                               lock=threading.Lock()))
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(6, 5)), rng.normal(size=(5, 4))
    np.testing.assert_allclose(threads.matmul(np, a, b), a @ b, rtol=1e-14)
    assert counts == [2, 1]  # widened for the call, then restored
    counts.clear()
    with threads._wide["lock"]:  # another wide product is running: this one stays narrow
        out = np.empty((6, 4))
        threads.matmul(np, a, b, out)
    np.testing.assert_allclose(out, a @ b, rtol=1e-14)
    assert counts == []


def test_openblas_local_thread_setter_is_found_with_numpy_openblas():
    setter = threads._openblas_local_setter()
    if setter is None:
        pytest.skip("numpy's BLAS has no openblas_set_num_threads_local (OpenBLAS < 0.3.27)")
    previous = setter(2)
    assert setter(previous) == 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("accumulate", [False, True])
def test_gemm_nt_adds_or_writes_a_times_b_transposed_in_place(dtype, accumulate):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(7, 5)).astype(dtype)
    b = rng.normal(size=(9, 5)).astype(dtype)
    frame = rng.normal(size=(10, 20)).astype(dtype)
    before = frame.copy()
    target = frame[2:9, 3:12]  # rows of a larger array: its row stride is not its width
    threads.gemm_nt(a, b, target, accumulate)
    want = (before[2:9, 3:12] if accumulate else 0) + a.astype(np.float64) @ b.T
    if dtype == np.float32:
        np.testing.assert_allclose(target, want, rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_allclose(target, want, rtol=1e-12, atol=1e-12)
    outside = np.ones(frame.shape, bool)
    outside[2:9, 3:12] = False
    np.testing.assert_array_equal(frame[outside], before[outside])


def test_gemm_nt_falls_back_to_numpy_for_other_layouts_and_dtypes():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(6, 4))[:, ::2]  # columns not contiguous
    b = rng.normal(size=(3, 2))
    c = np.ones((6, 3))
    threads.gemm_nt(a, b, c, True)
    np.testing.assert_allclose(c, 1 + a @ b.T, rtol=1e-12)
    ints = np.arange(6).reshape(3, 2)
    out = np.zeros((3, 3), np.int64)
    threads.gemm_nt(ints, ints, out, False)
    np.testing.assert_array_equal(out, ints @ ints.T)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_can_run_a_group_its_parent_was_running():
    """A group running in the parent at the fork holds run_together's lock; the child
    gets a lock of its own (as it gets a pool of its own), so it never waits for it."""
    with threads._together_lock:
        pid = os.fork()
        if pid == 0:  # the child: exit code 0 only if the lock is free at once
            free = threads._together_lock.acquire(timeout=5)
            os._exit(0 if free else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("n, parts, lengths", [
    (10, 2, [5, 5]), (7, 2, [4, 3]), (3, 4, [1, 1, 1]), (5, 1, [5]), (0, 2, []),
])
def test_even_slices_cover_the_range_in_order_without_empty_parts(n, parts, lengths):
    slices = threads.even_slices(n, parts)
    assert [s.stop - s.start for s in slices] == lengths
    assert [i for s in slices for i in range(s.start, s.stop)] == list(range(n))
