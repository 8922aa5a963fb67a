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
import weakref

from . import _enumeration, _registry
from ._calls import SharedParameterWarning, add_hook, entering_scope, run_in_scope  # noqa: F401
from ._display import module_repr
from ._enumeration import ParameterIterator, orphans  # noqa: F401
from ._naming import describe, init_state, join, prefix_of  # noqa: F401
from ._state import NOT_GIVEN, ModuleBase
from ._tree import (
    CONTAINERS,
    adopt,
    adopt_attributes,
    adopt_within,
    children_of,
    constructing,
    refuse_nnabla_module,
    rename,
    walk,
)


class ModuleMeta(type):
    """Lets subclasses skip ``super().__init__()``, take ``name=``, override ``__call__``."""

    def __new__(mcls, cls_name, bases, namespace, **kwargs):
        call = namespace.get("__call__")
        if call is not None and not getattr(call, "_enters_scope", False):
            namespace["__call__"] = entering_scope(call)
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
        takes_name = _init_takes_name(cls)
        if takes_name and name is NOT_GIVEN:  # maybe given positionally
            name = _positional_name(cls, args)
        elif takes_name:
            kwargs["name"] = name
        # One thread at a time: another thread's module call changes NNabla's
        # current scope, and adoption renames modules that calls may be using.
        with _registry.lock:
            init_state(module, None if name is NOT_GIVEN else name)
            constructing.append(module)
            try:
                module.__init__(*args, **kwargs)
            finally:
                constructing.pop()
            adopt_attributes(module)
        return module


def with_name_parameter(signature):
    """``signature`` with a keyword-only ``name=None``, which every module accepts."""
    params = list(signature.parameters.values())
    if "name" in signature.parameters:
        return signature
    name = inspect.Parameter("name", inspect.Parameter.KEYWORD_ONLY, default=None)
    at = len(params) - bool(params and params[-1].kind is inspect.Parameter.VAR_KEYWORD)
    return signature.replace(parameters=params[:at] + [name] + params[at:])


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


class Module(ModuleBase, metaclass=ModuleMeta):
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
        if attr in MODULE_METHODS:
            raise AttributeError(
                f"{describe(self)}: the attribute {attr!r} would hide the module method "
                f"{attr}(); give it another name."
            )
        if not isinstance(value, (Module, *CONTAINERS)):
            refuse_nnabla_module(self, value, (attr,))
            object.__setattr__(self, attr, value)
            return
        previous = self.__dict__.get(attr, NOT_GIVEN)
        object.__setattr__(self, attr, value)
        self._module_state.children = None
        try:
            if isinstance(value, Module):
                adopt(self, value, (attr,))
            else:
                adopt_within(self, value, (attr,), set())
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
    def name(self):
        """The local name: given, attribute path, or automatic (``""``: no level)."""
        return join(self._module_state.local)

    @name.setter
    def name(self, name):
        rename(self, name)

    @property
    def prefix(self):
        """The full parameter-scope prefix, e.g. ``"res_unit/conv0"``."""
        return join(prefix_of(self))

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
        return _enumeration.parameters_of(self, grad_only, recursive, absolute)

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
        return ParameterIterator(self, self.get_parameters(grad_only, recursive).values())

    def named_modules(self):
        """Yields ``(relative prefix, module)`` for this module and its descendants."""
        for path, module in walk(self):
            yield join(path), module

    def modules(self):
        """Yields this module and its descendants (each once)."""
        for _, module in walk(self):
            yield module

    def named_children(self):
        """Yields ``(local name, child)`` for the modules this one holds."""
        yield from children_of(self)

    def children(self):
        """Yields the modules this one holds."""
        for _, child in children_of(self):
            yield child

    def release(self):
        """Removes the tree's parameters from NNabla's registry; returns the module.

        The next use creates fresh ones (PF's initializers), so this is how a
        named model is rebuilt from scratch in one process. Graphs already built
        keep their own references to the old arrays.
        """
        _enumeration.release(self)
        return self

    # --- forward hooks ----------------------------------------------------------

    def register_forward_hook(self, hook):
        """Calls ``hook(module, args, kwargs, output)`` after each call of this module.

        A hook that returns something other than ``None`` replaces the output.
        Hooks run outside the module's scope, after its call, in the order they
        were registered (those of :func:`register_module_forward_hook` first);
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

    def register_forward_pre_hook(self, hook):
        """Calls ``hook(module, args, kwargs)`` before each call of this module.

        A hook that returns an ``(args, kwargs)`` pair replaces the call's arguments.

        Args:
            hook (callable): ``hook(module, args, kwargs)``.

        Returns:
            HookHandle: see :meth:`register_forward_hook`.
        """
        return add_hook(self._module_state, "pre", hook)

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
        _enumeration.set_frozen(self, True)
        return self

    def unfreeze(self):
        """Undoes :meth:`freeze`; restores each parameter's own ``need_grad``."""
        _enumeration.set_frozen(self, False)
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
        return module_repr(self)


#: Module methods an instance attribute may not hide (``self.modules = [...]``).
MODULE_METHODS = frozenset(
    name for name, value in vars(Module).items() if not name.startswith("_") and callable(value)
)


def register_module_forward_hook(hook):
    """Calls ``hook(module, args, kwargs, output)`` after every module's call.

    Like PyTorch's function of the same name: for tools that watch a whole
    model (:func:`nnabla_modules.summary.summary` is built on it). See
    :meth:`Module.register_forward_hook`.

    Args:
        hook (callable): ``hook(module, args, kwargs, output)``; a return value
            other than ``None`` replaces the output.

    Returns:
        HookHandle: ``.remove()``, or a context manager.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> seq = nm.Sequential(nm.Linear(3, 4), nm.Linear(4, 2), name="seq")
        >>> called = []
        >>> with nm.register_module_forward_hook(lambda m, a, k, y: called.append(m.prefix)):
        ...     _ = seq(nn.Variable((1, 3)))
        >>> called
        ['seq/0', 'seq/1', 'seq']
    """
    return add_hook(None, "post", hook)


def register_module_forward_pre_hook(hook):
    """Calls ``hook(module, args, kwargs)`` before every module's call.

    Args:
        hook (callable): ``hook(module, args, kwargs)``; an ``(args, kwargs)``
            return value replaces the call's arguments.

    Returns:
        HookHandle: ``.remove()``, or a context manager.
    """
    return add_hook(None, "pre", hook)
