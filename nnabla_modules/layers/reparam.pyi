"""Type stub written by scripts/layer_stubs.py from the classes' signatures: do not edit."""

from typing import Any

from ._adapter import Layer
from ._types import Bool, Initializer, Int, Number

class _Reparameterization(Layer): ...

class SpectralNorm(_Reparameterization):
    def __init__(
        self,
        layer: Any = None,
        dim: Int = 0,
        itr: Int = 1,
        eps: Number = 1e-12,
        test: Bool = False,
        u_init: Initializer | None = None,
        fix_parameters: Bool = True,
        *,
        name: str | None = None,
    ) -> None: ...
    def __call__(self, *inputs: Any, test: Bool = False, **overrides: Any) -> Any: ...

class WeightNormalization(_Reparameterization):
    def __init__(
        self,
        layer: Any = None,
        dim: Int = 0,
        eps: Number = 1e-12,
        g_init: Initializer | None = None,
        fix_parameters: Bool = False,
        *,
        name: str | None = None,
    ) -> None: ...
    def __call__(self, *inputs: Any, test: bool = False, **overrides: Any) -> Any: ...
