"""The one-file symbol model format: round trip, escaped names, damaged files, atomic writes."""
import json

import h5py
import numpy as np
import pytest

from deepkit import symbol_file
from deepkit.symbol_file import (FORMAT, VERSION, escape_name, read_symbol_file, unescape_name,
                                 write_symbol_file)
from deepkit_engine import symbol as sym
from deepkit_engine.base import DeepkitError


def _net(prefix="fc"):
    x = sym.Variable("data")
    y = sym.FullyConnected(x, num_hidden=3, name=prefix)
    return sym.BatchNorm(y, name=f"{prefix}_bn")


def _params(rng, prefix="fc"):
    args = {f"{prefix}_weight": rng.normal(size=(3, 4)).astype(np.float32),
            f"{prefix}_bias": np.arange(3, dtype=np.float64),  # stored as float32
            f"{prefix}_bn_gamma": np.ones(3, np.float32),
            f"{prefix}_bn_beta": np.zeros(3, np.float32)}
    aux = {f"{prefix}_bn_moving_mean": rng.normal(size=3).astype(np.float32),
           f"{prefix}_bn_moving_var": np.ones(3, np.float32)}
    return args, aux


def test_round_trip_keeps_symbol_params_and_metadata(tmp_path, rng):
    net = _net()
    args, aux = _params(rng)
    meta = {"inputs": [{"name": "data", "shape": [2, 4]}], "note": "x", "nested": {"a": [1, 2]}}
    path = tmp_path / "m.h5"
    assert write_symbol_file(path, net, args, aux, meta) == str(path)
    symbol, args2, aux2, meta2 = read_symbol_file(path)
    assert symbol.tojson() == net.tojson()
    assert set(args2) == set(args) and set(aux2) == set(aux)
    for name, value in {**args, **aux}.items():
        got = {**args2, **aux2}[name]
        assert got.dtype == np.float32 and np.array_equal(got, value.astype(np.float32))
    assert meta2 == meta
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == FORMAT == "deepkit.symbol_model"
        assert int(f.attrs["version"]) == VERSION == 1
        assert json.loads(f.attrs["metadata"]) == meta
        assert f["arg_params/fc_weight"].attrs["name"] == "fc_weight"


def test_the_mean_image_is_a_dataset_and_comes_back_in_the_metadata(tmp_path, rng):
    mean = rng.uniform(0, 255, (3, 5, 5)).astype(np.float32)
    meta = {"preprocessing": {"scale": 0.5, "mean_array": mean}}
    path = tmp_path / "m.h5"
    write_symbol_file(path, _net(), *_params(rng), meta, param_attrs={"fc_weight": {"origin": 7}})
    assert "mean_array" in meta["preprocessing"]  # the caller's dict is left as it was
    with h5py.File(path, "r") as f:
        assert np.array_equal(f["preprocessing/mean"][()], mean)
        assert json.loads(f.attrs["metadata"]) == {"preprocessing": {"scale": 0.5}}
        assert f["arg_params/fc_weight"].attrs["origin"] == 7
    _, _, _, meta2 = read_symbol_file(path)
    assert meta2["preprocessing"]["scale"] == 0.5
    assert np.array_equal(meta2["preprocessing"]["mean_array"], mean)


def test_names_that_need_escaping(tmp_path, rng):
    prefix = "conv1/7x7%s2"
    args, aux = _params(rng, prefix)
    path = tmp_path / "m.h5"
    write_symbol_file(path, _net(prefix), args, aux, {})
    with h5py.File(path, "r") as f:
        assert "conv1%2F7x7%25s2_weight" in f["arg_params"]
    symbol, args2, aux2, _ = read_symbol_file(path)
    assert set(args2) == set(args) and set(aux2) == set(aux)
    for name in ["a/b", "a%2Fb", "%", ".", "", "x__y", "a/b/c", "%2E", "%00"]:
        key = escape_name(name)
        assert unescape_name(key) == name and "/" not in key and key not in ("", ".")
    assert escape_name("a/b") != escape_name("a%2Fb")


def test_a_file_without_name_attributes_uses_the_unescaped_keys(tmp_path, rng):
    path = tmp_path / "m.h5"
    write_symbol_file(path, _net("a/b"), *_params(rng, "a/b"), {})
    with h5py.File(path, "r+") as f:
        for group in ("arg_params", "aux_params"):
            for ds in f[group].values():
                del ds.attrs["name"]
    _, args, aux, _ = read_symbol_file(path)
    assert "a/b_weight" in args and "a/b_bn_moving_var" in aux


def test_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        read_symbol_file(tmp_path / "nope.h5")


@pytest.mark.parametrize("damage", ["not_hdf5", "truncated", "other_format", "newer_version",
                                    "bad_json", "no_symbol", "no_group"])
def test_a_damaged_file_gives_a_clean_error_naming_it(tmp_path, rng, damage):
    path = tmp_path / "damaged.h5"
    write_symbol_file(path, _net(), *_params(rng), {"a": 1})
    if damage == "not_hdf5":
        path.write_text("hello")
    elif damage == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 3])
    else:
        with h5py.File(path, "r+") as f:
            if damage == "other_format":
                f.attrs["format"] = "something.else"
            elif damage == "newer_version":
                f.attrs["version"] = VERSION + 1
            elif damage == "bad_json":
                f.attrs["metadata"] = "{not json"
            elif damage == "no_symbol":
                del f.attrs["symbol_json"]
            else:
                del f["aux_params"]
    with pytest.raises(DeepkitError) as info:
        read_symbol_file(path)
    assert str(path) in str(info.value)


def test_a_failed_write_leaves_the_previous_file_intact(tmp_path, rng, monkeypatch):
    path = tmp_path / "m.h5"
    args, aux = _params(rng)
    write_symbol_file(path, _net(), args, aux, {"version": "old"})
    before = path.read_bytes()

    class Unwritable:
        def __array__(self, dtype=None, copy=None):
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        write_symbol_file(path, _net(), {**args, "fc_weight": Unwritable()}, aux,
                          {"version": "new"})
    assert path.read_bytes() == before
    assert read_symbol_file(path)[3] == {"version": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["m.h5"]  # no temporary file left behind


def test_a_failed_first_write_leaves_no_file(tmp_path):
    with pytest.raises(TypeError):
        write_symbol_file(tmp_path / "m.h5", _net(), {}, {}, {"not json": object()})
    assert list(tmp_path.iterdir()) == []


def test_public_names():
    assert set(symbol_file.__all__) == {"FORMAT", "VERSION", "escape_name", "unescape_name",
                                        "write_symbol_file", "read_symbol_file"}
