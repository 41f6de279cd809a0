"""What a conversion starts from: the net definition, the trained weights, the input shapes.

Paths are read with :mod:`deepkit.caffe.reader`; messages that are already
parsed pass through (upgraded from the V1 ``layers`` form where needed).
"""
import re

from deepkit_engine.base import DeepkitError

from . import reader

__all__ = ["read_net", "read_model", "parse_shape", "parse_input_shapes"]


def read_net(prototxt):
    """The net definition as a NetParameter.

    Args:
        prototxt: A path, prototxt text, a parsed NetParameter, or ``None``.

    Returns:
        The NetParameter in the V2 ``layer`` form, or ``None``.
    """
    if prototxt is None:
        return None
    if hasattr(prototxt, "layer"):  # an already-parsed NetParameter
        net = prototxt
    else:
        net = reader.read_prototxt(prototxt)
    if len(getattr(net, "layers", [])):
        net = reader.upgrade_net(net)
    return net


def read_model(caffemodel):
    """The trained weights as a NetParameter.

    Args:
        caffemodel: A path, the file's bytes, a parsed NetParameter, or ``None``.

    Returns:
        The NetParameter in the V2 ``layer`` form, or ``None``.
    """
    if caffemodel is None:
        return None
    if hasattr(caffemodel, "layer"):
        model = caffemodel
    else:
        model = reader.read_caffemodel(caffemodel)
    if len(getattr(model, "layers", [])) and not len(model.layer):
        model = reader.upgrade_net(model)
    return model


def parse_shape(value, what="input_shape"):
    """A shape from a sequence of integers or text such as ``'1,3,224,224'``.

    ``0``, ``None`` (text: ``None`` or ``?``) mark an axis whose size is free
    (the height and width of a net that runs on any input size); they are
    returned as 0.

    Args:
        value: The shape, as a sequence or text (``,``, ``x`` or spaces between numbers).
        what: How to name the value in errors.

    Returns:
        The shape as a tuple of ints (0 for a free axis).

    Raises:
        DeepkitError: ``value`` is not a shape.
    """
    if isinstance(value, str):
        parts = re.split(r"\s*[,x]\s*|\s+", value.strip().strip("()[]"))
        free = ("none", "?", "0")
        if not all(p.isdigit() or p.lower() in free for p in parts):
            raise DeepkitError(f"{what} {value!r} is not a list of integers such as "
                               "'1,3,224,224' (0 or None: a free height or width)")
        return tuple(0 if p.lower() in free else int(p) for p in parts)
    try:
        shape = tuple(0 if d is None else int(d) for d in value)
    except TypeError:
        raise DeepkitError(f"{what} must be a shape such as (1, 3, 224, 224), got "
                           f"{value!r}") from None
    return shape


def parse_input_shapes(input_shape):
    """The ``input_shape`` argument of ``convert``.

    Args:
        input_shape: ``None``, one shape (for the only image input) or
            ``{input_name: shape}``.

    Returns:
        ``(default_shape, {name: shape})``: the shape for the image input
        (or ``None``) and the shapes given by input name.
    """
    if input_shape is None:
        return None, {}
    if isinstance(input_shape, dict):
        return None, {str(k): parse_shape(v) for k, v in input_shape.items()}
    return parse_shape(input_shape), {}
