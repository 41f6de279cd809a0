"""``fit`` under MPI, run by tests/deepkit/test_distributed.py (one process or ``mpirun -np 2``).

Usage: ``fit_ranks.py MODE OUT [EPOCHS]``. Every mode trains the same small
MLP on the same data with ``batch_size=30`` and writes each rank's final
weights to ``OUT/weights_<rank>_of_<size>.npz``.

* ``fit``: plain ``fit`` (shuffled; 181 rows, so rank 1 gets no row of the
  last batch), a CSVLogger naming the rank in its file.
* ``backup``: ``fit`` with ``BackupAndRestore(OUT/backup)`` for EPOCHS epochs,
  so a second call with more epochs resumes from the backup rank 0 wrote.
* ``kill``: rank 1 dies in its third batch; rank 0 must end with an error.
* ``mismatch``: rank 1 builds a wider model; ``fit`` must refuse to start.
* ``parts``: each rank reads its own part through ``NDArrayIter(num_parts=2,
  part_index=rank)`` (MXNet's way), batches of 15 rows; in one process,
  ``parts`` trains on the same global batches (both parts' batches joined).
* ``module``: the same with MXNet's ``Module.fit(kvstore='dist_sync')``.
* ``syncbn``: as ``fit``, with ``BatchNormalization(synchronized=True)`` after
  the hidden layer (rank 1, without rows in the last batch, still joins rank
  0's exchanges of batch statistics).
* ``buckets``: as ``fit``, with buckets of 200 bytes, so the output layer's
  gradients are one bucket and the hidden layer's another: the backward pass
  is pushed in two pieces. On two ranks, a monitor holds the hidden layer's
  backward (the last piece) of the first step until the first bucket's
  all-reduce has started on the communication thread, and each rank writes
  the order of those events to ``OUT/events_<rank>.json``.

``FIT_BUCKET_BYTES`` in the environment sets the gradient bucket size of any
mode (``deepkit.distributed.BUCKET_BYTES``); it and ``buckets`` turn the overlap
on whatever the cores per process.
"""
import json
import os
import sys
import threading

import numpy as np

import deepkit
from deepkit import callbacks, distributed, layers, models
from deepkit.compat import mxnet as mx
from deepkit_engine import io
from deepkit_engine.dist import mpi


def build(units=16, synchronized_bn=False):
    deepkit.set_seed(7)
    stack = [layers.Input(shape=(10,)), layers.Dense(units, activation="relu")]
    if synchronized_bn:
        stack.append(layers.BatchNormalization(synchronized=True))
    model = models.Sequential(stack + [layers.Dense(3, activation="softmax")])
    model.compile(deepkit.optimizers.SGD(0.05, momentum=0.9), "sparse_categorical_crossentropy",
                  ["accuracy"])
    return model


class Batches:
    """A re-iterable sequence of ``(x, y)`` batches (one pass per epoch)."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)


class DieInThirdBatch(callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        if batch == 2:
            os._exit(3)


def joined_parts(x, y, batch=15):
    """The rows in the order of global batches: batch i of part 0, then of part 1."""
    order = np.concatenate([np.r_[i:i + batch, 90 + i:90 + i + batch] for i in range(0, 90, batch)])
    return x[order], y[order]


def module_run(x, y, out, epochs, rank, size):
    net = mx.sym.Variable("data")
    net = mx.sym.Activation(mx.sym.FullyConnected(net, num_hidden=16, name="fc1"),
                            act_type="relu")
    net = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(net, num_hidden=3, name="fc2"),
                               name="softmax")
    if size > 1:
        it = mx.io.NDArrayIter(x, y.astype(np.float32), 15, num_parts=size, part_index=rank)
    else:
        it = mx.io.NDArrayIter(*joined_parts(x, y.astype(np.float32)), 30)
    mx.random.seed(5)
    mod = mx.mod.Module(net)
    mod.fit(it, num_epoch=int(epochs), kvstore="dist_sync" if size > 1 else "local",
            optimizer="sgd", optimizer_params={"learning_rate": 0.5, "momentum": 0.9},
            initializer=mx.init.Xavier())
    arg, _ = mod.get_params()
    np.savez(os.path.join(out, f"weights_{rank}_of_{size}.npz"),
             **{k: v.asnumpy() for k, v in arg.items()})


def record_bucket_order(model, out, rank):
    """Hold the first step's last backward piece until a bucket's all-reduce started."""
    events, started = [], threading.Event()
    exchange = mpi.allreduce_many

    def traced_allreduce_many(arrays, *args, **kwargs):
        if not started.is_set():
            events.append(["allreduce started", threading.current_thread().name])
            started.set()
        return exchange(arrays, *args, **kwargs)
    mpi.allreduce_many = traced_allreduce_many
    exe = model.executors().executor("train", 15)  # this rank's part of a batch of 30

    def monitor(name, _):
        if name.startswith("dense_backward") and len(events) < 2:
            held = started.wait(20)
            events.append(["last backward piece ran", held])
    exe.set_monitor_callback(monitor)

    def write():
        exe.set_monitor_callback(None)
        with open(os.path.join(out, f"events_{rank}.json"), "w") as f:
            json.dump({"events": events, "pieces": exe.num_backward_segments,
                       "groups": exe.backward_segments}, f)
    return write


def main(mode, out, epochs=2):
    distributed.init()
    if os.environ.get("FIT_BUCKET_BYTES"):
        distributed.BUCKET_BYTES = int(os.environ["FIT_BUCKET_BYTES"])
        distributed.overlap_backward = True  # whatever the cores per process
    rank, size = distributed.rank(), distributed.size()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(180, 10)).astype(np.float32)
    y = rng.integers(0, 3, 180)
    if mode == "module":
        module_run(x, y, out, epochs, rank, size)
        return
    model = build(32 if mode == "mismatch" and rank == 1 else 16, mode == "syncbn")
    cbs = [callbacks.CSVLogger(os.path.join(out, f"log_rank{rank}.csv"))]
    write_events = None
    if mode == "buckets":
        distributed.BUCKET_BYTES = 200
        distributed.overlap_backward = True  # whatever the cores per process
        if size > 1:
            write_events = record_bucket_order(model, out, rank)
    if mode == "backup":
        cbs.append(callbacks.BackupAndRestore(os.path.join(out, "backup"), delete_checkpoint=False))
    if mode == "kill" and rank == 1:
        cbs.append(DieInThirdBatch())
    if mode == "parts" and size > 1:
        data = io.NDArrayIter(x, y.astype(np.float32), batch_size=15, num_parts=size,
                              part_index=rank, label_name="dense_1_label")
        model.fit(data, epochs=int(epochs), verbose=0, callbacks=cbs)
    elif mode == "parts":
        xs, ys = joined_parts(x, y)
        batches = [(xs[i:i + 30], ys[i:i + 30]) for i in range(0, 180, 30)]
        model.fit(Batches(batches), epochs=int(epochs), verbose=0, callbacks=cbs)
    else:  # one row more: the last batch has one row, and rank 1 none of it
        x, y = np.concatenate([x, x[:1]]), np.concatenate([y, y[:1]])
        model.fit(x, y, batch_size=30, epochs=int(epochs), verbose=0, callbacks=cbs)
        if write_events is not None:
            write_events()
    logs = model.evaluate(x, y, batch_size=30, return_dict=True)
    np.savez(os.path.join(out, f"weights_{rank}_of_{size}.npz"),
             loss=np.array(logs["loss"]), **{f"w{i}": p.data.asnumpy()
                                             for i, p in enumerate(model.weights)})


if __name__ == "__main__":
    main(*sys.argv[1:])
