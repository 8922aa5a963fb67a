"""Reading an HDF5 file's structures in Python: bytes at addresses, message checks.

The pieces :mod:`nnabla_modules.files._h5_check` builds its walks from: a reader that
raises :class:`Unsure` on any doubt and :class:`Damaged` for what HDF5 would
follow for ever, the checks of a dataset's messages against what h5py writes,
and HDF5's checksum.
"""

import math
import os
import struct
from collections import namedtuple

import numpy as np

from ._h5 import too_large


class Unsure(Exception):
    pass


class Damaged(Exception):
    """The file breaks HDF5's format for certain: truncated, or a structure that loops."""


UNDEFINED = 0xFFFFFFFFFFFFFFFF
SIGNATURE = b"\x89HDF\r\n\x1a\n"
MAX_RANK = 32
MAX_OBJECTS = 1 << 20
#: IEEE floats as HDF5 describes them: size -> (sign bit, exponent location,
#: exponent size, mantissa location, mantissa size, exponent bias).
IEEE = {2: (15, 10, 5, 0, 10, 15), 4: (31, 23, 8, 0, 23, 127), 8: (63, 52, 11, 0, 52, 1023)}


class Reader:
    """Reads a file's bytes at addresses inside it; any doubt raises Unsure."""

    def __init__(self, stream):
        self.stream = stream
        self.size = stream.seek(0, os.SEEK_END)
        self.seen = set()
        self.described = {}  # dataset address -> Described or None

    def read(self, offset, size):
        if offset < 0 or size < 0 or offset + size > self.size:
            raise Unsure
        self.stream.seek(offset)
        data = self.stream.read(size)
        if len(data) != size:
            raise Unsure
        return data

    def version(self):
        """The superblock's version, if it is at the start; Damaged if HDF5 finds none."""
        offset = 0  # HDF5 also looks after a user block of 512, 1024, 2048, ... bytes
        while offset + 8 <= self.size and self.read(offset, 8) != SIGNATURE:
            offset = max(512, 2 * offset)
        if offset + 8 > self.size:
            raise Damaged("no HDF5 signature: not an HDF5 file")
        return self.read(0, 9)[8] if offset == 0 else None

    def guarded(self, function, *args):
        """``function(self, *args)``, or None on any doubt; the stream's position is kept."""
        position = self.stream.tell()
        try:
            return function(self, *args)
        except (Unsure, ValueError, OverflowError, IndexError, struct.error):
            return None
        finally:
            self.stream.seek(position)

    def once(self, address, what):
        if address in self.seen:
            raise Damaged(f"its structure loops: {what} at byte {address} is reached twice")
        self.seen.add(address)


