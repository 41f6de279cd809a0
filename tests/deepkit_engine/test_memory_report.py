"""``Executor.memory_report()``: the planned pool, the peak step and what is alive there."""
import numpy as np

from deepkit_engine import symbol as sym
from deepkit_engine.graph.plan_memory import MemoryReport, memory_report

from .graph.graphs import apply, plan, var


def _mlp():
    x = sym.Variable("data")
    h = sym.Activation(sym.FullyConnected(x, num_hidden=256, name="fc1"), act_type="relu",
                       name="relu1")
    h = sym.Activation(sym.FullyConnected(h, num_hidden=128, name="fc2"), act_type="tanh",
                       name="tanh2")
    return sym.SoftmaxOutput(sym.FullyConnected(h, num_hidden=10, name="fc3"), name="softmax")


def _training_report():
    return _mlp().simple_bind(data=(64, 100)).memory_report()


def test_report_is_data_and_a_table():
    report = _training_report()
    assert isinstance(report, MemoryReport)
    for key in ("planned_bytes", "unplanned_bytes", "external_bytes", "peak_bytes",
                "peak_step", "peak_node", "peak_phase", "alive", "largest", "inplace"):
        assert report[key] == report.as_dict()[key] == getattr(report, key)
    assert 0 < report.peak_bytes <= report.planned_bytes < report.unplanned_bytes
    text = str(report)
    assert "Peak at step" in text and report.peak_node in text and "why alive" in text


def test_alive_rows_explain_the_peak():
    report = _training_report()
    rows = report.alive
    assert [r["bytes"] for r in rows] == sorted((r["bytes"] for r in rows), reverse=True)
    for r in rows:
        assert set(r) == {"name", "shape", "dtype", "bytes", "why", "planned"}
        assert r["bytes"] == int(np.prod(r["shape"])) * np.dtype(r["dtype"]).itemsize
    planned = [r for r in rows if r["planned"]]
    assert sum(r["bytes"] for r in planned) == report.peak_bytes
    whys = {r["why"].split(" (")[0] for r in rows}
    assert "parameter gradient" in whys and "output" in whys
    assert report.peak_phase == "backward"
    # the largest activations at a backward peak are there because backward reads them
    assert any(r["why"].startswith("needed by backward") for r in planned)
    grads = {r["name"] for r in rows if r["why"] == "parameter gradient"}
    assert grads == {f"{n} gradient" for n in _mlp().list_arguments() if n != "softmax_label"}


def test_inference_peak_is_in_forward():
    report = _mlp().simple_bind(data=(64, 100), grad_req="null").memory_report()
    assert report.peak_phase == "forward"
    assert not any(r["why"].startswith("needed by backward") for r in report.alive)
    assert not any(r["why"] == "parameter gradient" for r in report.alive)


def test_memory_report_of_a_hand_built_plan():
    x = var("x")
    a = apply("sin", x, name="a")
    b = apply("cos", a, name="b")
    c = apply("multiply", a, b, name="c")
    out = apply("tanh", c, name="out")
    graph, order, result = plan([(out, 0)], {"x": np.zeros((4, 8), np.float32)})
    report = memory_report(graph, order, result, [(4, 8)] * graph.num_entries,
                           [np.float32] * graph.num_entries)
    # a and b are both alive until c, written in place over a, has read them: two
    # 128-byte entries at the peak, one before and after
    assert report.peak_bytes == report.planned_bytes == 2 * 128
    assert report.peak_node in ("b", "c") and report.peak_phase == "forward"
    assert report.live_bytes == [128, 256, 256, 128]
    assert {r["name"] for r in report.alive} >= {"a_output", "b_output"}
