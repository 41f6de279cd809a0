"""The gradient pass on hand-built graphs: gradient nodes, their names and their values
against analytic derivatives."""
import numpy as np
import pytest

from deepkit_engine.base import DeepkitError, OpBugError
from deepkit_engine.graph.builder import Expr, GraphOps
from deepkit_engine.graph.gradient import build_gradient, check_gradients
from deepkit_engine.graph.node import Graph, topo_order

from .graphs import apply, evaluate, var

_RNG = np.random.default_rng(3)
X = _RNG.uniform(0.5, 1.5, (2, 3))
W = _RNG.uniform(-1, 1, (2, 3))
G = _RNG.uniform(-1, 1, (2, 3))


def _grads(head, wrt, values, head_grad=True):
    """Gradient entries of ``head`` w.r.t. ``wrt`` and their values (head gradient G)."""
    hg = var("head_grad")
    grads, checks = build_gradient([(head, 0)], [(hg, 0) if head_grad else None], wrt)
    live = [g for g in grads if g is not None]
    computed = iter(evaluate(live, dict(values, head_grad=G)))
    return grads, checks, [None if g is None else next(computed) for g in grads]


def test_product_gradient_is_the_other_factor():
    x, w = var("x"), var("w")
    y = apply("multiply", x, w, name="y")
    grads, _, values = _grads(y, [x, w], {"x": X, "w": W})
    np.testing.assert_allclose(values[0], G * W)
    np.testing.assert_allclose(values[1], G * X)
    # the gradient nodes are new plain nodes named after the forward node
    names = {n.name for n in topo_order([g for g in grads])}
    assert any(n.startswith("y_backward_") for n in names)


def test_fan_out_is_summed_once():
    # y = tanh(x) * x: x feeds two nodes, so its gradient is one sum of two terms
    x = var("x")
    t = apply("tanh", x, name="t")
    y = apply("multiply", t, x, name="y")
    grads, _, values = _grads(y, [x], {"x": X})
    np.testing.assert_allclose(values[0], G * ((1 - np.tanh(X) ** 2) * X + np.tanh(X)))
    sums = [n for n in topo_order(grads) if n.op is not None and n.op.name == "add_n"]
    assert [n.name for n in sums] == ["x_grad_x_0_gradsum"]


def test_broadcast_gradient_is_summed_down_to_the_input_shape():
    x, b = var("x"), var("b")
    y = apply("add", x, b, name="y")
    bias = W[:1]
    grads, checks, values = _grads(y, [x, b], {"x": X, "b": bias})
    np.testing.assert_allclose(values[0], G)
    np.testing.assert_allclose(values[1], G.sum(axis=0, keepdims=True))
    assert values[1].shape == bias.shape
    assert grads[1][0].op.name == "_reduce_to_like"
    # one check per input contribution; every one has the forward input's shape
    assert {(fwd[0].name, k) for _, fwd, _, k in checks} == {("x", 0), ("b", 1)}


def test_chain_rule_through_a_reduction_without_a_head_gradient_node():
    # d sum(x^2) / dx = 2x (the head gradient of a scalar sum is ones)
    x = var("x")
    s = apply("sum", apply("square", x, name="sq"), name="s")
    hg = apply("ones_like", s, name="ones")
    grads, _ = build_gradient([(s, 0)], [(hg, 0)], [x])
    np.testing.assert_allclose(evaluate(grads, {"x": X})[0], 2 * X)


def test_unreachable_and_non_differentiable_paths_give_none():
    x, w, z = var("x"), var("w"), var("z")
    y = apply("add", apply("multiply", x, w), apply("greater", x, w))
    grads, _, values = _grads(y, [x, w, z], {"x": X, "w": W, "z": X})
    assert grads[2] is None
    # the comparison contributes nothing: only the product's gradient is left
    np.testing.assert_allclose(values[0], G * W)


def test_loss_heads_need_no_head_gradient():
    data, label = var("data"), var("label")
    out = apply("SoftmaxOutput", data, label, name="softmax")
    grads, _ = build_gradient([(out, 0)], [None], [data])
    logits = X
    labels = np.array([0.0, 2.0])
    got = evaluate(grads, {"data": logits, "label": labels})[0]
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(got, p - np.eye(3)[labels.astype(int)], rtol=1e-6)


def test_second_order_differentiates_the_gradient_graph():
    # y = x^3; dy/dx = 3x^2 built from differentiable nodes; d/dx of sum(3x^2) = 6x
    x = var("x")
    y = apply("_power_scalar", x, scalar=3.0, name="cube")
    hg = apply("ones_like", y, name="ones")
    (first,), _ = build_gradient([(y, 0)], [(hg, 0)], [x])
    ones = apply("ones_like", first[0], name="ones2")
    (second,), _ = build_gradient([first], [(ones, 0)], [x])
    got_first, got_second = evaluate([first, second], {"x": X})
    np.testing.assert_allclose(got_first, 3 * X ** 2)
    np.testing.assert_allclose(got_second, 6 * X)


def test_differentiating_a_gradient_without_one_is_refused_with_its_name():
    x = var("x")
    y = apply("_backward_MakeLoss", x, name="bd")
    with pytest.raises(DeepkitError, match="_backward_MakeLoss 'bd'"):
        build_gradient([(y, 0)], [(var("g"), 0)], [x])


def test_check_gradients_names_the_op_whose_gradient_has_the_wrong_shape():
    x = var("x")
    y = apply("tanh", x, name="t")
    bad = apply("sum", x, name="bad")
    graph = Graph([(y, 0), (bad, 0)])
    shapes = [None] * graph.num_entries
    shapes[graph.entry_id(x)] = (2, 3)
    shapes[graph.entry_id(bad)] = (1,)
    with pytest.raises(OpBugError, match="gradient of tanh 't' for input 'data'"):
        check_gradients(graph, shapes, [((bad, 0), (x, 0), y, 0)])


def test_graph_ops_name_nodes_and_build_operators_from_declarations():
    F = GraphOps("n_backward_")
    x = F.wrap([(var("x"), 0)])
    y = F.wrap([(var("y"), 0)])
    exprs = [x * y, 1 - x, -x, x / 2.0, x >= y, F.square(x), x.sum(axis=0)]
    assert all(isinstance(e, Expr) and len(e) == 1 for e in exprs)
    nodes = [e._outputs[0][0] for e in exprs]
    assert [n.op.name for n in nodes] == ["multiply", "_rminus_scalar", "negative",
                                          "_div_scalar", "greater_equal", "square", "sum"]
    assert [n.name for n in nodes] == ["n_backward__mul0", "n_backward__rminusscalar0",
                                       "n_backward_negative0", "n_backward__divscalar0",
                                       "n_backward__greater_equal0", "n_backward_square0",
                                       "n_backward_sum0"]
    assert nodes[1].attrs.scalar == 1.0
    assert F.add_n(x, y, name="total")._outputs[0][0].name == "n_backward_total"
    with pytest.raises(OpBugError, match="dot"):
        F.dot(x)
