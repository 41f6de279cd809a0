"""Learning-rate schedules: ``schedule(step) -> learning rate``.

An optimizer evaluates its schedule at its update count
(:attr:`~deepkit.optimizers.Optimizer.iterations`), which is 0 for the first
update, as in Keras. Schedules are plain Python: they return floats and never
touch the engine.

The Keras 3 schedules keep Keras's names, arguments and formulas
(``ExponentialDecay``, ``PiecewiseConstantDecay``, ``PolynomialDecay``,
``InverseTimeDecay``, ``CosineDecay`` with warm-up, ``CosineDecayRestarts``);
``StepDecay`` and ``MultiStepDecay`` are MXNet's ``FactorScheduler`` and
``MultiFactorScheduler`` (PyTorch's ``StepLR`` and ``MultiStepLR``), with
MXNet's optional linear warm-up.

Every schedule has ``get_config``/``from_config``; :func:`serialize` and
:func:`get` (or :func:`deserialize`) round-trip them through plain dicts, and
:func:`register` makes your own schedule class known by name.
"""
import bisect
import math
import numbers

from deepkit_engine.base import did_you_mean

__all__ = ["LearningRateSchedule", "ExponentialDecay", "PiecewiseConstantDecay", "StepDecay",
           "MultiStepDecay", "PolynomialDecay", "InverseTimeDecay", "CosineDecay",
           "CosineDecayRestarts", "get", "serialize", "deserialize", "register"]


def _fail(owner, name, value, expected):
    raise ValueError(f"{owner}: '{name}' must be {expected}. Received: {name}={value!r}")


