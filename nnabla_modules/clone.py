"""``module.clone(name=...)`` and ``copy.deepcopy(module)``: a new module with copies of the values.

The copy is a new root with its own prefix: the ``name=`` given to ``clone``,
else an automatic one (``res_unit`` is copied to ``res_unit_1``; a module named
``encoder`` to ``encoder_1``), beside the source in the scope where the source
was constructed. Its user attributes (layers, lists, configuration) are deep
copies, its descendants keep their local names, so its keys relative to its
prefix are the source's. Its parameters are new registry entries holding
copies of the source's values and ``need_grad`` flags; a frozen source gives a
frozen copy. Changing one never changes the other.

What is shared, not copied: modules the source refers to but does not own
(a module of another model, or the source's own parent), and ``nn.Variable``
or ``nn.NdArray`` objects held in attributes (graphs, cached outputs).

Example:

    >>> import copy
    >>> import nnabla_modules as nm
    >>> fc = nm.Linear(4, 2, name="small")
    >>> twin = fc.clone(name="twin")
    >>> twin.prefix, list(twin.get_parameters())
    ('twin', ['affine/W', 'affine/b'])
    >>> bool((twin.get_parameters()["affine/W"].d == fc.get_parameters()["affine/W"].d).all())
    True
    >>> copy.deepcopy(fc).prefix
    'small_1'
"""

import copy
import re
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Dict, Optional

import nnabla as nn
import nnabla.random as _nn_random

from .checkpoint._load_check import PendingLoad, defer_check
from .core import _registry
from .core._naming import (
    check_name,
    describe,
    drop_stale_entries,
    name_root,
    prefix_of,
    root_names,
    snake_case,
)
from .core._state import (
    ModuleBase,
    copy_ownership,
    frozen_entries,
    give_state,
    new_state_like,
    state_of,
)
from .core._tree import attach_copy, detach_copy, is_ancestor

if TYPE_CHECKING:  # for annotations only: this file may not import module.py
    from .module import Module

__all__ = ["clone", "deepcopy_module"]

# Keys of the deepcopy memo (ids of these sentinels never collide with live objects').
_CLONE_NAME = object()  # the name= given to clone()
_TOP = object()  # the source module the copy started from
_PENDING = object()  # [(source, copy), ...] below the top, to be parented at the end
_SHARED = object()  # ids of the modules the copy refers to without owning them


def clone(module: "Module", name: Optional[str] = None) -> "Module":
    """A deep copy of ``module`` as a new root named ``name`` (automatic when None).

    Args:
        module (Module): The source.
        name (str): The copy's name; ``None`` picks a free automatic one. A given
            name under which the registry already holds any of the copy's keys
            is an error (the copy would overwrite those values).

    Returns:
        Module: The copy, its parameters created and holding the source's values.
    """
    if name is not None:
        check_name(name, f"{describe(module)}.clone(name={name!r})")
    return copy.deepcopy(module, {id(_CLONE_NAME): name})


def deepcopy_module(source: "Module", memo: Dict[int, Any]) -> "Module":
    """``Module.__deepcopy__``: ``copy.deepcopy(module)`` copies a tree, see the module docstring.

    Copies ``source`` with its descendants (new modules, new parameters holding
    copies of the values); objects outside the tree are shared, not copied.

    Args:
        source (Module): The module being copied.
        memo (dict): ``copy.deepcopy``'s memo of what was copied already.

    Returns:
        Module: The copy of ``source``.
    """
    top = memo.get(id(_TOP))
    if top is not None and not is_ancestor(top, source):
        memo[id(source)] = source  # not part of the copied tree: shared
        memo[id(_SHARED)].add(id(source))
        return source
    duplicate = _new_instance(source)
    memo[id(source)] = duplicate
    if top is None:
        return _copy_tree(source, duplicate, memo)
    memo[id(_PENDING)].append((source, duplicate))
    _copy_attributes(source, duplicate, memo)
    return duplicate


