"""Checks of the matrix and shape ops (dot, reshape, concat, slice, ...) against numpy.

Forward values, numeric first-order gradients, second-order gradients through
autograd against analytic values, and the ``_backward_*`` ops the gradients
use (dot, concat, the slices).
"""
import numpy as np
import pytest

from deepkit_engine import autograd
from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import ShapeError
from deepkit_engine.ops import get_op
from deepkit_engine.ops.matrix import infer_reshape
from deepkit_engine.testing import assert_almost_equal

from .op_cases import OpCase, case_id, forward_params, gradient_params, run_forward
from .op_cases import run_gradient
from .test_reduce import check_kernel_requests


# -- references (plain numpy, independent of the kernels) -----------------------------

def _ref_dot(a, b, transpose_a=False, transpose_b=False):
    if a.ndim == 1 and b.ndim == 1:
        return np.array([np.sum(a * b)])
    lax = 0 if transpose_a and a.ndim > 1 else a.ndim - 1
    rax = b.ndim - 1 if transpose_b and b.ndim > 1 else 0
    return np.tensordot(a, b, axes=([lax], [rax]))


def _ref_batch_dot(a, b, transpose_a=False, transpose_b=False):
    lead = a.shape[:-2]
    batch = int(np.prod(lead))
    a2 = a.reshape((batch,) + a.shape[-2:])
    b2 = b.reshape((batch,) + b.shape[-2:])
    rows = []
    for i in range(a2.shape[0]):
        x = a2[i].T if transpose_a else a2[i]
        y = b2[i].T if transpose_b else b2[i]
        rows.append(np.einsum("ik,kj->ij", x, y))
    m = a.shape[-1] if transpose_a else a.shape[-2]
    n = b.shape[-2] if transpose_b else b.shape[-1]
    return np.array(rows).reshape(lead + (m, n))


def _ref_gemm2(a, b, transpose_a=False, transpose_b=False, alpha=1.0, axis=-2):
    a = np.swapaxes(a, axis, -2)
    b = np.swapaxes(b, axis, -2)
    out = alpha * _ref_batch_dot(a[None] if a.ndim == 2 else a, b[None] if b.ndim == 2 else b,
                                 transpose_a, transpose_b)
    out = out[0] if a.ndim == 2 else out
    return np.swapaxes(out, axis, -2)


def _ref_reshape(x, shape, reverse=False):
    return x.reshape(_RESHAPE_RESULTS[(x.shape, tuple(shape), reverse)])


def _ref_concat(*xs, dim=1):
    return np.concatenate(xs, axis=dim)


def _ref_stack(*xs, axis=0):
    return np.stack(xs, axis=axis)


def _ref_split(x, num_outputs, axis=1, squeeze_axis=False):
    parts = np.split(x, num_outputs, axis=axis)
    if squeeze_axis:
        parts = [np.squeeze(p, axis=axis) for p in parts]
    return parts


def _ref_slice(x, begin, end, step=()):
    key = tuple(slice(b, e, step[i] if step else None) for i, (b, e) in enumerate(zip(begin, end)))
    return x[key]


def _ref_tile(x, reps):
    reps = tuple(reps)
    if len(reps) < x.ndim:
        reps = (1,) * (x.ndim - len(reps)) + reps
    out = x.reshape((1,) * (len(reps) - x.ndim) + x.shape)
    for axis, r in enumerate(reps):
        out = np.concatenate([out] * r, axis=axis) if r else out.take([], axis=axis)
    return out


def _ref_repeat(x, repeats, axis=None):
    if axis is None:
        x, axis = x.reshape(-1), 0
    pieces = [np.take(x, [i], axis=axis) for i in range(x.shape[axis]) for _ in range(repeats)]
    if not pieces:
        shape = list(x.shape)
        shape[axis] = 0
        return np.zeros(shape)
    return np.concatenate(pieces, axis=axis)


# Output shapes from MXNet's Reshape documentation (input shape, shape, reverse) -> output.
_RESHAPE_DOCS = {
    ((2, 3, 4), (4, 0, 2), False): (4, 3, 2),
    ((2, 3, 4), (2, 0, 0), False): (2, 3, 4),
    ((2, 3, 4), (6, 1, -1), False): (6, 1, 4),
    ((2, 3, 4), (3, -1, 8), False): (3, 1, 8),
    ((2, 3, 4), (-1,), False): (24,),
    ((2, 3, 4), (-2,), False): (2, 3, 4),
    ((2, 3, 4), (2, -2), False): (2, 3, 4),
    ((2, 3, 4), (-2, 1, 1), False): (2, 3, 4, 1, 1),
    ((2, 3, 4), (-3, 4), False): (6, 4),
    ((2, 3, 4, 5), (-3, -3), False): (6, 20),
    ((2, 3, 4), (0, -3), False): (2, 12),
    ((2, 3, 4), (-3, -2), False): (6, 4),
    ((2, 3, 4), (-4, 1, 2, -2), False): (1, 2, 3, 4),
    ((2, 3, 4), (2, -4, -1, 3, -2), False): (2, 1, 3, 4),
    ((10, 5, 4), (-1, 0), False): (40, 5),
    ((10, 5, 4), (-1, 0), True): (50, 4),
}
_RESHAPE_RESULTS = dict(_RESHAPE_DOCS)
_RESHAPE_RESULTS.update({
    ((2, 3, 4), (-1, 2), True): (12, 2),
    ((2, 3, 4), (0, 0, -4, 2, -1), False): (2, 3, 2, 2),
    ((2, 3, 4), (-3, -1), True): (6, 4),
    ((6,), (2, 3), False): (2, 3),
    ((1,), (), False): (),
    ((0, 3), (-1, 3), False): (0, 3),
    ((2, 0, 3), (0, -3), False): (2, 0),
    ((1, 1), (-1,), False): (1,),
})


def _slice_axis_ref(x, axis, begin, end=None):
    key = [slice(None)] * x.ndim
    key[axis] = slice(begin, end)
    return x[tuple(key)]


