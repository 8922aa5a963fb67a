"""Normalization layers."""

import nnabla as nn
import nnabla.parametric_functions as PF

from ._adapter import REQUIRED, Layer

_SEED_BN_ORDER = (
    "axes", "decay_rate", "eps", "batch_stat", "output_stat", "fix_parameters", "param_init",
)  # fmt: skip


def _as_tuple(size):
    return tuple(size) if hasattr(size, "__iter__") else (size,)


class BatchNormalization(Layer):
    """Batch normalization.

    In training it normalizes with the batch statistics and updates the
    running ones; in inference (``eval()``, or ``test=True`` for one call) it
    uses the running statistics. ``bn(x, test=False)``, what seed-style code
    passes on every call, does not force batch statistics in ``eval()``; an
    explicit ``bn(x, batch_stat=True)`` does.

    Args:
        n_features (:obj:`int` or :obj:`tuple` of :obj:`int`): Size of the
            input along ``axes`` (one per axis).
        n_dims (int): Number of dimensions of the input.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> bn = nm.BatchNormalization(16, 4, name="bn1")
        >>> bn(nn.Variable((8, 16, 4, 4))).shape
        (8, 16, 4, 4)
        >>> list(bn.get_parameters(grad_only=False))
        ['bn/beta', 'bn/gamma', 'bn/mean', 'bn/var']
    """

    pf_function = PF.batch_normalization
    own_args = (("n_features", REQUIRED), ("n_dims", REQUIRED))
    positional = ("n_features", "n_dims") + _SEED_BN_ORDER
    inference_args = {"batch_stat": False}
    n_dims = None

    def __call__(self, inp, test=False, **overrides):
        """``bn(x, test=False)``: the seed's call; ``test=True`` infers for this call."""
        return Layer.__call__(self, inp, test=test, **overrides)

    def _dims(self):
        return self.config.get("n_dims", type(self).n_dims)

    def _configure(self, config):
        axes, features = list(config["axes"]), _as_tuple(config["n_features"])
        if len(features) != len(axes):
            raise ValueError(
                f"{type(self).__name__}: n_features {config['n_features']} gives "
                f"{len(features)} sizes for the {len(axes)} axes {axes}"
            )

    def _example_inputs(self):
        shape = [1] * self._dims()
        for axis, size in zip(self.config["axes"], _as_tuple(self.config["n_features"])):
            shape[axis] = size
        return (nn.Variable(tuple(shape)),)

    def _check_inputs(self, x, *_):
        if x.ndim != self._dims():
            raise self._size_error(
                f"the input {x.shape} has {x.ndim} dimensions", self._dims(), x.ndim
            )
        for axis, size in zip(self.config["axes"], _as_tuple(self.config["n_features"])):
            if x.shape[axis] != size:
                raise self._size_error(
                    f"the input {x.shape} has {x.shape[axis]} features on axis {axis}",
                    size,
                    x.shape[axis],
                )


class BatchNorm1d(BatchNormalization):
    """Batch normalization of 3-D inputs ``(batch, n_features, length)``.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> nm.BatchNorm1d(4, name="bn")(nn.Variable((2, 4, 7))).shape
        (2, 4, 7)
    """

    own_args = (("n_features", REQUIRED),)
    positional = ("n_features",) + _SEED_BN_ORDER
    n_dims = 3


class BatchNorm2d(BatchNormalization):
    """Batch normalization of 4-D inputs ``(batch, n_features, height, width)``.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> bn = nm.BatchNorm2d(4, name="bn")
        >>> bn.eval()(nn.Variable((2, 4, 3, 3))).parent.info.type_name
        'BatchNormalization'
    """

    own_args = (("n_features", REQUIRED),)
    positional = ("n_features",) + _SEED_BN_ORDER
    n_dims = 4


class BatchNorm3d(BatchNormalization):
    """Batch normalization of 5-D inputs ``(batch, n_features, depth, height, width)``.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> nm.BatchNorm3d(2, name="bn")(nn.Variable((1, 2, 2, 2, 2))).shape
        (1, 2, 2, 2, 2)
    """

    own_args = (("n_features", REQUIRED),)
    positional = ("n_features",) + _SEED_BN_ORDER
    n_dims = 5
