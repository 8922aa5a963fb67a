"""Fully connected layers."""

import math

import nnabla as nn
import nnabla.parametric_functions as PF

from ._adapter import Layer
from ._signatures import Shapes


def _as_tuple(size):
    return tuple(size) if hasattr(size, "__iter__") else (size,)


class AffineFamily(Layer):
    """Shared by the layers whose input is flattened from ``base_axis`` into features.

    Args:
        n_inmaps (:obj:`int` or :obj:`tuple` of :obj:`int`): Number of input
            features per sample: the product of the input's dimensions from
            ``base_axis`` on (a tuple is multiplied out); ``None`` (or not
            given): read from the input at the first call.
    """

    own_args = (("n_inmaps", None),)
    shapes = Shapes(
        inputs=(("inp", "(*batch, *features)"),),
        outputs=(("output", "(*batch, n_outmaps)"),),
        where=("len(batch) == base_axis", "prod(features) == prod(n_inmaps)"),
        note="A tuple ``n_outmaps`` gives the output those axes: ``(*batch, *n_outmaps)``.",
    )

    def _example_inputs(self):
        if self.config["n_inmaps"] is None:
            return None
        base_axis = self.config["base_axis"]
        return (nn.Variable((1,) * base_axis + _as_tuple(self.config["n_inmaps"])),)

    def _check_inputs(self, x, *_):
        if self.config["n_inmaps"] is None:
            return
        expected = math.prod(_as_tuple(self.config["n_inmaps"]))
        got = math.prod(x.shape[self.config["base_axis"] :])
        if got != expected:
            raise self._size_error(
                f"the input {x.shape} has {got} features from base_axis on", expected
            )


class Affine(AffineFamily):
    """The affine (fully connected) layer, ``y = x W + b``.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> fc = nm.Affine(16, 10, name="fc")
        >>> fc(nn.Variable((8, 16))).shape
        (8, 10)
        >>> {k: v.shape for k, v in fc.get_parameters().items()}
        {'affine/W': (16, 10), 'affine/b': (10,)}
    """

    pf_function = PF.affine
    positional = (
        "n_inmaps", "n_outmaps", "base_axis", "w_init", "b_init",
        "fix_parameters", "rng", "with_bias",
    )  # fmt: skip


class Linear(Affine):
    """The affine layer under PyTorch's name; parameters are PF's ``affine/W``, ``affine/b``.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> nm.Linear(3, 2, name="lin")(nn.Variable((4, 3))).shape
        (4, 2)
    """
