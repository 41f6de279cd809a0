"""Random sampling ops: uniform, normal, randint, bernoulli, exponential, gamma, poisson,
(generalized) negative binomial, multinomial, shuffle.

Every op here declares ``resources=("rng",)``: its kernel receives ``rng=``,
the context's generator from :mod:`deepkit_engine.random` (a numpy
``Generator`` on CPU, a ``cupy.random.RandomState`` on GPU). The engine
orders random work through that generator's variable, so after
``random.seed(n)`` a sequence of draws is the same run after run, on the
threaded engine as on the naive one. The helpers below hide the two
generators' different method names.

The sampling ops without inputs take ``shape`` (default ``(1,)``: MXNet 1.x's
``nd.random.uniform()`` also returns one element) and ``dtype`` (default
float32). None of these ops has a gradient (``differentiable=False``): the
samples do not depend differentiably on the parameters, and ``shuffle`` does
not keep its permutation; the gradient pass stops at them.
"""
import numpy as np

from ..base import DTypeError, ParamError, ShapeError
from .indexing import check_index_capacity
from .registry import DType, OpDef, Param, REQUIRED, Shape, register, write_result
from .elementwise import apply_ufunc

__all__ = ["uniform01", "standard_normal", "integers", "permutation"]

_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


# -- backend-neutral generator helpers ---------------------------------------------

def _is_numpy(rng):
    return isinstance(rng, np.random.Generator)


def _float_dtype(dtype):
    """The dtype to draw in: float32/float64 directly, anything else via float64."""
    dtype = np.dtype(dtype)
    return dtype if dtype == _F32 or dtype == _F64 else _F64


def uniform01(rng, shape, dtype=_F64):
    """Samples of U[0, 1) with ``shape``, drawn in float32 or float64."""
    dtype = _float_dtype(dtype)
    if _is_numpy(rng):
        return rng.random(shape, dtype=dtype)
    return rng.random_sample(shape, dtype=dtype)


def standard_normal(rng, shape, dtype=_F64):
    """Samples of N(0, 1) with ``shape``, drawn in float32 or float64."""
    return rng.standard_normal(shape, dtype=_float_dtype(dtype))


def integers(rng, low, high, shape):
    """int64 samples from [low, high)."""
    if _is_numpy(rng):
        return rng.integers(low, high, size=shape, dtype=np.int64)
    return rng.randint(low, high, size=shape, dtype=np.int64)


def permutation(rng, n):
    """A random permutation of ``range(n)``."""
    return rng.permutation(n)


def _fill(xp, out, req, values):
    if req != "null":
        write_result(xp, out, values, req)


# -- declarations shared by the ops without inputs ---------------------------------

def _sample_params(dtype, doc):
    return {"shape": Param(Shape, (1,), "Shape of the output.", min=0),
            "dtype": Param(DType, dtype, doc)}


def _no_input_shape(check=None):
    def infer_shape(attrs, in_shapes):
        if check is not None:
            check(attrs)
        return [], [tuple(attrs.shape)]
    return infer_shape


def _no_input_type(kinds, what):
    def infer_type(attrs, in_dtypes):
        dtype = np.dtype(attrs.dtype)  # a default stays as declared (a string)
        if dtype.kind not in kinds:
            raise DTypeError(f"param dtype={dtype.name} is not supported; {what}",
                             argument="dtype", expected=what, actual=dtype)
        return [], [dtype]
    return infer_type


# -- uniform ------------------------------------------------------------------------

def _check_uniform(attrs):
    if attrs.low > attrs.high:
        raise ParamError(f"random_uniform: param low={attrs.low} must be <= high={attrs.high}",
                         op="random_uniform", param="low", value=attrs.low)


def _uniform_forward(xp, attrs, inputs, outputs, req, rng):
    out = outputs[0]
    if req[0] == "null":
        return
    if req[0] == "write" and _is_numpy(rng) and out.dtype in (_F32, _F64) \
            and out.flags.c_contiguous:
        rng.random(dtype=out.dtype, out=out)  # straight into the output
        values = out
    else:
        values = uniform01(rng, out.shape, out.dtype)
    if attrs.low != 0.0 or attrs.high != 1.0:
        values *= attrs.high - attrs.low
        values += attrs.low
    if values is not out:
        write_result(xp, out, values, req[0])


