"""Optimizers: Keras 3 update rules, pushed to the engine without waiting.

The base class does what every rule shares, once: gradient accumulation,
clipping (by value, by norm, by global norm), decoupled weight decay, the
learning-rate schedule, per-parameter ``lr_mult``/``wd_mult``, constraints
and state saving. A subclass writes ``create_state`` and ``update_step``.

Nothing here waits for the engine. Every update is a chain of NDArray
operations (the fused ``sgd_update``, ``sgd_mom_update`` and ``adam_update``
where they fit), so it runs while Python prepares the next batch; values that
depend on the step count (bias corrections, the schedule) are Python floats
computed from :attr:`Optimizer.iterations`, and values that depend on the
data (global norms, LAMB's trust ratio) stay NDArrays.

Semantics and defaults are Keras 3's (``keras.optimizers``), with these
deliberate differences:

- ``iterations`` counts applied updates; with ``gradient_accumulation_steps=N``
  it advances once per N calls of :meth:`Optimizer.apply`, and the schedule
  and bias corrections use it (Keras 3 evaluates the schedule on the raw call
  count).
- ``learning_rate`` may be an int; ``gradient_accumulation_steps=1`` is
  accepted and means no accumulation.
- Each parameter's step uses ``learning_rate * lr_mult``, and its decoupled
  weight decay ``learning_rate * lr_mult * weight_decay * wd_mult`` (MXNet's
  per-parameter multipliers; Keras has none).
"""
import math
import numbers
import re

from deepkit_engine import nd
from deepkit_engine.base import did_you_mean
from deepkit_engine.ops import get_op

from . import schedules

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "Adamax", "Nadam", "RMSprop", "Adagrad",
           "Adadelta", "Ftrl", "Lamb", "LAMB", "get", "serialize", "deserialize"]

# MXNet / Keras 2 argument names that users bring along, with what to use instead.
_LEGACY_HINTS = {
    "lr": "use learning_rate=",
    "wd": "use weight_decay= (decoupled, as Keras 3; MXNet's wd is coupled L2: use a "
          "kernel_regularizer for that)",
    "decay": "use a learning-rate schedule, e.g. learning_rate=schedules.InverseTimeDecay(...)",
    "clip_gradient": "use clipvalue=",
    "rescale_grad": "the loss is already averaged over the batch; scale the loss instead",
}


def _fail(owner, name, value, expected):
    raise ValueError(f"{owner}: '{name}' must be {expected}. Received: {name}={value!r}")


