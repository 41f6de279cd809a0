"""Image folders as NCHW float32 batches, decoded and augmented in parallel.

:class:`ImageFolderIter` reads a class-per-folder tree (``root/<class>/<img>``)
or a list file, and decodes and augments the images in a pool of worker
threads (Pillow releases the GIL while decoding and resizing) or processes.
:class:`Augmenter` is the per-image pipeline and can be used on its own.

Randomness: every image's augmentation draws from its own generator, seeded
from the iterator's seed (``seed=``, else the global seed of
``deepkit_engine.random.seed``), the epoch and the image's position in the
epoch. So the same seed gives the same batches whatever the number or kind of
workers and however the work is scheduled, and no two workers (or epochs)
repeat each other's random draws.

Pillow is imported only when an image is opened; it comes with the ``image``
extra (``pip install 'deepkit[image]'``).
"""
import collections
import concurrent.futures as cf
import math
import multiprocessing
import os
import pathlib
import time
import warnings
import weakref
from dataclasses import dataclass

import numpy as np

from deepkit_engine.base import DeepkitError
from deepkit_engine.context import Context, cpu
from deepkit_engine.io import DataBatch, DataDesc, DataIter, seed_sequence
from deepkit_engine.ndarray import NDArray

__all__ = [
    "ImageFolderIter", "Augmenter", "ImageDecodeError", "CorruptImageWarning", "IMAGE_EXTENSIONS",
    "load_image",
]

#: File name endings treated as images in a class-per-folder tree.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".gif", ".tif", ".tiff",
                    ".webp")


class ImageDecodeError(DeepkitError, ValueError):
    """An image file that cannot be decoded (``on_error='raise'``)."""


class CorruptImageWarning(UserWarning):
    """An image was skipped because it cannot be decoded (``on_error='skip'``)."""


def _pil():
    try:
        from PIL import Image  # noqa: PLC0415 - Pillow is optional
    except ImportError as err:
        raise ImportError("deepkit.data.image needs Pillow to decode images; install the "
                          "'image' extra: pip install 'deepkit[image]'") from err
    return Image


def _bilinear():
    image = _pil()
    return getattr(getattr(image, "Resampling", image), "BILINEAR")


def _pair(value, name):
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"Augmenter: {name} must be a (low, high) pair, got {value!r}") from None
    if not 0 < lo <= hi:
        raise ValueError(f"Augmenter: {name} must satisfy 0 < low <= high, got {value!r}")
    return lo, hi


def _per_channel(value, channels, name, default):
    if value is None:
        return (default,) * channels
    values = (float(value),) * channels if np.isscalar(value) else tuple(float(v) for v in value)
    if len(values) != channels:
        raise ValueError(f"Augmenter: {name} has {len(values)} values but the images have "
                         f"{channels} channel(s)")
    return values