def _new_instance(source):
    cls = type(source)
    duplicate = object.__new__(cls) if cls.__new__ is object.__new__ else cls.__new__(cls)
    # frozen: set after the values are copied (see _copy_tree)
    give_state(duplicate, new_state_like(state_of(source)))
    return duplicate


def _copy_tree(source, duplicate, memo):
    name = memo.pop(id(_CLONE_NAME), None)
    memo[id(_TOP)] = source
    memo[id(_PENDING)] = []
    memo[id(_SHARED)] = shared = set()
    try:
        _copy_attributes(source, duplicate, memo)
        pending = memo[id(_PENDING)]
    finally:
        del memo[id(_TOP)], memo[id(_PENDING)], memo[id(_SHARED)]
    for module_copy in [duplicate] + [child for _, child in pending] if shared else ():
        object.__setattr__(module_copy, "_shared_modules", frozenset(shared))  # see may_share
    for child_source, child in pending:
        _parent_like_source(child_source, child, memo)
    keys = list(source.get_parameters(grad_only=False))
    _name_root(source, duplicate, name, keys)
    _copy_values(source, duplicate)  # need_grad included
    copies = [(source, duplicate)] + pending
    checked = _carry_load_checks(source, duplicate, copies)
    for module_source, module_copy in copies:
        copy_ownership(state_of(module_source), state_of(module_copy), id(module_copy) in checked)
    _copy_freeze(source, duplicate)
    return duplicate


def _copy_freeze(source, duplicate):
    """The copy's entries are frozen where the source's are, as :meth:`freeze` makes them.

    So the freeze holds over PF code and NNabla's loaders, and ``parameters()``
    lists the copy's frozen weights as the source's (docs/concepts.md, *Order*).
    """
    theirs = duplicate.get_parameters(grad_only=False)
    for key, param in source.get_parameters(grad_only=False).items():
        if id(param) in frozen_entries and key in theirs:
            frozen_entries[id(theirs[key])] = theirs[key]


def _carry_load_checks(source, duplicate, copies):
    """A load the source's first call has not checked yet is checked by the copy's calls too.

    Else a copy made between a strict load and the first call (an EMA, a
    teacher) would run on PF's initial values where the file lacks keys
    (docs/checkpoints.md). The copy's check undoes nothing but the keys its
    calls create. Returns the ids of the copies whose calls check a load.
    """
    copy_of = {id(module_source): module_copy for module_source, module_copy in copies}
    loads = {
        id(load): load
        for module_source, _ in copies
        for load in state_of(module_source).pending or ()
        if not load.finished and load.target() is not None
    }
    checked = set()
    for load in loads.values():
        target = load.target()
        if id(target) in copy_of:  # the load was into the source or a module of its tree
            copied_target, base = copy_of[id(target)], ""
        else:  # into a module above the source
            copied_target = duplicate
            base = "/".join(prefix_of(source)[len(prefix_of(target)):])
        hosts = [copy_of[i] for i in load.watched if i in copy_of]
        carried = PendingLoad(
            _below(load.keys, base),
            set(_below(dict.fromkeys(load.known), base)),
            load.strict,
            f"{load.source} (loaded into {describe(target)} before it was copied)",
            [],
        )
        carried.lenient = set(_below(dict.fromkeys(load.lenient), base))
        defer_check(copied_target, carried, hosts)
        checked.update(id(host) for host in hosts)
        checked.add(id(copied_target))
    return checked


def _below(keys, base):
    """The entries of ``keys`` under the scope path ``base``, keyed relative to it."""
    if not base:
        return OrderedDict(keys)
    return OrderedDict(
        (key[len(base) + 1:], value) for key, value in keys.items() if key.startswith(base + "/")
    )


def _copy_attributes(source, duplicate, memo):
    _share_variables(vars(source), memo)
    for attr in state_of(source).variables:  # parameters: the copy's own, in its registry
        variable = vars(source)[attr]
        memo[id(variable)] = nn.Variable.from_numpy_array(
            variable.d.copy(), need_grad=variable.need_grad)
    for attr, value in vars(source).items():
        if attr == "_module_state":
            continue
        try:
            copied = copy.deepcopy(value, memo)
        except TypeError as error:
            raise TypeError(
                f"{describe(source)}: cannot copy the attribute {attr!r} "
                f"({type(value).__name__}): {error}"
            ) from error
        object.__setattr__(duplicate, attr, copied)


