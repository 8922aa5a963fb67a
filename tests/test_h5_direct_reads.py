"""An ordinary ``.h5``'s values are read where the Python check found them, without HDF5.

The check before HDF5 reads each dataset's header whole (docs/checkpoints.md, "Damaged
files and the HDF5 check"); its values are then read from the file directly. These tests
hold that path to HDF5's own reads, bit for bit, and show that it is the one taken.
"""

import io
import os
import struct

import h5py
import nnabla as nn
import numpy as np
import pytest

import nnabla_modules as nm
from nnabla_modules import files
from nnabla_modules.files import _h5_check, _h5_read

RNG = np.random.default_rng(0)
ARRAYS = {
    "f32": RNG.standard_normal((3, 4)).astype(np.float32),
    "f64": np.array([1e300, -1e300, np.nan, 1.5, 1 / 3], np.float64),  # overflows in float32
    "big/f32": RNG.standard_normal(5).astype(">f4"),
    "big/i16": np.array([-300, 7, 32767], ">i2"),
    "u8": np.array([0, 200, 255], np.uint8),
    "i64": np.array([2**40 + 1, -3, 2**62], np.int64),  # rounded in float32
    "f16": np.array([0.1, -65504, 6e-8], np.float16),
    "scalar": np.array(2.5, np.float32),
    "empty": np.zeros((0, 3), np.float32),
}


def _write(path, libver, compact):
    with h5py.File(path, "w", libver=libver) as handle:
        for index, (name, array) in enumerate(ARRAYS.items()):
            if compact:  # the values inside the dataset's header
                handle.require_group(os.path.dirname(name) or "/")
                dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
                dcpl.set_layout(h5py.h5d.COMPACT)
                space = h5py.h5s.create_simple(array.shape) if array.ndim else (
                    h5py.h5s.create(h5py.h5s.SCALAR))  # fmt: skip
                kind = h5py.h5t.py_create(array.dtype)
                h5py.h5d.create(handle.id, name.encode(), kind, space, dcpl=dcpl).write(
                    h5py.h5s.ALL, h5py.h5s.ALL, array
                )
                dataset = handle[name]
            else:
                dataset = handle.create_dataset(name, data=array)
            dataset.attrs["need_grad"] = bool(index % 2)
            dataset.attrs["index"] = index


def _forbid_hdf5_reading_datasets(monkeypatch):
    """From now on, HDF5 reading a dataset's attributes or opening one fails the test: the
    walk has HDF5 load each header (verifying its checksums), nothing more."""

    def refused(*args, **kwargs):
        raise AssertionError("HDF5 read a dataset")

    monkeypatch.setattr(h5py.h5a, "open", refused)
    monkeypatch.setattr(h5py.h5d, "open", refused)


def _hdf5s_read(path, name, dtype):
    out = np.empty(ARRAYS[name].shape, dtype)
    with h5py.File(path, "r") as handle:
        if out.size:
            handle[name].id.read(h5py.h5s.ALL, h5py.h5s.ALL, out)
    return out


@pytest.mark.parametrize("compact", [False, True], ids=["contiguous", "compact"])
@pytest.mark.parametrize("libver", ["earliest", ("v108", "v108")], ids=["nnabla", "hdf5 1.8"])
def test_the_values_read_without_hdf5_are_hdf5s_bit_for_bit(tmp_path, libver, compact, monkeypatch):
    path = tmp_path / "p.h5"
    _write(path, libver, compact)
    dtypes = {name: (array.dtype, np.float32, np.float64) for name, array in ARRAYS.items()}
    expected = {
        (name, dtype): _hdf5s_read(path, name, dtype) for name in ARRAYS for dtype in dtypes[name]
    }
    _forbid_hdf5_reading_datasets(monkeypatch)
    with files.open_parameters(path) as stored:
        assert list(stored) == list(ARRAYS)
        for index, (name, array) in enumerate(ARRAYS.items()):
            param = stored[name]
            assert (param.shape, param.dtype, param.need_grad) == (
                array.shape, array.dtype, bool(index % 2))  # fmt: skip
            for dtype in dtypes[name]:
                out = np.empty(array.shape, dtype)
                with np.errstate(over="ignore"):
                    param.read_into(out)
                assert out.tobytes() == expected[name, dtype].tobytes(), (name, dtype)