@dataclass(frozen=True)
class Augmenter:
    """Decode one image and turn it into a normalised CHW float32 array.

    Steps, in order (each only when enabled):

    1. Geometry, computed on the original size so that JPEGs can be decoded
       at a reduced scale (``draft``) when the output is much smaller:
       ``random_resized_crop`` (a crop of ``scale`` x area and ``ratio``
       aspect, resized to the output), else resize so that the shorter side
       is ``resize`` and ``crop`` (``'center'`` or ``'random'``) to the
       output size, else (``crop=None``) resize the whole image to the output
       size.
    2. ``rotate``: a random rotation in [-rotate, rotate] degrees.
    3. ``rand_mirror``: a horizontal flip with probability 0.5.
    4. ``brightness``, ``contrast``, ``saturation``: factors drawn from
       [1 - v, 1 + v] (as torchvision's ColorJitter), on 0-255 values.
    5. Channel order ``color`` (``'rgb'`` or ``'bgr'``), scaling to
       [0, ``pixel_range``] (255 or 1), then ``(x - mean) / std`` with
       ``mean``/``std`` given in the output's channel order and range (e.g.
       Caffe: ``color='bgr', pixel_range=255, mean=(104, 117, 123)``).

    Args:
        data_shape: Output (channels, height, width); channels 1 (grayscale) or 3.
        resize: Shorter-side length before cropping, or None.
        crop: ``'center'``, ``'random'`` or None (squash to the output size).
        random_resized_crop: Use the random-resized crop instead of resize+crop.
        scale: Area fraction range of the random-resized crop.
        ratio: Aspect ratio range of the random-resized crop.
        rand_mirror: Random horizontal flips.
        brightness: Brightness jitter strength (0: off).
        contrast: Contrast jitter strength.
        saturation: Saturation jitter strength.
        rotate: Maximum rotation in degrees (0: off).
        mean: Per-channel (or scalar) mean to subtract, or None.
        std: Per-channel (or scalar) std to divide by, or None.
        color: ``'rgb'`` or ``'bgr'``.
        pixel_range: 255 (values 0-255) or 1 (values 0-1), before mean/std.
        draft: Let the JPEG decoder skip resolution that the output does not need.
    """

    data_shape: tuple = (3, 224, 224)
    resize: int = None
    crop: str = "center"
    random_resized_crop: bool = False
    scale: tuple = (0.08, 1.0)
    ratio: tuple = (3.0 / 4.0, 4.0 / 3.0)
    rand_mirror: bool = False
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    rotate: float = 0.0
    mean: tuple = None
    std: tuple = None
    color: str = "rgb"
    pixel_range: float = 255.0
    draft: bool = True

    def __post_init__(self):
        shape = tuple(int(s) for s in self.data_shape)
        if len(shape) != 3 or shape[0] not in (1, 3) or min(shape) <= 0:
            raise ValueError(f"Augmenter: data_shape must be (channels, height, width) with 1 or "
                             f"3 channels, got {self.data_shape!r}")
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen dataclass
        set_("data_shape", shape)
        if self.resize is not None and int(self.resize) <= 0:
            raise ValueError(f"Augmenter: resize must be a positive int, got {self.resize!r}")
        if self.crop not in ("center", "random", None):
            raise ValueError(f"Augmenter: crop must be 'center', 'random' or None, got "
                             f"{self.crop!r}")
        set_("scale", _pair(self.scale, "scale"))
        set_("ratio", _pair(self.ratio, "ratio"))
        if self.scale[1] > 1:
            raise ValueError(f"Augmenter: scale must lie in (0, 1], got {self.scale!r}")
        for name in ("brightness", "contrast", "saturation", "rotate"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"Augmenter: {name} must be >= 0, got {getattr(self, name)!r}")
            set_(name, float(getattr(self, name)))
        color = str(self.color).lower()
        if color not in ("rgb", "bgr"):
            raise ValueError(f"Augmenter: color must be 'rgb' or 'bgr', got {self.color!r}")
        set_("color", color)
        if float(self.pixel_range) not in (1.0, 255.0):
            raise ValueError(f"Augmenter: pixel_range must be 255 or 1, got {self.pixel_range!r}")
        set_("pixel_range", float(self.pixel_range))
        set_("mean", _per_channel(self.mean, shape[0], "mean", 0.0))
        set_("std", _per_channel(self.std, shape[0], "std", 1.0))
        if any(s <= 0 for s in self.std):
            raise ValueError(f"Augmenter: std must be positive, got {self.std!r}")

    # -- geometry
    def _rrc_box(self, iw, ih, rng):
        area = iw * ih
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        for _ in range(10):
            target = area * rng.uniform(self.scale[0], self.scale[1])
            aspect = math.exp(rng.uniform(log_lo, log_hi))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= iw and 0 < h <= ih:
                x0 = int(rng.integers(0, iw - w + 1))
                y0 = int(rng.integers(0, ih - h + 1))
                return (x0, y0, x0 + w, y0 + h)
        in_ratio = iw / ih
        if in_ratio < self.ratio[0]:
            w, h = iw, int(round(iw / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            w, h = int(round(ih * self.ratio[1])), ih
        else:
            w, h = iw, ih
        x0, y0 = (iw - w) // 2, (ih - h) // 2
        return (x0, y0, x0 + w, y0 + h)

    def _box(self, iw, ih, rng):
        """The source box (in original pixels) that maps onto the output."""
        _, out_h, out_w = self.data_shape
        if self.random_resized_crop:
            return self._rrc_box(iw, ih, rng)
        if self.crop is None:
            return (0, 0, iw, ih)
        s = 1.0 if self.resize is None else int(self.resize) / min(iw, ih)
        s = max(s, out_w / iw, out_h / ih)  # never crop more than the image
        rw, rh = iw * s, ih * s
        if self.crop == "center":
            x0, y0 = (rw - out_w) / 2.0, (rh - out_h) / 2.0
        else:
            x0 = float(rng.integers(0, int(rw - out_w) + 1))
            y0 = float(rng.integers(0, int(rh - out_h) + 1))
        return (x0 / s, y0 / s, (x0 + out_w) / s, (y0 + out_h) / s)

    # -- the pipeline
    def load(self, path, rng):
        """Decode ``path`` and augment it with draws from ``rng``.

        Args:
            path: Image file.
            rng: A ``numpy.random.Generator``.

        Returns:
            numpy.ndarray: float32 (channels, height, width).
        """
        Image = _pil()
        channels, out_h, out_w = self.data_shape
        mode = "L" if channels == 1 else "RGB"
        with Image.open(path) as img:
            iw, ih = img.size
            box = self._box(iw, ih, rng)
            if self.draft and img.format == "JPEG":
                shrink = min((box[2] - box[0]) / out_w, (box[3] - box[1]) / out_h)
                if shrink >= 2:
                    img.draft(mode, (math.ceil(iw / shrink), math.ceil(ih / shrink)))
                    fx, fy = img.size[0] / iw, img.size[1] / ih
                    box = (box[0] * fx, box[1] * fy, box[2] * fx, box[3] * fy)
            img = img.convert(mode) if img.mode != mode else img
            img = img.resize((out_w, out_h), _bilinear(), box=box)
        return self.finish(img, rng)

    def finish(self, img, rng):
        """Apply rotation, flip, jitter and normalisation to an output-sized PIL image."""
        if self.rotate:
            img = img.rotate(float(rng.uniform(-self.rotate, self.rotate)), _bilinear())
        arr = np.asarray(img, dtype=np.float32)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if self.rand_mirror and rng.random() < 0.5:
            arr = arr[:, ::-1]
        arr = self._jitter(arr, rng)
        channels = self.data_shape[0]
        order = range(channels - 1, -1, -1) if self.color == "bgr" else range(channels)
        out = np.empty((channels, arr.shape[0], arr.shape[1]), np.float32)
        unit = self.pixel_range / 255.0
        for c, src in enumerate(order):
            np.multiply(arr[:, :, src], unit / self.std[c], out=out[c])
            if self.mean[c]:
                out[c] -= self.mean[c] / self.std[c]
        return out

    def _jitter(self, arr, rng):
        if not (self.brightness or self.contrast or self.saturation):
            return arr
        arr = np.array(arr, dtype=np.float32)  # writable copy
        gray_w = np.array([0.299, 0.587, 0.114], np.float32)
        if self.brightness:
            arr *= rng.uniform(max(0.0, 1 - self.brightness), 1 + self.brightness)
        if self.contrast:
            factor = rng.uniform(max(0.0, 1 - self.contrast), 1 + self.contrast)
            gray = arr @ gray_w if arr.shape[2] == 3 else arr[:, :, 0]
            mean = float(gray.mean())
            arr = (arr - mean) * factor + mean
        if self.saturation and arr.shape[2] == 3:
            factor = rng.uniform(max(0.0, 1 - self.saturation), 1 + self.saturation)
            gray = (arr @ gray_w)[:, :, None]
            arr = (arr - gray) * factor + gray
        return np.clip(arr, 0.0, 255.0, out=arr)


def load_image(path, augmenter, entropy, key):
    """Decode and augment one image in a worker; never raises.

    Args:
        path: Image file.
        augmenter: An :class:`Augmenter`.
        entropy: SeedSequence entropy of the iterator.
        key: Spawn key of this image (e.g. ``(0, epoch, position)``).

    Returns:
        tuple: ``(True, array, seconds)`` or ``(False, message, seconds)``.
    """
    start = time.perf_counter()
    try:
        rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=key))
        return True, augmenter.load(path, rng), time.perf_counter() - start
    except ImportError:
        raise
    except Exception as err:  # noqa: BLE001 - reported to the iterator
        return False, f"{type(err).__name__}: {err}", time.perf_counter() - start


