"""The ``Module`` base class: an object that owns a parameter-scope prefix.

Calling a module enters ``nn.parameter_scope(prefix)`` at an absolute path and
runs the module's code there, so everything NNabla's parametric functions
create lands in NNabla's own registry under the prefix. The naming rules live
in :mod:`nnabla_modules._naming`; registry access in
:mod:`nnabla_modules._registry`.
"""

import functools
import inspect
import sys
import threading
import warnings
import weakref
from collections import OrderedDict

import nnabla.parameter as _parameter
import numpy as np

from . import _registry
from ._naming import check_name, join, root_names, snake_case

_NOT_GIVEN = object()
#: Bumped whenever a module is named, renamed or adopted; prefix caches compare it.
_naming_epoch = [0]


class _State:
    """Bookkeeping of one module, kept apart from the user's attributes."""

    __slots__ = (
        "given_name",  # the name= given (None: automatic)
        "parent",  # weakref to the module that first held this one; None: a root
        "local",  # tuple: local name as scope levels (() for name="")
        "construction_path",  # tuple: NNabla scope active at construction
        "claims",  # OrderedDict relative key -> need_grad its code asked for
        "scope",  # the registry dict entered by the last call
        "relpaths",  # id(dict) -> (dict, "relative/path/") below ``scope``
        "frozen",
        "prefix",
        "prefix_epoch",
        "call_keys",  # key -> user, for the running call (None: not checked)
        "warned_keys",
        "built_in_call",  # constructed while another module's call was running
        "finalizer",  # marks an auto-named root's registry entries stale when it dies
        "children",  # cached children of a module whose children cannot grow unseen
        "slots",  # attribute path -> (weakref, _State) of the child adopted there
        "pending",  # a load whose keys are checked when the next call ends (checkpoint.py)
        "provisional",  # key -> need_grad: loaded entries credited until that check
        "retired",  # why this module may not run: it was replaced in its parent
    )

    def __init__(self, given_name, construction_path):
        self.given_name = given_name
        self.parent = None
        self.local = ()
        self.construction_path = construction_path
        self.claims = OrderedDict()
        self.scope = None
        self.relpaths = {}
        self.frozen = False
        self.prefix = None
        self.prefix_epoch = -1
        self.call_keys = None
        self.warned_keys = ()
        self.built_in_call = False
        self.finalizer = None
        self.children = None
        self.slots = {}
        self.pending = None
        self.provisional = OrderedDict()
        self.retired = None

    def parent_module(self):
        return self.parent() if self.parent is not None else None

    def owned(self):
        """The relative keys this module owns: its code's, and those loaded before its call."""
        if not self.provisional:
            return self.claims.keys()
        return list(self.claims) + [key for key in self.provisional if key not in self.claims]

    def requested_need_grad(self, key):
        """The ``need_grad`` the module's code (or the loaded file) asked for ``key``."""
        if key in self.claims:
            return self.claims[key]
        return self.provisional[key]

    def relative_key(self, scope, name):
        """``name`` in the registry dict ``scope`` as a key relative to this module, or None."""
        if scope is self.scope:
            return name
        hit = self.relpaths.get(id(scope))
        if hit is None or hit[0] is not scope:
            path = _registry.find_subscope(self.scope, scope) if self.scope is not None else None
            if path is None:
                return None  # not under this module's prefix: not its entry
            hit = self.relpaths[id(scope)] = (scope, join(path) + "/")
        return hit[1] + name


def _observe(name, param, is_set, pf_use):
    """Records that the running module's code reached ``name`` in the current scope.

    Called by the registry observers (see _registry.py) for every
    ``get_parameter``/``set_parameter`` made while a module call runs in this
    thread, however the code reached them. The innermost running module owns
    the entry; a module built and called inside another's call without being
    held also credits the module that runs it, so its weights are the caller's
    too (enumerated, saved, frozen).
    """
    active = _registry.active
    scope = _parameter.current_scope
    depth = len(active) - 1
    while depth >= 0:
        module = active[depth]
        state = module._module_state
        key = state.relative_key(scope, name)
        if key is None:
            return
        claims = state.claims
        if is_set or key not in claims:
            # The flag the code asked for: a frozen module restores it on unfreeze.
            claims[key] = param.need_grad
        if param.need_grad and (state.frozen or id(param) in _frozen_entries):
            # Frozen holds whatever the code asks for, also when a module that
            # shares the entry by name and is not frozen uses it.
            param.need_grad = False
        if pf_use and (state.call_keys is not None or not state.local):
            _check_shared_use(active, depth, key)
        if state.parent is not None or not state.built_in_call:
            return
        depth -= 1  # a temporary module: its caller owns the entry too


def _check_shared_use(active, depth, key):
    """Warns when two unnamed PF calls or ``name=""`` layers in one call share ``key``."""
    module = active[depth]
    state = module._module_state
    user = None  # the module's own PF code: every PF call is a new user
    if state.call_keys is None:
        # A name="" layer shares its parent's scope: the parent's call checks it.
        if state.local or depth == 0 or state.parent_module() is not active[depth - 1]:
            return
        user, module = id(module), active[depth - 1]
        state = module._module_state
        if state.call_keys is None:
            return
    users = state.call_keys
    if key not in users:
        users[key] = user
        return
    if user is not None and users[key] == user:
        return  # one layer used twice: sharing on purpose
    scope, _, leaf = key.partition("/")
    if "/" in leaf or scope not in _registry.PF_SCOPE_NAMES or scope in state.warned_keys:
        return
    state.warned_keys = {*state.warned_keys, scope}
    warnings.warn(
        f"{describe(module)}: two unnamed PF calls or name=\"\" layers in one call both use "
        f"the scope '{scope}/', so they share one set of weights (PF's rule). Give each "
        "its own name= to keep them apart, or the same name= to share on purpose.",
        SharedParameterWarning,
        stacklevel=_user_stacklevel(),
    )


