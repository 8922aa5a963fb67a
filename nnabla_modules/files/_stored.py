"""Formats and stored parameters: what a parameter file holds, read on demand.

:class:`StoredParameter` describes one parameter of a file (name, shape,
dtype, ``need_grad``) and reads its values when asked; ``files.py`` opens the
formats and builds them.
"""

import bisect
import math
import os
from collections import OrderedDict

import h5py
import nnabla as nn
import numpy as np

from ._h5 import KEY_CHARACTERS_PER_BYTE, SMALL, ParameterFileError, short, unread

#: Extensions :func:`~nnabla_modules.files.open_parameters` reads.
READ_FORMATS = (".h5", ".protobuf", ".nntxt", ".prototxt", ".nnp")
#: Extensions :func:`~nnabla_modules.files.write_parameters` writes.
WRITE_FORMATS = (".h5", ".protobuf")


# --- formats ---------------------------------------------------------------------


def file_format(source, extension=None, writing=False):
    """The format of ``source``: one of :data:`READ_FORMATS` (or :data:`WRITE_FORMATS`).

    Args:
        source (str, os.PathLike or file object): The file.
        extension (str, optional): The format, e.g. ``".h5"`` or ``"h5"``; wins
            over a path's own extension and is required for file objects.
        writing (bool): Check against :data:`WRITE_FORMATS` instead.

    Raises:
        ValueError: Unsupported or unknown format, or a directory.
    """
    if not is_file_object(source) and os.path.isdir(source):
        raise DirectoryGiven(_directory_message(source, WRITE_FORMATS if writing else READ_FORMATS))
    if extension is None:
        if is_file_object(source):
            raise ValueError(
                f"{source_name(source)}: a file object has no extension; pass extension= "
                f"(one of {', '.join(WRITE_FORMATS if writing else READ_FORMATS)})"
            )
        extension = os.path.splitext(os.fspath(source))[1]
    ext = extension.lower()
    ext = ext if ext.startswith(".") else "." + ext
    supported = WRITE_FORMATS if writing else READ_FORMATS
    if ext not in supported:
        verb = "write" if writing else "read"
        raise ValueError(
            f"{source_name(source)}: cannot {verb} the format {extension!r}; "
            f"supported: {', '.join(supported)}"
        )
    return ext


class DirectoryGiven(IsADirectoryError, ParameterFileError):
    """A directory given for a parameter file: what the OS says, and no parameter file."""


def _directory_message(path, supported):
    """What to give instead of the directory ``path``: the files of a format in it, if any."""
    path = os.fspath(path)
    try:
        files = sorted(f for f in os.listdir(path) if os.path.splitext(f)[1].lower() in supported)
    except OSError:
        files = []
    example = os.path.join(path, files[0] if files else "model" + supported[0])
    held = f" (it holds {', '.join(files[:3])}{', ...' if len(files) > 3 else ''})" if files else ""
    return (
        f"{source_name(path)} is a directory, not a parameter file; give the path of a file "
        f"({', '.join(supported)}), e.g. {example!r}{held}"
    )


def check_keys(keys, label):
    """Refuses keys that no file reads back as written: not text, empty, not UTF-8
    (a lone surrogate), or given twice (a reader keeps one); returns them, sorted."""
    seen = set()
    for key in keys:
        if not isinstance(key, str):
            raise TypeError(f"{label}: parameter keys must be str, got {short(repr(key))}")
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                f"{label}: the key {short(repr(key))} is not valid text (UTF-8), "
                "as a file's keys are"
            ) from None
        if not key or key in seen:
            why = "is given twice" if key else "is empty: a file's key names its parameter"
            raise ValueError(f"{label}: the key {short(repr(key))} {why}")
        seen.add(key)
    return sorted(seen)