class _Inline:
    """A 'future' computed on first ``result()`` (``num_workers=0``)."""

    def __init__(self, args):
        self.args = args

    def result(self, timeout=None):
        return load_image(*self.args)

    def cancel(self):
        return True


class _Pool:
    """The worker pool, created on first use; holds no reference to the iterator."""

    def __init__(self, num_workers, worker_type):
        self.num_workers = num_workers
        self.worker_type = worker_type
        self.executor = None
        self.closed = False
        self.stuck = False  # a worker overran its timeout: do not wait for it at shutdown

    def submit(self, *args):
        if self.num_workers == 0:
            return _Inline(args)
        if self.executor is None:
            if self.worker_type == "thread":
                self.executor = cf.ThreadPoolExecutor(self.num_workers,
                                                      thread_name_prefix="deepkit-image")
            else:
                self.executor = cf.ProcessPoolExecutor(
                    self.num_workers, mp_context=multiprocessing.get_context("spawn"))
        return self.executor.submit(load_image, *args)

    def shutdown(self):
        self.closed = True
        if self.executor is not None:
            self.executor.shutdown(wait=not self.stuck, cancel_futures=True)
            self.executor = None


def _scan_folder(root, extensions):
    if not root.is_dir():
        raise FileNotFoundError(f"ImageFolderIter: root folder {root} does not exist")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise ValueError(f"ImageFolderIter: {root} has no class sub-folders; expected "
                         "root/<class name>/<image files> (or pass list_file=)")
    samples, empty = [], []
    for label, name in enumerate(classes):
        found = []
        for dirpath, dirnames, filenames in os.walk(root / name, followlinks=True):
            dirnames.sort()
            found.extend(path for path in (os.path.join(dirpath, f) for f in sorted(filenames)
                                           if f.lower().endswith(extensions)
                                           and not f.startswith("."))
                         if os.path.isfile(path))  # regular files only (no FIFOs)
        if not found:
            empty.append(str(root / name))
        samples.extend((f, label) for f in found)
    if empty:
        raise ValueError(f"ImageFolderIter: class folder(s) without images (looked for "
                         f"{', '.join(extensions)}): {', '.join(empty)}")
    return classes, samples


