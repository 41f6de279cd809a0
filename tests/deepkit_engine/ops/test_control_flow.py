"""Control flow: foreach, while_loop and cond against numpy, with numeric gradient checks."""
import numpy as np
import pytest

import deepkit_engine as dk
from deepkit_engine import autograd, contrib, testing
from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import DeepkitError

OTHER_COVERED_OPS = {
    "_foreach": "test_foreach_rnn_matches_numpy",
    "_backward_foreach": "test_foreach_rnn_matches_numpy",
    "_while_loop": "test_while_loop_pads_rows_after_the_last_step",
    "_backward_while_loop": "test_while_loop_gradient",
    "_cond": "test_cond_runs_the_branch_the_predicate_picks",
    "_backward_cond": "test_cond_gradient_flows_through_the_branch_taken",
}
OTHER_GRAD_COVERED_OPS = {
    "_foreach": "test_foreach_rnn_matches_numpy",
    "_while_loop": "test_while_loop_gradient",
    "_cond": "test_cond_gradient_flows_through_the_branch_taken",
}

T, N, C, H = 4, 2, 3, 5


def _forward(symbol, location, is_train=False):
    exe = symbol.simple_bind(dk.cpu(), grad_req="null",
                             type_dict={k: np.float64 for k in location},
                             **{k: v.shape for k, v in location.items()})
    for k, v in location.items():
        exe.arg_dict[k][:] = v
    return [o.asnumpy() for o in exe.forward(is_train=is_train)]


def _rnn_symbol():
    data, h0 = sym.Variable("data"), sym.Variable("h0")
    w, u = sym.Variable("w"), sym.Variable("u")

    def step(x, states):
        h = sym.tanh(sym.dot(x, w) + sym.dot(states[0], u))
        return h * 2.0, [h]
    outs, states = contrib.symbol.foreach(step, data, [h0])
    return sym.Group([outs, states[0]])


def _rnn_location(rng):
    return {"data": rng.normal(size=(T, N, C)), "h0": rng.normal(size=(N, H)),
            "w": rng.normal(size=(C, H)) * 0.5, "u": rng.normal(size=(H, H)) * 0.5}


def test_foreach_rnn_matches_numpy(rng):
    net = _rnn_symbol()
    loc = _rnn_location(rng)
    outs, last = _forward(net, loc)
    h, expected = loc["h0"], []
    for t in range(T):
        h = np.tanh(loc["data"][t] @ loc["w"] + h @ loc["u"])
        expected.append(2 * h)
    np.testing.assert_allclose(outs, np.stack(expected), rtol=1e-12)
    np.testing.assert_allclose(last, h, rtol=1e-12)
    testing.check_numeric_gradient(net, loc)


def test_foreach_infers_weight_shapes_from_the_body():
    data, h0 = sym.Variable("data"), sym.Variable("h0")

    def step(x, states):
        h = sym.FullyConnected(x, num_hidden=H, name="i2h") + \
            sym.FullyConnected(states[0], num_hidden=H, name="h2h")
        return h, [sym.tanh(h)]
    outs, _ = contrib.symbol.foreach(step, data, [h0])
    args, out_shapes, _ = outs.infer_shape(data=(T, N, C), h0=(N, H))
    shapes = dict(zip(outs.list_arguments(), args))
    assert shapes["i2h_weight"] == (H, C) and shapes["h2h_weight"] == (H, H)
    assert out_shapes == [(T, N, H)]


def test_foreach_with_several_states_and_outputs_and_two_sequences(rng):
    a, b = sym.Variable("a"), sym.Variable("b")
    s0, s1 = sym.Variable("s0"), sym.Variable("s1")
    scale = sym.Variable("scale")

    def step(xs, states):
        x, y = xs
        p, q = states
        new_p = p * x + q * scale
        new_q = sym.sin(q + y)
        return [new_p + new_q, new_p * y], [new_p, new_q]
    outs, states = contrib.symbol.foreach(step, [a, b], [s0, s1])
    net = sym.Group(outs + states)
    loc = {"a": rng.normal(size=(3, 2)), "b": rng.normal(size=(3, 2)),
           "s0": rng.normal(size=(2,)), "s1": rng.normal(size=(2,)),
           "scale": rng.normal(size=(2,))}
    got = _forward(net, loc)
    p, q, o1, o2 = loc["s0"], loc["s1"], [], []
    for t in range(3):
        p, q = p * loc["a"][t] + q * loc["scale"], np.sin(q + loc["b"][t])
        o1.append(p + q)
        o2.append(p * loc["b"][t])
    for g, e in zip(got, [np.stack(o1), np.stack(o2), p, q]):
        np.testing.assert_allclose(g, e, rtol=1e-12)
    testing.check_numeric_gradient(net, loc)