def _number(owner, name, value, low=None, low_open=False, allow_none=False):
    """A validated number: ints stay ints (as given, for the config), others become floats."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not math.isfinite(value) or \
            (low is not None and (value < low or (low_open and value == low))):
        bound = "" if low is None else f" {'>' if low_open else '>='} {low:g}"
        _fail(owner, name, value, f"a number{bound}" + (" or None" if allow_none else ""))
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def _int(owner, name, value, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not float(value).is_integer() or value < low:
        _fail(owner, name, value, f"an int >= {low}")
    return int(value)


def _step(owner, step):
    if isinstance(step, bool) or not isinstance(step, numbers.Real) or step < 0:
        raise ValueError(f"{owner}: the step must be a number >= 0. Received: step={step!r}")
    return step


class LearningRateSchedule:
    """Base class: ``__call__(step)`` returns the learning rate for that step.

    Subclass it, implement ``__call__`` and ``get_config`` (the constructor
    arguments), and decorate the class with :func:`register` so that saved
    models find it again.
    """

    def __call__(self, step):
        raise NotImplementedError(f"learning-rate schedule '{type(self).__name__}' must "
                                  "implement __call__(self, step)")

    def get_config(self):
        raise NotImplementedError(f"learning-rate schedule '{type(self).__name__}' must "
                                  "implement get_config() to be saved")

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


def _warmup(step, warmup_steps, begin, target):
    """Linear warm-up from ``begin`` (step 0) towards ``target`` (at ``warmup_steps``)."""
    return begin + (target - begin) * step / warmup_steps


class ExponentialDecay(LearningRateSchedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``.

    Args:
        initial_learning_rate: The learning rate at step 0.
        decay_steps: Positive int: the rate is multiplied by ``decay_rate``
            every ``decay_steps`` steps.
        decay_rate: The factor per ``decay_steps``.
        staircase: Floor ``step / decay_steps`` (decay in discrete jumps).
        name: Name of the schedule (kept in the config, as Keras).
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="ExponentialDecay"):
        owner = type(self).__name__
        self.initial_learning_rate = _number(owner, "initial_learning_rate",
                                             initial_learning_rate, 0.0)
        self.decay_steps = _number(owner, "decay_steps", decay_steps, 0.0, low_open=True)
        self.decay_rate = _number(owner, "decay_rate", decay_rate, 0.0)
        self.staircase = bool(staircase)
        self.name = name

    def __call__(self, step):
        p = _step(type(self).__name__, step) / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate ** p

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class PiecewiseConstantDecay(LearningRateSchedule):
    """Constant values between boundaries (Keras 3).

    ``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` while
    ``boundaries[i-1] < step <= boundaries[i]``, and ``values[-1]`` after the
    last boundary.

    Args:
        boundaries: Strictly increasing step numbers.
        values: One more value than boundaries.
        name: Name of the schedule.
    """

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        owner = type(self).__name__
        boundaries, values = list(boundaries), list(values)
        if len(boundaries) != len(values) - 1:
            raise ValueError(f"{owner}: 'values' must have one more element than 'boundaries'. "
                             f"Received: boundaries={boundaries} (length {len(boundaries)}), "
                             f"values={values} (length {len(values)})")
        for b in boundaries:
            _number(owner, "boundaries", b, 0.0)
        if any(b >= c for b, c in zip(boundaries, boundaries[1:])):
            _fail(owner, "boundaries", boundaries, "strictly increasing")
        self.boundaries = boundaries
        self.values = [_number(owner, "values", v, 0.0) for v in values]
        self.name = name

    def __call__(self, step):
        step = _step(type(self).__name__, step)
        return self.values[bisect.bisect_left(self.boundaries, step)]

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class StepDecay(LearningRateSchedule):
    """Multiply the rate by ``gamma`` every ``step_size`` steps (MXNet's ``FactorScheduler``).

    ``lr = max(initial_learning_rate * gamma ** floor(step / step_size),
    min_learning_rate)``. With ``warmup_steps``, the first steps rise linearly
    from ``warmup_begin_lr`` (step 0) to ``initial_learning_rate`` instead
    (MXNet's linear warm-up; the decay count still starts at step 0).

    Args:
        initial_learning_rate: The learning rate after warm-up.
        step_size: Positive int, steps between two decays.
        gamma: The decay factor, in [0, 1] usually.
        min_learning_rate: The rate never decays below this (MXNet's
            ``stop_factor_lr``).
        warmup_steps: Int >= 0, length of the linear warm-up.
        warmup_begin_lr: The rate at step 0 of the warm-up.
        name: Name of the schedule.
    """

    def __init__(self, initial_learning_rate, step_size, gamma=0.1, min_learning_rate=0.0,
                 warmup_steps=0, warmup_begin_lr=0.0, name="StepDecay"):
        owner = type(self).__name__
        self.initial_learning_rate = _number(owner, "initial_learning_rate",
                                             initial_learning_rate, 0.0)
        self.step_size = _int(owner, "step_size", step_size, 1)
        self.gamma = _number(owner, "gamma", gamma, 0.0)
        self.min_learning_rate = _number(owner, "min_learning_rate", min_learning_rate, 0.0)
        self.warmup_steps = _int(owner, "warmup_steps", warmup_steps, 0)
        self.warmup_begin_lr = _number(owner, "warmup_begin_lr", warmup_begin_lr, 0.0)
        self.name = name

    def __call__(self, step):
        step = _step(type(self).__name__, step)
        if step < self.warmup_steps:
            return _warmup(step, self.warmup_steps, self.warmup_begin_lr,
                           self.initial_learning_rate)
        lr = self.initial_learning_rate * self.gamma ** math.floor(step / self.step_size)
        return max(lr, self.min_learning_rate)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "step_size": self.step_size, "gamma": self.gamma,
                "min_learning_rate": self.min_learning_rate, "warmup_steps": self.warmup_steps,
                "warmup_begin_lr": self.warmup_begin_lr, "name": self.name}


class MultiStepDecay(LearningRateSchedule):
    """Multiply the rate by ``gamma`` at each milestone (MXNet's ``MultiFactorScheduler``).

    ``lr = initial_learning_rate * gamma ** (number of milestones <= step)``:
    with ``milestones=[30, 80]`` steps 0..29 use the initial rate, 30..79 one
    decay, 80.. two. (Keras's :class:`PiecewiseConstantDecay` changes *after*
    its boundary instead.) Optional linear warm-up as :class:`StepDecay`.

    Args:
        initial_learning_rate: The learning rate after warm-up.
        milestones: Strictly increasing positive ints.
        gamma: The factor applied at each milestone.
        warmup_steps: Int >= 0, length of the linear warm-up.
        warmup_begin_lr: The rate at step 0 of the warm-up.
        name: Name of the schedule.
    """

    def __init__(self, initial_learning_rate, milestones, gamma=0.1, warmup_steps=0,
                 warmup_begin_lr=0.0, name="MultiStepDecay"):
        owner = type(self).__name__
        self.initial_learning_rate = _number(owner, "initial_learning_rate",
                                             initial_learning_rate, 0.0)
        if isinstance(milestones, (str, bytes)) or not hasattr(milestones, "__iter__"):
            _fail(owner, "milestones", milestones, "a list of increasing positive ints")
        milestones = list(milestones)
        if not milestones or any(isinstance(m, bool) or not isinstance(m, int) or m < 1
                                 for m in milestones) \
                or any(a >= b for a, b in zip(milestones, milestones[1:])):
            _fail(owner, "milestones", milestones,
                  "a non-empty list of strictly increasing positive ints")
        self.milestones = milestones
        self.gamma = _number(owner, "gamma", gamma, 0.0)
        self.warmup_steps = _int(owner, "warmup_steps", warmup_steps, 0)
        self.warmup_begin_lr = _number(owner, "warmup_begin_lr", warmup_begin_lr, 0.0)
        self.name = name

    def __call__(self, step):
        step = _step(type(self).__name__, step)
        if step < self.warmup_steps:
            return _warmup(step, self.warmup_steps, self.warmup_begin_lr,
                           self.initial_learning_rate)
        return self.initial_learning_rate * self.gamma ** bisect.bisect_right(self.milestones,
                                                                              step)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "milestones": self.milestones, "gamma": self.gamma,
                "warmup_steps": self.warmup_steps, "warmup_begin_lr": self.warmup_begin_lr,
                "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """Polynomial decay from ``initial_learning_rate`` to ``end_learning_rate`` (Keras 3).

    ``(initial - end) * (1 - s / decay_steps) ** power + end`` with
    ``s = min(step, decay_steps)``. With ``cycle`` the decay restarts: the
    horizon is the first multiple of ``decay_steps`` that is >= step (at least
    ``decay_steps``).

    Args:
        initial_learning_rate: The learning rate at step 0.
        decay_steps: Positive number of steps to decay over.
        end_learning_rate: The final rate.
        power: The power of the polynomial (1.0: linear).
        cycle: Whether to start again after ``decay_steps``.
        name: Name of the schedule.
    """

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0,
                 cycle=False, name="PolynomialDecay"):
        owner = type(self).__name__
        self.initial_learning_rate = _number(owner, "initial_learning_rate",
                                             initial_learning_rate, 0.0)
        self.decay_steps = _number(owner, "decay_steps", decay_steps, 0.0, low_open=True)
        self.end_learning_rate = _number(owner, "end_learning_rate", end_learning_rate, 0.0)
        self.power = _number(owner, "power", power, 0.0)
        self.cycle = bool(cycle)
        self.name = name

    def __call__(self, step):
        step = _step(type(self).__name__, step)
        horizon = self.decay_steps
        if self.cycle:
            horizon *= 1.0 if step == 0 else math.ceil(step / self.decay_steps)
        else:
            step = min(step, horizon)
        p = step / horizon
        return ((self.initial_learning_rate - self.end_learning_rate) * (1 - p) ** self.power
                + self.end_learning_rate)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "end_learning_rate": self.end_learning_rate,
                "power": self.power, "cycle": self.cycle, "name": self.name}


class InverseTimeDecay(LearningRateSchedule):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)`` (Keras 3).

    Args:
        initial_learning_rate: The learning rate at step 0.
        decay_steps: Positive number: the time unit of the decay.
        decay_rate: Float >= 0.
        staircase: Floor ``step / decay_steps``.
        name: Name of the schedule.
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="InverseTimeDecay"):
        owner = type(self).__name__
        self.initial_learning_rate = _number(owner, "initial_learning_rate",
                                             initial_learning_rate, 0.0)
        self.decay_steps = _number(owner, "decay_steps", decay_steps, 0.0, low_open=True)
        self.decay_rate = _number(owner, "decay_rate", decay_rate, 0.0)
        self.staircase = bool(staircase)
        self.name = name

    def __call__(self, step):
        p = _step(type(self).__name__, step) / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate / (1.0 + self.decay_rate * p)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class CosineDecay(LearningRateSchedule):
    """Cosine decay (SGDR without restarts), with an optional linear warm-up (Keras 3).

    Without ``warmup_target``:
    ``lr = initial * ((1 - alpha) * 0.5 * (1 + cos(pi * s / decay_steps)) + alpha)``
    with ``s = min(step, decay_steps)``. With ``warmup_target``: for
    ``step < warmup_steps`` the rate rises linearly from
    ``initial_learning_rate`` to ``warmup_target``, then decays from
    ``warmup_target`` to ``warmup_target * alpha`` over ``decay_steps``.

    Args:
        initial_learning_rate: The rate at step 0.
        decay_steps: Positive number of steps to decay over (after warm-up).
        alpha: The final rate as a fraction of the decay's starting rate.
        name: Name of the schedule.
        warmup_target: The rate the warm-up reaches; None: no warm-up.
        warmup_steps: Int >= 0, length of the warm-up.
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay",
                 warmup_target=None, warmup_steps=0):
        owner = type(self).__name__
        self.initial_learning_rate = _number(owner, "initial_learning_rate",
                                             initial_learning_rate, 0.0)
        self.decay_steps = _number(owner, "decay_steps", decay_steps, 0.0, low_open=True)
        self.alpha = _number(owner, "alpha", alpha, 0.0)
        self.name = name
        self.warmup_target = _number(owner, "warmup_target", warmup_target, 0.0,
                                     allow_none=True)
        self.warmup_steps = _int(owner, "warmup_steps", warmup_steps, 0)

    def _decay(self, step, start_lr):
        cosine = 0.5 * (1.0 + math.cos(math.pi * step / self.decay_steps))
        return start_lr * ((1.0 - self.alpha) * cosine + self.alpha)

    def __call__(self, step):
        step = _step(type(self).__name__, step)
        if self.warmup_target is None:
            return self._decay(min(step, self.decay_steps), self.initial_learning_rate)
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            return _warmup(step, self.warmup_steps, self.initial_learning_rate,
                           self.warmup_target)
        return self._decay(step - self.warmup_steps, self.warmup_target)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha, "name": self.name,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR, Loshchilov & Hutter), as Keras 3.

    The multiplier decays from 1 to ``alpha`` over ``first_decay_steps``; then
    the decay restarts, each period ``t_mul`` times longer than the previous
    and starting from ``m_mul`` times its rate. (With ``t_mul < 1`` the periods
    shrink and sum to a finite horizon; beyond it the rate stays at
    ``initial_learning_rate * alpha``, where Keras returns NaN.)

    Args:
        initial_learning_rate: The rate at step 0.
        first_decay_steps: Positive number, length of the first period.
        t_mul: Float > 0, growth of the period length.
        m_mul: Float >= 0, factor of the starting rate per restart.
        alpha: The minimum rate as a fraction of ``initial_learning_rate``.
        name: Name of the schedule.
    """

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0,
                 alpha=0.0, name="SGDRDecay"):
        owner = type(self).__name__
        self.initial_learning_rate = _number(owner, "initial_learning_rate",
                                             initial_learning_rate, 0.0)
        self.first_decay_steps = _number(owner, "first_decay_steps", first_decay_steps, 0.0,
                                         low_open=True)
        self.t_mul = _number(owner, "t_mul", t_mul, 0.0, low_open=True)
        self.m_mul = _number(owner, "m_mul", m_mul, 0.0)
        self.alpha = _number(owner, "alpha", alpha, 0.0)
        self.name = name

    def _period(self, fraction):
        """(restart index, fraction completed of that period) for ``step / first_decay_steps``."""
        t = self.t_mul
        if t == 1.0:
            i = math.floor(fraction)
            return i, fraction - i

        def start(k):  # where period k begins, in units of the first period
            return (1.0 - t ** k) / (1.0 - t)
        if t < 1.0 and fraction >= 1.0 / (1.0 - t):
            return None, None  # shrinking periods never reach this step (Keras gives NaN)
        i = math.floor(math.log(1.0 - fraction * (1.0 - t)) / math.log(t))
        while start(i + 1) <= fraction:  # correct float rounding at the boundaries
            i += 1
        while i > 0 and start(i) > fraction:
            i -= 1
        return i, (fraction - start(i)) / t ** i

    def __call__(self, step):
        step = _step(type(self).__name__, step)
        i, fraction = self._period(step / self.first_decay_steps)
        if i is None:
            return self.initial_learning_rate * self.alpha
        cosine = 0.5 * self.m_mul ** i * (1.0 + math.cos(math.pi * fraction))
        return self.initial_learning_rate * ((1.0 - self.alpha) * cosine + self.alpha)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "first_decay_steps": self.first_decay_steps, "t_mul": self.t_mul,
                "m_mul": self.m_mul, "alpha": self.alpha, "name": self.name}


_BY_NAME = {cls.__name__: cls for cls in (
    ExponentialDecay, PiecewiseConstantDecay, StepDecay, MultiStepDecay, PolynomialDecay,
    InverseTimeDecay, CosineDecay, CosineDecayRestarts)}


def register(cls):
    """Class decorator: make a :class:`LearningRateSchedule` subclass loadable by name."""
    if not (isinstance(cls, type) and issubclass(cls, LearningRateSchedule)):
        raise TypeError(f"register: expected a LearningRateSchedule subclass, got {cls!r}")
    _BY_NAME[cls.__name__] = cls
    return cls


def deserialize(config, custom_objects=None):
    """A schedule from ``{'class_name': ..., 'config': {...}}`` (what :func:`serialize` gives)."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"a schedule config is a dict with 'class_name' and 'config'. "
                         f"Received: {config!r}")
    name = config["class_name"]
    cls = (custom_objects or {}).get(name) or _BY_NAME.get(name)
    if cls is None:
        raise ValueError(f"unknown learning-rate schedule {name!r}{did_you_mean(name, _BY_NAME)}"
                         f"; known: {', '.join(sorted(_BY_NAME))} (register your own with "
                         "deepkit.schedules.register)")
    return cls.from_config(config.get("config", {}))


def get(identifier, custom_objects=None):
    """A number stays a float; a schedule stays itself; a config dict becomes a schedule.

    Any other callable ``f(step) -> lr`` is accepted as is (it cannot be saved).
    """
    if isinstance(identifier, bool):
        raise TypeError(f"cannot interpret {identifier!r} as a learning rate or schedule")
    if isinstance(identifier, numbers.Real):
        return float(identifier)
    if isinstance(identifier, dict):
        return deserialize(identifier, custom_objects)
    if callable(identifier):
        return identifier
    raise TypeError(f"cannot interpret {identifier!r} as a learning rate or schedule: give a "
                    "float, a LearningRateSchedule, a callable(step) or a config dict")


def serialize(schedule):
    """``{'class_name', 'config'}`` of a schedule (JSON-serialisable)."""
    if not isinstance(schedule, LearningRateSchedule):
        raise TypeError(f"cannot serialize the learning-rate callable {schedule!r}: only "
                        "LearningRateSchedule subclasses (with get_config) can be saved")
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}
