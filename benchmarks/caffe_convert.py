"""Caffe conversion of a VGG16-sized model: time and peak memory against the targets.

Writes a synthetic VGG16 (13 convolutions, 3 fully connected layers, 138 M
float32 parameters, about 550 MB) with the test suite's caffemodel writer
into a temporary folder, then converts it in a fresh Python process (so the
memory numbers are the conversion's alone) and saves the result as one HDF5
file. Prints the time of ``convert()`` and of ``save()``, the process's peak
resident memory (``ru_maxrss``: memory-mapped weight pages that were read
count too; Linux's VmHWM) and the peak of Python/numpy allocations (``tracemalloc``), each
against the targets: under 10 s, peak memory under 1.5x the caffemodel's
size. The converted weights are owned copies (copied blob by blob out of the
mapping, whose pages are released as they are copied); the benchmark checks
that none still views the file. Usage::

    python benchmarks/caffe_convert.py [--keep DIR] [--no-save]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: VGG16 (Simonyan & Zisserman, configuration D): (name, out channels) per conv, 'M' = pool.
VGG16 = [("conv1_1", 64), ("conv1_2", 64), "M", ("conv2_1", 128), ("conv2_2", 128), "M",
         ("conv3_1", 256), ("conv3_2", 256), ("conv3_3", 256), "M",
         ("conv4_1", 512), ("conv4_2", 512), ("conv4_3", 512), "M",
         ("conv5_1", 512), ("conv5_2", 512), ("conv5_3", 512), "M"]
FC = [("fc6", 4096), ("fc7", 4096), ("fc8", 1000)]


def vgg16_layers(with_blobs, rng=None):
    """V2 layer dicts of VGG16; blobs are broadcast views (little memory to write)."""
    def weights(shape):
        row = rng.normal(0, 0.01, shape[-1]).astype(np.float32)
        return np.broadcast_to(row, shape)

    layers, bottom, channels, pool = [], "data", 3, 0
    for item in VGG16:
        if item == "M":
            pool += 1
            name = f"pool{pool}"
            layers.append({"name": name, "type": "Pooling", "bottom": [bottom], "top": [name],
                           "pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 2}})
            bottom = name
            continue
        name, out = item
        layer = {"name": name, "type": "Convolution", "bottom": [bottom], "top": [name],
                 "convolution_param": {"num_output": out, "pad": [1], "kernel_size": [3]}}
        if with_blobs:
            layer["blobs"] = [{"shape": {"dim": [out, channels, 3, 3]},
                               "data": weights((out, channels, 3, 3))},
                              {"shape": {"dim": [out]}, "data": weights((out,))}]
        layers.append(layer)
        layers.append({"name": f"relu{name[4:]}", "type": "ReLU", "bottom": [name],
                       "top": [name]})
        bottom, channels = name, out
    inputs = channels * 7 * 7
    for i, (name, out) in enumerate(FC):
        layer = {"name": name, "type": "InnerProduct", "bottom": [bottom], "top": [name],
                 "inner_product_param": {"num_output": out}}
        if with_blobs:
            layer["blobs"] = [{"shape": {"dim": [out, inputs]}, "data": weights((out, inputs))},
                              {"shape": {"dim": [out]}, "data": weights((out,))}]
        layers.append(layer)
        bottom, inputs = name, out
        if i < 2:
            layers.append({"name": f"relu{6 + i}", "type": "ReLU", "bottom": [name],
                           "top": [name]})
            layers.append({"name": f"drop{6 + i}", "type": "Dropout", "bottom": [name],
                           "top": [name], "dropout_param": {"dropout_ratio": 0.5}})
    layers.append({"name": "prob", "type": "Softmax", "bottom": [bottom], "top": ["prob"]})
    return layers


def write_vgg16(folder):
    sys.path.insert(0, ROOT)
    from tests.deepkit.caffe import caffe_writer as cw  # noqa: PLC0415
    rng = np.random.default_rng(0)
    net = {"name": "VGG_ILSVRC_16_layers", "input": ["data"], "input_dim": [1, 3, 224, 224]}
    prototxt = os.path.join(folder, "deploy.prototxt")
    with open(prototxt, "w") as f:
        f.write(cw.to_prototxt(dict(net, layer=vgg16_layers(False))))
    model = os.path.join(folder, "VGG16.caffemodel")
    cw.write_caffemodel(model, dict(net, layer=vgg16_layers(True, rng)))
    return prototxt, model


_CHILD = r"""
import json, resource, sys, time, tracemalloc
prototxt, model, out, save = sys.argv[1:5]

