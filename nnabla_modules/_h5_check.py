"""The cheap check: an ``.h5`` file's structure read by Python before HDF5 reads it.

HDF5 trusts a file's metadata: damage can crash the library, loop forever or
allocate without end. :func:`vouch` reads here, in Python, what HDF5 will
read, and says what it vouches for; what it cannot vouch for goes to the
child process of ``_h5.py`` (:func:`~nnabla_modules._h5.probe`).
"""

import math
import os
import struct


def vouch(stream):
    """What Python vouches for in the HDF5 file ``stream``, before HDF5 reads it.

    * Files written by ``nn.save_parameters`` (h5py's defaults: HDF5's earliest
      format, no checksums) are checked whole, structure by structure, against
      exactly what such files hold: the superblock, each group's B-tree,
      symbol-table nodes and name heap (its free list too), and each object
      header's messages (dataspace, datatype, fill value, contiguous or compact
      layout, attributes), every address inside the file and every structure
      reached once.
    * Files in HDF5 1.8's format and later (version 2 or 3 superblock: what
      ``save_parameters`` writes) have checksums over their metadata, but only
      where the structures are the new ones. The superblock and each object
      header are read here before HDF5 opens them: the object is vouched for
      when it and everything it leads HDF5 to (link and attribute heaps, B-tree
      indexes, chunk indexes, continuation blocks) carry checksums, so damage
      is a clean error. An old-style group, a chunked dataset's version 1
      B-tree, an external file list or a shared message is not vouched for.

    The check reads metadata only, each structure once: its time grows with the
    number of parameters, not with their size.

    Returns:
        A function ``admits(address)``, to call before HDF5 opens each object
        below the root (by its address): True when it is vouched for (always
        True for a file checked whole), False when it is not (the caller then
        reads the file in the child process). None when Python cannot vouch
        for the root already (another layout, or damage).

    Raises:
        Damaged: The file breaks HDF5's format for certain: no HDF5 signature,
            shorter than its superblock declares, or a structure that HDF5
            would follow for ever (reached twice, a free list that loops).
    """
    version = _Reader(stream).guarded(_Reader.version)
    if version == 0 and _V0File(stream).guarded(_V0File.check):
        return _everything
    if version in (2, 3):
        objects = _V2Objects(stream)
        if objects.guarded(_V2Objects.check):
            return objects.admits
        if objects.guarded(_V2Objects.superblock_fails_checksum):
            return _everything  # HDF5 refuses a damaged superblock with a clean error
    return None


def _everything(address):
    return True


class _Unsure(Exception):
    pass


class Damaged(Exception):
    """The file breaks HDF5's format for certain: truncated, or a structure that loops."""


_UNDEFINED = 0xFFFFFFFFFFFFFFFF
_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MAX_RANK = 32
_MAX_OBJECTS = 1 << 20
#: IEEE floats as HDF5 describes them: size -> (sign bit, exponent location,
#: exponent size, mantissa location, mantissa size, exponent bias).
_IEEE = {2: (15, 10, 5, 0, 10, 15), 4: (31, 23, 8, 0, 23, 127), 8: (63, 52, 11, 0, 52, 1023)}


class _Reader:
    """Reads a file's bytes at addresses inside it; any doubt raises _Unsure."""

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

    def version(self):
        """The superblock's version, if it is at the start; Damaged if HDF5 finds none."""
        offset = 0  # HDF5 also looks after a user block of 512, 1024, 2048, ... bytes
        while offset + 8 <= self.size and self.read(offset, 8) != _SIGNATURE:
            offset = max(512, 2 * offset)
        if offset + 8 > self.size:
            raise Damaged("no HDF5 signature: not an HDF5 file")
        return self.read(0, 9)[8] if offset == 0 else None

    def guarded(self, function, *args):
        """``function(self, *args)``, or None on any doubt; the stream's position is kept."""
        position = self.stream.tell()
        try:
            return function(self, *args)
        except (_Unsure, ValueError, OverflowError, IndexError, struct.error):
            return None
        finally:
            self.stream.seek(position)

    def once(self, address, what):
        if address in self.seen:
            raise Damaged(f"its structure loops: {what} at byte {address} is reached twice")
        self.seen.add(address)