def check_h5_keys(keys, label):
    """Refuses keys that HDF5 would store under another name, or could not store at all.

    HDF5 splits a name at each '/' into groups: ``/fc/W``, ``fc//W`` and
    ``fc/./W`` would all come back as ``fc/W``; a key cannot be a dataset and
    the group of another key at once.
    """
    keys = list(keys)
    ordered = check_keys(keys, label)
    for key in keys:  # the first bad key as given
        names = key.split("/")
        if not all(names) or "." in names or "\0" in key:
            raise ValueError(
                f"{label}: the key {short(repr(key))} cannot be stored in an .h5 file: "
                "HDF5 reads each '/' as a scope, so a key is names joined by single '/' "
                "(none leading, trailing or doubled, no '.' name, no NUL character)"
            )
    for key in ordered:  # the keys under "fc/" follow "fc/" in sorted order
        after = bisect.bisect_left(ordered, key + "/")
        if after < len(ordered) and ordered[after].startswith(key + "/"):
            raise ValueError(
                f"{label}: the key {short(repr(key))} is both a parameter and the scope "
                f"of {short(repr(ordered[after]))}; an .h5 file cannot hold both"
            )
    _check_h5_depth(ordered, label)


#: Bytes an .h5 file takes per group or dataset at least, for :func:`_check_h5_depth`.
_OBJECT_BYTES = 100


def _check_h5_depth(ordered, label):
    """Refuses keys whose groups nest deeper than a reader of the file would accept.

    Reading an .h5 file, each group and dataset HDF5 opens holds its full name,
    so their names are bounded by the file's size (``_h5.KEY_CHARACTERS_PER_BYTE``
    per byte); writing them costs as much. Checked here against the least the
    file will take (:data:`_OBJECT_BYTES` per object), in time linear in the
    keys: a key's new groups are those past what it shares with the one before.
    """
    characters = objects = 0
    previous = ""
    for key in ordered:
        shared = len(os.path.commonprefix([previous, key + "/"]))
        shared = key.rfind("/", 0, shared) + 1  # at a '/': whole groups only
        for position in _slashes(key, shared):
            characters += position  # the group key[:position]
            objects += 1
        characters += len(key)
        objects += 1
        previous = key + "/"
        if characters > KEY_CHARACTERS_PER_BYTE * _OBJECT_BYTES * objects + SMALL:
            raise ValueError(
                f"{label}: the key {short(repr(key))} nests too deep for an .h5 file: the "
                "full names of its groups would hold more characters than a reader of the "
                "file accepts (nest the keys less deep, or save to .protobuf)"
            )


def _slashes(key, start):
    position = key.find("/", start)
    while position != -1:
        yield position
        position = key.find("/", position + 1)


def is_file_object(source):
    return hasattr(source, "read") or hasattr(source, "write")


def source_name(source):
    """How errors name a file: its path, or the file object's name or repr.

    Args:
        source (str, os.PathLike or file object): The file.
    """
    if is_file_object(source):
        name = getattr(source, "name", None)
        return repr(name) if isinstance(name, str) else repr(source)
    return repr(os.fspath(source))


# --- stored parameters -------------------------------------------------------------


class StoredParameter:
    """One parameter of a file: its metadata now, its values on demand.

    Attributes:
        name (str): The key, e.g. ``"conv/W"``.
        shape (tuple of int): The shape.
        dtype (numpy.dtype): The stored dtype (``float32`` for protobuf formats).
        need_grad (bool): The stored ``need_grad`` flag.

    Args:
        name (str): The key.
        shape (sequence of int): The shape.
        dtype (numpy.dtype or str): The stored dtype.
        need_grad (bool): The stored ``need_grad`` flag.
        read_into (callable): ``read_into(out)`` writes the values into the
            array ``out`` of this shape.
    """

    __slots__ = ("name", "shape", "dtype", "need_grad", "_read_into")

    def __init__(self, name, shape, dtype, need_grad, read_into):
        self.name = name
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.need_grad = bool(need_grad)
        self._read_into = read_into

    @property
    def size(self):
        """The number of elements."""
        return math.prod(self.shape)

    def read(self):
        """Returns the values as a new numpy array of the stored dtype."""
        out = np.empty(self.shape, self.dtype)
        self.read_into(out)
        return out

    def read_into(self, out):
        """Writes the values into ``out``, converting to ``out.dtype``.

        ``.h5`` datasets are read straight from the file into ``out``.

        Args:
            out (numpy.ndarray): A writable, C-contiguous array of this shape.
        """
        if out.shape != self.shape:
            raise ValueError(f"{self.name}: shape {self.shape} does not fit {out.shape}")
        if self.size:
            self._read_into(out)

    def __repr__(self):
        return (
            f"StoredParameter({self.name!r}, shape={self.shape}, dtype={self.dtype}, "
            f"need_grad={self.need_grad})"
        )


