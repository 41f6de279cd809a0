"""MXNet 1.x optimizers (``mx.optimizer``) on deepkit's optimizer machinery.

They take MXNet's argument names and follow MXNet's update formulas:

* ``rescale_grad`` multiplies every gradient first (FeedForward sets it to
  ``1 / batch_size``, because MXNet's loss heads such as ``SoftmaxOutput``
  give the gradient of the *summed* loss);
* ``clip_gradient`` then clips it element-wise to ``[-c, c]``;
* ``wd`` is coupled weight decay: ``wd * weight`` is added to the gradient
  (times the parameter's ``wd_mult``; FeedForward gives biases, ``beta`` and
  other parameters not ending in ``_weight``/``_gamma`` a ``wd_mult`` of 0, as
  MXNet does);
* ``lr_scheduler(num_update)`` gives the learning rate, ``num_update``
  counting from 1 at the first update.

They are :class:`deepkit.optimizers.Optimizer` subclasses, so
``Model.compile(optimizer=mx.optimizer.SGD(...))`` works too; the per-parameter
``lr_mult`` and state handling come from the base class. Updates use the
engine's fused ops (``sgd_update``, ``sgd_mom_update``, ``adam_update``) where
one exists and lazy NDArray arithmetic otherwise, so nothing waits.
"""
import inspect
import math

from deepkit_engine import nd
from deepkit_engine.base import did_you_mean

from .. import optimizers as dk_optimizers

__all__ = ["Optimizer", "SGD", "NAG", "Adam", "RMSProp", "AdaGrad", "AdaDelta", "create",
           "register", "FactorScheduler", "MultiFactorScheduler"]

_REGISTRY = {}


def register(cls):
    """Make an optimizer class known to :func:`create` by its lower-case name."""
    _REGISTRY[cls.__name__.lower()] = cls
    return cls


class _Scheduled:
    """deepkit schedule protocol (``f(iterations)``, 0-based) over an MXNet scheduler
    (``f(num_update)``, 1-based)."""

    def __init__(self, scheduler, begin_num_update):
        self.scheduler, self.begin_num_update = scheduler, int(begin_num_update)

    def __call__(self, step):
        return self.scheduler(self.begin_num_update + int(step) + 1)


