"""Type stub written by scripts/layer_stubs.py from the classes' signatures: do not edit."""

from typing import Any, ClassVar, Sequence, overload

import nnabla as nn

from ._adapter import Layer
from ._types import Bool, Initializers, Int, Ints, Number

class _PerAxisNormalization(Layer):
    n_dims: ClassVar[int | None]

class _BatchNormFamily(_PerAxisNormalization): ...

class BatchNormalization(_BatchNormFamily):
    def __init__(
        self,
        n_features: Ints | None = None,
        n_dims: Int | None = None,
        axes: Sequence[Int] = [1],
        decay_rate: Number = 0.9,
        eps: Number = 1e-05,
        batch_stat: Bool = True,
        output_stat: Bool = False,
        fix_parameters: Bool = False,
        param_init: Initializers | None = None,
        *,
        no_scale: Bool = False,
        no_bias: Bool = False,
        name: str | None = None,
    ) -> None: ...
    def __call__(
        self,
        inp: nn.Variable,
        test: bool = False,
        *,
        axes: Sequence[Int] = ...,
        decay_rate: Number = ...,
        eps: Number = ...,
        batch_stat: Bool = ...,
        output_stat: Bool = ...,
        fix_parameters: Bool = ...,
        param_init: Initializers | None = ...,
        no_scale: Bool = ...,
        no_bias: Bool = ...,
    ) -> Any: ...

class _FixedRankBatchNorm(BatchNormalization):
    def __init__(
        self,
        n_features: Ints | None = None,
        axes: Sequence[Int] = [1],
        decay_rate: Number = 0.9,
        eps: Number = 1e-05,
        batch_stat: Bool = True,
        output_stat: Bool = False,
        fix_parameters: Bool = False,
        param_init: Initializers | None = None,
        *,
        no_scale: Bool = False,
        no_bias: Bool = False,
        name: str | None = None,
    ) -> None: ...
    def __call__(
        self,
        inp: nn.Variable,
        test: bool = False,
        *,
        axes: Sequence[Int] = ...,
        decay_rate: Number = ...,
        eps: Number = ...,
        batch_stat: Bool = ...,
        output_stat: Bool = ...,
        fix_parameters: Bool = ...,
        param_init: Initializers | None = ...,
        no_scale: Bool = ...,
        no_bias: Bool = ...,
    ) -> Any: ...

class BatchNorm1d(_FixedRankBatchNorm):
    def __init__(
        self,
        n_features: Ints | None = None,
        axes: Sequence[Int] = [1],
        decay_rate: Number = 0.9,
        eps: Number = 1e-05,
        batch_stat: Bool = True,
        output_stat: Bool = False,
        fix_parameters: Bool = False,
        param_init: Initializers | None = None,
        *,
        no_scale: Bool = False,
        no_bias: Bool = False,
        name: str | None = None,
    ) -> None: ...
    def __call__(
        self,
        inp: nn.Variable,
        test: bool = False,
        *,
        axes: Sequence[Int] = ...,
        decay_rate: Number = ...,
        eps: Number = ...,
        batch_stat: Bool = ...,
        output_stat: Bool = ...,
        fix_parameters: Bool = ...,
        param_init: Initializers | None = ...,
        no_scale: Bool = ...,
        no_bias: Bool = ...,
    ) -> Any: ...

class BatchNorm2d(_FixedRankBatchNorm):
    def __init__(
        self,
        n_features: Ints | None = None,
        axes: Sequence[Int] = [1],
        decay_rate: Number = 0.9,
        eps: Number = 1e-05,
        batch_stat: Bool = True,
        output_stat: Bool = False,
        fix_parameters: Bool = False,
        param_init: Initializers | None = None,
        *,
        no_scale: Bool = False,
        no_bias: Bool = False,
        name: str | None = None,
    ) -> None: ...
    def __call__(
        self,
        inp: nn.Variable,
        test: bool = False,
        *,
        axes: Sequence[Int] = ...,
        decay_rate: Number = ...,
        eps: Number = ...,
        batch_stat: Bool = ...,
        output_stat: Bool = ...,
        fix_parameters: Bool = ...,
        param_init: Initializers | None = ...,
        no_scale: Bool = ...,
        no_bias: Bool = ...,
    ) -> Any: ...

class BatchNorm3d(_FixedRankBatchNorm):
    def __init__(
        self,
        n_features: Ints | None = None,
        axes: Sequence[Int] = [1],
        decay_rate: Number = 0.9,
        eps: Number = 1e-05,
        batch_stat: Bool = True,
        output_stat: Bool = False,
        fix_parameters: Bool = False,
        param_init: Initializers | None = None,
        *,
        no_scale: Bool = False,
        no_bias: Bool = False,
        name: str | None = None,
    ) -> None: ...
    def __call__(
        self,
        inp: nn.Variable,
        test: bool = False,
        *,
        axes: Sequence[Int] = ...,
        decay_rate: Number = ...,
        eps: Number = ...,
        batch_stat: Bool = ...,
        output_stat: Bool = ...,
        fix_parameters: Bool = ...,
        param_init: Initializers | None = ...,
        no_scale: Bool = ...,
        no_bias: Bool = ...,
    ) -> Any: ...

