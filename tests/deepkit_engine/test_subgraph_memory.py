"""Loop and branch bodies run with planned memory: intermediates share one arena."""
import numpy as np

from deepkit_engine import symbol as sym
from deepkit_engine.control_flow import Subgraph


def _chain(length):
    x = sym.Variable("x")
    y = x
    for k in range(length):
        y = sym.tanh(y * 1.5, name=f"t{k}") if k % 2 else sym.relu(y - 0.25, name=f"r{k}")
    return sym.Group([y, sym.sum(y)])


def test_body_intermediates_share_an_arena_and_heads_are_the_loops_own():
    body = Subgraph(_chain(8).tojson(), "foreach")
    x = np.random.default_rng(0).normal(size=(64, 256)).astype(np.float32)
    first = body.run(np, {"x": x})
    shapes, _, memory = body._plan({"x": x})
    entry = x.nbytes
    intermediates = sum(b for e, b in enumerate(memory.entry_bytes) if memory.storage[e] >= 0)
    assert intermediates >= 14 * entry  # 16 ops, two of them heads
    assert memory.arena_bytes <= 3 * entry  # a chain needs two live buffers at a time
    expected = x
    for k in range(8):
        expected = np.tanh(expected * 1.5) if k % 2 else np.maximum(expected - 0.25, 0)
    np.testing.assert_allclose(first[0], expected, rtol=1e-6)
    np.testing.assert_allclose(first[1], expected.sum(dtype=np.float64), rtol=1e-4)
    second = body.run(np, {"x": -x})  # a new run does not overwrite the first one's heads
    np.testing.assert_allclose(first[0], expected, rtol=1e-6)
    assert not np.shares_memory(first[0], second[0])
