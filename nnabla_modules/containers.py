"""Containers: ``Sequential``, ``ModuleList`` and ``ModuleDict``.

They are the explicit forms of what the naming rules already find in plain
lists and dicts: a container's items are named by their index (``0``,
``1``, ...) or key directly under the container's prefix, so
``self.body = Sequential(conv, bn)`` names them ``body/0/...`` and
``body/1/...`` and ``self.heads = ModuleDict(cls=...)`` names ``heads/cls``.

Each item is stored as an attribute named by its index or key: the
attribute scan that names every module's children names a container's
items too, with no rule of their own. An item keeps its key for life, as its
weights are keyed by it: deleting or inserting items renumbers nothing, and
a new item takes the first free number from the length on.
"""

from collections import OrderedDict
from typing import Any, Callable, Iterable, Iterator, List, Mapping, Optional, Tuple, Union

from .core._naming import check_name
from .module import Module, describe


class _Container(Module):
    """Keeps items as attributes named by their keys, in insertion order."""

    _keys: List[str]  # set by _init_items, past Module's __setattr__

    def _init_items(self):
        object.__setattr__(self, "_keys", [])

    def _set_item(self, key, value):
        key = check_name(str(key), describe(self), key=True)
        if key not in self._keys:
            if hasattr(type(self), key) or key.startswith("_") or key == "training":
                raise KeyError(
                    f"{describe(self)}: {key!r} is an attribute of {type(self).__name__}; "
                    "give the item another key"
                )
            self._keys.append(key)
        setattr(self, key, value)

    def _item(self, key):
        if key not in self._keys:
            raise KeyError(f"{describe(self)}: no item {key!r}; the keys are {self._keys}")
        return getattr(self, key)

    def _held_in_order(self):
        held, keys = vars(self), set(self._keys)
        return [(key, held[key]) for key in self._keys] + [
            (attr, value) for attr, value in held.items() if attr not in keys]

    def _next_key(self):
        """The first free number from the length on: keys of items stay theirs."""
        number = len(self._keys)
        while str(number) in self._keys:
            number += 1
        return str(number)

    def _insert(self, index, value):
        key = self._next_key()
        self._set_item(key, value)
        self._keys.insert(index, self._keys.pop())

    def _delete(self, key):
        """Removes an item, as ``del`` of an attribute: a new item under its key, later,
        replaces it (fresh weights)."""
        self._keys.remove(key)
        delattr(self, key)

    def __len__(self) -> int:
        return len(self._keys)

    def _display_steps(self):
        # Every item by its key, in order: a Sequential's functions (F.relu) among its modules.
        return [(key, getattr(self, key)) for key in self._keys]


def _require_module(container, value):
    if not isinstance(value, Module):
        raise TypeError(
            f"{describe(container)}: holds modules, got {type(value).__name__}; "
            "use a plain list or dict for other values"
        )
    return value


def _pairs(container, modules):
    """``(key, module)`` pairs, or a TypeError naming the container."""
    try:
        pairs = [tuple(pair) for pair in modules]
    except TypeError:
        pairs = None
    if pairs is None or any(len(pair) != 2 for pair in pairs):
        raise TypeError(
            f"{describe(container)}: takes a mapping or (key, module) pairs, got {modules!r}"
        )
    return pairs


