"""RNN (MXNet's fused recurrent op): forward against a step-by-step numpy
reference for every mode, numeric gradients, the packed parameter layout,
dropout between layers, shape inference and errors."""
import numpy as np
import pytest

import deepkit_engine as dk
from deepkit_engine import autograd, threads
from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import ParamError, ShapeError
from deepkit_engine.ops import rnn as rnn_ops
from deepkit_engine.ops.registry import get_op
from deepkit_engine.testing import assert_almost_equal

from .op_cases import OpCase, forward_params, gradient_params, run_forward, run_gradient

MODES = ("rnn_relu", "rnn_tanh", "lstm", "gru")
GATES = {"rnn_relu": 1, "rnn_tanh": 1, "lstm": 4, "gru": 3}


# -- an independent numpy reference: plain loops over layers, directions and steps ----------

def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _cell(mode, x, h, c, wx, wh, bx, bh):
    """One time step for one direction: x (N, I), h and c (N, H)."""
    hid = h.shape[1]
    gx = x @ wx.T + bx
    gh = h @ wh.T + bh
    if mode == "rnn_tanh":
        return np.tanh(gx + gh), c
    if mode == "rnn_relu":
        return np.maximum(gx + gh, 0.0), c
    if mode == "lstm":
        pre = gx + gh
        i = _sigmoid(pre[:, :hid])
        f = _sigmoid(pre[:, hid:2 * hid])
        g = np.tanh(pre[:, 2 * hid:3 * hid])
        o = _sigmoid(pre[:, 3 * hid:])
        c = f * c + i * g
        return o * np.tanh(c), c
    r = _sigmoid(gx[:, :hid] + gh[:, :hid])
    z = _sigmoid(gx[:, hid:2 * hid] + gh[:, hid:2 * hid])
    n = np.tanh(gx[:, 2 * hid:] + r * gh[:, 2 * hid:])
    return (1 - z) * n + z * h, c


def unpack_reference(params, mode, input_size, state_size, num_layers, dirs):
    """{(layer, direction): (wx, wh, bx, bh)} read off the flat vector in MXNet's order."""
    g, hid = GATES[mode], state_size
    pieces, off = {}, 0
    for layer in range(num_layers):
        in_size = input_size if layer == 0 else dirs * hid
        for d in range(dirs):
            wx = params[off:off + g * hid * in_size].reshape(g * hid, in_size)
            off += wx.size
            wh = params[off:off + g * hid * hid].reshape(g * hid, hid)
            off += wh.size
            pieces[layer, d] = [wx, wh]
    for layer in range(num_layers):
        for d in range(dirs):
            pieces[layer, d].append(params[off:off + g * hid])
            off += g * hid
            pieces[layer, d].append(params[off:off + g * hid])
            off += g * hid
    assert off == params.size, (off, params.size)
    return pieces


def ref_rnn(data, parameters, state, state_cell=None, *, mode, state_size, num_layers=1,
            bidirectional=False, state_outputs=False, p=0.0, masks=None, **_):
    """Outputs of RNN; ``masks[l]`` multiplies the output of layer l (dropout)."""
    seq, batch, input_size = data.shape
    dirs = 2 if bidirectional else 1
    pieces = unpack_reference(parameters, mode, input_size, state_size, num_layers, dirs)
    x = data
    hy, cy = [], []
    for layer in range(num_layers):
        outs = []
        for d in range(dirs):
            h = state[layer * dirs + d]
            c = state_cell[layer * dirs + d] if mode == "lstm" else None
            ys = np.zeros((seq, batch, state_size))
            steps = range(seq) if d == 0 else range(seq - 1, -1, -1)
            for t in steps:
                h, c = _cell(mode, x[t], h, c, *pieces[layer, d])
                ys[t] = h
            outs.append(ys)
            hy.append(h)
            cy.append(c)
        x = np.concatenate(outs, axis=2)
        if masks is not None and layer < num_layers - 1:
            x = x * masks[layer]
    if not state_outputs:
        return x
    if mode == "lstm":
        return [x, np.stack(hy), np.stack(cy)]
    return [x, np.stack(hy)]


def _shapes(mode, seq, batch, input_size, hid, layers=1, bi=False):
    dirs = 2 if bi else 1
    size = rnn_ops.rnn_param_size(mode, input_size, hid, layers, bi)
    shapes = [(seq, batch, input_size), (size,), (layers * dirs, batch, hid)]
    return shapes + [shapes[2]] if mode == "lstm" else shapes


