"""``nn.Variable`` attributes that are parameters: PyTorch's ``nn.Parameter`` habit.

A leaf ``nn.Variable`` with ``need_grad=True`` held as a module attribute
(``self.log_alpha = nn.Variable.from_numpy_array(a, need_grad=True)``) is a
parameter of the module, keyed by the attribute's name: it is put in NNabla's
registry under the module's prefix, the very Variable the attribute holds,
when the module is first used (a call, ``get_parameters()``, a save or a
load), as a layer's weights are. From then on it is an entry the module owns
like any other: listed, saved, loaded in place, frozen and copied with it.
"""

import sys
import warnings

import nnabla as nn

from . import _registry
from ._naming import describe, join, prefix_of
from ._state import frozen_entries, ownership_epoch


def is_parameter(value):
    """Whether an attribute value is a parameter: a leaf Variable that wants gradients."""
    return isinstance(value, nn.Variable) and value.need_grad and value.parent is None


def hold(module, attr, value):
    """``module.attr = value`` for a value that is no module: sets it, and records a
    parameter attribute, put in the registry at once where the module's call runs."""
    state = module._module_state
    if not is_parameter(value):
        if attr in state.variables:
            raise TypeError(
                f"{describe(module)}: {attr!r} is a parameter; assign it a leaf nn.Variable "
                f"with need_grad=True (got {type(value).__name__}), or keep the other value "
                "under another attribute."
            )
        object.__setattr__(module, attr, value)
        return
    object.__setattr__(module, attr, value)
    state.variables[attr] = True
    state.unregistered = True
    if _registry.running.active and _registry.running.active[-1] is module:
        put_in_registry(module, state.scope)  # assigned in its own call


def put_in_registry(module, scope=None):
    """Puts the module's parameter attributes in the registry, under its prefix."""
    state = module._module_state
    state.unregistered = False
    if scope is None:
        scope = _registry.resolve(prefix_of(module))
    for attr in state.variables:
        variable = module.__dict__[attr]
        if scope.get(attr) is not variable:
            scope[attr] = variable
        if attr not in state.claims:
            state.claims[attr] = True
            ownership_epoch[0] += 1
        if state.frozen:
            variable.need_grad = False
            frozen_entries[id(variable)] = variable


def refuse_nnabla_module(parent, value, path):
    """NNabla's own ``nn.Module`` keeps its weights in the object, out of this module's reach."""
    nnabla_module = sys.modules.get("nnabla.core.module")
    if nnabla_module is not None and isinstance(value, nnabla_module.Module):
        raise TypeError(
            f"{describe(parent)}: cannot hold {join(map(str, path))!r}, an NNabla nn.Module "
            f"({type(value).__name__}, nnabla.core.module). It keeps its parameters in the "
            "object, not in NNabla's registry, so this module could not enumerate, save, "
            "load or freeze them. Use nnabla_modules layers for it, or wrap its PF code "
            "with nnabla_modules.wrap."
        )


def check_held_value(parent, value, path):
    """A value in a list or dict a module holds: never NNabla's ``nn.Module``, and a
    parameter-like Variable there is not a parameter (only attributes are): said once."""
    refuse_nnabla_module(parent, value, path)
    if is_parameter(value) and not str(path[0]).startswith("_"):  # not a private cache
        warnings.warn(
            f"{describe(parent)}: {join(map(str, path))!r} holds an nn.Variable with "
            "need_grad=True in a list or dict: it is not one of the module's parameters "
            "(not listed, saved, loaded or frozen). Hold each as an attribute of its own "
            "(self.w0 = ...) to make it one.",
            stacklevel=2,
        )
