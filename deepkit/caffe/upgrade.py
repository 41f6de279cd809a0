"""Upgrade old Caffe nets to the current (V2) form, the way Caffe's ``upgrade_proto.cpp`` does.

``upgrade_net(net)`` applies, in Caffe's order (``UpgradeNetAsNeeded``):

1. V0 -> V1 (``layers { layer { type: "conv" ... } }``): ``padding`` layers are
   removed and their ``pad`` folded into the conv/pool layer that consumes
   them; V0 type strings become V1 enums; each V0 scalar moves into its
   ``*_param`` message (``kernelsize`` -> ``convolution_param.kernel_size``
   or ``pooling_param.kernel_size``, ...); V0 blobs are kept.
2. V1 data layers: ``scale``/``mean_file``/``crop_size``/``mirror`` of
   DATA/IMAGE_DATA/WINDOW_DATA move into ``transform_param``.
3. V1 -> V2 (``layers`` with enum ``type`` -> ``layer`` with string ``type``,
   ``SOFTMAX_LOSS`` -> ``SoftmaxWithLoss``, ...); ``blobs_lr`` ->
   ``param.lr_mult``, ``weight_decay`` -> ``param.decay_mult``, ``param``
   names -> ``param.name``, ``blob_share_mode`` -> ``param.share_mode``; blobs
   and every ``*_param`` are carried over.
4. Net-level ``input`` with ``input_shape`` or ``input_dim`` -> one layer
   named ``"input"`` of type ``Input`` (one top per input) placed first; an
   ``input`` without any shape (legacy caffemodels) is simply dropped.
5. BatchNorm layers with the old three ``param`` entries get
   ``lr_mult = decay_mult = 0``.

Where Caffe aborts, this raises ``CaffeFormatError`` saying why; where Caffe
only logs (a V0 field that does not apply to the layer's type, a V1 type
number outside BVLC's enum), the note goes to ``net.meta['warnings']``.
``net.meta['format']`` records the original generation (``'V0'``, ``'V1'``
or ``'V2'``) and ``net.meta['upgrades']`` the steps applied.
"""
from .message import CaffeFormatError, Message, descriptor

__all__ = ["upgrade_net", "detect_format", "V1_TYPE_TO_V2", "V0_TYPE_TO_V1"]

#: V1LayerParameter.LayerType name -> V2 type string (Caffe's UpgradeV1LayerType)
V1_TYPE_TO_V2 = {
    "NONE": "", "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL",
    "CONCAT": "Concat", "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution",
    "DECONVOLUTION": "Deconvolution", "DATA": "Data", "DROPOUT": "Dropout",
    "DUMMY_DATA": "DummyData", "EUCLIDEAN_LOSS": "EuclideanLoss", "ELTWISE": "Eltwise",
    "EXP": "Exp", "FLATTEN": "Flatten", "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output",
    "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col", "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct", "LRN": "LRN",
    "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN", "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence",
    "SOFTMAX": "Softmax", "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split", "SLICE": "Slice",
    "TANH": "TanH", "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
}

#: V0 type string -> V1LayerParameter.LayerType name (Caffe's UpgradeV0LayerType)
V0_TYPE_TO_V1 = {
    "accuracy": "ACCURACY", "bnll": "BNLL", "concat": "CONCAT", "conv": "CONVOLUTION",
    "data": "DATA", "dropout": "DROPOUT", "euclidean_loss": "EUCLIDEAN_LOSS",
    "flatten": "FLATTEN", "hdf5_data": "HDF5_DATA", "hdf5_output": "HDF5_OUTPUT",
    "im2col": "IM2COL", "images": "IMAGE_DATA", "infogain_loss": "INFOGAIN_LOSS",
    "innerproduct": "INNER_PRODUCT", "lrn": "LRN",
    "multinomial_logistic_loss": "MULTINOMIAL_LOGISTIC_LOSS", "pool": "POOLING",
    "relu": "RELU", "sigmoid": "SIGMOID", "softmax": "SOFTMAX", "softmax_loss": "SOFTMAX_LOSS",
    "split": "SPLIT", "tanh": "TANH", "window_data": "WINDOW_DATA",
}

