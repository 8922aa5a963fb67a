"""The cheap check: an ``.h5`` file's structure read by Python before HDF5 reads it.

HDF5 trusts a file's metadata: damage can crash the library, loop forever or
allocate without end. :func:`vouch` reads here, in Python, what HDF5 will
read, and says what it vouches for; what it cannot vouch for goes to the
child process of ``_h5.py`` (:func:`~nnabla_modules.files._h5.probe`).
"""

import struct

from ._h5_read import (
    MAX_OBJECTS,
    SIGNATURE,
    UNDEFINED,
    Damaged,
    Messages,
    Reader,
    Unsure,
    fails_checksum,
    lookup3,
    whole,
)

__all__ = ["Damaged", "lookup3", "vouch"]


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
        Admits: A function ``admits(address)``, to call before HDF5 opens each object
        below the root (by its address): True when it is vouched for (always
        True for a file checked whole), False when it is not (the caller then
        reads the file in the child process). None when Python cannot vouch
        for the root already (another layout, or damage).

    Raises:
        Damaged: The file breaks HDF5's format for certain: no HDF5 signature,
            shorter than its superblock declares, or a structure that HDF5
            would follow for ever (reached twice, a free list that loops).
    """
    version = Reader(stream).guarded(Reader.version)
    if version == 0:
        whole_file = _V0File(stream)
        if whole_file.guarded(_V0File.check):
            return Admits(_everything, whole_file.described)
    if version in (2, 3):
        objects = _V2Objects(stream)
        if objects.guarded(_V2Objects.check):
            return Admits(objects.admits, objects.described)
        if objects.guarded(_V2Objects.superblock_fails_checksum):
            return Admits(_everything)  # HDF5 refuses a damaged superblock with a clean error
    return None


class Admits:
    """``admits(address)``: True when HDF5 may open the object at ``address``.

    ``described`` maps the address of each dataset vouched for so far to what
    the check learned of it (``_h5_read.Described``, None if unusual): the
    walk of ``_h5.py`` takes it instead of asking HDF5, and its values are read
    from the file directly.
    """

    def __init__(self, admits, described=None):
        self.admits = admits
        self.described = {} if described is None else described

    def __call__(self, address):
        return self.admits(address)


def _everything(address):
    return True


class _V0File(Messages):
    """One pass over the metadata of a version 0 HDF5 file; raises Unsure on any doubt."""

    def check(self):
        self._superblock()
        return True

    def _superblock(self):
        head = self.read(0, 96)
        fixed = struct.unpack_from("<8s8BHHI", head)
        signature, versions, leaf_k, internal_k = fixed[0], fixed[1:9], fixed[9], fixed[10]
        if signature != SIGNATURE or versions[:6] != (0, 0, 0, 0, 0, 8):
            raise Unsure
        if versions[6] != 8 or not (0 < leaf_k <= 1024 and 0 < internal_k <= 1024):
            raise Unsure
        base, free, end, driver = struct.unpack_from("<4Q", head, 24)
        if base != 0 or free != UNDEFINED or driver != UNDEFINED:
            raise Unsure
        whole(end, self.size)
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
                raise Unsure
            tree, heap = struct.unpack_from("<QQ", messages[0][1])
            if cache == 1 and struct.unpack("<QQ", scratch) != (tree, heap):
                raise Unsure
            names = self._heap(heap)
            for name_offset, child, child_cache, child_scratch in self._tree(tree):
                self._name(names, name_offset)
                if child_cache == 1:
                    pending.append((child, 1, child_scratch))
                elif child_cache == 0:
                    self.described[child] = self._dataset(self._object(child))
                else:
                    raise Unsure  # a soft link: refused later, by the walk, after the probe

    def _heap(self, address):
        head = self.read(address, 32)
        signature, version = head[:4], head[4]
        size, free, data = struct.unpack_from("<QQQ", head, 8)
        if signature != b"HEAP" or version != 0 or size > self.size:
            raise Unsure
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
                raise Unsure
            following, size = struct.unpack_from("<QQ", names, offset)
            if size < 16 or size % 8 or offset + size > len(names):
                raise Unsure
            offset = following

    @staticmethod
    def _name(names, offset):
        end = names.find(b"\0", offset)
        if offset >= len(names) or end <= offset:
            raise Unsure

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
                raise Unsure
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
            raise Unsure
        for index in range(count):
            name, header, cache = struct.unpack_from("<QQI", body, 40 * index)
            yield name, header, cache, body[40 * index + 24 : 40 * index + 40]

    # --- object headers ------------------------------------------------------------------

    def _object(self, address):
        """``[(type, body)]`` of a version 1 object header, each message checked for framing."""
        if address in self.seen or len(self.seen) >= MAX_OBJECTS:
            raise Unsure  # a hard link: HDF5 reads it, the walk refuses it cleanly
        self.seen.add(address)
        version, _, count, references, size = struct.unpack("<BBHII", self.read(address, 12))
        if version != 1 or references != 1:
            raise Unsure
        blocks, messages = [(address + 16, size)], []
        while blocks:
            start, length = blocks.pop(0)
            block = self.read(start, length)
            position = 0
            while position + 8 <= length:
                kind, body_size, flags = struct.unpack_from("<HHB", block, position)
                body = block[position + 8 : position + 8 + body_size]
                if len(body) != body_size or body_size % 8 or flags & ~1:
                    raise Unsure  # shared or otherwise unusual messages
                position += 8 + body_size
                if kind == 0x10:  # continuation: more messages elsewhere
                    blocks.append(struct.unpack("<QQ", body[:16]))
                messages.append((kind, body))
                if len(messages) > count:
                    raise Unsure
            if position != length:
                raise Unsure
        if len(messages) != count:
            raise Unsure
        return [(kind, body) for kind, body in messages if kind not in (0x00, 0x10)]


class _V2Objects(Messages):
    """Object headers of an HDF5 1.8+ file, read before HDF5 opens them."""

    def check(self):
        """The superblock (version 2 or 3) and the root object header."""
        head = self.read(0, 48)
        offsets, lengths = head[9], head[10]
        base, extension, end, root = struct.unpack_from("<4Q", head, 12)
        if head[:8] != SIGNATURE or (offsets, lengths) != (8, 8) or base != 0:
            raise Unsure
        if extension != UNDEFINED:
            raise Unsure  # a superblock extension: shared messages, file-space settings
        whole(end, self.size)
        self.size = end  # HDF5 reads nothing past the EOF
        return self.admits(root)

    def superblock_fails_checksum(self):
        superblock = self.read(0, 48)
        return superblock[:8] == SIGNATURE and fails_checksum(superblock)

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
        if self.read(address, 4) != b"OHDR":
            raise Unsure  # no checksum to fail
        start, length = self._first_block(address)
        return fails_checksum(self.read(address, start + length + 4 - address))

    def _first_block(self, address):
        """``(start, length)`` of the messages in the first block of the version 2 header
        at ``address`` (its checksum follows them)."""
        flags = self.read(address, 6)[5]
        start = address + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
        width = 1 << (flags & 3)
        return start + width, int.from_bytes(self.read(start, width), "little")

    def _vouch(self, address):
        """A dataset or a group, each message checked against what h5py writes."""
        messages = self._object(address)
        if any(kind == 0x08 for kind, _ in messages):
            self.described[address] = self._dataset(messages)
            return True
        kinds = [kind for kind, _ in messages]
        if kinds.count(0x02) != 1 or kinds.count(0x0A) != 1:
            raise Unsure  # an old-style group (a symbol table), a named datatype, ...
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
                raise Unsure
        return True

    def _object(self, address):
        """``[(type, body)]`` of a version 2 object header ("OHDR") and its "OCHK" blocks."""
        head = self.read(address, 6)
        if head[:5] != b"OHDR\2" or head[5] & ~0x3F:
            raise Unsure  # a version 1 header: no checksum
        blocks = [self._first_block(address)]  # checksums: HDF5's, as it loads it (_h5.py)
        header = 6 if head[5] & 0x04 else 4  # a message's type, size, flags (, creation order)
        messages = []
        while blocks:
            start, length = blocks.pop()
            self.once(start, "an object header block")
            block, position, nulls = self.read(start, length), 0, 0
            while position + header <= length:  # what is left is a gap
                kind, size, message_flags = struct.unpack_from("<BHB", block, position)
                body = block[position + header : position + header + size]
                position += header + size
                if len(body) != size or message_flags & ~0x05:
                    raise Unsure  # cut short; shared (kept elsewhere) or flags h5py never sets
                if kind == 0x10:  # continuation: an "OCHK" block, checksummed
                    where, span = struct.unpack_from("<QQ", body)
                    if span < 8 or self.read(where, 4) != b"OCHK":
                        raise Unsure
                    blocks.append((where + 4, span - 8))
                elif kind:
                    messages.append((kind, body))
                else:
                    nulls += 1
            if nulls and position != length:
                raise Unsure  # HDF5 refuses a gap in a block that has null messages
        return messages

    def _link_info(self, body):
        flags = body[1]
        heap, _ = struct.unpack_from("<QQ", body, 2 + (8 if flags & 1 else 0))
        if body[0] != 0 or flags & ~3:
            raise Unsure
        if heap != UNDEFINED:  # dense storage: the links are in a heap
            self._fractal_heap(heap)

    def _link(self, body):
        """A link message: its fields fill it exactly; a hard link points inside the file."""
        version, flags = body[0], body[1]
        if version != 1 or flags & ~0x1F:
            raise Unsure
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
                raise Unsure
        elif kind in (1, 64):  # soft, external: refused by the walk, by name
            (size,) = struct.unpack_from("<H", body, position)
            position += 2 + size
        else:
            raise Unsure
        if not length or position != len(body):
            raise Unsure

    def _fractal_heap(self, address):
        """A dense group's or attributes' heap: checksummed direct blocks, no huge objects."""
        head = self.read(address, 30)
        filters, flags = struct.unpack_from("<HB", head, 7)
        (huge,) = struct.unpack_from("<Q", head, 22)
        if head[:5] != b"FRHP\0" or filters or not flags & 0x02 or huge != UNDEFINED:
            raise Unsure
