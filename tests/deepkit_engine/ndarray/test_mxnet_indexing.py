"""MXNet 1.x indexing semantics: slices recorded by autograd, broadcasting assignment."""
import numpy as np
import pytest

from deepkit_engine import autograd, nd
from deepkit_engine.base import ShapeError


@pytest.mark.parametrize("key", [slice(None, 2), 1, (1, slice(None), -1), (Ellipsis, 2),
                                 (slice(None, None, -1), None, 0), (0, slice(2, 0, -1)),
                                 (0, Ellipsis, 1)])
def test_basic_indexing_inside_record_is_differentiated(key):
    values = np.arange(24.0).reshape(2, 3, 4)
    a = nd.array(values)
    a.attach_grad()
    with autograd.record():
        y = a[key]
        z = y * 2
    np.testing.assert_array_equal(y.asnumpy(), values[key])
    z.backward()
    expected = np.zeros_like(values)
    expected[key] = 2
    np.testing.assert_array_equal(a.grad.asnumpy(), expected)


def test_indexing_outside_record_stays_a_view():
    a = nd.zeros((3,))
    a.attach_grad()
    view = a[:2]
    view[:] = 5
    np.testing.assert_array_equal(a.asnumpy(), [5, 5, 0])


def test_slice_assignment_trims_leading_ones_and_broadcasts():
    x = nd.zeros((2, 3, 9))
    x[0] = nd.ones((1, 1, 9))
    assert x.asnumpy()[0].sum() == 27 and x.asnumpy()[1].sum() == 0
    y = nd.zeros((3, 3))
    y[0] = np.ones((1, 1, 1, 1, 3))
    np.testing.assert_array_equal(y.asnumpy()[0], [1, 1, 1])
    z = nd.zeros((1,))
    z[:] = 3.5
    assert z.asnumpy().tolist() == [3.5]
    with pytest.raises(ShapeError, match=r"value of shape \(2, 1, 9\)"):
        x[0] = nd.ones((2, 1, 9))
