"""TensorBoard: event files with scalars, weight histograms and the graph (no TensorFlow).

Written with the ``tensorboard`` package's own event writer and protobufs
(``pip install 'deepkit[viz]'``), in Keras's layout: ``log_dir/train`` and
``log_dir/validation``, tags ``epoch_<name>`` (and ``batch_<name>`` with
``update_freq``), so ``tensorboard --logdir LOG_DIR`` shows a deepkit run as
it shows a Keras one.
"""
import json
import os
import time

import numpy as np

from .base import Callback

__all__ = ["TensorBoard"]


def _writer_modules():
    try:  # the tensorboard package is optional (viz extra): only this callback needs it
        from tensorboard.compat.proto import (  # noqa: PLC0415 - optional dependency
            event_pb2, graph_pb2, node_def_pb2, summary_pb2)
        from tensorboard.summary.writer.event_file_writer import (  # noqa: PLC0415 - optional
            EventFileWriter)
    except ImportError as err:
        raise ImportError("callbacks.TensorBoard needs the tensorboard package: "
                          "pip install 'deepkit[viz]'") from err
    return event_pb2, graph_pb2, node_def_pb2, summary_pb2, EventFileWriter


class TensorBoard(Callback):
    """Log a run for TensorBoard.

    Args:
        log_dir: Folder for the event files (``train/`` and ``validation/``
            are created in it).
        update_freq: ``'epoch'`` (scalars once per epoch), ``'batch'`` (also
            after every batch), or an int N (also every N batches).
        histogram_freq: Write a histogram of every weight every this many
            epochs (0: never).
        write_graph: Write the model's graph (its layers' ops and their
            connections) once, at the start.
    """

    chief_only = True  # in a distributed run, rank 0 alone writes

    def __init__(self, log_dir="logs", update_freq="epoch", histogram_freq=0, write_graph=True):
        super().__init__()
        if update_freq not in ("epoch", "batch") and not (
                isinstance(update_freq, int) and not isinstance(update_freq, bool)
                and update_freq > 0):
            raise ValueError("TensorBoard: 'update_freq' must be 'epoch', 'batch' or a "
                             f"positive int. Received: update_freq={update_freq!r}")
        if not isinstance(histogram_freq, int) or histogram_freq < 0:
            raise ValueError("TensorBoard: 'histogram_freq' must be a non-negative int. "
                             f"Received: histogram_freq={histogram_freq!r}")
        self.log_dir = os.fspath(log_dir)
        self.update_freq = 1 if update_freq == "batch" else update_freq
        self.histogram_freq = histogram_freq
        self.write_graph = bool(write_graph)
        self._writers = {}
        self._step = 0
        self._protos = None

    @property
    def requires_batch_logs(self):
        return self.update_freq != "epoch"

    # -- writing ---------------------------------------------------------------------
    def _writer(self, kind):
        writer = self._writers.get(kind)
        if writer is None:
            folder = os.path.join(self.log_dir, kind)
            os.makedirs(folder, exist_ok=True)
            writer = self._writers[kind] = self._protos[4](folder)
        return writer

    def _event(self, kind, step, **fields):
        event = self._protos[0].Event(wall_time=time.time(), step=int(step), **fields)
        self._writer(kind).add_event(event)

    def _scalars(self, kind, prefix, logs, step):
        summary = self._protos[3].Summary
        values = [summary.Value(tag=f"{prefix}_{name}", simple_value=float(value))
                  for name, value in logs.items() if _is_number(value)]
        if values:
            self._event(kind, step, summary=summary(value=values))

    def _histograms(self, epoch):
        summary = self._protos[3]
        values = []
        for p in self.model.weights:
            if p.data is None:
                continue
            values.append(summary.Summary.Value(tag=p.name, histo=_histogram(summary,
                                                                             p.data.asnumpy())))
        if values:
            self._event("train", epoch, summary=summary.Summary(value=values))

    def _graph(self):
        _, graph_pb2, node_def_pb2, _, _ = self._protos
        symbol = self.model.output_symbols()
        nodes = []
        for name, op, inputs in _graph_nodes(symbol):
            nodes.append(node_def_pb2.NodeDef(name=name, op=op, input=inputs))
        graph = graph_pb2.GraphDef(node=nodes)
        self._event("train", 0, graph_def=graph.SerializeToString())

    # -- hooks -----------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._protos = _writer_modules()
        self._step = 0
        if self.write_graph and hasattr(self.model, "output_symbols"):
            self._graph()

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if logs and self.update_freq != "epoch" and self._step % self.update_freq == 0:
            self._scalars("train", "batch", {k: v for k, v in logs.items() if k != "data"},
                          self._step)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self._scalars("train", "epoch", {k: v for k, v in logs.items()
                                         if not k.startswith("val_")}, epoch)
        self._scalars("validation", "epoch", {k[4:]: v for k, v in logs.items()
                                              if k.startswith("val_")}, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._histograms(epoch)
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


def _is_number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _histogram(summary, values, bins=30):
    values = np.asarray(values, np.float64).ravel()
    counts, edges = np.histogram(values, bins=bins) if values.size else (np.zeros(0), [0.0])
    return summary.HistogramProto(min=float(values.min()) if values.size else 0.0,
                                  max=float(values.max()) if values.size else 0.0,
                                  num=float(values.size), sum=float(values.sum()),
                                  sum_squares=float(np.square(values).sum()),
                                  bucket_limit=[float(e) for e in edges[1:]],
                                  bucket=[float(c) for c in counts])


def _graph_nodes(symbols):
    """``[(name, op, [input names])]`` of the graph behind the output symbols (JSON view)."""
    nodes_seen, out = set(), []
    for symbol in symbols:
        graph = json.loads(symbol.tojson())
        names = [n["name"] for n in graph["nodes"]]
        for node in graph["nodes"]:
            if node["name"] in nodes_seen:
                continue
            nodes_seen.add(node["name"])
            op = "Placeholder" if node["op"] == "null" else node["op"]
            out.append((node["name"], op, [names[i[0]] for i in node["inputs"]]))
    return out
