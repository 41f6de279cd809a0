"""Optimizers against hand-written numpy references (Keras 3 formulas), state, fit, errors."""
import json
import math

import numpy as np
import pytest

import deepkit
from deepkit import layers, optimizers, schedules
from deepkit_engine import nd
from deepkit_engine.ndarray.ndarray import NDArray

# -- parameters driven directly -----------------------------------------------------------

SHAPES = [(3, 4), (3,), (2, 3)]          # d1 weight, d1 bias, d2 weight
MULTS = [(1.0, 1.0), (1.0, 1.0), (0.5, 2.0)]  # (lr_mult, wd_mult) of each


def make_params(prefix="p", seed=0):
    """Three Parameters of two Dense layers (the second with lr_mult=0.5, wd_mult=2)."""
    inp = deepkit.Input(shape=(4,))
    d1 = layers.Dense(3, name=f"{prefix}_d1")
    d2 = layers.Dense(2, use_bias=False, lr_mult=0.5, wd_mult=2.0, name=f"{prefix}_d2")
    d2(d1(inp))
    params = [d1.params["weight"], d1.params["bias"], d2.params["weight"]]
    rng = np.random.RandomState(seed)
    for p in params:
        p.initialize(deepkit.cpu())
        p.data[:] = rng.uniform(-1, 1, p.shape).astype(np.float32)
    return params


def grad_sequence(n_calls, seed=1, scale=1.0):
    rng = np.random.RandomState(seed)
    return [[(rng.randn(*s) * scale).astype(np.float32) for s in SHAPES]
            for _ in range(n_calls)]


def run(opt, params, grads):
    for gs in grads:
        opt.apply([(p, nd.array(g)) for p, g in zip(params, gs)])
    return [p.data.asnumpy() for p in params]


# -- the numpy reference ----------------------------------------------------------------------

