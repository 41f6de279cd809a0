"""ONNX files written by PyTorch's two exporters (TorchScript and ``dynamo=True``) import.

The networks are written here in plain PyTorch (torchvision is not needed):
a torchvision-style ResNet-18, a MobileNetV2-style network (depthwise
convolutions, ReLU6, inverted residuals) and a LeNet-style network (average
pooling, ``x.view(x.size(0), -1)``, log-softmax). Each is exported with a
dynamic batch dimension, imported with :func:`deepkit.onnx.load`, and must
predict what PyTorch computes for a batch size other than the exported one.
"""
import importlib.util
import pathlib
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx is in the test extra: pip install deepkit[test]")
torch = pytest.importorskip("torch", reason="the PyTorch peer is optional")
dk_onnx = pytest.importorskip("deepkit.onnx")

from deepkit_engine.base import DeepkitError  # noqa: E402 - after the skips above

nn = torch.nn
F = torch.nn.functional

needs_onnxscript = pytest.mark.skipif(importlib.util.find_spec("onnxscript") is None,
                                      reason="torch.onnx.export(dynamo=True) needs onnxscript "
                                             "(in the test extra)")


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet18(nn.Module):
    """torchvision's ``resnet18`` layout: 7x7 stem, max pooling, four stages of two blocks."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages, inplanes = [], 64
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages.append(nn.Sequential(BasicBlock(inplanes, planes, stride),
                                        BasicBlock(planes, planes)))
            inplanes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand):
        super().__init__()
        hidden = inp * expand
        self.use_res = stride == 1 and inp == oup
        layers = []
        if expand != 1:
            layers += [nn.Conv2d(inp, hidden, 1, bias=False), nn.BatchNorm2d(hidden),
                       nn.ReLU6(inplace=True)]
        layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
                   nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
                   nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    """torchvision's ``mobilenet_v2`` layout, fewer and narrower stages."""

    def __init__(self, num_classes=10):
        super().__init__()
        layers = [nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16),
                                nn.ReLU6(inplace=True))]
        inp = 16
        for expand, out, repeats, stride in ((1, 8, 1, 1), (6, 16, 2, 2), (6, 24, 2, 2)):
            for i in range(repeats):
                layers.append(InvertedResidual(inp, out, stride if i == 0 else 1, expand))
                inp = out
        layers.append(nn.Sequential(nn.Conv2d(inp, 64, 1, bias=False), nn.BatchNorm2d(64),
                                    nn.ReLU6(inplace=True)))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(64, num_classes))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.avg_pool2d(torch.sigmoid(self.conv2(x)), 2)
        x = x.view(x.size(0), -1)
        x = torch.tanh(self.fc2(F.relu(self.fc1(x))))
        return F.log_softmax(self.fc3(x), dim=1)


NETS = {"resnet18": (ResNet18, (3, 64, 64)), "mobilenet": (MobileNetV2, (3, 64, 64)),
        "lenet": (LeNet, (1, 28, 28))}


def _net(name):
    torch.manual_seed(0)
    cls, sample = NETS[name]
    net = cls()
    for m in net.modules():  # non-trivial batch normalization everywhere
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return net.eval(), sample


def _export(net, sample, path, exporter, dynamic=True):
    x = torch.rand((2,) + sample)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "torchscript":
            torch.onnx.export(net, (x,), str(path), input_names=["input"],
                              output_names=["logits"], dynamo=False,
                              dynamic_axes={"input": {0: "batch"}} if dynamic else None)
            return
        kwargs = {"dynamic_shapes": {"x": {0: torch.export.Dim("batch")}}} if dynamic else {}
        torch.onnx.export(net, (x,), str(path), input_names=["input"], output_names=["logits"],
                          dynamo=True, optimize=exporter == "dynamo", **kwargs)


def _matches_pytorch(net, sample, path, batch=3):
    model = dk_onnx.load(path)
    x = torch.rand((batch,) + sample, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = net(x).numpy()
    got = model.predict(x.numpy())
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(want).max()))
    return model


@pytest.mark.parametrize("name", sorted(NETS))
def test_a_torchscript_export_imports_and_matches_pytorch(name, tmp_path):
    net, sample = _net(name)
    _export(net, sample, tmp_path / f"{name}.onnx", "torchscript")
    _matches_pytorch(net, sample, tmp_path / f"{name}.onnx")


@needs_onnxscript
@pytest.mark.parametrize("name", sorted(NETS))
def test_a_dynamo_export_imports_and_matches_pytorch(name, tmp_path):
    net, sample = _net(name)
    path = tmp_path / f"{name}.onnx"
    _export(net, sample, path, "dynamo")
    assert max(o.version for o in onnx.load(str(path), load_external_data=False).opset_import
               if o.domain in ("", "ai.onnx")) >= 18
    _matches_pytorch(net, sample, path)


@needs_onnxscript
@pytest.mark.parametrize("name", ["lenet", "mobilenet"])
def test_an_unoptimized_dynamo_export_imports(name, tmp_path):
    """Without onnxscript's optimizer: Shape/Squeeze/Concat shape arithmetic on the named
    batch dimension, zero biases made by Expand and CastLike, BatchNormalization nodes."""
    net, sample = _net(name)
    path = tmp_path / f"{name}.onnx"
    _export(net, sample, path, "dynamo_unoptimized")
    ops = {n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node}
    assert {"Shape", "Concat", "Reshape"} <= ops
    _matches_pytorch(net, sample, path)


@needs_onnxscript
def test_a_dynamo_export_with_a_fixed_batch_size_takes_other_batch_sizes(tmp_path):
    net, sample = _net("lenet")
    path = tmp_path / "lenet.onnx"
    _export(net, sample, path, "dynamo", dynamic=False)
    graph = onnx.load(str(path), load_external_data=False).graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_value == 2
    _matches_pytorch(net, sample, path, batch=5)
    _matches_pytorch(net, sample, path, batch=1)


@needs_onnxscript
def test_missing_external_weights_are_named(tmp_path):
    net, sample = _net("lenet")
    _export(net, sample, tmp_path / "lenet.onnx", "dynamo")
    data = [p for p in tmp_path.iterdir() if p.name != "lenet.onnx"]
    if not data:
        pytest.skip("this torch version keeps the weights inside the .onnx file")
    assert dk_onnx.load(tmp_path / "lenet.onnx").predict(np.zeros((1,) + sample, np.float32)) \
        .shape == (1, 10)
    lone = tmp_path / "alone"
    lone.mkdir()
    (lone / "lenet.onnx").write_bytes((tmp_path / "lenet.onnx").read_bytes())
    with pytest.raises(DeepkitError, match=r"lenet\.onnx.*weights are stored next to it.*"
                                           + data[0].name):
        dk_onnx.load(lone / "lenet.onnx")
    assert pathlib.Path(tmp_path / "lenet.onnx").exists()
