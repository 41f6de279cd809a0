"""mx.mod.Module: MXNet 1.9.1's API and defaults on deepkit's trainer and executors."""
import logging
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from deepkit.compat import mxnet as mx
from deepkit_engine.base import DeepkitError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def _blobs(n=120, d=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x @ rng.normal(size=(d, classes))).argmax(1).astype(np.float32)
    return x, y


def _mlp(hidden=8, classes=3):
    net = mx.sym.Variable("data")
    net = mx.sym.FullyConnected(net, name="fc1", num_hidden=hidden)
    net = mx.sym.Activation(net, name="relu1", act_type="relu")
    net = mx.sym.FullyConnected(net, name="fc2", num_hidden=classes)
    return mx.sym.SoftmaxOutput(net, name="softmax")


def _numpy_step(params, x, y, lr, batch):
    """One MXNet SGD step of the MLP: SoftmaxOutput's summed gradient, rescale 1/batch."""
    h = x @ params["fc1_weight"].T + params["fc1_bias"]
    a = np.maximum(h, 0)
    z = a @ params["fc2_weight"].T + params["fc2_bias"]
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz = p.copy()
    dz[np.arange(len(y)), y.astype(int)] -= 1
    dh = (dz @ params["fc2_weight"]) * (h > 0)
    grads = {"fc2_weight": dz.T @ a, "fc2_bias": dz.sum(0), "fc1_weight": dh.T @ x,
             "fc1_bias": dh.sum(0)}
    return p, {k: params[k] - lr * grads[k] / batch for k in params}


def _bound(batch=20, **kwargs):
    x, y = _blobs()
    it = mx.io.NDArrayIter(x, y, batch)
    mod = mx.mod.Module(_mlp(), **kwargs)
    mod.bind(data_shapes=it.provide_data, label_shapes=it.provide_label)
    return mod, it


# -- the step API ----------------------------------------------------------------------
def test_forward_backward_update_is_mxnets_sgd_step():
    mod, it = _bound()
    mod.init_params(mx.init.Xavier())
    mod.init_optimizer(optimizer="sgd", optimizer_params=(("learning_rate", 0.5),))
    assert mod._optimizer.rescale_grad == pytest.approx(1 / 20)  # MXNet's default
    before = {k: v.asnumpy().astype(np.float64) for k, v in mod.get_params()[0].items()}
    batch = next(iter(it))
    mod.forward(batch, is_train=True)
    mod.backward()
    mod.update()
    probs, after = _numpy_step(before, batch.data[0].asnumpy(), batch.label[0].asnumpy(), 0.5,
                               20)
    np.testing.assert_allclose(mod.get_outputs()[0].asnumpy(), probs, rtol=1e-4, atol=1e-6)
    for k, v in mod.get_params()[0].items():
        np.testing.assert_allclose(v.asnumpy(), after[k], rtol=1e-4, atol=1e-6)
    assert mod.output_shapes == [("softmax_output", (20, 3))]
    metric = mx.metric.create("acc")
    mod.update_metric(metric, batch.label)
    assert metric.num_inst == 20


def test_forward_without_is_train_uses_for_training_and_batch_size_changes_rebind():
    mod, it = _bound()
    mod.init_params()
    mod.init_optimizer()
    small = mx.io.DataBatch([mx.nd.ones((7, 6))], [mx.nd.zeros((7,))])
    mod.forward(small)
    assert mod.get_outputs()[0].shape == (7, 3)
    mod.backward()
    mod.update()
    with pytest.raises(ValueError, match=r"bound for samples of shape \(6,\)"):
        mod.forward(mx.io.DataBatch([mx.nd.ones((7, 5))], [mx.nd.zeros((7,))]))


def test_default_initializer_is_uniform_001_and_params_round_trip():
    mod, _ = _bound()
    mod.init_params()
    arg, aux = mod.get_params()
    w = arg["fc1_weight"].asnumpy()
    assert np.abs(w).max() <= 0.01 and w.std() > 0.001
    assert np.all(arg["fc1_bias"].asnumpy() == 0) and aux == {}
    new = {k: mx.nd.ones(v.shape) for k, v in arg.items()}
    mod.set_params(new, {})
    assert np.all(mod.get_params()[0]["fc2_weight"].asnumpy() == 1)


