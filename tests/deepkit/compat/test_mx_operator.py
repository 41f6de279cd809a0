"""MXNet's ``mx.operator``: CustomOp/CustomOpProp/register and the ``Custom`` op."""
import numpy as np
import pytest

from deepkit.compat import mx_operator as operator
from deepkit.compat import mxnet as mx
from deepkit.datasets import mnist
from deepkit_engine import nd, sym
from deepkit_engine.base import ParamError
from deepkit_engine.custom import unregister_prop
from deepkit_engine.testing import assert_almost_equal


class Softmax(operator.CustomOp):
    """MXNet 1.9.1's ``example/numpy-ops/custom_softmax.py`` operator (``np.int`` -> ``int``)."""

    def forward(self, is_train, req, in_data, out_data, aux):
        x = in_data[0].asnumpy()
        y = np.exp(x - x.max(axis=1).reshape((x.shape[0], 1)))
        y /= y.sum(axis=1).reshape((x.shape[0], 1))
        self.assign(out_data[0], req[0], nd.array(y))

    def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
        label = in_data[1].asnumpy().ravel().astype(int)
        y = out_data[0].asnumpy()
        y[np.arange(label.shape[0]), label] -= 1.0
        self.assign(in_grad[0], req[0], nd.array(y))


class SoftmaxProp(operator.CustomOpProp):
    def __init__(self):
        super().__init__(need_top_grad=False)

    def list_arguments(self):
        return ["data", "label"]

    def list_outputs(self):
        return ["output"]

    def infer_shape(self, in_shape):
        data_shape = in_shape[0]
        label_shape = (in_shape[0][0],)
        return [data_shape, label_shape], [data_shape], []

    def infer_type(self, in_type):
        return in_type, [in_type[0]], []

    def create_operator(self, ctx, shapes, dtypes):
        return Softmax()


@pytest.fixture
def softmax_op():
    operator.register("test_mx_softmax")(SoftmaxProp)
    yield "test_mx_softmax"
    unregister_prop("test_mx_softmax")


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_symbol_declares_arguments_and_shapes_from_the_prop(softmax_op):
    net = sym.Custom(data=sym.var("data"), name="softmax", op_type=softmax_op)
    assert net.list_arguments() == ["data", "softmax_label"]
    arg_shapes, out_shapes, aux_shapes = net.infer_shape(data=(5, 10))
    assert arg_shapes == [(5, 10), (5,)] and out_shapes == [(5, 10)] and aux_shapes == []


def test_forward_and_backward_match_numpy(softmax_op, rng):
    x = rng.standard_normal((6, 4)).astype(np.float32)
    label = np.array([0, 1, 2, 3, 0, 1], np.float32)
    assert_almost_equal(nd.Custom(nd.array(x), nd.array(label), op_type=softmax_op).asnumpy(),
                        _softmax(x), rtol=1e-5, atol=1e-6)
    net = sym.Custom(data=sym.var("data"), name="softmax", op_type=softmax_op)
    exe = net.simple_bind(data=(6, 4))
    exe.arg_dict["data"][:] = x
    exe.arg_dict["softmax_label"][:] = label
    exe.forward(is_train=True)
    exe.backward()
    expected = _softmax(x)
    expected[np.arange(6), label.astype(int)] -= 1
    assert_almost_equal(exe.grad_dict["data"].asnumpy(), expected, rtol=1e-5, atol=1e-6)


def test_json_round_trip_keeps_op_type(softmax_op):
    net = sym.Custom(data=sym.var("data"), name="softmax", op_type=softmax_op)
    loaded = sym.load_json(net.tojson())
    assert loaded.list_arguments() == ["data", "softmax_label"]
    assert loaded.infer_shape(data=(2, 3))[1] == [(2, 3)]


def test_unknown_or_duplicate_op_type_is_named(softmax_op):
    with pytest.raises(ParamError, match="op_type 'test_mx_sofmax' is not registered"):
        sym.Custom(data=sym.var("data"), op_type="test_mx_sofmax")
    with pytest.raises(ValueError, match="'test_mx_softmax' is already registered"):
        operator.register(softmax_op)(SoftmaxProp)


