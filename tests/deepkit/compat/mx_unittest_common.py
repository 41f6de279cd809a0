"""MXNet 1.9.1's unit-test helpers (``mxnet.test_utils``, ``tests/python/unittest/common.py``).

The ``test_mx_unittest_*.py`` modules are MXNet's own unit tests, ported by
replacing ``import mxnet as mx`` with ``from deepkit.compat import mxnet as
mx`` and MXNet's test helpers with these, which follow MXNet's definitions.
"""
import contextlib
import functools
import os
import random
import shutil
import sys
import tempfile

import numpy as np
import pytest
from packaging.version import Version as _Version

from deepkit.compat import mxnet as mx
from deepkit_engine import testing as _testing

__all__ = ["with_seed", "assertRaises", "assert_raises", "raises", "setup_module", "teardown",
           "TemporaryDirectory", "default_context", "default_dtype", "same", "almost_equal",
           "assert_almost_equal", "assert_exception", "reldiff", "rand_shape_2d",
           "rand_shape_3d", "rand_shape_nd", "random_arrays", "random_sample", "rand_ndarray",
           "np_reduce", "check_numeric_gradient", "check_symbolic_forward",
           "check_symbolic_backward", "check_consistency", "simple_forward", "environment",
           "default_numeric_eps", "sys",
           "discard_stderr",
           "assert_allclose", "assert_array_equal", "assert_array_almost_equal"]

assert_allclose = np.testing.assert_allclose
assert_array_equal = np.testing.assert_array_equal
assert_array_almost_equal = np.testing.assert_array_almost_equal


# -- common.py ----------------------------------------------------------------------------
def with_seed(seed=None):
    """Seed numpy, ``random`` and ``mx.random`` before the test (MXNet's decorator).

    Without a seed, MXNet draws one and logs it; here each test gets a fixed
    one derived from its name, so runs repeat.
    """
    def decorator(test):
        @functools.wraps(test)
        def wrapper(*args, **kwargs):
            value = seed if seed is not None else sum(map(ord, test.__name__)) % (2 ** 31)
            np.random.seed(value)
            random.seed(value)
            mx.random.seed(value)
            return test(*args, **kwargs)
        return wrapper
    return decorator


def assertRaises(expected_exception, func, *args, **kwargs):
    """Fail unless ``func(*args, **kwargs)`` raises ``expected_exception``."""
    with pytest.raises(expected_exception):
        func(*args, **kwargs)


def assert_raises(expected_exception, func=None, *args, **kwargs):
    """nose's ``assert_raises``: a call, or (without ``func``) a context manager."""
    if func is None:
        return pytest.raises(expected_exception)
    with pytest.raises(expected_exception):
        func(*args, **kwargs)


def raises(*exceptions):
    """nose's ``@raises``: the test passes only if it raises one of ``exceptions``."""
    def decorator(test):
        @functools.wraps(test)
        def wrapper(*args, **kwargs):
            with pytest.raises(exceptions):
                test(*args, **kwargs)
        return wrapper
    return decorator


def setup_module():
    """MXNet's per-module seeding: nothing to do here (``with_seed`` seeds each test)."""


def teardown():
    """MXNet's per-module cleanup: nothing to do here."""


@contextlib.contextmanager
def TemporaryDirectory(*args, **kwargs):
    """A temporary directory, removed afterwards (MXNet's ``common.TemporaryDirectory``)."""
    path = tempfile.mkdtemp(*args, **kwargs)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- mxnet.test_utils ----------------------------------------------------------------------
def default_context():
    return _testing.default_context()


def default_dtype():
    return np.float32


def _numpy(a):
    return a.asnumpy() if isinstance(a, mx.nd.NDArray) else np.asarray(a)


def same(a, b):
    """Whether ``a`` and ``b`` are exactly equal (MXNet: ``np.array_equal``)."""
    return np.array_equal(_numpy(a), _numpy(b))


def almost_equal(a, b, rtol=None, atol=None, equal_nan=False, use_broadcast=True):
    """Whether ``|a - b| <= atol + rtol * |b|`` elementwise (MXNet's tolerances by dtype)."""
    return mx.test_utils.almost_equal(a, b, rtol, atol, equal_nan, use_broadcast)


