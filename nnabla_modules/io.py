"""Reading and writing NNabla parameter files, exactly as NNabla writes them.

The formats are NNabla's own, so ``nn.load_parameters`` reads what
:func:`write_parameters` writes and :func:`open_parameters` reads what
``nn.save_parameters`` writes:

* ``.h5``: one HDF5 dataset per parameter, named by its key (``conv/W`` is the
  dataset ``W`` in the group ``conv``), with the attributes ``need_grad`` and
  ``index`` (the position in the file, which gives the order back);
* ``.protobuf``: a serialized ``nnabla.utils.nnabla_pb2.NNablaProtoBuf`` whose
  ``parameter`` entries hold ``variable_name``, ``shape.dim``, ``data`` (float32)
  and ``need_grad``;
* ``.nntxt`` / ``.prototxt``: the same message as text (read only);
* ``.nnp``: NNabla's zip archive; its ``.h5``, ``.protobuf`` and ``.nntxt``
  members are read in archive order, a later value of a key replacing an
  earlier one, as ``nn.load_parameters`` does (read only).

Reading is lazy where the format allows it: :func:`open_parameters` checks the
whole file and reports each parameter's name, shape, dtype and ``need_grad``
without reading values; :meth:`StoredParameter.read_into` then reads one
``.h5`` dataset straight into a destination array, so loading a large model
needs no second copy of it. Writing to a path is atomic: a temporary file in
the target's folder, flushed and synced, then ``os.replace``.

Example:

    >>> import numpy as np
    >>> from nnabla_modules import io
    >>> io.write_parameters("ck.h5", {"fc/W": np.ones((2, 3), np.float32)})
    >>> with io.open_parameters("ck.h5") as stored:
    ...     for name, param in stored.items():
    ...         print(name, param.shape, param.dtype, param.need_grad)
    fc/W (2, 3) float32 True
"""

import contextlib
import faulthandler
import io as _io
import os
import secrets
import shutil
import signal
import time
import warnings
import zipfile
from collections import OrderedDict

import h5py
import nnabla as nn
import numpy as np
from google.protobuf import text_format
from google.protobuf.message import DecodeError
from nnabla.utils import nnabla_pb2

__all__ = [
    "READ_FORMATS",
    "WRITE_FORMATS",
    "ParameterFileError",
    "StoredParameter",
    "file_format",
    "source_name",
    "open_parameters",
    "read_parameters",
    "write_parameters",
    "array_parameters",
]

#: Extensions :func:`open_parameters` reads.
READ_FORMATS = (".h5", ".protobuf", ".nntxt", ".prototxt", ".nnp")
#: Extensions :func:`write_parameters` writes.
WRITE_FORMATS = (".h5", ".protobuf")

_NUMBER_KINDS = "fiu"  # float, signed and unsigned integers: what NNabla stores


class ParameterFileError(ValueError):
    """The file is not a readable NNabla parameter file (truncated, corrupted, foreign)."""


# --- formats ---------------------------------------------------------------------


def file_format(source, extension=None, writing=False):
    """The format of ``source``: one of :data:`READ_FORMATS` (or :data:`WRITE_FORMATS`).

    Args:
        source (str, os.PathLike or file object): The file.
        extension (str, optional): The format, e.g. ``".h5"`` or ``"h5"``; wins
            over a path's own extension and is required for file objects.
        writing (bool): Check against :data:`WRITE_FORMATS` instead.

    Raises:
        ValueError: Unsupported or unknown format.
    """
    if extension is None:
        if _is_file_object(source):
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


def _is_file_object(source):
    return hasattr(source, "read") or hasattr(source, "write")


def source_name(source):
    """How errors name a file: its path, or the file object's name or repr."""
    if _is_file_object(source):
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
        return int(np.prod(self.shape, dtype=np.int64))

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


def _array_reader(array):
    def read_into(out):
        np.copyto(out, array, casting="same_kind")

    return read_into


# --- reading -------------------------------------------------------------------------