def peak_rss():
    # VmHWM: this process's own high-water mark (ru_maxrss would include the parent's RSS
    # at fork time on Linux)
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

import numpy, h5py, deepkit_engine
from deepkit.caffe import convert
from deepkit.caffe.owned import mapping_of
import deepkit.caffe.reader
base_rss = peak_rss()
tracemalloc.start()
t0 = time.perf_counter()
conv = convert(prototxt, model)
t1 = time.perf_counter()
convert_peak = tracemalloc.get_traced_memory()[1]
convert_rss = peak_rss()
views = [n for n, a in conv.arg_params.items() if mapping_of(a) is not None]
if save == "1":
    conv.save(out)
t2 = time.perf_counter()
_, peak = tracemalloc.get_traced_memory()
rss = peak_rss()
print(json.dumps({"convert_s": t1 - t0, "save_s": t2 - t1, "baseline_rss": base_rss,
                  "convert_rss": convert_rss, "peak_rss": rss, "convert_traced": convert_peak,
                  "peak_traced": peak, "params": sum(a.size for a in conv.arg_params.values()),
                  "mapped_views": views, "summary": conv.conversion.summary()}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", help="write the files into this folder and keep them")
    parser.add_argument("--no-save", action="store_true", help="time convert() only")
    args = parser.parse_args()
    folder = args.keep or tempfile.mkdtemp(prefix="caffe_convert_bench_")
    os.makedirs(folder, exist_ok=True)
    try:
        t = time.perf_counter()
        prototxt, model = write_vgg16(folder)
        size = os.path.getsize(model)
        print(f"wrote {model}: {size / 1e6:.1f} MB in {time.perf_counter() - t:.1f} s")
        out = os.path.join(folder, "vgg16.h5")
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        proc = subprocess.run([sys.executable, "-c", _CHILD, prototxt, model, out,
                               "0" if args.no_save else "1"], capture_output=True, text=True,
                              env=env, cwd=ROOT, check=False)
        if proc.returncode:
            sys.stderr.write(proc.stderr)
            raise SystemExit(proc.returncode)
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        mb = 1e6
        total = r["convert_s"] + r["save_s"]
        print(r["summary"])
        print(f"convert():              {r['convert_s']:.2f} s")
        if not args.no_save:
            print(f"save() (HDF5, {os.path.getsize(out) / mb:.0f} MB): {r['save_s']:.2f} s")
        print(f"total:                  {total:.2f} s   (target < 10 s: "
              f"{'met' if total < 10 else 'MISSED'})")
        print(f"peak RSS:               {r['peak_rss'] / mb:.0f} MB = "
              f"{r['peak_rss'] / size:.2f}x the caffemodel (target < 1.5x: "
              f"{'met' if r['peak_rss'] < 1.5 * size else 'MISSED'}); "
              f"{r['baseline_rss'] / mb:.0f} MB before converting (interpreter, numpy, h5py, "
              f"engine), {r['convert_rss'] / mb:.0f} MB after convert()")
        print(f"owned weights:          {'yes' if not r['mapped_views'] else 'NO'} (arrays "
              f"viewing the memory-mapped caffemodel: {len(r['mapped_views'])})")
        print(f"peak allocations:       {r['peak_traced'] / mb:.1f} MB "
              f"({r['convert_traced'] / mb:.1f} MB in convert(); tracemalloc: Python and numpy "
              "buffers, without the memory-mapped weights)")
    finally:
        if not args.keep:
            for name in os.listdir(folder):
                os.remove(os.path.join(folder, name))
            os.rmdir(folder)


if __name__ == "__main__":
    main()