@pytest.mark.parametrize("writer", ["nn.save_parameters", "Module.save_parameters"])
def test_a_load_of_either_writers_file_reads_no_dataset_through_hdf5(tmp_path, writer, monkeypatch):
    nn.clear_parameters()
    model = nm.Sequential(*(nm.Linear(3, 3) for _ in range(12)), name="net")
    path = str(tmp_path / "p.h5")
    expected = {k: v.d.copy() for k, v in model.get_parameters().items()}
    if writer == "nn.save_parameters":
        nn.save_parameters(path, nn.get_parameters(grad_only=False))
    else:
        model.save_parameters(path)
    for param in model.get_parameters().values():
        param.d = 0
    _forbid_hdf5_reading_datasets(monkeypatch)
    model.load_parameters(path)
    for key, param in model.get_parameters().items():
        np.testing.assert_array_equal(param.d, expected[key])


def test_a_file_cut_short_after_its_check_is_an_error_naming_it(tmp_path):
    path = tmp_path / "cut.h5"
    files.write_parameters(path, {"a": np.ones(1000, np.float32), "b": np.ones(9, np.float32)})
    with files.open_parameters(path) as stored:
        os.truncate(path, 2000)
        with pytest.raises(files.ParameterFileError, match=r"cut\.h5.*'a'.*shorter"):
            stored["a"].read()


@pytest.mark.parametrize("compact", [False, True])
@pytest.mark.parametrize("given", ["path", "bytes"])
def test_values_read_after_the_with_block_are_refused_as_closed_not_read(tmp_path, compact, given):
    """Bytes or a file object outlive the block: the stream may hold another file by then."""
    path = tmp_path / "m.h5"
    _write(path, "earliest", compact)
    stream = io.BytesIO(path.read_bytes())
    source, options = (path, {}) if given == "path" else (stream, {"extension": ".h5"})
    with files.open_parameters(source, **options) as stored:
        kept = stored["f32"]
    stream.seek(0)
    stream.write(bytes(len(stream.getvalue())))  # the caller reuses its buffer
    with pytest.raises(ValueError, match="is closed: read its values inside its with block"):
        kept.read()


class _FailingDisk(io.BytesIO):
    failing = False

    def readinto(self, buffer):
        if self.failing:
            raise OSError(5, "Input/output error")
        return super().readinto(buffer)


def test_a_disk_error_while_reading_values_is_an_error_naming_the_file():
    data = io.BytesIO()
    files.write_parameters(data, {"a": np.ones(10, np.float32)}, extension=".h5")
    stream = _FailingDisk(data.getvalue())
    with files.open_parameters(stream, extension=".h5") as stored:
        stream.failing = True
        with pytest.raises(files.ParameterFileError, match=r"'a'.*disk error.*Input/output"):
            stored["a"].read()


def test_a_changed_attribute_of_a_checksummed_file_is_refused_not_loaded(tmp_path):
    """HDF5 1.8's object headers carry checksums: HDF5 still loads each described header."""
    nn.clear_parameters()
    model = nm.Linear(3, 2, name="fc")
    path = tmp_path / "fc.h5"
    model.save_parameters(path)
    data = bytearray(path.read_bytes())
    name = data.index(b"need_grad\0")  # a version 3 attribute message: its value last
    type_size, space_size = (
        int.from_bytes(data[name - 5 : name - 3], "little"),
        int.from_bytes(data[name - 3 : name - 1], "little"),
    )
    value = name + len(b"need_grad\0") + type_size + space_size
    assert data[value] == 1
    data[value] = 0  # need_grad=False: a frozen weight, if it loaded
    path.write_bytes(bytes(data))
    before = {k: v.d.copy() for k, v in model.get_parameters().items()}
    with pytest.raises(files.ParameterFileError, match=r"fc\.h5"):
        model.load_parameters(path)
    for key, param in model.get_parameters().items():
        np.testing.assert_array_equal(param.d, before[key])
        assert param.need_grad