class Optimizer(dk_optimizers.Optimizer):
    """Base class of the MXNet-style optimizers.

    Args:
        learning_rate: The step size (the base rate when ``lr_scheduler`` is given).
        wd: Coupled weight decay: ``wd * weight`` is added to the gradient.
        rescale_grad: Multiplies the gradient before anything else.
        clip_gradient: Clip the rescaled gradient to ``[-c, c]`` (None: off).
        lr_scheduler: ``callable(num_update) -> lr`` (``FactorScheduler`` ...); its
            ``base_lr`` is set to ``learning_rate``.
        begin_num_update: The update count to start from (for resuming).
        multi_precision, param_idx2name, sym, param_dict: Accepted for
            compatibility; they have no effect here.
    """

    def __init__(self, learning_rate=0.01, wd=0.0, rescale_grad=1.0, clip_gradient=None,
                 lr_scheduler=None, begin_num_update=0, multi_precision=False,
                 param_idx2name=None, sym=None, param_dict=None):
        lr = float(learning_rate)
        if lr_scheduler is not None:
            lr_scheduler.base_lr = lr
            schedule = _Scheduled(lr_scheduler, begin_num_update)
        else:
            schedule = lr
        super().__init__(learning_rate=schedule)
        if clip_gradient is not None and clip_gradient < 0:
            clip_gradient = None
        self.wd = float(wd)
        self.rescale_grad = float(rescale_grad)
        self.clip_gradient = None if clip_gradient is None else float(clip_gradient)
        self.lr_scheduler = lr_scheduler
        self.begin_num_update = int(begin_num_update)
        self.multi_precision = bool(multi_precision)
        self._base_lr = lr

    @property
    def num_update(self):
        """Updates done so far, counting ``begin_num_update`` (MXNet's attribute)."""
        return self.begin_num_update + self.iterations

    def set_learning_rate(self, lr):
        """Set a fixed learning rate (an error with an ``lr_scheduler``, as in MXNet)."""
        if self.lr_scheduler is not None:
            raise UserWarning("LRScheduler of the optimizer has already been defined. Note "
                              "that set_learning_rate can mutate the value of the learning "
                              "rate of the optimizer only when the LRScheduler of the "
                              "optimizer is undefined.")
        self.learning_rate = float(lr)
        self._base_lr = float(lr)

    # -- helpers for the update rules ----------------------------------------------------
    def _wd(self, param):
        return self.wd * param.wd_mult

    def _clip_arg(self):
        return -1.0 if self.clip_gradient is None else self.clip_gradient

    def _grad(self, grad):
        """``clip(rescale_grad * grad)`` as a new NDArray."""
        g = grad * self.rescale_grad
        if self.clip_gradient is not None:
            g = nd.clip(g, -self.clip_gradient, self.clip_gradient)
        return g

    def _zeros(self, weight, n):
        return [nd.zeros(weight.shape, ctx=weight.ctx, dtype=weight.dtype) for _ in range(n)]

    # -- configuration -------------------------------------------------------------------
    def get_config(self):
        """The constructor arguments (without the scheduler and the MXNet-only extras)."""
        skip = {"lr_scheduler", "param_idx2name", "sym", "param_dict"}
        return {n: self._base_lr if n == "learning_rate" else getattr(self, n, None)
                for n in sorted(_init_args(type(self)) - skip)}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@register
class SGD(Optimizer):
    """SGD with optional momentum (MXNet's fused ``sgd_update``/``sgd_mom_update``).

    ``mom = momentum * mom - lr * (clip(rescale_grad * grad) + wd * weight)``;
    ``weight += mom``.

    Args:
        momentum: Momentum coefficient (0: plain SGD).
        lazy_update: Accepted for compatibility (dense arrays only here).
        **kwargs: See :class:`Optimizer`.
    """

    def __init__(self, momentum=0.0, lazy_update=True, **kwargs):
        super().__init__(**kwargs)
        self.momentum = float(momentum)
        self.lazy_update = lazy_update

    def create_state(self, weight):
        return self._zeros(weight, 1) if self.momentum else []

    def update_step(self, param, weight, grad, state, lr):
        common = dict(lr=lr, wd=self._wd(param), rescale_grad=self.rescale_grad,
                      clip_gradient=self._clip_arg())
        if self.momentum:
            nd.sgd_mom_update(weight, grad, state[0], momentum=self.momentum, out=weight,
                              **common)
        else:
            nd.sgd_update(weight, grad, out=weight, **common)


@register
class NAG(Optimizer):
    """Nesterov accelerated gradient, MXNet's form.

    ``g = clip(rescale_grad * grad) + wd * weight``; ``mom = momentum * mom + g``;
    ``weight -= lr * (g + momentum * mom)``.
    """

    def __init__(self, momentum=0.0, **kwargs):
        super().__init__(**kwargs)
        self.momentum = float(momentum)

    def create_state(self, weight):
        return self._zeros(weight, 1) if self.momentum else []

    def update_step(self, param, weight, grad, state, lr):
        g = self._grad(grad)
        wd = self._wd(param)
        if wd:
            g = g + wd * weight
        if self.momentum:
            mom = state[0]
            mom *= self.momentum
            mom += g
            weight -= lr * (g + self.momentum * mom)
        else:
            weight -= lr * g


