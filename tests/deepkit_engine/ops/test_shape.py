"""Checks of the shape ops (reshape, reshape_like, flatten, expand_dims, squeeze,
transpose, swapaxes) against numpy: forward values, numeric and second-order
gradients, MXNet's reshape rules, in-place reshapes and errors.
"""
import numpy as np
import pytest

from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import ShapeError
from deepkit_engine.ops import get_op
from deepkit_engine.ops.shape import infer_reshape
from deepkit_engine.testing import assert_almost_equal

from .op_cases import (OpCase, case_id, forward_params, gradient_params, run_forward, run_gradient,
                       second_order)
from .test_reduce import check_kernel_requests

# -- references (plain numpy, independent of the kernels) -----------------------------

def _ref_reshape(x, shape, reverse=False):
    return x.reshape(_RESHAPE_RESULTS[(x.shape, tuple(shape), reverse)])


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


CASES = [OpCase("transpose", [s], lambda x, axes=(): np.transpose(x, axes or None), p)
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


# -- gradient cases ------------------------------------------------------------------------

# The numeric gradient check costs two forward runs per input element: the larger forward
# cases skip it, and small cases of the same kinds check it instead.
def _input_size(case):
    return sum(x.size for x in case.make_inputs(np.random.default_rng(0), "float64"))


for _case in CASES:
    if _input_size(_case) > 30:
        _case.grad = False

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


# -- depth_to_space, space_to_depth, diag, shape_array, size_array ------------------------

def _ref_depth_to_space(x, block_size):
    n, c, h, w = x.shape
    b = block_size
    out = np.empty((n, c // (b * b), h * b, w * b), x.dtype)
    for ch in range(c):
        i, j, oc = ch // (b * c // (b * b)), (ch // (c // (b * b))) % b, ch % (c // (b * b))
        out[:, oc, i::b, j::b] = x[:, ch]
    return out


def _ref_space_to_depth(x, block_size):
    n, c, h, w = x.shape
    b = block_size
    out = np.empty((n, c * b * b, h // b, w // b), x.dtype)
    for i in range(b):
        for j in range(b):
            out[:, (i * b + j) * c:(i * b + j + 1) * c] = x[:, :, i::b, j::b]
    return out


def _ref_diag(x, k=0, axis1=0, axis2=1):
    return np.diag(x, k) if x.ndim == 1 else np.diagonal(x, k, axis1, axis2)


def _ref_backward_diag(g, x, k=0, axis1=0, axis2=1):
    if x.ndim == 1:
        return np.diagonal(g, k).copy()
    out = np.zeros(x.shape)
    view = np.moveaxis(out, (axis1, axis2), (-2, -1))
    for idx in np.ndindex(*view.shape[:-2]):
        for t in range(g.shape[-1]):
            r, c = (t, t + k) if k >= 0 else (t - k, t)
            view[idx + (r, c)] = g[idx + (t,)]
    return out


CASES += [OpCase("depth_to_space", [s], _ref_depth_to_space, {"block_size": b})
          for s, b in [((1, 4, 2, 3), 2), ((2, 8, 1, 2), 2), ((1, 9, 2, 1), 3),
                       ((1, 3, 2, 2), 1), ((0, 4, 1, 1), 2)]]
CASES += [OpCase("space_to_depth", [s], _ref_space_to_depth, {"block_size": b})
          for s, b in [((1, 1, 4, 6), 2), ((2, 2, 2, 4), 2), ((1, 1, 3, 3), 3),
                       ((0, 2, 2, 2), 2)]]
_DIAG = [((4,), {}), ((3,), {"k": 1}), ((3,), {"k": -2}), ((3, 4), {}), ((3, 4), {"k": 2}),
         ((3, 4), {"k": -1}), ((3, 4), {"k": 5}), ((2, 3, 4), {"axis1": 1, "axis2": 2}),
         ((2, 3, 4), {"k": 1, "axis1": -1, "axis2": 0}), ((0,), {})]
CASES += [OpCase("diag", [s], _ref_diag, p) for s, p in _DIAG]
CASES += [OpCase("_backward_diag", [_ref_diag(np.zeros(s), **p).shape, s], _ref_backward_diag, p)
          for s, p in _DIAG]
# Their int64 outputs cannot hold the 0.5 that the kernel request checks prefill, so they
# have their own forward test.
SHAPE_DATA_CASES = [OpCase("shape_array", [s], lambda x: np.array(x.shape, np.int64))
                    for s in [(3, 4), (2, 0, 5), (7,)]]
SHAPE_DATA_CASES += [OpCase("size_array", [s], lambda x: np.array([x.size], np.int64))
                     for s in [(3, 4), (2, 0, 5), ()]]
OTHER_COVERED_OPS = {"shape_array": "test_shape_data_forward",
                     "size_array": "test_shape_data_forward"}


@pytest.mark.parametrize("case,dtype", forward_params(SHAPE_DATA_CASES))
def test_shape_data_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)



# -- the _backward_* ops --------------------------------------------------------------------

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

@pytest.mark.parametrize("fn,copies", [
    (lambda x: nd.tile(x, reps=(2, 1, 2)), 4),
    (lambda x: nd.repeat(x, repeats=3, axis=-1), 3),
    (lambda x: nd.repeat(x, repeats=2), 2),
    (lambda x: nd.broadcast_like(nd.expand_dims(x, axis=0), nd.zeros((3, 2, 3))), 3),
    (lambda x: nd.concat(x, nd.flip(x, axis=1), dim=0), 2),
    (lambda x: nd.stack(x, nd.transpose(nd.swapaxes(x, 0, 1)), axis=1), 2),
])
def test_copying_opssecond_order(fn, copies, ctx):
    # y = sum(f(x)^2) with f copying each element `copies` times: dy/dx = 2 copies x.
    v = np.random.default_rng(11).uniform(-1, 1, (2, 3))
    (g,), (second,) = second_order(lambda x: nd.square(fn(x)), [v], ctx)
    assert_almost_equal(g, 2 * copies * v)
    assert_almost_equal(second, np.full(v.shape, 2.0 * copies))


# -- executor-level gradients ------------------------------------------------------------

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



def test_depth_to_space_matches_mxnets_documented_example():
    x = nd.array(np.arange(24, dtype=np.float32).reshape(1, 4, 2, 3))
    expected = [[[[0, 6, 1, 7, 2, 8], [12, 18, 13, 19, 14, 20],
                  [3, 9, 4, 10, 5, 11], [15, 21, 16, 22, 17, 23]]]]
    np.testing.assert_array_equal(nd.depth_to_space(x, 2).asnumpy(), expected)
    np.testing.assert_array_equal(x.depth_to_space(block_size=2).space_to_depth(2).asnumpy(),
                                  x.asnumpy())


@pytest.mark.parametrize("op,shape,block,match", [
    ("depth_to_space", (1, 6, 2, 2), 2, "channel count 6.*multiple of block_size\\*\\*2 = 4"),
    ("depth_to_space", (6, 2, 2), 1, "4-d input"),
    ("space_to_depth", (1, 1, 3, 4), 2, "height 3 and width 4.*block_size=2"),
    ("space_to_depth", (1, 1, 2, 2), 0, "block_size must be a positive int, got 0"),
])
def test_block_ops_refuse_bad_shapes(op, shape, block, match):
    with pytest.raises(ShapeError, match=match):
        getattr(nd, op)(nd.zeros(shape), block_size=block)


def test_diag_shapes_and_errors():
    assert sym.var("x").diag(k=-1).infer_shape(x=(3, 5, 4))[1] == [(4, 2)]
    assert sym.diag(sym.var("x"), k=2).infer_shape(x=(3,))[1] == [(5, 5)]
    with pytest.raises(ShapeError, match="axis1=1 and axis2=-2 name the same axis"):
        nd.diag(nd.zeros((2, 3, 4)), axis1=1, axis2=-2)
    with pytest.raises(ShapeError, match="at least 1 dimension"):
        nd.diag(nd.array(1.0).reshape(()))


def test_shape_array_and_size_array_are_int64_and_partial():
    x = nd.zeros((2, 3, 4))
    assert x.shape_array().dtype == np.int64 and x.shape_array().asnumpy().tolist() == [2, 3, 4]
    assert x.size_array().asnumpy().tolist() == [24]
    s = sym.var("x").shape_array()
    assert s.infer_shape_partial(x=(0, 3))[1] == [(2,)]
    assert s.infer_type(x="float32")[1] == [np.int64]
    assert not get_op("shape_array").differentiable and not get_op("size_array").differentiable
