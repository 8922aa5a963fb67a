"""Normalization layers."""

import nnabla as nn
import nnabla.parametric_functions as PF

from ..module import describe
from ._adapter import Layer
from ._signatures import SAME_SHAPE, Shapes

_EXPERIMENTAL_BN_ORDER = (
    "axes", "decay_rate", "eps", "batch_stat", "output_stat", "fix_parameters", "param_init",
)  # fmt: skip


def _as_tuple(size):
    return tuple(size) if hasattr(size, "__iter__") else (size,)


class _PerAxisNormalization(Layer):
    """Shared by the normalizations whose parameters have the input's size on some axes.

    Subclasses say which axes (``_axes``).

    Args:
        n_features (:obj:`int` or :obj:`tuple` of :obj:`int`): Size of the
            input along ``axes`` (one per axis); ``None`` (or not given):
            read from the input at the first call.
        n_dims (int): Number of dimensions of the input; ``None`` (or not
            given): read from the input at the first call.
    """

    own_args = (("n_features", None), ("n_dims", None))
    n_dims = None
    shapes = SAME_SHAPE

    def _axes(self):
        return list(self.config["axes"])

    def _dims(self):
        return self.config.get("n_dims", type(self).n_dims)

    def _sizes_known(self):
        return self.config["n_features"] is not None and self._dims() is not None

    def _configure(self, config):
        axes, dims = self._axes(), self._dims()
        if dims is not None and any(not -dims <= axis < dims for axis in axes):
            raise self._config_error(f"the axes {axes} do not exist in {dims} dimensions")
        if config["n_features"] is None:
            return
        features = _as_tuple(config["n_features"])
        if len(features) != len(axes):
            raise self._config_error(
                f"n_features {config['n_features']} gives "
                f"{len(features)} sizes for the {len(axes)} axes {axes}"
            )
        self._check_features(features)

    def _check_features(self, features):
        """Relations between the feature sizes and the other arguments (group counts)."""

    def _example_inputs(self):
        if not self._sizes_known():
            return None
        shape = [1] * self._dims()
        for axis, size in zip(self._axes(), _as_tuple(self.config["n_features"])):
            shape[axis] = size
        return (nn.Variable(tuple(shape)),)

    def _check_inputs(self, x, *_):
        if not self._sizes_known():
            axes = self._axes()
            if any(not -x.ndim <= axis < x.ndim for axis in axes):
                raise self._size_error(
                    f"the input {x.shape} has {x.ndim} dimensions", f"the axes {axes}"
                )
            self._check_features([x.shape[axis] for axis in axes])
            return
        if x.ndim != self._dims():
            raise self._size_error(f"the input {x.shape} has {x.ndim} dimensions", self._dims())
        for axis, size in zip(self._axes(), _as_tuple(self.config["n_features"])):
            if x.shape[axis] != size:
                raise self._size_error(
                    f"the input {x.shape} has {x.shape[axis]} features on axis {axis}",
                    size,
                )


class _BatchNormFamily(_PerAxisNormalization):
    """Batch statistics in training, running statistics in inference."""

    inference_args = {"batch_stat": False}