class Reference:
    """A float64 re-implementation of the base-class pipeline and every update rule."""

    def __init__(self, kind, cfg):
        self.kind, self.cfg = kind, dict(cfg)
        self.lr = self.cfg.pop("learning_rate", DEFAULT_LR[kind])
        self.wd = self.cfg.pop("weight_decay", 0.004 if kind == "adamw" else None)
        self.clipnorm = self.cfg.pop("clipnorm", None)
        self.clipvalue = self.cfg.pop("clipvalue", None)
        self.global_clipnorm = self.cfg.pop("global_clipnorm", None)
        self.accum = self.cfg.pop("gradient_accumulation_steps", None) or 1
        self.iterations = 0
        self.micro = 0
        self.acc = None
        self.states = None
        self.u_product = 1.0

    def apply(self, ws, gs):
        gs = [g.astype(np.float64) for g in gs]
        if self.accum > 1:
            self.acc = gs if self.acc is None else [a + g for a, g in zip(self.acc, gs)]
            self.micro += 1
            if self.micro % self.accum:
                return ws
            gs, self.acc = [a / self.accum for a in self.acc], None
        if self.clipnorm is not None:
            gs = [g * self.clipnorm / max(np.sqrt((g ** 2).sum()), self.clipnorm) for g in gs]
        if self.global_clipnorm is not None:
            total = np.sqrt(sum((g ** 2).sum() for g in gs))
            gs = [g * self.global_clipnorm / max(total, self.global_clipnorm) for g in gs]
        if self.clipvalue is not None:
            gs = [np.clip(g, -self.clipvalue, self.clipvalue) for g in gs]
        lr = self.lr(self.iterations) if callable(self.lr) else self.lr
        if self.states is None:
            self.states = [self.init_state(w) for w in ws]
        t = self.iterations + 1
        if self.kind == "nadam":
            b1 = self.cfg.get("beta_1", 0.9)
            self.u_product *= b1 * (1 - 0.5 * 0.96 ** t)
        out = []
        for w, g, s, (lr_mult, wd_mult) in zip(ws, gs, self.states, MULTS):
            w = w.astype(np.float64)
            p_lr = lr * lr_mult
            if self.wd:
                w = w - w * self.wd * wd_mult * p_lr
            out.append(self.update(w, g, s, p_lr, t))
        self.iterations += 1
        return out

    def init_state(self, w):
        init = {"adagrad": self.cfg.get("initial_accumulator_value", 0.1),
                "ftrl": self.cfg.get("initial_accumulator_value", 0.1)}.get(self.kind, 0.0)
        return {"a": np.full(w.shape, init), "b": np.zeros(w.shape), "c": np.zeros(w.shape)}

    def update(self, w, g, s, lr, t):
        c, kind = self.cfg, self.kind
        b1, b2 = c.get("beta_1", 0.9), c.get("beta_2", 0.999)
        eps = c.get("epsilon", 1e-7)
        if kind == "sgd":
            mom = c.get("momentum", 0.0)
            if not mom:
                return w - lr * g
            s["a"] = mom * s["a"] - lr * g
            if c.get("nesterov"):
                return w + mom * s["a"] - lr * g
            return w + s["a"]
        if kind in ("adam", "adamw"):
            s["a"] = b1 * s["a"] + (1 - b1) * g
            s["b"] = b2 * s["b"] + (1 - b2) * g * g
            v = s["b"]
            if c.get("amsgrad"):
                s["c"] = np.maximum(s["c"], s["b"])
                v = s["c"]
            alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            return w - alpha * s["a"] / (np.sqrt(v) + eps)
        if kind == "adamax":
            s["a"] = b1 * s["a"] + (1 - b1) * g
            s["b"] = np.maximum(b2 * s["b"], np.abs(g))
            return w - lr * s["a"] / ((1 - b1 ** t) * (s["b"] + eps))
        if kind == "nadam":
            u_t = b1 * (1 - 0.5 * 0.96 ** t)
            u_next = b1 * (1 - 0.5 * 0.96 ** (t + 1))
            s["a"] = b1 * s["a"] + (1 - b1) * g
            s["b"] = b2 * s["b"] + (1 - b2) * g * g
            m_hat = (u_next * s["a"] / (1 - self.u_product * u_next)
                     + (1 - u_t) * g / (1 - self.u_product))
            v_hat = s["b"] / (1 - b2 ** t)
            return w - lr * m_hat / (np.sqrt(v_hat) + eps)
        if kind == "rmsprop":
            rho, mom = c.get("rho", 0.9), c.get("momentum", 0.0)
            s["a"] = rho * s["a"] + (1 - rho) * g * g
            if c.get("centered"):
                s["b"] = rho * s["b"] + (1 - rho) * g
                denom = s["a"] - s["b"] ** 2 + eps
            else:
                denom = s["a"] + eps
            inc = lr * g / np.sqrt(denom)
            if mom:
                s["c"] = mom * s["c"] + inc
                return w - s["c"]
            return w - inc
        if kind == "adagrad":
            s["a"] = s["a"] + g * g
            return w - lr * g / np.sqrt(s["a"] + eps)
        if kind == "adadelta":
            rho = c.get("rho", 0.95)
            s["a"] = rho * s["a"] + (1 - rho) * g * g
            delta = -np.sqrt(s["b"] + eps) / np.sqrt(s["a"] + eps) * g
            s["b"] = rho * s["b"] + (1 - rho) * delta ** 2
            return w + lr * delta
        if kind == "ftrl":
            power = -c.get("learning_rate_power", -0.5)
            l1 = c.get("l1_regularization_strength", 0.0)
            l2 = c.get("l2_regularization_strength", 0.0) + c.get("beta", 0.0) / (2 * lr)
            shrink = c.get("l2_shrinkage_regularization_strength", 0.0)
            n_new = s["a"] + g * g
            sigma = (n_new ** power - s["a"] ** power) / lr
            s["b"] = s["b"] + g + 2 * shrink * w - sigma * w
            quadratic = n_new ** power / lr + 2 * l2
            s["a"] = n_new
            return (np.clip(s["b"], -l1, l1) - s["b"]) / quadratic
        if kind == "lamb":
            s["a"] = b1 * s["a"] + (1 - b1) * g
            s["b"] = b2 * s["b"] + (1 - b2) * g * g
            r = (s["a"] / (1 - b1 ** t)) / (np.sqrt(s["b"] / (1 - b2 ** t)) + eps)
            w_norm, r_norm = np.linalg.norm(w), np.linalg.norm(r)
            ratio = w_norm / r_norm if w_norm > 0 and r_norm > 0 else 1.0
            return w - ratio * lr * r
        raise AssertionError(kind)