def _case(mode, seq, batch, input_size, hid, layers=1, bi=False, state_outputs=False,
          grad=False, **kw):
    params = {"mode": mode, "state_size": hid, "num_layers": layers, "bidirectional": bi,
              "state_outputs": state_outputs}
    return OpCase("RNN", _shapes(mode, seq, batch, input_size, hid, layers, bi), ref_rnn,
                  params, grad=grad, **kw)


CASES = []
for _mode in MODES:
    CASES += [
        _case(_mode, 5, 3, 4, 6),
        _case(_mode, 4, 2, 3, 5, layers=2, state_outputs=True),
        _case(_mode, 4, 3, 5, 4, bi=True),
        _case(_mode, 3, 2, 4, 3, layers=3, bi=True, state_outputs=True),
        _case(_mode, 1, 1, 1, 1, state_outputs=True),
        _case(_mode, 0, 2, 3, 2, bi=True, state_outputs=True, grad=True,
              name="empty-sequence"),
        _case(_mode, 3, 0, 3, 2, layers=2, state_outputs=True, grad=True, name="empty-batch"),
        # tiny cases for the numeric gradient: T=3, N=2, input 3, H=2
        _case(_mode, 3, 2, 3, 2, state_outputs=True, grad=True, name="grad"),
        _case(_mode, 3, 2, 3, 2, bi=True, grad=True, name="grad"),
        _case(_mode, 3, 2, 3, 2, layers=2, bi=True, state_outputs=True, grad=True,
              name="grad"),
    ]
CASES.append(_case("lstm", 3, 2, 3, 2, layers=2, grad=True, name="grad"))

#: _backward_RNN needs a consistent forward (its ``output`` input), so it is
#: checked against the numeric gradient of the reference by its own test.
OTHER_COVERED_OPS = {"_backward_RNN": "test_backward_op_matches_numeric_gradient"}


@pytest.mark.parametrize("case,dtype", forward_params(CASES))
def test_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)


@pytest.mark.parametrize("case", gradient_params(CASES))
def test_gradient(case, ctx):
    run_gradient(case, ctx)


# -- _backward_RNN directly, against finite differences of the reference ---------------------

def _random_inputs(rng, mode, seq, batch, input_size, hid, layers, bi):
    return [rng.uniform(-1, 1, size=s) for s in _shapes(mode, seq, batch, input_size, hid,
                                                          layers, bi)]


def _numeric_grads(fn, arrays, eps=1e-6):
    grads = []
    for a in arrays:
        g = np.zeros(a.shape)
        flat, gflat = a.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            orig = flat[i]
            flat[i] = orig + eps
            plus = fn()
            flat[i] = orig - eps
            minus = fn()
            flat[i] = orig
            gflat[i] = (plus - minus) / (2 * eps)
        grads.append(g)
    return grads


def _nothing_kept(params, data):
    """The ``kept_states`` input of ``_backward_RNN`` for a forward that kept nothing.

    LSTM's and GRU's forward keep their gates (and cell states) for backward in
    a hidden output (only where the fused float32 kernels run); its last value
    says whether it did. All zeros: backward recomputes them.
    """
    per_unit = {"lstm": 5, "gru": 4}.get(params["mode"])
    if per_unit is None:
        return []
    seq, batch = data.shape[:2]
    size = (params.get("num_layers", 1) * (2 if params.get("bidirectional") else 1) * seq * batch
            * per_unit * params["state_size"] + 1)
    return [np.zeros(size)]


def _check_backward_op(mode, layers, bi, state_outputs, ctx, masks=None, p=0.0):
    rng = np.random.default_rng(1)
    seq, batch, input_size, hid = 3, 2, 3, 2
    ins = _random_inputs(rng, mode, seq, batch, input_size, hid, layers, bi)
    params = {"mode": mode, "state_size": hid, "num_layers": layers, "bidirectional": bi,
              "state_outputs": state_outputs}
    outs = ref_rnn(*ins, masks=masks, **{**params, "state_outputs": True})
    n_state = (2 if mode == "lstm" else 1) if state_outputs else 0
    ograds = [rng.uniform(-1, 1, size=o.shape) for o in outs[:1 + n_state]]

    def loss():
        values = ref_rnn(*ins, masks=masks, **{**params, "state_outputs": True})
        return sum(float((v * g).sum()) for v, g in zip(values, ograds))

    expected = _numeric_grads(loss, ins)
    args = (ins + [outs[0]] + ([masks] if masks is not None else [])
            + _nothing_kept(params, ins[0]) + ograds)
    got = nd._backward_RNN(*[nd.array(a, ctx=ctx, dtype="float64") for a in args], p=p,
                           **params)
    got = got if isinstance(got, (list, tuple)) else [got]
    assert len(got) == len(ins)
    for name, g, e in zip(("data", "parameters", "state", "state_cell"), got, expected):
        assert_almost_equal(g, e, rtol=1e-6, atol=1e-8, names=(f"d{name}", "numeric"))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("layers,bi,state_outputs", [(1, False, True), (2, True, False)])
