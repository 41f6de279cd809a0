"""Run under ``mpirun -np 2``: rank 1 dies before a collective; rank 0 must fail clearly.

``python dead_rank.py direct``: the collective is ``dist.allreduce_``;
``python dead_rank.py kvstore``: it is a ``dist_sync`` KVStore push (the
collective then runs on an engine worker). Rank 0 prints ``WAITING`` before
the collective that cannot complete; the deadline (``DEEPKIT_DIST_TIMEOUT``)
must turn it into a ``DistributedError`` on stderr and an abort.
"""
import os
import sys

import numpy as np

from deepkit_engine import dist, kvstore, nd


def main(mode):
    dist.init()
    a = np.ones(4)
    dist.allreduce_(a)  # both ranks alive: completes
    assert (a == 2).all()
    kv = kvstore.create("dist_sync") if mode == "kvstore" else None
    if kv is not None:
        kv.init(0, nd.zeros((4,)))
        kv.pull(0, out=nd.zeros((4,)))
    dist.barrier()
    if dist.rank() == 1:
        sys.stdout.flush()
        os._exit(1)
    print("WAITING", flush=True)
    if kv is None:
        dist.allreduce_(a)
    else:
        out = nd.zeros((4,))
        kv.pushpull(0, nd.ones((4,)), out=out)
        out.asnumpy()
    print("NOT REACHED: the collective completed without rank 1", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "direct"))
