"""mx.mod.Module's step-by-step API over several contexts (MXNet's DataParallelExecutorGroup).

A batch is split over the contexts (MXNet's ``_split_input_slice``), each
context runs its rows, ``update`` adds the gradients up (kvstore 'local')
before one optimizer step: a hand-written loop on two or three contexts
trains exactly as on one.
"""
import numpy as np
import pytest

from deepkit.compat import mxnet as mx


def _data(n=40, d=5, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x @ rng.normal(size=(d, classes))).argmax(1).astype(np.float32)
    return x, y


def _mlp():
    net = mx.sym.Variable("data")
    net = mx.sym.FullyConnected(net, name="fc1", num_hidden=8)
    net = mx.sym.Activation(net, name="tanh1", act_type="tanh")
    net = mx.sym.FullyConnected(net, name="fc2", num_hidden=3)
    return mx.sym.SoftmaxOutput(net, name="softmax")


def _module(contexts, batch_size, symbol=None, label=True, **bind):
    x, y = _data()
    it = mx.io.NDArrayIter(x, y if label else None, batch_size=batch_size)
    mod = mx.mod.Module(_mlp() if symbol is None else symbol, context=contexts,
                        label_names=("softmax_label",) if label else None)
    mod.bind(it.provide_data, it.provide_label if label else None, **bind)
    mx.random.seed(7)
    mod.init_params(mx.init.Xavier())
    return mod, it


def _train(contexts, epochs=3, batch_size=10):
    mod, it = _module(contexts, batch_size)
    mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.5,
                                                          "momentum": 0.9, "wd": 0.01})
    metric = mx.metric.Accuracy()
    for _ in range(epochs):
        it.reset()
        for batch in it:
            mod.forward(batch, is_train=True)
            mod.backward()
            mod.update()
            mod.update_metric(metric, batch.label)
    return mod, metric.get()[1]


@pytest.mark.parametrize("n", [2, 3])
def test_hand_written_loop_on_several_contexts_equals_one_context(n):
    one, acc_one = _train([mx.cpu(0)])
    many, acc_many = _train([mx.cpu(i) for i in range(n)])
    arg_one, arg_many = one.get_params()[0], many.get_params()[0]
    assert sorted(arg_one) == sorted(arg_many)
    for name in arg_one:
        assert arg_many[name].context == mx.cpu(0)
        np.testing.assert_allclose(arg_many[name].asnumpy(), arg_one[name].asnumpy(),
                                   rtol=1e-6, atol=1e-6, err_msg=name)
    # 12 updates moved the weights far from their start: the comparison is not vacuous
    start, _ = _module([mx.cpu(0)], 10)
    moved = start.get_params()[0]["fc1_weight"].asnumpy() - arg_one["fc1_weight"].asnumpy()
    assert np.abs(moved).max() > 0.1
    assert acc_many == acc_one


def test_get_outputs_merges_the_contexts_rows_or_lists_them_per_context():
    one, _ = _module([mx.cpu(0)], 10)
    three, it = _module([mx.cpu(0), mx.cpu(1), mx.cpu(2)], 10)
    batch = next(iter(it))
    one.forward(batch, is_train=False)
    three.forward(batch, is_train=False)
    merged = three.get_outputs()
    assert len(merged) == 1 and merged[0].shape == (10, 3) and merged[0].context == mx.cpu(0)
    np.testing.assert_allclose(merged[0].asnumpy(), one.get_outputs()[0].asnumpy(), rtol=1e-6,
                               atol=1e-7)
    per_context = three.get_outputs(merge_multi_context=False)
    # MXNet's split of 10 rows over 3 contexts: round(10/3) rows each, the rest to the last
    assert [o.shape for o in per_context[0]] == [(3, 3), (3, 3), (4, 3)]
    assert [o.context for o in per_context[0]] == [mx.cpu(0), mx.cpu(1), mx.cpu(2)]
    np.testing.assert_allclose(np.concatenate([o.asnumpy() for o in per_context[0]]),
                               merged[0].asnumpy())
    single = one.get_outputs(merge_multi_context=False)
    assert len(single) == 1 and len(single[0]) == 1 and single[0][0].shape == (10, 3)


