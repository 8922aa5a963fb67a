"""An ``.nnp`` member's bytes, unpacked in bounded pieces, whatever its headers say.

``zipfile`` stops at a member's declared size, but it hands a bzip2 member's
compressed bytes to the decompressor whole or 4 KiB at a time, and 4 KiB of
bzip2 can unpack to gigabytes. Here the compressed bytes are read from the
archive (never past its end) and unpacked at most :data:`PIECE` bytes at a
time, each piece counted against the archive's budget; the member's size and
CRC-32 are checked at the end.
"""

import bz2
import struct
import zipfile
import zlib

from . import _h5
from ._h5 import ParameterFileError, short

#: The most bytes one step of decompression produces.
PIECE = 1 << 20
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zipfile's structFileHeader


#: The most ``.h5`` members of one archive checked in a child process (a fresh
#: interpreter each: ``_h5.probe``); NNabla writes one parameter file.
MAX_PROBES = 4


class Budget(_h5.Budget):
    """An archive's :class:`~nnabla_modules.files._h5.Budget`, and the child processes its
    members may start."""

    probes = 0

    def spend_probe(self, what):
        """Takes one child process for ``what``; raises ParameterFileError past the limit."""
        self.probes += 1
        if self.probes > MAX_PROBES:
            raise ParameterFileError(
                f"{what}: more than {MAX_PROBES} members of the archive need checking in a "
                "child process (a fresh interpreter each); NNabla writes one parameter file"
            )


def member_bytes(archive, info, label, budget):
    """The bytes of the member ``info`` of the open ``zipfile.ZipFile`` ``archive``.

    Args:
        label (str): How errors name the member.
        budget (nnabla_modules.files._h5.Budget): What the archive may unpack in all;
            the declared size is taken first (refused before anything is
            unpacked), then no more bytes than declared are accepted.

    Raises:
        ParameterFileError: Past the budget, encrypted, compressed with a method
            other than stored, deflate or bzip2, or not what its headers say.
    """
    budget.spend(info.file_size, label)
    if info.flag_bits & 0x1:
        raise ParameterFileError(f"{label} is encrypted")
    unpack = _METHODS.get(info.compress_type)
    if unpack is None:
        raise ParameterFileError(
            f"{label} is compressed with method {info.compress_type}; stored, deflate and "
            "bzip2 members are read"
        )
    out, crc = bytearray(), 0
    for piece in unpack(_compressed(archive.fp, info, label)):
        crc = zlib.crc32(piece, crc)
        out += piece
        if len(out) > info.file_size:
            break
    if len(out) != info.file_size or crc != info.CRC:
        raise ParameterFileError(
            f"{label} does not unpack to the {info.file_size:,} bytes its headers declare "
            "(damaged?)"
        )
    return bytes(out)


def check_members(archive, label):
    """Refuses an archive whose members share bytes (a zip bomb's trick: thousands of
    members, one body), before any is read.

    Raises:
        ParameterFileError: Two members overlap, or one runs into the central directory.
    """
    members = sorted(archive.infolist(), key=lambda info: info.header_offset)
    ends = [info.header_offset + _LOCAL_HEADER.size + info.compress_size for info in members]
    for info, end, following in zip(members, ends, [*members[1:], None]):
        limit = archive.start_dir if following is None else following.header_offset
        if end > limit:
            raise ParameterFileError(
                f"{label}: its member {short(repr(info.filename))} overlaps "
                f"{'the central directory' if following is None else 'the next one'} "
                "(damaged, or a zip bomb)"
            )


def _compressed(stream, info, label):
    """The member's compressed bytes, in pieces, from its local header on."""
    stream.seek(info.header_offset)
    header = stream.read(_LOCAL_HEADER.size)
    if len(header) != _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
        raise ParameterFileError(f"{label}: its local header is damaged")
    fields = _LOCAL_HEADER.unpack(header)
    stream.seek(fields[-2] + fields[-1], 1)  # its name and extra field
    left = info.compress_size
    while left > 0:
        chunk = stream.read(min(left, PIECE))
        if not chunk:
            return  # the archive ends first: the size check says so
        left -= len(chunk)
        yield chunk


def _stored(chunks):
    yield from chunks


def _deflated(chunks):
    decompressor = zlib.decompressobj(-15)
    for chunk in chunks:
        while chunk:
            yield decompressor.decompress(chunk, PIECE)
            chunk = decompressor.unconsumed_tail
    yield decompressor.flush()


def _bzip2(chunks):
    decompressor = bz2.BZ2Decompressor()
    for chunk in chunks:
        if decompressor.eof:
            return
        yield decompressor.decompress(chunk, PIECE)
        while not decompressor.needs_input and not decompressor.eof:
            yield decompressor.decompress(b"", PIECE)


_METHODS = {zipfile.ZIP_STORED: _stored, zipfile.ZIP_DEFLATED: _deflated, zipfile.ZIP_BZIP2: _bzip2}
