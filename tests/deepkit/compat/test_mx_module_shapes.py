"""mx.mod.Module when shapes change: reshape, forward with a new batch, set_params checks,
and the step API on a network without parameters (MXNet 1.9.1's behaviour)."""
import numpy as np
import pytest

from deepkit.compat import mxnet as mx


def _regression(hidden=2):
    net = mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=hidden, name="fc")
    return mx.sym.LinearRegressionOutput(net, name="lro")


def _bound(batch=4, features=3, hidden=2):
    mod = mx.mod.Module(_regression(hidden), label_names=["lro_label"])
    mod.bind(data_shapes=[("data", (batch, features))],
             label_shapes=[("lro_label", (batch, hidden))])
    mod.init_params(mx.init.Uniform(0.5))
    return mod


def _params(mod):
    return {k: v.asnumpy().astype(np.float64) for k, v in mod.get_params()[0].items()}


def test_reshape_to_a_new_batch_size_keeps_the_trained_parameters():
    mod = _bound(batch=4)
    mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.1})
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    mod.forward_backward(mx.io.DataBatch([mx.nd.array(x)], [mx.nd.array(y)]))
    mod.update()
    trained = _params(mod)

    mod.reshape(data_shapes=[("data", (7, 3))], label_shapes=[("lro_label", (7, 2))])
    assert mod.data_shapes[0].shape == (7, 3) and mod.label_shapes[0].shape == (7, 2)
    for k, v in _params(mod).items():
        np.testing.assert_array_equal(v, trained[k])
    x7 = rng.normal(size=(7, 3))
    mod.forward(mx.io.DataBatch([mx.nd.array(x7)], [mx.nd.zeros((7, 2))]), is_train=False)
    expected = x7 @ trained["fc_weight"].T + trained["fc_bias"]
    np.testing.assert_allclose(mod.get_outputs()[0].asnumpy(), expected, rtol=1e-5, atol=1e-6)


def test_reshape_that_would_change_a_parameter_shape_is_refused():
    mod = _bound(features=3)
    before = _params(mod)
    with pytest.raises(ValueError, match=r"Module.reshape.*'fc_weight' of shape \(2, 5\).*"
                                         r"has shape \(2, 3\)"):
        mod.reshape(data_shapes=[("data", (4, 5))], label_shapes=[("lro_label", (4, 2))])
    with pytest.raises(mx.MXNetError, match="'dta' is not an input.*did you mean 'data'"):
        mod.reshape(data_shapes=[("dta", (4, 3))], label_shapes=[("lro_label", (4, 2))])
    # the module is still usable at its old shapes
    assert mod.data_shapes[0].shape == (4, 3)
    for k, v in _params(mod).items():
        np.testing.assert_array_equal(v, before[k])


def test_forward_rebinds_for_a_batch_with_a_new_sample_shape():
    mod = mx.mod.Module(mx.sym.Variable("data") * 3 - 1, label_names=None)
    mod.bind(data_shapes=[("data", (2, 4))], for_training=False)
    mod.init_params()
    x = np.arange(24.0).reshape(2, 3, 4)
    mod.forward(mx.io.DataBatch([mx.nd.array(x)]))
    assert mod.data_shapes[0].shape == (2, 3, 4)
    np.testing.assert_allclose(mod.get_outputs()[0].asnumpy(), x * 3 - 1)


def test_forward_with_a_new_batch_size_but_incompatible_features_fails_clearly():
    mod = _bound(batch=4, features=3)
    batch = mx.io.DataBatch([mx.nd.ones((5, 3))], [mx.nd.ones((5, 2))])
    mod.forward(batch, is_train=False)
    assert mod.get_outputs()[0].shape == (5, 2)
    with pytest.raises(ValueError, match=r"'fc_weight' of shape \(2, 6\)"):
        mod.forward(mx.io.DataBatch([mx.nd.ones((5, 6))], [mx.nd.ones((5, 2))]))


def test_set_params_reports_missing_before_extra():
    mod = _bound()
    weight, bias = np.full((2, 3), 0.25), np.array([1.0, -1.0])
    full = {"fc_weight": mx.nd.array(weight), "fc_bias": mx.nd.array(bias)}
    mod.set_params(full, {}, force_init=True)
    np.testing.assert_array_equal(_params(mod)["fc_bias"], bias)

    only_unknown = {"other_weight": mx.nd.ones((1,))}
    with pytest.raises(RuntimeError, match="fc_.* is not presented"):
        mod.set_params(only_unknown, {}, force_init=True)  # missing wins over extra
    with pytest.raises(ValueError, match=r"\['other_weight'\].*allow_extra=True"):
        mod.set_params(only_unknown, {}, force_init=True, allow_missing=True)
    with pytest.raises(ValueError, match=r"\['other_weight'\]"):
        mod.set_params(dict(full, other_weight=mx.nd.ones((1,))), {}, force_init=True)

    # allowed: the known values are set, the rest is ignored
    mod.set_params({"fc_weight": mx.nd.array(-weight), "other_weight": mx.nd.ones((1,))}, {},
                   force_init=True, allow_missing=True, allow_extra=True)
    np.testing.assert_array_equal(_params(mod)["fc_weight"], -weight)
    with pytest.raises(ValueError, match=r"'fc_weight' has shape \(2, 3\).*\(3, 2\)"):
        mod.set_params({"fc_weight": mx.nd.ones((3, 2)), "fc_bias": mx.nd.ones((2,))}, {},
                       force_init=True)


def test_step_api_on_a_network_without_parameters():
    mod = mx.mod.Module(mx.sym.Dropout(mx.sym.Variable("data"), p=0.5), label_names=None)
    mod.bind(data_shapes=[("data", (6, 8))], inputs_need_grad=True)
    mod.init_params()
    mod.init_optimizer()
    assert mod.get_params() == ({}, {})
    x = np.random.default_rng(1).uniform(1, 2, size=(6, 8))
    mod.forward(mx.io.DataBatch([mx.nd.array(x)]), is_train=True)
    mod.backward([mx.nd.ones((6, 8))])
    mod.update()  # nothing to update
    out = mod.get_outputs()[0].asnumpy()
    kept = out != 0
    assert 0 < kept.mean() < 1
    np.testing.assert_allclose(out[kept], x[kept] * 2, rtol=1e-6)  # 1 / (1 - p)
    # the input gradient is the same mask, scaled: d out / d x
    np.testing.assert_allclose(mod.get_input_grads()[0].asnumpy(), kept * 2.0, rtol=1e-6)
    assert mod.get_params() == ({}, {})
