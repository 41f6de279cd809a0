"""Data-parallel LeNet training: one process against two MPI processes, one thread each.

Three runs of the same LeNet training (random MNIST-shaped data, SGD with
momentum, global batch 128):

* ``1 process``: one process pinned to one core (one engine worker, one
  BLAS thread, no kernel pool);
* ``2 processes``: ``mpirun -np 2``, each process pinned to its own core,
  each taking half of every batch and all-reducing the gradients, with the
  exchange overlapped with backward (forced on: ``fit``'s default turns it
  off with one core per process, where MPI's spinning wait takes CPU from
  the backward pass);
* ``2 independent``: the same two processes without any exchange (each
  trains alone on its half batch): the compute time the exchange could hide
  behind;
* ``2, no overlap``: ``mpirun -np 2`` with
  ``deepkit.distributed.overlap_backward = False`` (the backward pass as one
  engine operation: every bucket starts after it; ``fit``'s choice here).

Reported: samples/s of each and the speed-up of 2 processes over 1, the
all-reduce time per step (inside the exchange), and how much of it was hidden
behind backward, measured two ways:

* recorded: after the timed steps, rank 0 trains ``--profiled`` more steps
  under the profiler, which records when each piece of backward and each
  bucket's exchange ran; the hidden time is the exchange's wall time that
  falls inside a backward piece, the rest is the exchange outside backward;
* estimated from the totals: ``1 - (t_2proc - t_indep) / t_allreduce``,
  clipped to [0, 1].

Usage::

    python benchmarks/data_parallel.py [--steps 60] [--warmup 5] [--profiled 10]

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


def _merged(intervals):
    """``intervals`` ((start, end) pairs) merged into disjoint, sorted ones."""
    merged = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def exchange_overlap(trace):
    """``(exchange seconds, seconds of it inside backward)`` from a profiler trace."""
    events = [e for e in trace["traceEvents"] if e.get("ph") == "X"]
    backward = _merged((e["ts"], e["ts"] + e["dur"]) for e in events
                       if e["name"] == "executor backward")
    total = hidden = 0.0
    for e in events:
        if e["name"] != "allreduce":
            continue
        start, end = e["ts"], e["ts"] + e["dur"]
        total += end - start
        hidden += sum(max(0.0, min(end, b) - max(start, a)) for a, b in backward)
    return total * 1e-6, hidden * 1e-6


def worker(steps, warmup, profiled, distributed_run, out):
    """Train ``warmup + steps (+ profiled)`` batches; rank 0 writes the timings to ``out``."""
    _one_core()  # before deepkit starts its threads: they size themselves to one core
    from deepkit import distributed  # noqa: PLC0415
    from deepkit_engine import profiler  # noqa: PLC0415
    if distributed_run:
        distributed.init()
        distributed.overlap_backward = os.environ.get("DP_OVERLAP", "1") == "1"  # forced
    rank = distributed.rank()
    rng = np.random.default_rng(rank)
    x = rng.random((BATCH * (steps + warmup + profiled), 1, 28, 28), dtype=np.float32)
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
    allreduce_seconds = distributed.stats["allreduce_seconds"]
    buckets = distributed.stats["allreduce_buckets"]
    exchange = hidden = 0.0
    if profiled and distributed_run:
        rows = slice(batch * steps, batch * (steps + profiled))
        with profiler.profile() as p:
            model.fit(x[rows], y[rows], batch_size=batch, epochs=1, verbose=0, shuffle=False)
        exchange, hidden = exchange_overlap(p.trace())
    if rank == 0:
        pathlib.Path(out).write_text(json.dumps({
            "seconds": seconds, "steps": steps, "allreduce_seconds": allreduce_seconds,
            "buckets": buckets, "profiled_steps": profiled, "exchange_seconds": exchange,
            "hidden_seconds": hidden}))


def _env():
    env = dict(os.environ, DEEPKIT_CPU_WORKERS="1", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", DEEPKIT_BLAS_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _launch(procs, distributed_run, args, tag):
    out = REPO / f".data_parallel_{tag}.json"
    cmd = [sys.executable, __file__, "--worker", "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--profiled", str(args.profiled), "--out", str(out)]
    env = _env()
    env["DP_OVERLAP"] = "0" if tag == "no_overlap" else "1"
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
    parser.add_argument("--profiled", type=int, default=10,
                        help="steps trained under the profiler to record the overlap")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--distributed", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.steps, args.warmup, args.profiled, args.distributed, args.out)
        return
    if not MPIRUN.exists():
        raise SystemExit(f"no mpirun next to {sys.executable}: pip install 'deepkit[dist]'")
    one = _launch(1, False, args, "one")
    two = _launch(2, True, args, "two")
    plain = _launch(2, True, args, "no_overlap")
    indep = _launch(2, False, args, "indep")
    rate = lambda r: BATCH * r["steps"] / r["seconds"]  # noqa: E731
    print(f"LeNet training, global batch {BATCH}, {args.steps} steps, one thread per process")
    print(f"  1 process      : {rate(one):8.0f} samples/s")
    print(f"  2 independent  : {rate(indep) * 1:8.0f} samples/s of global batches "
          "(no exchange)")
    for label, run in (("2 processes", two), ("2, no overlap", plain)):
        per_step = run["allreduce_seconds"] / run["steps"]
        exposed = max(run["seconds"] - indep["seconds"], 0.0) / run["steps"]
        estimate = 1.0 - exposed / per_step if per_step > 0 else 1.0
        buckets = run["buckets"] // run["steps"]
        print(f"  {label:<15}: {rate(run):8.0f} samples/s  ({rate(run) / rate(one):.2f}x of 1)")
        print(f"  {'':<15}  all-reduce {1000 * per_step:.2f} ms per step in {buckets} "
              f"bucket(s); estimated {100 * min(max(estimate, 0.0), 1.0):.0f}% hidden")
        if run["exchange_seconds"] > 0:
            steps = run["profiled_steps"]
            outside = run["exchange_seconds"] - run["hidden_seconds"]
            print(f"  {'':<15}  recorded over {steps} profiled steps: exchange "
                  f"{1000 * run['exchange_seconds'] / steps:.2f} ms per step, "
                  f"{1000 * outside / steps:.2f} ms of it outside backward "
                  f"({100 * run['hidden_seconds'] / run['exchange_seconds']:.0f}% hidden)")


if __name__ == "__main__":
    main()
