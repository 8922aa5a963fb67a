"""Small helpers that craft damaged or hostile ``.h5`` files byte by byte.

They start from a file ``nn.save_parameters`` writes (HDF5's earliest format:
version 0 superblock, symbol-table groups, version 1 object headers, no
checksums) and change its metadata as HDF5's format specification lays it out.
"""

import io
import os
import signal
import struct

import nnabla as nn
import nnabla.parametric_functions as PF

from nnabla_modules import files
from nnabla_modules.files import _h5, _h5_probe

UNDEFINED = 0xFFFFFFFFFFFFFFFF


def nnabla_file(path):
    """Bytes of a small ``nn.save_parameters`` file with keys ``fc1/affine/{W,b}`` and
    ``fc2/affine/{W,b}``; the registry is left empty."""
    nn.clear_parameters()
    PF.affine(PF.affine(nn.Variable((2, 4)), 3, name="fc1"), 2, name="fc2")
    nn.save_parameters(str(path))
    nn.clear_parameters()
    return path.read_bytes()


def local_heaps(data):
    """Offsets of the local heaps (``HEAP``) of a version 0 file."""
    found, start = [], data.find(b"HEAP")
    while start >= 0:
        found.append(start)
        start = data.find(b"HEAP", start + 4)
    return found


def looping_free_list(data):
    """The first local heap's free list made a loop: its one free block names itself next."""
    data = bytearray(data)
    heap = local_heaps(data)[0]
    _, free, segment = struct.unpack_from("<QQQ", data, heap + 8)
    struct.pack_into("<Q", data, segment + free, free)  # the block's "next free block"
    return bytes(data)


def root_tree(data):
    """``(offset of the B-tree address in the root's symbol-table message, that address)``."""
    header = struct.unpack_from("<Q", data, 64)[0]
    position = header + 16
    while True:
        kind, size = struct.unpack_from("<HH", data, position)
        if kind == 0x11:
            return position + 8, struct.unpack_from("<Q", data, position + 8)[0]
        position += 8 + size


def shared_tree_nodes(data, levels):
    """The root group's B-tree replaced by ``levels`` internal nodes, each holding the
    node below it twice, above one empty leaf: a walk that does not remember the
    nodes it saw visits the leaf 2**levels times."""
    data = bytearray(data)
    field, _ = root_tree(data)
    k = struct.unpack_from("<H", data, 18)[0]  # the superblock's group internal node K
    size = 24 + (2 * k + 1) * 8 + 2 * k * 8  # HDF5 reads a node's full size
    child = None
    for level in range(levels + 1):
        used = 2 if level else 0
        node = struct.pack("<4sBBHQQ", b"TREE", 0, level, used, UNDEFINED, UNDEFINED)
        node += struct.pack("<QQQQQ", 0, child, 0, child, 0) if level else b""
        child = len(data)
        data += node.ljust(size, b"\0")
    struct.pack_into("<Q", data, field, child)  # the root's symbol-table message
    struct.pack_into("<Q", data, 80, child)  # and its copy in the superblock's scratch pad
    struct.pack_into("<Q", data, 40, len(data))  # the end-of-file address
    return bytes(data)


def version_2_superblock(data):
    """The file with HDF5 1.8's superblock (checksummed) in place of its version 0 one;
    its groups, heaps and object headers stay as they were, without checksums."""
    from nnabla_modules.files._h5_check import lookup3  # HDF5's checksum

    data = bytearray(data)
    end, root = struct.unpack_from("<Q", data, 40)[0], struct.unpack_from("<Q", data, 64)[0]
    superblock = data[:8] + struct.pack("<4B4Q", 2, 8, 8, 0, 0, UNDEFINED, end, root)
    data[:48] = superblock + struct.pack("<I", lookup3(bytes(superblock)))
    return bytes(data)


def outcome_in_a_child(function, seconds=10, memory=512 << 20):
    """How ``function()`` ends in a forked child given ``seconds`` and ``memory`` more bytes
    of address space: "returned", the exception's type and message, "hang" or "crash"."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        try:
            os.close(read)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.alarm(seconds)  # kills it
            _h5._limit_memory(memory)
            try:
                function()
                outcome = "returned"
            except BaseException as error:  # noqa: BLE001
                outcome = f"{type(error).__name__}: {error}"
            os.write(write, outcome.encode()[:4000])
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as reader:
        said = reader.read().decode()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return "hang" if os.WTERMSIG(status) == signal.SIGALRM else "crash"
    return said


def load_outcome(data, seconds=2, memory=256 << 20):
    """How loading the ``.h5`` bytes ``data`` in this process's way ends, in a forked child
    given ``seconds`` and ``memory`` more bytes of address space: "ok" (a load, a clean
    error, or the file handed to the checking child, which is bounded), "crash",
    "hang" or "memory" (the load ran out)."""

    def load():
        _h5_probe.probe = _handed_over
        files.read_parameters(io.BytesIO(data), extension=".h5")

    said = outcome_in_a_child(load, seconds, memory)
    if said in ("hang", "crash"):
        return said
    if said.startswith("MemoryError") or (
        not said.startswith("_HandedOver") and "memory" in said.lower()
    ):
        return "memory"
    return "ok"


class _HandedOver(Exception):
    pass


def _handed_over(stream, label):
    raise _HandedOver


def forged_object_header(data, old, new):
    """``old`` replaced by ``new`` (as long) in the first HDF5 1.8 object header holding it,
    whose checksum is then made right again: damage HDF5 cannot see."""
    from nnabla_modules.files._h5_check import lookup3  # HDF5's checksum

    data = bytearray(data)
    at = data.index(old)
    header = data.rindex(b"OHDR", 0, at)
    flags = data[header + 5]
    start = header + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
    width = 1 << (flags & 3)
    end = start + width + int.from_bytes(data[start : start + width], "little")
    assert at + len(old) <= end, "not in the object header's first block"
    data[at : at + len(old)] = new
    struct.pack_into("<I", data, end, lookup3(bytes(data[header:end])))
    return bytes(data)
