"""Direct access to NNabla's parameter registry.

NNabla keeps parameters in one tree of ``OrderedDict`` scopes rooted at
``nnabla.parameter.root_scope``; ``nn.parameter_scope(name)`` always enters a
scope *relative* to the current one (a leading ``/`` is stripped, not
absolute). Modules need absolute scopes, so they set
``nnabla.parameter.current_scope`` themselves, creating the intermediate
scopes exactly as ``nn.parameter_scope`` does (an empty ``OrderedDict`` stored
under the name).
"""

import sys
from collections import OrderedDict
from typing import Any, List

import nnabla as nn
import nnabla.parameter as _parameter
import nnabla.parametric_functions as _PF

from ._running import lock, running  # noqa: F401  (the calls' lock and state, used from here)

#: Why a module cannot run in the active scope: its weights would be nobody's.
OUTSIDE_REGISTRY = (
    "the active NNabla parameter scope is not part of NNabla's parameter registry: "
    "it is an NNabla nn.Module's own (nnabla.core.module keeps its parameters in the "
    "object, so they would be invisible to that nn.Module's get_parameters and saves), "
    "a custom nn.parameter_scope(..., scope=dict), or one removed by nn.clear_parameters()"
)


def root_scope():
    return _parameter.root_scope


class ScopeClash(ValueError):
    """A parameter sits where a scope of the same name is needed."""


def child_scope(scope, name):
    """Returns ``scope[name]``, creating it as ``nn.parameter_scope`` would."""
    child = scope.get(name)
    if child is None:
        child = scope[name] = OrderedDict()
    elif not isinstance(child, dict):
        raise ScopeClash(f"the registry holds a parameter named {name!r} where a scope is needed")
    return child


def resolve(path, create=True):
    """The scope dict at the absolute ``path`` (a tuple of names), or None."""
    scope = _parameter.root_scope
    for name in path:
        if create:
            scope = child_scope(scope, name)
        else:
            scope = scope.get(name)
            if not isinstance(scope, dict):
                return None
    return scope


_path_cache = {}


def path_of(scope):
    """The absolute path of a scope dict reachable from the registry root.

    Returns None for a dict that is not in the registry (a custom ``scope=``
    given to ``nn.parameter_scope``, or one detached by ``clear_parameters``).
    """
    root = _parameter.root_scope
    if scope is root:
        return ()
    cached = _path_cache.get(id(scope))
    if cached is not None and cached[0] is scope and resolve(cached[1], create=False) is scope:
        return cached[1]
    found = find_subscope(root, scope)
    if found is not None:
        if len(_path_cache) > 4096:
            _path_cache.clear()
        _path_cache[id(scope)] = (scope, found)
    return found


def find_subscope(base, target):
    """The path from ``base`` down to the dict ``target`` (depth first), or None."""
    stack = [(base, ())]
    while stack:
        scope, path = stack.pop()
        for name, value in scope.items():
            if isinstance(value, dict):
                if value is target:
                    return path + (name,)
                stack.append((value, path + (name,)))
    return None


def lookup(scope, key):
    """The registry entry at the relative ``key`` ('a/b/W') below ``scope``, or None."""
    for name in key.split("/"):
        if not isinstance(scope, dict):
            return None
        scope = scope.get(name)
    return scope


def iter_claimed(scope, trie, prefix=""):
    """Yields ``(key, Variable)`` for the leaves of ``scope`` that ``trie`` names.

    Registry order, pruned to the claimed branches: a drop-in module at the
    registry root walks only what it owns, not the whole registry.
    """
    for name, value in scope.items():
        sub = trie.get(name)
        if sub is None:
            continue
        key = prefix + name
        if isinstance(value, dict):
            if sub is not LEAF:
                yield from iter_claimed(value, sub, key + "/")
        elif sub is LEAF:
            yield key, value


def collect_claimed(scope, trie, found, grad_only, prefix=""):
    """Adds the claimed entries of ``scope`` to the dict ``found`` under ``prefix + key``,
    in the trie's order (the tree's, see ``make_trie``).

    Skips those with ``need_grad`` False when ``grad_only``; returns how many
    claimed entries exist, skipped ones included. Builds no pair per entry.
    """
    count = 0
    for name, sub in trie.items():  # the trie's order: the tree's
        value = scope.get(name)
        if value is None:
            continue
        if isinstance(value, dict):
            if sub is not LEAF:
                count += collect_claimed(value, sub, found, grad_only, prefix + name + "/")
        elif sub is LEAF:
            count += 1
            if not grad_only or value.need_grad:
                found[prefix + name] = value
    return count


LEAF = object()


