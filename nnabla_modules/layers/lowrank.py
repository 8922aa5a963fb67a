"""Low-rank layers: ``PF.svd_affine``, ``PF.svd_convolution``, ``PF.cpd3_convolution``.

The factors are created by PF itself, decomposing a same-seed full-rank
initial weight exactly as the PF call does.
"""

import nnabla.parametric_functions as PF

from .conv import ConvolutionFamily
from .linear import AffineFamily


class SVDAffine(AffineFamily):
    """Affine layer whose weight is factored by SVD into two rank-``r`` matrices.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> fc = nm.SVDAffine(8, 6, 2, name="fc")
        >>> fc(nn.Variable((3, 8))).shape
        (3, 6)
        >>> {k: v.shape for k, v in fc.get_parameters().items()}
        {'svd_affine/U': (8, 2), 'svd_affine/V': (2, 6), 'svd_affine/b': (6,)}
    """

    pf_function = PF.svd_affine


class SVDConvolution(ConvolutionFamily):
    """Convolution whose kernel is factored by SVD into two rank-``r`` parts.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> conv = nm.SVDConvolution(3, 4, (3, 3), 2, name="conv")
        >>> conv(nn.Variable((1, 3, 5, 5))).shape
        (1, 4, 3, 3)
    """

    pf_function = PF.svd_convolution


class CPD3Convolution(ConvolutionFamily):
    """Convolution whose kernel is a rank-``r`` CP decomposition (fitted by ALS at creation).

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> conv = nm.CPD3Convolution(3, 4, (3, 3), 2, max_iter=5, name="conv")
        >>> conv(nn.Variable((1, 3, 5, 5))).shape
        (1, 4, 3, 3)
    """

    pf_function = PF.cpd3_convolution
