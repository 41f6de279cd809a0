"""Segmented backward: the backward program pushed as several engine operations.

The gradients must be identical to the unsegmented pass (same kernels, same
order), each piece must be an engine operation of its own, and work that
reads the gradients a piece completes must be able to run before the later
pieces are done.
"""
import os
import sys
import threading

import numpy as np
import pytest

from deepkit_engine import cpu, engine, nd, profiler, sym
from deepkit_engine.base import DeepkitError
from deepkit_engine.executor import Executor
from deepkit_engine.replicas import ReplicaGroup


def _mlp():
    data = sym.Variable("data")
    h = sym.Activation(sym.FullyConnected(data, num_hidden=8, name="fc1"), act_type="relu")
    h = sym.Activation(sym.FullyConnected(h, num_hidden=6, name="fc2"), act_type="tanh")
    return sym.SoftmaxOutput(sym.FullyConnected(h, num_hidden=3, name="fc3"), name="softmax")


def _shared_fan_out():
    """One weight used by two layers, and an activation read by two branches."""
    data = sym.Variable("data")
    w = sym.Variable("w")
    h1 = sym.FullyConnected(data, weight=w, num_hidden=5, no_bias=True, name="first")
    a = sym.Activation(h1, act_type="tanh")
    h2 = sym.FullyConnected(a, weight=w, num_hidden=5, no_bias=True, name="second")
    left = sym.FullyConnected(h2, num_hidden=4, name="left")
    right = sym.Activation(sym.FullyConnected(a, num_hidden=4, name="right"), act_type="sigmoid")
    return sym.MakeLoss(sym.sum(left * right + left), name="loss")


def _batchnorm():
    data = sym.Variable("data")
    h = sym.BatchNorm(sym.FullyConnected(data, num_hidden=7, name="fc1"), name="bn",
                      fix_gamma=False)
    h = sym.Activation(h, act_type="relu")
    return sym.SoftmaxOutput(sym.FullyConnected(h, num_hidden=3, name="fc2"), name="softmax")


NETS = {"mlp": _mlp, "shared_fan_out": _shared_fan_out, "batchnorm": _batchnorm}


def _bind(net, grad_req="write", mirror=False, ctx=None, rows=6, seed=0):
    ctx = ctx or cpu(0)
    arg_shapes, _, aux_shapes = net.infer_shape(data=(rows, 5))
    rng = np.random.default_rng(seed)
    args, grads = {}, {}
    for name, shape in zip(net.list_arguments(), arg_shapes):
        if name.endswith("label"):
            value = rng.integers(0, 3, shape).astype(np.float32)
        else:
            value = rng.normal(size=shape).astype(np.float32)
        args[name] = nd.array(value, ctx=ctx)
        if not name.endswith("label"):
            grads[name] = nd.array(rng.normal(size=shape).astype(np.float32), ctx=ctx)
    aux = {name: nd.array(rng.uniform(0.5, 1.5, shape).astype(np.float32), ctx=ctx)
           for name, shape in zip(net.list_auxiliary_states(), aux_shapes)}
    return Executor(net, ctx, args, grads, grad_req, aux, mirror=mirror)


def _by_parameter(exe):
    """One group per argument with a gradient, last arguments first (as buckets are)."""
    return [[name] for name in reversed(list(exe.grad_dict))]


def _train(exe, rounds=1):
    for _ in range(rounds):
        exe.forward(is_train=True)
        exe.backward()
    result = {f"grad:{k}": v.asnumpy() for k, v in exe.grad_dict.items()}
    result.update({f"aux:{k}": v.asnumpy() for k, v in exe.aux_dict.items()})
    result.update({f"out{i}": o.asnumpy() for i, o in enumerate(exe.outputs)})
    return result


def _assert_identical(expected, got):
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("grad_req, mirror, rounds", [
    ("write", False, 2), ("add", False, 2), ("write", True, 1)])
def test_segmented_gradients_equal_the_single_pass(name, grad_req, mirror, rounds):
    net = NETS[name]()
    expected = _train(_bind(net, grad_req, mirror), rounds)
    exe = _bind(net, grad_req, mirror)
    exe.set_backward_segments(_by_parameter(exe))
    assert exe.num_backward_segments > 2
    _assert_identical(expected, _train(exe, rounds))


def test_groups_cut_where_their_last_gradient_is_complete():
    net = _mlp()
    exe = _bind(net)
    assert exe.backward_segments is None and exe.num_backward_segments == 1
    groups = [["fc3_weight", "fc3_bias"], ["fc2_weight", "fc2_bias"],
              ["fc1_weight", "fc1_bias", "data"]]
    exe.set_backward_segments(groups)
    assert exe.backward_segments == tuple(tuple(g) for g in groups)
    assert exe.num_backward_segments == 3
    # one group: nothing left to cut (everything completes in the last step)
    exe.set_backward_segments([list(exe.grad_dict)])
    assert exe.num_backward_segments == 1
    exe.set_backward_segments(None)
    assert exe.backward_segments is None and exe.num_backward_segments == 1


def test_names_without_a_gradient_are_refused():
    exe = _bind(_mlp())
    with pytest.raises(DeepkitError, match="'softmax_label' is not an argument with a gradient"):
        exe.set_backward_segments([["fc3_weight"], ["softmax_label"]])


