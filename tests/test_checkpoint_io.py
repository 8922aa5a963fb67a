"""nnabla_modules.files: NNabla's parameter files, read lazily and written atomically."""

import io as stdio
import os
import re

import h5py
import nnabla as nn
import numpy as np
import pytest
from nnabla.utils import nnabla_pb2

from nnabla_modules import files

VALUES = {
    "z/W": (np.arange(6, dtype=np.float32).reshape(2, 3), True),
    "a/b": (np.array([1.5, -2.0], np.float32), False),
    "scalar": (np.array(3.0, np.float32), True),
}


@pytest.mark.parametrize("ext", [".h5", ".protobuf"])
def test_write_then_read_keeps_order_values_and_need_grad(tmp_path, ext):
    files.write_parameters(tmp_path / f"p{ext}", VALUES)
    with files.open_parameters(tmp_path / f"p{ext}") as stored:
        assert list(stored) == list(VALUES)  # the file's order, not the names'
        for name, (array, need_grad) in VALUES.items():
            param = stored[name]
            assert (param.shape, param.dtype, param.need_grad) == (
                array.shape,
                np.float32,
                need_grad,
            )
            np.testing.assert_array_equal(param.read(), array)
            out = np.empty(array.shape, np.float64)  # converted on the way
            param.read_into(out)
            np.testing.assert_array_equal(out, array)


def test_nn_load_parameters_sees_the_same_order_and_flags(tmp_path):
    files.write_parameters(tmp_path / "p.h5", VALUES)
    nn.load_parameters(str(tmp_path / "p.h5"))
    params = nn.get_parameters(grad_only=False)
    assert list(params) == list(VALUES)
    assert [p.need_grad for p in params.values()] == [ng for _, ng in VALUES.values()]


def test_values_may_be_variables_ndarrays_pairs_or_stored_parameters(tmp_path):
    variable = nn.Variable.from_numpy_array(np.ones((2, 2), np.float32), need_grad=False)
    ndarray = nn.NdArray.from_numpy_array(np.full(3, 2.0, np.float32))
    files.write_parameters(
        tmp_path / "a.h5",
        [("v", variable), ("n", ndarray), ("p", (np.zeros(1), False)), ("x", [1.0, 2.0])],
    )
    with files.open_parameters(tmp_path / "a.h5") as stored:  # converting streams entries
        files.write_parameters(tmp_path / "b.protobuf", stored)
    loaded = files.read_parameters(tmp_path / "b.protobuf")
    assert [(k, ng) for k, (_, ng) in loaded.items()] == [
        ("v", False),
        ("n", True),
        ("p", False),
        ("x", True),
    ]
    np.testing.assert_array_equal(loaded["n"][0], [2.0, 2.0, 2.0])


def test_file_objects_need_an_extension_which_may_omit_the_dot():
    buffer = stdio.BytesIO()
    with pytest.raises(ValueError, match="extension="):
        files.write_parameters(buffer, VALUES)
    files.write_parameters(buffer, VALUES, extension="protobuf")
    assert buffer.tell() == 0  # rewound, as nn.save_parameters does
    assert list(files.read_parameters(buffer, extension=".protobuf")) == list(VALUES)


@pytest.mark.parametrize("name, writing", [("p.nnp", True), ("p.txt", False), ("p", False)])
def test_unsupported_formats(tmp_path, name, writing):
    with pytest.raises(ValueError, match="supported: .h5"):
        files.file_format(tmp_path / name, writing=writing)


def test_an_h5_file_without_need_grad_is_not_an_nnabla_file(tmp_path):
    with h5py.File(tmp_path / "foreign.h5", "w") as handle:
        handle["data"] = np.zeros(3)
    with pytest.raises(files.ParameterFileError, match=r"foreign\.h5.*need_grad"):
        with files.open_parameters(tmp_path / "foreign.h5"):
            pass


def test_an_h5_dataset_of_text_is_not_a_parameter(tmp_path):
    with h5py.File(tmp_path / "text.h5", "w") as handle:
        handle["name"] = np.array([b"abc"])
        handle["name"].attrs["need_grad"] = True
    with pytest.raises(files.ParameterFileError, match="not numbers"):
        files.read_parameters(tmp_path / "text.h5")


def test_chunked_and_compressed_datasets_are_read(tmp_path):
    with h5py.File(tmp_path / "gz.h5", "w") as handle:
        handle.create_dataset(
            "W", data=np.arange(12.0).reshape(3, 4), chunks=(1, 4), compression="gzip"
        )
        handle["W"].attrs["need_grad"] = True
    np.testing.assert_array_equal(
        files.read_parameters(tmp_path / "gz.h5")["W"][0], np.arange(12.0).reshape(3, 4)
    )


