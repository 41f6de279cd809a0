"""MXNet 1.x namespaces as scripts use them: mx.context, mx.viz, mx.random, mx.name,
mx.attribute, mx.base, mx.test_utils, mx.nd.contrib's inf/nan tests, mx.nd.load_frombuffer,
mx.init.FusedRNN, and pickled symbols.

Expected values come from numpy (float64) or from the rules MXNet 1.9.1 documents.
"""
import pickle

import numpy as np
import pytest

from deepkit.compat import mxnet as mx


def _mlp():
    net = mx.sym.Variable("data")
    net = mx.sym.FullyConnected(net, name="fc1", num_hidden=128)
    net = mx.sym.Activation(net, name="relu1", act_type="relu")
    net = mx.sym.FullyConnected(net, name="fc2", num_hidden=10)
    return mx.sym.SoftmaxOutput(net, name="softmax")


def test_print_summary_counts_parameters_like_mxnet():
    lines = []
    total = mx.viz.print_summary(_mlp(), shape={"data": (1, 784)}, print_fn=lines.append)
    assert total == 784 * 128 + 128 + 128 * 10 + 10
    text = "\n".join(lines)
    assert "fc1(FullyConnected)" in text and "100480" in text and "Total params: 101770" in text
    fc2 = next(line for line in lines if line.startswith("fc2"))
    assert fc2.split()[1:] == ["10", "1290", "relu1"]


def test_context_and_random_namespaces():
    assert mx.context.num_gpus() == mx.num_gpus() >= 0
    assert mx.context.cpu() == mx.cpu() and mx.context.Context is mx.Context
    mx.random.seed(4)
    first = mx.random.uniform(0, 1, shape=(3,)).asnumpy()
    mx.random.seed(4)
    np.testing.assert_array_equal(mx.nd.random.uniform(0, 1, shape=(3,)).asnumpy(), first)
    assert mx.random.poisson(2.0, shape=(2,)).shape == (2,)
    assert mx.sym.random.normal(shape=(2,)).infer_shape()[1] == [(2,)]
    assert mx.nd.contrib.BilinearResize2D(mx.nd.ones((1, 1, 2, 2)), height=4,
                                          width=4).shape == (1, 1, 4, 4)
    assert callable(mx.nd.contrib.foreach) and callable(mx.contrib.symbol.foreach)


# -- mx.name, mx.attribute, mx.base ----------------------------------------------------
def test_prefix_scope_prepends_to_automatic_and_explicit_names():
    with mx.name.Prefix("enc_"):
        auto = mx.sym.FullyConnected(mx.sym.Variable("x"), num_hidden=2)
        named = mx.sym.Activation(auto, act_type="tanh", name="act")
    assert auto.name.startswith("enc_fullyconnected")
    assert auto.list_arguments() == ["x", auto.name + "_weight", auto.name + "_bias"]
    assert named.name == "enc_act"
    # leaving the block restores plain names
    assert mx.sym.Activation(mx.sym.Variable("y"), act_type="relu", name="r").name == "r"


def test_fresh_name_manager_counts_each_op_from_zero():
    with mx.name.NameManager():
        first = mx.sym.Pooling(mx.sym.Variable("x"), kernel=(2, 2), pool_type="max")
        second = mx.sym.Pooling(first, kernel=(2, 2), pool_type="avg")
        other = mx.sym.Flatten(second)
    assert (first.name, second.name, other.name) == ("pooling0", "pooling1", "flatten0")
    with mx.name.NameManager():
        assert mx.sym.Pooling(mx.sym.Variable("x"), kernel=(2, 2)).name == "pooling0"


def test_attr_scope_marks_every_symbol_made_inside_it():
    with mx.AttrScope(ctx_group="stage1", lr_mult="0.5"):
        w = mx.sym.Variable("w")
        fc = mx.sym.FullyConnected(mx.sym.Variable("x"), weight=w, num_hidden=3, name="fc",
                                   no_bias=True)
    outside = mx.sym.Variable("z")
    assert mx.attribute.AttrScope is mx.AttrScope
    assert w.attr("ctx_group") == "stage1" and fc.attr("lr_mult") == "0.5"
    assert fc.attr_dict()["x"] == {"ctx_group": "stage1", "lr_mult": "0.5"}
    assert outside.attr("ctx_group") is None
    # an explicit attribute wins over the scope's
    with mx.AttrScope(ctx_group="stage1"):
        assert mx.sym.Variable("v", attr={"ctx_group": "other"}).attr("ctx_group") == "other"