def test_backward_op_matches_numeric_gradient(mode, layers, bi, state_outputs, ctx):
    _check_backward_op(mode, layers, bi, state_outputs, ctx)


# -- MXNet's packed layout and gate order ---------------------------------------------------

def test_param_size_formula():
    # MXNet GetRnnParamSize: D*G*H*(I + H + 2) + (L - 1) * D*G*H*(D*H + H + 2)
    assert rnn_ops.rnn_param_size("lstm", 10, 20) == 80 * (10 + 20 + 2) == 2560
    assert rnn_ops.rnn_param_size("lstm", 10, 20, 2, True) == 2 * 80 * 32 + 2 * 80 * 62
    assert rnn_ops.rnn_param_size("gru", 7, 5, 3) == 15 * 14 + 2 * 15 * 12
    assert rnn_ops.rnn_param_size("rnn_tanh", 4, 3, 1, True) == 2 * 3 * 9
    assert rnn_ops.rnn_param_size("rnn_relu", 4, 3, 2) == 3 * 9 + 3 * 8
    net = sym.RNN(sym.Variable("data"), mode="lstm", state_size=20, num_layers=2,
                  bidirectional=True, state_outputs=True, name="lstm")
    assert net.list_arguments() == ["data", "lstm_parameters", "lstm_state", "lstm_state_cell"]
    assert net.list_outputs() == ["lstm_output", "lstm_state_output",
                                  "lstm_statecell_output"]
    args, outs, aux = net.infer_shape(data=(35, 8, 10))
    assert args == [(35, 8, 10), (15040,), (4, 8, 20), (4, 8, 20)]
    assert outs == [(35, 8, 40), (4, 8, 20), (4, 8, 20)] and aux == []
    gru = sym.RNN(sym.Variable("x"), mode="gru", state_size=3, name="gru")
    assert gru.list_arguments() == ["x", "gru_parameters", "gru_state"]
    assert gru.list_outputs() == ["gru_output"]
    args, outs, _ = gru.infer_shape(x=(2, 4, 5))
    assert args == [(2, 4, 5), (9 * 10,), (1, 4, 3)] and outs == [(2, 4, 3)]


def test_packing_order_weights_then_biases():
    """Two-layer bidirectional GRU from explicitly named pieces, packed as MXNet does."""
    rng = np.random.default_rng(3)
    seq, batch, input_size, hid = 3, 2, 4, 3
    pieces, weights, biases = {}, [], []
    for layer in range(2):
        in_size = input_size if layer == 0 else 2 * hid
        for d in range(2):
            pieces[layer, d] = [rng.normal(size=(3 * hid, in_size)),
                                rng.normal(size=(3 * hid, hid)),
                                rng.normal(size=3 * hid), rng.normal(size=3 * hid)]
            weights += [pieces[layer, d][0].ravel(), pieces[layer, d][1].ravel()]
            biases += [pieces[layer, d][2], pieces[layer, d][3]]
    flat = np.concatenate(weights + biases)
    x = rng.normal(size=(seq, batch, input_size))
    h0 = rng.normal(size=(4, batch, hid))
    inp = x
    for layer in range(2):
        outs = []
        for d in range(2):
            h = h0[2 * layer + d]
            ys = [None] * seq
            for t in (range(seq) if d == 0 else reversed(range(seq))):
                wx, wh, bx, bh = pieces[layer, d]
                r = _sigmoid(inp[t] @ wx[:hid].T + bx[:hid] + h @ wh[:hid].T + bh[:hid])
                z = _sigmoid(inp[t] @ wx[hid:2 * hid].T + bx[hid:2 * hid]
                             + h @ wh[hid:2 * hid].T + bh[hid:2 * hid])
                n = np.tanh(inp[t] @ wx[2 * hid:].T + bx[2 * hid:]
                            + r * (h @ wh[2 * hid:].T + bh[2 * hid:]))
                h = (1 - z) * n + z * h
                ys[t] = h
            outs.append(np.stack(ys))
        inp = np.concatenate(outs, axis=2)
    got = nd.RNN(nd.array(x, dtype="float64"), nd.array(flat, dtype="float64"),
                 nd.array(h0, dtype="float64"), mode="gru", state_size=hid, num_layers=2,
                 bidirectional=True)
    assert_almost_equal(got, inp)


