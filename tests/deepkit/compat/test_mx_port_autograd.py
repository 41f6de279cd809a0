"""Checks MXNet 1.x behaviour of ``mx.autograd``: recording and training state scopes,
``attach_grad`` with ``write``/``add``/``null``, ``mark_variables``, ``backward`` with head
gradients and ``retain_graph``, ``grad``, ``pause``, ``detach`` and recorded slicing.

Gradients are compared with derivatives written out in numpy.
"""
import numpy as np
import pytest

from deepkit.compat import mxnet as mx

ag = mx.autograd
X = np.array([0.5, -1.0, 2.0], np.float32)


def _leaf(values=X, grad_req="write"):
    x = mx.nd.array(values)
    x.attach_grad(grad_req=grad_req)
    return x


def test_record_pause_and_mode_scopes_set_the_flags():
    assert (ag.is_recording(), ag.is_training()) == (False, False)
    with ag.record():
        assert (ag.is_recording(), ag.is_training()) == (True, True)
        with ag.pause():
            assert (ag.is_recording(), ag.is_training()) == (False, False)
        with ag.predict_mode():
            assert (ag.is_recording(), ag.is_training()) == (True, False)
        assert (ag.is_recording(), ag.is_training()) == (True, True)
    with ag.record(train_mode=False):
        assert (ag.is_recording(), ag.is_training()) == (True, False)
        with ag.train_mode():
            assert ag.is_training()
    with ag.train_mode():
        assert (ag.is_recording(), ag.is_training()) == (False, True)
    assert (ag.is_recording(), ag.is_training()) == (False, False)


def test_set_recording_and_set_training_return_the_previous_state():
    assert ag.set_recording(True) is False
    try:
        assert ag.is_recording()
    finally:
        assert ag.set_recording(False) is True
    assert ag.set_training(True) is False
    try:
        assert ag.is_training()
    finally:
        assert ag.set_training(False) is True


def test_backward_of_a_non_scalar_uses_ones_as_head_gradient():
    x = _leaf()
    with ag.record():
        y = x * x + 3 * x
    y.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), 2 * X + 3, rtol=1e-6)


def test_backward_with_a_head_gradient_scales_the_chain():
    x = _leaf()
    head = np.array([1.0, 0.0, -2.0], np.float32)
    with ag.record():
        y = mx.nd.exp(x)
    y.backward(mx.nd.array(head))
    np.testing.assert_allclose(x.grad.asnumpy(), head * np.exp(X), rtol=1e-6)


def test_grad_req_add_accumulates_over_backward_calls():
    x = _leaf(grad_req="add")
    for _ in range(3):
        with ag.record():
            y = mx.nd.sin(x)
        y.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), 3 * np.cos(X), rtol=1e-5)


def test_grad_req_write_replaces_the_previous_gradient():
    x = _leaf()
    for scale in (5.0, 2.0):
        with ag.record():
            y = x * scale
        y.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), np.full(3, 2.0))


def test_nothing_to_differentiate_raises():
    x = _leaf(grad_req="null")
    with ag.record():
        y = x * 2
    with pytest.raises(mx.MXNetError):
        y.backward()
    unrecorded = _leaf() * 2
    with pytest.raises(mx.MXNetError):
        unrecorded.backward()


def test_retain_graph_allows_a_second_backward_and_without_it_the_graph_is_freed():
    x = _leaf()
    with ag.record():
        y = x * x
    y.backward(retain_graph=True)
    np.testing.assert_allclose(x.grad.asnumpy(), 2 * X)
    y.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), 2 * X)
    with pytest.raises(mx.MXNetError):
        y.backward()


def test_mark_variables_attaches_given_gradient_buffers():
    x = mx.nd.array(X)
    buffer = mx.nd.zeros((3,))
    ag.mark_variables([x], [buffer], grad_reqs="write")
    with ag.record():
        y = mx.nd.tanh(x)
    y.backward()
    np.testing.assert_allclose(buffer.asnumpy(), 1 - np.tanh(X) ** 2, rtol=1e-5)


def test_mark_variables_with_add_accumulates_into_the_buffer():
    x = mx.nd.array(X)
    buffer = mx.nd.ones((3,))
    ag.mark_variables([x], [buffer], grad_reqs="add")
    with ag.record():
        y = x * 4
    y.backward()
    np.testing.assert_allclose(buffer.asnumpy(), np.full(3, 5.0))


