"""Public test helpers, for deepkit's own tests and for users' custom ops.

``assert_almost_equal`` reports the worst element; ``check_op_forward`` runs
an op through ``nd`` and compares it with a float64 numpy reference;
``available_contexts`` lists the devices a test should run on.
"""
import numpy as np

from . import ndarray as nd
from .context import cpu, gpu, num_gpus

__all__ = [
    "assert_almost_equal", "default_context", "available_contexts", "default_tolerances",
    "check_op_forward", "to_numpy", "check_numeric_gradient", "check_symbolic_forward",
    "check_symbolic_backward",
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


def _bind_for_check(sym, location, aux_states, ctx, dtype, grad_nodes):
    names = sym.list_arguments()
    if isinstance(location, (list, tuple)):
        location = dict(zip(names, location))
    location = {k: np.asarray(v) for k, v in location.items()}
    args = {}
    for k, v in location.items():
        t = dtype if v.dtype.kind == "f" else v.dtype
        args[k] = nd.array(v, ctx=ctx, dtype=t)
    if grad_nodes is None:
        grad_nodes = [k for k in names if location[k].dtype.kind == "f"]
    grads = {k: nd.zeros(args[k].shape, ctx=ctx, dtype=args[k].dtype) for k in grad_nodes}
    reqs = {k: ("write" if k in grad_nodes else "null") for k in names}
    aux = None
    if aux_states is not None:
        aux_names = sym.list_auxiliary_states()
        if isinstance(aux_states, (list, tuple)):
            aux_states = dict(zip(aux_names, aux_states))
        aux = {k: nd.array(v, ctx=ctx, dtype=dtype) for k, v in aux_states.items()}
    exe = sym.bind(ctx, args, args_grad=grads, grad_req=reqs, aux_states=aux)
    return exe, location, grad_nodes


def check_numeric_gradient(sym, location, aux_states=None, numeric_eps=1e-4, rtol=1e-4,
                           atol=1e-6, grad_nodes=None, ctx=None, dtype=np.float64, seed=0,
                           is_train=True):
    """Compare a symbol's gradients with central finite differences.

    The symbol's outputs are projected on fixed random directions ``r`` to a
    scalar ``sum(out * r)``; its gradient from ``backward(out_grads=r)`` must
    match ``(f(x + eps) - f(x - eps)) / 2eps`` for every element of every
    checked input. Loss heads (SoftmaxOutput, ...) define their own gradient
    and are checked against the numeric gradient of their declared loss by
    their own tests, not here.

    Args:
        sym: The Symbol to check.
        location: ``{arg name: numpy array}`` or a list in argument order.
        aux_states: Auxiliary states, if the symbol has any.
        numeric_eps: Finite-difference step.
        rtol, atol: Tolerances of the comparison.
        grad_nodes: Arguments to check (default: every float argument).
        ctx: Device (default cpu).
        dtype: Dtype the check runs in (float64 keeps it precise).
    """
    ctx = ctx or default_context()
    exe, location, grad_nodes = _bind_for_check(sym, location, aux_states, ctx, dtype,
                                                grad_nodes)
    outs = exe.forward(is_train=is_train)
    rng = np.random.default_rng(seed)
    projections = [rng.uniform(-1.0, 1.0, size=o.shape) for o in outs]

    def loss():
        values = exe.forward(is_train=is_train)
        return sum(float((to_numpy(v).astype(np.float64) * p).sum())
                   for v, p in zip(values, projections))
    exe.forward(is_train=True)
    exe.backward([nd.array(p, ctx=ctx, dtype=o.dtype) for p, o in zip(projections, outs)])
    symbolic = {k: exe.grad_dict[k].asnumpy().astype(np.float64) for k in grad_nodes}
    for name in grad_nodes:
        arr = exe.arg_dict[name]
        base = location[name].astype(np.float64)
        numeric = np.zeros(base.shape)
        flat = base.reshape(-1)
        for i in range(flat.size):
            orig = flat[i]
            flat[i] = orig + numeric_eps
            arr[:] = base.astype(arr.dtype)
            plus = loss()
            flat[i] = orig - numeric_eps
            arr[:] = base.astype(arr.dtype)
            minus = loss()
            flat[i] = orig
            numeric.reshape(-1)[i] = (plus - minus) / (2 * numeric_eps)
        arr[:] = base.astype(arr.dtype)
        assert_almost_equal(symbolic[name], numeric, rtol=rtol, atol=atol,
                            names=(f"symbolic gradient of '{name}'",
                                   f"numeric gradient of '{name}'"))


def check_symbolic_forward(sym, location, expected, rtol=None, atol=None, aux_states=None,
                           ctx=None, dtype=np.float32, is_train=False):
    """Bind ``sym`` at ``location``, run forward and compare with ``expected`` outputs."""
    ctx = ctx or default_context()
    exe, _, _ = _bind_for_check(sym, location, aux_states, ctx, dtype, [])
    outs = exe.forward(is_train=is_train)
    expected = expected if isinstance(expected, (list, tuple)) else [expected]
    for i, (o, e) in enumerate(zip(outs, expected)):
        assert_almost_equal(o, np.asarray(e), rtol, atol,
                            names=(f"output {i}", f"expected output {i}"))
    return [o.asnumpy() for o in outs]


def check_symbolic_backward(sym, location, out_grads, expected, rtol=None, atol=None,
                            aux_states=None, grad_nodes=None, ctx=None, dtype=np.float32):
    """Run forward and backward with ``out_grads``; compare gradients with ``expected``.

    ``expected`` is ``{arg name: numpy array}`` or a list in the order of
    ``grad_nodes`` (default: every float argument).
    """
    ctx = ctx or default_context()
    exe, _, grad_nodes = _bind_for_check(sym, location, aux_states, ctx, dtype, grad_nodes)
    exe.forward(is_train=True)
    out_grads = out_grads if isinstance(out_grads, (list, tuple)) else [out_grads]
    exe.backward([nd.array(g, ctx=ctx, dtype=dtype) for g in out_grads])
    if isinstance(expected, (list, tuple)):
        expected = dict(zip(grad_nodes, expected))
    for name, e in expected.items():
        assert_almost_equal(exe.grad_dict[name], np.asarray(e), rtol, atol,
                            names=(f"gradient of '{name}'", "expected"))
    return {k: exe.grad_dict[k].asnumpy() for k in grad_nodes}