@contextlib.contextmanager
def open_parameters(source, extension=None):
    """Opens a parameter file and checks all of it; values are read on demand.

    Every format error (a truncated, corrupted or foreign file, a dataset
    outside the file, a count of values that disagrees with the shape) is
    raised here, before any value is read.

    Args:
        source (str, os.PathLike or file object): The file.
        extension (str, optional): The format; required for file objects.

    Yields:
        OrderedDict: key -> :class:`StoredParameter`, in the file's order. The
        parameters can be read while the ``with`` block is open.

    Raises:
        ParameterFileError: The file is not a readable NNabla parameter file.
        ValueError: Unsupported format.
        OSError: The file cannot be opened.
    """
    ext = file_format(source, extension)
    label = source_name(source)
    with contextlib.ExitStack() as stack:
        try:
            stored = _OPENERS[ext](source, label, stack)
        except (ParameterFileError, FileNotFoundError, PermissionError):
            raise
        except Exception as error:  # whatever h5py, zipfile or protobuf raise on garbage
            raise _not_readable(label, ext, error) from error
        yield stored


def read_parameters(source, extension=None):
    """Reads a whole parameter file into memory.

    Args:
        source (str, os.PathLike or file object): The file.
        extension (str, optional): The format; required for file objects.

    Returns:
        OrderedDict: key -> ``(numpy.ndarray, need_grad)``, in the file's order.
    """
    with open_parameters(source, extension) as stored:
        return OrderedDict((name, (p.read(), p.need_grad)) for name, p in stored.items())


def _not_readable(label, ext, error):
    detail = str(error) or type(error).__name__
    return ParameterFileError(f"{label} is not a readable NNabla {ext} parameter file: {detail}")


def _open_h5(source, label, stack):
    if _is_file_object(source):
        size = _stream_size(source)
        if not hasattr(source, "fileno") and not _has_checksums(source):
            # in memory: a forked child reads its own copy
            _survives_in_child(lambda: _h5_parameters(h5py.File(source, "r"), label, size), label)
        handle = h5py.File(source, "r")
    else:
        path = os.fspath(source)
        with open(path, "rb"):  # FileNotFoundError / PermissionError as they are
            pass
        size = os.path.getsize(path)
        with open(path, "rb") as stream:
            checked = _has_checksums(stream)
        if not checked:
            _survives_in_child(lambda: _h5_parameters(h5py.File(path, "r"), label, size), label)
        handle = h5py.File(path, "r")
    stack.enter_context(handle)
    return _h5_parameters(handle, label, size)


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _has_checksums(stream):
    """True for an HDF5 file whose superblock (version 2 or later) carries checksums.

    Files written here are such files; NNabla's own (HDF5's earliest format,
    version 0) are not, and get the forked probe below.
    """
    position = stream.tell()
    try:
        head = stream.read(9)
    finally:
        stream.seek(position)
    return len(head) == 9 and head[:8] == _HDF5_SIGNATURE and head[8] >= 2


#: Read an HDF5 file without checksums (NNabla's own) in a forked child first.
#: It costs a fork and a page fault per page written afterwards (a 100 MB load:
#: 1.36x nn.load_parameters instead of 0.60x); set False for trusted files, or
#: convert them once (``model.save_parameters`` writes checksummed files).
PROBE_UNCHECKSUMMED_H5 = True
#: Seconds a forked probe may take before the file is read without one.
PROBE_TIMEOUT = 60.0


def _survives_in_child(read_structure, label):
    """Reads the file's structure in a forked child first; raises if that crashes.

    HDF5 trusts a file's metadata: some corruptions (a flipped bit in an object
    header, found by fuzzing) crash the C library with a segmentation fault,
    which no ``except`` can catch. A child process meets the crash instead,
    and the caller gets a clean error. Where ``fork`` is missing, it is skipped.
    """
    if not hasattr(os, "fork") or not PROBE_UNCHECKSUMMED_H5:
        return
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code
        faulthandler.disable()  # the crash is expected here; the parent reports it
        code = 0
        try:
            read_structure()
        except BaseException:
            code = 1  # a clean error: the parent reads the file again and reports it
        os._exit(code)
    deadline = time.monotonic() + PROBE_TIMEOUT
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:  # a lock held across fork: read without the probe
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return
        time.sleep(0.001)
    if os.WIFSIGNALED(status):
        raise ParameterFileError(
            f"{label} is not a readable NNabla .h5 parameter file: its structure is corrupted "
            f"(reading it crashed the HDF5 library with signal {os.WTERMSIG(status)})"
        )


