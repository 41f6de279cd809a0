"""One LSTM layer, training step and inference: deepkit vs PyTorch ``nn.LSTM`` on the CPU.

Batch 64, 50 steps, 128 inputs, 256 units (batch-major input, as Keras),
mean-squared error on the last output, plain SGD. Both run in the same
process on the same random data; the result is a throughput ratio
(deepkit / PyTorch: above 1.0 means deepkit is faster). Usage::

    python benchmarks/lstm.py [--steps 10] [--repeat 8]
"""
import argparse
import time

import numpy as np

import deepkit
import deepkit_engine as dk
from deepkit import layers

BATCH, STEPS, INPUTS, UNITS, LR = 64, 50, 128, 256, 0.01


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(BATCH, STEPS, INPUTS)).astype(np.float32)
    y = rng.normal(size=(BATCH, UNITS)).astype(np.float32)
    return x, y


def deepkit_runners(x, y):
    """``(train_step, infer)`` closures for a deepkit model with one LSTM layer."""
    model = deepkit.Sequential([layers.LSTM(UNITS, input_shape=(STEPS, INPUTS))])
    model.compile(optimizer=deepkit.optimizers.SGD(LR), loss="mse")

    def train():
        model.train_on_batch(x, y)
        dk.nd.waitall()  # the step is queued; time it to the end

    def infer():
        model.predict_on_batch(x)
    return train, infer


def torch_runners(x, y):
    """``(train_step, infer)`` for ``nn.LSTM``, or None when torch is not installed."""
    try:
        import torch  # noqa: PLC0415 - optional: the comparison needs it
    except ImportError:
        return None
    lstm = torch.nn.LSTM(INPUTS, UNITS, batch_first=True)
    opt = torch.optim.SGD(lstm.parameters(), lr=LR)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)

    def train():
        opt.zero_grad()
        out = lstm(xs)[0][:, -1]
        torch.nn.functional.mse_loss(out, ys).backward()
        opt.step()

    def infer():
        with torch.no_grad():
            lstm(xs)
    return train, infer


def _interleaved(fns, steps, repeat):
    """Seconds per call of each function: best and median over ``repeat`` rounds.

    Each round times ``steps`` calls of every function in turn, so all of them
    see the same load on a shared machine (its speed drifts by 10 to 30 %
    within minutes); the median of the per-round ratios is the steadier
    figure, the best the one least disturbed. Each turn starts with one
    untimed call: PyTorch's OpenMP threads spin for about 7 ms of CPU after
    its last call, which would otherwise be charged to the next turn's first
    call (and a turn of deepkit's to PyTorch's, alike).
    """
    for fn in fns:
        fn()  # warm up: binding, allocation
    rounds = []
    for _ in range(repeat):
        times = []
        for fn in fns:
            fn()  # untimed: the other side's idle threads settle
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            times.append((time.perf_counter() - start) / steps)
        rounds.append(times)
    return np.array(rounds)  # (repeat, len(fns))


def main(steps=10, repeat=8):
    x, y = _data()
    ours = deepkit_runners(x, y)
    theirs = torch_runners(x, y)
    results = {}
    for k, what in enumerate(("training step", "inference")):
        fns = [ours[k]] + ([theirs[k]] if theirs is not None else [])
        rounds = _interleaved(fns, steps, repeat)
        best = rounds.min(axis=0)
        line = f"{what:14s} deepkit {best[0] * 1e3:7.1f} ms"
        if theirs is not None:
            ratio = best[1] / best[0]
            median = float(np.median(rounds[:, 1] / rounds[:, 0]))
            line += (f"   PyTorch {best[1] * 1e3:7.1f} ms   ratio (PyTorch time / deepkit "
                     f"time) {ratio:.2f}x best, {median:.2f}x median of {repeat} rounds")
            results[what] = ratio
        print(line)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="calls per timed block")
    parser.add_argument("--repeat", type=int, default=8, help="rounds, each side in turn")
    args = parser.parse_args()
    main(args.steps, args.repeat)
