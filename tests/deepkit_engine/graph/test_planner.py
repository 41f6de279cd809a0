"""The memory planner on hand-built graphs: memory is reused when lifetimes do not overlap
and never when they do (whole freed buffers, or offsets in one packed arena), in-place
outputs take their input's buffer, and the plan needs fewer bytes than one buffer per
entry."""
import numpy as np
import pytest

from .graphs import apply, lifetimes, plan, var

X = np.zeros((4, 8), np.float32)


def _chain(ops=("sin", "cos", "exp", "tanh", "sin")):
    """x -> op0 -> op1 -> ... ; returns the variable and the nodes in order."""
    x = var("x")
    nodes, h = [], x
    for i, name in enumerate(ops):
        h = apply(name, h, name=f"n{i}")
        nodes.append(h)
    return x, nodes


def _diamond():
    """Entries with overlapping lifetimes: a is read by b, c and d."""
    x = var("x")
    a = apply("sin", x, name="a")
    b = apply("cos", a, name="b")
    c = apply("exp", a, name="c")
    d = apply("multiply", b, c, name="d")
    e = apply("add", d, a, name="e")
    f = apply("tanh", e, name="f")
    return apply("square", f, name="out")


def _assert_no_overlapping_sharing(graph, order, result):
    life = lifetimes(graph, order)
    inplace_pairs = set()
    for step, node in enumerate(order):
        for k, eid in enumerate(graph.output_entry_ids(node)):
            if (node, k) in result.inplace:
                inplace_pairs.add(eid)
    entries = [e for e in life if result.storage[e] >= 0]

    def share(a, b):
        sa, sb = result.storage[a], result.storage[b]
        if sa == sb:
            return True
        if result.offsets is None:
            return False
        return (result.offsets[sa] < result.offsets[sb] + result.sizes[sb]
                and result.offsets[sb] < result.offsets[sa] + result.sizes[sa])

    for i, a in enumerate(entries):
        for b in entries[i + 1:]:
            if not share(a, b):
                continue
            first, second = sorted((a, b), key=lambda e: life[e])
            # sharing is only allowed when the first is dead before the second is written,
            # or the second is written in place over the first at the first's last read
            ok = life[first][1] < life[second][0] or (
                second in inplace_pairs and life[first][1] == life[second][0])
            assert ok, (graph.entry_name(first), life[first], graph.entry_name(second),
                        life[second])


def test_buffer_reused_when_lifetimes_do_not_overlap():
    x, (n0, n1, n2, n3, n4) = _chain()
    graph, order, result = plan([(n4, 0)], {"x": X}, allow_inplace=False, pack=False)
    sid = {n.name: result.storage[graph.entry_id(n)] for n in (n0, n1, n2, n3)}
    # n0 dies when n1 is written, so n2 takes n0's buffer; n1 and n0 overlap at n1
    assert sid["n2"] == sid["n0"] and sid["n3"] == sid["n1"]
    assert sid["n0"] != sid["n1"] and sid["n1"] != sid["n2"]
    assert len(result.sizes) == 2
    _assert_no_overlapping_sharing(graph, order, result)


def test_packed_arena_reuses_offsets_when_lifetimes_do_not_overlap():
    x, (n0, n1, n2, n3, n4) = _chain()
    graph, order, result = plan([(n4, 0)], {"x": X}, allow_inplace=False)
    off = {n.name: result.offsets[result.storage[graph.entry_id(n)]] for n in (n0, n1, n2, n3)}
    assert off["n0"] != off["n1"] and off["n1"] != off["n2"]
    assert len(set(off.values())) == 2
    assert result.planned_bytes == result.arena_bytes == 2 * X.nbytes
    _assert_no_overlapping_sharing(graph, order, result)


def test_never_shared_while_both_live():
    out = _diamond()
    for inplace, pack in ((False, False), (True, False), (False, True), (True, True)):
        graph, order, result = plan([(out, 0)], {"x": X}, allow_inplace=inplace, pack=pack)
        _assert_no_overlapping_sharing(graph, order, result)
        a, b, c = (graph.entry_id(n) for n in order[:3])
        assert len({result.storage[a], result.storage[b], result.storage[c]}) == 3


def test_in_place_takes_the_dying_input_buffer():
    x, nodes = _chain()
    graph, order, result = plan([(nodes[-1], 0)], {"x": X})
    # every op after the first runs in place over its input: one buffer for the chain
    assert {(n.name, k) for n, k in result.inplace} == {("n1", 0), ("n2", 0), ("n3", 0)}
    assert len({result.storage[graph.entry_id(n)] for n in nodes[:-1]}) == 1
    _assert_no_overlapping_sharing(graph, order, result)


def test_no_in_place_over_an_input_that_is_read_later():
    out = _diamond()
    graph, order, result = plan([(out, 0)], {"x": X})
    names = {n.name for n, _ in result.inplace}
    assert "b" not in names and "c" not in names  # a is still read by c and e
    assert "f" in names and "e" in names


def test_external_entries_get_no_buffer():
    x, nodes = _chain()
    graph, order, result = plan([(nodes[-1], 0)], {"x": X}, external_entries=[(nodes[1], 0)])
    assert result.storage[graph.entry_id(x)] == -1
    assert result.storage[graph.entry_id(nodes[-1])] == -1
    assert result.storage[graph.entry_id(nodes[1])] == -1
    assert result.entry_bytes[graph.entry_id(nodes[0])] == X.nbytes


@pytest.mark.parametrize("build", [lambda: _chain()[1][-1], _diamond])
def test_planned_bytes_below_unplanned(build):
    out = build()
    _, _, shared = plan([(out, 0)], {"x": X})
    _, _, separate = plan([(out, 0)], {"x": X}, share=False)
    assert shared.planned_bytes < shared.unplanned_bytes
    assert separate.planned_bytes == separate.unplanned_bytes == shared.unplanned_bytes
    assert len(set(s for s in separate.storage if s >= 0)) == len(separate.sizes)
    assert not separate.inplace


def test_a_freed_buffer_grows_for_a_larger_entry():
    x = var("x")
    small = apply("sin", x, name="small")
    big = apply("tile", small, reps=(1, 2), name="big")
    bigger = apply("tile", big, reps=(1, 2), name="bigger")
    out = apply("sum", bigger, name="out")
    graph, order, result = plan([(out, 0)], {"x": X}, pack=False)
    s, g = graph.entry_id(small), graph.entry_id(bigger)
    assert result.storage[s] == result.storage[g]
    assert result.sizes[result.storage[s]] == 4 * X.nbytes
