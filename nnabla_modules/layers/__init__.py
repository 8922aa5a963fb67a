"""Module classes that mirror ``nnabla.parametric_functions``, one file per family."""

from ._adapter import Layer
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
)
from .embedding import Embed
from .linear import Affine, Linear
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d, BatchNormalization

__all__ = [
    "Layer",
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
]
