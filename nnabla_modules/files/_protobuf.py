"""NNabla's ``.protobuf`` parameter files, read one tensor at a time.

Parsing the file with protobuf holds every value twice (the file's bytes and
the message), before a tensor is even copied. This reader scans the wire
format of ``NNablaProtoBuf`` instead: opening the file walks its fields and
notes where each parameter's name, shape, ``need_grad`` and values are (the
values' bytes are skipped, not read); a parameter's ``read_into`` then reads
its values straight into an array. It follows protobuf's own rules: fields in
any order, unknown fields skipped, the last of a repeated scalar field kept,
repeated values (``shape.dim``, ``data``) packed or not and concatenated
across occurrences, a field of another wire type than its own is unknown.
A field that runs past its message or the file is an error.
"""

import math
from collections import OrderedDict

import numpy as np

from ._h5 import ParameterFileError, short, too_large
from ._signals import deliver_pending
from ._stored import StoredParameter

# Field numbers of nnabla.proto: NNablaProtoBuf.parameter, Parameter's fields, Shape.dim.
PARAMETER = 200
NAME, SHAPE, DATA, NEED_GRAD = 1, 20, 100, 101
DIM = 1
VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5
_FIXED = {FIXED64: 8, FIXED32: 4}
_FLOAT = np.dtype("<f4")
FIELDS_PER_SIGNAL_CHECK = 1 << 14
#: What scanning a field costs an ``.nnp`` archive's budget, in bytes: some 2 µs, as long as
#: unpacking kilobytes takes.
FIELD_BYTES = 1024


class Truncated(ParameterFileError):
    """A field that runs past its message or the file."""


class _Stream:
    """Varints and byte ranges of a seekable binary file, within ``[position, end)``.

    It keeps its own position: asking the file (``tell``) took a third of a scan.
    """

    def __init__(self, handle, label, budget=None):
        self.handle, self.label, self.budget = handle, label, budget
        handle.seek(0, 2)
        self.size, self.position = handle.tell(), 0
        handle.seek(0)

    def read(self, size):
        data = self.handle.read(size)
        self.position += len(data)
        return data

    def seek(self, position):
        self.handle.seek(position)
        self.position = position

    def varint(self, end):
        value, shift = 0, 0
        read = self.handle.read
        while True:
            if self.position >= end or shift > 63:
                raise Truncated(f"{self.label}: not an NNabla protobuf file (a broken varint)")
            data = read(1)
            if not data:  # the file shrank since its size was taken
                raise Truncated(f"{self.label}: not an NNabla protobuf file (truncated)")
            byte = data[0]
            self.position += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7

    def length(self, end):
        """The length of a length-delimited field, checked against ``end``; returns its end."""
        size = self.varint(end)
        stop = self.position + size
        if stop > end:
            raise Truncated(
                f"{self.label}: not an NNabla protobuf file (a field of {size:,} bytes "
                f"runs past the end)"
            )
        return stop

    def skip(self, wire, end):
        """Skips one field's value of wire type ``wire``."""
        if wire == VARINT:
            self.varint(end)
        elif wire == LENGTH:
            self.seek(self.length(end))
        elif wire in _FIXED:
            if self.position + _FIXED[wire] > end:
                raise Truncated(f"{self.label}: not an NNabla protobuf file (truncated)")
            self.seek(self.position + _FIXED[wire])
        else:
            raise ParameterFileError(
                f"{self.label}: not an NNabla protobuf file (wire type {wire})"
            )

    def fields(self, end):
        """Yields ``(field number, wire type, key length)``, positioned at each field's value.

        Every :data:`FIELDS_PER_SIGNAL_CHECK` fields, signals held back by a load are
        delivered (a file of many small fields takes a while to scan, and nothing is
        changed yet), and an ``.nnp`` archive's budget is charged :data:`FIELD_BYTES` a
        field: the scan's time is bounded by the archive's size, not by what a small
        archive unpacks to.
        """
        count = 0
        while self.position < end:
            count += 1
            if count % FIELDS_PER_SIGNAL_CHECK == 0:
                deliver_pending()
                if self.budget is not None:
                    what = f"{self.label}: {FIELDS_PER_SIGNAL_CHECK:,} more fields to scan"
                    self.budget.spend(FIELDS_PER_SIGNAL_CHECK * FIELD_BYTES, what)
            start = self.position
            key = self.varint(end)
            if key >> 3 == 0:
                raise ParameterFileError(f"{self.label}: not an NNabla protobuf file (field 0)")
            yield key >> 3, key & 7, self.position - start


