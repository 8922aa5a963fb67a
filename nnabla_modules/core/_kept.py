"""What a replaced module keeps: its weights and claims, out of the registry.

A module replaced in its parent (``_tree._retire_previous``) gives up its
registry entries, so the new module starts fresh; the old object keeps them
and, when a module holds it again, they go back under its new prefix. A
trained model held by another goes the same way, at once: out, then back in.
"""

import warnings
from collections import OrderedDict
from typing import Dict

from . import _registry
from ._naming import describe, drop_stale_entries, join, prefix_of, prefix_of_state, root_names
from ._state import frozen_entries, ownership_epoch


def claims_of(state):
    """``[(state, claims, provisional, pending)]`` of a module's state tree, copied.

    ``pending``: the loads made before its first call that its calls check
    (``checkpoint/_load_check.py``); they go along with the weights.
    """
    found = [(state, OrderedDict(state.claims), OrderedDict(state.provisional), state.pending)]
    for _, child_state in state.slots.values():
        found.extend(claims_of(child_state))
    return found


def _local_at(state, levels):
    given = state.given_name
    return levels if given is None else ((given,) if given else ())


def check_restorable(parent, levels, child):
    """A replaced module held again takes its weights back: refused where others sit."""
    state = child._module_state
    if state.kept is None:
        return
    drop_stale_entries(parent)  # a dead auto-named root's leftovers are no one's weights
    base = prefix_of(parent) + _local_at(state, levels)
    target = _registry.resolve(base, create=False)
    freed = set()  # the entries of the module it replaces, removed on the way
    slot = parent._module_state.slots.get(levels)
    if slot is not None and slot[1] is not state:
        occupant = prefix_of(parent) + slot[1].local
        freed = {occupant + tuple(key.split("/")) for key in state_keys(slot[1])}
    taken = [key for key in state.kept[0]
             if target is not None and _registry.lookup(target, key) is not None
             and base + tuple(key.split("/")) not in freed]
    if taken:
        raise ValueError(
            f"{describe(parent)}: cannot hold {describe(child)} as {join(map(str, levels))!r} "
            f"again: its weights would go back under {join(base)!r}, where the registry "
            f"holds {', '.join(taken[:3])} already. Hold it under another name, or remove "
            "those entries first."
        )


def restore_kept(child):
    state = child._module_state
    weights, frozen, claims = state.kept
    state.kept = None
    base = prefix_of(child)
    for key, param in weights.items():
        *levels, leaf = key.split("/")
        _registry.resolve(base + tuple(levels))[leaf] = param
        if key in frozen:
            frozen_entries[id(param)] = param
    for owner, owned, provisional, pending in claims:
        owner.claims.update(owned)
        owner.provisional.update(provisional)
        owner.pending = tuple(load for load in pending or () if not load.finished) or None
    ownership_epoch[0] += 1


def state_keys(state):
    """The keys a module's state tree owns, relative to its prefix (works for dead modules)."""
    keys = list(state.owned())
    for _, child_state in state.slots.values():
        base = join(child_state.local)
        keys.extend(f"{base}/{key}" if base else key for key in state_keys(child_state))
    return keys


def forget_claims(state):
    state.claims.clear()
    ownership_epoch[0] += 1
    state.provisional.clear()
    state.pending = None
    for _, child_state in state.slots.values():
        forget_claims(child_state)


def take_out(state, prefix):
    """Takes a module tree's entries out of the registry at ``prefix``: what it keeps
    (``ModuleState.kept``) until it is held again."""
    scope = _registry.resolve(prefix, create=False)
    removed, frozen = {}, set()
    for key in state_keys(state):
        param = _registry.remove(scope, key) if scope is not None else None
        if _registry.is_variable(param):
            removed[key] = param
            if frozen_entries.pop(id(param), None) is not None:
                frozen.add(key)
    claims = claims_of(state)
    forget_claims(state)
    return removed, frozen, claims



#: ``absolute key -> id(Variable)`` of the entries ``nn.load_parameters`` created or
#: replaced: values meant for whatever builds under those names (PF's habit).
loaded_alone: Dict[str, int] = {}


def note_loaded_alone(before, after):
    """Records what an ``nn.load_parameters`` put in the registry (``{key: id}`` around it),
    and forgets the entries that are gone from it since."""
    kept = {key: ident for key, ident in loaded_alone.items() if after.get(key) == ident}
    kept.update((key, ident) for key, ident in after.items() if before.get(key) != ident)
    loaded_alone.clear()
    loaded_alone.update(kept)


def warn_left_behind(parent, child, old_prefix):
    """Values ``nn.load_parameters`` put under the prefix a module leaves stay there.

    No module's code used them, so they are not the module's (docs/concepts.md,
    rule 3) and do not follow it to its new prefix, where it creates new weights:
    a warning says so rather than leave the values silently behind. A module built
    for its parent, in the parent's construction, had no prefix of its own to leave.
    """
    built_for_parent = (child._module_state.serial > parent._module_state.serial
                        and parent in _registry.running.constructing)
    scope = None if built_for_parent or not loaded_alone else _registry.resolve(
        old_prefix, create=False)
    if not scope:
        return
    base = join(old_prefix) + "/"
    keys = [key for key, param in _leaves(scope)
            if loaded_alone.get(base + key) == id(param) and not _owned(base + key, child)]
    if keys:
        warnings.warn(
            f"{describe(child)} leaves values nn.load_parameters put under "
            f"{join(old_prefix)!r} ({', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}): "
            "they are not its own until its code uses them, so under its new prefix it "
            "creates new weights. Load them with its own load_parameters() before a model "
            "holds it, or call it once first (docs/concepts.md).",
            stacklevel=4,
        )


def _leaves(scope, prefix=""):
    for name, value in scope.items():
        if isinstance(value, dict):
            yield from _leaves(value, prefix + name + "/")
        else:
            yield prefix + name, value


def _owned(key, child):
    """Another live module's code used the entry (one given the same name, say)."""
    states = [root._module_state for root in root_names.live() if root is not child]
    while states:
        state = states.pop()
        prefix = join(prefix_of_state(state))
        if key.startswith(prefix + "/") and key[len(prefix) + 1:] in state.owned():
            return True
        states.extend(child_state for _, child_state in state.slots.values())
    return False
