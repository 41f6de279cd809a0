"""ONNX export (checked with onnx.checker and ONNX Runtime) and import (round trips)."""
import inspect
import pathlib

import numpy as np
import pytest

import deepkit
from deepkit import layers as L
from deepkit.cli import main as cli_main
from deepkit.models import load_model

onnx = pytest.importorskip("onnx", reason="onnx is in the test extra: pip install deepkit[test]")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is in the test extra")
dk_onnx = pytest.importorskip("deepkit.onnx")

from model_zoo.architectures import BUILDERS  # noqa: E402 - after the skips above

#: The zoo's own small inputs; the 224-pixel architectures run on 64 pixels here.
_OWN_SHAPE = ("lenet", "mlp", "cifar10_full", "cifar10_quick")


def _runtime(path, feeds):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _check(model, path, x):
    dk_onnx.export(model, path)
    onnx.checker.check_model(str(path))
    wants = _as_list(model.predict(x))
    gots = _runtime(path, {model.input_names[0]: x})
    assert len(gots) == len(wants)
    for got, want in zip(gots, wants):
        scale = max(np.abs(want).max(), 1e-12)
        assert np.abs(got - want).max() <= 1e-4 * scale
    back = dk_onnx.load(path)
    for got, want in zip(_as_list(back.predict(x)), wants):
        scale = max(np.abs(want).max(), 1e-12)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * scale)
    return back


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_every_zoo_architecture_exports_runs_in_onnx_runtime_and_comes_back(name, tmp_path):
    builder = BUILDERS[name]
    kwargs = {} if name in _OWN_SHAPE else {"input_shape": (3, 64, 64)}
    if "num_classes" in inspect.signature(builder).parameters:
        kwargs["num_classes"] = 10
    deepkit.set_seed(0)
    model = builder(**kwargs)
    shape = tuple(model.input_sample_shapes()[0])
    x = np.random.default_rng(1).random((3,) + shape).astype(np.float32)
    _check(model, tmp_path / f"{name}.onnx", x)


def test_the_batch_dimension_is_dynamic_and_names_are_kept(tmp_path):
    model = deepkit.Sequential([L.Dense(4, activation="relu", input_shape=(5,), name="hidden"),
                                L.Dense(2, activation="softmax", name="probs")], name="small")
    path = tmp_path / "small.onnx"
    dk_onnx.export(model, path)
    proto = onnx.load(str(path))
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert [o.name for o in proto.graph.output] == ["probs"]
    assert {"hidden_weight", "hidden_bias", "probs_weight"} <= {i.name for i in
                                                                  proto.graph.initializer}
    for n in (1, 7):
        x = np.ones((n, 5), np.float32)
        np.testing.assert_allclose(_runtime(path, {model.input_names[0]: x})[0],
                                   model.predict(x), rtol=1e-5)


def test_unexportable_ops_are_listed_together_and_nothing_is_written(tmp_path):
    from deepkit_engine import symbol as sym
    inp = deepkit.Input(shape=(4,), name="x")
    odd = L.Lambda(lambda t: sym.erfinv(sym.tanh(t)), name="odd")(inp)
    odd2 = L.Lambda(lambda t: sym.gammaln(t), name="odd2")(odd)
    model = deepkit.Model(inp, odd2)
    path = tmp_path / "odd.onnx"
    with pytest.raises(dk_onnx.ExportError) as err:
        dk_onnx.export(model, path)
    assert len(err.value.problems) == 2 and "erfinv" in str(err.value) \
        and "gammaln" in str(err.value)
    assert not path.exists()


@pytest.mark.parametrize("folder", ["lenet_mnist", "lenet_mnist_v1", "cifar10_full_v1",
                                    "mobilenet_cifar10", "mtcnn_pnet"])
def test_converted_caffe_models_export(shared_data, tmp_path, folder):
    from deepkit import caffe
    where = shared_data / "caffe" / folder
    prototxt = next(iter(sorted(where.glob("*deploy*.prototxt"))), None) \
        or next(iter(sorted(where.glob("*.prototxt"))))
    caffemodel = next(iter(sorted(where.glob("*.caffemodel"))))
    caffe.convert(prototxt, caffemodel).save(tmp_path / "converted.h5")
    model = load_model(tmp_path / "converted.h5")
    shape = tuple(model.input_sample_shapes()[0])
    x = np.random.default_rng(0).random((2,) + shape).astype(np.float32)
    _check(model, tmp_path / f"{folder}.onnx", x)


def test_command_line_export_and_import(tmp_path, capsys):
    model = deepkit.Sequential([L.Conv2D(3, 3, activation="relu", input_shape=(1, 8, 8)),
                                L.Flatten(), L.Dense(2)])
    model.save(tmp_path / "m.h5")
    assert cli_main(["export-onnx", str(tmp_path / "m.h5"), str(tmp_path / "m.onnx")]) == 0
    assert cli_main(["import-onnx", str(tmp_path / "m.onnx"), str(tmp_path / "back.h5")]) == 0
    x = np.random.default_rng(0).random((4, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(load_model(tmp_path / "back.h5").predict(x), model.predict(x),
                               rtol=1e-5, atol=1e-6)


def test_a_pytorch_export_imports_and_matches_pytorch(tmp_path):
    torch = pytest.importorskip("torch", reason="the PyTorch peer is optional")
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
            self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(y)) + x)

    class TinyResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 7, 2, 3, bias=False), nn.BatchNorm2d(8),
                                      nn.ReLU(), nn.MaxPool2d(3, 2, 1))
            self.block, self.pool, self.fc = Block(8), nn.AdaptiveAvgPool2d(1), nn.Linear(8, 5)

        def forward(self, x):
            return self.fc(torch.flatten(self.pool(self.block(self.stem(x))), 1))

    torch.manual_seed(0)
    net = TinyResNet()
    for m in net.modules():  # non-trivial running statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    net.eval()
    x = torch.rand(2, 3, 32, 32)
    path = tmp_path / "tiny_resnet.onnx"
    torch.onnx.export(net, (x,), str(path), input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}}, dynamo=False)
    model = dk_onnx.load(path)
    with torch.no_grad():
        want = net(x).numpy()
    np.testing.assert_allclose(model.predict(x.numpy()), want, rtol=1e-4, atol=1e-5)
    assert pathlib.Path(path).stat().st_size > 1000


def test_synchronized_batchnorm_exports_as_batchnorm(tmp_path):
    deepkit.set_seed(2)
    model = deepkit.Sequential([L.Dense(6, input_shape=(5,)),
                                L.BatchNormalization(synchronized=True, name="bn"),
                                L.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    x = np.random.default_rng(3).normal(size=(16, 5)).astype(np.float32)
    model.fit(x, np.arange(16) % 3, epochs=1, batch_size=8, verbose=0)  # moves the statistics
    _check(model, tmp_path / "syncbn.onnx", x)