def test_autograd_backward_of_several_heads_sums_their_contributions():
    x = _leaf()
    with ag.record():
        doubled = x * 2
        squared = x * x
    ag.backward([doubled, squared], [mx.nd.ones((3,)), mx.nd.array([1.0, 10.0, -1.0])])
    np.testing.assert_allclose(x.grad.asnumpy(), 2 + np.array([1.0, 10.0, -1.0]) * 2 * X,
                               rtol=1e-6)


def test_grad_returns_gradients_without_touching_grad_buffers():
    x = _leaf()
    with ag.record():
        y = x ** 3
    (dx,) = ag.grad(y, [x])
    np.testing.assert_allclose(dx.asnumpy(), 3 * X ** 2, rtol=1e-6)
    np.testing.assert_array_equal(x.grad.asnumpy(), np.zeros(3))


def test_grad_with_create_graph_allows_a_second_derivative():
    x = _leaf()
    with ag.record():
        y = mx.nd.sin(x)
        (dx,) = ag.grad(y, [x], create_graph=True, retain_graph=True)
    np.testing.assert_allclose(dx.asnumpy(), np.cos(X), rtol=1e-5)
    dx.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), -np.sin(X), rtol=1e-5)


def test_work_done_inside_pause_is_not_differentiated():
    x = _leaf()
    with ag.record():
        y = x * 2
        with ag.pause():
            constant = y * 100
        z = y + constant
    z.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), np.full(3, 2.0))


def test_detach_and_block_grad_stop_the_gradient():
    x = _leaf()
    with ag.record():
        z = (x * x).detach() * x
    z.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), X * X, rtol=1e-6)
    x = _leaf()
    with ag.record():
        z = mx.nd.BlockGrad(x * x) + x
    z.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), np.ones(3))


def test_an_output_used_twice_gets_both_gradients():
    x = _leaf()
    with ag.record():
        y = x * x
        z = y + y * 3
    z.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), 8 * X, rtol=1e-6)


def test_basic_slicing_is_recorded():
    values = np.arange(6, dtype=np.float32).reshape(3, 2)
    x = _leaf(values)
    with ag.record():
        tail = x[1:] * 2
        head = x[0] * 5
        total = tail.sum() + head.sum()
    total.backward()
    expected = np.full((3, 2), 2.0, np.float32)
    expected[0] = 5.0
    np.testing.assert_array_equal(x.grad.asnumpy(), expected)


def test_dropout_drops_only_in_training_mode():
    ones = mx.nd.ones((2000,))
    with ag.record():
        trained = mx.nd.Dropout(ones, p=0.5)
    with ag.record(train_mode=False):
        recorded_predicting = mx.nd.Dropout(ones, p=0.5)
    with ag.train_mode():
        training_only = mx.nd.Dropout(ones, p=0.5)
    plain = mx.nd.Dropout(ones, p=0.5)
    for dropped in (trained, training_only):
        values = dropped.asnumpy()
        assert set(np.unique(values)) <= {0.0, 2.0}  # kept values scaled by 1 / (1 - p)
        assert 0.4 < (values == 0).mean() < 0.6
    for kept in (recorded_predicting, plain):
        np.testing.assert_array_equal(kept.asnumpy(), np.ones(2000))


def test_batchnorm_under_record_normalises_with_batch_statistics():
    values = np.array([[1.0, 10.0], [3.0, 30.0]], np.float32)
    x = _leaf(values)
    with ag.record():
        y = mx.nd.BatchNorm(x, mx.nd.ones(2), mx.nd.zeros(2), mx.nd.zeros(2), mx.nd.ones(2),
                            eps=1e-3)
    mean, var = values.mean(axis=0), values.var(axis=0)
    np.testing.assert_allclose(y.asnumpy(), (values - mean) / np.sqrt(var + 1e-3), rtol=1e-4)


def test_in_place_update_of_a_recorded_array_raises():
    x = _leaf()
    with pytest.raises(mx.MXNetError):
        with ag.record():
            y = x * 2
            y += 1


def test_get_symbol_gives_the_recorded_graph():
    x = _leaf()
    with ag.record():
        y = mx.nd.relu(x * 2)
    graph = ag.get_symbol(y)
    assert len(graph.list_outputs()) == 1 and len(graph.list_arguments()) == 1
    out = graph.eval(**{graph.list_arguments()[0]: mx.nd.array(X)})[0]
    np.testing.assert_allclose(out.asnumpy(), np.maximum(X * 2, 0))