CLASSES = {"sgd": optimizers.SGD, "adam": optimizers.Adam, "adamw": optimizers.AdamW,
           "adamax": optimizers.Adamax, "nadam": optimizers.Nadam,
           "rmsprop": optimizers.RMSprop, "adagrad": optimizers.Adagrad,
           "adadelta": optimizers.Adadelta, "ftrl": optimizers.Ftrl, "lamb": optimizers.Lamb}
DEFAULT_LR = {"sgd": 0.01, "adam": 0.001, "adamw": 0.001, "adamax": 0.001, "nadam": 0.001,
              "rmsprop": 0.001, "adagrad": 0.001, "adadelta": 0.001, "ftrl": 0.001,
              "lamb": 0.001}
# Large enough steps that every term matters over a few updates.
TEST_LR = {"sgd": 0.1, "adam": 0.05, "adamw": 0.05, "adamax": 0.05, "nadam": 0.05,
           "rmsprop": 0.02, "adagrad": 0.1, "adadelta": 1.0, "ftrl": 0.2, "lamb": 0.05}

RULE_VARIANTS = {
    "sgd": [{}, {"momentum": 0.9}, {"momentum": 0.8, "nesterov": True}],
    "adam": [{}, {"amsgrad": True, "beta_1": 0.8, "beta_2": 0.99}],
    "adamw": [{}, {"weight_decay": 0.05, "amsgrad": True}],
    "adamax": [{}, {"beta_2": 0.9, "epsilon": 1e-3}],
    "nadam": [{}, {"beta_1": 0.8}],
    "rmsprop": [{}, {"momentum": 0.5}, {"centered": True}, {"centered": True, "momentum": 0.9,
                                                           "rho": 0.8}],
    "adagrad": [{}, {"initial_accumulator_value": 1.0}],
    "adadelta": [{}, {"rho": 0.5}],
    "ftrl": [{}, {"l1_regularization_strength": 0.05, "l2_regularization_strength": 0.1},
             {"learning_rate_power": -0.7, "beta": 0.3,
              "l2_shrinkage_regularization_strength": 0.05},
             {"learning_rate_power": 0.0, "initial_accumulator_value": 0.0}],
    "lamb": [{}, {"beta_1": 0.5}],
}
BASE_VARIANTS = [{}, {"clipnorm": 0.7}, {"clipvalue": 0.3}, {"global_clipnorm": 1.5},
                 {"weight_decay": 0.1}, {"gradient_accumulation_steps": 3},
                 {"gradient_accumulation_steps": 2, "global_clipnorm": 1.0,
                  "weight_decay": 0.05}]

CASES = ([(k, v) for k, vs in RULE_VARIANTS.items() for v in vs]
         + [(k, b) for k in CLASSES for b in BASE_VARIANTS[1:]])


def _case_id(case):
    kind, cfg = case
    return kind + "-" + ("-".join(f"{k}={v}" for k, v in cfg.items()) or "default")


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_matches_numpy_reference(case):
    kind, cfg = case
    cfg = dict(cfg, learning_rate=TEST_LR[kind])
    params = make_params()
    ws = [p.data.asnumpy() for p in params]
    n_calls = 6 * (cfg.get("gradient_accumulation_steps") or 1)
    grads = grad_sequence(n_calls)
    opt = CLASSES[kind](**cfg)
    ref = Reference(kind, cfg)
    history = []
    for gs in grads:
        opt.apply([(p, nd.array(g)) for p, g in zip(params, gs)])
        ws = ref.apply(ws, gs)
        history.append([p.data.asnumpy() for p in params])
    assert opt.iterations == 6
    moved = [not np.allclose(h, w0) for h, w0 in zip(history[-1], history[0])]
    assert any(moved)
    for got, want in zip([p.data.asnumpy() for p in params], ws):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


def test_lr_mult_and_wd_mult_scale_each_parameter():
    params = make_params()
    before = [p.data.asnumpy() for p in params]
    grads = [np.ones(s, np.float32) for s in SHAPES]
    opt = optimizers.SGD(learning_rate=0.1, weight_decay=0.5)
    opt.apply([(p, nd.array(g)) for p, g in zip(params, grads)])
    for p, w in zip(params, before):
        lr = 0.1 * p.lr_mult
        expected = w * (1 - lr * 0.5 * p.wd_mult) - lr
        np.testing.assert_allclose(p.data.asnumpy(), expected, rtol=1e-6, atol=1e-7)
    assert params[2].lr_mult == 0.5 and params[2].wd_mult == 2.0