def test_base_error_class_and_type_tuples():
    assert issubclass(mx.base.MXNetError, Exception) and mx.base.MXNetError is mx.MXNetError
    with pytest.raises(mx.base.MXNetError):
        mx.nd.load_frombuffer(b"\x00" * 4)
    assert isinstance(np.int64(3), mx.base.integer_types) and isinstance(7, mx.base.integer_types)
    assert not isinstance(2.5, mx.base.integer_types)
    for value in (1, 2.5, np.float32(1), np.int8(3)):
        assert isinstance(value, mx.base.numeric_types)
    assert not isinstance("1", mx.base.numeric_types)
    assert isinstance("data", mx.base.string_types) and not isinstance(b"x", mx.base.string_types)


# -- mx.test_utils ---------------------------------------------------------------------
def test_same_is_exact_equality_across_ndarray_and_numpy():
    values = np.array([[0.5, -1.0], [3.0, 1e-8]], dtype=np.float32)
    assert mx.test_utils.same(mx.nd.array(values), values)
    nudged = values.copy()
    nudged[1, 1] = np.nextafter(nudged[1, 1], np.float32(1))
    assert not mx.test_utils.same(mx.nd.array(values), nudged)
    assert not mx.test_utils.same(values, values[:1])


@pytest.mark.parametrize("dtype, inside, outside", [
    # MXNet's defaults: |a - b| <= atol + rtol * |b|
    ("float16", 0.1 + 1e-2 * 2.0 - 0.02, 0.1 + 1e-2 * 2.0 + 0.05),
    ("float32", 1e-3 + 1e-4 * 2.0 - 1e-4, 1e-3 + 1e-4 * 2.0 + 1e-4),
    ("float64", 1e-5 * 2.0 * 0.9, 1e-5 * 2.0 * 1.1),
])
def test_almost_equal_default_tolerances_follow_the_dtype(dtype, inside, outside):
    b = np.array([2.0], dtype=dtype)
    assert mx.test_utils.almost_equal(b + np.array([inside], dtype=dtype), b)
    assert not mx.test_utils.almost_equal(b + np.array([outside], dtype=dtype), b)
    mx.test_utils.assert_almost_equal(b + np.array([inside], dtype=dtype), b)
    with pytest.raises(AssertionError, match="not almost equal"):
        mx.test_utils.assert_almost_equal(b + np.array([outside], dtype=dtype), b)


def test_almost_equal_options():
    a32, a64 = np.ones(3, np.float32), np.ones(3, np.float64)
    # mixed dtypes take the looser default (float32's atol 1e-3)
    assert mx.test_utils.almost_equal(a32 + 5e-4, a64)
    assert not mx.test_utils.almost_equal(a32 + 5e-4, a32, rtol=0, atol=1e-4)
    assert mx.test_utils.almost_equal(np.ones((2, 3)), np.ones(3))
    assert not mx.test_utils.almost_equal(np.ones((2, 3)), np.ones(3), use_broadcast=False)
    nan = np.array([np.nan, 1.0])
    assert not mx.test_utils.almost_equal(nan, nan)
    assert mx.test_utils.almost_equal(nan, nan, equal_nan=True)
    with pytest.raises(AssertionError, match="shapes differ"):
        mx.test_utils.assert_almost_equal(np.ones((2, 3)), np.ones(3), use_broadcast=False)
    with pytest.raises(AssertionError, match=r"1 of 2 elements differ.*got=.*5\.0.*want=.*4\.0"):
        mx.test_utils.assert_almost_equal(np.array([1.0, 5.0]), np.array([1.0, 4.0]),
                                          names=("got", "want"))


def test_check_consistency_agrees_with_a_float64_reference():
    rng = np.random.default_rng(3)
    params = {"data": rng.normal(size=(4, 5)), "fc_weight": rng.normal(size=(3, 5)),
              "fc_bias": rng.normal(size=(3,))}
    net = mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=3, name="fc")
    specs = [{"ctx": mx.cpu(), "data": (4, 5), "type_dict": {"data": t}}
             for t in (np.float64, np.float32)]
    truth = mx.test_utils.check_consistency(net, specs, arg_params=params)
    expected = params["data"] @ params["fc_weight"].T + params["fc_bias"]
    np.testing.assert_allclose(truth["fc_output"].asnumpy(), expected, rtol=1e-12)
    assert truth["fc_output"].dtype == np.float64
    assert set(truth) == {"fc_output", "data", "fc_weight", "fc_bias"}


