"""Enumeration, creation and freezing of a module tree's parameters.

A module's parameters are the registry entries its state owns
(``ModuleState.owned``), looked up under its prefix, in the tree's order.
"""

import functools
from collections import OrderedDict

import nnabla as nn
import nnabla.parameter as _parameter
import numpy as np

from . import _registry
from ._calls import run_in_scope
from ._kept import note_loaded_alone
from ._naming import describe, join, naming_epoch, prefix_of, root_names
from ._state import ModuleBase, frozen_entries, ownership_epoch
from ._tree import check_foreign, walk, walk_modules
from ._variables import put_in_registry


def parameters_of(module, grad_only=True, recursive=True, absolute=False):
    """``module.get_parameters(...)``: see its docstring."""
    hold_frozen()
    tree = list(walk_modules(module))  # also adopts children added to lists since the last walk
    for current in tree:
        state = current._module_state
        if state.foreign:
            check_foreign(current)
        if state.unregistered:
            put_in_registry(current)
        if not state.claims and hasattr(current, "_create_parameters"):
            create_before_the_first_call(current)
        elif state.early is not None:
            _created_again(current)
    prefix = prefix_of(module)
    start = join(prefix) + "/" if absolute and prefix else ""
    # The tree's members, by id (a removed child may die; its id must not be kept alive).
    members = tuple(map(id, tree)) if recursive else ()
    found = _claimed_entries(module, recursive, members, start, grad_only)
    if found is None:  # owned entries are missing from the registry (removed by hand)
        create_parameters(module, tree)  # layers make theirs again; PF code's stay gone
        found = _claimed_entries(module, recursive, members, start, grad_only, complete=False)
    return found


def _claimed_entries(module, recursive, members, start, grad_only, complete=True):
    """``OrderedDict(start + relative key: Variable)`` in the tree's order.

    None when an owned entry is missing from the registry. The trie of the
    tree's keys is kept between calls while the tree has the same members
    (``members``: their ids, in walk order) and none of them was named, or
    started or stopped owning a key. Children taken out of a list or an
    attribute and put back change no name or key: only the members show it.
    """
    state = module._module_state
    epochs = (naming_epoch[0], ownership_epoch[0], recursive, members)
    cache = state.key_cache
    if cache is None or cache[0] != epochs:
        keys = dict.fromkeys(claimed_keys(module, recursive))  # in the tree's order
        cache = state.key_cache = (epochs, _registry.make_trie(keys), len(keys))
    found = OrderedDict()
    scope = _registry.resolve(prefix_of(module), create=False)
    if scope is None:
        return found if cache[2] == 0 or not complete else None
    count = _registry.collect_claimed(scope, cache[1], found, grad_only, start)
    return found if count == cache[2] or not complete else None


def pytorch_parameters(module, recursive):
    """``module.named_parameters()``: every weight its code made trainable, frozen or not."""
    if getattr(module, "_shares_without_owning", False):  # a slice: its items own them
        owners = [item for item in module if isinstance(item, ModuleBase)]
    else:
        owners = [module]
    flags = {key: flag for owner in owners for key, flag in unfrozen_need_grad(owner).items()}
    for key, param in module.get_parameters(False, recursive).items():
        if param.need_grad or flags.get(id(param), False):
            yield key, param


def hold_frozen():
    """Frozen entries get ``need_grad=False`` back wherever something set it.

    NNabla's loaders (``nn.load_parameters``) set each entry's flag from the
    file, and PF's ``get_parameter_or_create`` from the code that reuses it by
    name; a freeze is the module's, so it holds over both.
    """
    for param in frozen_entries.values():
        if param.need_grad:
            param.need_grad = False


def _entry_ids():
    return {key: id(param) for key, param in nn.get_parameters(grad_only=False).items()}


def _own_flags_after(load):
    """NNabla's ``load_parameters`` sets each entry's ``need_grad`` from the file: every
    live module's entries get their own flag back after it, a freeze's included."""

    @functools.wraps(load)
    def load_parameters(*args, **kwargs):
        before = _entry_ids()
        result = load(*args, **kwargs)
        note_loaded_alone(before, _entry_ids())
        for root in root_names.live():
            try:
                modules = [module for _, module in walk(root)]
            except ValueError:  # a tree that cannot be listed says so at its next use
                continue
            for module in modules:
                frozen = module._module_state.frozen
                for _, param, requested in owned_entries(module):
                    param.need_grad = requested and not (frozen or id(param) in frozen_entries)
        return result

    load_parameters._own_flags = True
    return load_parameters


if not getattr(_parameter.load_parameters, "_own_flags", False):
    _parameter.load_parameters = nn.load_parameters = _own_flags_after(_parameter.load_parameters)


def unfrozen_need_grad(module):
    """``id(Variable) -> need_grad`` its code asked for, of the tree's frozen entries.

    A save writes these: freezing is the module's state, not the weights'.
    """
    flags = {}
    for _, current in walk(module):
        for _, param, requested in owned_entries(current):
            if id(param) in frozen_entries:
                flags[id(param)] = requested
    return flags


def owned_entries(module):
    """``(key, Variable, need_grad its code asked for)`` of what the module's own code owns."""
    state = module._module_state
    scope = _registry.resolve(prefix_of(module), create=False)
    for key in state.owned() if scope is not None else ():
        param = _registry.lookup(scope, key)
        if _registry.is_variable(param):
            yield key, param, state.requested_need_grad(key)


