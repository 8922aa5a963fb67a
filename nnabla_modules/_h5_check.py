"""The cheap check: an NNabla-written ``.h5`` file read by Python before HDF5 reads it.

NNabla's own files have no metadata checksums, so damage could crash the
HDF5 library. :func:`plainly_intact` reads their structure here, in Python;
what it cannot vouch for goes to the crash probe of ``_h5.py``.
"""

import math
import os
import struct


def plainly_intact(stream):
    """True when Python can tell that HDF5 may read this file safely.

    Files written by ``nn.save_parameters`` (h5py's defaults: HDF5's earliest
    format, version 0 superblock, no checksums) are checked here in Python,
    structure by structure, against exactly what such files hold: the
    superblock, each group's B-tree, symbol-table nodes and name heap, and each
    object header's messages (dataspace, datatype, fill value, contiguous or
    compact layout, attributes), every address inside the file and every
    object reached once. False means "cannot tell": a file of another shape,
    or damage; the caller then reads the structure in a child process
    (:func:`probe`). The check reads only metadata, each structure at most
    once: its time grows with the number of parameters, not with their size.

    Raises:
        Damaged: The file breaks HDF5's format in a way HDF5 itself would
            follow forever (a structure reached twice, a free list that loops).
    """
    try:
        _V0File(stream).check()
    except _Unsure:
        return False
    return True


class _Unsure(Exception):
    pass


class Damaged(Exception):
    """The file's structure loops or shares nodes: no HDF5 file is made this way."""


_UNDEFINED = 0xFFFFFFFFFFFFFFFF
_MAX_RANK = 32
_MAX_OBJECTS = 1 << 20
#: IEEE floats as HDF5 describes them: size -> (sign bit, exponent location,
#: exponent size, mantissa location, mantissa size, exponent bias).
_IEEE = {2: (15, 10, 5, 0, 10, 15), 4: (31, 23, 8, 0, 23, 127), 8: (63, 52, 11, 0, 52, 1023)}


