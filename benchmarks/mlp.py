"""MNIST-style MLP training throughput: deepkit bound executor vs PyTorch (CPU).

784-128-relu-10, softmax cross-entropy, plain SGD, batch 128, on random data
of MNIST's shape (throughput does not depend on the values). Prints samples/s
for each (best and median of interleaved epochs) and the ratios. Usage::

    python benchmarks/mlp.py [--batches 300] [--repeat 7]
"""
import argparse
import statistics
import time

import numpy as np

BATCH, IN, HIDDEN, OUT, LR = 128, 784, 128, 10, 0.1


def _data(batches, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((batches, BATCH, IN), dtype=np.float32)
    y = rng.integers(0, OUT, (batches, BATCH)).astype(np.float32)
    return x, y


def deepkit_trainer(x, y):
    import deepkit_engine as dk  # noqa: PLC0415
    from deepkit_engine import symbol as sym  # noqa: PLC0415
    nd = dk.nd
    net = sym.SoftmaxOutput(
        sym.FullyConnected(sym.Activation(sym.FullyConnected(sym.Variable("data"),
                                                             num_hidden=HIDDEN, name="fc1"),
                                          act_type="relu"), num_hidden=OUT, name="fc2"),
        name="softmax")
    exe = net.simple_bind(dk.cpu(), data=(BATCH, IN),
                          grad_req={"fc1_weight": "write", "fc1_bias": "write",
                                    "fc2_weight": "write", "fc2_bias": "write"})
    rng = np.random.default_rng(1)
    for name in ("fc1_weight", "fc2_weight"):
        arr = exe.arg_dict[name]
        arr[:] = rng.normal(0, 0.05, arr.shape)
    params = [(exe.arg_dict[k], g) for k, g in exe.grad_dict.items()]
    batches = [(nd.array(x[i]), nd.array(y[i])) for i in range(len(x))]
    data, label = exe.arg_dict["data"], exe.arg_dict["softmax_label"]
    scale = LR / BATCH

    def epoch():
        for xb, yb in batches:
            xb.copyto(data)
            yb.copyto(label)
            exe.forward(is_train=True)
            exe.backward()
            for w, g in params:
                nd.sgd_update(w, g, lr=scale, out=w)
        nd.waitall()
        return exe.outputs[0]
    return epoch


def torch_trainer(x, y):
    try:
        import torch  # noqa: PLC0415
    except ImportError:
        return None
    model = torch.nn.Sequential(torch.nn.Linear(IN, HIDDEN), torch.nn.ReLU(),
                                torch.nn.Linear(HIDDEN, OUT))
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    batches = [(torch.from_numpy(x[i]), torch.from_numpy(y[i]).long()) for i in range(len(x))]

    def epoch():
        for xb, yb in batches:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
    return epoch


def _epoch_seconds(epochs, repeat):
    """Seconds of each epoch function, ``repeat`` rounds, the two loops interleaved.

    Alternating deepkit's and torch's epochs lets both see the same load on a
    shared machine; both the best and the median round are kept, since torch's
    OpenMP threads make its epoch times spread widely.
    """
    for epoch in epochs.values():
        epoch()  # warm-up
    times = {name: [] for name in epochs}
    for _ in range(repeat):
        for name, epoch in epochs.items():
            start = time.perf_counter()
            epoch()
            times[name].append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    x, y = _data(args.batches)
    samples = args.batches * BATCH
    epochs = {"deepkit": deepkit_trainer(x, y)}
    torch_epoch = torch_trainer(x, y)
    if torch_epoch is not None:
        import torch  # noqa: PLC0415
        epochs[f"torch {torch.__version__} ({torch.get_num_threads()} threads)"] = torch_epoch
    times = _epoch_seconds(epochs, args.repeat)
    for name, seconds in times.items():
        print(f"{name:32s} {samples / min(seconds):10.0f} samples/s best, "
              f"{samples / statistics.median(seconds):10.0f} median")
    if len(times) == 2:
        ours, theirs = times.values()
        print(f"deepkit / torch: {min(theirs) / min(ours):.2f}x best, "
              f"{statistics.median(theirs) / statistics.median(ours):.2f}x median   "
              "(target >= 1.0x)")
    else:
        print("torch not installed: no ratio")


if __name__ == "__main__":
    main()
