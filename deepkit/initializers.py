"""Weight initializers: ``init(shape, dtype, rng) -> numpy array``.

Weights use the engine's layouts: dense ``(units, in_features)``, convolution
``(filters, in_channels, *kernel)``. So ``fan_in = in * prod(kernel)`` and
``fan_out = units * prod(kernel)``, as in MXNet and Caffe.

Values come from the numpy Generator ``rng`` only (the caller passes
deepkit's seeded one), so the same seed gives the same weights. MXNet's
initializers (``mx.init``) are adapters over these: ``Xavier(rnd_type,
factor_type, magnitude)`` is ``VarianceScaling(magnitude / 3, factor_type,
'uniform')`` or ``VarianceScaling(magnitude, factor_type,
'untruncated_normal')``, its ``Orthogonal`` is ``Orthogonal(method='svd')``.
"""
import math

import numpy as np

from deepkit_engine.base import did_you_mean

__all__ = [
    "Initializer", "Zeros", "Ones", "Constant", "RandomNormal", "RandomUniform",
    "TruncatedNormal", "VarianceScaling", "GlorotUniform", "GlorotNormal", "HeUniform",
    "HeNormal", "LecunUniform", "LecunNormal", "Orthogonal", "Identity", "Bilinear", "get",
    "serialize",
]


def _number(cls, name, value):
    """``value`` as a float, or a TypeError naming the initializer and the argument."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{cls}: '{name}' must be a number. Received: {name}={value!r}")
    return float(value)


def compute_fans(shape):
    """``(fan_in, fan_out)`` of a weight in (out, in, *kernel) layout."""
    shape = tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


class Initializer:
    """Base class: subclasses implement ``__call__(shape, dtype, rng)``."""

    def __call__(self, shape, dtype, rng):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Zeros(Initializer):
    """All zeros (the default for biases)."""

    def __call__(self, shape, dtype, rng):
        return np.zeros(shape, dtype)


class Ones(Initializer):
    """All ones (the default for BatchNormalization's gamma)."""

    def __call__(self, shape, dtype, rng):
        return np.ones(shape, dtype)


class Constant(Initializer):
    """Every element equal to ``value``."""

    def __init__(self, value=0.0):
        self.value = _number("Constant", "value", value)

    def __call__(self, shape, dtype, rng):
        return np.full(shape, self.value, dtype)

    def get_config(self):
        return {"value": self.value}


class RandomNormal(Initializer):
    """Samples of N(mean, stddev**2)."""

    def __init__(self, mean=0.0, stddev=0.05):
        self.mean = _number("RandomNormal", "mean", mean)
        self.stddev = _number("RandomNormal", "stddev", stddev)

    def __call__(self, shape, dtype, rng):
        return rng.normal(self.mean, self.stddev, shape).astype(dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev}


class RandomUniform(Initializer):
    """Samples of U[minval, maxval)."""

    def __init__(self, minval=-0.05, maxval=0.05):
        self.minval = _number("RandomUniform", "minval", minval)
        self.maxval = _number("RandomUniform", "maxval", maxval)

    def __call__(self, shape, dtype, rng):
        return rng.uniform(self.minval, self.maxval, shape).astype(dtype)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval}


def _truncated_normal(rng, shape, stddev):
    """N(0, stddev**2) redrawn outside two standard deviations."""
    out = rng.normal(0.0, stddev, shape)
    bad = np.abs(out) > 2 * stddev
    while bad.any():
        out[bad] = rng.normal(0.0, stddev, int(bad.sum()))
        bad = np.abs(out) > 2 * stddev
    return out


class TruncatedNormal(Initializer):
    """N(mean, stddev**2) with values beyond two standard deviations redrawn."""

    def __init__(self, mean=0.0, stddev=0.05):
        self.mean = _number("TruncatedNormal", "mean", mean)
        self.stddev = _number("TruncatedNormal", "stddev", stddev)

    def __call__(self, shape, dtype, rng):
        return (self.mean + _truncated_normal(rng, shape, self.stddev)).astype(dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev}


