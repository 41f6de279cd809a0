"""Where the time goes: per-op profiles of the MLP, LeNet and ResNet-18 benchmarks, deepkit vs PyTorch.

Runs each benchmark's own deepkit training step (``mlp.py``, ``lenet.py``,
``resnet.py``) under :mod:`deepkit_engine.profiler` and the same network's
PyTorch step under ``torch.profiler``, in one process, and prints Markdown
tables: the step time of each (unprofiled, best of two epochs), deepkit's
executor passes against torch's forward/backward/optimizer spans, the time by
op family on both sides (convolution, matrix products, activations, ...),
and each side's top ops. Times are per training step.

    python benchmarks/profile_ops.py [--models mlp,lenet,resnet] [--steps 20]
        [--rounds 3] [--resnet-batch 8] [--out DIR]

On a shared or small machine run it with ``OMP_NUM_THREADS=1
OPENBLAS_NUM_THREADS=1``: multi-threaded BLAS and torch kernels spin at their
barriers when other processes hold the cores, and the numbers then measure
the contention. ``--out DIR`` also writes each side's Chrome trace (``<model>_deepkit.json``,
``<model>_torch.json``) and deepkit's full tables (``<model>_deepkit.txt``).
"""
import argparse
import os
import re
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lenet  # noqa: E402 - the benchmark modules next to this file
import mlp  # noqa: E402
import resnet  # noqa: E402

#: Op families: (family, pattern over deepkit op names, pattern over torch op names).
FAMILIES = [
    ("convolution", r"Convolution", r"conv|mkldnn_convolution|slow_conv|im2col|col2im"),
    ("matrix product (dense)", r"FullyConnected|^dot$|batch_dot|linalg",
     r"addmm|^aten::mm$|^aten::bmm|matmul|linear|Addmm|MmBackward"),
    ("batch norm", r"BatchNorm", r"batch_norm|BatchNorm"),
    ("pooling", r"Pooling", r"pool|Pool"),
    ("activation", r"Activation|relu|tanh|sigmoid|sign|LeakyReLU",
     r"relu|tanh|sigmoid|threshold|Relu|Tanh|Threshold"),
    ("softmax + loss", r"Softmax|softmax|log_softmax|pick|cross",
     r"softmax|nll_loss|cross_entropy|Softmax|NllLoss"),
    ("optimizer update", r"sgd|adam|mom_update|_update", r"sgd|_foreach|add_|mul_|lerp|Optimizer"),
    ("copies, reshapes, reductions", r"copy|write_async|reshape|flatten|Flatten|sum|"
     r"_reduce|slice|cast|transpose|identity|broadcast|zeros",
     r"copy|view|reshape|flatten|sum|t$|transpose|zero_|fill_|empty|to$|clone|detach|"
     r"expand|as_strided|resize|contiguous|AccumulateGrad|TBackward|ViewBackward|Reshape"),
]


def family(name, side):
    """The op family of ``name`` (``side``: 0 deepkit, 1 torch), or 'other'."""
    for fam, dk_pat, torch_pat in FAMILIES:
        if re.search(dk_pat if side == 0 else torch_pat, name):
            return fam
    return "other elementwise"


# -- the steps ----------------------------------------------------------------------------

def mlp_steps(steps):
    """MLP (mlp.py): ``(deepkit_epoch, torch_epoch)``, each running ``steps`` batches."""
    x, y = mlp._data(steps)
    return mlp.deepkit_trainer(x, y), mlp.torch_trainer(x, y)


def lenet_steps(steps):
    """LeNet (lenet.py): its training epochs over ``steps`` batches."""
    x, y = lenet._data(steps)
    return lenet.deepkit_programs(x, y)[0], lenet.torch_programs(x, y)[0]


def resnet_steps(steps, batch, size):
    """ResNet-18 (resnet.py's networks) at a reduced batch: ``steps`` SGD steps each."""
    import deepkit_engine as dk  # noqa: PLC0415
    import torch  # noqa: PLC0415
    net = resnet.resnet18_symbol()
    reqs = {n: ("null" if n in ("data", "softmax_label") else "write")
            for n in net.list_arguments()}
    exe = net.simple_bind(dk.cpu(), data=(batch, 3, size, size), grad_req=reqs)
    rng = np.random.default_rng(0)
    for name, arr in exe.arg_dict.items():
        if name.endswith("weight"):
            arr[:] = rng.normal(0, 0.05, arr.shape)
    exe.arg_dict["data"][:] = rng.random((batch, 3, size, size), dtype=np.float32)
    exe.arg_dict["softmax_label"][:] = rng.integers(0, 1000, batch)
    params = [(exe.arg_dict[k], g) for k, g in exe.grad_dict.items()]

    def dk_epoch():
        for _ in range(steps):
            exe.forward(is_train=True)
            exe.backward()
            for w, g in params:
                dk.nd.sgd_update(w, g, lr=0.01 / batch, out=w)
        dk.nd.waitall()

    model = resnet.torch_resnet18(torch)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    data = torch.rand(batch, 3, size, size)
    label = torch.randint(0, 1000, (batch,))

    def torch_epoch():
        for _ in range(steps):
            opt.zero_grad()
            loss_fn(model(data), label).backward()
            opt.step()
    return dk_epoch, torch_epoch


