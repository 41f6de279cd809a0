"""The layer catalog. Images are NCHW (``channels_first``) by default."""
from .activation_layers import ELU, GELU, LeakyReLU, PReLU, ReLU, Softmax, ThresholdedReLU
from .base import Input, InputLayer, Layer, Parameter, SymbolicTensor
from .convolutional import (Conv1D, Conv2D, Conv2DTranspose, Conv3D, DepthwiseConv2D,
                            SeparableConv2D)
from .core import Activation, Dense, Dropout, Flatten, Lambda, Permute, RepeatVector, Reshape
from .embedding import Embedding
from .merge import Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract
from .normalization import LRN, BatchNormalization, LayerNormalization
from .pooling import (AveragePooling1D, AveragePooling2D, AveragePooling3D,
                      GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalAveragePooling3D,
                      GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D, MaxPooling1D,
                      MaxPooling2D, MaxPooling3D)
from .reshaping import Cropping2D, UpSampling2D, ZeroPadding2D

__all__ = ["Layer", "Parameter", "SymbolicTensor", "Input", "InputLayer", "Dense", "Activation",
           "Dropout", "Flatten", "Reshape", "Permute", "RepeatVector", "Lambda", "Conv1D",
           "Conv2D", "Conv3D", "Conv2DTranspose", "DepthwiseConv2D", "SeparableConv2D",
           "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
           "AveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
           "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
           "UpSampling2D", "ZeroPadding2D", "Cropping2D", "BatchNormalization",
           "LayerNormalization", "LRN", "Embedding", "LeakyReLU", "PReLU", "ELU", "ReLU", "Softmax",
           "ThresholdedReLU", "GELU", "Add", "Subtract", "Multiply", "Average", "Maximum",
           "Minimum", "Concatenate", "Dot"]
from .masking import Masking  # noqa: E402
from .recurrent import GRU, LSTM, RNN, Bidirectional, SimpleRNN, TimeDistributed  # noqa: E402
from .recurrent_cells import GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells  # noqa: E402
from .recurrent_conv import ConvLSTM2D  # noqa: E402

__all__ += ["Masking", "RNN", "SimpleRNN", "LSTM", "GRU", "Bidirectional", "TimeDistributed",
            "SimpleRNNCell", "LSTMCell", "GRUCell", "StackedRNNCells", "ConvLSTM2D"]
