"""The bookkeeping of one module, kept apart from the user's attributes.

Every module holds one :class:`ModuleState` as ``module._module_state``. The
files of the module system read and change it through its methods and through
the functions of the file that owns each part: naming (``_naming.py``), the
tree (``_tree.py``), calls and ownership (``_calls.py``), enumeration and
freezing (``_enumeration.py``); checkpoints use ``credit_loaded``,
``watch`` and ``unwatch``.
"""

import itertools
from collections import OrderedDict
from typing import Any, Dict

from . import _registry

_serials = itertools.count()

#: A default that no caller can pass.
NOT_GIVEN = object()


#: id -> registry Variable of every entry a frozen module owns (see ``freeze``); held
#: here, so an id stays unique while it is listed.
frozen_entries: Dict[int, Any] = {}
#: Bumped whenever a module starts or stops owning a key: caches of keys compare it.
ownership_epoch = [0]


class ModuleBase:
    """The base of :class:`~nnabla_modules.Module`, for ``isinstance`` below ``module.py``."""

    __slots__ = ()


class ModuleState:
    """Bookkeeping of one module, kept apart from the user's attributes."""

    __slots__ = (
        "given_name",  # the name= given (None: automatic)
        "parent",  # weakref to the module that first held this one; None: a root
        "local",  # tuple: local name as scope levels (() for name="")
        "construction_path",  # tuple: NNabla scope active at construction
        "serial",  # the order of construction: a module older than its new parent existed alone
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
        "slots",  # attribute path -> (weakref, ModuleState) of the child adopted there
        "pending",  # loads whose keys this module's calls check (_load_check.py), or None
        "provisional",  # key -> need_grad: loaded entries credited until that check
        "retired",  # why this module may not run: it was replaced in its parent
        "kept",  # a replaced module's weights and claims, restored when it is held again
        "foreign",  # id -> (weakref, path) of other models' modules it holds (_tree.py)
        "early",  # (its tree's calls then, dicts) of a layer created before its first call
        "outer_calls",  # calls of this module made while no module call was running
        "ran",  # its code has run in a call: its own PF code's keys are known
        "parent_state",  # the parent's ModuleState: a kept child's prefix outlives the parent
        "hooks",  # the forward hooks of its calls, the global ones included (_calls.py)
        "key_cache",  # (epochs, trie, key count) of get_parameters (_enumeration.py)
        "variables",  # attribute -> True: the nn.Variable attributes that are parameters
        "unregistered",  # True until those are in the registry (_variables.py)
        "places_checked",  # the outermost call in which its children's places were checked
    )

    def __init__(self, given_name, construction_path):
        self.given_name = given_name
        self.parent = None
        self.local = ()
        self.construction_path = construction_path
        self.serial = next(_serials)
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
        self.kept = None
        self.foreign = {}
        self.early = None
        self.outer_calls = 0
        self.ran = False
        self.parent_state = None
        self.hooks = None
        self.key_cache = None
        self.variables = {}
        self.unregistered = False
        self.places_checked = -1

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
            hit = self.relpaths[id(scope)] = (scope, "/".join(path) + "/")
        return hit[1] + name

    def remember_scope(self, scope):
        """The registry dict of the module's prefix, entered by its last call."""
        if scope is not self.scope:
            self.scope = scope
            self.relpaths = {}

    # --- for checkpoints (_load_check.py, checkpoint.py) -------------------------

    def credit_loaded(self, key, need_grad):
        """Credits a loaded entry to this module until the check at the next call."""
        self.provisional[key] = need_grad
        ownership_epoch[0] += 1

    def watch(self, pending):
        """This module's calls check the load ``pending`` (``_load_check.py``)."""
        self.pending = (self.pending or ()) + (pending,)

    def unwatch(self, pending):
        """This module's calls no longer check ``pending``."""
        self.pending = tuple(p for p in self.pending or () if p is not pending) or None

    def forget_loaded_credit(self):
        self.provisional.clear()
        ownership_epoch[0] += 1

    def forget_claims_without_entry(self, scope):
        """Drops the claims whose entry under ``scope`` (the prefix's dict) is gone."""
        for key in list(self.claims):
            if scope is None or not _registry.is_variable(_registry.lookup(scope, key)):
                del self.claims[key]
                ownership_epoch[0] += 1


def new_state_like(state):
    """A fresh state for a copy of the module of ``state``: same name, nothing owned yet."""
    fresh = ModuleState(state.given_name, state.construction_path)
    fresh.local = state.local
    fresh.variables = dict(state.variables)
    fresh.unregistered = bool(fresh.variables)
    return fresh


def copy_ownership(source, copy, checked_later=False):
    """The copy owns what its source owns, and is frozen where the source is.

    The copy's code creates some entries only at its first call (values are
    placed for it): owning them from the start, it saves and lists them now.
    ``checked_later``: the copy's calls check a load made into the source before
    its first call (clone.py), so the loaded entries stay credited until then.
    """
    copy.frozen = source.frozen
    for key in source.owned():
        if key in copy.claims:
            continue
        if checked_later and key not in source.claims:
            copy.provisional[key] = source.provisional[key]
        else:
            copy.claims[key] = source.requested_need_grad(key)
    ownership_epoch[0] += 1


def give_state(module, state):
    """Gives a module made without the metaclass (a copy) its state."""
    object.__setattr__(module, "_module_state", state)


def state_of(module):
    """The :class:`ModuleState` of ``module``: how other files reach it."""
    return module._module_state
