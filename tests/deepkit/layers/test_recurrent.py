"""Recurrent layers against the numpy step-by-step reference; fused and unrolled agree."""
import json

import numpy as np
import pytest

import deepkit
import deepkit_engine
from deepkit import layers as L
from deepkit_engine import symbol as sym
from deepkit_engine import testing

from .recurrent_reference import run_layer

N, T, F, U = 3, 5, 4, 6
KINDS = {"SimpleRNN": L.SimpleRNN, "LSTM": L.LSTM, "GRU": L.GRU}


def _random_weights(layer, rng):
    weights = [rng.uniform(-0.5, 0.5, size=w.shape).astype(np.float32)
               for w in layer.get_weights()]
    layer.set_weights(weights)
    return weights


def _build(layer, shape=(T, F)):
    inp = deepkit.Input(shape=shape)
    out = layer(inp)
    return deepkit.Model(inp, out)


CASES = [
    ("SimpleRNN", {}), ("SimpleRNN", {"activation": "relu"}), ("LSTM", {}), ("GRU", {}),
    ("GRU", {"reset_after": False}), ("LSTM", {"go_backwards": True}),
    ("GRU", {"go_backwards": True, "use_bias": False}),
    ("LSTM", {"activation": "relu", "recurrent_activation": "hard_sigmoid"}),
    ("SimpleRNN", {"use_bias": False, "go_backwards": True}),
]


