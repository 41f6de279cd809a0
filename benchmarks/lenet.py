"""LeNet training and inference throughput: deepkit bound executor vs PyTorch (CPU).

conv5x5x20-tanh-maxpool2 / conv5x5x50-tanh-maxpool2 / fc500-tanh / fc10,
softmax cross-entropy, SGD with momentum 0.9, batch 128, on random data of
MNIST's shape (throughput does not depend on the values). Prints samples/s
for training and inference for each framework and their ratio, then the
forward and backward time of each of the two convolution layers alone.
PyTorch keeps its default thread count; deepkit's split of the cores is printed
(``DEEPKIT_CPU_WORKERS``, ``DEEPKIT_BLAS_THREADS``: see ``deepkit_engine.threads``).
Usage::

    python benchmarks/lenet.py [--batches 100] [--repeat 3]
"""
import argparse
import time

import numpy as np

BATCH, OUT, LR, MOMENTUM = 128, 10, 0.05, 0.9
IMAGE = (1, 28, 28)
#: The two convolutions: (name, input shape, num_filter, gradient of the input needed).
CONV_LAYERS = [("conv1", (BATCH, 1, 28, 28), 20, False), ("conv2", (BATCH, 20, 12, 12), 50, True)]


def _data(batches, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((batches, BATCH) + IMAGE, dtype=np.float32)
    y = rng.integers(0, OUT, (batches, BATCH)).astype(np.float32)
    return x, y


def _interleaved(fns, repeat, number=1):
    """Best seconds per call of each of ``fns``, timed round-robin after a warm-up.

    Taking turns spreads any load from other processes over all of them alike.
    """
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            for _ in range(number):
                fn()
            best[i] = min(best[i], (time.perf_counter() - start) / number)
    return best


# -- deepkit --------------------------------------------------------------------------

def deepkit_lenet():
    """The LeNet symbol, ending in SoftmaxOutput (the cross-entropy loss head)."""
    from deepkit_engine import symbol as sym  # noqa: PLC0415

    def block(x, num_filter, name):
        x = sym.Convolution(x, kernel=(5, 5), num_filter=num_filter, name=name)
        x = sym.Activation(x, act_type="tanh")
        return sym.Pooling(x, pool_type="max", kernel=(2, 2), stride=(2, 2))
    x = block(sym.Variable("data"), 20, "conv1")
    x = block(x, 50, "conv2")
    x = sym.Activation(sym.FullyConnected(sym.Flatten(x), num_hidden=500, name="fc1"),
                       act_type="tanh")
    x = sym.FullyConnected(x, num_hidden=OUT, name="fc2")
    return sym.SoftmaxOutput(x, name="softmax")


def deepkit_programs(x, y):
    """``(train_epoch, infer_epoch)`` over the batches of ``x``/``y``."""
    import deepkit_engine as dk  # noqa: PLC0415
    nd = dk.nd
    net = deepkit_lenet()
    params = [n for n in net.list_arguments() if n not in ("data", "softmax_label")]
    exe = net.simple_bind(dk.cpu(), data=(BATCH,) + IMAGE,
                          grad_req={n: ("write" if n in params else "null")
                                    for n in net.list_arguments()})
    rng = np.random.default_rng(1)
    for name in params:
        arr = exe.arg_dict[name]
        if name.endswith("weight"):
            fan_in = int(np.prod(arr.shape[1:]))
            arr[:] = rng.normal(0, 1 / np.sqrt(fan_in), arr.shape)
        else:
            arr[:] = 0
    state = [(exe.arg_dict[n], exe.grad_dict[n], nd.zeros(exe.arg_dict[n].shape)) for n in params]
    batches = [(nd.array(x[i]), nd.array(y[i])) for i in range(len(x))]
    data, label = exe.arg_dict["data"], exe.arg_dict["softmax_label"]
    infer = net.bind(dk.cpu(), args=exe.arg_dict, grad_req="null")
    infer_data = infer.arg_dict["data"]

    def train():
        for xb, yb in batches:
            xb.copyto(data)
            yb.copyto(label)
            exe.forward(is_train=True)
            exe.backward()
            for w, g, mom in state:
                nd.sgd_mom_update(w, g, mom, lr=LR, momentum=MOMENTUM, rescale_grad=1 / BATCH,
                                  out=w)
        nd.waitall()

    def inference():
        for xb, _ in batches:
            xb.copyto(infer_data)
            infer.forward(is_train=False)
        nd.waitall()
    return train, inference


def deepkit_conv_layer(shape, num_filter, data_grad):
    """``(forward, backward)`` callables of one 5x5 convolution bound alone."""
    import deepkit_engine as dk  # noqa: PLC0415
    from deepkit_engine import symbol as sym  # noqa: PLC0415
    nd = dk.nd
    net = sym.Convolution(sym.Variable("data"), kernel=(5, 5), num_filter=num_filter, name="c")
    exe = net.simple_bind(dk.cpu(), data=shape,
                          grad_req={"data": "write" if data_grad else "null",
                                    "c_weight": "write", "c_bias": "write"})
    rng = np.random.default_rng(0)
    for arr in exe.arg_dict.values():
        arr[:] = rng.normal(0, 0.1, arr.shape)
    ograd = nd.array(rng.normal(0, 1, exe.outputs[0].shape).astype(np.float32))

    def forward():
        exe.forward(is_train=True)
        exe.outputs[0].wait_to_read()

    def backward():
        exe.backward()  # reuses the head gradient set below, as torch's backward(ograd) does
        nd.waitall()
    forward()
    exe.backward(ograd)
    return forward, backward


# -- PyTorch ---------------------------------------------------------------------------

def _torch():
    try:
        import torch  # noqa: PLC0415
    except ImportError:
        return None
    return torch


def torch_programs(x, y):
    """``(train_epoch, infer_epoch)``: the same network and optimizer in torch.nn."""
    torch = _torch()
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(1, 20, 5), nn.Tanh(), nn.MaxPool2d(2, 2),
                          nn.Conv2d(20, 50, 5), nn.Tanh(), nn.MaxPool2d(2, 2), nn.Flatten(),
                          nn.Linear(800, 500), nn.Tanh(), nn.Linear(500, OUT))
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = nn.CrossEntropyLoss()
    batches = [(torch.from_numpy(x[i]), torch.from_numpy(y[i]).long()) for i in range(len(x))]

    def train():
        model.train()
        for xb, yb in batches:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()

    def inference():
        model.eval()
        with torch.no_grad():
            for xb, _ in batches:
                model(xb)
    return train, inference