def _tols(a, b, rtol, atol):
    """MXNet 1.9.1's ``get_tols``: given tolerances, else the largest default of the dtypes."""
    rtols = {"float16": 1e-2, "float32": 1e-4, "float64": 1e-5}
    atols = {"float16": 1e-1, "float32": 1e-3, "float64": 1e-20}
    names = [np.dtype(x.dtype).name for x in (a, b)]
    if rtol is None:
        rtol = max(rtols.get(n, 0) for n in names)
    if atol is None:
        atol = max(atols.get(n, 0) for n in names)
    return rtol, atol


def assert_almost_equal(a, b, rtol=None, atol=None, names=("a", "b"), equal_nan=False,
                        use_broadcast=True, mismatches=(10, 10)):
    """Assert :func:`almost_equal`, naming the worst element when it fails."""
    a, b = _numpy(a), _numpy(b)
    if not use_broadcast:
        assert a.shape == b.shape, f"shapes differ: {a.shape} vs {b.shape}"
    rtol, atol = _tols(a, b, rtol, atol)
    _testing.assert_almost_equal(a, b, rtol, atol, names=names, equal_nan=equal_nan)


def assert_exception(f, exception_type, *args, **kwargs):
    """Fail unless ``f(*args, **kwargs)`` raises ``exception_type``."""
    with pytest.raises(exception_type):
        f(*args, **kwargs)


def reldiff(a, b):
    """``sum |a - b| / sum |a|`` (0 when both are zero)."""
    a, b = _numpy(a), _numpy(b)
    diff = np.sum(np.abs(a - b))
    norm = np.sum(np.abs(a))
    return 0 if diff == 0 else diff / norm


rand_shape_2d = mx.test_utils.rand_shape_2d
rand_shape_3d = mx.test_utils.rand_shape_3d
rand_shape_nd = mx.test_utils.rand_shape_nd
random_arrays = mx.test_utils.random_arrays
rand_ndarray = mx.test_utils.rand_ndarray


def random_sample(population, k):
    """``k`` distinct elements of ``population`` in random order."""
    population_copy = list(population)
    np.random.shuffle(population_copy)
    return population_copy[0:k]


def np_reduce(dat, axis, keepdims, numpy_reduce_func):
    """Reduce ``dat`` over ``axis`` (an int, a tuple or None) with a numpy reduction."""
    if isinstance(axis, int):
        axis = [axis]
    else:
        axis = list(axis) if axis is not None else range(len(dat.shape))
    ret = dat
    for i in reversed(sorted(axis)):
        ret = numpy_reduce_func(ret, axis=i)
    if keepdims:
        keepdims_shape = list(dat.shape)
        for i in axis:
            keepdims_shape[i] = 1
        ret = ret.reshape(tuple(keepdims_shape))
    return ret


def default_numeric_eps():
    """MXNet's finite-difference steps per dtype (powers of two)."""
    return {np.dtype(np.float16): 1.0 / 2 ** 6, np.dtype(np.float32): 1.0 / 2 ** 9,
            np.dtype(np.float64): 1.0 / 2 ** 14}


def _default_tols(dtype, rtol, atol):
    """MXNet 1.9.1's tolerances for ``dtype`` where the caller gives none."""
    name = np.dtype(dtype).name
    rtols = {"float16": 1e-2, "float32": 1e-4, "float64": 1e-5}
    atols = {"float16": 1e-1, "float32": 1e-3, "float64": 1e-20}
    return (rtols.get(name, 1e-4) if rtol is None else rtol,
            atols.get(name, 1e-3) if atol is None else atol)


def _location_dtype(location, dtype):
    """``dtype='asnumpy'`` (MXNet: keep the inputs' own dtype) as the inputs' dtype."""
    if not (isinstance(dtype, str) and dtype == "asnumpy"):
        return dtype
    values = location.values() if isinstance(location, dict) else location
    return next((_numpy(v).dtype for v in values), np.dtype(np.float32))