class SharedParameterWarning(UserWarning):
    """Two unnamed PF calls or ``name=""`` layers of one kind in one call share their weights."""


class ModuleMeta(type):
    """Lets subclasses skip ``super().__init__()``, take ``name=``, override ``__call__``."""

    def __new__(mcls, cls_name, bases, namespace, **kwargs):
        call = namespace.get("__call__")
        if call is not None and not getattr(call, "_enters_scope", False):
            namespace["__call__"] = _entering_scope(call)
        return super().__new__(mcls, cls_name, bases, namespace, **kwargs)

    @property
    def __signature__(cls):
        """The constructor's signature as users call it: ``__init__``'s, plus ``name=``."""
        try:
            init = inspect.signature(cls.__init__)
        except (TypeError, ValueError):
            return None
        return with_name_parameter(init.replace(parameters=list(init.parameters.values())[1:]))

    def __call__(cls, /, *args, name=_NOT_GIVEN, **kwargs):  # "/": a "cls" keyword is the init's
        if cls.__new__ is object.__new__:
            module = object.__new__(cls)
        else:
            module = cls.__new__(cls, *args, **kwargs)
        takes_name = _init_takes_name(cls)
        if takes_name and name is _NOT_GIVEN:  # maybe given positionally
            name = _positional_name(cls, args)
        elif takes_name:
            kwargs["name"] = name
        # One thread at a time: another thread's module call changes NNabla's
        # current scope, and adoption renames modules that calls may be using.
        with _registry.lock:
            _init_state(module, None if name is _NOT_GIVEN else name)
            _constructing.append(module)
            try:
                module.__init__(*args, **kwargs)
            finally:
                _constructing.pop()
            _adopt_attributes(module)
        return module


def with_name_parameter(signature):
    """``signature`` with a keyword-only ``name=None``, which every module accepts."""
    params = list(signature.parameters.values())
    if "name" in signature.parameters:
        return signature
    name = inspect.Parameter("name", inspect.Parameter.KEYWORD_ONLY, default=None)
    at = len(params) - bool(params and params[-1].kind is inspect.Parameter.VAR_KEYWORD)
    return signature.replace(parameters=params[:at] + [name] + params[at:])


#: Modules whose ``__init__`` is running: a module built inside one may refer back
#: to it (``Child(owner=self)``) but never adopts it.
_constructing = []


_takes_name = weakref.WeakKeyDictionary()  # weak: classes made in a loop can still go


def _init_takes_name(cls):
    takes = _takes_name.get(cls)
    if takes is None:
        try:
            takes = "name" in inspect.signature(cls.__init__).parameters
        except (TypeError, ValueError):
            takes = False
        _takes_name[cls] = takes
    return takes


def _positional_name(cls, args):
    """The name an ``__init__(self, ..., name=None)`` receives positionally, or None."""
    try:
        return inspect.signature(cls.__init__).bind_partial(None, *args).arguments.get("name")
    except TypeError:
        return None


def _init_state(module, name):
    cls = type(module)
    if name is not None:
        check_name(name, f"{cls.__name__}(name={name!r})")
    path = _construction_path(cls.__name__)
    state = _State(name, path)
    state.built_in_call = bool(_registry.active) and _registry.owner[0] == threading.get_ident()
    object.__setattr__(module, "_module_state", state)
    object.__setattr__(module, "training", True)
    _hold_root_name(module)


def _construction_path(what):
    scope = _parameter.current_scope
    active = _registry.active
    if active and active[-1]._module_state.scope is scope:
        return _prefix(active[-1])
    path = _registry.path_of(scope)
    if path is None:
        raise RuntimeError(f"{what}: {_OUTSIDE_REGISTRY}; construct modules outside it.")
    return path


#: Why a module cannot run in the active scope: its weights would be nobody's.
_OUTSIDE_REGISTRY = (
    "the active NNabla parameter scope is not part of NNabla's parameter registry: "
    "it is an NNabla nn.Module's own (nnabla.core.module keeps its parameters in the "
    "object, so they would be invisible to that nn.Module's get_parameters and saves), "
    "a custom nn.parameter_scope(..., scope=dict), or one removed by nn.clear_parameters()"
)


def _hold_root_name(module):
    state = module._module_state
    if state.given_name is None:
        base = snake_case(type(module).__name__)
        state.local = (root_names.allocate(state.construction_path, base),)
    else:
        state.local = (state.given_name,) if state.given_name else ()
    root_names.hold(state.construction_path + state.local, module)
    if state.given_name is None and state.finalizer is None:
        state.finalizer = weakref.finalize(module, _forget_auto_named_root, state)
        state.finalizer.atexit = False
    _naming_epoch[0] += 1


def _forget_auto_named_root(state):
    """Registry hygiene, at the death of an auto-named root: its entries become stale.

    They stay visible (``y = Model()(x)`` still leaves its weights in the
    registry, as PF code does) until a new auto-named root takes the same
    automatic name and first uses it: then they are dropped, so the new model
    starts from fresh weights and a model rebuilt in a loop or a notebook keeps
    the registry bounded.
    """
    prefix = state.construction_path + state.local
    if state.scope is not None and prefix and not root_names.held(prefix):
        _registry.stale[prefix] = state.scope


