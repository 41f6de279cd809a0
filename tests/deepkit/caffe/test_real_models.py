"""The real Caffe models in the shared data folder: they convert, and every layer matches
OpenCV's dnn Caffe importer (fusion off) within max|diff| <= 1e-4 * max|ref| + 1e-5;
the converted LeNet classifies MNIST at >= 99.0%.
"""
import numpy as np
import pytest

from deepkit.caffe import convert_record as convert  # the per-layer record is what is checked
from deepkit.caffe import verify
from deepkit.caffe import load_converted
from deepkit.caffe.verify import run

from .nets import assert_close, opencv_forward

cv2 = pytest.importorskip("cv2")

MODELS = ["lenet_mnist", "lenet_mnist_v1", "cifar10_full_v1", "mtcnn_pnet", "mobilenet_cifar10"]

#: The input range each model was trained on (see SOURCE.txt): LeNet pixels / 256, CIFAR-10
#: full mean-subtracted pixels, MTCNN (pixels - 127.5) / 128, the MobileNet raw pixels.
RANGES = {"lenet_mnist": (0.0, 1.0), "lenet_mnist_v1": (0.0, 1.0),
          "cifar10_full_v1": (-128.0, 128.0), "mtcnn_pnet": (-1.0, 1.0),
          "mobilenet_cifar10": (0.0, 255.0)}


def model_files(shared_data, name):
    folder = shared_data / "caffe" / name
    return folder / "deploy.prototxt", folder / "model.caffemodel"


def random_input(name, shape, seed=0, batch=2):
    rng = np.random.default_rng(seed)
    shape = (batch,) + tuple(shape[1:])
    return rng.uniform(*RANGES[name], shape).astype(np.float32)


def compare_with_opencv(proto, model, conv, x):
    names = [r.name for r in conv.layers if r.status == "converted"]
    reference = opencv_forward(proto, model, x, names)
    report = verify(conv, x, reference, keys="layer")
    assert report.passed, "\n" + str(report)
    assert len(report.rows) == len(names)
    return report


@pytest.mark.parametrize("name", MODELS)
def test_converts_and_matches_opencv_per_layer(shared_data, name):
    proto, model = model_files(shared_data, name)
    conv = convert(proto, model)
    assert not conv.problems
    assert all(r.status in ("converted", "input") for r in conv.layers)
    (input_name, shape), = conv.inputs
    x = random_input(name, shape)
    compare_with_opencv(proto, model, conv, x)


@pytest.mark.parametrize("name", MODELS)
def test_saved_model_gives_the_same_outputs(shared_data, name, tmp_path):
    proto, model = model_files(shared_data, name)
    conv = convert(proto, model)
    path = conv.save(tmp_path / f"{name}.h5")
    symbol, args, aux, meta = load_converted(path)
    assert symbol.list_outputs() == conv.symbol.list_outputs()
    assert set(args) == set(conv.arg_params) and set(aux) == set(conv.aux_params)
    for k, v in conv.arg_params.items():
        assert np.array_equal(args[k], v)
    assert [{"name": i["name"], "shape": i["shape"]} for i in meta["inputs"]] == \
        [{"name": n, "shape": list(s)} for n, s in conv.inputs]
    x = random_input(name, conv.inputs[0][1], seed=1)
    loaded = type(conv)()
    loaded.symbol, loaded.arg_params, loaded.aux_params = symbol, args, aux
    loaded.inputs = [(d["name"], tuple(d["shape"])) for d in meta["inputs"]]
    a, b = run(conv, x), run(loaded, x)
    for k in a:
        assert np.array_equal(a[k], b[k])


def test_structure_of_the_real_models(shared_data):
    cifar = convert(*model_files(shared_data, "cifar10_full_v1"))
    assert cifar.layer("norm1").type == "LRN"
    # ceil rounding: 32 -> 16 -> 8 -> 4 (floor would give 15, 7, 3)
    assert [cifar.layer(n).top_shapes[0][2] for n in ("pool1", "pool2", "pool3")] == [16, 8, 4]
    lenet_v1 = convert(*model_files(shared_data, "lenet_mnist_v1"))
    assert lenet_v1.inputs == [("data", (64, 1, 28, 28))]
    assert lenet_v1.layer("ip1").blob_shapes == [(1, 1, 500, 800), (1, 1, 1, 500)]  # legacy
    assert lenet_v1.arg_params["ip1_weight"].shape == (500, 800)
    mobile = convert(*model_files(shared_data, "mobilenet_cifar10"))
    dw = mobile.layer("Convolution2")
    assert dw.caffe_blobs[0] == (32, 1, 3, 3)
    assert "999.9" in mobile.params["BatchNorm1_moving_mean"].transform
    pnet = convert(*model_files(shared_data, "mtcnn_pnet"))
    assert [b for b, _ in pnet.outputs] == ["conv4-2", "prob1"]


