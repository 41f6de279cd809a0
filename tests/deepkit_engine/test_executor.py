"""Executors: bind/simple_bind, forward/backward, sharing, reshaping, errors."""
import numpy as np
import pytest

import deepkit_engine as dk
from deepkit_engine import symbol as sym
from deepkit_engine.base import ContextError, DeepkitError, ShapeError
from deepkit_engine.testing import assert_almost_equal, check_numeric_gradient

nd = dk.nd


def mlp(hidden=16, classes=4):
    data = sym.Variable("data")
    fc1 = sym.FullyConnected(data, num_hidden=hidden, name="fc1")
    act = sym.Activation(fc1, act_type="relu", name="relu1")
    fc2 = sym.FullyConnected(act, num_hidden=classes, name="fc2")
    return sym.SoftmaxOutput(fc2, name="softmax")


def _numpy_mlp_grads(x, y, w1, b1, w2, b2):
    h = x @ w1.T + b1
    a = np.maximum(h, 0)
    z = a @ w2.T + b2
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz = p.copy()
    dz[np.arange(len(y)), y.astype(int)] -= 1
    dw2 = dz.T @ a
    db2 = dz.sum(0)
    da = dz @ w2
    dh = da * (h > 0)
    return p, {"fc1_weight": dh.T @ x, "fc1_bias": dh.sum(0), "fc2_weight": dw2,
               "fc2_bias": db2}


def test_simple_bind_forward_backward_matches_numpy(ctx):
    rng = np.random.default_rng(0)
    net = mlp()
    exe = net.simple_bind(ctx, data=(8, 10))
    assert set(exe.grad_dict) == {"data", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias",
                                  "softmax_label"}
    values = {"data": rng.normal(size=(8, 10)), "fc1_weight": rng.normal(size=(16, 10)) * 0.3,
              "fc1_bias": rng.normal(size=16) * 0.1, "fc2_weight": rng.normal(size=(4, 16)),
              "fc2_bias": rng.normal(size=4), "softmax_label": rng.integers(0, 4, 8)}
    for k, v in values.items():
        exe.arg_dict[k][:] = v
    outputs = exe.forward(is_train=True)
    exe.backward()
    f32 = {k: v.astype(np.float32).astype(np.float64) for k, v in values.items()}
    probs, grads = _numpy_mlp_grads(f32["data"], f32["softmax_label"], f32["fc1_weight"],
                                    f32["fc1_bias"], f32["fc2_weight"], f32["fc2_bias"])
    assert_almost_equal(outputs[0], probs, rtol=1e-4, atol=1e-5)
    for k, g in grads.items():
        assert_almost_equal(exe.grad_dict[k], g, rtol=1e-3, atol=1e-4)


def test_forward_is_lazy_and_outputs_wait():
    exe = mlp(hidden=512).simple_bind(data=(256, 1024), grad_req="null")
    exe.arg_dict["data"][:] = 1.0
    outputs = exe.forward()
    assert outputs[0].shape == (256, 4)
    assert_almost_equal(outputs[0].asnumpy().sum(axis=1), np.ones(256))


def test_bind_with_lists_dicts_and_grad_req_per_argument():
    x = sym.Variable("x")
    w = sym.Variable("w")
    y = sym.sum(x * w)
    args = [nd.array([1.0, 2.0]), nd.array([3.0, 4.0])]
    grads = [nd.zeros(2), nd.zeros(2)]
    exe = y.bind(dk.cpu(), args, args_grad=grads, grad_req={"x": "null", "w": "write"})
    exe.forward(is_train=True)
    exe.backward()
    assert_almost_equal(exe.grad_dict["w"], [1.0, 2.0])
    assert "x" not in exe.grad_dict and exe.grad_arrays[0] is None
    assert_almost_equal(grads[0], [0.0, 0.0])


def test_grad_req_add_accumulates():
    x = sym.Variable("x")
    y = sym.sum(x * x)
    g = nd.zeros(3)
    exe = y.bind(dk.cpu(), {"x": nd.array([1.0, 2.0, 3.0])}, args_grad={"x": g}, grad_req="add")
    for _ in range(3):
        exe.forward(is_train=True)
        exe.backward()
    assert_almost_equal(g, 3 * 2 * np.array([1.0, 2.0, 3.0]))