def test_init_params_missing_extra_and_shapes_are_errors():
    mod, _ = _bound()
    with pytest.raises(RuntimeError, match="fc1_bias is not presented"):
        mod.init_params(arg_params={"fc1_weight": mx.nd.ones((8, 6))})
    with pytest.raises(ValueError, match=r"'nope'\], which the symbol does not have"):
        mod.init_params(arg_params={"nope": mx.nd.ones(1)}, allow_missing=True)
    with pytest.raises(ValueError, match=r"'fc1_weight' has shape \(8, 6\).*\(2, 2\)"):
        mod.init_params(arg_params={"fc1_weight": mx.nd.ones((2, 2))}, allow_missing=True)
    mod.init_params(arg_params={"fc1_weight": mx.nd.ones((8, 6))}, allow_missing=True,
                    initializer=mx.init.Zero())
    arg = mod.get_params()[0]
    assert np.all(arg["fc1_weight"].asnumpy() == 1) and np.all(arg["fc2_weight"].asnumpy() == 0)
    with pytest.warns(UserWarning, match="already initialized"):
        mod.init_params()
    with pytest.raises(DeepkitError, match=r"call bind\(\) first"):
        mx.mod.Module(_mlp()).init_params()


def test_fixed_params_inputs_need_grad_and_grad_req_add():
    x, y = _blobs()
    it = mx.io.NDArrayIter(x, y, 20)
    mod = mx.mod.Module(_mlp(), fixed_param_names=["fc1_weight"])
    mod.bind(it.provide_data, it.provide_label, inputs_need_grad=True)
    mod.init_params(mx.init.Xavier())
    mod.init_optimizer(optimizer_params={"learning_rate": 1.0})
    fixed = mod.get_params()[0]["fc1_weight"].asnumpy()
    moving = mod.get_params()[0]["fc2_weight"].asnumpy()
    batch = next(iter(it))
    mod.forward_backward(batch)
    mod.update()
    grads = mod.get_input_grads()[0].asnumpy()
    assert grads.shape == (20, 6) and np.abs(grads).sum() > 0
    np.testing.assert_array_equal(mod.get_params()[0]["fc1_weight"].asnumpy(), fixed)
    assert not np.allclose(mod.get_params()[0]["fc2_weight"].asnumpy(), moving)
    with pytest.raises(ValueError, match="not parameters of the symbol"):
        mx.mod.Module(_mlp(), fixed_param_names=["data"])

    add = mx.mod.Module(_mlp())
    add.bind(it.provide_data, it.provide_label, grad_req="add")
    add.init_params(mx.init.One())
    add.forward_backward(batch)
    once = add._exec.grad_dict["fc2_weight"].asnumpy().copy()
    add.forward_backward(batch)
    np.testing.assert_allclose(add._exec.grad_dict["fc2_weight"].asnumpy(), 2 * once, rtol=1e-5)


def test_unknown_data_names_and_inference_modules():
    with pytest.raises(ValueError, match="data name 'image' is not an argument"):
        mx.mod.Module(_mlp(), data_names=["image"])
    x, y = _blobs(n=50)
    unlabelled = mx.mod.Module(_mlp(), label_names=None)  # the label becomes a parameter
    unlabelled.bind(data_shapes=[("data", (25, 6))], for_training=False)
    with pytest.raises(ValueError, match="initialization pattern for 'softmax_label'"):
        unlabelled.init_params(mx.init.Xavier())
    mod = mx.mod.Module(_mlp())
    mod.bind(data_shapes=[("data", (25, 6))], for_training=False)
    mod.init_params(mx.init.Xavier())
    out = mod.predict(mx.io.NDArrayIter(x, None, 25))
    assert out.shape == (50, 3)
    np.testing.assert_allclose(out.asnumpy().sum(1), 1, rtol=1e-5)
    with pytest.raises(DeepkitError, match="for_training=False"):
        mod.backward()


# -- fit, score, predict, checkpoints --------------------------------------------------
def test_fit_logs_like_mxnet_and_learns(caplog):
    x, y = _blobs(n=200)
    train = mx.io.NDArrayIter(x[:160], y[:160], 20, shuffle=True)
    val = mx.io.NDArrayIter(x[160:], y[160:], 20)
    mx.random.seed(1)
    mod = mx.mod.Module(_mlp(16))
    seen = []
    with caplog.at_level(logging.INFO):
        mod.fit(train, eval_data=val, optimizer="sgd",
                optimizer_params={"learning_rate": 0.5, "momentum": 0.9},
                initializer=mx.init.Xavier(), num_epoch=6,
                batch_end_callback=lambda p: seen.append((p.epoch, p.nbatch)))
    text = caplog.text
    assert "Epoch[0] Train-accuracy=" in text and "Epoch[5] Validation-accuracy=" in text
    assert "Epoch[0] Time cost=" in text
    assert seen[:2] == [(0, 1), (0, 2)] and len(seen) == 6 * 8
    (name, value), = mod.score(val, "acc")
    assert name == "accuracy" and value > 0.8
    assert mod.predict(val).shape == (40, 3)
    outputs = list(mod.iter_predict(val))
    assert len(outputs) == 2 and outputs[1][1] == 1