def test_lstm_gate_order_is_i_f_g_o():
    """Zero weights; biases pick the gates: i=1, f=0, o=1 so h = tanh(tanh(b_g))."""
    hid, big = 2, 30.0
    size = rnn_ops.rnn_param_size("lstm", 1, hid)
    flat = np.zeros(size)
    b_ih = flat[size - 8 * hid:size - 4 * hid]
    b_ih[:hid] = big            # input gate open
    b_ih[hid:2 * hid] = -big    # forget gate closed: the initial cell is dropped
    b_ih[2 * hid:3 * hid] = [0.5, -0.25]  # cell candidate g
    b_ih[3 * hid:] = big        # output gate open
    out, hy, cy = nd.RNN(nd.ones((2, 1, 1)), nd.array(flat), nd.ones((1, 1, hid)),
                         nd.full((1, 1, hid), 5.0), mode="lstm", state_size=hid,
                         state_outputs=True)
    g = np.tanh([0.5, -0.25])
    assert_almost_equal(cy.asnumpy()[0, 0], g, rtol=1e-5)
    assert_almost_equal(out.asnumpy()[:, 0], np.tile(np.tanh(g), (2, 1)), rtol=1e-5)
    assert_almost_equal(hy, out.asnumpy()[-1:], rtol=1e-6)


def test_gru_gate_order_is_r_z_n():
    """z (the second gate) saturated at 1 keeps the state; at 0 gives n, with r scaling
    only the hidden part of n (MXNet's formula)."""
    hid = 1
    size = rnn_ops.rnn_param_size("gru", 1, hid)
    flat = np.zeros(size)
    flat[0:3] = [0.0, 0.0, 1.0]        # W_ir, W_iz, W_in
    flat[3:6] = [0.0, 0.0, 2.0]        # W_hr, W_hz, W_hn
    b_ih, b_hh = flat[6:9], flat[9:12]
    b_ih[1] = 40.0                     # z = 1: keep h0
    keep = nd.RNN(nd.ones((1, 1, 1)), nd.array(flat), nd.full((1, 1, 1), 0.3), mode="gru",
                  state_size=hid).asnumpy()
    assert_almost_equal(keep, [[[0.3]]], rtol=1e-5)
    b_ih[1] = -40.0                    # z = 0: h = n = tanh(x + r * (2 h0 + b_hn))
    b_ih[0] = -40.0                    # r = 0: the hidden part vanishes
    b_hh[2] = 7.0
    got = nd.RNN(nd.ones((1, 1, 1)), nd.array(flat), nd.full((1, 1, 1), 0.3), mode="gru",
                 state_size=hid).asnumpy()
    assert_almost_equal(got, [[[np.tanh(1.0)]]], rtol=1e-5)
    b_ih[0] = 40.0                     # r = 1: n = tanh(x + 2 h0 + b_hn)
    got = nd.RNN(nd.ones((1, 1, 1)), nd.array(flat), nd.full((1, 1, 1), 0.3), mode="gru",
                 state_size=hid).asnumpy()
    assert_almost_equal(got, [[[np.tanh(1.0 + 0.6 + 7.0)]]], rtol=1e-5)


# -- dropout between layers ----------------------------------------------------------------

def _run_kernel(params, ins, is_train, rng=None):
    """Call RNN's kernel directly to see its hidden dropout-mask output."""
    op = get_op("RNN")
    attrs = op.parse_attrs(params)
    _, out_shapes = op.infer_shape(attrs, [a.shape for a in ins])
    outs = [np.zeros(s) for s in out_shapes]
    op.forward_cpu(np, attrs, ins, outs, ("write",) * len(outs),
                   rng=np.random.default_rng(0) if rng is None else rng, is_train=is_train)
    return outs


