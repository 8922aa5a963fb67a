"""Convolution and deconvolution layers."""

import nnabla as nn
import nnabla.parametric_functions as PF
import numpy as np

from ._adapter import Layer
from ._signatures import Shapes

_EXPERIMENTAL_ORDER = (
    "inmaps", "outmaps", "kernel", "pad", "stride", "dilation", "group",
    "w_init", "b_init", "base_axis", "fix_parameters", "rng", "with_bias",
)  # fmt: skip
_SPATIAL_ARGS = ("kernel", "pad", "stride", "dilation", "output_padding")


class ConvolutionFamily(Layer):
    """Shared by the layers whose input is ``(batch..., inmaps, *spatial)`` (or channel last).

    Args:
        inmaps (int): Number of input channels (the input's ``base_axis``
            dimension, or its last with ``channel_last=True``); ``None`` (or
            not given): read from the input at the first call.
    """

    own_args = (("inmaps", None),)
    spatial_dims = None  # Conv2d: 2; None: any
    shapes = Shapes(
        inputs=(("inp", "(*batch, inmaps, *spatial)"),),
        outputs=(("output", "(*batch, outmaps, *out)"),),
        where=(
            "len(batch) == base_axis",
            "out = (spatial + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1",
        ),
        note="Per spatial axis; ``pad`` 0, ``stride`` and ``dilation`` 1 when not given. "
        "With ``channel_last=True`` the channels are the last axis of both.",
    )
    #: Arguments whose value must divide the input channels (and, for ``group``, ``outmaps``).
    _channel_divisors = ("group", "deformable_group", "divisor")

    @classmethod
    def per_axis_args(cls):
        """Without ``spatial_dims`` an int could stand for any number of axes: tuples only."""
        return _SPATIAL_ARGS if cls.spatial_dims is None else ()

    def _configure(self, config):
        dims = self.spatial_dims
        for arg in _SPATIAL_ARGS:
            value = config.get(arg)
            if isinstance(value, (list, tuple)):
                config[arg] = tuple(value)
            elif value is not None:  # an int, for a class of ``dims`` axes (per_axis_args)
                config[arg] = (value,) * dims
        kernel = config["kernel"]
        if dims is not None and len(kernel) != dims:
            raise self._config_error(
                f"kernel {kernel} has {len(kernel)} dimensions, expected {dims}"
            )
        for arg in _SPATIAL_ARGS[1:]:
            value = config.get(arg)
            if value is not None and len(value) != len(kernel):
                raise self._config_error(
                    f"{arg}={value} has {len(value)} values for the {len(kernel)} "
                    f"dimensions of kernel {kernel}"
                )
        padding, stride = config.get("output_padding"), config.get("stride") or (1,) * len(kernel)
        dilation = config.get("dilation") or (1,) * len(kernel)
        if padding is not None and any(
            p >= max(s, d) for p, s, d in zip(padding, stride, dilation)
        ):
            raise self._config_error(
                f"output_padding={padding} must be smaller than the stride {stride} or the "
                f"dilation {dilation}"
            )
        if "outmaps" in config and config["outmaps"] % config.get("group", 1):
            raise self._config_error(
                f"group={config['group']} does not divide outmaps={config['outmaps']}"
            )
        if config["inmaps"] is not None:
            self._check_channels(config["inmaps"], "inmaps")

    def _check_channels(self, channels, what):
        for arg in self._channel_divisors:
            value = self.config.get(arg)
            if value is not None and channels % value:
                raise self._config_error(f"{arg}={value} does not divide {what}={channels}")

    def _channel_axis(self, ndim):
        return ndim - 1 if self.config.get("channel_last") else self.config["base_axis"]

    def _example_inputs(self):
        config = self.config
        if config["inmaps"] is None:
            return None
        kernel = tuple(config["kernel"])
        dilation = config["dilation"] or (1,) * len(kernel)
        pad = config["pad"] or (0,) * len(kernel)
        # Large enough for any stride and padding: the output is at least 1.
        spatial = tuple(d * (k - 1) + 1 + 2 * p for k, d, p in zip(kernel, dilation, pad))
        batch = (1,) * config["base_axis"]
        channels = (config["inmaps"],)
        shape = batch + (spatial + channels if config.get("channel_last") else channels + spatial)
        return (nn.Variable(shape),)

    def _check_inputs(self, x, *_):
        config = self.config
        expected_ndim = config["base_axis"] + 1 + len(config["kernel"])
        shape = x.shape
        if len(shape) != expected_ndim:
            raise self._size_error(f"the input {shape} has {len(shape)} dimensions", expected_ndim)
        inmaps = shape[-1 if config.get("channel_last") else config["base_axis"]]
        if config["inmaps"] is None:
            self._check_channels(inmaps, f"the input {shape}'s channels")
        elif inmaps != config["inmaps"]:
            raise self._size_error(f"the input {shape} has {inmaps} channels", config["inmaps"])


