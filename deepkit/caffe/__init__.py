"""Caffe models in deepkit: read prototxt/caffemodel files (no Caffe, no protobuf) and
convert them to deepkit_engine symbols with weights, verified layer by layer.

- ``convert(prototxt, caffemodel, ...)`` -> :class:`CaffeConversion` (``.symbol``,
  ``.arg_params``, ``.aux_params``, ``.metadata``, ``.layer_table()``, ``.save(path)``);
  ``load_converted(path)`` reads a saved conversion back.
- ``verify(conversion, input, reference)`` compares the converted net with another
  implementation's outputs, per layer.
- The reader: ``read_prototxt``, ``read_caffemodel``, ``read_binaryproto``,
  ``blob_array``, ``upgrade_net``, ``Message``, ``CaffeFormatError``.
- The command line: :mod:`deepkit.caffe.cli` registers ``deepkit convert-caffe``
  and ``deepkit caffe-info``.

The modules: ``reader`` (with ``text_format``, ``wire``, ``message``, ``schema``,
``upgrade``) reads the files; ``convert`` is the entry point, over ``sources``
(what a conversion reads), ``phases`` (Caffe's include/exclude rules),
``converter`` (the layer-by-layer build, with ``inputs``, ``layers``, ``shapes``
and ``weights``), ``rgb`` (the BGR -> RGB fold), ``preprocessing`` (preprocessing
and metadata), ``records`` (the result) and ``problems`` (what stops it);
``verify`` runs and compares.
"""
# The submodules 'convert' and 'verify' share their names with the functions imported here:
# the functions are what ``deepkit.caffe.convert`` and ``deepkit.caffe.verify`` name.
from .convert import convert
from .problems import CaffeConversionError
from .reader import (CaffeFormatError, Message, blob_array, read_binaryproto, read_caffemodel,
                     read_prototxt, upgrade_net)
from .records import CaffeConversion, load_converted
from .verify import VerifyReport, verify

__all__ = ["convert", "CaffeConversion", "CaffeConversionError", "load_converted", "verify",
           "VerifyReport", "read_prototxt", "read_caffemodel", "read_binaryproto", "blob_array",
           "upgrade_net", "Message", "CaffeFormatError"]