def _drop_stale_entries(module):
    """Drops what a dead auto-named root left under the prefix this module's root now uses."""
    root = module
    while root._module_state.parent_module() is not None:
        root = root._module_state.parent_module()
    state = root._module_state
    if state.finalizer is None or state.parent is not None:
        return  # given names share by name, as PF code does; orphaned children keep theirs
    prefix = _prefix(root)
    scope = _registry.stale.pop(prefix, None)
    parent = _registry.resolve(prefix[:-1], create=False) if scope is not None else None
    if parent is not None and parent.get(prefix[-1]) is scope:
        del parent[prefix[-1]]
    _remember_scope(state, _registry.resolve(prefix))


def _stop_forgetting(state):
    if state.finalizer is not None:
        state.finalizer.detach()
        state.finalizer = None


def _entering_scope(call):
    @functools.wraps(call)
    def entering_scope(self, *args, **kwargs):
        return _run_in_scope(self, call, args, kwargs)

    entering_scope._enters_scope = True
    return entering_scope


def _run_in_scope(module, fn, args, kwargs):
    """Calls ``fn(module, ...)`` with NNabla's current scope set to the module's prefix.

    This runs on every module call, so it is written for speed: the common case
    (a child called from its parent's call) costs a few dict lookups. While it
    runs, the module is the innermost of ``_registry.active``: what its code
    reaches in the registry is recorded by :func:`_observe`.
    """
    lock = _registry.lock
    lock.acquire()
    try:
        active = _registry.active
        state = module._module_state
        caller = active[-1] if active else None
        if caller is module:  # super().__call__ chains
            return fn(module, *args, **kwargs)
        parent = state.parent
        if parent is not None and state.local == _SAME_LEVEL and parent() is caller:
            scope = caller._module_state.scope  # name="" inside its parent's call
            if scope is not state.scope:
                _remember_scope(state, scope)
        else:
            scope = _enter_scope(module, caller)
        previous = _parameter.current_scope
        previous_no_grad = _parameter.current_no_grad
        frozen_no_grad = _frozen_no_grad[0]
        if caller is None:
            _registry.owner[0] = threading.get_ident()
        # A frozen module's PF calls return its weights with need_grad=False (what
        # nn.no_grad() does), so graphs built from it leave them alone; a frozen
        # caller's setting does not pass to an unfrozen child, the user's does.
        users_no_grad = previous_no_grad and not frozen_no_grad
        _parameter.current_no_grad = users_no_grad or state.frozen
        _frozen_no_grad[0] = state.frozen and not users_no_grad
        active.append(module)
        _parameter.current_scope = scope
        outer_call_keys = state.call_keys
        if module._checks_shared_pf_calls:
            state.call_keys = {}
        try:
            result = fn(module, *args, **kwargs)
        finally:
            state.call_keys = outer_call_keys
            _parameter.current_scope = previous
            _parameter.current_no_grad = previous_no_grad
            _frozen_no_grad[0] = frozen_no_grad
            active.pop()
            if caller is None:
                _registry.owner[0] = None
        if state.pending is not None:
            state.pending.verify(module)  # a load's keys, checked at the first call
        return result
    finally:
        lock.release()


#: True while NNabla's ``current_no_grad`` was set by a frozen module, not the user.
_frozen_no_grad = [False]
#: id -> registry Variable of every entry a frozen module owns (see ``freeze``).
_frozen_entries = {}


_SAME_LEVEL = ()  # the local name of a module given name=""


def _temporary_module_error(module, caller):
    return RuntimeError(
        f"{describe(module)} was constructed during a call of {describe(caller)} and is "
        "not held by it, so every call would create a new set of weights. Construct it "
        "in __init__, hold it (self.layer = ...), or give it name= to reuse one set of "
        "weights by name on every call."
    )


def _adopt_from_callers(module):
    for caller in reversed(_registry.active):
        _adopt_attributes(caller)
        if module._module_state.parent is not None:
            return


def _enter_scope(module, caller):
    """The registry dict of the module's prefix, created as ``nn.parameter_scope`` would."""
    state = module._module_state
    parent = state.parent
    try:
        if parent is not None and parent() is caller:
            # Inside the parent's call its scope is at hand: no walk from the root.
            scope = caller._module_state.scope
            for level in state.local:
                child = scope.get(level)
                scope = child if isinstance(child, dict) else _registry.child_scope(scope, level)
        else:
            scope = _enter_from_outside(module, caller)
    except _registry.ScopeClash as clash:
        raise ValueError(f"{describe(module)}: {clash}; give the module another name=") from None
    if scope is not state.scope:
        _remember_scope(state, scope)
    return scope


def _enter_from_outside(module, caller):
    """A root's scope, or a child's called from outside its parent's call."""
    state = module._module_state
    if state.retired is not None:
        raise RuntimeError(
            f"{describe(module)} was replaced: {state.retired}, and its weights were removed "
            "from the registry. Hold it in a module again to use it with fresh weights; to "
            "keep trained weights, save them before replacing the module."
        )
    if caller is None and _registry.path_of(_parameter.current_scope) is None:
        raise RuntimeError(f"{describe(module)} was called, but {_OUTSIDE_REGISTRY}.")
    if caller is not None and state.parent is None:
        _adopt_from_callers(module)  # e.g. a list filled after the parent was built
        if state.parent is None and state.built_in_call:
            if state.given_name is None:
                raise _temporary_module_error(module, caller)
            state.frozen = caller._module_state.frozen  # its weights are the caller's
        if state.parent is not None and state.parent() is caller:
            return _enter_scope(module, caller)
    _drop_stale_entries(module)  # the root's prefix is in use from here on
    return _registry.resolve(_prefix(module))


def _remember_scope(state, scope):
    if scope is not state.scope:
        state.scope = scope
        state.relpaths = {}