def test_mtcnn_on_another_input_size(shared_data):
    # fully convolutional: 31x47 gives a 15x23 pool1 with Caffe's ceil (14x22 with floor)
    proto, model = model_files(shared_data, "mtcnn_pnet")
    conv = convert(proto, model, input_shape=(1, 3, 31, 47))
    assert conv.layer("pool1").top_shapes[0] == (1, 10, 15, 23)
    x = random_input("mtcnn_pnet", (1, 3, 31, 47), seed=3, batch=1)
    compare_with_opencv(proto, model, conv, x)


def test_mobilenet_fused_bn_scale_matches_opencv(shared_data):
    proto, model = model_files(shared_data, "mobilenet_cifar10")
    conv = convert(proto, model, fuse_bn_scale=True)
    assert sum(r.status == "fused" for r in conv.layers) == 11
    x = random_input("mobilenet_cifar10", conv.inputs[0][1], seed=2)
    ref = opencv_forward(proto, model, x, ["Softmax1", "InnerProduct1"])
    got = run(conv, x, outputs=["Softmax1_output", "InnerProduct1_output"])
    assert_close(got["Softmax1_output"], ref["Softmax1"])
    assert_close(got["InnerProduct1_output"], ref["InnerProduct1"])


@pytest.mark.parametrize("name", ["lenet_mnist", "lenet_mnist_v1"])
def test_lenet_classifies_mnist(shared_data, name):
    from deepkit.datasets import mnist  # noqa: PLC0415
    (_, _), (x_test, y_test) = mnist.load_data()
    conv = convert(*model_files(shared_data, name), scale=1 / 256)
    scale = conv.metadata["preprocessing"]["scale"]
    assert scale == pytest.approx(0.00390625)  # the training prototxt's transform_param.scale
    x = x_test[:, None].astype(np.float32) * np.float32(scale)
    (probs,) = run(conv, x, batch_size=1000).values()
    accuracy = float((probs.argmax(axis=1) == y_test).mean())
    assert accuracy >= 0.990, accuracy


def test_files_that_do_not_belong_together(shared_data):
    from deepkit.caffe import CaffeConversionError, CaffeFormatError  # noqa: PLC0415
    lenet_proto, lenet_model = model_files(shared_data, "lenet_mnist")
    cifar_proto, cifar_model = model_files(shared_data, "cifar10_full_v1")
    with pytest.raises(CaffeConversionError) as err:
        convert(lenet_proto, cifar_model)
    text = str(err.value)
    assert "layer 'conv1' (Convolution): weight shapes do not match: blob 0: caffemodel " \
           "(32,3,5,5), prototxt needs (20,1,5,5)" in text
    assert "layer 'ip2' (InnerProduct): the caffemodel has no weights for this layer" in text
    mobile_proto, _ = model_files(shared_data, "mobilenet_cifar10")
    with pytest.raises(CaffeConversionError, match="weights for none of the net's 34 layers"):
        convert(mobile_proto, lenet_model)
    with pytest.raises(CaffeFormatError, match="not a text prototxt"):
        convert(lenet_model, lenet_model)
    with pytest.raises(CaffeFormatError, match="not a binary .caffemodel"):
        convert(lenet_proto, lenet_proto)


def test_structure_from_the_caffemodel(shared_data):
    _, model = model_files(shared_data, "lenet_mnist")
    conv = convert(None, model, input_shape=(1, 1, 28, 28))
    assert conv.layer("mnist").type == "Data" and conv.outputs == [("loss", "loss_output")]
    x = random_input("lenet_mnist", (1, 1, 28, 28))
    reference = convert(*model_files(shared_data, "lenet_mnist"))
    assert_close(run(conv, x)["loss_output"], run(reference, x)["loss_output"])
