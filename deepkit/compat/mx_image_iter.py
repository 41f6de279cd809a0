"""MXNet's ``mx.io.ImageRecordIter``: batches of images from a RecordIO ``.rec`` file.

Each record is a packed image (``mx.recordio.pack_img``). Per sample, in the
order of MXNet 1.9.1's default augmenter (``aug_default``), on the image as
OpenCV decodes it (BGR):

1. ``resize``: the shorter side to ``resize`` pixels (``inter_method``);
2. the affine augmenter, when any of ``max_rotate_angle``, ``rotate``,
   ``rotate_list``, ``max_shear_ratio``, ``min/max_random_scale``,
   ``min/max_aspect_ratio`` (without ``random_resized_crop``) or
   ``min/max_img_size`` is set: rotation, shear, scale and aspect ratio in one
   ``warpAffine``, new pixels ``fill_value``;
3. ``pad`` pixels of ``fill_value`` on every side;
4. the crop: ``random_resized_crop`` (area in ``[min_random_area,
   max_random_area]``, aspect ratio in ``[min_aspect_ratio,
   max_aspect_ratio]``, then resized to ``data_shape``), or a square crop of a
   random size in ``[min_crop_size, max_crop_size]`` resized to
   ``data_shape``, or else a ``data_shape`` crop (random with ``rand_crop``,
   else the centre) of the image, first enlarged when it is smaller;
5. ``brightness``, ``contrast``, ``saturation`` in a random order;
   ``random_h``/``random_s``/``random_l`` in HLS space; ``pca_noise``
   (AlexNet's lighting noise);

then, into a ``(C, H, W)`` array in RGB order: mirrored with ``mirror`` (or at
random with ``rand_mirror``) and, for float32 output, ``((pixel - mean) *
contrast + illumination) * scale / std`` per channel, where ``mean`` is
``mean_r/g/b/a`` or the ``mean_img`` file and ``contrast``/``illumination``
are drawn from ``max_random_contrast``/``max_random_illumination``
(``dtype='uint8'`` keeps the pixels; ``'int8'`` subtracts the rounded mean).
Labels come from the record headers (``label_width`` values each) or from
``path_imglist``. With ``round_batch`` the last batch is completed from the
start of the data and ``pad`` counts the filler samples; otherwise it is
dropped. The random draws are deepkit's own (seeded by ``seed``/``seed_aug``),
so augmented pixels follow MXNet's distributions, not its exact values.

Decoding happens on the calling thread: ``preprocess_threads``,
``prefetch_buffer``, ``verbose``, ``ctx`` and ``device_id`` are accepted and
change nothing in the batches. Arguments that MXNet has and deepkit does not
implement (``shuffle_chunk_size`` > 0, an ``aug_seq`` other than
``'aug_default'``, a ``mean_img`` file that does not exist yet) are refused by
name.
"""
import math
import os

import numpy as np

from deepkit_engine import io as dk_io
from deepkit_engine import nd
from deepkit_engine.io import DataBatch, DataDesc

from .mx_format import load as _load_params
from .mx_recordio import MXIndexedRecordIO, MXRecordIO, unpack

__all__ = ["ImageRecordIter"]

#: Accepted; they tune MXNet's reading threads and devices and change nothing in the batches.
_NO_EFFECT = {"preprocess_threads", "prefetch_buffer", "verbose", "ctx", "device_id"}

#: The augmenter arguments of MXNet 1.9.1's ``aug_default`` with their defaults.
_AUG_DEFAULTS = {
    "random_resized_crop": False, "max_rotate_angle": 0.0, "max_aspect_ratio": 0.0,
    "min_aspect_ratio": None, "max_shear_ratio": 0.0, "max_crop_size": -1, "min_crop_size": -1,
    "max_random_scale": 1.0, "min_random_scale": 1.0, "max_random_area": 1.0,
    "min_random_area": 1.0, "max_img_size": 1e10, "min_img_size": 0.0, "brightness": 0.0,
    "contrast": 0.0, "saturation": 0.0, "pca_noise": 0.0, "random_h": 0, "random_s": 0,
    "random_l": 0, "rotate": -1.0, "rotate_list": None, "fill_value": 255, "inter_method": 1,
    "pad": 0, "mirror": False, "max_random_contrast": 0.0, "max_random_illumination": 0.0,
    "mean_img": "", "path_imglist": "", "aug_seq": "aug_default", "shuffle_chunk_size": 0,
    "shuffle_chunk_seed": 0, "seed_aug": None, "dtype": None,
}

