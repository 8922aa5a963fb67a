"""The structure of an ``.h5`` parameter file, checked before any value is read.

Depends on h5py and numpy only: the crash probe (``_h5_probe.py``) runs this
file in a fresh interpreter, without importing NNabla (:func:`probe_main`).

The walk is linear in the file's size: each group is opened from its parent
(never by its full path) and its links are listed once, no more in all than
the file can hold. It refuses what NNabla never writes and what would make a
load read other files or allocate more than the file declares: soft, external
and user-defined links, virtual datasets, datasets stored in external files,
an object reached twice, names that are not UTF-8, attributes that are not one
number, and chunked datasets whose declared sizes, each or together
(:class:`Budget`), are out of proportion to what the file stores.
"""

import itertools
import math
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
    text, left = str(text), len(str(text)) - limit
    return text if left <= 0 else f"{text[:limit]}... ({left:,} more characters)"


#: A checked dataset, open (``dataset``) only if among the first :data:`OPEN_DATASETS`:
#: ``_stored.DatasetReader`` opens the others by ``name``, checking their ``address``,
#: or reads its values from the file where the Python check found them (``location``).
Entry = namedtuple("Entry", "name address dataset shape dtype need_grad index location")
OPEN_DATASETS = 128  # HDF5 holds some 17 KB per open dataset: about 2 MB
#: HDF5's metadata cache, in bytes as stored (some 20 times that in memory; by default up
#: to 32 MB: 20,000 one-value datasets filled 50 MB). A read walks a file once.
METADATA_CACHE = 256 << 10


def too_large(shape, itemsize):
    """True when no array can have ``shape``, however few values it holds: numpy
    refuses a shape (``(2**62, 0)`` included) whose bytes, its zero dimensions left
    out, overflow an index."""
    return math.prod(d for d in shape if d) * itemsize > _LARGEST_INDEX


_LARGEST_INDEX = np.iinfo(np.intp).max


class Budget:
    """The bytes a file (``label``, as errors name it, of ``stored`` bytes) may make a reader
    allocate beyond its own: :data:`MAX_RATIO` per stored byte, at least :data:`SMALL`, for
    the whole file (an ``.nnp`` archive's members and chunked datasets draw on one budget)."""

    def __init__(self, label, stored):
        self.label, self.stored = label, stored
        self.left = self.limit = max(MAX_RATIO * stored, SMALL)

    def spend(self, nbytes, what):
        """Takes ``nbytes`` for ``what``; raises ParameterFileError past the limit."""
        if nbytes > self.left:
            raise ParameterFileError(
                f"{what} declares {nbytes:,} bytes, past what {self.label} may declare "
                f"in all: {self.limit:,} bytes for the {self.stored:,} bytes it stores "
                "(more than any real file compresses)"
            )
        self.left -= nbytes


class Unvouched(Exception):
    """An object the check before HDF5 cannot vouch for: the file goes to the crash probe."""


def entries(handle, label, budget=None, admits=None):
    """Every dataset of an open file, checked, as :class:`Entry` in name order.

    Args:
        handle (h5py.File): The file.
        label (str): How errors name it.
        budget (Budget, optional): What its chunked datasets may declare in all;
            by default, that of the file's own size.
        admits (callable, optional): ``admits(address)`` before each object is
            opened (``_h5_check.vouch``); False raises :class:`Unvouched`.

    Raises:
        ParameterFileError: Anything a parameter file must not hold.
    """
    cache = handle.id.get_mdc_config()
    cache.set_initial_size = True
    cache.initial_size = cache.min_size = cache.max_size = METADATA_CACHE
    cache.incr_mode = cache.flash_incr_mode = cache.decr_mode = 0  # a fixed size
    handle.id.set_mdc_config(cache)
    file_size = handle.id.get_filesize()  # of the file HDF5 has open, not of a path
    budget = budget or Budget(label, file_size)
    found, walk = [], _datasets(handle, label, admits)
    # in batches: HDF5 checks datasets faster after walking to several of them
    while batch := list(itertools.islice(walk, OPEN_DATASETS)):
        keep = not found  # the first batch stays open
        found += [_entry(*item, label, file_size, budget, keep) for item in batch]
    return found