class Messages(Reader):
    """Checks the messages of a dataset's object header against what h5py writes."""

    def _dataset(self, messages):
        """Checks a dataset's messages: exactly what h5py writes for an array of numbers.

        Returns:
            Described: What HDF5 would report of it, or None where it is not an
            ordinary parameter (``_h5.entries`` then asks HDF5, and says why).
        """
        found, attributes = {}, {}
        for kind, body in messages:
            if kind == 0x0C:
                name, value = self._attribute(body)
                attributes[name] = None if name in attributes else value  # twice: unusual
            elif kind in (0x12, 0x0E):
                self._modification_time(kind, body)
            elif kind == 0x15:
                self._attribute_info(body)
            elif kind in (0x01, 0x03, 0x05, 0x08) and kind not in found:
                found[kind] = body
            else:
                raise Unsure
        if sorted(found) != [0x01, 0x03, 0x05, 0x08]:
            raise Unsure
        shape = self._dataspace(found[0x01])
        itemsize = self._datatype(found[0x03])
        self._fill(found[0x05], itemsize)
        location = self._layout(found[0x08], math.prod(shape) * itemsize)
        return _described(shape, found[0x03], location, attributes)

    @staticmethod
    def _modification_time(kind, body):
        """As HDF5 decodes it when it opens the dataset: version 1, or 14 digits (old)."""
        if (kind == 0x12 and body[0] != 1) or (kind == 0x0E and not body[:14].isdigit()):
            raise Unsure  # HDF5 refuses it

    def _dataspace(self, body):
        version, rank, flags = body[0], body[1], body[2]
        if version not in (1, 2) or rank > MAX_RANK or flags & ~1:
            raise Unsure
        if version == 2 and body[3] != (1 if rank else 0):  # simple, or scalar; not null
            raise Unsure
        start = 8 if version == 1 else 4
        dims = struct.unpack_from(f"<{rank}Q", body, start)
        if flags & 1:
            limits = struct.unpack_from(f"<{rank}Q", body, start + 8 * rank)
            if any(limit != UNDEFINED and limit < dim for dim, limit in zip(dims, limits)):
                raise Unsure
        if any(dim >= 1 << 62 for dim in dims):
            raise Unsure
        return dims

    def _datatype(self, body, end=None):
        """The size of a fixed-point or IEEE float datatype (or NNabla's bool enum)."""
        klass, version = body[0] & 0x0F, body[0] >> 4
        bits = int.from_bytes(body[1:4], "little")
        (size,) = struct.unpack_from("<I", body, 4)
        if version not in (1, 3) or size not in (1, 2, 4, 8):
            raise Unsure
        if klass == 8 and bits == 2 and size == 1 and version == 3:  # HDF5 1.8's: unpadded
            if body[8:20] != bytes.fromhex("10080000010000000000" "0800"):
                raise Unsure
            if body[20:31] != b"FALSE\0TRUE\0" or body[31:33] != b"\0\1":
                raise Unsure
            return size
        if version != 1:
            raise Unsure
        if klass == 0:  # integers: byte order and sign only
            offset, precision = struct.unpack_from("<HH", body, 8)
            if bits & ~0b1001 or offset != 0 or precision != 8 * size:
                raise Unsure
            return size
        if klass == 1:  # IEEE floats, either byte order
            fields = struct.unpack_from("<HHBBBBI", body, 8)
            if bits & ~0b1 & ~(0xFF << 8) != 0b100000 or size not in IEEE:
                raise Unsure
            if fields[:2] != (0, 8 * size) or ((bits >> 8),) + fields[2:] != IEEE[size]:
                raise Unsure
            return size
        if klass == 8 and bits == 2 and size == 1:  # h5py's bool: FALSE = 0, TRUE = 1
            if body[8:20] != bytes.fromhex("10080000010000000000" "0800"):
                raise Unsure
            if body[20:36] != b"FALSE\0\0\0TRUE\0\0\0\0" or body[36:38] != b"\0\1":
                raise Unsure
            return size
        raise Unsure

    def _fill(self, body, itemsize):
        if body[0] == 3:  # HDF5 1.8's: flags, then the value's size and value if defined
            flags, allocation, write = body[1], body[1] & 3, body[1] >> 2 & 3
            defined, start = flags >> 5 & 1, 2
        else:
            version, allocation, write, defined = body[:4]
            flags, start = (0 if version == 2 else 0xFF), 4
        if flags & ~0x3F or allocation not in (1, 2, 3) or write not in (0, 1, 2) or defined > 1:
            raise Unsure
        if flags & 0x30 == 0x30:  # a value, and no value: HDF5 refuses it
            raise Unsure
        if defined:
            (size,) = struct.unpack_from("<I", body, start)
            if size not in (0, itemsize) or len(body) < start + 4 + size:
                raise Unsure

    def _layout(self, body, nbytes):
        version, klass = body[0], body[1]
        if version != 3:
            raise Unsure
        if klass == 1:  # contiguous: inside the file (even if empty), of the declared size
            address, size = struct.unpack_from("<QQ", body, 2)
            if size != nbytes or (address + size > self.size and (address, size) != (UNDEFINED, 0)):
                raise Unsure
            return address
        if klass == 0:  # compact: the values are in the message
            (size,) = struct.unpack_from("<H", body, 2)
            if size != nbytes or len(body) < 4 + size:
                raise Unsure
            return body[4 : 4 + size]
        raise Unsure  # chunked: not NNabla's layout

    def _attribute(self, body):
        """A number: version 1 (fields padded to 8 bytes) or 3 (HDF5 1.8's, unpadded).

        Returns:
            ``(name, value)``: the value as ``_h5.py`` reads ``need_grad`` and ``index``
            (one integer, or h5py's bool), else None.
        """
        version, flags, name_size, type_size, space_size = struct.unpack_from("<BBHHH", body)
        if version not in (1, 3) or (version == 3 and (flags or body[8] > 1)):
            raise Unsure  # version 3: no shared datatype or dataspace; ASCII or UTF-8
        if not 1 < name_size <= 256:
            raise Unsure
        pad = padded if version == 1 else int
        position = 8 if version == 1 else 9
        name = body[position : position + name_size]
        if len(name) != name_size or name[-1] != 0 or 0 in name[:-1]:
            raise Unsure
        position += pad(name_size)
        if len(body) < position + type_size:
            raise Unsure
        datatype = body[position : position + type_size]
        itemsize = self._datatype(datatype)
        position += pad(type_size)
        dims = self._dataspace(body[position : position + space_size])  # inside its size
        position += pad(space_size)
        if math.prod(dims) > 1 or len(body) < position + itemsize * math.prod(dims):
            raise Unsure
        one_value = len(dims) <= 1 and math.prod(dims) == 1
        value = body[position : position + itemsize] if one_value else None
        return name[:-1], value and _integer(datatype, value)


    @staticmethod
    def _attribute_info(body):
        """Attributes kept in the object header only (dense storage is not checked here)."""
        flags = body[1]
        (heap,) = struct.unpack_from("<Q", body, 2 + (2 if flags & 1 else 0))
        if body[0] != 0 or flags & ~3 or heap != UNDEFINED:
            raise Unsure
        if len(body) < 18 + (2 if flags & 1 else 0) + (8 if flags & 2 else 0):
            raise Unsure  # its fields run past it: HDF5 refuses to read the attributes


