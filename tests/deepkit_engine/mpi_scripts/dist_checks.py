"""Run under ``mpirun -np 2``: checks of deepkit_engine.dist and the dist KVStore.

Each check prints ``PASS <name> rank <r>``; any failure raises, so the rank
exits non-zero and mpirun reports it. tests/deepkit_engine/test_dist_mpi.py
runs this script and reads the lines.
"""
import sys

import numpy as np

from deepkit_engine import cpu, dist, kvstore, nd


def passed(name):
    print(f"PASS {name} rank {dist.rank()}", flush=True)


def check_ranks():
    r, n = dist.init()
    assert (r, n) == (dist.rank(), dist.size()) and n == 2, (r, n)
    assert dist.is_initialized()
    assert dist.local_rank() == r  # one machine: the local rank is the rank
    passed("ranks")


def check_allreduce():
    r, n = dist.rank(), dist.size()
    a = np.arange(6, dtype=np.float64).reshape(2, 3) + 10 * r
    out = dist.allreduce_(a)
    assert out is a
    np.testing.assert_array_equal(a, 2 * np.arange(6).reshape(2, 3) + 10)
    b = np.full(4, 3.0 + r, np.float32)
    dist.allreduce_(b, average=True)
    np.testing.assert_allclose(b, 3.5)
    c = np.array([1, 2, 3], np.int32) * (r + 1)
    dist.allreduce_(c, average=True)  # (1+2)/2, (2+4)/2, (3+6)/2 floored
    np.testing.assert_array_equal(c, [1, 3, 4])
    h = np.full(3, 0.5 + r, np.float16)
    dist.allreduce_(h)
    assert h.dtype == np.float16
    np.testing.assert_array_equal(h, 2.0)
    base = np.zeros(10)
    base[::2] = r + 1  # a strided view: staged through a contiguous buffer
    dist.allreduce_(base[::2])
    np.testing.assert_array_equal(base, [3, 0] * 5)
    passed("allreduce")


def check_allreduce_many():
    r = dist.rank()
    arrays = [np.full((50,), 1.0 + r, np.float32), np.full((3, 4), 2.0 * (r + 1), np.float32),
              np.arange(7, dtype=np.int64) + r, np.full((300,), r, np.float64),
              np.zeros((0,), np.float32), np.full((2, 2), 1.0 + r, np.float16)]
    handle = dist.allreduce_many(arrays, bucket_mb=0.001)  # ~1 KB: several buckets
    assert len(handle._requests) >= 4, len(handle._requests)
    result = handle.wait()
    assert len(result) == len(arrays) and all(x is y for x, y in zip(result, arrays))
    np.testing.assert_array_equal(arrays[0], 3.0)
    np.testing.assert_array_equal(arrays[1], 6.0)
    np.testing.assert_array_equal(arrays[2], 2 * np.arange(7) + 1)
    np.testing.assert_array_equal(arrays[3], 1.0)
    np.testing.assert_array_equal(arrays[5], 3.0)
    assert handle.done() and handle.wait() is result  # a second wait changes nothing
    np.testing.assert_array_equal(arrays[0], 3.0)
    means = dist.allreduce_many([np.full(5, float(r)), np.full(2, 4.0 * r, np.float32)],
                                average=True).wait()
    np.testing.assert_array_equal(means[0], 0.5)
    np.testing.assert_array_equal(means[1], 2.0)
    passed("allreduce_many")


def check_broadcast_and_barrier():
    r = dist.rank()
    a = np.full((2, 2), 7.0 * (r + 1))
    dist.broadcast_(a, root=1)
    np.testing.assert_array_equal(a, 14.0)
    strided = np.arange(8.0) * (r + 1)
    dist.broadcast_(strided[1::2], root=0)
    expected = np.arange(8.0) * (r + 1)
    expected[1::2] = np.arange(8.0)[1::2]
    np.testing.assert_array_equal(strided, expected)
    try:
        dist.broadcast_(a, root=2)
    except ValueError as err:
        assert "root must be a rank in [0, 2)" in str(err), err
    else:
        raise AssertionError("root=2 of 2 ranks was accepted")
    dist.barrier()
    passed("broadcast")


def check_structure():
    r = dist.rank()
    dist.check_same_structure({"w": (3, 4), "b": (4,)})
    mine = {"w": (3, 4), "b": (4,)} if r == 0 else {"w": (4, 3), "c": (1,)}
    try:
        dist.check_same_structure(mine)
    except dist.DistributedError as err:
        text = str(err)
        assert "rank 1" in text and "missing ['b']" in text and "extra ['c']" in text, text
        assert "'w' is [4, 3] (rank 0: [3, 4])" in text, text
        assert err.ranks == [1], err.ranks
    else:
        raise AssertionError("different structures were accepted")
    passed("structure")


def check_average_logs():
    r = dist.rank()
    logs = dist.average_logs({"loss": 1.0 + r, "accuracy": 0.5 * r})
    assert logs == {"accuracy": 0.25, "loss": 1.5}, logs
    try:
        dist.average_logs({"loss": 1.0, ("acc" if r == 0 else "val_acc"): 1.0})
    except dist.DistributedError as err:
        assert "missing ['acc']" in str(err) and "extra ['val_acc']" in str(err), err
    else:
        raise AssertionError("different log names were accepted")
    passed("average_logs")


class PlainSGD:
    """MXNet's optimizer interface: weight -= lr * grad."""

    def create_state(self, index, weight):
        return None

    def update(self, index, weight, grad, state):
        weight[:] = weight - 0.1 * grad


def check_kvstore(kind):
    r = dist.rank()
    kv = kvstore.create(kind)
    assert (kv.type, kv.rank, kv.num_workers) == (kind, r, 2)
    devices = [cpu(0), cpu(1)]
    kv.init(["w", "b"], [nd.full((2, 3), 1.0 + r), nd.full((4,), 5.0 * (r + 1))])
    outs = [[nd.zeros((2, 3), ctx=d) for d in devices], [nd.zeros((4,), ctx=d) for d in devices]]
    kv.pull(["w", "b"], out=outs)
    for o in outs[0]:
        np.testing.assert_array_equal(o.asnumpy(), 1.0)  # rank 0's value on every rank
    for o in outs[1]:
        np.testing.assert_array_equal(o.asnumpy(), 5.0)
    grads = [[nd.full((2, 3), 1.0 + r + k, ctx=d) for k, d in enumerate(devices)],
             [nd.full((4,), 10.0 * (r + 1), ctx=d) for d in devices]]
    kv.pushpull(["w", "b"], grads, out=outs)
    # w: devices give (1+r) + (2+r); ranks 0 and 1: 3 + 5 = 8. b: 2*10 + 2*20 = 60
    for o in outs[0]:
        np.testing.assert_array_equal(o.asnumpy(), 8.0)
    for o in outs[1]:
        np.testing.assert_array_equal(o.asnumpy(), 60.0)
    kv.set_optimizer(PlainSGD())
    kv.push("w", grads[0])
    kv.pull("w", out=outs[0])
    for o in outs[0]:
        np.testing.assert_allclose(o.asnumpy(), 8.0 - 0.1 * 8.0)
    kv.barrier()
    passed(f"kvstore {kind}")


if __name__ == "__main__":
    check_ranks()
    check_allreduce()
    check_allreduce_many()
    check_broadcast_and_barrier()
    check_structure()
    check_average_logs()
    check_kvstore("dist_sync")
    check_kvstore("dist_sync_device")
    nd.waitall()
    print(f"DONE rank {dist.rank()}", flush=True)
    sys.exit(0)
