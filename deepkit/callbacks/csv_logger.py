"""CSVLogger: append the epoch logs to a CSV file."""
import csv
import os

import numpy as np

from .base import Callback


def _csv_value(value):
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    if isinstance(value, (list, tuple, np.ndarray)):
        return f"[{', '.join(map(str, value))}]"
    return value


class CSVLogger(Callback):
    """Write the epoch logs to a CSV file, one row per epoch (flushed at once).

    The columns are ``epoch`` (0-based, as in Keras) and the logged quantities
    in sorted order. The file is opened at the first epoch end.

    Args:
        filename: The CSV file.
        separator: The one-character field separator.
        append: Append to an existing file (the header is written only when
            the file is empty) instead of overwriting it.
    """

    chief_only = True  # in a distributed run, rank 0 alone writes

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError("CSVLogger: 'separator' must be one character. "
                             f"Received: separator={separator!r}")
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = bool(append)
        self.keys = None
        self._file = None
        self._writer = None
        self._resume_size = None

    def on_train_begin(self, logs=None):
        self._close()
        self.keys = None
        self._resume_size = None

    def _open(self):
        exists = os.path.exists(self.filename)
        if self._resume_size is not None and exists:
            # resumed by BackupAndRestore: drop rows written after the backup
            with open(self.filename, "r+b") as f:
                f.truncate(self._resume_size)
            mode, header = "a", self._resume_size == 0
        elif self.append:
            mode, header = "a", not exists or os.path.getsize(self.filename) == 0
        else:
            mode, header = "w", True
        self._resume_size = None
        self._file = open(self.filename, mode, newline="", encoding="utf-8")
        self._writer = csv.writer(self._file, delimiter=self.sep)
        if header:
            self._writer.writerow(["epoch"] + self.keys)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        if self._file is None:
            self._open()
        self._writer.writerow([epoch] + [_csv_value(logs.get(k, "NA")) for k in self.keys])
        self._file.flush()

    def on_train_end(self, logs=None):
        self._close()

    def _close(self):
        if self._file is not None and not self._file.closed:
            self._file.close()
        self._file = None
        self._writer = None

    def get_state(self):
        size = None
        if self._file is not None:
            self._file.flush()
            size = os.fstat(self._file.fileno()).st_size
        return {"keys": self.keys, "size": size}

    def set_state(self, state):
        self.keys = state.get("keys")
        if state.get("size") is not None:
            self._close()
            self._resume_size = int(state["size"])


