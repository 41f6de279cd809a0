"""Fused optimizer updates (MXNet's ``sgd_update``, ``sgd_mom_update``, ``adam_update``).

One op per parameter and step, so an update is one engine push and no
temporaries escape to Python. Call them with ``out=weight`` to update in
place. State inputs (momentum, Adam's moments) are declared ``aux``: they are
updated in place, and the engine orders that write.

``_multi_sgd_update`` updates many parameters in one push (a whole step of
SGD with or without momentum); its momenta are outputs, so it is called with
``out=[weights..., momenta...]``. MXNet's public multi-tensor ops
(``multi_sgd_update``, ``multi_sgd_mom_update`` and their mixed-precision
``multi_mp_`` forms) take the same steps with MXNet's signature: inputs
interleaved per weight, ``num_weights``, the new weights as outputs, and the
momenta and float32 master weights updated in place.
"""
import ast

import numpy as np

from ..base import DTypeError, ShapeError
from . import fused_update
from .registry import REQUIRED, OpDef, Param, register, write_result

_COMMON = {
    "lr": Param(float, doc="Learning rate."),
    "wd": Param(float, 0.0, "Weight decay (L2) coefficient."),
    "rescale_grad": Param(float, 1.0, "Gradient multiplier, e.g. 1/batch_size."),
    "clip_gradient": Param(float, -1.0, "Clip the rescaled gradient to [-c, c]; <0: off."),
}


def _weight_shape(attrs, in_shapes):
    return in_shapes, [in_shapes[0]]


def _weight_type(attrs, in_dtypes):
    return in_dtypes, [in_dtypes[0]]


def _gradient_term(xp, attrs, weight, grad):
    g = grad * attrs.rescale_grad
    if attrs.clip_gradient >= 0:
        xp.clip(g, -attrs.clip_gradient, attrs.clip_gradient, out=g)
    if attrs.wd:
        g += attrs.wd * weight
    return g


def _update_kernels(xp):
    """:mod:`.fused_update`'s compiled kernels for numpy arrays, else None."""
    return fused_update.kernels() if xp is np else None


def _fused_sgd(kernels, attrs, weight, grad, mom, out, lr, wd):
    """The step in place through :mod:`.fused_update`'s ``kernels`` (one pass), or False.

    ``mom`` None: plain SGD. It applies when ``out`` is ``weight`` itself (the
    usual ``out=weight``); the momentum is updated in place.
    """
    arrays = (weight, grad) if mom is None else (weight, grad, mom)
    if kernels is None or out is not weight or not fused_update.applies(attrs.clip_gradient,
                                                                         arrays):
        return False
    f32 = np.float32
    if mom is None:
        kernels.sgd_step(weight.reshape(-1), grad.reshape(-1), f32(attrs.rescale_grad), f32(wd),
                         f32(lr))
    else:
        kernels.sgd_mom_step(weight.reshape(-1), grad.reshape(-1), mom.reshape(-1),
                             f32(attrs.rescale_grad), f32(wd), f32(lr), f32(attrs.momentum))
    return True


def _sgd_forward(xp, attrs, inputs, outputs, req):
    weight, grad = inputs
    if req[0] in ("write", "inplace") and _fused_sgd(_update_kernels(xp), attrs, weight, grad,
                                                     None, outputs[0], attrs.lr, attrs.wd):
        return
    g = _gradient_term(xp, attrs, weight, grad)
    g *= -attrs.lr
    out = outputs[0]
    if req[0] == "add":
        out += weight + g
    elif req[0] != "null":
        xp.add(weight, g, out=out)


def _sgd_mom_forward(xp, attrs, inputs, outputs, req):
    weight, grad, mom = inputs
    if req[0] in ("write", "inplace") and _fused_sgd(_update_kernels(xp), attrs, weight, grad,
                                                     mom, outputs[0], attrs.lr, attrs.wd):
        return
    g = _gradient_term(xp, attrs, weight, grad)
    mom *= attrs.momentum
    g *= attrs.lr
    mom -= g
    out = outputs[0]
    if req[0] == "add":
        out += weight + mom
    elif req[0] != "null":
        xp.add(weight, mom, out=out)


