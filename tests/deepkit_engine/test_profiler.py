"""The profiler: per-op counts and times, forward/backward apart, traces, MXNet's API."""
import json
import threading

import numpy as np
import pytest

import deepkit_engine as dk
from deepkit_engine import engine as engine_mod
from deepkit_engine import nd, profiler, sym

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _stopped():
    """Every test starts and ends with no profiler running and a fresh global session."""
    yield
    profiler.set_state("stop")
    profiler._session = profiler.Profile()
    assert engine_mod._profiler is None


def _mlp_executor(batch=8):
    data = sym.Variable("data")
    fc1 = sym.FullyConnected(data, num_hidden=16, name="fc1")
    act = sym.Activation(fc1, act_type="relu", name="relu1")
    fc2 = sym.FullyConnected(act, num_hidden=4, name="fc2")
    net = sym.SoftmaxOutput(fc2, name="softmax")
    exe = net.simple_bind(dk.cpu(), data=(batch, 10))
    exe.arg_dict["data"][:] = np.random.default_rng(0).normal(size=(batch, 10))
    return exe


def _rows(rows):
    return {r["name"]: r for r in rows}


def test_executor_forward_and_backward_steps_are_counted_apart():
    exe = _mlp_executor()
    with profiler.profile() as p:
        for _ in range(3):
            exe.forward(is_train=True)
            exe.backward()
        exe.outputs[0].asnumpy()
    stats = p.stats()
    fwd = _rows(stats["operators"]["forward"])
    bwd = _rows(stats["operators"]["backward"])
    assert fwd["FullyConnected"]["count"] == 6  # two layers, three passes
    assert fwd["Activation"]["count"] == 3
    assert fwd["SoftmaxOutput"]["count"] == 3
    assert "_backward_SoftmaxOutput" in bwd and bwd["_backward_SoftmaxOutput"]["count"] == 3
    assert "FullyConnected" not in bwd and "_backward_SoftmaxOutput" not in fwd
    for row in list(fwd.values()) + list(bwd.values()):
        assert row["min_ms"] <= row["avg_ms"] <= row["max_ms"]
        assert row["total_ms"] == pytest.approx(row["avg_ms"] * row["count"])
    passes = _rows(stats["executor_passes"])
    assert passes["executor forward"]["count"] == 3
    assert passes["executor backward"]["count"] == 3
    # the steps run inside their pass: their time cannot exceed the pass's
    fwd_steps = sum(r["total_ms"] for r in fwd.values())
    assert fwd_steps <= passes["executor forward"]["total_ms"] + 1e-6
    pct = sum(r["percent"] for ph in stats["operators"].values() for r in ph)
    assert pct == pytest.approx(100.0)


def test_layers_group_forward_and_backward_nodes_by_name_prefix():
    exe = _mlp_executor()
    with profiler.profile(layer_names=["fc1", "fc2"]) as p:
        exe.forward(is_train=True)
        exe.backward()
        exe.outputs[0].asnumpy()
    layers = _rows(p.stats()["layers"])
    assert layers["fc1"]["forward_ms"] > 0 and layers["fc1"]["backward_ms"] > 0
    assert layers["fc2"]["forward_ms"] > 0 and layers["fc2"]["backward_ms"] > 0
    assert "relu1" in layers and "softmax" in layers  # not prefixed by a layer: own rows
    assert profiler.layer_of("fc2_backward_dot0", ["fc1", "fc2"]) == "fc2"
    assert profiler.layer_of("dense_1_backward_sum0", ["dense", "dense_1"]) == "dense_1"
    assert profiler.layer_of("dense_gradcopy", ["dense", "dense_1"]) == "dense"
    assert profiler.layer_of("activation1", ["dense"]) == "activation1"


def test_imperative_ops_are_counted_with_their_queue_wait():
    a = nd.ones((50, 50))
    a.wait_to_read()
    with profiler.profile() as p:
        for _ in range(5):
            b = a + a
            c = nd.exp(b)
        c.asnumpy()
    imperative = _rows(p.stats()["operators"]["imperative"])
    assert imperative["add"]["count"] == 5
    assert imperative["exp"]["count"] == 5
    waits = _rows(p.stats()["queue_wait"])
    assert waits["add"]["count"] == 5 and waits["add"]["min_ms"] >= 0.0


def test_ops_outside_the_session_are_not_recorded():
    a = nd.ones((10,))
    with profiler.profile() as p:
        (a * 2).asnumpy()
    (a - 1).asnumpy()
    names = _rows(p.stats()["operators"]["imperative"])
    assert "_mul_scalar" in names and "_minus_scalar" not in names


def test_memory_counts_the_bytes_of_new_outputs_only_when_asked():
    a = nd.ones((100, 10))
    a.wait_to_read()
    with profiler.profile(profile_memory=True) as p:
        b = a + a
        out = nd.zeros((100, 10))
        nd.elemwise_add(a, a, out=out)
        b.asnumpy()
        out.asnumpy()
    memory = _rows(p.stats()["memory"])
    assert memory["add"]["total_bytes"] == 100 * 10 * 4
    assert "elemwise_add" not in memory  # out= allocates nothing
    with profiler.profile() as q:
        (a + a).asnumpy()
    assert q.stats()["memory"] == []


def test_memory_counts_an_executors_planned_buffers_at_bind():
    with profiler.profile(profile_memory=True) as p:
        exe = _mlp_executor(batch=32)
    memory = _rows(p.stats()["memory"])
    assert memory["executor bind"]["total_bytes"] == sum(b.nbytes for b in exe._pool)