class Convolution(ConvolutionFamily):
    """N-D convolution with a bias term.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> conv = nm.Convolution(3, 16, (3, 3), pad=(1, 1), name="conv1")
        >>> conv(nn.Variable((2, 3, 8, 8))).shape
        (2, 16, 8, 8)
        >>> {k: v.shape for k, v in conv.get_parameters().items()}
        {'conv/W': (16, 3, 3, 3), 'conv/b': (16,)}
    """

    pf_function = PF.convolution
    positional = _EXPERIMENTAL_ORDER


class Conv1d(Convolution):
    """1-D convolution; ``kernel``, ``pad``, ``stride``, ``dilation`` may be ints.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> nm.Conv1d(4, 8, 3, name="c1")(nn.Variable((2, 4, 10))).shape
        (2, 8, 8)
    """

    spatial_dims = 1


class Conv2d(Convolution):
    """2-D convolution; ``kernel``, ``pad``, ``stride``, ``dilation`` may be ints.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> nm.Conv2d(3, 8, (3, 3), pad=(1, 1), name="c2")(nn.Variable((2, 3, 5, 5))).shape
        (2, 8, 5, 5)
    """

    spatial_dims = 2


class Conv3d(Convolution):
    """3-D convolution; ``kernel``, ``pad``, ``stride``, ``dilation`` may be ints.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> nm.Conv3d(1, 2, 3, name="c3")(nn.Variable((1, 1, 4, 4, 4))).shape
        (1, 2, 2, 2, 2)
    """

    spatial_dims = 3


class ConvNd(Convolution):
    """N-D convolution (the number of dimensions is ``len(kernel)``).

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> nm.ConvNd(2, 4, (3,), name="cn")(nn.Variable((1, 2, 6))).shape
        (1, 4, 4)
    """


class Deconvolution(ConvolutionFamily):
    """N-D deconvolution (transposed convolution) with a bias term.

    The weight has PF's shape ``(inmaps, outmaps // group, *kernel)``.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> deconv = nm.Deconvolution(8, 4, (2, 2), stride=(2, 2), name="up")
        >>> deconv(nn.Variable((1, 8, 5, 5))).shape
        (1, 4, 10, 10)
        >>> deconv.get_parameters()["deconv/W"].shape
        (8, 4, 2, 2)
    """

    pf_function = PF.deconvolution
    positional = _EXPERIMENTAL_ORDER
    shapes = ConvolutionFamily.shapes._replace(
        where=(
            "len(batch) == base_axis",
            "out = (spatial - 1) * stride - 2 * pad + dilation * (kernel - 1) + 1 "
            "+ output_padding",
        ),
        note="Per spatial axis; ``pad`` and ``output_padding`` 0, ``stride`` and "
        "``dilation`` 1 when not given. With ``channel_last=True`` the channels are the "
        "last axis of both.",
    )