def _adam_forward(xp, attrs, inputs, outputs, req):
    weight, grad, mean, var = inputs
    g = _gradient_term(xp, attrs, weight, grad)
    mean *= attrs.beta1
    mean += (1 - attrs.beta1) * g
    var *= attrs.beta2
    var += (1 - attrs.beta2) * g * g
    step = xp.sqrt(var)
    step += attrs.epsilon
    xp.divide(mean, step, out=step)
    step *= -attrs.lr
    out = outputs[0]
    if req[0] == "add":
        out += weight + step
    elif req[0] != "null":
        xp.add(weight, step, out=out)


register(OpDef(
    "sgd_update", _sgd_forward, inputs=("weight", "grad"), params=dict(_COMMON),
    infer_shape=_weight_shape, infer_type=_weight_type, inplace=((0, 0),),
    differentiable=False,
    doc="SGD step: ``weight - lr * (clip(rescale_grad * grad) + wd * weight)``."))

register(OpDef(
    "sgd_mom_update", _sgd_mom_forward, inputs=("weight", "grad", "mom"), aux=("mom",),
    params=dict(_COMMON, momentum=Param(float, 0.0, "Momentum coefficient.")),
    infer_shape=_weight_shape, infer_type=_weight_type, inplace=((0, 0),),
    differentiable=False,
    doc="SGD with momentum: ``mom = momentum * mom - lr * g``; returns ``weight + mom`` "
        "(``mom`` is updated in place)."))

register(OpDef(
    "adam_update", _adam_forward, inputs=("weight", "grad", "mean", "var"),
    aux=("mean", "var"),
    params=dict(_COMMON, beta1=Param(float, 0.9, "Decay of the first moment."),
                beta2=Param(float, 0.999, "Decay of the second moment."),
                epsilon=Param(float, 1e-8, "Added to the denominator.")),
    infer_shape=_weight_shape, infer_type=_weight_type, inplace=((0, 0),),
    differentiable=False,
    doc="Adam step (without bias correction, as MXNet's op: fold it into lr): updates the "
        "moments ``mean`` and ``var`` in place and returns the new weight."))


# -- many parameters in one push ------------------------------------------------------------

class Floats:
    """Parameter type: a tuple of floats (accepts a number, a list, or "(0.1, 0.2)")."""


class _FloatsParam(Param):
    """A :class:`Param` for :class:`Floats`."""

    __slots__ = ()

    def __init__(self, default=REQUIRED, doc=""):
        super().__init__(Floats, default, doc)

    def _convert(self, value):
        if isinstance(value, str):
            value = ast.literal_eval(value.strip())
        if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
            return (float(value),)
        return tuple(float(v) for v in value)

    def describe(self):
        default = "required" if self.default is REQUIRED else f"default={self.default!r}"
        return f"tuple of float, {default}"


def _multi_group(attrs):
    """Inputs per parameter: (weight, grad) or, with momentum, (weight, grad, mom)."""
    return 3 if attrs.momentum else 2


def _multi_outputs(attrs):
    n = len(attrs.lrs)
    names = tuple(f"weight{i}" for i in range(n))
    return names + tuple(f"mom{i}" for i in range(n)) if attrs.momentum else names


def _multi_sgd_shape(attrs, in_shapes):
    group, n = _multi_group(attrs), len(attrs.lrs)
    if len(attrs.wds) != n:
        raise ShapeError(f"lrs has {n} entries but wds has {len(attrs.wds)}: one of each per "
                         "parameter", argument="wds", expected=n, actual=len(attrs.wds))
    if len(in_shapes) != group * n:
        what = "(weight, grad, mom)" if attrs.momentum else "(weight, grad)"
        raise ShapeError(f"{len(in_shapes)} inputs for {n} parameters: each needs {what}",
                         argument="data", expected=group * n, actual=len(in_shapes))
    ins, weights = _unify_groups(
        in_shapes, group, n, lambda i, k: (f"parameter {i}: input {group * i + k}",
                                           group * i + k))
    return ins, weights * (2 if attrs.momentum else 1)


