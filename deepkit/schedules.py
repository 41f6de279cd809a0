"""Learning-rate schedules: ``schedule(step) -> learning rate``."""
import math

__all__ = ["LearningRateSchedule", "ExponentialDecay", "get", "serialize"]


class LearningRateSchedule:
    """Base class: ``__call__(step)`` returns the learning rate for that step."""

    def __call__(self, step):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class ExponentialDecay(LearningRateSchedule):
    """``initial * decay_rate ** (step / decay_steps)`` (floored with ``staircase``)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps, self.decay_rate = int(decay_steps), float(decay_rate)
        self.staircase = bool(staircase)

    def __call__(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate ** p

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase}


_BY_NAME = {"ExponentialDecay": ExponentialDecay}


def get(identifier):
    """A float learning rate stays a float; a schedule or its config becomes a schedule."""
    if isinstance(identifier, (int, float)):
        return float(identifier)
    if isinstance(identifier, dict):
        return _BY_NAME[identifier["class_name"]].from_config(identifier.get("config", {}))
    if callable(identifier):
        return identifier
    raise TypeError(f"cannot interpret {identifier!r} as a learning rate or schedule")


def serialize(schedule):
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}
