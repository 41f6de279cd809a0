"""The Caffe subcommands as a plug-in: ``register(subparsers)`` adds ``convert-caffe`` and
``caffe-info``; each handler returns the exit status (errors raise, for the ``deepkit``
command to report)."""
import argparse

import numpy as np
import pytest

from deepkit.caffe import load_converted
from deepkit.caffe.cli import caffe_info, convert_caffe, register
from deepkit.caffe.convert import convert
from deepkit.caffe.verify import run
from deepkit_engine.base import DeepkitError


def _parser():
    parser = argparse.ArgumentParser(prog="deepkit")
    register(parser.add_subparsers(dest="command"))
    return parser


def _run(argv):
    args = _parser().parse_args(argv)
    return args.func(args)


def test_register_adds_both_subcommands_with_their_arguments():
    args = _parser().parse_args(["convert-caffe", "d.prototxt", "m.caffemodel", "-o", "out.h5",
                                 "--mean", "mean.binaryproto", "--rgb", "--input-shape",
                                 "1,3,32x32", "--phase", "TRAIN", "--fuse-bn-scale", "--verify",
                                 "x.npy", "--reference", "ref.npz"])
    assert args.func is convert_caffe and args.command == "convert-caffe"
    assert (args.prototxt, args.caffemodel, args.output) == ("d.prototxt", "m.caffemodel",
                                                             "out.h5")
    assert args.mean == "mean.binaryproto" and args.rgb and args.fuse_bn_scale
    assert args.input_shape == (1, 3, 32, 32) and args.phase == "TRAIN"
    assert (args.verify, args.reference) == ("x.npy", "ref.npz")
    args = _parser().parse_args(["convert-caffe", "d.prototxt", "m.caffemodel", "-o", "o.h5"])
    assert (args.mean, args.rgb, args.input_shape, args.phase, args.fuse_bn_scale,
            args.verify, args.reference) == (None, False, None, "TEST", False, None, None)
    args = _parser().parse_args(["caffe-info", "m.caffemodel"])
    assert args.func is caffe_info and args.caffemodel == "m.caffemodel"


@pytest.mark.parametrize("argv", [
    ["convert-caffe", "d.prototxt", "m.caffemodel"],  # -o is required
    ["convert-caffe", "d.prototxt", "m.caffemodel", "-o", "o.h5", "--input-shape", "1,a"],
    ["convert-caffe", "d.prototxt", "m.caffemodel", "-o", "o.h5", "--phase", "VAL"],
])
def test_bad_arguments_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as info:
        _parser().parse_args(argv)
    assert info.value.code == 2


def test_convert_caffe_writes_a_loadable_model_and_prints_the_table(shared_data, tmp_path,
                                                                     capsys):
    folder = shared_data / "caffe" / "lenet_mnist"
    out = tmp_path / "lenet.h5"
    assert _run(["convert-caffe", str(folder / "deploy.prototxt"),
                 str(folder / "model.caffemodel"), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Convolution" in text and "conv1" in text and f"wrote {out}" in text
    symbol, args, aux, meta = load_converted(out)
    assert "conv1_weight" in args and meta["inputs"][0]["name"] == "data"


def test_convert_caffe_verify_mode_compares_with_a_reference(shared_data, tmp_path, capsys):
    folder = shared_data / "caffe" / "lenet_mnist"
    conversion = convert(folder / "deploy.prototxt", folder / "model.caffemodel")
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    np.save(tmp_path / "input.npy", x)
    good = run(conversion, x)
    np.savez(tmp_path / "ref.npz", **{k: v for k, v in good.items() if "/" not in k})
    base = ["convert-caffe", str(folder / "deploy.prototxt"), str(folder / "model.caffemodel")]
    out = tmp_path / "ok.h5"
    assert _run(base + ["-o", str(out), "--verify", str(tmp_path / "input.npy"),
                        "--reference", str(tmp_path / "ref.npz")]) == 0
    assert out.exists()
    np.savez(tmp_path / "bad.npz", **{k: v + 1.0 for k, v in good.items() if "/" not in k})
    out_bad = tmp_path / "bad.h5"
    capsys.readouterr()
    assert _run(base + ["-o", str(out_bad), "--verify", str(tmp_path / "input.npy"),
                        "--reference", str(tmp_path / "bad.npz")]) == 1
    assert not out_bad.exists()
    assert "verification FAILED: nothing was written" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--verify needs --reference"):
        _run(base + ["-o", str(out_bad), "--verify", str(tmp_path / "input.npy")])
    assert not out_bad.exists()


def test_caffe_info_lists_layers_and_parameter_count(shared_data, capsys):
    model = shared_data / "caffe" / "lenet_mnist" / "model.caffemodel"
    assert _run(["caffe-info", str(model)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{model}: net '") and lines[0].endswith(" layers")
    assert any(line.split()[:2] == ["Convolution", "conv1"] for line in lines)
    assert lines[-1] == "431,080 parameters"


def test_errors_raise_naming_the_file_and_write_nothing(tmp_path):
    bogus = tmp_path / "deploy.prototxt"
    bogus.write_text("layer { name: 'x' type: 'Convolution' \n")
    with pytest.raises((DeepkitError, FileNotFoundError)) as info:
        _run(["convert-caffe", str(bogus), str(tmp_path / "none.caffemodel"), "-o",
              str(tmp_path / "o.h5")])
    assert "deploy.prototxt" in str(info.value) or "none.caffemodel" in str(info.value)
    assert not (tmp_path / "o.h5").exists()