register(OpDef(
    "random_uniform", _uniform_forward, inputs=(),
    params={"low": Param(float, 0.0, "Lower bound (inclusive)."),
            "high": Param(float, 1.0, "Upper bound (exclusive)."),
            **_sample_params("float32", "Output dtype (a float type).")},
    infer_shape=_no_input_shape(_check_uniform),
    infer_type=_no_input_type("f", "random_uniform draws float16, float32 or float64"),
    aliases=("uniform", "_random_uniform"), resources=("rng",), differentiable=False,
    doc="Samples drawn uniformly from [low, high)."))


# -- normal -------------------------------------------------------------------------

def _normal_forward(xp, attrs, inputs, outputs, req, rng):
    out = outputs[0]
    if req[0] == "null":
        return
    if req[0] == "write" and _is_numpy(rng) and out.dtype in (_F32, _F64) \
            and out.flags.c_contiguous:
        rng.standard_normal(dtype=out.dtype, out=out)
        values = out
    else:
        values = standard_normal(rng, out.shape, out.dtype)
    if attrs.scale != 1.0:
        values *= attrs.scale
    if attrs.loc != 0.0:
        values += attrs.loc
    if values is not out:
        write_result(xp, out, values, req[0])


register(OpDef(
    "random_normal", _normal_forward, inputs=(),
    params={"loc": Param(float, 0.0, "Mean of the distribution."),
            "scale": Param(float, 1.0, "Standard deviation of the distribution.", min=0.0),
            **_sample_params("float32", "Output dtype (a float type).")},
    infer_shape=_no_input_shape(),
    infer_type=_no_input_type("f", "random_normal draws float16, float32 or float64"),
    aliases=("normal", "_random_normal"), resources=("rng",), differentiable=False,
    doc="Samples drawn from the normal distribution N(loc, scale**2)."))


# -- randint ------------------------------------------------------------------------

def _check_randint(attrs):
    if attrs.low >= attrs.high:
        raise ParamError(f"random_randint: param low={attrs.low} must be < high={attrs.high}",
                         op="random_randint", param="low", value=attrs.low)
    dtype = np.dtype(attrs.dtype)
    info = np.iinfo(dtype) if dtype.kind in "iu" else None
    if info is not None and (attrs.low < info.min or attrs.high - 1 > info.max):
        raise ParamError(f"random_randint: [low, high) = [{attrs.low}, {attrs.high}) does not "
                         f"fit dtype {dtype.name} ([{info.min}, {info.max}])",
                         op="random_randint", param="dtype", value=dtype)


def _randint_forward(xp, attrs, inputs, outputs, req, rng):
    out = outputs[0]
    if req[0] == "null":
        return
    _fill(xp, out, req[0], integers(rng, attrs.low, attrs.high, out.shape))


register(OpDef(
    "random_randint", _randint_forward, inputs=(),
    params={"low": Param(int, REQUIRED, "Lower bound (inclusive)."),
            "high": Param(int, REQUIRED, "Upper bound (exclusive)."),
            **_sample_params("int32", "Output dtype (an integer type).")},
    infer_shape=_no_input_shape(_check_randint),
    infer_type=_no_input_type("iu", "random_randint draws integer dtypes such as int32"),
    aliases=("_random_randint",), resources=("rng",), differentiable=False,
    doc="Integers drawn uniformly from [low, high)."))


# -- bernoulli ----------------------------------------------------------------------

def _bernoulli_forward(xp, attrs, inputs, outputs, req, rng):
    out = outputs[0]
    if req[0] == "null":
        return
    apply_ufunc(xp.less, (uniform01(rng, out.shape), attrs.prob), out, req[0])


register(OpDef(
    "random_bernoulli", _bernoulli_forward, inputs=(),
    params={"prob": Param(float, 0.5, "Probability of drawing 1.", min=0.0, max=1.0),
            **_sample_params("float32", "Output dtype (floats, integers or bool).")},
    infer_shape=_no_input_shape(),
    infer_type=_no_input_type("fiub", "random_bernoulli draws float, integer or bool dtypes"),
    resources=("rng",), differentiable=False,
    doc="Samples of 1 (with probability `prob`) and 0."))