class Deconv1d(Deconvolution):
    """1-D deconvolution; spatial arguments may be ints.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> nm.Deconv1d(4, 2, 3, name="d1")(nn.Variable((1, 4, 5))).shape
        (1, 2, 7)
    """

    spatial_dims = 1


class Deconv2d(Deconvolution):
    """2-D deconvolution; spatial arguments may be ints.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> nm.Deconv2d(4, 2, 2, stride=2, name="d2")(nn.Variable((1, 4, 3, 3))).shape
        (1, 2, 6, 6)
    """

    spatial_dims = 2


class Deconv3d(Deconvolution):
    """3-D deconvolution; spatial arguments may be ints.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> nm.Deconv3d(2, 1, 2, name="d3")(nn.Variable((1, 2, 2, 2, 2))).shape
        (1, 1, 3, 3, 3)
    """

    spatial_dims = 3


class DeconvNd(Deconvolution):
    """N-D deconvolution (the number of dimensions is ``len(kernel)``).

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> nm.DeconvNd(2, 2, (3,), name="dn")(nn.Variable((1, 2, 4))).shape
        (1, 2, 6)
    """


class DepthwiseConvolution(ConvolutionFamily):
    """Depthwise convolution: each input channel convolved with its own ``multiplier`` kernels.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> dw = nm.DepthwiseConvolution(4, (3, 3), pad=(1, 1), multiplier=2, name="dw")
        >>> dw(nn.Variable((1, 4, 6, 6))).shape
        (1, 8, 6, 6)
        >>> dw.get_parameters()["depthwise_conv/W"].shape
        (8, 3, 3)
    """

    pf_function = PF.depthwise_convolution
    shapes = ConvolutionFamily.shapes._replace(
        outputs=(("output", "(*batch, inmaps * multiplier, *out)"),)
    )


class DepthwiseDeconvolution(ConvolutionFamily):
    """Depthwise deconvolution: each group of ``divisor`` channels deconvolved into one.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> up = nm.DepthwiseDeconvolution(4, (2, 2), stride=(2, 2), divisor=2, name="up")
        >>> up(nn.Variable((1, 4, 3, 3))).shape
        (1, 2, 6, 6)
    """

    pf_function = PF.depthwise_deconvolution
    shapes = Deconvolution.shapes._replace(
        outputs=(("output", "(*batch, inmaps // divisor, *out)"),)
    )


class DeformableConvolution(ConvolutionFamily):
    """2-D deformable convolution; called as ``layer(x, offset, mask=None)``, as PF takes them.

    The ``offset`` (and the v2 ``mask``) come from a separate convolution of
    the same input: they have the input's spatial shape with
    ``deformable_group * 2 * prod(kernel)`` (``mask``: ``* 1 *``) channels.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> dconv = nm.DeformableConvolution(3, 4, (3, 3), name="dconv")
        >>> x, offset = nn.Variable((1, 3, 5, 5)), nn.Variable((1, 18, 5, 5))
        >>> dconv(x, offset).shape
        (1, 4, 3, 3)
    """

    pf_function = PF.deformable_convolution
    inputs = ("inp", "offset", "mask")
    shapes = ConvolutionFamily.shapes._replace(
        inputs=(
            ("inp", "(*batch, inmaps, *spatial)"),
            ("offset", "(*batch, deformable_group * 2 * prod(kernel), *spatial)"),
            ("mask", "(*batch, deformable_group * prod(kernel), *spatial)"),
        )
    )

    def _example_inputs(self):
        inputs = super()._example_inputs()
        if inputs is None:
            return None
        (x,) = inputs
        # PF needs an offset to build its graph: the input's shape with offset channels.
        offset_shape = list(x.shape)
        offset_shape[self._channel_axis(x.ndim)] = (
            self.config["deformable_group"] * 2 * int(np.prod(self.config["kernel"]))
        )
        return x, nn.Variable(tuple(offset_shape))
