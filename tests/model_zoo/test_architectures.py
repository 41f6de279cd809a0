"""The zoo's architectures: they build, train a step, match the published parameter
counts and the source networks' layer names and geometry (Caffe's padding and rounding)."""
import re

import numpy as np
import pytest

import deepkit
from deepkit import layers
from deepkit.layers.base import reset_names
from deepkit_engine import cpu, nd
from model_zoo.architectures import BUILDERS, CUSTOM_OBJECTS, HEAD_LAYERS, blocks
from model_zoo.architectures.resnet import resnet
from model_zoo.architectures.squeezenet import squeezenet
from model_zoo.architectures.vgg import vgg


@pytest.fixture(autouse=True)
def fresh_session():
    reset_names()
    deepkit.set_seed(1234)
    yield


#: Small input sizes for the training step (the minimum where it is small anyway).
#: The ResNets get 64x64: at 32x32 their last stage is 1x1, where BatchNorm over a
#: tiny batch has near-zero variances and one SGD step can blow the weights up.
SMALL = {"mlp": (1, 28, 28), "lenet": (1, 28, 28), "alexnet": (3, 39, 39),
         "caffenet": (3, 39, 39), "nin": (3, 39, 39),
         **{name: (3, 64, 64) for name in BUILDERS if name.startswith("resnet")}}

#: Parameters with 1000 classes (10 for the MNIST/CIFAR-10 nets) at the standard input
#: size: weights, biases, BatchNorm gamma and beta; not the moving statistics (as
#: torchvision counts them, and Keras's "trainable params").
PUBLISHED = {
    "mlp": 101_770,  # 784-128-10
    "lenet": 431_080,  # Caffe's examples/mnist
    "alexnet": 60_965_224, "caffenet": 60_965_224,  # bvlc_alexnet, bvlc_reference_caffenet
    "vgg11": 132_863_336, "vgg13": 133_047_848, "vgg16": 138_357_544, "vgg19": 143_667_240,
    "vgg11_bn": 132_868_840, "vgg13_bn": 133_053_736, "vgg16_bn": 138_365_992,
    "vgg19_bn": 143_678_248,
    "googlenet": 6_998_552,  # bvlc_googlenet without the auxiliary heads
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
    "resnet101": 44_549_160, "resnet152": 60_192_808,
    "squeezenet1_0": 1_248_424, "squeezenet1_1": 1_235_496,
    "mobilenet": 4_231_976,  # Keras's MobileNet(alpha=1.0) trainable parameters
    "nin": 7_595_176,  # the Caffe model zoo's NIN ImageNet model
    "cifar10_quick": 145_578, "cifar10_full": 89_578,  # Caffe's examples/cifar10
}

#: Channels and spatial size of the feature map (include_top=False) at the standard size.
FEATURES = {
    "mlp": None, "lenet": (50, 4), "alexnet": (256, 6), "caffenet": (256, 6),
    **{name: (512, 7) for name in BUILDERS if name.startswith("vgg")},
    "googlenet": (1024, 7), "resnet18": (512, 7), "resnet34": (512, 7),
    "resnet50": (2048, 7), "resnet101": (2048, 7), "resnet152": (2048, 7),
    "squeezenet1_0": (512, 13), "squeezenet1_1": (512, 13), "mobilenet": (1024, 7),
    "nin": (1024, 6), "cifar10_quick": (64, 4), "cifar10_full": (64, 4),
}


def n_weights(model):
    return sum(int(np.prod(p.shape)) for p in model.weights if not p.aux)


def test_every_architecture_is_covered():
    assert set(BUILDERS) == set(PUBLISHED) == set(FEATURES) == set(HEAD_LAYERS)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_builds_and_trains_one_step(name):
    shape = SMALL.get(name, (3, 32, 32))
    model = BUILDERS[name](num_classes=5, input_shape=shape)
    assert model.name == name
    assert model.outputs[0].shape == (None, 5)
    model.compile(optimizer=deepkit.optimizers.SGD(0.01),
                  loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4,) + shape).astype(np.float32)
    y = np.array([0, 1, 2, 4])
    model.initialize_weights()
    before = {p.name: p.data.asnumpy().copy() for p in model.trainable_weights}
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    changed = {p.name for p in model.trainable_weights
               if not np.array_equal(p.data.asnumpy(), before[p.name])}
    for layer in model.layers:  # backward reached every layer with weights
        if layer.trainable_weights:
            assert changed & {p.name for p in layer.trainable_weights}, layer.name
    probs = model.predict(x, batch_size=4)
    assert probs.shape == (4, 5)
    assert np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_parameter_count_equals_the_published_one(name):
    model = BUILDERS[name]()  # standard input size; building is symbolic, nothing runs
    assert n_weights(model) == PUBLISHED[name]
    assert model.outputs[0].shape == (None, 10 if name in ("mlp", "lenet", "cifar10_quick",
                                                           "cifar10_full") else 1000)


