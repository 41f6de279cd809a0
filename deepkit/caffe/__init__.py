"""Caffe models in deepkit: read prototxt/caffemodel files (no Caffe, no protobuf) and
convert them to deepkit_engine symbols with weights, verified layer by layer.

- ``convert(prototxt, caffemodel, ...)`` -> :class:`CaffeConversion` (``.symbol``,
  ``.arg_params``, ``.aux_params``, ``.metadata``, ``.layer_table()``, ``.save(path)``);
  ``load_converted(path)`` reads a saved conversion back.
- ``verify(conversion, input, reference)`` compares the converted net with another
  implementation's outputs, per layer.
- The reader: ``read_prototxt``, ``read_caffemodel``, ``read_binaryproto``,
  ``blob_array``, ``upgrade_net``, ``Message``, ``CaffeFormatError``.
"""
import importlib

# Eager: the submodules 'convert' and 'verify' share their names with the functions, and a
# later ``import deepkit.caffe.verify`` must not shadow the function with the module.
from .convert import CaffeConversion, CaffeConversionError, convert, load_converted  # noqa: E402
from .verify import VerifyReport, verify  # noqa: E402

__all__ = ["convert", "CaffeConversion", "CaffeConversionError", "load_converted", "verify",
           "VerifyReport", "read_prototxt", "read_caffemodel", "read_binaryproto", "blob_array",
           "upgrade_net", "Message", "CaffeFormatError"]

_LAZY = {
    "read_prototxt": ".reader", "read_caffemodel": ".reader", "read_binaryproto": ".reader",
    "blob_array": ".reader", "upgrade_net": ".reader", "Message": ".reader",
    "CaffeFormatError": ".reader",
}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'deepkit.caffe' has no attribute '{name}'")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