def test_a_protobuf_parameter_whose_count_disagrees_with_its_shape(tmp_path):
    proto = nnabla_pb2.NNablaProtoBuf()
    parameter = proto.parameter.add()
    parameter.variable_name = "W"
    parameter.shape.dim.extend([2, 3])
    parameter.data.extend([1.0] * 5)
    (tmp_path / "bad.protobuf").write_bytes(proto.SerializeToString())
    with pytest.raises(files.ParameterFileError, match=r"bad\.protobuf.*'W'.*\(2, 3\).*5 values"):
        files.read_parameters(tmp_path / "bad.protobuf")


def test_garbage_is_a_parameter_file_error_naming_the_file(tmp_path):
    for ext in files.READ_FORMATS:
        (tmp_path / f"junk{ext}").write_bytes(b"\xff\xfe not a parameter file \x00\x01" * 10)
        with pytest.raises(files.ParameterFileError, match=f"junk{ext}"):
            files.read_parameters(tmp_path / f"junk{ext}")


def test_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        files.read_parameters(tmp_path / "absent.h5")


def test_read_into_checks_the_shape(tmp_path):
    files.write_parameters(tmp_path / "p.h5", VALUES)
    with files.open_parameters(tmp_path / "p.h5") as stored:
        with pytest.raises(ValueError, match="does not fit"):
            stored["z/W"].read_into(np.empty((3, 2), np.float32))


# --- write_atomically: the one helper every file written goes through ------------------------


