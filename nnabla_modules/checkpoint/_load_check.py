"""The check of a load that modules could not check when it ran (docs/checkpoints.md).

A module that cannot know its keys before its first call takes a load's
values into the registry; :class:`PendingLoad` then checks them as calls show
them, whatever runs first (the loaded module's call, one of its methods, a
child called directly):

* when any call of a watched module ends, a key it created that the file
  lacked is an error at once: nothing can make it fit later;
* when the ``__call__`` of a watched module ends, its subtree has built what
  it builds, so a key the file gave that subtree and it did not use is an
  error too (a method may build only part of the module: it checks no unused
  keys).

The watched modules are the loaded module and those of its tree that could
still create keys when it ran (the load's hosts): layers without their sizes,
PF code, modules with children whose own code has not run. Only keys the
hosts' own code creates count as created: a layer held after the load is no
part of it. The load is checked once every one of them has ended a
``__call__`` (or a ``__call__`` above it has). An error undoes the whole load.
"""

import warnings
import weakref
from collections import OrderedDict

from ..core import _registry
from ..core._naming import describe, join, prefix_of
from ..core._state import state_of
from ..core._tree import walk
from ..files._signals import interrupts_held_back
from ._results import CheckpointError, LoadResult


def defer_check(module, pending, hosts):
    """Watches the module and ``hosts`` for the calls that check ``pending`` (two loads: one check).

    ``hosts``: the modules of its tree that could still create keys at the load.
    """
    for earlier in state_of(module).pending or ():
        if earlier.target() is module:  # two loads before the call: one check, both undone
            earlier.finish()
            # A key a strict load gave is checked strictly; one only lenient loads gave warns.
            strictly = (set(earlier.keys) - earlier.lenient) | (set(pending.keys) - pending.lenient)
            pending.lenient = (earlier.lenient | pending.lenient) - strictly
            pending.keys = OrderedDict(list(earlier.keys.items()) + list(pending.keys.items()))
            # The earlier load's copies of old values undo both: one copy, however many loads.
            kept = {id(action.param) for action in earlier.undo if hasattr(action, "param")}
            pending.undo = earlier.undo + [
                action for action in pending.undo if id(getattr(action, "param", None)) not in kept
            ]
            pending.strict = earlier.strict or pending.strict
            pending.placed = earlier.placed + pending.placed
            pending.known = earlier.known
    pending.target = weakref.ref(module)
    hosts = {id(host) for host in hosts}
    for path, current in walk(module):
        if current is module or id(current) in hosts:
            pending.watched[id(current)] = (weakref.ref(current), join(path))
            state_of(current).watch(pending)


