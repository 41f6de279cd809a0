"""What a Custom op's backward reads: ``declare_backward_dependency`` decides which arrays
stay alive after forward (the memory planner frees the rest), as in MXNet."""
import numpy as np
import pytest

from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import DeepkitError
from deepkit_engine.custom import register_prop, unregister_prop
from deepkit_engine.testing import assert_almost_equal, check_numeric_gradient


class _SigmoidProp:
    """``sigmoid(data)``; ``deps`` picks what backward declares (None: no method, all)."""

    seen = []  # what backward was handed, per call

    def __init__(self, deps="output", reads="output"):
        self.need_top_grad_ = True
        self.deps, self.reads = deps, reads
        if deps == "none":
            del self.deps

    def list_arguments(self):
        return ["data"]

    def list_outputs(self):
        return ["output"]

    def list_auxiliary_states(self):
        return []

    def infer_shape(self, in_shape):
        return in_shape, [in_shape[0]], []

    def __getattr__(self, name):
        if name == "declare_backward_dependency" and "deps" in self.__dict__:
            return self._declare
        raise AttributeError(name)

    def _declare(self, out_grad, in_data, out_data):
        if self.deps == "output":
            return out_grad + out_data
        if self.deps == "input":
            return out_grad + in_data
        if self.deps == "bad":
            return out_grad + [99]
        return out_grad + in_data + out_data

    def create_operator(self, ctx, shapes, dtypes):
        reads = self.reads

        class Op:
            def forward(self, is_train, req, in_data, out_data, aux):
                out_data[0][:] = 1 / (1 + nd.exp(-in_data[0]))

            def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
                _SigmoidProp.seen.append((len(out_grad), len(in_data), len(out_data),
                                          [type(a).__name__ for a in in_data + out_data]))
                if reads == "output":
                    y = out_data[0]
                else:
                    y = 1 / (1 + nd.exp(-in_data[0]))
                in_grad[0][:] = out_grad[0] * y * (1 - y)
        return Op()


@pytest.fixture
def sigmoid_prop():
    register_prop("test_dep_sigmoid", _SigmoidProp)
    _SigmoidProp.seen.clear()
    yield "test_dep_sigmoid"
    unregister_prop("test_dep_sigmoid")


def _net(op_type, deps, reads="output"):
    fc1 = sym.FullyConnected(sym.var("data"), num_hidden=256, name="fc1")
    act = sym.Custom(fc1, op_type=op_type, deps=deps, reads=reads, name="act")
    return sym.FullyConnected(act, num_hidden=8, name="fc2")


def _alive_at_peak(report):
    return {r["name"] for r in report.alive if r["planned"]}


def test_input_not_declared_is_freed_after_forward(sigmoid_prop):
    declared = _net(sigmoid_prop, "output").simple_bind(data=(64, 32)).memory_report()
    default = _net(sigmoid_prop, "none").simple_bind(data=(64, 32)).memory_report()
    both = _net(sigmoid_prop, "all").simple_bind(data=(64, 32)).memory_report()
    fc1_bytes = 64 * 256 * 4
    # the peak is where the Custom node's backward runs; without a declaration (MXNet's
    # default: everything) its input has waited there since forward
    assert default.peak_node == declared.peak_node == "act_backward__backward_custom0"
    assert "fc1_output" in _alive_at_peak(default)
    assert "fc1_output" in _alive_at_peak(both)
    # declaring only the output lets the planner free the input when forward is done
    assert "fc1_output" not in _alive_at_peak(declared)
    assert "act_output" in _alive_at_peak(declared)
    assert default.peak_phase == declared.peak_phase == "backward"
    assert declared.peak_bytes <= default.peak_bytes - fc1_bytes
    assert declared.planned_bytes <= default.planned_bytes - fc1_bytes


def test_output_not_declared_is_freed_after_forward(sigmoid_prop):
    # the Custom output feeds an op whose backward does not read it
    def net(deps):
        act = sym.Custom(sym.FullyConnected(sym.var("data"), num_hidden=256, name="fc1"),
                         op_type=sigmoid_prop, deps=deps, reads="input", name="act")
        return act * 3.0
    declared = net("input").simple_bind(data=(64, 32)).memory_report()
    default = net("all").simple_bind(data=(64, 32)).memory_report()
    assert "act_output" in _alive_at_peak(default)
    assert "act_output" not in _alive_at_peak(declared)
    assert "fc1_output" in _alive_at_peak(declared)


