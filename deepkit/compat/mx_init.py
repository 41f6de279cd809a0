"""MXNet 1.x initializers (``mx.init``): chosen by parameter name, MXNet's formulas.

An MXNet initializer is called on every parameter of a symbol and decides by
the parameter's name what to do, so one object initializes a whole network:

* ``*_weight``: the initializer's own rule (``Uniform``, ``Xavier``, ...);
* ``*_bias``, ``*_beta``, ``*_moving_mean``, ``*_moving_inv_var``,
  ``*_moving_avg``, ``*_min``: zeros;
* ``*_gamma``, ``*_moving_var``, ``*_max``: ones;
* ``upsampling*``: bilinear kernels;
* a variable declared with ``sym.Variable(name, init=mx.init.Constant(3))``:
  that initializer's weight rule, whatever the name;
* any other name: an error naming the parameter (MXNet's behaviour).

The values come from deepkit's initializers (:mod:`deepkit.initializers`);
each class here only maps MXNet's arguments onto one of them. Weights are in
the engine's (and MXNet's) layout ``(out, in, *kernel)``, so
``fan_in = in * prod(kernel)`` and ``fan_out = out * prod(kernel)``.

Values are drawn from deepkit's seeded generator (:func:`deepkit.set_seed`,
or ``mx.random.seed``), so the same seed gives the same network.

The objects also follow deepkit's initializer protocol
``init(shape, dtype, rng) -> numpy array`` (the weight rule), so they can be
given to layers: ``Dense(10, kernel_initializer=mx.init.Xavier())``.
"""
import json
import logging
import re

import numpy as np

from deepkit_engine.base import did_you_mean

from .. import backend
from .. import initializers as core
from . import mx_nd

_logger = logging.getLogger("deepkit.mxnet")

__all__ = ["InitDesc", "Initializer", "Uniform", "Normal", "Xavier", "MSRAPrelu", "Constant",
           "Zero", "One", "Orthogonal", "LSTMBias", "Bilinear", "Mixed", "Load", "register",
           "create"]

_REGISTRY = {}


def register(cls):
    """Make an initializer class known to :func:`create` by its lower-case name.

    A class registered from another module (``FusedRNN``, defined beside the
    fused cell in :mod:`deepkit.compat.mx_rnn`) also becomes an attribute of
    this one, as ``mx.init.FusedRNN`` is in MXNet.
    """
    _REGISTRY[cls.__name__.lower()] = cls
    globals().setdefault(cls.__name__, cls)
    return cls


class InitDesc(str):
    """A parameter name with its symbol attributes (MXNet's ``InitDesc``).

    Args:
        name: The parameter's name (``fc1_weight``).
        attrs: Its variable attributes (``{'__init__': ..., '__lr_mult__': ...}``).
        global_init: The initializer that was asked to initialize the network.
    """

    def __new__(cls, name, attrs=None, global_init=None):
        ret = super().__new__(cls, name)
        ret.attrs = dict(attrs or {})
        ret.global_init = global_init
        return ret


_ZERO_SUFFIXES = ("bias", "beta", "moving_mean", "running_mean", "moving_inv_var",
                  "moving_avg", "min")
_ONE_SUFFIXES = ("gamma", "moving_var", "running_var", "max")


_ZEROS, _ONES, _BILINEAR = core.Zeros(), core.Ones(), core.Bilinear()