def remove(scope, key):
    """Deletes ``scope[key]`` ('a/b/W') and the scopes that this leaves empty; returns it."""
    *levels, leaf = key.split("/")
    path = [scope]
    for name in levels:
        path.append(path[-1].get(name))
        if not isinstance(path[-1], dict):
            return
    removed = path[-1].pop(leaf, None)
    for parent, name, child in zip(reversed(path[:-1]), reversed(levels), reversed(path[1:])):
        if child:
            break
        del parent[name]
    return removed


def unowned(scope, owned, prefix=""):
    """The maximal scopes (``'a/'``) and keys under ``scope`` not in ``owned``."""
    found, whole = [], True
    for name, value in scope.items():
        key = prefix + name
        if isinstance(value, dict):
            inner, inner_whole = unowned(value, owned, key + "/")
            if inner_whole and value:
                found.append(key + "/")
            else:
                found.extend(inner)
                whole = whole and inner_whole
        elif key in owned:
            whole = False
        else:
            found.append(key)
    return found, whole


def make_trie(keys):
    """The nested dict of ``keys`` ('a/b/W'), leaves ``LEAF``; equal subtrees are one dict.

    Its order is the order of ``keys`` (the tree's), which listing follows.

    Sharing them keeps the trie of 10,000 alike layers as small as one layer's,
    so walking it touches little memory (it is never modified once made).
    """
    trie = {}
    for key in keys:
        *scopes, leaf = key.split("/")
        node = trie
        for name in scopes:
            nxt = node.get(name)
            if nxt is None or nxt is LEAF:
                nxt = node[name] = {}
            node = nxt
        node.setdefault(leaf, LEAF)
    return _share_subtrees(trie, {})


def _share_subtrees(node, shared):
    for name, sub in node.items():
        if sub is not LEAF:
            node[name] = _share_subtrees(sub, shared)
    signature = tuple((name, id(sub)) for name, sub in node.items())  # order matters
    return shared.setdefault(signature, node)


# --- ownership, observed at the registry ---------------------------------------
#
# A module owns the registry entries that its code creates or reads during its
# calls. Every way code reaches the registry goes through two module-level
# functions of ``nnabla.parameter``: ``get_parameter`` and ``set_parameter``.
# ``get_parameter_or_create`` looks both up in that module's namespace at call
# time, so code that imported it by name (``from nnabla.parameter import
# get_parameter_or_create``, as PF and many user parametric functions do) goes
# through them too. They are replaced once, at import, by versions that behave
# exactly as NNabla's and, while a module call runs in the calling thread, also
# tell the innermost running module (see ``observe`` in module.py). PF imported
# ``get_parameter`` by name, so its copy is replaced as well.

_original_get_parameter = _parameter.get_parameter
_original_set_parameter = _parameter.set_parameter
_GET_OR_CREATE_CODE = _parameter.get_parameter_or_create.__code__

#: ``observe(name, param, is_set, pf_use)``, set by module.py: records an entry
#: of the current scope for the innermost running module. ``pf_use``: the event
#: is one request of ``get_parameter_or_create`` (a read, or the creation).
observer: List[Any] = [None]

#: id(dict) -> (dict, weakref to the module) of the registry dicts where a module's
#: calls created or used its entries: an entry created there outside module calls
#: (NNabla's graph converters' folded weights) is that module's too.
beside = {}
#: ``claim_beside(module, scope, name, param)``, set by _calls.py.
beside_observer: List[Any] = [None]

#: prefix -> scope dict left by a dead auto-named root, dropped when the name is reused.
stale = {}
#: id of a dict below a stale scope -> that prefix (see ``keep_stale``).
_stale_dicts = {}


def mark_stale(prefix, scope):
    """The entries of a dead auto-named root: dropped when a new root reuses the name."""
    unmark_stale(prefix)
    stale[prefix] = scope
    for below in _dicts_below(scope):
        _stale_dicts[id(below)] = prefix


def unmark_stale(prefix):
    """Stops tracking ``prefix``'s stale entries; returns their scope dict, or None."""
    scope = stale.pop(prefix, None)
    for below in _dicts_below(scope) if scope is not None else ():
        if _stale_dicts.get(id(below)) == prefix:
            del _stale_dicts[id(below)]
    return scope


def _keep_stale(scope):
    """Code reached stale entries by name outside a module call: they are its now.

    ``nn.load_parameters`` then a new auto-named model (NNabla's load-then-build
    idiom), or PF code using the names: the entries stay, and a new root that
    takes the name shares them by name, as PF code does.
    """
    prefix = _stale_dicts.get(id(scope))
    root = stale.get(prefix) if prefix is not None else None
    if root is not None and any(below is scope for below in _dicts_below(root)):
        unmark_stale(prefix)


def _dicts_below(scope):
    stack = [scope]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(value for value in current.values() if isinstance(value, dict))