def test_get_input_grads_over_contexts_equals_one_context():
    grads = []
    for contexts in ([mx.cpu(0)], [mx.cpu(0), mx.cpu(1)]):
        mod, it = _module(contexts, 8, inputs_need_grad=True)
        mod.forward_backward(next(iter(it)))
        grads.append((mod.get_input_grads(), mod.get_input_grads(merge_multi_context=False)))
    (one, one_split), (two, two_split) = grads
    assert one[0].shape == two[0].shape == (8, 5)
    np.testing.assert_allclose(two[0].asnumpy(), one[0].asnumpy(), rtol=1e-5, atol=1e-7)
    assert np.abs(one[0].asnumpy()).max() > 0
    assert [g.shape for g in two_split[0]] == [(4, 5), (4, 5)]
    assert len(one_split[0]) == 1


def test_backward_with_out_grads_gives_each_context_its_rows():
    x = mx.sym.Variable("data")
    out = mx.sym.FullyConnected(x, num_hidden=2, name="fc")
    head = np.random.default_rng(1).normal(size=(10, 2)).astype(np.float32)
    params = []
    for contexts in ([mx.cpu(0)], [mx.cpu(0), mx.cpu(1)]):
        mod, it = _module(contexts, 10, symbol=out, label=False)
        mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.1,
                                                              "rescale_grad": 1.0})
        mod.forward(next(iter(it)), is_train=True)
        mod.backward(mx.nd.array(head))
        mod.update()
        params.append(mod.get_params()[0])
    x_batch = _data()[0][:10]
    for name in ("fc_weight", "fc_bias"):
        np.testing.assert_allclose(params[1][name].asnumpy(), params[0][name].asnumpy(),
                                   rtol=1e-6, atol=1e-6)
    start, _ = _module([mx.cpu(0)], 10, symbol=out, label=False)
    w0 = start.get_params()[0]["fc_weight"].asnumpy()
    # dL/dW = head^T x: the whole batch's out_grads were used, each row once
    np.testing.assert_allclose(params[1]["fc_weight"].asnumpy(), w0 - 0.1 * head.T @ x_batch,
                               rtol=1e-5, atol=1e-6)


def test_work_load_list_sizes_the_parts_and_bad_splits_are_refused():
    x, y = _data(n=8)
    it = mx.io.NDArrayIter(x, y, batch_size=8)
    mod = mx.mod.Module(_mlp(), context=[mx.cpu(0), mx.cpu(1)], work_load_list=[1, 3])
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params()
    mod.forward(next(iter(it)), is_train=False)
    assert [o.shape[0] for o in mod.get_outputs(merge_multi_context=False)[0]] == [2, 6]
    with pytest.raises(ValueError, match="work_load_list has 1 entries but there are 2"):
        mx.mod.Module(_mlp(), context=[mx.cpu(0), mx.cpu(1)], work_load_list=[1])
    tiny = mx.io.NDArrayIter(x[:2], y[:2], batch_size=2)
    three = mx.mod.Module(_mlp(), context=[mx.cpu(0), mx.cpu(1), mx.cpu(2)])
    three.bind(tiny.provide_data, tiny.provide_label)
    three.init_params()
    with pytest.raises(ValueError, match="a batch of 2 rows cannot be split over 3 contexts"):
        three.forward(next(iter(tiny)))


def test_moving_mean_after_a_training_pass_is_averaged_over_the_contexts():
    """BatchNorm's statistics are per context (as MXNet's); the moving mean of equal parts
    averages to one context's, since the mean of the parts' means is the batch mean."""
    net = mx.sym.Variable("data")
    net = mx.sym.FullyConnected(net, num_hidden=6, name="fc1")
    net = mx.sym.BatchNorm(net, name="bn", fix_gamma=False, momentum=0.5)
    net = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(net, num_hidden=3, name="fc2"),
                               name="softmax")
    aux = []
    for contexts in ([mx.cpu(0)], [mx.cpu(0), mx.cpu(1)]):
        mod, it = _module(contexts, 8, symbol=net)
        batch = next(iter(it))
        mod.forward(batch, is_train=True)
        aux.append(mod.get_params()[1])
    x = _data()[0][:8]
    arg = _module([mx.cpu(0)], 8, symbol=net)[0].get_params()[0]
    h = x @ arg["fc1_weight"].asnumpy().T + arg["fc1_bias"].asnumpy()
    np.testing.assert_allclose(aux[0]["bn_moving_mean"].asnumpy(), 0.5 * h.mean(0), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(aux[1]["bn_moving_mean"].asnumpy(),
                               aux[0]["bn_moving_mean"].asnumpy(), rtol=1e-5, atol=1e-6)
    # the variance is each context's own batch variance, averaged: not the whole batch's
    halves = 0.5 * 0.5 * (h[:4].var(0) + h[4:].var(0)) + 0.5
    np.testing.assert_allclose(aux[1]["bn_moving_var"].asnumpy(), halves, rtol=1e-4, atol=1e-5)
