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
needs no second copy of it. Hostile files (links to other files, declared
sizes out of proportion to the file, names that are not text, damage that
would crash HDF5) are refused before any value is allocated; see
docs/checkpoints.md. Writing to a path is atomic (:func:`write_atomically`):
a temporary file in the target's folder, flushed, read back, synced, then
``os.replace``.

Example:

    >>> import numpy as np
    >>> from nnabla_modules import files
    >>> files.write_parameters("ck.h5", {"fc/W": np.ones((2, 3), np.float32)})
    >>> with files.open_parameters("ck.h5") as stored:
    ...     for name, param in stored.items():
    ...         print(name, param.shape, param.dtype, param.need_grad)
    fc/W (2, 3) float32 True
"""

import contextlib
import errno
import io as _io
import os
import warnings
import zipfile
from collections import OrderedDict

import h5py
from google.protobuf import text_format
from nnabla.utils import nnabla_pb2

from . import _h5, _h5_probe, _protobuf, _unzip
from ._atomic import NotRegularFile, open_regular, special_file, unbounded_stream, write_atomically
from ._h5 import ParameterFileError
from ._h5_check import Damaged, vouch
from ._signals import deliver_pending, interrupts_held_back, raised_by_a_handler
from ._stored import (
    READ_FORMATS,
    WRITE_FORMATS,
    DatasetReader,
    OpenH5,
    StoredParameter,
    array_parameters,
    check_h5_keys,
    check_keys,
    file_format,
    in_memory,
    is_file_object,
    read_bytes,
    source_name,
    stored_size,
    written_values,
)

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
    "write_atomically",
    "array_parameters",
]


ParameterFileError.__module__ = __name__  # defined beside the HDF5 walk, raised by all formats


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
    # A pipe would block the load for good or fill the memory, a device never end.
    if is_file_object(source):
        kind = unbounded_stream(source)
        if kind is not None:
            raise ParameterFileError(
                f"{label} is {kind}, whose size is unknown: give a file, or its bytes in an "
                "io.BytesIO"
            )
    else:
        kind = special_file(os.fspath(source))
        if kind is not None:
            raise ParameterFileError(f"{label} is not a regular file but {kind}; give a file")
    with contextlib.ExitStack() as stack:
        # A signal's handler raising meanwhile (a SIGALRM timeout) would be taken for the
        # file's fault, or leave _probe's child running: it raises once the file is open,
        # or where a long .protobuf scan delivers it, as itself.
        with interrupts_held_back():
            try:
                if not is_file_object(source):  # opened here for every format
                    source = stack.enter_context(_open_path(source, label))
                stored = _OPENERS[ext](source, label, stack)
            except (ParameterFileError, FileNotFoundError, PermissionError):
                raise
            except Exception as error:  # whatever h5py, zipfile or protobuf raise on garbage
                if raised_by_a_handler(error):
                    raise
                raise _h5.not_readable(label, ext, error) from error
        yield stored


def _open_path(path, label):
    """The file at ``path``; refused if it is no longer a regular file (``open_regular``)."""
    try:
        return open(open_regular(os.fspath(path), os.O_RDONLY), "rb")
    except NotRegularFile as error:  # a named pipe put in its place since it was checked
        kind = error.kind
    raise ParameterFileError(f"{label} is not a regular file but {kind}; give a file")


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


def _open_h5(stream, label, stack, budget=None):
    admits = _check_before_hdf5(stream, label, budget)
    # HDF5 reads through the stream: the file checked above, even if its path is
    # replaced meanwhile (an atomic save by another process), and its own size.
    opened = OpenH5(stack.enter_context(h5py.File(stream, "r")))
    stack.callback(opened.close)  # before the file is closed: see OpenH5
    try:
        found = _h5.entries(opened.handle, label, budget, admits)
    except _h5.Unvouched:  # an object deeper in the file that Python cannot vouch for
        opened.handle.close()
        _probe(stream, label, budget)
        opened.handle = stack.enter_context(h5py.File(stream, "r"))
        found = _h5.entries(opened.handle, label, budget)
    except Damaged as error:
        raise _corrupted(label, error) from None
    opened.datasets = {e.name: e.dataset for e in found if e.dataset is not None}
    stored = OrderedDict()
    order = sorted(  # NNabla's order: by 'index', then as found
        range(len(found)), key=lambda i: (found[i].index is None, found[i].index or 0, i)
    )
    for position in order:
        entry = found[position]
        read_into = DatasetReader(opened, entry._replace(dataset=None), label, stream)
        stored[entry.name] = StoredParameter(
            entry.name, entry.shape, entry.dtype, entry.need_grad, read_into
        )
    return stored


#: Check an HDF5 file before HDF5 reads it: in Python, and in a child process
#: where Python cannot vouch for it (see docs/checkpoints.md). Set False for
#: files you trust.
PROBE_UNCHECKSUMMED_H5 = True


def _check_before_hdf5(stream, label, budget):
    """Raises ParameterFileError for a file whose metadata would crash or hang HDF5.

    Returns:
        The check of each object before HDF5 opens it (``_h5_check.vouch``), or
        None when the child process has read the file (or no check is wanted).
    """
    if not PROBE_UNCHECKSUMMED_H5:
        return None
    try:
        admits = vouch(stream)
    except Damaged as error:
        raise _corrupted(label, error) from None
    if admits is None:
        _probe(stream, label, budget)
    return admits


def _corrupted(label, error):
    return ParameterFileError(f"{label} is not a readable NNabla .h5 parameter file: {error}")


def _probe(stream, label, budget):
    if budget is not None:  # an .nnp member: one archive may start only so many
        budget.spend_probe(label)
    try:
        _h5_probe.probe(stream, label)
    except OSError as error:  # no child process: read it here, as NNabla would
        warnings.warn(
            f"{label}: cannot start the process that checks an HDF5 file Python cannot "
            f"vouch for ({error}); reading it unchecked",
            RuntimeWarning,
            stacklevel=5,
        )


def _open_protobuf(handle, label, stack, budget=None):
    """Scanned, not parsed: the values stay in the file until read (``_protobuf.py``); an
    entry is checked as it is scanned, a later one of a name replacing the earlier."""
    stored = OrderedDict()
    for parameter in _protobuf.scan(handle, label, budget):
        try:
            name = parameter.name.decode("utf-8")
        except UnicodeDecodeError:
            raise ParameterFileError(
                f"{label}: not an NNabla protobuf file (a name that is not UTF-8: "
                f"{_h5.short(repr(parameter.name))})"
            ) from None
        count = parameter.count
        read_into = _protobuf.Reader(handle, parameter.segments, count, label)
        _protobuf.add_parameter(stored, label, name, parameter.dims, count, parameter.need_grad,
                             read_into, budget)  # fmt: skip
    return stored


#: The most memory parsing text format takes per byte of the text (an empty message such as
#: ``executor{}`` takes 21 bytes a byte), charged to an ``.nnp`` archive's budget.
TEXT_PARSE_RATIO = 24


def _open_nntxt(source, label, stack, budget=None):
    text = read_bytes(source)
    if budget is not None:
        what = f"{label}, parsed ({TEXT_PARSE_RATIO}x the text),"
        budget.spend(TEXT_PARSE_RATIO * len(text), what)
    proto = nnabla_pb2.NNablaProtoBuf()
    text_format.Merge(text.decode("utf-8") if isinstance(text, bytes) else text, proto)
    return _protobuf.message_parameters(proto, label, budget)


def _open_nnp(source, label, stack):
    """The members' parameters, read whole, as NNabla reads them: one member at a time,
    each closed before the next, a later value of a key replacing an earlier one.

    The archive's real size bounds what it may unpack: its members' sizes and the
    chunked datasets inside them draw on one :class:`~nnabla_modules.files._h5.Budget`,
    and each member is unpacked in bounded pieces (``_unzip.py``).
    """
    archive = stack.enter_context(zipfile.ZipFile(source, "r"))
    _unzip.check_members(archive, label)
    budget = _unzip.Budget(label, stored_size(archive.fp))
    stored = OrderedDict()
    for info in archive.infolist():
        ext = os.path.splitext(info.filename)[1].lower()
        if ext not in READ_FORMATS or ext == ".nnp":
            continue  # nnp_version.txt, optimizer states
        member = f"{label} (member {_h5.short(repr(info.filename))})"
        data = _io.BytesIO(_unzip.member_bytes(archive, info, member, budget))
        data.name = member
        with contextlib.ExitStack() as member_stack:
            found = _OPENERS[ext](data, member, member_stack, budget)
            stored.update((name, in_memory(param)) for name, param in found.items())
        del data, found
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

    A path is written by :func:`write_atomically`: a crash, a full disk or an
    error mid-save leaves the previous file intact, and the file written is
    read back (its structure, names and shapes) before it replaces the old
    one. A file object is written directly and rewound, as
    ``nn.save_parameters`` does.

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
    check = check_h5_keys if ext == ".h5" else check_keys  # before anything is written
    check([name for name, _ in items], source_name(target))
    writer, label = _WRITERS[ext], source_name(target)
    if is_file_object(target):
        with interrupts_held_back():  # as write_atomically does: see _write_h5
            writer(target, items, label)
        if hasattr(target, "seek"):
            target.seek(0)
        return

    def write_and_verify(path):
        _verify(path, ext, writer(path, items, label), label)

    write_atomically(target, write_and_verify)


def _write_h5(target, items, label):
    """Writes the items; returns ``[(name, shape)]`` as written, for :func:`_verify`.

    Called with signals held back: a Ctrl-C raised inside h5py's cleanup code
    (a dataset or a file closed) would only be printed. Their handlers run
    between datasets instead.
    """
    written = []
    with _new_h5(target) as handle:
        for index, (name, value) in enumerate(items):
            array, need_grad = written_values(value, _what(label, name), "iuf")
            dataset = handle.create_dataset(name, data=array)
            dataset.attrs["need_grad"] = need_grad
            dataset.attrs["index"] = index  # NNabla reads the order back from it
            written.append((name, array.shape))
            del array, dataset  # one parameter in memory at a time
            deliver_pending()
        handle.flush()  # raises where the last writes fail; a failing close only warns
    return written


def _new_h5(target):
    """A new HDF5 file whose every failed write raises.

    HDF5 1.8's file format: readable by any HDF5 since 2008 (h5py, NNabla), and
    its metadata carries checksums, so a damaged file is an error, not a crash.
    HDF5's sieve buffer is off: it holds small datasets' values until the dataset
    is closed, where a failed write (a full disk) is only printed by h5py.
    """
    if is_file_object(target):
        return h5py.File(target, "w", libver=("v108", "v108"))
    access = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    access.set_libver_bounds(h5py.h5f.LIBVER_V18, h5py.h5f.LIBVER_V18)
    access.set_fclose_degree(h5py.h5f.CLOSE_STRONG)  # as h5py.File does
    access.set_sieve_buf_size(0)
    return h5py.File(h5py.h5f.create(os.fsencode(target), h5py.h5f.ACC_TRUNC, fapl=access))


def _write_protobuf(target, items, label):
    """Writes the items; returns the number of bytes written, for :func:`_verify`."""
    proto = nnabla_pb2.NNablaProtoBuf()
    for name, value in items:
        what = _what(label, name)
        array, need_grad = written_values(value, what, "biuf")
        parameter = proto.parameter.add()
        parameter.variable_name = name
        parameter.shape.dim.extend(array.shape)
        parameter.data.extend(_protobuf.float32_values(array, what))
        parameter.need_grad = need_grad
    data = proto.SerializeToString()
    if is_file_object(target):
        target.write(data)
    else:
        with open(target, "wb") as handle:
            handle.write(data)
    return len(data)


def _what(label, name):
    return f"{label}: parameter {_h5.short(repr(name))}"


_WRITERS = {".h5": _write_h5, ".protobuf": _write_protobuf}


def _verify(path, ext, written, label):
    """Reads back what was just written; raises OSError unless it is all there."""
    try:
        if ext == ".h5":
            with open_parameters(path, ext) as stored:
                intact = [(name, p.shape) for name, p in stored.items()] == [
                    (name, tuple(shape)) for name, shape in written
                ]
        else:
            intact = os.path.getsize(path) == written
    except _h5.NestedTooDeep as error:  # what this library refuses to read back
        message = str(error).replace(source_name(path), label)
        raise ValueError(f"{message}; nest the keys less deep (the save is undone)") from None
    except ParameterFileError:
        intact = False
    if not intact:
        raise OSError(
            errno.EIO,
            f"{label}: the file written is incomplete (a write the library did not report "
            "failed: a full disk?); the previous file is untouched",
        )
