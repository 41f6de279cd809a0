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

import numpy as np

from deepkit_engine import nd
from deepkit_engine.base import did_you_mean
from deepkit_engine.ops import get_op

from .. import optimizers as dk_optimizers
from . import mx_format
from .mx_lr_scheduler import FactorScheduler, MultiFactorScheduler

__all__ = ["Optimizer", "SGD", "NAG", "Adam", "RMSProp", "AdaGrad", "AdaDelta", "create",
           "register", "Updater", "get_updater", "FactorScheduler", "MultiFactorScheduler"]

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


class _IndexedParam:
    """What an update rule reads of a parameter when MXNet's ``update(index, ...)`` drives it."""

    lr_mult = 1.0

    def __init__(self, name, wd_mult):
        self.name, self.wd_mult = name, wd_mult


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
        self.idx2name = dict(param_idx2name or {})
        self.param_dict = dict(param_dict or {})
        self.sym_info = (sym.attr_dict(), sym.list_arguments()) if sym is not None else ()
        self._index_update_count = {}
        self.set_lr_mult({})
        self.set_wd_mult({})

    # -- MXNet's per-index interface -----------------------------------------------------
    def new_state(self, weight):
        """The state list of one weight (the built-in rules override this)."""
        return []

    def create_state(self, index, weight=None):
        """MXNet's ``create_state(index, weight)``: the optimizer state of one weight.

        deepkit's own loop calls it with the weight alone; both forms give
        :meth:`new_state`. Subclasses written for MXNet override this method.
        """
        return self.new_state(index if weight is None else weight)

    def create_state_multi_precision(self, index, weight):
        """As :meth:`create_state` (deepkit keeps weights in their own precision)."""
        return self.create_state(index, weight)

    def _state(self, param):
        state = self._states.get(param.name)
        if state is None:
            state = self._states[param.name] = self.create_state(self._index_of(param.name),
                                                                 param.data)
        return state

    def _index_of(self, name):
        for index, known in self.idx2name.items():
            if known == name:
                return index
        return name

    def set_lr_mult(self, args_lr_mult):
        """Learning-rate multipliers by parameter name (symbol ``__lr_mult__`` attributes first).

        They apply to :meth:`update` (and so to ``get_updater``); deepkit's own
        loop uses each parameter's ``lr_mult``.
        """
        self.lr_mult = {}
        if self.sym_info:
            attrs, names = self.sym_info
            for name in names:
                if "__lr_mult__" in attrs.get(name, {}):
                    self.lr_mult[name] = float(attrs[name]["__lr_mult__"])
        self.lr_mult.update(args_lr_mult)

    def set_wd_mult(self, args_wd_mult):
        """Weight-decay multipliers by name; as MXNet, names in ``param_idx2name`` that do
        not end in ``_weight``/``_gamma`` get 0."""
        self.wd_mult = {}
        for name in self.idx2name.values():
            if not (name.endswith("_weight") or name.endswith("_gamma")):
                self.wd_mult[name] = 0.0
        if self.sym_info:
            attrs, names = self.sym_info
            for name in names:
                if "__wd_mult__" in attrs.get(name, {}):
                    self.wd_mult[name] = float(attrs[name]["__wd_mult__"])
        self.wd_mult.update(args_wd_mult)

    def _update_count(self, index):
        """Count one more update of ``index``; ``num_update`` is the largest count."""
        count = self._index_update_count.get(index, self.begin_num_update) + 1
        self._index_update_count[index] = count
        self.iterations = max(self.iterations, count - self.begin_num_update)

    def _mult(self, table, index):
        if index in self.param_dict:
            return None
        if index in table:
            return table[index]
        if index in self.idx2name:
            return table.get(self.idx2name[index], 1.0)
        return 1.0

    def _get_lr(self, index):
        """This update's learning rate for ``index`` (scheduler, then ``lr_mult``)."""
        lr = float(self.lr_scheduler(self.num_update)) if self.lr_scheduler is not None \
            else self.lr
        mult = self._mult(self.lr_mult, index)
        return lr * (self.param_dict[index].lr_mult if mult is None else mult)

    def _get_wd(self, index):
        """The weight decay for ``index`` (``wd`` times ``wd_mult``)."""
        mult = self._mult(self.wd_mult, index)
        return self.wd * (self.param_dict[index].wd_mult if mult is None else mult)

    def update(self, index, weight, grad, state):
        """MXNet's ``update(index, weight, grad, state)``: update ``weight`` in place.

        Args:
            index: The parameter's key (an int with ``param_idx2name``, or a name).
            weight: The NDArray to update.
            grad: Its gradient (``rescale_grad`` and ``clip_gradient`` apply).
            state: What :meth:`create_state` returned for it.
        """
        self._update_count(index)
        lr = self._get_lr(index)
        wd = self._get_wd(index)
        param = _IndexedParam(self.idx2name.get(index, str(index)), wd / self.wd if self.wd
                              else 0.0)
        self.iterations -= 1  # the rule sees the count before this update, as in apply()
        try:
            self.update_step(param, weight, grad, state, lr)
        finally:
            self.iterations += 1

    def update_multi_precision(self, index, weight, grad, state):
        """As :meth:`update`."""
        self.update(index, weight, grad, state)

    def update_step(self, param, weight, grad, state, lr):
        if type(self).update is not Optimizer.update:
            # a rule written for MXNet: it implements update(index, weight, grad, state)
            index = self._index_of(param.name)
            self.lr_mult.setdefault(index, param.lr_mult)
            self.wd_mult.setdefault(index, param.wd_mult)
            done = self.iterations  # apply() counts this step itself
            type(self).update(self, index, weight, grad, state)
            self.iterations = done
            return
        super().update_step(param, weight, grad, state, lr)

    @staticmethod
    def register(klass):
        """Make an optimizer class known to :func:`create` (``@mx.optimizer.Optimizer.register``)."""
        return register(klass)

    @staticmethod
    def create_optimizer(name, **kwargs):
        """An optimizer by name (MXNet's ``Optimizer.create_optimizer``)."""
        return create(name, **kwargs)

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
        self._fused = {}
        self._prepared = nd.LastPrepared()

    def new_state(self, weight):
        return self._zeros(weight, 1) if self.momentum else []

    def apply(self, params_and_grads):
        """One step of every parameter, pushed as one fused update when nothing else applies.

        Keras-style clipping, decoupled weight decay, gradient accumulation,
        constraints or an overridden rule take the per-parameter path.
        """
        pairs = [(p, g) for p, g in params_and_grads if g is not None and p.trainable]
        if not self._fusable(pairs):
            super().apply(params_and_grads)
            return
        lr = self.lr
        self._prepare_step()
        inputs, weights, moms, lrs, wds = [], [], [], [], []
        for param, grad in pairs:
            weight = param.data
            state = self._state(param)
            inputs += [weight, grad] + state[:1]
            weights.append(weight)
            moms += state[:1]
            lrs.append(lr * param.lr_mult)
            wds.append(self._wd(param))
        key = ("multi", tuple(lrs), tuple(wds), self.rescale_grad, self._clip_arg(),
               self.momentum, tuple(map(id, inputs)))
        push = self._prepared.get(key)
        if push is None:  # checked once per setting and set of arrays: a step is the push
            op = get_op("_multi_sgd_update")
            attrs = op.parse_attrs(dict(lrs=key[1], wds=key[2], rescale_grad=key[3],
                                        clip_gradient=key[4], momentum=self.momentum,
                                        num_args=len(inputs)))
            push = nd.prepare_invoke(op, inputs, attrs, weights + moms)
            self._prepared.keep(key, push, inputs)
        push()
        self.iterations += 1

    def _fusable(self, pairs):
        if len(pairs) < 2 or type(self).update is not Optimizer.update \
                or type(self).update_step is not SGD.update_step:
            return False
        if (self.gradient_accumulation_steps or 1) > 1 or self.weight_decay \
                or self.clipnorm is not None or self.clipvalue is not None \
                or self.global_clipnorm is not None:
            return False
        first = pairs[0][0].data
        return all(p.constraint is None and p.data.ctx == first.ctx
                   and p.data.dtype == first.dtype and g.dtype == first.dtype
                   for p, g in pairs)

    def update_step(self, param, weight, grad, state, lr):
        key = (lr, self._wd(param), self.rescale_grad, self._clip_arg(), self.momentum)
        cached = self._fused.get(key)
        if cached is None:
            # parsed once per distinct setting: the per-batch cost is the push alone
            op = get_op("sgd_mom_update" if self.momentum else "sgd_update")
            params = dict(lr=key[0], wd=key[1], rescale_grad=key[2], clip_gradient=key[3])
            if self.momentum:
                params["momentum"] = self.momentum
            if len(self._fused) > 64:
                self._fused.clear()
            cached = self._fused[key] = (op, op.parse_attrs(params))
        op, attrs = cached
        inputs = [weight, grad, state[0]] if self.momentum else [weight, grad]
        nd.invoke(op, inputs, attrs, weight)


