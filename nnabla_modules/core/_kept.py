"""What a replaced module keeps: its weights and claims, out of the registry.

A module replaced in its parent (``_tree._retire_previous``) gives up its
registry entries, so the new module starts fresh; the old object keeps them
and, when a module holds it again, they go back under its new prefix. A
trained model held by another goes the same way, at once: out, then back in.
"""

from collections import OrderedDict

from . import _registry
from ._naming import describe, drop_stale_entries, join, prefix_of
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