class Sequential(_Container):
    """Calls its items in order, each on the output of the previous one.

    Items are modules or plain callables (``F.relu``), given positionally
    (named ``0``, ``1``, ...), as one ``OrderedDict`` or as keywords (named
    by their keys).

    Args:
        *items: Modules or callables, named by their position; or a single
            ``OrderedDict`` of ``{key: item}``.
        **named: Modules or callables named by their keyword, after ``items``.
        name (str): The container's name (see :class:`Module`); not an item.

    Raises:
        TypeError: An item is not callable.
        KeyError: A key is also an attribute of the class (``append``, ...).

    Example:
        >>> import nnabla as nn
        >>> import nnabla.functions as F
        >>> import nnabla_modules as nm
        >>> body = nm.Sequential(nm.Conv2d(3, 8, 3, pad=1), nm.BatchNorm2d(8), F.relu,
        ...                      name="body")
        >>> body(nn.Variable((2, 3, 6, 6))).shape
        (2, 8, 6, 6)
        >>> list(body.get_parameters())
        ['0/conv/W', '0/conv/b', '1/bn/beta', '1/bn/gamma']
        >>> head = nm.Sequential(fc=nm.Linear(8, 2), act=F.sigmoid, name="head")
        >>> list(head.get_parameters())
        ['fc/affine/W', 'fc/affine/b']
    """

    @property
    def _may_run_pf_code(self) -> bool:  # type: ignore[override]
        return any(not isinstance(item, Module) for item in self)  # a plain callable may be PF

    def __init__(
        self,
        *items: Union[Callable[..., Any], Mapping[str, Callable[..., Any]]],
        name: Optional[str] = None,
        **named: Callable[..., Any],
    ) -> None:
        self._init_items()
        if len(items) == 1 and isinstance(items[0], OrderedDict):
            named, items = {**items[0], **named}, ()
        for item in items:
            self._add(self._next_key(), item)  # not callable (a second OrderedDict): a TypeError
        for key, item in named.items():
            self._add(key, item)

    def _add(self, key, item):
        if not callable(item):
            raise TypeError(f"{describe(self)}: item {key!r} is not callable: {item!r}")
        self._set_item(key, item)

    def append(self, item: Callable[..., Any]) -> "Sequential":
        """Adds ``item`` at the end, named by its index; returns the container.

        Args:
            item (callable): A module or a plain callable.

        Returns:
            Sequential: This container.
        """
        self._add(self._next_key(), item)
        return self

    def insert(self, index: int, item: Callable[..., Any]) -> None:
        """Inserts ``item`` before position ``index``, under the first free number.

        The other items keep their keys, and so their weights: a layer can be
        inserted into a trained stack.

        Args:
            index (int): The position, as ``list.insert`` takes it.
            item (callable): A module or a plain callable.
        """
        if not callable(item):
            raise TypeError(f"{describe(self)}: the item to insert is not callable: {item!r}")
        self._insert(index, item)

    def _key_of(self, index):
        return index if isinstance(index, str) and index in self._keys else self._keys[index]

    def __getitem__(self, index: Union[int, str, slice]) -> Any:
        if isinstance(index, slice):
            return self._view(self._keys[index])
        if isinstance(index, str):
            return self._item(index)
        return self._item(self._keys[index])

    def __setitem__(self, index: Union[int, str], item: Callable[..., Any]) -> None:
        """Replaces the item at a position or key; a new module there gets fresh weights."""
        self._add(self._key_of(index), item)

    def __delitem__(self, index: Union[int, str, slice]) -> None:
        keys = self._keys[index] if isinstance(index, slice) else [self._key_of(index)]
        for key in keys:
            self._delete(key)

    def __iter__(self) -> Iterator[Any]:
        return (getattr(self, k) for k in self._keys)

    def _view(self, keys):
        """A ``Sequential`` of these items, under their keys, that owns none of them."""
        view = SequentialSlice()
        object.__setattr__(view, "_shares_without_owning", True)  # not a module attribute
        object.__setattr__(view, "_source_ref", _Unheld(self))
        for key in keys:
            view._add(key, self._item(key))
        return view

    def __call__(self, x: Any) -> Any:
        """Runs the items in order on ``x``.

        Args:
            x: The input of the first item.

        Returns:
            The output of the last item (``x`` itself when empty).
        """
        for item in self:
            x = item(x)
        return x


class ModuleList(_Container):
    """A list of modules, named ``0``, ``1``, ... under the list's prefix.

    Args:
        modules (iterable): The first modules, in order (``()``: none).
        name (str): The list's name (see :class:`Module`).

    Raises:
        TypeError: An item is not a module (a plain list holds other values).

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> class Stack(nm.Module):
        ...     def __init__(self, n, *, name=None):
        ...         self.blocks = nm.ModuleList(nm.Linear(4, 4) for _ in range(n))
        ...     def __call__(self, x):
        ...         for block in self.blocks:
        ...             x = block(x)
        ...         return x
        >>> stack = Stack(2, name="stack")
        >>> list(stack.get_parameters())
        ['blocks/0/affine/W', 'blocks/0/affine/b', 'blocks/1/affine/W', 'blocks/1/affine/b']
    """

    def __init__(self, modules: Iterable[Module] = (), *, name: Optional[str] = None) -> None:
        self._init_items()
        self.extend(modules)

    def append(self, module: Module) -> "ModuleList":
        """Adds ``module`` at the end; returns the list.

        Args:
            module (Module): The module, named by its index.

        Returns:
            ModuleList: This list.
        """
        self._set_item(self._next_key(), _require_module(self, module))
        return self

    def insert(self, index: int, module: Module) -> None:
        """Inserts ``module`` before position ``index``, under the first free number.

        The other modules keep their keys, and so their weights.

        Args:
            index (int): The position, as ``list.insert`` takes it.
            module (Module): The module.
        """
        self._insert(index, _require_module(self, module))

    def __delitem__(self, index: Union[int, slice]) -> None:
        keys = self._keys[index] if isinstance(index, slice) else [self._key(index)]
        for key in keys:
            self._delete(key)

    def extend(self, modules: Iterable[Module]) -> "ModuleList":
        """Appends each of ``modules``; returns the list.

        Args:
            modules (iterable): Modules, named by their indices in the list.

        Returns:
            ModuleList: This list.
        """
        if not hasattr(modules, "__iter__"):
            raise TypeError(
                f"{describe(self)}: takes an iterable of modules, got {type(modules).__name__}"
            )
        for module in modules:
            self.append(module)
        return self

    def _key(self, index):
        return self._keys[index]  # negative indices and IndexError, as a list

    def __getitem__(self, index: Union[int, slice]) -> Any:
        if isinstance(index, slice):
            return [getattr(self, k) for k in self._keys[index]]
        return getattr(self, self._key(index))

    def __setitem__(self, index: int, module: Module) -> None:
        self._set_item(self._key(index), _require_module(self, module))

    def __iter__(self) -> Iterator[Module]:
        return (getattr(self, k) for k in self._keys)