CASES = [OpCase("dot", [a, b], _ref_dot, p) for a, b, p in [
    ((3, 4), (4, 5), {}),
    ((2, 3, 4), (4, 5), {}),
    ((3, 4), (4, 2, 5), {}),
    ((4,), (4, 5), {}),
    ((3, 4), (4,), {}),
    ((4,), (4,), {}),
    ((4, 3), (4, 5), {"transpose_a": True}),
    ((3, 4), (5, 4), {"transpose_b": True}),
    ((4, 3), (5, 4), {"transpose_a": True, "transpose_b": True}),
    ((4, 2, 3), (4, 5), {"transpose_a": True}),
    ((3, 4), (2, 5, 4), {"transpose_b": True}),
    ((4,), (5, 4), {"transpose_b": True}),
    ((1, 1), (1, 1), {}),
    ((0, 4), (4, 5), {}),
    ((3, 0), (0, 5), {}),
]]
CASES += [OpCase("batch_dot", [a, b], _ref_batch_dot, p) for a, b, p in [
    ((2, 3, 4), (2, 4, 5), {}),
    ((2, 4, 3), (2, 4, 5), {"transpose_a": True}),
    ((2, 3, 4), (2, 5, 4), {"transpose_b": True}),
    ((2, 4, 3), (2, 5, 4), {"transpose_a": True, "transpose_b": True}),
    ((1, 1, 1), (1, 1, 1), {}),
    ((0, 3, 4), (0, 4, 5), {}),
    ((2, 3, 0), (2, 0, 5), {}),
    ((2, 2, 3, 4), (2, 2, 4, 1), {}),
]]
CASES += [OpCase("linalg_gemm2", [a, b], _ref_gemm2, p) for a, b, p in [
    ((3, 4), (4, 5), {}),
    ((3, 4), (4, 5), {"alpha": 2.5}),
    ((2, 4, 3), (2, 5, 4), {"transpose_a": True, "transpose_b": True, "alpha": -0.5}),
    ((2, 2, 3, 4), (2, 2, 4, 5), {}),
    ((3, 2, 4), (4, 2, 5), {"axis": -3}),
    ((3, 2, 4), (5, 2, 4), {"axis": 0, "transpose_b": True, "alpha": 3.0}),
    ((0, 3, 4), (0, 4, 2), {}),
]]
CASES += [OpCase("transpose", [s], lambda x, axes=(): np.transpose(x, axes or None), p)
          for s, p in [((2, 3, 4), {}), ((2, 3, 4), {"axes": (1, 0, 2)}),
                       ((2, 3, 4), {"axes": (2, 0, 1)}), ((2, 3, 4), {"axes": (-1, 0, 1)}),
                       ((3,), {}), ((1, 4), {}), ((0, 3), {}), ((2, 0, 1), {"axes": (1, 2, 0)})]]
CASES += [OpCase("swapaxes", [s], lambda x, dim1=0, dim2=0: np.swapaxes(x, dim1, dim2), p)
          for s, p in [((2, 3, 4), {"dim1": 0, "dim2": 2}), ((2, 3, 4), {"dim1": -1, "dim2": 1}),
                       ((2, 3), {}), ((0, 3), {"dim1": 0, "dim2": 1}),
                       ((1, 5), {"dim1": 1, "dim2": 0})]]
CASES += [OpCase("reshape", [dshape], _ref_reshape, {"shape": shape, "reverse": rev})
          for dshape, shape, rev in _RESHAPE_RESULTS]
CASES += [OpCase("reshape_like", [a, b], ref, p) for a, b, p, ref in [
    ((2, 3, 4), (4, 6), {}, lambda x, y: x.reshape(y.shape)),
    ((6,), (2, 3), {}, lambda x, y: x.reshape(y.shape)),
    ((0, 3), (3, 0), {}, lambda x, y: x.reshape(y.shape)),
    ((30, 7), (15, 2, 4), {"lhs_begin": 0, "lhs_end": 1, "rhs_begin": 0, "rhs_end": 2},
     lambda x, y, **p: x.reshape(15, 2, 7)),
    ((2, 3, 4), (12, 9), {"lhs_begin": -2, "rhs_end": 1},
     lambda x, y, **p: x.reshape(2, 12)),
]]
CASES += [OpCase("flatten", [s], lambda x: x.reshape(x.shape[0], -1 if x.shape[0] else
                                                     int(np.prod(x.shape[1:]))))
          for s in [(2, 3, 4), (5,), (2, 0, 3), (1, 1), (0, 2, 2)]]
CASES += [OpCase("expand_dims", [s], lambda x, axis: np.expand_dims(x, axis), {"axis": a})
          for s, a in [((2, 3), 0), ((2, 3), -1), ((2, 3), 2), ((2, 3), -3), ((), 0),
                       ((0, 3), 1)]]
CASES += [OpCase("squeeze", [s], ref, p) for s, p, ref in [
    ((1, 3, 1), {}, lambda x: x.reshape(3)),
    ((1, 3, 1), {"axis": 0}, lambda x, axis: x.reshape(3, 1)),
    ((1, 3, 1), {"axis": (0, -1)}, lambda x, axis: x.reshape(3)),
    ((1, 1), {}, lambda x: x.reshape(1)),
    ((2, 0, 1), {"axis": 2}, lambda x, axis: x.reshape(2, 0)),
    ((2, 3), {}, lambda x: x),
]]
CASES += [OpCase("broadcast_to", [s], lambda x, shape, out=out: np.broadcast_to(x, out),
                 {"shape": t})
          for s, t, out in [((1, 3), (4, 3), (4, 3)), ((2, 1, 1), (2, 0, 5), (2, 1, 5)),
                            ((1,), (0,), (1,)), ((3, 1), (0, 0), (3, 1)),
                            ((1, 2), (0, 2), (1, 2)), ((0, 1), (0, 4), (0, 4)),
                            ((1, 1), (3, 2), (3, 2))]]
CASES += [OpCase("broadcast_axis", [s], lambda x, axis, size, out=out: np.broadcast_to(x, out),
                 {"axis": a, "size": z})
          for s, a, z, out in [((1, 3, 1), (0, 2), (2, 4), (2, 3, 4)),
                               ((2, 1), (-1,), (3,), (2, 3)),
                               ((2, 1), (1,), (0,), (2, 0)),
                               ((1,), (0,), (1,), (1,))]]
CASES += [OpCase("broadcast_like", [a, b], lambda x, y, out=out, **p: np.broadcast_to(x, out), p)
          for a, b, p, out in [((1, 3), (4, 3), {}, (4, 3)),
                               ((2, 1, 1), (2, 4, 5), {}, (2, 4, 5)),
                               ((1, 3), (2, 2, 5), {"lhs_axes": (0,), "rhs_axes": (2,)}, (5, 3)),
                               ((1, 1), (7, 2), {"lhs_axes": (-1, 0), "rhs_axes": (0, 1)},
                                (2, 7)),
                               ((1, 2), (0, 2), {}, (0, 2))]]
