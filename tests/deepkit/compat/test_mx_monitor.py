"""``mx.monitor.Monitor`` on executors and through ``Module``, as in MXNet 1.9.1."""
import logging

import numpy as np
import pytest

from deepkit.compat import mxnet as mx


def _net():
    data = mx.sym.var("data")
    fc = mx.sym.FullyConnected(data, num_hidden=3, name="fc")
    return mx.sym.SoftmaxOutput(mx.sym.relu(fc, name="act"), name="softmax")


def _bound(rng):
    exe = _net().simple_bind(mx.cpu(), data=(4, 5), softmax_label=(4,))
    exe.arg_dict["data"][:] = rng.normal(size=(4, 5))
    exe.arg_dict["fc_weight"][:] = rng.normal(size=(3, 5))
    exe.arg_dict["softmax_label"][:] = np.array([0, 1, 2, 0])
    return exe


def test_collects_outputs_and_arguments_with_the_default_statistic():
    exe = _bound(np.random.default_rng(0))
    mon = mx.monitor.Monitor(1, pattern=".*output|fc_weight")
    mon.install(exe)
    mon.install(exe)  # a second install adds nothing
    mon.tic()
    exe.forward(is_train=True)
    result = mon.toc()
    names = [name for _, name, _ in result]
    assert names == ["fc_output", "act_output", "softmax_output", "fc_weight"]
    assert all(step == 1 for step, _, _ in result)
    fc = exe.arg_dict["data"].asnumpy() @ exe.arg_dict["fc_weight"].asnumpy().T
    values = {name: text for _, name, text in result}
    expected = np.linalg.norm(fc) / np.sqrt(fc.size)
    assert values["fc_output"].endswith("\t")
    assert float(values["fc_output"]) == pytest.approx(expected, rel=1e-5)
    weight = exe.arg_dict["fc_weight"].asnumpy()
    assert float(values["fc_weight"]) == pytest.approx(np.sqrt((weight ** 2).mean()), rel=1e-5)


def test_interval_sort_monitor_all_and_a_custom_statistic():
    exe = _bound(np.random.default_rng(1))
    mon = mx.mon.Monitor(2, stat_func=lambda x: mx.nd.max(x), pattern="fc_.*", sort=True,
                         monitor_all=True)
    mon.install(exe)
    collected = []
    for _ in range(5):
        mon.tic()
        exe.forward(is_train=True)
        exe.backward()
        collected.append(mon.toc())
    assert [bool(c) for c in collected] == [True, False, True, False, True]
    names = [name for _, name, _ in collected[0]]
    assert names == sorted(names)
    # node inputs (monitor_all) come as <node>_<input>, then toc adds the arguments
    assert {"fc_data", "fc_weight", "fc_bias", "fc_output"} <= set(names)
    weight_max = exe.arg_dict["fc_weight"].asnumpy().max()
    assert any(n == "fc_weight" and float(t) == pytest.approx(weight_max)
               for _, n, t in collected[4])


def test_without_monitor_all_inputs_are_not_reported():
    exe = _bound(np.random.default_rng(2))
    mon = mx.monitor.Monitor(1, pattern="fc_data")
    mon.install(exe)
    mon.tic()
    exe.forward()
    assert mon.toc() == []


def test_arguments_are_checked_and_bad_statistics_named():
    with pytest.raises(ValueError, match="interval must be a positive int.*got 0"):
        mx.monitor.Monitor(0)
    with pytest.raises(TypeError, match="stat_func must be callable"):
        mx.monitor.Monitor(1, stat_func="norm")
    exe = _bound(np.random.default_rng(3))
    mon = mx.monitor.Monitor(1, stat_func=lambda x: 1.0, pattern="fc_output")
    mon.install(exe)
    mon.tic()
    exe.forward()
    with pytest.raises(TypeError, match="for 'fc_output' it returned float"):
        mon.toc()


def _iter(n=40, batch=10):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    return mx.io.NDArrayIter(x, y, batch, label_name="softmax_label")


def test_module_fit_prints_every_interval(caplog):
    mod = mx.mod.Module(_net())
    mon = mx.monitor.Monitor(3, pattern="fc_output|fc_weight")
    with caplog.at_level(logging.INFO):
        mod.fit(_iter(), num_epoch=2, monitor=mon,
                optimizer_params={"learning_rate": 0.1})
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Batch:")]
    # 4 batches an epoch, 8 in all: tic counts 1..8 and batches 0, 3, 6 are collected
    steps = sorted({int(line.split()[1]) for line in lines})
    assert steps == [1, 4, 7]
    assert sum("fc_output" in line for line in lines) == 3
    assert sum("fc_weight" in line for line in lines) == 3


def test_module_install_monitor_in_the_step_by_step_api():
    it = _iter()
    mod = mx.mod.Module(_net())
    mod.bind(data_shapes=it.provide_data, label_shapes=it.provide_label)
    mod.init_params()
    mon = mx.monitor.Monitor(1, pattern="act_output")
    mod.install_monitor(mon)
    batch = next(iter(it))
    mon.tic()
    mod.forward(batch, is_train=False)
    result = mon.toc()
    out = mod.get_outputs()[0]
    assert [name for _, name, _ in result] == ["act_output"]
    assert out.shape == (10, 3)
    with pytest.raises(TypeError, match="expected an mx.monitor.Monitor, got str"):
        mod.install_monitor("mon")