class Initializer:
    """Base class: the weight rule is the core initializer ``self.core``, or a
    subclass's ``_init_weight(name, shape, rng)``.

    Args:
        **kwargs: The constructor arguments, kept for :meth:`dumps`.
    """

    core = None

    def __init__(self, **kwargs):
        self._kwargs = kwargs

    def dumps(self):
        """``'["name", {kwargs}]'``: how a ``Variable(init=...)`` attribute stores it."""
        return json.dumps([type(self).__name__.lower(), self._kwargs])

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._kwargs.items())
        return f"{type(self).__name__}({args})"

    # -- the two calling conventions -------------------------------------------------
    def __call__(self, *args):
        """``init(desc, arr)`` fills NDArray ``arr`` by the name ``desc`` (MXNet);
        ``init(shape, dtype, rng)`` returns a weight (deepkit's initializer protocol)."""
        if len(args) == 3 and isinstance(args[0], (tuple, list)):
            shape, dtype, rng = args
            return self._init_weight("weight", tuple(shape), rng).astype(dtype)
        if len(args) != 2:
            raise TypeError(f"{type(self).__name__}: call as init(name, ndarray) or "
                            f"init(shape, dtype, rng); got {len(args)} arguments")
        desc, arr = args
        arr[:] = self.generate(desc, arr.shape, arr.dtype)
        return None

    def generate(self, desc, shape, dtype="float32", rng=None):
        """The initial value of the parameter ``desc`` (a name or :class:`InitDesc`).

        Args:
            desc: The parameter's name; its suffix picks the rule (see the module doc).
            shape: The parameter's shape.
            dtype: Element type of the result.
            rng: numpy Generator (default: deepkit's seeded generator).

        Returns:
            numpy.ndarray: The value.

        Raises:
            ValueError: When the name matches no rule.
        """
        rng = backend.rng() if rng is None else rng
        shape = tuple(int(s) for s in shape)
        name = str(desc)
        spec = getattr(desc, "attrs", {}).get("__init__")
        if spec:
            value = create(spec)._init_declared(name, shape, rng, self)
        elif name.startswith("upsampling"):
            value = _BILINEAR(shape, np.float64, rng)
        elif name.endswith("weight"):
            value = self._init_weight(name, shape, rng)
        elif name.endswith(_ZERO_SUFFIXES):
            value = _ZEROS(shape, np.float64, rng)
        elif name.endswith(_ONE_SUFFIXES):
            value = _ONES(shape, np.float64, rng)
        else:
            value = self._init_default(name, shape, rng)
        return np.asarray(value).astype(dtype, copy=False)

    def _init_declared(self, name, shape, rng, global_init):
        """The value of a parameter declared with this initializer (``Variable(init=...)``);
        ``global_init`` is the one given to ``init_params``, for parts left to it."""
        return self._init_weight(name, shape, rng)

    def _init_weight(self, name, shape, rng):
        if self.core is None:
            raise NotImplementedError(f"{type(self).__name__} does not implement _init_weight")
        return self.core(shape, np.float64, rng)

    def _init_default(self, name, shape, rng):
        raise ValueError(
            f"Unknown initialization pattern for '{name}': default initialization is limited "
            "to names ending in 'weight', 'bias', 'gamma' (1.0), 'beta' (0.0) and the moving "
            "statistics; declare it with sym.Variable(name, init=mx.init.<Initializer>(...)) "
            "to choose its initialization")


@register
class Uniform(Initializer):
    """Weights from U(-scale, scale).

    Args:
        scale: Half-width of the interval.
    """

    def __init__(self, scale=0.07):
        super().__init__(scale=scale)
        self.scale = float(scale)
        self.core = core.RandomUniform(-self.scale, self.scale)


@register
class Normal(Initializer):
    """Weights from N(0, sigma**2).

    Args:
        sigma: Standard deviation.
    """

    def __init__(self, sigma=0.01):
        super().__init__(sigma=sigma)
        self.sigma = float(sigma)
        self.core = core.RandomNormal(0.0, self.sigma)