def _stream_size(stream):
    position = stream.tell()
    size = stream.seek(0, os.SEEK_END)
    stream.seek(position)
    return size


def _h5_parameters(handle, label, file_size):
    found = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            found.append((name, obj))

    handle.visititems(visit)
    entries = []
    for position, (name, dataset) in enumerate(found):
        need_grad, index = _h5_attributes(dataset, name, label)
        reader = _h5_reader(dataset, name, label, file_size)
        entries.append(((index is None, index or 0, position), name, dataset, need_grad, reader))
    entries.sort(key=lambda entry: entry[0])  # NNabla's order: by 'index'
    return OrderedDict(
        (name, StoredParameter(name, dataset.shape, dataset.dtype, need_grad, reader))
        for _, name, dataset, need_grad, reader in entries
    )


def _h5_attributes(dataset, name, label):
    if dataset.dtype.kind not in _NUMBER_KINDS:
        raise ParameterFileError(f"{label}: dataset {name!r} holds {dataset.dtype}, not numbers")
    attrs = dataset.attrs
    if "need_grad" not in attrs:
        raise ParameterFileError(
            f"{label}: dataset {name!r} has no 'need_grad' attribute; "
            "not a file written by nn.save_parameters"
        )
    need_grad = attrs["need_grad"]
    index = attrs.get("index")
    flag_types = (bool, np.bool_, int, np.integer)
    if np.ndim(need_grad) or np.ndim(index) or not isinstance(need_grad, flag_types):
        raise ParameterFileError(f"{label}: dataset {name!r} has malformed attributes")
    return bool(need_grad), None if index is None else int(index)


def _h5_reader(dataset, name, label, file_size):
    """A reader for one dataset; checks now that its values lie inside the file."""
    layout = dataset.id.get_create_plist().get_layout()
    if layout == h5py.h5d.CONTIGUOUS:
        offset, size = dataset.id.get_offset(), dataset.id.get_storage_size()
        expected = dataset.size * dataset.dtype.itemsize
        if expected and (offset is None or size != expected or offset + size > file_size):
            raise ParameterFileError(
                f"{label}: the values of {name!r} lie outside the file (truncated?)"
            )
        return dataset.read_direct
    if layout == h5py.h5d.COMPACT:  # stored in the header, already read and checked
        return dataset.read_direct
    # Chunked, compressed or virtual: not NNabla's layout, and decoding can fail
    # anywhere. Read it now, so that every failure happens before any value is used.
    array = dataset[()]
    return _array_reader(array)


def _open_protobuf(source, label, stack):
    proto = nnabla_pb2.NNablaProtoBuf()
    data = _read_bytes(source)
    try:
        with warnings.catch_warnings():
            # protobuf only warns when bytes are left over ("Not all data was
            # converted"): for a parameter file that is damage, not a detail.
            warnings.simplefilter("error", RuntimeWarning)
            proto.ParseFromString(data)
    except (DecodeError, RuntimeWarning) as error:
        raise ParameterFileError(f"{label}: not an NNabla protobuf file ({error})") from None
    return _proto_parameters(proto, label)


def _open_nntxt(source, label, stack):
    proto = nnabla_pb2.NNablaProtoBuf()
    text = _read_bytes(source)
    text_format.Merge(text.decode("utf-8") if isinstance(text, bytes) else text, proto)
    return _proto_parameters(proto, label)


def _read_bytes(source):
    if _is_file_object(source):
        return source.read()
    with open(os.fspath(source), "rb") as handle:
        return handle.read()


def _proto_parameters(proto, label):
    stored = OrderedDict()
    for parameter in proto.parameter:
        name, shape = parameter.variable_name, tuple(parameter.shape.dim)
        count = int(np.prod(shape, dtype=np.int64))
        if not name or any(d < 0 for d in shape) or len(parameter.data) != count:
            raise ParameterFileError(
                f"{label}: parameter {name!r} of shape {shape} holds {len(parameter.data)} values"
            )
        stored[name] = StoredParameter(
            name, shape, np.float32, parameter.need_grad, _proto_reader(parameter)
        )
    return stored


