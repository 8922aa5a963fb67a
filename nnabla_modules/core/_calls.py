"""Module calls: scope entry, and ownership observed at the registry.

Calling a module runs :func:`run_in_scope`: NNabla's current scope is set to
the module's prefix (an absolute path), the module is pushed on
``_registry.running.active``, and everything its code reads or creates in the registry
is recorded for it by :func:`observe` (``_registry.py`` explains how every path
to the registry is seen). Forward hooks (:func:`register_forward_hook`) see
each call's inputs and output.
"""

import functools
import sys
import threading
import warnings
import weakref
from typing import Any

import nnabla.parameter as _parameter

from . import _registry
from ._habits import array_input_error
from ._hooks import global_hooks, run_post_hooks, run_pre_hooks
from ._naming import describe, drop_stale_entries, prefix_of
from ._state import frozen_entries, ownership_epoch
from ._tree import adopt_attributes, children_of
from ._variables import put_in_registry


class SharedParameterWarning(UserWarning):
    """Two unnamed PF calls or ``name=""`` layers of one kind in one call share their weights."""


def observe(name, param, is_set, pf_use):
    """Records that the running module's code reached ``name`` in the current scope.

    Called by the registry observers (see _registry.py) for every
    ``get_parameter``/``set_parameter`` made while a module call runs in this
    thread, however the code reached them. The innermost running module owns
    the entry; a module built and called inside another's call without being
    held also credits the module that runs it, so its weights are the caller's
    too (enumerated, saved, frozen).
    """
    active = _registry.running.active
    scope = _parameter.current_scope
    requested = param.need_grad  # what the code asked for, before a freeze holds
    depth = len(active) - 1
    while depth >= 0:
        module = active[depth]
        state = module._module_state
        key = state.relative_key(scope, name)
        if key is None:
            _check_in_registry(module, scope, name)
            return
        claims = state.claims
        # The flag the code asked for: a frozen module restores it on unfreeze.
        if key not in claims:
            claims[key] = requested
            ownership_epoch[0] += 1
            if id(scope) not in _registry.beside:
                _registry.beside[id(scope)] = (scope, weakref.ref(module))
        elif is_set:
            claims[key] = requested
        if state.frozen and id(param) not in frozen_entries:
            # Made or used by a frozen module's call: frozen as freeze() makes it (listed,
            # saved with the code's flag, held over NNabla's loaders).
            frozen_entries[id(param)] = param
        if param.need_grad and id(param) in frozen_entries:
            # Frozen holds whatever the code asks for, also when a module that
            # shares the entry by name and is not frozen uses it.
            param.need_grad = False
        if pf_use and (state.call_keys is not None or not state.local):
            _check_shared_use(active, depth, key)
        if state.parent is not None:
            if not _registry.running.temporaries:
                return
            depth = _temporary_root(active, depth)  # a part of a temporary module's tree?
            if depth is None:
                return
        elif not state.built_in_call:
            return
        depth -= 1  # a temporary module: its caller owns the entry too


def claim_beside(module, scope, name, param):
    """An entry created outside module calls beside ``module``'s weights, in a registry
    dict its calls use (a graph converter's folded weights): the module's too."""
    state = module._module_state
    key = state.relative_key(scope, name)
    if key is None or key in state.claims:
        return
    state.claims[key] = param.need_grad
    ownership_epoch[0] += 1
    if state.frozen:
        param.need_grad = False
        frozen_entries[id(param)] = param


def _temporary_root(active, depth):
    """The depth in ``active`` of the root of ``active[depth]``'s tree, if that root is a
    temporary module (built in a call, not held) whose call runs; else None."""
    module = active[depth]
    while True:
        state = module._module_state
        parent = state.parent_module()
        if parent is None:
            return depth if state.built_in_call else None
        if depth == 0 or active[depth - 1] is not parent:
            return None
        depth -= 1
        module = parent