@register
class Adam(Optimizer):
    """Adam (Kingma and Ba), with the bias correction folded into the step size.

    ``lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t)``, then MXNet's
    ``adam_update`` with ``g = clip(rescale_grad * grad) + wd * weight``.
    """

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 lazy_update=True, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1, self.beta2, self.epsilon = float(beta1), float(beta2), float(epsilon)
        self.lazy_update = lazy_update

    def create_state(self, weight):
        return self._zeros(weight, 2)

    def update_step(self, param, weight, grad, state, lr):
        t = self.num_update + 1
        lr_t = lr * math.sqrt(1.0 - self.beta2 ** t) / (1.0 - self.beta1 ** t)
        nd.adam_update(weight, grad, state[0], state[1], lr=lr_t, wd=self._wd(param),
                       rescale_grad=self.rescale_grad, clip_gradient=self._clip_arg(),
                       beta1=self.beta1, beta2=self.beta2, epsilon=self.epsilon, out=weight)


@register
class RMSProp(Optimizer):
    """RMSProp (Tieleman and Hinton), or the centered form of Graves (``centered=True``).

    Plain: ``n = (1 - gamma1) * g**2 + gamma1 * n``; ``weight -= lr * g / sqrt(n + epsilon)``.
    Centered: also ``gbar = (1 - gamma1) * g + gamma1 * gbar`` and
    ``delta = gamma2 * delta - lr * g / sqrt(n - gbar**2 + epsilon)``; ``weight += delta``.

    Args:
        gamma1: Decay of the squared-gradient average.
        gamma2: Momentum of the centered form.
        epsilon: Added under the square root.
        centered: Use the centered form.
        clip_weights: Clip the weights to ``[-c, c]`` after each update (None: off).
    """

    def __init__(self, learning_rate=0.001, gamma1=0.9, gamma2=0.9, epsilon=1e-8,
                 centered=False, clip_weights=None, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.gamma1, self.gamma2, self.epsilon = float(gamma1), float(gamma2), float(epsilon)
        self.centered = bool(centered)
        self.clip_weights = clip_weights

    def create_state(self, weight):
        return self._zeros(weight, 3 if self.centered else 1)

    def update_step(self, param, weight, grad, state, lr):
        g = self._grad(grad)
        wd = self._wd(param)
        if wd:
            g = g + wd * weight
        n = state[0]
        n *= self.gamma1
        n += (1.0 - self.gamma1) * nd.square(g)
        if not self.centered:
            weight -= lr * g / nd.sqrt(n + self.epsilon)
        else:
            gbar, delta = state[1], state[2]
            gbar *= self.gamma1
            gbar += (1.0 - self.gamma1) * g
            delta *= self.gamma2
            delta -= lr * g / nd.sqrt(n - nd.square(gbar) + self.epsilon)
            weight += delta
        if self.clip_weights:
            nd.clip(weight, -self.clip_weights, self.clip_weights, out=weight)


@register
class AdaGrad(Optimizer):
    """AdaGrad (Duchi et al.): ``history += g**2``;
    ``weight -= lr * (g / sqrt(history + eps) + wd * weight)``.

    Args:
        eps: Added under the square root.
    """

    def __init__(self, eps=1e-7, **kwargs):
        super().__init__(**kwargs)
        self.eps = float(eps)

    def create_state(self, weight):
        return self._zeros(weight, 1)

    def update_step(self, param, weight, grad, state, lr):
        g = self._grad(grad)
        history = state[0]
        history += nd.square(g)
        step = g / nd.sqrt(history + self.eps)
        wd = self._wd(param)
        if wd:
            step = step + wd * weight
        weight -= lr * step


@register
class AdaDelta(Optimizer):
    """AdaDelta (Zeiler); the learning rate is not used, as in the paper and MXNet.

    ``acc_g = rho * acc_g + (1 - rho) * g**2``;
    ``delta = sqrt(acc_delta + epsilon) / sqrt(acc_g + epsilon) * g``;
    ``acc_delta = rho * acc_delta + (1 - rho) * delta**2``;
    ``weight -= delta + wd * weight``.
    """

    def __init__(self, learning_rate=1.0, rho=0.90, epsilon=1e-5, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.rho, self.epsilon = float(rho), float(epsilon)

    def create_state(self, weight):
        return self._zeros(weight, 2)

    def update_step(self, param, weight, grad, state, lr):
        g = self._grad(grad)
        acc_g, acc_delta = state
        acc_g *= self.rho
        acc_g += (1.0 - self.rho) * nd.square(g)
        delta = nd.sqrt(acc_delta + self.epsilon) / nd.sqrt(acc_g + self.epsilon) * g
        acc_delta *= self.rho
        acc_delta += (1.0 - self.rho) * nd.square(delta)
        wd = self._wd(param)
        weight -= (delta + wd * weight) if wd else delta


def _init_args(cls):
    """Every keyword the constructor of ``cls`` accepts (through ``**kwargs`` chains)."""
    known = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass) and issubclass(klass, Optimizer):
            known.update(inspect.signature(klass.__init__).parameters)
    return known - {"self", "kwargs"}


def create(name, **kwargs):
    """An optimizer by name (``'sgd'``, ``'adam'``, ...; any case) with MXNet's arguments.

    Raises:
        ValueError: For an unknown name.
        TypeError: For an argument the optimizer does not take (with the ones it does).
    """
    if isinstance(name, dk_optimizers.Optimizer):
        return name
    cls = _REGISTRY.get(str(name).lower())
    if cls is None:
        raise ValueError(f"unknown optimizer {name!r}{did_you_mean(str(name).lower(), _REGISTRY)};"
                         f" known: {', '.join(sorted(_REGISTRY))}")
    known = _init_args(cls)
    unknown = [k for k in kwargs if k not in known]
    if unknown:
        raise TypeError(f"{cls.__name__}: unknown argument '{unknown[0]}'"
                        f"{did_you_mean(unknown[0], known)}; it takes "
                        f"{', '.join(sorted(known))}")
    return cls(**kwargs)


class FactorScheduler:
    """MXNet's ``FactorScheduler``: ``base_lr * factor**floor((num_update - 1) / step)``,
    never below ``stop_factor_lr``.

    Args:
        step: Updates between two decays.
        factor: Multiplier at each decay.
        stop_factor_lr: The lowest rate.
        base_lr: The starting rate (an optimizer sets it to its ``learning_rate``).
    """

    def __init__(self, step, factor=1, stop_factor_lr=1e-8, base_lr=0.01):
        if step < 1:
            raise ValueError(f"FactorScheduler: 'step' must be >= 1. Received: step={step!r}")
        if factor > 1.0:
            raise ValueError(f"FactorScheduler: 'factor' must be <= 1 to decay the rate. "
                             f"Received: factor={factor!r}")
        self.step, self.factor = int(step), float(factor)
        self.stop_factor_lr, self.base_lr = float(stop_factor_lr), float(base_lr)

    def __call__(self, num_update):
        decays = max(0, (int(num_update) - 1) // self.step)
        return max(self.base_lr * self.factor ** decays, self.stop_factor_lr)


class MultiFactorScheduler:
    """MXNet's ``MultiFactorScheduler``: times ``factor`` after each update count in ``step``.

    Args:
        step: Increasing list of update counts.
        factor: Multiplier at each of them.
        base_lr: The starting rate (an optimizer sets it to its ``learning_rate``).
    """

    def __init__(self, step, factor=1, base_lr=0.01):
        step = [int(s) for s in step]
        if any(b <= a for a, b in zip(step, step[1:])) or (step and step[0] < 1):
            raise ValueError(f"MultiFactorScheduler: 'step' must be increasing counts >= 1. "
                             f"Received: step={step!r}")
        self.step, self.factor, self.base_lr = step, float(factor), float(base_lr)

    def __call__(self, num_update):
        decays = sum(1 for s in self.step if int(num_update) > s)
        return self.base_lr * self.factor ** decays