#: id -> (dict, parent dict, name) of registry dicts a layer created before its first
#: call (``get_parameters()``, a load, ``freeze()``), in the tree's order; see ``place``.
unplaced = {}


def dicts_at(path):
    """The ids of the dicts on the absolute ``path`` and below its end: what exists now."""
    found, scope = set(), _parameter.root_scope
    for name in path:
        scope = scope.get(name)
        if not isinstance(scope, dict):
            return found
        found.add(id(scope))
    found.update(id(below) for below in _dicts_below(scope))
    return found


def mark_unplaced(path, existed, own_level):
    """Records the dicts on ``path`` and below it that are not in ``existed`` (ids).

    Returns ``(above, own)``, parents first: the new dicts above the layer's
    own (``own_level``: the last of ``path`` is the layer's), and its own top
    ones.
    """
    above, own, parent = [], [], _parameter.root_scope
    for index, name in enumerate(path):
        scope = parent.get(name)
        if not isinstance(scope, dict):
            return above, own
        if id(scope) not in existed:
            mine = own_level and index == len(path) - 1
            (own if mine else above).append((scope, parent, name))
        parent = scope
    if not own_level:  # a name="" layer: its top dicts sit in its parent's (PF's "affine")
        own.extend((value, parent, name) for name, value in parent.items()
                   if isinstance(value, dict) and id(value) not in existed)
    # Dicts deeper inside the layer keep the order its PF call gives them, either way.
    for entry in above + own:
        unplaced[id(entry[0])] = entry
    return above, own


def move_to_the_end(above, own):
    """Moves a layer's dicts (and those above them that no call placed) where they would
    be if they were created now, parents first; False if a call placed its own."""
    if any(unplaced.get(id(scope)) is None for scope, _, _ in own):
        return False
    for scope, parent, name in above + own:
        if unplaced.get(id(scope)) is not None and parent.get(name) is scope:
            parent.move_to_end(name)
    return True


def place(scope):
    """A call enters (or first uses) ``scope``: if a layer created it before its first
    call, it moves to the end of its parent, where a call would have created it.

    So the registry's order, which ``get_parameters`` follows, is the order of
    the first calls whatever was created before them: the same on a process
    that loaded a file before its first call as on one that did not.
    """
    entry = unplaced.pop(id(scope), None)
    if entry is not None and entry[0] is scope:
        _, parent, name = entry
        place(parent)  # created before it: placed first
        if parent.get(name) is scope:
            parent.move_to_end(name)


#: The scope names of NNabla's parametric functions (``affine``, ``conv``, ``bn``...).
PF_SCOPE_NAMES = frozenset(
    getattr(_PF, name).__scope_name__
    for name in dir(_PF)
    if hasattr(getattr(_PF, name), "__parametric_function_api_base__")
)


def in_module_call():
    return running.in_call()


def _observed_get_parameter(key):
    if "/" in key:
        return _original_get_parameter(key)  # recurses into this function per level
    scope = _parameter.current_scope
    param = scope.get(key)
    if running.in_call():
        if unplaced and not running.creating_early:
            place(scope)
        if param is not None:
            assert isinstance(param, nn.Variable)
            observer[0](key, param, False, sys._getframe(1).f_code is _GET_OR_CREATE_CODE)
    elif _stale_dicts:
        _keep_stale(scope)
    return param


def _observed_set_parameter(key, param):
    if "/" in key:
        return _original_set_parameter(key, param)  # recurses into this function per level
    scope = _parameter.current_scope
    created = key not in scope
    scope[key] = param
    if running.in_call():
        if unplaced and not running.creating_early:
            place(scope)
        if isinstance(param, nn.Variable):
            pf_use = created and sys._getframe(1).f_code is _GET_OR_CREATE_CODE
            observer[0](key, param, True, pf_use)
        return
    if created and isinstance(param, nn.Variable):
        hit = beside.get(id(scope))
        module = hit[1]() if hit is not None and hit[0] is scope else None
        if module is not None:
            beside_observer[0](module, scope, key, param)
    if _stale_dicts:
        _keep_stale(scope)


def _install_observers():
    for namespace in (_parameter, _PF, nn):
        if getattr(namespace, "get_parameter", None) is _original_get_parameter:
            namespace.get_parameter = _observed_get_parameter
        if getattr(namespace, "set_parameter", None) is _original_set_parameter:
            namespace.set_parameter = _observed_set_parameter


_install_observers()


def observers_installed():
    """Whether ``nnabla.parameter`` still calls this module's observers (nobody replaced them)."""
    return (
        _parameter.get_parameter is _observed_get_parameter
        and _parameter.set_parameter is _observed_set_parameter
    )


def is_variable(value):
    return isinstance(value, nn.Variable)