def _read_by_hdf5(data, name, dtype):
    with h5py.File(io.BytesIO(data), "r") as handle:
        dataset = handle[name]
        out = np.empty(dataset.shape, dtype)
        dataset.id.read(h5py.h5s.ALL, h5py.h5s.ALL, out)
    return out


def test_reads_into_a_dtype_numpy_converts_to_otherwise_are_hdf5s_bit_for_bit():
    """HDF5 clamps what an integer type cannot hold (numpy wraps it) and rounds into
    float16 its own way: those reads are HDF5's, the others stay without it."""
    arrays = {
        "i16": np.array([300, -300, 5], np.int16),
        "f32": np.array([1e10, -1e10, np.nan, 2.7, 65519, 65520, 1 + 2**-11], np.float32),
        "u64": np.array([2**64 - 1, 2**40, 7], np.uint64),
        "i64": np.array([65519, -(2**63), 2**31], np.int64),
    }
    data = io.BytesIO()
    files.write_parameters(data, arrays, extension=".h5")
    data = data.getvalue()
    with files.open_parameters(io.BytesIO(data), extension=".h5") as stored:
        for name in arrays:
            for dtype in (np.int8, np.uint8, np.int32, np.uint32, np.float16):
                out = np.empty(arrays[name].shape, dtype)
                with np.errstate(all="ignore"):
                    stored[name].read_into(out)
                expected = _read_by_hdf5(data, name, dtype)
                assert out.tobytes() == expected.tobytes(), (name, dtype, out, expected)
            for dtype in (np.complex64, np.bool_):  # HDF5 has no such conversion
                with pytest.raises(files.ParameterFileError, match=f"into {np.dtype(dtype)}: read"):
                    stored[name].read_into(np.empty(arrays[name].shape, dtype))


@pytest.mark.parametrize("libver", ["earliest", ("v108", "v108")], ids=["nnabla", "hdf5 1.8"])
def test_an_index_of_minus_one_orders_parameters_as_any_other_index(tmp_path, libver, monkeypatch):
    path = tmp_path / "p.h5"
    with h5py.File(path, "w", libver=libver) as handle:
        for name, index in (("a", 0), ("b", -1), ("c", None), ("d", 1)):
            dataset = handle.create_dataset(name, data=np.zeros(2, np.float32))
            dataset.attrs["need_grad"] = True
            if index is not None:
                dataset.attrs["index"] = index
    assert list(files.read_parameters(path)) == ["b", "a", "d", "c"]  # by index, then unindexed
    monkeypatch.setattr(files, "PROBE_UNCHECKSUMMED_H5", False)  # HDF5 reads every dataset
    assert list(files.read_parameters(path)) == ["b", "a", "d", "c"]


def _header_blocks(data, address):
    """``[(start, end)]`` of the version 2 object header at ``address``: its first block
    (to its checksum's end) and its continuation blocks ("OCHK")."""
    flags = data[address + 5]
    start = address + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
    width = 1 << (flags & 3)
    end = start + width + int.from_bytes(data[start : start + width], "little") + 4
    blocks, position = [(address, end)], data.find(b"OCHK")
    while position >= 0:
        blocks.append((position, None))
        position = data.find(b"OCHK", position + 4)
    return blocks


def test_a_damaged_checksummed_dataset_header_is_hdf5s_clean_error_not_other_values():
    """HDF5 1.8's headers carry checksums, which HDF5 checks when it opens a dataset:
    a dataset read without HDF5 has its header's checksums checked before."""
    data = io.BytesIO()
    files.write_parameters(data, {"w": np.arange(6, dtype=np.float32)}, extension=".h5")
    with h5py.File(data, "r+") as handle:  # more attributes than the first block holds
        for number in range(4):
            handle["w"].attrs[f"note{number}"] = number
    data = data.getvalue()
    with h5py.File(io.BytesIO(data), "r") as handle:
        address = h5py.h5o.get_info(handle["w"].id).addr
    check = _h5_check.vouch(io.BytesIO(data))
    assert check(address) and check.described[address], "read without HDF5 when undamaged"
    (first, end), *continued = _header_blocks(data, address)
    assert continued, "the header has a continuation block"
    places = [*range(first, end), *(start + 4 * step for start, _ in continued for step in (1, 9))]
    for place in places:
        damaged = bytearray(data)
        damaged[place] ^= 1
        with pytest.raises(files.ParameterFileError):
            files.read_parameters(io.BytesIO(bytes(damaged)), extension=".h5")