class FusedBatchNormalization(_BatchNormFamily):
    def __init__(
        self,
        n_features: Ints | None = None,
        n_dims: Int | None = None,
        axes: Sequence[Int] = [1],
        decay_rate: Number = 0.9,
        eps: Number = 1e-05,
        batch_stat: Bool = True,
        nonlinearity: str = "relu",
        output_stat: Bool = False,
        fix_parameters: Bool = False,
        param_init: Initializers | None = None,
        no_scale: Bool = False,
        no_bias: Bool = False,
        *,
        name: str | None = None,
    ) -> None: ...
    def __call__(
        self,
        inp: nn.Variable,
        /,
        z: nn.Variable | None = None,
        *,
        test: bool = False,
        axes: Sequence[Int] = ...,
        decay_rate: Number = ...,
        eps: Number = ...,
        batch_stat: Bool = ...,
        nonlinearity: str = ...,
        output_stat: Bool = ...,
        fix_parameters: Bool = ...,
        param_init: Initializers | None = ...,
        no_scale: Bool = ...,
        no_bias: Bool = ...,
    ) -> Any: ...

class SyncBatchNormalization(_BatchNormFamily):
    @overload
    def __init__(
        self,
        n_features: Ints | None,
        n_dims: Int | None,
        comm: Any,
        group: Any = "world",
        axes: Sequence[Int] = [1],
        decay_rate: Number = 0.9,
        eps: Number = 1e-05,
        batch_stat: Bool = True,
        output_stat: Bool = False,
        fix_parameters: Bool = False,
        param_init: Initializers | None = None,
        no_scale: Bool = False,
        no_bias: Bool = False,
        *,
        name: str | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self,
        *,
        n_features: Ints | None = None,
        n_dims: Int | None = None,
        comm: Any,
        group: Any = "world",
        axes: Sequence[Int] = [1],
        decay_rate: Number = 0.9,
        eps: Number = 1e-05,
        batch_stat: Bool = True,
        output_stat: Bool = False,
        fix_parameters: Bool = False,
        param_init: Initializers | None = None,
        no_scale: Bool = False,
        no_bias: Bool = False,
        name: str | None = None,
    ) -> None: ...
    def __call__(
        self,
        inp: nn.Variable,
        test: bool = False,
        *,
        comm: Any = ...,
        group: Any = ...,
        axes: Sequence[Int] = ...,
        decay_rate: Number = ...,
        eps: Number = ...,
        batch_stat: Bool = ...,
        output_stat: Bool = ...,
        fix_parameters: Bool = ...,
        param_init: Initializers | None = ...,
        no_scale: Bool = ...,
        no_bias: Bool = ...,
    ) -> Any: ...

class InstanceNormalization(_PerAxisNormalization):
    def __init__(
        self,
        n_features: Ints | None = None,
        n_dims: Int | None = None,
        channel_axis: Int = 1,
        batch_axis: Ints = 0,
        eps: Number = 1e-05,
        output_stat: Bool = False,
        fix_parameters: Bool = False,
        param_init: Initializers | None = None,
        no_scale: Bool = False,
        no_bias: Bool = False,
        *,
        name: str | None = None,
    ) -> None: ...
    def __call__(
        self,
        inp: nn.Variable,
        /,
        *,
        test: bool = False,
        channel_axis: Int = ...,
        batch_axis: Ints = ...,
        eps: Number = ...,
        output_stat: Bool = ...,
        fix_parameters: Bool = ...,
        param_init: Initializers | None = ...,
        no_scale: Bool = ...,
        no_bias: Bool = ...,
    ) -> Any: ...

class GroupNormalization(InstanceNormalization):
    @overload
    def __init__(
        self,
        n_features: Ints | None,
        n_dims: Int | None,
        num_groups: Int,
        channel_axis: Int = 1,
        batch_axis: Ints = 0,
        eps: Number = 1e-05,
        output_stat: Bool = False,
        fix_parameters: Bool = False,
        param_init: Initializers | None = None,
        no_scale: Bool = False,
        no_bias: Bool = False,
        *,
        name: str | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self,
        *,
        n_features: Ints | None = None,
        n_dims: Int | None = None,
        num_groups: Int,
        channel_axis: Int = 1,
        batch_axis: Ints = 0,
        eps: Number = 1e-05,
        output_stat: Bool = False,
        fix_parameters: Bool = False,
        param_init: Initializers | None = None,
        no_scale: Bool = False,
        no_bias: Bool = False,
        name: str | None = None,
    ) -> None: ...
    def __call__(
        self,
        inp: nn.Variable,
        /,
        *,
        test: bool = False,
        num_groups: Int = ...,
        channel_axis: Int = ...,
        batch_axis: Ints = ...,
        eps: Number = ...,
        output_stat: Bool = ...,
        fix_parameters: Bool = ...,
        param_init: Initializers | None = ...,
        no_scale: Bool = ...,
        no_bias: Bool = ...,
    ) -> Any: ...

class LayerNormalization(Layer):
    def __init__(
        self,
        normalized_shape: Ints | None = None,
        batch_axis: Ints = 0,
        eps: Number = 1e-05,
        output_stat: Bool = False,
        fix_parameters: Bool = False,
        param_init: Initializers | None = None,
        no_scale: Bool = False,
        no_bias: Bool = False,
        *,
        name: str | None = None,
    ) -> None: ...
    def __call__(
        self,
        inp: nn.Variable,
        /,
        *,
        test: bool = False,
        batch_axis: Ints = ...,
        eps: Number = ...,
        output_stat: Bool = ...,
        fix_parameters: Bool = ...,
        param_init: Initializers | None = ...,
        no_scale: Bool = ...,
        no_bias: Bool = ...,
    ) -> Any: ...

class MeanSubtraction(Layer):
    def __init__(
        self,
        sample_shape: Ints | None = None,
        base_axis: Int = 1,
        update_running_mean: Bool = True,
        fix_parameters: Bool = False,
        *,
        name: str | None = None,
    ) -> None: ...
    def __call__(
        self,
        inp: nn.Variable,
        /,
        *,
        test: bool = False,
        base_axis: Int = ...,
        update_running_mean: Bool = ...,
        fix_parameters: Bool = ...,
    ) -> Any: ...
