"""Optimizers: update rules pushed to the engine as fused ops where one exists.

The base class does what every rule shares, once: gradient accumulation,
clipping (by value, by norm, by global norm), decoupled weight decay, the
learning-rate schedule, per-parameter ``lr_mult``/``wd_mult``, and state
saving. A subclass only writes ``update_step``. Nothing here waits for the
engine: global-norm clipping, for example, is computed as an NDArray and
applied lazily.
"""
import math



from deepkit_engine import nd

from . import schedules

__all__ = ["Optimizer", "SGD", "Adam", "get", "serialize"]


class Optimizer:
    """Base class of every optimizer.

    Args:
        learning_rate: A float or a schedule (``callable(step) -> lr``).
        clipnorm: Clip each gradient to this L2 norm.
        clipvalue: Clip each gradient element to [-clipvalue, clipvalue].
        global_clipnorm: Clip all gradients together to this global L2 norm.
        weight_decay: Decoupled weight decay: ``w -= lr * weight_decay * w``
            each step (times the parameter's ``wd_mult``).
        gradient_accumulation_steps: Apply an update every N steps with the
            average of the N gradients.
    """

    def __init__(self, learning_rate=0.01, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 weight_decay=None, gradient_accumulation_steps=None, name=None):
        if clipnorm is not None and global_clipnorm is not None:
            raise ValueError(f"{type(self).__name__}: give clipnorm or global_clipnorm, not both")
        if gradient_accumulation_steps is not None and int(gradient_accumulation_steps) < 1:
            raise ValueError(f"{type(self).__name__}: gradient_accumulation_steps must be >= 1. "
                             f"Received: {gradient_accumulation_steps!r}")
        self.learning_rate = schedules.get(learning_rate)
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.weight_decay = weight_decay
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.name = name or type(self).__name__.lower()
        self.iterations = 0
        self._states = {}
        self._accumulators = {}
        self._micro_step = 0

    # -- learning rate -----------------------------------------------------------------
    @property
    def lr(self):
        """The learning rate of the current step (after the schedule)."""
        lr = self.learning_rate
        return float(lr(self.iterations)) if callable(lr) else float(lr)

    @lr.setter
    def lr(self, value):
        self.learning_rate = float(value)

    # -- state -----------------------------------------------------------------------
    def create_state(self, weight):
        """The per-parameter state (a list of NDArrays); none by default."""
        return []

    def _state(self, param):
        state = self._states.get(param.name)
        if state is None:
            state = self._states[param.name] = self.create_state(param.data)
        return state

    def get_state(self):
        """``{'iterations', 'states': {param name: [numpy arrays]}}`` for saving."""
        return {"iterations": self.iterations, "micro_step": self._micro_step,
                "states": {k: [s.asnumpy() for s in v] for k, v in self._states.items()},
                "accumulators": {k: v.asnumpy() for k, v in self._accumulators.items()}}

    def set_state(self, state, params):
        """Restore what :meth:`get_state` returned, for the given parameters."""
        by_name = {p.name: p for p in params}
        self.iterations = int(state["iterations"])
        self._micro_step = int(state.get("micro_step", 0))
        self._states = {}
        for name, arrays in state["states"].items():
            if name not in by_name:
                continue
            ctx = by_name[name].data.ctx
            self._states[name] = [nd.array(a, ctx=ctx, dtype=a.dtype) for a in arrays]
        self._accumulators = {
            name: nd.array(a, ctx=by_name[name].data.ctx, dtype=a.dtype)
            for name, a in state.get("accumulators", {}).items() if name in by_name}

    # -- applying ----------------------------------------------------------------------
    def apply(self, params_and_grads):
        """One training step for ``[(Parameter, grad NDArray), ...]``."""
        steps = self.gradient_accumulation_steps
        if steps and steps > 1:
            for p, g in params_and_grads:
                acc = self._accumulators.get(p.name)
                if acc is None:
                    self._accumulators[p.name] = g.copy()
                else:
                    acc += g
            self._micro_step += 1
            if self._micro_step % steps:
                return
            params_and_grads = [(p, self._accumulators.pop(p.name) * (1.0 / steps))
                                for p, _ in params_and_grads]
        grads = self._clip([g for _, g in params_and_grads])
        lr = self.lr
        for (param, _), grad in zip(params_and_grads, grads):
            weight = param.data
            p_lr = lr * param.lr_mult
            if self.weight_decay:
                decay = 1.0 - p_lr * self.weight_decay * param.wd_mult
                if decay != 1.0:
                    weight *= decay
            self.update_step(param, weight, grad, self._state(param), p_lr)
            if param.constraint is not None:
                param.constraint(weight).copyto(weight)
        self.iterations += 1

    def _clip(self, grads):
        if self.clipvalue is not None:
            grads = [nd.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        if self.clipnorm is not None:
            out = []
            for g in grads:
                norm = nd.sqrt(nd.sum(nd.square(g)))
                out.append(g * (self.clipnorm / nd.maximum(norm, self.clipnorm)))
            grads = out
        if self.global_clipnorm is not None and grads:
            total = nd.add_n(*[nd.sum(nd.square(g)) for g in grads]) if len(grads) > 1 \
                else nd.sum(nd.square(grads[0]))
            scale = self.global_clipnorm / nd.maximum(nd.sqrt(total), self.global_clipnorm)
            grads = [nd.broadcast_mul(g, scale.reshape((1,) * g.ndim)) if g.ndim else g * scale
                     for g in grads]
        return grads

    def update_step(self, param, weight, grad, state, lr):
        """Update ``weight`` in place from ``grad``; subclasses implement it."""
        raise NotImplementedError

    # -- configuration -----------------------------------------------------------------
    def get_config(self):
        lr = self.learning_rate
        return {"name": self.name,
                "learning_rate": schedules.serialize(lr) if callable(lr) else float(lr),
                "clipnorm": self.clipnorm, "clipvalue": self.clipvalue,
                "global_clipnorm": self.global_clipnorm, "weight_decay": self.weight_decay,
                "gradient_accumulation_steps": self.gradient_accumulation_steps}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.get(config["learning_rate"])
        return cls(**config)


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum.

    ``velocity = momentum * velocity - lr * g``; ``w += velocity`` (or, with
    Nesterov, ``w += momentum * velocity - lr * g``).
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        if not 0 <= momentum <= 1:
            raise ValueError(f"SGD: momentum must be in [0, 1]. Received: momentum={momentum!r}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def create_state(self, weight):
        if not self.momentum:
            return []
        return [nd.zeros(weight.shape, ctx=weight.ctx, dtype=weight.dtype)]

    def update_step(self, param, weight, grad, state, lr):
        if not self.momentum:
            nd.sgd_update(weight, grad, lr=lr, out=weight)
        elif not self.nesterov:
            nd.sgd_mom_update(weight, grad, state[0], lr=lr, momentum=self.momentum, out=weight)
        else:
            velocity = state[0]
            velocity *= self.momentum
            velocity -= lr * grad
            weight += self.momentum * velocity - lr * grad

    def get_config(self):
        config = super().get_config()
        config.update(momentum=self.momentum, nesterov=self.nesterov)
        return config


class Adam(Optimizer):
    """Adam, with bias correction folded into the step size (as Keras does)."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.amsgrad = bool(amsgrad)

    def create_state(self, weight):
        n = 3 if self.amsgrad else 2
        return [nd.zeros(weight.shape, ctx=weight.ctx, dtype=weight.dtype) for _ in range(n)]

    def update_step(self, param, weight, grad, state, lr):
        t = self.iterations + 1
        alpha = lr * math.sqrt(1 - self.beta_2 ** t) / (1 - self.beta_1 ** t)
        if not self.amsgrad:
            nd.adam_update(weight, grad, state[0], state[1], lr=alpha, beta1=self.beta_1,
                           beta2=self.beta_2, epsilon=self.epsilon, out=weight)
            return
        m, v, vmax = state
        m *= self.beta_1
        m += (1 - self.beta_1) * grad
        v *= self.beta_2
        v += (1 - self.beta_2) * nd.square(grad)
        nd.maximum(vmax, v, out=vmax)
        weight -= alpha * m / (nd.sqrt(vmax) + self.epsilon)

    def get_config(self):
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
                      amsgrad=self.amsgrad)
        return config


_BY_NAME = {"sgd": SGD, "adam": Adam}


def get(identifier):
    """An optimizer from a name (default settings), a config dict, or itself."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        cls = _BY_NAME[identifier["class_name"].lower()]
        return cls.from_config(identifier.get("config", {}))
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is None:
            from deepkit_engine.base import did_you_mean  # noqa: PLC0415
            raise ValueError(f"unknown optimizer {identifier!r}{did_you_mean(identifier, _BY_NAME)};"
                             f" known: {', '.join(sorted(_BY_NAME))}")
        return cls()
    raise TypeError(f"cannot interpret {identifier!r} as an optimizer")


def serialize(optimizer):
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


