"""Memory planning: reuse, in-place, identical results, and recompute (mirror)."""
import numpy as np
import pytest

from deepkit_engine import symbol as sym
from deepkit_engine.graph.mirror import is_mirrorable
from deepkit_engine.graph.node import Node
from deepkit_engine.ops.registry import get_op
from deepkit_engine.testing import assert_almost_equal


def _mlp():
    x = sym.Variable("data")
    h = sym.Activation(sym.FullyConnected(x, num_hidden=64, name="fc1"), act_type="relu")
    h = sym.Activation(sym.FullyConnected(h, num_hidden=64, name="fc2"), act_type="relu")
    return sym.SoftmaxOutput(sym.FullyConnected(h, num_hidden=10, name="fc3"), name="softmax")


def _chain(depth=20):
    h = sym.Variable("data")
    for i in range(depth):
        h = sym.Activation(sym.FullyConnected(h, num_hidden=32, name=f"fc{i}"), act_type="tanh",
                           name=f"act{i}")
    return sym.sum(h * h)


def _cheap_chain():
    """Blocks of a heavy op followed by cheap ones: what recompute is for.

    The FullyConnected outputs are kept; the tanh/sin/scale outputs after them
    are recomputed from those during backward.
    """
    h = sym.Variable("data")
    for i in range(6):
        h = sym.FullyConnected(h, num_hidden=128, name=f"fc{i}")
        h = sym.sin(sym.tanh(h)) * 0.9
    return sym.sum(h)


def _fill(exe, seed=0):
    rng = np.random.default_rng(seed)
    for name, arr in exe.arg_dict.items():
        if name.endswith("label"):
            arr[:] = rng.integers(0, 10, arr.shape)
        else:
            arr[:] = rng.normal(size=arr.shape) * 0.2


@pytest.mark.parametrize("build,shapes", [(_mlp, {"data": (32, 100)}),
                                          (_chain, {"data": (16, 32)})])
def test_planned_bytes_below_unplanned_and_in_place_used(build, shapes):
    exe = build().simple_bind(**shapes)
    report = exe.memory_report()
    assert report["planned_bytes"] < report["unplanned_bytes"]
    assert report["inplace"] > 0
    assert report["largest"] and report["largest"][0][1] >= report["largest"][-1][1]
    inference = build().simple_bind(grad_req="null", **shapes).memory_report()
    assert inference["planned_bytes"] < report["planned_bytes"]


@pytest.mark.parametrize("build,shapes", [(_mlp, {"data": (32, 100)}),
                                          (_chain, {"data": (16, 32)}),
                                          (_cheap_chain, {"data": (8, 20)})])
def test_results_bit_identical_with_planning_on_and_off(build, shapes):
    results = []
    for planned in (True, False):
        exe = build().simple_bind(plan_memory=planned, **shapes)
        _fill(exe)
        exe.forward(is_train=True)
        exe.backward()
        results.append([o.asnumpy() for o in exe.outputs]
                       + [g.asnumpy() for g in exe.grad_dict.values()])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    unplanned = build().simple_bind(plan_memory=False, **shapes).memory_report()
    assert unplanned["planned_bytes"] == unplanned["unplanned_bytes"]


def test_mirror_saves_memory_with_identical_results():
    plain = _cheap_chain().simple_bind(data=(64, 128))
    mirrored = _cheap_chain().simple_bind(data=(64, 128), mirror=True)
    for exe in (plain, mirrored):
        _fill(exe)
        exe.forward(is_train=True)
        exe.backward()
    saved = plain.memory_report()["planned_bytes"] - mirrored.memory_report()["planned_bytes"]
    assert saved > 0.3 * plain.memory_report()["planned_bytes"]
    for name in plain.grad_dict:
        np.testing.assert_array_equal(plain.grad_dict[name].asnumpy(),
                                      mirrored.grad_dict[name].asnumpy())
    assert "Total" in mirrored.debug_str() and "MB planned" in mirrored.debug_str()


def test_random_ops_are_never_mirrored():
    op = get_op("random_uniform")
    assert not is_mirrorable(Node(op, "r", op.parse_attrs({})))
    tanh = get_op("tanh")
    assert is_mirrorable(Node(tanh, "t", tanh.parse_attrs({})))
    assert not is_mirrorable(Node(tanh, "t", tanh.parse_attrs({}),
                                  user_attrs={"__force_mirroring__": "False"}))


def test_outputs_and_gradients_are_never_overwritten_by_reuse():
    exe = _chain(5).simple_bind(data=(4, 32))
    _fill(exe)
    exe.forward(is_train=True)
    first = exe.outputs[0].asnumpy()
    exe.backward()
    assert_almost_equal(exe.outputs[0], first)


def test_memory_budget_turns_on_recompute_only_when_needed():
    plain = _cheap_chain().simple_bind(data=(64, 128)).memory_report()["planned_bytes"]
    roomy = _cheap_chain().simple_bind(data=(64, 128), mirror=plain * 2)
    tight = _cheap_chain().simple_bind(data=(64, 128), mirror=plain // 2)
    assert roomy.memory_report()["planned_bytes"] == plain
    assert tight.memory_report()["planned_bytes"] < plain