def test_schedule_is_evaluated_at_the_update_count():
    sched = schedules.ExponentialDecay(0.2, decay_steps=2, decay_rate=0.5)
    params = make_params()
    ws = [p.data.asnumpy() for p in params]
    grads = grad_sequence(10)
    opt = optimizers.SGD(learning_rate=sched, momentum=0.5, gradient_accumulation_steps=2)
    ref = Reference("sgd", {"learning_rate": sched, "momentum": 0.5,
                            "gradient_accumulation_steps": 2})
    for gs in grads:
        ws = ref.apply(ws, gs)
    got = run(opt, params, grads)
    for g, w in zip(got, ws):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    assert opt.iterations == 5
    assert opt.lr == pytest.approx(sched(5))


def test_weight_decay_exclusions():
    params = make_params()
    before = [p.data.asnumpy() for p in params]
    opt = optimizers.AdamW(learning_rate=0.1, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_list=[params[2]], var_names=["bias"])
    zeros = [np.zeros(s, np.float32) for s in SHAPES]
    opt.apply([(p, nd.array(g)) for p, g in zip(params, zeros)])
    after = [p.data.asnumpy() for p in params]
    np.testing.assert_allclose(after[0], before[0] * (1 - 0.1 * 0.5), rtol=1e-6)
    np.testing.assert_array_equal(after[1], before[1])
    np.testing.assert_array_equal(after[2], before[2])


def test_frozen_parameters_and_missing_gradients_are_skipped():
    params = make_params()
    before = [p.data.asnumpy() for p in params]
    params[2].layer.trainable = False
    opt = optimizers.SGD(0.1)
    opt.apply([(params[0], None), (params[1], nd.ones((3,))),
               (params[2], nd.ones((2, 3)))])
    after = [p.data.asnumpy() for p in params]
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_allclose(after[1], before[1] - 0.1, rtol=1e-6)
    np.testing.assert_array_equal(after[2], before[2])
    params[2].layer.trainable = True


def test_constraint_is_applied_after_the_update():
    inp = deepkit.Input(shape=(2,))
    dense = layers.Dense(2, kernel_constraint="non_neg")
    dense(inp)
    w = dense.params["weight"]
    w.initialize(deepkit.cpu())
    w.data[:] = np.array([[0.1, 0.5], [0.2, 0.05]], np.float32)
    optimizers.SGD(1.0).apply([(w, nd.array(np.full((2, 2), 0.15, np.float32)))])
    np.testing.assert_allclose(w.data.asnumpy(), [[0.0, 0.35], [0.05, 0.0]], atol=1e-7)


def test_apply_gradients_takes_keras_order():
    params = make_params()
    before = params[1].data.asnumpy()
    optimizers.SGD(0.5).apply_gradients([(nd.ones((3,)), params[1])])
    np.testing.assert_allclose(params[1].data.asnumpy(), before - 0.5, rtol=1e-6)


@pytest.mark.parametrize("kind", sorted(CLASSES))
def test_update_never_waits_for_the_engine(kind, monkeypatch):
    """update_step and the base pipeline stay lazy: no value is read back into Python."""
    params = make_params()
    grads = grad_sequence(4)
    opts = [CLASSES[kind](learning_rate=TEST_LR[kind], global_clipnorm=1.0, weight_decay=0.1,
                          gradient_accumulation_steps=2),
            CLASSES[kind](learning_rate=TEST_LR[kind], clipnorm=1.0),
            CLASSES[kind](learning_rate=TEST_LR[kind], clipvalue=0.5)]
    arrays = [[nd.array(g) for g in gs] for gs in grads]

    def forbidden(*args, **kwargs):
        raise AssertionError("the optimizer read a value back from the engine")
    for attr in ("asnumpy", "asscalar", "wait_to_read", "__bool__", "__float__", "__array__",
                 "tolist"):
        monkeypatch.setattr(NDArray, attr, forbidden)
    for opt in opts:
        for gs in arrays:
            opt.apply(list(zip(params, gs)))
    monkeypatch.undo()
    for p in params:
        assert np.isfinite(p.data.asnumpy()).all()


