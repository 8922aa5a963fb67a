"""The ``Module`` base class: an object that owns a parameter-scope prefix.

Calling a module enters ``nn.parameter_scope(prefix)`` at an absolute path and
runs the module's code there, so everything NNabla's parametric functions
create lands in NNabla's own registry under the prefix. This file holds the
public class; the machinery lives in small files, one job each
(docs/architecture.md draws the map):

- ``_naming.py``: the naming rules and the code that names modules;
- ``_state.py``: the per-module bookkeeping;
- ``_tree.py``: adoption, replacement and walks of the module tree;
- ``_calls.py``: scope entry on each call, ownership observed at the registry,
  forward hooks;
- ``_enumeration.py`` and ``_display.py``: listing, freezing, ``repr``;
- ``_registry.py``: NNabla's registry itself.
"""

import inspect
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable, Iterator, List, Optional, Tuple, TypeVar

import nnabla as nn

from ._delegates import CheckpointMethods, ToolMethods
from .core import _enumeration, _registry
from .core._calls import SharedParameterWarning, entering_scope, run_in_scope  # noqa: F401
from .core._display import module_repr
from .core._enumeration import ParameterIterator, orphans  # noqa: F401
from .core._habits import add_per_process_methods
from .core._hooks import (  # noqa: F401
    HookHandle,
    add_hook,
    register_module_forward_hook,
    register_module_forward_pre_hook,
)
from .core._naming import (  # noqa: F401
    describe,
    init_state,
    init_takes_name,
    join,
    positional_name,
    prefix_of,
    with_name_parameter,
)
from .core._state import NOT_GIVEN, ModuleBase, ModuleState
from .core._tree import (
    CONTAINERS,
    adopt,
    adopt_attributes,
    adopt_within,
    check_holding,
    children_of,
    rename,
    walk,
)
from .core._variables import hold as hold_variable
from .core._variables import refuse_nnabla_module

M = TypeVar("M", bound="Module")
_MODULE_NAMES: set = set()  # filled once Module exists: its own names are never wrapped

class ModuleMeta(type):
    """Lets subclasses skip ``super().__init__()``, take ``name=``, override ``__call__``."""

    def __new__(mcls, cls_name, bases, namespace, **kwargs):
        call = namespace.get("__call__")
        if call is not None and not getattr(call, "_enters_scope", False):
            namespace["__call__"] = entering_scope(call)
        for attr, value in list(namespace.items()):
            if _is_users_method(attr, value, namespace):
                namespace[attr] = entering_scope(value, method=True)
        return super().__new__(mcls, cls_name, bases, namespace, **kwargs)

    @property
    def __signature__(cls):
        """The constructor's signature as users call it: ``__init__``'s, plus ``name=``."""
        try:
            init = inspect.signature(cls.__init__)
        except (TypeError, ValueError):
            return None
        return with_name_parameter(init.replace(parameters=list(init.parameters.values())[1:]))

    def __call__(cls, /, *args, name=NOT_GIVEN, **kwargs):  # "/": a "cls" keyword is the init's
        if cls.__new__ is object.__new__:
            module = object.__new__(cls)
        else:
            module = cls.__new__(cls, *args, **kwargs)
        takes_name = init_takes_name(cls)
        if takes_name and name is NOT_GIVEN:  # maybe given positionally
            name = positional_name(cls, args)
        elif takes_name:
            kwargs["name"] = name
        # One thread at a time: another thread's module call changes NNabla's
        # current scope, and adoption renames modules that calls may be using.
        with _registry.lock:
            init_state(module, None if name is NOT_GIVEN else name)
            _registry.running.constructing.append(module)
            try:
                module.__init__(*args, **kwargs)
            finally:
                _registry.running.constructing.pop()
            adopt_attributes(module)
        return module


def _is_users_method(attr, value, namespace):
    """A method of a user's class, run in the module's scope as its call is
    (docs/concepts.md, rule 2): ``forward`` and the public methods it defines
    beyond ``Module``'s own, so PF code in ``encode(x)`` lands under the prefix."""
    return (
        inspect.isfunction(value)
        and not getattr(value, "_enters_scope", False)
        and (attr == "forward" or not attr.startswith("_") and attr not in _MODULE_NAMES)
        and not namespace.get("__module__", "").startswith("nnabla_modules.")
        # defined in the class body, not a function kept as a class attribute
        and value.__qualname__ == f"{namespace.get('__qualname__')}.{attr}"
    )


