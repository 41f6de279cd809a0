"""Several CPU devices: cpu(k) is a device of its own, with its own engine workers."""
import threading

import numpy as np
import pytest

from deepkit_engine import Context, cpu, nd
from deepkit_engine.engine import ThreadedEngine, Var


def test_cpu_contexts_compare_and_hash_by_id():
    assert cpu(1) == Context("cpu", 1) and cpu(0) == cpu()
    assert cpu(0) != cpu(1)
    assert hash(cpu(1)) == hash(Context("cpu", 1))
    assert len({cpu(0), cpu(1), Context("cpu", 1)}) == 2
    assert {cpu(0): "a", cpu(1): "b"}[Context("cpu", 1)] == "b"


def test_arrays_live_on_cpu1_and_move_between_cpus():
    a = nd.ones((2,), ctx=cpu(1))
    assert a.ctx == cpu(1)
    b = (a * 3 + 1)
    assert b.ctx == cpu(1)
    np.testing.assert_array_equal(b.asnumpy(), 4.0)
    c = b.copyto(cpu(0))
    assert c.ctx == cpu(0)
    np.testing.assert_array_equal(c.asnumpy(), 4.0)
    d = nd.zeros((2,), ctx=cpu(1))
    c.copyto(d)
    np.testing.assert_array_equal(d.asnumpy(), 4.0)
    assert b.as_in_context(cpu(1)) is b
    moved = b.as_in_context(cpu(0))
    assert moved is not b and moved.ctx == cpu(0)
    np.testing.assert_array_equal(moved.asnumpy(), 4.0)


def test_ops_refuse_mixed_cpu_devices():
    with pytest.raises(Exception, match="different contexts"):
        (nd.ones((2,), ctx=cpu(0)) + nd.ones((2,), ctx=cpu(1))).asnumpy()


def test_each_cpu_device_has_its_own_worker_pool():
    engine = ThreadedEngine(cpu_workers=1)
    try:
        started, released = threading.Event(), threading.Event()
        result = {}

        def on_cpu0():  # occupies cpu(0)'s only worker until cpu(1)'s work runs
            started.set()
            result["cpu0"] = released.wait(20)

        engine.push(on_cpu0, (), (Var(),), cpu(0), "blocker")
        assert started.wait(20)
        engine.push(released.set, (), (Var(),), cpu(1), "releaser")
        engine.wait_all()
        assert result["cpu0"] is True  # with one shared pool this would have timed out
        names = [t.name for t in engine._threads]
        assert sum("cpu0" in n for n in names) == 1
        assert sum("cpu1" in n for n in names) == 1  # one worker per extra CPU device
    finally:
        engine.shutdown()


def test_default_cpu_pool_keeps_its_size():
    engine = ThreadedEngine(cpu_workers=3)
    try:
        engine.push(lambda: None, (), (Var(),), None, "no context")
        engine.push(lambda: None, (), (Var(),), cpu(2), "cpu2")
        engine.wait_all()
        names = [t.name for t in engine._threads]
        assert sum("cpu0" in n for n in names) == 3
        assert sum("cpu2" in n for n in names) == 1
    finally:
        engine.shutdown()