@register
class Xavier(Initializer):
    """Xavier/Glorot: scale ``sqrt(magnitude / factor)`` with factor from the fans.

    Uniform: U(-scale, scale), which is the core ``VarianceScaling`` with
    ``scale=magnitude / 3`` (its bound is ``sqrt(3 * scale / n)``); Gaussian:
    N(0, scale**2), ``VarianceScaling(magnitude, ..., 'untruncated_normal')``.

    Args:
        rnd_type: ``'uniform'`` (U(-scale, scale)) or ``'gaussian'`` (N(0, scale**2)).
        factor_type: ``'avg'`` ((fan_in + fan_out) / 2), ``'in'`` or ``'out'``.
        magnitude: Numerator of the variance formula (3 gives Glorot uniform).
    """

    def __init__(self, rnd_type="uniform", factor_type="avg", magnitude=3):
        if rnd_type not in ("uniform", "gaussian"):
            raise ValueError(f"Xavier: 'rnd_type' must be 'uniform' or 'gaussian'. Received: "
                             f"rnd_type={rnd_type!r}")
        if factor_type not in ("avg", "in", "out"):
            raise ValueError(f"Xavier: 'factor_type' must be 'avg', 'in' or 'out'. Received: "
                             f"factor_type={factor_type!r}")
        super().__init__(rnd_type=rnd_type, factor_type=factor_type, magnitude=magnitude)
        self.rnd_type, self.factor_type = rnd_type, factor_type
        self.magnitude = float(magnitude)
        mode = {"avg": "fan_avg", "in": "fan_in", "out": "fan_out"}[factor_type]
        if rnd_type == "uniform":
            self.core = core.VarianceScaling(self.magnitude / 3.0, mode, "uniform")
        else:
            self.core = core.VarianceScaling(self.magnitude, mode, "untruncated_normal")

    def _init_weight(self, name, shape, rng):
        if len(shape) < 2:
            raise ValueError(f"Xavier initializer cannot be applied to vector '{name}' of shape "
                             f"{shape}: it needs a weight of at least 2 dimensions")
        return super()._init_weight(name, shape, rng)


@register
class MSRAPrelu(Xavier):
    """He/MSRA initialization for (P)ReLU nets: Gaussian Xavier with magnitude 2/(1+slope**2).

    Args:
        factor_type: ``'avg'``, ``'in'`` or ``'out'``.
        slope: The negative slope of the (P)ReLU (0 for ReLU).
    """

    def __init__(self, factor_type="avg", slope=0.25):
        super().__init__("gaussian", factor_type, 2.0 / (1 + slope ** 2))
        self._kwargs = {"factor_type": factor_type, "slope": slope}


@register
class Constant(Initializer):
    """Weights equal to ``value`` (other names still follow the name rules)."""

    def __init__(self, value):
        super().__init__(value=value)
        self.value = value
        if np.ndim(value) == 0:
            self.core = core.Constant(value)

    def _init_weight(self, name, shape, rng):
        if self.core is not None:
            return super()._init_weight(name, shape, rng)
        return np.broadcast_to(np.asarray(self.value, np.float64), shape).copy()


@register
class Zero(Initializer):
    """Weights equal to 0."""

    core = _ZEROS


@register
class One(Initializer):
    """Weights equal to 1."""

    core = _ONES


@register
class Orthogonal(Initializer):
    """An orthogonal matrix over ``(out, in * prod(kernel))``, times ``scale`` (Saxe et al.).

    Args:
        scale: Multiplier (MXNet's default 1.414 suits ReLU).
        rand_type: ``'uniform'`` or ``'normal'`` source matrix.
    """

    def __init__(self, scale=1.414, rand_type="uniform"):
        if rand_type not in ("uniform", "normal"):
            raise ValueError(f"Orthogonal: 'rand_type' must be 'uniform' or 'normal'. "
                             f"Received: rand_type={rand_type!r}")
        super().__init__(scale=scale, rand_type=rand_type)
        self.scale, self.rand_type = float(scale), rand_type
        self.core = core.Orthogonal(self.scale, method="svd", distribution=rand_type)


@register
class LSTMBias(Initializer):
    """The bias of an LSTM's gates i, f, c, o: zeros, but ``forget_bias`` for the forget gate.

    MXNet's ``mx.rnn.LSTMCell`` declares its ``i2h_bias`` with it, so the
    forget gate starts open and gradients flow through long sequences.
    """

    def __init__(self, forget_bias=1.0):
        super().__init__(forget_bias=forget_bias)
        self.forget_bias = float(forget_bias)

    def _init_weight(self, name, shape, rng):
        if len(shape) != 1 or shape[0] % 4:
            raise ValueError(f"LSTMBias: '{name}' has shape {tuple(shape)}; an LSTM gate bias "
                             "is 1-D with 4 * num_hidden entries")
        value = np.zeros(shape, np.float64)
        hidden = shape[0] // 4
        value[hidden:2 * hidden] = self.forget_bias
        return value


