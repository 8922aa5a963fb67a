"""``nm.layer``: a module class from a user's own parametric function.

Real NNabla code defines its own layers with PF's decorator,
``@parametric_function_api("sn_conv")``. ``nm.layer`` gives such a function
the class that each of PF's functions has here, built by the same adapter,
so every rule of the built-in layers holds for it.
"""

import inspect
from typing import Any, Callable, Dict, Optional, Sequence, Type, Union, overload

from ._adapter import Layer, LayerMeta

#: Mode flags a function may take, and their value in inference (``eval()``,
#: ``test=True``): taken when the function's default is the training value.
_INFERENCE_FLAGS = {"test": True, "batch_stat": False, "training": False}


@overload
def layer(
    function: Callable[..., Any],
    *,
    inputs: Optional[Sequence[str]] = None,
    inference: Optional[Dict[str, Any]] = None,
    class_name: Optional[str] = None,
) -> Type[Layer]: ...


@overload
def layer(
    function: None = None,
    *,
    inputs: Optional[Sequence[str]] = None,
    inference: Optional[Dict[str, Any]] = None,
    class_name: Optional[str] = None,
) -> Callable[[Callable[..., Any]], Type[Layer]]: ...


def layer(
    function: Optional[Callable[..., Any]] = None,
    *,
    inputs: Optional[Sequence[str]] = None,
    inference: Optional[Dict[str, Any]] = None,
    class_name: Optional[str] = None,
) -> Union[Type[Layer], Callable[[Callable[..., Any]], Type[Layer]]]:
    """Makes a module class of a function decorated with ``@parametric_function_api``.

    Usable as ``SNConv = nm.layer(sn_conv)`` or as a decorator (``@nm.layer``
    or ``@nm.layer(inputs=("x", "y"))``, above PF's decorator). The class has
    every rule of the built-in layers: the constructor takes the function's
    arguments but its inputs and ``name`` (same names, same defaults) plus
    ``name=``; the call takes the inputs and returns what the function
    returns; the parameters are created by the function itself at the first
    call, at ``<prefix>/<scope>/...`` exactly as ``fn(x, ..., name=<prefix>)``
    creates them; ``eval()``, ``freeze()``, checkpoints, ``summary`` and
    ``clone`` work as for any layer.

    Args:
        function: The decorated function.
        inputs (:obj:`tuple` of :obj:`str`): Names of the function's input
            Variables, passed positionally by the call (default: its first
            argument).
        inference (dict): The function's arguments in inference (``eval()`` or
            a call's ``test=True``), e.g. ``{"test": True}``. Default: the
            function's flags ``test`` (default False), ``batch_stat`` and
            ``training`` (default True) set to their inference values.
        class_name (str): The class's name (default: the function's name in
            CamelCase, ``sn_conv`` -> ``SnConv``).

    Returns:
        type: A subclass of :class:`nnabla_modules.Layer`.
    """
    if function is None:
        return lambda fn: layer(fn, inputs=inputs, inference=inference, class_name=class_name)
    body = getattr(function, "__parametric_function_api_base__", None)
    if body is None or not hasattr(function, "__scope_name__"):
        raise TypeError(
            f"nm.layer: takes a function decorated with "
            f"nnabla.parametric_functions.parametric_function_api('scope'), got {function!r}"
        )
    params = inspect.signature(body).parameters
    inputs = tuple(params)[:1] if inputs is None else tuple(inputs)
    unknown = [name for name in inputs if name not in params]
    if not inputs or unknown:
        raise TypeError(
            f"nm.layer({body.__name__}): inputs {inputs} must name arguments of the function, "
            f"which takes {tuple(params)}"
        )
    if inference is None:
        inference = {
            flag: value
            for flag, value in _INFERENCE_FLAGS.items()
            if flag in params and params[flag].default is (not value)
        }
    name = class_name or "".join(part.capitalize() for part in body.__name__.split("_"))
    namespace = {
        "__module__": body.__module__,
        "__qualname__": name,
        "pf_function": function,
        "_user_function": body,
        "inputs": inputs,
        "inference_args": dict(inference),
    }
    return LayerMeta(name, (Layer,), namespace)
