"""History: the epoch logs of a run, and a picture of them."""
from deepkit_engine.fileio import atomic_path

from .base import Callback


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

    def get_state(self):
        return {"epoch": list(self.epoch), "history": {k: list(v) for k, v in self.history.items()}}

    def set_state(self, state):
        self.epoch = list(state.get("epoch", []))
        self.history = {k: list(v) for k, v in state.get("history", {}).items()}

    def plot(self, path, keys=None):
        """Write a PNG of the curves (needs matplotlib, the ``viz`` extra).

        Args:
            path: Output PNG file (written atomically).
            keys: Which logs to draw (default: all); ``val_x`` shares a panel with ``x``.
        """
        try:
            import matplotlib  # noqa: PLC0415 - optional (viz extra), needed only to plot
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt  # noqa: PLC0415 - after choosing the backend
        except ImportError as err:
            raise ImportError("History.plot needs matplotlib: pip install 'deepkit[viz]'") \
                from err
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
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)
        return path
