"""mx.recordio (MXNet's RecordIO layout, indexes, packed headers) and mx.io.ImageRecordIter."""
import struct

import numpy as np
import pytest

from deepkit.compat import mxnet as mx

rio = mx.recordio


def test_records_round_trip_with_mxnets_byte_layout(tmp_path):
    path = str(tmp_path / "a.rec")
    magic = struct.pack("<I", 0xCED7230A)
    payloads = [b"abc", b"", b"12345678", magic + b"xy" + magic, b"q" * 9]
    with rio.MXRecordIO(path, "w") as writer:
        for p in payloads:
            writer.write(p)
    raw = open(path, "rb").read()
    # first record: magic, length 3 (flag 0), 'abc' padded to 4 bytes
    assert raw[:12] == magic + struct.pack("<I", 3) + b"abc\0"
    reader = rio.MXRecordIO(path, "r")
    assert [reader.read() for _ in payloads] == payloads
    assert reader.read() is None
    reader.reset()
    assert reader.read() == b"abc"
    reader.close()
    # a payload holding the magic is split in parts (flags 1, 2, 3), as dmlc writes it
    words = struct.unpack_from("<II", raw, 12 + 8 + 8 + 8)
    assert words == (0xCED7230A, 1 << 29)


def test_indexed_records_and_damaged_files(tmp_path):
    idx, rec = str(tmp_path / "b.idx"), str(tmp_path / "b.rec")
    writer = rio.MXIndexedRecordIO(idx, rec, "w")
    for key in (5, 2, 9):
        writer.write_idx(key, f"record {key}".encode())
    writer.close()
    assert [line.split("\t")[0] for line in open(idx).read().splitlines()] == ["5", "2", "9"]
    reader = rio.MXIndexedRecordIO(idx, rec, "r")
    assert reader.keys == [5, 2, 9] and reader.read_idx(9) == b"record 9"
    assert reader.read_idx(5) == b"record 5"
    with pytest.raises(KeyError, match="no record with key 7"):
        reader.read_idx(7)
    open(rec, "r+b").write(b"\0\0\0\0")
    with pytest.raises(ValueError, match="no record at byte 0"):
        rio.MXRecordIO(rec, "r").read()
    with pytest.raises(ValueError, match="flag must be 'r' or 'w'"):
        rio.MXRecordIO(rec, "a")


def test_pack_unpack_headers_and_images():
    header = rio.IRHeader(0, 3.0, 7, 0)
    packed = rio.pack(header, b"payload")
    assert len(packed) == 24 + 7
    assert rio.unpack(packed) == (header, b"payload")
    multi = rio.pack(rio.IRHeader(0, [1.0, 2.0, 3.0], 1, 0), b"z")
    got, rest = rio.unpack(multi)
    assert got.flag == 3 and rest == b"z"
    np.testing.assert_array_equal(got.label, [1, 2, 3])
    img = (np.arange(48 * 3) % 256).astype(np.uint8).reshape(4, 12, 3)
    got, decoded = rio.unpack_img(rio.pack_img(header, img, img_fmt=".png"))
    assert got.label == 3.0
    np.testing.assert_array_equal(decoded, img)
    with pytest.raises(ValueError, match="fewer than the 24-byte header"):
        rio.unpack(b"short")


def _write_images(tmp_path, count=5, size=(10, 12), label_width=1):
    rec = str(tmp_path / "img.rec")
    rng = np.random.default_rng(0)
    images = []
    with rio.MXRecordIO(rec, "w") as writer:
        for i in range(count):
            img = rng.integers(0, 256, size + (3,)).astype(np.uint8)
            images.append(img)
            label = float(i) if label_width == 1 else [float(i)] * label_width
            writer.write(rio.pack_img(rio.IRHeader(0, label, i, 0), img, img_fmt=".png"))
    return rec, images


def test_image_record_iter_crops_normalises_and_pads(tmp_path):
    rec, images = _write_images(tmp_path)
    it = mx.io.ImageRecordIter(path_imgrec=rec, data_shape=(3, 6, 8), batch_size=2,
                               mean_r=10.0, mean_g=20.0, mean_b=30.0, std_r=2.0, std_g=2.0,
                               std_b=2.0, scale=0.5)
    assert it.provide_data[0].shape == (2, 3, 6, 8)
    batches = list(it)
    assert [b.pad for b in batches] == [0, 0, 1]
    first = batches[0].data[0].asnumpy()[0]
    rgb = images[0][:, :, ::-1][2:8, 2:10].transpose(2, 0, 1).astype(np.float32)  # centre
    expected = (rgb - np.array([10, 20, 30]).reshape(3, 1, 1)) / 2 * 0.5
    np.testing.assert_allclose(first, expected, rtol=1e-6)
    np.testing.assert_array_equal(batches[2].label[0].asnumpy(), [4, 0])
    dropped = mx.io.ImageRecordIter(path_imgrec=rec, data_shape=(3, 6, 8), batch_size=2,
                                    round_batch=False, rand_crop=True, rand_mirror=True,
                                    shuffle=True, resize=8)
    assert len(list(dropped)) == 2
    dropped.reset()
    assert len(list(dropped)) == 2


def test_image_record_iter_label_width_and_errors(tmp_path):
    rec, _ = _write_images(tmp_path, count=2, label_width=3)
    it = mx.io.ImageRecordIter(path_imgrec=rec, data_shape=(3, 4, 4), batch_size=2,
                               label_width=3)
    assert next(it).label[0].shape == (2, 3)
    # as in MXNet, an image smaller than data_shape is enlarged before the centre crop
    big = next(mx.io.ImageRecordIter(path_imgrec=rec, data_shape=(3, 40, 40), batch_size=1,
                                     label_width=3))
    assert big.data[0].shape == (1, 3, 40, 40)
    with pytest.raises(ValueError, match="has 3 label value\\(s\\) but label_width is 1"):
        next(mx.io.ImageRecordIter(path_imgrec=rec, data_shape=(3, 4, 4), batch_size=1))
    with pytest.raises(TypeError, match=r"unknown argument\(s\) \['bogus'\]"):
        mx.io.ImageRecordIter(path_imgrec=rec, data_shape=(3, 4, 4), batch_size=1, bogus=1)
    with pytest.raises(ValueError, match="data_shape must be"):
        mx.io.ImageRecordIter(path_imgrec=rec, data_shape=(4, 4), batch_size=1)