def release(module):
    """``module.release()``: removes the tree's parameters from the registry."""
    scope = _registry.resolve(prefix_of(module), create=False)
    for key in list(claimed_keys(module, True)) if scope is not None else ():
        frozen_entries.pop(id(_registry.remove(scope, key)), None)
    for _, current in walk(module):
        current._module_state.claims.clear()
        current._module_state.provisional.clear()
        current._module_state.pending = None
    ownership_epoch[0] += 1


def set_frozen(module, frozen):
    """``freeze()``/``unfreeze()``: sets the registry's ``need_grad`` of the tree's entries."""
    create_parameters(module)
    for current in walk_modules(module):
        check_foreign(current)
    for _, current in walk(module):
        state = current._module_state
        state.frozen = frozen
        scope = _registry.resolve(prefix_of(current), create=False)
        if scope is None:
            continue
        for key in state.owned():
            param = _registry.lookup(scope, key)
            if _registry.is_variable(param):
                param.need_grad = state.requested_need_grad(key) and not frozen
                if frozen:
                    frozen_entries[id(param)] = param  # held: its id stays unique
                else:
                    frozen_entries.pop(id(param), None)


class ParameterIterator:
    """``module.parameters()``: an iterator, with a clear error where a dict is needed."""

    def __init__(self, module, values):
        self._module = module
        self._values = iter(values)

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._values)

    def items(self):
        raise TypeError(
            f"{describe(self._module)}: NNabla solvers take a dict of parameters; pass "
            "module.get_parameters(), not module.parameters()."
        )


def orphans():
    """Registry scopes and keys that no live module owns, in registry order.

    A scope is listed whole when nothing under it is owned; useful after
    rebuilding named models in a notebook, or to find what old PF code left.
    ``nn.parameter_scope``-style code outside modules shows up here too.
    """
    owned = set()
    for root in root_names.live():
        prefix = join(prefix_of(root))
        owned.update(f"{prefix}/{key}" if prefix else key for key in claimed_keys(root, True))
    return _registry.unowned(_registry.root_scope(), owned)[0]


def claimed_keys(module, recursive, tree=None):
    nodes = (tree or walk(module)) if recursive else [((), module)]
    for path, current in nodes:
        relative = join(path)
        for key in current._module_state.owned():
            yield f"{relative}/{key}" if relative else key


def count_parameters(module):
    """``(count or None, partial)``: the tree's parameters, created or not yet.

    Layers that know their sizes but have not created their parameters count
    what they will create (computed, nothing created); a tree of parameter-free
    layers alone counts 0; ``partial``: some layer cannot know its parameters
    before its first call.
    """
    sizes, partial = [], False
    scope = _registry.resolve(prefix_of(module), create=False)
    if scope is not None:
        trie = _registry.make_trie(claimed_keys(module, True))
        sizes = [int(np.prod(param.shape)) for _, param in _registry.iter_claimed(scope, trie)]
    free = True  # every module of the tree is parameter-free by construction (nm.ReLU)
    for _, current in walk(module):
        free = free and getattr(current, "holds_no_parameters", False)
        predict = getattr(current, "parameter_shapes", None)
        if predict is not None and not current._module_state.claims:
            shapes = predict()
            partial = partial or shapes is None
            sizes.extend(int(np.prod(shape)) for shape in (shapes or {}).values())
    return (sum(sizes) if sizes or free else None), partial


def create_parameters(module, tree=None):
    """Creates the parameters of every layer in the tree that knows its input sizes.

    ``tree``: the tree's modules, when the caller has walked it already.
    """
    for current in walk_modules(module) if tree is None else tree:
        create = getattr(current, "_create_parameters", None)
        if create is not None and not parameters_exist(current):
            create_before_the_first_call(current)


def create_before_the_first_call(layer):
    """Creates a layer's parameters outside a call; a call places them (``_registry.place``)."""
    existed = _registry.dicts_at(prefix_of(layer))
    _registry.running.creating_early += 1
    try:
        run_in_scope(layer, type(layer)._create_parameters, (), {})
    finally:
        _registry.running.creating_early -= 1
    state = layer._module_state
    above, own = _registry.mark_unplaced(prefix_of(layer), existed, bool(state.local))
    state.early = (_calls_reaching(layer), above, own) if own else None


def _created_again(layer):
    """A layer created before a call that did not use it: where a process that did not
    create it early creates it, at this ``get_parameters()``, it moves (registry order)."""
    state = layer._module_state
    calls, above, own = state.early
    calls_now = _calls_reaching(layer)
    if calls == calls_now:
        return  # no call of its tree since: nothing would be created here now
    if _registry.move_to_the_end(above, own):
        state.early = (calls_now, above, own)
    else:
        state.early = None  # a call placed it


def _calls_reaching(layer):
    """How many calls that could have used ``layer`` began: its own and its
    ancestors', made while no module call was running. Other models' calls
    create nothing in its tree, so they do not count."""
    calls, state = 0, layer._module_state
    while state is not None:
        calls += state.outer_calls
        state = state.parent_state
    return calls


def parameters_exist(module):
    state = module._module_state
    if not state.claims:
        return False
    scope = _registry.resolve(prefix_of(module), create=False)
    return scope is not None and all(
        _registry.is_variable(_registry.lookup(scope, key)) for key in state.claims
    )
