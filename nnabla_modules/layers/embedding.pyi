"""Type stub written by scripts/layer_stubs.py from the classes' signatures: do not edit."""

from typing import Any

import nnabla as nn

from ._adapter import Layer
from ._types import Bool, Initializer, Int

class Embed(Layer):
    def __init__(
        self,
        n_inputs: Int,
        n_features: Int,
        w_init: Initializer | None = None,
        fix_parameters: Bool = False,
        *,
        initializer: Initializer | None = None,
        apply_w: Any = None,
        name: str | None = None,
    ) -> None: ...
    def __call__(
        self,
        inp: nn.Variable,
        /,
        *,
        test: bool = False,
        n_inputs: Int = ...,
        n_features: Int = ...,
        initializer: Initializer | None = ...,
        fix_parameters: Bool = ...,
        apply_w: Any = ...,
    ) -> Any: ...