def _prefix(module):
    state = module._module_state
    if state.prefix_epoch != _naming_epoch[0]:
        parent = state.parent_module()
        if parent is not None:
            state.prefix = _prefix(parent) + state.local
        elif state.parent is None or state.prefix is None:
            state.prefix = state.construction_path + state.local
        # else: the parent died; its children keep the prefix they had.
        state.prefix_epoch = _naming_epoch[0]
    return state.prefix


def describe(module):
    """``Conv2d 'res_unit/conv0'``: how errors name a module."""
    prefix = join(_prefix(module))
    where = f"'{prefix}'" if prefix else "at the registry root"
    return f"{type(module).__name__} {where}"


# --- adoption: how a parent finds its children ------------------------------

_CONTAINERS = (list, tuple, dict)


def _adopt_attributes(parent):
    seen = set()
    for attr, value in list(vars(parent).items()):
        if isinstance(value, Module):
            _adopt(parent, value, (attr,))
        elif isinstance(value, _CONTAINERS) and attr != "_module_state":
            _adopt_within(parent, value, (attr,), seen)


def _adopt_within(parent, value, path, seen):
    if id(value) in seen:
        return
    seen.add(id(value))
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(item, Module):
            _adopt(parent, item, path + (key,))
        elif isinstance(item, _CONTAINERS):
            _adopt_within(parent, item, path + (key,), seen)
        else:
            _refuse_nnabla_module(parent, item, path + (key,))


def _refuse_nnabla_module(parent, value, path):
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


def _adopt(parent, child, path):
    state = child._module_state
    if state.parent is not None or child in _constructing or _is_ancestor(child, parent):
        return  # held before (shared), or a back-reference up the tree
    old_prefix = _prefix(child)
    if state.retired is None and _has_parameters(child):
        raise RuntimeError(
            f"{describe(child)} already has parameters; holding it as "
            f"{join(str(p) for p in path)!r} in {describe(parent)} would move them to "
            "a new prefix. Hold the module in its parent before its first use, or "
            "construct a new one and load this one's weights into it "
            "(new.load_parameters(path) after old.save_parameters(path))."
        )
    levels = tuple(check_name(str(p), f"{describe(parent)}: holding a module", True) for p in path)
    _retire_previous(parent, levels, child)
    root_names.release(old_prefix, child)
    _stop_forgetting(state)
    # A weak reference: no parent<->child cycle, so auto-named roots are freed
    # (and their names reused) deterministically, not when the collector runs.
    # When the parent dies first, the child is kept: it holds its prefix itself.
    child_ref = weakref.ref(child)
    state.parent = weakref.ref(parent, lambda _: _keep_orphan(child_ref))
    state.retired = None
    given = state.given_name
    state.local = levels if given is None else ((given,) if given else ())
    _naming_epoch[0] += 1
    parent._module_state.slots[levels] = (child_ref, state)


def _keep_orphan(child_ref):
    """A submodule outlives its root: it keeps its prefix, which automatic names avoid."""
    child = child_ref()
    if child is not None:
        state = child._module_state
        prefix = state.prefix if state.prefix is not None else state.construction_path + state.local
        root_names.hold(prefix, child)


def _retire_previous(parent, levels, child):
    """Replacing the module held at ``levels``: the new one never gets the old weights.

    The old module's registry entries are removed (graphs already built keep
    their arrays) and the old module, if still alive, may not run until a
    module holds it again. A replaced module still held elsewhere in a live
    tree is an error: removing its weights would change that tree.
    """
    slot = parent._module_state.slots.get(levels)
    if slot is None or slot[1] is child._module_state:
        return
    old_ref, old_state = slot
    old = old_ref()
    where = f"{describe(parent)} holds {_describe_new(child)} at {join(levels)!r}"
    if old is not None and old_state.parent_module() is parent:
        holder = _live_holder(old)
        if holder is not None:
            raise ValueError(
                f"{where}, replacing {describe(old)}, which {holder} still holds; its "
                "weights cannot be removed. Hold the new module under another name, or "
                "remove the old one from there first."
            )
    prefix = _prefix(parent) + old_state.local
    scope = _registry.resolve(prefix, create=False)
    for key in _state_keys(old_state):
        if scope is not None:
            _frozen_entries.pop(id(_registry.remove(scope, key)), None)
    _forget_claims(old_state)
    if old is not None and old_state.parent_module() is parent:
        old_state.parent = None
        old_state.construction_path = _prefix(parent)  # still described where it was
        old_state.retired = where
        _naming_epoch[0] += 1


def _describe_new(child):
    return f"a new {type(child).__name__}"


def _state_keys(state):
    """The keys a module's state tree owns, relative to its prefix (works for dead modules)."""
    keys = list(state.owned())
    for _, child_state in state.slots.values():
        base = join(child_state.local)
        keys.extend(f"{base}/{key}" if base else key for key in _state_keys(child_state))
    return keys


def _forget_claims(state):
    state.claims.clear()
    state.provisional.clear()
    state.pending = None
    for _, child_state in state.slots.values():
        _forget_claims(child_state)


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
            for found in _modules_in(value, set()):
                if found is module:
                    return f"{describe(current)} (attribute {attr!r})"
                stack.append(found)
    return None


def _modules_in(value, seen):
    if isinstance(value, Module):
        yield value
    elif isinstance(value, _CONTAINERS) and id(value) not in seen:
        seen.add(id(value))
        for item in value.values() if isinstance(value, dict) else value:
            yield from _modules_in(item, seen)


def _is_ancestor(candidate, module):
    while module is not None:
        if module is candidate:
            return True
        module = module._module_state.parent_module()
    return False


def _has_parameters(module):
    return any(m._module_state.owned() for _, m in _walk(module))