def _messages(data, address):
    """``{type: offset of its flags byte}`` in the first block of the object header at
    ``address``: version 1 (8-byte message headers after 16 bytes) or 2 ("OHDR")."""
    if data[address : address + 4] != b"OHDR":  # its first block only
        found, position = {}, address + 16
        while position < address + 16 + struct.unpack_from("<I", data, address + 8)[0]:
            kind, size = struct.unpack_from("<HH", data, position)
            found.setdefault(kind, position + 4)
            position += 8 + size
        return found
    (first, end), *_ = _header_blocks(data, address)
    flags = data[address + 5]
    position, found = first + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0), {}
    position += 1 << (flags & 3)
    while position + 4 <= end - 4:
        kind, size = struct.unpack_from("<BH", data, position)
        found.setdefault(kind, position + 3)
        position += (6 if flags & 0x04 else 4) + size
    return found


def _dataset_header(data, name):
    with h5py.File(io.BytesIO(data), "r") as handle:
        return h5py.h5o.get_info(handle[name].id).addr


def _hdf5_refuses(data, name):
    with pytest.raises((OSError, KeyError, RuntimeError)), h5py.File(io.BytesIO(data), "r") as f:
        f[name].id.read(h5py.h5s.ALL, h5py.h5s.ALL, np.empty(f[name].shape, f[name].dtype))


def test_a_modification_time_hdf5_refuses_is_an_error_not_values():
    """HDF5 decodes a dataset's modification time (a message in NNabla's format) when it
    opens it: one it refuses is the file's error, not values read without HDF5."""
    stream = io.BytesIO()
    with h5py.File(stream, "w") as handle:
        dataset = handle.create_dataset("w", data=np.arange(3, dtype=np.float32), track_times=True)
        dataset.attrs["need_grad"] = True
    data = bytearray(stream.getvalue())
    data[_messages(bytes(data), _dataset_header(bytes(data), "w"))[0x12] + 4] = 2  # its version
    _hdf5_refuses(bytes(data), "w")
    with pytest.raises(files.ParameterFileError, match="mtime"):
        files.read_parameters(io.BytesIO(bytes(data)), extension=".h5")


@pytest.mark.parametrize("kind", [0x01, 0x03, 0x08, 0x0C], ids=["dataspace", "datatype", "layout",
                                                             "attribute"])  # fmt: skip
def test_message_flags_hdf5_refuses_are_an_error_not_values(kind):
    """A message flagged as HDF5 never writes it ("was unknown", "shareable") in a
    checksummed header: HDF5's error."""
    data, address, messages = _module_format(np.arange(4, dtype=np.float32))
    data[messages[kind]] |= 0x20  # "was unknown", but it is known
    _checksum_again(data, address)
    _hdf5_refuses(bytes(data), "w")
    with pytest.raises(files.ParameterFileError):
        files.read_parameters(io.BytesIO(bytes(data)), extension=".h5")


def _module_format(array):
    """Bytes of a file ``write_parameters`` wrote (HDF5 1.8's format) with one dataset
    ``w``, its header's address and its messages."""
    stream = io.BytesIO()
    files.write_parameters(stream, {"w": array}, extension=".h5")
    data = bytearray(stream.getvalue())
    address = _dataset_header(bytes(data), "w")
    return data, address, _messages(bytes(data), address)


def _checksum_again(data, address):
    """The first block of the header at ``address`` given a right checksum, as a forger would."""
    (first, end), *_ = _header_blocks(bytes(data), address)
    struct.pack_into("<I", data, end - 4, _h5_read.lookup3(bytes(data[first : end - 4])))


def _nnabla_format(array):
    """Bytes of a file in NNabla's format (no checksums) with one dataset ``w``."""
    stream = io.BytesIO()
    with h5py.File(stream, "w") as handle:
        handle.create_dataset("w", data=array).attrs["need_grad"] = True
    data = bytearray(stream.getvalue())
    return data, _messages(bytes(data), _dataset_header(bytes(data), "w"))


