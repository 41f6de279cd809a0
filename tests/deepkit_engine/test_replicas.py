"""Replica groups: devices of one data-parallel step summing vectors mid-pass."""
import threading

import numpy as np
import pytest

from deepkit_engine import engine
from deepkit_engine.replicas import ReplicaError, ReplicaGroup


def _run_devices(group, vectors):
    """Each device's ``allreduce`` on its own thread; returns results or exceptions."""
    results = [None] * len(vectors)

    def device(k):
        try:
            results[k] = group.allreduce(k, vectors[k], "test sums")
        except Exception as err:  # noqa: BLE001 - collected for the assertions
            results[k] = err
    threads = [threading.Thread(target=device, args=(k,)) for k in range(len(vectors))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return results


def test_sums_in_device_order_repeatedly_and_across_ranks():
    calls = []

    def across(total):
        calls.append(total.copy())
        return total * 2  # as if a second rank gave the same
    group = ReplicaGroup(3, reduce_across=across)
    for round_ in range(3):
        vectors = [np.full(4, k + round_, float) for k in range(3)]
        for result in _run_devices(group, vectors):
            np.testing.assert_array_equal(result, 2 * sum(vectors))
    assert len(calls) == 3  # once per collective, by the last device to arrive


def test_devices_with_different_vectors_are_refused_naming_the_shapes():
    group = ReplicaGroup(2, timeout=5)
    results = _run_devices(group, [np.zeros(3), np.zeros(4)])
    assert all(isinstance(r, ReplicaError) for r in results)
    assert "shapes [(3,), (4,)]" in str(results[0]) and "same graph" in str(results[0])


def test_weights_must_match_the_devices():
    with pytest.raises(ValueError, match="2 weights for 3 devices"):
        ReplicaGroup(3, weights=[0.5, 0.5])
    assert ReplicaGroup(2, weights=[0.25, 0.75]).replica(1).weight == 0.75


def test_the_naive_engine_is_refused_up_front():
    previous = engine.set_engine("naive")
    try:
        with pytest.raises(ReplicaError, match="threaded engine"):
            ReplicaGroup.check_engine()
    finally:
        engine.set_engine(previous)
    engine.set_engine("threaded")
    try:
        ReplicaGroup.check_engine()  # the threaded engine: fine
    finally:
        engine.set_engine(previous)