@pytest.mark.parametrize("mode", MODES)
def test_dropout_between_layers_uses_the_hidden_mask(mode):
    rng = np.random.default_rng(2)
    params = {"mode": mode, "state_size": 4, "num_layers": 3, "bidirectional": True,
              "p": 0.4, "state_outputs": True}
    ins = _random_inputs(rng, mode, 5, 3, 2, 4, 3, True)
    outs = _run_kernel(params, ins, is_train=True)
    at = rnn_ops._outputs(get_op("RNN").parse_attrs(params)).index("dropout_mask")
    mask = outs[at]
    assert mask.shape == (2, 5, 3, 8)
    assert set(np.unique(mask)) <= {0.0, 1 / 0.6}
    assert 0.15 < (mask == 0).mean() < 0.65
    expected = ref_rnn(*ins, masks=mask, **params)
    for got, want in zip(outs, expected):
        assert_almost_equal(got, want)
    inference = _run_kernel(params, ins, is_train=False)
    assert_almost_equal(inference[at], np.ones_like(mask))
    for got, want in zip(inference, ref_rnn(*ins, **params)):
        assert_almost_equal(got, want)


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_backward_with_dropout_mask(mode, ctx):
    rng = np.random.default_rng(5)
    mask = (rng.uniform(size=(1, 3, 2, 4)) > 0.5) * 2.0
    _check_backward_op(mode, 2, True, True, ctx, masks=mask, p=0.5)


def test_dropout_mask_is_hidden_and_active_only_in_training(ctx):
    net = sym.RNN(sym.Variable("data"), mode="lstm", state_size=3, num_layers=2, p=0.5,
                  name="rnn")
    assert net.list_outputs() == ["rnn_output"]
    exe = net.simple_bind(ctx, data=(4, 2, 3))
    rng = np.random.default_rng(0)
    for name, arr in exe.arg_dict.items():
        arr[:] = rng.uniform(-1, 1, size=arr.shape)
    ins = [exe.arg_dict[n].asnumpy() for n in net.list_arguments()]
    params = {"mode": "lstm", "state_size": 3, "num_layers": 2, "p": 0.5}
    assert_almost_equal(exe.forward(is_train=False)[0], ref_rnn(*ins, **params))
    first = exe.forward(is_train=True)[0].asnumpy()
    exe.backward(nd.ones(first.shape, ctx=ctx))
    second = exe.forward(is_train=True)[0].asnumpy()
    assert not np.allclose(first, second)
    assert np.isfinite(exe.grad_dict["rnn_parameters"].asnumpy()).all()
    out = nd.RNN(*[nd.array(a, ctx=ctx) for a in ins], **params)
    assert isinstance(out, nd.NDArray) and out.shape == (4, 2, 3)


def test_executor_gradient_uses_the_forward_dropout_mask():
    """Same seed, same mask: the executor's gradient equals the numeric gradient of the
    reference with the mask the kernel draws from the seeded generator."""
    from deepkit_engine import random as dk_random  # noqa: PLC0415
    from deepkit_engine.context import cpu  # noqa: PLC0415
    params = {"mode": "gru", "state_size": 2, "num_layers": 2, "bidirectional": True,
              "p": 0.5, "state_outputs": True}
    net = sym.RNN(sym.Variable("data"), name="rnn", **params)
    exe = net.simple_bind(cpu(), type_dict={"data": "float64"}, data=(3, 2, 3))
    rng = np.random.default_rng(8)
    for arr in exe.arg_dict.values():
        arr[:] = rng.uniform(-1, 1, size=arr.shape)
    ins = [exe.arg_dict[n].asnumpy() for n in net.list_arguments()]
    heads = [rng.uniform(-1, 1, size=o.shape) for o in exe.forward(is_train=False)]
    dk_random.seed(11)
    exe.forward(is_train=True)
    exe.backward([nd.array(h, dtype="float64") for h in heads])
    dk_random.seed(11)
    at = rnn_ops._outputs(get_op("RNN").parse_attrs(params)).index("dropout_mask")
    mask = _run_kernel(params, ins, True, rng=dk_random.state_for(cpu()).generator)[at]
    assert 0 < (mask == 0).sum() < mask.size

    def loss():
        return sum(float((v * h).sum()) for v, h in zip(ref_rnn(*ins, masks=mask, **params),
                                                        heads))

    for name, expected in zip(net.list_arguments(), _numeric_grads(loss, ins)):
        assert_almost_equal(exe.grad_dict[name], expected, rtol=1e-6, atol=1e-8)


# -- executor level: grad_req='add' and autograd ----------------------------------------------

