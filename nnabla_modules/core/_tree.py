"""The module tree: how a parent finds, adopts, replaces and lists its children.

A module becomes a child when a module holds it in an attribute, or in a list,
tuple or dict held in one (also filled later); its local name is then the
attribute path (see ``_naming.py``). Replacing the child held at a path gives
the new one fresh weights (:func:`adopt`); a child outliving its root keeps its
prefix (``_keep_orphan``). :func:`walk` and :func:`children_of` list the tree.
"""

import weakref
from collections import OrderedDict

from . import _registry
from ._kept import check_restorable, restore_kept, take_out, warn_left_behind
from ._naming import (
    check_name,
    describe,
    hold_root_name,
    join,
    naming_epoch,
    prefix_of,
    prefix_of_state,
    root_names,
    stop_forgetting,
)
from ._state import ModuleBase
from ._variables import check_held_value

CONTAINERS = (list, tuple, dict)


def adopt_attributes(parent):
    seen = set()
    for attr, value in list(vars(parent).items()):
        if isinstance(value, ModuleBase):
            if value._module_state.parent_module() is not parent:  # else held here before
                adopt(parent, value, (attr,))
        elif isinstance(value, CONTAINERS) and attr != "_module_state":
            adopt_within(parent, value, (attr,), seen)


def adopt_within(parent, value, path, seen):
    if id(value) in seen:
        return
    seen.add(id(value))
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(item, ModuleBase):
            if item._module_state.parent_module() is not parent:  # else held here before
                adopt(parent, item, path + (key,))
        elif isinstance(item, CONTAINERS):
            adopt_within(parent, item, path + (key,), seen)
        else:
            check_held_value(parent, item, path + (key,))


def adopt(parent, child, path):
    state = child._module_state
    if state.parent is not None:
        holder = state.parent_module()
        if holder is not None:
            if _root(holder) is not _root(parent):
                # Another model's (or a part built apart, joined later): checked at use.
                parent._module_state.foreign[id(child)] = (weakref.ref(child), path)
            return  # held before (shared), or a back-reference up the tree
        if has_parameters(child):
            raise foreign_module_error(parent, child, join(str(p) for p in path))
        # Its model died before it was used: it may be held anew, here.
    if child in _registry.running.constructing or is_ancestor(child, parent):
        return
    old_prefix = prefix_of(child)
    levels = tuple(check_name(str(p), f"{describe(parent)}: holding a module", True) for p in path)
    if state.retired is None and has_parameters(child):
        if state.given_name is not None:  # other code may reach its weights by that name
            raise RuntimeError(
                f"{describe(child)} already has parameters under the name it was given; "
                f"holding it as {join(str(p) for p in path)!r} in {describe(parent)} would "
                "move them away from that name, which other modules and PF code share. Hold "
                "the module in its parent before its first use, or construct a new one and "
                "load this one's weights into it (new.load_state_dict(old.state_dict()))."
            )
        # A trained model held by another: its weights follow it to its new prefix,
        # the same Variables, as a replaced module's come back (restore_kept).
        state.kept = take_out(state, old_prefix)
        try:
            check_restorable(parent, levels, child)
        except BaseException:
            restore_kept(child)  # back where they were
            raise
    check_restorable(parent, levels, child)
    _retire_previous(parent, levels, child)
    warn_left_behind(parent, child, old_prefix)
    root_names.release(old_prefix, child)
    stop_forgetting(state)
    # A weak reference: no parent<->child cycle, so auto-named roots are freed
    # (and their names reused) deterministically, not when the collector runs.
    # When the parent dies first, the child is kept: it holds its prefix itself.
    child_ref = weakref.ref(child)
    state.parent = weakref.ref(parent, lambda _: _keep_orphan(child_ref))
    state.parent_state = parent._module_state
    state.retired = None
    given = state.given_name
    state.local = levels if given is None else ((given,) if given else ())
    naming_epoch[0] += 1
    parent._module_state.slots[levels] = (child_ref, state)
    if state.kept is not None:
        restore_kept(child)


