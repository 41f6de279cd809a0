"""Inference rewrites: max pooling moved before a monotone activation, same outputs."""
import numpy as np
import pytest

from deepkit_engine import cpu, nd
from deepkit_engine import symbol as sym
from deepkit_engine.graph.rewrite import pool_before_activation, without_kept_states


def _net(act_type, pool):
    x = sym.Convolution(sym.Variable("data"), kernel=(3, 3), num_filter=4, name="conv")
    x = sym.Activation(x, act_type=act_type, name="act")
    x = sym.Pooling(x, name="pool", **pool)
    return sym.FullyConnected(x, num_hidden=3, name="fc")


def _bind(net, grads, rng):
    shapes = {"data": (2, 3, 9, 9)}
    exe = net.simple_bind(cpu(), grad_req="write" if grads else "null", **shapes)
    for name, arr in exe.arg_dict.items():
        arr[:] = rng.normal(0, 1.5, arr.shape)
    return exe


def _forward_with_monitor(exe):
    seen = {}
    exe.set_monitor_callback(lambda name, value: seen.setdefault(name, value.shape))
    out = exe.forward(is_train=False)[0].asnumpy()
    return out, seen


POOLS = [dict(pool_type="max", kernel=(2, 2), stride=(2, 2)),
         dict(pool_type="max", kernel=(3, 3), stride=(2, 2), pad=(1, 1)),
         dict(pool_type="max", kernel=(1, 1), global_pool=True)]


@pytest.mark.parametrize("pool", POOLS, ids=["2x2", "3x3 pad 1", "global"])
@pytest.mark.parametrize("act_type", ["relu", "tanh", "sigmoid", "softrelu", "softsign"])
def test_inference_pools_first_and_gives_the_same_outputs(act_type, pool):
    net = _net(act_type, pool)
    trained = _bind(net, True, np.random.default_rng(0))
    inference = _bind(net, False, np.random.default_rng(0))
    want, seen_plain = _forward_with_monitor(trained)
    got, seen = _forward_with_monitor(inference)
    np.testing.assert_array_equal(got, want)  # a non-decreasing f commutes with max exactly
    assert seen_plain["act_output"] == seen_plain["conv_output"]
    assert seen["act_output"] == seen["pool_output"] != seen["conv_output"]  # pooled first


def test_nothing_moves_for_average_pooling_a_second_reader_or_windows_of_padding_only():
    def heads_after(net):
        return pool_before_activation(list(net._outputs))
    x = sym.Activation(sym.Variable("x"), act_type="relu", name="act")
    avg = sym.Pooling(x, pool_type="avg", kernel=(2, 2), name="pool")
    assert heads_after(avg) == list(avg._outputs)
    both = sym.Group([sym.Pooling(x, pool_type="max", kernel=(2, 2), name="pool"), x])
    assert heads_after(both) == list(both._outputs)
    padded = sym.Pooling(x, pool_type="max", kernel=(2, 2), pad=(2, 2), name="pool")
    assert heads_after(padded) == list(padded._outputs)
    plain = sym.Pooling(x, pool_type="max", kernel=(2, 2), name="pool")
    (node, _), = heads_after(plain)
    assert node.op.name == "Activation" and node.inputs[0][0].op.name == "Pooling"
    assert plain._outputs[0][0].op.name == "Pooling"  # the symbol itself is untouched


def test_imperative_results_match_the_rewritten_executor():
    rng = np.random.default_rng(3)
    data = rng.normal(size=(1, 2, 6, 6)).astype(np.float32)
    net = sym.Pooling(sym.Activation(sym.Variable("data"), act_type="tanh"), pool_type="max",
                      kernel=(2, 2), stride=(2, 2))
    exe = net.simple_bind(cpu(), grad_req="null", data=data.shape)
    got = exe.forward(data=nd.array(data))[0].asnumpy()
    want = nd.Pooling(nd.tanh(nd.array(data)), pool_type="max", kernel=(2, 2),
                      stride=(2, 2)).asnumpy()
    np.testing.assert_array_equal(got, want)


def _lstm_net():
    return sym.RNN(sym.Variable("data"), mode="lstm", state_size=8, num_layers=2, name="lstm")


def test_inference_executors_plan_no_memory_for_lstm_kept_states():
    """The gates an LSTM keeps for backward (T*N*5H values a layer) are dropped where no
    gradient is computed: the inference plan is smaller and the outputs are the same."""
    shapes = {"data": (12, 16, 4)}
    train = _lstm_net().simple_bind(cpu(), **shapes)
    infer = _lstm_net().simple_bind(cpu(), grad_req="null", **shapes)
    rng = np.random.default_rng(0)
    for name, arr in train.arg_dict.items():
        arr[:] = rng.uniform(-1, 1, arr.shape)
        infer.arg_dict[name][:] = arr
    kept_bytes = (2 * 12 * 16 * 5 * 8 + 1) * 4
    assert (train.memory_report().planned_bytes - infer.memory_report().planned_bytes
            >= kept_bytes)
    np.testing.assert_allclose(infer.forward()[0].asnumpy(),
                               train.forward(is_train=False)[0].asnumpy(), rtol=1e-6, atol=1e-7)
    heads = without_kept_states(list(_lstm_net()._outputs))
    node = heads[0][0]
    assert node.attrs["keep_states"] is False and node.num_outputs() == 1
    assert "keep_states" not in _lstm_net().tojson()  # a default: never written


def test_nothing_to_drop_leaves_the_heads_alone():
    net = sym.RNN(sym.Variable("data"), mode="rnn_tanh", state_size=3, name="rnn")
    heads = list(net._outputs)
    assert without_kept_states(heads) is heads