# -- profiling ----------------------------------------------------------------------------

def _best_time(epoch, repeat):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        epoch()
        best = min(best, time.perf_counter() - start)
    return best


def profile_deepkit(epoch, steps, out_prefix):
    """deepkit's per-step numbers: wall time, passes, families, top ops."""
    from deepkit_engine import profiler  # noqa: PLC0415
    with profiler.profile() as p:
        start = time.perf_counter()
        epoch()
        wall = time.perf_counter() - start
    stats = p.stats()
    if out_prefix:
        p.dump(filename=out_prefix + "_deepkit.json")
        p.write_table(out_prefix + "_deepkit.txt")
    ops = []
    for phase, rows in stats["operators"].items():
        for r in rows:
            ops.append((f"{r['name']} ({phase[:3]})", r["total_ms"] / steps, r["count"] / steps,
                        r["name"]))
    passes = {r["name"]: r["total_ms"] / steps for r in stats["executor_passes"]}
    imperative = sum(r["total_ms"] for r in stats["operators"]["imperative"]) / steps
    phases = {"forward": passes.get("executor forward", 0.0),
              "backward": passes.get("executor backward", 0.0),
              "optimizer + copies (engine ops)": imperative}
    wait = {r["name"]: r["avg_ms"] for r in stats["queue_wait"]}
    return {"wall_ms": wall * 1e3 / steps, "ops": ops, "phases": phases, "wait": wait}


def profile_torch(epoch, steps, out_prefix):
    """torch's per-step numbers from torch.profiler (self CPU time per op)."""
    import torch  # noqa: PLC0415
    from torch.profiler import ProfilerActivity, profile  # noqa: PLC0415
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        epoch()
        wall = time.perf_counter() - start
    if out_prefix:
        prof.export_chrome_trace(out_prefix + "_torch.json")
    ops = []
    for e in prof.key_averages():
        if e.self_cpu_time_total <= 0:
            continue
        ops.append((e.key, e.self_cpu_time_total / 1e3 / steps, e.count / steps, e.key))
    del torch
    return {"wall_ms": wall * 1e3 / steps, "ops": ops}


def _families(ops, side):
    totals = {}
    for _, ms, _, name in ops:
        fam = family(name, side)
        totals[fam] = totals.get(fam, 0.0) + ms
    return totals


def _min_of(runs):
    """Per op (and phase, and wall time), the smallest per-step time over the rounds."""
    best = dict(runs[0])
    ops = {}
    for run in runs:
        for label, ms, count, name in run["ops"]:
            if label not in ops or ms < ops[label][1]:
                ops[label] = (label, ms, count, name)
    best["ops"] = list(ops.values())
    best["wall_ms"] = min(r["wall_ms"] for r in runs)
    if "phases" in best:
        best["phases"] = {k: min(r["phases"][k] for r in runs) for k in best["phases"]}
        best["wait"] = {k: min(r["wait"].get(k, float("inf")) for r in runs)
                        for k in best["wait"]}
    return best


