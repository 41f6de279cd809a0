"""mx.io.ImageRecordIter's augmenter arguments: each of MXNet 1.9.1's works or is refused."""
import numpy as np
import pytest

from deepkit.compat import mxnet as mx

rio = mx.recordio


def _write(tmp_path, count=3, size=(10, 12), channels=3, seed=0):
    rec = str(tmp_path / "img.rec")
    rng = np.random.default_rng(seed)
    images = []
    with rio.MXRecordIO(rec, "w") as writer:
        for i in range(count):
            shape = size + ((channels,) if channels > 1 else ())
            img = rng.integers(0, 256, shape).astype(np.uint8)
            images.append(img)
            writer.write(rio.pack_img(rio.IRHeader(0, float(i), i, 0), img, img_fmt=".png"))
    return rec, images


def _first(rec, data_shape=(3, 10, 12), **kwargs):
    it = mx.io.ImageRecordIter(path_imgrec=rec, data_shape=data_shape, batch_size=1, **kwargs)
    return next(it).data[0].asnumpy()[0]


def _rgb(img):
    return img[:, :, ::-1].transpose(2, 0, 1).astype(np.float32)


#: Every argument of MXNet 1.9.1's ImageRecordIter besides path_imgrec/data_shape/batch_size,
#: with a value that is not its default.
_ALL = {
    "label_width": 1, "shuffle": True, "part_index": 0, "num_parts": 1, "resize": 11,
    "rand_crop": True, "rand_mirror": True, "mean_r": 1.0, "mean_g": 2.0, "mean_b": 3.0,
    "mean_a": 4.0, "std_r": 2.0, "std_g": 2.0, "std_b": 2.0, "std_a": 2.0, "scale": 0.5,
    "round_batch": False, "seed": 3, "data_name": "x", "label_name": "y",
    "random_resized_crop": True, "max_rotate_angle": 10, "max_aspect_ratio": 0.2,
    "min_aspect_ratio": 0.8, "max_shear_ratio": 0.1, "max_crop_size": 8, "min_crop_size": 6,
    "max_random_scale": 1.2, "min_random_scale": 0.9, "max_random_area": 1.0,
    "min_random_area": 0.5, "max_img_size": 30.0, "min_img_size": 5.0, "brightness": 0.2,
    "contrast": 0.2, "saturation": 0.2, "pca_noise": 0.1, "random_h": 10, "random_s": 10,
    "random_l": 10, "rotate": 15, "rotate_list": "0,90", "fill_value": 0, "inter_method": 2,
    "pad": 2, "mirror": True, "max_random_contrast": 0.2, "max_random_illumination": 5.0,
    "dtype": "uint8", "seed_aug": 7, "preprocess_threads": 2, "prefetch_buffer": 2,
    "verbose": False, "ctx": "cpu", "device_id": 0, "aug_seq": "aug_default",
    "shuffle_chunk_seed": 1, "path_imgidx": None, "path_imglist": "", "mean_img": "",
    "shuffle_chunk_size": 0,
}
_CONFLICT_WITH_RANDOM_RESIZED_CROP = {"rand_crop", "max_crop_size", "min_crop_size",
                                      "max_random_scale", "min_random_scale"}


@pytest.mark.parametrize("name", sorted(_ALL))
def test_every_mxnet_argument_runs(tmp_path, name):
    rec, _ = _write(tmp_path)
    kwargs = {name: _ALL[name]}
    if name in ("max_random_area", "min_random_area"):
        kwargs["random_resized_crop"] = True
    if name == "min_crop_size":
        kwargs["max_crop_size"] = 8  # MXNet refuses max_crop_size < min_crop_size too
    if name == "min_aspect_ratio":
        kwargs["max_aspect_ratio"] = 1.25  # with min_aspect_ratio, max is a ratio itself
    it = mx.io.ImageRecordIter(path_imgrec=rec, data_shape=(3, 8, 8), batch_size=2, **kwargs)
    batch = next(it)
    assert batch.data[0].shape == (2, 3, 8, 8)


def test_all_compatible_arguments_together(tmp_path):
    rec, _ = _write(tmp_path)
    kwargs = {k: v for k, v in _ALL.items() if k not in _CONFLICT_WITH_RANDOM_RESIZED_CROP}
    kwargs["max_aspect_ratio"] = 1.25
    it = mx.io.ImageRecordIter(path_imgrec=rec, data_shape=(3, 8, 8), batch_size=2, **kwargs)
    batch = next(it)
    assert batch.data[0].dtype == np.uint8 and batch.data[0].shape == (2, 3, 8, 8)


def test_refused_settings_name_the_argument(tmp_path):
    rec, _ = _write(tmp_path)

    def make(**kw):
        return mx.io.ImageRecordIter(path_imgrec=rec, data_shape=(3, 8, 8), batch_size=1, **kw)

    with pytest.raises(NotImplementedError, match="shuffle_chunk_size=4"):
        make(shuffle_chunk_size=4)
    with pytest.raises(NotImplementedError, match="aug_seq='aug_other'"):
        make(aug_seq="aug_other")
    with pytest.raises(NotImplementedError, match="mean_img=.*does not exist"):
        make(mean_img=str(tmp_path / "missing.nd"))
    with pytest.raises(ValueError, match="inter_method must be one of.*got 5"):
        make(inter_method=5)
    with pytest.raises(ValueError, match="dtype must be 'float32', 'uint8' or 'int8'"):
        make(dtype="float16")
    with pytest.raises(ValueError, match="random_resized_crop=True conflicts with.*rand_crop"):
        make(random_resized_crop=True, rand_crop=True)
    with pytest.raises(ValueError, match="max_crop_size=4 is smaller than min_crop_size=6"):
        make(max_crop_size=4, min_crop_size=6)
    with pytest.raises(TypeError, match=r"unknown argument\(s\) \['max_random_hue'\]"):
        make(max_random_hue=0.1)


