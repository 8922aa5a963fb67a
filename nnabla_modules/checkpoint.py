"""Per-module checkpoints: save, load, ``state_dict`` and ``load_state_dict``.

The :class:`~nnabla_modules.Module` methods of the same names call these
functions; the file formats live in :mod:`nnabla_modules.io`. See
docs/checkpoints.md for the user's guide.

A load runs in two phases:

1. *Plan*: every key of the file is matched to a parameter of the module
   (relative key, full-prefix key, or NNabla ``nn.Module`` key), and every
   shape and dtype is checked. Missing, unexpected, mismatched and conflicting
   keys are reported together; nothing has been touched yet.
2. *Apply*: new registry entries (the load-then-build case) are created and
   filled, then the existing parameters are overwritten in place, each one's
   old values kept aside first; if anything fails (any exception, Ctrl-C and
   ``SystemExit`` included) all of it is undone. Signals with Python handlers
   are held back until the load is complete.
"""

import contextlib
import signal
import threading
from collections import OrderedDict, namedtuple

import nnabla as nn
import numpy as np

from . import _registry, io
from ._naming import join
from .module import _prefix, _walk, describe

__all__ = [
    "CheckpointError",
    "LoadResult",
    "save_parameters",
    "load_parameters",
    "state_dict",
    "load_state_dict",
]


class LoadResult(namedtuple("LoadResult", "missing_keys unexpected_keys mismatched_keys")):
    """What a load did not take, like PyTorch's ``_IncompatibleKeys``.

    Attributes:
        missing_keys (list of str): The module's parameters the file lacks,
            keys relative to the module.
        unexpected_keys (list of str): The file's keys that fit no parameter, as
            written in the file.
        mismatched_keys (list of str): The module's parameters whose shape or
            dtype the file's values do not fit, keys relative to the module.
    """

    __slots__ = ()

    def __repr__(self):
        if not any(self):
            return "<LoadResult: all keys matched>"
        return super().__repr__()


class CheckpointError(ValueError):
    """A checkpoint that does not fit the module; nothing was loaded.

    Attributes:
        result (LoadResult): Everything that did not fit.
    """

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


# --- public functions ---------------------------------------------------------------


def save_parameters(module, path, grad_only=False, extension=None):
    """Saves the module's parameters, keys relative to its prefix.

    Args:
        module (Module): The module.
        path (str, os.PathLike or file object): ``.h5`` or ``.protobuf``. A path
            is written atomically (temporary file, fsync, ``os.replace``).
        grad_only (bool): Only parameters with ``need_grad=True``.
        extension (str, optional): The format; required for file objects.
    """
    try:
        io.file_format(path, extension, writing=True)
    except ValueError as error:
        raise ValueError(f"{describe(module)}: {error}") from None
    params = module.get_parameters(grad_only=grad_only)
    if not params:
        _check_nothing_pending(module)
    io.write_parameters(path, params, extension)


def load_parameters(module, path, strict=True, extension=None):
    """Loads a checkpoint into the module's parameters, in place, all or nothing.

    Args:
        module (Module): The module.
        path (str, os.PathLike or file object): An NNabla parameter file
            (``.h5``, ``.protobuf``, ``.nntxt``, ``.nnp``).
        strict (bool): Raise :class:`CheckpointError` unless the file and the
            module have exactly the same keys, shapes and compatible dtypes;
            ``False`` loads what fits and returns the rest.
        extension (str, optional): The format; required for file objects.

    Returns:
        LoadResult: What did not fit (empty lists after a strict load).

    Raises:
        CheckpointError: The checkpoint does not fit; nothing was changed.
        nnabla_modules.io.ParameterFileError: Not a readable parameter file.
    """
    with contextlib.ExitStack() as stack:
        try:
            stored = stack.enter_context(io.open_parameters(path, extension))
        except (ValueError, OSError) as error:
            raise _naming_module(module, error) from error
        return _load(module, stored, f"checkpoint {io.source_name(path)}", strict)


