"""MXNet's ``Module.fit`` on deepkit vs the same training loop in PyTorch (CPU), one run.

The MNIST MLP of MXNet's tutorial (784-128-relu-64-relu-10, softmax
cross-entropy), SGD with momentum 0.9, batch 128, one epoch over MNIST's
60,000 training images, the training accuracy tracked as ``Module.fit`` does.
deepkit runs ``mx.mod.Module(...).fit(NDArrayIter, ...)`` exactly as an MXNet
script would; PyTorch runs the usual hand-written loop (shuffled batches,
``zero_grad``/``backward``/``step``, accuracy per batch). Both read the same
float32 arrays. Prints samples/s for each and the ratio (best of ``--repeat``
epochs after one warm-up epoch, the two loops' epochs interleaved); without
PyTorch only deepkit's numbers.

    python benchmarks/module_mlp.py [--samples 60000] [--repeat 3]
"""
import argparse
import logging
import time
import warnings

import numpy as np

BATCH, LR, MOMENTUM = 128, 0.1, 0.9


def _data(samples):
    from deepkit.compat import mxnet as mx  # noqa: PLC0415 - benchmark-local, like torch
    mnist = mx.test_utils.get_mnist()
    x = mnist["train_data"][:samples].reshape(-1, 784).astype(np.float32)
    y = mnist["train_label"][:samples].astype(np.float32)
    return x, y


def deepkit_module(x, y):
    """One epoch of ``Module.fit``; returns the epoch function."""
    from deepkit.compat import mxnet as mx  # noqa: PLC0415 - benchmark-local, like torch
    mx.random.seed(0)
    net = mx.sym.Variable("data")
    net = mx.sym.FullyConnected(net, name="fc1", num_hidden=128)
    net = mx.sym.Activation(net, name="relu1", act_type="relu")
    net = mx.sym.FullyConnected(net, name="fc2", num_hidden=64)
    net = mx.sym.Activation(net, name="relu2", act_type="relu")
    net = mx.sym.FullyConnected(net, name="fc3", num_hidden=10)
    net = mx.sym.SoftmaxOutput(net, name="softmax")
    train_iter = mx.io.NDArrayIter(x, y, BATCH, shuffle=True, last_batch_handle="discard")
    logger = logging.getLogger("benchmark")
    logger.setLevel(logging.ERROR)  # fit's epoch lines and "already bound" notes
    mod = mx.mod.Module(net, context=mx.cpu(), logger=logger)
    epochs = [0]

    def epoch():
        warnings.filterwarnings("ignore", message="Parameters already initialized")
        mod.fit(train_iter, optimizer="sgd", num_epoch=epochs[0] + 1, begin_epoch=epochs[0],
                optimizer_params={"learning_rate": LR, "momentum": MOMENTUM},
                initializer=mx.init.Xavier(), eval_metric="acc")
        epochs[0] += 1
        mx.nd.waitall()
    return epoch


def torch_loop(x, y):
    """The same epoch as a hand-written PyTorch loop, or None without PyTorch."""
    try:
        import torch  # noqa: PLC0415 - optional: the comparison needs it
    except ImportError:
        return None
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(),
                                torch.nn.Linear(128, 64), torch.nn.ReLU(),
                                torch.nn.Linear(64, 10))
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = torch.nn.CrossEntropyLoss()
    data, labels = torch.from_numpy(x), torch.from_numpy(y).long()
    batches = len(x) // BATCH

    def epoch():
        order = torch.randperm(len(x))
        correct = 0
        for b in range(batches):
            idx = order[b * BATCH:(b + 1) * BATCH]
            xb, yb = data[idx], labels[idx]
            opt.zero_grad()
            out = model(xb)
            loss_fn(out, yb).backward()
            opt.step()
            correct += int((out.argmax(1) == yb).sum())
        return correct / (batches * BATCH)
    return epoch


def _throughputs(epochs, samples, repeat):
    """Samples/s of each epoch function, best of ``repeat``, the runs interleaved.

    Alternating the two loops epoch by epoch lets both see the same load on a
    shared machine, so their ratio holds even when the absolute numbers vary.
    """
    for epoch in epochs.values():
        epoch()  # warm-up: binding, allocation
    best = dict.fromkeys(epochs, float("inf"))
    for _ in range(repeat):
        for name, epoch in epochs.items():
            start = time.perf_counter()
            epoch()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: samples / seconds for name, seconds in best.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=60000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    x, y = _data(args.samples)
    samples = (len(x) // BATCH) * BATCH
    epochs = {"deepkit Module.fit": deepkit_module(x, y)}
    loop = torch_loop(x, y)
    if loop is not None:
        import torch  # noqa: PLC0415 - optional: the comparison needs it
        epochs[f"torch {torch.__version__} ({torch.get_num_threads()} threads)"] = loop
    results = _throughputs(epochs, samples, args.repeat)
    for name, value in results.items():
        print(f"{name:34s} {value:10.0f} samples/s")
    if len(results) == 2:
        ratio = results["deepkit Module.fit"] / list(results.values())[1]
        print(f"deepkit Module / torch: {ratio:.2f}x   (target >= 1.0x; MXNet 1.9.1's Module: "
              "0.62x)")
    else:
        print("torch not installed: deepkit's numbers only")


if __name__ == "__main__":
    main()
