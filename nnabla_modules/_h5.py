"""The structure of an ``.h5`` parameter file, checked before any value is read.

Depends on h5py and numpy only: the crash probe (:func:`probe`) runs this file
in a fresh interpreter, without importing NNabla.

The walk is linear in the file's size: each group is opened from its parent
(never by its full path) and its links are listed once. It refuses what NNabla
never writes and what would make a load read other files or allocate more
than the file declares: soft, external and user-defined links, virtual
datasets, datasets stored in external files, an object reached twice, names
that are not UTF-8, attributes that are not one number, and chunked datasets
whose declared size is out of proportion to what the file stores.
"""

import math
import os
import subprocess
import sys
from collections import namedtuple

import h5py
import numpy as np

#: The most bytes of values a chunked dataset may declare per stored byte:
#: deflate's largest compression ratio (1032:1), so no real compressed file is refused.
MAX_RATIO = 1032
#: Chunked datasets up to this size are accepted whatever they store.
SMALL = 1 << 20
#: Longest text quoted in an error.
QUOTE_LIMIT = 200

NUMBER_KINDS = "fiu"  # float, signed and unsigned integers: what NNabla stores


class ParameterFileError(ValueError):
    """The file is not a readable NNabla parameter file (truncated, corrupted, foreign, hostile)."""


def short(text, limit=QUOTE_LIMIT):
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit:,} more characters)"


Entry = namedtuple("Entry", "name dataset shape dtype need_grad index")


def entries(handle, label):
    """Every dataset of an open file, checked, as :class:`Entry` in name order.

    Raises:
        ParameterFileError: Anything a parameter file must not hold.
    """
    file_size = handle.id.get_filesize()  # of the file HDF5 has open, not of a path
    return [_entry(name, dataset, label, file_size) for name, dataset in _datasets(handle, label)]


def _datasets(handle, label):
    """``[(name, DatasetID)]``: a depth-first walk in name order, as ``visititems`` goes."""
    found, seen = [], set()
    root = h5py.h5g.open(handle.id, b"/")
    stack = [("", root, iter(_link_names(root)))]
    while stack:
        prefix, group, names = stack[-1]
        raw = next(names, None)
        if raw is None:
            stack.pop()
            continue
        name = prefix + _text(raw, prefix, label)
        link = group.links.get_info(raw)
        if link.type != h5py.h5l.TYPE_HARD:
            kind = _LINK_KINDS.get(link.type, "a user-defined link")
            raise ParameterFileError(
                f"{label}: {short(repr(name))} is {kind}; a parameter file holds its values itself"
            )
        if link.u in seen:  # the object's address in this file
            raise ParameterFileError(
                f"{label}: {short(repr(name))} is an object reached a second time (a hard link)"
            )
        seen.add(link.u)
        obj = h5py.h5o.open(group, raw)
        kind = h5py.h5i.get_type(obj)
        if kind == h5py.h5i.GROUP:
            stack.append((name + "/", obj, iter(_link_names(obj))))
        elif kind == h5py.h5i.DATASET:
            found.append((name, obj))
        else:
            raise ParameterFileError(
                f"{label}: {short(repr(name))} is a named datatype, not a parameter"
            )
    return found


_LINK_KINDS = {h5py.h5l.TYPE_SOFT: "a soft link", h5py.h5l.TYPE_EXTERNAL: "an external link"}


def _link_names(group):
    names = []
    group.links.iterate(names.append, idx_type=h5py.h5.INDEX_NAME, order=h5py.h5.ITER_INC)
    return names


def _text(raw, prefix, label):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ParameterFileError(
            f"{label}: the name {short(repr(raw))} in {prefix or '/'!r} is not UTF-8 text"
        ) from None


def _entry(name, dataset, label, file_size):
    what = f"{label}: dataset {short(repr(name))}"
    if dataset.get_space().get_simple_extent_type() not in (h5py.h5s.SIMPLE, h5py.h5s.SCALAR):
        raise ParameterFileError(f"{what} has no shape (a null dataspace)")
    try:
        dtype = dataset.dtype
    except (TypeError, ValueError) as error:
        raise ParameterFileError(f"{what} holds an unreadable datatype ({short(error)})") from None
    if dtype.kind not in NUMBER_KINDS:
        raise ParameterFileError(f"{what} holds {short(dtype)}, not numbers")
    shape = dataset.shape
    _check_storage(dataset, what, math.prod(shape) * dtype.itemsize, file_size)
    need_grad = _attribute(dataset, b"need_grad", (h5py.h5t.ENUM, h5py.h5t.INTEGER), what)
    if need_grad is None:
        raise ParameterFileError(
            f"{what} has no 'need_grad' attribute; not a file written by nn.save_parameters"
        )
    index = _attribute(dataset, b"index", (h5py.h5t.INTEGER,), what)
    return Entry(name, dataset, shape, dtype, bool(need_grad), index)


