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

* ``nd``/``ndarray``: the engine's ``nd`` (every op, ``nd.random``,
  ``nd.contrib``) with ``save``/``load`` in MXNet's binary NDArray format,
  so ``.params`` files go both ways between MXNet and deepkit
  (:mod:`deepkit.compat.mx_nd`, :mod:`~deepkit.compat.mx_format`).
* ``sym``/``symbol``, ``autograd``, ``executor``, ``cpu``, ``gpu``,
  ``Context``, ``current_context``, ``context``, ``num_gpus``, ``waitall``:
  the engine's own modules, which follow MXNet's API (``simple_bind``/``bind``
  executors with ``backward()`` after a plain ``forward()``, ``grad_req``,
  monitor callbacks, ``reshape``; partial shape inference with 0 = unknown).
* ``io``: the engine's iterators (``NDArrayIter``, ``CSVIter``,
  ``MNISTIter``, ...) plus ``ImageRecordIter``; ``recordio``: MXNet's
  RecordIO files (:mod:`deepkit.compat.mx_recordio`).
* ``mod``/``module``: ``Module`` on deepkit's trainer
  (:mod:`deepkit.compat.module`).
* ``init``/``initializer``, ``optimizer`` (with ``get_updater`` and the
  per-index ``create_state``/``update``), ``lr_scheduler``, ``metric``,
  ``callback``: MXNet's semantics (see :mod:`deepkit.compat.mx_init`,
  :mod:`~deepkit.compat.mx_optimizer`, :mod:`~deepkit.compat.mx_lr_scheduler`,
  :mod:`~deepkit.compat.mx_metric`, :mod:`~deepkit.compat.mx_callback`).
* ``model``: ``FeedForward``, ``save_checkpoint``, ``load_checkpoint``
  (MXNet's own checkpoint files), ``BatchEndParam``.
* ``operator``: Python operators (``CustomOp``/``CustomOpProp``,
  :mod:`deepkit.compat.mx_operator`); ``rnn``: MXNet's ``mx.rnn``
  (:mod:`deepkit.compat.mx_rnn`).
* ``random``: ``seed`` (seeds deepkit and the engine) and the ``nd.random``
  samplers; ``viz``: ``print_summary``.
* ``monitor``/``mon``: ``Monitor``, statistics of a network's arrays every
  few batches (:mod:`deepkit.compat.mx_monitor`).
* ``test_utils``: ``get_mnist()`` (the bundled MNIST, offline) and the
  engine's test helpers.
* ``MXNetError``: the engine's base error class.

* ``kv``/``kvstore``: MXNet's KVStore (``local``, ``device``, ``dist_sync``
  over MPI; :mod:`deepkit_engine.kvstore`). ``FeedForward(ctx=[...])`` and
  ``kvstore='dist_sync'`` train data parallel (:mod:`deepkit.trainer.parallel`).

Not here: Gluon. In place of Gluon use deepkit's own layers and models, which play
its role: ``deepkit.layers`` (``Dense``, ``Conv2D``, ...) composed with
``deepkit.Sequential`` or the functional ``deepkit.Model``, trained with
``model.compile(...)`` and ``model.fit(...)`` or a custom ``train_step``.
"""
import types

import numpy as _np

import deepkit_engine as _dk
from deepkit_engine import Context, autograd, contrib, cpu, current_context, executor, gpu, testing
from deepkit_engine import profiler  # mx.profiler: MXNet's profiler API
from deepkit_engine import symbol as sym
from deepkit_engine import kvstore as kv  # mx.kv: MXNet's KVStore (create, KVStore)
from deepkit_engine.base import DeepkitError as MXNetError

from .. import backend as _backend
from ..datasets import mnist
from . import feedforward as _feedforward
from . import mx_callback as callback
from . import mx_init as init
from . import mx_io as io
from . import mx_recordio as recordio
from . import mx_lr_scheduler as lr_scheduler
from . import mx_metric as metric
from . import mx_monitor as monitor
from . import mx_nd as nd
from . import mx_operator as operator
from . import mx_bucketing as _mx_bucketing
from . import mx_rnn as rnn
from . import mx_viz as _mx_viz
from .module import BaseModule as _BaseModule
from .module import Module as _Module
from . import mx_optimizer as optimizer

__all__ = ["nd", "ndarray", "sym", "symbol", "io", "autograd", "executor", "cpu", "gpu",
           "Context", "current_context", "waitall", "init", "initializer", "optimizer",
           "lr_scheduler", "metric", "callback", "model", "mod", "module", "context", "viz",
           "num_gpus", "recordio", "operator", "rnn", "contrib", "random", "test_utils", "MXNetError", "profiler"]
__all__ += ["monitor", "mon"]

mon = monitor

__all__ += ["kv", "kvstore"]
kvstore = kv
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

context = _namespace("context", "MXNet's ``mx.context``: devices.", Context=Context, cpu=cpu,
                     gpu=gpu, current_context=current_context, num_gpus=_dk.context.num_gpus)

viz = visualization = _namespace("viz", "MXNet's ``mx.viz``: the layer table and the graph "
                                 "of a symbol.", print_summary=_mx_viz.print_summary,
                                 plot_network=_mx_viz.plot_network)

mod = module = _namespace("mod", "MXNet's ``mx.mod``: the Module API on deepkit's trainer.",
                          Module=_Module, BaseModule=_BaseModule,
                          BucketingModule=_mx_bucketing.BucketingModule)

num_gpus = _dk.context.num_gpus


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


random = _namespace(
    "random", "MXNet's ``mx.random``: seeding and the ``nd.random`` samplers.", seed=_seed,
    **{name: getattr(_dk.nd.random, name) for name in _dk.nd.random.__all__})


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