def test_arguments_without_a_gradient_path_get_zeros():
    x = sym.Variable("x")
    unused = sym.Variable("unused")
    y = sym.Group([sym.sum(x * 2), sym.BlockGrad(unused) if hasattr(sym, "BlockGrad")
                   else sym.zeros_like(unused)])
    exe = y.simple_bind(x=(2,), unused=(3,))
    exe.grad_dict["unused"][:] = 5
    exe.forward(is_train=True)
    exe.backward()
    assert_almost_equal(exe.grad_dict["unused"], np.zeros(3))
    assert_almost_equal(exe.grad_dict["x"], [2.0, 2.0])


def test_executors_share_parameter_arrays():
    net = mlp()
    train = net.simple_bind(data=(8, 10))
    test = net.bind(dk.cpu(), dict(train.arg_dict, data=nd.ones((3, 10)),
                                   softmax_label=nd.zeros(3)), grad_req="null")
    train.arg_dict["fc1_weight"][:] = 0.5
    assert test.arg_dict["fc1_weight"] is train.arg_dict["fc1_weight"]
    assert (test.arg_dict["fc1_weight"].asnumpy() == 0.5).all()
    assert test.forward()[0].shape == (3, 4)


def test_reshape_shares_parameters_and_copy_params_from():
    net = mlp()
    exe = net.simple_bind(data=(8, 10))
    exe.copy_params_from({"fc1_weight": nd.ones((16, 10))})
    small = exe.reshape(data=(2, 10), softmax_label=(2,))
    assert small.arg_dict["fc1_weight"] is exe.arg_dict["fc1_weight"]
    assert small.grad_dict["fc2_weight"] is exe.grad_dict["fc2_weight"]
    assert small.arg_dict["data"].shape == (2, 10)
    assert small.forward()[0].shape == (2, 4)
    with pytest.raises(DeepkitError, match="'nope' is not an argument"):
        exe.copy_params_from({"nope": nd.ones(1)})
    exe.copy_params_from({"nope": nd.ones(1)}, allow_extra_params=True)


def test_forward_takes_new_inputs_by_name():
    x = sym.Variable("x")
    exe = (x * 2).simple_bind(x=(3,), grad_req="null")
    out = exe.forward(x=np.array([1.0, 2.0, 3.0]))
    assert_almost_equal(out[0], [2.0, 4.0, 6.0])
    with pytest.raises(ShapeError, match=r"'x' has shape \(4,\).*\(3,\)"):
        exe.forward(x=nd.ones(4))
    with pytest.raises(DeepkitError, match="'y' is not an argument"):
        exe.forward(y=nd.ones(3))


def test_missing_arguments_are_all_named():
    net = mlp()
    with pytest.raises(DeepkitError, match="missing args for: fc1_bias, fc2_weight, fc2_bias, "
                                           "softmax_label"):
        net.bind(dk.cpu(), {"data": nd.ones((2, 3)), "fc1_weight": nd.ones((16, 3))})


def test_wrong_shape_and_context_name_the_argument():
    net = mlp()
    args = {"data": nd.ones((2, 10)), "fc1_weight": nd.ones((16, 9)), "fc1_bias": nd.ones(16),
            "fc2_weight": nd.ones((4, 16)), "fc2_bias": nd.ones(4), "softmax_label": nd.ones(2)}
    with pytest.raises(ShapeError, match=r"FullyConnected 'fc1'.*weight.*\(16, 9\).*\(16, 10\)"):
        net.bind(dk.cpu(), args, grad_req="null")
    args["fc1_weight"] = nd.ones((16, 10), ctx=dk.Context("cpu", 1))
    with pytest.raises(ContextError, match="argument 'fc1_weight' is on cpu\\(1\\)"):
        net.bind(dk.cpu(), args, grad_req="null")


def test_unknown_shapes_at_simple_bind_are_listed():
    with pytest.raises(ShapeError, match="cannot infer shapes for: data, fc1_weight"):
        mlp().simple_bind()


def test_backward_needs_some_forward_first():
    exe = mlp().simple_bind(data=(2, 10))
    with pytest.raises(DeepkitError, match=r"needs a forward\(\) first"):
        exe.backward()