def state_dict(module, grad_only=False):
    """Numpy copies of the module's parameters.

    Args:
        module (Module): The module.
        grad_only (bool): Only parameters with ``need_grad=True``.

    Returns:
        OrderedDict: key relative to the module -> ``numpy.ndarray`` (a copy).
    """
    return OrderedDict(
        (key, param.data.get_data("r", _value_dtype(param)).copy())
        for key, param in module.get_parameters(grad_only=grad_only).items()
    )


def load_state_dict(module, state, strict=True):
    """Loads an in-memory ``{key: array}`` with the rules of :func:`load_parameters`.

    Args:
        module (Module): The module.
        state (mapping): key -> ``numpy.ndarray``, ``nn.Variable`` or ``nn.NdArray``.
        strict (bool): See :func:`load_parameters`.

    Returns:
        LoadResult: What did not fit.
    """
    return _load(module, io.array_parameters(state), "the state dict", strict)


# --- errors ---------------------------------------------------------------------------


def _naming_module(module, error):
    """The same error, its message prefixed with the module's description."""
    if isinstance(error, OSError) and error.errno is not None:
        return type(error)(error.errno, f"{describe(module)}: {error.strerror}", error.filename)
    return type(error)(f"{describe(module)}: {error}")


def _check_nothing_pending(module):
    pending = [describe(m) for _, m in _walk(module) if _unresolved(m)]
    if pending:
        raise ValueError(
            f"{describe(module)} has no parameters to save yet: {', '.join(pending)} "
            "create theirs at the first call. Call the module once (or load a "
            "checkpoint into it) before saving."
        )


# --- planning -------------------------------------------------------------------------


class _Plan:
    """Everything a load will do, worked out before anything is changed."""

    def __init__(self):
        self.writes = []  # (registry Variable, StoredParameter): overwritten in place
        self.placements = []  # _Placement: new registry entries (load-then-build)
        self.claims = []  # (owner module, key, need_grad): existing entries adopted
        self.missing = []  # relative keys
        self.unexpected = []  # (file key, relative key)
        self.mismatched = []  # (relative key, reason)
        self.conflicts = []  # (relative key, [file keys])
        self.uncalled = []  # modules under which unexpected keys might be their own PF code
        self.file_is_empty = False

    def result(self):
        return LoadResult(
            list(self.missing),
            [file_key for file_key, _ in self.unexpected],
            [key for key, _ in self.mismatched],
        )


_Placement = namedtuple("_Placement", "owner owner_key path stored")


def _plan(module, stored):
    known = module.get_parameters(grad_only=False)  # creates eager layers' parameters
    prefix = module.prefix
    territory = _Territory(module)
    carries_prefix = bool(prefix) and any(
        key.startswith(prefix + "/") and key not in known for key in stored
    )
    targets = OrderedDict()  # relative key -> [file keys]
    plan = _Plan()
    plan.file_is_empty = not stored
    for file_key in stored:
        key = _match(file_key, known, prefix)
        if key is None:
            key, has_prefix = _relative_guess(file_key, prefix)
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
    plain = _without_module_marks(file_key)
    return plain if plain in known else None


def _relative_guess(file_key, prefix):
    """``(relative key, carried the prefix)`` for a key the module does not know yet."""
    if prefix and file_key.startswith(prefix + "/"):
        return file_key[len(prefix) + 1 :], True
    return _without_module_marks(file_key), False


def _without_module_marks(key):
    """``@conv1/conv/W`` (NNabla ``nn.Module`` files) -> ``conv1/conv/W``."""
    if "@" not in key:
        return key
    return "/".join(level[1:] if level.startswith("@") else level for level in key.split("/"))


def _plan_write(plan, key, param, stored):
    reason = _misfit(stored, param)
    if reason:
        plan.mismatched.append((key, reason))
    else:
        plan.writes.append((param, stored))