def _children(module):
    """``(local name, child)`` pairs of the modules this one holds, in attribute order."""
    state = module._module_state
    if state.children is None:
        found = _find_children(module)
        if not module._children_may_grow:
            state.children = found  # reset by __setattr__ when a module is assigned
    else:
        found = state.children
    return [(join(child._module_state.local), child) for child in found]


def _find_children(module):
    _adopt_attributes(module)
    found, seen = OrderedDict(), set()
    # An explicit stack, not a recursive closure: a closure that refers to itself
    # is a reference cycle, which would keep the module alive until the collector runs.
    stack = [value for attr, value in reversed(vars(module).items()) if attr != "_module_state"]
    while stack:
        value = stack.pop()
        if isinstance(value, Module):
            if value._module_state.parent_module() is module and id(value) not in found:
                found[id(value)] = value
        elif isinstance(value, _CONTAINERS) and id(value) not in seen:
            seen.add(id(value))
            items = value.values() if isinstance(value, dict) else value
            stack.extend(reversed(list(items)))
    return list(found.values())


def _walk(module, relative=()):
    """Yields ``(relative path tuple, module)`` for the module and its descendants."""
    seen = set()
    stack = [(relative, module)]
    while stack:
        path, current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield path, current
        children = _children(current)
        for _, child in reversed(children):
            stack.append((path + child._module_state.local, child))


