"""Per-module checkpoints: save, load, ``state_dict`` and ``load_state_dict``.

The :class:`~nnabla_modules.Module` methods of the same names call these
functions; the file formats live in :mod:`nnabla_modules.files`. See
docs/checkpoints.md for the user's guide.

A load runs in two phases:

1. *Plan*: every key of the file is matched to a parameter of the module
   (relative key, full-prefix key, or NNabla ``nn.Module`` key), and every
   shape and dtype is checked. Missing, unexpected, mismatched and conflicting
   keys are reported together; nothing has been touched yet.
2. *Apply*: every value is read and checked first into one new buffer,
   nothing changed yet; then new registry entries (the load-then-build case)
   take their place and the existing parameters are overwritten in place from
   the buffer, signals with Python handlers held back until the writes are
   complete. Any exception before the writes (Ctrl-C and ``SystemExit``
   included) leaves everything as it was; see docs/checkpoints.md.
"""

import contextlib
from collections import OrderedDict
from collections.abc import Mapping

import nnabla as nn
import numpy as np

from .. import files
from ..core import _enumeration, _registry
from ..core._naming import describe, drop_stale_entries
from ..core._state import state_of
from ..core._tree import modules_in, walk
from ..files._signals import deliver_pending, interrupts_held_back
from ._load_check import PendingLoad, defer_check
from ._load_plan import make_plan, unresolved, value_dtype
from ._results import CheckpointError, LoadResult

