"""Wrapping an unchanged PF-based function as a module.

The smallest refactor of existing NNabla code: keep the function's body as
it is, and let each module instance give it its own parameter scope.

    >>> import nnabla as nn
    >>> import nnabla.functions as F
    >>> import nnabla.parametric_functions as PF
    >>> import nnabla_modules as nm
    >>> @nm.wrap
    ... def mlp(x, n_hidden, n_out):
    ...     h = F.relu(PF.affine(x, n_hidden, name="fc1"))
    ...     return PF.affine(h, n_out, name="fc2")
    >>> net = mlp(n_hidden=16, n_out=3)      # a module; owns the prefix "mlp"
    >>> net(nn.Variable((2, 5))).shape
    (2, 3)
    >>> list(net.get_parameters())
    ['fc1/affine/W', 'fc1/affine/b', 'fc2/affine/W', 'fc2/affine/b']
    >>> other = mlp()                        # a second instance: "mlp_1", its own weights
    >>> other(nn.Variable((2, 5)), 8, 3).shape
    (2, 3)
    >>> other.prefix
    'mlp_1'
"""

from typing import Any, Callable, Dict, Type

from .module import Module


class FunctionModule(Module):
    """A module whose call runs ``function`` (unchanged PF code) in the module's own scope.

    Everything the function creates through ``nnabla.parametric_functions``
    lands under the module's prefix and belongs to the module:
    :meth:`~nnabla_modules.Module.get_parameters`, saving, loading and
    freezing work on it. The parameters exist from the first call (the
    function's sizes are only known then); a checkpoint loaded before it is
    picked up by that call.

    Keyword arguments given at construction are passed on every call (a
    call's own keywords win). Subclasses made by :func:`wrap` name their
    instances after the function; ``FunctionModule(f)`` works directly too.

    Args:
        function (callable): The PF-based function.
        **bound: Keyword arguments for every call.

    Example:
        >>> import nnabla as nn
        >>> import nnabla.parametric_functions as PF
        >>> import nnabla_modules as nm
        >>> def head(x, n_out):
        ...     return PF.affine(x, n_out, name="fc")
        >>> cls_head = nm.FunctionModule(head, n_out=10, name="cls_head")
        >>> cls_head(nn.Variable((4, 8))).shape
        (4, 10)
        >>> list(cls_head.get_parameters())
        ['fc/affine/W', 'fc/affine/b']
    """

    function: Callable[..., Any]
    bound: Dict[str, Any]

    def __init__(self, function: Callable[..., Any], **bound: Any) -> None:
        if not callable(function):
            raise TypeError(f"FunctionModule: function must be callable, got {function!r}")
        self.function = function
        self.bound = bound

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Runs the function in the module's scope.

        Args:
            *args: Positional arguments of the function.
            **kwargs: Keyword arguments of the function; they override the
                ``bound`` ones of the constructor.

        Returns:
            What the function returns.
        """
        return self.function(*args, **{**self.bound, **kwargs})

    def extra_repr(self) -> str:
        bound = [f"{k}={v!r}" for k, v in self.bound.items()]
        if getattr(type(self), "function", None) is self.function:
            return ", ".join(bound)  # the class is named after the function
        return ", ".join([getattr(self.function, "__qualname__", repr(self.function))] + bound)


def wrap(function: Callable[..., Any]) -> Type[Any]:
    """Turns a PF-based function into a module class named after it (usable as a decorator).

    ``wrap(f)(**bound)`` builds a module; each instance owns its prefix (an
    unnamed root takes the function's name, made unique: ``f``, ``f_1``,
    ...) and runs ``f`` there. The original function stays available as
    ``.function`` on the class. See :class:`FunctionModule`.

    Args:
        function (callable): The PF-based function.

    Returns:
        type: A :class:`FunctionModule` subclass whose constructor takes the
        keyword arguments to bind (and ``name=``).
    """
    if not callable(function):
        raise TypeError(f"wrap: takes a PF-based function, got {function!r}")

    def __init__(self, **bound):
        FunctionModule.__init__(self, function, **bound)

    namespace = {
        "__init__": __init__,
        "__doc__": function.__doc__ or FunctionModule.__doc__,
        "__module__": getattr(function, "__module__", __name__),
        "__qualname__": getattr(function, "__qualname__", type(function).__name__),
        "function": staticmethod(function),
    }
    # The class name gives unnamed instances their names: a lambda's "<lambda>"
    # would put "<" in registry keys.
    name = getattr(function, "__name__", "")
    return type(name if name.isidentifier() else "FunctionModule", (FunctionModule,), namespace)
