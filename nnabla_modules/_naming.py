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

import re
import weakref

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_case(class_name):
    """``ResUnit`` -> ``res_unit``, ``LSTMCell`` -> ``lstm_cell``, ``Conv2d`` -> ``conv2d``."""
    return _CAMEL_BOUNDARY.sub("_", class_name).lower()


def check_name(name, what):
    """Validates a given name or a container key; returns it as a string."""
    if not isinstance(name, str):
        raise TypeError(f"{what}: a module name must be a str, got {type(name).__name__}")
    if "/" in name:
        raise ValueError(
            f"{what}: the name {name!r} contains '/'. A name is one level of the "
            "parameter scope; nest modules (or parameter scopes) to add levels."
        )
    return name


def join(path):
    return "/".join(path)


class RootNames:
    """Prefixes held by live root modules, for unique automatic names.

    An auto-named root takes the first of ``base``, ``base_1``, ``base_2``, ...
    that no live root holds in its scope. A module that becomes a child gives
    its prefix back; a dead module's prefix is freed with it.
    """

    def __init__(self):
        self._holders = {}  # prefix tuple -> WeakSet of modules

    def taken(self, prefix):
        # Iterating skips references whose module is dying (its finalizer may be
        # running before the set has dropped it).
        return any(True for _ in self._holders.get(prefix, ()))

    def allocate(self, scope_path, base):
        candidate, index = base, 0
        while self.taken(scope_path + (candidate,)):
            index += 1
            candidate = f"{base}_{index}"
        return candidate

    def hold(self, prefix, module):
        holders = self._holders.get(prefix)
        if holders is None:
            holders = self._holders[prefix] = weakref.WeakSet()
        holders.add(module)

    def live(self):
        """Every live root module."""
        return [module for holders in list(self._holders.values()) for module in list(holders)]

    def release(self, prefix, module):
        holders = self._holders.get(prefix)
        if holders is not None:
            holders.discard(module)
            if not holders:
                del self._holders[prefix]


root_names = RootNames()
