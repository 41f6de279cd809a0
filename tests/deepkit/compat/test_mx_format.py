"""MXNet's binary NDArray format: the real MXNet 1.9.1 checkpoint, byte layout, round trips."""
import hashlib
import struct

import h5py
import numpy as np
import pytest

import deepkit_engine as dk
from deepkit.compat import mx_format
from deepkit.compat import mxnet as mx
from deepkit_engine.base import DeepkitError


@pytest.fixture
def mxnet_dir(shared_data):
    return shared_data / "mxnet"


def test_reads_the_checkpoint_mxnet_wrote(mxnet_dir):
    raw = (mxnet_dir / "mnist_mlp-0003.params").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == \
        "6ab3cd355de0a5df84e0847fc523ecc6db05dd765f9b12f28095e9ef2fa39eb4"
    params = mx_format.loads(raw)
    assert list(params) == ["arg:fc1_weight", "arg:fc1_bias", "arg:fc2_weight", "arg:fc2_bias",
                            "arg:fc3_weight", "arg:fc3_bias"]
    assert params["arg:fc1_weight"].shape == (128, 784)
    assert params["arg:fc3_bias"].dtype == np.float32
    # the first array starts right after the 24-byte list header: V2 magic, dense, ndim 2
    assert struct.unpack_from("<QQQIii", raw) == (0x112, 0, 6, 0xF993FAC9, 0, 2)
    expected = np.frombuffer(raw, np.float32, count=4, offset=24 + 12 + 16 + 12)
    np.testing.assert_array_equal(params["arg:fc1_weight"].ravel()[:4], expected)


def test_writing_what_was_read_gives_mxnets_bytes_back(mxnet_dir):
    raw = (mxnet_dir / "mnist_mlp-0003.params").read_bytes()
    assert mx_format.dumps(mx_format.loads(raw)) == raw


def test_load_checkpoint_gives_mxnets_outputs(mxnet_dir):
    symbol, arg, aux = mx.model.load_checkpoint(str(mxnet_dir / "mnist_mlp"), 3)
    assert aux == {} and sorted(arg) == ["fc1_bias", "fc1_weight", "fc2_bias", "fc2_weight",
                                         "fc3_bias", "fc3_weight"]
    ref = np.load(mxnet_dir / "reference.npz")
    exe = symbol.simple_bind(mx.cpu(), data=(100, 784), grad_req="null")
    exe.copy_params_from(arg, aux)
    out = exe.forward(data=ref["data"])[0].asnumpy()
    np.testing.assert_allclose(out, ref["output"], atol=1e-6)
    assert (out.argmax(1) == ref["label"]).mean() > 0.95


def test_save_checkpoint_round_trips_identical_arrays(tmp_path):
    net = mx.sym.BatchNorm(mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=3, name="fc"),
                           name="bn")
    rng = np.random.default_rng(0)
    arg = {"fc_weight": mx.nd.array(rng.normal(size=(3, 5))),
           "fc_bias": mx.nd.array(rng.normal(size=3)),
           "bn_gamma": mx.nd.array(rng.normal(size=3)), "bn_beta": mx.nd.zeros(3)}
    aux = {"bn_moving_mean": mx.nd.array(rng.normal(size=3)), "bn_moving_var": mx.nd.ones(3)}
    prefix = str(tmp_path / "net")
    mx.model.save_checkpoint(prefix, 7, net, arg, aux)
    raw = (tmp_path / "net-0007.params").read_bytes()
    assert struct.unpack_from("<QQQ", raw) == (0x112, 0, 6)
    symbol, arg2, aux2 = mx.model.load_checkpoint(prefix, 7)
    assert symbol.tojson() == net.tojson()
    for given, loaded in ((arg, arg2), (aux, aux2)):
        assert sorted(given) == sorted(loaded)
        for k in given:
            np.testing.assert_array_equal(given[k].asnumpy(), loaded[k].asnumpy())


def test_nd_save_load_lists_dicts_dtypes_and_empty_arrays(tmp_path):
    path = str(tmp_path / "a.nd")
    values = [mx.nd.array(np.arange(6).reshape(2, 3), dtype=dt)
              for dt in ("float32", "float64", "float16", "uint8", "int32", "int8", "int64")]
    mx.nd.save(path, values)
    loaded = mx.nd.load(path)
    assert isinstance(loaded, list) and len(loaded) == len(values)
    for a, b in zip(values, loaded):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())
    mx.nd.save(path, {"w": mx.nd.ones((2,)), "ü": mx.nd.zeros((1, 1, 1))})
    loaded = mx.nd.load(path)
    assert list(loaded) == ["w", "ü"] and loaded["ü"].shape == (1, 1, 1)
    mx.nd.save(path, mx.nd.ones((4,)))
    assert mx.nd.load(path)[0].shape == (4,)
    assert mx_format.loads(mx_format.dumps([None, np.ones(2, np.float32)]))[0] is None


def test_reads_version_1_and_legacy_headers():
    data = np.arange(4, dtype=np.float32)
    v1 = struct.pack("<QQQIiqiii", 0x112, 0, 1, 0xF993FAC8, 1, 4, 1, 0, 0) + data.tobytes()
    legacy = struct.pack("<QQQIIiii", 0x112, 0, 1, 1, 4, 1, 0, 0) + data.tobytes()
    for raw in (v1, legacy):
        raw += struct.pack("<Q", 0)
        np.testing.assert_array_equal(mx_format.loads(raw)[0], data)


def test_damaged_and_foreign_files_are_named(tmp_path):
    with pytest.raises(DeepkitError, match="not an MXNet NDArray file"):
        mx_format.loads(b"\x00" * 32, source="x.params")
    good = mx_format.dumps({"w": np.ones((3, 3), np.float32)})
    with pytest.raises(DeepkitError, match=r"x.params is truncated: reading the data of array 0"):
        mx_format.loads(good[:-20], source="x.params")
    sparse = struct.pack("<QQQIi", 0x112, 0, 1, 0xF993FAC9, 1) + b"\x00" * 64
    with pytest.raises(DeepkitError, match="'row_sparse'; deepkit reads only dense"):
        mx_format.loads(sparse)
    with pytest.raises(DeepkitError, match="dtype complex64"):
        mx_format.dumps([np.ones(2, np.complex64)])
    with pytest.raises(FileNotFoundError, match="no such file"):
        mx.nd.load(str(tmp_path / "missing.params"))


def test_deepkit_nd_save_stays_hdf5_and_mx_nd_load_reads_it(tmp_path):
    path = str(tmp_path / "dk.h5")
    dk.nd.save(path, {"a": dk.nd.ones((2,))})
    assert h5py.is_hdf5(path)
    np.testing.assert_array_equal(mx.nd.load(path)["a"].asnumpy(), np.ones(2))