# -- sample_multinomial -------------------------------------------------------------

def _multinomial_outputs(attrs):
    return ("output", "prob") if attrs.get_prob else ("output",)


def _multinomial_shape(attrs, in_shapes):
    (data,) = in_shapes
    n_out = 2 if attrs.get_prob else 1
    if data is None:
        return in_shapes, [None] * n_out
    if len(data) == 0:
        raise ShapeError("data must have at least 1 dimension (the categories), got a 0-d "
                         "input", argument="data", expected="(..., K)", actual=tuple(data))
    shape = tuple(attrs.shape)
    if len(data) == 1 and not shape:
        out = (1,)  # as MXNet 1.x: one distribution, one sample, shape (1,)
    else:
        out = tuple(data[:-1]) + shape
    if data[-1] == 0 and int(np.prod(out)) > 0:
        raise ShapeError("data has 0 categories along its last axis; nothing to sample",
                         argument="data", expected="data.shape[-1] > 0", actual=tuple(data))
    if data[-1]:
        check_index_capacity(attrs.dtype, data[-1] - 1, "category indices")
    return in_shapes, [out] * n_out


def _multinomial_type(attrs, in_dtypes):
    data = in_dtypes[0]
    if data is not None and np.dtype(data).kind != "f":
        raise DTypeError(f"data must hold float probabilities, got {np.dtype(data).name}",
                         argument="data", expected="float", actual=data)
    if attrs.get_prob:
        return in_dtypes, [np.dtype(attrs.dtype), data]
    return in_dtypes, [np.dtype(attrs.dtype)]


def _multinomial_forward(xp, attrs, inputs, outputs, req, rng):
    data = inputs[0]
    k = data.shape[-1]
    out = outputs[0]
    rows = data.size // k if k else 0
    per_row = out.size // rows if rows else 0
    if out.size == 0:
        return
    p = data.reshape(rows, k).astype(np.float64)
    cdf = xp.cumsum(p, axis=1)
    total = cdf[:, -1:].copy()
    cdf /= total
    # One searchsorted for all rows: row r's CDF is shifted into [r, r + 1].
    shift = xp.arange(rows, dtype=np.float64)[:, None]
    u = uniform01(rng, (rows, per_row)) + shift
    pos = xp.searchsorted((cdf + shift).ravel(), u.ravel(), side="right").reshape(rows, per_row)
    samples = pos - xp.arange(rows, dtype=pos.dtype)[:, None] * k
    xp.clip(samples, 0, k - 1, out=samples)  # u rounded up to r + 1
    _fill(xp, out, req[0], samples.reshape(out.shape))
    if attrs.get_prob:
        picked = xp.take_along_axis(p, samples, axis=1) / total
        _fill(xp, outputs[1], req[1], xp.log(picked).reshape(out.shape))


register(OpDef(
    "sample_multinomial", _multinomial_forward, outputs=_multinomial_outputs,
    params={"shape": Param(Shape, (), "Samples drawn per distribution (their shape).", min=0),
            "get_prob": Param(bool, False, "Also return the log-probability of each sample."),
            "dtype": Param(DType, "int32", "Dtype of the sampled category indices.",
                           choices=("float16", "float32", "float64", "int32", "uint8"))},
    infer_shape=_multinomial_shape, infer_type=_multinomial_type,
    aliases=("_sample_multinomial",), resources=("rng",), differentiable=False,
    doc="Category indices drawn from the distributions in `data` (probabilities over its "
        "last axis, normalized to sum to 1); the output shape is "
        "``data.shape[:-1] + shape``."))


# -- shuffle ------------------------------------------------------------------------

def _shuffle_forward(xp, attrs, inputs, outputs, req, rng):
    data = inputs[0]
    out = outputs[0]
    if data.ndim == 0 or data.shape[0] <= 1:
        _fill(xp, out, req[0], data)
        return
    perm = permutation(rng, data.shape[0])
    if req[0] == "write" and out.flags.c_contiguous:
        xp.take(data, perm, axis=0, out=out)
    else:
        _fill(xp, out, req[0], data[perm])