# V0 field -> {V0 type: (param message field, field, repeated)}; '*' = any type
_V0_FIELDS = {
    "num_output": {"conv": ("convolution_param", "num_output"),
                   "innerproduct": ("inner_product_param", "num_output")},
    "biasterm": {"conv": ("convolution_param", "bias_term"),
                 "innerproduct": ("inner_product_param", "bias_term")},
    "weight_filler": {"conv": ("convolution_param", "weight_filler"),
                      "innerproduct": ("inner_product_param", "weight_filler")},
    "bias_filler": {"conv": ("convolution_param", "bias_filler"),
                    "innerproduct": ("inner_product_param", "bias_filler")},
    "pad": {"conv": ("convolution_param", "pad"), "pool": ("pooling_param", "pad")},
    "kernelsize": {"conv": ("convolution_param", "kernel_size"),
                   "pool": ("pooling_param", "kernel_size")},
    "group": {"conv": ("convolution_param", "group")},
    "stride": {"conv": ("convolution_param", "stride"), "pool": ("pooling_param", "stride")},
    "pool": {"pool": ("pooling_param", "pool")},
    "dropout_ratio": {"dropout": ("dropout_param", "dropout_ratio")},
    "local_size": {"lrn": ("lrn_param", "local_size")},
    "alpha": {"lrn": ("lrn_param", "alpha")},
    "beta": {"lrn": ("lrn_param", "beta")},
    "k": {"lrn": ("lrn_param", "k")},
    "source": {"data": ("data_param", "source"), "hdf5_data": ("hdf5_data_param", "source"),
               "images": ("image_data_param", "source"),
               "window_data": ("window_data_param", "source"),
               "infogain_loss": ("infogain_loss_param", "source")},
    "scale": {"*": ("transform_param", "scale")},
    "meanfile": {"*": ("transform_param", "mean_file")},
    "batchsize": {"data": ("data_param", "batch_size"),
                  "hdf5_data": ("hdf5_data_param", "batch_size"),
                  "images": ("image_data_param", "batch_size"),
                  "window_data": ("window_data_param", "batch_size")},
    "cropsize": {"*": ("transform_param", "crop_size")},
    "mirror": {"*": ("transform_param", "mirror")},
    "rand_skip": {"data": ("data_param", "rand_skip"),
                  "images": ("image_data_param", "rand_skip")},
    "shuffle_images": {"images": ("image_data_param", "shuffle")},
    "new_height": {"images": ("image_data_param", "new_height")},
    "new_width": {"images": ("image_data_param", "new_width")},
    "concat_dim": {"concat": ("concat_param", "concat_dim")},
    "det_fg_threshold": {"window_data": ("window_data_param", "fg_threshold")},
    "det_bg_threshold": {"window_data": ("window_data_param", "bg_threshold")},
    "det_fg_fraction": {"window_data": ("window_data_param", "fg_fraction")},
    "det_context_pad": {"window_data": ("window_data_param", "context_pad")},
    "det_crop_mode": {"window_data": ("window_data_param", "crop_mode")},
    "hdf5_output_param": {"hdf5_output": (None, "hdf5_output_param")},
}

_DATA_UPGRADE = {"DATA": "data_param", "IMAGE_DATA": "image_data_param",
                 "WINDOW_DATA": "window_data_param"}


def detect_format(net):
    """``'V0'``, ``'V1'`` or ``'V2'``: the generation of a NetParameter's layers."""
    if any(layer.has("layer") for layer in net.layers):
        return "V0"
    if net.layers:
        return "V1"
    return "V2"


def _error(reason, filename):
    return CaffeFormatError(reason, filename=filename)


def _layer_label(i, name):
    return f"layer {i} ('{name}')" if name else f"layer {i}"


def _fold_padding_layers(net, filename):
    """Caffe's UpgradeV0PaddingLayers: remove V0 'padding' layers into their consumer."""
    last_top = {name: -1 for name in net.input}
    old = net.layers
    new = []
    for i, conn in enumerate(old):
        lp = conn.layer
        if lp.type != "padding":
            new.append(conn)
        for j, blob in enumerate(conn.bottom):
            if blob not in last_top:
                raise _error(f"V0 net: {_layer_label(i, lp.name)} reads blob '{blob}', which no "
                             "earlier layer or net input produces", filename)
            src_idx = last_top[blob]
            if src_idx == -1:
                continue
            src = old[src_idx]
            if src.layer.type != "padding":
                continue
            if lp.type not in ("conv", "pool"):
                raise _error(f"V0 net: padding layer '{src.layer.name}' feeds "
                             f"{_layer_label(i, lp.name)} of type '{lp.type}'; Caffe only folds "
                             "padding into conv and pool layers", filename)
            if len(conn.bottom) != 1:
                raise _error(f"V0 net: {_layer_label(i, lp.name)} reads a padding layer and has "
                             f"{len(conn.bottom)} inputs; Caffe needs exactly one", filename)
            if len(src.bottom) != 1 or len(src.top) != 1:
                raise _error(f"V0 net: padding layer '{src.layer.name}' must have one input and "
                             "one output", filename)
            target = new[-1]
            target.mutable("layer").pad = src.layer.pad
            target.bottom[j] = src.bottom[0]
        for blob in conn.top:
            last_top[blob] = i
    net.layers = new


