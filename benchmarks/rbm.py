"""One CD-1 epoch of a 784-500 RBM on MNIST (batch 100): deepkit vs the same update in NumPy.

deepkit runs ``RBM.fit(epochs=1)``: the updates are engine ops (one op makes
the ten updates of 1,000 rows, drawing its noise from the device's
generator), the loop, History and logs included.
The NumPy side is the same CD-1 update (momentum, weight decay) written
directly in float32 NumPy, with its noise drawn by a NumPy generator. Each
side runs ``--repeat`` times, alternating; the best times and their ratio are
printed. Usage::

    python benchmarks/rbm.py [--samples 60000] [--repeat 3]
"""
import argparse
import time

import numpy as np

HIDDEN, BATCH, LR, MOMENTUM, DECAY = 500, 100, 0.1, 0.5, 0.0002


def _mnist(samples):
    from deepkit.datasets import mnist  # noqa: PLC0415 - keeps --help fast
    (x, _), _ = mnist.load_data()
    return x[:samples].reshape(-1, 784).astype(np.float32) / 255


def numpy_epoch(x, seed=0):
    """The CD-1 update of :mod:`deepkit.rbm`, written directly in NumPy (float32)."""
    rng = np.random.default_rng(seed)
    W = rng.normal(0, 0.01, (784, HIDDEN)).astype(np.float32)
    bv = np.zeros(784, np.float32)
    bh = np.zeros(HIDDEN, np.float32)
    vW, vbv, vbh = np.zeros_like(W), np.zeros_like(bv), np.zeros_like(bh)
    order = rng.permutation(len(x))
    error = 0.0
    for start in range(0, len(x), BATCH):
        v0 = x[order[start:start + BATCH]]
        ph0 = 1 / (1 + np.exp(-(v0 @ W + bh)))
        h0 = (rng.random(ph0.shape, dtype=np.float32) < ph0).astype(np.float32)
        pv1 = 1 / (1 + np.exp(-(h0 @ W.T + bv)))
        ph1 = 1 / (1 + np.exp(-(pv1 @ W + bh)))
        error += ((pv1 - v0) ** 2).sum() / len(v0)
        n = len(v0)
        vW = MOMENTUM * vW + LR * ((v0.T @ ph0 - pv1.T @ ph1) / n - DECAY * W)
        vbv = MOMENTUM * vbv + LR * (v0 - pv1).mean(0)
        vbh = MOMENTUM * vbh + LR * (ph0 - ph1).mean(0)
        W += vW
        bv += vbv
        bh += vbh
    return error / -(-len(x) // BATCH)


def deepkit_epoch(x, seed=0):
    import deepkit  # noqa: PLC0415
    from deepkit.rbm import RBM  # noqa: PLC0415
    deepkit.set_seed(seed)
    rbm = RBM(HIDDEN, learning_rate=LR, momentum=MOMENTUM, weight_decay=DECAY)
    rbm.build(784)
    history = rbm.fit(x, epochs=1, batch_size=BATCH, k=1, verbose=0)
    return history.history["reconstruction_error"][-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=60000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    x = _mnist(args.samples)
    deepkit_epoch(x[:1000])  # imports and first-call costs out of the timing
    times = {"deepkit": [], "numpy": []}
    errors = {}
    for _ in range(args.repeat):
        for name, run in (("deepkit", deepkit_epoch), ("numpy", numpy_epoch)):
            start = time.perf_counter()
            errors[name] = run(x)
            times[name].append(time.perf_counter() - start)
    best = {name: min(t) for name, t in times.items()}
    for name in ("deepkit", "numpy"):
        print(f"{name:8s} {best[name]:7.2f} s/epoch  ({args.samples / best[name]:8.0f} samples/s)"
              f"  reconstruction error {errors[name]:.2f}")
    print(f"deepkit / numpy speed: {best['numpy'] / best['deepkit']:.2f}x")


if __name__ == "__main__":
    main()
