"""MNISTIter and read_idx over the real MNIST IDX files, and their errors."""
import gzip
import struct

import numpy as np
import pytest

from deepkit_engine import io


def test_mnist_iter_reads_the_idx_files(shared_data):
    folder = shared_data / "mnist"
    it = io.MNISTIter(str(folder / "t10k-images-idx3-ubyte.gz"),
                      str(folder / "t10k-labels-idx1-ubyte.gz"), batch_size=100,
                      shuffle=False)
    assert it.provide_data[0].shape == (100, 1, 28, 28)
    assert it.provide_label[0].name == "softmax_label"
    batches = list(it)
    assert len(batches) == 100
    first = batches[0]
    x = first.data[0].asnumpy()
    assert x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1 and x.max() > 0.99
    labels = np.concatenate([b.label[0].asnumpy() for b in batches])
    np.testing.assert_array_equal(np.bincount(labels.astype(int)),
                                  [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    flat = io.MNISTIter(str(folder / "t10k-images-idx3-ubyte.gz"),
                        str(folder / "t10k-labels-idx1-ubyte.gz"), batch_size=128, flat=True,
                        num_parts=2, part_index=1)
    assert flat.provide_data[0].shape == (128, 784)
    assert sum(1 for _ in flat) == 5000 // 128  # the incomplete last batch is dropped


def test_read_idx_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad-idx"
    bad.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="bad-idx is not an IDX file"):
        io.read_idx(bad)
    short = tmp_path / "short.gz"
    with gzip.open(short, "wb") as f:
        f.write(struct.pack(">BBBBI", 0, 0, 8, 1, 10) + b"\x00" * 4)
    with pytest.raises(ValueError, match="short.gz is truncated"):
        io.read_idx(short)
    good = tmp_path / "labels"
    good.write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, 3) + bytes([1, 2, 3]))
    np.testing.assert_array_equal(io.read_idx(good), [1, 2, 3])
    with pytest.raises(FileNotFoundError, match="no such file"):
        io.read_idx(tmp_path / "missing")
    with pytest.raises(TypeError, match=r"unknown argument\(s\) \['bogus'\]"):
        io.MNISTIter(str(good), str(good), bogus=1)
