"""Recompute (mirror) on hand-built graphs: which nodes are recomputed, identical gradients,
and less planned memory than keeping every activation."""
import numpy as np

from deepkit_engine.graph.gradient import build_gradient
from deepkit_engine.graph.mirror import apply_mirror, is_mirrorable
from deepkit_engine.graph.node import topo_order

from .graphs import apply, evaluate, plan, var

_RNG = np.random.default_rng(5)
VALUES = {"data": _RNG.normal(size=(8, 16)), "w0": _RNG.normal(size=(16, 16)) * 0.3,
          "w1": _RNG.normal(size=(16, 16)) * 0.3, "head_grad": np.ones(1)}


def _net():
    """fc0 -> tanh -> sin -> fc1 -> tanh -> sum: cheap activations between heavy ops."""
    data, w0, w1 = var("data"), var("w0"), var("w1")
    h = apply("FullyConnected", data, w0, num_hidden=16, no_bias=True, name="fc0")
    h = apply("sin", apply("tanh", h, name="t0"), name="s0")
    h = apply("FullyConnected", h, w1, num_hidden=16, no_bias=True, name="fc1")
    h = apply("tanh", h, name="t1")
    out = apply("sum", h, name="loss")
    return out, [w0, w1]


def _gradients():
    out, wrt = _net()
    hg = var("head_grad")
    grads, _ = build_gradient([(out, 0)], [(hg, 0)], wrt)
    return out, grads


def test_cheap_nodes_are_recomputed_and_heavy_ones_kept():
    out, grads = _gradients()
    mirrored, rebuilt = apply_mirror([(out, 0)], grads)
    backward = [n for n in topo_order(mirrored) if n.op is not None]
    clones = sorted(n.name for n in backward if n.name.endswith("_mirror"))
    assert clones == ["s0_mirror", "t0_mirror", "t1_mirror"]
    # the clones read the kept outputs of the heavy ops, not recomputed copies of them
    by_name = {n.name: n for n in topo_order(mirrored)}
    assert by_name["t0_mirror"].inputs[0][0] is by_name["fc0"]
    assert by_name["s0_mirror"].inputs[0][0] is by_name["t0_mirror"]
    assert "fc0_mirror" not in by_name and "fc1_mirror" not in by_name
    # every backward node that read a cheap forward output was rebuilt
    assert rebuilt and all(not n.name.endswith("_mirror") for n in
                           (rebuilt[k] for k in rebuilt))


def test_mirrored_gradients_are_identical():
    out, grads = _gradients()
    mirrored, _ = apply_mirror([(out, 0)], grads)
    plain_values = evaluate(grads, VALUES)
    mirrored_values = evaluate(mirrored, VALUES)
    for a, b in zip(plain_values, mirrored_values):
        np.testing.assert_array_equal(a, b)


def _deep_net(blocks=4):
    """Blocks of FullyConnected -> tanh -> sin -> * 0.9, as in ``Executor`` tests."""
    h, weights = var("data"), []
    for i in range(blocks):
        weights.append(var(f"w{i}"))
        h = apply("FullyConnected", h, weights[-1], num_hidden=16, no_bias=True, name=f"fc{i}")
        h = apply("_mul_scalar", apply("sin", apply("tanh", h)), scalar=0.9)
    out = apply("sum", h, name="loss")
    grads, _ = build_gradient([(out, 0)], [(var("head_grad"), 0)], weights)
    return out, grads


def _planned_bytes(out, grads):
    # forward first, then backward with the last layer's gradient first, as the executor
    # schedules them (activations then die one block at a time); gradients are outputs
    values = dict(VALUES, **{f"w{i}": VALUES["w0"] for i in range(4)})
    _, _, result = plan([(out, 0)] + list(reversed(grads)), values)
    return result.planned_bytes


def test_mirror_plans_less_memory_with_identical_gradients():
    out, grads = _deep_net()
    mirrored, _ = apply_mirror([(out, 0)], grads)
    assert _planned_bytes(out, mirrored) < _planned_bytes(out, grads)
    values = dict(VALUES, **{f"w{i}": _RNG.normal(size=(16, 16)) * 0.3 for i in range(4)})
    for a, b in zip(evaluate(grads, values), evaluate(mirrored, values)):
        np.testing.assert_array_equal(a, b)


def test_what_is_mirrorable():
    data = var("data")
    assert is_mirrorable(apply("tanh", data))
    assert not is_mirrorable(data)
    assert not is_mirrorable(apply("FullyConnected", data, var("w"), num_hidden=2,
                                   no_bias=True))
    assert not is_mirrorable(apply("Dropout", data, p=0.5))  # draws random numbers
    forced = apply("tanh", data)
    forced.user_attrs["__force_mirroring__"] = "false"
    assert not is_mirrorable(forced)