def _share_variables(value, memo, seen=None):
    """Maps the Variables and arrays found in containers to themselves (they can't be copied)."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, (nn.Variable, nn.NdArray)):
        memo[id(value)] = value
    elif isinstance(value, dict):
        for item in value.values():
            _share_variables(item, memo, seen)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            _share_variables(item, memo, seen)


def _parent_like_source(source, duplicate, memo):
    parent = state_of(source).parent_module()
    parent_copy = memo.get(id(parent)) if parent is not None else None
    if isinstance(parent_copy, ModuleBase) and parent_copy is not parent:
        attach_copy(duplicate, parent_copy, source)
    else:
        detach_copy(duplicate)


def _name_root(source, duplicate, name, keys):
    path = state_of(duplicate).construction_path
    if name is None:
        local = _free_automatic_name(path, _automatic_base(source), keys)
    else:
        local = name
        held = _held_keys(path + ((name,) if name else ()), keys)
        if held:
            raise ValueError(
                f"clone(name={name!r}) of {describe(source)}: the registry already holds "
                f"{', '.join(repr('/'.join(path + (name, k))) for k in held[:3])}"
                f"{' ...' if len(held) > 3 else ''}; the copy would overwrite them. "
                "Give another name, or name=None for a free automatic one."
            )
    name_root(duplicate, name, local)


def _free_automatic_name(path, base, keys):
    """The first of base, base_1, ... no live root holds and no live entry of ``keys`` is under.

    Entries a dead auto-named root left (stale, see module.py) count as free:
    the copy's first use drops them before its parameters are created.
    """
    candidate, index = base, 0
    while root_names.taken(path + (candidate,)) or _live_keys(path + (candidate,), keys):
        index += 1
        candidate = f"{base}_{index}"
    return candidate


def _live_keys(prefix, keys):
    scope = _registry.resolve(prefix, create=False)
    stale = scope is not None and _registry.stale.get(prefix) is scope
    return not stale and _held_keys(prefix, keys)


_AUTOMATIC_SUFFIX = re.compile(r"_\d+$")


def _automatic_base(source):
    state = state_of(source)
    if not state.local:
        return snake_case(type(source).__name__)
    base = state.local[-1]
    if state.parent is None and state.given_name is None:
        base = _AUTOMATIC_SUFFIX.sub("", base)  # res_unit_1 -> res_unit_2, not res_unit_1_1
    return base


def _held_keys(prefix, keys):
    """The ``keys`` that already exist in the registry under ``prefix``."""
    scope = _registry.resolve(prefix, create=False)
    if scope is None:
        return []
    return [key for key in keys if _registry.lookup(scope, key) is not None]


def _copy_values(source, duplicate):
    """Creates the copy's parameters and writes the source's values into them.

    Parameters the copy cannot create before its first call are placed in the
    registry under its prefix, where that call picks them up. NNabla's random
    generator is left as it was: creating the copy's parameters draws from it.
    """
    values = source.get_parameters(grad_only=False)
    drop_stale_entries(duplicate)  # before placing values under a reused name
    rng_state = _nn_random.prng.get_state()
    try:
        created = duplicate.get_parameters(grad_only=False)
    finally:
        _nn_random.prng.set_state(rng_state)
    for key, param in values.items():
        target = created.get(key)
        if target is None:
            _place(duplicate, key, param)
        else:
            target.d = param.d.copy()
            target.need_grad = param.need_grad


def _place(duplicate, key, param):
    *scopes, leaf = key.split("/")
    scope = _registry.resolve(prefix_of(duplicate) + tuple(scopes))
    scope[leaf] = nn.Variable.from_numpy_array(param.d.copy(), need_grad=param.need_grad)
