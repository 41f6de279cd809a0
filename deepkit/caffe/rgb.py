"""``rgb=True``: a BGR -> RGB input channel swap folded into the weights that read the input.

Starting from the 3-channel inputs, the swap travels through the layers that
keep channels apart (activations, pooling, per-channel BatchNorm/Scale/PReLU,
within-channel LRN) and is folded into the first Convolution or InnerProduct
weights on every path. Where that is not exact (a grouped convolution, shared
parameters, a layer that mixes channels, a blob reaching the output), the swap
is refused with the reason.
"""
import numpy as np

__all__ = ["apply_rgb"]

_RGB_PASS = {"ReLU", "Sigmoid", "TanH", "AbsVal", "ELU", "BNLL", "Power", "Exp", "Log",
             "Threshold", "Clip", "Swish", "Dropout", "ReLU6", "Pooling"}


def apply_rgb(conv, res):
    """Fold a BGR -> RGB swap into the layers that read the image input; refuse if inexact.

    Args:
        conv: The :class:`~deepkit.caffe.converter.Converter` after building
            (a refusal is recorded as an ``'rgb'`` problem there).
        res: Its :class:`~deepkit.caffe.records.CaffeConversion`, whose
            parameters are replaced by swapped copies.

    Returns:
        The names of the layers that changed (empty when refused).
    """
    targets = [v for rec, _ in conv.input_layers for v in rec.top_versions
               if v.state == "ok" and len(v.shape) == 4 and v.shape[1] == 3]
    if not targets:
        conv.problem("rgb", None, "rgb=True needs an input with 3 channels; there is none")
        return []
    perm = np.array([2, 1, 0])
    changed, swaps = [], {}
    queue = list(targets)
    seen = set()
    while queue:
        v = queue.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        if not v.consumers and conv.versions.get(v.name) is v:
            conv.problem("rgb", None, f"blob '{v.name}' reaches the output with its channels "
                                      "still in input order; the swap cannot be folded in")
            return []
        for rec in v.consumers:
            why = _rgb_step(conv, res, rec, v, perm, swaps)
            if why is not None:
                conv.problem("rgb", rec, f"cannot fold the BGR->RGB swap exactly: {why}",
                             "convert without rgb and swap the channels of the input instead")
                return []
            if rec.type != "Convolution" and rec.type != "InnerProduct":
                queue.extend(rec.top_versions)
            elif rec.params:
                rec.note = "input channels reordered: takes RGB"
            changed.append(rec.name)
    for name, array in swaps.items():
        target = res.aux_params if name in res.aux_params else res.arg_params
        target[name] = array
    return changed


def _rgb_step(conv, res, rec, v, perm, swaps):
    def swap(name, axis):
        arr = swaps.get(name)
        if arr is None:
            arr = res.arg_params.get(name, res.aux_params.get(name))
        if arr is None:
            return
        swaps[name] = np.ascontiguousarray(np.take(arr, perm, axis=axis))

    shared = [p.name for p in rec.params if sum(p.name in (q.name for q in r.params)
                                                 for r in conv.records) > 1]
    if shared:
        return f"its parameters are shared with other layers ({', '.join(shared)})"
    params = {p.role: p for p in rec.params}
    if rec.status != "converted":
        return f"it is {rec.status}"
    t = rec.type
    if t == "Convolution":
        w = params.get("weight")
        if w is None or w.shape[1] != 3:
            return "a grouped convolution mixes the swapped channels with its groups"
        swap(w.name, 1)
        return None
    if t == "InnerProduct":
        w = params.get("weight")
        if w is None or v.shape is None or len(v.shape) not in (2, 4) or w.shape[1] != \
                int(np.prod(v.shape[1:])):
            return "it does not read the channels as its first flattened axis"
        arr = swaps.get(w.name, res.arg_params.get(w.name))
        if arr is not None:
            n = arr.shape[0]
            swaps[w.name] = np.ascontiguousarray(
                arr.reshape(n, 3, -1)[:, perm, :].reshape(arr.shape))
        return None
    if t in _RGB_PASS:
        return None
    if t == "LRN":
        return None if rec.type == "LRN" and _lrn_is_within(conv, rec) else \
            "across-channel LRN mixes the channels"
    if t == "BatchNorm":
        for p in rec.params:
            swap(p.name, 0)
        return None
    if t in ("Scale", "Bias"):
        if len(rec.bottoms) != 1:
            return "its scale comes from a second input"
        for p in rec.params:  # engine layout: the data's rank, per-channel means (1, 3, 1, ...)
            if all(d == 1 for d in p.shape):
                continue
            if len(p.shape) < 2 or p.shape[1] != 3 or any(d != 1 for i, d in
                                                          enumerate(p.shape) if i != 1):
                return f"its parameter {p.name} {p.shape} is not one value per channel"
            swap(p.name, 1)
        return None
    if t == "PReLU":
        for p in rec.params:
            swap(p.name, 0)
        return None
    return f"layer type {t} reads the input channels directly"


def _lrn_is_within(conv, rec):
    for layer in conv.layers:
        if layer.name == rec.name and layer.type == "LRN":
            return layer.lrn_param.norm_region == "WITHIN_CHANNEL"
    return False