CASES += [OpCase("tile", [s], _ref_tile, {"reps": r}) for s, r in [
    ((2, 3), (2, 2)), ((2, 3), (3,)), ((2, 3), (2, 1, 2)), ((), (3,)), ((0, 2), (2, 2)),
    ((2, 3), (0, 2)), ((1,), (1,)), ((2, 1, 3), (1, 2))]]
CASES += [OpCase("repeat", [s], _ref_repeat, p) for s, p in [
    ((2, 3), {"repeats": 2}), ((2, 3), {"repeats": 2, "axis": 0}),
    ((2, 3), {"repeats": 3, "axis": -1}), ((2, 3), {"repeats": 0, "axis": 1}),
    ((0, 3), {"repeats": 2, "axis": 1}), ((1,), {"repeats": 4, "axis": 0})]]
CASES += [OpCase("flip", [s], lambda x, axis: np.flip(x, axis), {"axis": a}) for s, a in [
    ((3, 4), 0), ((2, 3, 4), (0, 2)), ((2, 3, 4), -1), ((0, 3), 1), ((1,), 0)]]
CASES += [OpCase("concat", shapes, _ref_concat, p) for shapes, p in [
    ([(2, 3), (4, 3)], {"dim": 0}),
    ([(2, 3), (2, 1), (2, 0)], {}),
    ([(2, 3, 4)] * 3, {"dim": -1}),
    ([(3,)], {"dim": 0}),
    ([(0, 2), (0, 3)], {"dim": 1}),
]]
CASES += [OpCase("stack", shapes, _ref_stack, p) for shapes, p in [
    ([(2, 3)] * 3, {}), ([(2, 3)] * 2, {"axis": 1}), ([(2, 3)] * 2, {"axis": -1}),
    ([(0,)] * 2, {}), ([()] * 4, {}), ([(1, 2)], {"axis": 2})]]
CASES += [OpCase("split", [s], _ref_split, p) for s, p in [
    ((4, 6), {"num_outputs": 2}),
    ((4, 6), {"num_outputs": 3, "axis": -1}),
    ((2, 3), {"num_outputs": 2, "axis": 0, "squeeze_axis": True}),
    ((2, 3), {"num_outputs": 1}),
    ((0, 4), {"num_outputs": 2}),
    ((3, 0), {"num_outputs": 3, "axis": 0}),
]]
CASES += [OpCase("slice", [s], _ref_slice, p) for s, p in [
    ((3, 4), {"begin": (0, 1), "end": (2, 3)}),
    ((3, 4), {"begin": (None,), "end": (None,), "step": (-1,)}),
    ((3, 4), {"begin": (None, None), "end": (None, None), "step": (2, -1)}),
    ((3, 4, 5), {"begin": (-2, 1), "end": (None, -1), "step": (1, 2)}),
    ((3, 4), {"begin": (5,), "end": (10,)}),
    ((0, 3), {"begin": (0, 1), "end": (None, 3)}),
    ((5,), {"begin": (4,), "end": (-6,), "step": (-2,)}),
]]
CASES += [OpCase("slice_axis", [s], _slice_axis_ref, p) for s, p in [
    ((3, 4), {"axis": 1, "begin": 1, "end": 3}),
    ((3, 4), {"axis": -1, "begin": -2, "end": None}),
    ((3, 4), {"axis": 0, "begin": 0, "end": -1}),
    ((2, 0), {"axis": 1, "begin": 0, "end": None}),
    ((1, 3), {"axis": 0, "begin": 0}),
]]
CASES += [OpCase("slice_like", [a, b],
                 lambda x, y, out=out, **p: x[tuple(slice(0, d) for d in out)], p)
          for a, b, p, out in [((4, 5), (2, 3), {}, (2, 3)),
                               ((4, 5), (2, 3), {"axes": (1,)}, (4, 3)),
                               ((3, 4, 5), (2, 3), {"axes": (0, -2)}, (2, 3, 5)),
                               ((2, 3), (0, 3), {}, (0, 3)),
                               ((2, 3), (2, 3), {}, (2, 3))]]


# -- gradient cases ------------------------------------------------------------------------

# The numeric gradient check costs two forward runs per input element: the larger forward
# cases skip it, and small cases of the same kinds check it instead.
def _input_size(case):
    return sum(x.size for x in case.make_inputs(np.random.default_rng(0), "float64"))


for _case in CASES:
    if _input_size(_case) > 30:
        _case.grad = False

_TA, _TB = {"transpose_a": True}, {"transpose_b": True}
_TAB = {"transpose_a": True, "transpose_b": True}
_SMALL_DOTS = [((2, 3), (3, 2), {}), ((2, 2, 3), (3, 2), {}), ((2, 3), (3, 2, 2), {}),
               ((3, 2), (3, 2), _TA), ((2, 3), (2, 3), _TB), ((3, 2), (2, 3), _TAB),
               ((3, 2, 2), (3, 2), _TA), ((2, 3), (2, 2, 3), _TB),
               ((3, 2, 2), (2, 2, 3), _TAB), ((3,), (3, 2), _TA), ((2, 3), (3,), _TB)]
CASES += [OpCase("dot", [a, b], _ref_dot, p, name="grad") for a, b, p in _SMALL_DOTS]
CASES += [OpCase("batch_dot", [a, b], _ref_batch_dot, p, name="grad") for a, b, p in [
    ((2, 2, 3), (2, 3, 2), {}), ((2, 3, 2), (2, 3, 2), _TA), ((2, 2, 3), (2, 2, 3), _TB),
    ((2, 3, 2), (2, 2, 3), _TAB), ((2, 1, 2, 3), (2, 1, 3, 2), {})]]
CASES += [OpCase("linalg_gemm2", [a, b], _ref_gemm2, p, name="grad") for a, b, p in [
    ((2, 3), (3, 2), {"alpha": 2.5}),
    ((2, 3, 2), (2, 2, 3), dict(_TAB, alpha=-0.5)),
    ((2, 2, 3), (3, 2, 2), {"axis": -3}),
    ((2, 2, 3), (2, 2, 3), {"axis": 0, "transpose_b": True, "alpha": 3.0})]]
