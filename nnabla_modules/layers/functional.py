"""Parameter-free layers: one ``nnabla.functions`` call as a module.

What PyTorch users put in a ``Sequential`` beside the parametric layers
(``nm.ReLU()``, ``nm.MaxPool2d(2)``, ``nm.Dropout(0.5)``, ``nm.Flatten()``).
Each class names its ``F`` function and checks its arguments; a call runs
``F.<function>(x, **arguments)`` and builds exactly the graph that call builds.
They hold no parameters. ``Dropout`` follows the mode (docs/concepts.md,
"Training and evaluation"): in ``eval()`` or with ``test=True`` it returns its
input unchanged.
"""

import inspect
from typing import Any, Callable, ClassVar, Dict, Optional, Sequence, Union

import nnabla as nn
import nnabla.functions as F
import numpy as np

from ..module import Module, describe
from ._checks import (
    BOOL,
    INT,
    NON_NEGATIVE_INT,
    NON_NEGATIVE_INTS,
    NUMBER,
    POSITIVE_INTS,
    PROBABILITY,
    check_arguments,
    optional,
)
from ._errors import ErrorsNamed

#: One int for both axes, or a pair.
Pair = Union[int, Sequence[int]]

_RULES = {
    "inplace": BOOL,
    "alpha": NUMBER,
    "axis": optional(INT),
    "p": PROBABILITY,
    "seed": INT,
    "kernel": POSITIVE_INTS,
    "stride": optional(POSITIVE_INTS),
    "pad": optional(NON_NEGATIVE_INTS),
    "ignore_border": BOOL,
    "channel_last": BOOL,
    "including_pad": BOOL,
    "base_axis": NON_NEGATIVE_INT,
}
_PAIRS = ("kernel", "stride", "pad")


class FunctionLayer(Module):
    """Base of the parameter-free layers: a call runs ``function(x, **arguments)``.

    A subclass names the function (``_function = staticmethod(F.relu)``) and,
    when it takes arguments, stores them with :meth:`_set`, which checks them.
    Errors of the call name the module.
    """

    _function: ClassVar[Callable[..., Any]]
    #: True: in ``eval()`` or with ``test=True`` the input is returned unchanged (dropout).
    train_only: ClassVar[bool] = False
    #: ``print(model)`` counts 0 parameters for it, before and after its first call.
    holds_no_parameters: ClassVar[bool] = True
    arguments: Dict[str, Any]

    def __init__(self, *, name: Optional[str] = None) -> None:
        self.arguments = {}

    def _set(self, **arguments: Any) -> None:
        """Checks the function's keyword arguments and keeps them for every call."""
        pairs = {k: self._normalized(k, v) for k, v in arguments.items()}
        check_arguments(pairs, {k: _RULES[k] for k in pairs}, describe(self))
        self.arguments = pairs

    def __call__(self, x: nn.Variable, test: bool = False) -> nn.Variable:
        """Runs the function on ``x``.

        Args:
            x (~nnabla.Variable): The input.
            test (bool): Inference for this call, whatever the mode (dropout off).

        Returns:
            ~nnabla.Variable: The function's output.
        """
        if self.train_only and (test or not self.training):
            return x
        with ErrorsNamed(self):
            return self._apply(x)

    def _apply(self, x):
        return type(self)._function(x, **self.arguments)

    def extra_repr(self) -> str:
        """The arguments that differ from the constructor's defaults."""
        defaults = inspect.signature(type(self)).parameters
        return ", ".join(
            f"{k}={v!r}"
            for k, v in self.arguments.items()
            if k not in defaults or self._normalized(k, defaults[k].default) != v
        )

    @staticmethod
    def _normalized(name, value):
        return _pair(value) if name in _PAIRS else value