def test_executor_backward_accumulates_with_grad_req_add(ctx):
    net = sym.RNN(sym.Variable("data"), mode="gru", state_size=2, bidirectional=True,
                  state_outputs=True, name="rnn")
    exe = net.simple_bind(ctx, grad_req="add", type_dict={"data": "float64"},
                          data=(3, 2, 3))
    rng = np.random.default_rng(4)
    for arr in exe.arg_dict.values():
        arr[:] = rng.uniform(-1, 1, size=arr.shape)
    heads = [nd.array(rng.uniform(-1, 1, size=o.shape), ctx=ctx, dtype="float64")
             for o in exe.forward(is_train=True)]
    exe.backward(heads)
    once = {k: v.asnumpy().copy() for k, v in exe.grad_dict.items()}
    exe.forward(is_train=True)
    exe.backward(heads)
    for k, v in exe.grad_dict.items():
        assert_almost_equal(v, 2 * once[k])
    assert np.abs(once["rnn_state"]).sum() > 0


def test_autograd_through_rnn_matches_executor(ctx):
    rng = np.random.default_rng(6)
    ins = _random_inputs(rng, "lstm", 3, 2, 3, 2, 1, False)
    arrays = [nd.array(a, ctx=ctx, dtype="float64") for a in ins]
    for a in arrays:
        a.attach_grad()
    with autograd.record():
        out = nd.RNN(*arrays, mode="lstm", state_size=2)
        loss = (out * out).sum()
    loss.backward()

    def value():
        return float((ref_rnn(*ins, mode="lstm", state_size=2) ** 2).sum())

    for a, e in zip(arrays, _numeric_grads(value, ins)):
        assert_almost_equal(a.grad, e, rtol=1e-6, atol=1e-8)


# -- errors -------------------------------------------------------------------------------

def test_wrong_parameter_size_names_the_formula():
    net = sym.RNN(sym.Variable("data"), mode="lstm", state_size=4, name="rnn")
    with pytest.raises(ShapeError, match=r"RNN 'rnn'.*'parameters' has shape \(10,\) but "
                                         r"\(176,\).*input_size=5, state_size=4"):
        net.infer_shape(data=(2, 3, 5), rnn_parameters=(10,))
    with pytest.raises(ShapeError, match=r"'parameters' has shape \(3,\) but \(32,\)"):
        nd.RNN(nd.ones((2, 1, 2)), nd.ones(3), nd.zeros((1, 1, 4)), mode="rnn_tanh",
               state_size=4)


def test_wrong_state_shapes():
    with pytest.raises(ShapeError, match=r"RNN.*'state' has shape \(1, 3, 4\) but "
                                         r"\(2, 3, 4\).*\(1 \* 2, 3, 4\)"):
        nd.RNN(nd.ones((2, 3, 2)), nd.ones(rnn_ops.rnn_param_size("gru", 2, 4, 1, True)),
               nd.zeros((1, 3, 4)), mode="gru", state_size=4, bidirectional=True)
    net = sym.RNN(sym.Variable("data"), mode="lstm", state_size=4, name="rnn")
    with pytest.raises(ShapeError, match=r"'state_cell' has shape \(1, 2, 5\) but \(1, 3, 4\)"):
        net.infer_shape(data=(2, 3, 5), rnn_state_cell=(1, 2, 5))


def test_data_must_be_3d():
    net = sym.RNN(sym.Variable("data"), mode="gru", state_size=4, name="rnn")
    with pytest.raises(ShapeError, match=r"RNN 'rnn'.*'data' has shape \(3, 5\).*3-D"):
        net.infer_shape(data=(3, 5))


@pytest.mark.parametrize("params,match", [
    ({"p": 1.0}, "p=1.0 must be < 1"),
    ({"p": -0.1}, "p=-0.1 must be >= 0"),
    ({"projection_size": 2}, "projection_size=2 is not supported"),
    ({"lstm_state_clip_min": -1.0}, "lstm_state_clip_min=-1.0 is not supported"),
    ({"lstm_state_clip_max": 1.0}, "lstm_state_clip_max=1.0 is not supported"),
    ({"use_sequence_length": True}, "use_sequence_length=True is not supported"),
    ({"mode": "lstn"}, "mode='lstn' must be one of.*did you mean 'lstm'"),
    ({"state_size": 0}, "state_size=0 must be >= 1"),
    ({"num_layers": 0}, "num_layers=0 must be >= 1"),
])
def test_bad_params(params, match):
    kw = {"mode": "lstm", "state_size": 2, **params}
    with pytest.raises(ParamError, match=match):
        sym.RNN(sym.Variable("data"), **kw).infer_shape(data=(2, 1, 3))


