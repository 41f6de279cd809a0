"""ResNet-18 training step: time and peak memory, deepkit vs PyTorch (CPU).

Batch 32 of 3x112x112, SGD step. Each configuration runs in its own process
so that peak memory (the growth of the process's peak RSS over the training
steps) is not polluted by the others; deepkit also reports its executor's own
memory plan. The deepkit configurations: ``deepkit`` binds with the default
recompute policy (``mirror="one-pass"``: ReLU outputs after BatchNorm are
recomputed from the kept convolution outputs), ``deepkit-keep-all`` with
``mirror=False`` (every activation backward reads is kept, as MXNet does by
default) and ``deepkit-mirror`` with ``mirror=True`` (segments recomputed).
Usage::

    python benchmarks/resnet.py [--steps 3] [--batch 32] [--size 112] [--repeat 1] [--report]

``--report`` also prints each deepkit executor's memory report (the planned
pool, its peak step and the buffers alive there).
"""
import argparse
import json
import subprocess
import sys
import time


def peak_rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def release_free_memory():
    """Hand memory that start-up freed back to the OS, so the baseline is honest.

    Without this, blocks freed by imports and set-up stay in the allocator's
    heap, count in the baseline RSS and are reused by the steps, so the
    measured growth comes out too small.
    """
    import ctypes  # noqa: PLC0415
    import gc  # noqa: PLC0415
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def current_rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def baseline_rss_bytes():
    """RSS after releasing free memory, with the peak (VmHWM) reset to it where Linux allows."""
    release_free_memory()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return current_rss_bytes()


def resnet18_symbol(num_classes=1000):
    from deepkit_engine import symbol as sym  # noqa: PLC0415

    def conv_bn(x, filters, kernel, stride, pad, name, act=True):
        x = sym.Convolution(x, num_filter=filters, kernel=(kernel, kernel), stride=(stride, stride),
                            pad=(pad, pad), no_bias=True, name=f"{name}_conv")
        x = sym.BatchNorm(x, fix_gamma=False, eps=1e-5, name=f"{name}_bn")
        return sym.Activation(x, act_type="relu", name=f"{name}_relu") if act else x

    def block(x, filters, stride, name, downsample):
        out = conv_bn(x, filters, 3, stride, 1, f"{name}a")
        out = conv_bn(out, filters, 3, 1, 1, f"{name}b", act=False)
        short = conv_bn(x, filters, 1, stride, 0, f"{name}_down", act=False) if downsample else x
        return sym.Activation(out + short, act_type="relu", name=f"{name}_out")

    x = conv_bn(sym.Variable("data"), 64, 7, 2, 3, "stem")
    x = sym.Pooling(x, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="max")
    for stage, filters in enumerate((64, 128, 256, 512)):
        for i in range(2):
            stride = 2 if stage > 0 and i == 0 else 1
            x = block(x, filters, stride, f"s{stage}b{i}", downsample=stride != 1)
    x = sym.Pooling(x, global_pool=True, pool_type="avg", kernel=(1, 1))
    x = sym.FullyConnected(sym.flatten(x), num_hidden=num_classes, name="fc")
    return sym.SoftmaxOutput(x, name="softmax")


def run_deepkit(batch, size, steps, mirror, report=False):
    import numpy as np  # noqa: PLC0415
    import deepkit_engine as dk  # noqa: PLC0415
    net = resnet18_symbol()
    reqs = {n: ("null" if n in ("data", "softmax_label") else "write")
            for n in net.list_arguments()}
    exe = net.simple_bind(dk.cpu(), data=(batch, 3, size, size), grad_req=reqs,
                          **({} if mirror is None else {"mirror": mirror}))
    rng = np.random.default_rng(0)
    for name, arr in exe.arg_dict.items():
        if name.endswith("weight"):
            arr[:] = rng.normal(0, 0.05, arr.shape)
    exe.arg_dict["data"][:] = rng.random((batch, 3, size, size), dtype=np.float32)
    exe.arg_dict["softmax_label"][:] = rng.integers(0, 1000, batch)
    params = [(exe.arg_dict[k], g) for k, g in exe.grad_dict.items()]
    dk.nd.waitall()
    base = baseline_rss_bytes()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        exe.forward(is_train=True)
        exe.backward()
        for w, g in params:
            dk.nd.sgd_update(w, g, lr=0.01 / batch, out=w)
        dk.nd.waitall()
        times.append(time.perf_counter() - t)
    plan = exe.memory_report()
    result = {"step_s": min(times[1:] or times), "peak_growth": peak_rss_bytes() - base,
              "planned": plan.planned_bytes, "unplanned": plan.unplanned_bytes,
              "peak_node": plan.peak_node}
    if report:
        result["report"] = str(plan)
    return result