def _pair(value):
    """An int stands for the same value on both axes of a 2-D pooling; None stays None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    return None if value is None else tuple(value) if isinstance(value, (list, tuple)) else value


class ReLU(FunctionLayer):
    """``F.relu``: ``max(0, x)``.

    Args:
        inplace (bool): Compute in place (``F.relu``'s ``inplace``).
        name (str): The module's name (see :class:`~nnabla_modules.Module`).

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> nm.ReLU()(nn.Variable((2, 3))).parent.info.type_name
        'ReLU'
    """

    _function = staticmethod(F.relu)

    def __init__(self, inplace: bool = False, *, name: Optional[str] = None) -> None:
        self._set(inplace=inplace)


class LeakyReLU(FunctionLayer):
    """``F.leaky_relu``: ``x`` where positive, ``alpha * x`` elsewhere.

    Args:
        alpha (float): The slope of the negative part (NNabla's default 0.1;
            PyTorch's is 0.01).
        inplace (bool): Compute in place.
        name (str): The module's name (see :class:`~nnabla_modules.Module`).

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> nm.LeakyReLU(0.25)(nn.Variable((2, 3))).parent.info.args
        {'alpha': 0.25, 'inplace': False}
    """

    _function = staticmethod(F.leaky_relu)

    def __init__(
        self, alpha: float = 0.1, inplace: bool = False, *, name: Optional[str] = None
    ) -> None:
        self._set(alpha=alpha, inplace=inplace)


class Sigmoid(FunctionLayer):
    """``F.sigmoid``: ``1 / (1 + exp(-x))``.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> nm.Sigmoid()(nn.Variable((2, 3))).shape
        (2, 3)
    """

    _function = staticmethod(F.sigmoid)


class Tanh(FunctionLayer):
    """``F.tanh``: the hyperbolic tangent.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> nm.Tanh()(nn.Variable((2, 3))).shape
        (2, 3)
    """

    _function = staticmethod(F.tanh)


class GELU(FunctionLayer):
    """``F.gelu``: the Gaussian error linear unit (NNabla's tanh approximation).

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> nm.GELU()(nn.Variable((2, 3))).parent.info.type_name
        'GELU'
    """

    _function = staticmethod(F.gelu)


class Softmax(FunctionLayer):
    """``F.softmax`` along ``axis``.

    Args:
        axis (int): The axis to normalize; None: the last one (NNabla's default).
        name (str): The module's name (see :class:`~nnabla_modules.Module`).

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> nm.Softmax(axis=1)(nn.Variable((2, 10))).shape
        (2, 10)
    """

    _function = staticmethod(F.softmax)

    def __init__(self, axis: Optional[int] = None, *, name: Optional[str] = None) -> None:
        self._set(axis=axis)


class Dropout(FunctionLayer):
    """``F.dropout`` in training; the input itself in ``eval()`` or with ``test=True``.

    Each element is zeroed with probability ``p`` and the others are scaled by
    ``1 / (1 - p)``, as in PyTorch. The mode is read when the graph is built
    (docs/concepts.md): build the validation graph after ``model.eval()``.

    Args:
        p (float): The probability of zeroing an element, in ``[0, 1)``.
        seed (int): ``F.dropout``'s seed; -1: NNabla's global generator.
        name (str): The module's name (see :class:`~nnabla_modules.Module`).

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> drop = nm.Dropout(0.5)
        >>> x = nn.Variable((2, 8))
        >>> drop(x).parent.info.type_name
        'Dropout'
        >>> drop.eval()(x) is x
        True
    """

    _function = staticmethod(F.dropout)
    train_only = True

    def __init__(self, p: float = 0.5, seed: int = -1, *, name: Optional[str] = None) -> None:
        self._set(p=p, seed=seed)


class _Pool2d(FunctionLayer):
    def __init__(
        self,
        kernel: Pair,
        stride: Optional[Pair] = None,
        pad: Optional[Pair] = None,
        ignore_border: bool = True,
        channel_last: bool = False,
        *,
        name: Optional[str] = None,
    ) -> None:
        self._set(
            kernel=kernel,
            stride=stride,
            pad=pad,
            ignore_border=ignore_border,
            channel_last=channel_last,
        )


class MaxPool2d(_Pool2d):
    """``F.max_pooling`` over the two spatial axes.

    Args:
        kernel (int or tuple of int): The window; an int for both axes.
        stride (int or tuple of int): The step; None: the kernel (as in PyTorch).
        pad (int or tuple of int): Padding of both sides; None: none.
        ignore_border (bool): Drop the windows that go past the border.
        channel_last (bool): The input is ``(N, H, W, C)``.
        name (str): The module's name (see :class:`~nnabla_modules.Module`).

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> nm.MaxPool2d(2)(nn.Variable((4, 3, 8, 8))).shape
        (4, 3, 4, 4)
    """

    _function = staticmethod(F.max_pooling)


class AvgPool2d(_Pool2d):
    """``F.average_pooling`` over the two spatial axes.

    Args:
        kernel (int or tuple of int): The window; an int for both axes.
        stride (int or tuple of int): The step; None: the kernel (as in PyTorch).
        pad (int or tuple of int): Padding of both sides; None: none.
        ignore_border (bool): Drop the windows that go past the border.
        channel_last (bool): The input is ``(N, H, W, C)``.
        including_pad (bool): Count the padding in the average.
        name (str): The module's name (see :class:`~nnabla_modules.Module`).

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> nm.AvgPool2d(2, stride=1)(nn.Variable((4, 3, 8, 8))).shape
        (4, 3, 7, 7)
    """

    _function = staticmethod(F.average_pooling)

    def __init__(
        self,
        kernel: Pair,
        stride: Optional[Pair] = None,
        pad: Optional[Pair] = None,
        ignore_border: bool = True,
        channel_last: bool = False,
        including_pad: bool = True,
        *,
        name: Optional[str] = None,
    ) -> None:
        super().__init__(kernel, stride, pad, ignore_border, channel_last)
        self._set(**self.arguments, including_pad=including_pad)


class GlobalAvgPool2d(FunctionLayer):
    """``F.global_average_pooling``: the mean of each channel, ``(N, C, H, W)`` to ``(N, C, 1, 1)``.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> nm.GlobalAvgPool2d()(nn.Variable((4, 3, 8, 8))).shape
        (4, 3, 1, 1)
    """

    _function = staticmethod(F.global_average_pooling)


class Flatten(FunctionLayer):
    """``F.reshape`` joining the axes from ``base_axis`` on: ``(N, C, H, W)`` to ``(N, C*H*W)``.

    Args:
        base_axis (int): The axes before it are kept (1: the batch axis, as
            PyTorch's ``start_dim=1`` and PF's ``base_axis``).
        name (str): The module's name (see :class:`~nnabla_modules.Module`).

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> nm.Flatten()(nn.Variable((4, 3, 8, 8))).shape
        (4, 192)
    """

    _function = staticmethod(F.reshape)

    def __init__(self, base_axis: int = 1, *, name: Optional[str] = None) -> None:
        self._set(base_axis=base_axis)

    def _apply(self, x):
        base_axis = self.arguments["base_axis"]
        if base_axis >= len(x.shape):
            raise ValueError(
                f"base_axis={base_axis} needs an input of more than {base_axis} axes, "
                f"got {x.shape}"
            )
        return F.reshape(x, x.shape[:base_axis] + (int(np.prod(x.shape[base_axis:])),))


class Identity(FunctionLayer):
    """The input itself: a placeholder (a removed layer, an optional step).

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> x = nn.Variable((2, 3))
        >>> nm.Identity()(x) is x
        True
    """

    def _apply(self, x):
        return x