def test_counts_of_batchnorm_statistics_and_widths():
    # Keras's MobileNet: 4,253,864 in all, of which 21,888 moving statistics
    assert BUILDERS["mobilenet"]().count_params() == 4_253_864
    assert n_weights(BUILDERS["mobilenet"](alpha=0.5)) == 1_331_592
    assert BUILDERS["mobilenet"](alpha=0.5).name == "mobilenet_0.5"
    assert n_weights(BUILDERS["mlp"](hidden=(128, 64))) == 784 * 128 + 128 + 128 * 64 + 64 + 650
    # the classifier follows num_classes
    assert n_weights(BUILDERS["resnet50"](num_classes=10)) == 25_557_032 - 990 * 2049


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_include_top_false_gives_the_features(name):
    heads = set(HEAD_LAYERS[name])
    expected = FEATURES[name]
    plain = BUILDERS[name](include_top=False)
    assert not heads & {layer.name for layer in plain.layers}
    assert "prob" not in {layer.name for layer in plain.layers}
    if expected is None:  # the MLP: its last hidden layer
        assert plain.outputs[0].shape == (None, 128)
        return
    channels, size = expected
    assert plain.outputs[0].shape == (None, channels, size, size)
    for pooling in ("avg", "max"):
        pooled = BUILDERS[name](include_top=False, pooling=pooling)
        assert pooled.outputs[0].shape == (None, channels)
        assert pooled.layers[-1].name == f"{pooling}_pool"
    assert BUILDERS[name](include_top=True, pooling="avg").outputs[0].shape[-1] in (10, 1000)


