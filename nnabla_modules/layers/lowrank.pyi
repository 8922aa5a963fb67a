"""Type stub written by scripts/layer_stubs.py from the classes' signatures: do not edit."""

from typing import Any, Sequence, overload

import nnabla as nn
import numpy as np

from ._types import Bool, Initializer, Int, Ints
from .conv import ConvolutionFamily
from .linear import AffineFamily

class SVDAffine(AffineFamily):
    @overload
    def __init__(
        self,
        n_inmaps: Ints | None,
        n_outmaps: Ints,
        r: Int,
        base_axis: Int = 1,
        uv_init: Initializer | None = None,
        b_init: Initializer | None = None,
        fix_parameters: Bool = False,
        rng: np.random.RandomState | None = None,
        with_bias: Bool = True,
        *,
        name: str | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self,
        *,
        n_inmaps: Ints | None = None,
        n_outmaps: Ints,
        r: Int,
        base_axis: Int = 1,
        uv_init: Initializer | None = None,
        b_init: Initializer | None = None,
        fix_parameters: Bool = False,
        rng: np.random.RandomState | None = None,
        with_bias: Bool = True,
        name: str | None = None,
    ) -> None: ...
    def __call__(
        self,
        inp: nn.Variable,
        /,
        *,
        test: bool = False,
        n_outmaps: Ints = ...,
        r: Int = ...,
        base_axis: Int = ...,
        uv_init: Initializer | None = ...,
        b_init: Initializer | None = ...,
        fix_parameters: Bool = ...,
        rng: np.random.RandomState | None = ...,
        with_bias: Bool = ...,
    ) -> Any: ...

class SVDConvolution(ConvolutionFamily):
    @overload
    def __init__(
        self,
        inmaps: Int | None,
        outmaps: Int,
        kernel: Sequence[Int],
        r: Int,
        pad: Sequence[Int] | None = None,
        stride: Sequence[Int] | None = None,
        dilation: Sequence[Int] | None = None,
        uv_init: Initializer | None = None,
        b_init: Initializer | None = None,
        base_axis: Int = 1,
        fix_parameters: Bool = False,
        rng: np.random.RandomState | None = None,
        with_bias: Bool = True,
        *,
        name: str | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self,
        *,
        inmaps: Int | None = None,
        outmaps: Int,
        kernel: Sequence[Int],
        r: Int,
        pad: Sequence[Int] | None = None,
        stride: Sequence[Int] | None = None,
        dilation: Sequence[Int] | None = None,
        uv_init: Initializer | None = None,
        b_init: Initializer | None = None,
        base_axis: Int = 1,
        fix_parameters: Bool = False,
        rng: np.random.RandomState | None = None,
        with_bias: Bool = True,
        name: str | None = None,
    ) -> None: ...
    def __call__(
        self,
        inp: nn.Variable,
        /,
        *,
        test: bool = False,
        outmaps: Int = ...,
        kernel: Sequence[Int] = ...,
        r: Int = ...,
        pad: Sequence[Int] | None = ...,
        stride: Sequence[Int] | None = ...,
        dilation: Sequence[Int] | None = ...,
        uv_init: Initializer | None = ...,
        b_init: Initializer | None = ...,
        base_axis: Int = ...,
        fix_parameters: Bool = ...,
        rng: np.random.RandomState | None = ...,
        with_bias: Bool = ...,
    ) -> Any: ...

class CPD3Convolution(ConvolutionFamily):
    @overload
    def __init__(
        self,
        inmaps: Int | None,
        outmaps: Int,
        kernel: Sequence[Int],
        r: Int,
        pad: Sequence[Int] | None = None,
        stride: Sequence[Int] | None = None,
        dilation: Sequence[Int] | None = None,
        oik_init: Initializer | None = None,
        b_init: Initializer | None = None,
        base_axis: Int = 1,
        fix_parameters: Bool = False,
        rng: np.random.RandomState | None = None,
        with_bias: Bool = True,
        max_iter: Int = 500,
        stopping_criterion: Any = 1e-05,
        lambda_reg: Any = 0.0,
        *,
        name: str | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self,
        *,
        inmaps: Int | None = None,
        outmaps: Int,
        kernel: Sequence[Int],
        r: Int,
        pad: Sequence[Int] | None = None,
        stride: Sequence[Int] | None = None,
        dilation: Sequence[Int] | None = None,
        oik_init: Initializer | None = None,
        b_init: Initializer | None = None,
        base_axis: Int = 1,
        fix_parameters: Bool = False,
        rng: np.random.RandomState | None = None,
        with_bias: Bool = True,
        max_iter: Int = 500,
        stopping_criterion: Any = 1e-05,
        lambda_reg: Any = 0.0,
        name: str | None = None,
    ) -> None: ...
    def __call__(
        self,
        inp: nn.Variable,
        /,
        *,
        test: bool = False,
        outmaps: Int = ...,
        kernel: Sequence[Int] = ...,
        r: Int = ...,
        pad: Sequence[Int] | None = ...,
        stride: Sequence[Int] | None = ...,
        dilation: Sequence[Int] | None = ...,
        oik_init: Initializer | None = ...,
        b_init: Initializer | None = ...,
        base_axis: Int = ...,
        fix_parameters: Bool = ...,
        rng: np.random.RandomState | None = ...,
        with_bias: Bool = ...,
        max_iter: Int = ...,
        stopping_criterion: Any = ...,
        lambda_reg: Any = ...,
    ) -> Any: ...