def check_numeric_gradient(sym, location, aux_states=None, numeric_eps=None, rtol=None,
                           atol=None, grad_nodes=None, use_forward_train=True, ctx=None,
                           grad_stype_dict=None, dtype=np.float32):
    """Finite differences against the symbol's gradients (MXNet 1.9.1's defaults).

    The differences are taken in float64 (more exact than MXNet's float32),
    with the step and tolerances MXNet uses for ``dtype``.
    """
    dtype = _location_dtype(location, dtype)
    eps = default_numeric_eps().get(np.dtype(dtype), 1.0 / 2 ** 9) \
        if numeric_eps is None else numeric_eps
    rtol, atol = _default_tols(dtype, rtol, atol)
    _testing.check_numeric_gradient(sym, location, aux_states=aux_states, numeric_eps=eps,
                                    rtol=rtol, atol=atol, grad_nodes=grad_nodes, ctx=ctx,
                                    dtype=np.float64, is_train=use_forward_train)


def check_symbolic_forward(sym, location, expected, rtol=None, atol=None, aux_states=None,
                           ctx=None, equal_nan=False, dtype=np.float32):
    """Bind ``sym`` at ``location`` and compare its outputs with ``expected``."""
    dtype = _location_dtype(location, dtype)
    rtol, atol = _default_tols(dtype, rtol, atol)
    return _testing.check_symbolic_forward(sym, location, expected, rtol=rtol, atol=atol,
                                           aux_states=aux_states, ctx=ctx, dtype=dtype)


def check_symbolic_backward(sym, location, out_grads, expected, rtol=None, atol=None,
                            aux_states=None, grad_req="write", ctx=None, grad_stypes=None,
                            equal_nan=False, dtype=np.float32):
    """Run forward and backward with ``out_grads``; compare the gradients with ``expected``."""
    dtype = _location_dtype(location, dtype)
    rtol, atol = _default_tols(dtype, rtol, atol)
    return _testing.check_symbolic_backward(sym, location, out_grads, expected, rtol=rtol,
                                            atol=atol, aux_states=aux_states, ctx=ctx,
                                            dtype=dtype)


check_consistency = mx.test_utils.check_consistency


def simple_forward(sym, ctx=None, is_train=False, **inputs):
    """Bind ``sym`` to the numpy ``inputs``, run forward, return numpy output(s)."""
    inputs = {k: mx.nd.array(v) for k, v in inputs.items()}
    exe = sym.bind(ctx or default_context(), args=inputs)
    exe.forward(is_train=is_train)
    outputs = [x.asnumpy() for x in exe.outputs]
    return outputs[0] if len(outputs) == 1 else outputs


@contextlib.contextmanager
def environment(*args):
    """Set environment variables for the block (a name and value, or a dict)."""
    values = args[0] if len(args) == 1 else {args[0]: args[1]}
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = str(v)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def discard_stderr():
    """Run the block with stderr discarded (MXNet's helper for tests that log errors)."""
    with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
        yield


#: ``mxnet.base.integer_types`` and ``py_slice``; ``distutils``' ``LooseVersion``.
integer_types = (int, np.integer)
py_slice = slice
LooseVersion = _Version
__all__ += ["integer_types", "py_slice", "LooseVersion"]

#: ``mxnet.base.NotImplementedForSymbol``: what an operation a Symbol cannot do raises.
NotImplementedForSymbol = mx.MXNetError
__all__ += ["NotImplementedForSymbol"]


# -- tests/python/common/models.py ----------------------------------------------------------
def _mlp2():
    data = mx.symbol.Variable('data')
    out = mx.symbol.FullyConnected(data=data, name='fc1', num_hidden=1000)
    out = mx.symbol.Activation(data=out, act_type='relu')
    out = mx.symbol.FullyConnected(data=out, name='fc2', num_hidden=10)
    return out