class VarianceScaling(Initializer):
    """Variance ``scale / n`` where n is fan_in, fan_out or their average.

    Args:
        scale: Scaling factor.
        mode: ``'fan_in'``, ``'fan_out'`` or ``'fan_avg'``.
        distribution: ``'truncated_normal'``, ``'untruncated_normal'`` or ``'uniform'``.
    """

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal"):
        if scale <= 0:
            raise ValueError(f"VarianceScaling: scale must be positive. Received: scale={scale}")
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"VarianceScaling: mode must be fan_in, fan_out or fan_avg. "
                             f"Received: mode={mode!r}")
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform", "normal"):
            raise ValueError(f"VarianceScaling: unknown distribution. Received: "
                             f"distribution={distribution!r}")
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def __call__(self, shape, dtype, rng):
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        n = max(1.0, n)
        var = self.scale / n
        if self.distribution in ("truncated_normal", "normal"):
            # stddev of a N(0,1) truncated to [-2, 2]
            return _truncated_normal(rng, shape, math.sqrt(var) / 0.87962566103423978) \
                .astype(dtype)
        if self.distribution == "untruncated_normal":
            return rng.normal(0.0, math.sqrt(var), shape).astype(dtype)
        limit = math.sqrt(3.0 * self.scale / n)
        return rng.uniform(-limit, limit, shape).astype(dtype)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution}


class GlorotUniform(VarianceScaling):
    """Glorot/Xavier uniform: U[-l, l] with l = sqrt(6 / (fan_in + fan_out))."""

    def __init__(self):
        super().__init__(1.0, "fan_avg", "uniform")

    def get_config(self):
        return {}


class GlorotNormal(VarianceScaling):
    """Glorot/Xavier normal (truncated), stddev sqrt(2 / (fan_in + fan_out))."""

    def __init__(self):
        super().__init__(1.0, "fan_avg", "truncated_normal")

    def get_config(self):
        return {}


class HeUniform(VarianceScaling):
    """He/MSRA uniform: U[-l, l] with l = sqrt(6 / fan_in)."""

    def __init__(self):
        super().__init__(2.0, "fan_in", "uniform")

    def get_config(self):
        return {}


class HeNormal(VarianceScaling):
    """He/MSRA normal (truncated), stddev sqrt(2 / fan_in)."""

    def __init__(self):
        super().__init__(2.0, "fan_in", "truncated_normal")

    def get_config(self):
        return {}


class LecunUniform(VarianceScaling):
    """LeCun uniform: U[-l, l] with l = sqrt(3 / fan_in)."""

    def __init__(self):
        super().__init__(1.0, "fan_in", "uniform")

    def get_config(self):
        return {}


class LecunNormal(VarianceScaling):
    """LeCun normal (truncated), stddev sqrt(1 / fan_in)."""

    def __init__(self):
        super().__init__(1.0, "fan_in", "truncated_normal")

    def get_config(self):
        return {}


