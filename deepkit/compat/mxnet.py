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

* ``kv``/``kvstore``: MXNet's KVStore (``local``, ``device``, ``dist_sync`` over
  MPI, ``dist_async`` with its parameter server as a thread of rank 0;
  :mod:`deepkit_engine.kvstore`). ``FeedForward(ctx=[...])`` and
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

name = _namespace("name", "MXNet's ``mx.name``: scopes that name new symbols "
                  "(``with mx.name.Prefix('net_'):``).", NameManager=sym.NameManager,
                  Prefix=sym.Prefix)
attribute = _namespace("attribute", "MXNet's ``mx.attribute``: ``AttrScope``, attributes "
                       "for every symbol made in a block.", AttrScope=sym.AttrScope)
AttrScope = sym.AttrScope
base = _namespace("base", "MXNet's ``mx.base``: its error class and type tuples.",
                  MXNetError=MXNetError, NotImplementedForSymbol=MXNetError,
                  integer_types=(int, _np.integer), numeric_types=(float, int, _np.generic),
                  string_types=(str,))
__all__ += ["name", "attribute", "AttrScope", "base"]


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


def _as_numpy(a):
    return a.asnumpy() if isinstance(a, _dk.nd.NDArray) else _np.asarray(a)


#: MXNet 1.9.1's default tolerances per dtype (``test_utils.default_rtols``/``default_atols``).
_RTOLS = {"float16": 1e-2, "float32": 1e-4, "float64": 1e-5}
_ATOLS = {"float16": 1e-1, "float32": 1e-3, "float64": 1e-20}


def _tolerance(arrays, tol, defaults):
    """``tol``, or (None) the largest default over the arrays' dtypes; a dict maps dtypes."""
    if tol is not None and not isinstance(tol, dict):
        return tol
    table = dict(defaults)
    if isinstance(tol, dict):
        table.update({_np.dtype(k).name: v for k, v in tol.items()})
    return max(table.get(_np.dtype(a.dtype).name, 0) for a in arrays)


def _same(a, b):
    """Whether two arrays (NDArray or numpy) are exactly equal."""
    return _np.array_equal(_as_numpy(a), _as_numpy(b))


def _almost_equal(a, b, rtol=None, atol=None, equal_nan=False, use_broadcast=True):
    """Whether ``|a - b| <= atol + rtol * |b|`` elementwise (default tolerances by dtype)."""
    a, b = _as_numpy(a), _as_numpy(b)
    if not use_broadcast and a.shape != b.shape:
        return False
    return _np.allclose(a, b, rtol=_tolerance((a, b), rtol, _RTOLS),
                        atol=_tolerance((a, b), atol, _ATOLS), equal_nan=equal_nan)


def _assert_almost_equal(a, b, rtol=None, atol=None, names=("a", "b"), equal_nan=False,
                         use_broadcast=True, mismatches=(10, 10)):
    """Assert :func:`_almost_equal` with MXNet's defaults, naming the worst element on failure.

    Unlike the engine's ``testing.assert_almost_equal`` (tolerances by the
    dtype of ``a``, shapes must match), the default tolerances are MXNet's:
    the loosest over both arrays' dtypes, so MXNet scripts' checks keep their
    meaning; shapes broadcast unless ``use_broadcast`` is False.
    ``mismatches`` is accepted for MXNet's signature.
    """
    a, b = _as_numpy(a), _as_numpy(b)
    if a.shape != b.shape:
        if not use_broadcast:
            raise AssertionError(f"mx.test_utils.assert_almost_equal: shapes differ: "
                                 f"{names[0]} {a.shape} vs {names[1]} {b.shape}")
        try:
            a, b = _np.broadcast_arrays(a, b)
        except ValueError:
            raise AssertionError(f"mx.test_utils.assert_almost_equal: shapes {names[0]} "
                                 f"{a.shape} and {names[1]} {b.shape} do not broadcast") from None
    testing.assert_almost_equal(a, b, _tolerance((a, b), rtol, _RTOLS),
                                _tolerance((a, b), atol, _ATOLS), names=tuple(names),
                                equal_nan=equal_nan)


