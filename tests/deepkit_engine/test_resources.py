"""Op resources: which ones tie an op to the moment it runs, and the executor's choice of
BLAS threads for matrix products (``blas_wide``)."""
import numpy as np
import pytest

import deepkit_engine as dk
from deepkit_engine import ndarray as nd
from deepkit_engine import resources, threads
from deepkit_engine import symbol as sym
from deepkit_engine.base import DeepkitError
from deepkit_engine.graph.mirror import can_recompute
from deepkit_engine.graph.node import Node
from deepkit_engine.ops.registry import get_op


def test_only_how_resources_leave_an_op_free_to_recompute_and_prepare():
    assert not resources.bound_to_run(())
    assert not resources.bound_to_run(("blas_wide",))
    for name in ("rng", "is_train", "replica"):
        assert resources.bound_to_run((name, "blas_wide"))
    fc = get_op("FullyConnected")
    assert fc.resources == ("blas_wide",)
    data, weight = Node(None, "data"), Node(None, "w")
    node = Node(fc, "fc", fc.parse_attrs({"num_hidden": 2, "no_bias": True}),
                [(data, 0), (weight, 0)])
    assert can_recompute(node)
    dropout = get_op("Dropout")
    assert not can_recompute(Node(dropout, "drop", dropout.parse_attrs({}), [(data, 0)]))


def test_prepare_invoke_takes_an_op_whose_resources_only_choose_how():
    op = get_op("FullyConnected")
    x = nd.array(np.arange(6.0).reshape(2, 3))
    w = nd.array(np.ones((4, 3)))
    out = nd.zeros((2, 4))
    step = nd.prepare_invoke(op, [x, w], op.parse_attrs({"num_hidden": 4, "no_bias": True}),
                             out)
    step()
    np.testing.assert_allclose(out.asnumpy(), np.arange(6.0).reshape(2, 3) @ np.ones((3, 4)))
    dropout = get_op("Dropout")
    with pytest.raises(DeepkitError, match="Dropout needs resources"):
        nd.prepare_invoke(dropout, [x], dropout.parse_attrs({}), nd.zeros((2, 3)))


def _mlp():
    net = sym.FullyConnected(sym.Variable("data"), num_hidden=8, name="fc1")
    return sym.FullyConnected(sym.Activation(net, act_type="relu"), num_hidden=3, name="fc2")


def _cnn():
    net = sym.Convolution(sym.Variable("data"), kernel=(3, 3), num_filter=4, name="conv")
    return sym.FullyConnected(sym.Flatten(net), num_hidden=3, name="fc")


@pytest.mark.parametrize("net, shape, wide", [
    (_mlp, (4, 5), True),  # matrix products only: BLAS's threads may take medium products
    (_cnn, (4, 1, 6, 6), False),  # a convolution keeps both cores busy itself: one thread
])
def test_executors_choose_blas_threads_from_their_graph(monkeypatch, net, shape, wide):
    seen = []
    real = threads.matmul

    def spy(xp, a, b, out=None, wide=True):
        seen.append(wide)
        return real(xp, a, b, out, wide)
    monkeypatch.setattr(threads, "matmul", spy)
    exe = net().simple_bind(dk.cpu(), data=shape)
    rng = np.random.default_rng(0)
    for arr in exe.arg_dict.values():
        arr[:] = rng.normal(size=arr.shape)
    exe.forward(is_train=True)
    exe.backward(nd.ones(exe.outputs[0].shape))
    dk.nd.waitall()
    assert seen and set(seen) == {wide}, seen  # forward, data and weight gradients alike
    before = exe.outputs[0].asnumpy()
    exe.forward(is_train=False)  # the values do not depend on the choice's history
    np.testing.assert_array_equal(exe.outputs[0].asnumpy(), before)