class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix over (out, in*kernel), times ``gain``.

    Args:
        gain: Multiplier.
        method: ``'qr'`` (Keras: the QR decomposition of a normal
            ``(max, min)`` matrix, signs fixed by R's diagonal) or ``'svd'``
            (MXNet: the singular vectors of an ``(out, in*kernel)`` matrix).
        distribution: The source matrix for ``'svd'``: ``'normal'`` (N(0, 1))
            or ``'uniform'`` (U(-1, 1)).
    """

    def __init__(self, gain=1.0, method="qr", distribution="normal"):
        if method not in ("qr", "svd"):
            raise ValueError(f"Orthogonal: method must be 'qr' or 'svd'. Received: "
                             f"method={method!r}")
        if distribution not in ("normal", "uniform"):
            raise ValueError(f"Orthogonal: distribution must be 'normal' or 'uniform'. "
                             f"Received: distribution={distribution!r}")
        self.gain, self.method, self.distribution = float(gain), method, distribution

    def __call__(self, shape, dtype, rng):
        if len(shape) < 2:
            raise ValueError(f"Orthogonal needs a weight of rank >= 2, got shape {tuple(shape)}")
        rows, cols = shape[0], int(np.prod(shape[1:]))
        if self.method == "svd":
            source = rng.uniform(-1.0, 1.0, (rows, cols)) if self.distribution == "uniform" \
                else rng.normal(0.0, 1.0, (rows, cols))
            u, _, v = np.linalg.svd(source, full_matrices=False)
            q = u if u.shape == (rows, cols) else v
            return (self.gain * q).reshape(shape).astype(dtype)
        a = rng.normal(0.0, 1.0, (max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q[:rows, :cols]).reshape(shape).astype(dtype)

    def get_config(self):
        config = {"gain": self.gain}
        if self.method != "qr":
            config.update(method=self.method, distribution=self.distribution)
        return config


class Identity(Initializer):
    """``gain`` times the identity matrix (2-D weights only)."""

    def __init__(self, gain=1.0):
        self.gain = float(gain)

    def __call__(self, shape, dtype, rng):
        if len(shape) != 2:
            raise ValueError(f"Identity needs a 2-D weight, got shape {tuple(shape)}")
        return (self.gain * np.eye(*shape)).astype(dtype)

    def get_config(self):
        return {"gain": self.gain}


class Bilinear(Initializer):
    """Bilinear upsampling kernels for (C, 1 or C, k, k) deconvolution weights (MXNet).

    Every ``(h, w)`` kernel is ``(1 - |x / f - c|) * (1 - |y / f - c|)`` with
    ``f = ceil(w / 2)`` and ``c = (2f - 1 - f % 2) / 2f``.
    """

    def __call__(self, shape, dtype, rng):
        if len(shape) != 4:
            raise ValueError(f"Bilinear needs a 4-D weight, got shape {tuple(shape)}")
        k = shape[3]
        f = math.ceil(k / 2.0)
        c = (2 * f - 1 - f % 2) / (2.0 * f)
        ys, xs = np.meshgrid(np.arange(shape[2]), np.arange(k), indexing="ij")
        kernel = (1 - np.abs(xs / f - c)) * (1 - np.abs(ys / f - c))
        return np.broadcast_to(kernel, shape).astype(dtype).copy()


_ALIASES = {
    "zeros": Zeros, "zero": Zeros, "ones": Ones, "one": Ones, "constant": Constant,
    "random_normal": RandomNormal, "normal": RandomNormal, "random_uniform": RandomUniform,
    "uniform": RandomUniform, "truncated_normal": TruncatedNormal,
    "variance_scaling": VarianceScaling, "glorot_uniform": GlorotUniform,
    "xavier_uniform": GlorotUniform, "xavier": GlorotUniform, "glorot_normal": GlorotNormal,
    "xavier_normal": GlorotNormal, "he_uniform": HeUniform, "msra_uniform": HeUniform,
    "he_normal": HeNormal, "msra": HeNormal, "msra_normal": HeNormal,
    "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal, "orthogonal": Orthogonal,
    "identity": Identity, "bilinear": Bilinear,
}
_CLASSES = {cls.__name__: cls for cls in set(_ALIASES.values())}


def get(identifier):
    """An initializer from a name, a ``{'class_name', 'config'}`` dict, or itself."""
    if isinstance(identifier, Initializer) or (callable(identifier)
                                              and not isinstance(identifier, (str, dict))):
        return identifier
    if isinstance(identifier, dict):
        cls = _CLASSES.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"unknown initializer class {identifier.get('class_name')!r}")
        return cls.from_config(identifier.get("config", {}))
    if isinstance(identifier, str):
        cls = _ALIASES.get(identifier.lower()) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(f"unknown initializer {identifier!r}"
                             f"{did_you_mean(identifier, _ALIASES)}; known: "
                             f"{', '.join(sorted(_ALIASES))}")
        return cls()
    raise TypeError(f"cannot interpret {identifier!r} as an initializer")


def serialize(initializer):
    """``{'class_name', 'config'}`` of an initializer (for model configs)."""
    return {"class_name": type(initializer).__name__, "config": initializer.get_config()}
