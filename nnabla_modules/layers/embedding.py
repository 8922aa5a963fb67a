"""Embedding layers."""

import nnabla as nn
import nnabla.parametric_functions as PF

from ._adapter import Layer
from ._signatures import Shapes


class Embed(Layer):
    """Embedding: looks up rows of a ``(n_inputs, n_features)`` weight by index.

    Args:
        w_init (:obj:`nnabla.initializer.BaseInitializer` or :obj:`numpy.ndarray`):
            The experimental class's name for PF's ``initializer``; give one or the other.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> emb = nm.Embed(100, 8, name="emb")
        >>> emb(nn.Variable((4, 5))).shape
        (4, 5, 8)
        >>> emb.get_parameters()["embed/W"].shape
        (100, 8)
    """

    pf_function = PF.embed
    own_args = (("w_init", None),)
    shapes = Shapes(
        inputs=(("inp", "(*indices,)"),),
        outputs=(("output", "(*indices, n_features)"),),
        note="The input holds integer indices in ``[0, n_inputs)``.",
    )
    input_sizes = ()  # n_inputs and n_features are PF's own arguments
    positional = ("n_inputs", "n_features", "w_init", "fix_parameters")

    def _configure(self, config):
        if config["w_init"] is not None:
            if config["initializer"] is not None:
                raise TypeError("Embed: give w_init or initializer, not both")
            config["initializer"] = config["w_init"]

    def _example_inputs(self):
        return (nn.Variable((1,)),)