@register
class Bilinear(Initializer):
    """Bilinear upsampling kernels for deconvolution weights."""

    core = _BILINEAR


@register
class Mixed(Initializer):
    """The first initializer whose regular expression matches the name.

    Args:
        patterns: Regular expressions (``re.match``), e.g. ``['.*bias', '.*']``.
        initializers: One initializer per pattern.
    """

    def __init__(self, patterns, initializers):
        if len(patterns) != len(initializers):
            raise ValueError(f"Mixed: {len(patterns)} patterns but {len(initializers)} "
                             "initializers; give one initializer per pattern")
        super().__init__()
        self.map = [(re.compile(p), create(i)) for p, i in zip(patterns, initializers)]

    def dumps(self):
        raise TypeError("Mixed initializers cannot be stored in a Variable attribute")

    def generate(self, desc, shape, dtype="float32", rng=None):
        for pattern, init in self.map:
            if pattern.match(str(desc)):
                return init.generate(desc, shape, dtype, rng)
        raise ValueError(f"Mixed: parameter '{desc}' matches none of the patterns "
                         f"{[p.pattern for p, _ in self.map]}; add '.*' as the last one")


class Load(Initializer):
    """Values from a dict (or a ``.params`` file, MXNet's or deepkit's), others by ``default_init``.

    Args:
        param: ``{name: NDArray or numpy array}`` or a file name; ``arg:``/``aux:``
            prefixes are stripped.
        default_init: Initializer for names not in ``param`` (None: an error).
        verbose: Log each loaded name.
    """

    def __init__(self, param, default_init=None, verbose=False):
        super().__init__()
        if isinstance(param, str):
            param = mx_nd.load(param)
        self.param = {}
        for name, value in param.items():
            if name.startswith(("arg:", "aux:")):
                name = name[4:]
            self.param[name] = value.asnumpy() if hasattr(value, "asnumpy") else np.asarray(value)
        self.default_init = None if default_init is None else create(default_init)
        self.verbose = verbose

    def generate(self, desc, shape, dtype="float32", rng=None):
        name = str(desc)
        if name in self.param:
            value = self.param[name]
            if tuple(value.shape) != tuple(shape):
                raise ValueError(f"Load: parameter '{name}' has shape {tuple(shape)} but the "
                                 f"loaded value has shape {tuple(value.shape)}")
            if self.verbose:
                _logger.info("Initialized %s by loading", name)
            return value.astype(dtype)
        if self.default_init is None:
            raise ValueError(f"Load: '{name}' is not in the loaded parameters and there is no "
                             "default_init")
        return self.default_init.generate(desc, shape, dtype, rng)


class _Wrapped(Initializer):
    """A deepkit initializer (``init(shape, dtype, rng)``) used for weights, by name rules."""

    def __init__(self, init):
        super().__init__()
        self.init = self.core = init

    def __repr__(self):
        return f"mx_init({self.init!r})"


def create(spec):
    """An initializer from an instance, a name (``'xavier'``), a ``dumps()`` JSON string,
    or a deepkit initializer (used for the weights).

    Raises:
        ValueError: For an unknown name.
    """
    if isinstance(spec, Initializer):
        return spec
    if isinstance(spec, str):
        text = spec.strip()
        if text.startswith("["):
            name, kwargs = json.loads(text)
        else:
            name, kwargs = text, {}
        cls = _REGISTRY.get(name.lower()) or {"zeros": Zero, "ones": One}.get(name.lower())
        if cls is None:
            raise ValueError(f"unknown initializer {name!r}{did_you_mean(name, _REGISTRY)}; "
                             f"known: {', '.join(sorted(_REGISTRY))}")
        return cls(**kwargs)
    if isinstance(spec, core.Initializer) or callable(spec):
        return _Wrapped(spec)
    raise TypeError(f"cannot interpret {spec!r} as an initializer")