@pytest.mark.parametrize("deps, reads", [("output", "output"), ("input", "input"),
                                         ("none", "output")])
def test_gradients_stay_correct(sigmoid_prop, rng, deps, reads):
    net = sym.Custom(sym.var("data"), op_type=sigmoid_prop, deps=deps, reads=reads)
    check_numeric_gradient(net, [rng.standard_normal((3, 4))])
    # inside a network whose planned memory reuses the freed buffers
    x, g = rng.standard_normal((5, 6)), rng.standard_normal((5, 8))
    exe = _net(sigmoid_prop, deps, reads).simple_bind(data=(5, 6), type_dict={"data": "float64"})
    exe.arg_dict["data"][:] = x
    for name in ("fc1_weight", "fc1_bias", "fc2_weight"):
        exe.arg_dict[name][:] = rng.standard_normal(exe.arg_dict[name].shape)
    exe.forward(is_train=True)
    exe.backward(nd.array(g, dtype="float64"))
    w1, b1 = exe.arg_dict["fc1_weight"].asnumpy(), exe.arg_dict["fc1_bias"].asnumpy()
    w2 = exe.arg_dict["fc2_weight"].asnumpy()
    s = 1 / (1 + np.exp(-(x @ w1.T + b1)))
    dh = (g @ w2) * s * (1 - s)
    assert_almost_equal(exe.grad_dict["fc1_weight"].asnumpy(), dh.T @ x, rtol=1e-10, atol=1e-12)
    assert_almost_equal(exe.grad_dict["data"].asnumpy(), dh @ w1, rtol=1e-10, atol=1e-12)
    assert_almost_equal(exe.grad_dict["fc2_weight"].asnumpy(), g.T @ s, rtol=1e-10, atol=1e-12)


def test_backward_gets_stand_ins_where_nothing_was_declared(sigmoid_prop, rng):
    x = nd.array(rng.standard_normal((2, 3)))
    exe = sym.Custom(sym.var("data"), op_type=sigmoid_prop, deps="output").simple_bind(
        data=(2, 3))
    exe.arg_dict["data"][:] = x
    exe.forward(is_train=True)
    exe.backward(nd.ones((2, 3)))
    exe.grad_dict["data"].wait_to_read()
    # MXNet keeps the lists' lengths and puts empty arrays where nothing was declared
    assert _SigmoidProp.seen[-1] == (1, 1, 1, ["Undeclared", "NDArray"])


def test_using_an_undeclared_array_names_it_and_the_fix(sigmoid_prop, rng):
    exe = sym.Custom(sym.var("data"), op_type=sigmoid_prop, deps="output",
                     reads="input").simple_bind(data=(2, 3))
    exe.forward(is_train=True)
    with pytest.raises(DeepkitError) as info:
        exe.backward(nd.ones((2, 3)))
        exe.grad_dict["data"].wait_to_read()
    text = str(info.value) + str(getattr(info.value, "__cause__", ""))
    assert "test_dep_sigmoid" in text and "in_data[0]" in text
    assert "declare_backward_dependency" in text


def test_declaring_an_unknown_id_is_refused(sigmoid_prop):
    net = sym.Custom(sym.var("data"), op_type=sigmoid_prop, deps="bad")
    with pytest.raises(DeepkitError, match=r"test_dep_sigmoid.*declare_backward_dependency.*99"):
        net.simple_bind(data=(2, 3))


def test_autograd_runs_the_same_declared_backward(sigmoid_prop, rng):
    from deepkit_engine import autograd
    x = rng.standard_normal((3, 4))
    xa = nd.array(x, dtype="float64")
    xa.attach_grad()
    with autograd.record():
        y = nd.Custom(xa * 2, op_type=sigmoid_prop, deps="output")
    y.backward()
    s = 1 / (1 + np.exp(-2 * x))
    assert_almost_equal(xa.grad.asnumpy(), 2 * s * (1 - s), rtol=1e-12, atol=1e-12)
