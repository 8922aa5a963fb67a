"""Forward hooks: what runs before and after a module's calls.

A module's hooks and the global ones are kept in one ``Hooks`` per module
that has any (``ModuleState.hooks``), the global ones first; modules without
hooks of their own use ``global_hooks[0]``. A call then checks one attribute.
"""

from typing import Any, Dict, List, Optional, Tuple

from . import _registry


class Hooks:
    """The forward hooks that run around one module's calls."""

    __slots__ = ("pre", "post")

    def __init__(self, pre=(), post=()):
        self.pre, self.post = list(pre), list(post)


#: The hooks of every module (``register_module_forward_hook``); None: there are none.
global_hooks: List[Optional[Hooks]] = [None]
_own_hooks: Dict[int, Tuple[Any, Hooks]] = {}  # id(state) -> (state, Hooks of the module alone)
_global = Hooks()


def run_pre_hooks(hooks, module, args, kwargs):
    for hook in list(hooks.pre):
        changed = hook(module, args, kwargs)
        if changed is not None:
            args, kwargs = changed
    return args, kwargs


def run_post_hooks(hooks, module, args, kwargs, output):
    for hook in list(hooks.post):
        changed = hook(module, args, kwargs, output)
        if changed is not None:
            output = changed
    return output


class HookHandle:
    """Removes a hook with :meth:`remove`; also a context manager that removes it at exit."""

    def __init__(self, remove):
        self._remove = remove

    def remove(self):
        """Removes the hook (once; later calls do nothing)."""
        remove, self._remove = self._remove, None
        if remove is not None:
            with _registry.lock:
                remove()
                _rebuild_hooks()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.remove()


def add_hook(state, kind, hook):
    """Adds ``hook`` (``kind``: "pre" or "post") to one module's state, or to all (None)."""
    if not callable(hook):
        raise TypeError(f"a forward hook must be callable, got {hook!r}")
    with _registry.lock:
        if state is None:
            hooks = _global
        else:
            hooks = _own_hooks.setdefault(id(state), (state, Hooks()))[1]
        getattr(hooks, kind).append(hook)
        _rebuild_hooks()
    return HookHandle(lambda: getattr(hooks, kind).remove(hook))


def _rebuild_hooks():
    """Recomputes what each call checks: global hooks first, then the module's own."""
    for key, (state, own) in list(_own_hooks.items()):
        if not own.pre and not own.post:
            del _own_hooks[key]
            state.hooks = None
        else:
            state.hooks = Hooks(_global.pre + own.pre, _global.post + own.post)
    global_hooks[0] = _global if (_global.pre or _global.post) else None


def register_module_forward_hook(hook):
    """Calls ``hook(module, args, kwargs, output)`` after every module's call.

    Like PyTorch's function of the same name: for tools that watch a whole
    model (:func:`nnabla_modules.summary.summary` is built on it). See
    :meth:`nnabla_modules.Module.register_forward_hook`.

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