CASES += [OpCase("reshape", [s], lambda x, shape, reverse, out=out: x.reshape(out),
                 {"shape": t, "reverse": r}, name="grad")
          for s, t, r, out in [((3, 2, 2), (-1, 0), True, (6, 2)),
                               ((2, 3, 2, 2), (-3, -3), False, (6, 4))]]
CASES += [OpCase("reshape_like", [a, b], lambda x, y, out=out, **p: x.reshape(out), p,
                 name="grad")
          for a, b, p, out in [
              ((2, 3, 2), (3, 4), {}, (3, 4)),
              ((6, 2), (3, 2, 1), {"lhs_begin": 0, "lhs_end": 1, "rhs_begin": 0, "rhs_end": 2},
               (3, 2, 2)),
              ((2, 3, 2), (6, 1), {"lhs_begin": -2, "rhs_end": 1}, (2, 6))]]
CASES += [OpCase("broadcast_like", [(2, 1, 1), (2, 2, 3)],
                 lambda x, y: np.broadcast_to(x, y.shape), name="grad"),
          OpCase("concat", [(2, 2, 2)] * 3, _ref_concat, {"dim": -1}, name="grad"),
          OpCase("slice", [(3, 3, 3)], _ref_slice,
                 {"begin": (-2, 1), "end": (None, -1), "step": (1, 2)}, name="grad"),
          OpCase("slice_like", [(3, 2, 3), (2, 1)], lambda x, y, **p: x[:2, :1], {"axes": (0, -2)},
                 name="grad")]


# -- the _backward_* ops --------------------------------------------------------------------

def _ref_backward_dot(g, a, b, transpose_a=False, transpose_b=False, wrt="lhs"):
    """d sum(g * dot(a, b)) / d(a or b), one basis element at a time (dot is linear)."""
    flags = {"transpose_a": transpose_a, "transpose_b": transpose_b}
    target = a if wrt == "lhs" else b
    out = np.zeros(target.shape)
    for idx in np.ndindex(*target.shape):
        e = np.zeros(target.shape)
        e[idx] = 1.0
        out[idx] = np.sum(g * (_ref_dot(e, b, **flags) if wrt == "lhs" else
                               _ref_dot(a, e, **flags)))
    return out


for _a, _b, _p in _SMALL_DOTS[::2] + [((3,), (3,), {}), ((0, 3), (3, 2), {}),
                                      ((2, 0), (0, 3), {})]:
    _g = _ref_dot(np.zeros(_a), np.zeros(_b), **_p).shape
    CASES += [OpCase("_backward_dot", [_g, _a, _b], _ref_backward_dot, dict(_p, wrt=w))
              for w in ("lhs", "rhs")]


def _ref_backward_concat(g, *xs, dim=1):
    offsets = np.cumsum([x.shape[dim] for x in xs])[:-1]
    return np.split(g, offsets, axis=dim)


CASES += [OpCase("_backward_concat", [_ref_concat(*[np.zeros(x) for x in xs], dim=d).shape]
                 + xs, _ref_backward_concat, {"dim": d})
          for xs, d in [([(2, 3), (4, 3)], 0), ([(2, 3), (2, 1), (2, 0)], 1),
                        ([(2, 2, 2)] * 2, -1), ([(3,)], 0)]]


def _ref_region(key_of):
    """Reference of the slicing ops' gradients: zeros shaped as x, g where the slice was."""
    def ref(g, x, **params):
        out = np.zeros(x.shape)
        out[key_of(x, g, **params)] = g
        return out
    return ref


def _slice_key(x, g, begin, end, step=()):
    return tuple(slice(b, e, step[i] if step else None) for i, (b, e) in enumerate(zip(begin,
                                                                                         end)))


def _slice_axis_key(x, g, axis, begin, end=None):
    return (slice(None),) * (axis % x.ndim) + (slice(begin, end),)


for _s, _p in [((3, 4), {"begin": (0, 1), "end": (2, 3)}),
               ((3, 4), {"begin": (None, None), "end": (None, None), "step": (2, -1)}),
               ((3, 3, 3), {"begin": (-2, 1), "end": (None, -1), "step": (1, 2)}),
               ((0, 3), {"begin": (0, 1), "end": (None, 3)}),
               ((5,), {"begin": (4,), "end": (-6,), "step": (-2,)})]:
    CASES.append(OpCase("_backward_slice", [_ref_slice(np.zeros(_s), **_p).shape, _s],
                        _ref_region(_slice_key), _p))
for _s, _p in [((3, 4), {"axis": 1, "begin": 1, "end": 3}),
               ((3, 4), {"axis": -1, "begin": -2, "end": None}),
               ((2, 0), {"axis": 1, "begin": 0, "end": None})]:
    CASES.append(OpCase("_backward_slice_axis", [_slice_axis_ref(np.zeros(_s), **_p).shape, _s],
                        _ref_region(_slice_axis_key), _p))
CASES += [OpCase("_backward_slice_like", [g, x],
                 _ref_region(lambda x, g: tuple(slice(0, d) for d in g.shape)))
          for g, x in [((2, 3), (4, 5)), ((3, 1, 5), (3, 4, 5)), ((0, 3), (2, 3)),
                       ((2, 3), (2, 3))]]


@pytest.mark.parametrize("case,dtype", forward_params(CASES))
def test_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)


@pytest.mark.parametrize("case", gradient_params(CASES))
def test_gradient(case, ctx):
    run_gradient(case, ctx)


@pytest.mark.parametrize("case", [pytest.param(c, id=case_id(c)) for c in CASES])
@pytest.mark.parametrize("req,strided", [("add", False), ("add", True), ("write", True),
                                         ("null", False)])
def test_kernel_requests_and_output_layouts(case, req, strided):
    check_kernel_requests(case, req, strided)


# -- second-order gradients (autograd) -----------------------------------------------------

def _second_order(fn, values, ctx, wrt=1):
    """Grads of ``fn(*xs)`` w.r.t. the first ``wrt`` arrays (create_graph), then backward.

    Returns the first-order gradients and every array's ``.grad`` afterwards: per element,
    the sum over all first-order gradient elements of their derivatives.
    """
    xs = [nd.array(v, ctx=ctx, dtype="float64") for v in values]
    for x in xs:
        x.attach_grad()
    with autograd.record():
        y = fn(*xs)
        grads = autograd.grad(y, xs[:wrt], create_graph=True)
    grads = list(grads) if isinstance(grads, (list, tuple)) else [grads]
    autograd.backward(grads)
    return [g.asnumpy() for g in grads], [x.grad.asnumpy() for x in xs]