class Module(ModuleBase, CheckpointMethods, ToolMethods, metaclass=ModuleMeta):
    """Base class of every module: an object that owns a parameter-scope prefix.

    Subclass it like a PyTorch ``nn.Module``: create the layers in
    ``__init__`` (no ``super().__init__()`` call needed) and compute in
    ``__call__`` (or ``forward``). Calling the module enters its parameter
    scope, so both its layer modules and any ``PF.*`` code written directly in
    ``__call__`` create their parameters under its prefix.

    Every module accepts ``name=`` at construction, whether or not its
    ``__init__`` declares it; declare it keyword-only (``*, name=None``) so
    that type checkers accept it too. See :doc:`/concepts` for the naming rules.

    Example:

        >>> import nnabla as nn
        >>> import nnabla.functions as F
        >>> import nnabla_modules as nm
        >>> class MLP(nm.Module):
        ...     def __init__(self, n_in, n_hidden, n_out, *, name=None):
        ...         self.fc1 = nm.Linear(n_in, n_hidden)
        ...         self.fc2 = nm.Linear(n_hidden, n_out)
        ...     def __call__(self, x):
        ...         return self.fc2(F.relu(self.fc1(x)))
        >>> mlp = MLP(4, 8, 2, name="mlp")
        >>> list(mlp.get_parameters())
        ['fc1/affine/W', 'fc1/affine/b', 'fc2/affine/W', 'fc2/affine/b']
    """

    #: Warn when two unnamed PF calls in one call share a weight (layers make one PF call).
    _module_state: ModuleState  # set by the metaclass before __init__ runs
    training: bool  # the mode: see train() and eval()
    _checks_shared_pf_calls = True
    #: True: lists filled after assignment may hold new children, so they are looked
    #: up on every walk; layers set False and cache theirs.
    _children_may_grow = True
    _may_run_pf_code = False  #: True: PF code beside its children's; see checkpoint/_load_plan.py

    def __init__(self, name: Optional[str] = None) -> None:
        """Lets ``__init__`` call ``super().__init__()`` or ``super().__init__(name=name)``."""
        if name is not None and name != self._module_state.given_name:
            self.name = name

    def __setattr__(self, attr, value):
        if attr in MODULE_METHODS:
            raise AttributeError(
                f"{describe(self)}: the attribute {attr!r} would hide the module method "
                f"{attr}(); give it another name."
            )
        if not isinstance(value, (Module, *CONTAINERS)):
            refuse_nnabla_module(self, value, (attr,))
            hold_variable(self, attr, value)  # sets it
            return
        check_holding(self, attr, value)
        previous = self.__dict__.get(attr, NOT_GIVEN)
        object.__setattr__(self, attr, value)
        self._module_state.children = None
        try:
            adopt(self, value, (attr,)) if isinstance(value, Module) else adopt_within(
                self, value, (attr,), set())
        except BaseException:
            if previous is NOT_GIVEN:
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
    def name(self) -> str:
        """The local name: given, attribute path, or automatic (``""``: no level)."""
        return join(self._module_state.local)

    @name.setter
    def name(self, name: Optional[str]) -> None:
        rename(self, name)

    @property
    def prefix(self) -> str:
        """The full parameter-scope prefix, e.g. ``"res_unit/conv0"``."""
        return join(prefix_of(self))

    # --- enumeration -----------------------------------------------------------

    def get_parameters(
        self, grad_only: bool = True, recursive: bool = True, absolute: bool = False
    ) -> "OrderedDict[str, nn.Variable]":
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
            OrderedDict: key -> the registry's own ``nn.Variable``, in
            the tree's order: the module's own entries, then its children's in
            the order it holds them; calls and loads never change it.

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
        return _enumeration.parameters_of(self, grad_only, recursive, absolute)

    def named_parameters(
        self, grad_only: Optional[bool] = None, recursive: bool = True
    ) -> Iterator[Tuple[str, nn.Variable]]:
        """Yields ``(key, Variable)`` pairs: PyTorch's parameters, frozen ones too.

        Args:
            grad_only (bool or None): ``None``: as PyTorch lists them, every weight
                its code made trainable, frozen (:meth:`freeze`) or not, never the
                batch-norm running statistics, so ``zip(target.parameters(),
                model.parameters())`` pairs layer with layer whatever is frozen.
                ``True`` or ``False``: as :meth:`get_parameters`.
            recursive (bool): Include the descendants'; see :meth:`get_parameters`.
        """
        if grad_only is None:
            return _enumeration.pytorch_parameters(self, recursive)
        return iter(self.get_parameters(grad_only, recursive).items())

    def parameters(
        self, grad_only: Optional[bool] = None, recursive: bool = True
    ) -> Iterator[nn.Variable]:
        """The Variables of :meth:`named_parameters`, without their keys: PyTorch's spelling.

        Takes ``grad_only`` and ``recursive`` as it does. For loops over the weights (a
        Polyak update); solvers take ``get_parameters()``: this is a ``TypeError`` there.

        Args:
            grad_only (bool or None): See :meth:`named_parameters`.
            recursive (bool): Include the descendants'; see :meth:`get_parameters`.

        Example:
            >>> import nnabla_modules as nm
            >>> fc = nm.Linear(4, 3, name="fc")
            >>> sum(p.size for p in fc.freeze().parameters())
            15
        """
        pairs = self.named_parameters(grad_only, recursive)
        return ParameterIterator(self, (param for _, param in pairs))

    def named_modules(self) -> Iterator[Tuple[str, "Module"]]:
        """Yields ``(relative prefix, module)`` for this module and its descendants.

        A ``name=""`` module repeats its parent's prefix (docs/concepts.md).
        """
        for path, module in walk(self):
            yield join(path), module

    def modules(self) -> Iterator["Module"]:
        """Yields this module and its descendants (each once)."""
        for _, module in walk(self):
            yield module

    def named_children(self) -> Iterator[Tuple[str, "Module"]]:
        """Yields ``(local name, child)`` for the modules this one holds."""
        yield from children_of(self)

    def children(self) -> Iterator["Module"]:
        """Yields the modules this one holds."""
        for _, child in children_of(self):
            yield child

    def release(self: M) -> M:
        """Removes the tree's parameters from NNabla's registry; returns the module.

        The next use creates fresh ones (PF's initializers), so this is how a
        named model is rebuilt from scratch in one process. Graphs already built
        keep their own references to the old arrays.
        """
        _enumeration.release(self)
        return self

    # --- forward hooks ----------------------------------------------------------

    def register_forward_hook(self, hook: Callable[..., Any]) -> HookHandle:
        """Calls ``hook(module, args, kwargs, output)`` after each call of this module.

        A hook that returns something other than ``None`` replaces the output.
        Hooks run outside the module's scope, after its call (PF code in a hook
        belongs to the module whose call surrounds it), in the order they were
        registered (those of :func:`register_module_forward_hook` first);
        ``super().__call__`` chains are one call. See :doc:`/tools`.

        Args:
            hook (callable): ``hook(module, args, kwargs, output)``.

        Returns:
            HookHandle: ``.remove()`` removes the hook; as a context manager it
            removes the hook when the block ends.

        Example:
            >>> import nnabla as nn
            >>> import nnabla_modules as nm
            >>> fc = nm.Linear(3, 2, name="fc")
            >>> shapes = []
            >>> with fc.register_forward_hook(lambda m, a, k, y: shapes.append(y.shape)):
            ...     _ = fc(nn.Variable((4, 3)))
            >>> shapes
            [(4, 2)]
        """
        return add_hook(self._module_state, "post", hook)

    def register_forward_pre_hook(self, hook: Callable[..., Any]) -> HookHandle:
        """Calls ``hook(module, args, kwargs)`` before each call of this module.

        A hook that returns an ``(args, kwargs)`` pair replaces the call's arguments.

        Args:
            hook (callable): ``hook(module, args, kwargs)``.

        Returns:
            HookHandle: see :meth:`register_forward_hook`.
        """
        return add_hook(self._module_state, "pre", hook)

    # --- modes -------------------------------------------------------------------

    def train(self: M, mode: bool = True) -> M:
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

    def eval(self: M) -> M:
        """Inference mode for the whole tree; returns the module."""
        return self.train(False)

    def freeze(self: M) -> M:
        """Stops gradients for the tree's parameters, in the registry itself.

        Sets ``need_grad=False`` on the registry's Variables, so solvers given
        ``get_parameters()`` and weight decay skip them, and graphs built after
        this line compute no gradient for them. Returns the module.
        """
        _enumeration.set_frozen(self, True)
        return self

    def unfreeze(self: M) -> M:
        """Undoes :meth:`freeze`; restores each parameter's own ``need_grad``."""
        _enumeration.set_frozen(self, False)
        return self

    # --- display -------------------------------------------------------------------

    def extra_repr(self) -> str:
        """Text inside the parentheses of ``repr``; layers show their arguments."""
        return ""

    def _held_in_order(self):
        """``(attribute, value)`` pairs in the order the module holds them: its children's
        order, which listing follows; a container puts its items in its own order."""
        return list(vars(self).items())

    def _display_steps(self) -> Optional[List[Tuple[str, Any]]]:
        """``(label, item)`` pairs ``repr`` lists instead of the child modules, or None."""
        return None

    def __repr__(self) -> str:
        return module_repr(self)


if not TYPE_CHECKING:  # type checkers would take them for methods that exist
    add_per_process_methods(Module)

#: Names of ``Module`` a user's class may override without its scope (``extra_repr``, ``train``).
_MODULE_NAMES.update(dir(Module))

#: Module methods an instance attribute may not hide (``self.modules = [...]``).
MODULE_METHODS = frozenset(
    name for name, value in vars(Module).items() if not name.startswith("_") and callable(value)
)