class PendingLoad:
    """A load into a module that could not know its keys: checked as calls show them.

    Until then the loaded keys belong to the modules that will create them
    (saved, frozen, listed).
    """

    def __init__(self, keys, known, strict, source, undo, placed=()):
        self.keys = keys  # key relative to the loaded module -> need_grad from the file
        self.known = known  # keys the module had before the load
        self.strict = strict
        self.source = source
        self.undo = undo
        # The new registry entries the load made: ``undo`` removes them where they were put,
        # and so does :meth:`_undo` where they are now (the module held meanwhile).
        self.placed = list(placed)
        self.lenient = set() if strict else set(keys)  # keys only strict=False loads gave
        self.target = None  # weakref to the loaded module
        self.watched = {}  # id -> (weakref, path relative to the loaded module)
        self.finished = False

    def after_call(self, module, method, failed):
        """Checks what the call of ``module`` (a watched module) has shown.

        Signals wait until the check and its bookkeeping are whole: half of
        it (a module still watched whose load has forgotten it) would break
        every later call.
        """
        with interrupts_held_back():
            self._check(module, method, failed)

    def _check(self, module, method, failed):
        target = self.target()
        if target is None:
            return self.finish()
        if failed is not None:
            if any(id(caller) in self.watched for caller in _registry.running.active):
                return  # a watched call around this one undoes the load, if it fails too
            self.fail(target, module, failed)
        base = self.watched[id(module)][1]
        settled = not method
        unused = []
        if settled:
            for _, current in walk(module):
                state_of(current).forget_loaded_credit()  # the call has shown who owns what
            used = {_full(base, key) for key in module.get_parameters(grad_only=False)}
            unused = [key for key in self.keys if _under(key, base) and key not in used]
        # A method checks the module's own keys (its watched descendants check theirs);
        # a ``__call__``, those of every watched module of its subtree.
        created = [
            key for key in self._made(module, base, settled)
            if key not in self.keys and key not in self.known
        ]
        if settled:
            self._unwatch([id(current) for _, current in walk(module)])
        unfit = [key for key in unused if key not in self.lenient] if self.strict else []
        if unfit or (self.strict and created):
            self._undo(target, created)
            raise CheckpointError(
                self._report(target, module, unfit, created), LoadResult(created, unfit, [])
            )
        if unused:
            warnings.warn(
                f"{describe(module)}: {len(unused)} key(s) loaded from {self.source} "
                f"before its first call were not used by it: {', '.join(unused[:5])}"
                f"{' ...' if len(unused) > 5 else ''}",
                stacklevel=6,  # the module call in the user's code
            )
        if not self.watched:
            self.finish()

    def fail(self, target, module, error):
        """A watched call raised (a shape the file got wrong): undo the load.

        An ``Exception`` becomes a :class:`CheckpointError`; anything else
        (``KeyboardInterrupt``, ``SystemExit``) is raised again as it is.
        """
        owned = target.get_parameters(grad_only=False)
        self._undo(target, [k for k in owned if k not in self.keys and k not in self.known])
        if not isinstance(error, Exception):  # Ctrl-C, SystemExit: a stop request stays one
            note = f"{describe(target)}: the load of {self.source} before this call was undone."
            error.__notes__ = [*getattr(error, "__notes__", []), note]
            raise error
        raise CheckpointError(
            f"{describe(module)}: its first call after loading {self.source} into "
            f"{describe(target)} failed, so the load was undone (the values are as they "
            f"were before it): {error}",
            LoadResult([], [], list(self.keys)),
        ) from error

    def _made(self, module, base, subtree):
        """The keys, relative to the loaded module, that watched modules' own code made."""
        relative = tuple(base.split("/")) if base else ()
        found = walk(module, relative) if subtree else [(relative, module)]
        for path, current in found:
            reference, _ = self.watched.get(id(current), (None, None))
            if reference is not None and reference() is current:
                yield from (join(path + (key,)) for key in state_of(current).claims)

    def finish(self):
        """The check is over: no call checks it any more."""
        self.finished = True
        self._unwatch(list(self.watched))

    def _unwatch(self, ids):
        for watched in ids:
            reference, _ = self.watched.pop(watched, (None, None))
            current = reference() if reference is not None else None
            if current is not None:
                state_of(current).unwatch(self)

    def _undo(self, module, created):
        with interrupts_held_back():  # a Ctrl-C (a second one) waits until it is whole
            self.finish()
            for _, current in walk(module):
                state_of(current).forget_loaded_credit()
            scope = _registry.resolve(prefix_of(module), create=False)
            for action in reversed(self.undo):
                action()
            placed = {id(param) for param in self.placed}
            moved = [key for key in self.keys if scope is not None
                     and id(_registry.lookup(scope, key)) in placed]
            for key in created + moved:
                if scope is not None:
                    _registry.remove(scope, key)
            for _, current in walk(module):
                here = _registry.resolve(prefix_of(current), create=False)
                state_of(current).forget_claims_without_entry(here)

    def _report(self, target, module, unused, created):
        prefix = target.prefix

        def full(key):
            return f"{prefix}/{key}" if prefix else key

        by = "call" if module is target else f"call of {describe(module)}"
        lines = [
            f"{describe(target)}: {self.source}, loaded before the module's first call, "
            f"does not fit what the {by} built; the load was undone (the values are as "
            "they were before it)."
        ]
        if unused:
            lines.append(f"  loaded but not used by the call ({len(unused)}):")
            lines.extend(f"    {full(key)}" for key in unused)
        if created:
            lines.append(f"  created by the call but missing from the file ({len(created)}):")
            lines.extend(f"    {full(key)}" for key in created)
        lines.append("Load a checkpoint of this model, or pass strict=False to load what fits.")
        return "\n".join(lines)


def _full(base, key):
    return f"{base}/{key}" if base else key


def _under(key, base):
    return not base or key.startswith(base + "/")
