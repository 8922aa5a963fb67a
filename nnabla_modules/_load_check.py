"""The check of a load when the module's first call ends (docs/concepts.md).

A module that cannot know its keys before its first call takes a load's
values into the registry; when that call ends, :class:`PendingLoad` compares
what the call used with what was loaded, and undoes the load if they differ
(or if the call failed).
"""

import warnings
import weakref
from collections import OrderedDict

from . import _registry
from ._naming import describe, join, prefix_of
from ._results import CheckpointError, LoadResult
from ._state import state_of
from ._tree import walk


def defer_check(module, pending):
    """Checks ``pending`` when the module's next call ends (two loads: one check)."""
    state = state_of(module)
    if state.pending is not None:  # two loads before the call: one check, both undone
        earlier = state.pending
        pending.keys = OrderedDict(list(earlier.keys.items()) + list(pending.keys.items()))
        # The earlier load's copies of old values undo both: one copy, however many loads.
        kept = {id(action.param) for action in earlier.undo if hasattr(action, "param")}
        pending.undo = earlier.undo + [
            action for action in pending.undo if id(getattr(action, "param", None)) not in kept]
        pending.strict = earlier.strict or pending.strict
        pending.known = earlier.known
        pending.hosts = earlier.hosts + pending.hosts
    state.defer_check(pending)


class PendingLoad:
    """A load into a module that could not know its keys: checked when its call ends.

    Until then the loaded keys belong to the module (saved, frozen, listed).
    The call must use every one of them and create nothing the file lacked;
    otherwise a strict load is undone, and a lenient one warns.
    """

    def __init__(self, keys, known, strict, source, undo, hosts):
        self.keys = keys  # relative key -> need_grad from the file
        self.known = known  # keys the module had before the load
        self.strict = strict
        self.source = source
        self.undo = undo
        # The modules whose first call could create keys then: only theirs count as
        # created by the call, not those of modules held after the load.
        self.hosts = [weakref.ref(host) for host in hosts]

    def verify(self, module):
        state_of(module).end_check()
        for _, current in walk(module):
            state_of(current).forget_loaded_credit()  # the call has shown who owns what
        owned = module.get_parameters(grad_only=False)
        unused = [key for key in self.keys if key not in owned]
        created = [key for key in self._hosts_keys(module)
                   if key in owned and key not in self.keys and key not in self.known]
        if not (unused or created):
            return
        if not self.strict:
            if unused:
                warnings.warn(
                    f"{describe(module)}: {len(unused)} key(s) loaded from {self.source} "
                    f"before the first call were not used by it: {', '.join(unused[:5])}"
                    f"{' ...' if len(unused) > 5 else ''}",
                    stacklevel=4,
                )
            return
        self._undo(module, created)
        result = LoadResult(created, unused, [])
        raise CheckpointError(self._report(module, unused, created), result)

    def _hosts_keys(self, module):
        """The keys, relative to ``module``, that the hosts' own code made."""
        hosts = {id(host) for host in (ref() for ref in self.hosts) if host is not None}
        keys = []
        for path, current in walk(module):
            if id(current) in hosts:
                base = join(path) + "/" if path else ""
                keys.extend(base + key for key in current.get_parameters(False, False))
        return keys

    def fail(self, module, error):
        """The first call after the load raised (a shape the file got wrong): undo the load.

        An ``Exception`` becomes a :class:`CheckpointError`; anything else
        (``KeyboardInterrupt``, ``SystemExit``) is raised again as it is.
        """
        state_of(module).end_check()
        for _, current in walk(module):
            state_of(current).forget_loaded_credit()
        owned = module.get_parameters(grad_only=False)
        self._undo(module, [k for k in owned if k not in self.keys and k not in self.known])
        if not isinstance(error, Exception):  # Ctrl-C, SystemExit: a stop request stays one
            note = f"{describe(module)}: the load of {self.source} before this call was undone."
            error.__notes__ = [*getattr(error, "__notes__", []), note]
            raise error
        raise CheckpointError(
            f"{describe(module)}: its first call after loading {self.source} failed, so the "
            f"load was undone (the values are as they were before it): {error}",
            LoadResult([], [], list(self.keys)),
        ) from error

    def _undo(self, module, created):
        scope = _registry.resolve(prefix_of(module), create=False)
        for action in reversed(self.undo):
            action()
        for key in created:
            if scope is not None:
                _registry.remove(scope, key)
        for _, current in walk(module):
            here = _registry.resolve(prefix_of(current), create=False)
            state_of(current).forget_claims_without_entry(here)

    def _report(self, module, unused, created):
        prefix = module.prefix

        def full(key):
            return f"{prefix}/{key}" if prefix else key

        lines = [
            f"{describe(module)}: {self.source}, loaded before the module's first call, "
            "does not fit what that call built; the load was undone (the values are as "
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