def _unify_groups(in_shapes, stride, n, describe):
    """Give the ``stride`` inputs of each of ``n`` weights one shape (the first known).

    Args:
        in_shapes: The inputs' shapes (None: unknown), weight by weight.
        stride: Inputs per weight (weight, grad, and states).
        n: The number of weights.
        describe: ``(weight index, input index in its group) -> (what, argument)``
            naming an input in the error for a shape that disagrees.

    Returns:
        ``(input shapes, one shape per weight)``.
    """
    ins, weights = list(in_shapes), []
    for i in range(n):
        part = in_shapes[stride * i:stride * (i + 1)]
        known = next((tuple(s) for s in part if s is not None), None)
        for k, s in enumerate(part):
            if s is not None and tuple(s) != known:
                what, argument = describe(i, k)
                raise ShapeError(f"{what} has shape {tuple(s)} but weight {i} needs {known}",
                                 argument=argument, expected=known, actual=tuple(s))
        ins[stride * i:stride * (i + 1)] = [known] * stride
        weights.append(known)
    return ins, weights


_multi_sgd_shape.partial = True


def _multi_sgd_type(attrs, in_dtypes):
    group = _multi_group(attrs)
    weights = list(in_dtypes[::group])
    return in_dtypes, weights * (2 if attrs.momentum else 1)


def _multi_sgd_forward(xp, attrs, inputs, outputs, req):
    group, n = _multi_group(attrs), len(attrs.lrs)
    kernels = _update_kernels(xp)
    for i in range(n):
        weight, grad = inputs[group * i], inputs[group * i + 1]
        if req[i] in ("write", "inplace") and (
                not attrs.momentum or req[n + i] in ("write", "inplace")) and _fused_multi_step(
                kernels, attrs, i, weight, grad, inputs, outputs, group, n):
            continue
        g = grad * attrs.rescale_grad
        if attrs.clip_gradient >= 0:
            xp.clip(g, -attrs.clip_gradient, attrs.clip_gradient, out=g)
        if attrs.wds[i]:
            g += attrs.wds[i] * weight
        g *= attrs.lrs[i]
        written = req[i] in ("write", "inplace")
        if attrs.momentum:
            mom = inputs[group * i + 2]
            if written and req[n + i] in ("write", "inplace"):
                # the same arithmetic straight into the outputs (in place when they alias)
                step = outputs[n + i]
                xp.multiply(mom, attrs.momentum, out=step)
                step -= g
                xp.add(weight, step, out=outputs[i])
                continue
            step = mom * attrs.momentum
            step -= g
            write_result(xp, outputs[i], weight + step, req[i])
            write_result(xp, outputs[n + i], step, req[n + i])
        elif written:
            xp.subtract(weight, g, out=outputs[i])
        else:
            write_result(xp, outputs[i], weight - g, req[i])


def _fused_multi_step(kernels, attrs, i, weight, grad, inputs, outputs, group, n):
    """Parameter ``i`` of ``_multi_sgd_update`` in place through the fused kernel, or False."""
    mom = inputs[group * i + 2] if attrs.momentum else None
    if mom is not None and outputs[n + i] is not mom:
        return False
    return _fused_sgd(kernels, attrs, weight, grad, mom, outputs[i], attrs.lrs[i], attrs.wds[i])


register(OpDef(
    "_multi_sgd_update", _multi_sgd_forward, variadic=True,
    params={"lrs": _FloatsParam(doc="Learning rate of each parameter."),
            "wds": _FloatsParam(doc="Weight decay of each parameter."),
            "momentum": Param(float, 0.0, "Momentum coefficient; 0: plain SGD, no momenta."),
            "rescale_grad": _COMMON["rescale_grad"],
            "clip_gradient": _COMMON["clip_gradient"]},
    outputs=_multi_outputs, infer_shape=_multi_sgd_shape, infer_type=_multi_sgd_type,
    differentiable=False,
    doc="One SGD step of many parameters: inputs (weight, grad) per parameter, or (weight, "
        "grad, mom) with momentum; outputs the new weights, then (with momentum) the new "
        "momenta, as sgd_update and sgd_mom_update compute them."))


