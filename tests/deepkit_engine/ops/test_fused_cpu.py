"""The fused float32 CPU kernels (numba): the tanh approximation, each LSTM kernel against
plain numpy formulas, and the RNN op on the fused path against the float64 reference,
with and without the states a training forward keeps for backward."""
import importlib.util
import threading

import numpy as np
import pytest

from deepkit_engine import autograd, threads
from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.context import cpu
from deepkit_engine.ops import fused_cnn, fused_cpu, fused_update
from deepkit_engine.ops import rnn as rnn_ops
from deepkit_engine.ops.registry import get_op
from deepkit_engine.testing import assert_almost_equal

from .test_rnn import _random_inputs, ref_rnn

HAS_NUMBA = importlib.util.find_spec("numba") is not None
needs_numba = pytest.mark.skipif(not HAS_NUMBA,
                                 reason="numba is not installed (pip install 'deepkit[fast]')")

F32 = np.float32
NO_MASK = np.empty((0, 0, 0), F32)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@pytest.fixture
def compiled(monkeypatch):
    monkeypatch.delenv("DEEPKIT_NUMBA", raising=False)
    kernels = fused_cpu.kernels(np.float32)
    assert kernels is not None
    return kernels


# -- which arrays take the kernels ---------------------------------------------------------------

@pytest.mark.parametrize("module", [fused_cpu, fused_cnn, fused_update],
                         ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_only_float32_takes_the_kernels_and_the_switch_turns_them_off(monkeypatch, module):
    assert module.kernels(np.float64) is None
    assert module.kernels(np.float16) is None
    monkeypatch.setenv("DEEPKIT_NUMBA", "0")
    assert module.kernels(np.float32) is None
    monkeypatch.setenv("DEEPKIT_NUMBA", "1")
    assert (module.kernels(np.float32) is not None) == HAS_NUMBA
    if HAS_NUMBA:  # compiled once per process: the same kernels each time
        assert module.kernels(np.float32) is module.kernels(np.float32)


# -- the kernels as written (plain Python, tiny arrays) -------------------------------------------

def test_tanh_approximation_is_float32_accurate_everywhere():
    x = np.concatenate([np.linspace(-12, 12, 2001), [0.0, -0.0, 1e-30, -1e-30, 8.9, 9.1, 40.0,
                                                      -40.0, np.inf, -np.inf]]).astype(F32)
    got = np.array([fused_cpu._tanh(v) for v in x], F32)
    np.testing.assert_allclose(got, np.tanh(x.astype(np.float64)), rtol=0, atol=4e-7)
    assert np.isnan(fused_cpu._tanh(F32(np.nan)))  # NaN stays NaN (divergence shows)
    assert np.all(np.abs(got) <= 1)


def _lstm_numpy_step(pre, c):
    h = c.shape[-1]
    i, f = _sigmoid(pre[..., :h]), _sigmoid(pre[..., h:2 * h])
    g, o = np.tanh(pre[..., 2 * h:3 * h]), _sigmoid(pre[..., 3 * h:])
    c_new = f * c + i * g
    return np.concatenate([i, f, g, o], -1), c_new, o * np.tanh(c_new)


def test_lstm_step_as_written_matches_numpy_and_keeps_gates_and_cells():
    rng = np.random.default_rng(0)
    d, t, n, h, n_all, row0 = 2, 3, 2, 3, 5, 2
    gates = rng.normal(size=(d, n, 4 * h)).astype(F32)
    proj = rng.normal(size=(d, t, n, 4 * h)).astype(F32)
    c = rng.normal(size=(d, n, h)).astype(F32)
    hs = np.zeros((d, t, n_all, h), F32)
    kept = np.zeros((d, t, n_all, 5 * h), F32)
    bias = rng.normal(size=(d, 4 * h)).astype(F32)
    acts, c_want, h_want = _lstm_numpy_step(
        (gates + proj[:, 1] + bias[:, None]).astype(np.float64), c.astype(np.float64))
    fused_cpu.lstm_step(gates, proj, bias, 1, c, hs, row0, 0, kept, True, NO_MASK, np.zeros_like(c))
    np.testing.assert_allclose(c, c_want, atol=1e-6)
    np.testing.assert_allclose(hs[:, 1, row0:row0 + n], h_want, atol=1e-6)
    np.testing.assert_allclose(kept[:, 1, row0:row0 + n, :4 * h], acts, atol=1e-6)
    np.testing.assert_allclose(kept[:, 1, row0:row0 + n, 4 * h:], c_want, atol=1e-6)
    assert not hs[:, 0].any() and not hs[:, :, :row0].any() and not kept[:, 0].any()


def test_lstm_backward_step_as_written_matches_the_chain_rule():
    rng = np.random.default_rng(1)
    d, t, n, h = 1, 2, 3, 2
    kept = np.empty((d, t, n, 5 * h), F32)
    kept[..., :4 * h] = rng.uniform(0.05, 0.95, size=(d, t, n, 4 * h))
    kept[..., 4 * h:] = rng.normal(size=(d, t, n, h))
    c_first = rng.normal(size=(d, n, h)).astype(F32)
    dhs = rng.normal(size=(d, t, n, h)).astype(F32)
    dh_next = rng.normal(size=(d, n, h)).astype(F32)
    dc = rng.normal(size=(d, n, h)).astype(F32)
    for step, c_prev in ((1, kept[:, 0, :, 4 * h:]), (0, c_first)):
        i, f, g, o = (kept[:, step, :, k * h:(k + 1) * h].astype(np.float64) for k in range(4))
        tc = np.tanh(kept[:, step, :, 4 * h:].astype(np.float64))
        dh = dhs[:, step] + dh_next
        dcell = dc + dh * o * (1 - tc ** 2)
        want = np.stack([dcell * g * i * (1 - i), dcell * c_prev * f * (1 - f),
                         dcell * i * (1 - g ** 2), dh * tc * o * (1 - o)], axis=2)
        dpre = np.zeros((d, t, n, 4, h), F32)
        dc_in = dc.copy()
        fused_cpu.lstm_backward_step(dhs, step, 0, dh_next, dc_in, kept, c_first, dpre, NO_MASK,
                                     dh_next)
        np.testing.assert_allclose(dpre[:, step], want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(dc_in, dcell * f, rtol=1e-5, atol=1e-6)


# -- compiled ------------------------------------------------------------------------------------

@needs_numba
def test_compiled_tanh_matches_numpy(compiled):
    x = np.random.default_rng(2).normal(scale=4, size=(7, 1031)).astype(F32)
    out = np.empty_like(x)
    compiled.tanh_(x, out)
    np.testing.assert_allclose(out, np.tanh(x.astype(np.float64)), rtol=0, atol=4e-7)
    compiled.tanh_(x, x)  # in place
    np.testing.assert_allclose(x, out, rtol=0, atol=2.5e-7)
    special = np.array([np.nan, np.inf, -np.inf, 0.0, 40.0], F32)
    compiled.tanh_(special, special)
    assert np.isnan(special[0])
    np.testing.assert_allclose(special[1:], [1.0, -1.0, 0.0, 1.0], rtol=0, atol=4e-7)


@needs_numba
def test_layer_forward_keeps_what_the_step_kernel_keeps_and_hidden_rebuilds_it(compiled):
    """The fused layer (its own projections, the batch split over the pool) keeps the same
    gates and cells as the step kernel run by hand; lstm_hidden rebuilds the states."""
    rng = np.random.default_rng(3)
    d, t, n, h, i_size = 2, 4, 3, 5, 6
    xs = rng.normal(size=(d, t, n, i_size)).astype(F32)
    w = [rng.normal(size=s).astype(F32) * F32(0.5)
         for s in ((d, 4 * h, i_size), (d, 4 * h, h), (d, 4 * h), (d, 4 * h))]
    h0 = rng.normal(size=(d, n, h)).astype(F32)
    c0 = rng.normal(size=(d, n, h)).astype(F32)
    proj = np.ascontiguousarray(xs @ w[0].transpose(0, 2, 1)[:, None])
    bias = np.ascontiguousarray(w[2] + w[3])
    kept_steps = np.empty((d, t, n, 5 * h), F32)
    hs = np.empty((d, t, n, h), F32)
    c = c0.copy()
    for i in range(t):
        prev = h0 if i == 0 else hs[:, i - 1]
        gates = np.ascontiguousarray(prev @ w[1].transpose(0, 2, 1))
        compiled.lstm_step(gates, proj, bias, i, c, hs, 0, 0, kept_steps, True, NO_MASK, h0)
    kept = np.empty_like(kept_steps)
    layer_hs = np.empty_like(hs)
    c_last = rnn_ops._lstm_forward_fused(compiled, xs, w, h0, c0, layer_hs, kept)
    np.testing.assert_allclose(kept, kept_steps, atol=1e-6)
    np.testing.assert_allclose(c_last, c, atol=1e-6)
    np.testing.assert_allclose(layer_hs, hs, atol=1e-6)
    hidden = np.empty_like(hs)
    compiled.lstm_hidden(kept, hidden, NO_MASK, c0)
    np.testing.assert_allclose(hidden, hs, atol=1e-6)


# -- the RNN op on the fused path ----------------------------------------------------------------

def _case(layers, bi, seq=6, batch=20, input_size=5, hid=7, seed=4, mode="lstm"):
    rng = np.random.default_rng(seed)
    ins = _random_inputs(rng, mode, seq, batch, input_size, hid, layers, bi)
    params = {"mode": mode, "state_size": hid, "num_layers": layers, "bidirectional": bi,
              "state_outputs": True}
    return rng, ins, params


def _grads(ins, params, ograds, dtype, is_train=True):
    arrays = [nd.array(a, dtype=dtype) for a in ins]
    for a in arrays:
        a.attach_grad()
    with autograd.record(train_mode=is_train):
        outs = nd.RNN(*arrays, **params)
        loss = sum((o * nd.array(g, dtype=dtype)).sum() for o, g in zip(outs, ograds))
    loss.backward()
    return [o.asnumpy() for o in outs] + [a.grad.asnumpy() for a in arrays]


@needs_numba
@pytest.mark.parametrize("mode", ["lstm", "gru"])
@pytest.mark.parametrize("layers,bi", [(1, False), (2, True), (3, False)])
@pytest.mark.parametrize("is_train", [True, False])
def test_fused_kernels_match_the_float64_reference(mode, layers, bi, is_train, compiled):
    rng, ins, params = _case(layers, bi, mode=mode)
    want_outs = ref_rnn(*ins, **params)
    ograds = [rng.uniform(-1, 1, o.shape) for o in want_outs]
    exact = _grads(ins, params, ograds, "float64")
    got = _grads(ins, params, ograds, "float32", is_train=is_train)
    for w, o in zip(want_outs, got):
        assert_almost_equal(o, w, rtol=1e-5, atol=2e-6)
    for e, g in zip(exact[len(want_outs):], got[len(want_outs):]):  # data, params, states
        assert_almost_equal(g, e, rtol=1e-4, atol=2e-5)


@needs_numba
@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_fused_and_numpy_float32_paths_agree(mode, monkeypatch, compiled):
    rng, ins, params = _case(2, True, seed=5, mode=mode)
    ograds = [rng.uniform(-1, 1, o.shape) for o in ref_rnn(*ins, **params)]
    fused = _grads(ins, params, ograds, "float32")
    monkeypatch.setenv("DEEPKIT_NUMBA", "0")
    plain = _grads(ins, params, ograds, "float32")
    for f, p in zip(fused, plain):
        assert_almost_equal(f, p, rtol=1e-4, atol=2e-5)


@needs_numba
@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_step_loops_through_blas_match_the_per_step_python_loop(mode, monkeypatch, compiled):
    """The compiled loop over the steps (the recurrent product through cblas_sgemm) and the
    Python loop (numpy's matmul, then the step kernel) it replaces give the same numbers;
    the Python loop runs where no cblas_sgemm is found."""
    assert threads.cblas_gemm(np.float32) is not None  # numpy's OpenBLAS has it
    rng, ins, params = _case(2, True, seed=8, mode=mode)
    ograds = [rng.uniform(-1, 1, o.shape) for o in ref_rnn(*ins, **params)]
    for is_train in (True, False):
        looped = _grads(ins, params, ograds, "float32", is_train=is_train)
        with monkeypatch.context() as patch:
            patch.setattr(threads, "cblas_gemm", lambda dtype: None)
            stepped = _grads(ins, params, ograds, "float32", is_train=is_train)
        for a, b in zip(looped, stepped):
            assert_almost_equal(a, b, rtol=1e-6, atol=1e-6)


@needs_numba
def test_a_training_forward_keeps_gates_and_cells_and_flags_them(compiled):
    _, ins, params = _case(2, False, seq=3, batch=4)
    op = get_op("RNN")
    attrs = op.parse_attrs(params)
    ins32 = [a.astype(F32) for a in ins]
    _, shapes = op.infer_shape(attrs, [a.shape for a in ins32])
    names = rnn_ops._outputs(attrs)
    assert names[-1] == "kept_states" and op.num_visible_outputs(attrs) == 3
    at = names.index("kept_states")
    assert shapes[at] == (2 * 3 * 4 * 5 * 7 + 1,)
    for is_train, flag in ((False, 0.0), (True, 1.0)):
        outs = [np.full(s, -5.0, F32) for s in shapes]
        op.forward_cpu(np, attrs, ins32, outs, ("write",) * len(outs),
                       rng=np.random.default_rng(0), is_train=is_train)
        assert outs[at][-1] == flag
    kept = outs[at][:-1].reshape(2, 3, 4, 5, 7)  # layer, step, sample, (i f g o c), unit
    sigmoid_gates = kept[:, :, :, [0, 1, 3]]
    assert ((sigmoid_gates > 0) & (sigmoid_gates < 1)).all()
    assert (np.abs(kept[:, :, :, 2]) < 1).all()
    assert_almost_equal(kept[:, -1, :, 4], outs[2], rtol=1e-6, atol=1e-7)  # last cell = cy
    hidden = kept[:, :, :, 3] * np.tanh(kept[:, :, :, 4])
    assert_almost_equal(hidden[-1], outs[0], rtol=1e-5, atol=1e-6)  # top layer's output


@needs_numba
@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_fused_batch_split_over_three_threads_matches_one(mode, monkeypatch, compiled):
    rng, ins, params = _case(2, True, batch=29, seed=6, mode=mode)
    ograds = [rng.uniform(-1, 1, o.shape) for o in ref_rnn(*ins, **params)]
    whole = _grads(ins, params, ograds, "float32")
    monkeypatch.setattr(threads, "_state", dict(threads._state, pool=None, pool_size=3))
    try:
        split = _grads(ins, params, ograds, "float32")
    finally:
        if threads._state["pool"] is not None:
            threads._state["pool"].shutdown()
    for w, s in zip(whole, split):
        assert_almost_equal(s, w, rtol=1e-5, atol=1e-6)


@needs_numba
@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_executor_backward_after_an_inference_forward_recomputes(mode, compiled):
    """MXNet allows backward after forward(is_train=False): nothing was kept, so the
    gates are recomputed, and the gradients equal those after a training forward."""
    net = sym.RNN(sym.Variable("data"), mode=mode, state_size=6, num_layers=2, name="rnn")
    exe = net.simple_bind(cpu(), data=(5, 12, 4))
    rng = np.random.default_rng(7)
    for arr in exe.arg_dict.values():
        arr[:] = rng.uniform(-1, 1, size=arr.shape)
    head = nd.array(rng.uniform(-1, 1, size=(5, 12, 6)))
    exe.forward(is_train=True)
    exe.backward(head)
    trained = {k: v.asnumpy().copy() for k, v in exe.grad_dict.items()}
    exe.forward(is_train=False)
    exe.backward(head)
    for name, grad in exe.grad_dict.items():
        assert_almost_equal(grad, trained[name], rtol=1e-5, atol=1e-6)


@needs_numba
@pytest.mark.parametrize("mode", ["lstm", "gru"])
@pytest.mark.parametrize("layers,bi", [(1, False), (2, True)])
@pytest.mark.parametrize("pool,split", [(1, "rows"), (3, "rows"), (3, "units")])
@pytest.mark.parametrize("is_train", [True, False])
def test_fused_masked_kernels_match_the_float64_kernels(mode, layers, bi, pool, split, is_train,
                                                        monkeypatch, compiled):
    """Keras's masking (the op's step_mask): masked steps keep the states and pass their
    gradients through, in the fused kernels as in the numpy ones; the batch split too, and
    an LSTM's steps split over its units (three parts of 3, 3 and 1 units, a barrier a
    step)."""
    rng = np.random.default_rng(9)
    seq, batch, input_size, hid = 6, 24, 5, 7
    ins = _random_inputs(rng, mode, seq, batch, input_size, hid, layers, bi)
    mask = np.ones((seq, batch))
    mask[3:, 0] = 0    # trailing padding
    mask[1, 1] = 0     # a hole inside a sequence
    mask[:2, 2] = 0    # leading padding
    mask[:, 3] = 0     # nothing at all
    mask[rng.uniform(size=(seq, batch)) < 0.2] = 0
    params = {"mode": mode, "state_size": hid, "num_layers": layers, "bidirectional": bi,
              "state_outputs": True, "use_step_mask": True}
    ograds = [rng.uniform(-1, 1, o.shape) for o in ref_rnn(*ins, **{
        k: v for k, v in params.items() if k != "use_step_mask"})]
    monkeypatch.setattr(threads, "_state", dict(threads._state, pool=None, pool_size=pool))
    monkeypatch.setattr(rnn_ops, "MIN_UNITS_PER_PART", 2 if split == "units" else 1 << 30)
    if split == "units" and mode == "lstm":
        unit_parts = rnn_ops._unit_parts
        monkeypatch.setattr(rnn_ops, "_unit_parts",
                            lambda h: calls.append("units") or unit_parts(h))
    calls = []
    name = f"_{mode}_forward_fused"
    fused_forward = getattr(rnn_ops, name)
    monkeypatch.setattr(rnn_ops, name,
                        lambda *args: calls.append(args[-1] is not None) or fused_forward(*args))

    def grads(dtype):
        arrays = [nd.array(a, dtype=dtype) for a in ins]
        for a in arrays:
            a.attach_grad()
        with autograd.record(train_mode=is_train):  # not training: nothing kept, recomputed
            outs = nd.RNN(*arrays, nd.array(mask, dtype=dtype), **params)
            loss = sum((o * nd.array(g, dtype=dtype)).sum() for o, g in zip(outs, ograds))
        loss.backward()
        return [o.asnumpy() for o in outs] + [a.grad.asnumpy() for a in arrays]
    try:
        exact, fused = grads("float64"), grads("float32")
    finally:
        if threads._state["pool"] is not None:
            threads._state["pool"].shutdown()
    assert calls and all(calls)  # float32 ran the fused kernels, with the mask
    if split == "units" and mode == "lstm":
        assert rnn_ops._unit_parts(hid) == [slice(0, 3), slice(3, 6), slice(6, 7)]
        assert "units" in calls  # a forward that keeps no gates ran split over units
    assert np.all(exact[0][3:, 0] == 0) and np.all(fused[0][3:, 0] == 0)
    for e, f in zip(exact, fused):
        assert_almost_equal(f, e, rtol=1e-4, atol=2e-5)


# -- LSTM steps split over the units --------------------------------------------------------------

@needs_numba
def test_unit_split_lstm_layer_equals_the_row_split(monkeypatch, compiled):
    """A layer wide enough for the default split over units (two threads of 64 units)
    gives the numbers of the split over rows; a forward that keeps the gates is split
    over rows."""
    rng = np.random.default_rng(11)
    d, t, n, h, i_size = 1, 7, 10, 128, 9
    xs = rng.normal(size=(d, t, n, i_size)).astype(F32)
    w = [rng.normal(size=s).astype(F32) * F32(0.2)
         for s in ((d, 4 * h, i_size), (d, 4 * h, h), (d, 4 * h), (d, 4 * h))]
    h0, c0 = (rng.normal(size=(d, n, h)).astype(F32) for _ in range(2))
    monkeypatch.setattr(threads, "_state", dict(threads._state, pool=None, pool_size=2))
    groups = []
    run_together = threads.run_together
    monkeypatch.setattr(threads, "run_together",
                        lambda fn, items: groups.append(len(items)) or run_together(fn, items))
    try:
        assert rnn_ops._unit_parts(h) == [slice(0, 64), slice(64, 128)]
        results = []
        for parts in (rnn_ops._unit_parts, lambda units: None):
            monkeypatch.setattr(rnn_ops, "_unit_parts", parts)
            hs = np.empty((d, t, n, h), F32)
            c_last = rnn_ops._lstm_forward_fused(compiled, xs, w, h0, c0, hs)
            results.append((hs, c_last))
        assert groups == [2]
        monkeypatch.setattr(rnn_ops, "_unit_parts", lambda units: [slice(0, 64), slice(64, 128)])
        kept = np.empty((d, t, n, 5 * h), F32)
        rnn_ops._lstm_forward_fused(compiled, xs, w, h0, c0, np.empty((d, t, n, h), F32), kept)
        assert groups == [2]  # kept gates: split over rows
    finally:
        if threads._state["pool"] is not None:
            threads._state["pool"].shutdown()
    for by_units, by_rows in zip(*results):
        np.testing.assert_allclose(by_units, by_rows, rtol=1e-5, atol=1e-6)


@needs_numba
def test_a_part_gives_up_waiting_when_another_failed(compiled):
    """The barrier's last row says a part failed: the others return instead of waiting
    for a step that will never come."""
    rng = np.random.default_rng(12)
    d, t, n, h = 1, 5, 2, 4
    gemm, pause = threads.cblas_gemm(F32), threads.pause_function()
    if gemm is None or pause is None:
        pytest.skip("no cblas_sgemm or sched_yield found in this process")
    flags = np.zeros((3, 16), np.int64)
    flags[-1, 0] = 1  # part 1 never started: it failed
    hs = np.full((d, t, n, h), np.nan, F32)
    fused_args = (np.ascontiguousarray(rng.normal(size=(d, h, 2 * 4)).astype(F32)),
                  np.empty((d, n, 8), F32), rng.normal(size=(d, t, n, 8)).astype(F32),
                  np.zeros((d, 8), F32), np.zeros((d, n, 2), F32), hs, 0, 0,
                  np.empty((1, 1, 1, 1), F32), False, NO_MASK, np.zeros((d, n, h), F32))
    compiled.lstm_steps(gemm, pause, *fused_args, flags, 0)
    assert flags[0, 0] == 1  # step 0 done, then it stopped at the first barrier
    assert np.all(np.isfinite(hs[:, 0, :, :2])) and np.all(np.isnan(hs[:, 1:]))


def test_run_together_runs_every_part_at_once(monkeypatch):
    """Parts that wait for each other finish (a barrier of all parts would time out if one
    waited for a free thread); more parts than threads are refused; a failure reaches the
    caller after the other parts are done."""
    monkeypatch.setattr(threads, "_state", dict(threads._state, pool=None, pool_size=3))
    try:
        barrier = threading.Barrier(3, timeout=10)
        assert threads.run_together(lambda i: barrier.wait() * 0 + i, range(3)) == [0, 1, 2]
        with pytest.raises(ValueError, match="4 parts need as many threads.*runs 3"):
            threads.run_together(lambda i: i, range(4))
        done = []

        def part(i):
            if i == 1:
                raise RuntimeError("part 1 failed")
            done.append(i)
        with pytest.raises(RuntimeError, match="part 1 failed"):
            threads.run_together(part, range(3))
        assert sorted(done) == [0, 2]
    finally:
        if threads._state["pool"] is not None:
            threads._state["pool"].shutdown()