# -- state ---------------------------------------------------------------------------------

STATE_CASES = [("sgd", {"momentum": 0.9, "nesterov": True}), ("adam", {"amsgrad": True}),
               ("adamw", {}), ("adamax", {}), ("nadam", {}),
               ("rmsprop", {"momentum": 0.5, "centered": True}), ("adagrad", {}),
               ("adadelta", {}), ("ftrl", {"l1_regularization_strength": 0.01}), ("lamb", {}),
               ("adam", {"gradient_accumulation_steps": 3, "global_clipnorm": 1.0})]


@pytest.mark.parametrize("case", STATE_CASES, ids=[_case_id(c) for c in STATE_CASES])
def test_save_and_resume_equals_uninterrupted(case):
    kind, cfg = case
    cfg = dict(cfg, learning_rate=schedules.CosineDecay(TEST_LR[kind], 20, warmup_target=None))
    grads = grad_sequence(13)
    whole = make_params("whole")
    expected = run(CLASSES[kind](**cfg), whole, grads)

    first = make_params("run")
    opt = CLASSES[kind](**cfg)
    run(opt, first, grads[:7])
    state = opt.get_state()
    config = json.loads(json.dumps(optimizers.serialize(opt)))
    weights = [p.data.asnumpy() for p in first]
    # A new process: new parameter objects with the same names, a rebuilt optimizer.
    resumed = make_params("run", seed=99)
    for p, w in zip(resumed, weights):
        p.data[:] = w
    opt2 = optimizers.get(config)
    opt2.set_state(state, resumed)
    assert opt2.iterations == opt.iterations
    got = run(opt2, resumed, grads[7:])
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)


def test_get_state_contents():
    params = make_params()
    opt = optimizers.Adam(amsgrad=True, gradient_accumulation_steps=2)
    run(opt, params, grad_sequence(3))
    state = opt.get_state()
    assert state["iterations"] == 1 and state["micro_step"] == 3
    assert set(state["states"]) == {p.name for p in params}
    assert [a.shape for a in state["states"][params[0].name]] == [(3, 4)] * 3
    assert set(state["accumulators"]) == {p.name for p in params}


def test_set_state_rejects_a_mismatched_state():
    params = make_params()
    adam = optimizers.Adam()
    run(adam, params, grad_sequence(1))
    with pytest.raises(ValueError, match="SGD.set_state: the saved state of 'p_d1_weight'"):
        optimizers.SGD(momentum=0.9).set_state(adam.get_state(), params)
    state = adam.get_state()
    state["states"]["unknown_param"] = [np.zeros(2)]
    optimizers.Adam().set_state(state, params)  # parameters not in the model are ignored


# -- configuration -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(CLASSES))
def test_config_round_trip(kind):
    variants = RULE_VARIANTS[kind]
    opt = CLASSES[kind](**variants[-1], learning_rate=schedules.PiecewiseConstantDecay(
        [10, 20], [0.1, 0.05, 0.01]), clipnorm=2.0, gradient_accumulation_steps=4,
        name="mine")
    config = json.loads(json.dumps(optimizers.serialize(opt)))
    assert config["class_name"] == CLASSES[kind].__name__
    clone = optimizers.get(config)
    assert type(clone) is type(opt)
    assert clone.get_config() == opt.get_config()
    assert clone.name == "mine"
    assert clone.learning_rate(15) == 0.05
    for key, value in variants[-1].items():
        assert getattr(clone, key) == value


def test_keras_defaults():
    adamw = optimizers.AdamW()
    assert adamw.weight_decay == 0.004 and adamw.learning_rate == 0.001
    assert optimizers.Adam().epsilon == 1e-7
    assert optimizers.SGD().learning_rate == 0.01
    rms = optimizers.RMSprop()
    assert (rms.rho, rms.momentum, rms.centered) == (0.9, 0.0, False)
    assert optimizers.Adagrad().initial_accumulator_value == 0.1
    assert optimizers.Adadelta().rho == 0.95
    ftrl = optimizers.Ftrl()
    assert (ftrl.learning_rate_power, ftrl.initial_accumulator_value, ftrl.beta) == \
        (-0.5, 0.1, 0.0)
    assert optimizers.LAMB is optimizers.Lamb