_V = np.random.default_rng(7).uniform(-1, 1, (3, 4))


@pytest.mark.parametrize("flags,axis", [({"transpose_b": True}, 0), ({"transpose_a": True}, 1)])
def test_dot_second_order(flags, axis, ctx):
    # S = sum(x x^T) = sum_k c_k^2 with c the column sums (x^T x: the row sums r):
    # dS/dx = 2 c (broadcast); each of its elements grows by 2 per element of its group.
    (g,), (second,) = _second_order(lambda x: nd.dot(x, x, **flags), [_V], ctx)
    sums = _V.sum(axis=axis, keepdims=True)
    assert_almost_equal(g, np.broadcast_to(2 * sums, _V.shape))
    assert_almost_equal(second, np.full(_V.shape, 2.0 * _V.shape[axis]))


def test_dot_mixed_second_order(ctx):
    # y = dot(x, w): dy/dx = ones @ w^T depends on w only; d sum(dy/dx) / dw = rows of x.
    w = np.random.default_rng(8).uniform(-1, 1, (4, 2))
    (g,), (xg, wg) = _second_order(lambda x, w: nd.dot(x, w), [_V, w], ctx)
    assert_almost_equal(g, np.ones((3, 2)) @ w.T)
    assert_almost_equal(xg, np.zeros(_V.shape))
    assert_almost_equal(wg, np.full(w.shape, 3.0))


def test_nd_dot_and_reshape_second_order(ctx):
    # y = dot(v, v) with v = reshape(x, (-1,)) (1-D dot): sum of squares; second: 2.
    v = np.random.default_rng(9).uniform(-1, 1, (2, 3, 2))
    (g,), (second,) = _second_order(
        lambda x: nd.dot(nd.reshape(x, shape=(-1,)), nd.reshape(x, shape=(-1,))), [v], ctx)
    assert_almost_equal(g, 2 * v)
    assert_almost_equal(second, np.full(v.shape, 2.0))
    # An N-D dot, (2, 3, 2) . (2, 6) with the rhs x reshaped: S = sum_k C_k R_k with
    # C_k = sum(x[:, :, k]) and R_k = sum(x[k]) (row k of the reshape), so
    # dS/dx[a, b, c] = R_c + C_a, and each of those is a sum of 6 elements: second = 12.
    (g,), (second,) = _second_order(
        lambda x: nd.dot(x, nd.reshape(x, shape=(2, 6))), [v], ctx)
    rows, cols = v.sum(axis=(1, 2)), v.sum(axis=(0, 1))
    assert_almost_equal(g, np.broadcast_to(rows[None, None, :] + cols[:, None, None], v.shape))
    assert_almost_equal(second, np.full(v.shape, 12.0))


@pytest.mark.parametrize("op,extra", [("batch_dot", {}), ("linalg_gemm2", {"alpha": 0.5})])
def test_batched_products_second_order(op, extra, ctx):
    v = np.random.default_rng(10).uniform(-1, 1, (2, 3, 4))
    (g,), (second,) = _second_order(
        lambda x: getattr(nd, op)(x, x, transpose_b=True, **extra), [v], ctx)
    alpha = extra.get("alpha", 1.0)
    sums = v.sum(axis=1, keepdims=True)
    assert_almost_equal(g, np.broadcast_to(2 * alpha * sums, v.shape))
    assert_almost_equal(second, np.full(v.shape, 2.0 * alpha * 3))


def test_broadcast_to_and_multiply_second_order(ctx):
    # b = broadcast_to(x (1, 3), (4, 3)); y = b * b: sum(y) = 4 sum(x^2); dy/dx = 8x; second 8.
    v = np.array([[0.5, -1.0, 2.0]])
    (g,), (second,) = _second_order(
        lambda x: nd.broadcast_to(x, shape=(4, 3)) * nd.broadcast_to(x, shape=(4, 3)), [v], ctx)
    assert_almost_equal(g, 8 * v)
    assert_almost_equal(second, np.full(v.shape, 8.0))


@pytest.mark.parametrize("fn,copies", [
    (lambda x: nd.tile(x, reps=(2, 1, 2)), 4),
    (lambda x: nd.repeat(x, repeats=3, axis=-1), 3),
    (lambda x: nd.repeat(x, repeats=2), 2),
    (lambda x: nd.broadcast_like(nd.expand_dims(x, axis=0), nd.zeros((3, 2, 3))), 3),
    (lambda x: nd.concat(x, nd.flip(x, axis=1), dim=0), 2),
    (lambda x: nd.stack(x, nd.transpose(nd.swapaxes(x, 0, 1)), axis=1), 2),
])
def test_copying_ops_second_order(fn, copies, ctx):
    # y = sum(f(x)^2) with f copying each element `copies` times: dy/dx = 2 copies x.
    v = np.random.default_rng(11).uniform(-1, 1, (2, 3))
    (g,), (second,) = _second_order(lambda x: nd.square(fn(x)), [v], ctx)
    assert_almost_equal(g, 2 * copies * v)
    assert_almost_equal(second, np.full(v.shape, 2.0 * copies))


def test_slicing_ops_second_order(ctx):
    # y = sum over the slices of x^2 (elements in two slices count twice).
    v = np.random.default_rng(12).uniform(-1, 1, (3, 4))
    def f(x):
        return (nd.sum(nd.square(nd.slice_axis(x, axis=1, begin=1, end=3)))
                + nd.sum(nd.square(nd.slice(x, begin=(None, 0), end=(None, 4), step=(2, 3))))
                + nd.sum(nd.square(nd.slice_like(x, nd.zeros((2, 4)))))
                + nd.sum(nd.square(nd.split(x, num_outputs=2, axis=1)[1])))

    count = np.zeros(v.shape)
    count[:, 1:3] += 1
    count[::2, 0:4:3] += 1
    count[:2, :] += 1
    count[:, 2:] += 1
    (g,), (second,) = _second_order(f, [v], ctx)
    assert_almost_equal(g, 2 * count * v)
    assert_almost_equal(second, 2 * count)


# -- executor-level gradients ------------------------------------------------------------