def _misfit(stored, param):
    """Why ``stored`` cannot be written into ``param``, or None."""
    dtype = _value_dtype(param)
    if stored.shape != tuple(param.shape) or not _convertible(stored.dtype, dtype):
        return f"file {stored.shape} {stored.dtype}, module {tuple(param.shape)} {dtype}"
    return None


def _convertible(source, destination):
    # float64 -> float32 and int -> float are fine; float -> int or text are not
    return source.kind in "fiu" and np.can_cast(source, destination, casting="same_kind")


def _value_dtype(param):
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
        for path, current in _walk(module):
            self.modules_at.setdefault(tuple(path), []).append(current)

    def deepest(self, key):
        """``(path, modules)``: the deepest modules of the tree on the key's path."""
        levels = tuple(key.split("/"))
        for depth in range(len(levels) - 1, -1, -1):
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
        return next(((path, m) for m in modules if _unresolved(m)), None)


def _unresolved(module):
    """True while a module cannot know its parameters, which appear at its first call."""
    if module._module_state.claims:
        return False
    if _is_layer(module):
        return True  # a layer whose input sizes were not given
    # PF code in __call__ and no child modules: the smallest refactor of PF code, whose
    # parameters appear at the first call. A module with children is taken to get its
    # parameters from them; if it also runs PF code itself, it knows those keys after a call.
    return not _has_children(module)


def _may_run_pf_code(module):
    """A module with children and no parameters of its own: PF code in __call__ not yet run?"""
    return not module._module_state.claims and not _is_layer(module) and _has_children(module)


def _is_layer(module):
    return getattr(module, "_create_parameters", None) is not None


def _has_children(module):
    return any(True for _ in module.children())


def _plan_placement(plan, module, territory, key, file_key, stored):
    found = territory.owner(key)
    if found is None:
        plan.unexpected.append((file_key, key))
        for host in territory.deepest(key)[1]:
            if _may_run_pf_code(host) and host not in plan.uncalled:
                plan.uncalled.append(host)
        return
    owner_path, owner = found
    owner_key = join(key.split("/")[len(owner_path) :])
    path = _prefix(module) + tuple(key.split("/"))
    existing, blocked = _registry_entry(path)
    if blocked:
        plan.mismatched.append((key, blocked))
    elif existing is None:
        plan.placements.append(_Placement(owner, owner_key, path, stored))
    else:  # an entry under the prefix that no module of the tree claimed yet
        before = len(plan.mismatched)
        _plan_write(plan, key, existing, stored)
        if len(plan.mismatched) == before:
            plan.claims.append((owner, owner_key, existing.need_grad))


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


# --- loading --------------------------------------------------------------------------


def _load(module, stored, source, strict):
    with _registry.lock:  # no module call may change the registry between plan and apply
        plan = _plan(module, stored)
        result = plan.result()
        if plan.conflicts or (strict and any(result)):
            raise CheckpointError(_report(module, source, plan), result)
        _apply(module, plan, source)
    return result


def _report(module, source, plan):
    prefix = module.prefix

    def full(key):
        return f"{prefix}/{key}" if prefix else key

    lines = [f"{describe(module)}: {source} does not fit; nothing was loaded."]
    if plan.missing:
        lines.append(f"  missing from the file ({len(plan.missing)}):")
        lines.extend(f"    {full(key)}" for key in plan.missing)
        if plan.file_is_empty:
            lines.append("    (the file holds no parameters)")
    if plan.unexpected:
        lines.append(f"  unexpected in the file ({len(plan.unexpected)}):")
        lines.extend(_unexpected_line(file_key, full(key)) for file_key, key in plan.unexpected)
        for host in plan.uncalled:
            lines.append(
                f"  (if {describe(host)} creates some of these with PF code in its __call__, "
                "call it once before loading)"
            )
    if plan.mismatched:
        lines.append(f"  mismatched ({len(plan.mismatched)}):")
        lines.extend(f"    {full(key)}: {reason}" for key, reason in plan.mismatched)
    if plan.conflicts:
        lines.append(f"  ambiguous: several file keys name one parameter ({len(plan.conflicts)}):")
        lines.extend(
            f"    {full(key)}: {', '.join(map(repr, keys))}" for key, keys in plan.conflicts
        )
        lines.append("Remove one of each from the file.")
    else:
        lines.append("Pass strict=False to load what fits.")
    return "\n".join(lines)