def _upgrade_v0_layer(conn, warnings, unknown_types):
    v1 = Message("V1LayerParameter")
    v1.bottom = list(conn.bottom)
    v1.top = list(conn.top)
    v1.unknown_fields = list(conn.unknown_fields)
    if not conn.has("layer"):
        warnings.append(f"V0 net: layer with tops {list(conn.top)} has no V0 'layer' message; "
                        "only its bottoms and tops are kept (as Caffe does)")
        return v1
    v0 = conn.layer
    v1.unknown_fields.extend(v0.unknown_fields)
    t = v0.type
    label = f"layer '{v0.name}'" if v0.name else f"layer with tops {list(conn.top)}"
    if v0.has("name"):
        v1.name = v0.name
    if v0.has("type"):
        if t in V0_TYPE_TO_V1:
            v1.type = V0_TYPE_TO_V1[t]
        else:
            unknown_types.append((v0.name, t))
    if v0.blobs:
        v1.blobs = list(v0.blobs)
    if v0.blobs_lr:
        v1.blobs_lr = list(v0.blobs_lr)
    if v0.weight_decay:
        v1.weight_decay = list(v0.weight_decay)
    for field, targets in _V0_FIELDS.items():
        if not v0.has(field):
            continue
        target = targets.get(t) or targets.get("*")
        if target is None:
            warnings.append(f"V0 net: {label} of type '{t}' has parameter '{field}', which does "
                            "not apply to that type; ignored (as Caffe does)")
            continue
        param, name = target
        value = getattr(v0, field)
        if param is None:
            setattr(v1, name, value)
            continue
        sub = v1.mutable(param)
        if sub.descriptor.fields[name].repeated:
            getattr(sub, name).append(value)
        else:
            setattr(sub, name, value)
    return v1


def _upgrade_v0(net, warnings, filename):
    _fold_padding_layers(net, filename)
    unknown_types = []
    new = Message("NetParameter")
    if net.has("name"):
        new.name = net.name
    new.layers = [_upgrade_v0_layer(conn, warnings, unknown_types) for conn in net.layers]
    if unknown_types:
        listed = ", ".join(f"'{n}' ({t!r})" for n, t in unknown_types)
        raise _error(f"V0 net: unknown V0 layer type(s): {listed}; known V0 types are "
                     f"{', '.join(sorted(V0_TYPE_TO_V1))} (and 'padding')", filename)
    new.input = list(net.input)
    new.input_dim = list(net.input_dim)
    if net.has("force_backward"):
        new.force_backward = net.force_backward
    new.unknown_fields = list(net.unknown_fields)
    return new


def _needs_data_upgrade(net):
    for layer in net.layers:
        field = _DATA_UPGRADE.get(layer.type)
        if field and layer.has(field):
            p = getattr(layer, field)
            if any(p.has(f) for f in ("scale", "mean_file", "crop_size", "mirror")):
                return True
    return False


def _upgrade_data(net):
    for layer in net.layers:
        field = _DATA_UPGRADE.get(layer.type)
        if not field or not layer.has(field):
            continue
        p = getattr(layer, field)
        for f in ("scale", "mean_file", "crop_size", "mirror"):
            if p.has(f):
                setattr(layer.mutable("transform_param"), f, getattr(p, f))
                p.clear(f)


_V2_FIELDS = descriptor("LayerParameter").fields
_V1_PARAM_FIELDS = [name for name in descriptor("V1LayerParameter").fields
                    if name.endswith("_param") and name in _V2_FIELDS]


def _upgrade_v1_layer(i, v1, warnings):
    layer = Message("LayerParameter")
    if v1.bottom:
        layer.bottom = list(v1.bottom)
    if v1.top:
        layer.top = list(v1.top)
    if v1.has("name"):
        layer.name = v1.name
    if v1.include:
        layer.include = list(v1.include)
    if v1.exclude:
        layer.exclude = list(v1.exclude)
    if v1.has("type"):
        t = v1.type
        if isinstance(t, str):
            layer.type = V1_TYPE_TO_V2[t]
        else:
            layer.type = f"V1_LAYER_TYPE_{t}"
            warnings.append(f"V1 net: {_layer_label(i, v1.name)} has type number {t}, which is not "
                            "in BVLC Caffe's V1 LayerType enum (some forks use 40 for PReLU and 41 "
                            f"for ELU); its type is kept as '{layer.type}'")
    if v1.blobs:
        layer.blobs = list(v1.blobs)
    params = []

    def param(k):
        while len(params) <= k:
            params.append(Message("ParamSpec"))
        return params[k]

    for k, name in enumerate(v1.param):
        param(k).name = name
    for k, mode in enumerate(v1.blob_share_mode):
        if not isinstance(mode, str):
            raise CaffeFormatError(f"V1 net: {_layer_label(i, v1.name)} has an unknown "
                                   f"blob_share_mode {mode}")
        param(k).share_mode = mode
    for k, lr in enumerate(v1.blobs_lr):
        param(k).lr_mult = lr
    for k, wd in enumerate(v1.weight_decay):
        param(k).decay_mult = wd
    if params:
        layer.param = params
    if v1.loss_weight:
        layer.loss_weight = list(v1.loss_weight)
    for field in _V1_PARAM_FIELDS:
        if v1.has(field):
            setattr(layer, field, getattr(v1, field))
    if v1.has("layer"):
        warnings.append(f"V1 net: {_layer_label(i, v1.name)} also has a V0 'layer' message; "
                        "ignored (as Caffe does)")
    layer.unknown_fields = list(v1.unknown_fields)
    return layer


