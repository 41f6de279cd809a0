"""Public test helpers, for deepkit's own tests and for users' custom ops.

``assert_almost_equal`` reports the worst element; ``check_op_forward`` runs
an op through ``nd`` and compares it with a float64 numpy reference;
``available_contexts`` lists the devices a test should run on.
"""
import numpy as np

from .context import cpu, gpu, num_gpus

__all__ = [
    "assert_almost_equal", "default_context", "available_contexts", "default_tolerances",
    "check_op_forward", "to_numpy",
]

_TOLERANCES = {
    np.dtype(np.float16): (1e-2, 1e-2),
    np.dtype(np.float32): (1e-4, 1e-5),
    np.dtype(np.float64): (1e-7, 1e-9),
}


def default_tolerances(dtype):
    """``(rtol, atol)`` suited to ``dtype`` (exact for integers and bools)."""
    return _TOLERANCES.get(np.dtype(dtype), (0.0, 0.0))


def default_context():
    """The context tests run on by default: ``cpu()``."""
    return cpu()


def available_contexts():
    """``[cpu()]`` plus ``gpu(0)`` when cupy and a CUDA device are present."""
    return [cpu()] + ([gpu(0)] if num_gpus() > 0 else [])


def to_numpy(value):
    """A numpy array from an NDArray, a cupy array or anything array-like."""
    if hasattr(value, "asnumpy"):
        return value.asnumpy()
    if hasattr(value, "get") and not isinstance(value, np.ndarray):
        return value.get()
    return np.asarray(value)


def assert_almost_equal(actual, expected, rtol=None, atol=None, names=("actual", "expected"),
                        equal_nan=True):
    """Assert ``|actual - expected| <= atol + rtol * |expected|`` elementwise.

    The failure message gives the shapes, the worst index, both values there,
    the error and the tolerances (default: by the dtype of ``actual``).
    """
    a, b = to_numpy(actual), to_numpy(expected)
    if a.shape != b.shape:
        raise AssertionError(f"shape mismatch: {names[0]} {a.shape} vs {names[1]} {b.shape}")
    d_rtol, d_atol = default_tolerances(a.dtype if a.dtype.kind == "f" else b.dtype)
    rtol = d_rtol if rtol is None else rtol
    atol = d_atol if atol is None else atol
    if a.size == 0:
        return
    a64 = a.astype(np.float64) if a.dtype.kind in "biuf" else a
    b64 = b.astype(np.float64) if b.dtype.kind in "biuf" else b
    if a.dtype.kind not in "biufc" or b.dtype.kind not in "biufc":
        if not np.array_equal(a, b):
            raise AssertionError(f"{names[0]} and {names[1]} differ:\n{a}\n{b}")
        return
    close = np.isclose(a64, b64, rtol=rtol, atol=atol, equal_nan=equal_nan)
    if close.all():
        return
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(a64 - b64)
        excess = err - (atol + rtol * np.abs(b64))
    excess = np.where(np.isnan(excess), np.inf, excess)
    excess = np.where(close, -np.inf, excess)
    worst = np.unravel_index(int(np.argmax(excess)), a.shape) if a.ndim else ()
    raise AssertionError(
        f"arrays not almost equal (rtol={rtol}, atol={atol}): "
        f"{int((~close).sum())} of {a.size} elements differ; worst at index {worst}: "
        f"{names[0]}={a64[worst]!r}, {names[1]}={b64[worst]!r}, "
        f"|diff|={err[worst]!r}; shapes {a.shape} {a.dtype} vs {b.shape} {b.dtype}")


def check_op_forward(op_name, inputs, reference, params=None, ctx=None, rtol=None, atol=None):
    """Run ``nd.<op_name>(*inputs, **params)`` and compare with ``reference``.

    Args:
        op_name: A registered op name.
        inputs: numpy arrays (their dtypes are kept).
        reference: ``reference(*float64_inputs, **params)`` returning one
            numpy array or a tuple of them, computed in float64 for float
            inputs.
        params: Op parameters.
        ctx: Device to run on (default cpu).

    Returns:
        The op's outputs as a list of numpy arrays.
    """
    from . import ndarray as nd  # noqa: PLC0415
    params = dict(params or {})
    ctx = ctx or default_context()
    nd_inputs = [nd.array(x, ctx=ctx, dtype=x.dtype) for x in inputs]
    result = getattr(nd, op_name)(*nd_inputs, **params)
    outs = result if isinstance(result, (list, tuple)) else [result]
    ref_inputs = [x.astype(np.float64) if x.dtype.kind == "f" else x for x in inputs]
    expected = reference(*ref_inputs, **params)
    expected = expected if isinstance(expected, (list, tuple)) else [expected]
    if len(expected) != len(outs):
        raise AssertionError(f"{op_name}: {len(outs)} outputs but the reference gave "
                             f"{len(expected)}")
    got = [o.asnumpy() for o in outs]
    for i, (g, e) in enumerate(zip(got, expected)):
        e = np.asarray(e)
        assert_almost_equal(g, e.astype(g.dtype) if g.dtype.kind in "biu" else e, rtol, atol,
                            names=(f"{op_name} output {i}", "numpy reference"))
    return got
