"""Callbacks for gradual fine-tuning."""
from deepkit.callbacks import Callback

__all__ = ["UnfreezeAt"]


class UnfreezeAt(Callback):
    """At the start of ``epoch``, unfreeze ``layers`` (names) with a learning-rate multiplier.

    Gradual unfreezing: train the new head first, then let deeper layers adapt
    slowly (``lr_mult`` < 1). Takes effect without recompiling.
    """

    def __init__(self, epoch, layers, lr_mult=1.0):
        super().__init__()
        self.epoch, self.layers, self.lr_mult = int(epoch), list(layers), float(lr_mult)
        self.done = False

    def on_epoch_begin(self, epoch, logs=None):
        if epoch != self.epoch or self.done:
            return
        for name in self.layers:
            layer = self.model.get_layer(name)
            layer.trainable = True
            for p in layer.params.values():
                p.lr_mult = self.lr_mult
        self.done = True

    def get_state(self):
        return {"done": self.done}

    def set_state(self, state):
        self.done = bool(state.get("done", False))