class _Messages(_Reader):
    """Checks the messages of a dataset's object header against what h5py writes."""

    def _dataset(self, messages):
        """Checks a dataset's messages: exactly what h5py writes for an array of numbers."""
        found = {}
        for kind, body in messages:
            if kind == 0x0C:
                self._attribute(body)
            elif kind in (0x12, 0x0E):
                continue  # modification time
            elif kind == 0x15:
                self._attribute_info(body)
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
        if version not in (1, 2) or rank > _MAX_RANK or flags & ~1:
            raise _Unsure
        if version == 2 and body[3] != (1 if rank else 0):  # simple, or scalar; not null
            raise _Unsure
        start = 8 if version == 1 else 4
        dims = struct.unpack_from(f"<{rank}Q", body, start)
        if flags & 1:
            limits = struct.unpack_from(f"<{rank}Q", body, start + 8 * rank)
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
        if version not in (1, 3) or size not in (1, 2, 4, 8):
            raise _Unsure
        if klass == 8 and bits == 2 and size == 1 and version == 3:  # HDF5 1.8's: unpadded
            if body[8:20] != bytes.fromhex("10080000010000000000" "0800"):
                raise _Unsure
            if body[20:31] != b"FALSE\0TRUE\0" or body[31:33] != b"\0\1":
                raise _Unsure
            return size
        if version != 1:
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
        if body[0] == 3:  # HDF5 1.8's: flags, then the value's size and value if defined
            flags, allocation, write = body[1], body[1] & 3, body[1] >> 2 & 3
            defined, start = flags >> 5 & 1, 2
        else:
            version, allocation, write, defined = body[:4]
            flags, start = (0 if version == 2 else 0xFF), 4
        if flags & ~0x3F or allocation not in (1, 2, 3) or write not in (0, 1, 2) or defined > 1:
            raise _Unsure
        if defined:
            (size,) = struct.unpack_from("<I", body, start)
            if size not in (0, itemsize) or len(body) < start + 4 + size:
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
        """A number: version 1 (fields padded to 8 bytes) or 3 (HDF5 1.8's, unpadded)."""
        version, flags, name_size, type_size, space_size = struct.unpack_from("<BBHHH", body)
        if version not in (1, 3) or (version == 3 and (flags or body[8] > 1)):
            raise _Unsure  # version 3: no shared datatype or dataspace; ASCII or UTF-8
        if not 1 < name_size <= 256:
            raise _Unsure
        padded = _padded if version == 1 else int
        position = 8 if version == 1 else 9
        name = body[position : position + name_size]
        if len(name) != name_size or name[-1] != 0 or 0 in name[:-1]:
            raise _Unsure
        position += padded(name_size)
        if len(body) < position + type_size:
            raise _Unsure
        itemsize = self._datatype(body[position : position + type_size])
        position += padded(type_size)
        dims = self._dataspace(body[position : position + space_size] + bytes(8))
        position += padded(space_size)
        if math.prod(dims) > 1 or len(body) < position + itemsize * math.prod(dims):
            raise _Unsure


    @staticmethod
    def _attribute_info(body):
        """Attributes kept in the object header only (dense storage is not checked here)."""
        flags = body[1]
        (heap,) = struct.unpack_from("<Q", body, 2 + (2 if flags & 1 else 0))
        if body[0] != 0 or flags & ~3 or heap != _UNDEFINED:
            raise _Unsure


class _V0File(_Messages):
    """One pass over the metadata of a version 0 HDF5 file; raises _Unsure on any doubt."""

    def check(self):
        self._superblock()
        return True

    def _superblock(self):
        head = self.read(0, 96)
        fixed = struct.unpack_from("<8s8BHHI", head)
        signature, versions, leaf_k, internal_k = fixed[0], fixed[1:9], fixed[9], fixed[10]
        if signature != _SIGNATURE or versions[:6] != (0, 0, 0, 0, 0, 8):
            raise _Unsure
        if versions[6] != 8 or not (0 < leaf_k <= 1024 and 0 < internal_k <= 1024):
            raise _Unsure
        base, free, end, driver = struct.unpack_from("<4Q", head, 24)
        if base != 0 or free != _UNDEFINED or driver != _UNDEFINED:
            raise _Unsure
        _whole(end, self.size)
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
                    self._dataset(self._object(child))
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
                raise Damaged(f"its structure loops: the name heap at byte {address}'s free list")
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
            self.once(address, "a group B-tree node")
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

    def _symbols(self, address):
        self.once(address, "a symbol table node")
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

def _padded(size):
    return (size + 7) // 8 * 8