def _datasets(handle, label, admits):
    """Yields ``(name, address, DatasetID or admits' Described)``: depth first, by name.

    Full names are built for the datasets found and for errors only, and those of
    the objects opened are bounded (:data:`KEY_CHARACTERS_PER_BYTE`).
    """
    seen = set()
    links = _Links(label, handle.id.get_filesize())
    root = h5py.h5g.open(handle.id, b"/")
    parts, lengths = [], [0]  # the open groups' names below the root, and their lengths
    stack = [(root, links.names(root))]
    while stack:
        group, listed = stack[-1]
        raw = next(listed, None)
        if raw is None:
            stack.pop()
            if parts:
                parts.pop()
                lengths.pop()
            continue
        part = _text(raw, parts, label)
        link = group.links.get_info(raw)
        if link.type != h5py.h5l.TYPE_HARD:
            kind = _LINK_KINDS.get(link.type, "a user-defined link")
            raise ParameterFileError(
                f"{label}: {_quoted(parts, part)} is {kind}; a parameter file holds its values "
                "itself"
            )
        if link.u in seen:  # the object's address in this file
            raise ParameterFileError(
                f"{label}: {_quoted(parts, part)} is an object reached a second time (a hard link)"
            )
        seen.add(link.u)
        if admits is not None and not admits(link.u):
            raise Unvouched("/".join([*parts, part]))
        length = lengths[-1] + bool(parts) + len(part)
        links.spend_name(length)
        if described := admits and admits.described.get(link.u):  # HDF5 need not open it
            # but loads its header, checking what it checks before decoding a dataset:
            # its checksums, its blocks' framing (an error like opening it would raise);
            # only the header's basic information (its attributes' is read by h5o.get_info)
            h5py.h5g.get_objinfo(group, raw)
            yield "/".join([*parts, part]), link.u, described
            continue
        obj = h5py.h5o.open(group, raw)
        kind = h5py.h5i.get_type(obj)
        if kind == h5py.h5i.GROUP:
            parts.append(part)
            lengths.append(length)
            stack.append((obj, links.names(obj)))
        elif kind == h5py.h5i.DATASET:
            yield "/".join([*parts, part]), link.u, obj
        else:
            raise ParameterFileError(
                f"{label}: {_quoted(parts, part)} is a named datatype, not a parameter"
            )


#: The most characters the full names of a file's groups and datasets may hold in all,
#: per byte of the file (at least :data:`SMALL`): every object HDF5 opens holds its
#: full name, and a chain of 20,000 groups (2.6 MB) took 900 MB to walk.
KEY_CHARACTERS_PER_BYTE = 32


class NestedTooDeep(ParameterFileError):
    """Groups nested too deep for the file's size (:data:`KEY_CHARACTERS_PER_BYTE`)."""


def _quoted(parts, part):
    return short(repr("/".join([*parts, part])))


_LINK_KINDS = {h5py.h5l.TYPE_SOFT: "a soft link", h5py.h5l.TYPE_EXTERNAL: "an external link"}


class _Links:
    """Lists groups' links, no more in all than the file can hold: each takes 8 bytes of
    it at least, in any format, so HDF5 walking a group's index that loops or shares
    nodes is stopped in time linear in the file; and bounds their full names."""

    def __init__(self, label, file_size):
        self.label, self.file_size = label, file_size
        self.room = file_size // 8
        self.characters = max(KEY_CHARACTERS_PER_BYTE * file_size, SMALL)

    def spend_name(self, characters):
        """Takes the full name of an object about to be opened."""
        self.characters -= characters
        if self.characters < 0:
            raise NestedTooDeep(
                f"{self.label}: its groups nest too deep for its {self.file_size:,} bytes: "
                f"their full names hold more than {KEY_CHARACTERS_PER_BYTE} characters per byte"
            )

    def names(self, group):
        names = []

        def take(name):
            names.append(name)
            self.room -= 1
            return True if self.room < 0 else None  # anything but None stops HDF5

        group.links.iterate(take, idx_type=h5py.h5.INDEX_NAME, order=h5py.h5.ITER_INC)
        if self.room < 0:
            raise ParameterFileError(
                f"{self.label}: its structure loops: its groups list more links than its "
                f"{self.file_size:,} bytes can hold"
            )
        return iter(names)


def _text(raw, parts, label):
    """The link's name, if UTF-8 and a full name leads back to it (reads open by name)."""
    group = short(repr("/".join(parts) + "/" if parts else "/"))
    if raw in (b"", b".") or b"/" in raw:
        raise ParameterFileError(f"{label}: the name {short(repr(raw))} in {group} is not a path")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ParameterFileError(
            f"{label}: the name {short(repr(raw))} in {group} is not UTF-8 text"
        ) from None


def _entry(name, address, dataset, label, file_size, budget, keep):
    if not isinstance(dataset, h5py.h5d.DatasetID):  # the Python check's Described
        return Entry(name, address, None, *dataset)
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
    if too_large(shape, dtype.itemsize):
        raise ParameterFileError(f"{what} has shape {short(shape)}, larger than any array")
    _check_storage(dataset, what, math.prod(shape) * dtype.itemsize, file_size, budget)
    need_grad = _attribute(dataset, b"need_grad", (h5py.h5t.ENUM, h5py.h5t.INTEGER), what)
    if need_grad is None:
        raise ParameterFileError(
            f"{what} has no 'need_grad' attribute; not a file written by nn.save_parameters"
        )
    index = _attribute(dataset, b"index", (h5py.h5t.INTEGER,), what)
    kept = dataset if keep else None
    return Entry(name, address, kept, shape, dtype, bool(need_grad), index, None)