def array_parameters(values):
    """Wraps in-memory values as :class:`StoredParameter` objects.

    Args:
        values (mapping): key -> ``numpy.ndarray``, ``nn.Variable``, ``nn.NdArray``
            or anything ``numpy.asarray`` takes. A Variable gives its ``need_grad``;
            other values count as ``need_grad=True`` (PF's default).

    Returns:
        OrderedDict: key -> :class:`StoredParameter`, in the mapping's order.
    """
    stored = OrderedDict()
    for name, value in values.items():
        need_grad = True
        if isinstance(value, nn.Variable):
            need_grad, value = value.need_grad, value.data.get_data("r")
        elif isinstance(value, nn.NdArray):
            value = value.get_data("r")
        array = np.asarray(value)
        stored[name] = StoredParameter(
            name, array.shape, array.dtype, need_grad, _array_reader(array)
        )
    return stored


def in_memory(param):
    """A :class:`StoredParameter` holding ``param``'s values, read now: its file may close."""
    values = param.read()
    return StoredParameter(param.name, param.shape, param.dtype, param.need_grad,
                           _array_reader(values))  # fmt: skip


def _array_reader(array):
    def read_into(out):
        np.copyto(out, array, casting="same_kind")

    return read_into


class OpenH5:
    """The open ``h5py.File`` and the datasets kept open (name -> DatasetID) that readers
    use, until :meth:`close` when the file's ``with`` block ends: then no HDF5 object is
    left to a ``StoredParameter`` kept longer (a traceback's), so they all die inside the
    block. Their deaths run Python code (h5py's registry of objects): a signal handler
    raising there, where a load no longer holds signals back, would only be printed."""

    __slots__ = ("handle", "datasets")

    def __init__(self, handle):
        self.handle, self.datasets = handle, {}

    def close(self):
        self.handle, self.datasets = None, {}


class DatasetReader:
    """``read_into(out)`` of one dataset (``_h5.Entry``) of an :class:`OpenH5`:
    straight from the file, opening the dataset only while it reads unless it is kept
    open; damage names the file. A dataset the Python check described
    (``entry.location``) is read from ``stream`` without HDF5, unless ``out``'s dtype
    asks for a conversion numpy does not make as HDF5 does (:func:`_converts_as_hdf5`).

    An object of four slots, not closures: a file may hold 20,000 datasets.
    """

    __slots__ = ("opened", "entry", "label", "stream")

    def __init__(self, opened, entry, label, stream):
        self.opened, self.entry, self.label, self.stream = opened, entry, label, stream

    def __call__(self, out):
        entry = self.entry
        if self.opened.handle is None:  # a file object or bytes may hold another file now
            raise ValueError(f"{self.label} is closed: read its values inside its with block")
        if out.dtype.kind not in "iuf":  # the caller's array, not the file, is at fault
            raise unread(entry, self.label, f"into {out.dtype}: read numbers into an array of "
                         "integers or floats")  # fmt: skip
        if entry.location is not None and _converts_as_hdf5(entry.dtype, out.dtype):
            _read_located(self.stream, entry, self.label, out)
        else:
            self._read_by_hdf5(out)

    def _read_by_hdf5(self, out):
        opened, entry, label = self.opened, self.entry, self.label
        path = entry.name.encode("utf-8")  # the names checked lead back to their objects
        dataset = opened.datasets.get(entry.name) or _reopen(opened.handle, path, entry, label)
        try:
            dataset.read(h5py.h5s.ALL, h5py.h5s.ALL, out)
        except OSError as error:  # a damaged chunk (its checksum, its compression)
            raise unread(entry, label, f"(the file is damaged): {short(error)}") from None


