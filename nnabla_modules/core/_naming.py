"""The naming rules, stated once.

A module's *local name* is, in this order:

1. the ``name=`` it was given (``""`` adds no level of its own);
2. else the attribute path under which its parent first holds it: ``conv0``
   for ``self.conv0``, ``blocks/0`` for the first item of a list or tuple held
   as ``self.blocks``, ``blocks/0/1`` nested, ``heads/cls`` for a dict key;
3. else, for a root, its class name in snake_case (``ResUnit`` -> ``res_unit``),
   made unique among live roots of the same scope with ``_1``, ``_2``, ...

Its *prefix* is its parent's prefix joined with its local name by ``/``; a
root's prefix is the NNabla parameter scope active when it was constructed,
joined with its local name.
"""

import inspect
import re
import weakref

import nnabla.parameter as _parameter

from . import _registry
from ._state import ModuleState

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_case(class_name):
    """``ResUnit`` -> ``res_unit``, ``LSTMCell`` -> ``lstm_cell``, ``Conv2d`` -> ``conv2d``."""
    return _CAMEL_BOUNDARY.sub("_", class_name).lower()


def check_name(name, what, key=False):
    """Validates a given name or (``key=True``) a container key; returns it as a string.

    A name may be ``""`` (no level of its own); a key may not: it is one level.
    """
    if not isinstance(name, str):
        raise TypeError(f"{what}: a module name must be a str, got {type(name).__name__}")
    if key and not name:
        raise ValueError(f"{what}: the key '' cannot name a module; give it a non-empty key")
    if "/" in name:
        raise ValueError(
            f"{what}: the name {name!r} contains '/'. A name is one level of the "
            "parameter scope; nest modules (or parameter scopes) to add levels."
        )
    return name


def join(path):
    return "/".join(path)


def without_module_marks(key):
    """``@conv1/conv/W`` (NNabla ``nn.Module`` files) -> ``conv1/conv/W``."""
    if "@" not in key:
        return key
    return "/".join(level[1:] if level.startswith("@") else level for level in key.split("/"))


class RootNames:
    """Prefixes held by live modules that no live parent holds, for unique automatic names.

    Holders are the roots and the *kept* submodules whose root is gone
    (``enc = Net().encoder``): they keep their prefix and their weights. An
    auto-named root takes the first of ``base``, ``base_1``, ``base_2``, ...
    that no holder has at or below it in its scope. A module that becomes a
    child gives its prefix back; a dead module's prefix is freed with it.
    """

    def __init__(self):
        self._holders = {}  # prefix tuple -> {id(module): weak reference}
        # (scope path, base) -> the lowest index that may be free: constructing
        # n layers before they are adopted costs O(n), not O(n^2) name checks.
        self._lowest_free = {}
        self._allocated = {}  # prefix tuple -> (scope path, base, index)
        self._below = {}  # prefix tuple -> set of held prefixes strictly below it
        self._blocked = {}  # automatic names skipped for kept submodules: as _allocated

    def taken(self, prefix):
        """True when a live holder has ``prefix`` or a prefix below it."""
        return self.held(prefix) or any(self.held(p) for p in self._below.get(prefix, ()))

    def held(self, prefix):
        """True when a live holder has exactly ``prefix``."""
        # A dying module's reference is dead before its callback removes it.
        return any(ref() is not None for ref in self._holders.get(prefix, {}).values())

    def allocate(self, scope_path, base):
        index = self._lowest_free.get((scope_path, base), 0)
        while self.taken(scope_path + (_indexed(base, index),)):
            candidate = scope_path + (_indexed(base, index),)
            if not self.held(candidate):  # only kept submodules below it: free again later
                self._blocked[candidate] = (scope_path, base, index)
            index += 1
        self._lowest_free[(scope_path, base)] = index + 1
        name = _indexed(base, index)
        self._allocated[scope_path + (name,)] = (scope_path, base, index)
        return name

    def hold(self, prefix, module):
        key = id(module)
        self._holders.setdefault(prefix, {})[key] = weakref.ref(
            module, lambda _, prefix=prefix, key=key: self._drop(prefix, key)
        )
        for depth in range(1, len(prefix)):
            self._below.setdefault(prefix[:depth], set()).add(prefix)

    def live(self):
        """Every live root module."""
        refs = [ref for holders in list(self._holders.values()) for ref in list(holders.values())]
        return [module for module in (ref() for ref in refs) if module is not None]

    def release(self, prefix, module):
        self._drop(prefix, id(module))

    def _drop(self, prefix, key):
        holders = self._holders.get(prefix)
        if holders is None or holders.pop(key, None) is None:
            return
        if not holders:
            del self._holders[prefix]
            for depth in range(1, len(prefix)):
                below = self._below.get(prefix[:depth])
                if below is not None:
                    below.discard(prefix)
                    if not below:
                        del self._below[prefix[:depth]]
            self._free(self._allocated.pop(prefix, None))
            for depth in range(1, len(prefix)):
                if prefix[:depth] in self._blocked and not self.taken(prefix[:depth]):
                    self._free(self._blocked.pop(prefix[:depth]))

    def _free(self, allocated):
        """An automatic name is free again: the next allocation may take it."""
        if allocated is not None:
            scope_path, base, index = allocated
            hint = self._lowest_free.get((scope_path, base), 0)
            self._lowest_free[(scope_path, base)] = min(hint, index)


def _indexed(base, index):
    return f"{base}_{index}" if index else base


root_names = RootNames()