__all__ = [
    "CheckpointError",
    "LoadResult",
    "save_parameters",
    "load_parameters",
    "state_dict",
    "load_state_dict",
]
# Defined apart so that the files that raise them need not import this one; a
# traceback names them where users import them from.
CheckpointError.__module__ = LoadResult.__module__ = __name__


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
        files.file_format(path, extension, writing=True)
    except ValueError as error:  # a directory is also an IsADirectoryError: kept
        raise type(error)(f"{describe(module)}: {error}") from None
    # A load in another thread holds this lock from its plan to its last write: the
    # file holds the values before it or after it, never some of each.
    with _registry.lock:
        params = module.get_parameters(grad_only=grad_only)
        if not params:
            _check_nothing_pending(module)
        flags = _enumeration.unfrozen_need_grad(module) if not grad_only else {}
        if flags:  # a frozen weight is stored with its own flag: loading it does not freeze
            params = OrderedDict(
                (key, (param.data.get_data("r"), flags[id(param)]) if id(param) in flags
                 else param)
                for key, param in params.items()
            )
        files.write_parameters(path, params, extension)


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
        nnabla_modules.files.ParameterFileError: Not a readable parameter file.
    """
    # Signals wait for a point where the load can stop cleanly (see _signals.py):
    # a handler raising inside h5py's cleanup code would be lost, not raised.
    with interrupts_held_back(), contextlib.ExitStack() as stack:
        try:
            stored = stack.enter_context(files.open_parameters(path, extension))
        except (ValueError, OSError) as error:
            raise _naming_module(module, error) from error
        source = f"checkpoint {files.source_name(path)}"
        try:
            deliver_pending()  # the file is checked; nothing is changed yet
        except BaseException as error:
            _note_failure(error, module, source)
            raise
        return _load(module, stored, source, strict)


def state_dict(module, grad_only=False):
    """Numpy copies of the module's parameters.

    Args:
        module (Module): The module.
        grad_only (bool): Only parameters with ``need_grad=True``.

    Returns:
        OrderedDict: key relative to the module -> ``numpy.ndarray`` (a copy).
    """
    with _registry.lock:  # a load in another thread: its values before it or after it
        return OrderedDict(
            (key, param.data.get_data("r", value_dtype(param)).copy())
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
    if not isinstance(state, Mapping):
        raise TypeError(
            f"{describe(module)}: load_state_dict takes a mapping of key -> array "
            f"(what state_dict() returns), got {type(state).__name__}"
        )
    for key in state:
        if not isinstance(key, str):
            raise TypeError(f"{describe(module)}: state dict keys must be str, got {key!r}")
    return _load(module, files.array_parameters(state), "the state dict", strict)


# --- errors ---------------------------------------------------------------------------


def _naming_module(module, error):
    """The same kind of error, its message prefixed with the module's description.

    An exception class whose constructor takes other arguments keeps its own
    object, with the description as a note (``__notes__``).
    """
    try:
        if isinstance(error, OSError) and error.errno is not None:
            return type(error)(
                error.errno, f"{describe(module)}: {error.strerror}", error.filename
            )
        return type(error)(f"{describe(module)}: {error}")
    except Exception:
        note = f"while loading into {describe(module)}"
        error.__notes__ = [*getattr(error, "__notes__", []), note]
        return error


def _held_from_elsewhere(module):
    """Modules the tree holds in attributes whose own parent is outside the tree."""
    tree = {id(m) for _, m in walk(module)}
    found = []
    for _, current in walk(module):
        for value in vars(current).values():
            held = modules_in(value, set())
            found.extend(m for m in held if id(m) not in tree and m not in found)
    return found


def _check_nothing_pending(module):
    borrowed = [describe(m) for m in _held_from_elsewhere(module)]
    if borrowed:
        raise ValueError(
            f"{describe(module)} has no parameters of its own to save: it uses "
            f"{', '.join(borrowed)}, owned by another module's tree. Save that module, "
            "or hold the layer in this one before its first use to make it this one's."
        )
    pending = [describe(m) for _, m in walk(module) if unresolved(m)]
    if pending:
        raise ValueError(
            f"{describe(module)} has no parameters to save yet: {', '.join(pending)} "
            "create theirs at the first call. Call the module once (or load a "
            "checkpoint into it) before saving."
        )


# --- loading --------------------------------------------------------------------------


def _load(module, stored, source, strict):
    if not isinstance(strict, bool):
        raise TypeError(f"{describe(module)}: strict must be True or False, got {strict!r}")
    with _registry.lock:  # no module call may change the registry between plan and apply
        drop_stale_entries(module)  # a dead model's entries under a reused name are not these
        plan = make_plan(module, stored)
        result = plan.result()
        if plan.conflicts or (strict and any(result)):
            raise CheckpointError(_report(module, source, plan), result)
        _apply(module, plan, source, strict)
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


def _apply(module, plan, source, strict):
    """Phase 1 reads and checks every value, changing nothing; phase 2 writes them.

    Phase 1 reads every source before any target is written: a state dict may
    hold the module's own arrays under other keys (two layers swapped), and a
    file may fail (damaged, changed in place, a disk error) at any value. The
    values go into one new buffer; phase 2 copies them into place and can no
    longer fail on the file. Memory: one copy of what is loaded.
    """
    # A load whose keys the first call checks may still be undone then: it keeps old values.
    # So is one into a tree whose first call may create keys the file lacks.
    deferred = bool(plan.placements or plan.claims or plan.hosts)
    try:
        created = [_created(module, placement) for placement in plan.placements]
        values = _read_ahead(plan.writes)
    except BaseException as error:
        _note_failure(error, module, source)
        raise
    undo = []
    # Signals whose Python handlers could raise here (Ctrl-C, a SIGTERM handler
    # calling sys.exit) wait until the writes are complete or undone, and the
    # check of the first call is set up: a load left unchecked would be half one.
    with interrupts_held_back():
        try:
            for placement, param in zip(plan.placements, created):
                _place(placement, param, undo)
            for (param, _), value in zip(plan.writes, values):
                _write(param, value, undo if deferred else None)
        except BaseException as error:
            for action in reversed(undo):
                action()
            _note_failure(error, module, source)
            raise
        if deferred:
            _defer(module, plan, source, strict, undo, created)


def _defer(module, plan, source, strict, undo, created):
    """Keys the module could not know yet: its first call shows whether they fit.

    Until then each entry is credited to the deepest module on its path that
    could not know its keys; ``undo`` keeps what undoing the load needs.
    """
    keys = OrderedDict()
    for owner, owner_key, key, need_grad in _provisional(plan):
        state_of(owner).credit_loaded(owner_key, need_grad)
        keys[key] = need_grad
    pending = PendingLoad(keys, plan.known, strict, source, undo, created)
    defer_check(module, pending, plan.hosts)


#: Each value's place in the buffer of :func:`_read_ahead` starts at a multiple of this.
_ALIGNMENT = 64


def _read_ahead(writes):
    """Phase 1 for in-place writes: each value read and checked, nothing written.

    Returns, for each write, an array of its values in its parameter's dtype:
    views of one buffer. Memory new to the process is costly (the OS zeroes it
    page by page); one large buffer is given huge pages (numpy asks for them
    from 4 MiB on), which makes it about four times cheaper than one array per
    value.
    """
    dtypes = [value_dtype(param) for param, _ in writes]
    places = [-(-stored.size * dtype.itemsize // _ALIGNMENT) * _ALIGNMENT
              for (_, stored), dtype in zip(writes, dtypes)]  # fmt: skip
    buffer = np.empty(sum(places), np.uint8)
    values, offset = [], 0
    for (param, stored), dtype, place in zip(writes, dtypes, places):
        deliver_pending()  # nothing is changed yet: a Ctrl-C stops the load here
        # Its array in host memory now, so that writing it in phase 2 allocates nothing.
        param.data.get_data("r", dtype)
        nbytes = stored.size * dtype.itemsize
        value = buffer[offset : offset + nbytes].view(dtype).reshape(stored.shape)
        _read_exactly(stored, value)
        values.append(value)
        offset += place
    return values


def _write(param, value, undo=None):
    """Phase 2: one parameter overwritten in place with ``value``.

    With ``undo``, ``value`` gets the parameter's old values in exchange, and a
    :class:`_Restorer` putting them back is added to ``undo``: the buffer of
    phase 1 is the undo copy.
    """
    dtype = value_dtype(param)
    if undo is None:
        np.copyto(param.data.get_data("w", dtype), value)
        return
    # Read access ("r") first: the values may live in another array (a device, a dtype).
    param.data.get_data("r", dtype)
    target, kept = param.data.get_data("w", dtype).reshape(-1), value.reshape(-1)
    swap = np.empty(min(target.size, _SWAP_CHUNK), dtype)  # small: the cache holds it
    for start in range(0, target.size, _SWAP_CHUNK):
        chunk = slice(start, start + _SWAP_CHUNK)
        old = swap[: target[chunk].size]
        np.copyto(old, target[chunk])
        np.copyto(target[chunk], kept[chunk])
        np.copyto(kept[chunk], old)
    undo.append(_Restorer(param, dtype, value))


#: Elements of a parameter swapped with the buffer of :func:`_read_ahead` at a time.
_SWAP_CHUNK = 1 << 16


class _Restorer:
    """An undo action putting a parameter's old values back (``param``: whose, for
    two loads before a first call to keep the earlier one's copy only)."""

    __slots__ = ("param", "dtype", "old")

    def __init__(self, param, dtype, old):
        self.param = param
        self.dtype = dtype
        self.old = old

    def __call__(self):
        np.copyto(self.param.data.get_data("w", self.dtype), self.old)


