"""Dropout, Embedding, Pad, Crop and the Sequence* ops: forward against plain-loop numpy
references, gradients (numeric, executor-level and second order), shapes and errors."""
import numpy as np
import pytest

from deepkit_engine import autograd, random
from deepkit_engine import ndarray as nd
from deepkit_engine import symbol as sym
from deepkit_engine.base import ParamError, ShapeError
from deepkit_engine.ops.registry import get_op
from deepkit_engine.testing import assert_almost_equal

from .op_cases import Int, OpCase, forward_params, gradient_params, run_forward, run_gradient


def _identity(x, **params):
    return x


def _float_ints(shape, low, high):
    """Float-valued integer indices (MXNet passes indices as float arrays)."""
    return lambda rng, dtype: rng.integers(low, high, size=shape).astype(dtype)


# -- Dropout -------------------------------------------------------------------------------

CASES = [
    # nd calls outside autograd.record() run in inference mode: the identity
    OpCase("Dropout", [(3, 4)], _identity, {"p": 0.5}, grad=False),
    OpCase("Dropout", [(2, 3, 4)], _identity, {"p": 0.3, "axes": (1,)}, grad=False),
    OpCase("Dropout", [()], _identity, grad=False),
    OpCase("Dropout", [(0, 3)], _identity, grad=False),
    # p = 0 keeps everything, also in training: numerically checkable
    OpCase("Dropout", [(3, 4)], _identity, {"p": 0.0}, name="p0"),
]
#: Dropout's gradient with p > 0 (the forward mask) is checked by this test.
OTHER_GRAD_COVERED_OPS = {"Dropout": "test_dropout_gradient_is_the_forward_mask"}


def test_dropout_in_training_zeroes_and_rescales():
    random.seed(7)
    x = nd.ones((200, 100))
    with autograd.record():
        y = nd.Dropout(x, p=0.3).asnumpy()
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.7)}
    assert abs((y == 0).mean() - 0.3) < 0.01
    assert abs(y.mean() - 1.0) < 0.03
    # the same seed, the same mask; inference is the identity
    random.seed(7)
    with autograd.record():
        again = nd.Dropout(x, p=0.3).asnumpy()
    np.testing.assert_array_equal(y, again)
    np.testing.assert_array_equal(nd.Dropout(x, p=0.3).asnumpy(), x.asnumpy())
    # autograd: the gradient is the mask drawn in forward (the hidden output)
    xs = nd.array(np.random.default_rng(0).uniform(0.5, 1.5, (20, 30)))
    xs.attach_grad()
    with autograd.record():
        out = nd.Dropout(xs, p=0.5)
    out.backward()
    assert_almost_equal(xs.grad, out.asnumpy() / xs.asnumpy())


def test_dropout_mode_always_axes_and_extremes():
    random.seed(3)
    x = nd.ones((50, 4, 30))
    y = nd.Dropout(x, p=0.5, mode="always", axes=(1,)).asnumpy()  # in inference too
    assert (y == 0).any() and (y == 2).any()
    # one mask value per (sample, position), shared along axis 1
    np.testing.assert_array_equal(y, np.broadcast_to(y[:, :1, :], y.shape))
    with autograd.record():
        assert (nd.Dropout(x, p=1.0).asnumpy() == 0).all()
        np.testing.assert_array_equal(nd.Dropout(x, p=0.0).asnumpy(), x.asnumpy())


def test_dropout_mask_is_a_hidden_output():
    net = sym.Dropout(sym.Variable("x"), p=0.5, axes=(0, 2), name="drop")
    assert net.list_outputs() == ["drop_output"]
    _, outs, _ = net.infer_shape(x=(4, 5, 6))
    assert outs == [(4, 5, 6)]
    op = get_op("Dropout")
    attrs = op.parse_attrs({"axes": (0, 2)})
    assert op.infer_shape(attrs, [(4, 5, 6)])[1] == [(4, 5, 6), (1, 5, 1)]


