"""An ordinary ``.h5``'s values are read where the Python check found them, without HDF5.

The check before HDF5 reads each dataset's header whole (docs/checkpoints.md, "Damaged
files and the HDF5 check"); its values are then read from the file directly. These tests
hold that path to HDF5's own reads, bit for bit, and show that it is the one taken.
"""

import io
import os

import h5py
import nnabla as nn
import numpy as np
import pytest

import nnabla_modules as nm
from nnabla_modules import files

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
    """From now on, HDF5 reading a dataset's attributes or opening one by name fails the
    test: the walk opens each object (HDF5 verifies its checksum), nothing more."""

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
    dtypes = {
        name: (array.dtype, np.float32, np.float64, np.float16) for name, array in ARRAYS.items()
    }
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
    """HDF5 1.8's object headers carry checksums: HDF5 still opens each described dataset."""
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