class Module(metaclass=ModuleMeta):
    """Base class of every module: an object that owns a parameter-scope prefix.

    Subclass it like a PyTorch ``nn.Module``: create the layers in
    ``__init__`` (no ``super().__init__()`` call needed) and compute in
    ``__call__`` (or ``forward``). Calling the module enters its parameter
    scope, so both its layer modules and any ``PF.*`` code written directly in
    ``__call__`` create their parameters under its prefix.

    Every module accepts ``name=`` at construction, whether or not its
    ``__init__`` declares it. See :doc:`/concepts` for the naming rules.

    Example:

        >>> import nnabla as nn
        >>> import nnabla.functions as F
        >>> import nnabla_modules as nm
        >>> class MLP(nm.Module):
        ...     def __init__(self, n_in, n_hidden, n_out):
        ...         self.fc1 = nm.Linear(n_in, n_hidden)
        ...         self.fc2 = nm.Linear(n_hidden, n_out)
        ...     def __call__(self, x):
        ...         return self.fc2(F.relu(self.fc1(x)))
        >>> mlp = MLP(4, 8, 2, name="mlp")
        >>> list(mlp.get_parameters())
        ['fc1/affine/W', 'fc1/affine/b', 'fc2/affine/W', 'fc2/affine/b']
    """

    #: Warn when two unnamed PF calls in one call share a weight (layers make one PF call).
    _checks_shared_pf_calls = True
    #: True: lists filled after assignment may hold new children, so they are looked
    #: up on every walk; layers set False and cache theirs.
    _children_may_grow = True

    def __init__(self, name=None):
        """Lets ``__init__`` call ``super().__init__()`` or ``super().__init__(name=name)``."""
        if name is not None and name != self._module_state.given_name:
            self.name = name

    def __setattr__(self, attr, value):
        if attr in _MODULE_METHODS:
            raise AttributeError(
                f"{describe(self)}: the attribute {attr!r} would hide the module method "
                f"{attr}(); give it another name."
            )
        if not isinstance(value, (Module, *_CONTAINERS)):
            _refuse_nnabla_module(self, value, (attr,))
            object.__setattr__(self, attr, value)
            return
        previous = self.__dict__.get(attr, _NOT_GIVEN)
        object.__setattr__(self, attr, value)
        self._module_state.children = None
        try:
            if isinstance(value, Module):
                _adopt(self, value, (attr,))
            else:
                _adopt_within(self, value, (attr,), set())
        except BaseException:
            if previous is _NOT_GIVEN:
                object.__delattr__(self, attr)
            else:
                object.__setattr__(self, attr, previous)
            raise

    def __copy__(self):
        raise TypeError(
            f"{describe(self)}: copy.copy would share this module's prefix and bookkeeping. "
            "Use module.clone() (or copy.deepcopy) for a copy with its own weights, or the "
            "same instance to share them."
        )

    def __call__(self, *args, **kwargs):
        forward = getattr(self, "forward", None)
        if forward is None:
            raise NotImplementedError(
                f"{describe(self)}: define __call__ (or forward) to compute the output"
            )
        return forward(*args, **kwargs)

    # --- names ---------------------------------------------------------------

    @property
    def name(self):
        """The local name: given, attribute path, or automatic (``""``: no level)."""
        return join(self._module_state.local)

    @name.setter
    def name(self, name):
        state = self._module_state
        if name is None or name == state.given_name:
            return
        check_name(name, describe(self))
        if _has_parameters(self):
            raise RuntimeError(
                f"{describe(self)} already has parameters; renaming it to {name!r} would "
                "create a second set of weights. Give name= at construction instead."
            )
        old_prefix = _prefix(self)
        state.given_name = name
        _stop_forgetting(state)
        if state.parent is None:
            root_names.release(old_prefix, self)
            _hold_root_name(self)
        else:
            state.local = (name,) if name else ()
            _naming_epoch[0] += 1

    @property
    def prefix(self):
        """The full parameter-scope prefix, e.g. ``"res_unit/conv0"``."""
        return join(_prefix(self))

    # --- enumeration -----------------------------------------------------------

    def get_parameters(self, grad_only=True, recursive=True, absolute=False):
        """The module's parameters, keyed relative to its prefix: what a solver takes.

        Returns the registry's own ``nn.Variable`` objects (nothing is copied),
        so ``solver.set_parameters(model.get_parameters())`` trains exactly the
        weights that ``nn.get_parameters()`` holds under the module's prefix.
        Creates the parameters first where the module can (layers given their
        input sizes); a module whose sizes are only known at its first call
        has none before it.

        Args:
            grad_only (bool): Only parameters with ``need_grad=True``: leaves
                out the batch-norm running mean and variance and frozen weights
                (:meth:`freeze`), as ``nn.get_parameters()`` does. ``False``
                gives all of them.
            recursive (bool): Include the descendants' parameters; ``False``
                gives only what this module's own code created (PF calls in
                its ``__call__``).
            absolute (bool): Key them by their full registry key
                (``res_unit/conv0/conv/W``), so the dicts of several modules
                merge without collisions.

        Returns:
            OrderedDict: key -> the registry's own ``nn.Variable``, in registry
            (creation) order, the same in every process.

        Example:
            >>> import nnabla as nn
            >>> import nnabla.solvers as S
            >>> import nnabla_modules as nm
            >>> bn = nm.BatchNorm2d(4, name="bn")
            >>> list(bn.get_parameters())
            ['bn/beta', 'bn/gamma']
            >>> list(bn.get_parameters(grad_only=False))
            ['bn/beta', 'bn/gamma', 'bn/mean', 'bn/var']
            >>> list(bn.get_parameters(absolute=True))
            ['bn/bn/beta', 'bn/bn/gamma']
            >>> bn.get_parameters()["bn/beta"] is nn.get_parameters()["bn/bn/beta"]
            True
            >>> solver = S.Adam(1e-3)
            >>> solver.set_parameters(bn.get_parameters())
        """
        tree = list(_walk(self))
        _create_parameters(self, tree)
        prefix = _prefix(self)
        scope = _registry.resolve(prefix, create=False)
        params = OrderedDict()
        if scope is None:
            return params
        trie = _registry.make_trie(_claimed_keys(self, recursive, tree))
        start = join(prefix) + "/" if absolute and prefix else ""
        for key, param in _registry.iter_claimed(scope, trie, start):
            if not grad_only or param.need_grad:
                params[key] = param
        return params

    def named_parameters(self, grad_only=True, recursive=True):
        """Yields ``(key, Variable)`` pairs of :meth:`get_parameters`.

        Args:
            grad_only (bool): Only parameters with ``need_grad=True``; see
                :meth:`get_parameters`.
            recursive (bool): Include the descendants' parameters; see
                :meth:`get_parameters`.

        Yields:
            tuple: ``(key relative to the module, nn.Variable)``.
        """
        yield from self.get_parameters(grad_only, recursive).items()

    def parameters(self, grad_only=True, recursive=True):
        """An iterator over the Variables of :meth:`get_parameters`, without their keys.

        PyTorch's spelling, for loops over the weights (counting, norms,
        initialization). NNabla's solvers take a dict, not this iterator: give
        them ``get_parameters()``; passing this one is a ``TypeError`` that
        says so.

        Args:
            grad_only (bool): Only parameters with ``need_grad=True``; see
                :meth:`get_parameters`.
            recursive (bool): Include the descendants' parameters; see
                :meth:`get_parameters`.

        Returns:
            iterator: The registry's own Variables, in registry order.

        Example:
            >>> import nnabla_modules as nm
            >>> fc = nm.Linear(4, 3, name="fc")
            >>> sum(p.size for p in fc.parameters())
            15
        """
        return _ParameterIterator(self, self.get_parameters(grad_only, recursive).values())

    def named_modules(self):
        """Yields ``(relative prefix, module)`` for this module and its descendants."""
        for path, module in _walk(self):
            yield join(path), module

    def modules(self):
        """Yields this module and its descendants (each once)."""
        for _, module in _walk(self):
            yield module

    def named_children(self):
        """Yields ``(local name, child)`` for the modules this one holds."""
        yield from _children(self)

    def children(self):
        """Yields the modules this one holds."""
        for _, child in _children(self):
            yield child

    def release(self):
        """Removes the tree's parameters from NNabla's registry; returns the module.

        The next use creates fresh ones (PF's initializers), so this is how a
        named model is rebuilt from scratch in one process. Graphs already built
        keep their own references to the old arrays.
        """
        scope = _registry.resolve(_prefix(self), create=False)
        for key in list(_claimed_keys(self, True)) if scope is not None else ():
            _frozen_entries.pop(id(_registry.remove(scope, key)), None)
        for _, module in _walk(self):
            module._module_state.claims.clear()
            module._module_state.provisional.clear()
            module._module_state.pending = None
        return self

    # --- modes -------------------------------------------------------------------

    def train(self, mode=True):
        """Sets ``training`` on the whole tree; returns the module.

        The mode is read when a graph is built: build the training graph after
        ``train()`` and the inference graph after :meth:`eval`.

        Args:
            mode (bool): ``True`` for training, ``False`` for inference (what
                :meth:`eval` does).

        Returns:
            Module: This module.
        """
        for module in self.modules():
            module.training = mode
        return self

    def eval(self):
        """Inference mode for the whole tree; returns the module."""
        return self.train(False)

    def freeze(self):
        """Stops gradients for the tree's parameters, in the registry itself.

        Sets ``need_grad=False`` on the registry's Variables, so solvers given
        ``get_parameters()`` and weight decay skip them, and graphs built after
        this line compute no gradient for them. Returns the module.
        """
        return self._set_frozen(True)

    def unfreeze(self):
        """Undoes :meth:`freeze`; restores each parameter's own ``need_grad``."""
        return self._set_frozen(False)

    def _set_frozen(self, frozen):
        _create_parameters(self)
        for _, module in _walk(self):
            state = module._module_state
            state.frozen = frozen
            scope = _registry.resolve(_prefix(module), create=False)
            if scope is None:
                continue
            for key in state.owned():
                param = _registry.lookup(scope, key)
                if _registry.is_variable(param):
                    param.need_grad = state.requested_need_grad(key) and not frozen
                    if frozen:
                        _frozen_entries[id(param)] = param  # held: its id stays unique
                    else:
                        _frozen_entries.pop(id(param), None)
        return self

    # --- checkpoints (nnabla_modules.checkpoint) ------------------------------------

    def save_parameters(self, path, grad_only=False, extension=None):
        """Saves this module's parameters, keys relative to its prefix; see :doc:`/checkpoints`.

        The file is one of NNabla's own formats, readable by
        ``nn.load_parameters`` and NNabla's tools. Keys are relative to the
        module, so the file loads into any instance of the same class, under
        any name, and a submodule's file into another model's submodule.

        Args:
            path (str, os.PathLike or file object): The file: ``.h5`` or
                ``.protobuf``, by its extension. A path is written atomically
                (a temporary file, then renamed): a crash never leaves a
                truncated file at ``path``.
            grad_only (bool): Only parameters with ``need_grad=True``. The
                default ``False`` also saves the batch-norm running
                statistics and frozen weights, which a model needs to predict.
            extension (str, optional): The format, ``".h5"`` or
                ``".protobuf"``; wins over the path's extension, and is
                required for a file object.

        Raises:
            ValueError: An unsupported format, or a file object without
                ``extension``.

        Example:
            >>> import nnabla_modules as nm
            >>> fc = nm.Linear(4, 2, name="fc")
            >>> fc.save_parameters("fc.h5")
            >>> import nnabla_modules.io
            >>> list(nnabla_modules.io.read_parameters("fc.h5"))
            ['affine/W', 'affine/b']
        """
        from . import checkpoint

        return checkpoint.save_parameters(self, path, grad_only=grad_only, extension=extension)

    def load_parameters(self, path, strict=True, extension=None):
        """Loads a checkpoint into this module's Variables in place; see :doc:`/checkpoints`.

        Keys are read relative to the module; keys that carry the module's full
        prefix (a checkpoint of PF code written with ``nn.save_parameters``)
        load too. The values are written into the existing ``nn.Variable``
        objects, so graphs already built and solvers already holding them see
        the loaded values. All or nothing: when anything does not fit, nothing
        is changed.

        Args:
            path (str, os.PathLike or file object): An NNabla parameter file:
                ``.h5``, ``.protobuf``, ``.nntxt``/``.prototxt`` or ``.nnp``.
            strict (bool): ``True``: the file must have exactly the module's
                keys, with the same shapes and compatible dtypes, else
                :class:`~nnabla_modules.checkpoint.CheckpointError` names every
                missing, unexpected and mismatched key. ``False``: loads the
                keys that fit and returns the others. A module that cannot
                know its keys before its first call (no input sizes, PF code
                in its ``__call__``) is checked when that call ends.
            extension (str, optional): The format (``".h5"``, ...); wins over
                the path's extension, and is required for a file object.

        Returns:
            LoadResult: ``missing_keys``, ``unexpected_keys`` and
            ``mismatched_keys`` (all empty after a strict load).

        Raises:
            CheckpointError: The file does not fit the module (``strict=True``,
                or a key that fits twice); nothing was changed.
            nnabla_modules.io.ParameterFileError: Not a readable parameter file.
            FileNotFoundError: No file at ``path``.

        Example:
            >>> import nnabla_modules as nm
            >>> nm.Linear(4, 2, name="trained").save_parameters("fc.h5")
            >>> fresh = nm.Linear(4, 2, name="fresh")
            >>> fresh.load_parameters("fc.h5")
            <LoadResult: all keys matched>
            >>> wider = nm.Linear(4, 3, name="wider")
            >>> wider.load_parameters("fc.h5", strict=False).mismatched_keys
            ['affine/W', 'affine/b']
        """
        from . import checkpoint

        return checkpoint.load_parameters(self, path, strict=strict, extension=extension)

    def state_dict(self, grad_only=False):
        """Numpy copies of the parameters, keys relative to the prefix.

        A snapshot: changing the arrays changes nothing in the module, and
        training the module does not change the snapshot.

        Args:
            grad_only (bool): Only parameters with ``need_grad=True``. The
                default ``False`` includes the batch-norm running statistics
                and frozen weights.

        Returns:
            OrderedDict: key relative to the module -> ``numpy.ndarray`` (a
            copy), in registry order.

        Example:
            >>> import nnabla_modules as nm
            >>> bn = nm.BatchNorm2d(3, name="bn")
            >>> for key, value in bn.state_dict().items():
            ...     print(key, value.shape)
            bn/beta (1, 3, 1, 1)
            bn/gamma (1, 3, 1, 1)
            bn/mean (1, 3, 1, 1)
            bn/var (1, 3, 1, 1)
            >>> list(bn.state_dict(grad_only=True))
            ['bn/beta', 'bn/gamma']
        """
        from . import checkpoint

        return checkpoint.state_dict(self, grad_only=grad_only)

    def load_state_dict(self, state, strict=True):
        """Loads an in-memory ``{key: array}`` with the rules of :meth:`load_parameters`.

        Values are written into the module's existing Variables, in place, all
        or nothing.

        Args:
            state (mapping): key relative to the module (or with the module's
                full prefix) -> ``numpy.ndarray``, ``nn.Variable`` or
                ``nn.NdArray``; e.g. what :meth:`state_dict` returned.
            strict (bool): ``True``: exactly the module's keys and shapes, else
                :class:`~nnabla_modules.checkpoint.CheckpointError` and nothing
                changes. ``False``: loads what fits and returns the rest.

        Returns:
            LoadResult: What did not fit (all empty after a strict load).

        Raises:
            CheckpointError: The state does not fit the module; nothing was
                changed.

        Example:
            >>> import numpy as np
            >>> import nnabla_modules as nm
            >>> fc = nm.Linear(2, 2, name="fc")
            >>> snapshot = fc.state_dict()
            >>> fc.get_parameters()["affine/W"].d = 0.0
            >>> fc.load_state_dict(snapshot)
            <LoadResult: all keys matched>
            >>> bool(np.array_equal(fc.get_parameters()["affine/W"].d, snapshot["affine/W"]))
            True
        """
        from . import checkpoint

        return checkpoint.load_state_dict(self, state, strict=strict)

    # --- tools (nnabla_modules.summary, nnabla_modules.clone) -------------------------

    def summary(self, *inputs, **kwargs):
        """A table of the module tree on ``inputs``; see :func:`nnabla_modules.summary.summary`.

        Args:
            *inputs: ``nn.Variable`` inputs, or shapes (tuples of ints) for them.
            **kwargs: See :func:`nnabla_modules.summary.summary`.

        Returns:
            Summary: print it for the table; :doc:`/tools` explains it.
        """
        from . import summary

        return summary.summary(self, *inputs, **kwargs)

    def clone(self, name=None):
        """A copy as a new root (``name=`` or automatic) with copied values; see :doc:`/tools`."""
        from . import clone

        return clone.clone(self, name=name)

    def __deepcopy__(self, memo):
        from . import clone

        return clone.deepcopy_module(self, memo)

    # --- display -------------------------------------------------------------------

    def extra_repr(self):
        """Text inside the parentheses of ``repr``; layers show their arguments."""
        return ""

    def __repr__(self):
        count, partial = _count_parameters(self)
        note = f"  # {self.prefix or '(registry root)'}"
        note += f", {count:,}{'+' * partial} params" if count is not None else ", no parameters yet"
        children = _children(self)
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not children:
            return _fit(head + ")" + note)
        lines = [head + note]
        for local, child in children:
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({local or '<no level>'}): {child_repr}")
        return _fit("\n".join(lines) + "\n)")