def _conv():
    data = mx.symbol.Variable('data')
    conv1 = mx.symbol.Convolution(data=data, name='conv1', num_filter=32, kernel=(3, 3),
                                  stride=(2, 2))
    bn1 = mx.symbol.BatchNorm(data=conv1, name="bn1")
    act1 = mx.symbol.Activation(data=bn1, name='relu1', act_type="relu")
    mp1 = mx.symbol.Pooling(data=act1, name='mp1', kernel=(2, 2), stride=(2, 2),
                            pool_type='max')
    conv2 = mx.symbol.Convolution(data=mp1, name='conv2', num_filter=32, kernel=(3, 3),
                                  stride=(2, 2))
    bn2 = mx.symbol.BatchNorm(data=conv2, name="bn2")
    act2 = mx.symbol.Activation(data=bn2, name='relu2', act_type="relu")
    mp2 = mx.symbol.Pooling(data=act2, name='mp2', kernel=(2, 2), stride=(2, 2),
                            pool_type='max')
    fl = mx.symbol.Flatten(data=mp2, name="flatten")
    fc2 = mx.symbol.FullyConnected(data=fl, name='fc2', num_hidden=10)
    return mx.symbol.SoftmaxOutput(data=fc2, name='sm')


#: MXNet's ``tests/python/common/models.py`` (``from common import models``).
models = type(os)("models", "The test networks of MXNet's tests/python/common/models.py.")
models.mlp2, models.conv = _mlp2, _conv
__all__ += ["models"]


# -- the other names MXNet's test_operator.py imports ---------------------------------------
def assert_raises_cudnn_not_satisfied(min_version):
    """MXNet's check of a cuDNN version; on these devices the test simply runs."""
    def decorator(test):
        return test
    return decorator


assert_raises_cuda_not_satisfied = assert_raises_cudnn_not_satisfied


def with_environment(*args_):
    """Run the test with environment variables set (MXNet's decorator)."""
    def decorator(test):
        @functools.wraps(test)
        def wrapper(*args, **kwargs):
            with environment(*args_):
                return test(*args, **kwargs)
        return wrapper
    return decorator


def ok_(expr, msg=None):
    """nose's ``ok_``: assert ``expr``."""
    assert expr, msg


def py_str(x):
    return x.decode("utf-8") if isinstance(x, bytes) else str(x)


def _as_list(obj):
    return obj if isinstance(obj, list) else [obj]


MXNetError = mx.MXNetError
CustomOp, CustomOpProp = mx.operator.CustomOp, mx.operator.CustomOpProp
__all__ += ["assert_raises_cudnn_not_satisfied", "assert_raises_cuda_not_satisfied",
            "with_environment", "ok_", "py_str", "_as_list", "MXNetError", "CustomOp",
            "CustomOpProp"]


def default_rtols():
    """MXNet 1.9.1's default relative tolerances per dtype."""
    return {np.dtype(np.float16): 1e-2, np.dtype(np.float32): 1e-4,
            np.dtype(np.float64): 1e-5, np.dtype(np.bool_): 0, np.dtype(np.int8): 0,
            np.dtype(np.uint8): 0, np.dtype(np.int32): 0, np.dtype(np.uint32): 0,
            np.dtype(np.int64): 0, np.dtype(np.uint64): 0}


def default_atols():
    """MXNet 1.9.1's default absolute tolerances per dtype."""
    return {np.dtype(np.float16): 1e-1, np.dtype(np.float32): 1e-3,
            np.dtype(np.float64): 1e-20, np.dtype(np.bool_): 0, np.dtype(np.int8): 0,
            np.dtype(np.uint8): 0, np.dtype(np.int32): 0, np.dtype(np.uint32): 0,
            np.dtype(np.int64): 0, np.dtype(np.uint64): 0}


def assert_almost_equal_ignore_nan(a, b, rtol=None, atol=None, names=("a", "b")):
    """:func:`assert_almost_equal` with the positions that are NaN in either array ignored."""
    a, b = np.copy(_numpy(a)), np.copy(_numpy(b))
    nan_mask = np.logical_or(np.isnan(a), np.isnan(b))
    a[nan_mask] = 0
    b[nan_mask] = 0
    assert_almost_equal(a, b, rtol, atol, names)


__all__ += ["default_rtols", "default_atols", "assert_almost_equal_ignore_nan"]
