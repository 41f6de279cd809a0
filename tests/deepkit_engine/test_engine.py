"""The dependency engine: ordering, concurrency, errors, waiting and exit."""
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from deepkit_engine import engine as engine_mod
from deepkit_engine import nd
from deepkit_engine.base import EngineError
from deepkit_engine.engine import NaiveEngine, ThreadedEngine, Var

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def threaded():
    eng = ThreadedEngine(cpu_workers=4)
    yield eng
    eng.shutdown()


def _random_program(seed, num_vars=40, num_ops=1500):
    """A random DAG: each op reads 0-3 variables and writes 1-2 others."""
    rng = np.random.default_rng(seed)
    program = []
    for k in range(num_ops):
        touched = rng.choice(num_vars, size=rng.integers(1, 6), replace=False)
        n_writes = min(len(touched), int(rng.integers(1, 3)))
        program.append((k, list(touched[n_writes:]), list(touched[:n_writes]),
                        bool(rng.random() < 0.3)))
    return program


def _run_program(eng, program, num_vars=40):
    values = [1] * num_vars
    variables = [Var() for _ in range(num_vars)]

    def make(k, reads, writes, pause):
        def fn():
            total = sum(values[r] for r in reads)
            if pause:
                time.sleep(0)  # let another worker interleave
            for w in writes:
                values[w] = (values[w] * 31 + total + k) % 1_000_003
        return fn
    for k, reads, writes, pause in program:
        eng.push(make(k, reads, writes, pause), [variables[r] for r in reads],
                 [variables[w] for w in writes], name=f"op{k}", inline=bool(k % 3 == 0))
    eng.wait_all()
    return values


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_dag_same_result_on_threaded_and_naive(seed, threaded):
    program = _random_program(seed)
    expected = _run_program(NaiveEngine(), program)
    assert _run_program(threaded, program) == expected
    # and again, to catch nondeterminism between runs of the threaded engine
    assert _run_program(threaded, program) == expected


def test_writes_run_in_push_order(threaded):
    v = Var()
    seen = []
    for i in range(200):
        threaded.push(lambda i=i: seen.append(i), (), (v,), name="append")
    threaded.wait_all()
    assert seen == list(range(200))


def _interval(log, key, seconds):
    def fn():
        start = time.perf_counter()
        a = np.random.default_rng(0).standard_normal((300, 300))
        end_at = start + seconds
        while time.perf_counter() < end_at:
            a = a @ a.T
            a /= np.abs(a).max()
        log[key] = (start, time.perf_counter())
    return fn


def test_independent_long_ops_overlap(threaded):
    log = {}
    threaded.push(_interval(log, "a", 0.3), (), (Var(),), name="a")
    threaded.push(_interval(log, "b", 0.3), (), (Var(),), name="b")
    threaded.wait_all()
    (s1, e1), (s2, e2) = log["a"], log["b"]
    assert s2 < e1 and s1 < e2, f"intervals did not overlap: a={log['a']} b={log['b']}"


def test_reads_run_together_and_a_write_waits_for_them(threaded):
    v = Var()
    log = {}
    threaded.push(_interval(log, "r1", 0.2), (v,), (), name="r1")
    threaded.push(_interval(log, "r2", 0.2), (v,), (), name="r2")
    threaded.push(_interval(log, "w", 0.01), (), (v,), name="w")
    threaded.wait_all()
    (s1, e1), (s2, e2), (sw, _) = log["r1"], log["r2"], log["w"]
    assert s2 < e1 and s1 < e2
    assert sw >= max(e1, e2)


def test_push_returns_before_large_work_finishes(threaded):
    log = {}
    v = Var()
    threaded.push(_interval(log, "slow", 0.3), (), (v,), name="slow")
    returned = time.perf_counter()
    threaded.wait_for_var(v)
    assert returned < log["slow"][1]


@pytest.mark.parametrize("make_engine", [NaiveEngine, lambda: ThreadedEngine(2)],
                         ids=["naive", "threaded"])
def test_error_spreads_to_dependents_and_is_raised_on_every_read(make_engine):
    eng = make_engine()
    a, b, c, fresh = Var(), Var(), Var(), Var()
    ran = []

    def boom():
        raise ZeroDivisionError("kaboom")
    eng.push(boom, (), (a,), name="FailingOp")
    eng.push(lambda: ran.append("b"), (a,), (b,), name="dependent")
    eng.push(lambda: ran.append("c"), (b,), (c,), name="grandchild")
    eng.push(lambda: ran.append("fresh"), (), (fresh,), name="independent")
    with pytest.raises(EngineError, match="FailingOp failed.*ZeroDivisionError: kaboom") as info:
        eng.wait_for_var(c)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert info.value.__cause__.__traceback__ is not None
    assert "b" not in ran and "c" not in ran  # dependents were skipped, not run on garbage
    assert "fresh" in ran
    for var in (c, c, a, a, b):  # every read raises, not only the first
        with pytest.raises(EngineError, match="FailingOp"):
            eng.wait_for_var(var)
    # the engine keeps working
    d = Var()
    eng.push(lambda: ran.append("after"), (), (d,), name="after")
    eng.wait_for_var(d)
    assert ran[-1] == "after"
    eng.wait_all()
    eng.shutdown()


