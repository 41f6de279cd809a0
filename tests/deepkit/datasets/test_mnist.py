"""``deepkit.datasets.mnist.load_data()``: Keras's shapes and dtypes from the bundled files."""
import numpy as np
import pytest

from deepkit.datasets import mnist

pytestmark = pytest.mark.timeout(120)


def test_load_data_like_keras(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no copy in ~/.deepkit: the bundled one is used
    monkeypatch.delenv("DEEPKIT_DATA", raising=False)
    monkeypatch.setenv("DEEPKIT_OFFLINE", "1")
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    assert x_train.shape == (60000, 28, 28) and y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert np.bincount(y_train, minlength=10).tolist() == [
        5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(y_test, minlength=10).tolist() == [
        980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert x_train.min() == 0 and x_train.max() == 255
    assert abs(x_test.mean() / 255 - 0.1325) < 1e-4
    # the checksum markers were written under the (temporary) home
    assert len(list((tmp_path / ".deepkit" / "datasets" / ".verified").iterdir())) == 4