def test_check_consistency_reports_executors_that_disagree():
    x = mx.sym.Variable("data")
    pair = [mx.sym.Activation(x, act_type="relu", name="act"),
            mx.sym.Activation(x, act_type="sigmoid", name="act")]
    specs = [{"ctx": mx.cpu(), "data": (3, 4)}] * 2
    with pytest.raises(AssertionError, match="act_output"):
        mx.test_utils.check_consistency(pair, specs)
    assert "act_output" in mx.test_utils.check_consistency(pair, specs, raise_on_err=False)
    with pytest.raises(ValueError, match="at least two"):
        mx.test_utils.check_consistency(pair[0], specs[:1])


def test_random_shapes_and_arrays():
    np.random.seed(11)
    for _ in range(20):
        shape = mx.test_utils.rand_shape_nd(4, dim=3)
        assert len(shape) == 4 and all(1 <= s <= 3 for s in shape)
        d0, d1 = mx.test_utils.rand_shape_2d(2, 5)
        assert 1 <= d0 <= 2 and 1 <= d1 <= 5
        assert all(1 <= s <= m for s, m in zip(mx.test_utils.rand_shape_3d(1, 2, 3), (1, 2, 3)))
    assert 0 in {s for _ in range(50) for s in mx.test_utils.rand_shape_2d(1, 1, True)}
    one = mx.test_utils.random_arrays((2, 3))
    several = mx.test_utils.random_arrays((4,), (), (1, 2))
    assert isinstance(one, np.ndarray) and one.shape == (2, 3) and one.dtype == np.float32
    assert [a.shape for a in several] == [(4,), (), (1, 2)]
    big = mx.test_utils.random_arrays((200, 100))
    assert abs(big.mean()) < 0.05 and abs(big.std() - 1) < 0.05


def test_rand_ndarray_is_dense_only():
    arr = mx.test_utils.rand_ndarray((3, 4), dtype="float64")
    assert isinstance(arr, mx.nd.NDArray) and arr.shape == (3, 4) and arr.dtype == np.float64
    assert mx.test_utils.rand_ndarray((2,)).dtype == np.float32
    with pytest.raises(ValueError, match="stype='csr'.*dense"):
        mx.test_utils.rand_ndarray((3, 4), stype="csr")


# -- mx.nd.contrib.isinf/isfinite/isnan, mx.nd.load_frombuffer --------------------------
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_contrib_inf_nan_tests_match_numpy_in_the_input_dtype(dtype):
    values = np.array([[0.0, -2.5, np.inf], [np.nan, -np.inf, 7.0]], dtype=dtype)
    x = mx.nd.array(values, dtype=dtype)
    for fn, reference in ((mx.nd.contrib.isinf, np.isinf), (mx.nd.contrib.isfinite, np.isfinite),
                          (mx.nd.contrib.isnan, np.isnan)):
        out = fn(x)
        assert out.dtype == np.dtype(dtype) and out.shape == values.shape
        np.testing.assert_array_equal(out.asnumpy(), reference(values).astype(dtype))


def _saved_bytes(tmp_path, data):
    path = str(tmp_path / "arrays.nd")
    mx.nd.save(path, data)
    with open(path, "rb") as f:
        return f.read()


def test_load_frombuffer_round_trips_lists_and_dicts(tmp_path):
    rng = np.random.default_rng(5)
    listed = [rng.normal(size=(2, 3)).astype(np.float32), np.arange(5, dtype=np.int32),
              rng.normal(size=(1, 2, 2)).astype(np.float64)]
    back = mx.nd.load_frombuffer(_saved_bytes(tmp_path, [mx.nd.array(a, dtype=a.dtype)
                                                         for a in listed]))
    assert isinstance(back, list) and len(back) == 3
    for got, want in zip(back, listed):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got.asnumpy(), want)
    named = {"w": listed[0], "idx": listed[1]}
    buf = _saved_bytes(tmp_path, {k: mx.nd.array(v, dtype=v.dtype) for k, v in named.items()})
    for view in (buf, bytearray(buf), memoryview(buf)):
        back = mx.nd.load_frombuffer(view)
        assert sorted(back) == ["idx", "w"]
        np.testing.assert_array_equal(back["idx"].asnumpy(), named["idx"])


def test_load_frombuffer_rejects_corrupt_or_wrong_input(tmp_path):
    buf = _saved_bytes(tmp_path, {"w": mx.nd.ones((4, 4))})
    with pytest.raises(mx.MXNetError, match="truncated"):
        mx.nd.load_frombuffer(buf[:-9])
    with pytest.raises(mx.MXNetError, match="not an MXNet NDArray file"):
        mx.nd.load_frombuffer(b"\x01\x02" + buf[2:])
    with pytest.raises(TypeError, match="buf must be bytes, got str"):
        mx.nd.load_frombuffer("not bytes")


