"""mx.rnn cells: numpy step references, fused == unfused, pack/unpack, modifiers."""
import logging

import numpy as np
import pytest

import deepkit_engine as dk
from deepkit.compat import mx_metric, mx_rnn
from deepkit.compat import mxnet as mx
from deepkit.compat.mx_bucketing import BucketingModule
from deepkit_engine import symbol as sym

from ..layers.recurrent_reference import run_layer

N, T, C, H = 3, 4, 5, 6


def _run(symbol, values, is_train=False):
    """Forward ``symbol`` with ``values`` (name -> array); missing arrays are inferred zeros."""
    shapes = {k: v.shape for k, v in values.items()}
    exe = symbol.simple_bind(dk.cpu(), grad_req="null", **shapes)
    for k, v in values.items():
        exe.arg_dict[k][:] = v
    return [o.asnumpy() for o in exe.forward(is_train=is_train)]


def _params(symbol, rng, data_shape):
    arg_shapes, _, _ = symbol.infer_shape(data=data_shape)
    return {name: rng.uniform(-0.5, 0.5, size=shape).astype(np.float32)
            for name, shape in zip(symbol.list_arguments(), arg_shapes) if name != "data"}


@pytest.mark.parametrize("kind, make", [
    ("SimpleRNN", lambda: mx_rnn.RNNCell(H, prefix="rnn_")),
    ("LSTM", lambda: mx_rnn.LSTMCell(H, prefix="lstm_")),
    ("GRU", lambda: mx_rnn.GRUCell(H, prefix="gru_")),
])
def test_cell_unroll_matches_numpy(kind, make, rng):
    cell = make()
    outputs, states = cell.unroll(T, sym.Variable("data"), layout="NTC", merge_outputs=True)
    net = sym.Group([outputs] + list(states))
    params = _params(net, rng, (N, T, C))
    p = cell._prefix
    assert sorted(params) == sorted(f"{p}{g}_{k}" for g in ("i2h", "h2h")
                                    for k in ("weight", "bias"))
    x = rng.normal(size=(N, T, C)).astype(np.float32)
    got = _run(net, dict(params, data=x))
    weights = [params[f"{p}i2h_weight"], params[f"{p}h2h_weight"]]
    if kind == "GRU":
        weights += [params[f"{p}i2h_bias"], params[f"{p}h2h_bias"]]
    else:
        weights.append(params[f"{p}i2h_bias"] + params[f"{p}h2h_bias"])
    seq, _, ref_states = run_layer(kind, weights, x)
    np.testing.assert_allclose(got[0], seq, rtol=1e-5, atol=1e-5)
    for g, r in zip(got[1:], ref_states):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_fused_cell_equals_its_unfused_stack(mode, bidirectional, rng):
    fused = mx_rnn.FusedRNNCell(H, num_layers=2, mode=mode, bidirectional=bidirectional,
                                prefix="f_")
    out_fused, _ = fused.unroll(T, sym.Variable("data"), layout="NTC", merge_outputs=True)
    params = _params(out_fused, rng, (N, T, C))
    unpacked = fused.unpack_weights(params)
    assert "f_parameters" not in unpacked and "f_l1_h2h" + fused._gate_names[0] + \
        "_bias" in unpacked
    np.testing.assert_array_equal(fused.pack_weights(unpacked)["f_parameters"],
                                  params["f_parameters"])
    stack = fused.unfuse()
    out_plain, _ = stack.unroll(T, sym.Variable("data"), layout="NTC", merge_outputs=True)
    plain_args = stack.pack_weights(unpacked)
    x = rng.normal(size=(N, T, C)).astype(np.float32)
    want = _run(out_fused, dict(params, data=x))[0]
    got = _run(out_plain, dict({k: v for k, v in plain_args.items()
                                if k in out_plain.list_arguments()}, data=x))[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_sequential_residual_and_dropout_cells(rng):
    stack = mx_rnn.SequentialRNNCell()
    stack.add(mx_rnn.ResidualCell(mx_rnn.GRUCell(C, prefix="g0_")))
    stack.add(mx_rnn.DropoutCell(0.5))
    stack.add(mx_rnn.LSTMCell(H, prefix="l1_"))
    assert len(stack.state_info) == 3
    outputs, states = stack.unroll(T, sym.Variable("data"), merge_outputs=True)
    params = _params(outputs, rng, (N, T, C))
    x = rng.normal(size=(N, T, C)).astype(np.float32)
    got = _run(outputs, dict(params, data=x))[0]
    seq0, _, _ = run_layer("GRU", [params["g0_i2h_weight"], params["g0_h2h_weight"],
                                   params["g0_i2h_bias"], params["g0_h2h_bias"]], x)
    seq1, _, _ = run_layer("LSTM", [params["l1_i2h_weight"], params["l1_h2h_weight"],
                                    params["l1_i2h_bias"] + params["l1_h2h_bias"]], seq0 + x)
    np.testing.assert_allclose(got, seq1, rtol=1e-5, atol=1e-5)


def test_zoneout_is_identity_at_inference_and_mixes_in_training(rng):
    base = mx_rnn.LSTMCell(H, prefix="z_")
    cell = mx_rnn.ZoneoutCell(base, zoneout_outputs=0.5, zoneout_states=0.5)
    outputs, _ = cell.unroll(T, sym.Variable("data"), merge_outputs=True)
    plain, _ = mx_rnn.LSTMCell(H, prefix="z_").unroll(T, sym.Variable("data"),
                                                      merge_outputs=True)
    params = _params(outputs, rng, (N, T, C))
    x = rng.normal(size=(N, T, C)).astype(np.float32)
    inference = _run(outputs, dict(params, data=x))[0]
    np.testing.assert_allclose(inference, _run(plain, dict(params, data=x))[0], rtol=1e-6)
    training = _run(outputs, dict(params, data=x), is_train=True)[0]
    assert not np.allclose(training, inference)


def test_bidirectional_cell_concatenates_time_ordered_outputs(rng):
    cell = mx_rnn.BidirectionalCell(mx_rnn.GRUCell(H, prefix="l_"), mx_rnn.GRUCell(H, prefix="r_"))
    outputs, states = cell.unroll(T, sym.Variable("data"), merge_outputs=True)
    assert len(states) == 2
    params = _params(outputs, rng, (N, T, C))
    x = rng.normal(size=(N, T, C)).astype(np.float32)
    got = _run(outputs, dict(params, data=x))[0]

    def ref(p, backwards):
        seq, _, _ = run_layer("GRU", [params[f"{p}i2h_weight"], params[f"{p}h2h_weight"],
                                      params[f"{p}i2h_bias"], params[f"{p}h2h_bias"]], x,
                              go_backwards=backwards)
        return seq[:, ::-1] if backwards else seq
    np.testing.assert_allclose(got, np.concatenate([ref("l_", False), ref("r_", True)], -1),
                               rtol=1e-5, atol=1e-5)


def test_begin_state_and_errors():
    cell = mx_rnn.LSTMCell(H, prefix="b_")
    states = cell.begin_state()
    assert [s.list_outputs()[0] for s in states] == ["b_begin_state_0", "b_begin_state_1"]
    with pytest.raises(ValueError, match="mode"):
        mx_rnn.FusedRNNCell(H, mode="tanh")
    with pytest.raises(NotImplementedError, match="unroll"):
        mx_rnn.FusedRNNCell(H)(sym.Variable("x"), [])


def test_bucket_sentence_iter_groups_pads_and_shifts_labels():
    sentences = [[1, 2], [3, 4], [5, 6, 7], [8, 9, 1], [2, 3, 4, 5, 6], [1] * 9]
    with pytest.warns(UserWarning, match="discarded 1 sentences"):
        it = mx_rnn.BucketSentenceIter(sentences, batch_size=2, buckets=[2, 3, 5],
                                       invalid_label=0)
    assert it.default_bucket_key == 5
    assert it.provide_data[0].shape == (2, 5)
    batches = list(it)
    assert sorted(b.bucket_key for b in batches) == [2, 3]  # the 5-bucket holds one sentence
    for batch in batches:
        data, label = batch.data[0].asnumpy(), batch.label[0].asnumpy()
        assert data.shape == (2, batch.bucket_key)
        np.testing.assert_array_equal(label[:, :-1], data[:, 1:])
        assert np.all(label[:, -1] == 0)
    it.reset()
    assert len(list(it)) == 2
    tn = mx_rnn.BucketSentenceIter(sentences[:4], batch_size=2, buckets=[3], layout="TN")
    assert next(iter(tn)).data[0].shape == (3, 2)


def test_bucketing_module_trains_shared_parameters_over_buckets():
    vocab, hidden = 8, 16
    rng = np.random.default_rng(0)
    sentences = []
    for length in (4, 6) * 48:
        start = int(rng.integers(1, vocab))
        sentences.append([(start + k - 1) % (vocab - 1) + 1 for k in range(length)])
    it = mx_rnn.BucketSentenceIter(sentences, batch_size=8, buckets=[4, 6], invalid_label=0)

    def sym_gen(length):
        data, label = sym.Variable("data"), sym.Variable("softmax_label")
        embed = sym.Embedding(data, input_dim=vocab, output_dim=8, name="embed")
        cell = mx_rnn.LSTMCell(hidden, prefix="lstm_")
        outputs, _ = cell.unroll(length, embed, merge_outputs=True)
        pred = sym.FullyConnected(outputs, num_hidden=vocab, flatten=False, name="pred")
        net = sym.SoftmaxOutput(pred, label, preserve_shape=True, name="softmax")
        return net, ("data",), ("softmax_label",)

    mod = BucketingModule(sym_gen, default_bucket_key=it.default_bucket_key)
    first = mod.fit(it, eval_metric=mx_metric.Accuracy(axis=2), optimizer="adam",
                    optimizer_params={"learning_rate": 0.02}, num_epoch=1)
    last = mod.fit(it, eval_metric=mx_metric.Accuracy(axis=2), num_epoch=8, begin_epoch=1)
    assert sorted(mod._buckets) == [4, 6]
    weights = [m.get_params()[0]["lstm_i2h_weight"].asnumpy() for m in mod._buckets.values()]
    np.testing.assert_array_equal(weights[0], weights[1])
    assert dict(last)["accuracy"] > max(0.6, dict(first)["accuracy"])

    # MXNet's callbacks and validation lines, from the one training loop
    seen, epochs, lines = [], [], []

    class Lines(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())
    logger = logging.getLogger("bucketing-test")
    logger.addHandler(Lines())
    logger.setLevel(logging.INFO)
    mod.logger = logger
    mod.fit(it, eval_data=it, eval_metric=mx_metric.Accuracy(axis=2), num_epoch=10,
            begin_epoch=8, batch_end_callback=lambda p: seen.append((p.epoch, p.nbatch)),
            epoch_end_callback=lambda e, s, arg, aux: epochs.append((e, sorted(arg)[:1])))
    it.reset()
    batches = len(list(it))
    assert seen == [(e, b) for e in (8, 9) for b in range(1, batches + 1)]
    assert epochs == [(8, ["embed_weight"]), (9, ["embed_weight"])]
    assert any(line.startswith("Epoch[9] Validation-accuracy=") for line in lines)
    assert any(line.startswith("Epoch[8] Train-accuracy=") for line in lines)


def test_lstm_cell_forget_bias_initializes_the_forget_gate_as_mxnet():
    cell = mx.rnn.LSTMCell(8, prefix="l_", forget_bias=2.5)
    out, _ = cell.unroll(3, mx.sym.Variable("data"), merge_outputs=True)
    net = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(mx.sym.reshape(out, shape=(-1, 8)),
                                                     num_hidden=2), name="softmax")
    mod = mx.mod.Module(net, data_names=["data"], label_names=["softmax_label"])
    mod.bind(data_shapes=[("data", (4, 3, 5))], label_shapes=[("softmax_label", (12,))])
    mod.init_params(mx.init.Xavier())
    bias = mod.get_params()[0]["l_i2h_bias"].asnumpy()
    expected = np.zeros(32, np.float32)
    expected[8:16] = 2.5  # gates i, f, c, o: the forget gate's quarter
    np.testing.assert_array_equal(bias, expected)
    with pytest.raises(ValueError, match="4 \\* num_hidden"):
        desc = mx.init.InitDesc("x_bias", {"__init__": mx.init.LSTMBias(1.0).dumps()})
        mx.init.Xavier().generate(desc, (6,))
