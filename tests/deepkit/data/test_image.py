"""ImageFolderIter on a small tree of generated images."""
import sys
import time
import threading
import warnings

import numpy as np
import pytest

import deepkit_engine as dk
from deepkit_engine import generators as dk_generators

Image = pytest.importorskip("PIL.Image")

from deepkit.data import image as image_mod  # noqa: E402
from deepkit.data.image import (Augmenter, CorruptImageWarning, ImageDecodeError,  # noqa: E402
                                ImageFolderIter)

pytestmark = pytest.mark.timeout(60)

COLORS = {"blue": (20, 40, 230), "green": (30, 200, 60), "red": (210, 30, 20)}


@pytest.fixture
def tree(tmp_path):
    """root/<color>/<n>.{png,jpg}: 3 classes x 3 images of different sizes, each a flat color
    with a little noise (PNG files are exactly flat)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for name, rgb in COLORS.items():
        (root / name).mkdir(parents=True)
        for i, (h, w) in enumerate([(40, 56), (64, 48), (50, 50)]):
            pixels = np.empty((h, w, 3), np.uint8)
            pixels[:] = rgb
            if i == 1:
                noise = rng.integers(-10, 10, (h, w, 3))
                pixels = np.clip(pixels + noise, 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(root / name / f"{i}.jpg", quality=95)
            else:
                Image.fromarray(pixels).save(root / name / f"{i}.png")
    (root / "red" / "notes.txt").write_text("not an image, and not an image extension")
    return root


def _image_threads():
    return [t for t in threading.enumerate() if t.name.startswith("deepkit-image")]


def _epoch(it):
    data, labels, pads = [], [], []
    for batch in it:
        data.append(batch.data[0].asnumpy())
        labels.append(batch.label[0].asnumpy())
        pads.append(batch.pad)
    return data, labels, pads


def test_labels_shapes_and_values(tree):
    with ImageFolderIter(tree, batch_size=4, data_shape=(3, 16, 20), resize=24) as it:
        assert it.classes == ["blue", "green", "red"]
        assert it.num_samples == 9 and it.num_classes == 3
        assert it.provide_data[0].shape == (4, 3, 16, 20)
        assert it.provide_label[0].shape == (4,)
        data, labels, pads = _epoch(it)
    assert pads == [0, 0, 3]
    assert all(d.shape == (4, 3, 16, 20) and d.dtype == np.float32 for d in data)
    labels = np.concatenate(labels)[:9]
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1, 1, 2, 2, 2])
    images = np.concatenate(data)[:9]
    assert images.min() >= 0 and images.max() <= 255
    for img, label in zip(images, labels):
        rgb = COLORS[it.classes[int(label)]]
        np.testing.assert_allclose(img.mean(axis=(1, 2)), rgb, atol=4)


def test_scaling_bgr_and_normalisation(tree):
    common = dict(batch_size=3, data_shape=(3, 8, 8), crop=None, num_workers=0)
    rgb = _epoch(ImageFolderIter(tree, pixel_range=1, **common))[0][0]
    assert rgb.min() >= 0 and rgb.max() <= 1
    # the first image (blue, a flat PNG) is exact
    np.testing.assert_allclose(rgb[0, :, 0, 0], np.array(COLORS["blue"]) / 255, rtol=1e-6)
    bgr = _epoch(ImageFolderIter(tree, pixel_range=1, color="bgr", **common))[0][0]
    np.testing.assert_array_equal(bgr, rgb[:, ::-1])
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    norm = _epoch(ImageFolderIter(tree, pixel_range=1, mean=mean, std=std, **common))[0][0]
    expected = (rgb - np.array(mean)[None, :, None, None]) / np.array(std)[None, :, None, None]
    np.testing.assert_allclose(norm, expected, rtol=1e-5, atol=1e-6)
    caffe = _epoch(ImageFolderIter(tree, color="bgr", mean=(104, 117, 123), **common))[0][0]
    np.testing.assert_allclose(caffe[0, :, 0, 0], np.array(COLORS["blue"][::-1]) -
                               [104, 117, 123], atol=1e-4)


def test_grayscale(tree):
    data = _epoch(ImageFolderIter(tree, batch_size=9, data_shape=(1, 10, 10), num_workers=0))[0]
    assert data[0].shape == (9, 1, 10, 10)
    gray_blue = 0.299 * 20 + 0.587 * 40 + 0.114 * 230
    assert abs(float(data[0][0].mean()) - gray_blue) < 2


AUGMENT = dict(batch_size=4, data_shape=(3, 16, 16), shuffle=True, random_resized_crop=True,
               rand_mirror=True, brightness=0.4, contrast=0.4, saturation=0.4, rotate=15)


def _two_epochs(it):
    out = []
    for _ in range(2):
        data, labels, _ = _epoch(it)
        out.append((np.concatenate(data), np.concatenate(labels)))
        it.reset()
    it.close()
    return out


def test_augmentation_is_reproducible_by_seed(tree, monkeypatch):
    a = _two_epochs(ImageFolderIter(tree, seed=5, num_workers=2, **AUGMENT))
    b = _two_epochs(ImageFolderIter(tree, seed=5, num_workers=0, **AUGMENT))
    c = _two_epochs(ImageFolderIter(tree, seed=6, num_workers=2, **AUGMENT))
    for (xa, ya), (xb, yb) in zip(a, b):  # same seed, different worker counts: same batches
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a[0][0], c[0][0])
    assert not np.array_equal(a[0][1], a[1][1])  # a new order each epoch
    # no image is augmented the same way twice (within or across epochs)
    flat = np.concatenate([a[0][0][:9], a[1][0][:9]]).reshape(18, -1)
    assert len({row.tobytes() for row in flat}) == 18
    # without seed=, the global seed decides
    monkeypatch.setattr(dk_generators, "_seed_value", dk_generators.seed_value())
    dk.random.seed(42)
    g1 = _two_epochs(ImageFolderIter(tree, **AUGMENT))
    dk.random.seed(42)
    g2 = _two_epochs(ImageFolderIter(tree, **AUGMENT))
    np.testing.assert_array_equal(g1[1][0], g2[1][0])


def test_process_workers_match_threads(tree):
    kwargs = dict(AUGMENT, shuffle=False, batch_size=9, seed=1)
    threads = _epoch(ImageFolderIter(tree, num_workers=1, **kwargs))[0]
    with ImageFolderIter(tree, num_workers=1, worker_type="process", **kwargs) as it:
        processes = _epoch(it)[0]
    np.testing.assert_array_equal(threads[0], processes[0])


def test_corrupt_file_skipped_with_one_warning(tree):
    bad = tree / "green" / "9_broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    truncated = tree / "blue" / "9_cut.jpg"
    full = (tree / "green" / "1.jpg").read_bytes()
    truncated.write_bytes(full[: len(full) // 3])
    it = ImageFolderIter(tree, batch_size=4, data_shape=(3, 8, 8), num_workers=2,
                         last_batch_handle="discard")
    assert it.num_samples == 11
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = _epoch(it)
        it.reset()
        second = _epoch(it)
    it.close()
    messages = [str(w.message) for w in caught if issubclass(w.category, CorruptImageWarning)]
    assert len(messages) == 2, messages  # one per bad file, not one per epoch
    assert any(str(bad) in m for m in messages) and any(str(truncated) in m for m in messages)
    for data, labels, pads in (first, second):
        assert len(data) == 2 and pads == [0, 0]  # 9 good images -> 2 full batches
        assert all(np.isfinite(d).all() for d in data)


def test_corrupt_file_raises_when_asked(tree):
    bad = tree / "red" / "bad.jpg"
    bad.write_bytes(b"definitely not a jpeg")
    it = ImageFolderIter(tree, batch_size=3, data_shape=(3, 8, 8), on_error="raise")
    with pytest.raises(ImageDecodeError, match=r"cannot decode .*bad\.jpg"):
        _epoch(it)
    it.close()


def test_list_files(tree, tmp_path):
    lst = tmp_path / "train.lst"  # MXNet: index, label, path relative to root
    lst.write_text("0\t2\tred/0.png\n1\t0\tblue/1.jpg\n2\t1.0\tgreen/2.png\n")
    it = ImageFolderIter(tree, list_file=lst, batch_size=3, data_shape=(3, 8, 8))
    data, labels, _ = _epoch(it)
    np.testing.assert_array_equal(labels[0], [2, 0, 1])
    assert it.classes is None and it.num_classes == 3
    caffe = tree / "caffe.txt"  # Caffe: "path label", relative to the list file's folder
    caffe.write_text("red/1.jpg 1\n# a comment\n\nblue/0.png 0\n")
    it2 = ImageFolderIter(list_file=caffe, batch_size=2, data_shape=(3, 8, 8), num_workers=0)
    np.testing.assert_array_equal(_epoch(it2)[1][0], [1, 0])


def test_bad_input_errors(tree, tmp_path):
    missing = tmp_path / "missing.lst"
    missing.write_text("red/0.png 0\nred/nope.png 1\n")
    with pytest.raises(FileNotFoundError, match=r"missing\.lst.*line 2: .*nope\.png"):
        ImageFolderIter(tree, list_file=missing)
    out_of_range = tmp_path / "range.lst"
    out_of_range.write_text("red/0.png 0\nred/1.jpg 7\n")
    with pytest.raises(ValueError, match=r"range\.lst, line 2: label 7 is outside the class "
                                         r"range 0\.\.2"):
        ImageFolderIter(tree, list_file=out_of_range, num_classes=3)
    with pytest.raises(ValueError, match="label 'x' is not a number"):
        (tmp_path / "x.lst").write_text("red/0.png x\n")
        ImageFolderIter(tree, list_file=tmp_path / "x.lst")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="has no class sub-folders"):
        ImageFolderIter(empty)
    (empty / "cls").mkdir()
    with pytest.raises(ValueError, match=r"without images .*empty/cls"):
        ImageFolderIter(empty)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageFolderIter(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="mean has 2 values but the images have 3"):
        ImageFolderIter(tree, mean=(1, 2))
    with pytest.raises(ValueError, match="pixel_range"):
        ImageFolderIter(tree, pixel_range=2)


def test_roll_over_and_timing(tree):
    it = ImageFolderIter(tree, batch_size=4, data_shape=(3, 8, 8), last_batch_handle="roll_over")
    first = _epoch(it)
    it.reset()
    second = _epoch(it)
    # epoch 1: 8 images + 1 rolled over; epoch 2: 1 + 9 = 2 batches + 2 rolled over
    assert len(first[0]) == 2 and len(second[0]) == 2
    np.testing.assert_array_equal(second[1][0][0], 2)  # the rolled-over image opens epoch 2
    assert it.timing.batches == 4 and it.timing.produce_s > 0 and it.timing.wait_s > 0
    it.close()


def test_close_leaves_no_worker_thread(tree):
    before = _image_threads()
    it = ImageFolderIter(tree, batch_size=2, data_shape=(3, 8, 8), num_workers=2)
    it.next()
    assert len(_image_threads()) > len(before)
    it.close()
    assert _image_threads() == before
    with pytest.raises(RuntimeError, match="closed"):
        it.next()
    it2 = ImageFolderIter(tree, batch_size=2, data_shape=(3, 8, 8), num_workers=2)
    it2.next()
    del it2
    assert _image_threads() == before


def test_augmenter_geometry():
    aug = Augmenter(data_shape=(3, 10, 20), resize=30, crop="center")
    box = aug._box(60, 40, np.random.default_rng(0))  # 60x40 -> 45x30, then a 20x10 crop
    assert box == pytest.approx((12.5 / 0.75, 10 / 0.75, 32.5 / 0.75, 20 / 0.75))
    rrc = Augmenter(data_shape=(3, 8, 8), random_resized_crop=True, scale=(0.25, 0.5))
    rng = np.random.default_rng(1)
    for _ in range(20):
        x0, y0, x1, y1 = rrc._box(100, 80, rng)
        assert 0 <= x0 < x1 <= 100 and 0 <= y0 < y1 <= 80
        assert 0.2 * 8000 <= (x1 - x0) * (y1 - y0) <= 0.55 * 8000


def test_missing_pillow_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r"deepkit\[image\]"):
        image_mod._pil()


def test_a_stuck_decode_raises_instead_of_hanging(tree, monkeypatch):
    real_load = Augmenter.load

    def slow_load(self, path, rng):
        if path.endswith("0.png"):
            time.sleep(0.6)
        return real_load(self, path, rng)

    monkeypatch.setattr(Augmenter, "load", slow_load)
    before = _image_threads()
    it = ImageFolderIter(tree, batch_size=2, data_shape=(3, 8, 8), num_workers=1, timeout=0.1)
    with pytest.raises(ImageDecodeError, match=r"decoding .*0\.png took longer than 0\.1 s"):
        it.next()
    start = time.perf_counter()
    it.close()  # does not wait for the stuck worker
    assert time.perf_counter() - start < 0.4
    for thread in set(_image_threads()) - set(before):
        thread.join(5)
    assert _image_threads() == before