class Parameter:
    """Where one parameter's fields are; ``segments``: ``(offset, count, stride)`` of its values."""

    __slots__ = ("name", "dims", "need_grad", "segments")

    def __init__(self):
        self.name, self.dims, self.need_grad, self.segments = b"", [], False, []

    @property
    def count(self):
        return sum(count for _, count, _ in self.segments)

    def add_value(self, offset, stride):
        """One unpacked float at ``offset``, ``stride`` bytes after the previous one of its run."""
        if self.segments:
            start, count, last_stride = self.segments[-1]
            if last_stride == stride and start + count * stride == offset and count > 0:
                self.segments[-1] = (start, count + 1, stride)
                return
        self.segments.append((offset, 1, stride))


def scan(handle, label, budget=None):
    """Yields each :class:`Parameter` of an ``NNablaProtoBuf`` file, in the file's order, as
    it is scanned: a caller that keeps only what it needs (the last of a name) holds no
    more, whatever the count of entries in the file."""
    stream = _Stream(handle, label, budget)
    for field, wire, _ in stream.fields(stream.size):
        if field == PARAMETER and wire == LENGTH:
            end = stream.length(stream.size)
            yield _parameter(stream, end)
            stream.seek(end)  # where the next field starts, wherever the caller left it
        else:
            stream.skip(wire, stream.size)