def test_prop_with_kwargs_and_aux_state(rng):
    class Counter(operator.CustomOp):
        def __init__(self, scale):
            self.scale = scale

        def forward(self, is_train, req, in_data, out_data, aux):
            aux[0][:] = aux[0] + 1
            self.assign(out_data[0], req[0], in_data[0] * self.scale)

        def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
            self.assign(in_grad[0], req[0], out_grad[0] * self.scale)

    @operator.register("test_mx_scale_count")
    class CounterProp(operator.CustomOpProp):
        def __init__(self, scale="1"):
            super().__init__()
            self.scale = float(scale)

        def list_auxiliary_states(self):
            return ["calls"]

        def infer_shape(self, in_shape):
            return in_shape, [in_shape[0]], [(1,)]

        def create_operator(self, ctx, shapes, dtypes):
            return Counter(self.scale)

    try:
        net = sym.Custom(sym.var("data"), op_type="test_mx_scale_count", scale=3, name="c")
        assert net.list_auxiliary_states() == ["c_calls"]
        exe = net.simple_bind(data=(2, 2))
        exe.arg_dict["data"][:] = np.ones((2, 2))
        exe.forward(is_train=True)
        out = exe.forward(is_train=True)[0]
        exe.backward(nd.ones((2, 2)))
        assert_almost_equal(out.asnumpy(), 3 * np.ones((2, 2)))
        assert_almost_equal(exe.grad_dict["data"].asnumpy(), 3 * np.ones((2, 2)))
        assert_almost_equal(exe.aux_dict["c_calls"].asnumpy(), [2])
    finally:
        unregister_prop("test_mx_scale_count")


def test_custom_softmax_trains_an_mnist_mlp(softmax_op, shared_data):
    (x_train, y_train), (x_test, y_test) = mnist.load_data(path=shared_data / "mnist")
    x_train = x_train[:5000].reshape(-1, 784).astype(np.float32) / 255
    y_train = y_train[:5000].astype(np.float32)
    x_test = x_test[:2000].reshape(-1, 784).astype(np.float32) / 255
    data = sym.var("data")
    net = sym.Activation(sym.FullyConnected(data, num_hidden=64, name="fc1"), act_type="relu")
    net = sym.FullyConnected(net, num_hidden=10, name="fc2")
    net = sym.Custom(data=net, name="softmax", op_type=softmax_op)
    exe = net.simple_bind(data=(100, 784))
    rng = np.random.default_rng(0)
    for name, arr in exe.arg_dict.items():
        if name.endswith("weight"):
            arr[:] = rng.normal(0, 0.05, arr.shape)
    batch = 100
    for epoch in range(2):
        for i in range(0, len(x_train), batch):
            exe.arg_dict["data"][:] = x_train[i:i + batch]
            exe.arg_dict["softmax_label"][:] = y_train[i:i + batch]
            exe.forward(is_train=True)
            exe.backward()
            for name, grad in exe.grad_dict.items():
                if name not in ("data", "softmax_label"):
                    exe.arg_dict[name][:] = exe.arg_dict[name] - grad * (0.5 / batch)
    correct = 0
    for i in range(0, len(x_test), batch):
        exe.arg_dict["data"][:] = x_test[i:i + batch]
        correct += (exe.forward()[0].asnumpy().argmax(1) == y_test[i:i + batch]).sum()
    assert correct / len(x_test) > 0.85  # SoftmaxOutput in its place reaches the same 0.87


def _module_params_after_training(head, x, y):
    mx.random.seed(3)
    data = mx.sym.Variable("data")
    net = mx.sym.Activation(mx.sym.FullyConnected(data, name="fc1", num_hidden=32),
                            act_type="relu")
    net = head(mx.sym.FullyConnected(net, name="fc2", num_hidden=10))
    train = mx.io.NDArrayIter(x, y, batch_size=100, shuffle=False, label_name="softmax_label")
    mod = mx.mod.Module(net, context=mx.cpu())
    mod.fit(train_data=train, optimizer="sgd", num_epoch=1,
            initializer=mx.init.Xavier(), optimizer_params={"learning_rate": 0.1,
                                                            "momentum": 0.9, "wd": 0.00001})
    return mod.get_params()[0], mod.score(train, "acc")[0][1]