# -- MXNet's public multi-tensor updates ----------------------------------------------------

class _MutatedInputs(tuple):
    """The names of the inputs an op updates in place (``mom_0``, ``weight32_3`` ...).

    Their count follows ``num_weights``, so membership goes by the name's stem
    (``'mom_12' in _MutatedInputs(('mom',))``) rather than a fixed list.
    """

    def __contains__(self, name):
        stem, _, index = str(name).rpartition("_")
        return index.isdigit() and tuple.__contains__(self, stem)


def _multi_stems(momentum, mixed):
    """Per parameter, the input stems in MXNet's order: weight, grad (, mom) (, weight32)."""
    return ("weight", "grad") + (("mom",) if momentum else ()) + (("weight32",) if mixed else ())


def _multi_public_inputs(momentum, mixed):
    stems = _multi_stems(momentum, mixed)

    def inputs(attrs):
        return tuple(f"{stem}_{i}" for i in range(attrs.num_weights) for stem in stems)
    return inputs


def _multi_public_outputs(attrs):
    n = attrs.num_weights  # MXNet's names: ``output``, or ``output0`` ... for several
    return ("output",) if n == 1 else tuple(f"output{i}" for i in range(n))


def _multi_public_shape(momentum, mixed):
    stems = _multi_stems(momentum, mixed)
    stride = len(stems)

    def infer_shape(attrs, in_shapes):
        n = attrs.num_weights
        for what in ("lrs", "wds"):
            got = len(getattr(attrs, what))
            if got != n:
                raise ShapeError(f"{what} has {got} entries but num_weights={n}: one per "
                                 "updated weight", argument=what, expected=n, actual=got)
        if len(in_shapes) != stride * n:
            raise ShapeError(f"{len(in_shapes)} inputs for num_weights={n}: each weight needs "
                             f"({', '.join(stems)})", argument="data", expected=stride * n,
                             actual=len(in_shapes))
        return _unify_groups(in_shapes, stride, n,
                             lambda i, k: (f"{stems[k]}_{i}", f"{stems[k]}_{i}"))
    infer_shape.partial = True
    return infer_shape


def _multi_public_type(momentum, mixed):
    stems = _multi_stems(momentum, mixed)
    stride = len(stems)
    # weight and grad share the output's dtype; with mixed precision the momentum and
    # the master weights are float32
    shared = 2 if mixed else stride

    def infer_type(attrs, in_dtypes):
        ins, outs = list(in_dtypes), []
        for i in range(attrs.num_weights):
            part = in_dtypes[stride * i:stride * (i + 1)]
            known = next((d for d in part[:shared] if d is not None), None)
            for k in range(shared):
                d = part[k]
                if d is not None and np.dtype(d) != np.dtype(known):
                    raise DTypeError(f"{stems[k]}_{i} has dtype {np.dtype(d).name} but weight {i} "
                                     f"has {np.dtype(known).name}; cast one with astype()",
                                     argument=f"{stems[k]}_{i}", expected=known, actual=d)
                ins[stride * i + k] = known
            for k in range(shared, stride):
                d = part[k]
                if d is not None and np.dtype(d) != np.float32:
                    raise DTypeError(f"{stems[k]}_{i} has dtype {np.dtype(d).name}; the "
                                     "multi-precision update keeps it in float32",
                                     argument=f"{stems[k]}_{i}", expected=np.float32, actual=d)
                ins[stride * i + k] = np.dtype(np.float32)
            outs.append(known)
        return ins, outs
    return infer_type