register(OpDef(
    "shuffle", _shuffle_forward, aliases=("_shuffle",), resources=("rng",),
    differentiable=False,
    doc="`data` with its first axis randomly permuted (rows move whole). It has no gradient "
        "(the permutation is not kept), so autograd and executors stop at it; to "
        "differentiate through a shuffle, draw the permutation yourself and use take."))


# -- exponential, gamma, poisson, negative binomial ------------------------------------

def _positive(name, *params):
    def check(attrs):
        for p in params:
            if getattr(attrs, p) <= 0:
                raise ParamError(f"{name}: param {p}={getattr(attrs, p)} must be > 0",
                                 op=name, param=p, value=getattr(attrs, p))
    return check


def _draw(rng, method, shape, *args):
    """``rng.<method>(*args, size=shape)``: both generators share these names."""
    return getattr(rng, method)(*args, size=shape)


def _sampler(method, arguments):
    def forward(xp, attrs, inputs, outputs, req, rng):
        out = outputs[0]
        if req[0] != "null":
            values = _draw(rng, method, out.shape, *arguments(attrs))
            write_result(xp, out, values.astype(out.dtype, copy=False), req[0])
    return forward


def _negative_binomial_args(attrs):
    return attrs.k, attrs.p


def _generalized_negative_binomial_forward(xp, attrs, inputs, outputs, req, rng):
    out = outputs[0]
    if req[0] == "null":
        return
    if attrs.alpha == 0:
        rates = xp.full(out.shape, attrs.mu, np.float64)
    else:
        rates = _draw(rng, "gamma", out.shape, 1.0 / attrs.alpha, attrs.alpha * attrs.mu)
    write_result(xp, out, _draw(rng, "poisson", None, rates).astype(out.dtype, copy=False),
                 req[0])


def _register_sampler(name, forward, params, check, doc):
    register(OpDef(
        name, forward, inputs=(),
        params={**params, **_sample_params("float32", "Output dtype.")},
        infer_shape=_no_input_shape(check),
        infer_type=_no_input_type("fiu", f"{name} draws float or integer dtypes"),
        aliases=("_" + name,), resources=("rng",), differentiable=False, doc=doc))


_register_sampler(
    "random_exponential", _sampler("exponential", lambda a: (1.0 / a.lam,)),
    {"lam": Param(float, 1.0, "Rate lambda (the mean is 1/lambda).")},
    _positive("random_exponential", "lam"),
    "Samples of the exponential distribution with rate ``lam``.")
_register_sampler(
    "random_gamma", _sampler("gamma", lambda a: (a.alpha, a.beta)),
    {"alpha": Param(float, 1.0, "Shape alpha."), "beta": Param(float, 1.0, "Scale beta.")},
    _positive("random_gamma", "alpha", "beta"),
    "Samples of the gamma distribution with shape ``alpha`` and scale ``beta`` (mean "
    "alpha * beta).")
_register_sampler(
    "random_poisson", _sampler("poisson", lambda a: (a.lam,)),
    {"lam": Param(float, 1.0, "Rate lambda (the mean).", min=0.0)}, None,
    "Samples of the Poisson distribution with rate ``lam``, as floats by default (MXNet).")
_register_sampler(
    "random_negative_binomial", _sampler("negative_binomial", _negative_binomial_args),
    {"k": Param(int, 1, "Number of successes to wait for.", min=1),
     "p": Param(float, 1.0, "Success probability of each trial.", min=0.0, max=1.0)}, None,
    "Samples of the negative binomial distribution: failures before the ``k``-th success, "
    "each trial succeeding with probability ``p`` (mean k(1-p)/p).")
_register_sampler(
    "random_generalized_negative_binomial", _generalized_negative_binomial_forward,
    {"mu": Param(float, 1.0, "Mean mu.", min=0.0),
     "alpha": Param(float, 1.0, "Dispersion alpha (0: Poisson).", min=0.0)}, None,
    "Samples of the generalized negative binomial distribution: Poisson with a "
    "gamma(1/alpha, alpha*mu) distributed rate (mean mu, variance mu + alpha mu^2).")