class ModuleDict(_Container):
    """A dict of modules, each named by its key under the dict's prefix.

    Args:
        modules (dict): ``{key: module}``, or ``(key, module)`` pairs, in order.
        **named: More modules, named by their keywords.
        name (str): The dict's name (see :class:`Module`); not a key.

    Raises:
        TypeError: A value is not a module.
        KeyError: A key is not a valid name or is an attribute of the class
            (``keys``, ``items``, ...).

    Example:
        >>> import nnabla_modules as nm
        >>> heads = nm.ModuleDict({"cls": nm.Linear(8, 10), "box": nm.Linear(8, 4)}, name="heads")
        >>> list(heads.get_parameters())
        ['cls/affine/W', 'cls/affine/b', 'box/affine/W', 'box/affine/b']
        >>> heads["box"].prefix
        'heads/box'
    """

    def __init__(
        self,
        modules: Union[Mapping[str, Module], Iterable[Tuple[str, Module]], None] = None,
        *,
        name: Optional[str] = None,
        **named: Module,
    ) -> None:
        self._init_items()
        self.update(modules or {}, **named)

    def update(
        self,
        modules: Union[Mapping[str, Module], Iterable[Tuple[str, Module]]] = (),
        **named: Module,
    ) -> None:
        """Adds or replaces items from a mapping, ``(key, module)`` pairs, or keywords.

        Args:
            modules (dict): ``{key: module}`` or an iterable of ``(key, module)``.
            **named: More ``key=module`` items, after ``modules``.
        """
        pairs = list(modules.items() if hasattr(modules, "items") else _pairs(self, modules))
        for key, module in pairs + list(named.items()):
            self[key] = module

    def __getitem__(self, key: str) -> Module:
        return self._item(key)

    def __setitem__(self, key: str, module: Module) -> None:
        self._set_item(key, _require_module(self, module))

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._keys))

    def keys(self) -> List[str]:
        """The keys, in insertion order (a list)."""
        return list(self._keys)

    def values(self) -> List[Module]:
        """The modules, in insertion order (a list)."""
        return [getattr(self, k) for k in self._keys]

    def items(self) -> List[Tuple[str, Module]]:
        """``(key, module)`` pairs, in insertion order (a list)."""
        return [(k, getattr(self, k)) for k in self._keys]


class _Unheld:
    """A reference to a module that the tree does not see, so no model holding it adopts
    the module (a slice's original); copies follow it as they follow attributes."""

    __slots__ = ("module",)

    def __init__(self, module):
        self.module = module


class SequentialSlice(Sequential):
    """``seq[2:5]``: runs the same items and owns none of their weights.

    Listing and freezing go to the items, keyed as in the original
    (``2/conv/W``), as PyTorch's slices keep their keys; a load goes to the
    original or to the items, which own the weights.
    """

    _source_ref: "_Unheld"

    @property
    def _source(self) -> Sequential:
        return self._source_ref.module

    def get_parameters(self, grad_only=True, recursive=True, absolute=False):
        start = len(self._source.prefix) + 1 if self._source.prefix else 0
        found = OrderedDict()
        for item in self:
            if isinstance(item, Module):
                for key, param in item.get_parameters(grad_only, recursive, True).items():
                    found[key if absolute else key[start:]] = param
        return found

    def freeze(self):
        for item in self:
            if isinstance(item, Module):
                item.freeze()
        return self

    def unfreeze(self):
        for item in self:
            if isinstance(item, Module):
                item.unfreeze()
        return self

    def load_parameters(self, *args, **kwargs):
        raise self._owns_nothing("load")

    def load_state_dict(self, *args, **kwargs):
        raise self._owns_nothing("load")

    def _owns_nothing(self, what):
        return ValueError(
            f"{describe(self)} is a slice of {describe(self._source)}, a view that owns none "
            f"of its items' weights: {what} through {describe(self._source)}, or item by item."
        )