class _V0File:
    """One pass over the metadata of a version 0 HDF5 file; raises _Unsure on any doubt."""

    def __init__(self, stream):
        self.stream = stream
        self.size = stream.seek(0, os.SEEK_END)
        self.seen = set()

    def read(self, offset, size):
        if offset < 0 or size < 0 or offset + size > self.size:
            raise _Unsure
        self.stream.seek(offset)
        data = self.stream.read(size)
        if len(data) != size:
            raise _Unsure
        return data

    def check(self):
        position = self.stream.tell()
        try:
            self._superblock()
        except (ValueError, OverflowError, IndexError, struct.error):
            raise _Unsure from None
        finally:
            self.stream.seek(position)

    def _superblock(self):
        head = self.read(0, 96)
        fixed = struct.unpack_from("<8s8BHHI", head)
        signature, versions, leaf_k, internal_k = fixed[0], fixed[1:9], fixed[9], fixed[10]
        if signature != b"\x89HDF\r\n\x1a\n" or versions[:6] != (0, 0, 0, 0, 0, 8):
            raise _Unsure
        if versions[6] != 8 or not (0 < leaf_k <= 1024 and 0 < internal_k <= 1024):
            raise _Unsure
        base, free, end, driver = struct.unpack_from("<4Q", head, 24)
        if base != 0 or free != _UNDEFINED or driver != _UNDEFINED or end > self.size:
            raise _Unsure
        self.size = end  # HDF5 reads nothing past the EOF
        self.leaf_k, self.internal_k = leaf_k, internal_k
        _, header, cache, _ = struct.unpack_from("<QQII", head, 56)
        self._groups(header, cache, head[80:96])

    # --- groups ------------------------------------------------------------------------

    def _groups(self, header, cache, scratch):
        """Checks the root group and everything under it, depth first, without recursion."""
        pending = [(header, cache, scratch)]
        while pending:
            header, cache, scratch = pending.pop()
            messages = self._object(header)
            if [kind for kind, _ in messages] != [0x11]:
                raise _Unsure
            tree, heap = struct.unpack_from("<QQ", messages[0][1])
            if cache == 1 and struct.unpack("<QQ", scratch) != (tree, heap):
                raise _Unsure
            names = self._heap(heap)
            for name_offset, child, child_cache, child_scratch in self._tree(tree):
                self._name(names, name_offset)
                if child_cache == 1:
                    pending.append((child, 1, child_scratch))
                elif child_cache == 0:
                    self._dataset(child)
                else:
                    raise _Unsure  # a soft link: refused later, by the walk, after the probe

    def _heap(self, address):
        head = self.read(address, 32)
        signature, version = head[:4], head[4]
        size, free, data = struct.unpack_from("<QQQ", head, 8)
        if signature != b"HEAP" or version != 0 or size > self.size:
            raise _Unsure
        names = self.read(data, size)
        self._free_list(names, free, address)
        return names

    @staticmethod
    def _free_list(names, offset, address):
        """HDF5 follows a heap's free list when it reads the heap: each block once, inside it."""
        seen = set()
        while offset != 1:  # HDF5's end of the list
            if offset in seen:
                raise Damaged(f"the free list of the name heap at byte {address} loops")
            seen.add(offset)
            if offset % 8 or offset + 16 > len(names):
                raise _Unsure
            following, size = struct.unpack_from("<QQ", names, offset)
            if size < 16 or size % 8 or offset + size > len(names):
                raise _Unsure
            offset = following

    @staticmethod
    def _name(names, offset):
        end = names.find(b"\0", offset)
        if offset >= len(names) or end <= offset:
            raise _Unsure

    def _tree(self, address):
        """Yields the symbol-table entries under a group B-tree, each node read once."""
        pending = [(address, None)]
        while pending:
            address, expected = pending.pop()
            self._once(address, "a group B-tree node")
            # HDF5 reads a node's full size: keys and children for 2K entries
            head = self.read(address, 24 + 8 * (4 * self.internal_k + 1))
            level, used = head[5], struct.unpack_from("<H", head, 6)[0]
            if head[:5] != b"TREE\0" or used > 2 * self.internal_k or expected not in (None, level):
                raise _Unsure
            children = [struct.unpack_from("<Q", head, 32 + 16 * i)[0] for i in range(used)]
            if level:
                pending.extend((child, level - 1) for child in reversed(children))
            else:
                for child in children:
                    yield from self._symbols(child)

    def _once(self, address, what):
        if address in self.seen:
            raise Damaged(f"{what} at byte {address} is reached twice (a loop or a shared node)")
        self.seen.add(address)

    def _symbols(self, address):
        self._once(address, "a symbol table node")
        node = self.read(address, 8 + 80 * self.leaf_k)  # HDF5 reads a node's full size
        head, body = node[:8], node[8:]
        count = struct.unpack_from("<H", head, 6)[0]
        if head[:6] != b"SNOD\x01\x00" or count > 2 * self.leaf_k:
            raise _Unsure
        for index in range(count):
            name, header, cache = struct.unpack_from("<QQI", body, 40 * index)
            yield name, header, cache, body[40 * index + 24 : 40 * index + 40]

    # --- object headers ------------------------------------------------------------------

    def _object(self, address):
        """``[(type, body)]`` of a version 1 object header, each message checked for framing."""
        if address in self.seen or len(self.seen) >= _MAX_OBJECTS:
            raise _Unsure  # a hard link: HDF5 reads it, the walk refuses it cleanly
        self.seen.add(address)
        version, _, count, references, size = struct.unpack("<BBHII", self.read(address, 12))
        if version != 1 or references != 1:
            raise _Unsure
        blocks, messages = [(address + 16, size)], []
        while blocks:
            start, length = blocks.pop(0)
            block = self.read(start, length)
            position = 0
            while position + 8 <= length:
                kind, body_size, flags = struct.unpack_from("<HHB", block, position)
                body = block[position + 8 : position + 8 + body_size]
                if len(body) != body_size or body_size % 8 or flags & ~1:
                    raise _Unsure  # shared or otherwise unusual messages
                position += 8 + body_size
                if kind == 0x10:  # continuation: more messages elsewhere
                    blocks.append(struct.unpack("<QQ", body[:16]))
                messages.append((kind, body))
                if len(messages) > count:
                    raise _Unsure
            if position != length:
                raise _Unsure
        if len(messages) != count:
            raise _Unsure
        return [(kind, body) for kind, body in messages if kind not in (0x00, 0x10)]

    def _dataset(self, address):
        found = {}
        for kind, body in self._object(address):
            if kind == 0x0C:
                self._attribute(body)
            elif kind in (0x12, 0x0E):
                continue  # modification time
            elif kind in (0x01, 0x03, 0x05, 0x08) and kind not in found:
                found[kind] = body
            else:
                raise _Unsure
        if sorted(found) != [0x01, 0x03, 0x05, 0x08]:
            raise _Unsure
        shape = self._dataspace(found[0x01])
        itemsize = self._datatype(found[0x03])
        self._fill(found[0x05], itemsize)
        self._layout(found[0x08], math.prod(shape) * itemsize)

    def _dataspace(self, body):
        version, rank, flags = body[0], body[1], body[2]
        if version != 1 or rank > _MAX_RANK or flags & ~1:
            raise _Unsure
        dims = struct.unpack_from(f"<{rank}Q", body, 8)
        if flags & 1:
            limits = struct.unpack_from(f"<{rank}Q", body, 8 + 8 * rank)
            if any(limit != _UNDEFINED and limit < dim for dim, limit in zip(dims, limits)):
                raise _Unsure
        if any(dim >= 1 << 62 for dim in dims):
            raise _Unsure
        return dims

    def _datatype(self, body, end=None):
        """The size of a fixed-point or IEEE float datatype (or NNabla's bool enum)."""
        klass, version = body[0] & 0x0F, body[0] >> 4
        bits = int.from_bytes(body[1:4], "little")
        (size,) = struct.unpack_from("<I", body, 4)
        if version != 1 or size not in (1, 2, 4, 8):
            raise _Unsure
        if klass == 0:  # integers: byte order and sign only
            offset, precision = struct.unpack_from("<HH", body, 8)
            if bits & ~0b1001 or offset != 0 or precision != 8 * size:
                raise _Unsure
            return size
        if klass == 1:  # IEEE floats, either byte order
            fields = struct.unpack_from("<HHBBBBI", body, 8)
            if bits & ~0b1 & ~(0xFF << 8) != 0b100000 or size not in _IEEE:
                raise _Unsure
            if fields[:2] != (0, 8 * size) or ((bits >> 8),) + fields[2:] != _IEEE[size]:
                raise _Unsure
            return size
        if klass == 8 and bits == 2 and size == 1:  # h5py's bool: FALSE = 0, TRUE = 1
            if body[8:20] != bytes.fromhex("10080000010000000000" "0800"):
                raise _Unsure
            if body[20:36] != b"FALSE\0\0\0TRUE\0\0\0\0" or body[36:38] != b"\0\1":
                raise _Unsure
            return size
        raise _Unsure

    def _fill(self, body, itemsize):
        version, allocation, write, defined = body[:4]
        if version != 2 or allocation not in (1, 2, 3) or write not in (0, 1, 2) or defined > 1:
            raise _Unsure
        if defined:
            (size,) = struct.unpack_from("<I", body, 4)
            if size not in (0, itemsize) or len(body) < 8 + size:
                raise _Unsure

    def _layout(self, body, nbytes):
        version, klass = body[0], body[1]
        if version != 3:
            raise _Unsure
        if klass == 1:  # contiguous: inside the file, of exactly the declared size
            address, size = struct.unpack_from("<QQ", body, 2)
            if size != nbytes or (size and address + size > self.size):
                raise _Unsure
        elif klass == 0:  # compact: the values are in the message
            (size,) = struct.unpack_from("<H", body, 2)
            if size != nbytes or len(body) < 4 + size:
                raise _Unsure
        else:
            raise _Unsure  # chunked: not NNabla's layout

    def _attribute(self, body):
        version, _, name_size, type_size, space_size = struct.unpack_from("<BBHHH", body)
        if version != 1 or not 1 < name_size <= 256:
            raise _Unsure
        position = 8
        name = body[position : position + name_size]
        if len(name) != name_size or name[-1] != 0 or 0 in name[:-1]:
            raise _Unsure
        position += _padded(name_size)
        if len(body) < position + type_size:
            raise _Unsure
        itemsize = self._datatype(body[position : position + type_size])
        position += _padded(type_size)
        dims = self._dataspace(body[position : position + space_size] + bytes(8))
        position += _padded(space_size)
        if math.prod(dims) > 1 or len(body) < position + itemsize * math.prod(dims):
            raise _Unsure


def _padded(size):
    return (size + 7) // 8 * 8