def test_dropout_gradient_is_the_forward_mask(ctx):
    random.seed(11)
    x = sym.Variable("data")
    net = sym.Dropout(x, p=0.4, axes=(2,))
    v = np.random.default_rng(0).uniform(0.5, 1.5, (3, 4, 5))
    exe = net.bind(ctx, {"data": nd.array(v, ctx=ctx, dtype="float64")},
                   args_grad={"data": nd.zeros(v.shape, ctx=ctx, dtype="float64")})
    out = exe.forward(is_train=True)[0].asnumpy()
    mask = out / v
    assert set(np.round(np.unique(mask), 12)) <= {0.0, round(1 / 0.6, 12)}
    ograd = np.random.default_rng(1).normal(size=v.shape)
    exe.backward(nd.array(ograd, ctx=ctx, dtype="float64"))
    assert_almost_equal(exe.grad_dict["data"], ograd * mask)


def test_dropout_bad_params():
    with pytest.raises(ParamError, match="p=1.5 must be <= 1.0"):
        nd.Dropout(nd.ones(3), p=1.5)
    with pytest.raises(ShapeError, match=r"(?s)Dropout.*axes=3 is out of range.*\(2, 3\)"):
        nd.Dropout(nd.ones((2, 3)), axes=(3,))


# -- Embedding -----------------------------------------------------------------------------

def _embedding_ref(data, weight, input_dim, output_dim, **params):
    out = np.zeros(data.shape + (output_dim,))
    for i in np.ndindex(*data.shape):
        row = min(max(int(data[i]), 0), input_dim - 1)
        out[i] = weight[row]
    return out


def _embedding_grad_ref(ograd, data, input_dim, output_dim):
    grad = np.zeros((input_dim, output_dim))
    for i in np.ndindex(*data.shape):
        grad[min(max(int(data[i]), 0), input_dim - 1)] += ograd[i]
    return grad


_EMB = {"input_dim": 5, "output_dim": 3}

CASES += [
    OpCase("Embedding", [Int((2, 3), 0, 5), (5, 3)], _embedding_ref, _EMB),
    OpCase("Embedding", [Int((4,), -3, 9), (5, 3)], _embedding_ref, _EMB, name="clip"),
    OpCase("Embedding", [_float_ints((2, 2), 0, 5), (5, 3)], _embedding_ref, _EMB, grad=False,
           name="float-index"),
    OpCase("Embedding", [Int((0, 2), 0, 5), (5, 3)], _embedding_ref, _EMB),
    OpCase("Embedding", [Int((3,), 0, 1), (1, 1)], _embedding_ref,
           {"input_dim": 1, "output_dim": 1}),
    OpCase("_backward_Embedding", [(2, 4, 3), Int((2, 4), 0, 5)], _embedding_grad_ref, _EMB),
    OpCase("_backward_Embedding", [(6, 3), Int((6,), -2, 8)], _embedding_grad_ref, _EMB,
           name="clip"),
    OpCase("_backward_Embedding", [(0, 3), Int((0,), 0, 5)], _embedding_grad_ref, _EMB),
]


def test_embedding_weight_shape_is_inferred_and_checked():
    net = sym.Embedding(sym.Variable("data"), input_dim=100, output_dim=16, name="embed")
    assert net.list_arguments() == ["data", "embed_weight"]
    args, outs, _ = net.infer_shape(data=(32, 35))
    assert args == [(32, 35), (100, 16)] and outs == [(32, 35, 16)]
    assert net.infer_type(data="float32")[1] == [np.float32]
    assert net.infer_type(data="int32", embed_weight="float64")[1] == [np.float64]
    with pytest.raises(ShapeError, match=r"(?s)Embedding 'embed'.*weight.*\(100, 8\).*"
                                         r"\(100, 16\)"):
        net.infer_shape(data=(32, 35), embed_weight=(100, 8))
    with pytest.raises(ParamError, match="missing required param 'output_dim'"):
        sym.Embedding(sym.Variable("data"), input_dim=10)