def test_custom_softmax_trains_in_module_exactly_like_softmax_output(softmax_op, shared_data):
    """The MXNet custom-softmax example's network in ``mx.mod.Module``: the Python operator
    gives the same training as the built-in SoftmaxOutput."""
    (x, y), _ = mnist.load_data(path=shared_data / "mnist")
    x = x[:2000].reshape(-1, 784).astype(np.float32) / 255
    y = y[:2000].astype(np.float32)
    custom, custom_acc = _module_params_after_training(
        lambda fc: sym.Custom(data=fc, name="softmax", op_type=softmax_op), x, y)
    builtin, builtin_acc = _module_params_after_training(
        lambda fc: sym.SoftmaxOutput(data=fc, name="softmax"), x, y)
    for name in builtin:
        assert_almost_equal(custom[name].asnumpy(), builtin[name].asnumpy(), rtol=1e-3,
                            atol=1e-4, names=(f"Custom {name}", f"SoftmaxOutput {name}"))
    assert custom_acc == pytest.approx(builtin_acc, abs=0.01) and custom_acc > 0.7


def test_mxnet_custom_softmax_example_script_trains(shared_data):
    """MXNet 1.9.1's ``example/numpy-ops/custom_softmax.py`` through ``mx.operator``, ``mx.sym``
    and ``mx.mod.Module``: the script's text with ``np.int`` -> ``int``; its MNIST iterator
    (``get_mnist_iterator``) is replaced by an NDArrayIter over a 6,000-image subset and the
    run is cut to 2 epochs."""
    (x, y), (xt, yt) = mnist.load_data(path=shared_data / "mnist")
    train = mx.io.NDArrayIter(x[:6000].reshape(-1, 784).astype(np.float32) / 255,
                              y[:6000].astype(np.float32), batch_size=100, shuffle=True,
                              label_name="softmax_label")
    val = mx.io.NDArrayIter(xt[:2000].reshape(-1, 784).astype(np.float32) / 255,
                            yt[:2000].astype(np.float32), batch_size=100,
                            label_name="softmax_label")

    class Softmax(mx.operator.CustomOp):
        def forward(self, is_train, req, in_data, out_data, aux):
            x = in_data[0].asnumpy()
            y = np.exp(x - x.max(axis=1).reshape((x.shape[0], 1)))
            y /= y.sum(axis=1).reshape((x.shape[0], 1))
            self.assign(out_data[0], req[0], mx.nd.array(y))

        def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
            l = in_data[1].asnumpy().ravel().astype(int)  # noqa: E741 - the script's name
            y = out_data[0].asnumpy()
            y[np.arange(l.shape[0]), l] -= 1.0
            self.assign(in_grad[0], req[0], mx.nd.array(y))

    @mx.operator.register("softmax")
    class SoftmaxProp(mx.operator.CustomOpProp):
        def __init__(self):
            super(SoftmaxProp, self).__init__(need_top_grad=False)  # noqa: UP008 - as written

        def list_arguments(self):
            return ['data', 'label']

        def list_outputs(self):
            return ['output']

        def infer_shape(self, in_shape):
            data_shape = in_shape[0]
            label_shape = (in_shape[0][0],)
            output_shape = in_shape[0]
            return [data_shape, label_shape], [output_shape], []

        def infer_type(self, in_type):
            return in_type, [in_type[0]], []

        def create_operator(self, ctx, shapes, dtypes):
            return Softmax()

    try:
        mx.random.seed(0)
        data = mx.symbol.Variable('data')
        fc1 = mx.symbol.FullyConnected(data=data, name='fc1', num_hidden=128)
        act1 = mx.symbol.Activation(data=fc1, name='relu1', act_type="relu")
        fc2 = mx.symbol.FullyConnected(data=act1, name='fc2', num_hidden=64)
        act2 = mx.symbol.Activation(data=fc2, name='relu2', act_type="relu")
        fc3 = mx.symbol.FullyConnected(data=act2, name='fc3', num_hidden=10)
        mlp = mx.symbol.Custom(data=fc3, name='softmax', op_type='softmax')
        mod = mx.mod.Module(mlp, context=mx.cpu())
        mod.fit(train_data=train, eval_data=val, optimizer='sgd',
                optimizer_params={'learning_rate': 0.1, 'momentum': 0.9, 'wd': 0.00001},
                num_epoch=2, batch_end_callback=mx.callback.Speedometer(100, 100))
        accuracy = mod.score(val, "acc")[0][1]
    finally:
        unregister_prop("softmax")
    assert accuracy > 0.4  # chance is 0.1; SoftmaxOutput in its place gives the same ~0.58
