"""Recompute (mirror) through the executor: identical outputs, gradients and BatchNorm
moving statistics, smaller memory plans, and BatchNorm's recompute op; segments
(``mirror=True``) and the default one-pass policy."""
import numpy as np
import pytest

import deepkit_engine as dk
from deepkit_engine import symbol as sym
from deepkit_engine.graph.mirror import can_recompute, is_mirrorable
from deepkit_engine.graph.node import Node
from deepkit_engine.ops.registry import get_op


def _conv_bn(x, filters, stride, name, act=True, fix_gamma=False):
    x = sym.Convolution(x, num_filter=filters, kernel=(3, 3), stride=(stride, stride),
                        pad=(1, 1), no_bias=True, name=f"{name}_conv")
    x = sym.BatchNorm(x, fix_gamma=fix_gamma, eps=1e-5, momentum=0.8, name=f"{name}_bn")
    return sym.Activation(x, act_type="relu", name=f"{name}_relu") if act else x


def _resnet(blocks=4, filters=8, classes=5):
    """A small residual network: conv-BN-ReLU stem, residual blocks with BatchNorm."""
    x = _conv_bn(sym.Variable("data"), filters, 1, "stem")
    x = sym.Pooling(x, kernel=(2, 2), stride=(2, 2), pool_type="max", name="pool")
    for i in range(blocks):
        down = i == blocks // 2
        stride = 2 if down else 1
        width = filters * 2 if i >= blocks // 2 else filters
        out = _conv_bn(x, width, stride, f"b{i}a")
        out = _conv_bn(out, width, 1, f"b{i}b", act=False, fix_gamma=i % 2 == 1)
        short = _conv_bn(x, width, stride, f"b{i}d", act=False) if down else x
        x = sym.Activation(out + short, act_type="relu", name=f"b{i}_out")
    x = sym.Pooling(x, global_pool=True, pool_type="avg", kernel=(1, 1), name="gpool")
    x = sym.FullyConnected(sym.flatten(x), num_hidden=classes, name="fc")
    return sym.SoftmaxOutput(x, name="softmax")


def _chain(depth=12, width=64):
    """A plain chain of FullyConnected-BatchNorm-tanh layers."""
    h = sym.Variable("data")
    for i in range(depth):
        h = sym.FullyConnected(h, num_hidden=width, name=f"fc{i}")
        h = sym.BatchNorm(h, fix_gamma=False, name=f"bn{i}")
        h = sym.tanh(h, name=f"t{i}")
    return sym.sum(h * h)


def _bind(net, mirror, shapes):
    reqs = {n: ("null" if n in ("data", "softmax_label") else "write")
            for n in net.list_arguments()}
    exe = net.simple_bind(dk.cpu(), grad_req=reqs, mirror=mirror, **shapes)
    rng = np.random.default_rng(3)
    for name, arr in exe.arg_dict.items():
        if name == "softmax_label":
            arr[:] = rng.integers(0, 5, arr.shape)
        elif name.endswith("gamma"):
            arr[:] = rng.uniform(0.5, 1.5, arr.shape)
        else:
            arr[:] = rng.normal(0, 0.3, arr.shape)
    for name, arr in exe.aux_dict.items():
        arr[:] = rng.uniform(0.5, 1.5, arr.shape) if name.endswith("var") else 0.1
    return exe


def _train(exe, steps=3):
    """A few forward/backward/SGD steps; returns outputs, gradients and moving statistics."""
    for _ in range(steps):
        exe.forward(is_train=True)
        exe.backward()
        for name, grad in exe.grad_dict.items():
            exe.arg_dict[name][:] = exe.arg_dict[name] - 0.1 * grad
    return ([o.asnumpy() for o in exe.outputs],
            {k: v.asnumpy() for k, v in exe.grad_dict.items()},
            {k: v.asnumpy() for k, v in exe.aux_dict.items()})


@pytest.mark.parametrize("build,shapes", [
    (_resnet, {"data": (4, 3, 16, 16)}),
    (_resnet, {"data": (8, 3, 64, 64)}),  # activations large enough for threaded kernels
    (_chain, {"data": (8, 32)}),
])
def test_mirror_is_bit_identical_including_batchnorm_statistics(build, shapes):
    plain_out, plain_grads, plain_aux = _train(_bind(build(), False, shapes))
    mir_out, mir_grads, mir_aux = _train(_bind(build(), True, shapes))
    for a, b in zip(plain_out, mir_out):
        np.testing.assert_array_equal(a, b)
    assert plain_grads.keys() == mir_grads.keys()
    for name in plain_grads:
        np.testing.assert_array_equal(plain_grads[name], mir_grads[name], err_msg=name)
    # moving statistics updated once per training forward, as without recompute
    for name in plain_aux:
        np.testing.assert_array_equal(plain_aux[name], mir_aux[name], err_msg=name)


