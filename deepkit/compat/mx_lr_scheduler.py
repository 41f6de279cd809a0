"""MXNet 1.x's learning-rate schedulers (``mx.lr_scheduler``): ``scheduler(num_update) -> lr``.

``num_update`` counts updates from 1. Every scheduler takes MXNet's warm-up
arguments: for ``num_update < warmup_steps`` the rate rises linearly from
``warmup_begin_lr`` to ``base_lr`` (``warmup_mode='linear'``) or stays at
``warmup_begin_lr`` (``'constant'``). An optimizer given a scheduler sets
its ``base_lr`` to the optimizer's learning rate, as in MXNet. As in MXNet,
``PolyScheduler`` and ``CosineScheduler`` remember the ``base_lr`` they were
created with as the start of their curve.
"""
import math

__all__ = ["LRScheduler", "FactorScheduler", "MultiFactorScheduler", "PolyScheduler",
           "CosineScheduler"]


class LRScheduler:
    """Base class: the warm-up and ``base_lr``.

    Args:
        base_lr: The rate after warm-up.
        warmup_steps: Updates of warm-up (0: none).
        warmup_begin_lr: The rate at update 0.
        warmup_mode: ``'linear'`` or ``'constant'``.

    Raises:
        ValueError: A negative ``warmup_steps``, ``warmup_begin_lr > base_lr`` or an
            unknown mode.
    """

    def __init__(self, base_lr=0.01, warmup_steps=0, warmup_begin_lr=0, warmup_mode="linear"):
        self.base_lr = float(base_lr)
        if int(warmup_steps) != warmup_steps or warmup_steps < 0:
            raise ValueError(f"{type(self).__name__}: 'warmup_steps' must be an int >= 0. "
                             f"Received: warmup_steps={warmup_steps!r}")
        self.warmup_steps = int(warmup_steps)
        self.warmup_final_lr = self.base_lr
        self.warmup_begin_lr = float(warmup_begin_lr)
        if self.warmup_begin_lr > self.warmup_final_lr:
            raise ValueError(f"{type(self).__name__}: base_lr ({self.base_lr}) must be at least "
                             f"warmup_begin_lr ({self.warmup_begin_lr})")
        if warmup_mode not in ("linear", "constant"):
            raise ValueError(f"{type(self).__name__}: 'warmup_mode' must be 'linear' or "
                             f"'constant'. Received: warmup_mode={warmup_mode!r}")
        self.warmup_mode = warmup_mode

    def get_warmup_lr(self, num_update):
        """The warm-up rate at ``num_update`` (< ``warmup_steps``)."""
        if self.warmup_mode == "constant":
            return self.warmup_begin_lr
        rise = (self.warmup_final_lr - self.warmup_begin_lr) * num_update / self.warmup_steps
        return self.warmup_begin_lr + rise

    def __call__(self, num_update):
        raise NotImplementedError(f"{type(self).__name__} does not implement __call__")


class FactorScheduler(LRScheduler):
    """``base_lr * factor**floor((num_update - 1) / step)``, never below ``stop_factor_lr``.

    Args:
        step: Updates between two decays (>= 1).
        factor: Multiplier at each decay (<= 1).
        stop_factor_lr: The lowest rate.
    """

    def __init__(self, step, factor=1, stop_factor_lr=1e-8, base_lr=0.01, warmup_steps=0,
                 warmup_begin_lr=0, warmup_mode="linear"):
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        if step < 1:
            raise ValueError(f"FactorScheduler: 'step' must be >= 1. Received: step={step!r}")
        if factor > 1.0:
            raise ValueError(f"FactorScheduler: 'factor' must be <= 1 to decay the rate. "
                             f"Received: factor={factor!r}")
        self.step, self.factor = int(step), float(factor)
        self.stop_factor_lr = float(stop_factor_lr)

    def __call__(self, num_update):
        if num_update < self.warmup_steps:
            return self.get_warmup_lr(num_update)
        decays = max(0, (int(num_update) - 1) // self.step)
        return max(self.base_lr * self.factor ** decays, self.stop_factor_lr)


class MultiFactorScheduler(LRScheduler):
    """Times ``factor`` after each update count in ``step``.

    Args:
        step: Increasing list of update counts (>= 1).
        factor: Multiplier at each of them.
    """

    def __init__(self, step, factor=1, base_lr=0.01, warmup_steps=0, warmup_begin_lr=0,
                 warmup_mode="linear"):
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        step = [int(s) for s in step]
        if any(b <= a for a, b in zip(step, step[1:])) or (step and step[0] < 1):
            raise ValueError(f"MultiFactorScheduler: 'step' must be increasing counts >= 1. "
                             f"Received: step={step!r}")
        self.step, self.factor = step, float(factor)

    def __call__(self, num_update):
        if num_update < self.warmup_steps:
            return self.get_warmup_lr(num_update)
        decays = sum(1 for s in self.step if int(num_update) > s)
        return self.base_lr * self.factor ** decays


class PolyScheduler(LRScheduler):
    """``final_lr + (base_lr - final_lr) * (1 - t / T)**pwr`` up to ``max_update``.

    ``t`` counts updates after warm-up and ``T = max_update - warmup_steps``;
    after ``max_update`` the rate stays at ``final_lr``.
    """

    def __init__(self, max_update, base_lr=0.01, pwr=2, final_lr=0, warmup_steps=0,
                 warmup_begin_lr=0, warmup_mode="linear"):
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        if max_update < 1:
            raise ValueError(f"PolyScheduler: 'max_update' must be >= 1. Received: "
                             f"max_update={max_update!r}")
        self.power = pwr
        self.base_lr_orig = self.base_lr
        self.max_update = int(max_update)
        self.final_lr = float(final_lr)
        self.max_steps = self.max_update - self.warmup_steps

    def __call__(self, num_update):
        if num_update < self.warmup_steps:
            return self.get_warmup_lr(num_update)
        if num_update > self.max_update:
            return self.final_lr
        done = float(num_update - self.warmup_steps) / self.max_steps
        return self.final_lr + (self.base_lr_orig - self.final_lr) * (1 - done) ** self.power


class CosineScheduler(LRScheduler):
    """``final_lr + (base_lr - final_lr) * (1 + cos(pi * t / T)) / 2`` up to ``max_update``."""

    def __init__(self, max_update, base_lr=0.01, final_lr=0, warmup_steps=0, warmup_begin_lr=0,
                 warmup_mode="linear"):
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        if max_update < 1:
            raise ValueError(f"CosineScheduler: 'max_update' must be >= 1. Received: "
                             f"max_update={max_update!r}")
        self.base_lr_orig = self.base_lr
        self.max_update = int(max_update)
        self.final_lr = float(final_lr)
        self.max_steps = self.max_update - self.warmup_steps

    def __call__(self, num_update):
        if num_update < self.warmup_steps:
            return self.get_warmup_lr(num_update)
        if num_update > self.max_update:
            return self.final_lr
        done = float(num_update - self.warmup_steps) / self.max_steps
        return self.final_lr + (self.base_lr_orig - self.final_lr) * \
            (1 + math.cos(math.pi * done)) / 2
