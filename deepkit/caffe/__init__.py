"""Caffe models in deepkit: read prototxt/caffemodel files (no Caffe, no protobuf) and
convert them to deepkit_engine symbols with weights, verified layer by layer.

- ``convert(prototxt, caffemodel, ...)`` -> :class:`CaffeModel`, a
  :class:`deepkit.models.SymbolModel` ready for ``predict`` and ``save`` (read
  back with ``deepkit.load_model``), with the conversion record
  (:class:`CaffeConversion`: ``.layer_table()``, ``.metadata``, ``.warnings``)
  as ``.conversion``; ``convert_record`` gives the record alone, and
  ``load_converted(path)`` reads a saved file as (symbol, args, aux, metadata).
- ``register_layer(type, fn)`` maps a layer type the converter does not know
  (``Python`` layers included) to your own function; ``supported_layers()``
  lists what is converted.
- ``verify(conversion, input, reference)`` compares the converted net with another
  implementation's outputs, per layer.
- The reader: ``read_prototxt``, ``read_caffemodel``, ``read_binaryproto``,
  ``blob_array``, ``upgrade_net``, ``Message``, ``CaffeFormatError``.
- The command line: :mod:`deepkit.caffe.cli` registers ``deepkit convert-caffe``
  and ``deepkit caffe-info``.

The modules: ``reader`` (with ``text_format``, ``wire``, ``message``, ``schema``,
``upgrade``) reads the files; ``convert`` is the entry point, over ``sources``
(what a conversion reads), ``phases`` (Caffe's include/exclude rules),
``converter`` (the layer-by-layer build, with ``inputs``, ``layers`` (BVLC's
types), ``detection_layers`` (SSD and other fork types), ``activation_layers``
(OpenCV's extra elementwise types), ``resize_layers`` (Interp), ``custom``
(user converters), ``shapes``, ``weights`` and ``owned`` (weights copied out of
the mapped file)), ``rgb`` (the BGR -> RGB fold), ``preprocessing`` (preprocessing
and metadata), ``records`` (the result) and ``problems`` (what stops it);
``model`` wraps the record in a Model, ``sizes`` records which input sizes
run; ``verify`` runs and compares; ``docs`` generates the supported-layer list.
"""
# The submodules 'convert' and 'verify' share their names with the functions imported here:
# the functions are what ``deepkit.caffe.convert`` and ``deepkit.caffe.verify`` name.
from .convert import convert, convert_record
from .custom import register_layer, registered_layers, unregister_layer
from .layers import supported_layers
from .model import CaffeModel
from .problems import CaffeConversionError
from .reader import (CaffeFormatError, Message, blob_array, read_binaryproto, read_caffemodel,
                     read_prototxt, upgrade_net)
from .records import CaffeConversion, load_converted
from .verify import VerifyReport, verify

__all__ = ["convert", "convert_record", "CaffeModel", "register_layer", "unregister_layer",
           "registered_layers", "supported_layers", "CaffeConversion", "CaffeConversionError", "load_converted", "verify",
           "VerifyReport", "read_prototxt", "read_caffemodel", "read_binaryproto", "blob_array",
           "upgrade_net", "Message", "CaffeFormatError"]
