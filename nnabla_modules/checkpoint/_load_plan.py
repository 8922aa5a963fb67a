"""A load's plan: every key of a file matched to the module, checked before anything changes.

A key matches as it stands (relative to the module), or with the module's
full prefix, or as an NNabla ``nn.Module`` key (``@conv1/...``). Keys a module
cannot know before its first call are placed in the registry under its
prefix (load-then-build) and checked at that call (``_load_check.py``).
"""

from collections import OrderedDict, namedtuple

import numpy as np

from ..core import _registry
from ..core._naming import join, prefix_of, without_module_marks
from ..core._state import state_of
from ..core._tree import walk
from ._results import LoadResult


class Plan:
    """Everything a load will do, worked out before anything is changed."""

    def __init__(self):
        self.writes = []  # (registry Variable, StoredParameter): overwritten in place
        self.placements = []  # Placement: new registry entries (load-then-build)
        self.claims = []  # (owner, owner key, key, need_grad): unowned existing entries
        self.missing = []  # relative keys
        self.unexpected = []  # (file key, relative key)
        self.mismatched = []  # (relative key, reason)
        self.conflicts = []  # (relative key, [file keys])
        self.file_is_empty = False
        self.hosts = []  # modules of the tree that may still create keys at their first call
        self.known = set()  # the keys the module had before the load

    def result(self):
        return LoadResult(
            list(self.missing),
            [file_key for file_key, _ in self.unexpected],
            [key for key, _ in self.mismatched],
        )


Placement = namedtuple("Placement", "owner owner_key key path stored")


def make_plan(module, stored):
    known = module.get_parameters(grad_only=False)  # creates eager layers' parameters
    prefix = module.prefix
    territory = _Territory(module)
    scope = _layer_scope(module)
    carries_prefix = bool(prefix) and any(
        key not in known and _relative_guess(key, prefix, scope)[1] for key in stored
    )
    targets = OrderedDict()  # relative key -> [file keys]
    plan = Plan()
    plan.known = set(known)
    plan.hosts = territory.hosts
    plan.file_is_empty = not stored
    for file_key in stored:
        key = _match(file_key, known, prefix)
        if key is None:
            key, has_prefix = _relative_guess(file_key, prefix, scope)
            if carries_prefix and not has_prefix:
                # A whole-registry file: entries outside the prefix are other modules'.
                plan.unexpected.append((file_key, key))
                continue
        targets.setdefault(key, []).append(file_key)
    for key, file_keys in targets.items():
        if len(file_keys) > 1:
            plan.conflicts.append((key, file_keys))
        elif key in known:
            _plan_write(plan, key, known[key], stored[file_keys[0]])
        else:
            _plan_placement(plan, module, territory, key, file_keys[0], stored[file_keys[0]])
    plan.missing = [key for key in known if key not in targets]
    return plan


def _match(file_key, known, prefix):
    """The module's key that ``file_key`` names, or None.

    A relative key wins; a key is read as carrying the module's full prefix only
    when it matches nothing as it stands; then NNabla ``nn.Module`` keys.
    """
    if file_key in known:
        return file_key
    if prefix and file_key.startswith(prefix + "/"):
        stripped = file_key[len(prefix) + 1 :]
        if stripped in known:
            return stripped
    plain = without_module_marks(file_key)
    return plain if plain in known else None


def _relative_guess(file_key, prefix, layer_scope=None):
    """``(relative key, carried the prefix)`` for a key the module does not know yet.

    A layer's keys all start with its PF scope (``cbn/...``): for a layer named
    like its scope, ``cbn/W`` is read as it stands, not as ``W`` under ``cbn``.
    """
    if prefix and file_key.startswith(prefix + "/"):
        stripped = file_key[len(prefix) + 1 :]
        if layer_scope is None or stripped.startswith(layer_scope + "/"):
            return stripped, True
        if not file_key.startswith(layer_scope + "/"):
            return stripped, True
    return without_module_marks(file_key), False


def _layer_scope(module):
    """The PF scope name a layer's keys start with (``conv``, ``bn``...), or None."""
    function = getattr(module, "pf_function", None)
    return getattr(function, "__scope_name__", None)


def _plan_write(plan, key, param, stored):
    reason = _misfit(stored, param)
    if reason:
        plan.mismatched.append((key, reason))
    else:
        plan.writes.append((param, stored))


def _misfit(stored, param):
    """Why ``stored`` cannot be written into ``param``, or None."""
    dtype = value_dtype(param)
    if stored.shape != tuple(param.shape) or not _convertible(stored.dtype, dtype):
        return f"file {stored.shape} {stored.dtype}, module {tuple(param.shape)} {dtype}"
    return None