def test_moving_statistics_change_once_per_forward():
    exe = _bind(_resnet(), True, {"data": (4, 3, 16, 16)})
    before = exe.aux_dict["stem_bn_moving_mean"].asnumpy()
    exe.forward(is_train=True)
    after_forward = exe.aux_dict["stem_bn_moving_mean"].asnumpy()
    exe.backward()
    np.testing.assert_array_equal(exe.aux_dict["stem_bn_moving_mean"].asnumpy(), after_forward)
    assert not np.array_equal(before, after_forward)


def test_batchnorm_is_recomputed_inside_segments():
    exe = _bind(_resnet(), True, {"data": (4, 3, 16, 16)})
    names = {n.name: n.op.name for n in exe._graph.nodes if n.op is not None}
    mirrored = {k: v for k, v in names.items() if k.endswith("_mirror")}
    assert "_batch_norm_apply" in mirrored.values()
    assert "Convolution" in mirrored.values()  # heavy ops are recomputed inside segments
    assert "BatchNorm" not in mirrored.values()  # never a second training BatchNorm


@pytest.mark.parametrize("build,shapes,ratio", [
    (_resnet, {"data": (16, 3, 32, 32)}, 0.6),
    (_chain, {"data": (256, 64)}, 0.6),
])
def test_mirror_plans_far_less_memory(build, shapes, ratio):
    plain = _bind(build(), False, shapes).memory_report()
    mirrored = _bind(build(), True, shapes).memory_report()
    assert mirrored.planned_bytes < ratio * plain.planned_bytes


def test_memory_budget_still_selects_recompute():
    shapes = {"data": (16, 3, 32, 32)}
    default = _bind(_resnet(), "one-pass", shapes).memory_report().planned_bytes
    roomy = _bind(_resnet(), default * 2, shapes).memory_report().planned_bytes
    tight = _bind(_resnet(), default // 2, shapes).memory_report().planned_bytes
    assert roomy == default and tight < default


# -- the default policy: one-pass chains recomputed from kept heavy outputs -----------

@pytest.mark.parametrize("build,shapes", [
    (_resnet, {"data": (4, 3, 16, 16)}),
    (_resnet, {"data": (8, 3, 64, 64)}),  # threaded BatchNorm and ReLU kernels
    (_chain, {"data": (8, 32)}),
])
def test_one_pass_recompute_is_bit_identical(build, shapes):
    kept_out, kept_grads, kept_aux = _train(_bind(build(), False, shapes))
    out, grads, aux = _train(_bind(build(), "one-pass", shapes))
    for a, b in zip(kept_out, out):
        np.testing.assert_array_equal(a, b)
    for name in kept_grads:
        np.testing.assert_array_equal(kept_grads[name], grads[name], err_msg=name)
    for name in kept_aux:
        np.testing.assert_array_equal(kept_aux[name], aux[name], err_msg=name)


def test_one_pass_is_the_default_and_recomputes_only_one_pass_ops():
    shapes = {"data": (16, 3, 32, 32)}
    net = _resnet()
    reqs = {n: ("null" if n in ("data", "softmax_label") else "write")
            for n in net.list_arguments()}
    default = net.simple_bind(dk.cpu(), grad_req=reqs, **shapes)
    mirrored = {n.name: n.op.name for n in default._graph.nodes
                if n.op is not None and n.name.endswith("_mirror")}
    # the stem's and each block's first ReLU after BatchNorm, from the kept conv outputs
    assert {"stem_relu_mirror", "stem_bn_mirror", "b0a_relu_mirror", "b0a_bn_mirror"} \
        <= set(mirrored)
    assert set(mirrored.values()) == {"Activation", "_batch_norm_apply"}
    # a block's output (ReLU of a sum with the shortcut) is kept: its chain does not
    # start from heavy outputs only
    assert not any(name.endswith("_out_mirror") for name in mirrored)
    keep_all = _bind(_resnet(), False, shapes).memory_report().planned_bytes
    assert default.memory_report().planned_bytes < 0.8 * keep_all


def test_one_pass_leaves_nets_without_such_chains_alone():
    """An MLP's ReLU outputs have no kept input to be recomputed from: nothing changes."""
    h = sym.Variable("data")
    for i in range(3):
        h = sym.Activation(sym.FullyConnected(h, num_hidden=16, name=f"fc{i}"),
                           act_type="relu", name=f"r{i}")
    net = sym.sum(h * h)
    exe = _bind(net, "one-pass", {"data": (8, 5)})
    assert not any(n.name.endswith("_mirror") for n in exe._graph.nodes if n.op is not None)
    assert exe.memory_report().planned_bytes == \
        _bind(net, False, {"data": (8, 5)}).memory_report().planned_bytes


def test_an_unknown_mirror_policy_is_refused():
    with pytest.raises(dk.base.ParamError, match=r"mirror='everything'.*'one-pass'"):
        _bind(_chain(), "everything", {"data": (8, 32)})


def test_what_can_be_recomputed():
    data = Node(None, "data")

    def node(op_name, **params):
        op = get_op(op_name)
        return Node(op, op_name, op.parse_attrs(params), [(data, 0)])

    bn = Node(get_op("BatchNorm"), "bn", get_op("BatchNorm").parse_attrs({}),
              [(data, 0)] + [(Node(None, n), 0) for n in ("g", "b", "m", "v")])
    assert can_recompute(bn) and not is_mirrorable(bn)
    conv = node("Convolution", kernel=(3, 3), num_filter=2, no_bias=True)
    assert can_recompute(conv) and not is_mirrorable(conv)
    assert not can_recompute(node("Dropout", p=0.5))
    assert not can_recompute(data)
    forced = node("tanh")
    forced.user_attrs["__force_mirroring__"] = "False"
    assert not can_recompute(forced) and not is_mirrorable(forced)


@pytest.mark.parametrize("fix_gamma,use_global_stats,axis,dtype", [
    (False, False, 1, np.float32), (True, False, 1, np.float32), (False, False, -1, np.float32),
    (False, True, 1, np.float32), (False, False, 1, np.float16), (False, False, 1, np.float64),
])
def test_batch_norm_apply_reproduces_batchnorm_bit_for_bit(fix_gamma, use_global_stats, axis,
                                                          dtype):
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, (6, 5, 4, 3)).astype(dtype)
    c = x.shape[axis]
    param = np.float32 if dtype == np.float16 else dtype
    gamma = rng.uniform(0.5, 2, c).astype(param)
    beta = rng.normal(size=c).astype(param)
    mm, mv = rng.normal(size=c).astype(param), rng.uniform(0.5, 2, c).astype(param)
    bn = get_op("BatchNorm")
    attrs = bn.parse_attrs({"fix_gamma": fix_gamma, "use_global_stats": use_global_stats,
                            "axis": axis, "eps": 1e-5})
    out = np.empty_like(x)
    mean, invstd = np.empty(c, param), np.empty(c, param)
    bn.kernel(np)(np, attrs, [x, gamma, beta, mm.copy(), mv.copy()], [out, mean, invstd],
                     ["write"] * 3, is_train=True)
    again = np.empty_like(x)
    get_op("_batch_norm_apply").kernel(np)(np, attrs, [x, gamma, beta, mean, invstd],
                                             [again], ["write"])
    np.testing.assert_array_equal(out, again)


