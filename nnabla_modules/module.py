"""The ``Module`` base class: an object that owns a parameter-scope prefix.

Calling a module enters ``nn.parameter_scope(prefix)`` at an absolute path and
runs the module's code there, so everything NNabla's parametric functions
create lands in NNabla's own registry under the prefix. The naming rules live
in :mod:`nnabla_modules._naming`; registry access in
:mod:`nnabla_modules._registry`.
"""

import functools
import inspect
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
        "claims",  # OrderedDict relative key -> need_grad its creator asked for
        "scope",  # the registry dict entered by the last call
        "relpaths",  # id(dict) -> (dict, "relative/path/") below ``scope``
        "frozen",
        "prefix",
        "prefix_epoch",
        "call_keys",  # keys claimed in the running call (None: not checked)
        "warned_keys",
        "built_in_call",  # constructed while another module's call was running
        "finalizer",  # marks an auto-named root's registry entries stale when it dies
        "children",  # cached children of a module whose children cannot grow unseen
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

    def parent_module(self):
        return self.parent() if self.parent is not None else None

    def claim(self, module, scope, name, need_grad, created_by_pf=True):
        """Records that this module's own code created or used ``scope[name]``."""
        if scope is self.scope:
            key = name
        else:
            hit = self.relpaths.get(id(scope))
            if hit is None or hit[0] is not scope:
                path = _registry.find_subscope(self.scope, scope)
                if path is None:
                    return  # not under this module's prefix: not its entry
                hit = self.relpaths[id(scope)] = (scope, join(path) + "/")
            key = hit[1] + name
        if created_by_pf or key not in self.claims:
            # PF's request is the parameter's own flag; get_parameter and
            # set_parameter (PF uses them inside) see a frozen module's False.
            self.claims[key] = need_grad
        if created_by_pf and self.call_keys is not None:
            self._check_shared_pf_call(module, key)

    def _check_shared_pf_call(self, module, key):
        """Warns when two unnamed PF calls of one kind in one call share ``key``."""
        if key not in self.call_keys:
            self.call_keys.add(key)
            return
        scope, _, leaf = key.partition("/")
        if "/" in leaf or scope not in _registry.PF_SCOPE_NAMES or scope in self.warned_keys:
            return
        self.warned_keys = {*self.warned_keys, scope}
        warnings.warn(
            f"{describe(module)}: two unnamed PF calls in one call both use the scope "
            f"'{scope}/', so they share one set of weights (PF's rule). Give each call its "
            "own name= to keep them apart, or the same name= to share on purpose.",
            SharedParameterWarning,
            stacklevel=6,  # the user's PF call: past this, claim, the hook and PF's wrapper
        )


