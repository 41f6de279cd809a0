"""Callbacks: hooks into ``fit`` (Keras's API), History and the progress bar."""
import sys
import time

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger"]


class Callback:
    """Base class. ``self.model`` and ``self.params`` are set before training."""

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        pass

    def on_test_begin(self, logs=None):
        pass

    def on_test_end(self, logs=None):
        pass

    def on_test_batch_begin(self, batch, logs=None):
        pass

    def on_test_batch_end(self, batch, logs=None):
        pass

    def on_predict_begin(self, logs=None):
        pass

    def on_predict_end(self, logs=None):
        pass

    def get_state(self):
        """What BackupAndRestore saves so that a resumed run behaves identically."""
        return {}

    def set_state(self, state):
        pass


class CallbackList:
    """Calls every callback's hook in order."""

    def __init__(self, callbacks, model, params):
        self.callbacks = list(callbacks)
        for c in self.callbacks:
            c.set_model(model)
            c.set_params(params)

    def __iter__(self):
        return iter(self.callbacks)

    def call(self, hook, *args):
        for c in self.callbacks:
            getattr(c, hook)(*args)


class History(Callback):
    """Records the epoch logs: ``history.history['loss']`` and so on."""

    def __init__(self):
        super().__init__()
        self.epoch = []
        self.history = {}

    def on_train_begin(self, logs=None):
        if not self.epoch:
            self.history = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def plot(self, path, keys=None):
        """Write a PNG of the curves (needs matplotlib, the ``viz`` extra).

        Args:
            path: Output PNG file (written atomically).
            keys: Which logs to draw (default: all); ``val_x`` shares a panel with ``x``.
        """
        try:
            import matplotlib  # noqa: PLC0415
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt  # noqa: PLC0415
        except ImportError as err:
            raise ImportError("History.plot needs matplotlib: pip install 'deepkit[viz]'") \
                from err
        from .saving import atomic_write  # noqa: PLC0415
        keys = keys or [k for k in self.history if not k.startswith("val_")]
        fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3), squeeze=False)
        for ax, key in zip(axes[0], keys):
            ax.plot(self.epoch, self.history[key], label=key)
            if f"val_{key}" in self.history:
                ax.plot(self.epoch, self.history[f"val_{key}"], label=f"val_{key}")
            ax.set_xlabel("epoch")
            ax.set_title(key)
            ax.legend()
        fig.tight_layout()
        with atomic_write(path) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)
        return path


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

    ``verbose=1``: a live bar on a terminal; when output is not a terminal (a log
    file, CI) it prints one line per epoch instead of a carriage-return flood.
    ``verbose=2``: one line per epoch.
    """

    def __init__(self, verbose=1, stream=None):
        super().__init__()
        self.verbose = verbose
        self.stream = stream
        self._bar = None

    def _stream(self):
        return self.stream or sys.stderr

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._start = time.perf_counter()
        stream = self._stream()
        live = self.verbose == 1 and hasattr(stream, "isatty") and stream.isatty()
        if live:
            from tqdm import tqdm  # noqa: PLC0415
            self._bar = tqdm(total=self.params.get("steps"), file=stream,
                             desc=f"Epoch {epoch + 1}/{self.params.get('epochs')}",
                             unit="batch", leave=True, dynamic_ncols=True, mininterval=0.25)
        else:
            self._bar = None

    def on_train_batch_end(self, batch, logs=None):
        if self._bar is not None:
            self._bar.update(1)
            if logs and self._bar.n % max(1, (self.params.get("steps") or 50) // 20) == 0:
                self._bar.set_postfix_str(_format_logs(logs), refresh=False)

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
