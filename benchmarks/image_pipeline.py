"""Image pipeline throughput: decode + random-resized-crop + flip + normalize at 224x224.

Generates JPEGs (photo-like: smooth gradients, shapes and a little noise) in a
temporary folder, then measures images/s, in the same run, of

* a plain single-threaded Pillow loop doing the same work (open, RGB,
  random-resized crop via ``resize(box=...)``, flip, float32, mean/std, CHW),
* ``ImageFolderIter`` with 0 (inline), 1 and 2 worker threads, with and
  without JPEG draft decoding (``draft=``; the plain loop has no draft), and
  optionally with worker processes.

Usage::

    python benchmarks/image_pipeline.py [--images 256] [--width 500 --height 375]
                                        [--batch-size 32] [--repeat 3] [--processes]
"""
import argparse
import math
import os
import pathlib
import tempfile
import time

import numpy as np

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def make_images(root, count, width, height, classes=4, seed=0):
    """Write ``count`` JPEGs into ``root/<class>/``; returns their paths."""
    from PIL import Image, ImageDraw  # noqa: PLC0415
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    paths = []
    for i in range(count):
        folder = pathlib.Path(root) / f"class{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        a, b, c = rng.uniform(0.2, 1.0, 3)
        base = np.stack([xx / width * 255 * a, yy / height * 255 * b,
                         (xx + yy) / (width + height) * 255 * c], axis=-1)
        base += rng.normal(0, 6, base.shape)
        img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(img)
        for _ in range(6):
            x0, y0 = rng.integers(0, width - 20), rng.integers(0, height - 20)
            draw.ellipse([int(x0), int(y0), int(x0 + rng.integers(10, width // 3)),
                          int(y0 + rng.integers(10, height // 3))],
                         fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        path = folder / f"{i:05d}.jpg"
        img.save(path, quality=90)
        paths.append(path)
    return paths


def plain_pillow_loop(paths, batch_size, seed=0):
    """The baseline: one thread, the same operations, no tricks."""
    from PIL import Image  # noqa: PLC0415
    rng = np.random.default_rng(seed)
    bilinear = Image.Resampling.BILINEAR
    batch = []
    for path in paths:
        with Image.open(path) as img:
            img = img.convert("RGB")
            w, h = img.size
            area = w * h
            for _ in range(10):
                target = area * rng.uniform(0.08, 1.0)
                aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
                cw = int(round(math.sqrt(target * aspect)))
                ch = int(round(math.sqrt(target / aspect)))
                if 0 < cw <= w and 0 < ch <= h:
                    break
            else:
                cw, ch = min(w, h), min(w, h)
            x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            img = img.resize((224, 224), bilinear, box=(x0, y0, x0 + cw, y0 + ch))
            if rng.random() < 0.5:
                img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        arr = (np.asarray(img, np.float32) / 255.0 - MEAN) / STD
        batch.append(arr.transpose(2, 0, 1))
        if len(batch) == batch_size:
            np.stack(batch)
            batch = []
    if batch:
        np.stack(batch)


def pipeline(root, batch_size, workers, worker_type="thread", draft=True):
    from deepkit.data.image import ImageFolderIter  # noqa: PLC0415
    return ImageFolderIter(root, batch_size=batch_size, data_shape=(3, 224, 224),
                           random_resized_crop=True, rand_mirror=True, pixel_range=1,
                           mean=MEAN.tolist(), std=STD.tolist(), num_workers=workers,
                           worker_type=worker_type, draft=draft, seed=0,
                           last_batch_handle="pad")


def run_epochs(it, repeat):
    """Best images/s over ``repeat`` epochs, after one warm-up epoch."""
    for _ in it:
        pass
    best = 0.0
    for _ in range(repeat):
        it.reset()
        it.timing.reset()
        start = time.perf_counter()
        count = 0
        for batch in it:
            count += batch.data[0].shape[0] - batch.pad
        best = max(best, count / (time.perf_counter() - start))
    return best, it.timing


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--width", type=int, default=500)
    parser.add_argument("--height", type=int, default=375)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--processes", action="store_true",
                        help="also measure worker processes")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as root:
        paths = make_images(root, args.images, args.width, args.height)
        print(f"{args.images} JPEGs of {args.width}x{args.height}, batch {args.batch_size}, "
              f"output 3x224x224 float32, {os.cpu_count()} CPUs\n")
        print(f"{'pipeline':<44}{'images/s':>10}{'vs plain':>10}")

        best = 0.0
        for _ in range(args.repeat + 1):
            start = time.perf_counter()
            plain_pillow_loop(paths, args.batch_size)
            best = max(best, len(paths) / (time.perf_counter() - start))
        plain = best
        print(f"{'plain Pillow loop, 1 thread':<44}{plain:>10.1f}{1.0:>9.2f}x")

        configs = [(0, "thread", False), (1, "thread", False), (2, "thread", False),
                   (0, "thread", True), (1, "thread", True), (2, "thread", True)]
        if args.processes:
            configs += [(1, "process", True), (2, "process", True)]
        for workers, kind, draft in configs:
            it = pipeline(root, args.batch_size, workers, kind, draft)
            try:
                rate, timing = run_epochs(it, args.repeat)
            finally:
                it.close()
            label = (f"ImageFolderIter {workers} {kind} worker(s)" if workers
                     else "ImageFolderIter inline (0 workers)")
            label += ", draft" if draft else ""
            print(f"{label:<44}{rate:>10.1f}{rate / plain:>9.2f}x"
                  f"   (last epoch: wait {timing.wait_s:.2f} s, produce {timing.produce_s:.2f} s)")


if __name__ == "__main__":
    main()
