"""The layer catalog. Images are NCHW (``channels_first``) by default."""
from .base import Input, InputLayer, Layer, Parameter, SymbolicTensor
from .core import Activation, Dense, Dropout, Flatten, Lambda, Permute, RepeatVector, Reshape

__all__ = ["Layer", "Parameter", "SymbolicTensor", "Input", "InputLayer", "Dense", "Activation",
           "Dropout", "Flatten", "Reshape", "Permute", "RepeatVector", "Lambda"]