def _check_number(owner, name, value, low=None, high=None, low_open=False, high_open=False,
                  allow_none=False):
    """Validate a float hyperparameter; returns it as a float (or None when allowed)."""
    if value is None and allow_none:
        return None
    interval = ""
    if low is not None or high is not None:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        interval = f" in {'(' if low_open or low is None else '['}{lo}, {hi}" \
                   f"{')' if high_open or high is None else ']'}"
    expected = f"a float{interval}" + (" or None" if allow_none else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(owner, name, value, expected)
    value = float(value)
    if (not math.isfinite(value)
            or (low is not None and (value < low or (low_open and value == low)))
            or (high is not None and (value > high or (high_open and value == high)))):
        _fail(owner, name, value, expected)
    return value


def _broadcast_scale(g, scale):
    """``g * scale`` for a one-element NDArray ``scale`` (lazy, any rank of ``g``)."""
    if g.ndim == 0:
        return (g.reshape((1,)) * scale).reshape(())
    return g * scale


class Optimizer:
    """Base class of every optimizer.

    Args:
        learning_rate: A float, or a schedule (``callable(step) -> lr``, e.g. a
            :class:`~deepkit.schedules.LearningRateSchedule`) evaluated at
            :attr:`iterations` (0 for the first update).
        weight_decay: Decoupled weight decay (Loshchilov & Hutter): before each
            update ``w -= lr * weight_decay * w`` (times the parameter's
            ``lr_mult`` and ``wd_mult``). None or 0: off. See
            :meth:`exclude_from_weight_decay`.
        clipnorm: Scale each gradient down so that its L2 norm is at most this.
        clipvalue: Clip each gradient element to ``[-clipvalue, clipvalue]``.
        global_clipnorm: Scale all gradients together so that their joint L2
            norm is at most this. Only one of the three clipping options may
            be set (Keras 3).
        gradient_accumulation_steps: Apply one update every N calls of
            :meth:`apply`, with the mean of the N gradients (a batch N times
            larger without the memory).
        name: A name for the optimizer (default: the class name, lowercase).
    """

    def __init__(self, learning_rate=0.01, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, gradient_accumulation_steps=None, name=None, **kwargs):
        owner = type(self).__name__
        if kwargs:
            key = next(iter(kwargs))
            hint = _LEGACY_HINTS.get(key)
            hint = f"; {hint}" if hint else did_you_mean(key, self._known_arguments())
            raise TypeError(f"{owner}: unknown argument '{key}'{hint}")
        self.weight_decay = _check_number(owner, "weight_decay", weight_decay, low=0.0,
                                          allow_none=True)
        self.clipnorm = _check_number(owner, "clipnorm", clipnorm, low=0.0, low_open=True,
                                      allow_none=True)
        self.clipvalue = _check_number(owner, "clipvalue", clipvalue, low=0.0, low_open=True,
                                       allow_none=True)
        self.global_clipnorm = _check_number(owner, "global_clipnorm", global_clipnorm, low=0.0,
                                             low_open=True, allow_none=True)
        if sum(v is not None for v in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(f"{owner}: only one of 'clipnorm', 'clipvalue' and "
                             f"'global_clipnorm' can be set. Received: clipnorm={clipnorm}, "
                             f"clipvalue={clipvalue}, global_clipnorm={global_clipnorm}")
        if gradient_accumulation_steps is not None:
            if isinstance(gradient_accumulation_steps, bool) or \
                    not isinstance(gradient_accumulation_steps, numbers.Integral) or \
                    gradient_accumulation_steps < 1:
                _fail(owner, "gradient_accumulation_steps", gradient_accumulation_steps,
                      "a positive int or None")
            gradient_accumulation_steps = int(gradient_accumulation_steps)
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.learning_rate = learning_rate
        self.name = name or owner.lower()
        #: Number of updates applied so far (the schedule's step).
        self.iterations = 0
        self._states = {}
        self._accumulators = {}
        self._micro_step = 0
        self._exclude_names = set()
        self._exclude_pattern = None

    def _known_arguments(self):
        import inspect  # noqa: PLC0415
        names = set()
        for cls in type(self).__mro__:
            if "__init__" in cls.__dict__:
                names.update(inspect.signature(cls.__init__).parameters)
        return names - {"self", "kwargs"}

    # -- learning rate -----------------------------------------------------------------
    @property
    def learning_rate(self):
        """The learning rate as given: a float or a schedule."""
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        value = schedules.get(value)
        if not callable(value):
            value = _check_number(type(self).__name__, "learning_rate", value, low=0.0)
        self._learning_rate = value

    @property
    def lr(self):
        """The learning rate of the current step (the schedule evaluated at ``iterations``)."""
        lr = self._learning_rate
        return float(lr(self.iterations)) if callable(lr) else float(lr)

    @lr.setter
    def lr(self, value):
        self.learning_rate = value

    # -- weight decay ------------------------------------------------------------------
    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Exempt parameters from the decoupled weight decay (Keras 3).

        Args:
            var_list: Parameters (or their names) to exempt.
            var_names: Substrings (regular expressions); a parameter whose
                name contains one is exempt, e.g. ``var_names=["bias"]``.
        """
        self._exclude_names = {getattr(v, "name", v) for v in (var_list or [])}
        self._exclude_pattern = re.compile("|".join(set(var_names))) if var_names else None

    def _use_weight_decay(self, param):
        if param.name in self._exclude_names:
            return False
        return not (self._exclude_pattern is not None
                    and self._exclude_pattern.search(param.name))

    # -- state -------------------------------------------------------------------------
    def create_state(self, weight):
        """The per-parameter state of ``weight``: a list of NDArrays (none by default)."""
        return []

    def _state(self, param):
        state = self._states.get(param.name)
        if state is None:
            state = self._states[param.name] = self.create_state(param.data)
        return state

    def get_state(self):
        """Everything needed to resume exactly, as numpy arrays (this waits for the engine).

        Returns:
            ``{'iterations', 'micro_step', 'states': {param name: [arrays]},
            'accumulators': {param name: array}}``.
        """
        return {"iterations": self.iterations, "micro_step": self._micro_step,
                "states": {k: [s.asnumpy() for s in v] for k, v in self._states.items()},
                "accumulators": {k: v.asnumpy() for k, v in self._accumulators.items()}}

    def set_state(self, state, params):
        """Restore what :meth:`get_state` returned, for the given parameters.

        Entries for parameters not in ``params`` are ignored (a changed model);
        an entry whose arrays do not fit its parameter raises ``ValueError``.
        """
        by_name = {p.name: p for p in params}
        owner = type(self).__name__
        states = {}
        for name, arrays in state["states"].items():
            param = by_name.get(name)
            if param is None:
                continue
            if param.data is None:
                raise ValueError(f"{owner}.set_state: parameter '{name}' has no value yet; "
                                 "initialize the model before restoring the optimizer")
            expected = [(tuple(s.shape)) for s in self.create_state(param.data)]
            got = [tuple(a.shape) for a in arrays]
            if expected != got:
                raise ValueError(f"{owner}.set_state: the saved state of '{name}' has arrays of "
                                 f"shapes {got}, but {owner} keeps {expected} for a parameter "
                                 f"of shape {param.shape} (state of another optimizer or "
                                 "model?)")
            ctx = param.data.ctx
            states[name] = [nd.array(a, ctx=ctx, dtype=a.dtype) for a in arrays]
        accumulators = {}
        for name, a in state.get("accumulators", {}).items():
            param = by_name.get(name)
            if param is None:
                continue
            if tuple(a.shape) != param.shape:
                raise ValueError(f"{owner}.set_state: the saved gradient accumulator of "
                                 f"'{name}' has shape {tuple(a.shape)}, expected {param.shape}")
            accumulators[name] = nd.array(a, ctx=param.data.ctx, dtype=a.dtype)
        self.iterations = int(state["iterations"])
        self._micro_step = int(state.get("micro_step", 0))
        self._states = states
        self._accumulators = accumulators

    # -- applying ----------------------------------------------------------------------
    def apply(self, params_and_grads):
        """One training step for ``[(Parameter, gradient NDArray), ...]``.

        Pairs whose gradient is None, and frozen parameters, are skipped. The
        work is pushed to the engine; this returns without waiting.
        """
        pairs = [(p, g) for p, g in params_and_grads if g is not None and p.trainable]
        steps = self.gradient_accumulation_steps
        if steps and steps > 1:
            for p, g in pairs:
                acc = self._accumulators.get(p.name)
                if acc is None:
                    self._accumulators[p.name] = g.copy()
                else:
                    acc += g
            self._micro_step += 1
            if self._micro_step % steps:
                return
            pairs = [(p, self._accumulators.pop(p.name) / float(steps)) for p, _ in pairs
                     if p.name in self._accumulators]
            self._accumulators.clear()
        grads = self._clip([g for _, g in pairs])
        lr = self.lr
        self._prepare_step()
        steps = []
        for (param, _), grad in zip(pairs, grads):
            weight = param.data
            p_lr = lr * param.lr_mult
            if self.weight_decay and self._use_weight_decay(param):
                decay = p_lr * self.weight_decay * param.wd_mult
                if decay:
                    weight *= 1.0 - decay
            steps.append((param, weight, grad, self._state(param), p_lr))
        self.update_steps(steps)
        for param, weight, _, _, _ in steps:
            if param.constraint is not None:
                param.constraint(weight).copyto(weight)
        self.iterations += 1

    def update_steps(self, steps):
        """Update every parameter of one step: ``[(param, weight, grad, state, lr)]``.

        The default calls :meth:`update_step` for each; an optimizer may
        override it to update all parameters in one engine push.
        """
        for param, weight, grad, state, lr in steps:
            self.update_step(param, weight, grad, state, lr)

    def apply_gradients(self, grads_and_vars):
        """Keras's spelling: ``[(gradient, Parameter), ...]``."""
        self.apply([(p, g) for g, p in grads_and_vars])

    def _clip(self, grads):
        if self.clipnorm is not None:
            out = []
            for g in grads:
                norm = nd.sqrt(nd.sum(nd.square(g)))
                out.append(_broadcast_scale(g, self.clipnorm / nd.maximum(norm, self.clipnorm)))
            return out
        if self.global_clipnorm is not None and grads:
            squares = [nd.sum(nd.square(g)) for g in grads]
            total = nd.add_n(*squares) if len(squares) > 1 else squares[0]
            scale = self.global_clipnorm / nd.maximum(nd.sqrt(total), self.global_clipnorm)
            return [_broadcast_scale(g, scale) for g in grads]
        if self.clipvalue is not None:
            return [nd.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    def _prepare_step(self):
        """Hook run once per update before the parameters (step-wide scalars)."""

    def update_step(self, param, weight, grad, state, lr):
        """Update ``weight`` (an NDArray) in place from ``grad``; subclasses implement it.

        Args:
            param: The :class:`~deepkit.layers.Parameter` (for its name, tags).
            weight: Its value, to update in place.
            grad: The gradient, already accumulated and clipped.
            state: The list :meth:`create_state` made for it, to update in place.
            lr: This step's learning rate for this parameter (``lr_mult`` applied).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement update_step()")

    # -- configuration -----------------------------------------------------------------
    def get_config(self):
        """Constructor arguments as plain values (JSON-serialisable)."""
        lr = self._learning_rate
        return {"name": self.name,
                "learning_rate": schedules.serialize(lr) if callable(lr) else float(lr),
                "weight_decay": self.weight_decay, "clipnorm": self.clipnorm,
                "clipvalue": self.clipvalue, "global_clipnorm": self.global_clipnorm,
                "gradient_accumulation_steps": self.gradient_accumulation_steps}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} '{self.name}' learning_rate={self._learning_rate!r}>"


def _zeros(weight, n=1):
    return [nd.zeros(weight.shape, ctx=weight.ctx, dtype=weight.dtype) for _ in range(n)]


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    Without momentum ``w -= lr * g``. With momentum ``v = momentum * v - lr * g``,
    then ``w += v``, or with Nesterov ``w += momentum * v - lr * g`` (Keras 3).
    The plain and momentum cases run as the engine's fused ``sgd_update`` and
    ``sgd_mom_update``.

    Args:
        learning_rate: Float or schedule. Defaults to 0.01.
        momentum: Float in [0, 1]; 0 keeps no velocity state.
        nesterov: Whether to apply Nesterov momentum.
        **kwargs: The :class:`Optimizer` arguments (clipping, weight decay, ...).
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.momentum = _check_number("SGD", "momentum", momentum, 0.0, 1.0)
        self.nesterov = bool(nesterov)
        self._prepared = nd.LastPrepared()  # the last fused update's push

    def create_state(self, weight):
        return _zeros(weight) if self.momentum else []

    def update_steps(self, steps):
        """All parameters in one fused push (MXNet's ``multi_sgd_(mom_)update``) where possible.

        It is, unless a subclass changes :meth:`update_step`, Nesterov momentum
        is on, or the parameters live on different devices.
        """
        fusable = (len(steps) > 1 and not self.nesterov
                   and type(self).update_step is SGD.update_step
                   and len({w.ctx for _, w, _, _, _ in steps}) == 1
                   and len({w.dtype for _, w, _, _, _ in steps}) == 1)
        if not fusable:
            super().update_steps(steps)
            return
        inputs, weights = [], []
        for _, weight, grad, state, _ in steps:
            inputs += [weight, grad] + ([state[0]] if self.momentum else [])
            weights.append(weight)
        lrs = tuple(lr for *_, lr in steps)
        key = (lrs, self.momentum, tuple(map(id, inputs)))
        push = self._prepared.get(key)
        if push is None:  # checked once per learning rate and set of arrays: a step is the push
            params = {"lrs": lrs, "wds": (0.0,) * len(steps), "num_weights": len(steps)}
            if self.momentum:
                op = get_op("multi_sgd_mom_update")
                params["momentum"] = self.momentum
            else:
                op = get_op("multi_sgd_update")
            push = nd.prepare_invoke(op, inputs, op.parse_attrs(params), weights)
            self._prepared.keep(key, push, inputs)
        push()

    def update_step(self, param, weight, grad, state, lr):
        if not self.momentum:
            nd.sgd_update(weight, grad, lr=lr, out=weight)
        elif not self.nesterov:
            nd.sgd_mom_update(weight, grad, state[0], lr=lr, momentum=self.momentum, out=weight)
        else:
            velocity = state[0]
            step = grad * lr
            velocity *= self.momentum
            velocity -= step
            weight += velocity * self.momentum - step

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam (Kingma & Ba), with the bias correction folded into the step size.

    ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g^2``;
    ``w -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + epsilon)``; with
    ``amsgrad`` the running maximum of ``v`` replaces ``v`` in the denominator.
    Without amsgrad one fused ``adam_update`` per parameter.

    Args:
        learning_rate: Float or schedule. Defaults to 0.001.
        beta_1: Decay of the first-moment estimate, in [0, 1).
        beta_2: Decay of the second-moment estimate, in [0, 1).
        epsilon: Small constant for numerical stability (Keras's 1e-7, the
            "epsilon hat" of the paper).
        amsgrad: Use AMSGrad (Reddi et al., 2018).
        **kwargs: The :class:`Optimizer` arguments.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        owner = type(self).__name__
        self.beta_1 = _check_number(owner, "beta_1", beta_1, 0.0, 1.0, high_open=True)
        self.beta_2 = _check_number(owner, "beta_2", beta_2, 0.0, 1.0, high_open=True)
        self.epsilon = _check_number(owner, "epsilon", epsilon, low=0.0)
        self.amsgrad = bool(amsgrad)

    def create_state(self, weight):
        return _zeros(weight, 3 if self.amsgrad else 2)

    def update_step(self, param, weight, grad, state, lr):
        t = self.iterations + 1
        alpha = lr * math.sqrt(1 - self.beta_2 ** t) / (1 - self.beta_1 ** t)
        if not self.amsgrad:
            nd.adam_update(weight, grad, state[0], state[1], lr=alpha, beta1=self.beta_1,
                           beta2=self.beta_2, epsilon=self.epsilon, out=weight)
            return
        m, v, v_hat = state
        m += (grad - m) * (1 - self.beta_1)
        v += (nd.square(grad) - v) * (1 - self.beta_2)
        nd.maximum(v_hat, v, out=v_hat)
        weight -= m * alpha / (nd.sqrt(v_hat) + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), Keras 3's defaults.

    The same as ``Adam(weight_decay=...)``: before the Adam step
    ``w -= lr * weight_decay * w``.

    Args:
        learning_rate: Float or schedule. Defaults to 0.001.
        weight_decay: Float >= 0. Defaults to 0.004 (Keras 3).
        beta_1, beta_2, epsilon, amsgrad: As :class:`Adam`.
        **kwargs: The other :class:`Optimizer` arguments.
    """

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, **kwargs):
        if weight_decay is None:
            _fail("AdamW", "weight_decay", weight_decay, "a float >= 0")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad,
                         weight_decay=weight_decay, **kwargs)


class Adamax(Optimizer):
    """Adamax: Adam with the infinity norm (Kingma & Ba, section 7).

    ``m = b1 m + (1 - b1) g``; ``u = max(b2 u, |g|)``;
    ``w -= lr m / ((1 - b1^t) (u + epsilon))``.

    Args:
        learning_rate: Float or schedule. Defaults to 0.001.
        beta_1: Decay of the first moment, in [0, 1).
        beta_2: Decay of the weighted infinity norm, in [0, 1).
        epsilon: Small constant for numerical stability.
        **kwargs: The :class:`Optimizer` arguments.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = _check_number("Adamax", "beta_1", beta_1, 0.0, 1.0, high_open=True)
        self.beta_2 = _check_number("Adamax", "beta_2", beta_2, 0.0, 1.0, high_open=True)
        self.epsilon = _check_number("Adamax", "epsilon", epsilon, low=0.0)

    def create_state(self, weight):
        return _zeros(weight, 2)

    def update_step(self, param, weight, grad, state, lr):
        m, u = state
        t = self.iterations + 1
        m += (grad - m) * (1 - self.beta_1)
        nd.maximum(u * self.beta_2, nd.abs(grad), out=u)
        weight -= m * lr / ((u + self.epsilon) * (1 - self.beta_1 ** t))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class Nadam(Optimizer):
    """Adam with Nesterov momentum (Dozat, 2016), with Keras's momentum schedule.

    ``u_t = b1 (1 - 0.5 * 0.96^t)`` and ``U_t = u_1 ... u_t``; with the moments
    ``m``, ``v`` updated as in Adam:
    ``m_hat = u_{t+1} m / (1 - U_{t+1}) + (1 - u_t) g / (1 - U_t)``,
    ``v_hat = v / (1 - b2^t)``, ``w -= lr m_hat / (sqrt(v_hat) + epsilon)``.
    ``U_t`` is a Python float derived from :attr:`iterations`, so saving the
    per-parameter moments and the step count is enough to resume.

    Args:
        learning_rate: Float or schedule. Defaults to 0.001.
        beta_1, beta_2: Moment decays, in [0, 1).
        epsilon: Small constant for numerical stability.
        **kwargs: The :class:`Optimizer` arguments.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = _check_number("Nadam", "beta_1", beta_1, 0.0, 1.0, high_open=True)
        self.beta_2 = _check_number("Nadam", "beta_2", beta_2, 0.0, 1.0, high_open=True)
        self.epsilon = _check_number("Nadam", "epsilon", epsilon, low=0.0)
        self._u_cache = (0, 1.0)  # (t, u_1 * ... * u_t)

    def _u(self, t):
        return self.beta_1 * (1.0 - 0.5 * 0.96 ** t)

    def _u_product(self, t):
        done, product = self._u_cache
        if done > t:
            done, product = 0, 1.0
        for k in range(done + 1, t + 1):
            product *= self._u(k)
        self._u_cache = (t, product)
        return product

    def _prepare_step(self):
        t = self.iterations + 1
        u_t, u_next = self._u(t), self._u(t + 1)
        product = self._u_product(t)
        self._coefficients = (u_next / (1.0 - product * u_next), (1.0 - u_t) / (1.0 - product),
                              1.0 - self.beta_2 ** t)

    def create_state(self, weight):
        return _zeros(weight, 2)

    def update_step(self, param, weight, grad, state, lr):
        m, v = state
        c_m, c_g, bias_2 = self._coefficients
        m += (grad - m) * (1 - self.beta_1)
        v += (nd.square(grad) - v) * (1 - self.beta_2)
        m_hat = m * c_m + grad * c_g
        weight -= m_hat * lr / (nd.sqrt(v / bias_2) + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class RMSprop(Optimizer):
    """RMSprop (Hinton), as Keras 3: optional momentum and centering.

    ``v = rho v + (1 - rho) g^2``; centered: ``a = rho a + (1 - rho) g`` and the
    denominator is ``sqrt(v - a^2 + epsilon)``, else ``sqrt(v + epsilon)``;
    ``inc = lr g / denominator``; with momentum ``mom = momentum mom + inc`` and
    ``w -= mom``, else ``w -= inc``.

    Args:
        learning_rate: Float or schedule. Defaults to 0.001.
        rho: Decay of the squared-gradient average, in [0, 1].
        momentum: Float in [0, 1]; 0 keeps no momentum state.
        epsilon: Small constant for numerical stability.
        centered: Normalise by the estimated variance of the gradient rather
            than its second moment (more stable, one more state array).
        **kwargs: The :class:`Optimizer` arguments.
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho = _check_number("RMSprop", "rho", rho, 0.0, 1.0)
        self.momentum = _check_number("RMSprop", "momentum", momentum, 0.0, 1.0)
        self.epsilon = _check_number("RMSprop", "epsilon", epsilon, low=0.0)
        self.centered = bool(centered)

    def create_state(self, weight):
        return _zeros(weight, 1 + (self.momentum > 0) + self.centered)

    def update_step(self, param, weight, grad, state, lr):
        velocity = state[0]
        velocity *= self.rho
        velocity += nd.square(grad) * (1 - self.rho)
        if self.centered:
            average = state[-1]
            average *= self.rho
            average += grad * (1 - self.rho)
            denominator = velocity - nd.square(average) + self.epsilon
        else:
            denominator = velocity + self.epsilon
        increment = grad * lr / nd.sqrt(denominator)
        if self.momentum > 0:
            mom = state[1]
            mom *= self.momentum
            mom += increment
            weight -= mom
        else:
            weight -= increment

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.): per-element steps shrinking with the summed squared gradients.

    ``acc += g^2``; ``w -= lr g / sqrt(acc + epsilon)``.

    Args:
        learning_rate: Float or schedule. Defaults to 0.001.
        initial_accumulator_value: Starting value of ``acc``, >= 0.
        epsilon: Small constant for numerical stability.
        **kwargs: The :class:`Optimizer` arguments.
    """

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value = _check_number(
            "Adagrad", "initial_accumulator_value", initial_accumulator_value, low=0.0)
        self.epsilon = _check_number("Adagrad", "epsilon", epsilon, low=0.0)

    def create_state(self, weight):
        return [nd.full(weight.shape, self.initial_accumulator_value, ctx=weight.ctx,
                        dtype=weight.dtype)]

    def update_step(self, param, weight, grad, state, lr):
        acc = state[0]
        acc += nd.square(grad)
        weight -= grad * lr / nd.sqrt(acc + self.epsilon)

    def get_config(self):
        return {**super().get_config(),
                "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012), with Keras 3's learning rate (the paper's is 1.0).

    ``Eg = rho Eg + (1 - rho) g^2``;
    ``delta = -sqrt(Ed + epsilon) / sqrt(Eg + epsilon) * g``;
    ``Ed = rho Ed + (1 - rho) delta^2``; ``w += lr delta``.

    Args:
        learning_rate: Float or schedule. Defaults to 0.001 (Keras 3); use 1.0
            for the original algorithm.
        rho: Decay of the running averages, in [0, 1].
        epsilon: Small constant for numerical stability.
        **kwargs: The :class:`Optimizer` arguments.
    """

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho = _check_number("Adadelta", "rho", rho, 0.0, 1.0)
        self.epsilon = _check_number("Adadelta", "epsilon", epsilon, low=0.0)

    def create_state(self, weight):
        return _zeros(weight, 2)

    def update_step(self, param, weight, grad, state, lr):
        acc_grad, acc_delta = state
        acc_grad *= self.rho
        acc_grad += nd.square(grad) * (1 - self.rho)
        delta = -(nd.sqrt(acc_delta + self.epsilon) * grad / nd.sqrt(acc_grad + self.epsilon))
        acc_delta *= self.rho
        acc_delta += nd.square(delta) * (1 - self.rho)
        weight += delta * lr

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


class Ftrl(Optimizer):
    """FTRL-Proximal (McMahan et al., 2013), as Keras 3.

    With ``p(x) = x ** -learning_rate_power``:
    ``n' = n + g^2``; ``z += g + 2 l2_shrinkage w - (p(n') - p(n)) / lr * w``;
    ``w = (clip(z, -l1, l1) - z) / (p(n') / lr + 2 (l2 + beta / (2 lr)))``; ``n = n'``.
    A step whose learning rate is 0 (a schedule at 0, ``lr_mult=0``) leaves
    the parameter and its state unchanged (Keras would divide by zero).

    Args:
        learning_rate: Float or schedule. Defaults to 0.001.
        learning_rate_power: Float <= 0; -0.5 is the usual ``1/sqrt`` decay,
            0 a fixed rate.
        initial_accumulator_value: Starting value of ``n``, >= 0.
        l1_regularization_strength: L1 strength >= 0 (makes weights exactly 0).
        l2_regularization_strength: L2 strength >= 0 (stabilisation).
        l2_shrinkage_regularization_strength: L2 shrinkage >= 0 (a magnitude
            penalty on the weight itself).
        beta: Float >= 0, the paper's beta (adds ``beta / (2 lr)`` to L2).
        **kwargs: The :class:`Optimizer` arguments.
    """

    def __init__(self, learning_rate=0.001, learning_rate_power=-0.5,
                 initial_accumulator_value=0.1, l1_regularization_strength=0.0,
                 l2_regularization_strength=0.0, l2_shrinkage_regularization_strength=0.0,
                 beta=0.0, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.learning_rate_power = _check_number("Ftrl", "learning_rate_power",
                                                 learning_rate_power, high=0.0)
        self.initial_accumulator_value = _check_number(
            "Ftrl", "initial_accumulator_value", initial_accumulator_value, low=0.0)
        self.l1_regularization_strength = _check_number(
            "Ftrl", "l1_regularization_strength", l1_regularization_strength, low=0.0)
        self.l2_regularization_strength = _check_number(
            "Ftrl", "l2_regularization_strength", l2_regularization_strength, low=0.0)
        self.l2_shrinkage_regularization_strength = _check_number(
            "Ftrl", "l2_shrinkage_regularization_strength",
            l2_shrinkage_regularization_strength, low=0.0)
        self.beta = _check_number("Ftrl", "beta", beta, low=0.0)

    def create_state(self, weight):
        accum = nd.full(weight.shape, self.initial_accumulator_value, ctx=weight.ctx,
                        dtype=weight.dtype)
        return [accum] + _zeros(weight)

    def _power(self, x):
        power = -self.learning_rate_power
        if power == 0.5:
            return nd.sqrt(x)
        if power == 0.0:
            return nd.ones_like(x)
        return x ** power

    def update_step(self, param, weight, grad, state, lr):
        if lr <= 0:
            return
        accum, linear = state
        l1 = self.l1_regularization_strength
        l2 = self.l2_regularization_strength + self.beta / (2.0 * lr)
        grad_to_use = grad
        if self.l2_shrinkage_regularization_strength:
            grad_to_use = grad + weight * (2.0 * self.l2_shrinkage_regularization_strength)
        old_power = self._power(accum)
        accum += nd.square(grad)
        new_power = self._power(accum)
        linear += grad_to_use - (new_power - old_power) / lr * weight
        quadratic = new_power / lr + 2.0 * l2
        nd.divide(nd.clip(linear, -l1, l1) - linear, quadratic, out=weight)

    def get_config(self):
        return {**super().get_config(), "learning_rate_power": self.learning_rate_power,
                "initial_accumulator_value": self.initial_accumulator_value,
                "l1_regularization_strength": self.l1_regularization_strength,
                "l2_regularization_strength": self.l2_regularization_strength,
                "l2_shrinkage_regularization_strength":
                    self.l2_shrinkage_regularization_strength,
                "beta": self.beta}


class Lamb(Optimizer):
    """LAMB (You et al., 2019): Adam steps rescaled per parameter by a trust ratio.

    With Adam's bias-corrected moments ``r = m_hat / (sqrt(v_hat) + epsilon)``
    and ``ratio = ||w|| / ||r||`` (1 when either norm is 0):
    ``w -= ratio * lr * r``. The norms stay NDArrays (nothing waits). Weight
    decay, when set, is the decoupled one of the base class (Keras 3).

    Args:
        learning_rate: Float or schedule. Defaults to 0.001.
        beta_1, beta_2: Moment decays, in [0, 1).
        epsilon: Small constant for numerical stability.
        **kwargs: The :class:`Optimizer` arguments.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = _check_number("Lamb", "beta_1", beta_1, 0.0, 1.0, high_open=True)
        self.beta_2 = _check_number("Lamb", "beta_2", beta_2, 0.0, 1.0, high_open=True)
        self.epsilon = _check_number("Lamb", "epsilon", epsilon, low=0.0)

    def create_state(self, weight):
        return _zeros(weight, 2)

    def update_step(self, param, weight, grad, state, lr):
        m, v = state
        t = self.iterations + 1
        m += (grad - m) * (1 - self.beta_1)
        v += (nd.square(grad) - v) * (1 - self.beta_2)
        m_hat = m / (1.0 - self.beta_1 ** t)
        update = m_hat / (nd.sqrt(v / (1.0 - self.beta_2 ** t)) + self.epsilon)
        w_norm = nd.sqrt(nd.sum(nd.square(weight)))
        g_norm = nd.sqrt(nd.sum(nd.square(update)))
        ones = nd.ones_like(w_norm)
        both = (w_norm > 0) * (g_norm > 0)
        ratio = nd.where(both, w_norm / nd.where(both, g_norm, ones), ones)
        weight -= _broadcast_scale(update, ratio * lr)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


#: The paper's spelling.
LAMB = Lamb

_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "adamax": Adamax, "nadam": Nadam,
            "rmsprop": RMSprop, "adagrad": Adagrad, "adadelta": Adadelta, "ftrl": Ftrl,
            "lamb": Lamb}


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _lookup(name, custom_objects=None):
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    cls = _BY_NAME.get(str(name).lower())
    if cls is None:
        cls = next((c for c in _subclasses(Optimizer) if c.__name__ == name), None)
    if cls is None:
        raise ValueError(f"unknown optimizer {name!r}{did_you_mean(str(name).lower(), _BY_NAME)};"
                         f" known: {', '.join(sorted(_BY_NAME))} (or a subclass of "
                         "deepkit.optimizers.Optimizer passed in custom_objects)")
    return cls


def deserialize(config, custom_objects=None):
    """An optimizer from ``{'class_name': ..., 'config': {...}}`` (what :func:`serialize` gives)."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"an optimizer config is a dict with 'class_name' and 'config'. "
                         f"Received: {config!r}")
    return _lookup(config["class_name"], custom_objects).from_config(config.get("config", {}))


def get(identifier, custom_objects=None):
    """An optimizer from a name (default settings), a config dict, or itself.

    Args:
        identifier: ``'adam'`` (any case), an :class:`Optimizer`, or a dict
            from :func:`serialize`.
        custom_objects: ``{class name: class}`` for your own optimizers.
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier, custom_objects)
    if isinstance(identifier, str):
        return _lookup(identifier, custom_objects)()
    raise TypeError(f"cannot interpret {identifier!r} as an optimizer: give a name such as "
                    "'adam', an Optimizer instance or a config dict")


def serialize(optimizer):
    """``{'class_name', 'config'}`` of an optimizer (JSON-serialisable)."""
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}