# -- mx.init.FusedRNN ------------------------------------------------------------------
def _fused_params(cell, init, data_shape):
    out, _ = cell.unroll(data_shape[1], mx.sym.Variable("data"), layout="NTC",
                         merge_outputs=True)
    mod = mx.mod.Module(out, label_names=None)
    mod.bind(data_shapes=[("data", data_shape)])
    mod.init_params(init)
    packed = {k: v.asnumpy() for k, v in mod.get_params()[0].items()}
    return cell.unpack_weights(packed)


def test_fused_rnn_cell_initializes_each_gate_and_opens_the_forget_gate():
    mx.random.seed(2)
    cell = mx.rnn.FusedRNNCell(6, num_layers=2, mode="lstm", prefix="lstm_", forget_bias=1.5)
    parts = _fused_params(cell, mx.init.Uniform(0.2), (2, 3, 5))
    weights = {k: v for k, v in parts.items() if k.endswith("_weight")}
    biases = {k: v for k, v in parts.items() if k.endswith("_bias")}
    assert len(weights) == len(biases) == 2 * 2 * 4  # layers x (i2h, h2h) x gates
    assert parts["lstm_l0_i2h_i_weight"].shape == (6, 5)
    assert parts["lstm_l1_i2h_i_weight"].shape == (6, 6)
    every = np.concatenate([w.ravel() for w in weights.values()])
    assert np.abs(every).max() <= 0.2 and np.abs(every).max() > 0.18
    assert abs(every.std() - 0.2 / np.sqrt(3)) < 0.015
    for name, b in biases.items():
        # MXNet sets both the i2h and the h2h forget-gate bias
        np.testing.assert_array_equal(b, 1.5 if "_f_bias" in name else 0.0)


def test_fused_rnn_initializer_applies_its_wrapped_initializer_per_gate_matrix():
    mx.random.seed(4)
    init = mx.init.FusedRNN(mx.init.Xavier(magnitude=3), num_hidden=4, num_layers=1,
                            mode="gru", bidirectional=True)
    shared = mx.rnn.RNNParams("gru_")
    shared.get("parameters", init=init)  # the cell takes this variable, declared beforehand
    cell = mx.rnn.FusedRNNCell(4, num_layers=1, mode="gru", bidirectional=True, prefix="gru_",
                               params=shared)
    out, _ = cell.unroll(3, mx.sym.Variable("data"), layout="NTC", merge_outputs=True)
    mod = mx.mod.Module(out, label_names=None)
    mod.bind(data_shapes=[("data", (2, 3, 7))])
    mod.init_params(mx.init.Constant(9.0))  # only used for parts FusedRNN leaves to it
    parts = cell.unpack_weights({k: v.asnumpy() for k, v in mod.get_params()[0].items()})
    assert {k.split("_")[1] for k in parts} == {"l0", "r0"}
    for name, value in parts.items():
        if name.endswith("_bias"):
            np.testing.assert_array_equal(value, 0.0)  # no forget gate in a GRU
            continue
        # Xavier's uniform bound sqrt(3 / ((fan_in + fan_out) / 2)) of this (4, in) matrix
        bound = np.sqrt(3.0 / ((value.shape[0] + value.shape[1]) / 2))
        assert np.abs(value).max() <= bound and np.abs(value).max() > 0.5 * bound, name
    assert mx.init.create(init.dumps()).dumps() == init.dumps()


def test_fused_rnn_unpack_rejects_a_vector_of_the_wrong_size():
    cell = mx.rnn.FusedRNNCell(3, mode="gru", prefix="g_")
    with pytest.raises(ValueError, match="'g_'.*7 values.*fits no input size"):
        cell.unpack_weights({"g_parameters": np.zeros(7)})


# -- pickling a symbol -----------------------------------------------------------------
def test_pickled_conv_net_with_batchnorm_keeps_its_json_and_shapes():
    net = mx.sym.Convolution(mx.sym.Variable("data"), kernel=(3, 3), pad=(1, 1), num_filter=4,
                             name="conv")
    net = mx.sym.BatchNorm(net, fix_gamma=False, name="bn")
    net = mx.sym.Pooling(mx.sym.Activation(net, act_type="relu"), kernel=(2, 2),
                         stride=(2, 2), pool_type="max")
    net = mx.sym.FullyConnected(mx.sym.Flatten(net), num_hidden=3, name="fc")
    net = mx.sym.SoftmaxOutput(net, name="softmax")
    again = pickle.loads(pickle.dumps(net))
    assert again.tojson() == net.tojson()
    assert again.list_auxiliary_states() == ["bn_moving_mean", "bn_moving_var"]
    assert again.infer_shape(data=(2, 1, 8, 8))[1] == [(2, 3)]