def test_executor_gradients_through_backward_ops(ctx):
    # concat, slice and dot in one bound graph (float32), with grad_req='add'.
    a, b = sym.Variable("a"), sym.Variable("b")
    joined = sym.concat(a, b, dim=0)                                 # (5, 3)
    net = sym.Group([sym.dot(sym.slice(joined, begin=(1,), end=(4,)), b, transpose_b=True),
                     sym.slice_axis(joined, axis=1, begin=2, end=None)])
    rng = np.random.default_rng(13)
    va, vb = rng.uniform(-1, 1, (2, 3)), rng.uniform(-1, 1, (3, 3))
    grads = {"a": nd.ones((2, 3), ctx=ctx), "b": nd.ones((3, 3), ctx=ctx)}
    exe = net.bind(ctx, {"a": nd.array(va, ctx=ctx), "b": nd.array(vb, ctx=ctx)},
                   args_grad=grads, grad_req="add")
    outs = exe.forward(is_train=True)
    vj = np.concatenate([va, vb])
    assert_almost_equal(outs[0], vj[1:4] @ vb.T, rtol=1e-5, atol=1e-6)
    h0, h1 = rng.uniform(-1, 1, (3, 3)), rng.uniform(-1, 1, (5, 1))
    exe.backward([nd.array(h0, ctx=ctx), nd.array(h1, ctx=ctx)])
    gj = np.zeros((5, 3))
    gj[1:4] += h0 @ vb                 # through the slice into the dot's lhs
    gj[:, 2:] += h1                    # through slice_axis
    gb = h0.T @ vj[1:4]                # the dot's rhs
    assert_almost_equal(exe.grad_dict["a"], 1 + gj[:2], rtol=1e-5, atol=1e-6)
    assert_almost_equal(exe.grad_dict["b"], 1 + gj[2:] + gb, rtol=1e-5, atol=1e-6)


def test_executor_split_with_an_unused_output(ctx):
    x = sym.Variable("x")
    net = sym.split(x, num_outputs=3, axis=1)[1] * 2.0
    exe = net.bind(ctx, {"x": nd.array(np.arange(12.0).reshape(2, 6), ctx=ctx)},
                   args_grad={"x": nd.zeros((2, 6), ctx=ctx)})
    exe.forward(is_train=True)
    exe.backward([nd.ones((2, 2), ctx=ctx)])
    expected = np.zeros((2, 6))
    expected[:, 2:4] = 2.0
    assert exe.grad_dict["x"].asnumpy().tolist() == expected.tolist()


def test_shape_only_inputs_get_no_gradient(ctx):
    x, like = sym.Variable("x"), sym.Variable("like")
    net = sym.Group([sym.reshape_like(x, like), sym.slice_like(x, like),
                     sym.broadcast_like(sym.slice_axis(x, axis=0, begin=0, end=1), like)])
    exe = net.bind(ctx, {"x": nd.ones((2, 3), ctx=ctx), "like": nd.ones((2, 3), ctx=ctx)},
                   args_grad={"x": nd.zeros((2, 3), ctx=ctx),
                              "like": nd.full((2, 3), 5.0, ctx=ctx)})
    exe.forward(is_train=True)
    exe.backward([nd.ones((2, 3), ctx=ctx)] * 3)
    assert exe.grad_dict["like"].asnumpy().tolist() == [[0.0] * 3] * 2
    assert exe.grad_dict["x"].asnumpy().tolist() == [[4.0] * 3, [2.0] * 3]


# -- reshape's shape computation ---------------------------------------------------------

@pytest.mark.parametrize("dshape,shape,reverse", list(_RESHAPE_DOCS))
def test_reshape_examples_from_the_mxnet_docs(dshape, shape, reverse):
    assert infer_reshape(dshape, shape, reverse) == _RESHAPE_DOCS[(dshape, shape, reverse)]


@pytest.mark.parametrize("dshape,shape,message", [
    ((2, 3), (4, 2), r"cannot reshape an input of shape \(2, 3\) \(6 elements\) into shape "
                     r"\(4, 2\) \(8 elements\)"),
    ((2, 3), (-1, 4), r"cannot infer the -1 dimension: 6 elements"),
    ((2, 3), (-1, -1), r"only one dimension can be -1"),
    ((2, 3), (0, 0, 0), r"0 copies input dimension 2 but the input has 2"),
    ((2, 3), (-3, -3), r"-3 merges input dimensions 2 and 3"),
    ((2, 3), (-4, 2), r"-4 must be followed by the two dimensions"),
    ((6,), (-4, 4, -1), r"-4 splits dimension 6 into 4 x -1"),
    ((6,), (-4, -1, -1), r"cannot both be -1"),
    ((6,), (-5,), r"-5 is not a valid dimension"),
    ((2, 0), (-1, 0), r"cannot infer the -1 dimension"),
])
def test_reshape_errors(dshape, shape, message):
    with pytest.raises(ShapeError, match=message):
        infer_reshape(dshape, shape)
    with pytest.raises(ShapeError, match=r"(?s)^reshape: .*" + message + r".*inputs: data="):
        nd.reshape(nd.zeros(dshape), shape=shape)


@pytest.mark.parametrize("op,params,out_shape", [
    ("reshape", {"shape": (6, -1)}, (6, 4)), ("flatten", {}, (2, 12)),
    ("expand_dims", {"axis": 1}, (2, 1, 3, 4)), ("squeeze", {}, (2, 3, 4)),
])
def test_reshapes_run_inplace(op, params, out_shape):
    opdef = get_op(op)
    buf = np.arange(24.0).reshape(2, 3, 4)
    out = buf.reshape(out_shape)  # the output shares the input's memory
    opdef.forward_cpu(np, opdef.parse_attrs(params), [buf], [out], ["inplace"])
    assert out.reshape(-1).tolist() == list(range(24))
    assert (0, 0) in opdef.inplace


def test_reshape_method_and_legacy_target_shape(ctx):
    x = nd.array(np.arange(24).reshape(2, 3, 4), ctx=ctx)
    assert x.reshape(-3, -2).shape == (6, 4)
    assert x.reshape((4, -1)).shape == (4, 6)
    assert x.reshape(shape=(-1, 0), reverse=True).shape == (6, 4)
    assert nd.Reshape(x, target_shape=(4, 0)).shape == (4, 6)
    assert nd.Reshape(x, target_shape=(0, 4, 3), keep_highest=True).shape == (2, 4, 3)
    assert nd.reshape(x, shape="(0, -1)").asnumpy().tolist() == \
        np.arange(24).reshape(2, 12).tolist()


