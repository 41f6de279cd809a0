"""ProgbarLogger: the progress bar (tqdm) or one line per epoch."""
import sys
import time

from tqdm import tqdm

from .base import Callback


def _format_logs(logs):
    parts = []
    for k, v in logs.items():
        if isinstance(v, float):
            parts.append(f"{k}: {v:.4g}")
        else:
            parts.append(f"{k}: {v}")
    return " - ".join(parts)


class ProgbarLogger(Callback):
    """The per-epoch progress bar (tqdm) with loss, metrics, samples/s and data share.

    ``verbose=1``: a live bar on a terminal. When output is not a terminal (a log
    file, a pipe, CI) it prints ``Epoch i/N`` as each epoch starts, at most
    :attr:`LINES_PER_EPOCH` progress lines during it, and one line at its end,
    instead of a carriage-return flood. ``verbose=2``: one line per epoch.
    """

    chief_only = True  # in a distributed run, rank 0 alone writes

    #: Progress lines printed during an epoch when the output is not a terminal.
    LINES_PER_EPOCH = 3

    def __init__(self, verbose=1, stream=None):
        super().__init__()
        self.verbose = verbose
        self.stream = stream
        self._bar = None
        self._next_line = None

    def _stream(self):
        return self.stream or sys.stderr

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._start = time.perf_counter()
        stream = self._stream()
        live = self.verbose == 1 and hasattr(stream, "isatty") and stream.isatty()
        self._bar, self._next_line = None, None
        if live:
            self._bar = tqdm(total=self.params.get("steps"), file=stream,
                             desc=f"Epoch {epoch + 1}/{self.params.get('epochs')}",
                             unit="batch", leave=True, dynamic_ncols=True, mininterval=0.25)
        elif self.verbose == 1:
            print(f"Epoch {epoch + 1}/{self.params.get('epochs')}", file=stream, flush=True)
            self._next_line = 1

    def on_train_batch_end(self, batch, logs=None):
        if self._bar is not None:
            self._bar.update(1)
            if logs and self._bar.n % max(1, (self.params.get("steps") or 50) // 20) == 0:
                self._bar.set_postfix_str(_format_logs(logs), refresh=False)
            return
        steps = self.params.get("steps")
        if self._next_line is None or not logs or not steps \
                or self._next_line > self.LINES_PER_EPOCH:
            return
        due = (batch + 1) * (self.LINES_PER_EPOCH + 1) // steps  # lines due by this batch
        if due >= self._next_line:
            self._next_line = due + 1
            elapsed = time.perf_counter() - self._start
            print(f"  {batch + 1}/{steps} - {elapsed:.1f}s - {_format_logs(logs)}",
                  file=self._stream(), flush=True)

    def on_epoch_end(self, epoch, logs=None):
        if self.verbose == 0:
            return
        elapsed = time.perf_counter() - self._start
        text = _format_logs(logs or {})
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)
            self._bar.close()
            self._bar = None
        else:
            print(f"Epoch {epoch + 1}/{self.params.get('epochs')} - {elapsed:.1f}s - {text}",
                  file=self._stream(), flush=True)