def test_each_piece_is_an_engine_operation_of_its_own():
    exe = _bind(_mlp())
    exe.set_backward_segments([["fc3_weight", "fc3_bias"], ["fc2_weight", "fc2_bias"]])
    pieces = exe.num_backward_segments
    assert pieces == 3
    exe.forward(is_train=True)
    engine.wait_all()
    with profiler.profile() as p:
        with engine.bulk():  # pieces are never gathered into a bulk
            exe.backward()
        engine.wait_all()
    passes = [e for e in p.trace()["traceEvents"] if e.get("name") == "executor backward"]
    assert len(passes) == pieces
    steps = [e for e in p.trace()["traceEvents"] if e.get("cat") == "backward"]
    assert steps  # the per-step profile of backward still works


def test_work_on_the_first_gradients_runs_before_the_last_piece_is_done():
    """A reader of fc3's gradient (on the communication thread) starts during backward.

    The monitor holds the last piece (fc1's backward) until the reader ran: with one
    backward operation that reader could only start afterwards, and the wait would
    give up.
    """
    exe = _bind(_mlp())
    exe.set_backward_segments([["fc3_weight", "fc3_bias"], ["fc2_weight", "fc2_bias"]])
    exe.forward(is_train=True)
    engine.wait_all()
    events = []
    reader_ran = threading.Event()
    grad = exe.grad_dict["fc3_weight"]
    seen = {}

    def monitor(name, _):
        if name.startswith("fc1_backward") and "held" not in seen:
            seen["held"] = reader_ran.wait(30)
            events.append("last piece ran")

    def reader():
        seen["value"] = grad._data.copy()
        events.append("reader ran")
        reader_ran.set()
    exe.set_monitor_callback(monitor)
    exe.backward()
    engine.push(reader, reads=(grad._var,), name="reader", worker=engine.COMM_WORKER)
    engine.wait_all()
    assert seen["held"] is True
    assert events[:2] == ["reader ran", "last piece ran"]
    np.testing.assert_array_equal(seen["value"], grad.asnumpy())


def test_monitor_reports_the_same_names_in_pieces():
    def names_of(exe):
        names = []
        exe.set_monitor_callback(lambda name, _: names.append(name))
        exe.forward(is_train=True)
        exe.backward()
        engine.wait_all()
        return names
    net = _mlp()
    plain = names_of(_bind(net))
    exe = _bind(net)
    exe.set_backward_segments(_by_parameter(exe))
    assert names_of(exe) == plain


def test_synchronized_batchnorm_replicas_in_pieces_equal_one_pass():
    """Two devices of one replica group meet mid-pass in the piece holding SyncBatchNorm."""
    data = sym.Variable("data")
    h = sym.SyncBatchNorm(sym.FullyConnected(data, num_hidden=6, name="fc1"), name="bn",
                          fix_gamma=False)
    net = sym.SoftmaxOutput(sym.FullyConnected(sym.Activation(h, act_type="relu"),
                                               num_hidden=3, name="fc2"), name="softmax")

    def run(segmented):
        group = ReplicaGroup(2, [0.5, 0.5])
        exes = []
        for k in range(2):
            exe = _bind(net, ctx=cpu(k), rows=4, seed=k)
            exe.replica = group.replica(k)
            if segmented:
                exe.set_backward_segments([["fc2_weight", "fc2_bias"], ["bn_gamma", "bn_beta"]])
                assert exe.num_backward_segments == 3
            exes.append(exe)
        for exe in exes:
            exe.forward(is_train=True)
        for exe in exes:
            exe.backward()
        return [{k: v.asnumpy() for k, v in exe.grad_dict.items()} for exe in exes]
    for plain, pieces in zip(run(False), run(True)):
        _assert_identical(plain, pieces)


def test_naive_engine_runs_the_pieces_in_order():
    net = _batchnorm()
    expected = _train(_bind(net))
    previous = engine.set_engine("naive")
    try:
        exe = _bind(net)
        exe.set_backward_segments(_by_parameter(exe))
        got = _train(exe)
    finally:
        engine.set_engine(previous)
    _assert_identical(expected, got)


# -- the engine's side: ungathered pushes and the communication thread ----------------------

def test_communication_work_runs_on_its_own_thread_after_its_inputs():
    a = nd.ones((3,))
    b = a * 2  # compute worker
    seen = []

    def comm():
        seen.append((threading.current_thread().name, b._data.copy()))
    with engine.bulk():  # never gathered with the compute work around it
        engine.push(comm, reads=(b._var,), name="comm", worker=engine.COMM_WORKER)
        c = b + 1
    np.testing.assert_array_equal(c.asnumpy(), [3, 3, 3])
    engine.wait_all()
    (thread, value), = seen
    assert "comm" in thread
    np.testing.assert_array_equal(value, [2, 2, 2])


def test_the_communication_thread_yields_the_core_to_compute():
    if not sys.platform.startswith("linux") or engine.COMM_NICENESS == 0:
        pytest.skip("the priority is lowered on Linux only")
    levels = []
    engine.push(lambda: levels.append(
        os.getpriority(os.PRIO_PROCESS, threading.get_native_id())),
        worker=engine.COMM_WORKER)
    engine.wait_all()
    assert levels[0] >= os.getpriority(os.PRIO_PROCESS, 0) + 1


def test_an_unknown_worker_is_refused():
    with pytest.raises(ValueError, match="worker must be None or 'comm'"):
        engine.push(lambda: None, worker="network")