def report(title, steps, dk_epoch, torch_epoch, top, out_dir, key, rounds):
    """Warm up, time unprofiled, profile, and print the Markdown section of one model."""
    dk_epoch()
    torch_epoch()
    dk_plain = _best_time(dk_epoch, 2) * 1e3 / steps
    torch_plain = _best_time(torch_epoch, 2) * 1e3 / steps
    prefix = os.path.join(out_dir, key) if out_dir else None
    dk_runs, th_runs = [], []
    for _ in range(rounds):  # taking turns; the minimum per op drops other processes' noise
        dk_runs.append(profile_deepkit(dk_epoch, steps, prefix))
        th_runs.append(profile_torch(torch_epoch, steps, prefix))
    dk, th = _min_of(dk_runs), _min_of(th_runs)
    lines = [f"### {title}", "",
             f"{steps} steps, best of {rounds} profiled rounds per op; ms per step. "
             f"Unprofiled: deepkit {dk_plain:.2f} ms, torch "
             f"{torch_plain:.2f} ms (deepkit/torch time {dk_plain / torch_plain:.2f}x). "
             f"Profiled: deepkit {dk['wall_ms']:.2f} ms, torch {th['wall_ms']:.2f} ms.", ""]
    lines += ["| deepkit phase | ms/step | share of step |", "| --- | ---: | ---: |"]
    for name, ms in dk["phases"].items():
        lines.append(f"| {name} | {ms:.3f} | {100 * ms / dk['wall_ms']:.0f}% |")
    busy = sum(dk["phases"].values())
    idle = max(dk["wall_ms"] - busy, 0.0)
    lines.append(f"| outside any op (Python dispatch, hand-offs) | {idle:.3f} | "
                 f"{100 * idle / dk['wall_ms']:.0f}% |")
    lines += ["", "| op family | deepkit ms | torch ms (self CPU) | deepkit/torch |",
              "| --- | ---: | ---: | ---: |"]
    dk_f, th_f = _families(dk["ops"], 0), _families(th["ops"], 1)
    for fam in sorted(set(dk_f) | set(th_f), key=lambda f: -dk_f.get(f, 0.0)):
        d, t = dk_f.get(fam, 0.0), th_f.get(fam, 0.0)
        ratio = f"{d / t:.2f}x" if t > 0.001 else "-"
        lines.append(f"| {fam} | {d:.3f} | {t:.3f} | {ratio} |")
    lines.append(f"| **all ops** | **{sum(dk_f.values()):.3f}** | **{sum(th_f.values()):.3f}**"
                 f" | **{sum(dk_f.values()) / max(sum(th_f.values()), 1e-9):.2f}x** |")
    dk_top = sorted(dk["ops"], key=lambda o: -o[1])[:top]
    th_top = sorted(th["ops"], key=lambda o: -o[1])[:top]
    dk_total = sum(o[1] for o in dk["ops"])
    th_total = sum(o[1] for o in th["ops"])
    lines += ["", "| # | deepkit op (phase) | ms | % | torch op | ms | % |",
              "| ---: | --- | ---: | ---: | --- | ---: | ---: |"]
    for i in range(max(len(dk_top), len(th_top))):
        d = dk_top[i] if i < len(dk_top) else ("", 0.0, 0, "")
        t = th_top[i] if i < len(th_top) else ("", 0.0, 0, "")
        lines.append(f"| {i + 1} | {d[0]} | {d[1]:.3f} | {100 * d[1] / dk_total:.1f} | "
                     f"{t[0]} | {t[1]:.3f} | {100 * t[1] / th_total:.1f} |")
    waits = ", ".join(f"{k} {v:.3f} ms" for k, v in sorted(dk["wait"].items(),
                                                           key=lambda kv: -kv[1])[:4])
    lines += ["", f"deepkit mean engine queue wait (push to start): {waits}.", ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,lenet,resnet")
    parser.add_argument("--steps", type=int, default=20, help="steps for mlp and lenet")
    parser.add_argument("--resnet-steps", type=int, default=3)
    parser.add_argument("--resnet-batch", type=int, default=8)
    parser.add_argument("--resnet-size", type=int, default=112)
    parser.add_argument("--rounds", type=int, default=3, help="profiled rounds per side")
    parser.add_argument("--resnet-rounds", type=int, default=2)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--out", default=None, help="folder for traces and tables")
    args = parser.parse_args()
    try:
        import torch  # noqa: PLC0415
    except ImportError:
        sys.exit("profile_ops.py compares against PyTorch: pip install torch")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
    blas = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                      "MKL_NUM_THREADS") if k in os.environ}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{os.cpu_count()} CPUs; {blas or 'default BLAS threads'}\n")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for key in models:
        if key == "mlp":
            title = f"MLP 784-128-10, batch {mlp.BATCH} (mlp.py)"
            epochs = mlp_steps(args.steps)
            steps = args.steps
        elif key == "lenet":
            title = f"LeNet, batch {lenet.BATCH} (lenet.py)"
            epochs = lenet_steps(args.steps)
            steps = args.steps
        elif key == "resnet":
            title = (f"ResNet-18, batch {args.resnet_batch} of 3x{args.resnet_size}x"
                     f"{args.resnet_size} (resnet.py's networks)")
            epochs = resnet_steps(args.resnet_steps, args.resnet_batch, args.resnet_size)
            steps = args.resnet_steps
        else:
            sys.exit(f"--models: unknown model {key!r}; choose from mlp, lenet, resnet")
        rounds = args.resnet_rounds if key == "resnet" else args.rounds
        print(report(title, steps, *epochs, args.top, args.out, key, rounds), flush=True)


if __name__ == "__main__":
    main()
