"""Quantized, binarized and pruned layers: ``PF.*_quantized_*``, ``PF.binary_*``,
``PF.inq_*``, ``PF.pruned_*`` and ``PF.min_max_quantize``.

Each class only declares its PF function: the affine-like ones share the size
handling of :class:`~nnabla_modules.Affine` (``n_inmaps`` first), the
convolution-like ones that of :class:`~nnabla_modules.Convolution`
(``inmaps`` first).
"""

import nnabla as nn
import nnabla.parametric_functions as PF

from ._adapter import Layer
from ._signatures import Shapes
from .conv import ConvolutionFamily
from .linear import AffineFamily


class BinaryConnectAffine(AffineFamily):
    """Affine layer with binarized (BinaryConnect) weights.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> fc = nm.BinaryConnectAffine(6, 3, name="fc")
        >>> fc(nn.Variable((2, 6))).shape
        (2, 3)
        >>> list(fc.get_parameters(grad_only=False))  # Wb: the binarized copy, no grad
        ['bicon_affine/W', 'bicon_affine/Wb', 'bicon_affine/b']
    """

    pf_function = PF.binary_connect_affine


class BinaryConnectConvolution(ConvolutionFamily):
    """Convolution with binarized (BinaryConnect) weights.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> conv = nm.BinaryConnectConvolution(3, 4, (3, 3), name="conv")
        >>> conv(nn.Variable((1, 3, 5, 5))).shape
        (1, 4, 3, 3)
        >>> list(conv.get_parameters(grad_only=False))  # Wb: the binarized copy, no grad
        ['bicon_conv/W', 'bicon_conv/Wb', 'bicon_conv/b']
    """

    pf_function = PF.binary_connect_convolution


class BinaryWeightAffine(AffineFamily):
    """Affine layer with binary weights scaled by ``alpha`` (BinaryWeightNet).

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> fc = nm.BinaryWeightAffine(6, 3, name="fc")
        >>> list(fc.get_parameters(grad_only=False))
        ['bwn_affine/W', 'bwn_affine/Wb', 'bwn_affine/alpha', 'bwn_affine/b']
    """

    pf_function = PF.binary_weight_affine


class BinaryWeightConvolution(ConvolutionFamily):
    """Convolution with binary weights scaled by ``alpha`` (BinaryWeightNet).

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> conv = nm.BinaryWeightConvolution(3, 4, (3, 3), name="conv")
        >>> conv(nn.Variable((1, 3, 5, 5))).shape
        (1, 4, 3, 3)
    """

    pf_function = PF.binary_weight_convolution


class INQAffine(AffineFamily):
    """Affine layer trained by incremental network quantization (INQ).

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> fc = nm.INQAffine(6, 3, name="fc")
        >>> list(fc.get_parameters(grad_only=False))
        ['inq_affine/W', 'inq_affine/I', 'inq_affine/b']
    """

    pf_function = PF.inq_affine


class INQConvolution(ConvolutionFamily):
    """Convolution trained by incremental network quantization (INQ).

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> conv = nm.INQConvolution(3, 4, (3, 3), name="conv")
        >>> conv(nn.Variable((1, 3, 5, 5))).shape
        (1, 4, 3, 3)
    """

    pf_function = PF.inq_convolution


class FixedPointQuantizedAffine(AffineFamily):
    """Affine layer with fixed-point quantized weights and bias.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> fc = nm.FixedPointQuantizedAffine(6, 3, n_w=4, name="fc")
        >>> fc(nn.Variable((2, 6))).shape
        (2, 3)
    """

    pf_function = PF.fixed_point_quantized_affine


class FixedPointQuantizedConvolution(ConvolutionFamily):
    """Convolution with fixed-point quantized weights and bias.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> conv = nm.FixedPointQuantizedConvolution(3, 4, (3, 3), name="conv")
        >>> conv(nn.Variable((1, 3, 5, 5))).shape
        (1, 4, 3, 3)
    """

    pf_function = PF.fixed_point_quantized_convolution


class Pow2QuantizedAffine(AffineFamily):
    """Affine layer with power-of-two quantized weights and bias.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> fc = nm.Pow2QuantizedAffine(6, 3, name="fc")
        >>> fc(nn.Variable((2, 6))).shape
        (2, 3)
    """

    pf_function = PF.pow2_quantized_affine


class Pow2QuantizedConvolution(ConvolutionFamily):
    """Convolution with power-of-two quantized weights and bias.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> conv = nm.Pow2QuantizedConvolution(3, 4, (3, 3), name="conv")
        >>> conv(nn.Variable((1, 3, 5, 5))).shape
        (1, 4, 3, 3)
    """

    pf_function = PF.pow2_quantized_convolution


class PrunedAffine(AffineFamily):
    """Affine layer whose smallest weights (a ``rate_w`` fraction) are pruned to zero.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> fc = nm.PrunedAffine(6, 3, rate_w=0.5, name="fc")
        >>> fc(nn.Variable((2, 6))).shape
        (2, 3)
    """

    pf_function = PF.pruned_affine


class PrunedConvolution(ConvolutionFamily):
    """Convolution whose smallest weights (a ``rate_w`` fraction) are pruned to zero.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> conv = nm.PrunedConvolution(3, 4, (3, 3), name="conv")
        >>> conv(nn.Variable((1, 3, 5, 5))).shape
        (1, 4, 3, 3)
    """

    pf_function = PF.pruned_convolution


class MinMaxQuantizedAffine(AffineFamily):
    """Affine layer with min-max quantized weights and bias.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> fc = nm.MinMaxQuantizedAffine(6, 3, name="fc")
        >>> fc(nn.Variable((2, 6))).shape
        (2, 3)
    """

    pf_function = PF.min_max_quantized_affine


class MinMaxQuantizedConvolution(ConvolutionFamily):
    """Convolution with min-max quantized weights and bias.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> conv = nm.MinMaxQuantizedConvolution(3, 4, (3, 3), name="conv")
        >>> conv(nn.Variable((1, 3, 5, 5))).shape
        (1, 4, 3, 3)
    """

    pf_function = PF.min_max_quantized_convolution


class MinMaxQuantize(Layer):
    """Min-max quantization of its input, with learnt (or averaged) quantization ranges.

    Args:
        n_dims (int): Number of dimensions of the input (the ranges have as
            many, all of size 1); ``None``: created at the first call.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> quant = nm.MinMaxQuantize(2, name="q")
        >>> quant(nn.Variable((4, 3))).shape
        (4, 3)
        >>> for key, param in quant.get_parameters(grad_only=False).items():
        ...     print(key, param.shape)
        min_max_quantize/ql_min (1, 1)
        min_max_quantize/ql_max (1, 1)
        min_max_quantize/qr_min (1, 1)
        min_max_quantize/qr_max (1, 1)
    """

    pf_function = PF.min_max_quantize
    inputs = ("x",)
    own_args = (("n_dims", None),)
    shapes = Shapes(inputs=(("x", "(*dims,)"),), outputs=(("output", "(*dims,)"),))

    def _example_inputs(self):
        n_dims = self.config["n_dims"]
        return None if n_dims is None else (nn.Variable((1,) * n_dims),)

    def _check_inputs(self, x, *_):
        n_dims = self.config["n_dims"]
        if n_dims is not None and x.ndim != n_dims:
            raise self._size_error(f"the input {x.shape} has {x.ndim} dimensions", n_dims)