def test_partial_inference_without_data_shape():
    net = sym.RNN(sym.Variable("data"), mode="rnn_relu", state_size=3, name="rnn")
    args, outs, _ = net.infer_shape_partial()
    assert (args, outs) == ([(), (), ()], [()])
    args, outs, _ = net.infer_shape_partial(rnn_state=(1, 4, 3))
    assert args == [(), (), (1, 4, 3)] and outs == [()]


# -- ReadState / WriteState: a state carried across batches ---------------------------------

OTHER_COVERED_OPS.update(ReadState="test_carried_state_is_read_then_written",
                         WriteState="test_carried_state_is_read_then_written")
OTHER_GRAD_COVERED_OPS = {"WriteState": "test_write_state_gradient_reaches_data_only"}


def _carry_net():
    data, carried = sym.Variable("data"), sym.Variable("carried")
    start = sym.ReadState(data, carried, name="read")
    new = data + start
    return sym.WriteState(new * 2.0, new, carried, name="write")


def test_carried_state_is_read_then_written(rng):
    net = _carry_net()
    assert net.list_auxiliary_states() == ["carried"]
    assert net.list_arguments() == ["data"]
    x = rng.normal(size=(2, 3))
    state = nd.array(np.ones((2, 3)), dtype="float64")
    exe = net.bind(dk.cpu(), args={"data": nd.array(x, dtype="float64")},
                   aux_states={"carried": state})
    first = exe.forward()[0].asnumpy()
    np.testing.assert_allclose(first, 2 * (x + 1))
    np.testing.assert_allclose(state.asnumpy(), x + 1)
    second = exe.forward()[0].asnumpy()
    np.testing.assert_allclose(second, 2 * (2 * x + 1))
    with pytest.raises(ShapeError, match=r"batch size 4 \(shape \(4, 3\)\) but the carried "
                                         r"state has shape \(2, 3\)"):
        net.infer_shape(data=(4, 3), carried=(2, 3))
    data = sym.Variable("data")
    direct = sym.WriteState(data, data, sym.Variable("carried"), name="write")
    with pytest.raises(ShapeError, match=r"\(4, 3\) but the carried state has shape \(2, 3\)"
                                         r".*same batch size"):
        direct.infer_shape(data=(4, 3), carried=(2, 3))


def test_write_state_gradient_reaches_data_only(rng):
    net = _carry_net()
    x = rng.normal(size=(2, 3))
    grad = nd.zeros((2, 3), dtype="float64")
    exe = net.bind(dk.cpu(), args={"data": nd.array(x, dtype="float64")},
                   args_grad={"data": grad}, aux_states={"carried": nd.zeros((2, 3),
                                                                           dtype="float64")})
    exe.forward(is_train=True)
    exe.backward(out_grads=[nd.array(np.full((2, 3), 0.5), dtype="float64")])
    np.testing.assert_allclose(grad.asnumpy(), np.full((2, 3), 1.0))


# -- the step mask (Keras's masking inside the fused op) -------------------------------------

def _step_mask_case(rng, mode, bi, layers):
    seq, batch, input_size, hid = 4, 3, 3, 2
    d = 2 if bi else 1
    ins = [rng.uniform(-1, 1, (seq, batch, input_size)),
           rng.uniform(-1, 1, rnn_ops.rnn_param_size(mode, input_size, hid, layers, bi)),
           rng.uniform(-1, 1, (layers * d, batch, hid))]
    if mode == "lstm":
        ins.append(rng.uniform(-1, 1, (layers * d, batch, hid)))
    mask = np.ones((seq, batch))
    mask[2:, 0] = 0  # trailing padding
    mask[1, 1] = 0   # a hole inside a sequence
    mask[0, 2] = 0   # leading padding
    params = dict(mode=mode, state_size=hid, num_layers=layers, bidirectional=bi,
                  state_outputs=True, use_step_mask=True)
    return ins, mask, params


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bi,layers", [(False, 1), (True, 2)])
def test_step_mask_keeps_states_and_backward_matches_numeric_gradient(mode, bi, layers):
    rng = np.random.default_rng(4)
    ins, mask, params = _step_mask_case(rng, mode, bi, layers)

    def forward(arrays):
        outs = nd.RNN(*[nd.array(a, dtype="float64") for a in arrays + [mask]], **params)
        return [o.asnumpy() for o in outs]

    outs = forward(ins)
    assert np.all(outs[0][2:, 0] == 0) and np.all(outs[0][1, 1] == 0)
    ograds = [rng.uniform(-1, 1, o.shape) for o in outs]
    expected = _numeric_grads(
        lambda: sum(float((v * g).sum()) for v, g in zip(forward(ins), ograds)), ins)
    got = nd._backward_RNN(*[nd.array(a, dtype="float64") for a in ins + [mask, outs[0]]
                             + _nothing_kept(params, ins[0]) + ograds], **params)
    for name, g, e in zip(("data", "parameters", "state", "state_cell"), got, expected):
        assert_almost_equal(g, e, rtol=1e-6, atol=1e-8, names=(f"d{name}", "numeric"))
    np.testing.assert_array_equal(got[len(ins)].asnumpy(), 0)  # no gradient into the mask