def test_write_atomically_calls_back_with_a_temporary_and_renames_it(tmp_path):
    seen = []

    def write(temporary):
        seen.append(temporary)
        assert os.path.dirname(temporary) == str(tmp_path) and os.path.getsize(temporary) == 0
        with open(temporary, "w") as handle:
            handle.write("new")

    files.write_atomically(tmp_path / "out.txt", write)
    assert (tmp_path / "out.txt").read_text() == "new" and os.listdir(tmp_path) == ["out.txt"]

    def failing(temporary):
        with open(temporary, "w") as handle:
            handle.write("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        files.write_atomically(tmp_path / "out.txt", failing)
    assert (tmp_path / "out.txt").read_text() == "new" and os.listdir(tmp_path) == ["out.txt"]


# --- the library behind the command line ------------------------------------------------------


def test_compare_files_counts_and_summarises_differences(tmp_path):
    from nnabla_modules.compare import compare_files, compare_values

    a = {"w": np.array([1.0, 2.0, np.nan, np.inf, 5.0], np.float32), "same": np.zeros(3)}
    b = {"w": np.array([1.0, 2.5, np.nan, np.inf, 4.0], np.float32), "same": np.zeros(3)}
    files.write_parameters(tmp_path / "a.h5", a)
    files.write_parameters(tmp_path / "b.h5", b)
    with files.open_parameters(tmp_path / "a.h5") as x, \
            files.open_parameters(tmp_path / "b.h5") as y:
        report = compare_files(x, y)
        loose = compare_files(x, y, rtol=0.25)
    (entry,) = report["value_differences"]
    assert (entry["key"], entry["differing"], entry["size"]) == ("w", 2, 5)
    assert (entry["min_diff"], entry["max_diff"], entry["max_abs_diff"]) == (-1.0, 0.5, 1.0)
    assert entry["mean_diff"] == pytest.approx(-0.5 / 3)  # over the 3 pairs both finite
    assert report["differing_elements"] == 2 and report["compared_elements"] == 8
    assert loose["equal"]  # |4 - 5| <= 0.25 * 4, |2.5 - 2| <= 0.25 * 2.5
    assert compare_values(np.array([1.0, np.nan]), np.array([1.0, 0.0]))["max_abs_diff"] != 0
    with pytest.raises(ValueError, match="atol and rtol"):
        compare_files({}, {}, atol=-1)


def test_convert_entries_renames_without_reading_values(tmp_path):
    from nnabla_modules.convert import ConversionError, KeyMapping, convert_entries

    files.write_parameters(tmp_path / "old.h5", {"net/fc/W": np.ones((2, 3)), "net/fc/b": [1.0]})
    with files.open_parameters(tmp_path / "old.h5") as stored:
        entries, _ = convert_entries(stored, KeyMapping(strip_prefix="net", add_prefix="m"))
        assert [(e.source, e.target) for e in entries] == [
            ("net/fc/W", "m/fc/W"),
            ("net/fc/b", "m/fc/b"),
        ]
        with pytest.raises(ConversionError, match="two keys would get one name"):
            convert_entries(stored, KeyMapping(maps=[("/[Wb]$", "/x")]))


@pytest.mark.parametrize(
    "keys, message",
    [
        (["/fc/W"], "'/fc/W' cannot be stored"),
        (["fc//W"], "'fc//W' cannot be stored"),
        (["fc/W/"], "'fc/W/' cannot be stored"),
        (["fc/./W"], "'fc/./W' cannot be stored"),
        (["fc/W", "fc"], "'fc' is both a parameter and the scope of 'fc/W'"),
    ],
)
def test_keys_an_h5_file_cannot_hold_as_given_are_refused_before_writing(tmp_path, keys, message):
    path = tmp_path / "out.h5"
    files.write_parameters(path, {"old": np.ones(1, np.float32)})
    with pytest.raises(ValueError, match=re.escape(message)):
        files.write_parameters(path, {key: np.ones(2, np.float32) for key in keys})
    assert list(files.read_parameters(path)) == ["old"]
    files.write_parameters(tmp_path / "out.protobuf", {key: np.ones(2) for key in keys})


@pytest.mark.parametrize("ext", [".h5", ".protobuf"])
@pytest.mark.parametrize(
    "pairs, message",
    [
        ([("", 1.0)], "the key '' is empty"),  # a .protobuf reader refuses a nameless value
        ([("fc/\udcff", 1.0)], "is not valid text (UTF-8)"),
        ([("fc/W", 1.0), ("fc/W", 2.0)], "the key 'fc/W' is given twice"),  # one read back
    ],
)
def test_keys_no_file_reads_back_as_written_are_refused_before_writing(
    tmp_path, ext, pairs, message
):
    path = tmp_path / f"out{ext}"
    files.write_parameters(path, {"old": np.ones(1, np.float32)})
    items = [(key, np.full(2, value, np.float32)) for key, value in pairs]
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        files.write_parameters(path, items)
    assert str(path) in str(caught.value)
    assert list(files.read_parameters(path)) == ["old"]
    assert os.listdir(tmp_path) == [f"out{ext}"]  # no temporary left


def test_a_value_too_large_for_a_protobuf_files_float32_is_refused(tmp_path, capsys):
    """``.protobuf`` stores float32: a float64 of 1e300 would be written as infinity."""
    from nnabla_modules.cli import main

    path = tmp_path / "big.protobuf"
    with pytest.raises(ValueError, match=r"big\.protobuf.*'fc/W'.*too large for float32"):
        files.write_parameters(path, {"fc/W": np.array([1.0, 1e300])})
    assert not path.exists()
    source = tmp_path / "big.h5"
    files.write_parameters(source, {"fc/W": np.array([1.0, 1e300])})  # .h5 keeps float64
    assert main(["convert", str(source), str(path)]) == 2
    assert "too large for float32" in capsys.readouterr().err and not path.exists()
    files.write_parameters(path, {"fc/W": np.array([np.inf, np.nan, 2.0])})  # as given
    (values, _), = files.read_parameters(path).values()
    np.testing.assert_array_equal(values, np.array([np.inf, np.nan, 2.0], np.float32))


@pytest.mark.parametrize("ext", [".h5", ".protobuf"])
@pytest.mark.parametrize("value", [np.array([1 + 2j, 3 - 1j]), np.array(["2020-01-01"], "M8[D]"),
                                   np.array([1.0, None], object), np.array(["1"])])  # fmt: skip
def test_values_that_are_not_numbers_are_refused_not_saved_otherwise(tmp_path, ext, value):
    """A .protobuf save cast complex to its real part and dates to day counts; an .h5 save
    wrote complex values no load reads back."""
    path = tmp_path / f"out{ext}"
    files.write_parameters(path, {"old": np.ones(1, np.float32)})
    with pytest.raises(ValueError, match=rf"out\{ext}.*'fc/W' holds .*not numbers"):
        files.write_parameters(path, {"fc/b": np.ones(2), "fc/W": value})
    assert list(files.read_parameters(path)) == ["old"]
    assert os.listdir(tmp_path) == [f"out{ext}"]  # no temporary left


def test_bool_values_are_numbers_to_protobuf_files_only(tmp_path):
    """An .h5 file holds bool as an enum, which loads refuse."""
    files.write_parameters(tmp_path / "m.protobuf", {"mask": np.array([True, False])})
    (values, _), = files.read_parameters(tmp_path / "m.protobuf").values()
    np.testing.assert_array_equal(values, [1.0, 0.0])
    with pytest.raises(ValueError, match=r"m\.h5.*'mask' holds bool"):
        files.write_parameters(tmp_path / "m.h5", {"mask": np.array([True, False])})