def test_nested_foreach(rng):
    data, w = sym.Variable("data"), sym.Variable("w")
    acc0 = sym.Variable("acc0")

    def outer(row, states):
        def inner(x, inner_states):
            total = inner_states[0] + sym.sin(x * w) * states[0]
            return total, [total]
        inner_out, inner_states = contrib.symbol.foreach(inner, row, [states[0]])
        return sym.sum(inner_out), [inner_states[0] * 0.5]
    outs, last = contrib.symbol.foreach(outer, data, [acc0])
    net = sym.Group([outs, last[0]])
    loc = {"data": rng.normal(size=(3, 4)), "w": rng.normal(size=(1,)),
           "acc0": rng.normal(size=(1,))}
    got = _forward(net, loc)
    acc, expected = loc["acc0"], []
    for row in loc["data"]:
        total, inner = acc, []
        for x in row:
            total = total + np.sin(x * loc["w"]) * acc
            inner.append(total)
        expected.append(np.sum(inner))
        acc = total * 0.5
    np.testing.assert_allclose(got[0], np.array(expected).reshape(3, 1), rtol=1e-12)
    np.testing.assert_allclose(got[1], acc, rtol=1e-12)
    testing.check_numeric_gradient(net, loc)


def _while_symbol():
    i0, x0, w = sym.Variable("i0"), sym.Variable("x0"), sym.Variable("w")

    def cond(i, x):
        return i < 3.5

    def func(i, x):
        new_x = sym.tanh(x * w + i)
        return [new_x * 3.0], [i + 1.0, new_x]
    outs, loop_vars = contrib.symbol.while_loop(cond, func, [i0, x0], max_iterations=6)
    return sym.Group([outs[0]] + loop_vars)


def test_while_loop_pads_rows_after_the_last_step(rng):
    net = _while_symbol()
    loc = {"i0": np.array([1.0]), "x0": rng.normal(size=(2,)), "w": rng.normal(size=(2,))}
    outs, i_final, x_final = _forward(net, loc)
    i, x, rows = 1.0, loc["x0"], []
    while i < 3.5:
        x = np.tanh(x * loc["w"] + i)
        rows.append(3 * x)
        i += 1
    assert outs.shape == (6, 2)
    np.testing.assert_allclose(outs[:3], np.stack(rows), rtol=1e-12)
    assert np.all(outs[3:] == 0)
    np.testing.assert_allclose(x_final, x, rtol=1e-12)
    assert i_final[0] == 4.0


def test_while_loop_gradient(rng):
    net = _while_symbol()
    loc = {"i0": np.array([0.0]), "x0": rng.normal(size=(2,)), "w": rng.normal(size=(2,))}
    testing.check_numeric_gradient(net, loc, grad_nodes=["x0", "w"])


def test_while_loop_refuses_a_state_that_changes_shape():
    x0 = sym.Variable("x0")
    with pytest.raises(DeepkitError, match=r"loop_vars\[0\].*shape from \(2,\) to \(4,\)"):
        _, loop_vars = contrib.symbol.while_loop(
            lambda x: sym.sum(x) < 100.0, lambda x: ([x], [sym.concat(x, x, dim=0)]), [x0],
            max_iterations=3)
        loop_vars[0].infer_shape(x0=(2,))


def _cond_symbol():
    p, a, b = sym.Variable("p"), sym.Variable("a"), sym.Variable("b")
    return contrib.symbol.cond(p, lambda: sym.sin(a) * b, lambda: a * a)