def _proto_reader(parameter):
    def read_into(out):
        values = np.fromiter(parameter.data, np.float32, count=len(parameter.data))
        np.copyto(out, values.reshape(out.shape), casting="same_kind")

    return read_into


def _open_nnp(source, label, stack):
    archive = stack.enter_context(zipfile.ZipFile(source, "r"))
    stored = OrderedDict()
    for member in archive.namelist():
        ext = os.path.splitext(member)[1].lower()
        if ext not in READ_FORMATS or ext == ".nnp":
            continue  # nnp_version.txt, optimizer states
        with archive.open(member) as handle:
            data = _io.BytesIO(handle.read())
        data.name = f"{label}:{member}"
        stored.update(_OPENERS[ext](data, f"{label} (member {member!r})", stack))
    return stored


_OPENERS = {
    ".h5": _open_h5,
    ".protobuf": _open_protobuf,
    ".nntxt": _open_nntxt,
    ".prototxt": _open_nntxt,
    ".nnp": _open_nnp,
}


# --- writing -------------------------------------------------------------------------


def write_parameters(target, params, extension=None):
    """Writes parameters in NNabla's own format, atomically when given a path.

    A path is written to a temporary file in its folder, flushed and synced,
    then renamed over ``target`` (``os.replace``): a crash mid-save leaves the
    previous file intact (and at most a stray ``.<name>.<random>.tmp`` beside it).
    An existing file's permission bits are kept. A file object is written
    directly and rewound, as ``nn.save_parameters`` does.

    Args:
        target (str, os.PathLike or file object): Where to write.
        params (mapping or iterable of pairs): key -> value, where a value is an
            ``nn.Variable`` (its ``need_grad`` is stored), a
            :class:`StoredParameter` (copied one at a time: converting a file
            needs no second copy of it), a ``(array, need_grad)`` pair, or an
            array (``need_grad=True``).
        extension (str, optional): The format (``.h5`` or ``.protobuf``); wins
            over a path's own extension and is required for file objects.
    """
    ext = file_format(target, extension, writing=True)
    items = list(params.items() if hasattr(params, "items") else params)
    writer = _WRITERS[ext]
    if _is_file_object(target):
        writer(target, items)
        if hasattr(target, "seek"):
            target.seek(0)
        return
    write_atomically(os.fspath(target), lambda path: writer(path, items))


def _values(value):
    """``(array, need_grad)`` of one value given to :func:`write_parameters`."""
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


def _write_h5(target, items):
    # HDF5 1.8's file format: readable by any HDF5 since 2008 (h5py, NNabla), and
    # its metadata carries checksums, so a damaged file is an error, not a crash.
    with h5py.File(target, "w", libver=("v108", "v108")) as handle:
        for index, (name, value) in enumerate(items):
            array, need_grad = _values(value)
            handle[name] = array
            handle[name].attrs["need_grad"] = need_grad
            handle[name].attrs["index"] = index  # NNabla reads the order back from it


def _write_protobuf(target, items):
    proto = nnabla_pb2.NNablaProtoBuf()
    for name, value in items:
        array, need_grad = _values(value)
        parameter = proto.parameter.add()
        parameter.variable_name = name
        parameter.shape.dim.extend(array.shape)
        parameter.data.extend(np.ravel(array).astype(np.float32, copy=False))
        parameter.need_grad = need_grad
    data = proto.SerializeToString()
    if _is_file_object(target):
        target.write(data)
    else:
        with open(target, "wb") as handle:
            handle.write(data)


_WRITERS = {".h5": _write_h5, ".protobuf": _write_protobuf}


def write_atomically(path, write):
    folder = os.path.dirname(os.path.abspath(path))
    temporary = _create_temporary(folder, os.path.basename(path))
    try:
        write(temporary)
        _fsync(temporary)
        if os.path.exists(path):
            shutil.copymode(path, temporary)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(folder)  # makes the rename itself durable


def _create_temporary(folder, base):
    """An empty new file beside the target, with the mode a plain ``open`` would give."""
    while True:
        path = os.path.join(folder, f".{base}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return path
        except FileExistsError:
            continue


def _fsync(path):
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_directory(folder):
    if not hasattr(os, "O_DIRECTORY"):  # Windows cannot open a folder
        return
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
