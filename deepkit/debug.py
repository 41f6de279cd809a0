"""Finding where a non-finite value came from: replay a batch layer by layer.

``TerminateOnNaN(debug=True)`` uses it when the loss turns NaN or infinite:
it checks the failing batch and the weights it started from, then builds a
model whose outputs are every layer's outputs (sharing the weights) and
replays the batch through it, to name the first layer that produced a
non-finite value.
"""
import numpy as np

from .layers.base import InputLayer
from .trainer.data import named, unpack_x_y_sample_weight

__all__ = ["diagnose_batch", "replay_layers", "nonfinite_counts", "host_arrays"]


def nonfinite_counts(array):
    """``'N of M values non-finite (a NaN, b inf)'`` for a float array, or None when all are finite."""
    array = np.asarray(array)
    if array.dtype.kind not in "fc":
        return None
    nan = int(np.isnan(array).sum())
    inf = int(np.isinf(array).sum())
    if not nan and not inf:
        return None
    return f"{nan + inf} of {array.size} values non-finite ({nan} NaN, {inf} inf)"


def host_arrays(values):
    """``{name: numpy array}`` from a dict of arrays, HostBatches or NDArrays."""
    out = {}
    for name, value in (values or {}).items():
        value = value() if callable(value) else value
        out[name] = value.asnumpy() if hasattr(value, "asnumpy") else np.asarray(value)
    return out


def diagnose_batch(model, data, snapshot):
    """Say where the first non-finite value of a failed training batch came from.

    Checks the batch's inputs and labels, the weights as they were before the
    batch, and replays the batch through every layer (in inference mode) to
    name the first layer whose output is not finite.

    Args:
        model: The model that was training.
        data: The batch, ``(x, y, sample_weight)`` as ``train_step`` received it.
        snapshot: ``[(parameter, NDArray copy or None)]`` taken before the batch.

    Returns:
        ``(report text, layer name or None)``.
    """
    x, y, _ = unpack_x_y_sample_weight(data)
    inputs = host_arrays(named(x, model.input_names, "x"))
    labels = host_arrays(named(y, model.output_names, "y")) if y is not None else {}
    lines = ["debug:"]
    for what, values in (("input", inputs), ("label", labels)):
        for name, value in values.items():
            bad = nonfinite_counts(value)
            if bad:
                lines.append(f"  {what} '{name}' of the batch: {bad}; clean the data")
    snapshot = snapshot or []
    missing = not snapshot or any(s is None for _, s in snapshot)
    bad_weights = []
    for p, saved in snapshot:
        if saved is not None:
            bad = nonfinite_counts(saved.asnumpy())
            if bad:
                bad_weights.append(f"{p.name}: {bad}")
    if bad_weights:
        lines.append("  weights were already non-finite before this batch (an earlier "
                     "update diverged: lower the learning rate or clip gradients): "
                     + "; ".join(bad_weights))
    if missing:
        lines.append("  the weights before this batch were not captured (they were "
                     "created during it); the replay uses the current weights")
    replayed, layer = replay_layers(model, inputs, None if missing else snapshot)
    lines.extend(replayed)
    return "\n".join(lines), layer


def replay_layers(model, inputs, snapshot):
    """Replay a batch through every layer of ``model``; the first non-finite layer output.

    Args:
        model: A functional or Sequential model.
        inputs: ``{input name: numpy array}`` of the batch.
        snapshot: ``[(parameter, NDArray copy)]`` of the weights to replay with
            (restored afterwards), or None for the current weights.

    Returns:
        ``(lines, layer name or None)``: the report lines and the layer named.
    """
    pairs = []
    for layer in model.layers:
        if isinstance(layer, InputLayer):
            continue
        index = 0
        while True:
            try:
                out = layer.get_output_at(index)
            except IndexError:
                break
            for tensor in out if isinstance(out, list) else [out]:
                pairs.append((layer, tensor))
            index += 1
    name = f"{model.name}_nan_debug"
    try:
        probe = model.with_outputs([t for _, t in pairs], name=name)
    except ValueError:  # some calls of shared layers belong to other models
        kept = []
        for layer, tensor in pairs:
            try:
                model.with_outputs([tensor], name=name)
            except ValueError:
                continue
            kept.append((layer, tensor))
        pairs = kept
        probe = model.with_outputs([t for _, t in pairs], name=name)
    params = [p for p in model.weights if p.data is not None]
    ctx = params[0].data.ctx if params else None
    current = []
    if snapshot is not None:
        for p, saved in snapshot:
            current.append((p, p.data.copy()))
            saved.copyto(p.data)
    try:
        outputs = probe.predict(inputs, batch_size=len(next(iter(inputs.values()))),
                                ctx=ctx)
    finally:
        for p, value in current:
            value.copyto(p.data)
    values = {id(t): v for t, v in zip(model.inputs, inputs.values())}
    for (_, tensor), value in zip(pairs, outputs):
        values[id(tensor)] = value
    for (layer, tensor), value in zip(pairs, outputs):
        bad = nonfinite_counts(value)
        if not bad:
            continue
        line = (f"  layer '{layer.name}' ({type(layer).__name__}) is the first to produce "
                f"a non-finite value (replayed in inference mode): its output "
                f"{tuple(value.shape)} has {bad}")
        try:
            ins = layer.input if tensor.node_index == 0 else None
        except Exception:  # noqa: BLE001 - only for the report
            ins = None
        ins = ins if isinstance(ins, list) else [ins] if ins is not None else []
        finite_in = [values[id(t)] for t in ins if id(t) in values]
        if finite_in and all(nonfinite_counts(v) is None for v in finite_in):
            biggest = max(float(np.max(np.abs(v))) if v.size else 0.0 for v in finite_in)
            line += f"; its input is finite (largest magnitude {biggest:.4g})"
        return [line], layer.name
    return ["  every layer output is finite when the batch is replayed in inference mode: "
            "the non-finite value comes from the loss (e.g. log(0) on probabilities of "
            "exactly 0 or 1: try from_logits=True), the labels, training-mode behaviour "
            "(Dropout, BatchNormalization batch statistics) or the backward pass"], None
