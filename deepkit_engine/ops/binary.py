"""Binary elementwise ops: broadcasting forms, scalar forms and MXNet's names."""
from .elementwise import apply_ufunc, broadcast_shape, scalar_param
from .registry import OpDef, register


def _binary(name, ufunc_name, aliases=(), doc=""):
    def forward(xp, attrs, inputs, outputs, req):
        apply_ufunc(getattr(xp, ufunc_name), inputs, outputs[0], req[0])
    return register(OpDef(name, forward, inputs=("lhs", "rhs"), infer_shape=broadcast_shape,
                          aliases=aliases, inplace=((0, 0), (1, 0)), doc=doc))


def _scalar(name, ufunc_name, reverse=False, aliases=(), doc=""):
    if reverse:
        def forward(xp, attrs, inputs, outputs, req):
            apply_ufunc(getattr(xp, ufunc_name), (attrs.scalar, inputs[0]), outputs[0], req[0])
    else:
        def forward(xp, attrs, inputs, outputs, req):
            apply_ufunc(getattr(xp, ufunc_name), (inputs[0], attrs.scalar), outputs[0], req[0])
    return register(OpDef(name, forward, params=scalar_param(), aliases=aliases,
                          inplace=((0, 0),), doc=doc))


_binary("add", "add", aliases=("broadcast_add", "broadcast_plus", "elemwise_add", "_add", "_plus",
                               "_Plus"),
        doc="Elementwise sum ``lhs + rhs`` with numpy broadcasting.")
_scalar("_plus_scalar", "add", aliases=("_PlusScalar",), doc="``data + scalar``.")
