"""``Embedding`` (MXNet 1.x): rows of a weight matrix picked by index.

The weight gradient sums the rows of the incoming gradient per index
(``_backward_Embedding``), linear in the incoming gradient with a gradient of
its own, so higher orders work. The indices get no gradient.
"""
import numpy as np

from ..base import ShapeError
from .indexing import check_index_dtype
from .registry import REQUIRED, DType, OpDef, Param, register, write_result


def _embedding_shape(attrs, in_shapes):
    data, weight = in_shapes
    want = (attrs.input_dim, attrs.output_dim)
    if weight is not None and tuple(weight) != want:
        raise ShapeError(f"input 'weight' has shape {tuple(weight)} but input_dim="
                         f"{attrs.input_dim}, output_dim={attrs.output_dim} need {want}",
                         argument="weight", expected=want, actual=tuple(weight))
    if data is None:
        return [None, want], [None]
    return [tuple(data), want], [tuple(data) + (attrs.output_dim,)]


def _embedding_type(attrs, in_dtypes):
    data, weight = in_dtypes
    check_index_dtype(data, "data")
    dtype = weight if weight is not None else np.dtype(attrs.dtype)
    return [data, dtype], [dtype]


def _rows(xp, data, input_dim):
    """int64 row indices: floats truncated, then clipped into [0, input_dim) (MXNet)."""
    return xp.clip(data.astype(np.int64, copy=False), 0, input_dim - 1)


def _embedding_forward(xp, attrs, inputs, outputs, req):
    data, weight = inputs
    out = outputs[0]
    if req[0] == "null" or out.size == 0:
        return
    idx = _rows(xp, data, attrs.input_dim)
    if req[0] != "add" and out.flags.c_contiguous:
        xp.take(weight, idx, axis=0, out=out)
    else:
        write_result(xp, out, xp.take(weight, idx, axis=0), req[0])


def _scatter_rows(xp, grad, idx, rows):
    """``grad[idx[i]] += rows[i]`` with repeated indices accumulating."""
    if xp is np:
        # sort once, sum each run of equal indices, then one unique-index update
        order = np.argsort(idx, kind="stable")
        ordered = idx[order]
        starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
        grad[ordered[starts]] += np.add.reduceat(rows[order], starts, axis=0)
    elif hasattr(xp.add, "at"):  # cupy >= 13
        xp.add.at(grad, idx, rows)
    else:  # pragma: no cover - older cupy
        import cupyx  # noqa: PLC0415 - optional: GPU builds only
        cupyx.scatter_add(grad, idx, rows)


def _backward_embedding_shape(attrs, in_shapes):
    ograd, data = in_shapes
    want = (attrs.input_dim, attrs.output_dim)
    if data is not None:
        expected = tuple(data) + (attrs.output_dim,)
        if ograd is not None and tuple(ograd) != expected:
            raise ShapeError(f"ograd has shape {tuple(ograd)} but the forward output had "
                             f"{expected}", argument="ograd", expected=expected,
                             actual=tuple(ograd))
        ograd = expected
    return [ograd, data], [want]


def _backward_embedding_type(attrs, in_dtypes):
    ograd, data = in_dtypes
    check_index_dtype(data, "data")
    return in_dtypes, [ograd]


def _backward_embedding_forward(xp, attrs, inputs, outputs, req):
    ograd, data = inputs
    grad = outputs[0]
    if req[0] == "null":
        return
    if req[0] != "add":
        grad.fill(0)
    if data.size and attrs.output_dim:
        idx = _rows(xp, data, attrs.input_dim).reshape(-1)
        _scatter_rows(xp, grad, idx, ograd.reshape(idx.size, attrs.output_dim))


_EMBEDDING_DIMS = {
    "input_dim": Param(int, REQUIRED, "Vocabulary size: rows of the weight.", min=1),
    "output_dim": Param(int, REQUIRED, "Size of each embedding vector.", min=0),
}

register(OpDef(
    "_backward_Embedding", _backward_embedding_forward, inputs=("ograd", "data"),
    params=dict(_EMBEDDING_DIMS), infer_shape=_backward_embedding_shape,
    infer_type=_backward_embedding_type, partial_infer=True,
    gradient=lambda F, node, ograds: [
        F.Embedding(node.inputs[1], ograds[0], input_dim=node.attrs.input_dim,
                    output_dim=node.attrs.output_dim), None],
    doc="Gradient of Embedding's weight: zeros of shape (input_dim, output_dim) with each "
        "row of `ograd` added at its index (repeated indices accumulate)."))

register(OpDef(
    "Embedding", _embedding_forward, inputs=("data", "weight"),
    params={**_EMBEDDING_DIMS,
            "dtype": Param(DType, "float32", "Dtype of the weight (and the output) when not "
                                             "given by the weight itself."),
            "sparse_grad": Param(bool, False, "Accepted for MXNet compatibility; the gradient "
                                              "is always dense.")},
    infer_shape=_embedding_shape, infer_type=_embedding_type, partial_infer=True,
    gradient=lambda F, node, ograds: [
        None, F._backward_Embedding(ograds[0], node.inputs[0], input_dim=node.attrs.input_dim,
                                    output_dim=node.attrs.output_dim)],
    doc="Look up rows of `weight` (input_dim, output_dim) at the integer indices in `data` "
        "(clipped into range); the output shape is ``data.shape + (output_dim,)``. `data` "
        "gets no gradient."))