def _unexpected_line(file_key, full_name):
    if file_key == full_name:
        return f"    {full_name}"
    return f"    {full_name} (file key {file_key!r})"


def _apply(module, plan, source):
    # Signals whose Python handlers could raise here (Ctrl-C, a SIGTERM handler
    # calling sys.exit) wait until the load is complete or undone.
    with _interrupts_held_back():
        undo = []
        try:
            for placement in plan.placements:
                _place(placement, undo)
            for owner, key, need_grad in plan.claims:
                _claim(owner, key, need_grad, undo)
            for param, stored in plan.writes:
                _overwrite(param, stored, undo)
        except BaseException as error:
            for action in reversed(undo):
                action()
            _note_undone(error, module, source)
            raise


def _overwrite(param, stored, undo):
    """Writes one parameter in place; its old values go to ``undo`` first."""
    dtype = _value_dtype(param)
    # The old values are kept until the load is complete: with them any failure
    # (a read error, an exception from a signal handler) leaves the model as it was.
    # Read access ("r"): the values may live in another array (a device, a dtype).
    old = param.data.get_data("r", dtype).copy()
    undo.append(lambda: np.copyto(param.data.get_data("w", dtype), old))
    stored.read_into(param.data.get_data("w", dtype))


def _note_undone(error, module, source):
    """Notes on ``error`` that the load was undone; its type is kept (SystemExit stays one).

    Python 3.11+ prints the note under the traceback; on 3.10 it is in ``error.__notes__``.
    """
    note = f"{describe(module)}: loading {source} was interrupted; nothing was changed."
    if hasattr(error, "add_note"):
        error.add_note(note)
    else:
        error.__notes__ = [*getattr(error, "__notes__", []), note]


def _place(placement, undo):
    """Creates one new registry entry, filled from the file, and its owner's claim."""
    scope = _registry.root_scope()
    for name in placement.path[:-1]:
        if name not in scope:
            scope[name] = OrderedDict()  # what nn.parameter_scope creates
            undo.append(lambda s=scope, n=name: s.pop(n, None))
        scope = scope[name]
    stored, leaf = placement.stored, placement.path[-1]
    frozen = placement.owner._module_state.frozen
    param = nn.Variable(stored.shape, need_grad=stored.need_grad and not frozen)
    dtype = stored.dtype if stored.dtype.kind == "f" else np.float32
    stored.read_into(param.data.get_data("w", dtype))
    scope[leaf] = param
    undo.append(lambda: scope.pop(leaf, None))
    _claim(placement.owner, placement.owner_key, stored.need_grad, undo)


def _claim(owner, key, need_grad, undo):
    claims = owner._module_state.claims
    if key not in claims:
        claims[key] = need_grad
        undo.append(lambda: claims.pop(key, None))


@contextlib.contextmanager
def _interrupts_held_back():
    """Delivers signals with Python handlers that arrive inside the block when it ends.

    Every signal whose handler is Python code (Ctrl-C's ``KeyboardInterrupt``, a
    ``SIGTERM`` handler that calls ``sys.exit``, ...) is recorded instead, and
    raised again, in order, once the block is over and the handlers are back.
    Python runs handlers in the main thread only: elsewhere nothing is needed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for number in signal.valid_signals():
        with contextlib.suppress(OSError, ValueError):
            handler = signal.getsignal(number)
            if callable(handler):  # neither SIG_DFL, SIG_IGN nor a handler set in C (None)
                previous[number] = handler
    received = []
    try:
        for number in previous:
            signal.signal(number, lambda signum, frame: received.append(signum))
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for number in received:
            signal.raise_signal(number)
