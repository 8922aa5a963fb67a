"""Type stub written by scripts/layer_stubs.py from the classes' signatures: do not edit."""

from typing import Any, overload

import nnabla as nn
import numpy as np

from ._adapter import Layer
from ._types import Bool, Initializer, Int, Number

class _RecurrentFamily(Layer): ...

class RNN(_RecurrentFamily):
    def __init__(
        self,
        input_size: Int | None = None,
        hidden_size: Int | None = None,
        w0_init: Initializer | None = None,
        w_init: Initializer | None = None,
        b_init: Initializer | None = None,
        num_layers: Int = 1,
        nonlinearity: str = "tanh",
        dropout: Number = 0.0,
        bidirectional: Bool = False,
        training: Bool = True,
        rng: np.random.RandomState | None = None,
        with_bias: Bool = True,
        fix_parameters: Bool = False,
        *,
        name: str | None = None,
    ) -> None: ...
    def __call__(
        self,
        x: nn.Variable,
        /,
        h: nn.Variable,
        *,
        test: bool = False,
        w0_init: Initializer | None = ...,
        w_init: Initializer | None = ...,
        b_init: Initializer | None = ...,
        num_layers: Int = ...,
        nonlinearity: str = ...,
        dropout: Number = ...,
        bidirectional: Bool = ...,
        training: Bool = ...,
        rng: np.random.RandomState | None = ...,
        with_bias: Bool = ...,
        fix_parameters: Bool = ...,
    ) -> Any: ...

class LSTM(_RecurrentFamily):
    def __init__(
        self,
        input_size: Int | None = None,
        hidden_size: Int | None = None,
        w0_init: Initializer | None = None,
        w_init: Initializer | None = None,
        b_init: Initializer | None = None,
        num_layers: Int = 1,
        dropout: Number = 0.0,
        bidirectional: Bool = False,
        training: Bool = True,
        rng: np.random.RandomState | None = None,
        with_bias: Bool = True,
        fix_parameters: Bool = False,
        *,
        name: str | None = None,
    ) -> None: ...
    def __call__(
        self,
        x: nn.Variable,
        /,
        h: nn.Variable,
        c: nn.Variable,
        *,
        test: bool = False,
        w0_init: Initializer | None = ...,
        w_init: Initializer | None = ...,
        b_init: Initializer | None = ...,
        num_layers: Int = ...,
        dropout: Number = ...,
        bidirectional: Bool = ...,
        training: Bool = ...,
        rng: np.random.RandomState | None = ...,
        with_bias: Bool = ...,
        fix_parameters: Bool = ...,
    ) -> Any: ...

class GRU(_RecurrentFamily):
    def __init__(
        self,
        input_size: Int | None = None,
        hidden_size: Int | None = None,
        w0_init: Initializer | None = None,
        w_init: Initializer | None = None,
        b_init: Initializer | None = None,
        num_layers: Int = 1,
        dropout: Number = 0.0,
        bidirectional: Bool = False,
        training: Bool = True,
        rng: np.random.RandomState | None = None,
        with_bias: Bool = True,
        fix_parameters: Bool = False,
        *,
        name: str | None = None,
    ) -> None: ...
    def __call__(
        self,
        x: nn.Variable,
        /,
        h: nn.Variable,
        *,
        test: bool = False,
        w0_init: Initializer | None = ...,
        w_init: Initializer | None = ...,
        b_init: Initializer | None = ...,
        num_layers: Int = ...,
        dropout: Number = ...,
        bidirectional: Bool = ...,
        training: Bool = ...,
        rng: np.random.RandomState | None = ...,
        with_bias: Bool = ...,
        fix_parameters: Bool = ...,
    ) -> Any: ...

class LSTMCell(Layer):
    @overload
    def __init__(
        self,
        input_size: Int | None,
        state_size: Int,
        w_init: Initializer | None = None,
        b_init: Initializer | None = None,
        fix_parameters: Bool = False,
        *,
        name: str | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self,
        *,
        input_size: Int | None = None,
        state_size: Int,
        w_init: Initializer | None = None,
        b_init: Initializer | None = None,
        fix_parameters: Bool = False,
        name: str | None = None,
    ) -> None: ...
    def __call__(
        self,
        x: nn.Variable,
        /,
        h: nn.Variable,
        c: nn.Variable,
        *,
        test: bool = False,
        state_size: Int = ...,
        w_init: Initializer | None = ...,
        b_init: Initializer | None = ...,
        fix_parameters: Bool = ...,
    ) -> Any: ...