_INTER_METHODS = (0, 1, 2, 3, 4, 9, 10)

# AlexNet's RGB eigenvectors scaled by their eigenvalues, as MXNet's pca_noise uses them.
_EIGVEC = np.array([[55.46 * -0.5675, 4.794 * 0.7192, 1.148 * 0.4009],
                    [55.46 * -0.5808, 4.794 * -0.0045, 1.148 * -0.8140],
                    [55.46 * -0.5836, 4.794 * -0.6948, 1.148 * 0.4203]], np.float32)


class ImageRecordIter(dk_io.DataIter):
    """Image batches from a ``.rec`` file, with MXNet 1.9.1's augmenter arguments.

    See the module docstring for what each augmenter does and in which order.

    Args:
        path_imgrec: The ``.rec`` file.
        data_shape: ``(channels, height, width)`` of each sample (1, 3 or 4 channels).
        batch_size: Samples per batch.
        label_width: Label values per sample.
        path_imgidx: The ``.idx`` file (records are read through it).
        shuffle: Shuffle the samples at every reset.
        part_index, num_parts: Read one of ``num_parts`` equal slices.
        resize: Resize the shorter side to this first (-1: no).
        rand_crop: Crop at a random place (else the centre).
        rand_mirror: Mirror left-right with probability 1/2.
        mean_r, mean_g, mean_b, mean_a: Per-channel means to subtract.
        std_r, std_g, std_b, std_a: Per-channel deviations to divide by.
        scale: Multiplies the result.
        round_batch: Complete the last batch from the start (else drop it).
        seed: Seed of the shuffling and (without ``seed_aug``) the augmenters.
        data_name, label_name: Names of the inputs.
        **kwargs: MXNet's other arguments: ``random_resized_crop``,
            ``max_rotate_angle``, ``rotate``, ``rotate_list``, ``max_shear_ratio``,
            ``max_aspect_ratio``, ``min_aspect_ratio``, ``max_random_scale``,
            ``min_random_scale``, ``max_random_area``, ``min_random_area``,
            ``max_crop_size``, ``min_crop_size``, ``max_img_size``,
            ``min_img_size``, ``pad``, ``fill_value``, ``inter_method`` (0 nearest,
            1 bilinear, 2 cubic, 3 area, 4 Lanczos, 9 by size change, 10 random),
            ``brightness``, ``contrast``, ``saturation``, ``random_h``,
            ``random_s``, ``random_l``, ``pca_noise``, ``mirror``,
            ``max_random_contrast``, ``max_random_illumination``, ``mean_img``,
            ``path_imglist``, ``dtype`` (``'float32'``, ``'uint8'``, ``'int8'``),
            ``seed_aug``, ``aug_seq``, ``shuffle_chunk_size``,
            ``shuffle_chunk_seed``, and those that change nothing here
            (``preprocess_threads``, ``prefetch_buffer``, ``verbose``, ``ctx``,
            ``device_id``).

    Raises:
        TypeError: An unknown argument.
        ValueError: A bad ``data_shape``, or an argument out of its range.
        NotImplementedError: An MXNet setting deepkit does not implement (named).
    """

    def __init__(self, path_imgrec, data_shape, batch_size, label_width=1, path_imgidx=None,
                 shuffle=False, part_index=0, num_parts=1, resize=-1, rand_crop=False,
                 rand_mirror=False, mean_r=0.0, mean_g=0.0, mean_b=0.0, mean_a=0.0, std_r=1.0,
                 std_g=1.0, std_b=1.0, std_a=1.0, scale=1.0, round_batch=True, seed=0,
                 data_name="data", label_name="softmax_label", **kwargs):
        unknown = sorted(set(kwargs) - set(_AUG_DEFAULTS) - _NO_EFFECT)
        if unknown:
            raise TypeError(f"ImageRecordIter: unknown argument(s) {unknown}")
        super().__init__(int(batch_size))
        data_shape = tuple(int(d) for d in data_shape)
        if len(data_shape) != 3 or data_shape[0] not in (1, 3, 4):
            raise ValueError(f"ImageRecordIter: data_shape must be (channels, height, width) "
                             f"with 1, 3 or 4 channels, got {data_shape}")
        self.data_shape = data_shape
        self.label_width = int(label_width)
        self.resize, self.rand_crop, self.rand_mirror = int(resize), bool(rand_crop), rand_mirror
        aug = dict(_AUG_DEFAULTS)
        aug.update({k: v for k, v in kwargs.items() if k in _AUG_DEFAULTS})
        self.aug = aug
        self._check_augmenters(aug)
        channels = data_shape[0]
        self.mean = np.array([mean_r, mean_g, mean_b, mean_a][:channels] if channels > 1
                             else [mean_r], np.float32).reshape(-1, 1, 1)
        self.std = np.array([std_r, std_g, std_b, std_a][:channels] if channels > 1
                            else [std_r], np.float32).reshape(-1, 1, 1)
        self.mean_img = self._mean_image(aug["mean_img"])
        self.scale = float(scale)
        self.dtype = np.dtype(aug["dtype"] or "float32")
        self.shuffle, self.round_batch = bool(shuffle), bool(round_batch)
        self.records = self._read(path_imgrec, path_imgidx)
        per_part = len(self.records) // int(num_parts)
        self.records = self.records[part_index * per_part:(part_index + 1) * per_part]
        if not self.records:
            raise ValueError(f"ImageRecordIter: {path_imgrec} has no records for part "
                             f"{part_index} of {num_parts}")
        self.label_map = self._read_imglist(aug["path_imglist"]) if aug["path_imglist"] else None
        self.rng = np.random.default_rng(seed)
        self.aug_rng = self.rng if aug["seed_aug"] is None \
            else np.random.default_rng(int(aug["seed_aug"]))
        self.data_name, self.label_name = data_name, label_name
        label_shape = (self.batch_size,) if self.label_width == 1 \
            else (self.batch_size, self.label_width)
        self.provide_data = [DataDesc(data_name, (self.batch_size,) + data_shape, self.dtype)]
        self.provide_label = [DataDesc(label_name, label_shape)]
        self.reset()

    # -- arguments ---------------------------------------------------------------------------
    def _check_augmenters(self, aug):
        if aug["aug_seq"] != "aug_default":
            raise NotImplementedError(f"ImageRecordIter: aug_seq={aug['aug_seq']!r} is not "
                                      "supported; deepkit has MXNet's 'aug_default' only")
        if int(aug["shuffle_chunk_size"]) > 0:
            raise NotImplementedError(
                f"ImageRecordIter: shuffle_chunk_size={aug['shuffle_chunk_size']} (shuffling "
                "chunks of a large file) is not supported; deepkit reads every record and "
                "shuffles them all with shuffle=True")
        if int(aug["inter_method"]) not in _INTER_METHODS:
            raise ValueError(f"ImageRecordIter: inter_method must be one of {_INTER_METHODS} "
                             f"(0 nearest, 1 bilinear, 2 cubic, 3 area, 4 Lanczos, 9 by size "
                             f"change, 10 random), got {aug['inter_method']}")
        if aug["dtype"] is not None and np.dtype(aug["dtype"]).name not in (
                "float32", "uint8", "int8"):
            raise ValueError(f"ImageRecordIter: dtype must be 'float32', 'uint8' or 'int8', "
                             f"got {aug['dtype']!r}")
        if aug["random_resized_crop"]:
            clashes = [name for name, bad in (
                ("min_random_scale", aug["min_random_scale"] != 1.0),
                ("max_random_scale", aug["max_random_scale"] != 1.0),
                ("min_crop_size", aug["min_crop_size"] != -1),
                ("max_crop_size", aug["max_crop_size"] != -1),
                ("rand_crop", self.rand_crop)) if bad]
            if clashes:
                raise ValueError(f"ImageRecordIter: random_resized_crop=True conflicts with "
                                 f"{clashes} (as in MXNet)")
            if aug["min_random_area"] > aug["max_random_area"]:
                raise ValueError(f"ImageRecordIter: min_random_area={aug['min_random_area']} "
                                 f"is larger than max_random_area={aug['max_random_area']}")
        if (aug["max_crop_size"] != -1 or aug["min_crop_size"] != -1) and \
                aug["max_crop_size"] < aug["min_crop_size"]:
            raise ValueError(f"ImageRecordIter: max_crop_size={aug['max_crop_size']} is smaller "
                             f"than min_crop_size={aug['min_crop_size']}")
        if aug["rotate_list"] is not None:
            values = aug["rotate_list"]
            if isinstance(values, str):
                values = [v for v in values.replace(",", " ").split() if v]
            aug["rotate_list"] = [int(v) for v in values]

    def _mean_image(self, path):
        if not path:
            return None
        if not os.path.exists(path):
            raise NotImplementedError(
                f"ImageRecordIter: mean_img={path!r} does not exist; MXNet would compute and "
                "write it, deepkit only reads an existing one (nd.save of {'mean_img': array})")
        saved = _load_params(path)
        value = saved.get("mean_img") if isinstance(saved, dict) else None
        if value is None:
            raise ValueError(f"ImageRecordIter: {path} holds no array named 'mean_img'")
        value = value.asnumpy().astype(np.float32)
        if value.shape != self.data_shape:
            raise ValueError(f"ImageRecordIter: the mean image in {path} has shape "
                             f"{value.shape}, data_shape is {self.data_shape}")
        return value

    def _read_imglist(self, path):
        labels = {}
        with open(path) as f:
            for line in f:
                parts = line.strip().split("\t")
                if len(parts) < 2 + self.label_width - 1:
                    continue
                labels[int(float(parts[0]))] = np.array(
                    [float(v) for v in parts[1:1 + self.label_width]], np.float32)
        return labels

    @staticmethod
    def _read(path_imgrec, path_imgidx):
        if path_imgidx:
            reader = MXIndexedRecordIO(path_imgidx, path_imgrec, "r")
            records = [reader.read_idx(k) for k in reader.keys]
        else:
            reader = MXRecordIO(path_imgrec, "r")
            records = []
            while True:
                record = reader.read()
                if record is None:
                    break
                records.append(record)
        reader.close()
        return records

    # -- iteration ---------------------------------------------------------------------------
    def reset(self):
        self.order = np.arange(len(self.records))
        if self.shuffle:
            self.rng.shuffle(self.order)
        self.cursor = 0

    def next(self):  # noqa: A003
        n = len(self.order)
        if self.cursor >= n or (not self.round_batch and self.cursor + self.batch_size > n):
            raise StopIteration
        take = [self.order[(self.cursor + i) % n] for i in range(self.batch_size)]
        pad = max(0, self.cursor + self.batch_size - n)
        self.cursor += self.batch_size
        images, labels = zip(*(self._sample(self.records[i]) for i in take))
        label = np.stack(labels)
        if self.label_width == 1:
            label = label.reshape(-1)
        data = nd.array(np.stack(images), dtype=self.dtype)
        return DataBatch(data=[data], label=[nd.array(label)], pad=pad,
                         provide_data=self.provide_data, provide_label=self.provide_label)

    # -- one sample ----------------------------------------------------------------------------
    def _sample(self, record):
        import cv2  # noqa: PLC0415 - optional dependency: image decoding
        header, payload = unpack(record)
        channels = self.data_shape[0]
        flag = {1: cv2.IMREAD_GRAYSCALE, 3: cv2.IMREAD_COLOR, 4: cv2.IMREAD_UNCHANGED}[channels]
        img = cv2.imdecode(np.frombuffer(payload, np.uint8), flag)
        if img is None:
            raise ValueError(f"ImageRecordIter: record {header.id} is not an image OpenCV can "
                             "decode")
        if channels == 4 and (img.ndim != 3 or img.shape[2] != 4):
            raise ValueError(f"ImageRecordIter: record {header.id} does not have 4 channels "
                             f"(data_shape {self.data_shape})")
        label = self._label(header)
        img = self._augment(cv2, img)
        img = img.reshape(img.shape[0], img.shape[1], -1)
        if img.shape[2] >= 3:
            img = img[:, :, [2, 1, 0] + ([3] if img.shape[2] == 4 else [])]  # BGR(A) -> RGB(A)
        rng = self.aug_rng
        flip = bool((self.rand_mirror and rng.random() < 0.5) or self.aug["mirror"])
        out = self._normalize(img.transpose(2, 0, 1), rng)  # the mean image is not mirrored
        return (np.ascontiguousarray(out[:, :, ::-1]) if flip else out), label

    def _label(self, header):
        if self.label_map is not None:
            if int(header.id) not in self.label_map:
                raise ValueError(f"ImageRecordIter: record {header.id} is not listed in "
                                 f"path_imglist={self.aug['path_imglist']!r}")
            return self.label_map[int(header.id)]
        label = np.atleast_1d(np.asarray(header.label, np.float32))
        if label.size != self.label_width:
            raise ValueError(f"ImageRecordIter: record {header.id} has {label.size} label "
                             f"value(s) but label_width is {self.label_width}")
        return label

    def _normalize(self, chw, rng):
        if self.dtype == np.uint8:
            return np.ascontiguousarray(chw)
        mean = self.mean_img if self.mean_img is not None else self.mean
        if self.dtype == np.int8:
            return np.clip(chw.astype(np.int16) - np.round(mean).astype(np.int16), -128,
                           127).astype(np.int8)
        contrast, illumination = 1.0, 0.0
        if self.aug["max_random_contrast"] or self.aug["max_random_illumination"]:
            c, i = float(self.aug["max_random_contrast"]), float(self.aug[
                "max_random_illumination"])
            contrast = rng.random() * c * 2 - c + 1
            illumination = rng.random() * i * 2 - i
        out = (chw.astype(np.float32) - mean) * np.float32(contrast) + np.float32(illumination)
        return out * (np.float32(self.scale) / self.std)

    def _inter(self, method, old_w, old_h, new_w, new_h):
        if method == 9:
            if new_w > old_w and new_h > old_h:
                return 2
            return 3 if new_w < old_w and new_h < old_h else 1
        if method == 10:
            return int(self.aug_rng.integers(0, 5))
        return method

    def _augment(self, cv2, img):
        a, rng = self.aug, self.aug_rng
        _, height, width = self.data_shape
        method = int(a["inter_method"])
        if a["min_aspect_ratio"] is not None:
            max_ar, min_ar = float(a["max_aspect_ratio"]), float(a["min_aspect_ratio"])
        else:
            max_ar, min_ar = 1 + float(a["max_aspect_ratio"]), 1 - float(a["max_aspect_ratio"])
        if self.resize != -1:
            h, w = img.shape[:2]
            new_h, new_w = (self.resize * h // w, self.resize) if h > w \
                else (self.resize, self.resize * w // h)
            img = cv2.resize(img, (new_w, new_h),
                             interpolation=self._inter(method, w, h, new_w, new_h))
        fill = (a["fill_value"],) * 4
        if (a["max_rotate_angle"] > 0 or a["max_shear_ratio"] > 0 or a["rotate"] > 0
                or a["rotate_list"] or a["max_random_scale"] != 1.0
                or a["min_random_scale"] != 1.0
                or (not a["random_resized_crop"] and (min_ar != 1.0 or max_ar != 1.0))
                or a["max_img_size"] != 1e10 or a["min_img_size"] != 0.0):
            img = self._affine(cv2, img, min_ar, max_ar, method, fill)
        if int(a["pad"]) > 0:
            p = int(a["pad"])
            img = cv2.copyMakeBorder(img, p, p, p, p, cv2.BORDER_CONSTANT, value=fill)
        cropped = False
        if a["random_resized_crop"]:
            if a["max_random_area"] != 1.0 or a["min_random_area"] != 1.0 or \
                    max_ar != 1.0 or min_ar != 1.0:
                if min_ar <= 0 or min_ar > max_ar:
                    raise ValueError(f"ImageRecordIter: random_resized_crop needs 0 < "
                                     f"min_aspect_ratio <= max_aspect_ratio, got {min_ar} and "
                                     f"{max_ar}")
                area = img.shape[0] * img.shape[1]
                for _ in range(10):
                    target = area * rng.uniform(a["min_random_area"], a["max_random_area"])
                    ratio = rng.uniform(min_ar, max_ar)
                    # std::round: halves away from zero (Python's round goes to even)
                    y_len = math.floor(math.sqrt(target / ratio) + 0.5)
                    x_len = math.floor(math.sqrt(target * ratio) + 0.5)
                    if rng.random() > 0.5:
                        y_len, x_len = x_len, y_len
                    if y_len <= img.shape[0] and x_len <= img.shape[1]:
                        y = int(rng.integers(0, img.shape[0] - y_len + 1))
                        x = int(rng.integers(0, img.shape[1] - x_len + 1))
                        img = cv2.resize(img[y:y + y_len, x:x + x_len], (width, height),
                                         interpolation=self._inter(method, x_len, y_len, width,
                                                                   height))
                        cropped = True
                        break
        elif a["max_crop_size"] != -1 or a["min_crop_size"] != -1:
            h, w = img.shape[:2]
            if w < a["max_crop_size"] or h < a["max_crop_size"]:
                raise ValueError(f"ImageRecordIter: an image of {h}x{w} pixels is smaller than "
                                 f"max_crop_size={a['max_crop_size']}")
            size = int(rng.integers(a["min_crop_size"], a["max_crop_size"] + 1))
            y, x = h - size, w - size
            if self.rand_crop:
                y, x = int(rng.integers(0, y + 1)), int(rng.integers(0, x + 1))
            else:
                y, x = y // 2, x // 2
            img = cv2.resize(img[y:y + size, x:x + size], (width, height),
                             interpolation=self._inter(method, size, size, width, height))
            cropped = True
        if not cropped:
            img = self._center_or_random_crop(cv2, img, method)
        if a["brightness"] > 0 or a["contrast"] > 0 or a["saturation"] > 0:
            img = self._color_jitter(cv2, img)
        if a["random_h"] or a["random_s"] or a["random_l"]:
            img = self._hls_jitter(cv2, img)
        if a["pca_noise"] > 0:
            if img.ndim != 3 or img.shape[2] != 3:
                raise ValueError("ImageRecordIter: pca_noise needs 3-channel images "
                                 f"(data_shape {self.data_shape})")
            alpha = rng.normal(0, a["pca_noise"], 3).astype(np.float32)
            rgb = _EIGVEC @ alpha
            bgr = rgb[::-1]
            noisy = np.trunc(img.astype(np.float32) + bgr.reshape(1, 1, 3))
            img = np.clip(noisy, 0, 255).astype(np.uint8)
        return img

    def _affine(self, cv2, img, min_ar, max_ar, method, fill):
        a, rng = self.aug, self.aug_rng
        shear = rng.random() * a["max_shear_ratio"] * 2 - a["max_shear_ratio"]
        limit = int(a["max_rotate_angle"])
        angle = int(rng.integers(-limit, limit + 1)) if limit > 0 else 0
        if a["rotate"] > 0:
            angle = a["rotate"]
        if a["rotate_list"]:
            angle = a["rotate_list"][int(rng.integers(0, len(a["rotate_list"])))]
        cos_a, sin_a = math.cos(angle / 180 * math.pi), math.sin(angle / 180 * math.pi)
        scale, ratio = 1.0, 1.0
        if not a["random_resized_crop"]:
            scale = rng.random() * (a["max_random_scale"] - a["min_random_scale"]) + \
                a["min_random_scale"]
            ratio = rng.random() * (max_ar - min_ar) + min_ar
        hs = 2 * scale / (1 + ratio)
        ws = ratio * hs
        h, w = img.shape[:2]
        new_w = max(a["min_img_size"], min(a["max_img_size"], scale * w))
        new_h = max(a["min_img_size"], min(a["max_img_size"], scale * h))
        m = np.array([[hs * cos_a - shear * sin_a * ws, hs * sin_a + shear * cos_a * ws, 0],
                      [-sin_a * ws, cos_a * ws, 0]], np.float32)
        m[0, 2] = (new_w - (m[0, 0] * w + m[0, 1] * h)) / 2
        m[1, 2] = (new_h - (m[1, 0] * w + m[1, 1] * h)) / 2
        if method == 0:
            raise ValueError("ImageRecordIter: inter_method=0 (nearest) cannot be used with the "
                             "affine augmenters (rotation, shear, scale, aspect ratio), as in "
                             "MXNet")
        size = (int(new_w), int(new_h))
        return cv2.warpAffine(img, m, size, flags=self._inter(method, w, h, *size),
                              borderMode=cv2.BORDER_CONSTANT, borderValue=fill)

    def _center_or_random_crop(self, cv2, img, method):
        _, height, width = self.data_shape
        h, w = img.shape[:2]
        if h < height:
            new_w = int(height / h * w)
            img = cv2.resize(img, (new_w, height),
                             interpolation=self._inter(method, w, h, width, height))
            h, w = img.shape[:2]
        if w < width:
            new_h = int(width / w * h)
            img = cv2.resize(img, (width, new_h),
                             interpolation=self._inter(method, w, h, width, height))
            h, w = img.shape[:2]
        if h < height or w < width:
            raise ValueError(f"ImageRecordIter: an image of {h}x{w} pixels stays smaller than "
                             f"data_shape {self.data_shape} after enlarging")
        y, x = h - height, w - width
        if self.rand_crop:
            y, x = int(self.aug_rng.integers(0, y + 1)), int(self.aug_rng.integers(0, x + 1))
        else:
            y, x = y // 2, x // 2
        return img[y:y + height, x:x + width]

    def _color_jitter(self, cv2, img):
        a, rng = self.aug, self.aug_rng
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError("ImageRecordIter: brightness, contrast and saturation need 3-channel "
                             f"images (data_shape {self.data_shape})")
        alpha_b = 1 + rng.uniform(-a["brightness"], a["brightness"])
        alpha_c = 1 + rng.uniform(-a["contrast"], a["contrast"])
        alpha_s = 1 + rng.uniform(-a["saturation"], a["saturation"])
        img = img.astype(np.float32)
        for step in rng.permutation(3):
            if step == 0:
                img = img * alpha_b
            else:
                # MXNet converts its BGR pixels with RGB2GRAY here; kept for equal results
                gray = cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
                if step == 1:
                    img = img * alpha_c + (1 - alpha_c) * gray.mean()
                else:
                    img = img * alpha_s + (1 - alpha_s) * gray.astype(np.float32)[:, :, None]
            img = np.clip(np.round(img), 0, 255)
        return img.astype(np.uint8)

    def _hls_jitter(self, cv2, img):
        a, rng = self.aug, self.aug_rng
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError("ImageRecordIter: random_h, random_s and random_l need 3-channel "
                             f"images (data_shape {self.data_shape})")
        hls = cv2.cvtColor(img, cv2.COLOR_BGR2HLS).astype(np.int32)
        shifts = []
        for limit in (a["random_h"], a["random_s"], a["random_l"]):
            r = (rng.random() + 4 * rng.random()) / 5
            shifts.append(int(r * limit * 2 - limit))
        h, s, l_ = shifts
        hls += np.array([h, l_, s], np.int32)
        hls = np.clip(hls, 0, np.array([180, 255, 255]))
        return cv2.cvtColor(hls.astype(np.uint8), cv2.COLOR_HLS2BGR)