@pytest.mark.parametrize("kind, options", CASES)
@pytest.mark.parametrize("unroll", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_layer_matches_numpy_reference(kind, options, unroll, return_sequences, rng):
    layer = KINDS[kind](U, return_sequences=return_sequences, return_state=True, unroll=unroll,
                        **options)
    model = _build(layer)
    model.initialize_weights()
    weights = _random_weights(layer, rng)
    x = rng.normal(size=(N, T, F)).astype(np.float32)
    outs = model.predict(x)
    cell_kwargs = {k: options[k] for k in ("activation", "recurrent_activation", "reset_after")
                   if k in options}
    seq, last, states = run_layer(kind, weights, x, go_backwards=options.get("go_backwards",
                                                                              False),
                                  **cell_kwargs)
    expected = [seq if return_sequences else last] + states
    assert len(outs) == len(expected)
    for got, want in zip(outs, expected):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


def test_fused_op_runs_only_where_the_configuration_allows():
    assert L.LSTM(4).uses_fused_op()
    assert L.GRU(4).uses_fused_op()
    assert L.SimpleRNN(4, activation="relu").uses_fused_op()
    assert not L.GRU(4, reset_after=False).uses_fused_op()
    assert not L.LSTM(4, recurrent_dropout=0.2).uses_fused_op()
    assert not L.LSTM(4, unroll=True).uses_fused_op()
    assert not L.LSTM(4, recurrent_activation="hard_sigmoid").uses_fused_op()
    assert L.LSTM(4).uses_fused_op(masked=True)  # the mask becomes the op's step mask


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_fused_layer_starts_from_zero_states_inferred_by_the_op(kind):
    """No ops derive the zero initial states from the input: one ``_zeros`` per state whose
    batch size and dtype the RNN op infers (float64 when bound so)."""
    inp = deepkit.Input(shape=(5, 3), name="x")
    out = deepkit.Model(inp, KINDS[kind](4, name="rnn")(inp)).output_symbols()[0]
    ops = [node["op"] for node in json.loads(out.tojson())["nodes"]]
    assert ops.count("_zeros") == (2 if kind == "LSTM" else 1)
    assert not {"broadcast_axis", "slice_axis", "sum"} & set(ops)
    exe = out.simple_bind(deepkit_engine.cpu(), x=(7, 5, 3),
                          type_dict=dict.fromkeys(out.list_arguments(), np.float64))
    exe.forward()
    assert exe.outputs[0].shape == (7, 4) and exe.outputs[0].dtype == np.float64


def test_time_major_layout(rng):
    layer = L.GRU(U, return_sequences=True, time_major=True)
    model = _build(layer, shape=(N, F))  # (timesteps=?, ...): Input's first axis is time here
    model.initialize_weights()
    weights = _random_weights(layer, rng)
    x = rng.normal(size=(T, N, F)).astype(np.float32)  # the model's "batch" axis is time
    got = model.predict(x, batch_size=T)
    seq, _, _ = run_layer("GRU", weights, x.transpose(1, 0, 2))
    np.testing.assert_allclose(got, seq.transpose(1, 0, 2), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
def test_fused_and_unrolled_gradients_agree_and_match_finite_differences(kind, rng):
    symbols = {}
    for unroll in (False, True):
        inp = deepkit.Input(shape=(4, 2), name="x")
        layer = KINDS[kind](3, return_sequences=True, unroll=unroll, name=f"rnn_{unroll}")
        symbols[unroll] = deepkit.Model(inp, layer(inp)).output_symbols()[0]
    locations = {}
    for unroll, symbol in symbols.items():
        args = symbol.list_arguments()
        shapes = dict(zip(args, symbol.infer_shape(x=(2, 4, 2))[0]))
        local = np.random.default_rng(7)
        locations[unroll] = {name: local.uniform(-0.6, 0.6, size=shapes[name])
                             for name in sorted(args)}
        testing.check_numeric_gradient(symbol, locations[unroll], rtol=1e-4, atol=1e-6)
    grads = {}
    for unroll, symbol in symbols.items():
        exe = symbol.simple_bind(testing.default_context(), grad_req="write",
                                 type_dict={n: np.float64 for n in locations[unroll]},
                                 x=(2, 4, 2))
        for name, value in locations[unroll].items():
            exe.arg_dict[name][:] = value
        exe.forward(is_train=True)
        exe.backward(out_grads=[deepkit_engine.nd.ones((2, 4, 3), dtype=np.float64)])
        grads[unroll] = {name.split("_", 2)[-1]: g.asnumpy() for name, g in exe.grad_dict.items()}
    for name, g in grads[False].items():
        np.testing.assert_allclose(g, grads[True][name], rtol=1e-6, atol=1e-8)


def test_masked_steps_keep_the_state_and_output_zeros(rng):
    tokens = np.array([[3, 1, 4, 0, 0], [2, 0, 0, 0, 0], [1, 5, 9, 2, 6]], np.float32)
    mask = (tokens != 0).astype(np.float64)
    inp = deepkit.Input(shape=(T,))
    emb = L.Embedding(10, F, mask_zero=True)
    lstm = L.LSTM(U, return_sequences=True, return_state=True)
    model = deepkit.Model(inp, lstm(emb(inp)))
    model.initialize_weights()
    weights = _random_weights(lstm, rng)
    table = emb.get_weights()[0]
    seq, h, c = model.predict(tokens)
    ref_seq, ref_last, ref_states = run_layer("LSTM", weights, table[tokens.astype(int)],
                                              mask=mask)
    np.testing.assert_allclose(seq, ref_seq, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(h, ref_states[0], rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(c, ref_states[1], rtol=2e-5, atol=2e-5)
    assert np.all(seq[1, 1:] == 0)


def test_masking_layer_skips_padded_steps(rng):
    x = rng.normal(size=(N, T, F)).astype(np.float32)
    x[0, 3:] = 0.0
    x[2, 1] = 0.0  # a hole in the middle is skipped too
    inp = deepkit.Input(shape=(T, F))
    gru = L.GRU(U)
    model = deepkit.Model(inp, gru(L.Masking(0.0)(inp)))
    model.initialize_weights()
    weights = _random_weights(gru, rng)
    mask = np.abs(x).max(axis=2) > 0
    _, last, _ = run_layer("GRU", weights, x, mask=mask)
    np.testing.assert_allclose(model.predict(x), last, rtol=2e-5, atol=2e-5)


def test_user_cell_in_rnn(rng):
    class MinimalRNNCell(L.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.state_size = units

        def build(self, input_shape):
            self.kernel = self.add_weight("kernel", (self.units, input_shape[-1]))
            self.recurrent = self.add_weight("recurrent", (self.units, self.units))

        def call(self, inputs, states):
            h = sym.FullyConnected(inputs, self.kernel.var, num_hidden=self.units, no_bias=True)
            h = h + sym.FullyConnected(states[0], self.recurrent.var, num_hidden=self.units,
                                       no_bias=True)
            return h, [h]

    layer = L.RNN(MinimalRNNCell(U), return_sequences=True)
    model = _build(layer)
    model.initialize_weights()
    k, r = _random_weights(layer, rng)
    x = rng.normal(size=(N, T, F)).astype(np.float32)
    h = np.zeros((N, U))
    expected = []
    for t in range(T):
        h = x[:, t] @ k.T + h @ r.T
        expected.append(h)
    np.testing.assert_allclose(model.predict(x), np.stack(expected, 1), rtol=2e-5, atol=2e-5)


def test_stacked_cells_equal_two_layers(rng):
    stacked = L.RNN([L.LSTMCell(U), L.GRUCell(4)])
    model = _build(stacked)
    model.initialize_weights()
    weights = _random_weights(stacked, rng)
    x = rng.normal(size=(N, T, F)).astype(np.float32)
    seq1, _, _ = run_layer("LSTM", weights[:3], x)
    _, last, _ = run_layer("GRU", weights[3:], seq1)
    np.testing.assert_allclose(model.predict(x), last, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
def test_bidirectional_merges_forward_and_time_ordered_backward(merge_mode, rng):
    layer = L.Bidirectional(L.LSTM(U, return_sequences=True), merge_mode=merge_mode)
    model = _build(layer)
    model.initialize_weights()
    weights = _random_weights(layer, rng)
    x = rng.normal(size=(N, T, F)).astype(np.float32)
    fwd, _, _ = run_layer("LSTM", weights[:3], x)
    bwd, _, _ = run_layer("LSTM", weights[3:], x, go_backwards=True)
    bwd = bwd[:, ::-1]
    expected = {"concat": np.concatenate([fwd, bwd], -1), "sum": fwd + bwd, "mul": fwd * bwd,
                "ave": (fwd + bwd) / 2, None: [fwd, bwd]}[merge_mode]
    got = model.predict(x)
    for g, e in zip(got if merge_mode is None else [got],
                    expected if merge_mode is None else [expected]):
        np.testing.assert_allclose(g, e, rtol=2e-5, atol=2e-5)


def test_time_distributed_dense_shares_weights_over_steps(rng):
    layer = L.TimeDistributed(L.Dense(2))
    model = _build(layer)
    model.initialize_weights()
    w, b = _random_weights(layer, rng)
    x = rng.normal(size=(N, T, F)).astype(np.float32)
    assert layer.output_shape == (None, T, 2)
    np.testing.assert_allclose(model.predict(x), x @ w.T + b, rtol=1e-5, atol=1e-5)


def test_unit_forget_bias_and_weight_names():
    layer = L.LSTM(3, name="enc")
    _build(layer, shape=(2, 5))
    assert [p.name for p in layer.weights] == ["enc_kernel", "enc_recurrent_kernel", "enc_bias"]
    bias = layer.get_weights()[2]
    np.testing.assert_array_equal(bias, [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    gru = L.GRU(3, name="dec")
    _build(gru, shape=(2, 5))
    assert [(p.short_name, p.shape) for p in gru.weights] == [
        ("kernel", (9, 5)), ("recurrent_kernel", (9, 3)), ("bias", (9,)),
        ("recurrent_bias", (9,))]


def test_recurrent_dropout_is_off_at_inference_and_on_in_training(rng):
    layer = L.LSTM(U, dropout=0.5, recurrent_dropout=0.5)
    model = _build(layer)
    model.compile("sgd", "mse")
    model.initialize_weights()
    weights = _random_weights(layer, rng)
    x = rng.normal(size=(N, T, F)).astype(np.float32)
    _, last, _ = run_layer("LSTM", weights, x)
    np.testing.assert_allclose(model.predict(x), last, rtol=2e-5, atol=2e-5)
    model.fit(x, np.zeros((N, U), np.float32), epochs=1, verbose=0)
    assert not np.allclose(layer.get_weights()[1], weights[1])


@pytest.mark.parametrize("layer", [L.LSTM(4), L.GRU(4, reset_after=False),
                                   L.Bidirectional(L.SimpleRNN(4, return_sequences=True)),
                                   L.RNN([L.LSTMCell(3), L.GRUCell(2)]),
                                   L.TimeDistributed(L.Dense(3))])
def test_save_and_load_whole_model(layer, tmp_path, rng):
    model = _build(layer)
    model.initialize_weights()
    _random_weights(layer, rng)
    x = rng.normal(size=(N, T, F)).astype(np.float32)
    before = model.predict(x)
    path = tmp_path / "model.h5"
    model.save(path)
    loaded = deepkit.models.load_model(path)
    after = loaded.predict(x)
    np.testing.assert_allclose(after, before, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("make, shape, message", [
    (lambda: L.LSTM(4), (5,), "input must be 3-D"),
    (lambda: L.GRU(4), (5, 3, 2), "input must be 3-D"),
    (lambda: L.TimeDistributed(L.Dense(2)), (5,), "at least 3-D"),
])
def test_bad_input_shapes_name_the_layer(make, shape, message):
    layer = make()
    with pytest.raises(ValueError, match=message) as err:
        layer(deepkit.Input(shape=shape))
    assert layer.name in str(err.value)


def test_bad_arguments():
    with pytest.raises(ValueError, match="units"):
        L.LSTM(0)
    with pytest.raises(ValueError, match="recurrent_dropout"):
        L.GRU(3, recurrent_dropout=1.5)
    with pytest.raises(ValueError, match="merge_mode"):
        L.Bidirectional(L.LSTM(3), merge_mode="max")
    with pytest.raises(ValueError, match="stateful"):
        L.LSTM(3, stateful=True)


def test_loss_ignores_masked_steps():
    """Changing the labels or outputs of padded steps changes neither the loss nor training."""
    tokens = np.array([[1, 2, 3, 0], [4, 5, 0, 0]], np.float32)
    inp = deepkit.Input(shape=(4,))
    emb = L.Embedding(6, 3, mask_zero=True)
    seq = L.LSTM(5, return_sequences=True)(emb(inp))
    out = L.TimeDistributed(L.Dense(3, activation="softmax"))(seq)
    model = deepkit.Model(inp, out)
    model.compile("sgd", "sparse_categorical_crossentropy")
    labels = np.array([[0, 1, 2, 0], [2, 1, 0, 0]], np.float32)
    other = labels.copy()
    other[tokens == 0] = 2
    loss_a = model.evaluate(tokens, labels, verbose=0)
    loss_b = model.evaluate(tokens, other, verbose=0)
    assert loss_a == pytest.approx(loss_b, rel=1e-6)
    probs = model.predict(tokens)
    keep = tokens != 0
    picked = np.take_along_axis(probs, labels.astype(int)[..., None], axis=-1)[..., 0]
    assert loss_a == pytest.approx(-np.log(picked[keep]).mean(), rel=1e-4)


def test_masks_pass_through_layers_that_support_masking(rng):
    class Scale(L.Layer):
        supports_masking = True

        def call(self, inputs):
            return inputs * 2.0

    tokens = np.array([[3, 1, 0, 0, 0], [2, 4, 6, 0, 0]], np.float32)
    inp = deepkit.Input(shape=(T,))
    emb = L.Embedding(10, F, mask_zero=True)
    gru = L.GRU(U)
    model = deepkit.Model(inp, gru(Scale()(emb(inp))))
    model.initialize_weights()
    weights = _random_weights(gru, rng)
    x = 2.0 * emb.get_weights()[0][tokens.astype(int)]
    _, last, _ = run_layer("GRU", weights, x, mask=tokens != 0)
    np.testing.assert_allclose(model.predict(tokens), last, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("kind, options", [("GRU", {"reset_after": False}),
                                           ("LSTM", {"recurrent_activation": "hard_sigmoid"})])
def test_foreach_loop_and_unrolled_graph_agree_with_gradients(kind, options, rng):
    """Configurations the fused op cannot run go through the engine's foreach loop."""
    assert not KINDS[kind](3, **options).uses_fused_op()
    symbols = {}
    for unroll in (False, True):
        inp = deepkit.Input(shape=(4, 2), name="x")
        layer = KINDS[kind](3, return_sequences=True, unroll=unroll, name=f"loop_{unroll}",
                            **options)
        symbols[unroll] = deepkit.Model(inp, layer(inp)).output_symbols()[0]
    local = np.random.default_rng(3)
    values = None
    outs = {}
    for unroll, symbol in symbols.items():
        args = symbol.list_arguments()
        shapes = dict(zip(args, symbol.infer_shape(x=(2, 4, 2))[0]))
        if values is None:
            values = {name.replace("loop_False_", ""): local.uniform(-0.6, 0.6, size=shapes[name])
                      for name in args}
        location = {name: values[name.replace(f"loop_{unroll}_", "")] for name in args}
        testing.check_numeric_gradient(symbol, location, rtol=1e-4, atol=1e-6)
        exe = symbol.simple_bind(testing.default_context(), grad_req="null",
                                 type_dict={n: np.float64 for n in location}, x=(2, 4, 2))
        for name, value in location.items():
            exe.arg_dict[name][:] = value
        outs[unroll] = exe.forward()[0].asnumpy()
    np.testing.assert_allclose(outs[False], outs[True], rtol=1e-10)


@pytest.mark.parametrize("kind, options", [("LSTM", {}), ("GRU", {"reset_after": False})])
def test_stateful_layer_resumes_where_the_last_batch_stopped(kind, options, tmp_path, rng):
    half = T // 2 + 1
    stateful = KINDS[kind](U, stateful=True, batch_input_shape=(N, half, F), **options)
    model = _build(stateful, shape=(half, F))
    model.initialize_weights()
    weights = _random_weights(stateful, rng)[:-(2 if kind == "LSTM" else 1)]
    x = rng.normal(size=(N, 2 * half, F)).astype(np.float32)
    cell_kwargs = {"reset_after": options["reset_after"]} if "reset_after" in options else {}
    _, first_ref, _ = run_layer(kind, weights, x[:, :half], **cell_kwargs)
    _, full_ref, _ = run_layer(kind, weights, x, **cell_kwargs)
    stateful.reset_states()
    np.testing.assert_allclose(model.predict(x[:, :half], batch_size=N), first_ref, rtol=2e-5,
                               atol=2e-5)
    path = tmp_path / "stateful.h5"
    model.save(path)  # the carried states are saved with the weights: a later run resumes
    np.testing.assert_allclose(model.predict(x[:, half:], batch_size=N), full_ref, rtol=2e-5,
                               atol=2e-5)
    resumed = deepkit.models.load_model(path)
    np.testing.assert_allclose(resumed.predict(x[:, half:], batch_size=N), full_ref, rtol=2e-5,
                               atol=2e-5)
    stateful.reset_states()
    np.testing.assert_allclose(model.predict(x[:, :half], batch_size=N), first_ref, rtol=2e-5,
                               atol=2e-5)
    with pytest.raises(Exception, match=rf"{stateful.name}_read_states_0.*batch size 1 .*"
                                        rf"\({N}, {U}\).*same batch size"):
        model.predict(x[:1, :half], batch_size=1)


def test_stateful_needs_a_batch_size():
    with pytest.raises(ValueError, match="stateful=True needs a fixed batch size"):
        L.LSTM(3, stateful=True)
    with pytest.raises(AttributeError, match="not stateful"):
        layer = L.GRU(3)
        _build(layer)
        layer.reset_states()


def test_bidirectional_with_a_mask_skips_padding_in_both_directions(rng):
    tokens = np.array([[3, 1, 4, 0, 0], [2, 7, 1, 8, 2]], np.float32)
    mask = tokens != 0
    inp = deepkit.Input(shape=(T,))
    emb = L.Embedding(10, F, mask_zero=True)
    bi = L.Bidirectional(L.GRU(U, return_sequences=True))
    model = deepkit.Model(inp, bi(emb(inp)))
    model.initialize_weights()
    weights = _random_weights(bi, rng)
    x = emb.get_weights()[0][tokens.astype(int)]
    fwd, _, _ = run_layer("GRU", weights[:4], x, mask=mask)
    bwd, _, _ = run_layer("GRU", weights[4:], x, mask=mask, go_backwards=True)
    expected = np.concatenate([fwd, bwd[:, ::-1]], axis=-1)
    np.testing.assert_allclose(model.predict(tokens), expected, rtol=2e-5, atol=2e-5)
    assert np.all(model.predict(tokens)[0, 3:] == 0)


def _tagger(mask_zero):
    inp = deepkit.Input(shape=(4,))
    emb = L.Embedding(6, 3, mask_zero=mask_zero)
    seq = L.LSTM(5, return_sequences=True)(emb(inp))
    out = L.TimeDistributed(L.Dense(3, activation="softmax"))(seq)
    model = deepkit.Model(inp, out)
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_metrics_skip_masked_steps():
    tokens = np.array([[1, 2, 3, 0], [4, 5, 0, 0]], np.float32)
    labels = np.array([[0, 1, 2, 0], [2, 1, 0, 0]], np.float32)
    model = _tagger(mask_zero=True)
    probs = model.predict(tokens)
    keep = tokens != 0
    hits = probs.argmax(-1) == labels
    logs = model.evaluate(tokens, labels, return_dict=True)
    assert logs["accuracy"] == pytest.approx(hits[keep].mean())
    other = labels.copy()
    other[~keep] = probs.argmax(-1)[~keep]  # padded steps now all "right": nothing changes
    assert model.evaluate(tokens, other, return_dict=True)["accuracy"] == logs["accuracy"]


@pytest.mark.parametrize("mask_zero", [False, True])
def test_sample_weight_per_time_step(mask_zero):
    """Keras's temporal sample weights: (batch, steps), one weight per step of each sequence."""
    tokens = np.array([[1, 2, 3, 0], [4, 5, 1, 2]], np.float32)
    labels = np.array([[0, 1, 2, 0], [2, 1, 0, 1]], np.float32)
    weights = np.array([[1.0, 0.0, 2.0, 1.0], [0.5, 1.0, 1.0, 3.0]], np.float32)
    model = _tagger(mask_zero)
    probs = model.predict(tokens)
    per_step = -np.log(np.take_along_axis(probs, labels.astype(int)[..., None], -1)[..., 0])
    keep = (tokens != 0) if mask_zero else np.ones_like(tokens, bool)
    expected = (per_step * weights * keep).sum() / keep.sum()
    loss = model.evaluate(tokens, labels, sample_weight=weights, return_dict=True)["loss"]
    assert loss == pytest.approx(expected, rel=1e-5)
    before = [p.data.asnumpy().copy() for p in model.weights]
    model.fit(tokens, labels, sample_weight=np.zeros_like(weights), epochs=1, verbose=0)
    for b, p in zip(before, model.weights):  # zero weights on every step: no gradient
        np.testing.assert_array_equal(p.data.asnumpy(), b)
    with pytest.raises(ValueError, match="one per time step, shape \\(2, 4\\)"):
        model.evaluate(tokens, labels, sample_weight=weights[:, :3])
