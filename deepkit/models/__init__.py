"""Models (Keras's ``keras.models``): ``Model``, ``Sequential``, loading and cloning.

* :mod:`.functional`: ``Model(inputs, outputs)``, a graph of layer calls.
* :mod:`.sequential`: ``Sequential``, a linear stack.
* :mod:`.loading`: ``load_model``, ``model_from_config``, ``model_from_json``.
* :mod:`.cloning`: ``clone_model``.
* :mod:`.symbol_model`: ``SymbolModel``, a model made of one engine symbol
  (converted Caffe nets, MXNet's FeedForward).

Training comes from :class:`deepkit.trainer.Trainer`, which ``Model`` inherits.
"""
from .cloning import clone_model
from .functional import Model
from .loading import load_model, model_from_config, model_from_json
from .sequential import Sequential
from .symbol_model import SymbolModel, load_symbol_model

__all__ = ["Model", "Sequential", "load_model", "model_from_config", "model_from_json",
           "clone_model", "SymbolModel", "load_symbol_model"]
