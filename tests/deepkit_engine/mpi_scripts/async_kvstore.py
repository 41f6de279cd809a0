"""Run under ``mpirun -np 2``: checks of ``kvstore.create('dist_async')`` (the parameter server).

``python async_kvstore.py checks``: asynchrony, read-your-writes, the same
final value on both ranks after a barrier, and a clean exit (the store is
closed by its exit hook); each check prints ``PASS <name> rank <r>``.
``python async_kvstore.py server_dies``: rank 0 (the server's process) exits
while rank 1 pulls; rank 1 must fail with a DistributedError within
``DEEPKIT_DIST_TIMEOUT``. ``python async_kvstore.py worker_dies``: rank 1
exits without closing; rank 0's exit (waiting for every rank to close) must
fail the same way. tests/deepkit_engine/test_dist_mpi.py reads the output.
"""
import os
import sys
import time

import numpy as np

from deepkit.compat import mxnet as mx
from deepkit_engine import dist, kvstore, nd

LR = 0.5
SHAPE = (2, 3)


def passed(name):
    print(f"PASS {name} rank {dist.rank()}", flush=True)


def pull(kv, key):
    out = nd.zeros(SHAPE)
    kv.pull(key, out=out)
    values = out.asnumpy()
    assert (values == values.flat[0]).all(), values
    return float(values.flat[0])


def check_asynchrony(kv, r):
    """Rank 0 pushes and pulls while rank 1 sleeps: it sees its own updates only, unblocked."""
    kv.init("w", nd.full(SHAPE, 10.0))   # rank 1's value is ignored: rank 0's is stored
    if r == 1:
        time.sleep(2.0)
        # rank 0's five pushes of 1 are in (it pushed during the sleep)
        assert pull(kv, "w") == 10.0 - LR * 5, pull(kv, "w")
        for _ in range(3):
            kv.push("w", [nd.full(SHAPE, 4.0), nd.full(SHAPE, 6.0)])  # summed here: 10
    else:
        start = time.monotonic()
        for i in range(5):
            kv.push("w", nd.ones(SHAPE))
            got = pull(kv, "w")
            assert got == 10.0 - LR * (i + 1), (i, got)   # exactly its own updates so far
        seconds = time.monotonic() - start
        assert seconds < 1.5, f"rank 0 waited for the sleeping rank 1: {seconds:.2f} s"
        print(f"rank 0 did 5 push/pull cycles in {seconds:.3f} s", flush=True)
    kv.barrier()
    final = pull(kv, "w")
    assert final == 10.0 - LR * (5 * 1 + 3 * 10), final
    passed("asynchrony")


def check_read_your_writes(kv, r):
    """Both ranks push at once; each pull holds all of this rank's pushes so far."""
    kv.init("v", nd.zeros(SHAPE))
    grad = 1.0 if r == 0 else 100.0   # at most 40 pushes of 1: the count of each rank decodes
    seen_other = 0
    for i in range(40):
        out = nd.zeros(SHAPE)
        kv.pushpull("v", nd.full(SHAPE, grad), out=out)
        total = -out.asnumpy()[0, 0] / LR
        assert total == int(total), total
        ones, hundreds = int(total) % 100, int(total) // 100
        own, other = (ones, hundreds) if r == 0 else (hundreds, ones)
        assert own == i + 1, (i, own, other)
        assert other >= seen_other, (other, seen_other)
        seen_other = other
    kv.barrier()
    assert pull(kv, "v") == -LR * (40 * 1 + 40 * 100)
    passed("read-your-writes")


def check_states(kv, r, path):
    """Only rank 0 (the server's process) can save the optimizer states."""
    if r == 0:
        kv.save_optimizer_states(path)
        kv.load_optimizer_states(path)
    else:
        try:
            kv.save_optimizer_states(path)
        except ValueError as err:
            assert "only rank 0 can save or load them" in str(err), err
        else:
            raise AssertionError("rank 1 saved the server's optimizer states")
    passed("states")


def main(mode):
    r, n = dist.init()
    assert n == 2
    kv = kvstore.create("dist_async")
    assert (kv.type, kv.rank, kv.num_workers) == ("dist_async", r, 2)
    kv.set_optimizer(mx.optimizer.SGD(learning_rate=LR, rescale_grad=1.0))
    if mode == "checks":
        check_asynchrony(kv, r)
        check_read_your_writes(kv, r)
        check_states(kv, r, os.environ.get("STATES_PATH", "/tmp/deepkit_async_states.npz"))
        print(f"DONE rank {r}", flush=True)
        return 0   # the exit hook closes the store: rank 0 serves until rank 1 has closed
    kv.init(0, nd.zeros(SHAPE))
    pull(kv, 0)
    kv.barrier()
    if mode == "server_dies" and r == 0 or mode == "worker_dies" and r == 1:
        sys.stdout.flush()
        os._exit(3)
    print("WAITING", flush=True)
    if mode == "server_dies":
        pull(kv, 0)
        print("NOT REACHED: a pull completed without the server", flush=True)
    return 0   # worker_dies: rank 0's exit hook waits for rank 1 to close


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "checks"))