def test_force_mirroring_attribute_overrides_the_choice():
    data = sym.Variable("data")
    h = sym.Convolution(data, num_filter=4, kernel=(3, 3), pad=(1, 1), no_bias=True,
                        name="c0", attr={"__force_mirroring__": "True"})
    h = sym.sin(h, name="t0", attr={"__force_mirroring__": "False"})
    h = sym.Convolution(h, num_filter=4, kernel=(3, 3), pad=(1, 1), no_bias=True, name="c1")
    net = sym.sum(sym.tanh(h, name="t1"))
    exe = net.simple_bind(data=(2, 3, 8, 8), mirror=True)
    names = {n.name for n in exe._graph.nodes}
    assert "c0_mirror" in names and "t0_mirror" not in names
    plain = net.simple_bind(data=(2, 3, 8, 8))
    for e in (exe, plain):
        for name, arr in e.arg_dict.items():
            arr[:] = np.random.default_rng(1).normal(size=arr.shape)
        e.forward(is_train=True)
        e.backward()
    for name in plain.grad_dict:
        np.testing.assert_array_equal(plain.grad_dict[name].asnumpy(),
                                      exe.grad_dict[name].asnumpy())


def test_one_pass_keeps_graph_outputs_instead_of_recomputing_them():
    """An activation that is also an output of the graph is alive anyway: never recomputed."""
    x = _conv_bn(sym.Variable("data"), 8, 1, "a")
    y = _conv_bn(x, 8, 1, "b")
    net = sym.Group([sym.sum(y * y), x])
    exe = _bind(net, "one-pass", {"data": (4, 3, 16, 16)})
    mirrored = {n.name for n in exe._graph.nodes
                if n.op is not None and n.name.endswith("_mirror")}
    assert "a_relu_mirror" not in mirrored
    assert "b_relu_mirror" in mirrored