_REPR_COLUMNS = 100


def _fit(text):
    """Moves the ``# prefix, N params`` note of a line too long for a terminal to its own line."""
    fitted = []
    for line in text.split("\n"):
        code, mark, note = line.partition("  # ")
        if mark and len(line) > _REPR_COLUMNS:
            indent = len(code) - len(code.lstrip())
            fitted += [code, " " * (indent + 4) + "# " + note]
        else:
            fitted.append(line)
    return "\n".join(fitted)


class _ParameterIterator:
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


#: Module methods an instance attribute may not hide (``self.modules = [...]``).
_MODULE_METHODS = frozenset(
    name for name, value in vars(Module).items() if not name.startswith("_") and callable(value)
)


def orphans():
    """Registry scopes and keys that no live module owns, in registry order.

    A scope is listed whole when nothing under it is owned; useful after
    rebuilding named models in a notebook, or to find what old PF code left.
    ``nn.parameter_scope``-style code outside modules shows up here too.
    """
    owned = set()
    for root in root_names.live():
        prefix = join(_prefix(root))
        owned.update(f"{prefix}/{key}" if prefix else key for key in _claimed_keys(root, True))
    return _registry.unowned(_registry.root_scope(), owned)[0]


def _claimed_keys(module, recursive, tree=None):
    walk = (tree or _walk(module)) if recursive else [((), module)]
    for path, current in walk:
        relative = join(path)
        for key in current._module_state.owned():
            yield f"{relative}/{key}" if relative else key


