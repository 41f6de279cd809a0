"""Caffe nets to deepkit_engine symbols with weights: ``convert(prototxt, caffemodel)``.

The structure comes from the prototxt, the weights from the caffemodel,
matched by layer name (the first caffemodel layer of that name with blobs,
as Caffe and OpenCV do). The steps:

1. Caffe's phase rules (``include``/``exclude`` with phase, level and stage;
   TEST by default) pick the layers (:mod:`~deepkit.caffe.phases`).
2. Every layer type and every parameter value is checked before anything is
   built; everything that cannot be converted exactly is listed at once, with
   what to do (:class:`~deepkit.caffe.problems.CaffeConversionError`).
3. Blob names are treated as SSA: each write (in-place layers included) is a
   new version, and each layer reads the latest version at its position in
   the file (:mod:`~deepkit.caffe.converter`).
4. Each layer becomes one engine op where one suffices (:mod:`~deepkit.caffe.layers`),
   with its output shape computed by Caffe's own formulas
   (:mod:`~deepkit.caffe.shapes`); the caffemodel's blob counts and shapes
   are checked against those (Caffe's right-aligned rule for legacy 4-D blobs,
   :mod:`~deepkit.caffe.weights`), and every output shape against the
   engine's shape inference. Mismatches are errors naming the layer.
5. Split, Silence, Accuracy and loss layers are dropped (SoftmaxWithLoss
   becomes softmax); the net outputs are the blobs nothing consumes, in
   Caffe's order (sorted by name).

The result, :class:`~deepkit.caffe.records.CaffeConversion`, holds the symbol,
``arg_params`` and ``aux_params`` (numpy arrays in the engine's layouts, copied out of the memory-mapped
caffemodel blob by blob so that they never depend on the file,
:mod:`~deepkit.caffe.owned`),
the inputs, the preprocessing metadata (:mod:`~deepkit.caffe.preprocessing`)
and a per-layer table, and ``save(path)`` writes it as one HDF5 file
(atomically, :mod:`deepkit.symbol_file`) that ``load_converted`` reads back.
"""
import os

import numpy as np

from deepkit.symbol_file import FORMAT, VERSION, escape_name, unescape_name
from deepkit_engine.base import DeepkitError

from .converter import Converter
from .detection_layers import FORK_FIELDS
from .model import CaffeModel, model_from_conversion
from .preprocessing import load_mean, metadata, preprocessing
from .problems import CaffeConversionError, Problem
from .records import CaffeConversion, LayerRecord, ParamRecord, load_converted
from .rgb import apply_rgb
from .sizes import mark_free_sizes
from .sources import read_model, read_net

# The result types, the errors and the saved format's names are importable from here too.
__all__ = ["convert", "convert_record", "CaffeModel", "CaffeConversion", "CaffeConversionError", "Problem", "LayerRecord",
           "ParamRecord", "load_converted", "escape_name", "unescape_name", "FORMAT", "VERSION"]


def convert(prototxt, caffemodel=None, mean=None, rgb=False, input_shape=None, phase="TEST",
            fuse_bn_scale=False, *, level=0, stages=(), scale=None, strict=True,
            allow_missing_weights=False, custom_layers=None):
    """Convert a Caffe net (deploy prototxt + caffemodel) to a Model ready for predict and save.

    ``model = deepkit.caffe.convert("deploy.prototxt", "net.caffemodel")``
    then ``model.predict(x)``, ``model.save("net.h5")`` (read back with
    ``deepkit.load_model``); ``model.conversion`` holds the record (layer
    table, metadata, warnings). Fully convolutional nets run on inputs of
    any height and width.

    Args: as :func:`convert_record`.

    Returns:
        :class:`~deepkit.caffe.model.CaffeModel` (a
        :class:`~deepkit.models.SymbolModel`). With ``strict=False`` and
        problems, the partial :class:`~deepkit.caffe.records.CaffeConversion`
        instead (it cannot run).

    Raises:
        CaffeConversionError: Unsupported layers or values, missing or
            mismatched weights, missing input shapes, ... all listed at once.
        CaffeFormatError: An unreadable prototxt or caffemodel (from the reader).
    """
    record = convert_record(prototxt, caffemodel, mean, rgb, input_shape, phase, fuse_bn_scale,
                            level=level, stages=stages, scale=scale, strict=strict,
                            allow_missing_weights=allow_missing_weights,
                            custom_layers=custom_layers)
    if record.problems or record.symbol is None:
        return record
    return model_from_conversion(record)