#: What the check learned of a dataset HDF5 would read: enough to read its values
#: without HDF5 (``location``: where its values start in the file, or the values).
Described = namedtuple("Described", "shape dtype need_grad index location")


def _described(shape, datatype, location, attributes):
    """A :class:`Described` of an ordinary parameter, or None (anything else is
    left to HDF5, which reads it or says what is wrong)."""
    dtype = _numbers(datatype)
    need_grad, index = attributes.get(b"need_grad"), attributes.get(b"index", _NO_INDEX)
    if dtype is None or need_grad is None or index is None or isinstance(index, bool):
        return None
    if too_large(shape, dtype.itemsize):
        return None
    index = None if index is _NO_INDEX else index  # -1 is an index like any other
    return Described(shape, dtype, bool(need_grad), index, location)


_NO_INDEX = object()


def _numbers(datatype):
    """The numpy dtype of an integer or IEEE float datatype (checked), else None."""
    klass, bits, size = datatype[0] & 0x0F, datatype[1], datatype[4]
    order = ">" if bits & 1 else "<"
    if klass == 0:
        return np.dtype(f"{order}{'i' if bits & 0b1000 else 'u'}{size}")
    return np.dtype(f"{order}f{size}") if klass == 1 else None


def _integer(datatype, value):
    """An attribute's value as ``_h5.py`` reads it: h5py's bool as stored (0 or 1, a
    bool here), an integer that fits int64; else None."""
    klass, bits = datatype[0] & 0x0F, datatype[1]
    if klass == 8:  # h5py's bool: one byte, read as int8
        return bool(int.from_bytes(value, "little", signed=True))
    if klass != 0:
        return None
    number = int.from_bytes(value, "big" if bits & 1 else "little", signed=bool(bits & 0b1000))
    return number if -(1 << 63) <= number < 1 << 63 else None


def padded(size):
    return (size + 7) // 8 * 8


def whole(end, size):
    if end > size:  # as HDF5 says, before it reads anything else
        raise Damaged(f"truncated: {size:,} bytes of the {end:,} its superblock declares")


def fails_checksum(block):
    """True when the last 4 bytes of ``block`` are not HDF5's checksum of the others."""
    return struct.unpack("<I", block[-4:])[0] != lookup3(block[:-4])


def lookup3(data, initial=0):
    """Bob Jenkins' lookup3 hash (``hashlittle``), HDF5's metadata checksum."""
    mask = 0xFFFFFFFF

    def rot(x, k):
        return ((x << k) | (x >> (32 - k))) & mask

    a = b = c = (0xDEADBEEF + len(data) + initial) & mask
    if not data:
        return c
    whole_words = data + bytes(-len(data) % 12)
    words = struct.unpack(f"<{len(whole_words) // 4}I", whole_words)
    for i in range(0, len(words) - 3, 3):  # every 12 bytes but the last
        a, b, c = (a + words[i]) & mask, (b + words[i + 1]) & mask, (c + words[i + 2]) & mask
        for x, y, z, k in ((0, 2, 1, 4), (1, 0, 2, 6), (2, 1, 0, 8),
                           (0, 2, 1, 16), (1, 0, 2, 19), (2, 1, 0, 4)):  # fmt: skip
            v = [a, b, c]
            v[x] = ((v[x] - v[y]) & mask) ^ rot(v[y], k)
            v[y] = (v[y] + v[z]) & mask
            a, b, c = v
    a, b, c = (a + words[-3]) & mask, (b + words[-2]) & mask, (c + words[-1]) & mask
    for x, y, k in ((2, 1, 14), (0, 2, 11), (1, 0, 25), (2, 1, 16), (0, 2, 4), (1, 0, 14),
                    (2, 1, 24)):  # fmt: skip
        v = [a, b, c]
        v[x] = ((v[x] ^ v[y]) - rot(v[y], k)) & mask
        a, b, c = v
    return c