def torch_conv_layer(shape, num_filter, data_grad):
    """``(forward, backward)`` callables of one torch 5x5 convolution."""
    torch = _torch()
    conv = torch.nn.Conv2d(shape[1], num_filter, 5)
    x = torch.randn(shape, requires_grad=data_grad)
    y = conv(x)
    ograd = torch.randn(y.shape)

    def forward():
        conv(x)

    def backward():
        y.backward(ograd, retain_graph=True)
    return forward, backward


# -- report ---------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    x, y = _data(args.batches)
    samples = args.batches * BATCH
    torch = _torch()
    names = ["deepkit"]
    programs = {"deepkit": deepkit_programs(x, y)}
    if torch is not None:
        tname = f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
        names.append(tname)
        programs[tname] = torch_programs(x, y)
    fns = [f for name in names for f in programs[name]]
    best = _interleaved(fns, args.repeat)
    results = {name: (samples / best[2 * i], samples / best[2 * i + 1])
               for i, name in enumerate(names)}
    from deepkit_engine import threads  # noqa: PLC0415
    print(f"LeNet, batch {BATCH}, {args.batches} batches, best of {args.repeat}; deepkit: "
          f"{threads.describe()}")
    print(f"{'':40s} {'train':>12s} {'inference':>12s}")
    for name, (tr, inf) in results.items():
        print(f"{name:40s} {tr:8.0f} s/s {inf:8.0f} s/s")
    if len(results) == 2:
        (dtr, dinf), (ttr, tinf) = results.values()
        print(f"{'deepkit / torch':40s} {dtr / ttr:9.2f}x {dinf / tinf:11.2f}x")
    else:
        print("torch not installed: no ratio")
    print("\nconvolution layers alone, ms per batch of 128 (backward: weight, bias and, for "
          "conv2, data gradients;\ndk/torch: speed ratio, > 1 when deepkit is faster)")
    print(f"{'layer':8s} {'':8s} {'deepkit':>9s} {'torch':>9s} {'dk/torch':>9s}")
    for name, shape, num_filter, data_grad in CONV_LAYERS:
        fns = list(deepkit_conv_layer(shape, num_filter, data_grad))
        if torch is not None:
            fns += torch_conv_layer(shape, num_filter, data_grad)
        best = _interleaved(fns, args.repeat * 3, number=5) + [float("nan")] * 2
        for k, phase in enumerate(("forward", "backward")):
            d, t = best[k], best[k + 2]
            print(f"{name:8s} {phase:8s} {d * 1e3:9.2f} {t * 1e3:9.2f} {t / d:8.2f}x")


if __name__ == "__main__":
    main()