def _check_storage(dataset, what, nbytes, file_size):
    plist = dataset.get_create_plist()
    if plist.get_external_count():
        raise ParameterFileError(f"{what} keeps its values in external files")
    layout = plist.get_layout()
    if layout == h5py.h5d.VIRTUAL:
        raise ParameterFileError(f"{what} is a virtual dataset (its values come from other files)")
    if layout == h5py.h5d.CONTIGUOUS:
        offset, size = dataset.get_offset(), dataset.get_storage_size()
        if nbytes and (offset is None or size != nbytes or offset + size > file_size):
            raise ParameterFileError(f"{what}: its values lie outside the file (truncated?)")
    elif layout == h5py.h5d.CHUNKED:
        chunk_bytes = math.prod(plist.get_chunk()) * dataset.dtype.itemsize
        stored = dataset.get_storage_size()
        if chunk_bytes > max(nbytes, SMALL) or nbytes > max(MAX_RATIO * stored, SMALL):
            raise ParameterFileError(
                f"{what} declares {nbytes:,} bytes of values in chunks of {chunk_bytes:,} "
                f"bytes but stores {stored:,} bytes"
            )


def _attribute(dataset, name, classes, what):
    """The attribute's one integer (h5py's bools are an enum of int8), or None when absent.

    The file's type is inspected at the HDF5 level: numpy dtypes are slow to make.
    """
    try:
        attribute = h5py.h5a.open(dataset, name)
    except KeyError:  # absent
        return None
    space, stored = attribute.get_space(), attribute.get_type()
    klass = stored.get_class()
    if (
        klass not in classes
        or space.get_simple_extent_npoints() != 1
        or space.get_simple_extent_ndims() > 1
        or (klass == h5py.h5t.ENUM and stored.get_size() != 1)
    ):
        raise ParameterFileError(f"{what} has a malformed {name.decode()!r} attribute")
    if klass == h5py.h5t.ENUM:  # read as stored: one byte, 0 or 1
        value = np.empty(space.shape, np.int8)
        attribute.read(value, mtype=stored)
    else:
        value = np.empty(space.shape, np.int64)
        attribute.read(value, mtype=h5py.h5t.NATIVE_INT64)
    return int(value.reshape(()))


# --- the crash probe --------------------------------------------------------------------


def probe(stream, label):
    """Reads the structure of the file in ``stream`` in a fresh interpreter first.

    HDF5 trusts a file's metadata: some damage to an unchecksummed file (found
    by fuzzing: one flipped bit in an attribute's datatype) crashes the C
    library, which no ``except`` can catch. A child process meets the crash
    instead. It reports success by printing ``ok``, so the verdict never
    depends on exit statuses (which a process ignoring ``SIGCHLD`` cannot
    see); any exception here, Ctrl-C included, kills and reaps it. A file on
    disk is handed over as the open file itself (Linux), other streams as
    bytes on the child's standard input.

    Returns:
        bool: True when the walk completed or failed cleanly; False when it
        crashed the library. Raises OSError when no child can be started.
    """
    held = _held_file(stream)
    data = b"" if held else _all_bytes(stream)
    # -I: neither the working folder nor the environment can put modules in its way
    command = [sys.executable, "-I", "-c", _PROBE, __file__, os.pathsep.join(sys.path), held]
    child = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        pass_fds=(stream.fileno(),) if held else (),
    )
    try:
        verdict, _ = child.communicate(data)
    finally:  # also on Ctrl-C: never leave a child running, nor a zombie
        if child.poll() is None:
            child.kill()
        child.wait()
    return verdict in (b"ok", b"error")


def _held_file(stream):
    """``/proc/self/fd/N`` of a file on disk (the child opens the very file), else ``""``."""
    try:
        path = f"/proc/self/fd/{stream.fileno()}"
    except (AttributeError, OSError, ValueError):  # BytesIO and other streams
        return ""
    return path if os.path.isfile(path) else ""


def _all_bytes(stream):
    position = stream.tell()
    try:
        stream.seek(0)
        return stream.read()
    finally:
        stream.seek(position)


_PROBE = """
import importlib.util, os, sys
sys.path[:0] = [p for p in sys.argv[2].split(os.pathsep) if p]
spec = importlib.util.spec_from_file_location("_h5_probe", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.probe_main(sys.argv[3])
"""


def probe_main(held):
    import io

    try:
        # its own open file description: the parent's offset is not moved
        stream = open(held, "rb") if held else io.BytesIO(sys.stdin.buffer.read())
        with stream, h5py.File(stream, "r") as handle:
            entries(handle, "probe")
    except Exception:
        sys.stdout.write("error")  # a clean error: the parent reads the file and reports it
        return
    sys.stdout.write("ok")