def _upgrade_v1(net, warnings):
    new = Message("NetParameter")
    for name, value in net.fields():
        if name not in ("layers", "layer"):
            setattr(new, name, value)
    new.layer = [_upgrade_v1_layer(i, v1, warnings) for i, v1 in enumerate(net.layers)]
    new.unknown_fields = list(net.unknown_fields)
    return new


def _upgrade_input(net, filename):
    inputs = list(net.input)
    if net.input_shape:
        if len(net.input_shape) != len(inputs):
            raise _error(f"the net declares {len(inputs)} input(s) {inputs} but "
                         f"{len(net.input_shape)} input_shape(s); give one input_shape per input",
                         filename)
        shapes = [s.copy() for s in net.input_shape]
    elif net.input_dim:
        dims = list(net.input_dim)
        if len(dims) != 4 * len(inputs):
            raise _error(f"the net declares {len(inputs)} input(s) {inputs} but {len(dims)} "
                         f"input_dim values {dims}; give exactly 4 (N, C, H, W) per input",
                         filename)
        shapes = [Message("BlobShape", dim=dims[4 * k:4 * k + 4]) for k in range(len(inputs))]
    else:
        shapes = None
    if shapes is not None:
        layer = Message("LayerParameter", name="input", type="Input", top=inputs)
        layer.mutable("input_param").shape = shapes
        net.layer = [layer] + list(net.layer)
    net.clear("input")
    net.clear("input_shape")
    net.clear("input_dim")
    return shapes is not None


def upgrade_net(net, *, filename=None, copy=True):
    """Return ``net`` (a NetParameter) upgraded to V2 form; see the module docstring.

    With ``copy=True`` the input is left unchanged (the result shares blob
    arrays with it); ``copy=False`` lets the upgrade reuse the input's
    messages.  ``filename`` only labels errors.
    """
    if net.type_name != "NetParameter":
        raise TypeError(f"upgrade_net needs a NetParameter, got a {net.type_name}")
    meta = dict(net.meta or {})
    warnings = list(meta.get("warnings", []))
    upgrades = list(meta.get("upgrades", []))
    fmt = detect_format(net)
    meta.setdefault("format", fmt)
    if net.layer and net.layers:
        raise _error("the net has both 'layer' (current format) and 'layers' (old V0/V1 format) "
                     "entries; Caffe refuses such a file: convert every 'layers { type: ENUM }' "
                     "to 'layer { type: \"String\" }'", filename)
    if copy:
        net = net.copy()
    if fmt == "V0":
        net = _upgrade_v0(net, warnings, filename)
        upgrades.append("V0 layers upgraded to V1 (padding layers folded into conv/pool pad)")
    if _needs_data_upgrade(net):
        _upgrade_data(net)
        upgrades.append("V1 data-layer transformation fields moved to transform_param")
    if net.layers:
        net = _upgrade_v1(net, warnings)
        upgrades.append("V1 layers (enum types) upgraded to V2 layers (string types)")
    if net.input:
        if _upgrade_input(net, filename):
            upgrades.append("net-level input/input_shape/input_dim turned into an Input layer "
                            "named 'input'")
        else:
            upgrades.append("net-level input without a shape dropped (legacy caffemodel)")
    bn = [layer for layer in net.layer if layer.type == "BatchNorm" and len(layer.param) == 3]
    for layer in bn:
        for p in layer.param:
            p.lr_mult = 0.0
            p.decay_mult = 0.0
    if bn:
        upgrades.append("old 3-param BatchNorm layers set to lr_mult = decay_mult = 0")
    meta["warnings"] = warnings
    meta["upgrades"] = upgrades
    net.meta = meta
    return net
