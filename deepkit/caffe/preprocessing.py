"""What a converted model records besides its weights: the preprocessing and the metadata.

The preprocessing is Caffe's DataTransformer (channel order, 0-255 pixel range,
mean image or values, scale, crop size), from the input layers'
``transform_param`` and the ``mean``/``scale`` given to ``convert``. The
metadata (JSON-ready) adds the inputs, outputs, per-layer table and parameter
provenance, and is what a saved model file carries.
"""
import os

import numpy as np

from deepkit.symbol_file import FORMAT, escape_name

from . import reader

__all__ = ["load_mean", "preprocessing", "metadata"]


def load_mean(mean):
    """Read the ``mean`` argument of ``convert``.

    Args:
        mean: ``None``, a ``.binaryproto`` or ``.npy`` path, an array (C, H, W)
            or per-channel values.

    Returns:
        ``(array, source)``: the mean image or values as float32 and where
        they came from (the file's name, ``'mean_value'`` or ``'array'``);
        ``(None, None)`` without a mean.
    """
    if mean is None:
        return None, None
    if isinstance(mean, (str, os.PathLike)):
        path = os.fspath(mean)
        if path.endswith(".npy"):
            return np.load(path, allow_pickle=False).astype(np.float32), os.path.basename(path)
        blob = reader.read_binaryproto(path)
        # an owned copy: the file is memory-mapped and may change after the conversion
        return np.array(reader.blob_array(blob), np.float32), os.path.basename(path)
    array = np.asarray(mean, dtype=np.float32)
    return array, "mean_value" if array.ndim <= 1 else "array"


def preprocessing(conv, res, mean, scale, rgb_swapped):
    """The preprocessing the net expects, as Caffe's DataTransformer applies it.

    Args:
        conv: The :class:`~deepkit.caffe.converter.Converter` after building
            (mean problems are recorded there).
        res: Its :class:`~deepkit.caffe.records.CaffeConversion` (``res.mean``
            is set to a mean image).
        mean: ``(array, source)`` from :func:`load_mean`.
        scale: The input scale given to ``convert``, or ``None``.
        rgb_swapped: Whether the model takes RGB input.

    Returns:
        The JSON-ready preprocessing dict.
    """
    image = next(((n, s) for n, s in res.inputs if len(s) == 4), None)
    channels = image[1][1] if image else None
    order = None
    if channels == 3:
        order = "RGB" if rgb_swapped else "BGR"
    elif channels == 1:
        order = "GRAY"
    pre = {"input": image[0] if image else None, "channel_order": order,
           "pixel_range": [0, 255], "scale": None, "crop_size": None, "mirror": False,
           "mean_value": None, "mean_file": None, "mean_shape": None, "mean_per_channel": None,
           "rgb_swapped": bool(rgb_swapped),
           "formula": "x = (pixels[channel_order] - mean) * scale, as Caffe's DataTransformer"}
    for rec, layer in conv.input_layers:
        if layer.has("transform_param"):
            tp = layer.transform_param
            if tp.has("scale"):
                pre["scale"] = float(np.float32(tp.scale))
            if tp.crop_size:
                pre["crop_size"] = int(tp.crop_size)
            if tp.mirror:
                pre["mirror"] = True
            if tp.mean_value:
                pre["mean_value"] = [float(np.float32(v)) for v in tp.mean_value]
            if tp.has("mean_file"):
                pre["mean_file"] = tp.mean_file
    if scale is not None:
        pre["scale"] = float(scale)
    array, source = mean
    if array is not None:
        if array.ndim <= 1:
            pre["mean_value"] = [float(v) for v in array.reshape(-1)]
            pre["mean_file"] = None
        else:
            while array.ndim > 3 and array.shape[0] == 1:
                array = array[0]
            pre["mean_file"] = source
            pre["mean_shape"] = list(array.shape)
            pre["mean_per_channel"] = [float(v) for v in array.reshape(array.shape[0], -1)
                                       .mean(axis=1)]
            res.mean = array
        n_mean = array.shape[0] if array.ndim > 1 else array.size
        if channels is not None and n_mean not in (1, channels):
            conv.problem("mean", None, f"the mean has {n_mean} channels but input "
                                       f"'{image[0]}' has {channels}")
        if array.ndim == 3 and image is not None and tuple(array.shape[1:]) != image[1][2:]:
            pre["mean_crop"] = ("the mean image is " + "x".join(map(str, array.shape[1:])) +
                                "; crop its centre to the input size, as Caffe does at TEST")
    if pre["mean_value"] is not None and len(pre["mean_value"]) not in (1, channels or 1):
        conv.problem("mean", None, f"{len(pre['mean_value'])} mean values for "
                                   f"{channels} channels")
    return pre


def metadata(conv, res, pre, phase, swapped, fused):
    """Everything a converted model records besides its weights.

    Args:
        conv: The :class:`~deepkit.caffe.converter.Converter` after building.
        res: Its :class:`~deepkit.caffe.records.CaffeConversion`.
        pre: The preprocessing dict (:func:`preprocessing`).
        phase: The phase converted.
        swapped: The layers changed by the BGR -> RGB swap.
        fused: Whether BatchNorm -> Scale pairs were fused.

    Returns:
        The JSON-ready metadata dict.
    """
    names = {}
    for group in (res.arg_params, res.aux_params):
        for name in group:
            names[escape_name(name)] = name
    return {
        "format": FORMAT,
        "converter": "deepkit.caffe",
        "source": {"prototxt": conv.source, "phase": phase, "level": conv.level,
                   "stages": sorted(conv.stages)},
        "inputs": [{"name": n, "shape": list(s)} for n, s in res.inputs],
        "outputs": [{"caffe_blob": b, "name": o, "shape": _list(res.output_shape(o))}
                    for b, o in res.outputs],
        "preprocessing": pre,
        "layers": [rec.to_dict() for rec in res.layers],
        "params": {name: p.to_dict() for name, p in res.params.items()},
        "names": names,
        "rgb_swapped_layers": swapped,
        "fuse_bn_scale": bool(fused),
        "warnings": list(res.warnings),
    }


def _list(shape):
    return None if shape is None else list(shape)
