"""Models whose graph is a symbol (converted Caffe models): load, predict, preprocess.

``deepkit.load_model`` returns a :class:`SymbolModel` for files written by the
Caffe converter (format ``deepkit.symbol_model``): the converted symbol, its
weights, and the preprocessing the network was trained with.
"""
import numpy as np

from deepkit.feedforward import _SymbolNet, _SymbolParameter
from deepkit_engine import io as dk_io

__all__ = ["SymbolModel", "load_symbol_model"]


class SymbolModel(_SymbolNet):
    """A Model made of one symbol and its parameter values.

    Attributes:
        metadata: What the converter recorded (inputs, outputs, layer table,
            preprocessing).
    """

    def __init__(self, symbol, arg_params, aux_params, metadata):
        inputs = metadata.get("inputs") or [{"name": "data", "shape": None}]
        descs = [dk_io.DataDesc(i["name"], tuple(i["shape"] or ())) for i in inputs]
        names = set(symbol.list_arguments()) | set(symbol.list_auxiliary_states())
        input_names = {d.name for d in descs}
        params = []
        aux_names = set(symbol.list_auxiliary_states())
        for name in sorted(names - input_names):
            value = (aux_params if name in aux_names else arg_params).get(name)
            if value is None:
                continue
            value = np.asarray(value, dtype=np.float32)
            p = _SymbolParameter(None, name, value.shape, "zeros", 1.0, 1.0, name in aux_names)
            params.append((p, value))
        super().__init__(symbol, descs, [p for p, _ in params])
        for p, _ in params:
            p.layer = self
        self._values = params
        self.outputs = list(symbol)  # one entry per output (predict counts them)
        self.metadata = metadata
        self.name = metadata.get("name", "converted")
        self.output_names = [o.get("name", f"output{i}")
                             for i, o in enumerate(metadata.get("outputs", []))] \
            or list(symbol.list_outputs())

    def _ensure_initialized(self, ctx=None):
        import deepkit_engine as dk  # noqa: PLC0415
        ctx = ctx or dk.current_context()
        for p, value in self._values:
            if p.data is None:
                p.data = dk.nd.array(value, ctx=ctx, dtype=np.float32)

    def predict(self, x, batch_size=32, verbose=0, steps=None, ctx=None):
        self._ensure_initialized(ctx)
        return super().predict(x, batch_size=batch_size, verbose=verbose, steps=steps, ctx=ctx)

    def preprocess(self, images, input_order="RGB"):
        """Apply the recorded preprocessing to NCHW (or NHW for gray) images.

        ``images`` in ``input_order`` ('RGB' or 'BGR'), uint8 0-255 or float 0-1.
        Applies Caffe's DataTransformer: channel order, 0-255 range, mean, scale.
        """
        prep = self.metadata.get("preprocessing", {})
        x = np.asarray(images)
        if x.dtype != np.uint8 and x.max(initial=0) <= 1.0:
            x = x * 255.0
        x = x.astype(np.float32)
        if prep.get("channel_order") == "BGR" and input_order == "RGB" and x.shape[1] == 3:
            x = x[:, ::-1]
        mean = prep.get("mean_array")
        if mean is None and prep.get("mean_value"):
            mean = np.asarray(prep["mean_value"], np.float32).reshape(1, -1, 1, 1)
        if mean is not None:
            x = x - np.asarray(mean, np.float32)
        if prep.get("scale"):
            x = x * float(prep["scale"])
        return np.ascontiguousarray(x)


def load_symbol_model(path):
    """Read a ``deepkit.symbol_model`` file (written by the Caffe converter)."""
    from deepkit.caffe.convert import load_converted  # noqa: PLC0415
    symbol, arg_params, aux_params, metadata = load_converted(path)
    return SymbolModel(symbol, arg_params, aux_params, metadata)