def test_embedding_executor_sums_repeated_rows(ctx):
    idx = np.array([[1.0, 3.0, 1.0], [0.0, 1.0, 4.0]])
    weight = np.random.default_rng(0).normal(size=(5, 2))
    ograd = np.random.default_rng(1).normal(size=(2, 3, 2))
    net = sym.Embedding(sym.Variable("data"), sym.Variable("weight"), input_dim=5,
                        output_dim=2)
    exe = net.bind(ctx, {"data": nd.array(idx, ctx=ctx), "weight": nd.array(weight, ctx=ctx)},
                   args_grad={"weight": nd.zeros((5, 2), ctx=ctx)},
                   grad_req={"data": "null", "weight": "write"})
    assert_almost_equal(exe.forward(is_train=True)[0], weight[idx.astype(int)])
    exe.backward(nd.array(ograd, ctx=ctx))
    expected = np.zeros((5, 2))
    expected[1] = ograd[0, 0] + ograd[0, 2] + ograd[1, 1]
    expected[3], expected[0], expected[4] = ograd[0, 1], ograd[1, 0], ograd[1, 2]
    assert_almost_equal(exe.grad_dict["weight"], expected, rtol=1e-5, atol=1e-6)


def test_embedding_second_order():
    idx = nd.array([2.0, 0.0, 2.0])
    w = np.arange(12.0).reshape(4, 3) / 10
    scale = np.array([[1.0], [2.0], [3.0]])
    weight = nd.array(w, dtype="float64")
    weight.attach_grad()
    with autograd.record():
        y = nd.square(nd.Embedding(idx, weight, input_dim=4, output_dim=3)) * \
            nd.array(scale, dtype="float64")
        g = autograd.grad(y, weight, create_graph=True)
    g.backward()
    # g[r] = sum over i with idx_i = r of 2 * scale_i * w[r]: its derivative is 2 * scale_i
    expected = np.zeros((4, 3))
    expected[2], expected[0] = 2 * (1 + 3), 2 * 2
    assert_almost_equal(weight.grad, expected)


# -- Pad -----------------------------------------------------------------------------------

def _source_index(i, n, before, mode):
    """The input index a padded position reads, or None for the constant."""
    j = i - before
    if 0 <= j < n:
        return j
    if mode == "constant":
        return None
    if mode == "edge":
        return 0 if j < 0 else n - 1
    return -j if j < 0 else 2 * (n - 1) - j  # reflect


def _pad_ref(x, mode="constant", pad_width=(), constant_value=0.0):
    pairs = [pad_width[2 * k:2 * k + 2] for k in range(x.ndim)]
    out = np.zeros(tuple(n + a + b for n, (a, b) in zip(x.shape, pairs)))
    for i in np.ndindex(*out.shape):
        src = [_source_index(k, n, a, mode) for k, n, (a, _) in zip(i, x.shape, pairs)]
        out[i] = constant_value if None in src else x[tuple(src)]
    return out


def _pad_grad_ref(g, mode="constant", pad_width=(), constant_value=0.0):
    pairs = [pad_width[2 * k:2 * k + 2] for k in range(g.ndim)]
    shape = tuple(n - a - b for n, (a, b) in zip(g.shape, pairs))
    grad = np.zeros(shape)
    for i in np.ndindex(*g.shape):
        src = [_source_index(k, n, a, mode) for k, n, (a, _) in zip(i, shape, pairs)]
        if None not in src:
            grad[tuple(src)] += g[i]
    return grad


_PAD_CASES = [((1, 2, 3, 4), (0, 0, 0, 0, 1, 2, 2, 1)), ((2, 1, 3), (0, 0, 0, 0, 2, 1)),
              ((1, 1, 2, 3, 3), (0, 0, 0, 0, 1, 0, 0, 2, 1, 1)),
              ((1, 1, 3, 3), (0, 0, 0, 0, 0, 0, 2, 0))]

