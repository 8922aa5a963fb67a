"""Parameter entries cost memory in proportion to the file, whatever their count.

An entry without values is a few bytes of a ``.protobuf`` or ``.nntxt`` file but
a kilobyte of memory once read, and an ``.nnp`` archive may unpack a thousand
times its size: its entries, and the parsing of its text members, draw on the
archive's budget. See docs/checkpoints.md, "Guarantees and limits".
"""

import io
import zipfile

import pytest
from crafted_h5 import outcome_in_a_child
from test_bounded_checks import deadline
from test_hostile_files import peak_bytes

from nnabla_modules import files
from nnabla_modules.files import _h5

MB = 1 << 20


def _varint(value):
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number, payload):
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _entry(name):
    """An ``NNablaProtoBuf.parameter`` of shape (0,): no values."""
    return _field(200, _field(1, name) + _field(20, _field(1, b"\0")))


def _nnp(tmp_path, member, data):
    path = tmp_path / "entries.nnp"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr(member, data)
    return path


def test_a_protobuf_of_many_entries_of_one_name_holds_one(tmp_path):
    """Each entry replaces the one before as it is scanned, so the reader holds one."""
    path = tmp_path / "repeated.protobuf"
    path.write_bytes(_entry(b"w") * 100_000)  # 1.2 MB
    found = []
    peak, error = peak_bytes(lambda: found.append(files.read_parameters(path)))
    assert error is None, error
    assert list(found[0]) == ["w"] and found[0]["w"][0].shape == (0,)
    assert peak < MB, peak  # not 100,000 scanned entries (30 MB)


def test_a_protobuf_entry_is_checked_as_it_is_scanned(tmp_path):
    path = tmp_path / "nameless.protobuf"
    path.write_bytes(_field(200, b"") * 1_000_000)  # 3 MB of entries with no name
    peak, error = peak_bytes(lambda: files.read_parameters(path))
    assert isinstance(error, files.ParameterFileError), error
    assert "nameless.protobuf" in str(error) and "parameter ''" in str(error)
    assert peak < MB, peak  # refused at the first, not after a million (290 MB)


def test_the_entries_of_an_nnp_member_draw_on_the_archive_budget(tmp_path):
    count = 400_000
    path = _nnp(tmp_path, "parameter.protobuf", _entry(b"w") * count)  # 4.8 MB in 10 KB
    assert path.stat().st_size * _h5.MAX_RATIO < count * 1024  # less than their memory
    peak, error = peak_bytes(lambda: files.read_parameters(path))
    assert isinstance(error, files.ParameterFileError), error
    assert "entries.nnp" in str(error) and "parameter entry" in str(error), error
    assert peak < 32 * MB, peak


def test_the_fields_an_nnp_member_takes_to_scan_draw_on_the_archive_budget(tmp_path):
    """4 million unknown fields take 5 s to scan; the archive holds 8 KB of them."""
    path = _nnp(tmp_path, "parameter.protobuf", b"\x10\x00" * 4_000_000)
    assert path.stat().st_size < 20_000
    with deadline(3):  # the budget of 8 KB lasts for some 8,000 fields
        with pytest.raises(files.ParameterFileError, match=r"entries\.nnp.*fields to scan"):
            files.read_parameters(path)


def test_a_text_member_of_an_nnp_is_charged_its_parse(tmp_path):
    """Parsed, 8 MB of empty messages take 170 MB; the archive holds 8 KB."""
    path = _nnp(tmp_path, "network.nntxt", b"executor{}" * 800_000)
    assert path.stat().st_size < 20_000
    said = outcome_in_a_child(lambda: files.read_parameters(path), seconds=20, memory=1 << 30)
    assert said.startswith("ParameterFileError"), said
    assert "entries.nnp" in said and "parsed" in said, said


def test_a_protobuf_member_of_an_nnp_loads_as_before(tmp_path):
    buffer = io.BytesIO()
    files.write_parameters(buffer, {"fc/W": [[1.0, 2.0]], "fc/b": [3.0]}, extension=".protobuf")
    path = _nnp(tmp_path, "parameter.protobuf", buffer.getvalue())
    values = files.read_parameters(path)
    assert [(name, array.tolist()) for name, (array, _) in values.items()] == [
        ("fc/W", [[1.0, 2.0]]), ("fc/b", [3.0])
    ]  # fmt: skip
