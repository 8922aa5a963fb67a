"""Type stub written by scripts/layer_stubs.py from the classes' signatures: do not edit."""

from typing import Any

import nnabla as nn
import numpy as np

from ._adapter import Layer
from ._types import Bool, Initializers, Int, Number

class _SequenceLayer(Layer): ...

class MultiHeadAttention(_SequenceLayer):
    def __init__(
        self,
        query_dim: Int | None = None,
        key_dim: Int | None = None,
        value_dim: Int | None = None,
        num_heads: Int = 12,
        dropout: Number = 0.0,
        k_embed_dim: Int | None = None,
        v_embed_dim: Int | None = None,
        out_dim: Int | None = None,
        rng: np.random.RandomState | None = None,
        with_bias: Bool = True,
        add_attn_bias: Bool = False,
        fix_parameters: Bool = False,
        param_init: Initializers | None = None,
        *,
        name: str | None = None,
    ) -> None: ...
    def __call__(
        self,
        query: nn.Variable,
        /,
        key: nn.Variable,
        value: nn.Variable,
        *,
        test: bool = False,
        additive_mask: nn.Variable | None = None,
        key_padding_mask: nn.Variable | None = None,
        num_heads: Int = ...,
        dropout: Number = ...,
        k_embed_dim: Int | None = ...,
        v_embed_dim: Int | None = ...,
        out_dim: Int | None = ...,
        rng: np.random.RandomState | None = ...,
        with_bias: Bool = ...,
        add_attn_bias: Bool = ...,
        fix_parameters: Bool = ...,
        param_init: Initializers | None = ...,
    ) -> Any: ...

class TransformerEncode(_SequenceLayer):
    def __init__(
        self,
        embed_dim: Int,
        num_heads: Int,
        dim_feedforward: Int = 2048,
        dropout: Number = 0.1,
        activation: Any = None,
        rng: np.random.RandomState | None = None,
        add_attn_bias: Bool = False,
        fix_parameters: Bool = False,
        *,
        name: str | None = None,
    ) -> None: ...
    def __call__(
        self,
        src: nn.Variable,
        /,
        *,
        test: bool = False,
        src_additive_mask: nn.Variable | None = None,
        src_key_padding_mask: nn.Variable | None = None,
        embed_dim: Int = ...,
        num_heads: Int = ...,
        dim_feedforward: Int = ...,
        dropout: Number = ...,
        activation: Any = ...,
        rng: np.random.RandomState | None = ...,
        add_attn_bias: Bool = ...,
        fix_parameters: Bool = ...,
    ) -> Any: ...

class TransformerDecode(_SequenceLayer):
    def __init__(
        self,
        embed_dim: Int,
        num_heads: Int,
        dim_feedforward: Int = 2048,
        dropout: Number = 0.1,
        activation: Any = None,
        rng: np.random.RandomState | None = None,
        add_attn_bias: Bool = False,
        fix_parameters: Bool = False,
        *,
        name: str | None = None,
    ) -> None: ...
    def __call__(
        self,
        tgt: nn.Variable,
        /,
        memory: nn.Variable,
        *,
        test: bool = False,
        tgt_additive_mask: nn.Variable | None = None,
        memory_additive_mask: nn.Variable | None = None,
        tgt_key_padding_mask: nn.Variable | None = None,
        memory_key_padding_mask: nn.Variable | None = None,
        embed_dim: Int = ...,
        num_heads: Int = ...,
        dim_feedforward: Int = ...,
        dropout: Number = ...,
        activation: Any = ...,
        rng: np.random.RandomState | None = ...,
        add_attn_bias: Bool = ...,
        fix_parameters: Bool = ...,
    ) -> Any: ...

class Transformer(_SequenceLayer):
    def __init__(
        self,
        embed_dim: Int = 512,
        num_heads: Int = 8,
        num_encoder_layers: Int = 6,
        num_decoder_layers: Int = 6,
        dim_feedforward: Int = 2048,
        dropout: Number = 0.1,
        activation: Any = None,
        rng: np.random.RandomState | None = None,
        add_attn_bias: Bool = False,
        fix_parameters: Bool = False,
        *,
        name: str | None = None,
    ) -> None: ...
    def __call__(
        self,
        src: nn.Variable,
        /,
        tgt: nn.Variable,
        *,
        test: bool = False,
        src_additive_mask: nn.Variable | None = None,
        tgt_additive_mask: nn.Variable | None = None,
        memory_additive_mask: nn.Variable | None = None,
        src_key_padding_mask: nn.Variable | None = None,
        tgt_key_padding_mask: nn.Variable | None = None,
        memory_key_padding_mask: nn.Variable | None = None,
        embed_dim: Int = ...,
        num_heads: Int = ...,
        num_encoder_layers: Int = ...,
        num_decoder_layers: Int = ...,
        dim_feedforward: Int = ...,
        dropout: Number = ...,
        activation: Any = ...,
        rng: np.random.RandomState | None = ...,
        add_attn_bias: Bool = ...,
        fix_parameters: Bool = ...,
    ) -> Any: ...