# -- particular behaviours ---------------------------------------------------------------

def test_aliases_resolve_to_the_same_op():
    for alias, name in [("_linalg_gemm2", "linalg_gemm2"), ("Reshape", "reshape"),
                        ("Flatten", "flatten"), ("SwapAxis", "swapaxes"),
                        ("broadcast_axes", "broadcast_axis"), ("reverse", "flip"),
                        ("Concat", "concat"), ("SliceChannel", "split"), ("crop", "slice")]:
        assert get_op(alias) is get_op(name), alias


def test_dot_of_two_vectors_has_shape_one(ctx):
    a = nd.array([1.0, 2.0, 3.0], ctx=ctx)
    result = nd.dot(a, a)
    assert result.shape == (1,) and result.asnumpy().tolist() == [14.0]
    assert (a @ a).asnumpy().tolist() == [14.0]


def test_dot_writes_into_out_and_strided_out(ctx):
    a = nd.array(np.arange(6).reshape(2, 3), ctx=ctx)
    b = nd.array(np.arange(12).reshape(3, 4), ctx=ctx)
    out = nd.zeros((2, 4), ctx=ctx)
    assert nd.dot(a, b, out=out) is out
    expected = np.arange(6).reshape(2, 3) @ np.arange(12).reshape(3, 4)
    assert out.asnumpy().tolist() == expected.tolist()
    big = nd.zeros((2, 8), ctx=ctx)
    nd.dot(a, b, out=big[:, ::2])  # a strided view: computed aside, then copied in
    assert big.asnumpy()[:, ::2].tolist() == expected.tolist()
    assert big.asnumpy()[:, 1::2].tolist() == [[0.0] * 4] * 2
    wide = nd.zeros((3, 2, 4), ctx=ctx)
    nd.dot(a, b, out=wide[1])
    assert wide.asnumpy()[1].tolist() == expected.tolist()
    assert wide.asnumpy()[0].tolist() == [[0.0] * 4] * 2


def test_integer_products(ctx):
    a = nd.array([[1, 2], [3, 4]], ctx=ctx, dtype="int32")
    assert nd.dot(a, a).asnumpy().tolist() == [[7, 10], [15, 22]]
    assert nd.linalg_gemm2(a, a, alpha=2.0).asnumpy().tolist() == [[14, 20], [30, 44]]
    b = nd.array([[[1, 2]], [[3, 4]]], ctx=ctx, dtype="int32")  # (2, 1, 2): rows on axis 0
    assert nd.linalg_gemm2(b, b, transpose_b=True, alpha=2.0, axis=0).dtype == np.int32


def test_split_outputs_and_single_output(ctx):
    x = nd.array(np.arange(12).reshape(2, 6), ctx=ctx)
    parts = nd.split(x, num_outputs=3)
    assert isinstance(parts, list) and [p.shape for p in parts] == [(2, 2)] * 3
    assert parts[2].asnumpy().tolist() == [[4.0, 5.0], [10.0, 11.0]]
    assert get_op("split").output_names(get_op("split").parse_attrs({"num_outputs": 2})) == \
        ("output0", "output1")
    assert nd.SliceChannel(x, num_outputs=1).shape == (2, 6)


def test_concat_and_stack_take_a_list_or_several_arrays(ctx):
    a = nd.ones((2, 2), ctx=ctx)
    b = nd.zeros((2, 2), ctx=ctx)
    assert nd.concat(a, b, dim=0).shape == (4, 2)
    assert nd.concat([a, b, a]).shape == (2, 6)
    assert nd.Concat(a, b, dim=1).shape == (2, 4)
    assert nd.stack(a, b).shape == (2, 2, 2)
    assert nd.stack([a, b, a], axis=2).shape == (2, 2, 3)


def test_transpose_property_and_matmul(ctx):
    x = nd.array(np.arange(6).reshape(2, 3), ctx=ctx)
    assert x.T.asnumpy().tolist() == np.arange(6).reshape(2, 3).T.tolist()
    assert (x @ x.T).shape == (2, 2)


def test_mxnet_string_params():
    x = nd.array(np.arange(12).reshape(3, 4))
    assert nd.dot(x, x, transpose_b="True", forward_stype="None").shape == (3, 3)
    assert nd.slice_axis(x, axis="1", begin="1", end="None").shape == (3, 3)
    assert nd.sum(x, axis="(1,)", keepdims="0").shape == (3,)
    assert nd.argmax(x, axis="None").shape == (1,)
    assert nd.SliceChannel(x, num_outputs="2", axis="1", squeeze_axis="False")[0].shape == (3, 2)


def test_slice_params_from_strings():
    x = nd.array(np.arange(12).reshape(3, 4))
    result = nd.slice(x, begin="(None, 1)", end="(2, None)", step="(None, 2)")
    assert result.asnumpy().tolist() == [[1.0, 3.0], [5.0, 7.0]]
    assert nd.crop(x, begin=(1,), end=(2,)).shape == (1, 4)


def test_shape_only_inputs_may_have_another_dtype():
    x = nd.array(np.arange(6).reshape(2, 3), dtype="float32")
    like = nd.zeros((3, 2), dtype="int32")
    assert nd.reshape_like(x, like).dtype == np.float32
    assert nd.slice_like(x, nd.zeros((1, 2), dtype="int64")).shape == (1, 2)
    assert nd.broadcast_like(nd.ones((1, 2)), nd.zeros((4, 2), dtype="float64")).shape == (4, 2)


def test_squeeze_all_ones_gives_shape_one():
    assert nd.squeeze(nd.ones((1, 1, 1))).shape == (1,)
    assert nd.squeeze(nd.ones(())).shape == ()


# -- errors ------------------------------------------------------------------------------

def _raises(match):
    return pytest.raises(ShapeError, match=r"(?s)" + match)


def test_dot_inner_dimension_mismatch():
    with _raises(r"^dot: inner dimensions do not match: lhs \(2, 3\) has 3 along its last axis "
                 r"but rhs \(4, 5\) has 4 along its first axis.*inputs: lhs=\(2, 3\) float32, "
                 r"rhs=\(4, 5\)"):
        nd.dot(nd.ones((2, 3)), nd.ones((4, 5)))
    with _raises(r"^dot: inner dimensions do not match: lhs \(2, 3\) has 2 along its first "
                 r"axis"):
        nd.dot(nd.ones((2, 3)), nd.ones((3, 5)), transpose_a=True)
    with _raises(r"^dot: .*at least 1 dimension"):
        nd.dot(nd.ones(()), nd.ones((3,)))


