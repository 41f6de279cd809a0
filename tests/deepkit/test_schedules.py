"""Learning-rate schedules against their formulas, config round trips and errors."""
import json
import math

import numpy as np
import pytest

from deepkit import schedules


def approx(value):
    return pytest.approx(value, rel=1e-12, abs=1e-15)


# -- formulas ------------------------------------------------------------------------------

@pytest.mark.parametrize("step", [0, 1, 7, 10, 25, 1000])
def test_exponential_decay(step):
    s = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert s(step) == approx(0.1 * 0.5 ** (step / 10))
    s = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    assert s(step) == approx(0.1 * 0.5 ** (step // 10))


def test_piecewise_constant_decay_boundaries_belong_to_the_left_interval():
    s = schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    expected = {0: 1.0, 9: 1.0, 10: 1.0, 11: 0.5, 20: 0.5, 21: 0.1, 500: 0.1}
    assert {k: s(k) for k in expected} == expected


def test_step_decay_matches_mxnet_factor_scheduler():
    s = schedules.StepDecay(1.0, step_size=3, gamma=0.5)
    # MXNet counts updates from 1 and decays once num_update > step; our step = num_update - 1.
    assert [s(k) for k in range(10)] == [1, 1, 1, .5, .5, .5, .25, .25, .25, .125]
    floor = schedules.StepDecay(1.0, step_size=1, gamma=0.1, min_learning_rate=1e-3)
    assert floor(2) == approx(0.01) and floor(3) == approx(1e-3) and floor(50) == 1e-3


def test_step_decay_warmup():
    s = schedules.StepDecay(0.4, step_size=10, gamma=0.5, warmup_steps=4, warmup_begin_lr=0.0)
    assert [s(k) for k in range(4)] == [approx(0.0), approx(0.1), approx(0.2), approx(0.3)]
    assert s(4) == 0.4 and s(9) == 0.4 and s(10) == 0.2


def test_multi_step_decay():
    s = schedules.MultiStepDecay(1.0, milestones=[3, 5, 9], gamma=0.1)
    expected = [1, 1, 1, .1, .1, .01, .01, .01, .01, .001, .001]
    assert [s(k) for k in range(11)] == [approx(v) for v in expected]
    w = schedules.MultiStepDecay(1.0, milestones=[4], gamma=0.1, warmup_steps=2,
                                 warmup_begin_lr=0.5)
    assert [w(k) for k in range(6)] == [0.5, 0.75, 1.0, 1.0, approx(0.1), approx(0.1)]


@pytest.mark.parametrize("power, cycle", [(1.0, False), (0.5, False), (2.0, True)])
def test_polynomial_decay(power, cycle):
    s = schedules.PolynomialDecay(0.1, decay_steps=10, end_learning_rate=0.01, power=power,
                                  cycle=cycle)
    for step in [0, 1, 5, 10, 11, 15, 20, 21, 40]:
        if cycle:
            horizon = 10 * max(1, math.ceil(step / 10))
            p = step / horizon
        else:
            p = min(step, 10) / 10
        assert s(step) == approx((0.1 - 0.01) * (1 - p) ** power + 0.01), step
    assert s(0) == approx(0.1)
    if not cycle:
        assert s(10) == approx(0.01) and s(100) == approx(0.01)
    else:
        assert s(10) == approx(0.01) and s(11) > 2 * s(10)  # restarted


def test_polynomial_decay_default_end_rate_is_keras():
    assert schedules.PolynomialDecay(1.0, 5)(5) == approx(1e-4)


@pytest.mark.parametrize("staircase", [False, True])
def test_inverse_time_decay(staircase):
    s = schedules.InverseTimeDecay(0.5, decay_steps=4, decay_rate=2.0, staircase=staircase)
    for step in [0, 1, 3, 4, 9, 100]:
        p = step // 4 if staircase else step / 4
        assert s(step) == approx(0.5 / (1 + 2.0 * p))


def test_cosine_decay_without_warmup():
    s = schedules.CosineDecay(0.2, decay_steps=10, alpha=0.1)
    for step in [0, 1, 5, 9, 10, 11, 100]:
        k = min(step, 10)
        assert s(step) == approx(0.2 * (0.9 * 0.5 * (1 + math.cos(math.pi * k / 10)) + 0.1))
    assert s(0) == approx(0.2) and s(10) == approx(0.02) and s(50) == approx(0.02)
    # warmup_steps without warmup_target does nothing (Keras)
    assert schedules.CosineDecay(0.2, 10, warmup_steps=5)(3) == s.__class__(0.2, 10)(3)


def test_cosine_decay_warmup_boundaries():
    s = schedules.CosineDecay(0.0, decay_steps=20, alpha=0.0, warmup_target=1.0, warmup_steps=5)
    assert [s(k) for k in range(5)] == [approx(k / 5) for k in range(5)]
    assert s(5) == approx(1.0)                      # warm-up ends at the target
    assert s(6) == approx(0.5 * (1 + math.cos(math.pi / 20)))
    assert s(15) == approx(0.5)                     # half way through the decay
    assert s(25) == approx(0.0) and s(1000) == approx(0.0)
    t = schedules.CosineDecay(0.1, decay_steps=10, alpha=0.5, warmup_target=0.3,
                              warmup_steps=4)
    assert t(0) == approx(0.1) and t(2) == approx(0.2) and t(4) == approx(0.3)
    assert t(14) == approx(0.15) and t(40) == approx(0.15)


def _sgdr(step, lr, first, t_mul, m_mul, alpha):
    """A straightforward loop over the periods."""
    start, length, i = 0.0, float(first), 0
    while step >= start + length:
        start += length
        length *= t_mul
        i += 1
    frac = (step - start) / length
    return lr * ((1 - alpha) * 0.5 * m_mul ** i * (1 + math.cos(math.pi * frac)) + alpha)


@pytest.mark.parametrize("t_mul, m_mul, alpha", [(2.0, 1.0, 0.0), (1.0, 0.5, 0.1),
                                                 (1.5, 0.8, 0.05), (3.0, 1.0, 0.0)])
def test_cosine_decay_restarts(t_mul, m_mul, alpha):
    s = schedules.CosineDecayRestarts(0.3, first_decay_steps=10, t_mul=t_mul, m_mul=m_mul,
                                      alpha=alpha)
    for step in list(range(0, 80, 3)) + [9, 10, 11, 30, 70, 120, 129, 130]:
        assert s(step) == pytest.approx(_sgdr(step, 0.3, 10, t_mul, m_mul, alpha),
                                        rel=1e-9, abs=1e-12), step


def test_cosine_decay_restarts_restart_values():
    s = schedules.CosineDecayRestarts(1.0, first_decay_steps=10, t_mul=2.0, m_mul=0.5)
    assert s(0) == approx(1.0)
    assert s(10) == approx(0.5)     # first restart, at m_mul
    assert s(30) == approx(0.25)    # second restart, after a period twice as long
    assert s(9) < 0.05 and s(29) < 0.05


def test_cosine_decay_restarts_shrinking_periods_stay_finite():
    s = schedules.CosineDecayRestarts(1.0, first_decay_steps=10, t_mul=0.5, alpha=0.2)
    assert s(19) == pytest.approx(_sgdr(19, 1.0, 10, 0.5, 1.0, 0.2))
    assert s(25) == approx(0.2)  # beyond the finite horizon: the floor, not NaN


def test_schedules_return_floats_and_accept_numpy_steps():
    for s in _all_schedules():
        value = s(np.int64(7))
        assert isinstance(value, float) and math.isfinite(value)


# -- configuration -------------------------------------------------------------------------

def _all_schedules():
    return [schedules.ExponentialDecay(0.1, 100, 0.96, staircase=True),
            schedules.PiecewiseConstantDecay([5, 10], [0.1, 0.01, 0.001]),
            schedules.StepDecay(0.1, 30, gamma=0.2, min_learning_rate=1e-5, warmup_steps=3,
                                warmup_begin_lr=0.01),
            schedules.MultiStepDecay(0.1, [30, 60], gamma=0.5, warmup_steps=2),
            schedules.PolynomialDecay(0.1, 50, 0.001, power=2.0, cycle=True),
            schedules.InverseTimeDecay(0.1, 10, 0.5),
            schedules.CosineDecay(0.0, 100, alpha=0.1, warmup_target=0.1, warmup_steps=10),
            schedules.CosineDecayRestarts(0.1, 20, t_mul=1.5, m_mul=0.9, alpha=0.01)]


@pytest.mark.parametrize("schedule", _all_schedules(), ids=lambda s: type(s).__name__)
def test_config_round_trip(schedule):
    config = json.loads(json.dumps(schedules.serialize(schedule)))
    assert config["class_name"] == type(schedule).__name__
    clone = schedules.get(config)
    assert type(clone) is type(schedule)
    assert clone.get_config() == schedule.get_config()
    for step in [0, 1, 5, 10, 31, 77, 200]:
        assert clone(step) == schedule(step)
    direct = type(schedule).from_config(schedule.get_config())
    assert direct(13) == schedule(13)
    assert type(schedule).__name__ in repr(schedule)


def test_keras_config_keys():
    assert schedules.CosineDecay(0.1, 10).get_config() == {
        "initial_learning_rate": 0.1, "decay_steps": 10, "alpha": 0.0, "name": "CosineDecay",
        "warmup_target": None, "warmup_steps": 0}
    assert schedules.CosineDecayRestarts(0.1, 10).get_config()["name"] == "SGDRDecay"


def test_get_passes_numbers_and_callables_through():
    assert schedules.get(1) == 1.0 and isinstance(schedules.get(1), float)
    assert schedules.get(np.float32(0.5)) == 0.5
    s = schedules.ExponentialDecay(0.1, 10, 0.5)
    assert schedules.get(s) is s
    fn = lambda step: 0.1  # noqa: E731
    assert schedules.get(fn) is fn
    with pytest.raises(TypeError, match="only LearningRateSchedule subclasses"):
        schedules.serialize(fn)


def test_register_a_custom_schedule():
    @schedules.register
    class Halving(schedules.LearningRateSchedule):
        def __init__(self, start):
            self.start = start

        def __call__(self, step):
            return self.start / 2 ** step

        def get_config(self):
            return {"start": self.start}

    clone = schedules.get(schedules.serialize(Halving(1.0)))
    assert clone(3) == 0.125
    with pytest.raises(TypeError, match="LearningRateSchedule subclass"):
        schedules.register(dict)


def test_base_class_must_be_overridden():
    with pytest.raises(NotImplementedError, match="must implement __call__"):
        schedules.LearningRateSchedule()(0)
    with pytest.raises(NotImplementedError, match="get_config"):
        schedules.LearningRateSchedule().get_config()


# -- errors --------------------------------------------------------------------------------

@pytest.mark.parametrize("make, message", [
    (lambda: schedules.ExponentialDecay(0.1, 0, 0.5),
     "ExponentialDecay: 'decay_steps' must be a number > 0. Received: decay_steps=0"),
    (lambda: schedules.ExponentialDecay(-0.1, 10, 0.5), "Received: initial_learning_rate=-0.1"),
    (lambda: schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5]),
     "one more element than 'boundaries'"),
    (lambda: schedules.PiecewiseConstantDecay([20, 10], [1.0, 0.5, 0.1]),
     "strictly increasing. Received: boundaries=.20, 10."),
    (lambda: schedules.StepDecay(0.1, step_size=0), "Received: step_size=0"),
    (lambda: schedules.StepDecay(0.1, step_size=2.5), "'step_size' must be an int >= 1"),
    (lambda: schedules.StepDecay(0.1, 10, gamma=-1), "Received: gamma=-1"),
    (lambda: schedules.StepDecay(0.1, 10, warmup_steps=-1), "Received: warmup_steps=-1"),
    (lambda: schedules.MultiStepDecay(0.1, [30, 10]), "Received: milestones=.30, 10."),
    (lambda: schedules.MultiStepDecay(0.1, []), "non-empty list"),
    (lambda: schedules.MultiStepDecay(0.1, 30), "Received: milestones=30"),
    (lambda: schedules.PolynomialDecay(0.1, -5), "Received: decay_steps=-5"),
    (lambda: schedules.InverseTimeDecay(0.1, 10, "fast"), "Received: decay_rate='fast'"),
    (lambda: schedules.CosineDecay(0.1, 0), "'decay_steps' must be a number > 0"),
    (lambda: schedules.CosineDecay(0.1, 10, warmup_target=-1.0, warmup_steps=5),
     "Received: warmup_target=-1.0"),
    (lambda: schedules.CosineDecayRestarts(0.1, 10, t_mul=0), "Received: t_mul=0"),
    (lambda: schedules.get({"class_name": "CosineDecy", "config": {}}),
     "unknown learning-rate schedule 'CosineDecy' .did you mean 'CosineDecay'"),
    (lambda: schedules.get({"config": {}}), "'class_name'"),
    (lambda: schedules.get("fast"), "cannot interpret 'fast'"),
    (lambda: schedules.get(True), "cannot interpret True"),
    (lambda: schedules.ExponentialDecay(0.1, 10, 0.5)(-1), "the step must be a number >= 0"),
])
def test_bad_arguments(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()