def test_pooled_features_are_the_pooled_feature_map():
    plain = BUILDERS["cifar10_quick"](include_top=False)
    pooled = BUILDERS["cifar10_quick"](include_top=False, pooling="max")
    plain.initialize_weights()
    pooled.initialize_weights()
    for layer in plain.layers:
        if layer.params:
            pooled.get_layer(layer.name).set_weights(layer.get_weights())
    x = np.random.default_rng(1).standard_normal((3, 3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(pooled.predict(x), plain.predict(x).max(axis=(2, 3)), rtol=1e-6)


def test_builders_are_channels_first_whatever_the_global_setting():
    deepkit.backend.set_image_data_format("channels_last")
    try:
        for name in ("alexnet", "mobilenet", "resnet18", "googlenet"):
            model = BUILDERS[name](include_top=False)
            assert model.outputs[0].shape[1] == FEATURES[name][0], name
            assert n_weights(BUILDERS[name]()) == PUBLISHED[name], name
    finally:
        deepkit.backend.set_image_data_format("channels_first")


def test_classifier_activation_none_gives_logits():
    model = BUILDERS["lenet"](classifier_activation=None)
    assert model.layers[-1].name == "ip2"
    x = np.random.default_rng(2).standard_normal((2, 1, 28, 28)).astype(np.float32)
    assert not np.allclose(model.predict(x).sum(axis=1), 1.0)


def test_layer_names_and_weight_shapes_follow_the_sources():
    alex = BUILDERS["alexnet"]()
    shapes = {p.name: p.shape for p in alex.weights}
    assert shapes["conv1_weight"] == (96, 3, 11, 11)
    assert shapes["conv2_weight"] == (256, 48, 5, 5)  # groups=2, as in Caffe
    assert shapes["conv4_weight"] == (384, 192, 3, 3)
    assert shapes["conv5_weight"] == (256, 192, 3, 3)
    assert shapes["fc6_weight"] == (4096, 9216)
    assert shapes["fc8_weight"] == (1000, 4096)
    order = [layer.name for layer in alex.layers]
    assert order.index("norm1") < order.index("pool1")
    caffe = [layer.name for layer in BUILDERS["caffenet"]().layers]
    assert caffe.index("pool1") < caffe.index("norm1")

    names = {layer.name for layer in BUILDERS["googlenet"]().layers}
    assert {"conv1_7x7_s2", "pool1_norm1", "inception_4e_pool_proj", "inception_5b_output",
            "loss3_classifier"} <= names
    names = {layer.name for layer in BUILDERS["resnet50"]().layers}
    assert {"conv1", "bn_conv1", "res2a_branch1", "bn4f_branch2c", "res5c", "fc1000"} <= names
    names = {layer.name for layer in BUILDERS["resnet101"]().layers}
    assert {"res3b3_branch2a", "res4b22_branch2c", "bn4b22_branch2c", "res5c"} <= names
    assert "res4c" not in names
    names = {layer.name for layer in BUILDERS["resnet18"]().layers}
    assert {"res2b_branch2b", "res3a_branch1", "res5b"} <= names
    assert "res2a_branch1" not in names  # basic blocks: no projection where shapes match
    names = {layer.name for layer in BUILDERS["vgg16_bn"]().layers}
    assert {"conv5_3", "conv5_3_bn", "pool5", "fc6", "fc7", "fc8"} <= names
    assert BUILDERS["mobilenet"]().get_layer("conv_dw_1").weights[0].shape == (32, 1, 3, 3)
    assert BUILDERS["squeezenet1_0"]().get_layer("fire9_expand3x3").weights[0].shape == \
        (256, 64, 3, 3)
    googlenet = BUILDERS["googlenet"]()
    assert googlenet.get_layer("inception_3a_output").output.shape == (None, 256, 28, 28)
    assert googlenet.get_layer("inception_4e_output").output.shape == (None, 832, 14, 14)


def _probe(build, shape):
    """A one-layer model around ``build`` (a function of a tensor) on ``shape`` inputs."""
    inputs = layers.Input(shape=shape)
    return deepkit.Model(inputs, build(inputs))


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("size,stride", [(3, 2), (2, 2)])
def test_pool_rounds_up_as_caffe(kind, size, stride):
    rng = np.random.default_rng(3)
    for n in range(size, 14):
        for shape in [(2, n, n), (2, n, n + 1)]:  # square: stock layers; else the fallback
            model = _probe(lambda t: blocks.pool(t, kind, size, stride, "p"), shape)
            stock = not isinstance(model.get_layer("p"), blocks.CaffePooling2D)
            assert stock == (shape[1] == shape[2]) or size == 2
            x = rng.standard_normal((2,) + shape).astype(np.float32)
            want = nd.Pooling(nd.array(x), kernel=(size, size), stride=(stride, stride),
                              pool_type=kind, pooling_convention="full").asnumpy()
            np.testing.assert_allclose(model.predict(x), want, rtol=1e-6, atol=1e-7)


def test_padded_max_pool_and_convolutions_pad_as_caffe():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 11, 10)).astype(np.float32)
    model = _probe(lambda t: blocks.pool(t, "max", 3, 1, "p", pad=1), (3, 11, 10))
    want = nd.Pooling(nd.array(x), kernel=(3, 3), stride=(1, 1), pad=(1, 1),
                      pool_type="max", pooling_convention="full").asnumpy()
    np.testing.assert_allclose(model.predict(x), want, rtol=1e-6)
    for kernel, stride, pad in [(7, 2, 3), (3, 2, 1), (5, 1, 2), (9, 4, 0), (1, 2, 0)]:
        model = _probe(lambda t: blocks.conv(t, 4, kernel, "c", strides=stride, pad=pad,
                                             activation=None), (3, 11, 10))
        model.initialize_weights()
        weight, bias = model.get_layer("c").get_weights()
        want = nd.Convolution(nd.array(x), nd.array(weight), nd.array(bias), num_filter=4,
                              kernel=(kernel, kernel), stride=(stride, stride),
                              pad=(pad, pad)).asnumpy()
        np.testing.assert_allclose(model.predict(x), want, rtol=1e-4, atol=1e-5)


def test_within_channel_lrn_is_caffes():
    x = np.random.default_rng(5).standard_normal((2, 3, 5, 6)).astype(np.float32)
    model = _probe(lambda t: blocks.WithinChannelLRN(3, alpha=0.5, beta=0.75, name="n")(t),
                   (3, 5, 6))
    squares = np.pad(x.astype(np.float64) ** 2, ((0, 0), (0, 0), (1, 1), (1, 1)))
    window = sum(squares[:, :, i:i + 5, j:j + 6] for i in range(3) for j in range(3))
    want = x / (1 + 0.5 / 9 * window) ** 0.75
    np.testing.assert_allclose(model.predict(x), want, rtol=1e-5)
    layer = model.get_layer("n")
    clone = blocks.WithinChannelLRN.from_config(layer.get_config())
    assert (clone.n, clone.alpha, clone.beta) == (3, 0.5, 0.75)