# --- the code that gives modules their names -----------------------------------

#: Bumped whenever a module is named, renamed or adopted; prefix caches compare it.
naming_epoch = [0]


def prefix_of(module):
    state = module._module_state
    if state.prefix_epoch != naming_epoch[0]:
        parent = state.parent_module()
        if parent is not None:
            state.prefix = prefix_of(parent) + state.local
        else:  # a root; or the parent died, and its children keep the prefix they had
            state.prefix = prefix_of_state(state)
        state.prefix_epoch = naming_epoch[0]
    return state.prefix


def prefix_of_state(state):
    """The prefix from the states alone: what it was when the ancestors were last alive."""
    if state.parent_state is None:
        return state.construction_path + state.local
    return prefix_of_state(state.parent_state) + state.local


def describe(module):
    """``Conv2d 'res_unit/conv0'``: how errors name a module."""
    prefix = join(prefix_of(module))
    where = f"'{prefix}'" if prefix else "at the registry root"
    return f"{type(module).__name__} {where}"


def init_state(module, name):
    cls = type(module)
    if name is not None:
        check_name(name, f"{cls.__name__}(name={name!r})")
    path = construction_path(cls.__name__)
    state = ModuleState(name, path)
    state.built_in_call = _registry.running.in_call()
    object.__setattr__(module, "_module_state", state)
    object.__setattr__(module, "training", True)
    hold_root_name(module)


def construction_path(what):
    scope = _parameter.current_scope
    active = _registry.running.active
    if active and active[-1]._module_state.scope is scope:
        return prefix_of(active[-1])
    path = _registry.path_of(scope)
    if path is None:
        raise RuntimeError(f"{what}: {_registry.OUTSIDE_REGISTRY}; construct modules outside it.")
    return path


def hold_root_name(module):
    state = module._module_state
    if state.given_name is None:
        base = snake_case(type(module).__name__)
        state.local = (root_names.allocate(state.construction_path, base),)
    else:
        state.local = (state.given_name,) if state.given_name else ()
    root_names.hold(state.construction_path + state.local, module)
    if state.given_name is None and state.finalizer is None:
        state.finalizer = weakref.finalize(module, forget_auto_named_root, state)
        state.finalizer.atexit = False
    naming_epoch[0] += 1


def forget_auto_named_root(state):
    """Registry hygiene, at the death of an auto-named root: its entries become stale.

    They stay visible (``y = Model()(x)`` still leaves its weights in the
    registry, as PF code does) until a new auto-named root takes the same
    automatic name and first uses it: then they are dropped, so the new model
    starts from fresh weights and a model rebuilt in a loop or a notebook keeps
    the registry bounded. Code that reaches them by name before that
    (``nn.load_parameters``, PF code) makes them ordinary entries, which the
    new root shares by name.
    """
    prefix = state.construction_path + state.local
    if state.scope is not None and prefix and not root_names.held(prefix):
        _registry.mark_stale(prefix, state.scope)


def drop_stale_entries(module):
    """Drops what a dead auto-named root left under the prefix this module's root now uses."""
    root = module
    while root._module_state.parent_module() is not None:
        root = root._module_state.parent_module()
    state = root._module_state
    if state.finalizer is None or state.parent is not None:
        return  # given names share by name, as PF code does; orphaned children keep theirs
    prefix = prefix_of(root)
    scope = _registry.unmark_stale(prefix)
    parent = _registry.resolve(prefix[:-1], create=False) if scope is not None else None
    if parent is not None and parent.get(prefix[-1]) is scope:
        del parent[prefix[-1]]
    state.remember_scope(_registry.resolve(prefix))


def stop_forgetting(state):
    if state.finalizer is not None:
        state.finalizer.detach()
        state.finalizer = None


def name_root(module, given_name, local):
    """Names a root made without the metaclass (a copy): ``local`` in its construction scope.

    ``given_name`` None: an automatic name, whose entries go stale when the
    module dies, as every auto-named root's.
    """
    state = module._module_state
    state.given_name = given_name
    state.local = (local,) if local else ()
    if given_name is None:
        state.finalizer = weakref.finalize(module, forget_auto_named_root, state)
        state.finalizer.atexit = False
    root_names.hold(state.construction_path + state.local, module)
    naming_epoch[0] += 1


# --- name= at construction -------------------------------------------------------------


def with_name_parameter(signature):
    """``signature`` with a keyword-only ``name=None``, which every module accepts."""
    params = list(signature.parameters.values())
    if "name" in signature.parameters:
        return signature
    name = inspect.Parameter("name", inspect.Parameter.KEYWORD_ONLY, default=None)
    at = len(params) - bool(params and params[-1].kind is inspect.Parameter.VAR_KEYWORD)
    return signature.replace(parameters=params[:at] + [name] + params[at:])


# Weak: classes made in a loop can still go.
_takes_name: "weakref.WeakKeyDictionary[type, bool]" = weakref.WeakKeyDictionary()


def init_takes_name(cls):
    """Whether ``cls.__init__`` declares ``name`` (it then receives the name given)."""
    takes = _takes_name.get(cls)
    if takes is None:
        try:
            takes = "name" in inspect.signature(cls.__init__).parameters
        except (TypeError, ValueError):
            takes = False
        _takes_name[cls] = takes
    return takes


def positional_name(cls, args):
    """The name an ``__init__(self, ..., name=None)`` receives positionally, or None."""
    try:
        return inspect.signature(cls.__init__).bind_partial(None, *args).arguments.get("name")
    except TypeError:
        return None