def _parse_label(text, list_file, lineno):
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"ImageFolderIter: {list_file}, line {lineno}: label {text!r} is not "
                         "a number") from None
    if value != int(value):
        raise ValueError(f"ImageFolderIter: {list_file}, line {lineno}: label {text!r} is not a "
                         "whole class index")
    return int(value)


def _read_list(list_file, root):
    """``(path, label)`` pairs from a list file: MXNet ``.lst`` lines
    ``index<TAB>label<TAB>path`` or Caffe lines ``path label``."""
    list_file = pathlib.Path(list_file)
    if not list_file.is_file():
        raise FileNotFoundError(f"ImageFolderIter: list file {list_file} does not exist")
    base = pathlib.Path(root) if root is not None else list_file.parent
    samples, missing = [], []
    with open(list_file, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n\r")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) >= 3:
                if len(fields) > 3:
                    raise ValueError(f"ImageFolderIter: {list_file}, line {lineno}: "
                                     f"{len(fields) - 2} labels; only one label per image is "
                                     "supported")
                label, rel = _parse_label(fields[1], list_file, lineno), fields[2]
            else:
                parts = line.rsplit(None, 1)
                if len(parts) != 2:
                    raise ValueError(f"ImageFolderIter: {list_file}, line {lineno}: expected "
                                     f"'path label' or 'index<TAB>label<TAB>path', got {line!r}")
                rel, label = parts[0].strip(), _parse_label(parts[1], list_file, lineno)
            path = base / rel
            if not path.is_file():
                missing.append(f"line {lineno}: {path}")
            samples.append((str(path), label, lineno))
    if missing:
        shown = "; ".join(missing[:5]) + (f"; ... ({len(missing)} in all)" if len(missing) > 5
                                          else "")
        raise FileNotFoundError(f"ImageFolderIter: {list_file} names image files that do not "
                                f"exist: {shown}")
    if not samples:
        raise ValueError(f"ImageFolderIter: list file {list_file} has no entries")
    return samples


class ImageFolderIter(DataIter):
    """Batches of decoded, augmented images with their class labels.

    The images come from a class-per-folder tree (``root/<class>/...``, classes
    numbered in sorted order) or from ``list_file`` (lines ``path label`` or
    MXNet ``.lst`` lines ``index<TAB>label<TAB>path``; paths relative to
    ``root``, else to the list file's folder). Batches are
    ``DataBatch(data=[float32 (B, C, H, W)], label=[float32 (B,)])``.

    Decoding runs ahead of the consumer on ``num_workers`` worker threads or
    processes, ``prefetch`` batches deep. A file that cannot be decoded is
    skipped with one :class:`CorruptImageWarning` naming it (and left out of
    later epochs), or raises :class:`ImageDecodeError` with
    ``on_error='raise'``. A worker that takes longer than ``timeout`` seconds
    on one image raises an error naming the file instead of hanging.

    The augmentation arguments are those of :class:`Augmenter`.

    Args:
        root: The image tree, or the base folder of the list file's paths.
        batch_size: Images per batch.
        data_shape: Output (channels, height, width).
        list_file: A list file instead of the class-per-folder layout.
        shuffle: Shuffle the images every epoch (seeded).
        last_batch_handle: ``'pad'`` (the last batch repeats its own images to
            fill up, ``pad`` counts them), ``'discard'`` or ``'roll_over'``.
        num_workers: Worker threads/processes (0: decode in the calling thread).
        worker_type: ``'thread'`` (the default: Pillow and numpy release the GIL,
            so threads run in parallel without copying images between
            processes) or ``'process'`` (for augmentations that hold the GIL;
            processes are started with ``spawn``, so a script needs the usual
            ``if __name__ == "__main__":`` guard).
        on_error: ``'skip'`` or ``'raise'`` for undecodable images.
        seed: Seed of shuffling and augmentation (default: the global seed).
        num_classes: Number of classes; labels must lie in ``[0, num_classes)``.
        prefetch: How many batches are decoded ahead.
        timeout: Seconds one image may take before an error is raised.
        extensions: File endings treated as images in a folder tree.
        ctx: Context of the batches (default ``cpu()``).
        data_name: Name of the data input.
        label_name: Name of the label input.
        resize, crop, random_resized_crop, scale, ratio, rand_mirror,
        brightness, contrast, saturation, rotate, mean, std, color,
        pixel_range, draft: See :class:`Augmenter`.

    Attributes:
        classes: Class names (folder layout) or None (list file).
        samples: ``(path, label)`` of every image.
        augmenter: The :class:`Augmenter` in use.
        timing: ``wait_s`` is the time ``next()`` blocked; ``produce_s`` the
            decode+augment time summed over workers.
    """

    _own_timing = True

    def __init__(self, root=None, batch_size=32, data_shape=(3, 224, 224), list_file=None,
                 shuffle=False, last_batch_handle="pad", num_workers=2, worker_type="thread",
                 on_error="skip", seed=None, num_classes=None, prefetch=2, timeout=60.0,
                 extensions=IMAGE_EXTENSIONS, ctx=None, data_name="data",
                 label_name="softmax_label", resize=None, crop="center",
                 random_resized_crop=False, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0),
                 rand_mirror=False, brightness=0.0, contrast=0.0, saturation=0.0, rotate=0.0,
                 mean=None, std=None, color="rgb", pixel_range=255.0, draft=True):
        if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"ImageFolderIter: batch_size must be a positive int, got "
                             f"{batch_size!r}")
        if last_batch_handle not in ("pad", "discard", "roll_over"):
            raise ValueError(f"ImageFolderIter: last_batch_handle must be 'pad', 'discard' or "
                             f"'roll_over', got {last_batch_handle!r}")
        if on_error not in ("skip", "raise"):
            raise ValueError(f"ImageFolderIter: on_error must be 'skip' or 'raise', got "
                             f"{on_error!r}")
        if worker_type not in ("thread", "process"):
            raise ValueError(f"ImageFolderIter: worker_type must be 'thread' or 'process', got "
                             f"{worker_type!r}")
        if not isinstance(num_workers, (int, np.integer)) or num_workers < 0:
            raise ValueError(f"ImageFolderIter: num_workers must be an int >= 0, got "
                             f"{num_workers!r}")
        super().__init__(int(batch_size))
        self.augmenter = Augmenter(
            data_shape=data_shape, resize=resize, crop=crop,
            random_resized_crop=random_resized_crop, scale=scale, ratio=ratio,
            rand_mirror=rand_mirror, brightness=brightness, contrast=contrast,
            saturation=saturation, rotate=rotate, mean=mean, std=std, color=color,
            pixel_range=pixel_range, draft=draft)
        extensions = tuple(e.lower() for e in extensions)
        if list_file is not None:
            entries = _read_list(list_file, root)
            self.classes = None
            self.samples = [(p, lab) for p, lab, _ in entries]
            lines = [ln for _, _, ln in entries]
            where = lambda i: f"{list_file}, line {lines[i]}"  # noqa: E731
        else:
            if root is None:
                raise ValueError("ImageFolderIter: give root (a class-per-folder tree) or "
                                 "list_file")
            self.classes, self.samples = _scan_folder(pathlib.Path(root), extensions)
            where = lambda i: self.samples[i][0]  # noqa: E731
        labels = np.array([lab for _, lab in self.samples], dtype=np.int64)
        if num_classes is None:
            num_classes = len(self.classes) if self.classes is not None else int(labels.max()) + 1
        bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"ImageFolderIter: {where(i)}: label {labels[i]} is outside the class "
                             f"range 0..{num_classes - 1} ({bad.size} such label(s))")
        self.num_classes = int(num_classes)
        self.num_samples = len(self.samples)
        self._labels = labels.astype(np.float32)
        self.shuffle = bool(shuffle)
        self.last_batch_handle = last_batch_handle
        self.on_error = on_error
        self.num_workers = int(num_workers)
        self.worker_type = worker_type
        self.prefetch = max(0, int(prefetch))
        self.timeout = float(timeout)
        self.ctx = cpu() if ctx is None else Context(ctx)
        channels, height, width = self.augmenter.data_shape
        self.provide_data = [DataDesc(data_name, (self.batch_size, channels, height, width),
                                      np.float32, "NCHW")]
        self.provide_label = [DataDesc(label_name, (self.batch_size,), np.float32, "N")]
        seq = seed_sequence("ImageFolderIter", seed=seed)
        self._entropy = seq.entropy
        self._pool = _Pool(self.num_workers, worker_type)
        self._finalizer = weakref.finalize(self, _Pool.shutdown, self._pool)
        self._bad = set()
        self._pending = collections.deque()
        self._carry = np.zeros(0, np.int64)
        self._leftover = None
        self._epoch = -1
        self._current = None
        self._start_epoch()

    # -- epochs
    def _start_epoch(self):
        self._epoch += 1
        order = np.arange(self.num_samples, dtype=np.int64)
        if self.shuffle:
            rng = np.random.default_rng(np.random.SeedSequence(self._entropy,
                                                               spawn_key=(1, self._epoch)))
            rng.shuffle(order)
        self._order = np.concatenate([self._carry, order])
        self._carry = np.zeros(0, np.int64)
        self._submit_pos = 0
        self._exhausted = False

    def reset(self):
        """Start the next epoch (new shuffle and new augmentation draws)."""
        self._check_open()
        for _, _, fut in self._pending:
            fut.cancel()
        self._pending.clear()
        if self._leftover is not None:
            self._carry = self._leftover
            self._leftover = None
        self._start_epoch()

    def hard_reset(self):
        """Start the next epoch and forget rolled-over images."""
        self._leftover = None
        self._carry = np.zeros(0, np.int64)
        self.reset()

    # -- production
    def _fill(self):
        limit = (self.prefetch + 1) * self.batch_size if self.num_workers else 1
        while len(self._pending) < limit and self._submit_pos < len(self._order):
            pos = self._submit_pos
            self._submit_pos += 1
            sid = int(self._order[pos])
            if sid in self._bad:
                continue
            future = self._pool.submit(self.samples[sid][0], self.augmenter, self._entropy,
                                       (0, self._epoch, pos))
            self._pending.append((sid, pos, future))

    def _result(self, sid, future):
        path = self.samples[sid][0]
        try:
            return future.result(timeout=self.timeout)
        except cf.TimeoutError:
            self._pool.stuck = True
            raise ImageDecodeError(f"ImageFolderIter: decoding {path} took longer than "
                                   f"{self.timeout} s (timeout=)") from None
        except cf.process.BrokenProcessPool as err:
            raise RuntimeError(f"ImageFolderIter: a worker process died while decoding {path} "
                               f"({err})") from None

    def _skip(self, sid, message):
        path = self.samples[sid][0]
        if self.on_error == "raise":
            raise ImageDecodeError(f"ImageFolderIter: cannot decode {path}: {message}")
        if sid not in self._bad:
            self._bad.add(sid)
            warnings.warn(f"ImageFolderIter: skipping {path}: cannot decode it ({message})",
                          CorruptImageWarning, stacklevel=3)

    def _check_open(self):
        if self._pool.closed:
            raise RuntimeError("ImageFolderIter: the iterator is closed")

    def next(self):  # noqa: A003
        """The next :class:`DataBatch` (``index`` holds the sample numbers)."""
        self._check_open()
        if self._exhausted:
            raise StopIteration
        start = time.perf_counter()
        rows, ids, produce, delivered = [], [], 0.0, False
        try:
            while len(rows) < self.batch_size:
                self._fill()
                if not self._pending:
                    break
                sid, _, future = self._pending.popleft()
                ok, value, seconds = self._result(sid, future)
                produce += seconds
                if ok:
                    rows.append(value)
                    ids.append(sid)
                else:
                    self._skip(sid, value)
            pad = self.batch_size - len(rows)
            if pad and (not rows or self.last_batch_handle != "pad"):
                self._exhausted = True
                if rows and self.last_batch_handle == "roll_over":
                    self._leftover = np.array(ids, np.int64)
                raise StopIteration
            if pad:
                self._exhausted = True
                fill = [i % len(rows) for i in range(pad)]
                rows.extend(rows[i] for i in fill)
                ids.extend(ids[i] for i in fill)
            idx = np.array(ids, np.int64)
            data = np.stack(rows)
            batch = DataBatch(data=[self._to_nd(data)], label=[self._to_nd(self._labels[idx])],
                              pad=pad, index=idx)
            self._current = batch
            delivered = True
            return batch
        finally:
            self.timing.record(wait=time.perf_counter() - start, produce=produce,
                               batch=delivered)

    def _to_nd(self, array):
        array = np.ascontiguousarray(array)
        if self.ctx.device_type != "gpu":
            return NDArray(array, self.ctx)
        with self.ctx.device_scope():
            return NDArray(self.ctx.xp.asarray(array), self.ctx)

    def iter_next(self):
        try:
            self.next()
        except StopIteration:
            return False
        return True

    def getdata(self):
        return None if self._current is None else self._current.data

    def getlabel(self):
        return None if self._current is None else self._current.label

    def getindex(self):
        return None if self._current is None else self._current.index

    def getpad(self):
        return 0 if self._current is None else self._current.pad

    def close(self):
        """Stop the worker pool (idempotent)."""
        self._finalizer()
