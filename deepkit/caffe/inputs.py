"""The net's inputs: Input, MemoryData, DummyData and data layers become input Variables.

Their shapes come from the net definition, or from the ``input_shape``
argument of ``convert`` (required for the data layers that read files, such as
Data and ImageData); the label tops of data layers exist only in training.
"""
from deepkit_engine import symbol as sym

from . import shapes as S
from .shapes import CaffeRuleError

__all__ = ["build_input", "check_input_names"]


def build_input(conv, rec, layer, tops):
    """Turn an input or data layer's tops into input Variables with their shapes.

    The shapes come from the layer (Input, MemoryData, DummyData) or from
    ``input_shape`` (which overrides them); a data layer's other tops are
    labels, only available in training.

    Args:
        conv: The :class:`~deepkit.caffe.converter.Converter` (problems are
            recorded there, the inputs added to ``conv.inputs``).
        rec: The layer's :class:`~deepkit.caffe.records.LayerRecord`.
        layer: The LayerParameter message.
        tops: The new versions of its tops.
    """
    rec.status = "input"
    shapes = [None] * len(tops)
    image_tops = list(range(len(tops)))
    try:
        if layer.type == "Input":
            given = [s.dim for s in layer.input_param.shape]
            if given:
                shapes = S.input_layer_shapes(given, len(tops))
            elif not conv.named_shapes and conv.default_shape is None:
                raise CaffeRuleError("input_param gives no shape")
        elif layer.type == "MemoryData":
            p = layer.memory_data_param
            shapes[0] = (int(p.batch_size), int(p.channels), int(p.height), int(p.width))
            if len(tops) > 1:
                shapes[1] = (int(p.batch_size), 1, 1, 1)
            image_tops = [0]
        elif layer.type == "DummyData":
            shapes = S.dummy_data_shapes(layer.dummy_data_param, len(tops))
        else:  # Data, ImageData, ...: shape only from input_shape
            named = [i for i, t in enumerate(tops) if t.name in conv.named_shapes]
            image_tops = named if layer.type == "HDF5Data" and named else [0]
    except CaffeRuleError as e:
        conv.problem("caffe_rule", rec, str(e))
        return conv.fail(rec, tops, "failed")
    for i, t in enumerate(tops):
        given = conv.named_shapes.get(t.name)
        if given is None and conv.default_shape is not None and i in image_tops:
            given = conv.default_shape
        if given is not None:
            shapes[i] = _fill_free_axes(conv, rec, t.name, given, shapes[i])
            if shapes[i] is None:
                t.state = "failed"
                continue
        if i not in image_tops and given is None:
            t.state, t.note = "label", f"the label output of data layer '{layer.name}' " \
                                       "(only available in training)"
            rec.outputs[i] = None
            continue
        if shapes[i] is None:
            crop = layer.transform_param.crop_size if layer.has("transform_param") else 0
            hint = "pass input_shape=(N, C, H, W) (CLI: --input-shape N,C,H,W)"
            if crop:
                hint += f"; its transform_param.crop_size {crop} gives H = W = {crop}"
            conv.problem("input", rec, f"the shape of input '{t.name}' is not in the net "
                                       f"definition (layer type {layer.type} reads it from "
                                       "files)", hint)
            t.state = "failed"
            continue
        shape = tuple(int(d) for d in shapes[i])
        if any(d <= 0 for d in shape):
            conv.problem("input", rec, f"input '{t.name}' has shape {shape}: every "
                                       "dimension must be positive")
            t.state = "failed"
            continue
        name = t.name
        if name in conv.used:
            conv.problem("graph", rec, f"input '{name}' collides with an earlier name")
        conv.used.add(name)
        t.symbol = sym.Variable(name, shape=shape)
        t.shape, t.state = shape, "ok"
        rec.top_shapes[i] = shape
        rec.outputs[i] = name
        conv.inputs.append((name, shape))
    conv.input_layers.append((rec, layer))
    if any(t.state == "failed" for t in tops):
        rec.status = "failed"

def _fill_free_axes(conv, rec, name, given, declared):
    """``given`` with its free axes (0) taken from the declared shape; records them.

    The net is converted (and its shapes checked) at the declared size; the
    free axes are recorded in ``conv.free_axes`` so that the model accepts
    other sizes there.
    """
    given = tuple(int(d) for d in given)
    free = [a for a, d in enumerate(given) if d == 0]
    if not free:
        return given
    if 0 in free:
        conv.problem("input", rec, f"input_shape gives 0 for the batch axis of '{name}'",
                     "give a batch size (any batch size runs later)")
        return None
    declared = tuple(declared) if declared is not None else None
    if declared is None or len(declared) != len(given):
        conv.problem("input", rec, f"input_shape {given} leaves axes {free} of '{name}' free, "
                                   "but the net declares no size to convert it at",
                     "give a size, for example (1, 3, 224, 224): the converted net still runs "
                     "on other sizes where its layers allow it")
        return None
    conv.free_axes[name] = free
    return tuple(declared[a] if d == 0 else d for a, d in enumerate(given))


def check_input_names(conv):
    """The names in ``input_shape`` must be inputs; one shape needs one image input.

    Args:
        conv: The :class:`~deepkit.caffe.converter.Converter` after building
            (problems are recorded there).
    """
    names = {n for n, _ in conv.inputs}
    for name in conv.named_shapes:
        if name not in names and not any(v.name == name for rec, _ in conv.input_layers
                                         for v in rec.top_versions):
            conv.problem("input", None,
                         f"input_shape names '{name}', which is not an input of the net "
                         f"(inputs: {', '.join(sorted(names)) or 'none'})")
    if conv.default_shape is not None:
        image = [v for rec, _ in conv.input_layers for v in rec.top_versions
                 if v.state != "label"]
        if len(image) > 1:
            conv.problem("input", None, "input_shape is ambiguous: the net has several "
                                        "inputs (" + ", ".join(v.name for v in image) + ")",
                         "pass a dict {input_name: shape}")
