"""A converted Caffe net as a Model: :class:`CaffeModel`.

``deepkit.caffe.convert(...)`` returns one: a
:class:`~deepkit.models.SymbolModel` (``predict``, ``evaluate``, ``fit``,
``save``; ``deepkit.load_model`` reads the file back) that keeps the
conversion record (:class:`~deepkit.caffe.records.CaffeConversion`: the
layer table, the metadata, the warnings) as ``.conversion``.
"""
import numpy as np

from deepkit.models import SymbolModel
from deepkit.symbol_file import write_symbol_file

__all__ = ["CaffeModel", "model_from_conversion"]


class CaffeModel(SymbolModel):
    """A converted Caffe net, ready for ``predict`` and ``save``.

    Inputs of another height and width than the converted ones run too where
    the net allows it (fully convolutional nets: each input shape binds its
    own cached executor); a layer that needs the converted size (an
    InnerProduct after the convolutions) is named in the error.

    Attributes:
        conversion: The :class:`~deepkit.caffe.records.CaffeConversion`
            (``layer_table()``, ``metadata``, ``warnings``, per-layer records).
    """

    conversion = None

    @property
    def arg_params(self):
        """The converted argument values ``{name: numpy array}`` (as converted)."""
        return self.conversion.arg_params

    @property
    def aux_params(self):
        """The converted auxiliary states ``{name: numpy array}`` (as converted)."""
        return self.conversion.aux_params

    @property
    def inputs(self):
        """``[(input name, shape converted at), ...]``."""
        return self.conversion.inputs

    @property
    def problems(self):
        """The conversion's problems (empty: a model is only made from a clean conversion)."""
        return self.conversion.problems

    @property
    def warnings(self):
        """Things the conversion noted that do not stop it."""
        return self.conversion.warnings

    def layer_table(self):
        """The printable per-layer table of the conversion (see ``CaffeConversion``)."""
        return self.conversion.layer_table()

    def layer(self, name):
        """The conversion's record of a Caffe layer (by Caffe or engine name)."""
        return self.conversion.layer(name)

    def save(self, path, include_optimizer=False):
        """Write the model as one HDF5 symbol-model file, atomically.

        The current weights (the converted ones unless they were trained),
        the metadata, the mean image and each parameter's Caffe origin
        (attributes ``caffe_layer`` and ``caffe_blob``), as the
        ``deepkit convert-caffe`` command writes it; ``deepkit.load_model``
        reads it back.

        Args:
            path: The file to write.
            include_optimizer: Ignored (a converted net has no optimizer state).

        Returns:
            ``path``.
        """
        conv = self.conversion
        args, aux = dict(conv.arg_params), dict(conv.aux_params)
        for p in self._all_params():
            if p.data is not None:
                (aux if p.aux else args)[p.name] = p.data.asnumpy()
        origins = {name: {"caffe_layer": rec.layer,
                          "caffe_blob": -1 if rec.blob is None else int(rec.blob)}
                   for name, rec in conv.params.items()}
        return write_symbol_file(path, self.symbol, args, aux, self.metadata, param_attrs=origins)


def model_from_conversion(conversion):
    """The :class:`CaffeModel` of a successful conversion.

    Args:
        conversion: A :class:`~deepkit.caffe.records.CaffeConversion` without problems.

    Returns:
        The model; its parameters hold the conversion's arrays (not copied
        until the model first runs).
    """
    metadata = dict(conversion.metadata)
    if conversion.mean is not None:
        metadata["preprocessing"] = dict(metadata.get("preprocessing") or {},
                                         mean_array=np.asarray(conversion.mean))
    model = CaffeModel.from_arrays(conversion.symbol, conversion.arg_params,
                                   conversion.aux_params, metadata)
    model.conversion = conversion
    return model