def _read_exactly(stored, out):
    """Reads ``stored`` into ``out``; a value too large for ``out``'s dtype is an error.

    Casting float64 to float32 turns 1e300 into infinity without a word: a
    weight that was finite in the file must stay finite in the module.
    """
    with np.errstate(over="ignore"):  # overflow is checked below, with a clear error
        stored.read_into(out)
    narrower = out.dtype.kind == "f" and stored.dtype.itemsize > out.dtype.itemsize
    if narrower and not np.isfinite(out).all() and np.isfinite(stored.read()).all():
        raise CheckpointError(
            f"{stored.name!r}: its values do not fit {out.dtype} (finite in the file, "
            f"infinite once converted); nothing was loaded",
            LoadResult([], [], [stored.name]),
        )


def _note_failure(error, module, source):
    """Notes on ``error`` that the failed load changed nothing; its type is kept
    (SystemExit stays one).

    Python 3.11+ prints the note under the traceback; on 3.10 it is in ``error.__notes__``.
    """
    note = f"{describe(module)}: loading {source} was interrupted; nothing was changed."
    if hasattr(error, "add_note"):
        error.add_note(note)
    else:
        error.__notes__ = [*getattr(error, "__notes__", []), note]


def _provisional(plan):
    for p in plan.placements:
        yield p.owner, p.owner_key, p.key, p.stored.need_grad
    yield from plan.claims


def _created(module, placement):
    """Phase 1 of a new registry entry (load-then-build): its Variable, filled from the file."""
    stored = placement.stored
    frozen = state_of(module).frozen
    param = nn.Variable(stored.shape, need_grad=stored.need_grad and not frozen)
    dtype = stored.dtype if stored.dtype.kind == "f" else np.float32
    _read_exactly(stored, param.data.get_data("w", dtype))
    return param


def _place(placement, param, undo):
    """Phase 2 of a new registry entry: it takes its place (what nn.parameter_scope creates)."""
    scope = _registry.root_scope()
    for name in placement.path[:-1]:
        if name not in scope:
            scope[name] = OrderedDict()
            undo.append(lambda s=scope, n=name: s.pop(n, None))
        scope = scope[name]
    leaf = placement.path[-1]
    scope[leaf] = param
    undo.append(lambda: scope.pop(leaf, None))