def test_fit_with_a_separate_validation_metric(caplog):
    x, y = _blobs(n=80)
    it = mx.io.NDArrayIter(x, y, 20)
    with caplog.at_level(logging.INFO):
        mx.mod.Module(_mlp()).fit(it, eval_data=it, num_epoch=1, validation_metric="ce")
    assert "Epoch[0] Validation-cross-entropy=" in caplog.text


def test_checkpoint_resume_and_optimizer_states(tmp_path):
    x, y = _blobs(n=80)
    it = mx.io.NDArrayIter(x, y, 20)
    prefix = str(tmp_path / "mlp")
    mod = mx.mod.Module(_mlp())
    mod.fit(it, num_epoch=2, optimizer_params={"learning_rate": 0.1, "momentum": 0.9},
            epoch_end_callback=mx.callback.do_checkpoint(prefix))
    assert sorted(os.listdir(tmp_path)) == ["mlp-0001.params", "mlp-0002.params",
                                            "mlp-symbol.json"]
    mod.save_checkpoint(prefix, 2, save_optimizer_states=True)
    arg = mod.get_params()[0]
    loaded = mx.mod.Module.load(prefix, 2, load_optimizer_states=True)
    loaded.bind(it.provide_data, it.provide_label)
    for k, v in loaded.get_params()[0].items():
        np.testing.assert_array_equal(v.asnumpy(), arg[k].asnumpy())
    loaded.init_optimizer(optimizer_params={"learning_rate": 0.1, "momentum": 0.9})
    assert loaded._optimizer.num_update == mod._optimizer.num_update == 8
    state = loaded._optimizer.get_state()["states"]["fc1_weight"][0]
    np.testing.assert_array_equal(state, mod._optimizer.get_state()["states"]["fc1_weight"][0])
    epochs = []
    with pytest.warns(UserWarning, match="already initialized"):
        loaded.fit(it, num_epoch=3, begin_epoch=2, epoch_end_callback=lambda e, *a:
                   epochs.append(e))
    assert epochs == [2]


def test_real_mxnet_checkpoint_scores_what_mxnet_recorded(shared_data):
    """MXNet 1.9.1's own MNIST checkpoint: Module.score must give exactly 0.9731."""
    folder = shared_data / "mxnet"
    mnist = mx.test_utils.get_mnist()
    test_iter = mx.io.NDArrayIter(mnist["test_data"].reshape(-1, 784),
                                  mnist["test_label"].astype(np.float32), 100)
    symbol, arg_params, aux_params = mx.model.load_checkpoint(str(folder / "mnist_mlp"), 3)
    mod = mx.mod.Module(symbol, context=mx.cpu(), data_names=["data"],
                        label_names=["softmax_label"])
    mod.bind(data_shapes=test_iter.provide_data, label_shapes=test_iter.provide_label,
             for_training=False)
    mod.set_params(arg_params, aux_params)
    assert mod.score(test_iter, "acc") == [("accuracy", 0.9731)]
    ref = np.load(folder / "reference.npz")
    loaded = mx.mod.Module.load(str(folder / "mnist_mlp"), 3)
    loaded.bind(data_shapes=[("data", (100, 784))], for_training=False)
    out = loaded.predict(mx.io.NDArrayIter(ref["data"], None, 100))
    np.testing.assert_allclose(out.asnumpy(), ref["output"], atol=1e-6)


def test_mnist_module_example_runs_the_tutorial_on_a_subset(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "mnist_module.py"), "--samples", "3000",
         "--test-samples", "500", "--epochs", "2", "--seed", "0", "--checkpoint-dir",
         str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=ROOT, env=env,
        check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Epoch[1] Validation-accuracy=" in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["mx_mlp-0001.params", "mx_mlp-0002.params",
                                            "mx_mlp-symbol.json"]
    accuracy = float(re.search(r"Test accuracy: ([\d.]+)", result.stdout).group(1))
    assert accuracy > 0.85, result.stdout


def test_fit_on_a_list_of_contexts_is_data_parallel_and_equals_one_context():
    x, y = _blobs(n=120)
    results = []
    for context in ([mx.cpu(0)], [mx.cpu(0), mx.cpu(1)]):
        mx.random.seed(2)
        it = mx.io.NDArrayIter(x, y, 30)
        mod = mx.mod.Module(_mlp(), context=context)
        metric = mx.metric.Accuracy()
        mod.fit(it, num_epoch=3, eval_metric=metric, optimizer="sgd",
                optimizer_params={"learning_rate": 0.5, "momentum": 0.9},
                initializer=mx.init.Xavier())
        results.append((mod.get_params()[0], metric.get()))
    assert mod._net.executors(mx.cpu(1))._executors  # the second context trained its part
    (one, acc_one), (two, acc_two) = results
    assert acc_one == acc_two
    for name, value in one.items():
        np.testing.assert_allclose(two[name].asnumpy(), value.asnumpy(), atol=1e-6, rtol=0,
                                   err_msg=name)
