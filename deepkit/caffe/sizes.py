"""Which input axes of a converted net may change size.

A net is converted (and its shapes checked with Caffe's rules) at one input
size. A fully convolutional net runs on any height and width: the engine's
shape inference accepts another size. :func:`mark_free_sizes` records, per
image input, the axes left free by ``input_shape`` (``0``/``None``) and
whether the net accepts another height and width (``any_size``), in the
metadata's ``inputs`` entries.
"""
from deepkit_engine.base import DeepkitError

__all__ = ["mark_free_sizes", "fixed_size_layer"]

#: How much the probe changes the height and width.
PROBE_GROWTH = (7, 5)


def fixed_size_layer(conversion, shapes):
    """The layer that stops the net from running on inputs of ``shapes``, or ``None``.

    Args:
        conversion: A :class:`~deepkit.caffe.records.CaffeConversion`.
        shapes: ``{input name: full shape}``.

    Returns:
        ``(layer description, engine message)`` or ``None`` when the
        engine infers every shape.
    """
    known = set(conversion.symbol.list_arguments())
    try:
        conversion.symbol.infer_shape(**{k: v for k, v in shapes.items() if k in known})
    except DeepkitError as e:
        node = getattr(e, "node", None)
        for rec in conversion.layers:
            if rec.node == node:
                return f"layer '{rec.name}' ({rec.type})", str(e)
        return (f"node '{node}'" if node else "a layer"), str(e)
    return None


def mark_free_sizes(conversion, free_axes):
    """Record in ``conversion.metadata['inputs']`` which axes may change size.

    Args:
        conversion: A successful :class:`~deepkit.caffe.records.CaffeConversion`.
        free_axes: ``{input name: [axis, ...]}`` given as 0/None in ``input_shape``.
    """
    entries = conversion.metadata.get("inputs") or []
    shapes = dict(conversion.inputs)
    for entry in entries:
        name, shape = entry["name"], tuple(shapes.get(entry["name"], ()))
        entry["free_axes"] = list(free_axes.get(name, []))
        if len(shape) != 4:
            entry["any_size"] = False
            continue
        probe = dict(shapes)
        probe[name] = shape[:2] + (shape[2] + PROBE_GROWTH[0], shape[3] + PROBE_GROWTH[1])
        blocker = fixed_size_layer(conversion, probe)
        entry["any_size"] = blocker is None
        if blocker is not None:
            entry["fixed_by"] = blocker[0]
            if entry["free_axes"]:
                conversion.warnings.append(
                    f"input_shape leaves the size of '{name}' free, but {blocker[0]} needs a "
                    f"fixed input size: the model runs only at {shape[2]}x{shape[3]}")
