"""The extension point: your own converter for a Caffe layer type the converter does not know.

A converter function receives the layer being converted (a
:class:`~deepkit.caffe.converter.LayerBuild`: ``layer`` is the LayerParameter,
with its ``python_param`` or fork fields; ``bottoms`` the input symbols;
``bottom_shapes`` their Caffe shapes; ``node`` the name to give the output;
``weights(shapes)`` the caffemodel's blobs; ``param(...)`` to declare a
parameter) and returns its output symbols: one symbol, or a list with one
symbol (or ``(symbol, shape)``) per top. Output shapes not given are
inferred by the engine. Any op works, a custom op
(:mod:`deepkit_engine.custom`) included::

    from deepkit import caffe
    from deepkit_engine import symbol as sym

    @caffe.register_layer("Python:my_layers.L2Norm")   # or "Python", or a fork's type
    def l2norm(cx):
        return sym.L2Normalization(cx.bottoms[0], mode="channel", name=cx.node)

    model = caffe.convert("deploy.prototxt", "net.caffemodel")

or per call: ``caffe.convert(..., custom_layers={"MyType": fn})``. A Python
layer is looked up as ``"Python:<module>.<layer>"`` first, then ``"Python"``.
A registered type also overrides a built-in converter.
"""
from deepkit_engine.base import DeepkitError

__all__ = ["register_layer", "unregister_layer", "registered_layers", "lookup_key",
           "REGISTERED"]

#: ``{caffe type key: function}`` registered with :func:`register_layer`.
REGISTERED = {}


def register_layer(caffe_type, fn=None):
    """Map a Caffe layer type to a converter function (usable as a decorator).

    Args:
        caffe_type: The layer's ``type`` (``"Python"`` for every Python layer,
            ``"Python:<module>.<layer>"`` for one ``python_param`` class).
        fn: ``fn(cx)`` returning the output symbol(s); see the module docs.

    Returns:
        ``fn`` (or the decorator).
    """
    if not isinstance(caffe_type, str) or not caffe_type:
        raise DeepkitError(f"register_layer: caffe_type must be a layer type name, got "
                           f"{caffe_type!r}")

    def deco(function):
        if not callable(function):
            raise DeepkitError(f"register_layer('{caffe_type}'): expected a function, got "
                               f"{function!r}")
        REGISTERED[caffe_type] = function
        return function
    return deco(fn) if fn is not None else deco


def unregister_layer(caffe_type):
    """Forget the function registered for ``caffe_type`` (no error if there is none)."""
    REGISTERED.pop(caffe_type, None)


def registered_layers():
    """The registered type keys, sorted."""
    return sorted(REGISTERED)


def lookup_key(layer):
    """The keys a layer is looked up by, most specific first.

    Args:
        layer: A LayerParameter.

    Returns:
        ``["Python:<module>.<layer>", "Python"]`` for a Python layer, else ``[type]``.
    """
    if layer.type == "Python":
        p = layer.python_param
        return [f"Python:{p.module}.{p.layer}", "Python"]
    return [layer.type]