def _converts_as_hdf5(stored, wanted):
    """True when numpy's cast from ``stored`` to ``wanted`` is HDF5's conversion: exact,
    or rounding into float32 or float64. HDF5 clamps a value an integer type cannot hold
    (numpy wraps it), rounds into float16 its own way and converts to no other kind."""
    if wanted.kind not in "iuf":
        return False
    return np.can_cast(stored, wanted, "safe") or (wanted.kind == "f" and wanted.itemsize >= 4)


def _read_located(stream, entry, label, out):
    """Reads what HDF5 would: the dataset's bytes where its layout says, in its dtype.

    Only for a dataset the Python check read whole (``_h5_read.Described``): its
    values are contiguous in the file at ``entry.location``, or are that ``bytes``
    (a compact layout). Conversions are numpy's: :class:`DatasetReader` asks for
    those only where they are HDF5's.
    """
    direct = out.dtype == entry.dtype and out.flags.c_contiguous
    values = out if direct else np.empty(out.shape, entry.dtype)
    raw = values.reshape(-1).view(np.uint8)
    if isinstance(entry.location, bytes):
        raw[:] = np.frombuffer(entry.location, np.uint8)
    else:
        _read_at(stream, entry.location, memoryview(raw), entry, label)
    if not direct:
        with np.errstate(all="ignore"):  # HDF5's conversions say nothing either
            np.copyto(out, values, casting="unsafe")


def _read_at(stream, offset, view, entry, label):
    done = 0
    while done < len(view):
        try:
            stream.seek(offset + done)
            count = _read_into(stream, view[done:])
        except OSError as error:
            raise unread(entry, label, f"(a disk error?): {short(error)}") from None
        if not count:
            raise unread(entry, label, "(the file is shorter than when it was checked)")
        done += count


def _read_into(stream, view):
    if hasattr(stream, "readinto"):
        return stream.readinto(view)
    data = stream.read(len(view))  # a file object with read() only
    view[: len(data)] = data
    return len(data)


def _reopen(handle, path, entry, label):
    try:
        dataset = h5py.h5d.open(handle.id, path)
    except (KeyError, OSError) as error:
        raise unread(entry, label, f"(the file changed?): {short(error)}") from None
    if h5py.h5o.get_info(dataset).addr != entry.address:
        raise unread(entry, label, "(the file changed since it was checked)")
    return dataset


def stored_size(stream):
    """The size of a seekable stream, its position kept."""
    position = stream.tell()
    try:
        return stream.seek(0, os.SEEK_END)
    finally:
        stream.seek(position)


def read_bytes(source):
    """A file's bytes, no more than its size says: read to its end, a file of ``/proc``
    or ``/sys`` (of size 0) may never end or block for good (``/proc/kmsg``)."""
    if is_file_object(source):
        return source.read(_size_left(source))
    with open(os.fspath(source), "rb") as handle:
        return handle.read(_size_left(handle))


def _size_left(handle):
    """The bytes from the position on, as the file's size says (``fstat`` for a file of the
    system: one of ``/proc`` cannot seek to its end)."""
    try:
        size = os.fstat(handle.fileno()).st_size
    except (AttributeError, OSError, ValueError):  # io.BytesIO and other streams
        size = stored_size(handle)
    return max(size - handle.tell(), 0)


def written_values(value, what, kinds):
    """``(array, need_grad)`` of one value given to :func:`write_parameters`; a ValueError
    unless the array's dtype is of ``kinds``: what the format's readers take back as
    numbers (an ``.h5`` bool is an enum to them; complex, text and dates are no weights)."""
    array, need_grad = _given_values(value)
    if array.dtype.kind not in kinds:
        raise ValueError(f"{what} holds {array.dtype}, not numbers the file can keep: give "
                         "it as integers or floats")
    return array, need_grad


def _given_values(value):
    if isinstance(value, nn.Variable):
        return value.data.get_data("r"), value.need_grad
    if isinstance(value, StoredParameter):
        return value.read(), value.need_grad
    if isinstance(value, tuple) and len(value) == 2:
        array, need_grad = value
        if isinstance(array, nn.NdArray):
            array = array.get_data("r")
        return np.asarray(array), bool(need_grad)
    if isinstance(value, nn.NdArray):
        return value.get_data("r"), True
    return np.asarray(value), True
