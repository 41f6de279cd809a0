"""ProgbarLogger: what a log file (not a terminal) sees, and when."""
import io

import numpy as np

import deepkit
from deepkit import callbacks as cbs
from deepkit import layers as L


class Clock(cbs.Callback):
    """Records what the stream held at each hook."""

    def __init__(self, stream):
        super().__init__()
        self.stream, self.at_first_batch = stream, None

    def on_train_batch_begin(self, batch, logs=None):
        if self.at_first_batch is None:
            self.at_first_batch = self.stream.getvalue()


def _fit(verbose, stream, epochs=2):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = deepkit.Sequential([L.Dense(2, activation="softmax", input_shape=(5,))])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    clock = Clock(stream)
    progress = cbs.ProgbarLogger(verbose, stream=stream)
    progress.requires_batch_logs = True  # logs every batch, as a slow batch would give
    model.fit(x, y, batch_size=10, epochs=epochs, verbose=0, callbacks=[clock, progress])
    return clock


def test_the_epoch_line_comes_first_and_progress_lines_are_few():
    stream = io.StringIO()
    clock = _fit(1, stream)
    assert clock.at_first_batch.startswith("Epoch 1/2")  # before any batch has run
    lines = stream.getvalue().splitlines()
    epoch_lines = [line for line in lines if line.startswith("Epoch")]
    progress = [line for line in lines if line.startswith("  ")]
    assert len(progress) == 2 * cbs.ProgbarLogger.LINES_PER_EPOCH
    assert progress[0].startswith("  10/40 - ") and "loss:" in progress[0]
    assert epoch_lines[0] == "Epoch 1/2" and epoch_lines[1].startswith("Epoch 1/2 - ")
    assert "\r" not in stream.getvalue()


def test_verbose_2_prints_one_line_per_epoch():
    stream = io.StringIO()
    _fit(2, stream)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and all(line.startswith("Epoch ") and "loss:" in line
                                   for line in lines)