def _keep_orphan(child_ref):
    """A submodule outlives its root: it keeps its prefix, which automatic names avoid."""
    child = child_ref()
    if child is not None:
        root_names.hold(prefix_of_state(child._module_state), child)


def _retire_previous(parent, levels, child):
    """Replacing the module held at ``levels``: the new one never gets the old weights.

    The old module's registry entries are removed (graphs already built keep
    their arrays) and the old module, if still alive, keeps them and may not
    run until a module holds it again, which puts them back under its new
    prefix. A replaced module still held elsewhere in a live tree is an
    error: removing its weights would change that tree.
    """
    slot = parent._module_state.slots.get(levels)
    if slot is None or slot[1] is child._module_state:
        return
    old_ref, old_state = slot
    old = old_ref()
    where = f"{describe(parent)} holds a new {type(child).__name__} at {join(levels)!r}"
    if old is not None and old_state.parent_module() is parent:
        holder = _live_holder(old)
        if holder is not None:
            raise ValueError(
                f"{where}, replacing {describe(old)}, which {holder} still holds; its "
                "weights cannot be removed. Hold the new module under another name, or "
                "remove the old one from there first."
            )
    kept = take_out(old_state, prefix_of(parent) + old_state.local)
    if old is not None and old_state.parent_module() is parent:
        old_state.parent = old_state.parent_state = None
        old_state.construction_path = prefix_of(parent)  # still described where it was
        old_state.retired = where
        old_state.kept = kept  # its weights follow it, as in PyTorch
        naming_epoch[0] += 1


def _live_holder(module):
    """A description of the live module whose attributes hold ``module``, or None.

    Follows attributes from every live root, not parent links, and adopts
    nothing on the way: it runs while a child is being adopted.
    """
    seen = set()
    stack = root_names.live()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for attr, value in vars(current).items():
            if attr == "_module_state":
                continue
            for found in modules_in(value, set()):
                if found is module:
                    return f"{describe(current)} (attribute {attr!r})"
                stack.append(found)
    return None


def modules_in(value, seen):
    """The modules in ``value``: itself, or the items of its (nested) lists, tuples, dicts."""
    if isinstance(value, ModuleBase):
        yield value
    elif isinstance(value, CONTAINERS) and id(value) not in seen:
        seen.add(id(value))
        for item in value.values() if isinstance(value, dict) else value:
            yield from modules_in(item, seen)


def is_ancestor(candidate, module):
    while module is not None:
        if module is candidate:
            return True
        module = module._module_state.parent_module()
    return False


def has_parameters(module):
    return any(m._module_state.owned() for _, m in walk(module))


def children_of(module):
    """``(local name, child)`` pairs of the modules this one holds, in attribute order."""
    return [(join(child._module_state.local), child) for child in _child_modules(module)]


def _child_modules(module):
    state = module._module_state
    if state.children is not None:
        return state.children
    found = _find_children(module)
    if not module._children_may_grow:
        state.children = found  # reset by __setattr__ when a module is assigned
    return found


def _find_children(module):
    adopt_attributes(module)
    found, seen, places = OrderedDict(), set(), {}
    # An explicit stack, not a recursive closure: a closure that refers to itself
    # is a reference cycle, which would keep the module alive until the collector runs.
    stack = [((attr,), value) for attr, value in reversed(module._held_in_order())
             if attr != "_module_state"]
    while stack:
        path, value = stack.pop()
        if isinstance(value, ModuleBase):
            if value._module_state.parent_module() is module:
                found.setdefault(id(value), value)
                places.setdefault(id(value), []).append(tuple(map(str, path)))
        elif isinstance(value, CONTAINERS) and id(value) not in seen:
            seen.add(id(value))
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend(reversed([(path + (key,), item) for key, item in items]))
    slots = {id(state): levels for levels, (_, state) in module._module_state.slots.items()}
    moved = [(child, slot, places[id(child)][0]) for child in found.values()
             if (slot := _slot_left(child, slots, places[id(child)])) is not None]
    if moved:
        _follow_places(module, moved)
    return list(found.values())