def test_trace_is_chrome_json_with_one_row_per_worker_thread(tmp_path):
    big = nd.ones((600, 600))  # over the inline limit: runs on worker threads
    big.wait_to_read()
    path = tmp_path / "trace.json"
    exe = _mlp_executor()
    with profiler.profile(filename=str(path)):
        results = [big * float(k) for k in range(6)]
        exe.forward(is_train=True)
        exe.backward()
        for r in results:
            r.wait_to_read()
        exe.outputs[0].asnumpy()
    doc = json.loads(path.read_text())
    events = doc["traceEvents"]
    complete = [e for e in events if e["ph"] == "X"]
    assert complete and all({"name", "ts", "dur", "pid", "tid", "args"} <= set(e)
                            for e in complete)
    thread_names = {e["tid"]: e["args"]["name"] for e in events if e["name"] == "thread_name"}
    scalar = [e for e in complete if e["args"].get("op") == "_mul_scalar"]
    assert len(scalar) == 6
    assert all("queue_wait_us" in e["args"] for e in scalar)
    assert all(thread_names[e["tid"]].startswith("deepkit-engine-cpu") for e in scalar)
    steps = [e for e in complete if e["cat"] in ("forward", "backward")]
    assert {e["args"]["node"] for e in steps} >= {"fc1", "fc2", "relu1", "softmax"}
    assert len({e["tid"] for e in complete}) == len({e["tid"] for e in complete
                                                     if e["tid"] in thread_names})


def test_dumps_table_and_json_name_the_ops():
    exe = _mlp_executor()
    with profiler.profile() as p:
        exe.forward(is_train=True)
        exe.backward()
        exe.outputs[0].asnumpy()
    table = p.dumps()
    assert "operator: forward" in table and "operator: backward" in table
    assert "FullyConnected" in table and "_backward_SoftmaxOutput" in table
    doc = json.loads(p.dumps(format="json"))
    assert doc["Time"]["operator_forward"]["FullyConnected"]["Count"] == 2
    assert doc["Unit"] == {"Time": "ms", "Memory": "bytes"}
    by_count = p.stats(sort_by="count", ascending=True)["operators"]["forward"]
    assert [r["count"] for r in by_count] == sorted(r["count"] for r in by_count)
    p.dumps(reset=True)
    assert p.stats()["operators"]["forward"] == []


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="'state'.*'run', 'stop'.*'running'"):
        profiler.set_state("running")
    with pytest.raises(ValueError, match="'format'"):
        profiler.dumps(format="csv")
    with pytest.raises(ValueError, match="'sort_by'.*did you mean 'total'"):
        profiler.dumps(sort_by="totl")
    with pytest.raises(TypeError, match="'profile_al'.*did you mean 'profile_all'"):
        profiler.set_config(profile_al=True)
    with pytest.raises(ValueError, match="'filename'"):
        profiler.profile().dump()


def test_only_one_session_runs_at_a_time():
    with profiler.profile():
        with pytest.raises(dk.DeepkitError, match="another profiling session"):
            profiler.set_state("run")
    assert engine_mod._profiler is None


def test_mxnet_tutorial_flow(tmp_path):
    """MXNet's profiler tutorial: set_config, run, work, stop, dump, dumps."""
    path = tmp_path / "profile_output.json"
    profiler.set_config(profile_all=True, aggregate_stats=True, continuous_dump=True,
                        filename=str(path))
    exe = _mlp_executor()
    profiler.set_state("run")
    assert profiler.get_state() == "run"
    exe.forward(is_train=True)
    exe.backward()
    profiler.pause()
    exe.forward(is_train=True)  # not recorded
    profiler.resume()
    x = nd.ones((4, 4)) + 1
    nd.waitall()
    profiler.set_state("stop")
    assert profiler.dump() == str(path)
    doc = json.loads(path.read_text())
    assert any(e.get("cat") == "forward" for e in doc["traceEvents"])
    text = profiler.dumps()
    assert "FullyConnected" in text and "_plus_scalar" in text
    doc = json.loads(profiler.dumps(format="json"))
    assert doc["Time"]["executor"]["executor forward"]["Count"] == 1  # the paused one is not
    assert doc["Time"]["operator_imperative"]["_plus_scalar"]["Count"] == 1
    assert x.asnumpy()[0, 0] == 2


def test_mx_namespace_exposes_the_profiler():
    from deepkit.compat import mxnet as mx
    assert mx.profiler is profiler
    assert callable(mx.profiler.set_config) and callable(mx.profiler.dumps)


def test_user_annotations_appear_in_the_trace():
    with profiler.profile() as p:
        domain = profiler.Domain("data")
        task = domain.new_task("decode")
        task.start()
        task.stop()
        with profiler.scope("step"):
            pass
        domain.new_marker("here").mark()
        counter = domain.new_counter("queue", 3)
        counter += 2
        counter -= 1
    events = p.trace()["traceEvents"]
    assert {e["name"] for e in events if e.get("cat") == "user"} == {"decode", "step"}
    assert [e["ph"] for e in events if e.get("cat") == "marker"] == ["i"]
    values = [e["args"]["value"] for e in events if e.get("ph") == "C"]
    assert values == [3, 5, 4] and counter.value == 4
    with pytest.raises(dk.DeepkitError, match="before start"):
        profiler.Task(domain, "x").stop()


def test_off_means_the_engine_hook_is_none_and_ops_still_run():
    assert engine_mod._profiler is None
    assert (nd.ones((3,)) * 3).asnumpy().tolist() == [3.0, 3.0, 3.0]
    errors = []

    def worker():
        try:
            with profiler.profile() as p:
                (nd.ones((2,)) + 1).asnumpy()
            assert p.stats()["operators"]["imperative"]
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)
    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert not errors and engine_mod._profiler is None
