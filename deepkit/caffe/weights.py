"""A caffemodel blob checked against the shape the prototxt implies, as Caffe checks it.

Caffe compares a stored blob with the shape its layer needs with
``Blob::ShapeEquals``: a legacy 4-D blob (``num``/``channels``/``height``/
``width``) compares right-aligned, a ``BlobShape`` exactly (``()`` and ``(1,)``
being the same single value).
"""
import numpy as np

from deepkit_engine.base import DeepkitError

from . import reader
from .records import fmt_shape

__all__ = ["declared_shape", "shape_matches", "check_blob"]


def declared_shape(blob):
    """The shape a BlobProto declares.

    Args:
        blob: A BlobProto message.

    Returns:
        ``(shape, legacy)``: the legacy 4-D shape (checked first, as Caffe
        does) with ``legacy`` True, or the BlobShape dims, or ``(None, False)``.
    """
    if any(blob.has(f) for f in ("num", "channels", "height", "width")):
        return (int(blob.num), int(blob.channels), int(blob.height), int(blob.width)), True
    if blob.has("shape"):
        return tuple(int(d) for d in blob.shape.dim), False
    return None, False


def shape_matches(declared, legacy, expected):
    """Caffe's ``Blob::ShapeEquals``: legacy 4-D shapes compare right-aligned.

    Args:
        declared: The blob's declared shape (``None``: no shape, which matches).
        legacy: Whether ``declared`` is the legacy 4-D form.
        expected: The shape the layer needs.

    Returns:
        Whether the blob fits.
    """
    if declared is None:
        return True
    expected = tuple(expected)
    if legacy:
        if len(expected) > 4:
            return False
        return (1,) * (4 - len(expected)) + expected == tuple(declared)
    if declared == expected:
        return True
    return {declared, expected} == {(), (1,)}


def check_blob(blob, expected):
    """A blob's values in the shape its layer needs, or why they do not fit.

    Args:
        blob: A BlobProto message of the caffemodel.
        expected: The shape the prototxt implies.

    Returns:
        ``(declared, array, error)``: the declared shape (see
        :func:`declared_shape`), the values reshaped to ``expected`` (a
        zero-copy view where possible) and ``None``; or the declared shape,
        ``None`` and a message saying what does not fit.
    """
    declared, legacy = declared_shape(blob)
    try:
        array = np.asarray(reader.blob_array(blob)).reshape(-1)
    except DeepkitError as e:
        return declared, None, str(e)
    size = int(np.prod(expected)) if expected else 1
    if not shape_matches(declared, legacy, expected) or array.size != size:
        shown = fmt_shape(declared) if declared is not None else f"{array.size} values"
        if declared is not None and array.size != int(np.prod(declared or (1,))):
            shown += f" holding {array.size} values"
        return declared, None, f"caffemodel {shown}, prototxt needs {fmt_shape(expected)}"
    return declared, array.reshape(expected), None