def _slot_left(child, slots, paths):
    """The place a child was held at (``slots``: id of its state -> place), if it is no
    longer held there (moved inside a plain list or dict: a swap, a shift); a child
    named by name= has no place."""
    state = child._module_state
    slot = slots.get(id(state))
    return slot if state.given_name is None and slot not in (None, *paths) else None


def _follow_places(parent, moved):
    """Moved children are named by their new places before they have weights; a
    trained one would keep its keys at the old place, under another child's name:
    refused, as a swap of attributes is."""
    for child, slot, levels in moved:
        if has_parameters(child):
            raise ValueError(
                f"{describe(parent)} holds {describe(child)} at {join(levels)!r} now, but its "
                f"weights are keyed under {join(slot)!r}, where it was first held: a trained "
                "module cannot change places in its model (a swap, a shift of a list), or its "
                "keys would name another's weights. Put it back, or copy weights into new "
                "layers (new.load_state_dict(old.state_dict()))."
            )
    slots = parent._module_state.slots
    for _, slot, _ in moved:
        del slots[slot]
    for child, _, levels in moved:
        child._module_state.local = levels
        slots[levels] = (weakref.ref(child), child._module_state)
    naming_epoch[0] += 1


def walk_modules(module):
    """The module and its descendants, like ``walk`` without the paths.

    Keeps no object per module for the cyclic collector to count: a
    ``get_parameters`` over thousands of layers would otherwise trigger full
    collections of the whole heap.
    """
    seen = set()
    stack = [module]
    while stack:
        current = stack.pop()
        if id(current) not in seen:
            seen.add(id(current))
            yield current
            stack.extend(reversed(_child_modules(current)))


def walk(module, relative=()):
    """Yields ``(relative path tuple, module)`` for the module and its descendants."""
    seen = set()
    stack = [(relative, module)]
    while stack:
        path, current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield path, current
        for child in reversed(_child_modules(current)):
            stack.append((path + child._module_state.local, child))


def rename(module, name):
    """``module.name = name``: allowed until the module has parameters."""
    state = module._module_state
    if name is None or name == state.given_name:
        return
    check_name(name, describe(module))
    if has_parameters(module):
        raise RuntimeError(
            f"{describe(module)} already has parameters; renaming it to {name!r} would "
            "create a second set of weights. Give name= at construction instead."
        )
    old_prefix = prefix_of(module)
    state.given_name = name
    stop_forgetting(state)
    if state.parent is None:
        root_names.release(old_prefix, module)
        hold_root_name(module)
    else:
        state.local = (name,) if name else ()
        naming_epoch[0] += 1


def check_holding(parent, attr, value):
    """``parent.attr = value``: refused where the weights would not follow the attribute.

    A module's keys follow its prefix, fixed once it has parameters. Holding
    such a module where its prefix does not lead (a sibling moved onto another
    child's attribute, as in a swap, or a module of another model) would
    leave a solver, a save or a freeze without it; plain sharing (a second
    attribute for the same module of this model) stays allowed.
    """
    for child in modules_in(value, set()):
        state = child._module_state
        if state.parent is None:
            continue  # adopted here
        holder = state.parent_module()
        if not has_parameters(child) or holder is not None and may_share(parent, holder, child):
            continue  # nothing to lose yet (checked at use: check_foreign), or a view
        if holder is not None and _root(holder) is _root(parent):
            occupant = vars(parent).get(attr)
            moving = holder is parent and isinstance(occupant, ModuleBase)
            if not moving or occupant is child:
                continue
            if occupant._module_state.parent_module() is not parent:
                continue
        raise foreign_module_error(parent, child, attr)


