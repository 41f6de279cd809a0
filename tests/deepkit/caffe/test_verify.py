"""verify(): per-layer max abs/rel differences against a reference, pass/fail at
max|diff| <= 1e-4 * max|ref| + 1e-5, reference keys as layer or blob names."""
import numpy as np
import pytest

from deepkit.caffe import convert, verify
from deepkit.caffe.verify import resolve_output, run
from deepkit_engine.base import DeepkitError

from .nets import input_layer, layer, write_net


@pytest.fixture
def chain(tmp_path, rng):
    """data -> conv -> bn (in place) -> relu (in place) -> pool, plus a dropped Silence."""
    w = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)
    lay = [input_layer((1, 3, 6, 6)),
           layer("conv", "Convolution", "data", blobs=[w], convolution_param={
               "num_output": 4, "kernel_size": [3], "bias_term": False}),
           layer("bn", "BatchNorm", "conv", top="conv", blobs=[np.zeros(4), np.ones(4), [1.0]]),
           layer("relu", "ReLU", "conv", top="conv"),
           layer("pool", "Pooling", "conv", pooling_param={"pool": "MAX", "kernel_size": 2,
                                                          "stride": 2}),
           layer("side", "Sigmoid", "conv", top="side"),
           layer("mute", "Silence", "side", top=[])]
    proto, model = write_net(tmp_path, lay)
    conv = convert(proto, model)
    x = rng.normal(size=(2, 3, 6, 6)).astype(np.float32)
    names = ["conv_output", "bn_output", "relu_output", "pool_output"]
    values = run(conv, x, outputs=names)
    return conv, x, values


def test_identical_reference_passes(chain):
    conv, x, v = chain
    ref = {"conv": v["conv_output"], "bn": v["bn_output"], "relu": v["relu_output"],
           "pool": v["pool_output"]}
    report = verify(conv, x, ref)
    assert report.passed and bool(report)
    assert [r.key for r in report.rows] == ["conv", "bn", "relu", "pool"]
    assert all(r.max_abs == 0 and r.max_rel == 0 for r in report.rows)
    text = str(report)
    assert "PASSED" in text and "4/4 within" in text and "pool_output" in text
    assert report.raise_if_failed() is report


def test_tolerance_boundary(chain):
    conv, x, v = chain
    ref = v["pool_output"].astype(np.float64)
    tol = 1e-4 * np.abs(ref).max() + 1e-5
    inside = ref.copy()
    inside.flat[0] += 0.9 * tol
    outside = ref.copy()
    outside.flat[0] += 1.5 * tol
    assert verify(conv, x, {"pool": inside}).passed
    report = verify(conv, x, {"pool": outside})
    assert not report.passed
    row = report["pool"]
    assert row.max_abs == pytest.approx(1.5 * tol, rel=1e-3)
    assert row.max_rel == pytest.approx(row.max_abs / row.ref_max)
    assert row.tolerance == pytest.approx(tol)
    with pytest.raises(DeepkitError, match="verification failed"):
        report.raise_if_failed()


def test_custom_tolerance(chain):
    conv, x, v = chain
    ref = v["pool_output"] + 0.01
    assert not verify(conv, x, {"pool": ref}).passed
    assert verify(conv, x, {"pool": ref}, atol=0.02).passed


def test_layer_and_blob_keys_for_in_place_chains(chain):
    conv, x, v = chain
    # layer 'conv' is the convolution's output; blob 'conv' is its last version (after relu)
    assert resolve_output(conv, "conv", "layer")[0] == "conv_output"
    assert resolve_output(conv, "conv", "blob")[0] == "relu_output"
    assert resolve_output(conv, "conv")[0] == "conv_output"  # auto: the layer name first
    assert verify(conv, x, {"conv": v["relu_output"]}, keys="blob").passed
    assert not verify(conv, x, {"conv": v["relu_output"]}, keys="layer").passed
    assert verify(conv, x, {"relu_output": v["relu_output"]}).passed  # engine names work too


def test_single_array_reference_is_the_final_output(chain):
    conv, x, v = chain
    report = verify(conv, x, v["pool_output"])
    assert report.passed and report.rows[0].key == "pool"


def test_uncomparable_keys_fail_with_a_note(chain):
    conv, x, v = chain
    report = verify(conv, x, {"mute": np.zeros(1), "nothing": np.zeros(1),
                              "pool": v["pool_output"]})
    assert not report.passed
    assert "dropped" in report["mute"].note
    assert "no layer or blob named 'nothing'" in report["nothing"].note
    assert report["pool"].passed


def test_shape_mismatch_and_reshape(chain):
    conv, x, v = chain
    report = verify(conv, x, {"pool": v["pool_output"][:, :2]})
    assert not report.passed and "differs from the reference" in report["pool"].note
    flat = verify(conv, x, {"pool": v["pool_output"].reshape(2, -1)})
    assert flat.passed and "reshaped" in flat["pool"].note


def test_non_finite_values(chain):
    conv, x, v = chain
    ref = v["pool_output"].copy()
    ref.flat[3] = np.nan
    report = verify(conv, x, {"pool": ref})
    assert not report.passed and report["pool"].note == "non-finite values differ"


def test_several_outputs_need_a_dict(tmp_path, rng):
    lay = [input_layer((1, 2)), layer("a", "ReLU", "data"), layer("b", "TanH", "data")]
    proto, model = write_net(tmp_path, lay)
    conv = convert(proto, model)
    with pytest.raises(DeepkitError, match="pass a dict"):
        verify(conv, np.zeros((1, 2), np.float32), np.zeros((1, 2)))
    x = rng.normal(size=(3, 2)).astype(np.float32)
    assert verify(conv, x, {"a": np.maximum(x, 0), "b": np.tanh(x)}).passed