def _check_in_registry(module, scope, name):
    """A parameter made outside NNabla's registry in a module's call would be nobody's."""
    if _registry.path_of(scope) is None:
        raise RuntimeError(
            f"{describe(module)}: its call created or read the parameter {name!r} outside "
            f"NNabla's parameter registry: {_registry.OUTSIDE_REGISTRY}. This module could "
            "not list, save or freeze it; use nnabla_modules layers or PF code instead."
        )


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
        stacklevel=user_stacklevel(),
    )


def entering_scope(call, method=False):
    """``call`` run in the module's scope: a call, or (``method``) one of its other methods."""

    @functools.wraps(call)
    def entering_scope(self, *args, **kwargs):
        if method and self in _registry.running.constructing:  # a helper of __init__
            return call(self, *args, **kwargs)
        return run_in_scope(self, call, args, kwargs, method)

    entering_scope._enters_scope = True
    return entering_scope


def run_in_scope(module, fn, args, kwargs, method=False):
    """Calls ``fn(module, ...)`` with NNabla's current scope set to the module's prefix.

    This runs on every module call, so it is written for speed: the common case
    (a child called from its parent's call) costs a few dict lookups. While it
    runs, the module is the innermost of ``_registry.running.active``: what its code
    reaches in the registry is recorded by :func:`observe`.
    """
    lock = _registry.lock
    lock.acquire()
    try:
        running = _registry.running
        active = running.active
        state = module._module_state
        caller = active[-1] if active else None
        if caller is module:  # super().__call__ chains
            return fn(module, *args, **kwargs)
        parent = state.parent
        if (caller is not None and parent is not None and state.local == SAME_LEVEL
                and parent() is caller):
            scope = caller._module_state.scope  # name="" inside its parent's call
            if scope is not state.scope:
                state.remember_scope(scope)
            temporary = False
        else:
            scope = enter_scope(module, caller)
            temporary = state.built_in_call and state.parent is None
        if _registry.unplaced and not running.creating_early:
            _registry.place(scope)
        if state.unregistered:
            put_in_registry(module, scope)
        # A method other than the call runs in the scope too, without the call's forward hooks.
        hooks = None if method else state.hooks if state.hooks is not None else global_hooks[0]
        pending = state.pending  # loads this call checks (_load_check.py)
        if hooks is not None and hooks.pre:
            args, kwargs = run_pre_hooks(hooks, module, args, kwargs)
        previous = _parameter.current_scope
        previous_no_grad = _parameter.current_no_grad
        outer_frozen = running.frozen_no_grad
        if caller is None:
            running.thread = threading.get_ident()
            running.outside = (previous, previous_no_grad)
            running.outer_call_id += 1
            if not running.creating_early:
                state.outer_calls += 1
        # A frozen module's PF calls return its weights with need_grad=False (what
        # nn.no_grad() does), so graphs built from it leave them alone; a frozen
        # caller's setting does not pass to an unfrozen child, the user's does.
        users_no_grad = previous_no_grad and not outer_frozen
        _parameter.current_no_grad = users_no_grad or state.frozen
        running.frozen_no_grad = state.frozen and not users_no_grad
        state.ran = True
        active.append(module)
        if temporary:
            running.temporaries += 1
        _parameter.current_scope = scope
        outer_call_keys = state.call_keys
        if module._checks_shared_pf_calls:
            state.call_keys = {}
        failed = None
        try:
            result = fn(module, *args, **kwargs)
        except BaseException as error:
            if isinstance(error, AssertionError):  # NNabla's "All inputs must be Variable"
                inputs = [(f"argument {i}", a) for i, a in enumerate(args)] + list(kwargs.items())
                refused = array_input_error(module, inputs)
                if refused is not None:
                    refused.__cause__ = error
                    error = refused
            if pending is None:
                raise error
            failed = error  # undone below, once the scope is restored
        finally:
            state.call_keys = outer_call_keys
            _parameter.current_scope = previous
            _parameter.current_no_grad = previous_no_grad
            running.frozen_no_grad = outer_frozen
            active.pop()
            if temporary:
                running.temporaries -= 1
            if caller is None:
                running.thread = None
        if pending is not None:
            _check_loads(pending, module, method, failed)  # raises if the load or the call failed
        if hooks is not None and hooks.post:
            result = run_post_hooks(hooks, module, args, kwargs, result)
        return result
    finally:
        lock.release()


