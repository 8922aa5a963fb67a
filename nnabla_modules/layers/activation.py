"""Parametric activations: ``PF.prelu``."""

import nnabla as nn
import nnabla.parametric_functions as PF

from ._adapter import Layer
from ._signatures import SAME_SHAPE


class PReLU(Layer):
    """Parametric ReLU: ``max(0, x) + slope * min(0, x)`` with a learnt negative slope.

    With ``shared=True`` (PF's default) one slope serves every channel, so the
    parameter exists before the first call; with ``shared=False`` there is a
    slope per channel of the ``base_axis`` dimension, and ``n_channels`` lets
    it exist before the first call too.

    Args:
        n_channels (int): Size of the input's ``base_axis`` dimension (used
            with ``shared=False``); ``None``: created at the first call.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> act = nm.PReLU(4, shared=False, name="act")
        >>> act(nn.Variable((2, 4, 3))).shape
        (2, 4, 3)
        >>> act.get_parameters()["prelu/slope"].shape
        (4,)
    """

    pf_function = PF.prelu
    own_args = (("n_channels", None),)
    shapes = SAME_SHAPE

    def _example_inputs(self):
        n_channels = self.config["n_channels"]
        if n_channels is None and not self.config["shared"]:
            return None
        return (nn.Variable((1,) * self.config["base_axis"] + (n_channels or 1,)),)

    def _check_inputs(self, x, *_):
        expected, base_axis = self.config["n_channels"], self.config["base_axis"]
        if expected is not None and x.shape[base_axis] != expected:
            got = x.shape[base_axis]
            raise self._size_error(f"the input {x.shape} has {got} channels", expected)
