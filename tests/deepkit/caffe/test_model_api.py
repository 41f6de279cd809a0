"""``deepkit.caffe.convert`` gives a Model: predict, save, load_model; weights owned, not
mapped; any input size for fully convolutional nets; references keyed by blob or layer
names; the extension point for unknown layer types.
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import deepkit
from deepkit.caffe import (CaffeConversionError, CaffeModel, convert, convert_record,
                           register_layer, unregister_layer, verify)
from deepkit.caffe.cli import convert_caffe, register
from deepkit.caffe.owned import OwnedCopier, mapping_of
from deepkit.caffe.verify import run
from deepkit.models import SymbolModel
from deepkit_engine import symbol as sym

from .nets import assert_close, input_layer, layer, opencv_forward, write_net

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def files(shared_data, name):
    folder = shared_data / "caffe" / name
    return folder / "deploy.prototxt", folder / "model.caffemodel"


# -- the Model -----------------------------------------------------------------------------------

def test_convert_returns_a_model_ready_for_predict_and_save(shared_data, tmp_path):
    proto, weights = files(shared_data, "lenet_mnist")
    model = convert(proto, weights)
    assert isinstance(model, CaffeModel) and isinstance(model, SymbolModel)
    assert "InnerProduct" in model.conversion.layer_table()
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    want = run(model.conversion, x)["loss_output"]
    got = model.predict(x)
    assert got.shape == (3, 10)
    assert_close(got, want, "predict vs the record's forward")
    path = model.save(tmp_path / "lenet.h5")
    loaded = deepkit.load_model(path)
    assert_close(loaded.predict(x), want, "load_model(save(convert(...)))")
    assert loaded.metadata["converter"] == "deepkit.caffe"


def test_cli_output_loads_with_load_model(shared_data, tmp_path, capsys):
    import argparse  # noqa: PLC0415
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    proto, weights = files(shared_data, "mtcnn_pnet")
    out = tmp_path / "pnet.h5"
    args = parser.parse_args(["convert-caffe", str(proto), str(weights), "-o", str(out),
                              "--input-shape", "1,3,0,None"])
    assert convert_caffe(args) == 0
    loaded = deepkit.load_model(out)
    x = np.random.default_rng(1).uniform(-1, 1, (1, 3, 40, 33)).astype(np.float32)
    ref = opencv_forward(proto, weights, x, ["prob1", "conv4-2"])
    got = dict(zip(loaded.output_names, loaded.predict(x)))
    assert_close(got["prob1_output"], ref["prob1"], "prob1 at 40x33 after load_model")
    assert loaded.metadata["inputs"][0]["free_axes"] == [2, 3]


# -- owned memory ----------------------------------------------------------------------------------

def test_weights_are_owned_not_views_of_the_mapped_file(shared_data, tmp_path):
    proto, weights = files(shared_data, "lenet_mnist")
    copy = tmp_path / "model.caffemodel"
    shutil.copyfile(weights, copy)
    model = convert(proto, copy)
    for name, value in list(model.arg_params.items()) + list(model.aux_params.items()):
        assert mapping_of(value) is None, f"{name} still views the caffemodel mapping"
        assert value.flags.owndata
    x = np.random.default_rng(2).random((2, 1, 28, 28), dtype=np.float32)
    before = model.predict(x)
    size = copy.stat().st_size
    with open(copy, "r+b") as f:  # another writer rewrites the file in place
        f.write(b"\0" * size)
    assert np.array_equal(model.predict(x), before)


_TRUNCATE = r"""
import sys, numpy as np
from deepkit.caffe import convert
proto, path = sys.argv[1:3]
model = convert(proto, path)
x = np.linspace(0, 1, 784, dtype=np.float32).reshape(1, 1, 28, 28)
before = model.predict(x)
open(path, "r+b").truncate(10)
values = [float(v.sum()) for v in model.arg_params.values()]
after = model.predict(x)
print("same" if np.array_equal(before, after) else "changed", len(values))
"""


def test_truncating_the_caffemodel_after_convert_changes_nothing(shared_data, tmp_path):
    proto, weights = files(shared_data, "lenet_mnist")
    copy = tmp_path / "model.caffemodel"
    shutil.copyfile(weights, copy)
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-c", _TRUNCATE, str(proto), str(copy)],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]  # a SIGBUS would be -7
    assert proc.stdout.split()[0] == "same"


def test_owned_copier_copies_in_chunks_and_leaves_owned_arrays_alone(tmp_path):
    import mmap  # noqa: PLC0415
    data = np.arange(100_000, dtype=np.float32)
    path = tmp_path / "blob.bin"
    data.tofile(path)
    with open(path, "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    view = np.frombuffer(memoryview(mapped)[400:], dtype="<f4").reshape(-1, 10)
    assert mapping_of(view) is mapped
    copier = OwnedCopier(chunk_bytes=4096)
    owned = copier.owned(view)
    assert mapping_of(owned) is None and owned.flags.owndata
    assert np.array_equal(owned, data[100:].reshape(-1, 10))
    assert copier.copied_bytes == view.nbytes
    mine = np.ones(3, np.float32)
    assert copier.owned(mine) is mine


# -- any input size --------------------------------------------------------------------------------

def test_pnet_converted_once_runs_on_several_sizes_and_matches_opencv(shared_data):
    proto, weights = files(shared_data, "mtcnn_pnet")
    model = convert(proto, weights)
    assert model.metadata["inputs"][0]["any_size"] is True
    rng = np.random.default_rng(3)
    for h, w in ((12, 12), (31, 47), (120, 90)):
        x = rng.uniform(-1, 1, (1, 3, h, w)).astype(np.float32)
        ref = opencv_forward(proto, weights, x, ["prob1", "conv4-2"])
        got = dict(zip(model.output_names, model.predict(x)))
        assert_close(got["prob1_output"], ref["prob1"], f"prob1 at {h}x{w}")
        assert_close(got["conv4-2_output"], ref["conv4-2"], f"conv4-2 at {h}x{w}")
    keys = [k for k in model.executors()._executors if k[0] == "predict"]
    assert len(keys) == 3  # one executor per input shape, cached


def test_a_layer_that_needs_a_fixed_size_is_named(shared_data):
    proto, weights = files(shared_data, "lenet_mnist")
    model = convert(proto, weights)
    assert model.metadata["inputs"][0]["any_size"] is False
    assert model.metadata["inputs"][0]["fixed_by"] == "layer 'ip1' (InnerProduct)"
    with pytest.raises(ValueError, match=r"layer 'ip1' \(InnerProduct\) needs a fixed input "
                                         r"size"):
        model.predict(np.zeros((1, 1, 40, 40), np.float32))


def test_free_size_without_a_declared_size_is_a_clear_error(tmp_path, rng):
    lay = [layer("data", "Data", top=["data", "label"]),
           layer("conv", "Convolution", "data", blobs=[rng.normal(size=(2, 3, 3, 3))],
                 convolution_param={"num_output": 2, "kernel_size": [3], "bias_term": False})]
    proto, weights = write_net(tmp_path, lay)
    with pytest.raises(CaffeConversionError, match="declares no size to convert it at"):
        convert(proto, weights, input_shape="1,3,0,0")


# -- references keyed by blob or layer names ----------------------------------------------------

def _in_place_net(tmp_path, rng):
    lay = [input_layer((1, 2, 4, 4)),
           layer("conv", "Convolution", "data", blobs=[rng.normal(size=(3, 2, 3, 3)),
                                                       rng.normal(size=(3,))],
                 convolution_param={"num_output": 3, "kernel_size": [3], "pad": [1]}),
           layer("relu", "ReLU", "conv", top="conv"),
           layer("pool", "Pooling", "conv", pooling_param={"pool": "MAX", "kernel_size": 2,
                                                           "stride": 2})]
    return write_net(tmp_path, lay)


def test_reference_keyed_by_blob_names_with_its_input(tmp_path, rng):
    proto, weights = _in_place_net(tmp_path, rng)
    model = convert(proto, weights)
    x = rng.normal(size=(1, 2, 4, 4)).astype(np.float32)
    # Caffe's net.blobs: 'conv' is the blob after the in-place ReLU
    blobs = {"data": x, "conv": np.maximum(opencv_forward(proto, weights, x, ["conv"])["conv"], 0),
             "pool": opencv_forward(proto, weights, x, ["pool"])["pool"]}
    report = verify(model, None, blobs)
    assert report.passed, report.table()
    assert "read as blob names" in report.matched and "2/2 matched" in report.matched
    assert "input 'data' taken from the reference" in report.matched
    # OpenCV's forward(names): 'conv' is the convolution layer's own output
    layers = opencv_forward(proto, weights, x, ["conv", "relu", "pool"])
    report = verify(model, x, layers)
    assert report.passed and "read as layer names" in report.matched, report.table()


def test_cli_reference_npz_with_blob_names_and_input(tmp_path, rng, capsys):
    import argparse  # noqa: PLC0415
    proto, weights = _in_place_net(tmp_path, rng)
    x = rng.normal(size=(1, 2, 4, 4)).astype(np.float32)
    conv_out = opencv_forward(proto, weights, x, ["conv", "pool"])
    np.savez(tmp_path / "ref.npz", data=x, conv=np.maximum(conv_out["conv"], 0),
             pool=conv_out["pool"])
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    out = tmp_path / "net.h5"
    args = parser.parse_args(["convert-caffe", str(proto), str(weights), "-o", str(out),
                              "--reference", str(tmp_path / "ref.npz")])
    assert convert_caffe(args) == 0
    text = capsys.readouterr().out
    assert "read as blob names" in text and "PASSED" in text and out.exists()


# -- the extension point ---------------------------------------------------------------------------

def _python_layer_net(tmp_path):
    lay = [input_layer((1, 3, 2, 2)),
           layer("py", "Python", "data", python_param={"module": "my_layers", "layer": "Twice"}),
           layer("out", "ReLU", "py")]
    return write_net(tmp_path, lay)


def test_unknown_type_error_says_how_to_extend(tmp_path):
    proto, weights = _python_layer_net(tmp_path)
    with pytest.raises(CaffeConversionError) as err:
        convert(proto, weights)
    text = str(err.value)
    assert "module 'my_layers', class 'Twice'" in text
    assert "register_layer('Python:my_layers.Twice', fn)" in text


def test_python_layer_mapped_to_a_function(tmp_path, rng):
    proto, weights = _python_layer_net(tmp_path)

    def twice(cx):
        return sym.multiply(cx.bottoms[0], 2.0, name=cx.node)

    x = rng.normal(size=(1, 3, 2, 2)).astype(np.float32)
    model = convert(proto, weights, custom_layers={"Python:my_layers.Twice": twice})
    assert_close(model.predict(x), np.maximum(2 * x, 0), "custom Python layer")
    register_layer("Python", twice)
    try:
        record = convert_record(proto, weights)
        assert record.layer("py").top_shapes[0] == (1, 3, 2, 2)
    finally:
        unregister_layer("Python")


def test_custom_layer_failure_is_a_problem_naming_the_layer(tmp_path):
    proto, weights = _python_layer_net(tmp_path)

    def broken(cx):
        raise RuntimeError("not implemented yet")

    with pytest.raises(CaffeConversionError, match="layer 'py' .*registered converter failed: "
                                                   "RuntimeError: not implemented yet"):
        convert(proto, weights, custom_layers={"Python": broken})


def test_supported_layers_lists_the_registry():
    from deepkit.caffe import supported_layers  # noqa: PLC0415
    rows = dict(supported_layers())
    for t in ("Convolution", "PriorBox", "DetectionOutput", "Permute", "Normalize", "Input"):
        assert t in rows
    assert rows["Input"] == "net input"
    json.dumps(rows)


def test_docs_list_the_registry(tmp_path):
    from deepkit.caffe.docs import BEGIN, END, supported_layers_markdown, update_doc  # noqa
    doc = os.path.join(ROOT, "docs", "caffe.md")
    with open(doc, encoding="utf-8") as f:
        text = f.read()
    assert f"{BEGIN}\n{supported_layers_markdown()}{END}" in text, \
        "docs/caffe.md is out of date: python -m deepkit.caffe.docs docs/caffe.md"
    stale = tmp_path / "caffe.md"
    stale.write_text(f"intro\n{BEGIN}\nold\n{END}\nend\n")
    assert update_doc(stale) and "| `PriorBox` |" in stale.read_text()
    assert not update_doc(stale)
