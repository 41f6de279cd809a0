"""The ``deepkit`` command: info, convert-caffe (with verification), caffe-info, errors."""
import subprocess
import sys

import numpy as np

import deepkit
from deepkit.cli import main


def test_info_prints_versions_and_operator_count(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "deepkit 0.1.0" in out and "operators" in out and "engine" in out


def test_console_script_is_installed():
    result = subprocess.run([sys.executable, "-m", "deepkit.cli", "info"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and "operators" in result.stdout


def test_convert_caffe_writes_a_loadable_model_and_prints_the_table(shared_data, tmp_path,
                                                                     capsys):
    folder = shared_data / "caffe" / "lenet_mnist"
    out = tmp_path / "lenet.h5"
    code = main(["convert-caffe", str(folder / "deploy.prototxt"),
                 str(folder / "model.caffemodel"), "-o", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "Convolution" in text and "conv1" in text and f"wrote {out}" in text
    model = deepkit.load_model(out)
    x = np.zeros((2, 1, 28, 28), np.float32)
    assert model.predict(x).shape == (2, 10)


def test_convert_caffe_verify_mode_compares_with_a_reference(shared_data, tmp_path, capsys):
    from deepkit import caffe  # noqa: PLC0415
    from deepkit.caffe.verify import run  # noqa: PLC0415
    folder = shared_data / "caffe" / "lenet_mnist"
    conversion = caffe.convert(folder / "deploy.prototxt", folder / "model.caffemodel")
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    np.save(tmp_path / "input.npy", x)
    good = run(conversion, x)
    np.savez(tmp_path / "ref.npz", **{k: v for k, v in good.items() if "/" not in k})
    out = tmp_path / "ok.h5"
    assert main(["convert-caffe", str(folder / "deploy.prototxt"),
                 str(folder / "model.caffemodel"), "-o", str(out), "--verify",
                 str(tmp_path / "input.npy"), "--reference", str(tmp_path / "ref.npz")]) == 0
    assert out.exists()
    bad = {k: v + 1.0 for k, v in good.items() if "/" not in k}
    np.savez(tmp_path / "bad.npz", **bad)
    out_bad = tmp_path / "bad.h5"
    assert main(["convert-caffe", str(folder / "deploy.prototxt"),
                 str(folder / "model.caffemodel"), "-o", str(out_bad), "--verify",
                 str(tmp_path / "input.npy"), "--reference", str(tmp_path / "bad.npz")]) == 1
    assert not out_bad.exists()
    assert "FAILED" in capsys.readouterr().err


def test_caffe_info_lists_layers_and_parameter_count(shared_data, capsys):
    folder = shared_data / "caffe" / "lenet_mnist"
    assert main(["caffe-info", str(folder / "model.caffemodel")]) == 0
    out = capsys.readouterr().out
    assert "conv1" in out and "431,080 parameters" in out


def test_errors_name_the_file_and_exit_2(tmp_path, capsys):
    bogus = tmp_path / "deploy.prototxt"
    bogus.write_text("layer { name: 'x' type: 'Convolution' \n")
    assert main(["convert-caffe", str(bogus), str(tmp_path / "none.caffemodel"), "-o",
                 str(tmp_path / "o.h5")]) == 2
    err = capsys.readouterr().err
    assert "deploy.prototxt" in err or "none.caffemodel" in err
    assert not (tmp_path / "o.h5").exists()


def test_a_closed_pipe_ends_the_command_quietly():
    """``deepkit zoo list | head -1``: the reader leaves early; no BrokenPipe traceback."""
    code = ("import sys; from deepkit.cli import main; "
            "sys.stdout.reconfigure(line_buffering=True); sys.exit(main(['zoo', 'list']))")
    reader = subprocess.Popen(["head", "-c", "10"], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL)
    result = subprocess.run([sys.executable, "-c", code], stdout=reader.stdin,
                            stderr=subprocess.PIPE, text=True, timeout=120)
    reader.stdin.close()
    reader.wait(timeout=30)
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
    assert result.returncode == 0


def test_every_registered_command_is_in_the_help(capsys):
    try:
        main(["--help"])
    except SystemExit:
        pass
    out = capsys.readouterr().out
    for command in ("info", "convert-caffe", "caffe-info", "zoo", "export-onnx", "import-onnx"):
        assert command in out