@pytest.mark.parametrize("name,shape", [("cifar10_full", (3, 32, 32)),
                                        ("squeezenet1_1", (3, 40, 47)),
                                        ("resnet18", (3, 64, 64))])
def test_save_and_load_round_trip(name, shape, tmp_path):
    model = BUILDERS[name](num_classes=3, input_shape=shape)
    x = np.random.default_rng(6).standard_normal((2,) + shape).astype(np.float32)
    want = model.predict(x)
    model.save(tmp_path / "m.h5")
    loaded = deepkit.load_model(tmp_path / "m.h5", custom_objects=CUSTOM_OBJECTS)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    np.testing.assert_array_equal(loaded.predict(x), want)


def _caffe_layers(prototxt):
    """``{name: num_output}`` of the convolution and inner-product layers of a prototxt."""
    found = {}
    for block in re.split(r"\blayers? \{", prototxt)[1:]:
        kind = re.search(r"type:\s*\"?(\w+)", block).group(1).lower()
        if kind in ("convolution", "innerproduct", "inner_product"):
            name = re.search(r"name:\s*\"([^\"]+)\"", block).group(1)
            found[name] = int(re.search(r"num_output:\s*(\d+)", block).group(1))
    return found


@pytest.mark.parametrize("name,folder", [("cifar10_full", "cifar10_full_v1"),
                                         ("lenet", "lenet_mnist")])
def test_weight_layers_match_the_caffe_deploy_files(name, folder, shared_data):
    caffe = _caffe_layers((shared_data / "caffe" / folder / "deploy.prototxt").read_text())
    model = BUILDERS[name]()
    ours = {layer.name: layer.weights[0].shape[0] for layer in model.layers if layer.weights}
    assert ours == caffe


@pytest.mark.parametrize("call,message", [
    (lambda: BUILDERS["resnet18"](num_classes=0), "num_classes=0"),
    (lambda: BUILDERS["vgg11"](input_shape=(224, 224)), "input_shape=(224, 224)"),
    (lambda: BUILDERS["alexnet"](input_shape=(3, 32, 32)), "at least 39x39"),
    (lambda: BUILDERS["lenet"](input_shape=(3, 28, 28), pooling="sum"), "pooling='sum'"),
    (lambda: BUILDERS["nin"](include_top="no"), "include_top='no'"),
    (lambda: BUILDERS["mobilenet"](alpha=0), "alpha=0"),
    (lambda: BUILDERS["mlp"](hidden=(128, 0)), "hidden=(128, 0)"),
    (lambda: vgg(12), "depth=12"),
    (lambda: resnet(20), "depth=20"),
    (lambda: squeezenet("1_2"), "version='1_2'"),
])
def test_bad_arguments_are_explained(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


@pytest.mark.parametrize("name,folder", [("cifar10_full", "cifar10_full_v1"),
                                         ("lenet", "lenet_mnist")])
def test_converted_caffe_weights_load_by_name_and_give_caffes_outputs(name, folder,
                                                                     shared_data):
    caffe = pytest.importorskip("deepkit.caffe.convert")
    folder = shared_data / "caffe" / folder
    converted = caffe.convert(folder / "deploy.prototxt", folder / "model.caffemodel")
    model = BUILDERS[name]()
    model.initialize_weights()
    assert {p.name for p in model.weights} == set(converted.arg_params)
    for p in model.weights:
        p.data[:] = converted.arg_params[p.name].astype(np.float32)
    shape = model.inputs[0].shape[1:]
    x = np.random.default_rng(7).uniform(0, 1, (3,) + shape).astype(np.float32)
    data = converted.inputs[0][0]
    exe = converted.symbol.simple_bind(ctx=cpu(), grad_req="null", **{data: (3,) + shape})
    for key, value in converted.arg_params.items():
        exe.arg_dict[key][:] = value
    exe.arg_dict[data][:] = x
    want = exe.forward(is_train=False)[0].asnumpy()
    np.testing.assert_allclose(model.predict(x), want, rtol=1e-5, atol=1e-6)