def convert_record(prototxt, caffemodel=None, mean=None, rgb=False, input_shape=None,
                   phase="TEST", fuse_bn_scale=False, *, level=0, stages=(), scale=None,
                   strict=True, allow_missing_weights=False, custom_layers=None):
    """Convert a Caffe net to its conversion record (symbol, weights, metadata, layer table).

    :func:`convert` is the usual entry point: it wraps this record in a Model.

    Args:
        prototxt: Path or text of the net definition (or a parsed NetParameter).
            ``None`` takes the structure stored in the caffemodel.
        caffemodel: Path of the trained weights (or a parsed NetParameter);
            ``None`` converts the structure only (no weights).
        mean: The training mean: a ``.binaryproto`` or ``.npy`` path, an
            array (C, H, W), or per-channel values (BGR order, like Caffe's
            ``mean_value``). Recorded as preprocessing metadata.
        rgb: Fold a BGR->RGB input channel swap into the first layers'
            weights (and the mean), so the model takes RGB input. Refused
            (with the reason) where that is not exact.
        input_shape: The shape of the image input (``(N, C, H, W)`` or
            ``"N,C,H,W"``), required for Data/ImageData layers and overriding
            declared input shapes; or ``{input_name: shape}``. ``0`` or
            ``None`` for the height and width: convert at the declared size
            and record those axes as free (the model runs on other sizes).
        phase: ``'TEST'`` (default) or ``'TRAIN'``: Caffe's include/exclude
            phase rules; ``level`` and ``stages`` complete the NetState.
        fuse_bn_scale: Fold each BatchNorm -> Scale pair (found by graph
            topology) into one BatchNorm op. Off by default: one engine op
            per Caffe layer, so every layer can be verified.
        scale: The input scale factor to record (Caffe's
            ``transform_param.scale``), when the deploy prototxt lacks it.
        strict: Raise :class:`CaffeConversionError` listing every problem
            (default). ``False`` returns the partial conversion with
            ``problems``/``unsupported`` filled in instead (it cannot be saved).
        allow_missing_weights: Leave out the parameters of layers that have no
            weights in the caffemodel instead of failing.
        custom_layers: ``{caffe type: function}`` for layer types the
            converter does not know (``"Python"`` included; for Python
            layers also ``"Python:module.Class"``): see
            :mod:`deepkit.caffe.custom`. Adds to (and overrides) the types
            registered with :func:`deepkit.caffe.register_layer`.

    Returns:
        :class:`~deepkit.caffe.records.CaffeConversion`.

    Raises:
        CaffeConversionError: Unsupported layers or values, missing or
            mismatched weights, missing input shapes, ... all listed at once.
        CaffeFormatError: An unreadable prototxt or caffemodel (from the reader).
    """
    phase = str(phase).upper()
    if phase not in ("TEST", "TRAIN"):
        raise DeepkitError(f"phase must be 'TEST' or 'TRAIN', got {phase!r}")
    source = None
    if isinstance(prototxt, (str, os.PathLike)) and os.path.exists(os.fspath(prototxt)):
        source = os.fspath(prototxt)
    model = read_model(caffemodel)
    if prototxt is None:
        if model is None:
            raise DeepkitError("convert: give a prototxt, a caffemodel, or both")
        net = model
    else:
        net = read_net(prototxt)
    structure_from_model = prototxt is None
    mean_loaded = load_mean(mean)
    conv = Converter(net, model, phase, int(level), tuple(stages), input_shape, fuse_bn_scale,
                     allow_missing_weights, source, structure_from_model,
                     custom_layers=custom_layers)
    conv.warnings.extend(_reader_warnings(net, model))
    if structure_from_model:
        conv.warnings.append("no prototxt: the structure and hyper-parameters come from the "
                             "caffemodel, which stores the net as Caffe built it for training "
                             "(phase rules already applied; forks may store different fields)")
    res = conv.build()
    swapped = []
    if rgb and not conv.problems:
        swapped = apply_rgb(conv, res)
    pre = preprocessing(conv, res, mean_loaded, scale, bool(rgb) and not conv.problems)
    if rgb and res.mean is not None and not conv.problems:
        res.mean = np.ascontiguousarray(res.mean[::-1])
        pre["mean_per_channel"] = pre["mean_per_channel"][::-1]
    if rgb and pre.get("mean_value") and len(pre["mean_value"]) == 3:
        pre["mean_value"] = pre["mean_value"][::-1]
    res.problems = list(conv.problems)
    res.metadata = metadata(conv, res, pre, phase, swapped, fuse_bn_scale)
    if not res.problems:
        mark_free_sizes(res, conv.free_axes)
    if res.problems and strict:
        raise CaffeConversionError(res.problems, res, source)
    return res


def _reader_warnings(net, model):
    """The reader's notes (unknown fields skipped, ...) on the prototxt and the caffemodel."""
    lines = []
    for label, msg in (("prototxt", net), ("caffemodel", model)):
        if label == "prototxt" and msg is model:
            continue
        meta = getattr(msg, "meta", None) or {}
        for line in meta.get("unknown_fields", []) or []:
            if any(f"field '{name}'" in str(line) or f".{name}: field" in str(line)
                   for name in FORK_FIELDS):
                continue  # read by the fork layers' converters
            lines.append(f"{label}: unknown field skipped: {line}")
        for line in meta.get("warnings", []) or []:
            lines.append(f"{label}: {line}")
    return lines
