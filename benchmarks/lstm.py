"""One LSTM layer, training step and inference: deepkit vs PyTorch ``nn.LSTM`` on the CPU.

Batch 64, 50 steps, 128 inputs, 256 units (batch-major input, as Keras),
mean-squared error on the last output, plain SGD. Both run in the same
process on the same random data; the result is a throughput ratio
(deepkit / PyTorch: above 1.0 means deepkit is faster). Usage::

    python benchmarks/lstm.py [--steps 20] [--repeat 3]
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


def _seconds(fn, steps, repeat):
    fn()  # warm up: binding, allocation
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(steps):
            fn()
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def main(steps=20, repeat=3):
    x, y = _data()
    ours = deepkit_runners(x, y)
    theirs = torch_runners(x, y)
    results = {}
    for k, what in enumerate(("training step", "inference")):
        mine = _seconds(ours[k], steps, repeat)
        line = f"{what:14s} deepkit {mine * 1e3:8.1f} ms"
        if theirs is not None:
            other = _seconds(theirs[k], steps, repeat)
            line += f"   PyTorch {other * 1e3:8.1f} ms   ratio (PyTorch time / deepkit time) " \
                    f"{other / mine:.2f}x"
            results[what] = other / mine
        print(line)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    main(args.steps, args.repeat)