@pytest.mark.parametrize("pred", [1.0, 0.0])
def test_cond_runs_the_branch_the_predicate_picks(pred, rng):
    net = _cond_symbol()
    loc = {"p": np.array([pred]), "a": rng.normal(size=(3,)), "b": rng.normal(size=(3,))}
    got = _forward(net, loc)[0]
    want = np.sin(loc["a"]) * loc["b"] if pred else loc["a"] ** 2
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("pred", [1.0, 0.0])
def test_cond_gradient_flows_through_the_branch_taken(pred, rng):
    net = _cond_symbol()
    loc = {"p": np.array([pred]), "a": rng.normal(size=(3,)), "b": rng.normal(size=(3,))}
    testing.check_numeric_gradient(net, loc, grad_nodes=["a", "b"])
    exe = net.simple_bind(dk.cpu(), type_dict={k: np.float64 for k in loc},
                          **{k: v.shape for k, v in loc.items()})
    for k, v in loc.items():
        exe.arg_dict[k][:] = v
    exe.forward(is_train=True)
    exe.backward(out_grads=[nd.ones((3,), dtype=np.float64)])
    b_grad = exe.grad_dict["b"].asnumpy()
    np.testing.assert_allclose(b_grad, np.sin(loc["a"]) if pred else 0.0, rtol=1e-12)


def test_cond_refuses_branches_of_different_shapes():
    a = sym.Variable("a")
    out = contrib.symbol.cond(sym.Variable("p"), lambda: a, lambda: sym.concat(a, a, dim=0))
    with pytest.raises(DeepkitError, match=r"different shapes for output 0: \(3,\) and \(6,\)"):
        out.infer_shape(p=(1,), a=(3,))


def test_cond_refuses_branches_of_different_types():
    a = sym.Variable("a")
    out = contrib.symbol.cond(sym.Variable("p"), lambda: a, lambda: sym.cast(a, dtype="int32"))
    with pytest.raises(DeepkitError, match="different types for output 0"):
        out.infer_type(p=np.float32, a=np.float32)


def test_control_flow_graphs_save_and_load_as_json(rng):
    for net, loc in ((_rnn_symbol(), _rnn_location(rng)),
                     (_while_symbol(), {"i0": np.array([0.0]), "x0": rng.normal(size=(2,)),
                                        "w": rng.normal(size=(2,))})):
        loaded = sym.load_json(net.tojson())
        assert loaded.list_arguments() == net.list_arguments()
        for a, b in zip(_forward(net, loc), _forward(loaded, loc)):
            np.testing.assert_array_equal(a, b)


def test_imperative_forms_record_gradients(rng):
    data = nd.array(rng.normal(size=(T, N, C)))
    w = nd.array(rng.normal(size=(C, H)) * 0.5)
    h0 = nd.zeros((N, H))
    w.attach_grad()
    with autograd.record():
        outs, last = contrib.ndarray.foreach(
            lambda x, s: (nd.tanh(nd.dot(x, w) + s), nd.tanh(nd.dot(x, w) + s)), data, h0)
        loss = nd.sum(outs)
    loss.backward()
    h, total = np.zeros((N, H)), 0.0
    wv = w.asnumpy()
    for t in range(T):
        h = np.tanh(data.asnumpy()[t] @ wv + h)
        total += h.sum()
    np.testing.assert_allclose(loss.asnumpy(), total, rtol=1e-5)
    assert np.abs(w.grad.asnumpy()).sum() > 0
    outs, final = contrib.ndarray.while_loop(lambda i: i < 3, lambda i: (i * 10, i + 1),
                                             nd.array([0.0]), max_iterations=5)
    np.testing.assert_array_equal(outs.asnumpy().ravel(), [0, 10, 20, 0, 0])
    assert final.asnumpy()[0] == 3
    picked = contrib.ndarray.cond(nd.array([0.0]), lambda: nd.array([1.0]),
                                  lambda: nd.array([2.0]))
    assert picked.asnumpy()[0] == 2.0


def test_mxnet_spellings_sym_contrib_and_nd_contrib():
    assert sym.contrib.foreach is contrib.symbol.foreach
    assert nd.contrib.while_loop is contrib.ndarray.while_loop
    assert sym.contrib.cond is contrib.symbol.cond
