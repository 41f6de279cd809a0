"""Operators written in Python (``define_op``) and ``autograd.Function``."""
import numpy as np
import pytest

from deepkit_engine import autograd, engine
from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import DeepkitError, EngineError
from deepkit_engine.context import num_gpus
from deepkit_engine.custom import define_op, remove_op
from deepkit_engine.ops.registry import list_ops
from deepkit_engine.testing import assert_almost_equal, check_numeric_gradient


def _softmax_forward(xp, x, axis=-1):
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _softmax_backward(xp, out_grads, inputs, outputs, axis=-1):
    assert inputs == [None], "backward_needs=('output',) must not hand the input over"
    g, y = out_grads[0], outputs[0]
    return [y * (g - (g * y).sum(axis=axis, keepdims=True))]


def _softmax_ref(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.fixture
def py_softmax():
    op = define_op("test_py_softmax", _softmax_forward, _softmax_backward, params={"axis": -1},
                   backward_needs=("output",))
    yield op
    remove_op("test_py_softmax")


@pytest.fixture
def op_name_cleanup():
    names = []
    yield names
    for n in names:
        if n in list_ops():
            remove_op(n)


def test_registered_op_is_offered_as_nd_and_sym_and_removed(py_softmax):
    assert nd.test_py_softmax.__doc__ == py_softmax.docstring()
    assert "axis" in sym.test_py_softmax.__doc__
    remove_op("test_py_softmax")
    assert not hasattr(nd, "test_py_softmax") and not hasattr(sym, "test_py_softmax")
    assert "_backward_test_py_softmax" not in list_ops()
    define_op("test_py_softmax", _softmax_forward, _softmax_backward, params={"axis": -1})


def test_forward_and_backward_match_numpy(py_softmax, rng, ctx):
    x, g = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    out = nd.test_py_softmax(nd.array(x, ctx=ctx, dtype="float64"), axis=0)
    assert_almost_equal(out.asnumpy(), _softmax_ref(x, 0), rtol=1e-12, atol=1e-14)
    exe = sym.test_py_softmax(sym.var("data"), axis=0).simple_bind(
        ctx, data=(4, 6), type_dict={"data": "float64"})
    exe.arg_dict["data"][:] = x
    exe.forward(is_train=True)
    exe.backward(nd.array(g, ctx=ctx, dtype="float64"))
    y = _softmax_ref(x, 0)
    assert_almost_equal(exe.grad_dict["data"].asnumpy(), y * (g - (g * y).sum(0)),
                        rtol=1e-10, atol=1e-12)


def test_numeric_gradient(py_softmax, rng):
    net = sym.test_py_softmax(sym.FullyConnected(sym.var("data"), num_hidden=5, name="fc"))
    check_numeric_gradient(net, {"data": rng.standard_normal((3, 4)),
                                 "fc_weight": rng.standard_normal((5, 4)),
                                 "fc_bias": rng.standard_normal(5)})


def test_bound_executor_with_memory_planning_matches_unplanned(py_softmax, rng):
    data = sym.var("data")
    h = sym.test_py_softmax(sym.FullyConnected(data, num_hidden=8, name="fc1"))
    net = sym.FullyConnected(sym.Activation(h, act_type="relu"), num_hidden=3, name="fc2")
    values = {"data": rng.standard_normal((5, 7)), "fc1_weight": rng.standard_normal((8, 7)),
              "fc1_bias": rng.standard_normal(8), "fc2_weight": rng.standard_normal((3, 8)),
              "fc2_bias": rng.standard_normal(3)}
    results = []
    for plan in (True, False):
        exe = net.simple_bind(data=(5, 7), plan_memory=plan, type_dict={"data": "float32"})
        for k, v in values.items():
            exe.arg_dict[k][:] = v
        out = exe.forward(is_train=True)[0].asnumpy()
        exe.backward(nd.ones((5, 3)))
        results.append((out, exe.grad_dict["fc1_weight"].asnumpy()))
    assert_almost_equal(results[0][0], results[1][0])
    assert_almost_equal(results[0][1], results[1][1])
    assert np.abs(results[0][1]).sum() > 0


def test_inputs_backward_does_not_need_die_with_forward(py_softmax, op_name_cleanup):
    op_name_cleanup.append("test_py_softmax_all")
    define_op("test_py_softmax_all", _softmax_forward,
              lambda xp, og, ins, outs, axis=-1: _softmax_backward(xp, og, [None], outs, axis),
              params={"axis": -1})

    def report(op):
        fc1 = sym.FullyConnected(sym.var("data"), num_hidden=256, name="fc1")
        net = sym.FullyConnected(op(fc1, name="act"), num_hidden=4, name="fc2")
        return net.simple_bind(data=(64, 16)).memory_report()
    needs_output, needs_all = report(sym.test_py_softmax), report(sym.test_py_softmax_all)
    # the backward node reads fc1_output only for its shape: it is not kept for backward
    assert needs_all.peak_node.startswith("act_backward")
    assert needs_output.peak_node.startswith("act_backward")
    alive = [{r["name"] for r in rep.alive if r["planned"]} for rep in (needs_output, needs_all)]
    assert "fc1_output" in alive[1] and "fc1_output" not in alive[0]
    assert needs_output.peak_bytes <= needs_all.peak_bytes - 64 * 256 * 4


def test_autograd_differentiates_through_it(py_softmax, rng):
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    xa = nd.array(x)
    xa.attach_grad()
    with autograd.record():
        loss = (nd.test_py_softmax(xa) * nd.array(w)).sum()
    loss.backward()
    y = _softmax_ref(x)
    assert_almost_equal(xa.grad.asnumpy(), y * (w - (w * y).sum(-1, keepdims=True)),
                        rtol=1e-5, atol=1e-6)


def test_json_round_trip_by_registered_name(py_softmax, rng):
    net = sym.test_py_softmax(sym.var("data"), axis=1, name="sm")
    loaded = sym.load_json(net.tojson())
    assert '"op": "test_py_softmax"' in net.tojson()
    x = rng.standard_normal((2, 5)).astype(np.float32)
    exe = loaded.simple_bind(data=(2, 5))
    exe.arg_dict["data"][:] = x
    assert_almost_equal(exe.forward()[0].asnumpy(), _softmax_ref(x, 1), rtol=1e-5, atol=1e-6)


def test_several_inputs_outputs_aux_and_inplace(op_name_cleanup, rng):
    def forward(xp, a, b, count, is_train=False):
        if is_train:
            count += 1
        return [a * b, a + b]

    def backward(xp, out_grads, inputs, outputs):
        a, b = inputs
        g_prod, g_sum = out_grads
        return [g_prod * b + g_sum, g_prod * a + g_sum]

    define_op("test_prod_sum", forward, backward, inputs=("a", "b"), outputs=("prod", "sum"),
              aux=("count",), inplace=True, backward_needs=("a", "b"))
    op_name_cleanup.append("test_prod_sum")
    net = sym.test_prod_sum(sym.var("a"), sym.var("b"), name="ps")
    assert net.list_auxiliary_states() == ["ps_count"]
    assert net.list_outputs() == ["ps_prod", "ps_sum"]
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    check_numeric_gradient(net, {"a": a, "b": b}, aux_states={"ps_count": np.zeros((2, 3))})
    exe = net.simple_bind(a=(2, 3), b=(2, 3), ps_count=(2, 3))
    exe.arg_dict["a"][:] = a
    exe.arg_dict["b"][:] = b
    exe.forward(is_train=True)
    exe.forward(is_train=False)
    assert_almost_equal(exe.aux_dict["ps_count"].asnumpy(), np.ones((2, 3)))


def test_op_name_registered_twice_is_refused(py_softmax):
    with pytest.raises(ValueError, match="'test_py_softmax' is already registered"):
        define_op("test_py_softmax", _softmax_forward)
    with pytest.raises(ValueError, match="'Convolution' is already registered"):
        define_op("Convolution", _softmax_forward)


def test_forward_disagreeing_with_infer_shape_names_op_and_shapes(op_name_cleanup):
    define_op("test_bad_shape", lambda xp, x: x[:, :1], infer_shape=lambda s: [s[0]])
    op_name_cleanup.append("test_bad_shape")
    with pytest.raises(EngineError, match=r"custom op 'test_bad_shape': forward returned output "
                                          r"of shape \(2, 1\) but shape inference gave \(2, 3\)"):
        nd.test_bad_shape(nd.ones((2, 3))).asnumpy()


def test_backward_with_wrong_gradient_count_names_op_and_counts(op_name_cleanup):
    define_op("test_bad_grads", lambda xp, a, b: a + b, lambda xp, og, i, o: [og[0]],
              inputs=("a", "b"))
    op_name_cleanup.append("test_bad_grads")
    exe = sym.test_bad_grads(sym.var("a"), sym.var("b")).simple_bind(a=(2,), b=(2,))
    exe.forward(is_train=True)
    exe.backward(nd.ones((2,)))
    with pytest.raises(EngineError, match=r"'test_bad_grads': backward returned 1 gradient\(s\) "
                                          r"but the op has 2 input\(s\) \(a, b\)"):
        exe.grad_dict["a"].asnumpy()


def test_inference_only_op_refuses_gradients_clearly(op_name_cleanup):
    define_op("test_forward_only", lambda xp, x: x * 2)
    op_name_cleanup.append("test_forward_only")
    assert_almost_equal(nd.test_forward_only(nd.ones((2,))).asnumpy(), [2, 2])
    with pytest.raises(DeepkitError, match="test_forward_only.*is inference-only"):
        sym.test_forward_only(sym.var("x")).simple_bind(x=(2,))


def test_bad_declarations_are_refused():
    with pytest.raises(DeepkitError, match="backward_needs names \\['label'\\]"):
        define_op("test_needs_unknown", _softmax_forward, _softmax_backward,
                  backward_needs=("label",))
    assert "test_needs_unknown" not in list_ops()


class _Sigmoid(autograd.Function):
    def forward(self, x):
        y = 1 / (1 + nd.exp(-x))
        self.save_for_backward(y)
        return y

    def backward(self, dy):
        y, = self.saved_tensors
        return dy * y * (1 - y)


@pytest.mark.parametrize("naive", [False, True])
def test_autograd_function_matches_the_analytic_gradient(rng, naive):
    old = engine.set_engine("naive") if naive else None
    try:
        x = rng.standard_normal((150, 200))  # large enough to run on engine workers
        xa = nd.array(x)
        xa.attach_grad()
        with autograd.record():
            y = _Sigmoid()(xa) * 3
        y.backward()
        s = 1 / (1 + np.exp(-x))
        assert_almost_equal(y.asnumpy(), 3 * s, rtol=1e-5, atol=1e-6)
        assert_almost_equal(xa.grad.asnumpy(), 3 * s * (1 - s), rtol=1e-5, atol=1e-6)
    finally:
        if old is not None:
            engine.set_engine(old)


class _ShiftedSigmoid(autograd.Function):
    """``sigmoid(x + c)``: backward reads the output only, unless told to keep ``c``."""

    def __init__(self, keep_shift=False):
        super().__init__()
        self.keep_shift = keep_shift

    def forward(self, x, c):
        y = 1 / (1 + nd.exp(-(x + c)))
        self.save_for_backward(y, c) if self.keep_shift else self.save_for_backward(y)
        return y

    def backward(self, dy):
        y = self.saved_tensors[0]
        return dy * y * (1 - y), None


@pytest.mark.parametrize("keep_shift", [False, True])
def test_autograd_function_keeps_only_what_it_saved(rng, keep_shift):
    import gc
    import weakref
    x, c = rng.standard_normal((30, 40)), rng.standard_normal((30, 40))
    xa, ca = nd.array(x), nd.array(c)
    xa.attach_grad()
    with autograd.record():
        y = _ShiftedSigmoid(keep_shift)(xa, ca) * 2
    y.wait_to_read()
    shift = weakref.ref(ca)
    del ca
    gc.collect()
    # the constant input is read only for its gradient's shape: nothing holds it but a save
    assert (shift() is not None) == keep_shift
    y.backward()
    s = 1 / (1 + np.exp(-(x + c)))
    assert_almost_equal(xa.grad.asnumpy(), 2 * s * (1 - s), rtol=1e-5, atol=1e-6)


def test_autograd_function_instances_are_single_use():
    f = _Sigmoid()
    f(nd.ones((2,)))
    with pytest.raises(DeepkitError, match="called only once"):
        f(nd.ones((2,)))


def test_autograd_function_wrong_gradient_count_is_named():
    class Two(autograd.Function):
        def forward(self, a, b):
            return a * b

        def backward(self, dy):
            return dy

    a, b = nd.ones((2,)), nd.ones((2,))
    a.attach_grad()
    b.attach_grad()
    with autograd.record():
        y = Two()(a, b)
    with pytest.raises(DeepkitError, match="Two: backward returned 1 gradient"):
        y.backward()
        a.grad.asnumpy()


@pytest.mark.skipif(num_gpus() == 0, reason="no CUDA device with cupy (install deepkit[gpu])")
def test_cupy_elementwise_kernel_runs_as_forward(op_name_cleanup, rng):
    from deepkit_engine.context import gpu

    def forward(xp, x):
        relu = xp.ElementwiseKernel("T x", "T y", "y = x > 0 ? x : (T)0", "test_relu")
        return relu(x)

    def backward(xp, out_grads, inputs, outputs):
        return [out_grads[0] * (inputs[0] > 0)]

    define_op("test_cupy_relu", forward, backward)
    op_name_cleanup.append("test_cupy_relu")
    x = rng.standard_normal((4, 5)).astype(np.float32)
    out = nd.test_cupy_relu(nd.array(x, ctx=gpu(0)))
    assert_almost_equal(out.asnumpy(), np.maximum(x, 0))
    check_numeric_gradient(sym.test_cupy_relu(sym.var("x")), [x.astype(np.float64) + 0.01],
                           ctx=gpu(0))
