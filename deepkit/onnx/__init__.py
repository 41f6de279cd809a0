"""ONNX in and out: ``export(model, path)`` and ``load(path)`` (needs the ``onnx`` extra).

``deepkit.onnx.export`` writes any model's inference graph (layer models, the
zoo's architectures, converted Caffe nets) with a dynamic batch dimension;
``deepkit.onnx.load`` reads ONNX graphs of convolutional classifiers (those
deepkit writes, and those PyTorch's exporter writes) as a model ready for
``predict``. ``deepkit export-onnx`` and ``deepkit import-onnx`` do the same
from the command line.
"""
from .export import DEFAULT_OPSET, ExportError, export, exportable_ops
from .importer import OnnxImportError, importable_ops, load

__all__ = ["export", "load", "ExportError", "OnnxImportError", "DEFAULT_OPSET",
           "exportable_ops", "importable_ops"]
