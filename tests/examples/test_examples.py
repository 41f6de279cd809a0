"""The examples run, in reduced form, and learn (floors a broken loop cannot reach)."""
import importlib.util
import pathlib

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_engine_demo_recovers_the_weights():
    assert load("engine_demo").main(samples=4000, steps=100) < 0.01


@pytest.mark.slow
def test_mnist_mlp_reduced():
    assert load("mnist_mlp").main(epochs=1, samples=6000, verbose=0) > 0.85


def test_custom_layer_reduced():
    assert load("custom_layer").main(epochs=1, samples=4000, verbose=0) > 0.8


def test_mnist_lenet_reduced_run_learns():
    """The README main job, on a subset for one epoch: a broken loop stays near 10%."""
    accuracy = load("mnist_lenet").main(epochs=1, samples=3000, batch_size=64, verbose=0)
    assert accuracy > 0.85


def test_feature_extraction_reduced():
    assert load("feature_extraction").main(images=200, epochs=10) > 0.9


def test_convert_and_finetune_script(shared_data, tmp_path):
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415
    env = dict(os.environ, PYTHON=sys.executable)
    result = subprocess.run(["bash", str(EXAMPLES / "convert_and_finetune.sh"),
                             str(shared_data / "caffe" / "lenet_mnist")], capture_output=True,
                            text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    accuracy = float(result.stdout.strip().splitlines()[-1].split()[-1])
    assert accuracy > 0.9


def test_custom_train_step_reduced():
    """A Model subclass overriding train_step trains with fit, callbacks and validation."""
    accuracy, history = load("custom_train_step").main(epochs=2, samples=4000, verbose=0)
    assert accuracy > 0.85
    assert len(history.history["grad_norm"]) == 2 and "val_accuracy" in history.history
    assert all(v > 0 for v in history.history["grad_norm"])


def test_keras_io_mnist_convnet_reduced():
    """The keras.io convnet script (imports and one data-format line changed) learns."""
    module = load("keras_mnist_convnet")
    try:
        accuracy = module.main(epochs=2, samples=6000, verbose=0)
    finally:
        module.keras.backend.set_image_data_format("channels_first")
    assert accuracy > 0.9  # Keras 3: 0.962 with 12,000 images and 3 epochs; deepkit: 0.963


def test_caffe_ssd_detect_draws_opencvs_detections(shared_data, tmp_path):
    """MobileNet-SSD with synthetic weights: the drawn boxes are OpenCV's detections."""
    cv2 = pytest.importorskip("cv2")
    import numpy as np  # noqa: PLC0415
    from PIL import Image  # noqa: PLC0415

    from tests.deepkit.caffe.random_weights import write_random_caffemodel  # noqa: PLC0415
    from tests.deepkit.caffe.test_detection_layers import CONF_HEADS, boost_classes  # noqa

    proto = shared_data / "caffe" / "mobilenet_ssd" / "deploy.prototxt"
    weights = write_random_caffemodel(proto, tmp_path / "ssd.caffemodel",
                                      np.random.default_rng(1),
                                      bias={n: boost_classes for n in CONF_HEADS})
    pixels = np.random.default_rng(2).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    example = load("caffe_ssd_detect")
    out = tmp_path / "boxes.png"
    found = example.main(proto, weights, tmp_path / "photo.png", out, threshold=0.3)
    drawn = np.asarray(Image.open(out).convert("RGB"))
    assert drawn.shape == pixels.shape and not np.array_equal(drawn, pixels)
    net = cv2.dnn.readNetFromCaffe(str(proto), str(weights))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    x = example.preprocess(Image.fromarray(pixels), 300, 127.5, 0.007843)
    net.setInput(x)
    want = example.detections(net.forward("detection_out"), 0.3, 320, 240)
    assert len(found) == len(want) > 0
    got, ref = np.array(sorted(f[:2] for f in found)), np.array(sorted(w[:2] for w in want))
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_mnist_distributed_on_two_devices_reduced(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))  # as `python examples/...` has: it imports mnist_lenet
    accuracy = load("mnist_distributed").main(epochs=1, samples=3000, batch_size=64, devices=2,
                                              verbose=0)
    assert accuracy > 0.85