def _check_loads(pendings, module, method, failed):
    """After a call of a watched module: each load's check, then ``failed`` raised again.

    The checks are the loads' own (``checkpoint/_load_check.py``): the module
    system calls them without importing the layer above it. A layer's
    parameters created before its first call (``get_parameters()``) are no call.
    """
    for pending in pendings if not _registry.running.creating_early else ():
        if not pending.finished:
            pending.after_call(module, method, failed)
    if failed is not None:
        raise failed


SAME_LEVEL = ()  # the local name of a module given name=""


#: Roots already warned about being called, unheld, inside another module's call.
_warned_unheld: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _temporary_module_error(module, caller):
    return RuntimeError(
        f"{describe(module)} was constructed during a call of {describe(caller)} and is "
        "not held by it, so every call would create a new set of weights. Construct it "
        "in __init__, hold it (self.layer = ...), or give it name= to reuse one set of "
        "weights by name on every call."
    )


def _adopt_from_callers(module):
    for caller in reversed(_registry.running.active):
        adopt_attributes(caller)
        if module._module_state.parent is not None:
            return


def enter_scope(module, caller):
    """The registry dict of the module's prefix, created as ``nn.parameter_scope`` would."""
    state = module._module_state
    parent = state.parent
    try:
        if caller is not None and parent is not None and parent() is caller:
            if state.scope is None and state.given_name is None:
                _check_places(caller)  # a first call: the list it is in may have changed
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
        state.remember_scope(scope)
    return scope


def _check_places(parent):
    """Names the children of ``parent`` moved in its plain lists and dicts by their new
    places (``_tree.children_of``), once per outermost call."""
    state, running = parent._module_state, _registry.running
    if state.places_checked != running.outer_call_id:
        state.places_checked = running.outer_call_id
        children_of(parent)


def _enter_from_outside(module, caller):
    """A root's scope, or a child's called from outside its parent's call."""
    state = module._module_state
    if state.retired is not None and caller is not None:
        _adopt_from_callers(module)  # put back in a list or a dict: held again
    _refuse_replaced(module)
    if caller is None and _registry.path_of(_parameter.current_scope) is None:
        raise RuntimeError(f"{describe(module)} was called, but {_registry.OUTSIDE_REGISTRY}.")
    if caller is not None and state.parent is None:
        _adopt_from_callers(module)  # e.g. a list filled after the parent was built
        if state.parent is None and state.built_in_call:
            if state.given_name is None:
                raise _temporary_module_error(module, caller)
            state.frozen = caller._module_state.frozen  # its weights are the caller's
        elif state.parent is None and module not in _warned_unheld:
            _warned_unheld.add(module)
            warnings.warn(
                f"{describe(module)} is called in a call of {describe(caller)}, which does "
                "not hold it in an attribute, list, tuple or dict: its weights are not "
                f"{describe(caller)}'s (not listed, saved or frozen with it). Hold it "
                "there (self.layer = ...) to make them so.",
                stacklevel=user_stacklevel(),
            )
        if state.parent is not None and state.parent() is caller:
            return enter_scope(module, caller)
    drop_stale_entries(module)  # the root's prefix is in use from here on
    return _registry.resolve(prefix_of(module))


def _refuse_replaced(module):
    """A replaced module (or a part of one) may not run: its weights are out of the
    registry, and its prefix may be the new module's."""
    current = module
    while current is not None:
        retired = current._module_state.retired
        if retired is not None:
            what = (f"{describe(module)} was" if current is module
                    else f"{describe(module)} is a part of {describe(current)}, which was")
            raise RuntimeError(
                f"{what} replaced: {retired}, and its weights were taken out of the "
                "registry. Hold it in a module again to use it: its weights go back under "
                "its new prefix."
            )
        current = current._module_state.parent_module()


def user_stacklevel():
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


_registry.observer[0] = observe
_registry.beside_observer[0] = claim_beside