def test_mirror_pad_and_fill_value(tmp_path):
    rec, images = _write(tmp_path)
    np.testing.assert_array_equal(_first(rec, mirror=True), _rgb(images[0])[:, :, ::-1])
    padded = _first(rec, data_shape=(3, 14, 16), pad=2, fill_value=7)
    assert (padded[:, :2] == 7).all() and (padded[:, :, -2:] == 7).all()
    np.testing.assert_array_equal(padded[:, 2:12, 2:14], _rgb(images[0]))


def test_output_dtypes_and_random_contrast_and_illumination(tmp_path):
    rec, images = _write(tmp_path)
    raw = _first(rec, dtype="uint8", mean_r=100.0)
    assert raw.dtype == np.uint8
    np.testing.assert_array_equal(raw, _rgb(images[0]))
    signed = _first(rec, dtype="int8", mean_r=100.4, mean_g=0.0, mean_b=0.0)
    expected = np.clip(_rgb(images[0]) - np.array([100, 0, 0]).reshape(3, 1, 1), -128, 127)
    np.testing.assert_array_equal(signed, expected)
    x = _rgb(images[0])
    out = _first(rec, max_random_contrast=0.3, max_random_illumination=10.0, mean_r=5.0,
                 mean_g=5.0, mean_b=5.0, scale=0.5)
    slope, intercept = np.polyfit((x - 5).ravel(), (out / 0.5).ravel(), 1)
    assert 0.7 <= slope <= 1.3 and -10 <= intercept <= 10
    assert abs(slope - 1) > 1e-6 or abs(intercept) > 1e-6


def test_rotation_by_90_degrees_turns_the_image(tmp_path):
    rec, images = _write(tmp_path, size=(9, 9))
    out = _first(rec, data_shape=(3, 9, 9), rotate=90, dtype="uint8")
    turned = np.rot90(_rgb(images[0]), k=1, axes=(1, 2))
    # MXNet's matrix moves the turned image by one pixel: compare the overlap
    same = np.isclose(out[:, 1:, :], turned[:, :-1, :]).mean()
    assert same > 0.95


def test_scale_and_crop_size_augmenters_resize(tmp_path):
    rec, images = _write(tmp_path)
    doubled = _first(rec, max_random_scale=2.0, min_random_scale=2.0, dtype="uint8")
    assert doubled.shape == (3, 10, 12)
    assert not np.array_equal(doubled, _rgb(images[0]))
    crop = _first(rec, data_shape=(3, 4, 4), max_crop_size=8, min_crop_size=8, dtype="uint8",
                  inter_method=3)
    centre = images[0][1:9, 2:10][:, :, ::-1].reshape(4, 2, 4, 2, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(crop, centre.transpose(2, 0, 1), atol=1)
    resized = _first(rec, data_shape=(3, 5, 5), random_resized_crop=True, min_random_area=0.3,
                     max_random_area=0.6)
    assert resized.shape == (3, 5, 5)


def test_colour_augmenters_stay_in_range_and_change_pixels(tmp_path):
    rec, images = _write(tmp_path)
    for kwargs in ({"brightness": 0.5}, {"contrast": 0.5}, {"saturation": 0.5},
                   {"random_h": 30, "random_s": 30, "random_l": 30}, {"pca_noise": 2.0}):
        outs = [_first(rec, dtype="uint8", seed_aug=s, **kwargs) for s in range(4)]
        assert any(not np.array_equal(o, _rgb(images[0])) for o in outs), kwargs
        assert all(o.dtype == np.uint8 for o in outs)


def test_labels_from_an_image_list_and_a_mean_image(tmp_path):
    rec, images = _write(tmp_path)
    lst = tmp_path / "img.lst"
    lst.write_text("0\t5\t0.png\n1\t6\t1.png\n2\t7\t2.png\n")
    it = mx.io.ImageRecordIter(path_imgrec=rec, data_shape=(3, 10, 12), batch_size=3,
                               path_imglist=str(lst))
    assert next(it).label[0].asnumpy().tolist() == [5.0, 6.0, 7.0]
    mean = np.full((3, 10, 12), 50.0, np.float32)
    mean[0] = 100.0
    path = str(tmp_path / "mean.nd")
    mx.nd.save(path, {"mean_img": mx.nd.array(mean)})
    out = _first(rec, mean_img=path)
    np.testing.assert_allclose(out, _rgb(images[0]) - mean)


def test_settings_that_cannot_apply_to_the_images_name_themselves(tmp_path):
    rec, _ = _write(tmp_path, channels=1)
    for kwargs, match in (({"brightness": 0.2}, "brightness, contrast and saturation need "
                                                "3-channel"),
                          ({"random_h": 5}, "random_h, random_s and random_l need 3-channel"),
                          ({"pca_noise": 0.1}, "pca_noise needs 3-channel")):
        with pytest.raises(ValueError, match=match):
            _first(rec, data_shape=(1, 10, 12), **kwargs)
    (tmp_path / "rgb").mkdir()
    rgb, _ = _write(tmp_path / "rgb", seed=1)
    with pytest.raises(ValueError, match="inter_method=0 \\(nearest\\) cannot be used with"):
        _first(rgb, rotate=10, inter_method=0)
    with pytest.raises(ValueError, match="smaller than max_crop_size=40"):
        _first(rgb, max_crop_size=40, min_crop_size=30)
