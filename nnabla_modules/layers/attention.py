"""Attention layers: ``PF.multi_head_attention`` and the ``PF.transformer*`` functions.

Sequences have PF's layout ``(L, B, E)``. Masks are per call, as keywords
(``layer(q, k, v, key_padding_mask=m)``). In inference (``eval()`` or
``test=True``) the dropout inside the PF function is off.
"""

import nnabla as nn
import nnabla.parametric_functions as PF

from ._adapter import Layer
from ._signatures import Shapes

_NO_DROPOUT = {"dropout": 0.0}


def _sequence(embed_dim):
    return nn.Variable((1, 1, embed_dim))


class _SequenceLayer(Layer):
    """Shared by the layers whose inputs are ``(L, B, E)`` sequences of known widths."""

    inference_args = _NO_DROPOUT

    def _input_dims(self):
        """The last-axis size of each input, in input order (None: unknown)."""
        return (self.config["embed_dim"],) * len(self.inputs)

    def _example_inputs(self):
        dims = self._input_dims()
        return None if None in dims else tuple(_sequence(dim) for dim in dims)

    def _check_inputs(self, *inputs):
        for name, x, dim in zip(self.inputs, inputs, self._input_dims()):
            if x.ndim != 3 or (dim is not None and x.shape[2] != dim):
                raise self._size_error(f"{name} {x.shape} (L, B, E)", f"E = {dim}")


class MultiHeadAttention(_SequenceLayer):
    """Multi-head attention; returns ``(y, attention_weights)`` as PF does.

    Args:
        query_dim (int): Size of the query's last axis; ``None``: created at
            the first call.
        key_dim (int): Size of the key's last axis (default: ``query_dim``).
            Not PF's ``k_embed_dim``, which is the projected size.
        value_dim (int): Size of the value's last axis (default: ``query_dim``).

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> attn = nm.MultiHeadAttention(8, num_heads=2, name="attn")
        >>> x = nn.Variable((5, 3, 8))
        >>> y, weights = attn(x, x, x)
        >>> y.shape, weights.shape  # weights: (B * num_heads, L_query, L_key)
        ((5, 3, 8), (6, 5, 5))
        >>> attn.get_parameters()["multi_head_attention/k_weight"].shape
        (8, 8)
    """

    pf_function = PF.multi_head_attention
    inputs = ("query", "key", "value")
    keyword_inputs = ("additive_mask", "key_padding_mask")
    own_args = (("query_dim", None), ("key_dim", None), ("value_dim", None))
    shapes = Shapes(
        inputs=(
            ("query", "(L, B, query_dim)"),
            ("key", "(S, B, key_dim)"),
            ("value", "(S, B, value_dim)"),
        ),
        outputs=(
            ("y", "(L, B, out_dim or v_embed_dim or value_dim)"),
            ("weights", "(B * num_heads, L, S + int(add_attn_bias))"),
        ),
    )

    def _input_dims(self):
        query_dim = self.config["query_dim"]
        key_dim, value_dim = self.config["key_dim"], self.config["value_dim"]
        return (query_dim, key_dim or query_dim, value_dim or query_dim)


class TransformerEncode(_SequenceLayer):
    """One transformer encoder layer (self-attention and feed-forward).

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> enc = nm.TransformerEncode(8, 2, dim_feedforward=16, name="enc")
        >>> enc(nn.Variable((5, 3, 8))).shape
        (5, 3, 8)
    """

    pf_function = PF.transformer_encode
    inputs = ("src",)
    shapes = Shapes(inputs=(("src", "(S, B, embed_dim)"),), outputs=(("y", "(S, B, embed_dim)"),))
    keyword_inputs = ("src_additive_mask", "src_key_padding_mask")


class TransformerDecode(_SequenceLayer):
    """One transformer decoder layer: ``layer(tgt, memory)``.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> dec = nm.TransformerDecode(8, 2, dim_feedforward=16, name="dec")
        >>> dec(nn.Variable((4, 3, 8)), nn.Variable((5, 3, 8))).shape
        (4, 3, 8)
    """

    pf_function = PF.transformer_decode
    inputs = ("tgt", "memory")
    shapes = Shapes(
        inputs=(("tgt", "(T, B, embed_dim)"), ("memory", "(S, B, embed_dim)")),
        outputs=(("y", "(T, B, embed_dim)"),),
    )
    keyword_inputs = (
        "tgt_additive_mask", "memory_additive_mask",
        "tgt_key_padding_mask", "memory_key_padding_mask",
    )  # fmt: skip


class Transformer(_SequenceLayer):
    """A whole transformer: encoder layers on ``src``, decoder layers on ``tgt``.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> model = nm.Transformer(8, 2, 1, 1, dim_feedforward=16, name="model")
        >>> model(nn.Variable((5, 3, 8)), nn.Variable((4, 3, 8))).shape
        (4, 3, 8)
    """

    pf_function = PF.transformer
    inputs = ("src", "tgt")
    shapes = Shapes(
        inputs=(("src", "(S, B, embed_dim)"), ("tgt", "(T, B, embed_dim)")),
        outputs=(("y", "(T, B, embed_dim)"),),
    )
    keyword_inputs = (
        "src_additive_mask", "tgt_additive_mask", "memory_additive_mask",
        "src_key_padding_mask", "tgt_key_padding_mask", "memory_key_padding_mask",
    )  # fmt: skip