@pytest.mark.parametrize("name", ["sgd", "SGD", "adam", "AdamW", "adamax", "nadam", "rmsprop",
                                  "adagrad", "adadelta", "ftrl", "lamb", "LAMB"])
def test_get_by_name(name):
    opt = optimizers.get(name)
    assert type(opt).__name__.lower() == name.lower()


def test_custom_optimizer_round_trips():
    class Halve(optimizers.Optimizer):
        def update_step(self, param, weight, grad, state, lr):
            weight *= 0.5

    opt = Halve(learning_rate=0.3)
    clone = optimizers.get(optimizers.serialize(opt), custom_objects={"Halve": Halve})
    assert isinstance(clone, Halve) and clone.learning_rate == 0.3
    params = make_params()
    before = params[1].data.asnumpy()
    clone.apply([(params[1], nd.zeros((3,)))])
    np.testing.assert_allclose(params[1].data.asnumpy(), before * 0.5)


def test_learning_rate_setter_and_lr():
    opt = optimizers.SGD(0.1)
    opt.learning_rate = 0.05
    assert opt.lr == 0.05
    opt.lr = 0.02
    assert opt.learning_rate == 0.02
    opt.learning_rate = schedules.StepDecay(1.0, step_size=2, gamma=0.5)
    opt.iterations = 4
    assert opt.lr == 0.25
    with pytest.raises(ValueError, match="Received: learning_rate=-1"):
        opt.learning_rate = -1.0


# -- errors --------------------------------------------------------------------------------