def _convertible(source, destination):
    # float64 -> float32 and int -> float are fine; float -> int or text are not
    return source.kind in "fiu" and np.can_cast(source, destination, casting="same_kind")


def value_dtype(param):
    """The dtype a parameter's values are read and written in."""
    try:
        dtype = param.data.dtype
    except RuntimeError:  # an array never written: NNabla's parameters are float32
        return np.dtype(np.float32)
    # Under type_config="half" the registry array may be cast to float16 for a
    # graph; its float32 array stays the master copy, so read and write that.
    return np.dtype(np.float32) if dtype == np.float16 else np.dtype(dtype)


class _Territory:
    """Which module of the tree owns a key the tree does not know yet."""

    def __init__(self, module):
        self.modules_at = {}
        self.hosts = []
        for path, current in walk(module):
            self.modules_at.setdefault(tuple(path), []).append(current)
            if may_create_keys(current):
                self.hosts.append(current)
        self.depth = max(map(len, self.modules_at), default=0)

    def deepest(self, key):
        """``(path, modules)``: the deepest modules of the tree on the key's path.

        From the tree's depth up: a file's key may nest thousands of levels.
        """
        levels = tuple(key.split("/"))
        for depth in range(min(len(levels) - 1, self.depth), -1, -1):
            modules = self.modules_at.get(levels[:depth])
            if modules:
                return levels[:depth], modules
        return (), []

    def owner(self, key):
        """``(path, module)`` of the module a new entry at ``key`` belongs to, or None.

        The deepest module on the key's path decides: one that cannot know its
        parameters yet takes the entry; one that knows them rejects it.
        """
        path, modules = self.deepest(key)
        return next(((path, m) for m in modules if may_create_keys(m)), None)


def unresolved(module):
    """True while a module cannot know its parameters, which appear at its first call."""
    if state_of(module).claims:
        return False
    if _is_layer(module):
        return True  # a layer whose input sizes were not given
    # PF code in __call__ and no child modules: the smallest refactor of PF code, whose
    # parameters appear at the first call. A module with children gets its parameters
    # from them, and from its own PF code if it has any: see may_run_pf_code.
    return not _has_children(module)


def may_create_keys(module):
    """True while a module's first call may still create keys of its own code."""
    return unresolved(module) or may_run_pf_code(module)


def may_run_pf_code(module):
    """A module with children whose code has not run: PF code of its own may create keys
    under it at its first call, as the children's are known (a load places them)."""
    state = state_of(module)
    return (_has_code(module) and not state.ran and not state.claims
            and not _is_layer(module) and _has_children(module))


def _has_code(module):
    """A ``__call__`` or ``forward`` of a user's class, or a library module whose calls run
    code beside its children's (a ``Sequential`` holding a plain callable)."""
    return module._may_run_pf_code or any(
        "__call__" in vars(base) or "forward" in vars(base)
        for base in type(module).__mro__
        if not base.__module__.startswith("nnabla_modules.")
    )


def _is_layer(module):
    return getattr(module, "_create_parameters", None) is not None


def _has_children(module):
    return any(True for _ in module.children())


def _plan_placement(plan, module, territory, key, file_key, stored):
    found = territory.owner(key)
    if found is None:
        plan.unexpected.append((file_key, key))
        return
    owner_path, owner = found
    owner_key = join(key.split("/")[len(owner_path) :])
    path = prefix_of(module) + tuple(key.split("/"))
    existing, blocked = _registry_entry(path)
    if blocked:
        plan.mismatched.append((key, blocked))
    elif existing is None:
        plan.placements.append(Placement(owner, owner_key, key, path, stored))
    else:  # an entry under the prefix that no module of the tree claimed yet
        before = len(plan.mismatched)
        _plan_write(plan, key, existing, stored)
        if len(plan.mismatched) == before:
            plan.claims.append((owner, owner_key, key, existing.need_grad))


def _registry_entry(path):
    """``(Variable or None, reason it cannot be placed or None)`` at an absolute path."""
    scope = _registry.root_scope()
    for depth, name in enumerate(path[:-1]):
        scope = scope.get(name)
        if scope is None:
            return None, None
        if not isinstance(scope, dict):
            return None, f"the registry holds a parameter at {join(path[: depth + 1])!r}"
    entry = scope.get(path[-1])
    if isinstance(entry, dict):
        return None, f"the registry holds a scope at {join(path)!r}"
    return entry, None