def test_backward_after_plain_forward_gives_the_training_gradients():
    """MXNet's tutorial loop: ``forward()`` (is_train defaults to False), then ``backward()``."""
    rng = np.random.default_rng(1)
    net = mlp()
    plain = net.simple_bind(data=(8, 10))
    train = net.simple_bind(data=(8, 10))
    for k, a in plain.arg_dict.items():
        value = rng.integers(0, 4, a.shape) if k == "softmax_label" \
            else rng.normal(size=a.shape) * 0.3
        a[:] = value
        train.arg_dict[k][:] = value
    plain.forward()
    plain.backward()
    train.forward(is_train=True)
    train.backward()
    for k in train.grad_dict:
        assert_almost_equal(plain.grad_dict[k], train.grad_dict[k], rtol=1e-6, atol=1e-7)
    assert np.abs(plain.grad_dict["fc1_weight"].asnumpy()).sum() > 0


def test_dropout_after_plain_forward_passes_the_gradient_through():
    net = sym.Dropout(sym.Variable("x"), p=0.5)
    exe = net.simple_bind(x=(4, 6))
    exe.arg_dict["x"][:] = 2.0
    out = exe.forward()[0]
    assert_almost_equal(out, np.full((4, 6), 2.0))
    head = np.arange(24.0).reshape(4, 6)
    exe.backward(nd.array(head))
    assert_almost_equal(exe.grad_dict["x"], head)


def test_batchnorm_after_plain_forward_uses_the_training_formula_with_running_stats():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 3)).astype(np.float32)
    gamma = np.array([1.5, 0.5, 2.0], np.float32)
    mean = np.array([0.1, -0.2, 0.3], np.float32)
    var = np.array([0.5, 2.0, 1.0], np.float32)
    head = rng.normal(size=(5, 3)).astype(np.float32)
    eps = 1e-3
    net = sym.BatchNorm(sym.Variable("x"), fix_gamma=False, eps=eps, name="bn")
    exe = net.simple_bind(x=(5, 3))
    exe.arg_dict["x"][:] = x
    exe.arg_dict["bn_gamma"][:] = gamma
    exe.aux_dict["bn_moving_mean"][:] = mean
    exe.aux_dict["bn_moving_var"][:] = var
    exe.forward()
    exe.backward(nd.array(head))
    x64, g64 = x.astype(np.float64), head.astype(np.float64)
    invstd = 1 / np.sqrt(var.astype(np.float64) + eps)
    hat = (x64 - mean) * invstd
    m = x.shape[0]
    dx = gamma * invstd * (g64 - g64.mean(0) - hat * (g64 * hat).sum(0) / m)
    assert_almost_equal(exe.grad_dict["x"], dx, rtol=1e-4, atol=1e-5)
    assert_almost_equal(exe.grad_dict["bn_gamma"], (g64 * hat).sum(0), rtol=1e-4, atol=1e-5)
    assert_almost_equal(exe.grad_dict["bn_beta"], g64.sum(0), rtol=1e-4, atol=1e-5)
    assert_almost_equal(exe.aux_dict["bn_moving_mean"], mean)
    assert_almost_equal(exe.aux_dict["bn_moving_var"], var)


def test_monitor_callback_sees_every_output_and_optionally_inputs():
    exe = mlp().simple_bind(data=(2, 10), grad_req="null")
    exe.arg_dict["fc1_weight"][:] = 1.0
    exe.arg_dict["data"][:] = 1.0
    seen = {}
    exe.set_monitor_callback(lambda name, arr: seen.setdefault(name, arr))
    exe.forward()
    nd.waitall()
    assert list(seen) == ["fc1_output", "relu1_output", "fc2_output", "softmax_output"]
    assert_almost_equal(seen["fc1_output"], np.full((2, 16), 10.0))
    seen.clear()
    exe.set_monitor_callback(lambda name, arr: seen.setdefault(name, arr), monitor_all=True)
    exe.forward()
    nd.waitall()
    assert {"fc1_data", "fc1_weight", "fc1_bias", "fc1_output"} <= set(seen)
    assert_almost_equal(seen["fc1_weight"], np.ones((16, 10)))
    exe.set_monitor_callback(None)
    seen.clear()
    exe.forward()
    nd.waitall()
    assert not seen
    with pytest.raises(TypeError, match="callable"):
        exe.set_monitor_callback(3)