class BatchNormalization(_BatchNormFamily):
    """Batch normalization.

    In training it normalizes with the batch statistics and updates the
    running ones; in inference (``eval()``, or ``test=True`` for one call) it
    uses the running statistics. ``bn(x, test=False)``, what experimental-style code
    passes on every call, does not force batch statistics in ``eval()``; an
    explicit ``bn(x, batch_stat=True)`` does.

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
    positional = ("n_features", "n_dims") + _EXPERIMENTAL_BN_ORDER

    def __call__(self, inp, test=False, **overrides):
        """``bn(x, test=False)``, as the experimental classes call it; ``test=True`` infers."""
        return Layer.__call__(self, inp, test=test, **overrides)


class _FixedRankBatchNorm(BatchNormalization):
    """Batch normalization whose input rank the class fixes (``n_dims``)."""

    own_args = (("n_features", None),)
    positional = ("n_features",) + _EXPERIMENTAL_BN_ORDER


class BatchNorm1d(_FixedRankBatchNorm):
    """Batch normalization of 3-D inputs ``(batch, n_features, length)``.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> nm.BatchNorm1d(4, name="bn")(nn.Variable((2, 4, 7))).shape
        (2, 4, 7)
    """

    n_dims = 3


class BatchNorm2d(_FixedRankBatchNorm):
    """Batch normalization of 4-D inputs ``(batch, n_features, height, width)``.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> bn = nm.BatchNorm2d(4, name="bn")
        >>> bn.eval()(nn.Variable((2, 4, 3, 3))).parent.info.type_name
        'BatchNormalization'
    """

    n_dims = 4


class BatchNorm3d(_FixedRankBatchNorm):
    """Batch normalization of 5-D inputs ``(batch, n_features, depth, height, width)``.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> nm.BatchNorm3d(2, name="bn")(nn.Variable((1, 2, 2, 2, 2))).shape
        (1, 2, 2, 2, 2)
    """

    n_dims = 5


class FusedBatchNormalization(_BatchNormFamily):
    """Batch normalization fused with the addition of a residual ``z`` and a nonlinearity.

    Called as ``layer(x, z=None)``, as PF takes them; inference as in
    :class:`BatchNormalization`.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> bn = nm.FusedBatchNormalization(4, 4, name="bn")
        >>> x = nn.Variable((2, 4, 3, 3))
        >>> bn(x, x).shape
        (2, 4, 3, 3)
        >>> list(bn.get_parameters(grad_only=False))
        ['bn/beta', 'bn/gamma', 'bn/mean', 'bn/var']
    """

    pf_function = PF.fused_batch_normalization
    inputs = ("inp", "z")
    shapes = Shapes(
        inputs=(("inp", "(*dims,)"), ("z", "(*dims,)")), outputs=(("output", "(*dims,)"),)
    )


class SyncBatchNormalization(_BatchNormFamily):
    """Batch normalization with statistics synchronized over the processes of ``comm``.

    ``comm`` is a communicator of :mod:`nnabla.communicators` (multi-GPU,
    multi-process training). Without one (``comm=None``) the layer can still
    be constructed, named, held, enumerated, saved and loaded: its parameters
    are created by ``PF.batch_normalization``, which makes the same ``bn``
    parameters with the same shapes and initializers, because NNabla cannot
    build a ``sync_batch_normalization`` graph without a communicator (it
    crashes). Calling it needs a communicator, given here or per call
    (``layer(x, comm=comm)``). Inference as in :class:`BatchNormalization`.

    Example:
        >>> import nnabla_modules as nm
        >>> bn = nm.SyncBatchNormalization(8, 4, None, name="bn")  # no communicator here
        >>> list(bn.get_parameters(grad_only=False))
        ['bn/beta', 'bn/gamma', 'bn/mean', 'bn/var']
    """

    pf_function = PF.sync_batch_normalization

    def __call__(self, inp, test=False, **overrides):
        if overrides.get("comm", self.config["comm"]) is None:
            raise ValueError(
                f"{describe(self)}: sync_batch_normalization needs a communicator; construct "
                "the layer with comm=... or call it with layer(x, comm=...)"
            )
        return Layer.__call__(self, inp, test=test, **overrides)

    def _create_parameters(self):
        inputs = self._example_inputs()
        if self.config["comm"] is not None or inputs is None:
            Layer._create_parameters(self)
            return
        shared = {k: v for k, v in self._pf_kwargs.items() if k not in ("comm", "group")}
        with nn.auto_forward(False):
            PF.batch_normalization(*inputs, **shared)


class InstanceNormalization(_PerAxisNormalization):
    """Instance normalization: each sample and channel normalized over its other axes.

    Args:
        n_features (int): Number of channels (the input's ``channel_axis``
            dimension); ``None`` (or not given): read from the input at the
            first call.
        n_dims (int): Number of dimensions of the input; ``None`` (or not
            given): read from the input at the first call.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> norm = nm.InstanceNormalization(4, 4, name="norm")
        >>> norm(nn.Variable((2, 4, 3, 3))).shape
        (2, 4, 3, 3)
        >>> {k: v.shape for k, v in norm.get_parameters().items()}
        {'instance_normalization/beta': (1, 4, 1, 1), 'instance_normalization/gamma': (1, 4, 1, 1)}
    """

    pf_function = PF.instance_normalization

    def _axes(self):
        return [self.config["channel_axis"]]


class GroupNormalization(InstanceNormalization):
    """Group normalization: the channels split into ``num_groups`` groups, each normalized.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> norm = nm.GroupNormalization(8, 4, 2, name="norm")
        >>> norm(nn.Variable((2, 8, 3, 3))).shape
        (2, 8, 3, 3)
        >>> norm.get_parameters()["group_normalization/gamma"].shape
        (1, 8, 1, 1)
    """

    pf_function = PF.group_normalization

    def _check_features(self, features):
        num_groups = self.config["num_groups"]
        if features[0] % num_groups:
            raise self._config_error(
                f"num_groups={num_groups} does not divide the {features[0]} channels"
            )


class LayerNormalization(Layer):
    """Layer normalization: each sample normalized over all its non-batch axes.

    PF's parameters have the input's shape with the ``batch_axis`` axes set to
    1 (a per-element scale and bias).

    Args:
        normalized_shape (:obj:`int` or :obj:`tuple` of :obj:`int`): The
            sizes of the input's non-batch axes, in order (``(C, H, W)`` for
            ``(B, C, H, W)`` and ``batch_axis=0``); ``None``: created at the
            first call.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> norm = nm.LayerNormalization((4, 3), name="norm")
        >>> norm(nn.Variable((2, 4, 3))).shape
        (2, 4, 3)
        >>> norm.get_parameters()["layer_normalization/gamma"].shape
        (1, 4, 3)
    """

    pf_function = PF.layer_normalization
    own_args = (("normalized_shape", None),)
    shapes = SAME_SHAPE

    def _layout(self):
        """``(n_dims, batch axes)``, or None while the shape is unknown."""
        normalized = self.config["normalized_shape"]
        if normalized is None:
            return None
        batch_axes = _as_tuple(self.config["batch_axis"])
        n_dims = len(_as_tuple(normalized)) + len(batch_axes)
        return n_dims, {axis % n_dims for axis in batch_axes}

    def _example_inputs(self):
        layout = self._layout()
        if layout is None:
            return None
        n_dims, batch_axes = layout
        sizes = iter(_as_tuple(self.config["normalized_shape"]))
        shape = tuple(1 if axis in batch_axes else next(sizes) for axis in range(n_dims))
        return (nn.Variable(shape),)

    def _check_inputs(self, x, *_):
        layout = self._layout()
        if layout is None:
            return
        n_dims, batch_axes = layout
        got = tuple(size for axis, size in enumerate(x.shape) if axis % n_dims not in batch_axes)
        if x.ndim != n_dims or got != _as_tuple(self.config["normalized_shape"]):
            raise self._size_error(
                f"the input {x.shape} has the non-batch sizes {got}",
                self.config["normalized_shape"],
            )


class MeanSubtraction(Layer):
    """Subtracts the running mean of the input (updated in training, fixed in inference).

    Args:
        sample_shape (:obj:`int` or :obj:`tuple` of :obj:`int`): The input's
            shape from ``base_axis`` on (the shape of the running mean);
            ``None``: created at the first call.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> sub = nm.MeanSubtraction((3, 2), name="sub")
        >>> sub(nn.Variable((5, 3, 2))).shape
        (5, 3, 2)
        >>> {k: v.shape for k, v in sub.get_parameters(grad_only=False).items()}
        {'mean_subtraction/mean': (3, 2), 'mean_subtraction/t': (1,)}
    """

    pf_function = PF.mean_subtraction
    own_args = (("sample_shape", None),)
    shapes = SAME_SHAPE
    inference_args = {"update_running_mean": False}

    def _example_inputs(self):
        sample_shape = self.config["sample_shape"]
        if sample_shape is None:
            return None
        return (nn.Variable((1,) * self.config["base_axis"] + _as_tuple(sample_shape)),)

    def _check_inputs(self, x, *_):
        expected = self.config["sample_shape"]
        got = x.shape[self.config["base_axis"] :]
        if expected is not None and got != _as_tuple(expected):
            raise self._size_error(f"the input {x.shape} has the sample shape {got}", expected)
