"""Module classes that mirror ``nnabla.parametric_functions``, one file per family."""

from ._adapter import Layer
from .activation import PReLU
from .attention import MultiHeadAttention, Transformer, TransformerDecode, TransformerEncode
from .conv import (
    Conv1d,
    Conv2d,
    Conv3d,
    ConvNd,
    Convolution,
    Deconv1d,
    Deconv2d,
    Deconv3d,
    DeconvNd,
    Deconvolution,
    DeformableConvolution,
    DepthwiseConvolution,
    DepthwiseDeconvolution,
)
from .custom import layer
from .embedding import Embed
from .functional import (
    GELU,
    AvgPool2d,
    Dropout,
    Flatten,
    GlobalAvgPool2d,
    Identity,
    LeakyReLU,
    MaxPool2d,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from .linear import Affine, Linear
from .lowrank import CPD3Convolution, SVDAffine, SVDConvolution
from .normalization import (
    BatchNorm1d,
    BatchNorm2d,
    BatchNorm3d,
    BatchNormalization,
    FusedBatchNormalization,
    GroupNormalization,
    InstanceNormalization,
    LayerNormalization,
    MeanSubtraction,
    SyncBatchNormalization,
)
from .quantized import (
    BinaryConnectAffine,
    BinaryConnectConvolution,
    BinaryWeightAffine,
    BinaryWeightConvolution,
    FixedPointQuantizedAffine,
    FixedPointQuantizedConvolution,
    INQAffine,
    INQConvolution,
    MinMaxQuantize,
    MinMaxQuantizedAffine,
    MinMaxQuantizedConvolution,
    Pow2QuantizedAffine,
    Pow2QuantizedConvolution,
    PrunedAffine,
    PrunedConvolution,
)
from .recurrent import GRU, LSTM, RNN, LSTMCell
from .reparam import SpectralNorm, WeightNormalization

__all__ = [
    "Layer",
    "layer",
    # NNabla's experimental classes
    "Affine",
    "Linear",
    "Convolution",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvNd",
    "Deconvolution",
    "Deconv1d",
    "Deconv2d",
    "Deconv3d",
    "DeconvNd",
    "BatchNormalization",
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "Embed",
    # convolutions
    "DepthwiseConvolution",
    "DepthwiseDeconvolution",
    "DeformableConvolution",
    # normalizations
    "FusedBatchNormalization",
    "SyncBatchNormalization",
    "InstanceNormalization",
    "GroupNormalization",
    "LayerNormalization",
    "MeanSubtraction",
    # quantized, binarized, pruned
    "BinaryConnectAffine",
    "BinaryConnectConvolution",
    "BinaryWeightAffine",
    "BinaryWeightConvolution",
    "INQAffine",
    "INQConvolution",
    "FixedPointQuantizedAffine",
    "FixedPointQuantizedConvolution",
    "Pow2QuantizedAffine",
    "Pow2QuantizedConvolution",
    "PrunedAffine",
    "PrunedConvolution",
    "MinMaxQuantizedAffine",
    "MinMaxQuantizedConvolution",
    "MinMaxQuantize",
    # low rank
    "SVDAffine",
    "SVDConvolution",
    "CPD3Convolution",
    # activations
    "PReLU",
    # recurrent
    "RNN",
    "LSTM",
    "GRU",
    "LSTMCell",
    # attention
    "MultiHeadAttention",
    "TransformerEncode",
    "TransformerDecode",
    "Transformer",
    # reparameterizations
    "SpectralNorm",
    "WeightNormalization",
    # parameter-free: one nnabla.functions call each
    "ReLU",
    "LeakyReLU",
    "Sigmoid",
    "Tanh",
    "GELU",
    "Softmax",
    "Dropout",
    "MaxPool2d",
    "AvgPool2d",
    "GlobalAvgPool2d",
    "Flatten",
    "Identity",
]
