"""MXNet's ``mx.io.ImageRecordIter``: batches of images from a RecordIO ``.rec`` file.

Each record is a packed image (``mx.recordio.pack_img``). Per sample, in
MXNet's order: decode (OpenCV, to RGB), resize the shorter side to
``resize`` (if > 0), crop to ``data_shape`` (at random with ``rand_crop``,
else the centre), mirror at random (``rand_mirror``), then
``(pixel - mean) / std * scale`` per channel, as a ``(C, H, W)`` float32
array. Labels come from the record headers (``label_width`` values each).
With ``round_batch`` the last batch is completed from the start of the data
and ``pad`` counts the filler samples; otherwise it is dropped.

Decoding happens on the calling thread (``preprocess_threads`` and
``prefetch_buffer`` are accepted and not used).
"""
import numpy as np

from deepkit_engine import io as dk_io
from deepkit_engine import nd
from deepkit_engine.io import DataBatch, DataDesc

from .mx_recordio import MXIndexedRecordIO, MXRecordIO, unpack

__all__ = ["ImageRecordIter"]

_COMPAT_ONLY = {"preprocess_threads", "prefetch_buffer", "verbose", "inter_method",
                "max_random_scale", "min_random_scale", "max_aspect_ratio", "max_rotate_angle",
                "pad", "fill_value", "dtype"}


class ImageRecordIter(dk_io.DataIter):
    """Image batches from a ``.rec`` file, with MXNet's usual augmenter arguments.

    Args:
        path_imgrec: The ``.rec`` file.
        data_shape: ``(channels, height, width)`` of each sample.
        batch_size: Samples per batch.
        label_width: Label values per sample.
        path_imgidx: The ``.idx`` file (needed for ``num_parts`` > 1 with keys).
        shuffle: Shuffle the samples at every reset.
        part_index, num_parts: Read one of ``num_parts`` equal slices.
        resize: Resize the shorter side to this first (-1: no).
        rand_crop: Crop at a random place (else the centre).
        rand_mirror: Mirror left-right with probability 1/2.
        mean_r, mean_g, mean_b, mean_a: Per-channel means to subtract.
        std_r, std_g, std_b, std_a: Per-channel deviations to divide by.
        scale: Multiplies the result.
        round_batch: Complete the last batch from the start (else drop it).
        seed: Seed of the shuffling and the random augmenters.
        data_name, label_name: Names of the inputs.

    Raises:
        TypeError: An unknown argument.
        ValueError: A bad ``data_shape`` or an image smaller than the crop.
    """

    def __init__(self, path_imgrec, data_shape, batch_size, label_width=1, path_imgidx=None,
                 shuffle=False, part_index=0, num_parts=1, resize=-1, rand_crop=False,
                 rand_mirror=False, mean_r=0.0, mean_g=0.0, mean_b=0.0, mean_a=0.0, std_r=1.0,
                 std_g=1.0, std_b=1.0, std_a=1.0, scale=1.0, round_batch=True, seed=0,
                 data_name="data", label_name="softmax_label", **kwargs):
        unknown = sorted(set(kwargs) - _COMPAT_ONLY)
        if unknown:
            raise TypeError(f"ImageRecordIter: unknown argument(s) {unknown}")
        super().__init__(int(batch_size))
        data_shape = tuple(int(d) for d in data_shape)
        if len(data_shape) != 3 or data_shape[0] not in (1, 3, 4):
            raise ValueError(f"ImageRecordIter: data_shape must be (channels, height, width) "
                             f"with 1, 3 or 4 channels, got {data_shape}")
        self.data_shape = data_shape
        self.label_width = int(label_width)
        self.resize, self.rand_crop, self.rand_mirror = int(resize), rand_crop, rand_mirror
        channels = data_shape[0]
        self.mean = np.array([mean_r, mean_g, mean_b, mean_a][:channels] if channels > 1
                             else [mean_r], np.float32).reshape(-1, 1, 1)
        self.std = np.array([std_r, std_g, std_b, std_a][:channels] if channels > 1
                            else [std_r], np.float32).reshape(-1, 1, 1)
        self.scale = float(scale)
        self.shuffle, self.round_batch = bool(shuffle), bool(round_batch)
        self.records = self._read(path_imgrec, path_imgidx)
        per_part = len(self.records) // int(num_parts)
        self.records = self.records[part_index * per_part:(part_index + 1) * per_part]
        if not self.records:
            raise ValueError(f"ImageRecordIter: {path_imgrec} has no records for part "
                             f"{part_index} of {num_parts}")
        self.rng = np.random.default_rng(seed)
        self.data_name, self.label_name = data_name, label_name
        label_shape = (self.batch_size,) if self.label_width == 1 \
            else (self.batch_size, self.label_width)
        self.provide_data = [DataDesc(data_name, (self.batch_size,) + data_shape)]
        self.provide_label = [DataDesc(label_name, label_shape)]
        self.reset()

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
        return DataBatch(data=[nd.array(np.stack(images))], label=[nd.array(label)], pad=pad,
                         provide_data=self.provide_data, provide_label=self.provide_label)

    def _sample(self, record):
        import cv2  # noqa: PLC0415 - optional dependency: image decoding
        header, payload = unpack(record)
        channels, height, width = self.data_shape
        img = cv2.imdecode(np.frombuffer(payload, np.uint8),
                           cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"ImageRecordIter: record {header.id} is not an image OpenCV can "
                             "decode")
        if img.ndim == 3:
            img = img[:, :, ::-1]  # BGR -> RGB, as MXNet feeds images
        if self.resize > 0:
            h, w = img.shape[:2]
            ratio = self.resize / min(h, w)
            img = cv2.resize(np.ascontiguousarray(img), (max(1, round(w * ratio)),
                                                         max(1, round(h * ratio))))
        h, w = img.shape[:2]
        if h < height or w < width:
            raise ValueError(f"ImageRecordIter: record {header.id} is {h}x{w} pixels, smaller "
                             f"than data_shape {self.data_shape}; set resize")
        if self.rand_crop:
            top, left = self.rng.integers(0, h - height + 1), self.rng.integers(0, w - width + 1)
        else:
            top, left = (h - height) // 2, (w - width) // 2
        img = img[top:top + height, left:left + width]
        if self.rand_mirror and self.rng.random() < 0.5:
            img = img[:, ::-1]
        chw = img.reshape(height, width, -1).transpose(2, 0, 1).astype(np.float32)
        chw = (chw - self.mean) / self.std * self.scale
        label = np.atleast_1d(np.asarray(header.label, np.float32))[:self.label_width]
        return chw, label
