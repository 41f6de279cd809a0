"""MXNet 1.x's ``mx`` namespace over deepkit: ``from deepkit.compat import mxnet as mx``.

Classic MXNet scripts run after changing only their import line::

    from deepkit.compat import mxnet as mx      # was: import mxnet as mx

    mnist = mx.test_utils.get_mnist()
    train_iter = mx.io.NDArrayIter(mnist['train_data'], mnist['train_label'], 100,
                                   shuffle=True)
    data = mx.sym.flatten(mx.sym.var('data'))
    fc = mx.sym.FullyConnected(data, num_hidden=10)
    mlp = mx.sym.SoftmaxOutput(fc, name='softmax')
    model = mx.model.FeedForward(mlp, ctx=mx.cpu(), num_epoch=10, learning_rate=0.1)
    model.fit(train_iter, batch_end_callback=mx.callback.Speedometer(100, 200))

What is here:

* ``nd``/``ndarray``, ``sym``/``symbol``, ``io``, ``autograd``, ``executor``,
  ``cpu``, ``gpu``, ``Context``, ``current_context``, ``waitall``: the engine's
  own modules, which already follow MXNet's API (executors from
  ``simple_bind``/``bind`` with ``arg_dict``, ``grad_arrays``, ``forward``,
  ``backward``; data iterators ``NDArrayIter``, ``DataBatch``, ``DataIter``,
  ``CSVIter``, ``PrefetchingIter``, ``ResizeIter``).
* ``init``/``initializer``, ``optimizer``, ``lr_scheduler``, ``metric``,
  ``callback``: MXNet's semantics (see :mod:`deepkit.compat.mx_init`,
  :mod:`~deepkit.compat.mx_optimizer`, :mod:`~deepkit.compat.mx_metric`,
  :mod:`~deepkit.compat.mx_callback`).
* ``model``: ``FeedForward``, ``save_checkpoint``, ``load_checkpoint``,
  ``BatchEndParam`` (:mod:`deepkit.feedforward`).
* ``random``: ``seed`` (seeds deepkit and the engine), ``uniform``, ``normal``,
  ``randint`` with MXNet's ``out=``.
* ``test_utils``: ``get_mnist()`` (the bundled MNIST, offline) and the
  engine's test helpers.
* ``MXNetError``: the engine's base error class.

Not here: Gluon, Module (``mx.mod``), KVStore and bucketing.
"""
import types

import numpy as _np

import deepkit_engine as _dk
from deepkit_engine import (Context, autograd, cpu, current_context, executor, gpu, io, nd,
                            testing)
from deepkit_engine import symbol as sym
from deepkit_engine.base import DeepkitError as MXNetError

from .. import backend as _backend
from ..datasets import mnist
from . import feedforward as _feedforward
from . import mx_callback as callback
from . import mx_init as init
from . import mx_metric as metric
from . import mx_optimizer as optimizer

__all__ = ["nd", "ndarray", "sym", "symbol", "io", "autograd", "executor", "cpu", "gpu",
           "Context", "current_context", "waitall", "init", "initializer", "optimizer",
           "lr_scheduler", "metric", "callback", "model", "random", "test_utils", "MXNetError"]

ndarray = nd
symbol = sym
initializer = init
waitall = nd.waitall


def _namespace(name, doc, **members):
    module = types.ModuleType(f"{__name__}.{name}", doc)
    for key, value in members.items():
        setattr(module, key, value)
    module.__all__ = list(members)
    return module


model = _namespace(
    "model", "MXNet's ``mx.model``: FeedForward and its checkpoint files.",
    FeedForward=_feedforward.FeedForward, save_checkpoint=_feedforward.save_checkpoint,
    load_checkpoint=_feedforward.load_checkpoint, BatchEndParam=_feedforward.BatchEndParam)

lr_scheduler = _namespace(
    "lr_scheduler", "MXNet's learning-rate schedulers (``callable(num_update) -> lr``).",
    FactorScheduler=optimizer.FactorScheduler,
    MultiFactorScheduler=optimizer.MultiFactorScheduler)


# -- random ----------------------------------------------------------------------------
def _seed(seed_state, ctx="all"):
    """Seed everything random: initializers, shuffling and the engine's generators.

    Args:
        seed_state: An int.
        ctx: ``'all'`` or one context (then only that context's engine generator).
    """
    if ctx == "all":
        _backend.set_seed(seed_state)
    else:
        _dk.random.seed(seed_state, ctx)


def _sampler(kind):
    def sample(a, b, shape=(1,), dtype=None, ctx=None, out=None):
        if out is not None:
            shape, ctx = out.shape, out.ctx
            dtype = dtype or out.dtype
        if isinstance(shape, int):
            shape = (shape,)
        values = getattr(_dk.random, kind)(a, b, shape=shape,
                                           dtype=dtype or ("int32" if kind == "randint"
                                                           else "float32"), ctx=ctx)
        if out is None:
            return values
        out[:] = values
        return out
    return sample


def _uniform(low=0.0, high=1.0, shape=(1,), dtype=None, ctx=None, out=None):
    """Samples of U[low, high) as an NDArray (written into ``out`` when given)."""
    return _sampler("uniform")(low, high, shape, dtype, ctx, out)


def _normal(loc=0.0, scale=1.0, shape=(1,), dtype=None, ctx=None, out=None):
    """Samples of N(loc, scale**2) as an NDArray (written into ``out`` when given)."""
    return _sampler("normal")(loc, scale, shape, dtype, ctx, out)


def _randint(low, high, shape=(1,), dtype=None, ctx=None, out=None):
    """Integers from [low, high) as an NDArray (written into ``out`` when given)."""
    return _sampler("randint")(low, high, shape, dtype, ctx, out)


random = _namespace("random", "MXNet's ``mx.random``: seeding and sampling.",
                    seed=_seed, uniform=_uniform, normal=_normal, randint=_randint)


# -- test_utils ------------------------------------------------------------------------
def _get_mnist():
    """MNIST as MXNet's ``test_utils.get_mnist()`` returns it, from the bundled files.

    Returns:
        dict: ``train_data`` (60000, 1, 28, 28) and ``test_data`` (10000, 1, 28,
        28) float32 in [0, 1]; ``train_label`` and ``test_label`` int8.
    """
    (x_train, y_train), (x_test, y_test) = mnist.load_data()

    def images(x):
        return x.reshape(x.shape[0], 1, 28, 28).astype(_np.float32) / 255

    return {"train_data": images(x_train), "train_label": y_train.astype(_np.int8),
            "test_data": images(x_test), "test_label": y_test.astype(_np.int8)}


def _test_utils():
    members = {"get_mnist": _get_mnist}
    for name in ("assert_almost_equal", "check_numeric_gradient", "check_symbolic_forward",
                 "check_symbolic_backward", "default_context"):
        if hasattr(testing, name):
            members[name] = getattr(testing, name)
    return _namespace("test_utils", "MXNet's ``mx.test_utils``: data and test helpers.",
                      **members)


test_utils = _test_utils()