for _mode in ("constant", "edge", "reflect"):
    for _shape, _width in _PAD_CASES:
        _params = {"mode": _mode, "pad_width": _width}
        if _mode == "constant":
            _params["constant_value"] = -0.5
        CASES += [OpCase("Pad", [_shape], _pad_ref, _params),
                  OpCase("_backward_Pad", [_pad_ref(np.zeros(_shape), **_params).shape],
                         _pad_grad_ref, _params)]
CASES += [OpCase("Pad", [(0, 2, 2, 2)], _pad_ref, {"mode": "edge",
                                                  "pad_width": (0, 0, 0, 0, 1, 1, 1, 1)}),
          OpCase("Pad", [(2, 2, 1, 1)], _pad_ref, {"mode": "edge",
                                                  "pad_width": (0, 0, 0, 0, 2, 1, 1, 3)})]


def test_pad_aliases_and_shape():
    assert get_op("pad") is get_op("Pad")
    net = sym.Pad(sym.Variable("x"), mode="reflect", pad_width=(0, 0, 0, 0, 1, 1, 2, 2))
    assert net.infer_shape(x=(2, 3, 5, 5))[1] == [(2, 3, 7, 9)]


@pytest.mark.parametrize("shape,params,message", [
    ((2, 3, 4, 4), {"pad_width": (0, 0, 0, 0, 1, 1)},
     r"pad_width=\(0, 0, 0, 0, 1, 1\) has 6 entries.*needs 8"),
    ((2, 3, 4, 4), {"pad_width": (0, 0, 1, 0, 1, 1, 1, 1)}, r"batch and channel.*must be 0"),
    ((2, 3, 4, 4), {"mode": "reflect", "pad_width": (0, 0, 0, 0, 4, 0, 0, 0)},
     r"reflect padding of axis 2 by \(4, 0\).*< its size 4"),
    ((3, 4), {"pad_width": (0, 0, 1, 1)}, r"data.*\(3, 4\).*at least 3 dimensions"),
])
def test_pad_errors_name_the_op_and_values(shape, params, message):
    with pytest.raises(ShapeError, match=r"(?s)Pad.*" + message):
        nd.Pad(nd.ones(shape), **params)