@register
class NAG(Optimizer):
    """Nesterov accelerated gradient, MXNet's form.

    ``g = clip(rescale_grad * grad) + wd * weight``; ``mom = momentum * mom + g``;
    ``weight -= lr * (g + momentum * mom)``.
    """

    def __init__(self, momentum=0.0, **kwargs):
        super().__init__(**kwargs)
        self.momentum = float(momentum)

    def new_state(self, weight):
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

    def new_state(self, weight):
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

    def new_state(self, weight):
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

    def new_state(self, weight):
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

    def new_state(self, weight):
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


class Updater:
    """MXNet's updater: ``updater(index, grad, weight)`` keeps one state per index.

    Args:
        optimizer: The optimizer whose ``update`` it calls.
    """

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.states = {}
        self.states_synced = {}

    def __call__(self, index, grad, weight):
        """Update ``weight`` (or each of a list of indices, grads and weights) in place."""
        if not isinstance(index, (list, tuple)):
            index, grad, weight = [index], [grad], [weight]
        for i, g, w in zip(index, grad, weight):
            if i not in self.states:
                self.states[i] = self.optimizer.create_state_multi_precision(i, w)
                self.states_synced[i] = True
            self.optimizer.update_multi_precision(i, w, g, self.states[i])

    def get_states(self, dump_optimizer=False):
        """The states as bytes (MXNet's NDArray format; MXNet itself pickles them).

        ``dump_optimizer`` is accepted and has no effect: the optimizer is not saved.
        """
        data = {"num_update": np.array([self.optimizer.num_update], np.int64)}
        for index, state in self.states.items():
            form, arrays = _state_form(state)
            key = f"{type(index).__name__}:{form}:{len(arrays)}"
            data[f"{key}:-1:{index}"] = np.zeros(1, np.float32)
            for k, array in enumerate(arrays):
                data[f"{key}:{k}:{index}"] = array
        return mx_format.dumps(data)

    def set_states(self, states):
        """Restore what :meth:`get_states` returned."""
        saved = mx_format.loads(states, source="Updater.set_states")
        if not isinstance(saved, dict) or "num_update" not in saved:
            raise ValueError("Updater.set_states: these bytes are not what get_states() returns")
        restored = {}
        for key, value in saved.items():
            if key == "num_update":
                continue
            kind, form, count, k, index = key.split(":", 4)
            index = int(index) if kind == "int" else index
            slots = restored.setdefault(index, (form, [None] * int(count)))[1]
            if int(k) >= 0:
                slots[int(k)] = nd.array(value, dtype=value.dtype)
        self.states = {i: (None if form == "none" else arrays[0] if form == "single" else arrays)
                       for i, (form, arrays) in restored.items()}
        self.states_synced = {i: True for i in self.states}
        self.optimizer.iterations = int(saved["num_update"][0]) - self.optimizer.begin_num_update


def _state_form(state):
    """``(form, numpy arrays)`` of one state: None, one NDArray or a list/tuple of them."""
    if state is None:
        return "none", []
    if isinstance(state, (list, tuple)):
        return "list", [s.asnumpy() for s in state]
    return "single", [state.asnumpy()]


def get_updater(optimizer):
    """An :class:`Updater` over ``optimizer`` (MXNet's ``mx.optimizer.get_updater``)."""
    return Updater(optimizer)