def _parameter(stream, end):
    parameter = Parameter()
    for field, wire, key_length in stream.fields(end):
        if field == NAME and wire == LENGTH:
            stop = stream.length(end)
            parameter.name = stream.read(stop - stream.position)
        elif field == SHAPE and wire == LENGTH:
            _dims(stream, stream.length(end), parameter.dims)
        elif field == DATA and wire == LENGTH:
            stop = stream.length(end)
            start = stream.position
            if (stop - start) % 4:
                raise ParameterFileError(
                    f"{stream.label}: not an NNabla protobuf file (packed floats of "
                    f"{stop - start} bytes)"
                )
            parameter.segments.append((start, (stop - start) // 4, 4))
            stream.seek(stop)
        elif field == DATA and wire == FIXED32:
            offset = stream.position
            stream.skip(wire, end)
            parameter.add_value(offset, key_length + 4)
        elif field == NEED_GRAD and wire == VARINT:
            parameter.need_grad = stream.varint(end) != 0
        else:
            stream.skip(wire, end)
    return parameter


def _dims(stream, end, dims):
    for field, wire, _ in stream.fields(end):
        if field == DIM and wire == LENGTH:
            stop = stream.length(end)
            while stream.position < stop:
                dims.append(_int64(stream.varint(stop)))
        elif field == DIM and wire == VARINT:
            dims.append(_int64(stream.varint(end)))
        else:
            stream.skip(wire, end)


def _int64(value):
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


class Reader:
    """``read_into(out)``: the parameter's values, read from ``handle`` into ``out``.

    An object of four slots, not a closure: a file may hold 200,000 parameters.
    """

    __slots__ = ("handle", "segments", "count", "label")

    def __init__(self, handle, segments, count, label):
        self.handle, self.segments, self.count, self.label = handle, segments, count, label

    def __call__(self, out):
        handle, count = self.handle, self.count
        direct = out.dtype == _FLOAT and out.flags.c_contiguous and out.size == count
        values = out.reshape(-1) if direct else np.empty(count, _FLOAT)  # no second copy
        at = 0
        for offset, n, stride in self.segments:
            handle.seek(offset)
            if stride == 4:  # packed: straight into the array
                view = memoryview(values[at : at + n]).cast("B")
                if handle.readinto(view) != view.nbytes:
                    raise ParameterFileError(f"{self.label}: the file changed while it was read")
            else:  # unpacked: each float after its key
                raw = handle.read((n - 1) * stride + 4)
                if len(raw) != (n - 1) * stride + 4:
                    raise ParameterFileError(f"{self.label}: the file changed while it was read")
                values[at : at + n] = np.ndarray((n,), _FLOAT, raw, 0, (stride,))
            at += n
        if not direct:
            np.copyto(out, values.reshape(out.shape), casting="same_kind")


#: The most dimensions an array has (numpy's limit).
MAX_RANK = 32


#: The memory one parameter entry takes, in bytes, charged to an ``.nnp`` archive's budget:
#: an entry without values is some 11 bytes of a member (``.protobuf``, ``.nntxt``).
ENTRY_BYTES = 1024


def message_parameters(proto, label, budget=None):
    """The parameters of a parsed protobuf message (``.nntxt``)."""
    stored = OrderedDict()
    for parameter in proto.parameter:
        add_parameter(
            stored, label, parameter.variable_name, parameter.shape.dim, len(parameter.data),
            parameter.need_grad, message_reader(parameter), budget,
        )  # fmt: skip
    return stored


def add_parameter(stored, label, name, dims, count, need_grad, read_into, budget=None):
    """Checks one parameter of a protobuf message; a later one of a name replaces it.

    Args:
        budget (nnabla_modules.files._h5.Budget, optional): An ``.nnp`` archive's, charged
            :data:`ENTRY_BYTES` for the entry.
    """
    if budget is not None:
        budget.spend(ENTRY_BYTES, f"{label}: one more parameter entry (its memory)")
    shape = tuple(dims)
    if len(shape) > MAX_RANK:  # before the product, whose size grows with the rank
        raise ParameterFileError(
            f"{label}: parameter {short(repr(name))} has {len(shape):,} dimensions; "
            f"an array has at most {MAX_RANK}"
        )
    if not name or any(d < 0 for d in shape) or count != math.prod(shape):
        # math.prod is exact: a product that overflows int64 is no match
        raise ParameterFileError(
            f"{label}: parameter {short(repr(name))} of shape {short(shape)} "
            f"holds {count} values"
        )
    if too_large(shape, 4):  # float32; no values, but a zero dimension beside huge ones
        raise ParameterFileError(
            f"{label}: parameter {short(repr(name))} has shape {short(shape)}, larger than "
            "any array"
        )
    stored[name] = StoredParameter(name, shape, np.float32, need_grad, read_into)


def message_reader(parameter):
    """``read_into(out)`` of a parameter of a parsed message."""
    def read_into(out):
        values = np.fromiter(parameter.data, np.float32, count=len(parameter.data))
        np.copyto(out, values.reshape(out.shape), casting="same_kind")

    return read_into


def float32_values(array, what):
    """The values of ``array`` as float32, which ``.protobuf`` stores; a finite value too
    large for it (``1e300``) is a ValueError, not an infinity written without a word."""
    values = np.ravel(array)
    with np.errstate(over="ignore"):  # checked below, with a clear error
        narrowed = values.astype(np.float32, copy=False)
    if values.dtype.kind != "f" or values.dtype.itemsize <= 4:
        return narrowed  # integers up to 2**64 fit
    lost = ~np.isfinite(narrowed)
    if lost.any() and np.isfinite(values[lost]).any():
        raise ValueError(
            f"{what} holds values too large for float32, the dtype of .protobuf files "
            "(finite as given, infinite once converted); save it to .h5, which keeps its dtype"
        )
    return narrowed