@pytest.mark.parametrize("make, message", [
    (lambda: optimizers.SGD(momentum=1.5), r"SGD: 'momentum' must be a float in \[0, 1\]. "
                                           r"Received: momentum=1.5"),
    (lambda: optimizers.SGD(learning_rate=-0.1), "Received: learning_rate=-0.1"),
    (lambda: optimizers.SGD(learning_rate="fast"), "cannot interpret 'fast'"),
    (lambda: optimizers.Adam(beta_1=1.0), r"Adam: 'beta_1' must be a float in \[0, 1\)"),
    (lambda: optimizers.Adam(epsilon=-1e-7), "Received: epsilon=-1e-07"),
    (lambda: optimizers.AdamW(weight_decay=None), "AdamW: 'weight_decay' must be"),
    (lambda: optimizers.Nadam(beta_2=2), "Received: beta_2=2"),
    (lambda: optimizers.RMSprop(rho=-0.1), "RMSprop: 'rho'"),
    (lambda: optimizers.Adagrad(initial_accumulator_value=-1),
     "Received: initial_accumulator_value=-1"),
    (lambda: optimizers.Adadelta(rho=1.5), "Adadelta: 'rho'"),
    (lambda: optimizers.Ftrl(learning_rate_power=0.5), "Received: learning_rate_power=0.5"),
    (lambda: optimizers.Ftrl(l1_regularization_strength=-1.0),
     "l1_regularization_strength"),
    (lambda: optimizers.Lamb(beta_2="x"), "Lamb: 'beta_2'"),
    (lambda: optimizers.Adam(clipnorm=1.0, clipvalue=1.0),
     "only one of 'clipnorm', 'clipvalue' and 'global_clipnorm'"),
    (lambda: optimizers.Adam(clipnorm=1.0, global_clipnorm=1.0), "only one of"),
    (lambda: optimizers.Adam(clipnorm=0.0), "Received: clipnorm=0.0"),
    (lambda: optimizers.Adam(clipvalue=-1), "Received: clipvalue=-1"),
    (lambda: optimizers.Adam(weight_decay=-0.1), "Received: weight_decay=-0.1"),
    (lambda: optimizers.Adam(gradient_accumulation_steps=0),
     "Received: gradient_accumulation_steps=0"),
    (lambda: optimizers.Adam(gradient_accumulation_steps=2.5),
     "gradient_accumulation_steps"),
    (lambda: optimizers.get("adamm"), "unknown optimizer 'adamm' .did you mean 'adam'"),
    (lambda: optimizers.get({"class_name": "Nope", "config": {}}), "unknown optimizer"),
    (lambda: optimizers.get({"config": {}}), "'class_name'"),
])
def test_bad_arguments(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_unknown_and_legacy_keyword_arguments():
    with pytest.raises(TypeError, match="Adam: unknown argument 'lr'; use learning_rate="):
        optimizers.Adam(lr=0.1)
    with pytest.raises(TypeError, match="unknown argument 'wd'; use weight_decay="):
        optimizers.SGD(wd=1e-4)
    with pytest.raises(TypeError, match="unknown argument 'nesterv' .did you mean 'nesterov'"):
        optimizers.SGD(nesterv=True)
    with pytest.raises(TypeError, match="cannot interpret 3 as an optimizer"):
        optimizers.get(3)


def test_unsaveable_schedule_callable():
    opt = optimizers.SGD(learning_rate=lambda step: 0.1 / (1 + step))
    opt.iterations = 1
    assert opt.lr == pytest.approx(0.05)
    with pytest.raises(TypeError, match="only LearningRateSchedule subclasses"):
        optimizers.serialize(opt)


def test_ftrl_zero_learning_rate_leaves_weights():
    params = make_params()
    before = [p.data.asnumpy() for p in params]
    opt = optimizers.Ftrl(learning_rate=schedules.PiecewiseConstantDecay([0], [0.0, 0.1]))
    opt.apply([(p, nd.ones(p.shape)) for p in params])
    for p, w in zip(params, before):
        np.testing.assert_array_equal(p.data.asnumpy(), w)
    assert opt.iterations == 1


# -- training a model ----------------------------------------------------------------------

FIT_ARGS = {"sgd": {"learning_rate": 0.05, "momentum": 0.5}, "adam": {"learning_rate": 0.02},
            "adamw": {"learning_rate": 0.02}, "adamax": {"learning_rate": 0.05},
            "nadam": {"learning_rate": 0.02}, "rmsprop": {"learning_rate": 0.01},
            "adagrad": {"learning_rate": 0.2},
            "adadelta": {"learning_rate": 1.0, "epsilon": 1e-3},  # the paper's lr; faster start
            "ftrl": {"learning_rate": 0.5}, "lamb": {"learning_rate": 0.02}}


@pytest.mark.parametrize("kind", sorted(CLASSES))
def test_fit_lowers_the_loss(kind):
    deepkit.set_seed(3)
    rng = np.random.RandomState(0)
    x = rng.randn(128, 5).astype(np.float32)
    y = (np.tanh(x @ rng.randn(5, 2)) + 0.1 * rng.randn(128, 2)).astype(np.float32)
    inp = deepkit.Input(shape=(5,))
    hidden = layers.Dense(8, activation="tanh")(inp)
    model = deepkit.Model(inp, layers.Dense(2)(hidden))
    opt = CLASSES[kind](clipnorm=5.0, **FIT_ARGS[kind])
    model.compile(optimizer=opt, loss="mse")
    start = model.evaluate(x, y, batch_size=64, verbose=0)
    model.fit(x, y, batch_size=16, epochs=6, verbose=0)
    end = model.evaluate(x, y, batch_size=64, verbose=0)
    start = start if np.isscalar(start) else start[0]
    end = end if np.isscalar(end) else end[0]
    assert math.isfinite(end) and end < 0.5 * start, (start, end)
    assert opt.iterations == 6 * 8


@pytest.mark.parametrize("kind", ["nadam", "ftrl"])
def test_model_save_and_load_resume_training_exactly(kind, tmp_path):
    """The optimizer state travels through model.save/load_model (HDF5)."""
    rng = np.random.RandomState(1)
    x = rng.randn(40, 3).astype(np.float32)
    y = rng.randn(40, 1).astype(np.float32)

    def build():
        deepkit.set_seed(5)
        inp = deepkit.Input(shape=(3,))
        model = deepkit.Model(inp, layers.Dense(1, name="out")(layers.Dense(4, name="h")(inp)))
        model.compile(optimizer=CLASSES[kind](gradient_accumulation_steps=3,
                                              **FIT_ARGS[kind]), loss="mse")
        return model

    whole = build()
    whole.fit(x, y, batch_size=8, epochs=4, shuffle=False, verbose=0)
    part = build()
    part.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert part.optimizer._micro_step % 3  # saved in the middle of an accumulation
    part.save(str(tmp_path / "m.h5"))
    resumed = deepkit.load_model(str(tmp_path / "m.h5"))
    assert type(resumed.optimizer) is CLASSES[kind]
    assert resumed.optimizer.iterations == part.optimizer.iterations
    resumed.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