def torch_resnet18(torch):
    """The same ResNet-18 in PyTorch (torchvision's layout; torchvision is not needed)."""
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.a = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                                   nn.BatchNorm2d(cout), nn.ReLU(),
                                   nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
            self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                       nn.BatchNorm2d(cout)) if stride != 1 or cin != cout
                         else nn.Identity())

        def forward(self, x):
            return torch.relu(self.a(x) + self.down(x))

    layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
              nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for stage, cout in enumerate((64, 128, 256, 512)):
        for i in range(2):
            layers.append(Block(cin, cout, 2 if stage > 0 and i == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 1000)]
    return nn.Sequential(*layers)


def run_torch(batch, size, steps):
    import torch  # noqa: PLC0415 - the optional peer
    model = torch_resnet18(torch)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.rand(batch, 3, size, size)
    y = torch.randint(0, 1000, (batch,))
    loss_fn = torch.nn.CrossEntropyLoss()
    base = baseline_rss_bytes()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return {"step_s": min(times[1:] or times), "peak_growth": peak_rss_bytes() - base,
            "threads": torch.get_num_threads()}


def _worker(args):
    if args.worker == "torch":
        result = run_torch(args.batch, args.size, args.steps)
    else:
        mirror = {"deepkit": None, "deepkit-keep-all": False, "deepkit-mirror": True}[args.worker]
        result = run_deepkit(args.batch, args.size, args.steps, mirror, args.report)
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--report", action="store_true",
                        help="print the executors' memory reports")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each configuration this many times (workers interleaved) and "
                             "report the median memory growth and the fastest step")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return
    runs = {}
    for _ in range(max(args.repeat, 1)):
        for worker in ("deepkit", "deepkit-keep-all", "deepkit-mirror", "torch"):
            if worker == "torch" and worker in runs and runs[worker] is None:
                continue
            cmd = [sys.executable, __file__, "--worker", worker, "--steps", str(args.steps),
                   "--batch", str(args.batch), "--size", str(args.size)]
            if args.report:
                cmd.append("--report")
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                if worker == "torch" and "No module named 'torch'" in proc.stderr:
                    runs[worker] = None
                    continue
                raise SystemExit(f"{worker} failed:\n{proc.stderr}")
            runs.setdefault(worker, []).append(json.loads(proc.stdout.strip().splitlines()[-1]))
    results = {}
    for worker, found in runs.items():
        if found is None:
            print("torch not installed: no ratio")
            continue
        found.sort(key=lambda r: r["peak_growth"])
        results[worker] = dict(found[len(found) // 2],
                               step_s=min(r["step_s"] for r in found))
    mib = 2 ** 20
    for name, r in results.items():
        if "report" in r:
            print(f"-- {name} memory report\n{r['report']}\n")
    for name, r in results.items():
        extra = ""
        if "planned" in r:
            extra = (f"  executor plan {r['planned'] / mib:7.1f} MiB "
                     f"(without reuse {r['unplanned'] / mib:7.1f} MiB)")
        print(f"{name:16s} step {r['step_s']:6.2f}s  peak RSS growth "
              f"{r['peak_growth'] / mib:7.1f} MiB{extra}")
    if "torch" in results:
        t = results["torch"]
        for name in ("deepkit", "deepkit-keep-all", "deepkit-mirror"):
            r = results[name]
            target = "0.5" if name == "deepkit-mirror" else "0.6"
            print(f"{name}/torch: memory {r['peak_growth'] / t['peak_growth']:.2f}x "
                  f"(target <= {target}x), step time {r['step_s'] / t['step_s']:.2f}x")
    mirrored = results["deepkit-mirror"]
    if args.repeat > 1:
        print(f"(median memory growth and fastest step of {args.repeat} runs each)")
    for name in ("deepkit", "deepkit-keep-all"):
        plain = results[name]
        print(f"deepkit-mirror/{name}: memory "
              f"{mirrored['peak_growth'] / plain['peak_growth']:.2f}x, plan "
              f"{mirrored['planned'] / plain['planned']:.2f}x, step time "
              f"{mirrored['step_s'] / plain['step_s']:.2f}x (target <= 1.3x)")


if __name__ == "__main__":
    main()
