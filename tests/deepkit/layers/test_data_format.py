"""Image layouts: an input that looks like the other layout is refused with the three fixes."""
import numpy as np
import pytest

import deepkit
from deepkit import layers as L


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_channels_last_images_under_channels_first_are_refused_with_the_fixes(padding):
    inp = deepkit.Input(shape=(28, 28, 1))  # the keras.io MNIST convnet's input
    with pytest.raises(ValueError) as err:
        L.Conv2D(32, kernel_size=(3, 3), padding=padding, name="c")(inp)
    text = str(err.value)
    assert "Conv2D 'c'" in text and "(None, 28, 28, 1) looks channels-last (NHWC)" in text
    for fix in ("data_format='channels_last'", "set_image_data_format('channels_last')",
                "DEEPKIT_IMAGE_DATA_FORMAT=channels_last", "deepkit.json",
                "x.transpose(0, 3, 1, 2)", "(1, 28, 28)"):
        assert fix in text


def test_channels_first_images_under_channels_last_are_refused():
    with pytest.raises(ValueError, match="looks channels-first \\(NCHW\\).*channels_first"):
        L.Conv2D(8, 3, data_format="channels_last")(deepkit.Input(shape=(1, 28, 28)))


def test_a_kernel_that_fits_the_narrow_axis_is_not_mistaken_for_a_layout_error():
    out = L.Conv2D(8, kernel_size=(5, 1))(deepkit.Input(shape=(16, 40, 1)))
    assert out.shape == (None, 8, 36, 1)


def test_the_convnet_builds_and_predicts_in_channels_last():
    inp = deepkit.Input(shape=(28, 28, 1))
    x = L.Conv2D(4, (3, 3), activation="relu", data_format="channels_last")(inp)
    x = L.MaxPooling2D(2, data_format="channels_last")(x)
    out = L.Dense(3)(L.Flatten()(x))
    model = deepkit.Model(inp, out)
    assert model.predict(np.zeros((2, 28, 28, 1), np.float32)).shape == (2, 3)


def test_the_global_setting_applies_to_layers_created_afterwards():
    try:
        deepkit.backend.set_image_data_format("channels_last")
        out = L.Conv2D(4, 3)(deepkit.Input(shape=(28, 28, 1)))
        assert out.shape == (None, 26, 26, 4)
    finally:
        deepkit.backend.set_image_data_format("channels_first")
