"""``Dropout`` (MXNet 1.x).

It has a second, hidden output: the mask it applied (already scaled by
``1/(1-p)``, with size-1 axes where ``axes`` shares it), which its gradient
multiplies the incoming gradient by, as in MXNet.
"""

from .activation import _uniform_into
from .indexing import normalize_axis
from .registry import OpDef, Param, Shape, register, same_dtype
from .shape_utils import copy_into


def _dropout_shape(attrs, in_shapes):
    (data,) = in_shapes
    if data is None:
        return in_shapes, [None, None]
    data = tuple(data)
    mask = list(data)
    for axis in attrs.axes:
        mask[normalize_axis(axis, len(data), "axes")] = 1
    return [data], [data, tuple(mask)]


_dropout_shape.partial = True


def _dropout_type(attrs, in_dtypes):
    ins, outs = same_dtype(attrs, in_dtypes)
    return ins, outs * 2


def _dropout_forward(xp, attrs, inputs, outputs, req, rng=None, is_train=False):
    x = inputs[0]
    out, mask = outputs
    p = attrs.p
    if not (is_train or attrs.mode == "always") or p == 0.0:
        if req[1] == "add":
            mask += 1
        elif req[1] != "null":
            mask.fill(1)
        copy_into(xp, out, x, req[0])
        return
    m = mask if req[1] != "add" else xp.empty_like(mask)
    if p >= 1.0:
        m.fill(0)
    elif m.size:
        _uniform_into(xp, rng, m, 0.0, 1.0)
        xp.greater_equal(m, p, out=m)  # 1.0 where kept: with probability 1 - p
        m *= 1.0 / (1.0 - p)
    if req[1] == "add":
        mask += m
    if req[0] == "add":
        out += x * m
    elif req[0] != "null":
        xp.multiply(x, m, out=out)


register(OpDef(
    "Dropout", _dropout_forward, outputs=("output", "mask"), visible_outputs=1,
    resources=("rng", "is_train"), inplace=((0, 0),),
    params={"p": Param(float, 0.5, "Fraction of the elements set to zero.", min=0.0, max=1.0),
            "mode": Param(str, "training", "'training': only in training (identity in "
                          "inference); 'always': in inference too.",
                          choices=("training", "always")),
            "axes": Param(Shape, (), "Axes along which one mask value is shared (variational "
                          "dropout)."),
            "cudnn_off": Param(bool, False, "Accepted for MXNet compatibility; no effect.")},
    infer_shape=_dropout_shape, infer_type=_dropout_type, partial_infer=True,
    gradient=lambda F, node, ograds: [ograds[0] * node.outputs[1]],
    doc="Zero each element with probability p in training and scale the rest by 1/(1-p), "
        "so the expected value is unchanged; the identity in inference (mode='training')."))
