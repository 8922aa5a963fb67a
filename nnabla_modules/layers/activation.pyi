"""Type stub written by scripts/layer_stubs.py from the classes' signatures: do not edit."""

from typing import Any

import nnabla as nn

from ._adapter import Layer
from ._types import Bool, Initializer, Int

class PReLU(Layer):
    def __init__(
        self,
        n_channels: Int | None = None,
        base_axis: Int = 1,
        shared: Bool = True,
        fix_parameters: Bool = False,
        slope_init: Initializer | None = None,
        *,
        name: str | None = None,
    ) -> None: ...
    def __call__(
        self,
        inp: nn.Variable,
        /,
        *,
        test: bool = False,
        base_axis: Int = ...,
        shared: Bool = ...,
        fix_parameters: Bool = ...,
        slope_init: Initializer | None = ...,
    ) -> Any: ...