def _multi_public_forward(momentum, mixed):
    stride = len(_multi_stems(momentum, mixed))

    def forward(xp, attrs, inputs, outputs, req):
        kernels = None if mixed else _update_kernels(xp)
        for i in range(attrs.num_weights):
            group = inputs[stride * i:stride * (i + 1)]
            weight, grad = group[0], group[1]
            master = group[-1] if mixed else weight
            lr, wd = attrs.lrs[i], attrs.wds[i]
            if not wd and req[i] in ("write", "inplace") and _fused_sgd(
                    kernels, attrs, weight, grad, group[2] if momentum else None, outputs[i], lr,
                    0.0):
                continue  # without weight decay, the same step as the fused kernel's
            # MXNet's MultiSGDKernel, in the master weights' precision:
            # mom = momentum * mom - lr * wd * w - lr * clip(rescale_grad * grad); w += mom
            g = grad.astype(master.dtype) * attrs.rescale_grad
            if attrs.clip_gradient >= 0:
                xp.clip(g, -attrs.clip_gradient, attrs.clip_gradient, out=g)
            g *= lr
            if momentum:
                mom = group[2]
                step = mom * attrs.momentum
                step -= (lr * wd) * master
            else:
                step = master * -(lr * wd)
            step -= g
            if momentum:
                mom[...] = step
            new = master + step
            if mixed:
                master[...] = new
            write_result(xp, outputs[i], new, req[i])
    forward.__name__ = "forward_multi_" + ("mp_" if mixed else "") + "sgd" + \
        ("_mom" if momentum else "") + "_update"
    return forward


def _register_multi(name, momentum, mixed, doc):
    params = {"lrs": _FloatsParam(doc="Learning rate of each weight."),
              "wds": _FloatsParam(doc="Weight decay of each weight."),
              "rescale_grad": _COMMON["rescale_grad"],
              "clip_gradient": Param(float, -1.0, "Clip the rescaled gradient to [-c, c]; "
                                                  "<0: off."),
              "num_weights": Param(int, 1, "Number of weights updated.", min=1)}
    if momentum:
        params["momentum"] = Param(float, 0.0, "Momentum coefficient.")
    mutated = (("mom",) if momentum else ()) + (("weight32",) if mixed else ())
    op = register(OpDef(
        name, _multi_public_forward(momentum, mixed), inputs=_multi_public_inputs(momentum, mixed),
        params=params, outputs=_multi_public_outputs,
        infer_shape=_multi_public_shape(momentum, mixed),
        infer_type=_multi_public_type(momentum, mixed), differentiable=False, doc=doc))
    op.aux = _MutatedInputs(mutated)  # counted by num_weights, so matched by stem
    return op


_register_multi(
    "multi_sgd_update", False, False,
    "MXNet's ``multi_sgd_update``: one SGD step of ``num_weights`` weights, inputs "
    "interleaved ``weight_i, grad_i``: ``weight = (1 - lr*wd) * weight - lr * "
    "clip(rescale_grad * grad)``. Outputs the new weights; call with ``out=[weights]`` to "
    "update in place.")
_register_multi(
    "multi_sgd_mom_update", True, False,
    "MXNet's ``multi_sgd_mom_update``: SGD with momentum for ``num_weights`` weights, inputs "
    "interleaved ``weight_i, grad_i, mom_i``: ``mom = momentum * mom - lr*wd * weight - lr * "
    "clip(rescale_grad * grad)``, ``weight += mom``. The momenta are updated in place "
    "(auxiliary states); outputs the new weights (``out=[weights]`` to update in place).")
_register_multi(
    "multi_mp_sgd_update", False, True,
    "MXNet's ``multi_mp_sgd_update``: ``multi_sgd_update`` in mixed precision, inputs "
    "interleaved ``weight_i, grad_i, weight32_i``: the step is computed on the float32 "
    "master weights ``weight32_i`` (updated in place); outputs them cast to the weights' "
    "dtype (e.g. float16).")
_register_multi(
    "multi_mp_sgd_mom_update", True, True,
    "MXNet's ``multi_mp_sgd_mom_update``: ``multi_sgd_mom_update`` in mixed precision, "
    "inputs interleaved ``weight_i, grad_i, mom_i, weight32_i``: momenta and master weights "
    "are float32 and updated in place; outputs the new weights in the weights' dtype.")
