"""Type stub written by scripts/layer_stubs.py from the classes' signatures: do not edit."""

from typing import Any, overload

import nnabla as nn
import numpy as np

from ._adapter import Layer
from ._types import Bool, Initializer, Int, Ints

class AffineFamily(Layer): ...

class Affine(AffineFamily):
    @overload
    def __init__(
        self,
        n_inmaps: Ints | None,
        n_outmaps: Ints,
        base_axis: Int = 1,
        w_init: Initializer | None = None,
        b_init: Initializer | None = None,
        fix_parameters: Bool = False,
        rng: np.random.RandomState | None = None,
        with_bias: Bool = True,
        *,
        apply_w: Any = None,
        apply_b: Any = None,
        name: str | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self,
        *,
        n_inmaps: Ints | None = None,
        n_outmaps: Ints,
        base_axis: Int = 1,
        w_init: Initializer | None = None,
        b_init: Initializer | None = None,
        fix_parameters: Bool = False,
        rng: np.random.RandomState | None = None,
        with_bias: Bool = True,
        apply_w: Any = None,
        apply_b: Any = None,
        name: str | None = None,
    ) -> None: ...
    def __call__(
        self,
        inp: nn.Variable,
        /,
        *,
        test: bool = False,
        n_outmaps: Ints = ...,
        base_axis: Int = ...,
        w_init: Initializer | None = ...,
        b_init: Initializer | None = ...,
        fix_parameters: Bool = ...,
        rng: np.random.RandomState | None = ...,
        with_bias: Bool = ...,
        apply_w: Any = ...,
        apply_b: Any = ...,
    ) -> Any: ...

class Linear(Affine):
    @overload
    def __init__(
        self,
        n_inmaps: Ints | None,
        n_outmaps: Ints,
        base_axis: Int = 1,
        w_init: Initializer | None = None,
        b_init: Initializer | None = None,
        fix_parameters: Bool = False,
        rng: np.random.RandomState | None = None,
        with_bias: Bool = True,
        *,
        apply_w: Any = None,
        apply_b: Any = None,
        name: str | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self,
        *,
        n_inmaps: Ints | None = None,
        n_outmaps: Ints,
        base_axis: Int = 1,
        w_init: Initializer | None = None,
        b_init: Initializer | None = None,
        fix_parameters: Bool = False,
        rng: np.random.RandomState | None = None,
        with_bias: Bool = True,
        apply_w: Any = None,
        apply_b: Any = None,
        name: str | None = None,
    ) -> None: ...
    def __call__(
        self,
        inp: nn.Variable,
        /,
        *,
        test: bool = False,
        n_outmaps: Ints = ...,
        base_axis: Int = ...,
        w_init: Initializer | None = ...,
        b_init: Initializer | None = ...,
        fix_parameters: Bool = ...,
        rng: np.random.RandomState | None = ...,
        with_bias: Bool = ...,
        apply_w: Any = ...,
        apply_b: Any = ...,
    ) -> Any: ...