def test_wait_all_raises_first_error_once(threaded):
    def boom():
        raise ValueError("bad value")
    threaded.push(boom, (), (Var(),), name="Broken")
    with pytest.raises(EngineError, match="Broken"):
        threaded.wait_all()
    threaded.wait_all()  # cleared
    done = Var()
    out = []
    threaded.push(lambda: out.append(1), (), (done,))
    threaded.wait_all()
    assert out == [1]


def test_waiting_inside_pushed_work_is_refused(threaded):
    other = Var()
    target = Var()
    threaded.push(lambda: time.sleep(0.05), (), (other,), name="slow")
    threaded.push(lambda: threaded.wait_for_var(other), (), (target,), name="nested_wait")
    with pytest.raises(EngineError, match="deadlock"):
        threaded.wait_for_var(target)


def test_concurrent_pushers_keep_per_variable_order(threaded):
    v = Var()
    seen = []
    lock = threading.Lock()

    def pusher(tag):
        for i in range(300):
            threaded.push(lambda i=i: seen.append((tag, i)), (), (v,), inline=i % 2 == 0)
    threads = [threading.Thread(target=pusher, args=(t,)) for t in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    threaded.wait_all()
    with lock:
        for tag in "ab":
            assert [i for t, i in seen if t == tag] == list(range(300))


def test_set_engine_switches_and_restores():
    old = engine_mod.set_engine("naive")
    try:
        assert engine_mod.engine_type() == "naive"
        assert isinstance(engine_mod.get_engine(), NaiveEngine)
    finally:
        engine_mod.set_engine(old)
    assert engine_mod.engine_type() == old
    with pytest.raises(ValueError, match="threaded.*naive"):
        engine_mod.set_engine("fast")


def _python(code, env_extra=None, timeout=60):
    import os  # noqa: PLC0415
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_engine_chosen_by_environment_variable():
    code = "import deepkit_engine as dk; print(dk.engine.engine_type())"
    assert _python(code, {"DEEPKIT_ENGINE": "naive"}).stdout.strip() == "naive"
    assert _python(code, {"DEEPKIT_ENGINE": "threaded"}).stdout.strip() == "threaded"
    bad = _python(code, {"DEEPKIT_ENGINE": "turbo"})
    assert bad.returncode != 0 and "DEEPKIT_ENGINE" in bad.stderr


def test_no_lost_work_and_no_hang_at_exit(tmp_path):
    target = tmp_path / "written.txt"
    code = f"""
        import time
        from deepkit_engine import engine
        v = engine.new_var()
        def slow():
            time.sleep(0.3)
            open({str(target)!r}, "w").write("done")
        engine.push(slow, (), (v,), name="slow")
        # exit without waiting
    """
    result = _python(code, timeout=60)
    assert result.returncode == 0, result.stderr
    assert target.read_text() == "done"


@pytest.mark.parametrize("make_engine", [NaiveEngine, lambda: ThreadedEngine(2)],
                         ids=["naive", "threaded"])
def test_a_failed_variable_raises_until_overwritten_and_in_place_work_is_skipped(make_engine):
    eng = make_engine()
    a = Var()
    ran = []

    def boom():
        raise ValueError("bad")
    eng.push(boom, (), (a,), name="Producer")
    eng.push(lambda: ran.append("update"), (a,), (a,), name="in_place")  # reads a: skipped
    for _ in range(3):
        with pytest.raises(EngineError, match="Producer failed"):
            eng.wait_for_var(a)
    assert ran == []
    eng.push(lambda: ran.append("overwrite"), (), (a,), name="overwrite")
    eng.wait_for_var(a)  # overwritten: readable again
    eng.push(lambda: ran.append("update"), (a,), (a,), name="in_place")
    eng.wait_for_var(a)
    assert ran == ["overwrite", "update"]
    eng.wait_all()  # already reported by the waits above
    eng.shutdown()


def test_an_ndarray_whose_op_failed_keeps_raising_until_overwritten():
    a = nd.array([[1.0, 2.0], [3.0, 4.0]])
    got = nd.take(a, nd.array([0, 9]), mode="raise")
    for _ in range(3):
        with pytest.raises(EngineError, match="take"):
            got.asnumpy()
    with pytest.raises(EngineError):
        (got + 1).asnumpy()
    got[:] = 5.0
    np.testing.assert_array_equal(got.asnumpy(), np.full((2, 2), 5.0))


def test_naive_engine_loses_no_updates_under_threads():
    previous = engine_mod.set_engine("naive")
    try:
        counter = nd.zeros((1 << 20,))  # large enough for numpy to release the GIL
        errors = []

        def work():
            try:
                for _ in range(50):
                    counter.__iadd__(1.0)
            except Exception as err:  # noqa: BLE001 - reported below
                errors.append(err)
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        np.testing.assert_array_equal(counter.asnumpy(), np.full(1 << 20, 200.0))
    finally:
        engine_mod.set_engine(previous)


# -- bulk execution -------------------------------------------------------------------------

def _count_pushes(monkeypatch, eng):
    pushed = []
    real = eng._push

    def counting(fn, reads, writes, ctx, name, *args, **kwargs):
        pushed.append(name)
        return real(fn, reads, writes, ctx, name, *args, **kwargs)
    monkeypatch.setattr(eng, "_push", counting)
    return pushed


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("size", [2, 7, 1000])
def test_bulk_keeps_the_results_of_a_random_program(threaded, seed, size):
    program = _random_program(seed, num_ops=400)
    expected = _run_program(NaiveEngine(), program)
    with engine_mod.bulk(size):
        got = _run_program(threaded, program)  # its wait_all flushes inside the block
    assert got == expected


def test_bulk_gathers_pushes_into_one_operation(monkeypatch):
    eng = engine_mod.get_engine()
    if not isinstance(eng, ThreadedEngine):
        pytest.skip("bulk gathers work on the threaded engine only (DEEPKIT_ENGINE=naive)")
    x = nd.array(np.arange(6.0))
    x.wait_to_read()
    pushed = _count_pushes(monkeypatch, eng)
    with engine_mod.bulk():
        y = x + 1
        z = y * 2
        z -= x
        assert pushed == []  # gathered, not pushed
    assert len(pushed) == 1 and pushed[0].startswith("bulk of 3")
    np.testing.assert_array_equal(z.asnumpy(), (np.arange(6.0) + 1) * 2 - np.arange(6.0))
    pushed.clear()
    with engine_mod.bulk(size=2):
        for _ in range(5):
            x += 1
    assert len(pushed) == 3  # 2 + 2 + 1
    np.testing.assert_array_equal(x.asnumpy(), np.arange(6.0) + 5)


def test_bulk_flushes_before_a_wait_and_between_devices(monkeypatch):
    from deepkit_engine import cpu  # noqa: PLC0415
    eng = engine_mod.get_engine()
    if not isinstance(eng, ThreadedEngine):
        pytest.skip("bulk gathers work on the threaded engine only (DEEPKIT_ENGINE=naive)")
    a = nd.ones((3,), ctx=cpu(0))
    b = nd.ones((3,), ctx=cpu(1))
    a.wait_to_read(), b.wait_to_read()
    pushed = _count_pushes(monkeypatch, eng)
    with engine_mod.bulk():
        a2 = a * 3
        np.testing.assert_array_equal(a2.asnumpy(), [3, 3, 3])  # flushed, no deadlock
        assert len(pushed) == 2  # the gathered multiply, then the wait's own marker
        b2 = b + 1
        a3 = a2 + 1  # another device: b's piece goes first
        assert len(pushed) == 3
    np.testing.assert_array_equal(b2.asnumpy(), [2, 2, 2])
    np.testing.assert_array_equal(a3.asnumpy(), [4, 4, 4])


def test_a_failing_piece_poisons_what_the_bulk_writes(threaded):
    first, second = Var(), Var()

    def boom():
        raise ValueError("bad piece")
    with engine_mod.bulk():
        threaded.push(lambda: None, (), (first,), name="fine")
        threaded.push(boom, (), (second,), name="broken")
    with pytest.raises(EngineError, match="broken failed: ValueError: bad piece"):
        threaded.wait_for_var(second)
    with pytest.raises(EngineError, match="bad piece"):
        threaded.wait_for_var(first)  # the bulk wrote it too


def test_a_pushing_thread_runs_at_most_run_ahead_ops_ahead(threaded, monkeypatch):
    monkeypatch.setattr(engine_mod, "RUN_AHEAD", 4)
    monkeypatch.setattr(engine_mod, "RUN_AHEAD_WAIT", 30.0)
    var = Var()
    order, most_pending = [], 0
    for k in range(20):
        threaded.push(lambda k=k: (time.sleep(0.002), order.append(k)), writes=[var])
        most_pending = max(most_pending, threaded._pending)
    threaded.wait_all()
    assert order == list(range(20))
    assert most_pending <= 5


def test_the_run_ahead_wait_is_bounded_so_work_waiting_on_later_pushes_finishes(
        threaded, monkeypatch):
    monkeypatch.setattr(engine_mod, "RUN_AHEAD", 2)
    monkeypatch.setattr(engine_mod, "RUN_AHEAD_WAIT", 0.05)
    released = threading.Event()
    blocked, free = Var(), Var()
    threaded.push(lambda: released.wait(20), writes=[blocked])  # done only after the last push
    for _ in range(4):  # queued behind it: the pusher is now past its run-ahead
        threaded.push(lambda: None, writes=[blocked])
    start = time.perf_counter()
    threaded.push(released.set, writes=[free])
    threaded.wait_all()
    assert released.is_set() and time.perf_counter() - start < 5