def _check_consistency(sym, ctx_list, scale=1.0, grad_req="write", arg_params=None,
                       aux_params=None, rtol=None, atol=None, raise_on_err=True,
                       ground_truth=None, equal_nan=False, use_uniform=False,
                       rand_type=_np.float64):
    """Run a symbol (or one symbol per entry) on several contexts/dtypes and compare.

    MXNet's ``check_consistency``: each entry of ``ctx_list`` is the keyword
    arguments of ``simple_bind`` (``ctx``, input shapes, ``type_dict``). All
    executors get the same random arguments; their outputs, and after a
    backward pass with the least precise outputs as head gradients their
    gradients, are compared with the most precise executor's (tolerances by
    dtype unless given).

    Returns:
        The ground truth: ``{name: array}`` of the outputs and gradients.
    """
    if len(ctx_list) < 2:
        raise ValueError("check_consistency: ctx_list needs at least two entries to compare")
    syms = [sym] * len(ctx_list) if isinstance(sym, _dk.sym.Symbol) else list(sym)
    output_names, arg_names = syms[0].list_outputs(), syms[0].list_arguments()
    exes = [s.simple_bind(grad_req=grad_req, **spec) for s, spec in zip(syms, ctx_list)]
    arg_params = {} if arg_params is None else dict(arg_params)
    aux_params = {} if aux_params is None else dict(aux_params)
    for n, arr in sorted(exes[0].arg_dict.items()):
        if n not in arg_params:
            arg_params[n] = (_np.random.uniform(-0.92 * scale, 0.92 * scale, arr.shape)
                             if use_uniform else _np.random.normal(size=arr.shape, scale=scale)
                             ).astype(rand_type)
    for n in exes[0].aux_dict:
        aux_params.setdefault(n, 0)
    for exe in exes:
        for n, arr in exe.arg_dict.items():
            arr[:] = arg_params[n]
        for n, arr in exe.aux_dict.items():
            arr[:] = aux_params[n]
        if grad_req == "add":
            for arr in exe.grad_dict.values():
                if arr is not None:
                    arr[:] = 0
    gt_idx = int(_np.argmax([_np.dtype(exe.outputs[0].dtype).itemsize for exe in exes]))

    def compare(name, arr, expected):
        try:
            testing.assert_almost_equal(
                _as_numpy(arr), _as_numpy(expected),
                _tolerance((arr, expected), rtol, _RTOLS),
                _tolerance((arr, expected), atol, _ATOLS), names=(name, "ground truth"),
                equal_nan=equal_nan)
        except AssertionError:
            if raise_on_err:
                raise

    for exe in exes:
        exe.forward(is_train=False)
    gt = ground_truth
    if gt is None:
        gt = {n: o.copy() for n, o in zip(output_names, exes[gt_idx].outputs)}
    for i, exe in enumerate(exes):
        if i != gt_idx:
            for n, arr in zip(output_names, exe.outputs):
                compare(n, arr, gt[n])
    if grad_req != "null":
        for exe in exes:
            exe.forward(is_train=True)
        least = [min((exe.outputs[k].dtype for exe in exes), key=lambda d: _np.dtype(d).itemsize)
                 for k in range(len(output_names))]
        heads = [o.asnumpy().astype(d) for o, d in zip(exes[0].outputs, least)]
        for exe in exes:
            exe.backward([_dk.nd.array(h, ctx=o.context, dtype=o.dtype)
                          for h, o in zip(heads, exe.outputs)])
        if ground_truth is None:
            gt.update({n: o.copy() for n, o in zip(output_names, exes[gt_idx].outputs)})
            gt.update({n: g.copy() for n, g in exes[gt_idx].grad_dict.items() if g is not None})
        for i, exe in enumerate(exes):
            if i == gt_idx:
                continue
            for n, arr in list(zip(output_names, exe.outputs)) + \
                    [(n, exe.grad_dict.get(n)) for n in arg_names]:
                if arr is not None and gt.get(n) is not None:
                    compare(n, arr, gt[n])
    return gt


def _rand_shape_nd(num_dim, dim=10, allow_zero_size=False):
    """A random shape of ``num_dim`` axes, each of 1 (0 if allowed) to ``dim``."""
    return tuple(_np.random.randint(0 if allow_zero_size else 1, dim + 1, size=num_dim))


def _rand_shape_2d(dim0=10, dim1=10, allow_zero_size=False):
    low = 0 if allow_zero_size else 1
    return _np.random.randint(low, dim0 + 1), _np.random.randint(low, dim1 + 1)


def _rand_shape_3d(dim0=10, dim1=10, dim2=10, allow_zero_size=False):
    low = 0 if allow_zero_size else 1
    return (_np.random.randint(low, dim0 + 1), _np.random.randint(low, dim1 + 1),
            _np.random.randint(low, dim2 + 1))


def _random_arrays(*shapes):
    """Standard normal float32 numpy arrays of the given shapes (one array for one shape)."""
    arrays = [_np.array(_np.random.randn(), dtype=_np.float32) if len(s) == 0
              else _np.random.randn(*s).astype(_np.float32) for s in shapes]
    return arrays[0] if len(arrays) == 1 else arrays


def _rand_ndarray(shape, stype="default", density=None, dtype=None, modifier_func=None,
                  shuffle_csr_indices=False, distribution=None, ctx=None):
    """A dense NDArray of standard normal values.

    Raises:
        ValueError: A sparse ``stype`` (deepkit has dense arrays only).
    """
    if stype != "default":
        raise ValueError(f"mx.test_utils.rand_ndarray: stype={stype!r} is not available; "
                         "deepkit has dense ('default') arrays only")
    return _dk.nd.array(_random_arrays(shape), dtype=dtype or _np.float32,
                        ctx=ctx or _dk.current_context())


def _test_utils():
    members = {"get_mnist": _get_mnist, "same": _same, "almost_equal": _almost_equal,
               "assert_almost_equal": _assert_almost_equal,
               "check_consistency": _check_consistency, "rand_ndarray": _rand_ndarray,
               "rand_shape_nd": _rand_shape_nd, "rand_shape_2d": _rand_shape_2d,
               "rand_shape_3d": _rand_shape_3d, "random_arrays": _random_arrays}
    for name in ("check_numeric_gradient", "check_symbolic_forward",
                 "check_symbolic_backward", "default_context"):
        if hasattr(testing, name):
            members[name] = getattr(testing, name)
    return _namespace("test_utils", "MXNet's ``mx.test_utils``: data and test helpers.",
                      **members)


test_utils = _test_utils()