def test_pad_second_order():
    params = {"mode": "reflect", "pad_width": (0, 0, 0, 0, 1, 2, 2, 1)}
    rng = np.random.default_rng(4)
    v = rng.uniform(-1, 1, (1, 2, 3, 3))
    w = rng.uniform(-1, 1, _pad_ref(v, **params).shape)
    x = nd.array(v, dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = nd.square(nd.Pad(x, **params)) * nd.array(w, dtype="float64")
        g = autograd.grad(y, x, create_graph=True)
    g.backward()
    # g = P^T (2 w * P x), so d(sum g)/dx = P^T (2 w * P 1)
    assert_almost_equal(g, _pad_grad_ref(2 * w * _pad_ref(v, **params), **params))
    assert_almost_equal(x.grad, _pad_grad_ref(2 * w * _pad_ref(np.ones_like(v), **params),
                                              **params))


# -- Crop ----------------------------------------------------------------------------------

def _crop_window(shape, h, w, offset, center_crop):
    if center_crop:
        return (shape[2] - h) // 2, (shape[3] - w) // 2
    return offset


def _crop_ref(data, like=None, num_args=1, offset=(0, 0), h_w=(0, 0), center_crop=False):
    h, w = like.shape[2:] if like is not None else h_w
    y, x = _crop_window(data.shape, h, w, offset, center_crop)
    out = np.zeros(data.shape[:2] + (h, w))
    for n, c, i, j in np.ndindex(*out.shape):
        out[n, c, i, j] = data[n, c, y + i, x + j]
    return out


def _crop_grad_ref(ograd, like, offset=(0, 0), h_w=(0, 0), center_crop=False):
    y, x = _crop_window(like.shape, ograd.shape[2], ograd.shape[3], offset, center_crop)
    grad = np.zeros(like.shape)
    for n, c, i, j in np.ndindex(*ograd.shape):
        grad[n, c, y + i, x + j] = ograd[n, c, i, j]
    return grad


CASES += [
    OpCase("Crop", [(2, 3, 5, 6)], _crop_ref, {"h_w": (3, 4), "offset": (1, 2)}),
    OpCase("Crop", [(1, 2, 5, 6)], _crop_ref, {"h_w": (2, 3), "center_crop": True}),
    OpCase("Crop", [(1, 2, 4, 4)], _crop_ref, {"h_w": (4, 4)}),
    OpCase("Crop", [(1, 2, 5, 6), (1, 1, 2, 3)], _crop_ref, {"offset": (3, 1)}),
    OpCase("Crop", [(2, 1, 5, 6), (7, 9, 4, 3)], _crop_ref, {"center_crop": True}),
    OpCase("_backward_Crop", [(2, 3, 3, 4), (2, 3, 5, 6)], _crop_grad_ref, {"offset": (2, 1)}),
    OpCase("_backward_Crop", [(1, 2, 2, 3), (1, 2, 5, 6)], _crop_grad_ref,
           {"center_crop": True}),
]


def test_crop_arguments_and_shapes():
    net = sym.Crop(sym.Variable("data"), sym.Variable("like"), center_crop=True, name="crop")
    assert net.list_arguments() == ["data", "like"]
    assert net.infer_shape(data=(2, 3, 9, 9), like=(2, 8, 4, 5))[1] == [(2, 3, 4, 5)]
    one = sym.Crop(sym.Variable("data"), h_w=(3, 3))
    assert one.infer_shape(data=(1, 2, 5, 5))[1] == [(1, 2, 3, 3)]


@pytest.mark.parametrize("shapes,params,message", [
    ([(1, 2, 4, 4)], {"h_w": (5, 2)}, r"crop size \(5, 2\) is larger.*\(4, 4\)"),
    ([(1, 2, 4, 4)], {"h_w": (2, 2), "offset": (3, 0)}, r"offset=\(3, 0\).*at most \(2, 2\)"),
    ([(1, 2, 4, 4)], {"h_w": (0, 2)}, r"h_w=\(0, 2\) must be \(h, w\) with h, w >= 1"),
    ([(2, 4, 4)], {"h_w": (2, 2)}, r"data.*\(2, 4, 4\).*4-D"),
    ([(1, 2, 4, 4), (1, 1, 6, 2)], {}, r"crop size \(6, 2\) is larger"),
    ([(1, 2, 4, 4), (1, 1, 2, 2)], {"num_args": 1}, r"num_args=1 but 2 inputs"),
])
def test_crop_errors_name_the_op_and_values(shapes, params, message):
    with pytest.raises(ShapeError, match=r"(?s)Crop.*" + message):
        nd.Crop(*[nd.ones(s) for s in shapes], **params)


def test_crop_executor_gives_no_gradient_to_crop_like(ctx):
    v = np.arange(2 * 5 * 6, dtype=np.float64).reshape(1, 2, 5, 6)
    net = sym.Crop(sym.Variable("data"), sym.Variable("like"), offset=(1, 2))
    exe = net.bind(ctx, {"data": nd.array(v, ctx=ctx, dtype="float64"),
                         "like": nd.ones((1, 1, 3, 3), ctx=ctx, dtype="float64")},
                   args_grad={"data": nd.zeros(v.shape, ctx=ctx, dtype="float64"),
                              "like": nd.full((1, 1, 3, 3), 7.0, ctx=ctx, dtype="float64")})
    assert_almost_equal(exe.forward(is_train=True)[0], v[:, :, 1:4, 2:5])
    ograd = np.random.default_rng(0).normal(size=(1, 2, 3, 3))
    exe.backward(nd.array(ograd, ctx=ctx, dtype="float64"))
    expected = np.zeros_like(v)
    expected[:, :, 1:4, 2:5] = ograd
    assert_almost_equal(exe.grad_dict["data"], expected)
    assert_almost_equal(exe.grad_dict["like"], np.zeros((1, 1, 3, 3)))


# -- SequenceMask, SequenceLast, SequenceReverse -------------------------------------------

def _steps(data, axis):
    return data.shape[axis], data.shape[1 - axis]


def _length_of(length, n, steps):
    return steps if length is None else int(min(max(int(length[n]), 0), steps))


def _at(data, axis, t, n):
    return data[t, n] if axis == 0 else data[n, t]


def _seq_mask_ref(data, length=None, use_sequence_length=False, value=0.0, axis=0):
    out = data.copy()
    steps, batch = _steps(data, axis)
    for n in range(batch):
        for t in range(_length_of(length, n, steps), steps):
            if axis == 0:
                out[t, n] = value
            else:
                out[n, t] = value
    return out


def _seq_last_ref(data, length=None, use_sequence_length=False, axis=0):
    steps, batch = _steps(data, axis)
    out = np.zeros((batch,) + data.shape[2:])
    for n in range(batch):
        out[n] = _at(data, axis, max(_length_of(length, n, steps), 1) - 1, n)
    return out


def _seq_last_grad_ref(ograd, like, length=None, use_sequence_length=False, axis=0):
    steps, batch = _steps(like, axis)
    grad = np.zeros(like.shape)
    for n in range(batch):
        t = max(_length_of(length, n, steps), 1) - 1
        if axis == 0:
            grad[t, n] = ograd[n]
        else:
            grad[n, t] = ograd[n]
    return grad


def _seq_reverse_ref(data, length=None, use_sequence_length=False, axis=0):
    out = data.copy()
    steps, batch = _steps(data, axis)
    for n in range(batch):
        size = _length_of(length, n, steps)
        for t in range(size):
            if axis == 0:
                out[t, n] = data[size - 1 - t, n]
            else:
                out[n, t] = data[n, size - 1 - t]
    return out


_SEQ = {"use_sequence_length": True}
CASES += [
    OpCase("SequenceMask", [(4, 3, 2), Int((3,), 0, 6)], _seq_mask_ref, {**_SEQ, "value": -1.0}),
    OpCase("SequenceMask", [(3, 5), Int((3,), 0, 6)], _seq_mask_ref, {**_SEQ, "axis": 1}),
    OpCase("SequenceMask", [(4, 3), _float_ints((3,), 0, 5)], _seq_mask_ref, _SEQ,
           grad=False, name="float-length"),
    OpCase("SequenceMask", [(4, 3, 2)], _seq_mask_ref, {"value": 5.0}),
    OpCase("SequenceMask", [(0, 3), Int((3,), 0, 2)], _seq_mask_ref, _SEQ),
    OpCase("SequenceLast", [(4, 3, 2), Int((3,), 0, 7)], _seq_last_ref, _SEQ),
    OpCase("SequenceLast", [(3, 4), Int((3,), 1, 5)], _seq_last_ref, {**_SEQ, "axis": 1}),
    OpCase("SequenceLast", [(4, 3, 2)], _seq_last_ref),
    OpCase("SequenceLast", [(2, 5), _float_ints((2,), 1, 6)], _seq_last_ref,
           {**_SEQ, "axis": 1}, grad=False, name="float-length"),
    OpCase("SequenceLast", [(3, 0, 2), Int((0,), 1, 3)], _seq_last_ref, _SEQ),
    OpCase("_backward_SequenceLast", [(3, 2), (4, 3, 2), Int((3,), 0, 6)], _seq_last_grad_ref,
           _SEQ),
    OpCase("_backward_SequenceLast", [(3,), (3, 5)], _seq_last_grad_ref, {"axis": 1}),
    OpCase("SequenceReverse", [(5, 3, 2), Int((3,), 0, 7)], _seq_reverse_ref, _SEQ),
    OpCase("SequenceReverse", [(3, 5), Int((3,), 0, 6)], _seq_reverse_ref, {**_SEQ, "axis": 1}),
    OpCase("SequenceReverse", [(4, 2, 2)], _seq_reverse_ref),
    OpCase("SequenceReverse", [(4, 3), _float_ints((3,), 0, 5)], _seq_reverse_ref, _SEQ,
           grad=False, name="float-length"),
]


def test_sequence_inputs_and_shapes():
    data = sym.Variable("data")
    net = sym.SequenceLast(data, use_sequence_length=True, name="last")
    assert net.list_arguments() == ["data", "last_sequence_length"]
    args, outs, _ = net.infer_shape(data=(10, 4, 7))
    assert args == [(10, 4, 7), (4,)] and outs == [(4, 7)]
    assert sym.SequenceMask(data).list_arguments() == ["data"]
    masked = sym.SequenceMask(data, use_sequence_length=True, axis=1, name="mask")
    assert masked.infer_shape(data=(4, 10, 7))[0] == [(4, 10, 7), (4,)]


@pytest.mark.parametrize("op", ["SequenceMask", "SequenceLast", "SequenceReverse"])
def test_sequence_errors_name_the_op_and_shapes(op):
    fn = getattr(nd, op)
    with pytest.raises(ShapeError, match=rf"(?s){op}.*sequence_length.*\(4,\).*\(5, 3\).*"
                                         r"\(3,\)"):
        fn(nd.ones((5, 3)), nd.ones(4), use_sequence_length=True)
    with pytest.raises(ShapeError, match=rf"(?s){op}.*\(5,\).*at least 2 dimensions"):
        fn(nd.ones(5))
    with pytest.raises(ParamError, match="axis=2 must be one of 0, 1"):
        fn(nd.ones((5, 3)), axis=2)


def test_sequence_ops_executor(ctx):
    v = np.random.default_rng(0).normal(size=(4, 3, 2))
    length = np.array([2.0, 4.0, 1.0])
    data, seq = sym.Variable("data"), sym.Variable("len")
    net = sym.Group([sym.SequenceLast(data, seq, use_sequence_length=True),
                     sym.SequenceReverse(data, seq, use_sequence_length=True),
                     sym.SequenceMask(data, seq, use_sequence_length=True, value=9.0)])
    exe = net.bind(ctx, {"data": nd.array(v, ctx=ctx, dtype="float64"),
                         "len": nd.array(length, ctx=ctx, dtype="float64")},
                   args_grad={"data": nd.zeros(v.shape, ctx=ctx, dtype="float64")},
                   grad_req={"data": "write", "len": "null"})
    outs = exe.forward(is_train=True)
    assert_almost_equal(outs[0], _seq_last_ref(v, length))
    assert_almost_equal(outs[1], _seq_reverse_ref(v, length))
    assert_almost_equal(outs[2], _seq_mask_ref(v, length, value=9.0))
    rng = np.random.default_rng(1)
    grads = [rng.normal(size=o.shape) for o in outs]
    exe.backward([nd.array(g, ctx=ctx, dtype="float64") for g in grads])
    expected = (_seq_last_grad_ref(grads[0], v, length) + _seq_reverse_ref(grads[1], length)
                + _seq_mask_ref(grads[2], length))
    assert_almost_equal(exe.grad_dict["data"], expected)


def test_sequence_last_second_order():
    length = nd.array([3.0, 1.0])
    v = np.random.default_rng(5).uniform(-1, 1, (3, 2, 2))
    x = nd.array(v, dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = nd.square(nd.SequenceLast(x, length, use_sequence_length=True))
        g = autograd.grad(y, x, create_graph=True)
    g.backward()
    # g is 2x at each sequence's last step, 0 elsewhere: its derivative is 2 there
    assert_almost_equal(g, _seq_last_grad_ref(2 * _seq_last_ref(v, [3, 1]), v, [3, 1]))
    assert_almost_equal(x.grad, _seq_last_grad_ref(np.full((2, 2), 2.0), v, [3, 1]))


# -- the cases above, run ------------------------------------------------------------------

@pytest.mark.parametrize("case,dtype", forward_params(CASES))
def test_forward(case, dtype, ctx):
    run_forward(case, dtype, ctx)


@pytest.mark.parametrize("case", gradient_params(CASES))
def test_gradient(case, ctx):
    run_gradient(case, ctx)