def check_foreign(module):
    """Refuses a module that holds another model's module: it would train it unlisted.

    Holding one is allowed while models are assembled (two blocks built apart
    that share a layer, then held by one model); by the time the tree is
    listed, saved or frozen, every module it holds must be its own.
    """
    foreign = module._module_state.foreign
    if foreign:
        for key, (child_ref, path) in list(foreign.items()):
            child = child_ref()
            holder = child._module_state.parent_module() if child is not None else None
            held = child is not None and any(
                found is child for found in modules_in(vars(module), set()))
            if not held or holder is None or _root(holder) is _root(module):
                del foreign[key]  # let go, or its model and this one are one now
                continue
            if id(child) in getattr(module, "_shared_modules", ()):
                continue  # a copy lists what its source listed: not what it referred to
            raise foreign_module_error(module, child, join(str(p) for p in path))


def may_share(parent, holder, child):
    """Whether ``parent`` may hold ``child``, which ``holder``'s model owns, without owning it.

    A view (a ``Sequential`` slice) runs another model's modules and owns
    nothing; a copy refers to the modules its source referred to without
    owning them. A module built inside the ``__init__`` of the model that owns
    the other (``self.decoder = Decoder(self.encoder)``) joins that model next.
    Whether the holder may then be listed, saved or frozen: ``check_foreign``.
    """
    return (
        getattr(parent, "_shares_without_owning", False)
        or id(child) in getattr(parent, "_shared_modules", ())
        or _root(holder) in _registry.running.constructing
    )


def foreign_module_error(parent, child, where):
    """Holding a module whose prefix this model does not lead: another model's, or a swap."""
    holder = child._module_state.parent_module()
    owner = _root(holder) if holder is not None else None
    if getattr(parent, "_shares_without_owning", False):
        return ValueError(
            f"{describe(parent)} is a slice of a Sequential, a view: it runs {describe(child)} "
            "but owns none of its items' weights, so it cannot list, save or freeze them. "
            f"Do that through {describe(owner or child)}, or item by item "
            "(for layer in seq[2:]: layer.freeze())."
        )
    if owner is not None and owner is not _root(parent):
        return ValueError(
            f"{describe(parent)}: cannot hold {describe(child)} as {where!r}: it belongs to "
            f"{describe(owner)}, and a module has one prefix "
            f"({prefix_of(child) and join(prefix_of(child))!r}), so this model would not list, "
            "save or freeze its weights. To share it between two models, hold it in one "
            "module that holds both (a parent with the shared part and both heads), or hold "
            "the model that owns it (self.backbone = pretrained); for a copy of it, hold "
            "a new one with its weights (new.load_state_dict(old.state_dict()))."
        )
    return ValueError(
        f"{describe(parent)}: cannot hold {describe(child)} as {where!r}: its weights live "
        f"under its prefix {prefix_of(child) and join(prefix_of(child))!r}, which does not "
        "follow it, so this model would list, save and freeze them under other keys or "
        "not at all. Hold the model that owns it instead (self.backbone = pretrained), "
        "or copy its weights into a new layer (new.load_state_dict(old.state_dict()))."
    )


def _root(module):
    while True:
        parent = module._module_state.parent_module()
        if parent is None:
            return module
        module = parent


def attach_copy(child, parent, source):
    """Makes ``child`` (a copy of ``source``) a child of ``parent`` where ``source`` is in its own.

    A copied tree mirrors its source: same local names, same slots, the same
    rules for kept submodules and replacements.
    """
    state = child._module_state
    source_parent = source._module_state.parent_module()
    slots = source_parent._module_state.slots if source_parent is not None else {}
    levels = next((k for k, (_, s) in slots.items() if s is source._module_state), state.local)
    child_ref = weakref.ref(child)
    state.parent = weakref.ref(parent, lambda _: _keep_orphan(child_ref))
    parent._module_state.slots[levels] = (child_ref, state)
    naming_epoch[0] += 1


def detach_copy(child):
    """A copy whose source's parent was not copied: the module that holds it adopts it."""
    child._module_state.local = ()
    naming_epoch[0] += 1