def _count_parameters(module):
    """``(count or None, partial)``: the tree's parameters, created or not yet.

    Layers that know their sizes but have not created their parameters count
    what they will create (computed, nothing created); ``partial``: some layer
    cannot know its parameters before its first call.
    """
    sizes, partial = [], False
    scope = _registry.resolve(_prefix(module), create=False)
    if scope is not None:
        trie = _registry.make_trie(_claimed_keys(module, True))
        sizes = [int(np.prod(param.shape)) for _, param in _registry.iter_claimed(scope, trie)]
    for _, current in _walk(module):
        predict = getattr(current, "parameter_shapes", None)
        if predict is not None and not current._module_state.claims:
            shapes = predict()
            partial = partial or shapes is None
            sizes.extend(int(np.prod(shape)) for shape in (shapes or {}).values())
    return (sum(sizes) if sizes else None), partial


def _create_parameters(module, tree=None):
    """Creates the parameters of every layer in the tree that knows its input sizes."""
    for _, current in tree or _walk(module):
        create = getattr(current, "_create_parameters", None)
        if create is not None and not _parameters_exist(current):
            _run_in_scope(current, type(current)._create_parameters, (), {})


def _parameters_exist(module):
    state = module._module_state
    if not state.claims:
        return False
    scope = _registry.resolve(_prefix(module), create=False)
    return scope is not None and all(
        _registry.is_variable(_registry.lookup(scope, key)) for key in state.claims
    )


def _user_stacklevel():
    """The ``stacklevel`` of ``warnings.warn`` that points at the user's own line."""
    frame, level = sys._getframe(1), 1
    while frame is not None and _is_library(frame):
        frame, level = frame.f_back, level + 1
    return level


def _is_library(frame):
    # PF's decorator compiles its wrappers from a string, in globals without a __name__.
    module_name = frame.f_globals.get("__name__")
    if module_name is None:
        return "parameter_scope" in frame.f_globals
    return module_name.split(".")[0] in ("nnabla", "nnabla_modules")


_registry.observer[0] = _observe
