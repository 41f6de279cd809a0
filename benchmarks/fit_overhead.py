"""Overhead of ``Model.fit`` over a bare executor loop, and PyTorch for scale.

The bare loop binds the very training symbol that ``fit`` builds and drives
it by hand (copy batch, forward, backward, fused SGD-momentum updates), so the
difference is exactly the cost of fit's machinery (batching, callbacks,
metrics, progress). Networks: the MNIST MLP and LeNet, on random MNIST-shaped
data. Usage::

    python benchmarks/fit_overhead.py [--samples 12800] [--repeat 7]
"""
import argparse
import time

import numpy as np

BATCH = 128


def build(kind):
    import deepkit  # noqa: PLC0415
    from deepkit import layers as L  # noqa: PLC0415
    if kind == "mlp":
        model = deepkit.Sequential([L.Flatten(input_shape=(1, 28, 28)),
                                    L.Dense(128, activation="relu"),
                                    L.Dense(10, activation="softmax")])
    else:
        model = deepkit.Sequential([
            L.Conv2D(20, 5, activation="tanh", input_shape=(1, 28, 28)), L.MaxPooling2D(2),
            L.Conv2D(50, 5, activation="tanh"), L.MaxPooling2D(2), L.Flatten(),
            L.Dense(500, activation="tanh"), L.Dense(10, activation="softmax")])
    model.compile(deepkit.optimizers.SGD(0.05, momentum=0.9), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def fit_run(kind, x, y):
    model = build(kind)
    return lambda: model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)


def bare_run(kind, x, y):
    import deepkit_engine as dk  # noqa: PLC0415
    model = build(kind)
    model.fit(x[:BATCH], y[:BATCH], batch_size=BATCH, epochs=1, verbose=0)  # builds the symbol
    trainer = model.executors()
    exe = trainer.executor("train", BATCH)
    data, label = exe.arg_dict[model.input_names[0]], exe.arg_dict[f"{model.output_names[0]}_label"]
    moms = {k: dk.nd.zeros(g.shape) for k, g in exe.grad_dict.items()}
    pairs = [(exe.arg_dict[k], g, moms[k]) for k, g in exe.grad_dict.items()]
    batches = [(dk.nd.array(x[i:i + BATCH]), dk.nd.array(y[i:i + BATCH]))
               for i in range(0, len(x), BATCH)]

    def run():
        for xb, yb in batches:
            xb.copyto(data)
            yb.copyto(label)
            exe.forward(is_train=True)
            exe.backward()
            for w, g, m in pairs:
                dk.nd.sgd_mom_update(w, g, m, lr=0.05, momentum=0.9, out=w)
        dk.nd.waitall()
    return run


def torch_run(kind, x, y):
    try:
        import torch  # noqa: PLC0415
    except ImportError:
        return None
    nn = torch.nn
    if kind == "mlp":
        net = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    else:
        net = nn.Sequential(nn.Conv2d(1, 20, 5), nn.Tanh(), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5),
                            nn.Tanh(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(800, 500),
                            nn.Tanh(), nn.Linear(500, 10))
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    batches = [(torch.from_numpy(x[i:i + BATCH]), torch.from_numpy(y[i:i + BATCH]).long())
               for i in range(0, len(x), BATCH)]

    def run():
        for xb, yb in batches:
            opt.zero_grad()
            loss_fn(net(xb), yb).backward()
            opt.step()
    return run


def rounds(runs, repeat):
    """Seconds of each run over ``repeat`` rounds, the runs taking turns in every round.

    Taking turns lets all of them see the same load on a shared machine,
    whose speed drifts by 10 to 30 % within minutes; the ratios are read per
    round. Returns an array (repeat, len(runs)).
    """
    for run in runs:
        run()  # warm-up: binding, allocation
    times = np.empty((repeat, len(runs)))
    for r in range(repeat):
        for i, run in enumerate(runs):
            t = time.perf_counter()
            run()
            times[r, i] = time.perf_counter() - t
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=12800)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--nets", default="mlp,lenet")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.random((args.samples, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, args.samples).astype(np.float32)
    for kind in args.nets.split(","):
        runs = [fit_run(kind, x, y), bare_run(kind, x, y)]
        trun = torch_run(kind, x, y)
        if trun is not None:
            runs.append(trun)
        times = rounds(runs, args.repeat)
        fit, bare = args.samples / times[:, 0].min(), args.samples / times[:, 1].min()
        overhead = 100 * (times[:, 0] / times[:, 1] - 1)
        line = (f"{kind:6s} Model.fit {fit:9.0f}/s  bare executor loop {bare:9.0f}/s  "
                f"fit overhead {100 * (bare / fit - 1):5.1f}% best, "
                f"{np.median(overhead):5.1f}% median of {args.repeat} rounds (target <= 5%)")
        if trun is not None:
            torch_s = args.samples / times[:, 2].min()
            line += f"  torch {torch_s:9.0f}/s  fit/torch {fit / torch_s:.2f}x"
        print(line, flush=True)


if __name__ == "__main__":
    main()