class _V2Objects(_Messages):
    """Object headers of an HDF5 1.8+ file, read before HDF5 opens them."""

    def check(self):
        """The superblock (version 2 or 3) and the root object header."""
        head = self.read(0, 48)
        offsets, lengths = head[9], head[10]
        base, extension, end, root = struct.unpack_from("<4Q", head, 12)
        if head[:8] != _SIGNATURE or (offsets, lengths) != (8, 8) or base != 0:
            raise _Unsure
        if extension != _UNDEFINED:
            raise _Unsure  # a superblock extension: shared messages, file-space settings
        _whole(end, self.size)
        self.size = end  # HDF5 reads nothing past the EOF
        return self.admits(root)

    def superblock_fails_checksum(self):
        superblock = self.read(0, 48)
        return superblock[:8] == _SIGNATURE and _fails_checksum(superblock)

    def admits(self, address):
        """True when HDF5 may open the object at ``address``: all it reads is checksummed
        and as h5py writes it, or its header's checksum is wrong (HDF5 then refuses it
        with a clean error)."""
        return bool(
            self.guarded(_V2Objects._vouch, address)
            or self.guarded(_V2Objects._checksum_fails, address)
        )

    def _checksum_fails(self, address):
        """True when the first block of the version 2 object header at ``address`` is damaged."""
        head = self.read(address, 6)
        if head[:4] != b"OHDR":
            raise _Unsure  # no checksum to fail
        flags = head[5]
        start = address + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
        width = 1 << (flags & 3)
        end = start + width + int.from_bytes(self.read(start, width), "little")
        return _fails_checksum(self.read(address, end + 4 - address))

    def _vouch(self, address):
        """A dataset or a group, each message checked against what h5py writes."""
        messages = self._object(address)
        if any(kind == 0x08 for kind, _ in messages):
            self._dataset(messages)
            return True
        kinds = [kind for kind, _ in messages]
        if kinds.count(0x02) != 1 or kinds.count(0x0A) != 1:
            raise _Unsure  # an old-style group (a symbol table), a named datatype, ...
        for kind, body in messages:
            if kind == 0x02:
                self._link_info(body)
            elif kind == 0x06:
                self._link(body)
            elif kind == 0x0C:
                self._attribute(body)
            elif kind == 0x15:
                self._attribute_info(body)
            elif kind not in (0x0A, 0x0E, 0x12):  # group info, modification times
                raise _Unsure
        return True

    def _object(self, address):
        """``[(type, body)]`` of a version 2 object header ("OHDR") and its "OCHK" blocks."""
        head = self.read(address, 6)
        if head[:5] != b"OHDR\2" or head[5] & ~0x3F:
            raise _Unsure  # a version 1 header: no checksum
        flags = head[5]
        start = address + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
        width = 1 << (flags & 3)
        blocks = [(start + width, int.from_bytes(self.read(start, width), "little"))]
        header = 6 if flags & 0x04 else 4  # a message's type, size, flags (, creation order)
        messages = []
        while blocks:
            start, length = blocks.pop()
            self.once(start, "an object header block")
            block, position = self.read(start, length), 0
            while position + header <= length:  # what is left is a gap
                kind, size, message_flags = struct.unpack_from("<BHB", block, position)
                body = block[position + header : position + header + size]
                position += header + size
                if len(body) != size or message_flags & 0x02:
                    raise _Unsure  # cut short, or shared (kept elsewhere)
                if kind == 0x10:  # continuation: an "OCHK" block, checksummed
                    where, span = struct.unpack_from("<QQ", body)
                    if span < 8 or self.read(where, 4) != b"OCHK":
                        raise _Unsure
                    blocks.append((where + 4, span - 8))
                elif kind:
                    messages.append((kind, body))
        return messages

    def _link_info(self, body):
        flags = body[1]
        heap, _ = struct.unpack_from("<QQ", body, 2 + (8 if flags & 1 else 0))
        if body[0] != 0 or flags & ~3:
            raise _Unsure
        if heap != _UNDEFINED:  # dense storage: the links are in a heap
            self._fractal_heap(heap)

    def _link(self, body):
        """A link message: its fields fill it exactly; a hard link points inside the file."""
        version, flags = body[0], body[1]
        if version != 1 or flags & ~0x1F:
            raise _Unsure
        position = 2
        kind = body[position] if flags & 0x08 else 0
        position += (1 if flags & 0x08 else 0) + (8 if flags & 0x04 else 0) + (flags >> 4 & 1)
        width = 1 << (flags & 3)
        length = int.from_bytes(body[position : position + width], "little")
        position += width + length
        if kind == 0:
            (address,) = struct.unpack_from("<Q", body, position)
            position += 8
            if address >= self.size:
                raise _Unsure
        elif kind in (1, 64):  # soft, external: refused by the walk, by name
            (size,) = struct.unpack_from("<H", body, position)
            position += 2 + size
        else:
            raise _Unsure
        if not length or position != len(body):
            raise _Unsure

    def _fractal_heap(self, address):
        """A dense group's or attributes' heap: checksummed direct blocks, no huge objects."""
        head = self.read(address, 30)
        filters, flags = struct.unpack_from("<HB", head, 7)
        (huge,) = struct.unpack_from("<Q", head, 22)
        if head[:5] != b"FRHP\0" or filters or not flags & 0x02 or huge != _UNDEFINED:
            raise _Unsure


def _whole(end, size):
    if end > size:  # as HDF5 says, before it reads anything else
        raise Damaged(f"truncated: {size:,} bytes of the {end:,} its superblock declares")


def _fails_checksum(block):
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
    padded = data + bytes(-len(data) % 12 or 0)
    words = struct.unpack(f"<{len(padded) // 4}I", padded)
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