def test_batch_dot_and_gemm2_mismatches():
    with _raises(r"^batch_dot: inner dimensions do not match: lhs \(2, 3, 4\) gives 4 and rhs "
                 r"\(2, 5, 6\) gives 5"):
        nd.batch_dot(nd.ones((2, 3, 4)), nd.ones((2, 5, 6)))
    with _raises(r"^batch_dot: batch dimensions differ: lhs \(2, 3, 4\).*rhs \(3, 4, 5\)"):
        nd.batch_dot(nd.ones((2, 3, 4)), nd.ones((3, 4, 5)))
    with _raises(r"^batch_dot: needs two inputs with the same number \(>= 3\) of dimensions"):
        nd.batch_dot(nd.ones((3, 4)), nd.ones((4, 5)))
    with _raises(r"^linalg_gemm2: inner dimensions do not match: A \(3, 4\) gives 4 and B "
                 r"\(3, 4\) gives 3"):
        nd.linalg_gemm2(nd.ones((3, 4)), nd.ones((3, 4)))
    with _raises(r"^linalg_gemm2: axis=-1 is the column axis"):
        nd.linalg_gemm2(nd.ones((3, 4)), nd.ones((4, 3)), axis=-1)


def test_concat_mismatched_dims():
    with _raises(r"^concat: input 1 has shape \(3, 4\) but input 0 has \(2, 3\): all inputs "
                 r"must match on every axis except dim=0.*arg0=\(2, 3\) float32, arg1=\(3, 4\)"):
        nd.concat(nd.ones((2, 3)), nd.ones((3, 4)), dim=0)
    with _raises(r"^concat: input 1 has shape \(2,\) but input 0 has \(2, 3\)"):
        nd.concat(nd.ones((2, 3)), nd.ones((2,)))
    with _raises(r"^concat: dim=2 is out of range for an input with 2 dimension"):
        nd.concat(nd.ones((2, 3)), nd.ones((2, 3)), dim=2)


def test_stack_mismatched_shapes():
    with _raises(r"^stack: input 1 has shape \(3, 2\) but input 0 has \(2, 3\)"):
        nd.stack(nd.ones((2, 3)), nd.ones((3, 2)))


@pytest.mark.parametrize("call,match", [
    (lambda x: nd.transpose(x, axes=(0, 0)), r"^transpose: axes=\(0, 0\) is not a permutation"),
    (lambda x: nd.transpose(x, axes=(1, 0, 2)), r"^transpose: axes=\(1, 0, 2\) must list"),
    (lambda x: nd.swapaxes(x, dim1=0, dim2=2), r"^swapaxes: dim2=2 is out of range for an "
                                               r"input with 2 dimension"),
    (lambda x: nd.expand_dims(x, axis=3), r"^expand_dims: axis=3 is out of range .*-3 to 2"),
    (lambda x: nd.squeeze(x, axis=1), r"^squeeze: cannot squeeze axis 1 of an input of shape "
                                      r"\(2, 3\): its size is 3"),
    (lambda x: nd.stack(x, x, axis=-4), r"^stack: axis=-4 is out of range"),
    (lambda x: nd.split(x, num_outputs=2, axis=2), r"^split: axis=2 is out of range"),
    (lambda x: nd.flip(x, axis=(0, -2)), r"^flip: axis=\(0, -2\) lists an axis twice"),
    (lambda x: nd.repeat(x, repeats=2, axis=5), r"^repeat: axis=5 is out of range"),
    (lambda x: nd.slice_axis(x, axis=1, begin=2, end=1), r"^slice_axis: begin=2, end=1 is not "
                                                         r"a non-empty range within axis 1 of "
                                                         r"size 3"),
    (lambda x: nd.slice_axis(x, axis=1, begin=0, end=4), r"^slice_axis: begin=0, end=4"),
    (lambda x: nd.slice(x, begin=(0, 0, 0), end=(1, 1, 1)), r"^slice: begin=\(0, 0, 0\) has 3 "
                                                            r"entries but the input \(2, 3\)"),
    (lambda x: nd.slice(x, begin=(0,), end=(1, 2)), r"^slice: begin=\(0,\) and end=\(1, 2\) "
                                                    r"must have the same length"),
    (lambda x: nd.slice(x, begin=(0,), end=(1,), step=(0,)), r"^slice: step=\(0,\) has 0"),
    (lambda x: nd.broadcast_to(x, shape=(4, 3)), r"^broadcast_to: cannot broadcast an input "
                                                 r"of shape \(2, 3\) to shape \(4, 3\): axis 0"),
    (lambda x: nd.broadcast_to(x, shape=(2, 3, 1)), r"^broadcast_to: shape=\(2, 3, 1\) has 3"),
    (lambda x: nd.broadcast_axis(x, axis=(1,), size=(5,)), r"^broadcast_axis: cannot broadcast "
                                                           r"axis 1 .* its size is 3"),
    (lambda x: nd.broadcast_like(x, nd.ones((4, 3))), r"^broadcast_like: cannot broadcast an "
                                                       r"input of shape \(2, 3\)"),
    (lambda x: nd.reshape_like(x, nd.ones((4, 2))), r"^reshape_like: cannot reshape lhs "
                                                     r"\(2, 3\) \(6 elements\) like rhs "
                                                     r"\(4, 2\)"),
    (lambda x: nd.slice_like(x, nd.ones((3, 3))), r"^slice_like: shape_like \(3, 3\) is larger "
                                                   r"than data \(2, 3\) on axis 0"),
    (lambda x: nd.flatten(nd.ones(())), r"^flatten: cannot flatten a 0-d input"),
])
def test_bad_axes_and_shapes(call, match):
    with _raises(match):
        call(nd.ones((2, 3)))


def test_split_not_divisible():
    with _raises(r"^split: axis 1 of an input of shape \(2, 5\) has size 5, which does not "
                 r"divide into num_outputs=2 equal parts.*inputs: data=\(2, 5\)"):
        nd.split(nd.ones((2, 5)), num_outputs=2)
    with _raises(r"^split: squeeze_axis=True needs parts of size 1"):
        nd.split(nd.ones((2, 4)), num_outputs=2, squeeze_axis=True)

