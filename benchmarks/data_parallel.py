"""Data-parallel LeNet training: one process against two MPI processes, one thread each.

Three runs of the same LeNet training (random MNIST-shaped data, SGD with
momentum, global batch 128):

* ``1 process``: one process pinned to one core (one engine worker, one
  BLAS thread, no kernel pool);
* ``2 processes``: ``mpirun -np 2``, each process pinned to its own core,
  each taking half of every batch and all-reducing the gradients;
* ``2 independent``: the same two processes without any exchange (each
  trains alone on its half batch): the compute time the exchange could hide
  behind.

Reported: samples/s of each and the speed-up of 2 processes over 1, the
all-reduce time per step (inside the exchange) and the share of it hidden
behind backward: ``1 - (t_2proc - t_indep) / t_allreduce``, clipped to [0, 1].
Usage::

    python benchmarks/data_parallel.py [--steps 60] [--warmup 5]

Needs mpi4py and an ``mpirun`` next to the Python (``pip install deepkit[dist]``).
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np

BATCH = 128
MPIRUN = pathlib.Path(sys.executable).parent / "mpirun"
REPO = pathlib.Path(__file__).resolve().parents[1]


def build():
    import deepkit  # noqa: PLC0415 - imported after the thread settings are in the environment
    from deepkit import layers as L  # noqa: PLC0415
    deepkit.set_seed(0)
    model = deepkit.Sequential([
        L.Conv2D(20, 5, activation="tanh", input_shape=(1, 28, 28)), L.MaxPooling2D(2),
        L.Conv2D(50, 5, activation="tanh"), L.MaxPooling2D(2), L.Flatten(),
        L.Dense(500, activation="tanh"), L.Dense(10, activation="softmax")])
    model.compile(deepkit.optimizers.SGD(0.05, momentum=0.9), "sparse_categorical_crossentropy")
    return model


def _one_core():
    """Pin this process to one core (its local rank's): one thread of work per process."""
    local = int(os.environ.get("MPI_LOCALRANKID", os.environ.get("DP_INDEX", "0")))
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[local % len(cores)]})


def worker(steps, warmup, distributed_run, out):
    """Train ``warmup + steps`` batches; rank 0 writes the timings as JSON to ``out``."""
    _one_core()  # before deepkit starts its threads: they size themselves to one core
    from deepkit import distributed  # noqa: PLC0415
    if distributed_run:
        distributed.init()
    rank = distributed.rank()
    rng = np.random.default_rng(rank)
    x = rng.random((BATCH * (steps + warmup), 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, len(x))
    model = build()
    batch = BATCH if distributed_run else BATCH // int(os.environ.get("DP_SPLIT", "1"))
    model.fit(x[:batch * warmup], y[:batch * warmup], batch_size=batch, epochs=1, verbose=0,
              shuffle=False)
    distributed.barrier()
    distributed.stats.update(allreduce_seconds=0.0, allreduce_buckets=0)
    start = time.perf_counter()
    model.fit(x[:batch * steps], y[:batch * steps], batch_size=batch, epochs=1, verbose=0,
              shuffle=False)
    seconds = time.perf_counter() - start
    if rank == 0:
        pathlib.Path(out).write_text(json.dumps({
            "seconds": seconds, "steps": steps,
            "allreduce_seconds": distributed.stats["allreduce_seconds"],
            "buckets": distributed.stats["allreduce_buckets"]}))


def _env():
    env = dict(os.environ, DEEPKIT_CPU_WORKERS="1", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", DEEPKIT_BLAS_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _launch(procs, distributed_run, args, tag):
    out = REPO / f".data_parallel_{tag}.json"
    cmd = [sys.executable, __file__, "--worker", "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--out", str(out)]
    env = _env()
    if distributed_run:
        cmd = [str(MPIRUN), "-launcher", "fork", "-np", str(procs)] + cmd + ["--distributed"]
        subprocess.run(cmd, check=True, env=env, timeout=1800)
    elif procs == 1:
        subprocess.run(cmd, check=True, env=env, timeout=1800)
    else:  # several processes at once, no exchange: the compute the exchange overlaps
        env["DP_SPLIT"] = str(procs)
        running = [subprocess.Popen(cmd if i == 0 else cmd[:-2] + ["--out", os.devnull],
                                    env=dict(env, DP_INDEX=str(i))) for i in range(procs)]
        for p in running:
            if p.wait(timeout=1800):
                raise SystemExit(f"worker failed: {p.args}")
    result = json.loads(out.read_text())
    out.unlink()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--distributed", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.steps, args.warmup, args.distributed, args.out)
        return
    if not MPIRUN.exists():
        raise SystemExit(f"no mpirun next to {sys.executable}: pip install 'deepkit[dist]'")
    one = _launch(1, False, args, "one")
    two = _launch(2, True, args, "two")
    indep = _launch(2, False, args, "indep")
    rate = lambda r: BATCH * r["steps"] / r["seconds"]  # noqa: E731
    per_step = two["allreduce_seconds"] / two["steps"]
    exposed = max(two["seconds"] - indep["seconds"], 0.0) / two["steps"]
    hidden = 1.0 - exposed / per_step if per_step > 0 else 1.0
    print(f"LeNet training, global batch {BATCH}, {args.steps} steps, one thread per process")
    print(f"  1 process      : {rate(one):8.0f} samples/s")
    print(f"  2 processes    : {rate(two):8.0f} samples/s  ({rate(two) / rate(one):.2f}x of 1)")
    print(f"  2 independent  : {rate(indep) * 1:8.0f} samples/s of global batches "
          "(no exchange)")
    buckets = two["buckets"] // two["steps"]
    print(f"  all-reduce     : {1000 * per_step:.2f} ms per step in {buckets} bucket(s); "
          f"{100 * min(max(hidden, 0.0), 1.0):.0f}% hidden behind backward")


if __name__ == "__main__":
    main()