def _check_storage(dataset, what, nbytes, file_size, budget):
    plist = dataset.get_create_plist()
    if plist.get_external_count():
        raise ParameterFileError(f"{what} keeps its values in external files")
    layout = plist.get_layout()
    if layout == h5py.h5d.VIRTUAL:
        raise ParameterFileError(f"{what} is a virtual dataset (its values come from other files)")
    if layout == h5py.h5d.CONTIGUOUS:
        offset, size = dataset.get_offset(), dataset.get_storage_size()
        if nbytes and offset is None:  # h5py's create_dataset(shape=...) never written
            raise ParameterFileError(f"{what} stores no values: it was created, never written")
        if nbytes and (size != nbytes or offset + size > file_size):
            raise ParameterFileError(f"{what}: its values lie outside the file (truncated?)")
    elif layout == h5py.h5d.CHUNKED:
        chunk_bytes = math.prod(plist.get_chunk()) * dataset.dtype.itemsize
        stored = dataset.get_storage_size()
        if chunk_bytes > max(nbytes, SMALL) or nbytes > max(MAX_RATIO * stored, SMALL):
            raise ParameterFileError(f"{what} declares {nbytes:,} bytes of values in chunks "
                                     f"of {chunk_bytes:,} bytes but stores {stored:,} bytes")
        budget.spend(nbytes, what)


def _attribute(dataset, name, classes, what):
    """The attribute's one integer (h5py's bools are an enum of int8), or None when absent;
    its type inspected at the HDF5 level (numpy dtypes are slow to make)."""
    try:
        attribute = h5py.h5a.open(dataset, name)
    except KeyError:  # absent
        return None
    space, stored = attribute.get_space(), attribute.get_type()
    klass = stored.get_class()
    if (klass not in classes or space.get_simple_extent_npoints() != 1
            or space.get_simple_extent_ndims() > 1
            or (klass == h5py.h5t.ENUM and stored.get_size() != 1)):  # fmt: skip
        raise ParameterFileError(f"{what} has a malformed {name.decode()!r} attribute")
    if klass == h5py.h5t.ENUM:  # read as stored: one byte, 0 or 1
        value = np.empty(space.shape, np.int8)
        attribute.read(value, mtype=stored)
    else:
        value = np.empty(space.shape, np.int64)
        attribute.read(value, mtype=h5py.h5t.NATIVE_INT64)
    return int(value.reshape(()))


# --- the crash probe's child (``_h5_probe.py``) -----------------------------------------

def not_readable(label, ext, error):
    """The ParameterFileError for whatever a reader raised on a file that is not one."""
    detail = short(str(error) or type(error).__name__)
    return ParameterFileError(f"{label} is not a readable NNabla {ext} parameter file: {detail}")


def probe_main(held, label, memory):
    import io

    # its own open file description: the parent's offset is not moved
    stream = open(held, "rb") if held else io.BytesIO(sys.stdin.buffer.read())  # noqa: SIM115
    _limit_memory(memory)
    try:
        with stream, h5py.File(stream, "r") as handle:
            _read_chunked(handle, entries(handle, label), label)
    except ParameterFileError as error:
        message = str(error)
    except Exception as error:  # noqa: BLE001 (reported to the parent, which raises it)
        message = str(not_readable(label, ".h5", error))
    else:
        sys.stdout.write("ok")
        return
    sys.stdout.write("error\n" + message)


def _read_chunked(handle, found, label):
    """Reads the values of chunked datasets, HDF5 walking their chunk index and running their
    filters only then (a damaged index crashed it there): whole up to 64 MiB, else by chunk."""
    for entry in found:
        dataset = handle[entry.name]
        pieces = [()] if dataset.nbytes <= 64 << 20 else dataset.iter_chunks()
        try:
            for piece in pieces if dataset.chunks is not None and dataset.size else []:
                dataset[piece]
        except OSError as error:  # a damaged chunk, as the load would find it
            raise unread(entry, label, f"(the file is damaged): {short(error)}") from None


def unread(entry, label, why):
    """The ParameterFileError for the values of ``entry`` that cannot be read."""
    name = short(repr(entry.name))
    return ParameterFileError(f"{label}: the values of {name} cannot be read {why}")


def _limit_memory(extra):
    """Caps this process's address space at what it holds now plus ``extra`` bytes."""
    try:
        import resource

        with open("/proc/self/status") as status:
            held = next(int(line.split()[1]) for line in status if line.startswith("VmSize"))
    except (ImportError, OSError, StopIteration):  # not Linux: the timeout still holds
        return
    limit = held * 1024 + extra
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