class SharedParameterWarning(UserWarning):
    """Two unnamed PF calls of one kind inside one module call share their weights."""


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
            _init_state(module, _positional_name(cls, args))
        else:
            _init_state(module, None if name is _NOT_GIVEN else name)
            if takes_name:
                kwargs["name"] = name
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
        raise RuntimeError(
            f"{what}: the active NNabla parameter scope is not part of the registry "
            "(a custom scope= dict, or one removed by nn.clear_parameters()); "
            "construct modules outside such a scope."
        )
    return path


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
    if state.scope is not None and prefix and not root_names.taken(prefix):
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
    (a child called from its parent's call) costs a few dict lookups.
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
        if caller is None:
            _registry.owner[0] = threading.get_ident()
            _registry.install_hook()
        active.append(module)
        _parameter.current_scope = scope
        outer_call_keys = state.call_keys
        if module._checks_shared_pf_calls:
            state.call_keys = set()
        try:
            return fn(module, *args, **kwargs)
        finally:
            state.call_keys = outer_call_keys
            _parameter.current_scope = previous
            active.pop()
            if caller is None:
                _registry.remove_hook()
                _registry.owner[0] = None
    finally:
        lock.release()


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
    if caller is not None and state.parent is None:
        _adopt_from_callers(module)  # e.g. a list filled after the parent was built
        if state.parent is None and state.built_in_call and state.given_name is None:
            raise _temporary_module_error(module, caller)
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


def _adopt(parent, child, path):
    state = child._module_state
    if state.parent is not None or child in _constructing or _is_ancestor(child, parent):
        return  # held before (shared), or a back-reference up the tree
    old_prefix = _prefix(child)
    if _has_parameters(child):
        raise RuntimeError(
            f"{describe(child)} already has parameters; holding it as "
            f"{join(str(p) for p in path)!r} in {describe(parent)} would move them to "
            "a new prefix. Hold the module in its parent before its first use, or "
            "construct a new one and load this one's weights into it "
            "(new.load_parameters(path) after old.save_parameters(path))."
        )
    levels = tuple(check_name(str(p), f"{describe(parent)}: holding a module", True) for p in path)
    root_names.release(old_prefix, child)
    _stop_forgetting(state)
    # A weak reference: no parent<->child cycle, so auto-named roots are freed
    # (and their names reused) deterministically, not when the collector runs.
    state.parent = weakref.ref(parent)
    given = state.given_name
    state.local = levels if given is None else ((given,) if given else ())
    _naming_epoch[0] += 1


def _is_ancestor(candidate, module):
    while module is not None:
        if module is candidate:
            return True
        module = module._module_state.parent_module()
    return False


def _has_parameters(module):
    return any(m._module_state.claims for _, m in _walk(module))


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

    def __setattr__(self, attr, value):
        object.__setattr__(self, attr, value)
        if isinstance(value, (Module, *_CONTAINERS)):
            self._module_state.children = None
        if isinstance(value, Module):
            _adopt(self, value, (attr,))
        elif isinstance(value, _CONTAINERS):
            _adopt_within(self, value, (attr,), set())

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

    def get_parameters(self, grad_only=True, recursive=True):
        """The module's parameters, keyed relative to its prefix.

        Creates them first where the module can (layers given input sizes).

        Args:
            grad_only (bool): Only parameters with ``need_grad=True`` (not the
                batch-norm running statistics, not frozen weights).
            recursive (bool): Include the descendants' parameters; ``False``
                gives only what this module's own code created.

        Returns:
            OrderedDict: key -> the registry's own ``nn.Variable``, in registry
            (creation) order.
        """
        tree = list(_walk(self))
        _create_parameters(self, tree)
        scope = _registry.resolve(_prefix(self), create=False)
        params = OrderedDict()
        if scope is None:
            return params
        trie = _registry.make_trie(_claimed_keys(self, recursive, tree))
        for key, param in _registry.iter_claimed(scope, trie):
            if not grad_only or param.need_grad:
                params[key] = param
        return params

    def named_parameters(self, grad_only=True, recursive=True):
        """Yields ``(key, Variable)`` pairs; see :meth:`get_parameters`."""
        yield from self.get_parameters(grad_only, recursive).items()

    def parameters(self, grad_only=True, recursive=True):
        """Yields the Variables of :meth:`get_parameters`."""
        yield from self.get_parameters(grad_only, recursive).values()

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
            _registry.remove(scope, key)
        for _, module in _walk(self):
            module._module_state.claims.clear()
        return self

    # --- modes -------------------------------------------------------------------

    def train(self, mode=True):
        """Sets ``training`` on the whole tree; returns the module."""
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
            for key, need_grad in state.claims.items():
                param = _registry.lookup(scope, key)
                if _registry.is_variable(param):
                    param.need_grad = need_grad and not frozen
        return self

    # --- checkpoints (nnabla_modules.checkpoint) ------------------------------------

    def save_parameters(self, path, grad_only=False, extension=None):
        """Saves this module's parameters, keys relative to its prefix; see :doc:`/checkpoints`."""
        from . import checkpoint

        return checkpoint.save_parameters(self, path, grad_only=grad_only, extension=extension)

    def load_parameters(self, path, strict=True, extension=None):
        """Loads a checkpoint into this module's Variables in place; see :doc:`/checkpoints`."""
        from . import checkpoint

        return checkpoint.load_parameters(self, path, strict=strict, extension=extension)

    def state_dict(self, grad_only=False):
        """An OrderedDict of numpy copies of the parameters, keys relative to the prefix."""
        from . import checkpoint

        return checkpoint.state_dict(self, grad_only=grad_only)

    def load_state_dict(self, state, strict=True):
        """Loads an in-memory ``{key: array}`` with the rules of :meth:`load_parameters`."""
        from . import checkpoint

        return checkpoint.load_state_dict(self, state, strict=strict)

    # --- tools (nnabla_modules.summary, nnabla_modules.clone) -------------------------

    def summary(self, *inputs, **kwargs):
        """A table of the module tree on ``inputs`` (Variables or shapes); see :doc:`/tools`."""
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
        for key in current._module_state.claims:
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
