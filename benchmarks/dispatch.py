"""Per-op dispatch overhead: ``a + b`` on 10 elements, in microseconds per op.

Compares deepkit's NDArray on the threaded and naive engines with plain numpy
and, when installed, PyTorch on the CPU, in one run. Usage::

    python benchmarks/dispatch.py [--ops 20000] [--repeat 5]
"""
import argparse
import time

import numpy as np


def _best_of(fn, ops, repeat):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(ops)
        best = min(best, time.perf_counter() - start)
    return best / ops * 1e6


def deepkit_add(kind):
    import deepkit_engine as dk  # noqa: PLC0415
    dk.engine.set_engine(kind)
    a = dk.nd.ones((10,))
    b = dk.nd.ones((10,))

    def run(ops):
        c = a
        for _ in range(ops):
            c = a + b
        c.wait_to_read()
    return run


def numpy_add():
    a = np.ones(10, np.float32)
    b = np.ones(10, np.float32)

    def run(ops):
        for _ in range(ops):
            a + b
    return run


def torch_add():
    try:
        import torch  # noqa: PLC0415
    except ImportError:
        return None
    torch.set_num_threads(1)
    a = torch.ones(10)
    b = torch.ones(10)

    def run(ops):
        for _ in range(ops):
            a + b
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = [("deepkit threaded", lambda: deepkit_add("threaded")),
            ("deepkit naive", lambda: deepkit_add("naive")),
            ("numpy", numpy_add), ("torch", torch_add)]
    results = {}
    for name, make in rows:
        fn = make()
        if fn is None:
            print(f"{name:18s} not installed")
            continue
        fn(1000)
        results[name] = _best_of(fn, args.ops, args.repeat)
    base = results.get("torch", results["numpy"])
    base_name = "torch" if "torch" in results else "numpy"
    print(f"{'':18s} {'us/op':>8s} {'ratio vs ' + base_name:>16s}")
    for name, us in results.items():
        print(f"{name:18s} {us:8.2f} {us / base:16.2f}x")
    print("target: deepkit threaded < 8 us/op")


if __name__ == "__main__":
    main()