def test_an_empty_dataset_whose_values_lie_past_the_end_is_hdf5s_error():
    data, messages = _nnabla_format(np.zeros((0, 3), np.float32))
    struct.pack_into("<Q", data, messages[0x08] + 4 + 2, len(data) + 8)  # the values' address
    _hdf5_refuses(bytes(data), "w")
    with pytest.raises(files.ParameterFileError, match="invalid dataset size"):
        files.read_parameters(io.BytesIO(bytes(data)), extension=".h5")


def test_an_attribute_whose_dataspace_overruns_its_size_is_hdf5s_error():
    data, messages = _nnabla_format(np.zeros(3, np.float32))
    struct.pack_into("<H", data, messages[0x0C] + 4 + 6, 2)  # its dataspace's size: 8 bytes
    with pytest.raises(files.ParameterFileError):  # as HDF5 reads it: no need_grad
        files.read_parameters(io.BytesIO(bytes(data)), extension=".h5")


def test_a_fill_value_both_defined_and_undefined_is_hdf5s_error():
    stream = io.BytesIO()
    with h5py.File(stream, "w", libver=("v108", "v108")) as handle:
        dataset = handle.create_dataset("w", data=np.zeros(3, np.float32), fillvalue=5.0)
        dataset.attrs["need_grad"] = True
    data = bytearray(stream.getvalue())
    address = _dataset_header(bytes(data), "w")
    data[_messages(bytes(data), address)[0x05] + 2] |= 0x10  # "undefined", beside its value
    _checksum_again(data, address)
    _hdf5_refuses(bytes(data), "w")
    with pytest.raises(files.ParameterFileError, match="undefined value"):
        files.read_parameters(io.BytesIO(bytes(data)), extension=".h5")


def test_a_gap_in_a_header_block_with_null_messages_is_hdf5s_error():
    data, address, messages = _module_format(np.zeros(3, np.float32))
    null = messages[0x00] - 3  # the block's null message (free space)
    size = struct.unpack_from("<H", data, null + 1)[0]
    struct.pack_into("<H", data, null + 1, size - 2)  # two bytes left over: a gap
    _checksum_again(data, address)
    _hdf5_refuses(bytes(data), "w")
    with pytest.raises(files.ParameterFileError, match="gap"):
        files.read_parameters(io.BytesIO(bytes(data)), extension=".h5")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_damaged_files_read_as_h5py_reads_them_or_fail():
    """Differential fuzzing (tests/h5_differential.py): damaged copies of files of many
    kinds, each read in a forked child by the load and by h5py alone. Where h5py reads
    one, the load reads the same or fails; where h5py fails, the load fails too."""
    from h5_differential import run

    counts, findings = run(count=25, seed=7, report=lambda line: None)
    assert sum(counts.values()) >= 300
    assert counts["ok", "ok"] >= 50, counts  # many were read without HDF5 opening them
    assert [finding[:3] for finding in findings] == []


def test_an_empty_continuation_block_is_hdf5s_error():
    data, messages = _nnabla_format(np.zeros(3, np.float32))
    null = messages[0x00] - 4  # the header's free space: a null message of 16 bytes or more
    assert struct.unpack_from("<H", data, null + 2)[0] >= 16
    struct.pack_into("<H", data, null, 0x10)  # made a continuation: to 0 bytes at address 0
    data[null + 8 : null + 24] = bytes(16)
    _hdf5_refuses(bytes(data), "w")
    with pytest.raises(files.ParameterFileError, match="continuation"):
        files.read_parameters(io.BytesIO(bytes(data)), extension=".h5")


def test_attribute_info_whose_fields_run_past_it_is_hdf5s_error():
    data, address, messages = _module_format(np.zeros(3, np.float32))
    data[messages[0x15] + 2] |= 0x01  # 2 more bytes: creation order
    _checksum_again(data, address)
    with pytest.raises(files.ParameterFileError):
        files.read_parameters(io.BytesIO(bytes(data)), extension=".h5")