def test_kernel_failure_names_the_node():
    x = sym.Variable("x")
    net = sym.take(sym.Variable("a"), x, mode="raise", name="lookup")
    exe = net.bind(dk.cpu(), {"a": nd.ones((3, 2)), "x": nd.array([0, 7])}, grad_req="null")
    exe.forward()
    with pytest.raises(dk.EngineError, match="take 'lookup' failed"):
        exe.outputs[0].asnumpy()


@pytest.mark.parametrize("builder", ["mlp", "broadcast", "fanout", "shared"])
def test_whole_graph_numeric_gradients(builder, ctx):
    rng = np.random.default_rng(1)
    if builder == "mlp":
        x = sym.Variable("x")
        net = sym.FullyConnected(sym.Activation(sym.FullyConnected(x, num_hidden=5, name="a"),
                                                act_type="tanh"), num_hidden=3, name="b")
        loc = {"x": rng.normal(size=(4, 6)), "a_weight": rng.normal(size=(5, 6)),
               "a_bias": rng.normal(size=5), "b_weight": rng.normal(size=(3, 5)),
               "b_bias": rng.normal(size=3)}
    elif builder == "broadcast":
        a, b, c = sym.Variable("a"), sym.Variable("b"), sym.Variable("c")
        net = sym.broadcast_mul(a, b) + sym.broadcast_div(a, c) - b
        loc = {"a": rng.normal(size=(3, 4)), "b": rng.normal(size=(1, 4)),
               "c": rng.uniform(1, 2, size=(3, 1))}
    elif builder == "fanout":
        x = sym.Variable("x")
        h = sym.tanh(x)
        net = h * h + sym.sin(h) * x
        loc = {"x": rng.normal(size=(3, 3))}
    else:
        x, w = sym.Variable("x"), sym.Variable("w")
        h = sym.FullyConnected(x, weight=w, num_hidden=4, no_bias=True, name="l1")
        net = sym.FullyConnected(sym.tanh(h), weight=w, num_hidden=4, no_bias=True, name="l2")
        loc = {"x": rng.normal(size=(2, 4)), "w": rng.normal(size=(4, 4))}
    check_numeric_gradient(net, loc, ctx=ctx, numeric_eps=1e-5)


def test_non_differentiable_op_in_the_middle_of_a_graph():
    x = sym.Variable("x")
    net = sym.argmax(x * 2, axis=1) + sym.sum(x, axis=1)
    exe = net.simple_bind(x=(2, 3))
    exe.arg_dict["x"][:] = np.array([[1.0, 3.0, 2.0], [0.0, -1.0, 5.0]])
    out = exe.forward(is_train=True)[0]
    assert_almost_equal(out, [1 + 6.0, 2 + 4.0])
    exe.backward()
    assert_almost_equal(exe.grad_dict["x"], np.ones((2, 3)))


def _backward_reqs(exe, op_name):
    steps, _ = exe._bwd_program
    return [req for _, _, _, _, req, _, node in steps if node.op.name == op_name]


def _gru_net():
    return sym.sum(sym.RNN(sym.Variable("data"), mode="gru", state_size=3, name="rnn"))


@pytest.mark.parametrize("data_req", ["null", "write"])
def test_a_gradient_nothing_reads_is_not_computed(data_req):
    """As MXNet's kNullOp: ``_backward_RNN``'s data gradient is skipped when the data
    needs none, and the other gradients do not change."""
    reqs = {"data": data_req, "rnn_parameters": "write", "rnn_state": "write"}
    exe = _gru_net().simple_bind(dk.cpu(), grad_req=reqs, data=(4, 2, 3))
    rng = np.random.default_rng(0)
    for arr in exe.arg_dict.values():
        arr[:] = rng.uniform(-1, 1, size=arr.shape)
    exe.forward(is_train=True)
    exe.backward()
    (req,) = _backward_reqs(exe, "_backward_RNN")
    assert req == (data_req, "write", "write")
    ref = _gru_net().simple_bind(dk.cpu(), grad_req="write", data=(4, 2, 3))
    for name, arr in exe.arg_dict.items():
        ref.arg_dict[name][:] = arr
    ref.forward(is_train=True)
    ref.backward()
    for name in ("rnn_parameters", "rnn_state"):
        assert_almost_equal(exe.grad_dict[name], ref.grad_dict[name], rtol=1e-12, atol=0)