def test_step_mask_of_ones_changes_nothing_and_a_masked_sample_keeps_its_state():
    rng = np.random.default_rng(5)
    ins, mask, params = _step_mask_case(rng, "lstm", False, 1)
    plain = {k: v for k, v in params.items() if k != "use_step_mask"}
    want = nd.RNN(*[nd.array(a, dtype="float64") for a in ins], **plain)
    got = nd.RNN(*[nd.array(a, dtype="float64") for a in ins + [np.ones_like(mask)]],
                 **params)
    for w, g in zip(want, got):
        assert_almost_equal(g, w, rtol=1e-12, atol=1e-12)
    mask[:, 1] = 0
    outs = nd.RNN(*[nd.array(a, dtype="float64") for a in ins + [mask]], **params)
    np.testing.assert_allclose(outs[1].asnumpy()[0, 1], ins[2][0, 1])  # h kept from the start
    np.testing.assert_allclose(outs[2].asnumpy()[0, 1], ins[3][0, 1])  # and c


# -- the batch split over the kernel pool ----------------------------------------------------

@pytest.fixture
def three_pool_threads(monkeypatch):
    """A kernel pool of three threads (whatever this machine has), removed afterwards."""
    monkeypatch.setattr(threads, "_state", dict(threads._state, pool=None, pool_size=3))
    yield
    if threads._state["pool"] is not None:
        threads._state["pool"].shutdown()


def _forward_and_backward(ins, mask, params, ograds):
    extra = [mask] if mask is not None else []
    outs = nd.RNN(*[nd.array(a, dtype="float64") for a in ins + extra], **params)
    outs = [o.asnumpy() for o in outs]
    got = nd._backward_RNN(*[nd.array(a, dtype="float64")
                             for a in ins + extra + [outs[0]] + _nothing_kept(params, ins[0])
                             + ograds], **params)
    return outs + [g.asnumpy() for g in got]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("masked", [False, True])
def test_batch_split_over_the_pool_gives_the_whole_batch_results(mode, masked, monkeypatch,
                                                                   three_pool_threads):
    rng = np.random.default_rng(6)
    seq, batch, input_size, hid, layers = 4, 5, 3, 2, 2
    ins = [rng.uniform(-1, 1, (seq, batch, input_size)),
           rng.uniform(-1, 1, rnn_ops.rnn_param_size(mode, input_size, hid, layers, True)),
           rng.uniform(-1, 1, (layers * 2, batch, hid))]
    if mode == "lstm":
        ins.append(rng.uniform(-1, 1, (layers * 2, batch, hid)))
    mask = None
    if masked:
        mask = np.ones((seq, batch))
        mask[2:, 0] = 0
        mask[1, 3] = 0
    params = dict(mode=mode, state_size=hid, num_layers=layers, bidirectional=True,
                  state_outputs=True, use_step_mask=masked)
    n_state = 2 if mode == "lstm" else 1
    ograds = [rng.uniform(-1, 1, s) for s in
              [(seq, batch, 2 * hid)] + [(layers * 2, batch, hid)] * n_state]
    monkeypatch.setattr(rnn_ops, "MIN_ROWS_PER_PART", 10 ** 6)
    whole = _forward_and_backward(ins, mask, params, ograds)
    monkeypatch.setattr(rnn_ops, "MIN_ROWS_PER_PART", 1)
    assert [(r.start, r.stop) for r in rnn_ops._row_parts(np, batch)] == [(0, 2), (2, 4), (4, 5)]
    split = _forward_and_backward(ins, mask, params, ograds)
    assert len(split) == len(whole)
    for s, w in zip(split, whole):
        assert_almost_equal(s, w, rtol=1e-12, atol=1e-12)
